/*
 * tests/tools/test_tools_audit.c - the audit chain on a real SQLite file:
 * the documented hash layout (golden check), appends and batches, and
 * tampering done behind the library's back with raw SQL: a flipped byte in
 * row k (verify names k), a deleted middle row, a deleted tail against the
 * last checkpoint ("truncated: have N-3, anchored N"), reordered rows, and a
 * fully recomputed history caught only by the signed checkpoint. Also the
 * checkpoint text form, its signature and external checkpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/sha.h>
#include <sqlite3.h>

#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_util.h"
#include "tools_audit.h"
#include "tools_test_util.h"

struct fx {
  char dir[128];
  struct tools_audit *a;
};

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof(*f));
  char err[MX_ERRBUF_LEN];
  assert_non_null(tt_tmpdir(f->dir, sizeof(f->dir), "audit"));
  struct tools_audit_opts o = {f->dir, "pc1", NULL};
  assert_int_equal(tools_audit_open(&o, &f->a, err), MX_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  tools_audit_close(f->a);
  tt_rmtree(f->dir);
  free(f);
  return 0;
}

static void append_n(struct tools_audit *a, int n)
{
  char err[MX_ERRBUF_LEN];
  cJSON *args = cJSON_Parse("{\"path\":\"/var/log/syslog\"}");
  for (int i = 0; i < n; i++) {
    struct tools_audit_entry e = {0};
    char call[32];
    snprintf(call, sizeof(call), "call-%d", i);
    e.kind = i % 2 ? "result" : "intent";
    e.intent_seq = i % 2 ? i : 0;
    e.call_id = call;
    e.operator_mxid = "@op:example.org";
    e.operator_device = "PHONE1";
    e.verification = "verified";
    e.room_id = "!room:example.org";
    e.event_id = "$ev";
    e.tool = "fs.read";
    e.args = args;
    e.decision = "allow";
    e.status = i % 2 ? "done" : "pending";
    e.exit_code = i % 2 ? 0 : -1;
    int64_t seq = 0;
    if (tools_audit_append(a, &e, &seq, err))
      fail_msg("append: %s", err);
  }
  cJSON_Delete(args);
}

static void raw(struct fx *f, const char *sql)
{
  sqlite3 *db = NULL;
  char *msg = NULL;
  assert_int_equal(sqlite3_open(tools_audit_db_path(f->a), &db), SQLITE_OK);
  int rc = sqlite3_exec(db,
                        "DROP TRIGGER IF EXISTS audit_chain_no_update; DROP TRIGGER IF EXISTS audit_chain_no_delete;",
                        NULL, NULL, NULL);
  assert_int_equal(rc, SQLITE_OK);
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
    fail_msg("raw sql: %s", msg);
  sqlite3_close(db);
}

static void verify(struct fx *f, const struct tools_audit_checkpoint *anchor, struct tools_audit_verify_report *rep)
{
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_audit_verify(f->a, anchor, rep, err), MX_OK);
}

static void test_hash_layout_is_as_documented(void **state)
{
  struct fx *f = *state;
  append_n(f->a, 2);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open(tools_audit_db_path(f->a), &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT seq, record, prev_hash, hash FROM audit_chain ORDER BY seq", -1, &st, NULL), SQLITE_OK);
  uint8_t prev[32] = {0};
  while (sqlite3_step(st) == SQLITE_ROW) {
    int64_t seq = sqlite3_column_int64(st, 0);
    /* SHA-256(0x00 || "mxfleet-audit-v1" || seq as 8 bytes big-endian || prev || record) */
    uint8_t buf[4096], h[32];
    size_t n = 0;
    buf[n++] = 0;
    memcpy(buf + n, "mxfleet-audit-v1", 16);
    n += 16;
    for (int i = 7; i >= 0; i--)
      buf[n++] = (uint8_t)((uint64_t)seq >> (8 * i));
    memcpy(buf + n, prev, 32);
    n += 32;
    assert_memory_equal(sqlite3_column_blob(st, 2), prev, 32);
    memcpy(buf + n, sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1));
    n += (size_t)sqlite3_column_bytes(st, 1);
    SHA256(buf, n, h);
    assert_memory_equal(sqlite3_column_blob(st, 3), h, 32);
    memcpy(prev, h, 32);
    /* The record is canonical JSON with the documented fields. */
    const char *rec = (const char *)sqlite3_column_text(st, 1);
    assert_non_null(strstr(rec, "\"operator\":{\"device_id\":\"PHONE1\",\"master_key\":null,\"mxid\":\"@op:example.org\","
                               "\"verification\":\"verified\"}"));
    assert_non_null(strstr(rec, "\"args\":{\"path\":\"/var/log/syslog\"}"));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void test_intact_chain_verifies(void **state)
{
  struct fx *f = *state;
  struct tools_audit_verify_report rep;
  verify(f, NULL, &rep);
  assert_true(rep.ok);
  assert_int_equal(rep.rows, 0);
  append_n(f->a, 10);
  verify(f, NULL, &rep);
  assert_true(rep.ok);
  assert_int_equal(rep.rows, 10);
  assert_non_null(strstr(rep.message, "ok: 10 records"));
}

