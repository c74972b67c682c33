/*
 * tests/health/test_dev_health.c - unit tests of the health monitor with an
 * injected clock, an injected `wg show` text and probe callbacks: handshake
 * parsing and classification, firing/repeat/resolve, flapping, inhibition,
 * audit texts, the fleet table and JSON. No sleeps: the clock is a variable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "dev_health.h"

#define KEY1 "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
#define KEY2 "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
#define T0 1700000000

struct fx {
  int64_t now;
  char wg_text[512];
  int agent_bad, ssh_bad, audit_bad;
  char audit_detail[64];
  int agent_calls;
  char posts[64][256];
  char html[64][512];
  int nposts;
  struct dev_health *h;
};

static int64_t fake_now(void *ctx)
{
  return ((struct fx *)ctx)->now;
}

static mx_err fake_wg(void *ctx, const char *iface, struct mx_buf *out, char *err)
{
  struct fx *f = ctx;
  assert_string_equal(iface, "mxh0");
  (void)err;
  return mx_buf_adds(out, f->wg_text);
}

static void fake_post(void *ctx, const char *text, const char *html)
{
  struct fx *f = ctx;
  assert_true(f->nposts < 64);
  snprintf(f->posts[f->nposts], sizeof f->posts[0], "%s", text);
  snprintf(f->html[f->nposts], sizeof f->html[0], "%s", html);
  f->nposts++;
}

static int fake_agent(void *ctx, char *detail, size_t n)
{
  struct fx *f = ctx;
  f->agent_calls++;
  if (f->agent_bad)
    snprintf(detail, n, "connection refused");
  return f->agent_bad;
}

static int fake_ssh(void *ctx, char *detail, size_t n)
{
  struct fx *f = ctx;
  if (f->ssh_bad)
    snprintf(detail, n, "timed out after 5 s");
  return f->ssh_bad;
}

static int fake_audit(void *ctx, char *detail, size_t n)
{
  struct fx *f = ctx;
  if (f->audit_bad)
    snprintf(detail, n, "%s", f->audit_detail);
  return f->audit_bad;
}

static void set_handshake(struct fx *f, int64_t when)
{
  snprintf(f->wg_text, sizeof f->wg_text, KEY1 "\t%lld\n" KEY2 "\t0\n", (long long)when);
}

/* pending 0 and keep_firing 0 unless a test says otherwise. */
static struct fx *fx_new(int pending_s, int keep_firing_s)
{
  struct fx *f = calloc(1, sizeof *f);
  struct dev_health_opts o = {0};
  struct dev_health_device d = {0};
  char err[MX_ERRBUF_LEN];

  assert_non_null(f);
  f->now = T0;
  set_handshake(f, T0 - 30);
  o.wg_interface = "mxh0";
  o.wg_show = fake_wg;
  o.wg_ctx = f;
  o.now_fn = fake_now;
  o.now_ctx = f;
  o.post = fake_post;
  o.post_ctx = f;
  o.pending_s = pending_s;
  o.keep_firing_s = keep_firing_s;
  assert_int_equal(dev_health_new(&o, &f->h, err), MX_OK);
  d.name = "pc1";
  d.backend = "wg";
  d.wg_pubkey = KEY1;
  d.mesh_address = "198.51.100.2";
  d.agent_health = fake_agent;
  d.agent_ctx = f;
  assert_int_equal(dev_health_add_device(f->h, &d, err), MX_OK);
  assert_int_equal(dev_health_add_audit_chain(f->h, "pc1", "agent", fake_audit, f, err), MX_OK);
  return f;
}

static void fx_free(struct fx *f)
{
  dev_health_free(f->h);
  free(f);
}

static void run(struct fx *f)
{
  char err[MX_ERRBUF_LEN];
  assert_int_equal(dev_health_run_once(f->h, NULL, err), MX_OK);
}

