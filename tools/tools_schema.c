/*
 * tools/tools_schema.c - validates tool arguments against the catalog's JSON
 * Schema subset. The first problem is reported with its location, what was
 * expected and the bad value, because the text goes back to the model so it
 * can correct the call. Numbers must be integers where "integer" is asked
 * (the audit's canonical JSON has no floats).
 * Layer: tools/; common/ only. cJSON arguments are borrowed.
 */
#include "tools_schema.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "mx_util.h"

#define MAX_DEPTH 16

static const char *type_name(const cJSON *v)
{
  if (cJSON_IsString(v))
    return "a string";
  if (cJSON_IsBool(v))
    return "a boolean";
  if (cJSON_IsNull(v))
    return "null";
  if (cJSON_IsArray(v))
    return "an array";
  if (cJSON_IsObject(v))
    return "an object";
  if (cJSON_IsNumber(v))
    return v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9007199254740992.0 ? "an integer"
                                                                                                 : "a number";
  return "an invalid value";
}

/* A short quoted rendering of a value for messages. */
static void show(const cJSON *v, char *out, size_t n)
{
  char *s = cJSON_PrintUnformatted(v);
  if (!s) {
    snprintf(out, n, "?");
    return;
  }
  if (strlen(s) > 60)
    snprintf(out, n, "%.57s...", s);
  else
    snprintf(out, n, "%s", s);
  cJSON_free(s);
}

static int type_ok(const char *t, const cJSON *v)
{
  if (strcmp(t, "string") == 0)
    return cJSON_IsString(v);
  if (strcmp(t, "integer") == 0)
    return cJSON_IsNumber(v) && strcmp(type_name(v), "an integer") == 0;
  if (strcmp(t, "number") == 0)
    return cJSON_IsNumber(v);
  if (strcmp(t, "boolean") == 0)
    return cJSON_IsBool(v);
  if (strcmp(t, "object") == 0)
    return cJSON_IsObject(v);
  if (strcmp(t, "array") == 0)
    return cJSON_IsArray(v);
  return strcmp(t, "null") == 0 && cJSON_IsNull(v);
}

static mx_err validate(const cJSON *schema, const cJSON *v, const char *loc, int depth, char *err);

static mx_err check_string(const cJSON *schema, const cJSON *v, const char *loc, char *err)
{
  size_t len = strlen(v->valuestring);
  const cJSON *mn = cJSON_GetObjectItemCaseSensitive(schema, "minLength");
  const cJSON *mx = cJSON_GetObjectItemCaseSensitive(schema, "maxLength");
  const cJSON *pat = cJSON_GetObjectItemCaseSensitive(schema, "pattern");
  char shown[80];
  show(v, shown, sizeof(shown));
  if (!mx_utf8_valid(v->valuestring, len))
    return mx_fail(MX_ERR_INVALID, err, "%s: expected valid UTF-8 text", loc);
  if (cJSON_IsNumber(mn) && len < (size_t)mn->valuedouble)
    return mx_fail(MX_ERR_INVALID, err, "%s: expected at least %d characters, got %s", loc, mn->valueint, shown);
  if (cJSON_IsNumber(mx) && len > (size_t)mx->valuedouble)
    return mx_fail(MX_ERR_INVALID, err, "%s: expected at most %d characters, got %zu", loc, mx->valueint, len);
  if (cJSON_IsString(pat)) {
    regex_t re;
    if (regcomp(&re, pat->valuestring, REG_EXTENDED | REG_NOSUB) != 0)
      return mx_fail(MX_ERR_INTERNAL, err, "%s: schema pattern does not compile", loc);
    int m = regexec(&re, v->valuestring, 0, NULL, 0);
    regfree(&re);
    if (m != 0)
      return mx_fail(MX_ERR_INVALID, err, "%s: expected a value matching %s, got %s", loc, pat->valuestring, shown);
  }
  return MX_OK;
}

static mx_err check_number(const cJSON *schema, const cJSON *v, const char *loc, char *err)
{
  const cJSON *mn = cJSON_GetObjectItemCaseSensitive(schema, "minimum");
  const cJSON *mx = cJSON_GetObjectItemCaseSensitive(schema, "maximum");
  char shown[80];
  show(v, shown, sizeof(shown));
  if (cJSON_IsNumber(mn) && v->valuedouble < mn->valuedouble)
    return mx_fail(MX_ERR_INVALID, err, "%s: expected at least %.0f, got %s", loc, mn->valuedouble, shown);
  if (cJSON_IsNumber(mx) && v->valuedouble > mx->valuedouble)
    return mx_fail(MX_ERR_INVALID, err, "%s: expected at most %.0f, got %s", loc, mx->valuedouble, shown);
  return MX_OK;
}

