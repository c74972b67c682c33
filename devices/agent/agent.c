/*
 * agent.c - mxfleet-agent life cycle: key and manifest loading, binding the
 * one configured address, audit + local backend, start and stop.
 * Layer: devices/agent; calls common, tools policy/audit, devices/local.
 */
#include "agent_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "dev_local.h"
#include "mx_log.h"
#include "mx_util.h"

static mx_err bind_listen(struct agent *a, char *err)
{
  const struct agent_config *c = a->cfg;
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, c->listen_host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)c->listen_port);
    len = sizeof(*s4);
  } else if (inet_pton(AF_INET6, c->listen_host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)c->listen_port);
    len = sizeof(*s6);
  } else
    return mx_fail(MX_ERR_CONFIG, err, "%s: listen: expected an IP address, got '%s'", c->source, c->listen_host);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0)
    return mx_fail(MX_ERR_IO, err, "cannot create a socket: %s", strerror(errno));
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
    mx_err rc = mx_fail(MX_ERR_IO, err, "%s: listen: cannot listen on %s:%d: %s", c->source, c->listen_host,
                        c->listen_port, strerror(errno));
    close(fd);
    return rc;
  }
  len = sizeof(ss);
  getsockname(fd, (struct sockaddr *)&ss, &len);
  a->port = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
  a->listen_fd = fd;
  return MX_OK;
}

mx_err agent_prepare(const struct agent_config *cfg, struct agent **out, char *err)
{
  *out = NULL;
  struct agent *a = calloc(1, sizeof(*a));
  if (!a)
    return MX_ERR_NOMEM;
  a->cfg = cfg;
  a->listen_fd = -1;
  mx_err rc = dev_wg_key_load(cfg->key_file, a->key, err);
  if (!rc)
    rc = tools_policy_load(cfg->manifest, &a->manifest, err);
  if (!rc && !(a->nonces = dev_wg_nonces_new(0)))
    rc = MX_ERR_NOMEM;
  if (!rc)
    rc = bind_listen(a, err);
  if (!rc)
    rc = agent_audit_key_prepare(cfg->data_dir, cfg->user, a->audit_seed, &a->have_seed, err);
  if (rc) {
    agent_free(a);
    return rc;
  }
  *out = a;
  return MX_OK;
}

mx_err agent_check(const struct agent_config *cfg, char *err)
{
  uint8_t key[DEV_WG_KEY_LEN];
  struct tools_manifest *m = NULL;
  mx_err rc = dev_wg_key_load(cfg->key_file, key, err);
  memset(key, 0, sizeof(key));
  if (!rc)
    rc = tools_policy_load(cfg->manifest, &m, err);
  tools_manifest_free(m);
  return rc;
}

/* devices/local must not call tools/: its path opener is wired here. */
static mx_err open_confined(void *ctx, const char *path, int write, int flags, mode_t mode, int *fd, char *err)
{
  struct agent *a = ctx;
  return tools_policy_open(a->manifest, path, write ? TOOLS_ACCESS_WRITE : TOOLS_ACCESS_READ, flags, mode, fd, err);
}

mx_err agent_start(struct agent *a, char *err)
{
  struct tools_audit_opts ao = {.data_dir = a->cfg->data_dir, .device = a->cfg->device, .key_path = NULL};
  struct dev_local_opts lo = {.open_path = open_confined, .open_ctx = a};
  mx_err rc = mx_mkdir_p(a->cfg->data_dir, 0700, err);
  /* Same-uid processes (the tools it runs) may not read this memory. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (!rc)
    rc = tools_audit_open(&ao, &a->audit, err);
  if (!rc && a->have_seed)
    rc = tools_audit_set_key(a->audit, a->audit_seed, err);
  else if (!rc)
    mx_warn(a->cfg->device, "audit key in %s is readable by the user that runs tools (the agent was not started as "
                            "root with \"user\" set): a tool could sign a forged checkpoint; see docs/agent.md",
            a->cfg->data_dir);
  OPENSSL_cleanse(a->audit_seed, sizeof(a->audit_seed));
  if (!rc) { /* before the listener: calls a crash cut off are reported, never re-run */
    int n = 0;
    rc = tools_audit_close_interrupted(a->audit, &n, err);
    if (!rc && n)
      mx_warn(a->cfg->device, "audit: %d call(s) were running when the agent stopped; recorded as interrupted", n);
  }
  if (!rc)
    rc = dev_local_new(&lo, &a->local, err);
  if (!rc)
    rc = agent_http_start(a, err);
  if (rc)
    return rc;
  a->started_ms = mx_now_ms();
  mx_info(a->cfg->device, "mxfleet-agent listening addr=%s port=%d", a->cfg->listen_host, a->port);
  return MX_OK;
}

int agent_port(const struct agent *a)
{
  return a->port;
}

void agent_free(struct agent *a)
{
  if (!a)
    return;
  agent_http_stop(a);
  if (a->listen_fd >= 0)
    close(a->listen_fd);
  if (a->local)
    a->local->destroy(a->local);
  tools_audit_close(a->audit);
  tools_manifest_free(a->manifest);
  dev_wg_nonces_free(a->nonces);
  memset(a->key, 0, sizeof(a->key));
  OPENSSL_cleanse(a->audit_seed, sizeof(a->audit_seed));
  free(a);
}
