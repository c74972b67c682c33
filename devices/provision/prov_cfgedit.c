/*
 * prov_cfgedit.c - adds or removes one object in the config's top-level
 * "devices" array by editing the text, so every other byte (formatting,
 * comments-free JSON, key order) stays as the operator wrote it. A small
 * scanner finds value spans; the result is re-parsed and compared with the
 * intended tree before anyone writes it. Layer: devices/provision.
 * Borrowed: entry. Owned by the caller: *out (free()).
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>

#include "mx_json.h"
#include "mx_util.h"

struct span {
  size_t s, e; /* [s, e) */
};

static size_t skip_ws(const char *t, size_t i)
{
  while (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')
    i++;
  return i;
}

static size_t skip_string(const char *t, size_t i)
{
  for (i++; t[i] && t[i] != '"'; i++)
    if (t[i] == '\\' && t[i + 1])
      i++;
  return t[i] ? i + 1 : i;
}

/* End of the value starting at i (the text is known to parse). */
static size_t skip_value(const char *t, size_t i)
{
  if (t[i] == '"')
    return skip_string(t, i);
  if (t[i] != '{' && t[i] != '[') {
    while (t[i] && !strchr(",}] \t\r\n", t[i]))
      i++;
    return i;
  }
  int depth = 0;
  while (t[i]) {
    if (t[i] == '"') {
      i = skip_string(t, i);
      continue;
    }
    if (t[i] == '{' || t[i] == '[')
      depth++;
    else if (t[i] == '}' || t[i] == ']')
      depth--;
    i++;
    if (depth == 0)
      break;
  }
  return i;
}

/* Finds "devices" in the top-level object: its value span, the end of the
 * last member's value (for appending) and the closing brace. */
static int find_devices(const char *t, struct span *val, size_t *last_end, size_t *close)
{
  size_t i = skip_ws(t, 0);
  int found = 0;
  *last_end = 0;
  if (t[i] != '{')
    return -1;
  i = skip_ws(t, i + 1);
  while (t[i] == '"') {
    size_t ks = i;
    i = skip_string(t, i);
    int is_dev = i - ks == 9 && memcmp(t + ks, "\"devices\"", 9) == 0;
    i = skip_ws(t, skip_ws(t, i) + 1); /* past ':' */
    size_t vs = i;
    i = skip_value(t, i);
    if (is_dev) {
      val->s = vs;
      val->e = i;
      found = 1;
    }
    *last_end = i;
    i = skip_ws(t, i);
    if (t[i] == ',')
      i = skip_ws(t, i + 1);
  }
  if (t[i] != '}')
    return -1;
  *close = i;
  return found;
}

/* Element spans of the array at a.s; returns how many (up to max). */
static int elements(const char *t, struct span a, struct span *el, int max)
{
  int n = 0;
  size_t i = skip_ws(t, a.s + 1);
  while (i < a.e && t[i] != ']' && n < max) {
    el[n].s = i;
    el[n].e = skip_value(t, i);
    i = skip_ws(t, el[n].e);
    if (t[i] == ',')
      i = skip_ws(t, i + 1);
    n++;
  }
  return n;
}

/* The entry as text: one member per line, nested values compact. */
static mx_err entry_text(const cJSON *entry, const char *ind, struct mx_buf *b)
{
  mx_err rc = mx_buf_adds(b, "{");
  const cJSON *m = NULL;
  cJSON_ArrayForEach(m, entry) {
    char *v = cJSON_PrintUnformatted(m);
    if (!v)
      return MX_ERR_NOMEM;
    if (!rc)
      rc = mx_buf_addf(b, "%s\n%s  ", m == entry->child ? "" : ",", ind);
    if (!rc)
      rc = mx_json_add_string(b, m->string);
    if (!rc)
      rc = mx_buf_addf(b, ": %s", v);
    cJSON_free(v);
  }
  if (!rc)
    rc = mx_buf_addf(b, "\n%s}", ind);
  return rc;
}

/* Indentation (spaces/tabs) before position p on its line. */
static void indent_at(const char *t, size_t p, char *ind, size_t cap)
{
  size_t s = p;
  while (s > 0 && (t[s - 1] == ' ' || t[s - 1] == '\t'))
    s--;
  size_t n = p - s < cap - 1 ? p - s : cap - 1;
  memcpy(ind, t + s, n);
  ind[n] = '\0';
}

static mx_err splice(const char *t, size_t at, size_t cut_end, const char *ins, char **out)
{
  struct mx_buf b = MX_BUF_INIT(PROV_CONFIG_MAX);
  mx_err rc = mx_buf_add(&b, t, at);
  if (!rc)
    rc = mx_buf_adds(&b, ins);
  if (!rc)
    rc = mx_buf_adds(&b, t + cut_end);
  if (rc)
    return rc;
  *out = mx_buf_take(&b);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

/* Re-parses out and checks it equals want; frees *out when not. */
static mx_err verify(char **out, const cJSON *want, char *err)
{
  cJSON *got = cJSON_Parse(*out);
  int ok = got && cJSON_Compare(got, want, 1);
  cJSON_Delete(got);
  if (ok)
    return MX_OK;
  free(*out);
  *out = NULL;
  return mx_fail(MX_ERR_INTERNAL, err, "config edit: the edited text does not parse to the intended configuration");
}

static mx_err build_add(const char *t, const cJSON *entry, char **out)
{
  struct span dv = { 0, 0 }, el[1024];
  size_t last_end = 0, close = 0;
  int found = find_devices(t, &dv, &last_end, &close);
  if (found < 0)
    return MX_ERR_INVALID;
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char ind[64] = "    ";
  mx_err rc = MX_OK;
  size_t at = 0;
  int n = found ? elements(t, dv, el, 1024) : 0;
  if (n > 0) {
    indent_at(t, el[n - 1].s, ind, sizeof(ind));
    at = el[n - 1].e;
    rc = mx_buf_addf(&b, ",\n%s", ind);
  } else if (found) {
    at = dv.s + 1;
    rc = mx_buf_addf(&b, "\n%s", ind);
  } else {
    at = last_end ? last_end : close;
    rc = mx_buf_addf(&b, "%s\n  \"devices\": [\n%s", last_end ? "," : "", ind);
  }
  if (!rc)
    rc = entry_text(entry, ind, &b);
  if (!rc && n == 0)
    rc = mx_buf_adds(&b, found ? "\n  " : "\n  ]");
  if (!rc && !found && !last_end)
    rc = mx_buf_adds(&b, "\n");
  size_t cut = (n == 0 && found) ? skip_ws(t, dv.s + 1) : at;
  if (!rc)
    rc = splice(t, at, cut, mx_buf_cstr(&b), out);
  mx_buf_release(&b);
  return rc;
}

mx_err prov_cfgedit_add(const char *text, const cJSON *entry, char **out, char *err)
{
  *out = NULL;
  cJSON *want = cJSON_Parse(text);
  cJSON *copy = cJSON_Duplicate(entry, 1);
  mx_err rc = MX_OK;
  if (!want || !cJSON_IsObject(want) || !copy) {
    rc = mx_fail(MX_ERR_CONFIG, err, "config edit: expected a JSON object");
    goto cleanup;
  }
  cJSON *devs = cJSON_GetObjectItemCaseSensitive(want, "devices");
  if (!devs) {
    devs = cJSON_AddArrayToObject(want, "devices");
    if (!devs) {
      rc = MX_ERR_NOMEM;
      goto cleanup;
    }
  }
  cJSON_AddItemToArray(devs, copy);
  copy = NULL;
  rc = build_add(text, entry, out);
  if (rc)
    rc = mx_fail(rc, err, "config edit: cannot locate the devices array");
  else
    rc = verify(out, want, err);
cleanup:
  cJSON_Delete(want);
  cJSON_Delete(copy);
  return rc;
}

static mx_err build_remove(const char *t, int idx, char **out)
{
  struct span dv = { 0, 0 }, el[1024];
  size_t last_end = 0, close = 0;
  if (find_devices(t, &dv, &last_end, &close) != 1)
    return MX_ERR_INVALID;
  int n = elements(t, dv, el, 1024);
  if (idx >= n)
    return MX_ERR_INVALID;
  if (idx > 0)
    return splice(t, el[idx - 1].e, el[idx].e, "", out);
  if (n > 1)
    return splice(t, el[0].s, el[1].s, "", out);
  return splice(t, dv.s + 1, dv.e - 1, "", out);
}

mx_err prov_cfgedit_remove(const char *text, const char *name, char **out, char *err)
{
  *out = NULL;
  cJSON *want = cJSON_Parse(text);
  cJSON *devs = want ? cJSON_GetObjectItemCaseSensitive(want, "devices") : NULL;
  int idx = -1, i = 0;
  const cJSON *d = NULL;
  cJSON_ArrayForEach(d, devs) {
    const char *n = mx_json_str(d, "name");
    if (idx < 0 && n && strcmp(n, name) == 0)
      idx = i;
    i++;
  }
  mx_err rc = MX_OK;
  if (idx < 0)
    rc = mx_fail(MX_ERR_NOT_FOUND, err, "devices: no device named '%s'", name);
  if (!rc) {
    cJSON_DeleteItemFromArray(devs, idx);
    rc = build_remove(text, idx, out);
    if (rc)
      rc = mx_fail(rc, err, "config edit: cannot locate devices[%d]", idx);
    else
      rc = verify(out, want, err);
  }
  cJSON_Delete(want);
  return rc;
}
