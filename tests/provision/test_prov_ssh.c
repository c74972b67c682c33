/*
 * test_prov_ssh.c - `mxfleet device add --via ssh` end to end against the
 * real Synapse fixture and a private sshd: the account exists and logs in,
 * the config gains exactly one entry, manifest/prompt/known_hosts are
 * written, the operator has a DM with the greeting; a second run changes
 * nothing; a failure injected at every step leaves no account, config
 * change or file behind; revoke deactivates and keeps the audit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_util.h"
#include "prov_cli.h"
#include "prov_test.h"

struct world {
  char hs[256], server[128], secret[128];
  char dir[256], config[300], config_admin[300], data[300], templates[300], empty_templates[300];
  char key[300], ssh_target[300], prefix[16];
  char op[256], op_token[256], admin_token[256];
  struct pt_matrix m;
  struct dev_prov_matrix_ops ops;
  const char *host_key_fp; /* passed to the next add() */
};
static struct world W;

static void env_line(const char *line, const char *key, char *out, size_t n)
{
  size_t k = strlen(key);
  if (strncmp(line, key, k) == 0 && line[k] == '=')
    assert_true((size_t)snprintf(out, n, "%s", line + k + 1) < n); /* a cut value would mislead */
}

static void load_hs_env(void)
{
  const char *p = getenv("MX_HS_ENV");
  assert_non_null(p);
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    env_line(line, "MX_HS_URL", W.hs, sizeof(W.hs));
    env_line(line, "MX_HS_NAME", W.server, sizeof(W.server));
    env_line(line, "MX_HS_SECRET", W.secret, sizeof(W.secret));
  }
  fclose(f);
  assert_true(W.hs[0] && W.server[0] && W.secret[0]);
}

static void write_text(const char *dir, const char *name, const char *text)
{
  char *p = mx_path_join(dir, name);
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(mx_file_write(p, text, strlen(text), 0600, err), MX_OK);
  free(p);
}

static void register_user(const char *local, int admin, char *token, size_t n)
{
  char err[MX_ERRBUF_LEN] = "", pw[25], uid[256];
  char *tok = NULL;
  assert_int_equal(mx_random_alnum(pw, 24), MX_OK);
  assert_int_equal(prov_hs_register(W.hs, W.secret, local, pw, admin, err), MX_OK);
  snprintf(uid, sizeof(uid), "@%s:%s", local, W.server);
  assert_int_equal(prov_hs_login(W.hs, uid, pw, &tok, err), MX_OK);
  snprintf(token, n, "%s", tok);
  free(tok);
}

static void write_configs(void)
{
  char buf[2048];
  snprintf(buf, sizeof(buf),
           "{\n  \"homeserver\": \"%s/\",\n  \"data_dir\": \"./data\",\n  \"operators\": [\"%s\"],\n"
           "  \"alerts_room\": \"#operator-alerts:%s\",\n  \"registration\": { \"shared_secret_file\": "
           "\"reg.secret\" },\n  \"devices\": [\n    { \"name\": \"pc1\",\n      \"matrix\": { \"user_id\": "
           "\"@agent-pc1:%s\", \"password_file\": \"secrets/pc1.pw\" },\n      \"backend\": { \"kind\": "
           "\"local\" } }\n  ],\n  \"bot\": { \"sync_timeout_ms\": 30000 }\n}\n",
           W.hs, W.op, W.server, W.server);
  write_text(W.dir, "mxfleet.json", buf);
  snprintf(buf, sizeof(buf),
           "{\"homeserver\": \"%s\", \"data_dir\": \"./data\", \"operators\": [\"%s\"],\n"
           " \"registration\": {\"admin_token_file\": \"admin.token\"}}\n",
           W.hs, W.op);
  write_text(W.dir, "admin.json", buf);
  write_text(W.dir, "reg.secret", W.secret);
  write_text(W.dir, "admin.token", W.admin_token);
}

