/*
 * devices/local/dev_local_exec.c - fork + exec without a shell: own process
 * group, stdin /dev/null, a fixed small environment (the agent's own
 * environment may hold secrets), stdout/stderr drained with poll() under a
 * byte cap, a deadline and a cancel flag, and the child always reaped. The
 * child's exit wakes the same poll() through a pidfd, so a finished command
 * is reaped at once instead of on a timer tick.
 * Layer: devices/; common/ only.
 */
#include "dev_local_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mx_util.h"

#define KILL_GRACE_MS 500   /* SIGTERM, then SIGKILL this much later */
#define LINGER_MS 200       /* after the child exits, drain pipes held by its descendants */
#define CANCEL_POLL_MS 100  /* how often the cancel flag is looked at */
#define MAX_ENV 16

mx_err dev_local_out(struct dev_result *r, size_t max_output, const void *data, size_t n)
{
  size_t used = r->out.len + r->err.len;
  size_t room = used >= max_output ? 0 : max_output - used;
  if (n > room) {
    r->truncated = 1;
    n = room;
  }
  return n ? mx_buf_add(&r->out, data, n) : MX_OK;
}

static void build_env(char *const extra[], const char *home, char **env)
{
  int n = 0;
  env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  env[n++] = "LANG=C.UTF-8";
  env[n++] = "LC_ALL=C.UTF-8";
  env[n++] = (char *)home;
  for (int i = 0; extra && extra[i] && n < MAX_ENV - 1; i++)
    env[n++] = extra[i];
  env[n] = NULL;
}

/* In the child: only async-signal-safe calls until exec. */
static void child(char *const argv[], char **env, int devnull, int out, int errp, int report, int cwd_fd,
                  const char *cwd)
{
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(errp, 2) < 0)
    goto fail;
  if ((cwd_fd >= 0 && fchdir(cwd_fd) != 0) || (cwd_fd < 0 && cwd && chdir(cwd) != 0))
    goto fail;
  execve(argv[0], argv, env);
fail:;
  int e = errno;
  ssize_t w = write(report, &e, sizeof(e));
  (void)w;
  _exit(127);
}

struct pump {
  int fds[2];
  int pidfd; /* readable once the child has exited; -1 when not available or reaped */
  struct dev_result *r;
  size_t max;
};

/* Reads what is ready; closes (sets -1) a pipe at EOF. Also returns when
 * the child exits (pidfd readable). */
