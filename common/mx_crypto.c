/* mx_crypto.c - libcrypto wrappers; see mx_crypto.h. */
#include "mx_crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

void mx_sha256(const void *data, size_t n, uint8_t out[MX_SHA256_LEN])
{
  SHA256(data, n, out);
}

void mx_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                    uint8_t out[MX_SHA256_LEN])
{
  unsigned int outlen = MX_SHA256_LEN;
  HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &outlen);
}

int mx_ct_equal(const void *a, const void *b, size_t n)
{
  return CRYPTO_memcmp(a, b, n) == 0;
}

mx_err mx_random_bytes(void *buf, size_t n)
{
  return RAND_bytes(buf, (int)n) == 1 ? MX_OK : MX_ERR_CRYPTO;
}

mx_err mx_random_alnum(char *out, size_t n)
{
  static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  size_t i = 0;
  while (i < n) {
    uint8_t r[32];
    if (mx_random_bytes(r, sizeof(r)))
      return MX_ERR_CRYPTO;
    for (size_t j = 0; j < sizeof(r) && i < n; j++) {
      if (r[j] >= 248) /* 248 = 4*62: reject to keep the choice uniform */
        continue;
      out[i++] = set[r[j] % 62];
    }
  }
  out[n] = '\0';
  return MX_OK;
}

void mx_hex(const uint8_t *in, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

void mx_sha256_hex(const void *data, size_t n, char out[2 * MX_SHA256_LEN + 1])
{
  uint8_t d[MX_SHA256_LEN];
  mx_sha256(data, n, d);
  mx_hex(d, sizeof(d), out);
}

static mx_err b64_encode(const uint8_t *in, size_t n, struct mx_buf *out, int url)
{
  static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char urlset[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char *set = url ? urlset : std;
  mx_err rc = MX_OK;
  size_t i = 0;
  for (; !rc && i + 3 <= n; i += 3) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    char q[4] = { set[v >> 18], set[(v >> 12) & 63], set[(v >> 6) & 63], set[v & 63] };
    rc = mx_buf_add(out, q, 4);
  }
  if (!rc && n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    char q[2] = { set[v >> 18], set[(v >> 12) & 63] };
    rc = mx_buf_add(out, q, 2);
  } else if (!rc && n - i == 2) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
    char q[3] = { set[v >> 18], set[(v >> 12) & 63], set[(v >> 6) & 63] };
    rc = mx_buf_add(out, q, 3);
  }
  if (!rc && n == 0)
    rc = mx_buf_add(out, "", 0); /* make the empty result a valid "" */
  return rc;
}

mx_err mx_b64_encode(const uint8_t *in, size_t n, struct mx_buf *out)
{
  return b64_encode(in, n, out, 0);
}

mx_err mx_b64url_encode(const uint8_t *in, size_t n, struct mx_buf *out)
{
  return b64_encode(in, n, out, 1);
}

static int b64_value(char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

mx_err mx_b64_decode(const char *in, uint8_t **out, size_t *outlen)
{
  size_t n = strlen(in);
  while (n > 0 && in[n - 1] == '=')
    n--;
  if (n % 4 == 1)
    return MX_ERR_INVALID;
  uint8_t *buf = malloc(n * 3 / 4 + 3);
  if (!buf)
    return MX_ERR_NOMEM;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value(in[i]);
    if (v < 0) {
      free(buf);
      return MX_ERR_INVALID;
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (uint8_t)(acc >> bits);
    }
  }
  *out = buf;
  *outlen = o;
  return MX_OK;
}
