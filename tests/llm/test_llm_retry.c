/* test_llm_retry.c - retry decisions, backoff, Retry-After parsing, header
 * redaction and circuit breaker transitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "llm_breaker.h"
#include "llm_http.h"
#include "llm_retry.h"
#include "llm_router.h"

static struct llm_failure mkfail(long status, const char *type, const char *msg)
{
  struct llm_failure f;
  memset(&f, 0, sizeof(f));
  f.status = status;
  f.retry_after_ms = -1;
  f.should_retry = -1;
  snprintf(f.type, sizeof(f.type), "%s", type);
  snprintf(f.message, sizeof(f.message), "%s", msg);
  return f;
}

static void permanent_statuses(void **state)
{
  (void)state;
  long perm[] = {400, 401, 403, 404, 413, 422};
  for (size_t i = 0; i < sizeof(perm) / sizeof(perm[0]); i++) {
    struct llm_failure f = mkfail(perm[i], "", "");
    assert_int_equal(llm_retry_classify(&f), LLM_PERMANENT);
  }
  struct llm_failure q = mkfail(429, "insufficient_quota/insufficient_quota", "You exceeded your current quota");
  assert_int_equal(llm_retry_classify(&q), LLM_PERMANENT);
  struct llm_failure q2 = mkfail(429, "", "error: insufficient_quota");
  assert_int_equal(llm_retry_classify(&q2), LLM_PERMANENT);
  struct llm_failure b = mkfail(402, "billing_error", "");
  assert_int_equal(llm_retry_classify(&b), LLM_PERMANENT);
}

static void transient_statuses(void **state)
{
  (void)state;
  long tr[] = {0, 408, 409, 429, 500, 502, 503, 504, 529};
  for (size_t i = 0; i < sizeof(tr) / sizeof(tr[0]); i++) {
    struct llm_failure f = mkfail(tr[i], "", "");
    assert_int_equal(llm_retry_classify(&f), LLM_TRANSIENT);
  }
  /* Anthropic overload by type, whatever the status */
  struct llm_failure o = mkfail(429, "overloaded_error", "Overloaded");
  assert_int_equal(llm_retry_classify(&o), LLM_TRANSIENT);
  struct llm_failure o2 = mkfail(200, "overloaded_error", "Overloaded");
  assert_int_equal(llm_retry_classify(&o2), LLM_TRANSIENT);
  struct llm_failure o3 = mkfail(400, "overloaded_error", "");
  assert_int_equal(llm_retry_classify(&o3), LLM_TRANSIENT);
  struct llm_failure g = mkfail(400, "invalid_request_error/tool_use_failed", "Failed to call a function");
  assert_int_equal(llm_retry_classify(&g), LLM_TRANSIENT);
}

static void should_retry_header_overrides(void **state)
{
  (void)state;
  struct llm_failure f = mkfail(503, "", "");
  f.should_retry = 0;
  assert_int_equal(llm_retry_classify(&f), LLM_PERMANENT);
  struct llm_failure g = mkfail(400, "", "");
  g.should_retry = 1;
  assert_int_equal(llm_retry_classify(&g), LLM_TRANSIENT);
}

static void backoff_doubles_caps_and_jitters(void **state)
{
  (void)state;
  struct llm_retry_cfg c = {5, 500, 8000, 60000};
  assert_int_equal(llm_retry_delay_ms(&c, 1, NULL, 0.0), 500);
  assert_int_equal(llm_retry_delay_ms(&c, 2, NULL, 0.0), 1000);
  assert_int_equal(llm_retry_delay_ms(&c, 3, NULL, 0.0), 2000);
  assert_int_equal(llm_retry_delay_ms(&c, 10, NULL, 0.0), 8000);
  /* jitter takes at most 25 % off */
  int64_t d = llm_retry_delay_ms(&c, 2, NULL, 0.999);
  assert_true(d >= 750 && d < 1000);
}

