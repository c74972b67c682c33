/* mx_e2ee unit tests without a homeserver: the spec's JSON signing vectors,
 * signature checks, one-time key bookkeeping (commit before upload, same
 * keys retried), Olm-delivered room keys with late-key queueing and Megolm
 * replay protection across a restart, attachments, and libolm wrappers that
 * leave the caller's buffers unchanged. Two identities share one SQLite file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <olm/outbound_group_session.h>

#include "canned_hs.h"
#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_util.h"

static char dir[256], dbp[300];

static int setup_dir(void **state)
{
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/test_e2ee.XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(dbp, sizeof(dbp), "%s/bot.db", dir);
  return 0;
}

static int teardown_dir(void **state)
{
  (void)state;
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd);
}

static struct mx_e2ee *open_id(const char *user, const char *dev)
{
  struct mx_e2ee_opts o = { .db_path = dbp, .data_dir = dir, .user_id = user, .device_id = dev,
                            .require_verified_sender = 1 };
  struct mx_e2ee *e = NULL;
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc = mx_e2ee_open(&o, &e, err);
  if (rc)
    fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, MX_OK);
  /* these tests call internals that work through e->db: keep one borrowed
   * (the entry points do the same for each call; mx_e2ee_close returns it) */
  assert_int_equal(e2ee_db_enter(e, err), MX_OK);
  return e;
}

static void spec_json_signing_vectors(void **state)
{
  (void)state;
  uint8_t *seed = NULL;
  size_t n = 0;
  assert_int_equal(mx_b64_decode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1", &seed, &n), MX_OK);
  assert_int_equal(n, 32);
  char err[MX_ERRBUF_LEN];
  cJSON *empty = cJSON_CreateObject();
  assert_int_equal(e2ee_pk_sign_json(seed, "1", "domain", empty, err), MX_OK);
  assert_string_equal(mx_json_str(mx_json_obj(mx_json_obj(empty, "signatures"), "domain"), "ed25519:1"),
                      "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ");
  cJSON *data = cJSON_Parse("{\"one\":1,\"two\":\"Two\"}");
  assert_int_equal(e2ee_pk_sign_json(seed, "1", "domain", data, err), MX_OK);
  assert_string_equal(mx_json_str(mx_json_obj(mx_json_obj(data, "signatures"), "domain"), "ed25519:1"),
                      "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw");
  /* the signed object verifies with the seed's public key */
  OlmPkSigning *s = olm_pk_signing(malloc(olm_pk_signing_size()));
  char pub[64];
  uint8_t seed_copy[32];
  memcpy(seed_copy, seed, 32);
  assert_int_not_equal(olm_pk_signing_key_from_seed(s, pub, olm_pk_signing_public_key_length(), seed_copy, 32),
                       olm_error());
  pub[olm_pk_signing_public_key_length()] = '\0';
  OlmUtility *u = olm_utility(malloc(olm_utility_size()));
  assert_int_equal(e2ee_verify_json(u, data, "domain", "1", pub, err), MX_OK);
  /* tampered: a changed value fails */
  cJSON_ReplaceItemInObject(data, "two", cJSON_CreateString("Three"));
  assert_int_equal(e2ee_verify_json(u, data, "domain", "1", pub, err), MX_ERR_AUTH);
  /* wrong key: another key's public half fails on the untampered object */
  assert_int_equal(e2ee_verify_json(u, empty, "domain", "1", "l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ", err),
                   MX_ERR_AUTH);
  /* missing signature for that user */
  assert_int_equal(e2ee_verify_json(u, empty, "other", "1", pub, err), MX_ERR_AUTH);
  assert_non_null(strstr(err, "signatures.other"));
  olm_clear_utility(u);
  free(u);
  olm_clear_pk_signing(s);
  free(s);
  free(seed);
  cJSON_Delete(empty);
  cJSON_Delete(data);
}

static void verify_wrapper_leaves_buffers_unchanged(void **state)
{
  (void)state;
  struct mx_e2ee *e = open_id("@w:test", "WDEV");
  cJSON *o = cJSON_Parse("{\"a\":1}");
  char err[MX_ERRBUF_LEN];
  assert_int_equal(e2ee_sign_json(e, o, err), MX_OK);
  const char *sig = mx_json_str(mx_json_obj(mx_json_obj(o, "signatures"), "@w:test"), "ed25519:WDEV");
  assert_non_null(sig);
  char sig_before[128], msg[] = "{\"a\":1}", msg_before[16], key_before[64];
  snprintf(sig_before, sizeof(sig_before), "%s", sig);
  snprintf(msg_before, sizeof(msg_before), "%s", msg);
  snprintf(key_before, sizeof(key_before), "%s", mx_e2ee_ed25519(e));
  assert_int_equal(e2ee_ed25519_verify(e->util, mx_e2ee_ed25519(e), msg, strlen(msg), sig, err), MX_OK);
  assert_string_equal(sig, sig_before);
  assert_string_equal(msg, msg_before);
  assert_string_equal(mx_e2ee_ed25519(e), key_before);
  /* a failed verify leaves them unchanged too */
  assert_int_equal(e2ee_ed25519_verify(e->util, mx_e2ee_ed25519(e), "{\"a\":2}", 7, sig, err), MX_ERR_AUTH);
  assert_string_equal(sig, sig_before);
  cJSON_Delete(o);
  mx_e2ee_close(e);
}

/* ---- one-time key bookkeeping ---- */

struct fake_up {
  int calls, fail_first;
  char ids[3][4096];
};

static void key_ids(const cJSON *otks, char *out, size_t n)
{
  struct mx_buf b = MX_BUF_INIT(8192);
  const cJSON *k;
  cJSON_ArrayForEach(k, otks)
  {
    assert_int_equal(mx_buf_addf(&b, "%s,", k->string), MX_OK);
  }
  snprintf(out, n, "%s", mx_buf_cstr(&b));
  mx_buf_release(&b);
}

/* The unpublished key ids of the account as committed in the database. */
static void committed_ids(struct mx_e2ee *e, char *out, size_t n)
{
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(dbp, &db, NULL), MX_OK);
  const char *v[] = { e->user_id };
  char *pickle = e2ee_db_text(db, "SELECT pickle FROM e2ee_account WHERE acct=?", 1, v);
  assert_non_null(pickle);
  OlmAccount *a = e2ee_unpickle_account(e, pickle);
  assert_non_null(a);
  char buf[16384];
  size_t r = olm_account_one_time_keys(a, buf, sizeof(buf));
  assert_int_not_equal(r, olm_error());
  cJSON *j = cJSON_ParseWithLength(buf, r);
  struct mx_buf b = MX_BUF_INIT(8192);
  const cJSON *k;
  cJSON_ArrayForEach(k, mx_json_obj(j, "curve25519"))
  {
    assert_int_equal(mx_buf_addf(&b, "signed_curve25519:%s,", k->string), MX_OK);
  }
  snprintf(out, n, "%s", mx_buf_cstr(&b));
  mx_buf_release(&b);
  cJSON_Delete(j);
  e2ee_free_account(a);
  free(pickle);
  mx_db_close(db);
}

static struct mx_e2ee *otk_e;