static int group_setup(void **state)
{
  (void)state;
  load_hs_env();
  const char *sshd = getenv("MXF_PROV_SSHD_DIR"), *src = getenv("MXF_PROV_SRC");
  assert_non_null(sshd);
  assert_non_null(src);
  char tmpl[] = "/tmp/mxprov-XXXXXX", port[16] = "", err[MX_ERRBUF_LEN] = "";
  assert_non_null(mkdtemp(tmpl));
  snprintf(W.dir, sizeof(W.dir), "%s", tmpl);
  snprintf(W.config, sizeof(W.config), "%s/mxfleet.json", W.dir);
  snprintf(W.config_admin, sizeof(W.config_admin), "%s/admin.json", W.dir);
  snprintf(W.data, sizeof(W.data), "%s/data", W.dir);
  snprintf(W.templates, sizeof(W.templates), "%s/templates", W.dir);
  snprintf(W.empty_templates, sizeof(W.empty_templates), "%s/no-templates", W.dir);
  snprintf(W.key, sizeof(W.key), "%s/user_ed25519", sshd);
  char *pf = mx_path_join(sshd, "port");
  struct mx_buf pb;
  assert_int_equal(mx_file_read(pf, 64, &pb, err), MX_OK);
  snprintf(port, sizeof(port), "%s", mx_buf_cstr(&pb));
  mx_rtrim(port);
  mx_buf_release(&pb);
  free(pf);
  /* The fixture names its unprivileged login user in DIR/user. */
  char user[64] = "";
  char *uf = mx_path_join(sshd, "user");
  if (mx_file_read(uf, 64, &pb, err) == MX_OK) {
    snprintf(user, sizeof(user), "%s", mx_buf_cstr(&pb));
    mx_rtrim(user);
    mx_buf_release(&pb);
  }
  free(uf);
  snprintf(W.ssh_target, sizeof(W.ssh_target), "%s@127.0.0.1:%s", user[0] ? user : getpwuid(getuid())->pw_name,
           port);
  assert_int_equal(mx_random_alnum(W.prefix, 5), MX_OK);
  for (char *c = W.prefix; *c; c++)
    *c = (char)((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
  char local[64];
  snprintf(local, sizeof(local), "op-%s", W.prefix);
  snprintf(W.op, sizeof(W.op), "@%s:%s", local, W.server);
  register_user(local, 0, W.op_token, sizeof(W.op_token));
  snprintf(local, sizeof(local), "adm-%s", W.prefix);
  register_user(local, 1, W.admin_token, sizeof(W.admin_token));
  assert_int_equal(mx_mkdir_p(W.templates, 0700, err), MX_OK);
  assert_int_equal(mx_mkdir_p(W.empty_templates, 0700, err), MX_OK);
  write_text(W.templates, "linux-ssh.json", "{\"tools\": {\"fs.read\": \"allow\"}}\n");
  write_configs();
  pt_matrix_ops(&W.m, &W.ops);
  return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
  (void)st;
  (void)flag;
  (void)f;
  return remove(p);
}

static int group_teardown(void **state)
{
  (void)state;
  if (W.dir[0] && !getenv("MXF_PROV_KEEP"))
    nftw(W.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* ---- observations ---- */

static char *read_all(const char *path)
{
  struct mx_buf b;
  char err[MX_ERRBUF_LEN] = "";
  if (mx_file_read(path, PROV_CONFIG_MAX, &b, err))
    return mx_strdup("<missing>");
  char *s = mx_buf_take(&b);
  mx_buf_release(&b);
  return s;
}

static struct mx_buf *g_list;
static int list_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
  (void)st;
  (void)f;
  if (flag == FTW_F && mx_buf_addf(g_list, "%s\n", p))
    return 1;
  return 0;
}

/* Every regular file under data_dir, one per line (nftw order is stable
 * for an unchanged tree). */
static char *file_list(void)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  assert_int_equal(mx_buf_adds(&b, ""), MX_OK);
  g_list = &b;
  nftw(W.data, list_one, 16, FTW_PHYS);
  return mx_buf_take(&b);
}

enum { U_ABSENT = 0, U_ACTIVE = 1, U_DEACTIVATED = 2 };

static int user_state(const char *name)
{
  char uid[256], err[MX_ERRBUF_LEN] = "";
  int exists = 0, deact = 0;
  snprintf(uid, sizeof(uid), "@agent-%s:%s", name, W.server);
  assert_int_equal(prov_hs_admin_get(W.hs, W.admin_token, uid, &exists, &deact, err), MX_OK);
  return !exists ? U_ABSENT : deact ? U_DEACTIVATED : U_ACTIVE;
}

static mx_err add(const char *config, const char *name, const char *templates, int fail_at, char **out, char *err)
{
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  struct dev_prov_add_opts o = {
    .config_path = config, .name = name, .via = DEV_PROV_VIA_SSH, .ssh_target = W.ssh_target,
    .key_file = W.key, .templates_dir = templates, .fail_at = fail_at, .out = f, .host_key_fp = W.host_key_fp,
  };
  int64_t t0 = mx_mono_ms();
  mx_err rc = dev_prov_add(&o, &W.ops, err);
  fclose(f);
  printf("--- device add %s (fail_at %d): %s in %lld ms\n%s", name, fail_at, rc ? err : "ok",
         (long long)(mx_mono_ms() - t0), text);
  *out = text;
  return rc;
}

static int count(const char *hay, const char *needle)
{
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

static void name_for(char *out, size_t n, const char *what)
{
  snprintf(out, n, "%s-%s", W.prefix, what);
}

/* The operator was invited to a direct room by the agent and reads the
 * greeting there after joining. */
static void assert_dm_with_greeting(const char *name)
{
  const char *room = W.m.last_room;
  assert_true(room[0]);
  cJSON *r = NULL;
  struct mx_buf p = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char *esc = prov_url("", "%s", room), agent[256];
  snprintf(agent, sizeof(agent), "@agent-%s:%s", name, W.server);
  assert_int_equal(pt_call(W.hs, "POST", "/_matrix/client/v3/join/%s", room, W.op_token, NULL, NULL), 200);
  /* exactly the two of them */
  assert_int_equal(mx_buf_addf(&p, "/_matrix/client/v3/rooms/%s/joined_members", esc), MX_OK);
  assert_int_equal(pt_call(W.hs, "GET", mx_buf_cstr(&p), NULL, W.op_token, NULL, &r), 200);
  const cJSON *joined = mx_json_obj(r, "joined");
  assert_int_equal(cJSON_GetArraySize(joined), 2);
  assert_non_null(cJSON_GetObjectItemCaseSensitive(joined, agent));
  assert_non_null(cJSON_GetObjectItemCaseSensitive(joined, W.op));
  cJSON_Delete(r);
  mx_buf_reset(&p);
  assert_int_equal(mx_buf_addf(&p, "/_matrix/client/v3/rooms/%s/messages?dir=b&limit=50", esc), MX_OK);
  int64_t deadline = mx_mono_ms() + 10000;
  int found = 0;
  while (!found && mx_mono_ms() < deadline) {
    assert_int_equal(pt_call(W.hs, "GET", mx_buf_cstr(&p), NULL, W.op_token, NULL, &r), 200);
    const cJSON *ev = NULL;
    cJSON_ArrayForEach(ev, mx_json_arr(r, "chunk")) {
      const char *body = mx_json_str(mx_json_obj(ev, "content"), "body");
      const char *sender = mx_json_str(ev, "sender");
      found |= body && sender && strcmp(sender, agent) == 0 && strstr(body, "Hello, I am agent-") != NULL;
    }
    cJSON_Delete(r);
    if (!found)
      usleep(100 * 1000); /* poll until the deadline */
  }
  assert_true(found);
  free(esc);
  mx_buf_release(&p);
}

static void assert_files_written(const char *name)
{
  char p[512];
  snprintf(p, sizeof(p), "%s/manifests/%s.json", W.data, name);
  char *man = read_all(p);
  assert_string_equal(man, "{\"tools\": {\"fs.read\": \"allow\"}}\n");
  free(man);
  snprintf(p, sizeof(p), "%s/prompts/%s.md", W.data, name);
  char *prompt = read_all(p);
  assert_non_null(strstr(prompt, "{{device}}"));
  free(prompt);
  snprintf(p, sizeof(p), "%s/ssh/%s.known_hosts", W.data, name);
  char *kh = read_all(p);
  assert_non_null(strstr(kh, "[127.0.0.1]:"));
  assert_non_null(strstr(kh, "ssh-ed25519"));
  free(kh);
}

static void assert_user_logs_in(const char *name)
{
  char p[512], uid[256], err[MX_ERRBUF_LEN] = "";
  char *pw = NULL, *tok = NULL;
  snprintf(p, sizeof(p), "%s/secrets/%s.pw", W.data, name);
  snprintf(uid, sizeof(uid), "@agent-%s:%s", name, W.server);
  assert_int_equal(prov_read_secret(p, "pw", &pw, err), MX_OK);
  assert_int_equal(strlen(pw), 32);
  assert_int_equal(prov_hs_login(W.hs, uid, pw, &tok, err), MX_OK);
  prov_hs_logout(W.hs, tok);
  free(pw);
  free(tok);
}

static void assert_config_entry(const char *before, const char *after, const char *name)
{
  /* everything up to the end of the last existing device is untouched */
  const char *tail = "\n  ],\n  \"bot\": { \"sync_timeout_ms\": 30000 }\n}\n";
  size_t keep = strlen(before) - strlen(tail);
  assert_memory_equal(before, after, keep);
  assert_string_equal(after + strlen(after) - strlen(tail), tail);
  cJSON *root = cJSON_Parse(after);
  const cJSON *devs = mx_json_arr(root, "devices");
  assert_int_equal(cJSON_GetArraySize(devs), 2);
  const cJSON *d = cJSON_GetArrayItem(devs, 1);
  assert_string_equal(mx_json_str(d, "name"), name);
  assert_string_equal(mx_json_str(mx_json_obj(d, "backend"), "kind"), "ssh");
  assert_string_equal(mx_json_str(mx_json_obj(d, "backend"), "key_file"), W.key);
  char want[128];
  snprintf(want, sizeof(want), "./data/secrets/%s.pw", name);
  assert_string_equal(mx_json_str(mx_json_obj(d, "matrix"), "password_file"), want);
  cJSON_Delete(root);
}

/* ---- tests ---- */

/* list (JSON and table) and show see the device, probed live. */
static void assert_list_and_show(const char *name)
{
  char err[MX_ERRBUF_LEN] = "";
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_int_equal(dev_prov_list(W.config, 1, f, err), MX_OK);
  fclose(f);
  cJSON *rows = cJSON_Parse(text);
  const cJSON *row = cJSON_GetArrayItem(rows, 1);
  assert_string_equal(mx_json_str(row, "name"), name);
  assert_string_equal(mx_json_str(row, "backend"), "ssh");
  assert_string_equal(mx_json_str(row, "audit_file"), "none");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(mx_json_obj(row, "ssh"), "ok"))); /* probed live */
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "online")));
  cJSON_Delete(rows);
  free(text);
  f = open_memstream(&text, &len);
  assert_int_equal(dev_prov_list(W.config, 0, f, err), MX_OK);
  fclose(f);
  printf("%s", text);
  assert_non_null(strstr(text, name));
  free(text);
  f = open_memstream(&text, &len);
  assert_int_equal(dev_prov_show(W.config, name, 1, f, err), MX_OK);
  fclose(f);
  cJSON *one = cJSON_Parse(text);
  assert_string_equal(mx_json_str(one, "known_hosts"), "present");
  assert_string_equal(mx_json_str(one, "manifest"), "present");
  cJSON_Delete(one);
  free(text);

}


