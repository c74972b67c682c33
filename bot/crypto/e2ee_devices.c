/*
 * bot/crypto/e2ee_devices.c - device lists of other users: /keys/query,
 * verification of what comes back (inner ids match the map
 * keys, self-signature, ed25519 pinned per device, master key trusted on
 * first use and never silently replaced, self-signing key signed by the
 * pinned master, device signed by the self-signing key).
 * `outdated` is a change counter: a query clears it only if no newer change
 * arrived while it was in flight (e2ee.md item 5).
 * Layer: bot/crypto. Worker side: e->send_lock held, e->lock not held.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

/* The single ed25519 key of a cross-signing key object with `usage`. */
const char *e2ee_xkey_pub(const cJSON *k, const char *user_id, const char *usage)
{
  const char *uid = mx_json_str(k, "user_id");
  if (!uid || strcmp(uid, user_id) != 0)
    return NULL;
  int ok = 0;
  const cJSON *u;
  cJSON_ArrayForEach(u, mx_json_arr(k, "usage"))
  {
    if (cJSON_IsString(u) && strcmp(u->valuestring, usage) == 0)
      ok = 1;
  }
  const cJSON *keys = mx_json_obj(k, "keys");
  if (!ok || !keys || cJSON_GetArraySize(keys) != 1 || !cJSON_IsString(keys->child) ||
      strncmp(keys->child->string, "ed25519:", 8) != 0)
    return NULL;
  return keys->child->valuestring;
}

/* An operator's key is checked against the shared pin (e2ee_trust.c), and
 * master_changed follows every answer, so a re-pin takes effect. */
static char *pin_operator(struct mx_e2ee *e, sqlite3 *db, int op, const char *user, const char *seen, char *err)
{
  char *pinned = e2ee_operator_pin(e, db, op, seen, err);
  if (pinned && seen) {
    const char *w[] = { pinned, strcmp(pinned, seen) != 0 ? "1" : "0", e->user_id, user };
    e2ee_db_run(db, err, "UPDATE e2ee_users SET master_key=?, master_changed=? WHERE acct=? AND user_id=?", 4, w);
    if (strcmp(pinned, seen) != 0)
      mx_warn(e->label, "ALERT: operator %s publishes master key %s, not the trusted %s; refusing their commands",
              user, seen, pinned);
  }
  return pinned;
}

/* Pins (TOFU) or checks the master key; returns the pinned key or NULL. */
static char *pin_master(struct mx_e2ee *e, sqlite3 *db, const char *user, const char *seen, char *err)
{
  const char *v[] = { e->user_id, user };
  if (seen) {
    const char *w[] = { seen, e->user_id, user };
    e2ee_db_run(db, err, "INSERT INTO e2ee_users(acct, user_id) VALUES(?,?) ON CONFLICT DO NOTHING", 2, v);
    e2ee_db_run(db, err, "UPDATE e2ee_users SET seen_master=? WHERE acct=? AND user_id=?", 3, w);
  }
  int op = e2ee_operator_index(e, user);
  if (op >= 0)
    return pin_operator(e, db, op, user, seen, err);
  char *pinned = e2ee_db_text(db, "SELECT master_key FROM e2ee_users WHERE acct=? AND user_id=?", 2, v);
  if (!seen)
    return pinned;
  if (!pinned) {
    const char *w[] = { e->user_id, user, seen };
    if (e2ee_db_run(db, err, "INSERT INTO e2ee_users(acct, user_id, master_key) VALUES(?,?,?) ON CONFLICT(acct, user_id) "
                             "DO UPDATE SET master_key=excluded.master_key", 3, w))
      return NULL;
    mx_info(e->label, "pinned master key %s of %s (first contact)", seen, user);
    return mx_strdup(seen);
  }
  if (strcmp(pinned, seen) != 0) {
    mx_warn(e->label, "ALERT: master key of %s changed from %s to %s; not trusting the new one", user, pinned, seen);
    e2ee_db_run(db, err, "UPDATE e2ee_users SET master_changed=1 WHERE acct=? AND user_id=?", 2, v);
  }
  return pinned;
}

