/*
 * agent_call.c - POST /v1/call on the device: the agent's own manifest
 * decides (it does not trust the bot), ASK needs the bot's approval bound to
 * the exact arguments, the intent is audited before anything runs (fail
 * closed), the call runs through devices/local, and the result is audited.
 *
 * Request:  {"request_id", "tool", "args", "timeout_ms"?, "max_output"?,
 *            "approval"?: {"ref", "tool", "args_sha256"},
 *            "operator"?: {"mxid", "device", "verification", "master_key", "room_id", "event_id"}}
 * "approval" is the bot saying an operator approved this exact call; the
 * whole request is HMAC-signed with the device key, so only the bot can say
 * it. args_sha256 = hex SHA-256 of the canonical JSON of args. "operator"
 * (who asked, from which Matrix device and message) goes into every audit
 * record of the call; being inside the signed body, it is the bot's word.
 * Layer: devices/agent. The parsed request is owned here; *reply is owned by
 * the caller.
 */
#include "agent_int.h"

#include <string.h>

#include <microhttpd.h>

#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

struct call_req {
  const char *request_id;
  const char *tool;
  const cJSON *args;
  const cJSON *approval;
  const cJSON *op; /* operator context, copied into the audit */
  int64_t timeout_ms;
  int64_t max_output;
};

static int parse_req(const cJSON *j, struct call_req *q, cJSON **reply)
{
  memset(q, 0, sizeof(*q));
  if (!cJSON_IsObject(j))
    return agent_error(MHD_HTTP_BAD_REQUEST, "bad_request", "body: expected a JSON object", reply);
  q->request_id = mx_json_str(j, "request_id");
  q->tool = mx_json_str(j, "tool");
  q->args = mx_json_obj(j, "args");
  q->approval = mx_json_obj(j, "approval");
  q->op = mx_json_obj(j, "operator");
  if (!q->request_id || !*q->request_id || strlen(q->request_id) > 128)
    return agent_error(MHD_HTTP_BAD_REQUEST, "bad_request", "request_id: expected a string of 1-128 bytes", reply);
  if (!q->tool || !*q->tool || strlen(q->tool) > 64)
    return agent_error(MHD_HTTP_BAD_REQUEST, "bad_request", "tool: expected a tool name", reply);
  if (!q->args)
    return agent_error(MHD_HTTP_BAD_REQUEST, "bad_request", "args: expected an object", reply);
  mx_json_int(j, "timeout_ms", &q->timeout_ms);
  mx_json_int(j, "max_output", &q->max_output);
  return 0;
}

/* 1 when the approval names this tool and these exact arguments. */
static int approval_matches(const struct call_req *q, char *why, size_t n)
{
  if (!q->approval) {
    snprintf(why, n, "tool '%s' needs an operator's approval and none was conveyed", q->tool);
    return 0;
  }
  const char *tool = mx_json_str(q->approval, "tool");
  const char *hash = mx_json_str(q->approval, "args_sha256");
  const char *ref = mx_json_str(q->approval, "ref");
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  char hex[2 * MX_SHA256_LEN + 1] = "";
  if (!mx_json_canonical(q->args, &canon, NULL))
    mx_sha256_hex(canon.buf, canon.len, hex);
  mx_buf_release(&canon);
  if (!ref || !tool || !hash || strcmp(tool, q->tool) != 0 || !hex[0] || strlen(hash) != strlen(hex) ||
      !mx_ct_equal(hash, hex, strlen(hex))) {
    snprintf(why, n, "approval does not match this call (tool '%s', other arguments or missing fields)", q->tool);
    return 0;
  }
  return 1;
}

static void fill_operator(struct tools_audit_entry *e, const cJSON *op)
{
  e->operator_mxid = mx_json_str(op, "mxid");
  e->operator_device = mx_json_str(op, "device");
  e->verification = mx_json_str(op, "verification");
  e->operator_master_key = mx_json_str(op, "master_key");
  e->room_id = mx_json_str(op, "room_id");
  e->event_id = mx_json_str(op, "event_id");
}

/* Refusals are audited as one result row (nothing ran). */
static int refuse(struct agent *a, const struct call_req *q, const char *decision, const char *why, cJSON **reply)
{
  struct tools_audit_entry e = {.kind = "result", .call_id = q->request_id, .tool = q->tool, .args = q->args,
                                .decision = decision, .status = "denied", .exit_code = -1};
  char err[MX_ERRBUF_LEN];
  int64_t seq = 0;
  fill_operator(&e, q->op);
  if (tools_audit_append(a->audit, &e, &seq, err))
    mx_error(a->cfg->device, "audit append failed for a refusal: %s", err);
  mx_info(a->cfg->device, "call refused request_id=%s tool=%s decision=%s", q->request_id, q->tool, decision);
  *reply = cJSON_CreateObject();
  if (*reply) {
    cJSON_AddStringToObject(*reply, "request_id", q->request_id);
    cJSON_AddStringToObject(*reply, "status", "refused");
    cJSON_AddStringToObject(*reply, "decision", decision);
    cJSON_AddStringToObject(*reply, "detail", why);
    cJSON_AddNumberToObject(*reply, "audit_seq", (double)seq);
  }
  return MHD_HTTP_FORBIDDEN;
}

