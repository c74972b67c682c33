/*
 * bot/mx_config_check.c - `mxfleet config check [--config FILE] [--online]`:
 * everything `mxfleet run` reads before it connects anywhere, through the
 * same code (mx_config_load, llm_config_parse, llm_stt_config_parse, the
 * device manifests and prompt templates), plus the modes and owners of the
 * secret files. --online then tries each outside party once: the
 * homeserver (/versions and each identity's login), each LLM provider and
 * each device backend (SSH host key and auth, the agent's /v1/health).
 * Exit 0 when all is well, 1 when anything failed, 2 for usage errors.
 * Layer: bot (the CLI); calls down only. Never prints a secret's value.
 */
#include "mx_cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "llm_cli.h"
#include "llm_config.h"
#include "llm_prompt.h"
#include "llm_stt.h"
#include "mx_api.h"
#include "mx_config.h"
#include "mx_db.h"
#include "mx_device.h"
#include "mx_json.h"
#include "mx_store.h"
#include "mx_util.h"

struct check {
  const struct mx_config *cfg;
  char *dir;       /* the config file's directory (relative llm/speech key files) */
  int failed;
};

static void bad(struct check *k, const char *path, const char *fmt, ...) MX_PRINTF(3, 4);

/* One line per problem: "FILE: key.path: what is wrong". */
static void bad(struct check *k, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: %s%s", k->cfg->path, path ? path : "", path ? ": " : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  k->failed = 1;
}

/* ---- secret files ---- */

/* A secret file is a regular file the running user can read, that others
 * cannot read or write and the group cannot write, owned by the running
 * user or root (so a service user cannot be handed someone else's key). */
static void check_secret(struct check *k, const char *path, const char *file)
{
  struct stat st;
  if (!file)
    return;
  if (stat(file, &st) != 0) {
    bad(k, path, "cannot read '%s': %s", file, strerror(errno));
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    bad(k, path, "expected a regular file, got '%s'", file);
    return;
  }
  if (access(file, R_OK) != 0)
    bad(k, path, "cannot read '%s': %s", file, strerror(errno));
  if (st.st_mode & 0027)
    bad(k, path, "'%s' has mode %04o: expected no access for others and no group write, like 0600 or 0640",
        file, (unsigned)(st.st_mode & 07777));
  uid_t me = geteuid();
  if (me != 0 && st.st_uid != me && st.st_uid != 0)
    bad(k, path, "'%s' is owned by uid %u: expected the user running mxfleet (uid %u) or root", file,
        (unsigned)st.st_uid, (unsigned)me);
}

/* registration.*: only onboarding reads them, and it runs as root; the
 * service user (ExecStartPre) need not, and should not, be able to read the
 * homeserver's registration secret. Root-owned and unreadable to us is fine. */
static void check_onboarding_secret(struct check *k, const char *path, const char *file)
{
  struct stat st;
  if (file && geteuid() != 0 && stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 &&
      access(file, R_OK) != 0) {
    if (st.st_mode & 0027)
      bad(k, path, "'%s' has mode %04o: expected no access for others and no group write, like 0600 or 0640",
          file, (unsigned)(st.st_mode & 07777));
    return;
  }
  check_secret(k, path, file);
}

/* api_key_file inside the llm/speech blocks (their parsers read the key
 * but keep no path). */
static void check_key_file(struct check *k, const cJSON *o, const char *path)
{
  const char *f = mx_json_str(o, "api_key_file");
  char p[160];
  if (!f)
    return;
  char *abs = mx_path_join(k->dir, f);
  int n = snprintf(p, sizeof(p), "%s.api_key_file", path); /* path is a short key path we made */
  check_secret(k, n > 0 && (size_t)n < sizeof(p) ? p : "api_key_file", abs);
  free(abs);
}