/* Returns the verified self-signing key of user (malloc'd) or NULL. */
static char *check_self_signing(struct mx_e2ee *e, sqlite3 *db, const cJSON *resp, const char *user, char *err)
{
  const cJSON *mk = mx_json_obj(mx_json_obj(resp, "master_keys"), user);
  const cJSON *sk = mx_json_obj(mx_json_obj(resp, "self_signing_keys"), user);
  char *pinned = pin_master(e, db, user, mk ? e2ee_xkey_pub(mk, user, "master") : NULL, err);
  const char *spub = sk ? e2ee_xkey_pub(sk, user, "self_signing") : NULL;
  const char *mpub = mk ? e2ee_xkey_pub(mk, user, "master") : NULL;
  char *out = NULL;
  char verr[MX_ERRBUF_LEN];
  if (pinned && spub && mpub && strcmp(mpub, pinned) == 0 &&
      e2ee_verify_json(e->util, sk, user, pinned, pinned, verr) == MX_OK)
    out = mx_strdup(spub);
  else if (spub)
    mx_warn(e->label, "self-signing key of %s is not signed by the pinned master key", user);
  const char *v[] = { out, e->user_id, user };
  e2ee_db_run(db, err, "UPDATE e2ee_users SET self_signing_key=? WHERE acct=? AND user_id=?", 3, v);
  free(pinned);
  return out;
}

/* Checks one device entry; 0 when acceptable, with its keys in cur/ed. */
static int check_device(struct mx_e2ee *e, const cJSON *d, const char *user, const char *dev, const char **cur,
                        const char **ed)
{
  char kid[160], verr[MX_ERRBUF_LEN];
  const char *uid = mx_json_str(d, "user_id"), *did = mx_json_str(d, "device_id");
  if (!uid || !did || strcmp(uid, user) != 0 || strcmp(did, dev) != 0) {
    mx_warn(e->label, "keys/query: device %s of %s has mismatched inner ids; ignored", dev, user);
    return -1;
  }
  snprintf(kid, sizeof(kid), "curve25519:%s", dev);
  *cur = mx_json_str(mx_json_obj(d, "keys"), kid);
  snprintf(kid, sizeof(kid), "ed25519:%s", dev);
  *ed = mx_json_str(mx_json_obj(d, "keys"), kid);
  if (!*cur || !*ed || e2ee_verify_json(e->util, d, user, dev, *ed, verr) != MX_OK) {
    mx_warn(e->label, "keys/query: device %s of %s has no valid self-signature; ignored", dev, user);
    return -1;
  }
  return 0;
}

static mx_err store_device(struct mx_e2ee *e, sqlite3 *db, const cJSON *d, const char *user, const char *dev,
                           const char *ssk, char *err)
{
  const char *cur = NULL, *ed = NULL;
  if (check_device(e, d, user, dev, &cur, &ed))
    return MX_OK;
  const char *k[] = { e->user_id, user, dev };
  char *pinned = e2ee_db_text(db, "SELECT ed25519 FROM e2ee_devices WHERE acct=? AND user_id=? AND device_id=?", 3, k);
  if (pinned && strcmp(pinned, ed) != 0) {
    mx_warn(e->label, "ALERT: device %s of %s changed its ed25519 key; refusing the new key", dev, user);
    free(pinned);
    return MX_OK;
  }
  free(pinned);
  char verr[MX_ERRBUF_LEN];
  int xs = ssk && e2ee_verify_json(e->util, d, user, ssk, ssk, verr) == MX_OK;
  const char *v[] = { e->user_id, user, dev, cur, ed, xs ? "1" : "0" };
  return e2ee_db_run(db, err,
                     "INSERT INTO e2ee_devices(acct, user_id, device_id, curve25519, ed25519, cross_signed, deleted) "
                     "VALUES(?,?,?,?,?,?,0) ON CONFLICT(acct, user_id, device_id) DO UPDATE SET "
                     "curve25519=excluded.curve25519, cross_signed=excluded.cross_signed, deleted=0",
                     6, v);
}

static mx_err ingest_user(struct mx_e2ee *e, sqlite3 *db, const cJSON *resp, const char *user, char *err)
{
  char *ssk = check_self_signing(e, db, resp, user, err);
  const cJSON *devs = mx_json_obj(mx_json_obj(resp, "device_keys"), user);
  const char *k[] = { e->user_id, user };
  mx_err rc = e2ee_db_run(db, err, "UPDATE e2ee_devices SET deleted=1 WHERE acct=? AND user_id=?", 2, k);
  const cJSON *d;
  cJSON_ArrayForEach(d, devs)
  {
    if (!rc && cJSON_IsObject(d))
      rc = store_device(e, db, d, user, d->string, ssk, err);
  }
  free(ssk);
  return rc;
}

mx_err e2ee_devices_ingest(struct mx_e2ee *e, sqlite3 *db, const cJSON *resp, const char *const *users, size_t n,
                           char *err)
{
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < n; i++) {
    if (mx_json_obj(mx_json_obj(resp, "device_keys"), users[i]))
      rc = ingest_user(e, db, resp, users[i], err);
  }
  return rc;
}

