/*
 * tests/tools/test_tools_policy.c - the manifest: strict loading (an
 * interpreter or shell.eval cannot be auto-allowed), command rules against
 * allowlist bypass attempts, lexical path checks, and confined opening on a
 * real temporary tree (../, a symlink to /etc/passwd, the /srv/app-evil
 * prefix trick, a directory swapped for a symlink while opening), both with
 * openat2 and with the fallback walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include "mx_util.h"
#include "tools_policy.h"
#include "tools_test_util.h"

static struct tools_manifest *parse(const char *json, char *err)
{
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  struct tools_manifest *m = NULL;
  err[0] = '\0';
  mx_err rc = tools_policy_parse(j, "t.json", &m, err);
  cJSON_Delete(j);
  return rc ? NULL : m;
}

static const char *const base_manifest =
    "{\"version\":1,\"paths\":{\"read\":[\"/var/log\",\"/srv/app\"],\"write\":[\"/srv/app/data\"]},"
    "\"commands\":{\"deny\":[{\"argv0\":\"/bin/rm\"}],"
    "\"ask\":[{\"argv0\":\"/usr/bin/python3\",\"args\":[\"/srv/app/*.py\"]}],"
    "\"allow\":[{\"argv0\":\"/bin/cat\",\"args\":[\"/var/log/*\"]},"
    "{\"argv0\":\"/bin/ls\",\"args\":[],\"rest\":\"-[la]\"},"
    "{\"argv0\":\"/bin/rm\",\"args\":[\"/tmp/*\"]}]},"
    "\"tools\":{\"fs.read\":{},\"fs.write\":{\"timeout_ms\":1000,\"max_output\":100},\"shell.exec\":{},"
    "\"shell.eval\":{\"approval\":\"ask\"},\"proc.kill\":{}}}";

static enum tools_decision decide(const struct tools_manifest *m, const char *tool, const char *args, char *reason)
{
  cJSON *a = cJSON_Parse(args);
  assert_non_null(a);
  struct tools_policy_result r;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_policy_check(m, tool, a, &r, err), MX_OK);
  cJSON_Delete(a);
  if (reason)
    snprintf(reason, 256, "%s", r.reason);
  return r.decision;
}

static void test_manifest_refuses_auto_allowed_interpreters(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_null(parse("{\"version\":1,\"commands\":{\"allow\":[{\"argv0\":\"/bin/bash\",\"args\":[\"-c\",\"*\"]}]},"
                    "\"tools\":{\"shell.exec\":{}}}",
                    err));
  assert_string_equal(err, "t.json: commands.allow[0].argv0: '/bin/bash' is an interpreter or escape hatch and always "
                           "needs approval; move the rule to commands.ask");
  static const char *const hatches[] = {"/usr/bin/python3.11", "/usr/bin/env", "/usr/bin/xargs", "/usr/bin/sudo",
                                        "/usr/bin/ssh", "/usr/bin/perl", "/usr/bin/find", "/bin/sh"};
  for (size_t i = 0; i < sizeof(hatches) / sizeof(hatches[0]); i++) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"version\":1,\"commands\":{\"allow\":[{\"argv0\":\"%s\",\"args\":[]}]},\"tools\":{\"shell.exec\":{}}}",
             hatches[i]);
    assert_null(parse(json, err));
    assert_non_null(strstr(err, "always needs approval"));
  }
  assert_null(parse("{\"version\":1,\"tools\":{\"shell.eval\":{\"approval\":\"auto\"}}}", err));
  assert_string_equal(err, "t.json: tools.shell.eval.approval: shell.eval runs a shell and always needs approval, got 'auto'");
}

static void test_manifest_errors_are_specific(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_null(parse("{\"version\":1,\"paths\":{\"read\":[\"var/log\"]},\"tools\":{}}", err));
  assert_string_equal(err, "t.json: paths.read[0]: expected an absolute path without '..', got 'var/log'");
  assert_null(parse("{\"version\":1,\"tools\":{\"fs.nuke\":{}}}", err));
  assert_string_equal(err, "t.json: tools.fs.nuke: unknown tool 'fs.nuke'");
  assert_null(parse("{\"version\":1,\"tools\":{},\"colour\":1}", err));
  assert_string_equal(err, "t.json: manifest: unknown key 'colour'");
  assert_null(parse("{\"version\":1,\"commands\":{\"allow\":[{\"argv0\":\"ls\",\"args\":[]}]},\"tools\":{}}", err));
  assert_non_null(strstr(err, "commands.allow[0].argv0: expected an absolute program path"));
  assert_null(parse("{\"version\":1,\"tools\":{\"fs.read\":{\"timeout_ms\":0}}}", err));
  assert_non_null(strstr(err, "tools.fs.read.timeout_ms: expected an integer from 1 to"));
  assert_null(parse("{\"version\":2,\"tools\":{}}", err));
  assert_string_equal(err, "t.json: version: expected 1");
}

/* Found by tests/fuzz/fuzz_manifest: a section given as an array instead of
 * an object compared its items' (NULL) keys and crashed the loader. */
