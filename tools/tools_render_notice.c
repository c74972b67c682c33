/*
 * tools/tools_render_notice.c - approval notices; see tools_render_notice.h.
 * The head is chosen by the shape of the arguments (argv, command,
 * path+content, packages, container, pid), not by tool name, so renamed or
 * new tools still read well; any other argument is listed in the details.
 * Layer: tools/; common/ only.
 */
#include "tools_render_notice.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mx_json.h"
#include "mx_util.h"

#define HEAD_CODE_MAX 100 /* longer commands go into the block below the head */

void tools_notice_init(struct tools_notice *n)
{
  mx_buf_init(&n->head, MX_BUF_MAX_SMALL);
  mx_buf_init(&n->shown, MX_BUF_MAX_TOOL_OUTPUT);
  mx_buf_init(&n->details, MX_BUF_MAX_SMALL);
}

void tools_notice_release(struct tools_notice *n)
{
  mx_buf_release(&n->head);
  mx_buf_release(&n->shown);
  mx_buf_release(&n->details);
}

/* One argv element as a POSIX shell would need it to mean the same. */
static mx_err add_shell_word(struct mx_buf *b, const char *w)
{
  size_t n = strlen(w);
  if (n && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-[]") == n)
    return mx_buf_adds(b, w);
  mx_err rc = mx_buf_addc(b, '\'');
  for (const char *c = w; !rc && *c; c++)
    rc = *c == '\'' ? mx_buf_adds(b, "'\\''") : mx_buf_addc(b, *c);
  return rc ? rc : mx_buf_addc(b, '\'');
}

static mx_err argv_line(const cJSON *argv, struct mx_buf *b)
{
  mx_err rc = MX_OK;
  const cJSON *a;
  cJSON_ArrayForEach(a, argv) {
    if (!rc && b->len)
      rc = mx_buf_addc(b, ' ');
    if (!rc)
      rc = add_shell_word(b, cJSON_IsString(a) ? a->valuestring : "?");
  }
  return rc;
}

static int fits_head(const char *s, size_t n)
{
  return n <= HEAD_CODE_MAX && !memchr(s, '\n', n) && !memchr(s, '`', n) && !memchr(s, '\r', n);
}

static size_t count_lines(const char *s, size_t n)
{
  size_t k = n && s[n - 1] != '\n';
  for (size_t i = 0; i < n; i++)
    k += s[i] == '\n';
  return k;
}

/* "Run `cmd` on dev?" when cmd is short and one line, else a description
 * of the block below; the block gets the full text either way when long. */
static mx_err head_run(struct tools_notice *n, const char *what, const char *cmd, const char *dev)
{
  size_t len = strlen(cmd);
  if (fits_head(cmd, len))
    return mx_buf_addf(&n->head, "Run `%s` on %s?", cmd, dev);
  mx_err rc = mx_buf_addf(&n->head, "Run this %s (%zu line%s) on %s?", what, count_lines(cmd, len),
                          count_lines(cmd, len) == 1 ? "" : "s", dev);
  return rc ? rc : mx_buf_adds(&n->shown, cmd);
}

/* The head from the arguments' shape; *used lists the keys it showed. */
static mx_err head_for(const struct tools_pending *p, const cJSON *args, struct tools_notice *n, const char **used)
{
  const cJSON *argv = cJSON_GetObjectItemCaseSensitive(args, "argv");
  const char *cmd = mx_json_str(args, "command"), *path = mx_json_str(args, "path");
  const char *content = mx_json_str(args, "content"), *cont = mx_json_str(args, "container");
  const cJSON *pkgs = cJSON_GetObjectItemCaseSensitive(args, "packages");
  int64_t pid = 0;
  if (cJSON_IsArray(argv)) {
    struct mx_buf line = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
    mx_err rc = argv_line(argv, &line);
    if (!rc)
      rc = head_run(n, "command", mx_buf_cstr(&line), p->device);
    mx_buf_release(&line);
    used[0] = "argv";
    return rc;
  }
  if (cmd) {
    used[0] = "command";
    return head_run(n, "shell script", cmd, p->device);
  }
  if (path && content) {
    const char *mode = mx_json_str(args, "mode");
    used[0] = "path", used[1] = "content", used[2] = "mode";
    mx_err rc = mx_buf_addf(&n->head, "%s %zu byte%s (%zu line%s) %s `%s` on %s?",
                            mode && strcmp(mode, "append") == 0 ? "Append" : "Write", strlen(content),
                            strlen(content) == 1 ? "" : "s", count_lines(content, strlen(content)),
                            count_lines(content, strlen(content)) == 1 ? "" : "s",
                            mode && strcmp(mode, "append") == 0 ? "to the end of" :
                            mode && strcmp(mode, "create") == 0 ? "to the new file" : "over", path, p->device);
    return rc ? rc : mx_buf_adds(&n->shown, content);
  }
  if (cJSON_IsArray(pkgs)) {
    struct mx_buf line = MX_BUF_INIT(MX_BUF_MAX_SMALL);
    mx_err rc = argv_line(pkgs, &line);
    used[0] = "packages";
    if (!rc)
      rc = mx_buf_addf(&n->head, "Install `%s` on %s?", mx_buf_cstr(&line), p->device);
    mx_buf_release(&line);
    return rc;
  }
  if (cont) {
    used[0] = "container";
    return mx_buf_addf(&n->head, "%s container `%s` on %s?", strcmp(p->tool, "docker.restart") == 0 ? "Restart" : "Act on",
                       cont, p->device);
  }
  if (mx_json_int(args, "pid", &pid)) {
    const char *sig = mx_json_str(args, "signal");
    used[0] = "pid", used[1] = "signal";
    return mx_buf_addf(&n->head, "Send SIG%s to process %lld on %s?", sig ? sig : "TERM", (long long)pid, p->device);
  }
  return mx_buf_addf(&n->head, "Run `%s` on %s?", p->tool, p->device);
}

static int is_used(const char *k, const char *const *used)
{
  for (int i = 0; i < 3; i++)
    if (used[i] && strcmp(used[i], k) == 0)
      return 1;
  return 0;
}

/* Every argument the head did not show, one "key: value" line each. */
static mx_err other_args(const cJSON *args, const char *const *used, struct mx_buf *b)
{
  mx_err rc = MX_OK;
  const cJSON *a;
  cJSON_ArrayForEach(a, args) {
    if (rc || is_used(a->string, used))
      continue;
    char *v = cJSON_IsString(a) ? NULL : cJSON_PrintUnformatted(a);
    rc = mx_buf_addf(b, "%s: %s\n", a->string, v ? v : a->valuestring);
    cJSON_free(v);
  }
  return rc;
}

static mx_err add_expiry(const struct tools_pending *p, int64_t now_ms, struct mx_buf *b)
{
  int64_t left = p->expires_ms - now_ms;
  time_t s = (time_t)(p->expires_ms / 1000);
  struct tm tm;
  char at[16];
  gmtime_r(&s, &tm);
  strftime(at, sizeof(at), "%H:%M UTC", &tm);
  if (left <= 0)
    return mx_buf_addf(b, "expired (%s)", at);
  if (left < 60000)
    return mx_buf_addf(b, "expires in %lld s (%s)", (long long)((left + 999) / 1000), at);
  return mx_buf_addf(b, "expires in %lld min (%s)", (long long)((left + 59999) / 60000), at);
}

/* Cuts the block at TOOLS_NOTICE_SHOWN_MAX (on a line break when there is
 * one nearby, never inside a UTF-8 sequence) and says what was left out. */
static mx_err cut_shown(const struct tools_pending *p, struct tools_notice *n)
{
  if (n->shown.len <= TOOLS_NOTICE_SHOWN_MAX)
    return MX_OK;
  size_t keep = TOOLS_NOTICE_SHOWN_MAX;
  const char *nl = NULL;
  for (size_t i = keep; i > keep / 2 && !nl; i--)
    if (n->shown.buf[i - 1] == '\n')
      nl = n->shown.buf + i;
  if (nl)
    keep = (size_t)(nl - n->shown.buf);
  while (keep && ((unsigned char)n->shown.buf[keep] & 0xC0) == 0x80)
    keep--;
  size_t hidden = n->shown.len - keep;
  size_t lines = count_lines(n->shown.buf + keep, hidden);
  n->shown.len = keep;
  n->shown.buf[keep] = '\0';
  return mx_buf_addf(&n->details,
                     "NOT SHOWN: %zu more bytes (%zu line%s) of what runs. Send !pending %s to see all of it "
                     "before you approve.\n",
                     hidden, lines, lines == 1 ? "" : "s", p->id);
}

static mx_err render(const struct tools_pending *p, int64_t now_ms, struct tools_notice *n, int whole)
{
  cJSON *args = cJSON_Parse(p->args_json ? p->args_json : "{}");
  cJSON *origin = p->origin_json ? cJSON_Parse(p->origin_json) : NULL;
  const char *heard = mx_json_str(origin, "transcript");
  const char *used[3] = {NULL, NULL, NULL};
  mx_err rc = args ? head_for(p, args, n, used) : mx_buf_addf(&n->head, "Run `%s` on %s?", p->tool, p->device);
  if (!rc && heard)
    rc = mx_buf_addf(&n->details, "Heard (voice): \"%s\"\n", heard);
  if (!rc)
    rc = mx_buf_addf(&n->details, "Risk: %s; %s\n", p->risk, p->reason ? p->reason : "the manifest asks for approval");
  if (!rc && args)
    rc = other_args(args, used, &n->details);
  if (!rc && !args)
    rc = mx_buf_addf(&n->details, "arguments: %s\n", p->args_json ? p->args_json : "");
  if (!rc && !whole)
    rc = cut_shown(p, n);
  if (!rc)
    rc = mx_buf_addf(&n->details, "Action %s, tool %s, args hash %s, ", p->id, p->tool, p->args_hash);
  if (!rc)
    rc = add_expiry(p, now_ms, &n->details);
  if (!rc && !whole)
    rc = mx_buf_addf(&n->details,
                     "\nTap \xe2\x9c\x85 to approve or \xe2\x9d\x8c to deny, or reply \"approve %s\" / \"deny %s\".",
                     p->id, p->id);
  cJSON_Delete(args);
  cJSON_Delete(origin);
  return rc;
}

mx_err tools_render_notice(const struct tools_pending *p, int64_t now_ms, struct tools_notice *n)
{
  return render(p, now_ms, n, 0);
}

mx_err tools_notice_text(const struct tools_notice *n, struct mx_buf *out)
{
  mx_err rc = mx_buf_addf(out, "%s\n", mx_buf_cstr(&n->head));
  if (!rc && n->shown.len)
    rc = mx_buf_addf(out, "%s%s", mx_buf_cstr(&n->shown), n->shown.buf[n->shown.len - 1] == '\n' ? "" : "\n");
  return rc ? rc : mx_buf_adds(out, mx_buf_cstr(&n->details));
}

mx_err tools_render_action_full(const struct tools_pending *p, int64_t now_ms, struct mx_buf *out)
{
  struct tools_notice n;
  tools_notice_init(&n);
  mx_err rc = render(p, now_ms, &n, 1);
  if (!rc)
    rc = tools_notice_text(&n, out);
  tools_notice_release(&n);
  return rc;
}
