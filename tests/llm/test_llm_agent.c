/* test_llm_agent.c - llm_agent_turn end to end against the scripted
 * provider server with a fake struct llm_tools: the tool gets the model's
 * arguments, its result goes back to the model, the answer comes out as
 * Markdown and HTML; fallback, parallel calls in order under a cap, the
 * iteration cap, stuck detection, invalid arguments, text-embedded calls,
 * history and !reset, budgets, truncation, the wall-clock limit and no
 * secret in the logs. Label: integration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llm_agent.h"
#include "llm_test_server.h"
#include "mx_log.h"
#include "mx_util.h"

static struct llm_ts ts;
static int run_no;
static char db_path[64];

/* ---- the fake tools ---------------------------------------------------- */

enum mode { M_NORMAL, M_COUNTER, M_BIG, M_SLOW, M_BARRIER };

struct fake {
  enum mode mode;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int ncalls, inflight, max_inflight, barrier_timeouts;
  char names[16][32];
  char args[16][128];
};

static const struct llm_tool_spec fake_specs[] = {
    {"fs.list", "List a directory", "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}"},
    {"sys.uptime", "Uptime of the machine", "{\"type\":\"object\",\"properties\":{}}"},
};

static size_t fake_list(void *ctx, const struct llm_tool_spec **out)
{
  (void)ctx;
  *out = fake_specs;
  return 2;
}

static void wait_barrier(struct fake *f)
{
  /* The first two calls wait for each other: proves they run at once.
   * Bounded: a missing second thread is recorded, not waited for forever. */
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 5;
  while (f->inflight < 2 && f->max_inflight < 2)
    if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) != 0) {
      f->barrier_timeouts++;
      break;
    }
  pthread_cond_broadcast(&f->cv);
}

static mx_err fake_call(void *ctx, const struct llm_tool_call *call, struct llm_tool_result *out)
{
  struct fake *f = ctx;
  pthread_mutex_lock(&f->mu);
  int n = f->ncalls++;
  if (n < 16) {
    snprintf(f->names[n], sizeof(f->names[n]), "%s", call->name);
    snprintf(f->args[n], sizeof(f->args[n]), "%s", call->args_json);
  }
  f->inflight++;
  if (f->inflight > f->max_inflight)
    f->max_inflight = f->inflight;
  pthread_cond_broadcast(&f->cv);
  if (f->mode == M_BARRIER && n < 2)
    wait_barrier(f);
  pthread_mutex_unlock(&f->mu);
  if (f->mode == M_SLOW) {
    struct timespec d = {0, 600 * 1000000L}; /* a slow tool, to pass the turn's time limit */
    nanosleep(&d, NULL);
  }
  struct mx_buf b = MX_BUF_INIT(1 << 20);
  cJSON *a = cJSON_Parse(call->args_json);
  const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(a, "path"));
  mx_err rc;
  if (f->mode == M_COUNTER || f->mode == M_SLOW)
    rc = mx_buf_addf(&b, "result %d", n);
  else if (f->mode == M_BIG)
    rc = mx_buf_addf(&b, "HEAD%0*dTAIL", 50000, 0);
  else if (strcmp(call->name, "fs.list") == 0)
    rc = mx_buf_addf(&b, "listing of %s: a b c", path ? path : "?");
  else
    rc = mx_buf_adds(&b, "up 5 days");
  cJSON_Delete(a);
  assert_int_equal(rc, MX_OK);
  out->text = mx_buf_take(&b);
  out->is_error = 0;
  pthread_mutex_lock(&f->mu);
  f->inflight--;
  pthread_mutex_unlock(&f->mu);
  return MX_OK;
}

static void fake_init(struct fake *f, enum mode m)
{
  memset(f, 0, sizeof(*f));
  f->mode = m;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
}

/* ---- the progress sink --------------------------------------------------- */

struct prog {
  int n;
  char last[256];
};

static void on_progress(void *ctx, const char *text)
{
  struct prog *p = ctx;
  p->n++;
  snprintf(p->last, sizeof(p->last), "%s", text);
}

