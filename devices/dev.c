/* devices/dev.c - the served-tool table of every backend kind and the
 * dev_result helpers they share. */
#include "dev.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* In-process executors; mxfleet-agent runs exactly these on a wg device. */
static const char *const local_tools[] = {
    "fs.read",   "fs.list",  "fs.stat",     "fs.write",  "git.status", "git.log",   "git.diff",   "docker.ps",
    "docker.logs", "docker.restart", "pkg.list", "pkg.install", "proc.list", "proc.kill", "shell.exec", "shell.eval",
    NULL};
/* Over libssh from the bot host: SFTP for fs.*, an exec channel for
 * shell.*. Reads and plain program runs only; no agent, no writes. */
static const char *const ssh_tools[] = {"fs.read", "fs.list", "fs.stat", "shell.exec", "shell.eval", NULL};

const char *const dev_backend_kinds[] = {"local", "wg", "ssh", NULL};

const char *const *dev_served_tools(const char *kind)
{
  if (!kind)
    return NULL;
  if (strcmp(kind, "local") == 0 || strcmp(kind, "wg") == 0)
    return local_tools;
  if (strcmp(kind, "ssh") == 0)
    return ssh_tools;
  return NULL;
}

int dev_backend_serves(const struct dev_backend *b, const char *tool)
{
  for (const char *const *t = b && tool ? b->tools : NULL; t && *t; t++)
    if (strcmp(*t, tool) == 0)
      return 1;
  return 0;
}

void dev_result_init(struct dev_result *r)
{
  r->status = DEV_DONE;
  r->exit_code = -1;
  r->signal = 0;
  r->truncated = 0;
  mx_buf_init(&r->out, MX_BUF_MAX_TOOL_OUTPUT);
  mx_buf_init(&r->err, MX_BUF_MAX_TOOL_OUTPUT);
  r->detail = NULL;
  r->duration_ms = 0;
}

void dev_result_release(struct dev_result *r)
{
  mx_buf_release(&r->out);
  mx_buf_release(&r->err);
  free(r->detail);
  r->detail = NULL;
}

mx_err dev_result_set(struct dev_result *r, enum dev_status status, const char *fmt, ...)
{
  r->status = status;
  free(r->detail);
  r->detail = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n >= 0 && (r->detail = malloc((size_t)n + 1)) != NULL) {
    va_start(ap, fmt);
    vsnprintf(r->detail, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  return MX_OK;
}

const char *dev_status_str(enum dev_status s)
{
  switch (s) {
  case DEV_DONE: return "done";
  case DEV_TIMEOUT: return "timeout";
  case DEV_REFUSED: return "refused";
  case DEV_FAILED: return "failed";
  }
  return "failed";
}
