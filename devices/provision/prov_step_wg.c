/*
 * prov_step_wg.c - the steps only `device add --via wg` has: the device's
 * WireGuard key pair and mesh address, the hub's peer, the agent's HMAC key
 * and WireGuard config, the bundle upload, starting the agent and waiting
 * for its /v1/health through the tunnel (which also repairs a stopped
 * agent on a re-run, and installs and restarts a changed bundle). Layer: devices/provision; see prov_wg.c for the tools.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev_wg_sign.h"
#include "mx_util.h"

/* Undo may run for a step a killed run did: fill in what it needs. */
static void load_ids(struct prov_ctx *c)
{
  char *a = NULL;
  if (!c->pubkey[0] && prov_file_exists(c->wgkey_fs))
    (void)prov_wg_pubkey(c->wgkey_fs, c->pubkey, NULL);
  if (!c->address[0] && prov_read_secret(c->wgaddr_fs, "address", &a, NULL) == MX_OK)
    snprintf(c->address, sizeof(c->address), "%s", a);
  free(a);
}

static mx_err keys_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  mx_err rc = MX_OK;
  if (prov_file_exists(c->wgkey_fs))
    rc = prov_wg_pubkey(c->wgkey_fs, c->pubkey, err);
  else {
    rc = prov_wg_genkey(c->wgkey_fs, c->pubkey, err);
    *created = !rc;
  }
  return rc ? rc : mx_buf_addf(note, "public key %s", c->pubkey);
}

static mx_err keys_undo(struct prov_ctx *c, char *err)
{
  return prov_remove(c->wgkey_fs, err);
}

static mx_err addr_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  char *a = NULL;
  mx_err rc = MX_OK;
  if (prov_file_exists(c->wgaddr_fs)) {
    rc = prov_read_secret(c->wgaddr_fs, "mesh address", &a, err);
    if (!rc)
      snprintf(c->address, sizeof(c->address), "%s", a);
  } else {
    rc = prov_wg_alloc(c, c->address, err);
    if (!rc)
      rc = mx_file_write(c->wgaddr_fs, c->address, strlen(c->address), 0600, err);
    *created = !rc;
  }
  free(a);
  return rc ? rc : mx_buf_addf(note, "%s/%d", c->address, c->mesh_len);
}

static mx_err addr_undo(struct prov_ctx *c, char *err)
{
  return prov_remove(c->wgaddr_fs, err);
}

/* `wg show IF allowed-ips` lines are "PUBKEY<TAB>ADDR/32 ...". */
static int peer_present(const char *show, const char *pub, const char *addr)
{
  char want[64];
  snprintf(want, sizeof(want), "%s/32", addr);
  for (const char *l = show; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    const char *end = strchr(l, '\n');
    size_t n = end ? (size_t)(end - l) : strlen(l);
    if (strncmp(l, pub, strlen(pub)) == 0 && memmem(l, n, want, strlen(want)))
      return 1;
  }
  return 0;
}

static mx_err peer_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  struct mx_buf show = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  const char *q[] = { "show", c->wg_if, "allowed-ips", NULL };
  mx_err rc = prov_wg_cmd(q, &show, err);
  if (!rc && !peer_present(mx_buf_cstr(&show), c->pubkey, c->address)) {
    char ips[64];
    snprintf(ips, sizeof(ips), "%s/32", c->address);
    const char *set[] = { "set", c->wg_if, "peer", c->pubkey, "allowed-ips", ips, NULL };
    rc = prov_wg_cmd(set, NULL, err);
    *created = !rc;
  }
  mx_buf_release(&show);
  return rc ? rc : mx_buf_addf(note, "%s: peer %s allowed-ips %s/32", c->wg_if, c->pubkey, c->address);
}

static mx_err peer_undo(struct prov_ctx *c, char *err)
{
  load_ids(c);
  if (!c->pubkey[0])
    return MX_OK;
  const char *rm[] = { "set", c->wg_if, "peer", c->pubkey, "remove", NULL };
  return prov_wg_cmd(rm, NULL, err);
}

