/* mx_e2ee key requests and forwarded keys without a homeserver: a queued
 * event yields exactly one persisted m.room_key_request (not re-sent after a
 * restart, retried only after the interval, cancelled once the key comes);
 * m.forwarded_room_key is accepted from the session's original device or
 * our own cross-signed device and refused from anyone else; a forward with a
 * higher first index never replaces a lower one; our own verified device's
 * request is answered over Olm and the answer is usable by that device;
 * mx_e2ee_store_waits says when timed work is left for the store sweeps.
 * The to-device hook in struct mx_e2ee stands in for PUT /sendToDevice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <olm/inbound_group_session.h>
#include <olm/outbound_group_session.h>

#include "canned_hs.h"
#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_util.h"

#define ROOM "!r:test"

static char dir[256], dbp[300], db2[300];

struct sent {
  cJSON *log; /* [{type, messages}] */
};

static mx_err hook(void *ctx, const char *type, const cJSON *messages, char *err)
{
  (void)err;
  struct sent *s = ctx;
  cJSON *one = cJSON_CreateObject();
  cJSON_AddStringToObject(one, "type", type);
  cJSON_AddItemToObject(one, "messages", cJSON_Duplicate(messages, 1));
  cJSON_AddItemToArray(s->log, one);
  return MX_OK;
}

static int setup_dir(void **state)
{
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/test_e2ee_keyreq.XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(dbp, sizeof(dbp), "%s/bot.db", dir);
  snprintf(db2, sizeof(db2), "%s/other.db", dir);
  return 0;
}

static int teardown_dir(void **state)
{
  (void)state;
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd);
}

static struct mx_e2ee *open_at(const char *path, const char *user, const char *dev, struct sent *s)
{
  struct mx_e2ee_opts o = { .db_path = path, .data_dir = dir, .user_id = user, .device_id = dev,
                            .require_verified_sender = 1 };
  struct mx_e2ee *e = NULL;
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc = mx_e2ee_open(&o, &e, err);
  if (rc)
    fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, MX_OK);
  /* internals below work through e->db: keep one borrowed (closed with e) */
  assert_int_equal(e2ee_db_enter(e, err), MX_OK);
  e->to_device_hook = hook;
  e->to_device_ctx = s;
  return e;
}

static void run_sql(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(path, &db, NULL), MX_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  mx_db_close(db);
}

static int64_t sql_int(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(path, &db, NULL), MX_OK);
  int64_t v = e2ee_db_int(db, sql, 0, NULL, -1);
  mx_db_close(db);
  return v;
}

/* Records `user/dev` with from's keys in path's device table for acct. */
static void know_device(const char *path, const char *acct, struct mx_e2ee *dev, int cross_signed)
{
  char sql[1024];
  snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO e2ee_users(acct, user_id) VALUES('%s','%s');"
                             "INSERT OR REPLACE INTO e2ee_devices(acct, user_id, device_id, curve25519, ed25519, "
                             "cross_signed) VALUES('%s','%s','%s','%s','%s',%d)",
           acct, dev->user_id, acct, dev->user_id, dev->device_id, mx_e2ee_curve25519(dev), mx_e2ee_ed25519(dev),
           cross_signed);
  run_sql(path, sql);
}

static void maintain(struct mx_e2ee *e)
{
  char err[MX_ERRBUF_LEN] = "";
  e->otk_count = -1; /* no one-time key upload: there is no server */
  e->fallback_missing = 0;
  assert_int_equal(mx_e2ee_maintain(e, err), MX_OK);
}

/* An Olm-encrypted to-device sync carrying type/content from -> to. */
static cJSON *olm_sync(struct mx_e2ee *from, struct mx_e2ee *to, const char *type, const cJSON *content)
{
  char err[MX_ERRBUF_LEN], buf[1024];
  uint8_t rnd[64];
  pthread_mutex_lock(&to->lock);
  assert_int_equal(mx_random_bytes(rnd, sizeof(rnd)), MX_OK);
  olm_account_generate_one_time_keys(to->acct, 1, rnd, olm_account_generate_one_time_keys_random_length(to->acct, 1));
  size_t r = olm_account_one_time_keys(to->acct, buf, sizeof(buf));
  cJSON *otks = cJSON_ParseWithLength(buf, r);
  olm_account_mark_keys_as_published(to->acct);
  pthread_mutex_unlock(&to->lock);
  const cJSON *k = mx_json_obj(otks, "curve25519")->child;
  while (k->next)
    k = k->next; /* the newest key */
  struct e2ee_olm *o = NULL;
  cJSON *ct = NULL;
  pthread_mutex_lock(&from->lock);
  assert_int_equal(e2ee_olm_new_outbound(from, mx_e2ee_curve25519(to), k->valuestring, &o, err), MX_OK);
  assert_int_equal(e2ee_olm_encrypt(from, o, to->user_id, mx_e2ee_ed25519(to), type, content, &ct, err), MX_OK);
  pthread_mutex_unlock(&from->lock);
  cJSON *sync = cJSON_CreateObject();
  cJSON *ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "type", "m.room.encrypted");
  cJSON_AddStringToObject(ev, "sender", from->user_id);
  cJSON_AddItemToObject(ev, "content", ct);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(cJSON_AddObjectToObject(sync, "to_device"), "events"), ev);
  cJSON_Delete(otks);
  return sync;
}

