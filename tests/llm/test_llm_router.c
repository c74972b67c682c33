/* test_llm_router.c - the router against the scripted provider server
 * (a real HTTP server process): every wire format streamed and not, the one
 * retry layer (retry-after, 529, overloaded as 429, 500, cut streams, SSE
 * errors after 200), permanent failures falling over, the breaker, budgets,
 * status text and metrics. Label: integration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_cli.h"
#include "llm_db.h"
#include "llm_router.h"
#include "llm_test_server.h"
#include "mx_db.h"

static struct llm_ts ts;
static int run_no;

struct sleeps {
  int n;
  int64_t ms[16];
};

static void rec_sleep(void *ctx, int64_t ms)
{
  struct sleeps *s = ctx;
  if (s->n < 16)
    s->ms[s->n] = ms;
  s->n++;
}

static int setup(void **state)
{
  (void)state;
  return llm_ts_start(&ts);
}

static int teardown(void **state)
{
  (void)state;
  llm_ts_stop(&ts);
  return 0;
}

static const char *new_run(char *buf, size_t n)
{
  snprintf(buf, n, "r%d", ++run_no);
  return buf;
}

/* One call with a one-message conversation; returns rc, fills answer. */
static mx_err chat(struct llm_router *r, sqlite3 *db, char *answer, size_t an, char *provider, char *err)
{
  struct llm_conv conv;
  llm_conv_init(&conv);
  assert_int_equal(llm_conv_add_user(&conv, "hi"), MX_OK);
  struct llm_chat_req req = {"system text", &conv, NULL, 0};
  struct llm_call_ctx cx = {db, "pc1", "@op:example.org", 0};
  struct llm_reply rep;
  mx_err rc = llm_router_chat(r, &cx, &req, &rep, provider, err);
  if (!rc) {
    snprintf(answer, an, "%s", rep.text ? rep.text : "");
    llm_reply_free(&rep);
  }
  llm_conv_free(&conv);
  return rc;
}

static int count(const char *scen, const char *run)
{
  cJSON *a = llm_ts_requests(&ts, scen, run);
  int n = cJSON_GetArraySize(a);
  cJSON_Delete(a);
  return n;
}

/* Runs a one-provider config on scenario and checks the answer and the
 * number of requests the server saw. */
static void one(const char *kind, const char *scen, int stream, const char *want, int want_requests,
                struct sleeps *sl)
{
  char run[16], spec[128], answer[256] = "", prov[64] = "", err[MX_ERRBUF_LEN] = "";
  new_run(run, sizeof(run));
  snprintf(spec, sizeof(spec), "p:%s:%s:%s%s", kind, scen, run, stream ? "" : ":nostream");
  const char *specs[] = {spec};
  struct llm_config *cfg = llm_ts_config(&ts, specs, 1, NULL, NULL);
  struct llm_router *r = NULL;
  assert_int_equal(llm_router_new(cfg, &r, err), MX_OK);
  struct sleeps local = {0};
  llm_router_set_sleep(r, rec_sleep, sl ? sl : &local);
  mx_err rc = chat(r, NULL, answer, sizeof(answer), prov, err);
  if (rc)
    fail_msg("%s %s stream=%d: %s", kind, scen, stream, err);
  assert_string_equal(answer, want);
  assert_string_equal(prov, "p");
  assert_int_equal(count(scen, run), want_requests);
  llm_router_free(r);
  llm_config_free(cfg);
}

static void every_kind_streamed_and_whole(void **state)
{
  (void)state;
  const char *kinds[] = {"openai", "anthropic", "ollama"};
  for (int k = 0; k < 3; k++)
    for (int s = 0; s <= 1; s++)
      one(kinds[k], "text_only", s, "Hello from the **scripted** model.", 1, NULL);
}

