/*
 * devices/local/dev_local_proc.c - proc.list from /proc (no ps binary) and
 * proc.kill with a named signal; pid 1 and the agent itself are refused.
 * Layer: devices/; common/ only.
 */
#include "dev_local_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_json.h"
#include "mx_util.h"

/* One line: pid ppid state rss_kb comm cmdline. */
static mx_err proc_line(int pid, struct mx_buf *line)
{
  char path[64], buf[4096];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "re");
  if (!f)
    return MX_ERR_NOT_FOUND;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *open_p = strchr(buf, '('), *close_p = strrchr(buf, ')');
  if (!open_p || !close_p || close_p < open_p)
    return MX_ERR_INVALID;
  *close_p = '\0';
  char state = 0;
  int ppid = 0;
  long rss = 0;
  /* Fields after "(comm) ": state ppid ... rss is field 24. */
  if (sscanf(close_p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %*u %*u %ld",
             &state, &ppid, &rss) < 2)
    return MX_ERR_INVALID;
  snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
  char cmd[256] = "";
  f = fopen(path, "re");
  if (f) {
    size_t m = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    for (size_t i = 0; i < m; i++)
      if (cmd[i] == '\0' || !isprint((unsigned char)cmd[i]))
        cmd[i] = ' ';
    cmd[m] = '\0';
    mx_rtrim(cmd);
  }
  return mx_buf_addf(line, "%d %d %c %ld %s %s\n", pid, ppid, state, rss * (sysconf(_SC_PAGESIZE) / 1024),
                     open_p + 1, cmd);
}

static mx_err proc_list(const struct dev_call *c, struct dev_result *r)
{
  DIR *d = opendir("/proc");
  if (!d)
    return dev_result_set(r, DEV_FAILED, "cannot read /proc: %s", strerror(errno));
  struct mx_buf line = MX_BUF_INIT(8192);
  mx_err rc = dev_local_out(r, c->max_output, "PID PPID STATE RSS_KB COMM CMDLINE\n", 34);
  struct dirent *e;
  while (!rc && (e = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0]))
      continue;
    mx_buf_reset(&line);
    if (proc_line(atoi(e->d_name), &line) == MX_OK)
      rc = dev_local_out(r, c->max_output, line.buf, line.len);
  }
  closedir(d);
  mx_buf_release(&line);
  r->exit_code = 0;
  return rc;
}

static int signal_of(const char *name)
{
  static const struct { const char *n; int s; } sigs[] = {
      {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"STOP", SIGSTOP}, {"CONT", SIGCONT}};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
    if (strcmp(sigs[i].n, name) == 0)
      return sigs[i].s;
  return 0;
}

static mx_err proc_kill(const struct dev_call *c, struct dev_result *r)
{
  int64_t pid = 0;
  const char *sig = mx_json_str(c->args, "signal");
  int s = signal_of(sig ? sig : "TERM");
  if (!mx_json_int(c->args, "pid", &pid) || pid <= 1 || pid > 4194304)
    return dev_result_set(r, DEV_REFUSED, "pid: expected a process id above 1");
  if (pid == getpid())
    return dev_result_set(r, DEV_REFUSED, "pid %lld is the agent itself", (long long)pid);
  if (!s)
    return dev_result_set(r, DEV_FAILED, "signal: expected TERM, KILL, HUP, INT, QUIT, USR1, USR2, STOP or CONT");
  if (kill((pid_t)pid, s) != 0)
    return dev_result_set(r, DEV_FAILED, "kill %lld: %s", (long long)pid, strerror(errno));
  r->exit_code = 0;
  return mx_buf_addf(&r->out, "sent SIG%s to %lld", sig ? sig : "TERM", (long long)pid);
}

mx_err dev_local_proc(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err)
{
  (void)l;
  (void)err;
  return strcmp(c->tool, "proc.list") == 0 ? proc_list(c, r) : proc_kill(c, r);
}
