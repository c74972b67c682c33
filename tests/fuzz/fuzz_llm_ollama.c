/*
 * tests/fuzz/fuzz_llm_ollama.c - the Ollama /api/chat answer parser (NDJSON lines ending
 * in done:true): streamed lines, whole bodies
 * and error bodies, see fuzz_llm_stream.h.
 */
#include "fuzz_llm_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  return fuzz_llm_stream(LLM_KIND_OLLAMA, data, size);
}