/* Revoke through the CLI: account deactivated, entry gone (the config is
 * back to cfg0 byte for byte), audit kept; the name stays taken. */
static void assert_revoke_keeps_audit(const char *name, const char *cfg0)
{
  char err[MX_ERRBUF_LEN] = "", audit[512], pwf[512], *out = NULL;
  snprintf(audit, sizeof(audit), "%s/audit", W.data);
  assert_int_equal(mx_mkdir_p(audit, 0700, err), MX_OK);
  snprintf(audit, sizeof(audit), "%s/audit/%s.db", W.data, name);
  assert_int_equal(mx_file_write(audit, "x", 1, 0600, err), MX_OK);
  char *argv[] = { "device", "revoke", (char *)name, "--config", W.config, "--yes", NULL };
  assert_int_equal(dev_provision_cli(6, argv), 0);
  assert_int_equal(user_state(name), U_DEACTIVATED);
  char *cfg3 = read_all(W.config);
  assert_string_equal(cfg3, cfg0);
  assert_true(prov_file_exists(audit));
  snprintf(pwf, sizeof(pwf), "%s/secrets/%s.pw", W.data, name);
  assert_false(prov_file_exists(pwf));

  assert_int_not_equal(add(W.config, name, W.templates, 0, &out, err), MX_OK);
  assert_non_null(strstr(err, "already exists on the homeserver"));
  free(out);
  char *cfg4 = read_all(W.config);
  assert_string_equal(cfg4, cfg0);
  assert_false(prov_file_exists(pwf));
  free(cfg3);
  free(cfg4);
}

