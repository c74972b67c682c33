/*
 * llm/stt/llm_stt_http.c - the HTTP providers: "openai" (POST
 * {base_url}/v1/audio/transcriptions; also faster-whisper-server, LocalAI)
 * and "whisper.cpp" (POST {base_url}/inference), both multipart with the
 * audio as `file` and response_format=json, answering {"text": "..."}.
 * One curl easy handle per call, so any worker thread may call it. No retry:
 * a voice message is interactive, the operator re-sends; the error says why.
 * Layer: llm/; common/, libcurl, cJSON. The API key goes only into the
 * Authorization header and never into a message or log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "llm_stt_int.h"
#include "mx_json.h"
#include "mx_util.h"

static size_t on_body(char *p, size_t sz, size_t nm, void *ctx)
{
  struct mx_buf *b = ctx;
  return mx_buf_add(b, p, sz * nm) == MX_OK ? sz * nm : 0;
}

static int add_field(curl_mime *m, const char *name, const char *value)
{
  curl_mimepart *part;

  if (!value)
    return 1;
  part = curl_mime_addpart(m);
  return part && curl_mime_name(part, name) == CURLE_OK && curl_mime_data(part, value, CURL_ZERO_TERMINATED) == CURLE_OK;
}

static curl_mime *build_form(CURL *c, const struct llm_stt_config *cfg, const void *audio, size_t n,
                             const char *filename, const char *mimetype)
{
  curl_mime *m = curl_mime_init(c);
  curl_mimepart *file = m ? curl_mime_addpart(m) : NULL;
  int ok = file && curl_mime_name(file, "file") == CURLE_OK && curl_mime_data(file, audio, n) == CURLE_OK &&
           curl_mime_filename(file, filename) == CURLE_OK && curl_mime_type(file, mimetype) == CURLE_OK;

  if (ok && cfg->provider == LLM_STT_OPENAI)
    ok = add_field(m, "model", cfg->model);
  if (ok)
    ok = add_field(m, "language", cfg->language) && add_field(m, "prompt", cfg->prompt) &&
         add_field(m, "response_format", "json");
  if (ok && cfg->provider == LLM_STT_WHISPER_CPP)
    ok = add_field(m, "temperature", "0.0");
  if (!ok) {
    curl_mime_free(m);
    return NULL;
  }
  return m;
}

/* {"text": "..."} -> *text; an error body {"error":{"message":...}} or
 * {"error":"..."} -> its message for err. */
static mx_err parse_answer(const char *url, long status, const struct mx_buf *body, char **text, char *err)
{
  cJSON *j = cJSON_ParseWithLength(mx_buf_cstr(body), body->len);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  const char *msg = cJSON_IsString(e) ? e->valuestring : (cJSON_IsObject(e) ? mx_json_str(e, "message") : NULL);
  mx_err rc = MX_OK;

  if (status / 100 != 2) {
    mx_err code = status == 401 || status == 403 ? MX_ERR_AUTH
                  : status == 429 || status >= 500 ? MX_ERR_UNAVAILABLE
                                                   : MX_ERR_HTTP;
    rc = mx_fail(code, err, "speech: %s: HTTP %ld: %.200s", url, status,
                 msg ? msg : body->len ? mx_buf_cstr(body) : "(empty body)");
  } else if (!cJSON_IsString(t)) {
    rc = mx_fail(MX_ERR_HTTP, err, "speech: %s: expected a JSON object with a \"text\" string, got '%.200s'", url,
                 mx_buf_cstr(body));
  } else if (!(*text = mx_strdup(t->valuestring))) {
    rc = mx_fail(MX_ERR_NOMEM, err, "speech: out of memory");
  }
  cJSON_Delete(j);
  return rc ? rc : stt_clean_transcript(text, "speech", err);
}

static mx_err perform(CURL *c, const char *url, int64_t deadline_ms, long *status, char *err)
{
  char cerr[CURL_ERROR_SIZE] = "";
  int64_t left = deadline_ms - mx_mono_ms();
  CURLcode cc;

  if (left <= 0)
    return mx_fail(MX_ERR_TIMEOUT, err, "speech: %s: no time left before the request", url);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(left < 10000 ? left : 10000));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  cc = curl_easy_perform(c);
  if (cc != CURLE_OK)
    return mx_fail(cc == CURLE_OPERATION_TIMEDOUT ? MX_ERR_TIMEOUT : MX_ERR_UNAVAILABLE, err, "speech: %s: %s", url,
                   cerr[0] ? cerr : curl_easy_strerror(cc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  return MX_OK;
}

mx_err stt_http_transcribe(const struct llm_stt_config *cfg, const void *audio, size_t n, const char *filename,
                           const char *mimetype, int64_t deadline_ms, char **text, char *err)
{
  struct mx_buf url = MX_BUF_INIT(4096), auth = MX_BUF_INIT(4096), body = MX_BUF_INIT(MX_BUF_MAX_SMALL * 16);
  struct curl_slist *hdrs = NULL;
  curl_mime *form = NULL;
  CURL *c = curl_easy_init();
  long status = 0;
  mx_err rc;

  *text = NULL;
  rc = mx_buf_addf(&url, "%s%s", cfg->base_url,
                   cfg->provider == LLM_STT_WHISPER_CPP ? "/inference" : "/v1/audio/transcriptions");
  if (!rc && cfg->api_key)
    rc = mx_buf_addf(&auth, "Authorization: Bearer %s", cfg->api_key);
  if (!rc && cfg->api_key && !(hdrs = curl_slist_append(NULL, mx_buf_cstr(&auth))))
    rc = MX_ERR_NOMEM;
  if (!rc && (!c || !(form = build_form(c, cfg, audio, n, filename, mimetype))))
    rc = MX_ERR_NOMEM;
  if (rc) {
    rc = mx_fail(rc, err, "speech: out of memory");
    goto cleanup;
  }
  curl_easy_setopt(c, CURLOPT_URL, mx_buf_cstr(&url));
  curl_easy_setopt(c, CURLOPT_MIMEPOST, form);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  rc = perform(c, mx_buf_cstr(&url), deadline_ms, &status, err);
  if (!rc)
    rc = parse_answer(mx_buf_cstr(&url), status, &body, text, err);
cleanup:
  if (auth.buf)
    memset(auth.buf, 0, auth.len); /* holds the key */
  mx_buf_release(&auth);
  mx_buf_release(&url);
  mx_buf_release(&body);
  curl_slist_free_all(hdrs);
  curl_mime_free(form);
  curl_easy_cleanup(c);
  return rc;
}
