/*
 * llm_cfgutil.c - helpers of the llm config parsers; see llm_cfgutil.h.
 * Layer: llm; common/ only. Input cJSON is borrowed, never kept.
 */
#include "llm_cfgutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_buf.h"
#include "mx_util.h"

#define KEY_FILE_MAX ((size_t)16 * 1024)


static int allowed(const char *key, const char *const *keys)
{
  for (size_t i = 0; keys[i]; i++)
    if (strcmp(key, keys[i]) == 0)
      return 1;
  return 0;
}

mx_err llm_cfg_keys(const cJSON *obj, const struct llm_cfg_loc *l, const char *const *keys, char *err)
{
  if (!cJSON_IsObject(obj))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected an object", l->file, l->path);
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    if (!allowed(it->string, keys))
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s: unknown key '%s'", l->file, l->path, it->string);
  }
  return MX_OK;
}

mx_err llm_cfg_str(const cJSON *obj, const struct llm_cfg_loc *l, const char *key, int required, char **out, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    if (required)
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s.%s: required key is missing", l->file, l->path, key);
    return MX_OK;
  }
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.%s: expected a non-empty string", l->file, l->path, key);
  free(*out);
  *out = mx_strdup(v->valuestring);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

mx_err llm_cfg_int(const cJSON *obj, const struct llm_cfg_loc *l, const char *key, int64_t lo, int64_t hi, int64_t *out,
                      char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v)
    return MX_OK; /* keep the default */
  double d = cJSON_GetNumberValue(v);
  if (!cJSON_IsNumber(v) || d != floor(d) || d < (double)lo || d > (double)hi) {
    char *txt = cJSON_PrintUnformatted(v);
    mx_err rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.%s: expected an integer from %lld to %lld, got '%s'", l->file,
                        l->path, key, (long long)lo, (long long)hi, txt ? txt : "?");
    cJSON_free(txt);
    return rc;
  }
  *out = (int64_t)d;
  return MX_OK;
}

mx_err llm_cfg_num(const cJSON *obj, const struct llm_cfg_loc *l, const char *key, double *out, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v)
    return MX_OK;
  if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
    char *txt = cJSON_PrintUnformatted(v);
    mx_err rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.%s: expected a number >= 0, got '%s'", l->file, l->path, key,
                        txt ? txt : "?");
    cJSON_free(txt);
    return rc;
  }
  *out = v->valuedouble;
  return MX_OK;
}

mx_err llm_cfg_int_i(const cJSON *obj, const struct llm_cfg_loc *l, const char *key, int64_t lo, int64_t hi, int *out,
                        char *err)
{
  int64_t v = *out;
  mx_err rc = llm_cfg_int(obj, l, key, lo, hi, &v, err);
  *out = (int)v;
  return rc;
}

/* Paths are for messages only: a very long one is cut, never overflowed. */
void llm_cfg_path(struct llm_cfg_loc *l, const char *fmt, ...)
{
  char tmp[sizeof(l->path)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  memcpy(l->path, tmp, sizeof(tmp));
}

void llm_cfg_sub(struct llm_cfg_loc *child, const struct llm_cfg_loc *parent, const char *fmt, const char *name, long idx)
{
  child->file = parent->file;
  child->base_dir = parent->base_dir;
  if (idx >= 0)
    llm_cfg_path(child, "%s[%ld]", parent->path, idx);
  else if (fmt)
    llm_cfg_path(child, "%s.%s", parent->path, name);
}


/* Reads the key from a file or the environment; the value is never quoted in
 * a message, only its source. */
mx_err llm_cfg_secret(const cJSON *p, const struct llm_cfg_loc *l, char **key, char *err)
{
  char *file = NULL, *env = NULL;
  *key = NULL;
  mx_err rc = llm_cfg_str(p, l, "api_key_file", 0, &file, err);
  if (!rc)
    rc = llm_cfg_str(p, l, "api_key_env", 0, &env, err);
  if (!rc && file && env)
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected only one of api_key_file and api_key_env", l->file, l->path);
  char *full = NULL;
  if (!rc && file && !(full = mx_path_join(l->base_dir, file)))
    rc = MX_ERR_NOMEM;
  if (!rc && file) {
    struct mx_buf b = MX_BUF_INIT(KEY_FILE_MAX);
    char ferr[MX_ERRBUF_LEN];
    if (mx_file_read(full, KEY_FILE_MAX, &b, ferr)) {
      rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.api_key_file: cannot read '%s'", l->file, l->path, file);
    } else {
      *key = mx_buf_take(&b);
      if (*key)
        mx_rtrim(*key);
      if (!*key || !(*key)[0])
        rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.api_key_file: '%s' is empty", l->file, l->path, file);
    }
    mx_buf_release(&b);
  }
  if (!rc && env) {
    const char *v = getenv(env);
    if (!v || !v[0])
      rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.api_key_env: environment variable '%s' is not set", l->file, l->path,
                   env);
    else if (!(*key = mx_strdup(v)))
      rc = MX_ERR_NOMEM;
  }
  free(full);
  free(file);
  free(env);
  return rc;
}

char *llm_cfg_dir_of(const char *file)
{
  const char *slash = file ? strrchr(file, '/') : NULL;
  if (!slash)
    return NULL;
  size_t n = slash == file ? 1 : (size_t)(slash - file);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, file, n);
    d[n] = '\0';
  }
  return d;
}