static void test_add_twice_then_revoke(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL;
  name_for(name, sizeof(name), "web");
  char *cfg0 = read_all(W.config);
  assert_int_equal(add(W.config, name, W.templates, 0, &out, err), MX_OK);
  for (int k = 1; k <= 7; k++) {
    char step[16];
    snprintf(step, sizeof(step), "[%d/7] ", k);
    assert_non_null(strstr(out, step));
  }
  char live[64];
  snprintf(live, sizeof(live), "\xe2\x9c\x93 agent-%s live", name);
  assert_non_null(strstr(out, live));
  free(out);
  char *cfg1 = read_all(W.config);
  assert_config_entry(cfg0, cfg1, name);
  assert_user_logs_in(name);
  assert_files_written(name);
  assert_int_equal(W.m.rooms_created, 1);
  assert_dm_with_greeting(name);

  /* Second run: same state, every step reports already done. */
  char *files1 = file_list();
  assert_int_equal(add(W.config, name, W.templates, 0, &out, err), MX_OK);
  assert_int_equal(count(out, "already done"), 6); /* all but the login check, which says "ok" */
  assert_non_null(strstr(out, "[2/7] check SSH login (batch mode) ... ok: "));
  free(out);
  char *cfg2 = read_all(W.config), *files2 = file_list();
  assert_string_equal(cfg1, cfg2);
  assert_string_equal(files1, files2);
  assert_int_equal(W.m.rooms_created, 1);

  assert_list_and_show(name);

  assert_revoke_keeps_audit(name, cfg0);
  free(cfg0);
  free(cfg1);
  free(cfg2);
  free(files1);
  free(files2);
}

