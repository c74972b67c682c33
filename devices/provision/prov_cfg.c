/*
 * prov_cfg.c - reads the parts of the mxfleet config onboarding needs
 * (homeserver, data_dir, operators, registration, devices) and resolves
 * paths the way the bot's loader does: relative to the config's directory.
 * Layer: devices/provision; must not include bot/ (the bot's loader is the
 * full validator; this one checks only what it uses). cfg->root is owned.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>

#include "mx_json.h"
#include "mx_util.h"

static char *dir_of(const char *path)
{
  const char *slash = strrchr(path, '/');
  if (!slash)
    return mx_strdup(".");
  if (slash == path)
    return mx_strdup("/");
  char *d = mx_strdup(path);
  if (d)
    d[slash - path] = '\0';
  return d;
}

char *prov_cfg_resolve(const struct prov_cfg *cfg, const char *p)
{
  while (p[0] == '.' && p[1] == '/')
    p += 2; /* "./data" under dir reads better as "dir/data" in messages */
  return mx_path_join(cfg->dir, *p ? p : ".");
}

mx_err prov_cfg_data_path(const struct prov_cfg *cfg, const char *rel, char **as_cfg, char **as_fs)
{
  *as_cfg = mx_path_join(cfg->data_dir, rel);
  *as_fs = *as_cfg ? prov_cfg_resolve(cfg, *as_cfg) : NULL;
  if (!*as_cfg || !*as_fs) {
    free(*as_cfg);
    free(*as_fs);
    *as_cfg = *as_fs = NULL;
    return MX_ERR_NOMEM;
  }
  return MX_OK;
}

static mx_err need_str(const struct prov_cfg *cfg, const char *key, char **out, char *err)
{
  const char *v = mx_json_str(cfg->root, key);
  if (!v || !*v)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected a non-empty string", cfg->path, key);
  *out = mx_strdup(v);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

static mx_err load_registration(struct prov_cfg *cfg, char *err)
{
  const cJSON *reg = mx_json_obj(cfg->root, "registration");
  if (!reg)
    return MX_OK;
  const char *s = mx_json_str(reg, "shared_secret_file");
  const char *t = mx_json_str(reg, "admin_token_file");
  if (!s == !t)
    return mx_fail(MX_ERR_CONFIG, err, "%s: registration: expected exactly one of shared_secret_file, "
                   "admin_token_file", cfg->path);
  if (s && !(cfg->secret_file = prov_cfg_resolve(cfg, s)))
    return MX_ERR_NOMEM;
  if (t && !(cfg->token_file = prov_cfg_resolve(cfg, t)))
    return MX_ERR_NOMEM;
  return MX_OK;
}

static mx_err parse(struct prov_cfg *cfg, char *err)
{
  const char *end = NULL;
  const char *text = mx_buf_cstr(&cfg->text);
  cfg->root = cJSON_ParseWithLengthOpts(text, cfg->text.len, &end, 0);
  while (end && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
    end++; /* only whitespace may follow the object */
  if (!cfg->root || !cJSON_IsObject(cfg->root) || (end && *end))
    return mx_fail(MX_ERR_CONFIG, err, "%s: byte %ld: invalid JSON, expected an object", cfg->path,
                   end ? (long)(end - mx_buf_cstr(&cfg->text)) : 0L);
  mx_err rc = need_str(cfg, "homeserver", &cfg->homeserver, err);
  if (!rc)
    rc = need_str(cfg, "data_dir", &cfg->data_dir, err);
  if (rc)
    return rc;
  size_t n = strlen(cfg->homeserver);
  while (n > 0 && cfg->homeserver[n - 1] == '/')
    cfg->homeserver[--n] = '\0';
  cfg->operators = mx_json_arr(cfg->root, "operators");
  const cJSON *devs = cJSON_GetObjectItemCaseSensitive(cfg->root, "devices");
  if (devs && !cJSON_IsArray(devs))
    return mx_fail(MX_ERR_CONFIG, err, "%s: devices: expected an array", cfg->path);
  cfg->data_fs = prov_cfg_resolve(cfg, cfg->data_dir);
  if (!cfg->data_fs)
    return MX_ERR_NOMEM;
  return load_registration(cfg, err);
}

mx_err prov_cfg_load(const char *path, struct prov_cfg *cfg, char *err)
{
  memset(cfg, 0, sizeof(*cfg));
  mx_buf_init(&cfg->text, PROV_CONFIG_MAX);
  cfg->path = mx_strdup(path);
  cfg->dir = dir_of(path);
  if (!cfg->path || !cfg->dir)
    return MX_ERR_NOMEM;
  mx_err rc = mx_file_read(path, PROV_CONFIG_MAX, &cfg->text, err);
  if (rc)
    return rc;
  return parse(cfg, err);
}

void prov_cfg_free(struct prov_cfg *cfg)
{
  free(cfg->path);
  free(cfg->dir);
  mx_buf_release(&cfg->text);
  cJSON_Delete(cfg->root);
  free(cfg->homeserver);
  free(cfg->data_dir);
  free(cfg->data_fs);
  free(cfg->secret_file);
  free(cfg->token_file);
  memset(cfg, 0, sizeof(*cfg));
}

const cJSON *prov_cfg_device(const struct prov_cfg *cfg, const char *name, int *index)
{
  const cJSON *devs = mx_json_arr(cfg->root, "devices");
  int i = 0;
  const cJSON *d = NULL;
  cJSON_ArrayForEach(d, devs) {
    const char *n = mx_json_str(d, "name");
    if (n && strcmp(n, name) == 0) {
      if (index)
        *index = i;
      return d;
    }
    i++;
  }
  return NULL;
}

mx_err prov_read_secret(const char *path, const char *what, char **out, char *err)
{
  struct mx_buf b;
  *out = NULL;
  mx_err rc = mx_file_read(path, MX_BUF_MAX_SMALL, &b, err);
  if (rc)
    return mx_fail(rc, err, "%s: cannot read '%s'", what, path);
  char *s = mx_buf_take(&b);
  mx_buf_release(&b);
  if (!s)
    return MX_ERR_NOMEM;
  char *nl = strchr(s, '\n');
  if (nl)
    *nl = '\0';
  mx_rtrim(s);
  if (!*s) {
    free(s);
    return mx_fail(MX_ERR_CONFIG, err, "%s: '%s' is empty", what, path);
  }
  *out = s;
  return MX_OK;
}