static void headers_carry_keys_and_versions(void **state)
{
  (void)state;
  char r1[16], r2[16], s1[64], s2[64], answer[128], err[MX_ERRBUF_LEN];
  snprintf(s1, sizeof(s1), "a:openai:text_only:%s", new_run(r1, sizeof(r1)));
  snprintf(s2, sizeof(s2), "b:anthropic:text_only:%s", new_run(r2, sizeof(r2)));
  const char *sp1[] = {s1}, *sp2[] = {s2};
  for (int i = 0; i < 2; i++) {
    struct llm_config *cfg = llm_ts_config(&ts, i ? sp2 : sp1, 1, NULL, NULL);
    struct llm_router *r = NULL;
    assert_int_equal(llm_router_new(cfg, &r, err), MX_OK);
    assert_int_equal(chat(r, NULL, answer, sizeof(answer), NULL, err), MX_OK);
    llm_router_free(r);
    llm_config_free(cfg);
  }
  cJSON *a = llm_ts_requests(&ts, "text_only", r1);
  cJSON *h = cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "headers");
  assert_string_equal(cJSON_GetObjectItem(h, "authorization")->valuestring, "Bearer sk-test-secret-0123456789");
  assert_string_equal(cJSON_GetObjectItem(h, "accept")->valuestring, "text/event-stream");
  cJSON_Delete(a);
  a = llm_ts_requests(&ts, "text_only", r2);
  h = cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "headers");
  assert_string_equal(cJSON_GetObjectItem(h, "x-api-key")->valuestring, "sk-test-secret-0123456789");
  assert_string_equal(cJSON_GetObjectItem(h, "anthropic-version")->valuestring, "2023-06-01");
  assert_null(cJSON_GetObjectItem(h, "authorization"));
  cJSON *body = cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "body");
  assert_string_equal(cJSON_GetObjectItem(body, "system")->valuestring, "system text");
  cJSON_Delete(a);
}

static void retry_after_ms_is_honoured(void **state)
{
  (void)state;
  struct sleeps sl = {0};
  one("openai", "retry_after_429", 1, "answer after 429", 2, &sl);
  assert_int_equal(sl.n, 1);
  assert_int_equal(sl.ms[0], 30); /* retry-after-ms wins over retry-after: 0 */
}

static void json_answer_to_a_stream_request(void **state)
{
  (void)state;
  one("openai", "json_to_stream", 1, "whole answer", 1, NULL);
  one("anthropic", "json_to_stream", 1, "whole answer", 1, NULL);
}

static void transient_failures_are_retried(void **state)
{
  (void)state;
  struct sleeps sl = {0};
  one("anthropic", "overloaded_529", 1, "answer after 529", 2, &sl);
  assert_int_equal(sl.n, 1);
  assert_true(sl.ms[0] >= 0 && sl.ms[0] <= 1); /* backoff from initial 1 ms, jittered */
  one("anthropic", "overloaded_as_429", 0, "answer after overloaded 429", 2, NULL);
  one("ollama", "err500_then_ok", 1, "answer after 500", 2, NULL);
  one("openai", "err500_then_ok", 0, "answer after 500", 2, NULL);
}

static void errors_after_200_and_cut_streams_are_retried_without_partial_output(void **state)
{
  (void)state;
  const char *kinds[] = {"openai", "anthropic", "ollama"};
  for (int k = 0; k < 3; k++) {
    one(kinds[k], "sse_error_after_200", 1, "answer after sse error", 2, NULL);
    one(kinds[k], "stream_cut", 1, "complete answer after cut", 2, NULL);
  }
  one("openai", "stream_cut", 0, "complete answer after cut", 2, NULL); /* short body */
}

/* primary on scen (expected to get `primary_requests`), backup answers. */
static void fallback_case(const char *scen, int primary_requests)
{
  char r1[16], r2[16], s1[64], s2[64], answer[128] = "", prov[64] = "", err[MX_ERRBUF_LEN];
  snprintf(s1, sizeof(s1), "primary:openai:%s:%s", scen, new_run(r1, sizeof(r1)));
  snprintf(s2, sizeof(s2), "backup:anthropic:text_only:%s", new_run(r2, sizeof(r2)));
  const char *sp[] = {s1, s2};
  struct llm_config *cfg = llm_ts_config(&ts, sp, 2, NULL, NULL);
  struct llm_router *r = NULL;
  struct sleeps sl = {0};
  assert_int_equal(llm_router_new(cfg, &r, err), MX_OK);
  llm_router_set_sleep(r, rec_sleep, &sl);
  assert_int_equal(chat(r, NULL, answer, sizeof(answer), prov, err), MX_OK);
  assert_string_equal(prov, "backup");
  assert_string_equal(answer, "Hello from the **scripted** model.");
  assert_int_equal(count(scen, r1), primary_requests);
  assert_int_equal(count("text_only", r2), 1);
  llm_router_free(r);
  llm_config_free(cfg);
}

