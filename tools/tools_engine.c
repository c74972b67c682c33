/*
 * tools/tools_engine.c - engine life cycle, the tool list offered to the
 * model (catalog ∩ what the backend serves ∩ what the manifest enables),
 * the in-flight registry and the kill switch. Layer: tools/ -> devices/; knows nothing of Matrix.
 */
#include "tools_engine_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mx_log.h"
#include "mx_util.h"

/* A manifest may enable more than the backend serves (one manifest moved
 * between backends); those tools are not offered, and the log says so
 * once, so an empty tool list never goes unexplained. */
static void warn_unserved(const struct tools_engine *e)
{
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  struct mx_buf names = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < n; i++)
    if (tools_policy_enabled(e->o.manifest, c[i].name) && !dev_backend_serves(e->o.backend, c[i].name))
      rc = mx_buf_addf(&names, "%s%s", names.len ? ", " : "", c[i].name);
  if (!rc && names.len)
    mx_warn(e->device, "manifest enables %s, which the %s backend does not serve: not offered", mx_buf_cstr(&names),
            e->o.backend->name);
  mx_buf_release(&names);
}

mx_err tools_engine_new(const struct tools_engine_opts *o, struct tools_engine **out, char *err)
{
  if (!o || !o->device || !o->manifest || !o->backend || !o->audit || !o->approvals)
    return mx_fail(MX_ERR_INVALID, err, "tools engine: device, manifest, backend, audit and approvals are required");
  if (!o->backend->tools)
    return mx_fail(MX_ERR_INVALID, err, "tools engine: backend '%s' declares no served tools",
                   o->backend->name ? o->backend->name : "(null)");
  struct tools_engine *e = calloc(1, sizeof(*e));
  if (!e || !(e->device = mx_strdup(o->device))) {
    free(e);
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  }
  e->o = *o;
  e->o.device = e->device;
  pthread_mutex_init(&e->mu, NULL);
  warn_unserved(e);
  *out = e;
  return MX_OK;
}

void tools_engine_free(struct tools_engine *e)
{
  if (!e)
    return;
  pthread_mutex_destroy(&e->mu);
  free(e->device);
  free(e);
}

const char *tools_outcome_status_str(enum tools_outcome_status s)
{
  switch (s) {
  case TOOLS_OUT_OK: return "ok";
  case TOOLS_OUT_INVALID: return "invalid";
  case TOOLS_OUT_DENIED: return "denied";
  case TOOLS_OUT_REJECTED: return "rejected";
  case TOOLS_OUT_EXPIRED: return "expired";
  case TOOLS_OUT_CANCELLED: return "cancelled";
  case TOOLS_OUT_FAILED: return "failed";
  case TOOLS_OUT_TIMEOUT: return "timeout";
  case TOOLS_OUT_AUDIT_FAILED: return "audit_failed";
  }
  return "?";
}

void tools_outcome_release(struct tools_outcome *o)
{
  free(o->text);
  o->text = NULL;
}

cJSON *tools_engine_specs(struct tools_engine *e)
{
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++) {
    if (!dev_backend_serves(e->o.backend, c[i].name) || !tools_policy_enabled(e->o.manifest, c[i].name))
      continue;
    cJSON *o = cJSON_CreateObject();
    cJSON *schema = tools_catalog_schema(&c[i]);
    if (!o || !schema || !cJSON_AddStringToObject(o, "name", c[i].name) ||
        !cJSON_AddStringToObject(o, "description", c[i].description)) {
      cJSON_Delete(o);
      cJSON_Delete(schema);
      cJSON_Delete(arr);
      return NULL;
    }
    cJSON_AddItemToObject(o, "parameters", schema);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

void engine_track(struct tools_engine *e, struct inflight *fl)
{
  pthread_mutex_lock(&e->mu);
  fl->next = e->active;
  e->active = fl;
  pthread_mutex_unlock(&e->mu);
}

void engine_untrack(struct tools_engine *e, struct inflight *fl)
{
  pthread_mutex_lock(&e->mu);
  for (struct inflight **p = &e->active; *p; p = &(*p)->next) {
    if (*p == fl) {
      *p = fl->next;
      break;
    }
  }
  pthread_mutex_unlock(&e->mu);
}

int engine_has_action(struct tools_engine *e, const char *action_id)
{
  int found = 0;
  pthread_mutex_lock(&e->mu);
  for (struct inflight *f = e->active; f && !found; f = f->next)
    found = strcmp(f->action_id, action_id) == 0;
  pthread_mutex_unlock(&e->mu);
  return found;
}

int tools_engine_stop_all(struct tools_engine *e)
{
  int n = 0, pending = 0;
  char err[MX_ERRBUF_LEN];
  pthread_mutex_lock(&e->mu);
  for (struct inflight *f = e->active; f; f = f->next) {
    if (!f->cancel)
      n++;
    f->cancel = 1;
  }
  pthread_mutex_unlock(&e->mu);
  if (tools_approvals_cancel_device(e->o.approvals, e->device, &pending, err))
    mx_error(e->device, "stop: cannot cancel pending approvals: %s", err);
  mx_warn(e->device, "stop: cancelled %d in-flight call(s) and %d approval(s)", n, pending);
  /* A waiting call is both in flight and pending: count it once. */
  return n > pending ? n : pending;
}

void engine_outcome(struct tools_engine *e, struct tools_outcome *out, enum tools_outcome_status s, const char *fmt,
                    ...)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  va_list ap;
  va_start(ap, fmt);
  mx_err rc = mx_buf_vaddf(&b, fmt, ap);
  va_end(ap);
  out->status = s;
  free(out->text);
  out->text = NULL;
  if (rc)
    return;
  out->text = e->o.redactor ? tools_redact(e->o.redactor, b.buf, b.len, NULL, NULL) : mx_buf_take(&b);
  mx_buf_release(&b);
}

char *engine_redact(const struct tools_engine *e, const char *text)
{
  return e->o.redactor ? tools_redact_str(e->o.redactor, text) : mx_strdup(text);
}

cJSON *engine_redacted_args(const struct tools_engine *e, const cJSON *args)
{
  /* The audit and the notice keep the call's structure; only secret values
   * become keyed tags (tools_redact_json). */
  if (e->o.redactor)
    return tools_redact_json(e->o.redactor, args);
  return args ? cJSON_Duplicate(args, 1) : NULL;
}
