/*
 * llm_stt_cmd.c - the `command` speech-to-text backend: the audio is written
 * to a private temporary directory (0700, file 0600), the configured argv is
 * run WITHOUT a shell with "{file}" replaced by that path, its stdout is the
 * transcript. The child gets its own process group so a timeout kills it and
 * anything it started. The temporary copy is always removed.
 * Layer: llm; POSIX and common/ only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "llm_stt.h"
#include "mx_util.h"

#define STT_OUT_MAX ((size_t)64 * 1024)
#define STT_ERR_MAX ((size_t)4 * 1024)

/* argv with every "{file}" replaced; NULL-terminated, malloc'd strings. */
static char **make_argv(const struct llm_stt_cfg *c, const char *path)
{
  char **v = calloc(c->ncommand + 1, sizeof(char *));
  for (size_t i = 0; v && i < c->ncommand; i++) {
    struct mx_buf b = MX_BUF_INIT(8192);
    const char *p = c->command[i], *hit;
    mx_err rc = MX_OK;
    while (!rc && (hit = strstr(p, "{file}")) != NULL) {
      rc = mx_buf_add(&b, p, (size_t)(hit - p));
      if (!rc)
        rc = mx_buf_adds(&b, path);
      p = hit + 6;
    }
    if (!rc)
      rc = mx_buf_adds(&b, p);
    v[i] = rc ? NULL : mx_buf_take(&b);
    mx_buf_release(&b);
    if (!v[i]) {
      for (size_t k = 0; k < i; k++)
        free(v[k]);
      free(v);
      return NULL;
    }
  }
  return v;
}

static void free_argv(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static void child(char **argv, int out, int errfd)
{
  setpgid(0, 0);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0)
    dup2(devnull, 0);
  dup2(out, 1);
  dup2(errfd, 2);
  execvp(argv[0], argv);
  dprintf(2, "cannot run '%s': %s", argv[0], strerror(errno));
  _exit(127);
}

/* Reads both pipes until EOF or the deadline. Returns 1 on timeout. */
static int collect(int out, int errfd, int64_t deadline, struct mx_buf *ob, struct mx_buf *eb)
{
  struct pollfd p[2] = {{out, POLLIN, 0}, {errfd, POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    int64_t left = deadline - mx_mono_ms();
    if (left <= 0)
      return 1;
    if (poll(p, 2, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
      return 0;
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char buf[4096];
      ssize_t k = read(p[i].fd, buf, sizeof(buf));
      struct mx_buf *b = i ? eb : ob;
      /* Output over the cap is dropped, not an error: keep draining. */
      if (k > 0 && b->len + (size_t)k < b->max && mx_buf_add(b, buf, (size_t)k) == MX_OK)
        continue;
      if (k <= 0) {
        p[i].fd = -1;
        open_fds--;
      }
    }
  }
  return 0;
}

static mx_err run(const struct llm_stt_cfg *c, char **argv, struct mx_buf *text, char *err)
{
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) != 0)
    return mx_fail(MX_ERR_IO, err, "stt: cannot create a pipe");
  if (pipe2(pe, O_CLOEXEC) != 0) {
    close(po[0]);
    close(po[1]);
    return mx_fail(MX_ERR_IO, err, "stt: cannot create a pipe");
  }
  pid_t pid = fork();
  if (pid == 0)
    child(argv, po[1], pe[1]);
  close(po[1]);
  close(pe[1]);
  struct mx_buf ob = MX_BUF_INIT(STT_OUT_MAX), eb = MX_BUF_INIT(STT_ERR_MAX);
  int timed_out = pid > 0 ? collect(po[0], pe[0], mx_mono_ms() + c->timeout_ms, &ob, &eb) : 0;
  int st = 0;
  if (pid > 0) {
    if (timed_out)
      kill(-pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
  close(po[0]);
  close(pe[0]);
  mx_err rc = MX_OK;
  if (pid < 0)
    rc = mx_fail(MX_ERR_IO, err, "stt: cannot start '%s'", argv[0]);
  else if (timed_out)
    rc = mx_fail(MX_ERR_TIMEOUT, err, "stt: '%s' did not finish within %lld ms", argv[0],
                 (long long)c->timeout_ms);
  else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    char *e = (char *)mx_buf_cstr(&eb);
    mx_rtrim(e);
    rc = mx_fail(MX_ERR_IO, err, "stt: '%s' exited with status %d: %.200s", argv[0],
                 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), e);
  } else if (mx_buf_add(text, mx_buf_cstr(&ob), ob.len)) {
    rc = mx_fail(MX_ERR_NOMEM, err, "stt: transcript too large");
  }
  mx_buf_release(&ob);
  mx_buf_release(&eb);
  return rc;
}

mx_err llm_stt_cmd(const struct llm_stt_cfg *c, const void *audio, size_t n, const char *filename,
                   struct mx_buf *text, char *err)
{
  const char *tmp = getenv("TMPDIR");
  char dir[256];
  snprintf(dir, sizeof(dir), "%s/mxfleet-stt-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(dir))
    return mx_fail(MX_ERR_IO, err, "stt: cannot create a temporary directory under '%s'", tmp ? tmp : "/tmp");
  char *path = mx_path_join(dir, filename);
  char **argv = NULL;
  mx_err rc = path ? mx_file_write(path, audio, n, 0600, err) : MX_ERR_NOMEM;
  if (!rc && !(argv = make_argv(c, path)))
    rc = MX_ERR_NOMEM;
  if (!rc)
    rc = run(c, argv, text, err);
  else if (rc == MX_ERR_NOMEM)
    mx_fail(rc, err, "stt: out of memory");
  free_argv(argv);
  if (path)
    unlink(path);
  rmdir(dir);
  free(path);
  return rc;
}
