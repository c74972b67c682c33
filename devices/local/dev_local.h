/*
 * devices/local/dev_local.h - the "local" backend: every device capability
 * carried out in-process (fs.* through a confining path opener, git/docker/
 * dpkg-query/apt-get via fork+exec without a shell, /proc for proc.list),
 * and the exec helper it is built on (process group, deadline, output cap).
 * Also what mxfleet-agent runs on a device.
 * Layer: devices/; common/ only. It must not call tools/: path confinement
 * comes in as the open_path callback (tools_policy_open, wired by the caller).
 */
#ifndef DEV_LOCAL_H
#define DEV_LOCAL_H

#include <sys/types.h>

#include "dev.h"

/* Opens path confined to the device's roots; write selects writable roots.
 * Returns MX_OK and *fd, or an error with the reason in err. */
typedef mx_err (*dev_local_open_fn)(void *ctx, const char *path, int write, int flags, mode_t mode, int *fd,
                                    char *err);

struct dev_local_opts {
  dev_local_open_fn open_path; /* NULL: every fs.* call is refused */
  void *open_ctx;
  const char *git;     /* absolute paths; NULL = /usr/bin/<name> */
  const char *docker;
  const char *dpkg_query;
  const char *apt_get;
  const char *sh;      /* shell.eval; NULL = /bin/sh */
};

/* Makes a backend named "local"; destroy() frees it. */
mx_err dev_local_new(const struct dev_local_opts *o, struct dev_backend **out, char *err);

/*
 * Runs argv (argv[0] absolute; no shell) in its own process group with
 * stdin from /dev/null. Keeps at most max_output bytes of stdout and of
 * stderr (r->truncated set when more came). At timeout_ms, or when *cancel
 * becomes non-zero, SIGTERM goes to the group, then SIGKILL 500 ms later;
 * the child is always reaped. Sets r->status, exit_code, signal, duration.
 * cwd may be NULL.
 */
mx_err dev_local_exec(char *const argv[], const char *cwd, int timeout_ms, size_t max_output,
                      const volatile int *cancel, struct dev_result *r, char *err);

#endif
