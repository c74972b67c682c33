/*
 * prov_add.c - the onboarding engine: resolves names and paths into a
 * prov_ctx, runs the step table in order printing "[k/N] ...", journals what
 * each step created, and on a failure at step k undoes k..1 in reverse (only
 * what this run, or an interrupted earlier one, created). Layer:
 * devices/provision; the steps live in prov_step_*.c. Never prints secrets.
 */
#include "prov_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_json.h"
#include "mx_util.h"

static int valid_name(const char *n)
{
  size_t len = n ? strlen(n) : 0;
  if (len == 0 || len > 32 || n[0] == '-')
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-'))
      return 0;
  return 1;
}

static mx_err parse_target(struct prov_ctx *c, const char *t, char *err)
{
  const char *at = t ? strchr(t, '@') : NULL;
  if (!at || at == t || !at[1])
    return mx_fail(MX_ERR_INVALID, err, "--ssh: expected user@host[:port], got '%s'", t ? t : "");
  c->ssh_user = strndup(t, (size_t)(at - t));
  const char *colon = strrchr(at + 1, ':');
  c->ssh_port = 22;
  if (colon) {
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!*(colon + 1) || *end || p < 1 || p > 65535)
      return mx_fail(MX_ERR_INVALID, err, "--ssh: expected a port 1-65535 after ':', got '%s'", colon + 1);
    c->ssh_port = (int)p;
  }
  c->ssh_host = strndup(at + 1, colon ? (size_t)(colon - at - 1) : strlen(at + 1));
  return c->ssh_user && c->ssh_host ? MX_OK : MX_ERR_NOMEM;
}

static mx_err user_id_for(struct prov_ctx *c, char *err)
{
  const char *server = c->o->server_name;
  const cJSON *op0 = cJSON_GetArrayItem(c->cfg.operators, 0);
  if (!server && cJSON_IsString(op0) && strchr(op0->valuestring, ':'))
    server = strchr(op0->valuestring, ':') + 1;
  if (!server || !*server)
    return mx_fail(MX_ERR_CONFIG, err, "%s: operators: expected at least one user ID to take the server name from "
                   "(or pass --server-name)", c->cfg.path);
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = mx_buf_addf(&b, "@agent-%s:%s", c->o->name, server);
  if (rc)
    return rc;
  c->user_id = mx_buf_take(&b);
  return c->user_id ? MX_OK : MX_ERR_NOMEM;
}

static mx_err data_paths(struct prov_ctx *c)
{
  char rel[128];
  const char *n = c->o->name;
  mx_err rc = MX_OK;
  snprintf(rel, sizeof(rel), "secrets/%s.pw", n);
  rc = prov_cfg_data_path(&c->cfg, rel, &c->pw_cfg, &c->pw_fs);
  snprintf(rel, sizeof(rel), "ssh/%s.known_hosts", n);
  if (!rc)
    rc = prov_cfg_data_path(&c->cfg, rel, &c->kh_cfg, &c->kh_fs);
  snprintf(rel, sizeof(rel), "manifests/%s.json", n);
  if (!rc)
    rc = prov_cfg_data_path(&c->cfg, rel, &c->man_cfg, &c->man_fs);
  snprintf(rel, sizeof(rel), "prompts/%s.md", n);
  if (!rc)
    rc = prov_cfg_data_path(&c->cfg, rel, &c->prompt_cfg, &c->prompt_fs);
  snprintf(rel, sizeof(rel), "provision/%s.json", n);
  char *unused = NULL;
  if (!rc)
    rc = prov_cfg_data_path(&c->cfg, rel, &unused, &c->journal_fs);
  free(unused);
  return rc;
}

