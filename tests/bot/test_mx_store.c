/* mx_store: exactly-once bookkeeping. A send's transaction ID is created
 * once and reused; the inbox ledger accepts an event once; migrations can
 * run again on an existing database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_db.h"
#include "mx_store.h"

static char dbpath[256];

static sqlite3 *open_db(void)
{
  sqlite3 *db = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(mx_db_open(dbpath, &db, err), MX_OK);
  assert_int_equal(mx_store_migrate(db, err), MX_OK);
  return db;
}

static int setup(void **state)
{
  (void)state;
  snprintf(dbpath, sizeof(dbpath), "/tmp/mx-store-test-%d.db", (int)getpid());
  unlink(dbpath);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  char p[300];
  unlink(dbpath);
  snprintf(p, sizeof(p), "%s-wal", dbpath);
  unlink(p);
  snprintf(p, sizeof(p), "%s-shm", dbpath);
  unlink(p);
  return 0;
}

static void txn_id_is_stored_before_sending_and_reused_after_restart(void **state)
{
  (void)state;
  sqlite3 *db = open_db();
  char txn1[40], txn2[40], ev[256] = "";
  int sent = 1;
  assert_int_equal(mx_store_outbox_txn(db, "@a:x", "reply:$e:0", "!r:x", txn1, &sent, ev, sizeof(ev), NULL), MX_OK);
  assert_int_equal(sent, 0);
  mx_db_close(db);
  db = open_db(); /* "restart" */
  assert_int_equal(mx_store_outbox_txn(db, "@a:x", "reply:$e:0", "!r:x", txn2, &sent, ev, sizeof(ev), NULL), MX_OK);
  assert_string_equal(txn1, txn2);
  assert_int_equal(sent, 0);
  assert_int_equal(mx_store_outbox_sent(db, txn1, "$sent", NULL), MX_OK);
  assert_int_equal(mx_store_outbox_txn(db, "@a:x", "reply:$e:0", "!r:x", txn2, &sent, ev, sizeof(ev), NULL), MX_OK);
  assert_int_equal(sent, 1);
  assert_string_equal(ev, "$sent");
  /* another reply of the same event gets another transaction */
  assert_int_equal(mx_store_outbox_txn(db, "@a:x", "reply:$e:1", "!r:x", txn2, &sent, ev, sizeof(ev), NULL), MX_OK);
  assert_string_not_equal(txn1, txn2);
  mx_db_close(db);
}

static void inbox_accepts_an_event_once(void **state)
{
  (void)state;
  sqlite3 *db = open_db();
  struct mx_inbox_item it = { .event_id = "$e1", .room_id = "!r:x", .sender = "@op:x", .sender_device = "DEV",
                              .body = "!ping", .content_json = "{}", .origin_ts = 1000, .verified = 1, .state = "new" };
  int is_new = 0;
  assert_int_equal(mx_store_inbox_add(db, "@a:x", &it, &is_new, NULL), MX_OK);
  assert_int_equal(is_new, 1);
  assert_int_equal(mx_store_inbox_add(db, "@a:x", &it, &is_new, NULL), MX_OK);
  assert_int_equal(is_new, 0);
  /* the same event id for another identity is another ledger entry */
  assert_int_equal(mx_store_inbox_add(db, "@b:x", &it, &is_new, NULL), MX_OK);
  assert_int_equal(is_new, 1);
  mx_db_close(db);
}

static void database_file_is_private(void **state)
{
  (void)state;
  sqlite3 *db = open_db();
  struct stat st;
  assert_int_equal(stat(dbpath, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  mx_db_close(db);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(txn_id_is_stored_before_sending_and_reused_after_restart, setup, teardown),
    cmocka_unit_test_setup_teardown(inbox_accepts_an_event_once, setup, teardown),
    cmocka_unit_test_setup_teardown(database_file_is_private, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
