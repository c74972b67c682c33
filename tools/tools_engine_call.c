/*
 * tools/tools_engine_call.c - the front half of a call: catalog lookup,
 * argument parsing and schema validation (errors go back to the model),
 * the manifest decision, the voice rule, and the approval round trip
 * (notice through the bot's callback, wait, single-use consume). Also
 * tools_engine_run_approved for an approval that outlived its waiter.
 * Layer: tools/ -> devices/; knows nothing of Matrix.
 */
#include "tools_engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"
#include "tools_schema.h"

static void outcome_init(struct tools_outcome *out)
{
  memset(out, 0, sizeof(*out));
  out->exit_code = -1;
}

static char *origin_json(const struct tools_origin *o, const char *call_id)
{
  cJSON *j = cJSON_CreateObject();
  const char *k[] = {"operator_mxid", "operator_device", "verification", "room_id", "event_id", "call_id",
                     "operator_master_key", "transcript"};
  const char *v[] = {o->operator_mxid, o->operator_device, o->verification, o->room_id, o->event_id, call_id,
                     o->operator_master_key, o->transcript};
  for (int i = 0; j && i < 8; i++)
    if (v[i])
      cJSON_AddStringToObject(j, k[i], v[i]);
  cJSON_AddBoolToObject(j, "via_voice", o->via_voice);
  char *s = j ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  return s;
}

/* Stores the action and posts the notice through the bot's callback. */
static mx_err create_and_notify(struct tools_engine *e, struct call_ctx *c, const char *canon, const char *reason,
                                struct tools_pending *p, struct tools_outcome *out, char *err)
{
  memset(p, 0, sizeof(*p));
  char *oj = origin_json(c->origin, c->call_id);
  p->device = e->device;
  p->tool = (char *)c->spec->name;
  p->args_json = (char *)canon;
  p->risk = (char *)tools_risk_str(c->spec->risk);
  p->reason = (char *)reason;
  p->requester = (char *)(c->origin->operator_mxid ? c->origin->operator_mxid : "?");
  p->origin_json = oj;
  p->call_id = (char *)c->call_id;
  mx_err rc = tools_approvals_create(e->o.approvals, p, e->o.approval_ttl_ms, err);
  if (rc) {
    free(oj);
    p->origin_json = NULL;
    return rc;
  }
  snprintf(c->fl->action_id, sizeof(c->fl->action_id), "%s", p->id);
  snprintf(out->action_id, sizeof(out->action_id), "%s", p->id);
  c->approval_ref = c->fl->action_id;
  char *notice = NULL;
  char perr[MX_ERRBUF_LEN] = "";
  /* The notice goes to Matrix: it shows the arguments with secret values
   * masked in place (c->audit_args, the same the audit keeps); the approval
   * stays bound to the hash of the real ones, which the notice shows. */
  char *shown = c->audit_args ? cJSON_PrintUnformatted(c->audit_args) : NULL;
  p->args_json = shown ? shown : (char *)"(arguments withheld)";
  /* the approver needs the origin (room, event) to know where to post */
  int posted = !e->o.approver.post_notice || e->o.approver.post_notice(e->o.approver.ctx, p, &notice, perr) == MX_OK;
  p->args_json = (char *)canon;
  cJSON_free(shown);
  free(oj);
  p->origin_json = NULL;
  if (!posted) {
    tools_approvals_cancel(e->o.approvals, p->id, "engine", NULL);
    engine_outcome(e, out, TOOLS_OUT_FAILED, "could not ask the operator for approval: %s", perr);
    return MX_ERR_UNAVAILABLE;
  }
  if (notice)
    tools_approvals_set_notice(e->o.approvals, p->id, notice, NULL);
  free(notice);
  return MX_OK;
}

