/*
 * tools/policy/tools_policy_check.c - deciding one call: the policy meaning
 * of each tool, the interpreter list, command rules (absolute argv[0] plus
 * one pattern per argument (tools_policy_glob.c), deny -> ask -> allow, first match wins,
 * deny by default) and the lexical path check (components under a root, no
 * ".."). The kernel-enforced check happens where the file is opened
 * (tools_policy_open), since for remote devices the path is not here.
 * Layer: tools/; common/ only. args are borrowed.
 */
#include "tools_policy_int.h"

#include <fnmatch.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_json.h"

static const struct policy_kind_entry kinds[] = {
    {"fs.read", PK_PATH_READ, "path", 0},     {"fs.list", PK_PATH_READ, "path", 0},
    {"fs.stat", PK_PATH_READ, "path", 0},     {"fs.write", PK_PATH_WRITE, "path", 1},
    {"git.status", PK_REPO, "repo", 0},       {"git.log", PK_REPO, "repo", 0},
    {"git.diff", PK_REPO, "repo", 0},         {"docker.ps", PK_PLAIN, NULL, 0},
    {"docker.logs", PK_PLAIN, NULL, 0},       {"docker.restart", PK_PLAIN, NULL, 1},
    {"pkg.list", PK_PLAIN, NULL, 0},          {"pkg.install", PK_PLAIN, NULL, 1},
    {"proc.list", PK_PLAIN, NULL, 0},         {"proc.kill", PK_PLAIN, NULL, 1},
    {"shell.exec", PK_COMMAND, "argv", 0},    {"shell.eval", PK_EVAL, "command", 1},
};

/* Names of earlier releases, when SSH had tools of its own: a manifest
 * naming one fails to load with the name to use instead. */
static const char *const renamed[][2] = {
    {"ssh.exec", "shell.exec"}, {"ssh.fs_read", "fs.read"}, {"ssh.fs_list", "fs.list"}};

const char *policy_renamed_tool(const char *old)
{
  for (size_t i = 0; old && i < sizeof(renamed) / sizeof(renamed[0]); i++)
    if (strcmp(renamed[i][0], old) == 0)
      return renamed[i][1];
  return NULL;
}

const struct policy_kind_entry *policy_kind_of(const char *tool)
{
  for (size_t i = 0; tool && i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strcmp(kinds[i].tool, tool) == 0)
      return &kinds[i];
  return NULL;
}

/* Programs that run arbitrary code or other programs: shells, language
 * runtimes, wrappers that exec their arguments, privilege changers, remote
 * shells, and tools with an exec hatch (find -exec, awk system(), vi :!). */
static const char *const interpreters[] = {
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "ash", "busybox", "toybox",
    "python*", "pypy*", "perl*", "ruby*", "irb", "node", "nodejs", "deno", "bun", "php*", "lua*", "luajit",
    "tclsh*", "wish*", "expect", "guile*", "R", "Rscript", "julia", "osascript", "pwsh", "powershell*",
    "cmd", "cmd.exe", "env", "xargs", "sudo", "su", "doas", "pkexec", "runuser", "ssh", "nice", "nohup",
    "timeout", "stdbuf", "setsid", "chroot", "unshare", "nsenter", "systemd-run", "script", "strace",
    "ltrace", "gdb", "watch", "flock", "parallel", "find", "awk", "gawk", "mawk", "nawk", "sed", "vi", "vim",
    "nvim", "ex", "ed", "emacs", "less", "more", "man", "make", "git-shell", "docker", "podman", "kubectl",
    "crontab", "at", "batch",
    /* the dynamic loader runs any file it is given; archivers, copiers and
     * package tools run hooks or helper programs named in their arguments
     * (tar --to-command, rsync -e, zip -TT, openssl engines, git -c, apt -o,
     * dpkg maintainer scripts); more wrappers that exec their arguments */
    "ld-linux*.so*", "ld-*.so*", "ld.so", "git", "tar", "rsync", "zip", "openssl", "rbash", "yash", "posh",
    "elvish", "nu", "xonsh", "time", "ionice", "chrt", "taskset", "prlimit", "setarch", "linux32", "linux64",
    "setpriv", "capsh", "sg", "newgrp", "bwrap", "firejail", "systemd-nspawn", "machinectl", "run-parts",
    "start-stop-daemon", "unbuffer", "sshpass", "rlwrap", "valgrind", "perf", "bpftrace", "ip", "socat", "nc",
    "ncat", "netcat", "scp", "sftp", "tmux", "screen", "nano", "pico", "mc", "dpkg", "apt", "apt-get",
    "aptitude", "rpm", "yum", "dnf", "zypper", "pip*", "npm", "npx", "yarn", "gem", "cargo", "go", "cc",
    "gcc*", "clang*", NULL};

