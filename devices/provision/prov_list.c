/*
 * prov_list.c - `device list` and `device show`: builds a one-shot health
 * monitor (devices/health) from the config, runs its checks once (WireGuard
 * handshakes, SSH reachability, the agent's signed /v1/health) and prints
 * its fleet table or JSON, adding what only data_dir says (files in place,
 * audit file present). Last commands and audit verification need the
 * running bot, so they show as null. Layer: devices/provision; never calls
 * bot/ or tools/.
 * cJSON from dev_health_* is owned here and freed here.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>

#include "dev_health.h"
#include "dev_ssh.h"
#include "dev_wg.h"
#include "mx_log.h"
#include "mx_json.h"
#include "mx_util.h"

/* One device's probe parameters (ssh or wg), owned by struct fleet. */
struct probe {
  char *host, *user, *key, *kh, *name;
  int port;
  const char *data_dir; /* borrowed from the config */
};

static int probe_ssh(void *ctx, char *detail, size_t n)
{
  struct probe *p = ctx;
  struct dev_ssh_config sc = { .host = p->host, .port = p->port, .user = p->user, .key_file = p->key,
                               .known_hosts = p->kh, .connect_timeout_ms = 5000, .device = p->name };
  char err[MX_ERRBUF_LEN] = "";
  if (dev_ssh_check(&sc, err) == MX_OK)
    return 0;
  snprintf(detail, n, "%s", err);
  return 1;
}

/* Signed GET /v1/health through the tunnel (host = mesh address, key =
 * the HMAC key file). */
static int probe_agent(void *ctx, char *detail, size_t n)
{
  struct probe *p = ctx;
  char url[96], err[MX_ERRBUF_LEN] = "";
  snprintf(url, sizeof(url), "http://%s:%d", p->host, p->port);
  struct dev_wg_config wc = { .url = url, .key_file = p->key, .data_dir = p->data_dir, .device = p->name,
                              .connect_timeout_ms = 3000 };
  struct dev_backend *b = NULL;
  cJSON *info = NULL;
  mx_err rc = dev_wg_new(&wc, &b, err);
  if (!rc)
    rc = b->health(b, &info, err);
  cJSON_Delete(info);
  if (b)
    b->destroy(b);
  if (rc)
    snprintf(detail, n, "%s", err);
  return rc != MX_OK;
}

static void no_post(void *ctx, const char *text, const char *html)
{
  (void)ctx; /* a one-shot run shows states; it never posts alerts */
  (void)text;
  (void)html;
}

struct fleet {
  struct dev_health *h;
  struct probe *probes; /* one per device, unused ones zeroed */
  int n;
};

static void fleet_free(struct fleet *f)
{
  for (int i = 0; i < f->n; i++) {
    struct probe *p = &f->probes[i];
    free(p->host);
    free(p->user);
    free(p->key);
    free(p->kh);
    free(p->name);
  }
  free(f->probes);
  dev_health_free(f->h);
}

static mx_err add_device(const struct prov_cfg *cfg, struct fleet *f, const cJSON *d, int i, char *err)
{
  const cJSON *b = mx_json_obj(d, "backend");
  const char *kind = b ? mx_json_str(b, "kind") : NULL;
  struct dev_health_device hd = { .name = mx_json_str(d, "name"), .backend = kind ? kind : "local" };
  if (!hd.name)
    return mx_fail(MX_ERR_CONFIG, err, "%s: devices[%d].name: expected a string", cfg->path, i);
  struct probe *p = &f->probes[i];
  p->data_dir = cfg->data_fs;
  if (kind && strcmp(kind, "wg") == 0) {
    int64_t port = 7443;
    const char *key = mx_json_str(b, "hmac_key_file");
    hd.wg_pubkey = mx_json_str(b, "public_key");
    hd.mesh_address = mx_json_str(b, "address");
    mx_json_int(b, "port", &port);
    p->port = (int)port;
    p->host = mx_strdup(hd.mesh_address ? hd.mesh_address : "");
    p->key = key ? prov_cfg_resolve(cfg, key) : mx_strdup("");
    p->name = mx_strdup(hd.name);
    if (!p->host || !p->key || !p->name)
      return MX_ERR_NOMEM;
    hd.agent_health = probe_agent;
    hd.agent_ctx = p;
  } else if (kind && strcmp(kind, "ssh") == 0) {
    int64_t port = 22;
    mx_json_int(b, "port", &port);
    const char *kh = mx_json_str(b, "known_hosts"), *key = mx_json_str(b, "key_file");
    p->host = mx_strdup(mx_json_str(b, "host") ? mx_json_str(b, "host") : "");
    p->user = mx_strdup(mx_json_str(b, "user") ? mx_json_str(b, "user") : "");
    p->key = key ? prov_cfg_resolve(cfg, key) : mx_strdup("");
    p->kh = kh ? prov_cfg_resolve(cfg, kh) : mx_strdup("");
    p->name = mx_strdup(hd.name);
    p->port = (int)port;
    if (!p->host || !p->user || !p->key || !p->kh || !p->name)
      return MX_ERR_NOMEM;
    hd.ssh_reach = probe_ssh;
    hd.ssh_ctx = p;
  }
  return dev_health_add_device(f->h, &hd, err);
}