static void test_flipped_byte_names_the_row(void **state)
{
  struct fx *f = *state;
  struct tools_audit_verify_report rep;
  append_n(f->a, 10);
  /* Flip one byte of row 4's record ('f' of fs.read becomes 'g'). */
  raw(f, "UPDATE audit_chain SET record = replace(record, '\"tool\":\"fs.read\"', '\"tool\":\"gs.read\"') WHERE seq = 4");
  verify(f, NULL, &rep);
  assert_false(rep.ok);
  assert_int_equal(rep.first_bad_seq, 4);
  assert_string_equal(rep.message, "row 4 was modified: its hash does not match its content");
}

static void test_deleted_middle_row(void **state)
{
  struct fx *f = *state;
  struct tools_audit_verify_report rep;
  append_n(f->a, 10);
  raw(f, "DELETE FROM audit_chain WHERE seq = 5");
  verify(f, NULL, &rep);
  assert_false(rep.ok);
  assert_int_equal(rep.first_bad_seq, 5);
  assert_string_equal(rep.message, "row 5 is missing (deleted): the next row is 6");
}

static void test_deleted_tail_is_truncation(void **state)
{
  struct fx *f = *state;
  struct tools_audit_verify_report rep;
  struct tools_audit_checkpoint c;
  char err[MX_ERRBUF_LEN];
  append_n(f->a, 10);
  assert_int_equal(tools_audit_checkpoint(f->a, &c, err), MX_OK);
  assert_int_equal(c.size, 10);
  append_n(f->a, 2); /* growing past the checkpoint is fine */
  verify(f, NULL, &rep);
  assert_true(rep.ok);
  assert_int_equal(rep.anchored_size, 10);
  raw(f, "DELETE FROM audit_chain WHERE seq > 7");
  verify(f, NULL, &rep);
  assert_false(rep.ok);
  assert_string_equal(rep.message, "truncated: have 7, anchored 10");
}

static void test_reordered_rows(void **state)
{
  struct fx *f = *state;
  struct tools_audit_verify_report rep;
  append_n(f->a, 6);
  /* Swap the full contents of rows 3 and 4, keeping the seq numbers. */
  raw(f, "CREATE TEMP TABLE t AS SELECT * FROM audit_chain WHERE seq IN (3,4);"
         "UPDATE audit_chain SET record=(SELECT record FROM t WHERE seq=4), prev_hash=(SELECT prev_hash FROM t WHERE seq=4),"
         " hash=(SELECT hash FROM t WHERE seq=4) WHERE seq=3;"
         "UPDATE audit_chain SET record=(SELECT record FROM t WHERE seq=3), prev_hash=(SELECT prev_hash FROM t WHERE seq=3),"
         " hash=(SELECT hash FROM t WHERE seq=3) WHERE seq=4;");
  verify(f, NULL, &rep);
  assert_false(rep.ok);
  assert_int_equal(rep.first_bad_seq, 3);
  assert_non_null(strstr(rep.message, "row 3 does not link to row 2"));
}

/* Recomputes every hash from row 1 after an edit, as a careful attacker would. */
static void rechain(struct fx *f)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL, *up = NULL;
  assert_int_equal(sqlite3_open(tools_audit_db_path(f->a), &db), SQLITE_OK);
  sqlite3_prepare_v2(db, "SELECT seq, record FROM audit_chain ORDER BY seq", -1, &st, NULL);
  sqlite3_prepare_v2(db, "UPDATE audit_chain SET prev_hash=?, hash=? WHERE seq=?", -1, &up, NULL);
  uint8_t prev[32] = {0};
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  while (sqlite3_step(st) == SQLITE_ROW) {
    int64_t seq = sqlite3_column_int64(st, 0);
    uint8_t buf[4096], h[32];
    size_t n = 0;
    buf[n++] = 0;
    memcpy(buf + n, "mxfleet-audit-v1", 16);
    n += 16;
    for (int i = 7; i >= 0; i--)
      buf[n++] = (uint8_t)((uint64_t)seq >> (8 * i));
    memcpy(buf + n, prev, 32);
    n += 32;
    memcpy(buf + n, sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1));
    n += (size_t)sqlite3_column_bytes(st, 1);
    SHA256(buf, n, h);
    sqlite3_bind_blob(up, 1, prev, 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(up, 2, h, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 3, seq);
    assert_int_equal(sqlite3_step(up), SQLITE_DONE);
    sqlite3_reset(up);
    memcpy(prev, h, 32);
  }
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_finalize(st);
  sqlite3_finalize(up);
  sqlite3_close(db);
}

