/* test_llm_store.c - SQLite-backed parts: budget accounting per device and
 * operator per UTC day, history storage and token-based trimming, and
 * prompt template rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_budget.h"
#include "llm_db.h"
#include "llm_history.h"
#include "llm_prompt.h"
#include "mx_db.h"
#include "mx_util.h"

#define DAY1 INT64_C(1795000000000) /* some UTC moment */
#define DAY_MS INT64_C(86400000)

static int setup(void **state)
{
  static char path[64];
  snprintf(path, sizeof(path), "/tmp/llmstore%d.db", (int)getpid());
  unlink(path);
  sqlite3 *db = NULL;
  char err[MX_ERRBUF_LEN];
  if (llm_db_open(path, &db, err))
    return -1;
  *state = db;
  return 0;
}

static int teardown(void **state)
{
  mx_db_close(*state);
  char path[64], wal[80], shm[80];
  snprintf(path, sizeof(path), "/tmp/llmstore%d.db", (int)getpid());
  snprintf(wal, sizeof(wal), "%s-wal", path);
  snprintf(shm, sizeof(shm), "%s-shm", path);
  unlink(path);
  unlink(wal);
  unlink(shm);
  return 0;
}

static void budget_tokens_per_device_and_day(void **state)
{
  sqlite3 *db = *state;
  struct llm_budget_cfg b = {1000, 0, 0, 0};
  char msg[MX_ERRBUF_LEN];
  assert_int_equal(llm_budget_check(db, &b, "pc1", "@op:x", DAY1, msg), MX_OK);
  assert_int_equal(llm_budget_charge(db, "pc1", "@op:x", DAY1, 600, 0.01, msg), MX_OK);
  assert_int_equal(llm_budget_check(db, &b, "pc1", "@op:x", DAY1, msg), MX_OK);
  assert_int_equal(llm_budget_charge(db, "pc1", "@op:x", DAY1, 400, 0.01, msg), MX_OK);
  assert_int_equal(llm_budget_check(db, &b, "pc1", "@op:x", DAY1, msg), MX_ERR_UNAVAILABLE);
  assert_non_null(strstr(msg, "daily token budget of device pc1 is spent (1000 of 1000 tokens"));
  /* another device is not affected; the next UTC day starts fresh */
  assert_int_equal(llm_budget_check(db, &b, "pc2", "@op:x", DAY1, msg), MX_OK);
  assert_int_equal(llm_budget_check(db, &b, "pc1", "@op:x", DAY1 + DAY_MS, msg), MX_OK);
  int64_t t;
  double c;
  assert_int_equal(llm_budget_usage(db, "operator", "@op:x", DAY1, &t, &c, msg), MX_OK);
  assert_int_equal(t, 1000);
  assert_true(c > 0.0199 && c < 0.0201);
}

static void budget_cost_per_operator(void **state)
{
  sqlite3 *db = *state;
  struct llm_budget_cfg b = {0, 0, 0, 0.05};
  char msg[MX_ERRBUF_LEN];
  struct llm_provider_cfg p = {0};
  p.price_in_per_1k = 0.01;
  p.price_out_per_1k = 0.03;
  double cost = llm_budget_cost(&p, 2000, 1000); /* 0.02 + 0.03 */
  assert_true(cost > 0.0499 && cost < 0.0501);
  assert_int_equal(llm_budget_check(db, &b, "pcA", "@alice:x", DAY1, msg), MX_OK);
  assert_int_equal(llm_budget_charge(db, "pcA", "@alice:x", DAY1, 3000, cost, msg), MX_OK);
  assert_int_equal(llm_budget_check(db, &b, "pcB", "@alice:x", DAY1, msg), MX_ERR_UNAVAILABLE);
  assert_non_null(strstr(msg, "daily cost budget of operator @alice:x is spent"));
  assert_int_equal(llm_budget_check(db, &b, "pcB", "@bob:x", DAY1, msg), MX_OK);
}

static void add_round(struct llm_conv *c, const char *q, size_t result_len)
{
  char *big = malloc(result_len + 1);
  memset(big, 'r', result_len);
  big[result_len] = '\0';
  char id[10];
  assert_int_equal(llm_new_call_id(id), MX_OK);
  struct llm_tool_call call;
  memcpy(call.id, id, sizeof(id));
  call.name = "fs.read";
  call.args_json = "{}";
  assert_int_equal(llm_conv_add_user(c, q), MX_OK);
  assert_int_equal(llm_conv_add_assistant(c, NULL, &call, 1), MX_OK);
  assert_int_equal(llm_conv_add_tool(c, id, "fs.read", big, 0), MX_OK);
  assert_int_equal(llm_conv_add_assistant(c, "answer", NULL, 0), MX_OK);
  free(big);
}

static void assert_pairs_intact(const struct llm_conv *c)
{
  assert_true(c->n > 0);
  assert_int_equal(c->v[0].role, LLM_ROLE_USER);
  for (size_t i = 0; i < c->n; i++) {
    if (c->v[i].role != LLM_ROLE_TOOL)
      continue;
    /* the call this answers is in an earlier assistant message */
    int found = 0;
    for (size_t k = 0; k < i && !found; k++)
      for (size_t m = 0; m < c->v[k].ncalls; m++)
        found |= strcmp(c->v[k].calls[m].id, c->v[i].call_id) == 0;
    assert_true(found);
  }
}

