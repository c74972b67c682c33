/*
 * llm_msg.h - the one internal shape of a conversation: messages, tool calls
 * and tool results, whatever the provider. Adapters (llm_openai.c,
 * llm_anthropic.c, llm_ollama.c) translate to and from it; history stores it.
 * Layer: llm, on common/. Ownership: a conversation owns every string in it
 * (malloc'd); llm_conv_free releases all. No cJSON pointer escapes this API.
 */
#ifndef LLM_MSG_H
#define LLM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "llm_tools.h"
#include "mx_err.h"

enum llm_role { LLM_ROLE_USER = 0, LLM_ROLE_ASSISTANT = 1, LLM_ROLE_TOOL = 2 };

struct llm_msg {
  enum llm_role role;
  char *text;                   /* user/assistant text or tool result; may be NULL */
  struct llm_tool_call *calls;  /* assistant only */
  size_t ncalls;
  char call_id[10];             /* tool only: which call this answers */
  char *tool_name;              /* tool only (Ollama wants it) */
  int is_error;                 /* tool only */
};

struct llm_conv {
  struct llm_msg *v;
  size_t n, cap;
};

/* Internal stop reasons (OpenAI tool_calls / llama.cpp tool / Anthropic
 * tool_use -> TOOL_USE; length / max_tokens -> TRUNCATED). */
enum llm_stop { LLM_STOP_END = 0, LLM_STOP_TOOL_USE, LLM_STOP_TRUNCATED, LLM_STOP_OTHER };

/* One model reply, normalised. */
struct llm_reply {
  char *text;
  struct llm_tool_call *calls;
  size_t ncalls;
  enum llm_stop stop;
  int64_t in_tokens, out_tokens;
  /* NULL, or per call: NULL when its arguments parsed, else what was wrong
   * (the call's args_json is then "{}"). */
  char **call_errors;
};

void llm_conv_init(struct llm_conv *c);
void llm_conv_free(struct llm_conv *c);
mx_err llm_conv_add_user(struct llm_conv *c, const char *text);
/* Copies text and calls. */
mx_err llm_conv_add_assistant(struct llm_conv *c, const char *text,
                              const struct llm_tool_call *calls, size_t ncalls);
mx_err llm_conv_add_tool(struct llm_conv *c, const char *call_id, const char *name,
                         const char *text, int is_error);
/* Removes message i, shifting the rest. */
void llm_conv_remove(struct llm_conv *c, size_t i);

void llm_reply_free(struct llm_reply *r);
void llm_calls_free(struct llm_tool_call *calls, size_t n);
/* Appends a call (copies name; takes ownership of args_json on success). */
mx_err llm_calls_push(struct llm_tool_call **calls, size_t *n, const char *name, char *args_json);

/* Copies src into dst (n bytes), cut if longer, always NUL-terminated. */
void llm_copy(char *dst, size_t n, const char *src);

/* Mints our tool-call id: 9 characters of [A-Za-z0-9]. */
mx_err llm_new_call_id(char out[10]);

/* Normalises provider arguments (a JSON string holding an object, an object,
 * or missing/empty meaning {}) into object text in *out (malloc'd). On
 * malformed input returns MX_ERR_INVALID with what was wrong in err and *out
 * set to the raw text so the model can be shown it. v is borrowed. */
mx_err llm_args_normalise(const cJSON *v, char **out, char *err);
/* Same, from raw text (assembled stream fragments). */
mx_err llm_args_from_text(const char *text, char **out, char *err);

/* Finds tool calls written as text by small local models:
 * <tool_call>{"name":..,"arguments":{..}}</tool_call> blocks or a whole reply
 * that is one bare JSON call {"name":..,"arguments"|"parameters":..}. Only
 * names in known[] count. On a hit moves them into r->calls, keeps the
 * remaining text and returns 1. */
int llm_extract_text_calls(struct llm_reply *r, const char *const *known, size_t nknown);

/* Estimated tokens of a message: ~4 chars per token + 6 of framing. */
int64_t llm_msg_tokens(const struct llm_msg *m);

/* Serialises one message to JSON text for the history table and back. */
mx_err llm_msg_to_json(const struct llm_msg *m, char **out);
mx_err llm_msg_from_json(const char *json, struct llm_conv *c, char *err);

#endif
