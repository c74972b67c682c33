/*
 * test_prov_cfgedit.c - the config text editor of devices/provision: adding
 * a device keeps every other byte, removing it gives the original bytes
 * back, odd strings do not confuse the scanner, and bad input is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prov_int.h"

static cJSON *entry(const char *name)
{
  cJSON *e = cJSON_CreateObject();
  cJSON_AddStringToObject(e, "name", name);
  cJSON *m = cJSON_AddObjectToObject(e, "matrix");
  cJSON_AddStringToObject(m, "user_id", "@agent-x:example.org");
  cJSON_AddStringToObject(m, "password_file", "data/secrets/x.pw");
  return e;
}

/* add then remove must give the exact original text back. */
static void round_trip(const char *orig, const char *name, int want_prefix)
{
  char err[MX_ERRBUF_LEN] = "";
  char *added = NULL, *removed = NULL;
  cJSON *e = entry(name);
  assert_int_equal(prov_cfgedit_add(orig, e, &added, err), MX_OK);
  cJSON *parsed = cJSON_Parse(added);
  assert_non_null(parsed);
  cJSON *devs = cJSON_GetObjectItemCaseSensitive(parsed, "devices");
  cJSON *last = cJSON_GetArrayItem(devs, cJSON_GetArraySize(devs) - 1);
  assert_true(cJSON_Compare(last, e, 1));
  if (want_prefix) /* everything before the insertion point is untouched */
    assert_memory_equal(added, orig, (size_t)want_prefix);
  assert_int_equal(prov_cfgedit_remove(added, name, &removed, err), MX_OK);
  cJSON *back = cJSON_Parse(removed), *o = cJSON_Parse(orig);
  if (!cJSON_GetObjectItemCaseSensitive(o, "devices")) /* the array the add made stays, empty */
    cJSON_AddArrayToObject(o, "devices");
  assert_true(cJSON_Compare(back, o, 1));
  cJSON_Delete(back);
  cJSON_Delete(o);
  cJSON_Delete(parsed);
  cJSON_Delete(e);
  free(added);
  free(removed);
}

static void test_add_after_existing_keeps_bytes(void **state)
{
  (void)state;
  const char *orig = "{\n  \"homeserver\": \"http://x\",\n  \"devices\": [\n    { \"name\": \"a]b\\\"}\", "
                     "\"x\": [1, {\"y\": \"]\"}] }\n  ],\n  \"z\": {\"k\": 1}\n}\n";
  char err[MX_ERRBUF_LEN] = "";
  char *added = NULL, *removed = NULL;
  cJSON *e = entry("pc2");
  assert_int_equal(prov_cfgedit_add(orig, e, &added, err), MX_OK);
  const char *tail = "\n  ],\n  \"z\": {\"k\": 1}\n}\n";
  assert_non_null(strstr(added, "\"name\": \"pc2\""));
  assert_string_equal(added + strlen(added) - strlen(tail), tail);
  assert_int_equal(prov_cfgedit_remove(added, "pc2", &removed, err), MX_OK);
  assert_string_equal(removed, orig); /* byte-identical */
  cJSON_Delete(e);
  free(added);
  free(removed);
}

static void test_add_to_empty_array_and_missing_key(void **state)
{
  (void)state;
  round_trip("{\"homeserver\": \"http://x\", \"devices\": []}", "n1", 0);
  round_trip("{\n  \"homeserver\": \"http://x\"\n}\n", "n2", 26);
  round_trip("{}", "n3", 1);
}

static void test_remove_first_middle_last(void **state)
{
  (void)state;
  const char *t = "{\"devices\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": \"c\"}]}";
  const char *want[] = { "{\"devices\": [{\"name\": \"b\"}, {\"name\": \"c\"}]}",
                         "{\"devices\": [{\"name\": \"a\"}, {\"name\": \"c\"}]}",
                         "{\"devices\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}" };
  const char *names[] = { "a", "b", "c" };
  for (int i = 0; i < 3; i++) {
    char err[MX_ERRBUF_LEN] = "";
    char *out = NULL;
    assert_int_equal(prov_cfgedit_remove(t, names[i], &out, err), MX_OK);
    assert_string_equal(out, want[i]);
    free(out);
  }
}

static void test_errors_are_specific(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  char *out = NULL;
  assert_int_equal(prov_cfgedit_remove("{\"devices\": []}", "ghost", &out, err), MX_ERR_NOT_FOUND);
  assert_string_equal(err, "devices: no device named 'ghost'");
  assert_null(out);
  cJSON *e = entry("x");
  assert_int_equal(prov_cfgedit_add("[1, 2]", e, &out, err), MX_ERR_CONFIG);
  assert_null(out);
  assert_int_equal(prov_cfgedit_add("{\"devices\": ", e, &out, err), MX_ERR_CONFIG);
  cJSON_Delete(e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_add_after_existing_keeps_bytes),
    cmocka_unit_test(test_add_to_empty_array_and_missing_key),
    cmocka_unit_test(test_remove_first_middle_last),
    cmocka_unit_test(test_errors_are_specific),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