static mx_err fake_upload(void *ctx, const cJSON *body, int64_t *count, char *err)
{
  struct fake_up *f = ctx;
  assert_true(f->calls < 3);
  const cJSON *otks = mx_json_obj(body, "one_time_keys");
  assert_non_null(otks);
  assert_int_equal(cJSON_GetArraySize(otks), E2EE_OTK_TARGET);
  key_ids(otks, f->ids[f->calls], sizeof(f->ids[0]));
  /* commit BEFORE upload: the database already holds exactly these keys */
  char in_db[4096];
  committed_ids(otk_e, in_db, sizeof(in_db));
  assert_string_equal(in_db, f->ids[f->calls]);
  /* each key is signed by the device and verifies */
  const cJSON *k = otks->child;
  char verr[MX_ERRBUF_LEN];
  assert_int_equal(e2ee_verify_json(otk_e->util, k, otk_e->user_id, otk_e->device_id, mx_e2ee_ed25519(otk_e), verr),
                   MX_OK);
  f->calls++;
  if (f->calls <= f->fail_first)
    return mx_fail(MX_ERR_HTTP, err, "fake: 502");
  *count = E2EE_OTK_TARGET;
  return MX_OK;
}

static void otk_commit_before_upload_and_same_keys_retried(void **state)
{
  (void)state;
  struct fake_up f = { 0, 1, { "" } };
  char err[MX_ERRBUF_LEN];
  otk_e = open_id("@otk:test", "ODEV");
  otk_e->otk_count = 0;
  pthread_mutex_lock(&otk_e->lock);
  assert_int_equal(e2ee_keys_publish(otk_e, fake_upload, &f, 0, err), MX_ERR_HTTP);
  pthread_mutex_unlock(&otk_e->lock);
  /* crash: drop the process state, reopen from the database */
  mx_e2ee_close(otk_e);
  otk_e = open_id("@otk:test", "ODEV");
  otk_e->otk_count = 0;
  pthread_mutex_lock(&otk_e->lock);
  assert_int_equal(e2ee_keys_publish(otk_e, fake_upload, &f, 0, err), MX_OK);
  pthread_mutex_unlock(&otk_e->lock);
  assert_int_equal(f.calls, 2);
  assert_string_equal(f.ids[0], f.ids[1]); /* never regenerated */
  char left[4096];
  committed_ids(otk_e, left, sizeof(left));
  assert_string_equal(left, ""); /* marked published and committed */
  assert_int_equal(otk_e->otk_count, E2EE_OTK_TARGET);
  mx_e2ee_close(otk_e);
}

/* ---- Olm-delivered room keys, late keys, replay ---- */

static cJSON *to_device_room_key(struct mx_e2ee *from, struct mx_e2ee *to, const char *room, OlmOutboundGroupSession *g)
{
  char sid[128], key[512];
  size_t n = olm_outbound_group_session_id(g, (uint8_t *)sid, sizeof(sid));
  sid[n] = '\0';
  n = olm_outbound_group_session_key(g, (uint8_t *)key, sizeof(key));
  key[n] = '\0';
  cJSON *rk = cJSON_CreateObject();
  cJSON_AddStringToObject(rk, "algorithm", "m.megolm.v1.aes-sha2");
  cJSON_AddStringToObject(rk, "room_id", room);
  cJSON_AddStringToObject(rk, "session_id", sid);
  cJSON_AddStringToObject(rk, "session_key", key);
  /* `to` publishes an OTK, `from` claims it */
  char err[MX_ERRBUF_LEN];
  pthread_mutex_lock(&to->lock);
  uint8_t rnd[64];
  assert_int_equal(mx_random_bytes(rnd, sizeof(rnd)), MX_OK);
  olm_account_generate_one_time_keys(to->acct, 1, rnd, olm_account_generate_one_time_keys_random_length(to->acct, 1));
  char buf[1024];
  size_t r = olm_account_one_time_keys(to->acct, buf, sizeof(buf));
  cJSON *otks = cJSON_ParseWithLength(buf, r);
  pthread_mutex_unlock(&to->lock);
  const char *otk = mx_json_obj(otks, "curve25519")->child->valuestring;
  struct e2ee_olm *o = NULL;
  pthread_mutex_lock(&from->lock);
  assert_int_equal(e2ee_olm_new_outbound(from, mx_e2ee_curve25519(to), otk, &o, err), MX_OK);
  cJSON *ct = NULL;
  assert_int_equal(e2ee_olm_encrypt(from, o, to->user_id, mx_e2ee_ed25519(to), "m.room_key", rk, &ct, err), MX_OK);
  pthread_mutex_unlock(&from->lock);
  cJSON *sync = cJSON_CreateObject();
  cJSON *evs = cJSON_AddArrayToObject(cJSON_AddObjectToObject(sync, "to_device"), "events");
  cJSON *ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "type", "m.room.encrypted");
  cJSON_AddStringToObject(ev, "sender", from->user_id);
  cJSON_AddItemToObject(ev, "content", ct);
  cJSON_AddItemToArray(evs, ev);
  cJSON_Delete(otks);
  cJSON_Delete(rk);
  return sync;
}

