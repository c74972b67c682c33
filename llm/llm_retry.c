/*
 * llm_retry.c - retry classification and backoff; see llm_retry.h.
 * Layer: llm; pure functions.
 */
#include "llm_retry.h"

#include <string.h>

static int has(const char *s, const char *needle)
{
  return s && strstr(s, needle) != NULL;
}

enum llm_verdict llm_retry_classify(const struct llm_failure *f)
{
  /* Out of money: retrying cannot help, whatever the status (OpenAI sends it
   * as 429, so this test comes before the 429 rule). */
  if (has(f->type, "insufficient_quota") || has(f->message, "insufficient_quota") ||
      has(f->type, "billing_error"))
    return LLM_PERMANENT;
  /* Anthropic overload may arrive as 529 or as 429 or inside a 200 stream:
   * switch on the type, not only the status. */
  if (has(f->type, "overloaded_error") || has(f->type, "rate_limit_error") || has(f->type, "api_error") ||
      has(f->type, "timeout_error"))
    return LLM_TRANSIENT;
  /* Groq: the model wrote a malformed call (400 tool_use_failed, also as an
   * SSE error). A new sample of the same request usually works: one more
   * try is a reprompt, then the next provider. */
  if (has(f->type, "tool_use_failed"))
    return LLM_TRANSIENT;
  /* The server knows best when it says so explicitly (OpenAI SDK rule). */
  if (f->should_retry == 1)
    return LLM_TRANSIENT;
  if (f->should_retry == 0)
    return LLM_PERMANENT;
  switch (f->status) {
  case 0:   /* connection refused/reset, timeout, stream cut: nothing was shown
             * to the operator, so a new attempt is safe */
  case 408: /* request timeout */
  case 409: /* conflict (OpenAI: lock contention) */
  case 429: /* rate limited */
  case 500: /* server error */
  case 502: /* bad gateway */
  case 503: /* unavailable */
  case 504: /* gateway timeout */
  case 529: /* Anthropic overloaded */
    return LLM_TRANSIENT;
  case 200: /* an error event after 200 with an unknown type: treat like 500 */
    return f->type[0] ? LLM_TRANSIENT : LLM_PERMANENT;
  default:
    /* 400 bad request, 401/403 auth, 404 no such model, 413/422: the same
     * request would fail the same way. */
    return LLM_PERMANENT;
  }
}

int64_t llm_retry_delay_ms(const struct llm_retry_cfg *c, int attempt, const struct llm_failure *f, double jitter01)
{
  if (f && f->retry_after_ms >= 0) {
    /* A long wait would leave the operator staring at a silent phone: better
     * to try the next provider now. */
    if (f->retry_after_ms > c->max_retry_after_ms)
      return -1;
    return f->retry_after_ms;
  }
  int64_t d = c->initial_backoff_ms;
  for (int i = 1; i < attempt && d < c->max_backoff_ms; i++)
    d *= 2;
  if (d > c->max_backoff_ms)
    d = c->max_backoff_ms;
  /* Jitter down to 75 % so many workers do not retry in lockstep. */
  if (jitter01 < 0)
    jitter01 = 0;
  if (jitter01 >= 1)
    jitter01 = 0.999;
  return d - (int64_t)((double)d * 0.25 * jitter01);
}
