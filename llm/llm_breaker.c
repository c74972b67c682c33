/*
 * llm_breaker.c - circuit breaker transitions; see llm_breaker.h.
 * Layer: llm; pure state machine.
 */
#include "llm_breaker.h"

#include <string.h>

void llm_breaker_init(struct llm_breaker *b, const struct llm_breaker_cfg *cfg)
{
  memset(b, 0, sizeof(*b));
  b->cfg = *cfg;
}

int llm_breaker_allow(struct llm_breaker *b, int64_t now_ms)
{
  switch (b->state) {
  case LLM_BREAKER_CLOSED:
    return 1;
  case LLM_BREAKER_OPEN:
    if (now_ms - b->opened_at_ms < b->cfg.cooldown_ms)
      return 0;
    b->state = LLM_BREAKER_HALF_OPEN;
    b->probing = 1;
    return 1;
  case LLM_BREAKER_HALF_OPEN:
    /* One probe at a time; others keep falling over to the next provider. */
    if (b->probing)
      return 0;
    b->probing = 1;
    return 1;
  }
  return 0;
}

void llm_breaker_success(struct llm_breaker *b)
{
  b->total_ok++;
  b->failures = 0;
  b->probing = 0;
  b->state = LLM_BREAKER_CLOSED;
}

void llm_breaker_failure(struct llm_breaker *b, int64_t now_ms)
{
  b->total_fail++;
  b->failures++;
  if (b->state == LLM_BREAKER_HALF_OPEN || b->failures >= b->cfg.failure_threshold) {
    if (b->state != LLM_BREAKER_OPEN)
      b->opens++;
    b->state = LLM_BREAKER_OPEN;
    b->opened_at_ms = now_ms;
    b->probing = 0;
  }
}

const char *llm_breaker_state_name(enum llm_breaker_state s)
{
  switch (s) {
  case LLM_BREAKER_CLOSED:
    return "closed";
  case LLM_BREAKER_OPEN:
    return "open";
  case LLM_BREAKER_HALF_OPEN:
    return "half-open";
  }
  return "?";
}
