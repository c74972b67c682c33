/*
 * tests/tools/test_tools_engine.c - the engine end to end with real parts:
 * the local backend running real processes and files in a temporary tree,
 * a real manifest, the SQLite audit chain and approval store, the redactor.
 * Only the bot side is a stand-in: an approver that records notices and
 * decides from another thread, as an operator replying in Matrix would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sys/wait.h>

#include "dev_local.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_util.h"
#include "tools_engine.h"
#include "tools_test_util.h"

enum mode { APPROVE, DENY, STRANGER, NOBODY };

struct approver {
  struct tools_approvals *ap;
  enum mode mode;
  int notices;
  int stranger_rc;
  char last_id[16];
  char last_text[1024];
  pthread_t th;
  int started;
};

struct fx {
  char dir[128], data[256], srv[256];
  struct tools_manifest *m;
  struct dev_backend *b;
  struct tools_audit *audit;
  struct tools_approvals *ap;
  struct tools_redactor *red;
  struct approver appr;
  struct tools_engine *e;
};

static void *decide_thread(void *arg)
{
  struct approver *a = arg;
  usleep(50000);
  if (a->mode == STRANGER)
    a->stranger_rc = tools_approvals_decide(a->ap, a->last_id, "@mallory:example.org", 0, TOOLS_VERDICT_APPROVE,
                                            "reply", NULL);
  else if (a->mode != NOBODY)
    tools_approvals_decide(a->ap, a->last_id, "@op:example.org", 1,
                           a->mode == APPROVE ? TOOLS_VERDICT_APPROVE : TOOLS_VERDICT_DENY, "reaction", NULL);
  return NULL;
}

static mx_err post_notice(void *ctx, const struct tools_pending *p, char **notice_event_id, char *err)
{
  (void)err;
  struct approver *a = ctx;
  a->notices++;
  snprintf(a->last_id, sizeof(a->last_id), "%s", p->id);
  snprintf(a->last_text, sizeof(a->last_text), "%s %s %s", p->tool, p->args_json, p->risk);
  *notice_event_id = mx_strdup("$notice");
  a->started = pthread_create(&a->th, NULL, decide_thread, a) == 0;
  return MX_OK;
}

static void join_approver(struct approver *a)
{
  if (a->started)
    pthread_join(a->th, NULL);
  a->started = 0;
}

static const char *manifest_fmt =
    "{\"version\":1,\"paths\":{\"read\":[\"%s\"],\"write\":[\"%s/data\"]},"
    "\"commands\":{\"allow\":[{\"argv0\":\"/bin/sleep\",\"args\":[\"[0-9]*\"]},{\"argv0\":\"/bin/echo\",\"args\":[],\"rest\":\"*\"}]},"
    "\"tools\":{\"fs.read\":{},\"fs.list\":{},\"fs.write\":{%s},\"shell.exec\":{\"timeout_ms\":60000},"
    "\"proc.list\":{},\"shell.eval\":{\"approval\":\"ask\"}}}";

static void make_engine(struct fx *f, const char *write_cfg, int64_t ttl)
{
  char json[2048], err[MX_ERRBUF_LEN];
  snprintf(json, sizeof(json), manifest_fmt, f->srv, f->srv, write_cfg);
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  tools_manifest_free(f->m);
  f->m = NULL;
  assert_int_equal(tools_policy_parse(j, "pc1.json", &f->m, err), MX_OK);
  cJSON_Delete(j);
  struct dev_local_opts lo = {0};
  lo.open_path = tools_policy_open_cb;
  lo.open_ctx = f->m;
  if (f->b)
    f->b->destroy(f->b);
  assert_int_equal(dev_local_new(&lo, &f->b, err), MX_OK);
  struct tools_engine_opts o = {0};
  o.device = "pc1";
  o.manifest = f->m;
  o.backend = f->b;
  o.audit = f->audit;
  o.approvals = f->ap;
  o.redactor = f->red;
  o.approver.ctx = &f->appr;
  o.approver.post_notice = post_notice;
  o.approval_ttl_ms = ttl;
  tools_engine_free(f->e);
  assert_int_equal(tools_engine_new(&o, &f->e, err), MX_OK);
}

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof(*f));
  char p[512], err[MX_ERRBUF_LEN];
  assert_non_null(tt_tmpdir(f->dir, sizeof(f->dir), "engine"));
  tt_path(f->data, sizeof(f->data), f->dir, "var");
  tt_path(f->srv, sizeof(f->srv), f->dir, "srv");
  mkdir(f->data, 0700);
  mkdir(f->srv, 0755);
  tt_mkdir(f->dir, "srv/data");
  tt_path(p, sizeof(p), f->dir, "srv/app.conf");
  tt_write(p, "name=web\naws_key=AKIAIOSFODNN7EXAMPLE\n");
  tt_path(p, sizeof(p), f->dir, "srv/data/target.txt");
  tt_write(p, "original\n");
  struct tools_audit_opts ao = {f->data, "pc1", NULL};
  assert_int_equal(tools_audit_open(&ao, &f->audit, err), MX_OK);
  tt_path(p, sizeof(p), f->data, "mxfleet.db");
  assert_int_equal(tools_approvals_open(p, &f->ap, err), MX_OK);
  assert_int_equal(tools_redact_new("0123456789abcdef0123456789abcdef", 32, &f->red, err), MX_OK);
  f->appr.ap = f->ap;
  make_engine(f, "", 0);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  join_approver(&f->appr);
  tools_engine_free(f->e);
  f->b->destroy(f->b);
  tools_manifest_free(f->m);
  tools_audit_close(f->audit);
  tools_approvals_close(f->ap);
  tools_redact_free(f->red);
  tt_rmtree(f->dir);
  free(f);
  return 0;
}

static struct tools_origin op = {.operator_mxid = "@op:example.org", .operator_device = "PHONE1",
                                 .verification = "verified", .room_id = "!dm:example.org", .event_id = "$ev1"};

static void call(struct fx *f, const struct tools_origin *o, const char *tool, const char *args, struct tools_outcome *out)
{
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_engine_call(f->e, o, "call-1", tool, args, out, err), MX_OK);
  join_approver(&f->appr);
}

static char *args_path(struct fx *f, const char *fmt, const char *rel)
{
  static char buf[1024];
  char p[512];
  tt_path(p, sizeof(p), f->dir, rel);
  snprintf(buf, sizeof(buf), fmt, p);
  return buf;
}

static cJSON *records(struct fx *f)
{
  cJSON *r = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_audit_recent(f->audit, 0, &r, err), MX_OK);
  return r;
}

static void test_specs_are_backend_and_manifest(void **state)
{
  struct fx *f = *state;
  cJSON *specs = tools_engine_specs(f->e);
  assert_int_equal(cJSON_GetArraySize(specs), 6);
  char *s = cJSON_PrintUnformatted(specs);
  assert_non_null(strstr(s, "\"name\":\"fs.read\""));
  assert_null(strstr(s, "\"name\":\"docker.ps\""));
  assert_null(strstr(s, "\"name\":\"ssh.exec\""));
  assert_non_null(strstr(s, "\"parameters\":{\"type\":\"object\""));
  cJSON_free(s);
  cJSON_Delete(specs);
}

static void test_invalid_args_go_back_to_the_model(void **state)
{
  struct fx *f = *state;
  struct tools_outcome out;
  call(f, &op, "fs.read", "{\"path\":7}", &out);
  assert_int_equal(out.status, TOOLS_OUT_INVALID);
  assert_string_equal(out.text, "fs.read: args.path: expected a string, got 7");
  tools_outcome_release(&out);
  call(f, &op, "fs.read", "{not json", &out);
  assert_int_equal(out.status, TOOLS_OUT_INVALID);
  tools_outcome_release(&out);
  call(f, &op, "docker.ps", "{}", &out);
  assert_int_equal(out.status, TOOLS_OUT_DENIED);
  assert_string_equal(out.text, "tool 'docker.ps' is not available on pc1");
  tools_outcome_release(&out);
}

static void test_allowed_read_is_audited_and_redacted(void **state)
{
  struct fx *f = *state;
  struct tools_outcome out;
  call(f, &op, "fs.read", args_path(f, "{\"path\":\"%s\"}", "srv/app.conf"), &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  assert_null(strstr(out.text, "AKIAIOSFODNN7EXAMPLE"));
  assert_non_null(strstr(out.text, "aws_key=[REDACTED:aws_key:"));
  assert_non_null(strstr(out.text, "name=web"));
  assert_true(out.intent_seq > 0);
  assert_int_equal(out.result_seq, out.intent_seq + 1);
  tools_outcome_release(&out);
  cJSON *r = records(f);
  assert_int_equal(cJSON_GetArraySize(r), 2);
  cJSON *intent = cJSON_GetArrayItem(r, 0), *result = cJSON_GetArrayItem(r, 1);
  assert_string_equal(mx_json_str(intent, "kind"), "intent");
  assert_string_equal(mx_json_str(intent, "decision"), "allow");
  assert_string_equal(mx_json_str(mx_json_obj(intent, "operator"), "device_id"), "PHONE1");
  assert_string_equal(mx_json_str(intent, "event_id"), "$ev1");
  assert_string_equal(mx_json_str(result, "kind"), "result");
  int64_t link = 0;
  assert_true(mx_json_int(result, "intent_seq", &link));
  assert_int_equal(link, 1);
  char want[65];
  const char *raw = "name=web\naws_key=AKIAIOSFODNN7EXAMPLE\n";
  mx_sha256_hex(raw, strlen(raw), want);
  assert_string_equal(mx_json_str(result, "output_sha256"), want);
  cJSON_Delete(r);
}

static void test_denied_calls_are_audited_and_do_not_run(void **state)
{
  struct fx *f = *state;
  struct tools_outcome out;
  call(f, &op, "fs.read", "{\"path\":\"/etc/passwd\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_DENIED);
  assert_non_null(strstr(out.text, "denied by the manifest of pc1: path '/etc/passwd' is outside every readable root"));
  tools_outcome_release(&out);
  /* Inside the root lexically, but a symlink out: the device refuses it. */
  char p[512];
  tt_path(p, sizeof(p), f->dir, "srv/pw");
  assert_int_equal(symlink("/etc/passwd", p), 0);
  call(f, &op, "fs.read", args_path(f, "{\"path\":\"%s\"}", "srv/pw"), &out);
  assert_int_equal(out.status, TOOLS_OUT_DENIED);
  assert_null(strstr(out.text, "root:"));
  tools_outcome_release(&out);
  call(f, &op, "shell.exec", "{\"argv\":[\"/bin/cat\",\"/etc/shadow\"]}", &out);
  assert_int_equal(out.status, TOOLS_OUT_DENIED);
  tools_outcome_release(&out);
  cJSON *r = records(f);
  assert_string_equal(mx_json_str(cJSON_GetArrayItem(r, 0), "status"), "denied");
  cJSON_Delete(r);
}

