/*
 * test_prov_wg.c - `mxfleet device add --via wg` end to end, run inside the
 * hub namespace of tests/provision/wgnet-prov: a real Synapse, the hub's
 * wireguard-go, and a device namespace reached over SSH where onboarding
 * brings up WireGuard and mxfleet-agent with the real tools/templates
 * manifest. Checks: the agent answers signed
 * /v1/health through the tunnel, a re-run changes nothing, a killed agent
 * is repaired by a re-run, a re-run with a changed agent replaces the
 * running one, a failure at every step leaves no hub peer,
 * account, config change, local or remote file, and revoke removes the peer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_util.h"
#include "dev_wg.h"
#include "prov_test.h"

static struct {
  char hs[256], server[128], secret[128], op[256], op_token[256], admin_token[256];
  char dir[300], config[320], data[320], key[320], agent[512], wg_if[32], tag[16], prefix[8];
  struct pt_matrix m;
  struct dev_prov_matrix_ops ops;
} W;

static void env_line(const char *line, const char *key, char *out, size_t n)
{
  size_t k = strlen(key);
  if (strncmp(line, key, k) == 0 && line[k] == '=')
    assert_true((size_t)snprintf(out, n, "%s", line + k + 1) < n); /* a cut value would mislead */
}

static void write_text(const char *path, const char *text)
{
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(mx_file_write(path, text, strlen(text), 0600, err), MX_OK);
}

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

static void load_env(void)
{
  const char *e = getenv("MX_HS_ENV"), *d = getenv("MXF_WG_DIR"), *i = getenv("MXF_WG_IF");
  const char *t = getenv("MXF_WG_TAG"), *a = getenv("MXF_AGENT_BIN");
  assert_true(e && d && i && t && a);
  FILE *f = fopen(e, "r");
  assert_non_null(f);
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    env_line(line, "MX_HS_URL", W.hs, sizeof(W.hs));
    env_line(line, "MX_HS_NAME", W.server, sizeof(W.server));
    env_line(line, "MX_HS_SECRET", W.secret, sizeof(W.secret));
  }
  fclose(f);
  snprintf(W.wg_if, sizeof(W.wg_if), "%s", i);
  snprintf(W.tag, sizeof(W.tag), "%s", t);
  snprintf(W.agent, sizeof(W.agent), "%s", a);
  snprintf(W.key, sizeof(W.key), "%s/user_ed25519", d);
}

