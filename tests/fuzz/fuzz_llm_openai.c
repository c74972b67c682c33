/*
 * tests/fuzz/fuzz_llm_openai.c - the OpenAI Chat Completions answer parser (SSE "data:"
 * lines ending in [DONE]): streamed lines, whole bodies
 * and error bodies, see fuzz_llm_stream.h.
 */
#include "fuzz_llm_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return fuzz_llm_stream(LLM_KIND_OPENAI, data, size);
}
