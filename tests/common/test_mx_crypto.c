/* mx_crypto: known SHA-256/HMAC answers and base64 round trips in both
 * alphabets, unpadded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mx_crypto.h"

static void sha256_and_hmac_match_known_answers(void **state)
{
  (void)state;
  char hex[65];
  mx_sha256_hex("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  uint8_t mac[32];
  /* RFC 4231 test case 2 */
  mx_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
  mx_hex(mac, 32, hex);
  assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void base64_is_unpadded_and_round_trips(void **state)
{
  (void)state;
  struct mx_buf b = MX_BUF_INIT(100);
  const uint8_t in[] = { 0xfb, 0xff, 0x01, 0x02 };
  assert_int_equal(mx_b64_encode(in, 4, &b), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "+/8BAg");
  mx_buf_reset(&b);
  assert_int_equal(mx_b64url_encode(in, 4, &b), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "-_8BAg");
  uint8_t *out = NULL;
  size_t n = 0;
  assert_int_equal(mx_b64_decode("+/8BAg==", &out, &n), MX_OK);
  assert_int_equal(n, 4);
  assert_memory_equal(out, in, 4);
  free(out);
  assert_int_equal(mx_b64_decode("ab$d", &out, &n), MX_ERR_INVALID);
  mx_buf_release(&b);
}

static void random_alnum_has_the_asked_length(void **state)
{
  (void)state;
  char a[10], b[10];
  assert_int_equal(mx_random_alnum(a, 9), MX_OK);
  assert_int_equal(mx_random_alnum(b, 9), MX_OK);
  assert_int_equal(strlen(a), 9);
  assert_string_not_equal(a, b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sha256_and_hmac_match_known_answers),
    cmocka_unit_test(base64_is_unpadded_and_round_trips),
    cmocka_unit_test(random_alnum_has_the_asked_length),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