/* ---- harness -------------------------------------------------------------- */

static int setup(void **state)
{
  (void)state;
  snprintf(db_path, sizeof(db_path), "/tmp/llmagent%d.db", (int)getpid());
  unlink(db_path);
  return llm_ts_start(&ts);
}

static int teardown(void **state)
{
  (void)state;
  llm_ts_stop(&ts);
  char p[96];
  unlink(db_path);
  snprintf(p, sizeof(p), "%s-wal", db_path);
  unlink(p);
  snprintf(p, sizeof(p), "%s-shm", db_path);
  unlink(p);
  return 0;
}

struct run {
  char id[16];
  struct llm_config *cfg;
  struct llm_agent *agent;
  struct fake tools_ctx;
  struct llm_tools tools;
  struct prog prog;
  struct llm_turn_result res;
  char err[MX_ERRBUF_LEN];
};

/* providers: "name:kind:scenario" entries; the run id is appended. */
static void start(struct run *r, const char *const *provs, size_t n, const char *agent_json, const char *budgets,
                  enum mode m)
{
  memset(r, 0, sizeof(*r));
  snprintf(r->id, sizeof(r->id), "a%d", ++run_no);
  char specs[4][128];
  const char *sp[4];
  for (size_t i = 0; i < n; i++) {
    snprintf(specs[i], sizeof(specs[i]), "%s:%s", provs[i], r->id);
    sp[i] = specs[i];
  }
  r->cfg = llm_ts_config(&ts, sp, n, agent_json, budgets);
  assert_int_equal(llm_agent_new(r->cfg, db_path, &r->agent, r->err), MX_OK);
  fake_init(&r->tools_ctx, m);
  r->tools.ctx = &r->tools_ctx;
  r->tools.specs = fake_list;
  r->tools.call = fake_call;
}

static mx_err turn(struct run *r, const char *room, const char *text)
{
  struct llm_turn_req req = {"pc1", "wg", "Debian 12", "read-only tools only", &r->tools, room, "",
                             "@op:example.org", text, NULL, NULL, NULL};
  struct llm_sink sink = {&r->prog, on_progress};
  llm_turn_result_free(&r->res);
  return llm_agent_turn(r->agent, &req, &sink, &r->res, r->err);
}

static void finish_run(struct run *r)
{
  llm_turn_result_free(&r->res);
  llm_agent_free(r->agent);
  llm_config_free(r->cfg);
  pthread_mutex_destroy(&r->tools_ctx.mu);
  pthread_cond_destroy(&r->tools_ctx.cv);
}

static cJSON *req_body(cJSON *reqs, int i)
{
  return cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, i), "body");
}

/* ---- tests ------------------------------------------------------------------ */

static void single_tool_call_round_trip(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:tool_single"};
  start(&r, p, 1, NULL, NULL, M_NORMAL);
  assert_int_equal(turn(&r, "!room1:x", "what is in /var/log?"), MX_OK);
  assert_int_equal(r.tools_ctx.ncalls, 1);
  assert_string_equal(r.tools_ctx.names[0], "fs.list");
  assert_string_equal(r.tools_ctx.args[0], "{\"path\":\"/var/log\"}");
  assert_string_equal(r.res.markdown, "Tool results: listing of /var/log: a b c");
  assert_string_equal(r.res.html, "<p>Tool results: listing of /var/log: a b c</p>");
  assert_int_equal(r.res.failed, 0);
  assert_string_equal(r.res.provider, "main");
  assert_int_equal(r.res.rounds, 2);
  assert_int_equal(r.prog.n, 1);
  assert_string_equal(r.prog.last, "running fs.list /var/log\xE2\x80\xA6");
  /* what the client sent: the system prompt, tools, and the result tied to
   * the call by our own 9-character id */
  cJSON *reqs = llm_ts_requests(&ts, "tool_single", r.id);
  assert_int_equal(cJSON_GetArraySize(reqs), 2);
  cJSON *msgs = cJSON_GetObjectItem(req_body(reqs, 0), "messages");
  const char *sys = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring;
  assert_non_null(strstr(sys, "**pc1** (Debian 12)"));
  assert_non_null(strstr(sys, "- fs.list: List a directory"));
  assert_non_null(strstr(sys, "read-only tools only"));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(req_body(reqs, 0), "tools")), 2);
  msgs = cJSON_GetObjectItem(req_body(reqs, 1), "messages");
  assert_int_equal(cJSON_GetArraySize(msgs), 4);
  cJSON *asst = cJSON_GetArrayItem(msgs, 2);
  const char *id = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(asst, "tool_calls"), 0), "id")->valuestring;
  assert_int_equal(strlen(id), 9);
  cJSON *tool = cJSON_GetArrayItem(msgs, 3);
  assert_string_equal(cJSON_GetObjectItem(tool, "tool_call_id")->valuestring, id);
  assert_string_equal(cJSON_GetObjectItem(tool, "content")->valuestring, "listing of /var/log: a b c");
  cJSON_Delete(reqs);
  finish_run(&r);
}

