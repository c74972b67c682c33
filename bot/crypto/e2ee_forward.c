/*
 * bot/crypto/e2ee_forward.c - m.forwarded_room_key both ways. Accepted only
 * over Olm and only from (a) one of our own cross-signed devices, whose
 * forward names an original device we know, or (b) the session's original
 * device re-sharing its own session (Olm sender key == forwarded sender_key,
 * Olm ed25519 == sender_claimed_ed25519_key): the weaker rule of e2ee.md
 * item 9, needed because Element answers other users' requests that way.
 * Answers: the recorded requests of our own verified devices (e2ee_keyreq.c)
 * get the session exported at its first known index, encrypted over Olm.
 * Layer: bot/crypto. Receive side: caller's transaction, e->lock held.
 * Answer side: maintain, e->lock NOT held, e->db. cJSON borrowed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <olm/inbound_group_session.h>

#include "e2ee_int.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

static OlmInboundGroupSession *import_key(const char *exported)
{
  OlmInboundGroupSession *s = e2ee_new_inbound();
  char *copy = mx_strdup(exported); /* libolm overwrites its input */
  if (!s || !copy || olm_import_inbound_group_session(s, (const uint8_t *)copy, strlen(copy)) == olm_error()) {
    free(copy);
    e2ee_free_inbound(s);
    return NULL;
  }
  free(copy);
  return s;
}

/* The user owning the session's original device, or NULL when the
 * forward is not acceptable (why in err). */
static char *original_owner(struct mx_e2ee *e, sqlite3 *db, const char *sender, const char *olm_key,
                            const char *olm_ed, const char *skey, const char *claimed_ed, char *err)
{
  if (strcmp(olm_key, skey) == 0) {
    if (!olm_ed || strcmp(olm_ed, claimed_ed) != 0) {
      mx_fail(MX_ERR_CRYPTO, err, "claims ed25519 '%s' but the olm sender signs as '%s'", claimed_ed,
              olm_ed ? olm_ed : "");
      return NULL;
    }
    return mx_strdup(sender); /* the original device re-sharing its own session */
  }
  const char *v[] = { e->user_id, sender, olm_key };
  char *dev = strcmp(sender, e->user_id) == 0
                ? e2ee_db_text(db, "SELECT device_id FROM e2ee_devices WHERE acct=? AND user_id=? AND curve25519=? AND "
                                   "deleted=0", 3, v)
                : NULL;
  char *owner = NULL;
  if (!dev || strcmp(dev, e->device_id) == 0 || !e2ee_device_verified(e, db, sender, dev)) {
    mx_fail(MX_ERR_DENIED, err, "forwarder is neither one of our cross-signed devices nor the session's original "
                              "device");
  } else {
    const char *o[] = { e->user_id, skey, claimed_ed };
    owner = e2ee_db_text(db, "SELECT user_id FROM e2ee_devices WHERE acct=? AND curve25519=? AND ed25519=? AND "
                             "deleted=0", 3, o);
    if (!owner)
      mx_fail(MX_ERR_DENIED, err, "original device %s is unknown, so the session cannot be attributed", skey);
  }
  free(dev);
  return owner;
}

mx_err e2ee_forwarded_key_received(struct mx_e2ee *e, sqlite3 *db, const char *sender, const char *olm_key,
                                   const char *olm_ed25519, const cJSON *content, char *err)
{
  const char *alg = mx_json_str(content, "algorithm"), *room = mx_json_str(content, "room_id");
  const char *sid = mx_json_str(content, "session_id"), *key = mx_json_str(content, "session_key");
  const char *skey = mx_json_str(content, "sender_key"), *ced = mx_json_str(content, "sender_claimed_ed25519_key");
  if (!alg || strcmp(alg, "m.megolm.v1.aes-sha2") != 0 || !room || !sid || !key || !skey || !ced)
    return mx_fail(MX_ERR_INVALID, err, "m.forwarded_room_key from %s: expected m.megolm.v1.aes-sha2 with room_id, "
                                        "session_id, session_key, sender_key and sender_claimed_ed25519_key", sender);
  /* Only what we asked for, from whom we asked (the session's sender and
   * our own devices): an unsolicited forward could attribute a session to
   * the wrong user. A request stays open until its cancellation is sent. */
  const char *k[] = { e->user_id, room, sid };
  char *asked = e2ee_db_text(db, "SELECT sender_user FROM e2ee_key_requests WHERE acct=? AND room_id=? AND "
                                 "session_id=? AND state IN (1, 2)", 3, k);
  int from_target = asked && (strcmp(sender, asked) == 0 || strcmp(sender, e->user_id) == 0);
  const char *refusal = asked ? "not one of the users the request went to" : "no open request for it";
  free(asked);
  if (!from_target)
    return mx_fail(MX_ERR_DENIED, err, "m.forwarded_room_key from %s for session %s refused: %s", sender, sid, refusal);
  char why[MX_ERRBUF_LEN] = "";
  char *owner = original_owner(e, db, sender, olm_key, olm_ed25519, skey, ced, why);
  if (!owner)
    return mx_fail(MX_ERR_DENIED, err, "m.forwarded_room_key from %s for session %s refused: %s", sender, sid, why);
  OlmInboundGroupSession *s = import_key(key);
  mx_err rc = MX_OK;
  if (!s || !e2ee_inbound_id_is(s, sid))
    rc = mx_fail(MX_ERR_CRYPTO, err, "m.forwarded_room_key from %s: session key does not match session_id '%s'",
                 sender, sid);
  if (!rc)
    rc = e2ee_inbound_store(e, db, room, sid, owner, skey, ced, s, err);
  e2ee_free_inbound(s);
  free(owner);
  return rc;
}