static void retry_after_honoured_or_too_long(void **state)
{
  (void)state;
  struct llm_retry_cfg c = {5, 500, 8000, 60000};
  struct llm_failure f = mkfail(429, "", "");
  f.retry_after_ms = 1234;
  assert_int_equal(llm_retry_delay_ms(&c, 1, &f, 0.9), 1234);
  f.retry_after_ms = 120000;
  assert_int_equal(llm_retry_delay_ms(&c, 1, &f, 0.0), -1);
}

static void retry_after_parsing(void **state)
{
  (void)state;
  assert_int_equal(llm_http_parse_retry_after("2", 0), 2000);
  assert_int_equal(llm_http_parse_retry_after(" 0.5", 0), 500);
  assert_int_equal(llm_http_parse_retry_after("garbage", 0), -1);
  /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
  assert_int_equal(llm_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770), 7000);
  assert_int_equal(llm_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111800), 0);
}

static void redaction_of_secret_headers(void **state)
{
  (void)state;
  char out[128];
  llm_http_redact("Authorization: Bearer sk-abc", out, sizeof(out));
  assert_string_equal(out, "Authorization: [redacted]");
  llm_http_redact("x-api-key: sk-ant-xyz", out, sizeof(out));
  assert_null(strstr(out, "sk-ant"));
  llm_http_redact("anthropic-version: 2023-06-01", out, sizeof(out));
  assert_string_equal(out, "anthropic-version: 2023-06-01");
}

static void secrets_masked_in_provider_messages(void **state)
{
  (void)state;
  char m[] = "Incorrect API key provided: sk-proj-abc1****wxyz. Echo: MYKEY-0123456789; task-list ok";
  llm_redact_secrets(m, "MYKEY-0123456789");
  assert_string_equal(m, "Incorrect API key provided: sk-*****************. Echo: ****************; task-list ok");
}

static void breaker_transitions(void **state)
{
  (void)state;
  struct llm_breaker_cfg cfg = {3, 1000};
  struct llm_breaker b;
  llm_breaker_init(&b, &cfg);
  assert_true(llm_breaker_allow(&b, 0));
  llm_breaker_failure(&b, 10);
  llm_breaker_failure(&b, 20);
  assert_int_equal(b.state, LLM_BREAKER_CLOSED);
  llm_breaker_success(&b); /* resets the consecutive count */
  llm_breaker_failure(&b, 30);
  llm_breaker_failure(&b, 40);
  assert_int_equal(b.state, LLM_BREAKER_CLOSED);
  llm_breaker_failure(&b, 50);
  assert_int_equal(b.state, LLM_BREAKER_OPEN);
  assert_int_equal(b.opens, 1);
  assert_false(llm_breaker_allow(&b, 500));
  /* after the cooldown: exactly one probe */
  assert_true(llm_breaker_allow(&b, 1050));
  assert_int_equal(b.state, LLM_BREAKER_HALF_OPEN);
  assert_false(llm_breaker_allow(&b, 1051));
  /* probe fails: open again, new cooldown from now */
  llm_breaker_failure(&b, 1100);
  assert_int_equal(b.state, LLM_BREAKER_OPEN);
  assert_int_equal(b.opens, 2);
  assert_false(llm_breaker_allow(&b, 2000));
  assert_true(llm_breaker_allow(&b, 2100));
  llm_breaker_success(&b);
  assert_int_equal(b.state, LLM_BREAKER_CLOSED);
  assert_true(llm_breaker_allow(&b, 2101));
  assert_true(llm_breaker_allow(&b, 2102));
  assert_string_equal(llm_breaker_state_name(LLM_BREAKER_HALF_OPEN), "half-open");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(permanent_statuses),
      cmocka_unit_test(transient_statuses),
      cmocka_unit_test(should_retry_header_overrides),
      cmocka_unit_test(backoff_doubles_caps_and_jitters),
      cmocka_unit_test(retry_after_honoured_or_too_long),
      cmocka_unit_test(retry_after_parsing),
      cmocka_unit_test(redaction_of_secret_headers),
      cmocka_unit_test(secrets_masked_in_provider_messages),
      cmocka_unit_test(breaker_transitions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
