/*
 * llm/stt/llm_stt_config.c - the `speech` config block: strict parsing
 * (unknown keys are errors), defaults per provider, the API key read from a
 * file or an environment variable. Errors name FILE: PATH.key and quote the
 * bad value, except the key itself, which is never quoted or logged.
 * Layer: llm/; common/ and cJSON only. The cJSON block is borrowed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_stt.h"
#include "mx_buf.h"
#include "mx_util.h"

struct loc {
  const char *file;
  const char *path;
};

static const char *const known_keys[] = {"provider", "base_url",  "model",          "language", "prompt",
                                         "api_key_file", "api_key_env", "command", "convert", "max_bytes",
                                         "max_duration_s", "timeout_s", "max_output_bytes", "opusdec", "sox",
                                         "tmp_dir", NULL};

void llm_stt_config_each_key(void (*fn)(void *ctx, const char *path), void *ctx)
{
  char path[64];
  for (const char *const *k = known_keys; *k; k++) {
    snprintf(path, sizeof(path), "speech.%s", *k);
    fn(ctx, path);
  }
}

void llm_stt_config_init(struct llm_stt_config *c)
{
  memset(c, 0, sizeof *c);
  c->convert = -1;
  c->max_bytes = LLM_STT_MAX_BYTES;
  c->max_duration_s = LLM_STT_MAX_DURATION_S;
  c->timeout_s = LLM_STT_TIMEOUT_S;
  c->max_output = LLM_STT_MAX_OUTPUT;
}

void llm_stt_config_release(struct llm_stt_config *c)
{
  if (c->api_key) {
    /* The key is a secret: do not leave it in freed memory. */
    memset(c->api_key, 0, strlen(c->api_key));
  }
  free(c->api_key);
  free(c->base_url);
  free(c->model);
  free(c->language);
  free(c->prompt);
  for (size_t i = 0; i < c->command_n; i++)
    free(c->command[i]);
  free(c->command);
  free(c->opusdec);
  free(c->sox);
  free(c->tmp_dir);
  llm_stt_config_init(c);
}

const char *llm_stt_provider_name(enum llm_stt_provider p)
{
  switch (p) {
  case LLM_STT_OPENAI:
    return "openai";
  case LLM_STT_WHISPER_CPP:
    return "whisper.cpp";
  case LLM_STT_COMMAND:
    return "command";
  }
  return "?";
}

static mx_err check_keys(const cJSON *o, const struct loc *l, char *err)
{
  const cJSON *it;

  if (!cJSON_IsObject(o))
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected an object", l->file, l->path);
  cJSON_ArrayForEach(it, o) {
    int found = 0;
    for (size_t i = 0; known_keys[i] && !found; i++)
      found = strcmp(it->string, known_keys[i]) == 0;
    if (!found)
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s: unknown key '%s'", l->file, l->path, it->string);
  }
  return MX_OK;
}

/* Optional string: *out stays NULL when absent. */
static mx_err get_str(const cJSON *o, const char *key, const struct loc *l, char **out, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

  if (!v)
    return MX_OK;
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.%s: expected a non-empty string", l->file, l->path, key);
  *out = mx_strdup(v->valuestring);
  return *out ? MX_OK : mx_fail(MX_ERR_NOMEM, err, "%s: %s.%s: out of memory", l->file, l->path, key);
}

static mx_err get_int(const cJSON *o, const char *key, const struct loc *l, long long lo, long long hi,
                      long long *out, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  char *shown;
  mx_err rc;

  if (!v)
    return MX_OK;
  if (cJSON_IsNumber(v) && v->valuedouble >= (double)lo && v->valuedouble <= (double)hi &&
      v->valuedouble == (double)(long long)v->valuedouble) {
    *out = (long long)v->valuedouble;
    return MX_OK;
  }
  shown = cJSON_PrintUnformatted(v);
  rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.%s: expected an integer from %lld to %lld, got '%s'", l->file, l->path,
               key, lo, hi, shown ? shown : "?");
  cJSON_free(shown);
  return rc;
}

static mx_err parse_provider(const cJSON *o, const struct loc *l, struct llm_stt_config *c, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "provider");

  if (!v)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.provider: required key is missing", l->file, l->path);
  for (int p = LLM_STT_OPENAI; p <= LLM_STT_COMMAND; p++) {
    if (cJSON_IsString(v) && strcmp(v->valuestring, llm_stt_provider_name((enum llm_stt_provider)p)) == 0) {
      c->provider = (enum llm_stt_provider)p;
      return MX_OK;
    }
  }
  return mx_fail(MX_ERR_CONFIG, err, "%s: %s.provider: expected one of openai, whisper.cpp, command, got '%s'",
                 l->file, l->path, cJSON_IsString(v) ? v->valuestring : "(not a string)");
}

