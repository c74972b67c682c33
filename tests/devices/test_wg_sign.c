/* test_wg_sign.c - request signatures: valid, tampered (body, path, method,
 * key), skew at the window edges, replay, missing/malformed headers, cache
 * full, key files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dev_wg_sign.h"
#include "mx_crypto.h"
#include "mx_util.h"

static const uint8_t key[DEV_WG_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const char body[] = "{\"tool\":\"fs.read\"}";

static enum dev_wg_verdict check(const struct dev_wg_sig *s, const uint8_t *k, const char *method, const char *path,
                                 const char *b, int64_t now, struct dev_wg_nonces *c)
{
  uint8_t h[32];
  mx_sha256(b, strlen(b), h);
  return dev_wg_verify(k, method, path, s->ts, s->nonce, s->sig, h, now, c);
}

static void valid_and_tampered(void **state)
{
  (void)state;
  struct dev_wg_sig s;
  int64_t now = 1800000000;
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", now, body, strlen(body), &s), MX_OK);
  assert_int_equal(strlen(s.nonce), DEV_WG_NONCE_LEN);
  assert_int_equal(check(&s, key, "POST", "/v1/call", body, now, NULL), DEV_WG_OK);
  assert_int_equal(check(&s, key, "POST", "/v1/call", "{\"tool\":\"fs.write\"}", now, NULL), DEV_WG_BAD_SIGNATURE);
  assert_int_equal(check(&s, key, "POST", "/v1/health", body, now, NULL), DEV_WG_BAD_SIGNATURE);
  assert_int_equal(check(&s, key, "GET", "/v1/call", body, now, NULL), DEV_WG_BAD_SIGNATURE);
  uint8_t other[DEV_WG_KEY_LEN];
  memcpy(other, key, sizeof(other));
  other[5] ^= 1;
  assert_int_equal(check(&s, other, "POST", "/v1/call", body, now, NULL), DEV_WG_BAD_SIGNATURE);
  s.sig[10] = s.sig[10] == 'a' ? 'b' : 'a';
  assert_int_equal(check(&s, key, "POST", "/v1/call", body, now, NULL), DEV_WG_BAD_SIGNATURE);
}

static void skew_window(void **state)
{
  (void)state;
  struct dev_wg_sig s;
  int64_t now = 1800000000;
  assert_int_equal(dev_wg_sign(key, "GET", "/v1/health", now - 300, "", 0, &s), MX_OK);
  assert_int_equal(check(&s, key, "GET", "/v1/health", "", now, NULL), DEV_WG_OK);
  assert_int_equal(dev_wg_sign(key, "GET", "/v1/health", now - 301, "", 0, &s), MX_OK);
  assert_int_equal(check(&s, key, "GET", "/v1/health", "", now, NULL), DEV_WG_SKEW);
  assert_int_equal(dev_wg_sign(key, "GET", "/v1/health", now + 301, "", 0, &s), MX_OK);
  assert_int_equal(check(&s, key, "GET", "/v1/health", "", now, NULL), DEV_WG_SKEW);
  assert_string_equal(dev_wg_verdict_str(DEV_WG_SKEW), "skew");
}

static void replay_refused(void **state)
{
  (void)state;
  struct dev_wg_nonces *c = dev_wg_nonces_new(0);
  struct dev_wg_sig s, s2;
  int64_t now = 1800000000;
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", now, body, strlen(body), &s), MX_OK);
  assert_int_equal(check(&s, key, "POST", "/v1/call", body, now, c), DEV_WG_OK);
  assert_int_equal(check(&s, key, "POST", "/v1/call", body, now + 10, c), DEV_WG_REPLAY);
  assert_string_equal(dev_wg_verdict_str(DEV_WG_REPLAY), "replay");
  /* A forged request with a fresh nonce is not remembered. */
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", now, body, strlen(body), &s2), MX_OK);
  assert_int_equal(check(&s2, key, "POST", "/v1/call", "tampered", now, c), DEV_WG_BAD_SIGNATURE);
  assert_int_equal(check(&s2, key, "POST", "/v1/call", body, now, c), DEV_WG_OK);
  dev_wg_nonces_free(c);
}

