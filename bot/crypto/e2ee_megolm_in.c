/*
 * bot/crypto/e2ee_megolm_in.c - inbound Megolm: room keys accepted only when
 * they arrived over Olm (keyed by room and session, with the Olm sender's
 * curve25519, claimed ed25519 and user), the store rule shared with
 * forwarded keys (e2ee_inbound_store), decryption with replay protection
 * by message index, and the queue of events whose key has not arrived yet
 * (each queued session also records a key request, e2ee_keyreq.c).
 * Everything goes through the caller's connection inside its sync
 * transaction, so a room key, a queued event and next_batch commit together.
 * Layer: bot/crypto. Ownership: *plain and *events are owned by the caller.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <olm/inbound_group_session.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

static OlmInboundGroupSession *from_key(const char *session_key)
{
  OlmInboundGroupSession *s = e2ee_new_inbound();
  char *copy = mx_strdup(session_key);
  if (!s || !copy || olm_init_inbound_group_session(s, (const uint8_t *)copy, strlen(copy)) == olm_error()) {
    free(copy);
    e2ee_free_inbound(s);
    return NULL;
  }
  free(copy);
  return s;
}

int e2ee_inbound_id_is(OlmInboundGroupSession *s, const char *want)
{
  char id[128];
  size_t n = olm_inbound_group_session_id_length(s);
  if (n >= sizeof(id) || olm_inbound_group_session_id(s, (uint8_t *)id, n) == olm_error())
    return 0;
  id[n] = '\0';
  return strcmp(id, want) == 0;
}

mx_err e2ee_inbound_store(struct mx_e2ee *e, sqlite3 *db, const char *room, const char *sid, const char *sender,
                          const char *sender_key, const char *ed25519, OlmInboundGroupSession *s, char *err)
{
  uint32_t first = olm_inbound_group_session_first_known_index(s);
  const char *k[] = { e->user_id, room, sid };
  const char *ks[] = { e->user_id, room, sid, sender_key };
  int64_t have = e2ee_db_int(db, "SELECT first_index FROM e2ee_inbound WHERE acct=? AND room_id=? AND session_id=? "
                                 "AND sender_key=?", 4, ks, -1);
  mx_err rc = MX_OK;
  /* One copy per sender key: another device's copy never displaces this
   * one; the same device's copy is replaced only when it reaches further
   * back. Decryption picks the copy of the event's sender. */
  if (e2ee_db_int(db, "SELECT count(*) FROM e2ee_inbound WHERE acct=? AND room_id=? AND session_id=? AND "
                      "sender_key<>?", 4, ks, 0) > 0)
    mx_warn(e->label, "session %s in %s is also claimed by another device; %s's copy is kept apart", sid, room, sender);
  if (have < 0 || (int64_t)first < have) {
    char *pickle = e2ee_pickle_inbound(e, s);
    char fi[16];
    snprintf(fi, sizeof(fi), "%" PRIu32, first);
    const char *v[] = { e->user_id, room, sid, sender, sender_key, ed25519, fi, pickle };
    rc = pickle ? e2ee_db_run(db, err, "INSERT OR REPLACE INTO e2ee_inbound(acct, room_id, session_id, sender_user, "
                                       "sender_key, ed25519, first_index, pickle) VALUES(?,?,?,?,?,?,?,?)", 8, v)
                : mx_fail(MX_ERR_CRYPTO, err, "room key: cannot pickle session");
    free(pickle);
  } else {
    mx_info(e->label, "room key for session %s starts at %" PRIu32 ", ours at %" PRId64 "; kept ours", sid, first,
            have);
  }
  if (!rc)
    rc = e2ee_db_run(db, err, "UPDATE e2ee_pending SET ready=1 WHERE acct=? AND room_id=? AND session_id=?", 3, k);
  if (!rc)
    e->ready_maybe = 1;
  if (!rc)
    rc = e2ee_keyreq_arrived(e, db, room, sid, err);
  if (!rc)
    mx_info(e->label, "room key for %s session %s from %s (first index %" PRIu32 ")", room, sid, sender, first);
  return rc;
}

