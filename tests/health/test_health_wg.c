/*
 * tests/health/test_health_wg.c - integration: the health monitor reading
 * real handshakes with /usr/bin/wg from wireguard-go in two network
 * namespaces (tests/health/wg-netns). Before any traffic the device's peer
 * shows "never" and is alerted stale; after a TCP connection attempt through
 * the tunnel the handshake is recent, the device is online and [RESOLVED] is
 * posted once. The namespaces are removed in teardown, also after failures.
 */
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dev_health.h"
#include "mx_util.h"

extern char **environ;

#define NETDIR "/tmp/mxh-health-wgnet"

struct posts {
  char text[8][256];
  int n;
};

static int run(char *const argv[])
{
  pid_t pid;
  int st = 0;

  if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
  char *up[] = {HEALTH_TEST_DIR "/wg-netns", "up", NETDIR, NULL};
  (void)state;
  return run(up) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
  char *down[] = {HEALTH_TEST_DIR "/wg-netns", "down", NETDIR, NULL};
  (void)state;
  return run(down) == 0 ? 0 : -1;
}

static void on_post(void *ctx, const char *text, const char *html)
{
  struct posts *p = ctx;
  (void)html;
  assert_true(p->n < 8);
  snprintf(p->text[p->n++], sizeof p->text[0], "%s", text);
}

static cJSON *dev_json(struct dev_health *h)
{
  cJSON *j = dev_health_device_json(h, "pc1");
  assert_non_null(j);
  return j;
}

/* A monitor of the hub's interface with the device "pc1" on it. */
static struct dev_health *monitor(struct posts *p, struct mx_buf *key)
{
  struct dev_health_opts o = {0};
  struct dev_health_device d = {0};
  struct dev_health *h = NULL;
  char err[MX_ERRBUF_LEN];

  assert_int_equal(mx_file_read(NETDIR "/dev.pub", 128, key, err), MX_OK);
  mx_rtrim(key->buf);
  o.wg_interface = "mxhwg0"; /* real /usr/bin/wg: the UAPI socket is outside the namespace */
  o.post = on_post;
  o.post_ctx = p;
  o.pending_s = 0;
  o.keep_firing_s = 0;
  assert_int_equal(dev_health_new(&o, &h, err), MX_OK);
  d.name = "pc1";
  d.backend = "wg";
  d.wg_pubkey = key->buf;
  d.mesh_address = "198.51.100.102";
  assert_int_equal(dev_health_add_device(h, &d, err), MX_OK);
  return h;
}

static void test_real_handshake(void **state)
{
  struct posts p = {.n = 0};
  struct mx_buf key = MX_BUF_INIT(128);
  struct dev_health *h = monitor(&p, &key);
  char err[MX_ERRBUF_LEN];
  const char *resolved = "[RESOLVED] device_id=pc1 status=stale (firing began ";
  char *poke[] = {"ip", "netns", "exec", "mxh-dev", "curl", "-s", "-o", "/dev/null", "-m", "2",
                  "http://198.51.100.101:9/", NULL};
  int64_t deadline;
  cJSON *j;
  (void)state;

  /* No traffic yet: wg prints 0, which is "never". */
  assert_int_equal(dev_health_run_once(h, NULL, err), MX_OK);
  assert_int_equal(p.n, 1);
  assert_string_equal(p.text[0], "[ALERT] device_id=pc1 status=stale (handshake never)");
  j = dev_json(h);
  assert_int_equal(cJSON_GetObjectItem(j, "last_handshake")->valueint, 0);
  assert_string_equal(cJSON_GetObjectItem(j, "last_handshake_age")->valuestring, "never");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "online")));
  cJSON_Delete(j);

  /* A TCP attempt through the tunnel (refused or not) makes a handshake;
   * poll with a deadline rather than sleep. */
  deadline = mx_mono_ms() + 15000;
  for (;;) {
    run(poke);
    assert_int_equal(dev_health_run_once(h, NULL, err), MX_OK);
    j = dev_json(h);
    if (cJSON_IsTrue(cJSON_GetObjectItem(j, "online")) || mx_mono_ms() > deadline)
      break;
    cJSON_Delete(j);
  }
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "online")));
  assert_true(cJSON_GetObjectItem(j, "last_handshake")->valuedouble > (double)(mx_now_ms() / 1000 - 60));
  assert_non_null(strstr(cJSON_GetObjectItem(j, "last_handshake_age")->valuestring, "s ago"));
  cJSON_Delete(j);
  assert_int_equal(p.n, 2);
  assert_memory_equal(p.text[1], resolved, strlen(resolved));
  /* Once only. */
  assert_int_equal(dev_health_run_once(h, NULL, err), MX_OK);
  assert_int_equal(p.n, 2);
  dev_health_free(h);
  mx_buf_release(&key);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_handshake),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
