/*
 * llm_runner.h - runs the tool calls of one model reply in parallel with a
 * concurrency cap (pthreads), results in call order.
 * Layer: llm; calls only the struct llm_tools table it is given.
 */
#ifndef LLM_RUNNER_H
#define LLM_RUNNER_H

#include "llm_tools.h"

/* Fills results[0..n) (text malloc'd, never NULL after MX_OK). A tool whose
 * call() fails becomes an is_error result naming the failure. */
mx_err llm_run_calls(const struct llm_tools *tools, const struct llm_tool_call *calls, size_t n, int cap,
                     struct llm_tool_result *results, char *err);

#endif
