/*
 * mx_metrics: exact Prometheus text for a counter and a histogram, label
 * escaping, extra hooks (added, rendered after the registry, removed), and
 * exact totals when several threads count at once, and a fleet of 1,000
 * identities each with its own counts, listed in registration order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_metrics.h"

/* The lines from "# HELP name " up to the next "# HELP" (or the end). */
static char *block(const char *text, const char *name)
{
  char head[128];
  snprintf(head, sizeof(head), "# HELP %s ", name);
  const char *s = strstr(text, head);
  if (!s)
    return NULL;
  const char *e = strstr(s + 1, "# HELP ");
  size_t n = e ? (size_t)(e - s) : strlen(s);
  char *out = malloc(n + 1);
  memcpy(out, s, n);
  out[n] = '\0';
  return out;
}

static char *render(struct mx_metrics *m)
{
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  assert_int_equal(mx_metrics_render(m, &out), MX_OK);
  return mx_buf_take(&out);
}

static void counter_text_is_exact(void **state)
{
  (void)state;
  struct mx_metrics *m = mx_metrics_new();
  assert_int_equal(mx_metrics_register(m, "pc1"), MX_OK);
  assert_int_equal(mx_metrics_register(m, "pc2"), MX_OK);
  mx_metrics_inc(m, "pc1", MX_M_SYNCS);
  mx_metrics_add(m, "pc1", MX_M_SYNCS, 41);
  mx_metrics_inc(m, "pc2", MX_M_SYNC_ERRORS);
  assert_int_equal(mx_metrics_get(m, "pc1", MX_M_SYNCS), 42);
  assert_int_equal(mx_metrics_get(m, "nobody", MX_M_SYNCS), 0);
  char *text = render(m);
  char *b = block(text, "mxfleet_syncs_total");
  assert_non_null(b);
  assert_string_equal(b, "# HELP mxfleet_syncs_total Sync responses processed.\n"
                         "# TYPE mxfleet_syncs_total counter\n"
                         "mxfleet_syncs_total{identity=\"pc1\"} 42\n"
                         "mxfleet_syncs_total{identity=\"pc2\"} 0\n");
  free(b);
  b = block(text, "mxfleet_sync_errors_total");
  assert_non_null(b);
  assert_string_equal(b, "# HELP mxfleet_sync_errors_total Sync requests that failed.\n"
                         "# TYPE mxfleet_sync_errors_total counter\n"
                         "mxfleet_sync_errors_total{identity=\"pc1\"} 0\n"
                         "mxfleet_sync_errors_total{identity=\"pc2\"} 1\n");
  free(b);
  /* Every counter the bot reports is there, each with its TYPE line. */
  static const char *const names[] = {"mxfleet_messages_received_total", "mxfleet_replies_sent_total",
                                      "mxfleet_send_errors_total",       "mxfleet_send_retries_total",
                                      "mxfleet_commands_handled_total",  "mxfleet_tool_calls_total"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char type[128];
    snprintf(type, sizeof(type), "# TYPE %s counter\n%s{identity=\"pc1\"} 0\n", names[i], names[i]);
    assert_non_null(strstr(text, type));
  }
  free(text);
  mx_metrics_free(m);
}

static void histogram_text_is_exact(void **state)
{
  (void)state;
  struct mx_metrics *m = mx_metrics_new();
  static const int64_t obs[] = {3, 5, 7, 1500, 70000, -4};
  for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
    mx_metrics_observe_ms(m, "pc1", MX_H_SYNC, obs[i]);
  char *text = render(m);
  char *b = block(text, "mxfleet_sync_duration_seconds");
  assert_non_null(b);
  /* le is inclusive (5 ms lands in 0.005); 70 s is only in +Inf; -4 ms
   * counts as 0; the sum is exact to the millisecond. */
  assert_string_equal(b, "# HELP mxfleet_sync_duration_seconds Duration of one /sync request.\n"
                         "# TYPE mxfleet_sync_duration_seconds histogram\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"0.005\"} 3\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"0.01\"} 4\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"0.025\"} 4\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"0.05\"} 4\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"0.1\"} 4\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"0.25\"} 4\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"0.5\"} 4\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"1\"} 4\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"2.5\"} 5\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"5\"} 5\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"10\"} 5\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"30\"} 5\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"60\"} 5\n"
                         "mxfleet_sync_duration_seconds_bucket{identity=\"pc1\",le=\"+Inf\"} 6\n"
                         "mxfleet_sync_duration_seconds_sum{identity=\"pc1\"} 71.515\n"
                         "mxfleet_sync_duration_seconds_count{identity=\"pc1\"} 6\n");
  free(b);
  /* The other histogram exists for the same identity, empty. */
  assert_non_null(strstr(text, "# TYPE mxfleet_handling_duration_seconds histogram\n"));
  assert_non_null(strstr(text, "mxfleet_handling_duration_seconds_bucket{identity=\"pc1\",le=\"+Inf\"} 0\n"
                               "mxfleet_handling_duration_seconds_sum{identity=\"pc1\"} 0.000\n"));
  free(text);
  mx_metrics_free(m);
}