/* A decision other than approve becomes an audited, explained outcome. */
static void not_approved(struct tools_engine *e, struct call_ctx *c, const char *id, enum tools_approval_state st,
                         struct tools_outcome *out)
{
  static const struct { enum tools_approval_state s; enum tools_outcome_status o; const char *a, *t; } map[] = {
      {TOOLS_APPROVAL_DENIED, TOOLS_OUT_REJECTED, "rejected", "the operator denied action %s; it was not run"},
      {TOOLS_APPROVAL_EXPIRED, TOOLS_OUT_EXPIRED, "expired", "approval for action %s expired; it was not run"},
      {TOOLS_APPROVAL_CANCELLED, TOOLS_OUT_CANCELLED, "cancelled", "action %s was cancelled; it was not run"},
      {TOOLS_APPROVAL_USED, TOOLS_OUT_REJECTED, "rejected", "action %s was already used; it was not run again"},
  };
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
    if (map[i].s == st) {
      engine_audit_only(e, c, map[i].a, &out->intent_seq);
      engine_outcome(e, out, map[i].o, map[i].t, id);
    }
  }
}

/* Approval flow: create, notify, wait, consume. MX_OK = approved and
 * consumed; MX_ERR_DENIED / MX_ERR_UNAVAILABLE = *out says why not. */
static mx_err ask(struct tools_engine *e, struct call_ctx *c, const char *canon, const char *reason,
                  struct tools_outcome *out, char *err)
{
  struct tools_pending p;
  mx_err rc = create_and_notify(e, c, canon, reason, &p, out, err);
  if (rc)
    return rc;
  enum tools_approval_state st = TOOLS_APPROVAL_PENDING;
  if (c->origin && c->origin->waiting)
    c->origin->waiting(c->origin->waiting_ctx, 1);
  rc = tools_approvals_wait(e->o.approvals, p.id, &c->fl->cancel, &st, err);
  if (c->origin && c->origin->waiting)
    c->origin->waiting(c->origin->waiting_ctx, 0);
  if (rc)
    return rc;
  if (e->o.approver.closed) {
    struct tools_pending now;
    if (tools_approvals_get(e->o.approvals, p.id, &now, NULL) == MX_OK) {
      cJSON *raw = cJSON_Parse(now.args_json ? now.args_json : "{}");
      cJSON *red = engine_redacted_args(e, raw);
      free(now.args_json);
      now.args_json = red ? cJSON_PrintUnformatted(red) : NULL;
      cJSON_Delete(raw);
      cJSON_Delete(red);
      e->o.approver.closed(e->o.approver.ctx, &now);
      tools_pending_release(&now);
    }
  }
  if (st != TOOLS_APPROVAL_APPROVED) {
    not_approved(e, c, p.id, st, out);
    return MX_ERR_DENIED;
  }
  char cerr[MX_ERRBUF_LEN];
  if (tools_approvals_consume(e->o.approvals, p.id, c->spec->name, p.args_hash, cerr) == MX_OK)
    return MX_OK;
  engine_audit_only(e, c, "rejected", &out->intent_seq);
  engine_outcome(e, out, TOOLS_OUT_REJECTED, "not run: %s", cerr);
  return MX_ERR_DENIED;
}

/* 1 when a JSON string holds "\u0000": cJSON keeps the text after it, but
 * every C consumer (paths, argv, file content) would stop at the NUL, so
 * what ran would differ from what the notice and the audit show. */
static int has_nul_escape(const char *json)
{
  for (const char *p = json; p && *p; p++) {
    if (*p != '\\')
      continue;
    if (p[1] == 'u' && strncmp(p + 2, "0000", 4) == 0)
      return 1;
    if (p[1])
      p++; /* the escaped character: "\\u0000" is a backslash, then text */
  }
  return 0;
}

