/*
 * tests/tools/test_tools_schema.c - the schema validator against the real
 * catalog schemas: every kind of violation is caught and the message names
 * the location, what was expected and the bad value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dev.h"
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
  assert_true(n >= 16);
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
  assert_int_equal(tools_catalog_help(dev_served_tools("ssh"), &b), MX_OK);
  assert_non_null(strstr(b.buf, "fs.read"));
  assert_non_null(strstr(b.buf, "shell.exec"));
  assert_null(strstr(b.buf, "fs.write"));
  assert_null(strstr(b.buf, "ssh."));
  mx_buf_release(&b);
  assert_null(dev_served_tools("carrier-pigeon"));
}

/* One name per intent: every name a backend serves is in the catalog, no
 * name carries a transport, and the agent (wg) serves what local serves. */
static void test_backends_serve_catalog_names(void **state)
{
  (void)state;
  for (int k = 0; dev_backend_kinds[k]; k++) {
    const char *const *t = dev_served_tools(dev_backend_kinds[k]);
    assert_non_null(t);
    for (; *t; t++) {
      if (!tools_catalog_find(*t))
        fail_msg("backend %s serves '%s', which is not in the catalog", dev_backend_kinds[k], *t);
      assert_null(strstr(*t, "ssh"));
      assert_null(strstr(*t, "wg"));
    }
  }
  assert_ptr_equal(dev_served_tools("wg"), dev_served_tools("local"));
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  for (size_t i = 0; i < n; i++) {
    int served = 0;
    for (int k = 0; dev_backend_kinds[k]; k++)
      for (const char *const *t = dev_served_tools(dev_backend_kinds[k]); *t; t++)
        served |= strcmp(*t, c[i].name) == 0;
    if (!served)
      fail_msg("catalog tool '%s' is served by no backend", c[i].name);
  }
}

/* Issue 10: a device onboarded with `device add --via ssh` got the linux
 * template, whose tools the ssh backend did not serve: no tools at all.
 * Each template onboarding picks (<os>.json for wg, <os>-ssh.json for ssh)
 * must load and enable only tools its backend serves, and at least fs.read. */
static void test_templates_enable_served_tools(void **state)
{
  (void)state;
  static const char *const t[][2] = {{"linux", "wg"},           {"macos", "wg"},         {"linux-ssh", "ssh"},
                                     {"macos-ssh", "ssh"},      {"windows-ssh", "ssh"}};
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    char p[512], err[MX_ERRBUF_LEN];
    snprintf(p, sizeof(p), "%s/tools/templates/%s.json", MXFLEET_SOURCE_DIR, t[i][0]);
    struct tools_manifest *m = NULL;
    if (tools_policy_load(p, &m, err) != MX_OK)
      fail_msg("%s: %s", p, err);
    struct dev_backend b = {.name = t[i][1], .tools = dev_served_tools(t[i][1])};
    int offered = 0;
    for (size_t k = 0; k < n; k++) {
      if (!tools_policy_enabled(m, c[k].name))
        continue;
      if (!dev_backend_serves(&b, c[k].name))
        fail_msg("%s enables %s, which the %s backend does not serve", p, c[k].name, t[i][1]);
      offered++;
    }
    assert_true(offered > 0);
    assert_true(tools_policy_enabled(m, "fs.read"));
    tools_manifest_free(m);
  }
}

/* A manifest written for an earlier release names ssh.* tools: it fails to
 * load and the message gives the new name. */
static void test_renamed_ssh_tools_load_error(void **state)
{
  (void)state;
  const char *old[][2] = {{"ssh.exec", "shell.exec"}, {"ssh.fs_read", "fs.read"}, {"ssh.fs_list", "fs.list"}};
  for (size_t i = 0; i < 3; i++) {
    char text[256], err[MX_ERRBUF_LEN] = "", want[160];
    snprintf(text, sizeof(text), "{\"version\":1,\"tools\":{\"%s\":{}}}", old[i][0]);
    cJSON *j = cJSON_Parse(text);
    struct tools_manifest *m = NULL;
    assert_int_equal(tools_policy_parse(j, "old.json", &m, err), MX_ERR_CONFIG);
    snprintf(want, sizeof(want), "old.json: tools.%s: '%s' is now called '%s'", old[i][0], old[i][0], old[i][1]);
    if (!strstr(err, want))
      fail_msg("got '%s', want '%s'", err, want);
    cJSON_Delete(j);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_args_pass),
      cmocka_unit_test(test_backends_serve_catalog_names),
      cmocka_unit_test(test_renamed_ssh_tools_load_error),
      cmocka_unit_test(test_templates_enable_served_tools),
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