static void add_output(cJSON *o, const char *key, const char *key_b64, const struct mx_buf *b)
{
  if (mx_utf8_valid(mx_buf_cstr(b), b->len)) {
    cJSON_AddStringToObject(o, key, mx_buf_cstr(b));
    return;
  }
  struct mx_buf enc = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  if (!mx_b64_encode((const uint8_t *)b->buf, b->len, &enc))
    cJSON_AddStringToObject(o, key_b64, mx_buf_cstr(&enc));
  mx_buf_release(&enc);
}

static void output_hash(const struct dev_result *r, char hex[2 * MX_SHA256_LEN + 1])
{
  struct mx_buf all = MX_BUF_INIT(2 * MX_BUF_MAX_TOOL_OUTPUT + 1);
  if (mx_buf_add(&all, r->out.buf ? r->out.buf : "", r->out.len) ||
      mx_buf_add(&all, r->err.buf ? r->err.buf : "", r->err.len))
    hex[0] = '\0';
  else
    mx_sha256_hex(all.buf, all.len, hex);
  mx_buf_release(&all);
}

static cJSON *result_json(const struct call_req *q, const struct dev_result *r, const char *decision, int64_t seq)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddStringToObject(o, "request_id", q->request_id);
  cJSON_AddStringToObject(o, "status", dev_status_str(r->status));
  cJSON_AddStringToObject(o, "decision", decision);
  cJSON_AddNumberToObject(o, "exit_code", r->exit_code);
  cJSON_AddNumberToObject(o, "signal", r->signal);
  cJSON_AddBoolToObject(o, "truncated", r->truncated);
  add_output(o, "stdout", "stdout_b64", &r->out);
  add_output(o, "stderr", "stderr_b64", &r->err);
  if (r->detail)
    cJSON_AddStringToObject(o, "detail", r->detail);
  cJSON_AddNumberToObject(o, "duration_ms", (double)r->duration_ms);
  cJSON_AddNumberToObject(o, "audit_seq", (double)seq);
  return o;
}

/* Runs an allowed call between its intent and result records. */
static int execute(struct agent *a, const struct call_req *q, const struct tools_policy_result *pr, cJSON **reply)
{
  char err[MX_ERRBUF_LEN], hex[2 * MX_SHA256_LEN + 1];
  const char *decision = tools_decision_str(pr->decision);
  const char *ref = mx_json_str(q->approval, "ref");
  struct tools_audit_entry e = {.kind = "intent", .call_id = q->request_id, .tool = q->tool, .args = q->args,
                                .decision = decision, .approval_ref = ref, .status = "pending", .exit_code = -1};
  int64_t intent = 0, seq = 0;
  fill_operator(&e, q->op);
  if (tools_audit_append(a->audit, &e, &intent, err)) {
    mx_error(a->cfg->device, "audit unavailable, refusing to run request_id=%s: %s", q->request_id, err);
    return agent_error(MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable", err, reply);
  }
  struct dev_call call = {.request_id = q->request_id, .tool = q->tool, .args = q->args,
                          .timeout_ms = pr->limits.timeout_ms, .max_output = pr->limits.max_output,
                          .new_file_mode = pr->limits.file_mode};
  if (q->timeout_ms > 0 && q->timeout_ms < call.timeout_ms)
    call.timeout_ms = (int)q->timeout_ms;
  if (q->max_output > 0 && (size_t)q->max_output < call.max_output)
    call.max_output = (size_t)q->max_output;
  struct dev_result r;
  dev_result_init(&r);
  if (a->local->run(a->local, &call, &r, err))
    dev_result_set(&r, DEV_FAILED, "%s", err);
  output_hash(&r, hex);
  struct tools_audit_entry res = e;
  res.kind = "result";
  res.intent_seq = intent;
  res.status = dev_status_str(r.status);
  res.exit_code = r.exit_code;
  res.signal = r.signal;
  res.output_sha256 = hex[0] ? hex : NULL;
  res.duration_ms = r.duration_ms;
  if (tools_audit_append(a->audit, &res, &seq, err))
    mx_error(a->cfg->device, "audit result append failed request_id=%s: %s", q->request_id, err);
  *reply = result_json(q, &r, decision, seq ? seq : intent);
  dev_result_release(&r);
  return MHD_HTTP_OK;
}

int agent_handle_call(struct agent *a, const char *body, size_t len, cJSON **reply)
{
  struct call_req q;
  struct tools_policy_result pr;
  char err[MX_ERRBUF_LEN], why[300];
  cJSON *j = cJSON_ParseWithLength(body, len);
  int status = parse_req(j, &q, reply);
  if (status)
    goto done;
  if (tools_policy_check(a->manifest, q.tool, q.args, &pr, err)) {
    status = refuse(a, &q, "deny", err, reply);
    goto done;
  }
  if (pr.decision == TOOLS_DENY)
    status = refuse(a, &q, "deny", pr.reason, reply);
  else if (pr.decision == TOOLS_ASK && !approval_matches(&q, why, sizeof(why)))
    status = refuse(a, &q, "ask", why, reply);
  else
    status = execute(a, &q, &pr, reply);
done:
  cJSON_Delete(j);
  return status;
}
