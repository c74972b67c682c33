/*
 * prov_step_files.c - the shared file steps of onboarding: the device's manifest (copied
 * from the template for its OS and backend: tools/templates/<os>.json for the
 * agent, <os>-ssh.json over SSH; every tool it enables must be one the
 * backend serves, so a fresh device never starts with no tools) and prompt file under
 * data_dir, and its entry in the config file, added by a text edit (temp +
 * rename, same mode) that keeps every other byte. Undo restores the config's
 * original bytes when nobody changed it since. Layer: devices/provision.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dev.h"
#include "mx_json.h"
#include "mx_share.h"
#include "mx_util.h"

static char *template_path(struct prov_ctx *c, int prompt)
{
  if (prompt && c->o->prompt_template)
    return mx_strdup(c->o->prompt_template);
  /* shipped ones: share/mxfleet/{prompts,templates} of this install */
  char *dir = prompt ? mx_share_dir(MX_SHARE_PROMPTS)
                     : c->o->templates_dir ? mx_strdup(c->o->templates_dir) : mx_share_dir(MX_SHARE_TEMPLATES);
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = !dir      ? MX_ERR_NOMEM
              : prompt ? mx_buf_addf(&b, "%s/device.md", dir)
                       : mx_buf_addf(&b, "%s/%s%s.json", dir, c->os, c->o->via == DEV_PROV_VIA_WG ? "" : "-ssh");
  free(dir);
  return rc ? NULL : mx_buf_take(&b);
}

/* Every tool the template enables must be served by the device's backend. */
static mx_err check_served(struct prov_ctx *c, const char *path, const struct mx_buf *text, char *err)
{
  const char *kind = c->o->via == DEV_PROV_VIA_WG ? "wg" : "ssh";
  const char *const *served = dev_served_tools(kind);
  cJSON *j = cJSON_ParseWithLength(text->buf ? text->buf : "", text->len);
  const cJSON *tools = cJSON_GetObjectItemCaseSensitive(j, "tools");
  mx_err rc = cJSON_IsObject(tools) ? MX_OK
                                    : mx_fail(MX_ERR_CONFIG, err, "manifest template '%s': expected a JSON object with "
                                              "\"tools\"", path);
  const cJSON *list = rc ? NULL : tools, *t;
  cJSON_ArrayForEach(t, list) {
    int ok = 0;
    for (const char *const *s = served; s && *s && !ok; s++)
      ok = strcmp(*s, t->string) == 0;
    if (!ok) {
      rc = mx_fail(MX_ERR_CONFIG, err, "manifest template '%s': tools.%s: the %s backend does not serve it "
                   "(it serves only what docs/tools/README.md lists for %s); remove it", path, t->string, kind, kind);
      break;
    }
  }
  cJSON_Delete(j);
  return rc;
}

static mx_err read_template(struct prov_ctx *c, int prompt, struct mx_buf *out, char *err)
{
  char *p = template_path(c, prompt);
  if (!p)
    return MX_ERR_NOMEM;
  mx_err rc = mx_file_read(p, MX_BUF_MAX_SMALL, out, err);
  if (rc == MX_ERR_NOT_FOUND)
    rc = mx_fail(rc, err, "%s template '%s' is missing (%s)", prompt ? "prompt" : "manifest", p,
                 prompt ? "pass --prompt-template FILE"
                        : "<os>.json is the template for --via wg, <os>-ssh.json for --via ssh; or pass --templates DIR");
  if (!rc && !prompt && (rc = check_served(c, p, out, err)) != MX_OK)
    mx_buf_release(out);
  free(p);
  return rc;
}

static mx_err put_file(const char *path, const struct mx_buf *data, int *created, char *err)
{
  if (prov_file_exists(path))
    return MX_OK; /* kept as it is, even when the operator edited it */
  mx_err rc = mx_file_write(path, data->buf, data->len, 0600, err);
  if (!rc)
    *created = 1;
  return rc;
}

mx_err prov_step_files_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  struct mx_buf man, prompt;
  int m = 0, p = 0;
  mx_err rc = read_template(c, 0, &man, err);
  if (rc)
    return rc;
  rc = read_template(c, 1, &prompt, err);
  if (rc) {
    mx_buf_release(&man);
    return rc;
  }
  rc = put_file(c->man_fs, &man, &m, err);
  c->files_created |= m;
  if (!rc)
    rc = put_file(c->prompt_fs, &prompt, &p, err);
  c->files_created |= p << 1;
  mx_buf_release(&man);
  mx_buf_release(&prompt);
  if (rc)
    return rc;
  *created = m || p;
  return mx_buf_addf(note, "%s, %s (%s template)", c->man_cfg, c->prompt_cfg, c->os);
}

