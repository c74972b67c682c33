/*
 * tools/tools_approvals.c - the approval store (SQLite, module
 * "tools_approvals"): create, decide, wait, consume (single use, bound to
 * tool + args hash), cancel, list. Every state change is one conditional
 * UPDATE (WHERE state = ...), so a replayed or racing decision cannot apply
 * twice. Layer: tools/; common/ only. One store per process; a mutex guards
 * the connection and a condition variable wakes waiters.
 */
#include "tools_approvals.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_util.h"

#define WAIT_POLL_MS 200 /* waiters also re-read the row: decisions may come from another connection */

static const struct mx_migration migrations[] = {
    {1, "CREATE TABLE tools_approvals(id TEXT PRIMARY KEY, device TEXT NOT NULL, tool TEXT NOT NULL,"
        " args TEXT NOT NULL, args_hash TEXT NOT NULL, risk TEXT NOT NULL, reason TEXT, requester TEXT NOT NULL,"
        " origin TEXT, call_id TEXT, notice_event_id TEXT, decided_by TEXT, decided_via TEXT,"
        " created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, decided_ms INTEGER, state INTEGER NOT NULL);"
        "CREATE INDEX tools_approvals_notice ON tools_approvals(notice_event_id);"
        "CREATE INDEX tools_approvals_device ON tools_approvals(device, state);"},
};

struct tools_approvals {
  sqlite3 *db;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

const char *tools_approval_state_str(enum tools_approval_state s)
{
  switch (s) {
  case TOOLS_APPROVAL_PENDING: return "pending";
  case TOOLS_APPROVAL_APPROVED: return "approved";
  case TOOLS_APPROVAL_DENIED: return "denied";
  case TOOLS_APPROVAL_EXPIRED: return "expired";
  case TOOLS_APPROVAL_CANCELLED: return "cancelled";
  case TOOLS_APPROVAL_USED: return "used";
  }
  return "?";
}

mx_err tools_approvals_open(const char *db_path, struct tools_approvals **out, char *err)
{
  struct tools_approvals *ap = calloc(1, sizeof(*ap));
  if (!ap)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  pthread_mutex_init(&ap->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ap->cv, &ca);
  pthread_condattr_destroy(&ca);
  mx_err rc = mx_db_open(db_path, &ap->db, err);
  if (!rc)
    rc = mx_db_migrate(ap->db, "tools_approvals", migrations, 1, err);
  if (rc) {
    tools_approvals_close(ap);
    return rc;
  }
  *out = ap;
  return MX_OK;
}

void tools_approvals_close(struct tools_approvals *ap)
{
  if (!ap)
    return;
  if (ap->db)
    mx_db_close(ap->db);
  pthread_cond_destroy(&ap->cv);
  pthread_mutex_destroy(&ap->mu);
  free(ap);
}

void tools_pending_release(struct tools_pending *p)
{
  char **s[] = {&p->device, &p->tool, &p->args_json, &p->risk, &p->reason, &p->requester, &p->origin_json,
                &p->call_id, &p->notice_event_id, &p->decided_by};
  for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
    free(*s[i]);
    *s[i] = NULL;
  }
}

void tools_args_hash(const char *tool, const char *canonical_args, char out[TOOLS_ARGS_HASH_LEN + 1])
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  char hex[2 * MX_SHA256_LEN + 1];
  if (mx_buf_add(&b, tool, strlen(tool) + 1) || mx_buf_adds(&b, canonical_args)) {
    memset(out, '0', TOOLS_ARGS_HASH_LEN); /* never matches a real hash of a call we ran */
    out[TOOLS_ARGS_HASH_LEN] = '\0';
    return;
  }
  mx_sha256_hex(b.buf, b.len, hex);
  memcpy(out, hex, TOOLS_ARGS_HASH_LEN);
  out[TOOLS_ARGS_HASH_LEN] = '\0';
  mx_buf_release(&b);
}