/* Schema validation and canonical form; NULL *args means *out was filled. */
static void parse_args(struct tools_engine *e, const struct tools_spec *spec, const char *args_json, cJSON **args,
                       struct mx_buf *canon, struct tools_outcome *out)
{
  char verr[MX_ERRBUF_LEN];
  cJSON *schema = tools_catalog_schema(spec);
  *args = cJSON_Parse(args_json && *args_json ? args_json : "{}");
  if (!*args)
    engine_outcome(e, out, TOOLS_OUT_INVALID, "%s: args: expected a JSON object, got text that is not JSON",
                   spec->name);
  else if (has_nul_escape(args_json))
    engine_outcome(e, out, TOOLS_OUT_INVALID, "%s: args: expected strings without NUL characters, got '\\u0000'",
                   spec->name);
  else if (tools_schema_validate(schema, *args, verr) != MX_OK || mx_json_canonical(*args, canon, verr) != MX_OK)
    engine_outcome(e, out, TOOLS_OUT_INVALID, "%s: %s", spec->name, verr);
  if (out->status == TOOLS_OUT_INVALID) {
    cJSON_Delete(*args);
    *args = NULL;
  }
  cJSON_Delete(schema);
}

static mx_err call_checked(struct tools_engine *e, struct call_ctx *c, const char *canon, struct tools_outcome *out,
                           char *err)
{
  struct tools_policy_result pr;
  mx_err rc = tools_policy_check(e->o.manifest, c->spec->name, c->args, &pr, err);
  if (rc)
    return rc;
  c->limits = pr.limits;
  c->decision = tools_decision_str(pr.decision);
  if (pr.decision == TOOLS_DENY) {
    engine_audit_only(e, c, "denied", &out->intent_seq);
    engine_outcome(e, out, TOOLS_OUT_DENIED, "denied by the manifest of %s: %s", e->device, pr.reason);
    return MX_OK;
  }
  if (pr.decision == TOOLS_ALLOW && (c->origin->via_voice && c->spec->risk > TOOLS_RISK_READ)) {
    pr.decision = TOOLS_ASK;
    snprintf(pr.reason, sizeof(pr.reason), "voice command above read risk");
  }
  if (pr.decision == TOOLS_ALLOW && c->spec->risk == TOOLS_RISK_INTERPRETER) {
    pr.decision = TOOLS_ASK;
    snprintf(pr.reason, sizeof(pr.reason), "interpreter risk always needs approval");
  }
  c->decision = tools_decision_str(pr.decision);
  if (pr.decision == TOOLS_ASK) {
    rc = ask(e, c, canon, pr.reason, out, err);
    if (rc == MX_ERR_DENIED || rc == MX_ERR_UNAVAILABLE)
      return MX_OK; /* *out says why it did not run */
    if (rc)
      return rc;
  }
  return engine_run_checked(e, c, out, err);
}

mx_err tools_engine_call(struct tools_engine *e, const struct tools_origin *origin, const char *call_id,
                         const char *tool, const char *args_json, struct tools_outcome *out, char *err)
{
  outcome_init(out);
  const struct tools_spec *spec = tools_catalog_find(tool);
  if (!spec || !dev_backend_serves(e->o.backend, spec->name) || !tools_policy_enabled(e->o.manifest, tool)) {
    engine_outcome(e, out, TOOLS_OUT_DENIED, "tool '%.100s' is not available on %s", tool ? tool : "", e->device);
    return MX_OK;
  }
  cJSON *args = NULL;
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  parse_args(e, spec, args_json, &args, &canon, out);
  if (!args) {
    mx_buf_release(&canon);
    return MX_OK;
  }
  struct inflight fl;
  memset(&fl, 0, sizeof(fl));
  engine_track(e, &fl);
  struct tools_origin none = {0};
  struct call_ctx c = {spec, origin ? origin : &none, call_id, args, NULL, NULL, {0, 0, 0}, &fl, NULL};
  c.audit_args = engine_redacted_args(e, args);
  mx_err rc = call_checked(e, &c, mx_buf_cstr(&canon), out, err);
  cJSON_Delete(c.audit_args);
  engine_untrack(e, &fl);
  cJSON_Delete(args);
  mx_buf_release(&canon);
  return rc;
}

static void origin_from_json(const cJSON *j, struct tools_origin *o)
{
  memset(o, 0, sizeof(*o));
  o->operator_mxid = mx_json_str(j, "operator_mxid");
  o->operator_device = mx_json_str(j, "operator_device");
  o->verification = mx_json_str(j, "verification");
  o->operator_master_key = mx_json_str(j, "operator_master_key");
  o->room_id = mx_json_str(j, "room_id");
  o->event_id = mx_json_str(j, "event_id");
  o->via_voice = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "via_voice"));
  o->transcript = mx_json_str(j, "transcript");
}

