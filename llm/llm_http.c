/*
 * llm_http.c - blocking POST with libcurl, streaming lines, retry headers;
 * see llm_http.h. Layer: llm; no knowledge of any provider's JSON.
 */
#include "llm_http.h"

#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mx_log.h"
#include "mx_util.h"

#define LINE_MAX_BYTES ((size_t)4 * 1024 * 1024)

struct xfer {
  CURL *curl;
  const struct llm_http_req *req;
  struct llm_http_resp *resp;
  struct mx_buf line;
  int streaming;   /* decided on the first body byte */
  int decided;
  int aborted;
  int64_t last_byte_ms; /* mono time of the last byte sent or received */
  curl_off_t last_up;
};

void llm_http_resp_init(struct llm_http_resp *r)
{
  memset(r, 0, sizeof(*r));
  mx_buf_init(&r->body, MX_BUF_MAX_HTTP);
  r->retry_after_ms = -1;
  r->should_retry = -1;
}

void llm_http_resp_release(struct llm_http_resp *r)
{
  mx_buf_release(&r->body);
}

int64_t llm_http_parse_retry_after(const char *v, int64_t now_s)
{
  while (*v == ' ')
    v++;
  if (isdigit((unsigned char)*v)) {
    char *end = NULL;
    double d = strtod(v, &end);
    if (d < 0 || d > 86400.0 * 7)
      return -1;
    return (int64_t)(d * 1000.0);
  }
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  /* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" */
  if (!strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm))
    return -1;
  int64_t at = (int64_t)timegm(&tm);
  return at > now_s ? (at - now_s) * 1000 : 0;
}

static void header_value(const char *h, size_t n, const char *name, char *out, size_t outn)
{
  size_t k = strlen(name);
  out[0] = '\0';
  if (n <= k || strncasecmp(h, name, k) != 0 || h[k] != ':')
    return;
  const char *v = h + k + 1;
  size_t vn = n - k - 1;
  while (vn && (*v == ' ' || *v == '\t')) {
    v++;
    vn--;
  }
  while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
    vn--;
  if (vn >= outn)
    vn = outn - 1;
  memcpy(out, v, vn);
  out[vn] = '\0';
}

static size_t on_header(char *h, size_t size, size_t nitems, void *ud)
{
  struct xfer *x = ud;
  size_t n = size * nitems;
  char v[128];
  x->last_byte_ms = mx_mono_ms();
  /* retry-after-ms is more precise, so it wins over retry-after. */
  header_value(h, n, "retry-after-ms", v, sizeof(v));
  if (v[0]) {
    x->resp->retry_after_ms = (int64_t)strtod(v, NULL);
    return n;
  }
  header_value(h, n, "retry-after", v, sizeof(v));
  if (v[0] && x->resp->retry_after_ms < 0)
    x->resp->retry_after_ms = llm_http_parse_retry_after(v, (int64_t)time(NULL));
  header_value(h, n, "x-should-retry", v, sizeof(v));
  if (v[0])
    x->resp->should_retry = strcasecmp(v, "true") == 0 ? 1 : 0;
  header_value(h, n, "request-id", v, sizeof(v));
  if (!v[0])
    header_value(h, n, "x-request-id", v, sizeof(v));
  if (v[0]) {
    size_t k = strlen(v) < sizeof(x->resp->request_id) - 1 ? strlen(v) : sizeof(x->resp->request_id) - 1;
    memcpy(x->resp->request_id, v, k);
    x->resp->request_id[k] = '\0';
  }
  return n;
}

static int feed_lines(struct xfer *x, const char *data, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (data[i] != '\n') {
      if (mx_buf_addc(&x->line, data[i]))
        return -1;
      continue;
    }
    size_t len = x->line.len;
    const char *s = mx_buf_cstr(&x->line);
    if (len && s[len - 1] == '\r')
      len--;
    if (x->req->on_line(x->req->ctx, s, len))
      return -1;
    mx_buf_reset(&x->line);
  }
  return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
  struct xfer *x = ud;
  size_t n = size * nmemb;
  x->last_byte_ms = mx_mono_ms();
  if (!x->decided) {
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->resp->status);
    x->streaming = x->req->on_line && x->resp->status >= 200 && x->resp->status < 300;
    /* Some servers answer a streaming request with one JSON document
     * (llama-server with tools, proxies): collect it whole instead. */
    const char *ct = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_CONTENT_TYPE, &ct);
    if (x->streaming && ct && strncasecmp(ct, "application/json", 16) == 0)
      x->streaming = 0;
    x->resp->streamed = x->streaming;
    x->decided = 1;
  }
  if (!x->streaming)
    return mx_buf_add(&x->resp->body, data, n) ? 0 : n;
  if (feed_lines(x, data, n)) {
    x->aborted = 1;
    return 0;
  }
  return n;
}

