/*
 * tools/audit/tools_audit_verify.c - relinks a chain from genesis (names the
 * first modified, missing or misplaced row) and checks that it extends an
 * anchored checkpoint (size, head): a shorter chain is truncation, a
 * different hash at the anchored size is rewritten history.
 * Layer: tools/; common/ + OpenSSL only.
 */
#include "tools_audit_int.h"

#include <stdio.h>
#include <string.h>

#include "mx_crypto.h"
#include "mx_db.h"

struct walk {
  int64_t rows;
  int64_t bad;                         /* first bad seq */
  uint8_t head[TOOLS_AUDIT_HASH_LEN];
  uint8_t at_anchor[TOOLS_AUDIT_HASH_LEN];
  int have_at_anchor;
};

static void report(struct tools_audit_verify_report *rep, int64_t bad, const char *fmt, long long x, long long y)
{
  rep->ok = 0;
  if (!rep->first_bad_seq)
    rep->first_bad_seq = bad;
  snprintf(rep->message, sizeof(rep->message), fmt, x, y);
}

/* One row: seq continuity, prev link, recomputed hash. 0 = stop. */
static int check_row(struct tools_audit *a, sqlite3_stmt *st, struct walk *w, int64_t anchor_size,
                     struct tools_audit_verify_report *rep)
{
  int64_t seq = sqlite3_column_int64(st, 0);
  const void *rec = sqlite3_column_blob(st, 1);
  int reclen = sqlite3_column_bytes(st, 1);
  const uint8_t *prev = sqlite3_column_blob(st, 2);
  const uint8_t *hash = sqlite3_column_blob(st, 3);
  int64_t expect = w->rows + 1;
  uint8_t h[TOOLS_AUDIT_HASH_LEN];
  if (seq != expect) {
    report(rep, expect, "row %lld is missing (deleted): the next row is %lld", (long long)expect, (long long)seq);
    return 0;
  }
  if (sqlite3_column_bytes(st, 2) != TOOLS_AUDIT_HASH_LEN || sqlite3_column_bytes(st, 3) != TOOLS_AUDIT_HASH_LEN ||
      memcmp(prev, w->head, TOOLS_AUDIT_HASH_LEN) != 0) {
    report(rep, seq, "row %lld does not link to row %lld (modified, inserted or reordered)", (long long)seq,
           (long long)seq - 1);
    return 0;
  }
  if (!audit_hash(a, seq, prev, rec ? rec : "", (size_t)reclen, h) || memcmp(h, hash, TOOLS_AUDIT_HASH_LEN) != 0) {
    report(rep, seq, "row %lld was modified: its hash does not match its content%.0lld", (long long)seq, 0);
    return 0;
  }
  memcpy(w->head, h, TOOLS_AUDIT_HASH_LEN);
  w->rows = seq;
  if (seq == anchor_size) {
    memcpy(w->at_anchor, h, TOOLS_AUDIT_HASH_LEN);
    w->have_at_anchor = 1;
  }
  return 1;
}

static void compare_anchor(const struct walk *w, const struct tools_audit_checkpoint *anchor,
                           struct tools_audit_verify_report *rep)
{
  if (!anchor || !rep->ok)
    return;
  rep->anchored_size = anchor->size;
  if (w->rows < anchor->size) {
    report(rep, w->rows + 1, "truncated: have %lld, anchored %lld", (long long)w->rows, (long long)anchor->size);
    return;
  }
  if (anchor->size > 0 && (!w->have_at_anchor || memcmp(w->at_anchor, anchor->head, TOOLS_AUDIT_HASH_LEN) != 0)) {
    report(rep, 0, "rewritten: the head at %lld differs from the checkpoint (history before it was replaced)%.0lld",
           (long long)anchor->size, 0);
    return;
  }
  if (anchor->size == 0 && w->rows == 0)
    return;
}

mx_err tools_audit_verify(struct tools_audit *a, const struct tools_audit_checkpoint *anchor,
                          struct tools_audit_verify_report *rep, char *err)
{
  struct tools_audit_checkpoint stored;
  memset(rep, 0, sizeof(*rep));
  rep->ok = 1;
  if (!anchor) {
    char e2[MX_ERRBUF_LEN];
    mx_err crc = tools_audit_last_checkpoint(a, &stored, e2);
    if (crc == MX_OK) {
      anchor = &stored;
    } else if (crc != MX_ERR_NOT_FOUND) {
      rep->ok = 0;
      snprintf(rep->message, sizeof(rep->message), "checkpoint unusable: %.400s", e2);
      return MX_OK;
    }
  }
  struct walk w;
  memset(&w, 0, sizeof(w));
  sqlite3_stmt *st = NULL;
  pthread_mutex_lock(&a->mu);
  mx_err rc = mx_db_prepare(a->db, "SELECT seq, record, prev_hash, hash FROM audit_chain ORDER BY seq", &st, err);
  /* One read transaction so appends by another connection cannot interleave. */
  if (!rc)
    rc = mx_db_exec(a->db, "BEGIN", err);
  int s = SQLITE_DONE;
  while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW)
    if (!check_row(a, st, &w, anchor ? anchor->size : -1, rep))
      break;
  if (!rc && s != SQLITE_ROW && s != SQLITE_DONE)
    rc = mx_fail(MX_ERR_DB, err, "audit '%s': cannot read the chain: %s", a->device, sqlite3_errmsg(a->db));
  sqlite3_finalize(st);
  if (st || !rc)
    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
  pthread_mutex_unlock(&a->mu);
  if (rc)
    return rc;
  rep->rows = w.rows;
  compare_anchor(&w, anchor, rep);
  if (rep->ok) {
    char hex[2 * TOOLS_AUDIT_HASH_LEN + 1];
    mx_hex(w.head, TOOLS_AUDIT_HASH_LEN, hex);
    hex[16] = '\0';
    snprintf(rep->message, sizeof(rep->message), "ok: %lld records, head %s, anchored %lld", (long long)w.rows, hex,
             (long long)rep->anchored_size);
  }
  return MX_OK;
}