static mx_err write_wgconf(struct prov_ctx *c, char *err)
{
  struct mx_buf hub = MX_BUF_INIT(MX_BUF_MAX_SMALL), conf = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char *priv = NULL;
  const char *q[] = { "show", c->wg_if, "public-key", NULL };
  mx_err rc = prov_wg_cmd(q, &hub, err);
  if (!rc)
    rc = prov_read_secret(c->wgkey_fs, "wireguard private key", &priv, err);
  char *hubpub = rc ? NULL : mx_buf_take(&hub);
  if (hubpub)
    mx_rtrim(hubpub);
  uint32_t h = c->mesh_net + 1;
  if (!rc)
    rc = mx_buf_addf(&conf,
                     "[Interface]\nPrivateKey = %s\nAddress = %s/%d\n\n[Peer]\nPublicKey = %s\nEndpoint = %s\n"
                     "AllowedIPs = %u.%u.%u.%u/32\nPersistentKeepalive = 25\n",
                     priv, c->address, c->mesh_len, hubpub ? hubpub : "", c->o->hub_endpoint, h >> 24,
                     (h >> 16) & 255, (h >> 8) & 255, h & 255);
  if (!rc)
    rc = mx_file_write(c->wgconf_fs, conf.buf, conf.len, 0600, err);
  if (priv)
    explicit_bzero(priv, strlen(priv));
  if (conf.buf)
    explicit_bzero(conf.buf, conf.len);
  free(priv);
  free(hubpub);
  mx_buf_release(&hub);
  mx_buf_release(&conf);
  return rc;
}

static mx_err devfiles_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  mx_err rc = MX_OK;
  if (!prov_file_exists(c->hmac_fs)) {
    rc = dev_wg_key_generate(c->hmac_fs, err);
    *created = !rc;
  }
  if (!rc && !prov_file_exists(c->wgconf_fs)) {
    rc = write_wgconf(c, err);
    *created |= !rc;
  }
  return rc ? rc : mx_buf_addf(note, "%s, WireGuard config for the device", c->hmac_cfg);
}

static mx_err devfiles_undo(struct prov_ctx *c, char *err)
{
  mx_err rc = prov_remove(c->hmac_fs, err);
  return rc ? rc : prov_remove(c->wgconf_fs, err);
}

static mx_err remote_hash(struct prov_ctx *c, char out[65], char *err)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "cat %s/bundle.sha256 2>/dev/null || true", c->remote_dir);
  mx_err rc = prov_ssh_cmd(c, cmd, &b, err);
  snprintf(out, 65, "%.64s", mx_buf_cstr(&b));
  mx_buf_release(&b);
  return rc;
}

static mx_err upload_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  char hash[65] = "", there[65] = "", cmd[600];
  int built = 0;
  char *local[PROV_BUNDLE_MAX] = { 0 };
  const char *remote[PROV_BUNDLE_MAX];
  int n = 0;
  mx_err rc = prov_bundle_build(c, hash, &built, err);
  if (!rc)
    rc = remote_hash(c, there, err);
  if (!rc && strcmp(hash, there) == 0)
    return mx_buf_addf(note, "%s:%s holds bundle %.12s", c->ssh_host, c->remote_dir, hash);
  /* the agent's binary or package of an earlier bundle goes first: neither
   * is left to be taken for part of this one, nor overwritten while it runs */
  snprintf(cmd, sizeof(cmd), "mkdir -p %s && chmod 0755 %s && rm -f %s/mxfleet-agent %s/mxfleet-agent.deb",
           c->remote_dir, c->remote_dir, c->remote_dir, c->remote_dir);
  *created = !rc; /* from here a failure leaves partial files: undo this step too */
  if (!rc)
    rc = prov_ssh_cmd(c, cmd, NULL, err);
  if (!rc)
    rc = prov_bundle_files(c, local, remote, &n);
  if (!rc)
    rc = prov_scp(c, (const char *const *)local, n, c->remote_dir, err);
  for (int i = 0; i < PROV_BUNDLE_MAX; i++)
    free(local[i]);
  c->bundle_sent = !rc;
  return rc ? rc : mx_buf_addf(note, "bundle %.12s to %s:%s", hash, c->ssh_host, c->remote_dir);
}

static mx_err upload_undo(struct prov_ctx *c, char *err)
{
  char cmd[1200];
  const char *r = c->remote_dir;
  /* Only what the bundle and install.sh made; data/ is the audit of an
   * agent that never went live. */
  snprintf(cmd, sizeof(cmd),
           "if cd %s 2>/dev/null; then rm -f mxfleet-agent mxfleet-agent.deb manifest.json agent.key wg.conf "
           "wg.setconf agent.json mxfleet-agent.service install.sh bundle.sha256 agent.log wg.log apt.log "
           "package.installed && rm -rf data && cd / && rmdir %s 2>/dev/null; fi; true",
           r, r);
  mx_err rc = prov_ssh_cmd(c, cmd, NULL, err);
  return rc ? rc : prov_bundle_remove_local(c, err);
}

