/*
 * bot/crypto/e2ee_int.h - internals shared by the bot/crypto files; nothing
 * outside bot/crypto includes this.
 * In-memory libolm objects (account, Olm sessions, outbound Megolm sessions)
 * are authoritative while the process lives; each carries a generation
 * number so a late write of an older pickle never overwrites a newer one
 * (the sync thread and workers write through different connections).
 * Everything here is called with e->lock held unless stated otherwise.
 */
#ifndef E2EE_INT_H
#define E2EE_INT_H

#include <pthread.h>

#include <olm/olm.h>
#include <olm/pk.h>

#include "mx_e2ee.h"

#define E2EE_PICKLE_KEY_LEN 32
#define E2EE_OTK_TARGET 50
#define E2EE_MAX_OLM_PER_DEVICE 5 /* spec: keep at least 4; LRU beyond */
#define E2EE_DUMMY_INTERVAL_MS (3600 * 1000)
#define E2EE_FALLBACK_FORGET_MS (3600 * 1000)
/* After a fallback key upload, syncs that still say "no unused fallback
 * key" may have been computed before it: believe them only after this long
 * (a long-poll plus processing), or the key rotates twice and libolm,
 * which keeps two, forgets the one a peer may be using. */
#define E2EE_FALLBACK_GRACE_MS (120 * 1000)
#define E2EE_PENDING_MAX_AGE_MS ((int64_t)7 * 24 * 3600 * 1000)
#define E2EE_KEYREQ_RETRY_MS ((int64_t)10 * 60 * 1000)

struct e2ee_olm {            /* one Olm session with one remote device */
  struct e2ee_olm *next;
  char their_key[64];        /* remote curve25519 */
  char session_id[128];
  OlmSession *s;
  int64_t last_used_ms;
  int64_t gen;
  int dirty;
};

struct e2ee_outbound {       /* the current outbound Megolm session of a room */
  struct e2ee_outbound *next;
  char room_id[256];
  char session_id[128];
  OlmOutboundGroupSession *s;
  int64_t created_ms;
  int msg_count;
  int64_t gen;
  int dirty;
  int invalid;               /* rotate before the next send */
};

struct mx_e2ee {
  pthread_mutex_t lock;      /* libolm objects and the lists below */
  pthread_mutex_t send_lock; /* one encrypt/maintain at a time per identity */
  sqlite3 *db;               /* worker-side work: borrowed from the pool between
                                e2ee_db_enter and e2ee_db_leave, else NULL */
  char *db_path;
  pthread_mutex_t db_lock;   /* recursive; held from e2ee_db_enter to the matching
                                leave: db is one thread's at a time */
  int db_users;              /* nested e2ee_db_enter calls in progress */
  int joined;                /* e2ee_conn_join done (mx_e2ee_close parts) */
  struct mx_api *api;
  char *user_id, *device_id;
  char *label;               /* log lines' id=: the device name, else user_id */
  char *password;            /* optional, for UIA when cross-signing keys must be replaced */
  char *password_file;       /* optional, read only when UIA needs it */
  char **operators;
  char **operator_keys;      /* parallel: configured master key or NULL (TOFU) */
  char *config_path;         /* for the re-pin instruction, may be NULL */
  _Atomic int pins_pending;  /* a first-use pin may await its announcement: set at
                                open (a crash may have left one) and when this
                                identity pins; spares every command a write */
  _Atomic int ready_maybe;   /* a room key arrived since the last take_ready
                                (set at open: a crash may have left rows) */
  _Atomic int store_waits;   /* the last store sweep left rows that time alone
                                moves on (retries, expiries); set at open */
  size_t n_operators;
  int require_verified;
  int exclude_insecure;
  int64_t rotation_ms;
  int rotation_msgs;
  uint8_t pickle_key[E2EE_PICKLE_KEY_LEN];
  OlmAccount *acct;
  int64_t acct_gen;
  int acct_dirty;
  int keys_published;        /* the server holds this account's device keys (persisted) */
  char curve[64], ed[64];
  OlmUtility *util;
  struct e2ee_olm *olm;
  struct e2ee_olm *evicted;  /* to delete from the store at the next write */
  struct e2ee_outbound *out;
  /* set by process_sync, consumed by maintain */
  int64_t otk_count;         /* -1 unknown */
  int fallback_missing;
  int lists_changed;
  int64_t fallback_replaced_ms; /* 0: nothing to forget */
  int64_t fallback_rotated_ms;  /* last fallback upload (persisted), 0 never */
  /* tests only: replaces the PUT /sendToDevice (messages borrowed) */
  mx_err (*to_device_hook)(void *ctx, const char *type, const cJSON *messages, char *err);
  void *to_device_ctx;
};

