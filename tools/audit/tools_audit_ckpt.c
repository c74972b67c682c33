/*
 * tools/audit/tools_audit_ckpt.c - signed checkpoints (size, head, time):
 * the Ed25519 audit key (raw 32-byte seed, 0600, created with O_EXCL on
 * first use), the text form posted to the alerts room, parsing external
 * checkpoints and storing the latest apart from the chain.
 * Layer: tools/; common/ + OpenSSL only.
 */
#include "tools_audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_crypto.h"
#include "mx_util.h"

#define CKPT_MAX_TEXT 2048

static mx_err create_seed(const char *path, char *err)
{
  uint8_t seed[32];
  if (mx_random_bytes(seed, sizeof(seed)))
    return mx_fail(MX_ERR_CRYPTO, err, "audit key: no randomness");
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno == EEXIST ? MX_OK : mx_fail(MX_ERR_IO, err, "cannot create audit key '%s': %s", path, strerror(errno));
  int ok = write(fd, seed, sizeof(seed)) == (ssize_t)sizeof(seed) && fsync(fd) == 0;
  close(fd);
  OPENSSL_cleanse(seed, sizeof(seed));
  if (!ok) {
    unlink(path);
    return mx_fail(MX_ERR_IO, err, "cannot write audit key '%s'", path);
  }
  return MX_OK;
}

mx_err audit_key_load(struct tools_audit *a, char *err)
{
  if (a->key)
    return MX_OK;
  mx_err rc = create_seed(a->key_path, err);
  struct mx_buf b = MX_BUF_INIT(64);
  if (!rc)
    rc = mx_file_read(a->key_path, 64, &b, err);
  if (!rc && b.len != 32)
    rc = mx_fail(MX_ERR_CRYPTO, err, "audit key '%s': expected 32 bytes, got %zu", a->key_path, b.len);
  if (!rc && !(a->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, (const uint8_t *)b.buf, 32)))
    rc = mx_fail(MX_ERR_CRYPTO, err, "audit key '%s': not an Ed25519 seed", a->key_path);
  if (b.buf)
    OPENSSL_cleanse(b.buf, b.len);
  mx_buf_release(&b);
  return rc;
}

mx_err tools_audit_key_read(const char *path, uint8_t seed[32], char *err)
{
  struct mx_buf b = MX_BUF_INIT(64);
  mx_err rc = create_seed(path, err);
  if (!rc)
    rc = mx_file_read(path, 64, &b, err);
  if (!rc && b.len != 32)
    rc = mx_fail(MX_ERR_CRYPTO, err, "audit key '%s': expected 32 bytes, got %zu", path, b.len);
  if (!rc)
    memcpy(seed, b.buf, 32);
  if (b.buf)
    OPENSSL_cleanse(b.buf, b.len);
  mx_buf_release(&b);
  return rc;
}

mx_err tools_audit_set_key(struct tools_audit *a, const uint8_t seed[32], char *err)
{
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  if (!k)
    return mx_fail(MX_ERR_CRYPTO, err, "audit key: not an Ed25519 seed");
  pthread_mutex_lock(&a->mu);
  EVP_PKEY_free(a->key);
  a->key = k;
  pthread_mutex_unlock(&a->mu);
  return MX_OK;
}

static void key_id_of(const uint8_t pub[32], char out[17])
{
  uint8_t d[MX_SHA256_LEN];
  mx_sha256(pub, 32, d);
  mx_hex(d, 8, out);
}

mx_err tools_audit_public_key(struct tools_audit *a, uint8_t pub[32], char key_id[17], char *err)
{
  pthread_mutex_lock(&a->mu);
  mx_err rc = audit_key_load(a, err);
  size_t n = 32;
  if (!rc && EVP_PKEY_get_raw_public_key(a->key, pub, &n) != 1)
    rc = mx_fail(MX_ERR_CRYPTO, err, "audit key: cannot derive the public key");
  pthread_mutex_unlock(&a->mu);
  if (!rc && key_id)
    key_id_of(pub, key_id);
  return rc;
}

