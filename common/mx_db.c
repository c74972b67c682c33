/* mx_db.c - SQLite open + migrations; see mx_db.h. */
#include "mx_db.h"
#include "mx_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* WAL is persistent, so only the first open of a new file switches it. That
 * switch needs the exclusive lock, and connections racing for it (identities
 * starting together on one new file) get SQLITE_BUSY without the busy
 * handler (SQLite's deadlock rule): retry within the busy timeout. */
static mx_err set_wal(sqlite3 *db, char *err)
{
  int64_t deadline = mx_mono_ms() + 5000;
  for (;;) {
    char *msg = NULL;
    int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, &msg);
    if (rc == SQLITE_OK)
      return MX_OK;
    mx_err e = mx_fail(MX_ERR_DB, err, "sqlite: %s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    if ((rc & 0xff) != SQLITE_BUSY || mx_mono_ms() > deadline)
      return e;
    sqlite3_sleep(5);
  }
}

/* SQLite's own handler (sqlite3_busy_timeout) sleeps 1, 2, 5 ... up to
 * 100 ms between tries: with many identities committing on their own
 * connections (a restart of 1,000), writers slept long after the lock was
 * free and start-up crawled. Retry after 0.1 ms, doubling up to 2 ms, for
 * the same 5 s in all. */
static _Thread_local int64_t busy_since_ms;

static int busy_retry(void *ud, int tries)
{
  (void)ud;
  int64_t now = mx_mono_ms();
  if (tries == 0)
    busy_since_ms = now;
  if (now - busy_since_ms >= 5000)
    return 0;
  long us = tries < 5 ? 100L << tries : 2000L;
  struct timespec ts = { 0, us * 1000L };
  nanosleep(&ts, NULL);
  return 1;
}

/* A process may hold many connections at once (1,000 devices starting
 * up open an audit chain each). By default SQLite gives each
 * connection's page cache a bulk allocation of 20 pages up front (330 KB
 * with the audit chain's 16 KiB pages) used or not; without it a cache holds
 * only the pages it has read. Must precede SQLite's initialisation (the
 * first open); a no-op afterwards. */
static void configure_sqlite(void)
{
  sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

mx_err mx_db_open_paged(const char *path, int page_size, sqlite3 **out, char *err)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, configure_sqlite);
  /* SQLite creates the file; we never open() it ourselves. On Linux,
   * close() of *any* descriptor of a file drops every POSIX lock the process
   * holds on it, SQLite's included: a daemon opening one more connection
   * would silently lose its WAL read lock, and a CLI run beside it could
   * then checkpoint and delete the -wal/-shm files still in use (SQLite's
   * "how to corrupt" list). The mode is narrowed by path right after the
   * open, before anything is written; -wal and -shm copy it from the
   * database file when SQLite creates them. */
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
      SQLITE_OK) {
    mx_err rc = mx_fail(MX_ERR_DB, err, "cannot open database '%s': %s", path,
                        db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return rc;
  }
  if (sqlite3_db_readonly(db, "main") == 1) { /* SQLite falls back to read-only silently */
    sqlite3_close(db);
    return mx_fail(MX_ERR_DB, err, "cannot open database '%s' for writing: %s", path, strerror(EACCES));
  }
  struct stat st;
  if (stat(path, &st) == 0 && (st.st_mode & 077) && chmod(path, 0600) != 0) {
    mx_err rc = mx_fail(MX_ERR_IO, err, "cannot make database '%s' private (mode 0600): %s", path, strerror(errno));
    sqlite3_close(db);
    return rc;
  }
  sqlite3_busy_handler(db, busy_retry, NULL);
  mx_err rc = MX_OK;
  if (page_size > 0) {
    /* Takes effect only while the file is still empty, i.e. before WAL mode
     * writes the first page; an existing database keeps its size. */
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA page_size=%d", page_size);
    rc = mx_db_exec(db, sql, err);
  }
  if (!rc)
    rc = set_wal(db, err);
  if (!rc)
    rc = mx_db_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;", err);
  if (rc) {
    sqlite3_close(db);
    return rc;
  }
  *out = db;
  return MX_OK;
}

mx_err mx_db_open(const char *path, sqlite3 **out, char *err)
{
  return mx_db_open_paged(path, 0, out, err);
}

void mx_db_close(sqlite3 *db)
{
  sqlite3_close(db);
}

mx_err mx_db_exec(sqlite3 *db, const char *sql, char *err)
{
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    mx_err rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return rc;
  }
  return MX_OK;
}

mx_err mx_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err)
{
  if (!db) { /* SQLite's own answer would be "out of memory" */
    *st = NULL;
    return mx_fail(MX_ERR_DB, err, "sqlite prepare: no database connection (internal error)");
  }
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
    return mx_fail(MX_ERR_DB, err, "sqlite prepare: %s", sqlite3_errmsg(db));
  return MX_OK;
}

mx_err mx_db_begin(sqlite3 *db, char *err) { return mx_db_exec(db, "BEGIN IMMEDIATE", err); }
mx_err mx_db_commit(sqlite3 *db, char *err) { return mx_db_exec(db, "COMMIT", err); }
void mx_db_rollback(sqlite3 *db) { sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); }

