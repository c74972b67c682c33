/*
 * tools/redact/tools_redact.h - replaces secrets with [REDACTED:<rule>:<hmac8>]
 * before text leaves the process or hits a log: private key bodies, AWS
 * keys, GitHub / Slack / Matrix / bearer tokens, password=-style pairs
 * (PGPASSWORD=, --password=), URL passwords, mysql -pSECRET, JWTs and
 * literals from config. hmac8 is the first 8 hex chars of HMAC-SHA256 keyed
 * per install, so the same secret always gives the same tag. Only secret
 * values are replaced, in place: a tag never spans a line break, a quote or
 * a shell token boundary, so an approval notice and the audit still show
 * everything that runs.
 * Layer: tools/; common/ only. A redactor is immutable after setup (add all
 * literals first), then safe to use from several threads.
 * Ownership: returned strings are malloc'd, the caller frees them.
 */
#ifndef TOOLS_REDACT_H
#define TOOLS_REDACT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mx_err.h"

/* Text that will run (tool arguments): a private key is masked only as a
 * complete, well-formed block; output and logs also mask a cut-off one. */
#define TOOLS_REDACT_EXEC 1

struct tools_redactor;

/* key: the per-install HMAC key (at least 16 bytes). */
mx_err tools_redact_new(const void *key, size_t keylen, struct tools_redactor **out, char *err);
/* Loads the key from path, creating 32 random bytes (mode 0600) on first use. */
mx_err tools_redact_new_from_file(const char *key_path, struct tools_redactor **out, char *err);
void tools_redact_free(struct tools_redactor *r);
/* A literal secret from config (tokens, passwords); rule names it in the tag
 * ("config" when NULL). Literals shorter than 4 bytes are refused. */
mx_err tools_redact_add_literal(struct tools_redactor *r, const char *rule, const char *secret, char *err);

/* Redacted copy of text[0..len) (NUL-terminated, *outlen set when non-NULL);
 * *count (optional) gets the number of replacements. NULL on out of memory. */
char *tools_redact(const struct tools_redactor *r, const char *text, size_t len, size_t *outlen, int *count);
/* Same with flags (TOOLS_REDACT_EXEC). */
char *tools_redact_ex(const struct tools_redactor *r, const char *text, size_t len, int flags, size_t *outlen,
                      int *count);
/* Tool arguments as they will run: an owned copy of v (cJSON_Delete) whose
 * string values are redacted with TOOLS_REDACT_EXEC; in an argv array of
 * mysql/mariadb, "-pSECRET" becomes "-p[REDACTED:password:..]". NULL on
 * out of memory. v is borrowed. */
cJSON *tools_redact_json(const struct tools_redactor *r, const cJSON *v);
/* Convenience for C strings. */
char *tools_redact_str(const struct tools_redactor *r, const char *s);
/* The tag a secret gets under rule, into out (at least 48 bytes). */
void tools_redact_tag(const struct tools_redactor *r, const char *rule, const char *secret, size_t n,
                      char *out, size_t outsz);

/* An mx_log_filter_fn: ctx is a struct tools_redactor *; returns NULL when
 * the line has nothing to redact. */
char *tools_redact_log_filter(void *ctx, const char *line);

#endif
