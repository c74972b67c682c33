/*
 * llm_msg.c - the internal conversation shape, argument normalisation, our
 * tool-call ids and text-embedded call extraction; see llm_msg.h.
 * Layer: llm; calls only common/ and cJSON. Every cJSON tree built here is
 * owned locally and deleted before return.
 */
#include "llm_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_crypto.h"
#include "mx_util.h"

void llm_conv_init(struct llm_conv *c)
{
  memset(c, 0, sizeof(*c));
}

void llm_calls_free(struct llm_tool_call *calls, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(calls[i].name);
    free(calls[i].args_json);
  }
  free(calls);
}

static void msg_free(struct llm_msg *m)
{
  free(m->text);
  free(m->tool_name);
  llm_calls_free(m->calls, m->ncalls);
  memset(m, 0, sizeof(*m));
}

void llm_conv_free(struct llm_conv *c)
{
  for (size_t i = 0; i < c->n; i++)
    msg_free(&c->v[i]);
  free(c->v);
  llm_conv_init(c);
}

static struct llm_msg *conv_push(struct llm_conv *c)
{
  if (c->n == c->cap) {
    size_t ncap = c->cap ? c->cap * 2 : 16;
    struct llm_msg *nv = realloc(c->v, ncap * sizeof(*nv));
    if (!nv)
      return NULL;
    c->v = nv;
    c->cap = ncap;
  }
  struct llm_msg *m = &c->v[c->n++];
  memset(m, 0, sizeof(*m));
  return m;
}

static mx_err dup_or_null(const char *s, char **out)
{
  *out = NULL;
  if (!s)
    return MX_OK;
  *out = mx_strdup(s);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

mx_err llm_conv_add_user(struct llm_conv *c, const char *text)
{
  struct llm_msg *m = conv_push(c);
  if (!m)
    return MX_ERR_NOMEM;
  m->role = LLM_ROLE_USER;
  if (dup_or_null(text ? text : "", &m->text)) {
    c->n--;
    return MX_ERR_NOMEM;
  }
  return MX_OK;
}

static mx_err copy_calls(const struct llm_tool_call *calls, size_t n, struct llm_tool_call **out)
{
  *out = NULL;
  if (!n)
    return MX_OK;
  struct llm_tool_call *v = calloc(n, sizeof(*v));
  if (!v)
    return MX_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    memcpy(v[i].id, calls[i].id, sizeof(v[i].id));
    v[i].name = mx_strdup(calls[i].name ? calls[i].name : "");
    v[i].args_json = mx_strdup(calls[i].args_json ? calls[i].args_json : "{}");
    if (!v[i].name || !v[i].args_json) {
      llm_calls_free(v, i + 1);
      return MX_ERR_NOMEM;
    }
  }
  *out = v;
  return MX_OK;
}

mx_err llm_conv_add_assistant(struct llm_conv *c, const char *text,
                              const struct llm_tool_call *calls, size_t ncalls)
{
  struct llm_msg *m = conv_push(c);
  if (!m)
    return MX_ERR_NOMEM;
  m->role = LLM_ROLE_ASSISTANT;
  if (dup_or_null(text, &m->text) || copy_calls(calls, ncalls, &m->calls)) {
    msg_free(m);
    c->n--;
    return MX_ERR_NOMEM;
  }
  m->ncalls = ncalls;
  return MX_OK;
}

mx_err llm_conv_add_tool(struct llm_conv *c, const char *call_id, const char *name,
                         const char *text, int is_error)
{
  struct llm_msg *m = conv_push(c);
  if (!m)
    return MX_ERR_NOMEM;
  m->role = LLM_ROLE_TOOL;
  m->is_error = is_error;
  llm_copy(m->call_id, sizeof(m->call_id), call_id ? call_id : "");
  if (dup_or_null(text ? text : "", &m->text) || dup_or_null(name ? name : "", &m->tool_name)) {
    msg_free(m);
    c->n--;
    return MX_ERR_NOMEM;
  }
  return MX_OK;
}

void llm_conv_remove(struct llm_conv *c, size_t i)
{
  if (i >= c->n)
    return;
  msg_free(&c->v[i]);
  memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof(c->v[0]));
  c->n--;
}

void llm_reply_free(struct llm_reply *r)
{
  free(r->text);
  for (size_t i = 0; r->call_errors && i < r->ncalls; i++)
    free(r->call_errors[i]);
  free(r->call_errors);
  llm_calls_free(r->calls, r->ncalls);
  memset(r, 0, sizeof(*r));
}

