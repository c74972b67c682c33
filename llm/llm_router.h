/*
 * llm_router.h - one model call for a device through its ordered provider
 * chain: the ONE retry layer (llm_retry.h rules), a circuit breaker per
 * provider, budget checks before every attempt, fallback to the next
 * provider when retries are spent. Answers are fully buffered, so a stream
 * that fails part-way is simply retried or falls over: partial output never
 * reaches the operator. Thread-safe: breakers and counters sit under one
 * mutex; each call uses its own curl handle and the caller's SQLite handle.
 * Layer: llm. The config is borrowed and must outlive the router.
 */
#ifndef LLM_ROUTER_H
#define LLM_ROUTER_H

#include <sqlite3.h>
#include <stdint.h>

#include "llm_config.h"
#include "llm_provider.h"
#include "mx_buf.h"

struct llm_router;

struct llm_call_ctx {
  sqlite3 *db;              /* the calling thread's connection (budgets) */
  const char *device;
  const char *operator_id;  /* may be NULL */
  int64_t deadline_mono_ms; /* 0: none beyond the providers' timeouts */
};

mx_err llm_router_new(const struct llm_config *cfg, struct llm_router **out, char *err);
void llm_router_free(struct llm_router *r);

/* Sends req through the device's chain. On success *out is the reply and
 * provider (64 bytes, may be NULL) names who answered. On failure err holds an
 * operator-facing sentence: MX_ERR_UNAVAILABLE when a budget is spent or
 * every provider failed (each one's last error listed). */
mx_err llm_router_chat(struct llm_router *r, const struct llm_call_ctx *cx, const struct llm_chat_req *req,
                       struct llm_reply *out, char *provider, char *err);

/* Same, to one named provider only, no fallback (mxfleet llm test). */
mx_err llm_router_chat_one(struct llm_router *r, const struct llm_call_ctx *cx, size_t provider_index,
                           const struct llm_chat_req *req, struct llm_reply *out, char *err);

/* Human text for !status: one "- name (kind, model): breaker closed, ..."
 * line per provider; the caller adds its own heading. */
mx_err llm_router_status_text(struct llm_router *r, struct mx_buf *out);
/* Prometheus text exposition lines for /metrics. */
mx_err llm_router_metrics(struct llm_router *r, struct mx_buf *out);

/* Masks key and anything shaped like "sk-..." in msg, in place (provider
 * error messages may echo a key; they reach logs, !status and the operator). */
void llm_redact_secrets(char *msg, const char *key);

/* Tests: replace the sleep between retries (records instead of waiting). */
void llm_router_set_sleep(struct llm_router *r, void (*fn)(void *ctx, int64_t ms), void *ctx);

#endif
