/*
 * bench_devices.c - tool-call latency per backend:
 *   ssh DIR N  shell.exec ["true"] over the reused libssh session vs a fresh
 *              `ssh -o BatchMode=yes host true` per call; prints the ratio
 *   wg DIR N   fs.read, shell.exec ["/bin/echo", "x"] and GET /v1/health through the
 *              WireGuard tunnel to mxfleet-agent (run in the hub namespace)
 *   local N    ["/bin/echo", "x"] through the local executor (fork, exec,
 *              drain, reap) that the local backend and mxfleet-agent share
 * DIR is an sshd-fixture / wgnet directory; bench/devices/run.sh sets both up.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dev_local.h"
#include "dev_ssh.h"
#include "dev_wg.h"
#include "mx_util.h"

extern char **environ;

static int cmp64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static double mean_us(int64_t *v, int n)
{
  double s = 0;
  for (int i = 0; i < n; i++)
    s += (double)v[i];
  return s / n;
}

static void report(const char *what, int64_t *us, int n)
{
  qsort(us, (size_t)n, sizeof(*us), cmp64);
  printf("%-34s n=%d mean=%.2f ms median=%.2f ms p95=%.2f ms\n", what, n, mean_us(us, n) / 1000.0,
         (double)us[n / 2] / 1000.0, (double)us[(n * 95) / 100] / 1000.0);
}

static int64_t now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int run_call(struct dev_backend *b, const char *tool, const char *args_json)
{
  char err[MX_ERRBUF_LEN];
  cJSON *args = cJSON_Parse(args_json);
  struct dev_call c = {.request_id = "bench", .tool = tool, .args = args, .timeout_ms = 10000, .max_output = 4096};
  struct dev_result r;
  dev_result_init(&r);
  mx_err rc = b->run(b, &c, &r, err);
  int ok = !rc && r.status == DEV_DONE && r.exit_code == 0;
  if (!ok)
    fprintf(stderr, "call failed: %s\n", rc ? err : (r.detail ? r.detail : dev_status_str(r.status)));
  dev_result_release(&r);
  cJSON_Delete(args);
  return ok;
}

static int fresh_ssh(const char *dir, int port, const char *kh)
{
  char key[600], p[16], khopt[700];
  snprintf(key, sizeof(key), "%s/user_ed25519", dir);
  snprintf(p, sizeof(p), "%d", port);
  snprintf(khopt, sizeof(khopt), "UserKnownHostsFile=%s", kh);
  char *argv[] = {"ssh", "-q", "-o", "BatchMode=yes", "-o", khopt, "-o", "StrictHostKeyChecking=yes", "-F",
                  "/dev/null", "-i", key, "-p", p, "mxfleet-test@127.0.0.1", "true", NULL};
  pid_t pid;
  int st = 0;
  if (posix_spawnp(&pid, "ssh", NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0)
    return 0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int bench_ssh(const char *dir, int n)
{
  char err[MX_ERRBUF_LEN], kh[600], key[600], portf[600];
  snprintf(kh, sizeof(kh), "%s/bench_known_hosts", dir);
  snprintf(key, sizeof(key), "%s/user_ed25519", dir);
  snprintf(portf, sizeof(portf), "%s/port", dir);
  struct mx_buf pb = MX_BUF_INIT(64);
  if (mx_file_read(portf, 64, &pb, err))
    return fprintf(stderr, "%s\n", err), 1;
  int port = atoi(mx_buf_cstr(&pb));
  mx_buf_release(&pb);
  unlink(kh);
  if (dev_ssh_pin_host_key("127.0.0.1", port, kh, NULL, NULL, err))
    return fprintf(stderr, "%s\n", err), 1;
  struct dev_ssh_config c = {.host = "127.0.0.1", .port = port, .user = "mxfleet-test", .key_file = key,
                             .known_hosts = kh};
  struct dev_backend *b = NULL;
  if (dev_ssh_new(&c, &b, err))
    return fprintf(stderr, "%s\n", err), 1;
  int64_t *reused = calloc((size_t)n, sizeof(int64_t)), *fresh = calloc((size_t)n, sizeof(int64_t));
  int ok = reused && fresh && run_call(b, "shell.exec", "{\"argv\":[\"true\"]}"); /* connect outside the timing */
  for (int i = 0; ok && i < n; i++) {
    int64_t t0 = now_us();
    ok = run_call(b, "shell.exec", "{\"argv\":[\"true\"]}");
    reused[i] = now_us() - t0;
  }
  for (int i = 0; ok && i < n; i++) {
    int64_t t0 = now_us();
    ok = fresh_ssh(dir, port, kh);
    fresh[i] = now_us() - t0;
  }
  if (ok) {
    double r = mean_us(fresh, n) / mean_us(reused, n);
    report("ssh reused session, shell.exec true", reused, n);
    report("fresh `ssh -o BatchMode=yes` true", fresh, n);
    printf("ratio fresh/reused (mean): %.1fx (target >= 20x)\n", r);
  }
  b->destroy(b);
  free(reused);
  free(fresh);
  return ok ? 0 : 1;
}

