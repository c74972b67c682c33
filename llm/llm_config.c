/*
 * llm_config.c - parsing and validation of the `llm` config block; see
 * llm_config.h and docs/llm.md (one section per key).
 * Layer: llm; calls only common/ and cJSON. The input cJSON is borrowed and
 * never kept: every value is copied.
 */
#include "llm_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_cfgutil.h"
#include "mx_util.h"

/* Allowed keys per object; llm_config_each_key() lists them for docs/llm.md. */
static const char *const k_llm[] = {"providers", "routes", "budgets", "agent", NULL};
static const char *const k_provider[] = {"name", "kind", "base_url", "model", "api_key_file", "api_key_env",
                                         "connect_timeout_ms", "timeout_ms", "idle_timeout_ms", "max_tokens", "stream",
                                         "price_input_per_1k", "price_output_per_1k", "retry", "breaker", NULL};
static const char *const k_retry[] = {"max_attempts", "initial_backoff_ms", "max_backoff_ms", "max_retry_after_ms",
                                      NULL};
static const char *const k_breaker[] = {"failure_threshold", "cooldown_ms", NULL};
static const char *const k_budgets[] = {"device_tokens_per_day", "device_cost_per_day", "operator_tokens_per_day",
                                        "operator_cost_per_day", NULL};
static const char *const k_agent[] = {"max_tool_iterations", "turn_timeout_ms", "parallel_tools",
                                      "tool_result_max_chars", "history_max_tokens", "prompts_dir", "prompt_file",
                                      NULL};

static mx_err parse_retry(const cJSON *p, const struct llm_cfg_loc *pl, struct llm_retry_cfg *r, char *err)
{
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(p, "retry");
  if (!o)
    return MX_OK;
  struct llm_cfg_loc l;
  llm_cfg_sub(&l, pl, ".%s", "retry", -1);
  mx_err rc = llm_cfg_keys(o, &l, k_retry, err);
  if (!rc)
    rc = llm_cfg_int_i(o, &l, "max_attempts", 1, 10, &r->max_attempts, err);
  if (!rc)
    rc = llm_cfg_int(o, &l, "initial_backoff_ms", 0, 600000, &r->initial_backoff_ms, err);
  if (!rc)
    rc = llm_cfg_int(o, &l, "max_backoff_ms", 0, 600000, &r->max_backoff_ms, err);
  if (!rc)
    rc = llm_cfg_int(o, &l, "max_retry_after_ms", 0, 3600000, &r->max_retry_after_ms, err);
  return rc;
}

static mx_err parse_breaker(const cJSON *p, const struct llm_cfg_loc *pl, struct llm_breaker_cfg *b, char *err)
{
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(p, "breaker");
  if (!o)
    return MX_OK;
  struct llm_cfg_loc l;
  llm_cfg_sub(&l, pl, ".%s", "breaker", -1);
  mx_err rc = llm_cfg_keys(o, &l, k_breaker, err);
  if (!rc)
    rc = llm_cfg_int_i(o, &l, "failure_threshold", 1, 1000, &b->failure_threshold, err);
  if (!rc)
    rc = llm_cfg_int(o, &l, "cooldown_ms", 0, 86400000, &b->cooldown_ms, err);
  return rc;
}

static mx_err parse_kind(const cJSON *p, const struct llm_cfg_loc *l, enum llm_kind *out, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "kind");
  if (!v)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.kind: required key is missing", l->file, l->path);
  const char *s = cJSON_GetStringValue(v);
  for (int k = LLM_KIND_OPENAI; k <= LLM_KIND_OLLAMA; k++) {
    if (s && strcmp(s, llm_kind_name((enum llm_kind)k)) == 0) {
      *out = (enum llm_kind)k;
      return MX_OK;
    }
  }
  char *txt = s ? NULL : cJSON_PrintUnformatted(v);
  mx_err rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.kind: expected one of openai, anthropic, ollama, got '%s'",
                      l->file, l->path, s ? s : (txt ? txt : "?"));
  cJSON_free(txt);
  return rc;
}

/* Providers of kind openai and anthropic need a key; ollama does not. */
static mx_err load_key(const cJSON *p, const struct llm_cfg_loc *l, struct llm_provider_cfg *pc, char *err)
{
  mx_err rc = llm_cfg_secret(p, l, &pc->api_key, err);
  if (!rc && !pc->api_key && pc->kind != LLM_KIND_OLLAMA)
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected api_key_file or api_key_env for kind '%s'", l->file, l->path,
                 llm_kind_name(pc->kind));
  return rc;
}