static int group_setup(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "", buf[2048], local[64];
  load_env();
  snprintf(W.dir, sizeof(W.dir), "%s/run", getenv("MXF_WG_DIR"));
  assert_int_equal(mx_mkdir_p(W.dir, 0755, err), MX_OK);
  snprintf(W.config, sizeof(W.config), "%s/mxfleet.json", W.dir);
  snprintf(W.data, sizeof(W.data), "%s/data", W.dir);
  assert_int_equal(mx_random_alnum(W.prefix, 4), MX_OK);
  for (char *c = W.prefix; *c; c++)
    *c = (char)((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
  snprintf(local, sizeof(local), "op-%s", W.prefix);
  snprintf(W.op, sizeof(W.op), "@%s:%s", local, W.server);
  register_user(local, 0, W.op_token, sizeof(W.op_token));
  snprintf(local, sizeof(local), "adm-%s", W.prefix);
  register_user(local, 1, W.admin_token, sizeof(W.admin_token));
  snprintf(buf, sizeof(buf),
           "{\n  \"homeserver\": \"%s\",\n  \"data_dir\": \"data\",\n  \"operators\": [\"%s\"],\n"
           "  \"health\": { \"wg_interface\": \"%s\" },\n  \"registration\": { \"shared_secret_file\": "
           "\"reg.secret\" },\n  \"devices\": []\n}\n",
           W.hs, W.op, W.wg_if);
  write_text(W.config, buf);
  snprintf(buf, sizeof(buf), "%s/reg.secret", W.dir);
  write_text(buf, W.secret);
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
  nftw(W.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static struct mx_buf *g_list;
static int list_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
  (void)st;
  (void)f;
  return flag != FTW_D && mx_buf_addf(g_list, "%s\n", p) ? 1 : 0;
}

/* Every file and symlink under root, one per line. */
static char *file_list(const char *root)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  assert_int_equal(mx_buf_adds(&b, ""), MX_OK);
  g_list = &b;
  nftw(root, list_one, 16, FTW_PHYS);
  return mx_buf_take(&b);
}

static char *hub_peers(void)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char err[MX_ERRBUF_LEN] = "";
  const char *q[] = { "show", W.wg_if, "allowed-ips", NULL };
  assert_int_equal(prov_wg_cmd(q, &b, err), MX_OK);
  assert_int_equal(mx_buf_adds(&b, ""), MX_OK);
  return mx_buf_take(&b);
}

static int user_state(const char *name)
{
  char uid[256], err[MX_ERRBUF_LEN] = "";
  int exists = 0, deact = 0;
  snprintf(uid, sizeof(uid), "@agent-%s:%s", name, W.server);
  assert_int_equal(prov_hs_admin_get(W.hs, W.admin_token, uid, &exists, &deact, err), MX_OK);
  return !exists ? 0 : deact ? 2 : 1;
}

static void remote_dir(const char *name, char *out, size_t n)
{
  snprintf(out, n, "%s/remote-%s", W.dir, name); /* the namespaces share the file system */
}

static const char *g_agent_bin; /* overrides W.agent for the next add() */
static int g_wait_s = 20;

static mx_err add(const char *name, int k, int fail_at, char **out, char *err)
{
  char *text = NULL, rdir[400], dif[40];
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  remote_dir(name, rdir, sizeof(rdir));
  snprintf(dif, sizeof(dif), "mxpv%s%d", W.tag, k);
  struct dev_prov_add_opts o = {
    .config_path = W.config, .name = name, .via = DEV_PROV_VIA_WG, .ssh_target = "root@192.0.2.2",
    .key_file = W.key, .templates_dir = NULL /* the real tools/templates */, .hub_endpoint = "192.0.2.1:51820", .agent_bin = g_agent_bin ? g_agent_bin : W.agent,
    .remote_dir = rdir, .device_if = dif, .health_wait_s = g_wait_s, .fail_at = fail_at, .out = f,
    .no_systemd = 1, /* the namespaces share the host's file system: never touch its systemd */
  };
  int64_t t0 = mx_mono_ms();
  mx_err rc = dev_prov_add(&o, &W.ops, err);
  fclose(f);
  printf("--- device add %s --via wg (fail_at %d): %s in %lld ms\n%s", name, fail_at, rc ? err : "ok",
         (long long)(mx_mono_ms() - t0), text);
  fflush(stdout);
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

/* Signed GET /v1/health through the tunnel, as the bot does it. */
static mx_err agent_health(const char *name, const char *addr)
{
  char url[64], hmac[400], err[MX_ERRBUF_LEN] = "";
  snprintf(url, sizeof(url), "http://%s:7443", addr);
  snprintf(hmac, sizeof(hmac), "%s/keys/%s.hmac", W.data, name);
  struct dev_wg_config wc = { .url = url, .key_file = hmac, .data_dir = W.data, .device = name,
                              .connect_timeout_ms = 2000 };
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

static const cJSON *device_entry(cJSON *root, const char *name)
{
  const cJSON *d = NULL;
  cJSON_ArrayForEach(d, mx_json_arr(root, "devices")) {
    if (strcmp(mx_json_str(d, "name"), name) == 0)
      return d;
  }
  return NULL;
}

static void kill_agent(const char *name)
{
  char p[512], pidf[600];
  remote_dir(name, p, sizeof(p));
  snprintf(pidf, sizeof(pidf), "%s/agent.pid", p);
  char *pid = read_all(pidf);
  assert_true(atoi(pid) > 0);
  assert_int_equal(kill(atoi(pid), SIGTERM), 0);
  free(pid);
}

/* `device list --json` probes the new device: handshake done, agent ok. */
static void assert_listed_online(const char *name)
{
  char err[MX_ERRBUF_LEN] = "", *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_int_equal(dev_prov_list(W.config, 1, f, err), MX_OK);
  fclose(f);
  cJSON *rows = cJSON_Parse(text);
  const cJSON *r = cJSON_GetArrayItem(rows, 0);
  assert_string_equal(mx_json_str(r, "name"), name);
  assert_string_equal(mx_json_str(r, "mesh_address"), "198.51.100.2");
  int64_t hs = 0;
  assert_true(mx_json_int(r, "last_handshake", &hs) && hs > 0);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(mx_json_obj(r, "agent"), "ok")));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "online")));
  cJSON_Delete(rows);
  free(text);
}

