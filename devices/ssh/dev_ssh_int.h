/*
 * dev_ssh_int.h - internals shared by the files of devices/ssh (not for
 * other modules): session setup, exec over a channel, SFTP reads.
 * All functions take a session the caller holds exclusively (its mutex).
 */
#ifndef DEV_SSH_INT_H
#define DEV_SSH_INT_H

#include <libssh/libssh.h>

#include "dev_ssh.h"

/* New session with our options (no ssh_config, our known_hosts only, no
 * password/kbd-interactive), connected and with the host key checked against
 * known_hosts: OK only. Does not authenticate. When accept_unknown is set
 * (pinning), an unknown host is not an error and *state reports it. */
mx_err dev_ssh_open(const char *host, int port, const char *known_hosts, int timeout_ms, int accept_unknown,
                    ssh_session *out, enum ssh_known_hosts_e *state, char *err);

/* dev_ssh_open + public-key authentication as cfg->user with cfg->key_file. */
mx_err dev_ssh_connect(const struct dev_ssh_config *cfg, int timeout_ms, ssh_session *out, char *err);

void dev_ssh_disconnect(ssh_session s);

/* Runs cmd on a new channel. *retry is set when the failure happened before
 * anything was sent to the remote side (the channel could not be opened),
 * so the caller may reconnect and try once more. */
mx_err dev_ssh_exec(ssh_session s, const char *cmd, const struct dev_call *call, struct dev_result *r, int *retry,
                    char *err);

/* fs.read, fs.list, fs.stat over SFTP, paths confined by cfg->check_path;
 * same *retry rule. */
mx_err dev_ssh_fs(ssh_session s, const struct dev_ssh_config *cfg, const struct dev_call *call, struct dev_result *r,
                  int *retry, char *err);

/* Keeps at most what is left of the call's output cap; sets r->truncated
 * when bytes were dropped. *kept counts stdout+stderr together. */
mx_err dev_ssh_keep(struct dev_result *r, struct mx_buf *dst, size_t cap, size_t *kept, const void *data, size_t n);

/* Output cap of a call, clamped to what a dev_result buffer can hold. */
size_t dev_ssh_cap(const struct dev_call *call);

#endif