/* Without this run's record (an interrupted run's journal), a file is ours
 * only while it still equals the template. */
static mx_err undo_one(struct prov_ctx *c, const char *path, int bit, int prompt, char *err)
{
  if (!c->files_created) {
    struct mx_buf t;
    int same = 0;
    if (read_template(c, prompt, &t, err))
      return MX_OK;
    mx_err rc = prov_file_same(path, t.buf, t.len, &same, err);
    mx_buf_release(&t);
    if (rc || !same)
      return rc;
  } else if (!(c->files_created & bit)) {
    return MX_OK;
  }
  return prov_remove(path, err);
}

mx_err prov_step_files_undo(struct prov_ctx *c, char *err)
{
  mx_err rc = undo_one(c, c->man_fs, 1, 0, err);
  if (!rc)
    rc = undo_one(c, c->prompt_fs, 2, 1, err);
  return rc;
}

static cJSON *entry_new(struct prov_ctx *c)
{
  cJSON *e = cJSON_CreateObject();
  cJSON_AddStringToObject(e, "name", c->o->name);
  cJSON_AddStringToObject(e, "os", c->os);
  cJSON_AddStringToObject(e, "manifest", c->man_cfg);
  cJSON_AddStringToObject(e, "prompt", c->prompt_cfg);
  cJSON *m = cJSON_AddObjectToObject(e, "matrix");
  cJSON_AddStringToObject(m, "user_id", c->user_id);
  cJSON_AddStringToObject(m, "password_file", c->pw_cfg);
  cJSON *b = cJSON_AddObjectToObject(e, "backend");
  if (c->o->via == DEV_PROV_VIA_WG) {
    cJSON_AddStringToObject(b, "kind", "wg");
    cJSON_AddStringToObject(b, "address", c->address);
    cJSON_AddNumberToObject(b, "port", 7443);
    cJSON_AddStringToObject(b, "hmac_key_file", c->hmac_cfg);
    cJSON_AddStringToObject(b, "public_key", c->pubkey);
    return e;
  }
  cJSON_AddStringToObject(b, "kind", "ssh");
  cJSON_AddStringToObject(b, "host", c->ssh_host);
  cJSON_AddNumberToObject(b, "port", c->ssh_port);
  cJSON_AddStringToObject(b, "user", c->ssh_user);
  cJSON_AddStringToObject(b, "key_file", c->key_file);
  cJSON_AddStringToObject(b, "known_hosts", c->kh_cfg);
  return e;
}

static mx_err write_config(struct prov_ctx *c, const char *text, char *err)
{
  return prov_config_write(c->cfg.path, text, err);
}

mx_err prov_step_config_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  int idx = -1;
  cJSON *e = entry_new(c);
  if (!e)
    return MX_ERR_NOMEM;
  const cJSON *have = prov_cfg_device(&c->cfg, c->o->name, &idx);
  mx_err rc = MX_OK;
  if (have && !cJSON_Compare(have, e, 1))
    rc = mx_fail(MX_ERR_CONFLICT, err, "%s: devices[%d]: device '%s' exists with other settings; revoke it first",
                 c->cfg.path, idx, c->o->name);
  else if (!have)
    rc = prov_cfgedit_add(mx_buf_cstr(&c->cfg.text), e, &c->config_written, err);
  if (!rc && !have)
    rc = write_config(c, c->config_written, err);
  cJSON_Delete(e);
  if (rc)
    return rc;
  *created = !have;
  return mx_buf_addf(note, "%s: devices[] \"%s\"", c->cfg.path, c->o->name);
}

mx_err prov_step_config_undo(struct prov_ctx *c, char *err)
{
  struct mx_buf now;
  mx_err rc = mx_file_read(c->cfg.path, PROV_CONFIG_MAX, &now, err);
  if (rc)
    return rc;
  char *edited = NULL;
  if (c->config_written && strcmp(mx_buf_cstr(&now), c->config_written) == 0)
    rc = write_config(c, mx_buf_cstr(&c->cfg.text), err); /* byte-identical restore */
  else {
    rc = prov_cfgedit_remove(mx_buf_cstr(&now), c->o->name, &edited, err);
    if (rc == MX_ERR_NOT_FOUND)
      rc = MX_OK;
    else if (!rc)
      rc = write_config(c, edited, err);
  }
  free(edited);
  mx_buf_release(&now);
  return rc;
}
