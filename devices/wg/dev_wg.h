/*
 * dev_wg.h - the "wg" device backend: signed HTTP (libcurl) to mxfleet-agent
 * at its WireGuard address. The agent enforces the device's own manifest and
 * keeps its own audit chain; this side also fetches the agent's signed audit
 * checkpoints and stores them (SQLite, <data_dir>/mxfleet.db, module
 * "dev_wg"), so a rewound or truncated agent chain is detected.
 * Retries only idempotent reads (health, checkpoint, audit); a tool call is
 * never resent, since it may have run. Layer: devices/; common/ and
 * devices/wg/sign only. cJSON: call args borrowed; health info owned by the
 * caller; *status_text owned by the caller (free()).
 */
#ifndef DEV_WG_H
#define DEV_WG_H

#include "dev.h"

/* Checks only tools/ can make (devices/ never calls upward); the bot wires
 * tools_audit_checkpoint_check and tools_audit_record_hash. */
struct dev_wg_audit_checks {
  /* MX_OK when text is a checkpoint signed by pub (32 raw Ed25519 bytes)
   * stating exactly size and head_hex. */
  mx_err (*checkpoint)(const char *text, const uint8_t pub[32], int64_t size, const char *head_hex, char *err);
  /* The hash (64 hex + NUL) of a fetched record, recomputed from its
   * fields, seq and prev_hash. */
  mx_err (*record_hash)(const cJSON *record, char hash_hex[65], char *err);
};

struct dev_wg_config {
  const char *url;        /* "http://198.51.100.2:7443" (no trailing slash needed) */
  const char *key_file;   /* per-device HMAC key shared with the agent (0600) */
  const char *data_dir;   /* for <data_dir>/mxfleet.db */
  const char *device;     /* names the device in the checkpoint store and logs */
  int connect_timeout_ms; /* 0 means 5000 */
  const struct dev_wg_audit_checks *audit_checks; /* borrowed; NULL: dev_wg_check_audit cannot vouch (error) */
};

/* Copies cfg and loads the key; the database is opened per check. */
mx_err dev_wg_new(const struct dev_wg_config *cfg, struct dev_backend **out, char *err);

/*
 * Health monitor hook: fetches the agent's current checkpoint, verifies its
 * Ed25519 signature and that the key is the one seen first (pinned in the
 * store), compares it with the last stored checkpoint, recomputing every
 * record between the two (a chain that grew must link the anchored head to
 * the new one), and stores it.
 *   MX_OK           consistent; *status_text e.g. "ok: 42 records (was 40)"
 *   MX_ERR_TAMPERED truncated, rewound/rewritten, badly signed, or the signing key changed;
 *                   *status_text says which ("truncated: have 37, anchored 42")
 *   other codes     could not check (agent down, ...), err says why.
 */
mx_err dev_wg_check_audit(struct dev_backend *b, char **status_text, char *err);

/* One signed request (tests, tooling): method, target (path + query),
 * body (may be NULL). Fills *status and resp (capped). No retries. */
mx_err dev_wg_request(struct dev_backend *b, const char *method, const char *target, const char *body, size_t n,
                      long *status, struct mx_buf *resp, char *err);

#endif
