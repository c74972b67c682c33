/*
 * test_wg.c - the wg backend and mxfleet-agent over a real WireGuard tunnel.
 * Runs inside the hub namespace (wgnet exec); the agent runs in the device
 * namespace at 198.51.100.2:7443 with its own manifest (fixture: wgnet).
 * Covers: calls through the tunnel, the agent refusing what its manifest
 * forbids, ASK needing the bot's approval, 401 for missing signature /
 * tampered body / skew / replay, 413, intent-before-result audit, and the
 * checkpoint store detecting a truncated agent chain (last: it breaks it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <sqlite3.h>

#include "dev_wg.h"
#include "dev_wg_sign.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_util.h"
#include "tools_audit.h"

#define AGENT "http://198.51.100.2:7443"

static char dir[512], keyfile[600], botdata[600];
static uint8_t key[DEV_WG_KEY_LEN];
static struct dev_backend *wg;

static int setup(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  const char *d = getenv("MXF_WG_DIR");
  if (!d)
    return -1;
  snprintf(dir, sizeof(dir), "%s", d);
  snprintf(keyfile, sizeof(keyfile), "%s/agent.key", dir);
  snprintf(botdata, sizeof(botdata), "%s/bot-data", dir);
  char db[700];
  snprintf(db, sizeof(db), "%s/mxfleet.db", botdata);
  unlink(db);
  if (mx_mkdir_p(botdata, 0700, err) || dev_wg_key_load(keyfile, key, err))
    return -1;
  static const struct dev_wg_audit_checks checks = {tools_audit_checkpoint_check, tools_audit_record_hash};
  struct dev_wg_config c = {.url = AGENT, .key_file = keyfile, .data_dir = botdata, .device = "wgtest",
                            .audit_checks = &checks};
  if (dev_wg_new(&c, &wg, err)) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  if (wg)
    wg->destroy(wg);
  return 0;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
  return mx_buf_add(ud, p, s * n) ? 0 : s * n;
}

/* A hand-made request: sig NULL sends no signature headers. */
static long raw(const char *method, const char *target, const char *body, size_t n, const struct dev_wg_sig *sig,
                struct mx_buf *resp)
{
  CURL *h = curl_easy_init();
  struct curl_slist *hl = NULL;
  char url[256], line[160];
  snprintf(url, sizeof(url), "%s%s", AGENT, target);
  if (sig) {
    snprintf(line, sizeof(line), "%s: %s", DEV_WG_HDR_TS, sig->ts);
    hl = curl_slist_append(hl, line);
    snprintf(line, sizeof(line), "%s: %s", DEV_WG_HDR_NONCE, sig->nonce);
    hl = curl_slist_append(hl, line);
    snprintf(line, sizeof(line), "%s: %s", DEV_WG_HDR_SIG, sig->sig);
    hl = curl_slist_append(hl, line);
  }
  mx_buf_reset(resp);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
  }
  long status = 0;
  CURLcode cc = curl_easy_perform(h);
  if (cc == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  else
    fprintf(stderr, "curl: %s\n", curl_easy_strerror(cc));
  curl_slist_free_all(hl);
  curl_easy_cleanup(h);
  return status;
}

static void assert_reason(const struct mx_buf *resp, const char *reason)
{
  cJSON *o = cJSON_Parse(mx_buf_cstr(resp));
  const char *got = mx_json_str(o, "reason");
  if (!got || strcmp(got, reason) != 0)
    fprintf(stderr, "reply: %s\n", mx_buf_cstr(resp));
  assert_non_null(got);
  assert_string_equal(got, reason);
  cJSON_Delete(o);
}

static mx_err call(const char *tool, const char *args_json, const char *approval, struct dev_result *r, char *err)
{
  cJSON *args = cJSON_Parse(args_json);
  struct dev_call c = {.request_id = "t1", .tool = tool, .args = args, .timeout_ms = 5000, .max_output = 65536,
                       .approval_ref = approval};
  dev_result_init(r);
  mx_err rc = wg->run(wg, &c, r, err);
  cJSON_Delete(args);
  return rc;
}

/* Runs first, on the fresh agent of a new fixture: its chain is empty, and
 * the first audit check of a device never seen before must not call the
 * empty chain "rewritten" (no stored anchor is not an anchor of size 0). */
