/*
 * prov_wg.c - what `device add --via wg` needs besides the shared steps:
 * WireGuard key pairs (X25519 through libcrypto, written like `wg genkey`),
 * the next free mesh address, the hub's `wg` command, ssh/scp to the device
 * with the pinned known_hosts (OpenSSH client, batch mode) and the agent's
 * /v1/health through the tunnel (devices/wg). Layer: devices/provision.
 * Never logs or prints key material.
 */
#include "prov_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dev_local.h"
#include "dev_wg.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_util.h"

static mx_err x25519_pub(const uint8_t priv[32], char pub[45])
{
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
  uint8_t raw[32];
  size_t n = sizeof(raw);
  int ok = k && EVP_PKEY_get_raw_public_key(k, raw, &n) == 1 && n == 32;
  EVP_PKEY_free(k);
  if (!ok)
    return MX_ERR_CRYPTO;
  EVP_EncodeBlock((unsigned char *)pub, raw, 32); /* padded, 44 chars, as wg prints */
  return MX_OK;
}

mx_err prov_wg_genkey(const char *path, char pub[45], char *err)
{
  uint8_t k[32];
  char b64[45];
  mx_err rc = mx_random_bytes(k, sizeof(k));
  if (rc)
    return mx_fail(rc, err, "wireguard: no randomness for a private key");
  k[0] &= 248; /* X25519 clamping, as `wg genkey` does */
  k[31] = (uint8_t)((k[31] & 127) | 64);
  EVP_EncodeBlock((unsigned char *)b64, k, 32);
  b64[44] = '\n';
  rc = mx_file_write(path, b64, 45, 0600, err);
  if (!rc)
    rc = x25519_pub(k, pub);
  explicit_bzero(k, sizeof(k));
  explicit_bzero(b64, sizeof(b64));
  return rc;
}

mx_err prov_wg_pubkey(const char *path, char pub[45], char *err)
{
  char *s = NULL;
  uint8_t *k = NULL;
  size_t n = 0;
  mx_err rc = prov_read_secret(path, "wireguard private key", &s, err);
  if (!rc && (mx_b64_decode(s, &k, &n) || n != 32))
    rc = mx_fail(MX_ERR_INVALID, err, "'%s': expected a base64 WireGuard private key (32 bytes)", path);
  if (!rc)
    rc = x25519_pub(k, pub);
  if (s)
    explicit_bzero(s, strlen(s));
  if (k)
    explicit_bzero(k, n);
  free(s);
  free(k);
  return rc;
}

static int used(uint32_t a, const uint32_t *taken, int n)
{
  for (int i = 0; i < n; i++)
    if (taken[i] == a)
      return 1;
  return 0;
}

/* Addresses of configured wg devices and of allocations still in progress
 * (data_dir/wg/<other>.addr). */
static int collect_taken(struct prov_ctx *c, uint32_t *taken, int max)
{
  int n = 0;
  struct in_addr a;
  const cJSON *d = NULL;
  cJSON_ArrayForEach(d, mx_json_arr(c->cfg.root, "devices")) {
    const char *s = mx_json_str(mx_json_obj(d, "backend"), "address");
    if (s && n < max && inet_pton(AF_INET, s, &a) == 1)
      taken[n++] = ntohl(a.s_addr);
  }
  char *dir = mx_path_join(c->cfg.data_fs, "wg");
  DIR *dh = dir ? opendir(dir) : NULL;
  struct dirent *e = NULL;
  while (dh && (e = readdir(dh)) != NULL && n < max) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".addr") != 0)
      continue;
    char *p = mx_path_join(dir, e->d_name), *s = NULL;
    if (p && prov_read_secret(p, "address", &s, NULL) == MX_OK && inet_pton(AF_INET, s, &a) == 1)
      taken[n++] = ntohl(a.s_addr);
    free(p);
    free(s);
  }
  if (dh)
    closedir(dh);
  free(dir);
  return n;
}

