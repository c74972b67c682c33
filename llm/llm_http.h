/*
 * llm_http.h - one blocking HTTP POST to a provider with libcurl (an easy
 * handle per call, so any worker thread may call it), streaming line by line
 * to a callback when the answer is 2xx, collecting the body otherwise, and
 * capturing the retry headers (retry-after-ms, retry-after, x-should-retry).
 * Layer: llm; calls only libcurl and common/. Headers passed in may carry an
 * API key: at debug level they are logged through llm_http_redact only.
 * The process must call curl_global_init() before the first worker thread
 * uses this (the bot does at start; tests do in main).
 */
#ifndef LLM_HTTP_H
#define LLM_HTTP_H

#include <stdint.h>

#include <curl/curl.h>

#include "mx_buf.h"
#include "mx_err.h"

/* Returns 0 to go on, non-zero to abort the transfer. line has no '\n'. */
typedef int (*llm_line_fn)(void *ctx, const char *line, size_t n);

struct llm_http_req {
  const char *url;
  const struct curl_slist *headers; /* borrowed */
  const char *body;
  int64_t connect_timeout_ms;
  int64_t timeout_ms;
  int64_t idle_timeout_ms;          /* 0: none; else abort after that long without a byte */
  llm_line_fn on_line;              /* NULL: collect the whole body */
  void *ctx;
};

struct llm_http_resp {
  long status;                /* 0 when no HTTP answer came */
  int streamed;               /* lines went to on_line (else: body holds it) */
  struct mx_buf body;         /* the body unless streamed */
  int64_t retry_after_ms;     /* -1 when absent */
  int should_retry;           /* -1 absent, 0 false, 1 true */
  char request_id[80];
  int curl_code;              /* CURLcode of the transfer */
  int stalled;                /* ended by idle_timeout_ms */
  char curl_msg[CURL_ERROR_SIZE];
};

void llm_http_resp_init(struct llm_http_resp *r);
void llm_http_resp_release(struct llm_http_resp *r);

/* MX_OK when an HTTP status came back (any status); MX_ERR_HTTP/TIMEOUT on
 * transport failure with curl's text in err. A provider that sends nothing
 * for idle_timeout_ms (before its headers or mid-stream) ends the request
 * with MX_ERR_TIMEOUT and resp->stalled set, even after a 200. */
mx_err llm_http_post(const struct llm_http_req *req, struct llm_http_resp *resp, char *err);

/* Parses a Retry-After value (delta seconds or an HTTP date) into ms, -1 if
 * unusable. now_s is the current epoch seconds (for dates). */
int64_t llm_http_parse_retry_after(const char *v, int64_t now_s);

/* "Authorization: Bearer sk-..." -> "Authorization: [redacted]"; same for
 * x-api-key. Writes into out (size n). For debug output only. */
void llm_http_redact(const char *header, char *out, size_t n);

#endif
