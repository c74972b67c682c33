/*
 * prov_bundle.c - the agent bundle for `device add --via wg`: the agent's
 * config (agent.json) and an install script generated here, plus the
 * mxfleet-agent package and/or the bare binary (with its systemd unit), the
 * manifest, HMAC key and WireGuard config taken as they are. bundle.sha256
 * names the exact bundle, so a re-run can tell an up-to-date device from one
 * that needs the upload. Layer: devices/provision.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_crypto.h"
#include "mx_share.h"
#include "mx_util.h"

/* The install script. Where the bundle has the mxfleet-agent package and
 * the device has apt-get and dpkg, apt installs the package (and resolves
 * its libraries there) and the device's files go where the packaged unit
 * reads them (/etc/mxfleet-agent); otherwise the bare binary runs from the
 * bundle. On a systemd host (run as root) the agent and wg-quick@IF are
 * enabled so both survive a reboot; elsewhere (containers, the tests'
 * namespaces) it brings up kernel or userspace WireGuard and (re)starts the
 * agent in the background. `stop` stops either; `undo` (the rollback of a
 * failed `device add`) also removes what `start` installed. MXFLEET_NO_SYSTEMD=1
 * forces the second way. */
static const char install_fmt[] =
  "#!/bin/sh\n"
  "# mxfleet-agent bundle for %s, written by `mxfleet device add`.\n"
  "# sh install.sh [start|stop|undo]: brings up WireGuard (%s) and the agent;\n"
  "# stop stops both; undo also removes what start installed.\n"
  "set -eu\n"
  "D=$(cd \"$(dirname \"$0\")\" && pwd)\n"
  "IF=%s\n"
  "ADDR=%s/%d\n"
  "DEB_ARCH='%s'  # Architecture of mxfleet-agent.deb; empty: the bundle has no package\n"
  "HAVE_BIN=%d    # 1: the bundle has the bare binary mxfleet-agent\n"
  "E=/etc/mxfleet-agent\n"
  "ACT=${1:-start}\n"
  "export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 DEBIAN_FRONTEND=noninteractive\n"
  "case $ACT in start|stop|undo) ;; *) echo \"install.sh: expected start, stop or undo, got '$ACT'\" >&2; exit 2 ;; esac\n"
  "PKG=0\n"
  "if [ -n \"$DEB_ARCH\" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then\n"
  "  PKG=1\n"
  "elif [ \"$HAVE_BIN\" != 1 ] && [ \"$ACT\" = start ]; then\n"
  "  echo \"install.sh: this device has no apt-get and dpkg to install mxfleet-agent.deb, and the bundle has\" \\\n"
  "    \"no bare mxfleet-agent binary: give device add --agent-bin FILE (built for this device) too\" >&2\n"
  "  exit 1\n"
  "fi\n"
  "\n"
  "# apt installs the package and its libraries; the device's files go where\n"
  "# the packaged unit reads them, owned as the package made /etc/mxfleet-agent\n"
  "install_pkg() {\n"
  "  rm -f \"$D/package.installed\"  # set below when this start installs the package: undo purges it again\n"
  "  A=$(dpkg --print-architecture)\n"
  "  if [ \"$DEB_ARCH\" != all ] && [ \"$DEB_ARCH\" != \"$A\" ]; then\n"
  "    echo \"install.sh: mxfleet-agent.deb is built for $DEB_ARCH, this device is $A (dpkg --print-architecture):\" \\\n"
  "      \"give device add the package built for $A\" >&2\n"
  "    exit 1\n"
  "  fi\n"
  "  dpkg-query -W -f='${Status}' mxfleet-agent 2>/dev/null | grep -q ' installed$' || touch \"$D/package.installed\"\n"
  "  if ! apt-get install -y -q \"$D/mxfleet-agent.deb\" >\"$D/apt.log\" 2>&1; then\n"
  "    apt-get update -q >>\"$D/apt.log\" 2>&1 || true  # a stale package list gets one refresh\n"
  "    apt-get install -y -q \"$D/mxfleet-agent.deb\" >>\"$D/apt.log\" 2>&1 || {\n"
  "      tail -n 15 \"$D/apt.log\" >&2\n"
  "      echo \"install.sh: apt-get install $D/mxfleet-agent.deb failed (above; all of it in $D/apt.log)\" >&2\n"
  "      exit 1\n"
  "    }\n"
  "  fi\n"
  "  install -m 0640 -o root -g mxfleet-agent \"$D/manifest.json\" \"$E/manifest.json\"\n"
  "  install -m 0600 -o mxfleet-agent -g mxfleet-agent \"$D/agent.key\" \"$E/agent.key\"\n"
  "  sed -e \"s|$D/agent.key|$E/agent.key|\" -e \"s|$D/manifest.json|$E/manifest.json|\" \\\n"
  "      -e \"s|$D/data|/var/lib/mxfleet-agent|\" -e 's|\"user\": \"nobody\"|\"user\": \"mxfleet-agent\"|' \\\n"
  "      \"$D/agent.json\" >\"$E/agent.json.new\"\n"
  "  chown root:mxfleet-agent \"$E/agent.json.new\" && chmod 0640 \"$E/agent.json.new\"\n"
  "  mv -f \"$E/agent.json.new\" \"$E/agent.json\"\n"
  "  echo \"package mxfleet-agent $(dpkg-query -W -f='${Version}' mxfleet-agent) installed by apt\"\n"
  "}\n"
  "\n"
  "# a package that was there before this start stays, with its files and audit\n"
  "uninstall_pkg() {\n"
  "  if [ \"$PKG\" = 1 ] && [ -f \"$D/package.installed\" ]; then\n"
  "    rm -f \"$E/agent.json\" \"$E/manifest.json\" \"$E/agent.key\"\n"
  "    apt-get purge -y -q mxfleet-agent >>\"$D/apt.log\" 2>&1\n"
  "    rm -f \"$D/package.installed\"\n"
  "  fi\n"
  "}\n"
  "\n"
  "if [ -d /run/systemd/system ] && [ \"${MXFLEET_NO_SYSTEMD:-0}\" != 1 ]; then\n"
  "  if [ \"$ACT\" != start ]; then\n"
  "    systemctl disable --now mxfleet-agent \"wg-quick@$IF\" 2>/dev/null || true\n"
  "    if [ \"$ACT\" = undo ]; then rm -f \"/etc/wireguard/$IF.conf\"; uninstall_pkg; fi\n"
  "    exit 0\n"
  "  fi\n"
  "  if [ \"$PKG\" = 1 ]; then\n"
  "    install_pkg  # the package's own unit, enabled by its postinst\n"
  "    U=/etc/systemd/system/mxfleet-agent.service  # an earlier bare-binary bundle's copy\n"
  "    if [ -f \"$U\" ] && cmp -s \"$U\" /lib/systemd/system/mxfleet-agent.service; then rm -f \"$U\"; fi\n"
  "    if [ -f \"$U\" ]; then echo \"install.sh: warning: $U overrides the packaged unit\" >&2; fi\n"
  "  else\n"
  "    id mxfleet-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin mxfleet-agent\n"
  "    install -d -m 0750 -g mxfleet-agent \"$E\"\n"
  "    install -m 0755 \"$D/mxfleet-agent\" /usr/sbin/mxfleet-agent\n"
  "    install -m 0640 -g mxfleet-agent \"$D/manifest.json\" \"$E/manifest.json\"\n"
  "    install -m 0600 -o mxfleet-agent \"$D/agent.key\" \"$E/agent.key\"\n"
  "    sed -e \"s|$D/agent.key|$E/agent.key|\" -e \"s|$D/manifest.json|$E/manifest.json|\" \\\n"
  "        -e \"s|$D/data|/var/lib/mxfleet-agent|\" \"$D/agent.json\" >\"$E/agent.json\"\n"
  "    install -m 0644 \"$D/mxfleet-agent.service\" /etc/systemd/system/mxfleet-agent.service\n"
  "    echo \"bare binary installed\"\n"
  "  fi\n"
  "  install -d -m 0700 /etc/wireguard\n"
  "  install -m 0600 \"$D/wg.conf\" \"/etc/wireguard/$IF.conf\"\n"
  "  systemctl daemon-reload\n"
  "  systemctl enable --now \"wg-quick@$IF\"\n"
  "  systemctl enable mxfleet-agent\n"
  "  systemctl restart mxfleet-agent\n"
  "  exit 0\n"
  "fi\n"
  "if [ \"$ACT\" != start ]; then\n"
  "  if [ -f \"$D/agent.pid\" ]; then kill \"$(cat \"$D/agent.pid\")\" 2>/dev/null || true; rm -f \"$D/agent.pid\"; fi\n"
  "  ip link del \"$IF\" 2>/dev/null || true\n"
  "  if [ \"$ACT\" = undo ]; then uninstall_pkg; fi\n"
  "  exit 0\n"
  "fi\n"
  "if [ \"$PKG\" = 1 ]; then\n"
  "  install_pkg\n"
  "  # started as root with \"user\" set: the agent drops to mxfleet-agent and keeps\n"
  "  # its audit signing key root's (docs/agent.md)\n"
  "  BIN=/usr/sbin/mxfleet-agent CONF=$E/agent.json\n"
  "else\n"
  "  chmod 0644 \"$D/manifest.json\"\n"
  "  mkdir -p \"$D/data\"\n"
  "  chown nobody \"$D/data\" 2>/dev/null || true\n"
  "  BIN=$D/mxfleet-agent CONF=$D/agent.json\n"
  "  echo \"bare binary\"\n"
  "fi\n"
  "# kernel WireGuard if there is one, else wireguard-go (it daemonizes; its output goes to a file\n"
  "# so the SSH session that runs this script can end)\n"
  "ip link show \"$IF\" >/dev/null 2>&1 || ip link add \"$IF\" type wireguard 2>/dev/null ||\n"
  "  wireguard-go \"$IF\" </dev/null >\"$D/wg.log\" 2>&1\n"
  "grep -v '^Address' \"$D/wg.conf\" > \"$D/wg.setconf\"  # Address is wg-quick's, not wg's\n"
  "wg setconf \"$IF\" \"$D/wg.setconf\"\n"
  "ip addr replace \"$ADDR\" dev \"$IF\"\n"
  "ip link set \"$IF\" up\n"
  "# start runs when the agent does not answer or the bundle changed: a running one is replaced\n"
  "if [ -f \"$D/agent.pid\" ] && P=$(cat \"$D/agent.pid\") && kill \"$P\" 2>/dev/null; then\n"
  "  i=0\n"
  "  while kill -0 \"$P\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done\n"
  "  kill -9 \"$P\" 2>/dev/null || true\n"
  "fi\n"
  "setsid \"$BIN\" --config \"$CONF\" </dev/null >\"$D/agent.log\" 2>&1 &\n"
  "echo $! > \"$D/agent.pid\"\n";

