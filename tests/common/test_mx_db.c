/* mx_db: migrations are applied once even when several threads (identities
 * starting together) migrate the same database at the same moment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
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

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(concurrent_migrations_apply_each_step_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