/* A stopped agent is repaired by the same command; the config stays. */
static void assert_repairs_stopped_agent(const char *name, const char *cfg1)
{
  char err[MX_ERRBUF_LEN] = "", *out = NULL;
  kill_agent(name);
  int64_t deadline = mx_mono_ms() + 10000;
  while (agent_health(name, "198.51.100.2") == MX_OK && mx_mono_ms() < deadline)
    usleep(100 * 1000);
  assert_int_not_equal(agent_health(name, "198.51.100.2"), MX_OK);
  assert_int_equal(add(name, 0, 0, &out, err), MX_OK);
  assert_non_null(strstr(out, "[12/13] start the agent and wait for /v1/health ... started"));
  free(out);
  assert_int_equal(agent_health(name, "198.51.100.2"), MX_OK);
  char *cfg3 = read_all(W.config);
  assert_string_equal(cfg1, cfg3);

  free(cfg3);
}

static int agent_pid(const char *name)
{
  char p[512], pidf[600];
  remote_dir(name, p, sizeof(p));
  snprintf(pidf, sizeof(pidf), "%s/agent.pid", p);
  char *pid = read_all(pidf);
  int n = atoi(pid);
  free(pid);
  return n;
}

/* A re-run with another agent (an upgrade) uploads the changed bundle and
 * replaces the running agent, though the old one still answers. */
static void assert_rerun_installs_new_agent(const char *name)
{
  char err[MX_ERRBUF_LEN] = "", *out = NULL, v2[400], rdir[400], remote_bin[500];
  snprintf(v2, sizeof(v2), "%s/mxfleet-agent-v2", W.dir);
  struct mx_buf b;
  assert_int_equal(mx_file_read(W.agent, (size_t)64 * 1024 * 1024, &b, err), MX_OK);
  assert_int_equal(mx_buf_adds(&b, "v2"), MX_OK); /* trailing bytes: the same program, another file */
  assert_int_equal(mx_file_write(v2, b.buf, b.len, 0755, err), MX_OK);
  int old_pid = agent_pid(name);
  assert_int_equal(agent_health(name, "198.51.100.2"), MX_OK);
  g_agent_bin = v2;
  mx_err rc = add(name, 0, 0, &out, err);
  g_agent_bin = NULL;
  assert_int_equal(rc, MX_OK);
  assert_non_null(strstr(out, "[11/13] upload the agent bundle over SSH ... bundle "));
  assert_non_null(strstr(out, "[12/13] start the agent and wait for /v1/health ... started (bare binary)"));
  free(out);
  assert_int_not_equal(agent_pid(name), old_pid);
  assert_int_equal(kill(old_pid, 0), -1); /* the old agent is gone */
  assert_int_equal(agent_health(name, "198.51.100.2"), MX_OK);
  remote_dir(name, rdir, sizeof(rdir));
  snprintf(remote_bin, sizeof(remote_bin), "%s/mxfleet-agent", rdir);
  struct mx_buf there;
  assert_int_equal(mx_file_read(remote_bin, (size_t)64 * 1024 * 1024, &there, err), MX_OK);
  assert_true(there.len == b.len && memcmp(there.buf, b.buf, b.len) == 0);
  mx_buf_release(&there);
  mx_buf_release(&b);
}

