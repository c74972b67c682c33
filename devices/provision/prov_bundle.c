/*
 * prov_bundle.c - the agent bundle for `device add --via wg`: the agent's
 * config (agent.json) and an install script generated here, plus the agent
 * binary, manifest, HMAC key, WireGuard config and systemd unit taken as
 * they are. bundle.sha256 names the exact bundle, so a re-run can tell an
 * up-to-date device from one that needs the upload. Layer: devices/provision.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_crypto.h"
#include "mx_share.h"
#include "mx_util.h"

/* The install script. On a systemd host (run as root) it installs the
 * packaged unit, /etc/mxfleet-agent and wg-quick@IF so both survive a
 * reboot; elsewhere (containers, the tests' namespaces) it brings up kernel
 * or userspace WireGuard and starts the agent in the background. `stop`
 * undoes either. MXFLEET_NO_SYSTEMD=1 forces the second way. */
static const char install_fmt[] =
  "#!/bin/sh\n"
  "# mxfleet-agent bundle for %s, written by `mxfleet device add`.\n"
  "# sh install.sh [start|stop]: brings up WireGuard (%s) and the agent.\n"
  "set -eu\n"
  "D=$(cd \"$(dirname \"$0\")\" && pwd)\n"
  "IF=%s\n"
  "ADDR=%s/%d\n"
  "export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1\n"
  "if [ -d /run/systemd/system ] && [ \"${MXFLEET_NO_SYSTEMD:-0}\" != 1 ]; then\n"
  "  if [ \"${1:-start}\" = stop ]; then\n"
  "    systemctl disable --now mxfleet-agent \"wg-quick@$IF\" 2>/dev/null || true\n"
  "    exit 0\n"
  "  fi\n"
  "  id mxfleet-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin mxfleet-agent\n"
  "  install -d -m 0750 -g mxfleet-agent /etc/mxfleet-agent\n"
  "  install -m 0755 \"$D/mxfleet-agent\" /usr/sbin/mxfleet-agent\n"
  "  install -m 0640 -g mxfleet-agent \"$D/manifest.json\" /etc/mxfleet-agent/manifest.json\n"
  "  install -m 0600 -o mxfleet-agent \"$D/agent.key\" /etc/mxfleet-agent/agent.key\n"
  "  sed -e \"s|$D/agent.key|/etc/mxfleet-agent/agent.key|\" -e \"s|$D/manifest.json|/etc/mxfleet-agent/manifest.json|\" \\\n"
  "      -e \"s|$D/data|/var/lib/mxfleet-agent|\" \"$D/agent.json\" >/etc/mxfleet-agent/agent.json\n"
  "  install -d -m 0700 /etc/wireguard\n"
  "  install -m 0600 \"$D/wg.conf\" \"/etc/wireguard/$IF.conf\"\n"
  "  install -m 0644 \"$D/mxfleet-agent.service\" /etc/systemd/system/mxfleet-agent.service\n"
  "  systemctl daemon-reload\n"
  "  systemctl enable --now \"wg-quick@$IF\"\n"
  "  systemctl enable mxfleet-agent\n"
  "  systemctl restart mxfleet-agent\n"
  "  exit 0\n"
  "fi\n"
  "if [ \"${1:-start}\" = stop ]; then\n"
  "  if [ -f \"$D/agent.pid\" ]; then kill \"$(cat \"$D/agent.pid\")\" 2>/dev/null || true; rm -f \"$D/agent.pid\"; fi\n"
  "  ip link del \"$IF\" 2>/dev/null || true\n"
  "  exit 0\n"
  "fi\n"
  "chmod 0644 \"$D/manifest.json\"\n"
  "# kernel WireGuard if there is one, else wireguard-go (it daemonizes; its output goes to a file\n"
  "# so the SSH session that runs this script can end)\n"
  "ip link show \"$IF\" >/dev/null 2>&1 || ip link add \"$IF\" type wireguard 2>/dev/null ||\n"
  "  wireguard-go \"$IF\" </dev/null >\"$D/wg.log\" 2>&1\n"
  "grep -v '^Address' \"$D/wg.conf\" > \"$D/wg.setconf\"  # Address is wg-quick's, not wg's\n"
  "wg setconf \"$IF\" \"$D/wg.setconf\"\n"
  "ip addr replace \"$ADDR\" dev \"$IF\"\n"
  "ip link set \"$IF\" up\n"
  "if [ -f \"$D/agent.pid\" ] && kill -0 \"$(cat \"$D/agent.pid\")\" 2>/dev/null; then exit 0; fi\n"
  "mkdir -p \"$D/data\"\n"
  "chown nobody \"$D/data\" 2>/dev/null || true\n"
  "setsid \"$D/mxfleet-agent\" --config \"$D/agent.json\" </dev/null >\"$D/agent.log\" 2>&1 &\n"
  "echo $! > \"$D/agent.pid\"\n";

static mx_err gen_install(struct prov_ctx *c, struct mx_buf *b)
{
  return mx_buf_addf(b, install_fmt, c->o->name, c->device_if, c->device_if, c->address, c->mesh_len);
}

static mx_err gen_agent_json(struct prov_ctx *c, struct mx_buf *b)
{
  const char *r = c->remote_dir;
  return mx_buf_addf(b,
                     "{\"device\": \"%s\", \"listen\": \"%s:7443\", \"key_file\": \"%s/agent.key\",\n"
                     " \"manifest\": \"%s/manifest.json\", \"data_dir\": \"%s/data\", \"user\": \"nobody\"}\n",
                     c->o->name, c->address, r, r, r);
}