/* Monitor over every configured device, checked once. */
static mx_err fleet_check(const struct prov_cfg *cfg, struct fleet *f, char *err)
{
  const cJSON *devs = mx_json_arr(cfg->root, "devices");
  struct dev_health_opts o = { .pending_s = -1, .keep_firing_s = -1, .post = no_post };
  o.wg_interface = mx_json_str(mx_json_obj(cfg->root, "health"), "wg_interface");
  memset(f, 0, sizeof(*f));
  f->n = cJSON_GetArraySize(devs);
  f->probes = calloc((size_t)(f->n ? f->n : 1), sizeof(*f->probes));
  if (!f->probes)
    return MX_ERR_NOMEM;
  mx_err rc = dev_health_new(&o, &f->h, err);
  int i = 0;
  const cJSON *d = NULL;
  cJSON_ArrayForEach(d, devs) {
    if (!rc)
      rc = add_device(cfg, f, d, i, err);
    i++;
  }
  char werr[MX_ERRBUF_LEN] = "";
  if (!rc && dev_health_run_once(f->h, NULL, werr) != MX_OK)
    mx_warn(NULL, "device list: checks incomplete: %s", werr); /* still show what is known */
  return rc;
}

static const char *file_state(const struct prov_cfg *cfg, const char *p)
{
  if (!p)
    return "unset";
  char *fs = prov_cfg_resolve(cfg, p);
  int ok = fs && prov_file_exists(fs);
  free(fs);
  return ok ? "present" : "missing";
}

static const char *audit_state(const struct prov_cfg *cfg, const char *name)
{
  char rel[96];
  snprintf(rel, sizeof(rel), "audit/%s.db", name);
  char *p = mx_path_join(cfg->data_fs, rel);
  int ok = p && prov_file_exists(p);
  free(p);
  return ok ? "present" : "none";
}

/* What data_dir knows about a device, added to the monitor's object o. */
static void add_details(const struct prov_cfg *cfg, const cJSON *d, cJSON *o, int detail)
{
  const char *name = mx_json_str(d, "name");
  const cJSON *m = mx_json_obj(d, "matrix");
  const cJSON *b = mx_json_obj(d, "backend");
  cJSON_AddStringToObject(o, "audit_file", audit_state(cfg, name));
  if (!detail)
    return;
  const char *uid = m ? mx_json_str(m, "user_id") : NULL;
  cJSON_AddStringToObject(o, "user_id", uid ? uid : "");
  cJSON_AddStringToObject(o, "os", mx_json_str(d, "os") ? mx_json_str(d, "os") : "linux");
  cJSON_AddStringToObject(o, "password_file", file_state(cfg, m ? mx_json_str(m, "password_file") : NULL));
  cJSON_AddStringToObject(o, "manifest", file_state(cfg, mx_json_str(d, "manifest")));
  cJSON_AddStringToObject(o, "prompt", file_state(cfg, mx_json_str(d, "prompt")));
  if (b && mx_json_str(b, "known_hosts"))
    cJSON_AddStringToObject(o, "known_hosts", file_state(cfg, mx_json_str(b, "known_hosts")));
}

static void print_json(const cJSON *v, FILE *out)
{
  char *s = cJSON_Print(v);
  if (s)
    fprintf(out, "%s\n", s);
  cJSON_free(s);
}

mx_err dev_prov_list(const char *config_path, int json, FILE *out, char *err)
{
  struct prov_cfg cfg;
  struct fleet f;
  memset(&f, 0, sizeof(f));
  mx_err rc = prov_cfg_load(config_path, &cfg, err);
  if (!rc)
    rc = fleet_check(&cfg, &f, err);
  cJSON *rows = rc || !json ? NULL : dev_health_fleet_json(f.h);
  if (!rc && json && rows) {
    const cJSON *d = NULL;
    cJSON *r = rows->child;
    cJSON_ArrayForEach(d, mx_json_arr(cfg.root, "devices")) {
      if (r)
        add_details(&cfg, d, r, 0);
      r = r ? r->next : NULL;
    }
    print_json(rows, out);
  } else if (!rc) {
    struct mx_buf t = MX_BUF_INIT(MX_BUF_MAX_SMALL * 4);
    rc = dev_health_render_table(f.h, &t, NULL);
    if (!rc)
      fputs(mx_buf_cstr(&t), out);
    mx_buf_release(&t);
  }
  cJSON_Delete(rows);
  fleet_free(&f);
  prov_cfg_free(&cfg);
  return rc;
}

static void print_fields(const cJSON *o, FILE *out)
{
  const cJSON *f = NULL;
  cJSON_ArrayForEach(f, o) {
    char *v = cJSON_IsString(f) ? NULL : cJSON_PrintUnformatted(f);
    fprintf(out, "%-19s %s\n", f->string, v ? v : f->valuestring);
    cJSON_free(v);
  }
}

mx_err dev_prov_show(const char *config_path, const char *name, int json, FILE *out, char *err)
{
  struct prov_cfg cfg;
  struct fleet f;
  memset(&f, 0, sizeof(f));
  mx_err rc = prov_cfg_load(config_path, &cfg, err);
  const cJSON *d = rc ? NULL : prov_cfg_device(&cfg, name, NULL);
  if (!rc && !d)
    rc = mx_fail(MX_ERR_NOT_FOUND, err, "%s: devices: no device named '%s'", config_path, name);
  if (!rc)
    rc = fleet_check(&cfg, &f, err);
  cJSON *o = rc ? NULL : dev_health_device_json(f.h, name);
  if (!rc && !o)
    rc = MX_ERR_NOMEM;
  if (o) {
    add_details(&cfg, d, o, 1);
    if (json)
      print_json(o, out);
    else
      print_fields(o, out);
  }
  cJSON_Delete(o);
  fleet_free(&f);
  prov_cfg_free(&cfg);
  return rc;
}
