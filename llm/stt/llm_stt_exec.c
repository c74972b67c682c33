/*
 * llm/stt/llm_stt_exec.c - runs the converters and a command provider:
 * fork/exec without a shell, own process group, deadline, output caps, and
 * always reaps. llm/ must not call devices/, so this is a small copy of the
 * idea behind dev_local_exec, kept to what speech needs.
 * Layer: llm/; common/ only. Between fork and exec only async-signal-safe
 * calls (the bot is multi-threaded).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "llm_stt_int.h"
#include "mx_util.h"

#define KILL_GRACE_MS 500

static void child(char *const argv[], int out_fd, int err_fd, int status_fd)
{
  int devnull = open("/dev/null", O_RDONLY);
  int e;

  setpgid(0, 0);
  if (devnull >= 0)
    dup2(devnull, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  execvp(argv[0], argv);
  e = errno;
  if (write(status_fd, &e, sizeof e) < 0)
    _exit(127);
  _exit(127);
}

/* Reads what is there into b (dropping past its cap); 0 at EOF. */
static int drain(int fd, struct mx_buf *b, int *truncated)
{
  char tmp[4096];
  ssize_t r = read(fd, tmp, sizeof tmp);

  if (r < 0)
    return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (r == 0)
    return 0;
  if (b->len + (size_t)r > b->max) {
    size_t room = b->max - b->len;
    if (room && mx_buf_add(b, tmp, room) != MX_OK)
      return 0;
    *truncated = 1;
    return 1;
  }
  return mx_buf_add(b, tmp, (size_t)r) == MX_OK;
}

/* Pumps both pipes until EOF or the deadline; kills the group on timeout. */
static void pump(pid_t pid, int fds[2], int64_t deadline_ms, struct mx_buf *out, struct mx_buf *errout,
                 struct stt_exec_result *res)
{
  int open_fds = 2, errtrunc = 0;
  int64_t kill_at = -1;

  while (open_fds > 0) {
    struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    int64_t now = mx_mono_ms(), wait_ms;
    if (!res->timed_out && now >= deadline_ms) {
      res->timed_out = 1;
      kill(-pid, SIGTERM);
      kill_at = now + KILL_GRACE_MS;
    }
    if (kill_at >= 0 && now >= kill_at) {
      /* It ignored SIGTERM (or a grandchild holds the pipes): force it. */
      kill(-pid, SIGKILL);
      break;
    }
    wait_ms = (kill_at >= 0 ? kill_at : deadline_ms) - now;
    if (poll(p, 2, (int)(wait_ms > 1000 ? 1000 : wait_ms < 1 ? 1 : wait_ms)) < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; i++) {
      if (fds[i] >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
          !drain(fds[i], i == 0 ? out : errout, i == 0 ? &res->truncated : &errtrunc)) {
        close(fds[i]);
        fds[i] = -1;
        open_fds--;
      }
    }
  }
}

static void reap(pid_t pid, struct stt_exec_result *res)
{
  int st = 0;

  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(st)) {
    res->exited = 1;
    res->exit_code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    res->signal = WTERMSIG(st);
  }
}

mx_err stt_exec(char *const argv[], int64_t deadline_ms, struct mx_buf *out, struct mx_buf *errout,
                struct stt_exec_result *res, char *err)
{
  int po[2] = {-1, -1}, pe[2] = {-1, -1}, ps[2] = {-1, -1}, fds[2];
  int child_errno = 0;
  mx_err rc = MX_OK;
  pid_t pid;

  memset(res, 0, sizeof *res);
  if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) || pipe2(ps, O_CLOEXEC)) {
    rc = mx_fail(MX_ERR_IO, err, "cannot run '%s': pipe: %s", argv[0], strerror(errno));
    goto cleanup;
  }
  pid = fork();
  if (pid < 0) {
    rc = mx_fail(MX_ERR_IO, err, "cannot run '%s': fork: %s", argv[0], strerror(errno));
    goto cleanup;
  }
  if (pid == 0)
    child(argv, po[1], pe[1], ps[1]);
  setpgid(pid, pid); /* also here, so the group exists before any kill */
  close(po[1]);
  close(pe[1]);
  close(ps[1]);
  po[1] = pe[1] = ps[1] = -1;
  fds[0] = po[0];
  fds[1] = pe[0];
  po[0] = pe[0] = -1;
  pump(pid, fds, deadline_ms, out, errout, res);
  for (int i = 0; i < 2; i++) {
    if (fds[i] >= 0)
      close(fds[i]);
  }
  reap(pid, res);
  if (read(ps[0], &child_errno, sizeof child_errno) == (ssize_t)sizeof child_errno)
    rc = mx_fail(MX_ERR_IO, err, "cannot run '%s': %s", argv[0], strerror(child_errno));
cleanup:
  for (int i = 0; i < 2; i++) {
    if (po[i] >= 0)
      close(po[i]);
    if (pe[i] >= 0)
      close(pe[i]);
    if (ps[i] >= 0)
      close(ps[i]);
  }
  return rc;
}

void stt_exec_describe(const struct stt_exec_result *res, const struct mx_buf *errout, char *out, size_t n)
{
  const char *e = mx_buf_cstr(errout);
  size_t line = strcspn(e, "\n");

  if (res->timed_out)
    snprintf(out, n, "timed out");
  else if (!res->exited)
    snprintf(out, n, "killed by signal %d", res->signal);
  else if (line)
    snprintf(out, n, "exited with status %d: %.*s", res->exit_code, (int)(line > 200 ? 200 : line), e);
  else
    snprintf(out, n, "exited with status %d", res->exit_code);
}