/* The hash of the arguments that would run, recomputed: the stored row's
 * args_hash is not evidence that its args column was not edited since. */
static mx_err stored_args_hash(const char *tool, const cJSON *args, char out[TOOLS_ARGS_HASH_LEN + 1])
{
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  char err[MX_ERRBUF_LEN];
  mx_err rc = mx_json_canonical(args, &canon, err);
  if (!rc)
    tools_args_hash(tool, mx_buf_cstr(&canon), out);
  mx_buf_release(&canon);
  return rc;
}

/* A stored action re-checked against the current manifest, then run. */
static mx_err run_stored(struct tools_engine *e, const struct tools_pending *p, struct inflight *fl,
                         struct tools_outcome *out, char *err)
{
  const struct tools_spec *spec = tools_catalog_find(p->tool);
  cJSON *args = cJSON_Parse(p->args_json);
  cJSON *oj = cJSON_Parse(p->origin_json ? p->origin_json : "{}");
  struct tools_origin origin;
  origin_from_json(oj, &origin);
  struct call_ctx c = {spec, &origin, p->call_id, args, "ask", fl->action_id, {0, 0, 0}, fl, NULL};
  c.audit_args = engine_redacted_args(e, args);
  struct tools_policy_result pr;
  char cerr[MX_ERRBUF_LEN] = "", hash[TOOLS_ARGS_HASH_LEN + 1];
  mx_err rc = MX_OK;
  if (!spec || !args || !dev_backend_serves(e->o.backend, spec->name)) {
    engine_outcome(e, out, TOOLS_OUT_FAILED, "action %s: stored call is not runnable here", p->id);
  } else if ((rc = tools_policy_check(e->o.manifest, spec->name, args, &pr, err)) == MX_OK) {
    c.limits = pr.limits;
    if (pr.decision == TOOLS_DENY) {
      engine_audit_only(e, &c, "denied", &out->intent_seq);
      engine_outcome(e, out, TOOLS_OUT_DENIED, "denied by the manifest of %s: %s", e->device, pr.reason);
    } else if (stored_args_hash(p->tool, args, hash) != MX_OK ||
               tools_approvals_consume(e->o.approvals, p->id, p->tool, hash, cerr) != MX_OK) {
      engine_audit_only(e, &c, "rejected", &out->intent_seq);
      engine_outcome(e, out, TOOLS_OUT_REJECTED, "not run: %s", cerr[0] ? cerr : "its arguments cannot be hashed");
    } else {
      rc = engine_run_checked(e, &c, out, err);
    }
  }
  cJSON_Delete(c.audit_args);
  cJSON_Delete(args);
  cJSON_Delete(oj);
  return rc;
}

mx_err tools_engine_run_approved(struct tools_engine *e, const char *action_id, struct tools_outcome *out, char *err)
{
  outcome_init(out);
  if (engine_has_action(e, action_id))
    return mx_fail(MX_ERR_CONFLICT, err, "action %s is being handled by its waiting call", action_id);
  struct tools_pending p;
  mx_err rc = tools_approvals_get(e->o.approvals, action_id, &p, err);
  if (rc)
    return rc;
  if (strcmp(p.device, e->device) != 0) {
    rc = mx_fail(MX_ERR_INVALID, err, "action %s belongs to device '%s', not '%s'", action_id, p.device, e->device);
  } else {
    struct inflight fl;
    memset(&fl, 0, sizeof(fl));
    snprintf(fl.action_id, sizeof(fl.action_id), "%s", p.id);
    snprintf(out->action_id, sizeof(out->action_id), "%s", p.id);
    engine_track(e, &fl);
    rc = run_stored(e, &p, &fl, out, err);
    engine_untrack(e, &fl);
  }
  tools_pending_release(&p);
  return rc;
}