static cJSON *megolm_event(struct mx_e2ee *from, OlmOutboundGroupSession *g, const char *room, const char *eid,
                           const char *body)
{
  char plain[512], ct[2048], sid[128];
  snprintf(plain, sizeof(plain), "{\"type\":\"m.room.message\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"%s\"},"
                                 "\"room_id\":\"%s\"}", body, room);
  size_t n = olm_group_encrypt(g, (uint8_t *)plain, strlen(plain), (uint8_t *)ct, sizeof(ct));
  assert_int_not_equal(n, olm_error());
  ct[n] = '\0';
  n = olm_outbound_group_session_id(g, (uint8_t *)sid, sizeof(sid));
  sid[n] = '\0';
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

static mx_err in_tx(struct mx_e2ee *e, int kind, const cJSON *arg, cJSON **out, struct mx_e2ee_sender *s)
{
  sqlite3 *db = NULL;
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(mx_db_open(dbp, &db, NULL), MX_OK);
  assert_int_equal(mx_db_begin(db, NULL), MX_OK);
  mx_err rc;
  if (kind == 0)
    rc = mx_e2ee_process_sync(e, db, arg, err);
  else if (kind == 1)
    rc = mx_e2ee_decrypt(e, db, "!r:test", arg, out, s, err);
  else
    rc = mx_e2ee_take_ready(e, db, out, err);
  assert_int_equal(mx_db_commit(db, NULL), MX_OK);
  mx_db_close(db);
  return rc;
}

static void late_key_replay_and_restart(void **state)
{
  (void)state;
  struct mx_e2ee *alice = open_id("@alice:test", "ADEV"), *bot = open_id("@bot:test", "BDEV");
  OlmOutboundGroupSession *g = olm_outbound_group_session(malloc(olm_outbound_group_session_size()));
  uint8_t rnd[256];
  assert_int_equal(mx_random_bytes(rnd, sizeof(rnd)), MX_OK);
  olm_init_outbound_group_session(g, rnd, olm_init_outbound_group_session_random_length(g));
  cJSON *sync = to_device_room_key(alice, bot, "!r:test", g);
  cJSON *ev1 = megolm_event(alice, g, "!r:test", "$e1", "!ping");
  struct mx_e2ee_sender s;
  cJSON *plain = NULL, *ready = NULL;
  /* the message arrives before its key: queued, not lost */
  assert_int_equal(in_tx(bot, 1, ev1, &plain, &s), MX_ERR_PENDING);
  assert_null(plain);
  char *before = cJSON_PrintUnformatted(sync);
  assert_int_equal(in_tx(bot, 0, sync, NULL, NULL), MX_OK);
  char *after = cJSON_PrintUnformatted(sync);
  assert_string_equal(before, after); /* the caller's event is untouched */
  assert_int_equal(in_tx(bot, 2, NULL, &ready, NULL), MX_OK);
  assert_int_equal(cJSON_GetArraySize(ready), 1);
  assert_string_equal(mx_json_str(ready->child, "room_id"), "!r:test");
  assert_int_equal(in_tx(bot, 1, ready->child, &plain, &s), MX_OK);
  assert_string_equal(mx_json_str(mx_json_obj(plain, "content"), "body"), "!ping");
  assert_string_equal(s.user_id, "@alice:test");
  assert_string_equal(s.sender_key, mx_e2ee_curve25519(alice));
  assert_string_equal(s.ed25519, mx_e2ee_ed25519(alice));
  assert_int_equal(s.verified, 0); /* device never queried, never cross-signed */
  cJSON_Delete(plain);
  cJSON_Delete(ready);
  /* handed out once only */
  assert_int_equal(in_tx(bot, 2, NULL, &ready, NULL), MX_OK);
  assert_int_equal(cJSON_GetArraySize(ready), 0);
  cJSON_Delete(ready);
  /* restart: the same event re-decrypts, the replay under a new id does not */
  mx_e2ee_close(bot);
  bot = open_id("@bot:test", "BDEV");
  assert_int_equal(in_tx(bot, 1, ev1, &plain, &s), MX_OK);
  cJSON_Delete(plain);
  cJSON *replay = cJSON_Duplicate(ev1, 1);
  cJSON_ReplaceItemInObject(replay, "event_id", cJSON_CreateString("$e1-replayed"));
  plain = NULL;
  assert_int_equal(in_tx(bot, 1, replay, &plain, &s), MX_ERR_CRYPTO);
  assert_null(plain);
  /* a later index of the same session is fine */
  cJSON *ev2 = megolm_event(alice, g, "!r:test", "$e2", "second");
  assert_int_equal(in_tx(bot, 1, ev2, &plain, &s), MX_OK);
  assert_int_equal(s.message_index, 1);
  cJSON_Delete(plain);
  /* a room key replayed in a second to-device delivery fails Olm (the ratchet
   * moved on) and changes nothing */
  assert_int_equal(in_tx(bot, 0, sync, NULL, NULL), MX_OK);
  cJSON_free(before);
  cJSON_free(after);
  cJSON_Delete(sync);
  cJSON_Delete(ev1);
  cJSON_Delete(ev2);
  cJSON_Delete(replay);
  olm_clear_outbound_group_session(g);
  free(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
}

static void wrong_room_and_wrong_sender_rejected(void **state)
{
  (void)state;
  struct mx_e2ee *alice = open_id("@alice2:test", "A2"), *bot = open_id("@bot2:test", "B2");
  OlmOutboundGroupSession *g = olm_outbound_group_session(malloc(olm_outbound_group_session_size()));
  uint8_t rnd[256];
  assert_int_equal(mx_random_bytes(rnd, sizeof(rnd)), MX_OK);
  olm_init_outbound_group_session(g, rnd, olm_init_outbound_group_session_random_length(g));
  cJSON *sync = to_device_room_key(alice, bot, "!r:test", g);
  assert_int_equal(in_tx(bot, 0, sync, NULL, NULL), MX_OK);
  cJSON *ev = megolm_event(alice, g, "!other:test", "$x1", "hi"); /* plaintext names another room */
  cJSON *plain = NULL;
  struct mx_e2ee_sender s;
  assert_int_equal(in_tx(bot, 1, ev, &plain, &s), MX_ERR_CRYPTO);
  cJSON *ev2 = megolm_event(alice, g, "!r:test", "$x2", "hi");
  cJSON_ReplaceItemInObject(ev2, "sender", cJSON_CreateString("@mallory:test"));
  /* alice's session never decrypts mallory's event: it waits for a copy of mallory's own */
  assert_int_equal(in_tx(bot, 1, ev2, &plain, &s), MX_ERR_PENDING);
  assert_null(plain);
  cJSON_Delete(sync);
  cJSON_Delete(ev);
  cJSON_Delete(ev2);
  olm_clear_outbound_group_session(g);
  free(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
}



static void olm_sessions_are_capped_per_device(void **state)
{
  (void)state;
  struct mx_e2ee *a = open_id("@cap-a:test", "CA"), *b = open_id("@cap-b:test", "CB");
  uint8_t rnd[1024];
  assert_int_equal(mx_random_bytes(rnd, sizeof(rnd)), MX_OK);
  size_t need = olm_account_generate_one_time_keys_random_length(b->acct, 8);
  assert_true(need <= sizeof(rnd));
  olm_account_generate_one_time_keys(b->acct, 8, rnd, need);
  char buf[4096];
  size_t r = olm_account_one_time_keys(b->acct, buf, sizeof(buf));
  cJSON *otks = cJSON_ParseWithLength(buf, r);
  const cJSON *k;
  char err[MX_ERRBUF_LEN];
  pthread_mutex_lock(&a->lock);
  cJSON_ArrayForEach(k, mx_json_obj(otks, "curve25519"))
  {
    struct e2ee_olm *o = NULL;
    assert_int_equal(e2ee_olm_new_outbound(a, mx_e2ee_curve25519(b), k->valuestring, &o, err), MX_OK);
    assert_int_equal(e2ee_flush_unlocked_write(a, err), MX_OK);
  }
  int n = 0;
  for (struct e2ee_olm *o = a->olm; o; o = o->next)
    n += strcmp(o->their_key, mx_e2ee_curve25519(b)) == 0;
  pthread_mutex_unlock(&a->lock);
  assert_int_equal(n, E2EE_MAX_OLM_PER_DEVICE);
  const char *v[] = { a->user_id, mx_e2ee_curve25519(b) };
  assert_int_equal(e2ee_db_int(a->db, "SELECT count(*) FROM e2ee_olm WHERE acct=? AND their_key=?", 2, v, -1),
                   E2EE_MAX_OLM_PER_DEVICE);
  /* the newest session is kept and is the one used to encrypt */
  mx_e2ee_close(a);
  a = open_id("@cap-a:test", "CA");
  pthread_mutex_lock(&a->lock);
  assert_non_null(e2ee_olm_find_best(a, mx_e2ee_curve25519(b)));
  pthread_mutex_unlock(&a->lock);
  cJSON_Delete(otks);
  mx_e2ee_close(a);
  mx_e2ee_close(b);
}

/* ---- device lists: verification chain, pinning, tampering ---- */

struct xs {
  uint8_t seed[32];
  char pub[64];
};

static void xs_new(struct xs *x)
{
  assert_int_equal(mx_random_bytes(x->seed, 32), MX_OK);
  OlmPkSigning *s = olm_pk_signing(malloc(olm_pk_signing_size()));
  uint8_t copy[32];
  memcpy(copy, x->seed, 32);
  assert_int_not_equal(olm_pk_signing_key_from_seed(s, x->pub, olm_pk_signing_public_key_length(), copy, 32),
                       olm_error());
  x->pub[olm_pk_signing_public_key_length()] = '\0';
  olm_clear_pk_signing(s);
  free(s);
}

static cJSON *xs_key(const char *user, const char *usage, const struct xs *k, const struct xs *signer)
{
  char kid[96];
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "user_id", user);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "usage"), cJSON_CreateString(usage));
  snprintf(kid, sizeof(kid), "ed25519:%s", k->pub);
  cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "keys"), kid, k->pub);
  if (signer)
    assert_int_equal(e2ee_pk_sign_json(signer->seed, signer->pub, user, o, NULL), MX_OK);
  return o;
}