static void test_manifest_sections_must_be_objects(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_null(parse("{\"version\":1,\"paths\":[\"/var/log\"],\"tools\":{}}", err));
  assert_string_equal(err, "t.json: paths: expected an object");
  assert_null(parse("{\"version\":1,\"defaults\":[30000],\"tools\":{}}", err));
  assert_string_equal(err, "t.json: defaults: expected an object");
  assert_null(parse("{\"version\":1,\"paths\":\"/var/log\",\"tools\":{}}", err));
  assert_string_equal(err, "t.json: paths: expected an object");
  assert_null(parse("[{\"version\":1}]", err));
  assert_string_equal(err, "t.json: expected a JSON object");
}

static void test_interpreter_detection(void **state)
{
  (void)state;
  assert_true(tools_policy_is_interpreter("/usr/bin/python3"));
  assert_true(tools_policy_is_interpreter("bash"));
  assert_true(tools_policy_is_interpreter("/usr/bin/node"));
  assert_false(tools_policy_is_interpreter("/bin/cat"));
  assert_false(tools_policy_is_interpreter("/usr/bin/systemctl"));
}

static void test_allowlist_bypass_attempts(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], why[256];
  struct tools_manifest *m = parse(base_manifest, err);
  assert_non_null(m);
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/cat\",\"/var/log/syslog\"]}", why), TOOLS_ALLOW);
  assert_string_equal(why, "commands.allow[0] matched");
  /* A glob over the joined string would let the second argument through. */
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/cat\",\"/var/log/x\",\"/etc/shadow\"]}", why), TOOLS_DENY);
  assert_non_null(strstr(why, "no command rule allows '/bin/cat'"));
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/cat\",\"/var/log/../../etc/shadow\"]}", NULL), TOOLS_DENY);
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/cat\",\"/var/log/.hidden\"]}", NULL), TOOLS_DENY);
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/cat\",\"/var/log/a/b\"]}", NULL), TOOLS_DENY);
  /* Shell syntax is just arguments: "&&" is not an allowed flag. */
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/ls\",\"&&\",\"rm\",\"x\"]}", NULL), TOOLS_DENY);
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/ls\",\"-l\"]}", NULL), TOOLS_ALLOW);
  /* The working directory is a path like any other. */
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/ls\",\"-l\"],\"cwd\":\"/srv/app\"}", NULL), TOOLS_ALLOW);
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/ls\",\"-l\"],\"cwd\":\"/etc\"}", why), TOOLS_DENY);
  assert_string_equal(why, "path '/etc' is outside every readable root");
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"ls\",\"-l\"]}", why), TOOLS_DENY);
  assert_string_equal(why, "argv[0]: expected an absolute program path, got 'ls'");
  /* Deny rules come first even when an allow rule matches too. */
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/bin/rm\",\"/tmp/x\"]}", why), TOOLS_DENY);
  assert_string_equal(why, "commands.deny[0] matched");
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/usr/bin/python3\",\"/srv/app/job.py\"]}", NULL), TOOLS_ASK);
  assert_int_equal(decide(m, "shell.exec", "{\"argv\":[\"/usr/bin/python3\",\"-c\",\"print(1)\"]}", NULL), TOOLS_DENY);
  assert_int_equal(decide(m, "shell.eval", "{\"command\":\"true\"}", NULL), TOOLS_ASK);
  assert_int_equal(decide(m, "proc.kill", "{\"pid\":5}", NULL), TOOLS_ASK);
  assert_int_equal(decide(m, "docker.ps", "{}", why), TOOLS_DENY);
  assert_non_null(strstr(why, "not enabled"));
  struct tools_limits l = tools_policy_limits(m, "fs.write");
  assert_int_equal(l.timeout_ms, 1000);
  assert_int_equal(l.max_output, 100);
  tools_manifest_free(m);
}