/* A failure after each step k undoes k..1: no account, no config change,
 * no file. */
static void test_failure_at_every_step_rolls_back(void **state)
{
  (void)state;
  for (int k = 1; k <= 7; k++) {
    char name[32], what[8], err[MX_ERRBUF_LEN] = "", *out = NULL;
    snprintf(what, sizeof(what), "f%d", k);
    name_for(name, sizeof(name), what);
    char *cfg0 = read_all(W.config), *files0 = file_list();
    assert_int_equal(add(W.config, name, W.templates, k, &out, err), MX_ERR_CANCELLED);
    assert_non_null(strstr(out, "rolling back"));
    assert_null(strstr(out, "FAILED"));
    assert_null(strstr(out, "live"));
    free(out);
    char *cfg1 = read_all(W.config), *files1 = file_list();
    assert_string_equal(cfg0, cfg1);
    assert_string_equal(files0, files1);
    assert_int_equal(user_state(name), k < 3 ? U_ABSENT : U_DEACTIVATED);
    free(cfg0);
    free(cfg1);
    free(files0);
    free(files1);
  }
}

static void test_missing_template_fails_clearly(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL;
  name_for(name, sizeof(name), "notmpl");
  char *cfg0 = read_all(W.config), *files0 = file_list();
  assert_int_equal(add(W.config, name, W.empty_templates, 0, &out, err), MX_ERR_NOT_FOUND);
  assert_non_null(strstr(err, "manifest template '"));
  assert_non_null(strstr(err, "/linux-ssh.json' is missing"));
  free(out);
  /* a template enabling a tool the ssh backend does not serve is refused:
   * the device would start without it */
  out = NULL;
  char name2[32];
  name_for(name2, sizeof(name2), "unserved");
  write_text(W.empty_templates, "linux-ssh.json", "{\"tools\": {\"fs.read\": {}, \"fs.write\": {}}}\n");
  assert_int_equal(add(W.config, name2, W.empty_templates, 0, &out, err), MX_ERR_CONFIG);
  assert_non_null(strstr(err, "tools.fs.write: the ssh backend does not serve it"));
  free(out);
  char p[600];
  snprintf(p, sizeof(p), "%s/linux-ssh.json", W.empty_templates);
  unlink(p);
  char *cfg1 = read_all(W.config), *files1 = file_list();
  assert_string_equal(cfg0, cfg1);
  assert_string_equal(files0, files1);
  assert_int_equal(user_state(name), U_DEACTIVATED);
  free(cfg0);
  free(cfg1);
  free(files0);
  free(files1);
}

/* With an admin token the account is made and deactivated through the
 * admin API; a rolled-back name is refused on the next run, clearly. */
