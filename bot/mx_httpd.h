/*
 * bot/mx_httpd.h - the daemon's local HTTP endpoint (libmicrohttpd): GET
 * /health (200 {"status":"ok",...} or 503 {"status":"unavailable","reason":
 * ...} as the health callback decides) and GET /metrics (Prometheus text).
 * Other paths 404, other methods 405 (HEAD allowed). Binds exactly the given
 * IP literal, with small connection limits and timeouts.
 * Layer: bot/; must not call llm/, tools/ or devices/ (their state reaches
 * it through callbacks). Requests are served on MHD's own thread.
 */
#ifndef MX_HTTPD_H
#define MX_HTTPD_H

#include <cjson/cJSON.h>

#include "mx_err.h"
#include "mx_metrics.h"

/*
 * Called on the HTTP thread for each GET /health: must be thread-safe.
 * report is an empty object, borrowed: add members to it (e.g. per-identity
 * state). Return 1 when every identity's sync is live, 0 otherwise, then add
 * a string member "reason" (httpd supplies a generic one when missing).
 * "status" is set by httpd and overrides any the callback adds.
 */
typedef int (*mx_health_fn)(void *ctx, cJSON *report);

struct mx_httpd;

#define MX_HTTPD_CONN_LIMIT 32       /* connections in total */
#define MX_HTTPD_PER_IP_LIMIT 8      /* connections per client address */
#define MX_HTTPD_TIMEOUT_S 10        /* idle or slow clients are closed after this */

/* listen: "IP:PORT" (see mx_config_parse_listen); port 0 picks a free one
 * (tests), read back with mx_httpd_port. health NULL reports 503 ("no health
 * check registered"); metrics NULL makes /metrics 404. Both are borrowed and
 * must outlive the server. */
mx_err mx_httpd_start(const char *listen, mx_health_fn health, void *ctx, struct mx_metrics *metrics,
                      struct mx_httpd **out, char *err);
/* Limits for mx_httpd_start_opts; a 0 field takes the default above. */
struct mx_httpd_opts {
  unsigned conn_limit;
  unsigned per_ip_limit;
  unsigned timeout_s;
};

/* mx_httpd_start with explicit limits (tests use a short timeout). */
mx_err mx_httpd_start_opts(const char *listen, mx_health_fn health, void *ctx, struct mx_metrics *metrics,
                           const struct mx_httpd_opts *opts, struct mx_httpd **out, char *err);
/* The bound port. */
int mx_httpd_port(const struct mx_httpd *h);
/* Stops accepting, finishes or closes open connections, joins the thread.
 * NULL is a no-op. */
void mx_httpd_stop(struct mx_httpd *h);

#endif
