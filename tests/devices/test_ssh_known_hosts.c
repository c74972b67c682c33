/* test_ssh_known_hosts.c - ssh backend checks that need no server:
 * configuration errors, pinning against an unreachable host writes nothing,
 * unknown tools are refused before any connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dev_ssh.h"

static void config_errors(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct dev_backend *b = NULL;
  struct dev_ssh_config c = {.host = "", .user = "u", .key_file = "/k", .known_hosts = "/kh"};
  assert_int_equal(dev_ssh_new(&c, &b, err), MX_ERR_CONFIG);
  assert_string_equal(err, "ssh host: expected a host name or address");
  c.host = "192.0.2.9";
  c.user = NULL;
  assert_int_equal(dev_ssh_new(&c, &b, err), MX_ERR_CONFIG);
  assert_string_equal(err, "ssh user: expected a user name");
  c.user = "u";
  c.port = 70000;
  assert_int_equal(dev_ssh_new(&c, &b, err), MX_ERR_CONFIG);
  assert_string_equal(err, "ssh port: expected 1-65535, got '70000'");
  c.port = 0;
  c.known_hosts = NULL;
  assert_int_equal(dev_ssh_new(&c, &b, err), MX_ERR_CONFIG);
  assert_null(b);
}

static void pin_unreachable_writes_nothing(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], kh[64], fp[DEV_SSH_FP_LEN] = "";
  snprintf(kh, sizeof(kh), "/tmp/mxf-kh-%d", (int)getpid());
  unlink(kh);
  /* Port 1 on loopback: connection refused at once. */
  mx_err rc = dev_ssh_pin_host_key("127.0.0.1", 1, kh, NULL, fp, err);
  assert_true(rc == MX_ERR_UNAVAILABLE || rc == MX_ERR_TIMEOUT);
  assert_non_null(strstr(err, "cannot connect"));
  assert_int_equal(access(kh, F_OK), -1);
  assert_string_equal(fp, "");
}

static void unknown_tool_refused_without_connecting(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct dev_backend *b = NULL;
  struct dev_ssh_config c = {.host = "127.0.0.1", .port = 1, .user = "u", .key_file = "/k", .known_hosts = "/kh"};
  assert_int_equal(dev_ssh_new(&c, &b, err), MX_OK);
  struct dev_call call = {.request_id = "x", .tool = "fs.write", .timeout_ms = 1000, .max_output = 10};
  struct dev_result r;
  dev_result_init(&r);
  assert_int_equal(b->run(b, &call, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_REFUSED);
  assert_string_equal(r.detail, "tool 'fs.write' is not served by the ssh backend");
  assert_int_equal(dev_ssh_connect_count(b), 0);
  dev_result_release(&r);
  b->destroy(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(config_errors),
      cmocka_unit_test(pin_unreachable_writes_nothing),
      cmocka_unit_test(unknown_tool_refused_without_connecting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
