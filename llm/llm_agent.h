/*
 * llm_agent.h - the agent turn: operator text in, tools called through
 * struct llm_tools, final answer out (Markdown + Matrix HTML), with history
 * per (device, room, thread), iteration and wall-clock caps, stuck
 * detection, parallel tool calls and one progress message.
 * Layer: llm (the bot calls this from a worker thread; this never calls the
 * bot or Matrix). The config is borrowed and must outlive the agent.
 */
#ifndef LLM_AGENT_H
#define LLM_AGENT_H

#include <stdint.h>

#include "llm_config.h"
#include "llm_router.h"
#include "llm_tools.h"

struct llm_agent;

struct llm_turn_req {
  const char *device;       /* routes, budgets, history, {{device}} */
  const char *backend;      /* {{backend}}: "wg", "ssh" ... */
  const char *os;           /* {{os}} */
  const char *policy;       /* {{policy}}: a short summary of the manifest */
  const struct llm_tools *tools; /* borrowed for the turn */
  const char *room_id;
  const char *thread_id;    /* "" or NULL outside a thread */
  const char *operator_id;  /* the operator's mxid (operator budget) */
  const char *text;         /* what the operator wrote */
  const char *prompt_file;  /* this device's template (devices[].prompt, absolute);
                             * NULL: agent.prompts_dir/agent.prompt_file */
  /* May be NULL. Non-zero: the operator stopped this turn (!stop): no
   * further model call or tool call is made, the turn ends at once. */
  int (*cancelled)(void *ctx);
  void *cancel_ctx;
};

struct llm_sink {
  void *ctx;
  /* The text of the single status message the bot edits, e.g.
   * "running fs.list /var/log…". May be NULL. Called on the turn's thread. */
  void (*progress)(void *ctx, const char *text);
};

struct llm_turn_result {
  char *markdown;          /* the answer, or an operator-facing error */
  char *html;              /* markdown rendered to Matrix HTML */
  int failed;              /* 1: markdown explains why there is no answer */
  char provider[64];       /* who produced the final reply */
  int rounds;              /* model calls made */
  int tool_calls;          /* tools run */
};

mx_err llm_agent_new(const struct llm_config *cfg, const char *db_path, struct llm_agent **out, char *err);
void llm_agent_free(struct llm_agent *a);
/* The router (status text, metrics). */
struct llm_router *llm_agent_router(struct llm_agent *a);

/* Runs one turn, blocking. MX_OK: out->markdown is the answer. When a budget
 * or every provider is exhausted, the iteration/time cap is hit, the loop is
 * stuck or the model keeps sending invalid arguments, the return is non-zero
 * AND out->markdown/html hold a clear message for the operator (failed=1).
 * Other errors (database, memory) fill err only. Free with
 * llm_turn_result_free. */
mx_err llm_agent_turn(struct llm_agent *a, const struct llm_turn_req *req, const struct llm_sink *sink,
                      struct llm_turn_result *out, char *err);
void llm_turn_result_free(struct llm_turn_result *r);

/* Forgets the conversation of (device, room, thread): the bot's !reset. */
mx_err llm_history_reset(struct llm_agent *a, const char *device, const char *room_id, const char *thread_id,
                         char *err);

#endif
