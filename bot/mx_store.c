/* bot/mx_store.c - the bot's tables and their numbered migrations. */
#include "mx_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_util.h"

static const struct mx_migration migrations[] = {
  { 1,
    "CREATE TABLE identities(user_id TEXT PRIMARY KEY, device_id TEXT, access_token TEXT,"
    "  next_batch TEXT, filter_id TEXT, displayname_set INTEGER NOT NULL DEFAULT 0,"
    "  first_sync_done INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE rooms(user_id TEXT NOT NULL, room_id TEXT NOT NULL, membership TEXT NOT NULL,"
    "  is_dm INTEGER NOT NULL DEFAULT 0, encrypted INTEGER NOT NULL DEFAULT 0,"
    "  is_alerts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(user_id, room_id));"
    "CREATE TABLE room_actions(id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,"
    "  room_id TEXT NOT NULL, action TEXT NOT NULL, arg TEXT, done INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE inbox(user_id TEXT NOT NULL, event_id TEXT NOT NULL, room_id TEXT NOT NULL,"
    "  sender TEXT NOT NULL, sender_device TEXT, verified INTEGER NOT NULL DEFAULT 0,"
    "  origin_ts INTEGER NOT NULL, received_ts INTEGER NOT NULL, body TEXT, content TEXT,"
    "  state TEXT NOT NULL, note TEXT, updated_ts INTEGER, PRIMARY KEY(user_id, event_id));"
    "CREATE INDEX inbox_state ON inbox(user_id, state);"
    "CREATE TABLE outbox(txn_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, key TEXT NOT NULL,"
    "  room_id TEXT NOT NULL, event_id TEXT, created_ts INTEGER NOT NULL, sent_ts INTEGER,"
    "  UNIQUE(user_id, key));" },
  { 2,
    "ALTER TABLE inbox ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE inbox ADD COLUMN sender_key TEXT;"
    "ALTER TABLE inbox ADD COLUMN sender_ed25519 TEXT;" },
  { 3, /* a send the homeserver refused for a while is kept to be sent later */
    "ALTER TABLE outbox ADD COLUMN type TEXT;"
    "ALTER TABLE outbox ADD COLUMN content TEXT;"
    "CREATE INDEX outbox_held ON outbox(user_id) WHERE content IS NOT NULL;" },
};

mx_err mx_store_migrate(sqlite3 *db, char *err)
{
  return mx_db_migrate(db, "bot", migrations, (int)(sizeof(migrations) / sizeof(migrations[0])), err);
}

mx_err mx_store_ident_load(sqlite3 *db, const char *user_id, struct mx_store_ident *out, char *err)
{
  memset(out, 0, sizeof(*out));
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_query(db, &st, err,
                          "SELECT device_id, access_token, next_batch, filter_id, displayname_set,"
                          " first_sync_done FROM identities WHERE user_id=?", "s", user_id);
  if (rc)
    return rc;
  out->device_id = mx_db_col_str(st, 0);
  out->access_token = mx_db_col_str(st, 1);
  out->next_batch = mx_db_col_str(st, 2);
  out->filter_id = mx_db_col_str(st, 3);
  out->displayname_set = sqlite3_column_int(st, 4);
  out->first_sync_done = sqlite3_column_int(st, 5);
  sqlite3_finalize(st);
  if (!out->access_token || !out->device_id) {
    mx_store_ident_release(out);
    return MX_ERR_NOT_FOUND;
  }
  return MX_OK;
}

void mx_store_ident_release(struct mx_store_ident *r)
{
  free(r->device_id);
  /* the token is a secret: wipe before freeing */
  if (r->access_token) {
    memset(r->access_token, 0, strlen(r->access_token));
    free(r->access_token);
  }
  free(r->next_batch);
  free(r->filter_id);
  memset(r, 0, sizeof(*r));
}

mx_err mx_store_ident_save_login(sqlite3 *db, const char *user_id, const char *device_id,
                                 const char *token, char *err)
{
  /* A new login is a new device: everything tied to the old one restarts. */
  return mx_db_run(db, err,
                   "INSERT INTO identities(user_id, device_id, access_token) VALUES(?,?,?)"
                   " ON CONFLICT(user_id) DO UPDATE SET device_id=excluded.device_id,"
                   " access_token=excluded.access_token, next_batch=NULL, filter_id=NULL,"
                   " first_sync_done=0",
                   "sss", user_id, device_id, token);
}

