/*
 * bot/mx_httpd.c - GET /health and GET /metrics over libmicrohttpd.
 *
 * Layer: bot/, on common/ and mx_config (address parsing) and mx_metrics.
 * The listening socket is made here (bind errors then say exactly why) and
 * handed to MHD, which serves it on its own thread with epoll/poll.
 * Ownership: the health report is created and deleted per request here; the
 * callback only borrows it.
 */
#include "mx_httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "mx_buf.h"
#include "mx_config.h"
#include "mx_log.h"

#define HTTPD_MEMORY_LIMIT ((size_t)16 * 1024) /* per connection: we only read a request line + headers */
#define HTTPD_BACKLOG 16

struct mx_httpd {
  struct MHD_Daemon *d;
  mx_health_fn health;
  void *ctx;
  struct mx_metrics *metrics;
  int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype, const char *body,
                             int allow)
{
  struct MHD_Response *r =
    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (allow)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Builds the report: "status" first, then what the callback added. */
static char *health_body(struct mx_httpd *h, int *ok)
{
  cJSON *report = cJSON_CreateObject();
  if (!report)
    return NULL;
  *ok = h->health ? (h->health(h->ctx, report) ? 1 : 0) : 0;
  cJSON_DeleteItemFromObjectCaseSensitive(report, "status");
  const cJSON *reason = cJSON_GetObjectItemCaseSensitive(report, "reason");
  if (!*ok && !cJSON_IsString(reason)) {
    cJSON_DeleteItemFromObjectCaseSensitive(report, "reason");
    cJSON_AddStringToObject(report, "reason",
                            h->health ? "not every identity's sync is live" : "no health check registered");
  }
  cJSON *status = cJSON_CreateString(*ok ? "ok" : "unavailable");
  char *body = NULL;
  if (status) {
    cJSON_InsertItemInArray(report, 0, status);
    /* InsertItemInArray does not name the item; an object member needs one. */
    status->string = strdup("status");
    if (status->string)
      body = cJSON_PrintUnformatted(report);
  }
  cJSON_Delete(report);
  return body;
}

static enum MHD_Result serve_health(struct mx_httpd *h, struct MHD_Connection *conn)
{
  int ok = 0;
  char *body = health_body(h, &ok);
  if (!body)
    return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n", 0);
  enum MHD_Result ret =
    reply(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body, 0);
  cJSON_free(body);
  return ret;
}

static enum MHD_Result serve_metrics(struct mx_httpd *h, struct MHD_Connection *conn)
{
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  if (mx_metrics_render(h->metrics, &out) != MX_OK) {
    mx_buf_release(&out);
    return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "cannot render metrics\n", 0);
  }
  enum MHD_Result ret =
    reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", mx_buf_cstr(&out), 0);
  mx_buf_release(&out);
  return ret;
}

/* Answers on the first call, before any body is read: nothing here takes a
 * body, and MHD closes the connection when a request body is left unread. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
  struct mx_httpd *h = cls;
  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)con_cls;
  int is_health = strcmp(url, "/health") == 0;
  int is_metrics = strcmp(url, "/metrics") == 0 && h->metrics;
  if (!is_health && !is_metrics)
    return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 0);
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n", 1);
  return is_health ? serve_health(h, conn) : serve_metrics(h, conn);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
  char msg[256];
  (void)cls;
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  mx_warn(NULL, "httpd: %s", msg);
}

/* Binds exactly host:port; SO_REUSEADDR so a restart is not refused while
 * old connections sit in TIME_WAIT (it never allows two listeners). */
static mx_err open_listener(const char *listen_addr, int *fd_out, int *port_out, char *err)
{
  char host[64];
  int port;
  mx_err rc = mx_config_parse_listen(listen_addr, 1, host, sizeof(host), &port, err);
  if (rc)
    return rc;
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    len = sizeof(*in4);
  } else {
    inet_pton(AF_INET6, host, &in6->sin6_addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    len = sizeof(*in6);
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  if (fd < 0)
    return mx_fail(MX_ERR_IO, err, "http listen address '%s': cannot create socket: %s", listen_addr,
                   strerror(errno));
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, HTTPD_BACKLOG) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
    rc = mx_fail(MX_ERR_IO, err, "http listen address '%s': cannot listen: %s", listen_addr, strerror(errno));
    close(fd);
    return rc;
  }
  *port_out = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
  *fd_out = fd;
  return MX_OK;
}

mx_err mx_httpd_start_opts(const char *listen_addr, mx_health_fn health, void *ctx, struct mx_metrics *metrics,
                           const struct mx_httpd_opts *opts, struct mx_httpd **out, char *err)
{
  int fd = -1;
  unsigned conn = opts && opts->conn_limit ? opts->conn_limit : MX_HTTPD_CONN_LIMIT;
  unsigned per_ip = opts && opts->per_ip_limit ? opts->per_ip_limit : MX_HTTPD_PER_IP_LIMIT;
  unsigned timeout = opts && opts->timeout_s ? opts->timeout_s : MX_HTTPD_TIMEOUT_S;
  *out = NULL;
  struct mx_httpd *h = calloc(1, sizeof(*h));
  if (!h)
    return MX_ERR_NOMEM;
  h->health = health;
  h->ctx = ctx;
  h->metrics = metrics;
  mx_err rc = open_listener(listen_addr, &fd, &h->port, err);
  if (rc) {
    free(h);
    return rc;
  }
  h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                          handle, h,
                          /* first, so MHD routes every message (even about options) to mx_log */
                          MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
                          MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                          MHD_OPTION_CONNECTION_LIMIT, conn,
                          MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                          MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_MEMORY_LIMIT,
                          MHD_OPTION_END);
  if (!h->d) {
    close(fd);
    free(h);
    return mx_fail(MX_ERR_IO, err, "http listen address '%s': cannot start the HTTP server", listen_addr);
  }
  mx_info(NULL, "http endpoint listening on %s (port %d)", listen_addr, h->port);
  *out = h;
  return MX_OK;
}

mx_err mx_httpd_start(const char *listen_addr, mx_health_fn health, void *ctx, struct mx_metrics *metrics,
                      struct mx_httpd **out, char *err)
{
  return mx_httpd_start_opts(listen_addr, health, ctx, metrics, NULL, out, err);
}

int mx_httpd_port(const struct mx_httpd *h)
{
  return h ? h->port : -1;
}

void mx_httpd_stop(struct mx_httpd *h)
{
  if (!h)
    return;
  MHD_stop_daemon(h->d);
  free(h);
}