mx_err prov_wg_alloc(struct prov_ctx *c, char out[16], char *err)
{
  uint32_t taken[1024];
  int n = collect_taken(c, taken, 1024);
  uint32_t size = c->mesh_len == 32 ? 1u : (1u << (32 - c->mesh_len));
  for (uint32_t i = 2; i + 1 < size; i++) { /* .0 network, .1 hub, last broadcast */
    uint32_t a = c->mesh_net + i;
    if (used(a, taken, n))
      continue;
    struct in_addr ia = { .s_addr = htonl(a) };
    inet_ntop(AF_INET, &ia, out, 16);
    return MX_OK;
  }
  return mx_fail(MX_ERR_CONFLICT, err, "--mesh: no free address left in %s", c->o->mesh);
}

static mx_err run(char *const argv[], int timeout_ms, struct mx_buf *out, char *err)
{
  struct dev_result r;
  dev_result_init(&r);
  mx_err rc = dev_local_exec(argv, NULL, timeout_ms, MX_BUF_MAX_SMALL, NULL, &r, err);
  if (!rc && (r.status != DEV_DONE || r.exit_code != 0)) {
    char *e = mx_strdup(mx_buf_cstr(&r.err));
    if (e)
      mx_rtrim(e);
    rc = mx_fail(MX_ERR_IO, err, "%s: %s (exit %d): %s", argv[0], r.status == DEV_TIMEOUT ? "timed out" : "failed",
                 r.exit_code, e && *e ? e : "no message");
    free(e);
  }
  if (!rc && out)
    rc = mx_buf_adds(out, mx_buf_cstr(&r.out));
  dev_result_release(&r);
  return rc;
}

mx_err prov_wg_cmd(const char *const *args, struct mx_buf *out, char *err)
{
  char *argv[16] = { "/usr/bin/wg" };
  int n = 1;
  for (; args[n - 1] && n < 15; n++)
    argv[n] = (char *)args[n - 1];
  argv[n] = NULL;
  return run(argv, 10000, out, err);
}

/* Options shared by ssh and scp: batch mode, only the pinned key. */
static int ssh_opts(struct prov_ctx *c, char **argv, char *kh_opt, size_t n)
{
  snprintf(kh_opt, n, "UserKnownHostsFile=%s", c->kh_fs);
  const char *opts[] = { "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", kh_opt, "-o",
                         "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
                         "-i", c->key_file };
  int k = 0;
  for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
    argv[k++] = (char *)opts[i];
  return k;
}

mx_err prov_ssh_cmd(struct prov_ctx *c, const char *remote_cmd, struct mx_buf *out, char *err)
{
  char *argv[32], kh[600], port[8], dest[300];
  int k = 0;
  argv[k++] = "/usr/bin/ssh";
  k += ssh_opts(c, argv + k, kh, sizeof(kh));
  snprintf(port, sizeof(port), "%d", c->ssh_port);
  snprintf(dest, sizeof(dest), "%s@%s", c->ssh_user, c->ssh_host);
  argv[k++] = "-p";
  argv[k++] = port;
  argv[k++] = dest;
  argv[k++] = "--";
  argv[k++] = (char *)remote_cmd;
  argv[k] = NULL;
  return run(argv, 60000, out, err);
}

mx_err prov_scp(struct prov_ctx *c, const char *const *files, int n, const char *remote_dir, char *err)
{
  char *argv[48], kh[600], port[8], dest[600];
  int k = 0;
  if (n > 24)
    return MX_ERR_INVALID;
  argv[k++] = "/usr/bin/scp";
  argv[k++] = "-q";
  argv[k++] = "-p"; /* keep modes: keys stay 0600 */
  k += ssh_opts(c, argv + k, kh, sizeof(kh));
  snprintf(port, sizeof(port), "%d", c->ssh_port);
  snprintf(dest, sizeof(dest), "%s@%s:%s/", c->ssh_user, c->ssh_host, remote_dir);
  argv[k++] = "-P";
  argv[k++] = port;
  for (int i = 0; i < n; i++)
    argv[k++] = (char *)files[i];
  argv[k++] = dest;
  argv[k] = NULL;
  return run(argv, 120000, NULL, err);
}

