/*
 * tools/redact/tools_redact_int.h - what the redactor's files share: one
 * match (the secret's byte range and rule) and the matchers that live
 * outside tools_redact.c. Not for other modules. Layer: tools/redact.
 */
#ifndef TOOLS_REDACT_INT_H
#define TOOLS_REDACT_INT_H

#include <stddef.h>

/* A match: the secret is text[start, end); rule names it. */
struct match {
  size_t start, end;
  const char *rule;
};

/* A well-formed PEM private key block at text[i]: only the base64 body is
 * matched (BEGIN/END lines and everything around stay visible). With
 * exec == 0 (output, logs) an unterminated block's leading base64 lines are
 * matched too; with exec != 0 (arguments that will run) they are not. */
int tools_redact_match_pem(const char *t, size_t len, size_t i, int exec, struct match *m);

/* 1 when t[i] starts a tag this redactor writes, [REDACTED:<rule>:<8 hex>];
 * *n gets its length. */
int tools_redact_is_tag(const char *t, size_t len, size_t i, size_t *n);

#endif
