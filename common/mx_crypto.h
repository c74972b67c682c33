/*
 * mx_crypto.h - thin wrappers over OpenSSL libcrypto used everywhere:
 * SHA-256, HMAC-SHA256, constant-time compare, CSPRNG, hex and base64
 * (Matrix's unpadded base64 and base64url). Lowest layer.
 */
#ifndef MX_CRYPTO_H
#define MX_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "mx_buf.h"
#include "mx_err.h"

#define MX_SHA256_LEN 32

void mx_sha256(const void *data, size_t n, uint8_t out[MX_SHA256_LEN]);
void mx_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                    uint8_t out[MX_SHA256_LEN]);
/* 1 when equal; time depends only on n. */
int mx_ct_equal(const void *a, const void *b, size_t n);
/* Fills buf from the OS CSPRNG; MX_ERR_CRYPTO if it cannot. */
MX_WARN_UNUSED mx_err mx_random_bytes(void *buf, size_t n);
/* n random characters from [A-Za-z0-9] plus a NUL; out has n+1 bytes. */
MX_WARN_UNUSED mx_err mx_random_alnum(char *out, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void mx_hex(const uint8_t *in, size_t n, char *out);
/* SHA-256 of data as 64 lowercase hex chars + NUL. */
void mx_sha256_hex(const void *data, size_t n, char out[2 * MX_SHA256_LEN + 1]);

/* Unpadded standard base64 (Matrix keys, signatures). */
mx_err mx_b64_encode(const uint8_t *in, size_t n, struct mx_buf *out);
/* Unpadded base64url (JWK "k" of encrypted attachments). */
mx_err mx_b64url_encode(const uint8_t *in, size_t n, struct mx_buf *out);
/* Decodes standard or url alphabet, padded or not. *out is malloc'd. */
mx_err mx_b64_decode(const char *in, uint8_t **out, size_t *outlen);

#endif