/* Windows programs that run scripts or other programs; matched like the
 * list above, after a Windows extension is dropped. */
static const char *const windows_interpreters[] = {
    "wsl", "wslhost", "cscript", "wscript", "mshta", "rundll32", "regsvr32", "msiexec", "forfiles",
    "schtasks", "runas", "conhost", "msbuild", "installutil", "certutil", "bitsadmin", "wmic", "powershell_ise",
    NULL};

static int listed(const char *const *list, const char *base)
{
  for (int i = 0; list[i]; i++)
    if (fnmatch(list[i], base, FNM_CASEFOLD) == 0)
      return 1;
  return 0;
}

int tools_policy_is_interpreter(const char *argv0)
{
  if (!argv0)
    return 0;
  const char *base = argv0;
  for (const char *p = argv0; *p; p++)
    if (*p == '/' || *p == '\\')
      base = p + 1;
  if (listed(interpreters, base))
    return 1;
  /* "pwsh.exe", "BASH.EXE", "wsl.com": the same programs under Windows names;
   * a .bat or .cmd file is always run by cmd.exe. */
  const char *dot = strrchr(base, '.');
  char stem[256];
  if (!dot || (size_t)(dot - base) >= sizeof(stem))
    return 0;
  if (strcasecmp(dot, ".bat") == 0 || strcasecmp(dot, ".cmd") == 0)
    return 1;
  if (strcasecmp(dot, ".exe") != 0 && strcasecmp(dot, ".com") != 0)
    return 0;
  memcpy(stem, base, (size_t)(dot - base));
  stem[dot - base] = '\0';
  return listed(interpreters, stem) || listed(windows_interpreters, stem);
}

const char *tools_decision_str(enum tools_decision d)
{
  switch (d) {
  case TOOLS_ALLOW: return "allow";
  case TOOLS_ASK: return "ask";
  case TOOLS_DENY: return "deny";
  }
  return "?";
}

static const struct policy_tool *tool_cfg(const struct tools_manifest *m, const char *tool)
{
  for (int i = 0; i < m->ntools; i++)
    if (strcmp(m->tools[i].name, tool) == 0)
      return &m->tools[i];
  return NULL;
}

int tools_policy_enabled(const struct tools_manifest *m, const char *tool) { return tool_cfg(m, tool) != NULL; }

struct tools_limits tools_policy_limits(const struct tools_manifest *m, const char *tool)
{
  const struct policy_tool *t = tool_cfg(m, tool);
  return t ? t->limits : m->defaults;
}

static void set(struct tools_policy_result *res, enum tools_decision d, const char *fmt, const char *a, const char *b)
{
  res->decision = d;
  snprintf(res->reason, sizeof(res->reason), fmt, a ? a : "", b ? b : "");
}

/* 1 when arg has a ".." component, '/' and '\\' both separating (Windows
 * takes either, and '*' crosses a '\\'). */
static int has_dotdot(const char *arg)
{
  for (const char *p = arg; (p = strstr(p, "..")) != NULL; p += 2) {
    int start = p == arg || p[-1] == '/' || p[-1] == '\\';
    int end = !p[2] || p[2] == '/' || p[2] == '\\';
    if (start && end)
      return 1;
  }
  return 0;
}

/* One argument against one pattern (tools_policy_glob.c): strict for
 * allow/ask rules, loose for deny rules. In a strict rule an argument with
 * a ".." component only matches a pattern that spells ".." out. */
static int arg_matches(const char *pat, const char *arg, int strict)
{
  if (!policy_glob(pat, arg, strict))
    return 0;
  return !strict || !has_dotdot(arg) || strstr(pat, "..") != NULL;
}

static int rule_matches(const struct policy_rule *r, const cJSON *argv, int argc)
{
  if (strcmp(cJSON_GetArrayItem(argv, 0)->valuestring, r->argv0) != 0)
    return 0;
  if (r->any_args)
    return 1;
  if (argc - 1 < r->npats || (!r->rest && argc - 1 != r->npats))
    return 0;
  int strict = r->kind != TOOLS_DENY;
  for (int i = 1; i < argc; i++) {
    const char *pat = i - 1 < r->npats ? r->pats[i - 1] : r->rest;
    if (!arg_matches(pat, cJSON_GetArrayItem(argv, i)->valuestring, strict))
      return 0;
  }
  return 1;
}

