/*
 * bot/crypto/mx_e2ee.h - end-to-end encryption for one Matrix identity:
 * Olm account, device lists, Olm and Megolm sessions, cross-signing, command
 * trust and encrypted attachments, all persisted in the bot's SQLite file.
 * Layer: bot/ (calls common/ and bot/mx_api.h only; never llm/tools/devices).
 * Thread model: one struct per identity, internally locked (libolm objects
 * are not thread-safe). Sync-side calls take the caller's connection inside
 * its open transaction; worker-side calls use a private connection and never
 * hold the crypto lock while waiting for SQLite's write lock.
 * Ownership: every `const cJSON *` argument is borrowed; `cJSON **` outputs
 * are owned by the caller (cJSON_Delete).
 */
#ifndef MX_E2EE_H
#define MX_E2EE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "mx_api.h"
#include "mx_buf.h"
#include "mx_err.h"

struct mx_e2ee;

struct mx_e2ee_opts {
  const char *db_path;      /* the bot's database file */
  const char *data_dir;     /* holds e2ee-pickle.key (0600, random per install) */
  const char *user_id;
  const char *device_id;
  struct mx_api *api;       /* borrowed, thread-safe, must outlive the struct */
  const char *password;     /* optional (copied): lets start() replace cross-signing
                               keys it no longer holds (store lost) via UIA */
  const char *password_file; /* optional alternative: read only when UIA needs it */
  const char *const *operators;
  const char *const *operator_master_keys; /* parallel, may be NULL; NULL entry = TOFU */
  size_t n_operators;
  const char *config_path;  /* named in the re-pin instruction; may be NULL */
  int require_verified_sender; /* 1 (default on in config) */
  int exclude_insecure_devices; /* 1: devices not cross-signed by their owner get
                                   m.room_key.withheld m.unverified, not keys */
  int64_t rotation_period_ms;  /* 0 = 7 days */
  int rotation_period_msgs;    /* 0 = 100 */
  const char *label;        /* names the identity in log lines (the device name); NULL = user_id */
};

/* Who sent a decrypted event, as proven by the Megolm session's Olm delivery. */
struct mx_e2ee_sender {
  char user_id[256];
  char device_id[128];       /* the stored device whose keys carried the session;
                                else the id claimed in the event (checked by
                                mx_e2ee_sender_trusted) */
  char sender_key[64];       /* curve25519 of the device that shared the session */
  char ed25519[64];          /* ed25519 claimed when the session was shared */
  int verified;              /* advisory: device known, keys match, cross-signed under the
                                pinned master key; mx_e2ee_sender_trusted decides and
                                writes back the state its decision used */
  char master_key[64];       /* set by mx_e2ee_sender_trusted: the operator master key
                                trusted for the decision ("" when none) */
  uint32_t message_index;
};

/* Loads or creates the Olm account (pickle key from data_dir), applies the
 * "e2ee" migrations. No network. Exactly one per identity per process. */
mx_err mx_e2ee_open(const struct mx_e2ee_opts *o, struct mx_e2ee **out, char *err);
void mx_e2ee_close(struct mx_e2ee *e);
/* After a new login (the stored token was rejected): the same object
 * becomes device_id's, with a fresh account (the old crypto state is
 * forgotten, as at open). Blocks senders meanwhile; no network. */
mx_err mx_e2ee_switch_device(struct mx_e2ee *e, const char *device_id, char *err);
const char *mx_e2ee_device_id(const struct mx_e2ee *e);
/* Identity keys of this device (valid while e lives). */
const char *mx_e2ee_curve25519(const struct mx_e2ee *e);
const char *mx_e2ee_ed25519(const struct mx_e2ee *e);

/* After login, blocking (worker): device keys, one-time keys (~50), fallback
 * key, cross-signing bootstrap and own-device signature. since_token (the
 * stored next_batch, NULL on the very first start) needs no /keys/changes:
 * the first sync from it reports every device-list change since. */
mx_err mx_e2ee_start(struct mx_e2ee *e, const char *since_token, char *err);

/* Sync worker, inside the caller's open transaction on db: to_device first,
 * then device_lists, one-time key counts, fallback key types, membership and
 * history-visibility changes. Nothing here touches the network. */
mx_err mx_e2ee_process_sync(struct mx_e2ee *e, sqlite3 *db, const cJSON *sync_response, char *err);
/* For a sync response with no to-device events, device list changes or
 * rooms (the caller checks): notes its key counts and returns 1 when the
 * crypto state needs nothing stored or done for it (nothing unsaved, no
 * key upkeep due), so the caller may skip mx_e2ee_process_sync and
 * mx_e2ee_maintain_keys for it; 0 otherwise (then call them). */
int mx_e2ee_sync_quiet(struct mx_e2ee *e, const cJSON *sync_response);
/* The caller rolled back its sync transaction: drop in-memory state so it is
 * reloaded from what was committed. */