/* A /keys/query response for one user with one device. */
static cJSON *query_resp(struct mx_e2ee *dev, const struct xs *master, const struct xs *ssk, const struct xs *ssk_signer,
                         int sign_device)
{
  cJSON *r = cJSON_CreateObject();
  cJSON *dk = e2ee_device_keys_json(dev, NULL);
  assert_non_null(dk);
  if (sign_device)
    assert_int_equal(e2ee_pk_sign_json(ssk->seed, ssk->pub, dev->user_id, dk, NULL), MX_OK);
  cJSON_AddItemToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(r, "device_keys"), dev->user_id),
                        dev->device_id, dk);
  cJSON_AddItemToObject(cJSON_AddObjectToObject(r, "master_keys"), dev->user_id,
                        xs_key(dev->user_id, "master", master, NULL));
  cJSON_AddItemToObject(cJSON_AddObjectToObject(r, "self_signing_keys"), dev->user_id,
                        xs_key(dev->user_id, "self_signing", ssk, ssk_signer));
  return r;
}

static void ingest(struct mx_e2ee *bot, const cJSON *resp, const char *user)
{
  const char *users[] = { user };
  char err[MX_ERRBUF_LEN];
  assert_int_equal(mx_db_begin(bot->db, NULL), MX_OK);
  assert_int_equal(e2ee_devices_ingest(bot, bot->db, resp, users, 1, err), MX_OK);
  assert_int_equal(mx_db_commit(bot->db, NULL), MX_OK);
}

static struct mx_e2ee_sender sender_of(struct mx_e2ee *dev)
{
  struct mx_e2ee_sender s;
  memset(&s, 0, sizeof(s));
  snprintf(s.user_id, sizeof(s.user_id), "%s", dev->user_id);
  snprintf(s.device_id, sizeof(s.device_id), "%s", dev->device_id);
  snprintf(s.sender_key, sizeof(s.sender_key), "%s", mx_e2ee_curve25519(dev));
  snprintf(s.ed25519, sizeof(s.ed25519), "%s", mx_e2ee_ed25519(dev));
  return s;
}

static struct mx_e2ee *open_bot_with_operator(const char *bot_user, const char *op)
{
  const char *ops[] = { op };
  struct mx_e2ee_opts o = { .db_path = dbp, .data_dir = dir, .user_id = bot_user, .device_id = "BOTDEV",
                            .operators = ops, .n_operators = 1, .require_verified_sender = 1 };
  struct mx_e2ee *e = NULL;
  assert_int_equal(mx_e2ee_open(&o, &e, NULL), MX_OK);
  assert_int_equal(e2ee_db_enter(e, NULL), MX_OK); /* as open_id */
  return e;
}

static void cross_signed_operator_device_is_trusted(void **state)
{
  (void)state;
  struct mx_e2ee *op = open_id("@op:test", "OPDEV"), *bot = open_bot_with_operator("@bot4:test", "@op:test");
  struct xs m, ss;
  xs_new(&m);
  xs_new(&ss);
  cJSON *r = query_resp(op, &m, &ss, &m, 1);
  ingest(bot, r, "@op:test");
  assert_true(e2ee_device_verified(bot, bot->db, "@op:test", "OPDEV"));
  struct mx_e2ee_sender s = sender_of(op);
  char reason[512];
  assert_int_equal(mx_e2ee_sender_trusted(bot, &s, reason, sizeof(reason)), 1);
  /* keys that did not carry the session: refused */
  snprintf(s.sender_key, sizeof(s.sender_key), "%s", mx_e2ee_curve25519(bot));
  assert_int_equal(mx_e2ee_sender_trusted(bot, &s, reason, sizeof(reason)), 0);
  assert_non_null(strstr(reason, "do not match"));
  /* not an operator */
  struct mx_e2ee_sender other = sender_of(op);
  snprintf(other.user_id, sizeof(other.user_id), "@eve:test");
  assert_int_equal(mx_e2ee_sender_trusted(bot, &other, reason, sizeof(reason)), 0);
  assert_string_equal(reason, "@eve:test is not an operator of this device");
  cJSON_Delete(r);
  mx_e2ee_close(op);
  mx_e2ee_close(bot);
}

static void unsigned_or_badly_chained_device_is_refused(void **state)
{
  (void)state;
  struct mx_e2ee *op = open_id("@op5:test", "OPDEV"), *bot = open_bot_with_operator("@bot5:test", "@op5:test");
  struct xs m, ss, rogue;
  xs_new(&m);
  xs_new(&ss);
  xs_new(&rogue);
  /* device not signed by the self-signing key */
  cJSON *r = query_resp(op, &m, &ss, &m, 0);
  ingest(bot, r, "@op5:test");
  assert_false(e2ee_device_verified(bot, bot->db, "@op5:test", "OPDEV"));
  struct mx_e2ee_sender s = sender_of(op);
  char reason[512];
  assert_int_equal(mx_e2ee_sender_trusted(bot, &s, reason, sizeof(reason)), 0);
  assert_non_null(strstr(reason, "is not verified"));
  cJSON_Delete(r);
  /* self-signing key not signed by the master key */
  r = query_resp(op, &m, &ss, &rogue, 1);
  ingest(bot, r, "@op5:test");
  assert_false(e2ee_device_verified(bot, bot->db, "@op5:test", "OPDEV"));
  cJSON_Delete(r);
  /* the proper chain is trusted */
  r = query_resp(op, &m, &ss, &m, 1);
  ingest(bot, r, "@op5:test");
  assert_true(e2ee_device_verified(bot, bot->db, "@op5:test", "OPDEV"));
  cJSON_Delete(r);
  /* a new master key is an alert, never a silent re-trust */
  struct xs m2, ss2;
  xs_new(&m2);
  xs_new(&ss2);
  r = query_resp(op, &m2, &ss2, &m2, 1);
  ingest(bot, r, "@op5:test");
  assert_false(e2ee_device_verified(bot, bot->db, "@op5:test", "OPDEV"));
  assert_int_equal(mx_e2ee_sender_trusted(bot, &s, reason, sizeof(reason)), 0);
  assert_non_null(strstr(reason, "changed since it was pinned"));
  assert_non_null(strstr(reason, "mxfleet trust repin @op5:test"));
  cJSON_Delete(r);
  mx_e2ee_close(op);
  mx_e2ee_close(bot);
}

