/*
 * dev_wg_audit.c - watching mxfleet-agent's own audit chain from the bot.
 * A hash chain alone cannot reveal a deleted tail or a chain rebuilt from
 * scratch; an externally kept (size, head) can (Crosby & Wallach; the
 * journald truncation CVE-2023-31438). We store every checkpoint the agent
 * signs and require each new one to extend the last: same head at the same
 * size, and the record at the old size still carrying the old head.
 * Tables (module "dev_wg"): dev_wg_checkpoints, dev_wg_audit_keys.
 * Layer: devices/wg (never calls tools/: the signed text is stored for
 * tools_audit_checkpoint_parse to verify). Reply cJSON is owned here.
 */
#include "dev_wg_int.h"

#include <stdlib.h>
#include <string.h>

#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_util.h"

static const struct mx_migration migrations[] = {
    {1, "CREATE TABLE dev_wg_checkpoints(device TEXT NOT NULL, size INTEGER NOT NULL, head TEXT NOT NULL,"
        " time_ms INTEGER NOT NULL, text TEXT NOT NULL, fetched_ms INTEGER NOT NULL, PRIMARY KEY(device, size));"
        "CREATE TABLE dev_wg_audit_keys(device TEXT PRIMARY KEY, public_key TEXT NOT NULL,"
        " first_seen_ms INTEGER NOT NULL);"},
};

struct ckpt {
  int64_t size;
  char head[2 * MX_SHA256_LEN + 1];
  int anchored; /* a stored checkpoint (not the zero value of a device never checked) */
};

static mx_err fetch_json(struct dev_wg *w, const char *target, cJSON **out, char *err)
{
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  long status = 0;
  mx_err rc = dev_wg_get(w, target, 10000, &status, &resp, err);
  if (!rc && status != 200)
    rc = mx_fail(status == 401 ? MX_ERR_AUTH : MX_ERR_UNAVAILABLE, err, "agent %s %s: HTTP %ld", w->device, target,
                 status);
  if (!rc && !(*out = cJSON_Parse(mx_buf_cstr(&resp))))
    rc = mx_fail(MX_ERR_INVALID, err, "agent %s %s: reply is not JSON", w->device, target);
  mx_buf_release(&resp);
  return rc;
}

/* The first key we saw signs every later checkpoint (pinned like SSH). */
static mx_err check_key(sqlite3 *db, struct dev_wg *w, const char *pub, char **text, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_query(db, &st, err, "SELECT public_key FROM dev_wg_audit_keys WHERE device = ?", "s", w->device);
  if (rc == MX_ERR_NOT_FOUND)
    return mx_db_run(db, err, "INSERT INTO dev_wg_audit_keys(device, public_key, first_seen_ms) VALUES(?,?,?)",
                     "ssi", w->device, pub, mx_now_ms());
  if (rc)
    return rc;
  const char *known = (const char *)sqlite3_column_text(st, 0);
  int same = known && strcmp(known, pub) == 0;
  sqlite3_finalize(st);
  if (same)
    return MX_OK;
  *text = mx_strdup("key_changed: the agent's audit signing key differs from the one first seen");
  return mx_fail(MX_ERR_TAMPERED, err, "agent %s: audit checkpoint signed by a different key", w->device);
}

static mx_err last_stored(sqlite3 *db, const char *device, struct ckpt *c, char *err)
{
  sqlite3_stmt *st = NULL;
  memset(c, 0, sizeof(*c));
  mx_err rc = mx_db_query(db, &st, err, "SELECT size, head FROM dev_wg_checkpoints WHERE device = ?"
                                        " ORDER BY size DESC LIMIT 1", "s", device);
  if (rc == MX_ERR_NOT_FOUND)
    return MX_OK;
  if (rc)
    return rc;
  c->anchored = 1;
  c->size = sqlite3_column_int64(st, 0);
  snprintf(c->head, sizeof(c->head), "%s", (const char *)sqlite3_column_text(st, 1));
  sqlite3_finalize(st);
  return MX_OK;
}

