/*
 * llm_cli.c - live provider check; see llm_cli.h. One request per provider
 * offering a single `echo` tool and asking the model to call it; no history,
 * no budgets (a test must work when a budget is spent).
 * Layer: llm.
 */
#include "llm_cli.h"

#include <string.h>

#include "llm_router.h"
#include "mx_util.h"

static const struct llm_tool_spec echo_tool = {
    "echo", "Echoes the given text back. Use it when asked to.",
    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}"};

/* need_tools: the echo call must come back (llm test); else any answer will
 * do (config check --online: reachable, key accepted, model known). */
static int test_one(struct llm_router *r, const struct llm_config *cfg, size_t i, int need_tools, FILE *out)
{
  struct llm_conv conv;
  llm_conv_init(&conv);
  if (llm_conv_add_user(&conv, "Call the echo tool with text \"ping\". Do not answer in prose.")) {
    fprintf(out, "%s: out of memory\n", cfg->providers[i].name);
    return 1;
  }
  struct llm_chat_req req = {"You are a connectivity test. Use the tools you are given.", &conv, &echo_tool, 1};
  struct llm_call_ctx cx = {NULL, "llm-test", NULL, 0};
  struct llm_reply rep;
  char err[MX_ERRBUF_LEN];
  int64_t t0 = mx_mono_ms();
  mx_err rc = llm_router_chat_one(r, &cx, i, &req, &rep, err);
  int64_t ms = mx_mono_ms() - t0;
  int bad = 1;
  if (rc) {
    fprintf(out, "%s (%s, %s): FAILED after %lld ms: %s\n", cfg->providers[i].name,
            llm_kind_name(cfg->providers[i].kind), cfg->providers[i].model, (long long)ms, err);
  } else {
    const char *names[] = {"echo"};
    if (!rep.ncalls)
      llm_extract_text_calls(&rep, names, 1);
    int tools_ok = rep.ncalls > 0 && strcmp(rep.calls[0].name, "echo") == 0 && !rep.call_errors;
    const char *tools = !need_tools ? "answered" : tools_ok ? "tool calling works"
                                                 : "tool calling DOES NOT WORK (no echo call came back)";
    fprintf(out, "%s (%s, %s): ok in %lld ms, %s, %lld+%lld tokens\n", cfg->providers[i].name,
            llm_kind_name(cfg->providers[i].kind), cfg->providers[i].model, (long long)ms, tools,
            (long long)rep.in_tokens, (long long)rep.out_tokens);
    bad = need_tools && !tools_ok;
    llm_reply_free(&rep);
  }
  llm_conv_free(&conv);
  return bad;
}

static int test_all(const struct llm_config *cfg, const char *provider_or_null, int need_tools, FILE *out)
{
  struct llm_router *r = NULL;
  char err[MX_ERRBUF_LEN];
  if (provider_or_null && !llm_config_provider(cfg, provider_or_null)) {
    fprintf(out, "llm test: --provider: expected one of the configured providers, got '%s'\n", provider_or_null);
    return 2;
  }
  if (llm_router_new(cfg, &r, err)) {
    fprintf(out, "llm test: %s\n", err);
    return 1;
  }
  int failed = 0;
  for (size_t i = 0; i < cfg->nproviders; i++)
    if (!provider_or_null || strcmp(cfg->providers[i].name, provider_or_null) == 0)
      failed |= test_one(r, cfg, i, need_tools, out);
  llm_router_free(r);
  return failed ? 1 : 0;
}

int llm_cli_test(const struct llm_config *cfg, const char *provider_or_null, FILE *out)
{
  return test_all(cfg, provider_or_null, 1, out);
}

int llm_cli_ping(const struct llm_config *cfg, FILE *out)
{
  return test_all(cfg, NULL, 0, out);
}
