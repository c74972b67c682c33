/*
 * tools/policy/tools_policy_parse.c - manifest JSON -> struct tools_manifest,
 * strict: unknown keys, wrong types, relative roots, non-absolute argv0 and
 * any attempt to run an interpreter or shell.eval without approval fail to
 * load with the location of the problem. Format: docs/manifest.md.
 * Layer: tools/; common/ only. The cJSON input is borrowed.
 */
#include "tools_policy_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_buf.h"
#include "mx_json.h"
#include "mx_util.h"

#define MAX_TIMEOUT_MS (3600 * 1000)

static void free_root(struct policy_root *r)
{
  free(r->path);
  free(r->comps);
}

static void free_rule(struct policy_rule *r)
{
  free(r->where);
  free(r->argv0);
  for (int i = 0; i < r->npats; i++)
    free(r->pats[i]);
  free(r->pats);
  free(r->rest);
}

void tools_manifest_free(struct tools_manifest *m)
{
  if (!m)
    return;
  for (int i = 0; i < m->nread; i++) {
    if (m->read[i].fd >= 0)
      close(m->read[i].fd);
    free_root(&m->read[i]);
  }
  for (int i = 0; i < m->nwrite; i++) {
    if (m->write[i].fd >= 0)
      close(m->write[i].fd);
    free_root(&m->write[i]);
  }
  for (int i = 0; i < m->nrules; i++)
    free_rule(&m->rules[i]);
  for (int i = 0; i < m->ntools; i++)
    free(m->tools[i].name);
  free(m->read);
  free(m->write);
  free(m->rules);
  free(m->tools);
  free(m->source);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

/* Fails unless obj is an object and every member is one of the allowed keys.
 * (An array's items have no key: "paths": ["/var/log"] must be refused
 * here, not compared as a NULL name.) */
static mx_err check_keys(const cJSON *obj, const char *const *keys, const char *src, const char *where, char *err)
{
  const cJSON *it;
  if (!cJSON_IsObject(obj))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected an object", src, where);
  cJSON_ArrayForEach(it, obj) {
    int ok = 0;
    for (int k = 0; keys[k] && !ok; k++)
      ok = strcmp(keys[k], it->string) == 0;
    if (!ok)
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s: unknown key '%s'", src, where, it->string);
  }
  return MX_OK;
}

static mx_err parse_root(const cJSON *v, int windows, const char *src, const char *where, struct policy_root *out,
                         char *err)
{
  if (!cJSON_IsString(v))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected a path string", src, where);
  char *buf = malloc(strlen(v->valuestring) + 1);
  char *comps[POLICY_MAX_COMPS];
  int n = buf ? policy_split(v->valuestring, windows, buf, comps, POLICY_MAX_COMPS) : -1;
  for (int k = 0; k < n; k++)
    if (strcmp(comps[k], "..") == 0)
      n = -1;
  if (n < 0) {
    free(buf);
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected an absolute path without '..', got '%s'", src, where,
                   v->valuestring);
  }
  /* One allocation: the component pointers, then the strings. */
  size_t bytes = sizeof(char *) * (size_t)(n ? n : 1) + strlen(v->valuestring) + 1;
  out->comps = malloc(bytes);
  out->path = mx_strdup(v->valuestring);
  if (!out->comps || !out->path) {
    free(buf);
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  }
  char *strs = (char *)(out->comps + (n ? n : 1));
  size_t off = 0;
  for (int k = 0; k < n; k++) {
    size_t l = strlen(comps[k]);
    memcpy(strs + off, comps[k], l + 1);
    out->comps[k] = strs + off;
    off += l + 1;
  }
  out->ncomps = n;
  out->fd = -2;
  free(buf);
  return MX_OK;
}

static mx_err parse_roots(const cJSON *arr, int windows, const char *src, const char *name,
                          struct policy_root **out, int *nout, char *err)
{
  if (!arr)
    return MX_OK;
  if (!cJSON_IsArray(arr))
    return mx_fail(MX_ERR_CONFIG, err, "%s: paths.%s: expected an array of absolute paths", src, name);
  int n = cJSON_GetArraySize(arr);
  *out = calloc((size_t)(n ? n : 1), sizeof(**out));
  if (!*out)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  for (int i = 0; i < n; i++) {
    char where[64];
    snprintf(where, sizeof(where), "paths.%s[%d]", name, i);
    mx_err rc = parse_root(cJSON_GetArrayItem(arr, i), windows, src, where, &(*out)[i], err);
    (*nout)++; /* counted even on failure so free releases what was built */
    if (rc)
      return rc;
  }
  return MX_OK;
}

