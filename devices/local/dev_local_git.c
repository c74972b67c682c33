/*
 * devices/local/dev_local_git.c - git.status, git.log, git.diff: read-only
 * git in a repository opened through the confined opener. A repository's
 * own config can name programs (filter drivers, fsmonitor, hooks, external
 * diff, textconv, pager, gpg for log.showSignature, transports for lazy
 * fetches), so git runs with no system or global config, every such setting
 * overridden on the command line (filters by the names the repository
 * defines), no transport allowed, no optional index writes, the work tree
 * pinned to the repository and a ceiling just above it: a directory below
 * a root that is not itself a work tree never reaches a parent repository
 * outside the root. A ".git" that is a file or symlink (which could point
 * anywhere) is refused. git's own ownership check (safe.directory) stays.
 * Layer: devices/; common/ only.
 */
#include "dev_local_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_json.h"

#define GIT_MAX_FILTERS 16
#define GIT_MAX_ARGV (32 + 8 * GIT_MAX_FILTERS)
#define GIT_CONFIG_OUTPUT_MAX 65536

/* Settings that name a program or change what git touches, each set to
 * something inert. Command-line config wins over the repository's. */
static const char *const git_overrides[] = {
    "core.fsmonitor=false", "core.hooksPath=/dev/null", "core.pager=cat", "core.editor=false",
    "core.askPass=", "core.sshCommand=false", "diff.external=", "log.showSignature=false",
    "gpg.program=false", "gpg.openpgp.program=false", "gpg.x509.program=false", "gpg.ssh.program=false",
    "protocol.allow=never", "safe.bareRepository=explicit", "submodule.recurse=false", NULL};

struct git_run {
  char real[4096];        /* the repository's real path (from its fd) */
  char ceiling[4200];     /* GIT_CEILING_DIRECTORIES=<parent> */
  char worktree[4200];    /* GIT_WORK_TREE=<real> */
  char *env[16];
  char *argv[GIT_MAX_ARGV];
  int argc;
  char filters[GIT_MAX_FILTERS][4][160]; /* "filter.<x>.clean=" ... */
  int nfilters;
};

static void add(struct git_run *g, const char *a)
{
  if (g->argc < GIT_MAX_ARGV - 1)
    g->argv[g->argc++] = (char *)a;
  g->argv[g->argc] = NULL;
}

/* Real path of the opened repository and the environment built on it. */
static int make_env(struct git_run *g, int fd)
{
  char link[64];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, g->real, sizeof(g->real) - 1);
  if (n <= 0 || g->real[0] != '/')
    return -1;
  g->real[n] = '\0';
  char *slash = strrchr(g->real, '/');
  size_t plen = slash == g->real ? 1 : (size_t)(slash - g->real);
  snprintf(g->ceiling, sizeof(g->ceiling), "GIT_CEILING_DIRECTORIES=%.*s", (int)plen, g->real);
  snprintf(g->worktree, sizeof(g->worktree), "GIT_WORK_TREE=%s", g->real);
  static char *const fixed[] = {"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
                                "GIT_PAGER=cat", "GIT_OPTIONAL_LOCKS=0", "GIT_ATTR_NOSYSTEM=1",
                                "GIT_ALLOW_PROTOCOL=", "GIT_NO_REPLACE_OBJECTS=1", NULL};
  int k = 0;
  for (; fixed[k]; k++)
    g->env[k] = fixed[k];
  g->env[k++] = g->ceiling;
  g->env[k++] = g->worktree;
  g->env[k] = NULL;
  return 0;
}

/* The base command: hardened options, then every filter the repository
 * defines switched off by name (a filter with an empty command is skipped;
 * required=false so that is not an error). */
static void base_argv(struct git_run *g, const char *gitp)
{
  g->argc = 0;
  add(g, gitp);
  add(g, "--no-pager");
  add(g, "--no-optional-locks");
  for (int i = 0; git_overrides[i]; i++) {
    add(g, "-c");
    add(g, git_overrides[i]);
  }
  for (int i = 0; i < g->nfilters; i++)
    for (int k = 0; k < 4; k++) {
      add(g, "-c");
      add(g, g->filters[i][k]);
    }
}

static int have_filter(const struct git_run *g, const char *name, size_t len)
{
  for (int i = 0; i < g->nfilters; i++)
    if (strncmp(g->filters[i][0] + 7, name, len) == 0 && g->filters[i][0][7 + len] == '.')
      return 1;
  return 0;
}

/* Collects "filter.<x>.*" names from `git config --name-only`, which only
 * reads config files (with the same hardened environment). */
