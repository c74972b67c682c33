/*
 * bot/crypto/e2ee_trust.c - the operators' master keys as the trust root:
 * a key configured for an operator (operators[].master_key) is the only one
 * accepted; otherwise the first key seen is pinned (trust on first use,
 * announced in the alerts room) until `mxfleet trust pin|repin` changes it.
 * Pins live in one table for every identity in the file, so an operator
 * confirms their key once, not once per device.
 * Layer: bot/crypto on common/ and bot/mx_api.h; no libolm.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

int e2ee_operator_index(const struct mx_e2ee *e, const char *user)
{
  for (size_t i = 0; i < e->n_operators; i++)
    if (strcmp(e->operators[i], user) == 0)
      return (int)i;
  return -1;
}

char *e2ee_operator_pin(struct mx_e2ee *e, sqlite3 *db, int op, const char *seen, char *err)
{
  const char *user = e->operators[op];
  if (e->operator_keys[op])
    return mx_strdup(e->operator_keys[op]);
  const char *u[] = { user };
  char *pinned = e2ee_db_text(db, "SELECT master_key FROM e2ee_operator_pins WHERE user_id=?", 1, u);
  if (pinned)
    return pinned;
  /* Before pins were shared, each identity pinned on its own: keep that. */
  const char *v[] = { e->user_id, user };
  char *legacy = e2ee_db_text(db, "SELECT master_key FROM e2ee_users WHERE acct=? AND user_id=? AND master_key "
                                  "IS NOT NULL", 2, v);
  const char *key = legacy ? legacy : seen;
  if (key) {
    const char *w[] = { user, key, legacy ? "1" : "0" };
    if (e2ee_db_run(db, err, "INSERT INTO e2ee_operator_pins(user_id, master_key, source, pinned_ms, announced) "
                             "VALUES(?, ?, 'tofu', CAST(strftime('%s','now') AS INTEGER) * 1000, ?) "
                             "ON CONFLICT(user_id) DO NOTHING", 3, w) == MX_OK)
      pinned = e2ee_db_text(db, "SELECT master_key FROM e2ee_operator_pins WHERE user_id=?", 1, u);
    if (pinned && !legacy && strcmp(pinned, key) == 0) {
      e->pins_pending = 1;
      mx_warn(e->label, "pinned the master key %s of operator %s on first use; confirm it matches the key in "
                        "the operator's own client, or configure it (operators[].master_key)", key, user);
    }
  }
  free(legacy);
  return pinned;
}

static void copy(char *dst, size_t n, const char *src)
{
  snprintf(dst, n, "%s", src ? src : "");
}

mx_err mx_e2ee_migrate(sqlite3 *db, char *err)
{
  return e2ee_db_migrate(db, err);
}

mx_err mx_e2ee_pin_get(sqlite3 *db, const char *user_id, struct mx_e2ee_pin *out, char *err)
{
  memset(out, 0, sizeof(*out));
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_query(db, &st, err, "SELECT master_key, source, pinned_ms FROM e2ee_operator_pins WHERE user_id=?",
                          "s", user_id);
  if (rc && rc != MX_ERR_NOT_FOUND)
    return rc;
  if (!rc) {
    copy(out->master_key, sizeof(out->master_key), (const char *)sqlite3_column_text(st, 0));
    copy(out->source, sizeof(out->source), (const char *)sqlite3_column_text(st, 1));
    out->pinned_ms = sqlite3_column_int64(st, 2);
    sqlite3_finalize(st);
  }
  const char *u[] = { user_id };
  char *seen = e2ee_db_text(db, "SELECT seen_master FROM e2ee_users WHERE user_id=? AND seen_master IS NOT NULL "
                                "ORDER BY rowid DESC LIMIT 1", 1, u);
  copy(out->seen_master, sizeof(out->seen_master), seen);
  free(seen);
  return MX_OK;
}

