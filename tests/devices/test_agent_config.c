/* test_agent_config.c - mxfleet-agent's config file: a good one loads with
 * defaults; each kind of mistake names the file and the key path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_config.h"
#include "mx_util.h"

static char path[64];

static int setup(void **state)
{
  (void)state;
  snprintf(path, sizeof(path), "/tmp/mxf-agentcfg-%d.json", (int)getpid());
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  unlink(path);
  return 0;
}

static mx_err load_text(const char *json, struct agent_config *c, char *err)
{
  char e[MX_ERRBUF_LEN];
  assert_int_equal(mx_file_write(path, json, strlen(json), 0600, e), MX_OK);
  return agent_config_load(path, 0, c, err);
}

#define GOOD_HEAD "{\"device\":\"pc1\",\"listen\":\"198.51.100.2:7443\",\"key_file\":\"/k\",\"manifest\":\"/m\",\"data_dir\":\"/d\""

static void good_config(void **state)
{
  (void)state;
  struct agent_config c;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(load_text(GOOD_HEAD ",\"user\":\"mxfleet\",\"limits\":{\"max_body\":4096}}", &c, err), MX_OK);
  assert_string_equal(c.device, "pc1");
  assert_string_equal(c.listen_host, "198.51.100.2");
  assert_int_equal(c.listen_port, 7443);
  assert_string_equal(c.user, "mxfleet");
  assert_int_equal(c.max_body, 4096);
  assert_int_equal(c.max_connections, 32);
  agent_config_free(&c);
  assert_int_equal(load_text("{\"device\":\"pc1\",\"listen\":\"[fd00::2]:7443\",\"key_file\":\"/k\","
                             "\"manifest\":\"/m\",\"data_dir\":\"/d\"}", &c, err), MX_OK);
  assert_string_equal(c.listen_host, "fd00::2");
  agent_config_free(&c);
}

static void expect_error(const char *json, const char *want)
{
  struct agent_config c;
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc = load_text(json, &c, err);
  if (rc == MX_OK)
    agent_config_free(&c);
  assert_int_not_equal(rc, MX_OK);
  char full[700];
  snprintf(full, sizeof(full), "%s: %s", path, want);
  if (strcmp(err, full) != 0)
    fprintf(stderr, "got:  %s\nwant: %s\n", err, full);
  assert_string_equal(err, full);
}

static void errors_name_file_and_key(void **state)
{
  (void)state;
  expect_error(GOOD_HEAD ",\"limits\":{\"max_body\":10}}", "limits.max_body: expected an integer 1024-67108864, got '10'");
  expect_error(GOOD_HEAD ",\"limits\":{\"max_conns\":10}}", "limits: unknown key 'max_conns'");
  expect_error(GOOD_HEAD ",\"limits\":{\"per_ip_connections\":\"8\"}}",
               "limits.per_ip_connections: expected an integer 1-1024, got '\"8\"'");
  expect_error(GOOD_HEAD ",\"colour\":1}", "unknown key 'colour'");
  expect_error("{\"listen\":\"198.51.100.2:7443\"}", "device: required key is missing");
  expect_error("{\"device\":\"pc 1\"}", "device: expected 1-64 of [A-Za-z0-9._-], got 'pc 1'");
  expect_error("{\"device\":\"pc1\",\"listen\":\"0.0.0.0:7443\"}",
               "listen: expected the device's WireGuard address, not the wildcard '0.0.0.0'");
  expect_error("{\"device\":\"pc1\",\"listen\":\"wg0:7443\"}",
               "listen: expected an IP address (the WireGuard address), got 'wg0'");
  expect_error("{\"device\":\"pc1\",\"listen\":\"198.51.100.2:99999\"}", "listen: expected a port 1-65535, got '99999'");
  expect_error("{\"device\":\"pc1\",\"listen\":\"198.51.100.2\"}",
               "listen: expected ADDRESS:PORT like 198.51.100.2:7443, got '198.51.100.2'");
  expect_error(GOOD_HEAD ",\"log_level\":\"loud\"}", "log_level: expected debug, info, warn or error, got 'loud'");
  expect_error("{\"device\":\"pc1\",", "invalid JSON at byte 16");
  expect_error("[1]", "expected a JSON object at the top level");
}

static void missing_file(void **state)
{
  (void)state;
  struct agent_config c;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(agent_config_load("/nonexistent/agent.json", 0, &c, err), MX_ERR_NOT_FOUND);
  assert_non_null(strstr(err, "'/nonexistent/agent.json'"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(good_config),
      cmocka_unit_test(errors_name_file_and_key),
      cmocka_unit_test(missing_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