static void tampered_device_keys_and_changed_ed25519_are_ignored(void **state)
{
  (void)state;
  struct mx_e2ee *op = open_id("@op6:test", "OPDEV"), *bot = open_bot_with_operator("@bot6:test", "@op6:test");
  struct xs m, ss;
  xs_new(&m);
  xs_new(&ss);
  cJSON *r = query_resp(op, &m, &ss, &m, 1);
  /* tamper: swap the curve25519 key after signing */
  cJSON *dk = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "device_keys"), "@op6:test"), "OPDEV");
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(dk, "keys"), "curve25519:OPDEV",
                            cJSON_CreateString(mx_e2ee_curve25519(bot)));
  ingest(bot, r, "@op6:test");
  const char *v[] = { bot->user_id, "@op6:test" };
  assert_int_equal(e2ee_db_int(bot->db, "SELECT count(*) FROM e2ee_devices WHERE acct=? AND user_id=?", 2, v, -1), 0);
  cJSON_Delete(r);
  /* the genuine device is pinned ... */
  r = query_resp(op, &m, &ss, &m, 1);
  ingest(bot, r, "@op6:test");
  cJSON_Delete(r);
  /* ... and another account claiming the same device id is refused */
  struct mx_e2ee *imp = open_id("@op6:test", "OPDEV-imp");
  free(imp->device_id);
  imp->device_id = mx_strdup("OPDEV");
  r = query_resp(imp, &m, &ss, &m, 1);
  ingest(bot, r, "@op6:test");
  char *ed = e2ee_db_text(bot->db, "SELECT ed25519 FROM e2ee_devices WHERE acct=? AND user_id=?", 2, v);
  assert_string_equal(ed, mx_e2ee_ed25519(op));
  free(ed);
  cJSON_Delete(r);
  mx_e2ee_close(imp);
  mx_e2ee_close(op);
  mx_e2ee_close(bot);
}


/* Untrusted sync input of every wrong shape: skipped with no crash, no
 * leak and no error (one bad event must not block a whole sync). */
static void malformed_sync_input_is_skipped(void **state)
{
  (void)state;
  struct mx_e2ee *bot = open_id("@fuzz:test", "FZ");
  static const char *const bodies[] = {
    "{}",
    "{\"to_device\":7}",
    "{\"to_device\":{\"events\":{}}}",
    "{\"to_device\":{\"events\":[1,\"x\",null,{},{\"type\":\"m.room.encrypted\"}]}}",
    "{\"to_device\":{\"events\":[{\"type\":\"m.room.encrypted\",\"sender\":\"@a:t\",\"content\":{}}]}}",
    "{\"to_device\":{\"events\":[{\"type\":\"m.room.encrypted\",\"sender\":\"@a:t\",\"content\":"
    "{\"sender_key\":\"k\",\"ciphertext\":{\"x\":{\"type\":0,\"body\":\"AAAA\"}}}}]}}",
    "{\"to_device\":{\"events\":[{\"type\":\"m.room_key.withheld\",\"sender\":\"@a:t\",\"content\":7}]}}",
    "{\"device_lists\":{\"changed\":[1,null,\"@x:t\"],\"left\":\"no\"}}",
    "{\"device_one_time_keys_count\":{\"signed_curve25519\":\"many\"},\"device_unused_fallback_key_types\":7}",
    "{\"rooms\":{\"join\":{\"!r:t\":{\"timeline\":{\"events\":[{\"type\":\"m.room.member\",\"state_key\":\"@x:t\","
    "\"content\":{\"membership\":3}},{\"type\":\"m.room.history_visibility\",\"state_key\":\"\",\"content\":[]}]}},"
    "\"!s:t\":7}}}",
  };
  for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
    cJSON *j = cJSON_Parse(bodies[i]);
    assert_non_null(j);
    assert_int_equal(in_tx(bot, 0, j, NULL, NULL), MX_OK);
    cJSON_Delete(j);
  }
  /* a pre-key message whose ciphertext is for our key but is garbage:
   * dropped, no one-time key spent, the device marked for unwedging */
  char body[512];
  snprintf(body, sizeof(body), "{\"to_device\":{\"events\":[{\"type\":\"m.room.encrypted\",\"sender\":\"@a:t\","
                               "\"content\":{\"sender_key\":\"%s\",\"ciphertext\":{\"%s\":{\"type\":1,\"body\":\"AAAA\"}}}}]}}",
           mx_e2ee_curve25519(bot), mx_e2ee_curve25519(bot));
  cJSON *j = cJSON_Parse(body);
  assert_int_equal(in_tx(bot, 0, j, NULL, NULL), MX_OK);
  cJSON_Delete(j);
  const char *v[] = { bot->user_id };
  assert_int_equal(e2ee_db_int(bot->db, "SELECT count(*) FROM e2ee_dummy WHERE acct=? AND wanted=1", 1, v, -1), 1);
  /* malformed encrypted room events: a clear error naming the event */
  static const char *const evs[] = {
    "{\"event_id\":\"$1\",\"sender\":\"@a:t\",\"content\":{}}",
    "{\"event_id\":\"$2\",\"sender\":\"@a:t\",\"content\":{\"algorithm\":\"m.olm.v1.curve25519-aes-sha2\"}}",
    "{\"sender\":\"@a:t\",\"content\":{\"algorithm\":\"m.megolm.v1.aes-sha2\",\"session_id\":\"s\",\"ciphertext\":\"c\"}}",
  };
  for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
    cJSON *ev = cJSON_Parse(evs[i]), *plain = NULL;
    struct mx_e2ee_sender s;
    assert_int_equal(in_tx(bot, 1, ev, &plain, &s), MX_ERR_INVALID);
    assert_null(plain);
    cJSON_Delete(ev);
  }
  mx_e2ee_close(bot);
}

/* Two connections write the same session out of order: the newer ratchet
 * state (higher generation) always survives. */
static void older_generation_never_overwrites_newer(void **state)
{
  (void)state;
  struct mx_e2ee *a = open_id("@gen-a:test", "GA"), *b = open_id("@gen-b:test", "GB");
  uint8_t rnd[512];
  assert_int_equal(mx_random_bytes(rnd, sizeof(rnd)), MX_OK);
  olm_account_generate_one_time_keys(b->acct, 1, rnd, olm_account_generate_one_time_keys_random_length(b->acct, 1));
  char buf[1024], err[MX_ERRBUF_LEN];
  size_t r = olm_account_one_time_keys(b->acct, buf, sizeof(buf));
  cJSON *otks = cJSON_ParseWithLength(buf, r);
  struct e2ee_olm *o = NULL;
  pthread_mutex_lock(&a->lock);
  assert_int_equal(e2ee_olm_new_outbound(a, mx_e2ee_curve25519(b), mx_json_obj(otks, "curve25519")->child->valuestring,
                                         &o, err), MX_OK);
  o->gen = 10;
  o->dirty = 1;
  assert_int_equal(e2ee_flush_unlocked_write(a, err), MX_OK);
  o->gen = 7; /* a late write of an older state */
  o->dirty = 1;
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(dbp, &db, NULL), MX_OK);
  assert_int_equal(mx_db_begin(db, NULL), MX_OK);
  assert_int_equal(e2ee_persist_dirty(a, db, err), MX_OK);
  assert_int_equal(mx_db_commit(db, NULL), MX_OK);
  mx_db_close(db);
  pthread_mutex_unlock(&a->lock);
  const char *v[] = { a->user_id };
  assert_int_equal(e2ee_db_int(a->db, "SELECT gen FROM e2ee_olm WHERE acct=?", 1, v, -1), 10);
  cJSON_Delete(otks);
  mx_e2ee_close(a);
  mx_e2ee_close(b);
}


