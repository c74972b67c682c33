/*
 * llm_cfgutil.h - small helpers shared by the llm config parsers
 * (llm_config.c, llm/stt): location-prefixed messages, unknown-key checks,
 * typed getters that keep defaults, and API key loading from a file or the
 * environment (the key is never quoted in a message).
 * Layer: llm, internal. cJSON arguments are borrowed; strings are copied.
 */
#ifndef LLM_CFGUTIL_H
#define LLM_CFGUTIL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_err.h"

/* Location prefix for messages: "<file>: llm.providers[1].kind". */
struct llm_cfg_loc {
  const char *file;
  char path[160];
  const char *base_dir; /* relative file paths are taken from here; NULL: cwd */
};

/* Fails on any key of obj not in keys (NULL-terminated). */
mx_err llm_cfg_keys(const cJSON *obj, const struct llm_cfg_loc *l, const char *const *keys, char *err);
/* Each getter leaves *out untouched when the key is absent. */
mx_err llm_cfg_str(const cJSON *obj, const struct llm_cfg_loc *l, const char *key, int required, char **out,
                   char *err);
mx_err llm_cfg_int(const cJSON *obj, const struct llm_cfg_loc *l, const char *key, int64_t lo, int64_t hi,
                   int64_t *out, char *err);
mx_err llm_cfg_int_i(const cJSON *obj, const struct llm_cfg_loc *l, const char *key, int64_t lo, int64_t hi,
                     int *out, char *err);
mx_err llm_cfg_num(const cJSON *obj, const struct llm_cfg_loc *l, const char *key, double *out, char *err);
void llm_cfg_path(struct llm_cfg_loc *l, const char *fmt, ...) MX_PRINTF(2, 3);
/* child = parent + ".name" (fmt non-NULL) or parent + "[idx]" (idx >= 0). */
void llm_cfg_sub(struct llm_cfg_loc *child, const struct llm_cfg_loc *parent, const char *fmt, const char *name,
                 long idx);
/* api_key_file / api_key_env of obj into *key (malloc'd; NULL when neither).
 * A relative api_key_file is read from l->base_dir. */
mx_err llm_cfg_secret(const cJSON *obj, const struct llm_cfg_loc *l, char **key, char *err);

/* Directory part of a config file path (malloc'd): "/etc/mxfleet/x.json" ->
 * "/etc/mxfleet"; NULL for a bare name (meaning the working directory). */
char *llm_cfg_dir_of(const char *file);

#endif
