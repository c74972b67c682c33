/*
 * prov_revoke.c - `device revoke`: removes the hub's WireGuard peer (kind
 * wg), deactivates the Matrix user, removes the config entry and the
 * device's password, known_hosts, manifest and prompt files created by
 * onboarding; data_dir/audit is always kept. The account goes first: if it
 * cannot be deactivated nothing else changes, so a re-run can finish the job.
 * Layer: devices/provision; wg runs through devices/local's exec helper.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev_local.h"
#include "mx_json.h"
#include "mx_util.h"

static mx_err wg_remove_peer(const struct prov_cfg *cfg, const cJSON *b, FILE *out, char *err)
{
  const char *pub = mx_json_str(b, "public_key");
  const char *ifc = mx_json_str(mx_json_obj(cfg->root, "health"), "wg_interface");
  if (!pub || !ifc) {
    fprintf(out, "  wireguard peer: nothing to remove (no public_key or health.wg_interface)\n");
    return MX_OK;
  }
  char *argv[] = { "/usr/bin/wg", "set", (char *)ifc, "peer", (char *)pub, "remove", NULL };
  struct dev_result r;
  dev_result_init(&r);
  mx_err rc = dev_local_exec(argv, NULL, 10000, MX_BUF_MAX_SMALL, NULL, &r, err);
  if (!rc && r.exit_code != 0)
    rc = mx_fail(MX_ERR_IO, err, "wg set %s peer %s remove: exit %d: %s", ifc, pub, r.exit_code,
                 mx_buf_cstr(&r.err));
  if (!rc)
    fprintf(out, "  wireguard peer %s removed from %s\n", pub, ifc);
  dev_result_release(&r);
  return rc;
}

static mx_err deactivate(const struct prov_cfg *cfg, const cJSON *m, FILE *out, char *err)
{
  const char *uid = mx_json_str(m, "user_id");
  const char *pwf = mx_json_str(m, "password_file");
  char *pw = NULL, *tok = NULL, *pw_fs = pwf ? prov_cfg_resolve(cfg, pwf) : NULL;
  mx_err rc = MX_OK;
  if (!uid)
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: matrix.user_id: expected a string", cfg->path);
  if (!rc && cfg->token_file)
    rc = prov_read_secret(cfg->token_file, "registration.admin_token_file", &tok, err);
  if (!rc && pw_fs && prov_file_exists(pw_fs))
    rc = prov_read_secret(pw_fs, "password file", &pw, err);
  if (!rc)
    rc = prov_hs_deactivate(cfg->homeserver, tok, uid, pw, err);
  if (!rc)
    fprintf(out, "  matrix user %s deactivated\n", uid);
  free(pw);
  free(tok);
  free(pw_fs);
  return rc;
}

static mx_err remove_entry(const struct prov_cfg *cfg, const char *name, FILE *out, char *err)
{
  char *edited = NULL;
  mx_err rc = prov_cfgedit_remove(mx_buf_cstr(&cfg->text), name, &edited, err);
  if (!rc)
    rc = prov_config_write(cfg->path, edited, err);
  if (!rc)
    fprintf(out, "  config entry '%s' removed from %s\n", name, cfg->path);
  free(edited);
  return rc;
}

/* Only the files onboarding made for this device; never the audit. */
static void remove_files(const struct prov_cfg *cfg, const char *name, FILE *out)
{
  static const char *const fmt[] = { "secrets/%s.pw", "ssh/%s.known_hosts", "manifests/%s.json", "prompts/%s.md",
                                     "provision/%s.json", "wg/%s.key", "wg/%s.addr", "wg/%s.conf", "keys/%s.hmac",
                                     "bundles/%s/mxfleet-agent", "bundles/%s/manifest.json", "bundles/%s/agent.key",
                                     "bundles/%s/wg.conf", "bundles/%s/mxfleet-agent.service", "bundles/%s/agent.json", "bundles/%s/install.sh",
                                     "bundles/%s/bundle.sha256", "bundles/%s" };
  for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
    char rel[128];
    char *c = NULL, *fs = NULL;
    snprintf(rel, sizeof(rel), fmt[i], name);
    struct stat st;
    if (prov_cfg_data_path(cfg, rel, &c, &fs) == MX_OK && lstat(fs, &st) == 0) {
      char err[MX_ERRBUF_LEN];
      if (S_ISDIR(st.st_mode) ? rmdir(fs) != 0 && mx_fail(MX_ERR_IO, err, "cannot remove '%s'", fs)
                              : prov_remove(fs, err) != MX_OK)
        fprintf(out, "  %s\n", err);
      else
        fprintf(out, "  removed %s\n", c);
    }
    free(c);
    free(fs);
  }
}

static void forget(const struct prov_cfg *cfg, const cJSON *m, const struct dev_prov_matrix_ops *ops, FILE *out)
{
  const char *uid = mx_json_str(m, "user_id");
  char err[MX_ERRBUF_LEN] = "";
  if (!ops || !ops->forget_identity || !uid)
    return;
  if (ops->forget_identity(ops->ctx, uid, cfg->data_fs, err))
    fprintf(out, "  local E2EE state of %s: %s\n", uid, err); /* the account is gone already */
  else
    fprintf(out, "  local E2EE state of %s removed\n", uid);
}

mx_err dev_prov_revoke(const char *config_path, const char *name, const struct dev_prov_matrix_ops *ops, FILE *out,
                       char *err)
{
  struct prov_cfg cfg;
  out = out ? out : stdout;
  mx_err rc = prov_cfg_load(config_path, &cfg, err);
  const cJSON *d = rc ? NULL : prov_cfg_device(&cfg, name, NULL);
  if (!rc && !d)
    rc = mx_fail(MX_ERR_NOT_FOUND, err, "%s: devices: no device named '%s'", config_path, name);
  const cJSON *b = d ? mx_json_obj(d, "backend") : NULL;
  const char *kind = b ? mx_json_str(b, "kind") : NULL;
  if (!rc)
    fprintf(out, "revoking %s\n", name);
  if (!rc && kind && strcmp(kind, "wg") == 0)
    rc = wg_remove_peer(&cfg, b, out, err);
  if (!rc)
    rc = deactivate(&cfg, mx_json_obj(d, "matrix"), out, err);
  if (!rc)
    rc = remove_entry(&cfg, name, out, err);
  if (!rc) {
    forget(&cfg, mx_json_obj(d, "matrix"), ops, out);
    remove_files(&cfg, name, out);
    fprintf(out, "\xe2\x9c\x93 %s revoked; audit kept under %s/audit\n", name, cfg.data_dir);
  }
  prov_cfg_free(&cfg);
  return rc;
}
