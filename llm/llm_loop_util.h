/*
 * llm_loop_util.h - small pure helpers of the agent loop: head+tail
 * truncation of tool results with a visible marker, the one-line progress
 * summary of calls, and stuck detection (the same call with the same result
 * repeated; an A-B-A-B pattern). Layer: llm; no I/O.
 */
#ifndef LLM_LOOP_UTIL_H
#define LLM_LOOP_UTIL_H

#include <stddef.h>

#include "llm_tools.h"
#include "mx_buf.h"

/* Copy of text cut to at most ~max chars: head, a marker
 * "[... N characters omitted ...]", tail. Never splits a UTF-8 sequence.
 * Returns malloc'd text or NULL on out of memory. */
char *llm_truncate(const char *text, size_t max);

/* "running fs.list /var/log, sys.uptime…" into out. */
mx_err llm_progress_text(const struct llm_tool_call *calls, size_t n, struct mx_buf *out);

#define LLM_STUCK_SAME 3 /* same call + same result this many times in a row */

struct llm_stuck {
  unsigned char (*sig)[32];
  size_t n, cap;
};

void llm_stuck_init(struct llm_stuck *s);
void llm_stuck_free(struct llm_stuck *s);
/* Records one executed call. Returns 1 when the loop is stuck: the same
 * call with the same result LLM_STUCK_SAME times in a row, or A-B-A-B with
 * identical results; -1 on out of memory. */
int llm_stuck_push(struct llm_stuck *s, const char *name, const char *args, const char *result);

#endif
