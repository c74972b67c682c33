/*
 * dev_wg.c - the "wg" dev_backend: a tool call becomes one signed
 * POST /v1/call to mxfleet-agent; health is a signed GET /v1/health.
 * Layer: devices/wg; common/ and the signing only. The request cJSON is
 * built and freed here; call args are borrowed (duplicated into it).
 */
#include "dev_wg_int.h"

#include <stdlib.h>
#include <string.h>

#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

/* Slack over the tool's own deadline for the round trip over the tunnel. */
#define DEV_WG_SLACK_MS 5000

static mx_err add_approval(cJSON *req, const struct dev_call *call)
{
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  char hex[2 * MX_SHA256_LEN + 1];
  mx_err rc = mx_json_canonical(call->args, &canon, NULL);
  if (!rc)
    mx_sha256_hex(canon.buf, canon.len, hex);
  mx_buf_release(&canon);
  cJSON *ap = rc ? NULL : cJSON_AddObjectToObject(req, "approval");
  if (!ap || !cJSON_AddStringToObject(ap, "ref", call->approval_ref) ||
      !cJSON_AddStringToObject(ap, "tool", call->tool) || !cJSON_AddStringToObject(ap, "args_sha256", hex))
    return rc ? rc : MX_ERR_NOMEM;
  return MX_OK;
}

/* "operator": who asked. Inside the signed body, so a request cannot be
 * replayed under another operator's name. */
static mx_err add_operator(cJSON *req, const struct dev_caller *who)
{
  static const char *const keys[] = {"mxid", "device", "verification", "master_key", "room_id", "event_id"};
  const char *vals[] = {who->mxid, who->device, who->verification, who->master_key, who->room_id, who->event_id};
  cJSON *op = cJSON_AddObjectToObject(req, "operator");
  for (size_t i = 0; op && i < sizeof(keys) / sizeof(keys[0]); i++)
    if (vals[i] && !cJSON_AddStringToObject(op, keys[i], vals[i]))
      return MX_ERR_NOMEM;
  return op ? MX_OK : MX_ERR_NOMEM;
}

static char *request_body(const struct dev_call *call, mx_err *rc)
{
  cJSON *req = cJSON_CreateObject();
  cJSON *args = call->args ? cJSON_Duplicate(call->args, 1) : cJSON_CreateObject();
  *rc = MX_ERR_NOMEM;
  if (!req || !args || !cJSON_AddStringToObject(req, "request_id", call->request_id ? call->request_id : "") ||
      !cJSON_AddStringToObject(req, "tool", call->tool) || !cJSON_AddNumberToObject(req, "timeout_ms", call->timeout_ms) ||
      !cJSON_AddNumberToObject(req, "max_output", (double)call->max_output)) {
    cJSON_Delete(args);
    cJSON_Delete(req);
    return NULL;
  }
  cJSON_AddItemToObject(req, "args", args); /* consumed */
  *rc = call->approval_ref ? add_approval(req, call) : MX_OK;
  if (!*rc && call->caller)
    *rc = add_operator(req, call->caller);
  char *txt = *rc ? NULL : cJSON_PrintUnformatted(req);
  if (!*rc && !txt)
    *rc = MX_ERR_NOMEM;
  cJSON_Delete(req);
  return txt;
}

static void take_output(const cJSON *o, const char *key, const char *key_b64, struct mx_buf *dst)
{
  const char *s = mx_json_str(o, key);
  if (s) {
    if (mx_buf_adds(dst, s))
      mx_buf_init(dst, dst->max);
    return;
  }
  uint8_t *raw = NULL;
  size_t n = 0;
  s = mx_json_str(o, key_b64);
  if (s && !mx_b64_decode(s, &raw, &n) && mx_buf_add(dst, raw, n))
    mx_buf_init(dst, dst->max);
  free(raw);
}

static enum dev_status parse_status(const char *s)
{
  if (s && strcmp(s, "done") == 0)
    return DEV_DONE;
  if (s && strcmp(s, "timeout") == 0)
    return DEV_TIMEOUT;
  if (s && strcmp(s, "refused") == 0)
    return DEV_REFUSED;
  return DEV_FAILED;
}

mx_err dev_wg_fill_result(const char *device, long status, const char *body, struct dev_result *r, char *err)
{
  cJSON *o = cJSON_Parse(body);
  const char *reason = mx_json_str(o, "reason");
  const char *detail = mx_json_str(o, "detail");
  int64_t v = 0;
  mx_err rc = MX_OK;
  if (status == 401)
    rc = mx_fail(MX_ERR_AUTH, err, "agent %s: request not accepted (%s); check the device key", device,
                 reason ? reason : "unauthorized");
  else if (status == 413)
    rc = mx_fail(MX_ERR_TOO_BIG, err, "agent %s: request body over the agent's limit", device);
  else if (status == 503)
    rc = mx_fail(MX_ERR_UNAVAILABLE, err, "agent %s: unavailable (%s)", device, detail ? detail : "busy");
  else if ((status != 200 && status != 403) || !cJSON_IsObject(o))
    rc = mx_fail(MX_ERR_HTTP, err, "agent %s: unexpected reply, HTTP %ld", device, status);
  if (rc)
    goto done;
  r->status = status == 403 ? DEV_REFUSED : parse_status(mx_json_str(o, "status"));
  r->exit_code = mx_json_int(o, "exit_code", &v) ? (int)v : -1;
  r->signal = mx_json_int(o, "signal", &v) ? (int)v : 0;
  r->truncated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "truncated"));
  take_output(o, "stdout", "stdout_b64", &r->out);
  take_output(o, "stderr", "stderr_b64", &r->err);
  if (detail || r->status == DEV_REFUSED)
    dev_result_set(r, r->status, "%s", detail ? detail : "refused by the device's manifest");