static mx_err parse_limits(const cJSON *obj, const char *src, const char *where, struct tools_limits *l, char *err)
{
  int64_t v;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "timeout_ms");
  if (t) {
    if (!mx_json_int(obj, "timeout_ms", &v) || v < 1 || v > MAX_TIMEOUT_MS)
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s.timeout_ms: expected an integer from 1 to %d", src, where,
                     MAX_TIMEOUT_MS);
    l->timeout_ms = (int)v;
  }
  t = cJSON_GetObjectItemCaseSensitive(obj, "max_output");
  if (t) {
    if (!mx_json_int(obj, "max_output", &v) || v < 1 || v > (int64_t)MX_BUF_MAX_TOOL_OUTPUT)
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s.max_output: expected an integer from 1 to %zu", src, where,
                     MX_BUF_MAX_TOOL_OUTPUT);
    l->max_output = (size_t)v;
  }
  return MX_OK;
}

/* tools.fs.write.file_mode: "0640"-style octal text (JSON has no octal).
 * Never world-writable, never setuid/setgid/sticky. */
static mx_err parse_file_mode(const cJSON *it, const char *src, const char *where,
                              const struct policy_kind_entry *k, struct tools_limits *l, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "file_mode");
  if (!v)
    return MX_OK;
  if (k->kind != PK_PATH_WRITE)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.file_mode: only fs.write creates files", src, where);
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  size_t n = strlen(s);
  int ok = n >= 3 && n <= 4 && strspn(s, "01234567") == n && (n == 3 || s[0] == '0');
  long mode = ok ? strtol(s, NULL, 8) : -1;
  if (!ok || (mode & 0002) || !(mode & 0600))
    return mx_fail(MX_ERR_CONFIG, err,
                   "%s: %s.file_mode: expected octal permission bits like \"0640\" (owner read-write, never "
                   "writable by others), got '%s'", src, where, cJSON_IsString(v) ? s : "(not a string)");
  l->file_mode = (int)mode;
  return MX_OK;
}

static mx_err parse_tool(const cJSON *it, const char *src, struct tools_manifest *m, char *err)
{
  static const char *const keys[] = {"approval", "timeout_ms", "max_output", "file_mode", NULL};
  char where[96];
  snprintf(where, sizeof(where), "tools.%s", it->string);
  const struct policy_kind_entry *k = policy_kind_of(it->string);
  if (!k && policy_renamed_tool(it->string))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: '%s' is now called '%s' (the same tool names on every backend); "
                   "rename it in the manifest", src, where, it->string, policy_renamed_tool(it->string));
  if (!k)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: unknown tool '%s'", src, where, it->string);
  if (!cJSON_IsObject(it))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected an object (use {} for the defaults)", src, where);
  mx_err rc = check_keys(it, keys, src, where, err);
  if (rc)
    return rc;
  struct policy_tool *t = &m->tools[m->ntools];
  t->limits = m->defaults;
  t->ask = k->default_ask;
  if (!(t->name = mx_strdup(it->string)))
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  m->ntools++;
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(it, "approval");
  if (a) {
    if (!cJSON_IsString(a) || (strcmp(a->valuestring, "auto") && strcmp(a->valuestring, "ask")))
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s.approval: expected 'auto' or 'ask'", src, where);
    t->ask = strcmp(a->valuestring, "ask") == 0;
    if (k->kind == PK_EVAL && !t->ask)
      return mx_fail(MX_ERR_CONFIG, err,
                     "%s: %s.approval: shell.eval runs a shell and always needs approval, got 'auto'", src, where);
  }
  rc = parse_file_mode(it, src, where, k, &t->limits, err);
  if (rc)
    return rc;
  return parse_limits(it, src, where, &t->limits, err);
}

static mx_err parse_tools(const cJSON *obj, const char *src, struct tools_manifest *m, char *err)
{
  if (!cJSON_IsObject(obj))
    return mx_fail(MX_ERR_CONFIG, err, "%s: tools: expected an object mapping tool names to settings", src);
  m->tools = calloc((size_t)cJSON_GetArraySize(obj) + 1, sizeof(*m->tools));
  if (!m->tools)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    mx_err rc = parse_tool(it, src, m, err);
    if (rc)
      return rc;
  }
  return MX_OK;
}

