/*
 * mx_httpd: a real libmicrohttpd server on a free loopback port, spoken to
 * over raw sockets: /health 200 and 503 with the callback's reason,
 * /metrics text, 404, 405 with Allow, HEAD, only the given address bound,
 * the per-address connection limit, slow clients timed out, oversized
 * headers refused, the port released on stop, and clear
 * errors for bad or busy addresses. Every read has a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mx_httpd.h"
#include "mx_log.h"
#include "mx_metrics.h"
#include "mx_util.h"

#define IO_DEADLINE_MS 5000

struct resp {
  int status;       /* 0 when the server closed without answering */
  char head[2048];  /* status line and headers */
  char body[65536];
};

static int connect_to(const char *ip, int port)
{
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, ip, &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* Reads until EOF or the deadline; returns bytes read. */
static size_t read_all(int fd, char *buf, size_t cap)
{
  size_t n = 0;
  int64_t deadline = mx_mono_ms() + IO_DEADLINE_MS;
  for (;;) {
    int64_t left = deadline - mx_mono_ms();
    assert_true(left > 0);
    struct pollfd p = {fd, POLLIN, 0};
    int pr = poll(&p, 1, (int)left);
    if (pr < 0 && errno == EINTR)
      continue;
    assert_true(pr > 0);
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0)
      break; /* EOF, or a reset from a refused connection */
    n += (size_t)r;
    assert_true(n < cap - 1);
  }
  buf[n] = '\0';
  return n;
}

static void request_on(int fd, const char *method, const char *path, struct resp *r)
{
  char req[256];
  static char raw[sizeof(r->head) + sizeof(r->body)];
  int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method,
                   path);
  assert_int_equal(write(fd, req, (size_t)n), n);
  read_all(fd, raw, sizeof(raw));
  memset(r, 0, sizeof(*r));
  char *sep = strstr(raw, "\r\n\r\n");
  if (!sep)
    return;
  *sep = '\0';
  size_t hl = strlen(raw);
  size_t bl = strlen(sep + 4);
  assert_true(hl < sizeof(r->head) && bl < sizeof(r->body));
  memcpy(r->head, raw, hl + 1);
  memcpy(r->body, sep + 4, bl + 1);
  sscanf(raw, "HTTP/1.%*d %d", &r->status);
}

static void request(int port, const char *method, const char *path, struct resp *r)
{
  int fd = connect_to("127.0.0.1", port);
  assert_true(fd >= 0);
  request_on(fd, method, path, r);
  close(fd);
}

static int has_header(const struct resp *r, const char *line)
{
  char want[256];
  snprintf(want, sizeof(want), "\r\n%s\r\n", line);
  char head[sizeof(r->head) + 4];
  snprintf(head, sizeof(head), "%s\r\n", r->head);
  return strcasestr(head, want) != NULL;
}

struct health_state {
  int live;
  int with_reason;
  int calls;
};

static int health_cb(void *ctx, cJSON *report)
{
  struct health_state *hs = ctx;
  hs->calls++;
  cJSON *ids = cJSON_AddObjectToObject(report, "identities");
  cJSON_AddStringToObject(ids, "pc1", hs->live ? "live" : "failing");
  cJSON_AddStringToObject(report, "status", "bogus"); /* httpd's own status wins */
  if (!hs->live && hs->with_reason)
    cJSON_AddStringToObject(report, "reason", "pc1: sync failing: connection refused");
  return hs->live;
}

static struct mx_httpd *start(struct health_state *hs, struct mx_metrics *m)
{
  char err[MX_ERRBUF_LEN] = "";
  struct mx_httpd *h = NULL;
  mx_err rc = mx_httpd_start("127.0.0.1:0", hs ? health_cb : NULL, hs, m, &h, err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, MX_OK);
  assert_true(mx_httpd_port(h) > 0);
  return h;
}

