/*
 * tools/tools_render.h - plain-text renderings for chat and CLI (no Matrix
 * markup, no sending): `!pending`, `!audit [N]`,
 * `!audit verify`, and the `mxfleet audit verify|show` entry points.
 * Layer: tools/; the bot sends what these produce. cJSON inputs are borrowed.
 */
#ifndef TOOLS_RENDER_H
#define TOOLS_RENDER_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"
#include "tools_approvals.h"
#include "tools_audit.h"
#include "tools_render_notice.h"

/* `!pending`: list from tools_approvals_list_pending. */
mx_err tools_render_pending(const cJSON *list, struct mx_buf *out);
/* `!audit [N]`: records from tools_audit_recent. */
mx_err tools_render_audit(const cJSON *records, struct mx_buf *out);
/* `!audit verify`. */
mx_err tools_render_verify(const char *device, const struct tools_audit_verify_report *rep, struct mx_buf *out);

/* `mxfleet audit verify [--device NAME]`: devices NULL/n == 0 = every chain
 * under data_dir/audit. Returns the process exit code: 0 ok, 1 tampered or
 * truncated, 2 could not verify. */
int tools_audit_cli_verify(const char *data_dir, const char *const *devices, int n, FILE *out);
/* `mxfleet audit show --device NAME [--since TIME] [--json]`; since is NULL,
 * an ISO-8601 UTC time (2026-11-21T20:00:00Z) or a relative age ("2h", "30m",
 * "7d"). Exit code 0 ok, 2 error (message on out). */
int tools_audit_cli_show(const char *data_dir, const char *device, const char *since, int json, FILE *out);

#endif