static void test_add_wg_end_to_end(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL;
  snprintf(name, sizeof(name), "%s-laptop", W.prefix);
  assert_int_equal(add(name, 0, 0, &out, err), MX_OK);
  assert_non_null(strstr(out, "[13/13] "));
  assert_non_null(strstr(out, "live"));
  free(out);
  char *cfg1 = read_all(W.config);
  cJSON *root = cJSON_Parse(cfg1);
  const cJSON *b = mx_json_obj(device_entry(root, name), "backend");
  assert_string_equal(mx_json_str(b, "kind"), "wg");
  assert_string_equal(mx_json_str(b, "address"), "198.51.100.2");
  char *peers = hub_peers();
  assert_non_null(strstr(peers, mx_json_str(b, "public_key")));
  assert_non_null(strstr(peers, "198.51.100.2/32"));
  free(peers);
  assert_int_equal(agent_health(name, "198.51.100.2"), MX_OK);
  assert_int_equal(user_state(name), 1);
  assert_listed_online(name);

  /* Again: nothing changes, every step reports its state. */
  char *files1 = file_list(W.data);
  assert_int_equal(add(name, 0, 0, &out, err), MX_OK);
  assert_int_equal(count(out, "already done"), 12);
  free(out);
  char *cfg2 = read_all(W.config), *files2 = file_list(W.data);
  assert_string_equal(cfg1, cfg2);
  assert_string_equal(files1, files2);

  assert_repairs_stopped_agent(name, cfg1);
  assert_rerun_installs_new_agent(name);

  /* Revoke: the hub forgets the peer, the account is deactivated. The
   * device side is the operator's to wipe; here its namespace is reused by
   * the next test, so stop its WireGuard and agent first. */
  char cmd[700], rdir[400];
  remote_dir(name, rdir, sizeof(rdir));
  snprintf(cmd, sizeof(cmd), "ip netns exec mxpd%s env MXFLEET_NO_SYSTEMD=1 sh %s/install.sh stop", W.tag, rdir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(dev_prov_revoke(W.config, name, &W.ops, stdout, err), MX_OK);
  peers = hub_peers();
  assert_null(strstr(peers, mx_json_str(b, "public_key")));
  free(peers);
  assert_int_equal(user_state(name), 2);
  cJSON_Delete(root);
  free(cfg1);
  free(cfg2);
  free(files1);
  free(files2);
}

/* A failure after each of the 13 steps: no peer, account, config change or
 * file is left, on the bot host or on the device. */
static void test_wg_failure_at_every_step(void **state)
{
  (void)state;
  for (int k = 1; k <= 13; k++) {
    char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL, rdir[400];
    snprintf(name, sizeof(name), "%s-f%d", W.prefix, k);
    remote_dir(name, rdir, sizeof(rdir));
    char *cfg0 = read_all(W.config), *files0 = file_list(W.data), *peers0 = hub_peers();
    assert_int_equal(add(name, k, k, &out, err), MX_ERR_CANCELLED);
    assert_null(strstr(out, "FAILED"));
    free(out);
    char *cfg1 = read_all(W.config), *files1 = file_list(W.data), *peers1 = hub_peers();
    assert_string_equal(cfg0, cfg1);
    assert_string_equal(files0, files1);
    assert_string_equal(peers0, peers1);
    assert_false(prov_file_exists(rdir));
    assert_int_equal(user_state(name), k < 6 ? 0 : 2);
    free(cfg0);
    free(cfg1);
    free(files0);
    free(files1);
    free(peers0);
    free(peers1);
  }
}

/* A real failure inside the last device-side step: the agent never
 * becomes healthy. Its own half-done effect (interface up, files on the
 * device) is undone along with everything before it. */
static void test_agent_that_never_answers_is_rolled_back(void **state)
{
  (void)state;
  char name[32], err[MX_ERRBUF_LEN] = "", *out = NULL, rdir[400];
  snprintf(name, sizeof(name), "%s-dead", W.prefix);
  remote_dir(name, rdir, sizeof(rdir));
  char *cfg0 = read_all(W.config), *files0 = file_list(W.data), *peers0 = hub_peers();
  g_agent_bin = "/bin/false";
  g_wait_s = 2;
  mx_err rc = add(name, 20, 0, &out, err);
  g_agent_bin = NULL;
  g_wait_s = 20;
  assert_int_equal(rc, MX_ERR_UNAVAILABLE);
  assert_non_null(strstr(err, "no healthy /v1/health within 2 s"));
  assert_non_null(strstr(out, "undo [12/13] start the agent and wait for /v1/health: done"));
  free(out);
  char *cfg1 = read_all(W.config), *files1 = file_list(W.data), *peers1 = hub_peers();
  assert_string_equal(cfg0, cfg1);
  assert_string_equal(files0, files1);
  assert_string_equal(peers0, peers1);
  assert_false(prov_file_exists(rdir));
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "ip netns exec mxpd%s ip link show mxpv%s20 >/dev/null 2>&1", W.tag, W.tag);
  assert_int_not_equal(system(cmd), 0); /* the device's interface is gone again */
  assert_int_equal(user_state(name), 2);
  free(cfg0);
  free(cfg1);
  free(files0);
  free(files1);
  free(peers0);
  free(peers1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_add_wg_end_to_end),
    cmocka_unit_test(test_wg_failure_at_every_step),
    cmocka_unit_test(test_agent_that_never_answers_is_rolled_back),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
