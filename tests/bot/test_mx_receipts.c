/* mx_receipts: a handled message's read receipt goes out a moment later,
 * one per room however many messages were handled meanwhile, naming the
 * latest; a receipt after that is scheduled again; what is still pending
 * at shutdown is freed. A local HTTP server stands in for the homeserver;
 * the real loop and worker pool run the timer and the send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "mx_bot.h"
#include "mx_receipts.h"
#include "mx_util.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int posts;
static char paths[8][256];

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void)cls;
  (void)version;
  (void)upload;
  if (!*con_cls) {
    *con_cls = &mu;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&mu);
  if (strcmp(method, "POST") == 0 && strstr(url, "/receipt/m.read/")) {
    if (posts < 8)
      snprintf(paths[posts], sizeof(paths[posts]), "%s", url);
    posts++;
  }
  pthread_mutex_unlock(&mu);
  static const char body[] = "{}";
  struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)body, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ret;
}

static int posts_now(void)
{
  pthread_mutex_lock(&mu);
  int n = posts;
  pthread_mutex_unlock(&mu);
  return n;
}

/* until at least want receipts arrived (deadline 10 s) */
static int wait_posts(int want)
{
  int64_t deadline = mx_mono_ms() + 10000;
  while (posts_now() < want && mx_mono_ms() < deadline)
    usleep(10000);
  return posts_now();
}

static int pending(struct mx_bot *bot)
{
  pthread_mutex_lock(&bot->receipts_lock);
  int n = bot->receipts != NULL || bot->receipts_armed;
  pthread_mutex_unlock(&bot->receipts_lock);
  return n;
}

static void *loop_thread(void *ud)
{
  mx_loop_run(ud, -1);
  return NULL;
}

static void receipts_are_delayed_and_coalesced_per_room(void **state)
{
  (void)state;
  struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
                                          MHD_OPTION_END);
  assert_non_null(d);
  char base[64], db[128], err[MX_ERRBUF_LEN] = "";
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
  snprintf(db, sizeof(db), "/tmp/mx-receipts-test-%d.db", (int)getpid());

  struct mx_bot bot;
  memset(&bot, 0, sizeof(bot));
  pthread_mutex_init(&bot.receipts_lock, NULL);
  bot.loop = mx_loop_new();
  assert_non_null(bot.loop);
  assert_int_equal(mx_workers_new(2, db, &bot.workers, err), MX_OK);
  struct mx_device_config dev = { .name = "pc1" };
  struct mx_ident id = { .bot = &bot, .dev = &dev, .user_id = "@agent-pc1:x" };
  id.api = mx_api_new(base, id.user_id, "tok");
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, loop_thread, bot.loop), 0);

  /* three handled messages in one room, one in another */
  int64_t t0 = mx_mono_ms();
  mx_receipt_later(&id, "!r1:x", "$e1");
  mx_receipt_later(&id, "!r1:x", "$e2");
  mx_receipt_later(&id, "!r2:x", "$f1");
  mx_receipt_later(&id, "!r1:x", "$e3");
  assert_int_equal(wait_posts(2), 2);
  int64_t took = mx_mono_ms() - t0;
  assert_true(took >= MX_RECEIPT_DELAY_MS); /* not on the reply's heels */
  assert_false(pending(&bot));              /* one flush sent both, nothing else follows */
  assert_int_equal(posts_now(), 2);
  int r1 = strstr(paths[0], "r1") ? 0 : 1;
  assert_non_null(strstr(paths[r1], "!r1:x/receipt/m.read/$e3")); /* the latest of the room */
  assert_non_null(strstr(paths[1 - r1], "!r2:x/receipt/m.read/$f1"));

  /* later messages are scheduled again */
  mx_receipt_later(&id, "!r1:x", "$e4");
  assert_int_equal(wait_posts(3), 3);
  assert_non_null(strstr(paths[2], "!r1:x/receipt/m.read/$e4"));

  /* pending at shutdown: dropped and freed (ASan checks the leak) */
  mx_receipt_later(&id, "!r2:x", "$f2");
  mx_loop_stop(bot.loop);
  pthread_join(th, NULL);
  bot.stopping = 1;
  assert_int_equal(mx_workers_shutdown(bot.workers, 10000), 1);
  mx_receipts_discard(&bot);
  assert_false(bot.receipts != NULL);
  assert_int_equal(posts_now(), 3);

  mx_loop_free(bot.loop);
  mx_api_free(id.api);
  pthread_mutex_destroy(&bot.receipts_lock);
  MHD_stop_daemon(d);
  static const char *const suffixes[] = { "", "-wal", "-shm" };
  for (int i = 0; i < 3; i++) {
    char f[160];
    snprintf(f, sizeof(f), "%s%s", db, suffixes[i]);
    unlink(f);
  }
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(receipts_are_delayed_and_coalesced_per_room),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  mx_api_thread_done();
  curl_global_cleanup();
  return rc;
}
