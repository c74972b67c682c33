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

#include "dev_local.h"
#include "mx_util.h"
#include "tools_engine.h"
#include "tools_test_util.h"

struct fx {
  char dir[128], data[256], srv[256];
  struct tools_manifest *m;
  struct dev_backend *b;
  struct tools_audit *audit;
  struct tools_approvals *ap;
  struct tools_redactor *red;
  struct tools_engine *e;
  char *notice_args; /* what the approver was shown */
};

/* The operator reads the notice, then approves at once. */
static mx_err post_notice(void *ctx, const struct tools_pending *p, char **notice_event_id, char *err)
{
  struct fx *f = ctx;
  free(f->notice_args);
  f->notice_args = mx_strdup(p->args_json);
  *notice_event_id = mx_strdup("$notice");
  return tools_approvals_decide(f->ap, p->id, "@op:example.org", 1, TOOLS_VERDICT_APPROVE, "reply", err);
}

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof(*f));
  char p[512], json[1024], err[MX_ERRBUF_LEN];
  assert_non_null(tt_tmpdir(f->dir, sizeof(f->dir), "secnotice"));
  tt_path(f->data, sizeof(f->data), f->dir, "var");
  tt_path(f->srv, sizeof(f->srv), f->dir, "srv");
  mkdir(f->data, 0700);
  mkdir(f->srv, 0755);
  snprintf(json, sizeof(json), "{\"version\":1,\"paths\":{\"read\":[\"%s\"],\"write\":[\"%s\"]},"
           "\"tools\":{\"shell.eval\":{\"approval\":\"ask\"}}}", f->srv, f->srv);
  cJSON *j = cJSON_Parse(json);
  assert_int_equal(tools_policy_parse(j, "sec.json", &f->m, err), MX_OK);
  cJSON_Delete(j);
  struct dev_local_opts lo = {0};
  lo.open_path = tools_policy_open_cb;
  lo.open_ctx = f->m;
  assert_int_equal(dev_local_new(&lo, &f->b, err), MX_OK);
  struct tools_audit_opts ao = {f->data, "pc1", NULL};
  assert_int_equal(tools_audit_open(&ao, &f->audit, err), MX_OK);
  tt_path(p, sizeof(p), f->data, "mxfleet.db");
  assert_int_equal(tools_approvals_open(p, &f->ap, err), MX_OK);
  assert_int_equal(tools_redact_new("0123456789abcdef0123456789abcdef", 32, &f->red, err), MX_OK);
  struct tools_engine_opts o = {0};
  o.device = "pc1";
  o.manifest = f->m;
  o.backend = f->b;
  o.audit = f->audit;
  o.approvals = f->ap;
  o.redactor = f->red;
  o.approver.ctx = f;
  o.approver.post_notice = post_notice;
  assert_int_equal(tools_engine_new(&o, &f->e, err), MX_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  tools_engine_free(f->e);
  f->b->destroy(f->b);
  tools_manifest_free(f->m);
  tools_audit_close(f->audit);
  tools_approvals_close(f->ap);
  tools_redact_free(f->red);
  tt_rmtree(f->dir);
  free(f->notice_args);
  free(f);
  return 0;
}

static struct tools_origin op = {.operator_mxid = "@op:example.org", .operator_device = "PHONE1",
                                 .verification = "verified", .room_id = "!dm:example.org", .event_id = "$ev1"};

/* Runs shell.eval with script; returns the audit records' text (owned). */
static char *eval_and_audit(struct fx *f, const char *script)
{
  char err[MX_ERRBUF_LEN];
  cJSON *args = cJSON_CreateObject();
  cJSON_AddStringToObject(args, "command", script);
  char *aj = cJSON_PrintUnformatted(args);
  struct tools_outcome out;
  assert_int_equal(tools_engine_call(f->e, &op, "c1", "shell.eval", aj, &out, err), MX_OK);
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
  struct fx *f = *state;
  char pwned[300], script[1024];
  tt_path(pwned, sizeof(pwned), f->srv, "PWNED");
  snprintf(script, sizeof(script),
           "cat <<A >/dev/null\n-----BEGIN PRIVATE KEY-----\nA\ntouch %s\ncat <<B >/dev/null\n"
           "-----END PRIVATE KEY-----\nB\necho restarting app", pwned);
  char *audit = eval_and_audit(f, script);
  assert_int_equal(access(pwned, F_OK), 0); /* the payload did run */
  char touch[320];
  snprintf(touch, sizeof(touch), "touch %s", pwned);
  if (!f->notice_args || !strstr(f->notice_args, touch))
    fail_msg("the approval notice hid the payload that ran: %s", f->notice_args ? f->notice_args : "(none)");
  if (!strstr(audit, touch))
    fail_msg("the audit hid the payload that ran: %s", audit);
  assert_null(strstr(f->notice_args, "[REDACTED:private_key"));
  free(audit);
}

static void real_key_body_masked_structure_kept(void **state)
{
  struct fx *f = *state;
  static const char body[] = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
                             "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
                             "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ";
  char key[300], script[1024];
  tt_path(key, sizeof(key), f->srv, "id.pem");
  snprintf(script, sizeof(script),
           "cat >%s <<'EOF'\n-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\nEOF\nchmod 600 %s", key,
           body, key);
  char *audit = eval_and_audit(f, script);
  assert_non_null(f->notice_args);
  assert_null(strstr(f->notice_args, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw"));
  assert_null(strstr(audit, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw"));
  /* BEGIN/END lines, the heredoc and the chmod stay visible around the tag */
  assert_non_null(strstr(f->notice_args, "-----BEGIN PRIVATE KEY-----\\n[REDACTED:private_key:"));
  assert_non_null(strstr(f->notice_args, "]\\n-----END PRIVATE KEY-----\\nEOF\\nchmod 600 "));
  assert_non_null(strstr(audit, "]\\n-----END PRIVATE KEY-----\\nEOF\\nchmod 600 "));
  free(audit);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(hidden_payload_is_shown_and_audited, setup, teardown),
      cmocka_unit_test_setup_teardown(real_key_body_masked_structure_kept, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
