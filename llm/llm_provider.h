/*
 * llm_provider.h - the three wire formats (openai Chat Completions,
 * anthropic Messages, ollama /api/chat) behind one pair of operations:
 * build a request from the internal conversation, and turn an answer (a
 * whole body or a stream of SSE/NDJSON lines) back into a struct llm_reply.
 * Layer: llm; knows nothing of retries, breakers or budgets (llm_router.c).
 * Ownership: every cJSON tree is built and deleted inside; outputs are
 * mx_bufs, a curl_slist (caller frees) and llm_reply (llm_reply_free).
 */
#ifndef LLM_PROVIDER_H
#define LLM_PROVIDER_H

#include <curl/curl.h>

#include "llm_config.h"
#include "llm_msg.h"
#include "mx_buf.h"

struct llm_chat_req {
  const char *system;
  const struct llm_conv *conv;
  const struct llm_tool_spec *tools;
  size_t ntools;
};

/* URL, headers (with the API key: never log them) and JSON body. */
mx_err llm_provider_build(const struct llm_provider_cfg *p, const struct llm_chat_req *req, int stream,
                          struct mx_buf *url, struct curl_slist **headers, struct mx_buf *body, char *err);

#define LLM_MAX_CALLS 64

/* A tool call being assembled: fragments per OpenAI index, per Anthropic
 * content block, or whole (Ollama). */
struct llm_frag {
  int used;
  struct mx_buf id;   /* provider's id, kept for the log only */
  struct mx_buf name;
  struct mx_buf args; /* concatenated argument text */
};

/* Accumulates one answer, streamed or whole. */
struct llm_acc {
  enum llm_kind kind;
  int sse;                  /* SSE framing (openai, anthropic) vs NDJSON */
  struct mx_buf text;
  struct llm_frag frags[LLM_MAX_CALLS];
  char event[64];           /* current SSE event name */
  struct mx_buf data;       /* current SSE data lines */
  int done;                 /* [DONE], message_stop or done:true seen */
  int got_token;            /* any text or call fragment seen */
  enum llm_stop stop;
  int64_t in_tokens, out_tokens;
  int failed;               /* an error object/event arrived */
  char err_type[64];
  char err_msg[256];
};

void llm_acc_init(struct llm_acc *a, enum llm_kind kind);
void llm_acc_release(struct llm_acc *a);
/* llm_line_fn for llm_http_post: one line of the stream. */
int llm_acc_line(void *ctx, const char *line, size_t n);
/* Parses a whole non-streamed body into the accumulator. */
mx_err llm_acc_body(struct llm_acc *a, const char *body, char *err);
/* Turns the accumulated answer into a reply. Fails (MX_ERR_HTTP) when an
 * error event arrived or the stream ended before its end marker. */
mx_err llm_acc_finish(struct llm_acc *a, int streamed, struct llm_reply *out, char *err);

/* Provider error body {"error":{"type","code","message"}} (openai),
 * {"type":"error","error":{"type","message"}} (anthropic), {"error":"..."}
 * (ollama) -> type, code, message (each may come back empty). */
void llm_provider_error(const char *body, char *type, size_t tn, char *code, size_t cn, char *msg, size_t mn);

/* Per-kind pieces, used by llm_provider.c. */
cJSON *llm_openai_body(const struct llm_provider_cfg *p, const struct llm_chat_req *req, int stream);
cJSON *llm_anthropic_body(const struct llm_provider_cfg *p, const struct llm_chat_req *req, int stream);
cJSON *llm_ollama_body(const struct llm_provider_cfg *p, const struct llm_chat_req *req, int stream);
void llm_openai_event(struct llm_acc *a, const cJSON *j);
void llm_openai_whole(struct llm_acc *a, const cJSON *j);
void llm_anthropic_event(struct llm_acc *a, const cJSON *j);
void llm_anthropic_whole(struct llm_acc *a, const cJSON *j);
void llm_ollama_event(struct llm_acc *a, const cJSON *j);

/* Helpers shared by the adapters. */
struct llm_frag *llm_acc_frag(struct llm_acc *a, int index);
mx_err llm_acc_add_text(struct llm_acc *a, const char *s);
/* Appends s to one of a's buffers; over the cap marks the answer failed. */
void llm_acc_append(struct llm_acc *a, struct mx_buf *b, const char *s);
/* Adds a JSON Schema text as a parsed object under key (invalid -> {"type":"object"}). */
void llm_add_schema(cJSON *obj, const char *key, const char *schema_json);
/* An integer member or 0 (never casts a NaN). */
int64_t llm_json_i64(const cJSON *obj, const char *key);
/* args_json text -> object (invalid -> {}). Owned by the caller. */
cJSON *llm_args_object(const char *args_json);

#endif
