/*
 * llm_tools.h - the table through which llm/ reaches tools, filled by the bot
 * from the tools engine (or by a fake in tests). llm/ never includes tools/
 * headers; tools/ never includes this one, so either side is tested alone.
 * Layer: llm. Calls are blocking and may arrive from several threads at once
 * (parallel tool calls, capped by agent.parallel_tools).
 */
#ifndef LLM_TOOLS_H
#define LLM_TOOLS_H

#include <stddef.h>

#include "mx_err.h"

/* One tool as offered to the model. All strings borrowed from the tools side
 * and valid for the whole turn. schema_json is a JSON Schema object as text. */
struct llm_tool_spec {
  const char *name;
  const char *description;
  const char *schema_json;
};

/* One call requested by the model, normalised. id is ours: 9 alphanumerics
 * (Mistral's rule, accepted by every provider). args_json is always a JSON
 * object as text (already checked to parse). */
struct llm_tool_call {
  char id[10];
  char *name;      /* owned by whoever owns the call (malloc) */
  char *args_json; /* owned likewise */
};

/* What the tool hands back. text is malloc'd by the callee and freed by llm/
 * (free()); is_error tells the model the tool ran and failed. */
struct llm_tool_result {
  char *text;
  int is_error;
};

struct llm_tools {
  void *ctx;
  /* Points *out at an array the tools side keeps alive for the turn; returns
   * its length. */
  size_t (*specs)(void *ctx, const struct llm_tool_spec **out);
  /* Runs one call, blocking. A non-zero return is a transport/internal error
   * (llm/ turns it into an error result for the model); a tool that ran and
   * failed returns MX_OK with is_error set. */
  mx_err (*call)(void *ctx, const struct llm_tool_call *call, struct llm_tool_result *out);
};

#endif
