/*
 * test_prov_wgkeys.c - the WireGuard pieces of devices/provision that need
 * no network: key pairs match what the real `wg pubkey` derives, a damaged
 * key file is refused by name, and mesh addresses skip the hub, configured
 * devices and allocations in progress, and run out cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_util.h"
#include "prov_int.h"

static char dir[64];

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/mxprovk-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
  (void)st;
  (void)flag;
  (void)f;
  return remove(p);
}

static int teardown(void **state)
{
  (void)state;
  return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_genkey_matches_wg_pubkey(void **state)
{
  (void)state;
  char path[128], pub[45] = "", again[45] = "", cmd[256], line[128] = "", err[MX_ERRBUF_LEN] = "";
  snprintf(path, sizeof(path), "%s/k", dir);
  assert_int_equal(prov_wg_genkey(path, pub, err), MX_OK);
  assert_int_equal(strlen(pub), 44);
  snprintf(cmd, sizeof(cmd), "wg pubkey < %s", path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_non_null(fgets(line, sizeof(line), p));
  assert_int_equal(pclose(p), 0);
  line[strcspn(line, "\n")] = '\0';
  assert_string_equal(line, pub); /* the real tool agrees */
  assert_int_equal(prov_wg_pubkey(path, again, err), MX_OK);
  assert_string_equal(again, pub);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_damaged_key_is_refused(void **state)
{
  (void)state;
  char path[128], pub[45] = "", err[MX_ERRBUF_LEN] = "";
  snprintf(path, sizeof(path), "%s/bad", dir);
  assert_int_equal(mx_file_write(path, "c2hvcnQ=\n", 9, 0600, err), MX_OK);
  assert_int_equal(prov_wg_pubkey(path, pub, err), MX_ERR_INVALID);
  char want[256];
  snprintf(want, sizeof(want), "'%s': expected a base64 WireGuard private key (32 bytes)", path);
  assert_string_equal(err, want);
}

static void alloc_ctx(struct prov_ctx *c, struct dev_prov_add_opts *o, const char *mesh, const char *net, int len)
{
  char cfgp[128], err[MX_ERRBUF_LEN] = "", wgd[160];
  struct in_addr a;
  snprintf(cfgp, sizeof(cfgp), "%s/mxfleet.json", dir);
  const char *cfg = "{\"homeserver\": \"http://x\", \"data_dir\": \"data\", \"devices\": [\n"
                    " {\"name\": \"a\", \"backend\": {\"kind\": \"wg\", \"address\": \"198.51.100.2\"}},\n"
                    " {\"name\": \"b\", \"backend\": {\"kind\": \"wg\", \"address\": \"198.51.100.4\"}}]}\n";
  assert_int_equal(mx_file_write(cfgp, cfg, strlen(cfg), 0600, err), MX_OK);
  snprintf(wgd, sizeof(wgd), "%s/data/wg", dir);
  assert_int_equal(mx_mkdir_p(wgd, 0700, err), MX_OK);
  snprintf(wgd, sizeof(wgd), "%s/data/wg/c.addr", dir); /* an onboarding in progress */
  assert_int_equal(mx_file_write(wgd, "198.51.100.3", 12, 0600, err), MX_OK);
  memset(c, 0, sizeof(*c));
  memset(o, 0, sizeof(*o));
  o->mesh = mesh;
  c->o = o;
  assert_int_equal(prov_cfg_load(cfgp, &c->cfg, err), MX_OK);
  assert_int_equal(inet_pton(AF_INET, net, &a), 1);
  c->mesh_net = ntohl(a.s_addr);
  c->mesh_len = len;
}

static void test_alloc_skips_taken_addresses(void **state)
{
  (void)state;
  struct prov_ctx c;
  struct dev_prov_add_opts o;
  char got[16] = "", err[MX_ERRBUF_LEN] = "";
  alloc_ctx(&c, &o, "198.51.100.0/24", "198.51.100.0", 24);
  assert_int_equal(prov_wg_alloc(&c, got, err), MX_OK);
  assert_string_equal(got, "198.51.100.5"); /* .1 hub, .2 .4 configured, .3 in progress */
  prov_cfg_free(&c.cfg);
}

static void test_alloc_runs_out_clearly(void **state)
{
  (void)state;
  struct prov_ctx c;
  struct dev_prov_add_opts o;
  char got[16] = "", err[MX_ERRBUF_LEN] = "";
  alloc_ctx(&c, &o, "198.51.100.0/30", "198.51.100.0", 30); /* .1 hub, .2 taken, .3 broadcast */
  assert_int_equal(prov_wg_alloc(&c, got, err), MX_ERR_CONFLICT);
  assert_string_equal(err, "--mesh: no free address left in 198.51.100.0/30");
  prov_cfg_free(&c.cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_genkey_matches_wg_pubkey),
    cmocka_unit_test(test_damaged_key_is_refused),
    cmocka_unit_test(test_alloc_skips_taken_addresses),
    cmocka_unit_test(test_alloc_runs_out_clearly),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