/* A reaction's relation travels in cleartext; the decrypted content gets it. */
static void cleartext_relation_is_kept(void **state)
{
  (void)state;
  struct mx_e2ee *alice = open_id("@rel-a:test", "RA"), *bot = open_id("@rel-b:test", "RB");
  OlmOutboundGroupSession *g = olm_outbound_group_session(malloc(olm_outbound_group_session_size()));
  uint8_t rnd[256];
  assert_int_equal(mx_random_bytes(rnd, sizeof(rnd)), MX_OK);
  olm_init_outbound_group_session(g, rnd, olm_init_outbound_group_session_random_length(g));
  cJSON *sync = to_device_room_key(alice, bot, "!r:test", g);
  assert_int_equal(in_tx(bot, 0, sync, NULL, NULL), MX_OK);
  cJSON *ev = megolm_event(alice, g, "!r:test", "$rel1", "x");
  cJSON *rel = cJSON_AddObjectToObject(cJSON_GetObjectItem(ev, "content"), "m.relates_to");
  cJSON_AddStringToObject(rel, "rel_type", "m.annotation");
  cJSON_AddStringToObject(rel, "event_id", "$target");
  cJSON *plain = NULL;
  struct mx_e2ee_sender s;
  assert_int_equal(in_tx(bot, 1, ev, &plain, &s), MX_OK);
  assert_string_equal(mx_json_str(mx_json_obj(mx_json_obj(plain, "content"), "m.relates_to"), "event_id"), "$target");
  cJSON_Delete(plain);
  cJSON_Delete(ev);
  cJSON_Delete(sync);
  olm_clear_outbound_group_session(g);
  free(g);
  mx_e2ee_close(alice);
  mx_e2ee_close(bot);
}

static void attachment_round_trip_and_tamper(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  const char msg[] = "log line 1\nlog line 2\n";
  struct mx_buf ct = MX_BUF_INIT(1 << 20), pt = MX_BUF_INIT(1 << 20);
  cJSON *f = NULL;
  assert_int_equal(mx_e2ee_attachment_encrypt(msg, sizeof(msg) - 1, &ct, &f, err), MX_OK);
  assert_int_equal(ct.len, sizeof(msg) - 1);
  assert_memory_not_equal(ct.buf, msg, ct.len);
  assert_string_equal(mx_json_str(f, "v"), "v2");
  assert_string_equal(mx_json_str(mx_json_obj(f, "key"), "alg"), "A256CTR");
  assert_int_equal(mx_e2ee_attachment_decrypt(f, ct.buf, ct.len, &pt, err), MX_OK);
  assert_int_equal(pt.len, sizeof(msg) - 1);
  assert_memory_equal(pt.buf, msg, pt.len);
  ct.buf[3] ^= 1;
  mx_buf_reset(&pt);
  assert_int_equal(mx_e2ee_attachment_decrypt(f, ct.buf, ct.len, &pt, err), MX_ERR_TAMPERED);
  assert_int_equal(pt.len, 0);
  cJSON_ReplaceItemInObject(f, "v", cJSON_CreateString("v1"));
  assert_int_equal(mx_e2ee_attachment_decrypt(f, ct.buf, ct.len, &pt, err), MX_ERR_INVALID);
  assert_non_null(strstr(err, "file.v"));
  cJSON_Delete(f);
  mx_buf_release(&ct);
  mx_buf_release(&pt);
}

static void seal_round_trip_and_pickle_key_file(void **state)
{
  (void)state;
  uint8_t key[32], seed[32], back[32];
  char err[MX_ERRBUF_LEN], *sealed = NULL;
  assert_int_equal(e2ee_pickle_key_load(dir, key, err), MX_OK);
  uint8_t again[32];
  assert_int_equal(e2ee_pickle_key_load(dir, again, err), MX_OK);
  assert_memory_equal(key, again, 32); /* created once, then reused */
  assert_int_equal(mx_random_bytes(seed, 32), MX_OK);
  assert_int_equal(e2ee_seal(key, seed, 32, &sealed, err), MX_OK);
  assert_int_equal(e2ee_unseal(key, sealed, back, 32, err), MX_OK);
  assert_memory_equal(seed, back, 32);
  key[0] ^= 1;
  assert_int_equal(e2ee_unseal(key, sealed, back, 32, err), MX_ERR_TAMPERED);
  free(sealed);
}

/* Issue 12, gap 1: a /keys/query whose answer leaves the operator out (their
 * server in `failures`) must not mark them up to date, and a command is not
 * decided on the cached list then. */
static void partly_failed_key_query_keeps_the_user_outdated(void **state)
{
  (void)state;
  struct canned_hs hs;
  canned_start(&hs);
  struct mx_api *api = canned_api(&hs, "@bot9:test");
  struct mx_e2ee *op = open_id("@op9:test", "OPDEV");
  const char *ops[] = { "@op9:test" };
  struct mx_e2ee_opts o = { .db_path = dbp, .data_dir = dir, .user_id = "@bot9:test", .device_id = "BOTDEV",
                            .operators = ops, .n_operators = 1, .require_verified_sender = 1, .api = api };
  struct mx_e2ee *bot = NULL;
  assert_int_equal(mx_e2ee_open(&o, &bot, NULL), MX_OK);
  assert_int_equal(e2ee_db_enter(bot, NULL), MX_OK); /* as open_id */
  struct xs m, ss;
  xs_new(&m);
  xs_new(&ss);
  cJSON *good = query_resp(op, &m, &ss, &m, 1);
  canned_set(&hs, good);
  struct mx_e2ee_sender s = sender_of(op);
  char reason[512];
  assert_int_equal(mx_e2ee_sender_trusted(bot, &s, reason, sizeof(reason)), 1); /* queried, trusted */
  const char *v[] = { "@bot9:test", "@op9:test" };
  assert_int_equal(e2ee_db_int(bot->db, "SELECT outdated FROM e2ee_users WHERE acct=? AND user_id=?", 2, v, -1), 0);

  /* the operator's device list changes; the next answer fails for their server */
  assert_int_equal(e2ee_db_run(bot->db, NULL, "UPDATE e2ee_users SET outdated=outdated+1 WHERE acct=? AND user_id=?",
                               2, v), MX_OK);
  cJSON *failed = cJSON_Parse("{\"device_keys\": {}, \"failures\": {\"test\": {\"status\": 503, "
                              "\"message\": \"Not ready for retry\"}}}");
  canned_set(&hs, failed);
  assert_int_equal(mx_e2ee_sender_trusted(bot, &s, reason, sizeof(reason)), 0);
  assert_non_null(strstr(reason, "could not get the current list of your sessions"));
  assert_int_equal(e2ee_db_int(bot->db, "SELECT outdated FROM e2ee_users WHERE acct=? AND user_id=?", 2, v, -1), 1);

  /* the server answers again: trusted again, up to date */
  canned_set(&hs, good);
  assert_int_equal(mx_e2ee_sender_trusted(bot, &s, reason, sizeof(reason)), 1);
  assert_int_equal(e2ee_db_int(bot->db, "SELECT outdated FROM e2ee_users WHERE acct=? AND user_id=?", 2, v, -1), 0);
  cJSON_Delete(good);
  cJSON_Delete(failed);
  mx_e2ee_close(bot);
  mx_e2ee_close(op);
  mx_api_free(api);
  canned_stop(&hs);
}

