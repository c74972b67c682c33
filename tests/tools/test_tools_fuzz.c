/*
 * tests/tools/test_tools_fuzz.c - deterministic mutation fuzzing of the
 * parsers that see untrusted input: tool arguments from the model (schema
 * validation, then the manifest check), manifests, checkpoint text from a
 * device, and the redactor over arbitrary bytes. Run under ASan+UBSan this
 * finds out-of-bounds reads, leaks and UB; the assertions check properties
 * that must hold for every input (redaction is stable: redacting twice
 * changes nothing; no seeded secret survives).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tools_audit.h"
#include "tools_catalog.h"
#include "tools_policy.h"
#include "tools_redact.h"
#include "tools_schema.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

/* Flips, inserts or deletes a few bytes of src into dst (NUL-terminated). */
static size_t mutate(const char *src, char *dst, size_t cap)
{
  static const char interesting[] = "{}[]\":,\\/.-*?0123456789eE \n\t\x00\xff\xc3";
  size_t n = strlen(src);
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, src, n);
  int k = 1 + (int)(next() % 4);
  for (int i = 0; i < k; i++) {
    size_t at = n ? next() % n : 0;
    char c = (next() & 1) ? interesting[next() % (sizeof(interesting) - 1)] : (char)(next() & 0xff);
    switch (next() % 3) {
    case 0:
      if (n)
        dst[at] = c;
      break;
    case 1:
      if (n + 1 < cap) {
        memmove(dst + at + 1, dst + at, n - at);
        dst[at] = c;
        n++;
      }
      break;
    default:
      if (n) {
        memmove(dst + at, dst + at + 1, n - at - 1);
        n--;
      }
    }
  }
  dst[n] = '\0';
  return n;
}

static void test_tool_args(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  cJSON *mj = cJSON_Parse("{\"version\":1,\"paths\":{\"read\":[\"/var/log\"],\"write\":[\"/tmp/x\"]},"
                          "\"commands\":{\"allow\":[{\"argv0\":\"/bin/cat\",\"args\":[\"/var/log/*\"]}]},"
                          "\"tools\":{\"fs.read\":{},\"fs.write\":{},\"shell.exec\":{},\"fs.list\":{},\"proc.kill\":{}}}");
  struct tools_manifest *m = NULL;
  assert_int_equal(tools_policy_parse(mj, "fuzz.json", &m, err), MX_OK);
  cJSON_Delete(mj);
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  char buf[512];
  int valid = 0;
  for (int it = 0; it < 20000; it++) {
    const struct tools_spec *s = &c[next() % n];
    mutate(s->example, buf, sizeof(buf));
    cJSON *args = cJSON_Parse(buf);
    if (!args)
      continue;
    cJSON *schema = tools_catalog_schema(s);
    struct tools_policy_result r;
    if (tools_schema_validate(schema, args, err) == MX_OK)
      valid++;
    /* The check must cope even with unvalidated arguments. */
    assert_int_equal(tools_policy_check(m, s->name, args, &r, err), MX_OK);
    cJSON_Delete(schema);
    cJSON_Delete(args);
  }
  assert_true(valid > 100);
  tools_manifest_free(m);
}

static void test_manifests(void **state)
{
  (void)state;
  static const char *const seeds[] = {
      "{\"version\":1,\"platform\":\"windows\",\"paths\":{\"read\":[\"C:\\\\data\"]},\"tools\":{\"fs.read\":{}}}",
      "{\"version\":1,\"paths\":{\"read\":[\"/a\",\"/b/c\"],\"write\":[\"/b/c/d\"]},\"commands\":{\"deny\":[{\"argv0\":\"/bin/rm\"}],"
      "\"ask\":[{\"argv0\":\"/bin/sh\",\"args\":[\"-c\",\"*\"]}],\"allow\":[{\"argv0\":\"/bin/ls\",\"args\":[],\"rest\":\"-*\"}]},"
      "\"tools\":{\"fs.read\":{\"timeout_ms\":5},\"shell.exec\":{},\"shell.eval\":{\"approval\":\"ask\"}},\"defaults\":{\"max_output\":10}}",
  };
  char buf[1024], err[MX_ERRBUF_LEN];
  int ok = 0;
  for (int it = 0; it < 10000; it++) {
    mutate(seeds[it % 2], buf, sizeof(buf));
    cJSON *j = cJSON_Parse(buf);
    struct tools_manifest *m = NULL;
    if (j && tools_policy_parse(j, "fuzz.json", &m, err) == MX_OK) {
      ok++;
      tools_manifest_free(m);
    } else if (j) {
      assert_int_equal(strncmp(err, "fuzz.json", 9), 0); /* errors name the file */
    }
    cJSON_Delete(j);
  }
  assert_true(ok > 10);
}

static void test_checkpoint_text(void **state)
{
  (void)state;
  const char *seed = "mxfleet-audit/pc1\n12\nq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA\n1763755200000\n\n"
                     "\xe2\x80\x94 0123456789abcdef AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
  char buf[512], err[MX_ERRBUF_LEN];
  uint8_t pub[32] = {1};
  for (int it = 0; it < 10000; it++) {
    mutate(seed, buf, sizeof(buf));
    struct tools_audit_checkpoint c;
    tools_audit_checkpoint_parse(buf, (it & 1) ? pub : NULL, &c, err);
  }
}

static void test_redaction_is_stable_and_leak_free(void **state)
{
  (void)state;
  struct tools_redactor *r = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_redact_new("0123456789abcdef0123456789abcdef", 32, &r, err), MX_OK);
  static const char *const secrets[] = {"AKIAIOSFODNN7EXAMPLE", "ghp_1234567890abcdefghijABCDEFGHIJ123456",
                                        "xoxb-123456789012-abcdefghijkl"};
  char buf[512];
  for (int it = 0; it < 20000; it++) {
    size_t n = 0;
    /* Random bytes with a known secret dropped somewhere at a word boundary. */
    size_t len = 16 + next() % 200;
    for (; n < len; n++)
      buf[n] = (char)(next() & 0xff);
    const char *sec = secrets[next() % 3];
    size_t at = next() % (len - 8);
    buf[at] = ' ';
    size_t sl = strlen(sec);
    memcpy(buf + at + 1, sec, sl);
    buf[at + 1 + sl] = ' ';
    n = at + 2 + sl > n ? at + 2 + sl : n;
    size_t outlen = 0, out2len = 0;
    char *out = tools_redact(r, buf, n, &outlen, NULL);
    assert_non_null(out);
    assert_null(memmem(out, outlen, sec, sl));
    char *again = tools_redact(r, out, outlen, &out2len, NULL);
    assert_non_null(again);
    assert_int_equal(out2len, outlen);
    assert_memory_equal(again, out, outlen);
    free(out);
    free(again);
  }
  tools_redact_free(r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tool_args),
      cmocka_unit_test(test_manifests),
      cmocka_unit_test(test_checkpoint_text),
      cmocka_unit_test(test_redaction_is_stable_and_leak_free),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
