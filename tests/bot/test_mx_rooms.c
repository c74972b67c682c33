/* mx_rooms_run_actions: one run per identity at a time. Two workers of one
 * identity (a sync batch still carrying out its room actions while the next
 * batch, already fetched, is processed on another worker) must not both
 * carry out the same pending join: the homeserver here holds the first
 * join until a second one arrives or the other worker has returned, and
 * must see exactly one. An action added while the first run is in progress
 * is still carried out, by that run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "mx_api.h"
#include "mx_bot.h"
#include "mx_db.h"
#include "mx_rooms.h"
#include "mx_store.h"

struct hs {
  struct MHD_Daemon *d;
  pthread_mutex_t m;
  pthread_cond_t c;
  int joins;          /* POST .../join/... */
  int other_returned; /* the second worker's run has returned */
  char joined[4][128];
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void)method;
  (void)version;
  (void)upload;
  struct hs *h = cls;
  if (!*con_cls) {
    *con_cls = h;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&h->m);
  if (strstr(url, "/join/")) {
    int n = h->joins++;
    if (n < 4)
      snprintf(h->joined[n], sizeof(h->joined[n]), "%s", strstr(url, "/join/") + 6);
    pthread_cond_broadcast(&h->c);
    if (n == 0) { /* hold the first join while the other worker has its chance */
      struct timespec dl;
      clock_gettime(CLOCK_REALTIME, &dl);
      dl.tv_sec += 5;
      while (h->joins == 1 && !h->other_returned && pthread_cond_timedwait(&h->c, &h->m, &dl) == 0)
        ;
    }
  }
  pthread_mutex_unlock(&h->m);
  static const char body[] = "{\"room_id\":\"!r:x\"}";
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ret;
}

static char dbpath[128];

static sqlite3 *open_db(void)
{
  sqlite3 *db = NULL;
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(mx_db_open(dbpath, &db, err), MX_OK);
  assert_int_equal(mx_store_migrate(db, err), MX_OK);
  return db;
}

struct worker {
  struct mx_ident *id;
  struct hs *h;
  int left;
  int signal_return;
};

static void *run(void *arg)
{
  struct worker *w = arg;
  sqlite3 *db = open_db();
  w->left = mx_rooms_run_actions(w->id, db);
  mx_db_close(db);
  if (w->signal_return) {
    pthread_mutex_lock(&w->h->m);
    w->h->other_returned = 1;
    pthread_cond_broadcast(&w->h->c);
    pthread_mutex_unlock(&w->h->m);
  }
  return NULL;
}

static void two_workers_of_one_identity_join_once(void **state)
{
  (void)state;
  snprintf(dbpath, sizeof(dbpath), "/tmp/mx-rooms-test-%d.db", (int)getpid());
  struct hs h = { 0 };
  pthread_mutex_init(&h.m, NULL);
  pthread_cond_init(&h.c, NULL);
  h.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, &h,
                         MHD_OPTION_END);
  assert_non_null(h.d);
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", MHD_get_daemon_info(h.d, MHD_DAEMON_INFO_BIND_PORT)->port);

  struct mx_device_config dev = { .name = "pc1" };
  struct mx_ident id = { .dev = &dev, .user_id = "@agent-pc1:x" };
  id.api = mx_api_new(base, id.user_id, "tok");
  assert_non_null(id.api);
  sqlite3 *db = open_db();
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(mx_store_action_add(db, id.user_id, "!one:x", "join", NULL, err), MX_OK);

  struct worker a = { .id = &id, .h = &h }, b = { .id = &id, .h = &h, .signal_return = 1 };
  pthread_t ta, tb;
  assert_int_equal(pthread_create(&ta, NULL, run, &a), 0);
  pthread_mutex_lock(&h.m); /* A is inside its join: now B's batch comes in */
  while (h.joins == 0)
    pthread_cond_wait(&h.c, &h.m);
  pthread_mutex_unlock(&h.m);
  /* B's batch stored a second invite before running the actions */
  assert_int_equal(mx_store_action_add(db, id.user_id, "!two:x", "join", NULL, err), MX_OK);
  assert_int_equal(pthread_create(&tb, NULL, run, &b), 0);
  pthread_join(tb, NULL);
  pthread_join(ta, NULL);

  pthread_mutex_lock(&h.m);
  int joins = h.joins;
  pthread_mutex_unlock(&h.m);
  assert_int_equal(joins, 2); /* !one once, !two once (by A's second round) */
  assert_string_equal(h.joined[0], "!one:x");
  assert_string_equal(h.joined[1], "!two:x");
  assert_int_equal(a.left + b.left, 0);
  sqlite3_stmt *st = NULL;
  assert_int_equal(mx_db_prepare(db, "SELECT count(*) FROM room_actions WHERE done=0", &st, err), MX_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 0);
  sqlite3_finalize(st);

  mx_db_close(db);
  mx_api_free(id.api);
  MHD_stop_daemon(h.d);
  pthread_cond_destroy(&h.c);
  pthread_mutex_destroy(&h.m);
  unlink(dbpath);
  char side[160];
  snprintf(side, sizeof(side), "%s-wal", dbpath);
  unlink(side);
  snprintf(side, sizeof(side), "%s-shm", dbpath);
  unlink(side);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(two_workers_of_one_identity_join_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