mx_err e2ee_room_key_received(struct mx_e2ee *e, sqlite3 *db, const char *sender, const char *sender_key,
                              const char *ed25519, const cJSON *content, char *err)
{
  const char *alg = mx_json_str(content, "algorithm"), *room = mx_json_str(content, "room_id");
  const char *sid = mx_json_str(content, "session_id"), *skey = mx_json_str(content, "session_key");
  if (!alg || strcmp(alg, "m.megolm.v1.aes-sha2") != 0 || !room || !sid || !skey)
    return mx_fail(MX_ERR_INVALID, err, "m.room_key from %s: expected m.megolm.v1.aes-sha2 with room_id, session_id "
                                        "and session_key", sender);
  OlmInboundGroupSession *s = from_key(skey);
  if (!s || !e2ee_inbound_id_is(s, sid)) {
    e2ee_free_inbound(s);
    return mx_fail(MX_ERR_CRYPTO, err, "m.room_key from %s: session key does not match session_id '%s'", sender, sid);
  }
  mx_err rc = e2ee_inbound_store(e, db, room, sid, sender, sender_key, ed25519, s, err);
  e2ee_free_inbound(s);
  return rc;
}

static mx_err queue_event(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const char *sid, const cJSON *ev,
                          char *err)
{
  const char *eid = mx_json_str(ev, "event_id");
  if (!eid)
    return mx_fail(MX_ERR_INVALID, err, "encrypted event: expected an event_id");
  cJSON *copy = cJSON_Duplicate(ev, 1);
  if (!copy)
    return MX_ERR_NOMEM;
  cJSON_DeleteItemFromObjectCaseSensitive(copy, "room_id");
  cJSON_AddStringToObject(copy, "room_id", room_id);
  char *text = cJSON_PrintUnformatted(copy);
  cJSON_Delete(copy);
  char ts[24];
  snprintf(ts, sizeof(ts), "%" PRId64, mx_now_ms());
  const char *v[] = { e->user_id, eid, room_id, sid, text, ts };
  /* queued again after a key that was not the sender's: wait anew */
  mx_err rc = text ? e2ee_db_run(db, err, "INSERT INTO e2ee_pending(acct, event_id, room_id, session_id, event, ts) "
                                          "VALUES(?,?,?,?,?,?) ON CONFLICT(acct, event_id) DO UPDATE SET ready=0", 6, v)
                   : MX_ERR_NOMEM;
  cJSON_free(text);
  if (!rc) /* the request itself goes out from mx_e2ee_maintain */
    rc = e2ee_keyreq_want(e, db, room_id, sid, mx_json_str(ev, "sender"),
                          mx_json_str(mx_json_obj(ev, "content"), "sender_key"), err);
  if (!rc)
    mx_info(e->label, "event %s waits for room key %s", eid, sid);
  return rc;
}

/* Replay guard: (session, index) may only ever belong to one event id. */
static mx_err check_replay(struct mx_e2ee *e, sqlite3 *db, const char *room, const char *sid, uint32_t idx,
                           const char *eid, char *err)
{
  char is[16], ts[24];
  snprintf(is, sizeof(is), "%" PRIu32, idx);
  snprintf(ts, sizeof(ts), "%" PRId64, mx_now_ms());
  const char *k[] = { e->user_id, room, sid, is };
  char *seen = e2ee_db_text(db, "SELECT event_id FROM e2ee_megolm_seen WHERE acct=? AND room_id=? AND session_id=? "
                                "AND msg_index=?", 4, k);
  mx_err rc = MX_OK;
  if (seen && strcmp(seen, eid) != 0) {
    rc = mx_fail(MX_ERR_CRYPTO, err, "event %s replays megolm index %s of session %s (first seen in %s)", eid, is, sid,
                 seen);
  } else if (!seen) {
    const char *v[] = { e->user_id, room, sid, is, eid, ts };
    rc = e2ee_db_run(db, err, "INSERT INTO e2ee_megolm_seen(acct, room_id, session_id, msg_index, event_id, ts) "
                              "VALUES(?,?,?,?,?,?)", 6, v);
  }
  free(seen);
  return rc;
}

struct inbound {
  char *sender_user, *sender_key, *ed25519, *pickle;
};

/* The copy of (room, sid) shared by the event's sender (the one reaching
 * furthest back). Copies from other users are never used for it. */
