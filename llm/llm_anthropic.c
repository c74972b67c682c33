/*
 * llm_anthropic.c - the anthropic kind: Messages API body (system at the top
 * level, input_schema, tool_use / tool_result blocks, consecutive same-role
 * turns merged), streamed events (fragments per content block) and whole
 * answers. Layer: llm. Trees built here are returned owned (body) or
 * borrowed (j).
 */
#include <stdio.h>
#include <string.h>

#include "llm_provider.h"

/* The message to append blocks to: the last one if it has this role. */
static cJSON *turn(cJSON *msgs, const char *role)
{
  cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
  const char *r = last ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "role")) : NULL;
  if (r && strcmp(r, role) == 0)
    return cJSON_GetObjectItemCaseSensitive(last, "content");
  cJSON *m = cJSON_CreateObject();
  cJSON_AddItemToArray(msgs, m);
  cJSON_AddStringToObject(m, "role", role);
  return cJSON_AddArrayToObject(m, "content");
}

static void add_msg(cJSON *msgs, const struct llm_msg *m)
{
  cJSON *blk = cJSON_CreateObject();
  if (m->role == LLM_ROLE_TOOL) {
    cJSON_AddItemToArray(turn(msgs, "user"), blk);
    cJSON_AddStringToObject(blk, "type", "tool_result");
    cJSON_AddStringToObject(blk, "tool_use_id", m->call_id);
    cJSON_AddStringToObject(blk, "content", m->text ? m->text : "");
    cJSON_AddBoolToObject(blk, "is_error", m->is_error);
    return;
  }
  cJSON *content = turn(msgs, m->role == LLM_ROLE_USER ? "user" : "assistant");
  if (m->text && m->text[0]) {
    cJSON_AddItemToArray(content, blk);
    cJSON_AddStringToObject(blk, "type", "text");
    cJSON_AddStringToObject(blk, "text", m->text);
  } else {
    cJSON_Delete(blk);
  }
  for (size_t i = 0; i < m->ncalls; i++) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddItemToArray(content, u);
    cJSON_AddStringToObject(u, "type", "tool_use");
    cJSON_AddStringToObject(u, "id", m->calls[i].id);
    cJSON_AddStringToObject(u, "name", m->calls[i].name);
    cJSON_AddItemToObject(u, "input", llm_args_object(m->calls[i].args_json));
  }
}

cJSON *llm_anthropic_body(const struct llm_provider_cfg *p, const struct llm_chat_req *req, int stream)
{
  cJSON *b = cJSON_CreateObject();
  cJSON_AddStringToObject(b, "model", p->model);
  cJSON_AddNumberToObject(b, "max_tokens", (double)p->max_tokens); /* required by the API */
  if (req->system)
    cJSON_AddStringToObject(b, "system", req->system);
  cJSON *msgs = cJSON_AddArrayToObject(b, "messages");
  for (size_t i = 0; i < req->conv->n; i++)
    add_msg(msgs, &req->conv->v[i]);
  if (req->ntools) {
    cJSON *tools = cJSON_AddArrayToObject(b, "tools");
    for (size_t i = 0; i < req->ntools; i++) {
      cJSON *t = cJSON_CreateObject();
      cJSON_AddItemToArray(tools, t);
      cJSON_AddStringToObject(t, "name", req->tools[i].name);
      cJSON_AddStringToObject(t, "description", req->tools[i].description ? req->tools[i].description : "");
      llm_add_schema(t, "input_schema", req->tools[i].schema_json);
    }
  }
  cJSON_AddBoolToObject(b, "stream", stream);
  return b;
}

static enum llm_stop map_stop(const char *s)
{
  if (!s || strcmp(s, "end_turn") == 0 || strcmp(s, "stop_sequence") == 0)
    return LLM_STOP_END;
  if (strcmp(s, "tool_use") == 0)
    return LLM_STOP_TOOL_USE;
  if (strcmp(s, "max_tokens") == 0 || strcmp(s, "model_context_window_exceeded") == 0)
    return LLM_STOP_TRUNCATED;
  return LLM_STOP_OTHER;
}