/* The idle timeout: curl's own limits are for the whole request, so a
 * provider that keeps the connection open and stops sending (before its
 * headers or mid-stream) would hold the turn and its worker until
 * timeout_ms. curl calls this at least once a second while idle. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  struct xfer *x = ud;
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  int64_t now = mx_mono_ms();
  if (ulnow != x->last_up) { /* still sending a long prompt */
    x->last_up = ulnow;
    x->last_byte_ms = now;
  }
  if (now - x->last_byte_ms < x->req->idle_timeout_ms)
    return 0;
  x->resp->stalled = 1;
  return 1; /* non-zero aborts the transfer */
}

/* At debug level the request headers are logged one by one, each through
 * llm_http_redact, so a key never reaches the log even when tracing. */
static int on_debug(CURL *c, curl_infotype type, char *data, size_t n, void *ud)
{
  (void)c;
  (void)ud;
  if (type != CURLINFO_HEADER_OUT)
    return 0;
  const char *p = data, *end = data + n;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
    char line[512], safe[512];
    snprintf(line, sizeof(line), "%.*s", (int)(len && p[len - 1] == '\r' ? len - 1 : len), p);
    if (line[0]) {
      llm_http_redact(line, safe, sizeof(safe));
      mx_debug(NULL, "llm http > %s", safe);
    }
    memset(line, 0, sizeof(line));
    p = eol ? eol + 1 : end;
  }
  return 0;
}

mx_err llm_http_post(const struct llm_http_req *req, struct llm_http_resp *resp, char *err)
{
  struct xfer x = {0};
  x.req = req;
  x.resp = resp;
  mx_buf_init(&x.line, LINE_MAX_BYTES);
  x.curl = curl_easy_init();
  if (!x.curl)
    return mx_fail(MX_ERR_NOMEM, err, "cannot create a curl handle");
  curl_easy_setopt(x.curl, CURLOPT_URL, req->url);
  curl_easy_setopt(x.curl, CURLOPT_HTTPHEADER, req->headers);
  curl_easy_setopt(x.curl, CURLOPT_POSTFIELDS, req->body);
  curl_easy_setopt(x.curl, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
  curl_easy_setopt(x.curl, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
  curl_easy_setopt(x.curl, CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM */
  curl_easy_setopt(x.curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(x.curl, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(x.curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(x.curl, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(x.curl, CURLOPT_ERRORBUFFER, resp->curl_msg);
  curl_easy_setopt(x.curl, CURLOPT_PROTOCOLS_STR, "http,https");
  if (req->idle_timeout_ms > 0) {
    x.last_byte_ms = mx_mono_ms();
    curl_easy_setopt(x.curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(x.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(x.curl, CURLOPT_XFERINFODATA, &x);
  }
  if (mx_log_get_level() == MX_LOG_DEBUG) {
    curl_easy_setopt(x.curl, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(x.curl, CURLOPT_VERBOSE, 1L);
  }
  CURLcode cc = curl_easy_perform(x.curl);
  if (!x.decided)
    curl_easy_getinfo(x.curl, CURLINFO_RESPONSE_CODE, &resp->status);
  /* A last line without '\n' (NDJSON often ends so). */
  if (cc == CURLE_OK && x.streaming && x.line.len)
    req->on_line(req->ctx, mx_buf_cstr(&x.line), x.line.len);
  resp->curl_code = (int)cc;
  curl_easy_cleanup(x.curl);
  mx_buf_release(&x.line);
  if (resp->stalled)
    return mx_fail(MX_ERR_TIMEOUT, err, "the provider sent nothing for %lld ms (idle_timeout_ms), request abandoned",
                   (long long)req->idle_timeout_ms);
  if (cc == CURLE_OK || (x.aborted && resp->status))
    return MX_OK;
  if (cc == CURLE_OPERATION_TIMEDOUT)
    return mx_fail(MX_ERR_TIMEOUT, err, "request to the provider timed out: %s",
                   resp->curl_msg[0] ? resp->curl_msg : curl_easy_strerror(cc));
  return mx_fail(MX_ERR_HTTP, err, "request to the provider failed: %s",
                 resp->curl_msg[0] ? resp->curl_msg : curl_easy_strerror(cc));
}

void llm_http_redact(const char *header, char *out, size_t n)
{
  static const char *const secret[] = {"authorization:", "x-api-key:", "api-key:", NULL};
  for (size_t i = 0; secret[i]; i++) {
    size_t k = strlen(secret[i]);
    if (strncasecmp(header, secret[i], k) == 0) {
      snprintf(out, n, "%.*s [redacted]", (int)k, header);
      return;
    }
  }
  snprintf(out, n, "%s", header);
}
