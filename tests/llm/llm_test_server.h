/*
 * llm_test_server.h - starts tests/llm/scripted_provider.py on a free port
 * for a test (fork/exec, port read from its stdout, /health polled with a
 * deadline), reads back the requests it recorded, and stops it. Also builds
 * llm configs pointing at it. Test support only; usable from any test area
 * (link mx_llm_testsupport).
 */
#ifndef LLM_TEST_SERVER_H
#define LLM_TEST_SERVER_H

#include <sys/types.h>

#include <cjson/cJSON.h>

#include "llm_config.h"

struct llm_ts {
  pid_t pid;
  int port;
  char dir[128];
  char record[192];
};

/* 0 on success. The server dies with the test process (PDEATHSIG). */
int llm_ts_start(struct llm_ts *ts);
void llm_ts_stop(struct llm_ts *ts);
/* Requests recorded for (scenario, run), in arrival order; owned, free with
 * cJSON_Delete. Never NULL (an empty array when none). */
cJSON *llm_ts_requests(const struct llm_ts *ts, const char *scenario, const char *run);

/* Config with one provider per entry "name:kind:scenario:run[:nostream]",
 * route default = all of them in order, api key from $LLM_TEST_KEY (set by
 * this call), fast retries (attempts 3, backoff 1-4 ms), breaker threshold
 * 3 / cooldown 60 s. agent_json is spliced in as the "agent" object (NULL
 * for defaults plus prompts_dir = the source tree's prompts/). budgets_json
 * likewise. Aborts the test on a parse error. */
struct llm_config *llm_ts_config(const struct llm_ts *ts, const char *const *providers, size_t n,
                                 const char *agent_json, const char *budgets_json);

#endif
