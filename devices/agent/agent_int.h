/*
 * agent_int.h - mxfleet-agent internals shared by its files (not for other
 * modules): the agent state and the per-request handlers. Every handler
 * runs on an MHD connection thread after the request is authenticated.
 * cJSON: handlers return an owned reply object (*reply) the caller frees.
 */
#ifndef AGENT_INT_H
#define AGENT_INT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "agent.h"
#include "dev.h"
#include "dev_wg_sign.h"
#include "tools_audit.h"
#include "tools_policy.h"

struct agent {
  const struct agent_config *cfg;
  uint8_t key[DEV_WG_KEY_LEN];
  struct tools_manifest *manifest;
  struct tools_audit *audit;      /* calls are serialised by its own mutex */
  struct dev_backend *local;      /* devices/local, fs.* confined by the manifest */
  struct dev_wg_nonces *nonces;
  struct MHD_Daemon *mhd;
  int listen_fd;                  /* owned until MHD takes it */
  int port;
  int64_t started_ms;
  uint8_t audit_seed[32];         /* read as root before the drop (have_seed) */
  int have_seed;
};

/* POST /v1/call: decide with the manifest, audit intent, run, audit result. */
int agent_handle_call(struct agent *a, const char *body, size_t len, cJSON **reply);
/* GET /v1/health, /v1/audit/checkpoint, /v1/audit?since=SEQ */
int agent_handle_health(struct agent *a, cJSON **reply);
int agent_handle_checkpoint(struct agent *a, cJSON **reply);
int agent_handle_audit(struct agent *a, const char *since, cJSON **reply);

/* One complete request as the HTTP front received it. Header values and
 * since may be NULL (absent); target is the raw request target (path and
 * query) that was signed, url its decoded path. */
struct agent_request {
  const char *method, *url, *target;
  const char *ts, *nonce, *sig; /* the X-Mxfleet-* headers */
  const char *since;            /* GET /v1/audit?since= */
  const char *body;
  size_t body_len;
  int64_t now_s;                /* unix time the request is judged at */
};

/* Authenticates (dev_wg_verify) and routes one request; returns the HTTP
 * status, *reply (owned) the JSON answer. */
int agent_serve(struct agent *a, const struct agent_request *q, cJSON **reply);

/* {"error": code, "detail": text} with the HTTP status returned. */
int agent_error(int status, const char *code, const char *detail, cJSON **reply);

/* Serves HTTP on a->listen_fd (agent_http.c). */
mx_err agent_http_start(struct agent *a, char *err);
void agent_http_stop(struct agent *a);

#endif
