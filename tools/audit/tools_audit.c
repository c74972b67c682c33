/*
 * tools/audit/tools_audit.c - opening a device's chain, appending records
 * (one transaction each, or batched) and reading them back. The record is
 * canonical JSON (mx_json_canonical); its hash links to the previous one.
 * SQLite triggers refuse UPDATE and DELETE so a mistake cannot rewrite
 * history; a deliberate attacker can, which is what verify is for.
 * Layer: tools/; common/ + OpenSSL only. Input cJSON is borrowed.
 */
/* SHA256_Init & co. are deprecated in OpenSSL 3 but still the fastest path. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "tools_audit_int.h"

#include <openssl/sha.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_util.h"

static const struct mx_migration migrations[] = {
    {1, "CREATE TABLE audit_chain(seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, record TEXT NOT NULL,"
        " prev_hash BLOB NOT NULL, hash BLOB NOT NULL);"
        "CREATE INDEX audit_chain_time ON audit_chain(time_ms);"
        "CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain"
        " BEGIN SELECT RAISE(ABORT, 'audit chain is append-only'); END;"
        "CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain"
        " BEGIN SELECT RAISE(ABORT, 'audit chain is append-only'); END;"},
};

static int valid_device(const char *d)
{
  size_t n = d ? strlen(d) : 0;
  if (n == 0 || n > 64 || d[0] == '.')
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!(((d[i] | 0x20) >= 'a' && (d[i] | 0x20) <= 'z') || (d[i] >= '0' && d[i] <= '9') || strchr("._-", d[i])))
      return 0;
  return 1;
}

static char *path_fmt(const char *dir, const char *device, const char *suffix)
{
  struct mx_buf b = MX_BUF_INIT(8192);
  if (mx_buf_addf(&b, "%s/audit/%s%s", dir, device, suffix))
    return NULL;
  return mx_buf_take(&b);
}

/* A read-only file (or directory) still opens, read-only, so verify and show
 * work; appends then fail and the engine refuses to run anything. */
