/*
 * agent_http.c - mxfleet-agent's HTTP front: libmicrohttpd on the one bound
 * socket, connection limits and timeouts, body counting (413), request
 * authentication (401 + reason code) and routing to the handlers.
 * MHD's CONNECTION_MEMORY_LIMIT bounds its own buffer, not the body, so the
 * body is counted here; agent_serve (authentication and routing) takes a
 * plain request so it runs without a socket too (tests/fuzz/fuzz_agent_http.c).
 * Layer: devices/agent. Reply cJSON is owned here.
 */
#include "agent_int.h"

#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "mx_crypto.h"
#include "mx_log.h"
#include "mx_util.h"

/* Beyond this much over the limit we stop draining and close. */
#define AGENT_DRAIN_MAX ((size_t)64 << 20)

struct req {
  char *target;        /* raw request target (path + query): what was signed */
  struct mx_buf body;
  size_t seen;         /* body bytes received, kept or not */
  int too_big;
};

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
  (void)c;
  struct agent *a = cls;
  struct req *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->target = mx_strdup(uri);
  mx_buf_init(&r->body, a->cfg->max_body);
  return r;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
  (void)cls, (void)c, (void)toe;
  struct req *r = *con_cls;
  if (!r)
    return;
  mx_buf_release(&r->body);
  free(r->target);
  free(r);
  *con_cls = NULL;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, cJSON *reply)
{
  char *txt = reply ? cJSON_PrintUnformatted(reply) : NULL;
  cJSON_Delete(reply);
  if (!txt) {
    txt = mx_strdup("{\"error\":\"internal\"}");
    status = MHD_HTTP_INTERNAL_SERVER_ERROR;
  }
  if (!txt)
    return MHD_NO;
  struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(txt);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", "application/json");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return ret;
}

int agent_error(int status, const char *code, const char *detail, cJSON **reply)
{
  *reply = cJSON_CreateObject();
  if (*reply) {
    cJSON_AddStringToObject(*reply, "error", code);
    if (detail)
      cJSON_AddStringToObject(*reply, "detail", detail);
  }
  return status;
}

static enum dev_wg_verdict authenticate(struct agent *a, const struct agent_request *q)
{
  uint8_t h[MX_SHA256_LEN];
  mx_sha256(q->body ? q->body : "", q->body_len, h);
  return dev_wg_verify(a->key, q->method, q->target ? q->target : "", q->ts, q->nonce, q->sig, h, q->now_s, a->nonces);
}

static int route(struct agent *a, const struct agent_request *q, cJSON **reply)
{
  int get = strcmp(q->method, "GET") == 0, post = strcmp(q->method, "POST") == 0;
  if (post && strcmp(q->url, "/v1/call") == 0)
    return agent_handle_call(a, q->body ? q->body : "", q->body_len, reply);
  if (get && strcmp(q->url, "/v1/health") == 0)
    return agent_handle_health(a, reply);
  if (get && strcmp(q->url, "/v1/audit/checkpoint") == 0)
    return agent_handle_checkpoint(a, reply);
  if (get && strcmp(q->url, "/v1/audit") == 0)
    return agent_handle_audit(a, q->since, reply);
  return agent_error(MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint", reply);
}

int agent_serve(struct agent *a, const struct agent_request *q, cJSON **reply)
{
  *reply = NULL;
  enum dev_wg_verdict v = authenticate(a, q);
  if (v != DEV_WG_OK) {
    mx_warn(a->cfg->device, "request refused method=%s path=%s reason=%s", q->method, q->url, dev_wg_verdict_str(v));
    *reply = cJSON_CreateObject();
    if (*reply) {
      cJSON_AddStringToObject(*reply, "error", "unauthorized");
      cJSON_AddStringToObject(*reply, "reason", dev_wg_verdict_str(v));
    }
    return v == DEV_WG_BUSY ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_UNAUTHORIZED;
  }
  return route(a, q, reply);
}

static enum MHD_Result finish(struct agent *a, struct MHD_Connection *c, const char *url, const char *method,
                              struct req *r)
{
  cJSON *reply = NULL;
  int status;
  if (r->too_big) {
    status = agent_error(MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "request body is over the agent's limit", &reply);
    return send_json(c, status, reply);
  }
  struct agent_request q = {
      .method = method,
      .url = url,
      .target = r->target,
      .ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, DEV_WG_HDR_TS),
      .nonce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, DEV_WG_HDR_NONCE),
      .sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, DEV_WG_HDR_SIG),
      .since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"),
      .body = mx_buf_cstr(&r->body),
      .body_len = r->body.len,
      .now_s = mx_now_ms() / 1000,
  };
  status = agent_serve(a, &q, &reply);
  return send_json(c, status, reply);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void)version;
  struct agent *a = cls;
  struct req *r = *con_cls;
  if (!r)
    return MHD_NO; /* out of memory in on_uri: drop the connection */
  if (*upload_size > 0) {
    r->seen += *upload_size;
    if (!r->too_big && mx_buf_add(&r->body, upload, *upload_size))
      r->too_big = 1; /* the buffer was released by the failed add; keep counting */
    *upload_size = 0;
    if (r->too_big && r->seen > a->cfg->max_body + AGENT_DRAIN_MAX)
      return MHD_NO; /* stop reading an endless body */
    return MHD_YES;
  }
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (r->seen == 0 && cl && strtoull(cl, NULL, 10) > a->cfg->max_body && !r->too_big) {
    /* Declared too big: answer before the body is sent (curl waits on
     * "Expect: 100-continue" and reads this 413 instead of uploading). */
    r->too_big = 1;
    return finish(a, c, url, method, r);
  }
  if (r->seen == 0 && !r->body.buf && !r->too_big) {
    /* First call for this request: the body (if any) comes next. */
    if (mx_buf_add(&r->body, "", 0))
      return MHD_NO;
    return MHD_YES;
  }
  return finish(a, c, url, method, r);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
  struct agent *a = cls;
  char line[512];
  vsnprintf(line, sizeof(line), fmt, ap);
  mx_rtrim(line);
  mx_debug(a->cfg->device, "mhd: %s", line);
}

mx_err agent_http_start(struct agent *a, char *err)
{
  const struct agent_config *c = a->cfg;
  /* One thread per connection: a long tool call must not block /v1/health;
   * MAX_CONNECTIONS bounds the threads. */
  a->mhd = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
      a, MHD_OPTION_LISTEN_SOCKET, a->listen_fd, MHD_OPTION_CONNECTION_LIMIT, c->max_connections,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->per_ip_connections, MHD_OPTION_CONNECTION_TIMEOUT,
      c->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024, MHD_OPTION_URI_LOG_CALLBACK,
      on_uri, a, MHD_OPTION_NOTIFY_COMPLETED, on_done, a, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, a, MHD_OPTION_END);
  if (!a->mhd)
    return mx_fail(MX_ERR_IO, err, "cannot start the HTTP server on %s:%d", c->listen_host, a->port);
  a->listen_fd = -1; /* MHD owns and closes it now */
  return MX_OK;
}

void agent_http_stop(struct agent *a)
{
  if (a->mhd)
    MHD_stop_daemon(a->mhd);
  a->mhd = NULL;
}
