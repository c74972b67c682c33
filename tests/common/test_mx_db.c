/* mx_db: migrations are applied once even when several threads (identities
 * starting together) migrate the same database at the same moment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_db.h"

static char path[256];
static const struct mx_migration steps[] = {
  { 1, "CREATE TABLE a(x INTEGER)" },
  { 2, "CREATE TABLE b(y INTEGER); INSERT INTO a(x) VALUES (1)" },
  { 3, "ALTER TABLE b ADD COLUMN z TEXT" },
};

static void *migrate(void *ud)
{
  mx_err *rc = ud;
  sqlite3 *db = NULL;
  char err[MX_ERRBUF_LEN];
  *rc = mx_db_open(path, &db, err);
  if (!*rc)
    *rc = mx_db_migrate(db, "t", steps, 3, err);
  if (*rc)
    fprintf(stderr, "migrate: %s\n", err);
  mx_db_close(db);
  return NULL;
}

static void concurrent_migrations_apply_each_step_once(void **state)
{
  (void)state;
  snprintf(path, sizeof(path), "/tmp/mx-db-test-%d.db", (int)getpid());
  unlink(path);
  pthread_t th[8];
  mx_err rc[8];
  for (int i = 0; i < 8; i++)
    pthread_create(&th[i], NULL, migrate, &rc[i]);
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 8; i++)
    assert_int_equal(rc[i], MX_OK);
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(path, &db, NULL), MX_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(mx_db_query(db, &st, NULL, "SELECT COUNT(*) FROM a", ""), MX_OK);
  assert_int_equal(sqlite3_column_int(st, 0), 1); /* step 2 ran exactly once */
  sqlite3_finalize(st);
  assert_int_equal(mx_db_query(db, &st, NULL, "SELECT version FROM schema_versions WHERE module='t'", ""), MX_OK);
  assert_int_equal(sqlite3_column_int(st, 0), 3);
  sqlite3_finalize(st);
  mx_db_close(db);
  char p2[300];
  unlink(path);
  snprintf(p2, sizeof(p2), "%s-wal", path);
  unlink(p2);
  snprintf(p2, sizeof(p2), "%s-shm", path);
  unlink(p2);
}

/* The child of second_open_keeps_the_wal_lock: another process (a CLI run
 * beside the daemon) reads and closes. SQLite deletes -wal on close only
 * when it gets the exclusive lock, i.e. when no other process holds one. */
static int child_read_and_close(const char *db_path)
{
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    return 2;
  int rc = sqlite3_exec(db, "SELECT COUNT(*) FROM t", NULL, NULL, NULL) == SQLITE_OK ? 0 : 3;
  sqlite3_close(db);
  return rc;
}

static void remove_db(const char *p)
{
  char side[300];
  unlink(p);
  snprintf(side, sizeof(side), "%s-wal", p);
  unlink(side);
  snprintf(side, sizeof(side), "%s-shm", p);
  unlink(side);
}

/* A daemon connection keeps its WAL lock when the same process opens one
 * more connection: mx_db_open once did open()+close() on the file, which on
 * Linux drops every POSIX lock the process holds on it, and a CLI run
 * beside the daemon then deleted the -wal the daemon was using. */
static void second_open_keeps_the_wal_lock(void **state)
{
  (void)state;
  char p[256], wal[300];
  snprintf(p, sizeof(p), "/tmp/mx-db-lock-%d.db", (int)getpid());
  snprintf(wal, sizeof(wal), "%s-wal", p);
  remove_db(p);
  sqlite3 *a = NULL, *b = NULL;
  assert_int_equal(mx_db_open(p, &a, NULL), MX_OK);
  assert_int_equal(mx_db_exec(a, "CREATE TABLE t(x); INSERT INTO t VALUES (1); SELECT COUNT(*) FROM t", NULL), MX_OK);
  assert_int_equal(access(wal, F_OK), 0);
  assert_int_equal(mx_db_open(p, &b, NULL), MX_OK); /* every LLM turn does this */

  char cmd[600];
  snprintf(cmd, sizeof(cmd), "/proc/%d/exe --child-read-and-close '%s'", (int)getpid(), p);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(access(wal, F_OK), 0); /* still ours: the child could not take it away */
  assert_int_equal(mx_db_exec(a, "INSERT INTO t VALUES (2)", NULL), MX_OK);
  assert_int_equal(mx_db_exec(b, "INSERT INTO t VALUES (3)", NULL), MX_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(mx_db_query(a, &st, NULL, "PRAGMA integrity_check", ""), MX_OK);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  mx_db_close(b);
  mx_db_close(a);
  remove_db(p);
}

/* A new database is private from its first byte, and so are -wal/-shm. */
static void new_database_is_private(void **state)
{
  (void)state;
  char p[256], side[300];
  snprintf(p, sizeof(p), "/tmp/mx-db-mode-%d.db", (int)getpid());
  remove_db(p);
  mode_t old = umask(022);
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(p, &db, NULL), MX_OK);
  assert_int_equal(mx_db_exec(db, "CREATE TABLE t(x)", NULL), MX_OK);
  umask(old);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  snprintf(side, sizeof(side), "%s-wal", p);
  assert_int_equal(stat(side, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  mx_db_close(db);
  remove_db(p);
}

/* A database a newer release migrated further is refused by name and
 * version numbers, and left as it was (a downgrade must not half-work). */
static void newer_schema_is_refused(void **state)
{
  (void)state;
  char p[256], err[MX_ERRBUF_LEN] = "";
  snprintf(p, sizeof(p), "/tmp/mx-db-newer-%d.db", (int)getpid());
  remove_db(p);
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(p, &db, err), MX_OK);
  assert_int_equal(mx_db_migrate(db, "t", steps, 3, err), MX_OK);
  assert_int_equal(mx_db_migrate(db, "t", steps, 2, err), MX_ERR_CONFLICT);
  assert_non_null(strstr(err, p));
  assert_non_null(strstr(err, "'t' is version 3, newer than this mxfleet"));
  assert_non_null(strstr(err, "knows (2)"));
  sqlite3_stmt *st = NULL;
  assert_int_equal(mx_db_query(db, &st, err, "SELECT version FROM schema_versions WHERE module='t'", NULL), MX_OK);
  assert_int_equal(sqlite3_column_int(st, 0), 3);
  sqlite3_finalize(st);
  /* the same release, and other modules, still open it */
  assert_int_equal(mx_db_migrate(db, "t", steps, 3, err), MX_OK);
  static const struct mx_migration other[] = { { 1, "CREATE TABLE other_t(x INTEGER)" } };
  assert_int_equal(mx_db_migrate(db, "other", other, 1, err), MX_OK);
  mx_db_close(db);
  remove_db(p);
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "--child-read-and-close") == 0)
    return child_read_and_close(argv[2]);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(concurrent_migrations_apply_each_step_once),
    cmocka_unit_test(second_open_keeps_the_wal_lock),
    cmocka_unit_test(new_database_is_private),
    cmocka_unit_test(newer_schema_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