static void sid_of(OlmOutboundGroupSession *g, char sid[128])
{
  size_t n = olm_outbound_group_session_id(g, (uint8_t *)sid, 127);
  sid[n] = '\0';
}

static char key0[512]; /* the test group's session key at index 0 */

/* m.room_key for g: at index 0, or at its current ratchet position */
static cJSON *room_key_at(OlmOutboundGroupSession *g, int current)
{
  char sid[128], key[512];
  sid_of(g, sid);
  size_t n = olm_outbound_group_session_key(g, (uint8_t *)key, sizeof(key));
  key[n] = '\0';
  if (!current)
    snprintf(key, sizeof(key), "%s", key0);
  cJSON *c = cJSON_CreateObject();
  cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
  cJSON_AddStringToObject(c, "room_id", ROOM);
  cJSON_AddStringToObject(c, "session_id", sid);
  cJSON_AddStringToObject(c, "session_key", key);
  return c;
}

/* m.forwarded_room_key content for g exported at index `at`, naming orig as
 * the original device. */
static cJSON *forward(OlmOutboundGroupSession *g, struct mx_e2ee *orig, uint32_t at)
{
  cJSON *rk = room_key_at(g, 0);
  OlmInboundGroupSession *in = olm_inbound_group_session(malloc(olm_inbound_group_session_size()));
  const char *k = mx_json_str(rk, "session_key");
  char *copy = mx_strdup(k), exp[1024];
  assert_int_not_equal(olm_init_inbound_group_session(in, (uint8_t *)copy, strlen(copy)), olm_error());
  size_t n = olm_export_inbound_group_session(in, (uint8_t *)exp, sizeof(exp), at);
  assert_int_not_equal(n, olm_error());
  exp[n] = '\0';
  cJSON_ReplaceItemInObject(rk, "session_key", cJSON_CreateString(exp));
  cJSON_AddStringToObject(rk, "sender_key", mx_e2ee_curve25519(orig));
  cJSON_AddStringToObject(rk, "sender_claimed_ed25519_key", mx_e2ee_ed25519(orig));
  cJSON_AddArrayToObject(rk, "forwarding_curve25519_key_chain");
  olm_clear_inbound_group_session(in);
  free(in);
  free(copy);
  return rk;
}

static cJSON *megolm_event(struct mx_e2ee *from, OlmOutboundGroupSession *g, const char *eid, const char *body)
{
  char plain[512], ct[2048], sid[128];
  snprintf(plain, sizeof(plain), "{\"type\":\"m.room.message\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"%s\"},"
                                 "\"room_id\":\"%s\"}", body, ROOM);
  size_t n = olm_group_encrypt(g, (uint8_t *)plain, strlen(plain), (uint8_t *)ct, sizeof(ct));
  assert_int_not_equal(n, olm_error());
  ct[n] = '\0';
  sid_of(g, sid);
  cJSON *ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "type", "m.room.encrypted");
  cJSON_AddStringToObject(ev, "sender", from->user_id);
  cJSON_AddStringToObject(ev, "event_id", eid);
  cJSON *c = cJSON_AddObjectToObject(ev, "content");
  cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
  cJSON_AddStringToObject(c, "sender_key", mx_e2ee_curve25519(from));
  cJSON_AddStringToObject(c, "device_id", from->device_id);
  cJSON_AddStringToObject(c, "session_id", sid);
  cJSON_AddStringToObject(c, "ciphertext", ct);
  return ev;
}

