/*
 * prov_step_matrix.c - the Matrix steps of onboarding (both paths): the device's Matrix
 * account (random password kept 0600 in data_dir/secrets, created by
 * shared-secret registration or the admin API), a verifying login plus the
 * E2EE bootstrap callback, and the DM greeting callback. Layer:
 * devices/provision; Matrix client work beyond account admin is the
 * callbacks' (bot/). Never prints the password or tokens.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>

#include "mx_crypto.h"
#include "mx_util.h"

#define PROV_PW_LEN 32

static mx_err admin_token(struct prov_ctx *c, char **tok, char *err)
{
  *tok = NULL;
  if (!c->cfg.token_file)
    return MX_OK;
  return prov_read_secret(c->cfg.token_file, "registration.admin_token_file", tok, err);
}

/* The account exists and the stored password works: nothing to do. */
static mx_err user_check(struct prov_ctx *c, struct mx_buf *note, char *err)
{
  char *pw = NULL, *tok = NULL;
  mx_err rc = prov_read_secret(c->pw_fs, "password file", &pw, err);
  if (!rc)
    rc = prov_hs_login(c->cfg.homeserver, c->user_id, pw, &tok, err);
  if (rc == MX_ERR_DENIED)
    rc = mx_fail(MX_ERR_CONFLICT, err, "%s is deactivated (revoked); pick another device name", c->user_id);
  else if (rc == MX_ERR_AUTH)
    rc = mx_fail(MX_ERR_CONFLICT, err, "%s exists but the password in '%s' is refused", c->user_id, c->pw_fs);
  if (tok)
    prov_hs_logout(c->cfg.homeserver, tok);
  free(pw);
  free(tok);
  return rc ? rc : mx_buf_addf(note, "%s", c->user_id);
}

static mx_err user_create(struct prov_ctx *c, const char *local, const char *pw, char *err)
{
  char *tok = NULL;
  int exists = 0, deact = 0;
  mx_err rc = admin_token(c, &tok, err);
  if (rc)
    return rc;
  if (tok) {
    rc = prov_hs_admin_get(c->cfg.homeserver, tok, c->user_id, &exists, &deact, err);
    if (!rc && exists && deact)
      rc = mx_fail(MX_ERR_CONFLICT, err, "%s is deactivated (revoked or rolled back); pick another device name",
                   c->user_id); /* reactivation through the admin API fails on Synapse with SQLite */
    else if (!rc && exists)
      rc = mx_fail(MX_ERR_CONFLICT, err, "%s already exists and data_dir has no password for it", c->user_id);
    if (!rc)
      rc = prov_hs_admin_put(c->cfg.homeserver, tok, c->user_id, pw, c->user_id + 1, err);
    free(tok);
    return rc;
  }
  char *secret = NULL;
  if (!c->cfg.secret_file)
    return mx_fail(MX_ERR_CONFIG, err, "%s: registration: expected shared_secret_file or admin_token_file",
                   c->cfg.path);
  rc = prov_read_secret(c->cfg.secret_file, "registration.shared_secret_file", &secret, err);
  if (!rc)
    rc = prov_hs_register(c->cfg.homeserver, secret, local, pw, 0, err);
  free(secret);
  return rc;
}

mx_err prov_step_user_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  if (prov_file_exists(c->pw_fs))
    return user_check(c, note, err);
  char pw[PROV_PW_LEN + 1];
  mx_err rc = mx_random_alnum(pw, PROV_PW_LEN);
  if (!rc)
    rc = mx_file_write(c->pw_fs, pw, PROV_PW_LEN, 0600, err);
  if (rc)
    return rc;
  char local[64];
  snprintf(local, sizeof(local), "agent-%s", c->o->name);
  rc = user_create(c, local, pw, err);
  explicit_bzero(pw, sizeof(pw));
  if (rc) {
    (void)prov_remove(c->pw_fs, NULL);
    return rc;
  }
  *created = 1;
  return mx_buf_addf(note, "%s (password in %s)", c->user_id, c->pw_cfg);
}

mx_err prov_step_user_undo(struct prov_ctx *c, char *err)
{
  char *pw = NULL, *tok = NULL;
  mx_err rc = admin_token(c, &tok, err);
  if (!rc && prov_file_exists(c->pw_fs))
    rc = prov_read_secret(c->pw_fs, "password file", &pw, err);
  if (!rc && (tok || pw))
    rc = prov_hs_deactivate(c->cfg.homeserver, tok, c->user_id, pw, err);
  if (!rc)
    rc = prov_remove(c->pw_fs, err);
  free(pw);
  free(tok);
  return rc;
}

mx_err prov_step_identity_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  char *pw = NULL, *tok = NULL;
  mx_err rc = prov_read_secret(c->pw_fs, "password file", &pw, err);
  if (!rc)
    rc = prov_hs_login(c->cfg.homeserver, c->user_id, pw, &tok, err);
  if (tok)
    prov_hs_logout(c->cfg.homeserver, tok);
  free(pw);
  free(tok);
  if (rc)
    return rc;
  if (!c->ops || !c->ops->bootstrap_identity) {
    c->skipped = 1;
    return mx_buf_adds(note, "login works; E2EE bootstrap skipped (no E2EE client linked)");
  }
  rc = c->ops->bootstrap_identity(c->ops->ctx, c->cfg.homeserver, c->user_id, c->pw_fs, c->cfg.data_fs, created,
                                  err);
  if (rc)
    return rc;
  return mx_buf_adds(note, "login works; E2EE identity and cross-signing in place");
}

mx_err prov_step_identity_undo(struct prov_ctx *c, char *err)
{
  if (!c->ops || !c->ops->forget_identity)
    return MX_OK;
  return c->ops->forget_identity(c->ops->ctx, c->user_id, c->cfg.data_fs, err);
}

static mx_err greeting(struct prov_ctx *c, struct mx_buf *g)
{
  return mx_buf_addf(g, "Hello, I am agent-%s, the operations agent of %s (%s@%s, %s backend). "
                     "Ask me about this machine; anything that changes it needs your approval.",
                     c->o->name, c->o->name, c->ssh_user, c->ssh_host, c->o->via == DEV_PROV_VIA_WG ? "wg" : "ssh");
}

mx_err prov_step_greet_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  if (!c->ops || !c->ops->open_dm_and_greet) {
    c->skipped = 1;
    return mx_buf_adds(note, "skipped (no Matrix client linked)");
  }
  struct mx_buf g = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = greeting(c, &g);
  int n = 0;
  const cJSON *op = NULL;
  cJSON_ArrayForEach(op, c->cfg.operators) {
    if (rc || !cJSON_IsString(op))
      continue;
    int made = 0;
    rc = c->ops->open_dm_and_greet(c->ops->ctx, c->cfg.homeserver, c->user_id, c->pw_fs, c->cfg.data_fs,
                                   op->valuestring, mx_buf_cstr(&g), &made, err);
    *created |= made;
    n++;
  }
  mx_buf_release(&g);
  if (rc)
    return rc;
  return mx_buf_addf(note, "DM with %d operator%s", n, n == 1 ? "" : "s");
}
