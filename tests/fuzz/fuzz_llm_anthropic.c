/*
 * tests/fuzz/fuzz_llm_anthropic.c - the Anthropic Messages answer parser (SSE event:/data:
 * pairs ending in message_stop): streamed lines, whole bodies
 * and error bodies, see fuzz_llm_stream.h.
 */
#include "fuzz_llm_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return fuzz_llm_stream(LLM_KIND_ANTHROPIC, data, size);
}