/* kind 0: process_sync(arg), 1: decrypt(arg), 2: take_ready */
static mx_err in_tx(const char *path, struct mx_e2ee *e, int kind, const cJSON *arg, cJSON **out,
                    struct mx_e2ee_sender *s)
{
  sqlite3 *db = NULL;
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(mx_db_open(path, &db, NULL), MX_OK);
  assert_int_equal(mx_db_begin(db, NULL), MX_OK);
  mx_err rc;
  if (kind == 0)
    rc = mx_e2ee_process_sync(e, db, arg, err);
  else if (kind == 1)
    rc = mx_e2ee_decrypt(e, db, ROOM, arg, out, s, err);
  else
    rc = mx_e2ee_take_ready(e, db, out, err);
  assert_int_equal(mx_db_commit(db, NULL), MX_OK);
  mx_db_close(db);
  return rc;
}

static void deliver(const char *path, struct mx_e2ee *from, struct mx_e2ee *to, const char *type, cJSON *content)
{
  cJSON *sync = olm_sync(from, to, type, content);
  assert_int_equal(in_tx(path, to, 0, sync, NULL, NULL), MX_OK);
  cJSON_Delete(sync);
  cJSON_Delete(content);
}

static int ready_count(struct mx_e2ee *bot, cJSON **ready)
{
  assert_int_equal(in_tx(dbp, bot, 2, NULL, ready, NULL), MX_OK);
  return cJSON_GetArraySize(*ready);
}

static OlmOutboundGroupSession *new_group(void)
{
  OlmOutboundGroupSession *g = olm_outbound_group_session(malloc(olm_outbound_group_session_size()));
  uint8_t rnd[256];
  assert_int_equal(mx_random_bytes(rnd, sizeof(rnd)), MX_OK);
  olm_init_outbound_group_session(g, rnd, olm_init_outbound_group_session_random_length(g));
  size_t n = olm_outbound_group_session_key(g, (uint8_t *)key0, sizeof(key0) - 1);
  key0[n] = '\0';
  return g;
}

static void free_group(OlmOutboundGroupSession *g)
{
  olm_clear_outbound_group_session(g);
  free(g);
}

static const cJSON *nth(struct sent *s, int i)
{
  return cJSON_GetArrayItem(s->log, i);
}

static void request_sent_once_persisted_retried_and_cancelled(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  OlmOutboundGroupSession *g = new_group();
  char sid[128];
  sid_of(g, sid);
  cJSON *ev1 = megolm_event(alice, g, "$e1", "one"), *ev2 = megolm_event(alice, g, "$e2", "two"), *plain = NULL;
  struct mx_e2ee_sender who;
  assert_int_equal(in_tx(dbp, bot, 1, ev1, &plain, &who), MX_ERR_PENDING);
  assert_int_equal(in_tx(dbp, bot, 1, ev2, &plain, &who), MX_ERR_PENDING);
  assert_int_equal(cJSON_GetArraySize(s.log), 0); /* nothing from the sync side */
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), 1);
  const cJSON *m = nth(&s, 0);
  assert_string_equal(mx_json_str(m, "type"), "m.room_key_request");
  const cJSON *to_alice = mx_json_obj(mx_json_obj(mx_json_obj(m, "messages"), "@alice:test"), "*");
  const cJSON *to_us = mx_json_obj(mx_json_obj(mx_json_obj(m, "messages"), "@bot:test"), "*");
  assert_non_null(to_alice);
  assert_non_null(to_us);
  assert_string_equal(mx_json_str(to_alice, "action"), "request");
  assert_string_equal(mx_json_str(to_alice, "requesting_device_id"), "BDEV");
  const cJSON *body = mx_json_obj(to_alice, "body");
  assert_string_equal(mx_json_str(body, "algorithm"), "m.megolm.v1.aes-sha2");
  assert_string_equal(mx_json_str(body, "room_id"), ROOM);
  assert_string_equal(mx_json_str(body, "session_id"), sid);
  assert_string_equal(mx_json_str(body, "sender_key"), mx_e2ee_curve25519(alice));
  char rid[64];
  snprintf(rid, sizeof(rid), "%s", mx_json_str(to_alice, "request_id"));
  assert_true(strlen(rid) >= 16);
  /* once per session, and a restart does not re-send */
  maintain(bot);
  mx_e2ee_close(bot);
  bot = open_at(dbp, "@bot:test", "BDEV", &s);
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), 1);
  assert_int_equal(sql_int(dbp, "SELECT count(*) FROM e2ee_key_requests WHERE acct='@bot:test' AND state=1"), 1);
  /* still missing after the retry interval: the same request again */
  run_sql(dbp, "UPDATE e2ee_key_requests SET sent_ms=sent_ms-600001");
  maintain(bot);
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), 2);
  assert_string_equal(mx_json_str(mx_json_obj(mx_json_obj(mx_json_obj(nth(&s, 1), "messages"), "@alice:test"), "*"),
                                  "request_id"), rid);
  /* the key arrives: one cancellation with the same id, then silence */
  deliver(dbp, alice, bot, "m.room_key", room_key_at(g, 0));
  assert_int_equal(cJSON_GetArraySize(s.log), 2);
  maintain(bot);
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), 3);
  const cJSON *c = mx_json_obj(mx_json_obj(mx_json_obj(nth(&s, 2), "messages"), "@alice:test"), "*");
  assert_string_equal(mx_json_str(nth(&s, 2), "type"), "m.room_key_request");
  assert_string_equal(mx_json_str(c, "action"), "request_cancellation");
  assert_string_equal(mx_json_str(c, "request_id"), rid);
  assert_int_equal(sql_int(dbp, "SELECT count(*) FROM e2ee_key_requests"), 0);
  cJSON *ready = NULL;
  assert_int_equal(ready_count(bot, &ready), 2);
  cJSON_Delete(ready);
  cJSON_Delete(ev1);
  cJSON_Delete(ev2);
  cJSON_Delete(s.log);
  free_group(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
}