static void check_secrets(struct check *k)
{
  const struct mx_config *c = k->cfg;
  char p[160];
  for (size_t i = 0; i < c->n_devices; i++) {
    const struct mx_device_config *d = &c->devices[i];
    snprintf(p, sizeof(p), "devices[%zu].matrix.password_file", i);
    check_secret(k, p, d->password_file);
    snprintf(p, sizeof(p), "devices[%zu].backend.key_file", i);
    check_secret(k, p, d->ssh_key_file);
    snprintf(p, sizeof(p), "devices[%zu].backend.hmac_key_file", i);
    check_secret(k, p, d->wg_hmac_key_file);
  }
  check_onboarding_secret(k, "registration.shared_secret_file", c->registration_shared_secret_file);
  check_onboarding_secret(k, "registration.admin_token_file", c->registration_admin_token_file);
  size_t i = 0;
  const cJSON *pr;
  cJSON_ArrayForEach(pr, mx_json_arr(c->llm, "providers")) {
    snprintf(p, sizeof(p), "llm.providers[%zu]", i++);
    check_key_file(k, pr, p);
  }
  if (c->speech)
    check_key_file(k, c->speech, "speech");
}

/* ---- what run loads ---- */

static void check_prompt(struct check *k, const char *path, const char *dir, const char *file)
{
  struct llm_prompt_vars v = {"pc1", "local", "linux", "- fs.read: read a file", "read-only", "2026-01-01 00:00 UTC"};
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_SMALL * 8);
  char err[MX_ERRBUF_LEN];
  if (llm_prompt_load(dir, file, &v, &out, err))
    bad(k, path, "%s", err);
  mx_buf_release(&out);
}

/* "device pc1: local backend, manifest FILE, tools: fs.read, ..." - the
 * tools the model will be offered: the manifest's that the backend serves. */
static void print_device(const struct mx_device_config *d, const struct tools_manifest *m, const char *where)
{
  const char *const *served = dev_served_tools(mx_backend_name(d->backend));
  int n = 0;
  printf("device %s: %s backend, manifest %s, tools:", d->name, mx_backend_name(d->backend), where);
  for (size_t i = 0; served && served[i]; i++)
    if (tools_policy_enabled(m, served[i]))
      printf("%s %s", n++ ? "," : "", served[i]);
  printf("%s\n", n ? "" : " none");
}

static void check_devices(struct check *k, const struct llm_config *lc)
{
  const struct mx_config *c = k->cfg;
  char p[160], where[256], err[MX_ERRBUF_LEN];
  for (size_t i = 0; i < c->n_devices; i++) {
    const struct mx_device_config *d = &c->devices[i];
    struct tools_manifest *m = NULL;
    snprintf(p, sizeof(p), "devices[%zu].manifest", i);
    if (mx_device_manifest_load(c, d, &m, where, sizeof(where), err))
      bad(k, p, "%s", err);
    else
      print_device(d, m, where);
    tools_manifest_free(m);
    snprintf(p, sizeof(p), "devices[%zu].prompt", i);
    if (d->prompt && access(d->prompt, R_OK) != 0)
      bad(k, p, "cannot read '%s': %s", d->prompt, strerror(errno));
    else if (d->prompt && lc)
      check_prompt(k, p, NULL, d->prompt);
  }
}

mx_err mx_config_check_blocks(const struct mx_config *cfg, struct llm_config **lc, char *err)
{
  struct llm_config *own = NULL;
  mx_err rc = cfg->llm ? llm_config_parse(cfg->llm, cfg->path, lc ? lc : &own, err) : MX_OK;
  llm_config_free(own);
  if (!rc && cfg->speech) {
    struct llm_stt_config stt;
    llm_stt_config_init(&stt);
    rc = llm_stt_config_parse(cfg->speech, cfg->path, "speech", &stt, err);
    llm_stt_config_release(&stt);
  }
  return rc;
}

static void check_blocks(struct check *k, struct llm_config **lc)
{
  char err[MX_ERRBUF_LEN];
  if (mx_config_check_blocks(k->cfg, lc, err)) {
    fprintf(stderr, "%s\n", err);
    k->failed = 1;
  }
  if (*lc)
    check_prompt(k, "llm.agent.prompt_file", (*lc)->agent.prompts_dir, (*lc)->agent.prompt_file);
}

/* ---- --online ---- */

static const struct mx_api_opts online_opts = { 10000, 15000, 1 };

/* The stored login when the daemon has one (no new Matrix device), else a
 * password login that is logged out again at once. */