static mx_err check_array(const cJSON *schema, const cJSON *v, const char *loc, int depth, char *err)
{
  int n = cJSON_GetArraySize(v);
  const cJSON *mn = cJSON_GetObjectItemCaseSensitive(schema, "minItems");
  const cJSON *mx = cJSON_GetObjectItemCaseSensitive(schema, "maxItems");
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
  if (cJSON_IsNumber(mn) && n < mn->valueint)
    return mx_fail(MX_ERR_INVALID, err, "%s: expected at least %d items, got %d", loc, mn->valueint, n);
  if (cJSON_IsNumber(mx) && n > mx->valueint)
    return mx_fail(MX_ERR_INVALID, err, "%s: expected at most %d items, got %d", loc, mx->valueint, n);
  for (int i = 0; cJSON_IsObject(items) && i < n; i++) {
    char sub[256];
    snprintf(sub, sizeof(sub), "%s[%d]", loc, i);
    mx_err rc = validate(items, cJSON_GetArrayItem(v, i), sub, depth + 1, err);
    if (rc)
      return rc;
  }
  return MX_OK;
}

/* "args: unknown property 'follow' (expected one of: path)" */
static mx_err unknown_property(const cJSON *props, const char *loc, const char *name, char *err)
{
  char allowed[200] = "";
  size_t used = 0;
  const cJSON *p;
  cJSON_ArrayForEach(p, props) {
    int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", used ? ", " : "", p->string);
    if (n < 0 || (size_t)n >= sizeof(allowed) - used)
      break;
    used += (size_t)n;
  }
  return mx_fail(MX_ERR_INVALID, err, "%s: unknown property '%.100s' (expected %s%s)", loc, name,
                 used ? "one of: " : "no properties", allowed);
}

static mx_err check_object(const cJSON *schema, const cJSON *v, const char *loc, int depth, char *err)
{
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
  const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
  const cJSON *addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
  const cJSON *r;
  cJSON_ArrayForEach(r, req) {
    if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(v, r->valuestring))
      return mx_fail(MX_ERR_INVALID, err, "%s: missing required property '%s'", loc, r->valuestring);
  }
  const cJSON *m;
  cJSON_ArrayForEach(m, v) {
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, m->string);
    char sub[256];
    snprintf(sub, sizeof(sub), "%s.%.100s", loc, m->string);
    if (!ps && cJSON_IsFalse(addl))
      return unknown_property(props, loc, m->string, err);
    mx_err rc = ps ? validate(ps, m, sub, depth + 1, err) : MX_OK;
    if (rc)
      return rc;
  }
  return MX_OK;
}

static mx_err check_enum(const cJSON *en, const cJSON *v, const char *loc, char *err)
{
  const cJSON *e;
  cJSON_ArrayForEach(e, en) {
    if (cJSON_Compare(e, v, 1))
      return MX_OK;
  }
  char shown[80], allowed[256];
  show(v, shown, sizeof(shown));
  show(en, allowed, sizeof(allowed));
  return mx_fail(MX_ERR_INVALID, err, "%s: expected one of %s, got %s", loc, allowed, shown);
}

static mx_err validate(const cJSON *schema, const cJSON *v, const char *loc, int depth, char *err)
{
  if (depth > MAX_DEPTH)
    return mx_fail(MX_ERR_INVALID, err, "%s: nested too deeply", loc);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");
  if (cJSON_IsString(type) && !type_ok(type->valuestring, v)) {
    char shown[80];
    show(v, shown, sizeof(shown));
    int vowel = strchr("aeiou", type->valuestring[0]) != NULL;
    return mx_fail(MX_ERR_INVALID, err, "%s: expected %s %s, got %s", loc, vowel ? "an" : "a", type->valuestring,
                   shown);
  }
  const cJSON *en = cJSON_GetObjectItemCaseSensitive(schema, "enum");
  if (cJSON_IsArray(en)) {
    mx_err rc = check_enum(en, v, loc, err);
    if (rc)
      return rc;
  }
  if (cJSON_IsString(v))
    return check_string(schema, v, loc, err);
  if (cJSON_IsNumber(v))
    return check_number(schema, v, loc, err);
  if (cJSON_IsArray(v))
    return check_array(schema, v, loc, depth, err);
  if (cJSON_IsObject(v))
    return check_object(schema, v, loc, depth, err);
  return MX_OK;
}

mx_err tools_schema_validate(const cJSON *schema, const cJSON *value, char *err)
{
  return validate(schema, value, "args", 0, err);
}
