/*
 * dev_ssh_session.c - opening an SSH session the strict way: our known_hosts
 * file only, host key must be pinned (OK), public-key authentication only.
 * Never calls ssh_session_update_known_hosts: pinning is dev_ssh_pin.c's job
 * and happens at provisioning, not at run time. Layer: devices/ssh.
 */
#include "dev_ssh_int.h"

#include <string.h>

static mx_err set_options(ssh_session s, const char *host, int port, const char *known_hosts, int timeout_ms,
                          char *err)
{
  int no = 0, yes = 1;
  long secs = timeout_ms / 1000;
  long usecs = (long)(timeout_ms % 1000) * 1000;
  unsigned int uport = (unsigned int)(port > 0 ? port : 22);
  /* PROCESS_CONFIG off: ~/.ssh/config and /etc/ssh/ssh_config must not
   * change the host, the key or the known_hosts file behind our back. */
  if (ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 || ssh_options_set(s, SSH_OPTIONS_HOST, host) < 0 ||
      ssh_options_set(s, SSH_OPTIONS_PORT, &uport) < 0 ||
      ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, known_hosts) < 0 ||
      ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0 ||
      ssh_options_set(s, SSH_OPTIONS_PASSWORD_AUTH, &no) < 0 || ssh_options_set(s, SSH_OPTIONS_KBDINT_AUTH, &no) < 0 ||
      ssh_options_set(s, SSH_OPTIONS_GSSAPI_AUTH, &no) < 0 || ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs) < 0 ||
      ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usecs) < 0 ||
      /* Small request/reply packets: without NODELAY each channel round
       * trip waits out Nagle + delayed ACK (~40 ms per call). */
      ssh_options_set(s, SSH_OPTIONS_NODELAY, &yes) < 0)
    return mx_fail(MX_ERR_INVALID, err, "ssh %s:%d: cannot set session options: %s", host, port, ssh_get_error(s));
  return MX_OK;
}

static mx_err check_host_key(ssh_session s, const char *host, int port, const char *known_hosts, int accept_unknown,
                             enum ssh_known_hosts_e *state, char *err)
{
  enum ssh_known_hosts_e st = ssh_session_is_known_server(s);
  if (state)
    *state = st;
  switch (st) {
  case SSH_KNOWN_HOSTS_OK:
    return MX_OK;
  case SSH_KNOWN_HOSTS_CHANGED:
  case SSH_KNOWN_HOSTS_OTHER:
    /* Possible man in the middle: refuse, and let the caller raise an alert. */
    return mx_fail(MX_ERR_TAMPERED, err,
                   "ssh %s:%d: host key does not match the key pinned in '%s' (changed or other type); refusing",
                   host, port, known_hosts);
  case SSH_KNOWN_HOSTS_UNKNOWN:
  case SSH_KNOWN_HOSTS_NOT_FOUND:
    if (accept_unknown)
      return MX_OK;
    return mx_fail(MX_ERR_DENIED, err, "ssh %s:%d: host key is not pinned in '%s'; pin it at provisioning", host,
                   port, known_hosts);
  case SSH_KNOWN_HOSTS_ERROR:
    break;
  }
  return mx_fail(MX_ERR_IO, err, "ssh %s:%d: cannot check the host key against '%s': %s", host, port, known_hosts,
                 ssh_get_error(s));
}

mx_err dev_ssh_open(const char *host, int port, const char *known_hosts, int timeout_ms, int accept_unknown,
                    ssh_session *out, enum ssh_known_hosts_e *state, char *err)
{
  *out = NULL;
  ssh_session s = ssh_new();
  if (!s)
    return mx_fail(MX_ERR_NOMEM, err, "ssh %s:%d: cannot allocate a session", host, port);
  mx_err rc = set_options(s, host, port, known_hosts, timeout_ms, err);
  if (rc)
    goto fail;
  if (ssh_connect(s) != SSH_OK) {
    const char *msg = ssh_get_error(s);
    rc = mx_fail(strstr(msg, "imeout") ? MX_ERR_TIMEOUT : MX_ERR_UNAVAILABLE, err, "ssh %s:%d: cannot connect: %s",
                 host, port, msg);
    goto fail;
  }
  rc = check_host_key(s, host, port, known_hosts, accept_unknown, state, err);
  if (rc)
    goto fail;
  *out = s;
  return MX_OK;
fail:
  dev_ssh_disconnect(s);
  return rc;
}

static mx_err authenticate(ssh_session s, const struct dev_ssh_config *cfg, char *err)
{
  ssh_key key = NULL;
  if (ssh_pki_import_privkey_file(cfg->key_file, NULL, NULL, NULL, &key) != SSH_OK)
    return mx_fail(MX_ERR_CONFIG, err, "ssh key_file '%s': cannot load the private key (missing, encrypted or not a key)",
                   cfg->key_file);
  int rc = ssh_userauth_publickey(s, NULL, key);
  ssh_key_free(key);
  if (rc == SSH_AUTH_SUCCESS)
    return MX_OK;
  if (rc == SSH_AUTH_ERROR)
    return mx_fail(MX_ERR_UNAVAILABLE, err, "ssh %s@%s:%d: authentication failed: %s", cfg->user, cfg->host,
                   cfg->port, ssh_get_error(s));
  return mx_fail(MX_ERR_AUTH, err, "ssh %s@%s:%d: public key '%s' was not accepted (password login is never tried)",
                 cfg->user, cfg->host, cfg->port, cfg->key_file);
}

mx_err dev_ssh_connect(const struct dev_ssh_config *cfg, int timeout_ms, ssh_session *out, char *err)
{
  ssh_session s = NULL;
  mx_err rc = dev_ssh_open(cfg->host, cfg->port, cfg->known_hosts, timeout_ms, 0, &s, NULL, err);
  if (rc)
    return rc;
  if (ssh_options_set(s, SSH_OPTIONS_USER, cfg->user) < 0) {
    dev_ssh_disconnect(s);
    return mx_fail(MX_ERR_INVALID, err, "ssh user: cannot use '%s'", cfg->user);
  }
  rc = authenticate(s, cfg, err);
  if (rc) {
    dev_ssh_disconnect(s);
    return rc;
  }
  *out = s;
  return MX_OK;
}

void dev_ssh_disconnect(ssh_session s)
{
  if (!s)
    return;
  if (ssh_is_connected(s))
    ssh_disconnect(s);
  ssh_free(s);
}