/* Poll: the agent needs the tunnel's first handshake and its own start-up;
 * each probe has a 2 s connect timeout, so the deadline bounds the wait. */
static mx_err wait_health(struct prov_ctx *c, char *err)
{
  int wait_s = c->o->health_wait_s > 0 ? c->o->health_wait_s : 30;
  int64_t deadline = mx_mono_ms() + (int64_t)wait_s * 1000;
  mx_err rc = prov_agent_health(c, err);
  while (rc && mx_mono_ms() < deadline) {
    usleep(200 * 1000);
    rc = prov_agent_health(c, err);
  }
  if (!rc)
    return MX_OK;
  char last[MX_ERRBUF_LEN];
  snprintf(last, sizeof(last), "%s", err);
  return mx_fail(rc, err, "agent %s: no healthy /v1/health within %d s: %s", c->address, wait_s, last);
}

static mx_err start_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err)
{
  char cmd[600], herr[MX_ERRBUF_LEN];
  /* a new bundle (another agent version, key, manifest) is installed and
   * the agent restarted even if the old one still answers */
  if (!c->bundle_sent && prov_agent_health(c, herr) == MX_OK)
    return mx_buf_addf(note, "http://%s:7443/v1/health ok", c->address);
  snprintf(cmd, sizeof(cmd), "%ssh %s/install.sh start", c->o->no_systemd ? "MXFLEET_NO_SYSTEMD=1 " : "",
           c->remote_dir);
  *created = 1; /* a half-started agent or interface is undone with the step */
  struct mx_buf how = MX_BUF_INIT(MX_BUF_MAX_SMALL); /* install.sh says what it started */
  mx_err rc = prov_ssh_cmd(c, cmd, &how, err);
  if (!rc)
    rc = wait_health(c, err);
  char *h = rc ? NULL : mx_strdup(mx_buf_cstr(&how));
  if (h)
    mx_rtrim(h);
  if (!rc)
    rc = mx_buf_addf(note, "started (%s); http://%s:7443/v1/health ok", h && *h ? h : "agent", c->address);
  free(h);
  mx_buf_release(&how);
  return rc;
}

static mx_err start_undo(struct prov_ctx *c, char *err)
{
  char cmd[600];
  /* undo: also what start installed (the package, if it installed it) */
  snprintf(cmd, sizeof(cmd), "%ssh %s/install.sh undo", c->o->no_systemd ? "MXFLEET_NO_SYSTEMD=1 " : "",
           c->remote_dir);
  return prov_ssh_cmd(c, cmd, NULL, err);
}

const struct prov_step prov_steps_wg[] = {
  { "ssh_pin", "pin the SSH host key", 0, prov_step_pin_run, prov_step_pin_undo },
  { "ssh_check", "check SSH login (batch mode)", 1, prov_step_check_run, NULL },
  { "wg_keys", "generate the WireGuard key pair", 0, keys_run, keys_undo },
  { "wg_addr", "allocate the mesh address", 0, addr_run, addr_undo },
  { "hub_peer", "add the hub's WireGuard peer", 0, peer_run, peer_undo },
  { "matrix_user", "create the Matrix user", 0, prov_step_user_run, prov_step_user_undo },
  { "identity", "log in and bootstrap the E2EE identity", 0, prov_step_identity_run, prov_step_identity_undo },
  { "files", "write the manifest and prompt", 0, prov_step_files_run, prov_step_files_undo },
  { "wg_files", "write the agent's HMAC key and WireGuard config", 0, devfiles_run, devfiles_undo },
  { "config", "add the config entry", 0, prov_step_config_run, prov_step_config_undo },
  { "upload", "upload the agent bundle over SSH", 0, upload_run, upload_undo },
  { "start", "start the agent and wait for /v1/health", 0, start_run, start_undo },
  { "greet", "open a DM with each operator and greet", 0, prov_step_greet_run, NULL },
};
const int prov_steps_wg_n = (int)(sizeof(prov_steps_wg) / sizeof(prov_steps_wg[0]));
