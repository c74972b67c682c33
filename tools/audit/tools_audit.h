/*
 * tools/audit/tools_audit.h - the tamper-evident audit chain of one device:
 * an append-only SQLite file (data_dir/audit/<device>.db) where each record
 * hash is SHA-256(0x00 || "mxfleet-audit-v1" || seq(8 bytes BE) || prev
 * hash || canonical record JSON), plus Ed25519-signed checkpoints (size,
 * head hash, time) kept apart in data_dir/audit/<device>.checkpoint.
 * Layer: tools/, linked by the bot and by mxfleet-agent; common/ only.
 * Ownership: `const cJSON *` arguments are borrowed; returned cJSON is owned
 * (cJSON_Delete). One handle per thread, or serialise calls on one handle
 * (every call takes the handle's mutex).
 */
#ifndef TOOLS_AUDIT_H
#define TOOLS_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

#define TOOLS_AUDIT_HASH_LEN 32

struct tools_audit;

struct tools_audit_opts {
  const char *data_dir; /* files go under data_dir/audit/ */
  const char *device;   /* [A-Za-z0-9._-]{1,64} */
  const char *key_path; /* Ed25519 key (PEM, 0600, made on first use); NULL = data_dir/audit/audit_ed25519.pem */
};

/* One record to append. Strings may be NULL (stored as null). */
struct tools_audit_entry {
  const char *kind;            /* "intent" or "result" */
  int64_t intent_seq;          /* result: the intent it closes; 0 otherwise */
  const char *call_id;
  const char *operator_mxid;
  const char *operator_device; /* Matrix device id */
  const char *verification;    /* "verified", "unverified", "blocked" ... */
  const char *room_id;
  const char *event_id;
  const char *tool;
  const cJSON *args;           /* canonicalised with mx_json_canonical */
  const char *decision;        /* "allow", "ask", "deny" */
  const char *approval_ref;    /* action id, NULL when none */
  const char *status;          /* result: "done", "timeout", "failed", "refused", "denied", "cancelled",
                                  "interrupted"; intent: "pending" */
  int exit_code;               /* -1 when not applicable */
  int signal;
  const char *output_sha256;   /* hex; NULL for intents */
  int64_t duration_ms;
  int64_t time_ms;             /* 0 = now */
  const char *operator_master_key; /* master key the operator was trusted under */
};

struct tools_audit_checkpoint {
  char origin[96];             /* "mxfleet-audit/<device>" */
  int64_t size;                /* records covered */
  uint8_t head[TOOLS_AUDIT_HASH_LEN];
  int64_t time_ms;
  uint8_t sig[64];
  int has_sig;
  char key_id[17];             /* hex of the first 8 bytes of SHA-256(public key) */
};

struct tools_audit_verify_report {
  int ok;                      /* 1 when nothing is wrong */
  int64_t rows;                /* records checked */
  int64_t first_bad_seq;       /* first modified / missing / misplaced seq, 0 when none */
  int64_t anchored_size;       /* size of the checkpoint compared, 0 when none */
  char message[512];           /* "ok: 120 records, head 3f2a..., anchored 118" or the problem */
};

mx_err tools_audit_open(const struct tools_audit_opts *o, struct tools_audit **out, char *err);
void tools_audit_close(struct tools_audit *a);
const char *tools_audit_device(const struct tools_audit *a);

/* Appends one record in its own committed transaction; *seq gets its seq.
 * Fails (and nothing is written) when the database is not writable. */
mx_err tools_audit_append(struct tools_audit *a, const struct tools_audit_entry *e, int64_t *seq, char *err);
/* Appends n records in one transaction (benchmarks, imports). */
mx_err tools_audit_append_batch(struct tools_audit *a, const struct tools_audit_entry *e, size_t n,
                                int64_t *first_seq, char *err);
/* Closes every "pending" intent that has no result with a result of status
 * "interrupted" (same call, operator and arguments): the process that wrote
 * the intent died while the call ran (kill -9, power cut), so whether it
 * ran is unknown; it is reported, never re-run. Only for the one process
 * that appends to this chain, at its start, before its first append; *closed
 * gets how many. */
