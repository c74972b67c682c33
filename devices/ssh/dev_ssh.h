/*
 * dev_ssh.h - the "ssh" device backend: tool calls run on a host over libssh.
 *
 * One SSH session per backend (one host), reused across calls and guarded by
 * a mutex; one channel per call. The host key must already be pinned in the
 * backend's known_hosts file (dev_ssh_pin_host_key at provisioning): at run
 * time only SSH_KNOWN_HOSTS_OK is accepted, the file is never updated, and a
 * changed key fails with MX_ERR_TAMPERED so the caller can alert. Public-key
 * authentication only. Layer: devices/; calls common/ and libssh only.
 *
 * Tools (args are borrowed cJSON, schema-checked by tools/ beforehand):
 *   ssh.exec / shell.exec  {"argv": ["cmd", "arg"...]}  each word single-quoted
 *   shell.eval             {"command": "..."}  passed to the remote shell as is;
 *                          only ever called when the manifest allows shell.eval
 *   ssh.fs_read            {"path": "/abs", "max_bytes"?: N}   over SFTP
 *   ssh.fs_list            {"path": "/abs", "max_entries"?: N} over SFTP;
 *                          out holds a JSON array of {name,type,size,mode,mtime}
 */
#ifndef DEV_SSH_H
#define DEV_SSH_H

#include "dev.h"

struct dev_ssh_config {
  const char *host;        /* name or address as pinned in known_hosts */
  int port;                /* 0 means 22 */
  const char *user;
  const char *key_file;    /* private key (OpenSSH format, no passphrase) */
  const char *known_hosts; /* pinned keys, usually <data_dir>/ssh_known_hosts */
  int connect_timeout_ms;  /* 0 means 10000 */
  const char *device;      /* label for log lines; may be NULL */
};

/* Copies cfg (strings included); connects lazily on the first call. */
mx_err dev_ssh_new(const struct dev_ssh_config *cfg, struct dev_backend **out, char *err);

/* SHA-256 fingerprint text: "SHA256:" + unpadded base64 + NUL. */
#define DEV_SSH_FP_LEN 64

/*
 * Provisioning: connects to host:port, fetches the host key and records it in
 * known_hosts (created 0600 when missing). When expect_fp is non-NULL the key
 * must have that fingerprint, else nothing is written (MX_ERR_DENIED). An
 * entry that already matches is left alone (MX_OK); a different recorded key
 * is never overwritten (MX_ERR_TAMPERED). fp_out (may be NULL) receives the
 * fingerprint. Never authenticates.
 */
mx_err dev_ssh_pin_host_key(const char *host, int port, const char *known_hosts, const char *expect_fp,
                            char fp_out[DEV_SSH_FP_LEN], char *err);

/*
 * Batch-mode reachability check (no prompts, nothing written): connects,
 * requires a pinned host key, authenticates with the key and runs `true`.
 * MX_OK when all of that worked; MX_ERR_TAMPERED on a changed host key,
 * MX_ERR_DENIED when the host is not pinned, MX_ERR_AUTH when the key is
 * refused, MX_ERR_UNAVAILABLE/MX_ERR_TIMEOUT when the host cannot be reached.
 */
mx_err dev_ssh_check(const struct dev_ssh_config *cfg, char *err);

/* Number of TCP connections this backend has made (tests, metrics). */
int dev_ssh_connect_count(struct dev_backend *b);

#endif
