/*
 * bot/mx_ext.h - where the bot core meets the layers below it and E2EE:
 * per-identity E2EE (bot/crypto), the LLM agent (llm/) and the device's
 * tools engine (tools/ + devices/). The core calls only these functions, so
 * the sync loop, sends and commands stay independent of those modules.
 * Layer: bot; calls down into llm/, tools/, devices/ and bot/crypto.
 */
#ifndef MX_EXT_H
#define MX_EXT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "mx_bot.h"

struct mx_msg;

/* Whole-bot setup and teardown (LLM config, tools engines per device). */
mx_err mx_ext_init(struct mx_bot *bot, char *err);
/* Starts the periodic health checks on the loop (after identities start). */
void mx_ext_health_start(struct mx_bot *bot);
void mx_ext_free(struct mx_bot *bot);

/* Per identity, after login, on a worker: E2EE account, keys, cross-signing. */
mx_err mx_ext_ident_start(struct mx_ident *id, sqlite3 *db, char *err);
void mx_ext_ident_free(struct mx_ident *id);

/* Inside the sync transaction: to_device, device_lists, key counts. */
mx_err mx_ext_process_sync(struct mx_ident *id, sqlite3 *db, const cJSON *sync, char *err);
/* After the sync transaction: committed (then key upkeep, blocking, and
 * with sweep the crypto store's sweeps too) or rolled back (in-memory
 * crypto state reloaded). */
void mx_ext_sync_done(struct mx_ident *id, int committed, int sweep);
/* 1 when a sync response without rooms, to-device events or device list
 * changes needs nothing from the extensions (see mx_e2ee_sync_quiet). */
int mx_ext_sync_quiet(struct mx_ident *id, const cJSON *sync);
/* 1 when the crypto store's last sweep left work that is timed (see
 * mx_e2ee_store_waits): the caller keeps sweeping on its short timer. */
int mx_ext_sweep_waits(struct mx_ident *id);

struct mx_sender_info {
  char device_id[128];
  char sender_key[64];  /* curve25519 of the device that shared the session */
  char ed25519[64];     /* its ed25519, as claimed when the session was shared */
  int verified;         /* sender device cross-signed by its owner's pinned master key */
  int encrypted;        /* the event arrived encrypted */
};
/* Decrypts an m.room.encrypted event: *plain owned. MX_ERR_PENDING when the
 * key has not arrived (the event is queued and comes back through
 * mx_ext_take_ready). */
mx_err mx_ext_decrypt(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *event, cJSON **plain,
                      struct mx_sender_info *sender, char *err);
/* Queued encrypted events that became decryptable; *events owned (array). */
mx_err mx_ext_take_ready(struct mx_ident *id, sqlite3 *db, cJSON **events, char *err);
/* Encrypts content for room_id; *out owned. */
mx_err mx_ext_encrypt(struct mx_ident *id, const char *room_id, const char *type, const cJSON *content,
                      cJSON **out, char *err);
/* May the sender of m command this identity? reason says what to do if not. */
int mx_ext_sender_trusted(struct mx_ident *id, struct mx_msg *m, char *reason, size_t reason_len);
/* Records whether m, an operator's message (not a reaction), passed the
 * trust rules: an unencrypted reaction may approve only after a trusted
 * one (mx_ext_react.c). */
void mx_ext_note_writer(struct mx_msg *m, int trusted);
/* Posts text to the operator-alerts room (from a worker); logged too. */
void mx_ext_post_alert(struct mx_bot *bot, struct mx_worker *w, const char *text, const char *html);
/* Downloads (decrypting when needed) and transcribes the voice message m;
 * *text owned. */
mx_err mx_ext_transcribe(struct mx_msg *m, char **text, char *err);

/* A message that is not a built-in command: an LLM turn. Blocking. */
void mx_ext_handle_text(struct mx_msg *m);
/* Built-in commands provided by the lower layers (!reset, !pending, !cancel,
 * !stop, !audit, approve/deny). Returns 1 when it handled the message. */
int mx_ext_handle_command(struct mx_msg *m, const char *cmd, const char *args);
/* A reaction (✅/❌) on one of our notices; returns 1 when handled. */
int mx_ext_handle_reaction(struct mx_msg *m, const char *target_event_id, const char *key);
/* Extra lines for !status (LLM breaker states, backend). */
void mx_ext_status(struct mx_ident *id, struct mx_buf *out);

#endif
