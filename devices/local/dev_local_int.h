/*
 * devices/local/dev_local_int.h - shared by the files of devices/local: the
 * backend struct and the per-capability handlers. Not for other modules.
 * Layer: devices/; common/ only.
 */
#ifndef DEV_LOCAL_INT_H
#define DEV_LOCAL_INT_H

#include "dev_local.h"

struct dev_local {
  struct dev_backend base; /* first: the backend pointer is the struct pointer */
  struct dev_local_opts o;
};

/* dev_local_exec with extra environment entries (NULL-terminated, may be
 * NULL) and a directory fd to run in (-1: cwd, or the current directory). */
mx_err dev_local_exec_env(char *const argv[], int cwd_fd, const char *cwd, char *const extra_env[], int timeout_ms,
                          size_t max_output, const volatile int *cancel, struct dev_result *r, char *err);

/* Handlers: fill r; MX_OK unless the call could not be attempted. */
mx_err dev_local_fs(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err);
mx_err dev_local_cmd(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err);
mx_err dev_local_proc(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err);

/* Opens the call's "path" argument through the confined opener; on a
 * refusal r says why and the error is returned. */
mx_err dev_local_open_arg(struct dev_local *l, const struct dev_call *c, int write, int flags, mode_t mode, int *fd,
                          struct dev_result *r);

/* git.status/log/diff with repository-named programs disabled. */
mx_err dev_local_git(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err);

/* fs.write: temp file beside the target, fsync, rename (dev_local_write.c). */
mx_err dev_local_fs_write(struct dev_local *l, const struct dev_call *c, struct dev_result *r);

/* Appends at most what fits under max_output to r->out; sets truncated. */
mx_err dev_local_out(struct dev_result *r, size_t max_output, const void *data, size_t n);

#endif
