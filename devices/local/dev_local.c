/*
 * devices/local/dev_local.c - the "local" backend: dispatches a call to the
 * capability handlers and times it. Tools it does not serve are refused.
 * Layer: devices/; common/ only.
 */
#include "dev_local_int.h"

#include <stdlib.h>
#include <string.h>

#include "mx_util.h"

typedef mx_err (*handler_fn)(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err);

static const struct {
  const char *tool;
  handler_fn fn;
} handlers[] = {
    {"fs.read", dev_local_fs},        {"fs.list", dev_local_fs},      {"fs.stat", dev_local_fs},
    {"fs.write", dev_local_fs},       {"git.status", dev_local_cmd},  {"git.log", dev_local_cmd},
    {"git.diff", dev_local_cmd},      {"docker.ps", dev_local_cmd},   {"docker.logs", dev_local_cmd},
    {"docker.restart", dev_local_cmd}, {"pkg.list", dev_local_cmd},   {"pkg.install", dev_local_cmd},
    {"proc.list", dev_local_proc},    {"proc.kill", dev_local_proc},  {"shell.exec", dev_local_cmd},
    {"shell.eval", dev_local_cmd},
};

static mx_err local_run(struct dev_backend *b, const struct dev_call *c, struct dev_result *r, char *err)
{
  struct dev_local *l = (struct dev_local *)b;
  int64_t start = mx_mono_ms();
  for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
    if (strcmp(handlers[i].tool, c->tool) != 0)
      continue;
    if (c->cancel && *c->cancel)
      return dev_result_set(r, DEV_FAILED, "cancelled by the operator");
    mx_err rc = handlers[i].fn(l, c, r, err);
    if (!r->duration_ms)
      r->duration_ms = mx_mono_ms() - start;
    return rc;
  }
  return dev_result_set(r, DEV_REFUSED, "tool '%s' is not supported by the local backend", c->tool);
}

static mx_err local_health(struct dev_backend *b, cJSON **info, char *err)
{
  (void)b;
  (void)err;
  *info = NULL;
  return MX_OK;
}

static void local_destroy(struct dev_backend *b) { free(b); }

mx_err dev_local_new(const struct dev_local_opts *o, struct dev_backend **out, char *err)
{
  struct dev_local *l = calloc(1, sizeof(*l));
  if (!l)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  if (o)
    l->o = *o;
  l->base.name = "local";
  l->base.tools = dev_served_tools("local");
  l->base.run = local_run;
  l->base.health = local_health;
  l->base.destroy = local_destroy;
  *out = &l->base;
  return MX_OK;
}