static void test_lexical_paths(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], why[256];
  struct tools_manifest *m = parse(base_manifest, err);
  assert_non_null(m);
  assert_int_equal(decide(m, "fs.read", "{\"path\":\"/srv/app/config.yml\"}", NULL), TOOLS_ALLOW);
  assert_int_equal(decide(m, "fs.read", "{\"path\":\"/srv/app\"}", NULL), TOOLS_ALLOW);
  assert_int_equal(decide(m, "fs.read", "{\"path\":\"/srv/app-evil/secret\"}", why), TOOLS_DENY);
  assert_string_equal(why, "path '/srv/app-evil/secret' is outside every readable root");
  assert_int_equal(decide(m, "fs.read", "{\"path\":\"/srv/app/../../etc/passwd\"}", why), TOOLS_DENY);
  assert_non_null(strstr(why, "contains '..'"));
  assert_int_equal(decide(m, "fs.read", "{\"path\":\"srv/app/x\"}", NULL), TOOLS_DENY);
  assert_int_equal(decide(m, "fs.write", "{\"path\":\"/srv/app/x\",\"content\":\"\"}", why), TOOLS_DENY);
  assert_string_equal(why, "path '/srv/app/x' is outside every writable root");
  assert_int_equal(decide(m, "fs.write", "{\"path\":\"/srv/app/data/x\",\"content\":\"\"}", NULL), TOOLS_ASK);
  tools_manifest_free(m);
}

/* A temporary tree: root/{ok.txt, sub/, passwd-link -> /etc/passwd},
 * root-evil/secret. */
struct tree {
  char dir[128];
  struct tools_manifest *m;
};

static int tree_setup(void **state)
{
  struct tree *t = calloc(1, sizeof(*t));
  char p[512], err[MX_ERRBUF_LEN], json[1024];
  assert_non_null(tt_tmpdir(t->dir, sizeof(t->dir), "policy"));
  tt_mkdir(t->dir, "root");
  tt_mkdir(t->dir, "root/sub");
  tt_mkdir(t->dir, "root-evil");
  tt_path(p, sizeof(p), t->dir, "root/ok.txt");
  tt_write(p, "fine\n");
  tt_path(p, sizeof(p), t->dir, "root-evil/secret");
  tt_write(p, "evil\n");
  tt_path(p, sizeof(p), t->dir, "root/passwd-link");
  assert_int_equal(symlink("/etc/passwd", p), 0);
  snprintf(json, sizeof(json), "{\"version\":1,\"paths\":{\"read\":[\"%s/root\"],\"write\":[\"%s/root/sub\"]},\"tools\":{}}",
           t->dir, t->dir);
  t->m = parse(json, err);
  assert_non_null(t->m);
  *state = t;
  return 0;
}

static int tree_teardown(void **state)
{
  struct tree *t = *state;
  tools_policy_force_fallback(0);
  tools_manifest_free(t->m);
  tt_rmtree(t->dir);
  free(t);
  return 0;
}

static mx_err try_open(struct tree *t, const char *rel, enum tools_access acc, int flags, char *err, char *content)
{
  char p[512];
  int fd = -1;
  tt_path(p, sizeof(p), t->dir, rel);
  mx_err rc = tools_policy_open(t->m, p, acc, flags, 0644, &fd, err);
  if (rc == MX_OK) {
    if (content) {
      ssize_t n = read(fd, content, 63);
      content[n > 0 ? n : 0] = '\0';
    }
    close(fd);
  }
  return rc;
}

static void confined_open_cases(struct tree *t)
{
  char err[MX_ERRBUF_LEN], buf[64];
  assert_int_equal(try_open(t, "root/ok.txt", TOOLS_ACCESS_READ, O_RDONLY, err, buf), MX_OK);
  assert_string_equal(buf, "fine\n");
  assert_int_equal(try_open(t, "root", TOOLS_ACCESS_READ, O_RDONLY | O_DIRECTORY, err, NULL), MX_OK);
  assert_int_equal(try_open(t, "root/passwd-link", TOOLS_ACCESS_READ, O_RDONLY, err, NULL), MX_ERR_DENIED);
  assert_non_null(strstr(err, "resolves outside its root"));
  assert_int_equal(try_open(t, "root/../root-evil/secret", TOOLS_ACCESS_READ, O_RDONLY, err, NULL), MX_ERR_DENIED);
  assert_int_equal(try_open(t, "root/sub/../../root-evil/secret", TOOLS_ACCESS_READ, O_RDONLY, err, NULL),
                   MX_ERR_DENIED);
  assert_int_equal(try_open(t, "root-evil/secret", TOOLS_ACCESS_READ, O_RDONLY, err, NULL), MX_ERR_DENIED);
  assert_non_null(strstr(err, "is outside every readable root"));
  assert_int_equal(try_open(t, "root/missing", TOOLS_ACCESS_READ, O_RDONLY, err, NULL), MX_ERR_NOT_FOUND);
  assert_int_equal(try_open(t, "root/ok.txt", TOOLS_ACCESS_READ, O_WRONLY | O_TRUNC, err, NULL), MX_ERR_DENIED);
  assert_non_null(strstr(err, "write access through a readable root"));
  /* Writes: only under root/sub, never through a final symlink. */
  assert_int_equal(try_open(t, "root/new.txt", TOOLS_ACCESS_WRITE, O_WRONLY | O_CREAT, err, NULL), MX_ERR_DENIED);
  if (try_open(t, "root/sub/new.txt", TOOLS_ACCESS_WRITE, O_WRONLY | O_CREAT, err, NULL) != MX_OK)
    fail_msg("%s", err);
  char p[512];
  tt_path(p, sizeof(p), t->dir, "root/sub/link");
  assert_int_equal(symlink("/tmp/mxtools-never-created", p), 0);
  assert_int_equal(try_open(t, "root/sub/link", TOOLS_ACCESS_WRITE, O_WRONLY | O_CREAT, err, NULL), MX_ERR_DENIED);
  assert_int_equal(access("/tmp/mxtools-never-created", F_OK), -1);
  unlink(p);
}