static mx_err key_path(struct prov_ctx *c, char *err)
{
  char *k = c->o->key_file ? mx_strdup(c->o->key_file) : mx_path_join(c->cfg.data_fs, "keys/mxfleet_ed25519");
  if (!k)
    return MX_ERR_NOMEM;
  c->key_file = realpath(k, NULL);
  mx_err rc = c->key_file ? MX_OK
                          : mx_fail(MX_ERR_NOT_FOUND, err, "--key: cannot find the SSH private key '%s'%s", k,
                                    c->o->key_file ? "" : " (the default; pass --key FILE)");
  free(k);
  return rc;
}

static mx_err make_dirs(struct prov_ctx *c, char *err)
{
  static const char *const dirs[] = { "secrets", "ssh", "manifests", "prompts", "provision" };
  for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
    char *d = mx_path_join(c->cfg.data_fs, dirs[i]);
    if (!d)
      return MX_ERR_NOMEM;
    mx_err rc = mx_mkdir_p(d, 0700, err);
    free(d);
    if (rc)
      return rc;
  }
  return MX_OK;
}

/* One onboarding per data_dir at a time: two runs editing the same config
 * would each restore their own snapshot on rollback. The lock is on the
 * directory, so it leaves no file behind; the kernel drops it if we die. */
static mx_err lock_dir(struct prov_ctx *c, char *err)
{
  char *d = mx_path_join(c->cfg.data_fs, "provision");
  if (!d)
    return MX_ERR_NOMEM;
  c->lock_fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  mx_err rc = MX_OK;
  if (c->lock_fd < 0)
    rc = mx_fail(MX_ERR_IO, err, "cannot open '%s': %s", d, strerror(errno));
  else if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0)
    rc = mx_fail(MX_ERR_CONFLICT, err, "'%s': another 'mxfleet device add' is running for this data_dir", d);
  free(d);
  return rc;
}

static mx_err ctx_init(struct prov_ctx *c, const struct dev_prov_add_opts *o, char *err)
{
  c->o = o;
  c->out = o->out ? o->out : stdout;
  c->os = o->os ? o->os : "linux";
  if (!valid_name(o->name))
    return mx_fail(MX_ERR_INVALID, err, "device name: expected 1-32 of a-z, 0-9 and '-' (not first), got '%s'",
                   o->name ? o->name : "");
  if (strcmp(c->os, "linux") && strcmp(c->os, "macos") && strcmp(c->os, "windows"))
    return mx_fail(MX_ERR_INVALID, err, "--os: expected linux, macos or windows, got '%s'", c->os);
  if (o->via == DEV_PROV_VIA_WG && strcmp(c->os, "windows") == 0)
    return mx_fail(MX_ERR_INVALID, err, "--os windows: mxfleet-agent does not run on Windows; onboard it --via ssh");
  mx_err rc = prov_cfg_load(o->config_path, &c->cfg, err);
  if (!rc)
    rc = parse_target(c, o->ssh_target, err);
  if (!rc)
    rc = user_id_for(c, err);
  if (!rc)
    rc = data_paths(c);
  if (!rc)
    rc = key_path(c, err);
  /* before make_dirs: a data_dir created now would be root's */
  if (!rc)
    c->give_away = prov_owner_find(&c->cfg, &c->svc_uid, &c->svc_gid);
  if (!rc)
    rc = make_dirs(c, err);
  if (!rc && o->via == DEV_PROV_VIA_WG)
    rc = prov_wg_init(c, err);
  if (!rc)
    rc = lock_dir(c, err);
  return rc;
}

static void ctx_free(struct prov_ctx *c)
{
  if (c->lock_fd >= 0)
    close(c->lock_fd); /* releases the flock */
  prov_wg_free(c);
  prov_cfg_free(&c->cfg);
  char *all[] = { c->user_id, c->ssh_user, c->ssh_host, c->key_file, c->pw_cfg, c->pw_fs, c->kh_cfg, c->kh_fs,
                  c->man_cfg, c->man_fs, c->prompt_cfg, c->prompt_fs, c->journal_fs, c->config_written };
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    free(all[i]);
}

