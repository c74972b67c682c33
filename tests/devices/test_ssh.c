/*
 * test_ssh.c - the ssh backend against real sshd instances started by the
 * sshd-fixture (MXF_SSHD_DIR): pinning, exit codes and signals, timeout,
 * output cap, quoting corpus, changed host key, password-only server,
 * session reuse counted in sshd's own log, SFTP caps, fs.* paths confined
 * after the host resolved them, the declared-shell probe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "dev_ssh.h"
#include "mx_json.h"
#include "mx_util.h"

static char dir[512]; /* the fixture directory */
static int port, pwport;
static char kh[600]; /* known_hosts pinned by group setup */

static void path_in(char *out, size_t n, const char *name)
{
  snprintf(out, n, "%s/%s", dir, name);
}

static int read_int(const char *name)
{
  char p[600];
  path_in(p, sizeof(p), name);
  FILE *f = fopen(p, "r");
  int v = 0;
  if (f) {
    if (fscanf(f, "%d", &v) != 1)
      v = 0;
    fclose(f);
  }
  return v;
}

/* The readable root of these tests: DIR/sftp (component prefix). */
static mx_err under_sftp_dir(void *ctx, const char *path, char *err)
{
  (void)ctx;
  char root[600];
  path_in(root, sizeof(root), "sftp");
  size_t n = strlen(root);
  if (strncmp(path, root, n) == 0 && (path[n] == '/' || !path[n]))
    return MX_OK;
  return mx_fail(MX_ERR_DENIED, err, "path '%s' is outside every readable root", path);
}

static struct dev_ssh_config config(int p, const char *known_hosts)
{
  static char key[600];
  path_in(key, sizeof(key), "user_ed25519");
  struct dev_ssh_config c = {.host = "127.0.0.1", .port = p, .user = "mxfleet-test", .key_file = key,
                             .known_hosts = known_hosts, .connect_timeout_ms = 5000, .device = "test",
                             .check_path = under_sftp_dir};
  return c;
}

static int setup(void **state)
{
  (void)state;
  const char *d = getenv("MXF_SSHD_DIR");
  if (!d)
    return -1;
  snprintf(dir, sizeof(dir), "%s", d);
  port = read_int("port");
  pwport = read_int("pwport");
  path_in(kh, sizeof(kh), "pinned_known_hosts");
  unlink(kh);
  char err[MX_ERRBUF_LEN];
  if (dev_ssh_pin_host_key("127.0.0.1", port, kh, NULL, NULL, err)) {
    fprintf(stderr, "pin: %s\n", err);
    return -1;
  }
  return port > 0 && pwport > 0 ? 0 : -1;
}

/* Runs argv (NULL-terminated) on a backend; returns the run() code. */
static mx_err run_argv(struct dev_backend *b, const char *const *argv, int timeout_ms, size_t cap,
                       struct dev_result *r, char *err)
{
  cJSON *args = cJSON_CreateObject();
  cJSON *a = cJSON_AddArrayToObject(args, "argv");
  for (int i = 0; argv[i]; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(argv[i]));
  struct dev_call call = {.request_id = "t", .tool = "shell.exec", .args = args, .timeout_ms = timeout_ms,
                          .max_output = cap};
  dev_result_init(r);
  mx_err rc = b->run(b, &call, r, err);
  cJSON_Delete(args);
  return rc;
}

static struct dev_backend *backend(int p, const char *known_hosts)
{
  struct dev_backend *b = NULL;
  char err[MX_ERRBUF_LEN];
  struct dev_ssh_config c = config(p, known_hosts);
  assert_int_equal(dev_ssh_new(&c, &b, err), MX_OK);
  return b;
}