mx_err llm_new_call_id(char out[10])
{
  return mx_random_alnum(out, 9);
}

mx_err llm_calls_push(struct llm_tool_call **calls, size_t *n, const char *name, char *args_json)
{
  struct llm_tool_call *nv = realloc(*calls, (*n + 1) * sizeof(*nv));
  if (!nv)
    return MX_ERR_NOMEM;
  *calls = nv;
  struct llm_tool_call *c = &nv[*n];
  memset(c, 0, sizeof(*c));
  c->name = mx_strdup(name ? name : "");
  if (!c->name || llm_new_call_id(c->id)) {
    free(c->name);
    return MX_ERR_NOMEM;
  }
  c->args_json = args_json;
  (*n)++;
  return MX_OK;
}

mx_err llm_args_from_text(const char *text, char **out, char *err)
{
  *out = NULL;
  const char *p = text ? text : "";
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
    p++;
  if (!*p) {
    *out = mx_strdup("{}");
    return *out ? MX_OK : MX_ERR_NOMEM;
  }
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithOpts(p, &end, 1);
  if (!j) {
    size_t off = end ? (size_t)(end - p) : 0;
    *out = mx_strdup(p);
    return mx_fail(MX_ERR_INVALID, err, "arguments are not valid JSON (error near byte %zu of %zu)",
                   off, strlen(p));
  }
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    *out = mx_strdup(p);
    return mx_fail(MX_ERR_INVALID, err, "arguments must be a JSON object, got '%.40s'", p);
  }
  *out = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

mx_err llm_args_normalise(const cJSON *v, char **out, char *err)
{
  *out = NULL;
  if (!v || cJSON_IsNull(v))
    return llm_args_from_text("", out, err);
  if (cJSON_IsString(v))
    return llm_args_from_text(v->valuestring, out, err);
  if (cJSON_IsObject(v)) {
    *out = cJSON_PrintUnformatted(v);
    return *out ? MX_OK : MX_ERR_NOMEM;
  }
  char *raw = cJSON_PrintUnformatted(v);
  *out = raw;
  return mx_fail(MX_ERR_INVALID, err, "arguments must be a JSON object, got '%.40s'", raw ? raw : "?");
}

static int known_name(const char *name, const char *const *known, size_t nknown)
{
  for (size_t i = 0; name && i < nknown; i++)
    if (strcmp(name, known[i]) == 0)
      return 1;
  return 0;
}

/* One {"name":..,"arguments"|"parameters":..} object -> a call. */
static int take_json_call(struct llm_reply *r, const char *json, size_t len,
                          const char *const *known, size_t nknown)
{
  cJSON *j = cJSON_ParseWithLength(json, len);
  int ok = 0;
  const char *name = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name")) : NULL;
  if (name && known_name(name, known, nknown)) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "arguments");
    if (!a)
      a = cJSON_GetObjectItemCaseSensitive(j, "parameters");
    char *args = NULL;
    char aerr[MX_ERRBUF_LEN];
    if (llm_args_normalise(a, &args, aerr) == MX_OK && llm_calls_push(&r->calls, &r->ncalls, name, args) == MX_OK)
      ok = 1;
    else
      free(args);
  }
  cJSON_Delete(j);
  return ok;
}

/* A reply that is one bare JSON call, optionally in a ```json fence. */
static int take_bare_call(struct llm_reply *r, const char *const *known, size_t nknown)
{
  const char *s = r->text;
  while (*s == ' ' || *s == '\n' || *s == '`')
    s++;
  if (strncmp(s, "json", 4) == 0)
    s += 4;
  while (*s == ' ' || *s == '\n')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '`'))
    n--;
  if (!n || s[0] != '{' || !take_json_call(r, s, n, known, nknown))
    return 0;
  free(r->text);
  r->text = NULL;
  r->stop = LLM_STOP_TOOL_USE;
  return 1;
}