/* Undoes steps last..0 that this run or the journal says were created. */
static int rollback(struct prov_ctx *c, const struct prov_step *s, int n, int last, const int *created,
                    const cJSON *journal)
{
  int failed = 0;
  for (int j = last; j >= 0; j--) {
    if (!s[j].undo || !(created[j] || prov_journal_has(journal, s[j].id)))
      continue;
    char err[MX_ERRBUF_LEN] = "";
    mx_err rc = s[j].undo(c, err);
    fprintf(c->out, "  undo [%d/%d] %s: %s%s\n", j + 1, n, s[j].title, rc ? "FAILED: " : "done", rc ? err : "");
    failed |= rc != MX_OK;
  }
  return failed;
}

static mx_err run_step(struct prov_ctx *c, const struct prov_step *s, int k, int n, int *created, char *err)
{
  struct mx_buf note = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  c->skipped = 0;
  fprintf(c->out, "[%d/%d] %s ... ", k + 1, n, s->title);
  fflush(c->out);
  mx_err rc = s->run(c, created, &note, err);
  if (!rc && c->o->fail_at == k + 1)
    rc = mx_fail(MX_ERR_CANCELLED, err, "step %d: injected failure (--fail-at)", k + 1);
  if (rc)
    fprintf(c->out, "failed\n");
  else
    fprintf(c->out, "%s%s\n", c->skipped ? "" : s->is_check ? "ok: " : *created ? "" : "already done: ",
            mx_buf_cstr(&note));
  mx_buf_release(&note);
  return rc;
}

static mx_err run_all(struct prov_ctx *c, const struct prov_step *s, int n, char *err)
{
  cJSON *journal = NULL;
  int created[16] = { 0 };
  mx_err rc = prov_journal_load(c->journal_fs, &journal, err);
  int64_t t0 = mx_mono_ms();
  int k = 0;
  for (; !rc && k < n; k++) {
    rc = run_step(c, &s[k], k, n, &created[k], err);
    if (created[k]) {
      char jerr[MX_ERRBUF_LEN];
      mx_err jrc = prov_journal_mark(c->journal_fs, journal, s[k].id, jerr);
      if (!rc && jrc)
        rc = mx_fail(jrc, err, "journal: %s", jerr);
    }
    if (c->o->fail_at == -(k + 1))
      _exit(3); /* tests: a run killed right after step k */
  }
  if (rc && journal) {
    fprintf(c->out, "rolling back: %s\n", err);
    if (rollback(c, s, n, k - 1, created, journal))
      fprintf(c->out, "rollback incomplete: journal kept at %s\n", c->journal_fs);
    else
      (void)prov_remove(c->journal_fs, NULL);
  } else if (!rc) {
    (void)prov_remove(c->journal_fs, NULL);
    fprintf(c->out, "\xe2\x9c\x93 agent-%s live (%.1f s)\n", c->o->name, (double)(mx_mono_ms() - t0) / 1000.0);
  }
  cJSON_Delete(journal);
  return rc;
}

mx_err dev_prov_add(const struct dev_prov_add_opts *o, const struct dev_prov_matrix_ops *ops, char *err)
{
  struct prov_ctx c;
  memset(&c, 0, sizeof(c));
  c.lock_fd = -1;
  c.ops = ops;
  mx_err rc = ctx_init(&c, o, err);
  if (!rc && o->via == DEV_PROV_VIA_WG)
    rc = run_all(&c, prov_steps_wg, prov_steps_wg_n, err);
  else if (!rc)
    rc = run_all(&c, prov_steps_ssh, prov_steps_ssh_n, err);
  char e2[MX_ERRBUF_LEN];
  /* also after a rollback: what is left (journal, dirs) must stay usable */
  if (c.give_away && prov_owner_apply(c.cfg.data_fs, c.svc_uid, c.svc_gid, e2)) {
    fprintf(c.out, "warning: %s; the service cannot read these files until they are chown'ed\n", e2);
    if (!rc)
      rc = mx_fail(MX_ERR_IO, err, "%s", e2);
  }
  ctx_free(&c);
  return rc;
}