static void usage(struct llm_acc *a, const cJSON *u)
{
  const cJSON *in = cJSON_GetObjectItemCaseSensitive(u, "input_tokens");
  const cJSON *out = cJSON_GetObjectItemCaseSensitive(u, "output_tokens");
  /* Only the counts present are replaced (message_delta carries output
   * only); llm_json_i64 turns a count no int64 holds into 0, not UB. */
  if (cJSON_IsNumber(in))
    a->in_tokens = llm_json_i64(u, "input_tokens");
  if (cJSON_IsNumber(out)) /* cumulative in message_delta */
    a->out_tokens = llm_json_i64(u, "output_tokens");
}

static void block_start(struct llm_acc *a, int idx, const cJSON *cb)
{
  const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cb, "type"));
  if (!type)
    return;
  if (strcmp(type, "text") == 0) {
    (void)llm_acc_add_text(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cb, "text")));
    return;
  }
  if (strcmp(type, "tool_use") != 0)
    return;
  struct llm_frag *f = llm_acc_frag(a, idx);
  if (!f)
    return;
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cb, "id"));
  const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cb, "name"));
  if ((id && mx_buf_adds(&f->id, id)) || (name && mx_buf_adds(&f->name, name)))
    return;
  /* A whole answer carries the input here; a stream sends {} and deltas. */
  const cJSON *in = cJSON_GetObjectItemCaseSensitive(cb, "input");
  if (cJSON_IsObject(in) && cJSON_GetArraySize(in) > 0) {
    char *t = cJSON_PrintUnformatted(in);
    if (t)
      llm_acc_append(a, &f->args, t);
    cJSON_free(t);
  }
}

static void block_delta(struct llm_acc *a, int idx, const cJSON *d)
{
  const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "type"));
  if (!type)
    return;
  if (strcmp(type, "text_delta") == 0) {
    (void)llm_acc_add_text(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "text")));
  } else if (strcmp(type, "input_json_delta") == 0) {
    struct llm_frag *f = llm_acc_frag(a, idx);
    const char *pj = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "partial_json"));
    if (f && pj)
      llm_acc_append(a, &f->args, pj);
  }
}

void llm_anthropic_event(struct llm_acc *a, const cJSON *j)
{
  const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
  const cJSON *ix = cJSON_GetObjectItemCaseSensitive(j, "index");
  int idx = cJSON_IsNumber(ix) ? ix->valueint : 0;
  if (!type)
    return;
  if (strcmp(type, "message_start") == 0) {
    usage(a, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "message"), "usage"));
  } else if (strcmp(type, "content_block_start") == 0) {
    block_start(a, idx, cJSON_GetObjectItemCaseSensitive(j, "content_block"));
  } else if (strcmp(type, "content_block_delta") == 0) {
    block_delta(a, idx, cJSON_GetObjectItemCaseSensitive(j, "delta"));
  } else if (strcmp(type, "message_delta") == 0) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "delta");
    a->stop = map_stop(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "stop_reason")));
    usage(a, cJSON_GetObjectItemCaseSensitive(j, "usage"));
  } else if (strcmp(type, "message_stop") == 0) {
    a->done = 1; /* complete only now: an error event may come after 200 */
  } else if (strcmp(type, "error") == 0) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *et = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type"));
    const char *em = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
    a->failed = 1;
    llm_copy(a->err_type, sizeof(a->err_type), et ? et : "error");
    llm_copy(a->err_msg, sizeof(a->err_msg), em ? em : "");
  }
}

void llm_anthropic_whole(struct llm_acc *a, const cJSON *j)
{
  const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
  if (type && strcmp(type, "error") == 0) {
    llm_anthropic_event(a, j);
    return;
  }
  const cJSON *blk;
  int idx = 0;
  cJSON_ArrayForEach(blk, cJSON_GetObjectItemCaseSensitive(j, "content"))
    block_start(a, idx++, blk);
  a->stop = map_stop(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "stop_reason")));
  usage(a, cJSON_GetObjectItemCaseSensitive(j, "usage"));
}
