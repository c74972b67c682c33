/*
 * dev_ssh.c - the "ssh" dev_backend: configuration copy, the one reused
 * session and its mutex, reconnect on failure, and tool dispatch.
 * Layer: devices/ssh; calls common/ and libssh, never tools/ or above.
 * cJSON args in dev_call are borrowed; health info is owned by the caller.
 */
#include "dev_ssh_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"
#include "dev_ssh_quote.h"

struct dev_ssh {
  struct dev_backend base; /* first: the backend pointer is this struct */
  struct dev_ssh_config cfg;
  pthread_mutex_t mu;      /* one thread at a time on the session (threading.dox) */
  ssh_session session;     /* NULL until connected or after a failure */
  int connects;
};

typedef mx_err (*tool_fn)(struct dev_ssh *d, const struct dev_call *call, struct dev_result *r, int *retry,
                          char *err);

static int connect_timeout(const struct dev_ssh *d, const struct dev_call *call)
{
  int t = d->cfg.connect_timeout_ms;
  if (call && call->timeout_ms > 0 && call->timeout_ms < t)
    t = call->timeout_ms;
  return t;
}

static mx_err ensure_session(struct dev_ssh *d, const struct dev_call *call, char *err)
{
  if (d->session && ssh_is_connected(d->session))
    return MX_OK;
  dev_ssh_disconnect(d->session);
  d->session = NULL;
  mx_err rc = dev_ssh_connect(&d->cfg, connect_timeout(d, call), &d->session, err);
  if (rc)
    return rc;
  d->connects++;
  mx_info(d->cfg.device, "ssh connected host=%s port=%d", d->cfg.host, d->cfg.port);
  return MX_OK;
}

static mx_err tool_exec(struct dev_ssh *d, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  /* "exec": the login shell (dash forks otherwise) is replaced by the
   * program, so our KILL reaches it and its own exit signal is reported. */
  struct mx_buf cmd = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = mx_buf_adds(&cmd, "exec ");
  if (!rc)
    rc = dev_ssh_join_argv(mx_json_arr(call->args, "argv"), "args.argv", &cmd, err);
  if (!rc)
    rc = dev_ssh_exec(d->session, mx_buf_cstr(&cmd), call, r, retry, err);
  mx_buf_release(&cmd);
  return rc;
}

static mx_err tool_eval(struct dev_ssh *d, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  /* The one way to reach the remote shell; tools/ only routes shell.eval
   * here when the device's manifest allows it (and it always asks). */
  const char *cmd = mx_json_str(call->args, "command");
  if (!cmd || !*cmd)
    return mx_fail(MX_ERR_INVALID, err, "shell.eval args.command: expected a non-empty string");
  if (!mx_utf8_valid(cmd, strlen(cmd)))
    return mx_fail(MX_ERR_INVALID, err, "shell.eval args.command: expected valid UTF-8");
  return dev_ssh_exec(d->session, cmd, call, r, retry, err);
}

static mx_err tool_read(struct dev_ssh *d, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  return dev_ssh_fs_read(d->session, call, r, retry, err);
}

static mx_err tool_list(struct dev_ssh *d, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  return dev_ssh_fs_list(d->session, call, r, retry, err);
}

static const struct {
  const char *tool;
  tool_fn fn;
} tools[] = {
    {"ssh.exec", tool_exec},    {"shell.exec", tool_exec},  {"shell.eval", tool_eval},
    {"ssh.fs_read", tool_read}, {"ssh.fs_list", tool_list},
};

static tool_fn find_tool(const char *name)
{
  for (size_t i = 0; name && i < sizeof(tools) / sizeof(tools[0]); i++)
    if (strcmp(tools[i].tool, name) == 0)
      return tools[i].fn;
  return NULL;
}

/* One attempt, then one reconnect and retry only when the first failure
 * happened before the command reached the host (a dead session found when
 * opening the channel); anything later is not retried, since the command
 * may have run. Host-key and auth failures are permanent: never retried. */
static mx_err run_locked(struct dev_ssh *d, tool_fn fn, const struct dev_call *call, struct dev_result *r, char *err)
{
  for (int attempt = 0;; attempt++) {
    mx_err rc = ensure_session(d, call, err);
    if (rc)
      return rc;
    long secs = call->timeout_ms > 0 ? (call->timeout_ms + 999) / 1000 + 1 : 31;
    ssh_options_set(d->session, SSH_OPTIONS_TIMEOUT, &secs);
    int retry = 0;
    rc = fn(d, call, r, &retry, err);
    if (rc == MX_ERR_UNAVAILABLE) {
      dev_ssh_disconnect(d->session); /* broken transport: start afresh next time */
      d->session = NULL;
    }
    if (!rc || !retry || attempt > 0)
      return rc;
    mx_warn(d->cfg.device, "ssh session dead, reconnecting host=%s", d->cfg.host);
  }
}