done:
  cJSON_Delete(o);
  return rc;
}

static mx_err wg_run(struct dev_backend *b, const struct dev_call *call, struct dev_result *out, char *err)
{
  struct dev_wg *w = (struct dev_wg *)b;
  int64_t t0 = mx_mono_ms();
  mx_err rc;
  if (!call->tool)
    return mx_fail(MX_ERR_INVALID, err, "wg: call without a tool name");
  if (!dev_backend_serves(b, call->tool))
    return dev_result_set(out, DEV_REFUSED, "tool '%s' is not served by the wg backend", call->tool);
  char *body = request_body(call, &rc);
  if (!body)
    return mx_fail(rc, err, "wg %s: cannot encode the call", call->tool);
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  long status = 0;
  long timeout = (call->timeout_ms > 0 ? call->timeout_ms : 30000) + DEV_WG_SLACK_MS;
  /* Never retried: the agent may have run it even if the reply was lost. */
  rc = dev_wg_http(w, "POST", "/v1/call", body, strlen(body), timeout, call->cancel, &status, &resp, err);
  if (!rc)
    rc = dev_wg_fill_result(w->device, status, mx_buf_cstr(&resp), out, err);
  out->duration_ms = mx_mono_ms() - t0;
  cJSON_free(body);
  mx_buf_release(&resp);
  return rc;
}

static mx_err wg_health(struct dev_backend *b, cJSON **info, char *err)
{
  struct dev_wg *w = (struct dev_wg *)b;
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  long status = 0;
  if (info)
    *info = NULL;
  mx_err rc = dev_wg_get(w, "/v1/health", w->connect_timeout_ms, &status, &resp, err);
  if (!rc && status != 200)
    rc = mx_fail(status == 401 ? MX_ERR_AUTH : MX_ERR_UNAVAILABLE, err, "agent %s /v1/health: HTTP %ld", w->device,
                 status);
  if (!rc && info)
    *info = cJSON_Parse(mx_buf_cstr(&resp));
  mx_buf_release(&resp);
  return rc;
}

static void wg_destroy(struct dev_backend *b)
{
  struct dev_wg *w = (struct dev_wg *)b;
  if (!w)
    return;
  if (w->cached)
    curl_easy_cleanup(w->cached);
  pthread_mutex_destroy(&w->mu);
  memset(w->key, 0, sizeof(w->key));
  free(w->url);
  free(w->data_dir);
  free(w->device);
  free(w->db_path);
  free(w);
}

mx_err dev_wg_new(const struct dev_wg_config *cfg, struct dev_backend **out, char *err)
{
  *out = NULL;
  if (!cfg->url || (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0))
    return mx_fail(MX_ERR_CONFIG, err, "wg url: expected http://ADDRESS:PORT, got '%s'", cfg->url ? cfg->url : "");
  if (!cfg->key_file || !cfg->data_dir)
    return mx_fail(MX_ERR_CONFIG, err, "wg %s: key_file and data_dir are required", cfg->url);
  struct dev_wg *w = calloc(1, sizeof(*w));
  if (!w)
    return MX_ERR_NOMEM;
  pthread_mutex_init(&w->mu, NULL);
  w->url = mx_strdup(cfg->url);
  w->data_dir = mx_strdup(cfg->data_dir);
  w->device = mx_strdup(cfg->device ? cfg->device : cfg->url);
  w->db_path = mx_path_join(cfg->data_dir, "mxfleet.db");
  w->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
  w->checks = cfg->audit_checks;
  w->base.name = "wg";
  w->base.tools = dev_served_tools("wg");
  w->base.run = wg_run;
  w->base.health = wg_health;
  w->base.destroy = wg_destroy;
  mx_err rc = !w->url || !w->data_dir || !w->device || !w->db_path ? MX_ERR_NOMEM : MX_OK;
  if (!rc)
    rc = dev_wg_key_load(cfg->key_file, w->key, err);
  if (rc) {
    wg_destroy(&w->base);
    return rc;
  }
  size_t n = strlen(w->url);
  if (n && w->url[n - 1] == '/')
    w->url[n - 1] = '\0';
  *out = &w->base;
  return MX_OK;
}

mx_err dev_wg_request(struct dev_backend *b, const char *method, const char *target, const char *body, size_t n,
                      long *status, struct mx_buf *resp, char *err)
{
  struct dev_wg *w = (struct dev_wg *)b;
  return dev_wg_http(w, method, target, body, n, 30000, NULL, status, resp, err);
}