/* devices[].prompt (what onboarding writes) is the system prompt of that
 * device's turns, not llm.agent.prompt_file. */
static void device_prompt_file_is_the_system_prompt(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:text_only"};
  char path[] = "/tmp/mxfleet-prompt-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  static const char tmpl[] = "Per-device prompt for {{device}} on {{os}}.\n";
  assert_int_equal(write(fd, tmpl, sizeof(tmpl) - 1), (ssize_t)(sizeof(tmpl) - 1));
  close(fd);
  start(&r, p, 1, NULL, NULL, M_NORMAL);
  struct llm_turn_req req = {"pc1", "wg", "Debian 12", "read-only tools only", &r.tools, "!room9:x", "",
                             "@op:example.org", "hello", path, NULL, NULL};
  struct llm_sink sink = {&r.prog, on_progress};
  assert_int_equal(llm_agent_turn(r.agent, &req, &sink, &r.res, r.err), MX_OK);
  cJSON *reqs = llm_ts_requests(&ts, "text_only", r.id);
  assert_true(cJSON_GetArraySize(reqs) >= 1);
  cJSON *msgs = cJSON_GetObjectItem(req_body(reqs, 0), "messages");
  const char *sys = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring;
  assert_string_equal(sys, "Per-device prompt for pc1 on Debian 12.\n");
  cJSON_Delete(reqs);
  unlink(path);
  finish_run(&r);
}

static void parallel_calls_run_together_results_in_order(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:anthropic:tool_parallel"};
  start(&r, p, 1, "{\"prompts_dir\":\"" MXFLEET_PROMPTS_DIR "\",\"parallel_tools\":2}", NULL, M_BARRIER);
  assert_int_equal(turn(&r, "!room2:x", "check a, b and uptime"), MX_OK);
  assert_int_equal(r.tools_ctx.ncalls, 3);
  assert_int_equal(r.tools_ctx.barrier_timeouts, 0); /* two ran at the same time */
  assert_int_equal(r.tools_ctx.max_inflight, 2);     /* and never more than the cap */
  assert_string_equal(r.res.markdown, "Tool results: listing of /a: a b c | listing of /b: a b c | up 5 days");
  assert_string_equal(r.prog.last, "running fs.list /a, fs.list /b, sys.uptime\xE2\x80\xA6");
  finish_run(&r);
}

static void split_interleaved_fragments_are_assembled(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:tool_split"};
  start(&r, p, 1, NULL, NULL, M_NORMAL);
  assert_int_equal(turn(&r, "!room3:x", "go"), MX_OK);
  assert_int_equal(r.tools_ctx.ncalls, 2);
  int a = strcmp(r.tools_ctx.names[0], "fs.list") == 0 ? 0 : 1;
  assert_string_equal(r.tools_ctx.args[a], "{\"path\":\"/var/log/very/long/path\",\"depth\":2}");
  assert_string_equal(r.tools_ctx.args[1 - a], "{\"verbose\":true}");
  finish_run(&r);
}