static void test_parse_handshakes(void **state)
{
  struct dev_health_handshake *hs = NULL;
  size_t n = 0;
  char err[MX_ERRBUF_LEN];
  (void)state;

  assert_int_equal(dev_health_parse_handshakes(KEY1 "\t0\n" KEY2 "\t1699999399\n", &hs, &n, err), MX_OK);
  assert_int_equal(n, 2);
  assert_string_equal(hs[0].pubkey, KEY1);
  assert_int_equal(hs[0].when, 0);
  assert_int_equal(hs[1].when, 1699999399);
  assert_int_equal(dev_health_hs_classify(hs[0].when, T0, 600), DEV_HEALTH_HS_NEVER);
  assert_int_equal(dev_health_hs_classify(T0 - 601, T0, 600), DEV_HEALTH_HS_STALE);
  assert_int_equal(dev_health_hs_classify(T0 - 600, T0, 600), DEV_HEALTH_HS_OK);
  assert_int_equal(dev_health_hs_classify(T0 - 30, T0, 600), DEV_HEALTH_HS_OK);
  free(hs);

  assert_int_equal(dev_health_parse_handshakes("", &hs, &n, err), MX_OK);
  assert_int_equal(n, 0);
  free(hs);
  assert_int_equal(dev_health_parse_handshakes(KEY1 "\t0\nnot-a-key\t12\n", &hs, &n, err), MX_ERR_INVALID);
  assert_null(hs);
  assert_string_equal(err, "wg latest-handshakes line 2: expected 'PUBKEY<TAB>UNIX_TIME', got 'not-a-key\t12'");
  assert_int_equal(dev_health_parse_handshakes(KEY1 "\t-5\n", &hs, &n, err), MX_ERR_INVALID);
  assert_int_equal(dev_health_parse_handshakes(KEY1 "\t12x\n", &hs, &n, err), MX_ERR_INVALID);
  assert_int_equal(dev_health_parse_handshakes(KEY1 " 12\n", &hs, &n, err), MX_ERR_INVALID);
}

static void test_format_age(void **state)
{
  char b[32];
  (void)state;
  dev_health_format_age(0, T0, b, sizeof b);
  assert_string_equal(b, "never");
  dev_health_format_age(T0 - 30, T0, b, sizeof b);
  assert_string_equal(b, "30s ago");
  dev_health_format_age(T0 - 8 * 60 - 10, T0, b, sizeof b);
  assert_string_equal(b, "8m ago");
  dev_health_format_age(T0 - 3 * 3600, T0, b, sizeof b);
  assert_string_equal(b, "3h ago");
  dev_health_format_age(T0 - 2 * 86400, T0, b, sizeof b);
  assert_string_equal(b, "2d ago");
}

static void test_stale_fires_repeats_resolves(void **state)
{
  struct fx *f = fx_new(0, 0);
  (void)state;

  run(f);
  assert_int_equal(f->nposts, 0);
  f->now = T0 + 11 * 60; /* handshake 11m30s ago: stale */
  run(f);
  assert_int_equal(f->nposts, 1);
  assert_string_equal(f->posts[0], "[ALERT] device_id=pc1 status=stale (handshake 11m ago)");
  assert_string_equal(f->html[0], "<b>[ALERT]</b> device_id=pc1 status=stale (handshake 11m ago)");
  /* Still stale every minute for almost 4 h: no repeat. */
  for (int i = 1; i < 239; i++) {
    f->now += 60;
    run(f);
  }
  assert_int_equal(f->nposts, 1);
  f->now = T0 + 11 * 60 + 4 * 3600;
  run(f);
  assert_int_equal(f->nposts, 2);
  assert_string_equal(f->posts[1], "[ALERT] device_id=pc1 status=stale (handshake 4h ago)");
  /* Recovers: resolved exactly once. */
  set_handshake(f, f->now);
  run(f);
  f->now += 60;
  run(f);
  f->now += 60;
  run(f);
  assert_int_equal(f->nposts, 3);
  assert_string_equal(f->posts[2], "[RESOLVED] device_id=pc1 status=stale (firing began 4h ago)");
  fx_free(f);
}

static void test_never_is_stale_and_not_online(void **state)
{
  struct fx *f = fx_new(0, 0);
  cJSON *j;
  (void)state;

  set_handshake(f, 0);
  run(f);
  assert_int_equal(f->nposts, 1);
  assert_string_equal(f->posts[0], "[ALERT] device_id=pc1 status=stale (handshake never)");
  j = dev_health_device_json(f->h, "pc1");
  assert_non_null(j);
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "online")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "last_handshake")) == 0);
  cJSON_Delete(j);
  fx_free(f);
}

static void test_online_goes_stale_by_clock(void **state)
{
  struct fx *f = fx_new(0, 0);
  struct mx_buf text = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  cJSON *j;
  (void)state;

  run(f);
  j = dev_health_device_json(f->h, "pc1");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "online")));
  cJSON_Delete(j);
  /* No new run, but the clock passed the threshold: never shown online. */
  f->now += 700;
  j = dev_health_device_json(f->h, "pc1");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "online")));
  cJSON_Delete(j);
  assert_int_equal(dev_health_render_table(f->h, &text, NULL), MX_OK);
  assert_non_null(strstr(mx_buf_cstr(&text), "pc1     stale"));
  assert_null(strstr(mx_buf_cstr(&text), "online"));
  mx_buf_release(&text);
  fx_free(f);
}