static void cache_full_fails_closed(void **state)
{
  (void)state;
  struct dev_wg_nonces *c = dev_wg_nonces_new(2);
  struct dev_wg_sig s;
  int64_t now = 1800000000;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(dev_wg_sign(key, "GET", "/v1/health", now, "", 0, &s), MX_OK);
    assert_int_equal(check(&s, key, "GET", "/v1/health", "", now, c), DEV_WG_OK);
  }
  assert_int_equal(dev_wg_sign(key, "GET", "/v1/health", now, "", 0, &s), MX_OK);
  assert_int_equal(check(&s, key, "GET", "/v1/health", "", now, c), DEV_WG_BUSY);
  /* Once the old nonces left the window there is room again. */
  assert_int_equal(dev_wg_sign(key, "GET", "/v1/health", now + 400, "", 0, &s), MX_OK);
  assert_int_equal(check(&s, key, "GET", "/v1/health", "", now + 400, c), DEV_WG_OK);
  dev_wg_nonces_free(c);
}

static void missing_and_malformed(void **state)
{
  (void)state;
  uint8_t h[32];
  mx_sha256("", 0, h);
  int64_t now = 1800000000;
  struct dev_wg_sig s;
  assert_int_equal(dev_wg_sign(key, "GET", "/v1/health", now, "", 0, &s), MX_OK);
  assert_int_equal(dev_wg_verify(key, "GET", "/v1/health", NULL, s.nonce, s.sig, h, now, NULL),
                   DEV_WG_MISSING_SIGNATURE);
  assert_int_equal(dev_wg_verify(key, "GET", "/v1/health", s.ts, s.nonce, NULL, h, now, NULL),
                   DEV_WG_MISSING_SIGNATURE);
  assert_int_equal(dev_wg_verify(key, "GET", "/v1/health", "12x", s.nonce, s.sig, h, now, NULL), DEV_WG_MALFORMED);
  assert_int_equal(dev_wg_verify(key, "GET", "/v1/health", s.ts, "short", s.sig, h, now, NULL), DEV_WG_MALFORMED);
  assert_int_equal(dev_wg_verify(key, "GET", "/v1/health", s.ts, s.nonce, "v2=abc", h, now, NULL), DEV_WG_MALFORMED);
  assert_string_equal(dev_wg_verdict_str(DEV_WG_MISSING_SIGNATURE), "missing_signature");
}

static void key_files(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], path[] = "/tmp/mxf-wgkey-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  uint8_t k[DEV_WG_KEY_LEN], k2[DEV_WG_KEY_LEN];
  assert_int_equal(dev_wg_key_generate(path, err), MX_OK);
  assert_int_equal(dev_wg_key_load(path, k, err), MX_OK);
  assert_int_equal(dev_wg_key_generate(path, err), MX_OK);
  assert_int_equal(dev_wg_key_load(path, k2, err), MX_OK);
  assert_memory_not_equal(k, k2, sizeof(k));
  chmod(path, 0644);
  assert_int_equal(dev_wg_key_load(path, k, err), MX_ERR_CONFIG);
  assert_non_null(strstr(err, "expected mode 0600"));
  assert_int_equal(mx_file_write(path, "c2hvcnQ\n", 8, 0600, err), MX_OK);
  assert_int_equal(dev_wg_key_load(path, k, err), MX_ERR_CONFIG);
  assert_non_null(strstr(err, "expected 32 bytes in base64"));
  unlink(path);
  assert_int_equal(dev_wg_key_load(path, k, err), MX_ERR_NOT_FOUND);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_and_tampered), cmocka_unit_test(skew_window),
      cmocka_unit_test(replay_refused),     cmocka_unit_test(cache_full_fails_closed),
      cmocka_unit_test(missing_and_malformed), cmocka_unit_test(key_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
