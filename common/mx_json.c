/* mx_json.c - canonical JSON serializer (Matrix appendix "Canonical JSON")
 * and lookup helpers; see mx_json.h. */
#include "mx_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MX_JSON_MAX_SAFE 9007199254740991.0 /* 2^53 - 1 */

mx_err mx_json_add_string(struct mx_buf *out, const char *s)
{
  mx_err rc = mx_buf_addc(out, '"');
  for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
    switch (*p) {
    case '"': rc = mx_buf_adds(out, "\\\""); break;
    case '\\': rc = mx_buf_adds(out, "\\\\"); break;
    case '\b': rc = mx_buf_adds(out, "\\b"); break;
    case '\f': rc = mx_buf_adds(out, "\\f"); break;
    case '\n': rc = mx_buf_adds(out, "\\n"); break;
    case '\r': rc = mx_buf_adds(out, "\\r"); break;
    case '\t': rc = mx_buf_adds(out, "\\t"); break;
    default:
      if (*p < 0x20)
        rc = mx_buf_addf(out, "\\u%04x", *p);
      else
        rc = mx_buf_addc(out, (char)*p);
    }
  }
  return rc ? rc : mx_buf_addc(out, '"');
}

static int cmp_keys(const void *a, const void *b)
{
  const cJSON *x = *(const cJSON *const *)a;
  const cJSON *y = *(const cJSON *const *)b;
  return strcmp(x->string, y->string); /* bytewise == codepoint order in UTF-8 */
}

static mx_err canon(const cJSON *v, struct mx_buf *out, char *err, int depth, int top_for_signing);

static mx_err canon_object(const cJSON *v, struct mx_buf *out, char *err, int depth, int skip_sig)
{
  size_t n = 0;
  for (const cJSON *c = v->child; c; c = c->next)
    n++;
  const cJSON **items = n ? malloc(n * sizeof(*items)) : NULL;
  if (n && !items)
    return MX_ERR_NOMEM;
  size_t k = 0;
  for (const cJSON *c = v->child; c; c = c->next) {
    if (skip_sig && (strcmp(c->string, "signatures") == 0 || strcmp(c->string, "unsigned") == 0))
      continue;
    items[k++] = c;
  }
  if (k > 1)
    qsort(items, k, sizeof(*items), cmp_keys);
  mx_err rc = mx_buf_addc(out, '{');
  for (size_t i = 0; !rc && i < k; i++) {
    if (i > 0 && strcmp(items[i - 1]->string, items[i]->string) == 0) {
      rc = mx_fail(MX_ERR_INVALID, err, "duplicate key '%s' in object", items[i]->string);
      break;
    }
    if (i)
      rc = mx_buf_addc(out, ',');
    if (!rc)
      rc = mx_json_add_string(out, items[i]->string);
    if (!rc)
      rc = mx_buf_addc(out, ':');
    if (!rc)
      rc = canon(items[i], out, err, depth + 1, 0);
  }
  free(items);
  return rc ? rc : mx_buf_addc(out, '}');
}

static mx_err canon(const cJSON *v, struct mx_buf *out, char *err, int depth, int top_for_signing)
{
  if (depth > 64)
    return mx_fail(MX_ERR_INVALID, err, "json nested deeper than 64 levels");
  if (cJSON_IsNull(v))
    return mx_buf_adds(out, "null");
  if (cJSON_IsTrue(v))
    return mx_buf_adds(out, "true");
  if (cJSON_IsFalse(v))
    return mx_buf_adds(out, "false");
  if (cJSON_IsString(v))
    return mx_json_add_string(out, v->valuestring);
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (!isfinite(d) || floor(d) != d)
      return mx_fail(MX_ERR_INVALID, err, "canonical json allows integers only, got %g", d);
    if (d > MX_JSON_MAX_SAFE || d < -MX_JSON_MAX_SAFE)
      return mx_fail(MX_ERR_INVALID, err, "integer %.0f is outside +-(2^53-1)", d);
    return mx_buf_addf(out, "%lld", (long long)d);
  }
  if (cJSON_IsArray(v)) {
    mx_err rc = mx_buf_addc(out, '[');
    for (const cJSON *c = v->child; !rc && c; c = c->next) {
      if (c != v->child)
        rc = mx_buf_addc(out, ',');
      if (!rc)
        rc = canon(c, out, err, depth + 1, 0);
    }
    return rc ? rc : mx_buf_addc(out, ']');
  }
  if (cJSON_IsObject(v))
    return canon_object(v, out, err, depth, top_for_signing);
  return mx_fail(MX_ERR_INVALID, err, "value is not json");
}

mx_err mx_json_canonical(const cJSON *v, struct mx_buf *out, char *err)
{
  return canon(v, out, err, 0, 0);
}

mx_err mx_json_canonical_for_signing(const cJSON *obj, struct mx_buf *out, char *err)
{
  if (!cJSON_IsObject(obj))
    return mx_fail(MX_ERR_INVALID, err, "only a json object can be signed");
  return canon(obj, out, err, 0, 1);
}

const char *mx_json_str(const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *mx_json_obj(const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsObject(v) ? v : NULL;
}

const cJSON *mx_json_arr(const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsArray(v) ? v : NULL;
}

int mx_json_int(const cJSON *obj, const char *key, int64_t *out)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble
      || fabs(v->valuedouble) > MX_JSON_MAX_SAFE)
    return 0;
  *out = (int64_t)v->valuedouble;
  return 1;
}

const cJSON *mx_json_path(const cJSON *obj, const char *const *keys, int n)
{
  const cJSON *cur = obj;
  for (int i = 0; cur && i < n; i++)
    cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, keys[i]) : NULL;
  return cur;
}

static void wipe(cJSON *j)
{
  for (; j; j = j->next) {
    if (j->valuestring)
      memset(j->valuestring, 0, strlen(j->valuestring));
    if (j->string)
      memset(j->string, 0, strlen(j->string));
    wipe(j->child);
  }
}

void mx_json_delete_wiped(cJSON *j)
{
  if (!j)
    return;
  cJSON *next = j->next; /* wipe this tree only, not its siblings */
  j->next = NULL;
  wipe(j);
  j->next = next;
  cJSON_Delete(j);
}
