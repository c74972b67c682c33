/*
 * tests/tools/test_tools_schema.c - the schema validator against the real
 * catalog schemas: every kind of violation is caught and the message names
 * the location, what was expected and the bad value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tools_catalog.h"
#include "tools_policy.h"
#include "tools_schema.h"

static mx_err check(const char *tool, const char *args, char *err)
{
  cJSON *schema = tools_catalog_schema(tools_catalog_find(tool));
  cJSON *v = cJSON_Parse(args);
  assert_non_null(schema);
  assert_non_null(v);
  err[0] = '\0';
  mx_err rc = tools_schema_validate(schema, v, err);
  cJSON_Delete(schema);
  cJSON_Delete(v);
  return rc;
}

static void test_valid_args_pass(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(check("fs.read", "{\"path\":\"/var/log/syslog\",\"max_bytes\":10}", err), MX_OK);
  assert_int_equal(check("shell.exec", "{\"argv\":[\"/bin/ls\",\"-l\"]}", err), MX_OK);
  assert_int_equal(check("proc.kill", "{\"pid\":42,\"signal\":\"KILL\"}", err), MX_OK);
  assert_int_equal(check("proc.list", "{}", err), MX_OK);
}

static void test_every_catalog_example_validates(void **state)
{
  (void)state;
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  assert_true(n >= 19);
  for (size_t i = 0; i < n; i++) {
    char err[MX_ERRBUF_LEN];
    if (check(c[i].name, c[i].example, err) != MX_OK)
      fail_msg("%s example: %s", c[i].name, err);
  }
}

static void test_wrong_type_names_location_and_value(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(check("fs.read", "{\"path\":42}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args.path: expected a string, got 42");
}

static void test_missing_required(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(check("fs.write", "{\"path\":\"/srv/x\"}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args: missing required property 'content'");
}

static void test_additional_property_refused(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(check("fs.stat", "{\"path\":\"/x\",\"follow\":true}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args: unknown property 'follow' (expected one of: path)");
  assert_int_equal(check("proc.list", "{\"all\":true}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args: unknown property 'all' (expected no properties)");
}

static void test_enum_min_max_pattern_items(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(check("proc.kill", "{\"pid\":42,\"signal\":\"BOOM\"}", err), MX_ERR_INVALID);
  assert_non_null(strstr(err, "args.signal: expected one of [\"TERM\""));
  assert_non_null(strstr(err, "got \"BOOM\""));
  assert_int_equal(check("proc.kill", "{\"pid\":1}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args.pid: expected at least 2, got 1");
  assert_int_equal(check("proc.kill", "{\"pid\":2.5}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args.pid: expected an integer, got 2.5");
  assert_int_equal(check("docker.logs", "{\"container\":\"-rm\"}", err), MX_ERR_INVALID);
  assert_non_null(strstr(err, "args.container: expected a value matching"));
  assert_int_equal(check("shell.exec", "{\"argv\":[]}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args.argv: expected at least 1 items, got 0");
  assert_int_equal(check("shell.exec", "{\"argv\":[\"/bin/ls\",3]}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args.argv[1]: expected a string, got 3");
  assert_int_equal(check("fs.read", "{\"path\":\"\"}", err), MX_ERR_INVALID);
  assert_string_equal(err, "args.path: expected at least 1 characters, got \"\"");
}

static void test_not_an_object(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(check("fs.read", "[1,2]", err), MX_ERR_INVALID);
  assert_string_equal(err, "args: expected an object, got [1,2]");
}

/* The catalog and the policy agree on the set of tools: a manifest enabling
 * every catalog tool loads, and !help filters by backend. */
static void test_catalog_matches_policy_and_help(void **state)
{
  (void)state;
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  cJSON *m = cJSON_Parse("{\"version\":1,\"tools\":{}}");
  cJSON *tools = cJSON_GetObjectItem(m, "tools");
  for (size_t i = 0; i < n; i++) {
    cJSON *cfg = cJSON_CreateObject();
    if (c[i].risk == TOOLS_RISK_INTERPRETER)
      cJSON_AddStringToObject(cfg, "approval", "ask");
    cJSON_AddItemToObject(tools, c[i].name, cfg);
    assert_ptr_equal(tools_catalog_find(c[i].name), &c[i]);
  }
  struct tools_manifest *man = NULL;
  char err[MX_ERRBUF_LEN];
  if (tools_policy_parse(m, "all.json", &man, err) != MX_OK)
    fail_msg("%s", err);
  for (size_t i = 0; i < n; i++)
    assert_true(tools_policy_enabled(man, c[i].name));
  tools_manifest_free(man);
  cJSON_Delete(m);
  struct mx_buf b = MX_BUF_INIT(8192);
  assert_int_equal(tools_catalog_help(TOOLS_BACKEND_SSH, &b), MX_OK);
  assert_non_null(strstr(b.buf, "ssh.exec"));
  assert_null(strstr(b.buf, "fs.read"));
  mx_buf_release(&b);
  assert_int_equal(tools_backend_bit("wg"), TOOLS_BACKEND_WG);
  assert_int_equal(tools_backend_bit("carrier-pigeon"), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_args_pass),
      cmocka_unit_test(test_every_catalog_example_validates),
      cmocka_unit_test(test_wrong_type_names_location_and_value),
      cmocka_unit_test(test_missing_required),
      cmocka_unit_test(test_additional_property_refused),
      cmocka_unit_test(test_enum_min_max_pattern_items),
      cmocka_unit_test(test_not_an_object),
      cmocka_unit_test(test_catalog_matches_policy_and_help),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
