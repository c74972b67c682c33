/*
 * tests/security/test_sec_anchor.c - issue 11 finding 7: the bot anchors a
 * WireGuard agent's audit chain with checks a compromised device cannot
 * talk its way past. The device here is an attacker answering the agent's
 * API over HTTP (libmicrohttpd on loopback) from a real tools/audit chain:
 *   - a checkpoint whose Ed25519 signature does not verify, or whose signed
 *     text states another head than the reply, is refused (bad_signature);
 *   - a record rewritten in place while its stored hash is kept, then the
 *     chain extended, is caught by recomputing the records (rewound).
 * In each case dev_wg_check_audit returns MX_ERR_TAMPERED and the forged
 * checkpoint is not stored as the new anchor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sqlite3.h>

#include "dev_wg.h"
#include "dev_wg_sign.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "tools_audit.h"
#include "tools_test_util.h"

enum forge { HONEST, BAD_SIG, OTHER_HEAD };

struct fx {
  char dir[128], adata[256], bdata[256], key[256];
  struct tools_audit *audit;   /* the device's chain */
  struct MHD_Daemon *httpd;
  struct dev_backend *wg;
  enum forge forge;
};

static const struct dev_wg_audit_checks checks = {tools_audit_checkpoint_check, tools_audit_record_hash};

static cJSON *checkpoint_reply(struct fx *f)
{
  char err[MX_ERRBUF_LEN], key_id[17], head[65];
  struct tools_audit_checkpoint cp;
  struct mx_buf text = MX_BUF_INIT(4096), pub = MX_BUF_INIT(256);
  uint8_t pk[32];
  assert_int_equal(tools_audit_checkpoint(f->audit, &cp, err), MX_OK);
  assert_int_equal(tools_audit_public_key(f->audit, pk, key_id, err), MX_OK);
  assert_int_equal(tools_audit_checkpoint_text(&cp, &text), MX_OK);
  assert_int_equal(mx_b64_encode(pk, sizeof(pk), &pub), MX_OK);
  if (f->forge == OTHER_HEAD)
    cp.head[0] ^= 1; /* the reply claims a head the signature does not cover */
  mx_hex(cp.head, sizeof(cp.head), head);
  char *t = (char *)mx_buf_cstr(&text);
  if (f->forge == BAD_SIG) { /* one character of the base64 signature */
    char *sig = strrchr(t, ' ');
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "origin", cp.origin);
  cJSON_AddNumberToObject(o, "size", (double)cp.size);
  cJSON_AddStringToObject(o, "head", head);
  cJSON_AddNumberToObject(o, "time_ms", (double)cp.time_ms);
  cJSON_AddStringToObject(o, "text", t);
  cJSON_AddStringToObject(o, "public_key", mx_buf_cstr(&pub));
  cJSON_AddStringToObject(o, "key_id", key_id);
  mx_buf_release(&text);
  mx_buf_release(&pub);
  return o;
}

static cJSON *records_reply(struct fx *f, const char *since_txt)
{
  char err[MX_ERRBUF_LEN];
  int64_t size = 0, since = since_txt ? atoll(since_txt) : 0;
  uint8_t head[32];
  cJSON *recs = NULL;
  assert_int_equal(tools_audit_head(f->audit, &size, head, err), MX_OK);
  if (size > since)
    assert_int_equal(tools_audit_recent(f->audit, (int)(size - since), &recs, err), MX_OK);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "size", (double)size);
  cJSON_AddBoolToObject(o, "more", 0);
  cJSON_AddItemToObject(o, "records", recs ? recs : cJSON_CreateArray());
  return o;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void)method;
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)con_cls;
  struct fx *f = cls;
  cJSON *o = strcmp(url, "/v1/audit/checkpoint") == 0 ? checkpoint_reply(f)
             : strcmp(url, "/v1/audit") == 0 ? records_reply(f, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"))
                                               : cJSON_CreateObject();
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_COPY);
  cJSON_free(s);
  enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ret;
}

