/*
 * tools/tools_engine_run.c - the back half of a call: the audit intent is
 * committed first and a failed write refuses the call (fail closed), then
 * the backend runs it, the result record (exit status, SHA-256 of the raw
 * output, duration) is linked to the intent, and the output is redacted
 * before anyone sees it. Layer: tools/ -> devices/.
 */
#include "tools_engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_crypto.h"
#include "mx_log.h"
#include "mx_util.h"

static void entry_from(const struct tools_engine *e, const struct call_ctx *c, struct tools_audit_entry *a)
{
  (void)e;
  memset(a, 0, sizeof(*a));
  a->call_id = c->call_id;
  a->operator_mxid = c->origin->operator_mxid;
  a->operator_device = c->origin->operator_device;
  a->verification = c->origin->verification;
  a->operator_master_key = c->origin->operator_master_key;
  a->room_id = c->origin->room_id;
  a->event_id = c->origin->event_id;
  a->tool = c->spec ? c->spec->name : NULL;
  a->args = c->audit_args ? c->audit_args : c->args;
  a->decision = c->decision;
  a->approval_ref = c->approval_ref;
  a->exit_code = -1;
}

void engine_audit_only(struct tools_engine *e, const struct call_ctx *c, const char *status, int64_t *seq)
{
  struct tools_audit_entry a;
  char err[MX_ERRBUF_LEN];
  entry_from(e, c, &a);
  a.kind = "intent";
  a.status = status;
  if (tools_audit_append(e->o.audit, &a, seq, err))
    mx_error(e->device, "audit: cannot record a %s call: %s", status, err);
}

static const char *result_status(const struct dev_result *r, int cancelled)
{
  if (cancelled)
    return "cancelled";
  switch (r->status) {
  case DEV_DONE: return "done";
  case DEV_TIMEOUT: return "timeout";
  case DEV_REFUSED: return "refused";
  case DEV_FAILED: return "failed";
  }
  return "failed";
}

/* The model's view: output, stderr, then one status line. */
static void outcome_text(struct tools_engine *e, const struct call_ctx *c, const struct dev_result *r, int cancelled,
                         struct tools_outcome *out)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT + 4096);
  mx_err rc = mx_buf_add(&b, r->out.buf ? r->out.buf : "", r->out.len);
  if (!rc && r->err.len)
    rc = mx_buf_addf(&b, "%s[stderr]\n%s", b.len && b.buf[b.len - 1] != '\n' ? "\n" : "", r->err.buf);
  if (!rc && b.len && b.buf[b.len - 1] != '\n')
    rc = mx_buf_addc(&b, '\n');
  if (!rc && cancelled)
    rc = mx_buf_adds(&b, "[cancelled by the operator]");
  else if (!rc && r->status == DEV_TIMEOUT)
    rc = mx_buf_addf(&b, "[timed out after %d ms; the process group was killed]", c->limits.timeout_ms);
  else if (!rc && r->status != DEV_DONE)
    rc = mx_buf_addf(&b, "[%s: %s]", result_status(r, 0), r->detail ? r->detail : "no detail");
  else if (!rc && r->signal)
    rc = mx_buf_addf(&b, "[killed by signal %d]", r->signal);
  else if (!rc)
    rc = mx_buf_addf(&b, "[exit %d]", r->exit_code);
  if (!rc && r->truncated)
    rc = mx_buf_addf(&b, " [output truncated at %zu bytes]", c->limits.max_output);
  free(out->text);
  out->text = rc ? NULL : e->o.redactor ? tools_redact(e->o.redactor, b.buf, b.len, NULL, NULL) : mx_buf_take(&b);
  mx_buf_release(&b);
}

