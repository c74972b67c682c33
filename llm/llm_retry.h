/*
 * llm_retry.h - the one retry layer's decisions, as pure functions so every
 * rule is unit-tested: is a failure worth retrying, and how long to wait.
 * Layer: llm; no I/O, no clock, no randomness of its own (jitter is passed in).
 */
#ifndef LLM_RETRY_H
#define LLM_RETRY_H

#include <stdint.h>

#include "llm_config.h"

/* What one attempt ended with. status 0 = no HTTP answer (connect/timeout/cut). */
struct llm_failure {
  long status;
  char type[64];       /* provider error type or code (overloaded_error, insufficient_quota...) */
  char message[256];
  int64_t retry_after_ms; /* -1 absent */
  int should_retry;       /* x-should-retry: -1 absent, 0, 1 */
  int got_token;          /* a stream failed after output began */
  char request_id[80];    /* the provider's request-id, for its support */
};

enum llm_verdict { LLM_PERMANENT = 0, LLM_TRANSIENT = 1 };

enum llm_verdict llm_retry_classify(const struct llm_failure *f);

/* Delay before attempt number `attempt` (1 = the first retry):
 * retry-after(-ms) when given, else min(initial * 2^(attempt-1), max) minus
 * up to 25 % jitter (jitter01 in [0,1)). Returns -1 when the server asks us to
 * wait longer than max_retry_after_ms: fall over to the next provider now. */
int64_t llm_retry_delay_ms(const struct llm_retry_cfg *c, int attempt, const struct llm_failure *f, double jitter01);

#endif
