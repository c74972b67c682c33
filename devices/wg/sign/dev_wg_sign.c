/*
 * dev_wg_sign.c - HMAC request signatures, key files and the nonce cache;
 * see dev_wg_sign.h. Layer: devices/ (shared by the WG client and the
 * agent); common/ only. Never logs or prints key material.
 */
#include "dev_wg_sign.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mx_crypto.h"
#include "mx_util.h"

const char *dev_wg_verdict_str(enum dev_wg_verdict v)
{
  switch (v) {
  case DEV_WG_OK: return "ok";
  case DEV_WG_MISSING_SIGNATURE: return "missing_signature";
  case DEV_WG_MALFORMED: return "malformed_signature";
  case DEV_WG_SKEW: return "skew";
  case DEV_WG_BAD_SIGNATURE: return "bad_signature";
  case DEV_WG_REPLAY: return "replay";
  case DEV_WG_BUSY: return "busy";
  }
  return "bad_signature";
}

mx_err dev_wg_key_load(const char *path, uint8_t key[DEV_WG_KEY_LEN], char *err)
{
  struct stat st;
  if (stat(path, &st) != 0)
    return mx_fail(MX_ERR_NOT_FOUND, err, "cannot open key file '%s': %s", path, strerror(errno));
  if (st.st_mode & 077)
    return mx_fail(MX_ERR_CONFIG, err, "key file '%s': expected mode 0600 (no group/other access), got %04o", path,
                   (unsigned)(st.st_mode & 07777));
  struct mx_buf b = MX_BUF_INIT(4096);
  mx_err rc = mx_file_read(path, 4096, &b, err);
  if (rc)
    return rc;
  mx_rtrim(b.buf);
  uint8_t *raw = NULL;
  size_t n = 0;
  rc = mx_b64_decode(b.buf, &raw, &n);
  if (rc || n != DEV_WG_KEY_LEN)
    rc = mx_fail(MX_ERR_CONFIG, err, "key file '%s': expected %d bytes in base64 on one line", path, DEV_WG_KEY_LEN);
  else
    memcpy(key, raw, DEV_WG_KEY_LEN);
  if (raw) {
    memset(raw, 0, n);
    free(raw);
  }
  memset(b.buf, 0, b.len);
  mx_buf_release(&b);
  return rc;
}

mx_err dev_wg_key_generate(const char *path, char *err)
{
  uint8_t key[DEV_WG_KEY_LEN];
  struct mx_buf b = MX_BUF_INIT(256);
  mx_err rc = mx_random_bytes(key, sizeof(key));
  if (!rc)
    rc = mx_b64_encode(key, sizeof(key), &b);
  if (!rc)
    rc = mx_buf_addc(&b, '\n');
  if (!rc)
    rc = mx_file_write(path, b.buf, b.len, 0600, err);
  memset(key, 0, sizeof(key));
  if (b.buf)
    memset(b.buf, 0, b.len);
  mx_buf_release(&b);
  return rc;
}

void dev_wg_sign_raw(const uint8_t key[DEV_WG_KEY_LEN], const char *method, const char *path, const char *ts,
                     const char *nonce, const uint8_t body_sha256[32], char sig_out[3 + 64 + 1])
{
  char bh[65];
  mx_hex(body_sha256, 32, bh);
  struct mx_buf m = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  uint8_t mac[MX_SHA256_LEN];
  if (mx_buf_addf(&m, "mxfleet-v1\n%s\n%s\n%s\n%s\n%s", method, path, ts, nonce, bh)) {
    sig_out[0] = '\0'; /* path longer than 64 KiB: an empty signature never verifies */
    return;
  }
  mx_hmac_sha256(key, DEV_WG_KEY_LEN, m.buf, m.len, mac);
  memcpy(sig_out, "v1=", 3);
  mx_hex(mac, sizeof(mac), sig_out + 3);
  mx_buf_release(&m);
}

mx_err dev_wg_sign(const uint8_t key[DEV_WG_KEY_LEN], const char *method, const char *path, int64_t now_s,
                   const void *body, size_t body_len, struct dev_wg_sig *out)
{
  uint8_t h[32];
  mx_err rc = mx_random_alnum(out->nonce, DEV_WG_NONCE_LEN);
  if (rc)
    return rc;
  snprintf(out->ts, sizeof(out->ts), "%lld", (long long)now_s);
  mx_sha256(body ? body : "", body ? body_len : 0, h);
  dev_wg_sign_raw(key, method, path, out->ts, out->nonce, h, out->sig);
  return out->sig[0] ? MX_OK : MX_ERR_TOO_BIG;
}

/* ---- nonce cache: chained hash table, entries expire with the window ---- */

#define NONCE_BUCKETS 4096

