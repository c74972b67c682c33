/*
 * llm_cli.h - `mxfleet llm test [--provider NAME]`: a live round trip per
 * provider that reports latency and whether tool calling works.
 * Layer: llm; the bot's CLI calls it. Writes only to the given FILE.
 */
#ifndef LLM_CLI_H
#define LLM_CLI_H

#include <stdio.h>

#include "llm_config.h"

/* Returns the process exit code: 0 when every tested provider answered and
 * called the test tool, 1 when any failed, 2 for an unknown provider name. */
int llm_cli_test(const struct llm_config *cfg, const char *provider_or_null, FILE *out);
/* The same round trip to every provider, passing when it answers at all
 * (`mxfleet config check --online`). 0 all answered, 1 any failed. */
int llm_cli_ping(const struct llm_config *cfg, FILE *out);

#endif
