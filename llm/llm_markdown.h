/*
 * llm_markdown.h - a small Markdown -> Matrix HTML (org.matrix.custom.html)
 * renderer for model answers and the bot's notices: ATX headings, emphasis,
 * strikethrough, inline code, fenced code blocks, bullet and numbered lists,
 * block quotes, rules, links (http, https, mailto only), paragraphs. Everything else is HTML-escaped, so
 * model output can never inject markup. Layer: llm; pure.
 */
#ifndef LLM_MARKDOWN_H
#define LLM_MARKDOWN_H

#include "mx_buf.h"
#include "mx_err.h"

mx_err llm_markdown_to_html(const char *md, struct mx_buf *out);

#endif