static mx_err try_identity(const struct mx_config *c, const struct mx_device_config *d, const char **how,
                           char *err)
{
  struct mx_api *api = mx_api_new(c->homeserver, d->user_id, NULL);
  char *db_path = mx_path_join(c->data_dir, "mxfleet.db");
  sqlite3 *db = NULL;
  struct mx_store_ident st = { 0 };
  cJSON *resp = NULL, *body = NULL;
  mx_err rc = api && db_path ? MX_OK : MX_ERR_NOMEM;
  int stored = !rc && access(db_path, F_OK) == 0 && !mx_db_open(db_path, &db, err) &&
               !mx_store_ident_load(db, d->user_id, &st, err);
  if (!rc && stored) {
    *how = "stored login";
    mx_api_set_token(api, st.access_token);
    rc = mx_api_call(api, "GET", "/_matrix/client/v3/account/whoami", NULL, &online_opts, NULL, &resp, err);
    const char *who = resp ? mx_json_str(resp, "user_id") : NULL;
    if (!rc && (!who || strcmp(who, d->user_id) != 0))
      rc = mx_fail(MX_ERR_AUTH, err, "whoami: expected %s, got '%s'", d->user_id, who ? who : "");
  } else if (!rc) {
    *how = "password login";
    struct mx_buf pw;
    rc = mx_file_read(d->password_file, MX_BUF_MAX_SMALL, &pw, err);
    if (!rc) {
      mx_rtrim(pw.buf);
      body = cJSON_CreateObject();
      cJSON *id = cJSON_AddObjectToObject(body, "identifier");
      cJSON_AddStringToObject(id, "type", "m.id.user");
      cJSON_AddStringToObject(id, "user", d->user_id);
      cJSON_AddStringToObject(body, "type", "m.login.password");
      cJSON_AddStringToObject(body, "password", pw.buf);
      cJSON_AddStringToObject(body, "initial_device_display_name", "mxfleet config check");
      memset(pw.buf, 0, pw.len);
      mx_buf_release(&pw);
      rc = mx_api_call(api, "POST", "/_matrix/client/v3/login", body, &online_opts, NULL, &resp, err);
    }
    const char *token = resp ? mx_json_str(resp, "access_token") : NULL;
    if (!rc && token) {
      cJSON *none = NULL, *empty = cJSON_CreateObject();
      mx_api_set_token(api, token);
      char lerr[MX_ERRBUF_LEN];
      mx_api_call(api, "POST", "/_matrix/client/v3/logout", empty, &online_opts, NULL, &none, lerr);
      cJSON_Delete(empty);
      cJSON_Delete(none);
    }
  }
  cJSON *secret = body ? cJSON_GetObjectItemCaseSensitive(body, "password") : NULL;
  if (secret && secret->valuestring) /* wiped before the memory goes back */
    memset(secret->valuestring, 0, strlen(secret->valuestring));
  cJSON_Delete(body);
  cJSON_Delete(resp);
  mx_store_ident_release(&st);
  mx_db_close(db);
  free(db_path);
  mx_api_free(api);
  return rc;
}

static void online_homeserver(struct check *k)
{
  const struct mx_config *c = k->cfg;
  char err[MX_ERRBUF_LEN];
  struct mx_api *api = mx_api_new(c->homeserver, NULL, NULL);
  cJSON *resp = NULL;
  mx_err rc = api ? mx_api_call(api, "GET", "/_matrix/client/versions", NULL, &online_opts, NULL, &resp, err)
                  : mx_fail(MX_ERR_NOMEM, err, "out of memory");
  if (!rc && !mx_json_arr(resp, "versions"))
    rc = mx_fail(MX_ERR_INVALID, err, "/_matrix/client/versions: expected a \"versions\" array");
  cJSON_Delete(resp);
  mx_api_free(api);
  if (rc) {
    bad(k, "homeserver", "%s unreachable: %s", c->homeserver, err);
    return;
  }
  printf("homeserver %s: ok\n", c->homeserver);
  for (size_t i = 0; i < c->n_devices; i++) {
    const char *how = "login";
    char p[160];
    snprintf(p, sizeof(p), "devices[%zu].matrix", i);
    if (try_identity(c, &c->devices[i], &how, err))
      bad(k, p, "%s (%s): %s", c->devices[i].user_id, how, err);
    else
      printf("identity %s: ok (%s)\n", c->devices[i].user_id, how);
  }
}