int llm_extract_text_calls(struct llm_reply *r, const char *const *known, size_t nknown)
{
  if (!r->text || r->ncalls)
    return 0;
  static const char open_tag[] = "<tool_call>", close_tag[] = "</tool_call>";
  struct mx_buf rest = MX_BUF_INIT(MX_BUF_MAX_HTTP); /* the text around the tags */
  const char *p = r->text;
  int found = 0;
  const char *o;
  while ((o = strstr(p, open_tag)) != NULL) {
    const char *body = o + sizeof(open_tag) - 1;
    const char *cl = strstr(body, close_tag);
    if (!cl)
      break;
    int took = take_json_call(r, body, (size_t)(cl - body), known, nknown);
    found |= took;
    /* a block that is not a call of a known tool stays in the text */
    const char *keep_to = took ? o : cl + sizeof(close_tag) - 1;
    if (mx_buf_add(&rest, p, (size_t)(keep_to - p)))
      return found;
    p = cl + sizeof(close_tag) - 1;
  }
  if (!found) {
    mx_buf_release(&rest);
    return take_bare_call(r, known, nknown);
  }
  if (mx_buf_adds(&rest, p) == MX_OK) {
    free(r->text);
    r->text = mx_buf_take(&rest);
    mx_rtrim(r->text);
  }
  mx_buf_release(&rest);
  r->stop = LLM_STOP_TOOL_USE;
  return 1;
}

int64_t llm_msg_tokens(const struct llm_msg *m)
{
  size_t chars = m->text ? strlen(m->text) : 0;
  for (size_t i = 0; i < m->ncalls; i++)
    chars += strlen(m->calls[i].name) + strlen(m->calls[i].args_json) + 16;
  return (int64_t)(chars + 3) / 4 + 6;
}

mx_err llm_msg_to_json(const struct llm_msg *m, char **out)
{
  *out = NULL;
  cJSON *j = cJSON_CreateObject();
  if (!j)
    return MX_ERR_NOMEM;
  cJSON_AddNumberToObject(j, "role", m->role);
  if (m->text)
    cJSON_AddStringToObject(j, "text", m->text);
  if (m->role == LLM_ROLE_TOOL) {
    cJSON_AddStringToObject(j, "call_id", m->call_id);
    cJSON_AddStringToObject(j, "tool_name", m->tool_name ? m->tool_name : "");
    cJSON_AddBoolToObject(j, "is_error", m->is_error);
  }
  if (m->ncalls) {
    cJSON *arr = cJSON_AddArrayToObject(j, "calls");
    for (size_t i = 0; arr && i < m->ncalls; i++) {
      cJSON *c = cJSON_CreateObject();
      cJSON_AddItemToArray(arr, c);
      cJSON_AddStringToObject(c, "id", m->calls[i].id);
      cJSON_AddStringToObject(c, "name", m->calls[i].name);
      cJSON_AddStringToObject(c, "args", m->calls[i].args_json);
    }
  }
  *out = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

mx_err llm_msg_from_json(const char *json, struct llm_conv *c, char *err)
{
  cJSON *j = cJSON_Parse(json);
  if (!j)
    return mx_fail(MX_ERR_INVALID, err, "history: stored message is not JSON");
  mx_err rc = MX_OK;
  const cJSON *rv = cJSON_GetObjectItemCaseSensitive(j, "role");
  int role = cJSON_IsNumber(rv) ? rv->valueint : -1;
  const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "text"));
  if (role == LLM_ROLE_USER) {
    rc = llm_conv_add_user(c, text);
  } else if (role == LLM_ROLE_TOOL) {
    rc = llm_conv_add_tool(c, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "call_id")),
                           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "tool_name")), text,
                           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "is_error")));
  } else if (role == LLM_ROLE_ASSISTANT) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "calls");
    size_t n = (size_t)cJSON_GetArraySize(arr);
    struct llm_tool_call *calls = n ? calloc(n, sizeof(*calls)) : NULL;
    if (n && !calls) {
      cJSON_Delete(j);
      return MX_ERR_NOMEM;
    }
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
      const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id"));
      llm_copy(calls[i].id, sizeof(calls[i].id), id ? id : "");
      calls[i].name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
      calls[i].args_json = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "args"));
      i++;
    }
    rc = llm_conv_add_assistant(c, text, calls, n);
    free(calls); /* strings were borrowed from j and copied */
  } else {
    rc = mx_fail(MX_ERR_INVALID, err, "history: stored message has an unknown role");
  }
  cJSON_Delete(j);
  return rc;
}

void llm_copy(char *dst, size_t n, const char *src)
{
  if (!n)
    return;
  size_t k = src ? strlen(src) : 0;
  if (k >= n)
    k = n - 1;
  if (k)
    memcpy(dst, src, k);
  dst[k] = '\0';
}