static mx_err parse_patterns(const cJSON *arr, const char *src, const char *where, struct policy_rule *r, char *err)
{
  if (!cJSON_IsArray(arr))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.args: expected an array with one pattern per argument", src, where);
  int n = cJSON_GetArraySize(arr);
  r->pats = calloc((size_t)(n ? n : 1), sizeof(char *));
  if (!r->pats)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  for (int i = 0; i < n; i++) {
    const cJSON *p = cJSON_GetArrayItem(arr, i);
    if (!cJSON_IsString(p))
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s.args[%d]: expected a pattern string", src, where, i);
    if (!(r->pats[i] = mx_strdup(p->valuestring)))
      return mx_fail(MX_ERR_NOMEM, err, "out of memory");
    r->npats++;
  }
  return MX_OK;
}

/* An argv0 that is, or (on this host) resolves to, an interpreter. */
static int resolves_to_interpreter(const char *argv0)
{
  if (tools_policy_is_interpreter(argv0))
    return 1;
  char real[PATH_MAX];
  return realpath(argv0, real) && tools_policy_is_interpreter(real);
}

static int abs_program(const char *a, int windows)
{
  if (!a)
    return 0;
  if (a[0] == '/')
    return 1;
  return windows && ((a[0] | 0x20) >= 'a' && (a[0] | 0x20) <= 'z') && a[1] == ':' && (a[2] == '/' || a[2] == '\\');
}

static mx_err parse_rule(const cJSON *v, enum tools_decision kind, const char *src, const char *where, int windows,
                         struct policy_rule *r, char *err)
{
  static const char *const keys[] = {"argv0", "args", "rest", "comment", NULL};
  if (!cJSON_IsObject(v))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected an object with argv0 and args", src, where);
  mx_err rc = check_keys(v, keys, src, where, err);
  if (rc)
    return rc;
  r->kind = kind;
  if (!(r->where = mx_strdup(where)))
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  const char *argv0 = mx_json_str(v, "argv0");
  if (!abs_program(argv0, windows) || strpbrk(argv0, "*?["))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.argv0: expected an absolute program path without wildcards, got '%s'",
                   src, where, argv0 ? argv0 : "(missing)");
  if (!(r->argv0 = mx_strdup(argv0)))
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  if (kind == TOOLS_ALLOW && resolves_to_interpreter(argv0))
    return mx_fail(MX_ERR_CONFIG, err,
                   "%s: %s.argv0: '%s' is an interpreter or escape hatch and always needs approval; "
                   "move the rule to commands.ask", src, where, argv0);
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(v, "args");
  if (!args && kind != TOOLS_DENY)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.args: missing (use [] for a program run without arguments)", src,
                   where);
  r->any_args = !args;
  if (args && (rc = parse_patterns(args, src, where, r, err)))
    return rc;
  const cJSON *rest = cJSON_GetObjectItemCaseSensitive(v, "rest");
  if (rest) {
    if (!cJSON_IsString(rest))
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s.rest: expected a pattern string for further arguments", src,
                     where);
    if (!(r->rest = mx_strdup(rest->valuestring)))
      return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  }
  return MX_OK;
}

static mx_err parse_commands(const cJSON *obj, const char *src, struct tools_manifest *m, char *err)
{
  static const char *const keys[] = {"deny", "ask", "allow", NULL};
  static const char *const names[] = {"deny", "ask", "allow"};
  static const enum tools_decision kinds[] = {TOOLS_DENY, TOOLS_ASK, TOOLS_ALLOW};
  if (!cJSON_IsObject(obj))
    return mx_fail(MX_ERR_CONFIG, err, "%s: commands: expected an object with deny, ask and allow lists", src);
  mx_err rc = check_keys(obj, keys, src, "commands", err);
  if (rc)
    return rc;
  int total = 0;
  for (int g = 0; g < 3; g++)
    total += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(obj, names[g]));
  m->rules = calloc((size_t)total + 1, sizeof(*m->rules));
  if (!m->rules)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  for (int g = 0; g < 3; g++) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, names[g]);
    if (arr && !cJSON_IsArray(arr))
      return mx_fail(MX_ERR_CONFIG, err, "%s: commands.%s: expected an array of rules", src, names[g]);
    for (int i = 0; arr && i < cJSON_GetArraySize(arr); i++) {
      char where[64];
      snprintf(where, sizeof(where), "commands.%s[%d]", names[g], i);
      rc = parse_rule(cJSON_GetArrayItem(arr, i), kinds[g], src, where, m->windows, &m->rules[m->nrules++], err);
      if (rc)
        return rc;
    }
  }
  return MX_OK;
}

