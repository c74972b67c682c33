/*
 * dev_wg_audit.c - watching mxfleet-agent's own audit chain from the bot.
 * A hash chain alone cannot reveal a deleted tail or a chain rebuilt from
 * scratch; an externally kept (size, head) can (Crosby & Wallach; the
 * journald truncation CVE-2023-31438). We store every checkpoint the agent
 * signs and require each new one to extend the last: same head at the same
 * size, and the record at the old size still carrying the old head.
 * Tables (module "dev_wg"): dev_wg_checkpoints, dev_wg_audit_keys.
 * The checkpoint's signature is verified and every record between two
 * checkpoints recomputed, through the checks the bot wires in from tools/.
 * Layer: devices/wg (never calls tools/ itself). Reply cJSON is owned here.
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

/* Checks one fetched record: its hash recomputed from its content (never
 * the agent's word for it), linked to the previous one. */
static int record_ok(struct dev_wg *w, const cJSON *rec, int64_t want_seq, char prev[65], char *err)
{
  int64_t seq = 0;
  char h[65];
  const char *claimed = mx_json_str(rec, "hash"), *p = mx_json_str(rec, "prev_hash");
  if (!mx_json_int(rec, "seq", &seq) || seq != want_seq || !claimed || !p)
    return 0;
  if ((prev[0] && strcmp(p, prev) != 0) || w->checks->record_hash(rec, h, err) || strcmp(h, claimed) != 0)
    return 0;
  snprintf(prev, 65, "%s", h);
  return 1;
}

/* The records from old->size to now->size, fetched page by page and each
 * recomputed: the one at old->size must hash to old->head, every later one
 * must link to it, and the one at now->size to now->head. */
static mx_err extends(struct dev_wg *w, const struct ckpt *old, const struct ckpt *now, int *ok, char *err)
{
  char prev[65] = "";
  int64_t next = old->size;
  *ok = 1;
  while (*ok && next <= now->size) {
    char target[64];
    cJSON *page = NULL;
    snprintf(target, sizeof(target), "/v1/audit?since=%lld", (long long)(next - 1));
    mx_err rc = fetch_json(w, target, &page, err);
    if (rc)
      return rc;
    const cJSON *rec;
    int got = 0;
    cJSON_ArrayForEach(rec, mx_json_arr(page, "records"))
    {
      if (next > now->size)
        break; /* grew after the checkpoint: later checks cover it */
      char rerr[MX_ERRBUF_LEN];
      *ok = record_ok(w, rec, next, prev, rerr) && (next != old->size || strcmp(prev, old->head) == 0);
      if (!*ok)
        break;
      next++;
      got++;
    }
    cJSON_Delete(page);
    if (!got)
      *ok = 0; /* the agent stopped short of its own checkpoint */
  }
  if (*ok)
    *ok = strcmp(prev, now->head) == 0;
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
    rc = extends(w, old, now, &ok, err);
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
  return MX_OK;
}

/* The HMAC channel only says the agent sent it; the Ed25519 signature says
 * the agent's audit key (pinned by check_key) vouches for (size, head). A
 * tool running on the device can reach the HMAC key sooner than the audit
 * key, which the agent reads before it drops privileges. */
static mx_err verify_sig(struct dev_wg *w, const struct ckpt *c, const char *pub, const char *txt, char **text,
                         char *err)
{
  uint8_t *raw = NULL;
  size_t n = 0;
  char verr[MX_ERRBUF_LEN] = "";
  if (!w->checks)
    return mx_fail(MX_ERR_UNSUPPORTED, err, "agent %s: no checkpoint verifier wired: cannot vouch for its audit chain",
                   w->device);
  mx_err rc = mx_b64_decode(pub, &raw, &n) || n != 32 ? MX_ERR_INVALID : MX_OK;
  if (!rc)
    rc = w->checks->checkpoint(txt, raw, c->size, c->head, verr);
  free(raw);
  if (!rc)
    return MX_OK;
  *text = mx_strdup("bad_signature: the agent's checkpoint does not verify with its audit key");
  return mx_fail(MX_ERR_TAMPERED, err, "agent %s audit checkpoint: %s", w->device, verr[0] ? verr : "bad public key");
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
    rc = verify_sig(w, &now, pub, txt, status_text, err);
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
