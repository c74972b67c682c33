/*
 * tools/tools_catalog.h - the ONE table of tools: name, description, JSON
 * Schema of the arguments, risk class. One name per intent on every backend;
 * which backends serve a tool is theirs to declare (dev_served_tools in
 * devices/dev.h). It feeds the LLM tool list, `!help` and docs/tools/
 * (checked by a test), so they cannot drift. Layer: tools/ -> devices/dev.h
 * (the served-tool lists); common/.
 * Ownership: the table is static; returned cJSON is owned (cJSON_Delete).
 */
#ifndef TOOLS_CATALOG_H
#define TOOLS_CATALOG_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

enum tools_risk {
  TOOLS_RISK_READ = 0,
  TOOLS_RISK_WRITE = 1,
  TOOLS_RISK_DESTRUCTIVE = 2,
  TOOLS_RISK_INTERPRETER = 3
};

struct tools_spec {
  const char *name;        /* "fs.read" */
  const char *summary;     /* one line, for !help */
  const char *description; /* for the model and docs */
  const char *schema;      /* JSON Schema text of the arguments */
  enum tools_risk risk;
  const char *policy;      /* how the manifest governs it (docs, !help) */
  const char *errors;      /* tool-specific failures (docs) */
  const char *example;     /* example arguments (JSON) */
};

const struct tools_spec *tools_catalog(size_t *n);
const struct tools_spec *tools_catalog_find(const char *name);
const char *tools_risk_str(enum tools_risk r);
/* Parsed schema of a tool (owned), NULL when the name is unknown. */
cJSON *tools_catalog_schema(const struct tools_spec *s);
/* `!help` text: one line per catalog tool in served (a NULL-terminated
 * list such as dev_served_tools("ssh"); NULL = all). */
mx_err tools_catalog_help(const char *const *served, struct mx_buf *out);
/* The docs/tools/<name>.md page for a tool (fixed headings: NAME, SYNOPSIS,
 * DESCRIPTION, ARGUMENTS, RISK, BACKENDS, POLICY, ERRORS, EXAMPLE). */
mx_err tools_catalog_doc(const struct tools_spec *s, struct mx_buf *out);
/* docs/tools/README.md: one table row per tool, linking its page. */
mx_err tools_catalog_doc_index(struct mx_buf *out);

#endif