static void health_is_200_when_live_and_503_with_reason(void **state)
{
  (void)state;
  struct health_state hs = {1, 1, 0};
  struct mx_httpd *h = start(&hs, NULL);
  int port = mx_httpd_port(h);
  struct resp r;

  request(port, "GET", "/health", &r);
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Content-Type: application/json"));
  assert_string_equal(r.body, "{\"status\":\"ok\",\"identities\":{\"pc1\":\"live\"}}");

  hs.live = 0;
  request(port, "GET", "/health", &r);
  assert_int_equal(r.status, 503);
  assert_string_equal(r.body, "{\"status\":\"unavailable\",\"identities\":{\"pc1\":\"failing\"},"
                              "\"reason\":\"pc1: sync failing: connection refused\"}");

  hs.with_reason = 0;
  request(port, "GET", "/health", &r);
  assert_int_equal(r.status, 503);
  assert_string_equal(r.body, "{\"status\":\"unavailable\",\"identities\":{\"pc1\":\"failing\"},"
                              "\"reason\":\"not every identity's sync is live\"}");
  assert_int_equal(hs.calls, 3);
  mx_httpd_stop(h);
}

static void without_a_health_callback_it_is_503(void **state)
{
  (void)state;
  struct mx_httpd *h = start(NULL, NULL);
  struct resp r;
  request(mx_httpd_port(h), "GET", "/health", &r);
  assert_int_equal(r.status, 503);
  assert_string_equal(r.body, "{\"status\":\"unavailable\",\"reason\":\"no health check registered\"}");
  /* No metrics registry: /metrics does not exist. */
  request(mx_httpd_port(h), "GET", "/metrics", &r);
  assert_int_equal(r.status, 404);
  mx_httpd_stop(h);
}

static void metrics_serves_prometheus_text(void **state)
{
  (void)state;
  struct health_state hs = {1, 1, 0};
  struct mx_metrics *m = mx_metrics_new();
  mx_metrics_add(m, "pc1", MX_M_SYNCS, 7);
  mx_metrics_observe_ms(m, "pc1", MX_H_HANDLING, 120);
  struct mx_httpd *h = start(&hs, m);
  struct resp r;
  request(mx_httpd_port(h), "GET", "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
  assert_non_null(strstr(r.body, "# TYPE mxfleet_syncs_total counter\nmxfleet_syncs_total{identity=\"pc1\"} 7\n"));
  assert_non_null(strstr(r.body, "mxfleet_handling_duration_seconds_bucket{identity=\"pc1\",le=\"0.25\"} 1\n"));
  /* The body is exactly what the registry renders. */
  struct mx_buf direct = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  assert_int_equal(mx_metrics_render(m, &direct), MX_OK);
  assert_string_equal(r.body, mx_buf_cstr(&direct));
  mx_buf_release(&direct);
  mx_httpd_stop(h);
  mx_metrics_free(m);
}

static void other_paths_404_other_methods_405(void **state)
{
  (void)state;
  struct health_state hs = {1, 1, 0};
  struct mx_metrics *m = mx_metrics_new();
  struct mx_httpd *h = start(&hs, m);
  int port = mx_httpd_port(h);
  struct resp r;
  static const char *const missing[] = {"/", "/nope", "/health/", "/healthz", "/metrics/x"};
  for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
    request(port, "GET", missing[i], &r);
    assert_int_equal(r.status, 404);
  }
  static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH"};
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
    request(port, methods[i], "/health", &r);
    assert_int_equal(r.status, 405);
    assert_true(has_header(&r, "Allow: GET, HEAD"));
    request(port, methods[i], "/metrics", &r);
    assert_int_equal(r.status, 405);
  }
  assert_int_equal(hs.calls, 0);
  /* HEAD: the status of GET, no body. */
  request(port, "HEAD", "/health", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "");
  /* The query string is not part of the path. */
  request(port, "GET", "/health?verbose=1", &r);
  assert_int_equal(r.status, 200);
  mx_httpd_stop(h);
  mx_metrics_free(m);
}