/* The signed body: origin, size, base64 head, time (4 lines). */
static mx_err ckpt_body(const struct tools_audit_checkpoint *c, struct mx_buf *out)
{
  struct mx_buf h = MX_BUF_INIT(128);
  mx_err rc = mx_b64_encode(c->head, TOOLS_AUDIT_HASH_LEN, &h);
  if (!rc)
    rc = mx_buf_addf(out, "%s\n%lld\n%s\n%lld\n", c->origin, (long long)c->size, mx_buf_cstr(&h), (long long)c->time_ms);
  mx_buf_release(&h);
  return rc;
}

mx_err tools_audit_checkpoint_text(const struct tools_audit_checkpoint *c, struct mx_buf *out)
{
  struct mx_buf s = MX_BUF_INIT(256);
  mx_err rc = ckpt_body(c, out);
  if (!rc && c->has_sig)
    rc = mx_b64_encode(c->sig, 64, &s);
  if (!rc && c->has_sig)
    rc = mx_buf_addf(out, "\n\xe2\x80\x94 %s %s\n", c->key_id, mx_buf_cstr(&s));
  mx_buf_release(&s);
  return rc;
}

static int ed25519_verify(const uint8_t pub[32], const uint8_t sig[64], const void *msg, size_t n)
{
  EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = pk && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
           EVP_DigestVerify(ctx, sig, 64, msg, n) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pk);
  return ok;
}

static mx_err parse_fields(char *lines[6], int nlines, struct tools_audit_checkpoint *c, char *err)
{
  char *end = NULL;
  if (nlines < 4 || strlen(lines[0]) >= sizeof(c->origin) || strncmp(lines[0], "mxfleet-audit/", 14) != 0)
    return mx_fail(MX_ERR_INVALID, err, "checkpoint line 1: expected 'mxfleet-audit/<device>'");
  snprintf(c->origin, sizeof(c->origin), "%s", lines[0]);
  c->size = strtoll(lines[1], &end, 10);
  if (!*lines[1] || *end || c->size < 0)
    return mx_fail(MX_ERR_INVALID, err, "checkpoint line 2: expected the record count, got '%.40s'", lines[1]);
  uint8_t *h = NULL;
  size_t hn = 0;
  if (mx_b64_decode(lines[2], &h, &hn) || hn != TOOLS_AUDIT_HASH_LEN) {
    free(h);
    return mx_fail(MX_ERR_INVALID, err, "checkpoint line 3: expected a base64 SHA-256 head, got '%.60s'", lines[2]);
  }
  memcpy(c->head, h, TOOLS_AUDIT_HASH_LEN);
  free(h);
  c->time_ms = strtoll(lines[3], &end, 10);
  if (!*lines[3] || *end)
    return mx_fail(MX_ERR_INVALID, err, "checkpoint line 4: expected milliseconds since the epoch, got '%.40s'",
                   lines[3]);
  return MX_OK;
}

static mx_err parse_sig(const char *line, struct tools_audit_checkpoint *c, char *err)
{
  static const char dash[] = "\xe2\x80\x94 ";
  if (strncmp(line, dash, 4) != 0 || strlen(line) < 4 + 17 || line[4 + 16] != ' ')
    return mx_fail(MX_ERR_INVALID, err, "checkpoint signature line: expected '\xe2\x80\x94 <key id> <base64 signature>'");
  memcpy(c->key_id, line + 4, 16);
  c->key_id[16] = '\0';
  uint8_t *s = NULL;
  size_t sn = 0;
  if (mx_b64_decode(line + 4 + 17, &s, &sn) || sn != 64) {
    free(s);
    return mx_fail(MX_ERR_INVALID, err, "checkpoint signature: expected 64 bytes of base64");
  }
  memcpy(c->sig, s, 64);
  free(s);
  c->has_sig = 1;
  return MX_OK;
}

