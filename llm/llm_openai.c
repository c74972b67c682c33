/*
 * llm_openai.c - the openai kind: Chat Completions request body, streamed
 * chunks (tool-call fragments per index) and whole answers. Covers OpenAI,
 * Groq, Mistral, OpenRouter, vLLM, LocalAI, llama-server and Ollama's /v1.
 * Layer: llm. Trees built here are returned owned (body) or borrowed (j).
 */
#include <stdio.h>
#include <string.h>

#include "llm_provider.h"

static cJSON *tool_calls_json(const struct llm_msg *m)
{
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < m->ncalls; i++) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, c);
    /* Our own 9-alphanumeric id, the same for every provider, so a
     * conversation can move between providers after a fallback. */
    cJSON_AddStringToObject(c, "id", m->calls[i].id);
    cJSON_AddStringToObject(c, "type", "function");
    cJSON *f = cJSON_AddObjectToObject(c, "function");
    cJSON_AddStringToObject(f, "name", m->calls[i].name);
    cJSON_AddStringToObject(f, "arguments", m->calls[i].args_json);
  }
  return arr;
}

static void add_messages(cJSON *body, const struct llm_chat_req *req)
{
  cJSON *msgs = cJSON_AddArrayToObject(body, "messages");
  if (req->system) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "role", "system");
    cJSON_AddStringToObject(s, "content", req->system);
    cJSON_AddItemToArray(msgs, s);
  }
  for (size_t i = 0; i < req->conv->n; i++) {
    const struct llm_msg *m = &req->conv->v[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(msgs, o);
    if (m->role == LLM_ROLE_USER) {
      cJSON_AddStringToObject(o, "role", "user");
      cJSON_AddStringToObject(o, "content", m->text ? m->text : "");
    } else if (m->role == LLM_ROLE_TOOL) {
      cJSON_AddStringToObject(o, "role", "tool");
      cJSON_AddStringToObject(o, "tool_call_id", m->call_id);
      cJSON_AddStringToObject(o, "content", m->text ? m->text : "");
    } else {
      cJSON_AddStringToObject(o, "role", "assistant");
      if (m->text)
        cJSON_AddStringToObject(o, "content", m->text);
      else
        cJSON_AddNullToObject(o, "content");
      if (m->ncalls)
        cJSON_AddItemToObject(o, "tool_calls", tool_calls_json(m));
    }
  }
}

cJSON *llm_openai_body(const struct llm_provider_cfg *p, const struct llm_chat_req *req, int stream)
{
  cJSON *b = cJSON_CreateObject();
  cJSON_AddStringToObject(b, "model", p->model);
  add_messages(b, req);
  if (req->ntools) {
    cJSON *tools = cJSON_AddArrayToObject(b, "tools");
    for (size_t i = 0; i < req->ntools; i++) {
      cJSON *t = cJSON_CreateObject();
      cJSON_AddItemToArray(tools, t);
      cJSON_AddStringToObject(t, "type", "function");
      cJSON *f = cJSON_AddObjectToObject(t, "function");
      cJSON_AddStringToObject(f, "name", req->tools[i].name);
      cJSON_AddStringToObject(f, "description", req->tools[i].description ? req->tools[i].description : "");
      llm_add_schema(f, "parameters", req->tools[i].schema_json);
    }
    cJSON_AddStringToObject(b, "tool_choice", "auto");
    /* llama-server keeps parallel calls off unless asked. */
    cJSON_AddBoolToObject(b, "parallel_tool_calls", 1);
  }
  /* OpenAI's own API rejects max_tokens for its reasoning models and takes
   * max_completion_tokens everywhere; compatible servers (llama-server,
   * vLLM, Groq, Mistral...) all know max_tokens. */
  int official = strstr(p->base_url, "://api.openai.com") != NULL;
  cJSON_AddNumberToObject(b, official ? "max_completion_tokens" : "max_tokens", (double)p->max_tokens);
  cJSON_AddBoolToObject(b, "stream", stream);
  if (stream)
    cJSON_AddTrueToObject(cJSON_AddObjectToObject(b, "stream_options"), "include_usage");
  return b;
}

static enum llm_stop map_finish(const char *f)
{
  if (!f)
    return LLM_STOP_END;
  if (strcmp(f, "tool_calls") == 0 || strcmp(f, "tool") == 0 || strcmp(f, "function_call") == 0)
    return LLM_STOP_TOOL_USE;
  if (strcmp(f, "length") == 0)
    return LLM_STOP_TRUNCATED;
  if (strcmp(f, "stop") == 0)
    return LLM_STOP_END;
  return LLM_STOP_OTHER;
}

static void usage(struct llm_acc *a, const cJSON *j)
{
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
  if (!cJSON_IsObject(u))
    return;
  a->in_tokens = llm_json_i64(u, "prompt_tokens");
  a->out_tokens = llm_json_i64(u, "completion_tokens");
}

static int error_object(struct llm_acc *a, const cJSON *j)
{
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  if (!e)
    return 0;
  a->failed = 1;
  const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type"));
  const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
  const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
  llm_copy(a->err_type, sizeof(a->err_type), c ? c : (t ? t : "error"));
  llm_copy(a->err_msg, sizeof(a->err_msg), m ? m : "");
  return 1;
}

/* One call (streamed fragment or whole) into frag index idx. Arguments may
 * be a string (OpenAI) or an object (some vLLM/Ollama builds). */
static void add_call(struct llm_acc *a, int idx, const cJSON *tc)
{
  struct llm_frag *f = llm_acc_frag(a, idx);
  if (!f)
    return;
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tc, "id"));
  const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
  const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fn, "name"));
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
  if (id && !f->id.len && mx_buf_adds(&f->id, id))
    return;
  if (name && mx_buf_adds(&f->name, name))
    return;
  if (cJSON_IsString(args)) {
    if (mx_buf_adds(&f->args, args->valuestring))
      return;
  } else if (cJSON_IsObject(args)) {
    char *t = cJSON_PrintUnformatted(args);
    if (t && mx_buf_adds(&f->args, t)) {
      cJSON_free(t);
      return;
    }
    cJSON_free(t);
  }
}

void llm_openai_event(struct llm_acc *a, const cJSON *j)
{
  if (error_object(a, j))
    return;
  usage(a, j);
  const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
  if (!ch)
    return;
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, "delta");
  if (llm_acc_add_text(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "content"))))
    return;
  const cJSON *tc;
  int pos = 0;
  cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(d, "tool_calls")) {
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(tc, "index");
    add_call(a, cJSON_IsNumber(ix) ? ix->valueint : pos, tc);
    pos++;
  }
  const char *fin = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ch, "finish_reason"));
  if (fin)
    a->stop = map_finish(fin);
}

void llm_openai_whole(struct llm_acc *a, const cJSON *j)
{
  if (error_object(a, j))
    return;
  usage(a, j);
  const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(ch, "message");
  if (llm_acc_add_text(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "content"))))
    return;
  const cJSON *tc;
  int pos = 0;
  cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(m, "tool_calls"))
    add_call(a, pos++, tc);
  a->stop = map_finish(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ch, "finish_reason")));
}
