/*
 * dev_ssh_exec.c - one command on one channel of an existing session, with
 * the call's deadline and output cap. On the deadline the remote process is
 * sent KILL and the channel closed (libssh has no keepalive of its own, so
 * our deadline is the only liveness guarantee). Output beyond the cap is
 * read and dropped, so the remote side never blocks and we still get the
 * exit status. Layer: devices/ssh; the session is held exclusively.
 */
#include "dev_ssh_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <libssh/callbacks.h>

#include "mx_util.h"

struct exit_info {
  int have_signal;
  int signal;
};

static int signal_number(const char *name)
{
  static const struct {
    const char *name;
    int num;
  } map[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},   {"ABRT", SIGABRT},
             {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
             {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
  for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(map[i].name, name) == 0)
      return map[i].num;
  return name ? -1 : 0;
}

size_t dev_ssh_cap(const struct dev_call *call)
{
  size_t cap = call->max_output ? call->max_output : MX_BUF_MAX_TOOL_OUTPUT;
  return cap < MX_BUF_MAX_TOOL_OUTPUT ? cap : MX_BUF_MAX_TOOL_OUTPUT;
}

mx_err dev_ssh_keep(struct dev_result *r, struct mx_buf *dst, size_t cap, size_t *kept, const void *data, size_t n)
{
  size_t room = cap > *kept ? cap - *kept : 0;
  size_t take = n < room ? n : room;
  if (take && mx_buf_add(dst, data, take))
    return MX_ERR_NOMEM;
  if (!dst->buf && mx_buf_add(dst, "", 0))
    return MX_ERR_NOMEM;
  *kept += take;
  if (take < n)
    r->truncated = 1;
  return MX_OK;
}

#if LIBSSH_VERSION_INT < SSH_VERSION_INT(0, 11, 0)
/* 0.10 has no exit-state getter that reports signals: catch "exit-signal". */
static void on_exit_signal(ssh_session s, ssh_channel ch, const char *sig, int core, const char *msg,
                           const char *lang, void *userdata)
{
  (void)s, (void)ch, (void)core, (void)msg, (void)lang;
  struct exit_info *x = userdata;
  x->have_signal = 1;
  x->signal = signal_number(sig);
}
#endif

static void read_exit(ssh_channel ch, const struct exit_info *x, struct dev_result *r)
{
#if LIBSSH_VERSION_INT >= SSH_VERSION_INT(0, 11, 0)
  (void)x;
  uint32_t code = 0;
  char *sig = NULL;
  int core = 0;
  if (ssh_channel_get_exit_state(ch, &code, &sig, &core) == SSH_OK) {
    r->exit_code = sig ? -1 : (int)code;
    r->signal = signal_number(sig);
  }
  ssh_string_free_char(sig);
#else
  int code = ssh_channel_get_exit_status(ch);
  r->exit_code = x->have_signal ? -1 : code;
  r->signal = x->have_signal ? x->signal : 0;
#endif
}

/* Reads stdout and stderr until EOF or the deadline. Returns MX_OK with
 * *timed_out set on the deadline; an error only when the transport broke. */
static mx_err pump(ssh_channel ch, const struct dev_call *call, int64_t deadline, struct dev_result *r,
                   int *timed_out, char *err)
{
  char buf[16384];
  size_t kept = 0;
  size_t cap = dev_ssh_cap(call);
  for (;;) {
    int64_t left = deadline - mx_mono_ms();
    if (call->cancel && *call->cancel)
      return mx_fail(MX_ERR_CANCELLED, err, "ssh: call cancelled");
    if (left <= 0) {
      *timed_out = 1;
      return MX_OK;
    }
    /* Short slices so the deadline is checked even while stderr alone flows. */
    int n = ssh_channel_read_timeout(ch, buf, sizeof(buf), 0, left < 100 ? (int)left : 100);
    if (n == SSH_ERROR)
      return mx_fail(MX_ERR_UNAVAILABLE, err, "ssh: connection lost while reading output");
    if (n > 0 && dev_ssh_keep(r, &r->out, cap, &kept, buf, (size_t)n))
      return mx_fail(MX_ERR_NOMEM, err, "ssh: out of memory keeping output");
    int e = ssh_channel_read_nonblocking(ch, buf, sizeof(buf), 1);
    if (e == SSH_ERROR)
      return mx_fail(MX_ERR_UNAVAILABLE, err, "ssh: connection lost while reading output");
    if (e > 0 && dev_ssh_keep(r, &r->err, cap, &kept, buf, (size_t)e))
      return mx_fail(MX_ERR_NOMEM, err, "ssh: out of memory keeping output");
    if (n <= 0 && e <= 0 && ssh_channel_is_eof(ch))
      return MX_OK;
  }
}

/* After pump: on the deadline or a cancel, KILL first so the remote command
 * dies even if sshd keeps it around after the channel closes, then close
 * without waiting; otherwise collect the exit state. */
static void settle(ssh_channel ch, const struct dev_call *call, const struct exit_info *x, int timed_out, mx_err rc,
                   struct dev_result *r)
{
  if (rc == MX_ERR_CANCELLED || (!rc && timed_out)) {
    ssh_channel_request_send_signal(ch, "KILL");
    if (rc)
      dev_result_set(r, DEV_FAILED, "ssh: cancelled; remote command killed");
    else
      dev_result_set(r, DEV_TIMEOUT, "ssh: no result within %d ms; remote command killed", call->timeout_ms);
    r->signal = SIGKILL;
  } else if (!rc) {
    ssh_channel_send_eof(ch);
    read_exit(ch, x, r);
    r->status = DEV_DONE;
  }
}

mx_err dev_ssh_exec(ssh_session s, const char *cmd, const struct dev_call *call, struct dev_result *r, int *retry,
                    char *err)
{
  int64_t start = mx_mono_ms();
  int64_t deadline = start + (call->timeout_ms > 0 ? call->timeout_ms : 30000);
  struct exit_info x = {0, 0};
  int timed_out = 0;
  mx_err rc = MX_OK;
  *retry = 0;
#if LIBSSH_VERSION_INT < SSH_VERSION_INT(0, 11, 0)
  struct ssh_channel_callbacks_struct cb;
  memset(&cb, 0, sizeof(cb));
  cb.userdata = &x;
  cb.channel_exit_signal_function = on_exit_signal;
  ssh_callbacks_init(&cb);
#endif
  ssh_channel ch = ssh_channel_new(s);
  if (!ch || ssh_channel_open_session(ch) != SSH_OK) {
    *retry = 1; /* nothing reached the remote side yet */
    rc = mx_fail(MX_ERR_UNAVAILABLE, err, "ssh: cannot open a channel: %s", ssh_get_error(s));
    goto done;
  }
#if LIBSSH_VERSION_INT < SSH_VERSION_INT(0, 11, 0)
  ssh_set_channel_callbacks(ch, &cb);
#endif
  if (ssh_channel_request_exec(ch, cmd) != SSH_OK) {
    rc = mx_fail(MX_ERR_UNAVAILABLE, err, "ssh: exec request failed: %s", ssh_get_error(s));
    goto done;
  }
  rc = pump(ch, call, deadline, r, &timed_out, err);
  settle(ch, call, &x, timed_out, rc, r);
done:
#if LIBSSH_VERSION_INT < SSH_VERSION_INT(0, 11, 0)
  /* A channel closed by us lives on inside libssh until the server's CLOSE
   * arrives (e.g. the exit-signal of a killed command): detach our stack
   * callbacks first or libssh would call into a dead frame. */
  if (ch)
    ssh_remove_channel_callbacks(ch, &cb);
#endif
  if (ch) {
    ssh_channel_close(ch);
    ssh_channel_free(ch);
  }
  r->duration_ms = mx_mono_ms() - start;
  return rc;
}