/* 127.0.0.2 is loopback too: a wildcard bind would answer there. */
static void binds_only_the_given_address_and_releases_it(void **state)
{
  (void)state;
  struct health_state hs = {1, 1, 0};
  struct mx_httpd *h = start(&hs, NULL);
  int port = mx_httpd_port(h);
  int fd = connect_to("127.0.0.2", port);
  assert_int_equal(fd, -1);
  assert_int_equal(errno, ECONNREFUSED);

  char err[MX_ERRBUF_LEN];
  char addr[64];
  char want[MX_ERRBUF_LEN];
  struct mx_httpd *h2 = NULL;
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  assert_int_equal(mx_httpd_start(addr, health_cb, &hs, NULL, &h2, err), MX_ERR_IO);
  assert_null(h2);
  snprintf(want, sizeof(want), "http listen address '%s': cannot listen: Address already in use", addr);
  assert_string_equal(err, want);

  mx_httpd_stop(h);
  assert_int_equal(connect_to("127.0.0.1", port), -1);
  /* The socket was closed: the same port can be bound again at once. */
  assert_int_equal(mx_httpd_start(addr, health_cb, &hs, NULL, &h2, err), MX_OK);
  struct resp r;
  request(port, "GET", "/health", &r);
  assert_int_equal(r.status, 200);
  mx_httpd_stop(h2);
}

static void bad_addresses_are_refused(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct mx_httpd *h = (struct mx_httpd *)1;
  assert_int_equal(mx_httpd_start("localhost:9090", NULL, NULL, NULL, &h, err), MX_ERR_INVALID);
  assert_null(h);
  assert_string_equal(err, "http listen address 'localhost:9090': expected IP:PORT like 127.0.0.1:9090");
  assert_int_equal(mx_httpd_start("0.0.0.0", NULL, NULL, NULL, &h, err), MX_ERR_INVALID);
  /* An address this host does not have. */
  assert_int_equal(mx_httpd_start("192.0.2.1:0", NULL, NULL, NULL, &h, err), MX_ERR_IO);
  assert_string_equal(err, "http listen address '192.0.2.1:0': cannot listen: Cannot assign requested address");
}

/* MX_HTTPD_PER_IP_LIMIT idle connections fill the quota: the next one is
 * closed without an answer; once they go, requests are served again. */
static void connections_per_address_are_limited(void **state)
{
  (void)state;
  struct health_state hs = {1, 1, 0};
  struct mx_httpd *h = start(&hs, NULL);
  int port = mx_httpd_port(h);
  int idle[MX_HTTPD_PER_IP_LIMIT];
  for (int i = 0; i < MX_HTTPD_PER_IP_LIMIT; i++) {
    idle[i] = connect_to("127.0.0.1", port);
    assert_true(idle[i] >= 0);
  }
  struct resp r;
  int fd = connect_to("127.0.0.1", port);
  assert_true(fd >= 0); /* the kernel accepts; MHD then drops it */
  request_on(fd, "GET", "/health", &r);
  assert_int_equal(r.status, 0);
  close(fd);
  for (int i = 0; i < MX_HTTPD_PER_IP_LIMIT; i++)
    close(idle[i]);
  /* MHD notices the closes asynchronously: poll until served, bounded. */
  int64_t deadline = mx_mono_ms() + IO_DEADLINE_MS;
  do {
    request(port, "GET", "/health", &r);
  } while (r.status != 200 && mx_mono_ms() < deadline);
  assert_int_equal(r.status, 200);
  mx_httpd_stop(h);
}

/* "[::1]:0" binds the IPv6 loopback only (IPV6_V6ONLY): reachable over
 * ::1, not over 127.0.0.1. Skipped where the host has no IPv6 loopback. */