static void permanent_failures_fall_over_without_retry(void **state)
{
  (void)state;
  fallback_case("insufficient_quota", 1);
  fallback_case("unauthorized", 1);
  fallback_case("should_retry_false", 1);
  fallback_case("always500", 3); /* transient: all 3 attempts, then fall over */
}

static void breaker_opens_and_is_visible(void **state)
{
  (void)state;
  char r1[16], r2[16], s1[64], s2[64], answer[128], prov[64], err[MX_ERRBUF_LEN];
  snprintf(s1, sizeof(s1), "primary:openai:always500:%s", new_run(r1, sizeof(r1)));
  snprintf(s2, sizeof(s2), "backup:ollama:text_only:%s", new_run(r2, sizeof(r2)));
  const char *sp[] = {s1, s2};
  struct llm_config *cfg = llm_ts_config(&ts, sp, 2, NULL, NULL);
  struct llm_router *r = NULL;
  struct sleeps sl = {0};
  assert_int_equal(llm_router_new(cfg, &r, err), MX_OK);
  llm_router_set_sleep(r, rec_sleep, &sl);
  assert_int_equal(chat(r, NULL, answer, sizeof(answer), prov, err), MX_OK);
  assert_int_equal(count("always500", r1), 3); /* threshold 3 reached: open */
  assert_int_equal(chat(r, NULL, answer, sizeof(answer), prov, err), MX_OK);
  assert_string_equal(prov, "backup");
  assert_int_equal(count("always500", r1), 3); /* open: not even tried */
  struct mx_buf b = MX_BUF_INIT(1 << 16);
  assert_int_equal(llm_router_status_text(r, &b), MX_OK);
  static const char first[] = "- primary (openai, test-model): breaker open, 0 ok, 3 failed";
  assert_int_equal(strncmp(mx_buf_cstr(&b), first, sizeof(first) - 1), 0);
  assert_non_null(strstr(mx_buf_cstr(&b), "HTTP 500"));
  assert_non_null(strstr(mx_buf_cstr(&b), "- backup (ollama, test-model): breaker closed, 2 ok"));
  mx_buf_reset(&b);
  assert_int_equal(llm_router_metrics(r, &b), MX_OK);
  assert_non_null(strstr(mx_buf_cstr(&b), "mxfleet_llm_breaker_state{provider=\"primary\"} 1\n"));
  assert_non_null(strstr(mx_buf_cstr(&b), "mxfleet_llm_breaker_state{provider=\"backup\"} 0\n"));
  assert_non_null(strstr(mx_buf_cstr(&b), "mxfleet_llm_requests_total{provider=\"primary\",result=\"error\"} 3\n"));
  assert_non_null(strstr(mx_buf_cstr(&b), "mxfleet_llm_breaker_opens_total{provider=\"primary\"} 1\n"));
  assert_non_null(strstr(mx_buf_cstr(&b), "# TYPE mxfleet_llm_requests_total counter\n"));
  mx_buf_release(&b);
  llm_router_free(r);
  llm_config_free(cfg);
}

static void every_provider_failing_is_one_clear_message(void **state)
{
  (void)state;
  char r1[16], r2[16], s1[64], s2[64], answer[128], err[MX_ERRBUF_LEN];
  snprintf(s1, sizeof(s1), "primary:openai:always500:%s", new_run(r1, sizeof(r1)));
  snprintf(s2, sizeof(s2), "backup:anthropic:unauthorized:%s", new_run(r2, sizeof(r2)));
  const char *sp[] = {s1, s2};
  struct llm_config *cfg = llm_ts_config(&ts, sp, 2, NULL, NULL);
  struct llm_router *r = NULL;
  struct sleeps sl = {0};
  assert_int_equal(llm_router_new(cfg, &r, err), MX_OK);
  llm_router_set_sleep(r, rec_sleep, &sl);
  assert_int_equal(chat(r, NULL, answer, sizeof(answer), NULL, err), MX_ERR_UNAVAILABLE);
  assert_non_null(strstr(err, "no model provider could answer (primary: HTTP 500 server_error: always down; "
                              "backup: HTTP 401 authentication_error: invalid x-api-key)"));
  assert_null(strstr(err, "sk-test"));
  llm_router_free(r);
  llm_config_free(cfg);
}

