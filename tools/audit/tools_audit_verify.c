/*
 * tools/audit/tools_audit_verify.c - relinks a chain from genesis (names the
 * first modified, missing or misplaced row) and checks that it extends an
 * anchored checkpoint (size, head): a shorter chain is truncation, a
 * different hash at the anchored size is rewritten history.
 * Every row can be checked on its own (its stored prev hash, its content,
 * its stored hash), so large chains are split into seq ranges verified by
 * one thread each, each with its own read-only connection; the seams are
 * checked after the join. Layer: tools/; common/ + OpenSSL only.
 */
#include "tools_audit_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mx_crypto.h"
#include "mx_db.h"

#define MAX_WORKERS 4
#define ROWS_PER_WORKER_MIN 20000 /* below this a thread costs more than it saves */

struct range {
  /* in */
  const char *db_path;
  const EVP_MD *sha256;
  int64_t lo, hi, anchor_size;
  /* out */
  int ran;                               /* the scan itself worked */
  char dberr[256];
  int64_t rows, bad;                     /* rows checked; first bad seq (0 none) */
  char message[400];
  int have_first;
  uint8_t first_prev[TOOLS_AUDIT_HASH_LEN];
  uint8_t last[TOOLS_AUDIT_HASH_LEN];
  uint8_t at_anchor[TOOLS_AUDIT_HASH_LEN];
  int have_at_anchor;
};

static void range_fail(struct range *r, int64_t bad, const char *fmt, long long x, long long y)
{
  r->bad = bad;
  snprintf(r->message, sizeof(r->message), fmt, x, y);
}

/* One row; 0 = stop (r->bad set). prev is the previous row's hash, or for
 * the range's first row, its own stored prev (checked at the seam). */
static int check_row(struct range *r, EVP_MD_CTX *md, sqlite3_stmt *st, int64_t expect)
{
  int64_t seq = sqlite3_column_int64(st, 0);
  const void *rec = sqlite3_column_blob(st, 1);
  int reclen = sqlite3_column_bytes(st, 1);
  const uint8_t *prev = sqlite3_column_blob(st, 2);
  const uint8_t *hash = sqlite3_column_blob(st, 3);
  uint8_t h[TOOLS_AUDIT_HASH_LEN];
  if (seq != expect) {
    range_fail(r, expect, "row %lld is missing (deleted): the next row is %lld", (long long)expect, (long long)seq);
    return 0;
  }
  int sizes = sqlite3_column_bytes(st, 2) == TOOLS_AUDIT_HASH_LEN && sqlite3_column_bytes(st, 3) == TOOLS_AUDIT_HASH_LEN;
  if (sizes && !r->have_first) {
    memcpy(r->first_prev, prev, TOOLS_AUDIT_HASH_LEN);
    memcpy(r->last, prev, TOOLS_AUDIT_HASH_LEN);
    r->have_first = 1;
  }
  if (!sizes || memcmp(prev, r->last, TOOLS_AUDIT_HASH_LEN) != 0) {
    range_fail(r, seq, "row %lld does not link to row %lld (modified, inserted or reordered)", (long long)seq,
               (long long)seq - 1);
    return 0;
  }
  if (!audit_hash_md(md, r->sha256, seq, prev, rec ? rec : "", (size_t)reclen, h) ||
      memcmp(h, hash, TOOLS_AUDIT_HASH_LEN) != 0) {
    range_fail(r, seq, "row %lld was modified: its hash does not match its content%.0lld", (long long)seq, 0);
    return 0;
  }
  memcpy(r->last, h, TOOLS_AUDIT_HASH_LEN);
  r->rows++;
  if (seq == r->anchor_size) {
    memcpy(r->at_anchor, h, TOOLS_AUDIT_HASH_LEN);
    r->have_at_anchor = 1;
  }
  return 1;
}

/* Scans seq >= lo until past hi, on its own connection. */
static void *range_run(void *arg)
{
  struct range *r = arg;
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md || sqlite3_open_v2(r->db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA mmap_size=1073741824", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT seq, record, prev_hash, hash FROM audit_chain WHERE seq >= ? ORDER BY seq", -1,
                         &st, NULL) != SQLITE_OK) {
    snprintf(r->dberr, sizeof(r->dberr), "%s", db ? sqlite3_errmsg(db) : "out of memory");
    goto cleanup;
  }
  sqlite3_bind_int64(st, 1, r->lo);
  int64_t expect = r->lo;
  int s;
  while (expect <= r->hi && (s = sqlite3_step(st)) == SQLITE_ROW) {
    if (!check_row(r, md, st, expect))
      break;
    expect++;
  }
  if (!r->bad && expect <= r->hi && s == SQLITE_DONE)
    range_fail(r, expect, "row %lld is missing (deleted): no later row %.0lld", (long long)expect, 0);
  else if (!r->bad && expect <= r->hi && s != SQLITE_ROW)
    snprintf(r->dberr, sizeof(r->dberr), "%s", sqlite3_errmsg(db));
  r->ran = r->dberr[0] == '\0';
cleanup:
  sqlite3_finalize(st);
  sqlite3_close(db);
  EVP_MD_CTX_free(md);
  return NULL;
}

