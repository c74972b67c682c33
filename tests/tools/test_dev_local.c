/*
 * tests/tools/test_dev_local.c - the local executors with real processes:
 * exit codes, stdout/stderr, exec failures, the deadline (sleep 600 with a
 * 2 s limit returns within 3 s and its whole process group is gone), the
 * output cap with the truncated flag, death by signal, cancellation, and the
 * "local" backend's capabilities through a real manifest (confined fs.*,
 * shell.exec, proc.*, git.*).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>

#include "dev_local.h"
#include "mx_util.h"
#include "tools_policy.h"
#include "tools_test_util.h"

static void run(char *const argv[], int timeout_ms, size_t cap, struct dev_result *r)
{
  char err[MX_ERRBUF_LEN];
  dev_result_init(r);
  assert_int_equal(dev_local_exec(argv, NULL, timeout_ms, cap, NULL, r, err), MX_OK);
}

static void test_exit_codes_and_streams(void **state)
{
  (void)state;
  struct dev_result r;
  char *a[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 7", NULL};
  run(a, 5000, 4096, &r);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(r.exit_code, 7);
  assert_int_equal(r.signal, 0);
  assert_string_equal(mx_buf_cstr(&r.out), "out\n");
  assert_string_equal(mx_buf_cstr(&r.err), "err\n");
  assert_false(r.truncated);
  dev_result_release(&r);
  char *t[] = {"/bin/true", NULL};
  run(t, 5000, 4096, &r);
  assert_int_equal(r.exit_code, 0);
  dev_result_release(&r);
}

static void test_exec_failures(void **state)
{
  (void)state;
  struct dev_result r;
  char *a[] = {"/nonexistent/prog", NULL};
  run(a, 5000, 4096, &r);
  assert_int_equal(r.status, DEV_FAILED);
  assert_string_equal(r.detail, "cannot run '/nonexistent/prog': No such file or directory");
  dev_result_release(&r);
  char *b[] = {"ls", NULL};
  run(b, 5000, 4096, &r);
  assert_int_equal(r.status, DEV_FAILED);
  assert_string_equal(r.detail, "argv[0]: expected an absolute program path, got 'ls'");
  dev_result_release(&r);
}

/* 1 when pid is gone or a zombie (killed, waiting for its reaper). */
static int dead(int pid)
{
  char p[64], buf[512];
  snprintf(p, sizeof(p), "/proc/%d/stat", pid);
  if (tt_read(p, buf, sizeof(buf)) < 0)
    return 1;
  char *c = strrchr(buf, ')');
  return c && (c[2] == 'Z' || c[2] == 'X');
}

static void test_timeout_kills_the_process_group(void **state)
{
  (void)state;
  struct dev_result r;
  /* The shell starts a background sleep, prints its pid, and waits. */
  char *a[] = {"/bin/sh", "-c", "/bin/sleep 600 & echo $!; /bin/sleep 600", NULL};
  int64_t t0 = mx_mono_ms();
  run(a, 2000, 4096, &r);
  int64_t took = mx_mono_ms() - t0;
  assert_int_equal(r.status, DEV_TIMEOUT);
  assert_true(took >= 1900);
  assert_true(took < 3000);
  int bg = atoi(mx_buf_cstr(&r.out));
  assert_true(bg > 1);
  int64_t deadline = mx_mono_ms() + 2000;
  while (!dead(bg) && mx_mono_ms() < deadline)
    usleep(20000);
  assert_true(dead(bg));
  assert_int_equal(r.signal, SIGTERM);
  dev_result_release(&r);
}

static void test_output_cap_sets_truncated(void **state)
{
  (void)state;
  struct dev_result r;
  char *a[] = {"/usr/bin/head", "-c", "1000000", "/dev/zero", NULL};
  run(a, 10000, 1000, &r);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(r.out.len + r.err.len, 1000);
  assert_true(r.truncated);
  dev_result_release(&r);
}

static void test_death_by_signal(void **state)
{
  (void)state;
  struct dev_result r;
  char *a[] = {"/bin/sh", "-c", "kill -KILL $$", NULL};
  run(a, 5000, 4096, &r);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(r.signal, SIGKILL);
  assert_int_equal(r.exit_code, -1);
  dev_result_release(&r);
}

static void *set_later(void *arg)
{
  usleep(300000);
  *(volatile int *)arg = 1;
  return NULL;
}

