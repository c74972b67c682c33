/*
 * tests/fuzz/fuzz_llm_stream.h - the body of the three provider targets
 * (fuzz_llm_openai.c, fuzz_llm_anthropic.c, fuzz_llm_ollama.c), which differ
 * only in the wire format they name. The input is what the provider's HTTP
 * body could be; it goes through the same three paths the router uses:
 *   - streamed: cut into lines exactly as llm/llm_http.c does (at '\n', a
 *     trailing '\r' dropped, the last line without '\n' delivered too), each
 *     line to llm_acc_line, then llm_acc_finish(streamed);
 *   - whole: llm_acc_body + llm_acc_finish;
 *   - error body: llm_provider_error;
 * and a text reply goes through the text-embedded tool call extraction.
 * Properties: every call has our 9-character id, a name and object
 * arguments; error fields stay within their buffers.
 */
#ifndef FUZZ_LLM_STREAM_H
#define FUZZ_LLM_STREAM_H

#include "fuzz_util.h"

#include "llm_msg.h"
#include "llm_provider.h"

static void fuzz_llm_check_reply(const struct llm_reply *r)
{
  for (size_t i = 0; i < r->ncalls; i++) {
    FUZZ_CHECK(strlen(r->calls[i].id) == 9);
    FUZZ_CHECK(r->calls[i].name != NULL);
    FUZZ_CHECK(r->calls[i].args_json != NULL && r->calls[i].args_json[0] == '{');
  }
}

static void fuzz_llm_finish(struct llm_acc *a, int streamed)
{
  static const char *const known[] = {"fs.read", "fs.list", "shell.exec", "proc.list"};
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  if (llm_acc_finish(a, streamed, &r, err) == MX_OK) {
    fuzz_llm_check_reply(&r);
    if (r.ncalls == 0 && r.text) {
      llm_extract_text_calls(&r, known, sizeof(known) / sizeof(known[0]));
      fuzz_llm_check_reply(&r);
    }
    llm_reply_free(&r);
  } else {
    FUZZ_CHECK(err[0] != '\0');
  }
}

static int fuzz_llm_stream(enum llm_kind kind, const uint8_t *data, size_t size)
{
  char *body = fuzz_cstr(data, size);
  struct llm_acc a;

  llm_acc_init(&a, kind);
  size_t start = 0;
  for (size_t i = 0; i <= size; i++) {
    if (i < size && body[i] != '\n')
      continue;
    size_t len = i - start;
    if (i == size && len == 0)
      break;
    if (i < size && len && body[i - 1] == '\r')
      len--;
    if (llm_acc_line(&a, body + start, len))
      break;
    start = i + 1;
  }
  fuzz_llm_finish(&a, 1);
  llm_acc_release(&a);

  char err[MX_ERRBUF_LEN];
  llm_acc_init(&a, kind);
  if (llm_acc_body(&a, body, err) == MX_OK)
    fuzz_llm_finish(&a, 0);
  llm_acc_release(&a);

  char type[64], code[64], msg[256];
  llm_provider_error(body, type, sizeof(type), code, sizeof(code), msg, sizeof(msg));
  FUZZ_CHECK(strlen(type) < sizeof(type) && strlen(code) < sizeof(code) && strlen(msg) < sizeof(msg));
  free(body);
  return 0;
}

#endif