static int current_version(sqlite3 *db, const char *module)
{
  sqlite3_stmt *st = NULL;
  int v = 0;
  if (sqlite3_prepare_v2(db, "SELECT version FROM schema_versions WHERE module=?", -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, module, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

mx_err mx_db_migrate(sqlite3 *db, const char *module, const struct mx_migration *m, int n, char *err)
{
  mx_err rc = mx_db_exec(db,
      "CREATE TABLE IF NOT EXISTS schema_versions(module TEXT PRIMARY KEY, version INTEGER NOT NULL)", err);
  if (rc)
    return rc;
  /* A newer mxfleet wrote this database (a downgrade): its tables may mean
   * things this binary does not know, so nothing is read or written. */
  int stored = current_version(db, module);
  if (stored > n) {
    const char *file = sqlite3_db_filename(db, "main");
    return mx_fail(MX_ERR_CONFLICT, err,
                   "%s: schema of '%s' is version %d, newer than this mxfleet %s knows (%d): it was written by "
                   "a newer release; run that release or restore the backup taken before upgrading "
                   "(docs/upgrading.md)",
                   file && *file ? file : "database", module, stored, MXFLEET_VERSION, n);
  }
  /* Up to date (every start but the first after an upgrade): no write
   * transaction per step, which every identity's connection would queue
   * for at once. The version only grows, so this read cannot be stale. */
  if (stored == n)
    return MX_OK;
  for (int i = 0; i < n; i++) {
    if (m[i].version != i + 1)
      return mx_fail(MX_ERR_INTERNAL, err, "migration %d of '%s' is numbered %d", i + 1, module, m[i].version);
    /* The version is read inside the write transaction: several threads
     * (identities starting at once) may migrate the same database, and only
     * the first may apply a step. */
    rc = mx_db_begin(db, err);
    if (rc)
      return rc;
    int have = current_version(db, module);
    if (have < 0)
      rc = mx_fail(MX_ERR_DB, err, "cannot read schema version of '%s'", module);
    else if (m[i].version <= have) {
      mx_db_rollback(db);
      continue;
    }
    if (!rc)
      rc = mx_db_exec(db, m[i].sql, err);
    if (!rc)
      rc = mx_db_run(db, err, "INSERT INTO schema_versions(module, version) VALUES(?, ?) "
                              "ON CONFLICT(module) DO UPDATE SET version=excluded.version",
                     "sd", module, m[i].version);
    if (!rc)
      rc = mx_db_commit(db, err);
    if (rc) {
      mx_db_rollback(db);
      return rc;
    }
  }
  return MX_OK;
}

static mx_err bind_va(sqlite3 *db, sqlite3_stmt *st, const char *types, va_list ap, char *err)
{
  for (int i = 0; types && types[i]; i++) {
    int rc = SQLITE_OK;
    switch (types[i]) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i + 1);
      break;
    }
    case 'i': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
    case 'd': rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int)); break;
    default: return mx_fail(MX_ERR_INTERNAL, err, "mx_db: unknown bind type '%c'", types[i]);
    }
    if (rc != SQLITE_OK)
      return mx_fail(MX_ERR_DB, err, "sqlite bind: %s", sqlite3_errmsg(db));
  }
  return MX_OK;
}

/* Prepares sql, binds the arguments and steps once; *st stays open. */
static mx_err prepare_step(sqlite3 *db, sqlite3_stmt **st, int *step, char *err, const char *sql, const char *types,
                           va_list ap)
{
  mx_err rc = mx_db_prepare(db, sql, st, err);
  if (!rc)
    rc = bind_va(db, *st, types, ap, err);
  if (!rc) {
    *step = sqlite3_step(*st);
    if (*step != SQLITE_DONE && *step != SQLITE_ROW)
      rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(db));
  }
  if (rc) {
    sqlite3_finalize(*st);
    *st = NULL;
  }
  return rc;
}

mx_err mx_db_run(sqlite3 *db, char *err, const char *sql, const char *types, ...)
{
  sqlite3_stmt *st = NULL;
  int step = 0;
  va_list ap;
  va_start(ap, types);
  mx_err rc = prepare_step(db, &st, &step, err, sql, types, ap);
  va_end(ap);
  sqlite3_finalize(st);
  return rc;
}

mx_err mx_db_query(sqlite3 *db, sqlite3_stmt **out, char *err, const char *sql, const char *types, ...)
{
  sqlite3_stmt *st = NULL;
  int step = 0;
  va_list ap;
  va_start(ap, types);
  mx_err rc = prepare_step(db, &st, &step, err, sql, types, ap);
  va_end(ap);
  if (rc)
    return rc;
  if (step == SQLITE_ROW) {
    *out = st;
    return MX_OK;
  }
  sqlite3_finalize(st);
  return MX_ERR_NOT_FOUND;
}

char *mx_db_col_str(sqlite3_stmt *st, int col)
{
  const unsigned char *s = sqlite3_column_text(st, col);
  if (!s)
    return NULL;
  size_t n = strlen((const char *)s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}
