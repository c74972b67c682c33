/* Canonical JSON: the Matrix spec's appendix examples, byte for byte, and the
 * failure cases (floats, out-of-range integers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mx_json.h"

static void expect_canonical(const char *in, const char *want)
{
  cJSON *v = cJSON_Parse(in);
  assert_non_null(v);
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(mx_json_canonical(v, &out, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&out), want);
  mx_buf_release(&out);
  cJSON_Delete(v);
}

static void spec_examples_match_byte_for_byte(void **state)
{
  (void)state;
  expect_canonical("{}", "{}");
  expect_canonical("{\"one\": 1, \"two\": \"Two\"}", "{\"one\":1,\"two\":\"Two\"}");
  expect_canonical("{\"b\": \"2\", \"a\": \"1\"}", "{\"a\":\"1\",\"b\":\"2\"}");
  expect_canonical(
      "{ \"auth\": { \"success\": true, \"mxid\": \"@john.doe:example.com\", \"profile\": { "
      "\"display_name\": \"John Doe\", \"three_pids\": [ { \"medium\": \"email\", \"address\": "
      "\"john.doe@example.org\" }, { \"medium\": \"msisdn\", \"address\": \"123456789\" } ] } } }",
      "{\"auth\":{\"mxid\":\"@john.doe:example.com\",\"profile\":{\"display_name\":\"John Doe\","
      "\"three_pids\":[{\"address\":\"john.doe@example.org\",\"medium\":\"email\"},{\"address\":"
      "\"123456789\",\"medium\":\"msisdn\"}]},\"success\":true}}");
  expect_canonical("{\"a\": \"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}", "{\"a\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}");
  expect_canonical("{\"\xe6\x9c\xac\": 2, \"\xe6\x97\xa5\": 1}", "{\"\xe6\x97\xa5\":1,\"\xe6\x9c\xac\":2}");
  expect_canonical("{\"a\": \"\\u65E5\"}", "{\"a\":\"\xe6\x97\xa5\"}");
  expect_canonical("{\"a\": null}", "{\"a\":null}");
  expect_canonical("{\"a\": -0, \"b\": 1e10}", "{\"a\":0,\"b\":10000000000}");
}

static void large_integers_stay_integers(void **state)
{
  (void)state;
  expect_canonical("{\"n\": 9007199254740991, \"m\": -9007199254740991}",
                   "{\"m\":-9007199254740991,\"n\":9007199254740991}");
}

static void control_characters_use_short_or_u_escapes(void **state)
{
  (void)state;
  expect_canonical("[\"a\\nb\\t\\u0001\\\"\\\\/\"]", "[\"a\\nb\\t\\u0001\\\"\\\\/\"]");
}

static void expect_reject(const char *in)
{
  cJSON *v = cJSON_Parse(in);
  assert_non_null(v);
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(mx_json_canonical(v, &out, err), MX_ERR_INVALID);
  assert_true(strlen(err) > 0);
  mx_buf_release(&out);
  cJSON_Delete(v);
}

static void floats_and_out_of_range_integers_are_rejected(void **state)
{
  (void)state;
  expect_reject("{\"a\": 1.5}");
  expect_reject("{\"a\": 9007199254740993}");
  expect_reject("[1e300]");
}

static void signing_form_drops_top_level_signatures_and_unsigned_only(void **state)
{
  (void)state;
  cJSON *v = cJSON_Parse("{\"signatures\":{\"x\":1},\"unsigned\":{\"age\":3},\"b\":{\"signatures\":2,\"unsigned\":1},\"a\":1}");
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  assert_int_equal(mx_json_canonical_for_signing(v, &out, NULL), MX_OK);
  assert_string_equal(mx_buf_cstr(&out), "{\"a\":1,\"b\":{\"signatures\":2,\"unsigned\":1}}");
  mx_buf_release(&out);
  cJSON_Delete(v);
}

/* mx_json_delete_wiped: no string of the tree reaches free() with its
 * content (room keys must not linger in freed heap). A cJSON allocator that
 * remembers block sizes checks every block as it is freed. */
struct block {
  void *p;
  size_t n;
};
static struct block blocks[256];
static int secrets_freed, frees;

static void *track_malloc(size_t n)
{
  void *p = malloc(n);
  for (int i = 0; p && i < 256; i++)
    if (!blocks[i].p) {
      blocks[i].p = p;
      blocks[i].n = n;
      break;
    }
  return p;
}

static void track_free(void *p)
{
  for (int i = 0; p && i < 256; i++)
    if (blocks[i].p == p) {
      frees++;
      if (blocks[i].n >= 6 && memmem(p, blocks[i].n, "S3CRET", 6))
        secrets_freed++;
      blocks[i].p = NULL;
    }
  free(p);
}

static void wiped_delete_leaves_no_secret_in_freed_memory(void **state)
{
  (void)state;
  cJSON_Hooks hooks = { track_malloc, track_free };
  cJSON_InitHooks(&hooks);
  const char *text = "{\"content\": {\"session_key\": \"S3CRET-key-material\", \"S3CRET-name\": [\"S3CRET-x\"]}}";
  cJSON *a = cJSON_Parse(text), *b = cJSON_Parse(text);
  assert_non_null(a);
  assert_non_null(b);
  secrets_freed = frees = 0;
  cJSON_Delete(a); /* the control: plain delete frees the secrets as they are */
  assert_true(secrets_freed > 0);
  secrets_freed = frees = 0;
  mx_json_delete_wiped(b);
  assert_true(frees > 0);
  assert_int_equal(secrets_freed, 0);
  mx_json_delete_wiped(NULL);
  cJSON_InitHooks(NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(spec_examples_match_byte_for_byte),
    cmocka_unit_test(large_integers_stay_integers),
    cmocka_unit_test(control_characters_use_short_or_u_escapes),
    cmocka_unit_test(floats_and_out_of_range_integers_are_rejected),
    cmocka_unit_test(signing_form_drops_top_level_signatures_and_unsigned_only),
    cmocka_unit_test(wiped_delete_leaves_no_secret_in_freed_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
