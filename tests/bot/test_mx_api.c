/* mx_api: the one retry layer. A local HTTP server answers 429 with
 * Retry-After, then 500, then 200: the client must wait at least the
 * announced time, reuse the same request path (txnId), and return the body;
 * a 403 must not be retried at all. Calls from one thread go over one
 * kept-alive connection. */
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
#include "mx_api.h"
#include "mx_util.h"

struct server {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t lock;
  int hits;
  struct conn_count conns; /* TCP connections accepted */
  char paths[8][256];
  const int *script; /* status per hit; 0 ends */
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void)method;
  (void)version;
  (void)upload;
  struct server *s = cls;
  if (!*con_cls) {
    *con_cls = s;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&s->lock);
  int hit = s->hits++;
  if (hit < 8)
    snprintf(s->paths[hit], sizeof(s->paths[hit]), "%s", url);
  int status = s->script[hit] ? s->script[hit] : 200;
  pthread_mutex_unlock(&s->lock);
  const char *body = status == 200 ? "{\"event_id\":\"$ok\"}"
                     : status == 429 ? "{\"errcode\":\"M_LIMIT_EXCEEDED\",\"error\":\"slow down\",\"retry_after_ms\":5000}"
                     : status == 403 ? "{\"errcode\":\"M_FORBIDDEN\",\"error\":\"no\"}"
                                     : "{\"errcode\":\"M_UNKNOWN\",\"error\":\"boom\"}";
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  if (status == 429)
    MHD_add_response_header(r, "Retry-After", "1"); /* header (1 s) wins over the body's 5000 ms */
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static void server_start(struct server *s, const int *script)
{
  memset(s, 0, sizeof(*s));
  s->script = script;
  pthread_mutex_init(&s->lock, NULL);
  conn_count_init(&s->conns);
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, s, MHD_OPTION_NOTIFY_CONNECTION,
                          conn_count_notify, &s->conns, MHD_OPTION_END);
  assert_non_null(s->d);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info->port;
}

static void server_stop(struct server *s)
{
  MHD_stop_daemon(s->d);
  pthread_mutex_destroy(&s->lock);
  conn_count_destroy(&s->conns);
}

static void rate_limit_then_error_then_success_is_retried_with_the_same_txn(void **state)
{
  (void)state;
  static const int script[] = { 429, 500, 200, 0 };
  struct server s;
  server_start(&s, script);
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", s.port);
  struct mx_api *api = mx_api_new(base, "@a:x", "tok");
  cJSON *body = cJSON_CreateObject(), *resp = NULL;
  long status = 0;
  char err[MX_ERRBUF_LEN] = "";
  int64_t t0 = mx_mono_ms();
  mx_err rc = mx_api_call(api, "PUT", "/_matrix/client/v3/rooms/r/send/m.room.message/txn42", body, NULL, &status,
                          &resp, err);
  int64_t took = mx_mono_ms() - t0;
  assert_int_equal(rc, MX_OK);
  assert_int_equal(status, 200);
  assert_string_equal(cJSON_GetObjectItem(resp, "event_id")->valuestring, "$ok");
  assert_int_equal(s.hits, 3);
  for (int i = 0; i < 3; i++)
    assert_string_equal(s.paths[i], "/_matrix/client/v3/rooms/r/send/m.room.message/txn42");
  /* waited the Retry-After second, not the body's 5 s, plus a backoff */
  assert_true(took >= 1000);
  assert_true(took < 5000);
  cJSON_Delete(body);
  cJSON_Delete(resp);
  mx_api_free(api);
  server_stop(&s);
}

static void forbidden_is_final_and_reports_errcode(void **state)
{
  (void)state;
  static const int script[] = { 403, 0 };
  struct server s;
  server_start(&s, script);
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", s.port);
  struct mx_api *api = mx_api_new(base, "@a:x", "tok");
  long status = 0;
  char err[MX_ERRBUF_LEN] = "";
  cJSON *resp = NULL;
  mx_err rc = mx_api_call(api, "GET", "/_matrix/client/v3/x", NULL, NULL, &status, &resp, err);
  assert_int_equal(rc, MX_ERR_AUTH);
  assert_int_equal(status, 403);
  assert_int_equal(s.hits, 1);
  assert_non_null(strstr(err, "M_FORBIDDEN"));
  assert_null(strstr(err, "tok")); /* the token never appears in errors */
  cJSON_Delete(resp);
  mx_api_free(api);
  server_stop(&s);
}