/* 8 characters from [a-z0-9], easy to type on a phone. */
static mx_err new_id(char out[TOOLS_ACTION_ID_LEN + 1])
{
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  int n = 0;
  while (n < TOOLS_ACTION_ID_LEN) {
    uint8_t b[16];
    if (mx_random_bytes(b, sizeof(b)))
      return MX_ERR_CRYPTO;
    for (size_t i = 0; i < sizeof(b) && n < TOOLS_ACTION_ID_LEN; i++)
      if (b[i] < 252) /* 252 = 7 * 36: no modulo bias */
        out[n++] = alphabet[b[i] % 36];
  }
  out[n] = '\0';
  return MX_OK;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
  if (s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, i);
}

mx_err tools_approvals_create(struct tools_approvals *ap, struct tools_pending *p, int64_t ttl_ms, char *err)
{
  if (!p->device || !p->tool || !p->args_json || !p->risk || !p->requester)
    return mx_fail(MX_ERR_INVALID, err, "approval: device, tool, args, risk and requester are required");
  mx_err rc = new_id(p->id);
  if (rc)
    return mx_fail(rc, err, "approval: no randomness for an action id");
  tools_args_hash(p->tool, p->args_json, p->args_hash);
  p->created_ms = mx_now_ms();
  p->expires_ms = p->created_ms + (ttl_ms > 0 ? ttl_ms : TOOLS_APPROVAL_TTL_MS);
  p->state = TOOLS_APPROVAL_PENDING;
  sqlite3_stmt *st = NULL;
  pthread_mutex_lock(&ap->mu);
  rc = mx_db_prepare(ap->db,
                     "INSERT INTO tools_approvals(id, device, tool, args, args_hash, risk, reason, requester, origin,"
                     " call_id, created_ms, expires_ms, state) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,0)",
                     &st, err);
  if (!rc) {
    const char *v[] = {p->id, p->device, p->tool, p->args_json, p->args_hash, p->risk, p->reason, p->requester,
                       p->origin_json, p->call_id};
    for (int i = 0; i < 10; i++)
      bind_opt(st, i + 1, v[i]);
    sqlite3_bind_int64(st, 11, p->created_ms);
    sqlite3_bind_int64(st, 12, p->expires_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = mx_fail(MX_ERR_DB, err, "approval: cannot store action: %s", sqlite3_errmsg(ap->db));
  }
  sqlite3_finalize(st);
  pthread_mutex_unlock(&ap->mu);
  return rc;
}

/* Runs one UPDATE/DELETE with text and integer parameters; *changes set. */
static mx_err exec_update(struct tools_approvals *ap, const char *sql, const char *const *texts, int ntexts,
                          const int64_t *ints, int nints, int *changes, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(ap->db, sql, &st, err);
  if (!rc) {
    for (int i = 0; i < ntexts; i++)
      bind_opt(st, i + 1, texts[i]);
    for (int i = 0; i < nints; i++)
      sqlite3_bind_int64(st, ntexts + i + 1, ints[i]);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = mx_fail(MX_ERR_DB, err, "approvals: %s", sqlite3_errmsg(ap->db));
    else if (changes)
      *changes = sqlite3_changes(ap->db);
  }
  sqlite3_finalize(st);
  return rc;
}

static mx_err expire_due(struct tools_approvals *ap, char *err)
{
  int64_t now = mx_now_ms();
  return exec_update(ap, "UPDATE tools_approvals SET state=3 WHERE state=0 AND expires_ms<=?", NULL, 0, &now, 1, NULL,
                     err);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? mx_strdup((const char *)t) : NULL;
}

static mx_err load(struct tools_approvals *ap, const char *id, struct tools_pending *out, char *err)
{
  sqlite3_stmt *st = NULL;
  memset(out, 0, sizeof(*out));
  mx_err rc = mx_db_prepare(ap->db,
                            "SELECT id, args_hash, device, tool, args, risk, reason, requester, origin, call_id,"
                            " notice_event_id, decided_by, created_ms, expires_ms, state FROM tools_approvals WHERE id=?",
                            &st, err);
  if (!rc) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
      snprintf(out->id, sizeof(out->id), "%s", (const char *)sqlite3_column_text(st, 0));
      snprintf(out->args_hash, sizeof(out->args_hash), "%s", (const char *)sqlite3_column_text(st, 1));
      char **f[] = {&out->device, &out->tool, &out->args_json, &out->risk, &out->reason, &out->requester,
                    &out->origin_json, &out->call_id, &out->notice_event_id, &out->decided_by};
      for (int i = 0; i < 10; i++)
        *f[i] = col_dup(st, i + 2);
      out->created_ms = sqlite3_column_int64(st, 12);
      out->expires_ms = sqlite3_column_int64(st, 13);
      out->state = (enum tools_approval_state)sqlite3_column_int(st, 14);
    } else if (s == SQLITE_DONE) {
      rc = mx_fail(MX_ERR_NOT_FOUND, err, "no action '%.40s'", id);
    } else {
      rc = mx_fail(MX_ERR_DB, err, "approvals: %s", sqlite3_errmsg(ap->db));
    }
  }
  sqlite3_finalize(st);
  return rc;
}