static void test_cancel_flag_stops_the_call(void **state)
{
  (void)state;
  volatile int cancel = 0;
  struct dev_result r;
  char err[MX_ERRBUF_LEN];
  char *a[] = {"/bin/sleep", "600", NULL};
  pthread_t th;
  pthread_create(&th, NULL, set_later, (void *)&cancel);
  int64_t t0 = mx_mono_ms();
  dev_result_init(&r);
  assert_int_equal(dev_local_exec(a, NULL, 60000, 4096, &cancel, &r, err), MX_OK);
  pthread_join(th, NULL);
  assert_true(mx_mono_ms() - t0 < 2000);
  assert_int_equal(r.status, DEV_FAILED);
  assert_string_equal(r.detail, "cancelled by the operator");
  dev_result_release(&r);
}

/* The backend with a real manifest over a temporary tree. */
struct fx {
  char dir[128];
  struct tools_manifest *m;
  struct dev_backend *b;
};

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof(*f));
  char p[512], json[1024], err[MX_ERRBUF_LEN];
  assert_non_null(tt_tmpdir(f->dir, sizeof(f->dir), "local"));
  tt_mkdir(f->dir, "srv");
  tt_mkdir(f->dir, "srv/data");
  tt_path(p, sizeof(p), f->dir, "srv/hello.txt");
  tt_write(p, "hello world\n");
  tt_path(p, sizeof(p), f->dir, "srv/passwd");
  assert_int_equal(symlink("/etc/passwd", p), 0);
  snprintf(json, sizeof(json), "{\"version\":1,\"paths\":{\"read\":[\"%s/srv\"],\"write\":[\"%s/srv/data\"]},\"tools\":{}}",
           f->dir, f->dir);
  cJSON *j = cJSON_Parse(json);
  assert_int_equal(tools_policy_parse(j, "t.json", &f->m, err), MX_OK);
  cJSON_Delete(j);
  struct dev_local_opts o = {0};
  o.open_path = tools_policy_open_cb;
  o.open_ctx = f->m;
  assert_int_equal(dev_local_new(&o, &f->b, err), MX_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  f->b->destroy(f->b);
  tools_manifest_free(f->m);
  tt_rmtree(f->dir);
  free(f);
  return 0;
}

static void call(struct fx *f, const char *tool, const char *fmt, const char *arg, struct dev_result *r)
{
  char json[2048], err[MX_ERRBUF_LEN];
  snprintf(json, sizeof(json), fmt, f->dir, arg);
  cJSON *args = cJSON_Parse(json);
  assert_non_null(args);
  struct dev_call c = {0};
  c.request_id = "t1";
  c.tool = tool;
  c.args = args;
  c.timeout_ms = 5000;
  c.max_output = 65536;
  dev_result_init(r);
  assert_int_equal(f->b->run(f->b, &c, r, err), MX_OK);
  cJSON_Delete(args);
}

static void test_backend_fs(void **state)
{
  struct fx *f = *state;
  struct dev_result r;
  char p[512];
  call(f, "fs.read", "{\"path\":\"%s/srv/%s\"}", "hello.txt", &r);
  assert_int_equal(r.status, DEV_DONE);
  assert_string_equal(mx_buf_cstr(&r.out), "hello world\n");
  dev_result_release(&r);
  call(f, "fs.read", "{\"path\":\"%s/srv/%s\"}", "passwd", &r);
  assert_int_equal(r.status, DEV_REFUSED);
  assert_non_null(strstr(r.detail, "resolves outside its root"));
  assert_int_equal(r.out.len, 0);
  dev_result_release(&r);
  call(f, "fs.list", "{\"path\":\"%s/srv%s\"}", "", &r);
  assert_int_equal(r.status, DEV_DONE);
  assert_non_null(strstr(mx_buf_cstr(&r.out), "{\"name\":\"data\",\"type\":\"dir\""));
  assert_non_null(strstr(mx_buf_cstr(&r.out), "{\"name\":\"passwd\",\"type\":\"symlink\""));
  dev_result_release(&r);
  call(f, "fs.stat", "{\"path\":\"%s/srv/%s\"}", "hello.txt", &r);
  assert_non_null(strstr(mx_buf_cstr(&r.out), "\"type\":\"file\",\"size\":12"));
  dev_result_release(&r);
  call(f, "fs.write", "{\"path\":\"%s/srv/data/%s\",\"content\":\"new\\n\"}", "out.txt", &r);
  assert_int_equal(r.status, DEV_DONE);
  dev_result_release(&r);
  char buf[64];
  tt_path(p, sizeof(p), f->dir, "srv/data/out.txt");
  assert_int_equal(tt_read(p, buf, sizeof(buf)), 4);
  call(f, "fs.write", "{\"path\":\"%s/srv/%s\",\"content\":\"x\"}", "hello.txt", &r);
  assert_int_equal(r.status, DEV_REFUSED);
  dev_result_release(&r);
  tt_path(p, sizeof(p), f->dir, "srv/hello.txt");
  assert_int_equal(tt_read(p, buf, sizeof(buf)), 12);
}

