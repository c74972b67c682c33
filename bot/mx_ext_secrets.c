/*
 * bot/mx_ext_secrets.c - the secrets the configuration itself holds become
 * literal redactions before the first log line or message: each device's
 * Matrix password and WireGuard HMAC key (file contents), the registration
 * secret or admin token, the LLM providers' and speech API keys. A secret
 * with no recognisable shape (a random password) is caught only this way.
 * Layer: bot; reads files named by the config, calls tools/redact.
 */
#include "mx_ext_int.h"

#include <string.h>

#include "mx_log.h"
#include "mx_util.h"

#define SECRET_FILE_MAX 4096

/* The file's content without trailing blanks and line breaks. A file that
 * cannot be read is skipped here: its owner (login, backend) reports it. */
static mx_err add_file(struct tools_redactor *r, const char *rule, const char *path, char *err)
{
  struct mx_buf b = MX_BUF_INIT(SECRET_FILE_MAX);
  char ferr[MX_ERRBUF_LEN];
  mx_err rc = MX_OK;
  if (path && mx_file_read(path, SECRET_FILE_MAX, &b, ferr) == MX_OK) {
    while (b.len && strchr(" \t\r\n", b.buf[b.len - 1]))
      b.buf[--b.len] = '\0';
    /* multi-line files (PEM keys) are for the shape rules, not literals */
    if (b.len >= 4 && !memchr(b.buf, '\n', b.len))
      rc = tools_redact_add_literal(r, rule, b.buf, err);
    if (b.buf)
      memset(b.buf, 0, b.len); /* no copy of the secret outlives the redactor's */
  }
  mx_buf_release(&b);
  return rc;
}

static mx_err add_key(struct tools_redactor *r, const char *rule, const char *secret, char *err)
{
  return secret && strlen(secret) >= 4 ? tools_redact_add_literal(r, rule, secret, err) : MX_OK;
}

mx_err mx_ext_secrets_add(struct mx_bot *bot, struct tools_redactor *r, char *err)
{
  const struct mx_config *cfg = bot->cfg;
  struct mx_ext *x = bot->ext;
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < cfg->n_devices; i++) {
    rc = add_file(r, "config", cfg->devices[i].password_file, err);
    if (!rc)
      rc = add_file(r, "config", cfg->devices[i].wg_hmac_key_file, err);
  }
  if (!rc)
    rc = add_file(r, "config", cfg->registration_shared_secret_file, err);
  if (!rc)
    rc = add_file(r, "config", cfg->registration_admin_token_file, err);
  for (size_t i = 0; !rc && x->llm_cfg && i < x->llm_cfg->nproviders; i++)
    rc = add_key(r, "config", x->llm_cfg->providers[i].api_key, err);
  if (!rc && x->has_stt)
    rc = add_key(r, "config", x->stt.api_key, err);
  return rc;
}