static void budget_checked_before_each_call(void **state)
{
  (void)state;
  char run[16], spec[64], answer[128], err[MX_ERRBUF_LEN], path[64];
  snprintf(spec, sizeof(spec), "p:openai:text_only:%s", new_run(run, sizeof(run)));
  snprintf(path, sizeof(path), "/tmp/llmrouter%d.db", (int)getpid());
  unlink(path);
  sqlite3 *db = NULL;
  assert_int_equal(llm_db_open(path, &db, err), MX_OK);
  const char *sp[] = {spec};
  struct llm_config *cfg = llm_ts_config(&ts, sp, 1, NULL, "{\"device_tokens_per_day\":5}");
  struct llm_router *r = NULL;
  assert_int_equal(llm_router_new(cfg, &r, err), MX_OK);
  assert_int_equal(chat(r, db, answer, sizeof(answer), NULL, err), MX_OK);
  assert_int_equal(chat(r, db, answer, sizeof(answer), NULL, err), MX_ERR_UNAVAILABLE);
  assert_non_null(strstr(err, "daily token budget of device pc1 is spent"));
  assert_int_equal(count("text_only", run), 1); /* the second call never went out */
  llm_router_free(r);
  llm_config_free(cfg);
  mx_db_close(db);
  unlink(path);
}

static void cli_test_reports_latency_and_tool_calling(void **state)
{
  (void)state;
  char r1[16], r2[16], r3[16], s1[64], s2[64], s3[64];
  snprintf(s1, sizeof(s1), "good:openai:cli_echo:%s", new_run(r1, sizeof(r1)));
  snprintf(s2, sizeof(s2), "notools:ollama:text_only:%s", new_run(r2, sizeof(r2)));
  snprintf(s3, sizeof(s3), "down:anthropic:unauthorized:%s", new_run(r3, sizeof(r3)));
  const char *sp[] = {s1, s2, s3};
  struct llm_config *cfg = llm_ts_config(&ts, sp, 3, NULL, NULL);
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_int_equal(llm_cli_test(cfg, "good", out), 0);
  fflush(out);
  assert_non_null(strstr(text, "good (openai, test-model): ok in "));
  assert_non_null(strstr(text, "tool calling works"));
  assert_int_equal(llm_cli_test(cfg, NULL, out), 1);
  fflush(out);
  assert_non_null(strstr(text, "notools (ollama, test-model): ok in "));
  assert_non_null(strstr(text, "DOES NOT WORK"));
  assert_non_null(strstr(text, "down (anthropic, test-model): FAILED after "));
  assert_non_null(strstr(text, "HTTP 401 authentication_error"));
  assert_int_equal(llm_cli_test(cfg, "nope", out), 2);
  fflush(out);
  assert_non_null(strstr(text, "--provider: expected one of the configured providers, got 'nope'"));
  /* the test tool was offered to the model */
  cJSON *reqs = llm_ts_requests(&ts, "cli_echo", r1);
  cJSON *tool = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 0), "body"),
                                                       "tools"), 0);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tool, "function"), "name")->valuestring, "echo");
  cJSON_Delete(reqs);
  fclose(out);
  free(text);
  llm_config_free(cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_kind_streamed_and_whole),
      cmocka_unit_test(headers_carry_keys_and_versions),
      cmocka_unit_test(retry_after_ms_is_honoured),
      cmocka_unit_test(json_answer_to_a_stream_request),
      cmocka_unit_test(transient_failures_are_retried),
      cmocka_unit_test(errors_after_200_and_cut_streams_are_retried_without_partial_output),
      cmocka_unit_test(permanent_failures_fall_over_without_retry),
      cmocka_unit_test(breaker_opens_and_is_visible),
      cmocka_unit_test(every_provider_failing_is_one_clear_message),
      cmocka_unit_test(budget_checked_before_each_call),
      cmocka_unit_test(cli_test_reports_latency_and_tool_calling),
  };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  curl_global_cleanup();
  return rc;
}
