/* devices/dev.c - dev_result helpers shared by every backend. */
#include "dev.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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
