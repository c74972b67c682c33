/*
 * tests/fuzz/fuzz_redact.c - the redactor over arbitrary bytes (tool output,
 * log lines, approval notices all pass through it). Properties checked for
 * every input: a configured literal never survives; redacting the output
 * again (the engine's output is redacted once more by the log filter)
 * keeps every tag and reveals nothing; the log filter agrees with the plain
 * call. Redacting twice is not always a no-op: a tag can give a neighbouring
 * token the word boundary a rule wants ("AKIA…EXAMPLE<literal>" only
 * matches the AWS rule once the literal is a tag), so the second pass may
 * add tags, never remove them.
 */
#include "fuzz_util.h"

#include <string.h>

#include "tools_redact.h"
#include "tools_redact_int.h"

#define LITERAL "hunter2-config-secret"

static struct tools_redactor *redactor(void)
{
  static struct tools_redactor *r;
  if (!r) {
    char err[MX_ERRBUF_LEN];
    FUZZ_CHECK(tools_redact_new("0123456789abcdef0123456789abcdef", 32, &r, err) == MX_OK);
    FUZZ_CHECK(tools_redact_add_literal(r, "config", LITERAL, err) == MX_OK);
  }
  return r;
}

/* Exact tags only: text that merely starts like one may be redacted away
 * on the second pass (it was never a tag). */
static size_t count_tags(const char *s, size_t n)
{
  size_t c = 0, len = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '[' && tools_redact_is_tag(s, n, i, &len)) {
      c++;
      i += len - 1;
    }
  }
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const struct tools_redactor *r = redactor();
  size_t outlen = 0, againlen = 0;
  int hits = 0;
  char *out = tools_redact(r, (const char *)data, size, &outlen, &hits);
  FUZZ_CHECK(out != NULL);
  FUZZ_CHECK(strlen(out) <= outlen);
  FUZZ_CHECK(memmem(out, outlen, LITERAL, strlen(LITERAL)) == NULL);
  int again_hits = 0;
  char *again = tools_redact(r, out, outlen, &againlen, &again_hits);
  FUZZ_CHECK(again != NULL);
  FUZZ_CHECK(count_tags(again, againlen) >= count_tags(out, outlen));
  FUZZ_CHECK(memmem(again, againlen, LITERAL, strlen(LITERAL)) == NULL);
  if (again_hits == 0)
    FUZZ_CHECK(againlen == outlen && memcmp(again, out, outlen) == 0);
  free(again);

  /* The log filter sees C strings: the text up to the first NUL. */
  char *line = fuzz_cstr(data, size);
  char *filtered = tools_redact_log_filter((void *)r, line);
  char *plain = tools_redact_str(r, line);
  FUZZ_CHECK(plain != NULL);
  if (filtered)
    FUZZ_CHECK(strcmp(filtered, plain) == 0);
  else
    FUZZ_CHECK(strcmp(plain, line) == 0);
  free(filtered);
  free(plain);
  free(line);
  free(out);
  return 0;
}