static int column_ok(const char *c)
{
  static const char *ok[] = { "next_batch", "filter_id", "displayname_set", "first_sync_done",
                              "access_token", "is_dm", "encrypted", "is_alerts" };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    if (strcmp(c, ok[i]) == 0)
      return 1;
  return 0;
}

mx_err mx_store_ident_set(sqlite3 *db, const char *user_id, const char *column, const char *value, char *err)
{
  if (!column_ok(column))
    return mx_fail(MX_ERR_INTERNAL, err, "store: unknown column '%s'", column);
  char sql[128];
  snprintf(sql, sizeof(sql), "UPDATE identities SET %s=? WHERE user_id=?", column);
  return mx_db_run(db, err, sql, "ss", value, user_id);
}

mx_err mx_store_ident_set_int(sqlite3 *db, const char *user_id, const char *column, int64_t value, char *err)
{
  if (!column_ok(column))
    return mx_fail(MX_ERR_INTERNAL, err, "store: unknown column '%s'", column);
  char sql[128];
  snprintf(sql, sizeof(sql), "UPDATE identities SET %s=? WHERE user_id=?", column);
  return mx_db_run(db, err, sql, "is", value, user_id);
}

mx_err mx_store_room_upsert(sqlite3 *db, const char *user_id, const char *room_id, const char *membership,
                            char *err)
{
  return mx_db_run(db, err,
                   "INSERT INTO rooms(user_id, room_id, membership) VALUES(?,?,?)"
                   " ON CONFLICT(user_id, room_id) DO UPDATE SET membership=excluded.membership",
                   "sss", user_id, room_id, membership);
}

mx_err mx_store_room_set_int(sqlite3 *db, const char *user_id, const char *room_id, const char *column,
                             int64_t v, char *err)
{
  if (!column_ok(column))
    return mx_fail(MX_ERR_INTERNAL, err, "store: unknown column '%s'", column);
  char sql[160];
  snprintf(sql, sizeof(sql),
           "INSERT INTO rooms(user_id, room_id, membership, %s) VALUES(?,?,'join',?)"
           " ON CONFLICT(user_id, room_id) DO UPDATE SET %s=excluded.%s", column, column, column);
  return mx_db_run(db, err, sql, "ssi", user_id, room_id, v);
}

