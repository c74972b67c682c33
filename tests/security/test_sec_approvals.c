/*
 * tests/security/test_sec_approvals.c - the approval classics and secrets
 * echoed by a tool:
 *   - replay: an approval that was used cannot run its action again, by a
 *     second decision or by the restart path (tools_engine_run_approved);
 *   - an edited request: an approved action whose stored arguments were
 *     changed after the decision does not run (the hash is recomputed from
 *     what would run, not read from the same row);
 *   - a tool that prints a secret: the outcome (what reaches the model and
 *     Matrix) and the audit hold only the redaction tag.
 * Each refusal leaves the target untouched and is recorded in the audit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "sec_fx.h"

static void read_rel(struct sec_fx *f, const char *rel, char *buf, size_t n)
{
  char p[512];
  tt_path(p, sizeof(p), f->dir, rel);
  buf[0] = '\0';
  tt_read(p, buf, n);
}

static void test_used_approval_cannot_be_replayed(void **state)
{
  struct sec_fx *f = *state;
  struct tools_outcome out;
  char err[MX_ERRBUF_LEN], buf[64], p[512];
  f->answer = SEC_APPROVE;
  sec_call(f, "fs.write", "{\"path\":\"$D/srv/data/t.conf\",\"content\":\"one\\n\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  tt_path(p, sizeof(p), f->dir, "srv/data/t.conf");
  tt_write(p, "admin edit\n");
  /* Approving again changes nothing ... */
  assert_int_not_equal(tools_approvals_decide(f->ap, f->last_id, "@op:example.org", 1, TOOLS_VERDICT_APPROVE,
                                              "reaction", err),
                       MX_OK);
  /* ... and running the used action again is refused and audited. */
  assert_int_equal(tools_engine_run_approved(f->e, f->last_id, &out, err), MX_OK);
  assert_int_equal(out.status, TOOLS_OUT_REJECTED);
  tools_outcome_release(&out);
  sec_assert_audit_refused(f);
  read_rel(f, "srv/data/t.conf", buf, sizeof(buf));
  assert_string_equal(buf, "admin edit\n");
}

static void test_edited_request_is_not_run(void **state)
{
  struct sec_fx *f = *state;
  char err[MX_ERRBUF_LEN], args[1024], buf[64];
  struct tools_pending pend;
  memset(&pend, 0, sizeof(pend));
  sec_expand(f, "{\"content\":\"safe\\n\",\"path\":\"$D/srv/data/t.conf\"}", args, sizeof(args));
  pend.device = "pc1";
  pend.tool = "fs.write";
  pend.args_json = args;
  pend.risk = "write";
  pend.requester = "@op:example.org";
  pend.origin_json = "{\"operator_mxid\":\"@op:example.org\",\"room_id\":\"!dm:example.org\"}";
  pend.call_id = "call-edit";
  assert_int_equal(tools_approvals_create(f->ap, &pend, 0, err), MX_OK);
  char id[TOOLS_ACTION_ID_LEN + 1];
  snprintf(id, sizeof(id), "%s", pend.id);
  assert_int_equal(tools_approvals_decide(f->ap, id, "@op:example.org", 1, TOOLS_VERDICT_APPROVE, "reply", err), MX_OK);
  /* After the operator approved "safe", the stored request is edited. */
  char db[512], edited[1024], *sql;
  tt_path(db, sizeof(db), f->dir, "var/mxfleet.db");
  sqlite3 *s = NULL;
  assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
  sqlite3_busy_timeout(s, 5000);
  sec_expand(f, "{\"content\":\"evil\\n\",\"path\":\"$D/srv/data/t.conf\"}", edited, sizeof(edited));
  sql = sqlite3_mprintf("UPDATE tools_approvals SET args=%Q WHERE id=%Q", edited, id);
  assert_int_equal(sqlite3_exec(s, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_free(sql);
  sqlite3_close(s);
  struct tools_outcome out;
  assert_int_equal(tools_engine_run_approved(f->e, id, &out, err), MX_OK);
  assert_int_equal(out.status, TOOLS_OUT_REJECTED);
  tools_outcome_release(&out);
  sec_assert_audit_refused(f);
  assert_false(sec_exists(f, "srv/data/t.conf"));
  read_rel(f, "srv/data/t.conf", buf, sizeof(buf));
  assert_null(strstr(buf, "evil"));
}

static void test_secret_echoed_by_a_tool_is_redacted(void **state)
{
  struct sec_fx *f = *state;
  struct tools_outcome out;
  char p[512];
  tt_path(p, sizeof(p), f->dir, "srv/app.env");
  tt_write(p, "DB_PASSWORD=hunter2hunter2\naws_key=AKIAIOSFODNN7EXAMPLE\n"
              "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n"
              "-----END OPENSSH PRIVATE KEY-----\n");
  sec_engine(f, SEC_MANIFEST("{\"argv0\":\"/bin/cat\",\"args\":[\"$D/srv/*\"]}", ""), 0);
  sec_call(f, "shell.exec", "{\"argv\":[\"/bin/cat\",\"$D/srv/app.env\"]}", &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  assert_null(strstr(out.text, "hunter2hunter2"));
  assert_null(strstr(out.text, "AKIAIOSFODNN7EXAMPLE"));
  assert_null(strstr(out.text, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"));
  assert_non_null(strstr(out.text, "[REDACTED:"));
  tools_outcome_release(&out);
  sec_call(f, "fs.read", "{\"path\":\"$D/srv/app.env\"}", &out);
  assert_null(strstr(out.text, "hunter2hunter2"));
  assert_null(strstr(out.text, "AKIAIOSFODNN7EXAMPLE"));
  tools_outcome_release(&out);
  cJSON *r = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_audit_recent(f->audit, 0, &r, err), MX_OK);
  char *all = cJSON_PrintUnformatted(r);
  assert_null(strstr(all, "hunter2hunter2"));
  assert_null(strstr(all, "AKIAIOSFODNN7EXAMPLE"));
  cJSON_free(all);
  cJSON_Delete(r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_used_approval_cannot_be_replayed, sec_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_edited_request_is_not_run, sec_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_secret_echoed_by_a_tool_is_redacted, sec_setup, sec_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