static void first_check_of_fresh_agent(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "", *text = NULL;
  assert_int_equal(dev_wg_check_audit(wg, &text, err), MX_OK);
  assert_non_null(text);
  assert_string_equal(text, "ok: 0 records (first checkpoint)");
  free(text);
  text = NULL;
  assert_int_equal(dev_wg_check_audit(wg, &text, err), MX_OK); /* anchored at 0 now: still consistent */
  assert_string_equal(text, "ok: 0 records (anchored 0)");
  free(text);
}

static void health_through_tunnel(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  cJSON *info = NULL;
  assert_int_equal(wg->health(wg, &info, err), MX_OK);
  assert_string_equal(mx_json_str(info, "device"), "wgtest");
  cJSON_Delete(info);
}

static void allowed_calls_run(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], args[800];
  struct dev_result r;
  snprintf(args, sizeof(args), "{\"path\":\"%s/dev-root/hello.txt\"}", dir);
  assert_int_equal(call("fs.read", args, NULL, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_DONE);
  assert_non_null(strstr(mx_buf_cstr(&r.out), "hello from the device"));
  dev_result_release(&r);
  assert_int_equal(call("shell.exec", "{\"argv\":[\"/bin/echo\",\"a;id\",\"$(x)\"]}", NULL, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(mx_buf_cstr(&r.out), "a;id $(x)\n");
  dev_result_release(&r);
}

static void agent_manifest_wins(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], args[800];
  struct dev_result r;
  /* The bot's side would allow this; the agent's manifest does not. */
  snprintf(args, sizeof(args), "{\"path\":\"%s/secret.txt\"}", dir);
  assert_int_equal(call("fs.read", args, NULL, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_REFUSED);
  assert_null(strstr(mx_buf_cstr(&r.out), "do not read"));
  assert_non_null(r.detail);
  dev_result_release(&r);
  assert_int_equal(call("shell.exec", "{\"argv\":[\"/bin/cat\",\"/etc/shadow\"]}", NULL, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_REFUSED);
  dev_result_release(&r);
  assert_int_equal(call("pkg.install", "{\"packages\":[\"sl\"]}", "act-1", &r, err), MX_OK);
  assert_int_equal(r.status, DEV_REFUSED); /* not enabled: even an approval cannot run it */
  dev_result_release(&r);
}

static void ask_needs_approval(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], args[800], file[700];
  struct dev_result r;
  snprintf(file, sizeof(file), "%s/dev-root/written.txt", dir);
  unlink(file);
  snprintf(args, sizeof(args), "{\"path\":\"%s\",\"content\":\"approved\"}", file);
  assert_int_equal(call("fs.write", args, NULL, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_REFUSED);
  assert_int_equal(access(file, F_OK), -1);
  dev_result_release(&r);
  /* An approval for other arguments does not carry over (raw request). */
  struct dev_wg_sig sig;
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_SMALL), body = MX_BUF_INIT(4096);
  assert_int_equal(mx_buf_addf(&body, "{\"request_id\":\"t2\",\"tool\":\"fs.write\",\"args\":%s,\"approval\":{\"ref\":"
                                      "\"act-9\",\"tool\":\"fs.write\",\"args_sha256\":\"%064d\"}}", args, 0), MX_OK);
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", mx_now_ms() / 1000, body.buf, body.len, &sig), MX_OK);
  assert_int_equal(raw("POST", "/v1/call", body.buf, body.len, &sig, &resp), 403);
  assert_int_equal(access(file, F_OK), -1);
  assert_int_equal(call("fs.write", args, "act-2", &r, err), MX_OK);
  if (r.status != DEV_DONE)
    fprintf(stderr, "fs.write: %s\n", r.detail ? r.detail : "?");
  assert_int_equal(r.status, DEV_DONE);
  assert_int_equal(access(file, F_OK), 0);
  dev_result_release(&r);
  mx_buf_release(&resp);
  mx_buf_release(&body);
}

static void unauthenticated_refused(void **state)
{
  (void)state;
  struct dev_wg_sig sig;
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  const char *body = "{\"request_id\":\"r\",\"tool\":\"shell.exec\",\"args\":{\"argv\":[\"/bin/echo\",\"x\"]}}";
  const char *evil = "{\"request_id\":\"r\",\"tool\":\"shell.exec\",\"args\":{\"argv\":[\"/bin/echo\",\"y\"]}}";
  int64_t now = mx_now_ms() / 1000;
  assert_int_equal(raw("GET", "/v1/health", NULL, 0, NULL, &resp), 401);
  assert_reason(&resp, "missing_signature");
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", now, body, strlen(body), &sig), MX_OK);
  assert_int_equal(raw("POST", "/v1/call", evil, strlen(evil), &sig, &resp), 401);
  assert_reason(&resp, "bad_signature");
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", now - 301, body, strlen(body), &sig), MX_OK);
  assert_int_equal(raw("POST", "/v1/call", body, strlen(body), &sig, &resp), 401);
  assert_reason(&resp, "skew");
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", now, body, strlen(body), &sig), MX_OK);
  assert_int_equal(raw("POST", "/v1/call", body, strlen(body), &sig, &resp), 200);
  assert_int_equal(raw("POST", "/v1/call", body, strlen(body), &sig, &resp), 401);
  assert_reason(&resp, "replay");
  uint8_t wrong[DEV_WG_KEY_LEN] = {1};
  assert_int_equal(dev_wg_sign(wrong, "GET", "/v1/health", now, NULL, 0, &sig), MX_OK);
  assert_int_equal(raw("GET", "/v1/health", NULL, 0, &sig, &resp), 401);
  assert_reason(&resp, "bad_signature");
  mx_buf_release(&resp);
}

static void big_body_413(void **state)
{
  (void)state;
  size_t n = (size_t)10 << 20;
  char *big = malloc(n);
  assert_non_null(big);
  memset(big, 'a', n);
  struct dev_wg_sig sig;
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", mx_now_ms() / 1000, big, n, &sig), MX_OK);
  assert_int_equal(raw("POST", "/v1/call", big, n, &sig, &resp), 413);
  free(big);
  mx_buf_release(&resp);
  /* The agent is still fine afterwards. */
  char err[MX_ERRBUF_LEN];
  assert_int_equal(wg->health(wg, NULL, err), MX_OK);
}

static void audit_intent_before_result(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct dev_result r;
  assert_int_equal(call("shell.exec", "{\"argv\":[\"/bin/echo\",\"audited\"]}", NULL, &r, err), MX_OK);
  dev_result_release(&r);
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  long status = 0;
  assert_int_equal(dev_wg_request(wg, "GET", "/v1/audit?since=0", NULL, 0, &status, &resp, err), MX_OK);
  assert_int_equal(status, 200);
  cJSON *o = cJSON_Parse(mx_buf_cstr(&resp));
  const cJSON *recs = mx_json_arr(o, "records");
  int n = cJSON_GetArraySize(recs);
  assert_true(n >= 2);
  const cJSON *intent = cJSON_GetArrayItem(recs, n - 2), *result = cJSON_GetArrayItem(recs, n - 1);
  int64_t iseq = 0, link = 0;
  assert_string_equal(mx_json_str(intent, "kind"), "intent");
  assert_string_equal(mx_json_str(result, "kind"), "result");
  assert_true(mx_json_int(intent, "seq", &iseq));
  assert_true(mx_json_int(result, "intent_seq", &link));
  assert_int_equal(iseq, link);
  assert_string_equal(mx_json_str(result, "prev_hash"), mx_json_str(intent, "hash"));
  cJSON_Delete(o);
  mx_buf_release(&resp);
}

/* Issue 11.9: who asked reaches the device's own audit - the operator,
 * their Matrix device, its trust state, the room and the message - in
 * every record of the call, and it is covered by the request signature. */
static void operator_in_agent_audit(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  cJSON *args = cJSON_Parse("{\"argv\":[\"/bin/echo\",\"who asked\"]}");
  struct dev_caller who = {.mxid = "@op:example.org", .device = "PHONE7", .verification = "verified",
                           .master_key = "bWFzdGVyLWtleQ", .room_id = "!dm:example.org", .event_id = "$ask1"};
  char rid[40];
  snprintf(rid, sizeof(rid), "t-who-%lld", (long long)mx_now_ms()); /* one per run: the agent may be shared */
  struct dev_call c = {.request_id = rid, .tool = "shell.exec", .args = args, .timeout_ms = 5000,
                       .max_output = 65536, .caller = &who};
  struct dev_result r;
  dev_result_init(&r);
  assert_int_equal(wg->run(wg, &c, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_DONE);
  dev_result_release(&r);
  cJSON_Delete(args);
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  long status = 0;
  assert_int_equal(dev_wg_request(wg, "GET", "/v1/audit?since=0", NULL, 0, &status, &resp, err), MX_OK);
  cJSON *o = cJSON_Parse(mx_buf_cstr(&resp));
  const cJSON *recs = mx_json_arr(o, "records");
  int n = cJSON_GetArraySize(recs), seen = 0;
  for (int i = 0; i < n; i++) {
    const cJSON *rec = cJSON_GetArrayItem(recs, i);
    if (!mx_json_str(rec, "call_id") || strcmp(mx_json_str(rec, "call_id"), rid) != 0)
      continue;
    const cJSON *op = mx_json_obj(rec, "operator");
    const char *mxid = mx_json_str(op, "mxid");
    if (!mxid)
      fail_msg("agent audit record without the operator: %s", cJSON_PrintUnformatted(rec));
    assert_string_equal(mxid, "@op:example.org");
    assert_string_equal(mx_json_str(op, "device_id"), "PHONE7");
    assert_string_equal(mx_json_str(op, "verification"), "verified");
    assert_string_equal(mx_json_str(op, "master_key"), "bWFzdGVyLWtleQ");
    assert_string_equal(mx_json_str(rec, "room_id"), "!dm:example.org");
    assert_string_equal(mx_json_str(rec, "event_id"), "$ask1");
    seen++;
  }
  assert_int_equal(seen, 2); /* intent and result */
  cJSON_Delete(o);
  mx_buf_release(&resp);
  /* the operator is inside the signature: another name is a bad request */
  const char *body = "{\"request_id\":\"t-who2\",\"tool\":\"shell.exec\",\"args\":{\"argv\":[\"/bin/echo\"]},"
                     "\"operator\":{\"mxid\":\"@op:example.org\"}}";
  struct dev_wg_sig sig;
  assert_int_equal(dev_wg_sign(key, "POST", "/v1/call", mx_now_ms() / 1000, body, strlen(body), &sig), MX_OK);
  char forged[300];
  snprintf(forged, sizeof(forged), "%s", body);
  memcpy(strstr(forged, "@op:"), "@ev:", 4);
  mx_buf_init(&resp, MX_BUF_MAX_SMALL);
  assert_int_equal(raw("POST", "/v1/call", forged, strlen(forged), &sig, &resp), 401);
  mx_buf_release(&resp);
}

static int open_idle(void)
{
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(7443)};
  inet_pton(AF_INET, "198.51.100.2", &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

static void per_ip_connection_limit(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  int fds[8];
  for (int i = 0; i < 8; i++) { /* the fixture's per_ip_connections */
    fds[i] = open_idle();
    assert_true(fds[i] >= 0);
  }
  /* Connection 9 from this address is accepted by the kernel and closed by
   * the agent at once: the request gets no reply. Poll until MHD has seen
   * all eight. */
  struct mx_buf resp = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  int64_t deadline = mx_mono_ms() + 3000;
  long st;
  do
    st = raw("GET", "/v1/health", NULL, 0, NULL, &resp);
  while (st != 0 && mx_mono_ms() < deadline);
  assert_int_equal(st, 0);
  for (int i = 0; i < 8; i++)
    close(fds[i]);
  /* Freed slots are usable again. */
  deadline = mx_mono_ms() + 3000;
  mx_err rc;
  do
    rc = wg->health(wg, NULL, err);
  while (rc && mx_mono_ms() < deadline);
  assert_int_equal(rc, MX_OK);
  mx_buf_release(&resp);
}

static volatile int cancel_flag;

static void *cancel_later(void *arg)
{
  (void)arg;
  usleep(300000);
  cancel_flag = 1;
  return NULL;
}

static void deadline_and_cancel(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct dev_result r;
  cJSON *args = cJSON_Parse("{\"argv\":[\"/bin/sleep\",\"5\"]}");
  /* The agent enforces the deadline the bot passes (below its manifest's). */
  struct dev_call c = {.request_id = "t-deadline", .tool = "shell.exec", .args = args, .timeout_ms = 1000,
                       .max_output = 4096};
  dev_result_init(&r);
  int64_t t0 = mx_mono_ms();
  assert_int_equal(wg->run(wg, &c, &r, err), MX_OK);
  assert_int_equal(r.status, DEV_TIMEOUT);
  assert_true(mx_mono_ms() - t0 < 3000);
  dev_result_release(&r);
  /* !stop on the bot side aborts the wait at once. */
  pthread_t th;
  cancel_flag = 0;
  c.timeout_ms = 2000; /* the agent still runs it to its deadline: keep it short */
  c.cancel = &cancel_flag;
  dev_result_init(&r);
  t0 = mx_mono_ms();
  assert_int_equal(pthread_create(&th, NULL, cancel_later, NULL), 0);
  assert_int_equal(wg->run(wg, &c, &r, err), MX_ERR_CANCELLED);
  assert_true(mx_mono_ms() - t0 < 1500);
  pthread_join(th, NULL);
  dev_result_release(&r);
  cJSON_Delete(args);
}

static void checkpoints_detect_truncation(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN], *text = NULL, adata[700];
  /* The agent's own chain verifies from genesis before anything is done to it. */
  snprintf(adata, sizeof(adata), "%s/agent-data", dir);
  /* The agent started as root with "user": its signing key is root's, in
   * agent-data/audit-key (docs/agent.md); verify with that key. */
  char akey[800];
  snprintf(akey, sizeof(akey), "%s/audit-key/ed25519.key", adata);
  struct tools_audit_opts ao = {.data_dir = adata, .device = "wgtest", .key_path = akey};
  struct tools_audit *a = NULL;
  struct tools_audit_verify_report rep;
  assert_int_equal(tools_audit_open(&ao, &a, err), MX_OK);
  assert_int_equal(tools_audit_verify(a, NULL, &rep, err), MX_OK);
  if (!rep.ok)
    fprintf(stderr, "verify: %s\n", rep.message);
  assert_true(rep.ok);
  assert_true(rep.rows > 10);
  tools_audit_close(a);
  assert_int_equal(dev_wg_check_audit(wg, &text, err), MX_OK);
  assert_memory_equal(text, "ok:", 3);
  free(text);
  struct dev_result r;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(call("shell.exec", "{\"argv\":[\"/bin/echo\",\"more\"]}", NULL, &r, err), MX_OK);
    dev_result_release(&r);
  }
  assert_int_equal(dev_wg_check_audit(wg, &text, err), MX_OK); /* grew: still consistent */
  free(text);
  /* Someone on the device deletes the tail of the agent's chain. */
  char db[700];
  snprintf(db, sizeof(db), "%s/agent-data/audit/wgtest.db", dir);
  sqlite3 *s = NULL;
  assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
  sqlite3_busy_timeout(s, 5000);
  /* An attacker with the file drops the append-only trigger first. */
  assert_int_equal(sqlite3_exec(s, "DROP TRIGGER IF EXISTS audit_chain_no_delete;"
                                   "DELETE FROM audit_chain WHERE seq > (SELECT MAX(seq) - 3 FROM audit_chain)",
                                NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(s);
  assert_int_equal(dev_wg_check_audit(wg, &text, err), MX_ERR_TAMPERED);
  assert_non_null(text);
  assert_memory_equal(text, "truncated:", 10);
  free(text);
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(first_check_of_fresh_agent),
      cmocka_unit_test(health_through_tunnel),   cmocka_unit_test(allowed_calls_run),
      cmocka_unit_test(agent_manifest_wins),     cmocka_unit_test(ask_needs_approval),
      cmocka_unit_test(unauthenticated_refused), cmocka_unit_test(big_body_413),
      cmocka_unit_test(audit_intent_before_result), cmocka_unit_test(operator_in_agent_audit),
      cmocka_unit_test(deadline_and_cancel),
      cmocka_unit_test(per_ip_connection_limit), cmocka_unit_test(checkpoints_detect_truncation),
  };
  /* tests/security runs one case of this file (MXF_TEST_FILTER) */
  if (getenv("MXF_TEST_FILTER"))
    cmocka_set_test_filter(getenv("MXF_TEST_FILTER"));
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  curl_global_cleanup();
  return rc;
}