static mx_err parse_command(const cJSON *o, const struct loc *l, struct llm_stt_config *c, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "command"), *it;
  int placeholder = 0;
  size_t i = 0;

  if (!v || !cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.command: expected a non-empty array of strings (argv)", l->file,
                   l->path);
  c->command = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof *c->command);
  if (!c->command)
    return mx_fail(MX_ERR_NOMEM, err, "%s: %s.command: out of memory", l->file, l->path);
  cJSON_ArrayForEach(it, v) {
    if (!cJSON_IsString(it) || !it->valuestring[0])
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s.command[%zu]: expected a non-empty string", l->file, l->path, i);
    c->command[i] = mx_strdup(it->valuestring);
    if (!c->command[i])
      return mx_fail(MX_ERR_NOMEM, err, "%s: %s.command: out of memory", l->file, l->path);
    c->command_n = ++i;
    placeholder |= strstr(it->valuestring, "{input}") || strstr(it->valuestring, "{wav}");
  }
  if (!placeholder)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.command: expected {input} or {wav} in one of the arguments, got '%s'",
                   l->file, l->path, c->command[0]);
  return MX_OK;
}

/* A relative path is relative to the config file's directory, as every
 * path in the main config is (docs/config.md). */
static mx_err resolve_path(const struct loc *l, char **path, char *err)
{
  const char *slash = strrchr(l->file, '/');
  char *dir, *joined;

  if ((*path)[0] == '/' || !slash)
    return MX_OK;
  dir = malloc((size_t)(slash - l->file) + 1);
  if (!dir)
    return mx_fail(MX_ERR_NOMEM, err, "%s: %s: out of memory", l->file, l->path);
  memcpy(dir, l->file, (size_t)(slash - l->file));
  dir[slash - l->file] = '\0';
  joined = mx_path_join(dir[0] ? dir : "/", *path);
  free(dir);
  if (!joined)
    return mx_fail(MX_ERR_NOMEM, err, "%s: %s: out of memory", l->file, l->path);
  free(*path);
  *path = joined;
  return MX_OK;
}

static mx_err read_key(const cJSON *o, const struct loc *l, struct llm_stt_config *c, char *err)
{
  char *file = NULL, *env = NULL;
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = get_str(o, "api_key_file", l, &file, err);

  if (!rc)
    rc = get_str(o, "api_key_env", l, &env, err);
  if (rc)
    goto cleanup;
  if (file && env) {
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected only one of api_key_file and api_key_env", l->file, l->path);
  } else if (file) {
    rc = resolve_path(l, &file, err);
    if (rc)
      goto cleanup;
    if (mx_file_read(file, MX_BUF_MAX_SMALL, &b, NULL) != MX_OK) {
      rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.api_key_file: cannot read '%s'", l->file, l->path, file);
      goto cleanup;
    }
    c->api_key = mx_buf_take(&b);
    if (c->api_key)
      mx_rtrim(c->api_key);
    if (c->api_key && !c->api_key[0])
      rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.api_key_file: '%s' is empty", l->file, l->path, file);
  } else if (env) {
    const char *v = getenv(env);
    if (!v || !v[0])
      rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.api_key_env: environment variable '%s' is not set", l->file, l->path,
                   env);
    else if (!(c->api_key = mx_strdup(v)))
      rc = mx_fail(MX_ERR_NOMEM, err, "%s: %s.api_key_env: out of memory", l->file, l->path);
  }
cleanup:
  if (b.buf)
    memset(b.buf, 0, b.len);
  mx_buf_release(&b);
  free(file);
  free(env);
  return rc;
}

static mx_err parse_strings(const cJSON *o, const struct loc *l, struct llm_stt_config *c, char *err)
{
  mx_err rc = get_str(o, "base_url", l, &c->base_url, err);

  if (!rc)
    rc = get_str(o, "model", l, &c->model, err);
  if (!rc)
    rc = get_str(o, "language", l, &c->language, err);
  if (!rc)
    rc = get_str(o, "prompt", l, &c->prompt, err);
  if (!rc)
    rc = get_str(o, "opusdec", l, &c->opusdec, err);
  if (!rc)
    rc = get_str(o, "sox", l, &c->sox, err);
  if (!rc)
    rc = get_str(o, "tmp_dir", l, &c->tmp_dir, err);
  if (!rc && c->base_url && strncmp(c->base_url, "http://", 7) != 0 && strncmp(c->base_url, "https://", 8) != 0)
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.base_url: expected an http:// or https:// URL, got '%s'", l->file,
                 l->path, c->base_url);
  if (!rc && c->base_url) {
    size_t n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/')
      c->base_url[--n] = '\0';
  }
  return rc;
}

