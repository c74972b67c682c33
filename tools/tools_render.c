/*
 * tools/tools_render.c - plain text for chat and the CLI (approval notices
 * are in tools_render_notice.c): `!pending`, `!audit [N]`, `!audit verify`. No Matrix markup and no
 * sending; the bot posts what this returns. Layer: tools/; common/ only.
 */
#include "tools_render.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mx_json.h"
#include "mx_util.h"

static void hhmm(int64_t ms, char out[32])
{
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, 32, "%H:%M:%S UTC", &tm);
}

/* Arguments cut to a readable length for a list, saying so: how much is
 * left out and (for a pending action) where to see all of it. */
static mx_err add_args(struct mx_buf *out, const char *args, size_t max, const char *pending_id)
{
  size_t n = strlen(args);
  while (max < n && max && ((unsigned char)args[max] & 0xC0) == 0x80)
    max--;
  if (n <= max)
    return mx_buf_adds(out, args);
  mx_err rc = mx_buf_addf(out, "%.*s... (%zu more bytes not shown", (int)max, args, n - max);
  if (!rc && pending_id)
    rc = mx_buf_addf(out, "; !pending %s shows all", pending_id);
  return rc ? rc : mx_buf_addc(out, ')');
}

static const char *s_or(const cJSON *o, const char *k, const char *d)
{
  const char *s = mx_json_str(o, k);
  return s ? s : d;
}

mx_err tools_render_pending(const cJSON *list, struct mx_buf *out)
{
  int n = cJSON_GetArraySize(list);
  mx_err rc = n ? mx_buf_addf(out, "%d pending approval%s:\n", n, n == 1 ? "" : "s")
                : mx_buf_adds(out, "no pending approvals");
  const cJSON *it;
  cJSON_ArrayForEach(it, list) {
    char exp[32];
    int64_t e = 0;
    mx_json_int(it, "expires_ms", &e);
    hhmm(e, exp);
    char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(it, "args"));
    if (!rc)
      rc = mx_buf_addf(out, "- [%s] %s %s %s: ", s_or(it, "id", "?"), s_or(it, "device", "?"), s_or(it, "risk", "?"),
                       s_or(it, "tool", "?"));
    if (!rc)
      rc = add_args(out, args ? args : "{}", 300, s_or(it, "id", "ID"));
    if (!rc)
      rc = mx_buf_addf(out, " (hash %s, by %s, expires %s)\n", s_or(it, "args_hash", "?"),
                       s_or(it, "requester", "?"), exp);
    cJSON_free(args);
  }
  return rc;
}

mx_err tools_render_audit(const cJSON *records, struct mx_buf *out)
{
  mx_err rc = cJSON_GetArraySize(records) ? MX_OK : mx_buf_adds(out, "no audit records");
  const cJSON *r;
  cJSON_ArrayForEach(r, records) {
    int64_t seq = 0, exit_code = -1, dur = 0;
    mx_json_int(r, "seq", &seq);
    mx_json_int(r, "exit_code", &exit_code);
    mx_json_int(r, "duration_ms", &dur);
    const cJSON *op = mx_json_obj(r, "operator");
    char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r, "args"));
    if (!rc)
      rc = mx_buf_addf(out, "#%lld %s %s %s %s by %s (%s) ", (long long)seq, s_or(r, "time", "?"),
                       s_or(r, "kind", "?"), s_or(r, "tool", "?"), s_or(r, "status", "?"), s_or(op, "mxid", "?"),
                       s_or(r, "decision", "?"));
    if (!rc)
      rc = add_args(out, args ? args : "null", 200, NULL);
    if (!rc && strcmp(s_or(r, "kind", ""), "result") == 0)
      rc = mx_buf_addf(out, " exit %lld, %lld ms", (long long)exit_code, (long long)dur);
    if (!rc && mx_json_str(r, "approval"))
      rc = mx_buf_addf(out, " approval %s", mx_json_str(r, "approval"));
    if (!rc)
      rc = mx_buf_addc(out, '\n');
    cJSON_free(args);
  }
  return rc;
}

mx_err tools_render_verify(const char *device, const struct tools_audit_verify_report *rep, struct mx_buf *out)
{
  return mx_buf_addf(out, "audit %s: %s%s", device, rep->ok ? "" : "PROBLEM: ", rep->message);
}
