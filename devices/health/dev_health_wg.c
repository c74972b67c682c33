/*
 * devices/health/dev_health_wg.c - WireGuard handshakes: parsing
 * `wg show IF latest-handshakes`, classifying a handshake time (never /
 * stale / ok), formatting its age, and running wg (fork/exec through
 * devices/local's exec helper: no shell, deadline, output cap).
 * Layer: devices/; common/ and devices/local only. No cJSON here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_health_int.h"
#include "dev_local.h"
#include "mx_util.h"

#define WG_KEY_LEN 44
#define WG_MAX_OUTPUT ((size_t)256 * 1024)

static int is_b64(char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static int valid_key(const char *s, size_t n)
{
  if (n != WG_KEY_LEN || s[WG_KEY_LEN - 1] != '=')
    return 0;
  for (size_t i = 0; i < WG_KEY_LEN - 1; i++) {
    if (!is_b64(s[i]))
      return 0;
  }
  return 1;
}

/* One line "KEY\tTIME" (no newline, n bytes) into *hs. */
static mx_err parse_line(const char *line, size_t n, size_t lineno, struct dev_health_handshake *hs, char *err)
{
  const char *tab = memchr(line, '\t', n);
  char num[24];
  char *end = NULL;
  size_t numlen;
  long long v;

  if (!tab || !valid_key(line, (size_t)(tab - line)))
    goto bad;
  numlen = n - (size_t)(tab - line) - 1;
  if (numlen == 0 || numlen >= sizeof num)
    goto bad;
  memcpy(num, tab + 1, numlen);
  num[numlen] = '\0';
  errno = 0;
  v = strtoll(num, &end, 10);
  if (errno || *end != '\0' || v < 0 || num[0] == '-' || num[0] == '+')
    goto bad;
  memcpy(hs->pubkey, line, WG_KEY_LEN);
  hs->pubkey[WG_KEY_LEN] = '\0';
  hs->when = v;
  return MX_OK;
bad:
  return mx_fail(MX_ERR_INVALID, err, "wg latest-handshakes line %zu: expected 'PUBKEY<TAB>UNIX_TIME', got '%.*s'",
                 lineno, (int)(n > 120 ? 120 : n), line);
}

mx_err dev_health_parse_handshakes(const char *text, struct dev_health_handshake **out, size_t *n, char *err)
{
  size_t cap = 0, count = 0, lineno = 0;
  struct dev_health_handshake *v = NULL;
  const char *p = text;
  mx_err rc = MX_OK;

  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);

    lineno++;
    if (len > 0 && p[len - 1] == '\r')
      len--;
    if (len > 0) {
      if (count == cap) {
        size_t ncap = cap ? cap * 2 : 8;
        struct dev_health_handshake *nv = realloc(v, ncap * sizeof *nv);
        if (!nv) {
          rc = mx_fail(MX_ERR_NOMEM, err, "wg latest-handshakes: out of memory");
          goto cleanup;
        }
        v = nv;
        cap = ncap;
      }
      rc = parse_line(p, len, lineno, &v[count], err);
      if (rc)
        goto cleanup;
      count++;
    }
    p = nl ? nl + 1 : p + strlen(p);
  }
cleanup:
  if (rc) {
    free(v);
    v = NULL;
    count = 0;
  }
  *out = v;
  *n = count;
  return rc;
}

enum dev_health_hs_state dev_health_hs_classify(int64_t when, int64_t now, int stale_after_s)
{
  if (when <= 0)
    return DEV_HEALTH_HS_NEVER;
  /* A clock step backwards makes the age negative: that is recent, not stale. */
  if (now - when > stale_after_s)
    return DEV_HEALTH_HS_STALE;
  return DEV_HEALTH_HS_OK;
}

void dev_health_format_age(int64_t when, int64_t now, char *out, size_t n)
{
  int64_t age = now - when;

  if (when <= 0) {
    snprintf(out, n, "never");
    return;
  }
  if (age < 0)
    age = 0;
  if (age < 60)
    snprintf(out, n, "%" PRId64 "s ago", age);
  else if (age < 3600)
    snprintf(out, n, "%" PRId64 "m ago", age / 60);
  else if (age < 86400)
    snprintf(out, n, "%" PRId64 "h ago", age / 3600);
  else
    snprintf(out, n, "%" PRId64 "d ago", age / 86400);
}

static mx_err run_wg(struct dev_health *h, struct mx_buf *out, char *err)
{
  char *argv[] = {h->wg_path, "show", h->wg_interface, "latest-handshakes", NULL};
  struct dev_result r;
  mx_err rc;

  dev_result_init(&r);
  rc = dev_local_exec(argv, NULL, h->o.wg_timeout_ms, WG_MAX_OUTPUT, NULL, &r, err);
  if (rc)
    goto cleanup;
  if (r.status != DEV_DONE || r.exit_code != 0 || r.truncated) {
    const char *e = r.detail ? r.detail : mx_buf_cstr(&r.err);
    if (r.err.buf)
      mx_rtrim(r.err.buf);
    rc = mx_fail(MX_ERR_IO, err, "%s show %s latest-handshakes: %s%s%s", h->wg_path, h->wg_interface,
                 r.status == DEV_TIMEOUT ? "timed out" : r.truncated ? "output too long" : "failed",
                 e[0] ? ": " : "", e);
    goto cleanup;
  }
  rc = mx_buf_add(out, mx_buf_cstr(&r.out), r.out.len);
  if (rc)
    rc = mx_fail(rc, err, "wg latest-handshakes: out of memory");
cleanup:
  dev_result_release(&r);
  return rc;
}

mx_err dev_health_wg_read(struct dev_health *h, struct dev_health_handshake **hs, size_t *n, char *err)
{
  struct mx_buf out = MX_BUF_INIT(WG_MAX_OUTPUT);
  mx_err rc;

  *hs = NULL;
  *n = 0;
  if (h->o.wg_show)
    rc = h->o.wg_show(h->o.wg_ctx, h->wg_interface, &out, err);
  else
    rc = run_wg(h, &out, err);
  if (!rc)
    rc = dev_health_parse_handshakes(mx_buf_cstr(&out), hs, n, err);
  mx_buf_release(&out);
  return rc;
}