static enum tools_outcome_status outcome_of(const struct dev_result *r, int cancelled)
{
  if (cancelled)
    return TOOLS_OUT_CANCELLED;
  switch (r->status) {
  case DEV_DONE: return TOOLS_OUT_OK;
  case DEV_TIMEOUT: return TOOLS_OUT_TIMEOUT;
  case DEV_REFUSED: return TOOLS_OUT_DENIED;
  case DEV_FAILED: return TOOLS_OUT_FAILED;
  }
  return TOOLS_OUT_FAILED;
}

static void audit_result(struct tools_engine *e, const struct call_ctx *c, const struct dev_result *r, int cancelled,
                         struct tools_outcome *out)
{
  struct mx_buf all = MX_BUF_INIT(2 * MX_BUF_MAX_TOOL_OUTPUT);
  char hex[2 * MX_SHA256_LEN + 1];
  struct tools_audit_entry a;
  char err[MX_ERRBUF_LEN];
  /* Hash of the raw output (stdout then stderr), before redaction. */
  if (mx_buf_add(&all, r->out.buf ? r->out.buf : "", r->out.len) || mx_buf_add(&all, r->err.buf ? r->err.buf : "", r->err.len))
    snprintf(hex, sizeof(hex), "unavailable");
  else
    mx_sha256_hex(all.buf, all.len, hex);
  mx_buf_release(&all);
  entry_from(e, c, &a);
  a.kind = "result";
  a.intent_seq = out->intent_seq;
  a.status = result_status(r, cancelled);
  a.exit_code = r->exit_code;
  a.signal = r->signal;
  a.output_sha256 = hex;
  a.duration_ms = r->duration_ms;
  if (tools_audit_append(e->o.audit, &a, &out->result_seq, err))
    mx_error(e->device, "audit: result of intent %lld not recorded: %s", (long long)out->intent_seq, err);
}

mx_err engine_run_checked(struct tools_engine *e, const struct call_ctx *c, struct tools_outcome *out, char *err)
{
  struct tools_audit_entry a;
  char aerr[MX_ERRBUF_LEN];
  entry_from(e, c, &a);
  a.kind = "intent";
  a.status = "pending";
  if (tools_audit_append(e->o.audit, &a, &out->intent_seq, aerr) != MX_OK) {
    mx_error(e->device, "audit: intent not recorded, refusing %s: %s", c->spec->name, aerr);
    engine_outcome(e, out, TOOLS_OUT_AUDIT_FAILED, "refused: the audit log of %s could not be written (%s); nothing was run",
                   e->device, aerr);
    out->intent_seq = 0;
    return MX_OK;
  }
  struct dev_call call;
  memset(&call, 0, sizeof(call));
  call.request_id = c->call_id;
  call.tool = c->spec->name;
  call.args = c->args;
  call.timeout_ms = c->limits.timeout_ms;
  call.max_output = c->limits.max_output;
  call.new_file_mode = c->limits.file_mode;
  call.cancel = &c->fl->cancel;
  call.approval_ref = c->approval_ref; /* lets mxfleet-agent run an ASK tool the operator approved */
  /* the device's own audit says who asked, from which device and message */
  struct dev_caller caller = {c->origin->operator_mxid, c->origin->operator_device, c->origin->verification,
                              c->origin->operator_master_key, c->origin->room_id, c->origin->event_id};
  call.caller = &caller;
  struct dev_result r;
  dev_result_init(&r);
  int64_t start = mx_mono_ms();
  mx_err rc = e->o.backend->run(e->o.backend, &call, &r, err);
  if (!r.duration_ms)
    r.duration_ms = mx_mono_ms() - start;
  if (rc)
    dev_result_set(&r, DEV_FAILED, "%s backend could not run it: %s", e->o.backend->name, err);
  int cancelled = c->fl->cancel != 0;
  audit_result(e, c, &r, cancelled, out);
  out->status = outcome_of(&r, cancelled);
  out->exit_code = r.exit_code;
  out->signal = r.signal;
  out->truncated = r.truncated;
  outcome_text(e, c, &r, cancelled, out);
  dev_result_release(&r);
  return MX_OK;
}
