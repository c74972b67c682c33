/*
 * llm_history.h - conversation history per (device, room, thread) in the
 * llm_history table, and trimming by estimated tokens: the oldest tool
 * results are emptied first, then the oldest whole exchanges are dropped; a
 * tool call is never separated from its result (providers reject orphans).
 * Layer: llm, on SQLite through common/mx_db.h.
 */
#ifndef LLM_HISTORY_H
#define LLM_HISTORY_H

#include <sqlite3.h>

#include "llm_msg.h"

#define LLM_HISTORY_DROPPED "[older tool result removed to save context]"

mx_err llm_history_load(sqlite3 *db, const char *device, const char *room, const char *thread, struct llm_conv *out,
                        char *err);
/* Appends c->v[from..n) to the stored history. */
mx_err llm_history_append(sqlite3 *db, const char *device, const char *room, const char *thread,
                          const struct llm_conv *c, size_t from, char *err);
/* Forgets the conversation (the bot's !reset). */
mx_err llm_history_clear(sqlite3 *db, const char *device, const char *room, const char *thread, char *err);

/* Estimated tokens of the whole conversation. */
int64_t llm_conv_tokens(const struct llm_conv *c);
/* Trims c to at most max_tokens (estimate). Messages from index `keep_from`
 * on (the current turn) are never touched. Returns the estimate after. */
int64_t llm_history_trim(struct llm_conv *c, int64_t max_tokens, size_t *keep_from);

#endif