static void append(struct fx *f, const char *tool)
{
  char err[MX_ERRBUF_LEN];
  struct tools_audit_entry e;
  memset(&e, 0, sizeof(e));
  e.kind = "intent";
  e.tool = tool;
  e.status = "pending";
  e.decision = "allow";
  e.exit_code = -1;
  int64_t seq;
  assert_int_equal(tools_audit_append(f->audit, &e, &seq, err), MX_OK);
}

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof(*f));
  char err[MX_ERRBUF_LEN], url[64];
  assert_non_null(tt_tmpdir(f->dir, sizeof(f->dir), "anchor"));
  tt_path(f->adata, sizeof(f->adata), f->dir, "agent");
  tt_path(f->bdata, sizeof(f->bdata), f->dir, "bot");
  tt_path(f->key, sizeof(f->key), f->dir, "bot/hmac.key");
  mkdir(f->adata, 0700);
  mkdir(f->bdata, 0700);
  struct tools_audit_opts ao = {.data_dir = f->adata, .device = "pc9"};
  assert_int_equal(tools_audit_open(&ao, &f->audit, err), MX_OK);
  for (int i = 0; i < 3; i++)
    append(f, "fs.read");
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  f->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer, f, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_END);
  assert_non_null(f->httpd);
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(f->httpd, MHD_DAEMON_INFO_BIND_PORT);
  snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)di->port);
  assert_int_equal(dev_wg_key_generate(f->key, err), MX_OK);
  struct dev_wg_config c = {.url = url, .key_file = f->key, .data_dir = f->bdata, .device = "pc9",
                            .audit_checks = &checks};
  assert_int_equal(dev_wg_new(&c, &f->wg, err), MX_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  f->wg->destroy(f->wg);
  MHD_stop_daemon(f->httpd);
  tools_audit_close(f->audit);
  tt_rmtree(f->dir);
  free(f);
  return 0;
}

/* Number of anchors the bot stored for the device. */
static int anchors(struct fx *f)
{
  char db[320];
  sqlite3 *s = NULL;
  sqlite3_stmt *st = NULL;
  int n = -1;
  tt_path(db, sizeof(db), f->bdata, "mxfleet.db");
  if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(s, "SELECT COUNT(*) FROM dev_wg_checkpoints WHERE device='pc9'", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(s);
  return n;
}

static void expect(struct fx *f, mx_err want_rc, const char *want_prefix)
{
  char err[MX_ERRBUF_LEN] = "", *text = NULL;
  mx_err rc = dev_wg_check_audit(f->wg, &text, err);
  if (rc != want_rc || !text || strncmp(text, want_prefix, strlen(want_prefix)) != 0)
    fail_msg("check_audit: expected %d '%s...', got %d '%s' (%s)", want_rc, want_prefix, rc, text ? text : "", err);
  free(text);
}

static void test_forged_checkpoint_is_refused(void **state)
{
  struct fx *f = *state;
  f->forge = BAD_SIG;
  expect(f, MX_ERR_TAMPERED, "bad_signature:");
  f->forge = OTHER_HEAD;
  expect(f, MX_ERR_TAMPERED, "bad_signature:");
  assert_true(anchors(f) <= 0); /* nothing forged became an anchor */
  f->forge = HONEST;
  expect(f, MX_OK, "ok:");
  assert_int_equal(anchors(f), 1);
  append(f, "fs.list");
  f->forge = OTHER_HEAD;
  expect(f, MX_ERR_TAMPERED, "bad_signature:");
  assert_int_equal(anchors(f), 1);
}

static void test_rewritten_record_with_kept_hash_is_caught(void **state)
{
  struct fx *f = *state;
  expect(f, MX_OK, "ok:"); /* anchored at 3 */
  /* Someone on the device rewrites record 3 (what ran) and keeps its
   * stored hash, then more calls extend the chain from that hash. */
  char db[320];
  sqlite3 *s = NULL;
  snprintf(db, sizeof(db), "%s", tools_audit_db_path(f->audit));
  assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
  sqlite3_busy_timeout(s, 5000);
  char *sql = sqlite3_mprintf("SELECT name FROM sqlite_master WHERE type='trigger'");
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
  char drops[2048] = "";
  while (sqlite3_step(st) == SQLITE_ROW) {
    size_t n = strlen(drops);
    snprintf(drops + n, sizeof(drops) - n, "DROP TRIGGER \"%s\";", sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_free(sql);
  assert_int_equal(sqlite3_exec(s, drops, NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_exec(s, "UPDATE audit_chain SET record = replace(record, 'fs.read', 'fs.list') WHERE seq = 3",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_changes(s), 1);
  sqlite3_close(s);
  append(f, "fs.read");
  append(f, "fs.read");
  expect(f, MX_ERR_TAMPERED, "rewound:");
  assert_int_equal(anchors(f), 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_forged_checkpoint_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rewritten_record_with_kept_hash_is_caught, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
