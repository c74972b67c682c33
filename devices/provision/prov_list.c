/*
 * prov_list.c - `device list` and `device show`: what the config and
 * data_dir say about each device (backend, mesh address, files in place,
 * audit present). Live health, handshakes and last commands belong to the
 * health monitor and the audit module; until the bot wires them in here they
 * show as "unknown". Layer: devices/provision; reads only. Output cJSON is
 * built and freed here.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>

#include "mx_json.h"
#include "mx_util.h"

static const char *or_dash(const char *s)
{
  return s && *s ? s : "-";
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

/* One device as a JSON row (owned by the caller). */
static cJSON *row(const struct prov_cfg *cfg, const cJSON *d, int detail)
{
  const char *name = mx_json_str(d, "name");
  const cJSON *b = mx_json_obj(d, "backend");
  const cJSON *m = mx_json_obj(d, "matrix");
  const char *kind = b ? mx_json_str(b, "kind") : NULL;
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "name", or_dash(name));
  cJSON_AddStringToObject(r, "backend", kind ? kind : "local");
  cJSON_AddStringToObject(r, "mesh_address", or_dash(b ? mx_json_str(b, "address") : NULL));
  cJSON_AddStringToObject(r, "last_handshake", kind && strcmp(kind, "wg") == 0 ? "unknown" : "-");
  cJSON_AddStringToObject(r, "agent_health", "unknown");
  cJSON_AddStringToObject(r, "last_command", "unknown");
  cJSON_AddStringToObject(r, "audit", audit_state(cfg, or_dash(name)));
  if (!detail)
    return r;
  cJSON_AddStringToObject(r, "user_id", or_dash(m ? mx_json_str(m, "user_id") : NULL));
  cJSON_AddStringToObject(r, "os", or_dash(mx_json_str(d, "os")));
  cJSON_AddStringToObject(r, "password_file", file_state(cfg, m ? mx_json_str(m, "password_file") : NULL));
  cJSON_AddStringToObject(r, "manifest", file_state(cfg, mx_json_str(d, "manifest")));
  cJSON_AddStringToObject(r, "prompt", file_state(cfg, mx_json_str(d, "prompt")));
  if (kind && strcmp(kind, "ssh") == 0) {
    cJSON_AddStringToObject(r, "ssh_host", or_dash(mx_json_str(b, "host")));
    cJSON_AddStringToObject(r, "ssh_user", or_dash(mx_json_str(b, "user")));
    cJSON_AddStringToObject(r, "known_hosts", file_state(cfg, mx_json_str(b, "known_hosts")));
  }
  return r;
}

static void print_json(const cJSON *v, FILE *out)
{
  char *s = cJSON_Print(v);
  if (s)
    fprintf(out, "%s\n", s);
  cJSON_free(s);
}

static void print_table(const cJSON *rows, FILE *out)
{
  fprintf(out, "%-16s %-7s %-15s %-14s %-8s %-12s %s\n", "NAME", "BACKEND", "MESH ADDRESS", "LAST HANDSHAKE",
          "HEALTH", "LAST COMMAND", "AUDIT");
  const cJSON *r = NULL;
  cJSON_ArrayForEach(r, rows) {
    fprintf(out, "%-16s %-7s %-15s %-14s %-8s %-12s %s\n", mx_json_str(r, "name"), mx_json_str(r, "backend"),
            mx_json_str(r, "mesh_address"), mx_json_str(r, "last_handshake"), mx_json_str(r, "agent_health"),
            mx_json_str(r, "last_command"), mx_json_str(r, "audit"));
  }
}

mx_err dev_prov_list(const char *config_path, int json, FILE *out, char *err)
{
  struct prov_cfg cfg;
  mx_err rc = prov_cfg_load(config_path, &cfg, err);
  cJSON *rows = rc ? NULL : cJSON_CreateArray();
  const cJSON *d = NULL;
  const cJSON *devs = rows ? mx_json_arr(cfg.root, "devices") : NULL;
  cJSON_ArrayForEach(d, devs) {
    cJSON_AddItemToArray(rows, row(&cfg, d, 0));
  }
  if (rows && json)
    print_json(rows, out);
  else if (rows)
    print_table(rows, out);
  cJSON_Delete(rows);
  prov_cfg_free(&cfg);
  return rc;
}

mx_err dev_prov_show(const char *config_path, const char *name, int json, FILE *out, char *err)
{
  struct prov_cfg cfg;
  mx_err rc = prov_cfg_load(config_path, &cfg, err);
  const cJSON *d = rc ? NULL : prov_cfg_device(&cfg, name, NULL);
  if (!rc && !d)
    rc = mx_fail(MX_ERR_NOT_FOUND, err, "%s: devices: no device named '%s'", config_path, name);
  cJSON *r = rc ? NULL : row(&cfg, d, 1);
  if (r && json)
    print_json(r, out);
  else if (r) {
    const cJSON *f = NULL;
    cJSON_ArrayForEach(f, r) {
      fprintf(out, "%-15s %s\n", f->string, f->valuestring);
    }
  }
  cJSON_Delete(r);
  prov_cfg_free(&cfg);
  return rc;
}