static void ping_reply_histogram_resolves_ms(void **state)
{
  (void)state;
  struct mx_metrics *m = mx_metrics_new();
  mx_metrics_observe_us(m, "pc1", MX_H_PING_REPLY, 900);  /* 0.9 ms: le 0.001 */
  mx_metrics_observe_us(m, "pc1", MX_H_PING_REPLY, 2500); /* 2.5 ms: le 0.003 */
  char *text = render(m);
  assert_non_null(strstr(text, "# TYPE mxfleet_ping_reply_seconds histogram\n"));
  assert_non_null(strstr(text, "mxfleet_ping_reply_seconds_bucket{identity=\"pc1\",le=\"0.0005\"} 0\n"
                               "mxfleet_ping_reply_seconds_bucket{identity=\"pc1\",le=\"0.001\"} 1\n"
                               "mxfleet_ping_reply_seconds_bucket{identity=\"pc1\",le=\"0.002\"} 1\n"
                               "mxfleet_ping_reply_seconds_bucket{identity=\"pc1\",le=\"0.003\"} 2\n"));
  assert_non_null(strstr(text, "mxfleet_ping_reply_seconds_sum{identity=\"pc1\"} 0.003400\n"));
  free(text);
  mx_metrics_free(m);
}

static void label_values_are_escaped(void **state)
{
  (void)state;
  struct mx_metrics *m = mx_metrics_new();
  mx_metrics_inc(m, "we\"ird\\id\nx", MX_M_TOOL_CALLS);
  char *text = render(m);
  assert_non_null(strstr(text, "mxfleet_tool_calls_total{identity=\"we\\\"ird\\\\id\\nx\"} 1\n"));
  /* No raw newline inside any sample line: each line is a comment or
   * name{labels} value. */
  for (char *line = text; *line;) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    if (line[0] != '#') {
      assert_non_null(memchr(line, '{', (size_t)(nl - line)));
      assert_non_null(memchr(line, '}', (size_t)(nl - line)));
    }
    line = nl + 1;
  }
  free(text);
  mx_metrics_free(m);
}

struct hook_ctx {
  int calls;
};

static mx_err breaker_lines(void *ctx, struct mx_buf *out)
{
  struct hook_ctx *h = ctx;
  h->calls++;
  return mx_buf_adds(out, "# HELP llm_breaker_open Whether a provider's breaker is open.\n"
                          "# TYPE llm_breaker_open gauge\n"
                          "llm_breaker_open{provider=\"local\"} 1\n");
}

static void extra_hooks_append_and_can_be_removed(void **state)
{
  (void)state;
  struct mx_metrics *m = mx_metrics_new();
  struct hook_ctx h = {0};
  mx_metrics_inc(m, "pc1", MX_M_COMMANDS);
  assert_int_equal(mx_metrics_add_extra(m, breaker_lines, &h), MX_OK);
  char *text = render(m);
  assert_int_equal(h.calls, 1);
  const char *hook = strstr(text, "# HELP llm_breaker_open ");
  assert_non_null(hook);
  /* After the registry's own series, and at the very end. */
  assert_true(hook > strstr(text, "mxfleet_handling_duration_seconds_count"));
  assert_string_equal(hook + strlen(hook) - strlen("llm_breaker_open{provider=\"local\"} 1\n"),
                      "llm_breaker_open{provider=\"local\"} 1\n");
  free(text);
  mx_metrics_remove_extra(m, breaker_lines, &h);
  text = render(m);
  assert_int_equal(h.calls, 1);
  assert_null(strstr(text, "llm_breaker_open"));
  free(text);
  for (int i = 0; i < 8; i++)
    assert_int_equal(mx_metrics_add_extra(m, breaker_lines, &h), MX_OK);
  assert_int_equal(mx_metrics_add_extra(m, breaker_lines, &h), MX_ERR_TOO_BIG);
  mx_metrics_free(m);
}