/* e2ee_core.c */
void *e2ee_alloc(size_t n);  /* zeroed, NULL on OOM */
mx_err e2ee_olm_fail(char *err, const char *what, const char *olm_msg);
mx_err e2ee_pickle_key_load(const char *data_dir, uint8_t key[E2EE_PICKLE_KEY_LEN], char *err);
/* Pickles objects into malloc'd strings (NULL on failure). */
char *e2ee_pickle_account(struct mx_e2ee *e);
char *e2ee_pickle_session(struct mx_e2ee *e, OlmSession *s);
char *e2ee_pickle_outbound(struct mx_e2ee *e, OlmOutboundGroupSession *s);
char *e2ee_pickle_inbound(struct mx_e2ee *e, OlmInboundGroupSession *s);
OlmAccount *e2ee_unpickle_account(struct mx_e2ee *e, const char *pickle);
OlmSession *e2ee_unpickle_session(struct mx_e2ee *e, const char *pickle);
OlmOutboundGroupSession *e2ee_unpickle_outbound(struct mx_e2ee *e, const char *pickle);
OlmInboundGroupSession *e2ee_unpickle_inbound(struct mx_e2ee *e, const char *pickle);
OlmAccount *e2ee_new_account(void); /* NULL on OOM */
OlmSession *e2ee_new_session(void);
OlmOutboundGroupSession *e2ee_new_outbound(void);
OlmInboundGroupSession *e2ee_new_inbound(void);
void e2ee_free_account(OlmAccount *a);
void e2ee_free_session(OlmSession *s);
void e2ee_free_outbound(OlmOutboundGroupSession *s);
void e2ee_free_inbound(OlmInboundGroupSession *s);
/* Writes every dirty object through db (gen-guarded upserts). */
mx_err e2ee_persist_dirty(struct mx_e2ee *e, sqlite3 *db, char *err);
/* Worker-side flush: snapshots dirty pickles under e->lock (held by the
 * caller), releases it, writes through e->db, re-takes it. */
mx_err e2ee_flush_unlocked_write(struct mx_e2ee *e, char *err);
mx_err e2ee_load_state(struct mx_e2ee *e, char *err);
void e2ee_drop_sessions(struct mx_e2ee *e);

/* e2ee_trust.c */
/* Index of user in e->operators, -1 when not an operator. */
int e2ee_operator_index(const struct mx_e2ee *e, const char *user);
/* The master key trusted for operator op (malloc'd): configured, pinned, or
 * pinned now from seen (first use). NULL when none is known yet. */
char *e2ee_operator_pin(struct mx_e2ee *e, sqlite3 *db, int op, const char *seen, char *err);

/* e2ee_devices.c */
/* The single ed25519 key of a cross-signing key object with `usage` whose
 * user_id is user_id (borrowed from k), or NULL. */
const char *e2ee_xkey_pub(const cJSON *k, const char *user_id, const char *usage);

/* e2ee_members.c */
/* Sync side (inside the sync transaction): one m.room.member state; a gap
 * (limited timeline) makes the stored list unknown until seeded again. */
mx_err e2ee_members_event(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const char *user,
                          const char *membership, char *err);
mx_err e2ee_members_forget(struct mx_e2ee *e, sqlite3 *db, const char *room_id, char *err);
/* Send side: *users (owned) lists who gets the room key, from the store, or
 * seeded with one GET /members when the room's list is not known. */
mx_err e2ee_members_get(struct mx_e2ee *e, const char *room_id, cJSON **users, char *err);

/* e2ee_conn.c: connections borrowed from a process-wide pool per file.
 * mx_e2ee_open joins its file's pool and mx_e2ee_close parts from it; the
 * last to part closes the idle connections. Every entry point that works
 * through e->db brackets the work with enter/leave (nestable; one thread
 * of the identity at a time, the others wait; e->db is valid in between). */
mx_err e2ee_conn_join(const char *path, char *err);
void e2ee_conn_part(const char *path);
mx_err e2ee_db_enter(struct mx_e2ee *e, char *err);
/* as e2ee_db_enter, but MX_ERR_CONFLICT at once when another thread has it */
mx_err e2ee_db_try_enter(struct mx_e2ee *e, char *err);
void e2ee_db_leave(struct mx_e2ee *e);

/* e2ee_db.c */
mx_err e2ee_db_migrate(sqlite3 *db, char *err);
/* Runs sql with text binds (NULL binds NULL); int64 binds via "%i" not
 * supported: use the typed helpers below. */
mx_err e2ee_db_run(sqlite3 *db, char *err, const char *sql, int n, const char *const *texts);
/* First column of the first row as a malloc'd string, NULL when no row. */
char *e2ee_db_text(sqlite3 *db, const char *sql, int n, const char *const *texts);
int64_t e2ee_db_int(sqlite3 *db, const char *sql, int n, const char *const *texts, int64_t dflt);
mx_err e2ee_db_begin(sqlite3 *db, char *err);

/* e2ee_sign.c */
mx_err e2ee_sign_json(struct mx_e2ee *e, cJSON *obj, char *err);
mx_err e2ee_pk_sign_json(const uint8_t seed[32], const char *pub, const char *user_id, cJSON *obj,
                         char *err);
/* Checks obj's signature by user_id with "ed25519:<key_id>" = pubkey.
 * MX_ERR_AUTH when missing or wrong. Never modifies obj. */
mx_err e2ee_verify_json(OlmUtility *u, const cJSON *obj, const char *user_id, const char *key_id,
                        const char *pubkey, char *err);