static void test_confined_open_openat2(void **state) { confined_open_cases(*state); }

static void test_confined_open_fallback(void **state)
{
  tools_policy_force_fallback(1);
  confined_open_cases(*state);
}

struct swapper {
  char a[512], b[512];
  volatile int stop;
  long swaps;
};

/* Atomically exchanges root/d (a real directory holding "passwd") and
 * root/alt (a symlink to /etc) as fast as it can. */
static void *swap_loop(void *arg)
{
  struct swapper *s = arg;
  while (!s->stop) {
    if (renameat2(AT_FDCWD, s->a, AT_FDCWD, s->b, RENAME_EXCHANGE) == 0)
      s->swaps++;
  }
  return NULL;
}

static void swap_race(struct tree *t)
{
  char p[512], err[MX_ERRBUF_LEN], buf[64];
  struct swapper s;
  memset(&s, 0, sizeof(s));
  tt_mkdir(t->dir, "root/d");
  tt_path(p, sizeof(p), t->dir, "root/d/passwd");
  tt_write(p, "decoy\n");
  tt_path(s.a, sizeof(s.a), t->dir, "root/d");
  tt_path(s.b, sizeof(s.b), t->dir, "root/alt");
  assert_int_equal(symlink("/etc", s.b), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, swap_loop, &s), 0);
  /* On a busy machine the swapper may not have run yet: wait for its first
   * swap (bounded), or the loop below races nothing. */
  int64_t until = mx_mono_ms() + 5000;
  while (s.swaps == 0 && mx_mono_ms() < until)
    sched_yield();
  int ok = 0, denied = 0;
  for (int i = 0; i < 3000; i++) {
    mx_err rc = try_open(t, "root/d/passwd", TOOLS_ACCESS_READ, O_RDONLY, err, buf);
    if (rc == MX_OK) {
      assert_string_equal(buf, "decoy\n"); /* never /etc/passwd */
      ok++;
    } else {
      denied++;
    }
  }
  s.stop = 1;
  pthread_join(th, NULL);
  assert_true(s.swaps > 0);
  assert_true(ok + denied == 3000);
}

static void test_swap_race_openat2(void **state) { swap_race(*state); }

static void test_swap_race_fallback(void **state)
{
  tools_policy_force_fallback(1);
  swap_race(*state);
}

static void test_templates_load(void **state)
{
  (void)state;
  static const char *const names[] = {"linux", "macos", "linux-ssh", "macos-ssh", "windows-ssh"};
  for (int i = 0; i < 5; i++) {
    char p[512], err[MX_ERRBUF_LEN];
    snprintf(p, sizeof(p), "%s/tools/templates/%s.json", MXFLEET_SOURCE_DIR, names[i]);
    struct tools_manifest *m = NULL;
    if (tools_policy_load(p, &m, err) != MX_OK)
      fail_msg("%s: %s", p, err);
    tools_manifest_free(m);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_manifest_refuses_auto_allowed_interpreters),
      cmocka_unit_test(test_manifest_errors_are_specific),
      cmocka_unit_test(test_manifest_sections_must_be_objects),
      cmocka_unit_test(test_interpreter_detection),
      cmocka_unit_test(test_allowlist_bypass_attempts),
      cmocka_unit_test(test_lexical_paths),
      cmocka_unit_test_setup_teardown(test_confined_open_openat2, tree_setup, tree_teardown),
      cmocka_unit_test_setup_teardown(test_confined_open_fallback, tree_setup, tree_teardown),
      cmocka_unit_test_setup_teardown(test_swap_race_openat2, tree_setup, tree_teardown),
      cmocka_unit_test_setup_teardown(test_swap_race_fallback, tree_setup, tree_teardown),
      cmocka_unit_test(test_templates_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
