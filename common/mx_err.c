/* mx_err.c - text for every mx_err code. No default: in the switch, so that
 * -Wall (-Wswitch) flags a code added without its text. */
#include "mx_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *mx_err_str(mx_err code)
{
  switch (code) {
  case MX_OK: return "ok";
  case MX_ERR_NOMEM: return "out of memory";
  case MX_ERR_INVALID: return "invalid input";
  case MX_ERR_IO: return "i/o error";
  case MX_ERR_DB: return "database error";
  case MX_ERR_HTTP: return "http error";
  case MX_ERR_TIMEOUT: return "timed out";
  case MX_ERR_DENIED: return "denied";
  case MX_ERR_NOT_FOUND: return "not found";
  case MX_ERR_TOO_BIG: return "too big";
  case MX_ERR_CRYPTO: return "cryptographic failure";
  case MX_ERR_CONFIG: return "configuration error";
  case MX_ERR_AUTH: return "authentication failed";
  case MX_ERR_RATE_LIMITED: return "rate limited";
  case MX_ERR_UNAVAILABLE: return "unavailable";
  case MX_ERR_CANCELLED: return "cancelled";
  case MX_ERR_CONFLICT: return "conflict";
  case MX_ERR_INTERNAL: return "internal error";
  case MX_ERR_PENDING: return "pending";
  case MX_ERR_TAMPERED: return "tampered";
  case MX_ERR_UNSUPPORTED: return "unsupported";
  case MX_ERR_EXPIRED: return "expired";
  case MX_ERR_LAST: return "unknown error";
  }
  return "unknown error";
}

mx_err mx_fail(mx_err code, char *errbuf, const char *fmt, ...)
{
  if (errbuf) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, MX_ERRBUF_LEN, fmt, ap);
    va_end(ap);
  }
  return code;
}