static mx_err ssh_run(struct dev_backend *b, const struct dev_call *call, struct dev_result *out, char *err)
{
  struct dev_ssh *d = (struct dev_ssh *)b;
  tool_fn fn = find_tool(call->tool);
  if (!fn)
    return dev_result_set(out, DEV_REFUSED, "tool '%s' is not available over ssh", call->tool ? call->tool : "");
  pthread_mutex_lock(&d->mu);
  mx_err rc = run_locked(d, fn, call, out, err);
  pthread_mutex_unlock(&d->mu);
  return rc;
}

static mx_err ssh_health(struct dev_backend *b, cJSON **info, char *err)
{
  struct dev_ssh *d = (struct dev_ssh *)b;
  struct dev_call call = {.request_id = "health", .tool = "ssh.exec", .timeout_ms = d->cfg.connect_timeout_ms, .max_output = 256};
  cJSON *args = cJSON_Parse("{\"argv\":[\"true\"]}");
  struct dev_result r;
  dev_result_init(&r);
  if (info)
    *info = NULL;
  call.args = args;
  mx_err rc = args ? ssh_run(b, &call, &r, err) : MX_ERR_NOMEM;
  if (!rc && (r.status != DEV_DONE || r.exit_code != 0))
    rc = mx_fail(MX_ERR_UNAVAILABLE, err, "ssh %s: 'true' did not succeed (%s)", d->cfg.host, dev_status_str(r.status));
  if (!rc && info && (*info = cJSON_CreateObject()) != NULL) {
    cJSON_AddStringToObject(*info, "backend", "ssh");
    cJSON_AddNumberToObject(*info, "latency_ms", (double)r.duration_ms);
    cJSON_AddNumberToObject(*info, "connects", d->connects);
  }
  dev_result_release(&r);
  cJSON_Delete(args);
  return rc;
}

static void free_cfg(struct dev_ssh_config *c)
{
  free((char *)c->host);
  free((char *)c->user);
  free((char *)c->key_file);
  free((char *)c->known_hosts);
  free((char *)c->device);
}

static void ssh_destroy(struct dev_backend *b)
{
  struct dev_ssh *d = (struct dev_ssh *)b;
  if (!d)
    return;
  dev_ssh_disconnect(d->session);
  pthread_mutex_destroy(&d->mu);
  free_cfg(&d->cfg);
  free(d);
}

static mx_err copy_cfg(const struct dev_ssh_config *in, struct dev_ssh_config *c, char *err)
{
  if (!in->host || !*in->host)
    return mx_fail(MX_ERR_CONFIG, err, "ssh host: expected a host name or address");
  if (!in->user || !*in->user)
    return mx_fail(MX_ERR_CONFIG, err, "ssh user: expected a user name");
  if (!in->key_file || !in->known_hosts)
    return mx_fail(MX_ERR_CONFIG, err, "ssh %s: key_file and known_hosts are required", in->host);
  if (in->port < 0 || in->port > 65535)
    return mx_fail(MX_ERR_CONFIG, err, "ssh port: expected 1-65535, got '%d'", in->port);
  c->host = mx_strdup(in->host);
  c->user = mx_strdup(in->user);
  c->key_file = mx_strdup(in->key_file);
  c->known_hosts = mx_strdup(in->known_hosts);
  c->device = mx_strdup(in->device ? in->device : in->host);
  c->port = in->port ? in->port : 22;
  c->connect_timeout_ms = in->connect_timeout_ms > 0 ? in->connect_timeout_ms : 10000;
  if (!c->host || !c->user || !c->key_file || !c->known_hosts || !c->device)
    return MX_ERR_NOMEM;
  return MX_OK;
}

mx_err dev_ssh_new(const struct dev_ssh_config *cfg, struct dev_backend **out, char *err)
{
  *out = NULL;
  struct dev_ssh *d = calloc(1, sizeof(*d));
  if (!d)
    return MX_ERR_NOMEM;
  mx_err rc = copy_cfg(cfg, &d->cfg, err);
  if (rc) {
    free_cfg(&d->cfg);
    free(d);
    return rc;
  }
  pthread_mutex_init(&d->mu, NULL);
  d->base.name = "ssh";
  d->base.run = ssh_run;
  d->base.health = ssh_health;
  d->base.destroy = ssh_destroy;
  *out = &d->base;
  return MX_OK;
}

int dev_ssh_connect_count(struct dev_backend *b)
{
  struct dev_ssh *d = (struct dev_ssh *)b;
  pthread_mutex_lock(&d->mu);
  int n = d->connects;
  pthread_mutex_unlock(&d->mu);
  return n;
}