mx_err tools_audit_close_interrupted(struct tools_audit *a, int *closed, char *err);
/* Current size and head hash (all zero for an empty chain). */
mx_err tools_audit_head(struct tools_audit *a, int64_t *size, uint8_t head[TOOLS_AUDIT_HASH_LEN], char *err);

/* Relinks from genesis and compares with the anchor: the given checkpoint,
 * or when NULL the latest stored one. Returns MX_OK when the check ran (see
 * rep->ok), an error code when it could not run. */
mx_err tools_audit_verify(struct tools_audit *a, const struct tools_audit_checkpoint *anchor,
                          struct tools_audit_verify_report *rep, char *err);

/* Signs (size, head, now), stores it as the latest checkpoint and appends it
 * to data_dir/audit/<device>.checkpoints. */
mx_err tools_audit_checkpoint(struct tools_audit *a, struct tools_audit_checkpoint *out, char *err);
/* Latest stored checkpoint; MX_ERR_NOT_FOUND when none. Its signature is
 * checked with this install's key. */
mx_err tools_audit_last_checkpoint(struct tools_audit *a, struct tools_audit_checkpoint *out, char *err);
/* Text form, for the alerts room:
 *   mxfleet-audit/<device>\n<size>\n<base64 head>\n<time ms>\n\n— <key id> <base64 sig>\n */
mx_err tools_audit_checkpoint_text(const struct tools_audit_checkpoint *c, struct mx_buf *out);
/* Parses the text form (an external checkpoint, e.g. from mxfleet-agent).
 * When pubkey (32 raw Ed25519 bytes) is given the signature must verify. */
mx_err tools_audit_checkpoint_parse(const char *text, const uint8_t *pubkey, struct tools_audit_checkpoint *out,
                                    char *err);
/* Another install's checkpoint as fetched: text must parse, be signed by
 * pub (32 raw Ed25519 bytes) and state exactly size and head_hex (the
 * values the reply claims). MX_ERR_AUTH otherwise. */
mx_err tools_audit_checkpoint_check(const char *text, const uint8_t pub[32], int64_t size, const char *head_hex,
                                    char *err);
/* Recomputes the hash of a record as /v1/audit and tools_audit_recent
 * return it (the record plus seq, prev_hash, hash): hex into hash_hex. */
mx_err tools_audit_record_hash(const cJSON *record, char hash_hex[2 * TOOLS_AUDIT_HASH_LEN + 1], char *err);
/* Reads the raw Ed25519 seed at path, creating it (0600, O_EXCL) when
 * missing: for a process that reads its key before dropping privileges. */
mx_err tools_audit_key_read(const char *path, uint8_t seed[32], char *err);
/* Signs with this seed from now on instead of the key file (opts.key_path). */
mx_err tools_audit_set_key(struct tools_audit *a, const uint8_t seed[32], char *err);
/* This install's public key (32 bytes) and key id. */
mx_err tools_audit_public_key(struct tools_audit *a, uint8_t pub[32], char key_id[17], char *err);

/* Records, newest last: the last n (n <= 0: all) or those at/after since_ms.
 * *out is an owned array of objects with seq, prev_hash, hash and the record
 * fields. */
mx_err tools_audit_recent(struct tools_audit *a, int n, cJSON **out, char *err);
mx_err tools_audit_since(struct tools_audit *a, int64_t since_ms, cJSON **out, char *err);

/* Closes the chain's database connection when no append used it for
 * idle_ms (the next call opens it again); for a periodic sweep. */
void tools_audit_release_idle(struct tools_audit *a, int64_t idle_ms);

/* Tests and tooling: the database path of this chain. */
const char *tools_audit_db_path(const struct tools_audit *a);

/* A stamp of the chain's files as they are on disk (inode, size, mtime and
 * ctime of the database, its WAL and the latest checkpoint): equal stamps
 * mean nothing wrote to them in between, so a periodic verify may skip a
 * chain whose stamp is the one it last verified. Writes cannot keep ctime. */
#define TOOLS_AUDIT_STAMP_LEN 256
void tools_audit_stamp(const struct tools_audit *a, char out[TOOLS_AUDIT_STAMP_LEN]);

#endif
