/*
 * tests/security/test_sec_agent_key.c - issue 11 finding 7: the key that
 * signs mxfleet-agent's audit checkpoints is out of reach of the user that
 * runs tools. The agent starts as root with "user": "nobody" (as on a
 * device), signs a checkpoint, and then, as nobody (the tools' user), no
 * readable file under its data directory holds the signing seed, the key
 * cannot be replaced, and the agent's memory is not dumpable. Needs root
 * (scripts/test runs as root); skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <openssl/evp.h>

#include "agent.h"
#include "agent_int.h"
#include "dev_wg_sign.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "tools_test_util.h"

static char dir[128];

/* 1 when a readable 32-byte file under path is the seed of pub. */
static int seed_readable(const char *path, const uint8_t pub[32])
{
  DIR *d = opendir(path);
  struct dirent *e;
  int found = 0;
  while (d && !found && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char p[1024];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
    if (lstat(p, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      found = seed_readable(p, pub);
      continue;
    }
    uint8_t buf[64], got[32];
    size_t n = 32;
    FILE *f = S_ISREG(st.st_mode) && st.st_size == 32 ? fopen(p, "rb") : NULL;
    if (!f)
      continue;
    size_t r = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    EVP_PKEY *k = r == 32 ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, buf, 32) : NULL;
    if (k && EVP_PKEY_get_raw_public_key(k, got, &n) == 1 && memcmp(got, pub, 32) == 0) {
      fprintf(stderr, "seed readable by the tools' user: %s\n", p);
      found = 1;
    }
    EVP_PKEY_free(k);
  }
  if (d)
    closedir(d);
  return found;
}

/* In a child: start as root, drop to nobody, check from there. */
static int child(void)
{
  char err[MX_ERRBUF_LEN], key[256], manifest[256], data[256];
  tt_path(key, sizeof(key), dir, "hmac.key");
  tt_path(manifest, sizeof(manifest), dir, "manifest.json");
  tt_path(data, sizeof(data), dir, "data");
  if (dev_wg_key_generate(key, err) || tt_write(manifest, "{\"version\":1,\"tools\":{\"proc.list\":{}}}"))
    return 10;
  struct agent_config cfg = {.source = "agent.json", .device = "pc1", .listen_host = "127.0.0.1", .listen_port = 0,
                             .key_file = key, .manifest = manifest, .data_dir = data, .user = "nobody",
                             .max_body = 65536, .max_connections = 4, .per_ip_connections = 4,
                             .connection_timeout_s = 5};
  struct agent *a = NULL;
  if (agent_prepare(&cfg, &a, err) || agent_drop_privileges(cfg.user, err) || agent_start(a, err)) {
    fprintf(stderr, "agent: %s\n", err);
    return 11;
  }
  cJSON *reply = NULL;
  int st = agent_handle_checkpoint(a, &reply);
  uint8_t *pub = NULL;
  size_t pn = 0;
  if (st != 200 || mx_b64_decode(mx_json_str(reply, "public_key"), &pub, &pn) || pn != 32)
    return 12;
  int rc = 0;
  if (seed_readable(data, pub))
    rc = 13;
  char p[300];
  tt_path(p, sizeof(p), data, "audit-key/ed25519.key");
  if (!rc && (unlink(p) == 0 || tt_write(p, "x") == 0))
    rc = 14; /* nobody may replace the key */
  if (!rc && prctl(PR_GET_DUMPABLE) != 0)
    rc = 15;
  free(pub);
  cJSON_Delete(reply);
  agent_free(a);
  return rc;
}

static void test_audit_key_out_of_reach_of_tools(void **state)
{
  (void)state;
  if (geteuid() != 0 || !getpwnam("nobody"))
    skip();
  assert_non_null(tt_tmpdir(dir, sizeof(dir), "agentkey"));
  chmod(dir, 0755);
  /* data_dir belongs to the agent user, as systemd's StateDirectory= makes it */
  char data[256];
  struct passwd *pw = getpwnam("nobody");
  tt_path(data, sizeof(data), dir, "data");
  assert_int_equal(mkdir(data, 0700), 0);
  assert_int_equal(chown(data, pw->pw_uid, pw->pw_gid), 0);
  pid_t pid = fork();
  if (pid == 0)
    _exit(child());
  int status = 0;
  waitpid(pid, &status, 0);
  tt_rmtree(dir);
  assert_true(WIFEXITED(status));
  if (WEXITSTATUS(status))
    fail_msg("child check %d failed (13: seed readable, 14: key replaceable, 15: dumpable)", WEXITSTATUS(status));
}

int main(void)
{
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_audit_key_out_of_reach_of_tools)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