void mx_e2ee_sync_aborted(struct mx_e2ee *e);
/* After each committed sync (blocking while it works): replenish one-time
 * keys, replace a used fallback key, forget the previous one after an hour,
 * unwedge (m.dummy), send/retry/cancel m.room_key_request for queued events
 * and answer our own verified devices' requests. Cheap when there is nothing to do; returns at once when
 * an encrypt is sharing keys (the next call catches up). */
mx_err mx_e2ee_maintain(struct mx_e2ee *e, char *err);
/* Only the one-time and fallback key part of mx_e2ee_maintain, which needs
 * no store access: for a sync that changed nothing in the store, when the
 * sweeps (unwedging, key requests, expiry) have nothing new to act on. */
mx_err mx_e2ee_maintain_keys(struct mx_e2ee *e, char *err);
/* 1 when the last mx_e2ee_maintain left rows in the store that time alone
 * moves on (an unwedging, key request retries, queued events to expire,
 * key shares to answer), or none ran yet: the caller sweeps again on its
 * timer. 0: nothing waits; sweep again when a sync batch writes. */
int mx_e2ee_store_waits(struct mx_e2ee *e);

/* Sync worker, caller's transaction: decrypts one m.room.encrypted event.
 * *plain (owned) = {type, content, room_id}. MX_ERR_PENDING: no key yet, the
 * event was queued and comes back from mx_e2ee_take_ready. A Megolm index
 * already seen under another event id: MX_ERR_CRYPTO. */
mx_err mx_e2ee_decrypt(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const cJSON *event,
                       cJSON **plain, struct mx_e2ee_sender *sender, char *err);
/* Queued events whose keys arrived: owned array of the original events (with
 * room_id added); each is returned once. */
mx_err mx_e2ee_take_ready(struct mx_e2ee *e, sqlite3 *db, cJSON **events, char *err);

/* Worker, blocking: shares the room's outbound session with every device of
 * every joined member (rotating as needed), then encrypts. *out (owned) is
 * the m.room.encrypted content to PUT. */
mx_err mx_e2ee_encrypt(struct mx_e2ee *e, const char *room_id, const char *event_type,
                       const cJSON *content, cJSON **out, char *err);

/* Worker, blocking (may /keys/query): 1 when the sender may issue commands:
 * an operator, the device's keys match the session that carried the event,
 * and (with require_verified_sender) the device is signed by the operator's
 * self-signing key under the master key pinned on first contact. 0 otherwise,
 * with a human-readable reason for the refusal notice. */
int mx_e2ee_sender_trusted(struct mx_e2ee *e, struct mx_e2ee_sender *s, char *reason, size_t reason_len);

/* ---- operator trust root (e2ee_trust.c); usable without an mx_e2ee (CLI) ---- */
struct mx_e2ee_pin {
  char master_key[64];  /* pinned key, "" when none yet */
  char source[16];      /* "tofu", "pin", "repin" or "" */
  int64_t pinned_ms;
  char seen_master[64]; /* what the homeserver last published to the bot, "" unknown */
};
/* Applies the "e2ee" migrations to db (the CLI, without an identity). */
mx_err mx_e2ee_migrate(sqlite3 *db, char *err);
mx_err mx_e2ee_pin_get(sqlite3 *db, const char *user_id, struct mx_e2ee_pin *out, char *err);
/* Pins master_key for user_id (source "pin" or "repin") for every identity
 * in db; each re-checks the user's keys at its next trust decision. */
mx_err mx_e2ee_pin_set(sqlite3 *db, const char *user_id, const char *master_key, const char *source, char *err);
/* POST /keys/query for user_id: the master key it publishes, into out. */
mx_err mx_e2ee_published_master(struct mx_api *api, const char *user_id, char *out, size_t n, char *err);
/* First-use pins not yet announced (owned array of {user_id, master_key});
 * each is returned once across all identities of the file. */
mx_err mx_e2ee_take_new_pins(struct mx_e2ee *e, cJSON **out, char *err);

/* Encrypted attachments (v2, AES-256-CTR, SHA-256 of the ciphertext checked
 * before anything is decrypted). file_info is the event's `file` object. */
mx_err mx_e2ee_attachment_decrypt(const cJSON *file_info, const void *ciphertext, size_t n,
                                  struct mx_buf *plain, char *err);
/* *file_info (owned) lacks "url": the caller adds it after uploading. */
mx_err mx_e2ee_attachment_encrypt(const void *plain, size_t n, struct mx_buf *ciphertext,
                                  cJSON **file_info, char *err);
/* Downloads (authenticated media) and decrypts in one go. */
mx_err mx_e2ee_attachment_fetch(struct mx_api *api, const cJSON *file_info, size_t max,
                                struct mx_buf *plain, char *err);

#endif
