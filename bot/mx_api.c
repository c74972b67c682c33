/*
 * bot/mx_api.c - blocking Matrix client-server calls (see mx_api.h).
 *
 * Any thread may call: each thread keeps one curl easy handle and reuses it
 * (curl_easy_reset keeps its open connections), so calls go over a
 * kept-alive connection instead of a new TCP connection each - one accept
 * and one connection set-up less for the homeserver on every send. The
 * handle is freed when its thread exits (mx_api_thread_done for the main
 * thread). The retry policy
 * lives here and only here (one retry layer):
 *   - 429 M_LIMIT_EXCEEDED: transient; wait Retry-After (header, seconds),
 *     else the body's deprecated retry_after_ms, else the backoff.
 *   - 5xx, connection and timeout errors, and a server silent for the idle
 *     timeout (it hung): transient; exponential backoff with jitter (500 ms
 *     doubling, capped at 30 s). The txnId in a send's path makes a resend
 *     of something the server did store harmless.
 *   - any other 4xx: permanent, returned at once (retrying cannot help).
 * A call never waits past its deadline. The first transient failure of an
 * outage is a warning at once ("homeserver ... unreachable"; connections
 * give up after 5 s), repeated at most once a minute for the whole process
 * (200 identities retrying must not flood the log), and the first success
 * after it says the homeserver is reachable again. Log lines carry the
 * device name when the caller set one (mx_api_set_label).
 */
#include "mx_api.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

struct mx_api {
  char *homeserver;
  char *user_id;
  char *label;          /* the device name for log lines; NULL = user_id */
  char *token;
  const _Atomic int *cancel;
  int idle_ms;
  pthread_mutex_t lock; /* guards token */
};

static int cancelled(const struct mx_api *api)
{
  return api->cancel && *api->cancel;
}

void mx_api_set_cancel(struct mx_api *api, const _Atomic int *flag)
{
  api->cancel = flag;
}

void mx_api_set_idle_timeout(struct mx_api *api, int ms)
{
  api->idle_ms = ms;
}

void mx_api_set_label(struct mx_api *api, const char *label)
{
  free(api->label);
  api->label = label ? mx_strdup(label) : NULL;
}

static const char *label_of(const struct mx_api *api)
{
  return api->label ? api->label : api->user_id;
}

/* ---- outage reporting (process-wide, see the header comment) ---- */

static _Atomic int64_t outage_warned_ms; /* mx_mono_ms() of the last warning; 0 none since success */

static void outage_failure(const struct mx_api *api, const char *what, int64_t left_ms)
{
  int64_t now = mx_mono_ms();
  int64_t last = atomic_load(&outage_warned_ms);
  if (last && now - last < 60000)
    return;
  if (!atomic_compare_exchange_strong(&outage_warned_ms, &last, now ? now : 1))
    return; /* another thread warned just now */
  mx_warn(label_of(api), "homeserver %s unreachable (%s); retrying for up to %lld s", api->homeserver, what,
          (long long)(left_ms > 0 ? left_ms / 1000 : 0));
}

static void outage_success(const struct mx_api *api)
{
  if (atomic_load(&outage_warned_ms) && atomic_exchange(&outage_warned_ms, 0))
    mx_info(label_of(api), "homeserver %s reachable again", api->homeserver);
}

struct mx_api *mx_api_new(const char *homeserver, const char *user_id, const char *token)
{
  struct mx_api *api = calloc(1, sizeof(*api));
  if (!api)
    return NULL;
  api->homeserver = mx_strdup(homeserver);
  api->user_id = mx_strdup(user_id ? user_id : "");
  api->token = token ? mx_strdup(token) : NULL;
  pthread_mutex_init(&api->lock, NULL);
  if (!api->homeserver || !api->user_id || (token && !api->token)) {
    mx_api_free(api);
    return NULL;
  }
  size_t n = strlen(api->homeserver);
  while (n > 0 && api->homeserver[n - 1] == '/')
    api->homeserver[--n] = '\0';
  return api;
}

