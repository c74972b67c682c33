/*
 * mx_buf.h - the one growable byte buffer, always capped.
 *
 * Invariants: after any successful add, buf is NUL-terminated and len counts
 * the bytes before that NUL; a buffer holds at most `max` bytes. A failed add
 * (over the cap or out of memory) releases the buffer, as curl's dynbuf does,
 * so a half-built value is never used by mistake. Life cycle: mx_buf_init,
 * adds, then mx_buf_release or mx_buf_take ("you now own the storage").
 * mx_buf_cstr() is "" for an empty buffer. Not thread-safe; no mxfleet deps.
 */
#ifndef MX_BUF_H
#define MX_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "mx_err.h"

/* Caps by use; pick the tightest that fits. */
#define MX_BUF_MAX_SMALL ((size_t)64 * 1024)
#define MX_BUF_MAX_HTTP ((size_t)64 * 1024 * 1024)
#define MX_BUF_MAX_TOOL_OUTPUT ((size_t)8 * 1024 * 1024)
#define MX_BUF_MAX_MEDIA ((size_t)100 * 1024 * 1024)

struct mx_buf {
  char *buf;    /* NULL until the first add */
  size_t len;
  size_t alloc;
  size_t max;
};

#define MX_BUF_INIT(cap) { NULL, 0, 0, (cap) }

void mx_buf_init(struct mx_buf *b, size_t max);
void mx_buf_release(struct mx_buf *b);
/* Empties without freeing, keeping the cap. */
void mx_buf_reset(struct mx_buf *b);
MX_WARN_UNUSED mx_err mx_buf_add(struct mx_buf *b, const void *data, size_t n);
MX_WARN_UNUSED mx_err mx_buf_adds(struct mx_buf *b, const char *s);
MX_WARN_UNUSED mx_err mx_buf_addc(struct mx_buf *b, char c);
MX_WARN_UNUSED mx_err mx_buf_addf(struct mx_buf *b, const char *fmt, ...) MX_PRINTF(2, 3);
MX_WARN_UNUSED mx_err mx_buf_vaddf(struct mx_buf *b, const char *fmt, va_list ap);
/* Hands the NUL-terminated storage to the caller (free()); never NULL on
 * success; the buffer is left empty and reusable. NULL on out of memory. */
char *mx_buf_take(struct mx_buf *b);
const char *mx_buf_cstr(const struct mx_buf *b);

#endif