static int bench_wg(const char *dir, int n)
{
  char err[MX_ERRBUF_LEN], key[600], data[600];
  snprintf(key, sizeof(key), "%s/agent.key", dir);
  snprintf(data, sizeof(data), "%s/bench-data", dir);
  if (mx_mkdir_p(data, 0700, err))
    return fprintf(stderr, "%s\n", err), 1;
  struct dev_wg_config c = {.url = "http://198.51.100.2:7443", .key_file = key, .data_dir = data, .device = "wgtest"};
  struct dev_backend *b = NULL;
  if (dev_wg_new(&c, &b, err))
    return fprintf(stderr, "%s\n", err), 1;
  int64_t *calls = calloc((size_t)n, sizeof(int64_t)), *health = calloc((size_t)n, sizeof(int64_t));
  int64_t *reads = calloc((size_t)n, sizeof(int64_t));
  char rargs[700];
  snprintf(rargs, sizeof(rargs), "{\"path\":\"%s/dev-root/hello.txt\"}", dir);
  int ok = calls && health && reads && run_call(b, "shell.exec", "{\"argv\":[\"/bin/echo\",\"x\"]}");
  for (int i = 0; ok && i < n; i++) {
    int64_t t0 = now_us();
    ok = run_call(b, "fs.read", rargs);
    reads[i] = now_us() - t0;
  }
  for (int i = 0; ok && i < n; i++) {
    int64_t t0 = now_us();
    ok = run_call(b, "shell.exec", "{\"argv\":[\"/bin/echo\",\"x\"]}");
    calls[i] = now_us() - t0;
  }
  for (int i = 0; ok && i < n; i++) {
    int64_t t0 = now_us();
    ok = b->health(b, NULL, err) == MX_OK;
    health[i] = now_us() - t0;
  }
  if (ok) {
    report("wg HTTP fs.read (2 audit rows)", reads, n);
    report("wg HTTP shell.exec /bin/echo", calls, n);
    report("wg HTTP GET /v1/health", health, n);
  } else
    fprintf(stderr, "%s\n", err);
  b->destroy(b);
  free(calls);
  free(health);
  free(reads);
  return ok ? 0 : 1;
}

static int bench_local(int n)
{
  char err[MX_ERRBUF_LEN];
  char *argv[] = {"/bin/echo", "x", NULL};
  int64_t *us = calloc((size_t)n, sizeof(int64_t));
  int ok = us != NULL;
  for (int i = 0; ok && i < n; i++) {
    struct dev_result r;
    dev_result_init(&r);
    int64_t t0 = now_us();
    ok = dev_local_exec(argv, NULL, 10000, 4096, NULL, &r, err) == MX_OK && r.status == DEV_DONE && r.exit_code == 0;
    us[i] = now_us() - t0;
    dev_result_release(&r);
  }
  if (ok)
    report("local exec /bin/echo", us, n);
  else
    fprintf(stderr, "local exec failed\n");
  free(us);
  return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "local") == 0 && atoi(argv[2]) > 0)
    return bench_local(atoi(argv[2]));
  if (argc != 4)
    return fprintf(stderr, "usage: bench_devices ssh|wg DIR N | bench_devices local N\n"), 2;
  int n = atoi(argv[3]);
  if (n < 1)
    return fprintf(stderr, "N: expected a positive count, got '%s'\n", argv[3]), 2;
  if (strcmp(argv[1], "ssh") == 0)
    return bench_ssh(argv[2], n);
  if (strcmp(argv[1], "wg") == 0)
    return bench_wg(argv[2], n);
  return fprintf(stderr, "mode: expected ssh or wg, got '%s'\n", argv[1]), 2;
}