int64_t mx_store_room_get_int(sqlite3 *db, const char *user_id, const char *room_id, const char *column)
{
  if (!column_ok(column))
    return 0;
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT %s FROM rooms WHERE user_id=? AND room_id=?", column);
  sqlite3_stmt *st = NULL;
  if (mx_db_query(db, &st, NULL, sql, "ss", user_id, room_id))
    return 0;
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

mx_err mx_store_action_add(sqlite3 *db, const char *user_id, const char *room_id, const char *action,
                           const char *arg, char *err)
{
  return mx_db_run(db, err, "INSERT INTO room_actions(user_id, room_id, action, arg) VALUES(?,?,?,?)",
                   "ssss", user_id, room_id, action, arg);
}

mx_err mx_store_inbox_add(sqlite3 *db, const char *user_id, const struct mx_inbox_item *it, int *is_new,
                          char *err)
{
  mx_err rc = mx_db_run(db, err,
                        "INSERT INTO inbox(user_id, event_id, room_id, sender, sender_device, verified,"
                        " origin_ts, received_ts, body, content, state, encrypted, sender_key, sender_ed25519)"
                        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(user_id, event_id) DO NOTHING",
                        "sssssdiisssdss", user_id, it->event_id, it->room_id, it->sender, it->sender_device,
                        it->verified, it->origin_ts, mx_now_ms(), it->body, it->content_json, it->state,
                        it->encrypted, it->sender_key, it->sender_ed25519);
  if (!rc)
    *is_new = sqlite3_changes(db) > 0;
  return rc;
}

mx_err mx_store_inbox_set_state(sqlite3 *db, const char *user_id, const char *event_id, const char *state,
                                const char *note, char *err)
{
  return mx_db_run(db, err, "UPDATE inbox SET state=?, note=?, updated_ts=? WHERE user_id=? AND event_id=?",
                   "ssiss", state, note, mx_now_ms(), user_id, event_id);
}

mx_err mx_store_outbox_txn(sqlite3 *db, const char *user_id, const char *key, const char *room_id,
                           char txn_out[40], int *already_sent, char *event_id_out, size_t event_id_len,
                           char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_query(db, &st, err, "SELECT txn_id, event_id FROM outbox WHERE user_id=? AND key=?", "ss",
                          user_id, key);
  if (rc == MX_OK) {
    snprintf(txn_out, 40, "%s", (const char *)sqlite3_column_text(st, 0));
    const unsigned char *ev = sqlite3_column_text(st, 1);
    *already_sent = ev != NULL;
    if (ev && event_id_out)
      snprintf(event_id_out, event_id_len, "%s", (const char *)ev);
    sqlite3_finalize(st);
    return MX_OK;
  }
  if (rc != MX_ERR_NOT_FOUND)
    return rc;
  /* Stored before the first attempt: a retry (or a re-run after a crash)
   * reuses it, and the homeserver deduplicates by transaction ID. */
  char rnd[17];
  if (mx_random_alnum(rnd, 16))
    return MX_ERR_CRYPTO;
  snprintf(txn_out, 40, "mxf%lld%s", (long long)mx_now_ms(), rnd);
  *already_sent = 0;
  return mx_db_run(db, err, "INSERT INTO outbox(txn_id, user_id, key, room_id, created_ts) VALUES(?,?,?,?,?)",
                   "ssssi", txn_out, user_id, key, room_id, mx_now_ms());
}

mx_err mx_store_outbox_sent(sqlite3 *db, const char *txn_id, const char *event_id, char *err)
{
  return mx_db_run(db, err, "UPDATE outbox SET event_id=?, sent_ts=?, content=NULL WHERE txn_id=?", "sis",
                   event_id, mx_now_ms(), txn_id);
}

mx_err mx_store_outbox_hold(sqlite3 *db, const char *txn_id, const char *type, const char *content_json,
                            char *err)
{
  return mx_db_run(db, err, "UPDATE outbox SET type=?, content=? WHERE txn_id=? AND event_id IS NULL", "sss", type,
                   content_json, txn_id);
}

mx_err mx_store_outbox_held(sqlite3 *db, const char *user_id, int64_t since_ms, struct mx_store_held *out,
                            size_t max, size_t *n, char *err)
{
  *n = 0;
  sqlite3_stmt *st = NULL;
  /* read-only when nothing is kept: this runs after every sync */
  mx_err rc = mx_db_query(db, &st, err, "SELECT txn_id, room_id, type, content, created_ts FROM outbox WHERE"
                                        " user_id=? AND content IS NOT NULL AND event_id IS NULL ORDER BY created_ts",
                          "s", user_id);
  if (rc == MX_ERR_NOT_FOUND)
    return MX_OK;
  if (rc)
    return rc;
  int old = 0;
  do {
    if (sqlite3_column_int64(st, 4) < since_ms) {
      old = 1; /* answers a question nobody is waiting for any more */
      continue;
    }
    struct mx_store_held *h = &out[*n];
    h->txn_id = mx_db_col_str(st, 0);
    h->room_id = mx_db_col_str(st, 1);
    h->type = mx_db_col_str(st, 2);
    h->content = mx_db_col_str(st, 3);
    (*n)++;
  } while (*n < max && sqlite3_step(st) == SQLITE_ROW);
  sqlite3_finalize(st);
  if (old)
    rc = mx_db_run(db, err, "UPDATE outbox SET content=NULL WHERE user_id=? AND content IS NOT NULL AND created_ts < ?",
                   "si", user_id, since_ms);
  return rc;
}

void mx_store_held_release(struct mx_store_held *h, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(h[i].txn_id);
    free(h[i].room_id);
    free(h[i].type);
    free(h[i].content);
  }
}