static void expect_decrypts_once_as(struct mx_e2ee *bot, struct mx_e2ee *orig, const char *body)
{
  cJSON *ready = NULL, *plain = NULL;
  struct mx_e2ee_sender who;
  assert_int_equal(ready_count(bot, &ready), 1);
  assert_int_equal(in_tx(dbp, bot, 1, ready->child, &plain, &who), MX_OK);
  assert_string_equal(mx_json_str(mx_json_obj(plain, "content"), "body"), body);
  assert_string_equal(who.user_id, orig->user_id);
  assert_string_equal(who.sender_key, mx_e2ee_curve25519(orig));
  assert_string_equal(who.ed25519, mx_e2ee_ed25519(orig));
  cJSON_Delete(plain);
  cJSON_Delete(ready);
  assert_int_equal(ready_count(bot, &ready), 0);
  cJSON_Delete(ready);
}

static void forward_from_original_device_is_accepted(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  OlmOutboundGroupSession *g = new_group();
  cJSON *ev = megolm_event(alice, g, "$f1", "!ping"), *plain = NULL;
  struct mx_e2ee_sender who;
  assert_int_equal(in_tx(dbp, bot, 1, ev, &plain, &who), MX_ERR_PENDING);
  maintain(bot); /* the request goes out: forwards are accepted only for it */
  deliver(dbp, alice, bot, "m.forwarded_room_key", forward(g, alice, 0));
  expect_decrypts_once_as(bot, alice, "!ping");
  /* replay protection still holds for the forwarded session */
  cJSON *replay = cJSON_Duplicate(ev, 1);
  cJSON_ReplaceItemInObject(replay, "event_id", cJSON_CreateString("$f1-again"));
  assert_int_equal(in_tx(dbp, bot, 1, replay, &plain, &who), MX_ERR_CRYPTO);
  assert_null(plain);
  cJSON_Delete(replay);
  cJSON_Delete(ev);
  cJSON_Delete(s.log);
  free_group(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
}

static void forward_from_anyone_else_is_refused(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  struct mx_e2ee *mallory = open_at(dbp, "@mallory:test", "MDEV", &s), *own = open_at(db2, "@bot:test", "B2", &s);
  OlmOutboundGroupSession *g = new_group();
  cJSON *ev = megolm_event(alice, g, "$g1", "hello"), *plain = NULL, *ready = NULL;
  struct mx_e2ee_sender who;
  know_device(dbp, "@bot:test", alice, 0);
  assert_int_equal(in_tx(dbp, bot, 1, ev, &plain, &who), MX_ERR_PENDING);
  maintain(bot);
  /* another user, even naming alice's keys */
  deliver(dbp, mallory, bot, "m.forwarded_room_key", forward(g, alice, 0));
  /* the original device's curve key claimed with a different ed25519 */
  cJSON *bad = forward(g, alice, 0);
  cJSON_ReplaceItemInObject(bad, "sender_key", cJSON_CreateString(mx_e2ee_curve25519(mallory)));
  deliver(dbp, mallory, bot, "m.forwarded_room_key", bad);
  /* our own device, but not cross-signed */
  know_device(dbp, "@bot:test", own, 0);
  deliver(dbp, own, bot, "m.forwarded_room_key", forward(g, alice, 0));
  assert_int_equal(ready_count(bot, &ready), 0);
  cJSON_Delete(ready);
  assert_int_equal(sql_int(dbp, "SELECT count(*) FROM e2ee_inbound WHERE acct='@bot:test'"), 0);
  assert_int_equal(in_tx(dbp, bot, 1, ev, &plain, &who), MX_ERR_PENDING);
  /* the same device once cross-signed (under an unchanged master key) */
  know_device(dbp, "@bot:test", own, 1);
  deliver(dbp, own, bot, "m.forwarded_room_key", forward(g, alice, 0));
  expect_decrypts_once_as(bot, alice, "hello");
  cJSON_Delete(ev);
  cJSON_Delete(s.log);
  free_group(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
  mx_e2ee_close(mallory);
  mx_e2ee_close(own);
}

static void higher_first_index_never_replaces_lower(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  OlmOutboundGroupSession *g = new_group();
  cJSON *ev0 = megolm_event(alice, g, "$h0", "zero"), *ev1 = megolm_event(alice, g, "$h1", "one"), *plain = NULL;
  struct mx_e2ee_sender who;
  const char *q = "SELECT first_index FROM e2ee_inbound WHERE acct='@bot:test'";
  assert_int_equal(in_tx(dbp, bot, 1, ev0, &plain, &who), MX_ERR_PENDING);
  maintain(bot); /* requested: forwards for the session are accepted until it is cancelled */
  deliver(dbp, alice, bot, "m.forwarded_room_key", forward(g, alice, 1));
  assert_int_equal(sql_int(dbp, q), 1);
  assert_int_equal(in_tx(dbp, bot, 1, ev0, &plain, &who), MX_ERR_CRYPTO); /* before the known index */
  assert_int_equal(in_tx(dbp, bot, 1, ev1, &plain, &who), MX_OK);
  cJSON_Delete(plain);
  deliver(dbp, alice, bot, "m.forwarded_room_key", forward(g, alice, 0));
  assert_int_equal(sql_int(dbp, q), 0);
  deliver(dbp, alice, bot, "m.forwarded_room_key", forward(g, alice, 1));
  deliver(dbp, alice, bot, "m.room_key", room_key_at(g, 1)); /* the current ratchet: index 2 */
  assert_int_equal(sql_int(dbp, q), 0);
  assert_int_equal(in_tx(dbp, bot, 1, ev0, &plain, &who), MX_OK);
  assert_string_equal(mx_json_str(mx_json_obj(plain, "content"), "body"), "zero");
  cJSON_Delete(plain);
  cJSON_Delete(ev0);
  cJSON_Delete(ev1);
  cJSON_Delete(s.log);
  free_group(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
}

static cJSON *request_sync(const char *user, const char *dev, const char *rid, const char *sid)
{
  cJSON *sync = cJSON_CreateObject(), *ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "type", "m.room_key_request");
  cJSON_AddStringToObject(ev, "sender", user);
  cJSON *c = cJSON_AddObjectToObject(ev, "content");
  cJSON_AddStringToObject(c, "action", "request");
  cJSON_AddStringToObject(c, "request_id", rid);
  cJSON_AddStringToObject(c, "requesting_device_id", dev);
  cJSON *b = cJSON_AddObjectToObject(c, "body");
  cJSON_AddStringToObject(b, "algorithm", "m.megolm.v1.aes-sha2");
  cJSON_AddStringToObject(b, "room_id", ROOM);
  cJSON_AddStringToObject(b, "session_id", sid);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(cJSON_AddObjectToObject(sync, "to_device"), "events"), ev);
  return sync;
}

static void requests_answered_only_for_own_verified_devices(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  struct mx_e2ee *own = open_at(db2, "@bot:test", "B2", &s);
  OlmOutboundGroupSession *g = new_group();
  char sid[128];
  sid_of(g, sid);
  deliver(dbp, alice, bot, "m.room_key", room_key_at(g, 0));
  know_device(dbp, "@bot:test", own, 0);
  cJSON *r1 = request_sync("@alice:test", "ADEV", "r1", sid), *r2 = request_sync("@bot:test", "B2", "r2", sid);
  assert_int_equal(in_tx(dbp, bot, 0, r1, NULL, NULL), MX_OK); /* another user */
  assert_int_equal(in_tx(dbp, bot, 0, r2, NULL, NULL), MX_OK); /* own, unverified */
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), 0);
  know_device(dbp, "@bot:test", own, 1);
  /* B2 needs an Olm session with us: it writes to us first */
  deliver(db2, bot, own, "m.dummy", cJSON_CreateObject());
  assert_int_equal(in_tx(dbp, bot, 0, r2, NULL, NULL), MX_OK);
  maintain(bot);
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), 1);
  const cJSON *m = nth(&s, 0);
  assert_string_equal(mx_json_str(m, "type"), "m.room.encrypted");
  const cJSON *ct = mx_json_obj(mx_json_obj(mx_json_obj(m, "messages"), "@bot:test"), "B2");
  assert_non_null(ct);
  /* B2 (trusting BDEV and knowing alice) accepts the forward and decrypts */
  know_device(db2, "@bot:test", bot, 1);
  know_device(db2, "@bot:test", alice, 0);
  cJSON *sync = cJSON_CreateObject(), *ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "type", "m.room.encrypted");
  cJSON_AddStringToObject(ev, "sender", "@bot:test");
  cJSON_AddItemToObject(ev, "content", cJSON_Duplicate(ct, 1));
  cJSON_AddItemToArray(cJSON_AddArrayToObject(cJSON_AddObjectToObject(sync, "to_device"), "events"), ev);
  cJSON *msg = megolm_event(alice, g, "$k1", "shared"), *plain = NULL;
  struct mx_e2ee_sender who;
  assert_int_equal(in_tx(db2, own, 1, msg, &plain, &who), MX_ERR_PENDING); /* B2 asks for the key */
  maintain(own);
  assert_int_equal(in_tx(db2, own, 0, sync, NULL, NULL), MX_OK);
  assert_int_equal(in_tx(db2, own, 1, msg, &plain, &who), MX_OK);
  assert_string_equal(mx_json_str(mx_json_obj(plain, "content"), "body"), "shared");
  assert_string_equal(who.sender_key, mx_e2ee_curve25519(alice));
  cJSON_Delete(plain);
  cJSON_Delete(msg);
  cJSON_Delete(sync);
  cJSON_Delete(r1);
  cJSON_Delete(r2);
  cJSON_Delete(s.log);
  free_group(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
  mx_e2ee_close(own);
}