static void test_flapping_at_most_one_per_repeat(void **state)
{
  struct fx *f = fx_new(0, 300);
  int alerts = 0, resolved = 0;
  (void)state;

  /* The agent flips every 30 s for 8 h. */
  for (int i = 0; i < 8 * 120; i++) {
    f->agent_bad = i % 2 == 0;
    set_handshake(f, f->now - 10);
    run(f);
    f->now += 30;
  }
  for (int i = 0; i < f->nposts; i++) {
    alerts += strncmp(f->posts[i], "[ALERT]", 7) == 0;
    resolved += strncmp(f->posts[i], "[RESOLVED]", 10) == 0;
  }
  assert_int_equal(alerts, 2); /* t=0 and t=4h */
  assert_int_equal(resolved, 0);
  assert_string_equal(f->posts[0], "[ALERT] device_id=pc1 status=agent_down (connection refused)");
  fx_free(f);
}

static void test_flapping_suppressed_by_pending(void **state)
{
  struct fx *f = fx_new(-1, -1); /* defaults: pending 60 s, keep firing 300 s */
  (void)state;

  for (int i = 0; i < 200; i++) {
    f->agent_bad = i % 2 == 0;
    set_handshake(f, f->now - 10);
    run(f);
    f->now += 30;
  }
  assert_int_equal(f->nposts, 0);
  /* Down for real: fires once the pending period is over. */
  f->agent_bad = 1;
  run(f);
  f->now += 60;
  set_handshake(f, f->now - 10);
  run(f);
  assert_int_equal(f->nposts, 1);
  assert_string_equal(f->posts[0], "[ALERT] device_id=pc1 status=agent_down (connection refused)");
  /* Up again: resolved only after 300 s of good runs, and once. */
  f->agent_bad = 0;
  for (int i = 0; i < 10; i++) {
    f->now += 60;
    set_handshake(f, f->now - 10);
    run(f);
    assert_int_equal(f->nposts, i < 5 ? 1 : 2);
  }
  assert_string_equal(f->posts[1], "[RESOLVED] device_id=pc1 status=agent_down (firing began 6m ago)");
  fx_free(f);
}

static void test_stale_inhibits_agent_down(void **state)
{
  struct fx *f = fx_new(0, 0);
  (void)state;

  f->agent_bad = 1;
  set_handshake(f, T0 - 900);
  for (int i = 0; i < 5; i++) {
    run(f);
    f->now += 60;
  }
  assert_int_equal(f->nposts, 1);
  assert_string_equal(f->posts[0], "[ALERT] device_id=pc1 status=stale (handshake 15m ago)");
  /* The agent is not even asked over a stale link. */
  assert_int_equal(f->agent_calls, 0);
  /* Link back, agent still down: now the agent alert fires, stale resolves. */
  set_handshake(f, f->now);
  run(f);
  assert_int_equal(f->nposts, 3);
  assert_string_equal(f->posts[1], "[RESOLVED] device_id=pc1 status=stale (firing began 5m ago)");
  assert_string_equal(f->posts[2], "[ALERT] device_id=pc1 status=agent_down (connection refused)");
  fx_free(f);
}

static void test_audit_text_and_change(void **state)
{
  struct fx *f = fx_new(0, 0);
  (void)state;

  f->audit_bad = 1;
  snprintf(f->audit_detail, sizeof f->audit_detail, "hash_chain_corrupted (seq=47)");
  run(f);
  f->now += 60;
  set_handshake(f, f->now);
  run(f);
  assert_int_equal(f->nposts, 1);
  assert_string_equal(f->posts[0], "[ALERT] device_id=pc1 status=hash_chain_corrupted (seq=47)");
  /* A different status name while firing is a state change. */
  snprintf(f->audit_detail, sizeof f->audit_detail, "truncated");
  f->now += 60;
  set_handshake(f, f->now);
  run(f);
  assert_int_equal(f->nposts, 2);
  assert_string_equal(f->posts[1], "[ALERT] device_id=pc1 status=truncated");
  f->audit_bad = 0;
  for (int i = 0; i < 3; i++) {
    f->now += 60;
    set_handshake(f, f->now);
    run(f);
  }
  assert_int_equal(f->nposts, 3);
  assert_string_equal(f->posts[2], "[RESOLVED] device_id=pc1 status=truncated (firing began 1m ago)");
  fx_free(f);
}