static void primary_failing_makes_the_fallback_answer(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"primary:openai:always500", "backup:anthropic:tool_single"};
  start(&r, p, 2, NULL, NULL, M_NORMAL);
  assert_int_equal(turn(&r, "!room4:x", "list logs"), MX_OK);
  assert_string_equal(r.res.provider, "backup");
  assert_string_equal(r.res.markdown, "Tool results: listing of /var/log: a b c");
  /* the anthropic request carried the tool result in a tool_result block */
  cJSON *reqs = llm_ts_requests(&ts, "tool_single", r.id);
  cJSON *msgs = cJSON_GetObjectItem(req_body(reqs, 1), "messages");
  cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
  cJSON *blk = cJSON_GetArrayItem(cJSON_GetObjectItem(last, "content"), 0);
  assert_string_equal(cJSON_GetObjectItem(blk, "type")->valuestring, "tool_result");
  assert_string_equal(cJSON_GetObjectItem(blk, "content")->valuestring, "listing of /var/log: a b c");
  cJSON_Delete(reqs);
  finish_run(&r);
}

static void iteration_cap_stops_the_loop(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:endless_loop"};
  start(&r, p, 1, "{\"prompts_dir\":\"" MXFLEET_PROMPTS_DIR "\",\"max_tool_iterations\":3}", NULL, M_COUNTER);
  assert_int_equal(turn(&r, "!room5:x", "loop"), MX_ERR_CONFLICT);
  assert_int_equal(r.res.failed, 1);
  assert_non_null(strstr(r.res.markdown, "I stopped after 3 rounds of tool calls"));
  assert_non_null(strstr(r.res.html, "<p>I stopped after 3 rounds"));
  assert_int_equal(r.tools_ctx.ncalls, 3);
  assert_int_equal(r.res.rounds, 4);
  finish_run(&r);
}

/* !stop (issue 13.5): once the operator stops the turn, no further model or
 * tool call is made; the turn ends with a clear message. Here the stop comes
 * while the first tool runs, as it does from a phone mid-turn. */
static int stop_after_first_tool(void *ctx)
{
  struct fake *f = ctx;
  pthread_mutex_lock(&f->mu);
  int n = f->ncalls;
  pthread_mutex_unlock(&f->mu);
  return n >= 1;
}

static void stop_ends_the_turn(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:endless_loop"};
  start(&r, p, 1, NULL, NULL, M_COUNTER);
  struct llm_turn_req req = {"pc1", "wg", "Debian 12", "", &r.tools, "!stop1:x", "", "@op:example.org", "loop",
                             NULL, stop_after_first_tool, &r.tools_ctx};
  assert_int_equal(llm_agent_turn(r.agent, &req, NULL, &r.res, r.err), MX_ERR_CANCELLED);
  assert_int_equal(r.res.failed, 1);
  assert_non_null(strstr(r.res.markdown, "Stopped by !stop"));
  assert_int_equal(r.tools_ctx.ncalls, 1);
  assert_int_equal(r.res.rounds, 1); /* no model call after the stop */
  finish_run(&r);
}

static void default_iteration_cap_is_8(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:ollama:endless_loop"};
  start(&r, p, 1, NULL, NULL, M_COUNTER);
  assert_int_equal(turn(&r, "!room5b:x", "loop"), MX_ERR_CONFLICT);
  assert_int_equal(r.tools_ctx.ncalls, 8);
  finish_run(&r);
}

static void stuck_loop_is_detected(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:anthropic:endless_loop"};
  start(&r, p, 1, NULL, NULL, M_NORMAL); /* same call, same result */
  assert_int_equal(turn(&r, "!room6:x", "loop"), MX_ERR_CONFLICT);
  assert_non_null(strstr(r.res.markdown, "kept repeating the same tool calls (fs.list)"));
  assert_int_equal(r.tools_ctx.ncalls, 3);
  finish_run(&r);
}