void mx_api_free(struct mx_api *api)
{
  if (!api)
    return;
  free(api->homeserver);
  free(api->user_id);
  free(api->label);
  free(api->token);
  pthread_mutex_destroy(&api->lock);
  free(api);
}

void mx_api_set_token(struct mx_api *api, const char *token)
{
  pthread_mutex_lock(&api->lock);
  free(api->token);
  api->token = token ? mx_strdup(token) : NULL;
  pthread_mutex_unlock(&api->lock);
}

void mx_api_bearer_header(struct mx_api *api, char *out, size_t n)
{
  pthread_mutex_lock(&api->lock);
  snprintf(out, n, "Authorization: Bearer %s", api->token ? api->token : "");
  pthread_mutex_unlock(&api->lock);
}

const char *mx_api_user_id(const struct mx_api *api)
{
  return api->user_id;
}

char *mx_api_escape(const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  char *out = malloc(n * 3 + 1);
  if (!out)
    return NULL;
  char *o = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'
        || *p == '_' || *p == '.' || *p == '~') {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}

int64_t mx_api_backoff_ms(int attempt)
{
  int64_t base = 500;
  for (int i = 0; i < attempt && base < 30000; i++)
    base *= 2;
  if (base > 30000)
    base = 30000;
  uint32_t r = 0;
  if (mx_random_bytes(&r, sizeof(r)))
    r = (uint32_t)time(NULL);
  /* +-25 % jitter so many identities retrying together spread out */
  int64_t jitter = (int64_t)(r % (uint32_t)(base / 2 + 1)) - base / 4;
  return base + jitter;
}

int64_t mx_api_retry_after_ms(const char *retry_after_header, const cJSON *body)
{
  if (retry_after_header && *retry_after_header) {
    char *end = NULL;
    long secs = strtol(retry_after_header, &end, 10);
    if (end != retry_after_header && secs >= 0)
      return (int64_t)secs * 1000;
  }
  int64_t ms;
  if (body && mx_json_int(body, "retry_after_ms", &ms) && ms >= 0)
    return ms;
  return -1;
}

/* ---- one attempt ---- */

struct attempt {
  const struct mx_api *api;
  struct mx_buf body;
  char retry_after[32];
  char content_type[128];
  int64_t last_byte_ms; /* mono time the last byte went out or came in */
  curl_off_t last_up;
  int stalled;
};

/* Shutdown and the idle timeout; curl calls it at least once a second. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
  struct attempt *a = ud;
  (void)dt;
  (void)dn;
  (void)ut;
  if (cancelled(a->api))
    return 1; /* non-zero aborts the transfer */
  int64_t now = mx_mono_ms();
  if (un != a->last_up) { /* still uploading */
    a->last_up = un;
    a->last_byte_ms = now;
  }
  if (a->api->idle_ms > 0 && now - a->last_byte_ms >= a->api->idle_ms) {
    a->stalled = 1;
    return 1;
  }
  return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
  struct attempt *a = ud;
  size_t n = size * nmemb;
  a->last_byte_ms = mx_mono_ms();
  return mx_buf_add(&a->body, data, n) ? 0 : n;
}

void mx_api_header_value(const char *data, size_t n, const char *name, char *out, size_t cap)
{
  size_t k = strlen(name);
  if (n <= k || strncasecmp(data, name, k) != 0 || data[k] != ':' || cap == 0)
    return;
  size_t i = k + 1;
  while (i < n && (data[i] == ' ' || data[i] == '\t'))
    i++;
  size_t o = 0;
  while (i < n && data[i] != '\r' && data[i] != '\n' && o + 1 < cap)
    out[o++] = data[i++];
  out[o] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
  struct attempt *a = ud;
  size_t n = size * nmemb;
  a->last_byte_ms = mx_mono_ms();
  mx_api_header_value(data, n, "retry-after", a->retry_after, sizeof(a->retry_after));
  mx_api_header_value(data, n, "content-type", a->content_type, sizeof(a->content_type));
  return n;
}

