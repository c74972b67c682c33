/*
 * tests/security/test_sec_policy.c - command rules read as strictly as they
 * look (issue 11 finding 6) and option injection: '*' never matches an
 * option or an empty argument, "[0-9]+" is digits, a deny rule is never
 * narrower than it reads, and programs that run other programs (the dynamic
 * loader, git, tar, rsync, openssl, rbash ...) cannot be allowed without
 * approval. The program under test is a script that leaves a marker when
 * it runs; a refused call leaves none and is audited as denied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sec_fx.h"

static int policy_setup(void **state)
{
  sec_setup(state);
  struct sec_fx *f = *state;
  char p[512];
  tt_mkdir(f->dir, "srv/bin");
  tt_path(p, sizeof(p), f->dir, "srv/bin/systemctl");
  char script[1024];
  snprintf(script, sizeof(script), "#!/bin/sh\nprintf '%%s|' \"$@\" > %s/var/marker-ran\n", f->dir);
  tt_write(p, script);
  chmod(p, 0755);
  sec_engine(f,
             SEC_MANIFEST("{\"argv0\":\"$D/srv/bin/systemctl\",\"args\":[\"status\",\"*.service\"]},"
                          "{\"argv0\":\"$D/srv/bin/systemctl\",\"args\":[\"show\",\"*\"]},"
                          "{\"argv0\":\"$D/srv/bin/systemctl\",\"args\":[\"-n\",\"[0-9]+\"]}",
                          ""),
             0);
  return 0;
}

static void assert_denied_and_not_run(struct sec_fx *f, const char *args)
{
  struct tools_outcome out;
  sec_call(f, "shell.exec", args, &out);
  if (out.status != TOOLS_OUT_DENIED)
    fail_msg("%s: expected denied, got %s: %s", args, tools_outcome_status_str(out.status), out.text);
  tools_outcome_release(&out);
  sec_assert_audit_refused(f);
  if (sec_exists(f, "var/marker-ran"))
    fail_msg("%s: the program ran", args);
}

static void assert_allowed_and_run(struct sec_fx *f, const char *args)
{
  struct tools_outcome out;
  sec_call(f, "shell.exec", args, &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  assert_true(sec_exists(f, "var/marker-ran"));
}

static void test_star_never_matches_an_option(void **state)
{
  struct sec_fx *f = *state;
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"status\",\"--host=root@evil.service\"]}");
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"show\",\"-H\"]}");
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"status\",\"a/b.service\"]}");
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"status\",\".x.service\"]}");
  /* the rule still allows what it reads as */
  assert_allowed_and_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"status\",\"nginx.service\"]}");
}

static void test_empty_argument_is_refused(void **state)
{
  struct sec_fx *f = *state;
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"show\",\"\"]}");
}

/* "x\u0000 --host=evil" would match "*" as "x" and run with the rest cut
 * off: what runs would not be what the audit shows. Refused as invalid,
 * before the manifest or the audit is consulted: nothing is recorded. */
static void test_nul_in_an_argument_is_refused(void **state)
{
  struct sec_fx *f = *state;
  struct tools_outcome out;
  int64_t before = 0, after = 0;
  uint8_t head[32];
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_audit_head(f->audit, &before, head, err), MX_OK);
  sec_call(f, "shell.exec", "{\"argv\":[\"$D/srv/bin/systemctl\",\"show\",\"x\\u0000 --host=evil\"]}", &out);
  assert_int_equal(out.status, TOOLS_OUT_INVALID);
  tools_outcome_release(&out);
  assert_false(sec_exists(f, "var/marker-ran"));
  assert_int_equal(tools_audit_head(f->audit, &after, head, err), MX_OK);
  assert_int_equal(after, before);
}

static void test_digits_class(void **state)
{
  struct sec_fx *f = *state;
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"-n\",\"5x\"]}");
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"-n\",\"\"]}");
  assert_allowed_and_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"-n\",\"250\"]}");
}

/* A deny rule with '*' denies options and paths too. */
static void test_deny_is_never_narrower(void **state)
{
  struct sec_fx *f = *state;
  sec_engine(f,
             "{\"version\":1,\"paths\":{\"read\":[\"$D/srv\"]},\"commands\":{"
             "\"deny\":[{\"argv0\":\"$D/srv/bin/systemctl\",\"args\":[\"*\"]}],"
             "\"allow\":[{\"argv0\":\"$D/srv/bin/systemctl\",\"args\":[],\"rest\":\"-*\"},"
             "{\"argv0\":\"$D/srv/bin/systemctl\",\"args\":[],\"rest\":\"*/*\"}]},"
             "\"tools\":{\"shell.exec\":{}}}",
             0);
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"--force\"]}");
  assert_denied_and_not_run(f, "{\"argv\":[\"$D/srv/bin/systemctl\",\"a/b\"]}");
}

static void assert_manifest_refused(struct sec_fx *f, const char *argv0)
{
  char tmpl[1024], json[2048], err[MX_ERRBUF_LEN] = "";
  snprintf(tmpl, sizeof(tmpl),
           "{\"version\":1,\"commands\":{\"allow\":[{\"argv0\":\"%s\",\"args\":[\"*\"]}]},\"tools\":{\"shell.exec\":{}}}",
           argv0);
  cJSON *j = cJSON_Parse(sec_expand(f, tmpl, json, sizeof(json)));
  struct tools_manifest *m = NULL;
  mx_err rc = tools_policy_parse(j, "pc1.json", &m, err);
  cJSON_Delete(j);
  tools_manifest_free(m);
  if (rc != MX_ERR_CONFIG || !strstr(err, "interpreter or escape hatch"))
    fail_msg("an allow rule for '%s' loaded (rc %d: %s)", argv0, rc, err);
}