static void pinning(void **state)
{
  (void)state;
  char fresh[600], fp[DEV_SSH_FP_LEN], fp2[DEV_SSH_FP_LEN], err[MX_ERRBUF_LEN];
  path_in(fresh, sizeof(fresh), "fresh_known_hosts");
  unlink(fresh);
  assert_int_equal(dev_ssh_pin_host_key("127.0.0.1", port, fresh, NULL, fp, err), MX_OK);
  assert_memory_equal(fp, "SHA256:", 7);
  struct mx_buf one = MX_BUF_INIT(65536), two = MX_BUF_INIT(65536);
  assert_int_equal(mx_file_read(fresh, 65536, &one, err), MX_OK);
  /* Idempotent: the same key again writes nothing. */
  assert_int_equal(dev_ssh_pin_host_key("127.0.0.1", port, fresh, fp, fp2, err), MX_OK);
  assert_string_equal(fp, fp2);
  assert_int_equal(mx_file_read(fresh, 65536, &two, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&one), mx_buf_cstr(&two));
  /* A wrong expected fingerprint pins nothing. */
  unlink(fresh);
  assert_int_equal(dev_ssh_pin_host_key("127.0.0.1", port, fresh, "SHA256:not-this-one", NULL, err), MX_ERR_DENIED);
  assert_int_equal(access(fresh, F_OK), -1);
  /* Unpinned host: run-time calls refuse. */
  struct dev_backend *b = backend(port, fresh);
  struct dev_result r;
  const char *argv[] = {"true", NULL};
  assert_int_equal(run_argv(b, argv, 5000, 100, &r, err), MX_ERR_DENIED);
  assert_non_null(strstr(err, "not pinned"));
  assert_int_equal(access(fresh, F_OK), -1); /* never written at run time */
  dev_result_release(&r);
  b->destroy(b);
  mx_buf_release(&one);
  mx_buf_release(&two);
}