static void trim_drops_oldest_tool_results_first(void **state)
{
  (void)state;
  struct llm_conv c;
  llm_conv_init(&c);
  add_round(&c, "q1", 4000);
  add_round(&c, "q2", 4000);
  add_round(&c, "q3", 400);
  size_t keep = c.n;
  assert_int_equal(llm_conv_add_user(&c, "q4"), MX_OK);
  int64_t before = llm_conv_tokens(&c);
  assert_true(before > 2000);
  int64_t after = llm_history_trim(&c, 1200, &keep);
  assert_true(after <= 1200);
  /* every message kept, the two oldest big results emptied, the newest kept */
  assert_int_equal(c.n, 13);
  assert_string_equal(c.v[2].text, LLM_HISTORY_DROPPED);
  assert_string_equal(c.v[6].text, LLM_HISTORY_DROPPED);
  assert_int_equal(strlen(c.v[10].text), 400);
  assert_int_equal(keep, 12);
  assert_pairs_intact(&c);
  llm_conv_free(&c);
}

static void trim_drops_whole_exchanges_when_needed(void **state)
{
  (void)state;
  struct llm_conv c;
  llm_conv_init(&c);
  for (int i = 0; i < 20; i++)
    add_round(&c, "a question that takes some space in the context window", 100);
  size_t keep = c.n;
  assert_int_equal(llm_conv_add_user(&c, "now"), MX_OK);
  int64_t after = llm_history_trim(&c, 300, &keep);
  assert_true(after <= 300);
  assert_true(c.n < 81);
  assert_string_equal(c.v[c.n - 1].text, "now"); /* the current turn is never touched */
  assert_int_equal(keep, c.n - 1);
  assert_pairs_intact(&c);
  /* budget smaller than the current turn: everything older goes, the turn stays */
  after = llm_history_trim(&c, 1, &keep);
  assert_int_equal(c.n, 1);
  assert_int_equal(keep, 0);
  llm_conv_free(&c);
}

static void history_store_load_clear(void **state)
{
  sqlite3 *db = *state;
  char err[MX_ERRBUF_LEN];
  struct llm_conv c, d;
  llm_conv_init(&c);
  llm_conv_init(&d);
  add_round(&c, "hello", 10);
  assert_int_equal(llm_history_append(db, "pc1", "!room:x", "", &c, 0, err), MX_OK);
  assert_int_equal(llm_history_append(db, "pc1", "!room:x", "$thread", &c, 2, err), MX_OK);
  assert_int_equal(llm_history_load(db, "pc1", "!room:x", "", &d, err), MX_OK);
  assert_int_equal(d.n, 4);
  assert_string_equal(d.v[0].text, "hello");
  assert_string_equal(d.v[2].call_id, c.v[1].calls[0].id);
  llm_conv_free(&d);
  /* the thread got only a tool result and an answer: loading drops the
   * leading non-user messages so no orphan result is sent */
  assert_int_equal(llm_history_load(db, "pc1", "!room:x", "$thread", &d, err), MX_OK);
  assert_int_equal(d.n, 0);
  assert_int_equal(llm_history_clear(db, "pc1", "!room:x", "", err), MX_OK);
  assert_int_equal(llm_history_load(db, "pc1", "!room:x", "", &d, err), MX_OK);
  assert_int_equal(d.n, 0);
  llm_conv_free(&d);
  llm_conv_free(&c);
}

static void prompt_render(void **state)
{
  (void)state;
  struct llm_prompt_vars v = {"pc1", "wg", "Debian 12", "- fs.list: list\n", "read-only", "2026-11-21 20:00 UTC"};
  struct mx_buf b = MX_BUF_INIT(4096);
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_prompt_render("Device {{device}} ({{ os }}) via {{backend}} at {{now}}\n{{tools}}{{policy}}",
                                     "t.md", &v, &b, err),
                   MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "Device pc1 (Debian 12) via wg at 2026-11-21 20:00 UTC\n- fs.list: list\nread-only");
  mx_buf_reset(&b);
  assert_int_equal(llm_prompt_render("a\nb {{devise}}", "prompts/device.md", &v, &b, err), MX_ERR_CONFIG);
  assert_string_equal(err, "prompts/device.md:2: expected one of {{device}} {{backend}} {{os}} {{tools}} {{policy}} "
                           "{{now}}, got '{{devise}}'");
  mx_buf_reset(&b);
  /* the shipped template renders with no leftover placeholder */
  assert_int_equal(llm_prompt_load(MXFLEET_PROMPTS_DIR, "device.md", &v, &b, err), MX_OK);
  assert_null(strstr(mx_buf_cstr(&b), "{{"));
  assert_non_null(strstr(mx_buf_cstr(&b), "pc1"));
  /* a missing file falls back to the built-in copy, which matches the file */
  struct mx_buf viafile = MX_BUF_INIT(1 << 16);
  assert_int_equal(mx_buf_adds(&viafile, mx_buf_cstr(&b)), MX_OK);
  mx_buf_reset(&b);
  assert_int_equal(llm_prompt_load("/nonexistent/prompts", "device.md", &v, &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), mx_buf_cstr(&viafile));
  struct mx_buf file = MX_BUF_INIT(1 << 16);
  assert_int_equal(mx_file_read(MXFLEET_PROMPTS_DIR "/device.md", 1 << 16, &file, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&file), llm_prompt_builtin());
  mx_buf_release(&file);
  mx_buf_release(&viafile);
  mx_buf_release(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(budget_tokens_per_device_and_day),
      cmocka_unit_test(budget_cost_per_operator),
      cmocka_unit_test(trim_drops_oldest_tool_results_first),
      cmocka_unit_test(trim_drops_whole_exchanges_when_needed),
      cmocka_unit_test(history_store_load_clear),
      cmocka_unit_test(prompt_render),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