static mx_err parse_numbers(const cJSON *o, const struct loc *l, struct llm_stt_config *c, char *err)
{
  long long v;
  mx_err rc;
  const cJSON *conv = cJSON_GetObjectItemCaseSensitive(o, "convert");

  v = (long long)c->max_bytes;
  rc = get_int(o, "max_bytes", l, 1, (long long)MX_BUF_MAX_MEDIA, &v, err);
  c->max_bytes = (size_t)v;
  v = c->max_duration_s;
  if (!rc)
    rc = get_int(o, "max_duration_s", l, 1, 3600, &v, err);
  c->max_duration_s = (int)v;
  v = c->timeout_s;
  if (!rc)
    rc = get_int(o, "timeout_s", l, 1, 600, &v, err);
  c->timeout_s = (int)v;
  v = (long long)c->max_output;
  if (!rc)
    rc = get_int(o, "max_output_bytes", l, 1, 1024 * 1024, &v, err);
  c->max_output = (size_t)v;
  if (!rc && conv && !cJSON_IsBool(conv))
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.convert: expected true or false", l->file, l->path);
  if (!rc && conv)
    c->convert = cJSON_IsTrue(conv);
  return rc;
}

/* Defaults and what each provider needs. */
static mx_err finish(const struct loc *l, struct llm_stt_config *c, char *err)
{
  if (c->provider == LLM_STT_OPENAI && !c->base_url && !(c->base_url = mx_strdup("https://api.openai.com")))
    return mx_fail(MX_ERR_NOMEM, err, "%s: %s: out of memory", l->file, l->path);
  if (c->provider == LLM_STT_OPENAI && !c->model && !(c->model = mx_strdup("whisper-1")))
    return mx_fail(MX_ERR_NOMEM, err, "%s: %s: out of memory", l->file, l->path);
  if (c->provider == LLM_STT_WHISPER_CPP && !c->base_url)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.base_url: required for provider 'whisper.cpp'", l->file, l->path);
  if (c->provider != LLM_STT_COMMAND && c->command_n)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.command: only for provider 'command', got provider '%s'", l->file,
                   l->path, llm_stt_provider_name(c->provider));
  if (c->convert < 0)
    c->convert = c->provider == LLM_STT_WHISPER_CPP;
  if (!c->opusdec && !(c->opusdec = mx_strdup("opusdec")))
    return mx_fail(MX_ERR_NOMEM, err, "%s: %s: out of memory", l->file, l->path);
  if (!c->sox && !(c->sox = mx_strdup("sox")))
    return mx_fail(MX_ERR_NOMEM, err, "%s: %s: out of memory", l->file, l->path);
  return MX_OK;
}

mx_err llm_stt_config_parse(const cJSON *speech, const char *file, const char *path, struct llm_stt_config *out,
                            char *err)
{
  struct loc l = {file ? file : "config", path ? path : "speech"};
  mx_err rc;

  llm_stt_config_init(out);
  rc = check_keys(speech, &l, err);
  if (!rc)
    rc = parse_provider(speech, &l, out, err);
  if (!rc && cJSON_GetObjectItemCaseSensitive(speech, "command"))
    rc = parse_command(speech, &l, out, err);
  if (!rc && out->provider == LLM_STT_COMMAND && !out->command_n)
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: %s.command: required for provider 'command'", l.file, l.path);
  if (!rc)
    rc = parse_strings(speech, &l, out, err);
  if (!rc)
    rc = parse_numbers(speech, &l, out, err);
  if (!rc)
    rc = read_key(speech, &l, out, err);
  if (!rc)
    rc = finish(&l, out, err);
  if (rc)
    llm_stt_config_release(out);
  return rc;
}

mx_err llm_stt_config_load(const char *file, struct llm_stt_config *out, char *err)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL * 16);
  cJSON *root = NULL;
  const cJSON *speech;
  mx_err rc;

  llm_stt_config_init(out);
  rc = mx_file_read(file, b.max, &b, err);
  if (rc)
    goto cleanup;
  root = cJSON_ParseWithLength(mx_buf_cstr(&b), b.len);
  if (!root) {
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: expected a JSON object, got invalid JSON", file);
    goto cleanup;
  }
  speech = cJSON_GetObjectItemCaseSensitive(root, "speech");
  if (!speech) {
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: speech: required key is missing", file);
    goto cleanup;
  }
  rc = llm_stt_config_parse(speech, file, "speech", out, err);
cleanup:
  cJSON_Delete(root);
  mx_buf_release(&b);
  return rc;
}