static void invalid_arguments_are_explained_once(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:malformed_args"};
  start(&r, p, 1, NULL, NULL, M_NORMAL);
  assert_int_equal(turn(&r, "!room7:x", "list"), MX_OK);
  assert_int_equal(r.tools_ctx.ncalls, 1); /* the bad call never ran */
  assert_string_equal(r.res.markdown, "Tool results: listing of /var/log: a b c");
  cJSON *reqs = llm_ts_requests(&ts, "malformed_args", r.id);
  assert_int_equal(cJSON_GetArraySize(reqs), 3);
  cJSON *msgs = cJSON_GetObjectItem(req_body(reqs, 1), "messages");
  const char *told = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 3), "content")->valuestring;
  assert_non_null(strstr(told, "invalid arguments for fs.list: arguments are not valid JSON"));
  assert_non_null(strstr(told, "'{\"path\": /var/log'"));
  cJSON_Delete(reqs);
  finish_run(&r);
}

static void invalid_arguments_twice_fail_cleanly(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:ollama:malformed_twice"};
  start(&r, p, 1, NULL, NULL, M_NORMAL);
  assert_int_equal(turn(&r, "!room8:x", "list"), MX_ERR_INVALID);
  assert_int_equal(r.res.failed, 1);
  assert_non_null(strstr(r.res.markdown, "The model sent invalid tool arguments again"));
  assert_int_equal(r.tools_ctx.ncalls, 0);
  finish_run(&r);
}

static void calls_written_as_text_are_extracted(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:ollama:text_tool_call"};
  start(&r, p, 1, NULL, NULL, M_NORMAL);
  assert_int_equal(turn(&r, "!room9:x", "tmp?"), MX_OK);
  assert_int_equal(r.tools_ctx.ncalls, 1);
  assert_string_equal(r.tools_ctx.args[0], "{\"path\":\"/tmp\"}");
  assert_string_equal(r.res.markdown, "Tool results: listing of /tmp: a b c");
  /* ollama result messages carry tool_name */
  cJSON *reqs = llm_ts_requests(&ts, "text_tool_call", r.id);
  cJSON *msgs = cJSON_GetObjectItem(req_body(reqs, 1), "messages");
  cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
  assert_string_equal(cJSON_GetObjectItem(last, "tool_name")->valuestring, "fs.list");
  cJSON_Delete(reqs);
  finish_run(&r);
}

static void history_is_kept_per_room_and_reset(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:text_only"};
  start(&r, p, 1, NULL, NULL, M_NORMAL);
  assert_int_equal(turn(&r, "!hist:x", "first question"), MX_OK);
  assert_int_equal(turn(&r, "!hist:x", "second question"), MX_OK);
  assert_int_equal(turn(&r, "!other:x", "other room"), MX_OK);
  assert_int_equal(llm_history_reset(r.agent, "pc1", "!hist:x", "", r.err), MX_OK);
  assert_int_equal(turn(&r, "!hist:x", "after reset"), MX_OK);
  cJSON *reqs = llm_ts_requests(&ts, "text_only", r.id);
  assert_int_equal(cJSON_GetArraySize(reqs), 4);
  cJSON *m2 = cJSON_GetObjectItem(req_body(reqs, 1), "messages");
  assert_int_equal(cJSON_GetArraySize(m2), 4); /* system, q1, a1, q2 */
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m2, 1), "content")->valuestring, "first question");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m2, 2), "content")->valuestring,
                      "Hello from the **scripted** model.");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(req_body(reqs, 2), "messages")), 2);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(req_body(reqs, 3), "messages")), 2);
  assert_string_equal(r.res.html, "<p>Hello from the <strong>scripted</strong> model.</p>");
  cJSON_Delete(reqs);
  finish_run(&r);
}