/* One "Field: value" line of `dpkg-deb --field` into out. */
static void deb_field(const char *fields, const char *name, char *out, size_t n)
{
  size_t k = strlen(name);
  out[0] = '\0';
  for (const char *l = fields; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
    if (strncmp(l, name, k) == 0 && l[k] == ':' && l[k + 1] == ' ') {
      snprintf(out, n, "%.*s", (int)strcspn(l + k + 2, "\n"), l + k + 2);
      return;
    }
}

static int deb_token(const char *s)
{
  for (; *s; s++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+~:-", *s))
      return 0;
  return 1;
}

mx_err prov_wg_deb_check(struct prov_ctx *c, char *err)
{
  const char *deb = c->o->agent_deb;
  if (!prov_file_exists(deb))
    return mx_fail(MX_ERR_NOT_FOUND, err, "--agent-deb: cannot find the mxfleet-agent package '%s'", deb);
  struct mx_buf f = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char *argv[] = { "/usr/bin/dpkg-deb", "--field", (char *)deb, "Package", "Version", "Architecture", NULL };
  char pkg[64];
  mx_err rc = run(argv, 30000, &f, err);
  if (rc) {
    char why[MX_ERRBUF_LEN];
    snprintf(why, sizeof(why), "%s", err);
    mx_buf_release(&f);
    return mx_fail(MX_ERR_INVALID, err, "--agent-deb: expected a Debian package, '%s' is not one: %s", deb, why);
  }
  deb_field(mx_buf_cstr(&f), "Package", pkg, sizeof(pkg));
  deb_field(mx_buf_cstr(&f), "Version", c->deb_version, sizeof(c->deb_version));
  deb_field(mx_buf_cstr(&f), "Architecture", c->deb_arch, sizeof(c->deb_arch));
  mx_buf_release(&f);
  if (strcmp(pkg, "mxfleet-agent") != 0)
    return mx_fail(MX_ERR_INVALID, err, "--agent-deb: expected the mxfleet-agent package, '%s' is package '%s'", deb,
                   pkg);
  /* both go into the install script */
  if (!c->deb_arch[0] || !deb_token(c->deb_arch) || !c->deb_version[0] || !deb_token(c->deb_version))
    return mx_fail(MX_ERR_INVALID, err, "--agent-deb: '%s': expected a Version and an Architecture, got '%s' and '%s'",
                   deb, c->deb_version, c->deb_arch);
  return MX_OK;
}

mx_err prov_agent_health(struct prov_ctx *c, char *err)
{
  char url[64];
  snprintf(url, sizeof(url), "http://%s:7443", c->address);
  struct dev_wg_config wc = { .url = url, .key_file = c->hmac_fs, .data_dir = c->cfg.data_fs,
                              .device = c->o->name, .connect_timeout_ms = 2000 };
  struct dev_backend *b = NULL;
  cJSON *info = NULL;
  mx_err rc = dev_wg_new(&wc, &b, err);
  if (!rc)
    rc = b->health(b, &info, err);
  cJSON_Delete(info);
  if (b)
    b->destroy(b);
  return rc;
}

static mx_err parse_mesh(struct prov_ctx *c, char *err)
{
  const char *m = c->o->mesh ? c->o->mesh : "198.51.100.0/24";
  const char *slash = strchr(m, '/');
  char ip[16] = "";
  struct in_addr a;
  long len = slash ? strtol(slash + 1, NULL, 10) : -1;
  if (slash && (size_t)(slash - m) < sizeof(ip))
    memcpy(ip, m, (size_t)(slash - m));
  if (!slash || len < 8 || len > 30 || inet_pton(AF_INET, ip, &a) != 1)
    return mx_fail(MX_ERR_INVALID, err, "--mesh: expected an IPv4 prefix like 198.51.100.0/24 (/8 to /30), got '%s'",
                   m);
  c->mesh_len = (int)len;
  c->mesh_net = ntohl(a.s_addr) & (0xffffffffu << (32 - len));
  return MX_OK;
}

/* Absolute, shell-safe and short enough for the remote commands built
 * around it. */
static int safe_path(const char *p)
{
  if (!p || p[0] != '/' || strlen(p) > 200)
    return 0;
  for (; *p; p++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-", *p))
      return 0;
  return 1;
}

static mx_err wg_paths(struct prov_ctx *c)
{
  char rel[128], *tmp = NULL;
  const char *n = c->o->name;
  snprintf(rel, sizeof(rel), "wg/%s.key", n);
  mx_err rc = prov_cfg_data_path(&c->cfg, rel, &c->wgkey_cfg, &c->wgkey_fs);
  snprintf(rel, sizeof(rel), "wg/%s.addr", n);
  if (!rc && !(rc = prov_cfg_data_path(&c->cfg, rel, &tmp, &c->wgaddr_fs)))
    free(tmp);
  snprintf(rel, sizeof(rel), "wg/%s.conf", n);
  if (!rc && !(rc = prov_cfg_data_path(&c->cfg, rel, &tmp, &c->wgconf_fs)))
    free(tmp);
  snprintf(rel, sizeof(rel), "keys/%s.hmac", n);
  if (!rc)
    rc = prov_cfg_data_path(&c->cfg, rel, &c->hmac_cfg, &c->hmac_fs);
  snprintf(rel, sizeof(rel), "bundles/%s", n);
  if (!rc && !(rc = prov_cfg_data_path(&c->cfg, rel, &tmp, &c->bundle_fs)))
    free(tmp);
  return rc;
}

mx_err prov_wg_init(struct prov_ctx *c, char *err)
{
  const struct dev_prov_add_opts *o = c->o;
  mx_err rc = parse_mesh(c, err);
  if (rc)
    return rc;
  c->wg_if = o->wg_interface ? o->wg_interface : mx_json_str(mx_json_obj(c->cfg.root, "health"), "wg_interface");
  c->remote_dir = o->remote_dir ? o->remote_dir : "/opt/mxfleet";
  c->device_if = o->device_if ? o->device_if : "wg0";
  if (!c->wg_if)
    return mx_fail(MX_ERR_CONFIG, err, "%s: health.wg_interface: expected the hub's interface (or --wg-if)",
                   c->cfg.path);
  if (!o->hub_endpoint || !strchr(o->hub_endpoint, ':'))
    return mx_fail(MX_ERR_INVALID, err, "--hub-endpoint: expected host:port the device reaches the hub at, got '%s'",
                   o->hub_endpoint ? o->hub_endpoint : "");
  if (!o->agent_bin && !o->agent_deb)
    return mx_fail(MX_ERR_INVALID, err, "--agent-deb FILE or --agent-bin FILE: expected the mxfleet-agent package "
                   "or binary to install on the device, got neither");
  if (o->agent_bin && !prov_file_exists(o->agent_bin))
    return mx_fail(MX_ERR_NOT_FOUND, err, "--agent-bin: cannot find the mxfleet-agent binary '%s'", o->agent_bin);
  if (o->agent_deb && (rc = prov_wg_deb_check(c, err)) != MX_OK)
    return rc;
  if (!safe_path(c->remote_dir))
    return mx_fail(MX_ERR_INVALID, err, "--remote-dir: expected an absolute path of at most 200 of [A-Za-z0-9/._-], got '%s'",
                   c->remote_dir);
  rc = wg_paths(c);
  static const char *const dirs[] = { "wg", "keys", "bundles" };
  for (size_t i = 0; !rc && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
    char *d = mx_path_join(c->cfg.data_fs, dirs[i]);
    rc = d ? mx_mkdir_p(d, 0700, err) : MX_ERR_NOMEM;
    free(d);
  }
  return rc;
}

void prov_wg_free(struct prov_ctx *c)
{
  char *all[] = { c->wgkey_cfg, c->wgkey_fs, c->wgaddr_fs, c->wgconf_fs, c->hmac_cfg, c->hmac_fs, c->bundle_fs };
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    free(all[i]);
}
