/*
 * llm_budget.h - daily token and cost budgets per device and per operator
 * (UTC days), kept in the llm_usage table, checked before every model call
 * and charged after it. Layer: llm, on SQLite through common/mx_db.h.
 * Costs are stored in micro-units (integers) so sums never drift.
 */
#ifndef LLM_BUDGET_H
#define LLM_BUDGET_H

#include <sqlite3.h>
#include <stdint.h>

#include "llm_config.h"

/* MX_ERR_UNAVAILABLE with an operator-facing sentence in msg when any budget
 * that applies is spent; MX_OK otherwise. operator_id may be NULL. */
mx_err llm_budget_check(sqlite3 *db, const struct llm_budget_cfg *b, const char *device, const char *operator_id,
                        int64_t now_ms, char *msg);
/* Adds usage to the device and the operator for the day of now_ms. */
mx_err llm_budget_charge(sqlite3 *db, const char *device, const char *operator_id, int64_t now_ms, int64_t tokens,
                         double cost, char *err);
/* Usage so far today; scope is "device" or "operator". */
mx_err llm_budget_usage(sqlite3 *db, const char *scope, const char *subject, int64_t now_ms, int64_t *tokens,
                        double *cost, char *err);
/* Cost of one call with the provider's prices. */
double llm_budget_cost(const struct llm_provider_cfg *p, int64_t in_tokens, int64_t out_tokens);

#endif