static void spent_budget_is_a_clear_message(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:text_only"};
  start(&r, p, 1, NULL, "{\"operator_tokens_per_day\":10}", M_NORMAL);
  /* a fresh operator id per run keeps other tests' usage out */
  struct llm_turn_req req = {"pcB", "ssh", "Alpine", "", &r.tools, "!budget:x", NULL, "@budget:example.org", "hi", NULL, NULL, NULL};
  assert_int_equal(llm_agent_turn(r.agent, &req, NULL, &r.res, r.err), MX_OK);
  llm_turn_result_free(&r.res);
  assert_int_equal(llm_agent_turn(r.agent, &req, NULL, &r.res, r.err), MX_ERR_UNAVAILABLE);
  assert_int_equal(r.res.failed, 1);
  assert_non_null(strstr(r.res.markdown, "daily token budget of operator @budget:example.org is spent"));
  cJSON *reqs = llm_ts_requests(&ts, "text_only", r.id);
  assert_int_equal(cJSON_GetArraySize(reqs), 1);
  cJSON_Delete(reqs);
  finish_run(&r);
}

static void big_results_are_truncated_head_and_tail(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:tool_single"};
  start(&r, p, 1, "{\"prompts_dir\":\"" MXFLEET_PROMPTS_DIR "\",\"tool_result_max_chars\":1000}", NULL, M_BIG);
  assert_int_equal(turn(&r, "!big:x", "big"), MX_OK);
  cJSON *reqs = llm_ts_requests(&ts, "tool_single", r.id);
  cJSON *msgs = cJSON_GetObjectItem(req_body(reqs, 1), "messages");
  const char *c = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 3), "content")->valuestring;
  assert_true(strlen(c) < 1100);
  assert_int_equal(strncmp(c, "HEAD", 4), 0);
  assert_string_equal(c + strlen(c) - 4, "TAIL");
  assert_non_null(strstr(c, "characters omitted"));
  cJSON_Delete(reqs);
  finish_run(&r);
}

static void wall_clock_limit(void **state)
{
  (void)state;
  struct run r;
  const char *p[] = {"main:openai:endless_loop"};
  start(&r, p, 1, "{\"prompts_dir\":\"" MXFLEET_PROMPTS_DIR "\",\"turn_timeout_ms\":1000}", NULL, M_SLOW);
  int64_t t0 = mx_mono_ms();
  assert_int_equal(turn(&r, "!slow:x", "slow"), MX_ERR_TIMEOUT);
  assert_true(mx_mono_ms() - t0 < 5000);
  assert_non_null(strstr(r.res.markdown, "longer than its 1 s limit"));
  assert_int_equal(r.tools_ctx.ncalls, 2);
  finish_run(&r);
}

static void truncated_answer_says_so(void **state)
{
  (void)state;
  const char *kinds[] = {"main:openai:truncated", "main:anthropic:truncated", "main:ollama:truncated"};
  for (int k = 0; k < 3; k++) {
    struct run r;
    start(&r, &kinds[k], 1, NULL, NULL, M_NORMAL);
    assert_int_equal(turn(&r, "!trunc:x", "tell me everything"), MX_OK);
    assert_string_equal(r.res.markdown,
                        "The first part of a long\n\n_(the answer was cut at the model's output limit)_");
    assert_non_null(strstr(r.res.html, "<em>(the answer was cut at the model&#39;s output limit)</em>"));
    finish_run(&r);
  }
}

/* The bot runs turns on several worker threads at once: one shared agent
 * (router, breakers), a SQLite connection per turn, curl handles per call. */
struct worker {
  struct run *r;
  int idx;
  int ok;
};

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  for (int k = 0; k < 3; k++) {
    char room[32];
    snprintf(room, sizeof(room), "!par%d:x", w->idx);
    struct llm_turn_req req = {"pc1", "wg", "Debian 12", "", &w->r->tools, room, "", "@op:example.org", "list", NULL, NULL, NULL};
    struct llm_turn_result res;
    char err[MX_ERRBUF_LEN];
    mx_err rc = llm_agent_turn(w->r->agent, &req, NULL, &res, err);
    w->ok += rc == MX_OK && res.markdown && strcmp(res.markdown, "Tool results: listing of /var/log: a b c") == 0;
    llm_turn_result_free(&res);
  }
  return NULL;
}

