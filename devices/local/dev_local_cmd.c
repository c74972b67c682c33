/*
 * devices/local/dev_local_cmd.c - capabilities that run a program: git.*
 * (hardened, in dev_local_git.c), docker.*, pkg.* (dpkg-query,
 * apt-get), shell.exec (argv as given) and shell.eval (sh -c, reached only
 * after the engine's approval). Never a shell for anything but shell.eval.
 * Layer: devices/; common/ only.
 */
#include "dev_local_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_json.h"

#define MAX_ARGV 256

static const char *or_default(const char *v, const char *d) { return v ? v : d; }

static mx_err run(const struct dev_call *c, char **argv, int cwd_fd, char *const env[], struct dev_result *r,
                  char *err)
{
  return dev_local_exec_env(argv, cwd_fd, NULL, env, c->timeout_ms, c->max_output, c->cancel, r, err);
}

static mx_err docker(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err)
{
  const char *dk = or_default(l->o.docker, "/usr/bin/docker");
  const char *name = mx_json_str(c->args, "container");
  char tail[32];
  int64_t n = 100;
  mx_json_int(c->args, "tail", &n);
  snprintf(tail, sizeof(tail), "%lld", (long long)n);
  if (strcmp(c->tool, "docker.ps") == 0) {
    int all = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->args, "all"));
    char *argv[] = {(char *)dk, "ps", "--format", "{{json .}}", all ? "--all" : NULL, NULL};
    return run(c, argv, -1, NULL, r, err);
  }
  if (!name)
    return dev_result_set(r, DEV_FAILED, "container: missing");
  if (strcmp(c->tool, "docker.logs") == 0) {
    char *argv[] = {(char *)dk, "logs", "--tail", tail, "--", (char *)name, NULL};
    return run(c, argv, -1, NULL, r, err);
  }
  char *argv[] = {(char *)dk, "restart", "--", (char *)name, NULL};
  return run(c, argv, -1, NULL, r, err);
}

static mx_err pkg(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err)
{
  static char *const env[] = {"DEBIAN_FRONTEND=noninteractive", NULL};
  if (strcmp(c->tool, "pkg.list") == 0) {
    const char *pattern = mx_json_str(c->args, "pattern");
    char *argv[] = {(char *)or_default(l->o.dpkg_query, "/usr/bin/dpkg-query"), "-W",
                    "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n", "--", (char *)pattern, NULL};
    return run(c, argv, -1, env, r, err);
  }
  const cJSON *pkgs = mx_json_arr(c->args, "packages");
  int n = pkgs ? cJSON_GetArraySize(pkgs) : 0;
  if (n < 1 || n > 64)
    return dev_result_set(r, DEV_FAILED, "packages: expected 1 to 64 names");
  char *argv[64 + 8] = {(char *)or_default(l->o.apt_get, "/usr/bin/apt-get"), "install", "-y",
                        "--no-install-recommends", "--"};
  int a = 5;
  for (int i = 0; i < n; i++) {
    const cJSON *p = cJSON_GetArrayItem(pkgs, i);
    if (!cJSON_IsString(p) || p->valuestring[0] == '-')
      return dev_result_set(r, DEV_FAILED, "packages[%d]: expected a package name", i);
    argv[a++] = p->valuestring;
  }
  argv[a] = NULL;
  return run(c, argv, -1, env, r, err);
}

static mx_err shell_exec(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err)
{
  const cJSON *arr = mx_json_arr(c->args, "argv");
  int n = arr ? cJSON_GetArraySize(arr) : 0;
  if (n < 1 || n >= MAX_ARGV)
    return dev_result_set(r, DEV_FAILED, "argv: expected 1 to %d strings", MAX_ARGV - 1);
  char *argv[MAX_ARGV];
  for (int i = 0; i < n; i++) {
    const cJSON *s = cJSON_GetArrayItem(arr, i);
    if (!cJSON_IsString(s))
      return dev_result_set(r, DEV_FAILED, "argv[%d]: expected a string", i);
    argv[i] = s->valuestring;
  }
  argv[n] = NULL;
  /* cwd is opened through the confined opener and entered with fchdir. */
  const char *cwd = mx_json_str(c->args, "cwd");
  int fd = -1;
  if (cwd) {
    char why[MX_ERRBUF_LEN] = "";
    if (!l->o.open_path)
      return dev_result_set(r, DEV_REFUSED, "no path policy configured: cwd refused");
    mx_err rc = l->o.open_path(l->o.open_ctx, cwd, 0, O_PATH | O_DIRECTORY, 0, &fd, why);
    if (rc)
      return dev_result_set(r, rc == MX_ERR_DENIED ? DEV_REFUSED : DEV_FAILED, "cwd: %s", why);
  }
  mx_err rc = dev_local_exec_env(argv, fd, NULL, NULL, c->timeout_ms, c->max_output, c->cancel, r, err);
  if (fd >= 0)
    close(fd);
  return rc;
}

static mx_err shell_eval(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err)
{
  const char *cmd = mx_json_str(c->args, "command");
  if (!cmd)
    return dev_result_set(r, DEV_FAILED, "command: missing");
  char *argv[] = {(char *)or_default(l->o.sh, "/bin/sh"), "-c", (char *)cmd, NULL};
  return run(c, argv, -1, NULL, r, err);
}

mx_err dev_local_cmd(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err)
{
  if (strncmp(c->tool, "git.", 4) == 0)
    return dev_local_git(l, c, r, err);
  if (strncmp(c->tool, "docker.", 7) == 0)
    return docker(l, c, r, err);
  if (strncmp(c->tool, "pkg.", 4) == 0)
    return pkg(l, c, r, err);
  if (strcmp(c->tool, "shell.exec") == 0)
    return shell_exec(l, c, r, err);
  return shell_eval(l, c, r, err);
}
