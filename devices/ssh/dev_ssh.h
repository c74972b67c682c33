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
 * Tools: the catalog's names, as for every backend (dev_served_tools("ssh");
 * args are borrowed cJSON, schema-checked by tools/ beforehand):
 *   shell.exec  {"argv": [...], "cwd"?: "/abs"}  each word quoted for the
 *               declared remote shell (dev_ssh_quote.h); before the first
 *               one in a session the shell's probe must print what the
 *               declared shell prints, else shell.exec is refused
 *   shell.eval  {"command": "..."}  passed to the remote shell as is; only
 *               ever called when the manifest allows shell.eval
 *   fs.read     {"path": "/abs", "offset"?: N, "max_bytes"?: N}   over SFTP
 *   fs.list     {"path": "/abs"} over SFTP: a JSON array of {name,type,size}
 *               sorted by name, as the local backend prints it
 *   fs.stat     {"path": "/abs"} over SFTP (lstat): {type,size,mode,uid,gid,mtime}
 * Paths are confined by the caller's check_path callback after the server
 * resolved them (SFTP realpath), so a symlink on the host cannot lead a
 * read out of the manifest's roots.
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
  const char *shell;       /* remote login shell: "posix" (NULL), "fish", "cmd", "powershell"; other: unknown */
  /* Confines a resolved remote path (fs.*): MX_OK when it lies under a
   * readable root, else MX_ERR_DENIED with the reason in err. NULL: every
   * fs.* call is refused. Wired to the manifest by the caller, like the
   * local backend's open_path. */
  mx_err (*check_path)(void *ctx, const char *path, char *err);
  void *check_ctx;
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
 * requires a pinned host key, authenticates with the key and runs `exit 0` (any shell).
 * MX_OK when all of that worked; MX_ERR_TAMPERED on a changed host key,
 * MX_ERR_DENIED when the host is not pinned, MX_ERR_AUTH when the key is
 * refused, MX_ERR_UNAVAILABLE/MX_ERR_TIMEOUT when the host cannot be reached.
 */
mx_err dev_ssh_check(const struct dev_ssh_config *cfg, char *err);

/* Number of TCP connections this backend has made (tests, metrics). */
int dev_ssh_connect_count(struct dev_backend *b);

#endif