static mx_err open_db(struct tools_audit *a, char *err)
{
  /* A new chain gets 16 KiB pages: records are ~600 bytes, and bigger
   * pages make verify's full scans much faster. */
  mx_err rc = mx_db_open_paged(a->db_path, 16384, &a->db, err);
  /* FULL: an intent must survive a power cut once the call has started
   * (NORMAL in WAL mode only survives a crash of the process). */
  if (rc == MX_OK)
    rc = mx_db_exec(a->db, "PRAGMA synchronous=FULL", err);
  if (rc == MX_OK)
    return mx_db_migrate(a->db, "tools_audit", migrations, 1, err);
  if (access(a->db_path, F_OK) != 0)
    return rc;
  if (sqlite3_open_v2(a->db_path, &a->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
    sqlite3_close(a->db);
    a->db = NULL;
    return rc;
  }
  a->readonly = 1;
  return MX_OK;
}

/* A process holds one chain per device, mostly idle: an open connection
 * costs some 80 KB resident (schema, a 16 KiB page buffer, the WAL index
 * mapping), 80 MB for 1,000 devices. So the connection is opened when a
 * call needs it; reads close it again, appends keep it (a tool call appends
 * its intent and then its result) until tools_audit_release_idle. All with
 * a->mu held (or before a is shared). */
static void conn_drop(struct tools_audit *a)
{
  sqlite3_finalize(a->st_head);
  sqlite3_finalize(a->st_insert);
  a->st_head = a->st_insert = NULL;
  if (a->db)
    mx_db_close(a->db);
  a->db = NULL;
}

/* *opened (may be NULL) tells whether this call opened it. */
static mx_err conn_get(struct tools_audit *a, int *opened, char *err)
{
  if (opened)
    *opened = !a->db;
  if (a->db)
    return MX_OK;
  mx_err rc = open_db(a, err);
  if (!rc)
    rc = mx_db_prepare(a->db, "SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1", &a->st_head, err);
  if (!rc && !a->readonly)
    rc = mx_db_prepare(a->db, "INSERT INTO audit_chain(seq, time_ms, record, prev_hash, hash) VALUES(?,?,?,?,?)",
                       &a->st_insert, err);
  if (rc)
    conn_drop(a);
  return rc;
}

/* After a read: close what the read opened, else keep no pages cached. */
static void conn_done(struct tools_audit *a, int opened)
{
  if (opened)
    conn_drop(a);
  else if (a->db)
    sqlite3_db_release_memory(a->db);
}

void tools_audit_release_idle(struct tools_audit *a, int64_t idle_ms)
{
  pthread_mutex_lock(&a->mu);
  if (a->db && mx_mono_ms() - a->last_used_ms >= idle_ms)
    conn_drop(a);
  pthread_mutex_unlock(&a->mu);
}

mx_err tools_audit_open(const struct tools_audit_opts *o, struct tools_audit **out, char *err)
{
  if (!o || !o->data_dir || !valid_device(o->device))
    return mx_fail(MX_ERR_INVALID, err, "audit: device: expected [A-Za-z0-9._-]{1,64}, got '%s'",
                   o && o->device ? o->device : "(null)");
  struct tools_audit *a = calloc(1, sizeof(*a));
  if (!a)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  pthread_mutex_init(&a->mu, NULL);
  struct mx_buf dir = MX_BUF_INIT(8192);
  mx_err rc = mx_buf_addf(&dir, "%s/audit", o->data_dir);
  if (!rc)
    rc = mx_mkdir_p(mx_buf_cstr(&dir), 0700, err);
  a->device = mx_strdup(o->device);
  a->db_path = path_fmt(o->data_dir, o->device, ".db");
  a->ckpt_path = path_fmt(o->data_dir, o->device, ".checkpoint");
  a->ckpt_log_path = path_fmt(o->data_dir, o->device, ".checkpoints");
  a->key_path = o->key_path ? mx_strdup(o->key_path) : path_fmt(o->data_dir, "audit_ed25519", ".key");
  a->md = EVP_MD_CTX_new();
  a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  if (!rc && (!a->device || !a->db_path || !a->ckpt_path || !a->ckpt_log_path || !a->key_path || !a->md ||
              !a->sha256))
    rc = mx_fail(MX_ERR_NOMEM, err, "out of memory");
  if (!rc)
    rc = conn_get(a, NULL, err); /* creates and migrates a new chain; tells read-only */
  mx_buf_release(&dir);
  if (rc) {
    tools_audit_close(a);
    return rc;
  }
  conn_drop(a);
  *out = a;
  return MX_OK;
}

void tools_audit_close(struct tools_audit *a)
{
  if (!a)
    return;
  conn_drop(a);
  EVP_PKEY_free(a->key);
  EVP_MD_CTX_free(a->md);
  EVP_MD_free(a->sha256);
  free(a->device);
  free(a->db_path);
  free(a->ckpt_path);
  free(a->ckpt_log_path);
  free(a->key_path);
  pthread_mutex_destroy(&a->mu);
  free(a);
}

const char *tools_audit_device(const struct tools_audit *a) { return a->device; }
const char *tools_audit_db_path(const struct tools_audit *a) { return a->db_path; }

/* An empty -wal holds no frames: it reads as the same chain as no -wal.
 * verify's read-only connections leave one behind (only a read-write
 * connection deletes it on close), the next read-write close deletes it
 * again; counting that as a change made every health round after the
 * first reopen every chain once more. A write makes the WAL grow. */
static size_t stamp_file(const char *path, const char *suffix, int empty_is_absent, char *out, size_t n)
{
  char p[4096];
  struct stat st;
  snprintf(p, sizeof(p), "%s%s", path, suffix);
  if (stat(p, &st) != 0 || (empty_is_absent && st.st_size == 0))
    return (size_t)snprintf(out, n, "-;");
  return (size_t)snprintf(out, n, "%llu:%lld:%lld.%ld:%lld.%ld;", (unsigned long long)st.st_ino,
                          (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                          (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

void tools_audit_stamp(const struct tools_audit *a, char out[TOOLS_AUDIT_STAMP_LEN])
{
  size_t o = stamp_file(a->db_path, "", 0, out, TOOLS_AUDIT_STAMP_LEN);
  if (o < TOOLS_AUDIT_STAMP_LEN)
    o += stamp_file(a->db_path, "-wal", 1, out + o, TOOLS_AUDIT_STAMP_LEN - o);
  if (o < TOOLS_AUDIT_STAMP_LEN)
    stamp_file(a->ckpt_path, "", 0, out + o, TOOLS_AUDIT_STAMP_LEN - o);
}

int audit_hash_md(EVP_MD_CTX *md, const EVP_MD *sha256, int64_t seq, const uint8_t prev[TOOLS_AUDIT_HASH_LEN],
                  const void *rec, size_t n, uint8_t out[TOOLS_AUDIT_HASH_LEN])
{
  (void)md;
  (void)sha256;
  uint8_t be[8];
  for (int i = 0; i < 8; i++)
    be[i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
  /* The one-shot SHA256_* API, not EVP: EVP's per-call dispatch costs ~40%
   * of verify time for ~600-byte records (bench/tools). Same digest. */
  SHA256_CTX c;
  return SHA256_Init(&c) == 1 && SHA256_Update(&c, AUDIT_DOMAIN, AUDIT_DOMAIN_LEN) == 1 &&
         SHA256_Update(&c, be, 8) == 1 && SHA256_Update(&c, prev, TOOLS_AUDIT_HASH_LEN) == 1 &&
         SHA256_Update(&c, rec, n) == 1 && SHA256_Final(out, &c) == 1;
}

int audit_hash(struct tools_audit *a, int64_t seq, const uint8_t prev[TOOLS_AUDIT_HASH_LEN], const void *rec,
               size_t n, uint8_t out[TOOLS_AUDIT_HASH_LEN])
{
  return audit_hash_md(a->md, a->sha256, seq, prev, rec, n, out);
}

void audit_iso_time(int64_t ms, char out[32])
{
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static int add_str(cJSON *o, const char *k, const char *v)
{
  return (v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)) != NULL;
}

/* The record as a cJSON tree (owned); args are duplicated in. */
static cJSON *entry_json(const struct tools_audit *a, const struct tools_audit_entry *e, int64_t now)
{
  cJSON *o = cJSON_CreateObject();
  cJSON *op = cJSON_CreateObject();
  cJSON *args = e->args ? cJSON_Duplicate(e->args, 1) : cJSON_CreateNull();
  char iso[32];
  audit_iso_time(now, iso);
  int ok = o && op && args && add_str(o, "kind", e->kind) && add_str(o, "device", a->device) &&
           add_str(o, "time", iso) && cJSON_AddNumberToObject(o, "time_ms", (double)now) &&
           add_str(o, "call_id", e->call_id) && add_str(op, "mxid", e->operator_mxid) &&
           add_str(op, "device_id", e->operator_device) && add_str(op, "verification", e->verification) &&
           add_str(op, "master_key", e->operator_master_key) &&
           add_str(o, "room_id", e->room_id) && add_str(o, "event_id", e->event_id) && add_str(o, "tool", e->tool) &&
           add_str(o, "decision", e->decision) && add_str(o, "approval", e->approval_ref) &&
           add_str(o, "status", e->status) && add_str(o, "output_sha256", e->output_sha256) &&
           cJSON_AddNumberToObject(o, "exit_code", e->exit_code) && cJSON_AddNumberToObject(o, "signal", e->signal) &&
           cJSON_AddNumberToObject(o, "duration_ms", (double)e->duration_ms) &&
           cJSON_AddNumberToObject(o, "intent_seq", (double)e->intent_seq);
  if (ok) {
    cJSON_AddItemToObject(o, "operator", op);
    op = NULL;
    ok = cJSON_AddItemToObject(o, "args", args);
    if (ok)
      args = NULL;
  }
  cJSON_Delete(op);
  cJSON_Delete(args);
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static mx_err read_head(struct tools_audit *a, int64_t *size, uint8_t head[TOOLS_AUDIT_HASH_LEN], char *err)
{
  sqlite3_reset(a->st_head);
  int s = sqlite3_step(a->st_head);
  memset(head, 0, TOOLS_AUDIT_HASH_LEN);
  *size = 0;
  if (s == SQLITE_ROW) {
    *size = sqlite3_column_int64(a->st_head, 0);
    if (sqlite3_column_bytes(a->st_head, 1) == TOOLS_AUDIT_HASH_LEN)
      memcpy(head, sqlite3_column_blob(a->st_head, 1), TOOLS_AUDIT_HASH_LEN);
  }
  sqlite3_reset(a->st_head);
  if (s != SQLITE_ROW && s != SQLITE_DONE)
    return mx_fail(MX_ERR_DB, err, "audit '%s': cannot read the head: %s", a->device, sqlite3_errmsg(a->db));
  return MX_OK;
}

/* Inserts one record after (seq-1, prev); fills prev with the new hash. */
static mx_err insert_one(struct tools_audit *a, const struct tools_audit_entry *e, int64_t seq,
                         uint8_t prev[TOOLS_AUDIT_HASH_LEN], char *err)
{
  int64_t now = e->time_ms ? e->time_ms : mx_now_ms();
  cJSON *rec = entry_json(a, e, now);
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  uint8_t h[TOOLS_AUDIT_HASH_LEN];
  mx_err rc = rec ? mx_json_canonical(rec, &canon, err) : mx_fail(MX_ERR_NOMEM, err, "out of memory");
  cJSON_Delete(rec);
  if (rc)
    goto cleanup;
  if (!audit_hash(a, seq, prev, canon.buf, canon.len, h)) {
    rc = mx_fail(MX_ERR_CRYPTO, err, "audit: sha-256 failed");
    goto cleanup;
  }
  sqlite3_stmt *st = a->st_insert;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, seq);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_text(st, 3, canon.buf, (int)canon.len, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, prev, TOOLS_AUDIT_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, h, TOOLS_AUDIT_HASH_LEN, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = mx_fail(MX_ERR_DB, err, "audit '%s': cannot append record %lld: %s", a->device, (long long)seq,
                 sqlite3_errmsg(a->db));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (!rc)
    memcpy(prev, h, TOOLS_AUDIT_HASH_LEN);
cleanup:
  mx_buf_release(&canon);
  return rc;
}

mx_err tools_audit_append_batch(struct tools_audit *a, const struct tools_audit_entry *e, size_t n,
                                int64_t *first_seq, char *err)
{
  if (a->readonly)
    return mx_fail(MX_ERR_IO, err, "audit '%s': database '%s' is read-only", a->device, a->db_path);
  pthread_mutex_lock(&a->mu);
  int64_t size;
  uint8_t prev[TOOLS_AUDIT_HASH_LEN];
  mx_err rc = conn_get(a, NULL, err);
  if (!rc && a->readonly)
    rc = mx_fail(MX_ERR_IO, err, "audit '%s': database '%s' is read-only", a->device, a->db_path);
  if (!rc)
    rc = mx_db_begin(a->db, err);
  if (!rc)
    rc = read_head(a, &size, prev, err);
  for (size_t i = 0; !rc && i < n; i++)
    rc = insert_one(a, &e[i], size + 1 + (int64_t)i, prev, err);
  if (!rc)
    rc = mx_db_commit(a->db, err);
  if (rc)
    mx_db_rollback(a->db);
  else if (first_seq)
    *first_seq = size + 1;
  if (a->db)
    sqlite3_db_release_memory(a->db);
  a->last_used_ms = mx_mono_ms();
  pthread_mutex_unlock(&a->mu);
  return rc;
}

mx_err tools_audit_append(struct tools_audit *a, const struct tools_audit_entry *e, int64_t *seq, char *err)
{
  return tools_audit_append_batch(a, e, 1, seq, err);
}

mx_err tools_audit_head(struct tools_audit *a, int64_t *size, uint8_t head[TOOLS_AUDIT_HASH_LEN], char *err)
{
  pthread_mutex_lock(&a->mu);
  int opened = 0;
  mx_err rc = conn_get(a, &opened, err);
  if (!rc)
    rc = read_head(a, size, head, err);
  conn_done(a, opened);
  pthread_mutex_unlock(&a->mu);
  return rc;
}

/* Rows as owned cJSON objects: the record plus seq, prev_hash, hash. */
static mx_err query_records(struct tools_audit *a, const char *sql, int64_t bind, cJSON **out, char *err)
{
  sqlite3_stmt *st = NULL;
  cJSON *arr = cJSON_CreateArray();
  pthread_mutex_lock(&a->mu);
  int opened = 0;
  mx_err rc = arr ? conn_get(a, &opened, err) : mx_fail(MX_ERR_NOMEM, err, "out of memory");
  if (!rc)
    rc = mx_db_prepare(a->db, sql, &st, err);
  if (!rc)
    sqlite3_bind_int64(st, 1, bind);
  int s;
  while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
    cJSON *rec = cJSON_ParseWithLength((const char *)sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1));
    if (!rec)
      rec = cJSON_CreateObject(); /* a tampered record still shows up, empty */
    char hex[2 * TOOLS_AUDIT_HASH_LEN + 1] = "";
    cJSON_AddNumberToObject(rec, "seq", (double)sqlite3_column_int64(st, 0));
    if (sqlite3_column_bytes(st, 2) == TOOLS_AUDIT_HASH_LEN)
      mx_hex(sqlite3_column_blob(st, 2), TOOLS_AUDIT_HASH_LEN, hex);
    cJSON_AddStringToObject(rec, "prev_hash", hex);
    hex[0] = '\0';
    if (sqlite3_column_bytes(st, 3) == TOOLS_AUDIT_HASH_LEN)
      mx_hex(sqlite3_column_blob(st, 3), TOOLS_AUDIT_HASH_LEN, hex);
    cJSON_AddStringToObject(rec, "hash", hex);
    cJSON_AddItemToArray(arr, rec);
  }
  if (!rc && s != SQLITE_DONE)
    rc = mx_fail(MX_ERR_DB, err, "audit '%s': cannot read records: %s", a->device, sqlite3_errmsg(a->db));
  sqlite3_finalize(st);
  conn_done(a, opened);
  pthread_mutex_unlock(&a->mu);
  if (rc) {
    cJSON_Delete(arr);
    return rc;
  }
  *out = arr;
  return MX_OK;
}

mx_err tools_audit_recent(struct tools_audit *a, int n, cJSON **out, char *err)
{
  return query_records(a,
                       "SELECT seq, record, prev_hash, hash FROM (SELECT * FROM audit_chain ORDER BY seq DESC"
                       " LIMIT ?) ORDER BY seq",
                       n > 0 ? n : -1, out, err);
}

mx_err tools_audit_since(struct tools_audit *a, int64_t since_ms, cJSON **out, char *err)
{
  return query_records(a, "SELECT seq, record, prev_hash, hash FROM audit_chain WHERE time_ms >= ? ORDER BY seq",
                       since_ms, out, err);
}

/* A "pending" intent no result names: its process died while the call ran.
 * json_valid first, so one tampered record cannot stop the sweep (verify
 * reports it); NOT IN builds the set of closed intents once. */
#define ORPHANS_SQL                                                                                                   \
  "SELECT seq, record, 0, 0 FROM audit_chain WHERE seq > ? AND CASE WHEN json_valid(record) THEN"                     \
  " json_extract(record, '$.kind') = 'intent' AND json_extract(record, '$.status') = 'pending' END"                    \
  " AND seq NOT IN (SELECT json_extract(record, '$.intent_seq') FROM audit_chain WHERE CASE WHEN json_valid(record)"  \
  " THEN json_extract(record, '$.kind') = 'result' END) ORDER BY seq"

mx_err tools_audit_close_interrupted(struct tools_audit *a, int *closed, char *err)
{
  cJSON *orphans = NULL;
  *closed = 0;
  mx_err rc = query_records(a, ORPHANS_SQL, 0, &orphans, err);
  int n = rc ? 0 : cJSON_GetArraySize(orphans);
  struct tools_audit_entry *e = n ? calloc((size_t)n, sizeof(*e)) : NULL;
  if (n && !e)
    rc = mx_fail(MX_ERR_NOMEM, err, "out of memory");
  for (int i = 0; !rc && i < n; i++) {
    const cJSON *r = cJSON_GetArrayItem(orphans, i);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(r, "operator");
    int64_t seq = 0;
    mx_json_int(r, "seq", &seq);
    e[i] = (struct tools_audit_entry){.kind = "result", .intent_seq = seq, .call_id = mx_json_str(r, "call_id"),
                                      .operator_mxid = mx_json_str(op, "mxid"), .operator_device = mx_json_str(op, "device_id"),
                                      .verification = mx_json_str(op, "verification"), .room_id = mx_json_str(r, "room_id"),
                                      .event_id = mx_json_str(r, "event_id"), .tool = mx_json_str(r, "tool"),
                                      .args = cJSON_GetObjectItemCaseSensitive(r, "args"),
                                      .decision = mx_json_str(r, "decision"), .approval_ref = mx_json_str(r, "approval"),
                                      .status = "interrupted", .exit_code = -1};
  }
  if (!rc && n)
    rc = tools_audit_append_batch(a, e, (size_t)n, NULL, err);
  if (!rc)
    *closed = n;
  free(e);
  cJSON_Delete(orphans);
  tools_audit_release_idle(a, 0); /* once at start: the chain may then idle for long */
  return rc;
}