/* Writes data to bundle/<name> unless it already holds exactly that. */
static mx_err put(struct prov_ctx *c, const char *name, struct mx_buf *data, int *created, char *err)
{
  char *p = mx_path_join(c->bundle_fs, name);
  int same = 0;
  mx_err rc = p ? prov_file_same(p, mx_buf_cstr(data), data->len, &same, err) : MX_ERR_NOMEM;
  if (!rc && !same) {
    rc = mx_file_write(p, mx_buf_cstr(data), data->len, 0600, err);
    *created = 1;
  }
  free(p);
  return rc;
}

static const char *const bundle_names[] = { "mxfleet-agent", "manifest.json", "agent.key", "wg.conf",
                                            "mxfleet-agent.service", "agent.json", "install.sh", "bundle.sha256" };
#define BUNDLE_N PROV_BUNDLE_MAX
#define BUNDLE_LINKED 5 /* the first five are symlinks to their sources */

/* The files that go to the device, under their remote names: generated ones
 * and symlinks to the originals (scp follows them; -p keeps their modes). */
mx_err prov_bundle_files(struct prov_ctx *c, char *local[BUNDLE_N], const char *remote[BUNDLE_N], int *n)
{
  for (int i = 0; i < BUNDLE_N; i++) {
    local[i] = mx_path_join(c->bundle_fs, bundle_names[i]);
    remote[i] = bundle_names[i];
    if (!local[i])
      return MX_ERR_NOMEM;
  }
  *n = BUNDLE_N;
  return MX_OK;
}

static mx_err link_sources(struct prov_ctx *c, int *created, char *err)
{
  char *units = mx_share_dir(MX_SHARE_SYSTEMD);
  char *unit = units ? mx_path_join(units, "mxfleet-agent.service") : NULL;
  free(units);
  if (!unit)
    return MX_ERR_NOMEM;
  const char *src[BUNDLE_LINKED] = { c->o->agent_bin, c->man_fs, c->hmac_fs, c->wgconf_fs, unit };
  mx_err rc = MX_OK;
  for (int i = 0; !rc && i < BUNDLE_LINKED; i++) {
    char *p = mx_path_join(c->bundle_fs, bundle_names[i]), *target = realpath(src[i], NULL);
    char cur[4096];
    ssize_t len = p ? readlink(p, cur, sizeof(cur) - 1) : -1;
    if (len >= 0)
      cur[len] = '\0';
    if (!p || !target)
      rc = mx_fail(MX_ERR_NOT_FOUND, err, "bundle: cannot find '%s'", src[i]);
    else if (len < 0 || strcmp(cur, target) != 0) {
      (void)unlink(p);
      if (symlink(target, p) != 0)
        rc = mx_fail(MX_ERR_IO, err, "bundle: cannot link '%s' to '%s'", p, target);
      *created = 1;
    }
    free(p);
    free(target);
  }
  free(unit);
  return rc;
}

/* sha256 over (remote name, file sha256) of every file but bundle.sha256. */
static mx_err bundle_hash(char *const *local, const char *const *remote, int n, char out[65], char *err)
{
  struct mx_buf all = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = MX_OK;
  for (int i = 0; !rc && i < n - 1; i++) {
    struct mx_buf f;
    char h[65];
    rc = mx_file_read(local[i], (size_t)256 * 1024 * 1024, &f, err);
    if (rc)
      break;
    mx_sha256_hex(f.buf ? f.buf : "", f.len, h);
    mx_buf_release(&f);
    rc = mx_buf_addf(&all, "%s %s\n", h, remote[i]);
  }
  if (!rc)
    mx_sha256_hex(mx_buf_cstr(&all), all.len, out);
  mx_buf_release(&all);
  return rc;
}

mx_err prov_bundle_build(struct prov_ctx *c, char hash[65], int *created, char *err)
{
  struct mx_buf inst = MX_BUF_INIT(MX_BUF_MAX_SMALL), aj = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  struct mx_buf hb = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char *local[BUNDLE_N] = { 0 };
  const char *remote[BUNDLE_N];
  int n = 0;
  mx_err rc = mx_mkdir_p(c->bundle_fs, 0700, err);
  if (!rc)
    rc = gen_install(c, &inst);
  if (!rc)
    rc = gen_agent_json(c, &aj);
  if (!rc)
    rc = put(c, "install.sh", &inst, created, err);
  if (!rc)
    rc = put(c, "agent.json", &aj, created, err);
  if (!rc)
    rc = link_sources(c, created, err);
  if (!rc)
    rc = prov_bundle_files(c, local, remote, &n);
  if (!rc)
    rc = bundle_hash(local, remote, n, hash, err);
  if (!rc)
    rc = mx_buf_addf(&hb, "%s\n", hash);
  if (!rc)
    rc = put(c, "bundle.sha256", &hb, created, err);
  for (int i = 0; i < BUNDLE_N; i++)
    free(local[i]);
  mx_buf_release(&inst);
  mx_buf_release(&aj);
  mx_buf_release(&hb);
  return rc;
}

mx_err prov_bundle_remove_local(struct prov_ctx *c, char *err)
{
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < sizeof(bundle_names) / sizeof(bundle_names[0]); i++) {
    char *p = mx_path_join(c->bundle_fs, bundle_names[i]);
    rc = p ? prov_remove(p, err) : MX_ERR_NOMEM;
    free(p);
  }
  if (!rc)
    (void)rmdir(c->bundle_fs);
  return rc;
}