static void test_rewritten_history_caught_by_checkpoint(void **state)
{
  struct fx *f = *state;
  struct tools_audit_verify_report rep;
  struct tools_audit_checkpoint c;
  char err[MX_ERRBUF_LEN];
  append_n(f->a, 8);
  assert_int_equal(tools_audit_checkpoint(f->a, &c, err), MX_OK);
  raw(f, "UPDATE audit_chain SET record = replace(record, '@op:example.org', '@op:evil.org') WHERE seq = 2");
  rechain(f);
  /* Relinking alone is fooled ... */
  struct tools_audit_checkpoint none;
  memset(&none, 0, sizeof(none));
  verify(f, &none, &rep);
  assert_true(rep.ok);
  /* ... the signed checkpoint is not. */
  verify(f, NULL, &rep);
  assert_false(rep.ok);
  assert_non_null(strstr(rep.message, "rewritten: the head at 8 differs from the checkpoint"));
}

static void test_checkpoint_text_and_signature(void **state)
{
  struct fx *f = *state;
  struct tools_audit_checkpoint c, parsed, other;
  char err[MX_ERRBUF_LEN], kid[17];
  uint8_t pub[32];
  append_n(f->a, 3);
  assert_int_equal(tools_audit_checkpoint(f->a, &c, err), MX_OK);
  struct mx_buf text = MX_BUF_INIT(4096);
  assert_int_equal(tools_audit_checkpoint_text(&c, &text), MX_OK);
  /* origin, size, head, time, blank, signature */
  int lines = 0;
  for (size_t i = 0; i < text.len; i++)
    lines += text.buf[i] == '\n';
  assert_int_equal(lines, 6);
  assert_int_equal(strncmp(text.buf, "mxfleet-audit/pc1\n3\n", 20), 0);
  assert_int_equal(tools_audit_public_key(f->a, pub, kid, err), MX_OK);
  assert_int_equal(tools_audit_checkpoint_parse(text.buf, pub, &parsed, err), MX_OK);
  assert_int_equal(parsed.size, 3);
  assert_memory_equal(parsed.head, c.head, 32);
  assert_string_equal(parsed.key_id, kid);
  /* Changing the size breaks the signature. */
  char *forged = mx_strdup(text.buf);
  forged[18] = '9';
  assert_int_equal(tools_audit_checkpoint_parse(forged, pub, &other, err), MX_ERR_AUTH);
  assert_string_equal(err, "checkpoint: signature does not verify");
  free(forged);
  /* Another install's key is named. */
  uint8_t wrong[32];
  memset(wrong, 7, sizeof(wrong));
  assert_int_equal(tools_audit_checkpoint_parse(text.buf, wrong, &other, err), MX_ERR_AUTH);
  assert_non_null(strstr(err, "checkpoint: signed by key"));
  /* The key file exists with mode 0600. */
  char kp[256];
  struct stat st;
  tt_path(kp, sizeof(kp), f->dir, "audit/audit_ed25519.key");
  assert_int_equal(stat(kp, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  mx_buf_release(&text);
}

static void test_external_checkpoint_compared(void **state)
{
  struct fx *f = *state;
  struct tools_audit_checkpoint c, ext;
  struct tools_audit_verify_report rep;
  char err[MX_ERRBUF_LEN];
  append_n(f->a, 5);
  assert_int_equal(tools_audit_checkpoint(f->a, &c, err), MX_OK);
  struct mx_buf text = MX_BUF_INIT(4096);
  assert_int_equal(tools_audit_checkpoint_text(&c, &text), MX_OK);
  assert_int_equal(tools_audit_checkpoint_parse(text.buf, NULL, &ext, err), MX_OK);
  verify(f, &ext, &rep);
  assert_true(rep.ok);
  assert_int_equal(rep.anchored_size, 5);
  ext.size = 9; /* an agent that says it had more records than we hold */
  verify(f, &ext, &rep);
  assert_false(rep.ok);
  assert_string_equal(rep.message, "truncated: have 5, anchored 9");
  assert_int_equal(tools_audit_checkpoint_parse("garbage\n", NULL, &ext, err), MX_ERR_INVALID);
  assert_string_equal(err, "checkpoint line 1: expected 'mxfleet-audit/<device>'");
  mx_buf_release(&text);
}

static void test_batch_append_and_read_back(void **state)
{
  struct fx *f = *state;
  char err[MX_ERRBUF_LEN];
  struct tools_audit_entry e[100];
  memset(e, 0, sizeof(e));
  for (int i = 0; i < 100; i++) {
    e[i].kind = "intent";
    e[i].tool = "proc.list";
    e[i].exit_code = -1;
  }
  int64_t first = 0;
  append_n(f->a, 1);
  assert_int_equal(tools_audit_append_batch(f->a, e, 100, &first, err), MX_OK);
  assert_int_equal(first, 2);
  cJSON *recs = NULL;
  assert_int_equal(tools_audit_recent(f->a, 3, &recs, err), MX_OK);
  assert_int_equal(cJSON_GetArraySize(recs), 3);
  int64_t seq = 0;
  assert_true(mx_json_int(cJSON_GetArrayItem(recs, 2), "seq", &seq));
  assert_int_equal(seq, 101);
  cJSON_Delete(recs);
  struct tools_audit_verify_report rep;
  verify(f, NULL, &rep);
  assert_true(rep.ok);
  assert_int_equal(rep.rows, 101);
}

/* Large enough for the verifier to split the chain into ranges checked by
 * several threads: problems in a later range and at a seam are still named. */
static void test_large_chain_ranges(void **state)
{
  struct fx *f = *state;
  char err[MX_ERRBUF_LEN];
  static struct tools_audit_entry e[1000];
  cJSON *args = cJSON_Parse("{\"pid\":42}");
  for (int i = 0; i < 1000; i++) {
    memset(&e[i], 0, sizeof(e[i]));
    e[i].kind = "intent";
    e[i].tool = "proc.kill";
    e[i].args = args;
    e[i].exit_code = -1;
  }
  for (int i = 0; i < 60; i++)
    assert_int_equal(tools_audit_append_batch(f->a, e, 1000, NULL, err), MX_OK);
  cJSON_Delete(args);
  struct tools_audit_verify_report rep;
  verify(f, NULL, &rep);
  assert_true(rep.ok);
  assert_int_equal(rep.rows, 60000);
  raw(f, "UPDATE audit_chain SET record = replace(record, 'proc.kill', 'proc.kilL') WHERE seq = 55555");
  verify(f, NULL, &rep);
  assert_false(rep.ok);
  assert_int_equal(rep.first_bad_seq, 55555);
  assert_string_equal(rep.message, "row 55555 was modified: its hash does not match its content");
  /* Deleting the first row of the second range (30001 with two threads, 20001
   * with three) and its neighbours: the first gap is named wherever it is. */
  raw(f, "DELETE FROM audit_chain WHERE seq BETWEEN 20001 AND 30001");
  verify(f, NULL, &rep);
  assert_false(rep.ok);
  assert_int_equal(rep.first_bad_seq, 20001);
  assert_non_null(strstr(rep.message, "row 20001 is missing (deleted)"));
}

/* A crash between an intent and its result leaves the intent open; the next
 * start closes it as "interrupted" (same call) exactly once, and leaves
 * closed intents and intent-only records (denied calls) alone. */
static void test_interrupted_intents_closed_once(void **state)
{
  struct fx *f = *state;
  char err[MX_ERRBUF_LEN];
  append_n(f->a, 4); /* intents 1, 3 closed by results 2, 4 */
  cJSON *args = cJSON_Parse("{\"argv\":[\"/bin/sleep\",\"60\"]}");
  struct tools_audit_entry cut = {.kind = "intent", .call_id = "call-cut", .operator_mxid = "@op:example.org",
                                  .operator_device = "PHONE1", .verification = "verified",
                                  .room_id = "!room:example.org", .event_id = "$cut", .tool = "shell.exec",
                                  .args = args, .decision = "allow", .status = "pending", .exit_code = -1};
  struct tools_audit_entry denied = cut;
  denied.call_id = "call-denied";
  denied.decision = "deny";
  denied.status = "denied";
  int64_t seq = 0;
  assert_int_equal(tools_audit_append(f->a, &cut, &seq, err), MX_OK);
  assert_int_equal(seq, 5);
  assert_int_equal(tools_audit_append(f->a, &denied, &seq, err), MX_OK);
  struct tools_audit_entry done = cut, result = cut;
  done.call_id = result.call_id = "call-done";
  result.kind = "result";
  result.status = "done";
  result.intent_seq = 7;
  assert_int_equal(tools_audit_append(f->a, &done, &seq, err), MX_OK);
  assert_int_equal(tools_audit_append(f->a, &result, &seq, err), MX_OK);
  assert_int_equal(seq, 8);
  int closed = -1;
  assert_int_equal(tools_audit_close_interrupted(f->a, &closed, err), MX_OK);
  assert_int_equal(closed, 1);
  cJSON *recs = NULL;
  assert_int_equal(tools_audit_recent(f->a, 1, &recs, err), MX_OK);
  const cJSON *r = cJSON_GetArrayItem(recs, 0);
  int64_t v = 0;
  assert_true(mx_json_int(r, "seq", &v) && v == 9);
  assert_string_equal(mx_json_str(r, "kind"), "result");
  assert_string_equal(mx_json_str(r, "status"), "interrupted");
  assert_true(mx_json_int(r, "intent_seq", &v) && v == 5);
  assert_string_equal(mx_json_str(r, "call_id"), "call-cut");
  assert_string_equal(mx_json_str(r, "tool"), "shell.exec");
  assert_string_equal(mx_json_str(r, "event_id"), "$cut");
  assert_string_equal(mx_json_str(cJSON_GetObjectItem(r, "operator"), "mxid"), "@op:example.org");
  assert_true(cJSON_Compare(cJSON_GetObjectItem(r, "args"), args, 1));
  cJSON_Delete(recs);
  assert_int_equal(tools_audit_close_interrupted(f->a, &closed, err), MX_OK); /* a second start: nothing left */
  assert_int_equal(closed, 0);
  struct tools_audit_verify_report rep;
  assert_int_equal(tools_audit_verify(f->a, NULL, &rep, err), MX_OK);
  assert_true(rep.ok);
  assert_int_equal(rep.rows, 9);
  cJSON_Delete(args);
}

/* The health round skips chains whose stamp did not change since they last
 * verified: its own reads must leave the stamp as it was, or it would read
 * every chain every round; an append must change it. */
static void test_stamp_moves_with_writes_not_reads(void **state)
{
  struct fx *f = *state;
  char before[TOOLS_AUDIT_STAMP_LEN], after[TOOLS_AUDIT_STAMP_LEN], err[MX_ERRBUF_LEN];
  struct tools_audit_verify_report rep;
  append_n(f->a, 4);
  tools_audit_release_idle(f->a, 0); /* as the health round does once appends stopped */
  tools_audit_stamp(f->a, before);
  verify(f, NULL, &rep);
  assert_true(rep.ok);
  /* verify alone (the health round's first look): its read-only
   * connections leave an empty -wal behind */
  tools_audit_stamp(f->a, after);
  assert_string_equal(before, after);
  int64_t size = 0;
  uint8_t head[TOOLS_AUDIT_HASH_LEN];
  assert_int_equal(tools_audit_head(f->a, &size, head, err), MX_OK);
  assert_int_equal(size, 4);
  cJSON *recent = NULL;
  assert_int_equal(tools_audit_recent(f->a, 2, &recent, err), MX_OK);
  assert_int_equal(cJSON_GetArraySize(recent), 2);
  cJSON_Delete(recent);
  tools_audit_stamp(f->a, after);
  assert_string_equal(before, after);
  append_n(f->a, 1);
  tools_audit_stamp(f->a, after);
  assert_string_not_equal(before, after);
  /* closed when idle, opened again by the next call: nothing is lost */
  tools_audit_release_idle(f->a, 0);
  assert_int_equal(tools_audit_head(f->a, &size, head, err), MX_OK);
  assert_int_equal(size, 5);
  verify(f, NULL, &rep);
  assert_true(rep.ok);
}

static void test_bad_device_name(void **state)
{
  struct fx *f = *state;
  char err[MX_ERRBUF_LEN];
  struct tools_audit *a = NULL;
  struct tools_audit_opts o = {f->dir, "../etc", NULL};
  assert_int_equal(tools_audit_open(&o, &a, err), MX_ERR_INVALID);
  assert_string_equal(err, "audit: device: expected [A-Za-z0-9._-]{1,64}, got '../etc'");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hash_layout_is_as_documented, setup, teardown),
      cmocka_unit_test_setup_teardown(test_intact_chain_verifies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flipped_byte_names_the_row, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deleted_middle_row, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deleted_tail_is_truncation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reordered_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rewritten_history_caught_by_checkpoint, setup, teardown),
      cmocka_unit_test_setup_teardown(test_checkpoint_text_and_signature, setup, teardown),
      cmocka_unit_test_setup_teardown(test_external_checkpoint_compared, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_append_and_read_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_chain_ranges, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interrupted_intents_closed_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stamp_moves_with_writes_not_reads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_device_name, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