static void test_approval_flow_approve_and_deny(void **state)
{
  struct fx *f = *state;
  struct tools_outcome out;
  char buf[64], p[512];
  tt_path(p, sizeof(p), f->dir, "srv/data/target.txt");
  f->appr.mode = DENY;
  call(f, &op, "fs.write", args_path(f, "{\"path\":\"%s\",\"content\":\"changed\\n\"}", "srv/data/target.txt"), &out);
  assert_int_equal(out.status, TOOLS_OUT_REJECTED);
  assert_int_equal(f->appr.notices, 1);
  assert_non_null(strstr(f->appr.last_text, "fs.write"));
  assert_string_equal(out.action_id, f->appr.last_id);
  tools_outcome_release(&out);
  tt_read(p, buf, sizeof(buf));
  assert_string_equal(buf, "original\n");
  f->appr.mode = APPROVE;
  call(f, &op, "fs.write", args_path(f, "{\"path\":\"%s\",\"content\":\"changed\\n\"}", "srv/data/target.txt"), &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  tt_read(p, buf, sizeof(buf));
  assert_string_equal(buf, "changed\n");
  cJSON *r = records(f);
  cJSON *last = cJSON_GetArrayItem(r, cJSON_GetArraySize(r) - 1);
  assert_string_equal(mx_json_str(last, "approval"), f->appr.last_id);
  assert_string_equal(mx_json_str(last, "decision"), "ask");
  cJSON_Delete(r);
}

static void test_stranger_cannot_approve_and_expiry_denies(void **state)
{
  struct fx *f = *state;
  struct tools_outcome out;
  char buf[64], p[512];
  make_engine(f, "", 400);
  f->appr.mode = STRANGER;
  call(f, &op, "fs.write", args_path(f, "{\"path\":\"%s\",\"content\":\"pwned\\n\"}", "srv/data/target.txt"), &out);
  assert_int_equal(f->appr.stranger_rc, MX_ERR_DENIED);
  assert_int_equal(out.status, TOOLS_OUT_EXPIRED);
  tools_outcome_release(&out);
  tt_path(p, sizeof(p), f->dir, "srv/data/target.txt");
  tt_read(p, buf, sizeof(buf));
  assert_string_equal(buf, "original\n");
}

static void test_voice_above_read_always_asks(void **state)
{
  struct fx *f = *state;
  struct tools_outcome out;
  make_engine(f, "\"approval\":\"auto\"", 0);
  f->appr.mode = DENY;
  struct tools_origin voice = op;
  voice.via_voice = 1;
  call(f, &voice, "fs.write", args_path(f, "{\"path\":\"%s\",\"content\":\"x\"}", "srv/data/v.txt"), &out);
  assert_int_equal(f->appr.notices, 1);
  assert_int_equal(out.status, TOOLS_OUT_REJECTED);
  tools_outcome_release(&out);
  /* The same call typed is auto-approved by this manifest. */
  call(f, &op, "fs.write", args_path(f, "{\"path\":\"%s\",\"content\":\"x\"}", "srv/data/v.txt"), &out);
  assert_int_equal(f->appr.notices, 1);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  /* A voice read needs nothing. */
  call(f, &voice, "fs.list", args_path(f, "{\"path\":\"%s\"}", "srv"), &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  assert_int_equal(f->appr.notices, 1);
  tools_outcome_release(&out);
}

static void test_secrets_in_args_stay_out_of_audit_and_notice(void **state)
{
  struct fx *f = *state;
  struct tools_outcome out;
  char p[512], buf[128];
  f->appr.mode = APPROVE;
  call(f, &op, "fs.write",
       args_path(f, "{\"path\":\"%s\",\"content\":\"db_password=hunter2hunter2\\n\"}", "srv/data/cfg"), &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  /* The file gets the real content ... */
  tt_path(p, sizeof(p), f->dir, "srv/data/cfg");
  tt_read(p, buf, sizeof(buf));
  assert_string_equal(buf, "db_password=hunter2hunter2\n");
  /* ... the notice and the audit only the tag. */
  assert_null(strstr(f->appr.last_text, "hunter2hunter2"));
  assert_non_null(strstr(f->appr.last_text, "db_password=[REDACTED:password:"));
  cJSON *r = records(f);
  char *all = cJSON_PrintUnformatted(r);
  assert_null(strstr(all, "hunter2hunter2"));
  assert_non_null(strstr(all, "[REDACTED:password:"));
  cJSON_free(all);
  cJSON_Delete(r);
}

struct bg_call {
  struct fx *f;
  const char *tool, *args;
  struct tools_outcome out;
  int64_t took;
};

static void *bg(void *arg)
{
  struct bg_call *c = arg;
  char err[MX_ERRBUF_LEN];
  int64_t t0 = mx_mono_ms();
  tools_engine_call(c->f->e, &op, "call-bg", c->tool, c->args, &c->out, err);
  c->took = mx_mono_ms() - t0;
  return NULL;
}

static void test_stop_all_cancels_in_flight_and_pending(void **state)
{
  struct fx *f = *state;
  char err[MX_ERRBUF_LEN];
  struct bg_call run = {f, "shell.exec", "{\"argv\":[\"/bin/sleep\",\"600\"]}", {0}, 0};
  pthread_t th;
  pthread_create(&th, NULL, bg, &run);
  /* In flight once its intent is in the audit chain. */
  int64_t size = 0, deadline = mx_mono_ms() + 5000;
  uint8_t head[32];
  while (size < 1 && mx_mono_ms() < deadline) {
    tools_audit_head(f->audit, &size, head, err);
    usleep(10000);
  }
  assert_int_equal(size, 1);
  usleep(100000);
  assert_true(tools_engine_stop_all(f->e) >= 1);
  pthread_join(th, NULL);
  assert_int_equal(run.out.status, TOOLS_OUT_CANCELLED);
  assert_true(run.took < 3000);
  tools_outcome_release(&run.out);
  /* A call waiting for approval is cancelled too. */
  f->appr.mode = NOBODY;
  struct bg_call wait = {f, "shell.eval", "{\"command\":\"true\"}", {0}, 0};
  pthread_create(&th, NULL, bg, &wait);
  deadline = mx_mono_ms() + 5000;
  while (f->appr.notices < 1 && mx_mono_ms() < deadline)
    usleep(10000);
  assert_int_equal(f->appr.notices, 1);
  tools_engine_stop_all(f->e);
  pthread_join(th, NULL);
  assert_int_equal(wait.out.status, TOOLS_OUT_CANCELLED);
  tools_outcome_release(&wait.out);
}

static void test_restart_while_pending_runs_the_stored_call(void **state)
{
  struct fx *f = *state;
  char err[MX_ERRBUF_LEN], p[512], buf[64];
  /* An action stored before a restart (the waiting thread is gone). */
  struct tools_pending pend;
  memset(&pend, 0, sizeof(pend));
  char args[1024];
  snprintf(args, sizeof(args), "%s", args_path(f, "{\"content\":\"after restart\\n\",\"path\":\"%s\"}", "srv/data/target.txt"));
  pend.device = "pc1";
  pend.tool = "fs.write";
  pend.args_json = args;
  pend.risk = "write";
  pend.requester = "@op:example.org";
  pend.origin_json = "{\"operator_mxid\":\"@op:example.org\",\"room_id\":\"!dm:example.org\"}";
  pend.call_id = "call-old";
  assert_int_equal(tools_approvals_create(f->ap, &pend, 0, err), MX_OK);
  char id[16];
  snprintf(id, sizeof(id), "%s", pend.id);
  tools_approvals_close(f->ap);
  assert_int_equal(tools_approvals_open(args_path(f, "%s", "var/mxfleet.db"), &f->ap, err), MX_OK);
  f->appr.ap = f->ap;
  make_engine(f, "", 0);
  struct tools_outcome out;
  /* Not approved yet: nothing runs. */
  assert_int_equal(tools_engine_run_approved(f->e, id, &out, err), MX_OK);
  assert_int_equal(out.status, TOOLS_OUT_REJECTED);
  tools_outcome_release(&out);
  assert_int_equal(tools_approvals_decide(f->ap, id, "@op:example.org", 1, TOOLS_VERDICT_APPROVE, "reply", err), MX_OK);
  assert_int_equal(tools_engine_run_approved(f->e, id, &out, err), MX_OK);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  tt_path(p, sizeof(p), f->dir, "srv/data/target.txt");
  tt_read(p, buf, sizeof(buf));
  assert_string_equal(buf, "after restart\n");
  /* Replaying it runs nothing. */
  assert_int_equal(tools_engine_run_approved(f->e, id, &out, err), MX_OK);
  assert_int_equal(out.status, TOOLS_OUT_REJECTED);
  assert_non_null(strstr(out.text, "already used"));
  tools_outcome_release(&out);
}

/* Runs in a child as an unprivileged user (root ignores file modes): the
 * audit database is made read-only, so the intent cannot be written and the
 * write must be refused with the target untouched. */
static int readonly_child(void)
{
  char dir[128], p[512], err[MX_ERRBUF_LEN], buf[64];
  if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
    return 10;
  if (!tt_tmpdir(dir, sizeof(dir), "ro"))
    return 11;
  char srv[256], json[1024];
  tt_path(srv, sizeof(srv), dir, "srv");
  mkdir(srv, 0755);
  tt_path(p, sizeof(p), dir, "srv/target.txt");
  tt_write(p, "original\n");
  struct tools_audit_opts ao = {dir, "pc1", NULL};
  struct tools_audit *a = NULL;
  if (tools_audit_open(&ao, &a, err))
    return 12;
  tools_audit_close(a);
  tt_path(p, sizeof(p), dir, "audit/pc1.db");
  chmod(p, 0444);
  if (tools_audit_open(&ao, &a, err))
    return 13;
  snprintf(json, sizeof(json), "{\"version\":1,\"paths\":{\"read\":[\"%s\"],\"write\":[\"%s\"]},\"tools\":{\"fs.write\":{\"approval\":\"auto\"}}}", srv, srv);
  cJSON *j = cJSON_Parse(json);
  struct tools_manifest *m = NULL;
  struct dev_backend *b = NULL;
  struct tools_approvals *ap = NULL;
  struct tools_engine *e = NULL;
  tools_policy_parse(j, "ro.json", &m, err);
  cJSON_Delete(j);
  struct dev_local_opts lo = {0};
  lo.open_path = tools_policy_open_cb;
  lo.open_ctx = m;
  dev_local_new(&lo, &b, err);
  tt_path(p, sizeof(p), dir, "appr.db");
  if (tools_approvals_open(p, &ap, err))
    return 14;
  struct tools_engine_opts o = {0};
  o.device = "pc1";
  o.manifest = m;
  o.backend = b;
  o.audit = a;
  o.approvals = ap;
  if (tools_engine_new(&o, &e, err))
    return 15;
  struct tools_outcome out;
  char args[512];
  snprintf(args, sizeof(args), "{\"path\":\"%s/target.txt\",\"content\":\"changed\\n\"}", srv);
  int rc = 0;
  if (tools_engine_call(e, &op, "c1", "fs.write", args, &out, err))
    rc = 16;
  else if (out.status != TOOLS_OUT_AUDIT_FAILED || !strstr(out.text, "could not be written"))
    rc = 17;
  tools_outcome_release(&out);
  tt_path(p, sizeof(p), dir, "srv/target.txt");
  tt_read(p, buf, sizeof(buf));
  if (!rc && strcmp(buf, "original\n") != 0)
    rc = 18;
  tools_engine_free(e);
  tools_approvals_close(ap);
  tools_audit_close(a);
  b->destroy(b);
  tools_manifest_free(m);
  tt_rmtree(dir);
  return rc;
}

static void test_readonly_audit_refuses_the_action(void **state)
{
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(readonly_child());
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_specs_are_backend_and_manifest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_args_go_back_to_the_model, setup, teardown),
      cmocka_unit_test_setup_teardown(test_allowed_read_is_audited_and_redacted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_denied_calls_are_audited_and_do_not_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_approval_flow_approve_and_deny, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stranger_cannot_approve_and_expiry_denies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_voice_above_read_always_asks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secrets_in_args_stay_out_of_audit_and_notice, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_all_cancels_in_flight_and_pending, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_while_pending_runs_the_stored_call, setup, teardown),
      cmocka_unit_test(test_readonly_audit_refuses_the_action),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