/* Users among `users` that need a query; returns a malloc'd array. */
static size_t stale_users(struct mx_e2ee *e, const char *const *users, size_t n, int force, const char **out,
                          int64_t *seq)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    /* our own account too: its other verified devices (an Element session
     * of the bot's user) get room keys and have their key requests answered */
    const char *v[] = { e->user_id, users[i] };
    int64_t o = e2ee_db_int(e->db, "SELECT outdated FROM e2ee_users WHERE acct=? AND user_id=? AND tracking=1", 2, v, -1);
    if (o != 0 || force) {
      out[k] = users[i];
      seq[k++] = o;
    }
  }
  return k;
}

static mx_err query_and_store(struct mx_e2ee *e, const char **q, const int64_t *seq, size_t k, char *err)
{
  cJSON *body = cJSON_CreateObject(), *dk = cJSON_AddObjectToObject(body, "device_keys"), *resp = NULL;
  for (size_t i = 0; i < k; i++)
    cJSON_AddItemToObject(dk, q[i], cJSON_CreateArray());
  mx_err rc = mx_api_call(e->api, "POST", "/_matrix/client/v3/keys/query", body, NULL, NULL, &resp, err);
  cJSON_Delete(body);
  if (!rc)
    rc = mx_db_begin(e->db, err);
  if (rc) {
    cJSON_Delete(resp);
    return rc;
  }
  for (size_t i = 0; !rc && i < k; i++) {
    const char *v[] = { e->user_id, q[i] };
    rc = e2ee_db_run(e->db, err, "INSERT INTO e2ee_users(acct, user_id, tracking, outdated) VALUES(?,?,1,1) "
                                 "ON CONFLICT(acct, user_id) DO UPDATE SET tracking=1", 2, v);
  }
  if (!rc)
    rc = e2ee_devices_ingest(e, e->db, resp, q, k, err);
  const cJSON *answered = mx_json_obj(resp, "device_keys");
  for (size_t i = 0; !rc && i < k; i++) {
    /* A user the answer does not cover (their server is in `failures`, or
     * simply left out) stays outdated: their cached list is not current. */
    if (!mx_json_obj(answered, q[i])) {
      const char *server = strchr(q[i], ':');
      const cJSON *f = server ? cJSON_GetObjectItemCaseSensitive(mx_json_obj(resp, "failures"), server + 1) : NULL;
      char *why = f ? cJSON_PrintUnformatted(f) : NULL;
      mx_warn(e->label, "keys/query: no device list for %s (%s); it stays outdated", q[i],
              why ? why : "not in the answer");
      cJSON_free(why);
      continue;
    }
    char s[24];
    snprintf(s, sizeof(s), "%" PRId64, seq[i] < 0 ? 1 : seq[i]);
    const char *v[] = { e->user_id, q[i], s };
    /* a change that arrived while we queried keeps the user outdated */
    rc = e2ee_db_run(e->db, err, "UPDATE e2ee_users SET outdated=0 WHERE acct=? AND user_id=? AND outdated<=?", 3, v);
  }
  if (!rc)
    rc = mx_db_commit(e->db, err);
  else
    mx_db_rollback(e->db);
  cJSON_Delete(resp);
  return rc;
}

mx_err e2ee_devices_query(struct mx_e2ee *e, const char *const *users, size_t n, int force, char *err)
{
  if (n == 0 || !e->api) /* no api: offline use (unit tests) */
    return MX_OK;
  const char **q = calloc(n, sizeof(*q));
  int64_t *seq = calloc(n, sizeof(*seq));
  mx_err rc = (q && seq) ? MX_OK : MX_ERR_NOMEM;
  size_t k = rc ? 0 : stale_users(e, users, n, force, q, seq);
  if (!rc && k)
    rc = query_and_store(e, q, seq, k, err);
  free(q);
  free(seq);
  return rc;
}

int e2ee_device_verified(struct mx_e2ee *e, sqlite3 *db, const char *user_id, const char *device_id)
{
  const char *v[] = { e->user_id, user_id, device_id };
  return e2ee_db_int(db,
                     "SELECT d.cross_signed AND NOT u.master_changed FROM e2ee_devices d JOIN e2ee_users u "
                     "ON u.acct=d.acct AND u.user_id=d.user_id WHERE d.acct=? AND d.user_id=? AND d.device_id=? "
                     "AND d.deleted=0",
                     3, v, 0) == 1;
}
