/*
 * prov_http.c - one blocking JSON request to the homeserver's registration
 * and admin API over libcurl. No retries: onboarding is interactive and every
 * step is idempotent, so the operator re-runs the command instead. Layer:
 * devices/provision; this is not the bot's Matrix client and must not grow
 * into one. Owned by the caller: *resp (cJSON_Delete), prov_url() (free()).
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "mx_util.h"

#define PROV_HTTP_MAX ((size_t)4 * 1024 * 1024)

char *prov_url(const char *hs, const char *path_fmt, const char *arg)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char *esc = NULL;
  if (arg) {
    esc = curl_easy_escape(NULL, arg, 0);
    if (!esc)
      return NULL;
  }
  mx_err rc = mx_buf_adds(&b, hs);
  if (!rc && esc)
    rc = mx_buf_addf(&b, path_fmt, esc);
  else if (!rc)
    rc = mx_buf_adds(&b, path_fmt); /* a literal path: it may hold %-escapes */
  curl_free(esc);
  return rc ? NULL : mx_buf_take(&b);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
  struct mx_buf *b = ud;
  return mx_buf_add(b, p, size * n) ? 0 : size * n;
}

static mx_err perform(CURL *h, const char *method, const char *url, struct mx_buf *in, long *status, char *err)
{
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, in);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, PROV_HTTP_TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode cc = curl_easy_perform(h);
  if (cc != CURLE_OK)
    return mx_fail(MX_ERR_HTTP, err, "%s %s: %s", method, url, curl_easy_strerror(cc));
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  return MX_OK;
}

mx_err prov_http(const char *method, const char *url, const char *token, const cJSON *body, long *status,
                 cJSON **resp, char *err)
{
  *resp = NULL;
  *status = 0;
  CURL *h = curl_easy_init();
  struct curl_slist *hdr = NULL;
  struct mx_buf in = MX_BUF_INIT(PROV_HTTP_MAX);
  struct mx_buf auth = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char *out = body ? cJSON_PrintUnformatted(body) : NULL;
  mx_err rc = MX_OK;
  if (!h || (body && !out)) {
    rc = MX_ERR_NOMEM;
    goto cleanup;
  }
  hdr = curl_slist_append(hdr, "Content-Type: application/json");
  if (token) {
    rc = mx_buf_addf(&auth, "Authorization: Bearer %s", token);
    if (rc)
      goto cleanup;
    hdr = curl_slist_append(hdr, mx_buf_cstr(&auth));
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  if (out)
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, out);
  rc = perform(h, method, url, &in, status, err);
  if (!rc && in.len > 0)
    *resp = cJSON_ParseWithLength(mx_buf_cstr(&in), in.len);
cleanup:
  curl_slist_free_all(hdr);
  if (h)
    curl_easy_cleanup(h);
  cJSON_free(out);
  mx_buf_release(&in);
  mx_buf_release(&auth);
  return rc;
}