mx_err tools_audit_checkpoint_parse(const char *text, const uint8_t *pubkey, struct tools_audit_checkpoint *out,
                                    char *err)
{
  size_t len = strlen(text);
  if (len > CKPT_MAX_TEXT)
    return mx_fail(MX_ERR_TOO_BIG, err, "checkpoint: at most %d bytes", CKPT_MAX_TEXT);
  char copy[CKPT_MAX_TEXT + 1];
  memcpy(copy, text, len + 1);
  char *lines[6] = {0};
  int n = 0;
  for (char *p = copy; p && n < 6;) {
    lines[n++] = p;
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    p = nl ? nl + 1 : NULL;
  }
  memset(out, 0, sizeof(*out));
  mx_err rc = parse_fields(lines, n, out, err);
  if (!rc && n >= 6 && lines[4][0] == '\0' && lines[5][0])
    rc = parse_sig(lines[5], out, err);
  if (rc || !pubkey)
    return rc;
  struct mx_buf body = MX_BUF_INIT(CKPT_MAX_TEXT);
  char kid[17];
  key_id_of(pubkey, kid);
  if (!out->has_sig)
    rc = mx_fail(MX_ERR_AUTH, err, "checkpoint: not signed");
  else if (strcmp(kid, out->key_id) != 0)
    rc = mx_fail(MX_ERR_AUTH, err, "checkpoint: signed by key %s, expected %s", out->key_id, kid);
  else if ((rc = ckpt_body(out, &body)) == MX_OK && !ed25519_verify(pubkey, out->sig, body.buf, body.len))
    rc = mx_fail(MX_ERR_AUTH, err, "checkpoint: signature does not verify");
  mx_buf_release(&body);
  return rc;
}

static mx_err sign_ckpt(struct tools_audit *a, struct tools_audit_checkpoint *c, char *err)
{
  struct mx_buf body = MX_BUF_INIT(CKPT_MAX_TEXT);
  uint8_t pub[32];
  size_t pn = 32, sn = 64;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  mx_err rc = ckpt_body(c, &body);
  if (!rc && (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, a->key) != 1 ||
              EVP_DigestSign(ctx, c->sig, &sn, (const uint8_t *)body.buf, body.len) != 1 ||
              EVP_PKEY_get_raw_public_key(a->key, pub, &pn) != 1))
    rc = mx_fail(MX_ERR_CRYPTO, err, "audit checkpoint: Ed25519 signing failed");
  if (!rc) {
    c->has_sig = 1;
    key_id_of(pub, c->key_id);
  }
  EVP_MD_CTX_free(ctx);
  mx_buf_release(&body);
  return rc;
}

static mx_err append_log(const char *path, const struct mx_buf *text, char *err)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return mx_fail(MX_ERR_IO, err, "cannot open '%s': %s", path, strerror(errno));
  int ok = write(fd, text->buf, text->len) == (ssize_t)text->len && write(fd, "\n", 1) == 1;
  close(fd);
  return ok ? MX_OK : mx_fail(MX_ERR_IO, err, "cannot append to '%s'", path);
}

mx_err tools_audit_checkpoint(struct tools_audit *a, struct tools_audit_checkpoint *out, char *err)
{
  struct tools_audit_checkpoint c;
  struct mx_buf text = MX_BUF_INIT(CKPT_MAX_TEXT);
  memset(&c, 0, sizeof(c));
  snprintf(c.origin, sizeof(c.origin), "mxfleet-audit/%s", a->device);
  c.time_ms = mx_now_ms();
  mx_err rc = tools_audit_head(a, &c.size, c.head, err);
  pthread_mutex_lock(&a->mu);
  if (!rc)
    rc = audit_key_load(a, err);
  if (!rc)
    rc = sign_ckpt(a, &c, err);
  if (!rc)
    rc = tools_audit_checkpoint_text(&c, &text);
  if (!rc)
    rc = mx_file_write(a->ckpt_path, text.buf, text.len, 0600, err);
  if (!rc)
    rc = append_log(a->ckpt_log_path, &text, err);
  pthread_mutex_unlock(&a->mu);
  mx_buf_release(&text);
  if (!rc && out)
    *out = c;
  return rc;
}

mx_err tools_audit_last_checkpoint(struct tools_audit *a, struct tools_audit_checkpoint *out, char *err)
{
  if (access(a->ckpt_path, F_OK) != 0)
    return mx_fail(MX_ERR_NOT_FOUND, err, "no checkpoint for '%s' yet", a->device);
  struct mx_buf text = MX_BUF_INIT(CKPT_MAX_TEXT + 1);
  uint8_t pub[32];
  mx_err rc = mx_file_read(a->ckpt_path, CKPT_MAX_TEXT, &text, err);
  if (!rc)
    rc = tools_audit_public_key(a, pub, NULL, err);
  if (!rc)
    rc = tools_audit_checkpoint_parse(mx_buf_cstr(&text), pub, out, err);
  mx_buf_release(&text);
  return rc;
}