struct request {
  const char *method;
  const char *url;
  const char *content_type;
  const void *payload;
  size_t payload_len;
  int timeout_ms;
  size_t max_body;
};

static pthread_key_t easy_key;
static pthread_once_t easy_once = PTHREAD_ONCE_INIT;
static int easy_key_ok;

static void easy_free(void *c)
{
  curl_easy_cleanup(c);
}

static void easy_key_init(void)
{
  easy_key_ok = pthread_key_create(&easy_key, easy_free) == 0;
}

/* This thread's handle, options reset, connections kept; a fresh one when
 * there is none yet (or no key: then the caller frees it, *owned = 1). */
static CURL *thread_easy(int *owned)
{
  pthread_once(&easy_once, easy_key_init);
  CURL *c = easy_key_ok ? pthread_getspecific(easy_key) : NULL;
  *owned = 0;
  if (c) {
    curl_easy_reset(c);
    return c;
  }
  c = curl_easy_init();
  if (c && (!easy_key_ok || pthread_setspecific(easy_key, c) != 0))
    *owned = 1;
  return c;
}

void mx_api_thread_done(void)
{
  pthread_once(&easy_once, easy_key_init);
  CURL *c = easy_key_ok ? pthread_getspecific(easy_key) : NULL;
  if (c) {
    pthread_setspecific(easy_key, NULL);
    curl_easy_cleanup(c);
  }
}

static CURLcode perform(struct mx_api *api, const struct request *rq, struct attempt *a, long *status)
{
  int owned = 0;
  CURL *c = thread_easy(&owned);
  if (!c)
    return CURLE_OUT_OF_MEMORY;
  struct curl_slist *hdrs = NULL;
  char auth[2048] = "";
  pthread_mutex_lock(&api->lock);
  if (api->token)
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", api->token);
  pthread_mutex_unlock(&api->lock);
  if (auth[0])
    hdrs = curl_slist_append(hdrs, auth);
  char ctype[200];
  snprintf(ctype, sizeof(ctype), "Content-Type: %s", rq->content_type ? rq->content_type : "application/json");
  if (rq->payload)
    hdrs = curl_slist_append(hdrs, ctype);
  mx_buf_init(&a->body, rq->max_body);
  a->api = api;
  a->retry_after[0] = '\0';
  a->content_type[0] = '\0';
  a->last_byte_ms = mx_mono_ms();
  a->last_up = 0;
  a->stalled = 0;
  curl_easy_setopt(c, CURLOPT_URL, rq->url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, a);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L); /* an outage is reported within seconds */
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
  /* Authenticated media redirects (307/308); never leak the token elsewhere. */
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (rq->payload) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->payload_len);
  } else if (strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  }
  CURLcode cc = curl_easy_perform(c);
  *status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(hdrs);
  if (owned)
    curl_easy_cleanup(c);
  return cc;
}

/* Sleeps in 50 ms slices so a shutdown does not wait out a long backoff. */
static void sleep_ms(const struct mx_api *api, int64_t ms)
{
  int64_t until = mx_mono_ms() + ms;
  while (!cancelled(api)) {
    int64_t left = until - mx_mono_ms();
    if (left <= 0)
      return;
    if (left > 50)
      left = 50;
    struct timespec ts = { 0, (long)left * 1000000L };
    nanosleep(&ts, NULL);
  }
}

static mx_err classify(long status, const cJSON *json, char *err, const char *method, const char *path)
{
  const char *code = json ? mx_json_str(json, "errcode") : NULL;
  const char *msg = json ? mx_json_str(json, "error") : NULL;
  mx_err rc = MX_ERR_HTTP;
  if (status == 401 || status == 403)
    rc = MX_ERR_AUTH;
  else if (status == 404)
    rc = MX_ERR_NOT_FOUND;
  else if (status == 429)
    rc = MX_ERR_RATE_LIMITED;
  else if (status == 413)
    rc = MX_ERR_TOO_BIG;
  return mx_fail(rc, err, "%s %s: http %ld %s: %s", method, path, status, code ? code : "-",
                 msg ? msg : "no error text");
}

