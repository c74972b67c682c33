/*
 * llm_stt_http.c - the `openai` and `whisper_cpp` speech-to-text backends:
 * one multipart POST with libcurl, {"text": ...} back. No retries: a failed
 * transcription is reported to the operator, who can resend the note.
 * Layer: llm; libcurl and common/ only. The API key goes only into the
 * Authorization header and is never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "llm_msg.h"
#include "llm_provider.h"
#include "llm_stt.h"

static size_t on_body(char *d, size_t s, size_t n, void *ud)
{
  return mx_buf_add(ud, d, s * n) ? 0 : s * n;
}

static mx_err add_part(curl_mime *m, const char *name, const char *value)
{
  curl_mimepart *p = curl_mime_addpart(m);
  if (!p || curl_mime_name(p, name) != CURLE_OK || curl_mime_data(p, value, CURL_ZERO_TERMINATED) != CURLE_OK)
    return MX_ERR_NOMEM;
  return MX_OK;
}

static mx_err build_form(const struct llm_stt_cfg *c, curl_mime *m, const void *audio, size_t n,
                         const char *mimetype, const char *filename)
{
  curl_mimepart *f = curl_mime_addpart(m);
  if (!f || curl_mime_name(f, "file") || curl_mime_data(f, audio, n) || curl_mime_filename(f, filename) ||
      curl_mime_type(f, mimetype ? mimetype : "audio/ogg"))
    return MX_ERR_NOMEM;
  mx_err rc = add_part(m, "response_format", "json");
  if (!rc && c->kind == LLM_STT_OPENAI && c->model)
    rc = add_part(m, "model", c->model);
  /* whisper.cpp defaults to English; ask it to detect unless told. */
  if (!rc && (c->language || c->kind == LLM_STT_WHISPER_CPP))
    rc = add_part(m, "language", c->language ? c->language : "auto");
  if (!rc && c->kind == LLM_STT_WHISPER_CPP)
    rc = add_part(m, "temperature", "0");
  return rc;
}

static mx_err read_text(long status, const struct mx_buf *body, struct mx_buf *text, char *err)
{
  if (status < 200 || status >= 300) {
    char t[64], code[64], msg[256];
    llm_provider_error(mx_buf_cstr(body), t, sizeof(t), code, sizeof(code), msg, sizeof(msg));
    return mx_fail(status == 401 || status == 403 ? MX_ERR_AUTH : MX_ERR_HTTP, err,
                   "stt: the transcription server answered HTTP %ld%s%s", status, msg[0] ? ": " : "", msg);
  }
  cJSON *j = cJSON_Parse(mx_buf_cstr(body));
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "text"));
  mx_err rc = s ? mx_buf_adds(text, s[0] == ' ' ? s + 1 : s) : MX_ERR_HTTP;
  cJSON_Delete(j);
  if (rc == MX_ERR_HTTP)
    return mx_fail(rc, err, "stt: expected a JSON answer with a \"text\" string, got '%.80s'", mx_buf_cstr(body));
  return rc ? mx_fail(rc, err, "stt: transcript too large") : MX_OK;
}

mx_err llm_stt_http(const struct llm_stt_cfg *c, const void *audio, size_t n, const char *mimetype,
                    const char *filename, struct mx_buf *text, char *err)
{
  struct mx_buf url = MX_BUF_INIT(4096), body = MX_BUF_INIT(MX_BUF_MAX_SMALL * 16);
  struct curl_slist *h = NULL;
  char auth[1024] = "";
  CURL *curl = curl_easy_init();
  curl_mime *m = curl ? curl_mime_init(curl) : NULL;
  size_t blen = strlen(c->base_url);
  while (blen && c->base_url[blen - 1] == '/')
    blen--;
  mx_err rc = m ? build_form(c, m, audio, n, mimetype, filename) : MX_ERR_NOMEM;
  if (!rc && (mx_buf_add(&url, c->base_url, blen) ||
              mx_buf_adds(&url, c->kind == LLM_STT_OPENAI ? "/audio/transcriptions" : "/inference")))
    rc = MX_ERR_NOMEM;
  if (!rc && c->api_key) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->api_key);
    struct curl_slist *nh = curl_slist_append(h, auth);
    rc = nh ? MX_OK : MX_ERR_NOMEM;
    h = nh ? nh : h;
  }
  if (rc) {
    mx_fail(rc, err, "stt: out of memory");
    goto cleanup;
  }
  curl_easy_setopt(curl, CURLOPT_URL, mx_buf_cstr(&url));
  curl_easy_setopt(curl, CURLOPT_MIMEPOST, m);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  CURLcode cc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK)
    rc = mx_fail(cc == CURLE_OPERATION_TIMEDOUT ? MX_ERR_TIMEOUT : MX_ERR_HTTP, err,
                 "stt: request to the transcription server failed: %s", curl_easy_strerror(cc));
  else
    rc = read_text(status, &body, text, err);
cleanup:
  memset(auth, 0, sizeof(auth));
  curl_slist_free_all(h);
  curl_mime_free(m);
  curl_easy_cleanup(curl);
  mx_buf_release(&url);
  mx_buf_release(&body);
  return rc;
}