static void check_command(const struct tools_manifest *m, const cJSON *argv, struct tools_policy_result *res)
{
  int argc = cJSON_IsArray(argv) ? cJSON_GetArraySize(argv) : 0;
  for (int i = 0; i < argc; i++)
    if (!cJSON_IsString(cJSON_GetArrayItem(argv, i)))
      argc = 0;
  if (argc == 0) {
    set(res, TOOLS_DENY, "argv: expected a non-empty array of strings", NULL, NULL);
    return;
  }
  const char *argv0 = cJSON_GetArrayItem(argv, 0)->valuestring;
  int drive = m->windows && argv0[0] && argv0[1] == ':' && (argv0[2] == '/' || argv0[2] == '\\');
  if (argv0[0] != '/' && !drive) {
    set(res, TOOLS_DENY, "argv[0]: expected an absolute program path, got '%.200s'%s", argv0, NULL);
    return;
  }
  for (int i = 0; i < m->nrules; i++) {
    if (!rule_matches(&m->rules[i], argv, argc))
      continue;
    /* Defence in depth: the loader refuses interpreter allow rules. */
    enum tools_decision d = m->rules[i].kind;
    if (d == TOOLS_ALLOW && tools_policy_is_interpreter(argv0))
      d = TOOLS_ASK;
    set(res, d, "%s matched%s", m->rules[i].where, d == TOOLS_ASK ? " (needs approval)" : "");
    return;
  }
  set(res, TOOLS_DENY, "no command rule allows '%.200s' with these arguments%s", argv0, NULL);
}

static void check_path(const struct tools_manifest *m, const char *path, int write, struct tools_policy_result *res)
{
  if (!path) {
    set(res, TOOLS_DENY, "missing path argument%s%s", NULL, NULL);
    return;
  }
  char *buf = malloc(strlen(path) + 1);
  char *comps[POLICY_MAX_COMPS];
  int n = buf ? policy_split(path, m->windows, buf, comps, POLICY_MAX_COMPS) : -1;
  for (int k = 0; k < n; k++)
    if (strcmp(comps[k], "..") == 0)
      n = -2;
  if (n == -2)
    set(res, TOOLS_DENY, "path '%.200s' contains '..'%s", path, NULL);
  else if (n < 0)
    set(res, TOOLS_DENY, "path: expected an absolute path, got '%.200s'%s", path, NULL);
  else if (policy_find_root(write ? m->write : m->read, write ? m->nwrite : m->nread, comps, n, m->windows) < 0)
    set(res, TOOLS_DENY, "path '%.200s' is outside every %s root", path, write ? "writable" : "readable");
  else
    res->decision = TOOLS_ALLOW;
  free(buf);
}

mx_err tools_policy_check_path_cb(void *manifest, const char *path, char *err)
{
  struct tools_policy_result res;
  memset(&res, 0, sizeof(res));
  check_path(manifest, path, 0, &res);
  if (res.decision == TOOLS_DENY)
    return mx_fail(MX_ERR_DENIED, err, "%s", res.reason);
  return MX_OK;
}

const char *tools_policy_shell(const struct tools_manifest *m) { return m ? m->shell : NULL; }

mx_err tools_policy_check(const struct tools_manifest *m, const char *tool, const cJSON *args,
                          struct tools_policy_result *res, char *err)
{
  (void)err;
  memset(res, 0, sizeof(*res));
  const struct policy_kind_entry *k = policy_kind_of(tool);
  const struct policy_tool *t = k ? tool_cfg(m, tool) : NULL;
  res->limits = t ? t->limits : m->defaults;
  if (!k || !t) {
    set(res, TOOLS_DENY, "tool '%.100s' is not enabled in this device's manifest%s", tool, NULL);
    return MX_OK;
  }
  res->decision = TOOLS_ALLOW;
  switch (k->kind) {
  case PK_PATH_READ:
  case PK_REPO:
    check_path(m, mx_json_str(args, k->arg), 0, res);
    break;
  case PK_PATH_WRITE:
    check_path(m, mx_json_str(args, k->arg), 1, res);
    break;
  case PK_COMMAND:
    check_command(m, cJSON_GetObjectItemCaseSensitive(args, k->arg), res);
    /* A working directory changes what relative arguments mean: it must be
     * under a readable root like any other path. */
    if (res->decision != TOOLS_DENY && mx_json_str(args, "cwd")) {
      struct tools_policy_result cw = *res;
      check_path(m, mx_json_str(args, "cwd"), 0, &cw);
      if (cw.decision == TOOLS_DENY)
        *res = cw;
    }
    break;
  case PK_EVAL:
    set(res, TOOLS_ASK, "shell.eval always needs approval%s%s", NULL, NULL);
    return MX_OK;
  case PK_PLAIN:
    break;
  }
  if (res->decision == TOOLS_ALLOW && t->ask)
    set(res, TOOLS_ASK, "manifest: tools.%s.approval is 'ask'%s", tool, NULL);
  else if (res->decision == TOOLS_ALLOW && !res->reason[0])
    set(res, TOOLS_ALLOW, "manifest enables %s%s", tool, NULL);
  return MX_OK;
}