static mx_err pump_once(struct pump *p, int wait_ms)
{
  struct pollfd pf[3];
  int n = 0;
  for (int i = 0; i < 2; i++)
    if (p->fds[i] >= 0)
      pf[n++] = (struct pollfd){.fd = p->fds[i], .events = POLLIN};
  if (p->pidfd >= 0)
    pf[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
  if (n == 0) {
    if (wait_ms > 0)
      poll(NULL, 0, wait_ms);
    return MX_OK;
  }
  if (poll(pf, (nfds_t)n, wait_ms) <= 0)
    return MX_OK;
  for (int k = 0; k < n; k++) {
    if (pf[k].fd == p->pidfd || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    char buf[16384];
    ssize_t got = read(pf[k].fd, buf, sizeof(buf));
    int which = pf[k].fd == p->fds[0] ? 0 : 1;
    if (got <= 0) {
      if (got == 0 || errno != EINTR) {
        close(p->fds[which]);
        p->fds[which] = -1;
      }
      continue;
    }
    struct mx_buf *dst = which == 0 ? &p->r->out : &p->r->err;
    size_t used = p->r->out.len + p->r->err.len;
    size_t room = used >= p->max ? 0 : p->max - used;
    size_t keep = (size_t)got < room ? (size_t)got : room;
    if (keep < (size_t)got)
      p->r->truncated = 1; /* the rest is read and dropped so the child never blocks */
    if (keep && mx_buf_add(dst, buf, keep))
      return MX_ERR_NOMEM;
  }
  return MX_OK;
}

static void set_exit(struct dev_result *r, int status)
{
  if (WIFEXITED(status)) {
    r->exit_code = WEXITSTATUS(status);
    r->signal = 0;
  } else if (WIFSIGNALED(status)) {
    r->exit_code = -1;
    r->signal = WTERMSIG(status);
  }
}

/* Waits for the child while draining; stops it at the deadline or on cancel.
 * Returns 1 timeout, 2 cancelled, 0 exited. */
static int supervise(pid_t pid, struct pump *p, int64_t deadline, const volatile int *cancel, int *status)
{
  int stopped = 0;
  int64_t kill_at = 0, linger_until = 0;
  int reaped = 0;
  /* Without a pidfd (kernel < 5.3), once both pipes are closed only
   * waitpid() can tell that the child is gone; look again after 1, 2, 4 ...
   * ms (capped at the cancel poll) so a command that just finished is
   * reaped soon and one that keeps running without its pipes costs little. */
  int idle_ms = 1;
  for (;;) {
    if (!reaped && waitpid(pid, status, WNOHANG) == pid) {
      reaped = 1;
      linger_until = mx_mono_ms() + LINGER_MS;
      if (p->pidfd >= 0)
        close(p->pidfd);
      p->pidfd = -1;
    }
    if (reaped && ((p->fds[0] < 0 && p->fds[1] < 0) || mx_mono_ms() >= linger_until))
      break;
    int64_t now = mx_mono_ms();
    if (!stopped && (now >= deadline || (cancel && *cancel))) {
      stopped = now >= deadline ? 1 : 2;
      kill(-pid, SIGTERM);
      kill_at = now + KILL_GRACE_MS;
    }
    if (stopped && kill_at && now >= kill_at) {
      kill(-pid, SIGKILL);
      kill_at = 0;
    }
    int64_t wait = stopped ? 50 : deadline - now;
    if (wait > CANCEL_POLL_MS)
      wait = CANCEL_POLL_MS;
    if (p->fds[0] < 0 && p->fds[1] < 0 && p->pidfd < 0 && !reaped) {
      if (wait > idle_ms)
        wait = idle_ms;
      if (idle_ms < CANCEL_POLL_MS)
        idle_ms *= 2;
    }
    if (pump_once(p, (int)(wait < 1 ? 1 : wait)))
      break;
  }
  kill(-pid, SIGKILL); /* descendants that outlived the child or held the pipes */
  if (!reaped)
    waitpid(pid, status, 0);
  return stopped;
}

/* Status from how it ended: exec failure (reported through the CLOEXEC
 * pipe), deadline, cancel, or a normal exit / death by signal. */
static void finish(struct dev_result *r, const char *prog, int report_fd, int stopped, int timeout_ms, int status)
{
  int exec_errno = 0;
  if (read(report_fd, &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(exec_errno) && exec_errno)
    dev_result_set(r, DEV_FAILED, "cannot run '%s': %s", prog, strerror(exec_errno));
  else if (stopped == 1)
    dev_result_set(r, DEV_TIMEOUT, "stopped after %d ms (process group signalled)", timeout_ms);
  else if (stopped == 2)
    dev_result_set(r, DEV_FAILED, "cancelled by the operator");
  else
    r->status = DEV_DONE;
  set_exit(r, status);
}

mx_err dev_local_exec_env(char *const argv[], int cwd_fd, const char *cwd, char *const extra_env[], int timeout_ms,
                          size_t max_output, const volatile int *cancel, struct dev_result *r, char *err)
{
  if (!argv || !argv[0] || argv[0][0] != '/')
    return dev_result_set(r, DEV_FAILED, "argv[0]: expected an absolute program path, got '%s'",
                          argv && argv[0] ? argv[0] : "(none)");
  int64_t start = mx_mono_ms();
  int out[2] = {-1, -1}, errp[2] = {-1, -1}, rep[2] = {-1, -1};
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  char home[512];
  const char *h = getenv("HOME");
  snprintf(home, sizeof(home), "HOME=%s", h ? h : "/");
  char *env[MAX_ENV];
  build_env(extra_env, home, env);
  mx_err rc = MX_OK;
  if (devnull < 0 || pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(rep, O_CLOEXEC)) {
    rc = mx_fail(MX_ERR_IO, err, "cannot set up pipes: %s", strerror(errno));
    goto cleanup;
  }
  pid_t pid = fork();
  if (pid < 0) {
    rc = mx_fail(MX_ERR_IO, err, "fork: %s", strerror(errno));
    goto cleanup;
  }
  if (pid == 0)
    child(argv, env, devnull, out[1], errp[1], rep[1], cwd_fd, cwd);
  setpgid(pid, pid); /* also here, so kill(-pid) works even before the child ran */
  close(out[1]);
  close(errp[1]);
  close(rep[1]);
  out[1] = errp[1] = rep[1] = -1;
  struct pump p = {{out[0], errp[0]}, pidfd_open(pid, 0), r, max_output};
  out[0] = errp[0] = -1;
  int status = 0;
  int stopped = supervise(pid, &p, start + (timeout_ms > 0 ? timeout_ms : 30000), cancel, &status);
  for (int i = 0; i < 2; i++)
    if (p.fds[i] >= 0)
      close(p.fds[i]);
  if (p.pidfd >= 0)
    close(p.pidfd);
  finish(r, argv[0], rep[0], stopped, timeout_ms, status);
  r->duration_ms = mx_mono_ms() - start;
cleanup:
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0)
      close(out[i]);
    if (errp[i] >= 0)
      close(errp[i]);
    if (rep[i] >= 0)
      close(rep[i]);
  }
  if (devnull >= 0)
    close(devnull);
  return rc;
}

mx_err dev_local_exec(char *const argv[], const char *cwd, int timeout_ms, size_t max_output,
                      const volatile int *cancel, struct dev_result *r, char *err)
{
  return dev_local_exec_env(argv, -1, cwd, NULL, timeout_ms, max_output, cancel, r, err);
}