/* ---- answering our own devices' requests (maintain side) ---- */

struct share {
  char *user, *dev, *rid, *room, *sid, *curve, *ed;
};

static cJSON *forward_content(struct mx_e2ee *e, const char *room, const char *sid, char *err)
{
  /* the copy reaching furthest back, its three columns from the same row */
  const char *k[] = { e->user_id, room, sid };
#define E2EE_BEST_COPY " FROM e2ee_inbound WHERE acct=? AND room_id=? AND session_id=? ORDER BY first_index, sender_key LIMIT 1"
  char *pickle = e2ee_db_text(e->db, "SELECT pickle" E2EE_BEST_COPY, 3, k);
  char *skey = e2ee_db_text(e->db, "SELECT sender_key" E2EE_BEST_COPY, 3, k);
  char *ed = e2ee_db_text(e->db, "SELECT ed25519" E2EE_BEST_COPY, 3, k);
#undef E2EE_BEST_COPY
  cJSON *c = NULL;
  pthread_mutex_lock(&e->lock);
  OlmInboundGroupSession *s = pickle ? e2ee_unpickle_inbound(e, pickle) : NULL;
  pthread_mutex_unlock(&e->lock);
  uint32_t first = s ? olm_inbound_group_session_first_known_index(s) : 0;
  size_t n = s ? olm_export_inbound_group_session_length(s) : 0;
  char *exp = s ? malloc(n + 1) : NULL;
  if (!pickle || !skey || !ed) {
    mx_fail(MX_ERR_NOT_FOUND, err, "key share: no session %s in %s", sid, room);
  } else if (!exp || olm_export_inbound_group_session(s, (uint8_t *)exp, n, first) == olm_error()) {
    mx_fail(MX_ERR_CRYPTO, err, "key share: cannot export session %s", sid);
  } else {
    exp[n] = '\0';
    c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
    cJSON_AddStringToObject(c, "room_id", room);
    cJSON_AddStringToObject(c, "sender_key", skey);
    cJSON_AddStringToObject(c, "session_id", sid);
    cJSON_AddStringToObject(c, "session_key", exp);
    cJSON_AddStringToObject(c, "sender_claimed_ed25519_key", ed);
    cJSON_AddArrayToObject(c, "forwarding_curve25519_key_chain");
    memset(exp, 0, n);
  }
  free(exp);
  e2ee_free_inbound(s);
  free(pickle);
  free(skey);
  free(ed);
  return c;
}

static mx_err answer_one(struct mx_e2ee *e, const struct share *sh, char *err)
{
  cJSON *c = forward_content(e, sh->room, sh->sid, err);
  if (!c)
    return MX_ERR_NOT_FOUND;
  mx_err rc = MX_OK;
  pthread_mutex_lock(&e->lock);
  int have = e2ee_olm_find_best(e, sh->curve) != NULL;
  pthread_mutex_unlock(&e->lock);
  const char *u1[] = { sh->user }, *d1[] = { sh->dev };
  if (!have)
    rc = e2ee_olm_claim(e, u1, d1, 1, err);
  cJSON *ct = NULL;
  pthread_mutex_lock(&e->lock);
  struct e2ee_olm *o = rc ? NULL : e2ee_olm_find_best(e, sh->curve);
  if (!rc && !o)
    rc = mx_fail(MX_ERR_NOT_FOUND, err, "key share: no olm session with %s/%s", sh->user, sh->dev);
  if (!rc)
    rc = e2ee_olm_encrypt(e, o, sh->user, sh->ed, "m.forwarded_room_key", c, &ct, err);
  if (!rc)
    rc = e2ee_flush_unlocked_write(e, err); /* the ratchet step before the send */
  pthread_mutex_unlock(&e->lock);
  mx_json_delete_wiped(c);
  if (!rc) {
    cJSON *msgs = cJSON_CreateObject();
    cJSON_AddItemToObject(cJSON_AddObjectToObject(msgs, sh->user), sh->dev, ct);
    ct = NULL;
    rc = e2ee_send_to_device(e, "m.room.encrypted", msgs, err);
    cJSON_Delete(msgs);
  }
  cJSON_Delete(ct);
  if (!rc)
    mx_info(e->label, "forwarded room key %s to our device %s", sh->sid, sh->dev);
  return rc;
}

mx_err e2ee_forward_answer(struct mx_e2ee *e, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db, "SELECT s.user_id, s.device_id, s.request_id, s.room_id, s.session_id, "
                                   "d.curve25519, d.ed25519 FROM e2ee_key_shares s JOIN e2ee_devices d ON "
                                   "d.acct=s.acct AND d.user_id=s.user_id AND d.device_id=s.device_id WHERE s.acct=? "
                                   "LIMIT 20", &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    char *f[7];
    for (int i = 0; i < 7; i++)
      f[i] = mx_strdup((const char *)sqlite3_column_text(st, i));
    struct share sh = { f[0], f[1], f[2], f[3], f[4], f[5], f[6] };
    char aerr[MX_ERRBUF_LEN] = "";
    /* one attempt per request: a session we lack or a device without keys
     * will not improve by retrying every sync */
    if (answer_one(e, &sh, aerr) != MX_OK)
      mx_warn(e->label, "key request %s from %s/%s not answered: %s", sh.rid, sh.user, sh.dev, aerr);
    const char *v[] = { e->user_id, sh.user, sh.dev, sh.rid };
    e2ee_db_run(e->db, NULL, "DELETE FROM e2ee_key_shares WHERE acct=? AND user_id=? AND device_id=? AND request_id=?",
                4, v);
    for (int i = 0; i < 7; i++)
      free(f[i]);
  }
  sqlite3_finalize(st);
  return MX_OK;
}
