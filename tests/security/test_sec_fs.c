/*
 * tests/security/test_sec_fs.c - the file tools against hostile trees
 * (issue 11 findings 5 and 10, and the classic path escapes): a FIFO in a
 * root does not hang fs.read/fs.write; fs.write replaces atomically (a
 * failed write leaves the old file), never writes through a hard link,
 * keeps the replaced file's mode and creates new files 0600; '..',
 * symlinks, /proc/self/root and NUL bytes do not leave the roots. Each
 * refusal is in the audit and changed nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "sec_fx.h"

/* fs.write through the engine; operator approves, auto approval is on. */
static const char *write_manifest = SEC_MANIFEST("", "");

static void auto_write(struct sec_fx *f)
{
  sec_engine(f,
             "{\"version\":1,\"paths\":{\"read\":[\"$D/srv\"],\"write\":[\"$D/srv/data\"]},"
             "\"tools\":{\"fs.read\":{\"timeout_ms\":3000},\"fs.write\":{\"timeout_ms\":3000,\"approval\":\"auto\"}}}",
             0);
}

struct bg {
  struct sec_fx *f;
  const char *tool, *args;
  struct tools_outcome out;
  volatile int done;
};

static void *bg_call(void *arg)
{
  struct bg *b = arg;
  sec_call(b->f, b->tool, b->args, &b->out);
  b->done = 1;
  return NULL;
}

/* Runs the call on a thread; fails (instead of hanging the suite) when it
 * has not returned within 4 s. */
static void call_bounded(struct sec_fx *f, const char *tool, const char *args, struct tools_outcome *out)
{
  struct bg b = {f, tool, args, {0}, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, bg_call, &b), 0);
  int64_t deadline = mx_mono_ms() + 4000;
  while (!b.done && mx_mono_ms() < deadline)
    usleep(10000);
  if (!b.done) {
    /* Unblock the stuck open() so the process can exit and report. */
    char p[512];
    tt_path(p, sizeof(p), f->dir, "srv/data/pipe");
    int fd = open(p, O_RDWR | O_NONBLOCK);
    pthread_join(th, NULL);
    if (fd >= 0)
      close(fd);
    tools_outcome_release(&b.out);
    fail_msg("%s on a FIFO did not return within 4 s", tool);
  }
  pthread_join(th, NULL);
  *out = b.out;
}

