/*
 * prov_step_ssh.c - the first two steps of both paths: pin the device's SSH host key into
 * its own known_hosts file under data_dir/ssh/, then check a batch-mode
 * (key-only, no prompt) login. Both go through devices/ssh (libssh), which
 * owns the pinning rules. Layer: devices/provision.
 */
#include "prov_int.h"

#include <stdio.h>

#include "dev_ssh.h"

mx_err prov_step_pin_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  char fp[DEV_SSH_FP_LEN] = "";
  int existed = prov_file_exists(c->kh_fs);
  mx_err rc = dev_ssh_pin_host_key(c->ssh_host, c->ssh_port, c->kh_fs, c->o->host_key_fp, fp, err);
  if (rc)
    return rc;
  *created = !existed;
  return mx_buf_addf(note, "%s:%d %s", c->ssh_host, c->ssh_port, fp);
}

mx_err prov_step_pin_undo(struct prov_ctx *c, char *err)
{
  return prov_remove(c->kh_fs, err);
}

mx_err prov_step_check_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  struct dev_ssh_config sc = {
    .host = c->ssh_host,
    .port = c->ssh_port,
    .user = c->ssh_user,
    .key_file = c->key_file,
    .known_hosts = c->kh_fs,
    .connect_timeout_ms = 5000,
    .device = c->o->name,
  };
  *created = 0;
  mx_err rc = dev_ssh_check(&sc, err);
  if (rc)
    return rc;
  return mx_buf_addf(note, "%s@%s:%d logs in with its key", c->ssh_user, c->ssh_host, c->ssh_port);
}

const struct prov_step prov_steps_ssh[] = {
  { "ssh_pin", "pin the SSH host key", 0, prov_step_pin_run, prov_step_pin_undo },
  { "ssh_check", "check SSH login (batch mode)", 1, prov_step_check_run, NULL },
  { "matrix_user", "create the Matrix user", 0, prov_step_user_run, prov_step_user_undo },
  { "identity", "log in and bootstrap the E2EE identity", 0, prov_step_identity_run, prov_step_identity_undo },
  { "files", "write the manifest and prompt", 0, prov_step_files_run, prov_step_files_undo },
  { "config", "add the config entry", 0, prov_step_config_run, prov_step_config_undo },
  { "greet", "open a DM with each operator and greet", 0, prov_step_greet_run, NULL },
};
const int prov_steps_ssh_n = (int)(sizeof(prov_steps_ssh) / sizeof(prov_steps_ssh[0]));