static void exit_codes(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct dev_backend *b = backend(port, kh);
  struct dev_result r;
  const char *seven[] = {"sh", "-c", "echo out; echo err >&2; exit 7", NULL};
  assert_int_equal(run_argv(b, seven, 5000, 4096, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(r.exit_code, 7);
  assert_string_equal(mx_buf_cstr(&r.out), "out\n");
  assert_string_equal(mx_buf_cstr(&r.err), "err\n");
  dev_result_release(&r);
  const char *ok[] = {"true", NULL};
  assert_int_equal(run_argv(b, ok, 5000, 4096, &r, err), MX_OK);
  assert_int_equal(r.exit_code, 0);
  dev_result_release(&r);
  const char *sig[] = {"sh", "-c", "kill -TERM $$", NULL};
  assert_int_equal(run_argv(b, sig, 5000, 4096, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(r.signal, 15);
  dev_result_release(&r);
  b->destroy(b);
}

static void timeout_kills(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct dev_backend *b = backend(port, kh);
  struct dev_result r;
  const char *argv[] = {"sleep", "600.25", NULL}; /* a duration nobody else uses */
  int64_t t0 = mx_mono_ms();
  assert_int_equal(run_argv(b, argv, 2000, 4096, &r, err), MX_OK);
  int64_t took = mx_mono_ms() - t0;
  assert_int_equal(r.status, DEV_TIMEOUT);
  assert_true(took >= 1900 && took < 3000);
  dev_result_release(&r);
  /* The remote command was killed, not left behind. */
  const char *look[] = {"pgrep", "-f", "^sleep 600[.]25$", NULL};
  int64_t deadline = mx_mono_ms() + 3000;
  int gone = 0;
  while (!gone && mx_mono_ms() < deadline) {
    assert_int_equal(run_argv(b, look, 5000, 4096, &r, err), MX_OK);
    gone = r.exit_code == 1;
    dev_result_release(&r);
    if (!gone)
      usleep(50000);
  }
  assert_true(gone);
  /* The session survives a timed-out call. */
  const char *ok[] = {"echo", "still here", NULL};
  assert_int_equal(run_argv(b, ok, 5000, 4096, &r, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&r.out), "still here\n");
  assert_int_equal(dev_ssh_connect_count(b), 1);
  dev_result_release(&r);
  b->destroy(b);
}

static void output_cap(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct dev_backend *b = backend(port, kh);
  struct dev_result r;
  const char *argv[] = {"head", "-c", "3000000", "/dev/zero", NULL};
  assert_int_equal(run_argv(b, argv, 10000, 1000, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(r.out.len, 1000);
  assert_true(r.truncated);
  assert_int_equal(r.exit_code, 0);
  dev_result_release(&r);
  const char *small[] = {"echo", "hi", NULL};
  assert_int_equal(run_argv(b, small, 10000, 1000, &r, err), MX_OK);
  assert_false(r.truncated);
  dev_result_release(&r);
  b->destroy(b);
}

static void quoting_corpus(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], marker[64], c1[700], c2[700], c3[700];
  /* /tmp: a place the test user could write, so an injection would show. */
  snprintf(marker, sizeof(marker), "/tmp/mxf-pwned-%d", (int)getpid());
  unlink(marker);
  snprintf(c1, sizeof(c1), "$(touch %s)", marker);
  snprintf(c2, sizeof(c2), "`touch %s`", marker);
  snprintf(c3, sizeof(c3), "x; touch %s", marker);
  const char *corpus[] = {"a;id", c1, c2, c3, "it's", "'", "\"q\"", "two words", "l1\nl2", "$HOME", "*", "", NULL};
  const char *argv[20] = {"printf", "%s\\0"};
  struct mx_buf want = MX_BUF_INIT(8192);
  int n = 2;
  for (int i = 0; corpus[i]; i++) {
    argv[n++] = corpus[i];
    assert_int_equal(mx_buf_add(&want, corpus[i], strlen(corpus[i]) + 1), MX_OK);
  }
  argv[n] = NULL;
  struct dev_backend *b = backend(port, kh);
  struct dev_result r;
  assert_int_equal(run_argv(b, argv, 5000, 8192, &r, err), MX_OK);
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(r.out.len, want.len);
  assert_memory_equal(r.out.buf, want.buf, want.len);
  assert_int_equal(access(marker, F_OK), -1);
  dev_result_release(&r);
  /* Invalid UTF-8 never reaches the host: refused before anything is sent. */
  const char *bad[] = {"echo", "\xc3\x28", NULL};
  assert_int_equal(run_argv(b, bad, 5000, 100, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_REFUSED);
  assert_non_null(strstr(r.detail, "expected valid UTF-8"));
  dev_result_release(&r);
  b->destroy(b);
  mx_buf_release(&want);
}

static void changed_host_key(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], other[600], khx[600];
  path_in(other, sizeof(other), "other_host_ed25519.pub");
  path_in(khx, sizeof(khx), "changed_known_hosts");
  struct mx_buf pub = MX_BUF_INIT(4096), line = MX_BUF_INIT(4096), after = MX_BUF_INIT(4096);
  assert_int_equal(mx_file_read(other, 4096, &pub, err), MX_OK);
  assert_int_equal(mx_buf_addf(&line, "[127.0.0.1]:%d %s", port, mx_buf_cstr(&pub)), MX_OK);
  assert_int_equal(mx_file_write(khx, line.buf, line.len, 0600, err), MX_OK);
  struct dev_backend *b = backend(port, khx);
  struct dev_result r;
  const char *argv[] = {"touch", "/tmp/mxf-should-not-exist", NULL};
  assert_int_equal(run_argv(b, argv, 5000, 100, &r, err), MX_ERR_TAMPERED);
  assert_non_null(strstr(err, "host key does not match"));
  dev_result_release(&r);
  assert_int_equal(access("/tmp/mxf-should-not-exist", F_OK), -1);
  assert_int_equal(mx_file_read(khx, 4096, &after, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&after), mx_buf_cstr(&line)); /* never updated */
  /* Re-pinning refuses too. */
  assert_int_equal(dev_ssh_pin_host_key("127.0.0.1", port, khx, NULL, NULL, err), MX_ERR_TAMPERED);
  struct dev_ssh_config c = config(port, khx);
  assert_int_equal(dev_ssh_check(&c, err), MX_ERR_TAMPERED);
  b->destroy(b);
  mx_buf_release(&pub);
  mx_buf_release(&line);
  mx_buf_release(&after);
}

static void password_only_refused(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], khp[600];
  path_in(khp, sizeof(khp), "pw_known_hosts");
  unlink(khp);
  assert_int_equal(dev_ssh_pin_host_key("127.0.0.1", pwport, khp, NULL, NULL, err), MX_OK);
  struct dev_backend *b = backend(pwport, khp);
  struct dev_result r;
  const char *argv[] = {"true", NULL};
  assert_int_equal(run_argv(b, argv, 5000, 100, &r, err), MX_ERR_AUTH);
  assert_non_null(strstr(err, "password login is never tried"));
  dev_result_release(&r);
  b->destroy(b);
}

static int count_accepted(void)
{
  char p[600], err[MX_ERRBUF_LEN];
  path_in(p, sizeof(p), "sshd.log");
  struct mx_buf log = MX_BUF_INIT((size_t)64 << 20);
  if (mx_file_read(p, (size_t)64 << 20, &log, err))
    return -1;
  int n = 0;
  for (const char *s = mx_buf_cstr(&log); (s = strstr(s, "Accepted publickey")) != NULL; s++)
    n++;
  mx_buf_release(&log);
  return n;
}

static void ten_calls_one_connection(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  int before = count_accepted();
  struct dev_backend *b = backend(port, kh);
  for (int i = 0; i < 10; i++) {
    struct dev_result r;
    const char *argv[] = {"echo", "call", NULL};
    assert_int_equal(run_argv(b, argv, 5000, 100, &r, err), MX_OK);
    assert_string_equal(mx_buf_cstr(&r.out), "call\n");
    dev_result_release(&r);
  }
  /* sshd writes the line at auth time, before our first call returns; poll
   * briefly anyway in case its log write lags. */
  int64_t deadline = mx_mono_ms() + 2000;
  while (count_accepted() < before + 1 && mx_mono_ms() < deadline)
    usleep(20000);
  assert_int_equal(count_accepted(), before + 1);
  assert_int_equal(dev_ssh_connect_count(b), 1);
  b->destroy(b);
}

/* Kills this fixture's sshd session processes (children of its master). */
static int kill_sessions(void)
{
  int master = read_int("sshd.pid"), killed = 0;
  char p[64], buf[512];
  DIR *d = opendir("/proc");
  struct dirent *de;
  while (d && master > 0 && (de = readdir(d)) != NULL) {
    int pid = atoi(de->d_name);
    if (pid <= 1)
      continue;
    snprintf(p, sizeof(p), "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f)
      continue;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    int ppid = 0;
    char st;
    if (rp && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == master && kill(pid, SIGTERM) == 0)
      killed++;
  }
  if (d)
    closedir(d);
  return killed;
}

static void reconnects_after_drop(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct dev_backend *b = backend(port, kh);
  struct dev_result r;
  const char *argv[] = {"echo", "one", NULL};
  assert_int_equal(run_argv(b, argv, 5000, 100, &r, err), MX_OK);
  dev_result_release(&r);
  assert_true(kill_sessions() > 0);
  /* The dead session is noticed when the next channel cannot be opened; the
   * backend reconnects once and the call still succeeds. Poll: the server
   * side may take a moment to go away. */
  int64_t deadline = mx_mono_ms() + 5000;
  mx_err rc;
  do {
    rc = run_argv(b, argv, 5000, 100, &r, err);
    dev_result_release(&r);
  } while (rc && mx_mono_ms() < deadline);
  assert_int_equal(rc, MX_OK);
  assert_int_equal(dev_ssh_connect_count(b), 2);
  struct dev_ssh_config c = config(port, kh);
  assert_int_equal(dev_ssh_check(&c, err), MX_OK);
  b->destroy(b);
}

static void sftp_caps(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], sub[600], f[700];
  path_in(sub, sizeof(sub), "sftp");
  assert_int_equal(mx_mkdir_p(sub, 0755, err), MX_OK);
  for (int i = 0; i < 5; i++) {
    snprintf(f, sizeof(f), "%s/f%d", sub, i);
    assert_int_equal(mx_file_write(f, "0123456789", 10, 0644, err), MX_OK);
  }
  struct dev_backend *b = backend(port, kh);
  struct dev_result r;
  cJSON *args = cJSON_CreateObject();
  cJSON_AddStringToObject(args, "path", f);
  cJSON_AddNumberToObject(args, "max_bytes", 4);
  struct dev_call call = {.request_id = "s", .tool = "fs.read", .args = args, .timeout_ms = 5000,
                          .max_output = 4096};
  dev_result_init(&r);
  assert_int_equal(b->run(b, &call, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_DONE);
  assert_string_equal(mx_buf_cstr(&r.out), "0123");
  assert_true(r.truncated);
  dev_result_release(&r);
  cJSON_Delete(args);
  /* offset, as on the local backend */
  args = cJSON_CreateObject();
  cJSON_AddStringToObject(args, "path", f);
  cJSON_AddNumberToObject(args, "offset", 7);
  call.args = args;
  dev_result_init(&r);
  assert_int_equal(b->run(b, &call, &r, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&r.out), "789");
  assert_false(r.truncated);
  dev_result_release(&r);
  cJSON_Delete(args);
  /* fs.list prints what the local backend prints: [{name,type,size}] by name */
  args = cJSON_CreateObject();
  cJSON_AddStringToObject(args, "path", sub);
  call.tool = "fs.list";
  call.args = args;
  dev_result_init(&r);
  assert_int_equal(b->run(b, &call, &r, err), MX_OK);
  cJSON *list = cJSON_Parse(mx_buf_cstr(&r.out));
  assert_true(cJSON_GetArraySize(list) >= 5);
  assert_string_equal(mx_json_str(cJSON_GetArrayItem(list, 0), "name"), "f0");
  assert_string_equal(mx_json_str(cJSON_GetArrayItem(list, 4), "name"), "f4");
  assert_string_equal(mx_json_str(cJSON_GetArrayItem(list, 0), "type"), "file");
  cJSON_Delete(list);
  dev_result_release(&r);
  /* fs.stat */
  call.tool = "fs.stat";
  cJSON_ReplaceItemInObject(args, "path", cJSON_CreateString(f));
  dev_result_init(&r);
  assert_int_equal(b->run(b, &call, &r, err), MX_OK);
  cJSON *st = cJSON_Parse(mx_buf_cstr(&r.out));
  assert_string_equal(mx_json_str(st, "type"), "file");
  assert_string_equal(mx_json_str(st, "mode"), "0644");
  cJSON_Delete(st);
  dev_result_release(&r);
  cJSON_Delete(args);
  args = cJSON_Parse("{\"path\":\"/nonexistent/mxf\"}");
  call.tool = "fs.read";
  call.args = args;
  dev_result_init(&r);
  assert_int_equal(b->run(b, &call, &r, err), MX_OK);
  assert_true(r.status == DEV_FAILED || r.status == DEV_REFUSED);
  dev_result_release(&r);
  cJSON_Delete(args);
  assert_int_equal(dev_ssh_connect_count(b), 1);
  b->destroy(b);
}

/* A symlink under the root that points out of it, and a '..' walk: the
 * host resolves them, the resolved path is checked, nothing is read. */
static void sftp_confined(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], sub[600], link[700], outside[700], dotdot[700];
  path_in(sub, sizeof(sub), "sftp");
  assert_int_equal(mx_mkdir_p(sub, 0755, err), MX_OK);
  path_in(outside, sizeof(outside), "outside.txt");
  assert_int_equal(mx_file_write(outside, "secret\n", 7, 0644, err), MX_OK);
  snprintf(link, sizeof(link), "%s/escape", sub);
  unlink(link);
  assert_int_equal(symlink(outside, link), 0);
  snprintf(dotdot, sizeof(dotdot), "%s/../outside.txt", sub);
  struct dev_backend *b = backend(port, kh);
  const char *paths[] = {link, dotdot};
  for (int i = 0; i < 2; i++) {
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "path", paths[i]);
    struct dev_call call = {.request_id = "c", .tool = "fs.read", .args = args, .timeout_ms = 5000, .max_output = 4096};
    struct dev_result r;
    dev_result_init(&r);
    assert_int_equal(b->run(b, &call, &r, err), MX_OK);
    assert_int_equal(r.status, DEV_REFUSED);
    assert_null(strstr(mx_buf_cstr(&r.out), "secret"));
    assert_non_null(strstr(r.detail, "outside every readable root"));
    dev_result_release(&r);
    cJSON_Delete(args);
  }
  b->destroy(b);
  /* no check_path wired: fs.* is refused outright */
  struct dev_ssh_config c = config(port, kh);
  c.check_path = NULL;
  assert_int_equal(dev_ssh_new(&c, &b, err), MX_OK);
  cJSON *args = cJSON_CreateObject();
  cJSON_AddStringToObject(args, "path", outside);
  struct dev_call call = {.request_id = "c", .tool = "fs.read", .args = args, .timeout_ms = 5000, .max_output = 4096};
  struct dev_result r;
  dev_result_init(&r);
  assert_int_equal(b->run(b, &call, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_REFUSED);
  dev_result_release(&r);
  cJSON_Delete(args);
  b->destroy(b);
}

/* The account's login shell is /bin/sh: declared as fish, cmd or
 * powershell, or as an unknown shell, shell.exec runs nothing (the probe
 * prints something else); declared posix, it runs. The old tool names are
 * not served. */
static void declared_shell_probe(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], marker[64];
  /* /tmp: a place the test user can write */
  snprintf(marker, sizeof(marker), "/tmp/mxf-probe-%d", (int)getpid());
  const char *shells[] = {"fish", "cmd", "powershell", "tcsh"};
  for (int i = 0; i < 4; i++) {
    struct dev_ssh_config c = config(port, kh);
    c.shell = shells[i];
    struct dev_backend *b = NULL;
    assert_int_equal(dev_ssh_new(&c, &b, err), MX_OK);
    struct dev_result r;
    unlink(marker);
    const char *argv[] = {"/usr/bin/touch", marker, NULL};
    assert_int_equal(run_argv(b, argv, 5000, 4096, &r, err), MX_OK);
    assert_int_equal(r.status, DEV_REFUSED);
    assert_int_equal(access(marker, F_OK), -1);
    if (i < 3)
      assert_non_null(strstr(r.detail, "does not parse like"));
    else
      assert_non_null(strstr(r.detail, "not known"));
    dev_result_release(&r);
    b->destroy(b);
  }
  struct dev_backend *b = backend(port, kh);
  struct dev_result r;
  const char *argv[] = {"/usr/bin/touch", marker, NULL};
  assert_int_equal(run_argv(b, argv, 5000, 4096, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(access(marker, F_OK), 0);
  unlink(marker);
  dev_result_release(&r);
  cJSON *args = cJSON_Parse("{\"argv\":[\"/bin/true\"]}");
  struct dev_call call = {.request_id = "o", .tool = "ssh.exec", .args = args, .timeout_ms = 5000, .max_output = 64};
  dev_result_init(&r);
  assert_int_equal(b->run(b, &call, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_REFUSED);
  dev_result_release(&r);
  cJSON_Delete(args);
  b->destroy(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pinning),          cmocka_unit_test(exit_codes),
      cmocka_unit_test(timeout_kills),    cmocka_unit_test(output_cap),
      cmocka_unit_test(quoting_corpus),   cmocka_unit_test(changed_host_key),
      cmocka_unit_test(password_only_refused), cmocka_unit_test(ten_calls_one_connection),
      cmocka_unit_test(sftp_caps),        cmocka_unit_test(reconnects_after_drop),
      cmocka_unit_test(sftp_confined),    cmocka_unit_test(declared_shell_probe),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
