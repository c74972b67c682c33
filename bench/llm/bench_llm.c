/*
 * bench/llm/bench_llm.c - llm/ overheads, so the model stays the only slow
 * part of a turn: OpenAI SSE stream normalisation (MB/s of stream text),
 * Markdown -> HTML (MB/s), history trimming of a long conversation (ms), and
 * full agent turns with one tool round against the scripted provider
 * (turns/s, i.e. our own per-turn cost plus loopback HTTP).
 * Usage: bench_llm [turns (default 50)]. Prints figures; not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "llm_agent.h"
#include "llm_history.h"
#include "llm_markdown.h"
#include "llm_provider.h"
#include "llm_test_server.h"
#include "mx_log.h"
#include "mx_util.h"

static void bench_stream(void)
{
  const char *chunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                      "{\"arguments\":\"aaaaaaaaaaaaaaaa\"}}]}}]}";
  int n = 100000;
  size_t bytes = 0;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_OPENAI);
  const char *first = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\","
                      "\"function\":{\"name\":\"x\",\"arguments\":\"{\\\"k\\\":\\\"\"}}]}}]}";
  llm_acc_line(&a, first, strlen(first));
  llm_acc_line(&a, "", 0);
  int64_t t0 = mx_mono_ms();
  for (int i = 0; i < n; i++) {
    llm_acc_line(&a, chunk, strlen(chunk));
    llm_acc_line(&a, "", 0);
    bytes += strlen(chunk) + 2;
  }
  const char *last = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                     "{\"arguments\":\"\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}";
  llm_acc_line(&a, last, strlen(last));
  llm_acc_line(&a, "", 0);
  llm_acc_line(&a, "data: [DONE]", 12);
  llm_acc_line(&a, "", 0);
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  mx_err rc = llm_acc_finish(&a, 1, &r, err);
  int64_t ms = mx_mono_ms() - t0;
  printf("stream normalise: %d chunks, %.1f MB in %lld ms = %.1f MB/s (rc=%d, args %zu bytes)\n", n,
         (double)bytes / 1e6, (long long)ms, ms ? (double)bytes / 1e3 / (double)ms : 0.0, rc,
         rc ? 0 : strlen(r.calls[0].args_json));
  if (!rc)
    llm_reply_free(&r);
  llm_acc_release(&a);
}

static void bench_markdown(void)
{
  struct mx_buf md = MX_BUF_INIT(64 << 20), html = MX_BUF_INIT(256 << 20);
  for (int i = 0; i < 20000; i++)
    if (mx_buf_addf(&md, "## Disk %d\n- **/dev/sda%d** is `92%%` full, see [docs](https://example.org/%d)\n"
                         "```\ndf -h <x> & y\n```\n\n",
                    i, i, i))
      return;
  int64_t t0 = mx_mono_ms();
  mx_err rc = llm_markdown_to_html(mx_buf_cstr(&md), &html);
  int64_t ms = mx_mono_ms() - t0;
  printf("markdown: %.1f MB -> %.1f MB HTML in %lld ms = %.1f MB/s (rc=%d)\n", (double)md.len / 1e6,
         (double)html.len / 1e6, (long long)ms, ms ? (double)md.len / 1e3 / (double)ms : 0.0, rc);
  mx_buf_release(&md);
  mx_buf_release(&html);
}

static void bench_trim(void)
{
  struct llm_conv c;
  llm_conv_init(&c);
  char big[2001];
  memset(big, 'x', 2000);
  big[2000] = '\0';
  for (int i = 0; i < 2000; i++) {
    struct llm_tool_call call = {"AAAAAAAAA", "fs.read", "{}"};
    if (llm_conv_add_user(&c, "question") || llm_conv_add_assistant(&c, NULL, &call, 1) ||
        llm_conv_add_tool(&c, "AAAAAAAAA", "fs.read", big, 0))
      return;
  }
  size_t keep = c.n;
  int64_t t0 = mx_mono_ms();
  int64_t after = llm_history_trim(&c, 24000, &keep);
  printf("history trim: 6000 messages -> %zu (%lld tokens) in %lld ms\n", c.n, (long long)after,
         (long long)(mx_mono_ms() - t0));
  llm_conv_free(&c);
}

static size_t one_spec(void *ctx, const struct llm_tool_spec **out)
{
  static const struct llm_tool_spec s = {"fs.list", "List", "{\"type\":\"object\"}"};
  (void)ctx;
  *out = &s;
  return 1;
}

static mx_err one_call(void *ctx, const struct llm_tool_call *call, struct llm_tool_result *out)
{
  (void)ctx;
  (void)call;
  out->text = mx_strdup("a b c");
  return out->text ? MX_OK : MX_ERR_NOMEM;
}

static void bench_turns(int turns)
{
  struct llm_ts ts;
  if (llm_ts_start(&ts)) {
    printf("turns: cannot start the scripted provider\n");
    return;
  }
  const char *sp[] = {"p:openai:tool_single:bench"};
  struct llm_config *cfg = llm_ts_config(&ts, sp, 1, NULL, NULL);
  char db[64], err[MX_ERRBUF_LEN];
  snprintf(db, sizeof(db), "/tmp/benchllm%d.db", (int)getpid());
  struct llm_agent *agent = NULL;
  struct llm_tools tools = {NULL, one_spec, one_call};
  mx_log_set_level(MX_LOG_WARN);
  if (llm_agent_new(cfg, db, &agent, err) == MX_OK) {
    int ok = 0;
    int64_t t0 = mx_mono_ms();
    for (int i = 0; i < turns; i++) {
      char room[32];
      snprintf(room, sizeof(room), "!r%d:x", i); /* a fresh history per turn */
      struct llm_turn_req req = {"pc1", "wg", "Linux", "", &tools, room, "", "@op:x", "list", NULL, NULL, NULL};
      struct llm_turn_result res;
      ok += llm_agent_turn(agent, &req, NULL, &res, err) == MX_OK;
      llm_turn_result_free(&res);
    }
    int64_t ms = mx_mono_ms() - t0;
    printf("agent turns (2 model calls + 1 tool each, loopback): %d/%d ok in %lld ms = %.1f turns/s\n", ok, turns,
           (long long)ms, ms ? turns * 1000.0 / (double)ms : 0.0);
    llm_agent_free(agent);
  }
  llm_config_free(cfg);
  llm_ts_stop(&ts);
  char p[96];
  unlink(db);
  snprintf(p, sizeof(p), "%s-wal", db);
  unlink(p);
  snprintf(p, sizeof(p), "%s-shm", db);
  unlink(p);
}

int main(int argc, char **argv)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  bench_stream();
  bench_markdown();
  bench_trim();
  bench_turns(argc > 1 ? atoi(argv[1]) : 50);
  curl_global_cleanup();
  return 0;
}
