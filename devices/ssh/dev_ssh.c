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
  enum dev_ssh_shell shell; /* declared remote login shell */
  int shell_checked;        /* the probe of this session printed what the declared shell prints */
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
  d->shell_checked = 0; /* a new login: the account's shell may have changed */
  mx_info(d->cfg.device, "ssh connected host=%s port=%d", d->cfg.host, d->cfg.port);
  return MX_OK;
}

/* Runs the declared shell's probe once per session: a login shell that
 * parses differently (fish where POSIX was declared) would turn a quoted
 * argument back into syntax, so nothing is quoted for it. */
static mx_err check_shell(struct dev_ssh *d, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  const char *cmd, *expect;
  dev_ssh_shell_probe(d->shell, &cmd, &expect);
  if (!cmd)
    return dev_result_set(r, DEV_REFUSED, "shell.exec: the remote shell '%s' is not known, so arguments cannot be "
                          "quoted for it; declare it in the manifest (\"shell\": posix, fish, cmd or powershell)",
                          d->cfg.shell ? d->cfg.shell : "");
  struct dev_call probe = *call;
  probe.max_output = 256;
  struct dev_result pr;
  dev_result_init(&pr);
  mx_err rc = dev_ssh_exec(d->session, cmd, &probe, &pr, retry, err);
  if (!rc) {
    const char *got = mx_buf_cstr(&pr.out);
    size_t n = strlen(got);
    while (n && (got[n - 1] == '\n' || got[n - 1] == '\r'))
      n--;
    d->shell_checked = pr.status == DEV_DONE && n == strlen(expect) && memcmp(got, expect, n) == 0;
    if (!d->shell_checked) {
      mx_warn(d->cfg.device, "ssh login shell is not the declared %s shell: probe printed '%.*s'",
              dev_ssh_shell_name(d->shell), (int)(n < 80 ? n : 80), got);
      dev_result_set(r, DEV_REFUSED, "shell.exec refused: the login shell on the host does not parse like the "
                     "declared '%s' shell (its probe printed '%.*s', expected '%s'); set \"shell\" in the manifest "
                     "to the account's login shell", dev_ssh_shell_name(d->shell), (int)(n < 80 ? n : 80), got, expect);
    }
  }
  dev_result_release(&pr);
  return rc;
}

static mx_err tool_exec(struct dev_ssh *d, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  /* POSIX and fish: "exec" replaces the login shell (dash forks otherwise)
   * by the program, so our KILL reaches it and its own exit signal is
   * reported. The line is built first: a refused argument sends nothing. */
  struct mx_buf cmd = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = dev_ssh_command(d->shell, mx_json_arr(call->args, "argv"), mx_json_str(call->args, "cwd"), &cmd, err);
  if (rc == MX_ERR_INVALID || rc == MX_ERR_DENIED) {
    dev_result_set(r, DEV_REFUSED, "%s", err);
    rc = MX_OK;
  } else if (!rc && !d->shell_checked) {
    rc = check_shell(d, call, r, retry, err);
  }
  if (!rc && !r->detail)
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

static mx_err tool_fs(struct dev_ssh *d, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  return dev_ssh_fs(d->session, &d->cfg, call, r, retry, err);
}

/* Exactly dev_served_tools("ssh"); a test checks the two agree. */
static const struct {
  const char *tool;
  tool_fn fn;
} tools[] = {
    {"fs.read", tool_fs}, {"fs.list", tool_fs}, {"fs.stat", tool_fs}, {"shell.exec", tool_exec}, {"shell.eval", tool_eval},
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
  tool_fn fn = dev_backend_serves(b, call->tool) ? find_tool(call->tool) : NULL;
  if (!fn)
    return dev_result_set(out, DEV_REFUSED, "tool '%s' is not served by the ssh backend", call->tool ? call->tool : "");
  pthread_mutex_lock(&d->mu);
  mx_err rc = run_locked(d, fn, call, out, err);
  pthread_mutex_unlock(&d->mu);
  return rc;
}

static mx_err ssh_health(struct dev_backend *b, cJSON **info, char *err)
{
  struct dev_ssh *d = (struct dev_ssh *)b;
  /* "exit 0" means the same to every shell we know (sh, fish, cmd, PowerShell). */
  struct dev_call call = {.request_id = "health", .tool = "shell.eval", .timeout_ms = d->cfg.connect_timeout_ms, .max_output = 256};
  cJSON *args = cJSON_Parse("{\"command\":\"exit 0\"}");
  struct dev_result r;
  dev_result_init(&r);
  if (info)
    *info = NULL;
  call.args = args;
  mx_err rc = args ? ssh_run(b, &call, &r, err) : MX_ERR_NOMEM;
  if (!rc && (r.status != DEV_DONE || r.exit_code != 0))
    rc = mx_fail(MX_ERR_UNAVAILABLE, err, "ssh %s: 'exit 0' did not succeed (%s)", d->cfg.host, dev_status_str(r.status));
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
  free((char *)c->shell);
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
  c->shell = mx_strdup(in->shell ? in->shell : "posix");
  c->check_path = in->check_path;
  c->check_ctx = in->check_ctx;
  c->port = in->port ? in->port : 22;
  c->connect_timeout_ms = in->connect_timeout_ms > 0 ? in->connect_timeout_ms : 10000;
  if (!c->host || !c->user || !c->key_file || !c->known_hosts || !c->device || !c->shell)
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
  d->shell = dev_ssh_shell_from_name(d->cfg.shell);
  d->base.name = "ssh";
  d->base.tools = dev_served_tools("ssh");
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