static void report(struct tools_audit_verify_report *rep, int64_t bad, const char *msg)
{
  rep->ok = 0;
  if (!rep->first_bad_seq)
    rep->first_bad_seq = bad;
  snprintf(rep->message, sizeof(rep->message), "%s", msg);
}

/* Joins range results in order: the first problem wins. *head gets the
 * last verified hash, *at_anchor the hash at the anchored size. */
static void merge(struct range *rs, int n, struct tools_audit_verify_report *rep, uint8_t head[TOOLS_AUDIT_HASH_LEN],
                  uint8_t at_anchor[TOOLS_AUDIT_HASH_LEN], int *have_at_anchor)
{
  static const uint8_t zero[TOOLS_AUDIT_HASH_LEN];
  memset(head, 0, TOOLS_AUDIT_HASH_LEN);
  for (int i = 0; i < n && rep->ok; i++) {
    struct range *r = &rs[i];
    if (r->have_first && memcmp(r->first_prev, i ? rs[i - 1].last : zero, TOOLS_AUDIT_HASH_LEN) != 0) {
      char m[160];
      snprintf(m, sizeof(m), "row %lld does not link to row %lld (modified, inserted or reordered)", (long long)r->lo,
               (long long)r->lo - 1);
      report(rep, r->lo, m);
      break;
    }
    rep->rows += r->rows;
    if (r->bad) {
      report(rep, r->bad, r->message);
      break;
    }
    memcpy(head, r->last, TOOLS_AUDIT_HASH_LEN);
    if (r->have_at_anchor) {
      memcpy(at_anchor, r->at_anchor, TOOLS_AUDIT_HASH_LEN);
      *have_at_anchor = 1;
    }
  }
}

static void compare_anchor(int64_t rows, const uint8_t *at_anchor, int have_at_anchor,
                           const struct tools_audit_checkpoint *anchor, struct tools_audit_verify_report *rep)
{
  char m[200];
  if (!anchor || !rep->ok)
    return;
  rep->anchored_size = anchor->size;
  if (rows < anchor->size) {
    snprintf(m, sizeof(m), "truncated: have %lld, anchored %lld", (long long)rows, (long long)anchor->size);
    report(rep, rows + 1, m);
  } else if (anchor->size > 0 && (!have_at_anchor || memcmp(at_anchor, anchor->head, TOOLS_AUDIT_HASH_LEN) != 0)) {
    snprintf(m, sizeof(m), "rewritten: the head at %lld differs from the checkpoint (history before it was replaced)",
             (long long)anchor->size);
    report(rep, 0, m);
  }
}

static int worker_count(int64_t size)
{
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int64_t n = size / ROWS_PER_WORKER_MIN;
  if (n > cpus)
    n = cpus;
  if (n > MAX_WORKERS)
    n = MAX_WORKERS;
  return n < 1 ? 1 : (int)n;
}

/* Splits 1..size into ranges, runs them (threads when worth it), merges. */
static mx_err verify_ranges(struct tools_audit *a, int64_t size, const struct tools_audit_checkpoint *anchor,
                            struct tools_audit_verify_report *rep, uint8_t head[TOOLS_AUDIT_HASH_LEN], char *err)
{
  struct range rs[MAX_WORKERS];
  pthread_t th[MAX_WORKERS];
  int started[MAX_WORKERS] = {0};
  int n = worker_count(size);
  memset(rs, 0, sizeof(rs));
  for (int i = 0; i < n; i++) {
    rs[i].db_path = a->db_path;
    rs[i].sha256 = a->sha256;
    rs[i].lo = 1 + size * i / n;
    rs[i].hi = size * (i + 1) / n;
    rs[i].anchor_size = anchor ? anchor->size : -1;
    started[i] = i > 0 && pthread_create(&th[i], NULL, range_run, &rs[i]) == 0;
  }
  range_run(&rs[0]);
  for (int i = 1; i < n; i++) {
    if (started[i])
      pthread_join(th[i], NULL);
    else
      range_run(&rs[i]); /* no thread: do it here */
  }
  for (int i = 0; i < n; i++)
    if (!rs[i].ran)
      return mx_fail(MX_ERR_DB, err, "audit '%s': cannot read the chain: %s", a->device, rs[i].dberr);
  uint8_t at_anchor[TOOLS_AUDIT_HASH_LEN];
  int have_at_anchor = 0;
  merge(rs, n, rep, head, at_anchor, &have_at_anchor);
  if (rep->ok)
    compare_anchor(rep->rows, at_anchor, have_at_anchor, anchor, rep);
  return MX_OK;
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
  int64_t size = 0;
  uint8_t head[TOOLS_AUDIT_HASH_LEN];
  mx_err rc = tools_audit_head(a, &size, head, err);
  if (!rc)
    rc = verify_ranges(a, size, anchor, rep, head, err);
  if (rc)
    return rc;
  if (rep->ok) {
    char hex[2 * TOOLS_AUDIT_HASH_LEN + 1];
    mx_hex(head, TOOLS_AUDIT_HASH_LEN, hex);
    hex[16] = '\0';
    snprintf(rep->message, sizeof(rep->message), "ok: %lld records, head %s, anchored %lld", (long long)rep->rows, hex,
             (long long)rep->anchored_size);
  }
  return MX_OK;
}