/* A send must not pay a new TCP connection (and the homeserver an accept)
 * each time: one thread's calls reuse its kept-alive connection until
 * mx_api_thread_done closes it. */
static void calls_from_one_thread_reuse_one_connection(void **state)
{
  (void)state;
  static const int script[] = { 200, 200, 200, 200, 200, 0 };
  struct server s;
  server_start(&s, script);
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", s.port);
  struct mx_api *api = mx_api_new(base, "@a:x", "tok");
  cJSON *body = cJSON_CreateObject();
  char err[MX_ERRBUF_LEN] = "";
  static const char *const methods[] = { "GET", "PUT", "POST", "PUT" };
  for (int i = 0; i < 4; i++) {
    cJSON *resp = NULL;
    assert_int_equal(mx_api_call(api, methods[i], "/_matrix/client/v3/x", strcmp(methods[i], "GET") ? body : NULL,
                                 NULL, NULL, &resp, err), MX_OK);
    assert_string_equal(cJSON_GetObjectItem(resp, "event_id")->valuestring, "$ok");
    cJSON_Delete(resp);
  }
  assert_int_equal(s.hits, 4);
  assert_int_equal(conn_count_get(&s.conns), 1);
  mx_api_thread_done();
  assert_int_equal(mx_api_call(api, "GET", "/_matrix/client/v3/x", NULL, NULL, NULL, NULL, err), MX_OK);
  assert_int_equal(conn_count_get(&s.conns), 2);
  cJSON_Delete(body);
  mx_api_free(api);
  server_stop(&s);
}

static void retry_after_prefers_header_then_body(void **state)
{
  (void)state;
  cJSON *b = cJSON_Parse("{\"retry_after_ms\": 2500}");
  assert_int_equal(mx_api_retry_after_ms("3", b), 3000);
  assert_int_equal(mx_api_retry_after_ms(NULL, b), 2500);
  assert_int_equal(mx_api_retry_after_ms("", NULL), -1);
  cJSON_Delete(b);
}

static void header_value_takes_the_named_header_only(void **state)
{
  (void)state;
  char v[8] = "keep";
  const char *h = "Retry-After:  12\r\n";
  mx_api_header_value(h, strlen(h), "retry-after", v, sizeof(v));
  assert_string_equal(v, "12");
  const char *other = "Retry-After-Ms: 5\r\n";
  mx_api_header_value(other, strlen(other), "retry-after", v, sizeof(v));
  assert_string_equal(v, "12"); /* a longer name is another header */
  const char *longv = "retry-after: 123456789012\r\n";
  mx_api_header_value(longv, strlen(longv), "retry-after", v, sizeof(v));
  assert_string_equal(v, "1234567"); /* capped, NUL-terminated */
}

static void backoff_grows_with_jitter_and_is_capped(void **state)
{
  (void)state;
  for (int i = 0; i < 50; i++) {
    int64_t a0 = mx_api_backoff_ms(0), a3 = mx_api_backoff_ms(3), a20 = mx_api_backoff_ms(20);
    assert_true(a0 >= 375 && a0 <= 625);
    assert_true(a3 >= 3000 && a3 <= 5000);
    assert_true(a20 >= 22500 && a20 <= 37500);
  }
}

static void escape_encodes_reserved_characters(void **state)
{
  (void)state;
  char *e = mx_api_escape("!room:ex ample.org/#x");
  assert_string_equal(e, "%21room%3Aex%20ample.org%2F%23x");
  free(e);
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(rate_limit_then_error_then_success_is_retried_with_the_same_txn),
    cmocka_unit_test(forbidden_is_final_and_reports_errcode),
    cmocka_unit_test(calls_from_one_thread_reuse_one_connection),
    cmocka_unit_test(retry_after_prefers_header_then_body),
    cmocka_unit_test(header_value_takes_the_named_header_only),
    cmocka_unit_test(backoff_grows_with_jitter_and_is_capped),
    cmocka_unit_test(escape_encodes_reserved_characters),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  mx_api_thread_done();
  curl_global_cleanup();
  return rc;
}