/* Issue 12, gap 7: the bot's own account is queried like any member, so
 * another verified device of the bot's user becomes known (it gets room
 * keys and its key requests are answered). */
static void own_account_devices_are_queried(void **state)
{
  (void)state;
  struct canned_hs hs;
  canned_start(&hs);
  struct mx_api *api = canned_api(&hs, "@bot10:test");
  struct mx_e2ee *other = open_id("@bot10:test", "OTHERDEV");
  struct mx_e2ee_opts o = { .db_path = dbp, .data_dir = dir, .user_id = "@bot10:test", .device_id = "BOTDEV",
                            .require_verified_sender = 1, .api = api };
  struct mx_e2ee *bot = NULL;
  assert_int_equal(mx_e2ee_open(&o, &bot, NULL), MX_OK);
  assert_int_equal(e2ee_db_enter(bot, NULL), MX_OK); /* as open_id */
  struct xs m, ss;
  xs_new(&m);
  xs_new(&ss);
  cJSON *r = query_resp(other, &m, &ss, &m, 1);
  canned_set(&hs, r);
  const char *users[] = { "@bot10:test" };
  char err[MX_ERRBUF_LEN] = "";
  assert_int_equal(e2ee_devices_query(bot, users, 1, 0, err), MX_OK);
  assert_true(hs.hits >= 1);
  assert_true(e2ee_device_verified(bot, bot->db, "@bot10:test", "OTHERDEV"));
  cJSON_Delete(r);
  mx_e2ee_close(bot);
  mx_e2ee_close(other);
  mx_api_free(api);
  canned_stop(&hs);
}

/* Issue 12, gap 5: a sync computed before the fallback key upload still says
 * "no unused fallback key"; believing it rotates the key twice in a row and
 * libolm (two keys kept) forgets the one a peer may be using. */
static void fallback_key_rotates_once(void **state)
{
  (void)state;
  struct canned_hs hs;
  canned_start(&hs);
  char err[MX_ERRBUF_LEN] = "";
  struct mx_api *api = canned_api(&hs, "@fb:test");
  struct mx_e2ee_opts o = { .db_path = dbp, .data_dir = dir, .user_id = "@fb:test", .device_id = "FBDEV",
                            .require_verified_sender = 1, .api = api };
  struct mx_e2ee *e = NULL;
  assert_int_equal(mx_e2ee_open(&o, &e, NULL), MX_OK);
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(dbp, &db, NULL), MX_OK);
  cJSON *sync = cJSON_Parse("{\"device_one_time_keys_count\": {\"signed_curve25519\": 50}, "
                            "\"device_unused_fallback_key_types\": []}");
  for (int round = 0; round < 2; round++) { /* the second sync predates the upload */
    assert_int_equal(mx_db_begin(db, NULL), MX_OK);
    assert_int_equal(mx_e2ee_process_sync(e, db, sync, err), MX_OK);
    assert_int_equal(mx_db_commit(db, NULL), MX_OK);
    assert_int_equal(mx_e2ee_maintain(e, err), MX_OK);
  }
  assert_int_equal(hs.fallback_uploads, 1);
  /* the rotation time survives a restart */
  mx_e2ee_close(e);
  assert_int_equal(mx_e2ee_open(&o, &e, NULL), MX_OK);
  assert_int_equal(mx_db_begin(db, NULL), MX_OK);
  assert_int_equal(mx_e2ee_process_sync(e, db, sync, err), MX_OK);
  assert_int_equal(mx_db_commit(db, NULL), MX_OK);
  assert_int_equal(mx_e2ee_maintain(e, err), MX_OK);
  assert_int_equal(hs.fallback_uploads, 1);
  cJSON_Delete(sync);
  mx_db_close(db);
  mx_e2ee_close(e);
  mx_api_free(api);
  canned_stop(&hs);
}

/* Issue 12, gap 3: a restart asked /keys/changes?from=T&to=T (never any
 * answer); the first sync from the stored token reports the changes. */
static void start_asks_no_empty_key_changes(void **state)
{
  (void)state;
  struct canned_hs hs;
  canned_start(&hs);
  char err[MX_ERRBUF_LEN] = "";
  struct mx_api *api = canned_api(&hs, "@kc:test");
  struct mx_e2ee_opts o = { .db_path = dbp, .data_dir = dir, .user_id = "@kc:test", .device_id = "KCDEV",
                            .require_verified_sender = 1, .api = api };
  struct mx_e2ee *e = NULL;
  assert_int_equal(mx_e2ee_open(&o, &e, NULL), MX_OK);
  mx_err rc = mx_e2ee_start(e, "s72594_4483_1934", err);
  if (rc)
    fprintf(stderr, "start: %s\n", err);
  assert_int_equal(rc, MX_OK);
  assert_true(hs.hits > 0);
  assert_int_equal(hs.keys_changes, 0);
  mx_e2ee_close(e);
  mx_api_free(api);
  canned_stop(&hs);
}

/* A member event recorded while the first GET /members of a room was in
 * flight (a join racing the first send of a new DM): the answer may miss
 * that change, so it is fetched again and the fresh one stored. Before, it
 * was used once and left unstored, and every later send (after a restart
 * too) asked /members again. */
struct member_race {
  const char *user_id, *room_id;
  int bumps;
};

static void bump_members_once(void *ctx, const char *url)
{
  struct member_race *r = ctx;
  if (!strstr(url, "/members") || r->bumps++)
    return;
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(dbp, &db, NULL), MX_OK);
  const char *v[] = { r->user_id, r->room_id };
  assert_int_equal(e2ee_db_run(db, NULL, "INSERT INTO e2ee_rooms(acct, room_id, members_gen) VALUES(?,?,1) "
                                         "ON CONFLICT(acct, room_id) DO UPDATE SET members_gen=members_gen+1", 2, v),
                   MX_OK);
  mx_db_close(db);
}