static void ipv6_loopback_works(void **state)
{
  (void)state;
  struct health_state hs = {1, 1, 0};
  struct mx_httpd *h = NULL;
  char err[MX_ERRBUF_LEN] = "";
  if (mx_httpd_start("[::1]:0", health_cb, &hs, NULL, &h, err) != MX_OK) {
    print_message("no IPv6 loopback here (%s): skipped\n", err);
    skip();
  }
  int port = mx_httpd_port(h);
  struct sockaddr_in6 sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons((uint16_t)port);
  sa.sin6_addr = in6addr_loopback;
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  struct resp r;
  request_on(fd, "GET", "/health", &r);
  close(fd);
  assert_int_equal(r.status, 200);
  assert_int_equal(connect_to("127.0.0.1", port), -1);
  mx_httpd_stop(h);
}

/* A client that sends half a request and stalls is closed after the
 * connection timeout (1 s here), so it cannot hold a slot forever. */
static void slow_clients_are_closed(void **state)
{
  (void)state;
  struct health_state hs = {1, 1, 0};
  struct mx_httpd_opts opts = {0, 0, 1};
  struct mx_httpd *h = NULL;
  assert_int_equal(mx_httpd_start_opts("127.0.0.1:0", health_cb, &hs, NULL, &opts, &h, NULL), MX_OK);
  int fd = connect_to("127.0.0.1", mx_httpd_port(h));
  assert_true(fd >= 0);
  static const char part[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  assert_int_equal(write(fd, part, sizeof(part) - 1), (ssize_t)(sizeof(part) - 1));
  int64_t t0 = mx_mono_ms();
  char buf[4096];
  assert_int_equal(read_all(fd, buf, sizeof(buf)), 0); /* EOF, no answer */
  int64_t waited = mx_mono_ms() - t0;
  assert_true(waited >= 500 && waited < IO_DEADLINE_MS);
  assert_int_equal(hs.calls, 0);
  close(fd);
  mx_httpd_stop(h);
}

/* Headers beyond the per-connection memory limit are refused, never
 * buffered: an error status (431 or 413) or a closed connection. */
static void oversized_requests_are_refused(void **state)
{
  (void)state;
  struct health_state hs = {1, 1, 0};
  struct mx_httpd *h = start(&hs, NULL);
  int fd = connect_to("127.0.0.1", mx_httpd_port(h));
  assert_true(fd >= 0);
  static char req[64 * 1024];
  size_t n = (size_t)snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
  memset(req + n, 'a', 40000);
  n += 40000;
  n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\nConnection: close\r\n\r\n");
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(fd, req + off, n - off);
    if (w <= 0)
      break; /* the server may close while we still write */
    off += (size_t)w;
  }
  char buf[8192];
  read_all(fd, buf, sizeof(buf));
  int status = 0;
  sscanf(buf, "HTTP/1.%*d %d", &status);
  if (status != 0 && status != 431 && status != 413)
    print_error("unexpected status %d\n", status);
  assert_true(status == 0 || status == 431 || status == 413);
  assert_int_equal(hs.calls, 0);
  close(fd);
  mx_httpd_stop(h);
}

static int quiet_logs(void **state)
{
  (void)state;
  mx_log_set_level(MX_LOG_ERROR);
  return 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(health_is_200_when_live_and_503_with_reason),
    cmocka_unit_test(without_a_health_callback_it_is_503),
    cmocka_unit_test(metrics_serves_prometheus_text),
    cmocka_unit_test(other_paths_404_other_methods_405),
    cmocka_unit_test(binds_only_the_given_address_and_releases_it),
    cmocka_unit_test(bad_addresses_are_refused),
    cmocka_unit_test(connections_per_address_are_limited),
    cmocka_unit_test(ipv6_loopback_works),
    cmocka_unit_test(slow_clients_are_closed),
    cmocka_unit_test(oversized_requests_are_refused),
  };
  return cmocka_run_group_tests(tests, quiet_logs, NULL);
}
