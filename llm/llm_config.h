/*
 * llm_config.h - the `llm` block of mxfleet.json: providers, routes per
 * device, budgets and agent limits (every key documented in docs/llm.md).
 * Layer: llm. The cJSON block passed in is borrowed; the resulting
 * struct llm_config owns copies of everything (llm_config_free).
 * API keys are read from their file or environment variable at parse time and
 * never appear in an error message or a log line.
 */
#ifndef LLM_CONFIG_H
#define LLM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_err.h"

enum llm_kind { LLM_KIND_OPENAI = 0, LLM_KIND_ANTHROPIC, LLM_KIND_OLLAMA };

struct llm_retry_cfg {
  int max_attempts;         /* total tries per provider per call, >= 1 */
  int64_t initial_backoff_ms;
  int64_t max_backoff_ms;
  int64_t max_retry_after_ms; /* a longer retry-after means: fall over now */
};

struct llm_breaker_cfg {
  int failure_threshold;
  int64_t cooldown_ms;
};

struct llm_provider_cfg {
  char *name;
  enum llm_kind kind;
  char *base_url;
  char *model;
  char *api_key;            /* secret: never logged, may be NULL (ollama) */
  int64_t connect_timeout_ms;
  int64_t timeout_ms;       /* whole request */
  int64_t idle_timeout_ms;  /* no byte for this long: the request is stalled */
  int64_t max_tokens;
  int stream;
  double price_in_per_1k;   /* currency units per 1000 tokens */
  double price_out_per_1k;
  struct llm_retry_cfg retry;
  struct llm_breaker_cfg breaker;
};

struct llm_route {
  char *device;             /* "default" for the fallback route */
  size_t *chain;            /* indices into providers */
  size_t nchain;
};

struct llm_budget_cfg {      /* 0 means unlimited */
  int64_t device_tokens_per_day;
  double device_cost_per_day;
  int64_t operator_tokens_per_day;
  double operator_cost_per_day;
};

struct llm_agent_cfg {
  int max_tool_iterations;
  int64_t turn_timeout_ms;
  int parallel_tools;
  size_t tool_result_max_chars;
  int64_t history_max_tokens;
  char *prompts_dir;
  char *prompt_file;        /* inside prompts_dir */
};


struct llm_config {
  struct llm_provider_cfg *providers;
  size_t nproviders;
  struct llm_route *routes;
  size_t nroutes;
  struct llm_budget_cfg budgets;
  struct llm_agent_cfg agent;
};

/* Parses llm_block (borrowed). file names the config in messages
 * ("mxfleet.json: llm.providers[1].kind: expected one of openai, anthropic,
 * ollama, got 'x'"). Unknown keys are errors. */
mx_err llm_config_parse(const cJSON *llm_block, const char *file, struct llm_config **out, char *err);
void llm_config_free(struct llm_config *cfg);

/* The route for device (or the default route); NULL when neither exists. */
const struct llm_route *llm_config_route(const struct llm_config *cfg, const char *device);
/* Provider by name or NULL. */
const struct llm_provider_cfg *llm_config_provider(const struct llm_config *cfg, const char *name);
const char *llm_kind_name(enum llm_kind k);

/* Calls fn for every key path the parser accepts, e.g.
 * "llm.providers[].retry.max_attempts" (docs/llm.md has a section for each;
 * a test keeps them in step). */
void llm_config_each_key(void (*fn)(void *ctx, const char *path), void *ctx);

#endif