struct nonce_entry {
  struct nonce_entry *next;
  int64_t expires_s;
  char nonce[DEV_WG_NONCE_LEN + 1];
};

struct dev_wg_nonces {
  pthread_mutex_t mu;
  struct nonce_entry *bucket[NONCE_BUCKETS];
  size_t count, max;
};

struct dev_wg_nonces *dev_wg_nonces_new(size_t max_entries)
{
  struct dev_wg_nonces *n = calloc(1, sizeof(*n));
  if (!n)
    return NULL;
  pthread_mutex_init(&n->mu, NULL);
  n->max = max_entries ? max_entries : 100000;
  return n;
}

void dev_wg_nonces_free(struct dev_wg_nonces *n)
{
  if (!n)
    return;
  for (size_t i = 0; i < NONCE_BUCKETS; i++) {
    while (n->bucket[i]) {
      struct nonce_entry *e = n->bucket[i];
      n->bucket[i] = e->next;
      free(e);
    }
  }
  pthread_mutex_destroy(&n->mu);
  free(n);
}

static void prune_chain(struct dev_wg_nonces *n, size_t b, int64_t now_s)
{
  struct nonce_entry **pp = &n->bucket[b];
  while (*pp) {
    if ((*pp)->expires_s < now_s) {
      struct nonce_entry *dead = *pp;
      *pp = dead->next;
      free(dead);
      n->count--;
    } else
      pp = &(*pp)->next;
  }
}

/* DEV_WG_OK when the nonce was new and is now remembered. */
static enum dev_wg_verdict remember(struct dev_wg_nonces *n, const char *nonce, int64_t ts_s, int64_t now_s)
{
  uint8_t h[32];
  mx_sha256(nonce, strlen(nonce), h);
  size_t b = ((size_t)h[0] << 8 | h[1]) % NONCE_BUCKETS;
  enum dev_wg_verdict v = DEV_WG_OK;
  pthread_mutex_lock(&n->mu);
  prune_chain(n, b, now_s);
  for (struct nonce_entry *e = n->bucket[b]; e; e = e->next)
    if (strcmp(e->nonce, nonce) == 0)
      v = DEV_WG_REPLAY;
  if (v == DEV_WG_OK && n->count >= n->max)
    for (size_t i = 0; i < NONCE_BUCKETS; i++)
      prune_chain(n, i, now_s);
  if (v == DEV_WG_OK && n->count >= n->max)
    v = DEV_WG_BUSY; /* forgetting a live nonce would allow a replay */
  struct nonce_entry *e = v == DEV_WG_OK ? calloc(1, sizeof(*e)) : NULL;
  if (v == DEV_WG_OK && !e)
    v = DEV_WG_BUSY;
  if (e) {
    snprintf(e->nonce, sizeof(e->nonce), "%s", nonce);
    e->expires_s = ts_s + DEV_WG_WINDOW_S; /* replayable until the ts leaves the window */
    e->next = n->bucket[b];
    n->bucket[b] = e;
    n->count++;
  }
  pthread_mutex_unlock(&n->mu);
  return v;
}

static int parse_ts(const char *ts, int64_t *out)
{
  char *end = NULL;
  errno = 0;
  long long v = strtoll(ts, &end, 10);
  if (errno || end == ts || *end || v <= 0 || strlen(ts) > 12)
    return 0;
  *out = v;
  return 1;
}

static int nonce_ok(const char *nonce)
{
  size_t n = strlen(nonce);
  if (n < 16 || n > DEV_WG_NONCE_LEN)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = nonce[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}

enum dev_wg_verdict dev_wg_verify(const uint8_t key[DEV_WG_KEY_LEN], const char *method, const char *path,
                                  const char *ts, const char *nonce, const char *sig,
                                  const uint8_t body_sha256[32], int64_t now_s, struct dev_wg_nonces *cache)
{
  int64_t t = 0;
  char want[3 + 64 + 1];
  if (!ts || !nonce || !sig || !*sig)
    return DEV_WG_MISSING_SIGNATURE;
  if (!parse_ts(ts, &t) || !nonce_ok(nonce) || strlen(sig) != 3 + 64 || strncmp(sig, "v1=", 3) != 0)
    return DEV_WG_MALFORMED;
  if (t < now_s - DEV_WG_WINDOW_S || t > now_s + DEV_WG_WINDOW_S)
    return DEV_WG_SKEW;
  dev_wg_sign_raw(key, method, path, ts, nonce, body_sha256, want);
  if (!want[0] || !mx_ct_equal(want, sig, sizeof(want) - 1))
    return DEV_WG_BAD_SIGNATURE;
  return cache ? remember(cache, nonce, t, now_s) : DEV_WG_OK;
}