static void test_backend_exec_and_proc(void **state)
{
  struct fx *f = *state;
  struct dev_result r;
  /* "&&" reaches echo as an argument: no shell is involved. */
  call(f, "shell.exec", "{\"argv\":[\"/bin/echo\",\"%s\",\"&&\",\"%s\"]}", "rm", &r);
  assert_int_equal(r.status, DEV_DONE);
  assert_non_null(strstr(mx_buf_cstr(&r.out), "&& rm"));
  dev_result_release(&r);
  call(f, "shell.exec", "{\"argv\":[\"/bin/pwd\"],\"cwd\":\"%s/srv/%s\"}", "data", &r);
  assert_int_equal(r.status, DEV_DONE);
  assert_non_null(strstr(mx_buf_cstr(&r.out), "/srv/data\n"));
  dev_result_release(&r);
  call(f, "shell.exec", "{\"argv\":[\"/bin/pwd\"],\"cwd\":\"%s/%s\"}", "", &r);
  assert_int_equal(r.status, DEV_REFUSED);
  dev_result_release(&r);
  call(f, "proc.list", "{}%s%s", "", &r);
  char mine[32];
  snprintf(mine, sizeof(mine), "\n%d ", (int)getpid());
  assert_non_null(strstr(mx_buf_cstr(&r.out), mine));
  dev_result_release(&r);
  call(f, "proc.kill", "{\"pid\":1%.0s%s}", "", &r);
  assert_int_equal(r.status, DEV_REFUSED);
  dev_result_release(&r);
  call(f, "ssh.exec", "{\"argv\":[\"%s%s\"]}", "", &r); /* not a tool any more: refused */
  assert_int_equal(r.status, DEV_REFUSED);
  dev_result_release(&r);
}

static void test_backend_git(void **state)
{
  struct fx *f = *state;
  if (access("/usr/bin/git", X_OK) != 0)
    skip();
  struct dev_result r;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "cd %s/srv && git init -q repo && cd repo && git -c user.name=t -c user.email=t@example.org commit -q "
           "--allow-empty -m first && echo x > new.txt", f->dir);
  assert_int_equal(system(cmd), 0);
  call(f, "git.status", "{\"repo\":\"%s/srv/%s\"}", "repo", &r);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(mx_buf_cstr(&r.out), "?? new.txt"));
  dev_result_release(&r);
  call(f, "git.log", "{\"repo\":\"%s/srv/%s\"}", "repo", &r);
  assert_non_null(strstr(mx_buf_cstr(&r.out), "t: first"));
  dev_result_release(&r);
  call(f, "git.status", "{\"repo\":\"%s/%s\"}", "", &r);
  assert_int_equal(r.status, DEV_REFUSED);
  dev_result_release(&r);
}

static void test_backend_pkg_and_docker(void **state)
{
  struct fx *f = *state;
  struct dev_result r;
  if (access("/usr/bin/dpkg-query", X_OK) == 0) {
    call(f, "pkg.list", "{\"pattern\":\"libc6%.0s%s\"}", "", &r);
    assert_int_equal(r.status, DEV_DONE);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(strncmp(mx_buf_cstr(&r.out), "libc6\t", 6), 0);
    dev_result_release(&r);
  }
  if (access("/usr/bin/docker", X_OK) != 0) {
    /* No docker here: the call fails cleanly and says why. */
    call(f, "docker.ps", "{%.0s%s}", "", &r);
    assert_int_equal(r.status, DEV_FAILED);
    assert_string_equal(r.detail, "cannot run '/usr/bin/docker': No such file or directory");
    dev_result_release(&r);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exit_codes_and_streams),
      cmocka_unit_test(test_exec_failures),
      cmocka_unit_test(test_timeout_kills_the_process_group),
      cmocka_unit_test(test_output_cap_sets_truncated),
      cmocka_unit_test(test_death_by_signal),
      cmocka_unit_test(test_cancel_flag_stops_the_call),
      cmocka_unit_test_setup_teardown(test_backend_fs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backend_exec_and_proc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backend_git, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backend_pkg_and_docker, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