#define N_THREADS 4
#define N_INCS 20000

struct worker {
  struct mx_metrics *m;
  char id[16];
};

static void *count_worker(void *arg)
{
  struct worker *w = arg;
  for (int i = 0; i < N_INCS; i++) {
    mx_metrics_inc(w->m, "shared", MX_M_MESSAGES_RECEIVED);
    mx_metrics_inc(w->m, w->id, MX_M_REPLIES_SENT);
    mx_metrics_observe_ms(w->m, "shared", MX_H_HANDLING, 1);
  }
  return NULL;
}

static void concurrent_counts_are_exact(void **state)
{
  (void)state;
  struct mx_metrics *m = mx_metrics_new();
  pthread_t th[N_THREADS];
  struct worker w[N_THREADS];
  for (int i = 0; i < N_THREADS; i++) {
    w[i].m = m;
    snprintf(w[i].id, sizeof(w[i].id), "dev%d", i);
    assert_int_equal(pthread_create(&th[i], NULL, count_worker, &w[i]), 0);
  }
  /* Render while they count: must not crash or deadlock. */
  for (int i = 0; i < 20; i++)
    free(render(m));
  for (int i = 0; i < N_THREADS; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(mx_metrics_get(m, "shared", MX_M_MESSAGES_RECEIVED), N_THREADS * N_INCS);
  for (int i = 0; i < N_THREADS; i++)
    assert_int_equal(mx_metrics_get(m, w[i].id, MX_M_REPLIES_SENT), N_INCS);
  char *text = render(m);
  char want[128];
  snprintf(want, sizeof(want), "mxfleet_handling_duration_seconds_count{identity=\"shared\"} %d\n",
           N_THREADS * N_INCS);
  assert_non_null(strstr(text, want));
  free(text);
  mx_metrics_free(m);
}

/* A fleet's worth of identities (the table grows several times on the
 * way): every one keeps its own counts, and the text lists them in the
 * order they were registered. */
static void many_identities_keep_their_counts_and_order(void **state)
{
  (void)state;
  enum { N = 1000 };
  struct mx_metrics *m = mx_metrics_new();
  char id[32];
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof(id), "dev-%d", (i * 7919) % N); /* not in name order */
    assert_int_equal(mx_metrics_register(m, id), MX_OK);
  }
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof(id), "dev-%d", i);
    mx_metrics_add(m, id, MX_M_SYNCS, (uint64_t)i + 1);
  }
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof(id), "dev-%d", i);
    assert_int_equal(mx_metrics_get(m, id, MX_M_SYNCS), (uint64_t)i + 1);
  }
  assert_int_equal(mx_metrics_get(m, "dev-1000", MX_M_SYNCS), 0);
  assert_int_equal(mx_metrics_get(m, "", MX_M_SYNCS), 0);
  char *text = render(m);
  const char *at = text;
  for (int i = 0; i < N; i++) {
    int k = (i * 7919) % N;
    char line[96];
    snprintf(line, sizeof(line), "mxfleet_syncs_total{identity=\"dev-%d\"} %d\n", k, k + 1);
    const char *next = strstr(at, line);
    assert_non_null(next);
    at = next + strlen(line);
  }
  free(text);
  mx_metrics_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(counter_text_is_exact),
    cmocka_unit_test(ping_reply_histogram_resolves_ms),
    cmocka_unit_test(histogram_text_is_exact),
    cmocka_unit_test(label_values_are_escaped),
    cmocka_unit_test(extra_hooks_append_and_can_be_removed),
    cmocka_unit_test(concurrent_counts_are_exact),
    cmocka_unit_test(many_identities_keep_their_counts_and_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
