/*
 * llm_history.c - history storage and token-based trimming; see
 * llm_history.h. Layer: llm; statements are local to each function.
 */
#include "llm_history.h"

#include <stdlib.h>
#include <string.h>

#include "mx_db.h"
#include "mx_util.h"

/* Rows kept per conversation in the table; older ones are pruned on append
 * (the in-memory trim keeps far fewer anyway). */
#define HISTORY_KEEP_ROWS 400

static void bind_key(sqlite3_stmt *st, const char *device, const char *room, const char *thread)
{
  sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, room ? room : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, thread ? thread : "", -1, SQLITE_STATIC);
}

mx_err llm_history_load(sqlite3 *db, const char *device, const char *room, const char *thread, struct llm_conv *out,
                        char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(db, "SELECT msg FROM llm_history WHERE device=? AND room=? AND thread=? ORDER BY id",
                            &st, err);
  if (rc)
    return rc;
  bind_key(st, device, room, thread);
  int s;
  while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW)
    rc = llm_msg_from_json((const char *)sqlite3_column_text(st, 0), out, err);
  if (!rc && s != SQLITE_DONE)
    rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  /* A pruned table may start mid-exchange: drop leading non-user messages. */
  while (!rc && out->n && out->v[0].role != LLM_ROLE_USER)
    llm_conv_remove(out, 0);
  return rc;
}

static mx_err prune(sqlite3 *db, const char *device, const char *room, const char *thread, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(db,
                            "DELETE FROM llm_history WHERE device=?1 AND room=?2 AND thread=?3 AND id <= "
                            "(SELECT id FROM llm_history WHERE device=?1 AND room=?2 AND thread=?3 "
                            " ORDER BY id DESC LIMIT 1 OFFSET ?4)",
                            &st, err);
  if (rc)
    return rc;
  bind_key(st, device, room, thread);
  sqlite3_bind_int(st, 4, HISTORY_KEEP_ROWS);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

mx_err llm_history_append(sqlite3 *db, const char *device, const char *room, const char *thread,
                          const struct llm_conv *c, size_t from, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_begin(db, err);
  if (rc)
    return rc;
  rc = mx_db_prepare(db, "INSERT INTO llm_history(device, room, thread, msg, created_ms) VALUES(?,?,?,?,?)", &st,
                     err);
  for (size_t i = from; !rc && i < c->n; i++) {
    char *json = NULL;
    rc = llm_msg_to_json(&c->v[i], &json);
    if (rc)
      break;
    sqlite3_reset(st);
    bind_key(st, device, room, thread);
    sqlite3_bind_text(st, 4, json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, mx_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(db));
    free(json);
  }
  sqlite3_finalize(st);
  if (!rc)
    rc = prune(db, device, room, thread, err);
  if (!rc)
    rc = mx_db_commit(db, err);
  if (rc)
    mx_db_rollback(db);
  return rc;
}

mx_err llm_history_clear(sqlite3 *db, const char *device, const char *room, const char *thread, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(db, "DELETE FROM llm_history WHERE device=? AND room=? AND thread=?", &st, err);
  if (rc)
    return rc;
  bind_key(st, device, room, thread);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = mx_fail(MX_ERR_DB, err, "sqlite: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

int64_t llm_conv_tokens(const struct llm_conv *c)
{
  int64_t t = 0;
  for (size_t i = 0; i < c->n; i++)
    t += llm_msg_tokens(&c->v[i]);
  return t;
}

/* End (exclusive) of the exchange unit starting at i: a user message alone,
 * or an assistant message with the tool results that follow it. */
static size_t unit_end(const struct llm_conv *c, size_t i)
{
  size_t j = i + 1;
  if (c->v[i].role == LLM_ROLE_ASSISTANT)
    while (j < c->n && c->v[j].role == LLM_ROLE_TOOL)
      j++;
  return j;
}

int64_t llm_history_trim(struct llm_conv *c, int64_t max_tokens, size_t *keep_from)
{
  int64_t total = llm_conv_tokens(c);
  /* 1: empty the oldest tool results first; the call and its (now short)
   * result stay together. */
  for (size_t i = 0; total > max_tokens && i < *keep_from; i++) {
    struct llm_msg *m = &c->v[i];
    if (m->role != LLM_ROLE_TOOL || !m->text || strcmp(m->text, LLM_HISTORY_DROPPED) == 0)
      continue;
    char *t = mx_strdup(LLM_HISTORY_DROPPED);
    if (!t)
      break;
    int64_t before = llm_msg_tokens(m);
    free(m->text);
    m->text = t;
    total -= before - llm_msg_tokens(m);
  }
  /* 2: drop whole units from the front, then anything left before the first
   * user message (Anthropic wants a user turn first). */
  while (*keep_from > 0 && c->n) {
    int lead_ok = c->v[0].role == LLM_ROLE_USER;
    if (total <= max_tokens && lead_ok)
      break;
    size_t end = unit_end(c, 0);
    if (end > *keep_from)
      break;
    for (size_t k = 0; k < end; k++) {
      total -= llm_msg_tokens(&c->v[0]);
      llm_conv_remove(c, 0);
    }
    *keep_from -= end;
  }
  return total;
}