static void test_table_summary_and_json(void **state)
{
  struct fx *f = fx_new(0, 0);
  struct dev_health_device d = {0};
  struct mx_buf text = MX_BUF_INIT(MX_BUF_MAX_SMALL), html = MX_BUF_INIT(MX_BUF_MAX_SMALL),
                sum = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char err[MX_ERRBUF_LEN];
  cJSON *all;
  (void)state;

  d.name = "db<1>";
  d.backend = "ssh";
  d.ssh_reach = fake_ssh;
  d.ssh_ctx = f;
  assert_int_equal(dev_health_add_device(f->h, &d, err), MX_OK);
  assert_int_equal(dev_health_add_device(f->h, &d, err), MX_ERR_CONFLICT);
  assert_string_equal(err, "health monitor: device 'db<1>' is already monitored");
  assert_int_equal(dev_health_add_audit_chain(f->h, "nope", "x", fake_audit, f, err), MX_ERR_NOT_FOUND);
  f->ssh_bad = 1;
  dev_health_note_command(f->h, "pc1", "disk.usage /");
  f->now += 120;
  set_handshake(f, f->now - 8 * 60);
  assert_int_equal(dev_health_run_once(f->h, &sum, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&sum),
                      "pc1: online; handshake 8m ago; agent ok; audit ok\n"
                      "db<1>: ssh_unreachable; handshake -; ssh unreachable: timed out after 5 s; audit -\n");
  assert_int_equal(f->nposts, 1);
  assert_string_equal(f->posts[0], "[ALERT] device_id=db<1> status=ssh_unreachable (timed out after 5 s)");
  assert_string_equal(f->html[0], "<b>[ALERT]</b> device_id=db&lt;1&gt; status=ssh_unreachable (timed out after 5 s)");
  assert_int_equal(dev_health_render_table(f->h, &text, &html), MX_OK);
  assert_string_equal(mx_buf_cstr(&text),
                      "DEVICE  STATUS           BACKEND  ADDRESS       HANDSHAKE  HEALTH                              "
                      "  LAST COMMAND           AUDIT\n"
                      "pc1     online           wg       198.51.100.2  8m ago     agent ok                            "
                      "  disk.usage / (2m ago)  ok\n"
                      "db<1>   ssh_unreachable  ssh      -             -          ssh unreachable: timed out after 5 s"
                      "  -                      -\n");
  assert_non_null(strstr(mx_buf_cstr(&html), "<tr><td>db&lt;1&gt;</td><td>ssh_unreachable</td>"));
  assert_true(strncmp(mx_buf_cstr(&html), "<table><tr><th>DEVICE</th>", 26) == 0);
  all = dev_health_fleet_json(f->h);
  assert_int_equal(cJSON_GetArraySize(all), 2);
  {
    cJSON *pc1 = cJSON_GetArrayItem(all, 0), *db = cJSON_GetArrayItem(all, 1);
    assert_string_equal(cJSON_GetObjectItem(pc1, "last_handshake_age")->valuestring, "8m ago");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(pc1, "agent"), "ok")));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(pc1, "last_command"), "text")->valuestring,
                        "disk.usage /");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(db, "mesh_address")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(db, "online")));
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(db, "alerts"), 0)->valuestring,
                        "ssh_unreachable (timed out after 5 s)");
  }
  assert_null(dev_health_device_json(f->h, "nope"));
  cJSON_Delete(all);
  mx_buf_release(&text);
  mx_buf_release(&html);
  mx_buf_release(&sum);
  fx_free(f);
}

static void test_remove_device(void **state)
{
  struct fx *f = fx_new(0, 0);
  struct dev_health_device d = {0};
  struct mx_buf sum = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char err[MX_ERRBUF_LEN];
  cJSON *all;
  (void)state;

  d.name = "web-2";
  d.backend = "ssh";
  d.ssh_reach = fake_ssh;
  d.ssh_ctx = f;
  assert_int_equal(dev_health_add_device(f->h, &d, err), MX_OK);
  f->ssh_bad = 1;
  run(f);
  assert_int_equal(f->nposts, 1);
  /* Revoked: gone from the table, no further alerts, no [RESOLVED]. */
  assert_int_equal(dev_health_remove_device(f->h, "web-2", err), MX_OK);
  assert_int_equal(dev_health_remove_device(f->h, "web-2", err), MX_ERR_NOT_FOUND);
  assert_string_equal(err, "health monitor: no device named 'web-2'");
  f->now += 5 * 3600;
  set_handshake(f, f->now);
  run(f);
  assert_int_equal(f->nposts, 1);
  all = dev_health_fleet_json(f->h);
  assert_int_equal(cJSON_GetArraySize(all), 1);
  cJSON_Delete(all);
  assert_int_equal(dev_health_remove_device(f->h, "pc1", err), MX_OK);
  assert_int_equal(dev_health_run_once(f->h, &sum, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&sum), "no devices are monitored\n");
  mx_buf_release(&sum);
  fx_free(f);
}