/* Runs rq with the retry policy above; on success hands the body over. */
static mx_err call_with_retry(struct mx_api *api, const struct request *rq, const char *path,
                              const struct mx_api_opts *opts, long *status, struct mx_buf *body_out,
                              char *err)
{
  int deadline_ms = opts && opts->deadline_ms > 0 ? opts->deadline_ms : 120000;
  int64_t deadline = mx_mono_ms() + deadline_ms;
  for (int attempt = 0;; attempt++) {
    struct attempt a;
    long st = 0;
    if (cancelled(api))
      return mx_fail(MX_ERR_CANCELLED, err, "%s %s: cancelled by shutdown", rq->method, path);
    CURLcode cc = perform(api, rq, &a, &st);
    *status = st;
    if (cc == CURLE_ABORTED_BY_CALLBACK && !a.stalled) {
      mx_buf_release(&a.body);
      return mx_fail(MX_ERR_CANCELLED, err, "%s %s: cancelled by shutdown", rq->method, path);
    }
    int64_t wait = -1;
    mx_err rc = MX_OK;
    if (a.stalled) {
      rc = mx_fail(MX_ERR_TIMEOUT, err, "%s %s: the homeserver sent nothing for %d ms (http_idle_timeout_ms)",
                   rq->method, path, api->idle_ms);
      mx_warn(label_of(api), "%s; retrying", err);
      wait = mx_api_backoff_ms(attempt);
    } else if (cc != CURLE_OK) {
      rc = mx_fail(cc == CURLE_OPERATION_TIMEDOUT ? MX_ERR_TIMEOUT : MX_ERR_HTTP, err, "%s %s: %s",
                   rq->method, path, curl_easy_strerror(cc));
      wait = mx_api_backoff_ms(attempt);
      if (!(opts && opts->no_retry))
        outage_failure(api, err, deadline - mx_mono_ms());
    } else if (st >= 400) {
      cJSON *j = cJSON_ParseWithLength(mx_buf_cstr(&a.body), a.body.len);
      rc = classify(st, j, err, rq->method, path);
      if (st == 429) {
        wait = mx_api_retry_after_ms(a.retry_after, j);
        if (wait < 0)
          wait = mx_api_backoff_ms(attempt);
      } else if (st >= 500) {
        wait = mx_api_backoff_ms(attempt);
        if (st >= 502 && st <= 504 && !(opts && opts->no_retry)) /* a proxy in front of a down homeserver */
          outage_failure(api, err, deadline - mx_mono_ms());
      }
      if (wait < 0 || (opts && opts->no_retry)) {
        /* permanent: hand the error body over for the caller to inspect */
        *body_out = a.body;
        cJSON_Delete(j);
        return rc;
      }
      cJSON_Delete(j);
    } else {
      *body_out = a.body;
      outage_success(api);
      return MX_OK;
    }
    mx_buf_release(&a.body);
    if ((opts && opts->no_retry) || mx_mono_ms() + wait >= deadline)
      return rc;
    mx_debug(label_of(api), "%s %s: retrying in %lld ms (attempt %d)", rq->method, path, (long long)wait,
             attempt + 1);
    sleep_ms(api, wait);
  }
}

