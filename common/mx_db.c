/* mx_db.c - SQLite open + migrations; see mx_db.h. */
#include "mx_db.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

mx_err mx_db_open(const char *path, sqlite3 **out, char *err)
{
  /* Create the file 0600 ourselves so SQLite never makes it world-readable. */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return mx_fail(MX_ERR_IO, err, "cannot open database '%s'", path);
  fchmod(fd, 0600);
  close(fd);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
    mx_err rc = mx_fail(MX_ERR_DB, err, "cannot open database '%s': %s", path,
                        db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return rc;
  }
  sqlite3_busy_timeout(db, 5000);
  mx_err rc = mx_db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;", err);
  if (rc) {
    sqlite3_close(db);
    return rc;
  }
  *out = db;
  return MX_OK;
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
  int have = current_version(db, module);
  if (have < 0)
    return mx_fail(MX_ERR_DB, err, "cannot read schema version of '%s'", module);
  for (int i = 0; i < n; i++) {
    if (m[i].version != i + 1)
      return mx_fail(MX_ERR_INTERNAL, err, "migration %d of '%s' is numbered %d", i + 1, module, m[i].version);
    if (m[i].version <= have)
      continue;
    rc = mx_db_begin(db, err);
    if (!rc)
      rc = mx_db_exec(db, m[i].sql, err);
    if (!rc) {
      sqlite3_stmt *st = NULL;
      rc = mx_db_prepare(db, "INSERT INTO schema_versions(module, version) VALUES(?, ?) "
                             "ON CONFLICT(module) DO UPDATE SET version=excluded.version", &st, err);
      if (!rc) {
        sqlite3_bind_text(st, 1, module, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, m[i].version);
        if (sqlite3_step(st) != SQLITE_DONE)
          rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
      }
    }
    if (!rc)
      rc = mx_db_commit(db, err);
    if (rc) {
      mx_db_rollback(db);
      return rc;
    }
  }
  return MX_OK;
}
