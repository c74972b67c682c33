/* mx_loop: transfers spread over the loop's curl_multi shards still reuse
 * their kept-alive connections. 64 handles (landing in many shards) each
 * make 3 requests one after another, all 64 at once: the server must see
 * 64 connections, not one per request; a handle that moved between shards
 * would leave its connection behind in the other shard's cache and open a
 * new one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "conn_count.h"
#include "mx_loop.h"

#define HANDLES 64
#define ROUNDS 3

struct server {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t lock;
  int hits;
  struct conn_count conns; /* TCP connections accepted */
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void)url;
  (void)method;
  (void)version;
  (void)upload;
  (void)upload_size;
  struct server *s = cls;
  if (!*con_cls) {
    *con_cls = s;
    return MHD_YES;
  }
  pthread_mutex_lock(&s->lock);
  s->hits++;
  pthread_mutex_unlock(&s->lock);
  static const char body[] = "{}";
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ret;
}

struct run {
  struct mx_loop *loop;
  int rounds[HANDLES];
  int failed;
  int finished; /* handles done with all their rounds */
};

struct one {
  struct run *run;
  int index;
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return size * n;
}

static void on_done(void *ud, CURL *easy, CURLcode result)
{
  struct one *o = ud;
  struct run *r = o->run;
  if (result != CURLE_OK)
    r->failed++;
  if (++r->rounds[o->index] < ROUNDS && result == CURLE_OK) {
    if (mx_loop_add_transfer(r->loop, easy, on_done, o) != MX_OK)
      r->failed++;
    return;
  }
  if (++r->finished == HANDLES)
    mx_loop_stop(r->loop);
}

static void handles_in_many_shards_keep_their_connections(void **state)
{
  (void)state;
  struct server s = { 0 };
  pthread_mutex_init(&s.lock, NULL);
  conn_count_init(&s.conns);
  s.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, handler, &s,
                         MHD_OPTION_NOTIFY_CONNECTION, conn_count_notify, &s.conns, MHD_OPTION_END);
  assert_non_null(s.d);
  s.port = MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_BIND_PORT)->port;
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", s.port);

  struct run r = { .loop = mx_loop_new() };
  assert_non_null(r.loop);
  CURL *easy[HANDLES];
  struct one ones[HANDLES];
  for (int i = 0; i < HANDLES; i++) {
    easy[i] = curl_easy_init();
    assert_non_null(easy[i]);
    curl_easy_setopt(easy[i], CURLOPT_URL, url);
    curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 20000L);
    ones[i] = (struct one){ &r, i };
    assert_int_equal(mx_loop_add_transfer(r.loop, easy[i], on_done, &ones[i]), MX_OK);
  }
  mx_loop_run(r.loop, -1);

  assert_int_equal(r.failed, 0);
  assert_int_equal(r.finished, HANDLES);
  pthread_mutex_lock(&s.lock);
  int hits = s.hits;
  pthread_mutex_unlock(&s.lock);
  assert_int_equal(hits, HANDLES * ROUNDS);
  assert_int_equal(conn_count_get(&s.conns), HANDLES);

  mx_loop_free(r.loop); /* closes the kept-alive connections */
  for (int i = 0; i < HANDLES; i++)
    curl_easy_cleanup(easy[i]);
  MHD_stop_daemon(s.d);
  pthread_mutex_destroy(&s.lock);
  conn_count_destroy(&s.conns);
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(handles_in_many_shards_keep_their_connections),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
