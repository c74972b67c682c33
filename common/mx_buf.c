/* mx_buf.c - capped growable buffer; see mx_buf.h for the invariants. */
#include "mx_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mx_buf_init(struct mx_buf *b, size_t max)
{
  b->buf = NULL;
  b->len = 0;
  b->alloc = 0;
  b->max = max;
}

void mx_buf_release(struct mx_buf *b)
{
  free(b->buf);
  b->buf = NULL;
  b->len = 0;
  b->alloc = 0;
}

void mx_buf_reset(struct mx_buf *b)
{
  b->len = 0;
  if (b->buf)
    b->buf[0] = '\0';
}

static mx_err grow(struct mx_buf *b, size_t extra)
{
  if (extra > b->max || b->len > b->max - extra) {
    mx_buf_release(b);
    return MX_ERR_TOO_BIG;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->alloc)
    return MX_OK;
  size_t na = b->alloc ? b->alloc : 64;
  while (na < need)
    na *= 2;
  if (na > b->max + 1)
    na = b->max + 1;
  char *nb = realloc(b->buf, na);
  if (!nb) {
    mx_buf_release(b);
    return MX_ERR_NOMEM;
  }
  b->buf = nb;
  b->alloc = na;
  return MX_OK;
}

mx_err mx_buf_add(struct mx_buf *b, const void *data, size_t n)
{
  mx_err rc = grow(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->buf + b->len, data, n);
  b->len += n;
  b->buf[b->len] = '\0';
  return MX_OK;
}

mx_err mx_buf_adds(struct mx_buf *b, const char *s)
{
  return mx_buf_add(b, s, strlen(s));
}

mx_err mx_buf_addc(struct mx_buf *b, char c)
{
  return mx_buf_add(b, &c, 1);
}

mx_err mx_buf_vaddf(struct mx_buf *b, const char *fmt, va_list ap)
{
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0)
    return MX_ERR_INVALID;
  mx_err rc = grow(b, (size_t)n);
  if (rc)
    return rc;
  vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return MX_OK;
}

mx_err mx_buf_addf(struct mx_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  mx_err rc = mx_buf_vaddf(b, fmt, ap);
  va_end(ap);
  return rc;
}

char *mx_buf_take(struct mx_buf *b)
{
  char *out = b->buf;
  if (!out) {
    out = malloc(1);
    if (!out)
      return NULL;
    out[0] = '\0';
  }
  b->buf = NULL;
  b->len = 0;
  b->alloc = 0;
  return out;
}

const char *mx_buf_cstr(const struct mx_buf *b)
{
  return b->buf ? b->buf : "";
}