static void online_backends(struct check *k)
{
  const struct mx_config *c = k->cfg;
  char p[160], where[256], err[MX_ERRBUF_LEN];
  for (size_t i = 0; i < c->n_devices; i++) {
    const struct mx_device_config *d = &c->devices[i];
    struct tools_manifest *m = NULL;
    struct dev_backend *b = NULL;
    cJSON *info = NULL;
    snprintf(p, sizeof(p), "devices[%zu].backend", i);
    mx_err rc = mx_device_manifest_load(c, d, &m, where, sizeof(where), err);
    if (!rc)
      rc = mx_device_backend_open(c, d, m, &b, err);
    if (!rc)
      rc = b->health(b, &info, err);
    if (rc)
      bad(k, p, "%s (%s): %s", d->name, mx_backend_name(d->backend), err);
    else
      printf("backend %s (%s): ok\n", d->name, mx_backend_name(d->backend));
    cJSON_Delete(info);
    if (b)
      b->destroy(b);
    tools_manifest_free(m);
  }
}

static void online(struct check *k, const struct llm_config *lc)
{
  online_homeserver(k);
  if (lc) {
    fflush(stdout);
    if (llm_cli_ping(lc, stdout)) {
      fprintf(stderr, "%s: llm.providers: a provider did not answer (see above)\n", k->cfg->path);
      k->failed = 1;
    }
  }
  online_backends(k);
}

static int check_file(const char *file, int want_online)
{
  struct mx_config *cfg = NULL;
  char err[MX_ERRBUF_LEN] = "";
  if (mx_config_load(file, &cfg, err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  struct check k = { cfg, NULL, 0 };
  char abs[PATH_MAX];
  k.dir = realpath(file, abs) ? mx_strdup(abs) : mx_strdup(".");
  char *slash = k.dir ? strrchr(k.dir, '/') : NULL;
  if (slash)
    slash[slash == k.dir ? 1 : 0] = '\0';
  struct llm_config *lc = NULL;
  check_blocks(&k, &lc);
  check_secrets(&k);
  check_devices(&k, lc);
  if (want_online && !k.failed)
    online(&k, lc);
  else if (want_online)
    fprintf(stderr, "%s: --online skipped: fix the problems above first\n", file);
  if (!k.failed)
    printf("%s: ok (%zu device%s%s%s)\n", file, cfg->n_devices, cfg->n_devices == 1 ? "" : "s",
           cfg->llm ? ", llm" : "", cfg->speech ? ", speech" : "");
  llm_config_free(lc);
  free(k.dir);
  mx_config_free(cfg);
  return k.failed;
}

static const char config_usage[] =
    "usage: mxfleet config check [--config FILE] [--online]\n\n"
    "Loads FILE the way 'mxfleet run' does (the config, the llm and speech blocks, every device's\n"
    "manifest and prompt template) and checks that secret files are readable by this user only\n"
    "(no access for others, no group write). Each problem is one line naming the key path.\n"
    "--online also tries the homeserver (/versions, then each identity's login), each LLM\n"
    "provider (one short request) and each device backend (SSH host key and login, the agent's\n"
    "/v1/health). FILE defaults to $MXFLEET_CONFIG, else " MXFLEET_DEFAULT_CONFIG ".\n"
    "Exit status: 0 all good, 1 a problem was found, 2 usage error.\n";

int mx_cli_config(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "online", no_argument, NULL, 'o' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  if (argc < 2 || strcmp(argv[1], "check") != 0) {
    int help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    if (!help && argc >= 2)
      fprintf(stderr, "mxfleet config: unknown action '%s' (expected check)\n", argv[1]);
    fputs(config_usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  const char *config = NULL;
  int want_online = 0, c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "c:oh", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 'o': want_online = 1; break;
    case 'h': fputs(config_usage, stdout); return 0;
    default: return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "mxfleet config check: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  return check_file(mx_config_path(config), want_online);
}
