/*
 * llm_breaker.h - a circuit breaker per provider: closed -> open after
 * failure_threshold consecutive failures -> half-open (one probe) after
 * cooldown_ms -> closed on the probe's success, open again on its failure.
 * Layer: llm; the clock is passed in (tests drive it). Not locked: the
 * router holds its mutex around every call.
 */
#ifndef LLM_BREAKER_H
#define LLM_BREAKER_H

#include <stdint.h>

#include "llm_config.h"

enum llm_breaker_state { LLM_BREAKER_CLOSED = 0, LLM_BREAKER_OPEN = 1, LLM_BREAKER_HALF_OPEN = 2 };

struct llm_breaker {
  struct llm_breaker_cfg cfg;
  enum llm_breaker_state state;
  int failures;         /* consecutive */
  int64_t opened_at_ms;
  int probing;          /* half-open: a probe is in flight */
  uint64_t total_ok, total_fail, opens;
};

void llm_breaker_init(struct llm_breaker *b, const struct llm_breaker_cfg *cfg);
/* 1 when a call may go out now (in half-open: only the one probe). */
int llm_breaker_allow(struct llm_breaker *b, int64_t now_ms);
void llm_breaker_success(struct llm_breaker *b);
void llm_breaker_failure(struct llm_breaker *b, int64_t now_ms);
const char *llm_breaker_state_name(enum llm_breaker_state s);

#endif