/* Issue 12, gap 2: a room member who has alice's session shares it as their
 * own (m.room_key) or forwards it unasked: the bot keeps alice's copy apart,
 * waits for it, and decrypts alice's message as hers; before, the first
 * attribution won and alice's messages were unreadable for good. */
static void another_members_copy_cannot_block_a_session(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  struct mx_e2ee *mallory = open_at(dbp, "@mallory:test", "MDEV", &s);
  OlmOutboundGroupSession *g = new_group();
  cJSON *ev = megolm_event(alice, g, "$m1", "from alice"), *plain = NULL, *ready = NULL;
  struct mx_e2ee_sender who;
  assert_int_equal(in_tx(dbp, bot, 1, ev, &plain, &who), MX_ERR_PENDING);
  maintain(bot);
  /* mallory's unsolicited forward is refused outright */
  deliver(dbp, mallory, bot, "m.forwarded_room_key", forward(g, mallory, 0));
  assert_int_equal(sql_int(dbp, "SELECT count(*) FROM e2ee_inbound WHERE acct='@bot:test'"), 0);
  /* her m.room_key for alice's session is kept as hers, apart */
  deliver(dbp, mallory, bot, "m.room_key", room_key_at(g, 0));
  assert_int_equal(sql_int(dbp, "SELECT count(*) FROM e2ee_inbound WHERE acct='@bot:test' AND "
                                "sender_user='@mallory:test'"), 1);
  if (ready_count(bot, &ready) == 1) /* released by any copy: it must wait again, undecrypted */
    assert_int_equal(in_tx(dbp, bot, 1, ready->child, &plain, &who), MX_ERR_PENDING);
  assert_null(plain);
  cJSON_Delete(ready);
  /* alice's own re-share, then the message decrypts as alice's */
  deliver(dbp, alice, bot, "m.forwarded_room_key", forward(g, alice, 0));
  expect_decrypts_once_as(bot, alice, "from alice");
  cJSON_Delete(ev);
  cJSON_Delete(s.log);
  free_group(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
  mx_e2ee_close(mallory);
}

/* Issue 12, gap 6: a room's own rotation limits are honoured (the stricter
 * of ours and the room's), invited users get no room keys when the room's
 * history is visible only to joined members, and an m.room_key.withheld
 * from the sender stops our requests for that session. */
static cJSON *room_state_sync(const char *type, const char *content)
{
  char text[1024];
  snprintf(text, sizeof(text), "{\"rooms\": {\"join\": {\"" ROOM "\": {\"state\": {\"events\": [{\"type\": \"%s\", "
                               "\"state_key\": \"\", \"sender\": \"@alice:test\", \"event_id\": \"$s%s\", "
                               "\"content\": %s}]}}}}}", type, type, content);
  cJSON *sync = cJSON_Parse(text);
  assert_non_null(sync);
  return sync;
}

static void room_settings_and_withheld_keys_are_honoured(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  int64_t ms = 0, msgs = 0;
  e2ee_room_rotation(bot, ROOM, &ms, &msgs);
  assert_int_equal(ms, 604800000LL);
  assert_int_equal(msgs, 100);
  cJSON *st = room_state_sync("m.room.encryption", "{\"algorithm\": \"m.megolm.v1.aes-sha2\", "
                                                    "\"rotation_period_ms\": 3600000, \"rotation_period_msgs\": 5}");
  assert_int_equal(in_tx(dbp, bot, 0, st, NULL, NULL), MX_OK);
  cJSON_Delete(st);
  e2ee_room_rotation(bot, ROOM, &ms, &msgs);
  assert_int_equal(ms, 3600000);
  assert_int_equal(msgs, 5);
  st = room_state_sync("m.room.encryption", "{\"algorithm\": \"m.megolm.v1.aes-sha2\", \"rotation_period_msgs\": 1000}");
  assert_int_equal(in_tx(dbp, bot, 0, st, NULL, NULL), MX_OK); /* laxer than ours: ours holds */
  cJSON_Delete(st);
  e2ee_room_rotation(bot, ROOM, &ms, &msgs);
  assert_int_equal(msgs, 100);

  assert_true(e2ee_room_keys_for_invited(bot, ROOM));
  st = room_state_sync("m.room.history_visibility", "{\"history_visibility\": \"joined\"}");
  assert_int_equal(in_tx(dbp, bot, 0, st, NULL, NULL), MX_OK);
  cJSON_Delete(st);
  assert_false(e2ee_room_keys_for_invited(bot, ROOM));

  /* withheld: the request is not repeated */
  OlmOutboundGroupSession *g = new_group();
  char sid[128];
  sid_of(g, sid);
  cJSON *ev = megolm_event(alice, g, "$w1", "withheld"), *plain = NULL;
  struct mx_e2ee_sender who;
  assert_int_equal(in_tx(dbp, bot, 1, ev, &plain, &who), MX_ERR_PENDING);
  maintain(bot);
  int sent = cJSON_GetArraySize(s.log);
  assert_true(sent >= 1);
  char text[1024];
  snprintf(text, sizeof(text), "{\"to_device\": {\"events\": [{\"type\": \"m.room_key.withheld\", \"sender\": "
                               "\"@alice:test\", \"content\": {\"algorithm\": \"m.megolm.v1.aes-sha2\", \"room_id\": "
                               "\"" ROOM "\", \"session_id\": \"%s\", \"code\": \"m.unverified\", \"sender_key\": "
                               "\"%s\"}}]}}", sid, mx_e2ee_curve25519(alice));
  cJSON *wh = cJSON_Parse(text);
  assert_int_equal(in_tx(dbp, bot, 0, wh, NULL, NULL), MX_OK);
  cJSON_Delete(wh);
  run_sql(dbp, "UPDATE e2ee_key_requests SET sent_ms = 0"); /* the retry interval has passed */
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), sent);
  cJSON_Delete(ev);
  cJSON_Delete(s.log);
  free_group(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
}

