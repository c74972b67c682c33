/*
 * tools/tools_catalog_doc.c - text generated from the catalog table: the
 * `!help` list and the docs/tools/<name>.md pages (fixed headings NAME,
 * SYNOPSIS, DESCRIPTION, ARGUMENTS, RISK, BACKENDS, POLICY, ERRORS, EXAMPLE).
 * The BACKENDS lines come from each backend's own served-tool list.
 * Layer: tools/ -> devices/dev.h; common/.
 */
#include "tools_catalog.h"

#include <string.h>

#include "dev.h"

static int listed(const char *const *list, const char *name)
{
  for (; list && *list; list++)
    if (strcmp(*list, name) == 0)
      return 1;
  return 0;
}

mx_err tools_catalog_help(const char *const *served, struct mx_buf *out)
{
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < n; i++)
    if (!served || listed(served, c[i].name))
      rc = mx_buf_addf(out, "%-15s %-12s %s\n", c[i].name, tools_risk_str(c[i].risk), c[i].summary);
  return rc;
}

/* How each backend carries a tool out, for the docs. */
static const char *backend_label(const char *kind, const char *tool)
{
  if (strcmp(kind, "wg") == 0)
    return "wg (mxfleet-agent)";
  if (strcmp(kind, "ssh") == 0)
    return strncmp(tool, "fs.", 3) == 0 ? "ssh (SFTP)" : "ssh (exec channel)";
  return kind;
}

static mx_err backends_text(const char *tool, struct mx_buf *out)
{
  mx_err rc = MX_OK;
  const char *sep = "";
  for (int k = 0; !rc && dev_backend_kinds[k]; k++) {
    if (!listed(dev_served_tools(dev_backend_kinds[k]), tool))
      continue;
    rc = mx_buf_addf(out, "%s%s", sep, backend_label(dev_backend_kinds[k], tool));
    sep = ", ";
  }
  return rc;
}

/* One bullet per property: name, type, required, constraints, description. */
static mx_err args_text(const struct tools_spec *s, struct mx_buf *out)
{
  cJSON *schema = tools_catalog_schema(s);
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
  const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
  mx_err rc = MX_OK;
  const cJSON *p;
  if (!props || !props->child)
    rc = mx_buf_adds(out, "None.\n");
  cJSON_ArrayForEach(p, props) {
    int required = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, req) required |= cJSON_IsString(r) && strcmp(r->valuestring, p->string) == 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(p, "description");
    cJSON *copy = cJSON_Duplicate(p, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "description");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "type");
    char *cons = copy && copy->child ? cJSON_PrintUnformatted(copy) : NULL;
    if (!rc)
      rc = mx_buf_addf(out, "- `%s` (%s, %s)%s%s", p->string, cJSON_IsString(type) ? type->valuestring : "any",
                       required ? "required" : "optional", desc ? ": " : "", desc ? desc->valuestring : "");
    if (!rc && cons)
      rc = mx_buf_addf(out, "; constraints: `%s`", cons);
    if (!rc)
      rc = mx_buf_adds(out, "\n");
    cJSON_free(cons);
    cJSON_Delete(copy);
  }
  cJSON_Delete(schema);
  return rc;
}

mx_err tools_catalog_doc(const struct tools_spec *s, struct mx_buf *out)
{
  mx_err rc = mx_buf_addf(out,
                          "<!-- generated from tools/tools_catalog.c by tools_gen_docs; do not edit -->\n"
                          "# %s\n\n## NAME\n\n%s - %s\n\n## SYNOPSIS\n\n```json schema\n%s\n```\n\n## DESCRIPTION\n\n%s\n\n"
                          "## ARGUMENTS\n\n",
                          s->name, s->name, s->summary, s->schema, s->description);
  if (!rc)
    rc = args_text(s, out);
  if (!rc)
    rc = mx_buf_addf(out, "\n## RISK\n\n%s\n\n## BACKENDS\n\n", tools_risk_str(s->risk));
  if (!rc)
    rc = backends_text(s->name, out);
  if (!rc)
    rc = mx_buf_addf(out,
                     "\n\n## POLICY\n\n%s. Calls triggered by voice above read risk always ask for approval. "
                     "Every call is recorded in the audit chain before it runs.\n\n## ERRORS\n\n"
                     "Arguments that do not match the schema are returned to the model with the location and the "
                     "expected value. Tool-specific: %s.\n\n## EXAMPLE\n\n```json tool-args\n%s\n```\n",
                     s->policy, s->errors, s->example);
  return rc;
}

mx_err tools_catalog_doc_index(struct mx_buf *out)
{
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  mx_err rc = mx_buf_adds(out,
                          "<!-- generated from tools/tools_catalog.c by tools_gen_docs; do not edit -->\n"
                          "# Tools\n\nOne page per tool, generated from the catalog table that also feeds the model's "
                          "tool list and `!help`. Which of them a device offers depends on its backend and its "
                          "manifest (see ../manifest.md); every call is audited (see ../audit.md).\n\n"
                          "| Tool | Risk | Backends | Summary |\n|---|---|---|---|\n");
  for (size_t i = 0; !rc && i < n; i++) {
    rc = mx_buf_addf(out, "| [%s](%s.md) | %s | ", c[i].name, c[i].name, tools_risk_str(c[i].risk));
    if (!rc)
      rc = backends_text(c[i].name, out);
    if (!rc)
      rc = mx_buf_addf(out, " | %s |\n", c[i].summary);
  }
  return rc;
}
