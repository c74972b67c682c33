/*
 * dev_wg_http.c - signed HTTP requests to mxfleet-agent with libcurl.
 * Every attempt is signed afresh (new timestamp and nonce: the agent refuses
 * a replayed nonce). Only GETs are retried. Layer: devices/wg.
 */
#include "dev_wg_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_util.h"

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
  struct mx_buf *b = ud;
  /* A failed add releases the buffer; returning short aborts the transfer
   * with CURLE_WRITE_ERROR, reported as "reply too big". */
  return mx_buf_add(b, p, size * n) ? 0 : size * n;
}

/* The operator's !stop: abort our side of the transfer. The agent keeps
 * running the command until its own deadline (it cannot be told over a
 * closed connection); its audit still records the result. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
  (void)dt, (void)dn, (void)ut, (void)un;
  const volatile int *cancel = ud;
  return cancel && *cancel ? 1 : 0;
}

static CURL *take_handle(struct dev_wg *w, int *cached)
{
  *cached = 0;
  if (pthread_mutex_trylock(&w->mu) == 0) {
    if (w->cached) {
      *cached = 1;
      curl_easy_reset(w->cached); /* keeps the live connection */
      return w->cached;          /* w->mu stays held until put_handle */
    }
    pthread_mutex_unlock(&w->mu);
  }
  return curl_easy_init();
}

static void put_handle(struct dev_wg *w, CURL *h, int cached)
{
  if (cached) {
    pthread_mutex_unlock(&w->mu);
    return; /* it stays in w->cached */
  }
  if (pthread_mutex_trylock(&w->mu) == 0) {
    if (!w->cached) {
      w->cached = h;
      h = NULL;
    }
    pthread_mutex_unlock(&w->mu);
  }
  if (h)
    curl_easy_cleanup(h);
}

static mx_err add_sig_headers(const struct dev_wg_sig *s, struct curl_slist **hl)
{
  char line[160];
  const char *names[] = {DEV_WG_HDR_TS, DEV_WG_HDR_NONCE, DEV_WG_HDR_SIG};
  const char *vals[] = {s->ts, s->nonce, s->sig};
  for (int i = 0; i < 3; i++) {
    snprintf(line, sizeof(line), "%s: %s", names[i], vals[i]);
    struct curl_slist *n = curl_slist_append(*hl, line);
    if (!n)
      return MX_ERR_NOMEM;
    *hl = n;
  }
  struct curl_slist *n = curl_slist_append(*hl, "Content-Type: application/json");
  if (n)
    *hl = n;
  n = n ? curl_slist_append(*hl, "Expect:") : NULL; /* no 100-continue round trip */
  if (n)
    *hl = n;
  return n ? MX_OK : MX_ERR_NOMEM;
}

static void set_opts(struct dev_wg *w, CURL *h, const char *method, const char *url, const char *body, size_t n,
                     long timeout_ms, const volatile int *cancel, struct curl_slist *hl, struct mx_buf *resp)
{
  if (cancel) {
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)w->connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? n : 0));
  } else
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") == 0 ? NULL : method);
}

mx_err dev_wg_http(struct dev_wg *w, const char *method, const char *target, const char *body, size_t n,
                   long timeout_ms, const volatile int *cancel, long *status, struct mx_buf *resp, char *err)
{
  struct dev_wg_sig sig;
  struct curl_slist *hl = NULL;
  char *url = NULL;
  int cached = 0;
  CURL *h = NULL;
  *status = 0;
  mx_buf_reset(resp);
  mx_err rc = dev_wg_sign(w->key, method, target, mx_now_ms() / 1000, body, body ? n : 0, &sig);
  if (!rc)
    rc = add_sig_headers(&sig, &hl);
  if (!rc && !(url = malloc(strlen(w->url) + strlen(target) + 1)))
    rc = MX_ERR_NOMEM;
  if (!rc && !(h = take_handle(w, &cached)))
    rc = MX_ERR_NOMEM;
  if (rc)
    goto done;
  memcpy(url, w->url, strlen(w->url));
  memcpy(url + strlen(w->url), target, strlen(target) + 1);
  set_opts(w, h, method, url, body, n, timeout_ms, cancel, hl, resp);
  CURLcode cc = curl_easy_perform(h);
  if (cc == CURLE_ABORTED_BY_CALLBACK)
    rc = mx_fail(MX_ERR_CANCELLED, err, "agent %s %s: cancelled", w->device, target);
  else if (cc == CURLE_WRITE_ERROR)
    rc = mx_fail(MX_ERR_TOO_BIG, err, "agent %s %s: reply is over %zu bytes", w->device, target, resp->max);
  else if (cc == CURLE_OPERATION_TIMEDOUT)
    rc = mx_fail(MX_ERR_TIMEOUT, err, "agent %s %s: no reply within %ld ms", w->device, target, timeout_ms);
  else if (cc != CURLE_OK)
    rc = mx_fail(MX_ERR_UNAVAILABLE, err, "agent %s %s: %s", w->device, target, curl_easy_strerror(cc));
  else
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  if (!rc && !resp->buf && mx_buf_add(resp, "", 0))
    rc = MX_ERR_NOMEM;
done:
  if (h)
    put_handle(w, h, cached);
  curl_slist_free_all(hl);
  free(url);
  return rc;
}

mx_err dev_wg_get(struct dev_wg *w, const char *target, long timeout_ms, long *status, struct mx_buf *resp,
                  char *err)
{
  /* Transient: cannot connect, timeout, 503 (agent busy or audit briefly
   * locked). Permanent: any other status (401 means the key is wrong and
   * will stay wrong). Three attempts, 200 ms then 400 ms apart. */
  mx_err rc = MX_OK;
  for (int attempt = 0; attempt < 3; attempt++) {
    if (attempt)
      usleep(200000u << (attempt - 1));
    rc = dev_wg_http(w, "GET", target, NULL, 0, timeout_ms, NULL, status, resp, err);
    int transient = rc == MX_ERR_UNAVAILABLE || rc == MX_ERR_TIMEOUT || (!rc && *status == 503);
    if (!transient)
      return rc;
  }
  return rc;
}
