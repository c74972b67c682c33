/*
 * bot/mx_api.h - blocking Matrix client-server API calls for one identity,
 * callable from any thread (each thread reuses one curl easy handle and its
 * kept-alive connections; see mx_api.c).
 *
 * The long-poll /sync of every identity runs on the curl_multi loop
 * (mx_loop/mx_sync); everything else - sends, key uploads, key queries,
 * media - goes through here from the thread that needs it.
 *
 * Retry policy (one layer, here): 429 M_LIMIT_EXCEEDED waits Retry-After
 * (header, else retry_after_ms in the body); 5xx and network errors back off
 * exponentially with jitter (500 ms doubling to 30 s); other 4xx are final.
 * Retries stop at the call's deadline. PUTs with a txnId in the path are
 * safe to retry because the server deduplicates by txnId.
 * Ownership: *resp is owned by the caller (cJSON_Delete).
 */
#ifndef MX_API_H
#define MX_API_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

struct mx_api;

struct mx_api_opts {
  int timeout_ms;      /* per attempt; default 30000 */
  int deadline_ms;     /* all attempts; default 120000 */
  int no_retry;        /* 1: a single attempt (non-idempotent POSTs) */
};

/* Frees the calling thread's curl handle (and closes its connections); other
 * threads' handles are freed when they exit. Call on the main thread before
 * curl_global_cleanup. */
void mx_api_thread_done(void);

/* homeserver: base URL; token may be NULL (login). */
struct mx_api *mx_api_new(const char *homeserver, const char *user_id, const char *token);
void mx_api_free(struct mx_api *api);
void mx_api_set_token(struct mx_api *api, const char *token);
/* While *flag is non-zero every call in progress stops at once (transfer
 * aborted, retry wait cut short) with MX_ERR_CANCELLED: shutdown. */
void mx_api_set_cancel(struct mx_api *api, const _Atomic int *flag);
const char *mx_api_user_id(const struct mx_api *api);

/* path starts with "/_matrix/..."; body may be NULL. On HTTP status >= 400
 * returns MX_ERR_HTTP (or AUTH/RATE_LIMITED/NOT_FOUND) with errcode+error in
 * err and *status set. *resp is the parsed JSON body when there is one. */
mx_err mx_api_call(struct mx_api *api, const char *method, const char *path, const cJSON *body,
                   const struct mx_api_opts *opts, long *status, cJSON **resp, char *err);

/* Raw bytes (media): upload with a content type, download into out
 * (following redirects, Bearer token). */
mx_err mx_api_upload(struct mx_api *api, const char *content_type, const char *filename,
                     const void *data, size_t n, char **mxc_out, char *err);
mx_err mx_api_download(struct mx_api *api, const char *mxc_url, size_t max, struct mx_buf *out,
                       char *err);

/* Writes "Authorization: Bearer <token>" into out (for the sync handle on
 * the loop thread). The caller wipes it after use. */
void mx_api_bearer_header(struct mx_api *api, char *out, size_t n);

/* Percent-encodes s for a path segment into a malloc'd string. */
char *mx_api_escape(const char *s);

/* Parses a retry delay from a 429: Retry-After header (seconds) wins over
 * the deprecated body field retry_after_ms. Returns ms, or -1. Exposed for
 * tests. */
int64_t mx_api_retry_after_ms(const char *retry_after_header, const cJSON *body);
/* When the raw header line data (n bytes, as curl hands it over) is
 * `name: value` (name lowercase, matched case-insensitively), copies the
 * trimmed value into out (size cap, always NUL-terminated); else leaves out
 * alone. Used by every curl header callback of the bot. */
void mx_api_header_value(const char *data, size_t n, const char *name, char *out, size_t cap);
/* A request that receives nothing for ms (0: no limit) is abandoned as
 * stalled and retried like a timeout, within the call's deadline: a server
 * that accepted the connection and hung must not hold a worker for the
 * whole per-request timeout. Set before the api is shared between threads. */
void mx_api_set_idle_timeout(struct mx_api *api, int ms);
/* The name log lines carry for this client (the device name); default the
 * user ID. Copied. */
void mx_api_set_label(struct mx_api *api, const char *label);
/* Backoff for attempt n (0-based): min(500*2^n, 30000) ms with +-25% jitter. */
int64_t mx_api_backoff_ms(int attempt);

#endif