/* The record at seq old->size must still hash to old->head. */
static mx_err extends(struct dev_wg *w, const struct ckpt *old, int *ok, char *err)
{
  char target[64];
  cJSON *page = NULL;
  snprintf(target, sizeof(target), "/v1/audit?since=%lld", (long long)(old->size - 1));
  mx_err rc = fetch_json(w, target, &page, err);
  if (rc)
    return rc;
  const cJSON *first = cJSON_GetArrayItem(mx_json_arr(page, "records"), 0);
  int64_t seq = 0;
  const char *hash = mx_json_str(first, "hash");
  *ok = first && mx_json_int(first, "seq", &seq) && seq == old->size && hash && strcmp(hash, old->head) == 0;
  cJSON_Delete(page);
  return MX_OK;
}

static mx_err compare(struct dev_wg *w, const struct ckpt *old, const struct ckpt *now, char **text, char *err)
{
  struct mx_buf t = MX_BUF_INIT(512);
  mx_err rc = MX_OK;
  int ok = 1;
  if (!old->anchored) {
    /* A device's first check has nothing to compare with (a fresh agent's
     * empty chain, size 0 with its genesis head, is not "rewritten"): the
     * checkpoint becomes the first anchor. */
  } else if (now->size < old->size) {
    rc = mx_buf_addf(&t, "truncated: have %lld, anchored %lld", (long long)now->size, (long long)old->size);
    ok = 0;
  } else if (now->size == old->size && strcmp(now->head, old->head) != 0) {
    rc = mx_buf_addf(&t, "rewritten: head at %lld differs from the anchored head", (long long)now->size);
    ok = 0;
  } else if (now->size > old->size && old->size > 0) {
    rc = extends(w, old, &ok, err);
    if (!rc && !ok)
      rc = mx_buf_addf(&t, "rewound: record %lld no longer matches the anchored head", (long long)old->size);
  }
  if (!rc && ok && !old->anchored)
    rc = mx_buf_addf(&t, "ok: %lld records (first checkpoint)", (long long)now->size);
  else if (!rc && ok)
    rc = mx_buf_addf(&t, "ok: %lld records (anchored %lld)", (long long)now->size, (long long)old->size);
  if (rc)
    return rc;
  *text = mx_buf_take(&t);
  if (!ok)
    return mx_fail(MX_ERR_TAMPERED, err, "agent %s audit chain: %s", w->device, *text);
  return MX_OK;
}

static mx_err parse_ckpt(struct dev_wg *w, const cJSON *o, struct ckpt *c, const char **pub, const char **txt,
                         char *err)
{
  const char *head = mx_json_str(o, "head");
  *pub = mx_json_str(o, "public_key");
  *txt = mx_json_str(o, "text");
  if (!mx_json_int(o, "size", &c->size) || c->size < 0 || !head || strlen(head) != 2 * MX_SHA256_LEN || !*pub ||
      !*txt)
    return mx_fail(MX_ERR_INVALID, err, "agent %s /v1/audit/checkpoint: expected size, head, text, public_key",
                   w->device);
  snprintf(c->head, sizeof(c->head), "%s", head);
  /* The checkpoint arrived over the HMAC-authenticated channel; its Ed25519
   * signature is for third parties and is verified by tools/ (devices/ must
   * not call upward). We keep the signed text and pin the key. */
  return MX_OK;
}

mx_err dev_wg_check_audit(struct dev_backend *b, char **status_text, char *err)
{
  struct dev_wg *w = (struct dev_wg *)b;
  sqlite3 *db = NULL;
  cJSON *o = NULL;
  struct ckpt now, old;
  const char *pub, *txt;
  *status_text = NULL;
  mx_err rc = fetch_json(w, "/v1/audit/checkpoint", &o, err);
  if (!rc)
    rc = parse_ckpt(w, o, &now, &pub, &txt, err);
  if (!rc)
    rc = mx_db_open(w->db_path, &db, err);
  if (!rc)
    rc = mx_db_migrate(db, "dev_wg", migrations, 1, err);
  if (!rc)
    rc = check_key(db, w, pub, status_text, err);
  if (!rc)
    rc = last_stored(db, w->device, &old, err);
  if (!rc)
    rc = compare(w, &old, &now, status_text, err);
  if (!rc) /* only a consistent checkpoint becomes the new anchor */
    rc = mx_db_run(db, err, "INSERT OR REPLACE INTO dev_wg_checkpoints(device, size, head, time_ms, text, fetched_ms)"
                            " VALUES(?,?,?,?,?,?)", "sisisi", w->device, now.size, now.head, mx_now_ms(), txt,
                   mx_now_ms());
  mx_db_close(db);
  cJSON_Delete(o);
  return rc;
}
