/* dev_ssh_quote.c - argv -> one command line quoted for the declared remote
 * shell, and each shell's probe; see dev_ssh_quote.h. */
#include "dev_ssh_quote.h"

#include <stdio.h>
#include <string.h>

#include "mx_util.h"

static const char *const shell_names[] = {"posix", "fish", "cmd", "powershell"};

enum dev_ssh_shell dev_ssh_shell_from_name(const char *name)
{
  if (!name)
    return DEV_SSH_SHELL_POSIX;
  for (size_t i = 0; i < sizeof(shell_names) / sizeof(shell_names[0]); i++)
    if (strcmp(name, shell_names[i]) == 0)
      return (enum dev_ssh_shell)i;
  return DEV_SSH_SHELL_UNKNOWN;
}

const char *dev_ssh_shell_name(enum dev_ssh_shell sh)
{
  return sh < DEV_SSH_SHELL_UNKNOWN ? shell_names[sh] : "unknown";
}

/* POSIX: nothing inside '...' is special; ' itself is closed, escaped, reopened (BashFAQ/096). */
static mx_err quote_posix(const char *arg, size_t n, struct mx_buf *out)
{
  mx_err rc = mx_buf_addc(out, '\'');
  for (size_t i = 0; !rc && i < n; i++)
    rc = arg[i] == '\'' ? mx_buf_add(out, "'\\''", 4) : mx_buf_addc(out, arg[i]);
  return rc ? rc : mx_buf_addc(out, '\'');
}

/* fish: inside '...' exactly \' and \\ are escapes, so both are escaped. */
static mx_err quote_fish(const char *arg, size_t n, struct mx_buf *out)
{
  mx_err rc = mx_buf_addc(out, '\'');
  for (size_t i = 0; !rc && i < n; i++) {
    if (arg[i] == '\'' || arg[i] == '\\')
      rc = mx_buf_addc(out, '\\');
    if (!rc)
      rc = mx_buf_addc(out, arg[i]);
  }
  return rc ? rc : mx_buf_addc(out, '\'');
}

static int is_control(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

/* cmd.exe: inside "..." the operators & | < > ( ) are text, but % and !
 * still expand, ^ and " change the quoting: those are refused. Backslashes
 * before the closing quote are doubled so the program's own argument parser
 * (CommandLineToArgvW rules) does not read \" as a literal quote. */
static mx_err check_cmd(const char *arg, size_t n, const char *where, char *err)
{
  for (size_t i = 0; i < n; i++)
    if (strchr("\"%!^", arg[i]) || is_control((unsigned char)arg[i]))
      return mx_fail(MX_ERR_INVALID, err, "%s: cmd.exe cannot carry this argument safely: expected no \" %% ! ^ or "
                     "control characters, got '%.*s'", where, (int)(n < 200 ? n : 200), arg);
  return MX_OK;
}

static mx_err quote_cmd(const char *arg, size_t n, struct mx_buf *out)
{
  size_t trail = 0;
  while (trail < n && arg[n - 1 - trail] == '\\')
    trail++;
  mx_err rc = mx_buf_addc(out, '"');
  if (!rc)
    rc = mx_buf_add(out, arg, n);
  for (size_t i = 0; !rc && i < trail; i++)
    rc = mx_buf_addc(out, '\\');
  return rc ? rc : mx_buf_addc(out, '"');
}

/* PowerShell: '...' with ' doubled. It also ends a single-quoted string at
 * the look-alikes U+2018..U+201B, and passes " to native programs unescaped
 * (Windows PowerShell): those are refused. */
static mx_err check_powershell(const char *arg, size_t n, const char *where, char *err)
{
  for (size_t i = 0; i < n; i++) {
    const unsigned char *u = (const unsigned char *)arg + i;
    int lookalike = i + 2 < n && u[0] == 0xe2 && u[1] == 0x80 && u[2] >= 0x98 && u[2] <= 0x9b;
    if (arg[i] == '"' || is_control(u[0]) || lookalike)
      return mx_fail(MX_ERR_INVALID, err, "%s: PowerShell cannot carry this argument safely: expected no \", "
                     "curly single quotes or control characters, got '%.*s'", where, (int)(n < 200 ? n : 200), arg);
  }
  return MX_OK;
}

static mx_err quote_powershell(const char *arg, size_t n, struct mx_buf *out)
{
  mx_err rc = mx_buf_addc(out, '\'');
  for (size_t i = 0; !rc && i < n; i++)
    rc = arg[i] == '\'' ? mx_buf_add(out, "''", 2) : mx_buf_addc(out, arg[i]);
  return rc ? rc : mx_buf_addc(out, '\'');
}

mx_err dev_ssh_quote_arg(enum dev_ssh_shell sh, const char *arg, size_t n, const char *where, struct mx_buf *out,
                         char *err)
{
  if (memchr(arg, '\0', n))
    return mx_fail(MX_ERR_INVALID, err, "%s: expected a string without NUL bytes", where);
  if (!mx_utf8_valid(arg, n))
    return mx_fail(MX_ERR_INVALID, err, "%s: expected valid UTF-8", where);
  mx_err rc;
  switch (sh) {
  case DEV_SSH_SHELL_POSIX: rc = quote_posix(arg, n, out); break;
  case DEV_SSH_SHELL_FISH: rc = quote_fish(arg, n, out); break;
  case DEV_SSH_SHELL_CMD:
    if ((rc = check_cmd(arg, n, where, err)) != MX_OK)
      return rc;
    rc = quote_cmd(arg, n, out);
    break;
  case DEV_SSH_SHELL_POWERSHELL:
    if ((rc = check_powershell(arg, n, where, err)) != MX_OK)
      return rc;
    rc = quote_powershell(arg, n, out);
    break;
  default:
    return mx_fail(MX_ERR_DENIED, err, "%s: the remote shell is not known, so no argument can be quoted for it", where);
  }
  if (rc)
    return mx_fail(rc, err, "%s: command line too long", where);
  return MX_OK;
}

mx_err dev_ssh_join_argv(enum dev_ssh_shell sh, const cJSON *argv, const char *where, struct mx_buf *out, char *err)
{
  if (!cJSON_IsArray(argv) || cJSON_GetArraySize(argv) == 0)
    return mx_fail(MX_ERR_INVALID, err, "%s: expected a non-empty array of strings", where);
  int i = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, argv)
  {
    char loc[160];
    snprintf(loc, sizeof(loc), "%s[%d]", where, i);
    if (!cJSON_IsString(a) || !a->valuestring)
      return mx_fail(MX_ERR_INVALID, err, "%s: expected a string", loc);
    if (i > 0 && mx_buf_addc(out, ' '))
      return mx_fail(MX_ERR_TOO_BIG, err, "%s: command line too long", where);
    /* A cJSON string cannot carry NUL (it ends the C string); callers with
     * raw bytes use dev_ssh_quote_arg with an explicit length. */
    mx_err rc = dev_ssh_quote_arg(sh, a->valuestring, strlen(a->valuestring), loc, out, err);
    if (rc)
      return rc;
    i++;
  }
  return MX_OK;
}

