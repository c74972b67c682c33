/* test_llm_fuzz.c - deterministic mutation fuzzing of every parser that
 * reads untrusted model output: SSE/NDJSON stream lines and whole bodies of
 * the three formats, provider error bodies, argument normalisation,
 * text-embedded call extraction, stored history JSON and the Markdown
 * renderer. Seeded PRNG, fixed iteration count, so a failure replays; run
 * under ASan+UBSan it catches memory errors on malformed input. The check
 * is that nothing crashes or leaks and every reply stays well-formed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "llm_markdown.h"
#include "llm_provider.h"

#define ITERATIONS 20000

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t next(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

static const char *const seeds[] = {
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"fs.list\",\"arguments\":\"{\\\"p\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello **world**\"}}],\"usage\":{\"prompt_tokens\":1e308}}",
    "data: [DONE]",
    "event: content_block_start",
    "data: {\"type\":\"content_block_start\",\"index\":63,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"x\",\"input\":{\"a\":[1,2]}}}",
    "data: {\"type\":\"content_block_delta\",\"index\":64,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"\"}}",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":-5}}",
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":null}}",
    "{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"a\",\"arguments\":\"{bad\"}}]},\"done\":true}",
    "{\"error\":{\"message\":\"x\",\"type\":7,\"code\":null}}",
    "Sure <tool_call>{\"name\":\"fs.list\",\"arguments\":{\"path\":\"/\"}}</tool_call> <tool_call>{\"name\":",
    "```json\n{\"name\": \"fs.list\", \"parameters\": \"{}\"}\n```",
    "# T\n- **a** `b` [c](https://d) _e_\n```sh\nx\n",
    "{\"role\":1,\"calls\":[{\"id\":\"0123456789abc\",\"name\":null,\"args\":5}]}",
};

/* A mutated copy of a seed: byte flips, truncation, duplication, insertion
 * of structural characters. */
static char *mutate(const char *seed, size_t *len)
{
  size_t n = strlen(seed);
  size_t cap = n * 2 + 64;
  char *s = malloc(cap + 1);
  assert_non_null(s);
  memcpy(s, seed, n);
  int edits = 1 + (int)(next() % 8);
  static const char structural[] = "{}[]\":,\\\n<>`*_#-0 ";
  for (int e = 0; e < edits; e++) {
    uint32_t op = next() % 5;
    size_t at = n ? next() % n : 0;
    if (op == 0 && n)
      s[at] = (char)(next() & 0xFF);
    else if (op == 1 && n)
      n = at; /* truncate */
    else if (op == 2 && n + 1 < cap) {
      memmove(s + at + 1, s + at, n - at);
      s[at] = structural[next() % (sizeof(structural) - 1)];
      n++;
    } else if (op == 3 && n && n * 2 < cap) {
      memcpy(s + n, s, n); /* duplicate */
      n *= 2;
    } else if (op == 4 && n)
      s[at] = structural[next() % (sizeof(structural) - 1)];
  }
  s[n] = '\0';
  *len = n;
  return s;
}

static void check_reply(const struct llm_reply *r)
{
  for (size_t i = 0; i < r->ncalls; i++) {
    assert_int_equal(strlen(r->calls[i].id), 9);
    assert_non_null(r->calls[i].name);
    assert_non_null(r->calls[i].args_json);
    assert_int_equal(r->calls[i].args_json[0], '{');
  }
}

static void streams_and_bodies(void **state)
{
  (void)state;
  const enum llm_kind kinds[] = {LLM_KIND_OPENAI, LLM_KIND_ANTHROPIC, LLM_KIND_OLLAMA};
  for (int it = 0; it < ITERATIONS; it++) {
    struct llm_acc a;
    llm_acc_init(&a, kinds[it % 3]);
    int lines = 1 + (int)(next() % 6);
    for (int k = 0; k < lines; k++) {
      size_t n;
      char *s = mutate(seeds[next() % (sizeof(seeds) / sizeof(seeds[0]))], &n);
      llm_acc_line(&a, s, strlen(s)); /* stops at an embedded NUL like a line would */
      if (next() % 2)
        llm_acc_line(&a, "", 0);
      free(s);
    }
    struct llm_reply r;
    char err[MX_ERRBUF_LEN];
    if (llm_acc_finish(&a, (int)(next() % 2), &r, err) == MX_OK) {
      check_reply(&r);
      llm_reply_free(&r);
    }
    llm_acc_release(&a);
    /* the same inputs as whole bodies and error bodies */
    size_t n;
    char *s = mutate(seeds[next() % (sizeof(seeds) / sizeof(seeds[0]))], &n);
    llm_acc_init(&a, kinds[(it + 1) % 3]);
    if (llm_acc_body(&a, s, err) == MX_OK && llm_acc_finish(&a, 0, &r, err) == MX_OK) {
      check_reply(&r);
      llm_reply_free(&r);
    }
    llm_acc_release(&a);
    char t[64], c[64], m[256];
    llm_provider_error(s, t, sizeof(t), c, sizeof(c), m, sizeof(m));
    free(s);
  }
}

static void text_calls_arguments_history_markdown(void **state)
{
  (void)state;
  const char *const known[] = {"fs.list", "a", "x"};
  for (int it = 0; it < ITERATIONS; it++) {
    size_t n;
    char *s = mutate(seeds[next() % (sizeof(seeds) / sizeof(seeds[0]))], &n);
    struct llm_reply r;
    memset(&r, 0, sizeof(r));
    r.text = strdup(s);
    assert_non_null(r.text);
    llm_extract_text_calls(&r, known, 3);
    check_reply(&r);
    llm_reply_free(&r);
    char *out = NULL;
    char err[MX_ERRBUF_LEN];
    llm_args_from_text(s, &out, err);
    free(out);
    struct llm_conv c;
    llm_conv_init(&c);
    llm_msg_from_json(s, &c, err);
    for (size_t i = 0; i < c.n; i++) {
      char *j = NULL;
      assert_int_equal(llm_msg_to_json(&c.v[i], &j), MX_OK);
      free(j);
    }
    llm_conv_free(&c);
    struct mx_buf html = MX_BUF_INIT(1 << 20);
    assert_int_equal(llm_markdown_to_html(s, &html), MX_OK);
    assert_null(strstr(mx_buf_cstr(&html), "<script"));
    mx_buf_release(&html);
    free(s);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(streams_and_bodies),
      cmocka_unit_test(text_calls_arguments_history_markdown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
