/*
 * llm_stt.c - the `llm.stt` config and the dispatch to a backend; see
 * llm_stt.h. Layer: llm. Input cJSON is borrowed; strings are copied.
 */
#include "llm_stt.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llm_cfgutil.h"
#include "mx_util.h"

static mx_err parse_kind(const cJSON *o, const struct llm_cfg_loc *l, enum llm_stt_kind *k, char *err)
{
  static const char *const names[] = {"openai", "whisper_cpp", "command"};
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "kind"));
  for (int i = 0; s && i < 3; i++)
    if (strcmp(s, names[i]) == 0) {
      *k = (enum llm_stt_kind)i;
      return MX_OK;
    }
  return mx_fail(MX_ERR_CONFIG, err, "%s: %s.kind: expected one of openai, whisper_cpp, command, got '%s'", l->file,
                 l->path, s ? s : "(missing or not a string)");
}

static mx_err parse_command(const cJSON *o, const struct llm_cfg_loc *l, struct llm_stt_cfg *c, char *err)
{
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "command");
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.command: expected a non-empty array of strings (argv, no shell)",
                   l->file, l->path);
  c->command = calloc((size_t)cJSON_GetArraySize(arr), sizeof(char *));
  if (!c->command)
    return MX_ERR_NOMEM;
  int has_file = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    if (!cJSON_IsString(it))
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s.command[%zu]: expected a string", l->file, l->path, c->ncommand);
    has_file |= strstr(it->valuestring, "{file}") != NULL;
    if (!(c->command[c->ncommand++] = mx_strdup(it->valuestring)))
      return MX_ERR_NOMEM;
  }
  if (!has_file)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s.command: expected an argument containing {file}, got none", l->file,
                   l->path);
  return MX_OK;
}

static mx_err parse_body(const cJSON *o, const struct llm_cfg_loc *l, struct llm_stt_cfg *c, char *err)
{
  static const char *const keys[] = {"kind", "base_url", "model", "api_key_file", "api_key_env", "language",
                                     "command", "timeout_ms", "max_bytes", NULL};
  int64_t maxb = (int64_t)c->max_bytes;
  mx_err rc = llm_cfg_keys(o, l, keys, err);
  if (!rc)
    rc = parse_kind(o, l, &c->kind, err);
  if (!rc && c->kind != LLM_STT_COMMAND)
    rc = llm_cfg_str(o, l, "base_url", 1, &c->base_url, err);
  if (!rc && c->kind == LLM_STT_COMMAND)
    rc = parse_command(o, l, c, err);
  if (!rc)
    rc = llm_cfg_str(o, l, "model", 0, &c->model, err);
  if (!rc && !c->model && c->kind == LLM_STT_OPENAI && !(c->model = mx_strdup("whisper-1")))
    rc = MX_ERR_NOMEM;
  if (!rc)
    rc = llm_cfg_str(o, l, "language", 0, &c->language, err);
  if (!rc)
    rc = llm_cfg_int(o, l, "timeout_ms", 100, 3600000, &c->timeout_ms, err);
  if (!rc)
    rc = llm_cfg_int(o, l, "max_bytes", 1024, 100 * 1024 * 1024, &maxb, err);
  c->max_bytes = (size_t)maxb;
  if (!rc)
    rc = llm_cfg_secret(o, l, &c->api_key, err);
  return rc;
}

mx_err llm_stt_config_parse(const cJSON *blk, const char *file, const char *path, struct llm_stt_cfg **out,
                            char *err)
{
  struct llm_cfg_loc l = {file ? file : "mxfleet.json", ""};
  llm_cfg_path(&l, "%s", path ? path : "llm.stt");
  *out = NULL;
  struct llm_stt_cfg *c = calloc(1, sizeof(*c));
  if (!c)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  c->timeout_ms = 60000;
  c->max_bytes = 25 * 1024 * 1024; /* the OpenAI API's own limit */
  mx_err rc = parse_body(blk, &l, c, err);
  if (rc) {
    if (rc == MX_ERR_NOMEM)
      mx_fail(rc, err, "out of memory");
    llm_stt_config_free(c);
    return rc;
  }
  *out = c;
  return MX_OK;
}

void llm_stt_config_free(struct llm_stt_cfg *c)
{
  if (!c)
    return;
  free(c->base_url);
  free(c->model);
  if (c->api_key)
    memset(c->api_key, 0, strlen(c->api_key));
  free(c->api_key);
  free(c->language);
  for (size_t i = 0; i < c->ncommand; i++)
    free(c->command[i]);
  free(c->command);
  free(c);
}

/* Servers (and whisper.cpp's --convert) go by the file name's extension. */
static const char *file_name(const char *mimetype)
{
  static const struct {
    const char *mime;
    const char *name;
  } tab[] = {{"audio/ogg", "voice.ogg"},  {"audio/opus", "voice.ogg"},   {"audio/wav", "voice.wav"},
             {"audio/x-wav", "voice.wav"}, {"audio/wave", "voice.wav"},  {"audio/mpeg", "voice.mp3"},
             {"audio/mp4", "voice.m4a"},   {"audio/x-m4a", "voice.m4a"}, {"audio/webm", "voice.webm"},
             {"audio/flac", "voice.flac"}};
  for (size_t i = 0; mimetype && i < sizeof(tab) / sizeof(tab[0]); i++)
    if (strncasecmp(mimetype, tab[i].mime, strlen(tab[i].mime)) == 0)
      return tab[i].name;
  return "voice.ogg"; /* Element's voice messages */
}

mx_err llm_stt_transcribe(const struct llm_stt_cfg *c, const void *audio, size_t n, const char *mimetype,
                          struct mx_buf *text, char *err)
{
  if (n == 0)
    return mx_fail(MX_ERR_INVALID, err, "stt: the voice message is empty");
  if (n > c->max_bytes)
    return mx_fail(MX_ERR_TOO_BIG, err, "stt: the voice message has %zu bytes, over the limit of %zu", n,
                   c->max_bytes);
  size_t before = text->len;
  mx_err rc = c->kind == LLM_STT_COMMAND ? llm_stt_cmd(c, audio, n, file_name(mimetype), text, err)
                                         : llm_stt_http(c, audio, n, mimetype, file_name(mimetype), text, err);
  if (rc)
    return rc;
  if (text->buf) {
    mx_rtrim(text->buf);
    text->len = strlen(text->buf);
  }
  if (text->len == before)
    return mx_fail(MX_ERR_NOT_FOUND, err, "stt: no speech was recognised in the voice message");
  return MX_OK;
}
