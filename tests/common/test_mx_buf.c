/* mx_buf: the cap is enforced and a failed add releases the buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mx_buf.h"

static void adds_and_formats_stay_nul_terminated(void **state)
{
  (void)state;
  struct mx_buf b = MX_BUF_INIT(100);
  assert_string_equal(mx_buf_cstr(&b), "");
  assert_int_equal(mx_buf_adds(&b, "abc"), MX_OK);
  assert_int_equal(mx_buf_addf(&b, "-%d-", 42), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "abc-42-");
  assert_int_equal(b.len, 7);
  char *s = mx_buf_take(&b);
  assert_string_equal(s, "abc-42-");
  assert_null(b.buf);
  free(s);
}

static void going_over_the_cap_fails_and_releases(void **state)
{
  (void)state;
  struct mx_buf b = MX_BUF_INIT(8);
  assert_int_equal(mx_buf_adds(&b, "12345678"), MX_OK);
  assert_int_equal(mx_buf_addc(&b, '9'), MX_ERR_TOO_BIG);
  assert_null(b.buf);
  assert_int_equal(b.len, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(adds_and_formats_stay_nul_terminated),
    cmocka_unit_test(going_over_the_cap_fails_and_releases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
