/*
 * mx_err.h - the one error type of mxfleet.
 *
 * Every fallible function returns an mx_err; zero is success, so callers write
 * `if (rc) return rc;`. Detail travels beside the code in a caller-supplied
 * char[MX_ERRBUF_LEN] filled by mx_fail(). Codes are never renumbered: new
 * ones go just above MX_ERR_LAST, together with their text in mx_err.c.
 * Lowest layer: includes nothing of mxfleet.
 */
#ifndef MX_ERR_H
#define MX_ERR_H

#include <stddef.h>

#define MX_ERRBUF_LEN 512

#if defined(__GNUC__)
#define MX_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define MX_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define MX_PRINTF(fmt, args)
#define MX_WARN_UNUSED
#endif

typedef enum {
  MX_OK = 0,
  MX_ERR_NOMEM = 1,        /* allocation failed */
  MX_ERR_INVALID = 2,      /* bad input: arguments, JSON, events, bodies */
  MX_ERR_IO = 3,           /* file or socket I/O */
  MX_ERR_DB = 4,           /* SQLite */
  MX_ERR_HTTP = 5,         /* HTTP transport or unexpected status */
  MX_ERR_TIMEOUT = 6,      /* a deadline passed */
  MX_ERR_DENIED = 7,       /* refused by policy or trust rules */
  MX_ERR_NOT_FOUND = 8,    /* no such thing */
  MX_ERR_TOO_BIG = 9,      /* over a size cap */
  MX_ERR_CRYPTO = 10,      /* a cryptographic operation or check failed */
  MX_ERR_CONFIG = 11,      /* configuration is malformed */
  MX_ERR_AUTH = 12,        /* authentication failed (401/403, bad signature) */
  MX_ERR_RATE_LIMITED = 13, /* 429 after retries */
  MX_ERR_UNAVAILABLE = 14, /* remote down, breaker open, budget spent */
  MX_ERR_CANCELLED = 15,   /* stopped by the operator or shutdown */
  MX_ERR_CONFLICT = 16,    /* state does not allow this now */
  MX_ERR_INTERNAL = 17,    /* a bug: an invariant did not hold */
  MX_ERR_PENDING = 18,     /* waits for something (approval, a room key) */
  MX_ERR_TAMPERED = 19,    /* integrity check failed (audit chain, hash) */
  MX_ERR_UNSUPPORTED = 20, /* not available on this backend or build */
  MX_ERR_EXPIRED = 21,     /* too old: approvals, commands, signatures */
  MX_ERR_LAST              /* never use! */
} mx_err;

/* Static text for a code; never NULL. */
const char *mx_err_str(mx_err code);

/*
 * Fills errbuf (MX_ERRBUF_LEN bytes; skipped when NULL) with the formatted
 * detail and returns code, so callers write `return mx_fail(...)`.
 * Messages follow "location: what was expected, got 'value'", lowercase,
 * no final full stop, never quoting a secret.
 */
mx_err mx_fail(mx_err code, char *errbuf, const char *fmt, ...) MX_PRINTF(3, 4);

#endif