static void members_changed_during_the_seed_are_fetched_again(void **state)
{
  (void)state;
  struct canned_hs hs;
  canned_start(&hs);
  struct member_race race = { .user_id = "@mr:test", .room_id = "!race:test" };
  hs.on_request = bump_members_once;
  hs.on_request_ctx = &race;
  struct mx_e2ee *e = open_id(race.user_id, "MRDEV");
  e->api = canned_api(&hs, race.user_id);
  char err[MX_ERRBUF_LEN] = "";
  cJSON *users = NULL;
  assert_int_equal(e2ee_members_get(e, race.room_id, &users, err), MX_OK);
  cJSON_Delete(users);
  assert_int_equal(hs.members, 2);
  const char *v[] = { race.user_id, race.room_id };
  assert_int_equal(e2ee_db_int(e->db, "SELECT members_known FROM e2ee_rooms WHERE acct=? AND room_id=?", 2, v, 0), 1);
  users = NULL; /* the next send uses the stored list */
  assert_int_equal(e2ee_members_get(e, race.room_id, &users, err), MX_OK);
  cJSON_Delete(users);
  assert_int_equal(hs.members, 2);
  mx_api_free(e->api);
  e->api = NULL;
  mx_e2ee_close(e);
  canned_stop(&hs);
}

/* Two threads of one identity on its borrowed connection: A's crypto
 * transaction is open (as a store flush or a members seed) and rolled back;
 * B meanwhile claims a pin announcement (an entry point's autocommit write)
 * and runs a transaction of its own. Sharing one connection, B's BEGIN
 * failed inside A's transaction and B's claim vanished with A's ROLLBACK
 * (announced twice later); now B waits until A has left. */
struct txn_race {
  struct mx_e2ee *e;
  pthread_mutex_t m;
  pthread_cond_t c;
  int b_started, b_done;
  mx_err a_begin, b_pins, b_begin;
  int b_claimed;
};

static void *txn_race_a(void *arg)
{
  struct txn_race *t = arg;
  char err[MX_ERRBUF_LEN] = "";
  t->a_begin = e2ee_db_enter(t->e, err);
  if (t->a_begin)
    return NULL;
  t->a_begin = e2ee_db_begin(t->e->db, err);
  const char *v[] = { "@txop:test" };
  e2ee_db_run(t->e->db, NULL, "UPDATE e2ee_operator_pins SET source='a' WHERE user_id=?", 1, v);
  pthread_mutex_lock(&t->m);
  t->b_started = 1; /* A's transaction is open: let B start */
  pthread_cond_broadcast(&t->c);
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_nsec += 300 * 1000000L; /* B is done at once when it shares the connection */
  dl.tv_sec += dl.tv_nsec / 1000000000L;
  dl.tv_nsec %= 1000000000L;
  while (!t->b_done && pthread_cond_timedwait(&t->c, &t->m, &dl) == 0)
    ;
  pthread_mutex_unlock(&t->m);
  mx_db_rollback(t->e->db);
  e2ee_db_leave(t->e);
  return NULL;
}

static void *txn_race_b(void *arg)
{
  struct txn_race *t = arg;
  char err[MX_ERRBUF_LEN] = "";
  pthread_mutex_lock(&t->m);
  while (!t->b_started)
    pthread_cond_wait(&t->c, &t->m);
  pthread_mutex_unlock(&t->m);
  cJSON *pins = NULL;
  t->b_pins = mx_e2ee_take_new_pins(t->e, &pins, err);
  const cJSON *p;
  cJSON_ArrayForEach(p, pins) /* others' first-use pins in this file too */
    t->b_claimed += strcmp(mx_json_str(p, "user_id") ? mx_json_str(p, "user_id") : "", "@txop:test") == 0;
  cJSON_Delete(pins);
  t->b_begin = e2ee_db_enter(t->e, err);
  if (t->b_begin)
    return NULL;
  t->b_begin = e2ee_db_begin(t->e->db, err);
  if (t->b_begin)
    fprintf(stderr, "b: %s\n", err);
  const char *v[] = { "@txop:test" };
  if (!t->b_begin && e2ee_db_run(t->e->db, err, "UPDATE e2ee_operator_pins SET source='b' WHERE user_id=?", 1, v) == MX_OK)
    mx_db_commit(t->e->db, err);
  e2ee_db_leave(t->e);
  pthread_mutex_lock(&t->m);
  t->b_done = 1;
  pthread_cond_broadcast(&t->c);
  pthread_mutex_unlock(&t->m);
  return NULL;
}

static void threads_of_one_identity_do_not_share_a_transaction(void **state)
{
  (void)state;
  struct txn_race t = { .e = open_id("@tx:test", "TXDEV") };
  const char *v[] = { "@txop:test" };
  assert_int_equal(e2ee_db_run(t.e->db, NULL, "INSERT INTO e2ee_operator_pins(user_id, master_key, source, pinned_ms, "
                                              "announced) VALUES(?, 'MK', 'first use', 1, 0)", 1, v),
                   MX_OK);
  e2ee_db_leave(t.e); /* open_id's borrow: the threads below borrow their own */
  pthread_mutex_init(&t.m, NULL);
  pthread_cond_init(&t.c, NULL);
  pthread_t a, b;
  assert_int_equal(pthread_create(&b, NULL, txn_race_b, &t), 0);
  assert_int_equal(pthread_create(&a, NULL, txn_race_a, &t), 0);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  assert_int_equal(t.a_begin, MX_OK);
  assert_int_equal(t.b_pins, MX_OK);
  assert_int_equal(t.b_claimed, 1);
  assert_int_equal(t.b_begin, MX_OK);
  sqlite3 *db = NULL;
  assert_int_equal(mx_db_open(dbp, &db, NULL), MX_OK);
  /* B's claim and B's transaction survived A's rollback */
  assert_int_equal(e2ee_db_int(db, "SELECT announced FROM e2ee_operator_pins WHERE user_id=?", 1, v, -1), 1);
  char *src = e2ee_db_text(db, "SELECT source FROM e2ee_operator_pins WHERE user_id=?", 1, v);
  assert_string_equal(src, "b");
  free(src);
  mx_db_close(db);
  pthread_cond_destroy(&t.c);
  pthread_mutex_destroy(&t.m);
  mx_e2ee_close(t.e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(spec_json_signing_vectors),
    cmocka_unit_test(verify_wrapper_leaves_buffers_unchanged),
    cmocka_unit_test(otk_commit_before_upload_and_same_keys_retried),
    cmocka_unit_test(late_key_replay_and_restart),
    cmocka_unit_test(wrong_room_and_wrong_sender_rejected),
    cmocka_unit_test(olm_sessions_are_capped_per_device),
    cmocka_unit_test(cross_signed_operator_device_is_trusted),
    cmocka_unit_test(unsigned_or_badly_chained_device_is_refused),
    cmocka_unit_test(tampered_device_keys_and_changed_ed25519_are_ignored),
    cmocka_unit_test(malformed_sync_input_is_skipped),
    cmocka_unit_test(older_generation_never_overwrites_newer),
    cmocka_unit_test(cleartext_relation_is_kept),
    cmocka_unit_test(attachment_round_trip_and_tamper),
    cmocka_unit_test(seal_round_trip_and_pickle_key_file),
    cmocka_unit_test(partly_failed_key_query_keeps_the_user_outdated),
    cmocka_unit_test(own_account_devices_are_queried),
    cmocka_unit_test(fallback_key_rotates_once),
    cmocka_unit_test(start_asks_no_empty_key_changes),
    cmocka_unit_test(members_changed_during_the_seed_are_fetched_again),
    cmocka_unit_test(threads_of_one_identity_do_not_share_a_transaction),
  };
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
