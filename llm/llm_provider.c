/*
 * llm_provider.c - request building and answer accumulation shared by the
 * three adapters (SSE and NDJSON framing, fragment assembly, argument
 * normalisation, error bodies); see llm_provider.h.
 * Layer: llm; no retries or routing here. cJSON trees are local.
 */
#include "llm_provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_util.h"

#define PART_MAX ((size_t)8 * 1024 * 1024)

static mx_err add_header(struct curl_slist **h, const char *fmt, const char *v)
{
  char line[1024];
  snprintf(line, sizeof(line), fmt, v);
  struct curl_slist *n = curl_slist_append(*h, line);
  memset(line, 0, sizeof(line)); /* may have held a key */
  if (!n)
    return MX_ERR_NOMEM;
  *h = n;
  return MX_OK;
}

static mx_err build_headers(const struct llm_provider_cfg *p, int stream, struct curl_slist **h)
{
  mx_err rc = add_header(h, "%s", "Content-Type: application/json");
  if (!rc)
    rc = add_header(h, "%s", "Expect:"); /* no 100-continue round trip */
  if (!rc && stream)
    rc = add_header(h, "%s", p->kind == LLM_KIND_OLLAMA ? "Accept: application/x-ndjson" : "Accept: text/event-stream");
  if (rc || !p->api_key)
    return rc;
  if (p->kind == LLM_KIND_ANTHROPIC) {
    rc = add_header(h, "x-api-key: %s", p->api_key);
    if (!rc)
      rc = add_header(h, "%s", "anthropic-version: 2023-06-01");
  } else {
    rc = add_header(h, "Authorization: Bearer %s", p->api_key);
  }
  return rc;
}

static const char *url_path(enum llm_kind k)
{
  switch (k) {
  case LLM_KIND_OPENAI:
    return "/chat/completions"; /* base_url ends in /v1, as with the SDKs */
  case LLM_KIND_ANTHROPIC:
    return "/v1/messages";
  case LLM_KIND_OLLAMA:
    return "/api/chat";
  }
  return "";
}

mx_err llm_provider_build(const struct llm_provider_cfg *p, const struct llm_chat_req *req, int stream,
                          struct mx_buf *url, struct curl_slist **headers, struct mx_buf *body, char *err)
{
  cJSON *j = NULL;
  switch (p->kind) {
  case LLM_KIND_OPENAI:
    j = llm_openai_body(p, req, stream);
    break;
  case LLM_KIND_ANTHROPIC:
    j = llm_anthropic_body(p, req, stream);
    break;
  case LLM_KIND_OLLAMA:
    j = llm_ollama_body(p, req, stream);
    break;
  }
  char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  size_t blen = strlen(p->base_url);
  while (blen && p->base_url[blen - 1] == '/')
    blen--;
  mx_err rc = txt ? MX_OK : MX_ERR_NOMEM;
  if (!rc)
    rc = mx_buf_adds(body, txt);
  if (!rc)
    rc = mx_buf_add(url, p->base_url, blen);
  if (!rc)
    rc = mx_buf_adds(url, url_path(p->kind));
  if (!rc)
    rc = build_headers(p, stream, headers);
  cJSON_free(txt);
  if (rc)
    return mx_fail(rc, err, "%s: cannot build the request: %s", p->name, mx_err_str(rc));
  return MX_OK;
}

void llm_acc_init(struct llm_acc *a, enum llm_kind kind)
{
  memset(a, 0, sizeof(*a));
  a->kind = kind;
  a->sse = kind != LLM_KIND_OLLAMA;
  mx_buf_init(&a->text, PART_MAX);
  mx_buf_init(&a->data, PART_MAX);
  for (size_t i = 0; i < LLM_MAX_CALLS; i++) {
    mx_buf_init(&a->frags[i].id, 256);
    mx_buf_init(&a->frags[i].name, 256);
    mx_buf_init(&a->frags[i].args, PART_MAX);
  }
}