static void provider_defaults(struct llm_provider_cfg *pc)
{
  pc->connect_timeout_ms = 10000;
  pc->timeout_ms = 120000;
  pc->idle_timeout_ms = -1; /* kind-dependent default, set after parsing */
  pc->max_tokens = 4096;
  pc->stream = 1;
  pc->retry.max_attempts = 3;
  pc->retry.initial_backoff_ms = 500;
  pc->retry.max_backoff_ms = 8000;
  pc->retry.max_retry_after_ms = 60000;
  pc->breaker.failure_threshold = 5;
  pc->breaker.cooldown_ms = 30000;
}

static mx_err parse_provider(const cJSON *p, const struct llm_cfg_loc *l, struct llm_provider_cfg *pc, char *err)
{
  provider_defaults(pc);
  mx_err rc = llm_cfg_keys(p, l, k_provider, err);
  if (!rc)
    rc = llm_cfg_str(p, l, "name", 1, &pc->name, err);
  if (!rc)
    rc = parse_kind(p, l, &pc->kind, err);
  if (!rc)
    rc = llm_cfg_str(p, l, "base_url", 1, &pc->base_url, err);
  if (!rc && strncmp(pc->base_url, "http://", 7) != 0 && strncmp(pc->base_url, "https://", 8) != 0)
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.base_url: expected an http:// or https:// URL, got '%s'", l->file,
                 l->path, pc->base_url);
  if (!rc)
    rc = llm_cfg_str(p, l, "model", 1, &pc->model, err);
  if (!rc)
    rc = llm_cfg_int(p, l, "connect_timeout_ms", 100, 600000, &pc->connect_timeout_ms, err);
  if (!rc)
    rc = llm_cfg_int(p, l, "timeout_ms", 100, 3600000, &pc->timeout_ms, err);
  if (!rc)
    rc = llm_cfg_int(p, l, "idle_timeout_ms", 100, 3600000, &pc->idle_timeout_ms, err);
  /* A hosted API sends its first bytes within seconds (and Anthropic pings
   * while it thinks); a local model may load and read a long prompt for
   * minutes before its first token. */
  if (!rc && pc->idle_timeout_ms < 0)
    pc->idle_timeout_ms = pc->kind == LLM_KIND_OLLAMA ? 300000 : 60000;
  if (!rc)
    rc = llm_cfg_int(p, l, "max_tokens", 1, 1000000, &pc->max_tokens, err);
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "stream");
  if (!rc && st && !cJSON_IsBool(st))
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.stream: expected true or false", l->file, l->path);
  if (!rc && st)
    pc->stream = cJSON_IsTrue(st);
  if (!rc)
    rc = llm_cfg_num(p, l, "price_input_per_1k", &pc->price_in_per_1k, err);
  if (!rc)
    rc = llm_cfg_num(p, l, "price_output_per_1k", &pc->price_out_per_1k, err);
  if (!rc)
    rc = parse_retry(p, l, &pc->retry, err);
  if (!rc)
    rc = parse_breaker(p, l, &pc->breaker, err);
  if (!rc)
    rc = load_key(p, l, pc, err);
  return rc;
}

static mx_err parse_providers(const cJSON *blk, const struct llm_cfg_loc *root, struct llm_config *cfg, char *err)
{
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(blk, "providers");
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.providers: expected a non-empty array", root->file, root->path);
  size_t n = (size_t)cJSON_GetArraySize(arr);
  cfg->providers = calloc(n, sizeof(*cfg->providers));
  if (!cfg->providers)
    return MX_ERR_NOMEM;
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    struct llm_cfg_loc l;
    struct llm_cfg_loc pl = *root;
    llm_cfg_path(&pl, "%s.providers", root->path);
    llm_cfg_sub(&l, &pl, NULL, NULL, (long)cfg->nproviders);
    struct llm_provider_cfg *pc = &cfg->providers[cfg->nproviders++];
    mx_err rc = parse_provider(it, &l, pc, err);
    if (rc)
      return rc;
    for (size_t i = 0; i + 1 < cfg->nproviders; i++)
      if (strcmp(cfg->providers[i].name, pc->name) == 0)
        return mx_fail(MX_ERR_CONFIG, err, "%s: %s.name: duplicate provider name '%s'", l.file, l.path, pc->name);
  }
  return MX_OK;
}

static mx_err parse_chain(const cJSON *arr, const struct llm_cfg_loc *l, struct llm_config *cfg, struct llm_route *r, char *err)
{
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected a non-empty array of provider names", l->file, l->path);
  r->chain = calloc((size_t)cJSON_GetArraySize(arr), sizeof(size_t));
  if (!r->chain)
    return MX_ERR_NOMEM;
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    const char *name = cJSON_GetStringValue(it);
    const struct llm_provider_cfg *p = name ? llm_config_provider(cfg, name) : NULL;
    if (!p)
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s[%zu]: expected the name of a provider, got '%s'", l->file, l->path,
                     r->nchain, name ? name : "(not a string)");
    r->chain[r->nchain++] = (size_t)(p - cfg->providers);
  }
  return MX_OK;
}

