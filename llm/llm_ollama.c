/*
 * llm_ollama.c - the ollama kind: native /api/chat body (arguments as
 * objects, no call ids, tool results carry tool_name) and its NDJSON chunks
 * (a whole answer is the same object with done:true).
 * Layer: llm. Trees built here are returned owned (body) or borrowed (j).
 */
#include <stdio.h>
#include <string.h>

#include "llm_provider.h"

static void add_msg(cJSON *msgs, const struct llm_msg *m)
{
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToArray(msgs, o);
  if (m->role == LLM_ROLE_TOOL) {
    cJSON_AddStringToObject(o, "role", "tool");
    cJSON_AddStringToObject(o, "tool_name", m->tool_name ? m->tool_name : "");
    cJSON_AddStringToObject(o, "content", m->text ? m->text : "");
    return;
  }
  cJSON_AddStringToObject(o, "role", m->role == LLM_ROLE_USER ? "user" : "assistant");
  cJSON_AddStringToObject(o, "content", m->text ? m->text : "");
  if (!m->ncalls)
    return;
  cJSON *arr = cJSON_AddArrayToObject(o, "tool_calls");
  for (size_t i = 0; i < m->ncalls; i++) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, c);
    cJSON *f = cJSON_AddObjectToObject(c, "function");
    cJSON_AddStringToObject(f, "name", m->calls[i].name);
    cJSON_AddItemToObject(f, "arguments", llm_args_object(m->calls[i].args_json));
  }
}

cJSON *llm_ollama_body(const struct llm_provider_cfg *p, const struct llm_chat_req *req, int stream)
{
  cJSON *b = cJSON_CreateObject();
  cJSON_AddStringToObject(b, "model", p->model);
  cJSON *msgs = cJSON_AddArrayToObject(b, "messages");
  if (req->system) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddItemToArray(msgs, s);
    cJSON_AddStringToObject(s, "role", "system");
    cJSON_AddStringToObject(s, "content", req->system);
  }
  for (size_t i = 0; i < req->conv->n; i++)
    add_msg(msgs, &req->conv->v[i]);
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
  }
  cJSON_AddBoolToObject(b, "stream", stream);
  cJSON_AddNumberToObject(cJSON_AddObjectToObject(b, "options"), "num_predict", (double)p->max_tokens);
  return b;
}

void llm_ollama_event(struct llm_acc *a, const cJSON *j)
{
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  if (e) {
    a->failed = 1;
    snprintf(a->err_type, sizeof(a->err_type), "error");
    llm_copy(a->err_msg, sizeof(a->err_msg), cJSON_IsString(e) ? e->valuestring : "error");
    return;
  }
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
  if (llm_acc_add_text(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "content"))))
    return;
  const cJSON *tc;
  cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) {
    /* No ids and whole calls: each one takes the next free slot. */
    int slot = 0;
    while (slot < LLM_MAX_CALLS && a->frags[slot].used)
      slot++;
    struct llm_frag *f = llm_acc_frag(a, slot);
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fn, "name"));
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    if (!f || !name || mx_buf_adds(&f->name, name))
      continue;
    char *t = cJSON_IsString(args) ? NULL : cJSON_PrintUnformatted(args);
    llm_acc_append(a, &f->args, cJSON_IsString(args) ? args->valuestring : (t ? t : ""));
    cJSON_free(t);
  }
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "done"))) {
    a->done = 1;
    const char *r = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "done_reason"));
    a->stop = (r && strcmp(r, "length") == 0) ? LLM_STOP_TRUNCATED : LLM_STOP_END;
    a->in_tokens = llm_json_i64(j, "prompt_eval_count");
    a->out_tokens = llm_json_i64(j, "eval_count");
  }
}