void llm_acc_release(struct llm_acc *a)
{
  mx_buf_release(&a->text);
  mx_buf_release(&a->data);
  for (size_t i = 0; i < LLM_MAX_CALLS; i++) {
    mx_buf_release(&a->frags[i].id);
    mx_buf_release(&a->frags[i].name);
    mx_buf_release(&a->frags[i].args);
  }
}

struct llm_frag *llm_acc_frag(struct llm_acc *a, int index)
{
  if (index < 0 || index >= LLM_MAX_CALLS)
    return NULL;
  a->frags[index].used = 1;
  a->got_token = 1;
  return &a->frags[index];
}

mx_err llm_acc_add_text(struct llm_acc *a, const char *s)
{
  if (!s || !*s)
    return MX_OK;
  a->got_token = 1;
  return mx_buf_adds(&a->text, s);
}

static void dispatch(struct llm_acc *a, const char *data, size_t n)
{
  if (a->kind == LLM_KIND_OPENAI && n == 6 && memcmp(data, "[DONE]", 6) == 0) {
    a->done = 1;
    return;
  }
  cJSON *j = cJSON_ParseWithLength(data, n);
  if (!j)
    return; /* a line we do not understand is skipped, not fatal */
  switch (a->kind) {
  case LLM_KIND_OPENAI:
    llm_openai_event(a, j);
    break;
  case LLM_KIND_ANTHROPIC:
    llm_anthropic_event(a, j);
    break;
  case LLM_KIND_OLLAMA:
    llm_ollama_event(a, j);
    break;
  }
  cJSON_Delete(j);
}

int llm_acc_line(void *ctx, const char *line, size_t n)
{
  struct llm_acc *a = ctx;
  if (!a->sse) {
    if (n)
      dispatch(a, line, n);
    return 0;
  }
  if (n == 0) { /* blank line: end of one SSE event */
    if (a->data.len)
      dispatch(a, mx_buf_cstr(&a->data), a->data.len);
    mx_buf_reset(&a->data);
    a->event[0] = '\0';
    return 0;
  }
  if (line[0] == ':')
    return 0; /* comment / keep-alive */
  if (n >= 5 && memcmp(line, "data:", 5) == 0) {
    size_t off = (n > 5 && line[5] == ' ') ? 6 : 5;
    if (a->data.len && mx_buf_addc(&a->data, '\n'))
      return 1;
    return mx_buf_add(&a->data, line + off, n - off) ? 1 : 0;
  }
  if (n >= 6 && memcmp(line, "event:", 6) == 0) {
    size_t off = (n > 6 && line[6] == ' ') ? 7 : 6;
    snprintf(a->event, sizeof(a->event), "%.*s", (int)(n - off), line + off);
  }
  return 0;
}

mx_err llm_acc_body(struct llm_acc *a, const char *body, char *err)
{
  cJSON *j = cJSON_Parse(body);
  if (!j)
    return mx_fail(MX_ERR_HTTP, err, "the provider's answer is not JSON");
  switch (a->kind) {
  case LLM_KIND_OPENAI:
    llm_openai_whole(a, j);
    break;
  case LLM_KIND_ANTHROPIC:
    llm_anthropic_whole(a, j);
    break;
  case LLM_KIND_OLLAMA:
    llm_ollama_event(a, j); /* a whole answer is one NDJSON object with done:true */
    break;
  }
  cJSON_Delete(j);
  a->done = 1;
  return MX_OK;
}