/* libolm-safe ed25519 verify: copies the message and signature first. */
mx_err e2ee_ed25519_verify(OlmUtility *u, const char *pubkey, const char *msg, size_t msg_len,
                           const char *sig, char *err);

/* e2ee_keys.c */
typedef mx_err (*e2ee_upload_fn)(void *ctx, const cJSON *body, int64_t *otk_count, char *err);
mx_err e2ee_keys_publish(struct mx_e2ee *e, e2ee_upload_fn up, void *ctx, int with_device_keys,
                         char *err);
mx_err e2ee_api_upload(void *ctx, const cJSON *body, int64_t *otk_count, char *err);
cJSON *e2ee_device_keys_json(struct mx_e2ee *e, char *err);

/* e2ee_xsign.c */
mx_err e2ee_xsign_bootstrap(struct mx_e2ee *e, char *err);
mx_err e2ee_seal(const uint8_t key[32], const uint8_t *plain, size_t n, char **out_b64, char *err);
mx_err e2ee_unseal(const uint8_t key[32], const char *b64, uint8_t *plain, size_t n, char *err);

/* e2ee_devices.c (worker side, e->lock NOT held; uses e->db) */
mx_err e2ee_devices_query(struct mx_e2ee *e, const char *const *users, size_t n, int force, char *err);
mx_err e2ee_devices_ingest(struct mx_e2ee *e, sqlite3 *db, const cJSON *resp, const char *const *users,
                           size_t n, char *err);
int e2ee_device_verified(struct mx_e2ee *e, sqlite3 *db, const char *user_id, const char *device_id);

/* e2ee_olm.c */
struct e2ee_olm *e2ee_olm_find_best(struct mx_e2ee *e, const char *their_key);
mx_err e2ee_olm_encrypt(struct mx_e2ee *e, struct e2ee_olm *o, const char *recipient,
                        const char *recipient_ed, const char *type, const cJSON *content,
                        cJSON **ciphertext_obj, char *err);
mx_err e2ee_olm_decrypt_event(struct mx_e2ee *e, sqlite3 *db, const cJSON *ev, cJSON **plain,
                              char *sender_key_out, char *err);
mx_err e2ee_olm_claim(struct mx_e2ee *e, const char *const *users, const char *const *devs,
                      size_t n, char *err);
mx_err e2ee_olm_new_outbound(struct mx_e2ee *e, const char *their_curve, const char *their_otk,
                             struct e2ee_olm **out, char *err);

/* e2ee_megolm_in.c */
mx_err e2ee_room_key_received(struct mx_e2ee *e, sqlite3 *db, const char *sender,
                              const char *sender_key, const char *ed25519, const cJSON *content,
                              char *err);

int e2ee_inbound_id_is(OlmInboundGroupSession *s, const char *want);
/* Stores an inbound session under (room, sid) unless a copy from another
 * original device is already there or the stored one reaches as far back;
 * marks queued events ready and settles the key request. s is borrowed. */
mx_err e2ee_inbound_store(struct mx_e2ee *e, sqlite3 *db, const char *room, const char *sid, const char *sender,
                          const char *sender_key, const char *ed25519, OlmInboundGroupSession *s, char *err);

/* e2ee_forward.c (sync side, caller's transaction) */
mx_err e2ee_forwarded_key_received(struct mx_e2ee *e, sqlite3 *db, const char *sender, const char *olm_key,
                                   const char *olm_ed25519, const cJSON *content, char *err);
/* maintain side: answers recorded requests of our own verified devices */
mx_err e2ee_forward_answer(struct mx_e2ee *e, char *err);

/* e2ee_keyreq.c: sync side records, maintain side (e->lock NOT held) sends */
/* Sync side: an m.room_key.withheld from sender stops our requests for it. */
mx_err e2ee_keyreq_withheld(struct mx_e2ee *e, sqlite3 *db, const char *sender, const cJSON *content, char *err);
mx_err e2ee_keyreq_want(struct mx_e2ee *e, sqlite3 *db, const char *room, const char *sid, const char *sender,
                        const char *sender_key, char *err);
mx_err e2ee_keyreq_arrived(struct mx_e2ee *e, sqlite3 *db, const char *room, const char *sid, char *err);
mx_err e2ee_keyreq_incoming(struct mx_e2ee *e, sqlite3 *db, const cJSON *ev, char *err);
mx_err e2ee_keyreq_maintain(struct mx_e2ee *e, char *err);

/* e2ee_megolm_out.c */
/* Sync side: the room's m.room.encryption content (rotation limits). */
mx_err e2ee_room_encryption_state(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const cJSON *c, char *err);
/* Worker side (e->db): the rotation limits in force for room_id: the
 * stricter of ours and the room's. */
void e2ee_room_rotation(struct mx_e2ee *e, const char *room_id, int64_t *ms, int64_t *msgs);
/* 0 when history_visibility is "joined": invited users get no room keys. */
int e2ee_room_keys_for_invited(struct mx_e2ee *e, const char *room_id);
mx_err e2ee_room_changed(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const char *why);
mx_err e2ee_send_to_device(struct mx_e2ee *e, const char *type, cJSON *messages, char *err);

#endif