static mx_err collect_filters(struct git_run *g, const struct dev_call *c, int fd, struct dev_result *r, char *err)
{
  struct dev_result cr;
  dev_result_init(&cr);
  base_argv(g, g->argv[0]);
  add(g, "config");
  add(g, "--includes");
  add(g, "--name-only");
  add(g, "--get-regexp");
  add(g, "^filter\\.");
  mx_err rc = dev_local_exec_env(g->argv, fd, NULL, g->env, c->timeout_ms, GIT_CONFIG_OUTPUT_MAX, c->cancel, &cr, err);
  const char *p = mx_buf_cstr(&cr.out);
  while (!rc && cr.status == DEV_DONE && *p) {
    const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
    const char *dot = NULL;
    for (const char *q = end; q > p + 7; q--)
      if (q[-1] == '.') {
        dot = q - 1;
        break;
      }
    size_t len = dot ? (size_t)(dot - (p + 7)) : 0;
    if (len && len < 120 && !have_filter(g, p + 7, len)) {
      if (g->nfilters == GIT_MAX_FILTERS) {
        dev_result_set(r, DEV_REFUSED, "repository config defines more than %d filter drivers: refused",
                       GIT_MAX_FILTERS);
        rc = MX_ERR_DENIED;
        break;
      }
      static const char *const keys[] = {"clean=", "smudge=", "process=", "required=false"};
      for (int k = 0; k < 4; k++)
        snprintf(g->filters[g->nfilters][k], sizeof(g->filters[0][0]), "filter.%.*s.%s", (int)len, p + 7, keys[k]);
      g->nfilters++;
    }
    p = nl ? nl + 1 : end;
  }
  dev_result_release(&cr);
  return rc;
}

/* The repository must be a work tree with a real ".git" directory. */
static mx_err check_layout(int fd, const char *repo, struct dev_result *r)
{
  struct stat st;
  if (fstatat(fd, ".git", &st, AT_SYMLINK_NOFOLLOW) != 0)
    return dev_result_set(r, DEV_REFUSED, "repo '%s': expected a git work tree with a .git directory, found none",
                          repo),
           MX_ERR_DENIED;
  if (!S_ISDIR(st.st_mode))
    return dev_result_set(r, DEV_REFUSED, "repo '%s': .git is a %s, not a directory: refused (it could point outside "
                          "every root)", repo, S_ISLNK(st.st_mode) ? "symlink" : "file"),
           MX_ERR_DENIED;
  return MX_OK;
}

static void tool_argv(struct git_run *g, const struct dev_call *c, char *count)
{
  if (strcmp(c->tool, "git.status") == 0) {
    add(g, "status");
    add(g, "--porcelain=v1");
    add(g, "--branch");
    add(g, "--ignore-submodules=all");
  } else if (strcmp(c->tool, "git.log") == 0) {
    add(g, "log");
    add(g, "--no-show-signature");
    add(g, "--format=%h %ad %an: %s");
    add(g, "--date=short");
    add(g, count);
  } else {
    add(g, "diff");
    add(g, "--no-ext-diff");
    add(g, "--no-textconv");
    add(g, "--ignore-submodules=all");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->args, "staged")))
      add(g, "--cached");
  }
}

mx_err dev_local_git(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err)
{
  const char *repo = mx_json_str(c->args, "repo");
  char why[MX_ERRBUF_LEN] = "";
  int fd = -1;
  if (!repo)
    return dev_result_set(r, DEV_FAILED, "repo: missing");
  if (!l->o.open_path)
    return dev_result_set(r, DEV_REFUSED, "no path policy configured: repository access refused");
  mx_err rc = l->o.open_path(l->o.open_ctx, repo, 0, O_PATH | O_DIRECTORY, 0, &fd, why);
  if (rc)
    return dev_result_set(r, rc == MX_ERR_DENIED ? DEV_REFUSED : DEV_FAILED, "%s", why);
  struct git_run *g = calloc(1, sizeof(*g));
  char count[32];
  int64_t n = 20;
  mx_json_int(c->args, "max_count", &n);
  snprintf(count, sizeof(count), "-n%lld", (long long)n);
  if (!g) {
    rc = mx_fail(MX_ERR_NOMEM, err, "out of memory");
    goto cleanup;
  }
  if (check_layout(fd, repo, r))
    goto cleanup;
  if (make_env(g, fd) != 0) {
    dev_result_set(r, DEV_FAILED, "repo '%s': cannot resolve its real path (is /proc mounted?)", repo);
    goto cleanup;
  }
  g->argv[0] = (char *)(l->o.git ? l->o.git : "/usr/bin/git");
  if ((rc = collect_filters(g, c, fd, r, err)) != MX_OK) {
    rc = rc == MX_ERR_DENIED ? MX_OK : rc;
    goto cleanup;
  }
  base_argv(g, g->argv[0]);
  tool_argv(g, c, count);
  rc = dev_local_exec_env(g->argv, fd, NULL, g->env, c->timeout_ms, c->max_output, c->cancel, r, err);
cleanup:
  free(g);
  close(fd);
  return rc;
}