static void test_admin_token_path(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL;
  name_for(name, sizeof(name), "adm");
  char *cfg0 = read_all(W.config_admin);
  assert_int_equal(add(W.config_admin, name, W.templates, 6, &out, err), MX_ERR_CANCELLED);
  free(out);
  assert_int_equal(user_state(name), U_DEACTIVATED);
  char *cfg1 = read_all(W.config_admin);
  assert_string_equal(cfg0, cfg1);
  assert_int_equal(add(W.config_admin, name, W.templates, 0, &out, err), MX_ERR_CONFLICT);
  assert_non_null(strstr(err, "is deactivated (revoked or rolled back); pick another device name"));
  free(out);
  name_for(name, sizeof(name), "adm2");
  assert_int_equal(add(W.config_admin, name, W.templates, 0, &out, err), MX_OK);
  free(out);
  assert_int_equal(user_state(name), U_ACTIVE);
  assert_user_logs_in(name);
  assert_int_equal(dev_prov_revoke(W.config_admin, name, &W.ops, stdout, err), MX_OK);
  assert_int_equal(user_state(name), U_DEACTIVATED);
  char *cfg2 = read_all(W.config_admin);
  cJSON *root = cJSON_Parse(cfg2); /* the config had no devices key: an empty array stays */
  assert_int_equal(cJSON_GetArraySize(mx_json_arr(root, "devices")), 0);
  assert_memory_equal(cfg0, cfg2, strlen(cfg0) - 3); /* up to the last member's end */
  cJSON_Delete(root);
  free(cfg0);
  free(cfg1);
  free(cfg2);
}

/* A run killed after step 3 leaves its journal; the next run that fails
 * undoes what the killed run created too (the account it made). */
static void test_killed_run_is_rolled_back_by_next_failure(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL, journal[512];
  name_for(name, sizeof(name), "killed");
  snprintf(journal, sizeof(journal), "%s/provision/%s.json", W.data, name);
  char *cfg0 = read_all(W.config), *files0 = file_list();
  fflush(stdout);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char e[MX_ERRBUF_LEN];
    char *o = NULL;
    (void)add(W.config, name, W.templates, -3, &o, e);
    _exit(0); /* not reached: the run exits with 3 after step 3 */
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
  assert_true(prov_file_exists(journal));
  assert_int_equal(user_state(name), U_ACTIVE);
  /* Step 3 now finds the account in place ("already done"), yet a failure
   * at step 5 must still undo it: the journal says the killed run made it. */
  assert_int_equal(add(W.config, name, W.templates, 5, &out, err), MX_ERR_CANCELLED);
  assert_non_null(strstr(out, "[3/7] create the Matrix user ... already done"));
  assert_non_null(strstr(out, "undo [3/7] create the Matrix user: done"));
  free(out);
  assert_int_equal(user_state(name), U_DEACTIVATED);
  assert_false(prov_file_exists(journal));
  char *cfg1 = read_all(W.config), *files1 = file_list();
  assert_string_equal(cfg0, cfg1);
  assert_string_equal(files0, files1);
  free(cfg0);
  free(cfg1);
  free(files0);
  free(files1);
}

/* A killed run is finished by simply running the command again. */
static void test_killed_run_is_completed_by_rerun(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL, journal[512];
  name_for(name, sizeof(name), "resume");
  snprintf(journal, sizeof(journal), "%s/provision/%s.json", W.data, name);
  fflush(stdout);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char e[MX_ERRBUF_LEN];
    char *o = NULL;
    (void)add(W.config, name, W.templates, -5, &o, e);
    _exit(0);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
  assert_int_equal(add(W.config, name, W.templates, 0, &out, err), MX_OK);
  assert_non_null(strstr(out, "[5/7] write the manifest and prompt ... already done"));
  assert_non_null(strstr(out, "live"));
  free(out);
  assert_false(prov_file_exists(journal));
  assert_user_logs_in(name);
  assert_files_written(name);
  assert_int_equal(dev_prov_revoke(W.config, name, &W.ops, stdout, err), MX_OK);
}

static void test_concurrent_run_is_refused(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL, dir[512];
  name_for(name, sizeof(name), "locked");
  snprintf(dir, sizeof(dir), "%s/provision", W.data);
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0); /* another run holds it */
  char *cfg0 = read_all(W.config);
  assert_int_equal(add(W.config, name, W.templates, 0, &out, err), MX_ERR_CONFLICT);
  assert_non_null(strstr(err, "another 'mxfleet device add' is running"));
  free(out);
  close(fd);
  char *cfg1 = read_all(W.config);
  assert_string_equal(cfg0, cfg1);
  assert_int_equal(user_state(name), U_ABSENT);
  free(cfg0);
  free(cfg1);
}

