/*
 * llm_budget.c - daily usage accounting and budget checks; see llm_budget.h.
 * Layer: llm; SQLite statements are local to each function.
 */
#include "llm_budget.h"

#include <time.h>

#include "mx_db.h"

static void day_of(int64_t now_ms, char out[16])
{
  time_t t = (time_t)(now_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 16, "%Y-%m-%d", &tm);
}

mx_err llm_budget_usage(sqlite3 *db, const char *scope, const char *subject, int64_t now_ms, int64_t *tokens,
                        double *cost, char *err)
{
  char day[16];
  day_of(now_ms, day);
  sqlite3_stmt *st = NULL;
  *tokens = 0;
  *cost = 0;
  mx_err rc = mx_db_prepare(db, "SELECT tokens, cost_micro FROM llm_usage WHERE day=? AND scope=? AND subject=?",
                            &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW) {
    *tokens = sqlite3_column_int64(st, 0);
    *cost = (double)sqlite3_column_int64(st, 1) / 1e6;
  } else if (s != SQLITE_DONE) {
    rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  return rc;
}

static mx_err check_one(sqlite3 *db, const char *scope, const char *subject, int64_t max_tokens, double max_cost,
                        int64_t now_ms, char *msg)
{
  if (!subject || (max_tokens <= 0 && max_cost <= 0))
    return MX_OK;
  int64_t used = 0;
  double cost = 0;
  mx_err rc = llm_budget_usage(db, scope, subject, now_ms, &used, &cost, msg);
  if (rc)
    return rc;
  if (max_tokens > 0 && used >= max_tokens)
    return mx_fail(MX_ERR_UNAVAILABLE, msg,
                   "the daily token budget of %s %s is spent (%lld of %lld tokens used today, UTC); "
                   "it resets at midnight UTC",
                   scope, subject, (long long)used, (long long)max_tokens);
  if (max_cost > 0 && cost >= max_cost)
    return mx_fail(MX_ERR_UNAVAILABLE, msg,
                   "the daily cost budget of %s %s is spent (%.4f of %.4f used today, UTC); "
                   "it resets at midnight UTC",
                   scope, subject, cost, max_cost);
  return MX_OK;
}

mx_err llm_budget_check(sqlite3 *db, const struct llm_budget_cfg *b, const char *device, const char *operator_id,
                        int64_t now_ms, char *msg)
{
  mx_err rc = check_one(db, "device", device, b->device_tokens_per_day, b->device_cost_per_day, now_ms, msg);
  if (!rc)
    rc = check_one(db, "operator", operator_id, b->operator_tokens_per_day, b->operator_cost_per_day, now_ms, msg);
  return rc;
}

static mx_err add(sqlite3 *db, const char *day, const char *scope, const char *subject, int64_t tokens,
                  int64_t micro, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(db,
                            "INSERT INTO llm_usage(day, scope, subject, tokens, cost_micro) VALUES(?,?,?,?,?) "
                            "ON CONFLICT(day, scope, subject) DO UPDATE SET "
                            "tokens=tokens+excluded.tokens, cost_micro=cost_micro+excluded.cost_micro",
                            &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, tokens);
  sqlite3_bind_int64(st, 5, micro);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

mx_err llm_budget_charge(sqlite3 *db, const char *device, const char *operator_id, int64_t now_ms, int64_t tokens,
                         double cost, char *err)
{
  char day[16];
  day_of(now_ms, day);
  int64_t micro = (int64_t)(cost * 1e6 + 0.5);
  mx_err rc = MX_OK;
  if (device)
    rc = add(db, day, "device", device, tokens, micro, err);
  if (!rc && operator_id)
    rc = add(db, day, "operator", operator_id, tokens, micro, err);
  return rc;
}

double llm_budget_cost(const struct llm_provider_cfg *p, int64_t in_tokens, int64_t out_tokens)
{
  return (double)in_tokens / 1000.0 * p->price_in_per_1k + (double)out_tokens / 1000.0 * p->price_out_per_1k;
}
