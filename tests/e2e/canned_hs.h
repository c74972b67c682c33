/* tests/e2e/canned_hs.h - a homeserver stand-in for mx_e2ee unit tests:
 * answers POST .../keys/query with a body the test sets, .../keys/upload with
 * 50 one-time keys, .../keys/claim with no keys, anything else with {};
 * counts requests, fallback-key uploads and GET /members; on_request, when
 * set, runs before each answer (outside the lock). Header-only (static);
 * include it after cmocka.h. */
#ifndef CANNED_HS_H
#define CANNED_HS_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdio.h>

#include "mx_api.h"

struct canned_hs {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t lock;
  char *keys_query; /* owned body for POST .../keys/query */
  int hits;
  int fallback_uploads; /* POST .../keys/upload carrying fallback_keys */
  int keys_changes;     /* GET .../keys/changes */
  int members;          /* GET .../members */
  void (*on_request)(void *ctx, const char *url);
  void *on_request_ctx;
};

struct canned_req {
  char body[65536];
  size_t n;
};

static inline enum MHD_Result canned_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void)method;
  (void)version;
  struct canned_hs *h = cls;
  if (!*con_cls) {
    *con_cls = calloc(1, sizeof(struct canned_req));
    return MHD_YES;
  }
  struct canned_req *rq = *con_cls;
  if (*upload_size) {
    size_t k = *upload_size < sizeof(rq->body) - 1 - rq->n ? *upload_size : sizeof(rq->body) - 1 - rq->n;
    memcpy(rq->body + rq->n, upload, k);
    rq->n += k;
    *upload_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&h->lock);
  h->hits++;
  if (strstr(url, "/keys/upload") && strstr(rq->body, "\"fallback_keys\""))
    h->fallback_uploads++;
  if (strstr(url, "/keys/changes"))
    h->keys_changes++;
  if (strstr(url, "/members"))
    h->members++;
  const char *canned = strstr(url, "/keys/query") && h->keys_query ? h->keys_query
                       : strstr(url, "/keys/upload") ? "{\"one_time_key_counts\": {\"signed_curve25519\": 50}}"
                       : strstr(url, "/keys/claim")  ? "{\"one_time_keys\": {}}"
                                                      : "{}";
  char *body = strdup(canned);
  pthread_mutex_unlock(&h->lock);
  if (h->on_request)
    h->on_request(h->on_request_ctx, url);
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ret;
}

static inline void canned_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
  (void)cls;
  (void)c;
  (void)t;
  free(*con_cls);
  *con_cls = NULL;
}

static inline void canned_start(struct canned_hs *h)
{
  memset(h, 0, sizeof(*h));
  pthread_mutex_init(&h->lock, NULL);
  h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, canned_handler, h,
                          MHD_OPTION_NOTIFY_COMPLETED, canned_done, NULL, MHD_OPTION_END);
  assert_non_null(h->d);
  h->port = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static inline void canned_set(struct canned_hs *h, const cJSON *body)
{
  pthread_mutex_lock(&h->lock);
  free(h->keys_query);
  h->keys_query = cJSON_PrintUnformatted(body);
  pthread_mutex_unlock(&h->lock);
}

static inline void canned_stop(struct canned_hs *h)
{
  MHD_stop_daemon(h->d);
  free(h->keys_query);
  pthread_mutex_destroy(&h->lock);
}

/* A client of the canned server acting as user_id (free with mx_api_free). */
static inline struct mx_api *canned_api(const struct canned_hs *h, const char *user_id)
{
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", h->port);
  return mx_api_new(base, user_id, "tok");
}

#endif