static void test_wrong_host_key_is_not_pinned(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL, kh[512];
  name_for(name, sizeof(name), "mitm");
  snprintf(kh, sizeof(kh), "%s/ssh/%s.known_hosts", W.data, name);
  W.host_key_fp = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  mx_err rc = add(W.config, name, W.templates, 0, &out, err);
  W.host_key_fp = NULL;
  assert_int_equal(rc, MX_ERR_DENIED);
  assert_non_null(strstr(err, "expected 'SHA256:AAAA"));
  free(out);
  assert_false(prov_file_exists(kh));
  assert_int_equal(user_state(name), U_ABSENT);
}

/* Without Matrix callbacks (a build without the bot's E2EE client) the
 * account and config are still made; the two callback steps say skipped.
 * No --templates: the manifest comes from the source tree's templates. */
static void test_without_callbacks_steps_say_skipped(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL;
  name_for(name, sizeof(name), "bare");
  const struct dev_prov_matrix_ops saved = W.ops;
  memset(&W.ops, 0, sizeof(W.ops));
  mx_err rc = add(W.config, name, NULL, 0, &out, err); /* the real tools/templates */
  W.ops = saved;
  assert_int_equal(rc, MX_OK);
  char p[512];
  snprintf(p, sizeof(p), "%s/tools/templates/linux-ssh.json", getenv("MXF_PROV_SRC")); /* --via ssh */
  char *want = read_all(p);
  snprintf(p, sizeof(p), "%s/manifests/%s.json", W.data, name);
  char *got = read_all(p);
  assert_string_equal(got, want);
  free(want);
  free(got);
  assert_non_null(strstr(out, "[4/7] log in and bootstrap the E2EE identity ... login works; E2EE bootstrap skipped"));
  assert_non_null(strstr(out, "[7/7] open a DM with each operator and greet ... skipped (no Matrix client linked)"));
  assert_null(strstr(out, "already done: skipped"));
  free(out);
  assert_user_logs_in(name);
  assert_int_equal(dev_prov_revoke(W.config, name, NULL, stdout, err), MX_OK);
}

static void test_cli_usage_errors(void **state)
{
  (void)state;
  char *help[] = { "device", "--help", NULL };
  assert_int_equal(dev_provision_cli(2, help), 0);
  /* without --config: $MXFLEET_CONFIG (else the built-in default path) */
  char *noconf[] = { "device", "list", NULL };
  setenv("MXFLEET_CONFIG", "/nonexistent/mxfleet.json", 1);
  assert_int_equal(dev_provision_cli(2, noconf), 1);
  unsetenv("MXFLEET_CONFIG");
  char *badvia[] = { "device", "add", "x", "--via", "carrier-pigeon", "--ssh", "a@b", "--config", W.config, NULL };
  assert_int_equal(dev_provision_cli(9, badvia), 2);
  char *badname[] = { "device", "add", "Bad_Name", "--ssh", "a@b", "--config", W.config, NULL };
  assert_int_equal(dev_provision_cli(7, badname), 1);
  char *unknown[] = { "device", "frobnicate", "x", "--config", W.config, NULL };
  assert_int_equal(dev_provision_cli(5, unknown), 2);
  char *noyes[] = { "device", "revoke", "pc1", "--config", W.config, NULL };
  assert_int_equal(dev_provision_cli(5, noyes), 1); /* stdin is not a TTY under ctest */
  char *badwait[] = { "device", "add", "x", "--ssh", "a@b", "--health-wait", "soon", "--config", W.config, NULL };
  assert_int_equal(dev_provision_cli(9, badwait), 2);
  char *badport[] = { "device", "add", "x", "--ssh", "a@b:99999", "--config", W.config, NULL };
  assert_int_equal(dev_provision_cli(7, badport), 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cli_usage_errors),
    cmocka_unit_test(test_add_twice_then_revoke),
    cmocka_unit_test(test_failure_at_every_step_rolls_back),
    cmocka_unit_test(test_missing_template_fails_clearly),
    cmocka_unit_test(test_admin_token_path),
    cmocka_unit_test(test_killed_run_is_rolled_back_by_next_failure),
    cmocka_unit_test(test_killed_run_is_completed_by_rerun),
    cmocka_unit_test(test_concurrent_run_is_refused),
    cmocka_unit_test(test_wrong_host_key_is_not_pinned),
    cmocka_unit_test(test_without_callbacks_steps_say_skipped),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