/* Issue 12, gap 4: unwedging must start a NEW Olm session; when the claim
 * brings no one-time key, no m.dummy goes over the stuck session (which
 * cannot help), and the attempt is kept for later. */
static void unwedge_never_reuses_the_stuck_session(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct canned_hs hs;
  canned_start(&hs);
  struct mx_api *api = canned_api(&hs, "@bot:test");
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  bot->api = api;
  know_device(dbp, "@bot:test", alice, 1);
  /* an Olm session exists between them (alice wrote first) */
  deliver(dbp, alice, bot, "m.dummy", cJSON_CreateObject());
  char q[512];
  snprintf(q, sizeof(q), "INSERT OR REPLACE INTO e2ee_dummy(acct, their_key, last_ms, wanted) VALUES('@bot:test', "
                         "'%s', 0, 1)", mx_e2ee_curve25519(alice));
  run_sql(dbp, q);
  int before = cJSON_GetArraySize(s.log);
  maintain(bot);
  assert_true(hs.hits >= 1); /* it did try to claim a one-time key */
  assert_int_equal(cJSON_GetArraySize(s.log), before); /* nothing over the old session */
  snprintf(q, sizeof(q), "SELECT wanted FROM e2ee_dummy WHERE acct='@bot:test' AND their_key='%s'",
           mx_e2ee_curve25519(alice));
  assert_int_equal(sql_int(dbp, q), 1);
  bot->api = NULL;
  cJSON_Delete(s.log);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
  mx_api_free(api);
  canned_stop(&hs);
}