static mx_err parse_body(const cJSON *json, const char *src, struct tools_manifest *m, char *err)
{
  static const char *const keys[] = {"version", "platform", "shell", "comment", "paths", "commands", "tools", "defaults", NULL};
  static const char *const shells[] = {"posix", "fish", "cmd", "powershell", NULL};
  static const char *const pkeys[] = {"read", "write", NULL};
  static const char *const dkeys[] = {"timeout_ms", "max_output", NULL};
  int64_t version = 0;
  if (!cJSON_IsObject(json))
    return mx_fail(MX_ERR_CONFIG, err, "%s: expected a JSON object", src);
  mx_err rc = check_keys(json, keys, src, "manifest", err);
  if (rc)
    return rc;
  if (!mx_json_int(json, "version", &version) || version != 1)
    return mx_fail(MX_ERR_CONFIG, err, "%s: version: expected 1", src);
  const char *platform = mx_json_str(json, "platform");
  if (platform && strcmp(platform, "linux") && strcmp(platform, "macos") && strcmp(platform, "windows"))
    return mx_fail(MX_ERR_CONFIG, err, "%s: platform: expected 'linux', 'macos' or 'windows', got '%s'", src, platform);
  m->windows = platform && strcmp(platform, "windows") == 0;
  /* The shell that re-parses an SSH command line; its quoting differs. */
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(json, "shell");
  m->shell = m->windows ? "cmd" : "posix";
  for (int i = 0; sh && shells[i]; i++)
    if (cJSON_IsString(sh) && strcmp(sh->valuestring, shells[i]) == 0)
      m->shell = shells[i], sh = NULL;
  if (sh)
    return mx_fail(MX_ERR_CONFIG, err, "%s: shell: expected 'posix', 'fish', 'cmd' or 'powershell', got '%s'", src,
                   cJSON_IsString(sh) ? sh->valuestring : "(not a string)");
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(json, "defaults");
  if (d && ((rc = check_keys(d, dkeys, src, "defaults", err)) || (rc = parse_limits(d, src, "defaults", &m->defaults, err))))
    return rc;
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(json, "paths");
  if (p && (rc = check_keys(p, pkeys, src, "paths", err)))
    return rc;
  if (p && (rc = parse_roots(cJSON_GetObjectItemCaseSensitive(p, "read"), m->windows, src, "read", &m->read, &m->nread, err)))
    return rc;
  if (p && (rc = parse_roots(cJSON_GetObjectItemCaseSensitive(p, "write"), m->windows, src, "write", &m->write,
                             &m->nwrite, err)))
    return rc;
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(json, "commands");
  if (c && (rc = parse_commands(c, src, m, err)))
    return rc;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(json, "tools");
  if (!t)
    return mx_fail(MX_ERR_CONFIG, err, "%s: tools: missing (list the tools this device enables)", src);
  return parse_tools(t, src, m, err);
}

mx_err tools_policy_parse(const cJSON *json, const char *source, struct tools_manifest **out, char *err)
{
  struct tools_manifest *m = calloc(1, sizeof(*m));
  if (!m)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  pthread_mutex_init(&m->mu, NULL);
  m->defaults.timeout_ms = 30000;
  m->defaults.max_output = 64 * 1024;
  m->source = mx_strdup(source ? source : "manifest");
  mx_err rc = m->source ? parse_body(json, m->source, m, err) : mx_fail(MX_ERR_NOMEM, err, "out of memory");
  if (rc) {
    tools_manifest_free(m);
    return rc;
  }
  *out = m;
  return MX_OK;
}

mx_err tools_policy_load(const char *path, struct tools_manifest **out, char *err)
{
  struct mx_buf b = MX_BUF_INIT(1024 * 1024);
  mx_err rc = mx_file_read(path, 1024 * 1024, &b, err);
  if (rc)
    return rc;
  cJSON *json = cJSON_ParseWithLength(b.buf ? b.buf : "", b.len);
  if (!json) {
    mx_buf_release(&b);
    return mx_fail(MX_ERR_CONFIG, err, "%s: not valid JSON", path);
  }
  const char *slash = strrchr(path, '/');
  rc = tools_policy_parse(json, slash ? slash + 1 : path, out, err);
  cJSON_Delete(json);
  mx_buf_release(&b);
  return rc;
}
