/*
 * bot/crypto/e2ee_attach.c - encrypted attachments (E2E "Sending encrypted
 * attachments", v2): AES-256-CTR with OpenSSL, a fresh random key and a
 * random 64-bit IV (counter half zero) per file, SHA-256 of the ciphertext
 * checked BEFORE anything is decrypted. Stateless; no libolm.
 * Layer: bot/crypto on common/ and mx_api (download). Ownership: file_info is
 * borrowed; *file_info out is owned by the caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_json.h"

static mx_err ctr(const uint8_t key[32], const uint8_t iv[16], const void *in, size_t n, struct mx_buf *out,
                  char *err)
{
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  uint8_t *buf = malloc(n ? n : 1);
  int len = 0, fin = 0;
  mx_err rc = (c && buf) ? MX_OK : MX_ERR_NOMEM;
  if (!rc && n > (size_t)0x7fffffff)
    rc = mx_fail(MX_ERR_TOO_BIG, err, "attachment: %zu bytes is over 2 GiB", n);
  if (!rc && (EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, key, iv) != 1 ||
              EVP_EncryptUpdate(c, buf, &len, in, (int)n) != 1 || EVP_EncryptFinal_ex(c, buf + len, &fin) != 1))
    rc = mx_fail(MX_ERR_CRYPTO, err, "attachment: aes-256-ctr failed");
  if (!rc) {
    mx_buf_reset(out);
    rc = mx_buf_add(out, buf, n);
  }
  EVP_CIPHER_CTX_free(c);
  free(buf);
  return rc;
}

static mx_err decode_exact(const char *what, const char *b64, size_t want, uint8_t *out, char *err)
{
  uint8_t *d = NULL;
  size_t n = 0;
  if (!b64 || mx_b64_decode(b64, &d, &n) || n != want) {
    free(d);
    return mx_fail(MX_ERR_INVALID, err, "file.%s: expected %zu bytes of base64, got %zu", what, want, n);
  }
  memcpy(out, d, want);
  memset(d, 0, n);
  free(d);
  return MX_OK;
}

mx_err mx_e2ee_attachment_decrypt(const cJSON *f, const void *ct, size_t n, struct mx_buf *plain, char *err)
{
  const cJSON *jwk = mx_json_obj(f, "key");
  const char *v = mx_json_str(f, "v"), *alg = mx_json_str(jwk, "alg");
  if (!v || strcmp(v, "v2") != 0)
    return mx_fail(MX_ERR_INVALID, err, "file.v: expected 'v2', got '%s'", v ? v : "");
  if (!alg || strcmp(alg, "A256CTR") != 0)
    return mx_fail(MX_ERR_INVALID, err, "file.key.alg: expected 'A256CTR', got '%s'", alg ? alg : "");
  uint8_t key[32], iv[16], want[32], got[32];
  mx_err rc = decode_exact("key.k", mx_json_str(jwk, "k"), 32, key, err);
  if (!rc)
    rc = decode_exact("iv", mx_json_str(f, "iv"), 16, iv, err);
  if (!rc)
    rc = decode_exact("hashes.sha256", mx_json_str(mx_json_obj(f, "hashes"), "sha256"), 32, want, err);
  if (!rc) {
    mx_sha256(ct, n, got);
    /* hash first: a tampered file is never decrypted or used */
    if (!mx_ct_equal(got, want, 32))
      rc = mx_fail(MX_ERR_TAMPERED, err, "attachment: sha256 of the downloaded file does not match file.hashes.sha256");
  }
  if (!rc)
    rc = ctr(key, iv, ct, n, plain, err);
  memset(key, 0, sizeof(key));
  return rc;
}

mx_err mx_e2ee_attachment_encrypt(const void *plain, size_t n, struct mx_buf *ct, cJSON **file_info, char *err)
{
  uint8_t key[32], iv[16] = { 0 }, hash[32];
  struct mx_buf k = MX_BUF_INIT(128), ivb = MX_BUF_INIT(64), hb = MX_BUF_INIT(128);
  mx_err rc = mx_random_bytes(key, sizeof(key));
  if (!rc)
    rc = mx_random_bytes(iv, 8); /* counter half stays zero */
  if (!rc)
    rc = ctr(key, iv, plain, n, ct, err);
  if (!rc) {
    mx_sha256(ct->buf ? ct->buf : "", ct->len, hash);
    rc = mx_b64url_encode(key, 32, &k);
  }
  if (!rc)
    rc = mx_b64_encode(iv, 16, &ivb);
  if (!rc)
    rc = mx_b64_encode(hash, 32, &hb);
  if (!rc) {
    cJSON *f = cJSON_CreateObject(), *jwk = cJSON_AddObjectToObject(f, "key");
    cJSON *ops = cJSON_AddArrayToObject(jwk, "key_ops");
    cJSON_AddItemToArray(ops, cJSON_CreateString("encrypt"));
    cJSON_AddItemToArray(ops, cJSON_CreateString("decrypt"));
    cJSON_AddStringToObject(jwk, "kty", "oct");
    cJSON_AddStringToObject(jwk, "alg", "A256CTR");
    cJSON_AddStringToObject(jwk, "k", mx_buf_cstr(&k));
    cJSON_AddTrueToObject(jwk, "ext");
    cJSON_AddStringToObject(f, "iv", mx_buf_cstr(&ivb));
    cJSON_AddStringToObject(cJSON_AddObjectToObject(f, "hashes"), "sha256", mx_buf_cstr(&hb));
    cJSON_AddStringToObject(f, "v", "v2");
    *file_info = f;
  }
  memset(key, 0, sizeof(key));
  if (k.buf)
    memset(k.buf, 0, k.len);
  mx_buf_release(&k);
  mx_buf_release(&ivb);
  mx_buf_release(&hb);
  return rc;
}

mx_err mx_e2ee_attachment_fetch(struct mx_api *api, const cJSON *file_info, size_t max, struct mx_buf *plain,
                                char *err)
{
  const char *url = mx_json_str(file_info, "url");
  if (!url)
    return mx_fail(MX_ERR_INVALID, err, "file.url: expected an mxc:// url");
  struct mx_buf ct;
  mx_err rc = mx_api_download(api, url, max, &ct, err);
  if (rc)
    return rc;
  rc = mx_e2ee_attachment_decrypt(file_info, ct.buf ? ct.buf : "", ct.len, plain, err);
  mx_buf_release(&ct);
  return rc;
}