mx_err mx_api_call(struct mx_api *api, const char *method, const char *path, const cJSON *body,
                   const struct mx_api_opts *opts, long *status, cJSON **resp, char *err)
{
  long st_local = 0;
  if (!status)
    status = &st_local;
  if (resp)
    *resp = NULL;
  char *payload = NULL;
  if (body) {
    payload = cJSON_PrintUnformatted(body);
    if (!payload)
      return MX_ERR_NOMEM;
  }
  struct mx_buf url = MX_BUF_INIT(8192);
  if (mx_buf_addf(&url, "%s%s", api->homeserver, path)) {
    cJSON_free(payload);
    return mx_fail(MX_ERR_TOO_BIG, err, "%s: url too long", path);
  }
  struct request rq = { method, mx_buf_cstr(&url), "application/json", payload,
                        payload ? strlen(payload) : 0,
                        opts && opts->timeout_ms > 0 ? opts->timeout_ms : 30000, MX_BUF_MAX_HTTP };
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  mx_err rc = call_with_retry(api, &rq, path, opts, status, &out, err);
  cJSON_free(payload);
  mx_buf_release(&url);
  if (resp && out.len > 0) {
    *resp = cJSON_ParseWithLength(mx_buf_cstr(&out), out.len);
    if (!*resp && !rc)
      rc = mx_fail(MX_ERR_INVALID, err, "%s %s: response is not json", method, path);
  }
  mx_buf_release(&out);
  return rc;
}

mx_err mx_api_upload(struct mx_api *api, const char *content_type, const char *filename,
                     const void *data, size_t n, char **mxc_out, char *err)
{
  char *fname = mx_api_escape(filename ? filename : "file");
  struct mx_buf url = MX_BUF_INIT(8192);
  mx_err rc = fname ? mx_buf_addf(&url, "%s/_matrix/media/v3/upload?filename=%s", api->homeserver, fname)
                    : MX_ERR_NOMEM;
  free(fname);
  if (rc)
    return rc;
  struct request rq = { "POST", mx_buf_cstr(&url), content_type, data, n, 120000, MX_BUF_MAX_SMALL };
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  long st = 0;
  struct mx_api_opts o = { 120000, 300000, 0 };
  rc = call_with_retry(api, &rq, "/_matrix/media/v3/upload", &o, &st, &out, err);
  mx_buf_release(&url);
  if (!rc) {
    cJSON *j = cJSON_ParseWithLength(mx_buf_cstr(&out), out.len);
    const char *uri = j ? mx_json_str(j, "content_uri") : NULL;
    if (uri)
      *mxc_out = mx_strdup(uri);
    else
      rc = mx_fail(MX_ERR_INVALID, err, "upload: response has no content_uri");
    cJSON_Delete(j);
  }
  mx_buf_release(&out);
  return rc;
}

mx_err mx_api_download(struct mx_api *api, const char *mxc_url, size_t max, struct mx_buf *out,
                       char *err)
{
  if (strncmp(mxc_url, "mxc://", 6) != 0)
    return mx_fail(MX_ERR_INVALID, err, "media url: expected mxc://server/id, got '%.100s'", mxc_url);
  const char *server = mxc_url + 6;
  const char *slash = strchr(server, '/');
  if (!slash || slash == server || !slash[1] || strchr(slash + 1, '/'))
    return mx_fail(MX_ERR_INVALID, err, "media url: expected mxc://server/id, got '%.100s'", mxc_url);
  char srv[256];
  size_t sl = (size_t)(slash - server);
  if (sl >= sizeof(srv))
    return mx_fail(MX_ERR_INVALID, err, "media url: server name too long");
  memcpy(srv, server, sl);
  srv[sl] = '\0';
  char *es = mx_api_escape(srv), *ei = mx_api_escape(slash + 1);
  struct mx_buf url = MX_BUF_INIT(8192);
  mx_err rc = (es && ei) ? mx_buf_addf(&url, "%s/_matrix/client/v1/media/download/%s/%s", api->homeserver, es, ei)
                         : MX_ERR_NOMEM;
  free(es);
  free(ei);
  if (rc)
    return rc;
  struct request rq = { "GET", mx_buf_cstr(&url), NULL, NULL, 0, 120000, max };
  long st = 0;
  struct mx_api_opts o = { 120000, 300000, 0 };
  mx_buf_init(out, max);
  rc = call_with_retry(api, &rq, "/_matrix/client/v1/media/download", &o, &st, out, err);
  mx_buf_release(&url);
  if (rc)
    mx_buf_release(out);
  return rc;
}