/* mx_e2ee_store_waits, which the bot's timed store sweeps go by (an idle
 * identity is swept only when a batch writes, or hourly): 1 until the first
 * sweep and after a sweep that could not run, else 1 exactly while
 * something waits that time alone moves on. A
 * queued event and its key request wait until the event is taken; an
 * unwedging whose key claim failed (the homeserver not reached) is still
 * wanted, and waits. */
static void timed_work_is_reported_until_done(void **state)
{
  (void)state;
  struct sent s = { cJSON_CreateArray() };
  struct mx_e2ee *alice = open_at(dbp, "@alice:test", "ADEV", &s), *bot = open_at(dbp, "@bot:test", "BDEV", &s);
  assert_int_equal(mx_e2ee_store_waits(bot), 1); /* not swept yet */
  maintain(bot);
  assert_int_equal(mx_e2ee_store_waits(bot), 0);
  /* a sweep that cannot run now (an encrypt holds the identity) says so */
  pthread_mutex_lock(&bot->send_lock);
  maintain(bot);
  pthread_mutex_unlock(&bot->send_lock);
  assert_int_equal(mx_e2ee_store_waits(bot), 1);
  maintain(bot);
  assert_int_equal(mx_e2ee_store_waits(bot), 0);
  OlmOutboundGroupSession *g = new_group();
  cJSON *ev = megolm_event(alice, g, "$e1", "one"), *plain = NULL, *ready = NULL;
  struct mx_e2ee_sender who;
  assert_int_equal(in_tx(dbp, bot, 1, ev, &plain, &who), MX_ERR_PENDING);
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), 1); /* the key request */
  assert_int_equal(mx_e2ee_store_waits(bot), 1);
  deliver(dbp, alice, bot, "m.room_key", room_key_at(g, 0));
  maintain(bot);
  assert_int_equal(cJSON_GetArraySize(s.log), 2); /* its cancellation */
  assert_int_equal(mx_e2ee_store_waits(bot), 1); /* the event is not taken yet */
  assert_int_equal(ready_count(bot, &ready), 1);
  maintain(bot);
  assert_int_equal(mx_e2ee_store_waits(bot), 0);

  /* a wedged session, and the claim for a new one cannot reach the server */
  _Atomic int stop = 1;
  struct mx_api *api = mx_api_new("http://127.0.0.1:9", "@bot:test", "tok");
  mx_api_set_cancel(api, &stop);
  bot->api = api;
  know_device(dbp, "@bot:test", alice, 1);
  char q[512];
  snprintf(q, sizeof(q), "INSERT INTO e2ee_dummy(acct, their_key, last_ms, wanted) VALUES('@bot:test', '%s', 0, 1)",
           mx_e2ee_curve25519(alice));
  run_sql(dbp, q);
  maintain(bot);
  snprintf(q, sizeof(q), "SELECT wanted FROM e2ee_dummy WHERE acct='@bot:test' AND their_key='%s'",
           mx_e2ee_curve25519(alice));
  assert_int_equal(sql_int(dbp, q), 1);
  assert_int_equal(mx_e2ee_store_waits(bot), 1);
  bot->api = NULL;
  mx_api_free(api);
  cJSON_Delete(ready);
  cJSON_Delete(ev);
  cJSON_Delete(s.log);
  free_group(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(request_sent_once_persisted_retried_and_cancelled, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(forward_from_original_device_is_accepted, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(forward_from_anyone_else_is_refused, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(higher_first_index_never_replaces_lower, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(another_members_copy_cannot_block_a_session, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(room_settings_and_withheld_keys_are_honoured, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(unwedge_never_reuses_the_stuck_session, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(requests_answered_only_for_own_verified_devices, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(timed_work_is_reported_until_done, setup_dir, teardown_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