/* Without "routes" or without routes.default: every device without a
 * route of its own uses the providers in the order listed, the first as
 * primary, the rest as fallbacks. cfg->routes has room for one more. */
static mx_err default_route(struct llm_config *cfg)
{
  if (!cfg->routes && !(cfg->routes = calloc(1, sizeof(*cfg->routes))))
    return MX_ERR_NOMEM;
  struct llm_route *r = &cfg->routes[cfg->nroutes++];
  r->device = mx_strdup("default");
  r->chain = calloc(cfg->nproviders, sizeof(size_t));
  if (!r->device || !r->chain)
    return MX_ERR_NOMEM;
  for (size_t i = 0; i < cfg->nproviders; i++)
    r->chain[r->nchain++] = i;
  return MX_OK;
}

static mx_err parse_routes(const cJSON *blk, const struct llm_cfg_loc *root, struct llm_config *cfg, char *err)
{
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(blk, "routes");
  struct llm_cfg_loc l;
  llm_cfg_sub(&l, root, ".%s", "routes", -1);
  if (!o)
    return default_route(cfg);
  if (!cJSON_IsObject(o))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected an object of device name to provider chain", l.file, l.path);
  size_t n = (size_t)cJSON_GetArraySize(o);
  cfg->routes = calloc(n + 1, sizeof(*cfg->routes)); /* + the default route when not given */
  if (!cfg->routes)
    return MX_ERR_NOMEM;
  const cJSON *it;
  cJSON_ArrayForEach(it, o) {
    struct llm_route *r = &cfg->routes[cfg->nroutes++];
    if (!(r->device = mx_strdup(it->string)))
      return MX_ERR_NOMEM;
    struct llm_cfg_loc rl;
    llm_cfg_sub(&rl, &l, ".%s", it->string, -1);
    mx_err rc = parse_chain(it, &rl, cfg, r, err);
    if (rc)
      return rc;
  }
  return llm_config_route(cfg, "default") ? MX_OK : default_route(cfg);
}

static mx_err parse_budgets(const cJSON *blk, const struct llm_cfg_loc *root, struct llm_budget_cfg *b, char *err)
{
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(blk, "budgets");
  if (!o)
    return MX_OK;
  struct llm_cfg_loc l;
  llm_cfg_sub(&l, root, ".%s", "budgets", -1);
  mx_err rc = llm_cfg_keys(o, &l, k_budgets, err);
  if (!rc)
    rc = llm_cfg_int(o, &l, "device_tokens_per_day", 0, INT64_C(1) << 50, &b->device_tokens_per_day, err);
  if (!rc)
    rc = llm_cfg_num(o, &l, "device_cost_per_day", &b->device_cost_per_day, err);
  if (!rc)
    rc = llm_cfg_int(o, &l, "operator_tokens_per_day", 0, INT64_C(1) << 50, &b->operator_tokens_per_day, err);
  if (!rc)
    rc = llm_cfg_num(o, &l, "operator_cost_per_day", &b->operator_cost_per_day, err);
  return rc;
}

static mx_err parse_agent(const cJSON *blk, const struct llm_cfg_loc *root, struct llm_agent_cfg *a, char *err)
{
  a->max_tool_iterations = 8;
  a->turn_timeout_ms = 300000;
  a->parallel_tools = 4;
  a->tool_result_max_chars = 16000;
  a->history_max_tokens = 24000;
  if (!(a->prompts_dir = mx_strdup("prompts")) || !(a->prompt_file = mx_strdup("device.md")))
    return MX_ERR_NOMEM;
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(blk, "agent");
  if (!o)
    return MX_OK;
  struct llm_cfg_loc l;
  llm_cfg_sub(&l, root, ".%s", "agent", -1);
  int64_t maxc = (int64_t)a->tool_result_max_chars;
  mx_err rc = llm_cfg_keys(o, &l, k_agent, err);
  if (!rc)
    rc = llm_cfg_int_i(o, &l, "max_tool_iterations", 1, 100, &a->max_tool_iterations, err);
  if (!rc)
    rc = llm_cfg_int(o, &l, "turn_timeout_ms", 1000, 3600000, &a->turn_timeout_ms, err);
  if (!rc)
    rc = llm_cfg_int_i(o, &l, "parallel_tools", 1, 64, &a->parallel_tools, err);
  if (!rc)
    rc = llm_cfg_int(o, &l, "tool_result_max_chars", 200, 1000000, &maxc, err);
  a->tool_result_max_chars = (size_t)maxc;
  if (!rc)
    rc = llm_cfg_int(o, &l, "history_max_tokens", 500, 10000000, &a->history_max_tokens, err);
  if (!rc)
    rc = llm_cfg_str(o, &l, "prompts_dir", 0, &a->prompts_dir, err);
  if (!rc)
    rc = llm_cfg_str(o, &l, "prompt_file", 0, &a->prompt_file, err);
  return rc;
}