static void *hammer_runs(void *arg)
{
  struct fx *f = arg;
  char err[MX_ERRBUF_LEN];
  for (int i = 0; i < 300; i++) {
    if (dev_health_run_once(f->h, NULL, err) != MX_OK)
      return (void *)1;
  }
  return NULL;
}

static void *hammer_reads(void *arg)
{
  struct fx *f = arg;
  for (int i = 0; i < 300; i++) {
    struct mx_buf t = MX_BUF_INIT(MX_BUF_MAX_SMALL), hb = MX_BUF_INIT(MX_BUF_MAX_SMALL);
    cJSON *j = dev_health_fleet_json(f->h);
    dev_health_note_command(f->h, "pc1", "proc.list");
    if (!j || dev_health_render_table(f->h, &t, &hb) != MX_OK || !strstr(mx_buf_cstr(&t), "pc1"))
      return (void *)1;
    cJSON_Delete(j);
    mx_buf_release(&t);
    mx_buf_release(&hb);
  }
  return NULL;
}

/* Runs from two workers while a third renders: runs serialise, readers see
 * whole rows, and the one alert is posted once (ASan checks the memory). */
static void test_concurrent_runs_and_renders(void **state)
{
  struct fx *f = fx_new(0, 0);
  pthread_t t[3];
  void *rv;
  (void)state;

  f->agent_bad = 1;
  assert_int_equal(pthread_create(&t[0], NULL, hammer_runs, f), 0);
  assert_int_equal(pthread_create(&t[1], NULL, hammer_runs, f), 0);
  assert_int_equal(pthread_create(&t[2], NULL, hammer_reads, f), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(pthread_join(t[i], &rv), 0);
    assert_null(rv);
  }
  assert_int_equal(f->nposts, 1);
  assert_string_equal(f->posts[0], "[ALERT] device_id=pc1 status=agent_down (connection refused)");
  fx_free(f);
}

static void test_missing_peer_and_wg_failure(void **state)
{
  struct fx *f = fx_new(0, 0);
  (void)state;

  snprintf(f->wg_text, sizeof f->wg_text, KEY2 "\t0\n");
  run(f);
  assert_int_equal(f->nposts, 1);
  assert_string_equal(f->posts[0], "[ALERT] device_id=pc1 status=stale (peer not on mxh0)");
  fx_free(f);
}

static void test_real_wg_missing_interface(void **state)
{
  struct dev_health_opts o = {0};
  struct dev_health_device d = {0};
  struct dev_health *h;
  struct fx f = {0};
  char err[MX_ERRBUF_LEN];
  (void)state;

  o.wg_interface = "mxh-nonexistent";
  o.wg_path = "/bin/false";
  o.post = fake_post;
  o.post_ctx = &f;
  o.pending_s = 0;
  assert_int_equal(dev_health_new(&o, &h, err), MX_OK);
  d.name = "pc9";
  d.wg_pubkey = KEY1;
  assert_int_equal(dev_health_add_device(h, &d, err), MX_OK);
  assert_int_equal(dev_health_run_once(h, NULL, err), MX_OK);
  assert_int_equal(f.nposts, 1);
  assert_string_equal(f.posts[0], "[ALERT] device_id=pc9 status=stale (cannot read handshakes: /bin/false show "
                                  "mxh-nonexistent latest-handshakes: failed)");
  dev_health_free(h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_handshakes),
      cmocka_unit_test(test_format_age),
      cmocka_unit_test(test_stale_fires_repeats_resolves),
      cmocka_unit_test(test_never_is_stale_and_not_online),
      cmocka_unit_test(test_online_goes_stale_by_clock),
      cmocka_unit_test(test_flapping_at_most_one_per_repeat),
      cmocka_unit_test(test_flapping_suppressed_by_pending),
      cmocka_unit_test(test_stale_inhibits_agent_down),
      cmocka_unit_test(test_audit_text_and_change),
      cmocka_unit_test(test_table_summary_and_json),
      cmocka_unit_test(test_remove_device),
      cmocka_unit_test(test_concurrent_runs_and_renders),
      cmocka_unit_test(test_missing_peer_and_wg_failure),
      cmocka_unit_test(test_real_wg_missing_interface),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