static void test_fifo_does_not_hang_read_or_write(void **state)
{
  struct sec_fx *f = *state;
  struct tools_outcome out;
  char p[512];
  auto_write(f);
  tt_path(p, sizeof(p), f->dir, "srv/data/pipe");
  assert_int_equal(mkfifo(p, 0600), 0);
  call_bounded(f, "fs.read", "{\"path\":\"$D/srv/data/pipe\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_DENIED);
  assert_non_null(strstr(out.text, "not a regular file"));
  tools_outcome_release(&out);
  sec_assert_audit_refused(f);
  call_bounded(f, "fs.write", "{\"path\":\"$D/srv/data/pipe\",\"content\":\"x\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_DENIED);
  tools_outcome_release(&out);
  sec_assert_audit_refused(f);
  struct stat st;
  assert_int_equal(lstat(p, &st), 0);
  assert_true(S_ISFIFO(st.st_mode)); /* still the FIFO: nothing replaced it */
}

static void test_device_node_is_refused(void **state)
{
  struct sec_fx *f = *state;
  sec_engine(f,
             "{\"version\":1,\"paths\":{\"read\":[\"/dev\"]},\"tools\":{\"fs.read\":{\"timeout_ms\":3000}}}", 0);
  sec_expect_refused(f, "fs.read", "{\"path\":\"/dev/zero\"}", "not a regular file", NULL);
}

static void read_file(struct sec_fx *f, const char *rel, char *buf, size_t n)
{
  char p[512];
  tt_path(p, sizeof(p), f->dir, rel);
  assert_true(tt_read(p, buf, n) >= 0);
}

/* A write that fails half-way (the file size limit) leaves the old file. */
static void test_failed_write_keeps_the_old_file(void **state)
{
  struct sec_fx *f = *state;
  char p[512], buf[64];
  auto_write(f);
  tt_path(p, sizeof(p), f->dir, "srv/data/app.conf");
  tt_write(p, "old content\n");
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {512 * 1024, 512 * 1024}; /* the audit database stays below this */
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    /* The backend directly: the audit database is subject to the limit too. */
    static char args[700 * 1024];
    int o = snprintf(args, sizeof(args), "{\"path\":\"%s/srv/data/app.conf\",\"content\":\"", f->dir);
    memset(args + o, 'A', 600 * 1024);
    snprintf(args + o + 600 * 1024, sizeof(args) - (size_t)o - 600 * 1024, "\"}");
    cJSON *j = cJSON_Parse(args);
    struct dev_call c = {.request_id = "r1", .tool = "fs.write", .args = j, .timeout_ms = 3000, .max_output = 65536};
    struct dev_result r;
    char err[MX_ERRBUF_LEN];
    dev_result_init(&r);
    f->b->run(f->b, &c, &r, err);
    _exit(r.status == DEV_FAILED ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  read_file(f, "srv/data/app.conf", buf, sizeof(buf));
  assert_string_equal(buf, "old content\n");
}

static void test_hard_link_is_not_written_through(void **state)
{
  struct sec_fx *f = *state;
  char outside[512], inside[512], buf[64];
  auto_write(f);
  /* A file outside the writable root, hard-linked into it. */
  tt_path(outside, sizeof(outside), f->dir, "var/secret.conf");
  tt_path(inside, sizeof(inside), f->dir, "srv/data/link.conf");
  tt_write(outside, "outside\n");
  assert_int_equal(link(outside, inside), 0);
  sec_expect_refused(f, "fs.write", "{\"path\":\"$D/srv/data/link.conf\",\"content\":\"pwned\\n\"}", "hard links",
                     NULL);
  read_file(f, "var/secret.conf", buf, sizeof(buf));
  assert_string_equal(buf, "outside\n");
}

static void test_modes_kept_and_new_files_private(void **state)
{
  struct sec_fx *f = *state;
  struct tools_outcome out;
  char p[512];
  struct stat st;
  auto_write(f);
  mode_t old = umask(022);
  sec_call(f, "fs.write", "{\"path\":\"$D/srv/data/new.txt\",\"content\":\"n\\n\"}", &out);
  umask(old);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  tt_path(p, sizeof(p), f->dir, "srv/data/new.txt");
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  tt_path(p, sizeof(p), f->dir, "srv/data/run.sh");
  tt_write(p, "#!/bin/sh\n");
  chmod(p, 0750);
  sec_call(f, "fs.write", "{\"path\":\"$D/srv/data/run.sh\",\"content\":\"#!/bin/sh\\ntrue\\n\",\"mode\":\"overwrite\"}",
           &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0750);
  sec_call(f, "fs.write", "{\"path\":\"$D/srv/data/run.sh\",\"content\":\"exit 0\\n\",\"mode\":\"append\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  char buf[64];
  read_file(f, "srv/data/run.sh", buf, sizeof(buf));
  assert_string_equal(buf, "#!/bin/sh\ntrue\nexit 0\n");
  /* The manifest may choose another mode for new files, never one that
   * others can write. */
  sec_engine(f,
             "{\"version\":1,\"paths\":{\"read\":[\"$D/srv\"],\"write\":[\"$D/srv/data\"]},"
             "\"tools\":{\"fs.list\":{},\"fs.write\":{\"approval\":\"auto\",\"file_mode\":\"0640\"}}}",
             0);
  sec_call(f, "fs.write", "{\"path\":\"$D/srv/data/shared.txt\",\"content\":\"s\\n\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  tools_outcome_release(&out);
  tt_path(p, sizeof(p), f->dir, "srv/data/shared.txt");
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0640);
  char err[MX_ERRBUF_LEN];
  cJSON *bad = cJSON_Parse("{\"version\":1,\"tools\":{\"fs.write\":{\"file_mode\":\"0666\"}}}");
  struct tools_manifest *m = NULL;
  assert_int_equal(tools_policy_parse(bad, "pc1.json", &m, err), MX_ERR_CONFIG);
  assert_non_null(strstr(err, "tools.fs.write.file_mode: expected octal permission bits"));
  cJSON_Delete(bad);
  tools_manifest_free(m);
  /* No temporary file is left behind. */
  sec_call(f, "fs.list", "{\"path\":\"$D/srv/data\"}", &out);
  assert_null(strstr(out.text, ".mxfleet-"));
  tools_outcome_release(&out);
}

/* The classics: every way out of the roots is refused, nothing is read or
 * written outside, and the audit says so. */
static void test_path_escapes(void **state)
{
  struct sec_fx *f = *state;
  struct tools_outcome out;
  char p[512];
  auto_write(f);
  tt_path(p, sizeof(p), f->dir, "var/secret");
  tt_write(p, "TOPSECRET\n");
  tt_path(p, sizeof(p), f->dir, "srv/data/up");
  assert_int_equal(symlink("../../var", p), 0);
  tt_path(p, sizeof(p), f->dir, "srv/data/abs");
  assert_int_equal(symlink("/etc/passwd", p), 0);
  static const char *const reads[] = {
      "{\"path\":\"$D/srv/../var/secret\"}",       /* '..' */
      "{\"path\":\"$D/srv/data/up/secret\"}",      /* relative symlink out */
      "{\"path\":\"$D/srv/data/abs\"}",            /* absolute symlink */
      "{\"path\":\"/proc/self/root/etc/passwd\"}", /* magic link */
      "{\"path\":\"$D/srv/data\\u0000/../../var/secret\"}", /* NUL byte */
      "{\"path\":\"srv/data/x\"}",                 /* relative */
  };
  for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
    sec_call(f, "fs.read", reads[i], &out);
    if (out.status != TOOLS_OUT_DENIED && out.status != TOOLS_OUT_INVALID)
      fail_msg("read %zu: expected a refusal, got %s: %s", i, tools_outcome_status_str(out.status), out.text);
    assert_null(strstr(out.text, "TOPSECRET"));
    assert_null(strstr(out.text, "root:"));
    tools_outcome_release(&out);
    if (out.status == TOOLS_OUT_DENIED)
      sec_assert_audit_refused(f);
  }
  sec_expect_refused(f, "fs.write", "{\"path\":\"$D/srv/data/up/secret\",\"content\":\"pwned\"}", NULL, NULL);
  sec_expect_refused(f, "fs.write", "{\"path\":\"$D/srv/data/abs\",\"content\":\"pwned\"}", NULL, NULL);
  /* A NUL byte would cut the content (or the path) short of what the
   * audit shows: refused before anything runs. */
  sec_call(f, "fs.write", "{\"path\":\"$D/srv/data/nul\",\"content\":\"a\\u0000b\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_INVALID);
  assert_non_null(strstr(out.text, "NUL"));
  tools_outcome_release(&out);
  assert_false(sec_exists(f, "srv/data/nul"));
  char buf[64];
  read_file(f, "var/secret", buf, sizeof(buf));
  assert_string_equal(buf, "TOPSECRET\n");
  struct stat st;
  tt_path(p, sizeof(p), f->dir, "srv/data/abs");
  assert_int_equal(lstat(p, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  (void)write_manifest;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fifo_does_not_hang_read_or_write, sec_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_device_node_is_refused, sec_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_failed_write_keeps_the_old_file, sec_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_hard_link_is_not_written_through, sec_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_modes_kept_and_new_files_private, sec_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_path_escapes, sec_setup, sec_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
