/*
 * bot/mx_store.h - the bot's own tables in the shared SQLite database:
 * identities (token, device, next_batch), rooms, pending room actions, the
 * inbox ledger of every event handled (exactly-once), and the outbox of
 * sends with their transaction IDs (stored before the first attempt).
 * Every function takes the calling thread's connection; none opens one.
 */
#ifndef MX_STORE_H
#define MX_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#include "mx_err.h"

mx_err mx_store_migrate(sqlite3 *db, char *err);

struct mx_store_ident {
  char *device_id, *access_token, *next_batch, *filter_id;
  int displayname_set, first_sync_done;
};
/* MX_ERR_NOT_FOUND when the identity never logged in. */
mx_err mx_store_ident_load(sqlite3 *db, const char *user_id, struct mx_store_ident *out, char *err);
void mx_store_ident_release(struct mx_store_ident *r);
mx_err mx_store_ident_save_login(sqlite3 *db, const char *user_id, const char *device_id,
                                 const char *token, char *err);
mx_err mx_store_ident_set(sqlite3 *db, const char *user_id, const char *column, const char *value, char *err);
mx_err mx_store_ident_set_int(sqlite3 *db, const char *user_id, const char *column, int64_t value, char *err);

/* Rooms */
mx_err mx_store_room_upsert(sqlite3 *db, const char *user_id, const char *room_id, const char *membership,
                            char *err);
mx_err mx_store_room_set_int(sqlite3 *db, const char *user_id, const char *room_id, const char *column,
                             int64_t v, char *err);
/* Reads an integer column of a room, 0 when absent. */
int64_t mx_store_room_get_int(sqlite3 *db, const char *user_id, const char *room_id, const char *column);

/* Room actions decided while processing a sync, done after its commit. */
mx_err mx_store_action_add(sqlite3 *db, const char *user_id, const char *room_id, const char *action,
                           const char *arg, char *err);

/* Inbox: returns MX_OK with *is_new = 1 when the event was not seen before. */
struct mx_inbox_item {
  const char *event_id, *room_id, *sender, *sender_device, *body, *content_json;
  int64_t origin_ts;
  int verified;
  int encrypted;
  const char *sender_key, *sender_ed25519;
  const char *state; /* "new", "seen" (history before first sync), "ignored" */
};
mx_err mx_store_inbox_add(sqlite3 *db, const char *user_id, const struct mx_inbox_item *it, int *is_new,
                          char *err);
mx_err mx_store_inbox_set_state(sqlite3 *db, const char *user_id, const char *event_id, const char *state,
                                const char *note, char *err);

/* Outbox: the transaction ID for (user, key) is created once and reused. */
mx_err mx_store_outbox_txn(sqlite3 *db, const char *user_id, const char *key, const char *room_id,
                           char txn_out[40], int *already_sent, char *event_id_out, size_t event_id_len,
                           char *err);
mx_err mx_store_outbox_sent(sqlite3 *db, const char *txn_id, const char *event_id, char *err);
/* A send that failed for a reason that passes (no answer, 5xx, 429, a
 * shutdown) keeps its event type and plaintext content beside its txn, so
 * mx_send_flush_held sends it later under the same txn. */
mx_err mx_store_outbox_hold(sqlite3 *db, const char *txn_id, const char *type, const char *content_json,
                            char *err);
struct mx_store_held {
  char *txn_id, *room_id, *type, *content; /* owned: mx_store_held_release */
};
/* Up to max kept sends of user_id, oldest first; those created before
 * since_ms are dropped (no longer kept). */
mx_err mx_store_outbox_held(sqlite3 *db, const char *user_id, int64_t since_ms, struct mx_store_held *out,
                            size_t max, size_t *n, char *err);
void mx_store_held_release(struct mx_store_held *h, size_t n);

#endif