static void concurrent_turns_share_one_agent(void **state)
{
  (void)state;
  struct run r;
  /* All workers share one scripted run: its first request gets the tool
   * call, every later one the echo of the tool results it carries. */
  const char *p[] = {"main:anthropic:tool_single"};
  start(&r, p, 1, NULL, NULL, M_NORMAL);
  pthread_t th[4];
  struct worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i].r = &r;
    w[i].idx = i;
    w[i].ok = 0;
  }
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  int ok = 0;
  for (int i = 0; i < 4; i++)
    ok += w[i].ok;
  /* exactly one turn ran the tool and got its own result echoed back */
  assert_int_equal(r.tools_ctx.ncalls, 1);
  assert_int_equal(ok, 1);
  cJSON *reqs = llm_ts_requests(&ts, "tool_single", r.id);
  assert_int_equal(cJSON_GetArraySize(reqs), 13); /* 12 turns + 1 tool round */
  cJSON_Delete(reqs);
  struct mx_buf b = MX_BUF_INIT(1 << 16);
  assert_int_equal(llm_router_metrics(llm_agent_router(r.agent), &b), MX_OK);
  assert_non_null(strstr(mx_buf_cstr(&b), "mxfleet_llm_requests_total{provider=\"main\",result=\"ok\"} 13\n"));
  mx_buf_release(&b);
  finish_run(&r);
}

static void no_secret_in_logs(void **state)
{
  (void)state;
  char path[64];
  snprintf(path, sizeof(path), "/tmp/llmagentlog%d", (int)getpid());
  int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
  assert_true(fd >= 0);
  mx_log_set_fd(fd);
  mx_log_set_level(MX_LOG_DEBUG);
  struct run r;
  const char *p[] = {"a:openai:always500", "b:anthropic:tool_single"};
  start(&r, p, 2, NULL, NULL, M_NORMAL);
  assert_int_equal(turn(&r, "!log:x", "go"), MX_OK);
  finish_run(&r);
  mx_log_set_fd(-1);
  mx_log_set_level(MX_LOG_INFO);
  struct mx_buf b = MX_BUF_INIT(1 << 20);
  char err[MX_ERRBUF_LEN];
  assert_int_equal(mx_file_read(path, 1 << 20, &b, err), MX_OK);
  assert_non_null(strstr(mx_buf_cstr(&b), "llm request provider=a"));
  assert_non_null(strstr(mx_buf_cstr(&b), "llm provider=a attempt=1 request-id=req_"));
  assert_non_null(strstr(mx_buf_cstr(&b), "llm http > Authorization: [redacted]"));
  assert_non_null(strstr(mx_buf_cstr(&b), "llm http > x-api-key: [redacted]"));
  assert_null(strstr(mx_buf_cstr(&b), "sk-test-secret"));
  mx_buf_release(&b);
  close(fd);
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(single_tool_call_round_trip),
      cmocka_unit_test(device_prompt_file_is_the_system_prompt),
      cmocka_unit_test(parallel_calls_run_together_results_in_order),
      cmocka_unit_test(split_interleaved_fragments_are_assembled),
      cmocka_unit_test(primary_failing_makes_the_fallback_answer),
      cmocka_unit_test(iteration_cap_stops_the_loop),
      cmocka_unit_test(stop_ends_the_turn),
      cmocka_unit_test(default_iteration_cap_is_8),
      cmocka_unit_test(stuck_loop_is_detected),
      cmocka_unit_test(invalid_arguments_are_explained_once),
      cmocka_unit_test(invalid_arguments_twice_fail_cleanly),
      cmocka_unit_test(calls_written_as_text_are_extracted),
      cmocka_unit_test(history_is_kept_per_room_and_reset),
      cmocka_unit_test(spent_budget_is_a_clear_message),
      cmocka_unit_test(big_results_are_truncated_head_and_tail),
      cmocka_unit_test(wall_clock_limit),
      cmocka_unit_test(truncated_answer_says_so),
      cmocka_unit_test(concurrent_turns_share_one_agent),
      cmocka_unit_test(no_secret_in_logs),
  };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  curl_global_cleanup();
  return rc;
}