static mx_err take_frag(struct llm_reply *out, struct llm_frag *f, size_t slot)
{
  char *args = NULL;
  char aerr[MX_ERRBUF_LEN];
  mx_err rc = llm_args_from_text(mx_buf_cstr(&f->args), &args, aerr);
  char *why = NULL;
  if (rc == MX_ERR_INVALID) {
    /* Keep the call in the conversation with {} and tell the model the
     * exact problem with the text it sent (first 200 bytes). */
    struct mx_buf b = MX_BUF_INIT(2048);
    if (mx_buf_addf(&b, "invalid arguments for %s: %s: '%.200s'", mx_buf_cstr(&f->name), aerr, args ? args : ""))
      return MX_ERR_NOMEM;
    why = mx_buf_take(&b);
    free(args);
    args = mx_strdup("{}");
    rc = (why && args) ? MX_OK : MX_ERR_NOMEM;
  }
  if (!rc)
    rc = llm_calls_push(&out->calls, &out->ncalls, mx_buf_cstr(&f->name), args);
  if (rc) {
    free(args);
    free(why);
    return rc;
  }
  if (why) {
    if (!out->call_errors && !(out->call_errors = calloc(LLM_MAX_CALLS, sizeof(char *)))) {
      free(why);
      return MX_ERR_NOMEM;
    }
    out->call_errors[slot] = why;
  }
  return MX_OK;
}

mx_err llm_acc_finish(struct llm_acc *a, int streamed, struct llm_reply *out, char *err)
{
  memset(out, 0, sizeof(*out));
  if (a->failed)
    return mx_fail(MX_ERR_HTTP, err, "error event in the answer: %s%s%s", a->err_type, a->err_type[0] ? ": " : "",
                   a->err_msg);
  if (streamed && !a->done)
    return mx_fail(MX_ERR_HTTP, err, "the stream ended before its end marker (%s)",
                   a->got_token ? "after some output" : "before any output");
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < LLM_MAX_CALLS; i++)
    if (a->frags[i].used && a->frags[i].name.len)
      rc = take_frag(out, &a->frags[i], out->ncalls);
  if (!rc && a->text.len && !(out->text = mx_strdup(mx_buf_cstr(&a->text))))
    rc = MX_ERR_NOMEM;
  if (rc) {
    llm_reply_free(out);
    return mx_fail(rc, err, "out of memory while reading the answer");
  }
  out->stop = out->ncalls ? LLM_STOP_TOOL_USE : a->stop;
  out->in_tokens = a->in_tokens;
  out->out_tokens = a->out_tokens;
  return MX_OK;
}

static void copy_str(char *dst, size_t n, const cJSON *v)
{
  const char *s = cJSON_GetStringValue(v);
  if (s)
    llm_copy(dst, n, s);
}

void llm_provider_error(const char *body, char *type, size_t tn, char *code, size_t cn, char *msg, size_t mn)
{
  type[0] = code[0] = msg[0] = '\0';
  cJSON *j = body ? cJSON_Parse(body) : NULL;
  const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
  if (cJSON_IsString(e)) {
    copy_str(msg, mn, e);
  } else if (cJSON_IsObject(e)) {
    copy_str(type, tn, cJSON_GetObjectItemCaseSensitive(e, "type"));
    copy_str(code, cn, cJSON_GetObjectItemCaseSensitive(e, "code"));
    copy_str(msg, mn, cJSON_GetObjectItemCaseSensitive(e, "message"));
  } else if (body && !j) {
    snprintf(msg, mn, "%.200s", body);
  }
  cJSON_Delete(j);
}

void llm_add_schema(cJSON *obj, const char *key, const char *schema_json)
{
  cJSON *s = schema_json ? cJSON_Parse(schema_json) : NULL;
  if (!cJSON_IsObject(s)) {
    cJSON_Delete(s);
    s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "type", "object");
  }
  cJSON_AddItemToObject(obj, key, s);
}

cJSON *llm_args_object(const char *args_json)
{
  cJSON *o = args_json ? cJSON_Parse(args_json) : NULL;
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    o = cJSON_CreateObject();
  }
  return o;
}

int64_t llm_json_i64(const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v) || v->valuedouble < -9e15 || v->valuedouble > 9e15)
    return 0;
  return (int64_t)v->valuedouble;
}

void llm_acc_append(struct llm_acc *a, struct mx_buf *b, const char *s)
{
  if (!s || a->failed || !mx_buf_adds(b, s))
    return;
  a->failed = 1;
  snprintf(a->err_type, sizeof(a->err_type), "too_large");
  snprintf(a->err_msg, sizeof(a->err_msg), "a part of the answer is over its size cap");
}
