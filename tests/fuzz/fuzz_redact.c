/*
 * tests/fuzz/fuzz_redact.c - the redactor over arbitrary bytes (tool output,
 * log lines, approval notices all pass through it). Properties checked for
 * every input: a configured literal never survives, not even a second pass
 * (the engine's output is redacted once more by the log filter); a second
 * pass that finds nothing changes nothing; the log filter agrees with the
 * plain call. A second pass may find more: a tag can give a neighbouring
 * token the word boundary a rule wants ("AKIA...EXAMPLE<literal>"), and a
 * quoted value whose secrets became tags can match a pair rule as a whole,
 * tags included.
 */
#include "fuzz_util.h"

#include <string.h>

#include "tools_redact.h"

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