mx_err tools_approvals_get(struct tools_approvals *ap, const char *id, struct tools_pending *out, char *err)
{
  pthread_mutex_lock(&ap->mu);
  mx_err rc = expire_due(ap, err);
  if (!rc)
    rc = load(ap, id, out, err);
  pthread_mutex_unlock(&ap->mu);
  return rc;
}

mx_err tools_approvals_set_notice(struct tools_approvals *ap, const char *id, const char *notice_event_id, char *err)
{
  const char *t[] = {notice_event_id, id};
  pthread_mutex_lock(&ap->mu);
  mx_err rc = exec_update(ap, "UPDATE tools_approvals SET notice_event_id=? WHERE id=?", t, 2, NULL, 0, NULL, err);
  pthread_mutex_unlock(&ap->mu);
  return rc;
}

mx_err tools_approvals_find_by_notice(struct tools_approvals *ap, const char *notice_event_id,
                                      char id[TOOLS_ACTION_ID_LEN + 1], char *err)
{
  sqlite3_stmt *st = NULL;
  pthread_mutex_lock(&ap->mu);
  mx_err rc = mx_db_prepare(ap->db, "SELECT id FROM tools_approvals WHERE notice_event_id=?", &st, err);
  if (!rc) {
    sqlite3_bind_text(st, 1, notice_event_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
      snprintf(id, TOOLS_ACTION_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    else
      rc = mx_fail(MX_ERR_NOT_FOUND, err, "no action for notice '%.80s'", notice_event_id);
  }
  sqlite3_finalize(st);
  pthread_mutex_unlock(&ap->mu);
  return rc;
}

static mx_err state_conflict(const struct tools_pending *p, char *err)
{
  if (p->state == TOOLS_APPROVAL_EXPIRED)
    return mx_fail(MX_ERR_EXPIRED, err, "action %s expired (expiry means deny)", p->id);
  return mx_fail(MX_ERR_CONFLICT, err, "action %s is already %s", p->id, tools_approval_state_str(p->state));
}

mx_err tools_approvals_decide(struct tools_approvals *ap, const char *id, const char *approver_mxid, int is_operator,
                              enum tools_verdict v, const char *via, char *err)
{
  if (!is_operator)
    return mx_fail(MX_ERR_DENIED, err, "'%.100s' is not an operator of this device: only an operator can %s",
                   approver_mxid ? approver_mxid : "?", v == TOOLS_VERDICT_APPROVE ? "approve" : "deny");
  struct tools_pending p;
  memset(&p, 0, sizeof(p));
  pthread_mutex_lock(&ap->mu);
  mx_err rc = expire_due(ap, err);
  if (!rc)
    rc = load(ap, id, &p, err);
  if (!rc && p.state != TOOLS_APPROVAL_PENDING)
    rc = state_conflict(&p, err);
  if (!rc) {
    const char *t[] = {approver_mxid, via, id};
    int64_t ints[] = {v == TOOLS_VERDICT_APPROVE ? TOOLS_APPROVAL_APPROVED : TOOLS_APPROVAL_DENIED, mx_now_ms()};
    int changes = 0;
    rc = exec_update(ap,
                     "UPDATE tools_approvals SET decided_by=?, decided_via=?, state=?4, decided_ms=?5"
                     " WHERE id=?3 AND state=0",
                     t, 3, ints, 2, &changes, err);
    if (!rc && changes != 1)
      rc = mx_fail(MX_ERR_CONFLICT, err, "action %s was decided meanwhile", id);
  }
  tools_pending_release(&p);
  pthread_cond_broadcast(&ap->cv);
  pthread_mutex_unlock(&ap->mu);
  return rc;
}

static void deadline_ts(int64_t ms_from_now, struct timespec *ts)
{
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms_from_now / 1000;
  ts->tv_nsec += (ms_from_now % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

mx_err tools_approvals_wait(struct tools_approvals *ap, const char *id, const volatile int *cancel,
                            enum tools_approval_state *state, char *err)
{
  mx_err rc = MX_OK;
  pthread_mutex_lock(&ap->mu);
  for (;;) {
    struct tools_pending p;
    if ((rc = expire_due(ap, err)) || (rc = load(ap, id, &p, err)))
      break;
    *state = p.state;
    int64_t left = p.expires_ms - mx_now_ms();
    tools_pending_release(&p);
    if (*state != TOOLS_APPROVAL_PENDING)
      break;
    if (cancel && *cancel) {
      int64_t c = TOOLS_APPROVAL_CANCELLED;
      const char *t[] = {id};
      rc = exec_update(ap, "UPDATE tools_approvals SET state=?2 WHERE id=?1 AND state=0", t, 1, &c, 1, NULL, err);
      continue; /* re-read: a decision may have won the race */
    }
    struct timespec ts;
    deadline_ts(left < WAIT_POLL_MS ? (left > 0 ? left : 1) : WAIT_POLL_MS, &ts);
    pthread_cond_timedwait(&ap->cv, &ap->mu, &ts);
  }
  pthread_mutex_unlock(&ap->mu);
  return rc;
}

mx_err tools_approvals_consume(struct tools_approvals *ap, const char *id, const char *tool, const char *args_hash,
                               char *err)
{
  struct tools_pending p;
  memset(&p, 0, sizeof(p));
  pthread_mutex_lock(&ap->mu);
  mx_err rc = load(ap, id, &p, err);
  int64_t ttl = p.expires_ms - p.created_ms;
  if (!rc && p.state != TOOLS_APPROVAL_APPROVED)
    rc = p.state == TOOLS_APPROVAL_PENDING ? mx_fail(MX_ERR_PENDING, err, "action %s is not approved yet", id)
                                           : state_conflict(&p, err);
  if (!rc && (strcmp(p.tool, tool) != 0 || strcmp(p.args_hash, args_hash) != 0))
    rc = mx_fail(MX_ERR_DENIED, err, "approval %s covers %s with args hash %s, not this call (%s, %s)", id, p.tool,
                 p.args_hash, tool, args_hash);
  if (!rc) {
    /* An approved action must run within one TTL of its decision. */
    const char *t[] = {id};
    int64_t ints[] = {mx_now_ms(), ttl};
    int changes = 0;
    rc = exec_update(ap,
                     "UPDATE tools_approvals SET state=5 WHERE id=?1 AND state=1 AND decided_ms + ?3 > ?2", t, 1,
                     ints, 2, &changes, err);
    if (!rc && changes != 1) {
      exec_update(ap, "UPDATE tools_approvals SET state=3 WHERE id=?1 AND state=1", t, 1, NULL, 0, NULL, err);
      rc = mx_fail(MX_ERR_EXPIRED, err, "approval %s was not used in time", id);
    }
  }
  tools_pending_release(&p);
  pthread_mutex_unlock(&ap->mu);
  return rc;
}

mx_err tools_approvals_cancel(struct tools_approvals *ap, const char *id, const char *by, char *err)
{
  const char *t[] = {id, by};
  int changes = 0;
  pthread_mutex_lock(&ap->mu);
  mx_err rc = exec_update(ap, "UPDATE tools_approvals SET state=4, decided_by=?2 WHERE id=?1 AND state IN (0,1)", t,
                          2, NULL, 0, &changes, err);
  if (!rc && changes == 0) {
    struct tools_pending p;
    rc = load(ap, id, &p, err);
    if (!rc)
      rc = state_conflict(&p, err);
    tools_pending_release(&p);
  }
  pthread_cond_broadcast(&ap->cv);
  pthread_mutex_unlock(&ap->mu);
  return rc;
}

mx_err tools_approvals_cancel_device(struct tools_approvals *ap, const char *device, int *n, char *err)
{
  const char *t[] = {device};
  int changes = 0;
  pthread_mutex_lock(&ap->mu);
  mx_err rc = exec_update(ap, "UPDATE tools_approvals SET state=4, decided_by='!stop' WHERE device=?1 AND state IN (0,1)",
                          t, 1, NULL, 0, &changes, err);
  pthread_cond_broadcast(&ap->cv);
  pthread_mutex_unlock(&ap->mu);
  if (n)
    *n = changes;
  return rc;
}

/* One row for the list; args leave redacted, never as stored. */
static cJSON *row_json(sqlite3_stmt *st, const struct tools_redactor *r)
{
  static const char *const names[] = {"id", "device", "tool", "args", "risk", "args_hash", "requester", "reason"};
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; o && i < 8; i++) {
    const unsigned char *t = sqlite3_column_text(st, i);
    if (i == 3 && t) {
      cJSON *raw = cJSON_Parse((const char *)t);
      cJSON *a = raw && r ? tools_redact_json(r, raw) : raw;
      if (a != raw)
        cJSON_Delete(raw);
      cJSON_AddItemToObject(o, "args", a ? a : cJSON_CreateString("(arguments withheld)"));
      continue;
    }
    if (t)
      cJSON_AddStringToObject(o, names[i], (const char *)t);
  }
  cJSON_AddNumberToObject(o, "created_ms", (double)sqlite3_column_int64(st, 8));
  cJSON_AddNumberToObject(o, "expires_ms", (double)sqlite3_column_int64(st, 9));
  return o;
}

mx_err tools_approvals_list_pending(struct tools_approvals *ap, const struct tools_redactor *r, const char *device,
                                    cJSON **out, char *err)
{
  sqlite3_stmt *st = NULL;
  cJSON *arr = cJSON_CreateArray();
  pthread_mutex_lock(&ap->mu);
  mx_err rc = arr ? expire_due(ap, err) : mx_fail(MX_ERR_NOMEM, err, "out of memory");
  if (!rc)
    rc = mx_db_prepare(ap->db,
                       "SELECT id, device, tool, args, risk, args_hash, requester, reason, created_ms, expires_ms"
                       " FROM tools_approvals WHERE state=0 AND (?1 IS NULL OR device=?1) ORDER BY created_ms, id",
                       &st, err);
  if (!rc) {
    bind_opt(st, 1, device);
    while (sqlite3_step(st) == SQLITE_ROW)
      cJSON_AddItemToArray(arr, row_json(st, r));
  }
  sqlite3_finalize(st);
  pthread_mutex_unlock(&ap->mu);
  if (rc) {
    cJSON_Delete(arr);
    return rc;
  }
  *out = arr;
  return MX_OK;
}