static mx_err gen_install(struct prov_ctx *c, struct mx_buf *b)
{
  return mx_buf_addf(b, install_fmt, c->o->name, c->device_if, c->device_if, c->address, c->mesh_len, c->deb_arch,
                     c->o->agent_bin ? 1 : 0);
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

/* Every file a bundle can hold, by remote name; the first five are
 * symlinks to their sources, the agent's binary, package and unit only
 * when there is a binary (the unit goes with it) or a package. */
static const char *const bundle_names[] = { "mxfleet-agent", "mxfleet-agent.deb", "manifest.json", "agent.key",
                                            "wg.conf", "mxfleet-agent.service", "agent.json", "install.sh",
                                            "bundle.sha256" };
#define BUNDLE_ALL ((int)(sizeof(bundle_names) / sizeof(bundle_names[0])))
#define BUNDLE_LINKED 6

static int in_bundle(const struct prov_ctx *c, int i)
{
  if (i == 0 || i == 5)
    return c->o->agent_bin != NULL;
  return i != 1 || c->o->agent_deb != NULL;
}

/* The files that go to the device, under their remote names: generated ones
 * and symlinks to the originals (scp follows them; -p keeps their modes).
 * bundle.sha256 is the last. */
mx_err prov_bundle_files(struct prov_ctx *c, char *local[PROV_BUNDLE_MAX], const char *remote[PROV_BUNDLE_MAX],
                         int *n)
{
  *n = 0;
  for (int i = 0; i < BUNDLE_ALL && i < PROV_BUNDLE_MAX; i++) {
    if (!in_bundle(c, i))
      continue;
    local[*n] = mx_path_join(c->bundle_fs, bundle_names[i]);
    remote[*n] = bundle_names[i];
    if (!local[(*n)++])
      return MX_ERR_NOMEM;
  }
  return MX_OK;
}

/* Links what this bundle holds to its source and drops a link it no longer
 * holds (a bundle that had a binary and now has a package). */
static mx_err link_sources(struct prov_ctx *c, int *created, char *err)
{
  char *units = c->o->agent_bin ? mx_share_dir(MX_SHARE_SYSTEMD) : NULL;
  char *unit = units ? mx_path_join(units, "mxfleet-agent.service") : NULL;
  free(units);
  if (c->o->agent_bin && !unit)
    return MX_ERR_NOMEM;
  const char *src[BUNDLE_LINKED] = { c->o->agent_bin, c->o->agent_deb, c->man_fs, c->hmac_fs, c->wgconf_fs, unit };
  mx_err rc = MX_OK;
  for (int i = 0; !rc && i < BUNDLE_LINKED; i++) {
    char *p = mx_path_join(c->bundle_fs, bundle_names[i]), *target = src[i] ? realpath(src[i], NULL) : NULL;
    char cur[4096];
    ssize_t len = p ? readlink(p, cur, sizeof(cur) - 1) : -1;
    if (len >= 0)
      cur[len] = '\0';
    if (!p)
      rc = MX_ERR_NOMEM;
    else if (!in_bundle(c, i)) {
      if (len >= 0 && unlink(p) == 0)
        *created = 1;
    } else if (!target)
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
  char *local[PROV_BUNDLE_MAX] = { 0 };
  const char *remote[PROV_BUNDLE_MAX];
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
  for (int i = 0; i < PROV_BUNDLE_MAX; i++)
    free(local[i]);
  mx_buf_release(&inst);
  mx_buf_release(&aj);
  mx_buf_release(&hb);
  return rc;
}

mx_err prov_bundle_remove_local(struct prov_ctx *c, char *err)
{
  mx_err rc = MX_OK;
  for (int i = 0; !rc && i < BUNDLE_ALL; i++) {
    char *p = mx_path_join(c->bundle_fs, bundle_names[i]);
    rc = p ? prov_remove(p, err) : MX_ERR_NOMEM;
    free(p);
  }
  if (!rc)
    (void)rmdir(c->bundle_fs);
  return rc;
}
