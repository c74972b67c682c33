/*
 * tests/security/test_sec_approval_notice.c - issue 11 finding 1: an
 * approval notice must show everything that will run. A shell.eval script
 * hides a payload between two heredocs, the first opening with a PEM BEGIN
 * line, the second holding the END line: the old private-key rule masked
 * from BEGIN to END and the operator saw only "echo restarting app". Here
 * the real engine asks (recording approver), the operator approves, the
 * payload runs - and both the notice's arguments and the audit must show
 * it. A real key in a heredoc is still masked, its body only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sec_fx.h"

#define EVAL_MANIFEST SEC_MANIFEST("", ",\"shell.eval\":{\"approval\":\"ask\"}")

static int setup(void **state)
{
  sec_setup(state);
  struct sec_fx *f = *state;
  sec_engine(f, EVAL_MANIFEST, 0);
  f->answer = SEC_APPROVE; /* the operator reads the notice and approves */
  return 0;
}

/* Runs shell.eval with script; returns the audit records' text (owned). */
static char *eval_and_audit(struct sec_fx *f, const char *script)
{
  char err[MX_ERRBUF_LEN];
  cJSON *args = cJSON_CreateObject();
  cJSON_AddStringToObject(args, "command", script);
  char *aj = cJSON_PrintUnformatted(args);
  struct tools_outcome out;
  sec_call(f, "shell.eval", aj, &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  cJSON_free(aj);
  cJSON_Delete(args);
  cJSON *recs = NULL;
  assert_int_equal(tools_audit_recent(f->audit, 10, &recs, err), MX_OK);
  char *all = cJSON_PrintUnformatted(recs);
  cJSON_Delete(recs);
  return all;
}

static void hidden_payload_is_shown_and_audited(void **state)
{
  struct sec_fx *f = *state;
  char pwned[300], script[1024];
  tt_path(pwned, sizeof(pwned), f->dir, "srv/PWNED");
  snprintf(script, sizeof(script),
           "cat <<A >/dev/null\n-----BEGIN PRIVATE KEY-----\nA\ntouch %s\ncat <<B >/dev/null\n"
           "-----END PRIVATE KEY-----\nB\necho restarting app", pwned);
  char *audit = eval_and_audit(f, script);
  assert_int_equal(access(pwned, F_OK), 0); /* the payload did run */
  char touch[320];
  snprintf(touch, sizeof(touch), "touch %s", pwned);
  if (!strstr(f->notice, touch))
    fail_msg("the approval notice hid the payload that ran: %s", f->notice);
  if (!strstr(audit, touch))
    fail_msg("the audit hid the payload that ran: %s", audit);
  assert_null(strstr(f->notice, "[REDACTED:private_key"));
  free(audit);
}

static void real_key_body_masked_structure_kept(void **state)
{
  struct sec_fx *f = *state;
  static const char body[] = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
                             "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
                             "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ";
  char key[300], script[1024];
  tt_path(key, sizeof(key), f->dir, "srv/data/id.pem");
  snprintf(script, sizeof(script),
           "cat >%s <<'EOF'\n-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\nEOF\nchmod 600 %s", key,
           body, key);
  char *audit = eval_and_audit(f, script);
  assert_int_equal(f->notices, 1);
  assert_null(strstr(f->notice, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw"));
  assert_null(strstr(audit, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw"));
  /* BEGIN/END lines, the heredoc and the chmod stay visible around the tag */
  assert_non_null(strstr(f->notice, "-----BEGIN PRIVATE KEY-----\\n[REDACTED:private_key:"));
  assert_non_null(strstr(f->notice, "]\\n-----END PRIVATE KEY-----\\nEOF\\nchmod 600 "));
  assert_non_null(strstr(audit, "]\\n-----END PRIVATE KEY-----\\nEOF\\nchmod 600 "));
  free(audit);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(hidden_payload_is_shown_and_audited, setup, sec_teardown),
      cmocka_unit_test_setup_teardown(real_key_body_masked_structure_kept, setup, sec_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
