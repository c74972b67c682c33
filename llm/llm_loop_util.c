/*
 * llm_loop_util.c - truncation, progress text, stuck detection; see
 * llm_loop_util.h. Layer: llm; pure.
 */
#include "llm_loop_util.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mx_crypto.h"

/* Moves i back to the start of a UTF-8 sequence. */
static size_t char_start(const char *s, size_t i)
{
  while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
    i--;
  return i;
}

char *llm_truncate(const char *text, size_t max)
{
  size_t n = strlen(text);
  struct mx_buf b = MX_BUF_INIT(max + 256);
  if (n <= max) {
    if (mx_buf_add(&b, text, n))
      return NULL;
    return mx_buf_take(&b);
  }
  /* Keep more of the head (what the command printed first) than the tail
   * (usually the error or summary): 60/40. */
  size_t keep = max > 80 ? max - 60 : max;
  size_t head = char_start(text, keep * 6 / 10);
  size_t tail = char_start(text, n - (keep - head));
  if (mx_buf_add(&b, text, head) ||
      mx_buf_addf(&b, "\n[... %zu characters omitted ...]\n", tail - head) ||
      mx_buf_add(&b, text + tail, n - tail))
    return NULL;
  return mx_buf_take(&b);
}

/* " " + at most max bytes of s, cut after a whole word: a token (perhaps a
 * secret the bot's redactor must recognise whole) is shown entire or not
 * at all, never as a prefix. */
static mx_err add_prefix(struct mx_buf *out, const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n > max) {
    n = max;
    while (n && s[n] != ' ' && s[n] != '\n' && s[n] != '\t')
      n--;
  }
  mx_err rc = mx_buf_addf(out, " %.*s", (int)n, s);
  return rc || n == strlen(s) ? rc : mx_buf_adds(out, " \xE2\x80\xA6");
}

static mx_err args_summary(const char *args, struct mx_buf *out)
{
  cJSON *j = cJSON_Parse(args);
  mx_err rc = MX_OK;
  size_t start = out->len;
  const cJSON *it;
  cJSON_ArrayForEach(it, j) {
    if (out->len - start > 60)
      break;
    if (cJSON_IsString(it))
      rc = add_prefix(out, it->valuestring, 60);
    else if (cJSON_IsNumber(it))
      rc = mx_buf_addf(out, " %g", it->valuedouble);
    else if (cJSON_IsBool(it))
      rc = mx_buf_addf(out, " %s=%s", it->string, cJSON_IsTrue(it) ? "true" : "false");
    if (rc)
      break;
  }
  cJSON_Delete(j);
  return rc;
}

mx_err llm_progress_text(const struct llm_tool_call *calls, size_t n, struct mx_buf *out)
{
  mx_err rc = mx_buf_adds(out, "running ");
  for (size_t i = 0; !rc && i < n; i++) {
    if (i > 0)
      rc = mx_buf_adds(out, ", ");
    if (!rc)
      rc = mx_buf_adds(out, calls[i].name);
    if (!rc)
      rc = args_summary(calls[i].args_json, out);
  }
  if (!rc)
    rc = mx_buf_adds(out, "\xE2\x80\xA6"); /* … */
  return rc;
}

void llm_stuck_init(struct llm_stuck *s)
{
  memset(s, 0, sizeof(*s));
}

void llm_stuck_free(struct llm_stuck *s)
{
  free(s->sig);
  llm_stuck_init(s);
}

static int eq(const struct llm_stuck *s, size_t a, size_t b)
{
  return memcmp(s->sig[a], s->sig[b], 32) == 0;
}

int llm_stuck_push(struct llm_stuck *s, const char *name, const char *args, const char *result)
{
  if (s->n == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 16;
    void *nv = realloc(s->sig, ncap * 32);
    if (!nv)
      return -1;
    s->sig = nv;
    s->cap = ncap;
  }
  /* Hash name, args and result with separators so fields cannot run into
   * each other; ids are not part of it (they differ every time). */
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  if (mx_buf_adds(&b, name) || mx_buf_addc(&b, '\x1f') || mx_buf_adds(&b, args) || mx_buf_addc(&b, '\x1f') ||
      mx_buf_adds(&b, result ? result : ""))
    return -1;
  mx_sha256(b.buf, b.len, s->sig[s->n++]);
  mx_buf_release(&b);
  size_t n = s->n;
  if (n >= LLM_STUCK_SAME) {
    int same = 1;
    for (size_t i = n - LLM_STUCK_SAME; i + 1 < n; i++)
      same = same && eq(s, i, n - 1);
    if (same)
      return 1;
  }
  if (n >= 4 && eq(s, n - 1, n - 3) && eq(s, n - 2, n - 4) && !eq(s, n - 1, n - 2))
    return 1;
  return 0;
}
