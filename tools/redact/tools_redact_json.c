/*
 * tools/redact/tools_redact_json.c - redaction of tool arguments as a tree:
 * each string value on its own (so a secret never merges with JSON syntax),
 * in the mode for text that will run, plus the argv context one string
 * alone lacks (mysql's -pSECRET). The copy keeps the call's structure, so
 * the audit and the approval notice show exactly what runs.
 * Layer: tools/redact; common/ only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools_redact.h"

static int is_mysql(const cJSON *argv0)
{
  const char *s = cJSON_IsString(argv0) ? argv0->valuestring : NULL;
  const char *base = s ? strrchr(s, '/') : NULL;
  base = base ? base + 1 : s;
  return base && (strncmp(base, "mysql", 5) == 0 || strncmp(base, "mariadb", 7) == 0);
}

/* "-pSECRET" -> "-p" + tag; 0 on out of memory. */
static int mask_glued_p(const struct tools_redactor *r, cJSON *v)
{
  const char *s = v->valuestring;
  char tag[96], out[112];
  tools_redact_tag(r, "password", s + 2, strlen(s + 2), tag, sizeof(tag));
  snprintf(out, sizeof(out), "-p%s", tag);
  return cJSON_SetValuestring(v, out) != NULL;
}

static int walk(const struct tools_redactor *r, cJSON *v, int in_mysql_argv)
{
  if (cJSON_IsString(v)) {
    if (in_mysql_argv && strncmp(v->valuestring, "-p", 2) == 0 && v->valuestring[2])
      return mask_glued_p(r, v);
    char *red = tools_redact_ex(r, v->valuestring, strlen(v->valuestring), TOOLS_REDACT_EXEC, NULL, NULL);
    int ok = red && (strcmp(red, v->valuestring) == 0 || cJSON_SetValuestring(v, red));
    free(red);
    return ok;
  }
  int mysql = cJSON_IsArray(v) && is_mysql(cJSON_GetArrayItem(v, 0));
  int first = 1;
  cJSON *c;
  cJSON_ArrayForEach(c, v) {
    if (!walk(r, c, mysql && !first))
      return 0;
    first = 0;
  }
  return 1;
}

cJSON *tools_redact_json(const struct tools_redactor *r, const cJSON *v)
{
  cJSON *copy = v ? cJSON_Duplicate(v, 1) : NULL;
  if (copy && !walk(r, copy, 0)) {
    cJSON_Delete(copy);
    return NULL;
  }
  return copy;
}