mx_err mx_e2ee_pin_set(sqlite3 *db, const char *user_id, const char *master_key, const char *source, char *err)
{
  mx_err rc = mx_db_begin(db, err);
  if (rc)
    return rc;
  const char *w[] = { user_id, master_key, source };
  rc = e2ee_db_run(db, err, "INSERT INTO e2ee_operator_pins(user_id, master_key, source, pinned_ms, announced) "
                            "VALUES(?, ?, ?, CAST(strftime('%s','now') AS INTEGER) * 1000, 1) "
                            "ON CONFLICT(user_id) DO UPDATE SET master_key=excluded.master_key, "
                            "source=excluded.source, pinned_ms=excluded.pinned_ms, announced=1", 3, w);
  /* Every identity re-reads the user's keys at its next trust decision:
   * self-signing key and device signatures are checked against the new pin. */
  const char *v[] = { master_key, user_id };
  if (!rc)
    rc = e2ee_db_run(db, err, "UPDATE e2ee_users SET master_key=?, master_changed=0, self_signing_key=NULL, "
                              "outdated=outdated+1 WHERE user_id=?", 2, v);
  if (!rc)
    rc = mx_db_commit(db, err);
  if (rc)
    mx_db_rollback(db);
  return rc;
}

mx_err mx_e2ee_published_master(struct mx_api *api, const char *user_id, char *out, size_t n, char *err)
{
  cJSON *body = cJSON_CreateObject(), *resp = NULL;
  cJSON *dk = body ? cJSON_AddObjectToObject(body, "device_keys") : NULL;
  if (!dk || !cJSON_AddItemToObject(dk, user_id, cJSON_CreateArray())) {
    cJSON_Delete(body);
    return MX_ERR_NOMEM;
  }
  mx_err rc = mx_api_call(api, "POST", "/_matrix/client/v3/keys/query", body, NULL, NULL, &resp, err);
  cJSON_Delete(body);
  if (rc)
    return rc;
  const char *key = e2ee_xkey_pub(mx_json_obj(mx_json_obj(resp, "master_keys"), user_id), user_id, "master");
  const char *server = strchr(user_id, ':');
  if (!key)
    rc = mx_fail(MX_ERR_NOT_FOUND, err, "%s publishes no cross-signing master key (%s)", user_id,
                 server && mx_json_obj(mx_json_obj(resp, "failures"), server + 1) ? "their homeserver did not answer"
                                                                                  : "cross-signing is not set up");
  else
    copy(out, n, key);
  cJSON_Delete(resp);
  return rc;
}

static mx_err take_new_pins_in(struct mx_e2ee *e, cJSON **out, char *err)
{
  *out = cJSON_CreateArray();
  if (!*out)
    return MX_ERR_NOMEM;
  if (!atomic_exchange(&e->pins_pending, 0))
    return MX_OK;
  sqlite3_stmt *st = NULL;
  /* RETURNING: one identity claims each announcement, even when several
   * decide at the same moment. */
  mx_err rc = mx_db_prepare(e->db, "UPDATE e2ee_operator_pins SET announced=1 WHERE announced=0 "
                                   "RETURNING user_id, master_key", &st, err);
  int s;
  while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", (const char *)sqlite3_column_text(st, 0));
    cJSON_AddStringToObject(o, "master_key", (const char *)sqlite3_column_text(st, 1));
    cJSON_AddItemToArray(*out, o);
  }
  if (!rc && s != SQLITE_DONE)
    rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(e->db));
  sqlite3_finalize(st);
  if (rc)
    e->pins_pending = 1; /* try again at the next decision */
  return rc;
}

mx_err mx_e2ee_take_new_pins(struct mx_e2ee *e, cJSON **out, char *err)
{
  *out = NULL;
  mx_err rc = e2ee_db_enter(e, err);
  if (rc)
    return rc;
  rc = take_new_pins_in(e, out, err);
  e2ee_db_leave(e);
  return rc;
}