static int load_inbound(struct mx_e2ee *e, sqlite3 *db, const char *room, const char *sid, const char *from,
                        struct inbound *in)
{
  sqlite3_stmt *st = NULL;
  if (mx_db_prepare(db, "SELECT sender_user, sender_key, ed25519, pickle FROM e2ee_inbound WHERE acct=? AND "
                        "room_id=? AND session_id=? AND sender_user=? ORDER BY first_index LIMIT 1", &st, NULL))
    return 0;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, room, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, sid, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, from, -1, SQLITE_STATIC);
  int found = sqlite3_step(st) == SQLITE_ROW;
  if (found) {
    in->sender_user = mx_strdup((const char *)sqlite3_column_text(st, 0));
    in->sender_key = mx_strdup((const char *)sqlite3_column_text(st, 1));
    in->ed25519 = mx_strdup((const char *)sqlite3_column_text(st, 2));
    in->pickle = mx_strdup((const char *)sqlite3_column_text(st, 3));
  }
  sqlite3_finalize(st);
  return found;
}

static void free_inbound(struct inbound *in)
{
  free(in->sender_user);
  free(in->sender_key);
  free(in->ed25519);
  free(in->pickle);
}

static char *group_decrypt(struct mx_e2ee *e, const char *pickle, const char *ct, uint32_t *idx, char *err)
{
  OlmInboundGroupSession *s = e2ee_unpickle_inbound(e, pickle);
  char *c1 = mx_strdup(ct), *c2 = mx_strdup(ct), *plain = NULL;
  if (!s || !c1 || !c2) {
    mx_fail(MX_ERR_CRYPTO, err, "megolm: stored session does not unpickle");
    goto done;
  }
  size_t max = olm_group_decrypt_max_plaintext_length(s, (uint8_t *)c1, strlen(c1));
  if (max == olm_error()) {
    e2ee_olm_fail(err, "megolm decrypt", olm_inbound_group_session_last_error(s));
    goto done;
  }
  plain = malloc(max + 1);
  size_t r = plain ? olm_group_decrypt(s, (uint8_t *)c2, strlen(c2), (uint8_t *)plain, max, idx) : olm_error();
  if (r == olm_error()) {
    e2ee_olm_fail(err, "megolm decrypt", olm_inbound_group_session_last_error(s));
    free(plain);
    plain = NULL;
  } else {
    plain[r] = '\0';
  }
done:
  e2ee_free_inbound(s);
  free(c1);
  free(c2);
  return plain;
}

static void fill_sender(struct mx_e2ee *e, sqlite3 *db, const struct inbound *in, const cJSON *c,
                        struct mx_e2ee_sender *s)
{
  memset(s, 0, sizeof(*s));
  snprintf(s->user_id, sizeof(s->user_id), "%s", in->sender_user);
  snprintf(s->sender_key, sizeof(s->sender_key), "%s", in->sender_key);
  snprintf(s->ed25519, sizeof(s->ed25519), "%s", in->ed25519);
  const char *v[] = { e->user_id, in->sender_user, in->sender_key, in->ed25519 };
  /* the device is the one whose keys carried the session, not the claim */
  char *dev = e2ee_db_text(db, "SELECT device_id FROM e2ee_devices WHERE acct=? AND user_id=? AND curve25519=? "
                               "AND ed25519=? AND deleted=0", 4, v);
  const char *claimed = mx_json_str(c, "device_id");
  snprintf(s->device_id, sizeof(s->device_id), "%s", dev ? dev : claimed ? claimed : "");
  s->verified = dev && e2ee_device_verified(e, db, in->sender_user, dev);
  free(dev);
}

/* Relations (reactions, replies, edits) travel in the cleartext content of
 * m.room.encrypted so servers can aggregate them; clients put them back
 * into the decrypted content when it has none of its own. */
static void keep_relation(cJSON *plain, const cJSON *wire_content)
{
  const cJSON *rel = mx_json_obj(wire_content, "m.relates_to");
  cJSON *content = cJSON_GetObjectItemCaseSensitive(plain, "content");
  if (rel && cJSON_IsObject(content) && !cJSON_GetObjectItemCaseSensitive(content, "m.relates_to"))
    cJSON_AddItemToObject(content, "m.relates_to", cJSON_Duplicate(rel, 1));
}

