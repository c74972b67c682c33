/*
 * llm_prompt.h - system prompts from plain template files under prompts/
 * (users edit them), with {{device}} {{backend}} {{os}} {{tools}} {{policy}}
 * {{now}} placeholders. An unknown placeholder is an error naming it and its
 * line, so a typo in a template is caught, not sent to the model.
 * Layer: llm; reads files only.
 */
#ifndef LLM_PROMPT_H
#define LLM_PROMPT_H

#include "mx_buf.h"
#include "mx_err.h"

struct llm_prompt_vars {
  const char *device, *backend, *os, *tools, *policy, *now;
};

/* where names the template in messages ("prompts/device.md"). */
mx_err llm_prompt_render(const char *tmpl, const char *where, const struct llm_prompt_vars *v, struct mx_buf *out,
                         char *err);
/* A missing template file falls back to the built-in copy of
 * prompts/device.md (one warning per process); an unreadable or malformed
 * one is an error. */
mx_err llm_prompt_load(const char *dir, const char *file, const struct llm_prompt_vars *v, struct mx_buf *out,
                       char *err);

/* The built-in default template (same text as prompts/device.md). */
const char *llm_prompt_builtin(void);

#endif