/* Per shell: before the working directory, between it and the program, and
 * before the program when there is none. cmd.exe never sees a line that
 * starts with a quote: `cmd /c "..."` would strip the first and the last
 * quote of the line and shift every quoted argument out of its quotes. */
static const struct {
  const char *cd, *then, *run;
} frames[] = {
    [DEV_SSH_SHELL_POSIX] = {"cd ", " && exec ", "exec "},
    [DEV_SSH_SHELL_FISH] = {"cd ", "; and exec ", "exec "},
    [DEV_SSH_SHELL_CMD] = {"cd /d ", " && ", "cd . && "},
    [DEV_SSH_SHELL_POWERSHELL] = {"Set-Location -LiteralPath ", "; & ", "& "},
};

mx_err dev_ssh_command(enum dev_ssh_shell sh, const cJSON *argv, const char *cwd, struct mx_buf *out, char *err)
{
  if (sh >= DEV_SSH_SHELL_UNKNOWN)
    return mx_fail(MX_ERR_DENIED, err, "shell.exec: the device's remote shell is not known to quote for; "
                   "declare it in the manifest (\"shell\": posix, fish, cmd or powershell)");
  mx_err rc = MX_OK;
  if (cwd) {
    if (mx_buf_adds(out, frames[sh].cd))
      return mx_fail(MX_ERR_TOO_BIG, err, "args.cwd: command line too long");
    if ((rc = dev_ssh_quote_arg(sh, cwd, strlen(cwd), "args.cwd", out, err)) != MX_OK)
      return rc;
  }
  if (mx_buf_adds(out, cwd ? frames[sh].then : frames[sh].run))
    return mx_fail(MX_ERR_TOO_BIG, err, "args.argv: command line too long");
  if ((rc = dev_ssh_join_argv(sh, argv, "args.argv", out, err)) != MX_OK)
    return rc;
  if (sh == DEV_SSH_SHELL_POWERSHELL && mx_buf_adds(out, "; exit $LASTEXITCODE"))
    return mx_fail(MX_ERR_TOO_BIG, err, "args.argv: command line too long");
  return MX_OK;
}

/* Each probe only echoes, under every shell: what it prints (or its syntax
 * error) tells the families apart - '\' ends a POSIX word but escapes the
 * quote under fish; 'a''b' is "ab" in POSIX and fish but "a'b" in
 * PowerShell; cmd.exe keeps the double quotes echo was given. */
void dev_ssh_shell_probe(enum dev_ssh_shell sh, const char **cmd, const char **expect)
{
  static const struct {
    const char *cmd, *expect;
  } probes[] = {
      [DEV_SSH_SHELL_POSIX] = {"printf '%s|' '\\' 'a''b'", "\\|ab|"},
      [DEV_SSH_SHELL_FISH] = {"printf '%s|' 'a\\'b' 'c\\\\d'", "a'b|c\\d|"},
      [DEV_SSH_SHELL_CMD] = {"echo \"a^b\"", "\"a^b\""},
      [DEV_SSH_SHELL_POWERSHELL] = {"echo 'a''b'", "a'b"},
  };
  *cmd = sh < DEV_SSH_SHELL_UNKNOWN ? probes[sh].cmd : NULL;
  *expect = sh < DEV_SSH_SHELL_UNKNOWN ? probes[sh].expect : NULL;
}
