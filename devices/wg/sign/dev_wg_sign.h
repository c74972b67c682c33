/*
 * dev_wg_sign.h - request signing between the bot's WG client and
 * mxfleet-agent, shared by both ends.
 *
 * Each request carries three headers:
 *   X-Mxfleet-Timestamp: unix seconds
 *   X-Mxfleet-Nonce:     32 random [A-Za-z0-9] (unique per request)
 *   X-Mxfleet-Signature: v1=<hex HMAC-SHA256>
 * over the string "mxfleet-v1\n" METHOD "\n" PATH "\n" TS "\n" NONCE "\n"
 * hex(SHA-256(body)), with the per-device 32-byte key. PATH includes the query.
 * The agent accepts +-300 s of skew and remembers nonces for the window, so a
 * replay is refused. Layer: devices/ (linked by the agent); common/ only.
 */
#ifndef DEV_WG_SIGN_H
#define DEV_WG_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "mx_err.h"

#define DEV_WG_KEY_LEN 32
#define DEV_WG_WINDOW_S 300
#define DEV_WG_NONCE_LEN 32

#define DEV_WG_HDR_TS "X-Mxfleet-Timestamp"
#define DEV_WG_HDR_NONCE "X-Mxfleet-Nonce"
#define DEV_WG_HDR_SIG "X-Mxfleet-Signature"

struct dev_wg_sig {
  char ts[24];
  char nonce[DEV_WG_NONCE_LEN + 1];
  char sig[3 + 64 + 1]; /* "v1=" + hex */
};

/* Why a request was refused; the text goes in the 401 body as "reason". */
enum dev_wg_verdict {
  DEV_WG_OK = 0,
  DEV_WG_MISSING_SIGNATURE, /* a header is absent */
  DEV_WG_MALFORMED,         /* a header does not parse */
  DEV_WG_SKEW,              /* timestamp outside the window */
  DEV_WG_BAD_SIGNATURE,     /* HMAC does not match (tampered or wrong key) */
  DEV_WG_REPLAY,            /* nonce already seen in the window */
  DEV_WG_BUSY               /* nonce cache full: refuse rather than forget */
};

const char *dev_wg_verdict_str(enum dev_wg_verdict v);

/* Loads a key file: 32 random bytes as base64 (one line). The file must not
 * be readable by group or others. Never puts key material in err. */
mx_err dev_wg_key_load(const char *path, uint8_t key[DEV_WG_KEY_LEN], char *err);
/* Writes a fresh random key to path (mode 0600). */
mx_err dev_wg_key_generate(const char *path, char *err);

/* Signs a request at unix time now_s with a fresh random nonce. */
mx_err dev_wg_sign(const uint8_t key[DEV_WG_KEY_LEN], const char *method, const char *path, int64_t now_s,
                   const void *body, size_t body_len, struct dev_wg_sig *out);
/* Same with a given nonce and the body's SHA-256 (tests, agents). */
void dev_wg_sign_raw(const uint8_t key[DEV_WG_KEY_LEN], const char *method, const char *path, const char *ts,
                     const char *nonce, const uint8_t body_sha256[32], char sig_out[3 + 64 + 1]);

/* Nonces seen within the window; thread-safe. */
struct dev_wg_nonces;
struct dev_wg_nonces *dev_wg_nonces_new(size_t max_entries);
void dev_wg_nonces_free(struct dev_wg_nonces *n);

/*
 * Checks one request. Headers may be NULL (missing). Order: presence, shape,
 * skew, HMAC (constant-time), then the nonce, which is only remembered once
 * the signature is valid (an attacker cannot fill the cache).
 */
enum dev_wg_verdict dev_wg_verify(const uint8_t key[DEV_WG_KEY_LEN], const char *method, const char *path,
                                  const char *ts, const char *nonce, const char *sig,
                                  const uint8_t body_sha256[32], int64_t now_s, struct dev_wg_nonces *cache);

#endif