/* Relative prompts_dir is relative to the config file, like key files, so
 * the daemon finds it whatever its working directory. */
static mx_err resolve_prompts(struct llm_agent_cfg *a, const char *base_dir)
{
  char *full = mx_path_join(base_dir, a->prompts_dir);
  if (!full)
    return MX_ERR_NOMEM;
  free(a->prompts_dir);
  a->prompts_dir = full;
  return MX_OK;
}

mx_err llm_config_parse(const cJSON *blk, const char *file, struct llm_config **out, char *err)
{
  char *base_dir = llm_cfg_dir_of(file);
  struct llm_cfg_loc root = {file ? file : "mxfleet.json", "llm", base_dir};
  *out = NULL;
  struct llm_config *cfg = calloc(1, sizeof(*cfg));
  if (!cfg) {
    free(base_dir);
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  }
  mx_err rc = llm_cfg_keys(blk, &root, k_llm, err);
  if (!rc)
    rc = parse_providers(blk, &root, cfg, err);
  if (!rc)
    rc = parse_routes(blk, &root, cfg, err);
  if (!rc)
    rc = parse_budgets(blk, &root, &cfg->budgets, err);
  if (!rc)
    rc = parse_agent(blk, &root, &cfg->agent, err);
  if (!rc)
    rc = resolve_prompts(&cfg->agent, root.base_dir);
  free(base_dir);
  if (rc) {
    if (rc == MX_ERR_NOMEM)
      mx_fail(rc, err, "out of memory");
    llm_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return MX_OK;
}

void llm_config_free(struct llm_config *cfg)
{
  if (!cfg)
    return;
  for (size_t i = 0; i < cfg->nproviders; i++) {
    struct llm_provider_cfg *p = &cfg->providers[i];
    free(p->name);
    free(p->base_url);
    free(p->model);
    if (p->api_key) /* wipe the secret before handing the memory back */
      memset(p->api_key, 0, strlen(p->api_key));
    free(p->api_key);
  }
  free(cfg->providers);
  for (size_t i = 0; i < cfg->nroutes; i++) {
    free(cfg->routes[i].device);
    free(cfg->routes[i].chain);
  }
  free(cfg->routes);
  free(cfg->agent.prompts_dir);
  free(cfg->agent.prompt_file);
  free(cfg);
}

const struct llm_route *llm_config_route(const struct llm_config *cfg, const char *device)
{
  const struct llm_route *def = NULL;
  for (size_t i = 0; i < cfg->nroutes; i++) {
    if (device && strcmp(cfg->routes[i].device, device) == 0)
      return &cfg->routes[i];
    if (strcmp(cfg->routes[i].device, "default") == 0)
      def = &cfg->routes[i];
  }
  return def;
}

const struct llm_provider_cfg *llm_config_provider(const struct llm_config *cfg, const char *name)
{
  for (size_t i = 0; i < cfg->nproviders; i++)
    if (cfg->providers[i].name && strcmp(cfg->providers[i].name, name) == 0)
      return &cfg->providers[i];
  return NULL;
}

const char *llm_kind_name(enum llm_kind k)
{
  switch (k) {
  case LLM_KIND_OPENAI:
    return "openai";
  case LLM_KIND_ANTHROPIC:
    return "anthropic";
  case LLM_KIND_OLLAMA:
    return "ollama";
  }
  return "?";
}

void llm_config_each_key(void (*fn)(void *ctx, const char *path), void *ctx)
{
  static const struct {
    const char *prefix;
    const char *const *keys;
  } tables[] = {
    {"llm.", k_llm}, {"llm.providers[].", k_provider}, {"llm.providers[].retry.", k_retry},
    {"llm.providers[].breaker.", k_breaker}, {"llm.budgets.", k_budgets}, {"llm.agent.", k_agent},
  };
  char path[128];
  for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
    for (const char *const *k = tables[t].keys; *k; k++) {
      snprintf(path, sizeof(path), "%s%s", tables[t].prefix, *k);
      fn(ctx, path);
    }
  }
  /* routes: "default" and any device name */
  fn(ctx, "llm.routes.default");
  fn(ctx, "llm.routes.<device>");
}