static mx_err decrypt_locked(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const cJSON *ev, cJSON **plain,
                             struct mx_e2ee_sender *sender, char *err)
{
  const cJSON *c = mx_json_obj(ev, "content");
  const char *alg = mx_json_str(c, "algorithm"), *sid = mx_json_str(c, "session_id");
  const char *ct = mx_json_str(c, "ciphertext"), *eid = mx_json_str(ev, "event_id");
  const char *from = mx_json_str(ev, "sender");
  if (!alg || strcmp(alg, "m.megolm.v1.aes-sha2") != 0 || !sid || !ct || !eid || !from)
    return mx_fail(MX_ERR_INVALID, err, "m.room.encrypted %s: expected m.megolm.v1.aes-sha2 with session_id and "
                                        "ciphertext", eid ? eid : "(no event_id)");
  struct inbound in = { 0 };
  const char *dev = mx_json_str(c, "device_id");
  if (!load_inbound(e, db, room_id, sid, from, &in) && strcmp(from, e->user_id) == 0 && dev &&
      strcmp(dev, e->device_id) == 0) /* our own, from a session we never kept: nothing will arrive */
    return mx_fail(MX_ERR_CRYPTO, err, "own event %s: session %s was not kept", eid, sid);
  /* no copy from the sender (maybe only one another member shared): wait
   * for theirs, never decrypt under someone else's attribution */
  if (!in.pickle)
    return queue_event(e, db, room_id, sid, ev, err) ? MX_ERR_DB
                                                      : mx_fail(MX_ERR_PENDING, err, "room key %s not received yet", sid);
  mx_err rc = MX_OK;
  uint32_t idx = 0;
  char *text = NULL;
  cJSON *p = NULL;
  if (!(text = group_decrypt(e, in.pickle, ct, &idx, err)))
    rc = MX_ERR_CRYPTO;
  if (!rc)
    rc = check_replay(e, db, room_id, sid, idx, eid, err);
  if (!rc && !(p = cJSON_Parse(text)))
    rc = mx_fail(MX_ERR_INVALID, err, "event %s: decrypted payload is not json", eid);
  const char *proom = mx_json_str(p, "room_id");
  if (!rc && (!proom || strcmp(proom, room_id) != 0))
    rc = mx_fail(MX_ERR_CRYPTO, err, "event %s: decrypted room_id '%s' is not the event's room", eid, proom ? proom : "");
  if (!rc)
    keep_relation(p, c);
  if (!rc) {
    fill_sender(e, db, &in, c, sender);
    sender->message_index = idx;
    const char *v[] = { e->user_id, eid };
    e2ee_db_run(db, NULL, "DELETE FROM e2ee_pending WHERE acct=? AND event_id=?", 2, v);
    *plain = p;
    p = NULL;
  }
  cJSON_Delete(p);
  if (text) {
    memset(text, 0, strlen(text));
    free(text);
  }
  free_inbound(&in);
  return rc;
}

mx_err mx_e2ee_decrypt(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const cJSON *event, cJSON **plain,
                       struct mx_e2ee_sender *sender, char *err)
{
  *plain = NULL;
  pthread_mutex_lock(&e->lock);
  mx_err rc = decrypt_locked(e, db, room_id, event, plain, sender, err);
  pthread_mutex_unlock(&e->lock);
  if (rc && rc != MX_ERR_PENDING)
    mx_warn(e->label, "cannot decrypt event in %s: %s", room_id, err ? err : mx_err_str(rc));
  return rc;
}

mx_err mx_e2ee_take_ready(struct mx_e2ee *e, sqlite3 *db, cJSON **events, char *err)
{
  /* Rows turn ready only when a room key arrives, in the same transaction
   * as this call: most syncs bring none, and need no query. */
  if (!atomic_exchange(&e->ready_maybe, 0)) {
    *events = cJSON_CreateArray();
    return *events ? MX_OK : MX_ERR_NOMEM;
  }
  cJSON *arr = cJSON_CreateArray();
  sqlite3_stmt *st = NULL;
  mx_err rc = arr ? mx_db_prepare(db, "SELECT event FROM e2ee_pending WHERE acct=? AND ready=1 ORDER BY ts", &st, err)
                  : MX_ERR_NOMEM;
  if (!rc) {
    sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
      cJSON *ev = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
      if (ev)
        cJSON_AddItemToArray(arr, ev);
    }
    sqlite3_finalize(st);
    const char *v[] = { e->user_id };
    /* each queued event is handed out exactly once */
    rc = e2ee_db_run(db, err, "DELETE FROM e2ee_pending WHERE acct=? AND ready=1", 1, v);
  }
  if (rc) {
    cJSON_Delete(arr);
    return rc;
  }
  *events = arr;
  return MX_OK;
}