static void test_more_interpreters_always_ask(void **state)
{
  struct sec_fx *f = *state;
  static const char *const progs[] = {"/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1", "/usr/bin/git",
                                      "/bin/tar", "/usr/bin/rsync", "/usr/bin/openssl", "/bin/rbash",
                                      "/usr/bin/busybox", "/usr/bin/env", "/usr/bin/xargs", "/usr/bin/find",
                                      "/usr/bin/apt-get", "/usr/bin/dpkg", "/usr/bin/pip3"};
  for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++)
    assert_manifest_refused(f, progs[i]);
  /* Under "ask" the same rule loads, and a call waits for the operator:
   * denied there, nothing runs and the audit says rejected. */
  sec_engine(f,
             "{\"version\":1,\"commands\":{\"ask\":[{\"argv0\":\"/usr/bin/git\",\"args\":[\"*\"]}]},"
             "\"tools\":{\"shell.exec\":{}}}",
             0);
  struct tools_outcome out;
  f->answer = SEC_DENY;
  sec_call(f, "shell.exec", "{\"argv\":[\"/usr/bin/git\",\"version\"]}", &out);
  assert_int_equal(out.status, TOOLS_OUT_REJECTED);
  assert_int_equal(f->notices, 1);
  tools_outcome_release(&out);
  sec_assert_audit_refused(f);
}

/* A pattern with many stars against a long argument: matching is bounded
 * (an allow rule does not match, a deny rule does), never exponential. */
static void test_pathological_pattern_is_bounded(void **state)
{
  struct sec_fx *f = *state;
  char arg[3200], json[4096], err[MX_ERRBUF_LEN];
  memset(arg, 'a', 3000);
  arg[3000] = '\0';
  for (int deny = 0; deny < 2; deny++) {
    sec_engine(f,
               deny ? "{\"version\":1,\"commands\":{\"deny\":[{\"argv0\":\"/bin/echo\",\"args\":[\"*a*a*a*a*a*a*a*a*a*a*a*a*b\"]}],"
                      "\"allow\":[{\"argv0\":\"/bin/echo\",\"args\":[\"a*\"]}]},\"tools\":{\"shell.exec\":{}}}"
                    : "{\"version\":1,\"commands\":{\"allow\":[{\"argv0\":\"/bin/echo\",\"args\":[\"*a*a*a*a*a*a*a*a*a*a*a*a*b\"]}]},"
                      "\"tools\":{\"shell.exec\":{}}}",
               0);
    snprintf(json, sizeof(json), "{\"argv\":[\"/bin/echo\",\"%s\"]}", arg);
    cJSON *args = cJSON_Parse(json);
    struct tools_policy_result res;
    assert_int_equal(tools_policy_check(f->m, "shell.exec", args, &res, err), MX_OK);
    cJSON_Delete(args);
    assert_int_equal(res.decision, TOOLS_DENY);
  }
}

/* The examples table of docs/manifest.md "Patterns", checked as written. */
static void test_manifest_doc_examples(void **state)
{
  struct sec_fx *f = *state;
  static const struct { const char *argv; enum tools_decision want; } rows[] = {
      {"[\"/usr/bin/journalctl\",\"-u\",\"nginx.service\",\"-n\",\"50\"]", TOOLS_ALLOW},
      {"[\"/usr/bin/journalctl\",\"-u\",\"nginx.service\",\"-n\",\"50x\"]", TOOLS_DENY},
      {"[\"/usr/bin/journalctl\",\"-u\",\"--root=/\",\"-n\",\"5\"]", TOOLS_DENY},
      {"[\"/usr/bin/journalctl\",\"-u\",\".x.service\",\"-n\",\"5\"]", TOOLS_DENY},
      {"[\"/usr/bin/journalctl\",\"-u\",\"\",\"-n\",\"5\"]", TOOLS_DENY},
      {"[\"/usr/bin/journalctl\",\"-u\",\"a/b.service\",\"-n\",\"5\"]", TOOLS_DENY},
      {"[\"/usr/bin/rm\",\"-rf\"]", TOOLS_DENY},
  };
  sec_engine(f,
             "{\"version\":1,\"commands\":{\"deny\":[{\"argv0\":\"/usr/bin/rm\",\"args\":[\"*\"]}],"
             "\"allow\":[{\"argv0\":\"/usr/bin/journalctl\",\"args\":[\"-u\",\"*.service\",\"-n\",\"[0-9]+\"]},"
             "{\"argv0\":\"/usr/bin/rm\",\"args\":[],\"rest\":\"-*\"}]},\"tools\":{\"shell.exec\":{}}}",
             0);
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    char json[512], err[MX_ERRBUF_LEN];
    snprintf(json, sizeof(json), "{\"argv\":%s}", rows[i].argv);
    cJSON *args = cJSON_Parse(json);
    struct tools_policy_result res;
    assert_int_equal(tools_policy_check(f->m, "shell.exec", args, &res, err), MX_OK);
    cJSON_Delete(args);
    if (res.decision != rows[i].want)
      fail_msg("%s: expected %s, got %s (%s)", rows[i].argv, tools_decision_str(rows[i].want),
               tools_decision_str(res.decision), res.reason);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_star_never_matches_an_option, policy_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_empty_argument_is_refused, policy_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_nul_in_an_argument_is_refused, policy_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_digits_class, policy_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_deny_is_never_narrower, policy_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_more_interpreters_always_ask, policy_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_manifest_doc_examples, policy_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_pathological_pattern_is_bounded, policy_setup, sec_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
