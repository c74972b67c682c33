/*
 * dev_ssh_pin.c - provisioning-time host key pinning and the batch-mode
 * reachability check. The only place that writes known_hosts; run-time
 * calls (dev_ssh.c) only read it. Layer: devices/ssh.
 */
#include "dev_ssh_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_util.h"

static mx_err fingerprint(ssh_session s, char fp[DEV_SSH_FP_LEN], char *err)
{
  ssh_key key = NULL;
  unsigned char *hash = NULL;
  size_t hlen = 0;
  if (ssh_get_server_publickey(s, &key) != SSH_OK)
    return mx_fail(MX_ERR_CRYPTO, err, "ssh: server sent no host key");
  int rc = ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen);
  ssh_key_free(key);
  if (rc != SSH_OK)
    return mx_fail(MX_ERR_CRYPTO, err, "ssh: cannot hash the host key");
  char *txt = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
  ssh_clean_pubkey_hash(&hash);
  if (!txt)
    return MX_ERR_NOMEM;
  snprintf(fp, DEV_SSH_FP_LEN, "%s", txt);
  ssh_string_free_char(txt);
  return MX_OK;
}

static mx_err append_entry(ssh_session s, const char *known_hosts, char *err)
{
  char *line = NULL;
  if (ssh_session_export_known_hosts_entry(s, &line) != SSH_OK || !line)
    return mx_fail(MX_ERR_CRYPTO, err, "ssh: cannot format the known_hosts entry");
  mx_err rc = MX_OK;
  int fd = open(known_hosts, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    rc = mx_fail(MX_ERR_IO, err, "cannot open '%s': %s", known_hosts, strerror(errno));
  else {
    size_t n = strlen(line);
    int ok = write(fd, line, n) == (ssize_t)n && (line[n - 1] == '\n' || write(fd, "\n", 1) == 1);
    if (!ok || fsync(fd) != 0)
      rc = mx_fail(MX_ERR_IO, err, "cannot write '%s': %s", known_hosts, strerror(errno));
    close(fd);
  }
  ssh_string_free_char(line);
  return rc;
}

mx_err dev_ssh_pin_host_key(const char *host, int port, const char *known_hosts, const char *expect_fp,
                            char fp_out[DEV_SSH_FP_LEN], char *err)
{
  ssh_session s = NULL;
  enum ssh_known_hosts_e st = SSH_KNOWN_HOSTS_UNKNOWN;
  char fp[DEV_SSH_FP_LEN] = "";
  mx_err rc = dev_ssh_open(host, port, known_hosts, 10000, 1, &s, &st, err);
  if (rc)
    return rc; /* includes a changed key: MX_ERR_TAMPERED, nothing written */
  rc = fingerprint(s, fp, err);
  if (!rc && expect_fp && strcmp(expect_fp, fp) != 0)
    rc = mx_fail(MX_ERR_DENIED, err, "ssh %s:%d: host key fingerprint is %s, expected '%s'; not pinned", host, port,
                 fp, expect_fp);
  if (!rc && st != SSH_KNOWN_HOSTS_OK)
    rc = append_entry(s, known_hosts, err);
  if (!rc && fp_out)
    memcpy(fp_out, fp, DEV_SSH_FP_LEN);
  dev_ssh_disconnect(s);
  return rc;
}

mx_err dev_ssh_check(const struct dev_ssh_config *cfg, char *err)
{
  struct dev_backend *b = NULL;
  mx_err rc = dev_ssh_new(cfg, &b, err);
  if (rc)
    return rc;
  rc = b->health(b, NULL, err);
  b->destroy(b);
  return rc;
}
