/*
 * bot/crypto/e2ee_keyreq.c - m.room_key_request both ways (E2E "Key
 * requests"). Outgoing: the sync side records one request per missing
 * (room, session) in e2ee_key_requests; mx_e2ee_maintain sends it
 * unencrypted to every device of the event's sender and of our own user,
 * retries at most every E2EE_KEYREQ_RETRY_MS while events still wait, and
 * cancels it once the key is stored. Incoming: only requests from our own
 * cross-signed devices are recorded and answered with m.forwarded_room_key
 * over Olm; everything else is logged and ignored.
 * Layer: bot/crypto. Sync-side calls use the caller's transaction; the
 * maintain side runs with e->lock NOT held and uses e->db. cJSON borrowed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

mx_err e2ee_keyreq_want(struct mx_e2ee *e, sqlite3 *db, const char *room, const char *sid, const char *sender,
                        const char *sender_key, char *err)
{
  char rid[33];
  mx_err rc = mx_random_alnum(rid, 32);
  if (rc)
    return mx_fail(rc, err, "key request: no randomness for a request id");
  const char *v[] = { e->user_id, room, sid, sender ? sender : "", sender_key ? sender_key : "", rid };
  /* one row per session: later events of the same session add nothing */
  return e2ee_db_run(db, err, "INSERT OR IGNORE INTO e2ee_key_requests(acct, room_id, session_id, sender_user, "
                              "sender_key, request_id) VALUES(?,?,?,?,?,?)", 6, v);
}

mx_err e2ee_keyreq_arrived(struct mx_e2ee *e, sqlite3 *db, const char *room, const char *sid, char *err)
{
  const char *k[] = { e->user_id, room, sid };
  /* never sent: nothing to cancel; sent: maintain cancels it */
  mx_err rc = e2ee_db_run(db, err, "DELETE FROM e2ee_key_requests WHERE acct=? AND room_id=? AND session_id=? "
                                   "AND state=0", 3, k);
  if (!rc)
    rc = e2ee_db_run(db, err, "UPDATE e2ee_key_requests SET state=2 WHERE acct=? AND room_id=? AND session_id=? "
                              "AND state=1", 3, k);
  return rc;
}

/* The sender says it will not share the session: stop asking for it (state
 * 3 keeps the row, so later events of the session do not ask again). */
mx_err e2ee_keyreq_withheld(struct mx_e2ee *e, sqlite3 *db, const char *sender, const cJSON *c, char *err)
{
  const char *room = mx_json_str(c, "room_id"), *sid = mx_json_str(c, "session_id"), *code = mx_json_str(c, "code");
  mx_info(e->label, "%s withholds room key %s: %s", sender, sid ? sid : "-", code ? code : "?");
  if (!room || !sid)
    return MX_OK;
  const char *k[] = { e->user_id, room, sid, sender };
  mx_err rc = e2ee_db_run(db, err, "UPDATE e2ee_key_requests SET state=3 WHERE acct=? AND room_id=? AND session_id=? "
                                   "AND sender_user=? AND state IN (0, 1)", 4, k);
  if (!rc && sqlite3_changes(db) > 0)
    mx_info(e->label, "no more requests for room key %s: its sender withholds it", sid);
  return rc;
}

/* ---- incoming requests (sync side) ---- */

mx_err e2ee_keyreq_incoming(struct mx_e2ee *e, sqlite3 *db, const cJSON *ev, char *err)
{
  const cJSON *c = mx_json_obj(ev, "content"), *body = mx_json_obj(c, "body");
  const char *sender = mx_json_str(ev, "sender"), *action = mx_json_str(c, "action");
  const char *dev = mx_json_str(c, "requesting_device_id"), *rid = mx_json_str(c, "request_id");
  const char *room = mx_json_str(body, "room_id"), *sid = mx_json_str(body, "session_id");
  if (!sender || !action || !dev || !rid) {
    mx_warn(e->label, "m.room_key_request: expected sender, action, requesting_device_id and request_id; ignored");
    return MX_OK;
  }
  if (strcmp(sender, e->user_id) == 0 && strcmp(dev, e->device_id) == 0)
    return MX_OK; /* our own request echoed back by the "*" fan-out */
  const char *k[] = { e->user_id, sender, dev, rid };
  if (strcmp(action, "request_cancellation") == 0)
    return e2ee_db_run(db, err, "DELETE FROM e2ee_key_shares WHERE acct=? AND user_id=? AND device_id=? AND "
                                "request_id=?", 4, k);
  if (strcmp(action, "request") != 0 || !room || !sid) {
    mx_warn(e->label, "m.room_key_request from %s/%s: expected action request with body.room_id and "
                        "body.session_id; ignored", sender, dev);
    return MX_OK;
  }
  /* spec "Key requests": share only with our own verified devices; other
   * users get keys from the original sender, never from us */
  if (strcmp(sender, e->user_id) != 0 || !e2ee_device_verified(e, db, sender, dev)) {
    mx_info(e->label, "m.room_key_request from %s/%s for session %s ignored: not one of our verified devices",
            sender, dev, sid);
    return MX_OK;
  }
  const char *v[] = { e->user_id, sender, dev, rid, room, sid };
  return e2ee_db_run(db, err, "INSERT OR IGNORE INTO e2ee_key_shares(acct, user_id, device_id, request_id, room_id, "
                              "session_id) VALUES(?,?,?,?,?,?)", 6, v);
}

/* ---- outgoing requests (maintain side) ---- */

static mx_err send_request(struct mx_e2ee *e, const char *action, const char *room, const char *sid,
                           const char *sender, const char *sender_key, const char *rid, char *err)
{
  cJSON *c = cJSON_CreateObject();
  cJSON_AddStringToObject(c, "action", action);
  cJSON_AddStringToObject(c, "request_id", rid);
  cJSON_AddStringToObject(c, "requesting_device_id", e->device_id);
  if (strcmp(action, "request") == 0) {
    cJSON *b = cJSON_AddObjectToObject(c, "body");
    cJSON_AddStringToObject(b, "algorithm", "m.megolm.v1.aes-sha2");
    cJSON_AddStringToObject(b, "room_id", room);
    cJSON_AddStringToObject(b, "session_id", sid);
    if (*sender_key) /* deprecated: newer clients leave it out of events */
      cJSON_AddStringToObject(b, "sender_key", sender_key);
  }
  /* "*": every device of the sender, and our own other devices (the server
   * expands it); key requests travel unencrypted per the spec */
  cJSON *msgs = cJSON_CreateObject();
  cJSON_AddItemToObject(cJSON_AddObjectToObject(msgs, e->user_id), "*", cJSON_Duplicate(c, 1));
  if (*sender && strcmp(sender, e->user_id) != 0)
    cJSON_AddItemToObject(cJSON_AddObjectToObject(msgs, sender), "*", cJSON_Duplicate(c, 1));
  mx_err rc = e2ee_send_to_device(e, "m.room_key_request", msgs, err);
  cJSON_Delete(msgs);
  cJSON_Delete(c);
  return rc;
}

/* Requests never sent, or sent over E2EE_KEYREQ_RETRY_MS ago while events
 * still wait; a request whose events all expired is cancelled instead. */
static mx_err send_due(struct mx_e2ee *e, char *err)
{
  char now[24], due[24];
  snprintf(now, sizeof(now), "%" PRId64, mx_now_ms());
  snprintf(due, sizeof(due), "%" PRId64, mx_now_ms() - E2EE_KEYREQ_RETRY_MS);
  const char *w[] = { e->user_id };
  e2ee_db_run(e->db, NULL, "UPDATE e2ee_key_requests SET state=2 WHERE acct=? AND state=1 AND NOT EXISTS (SELECT 1 "
                           "FROM e2ee_pending p WHERE p.acct=e2ee_key_requests.acct AND "
                           "p.room_id=e2ee_key_requests.room_id AND p.session_id=e2ee_key_requests.session_id)",
              1, w);
  /* withheld sessions are forgotten once no event waits for them */
  e2ee_db_run(e->db, NULL, "DELETE FROM e2ee_key_requests WHERE acct=? AND state=3 AND NOT EXISTS (SELECT 1 "
                           "FROM e2ee_pending p WHERE p.acct=e2ee_key_requests.acct AND "
                           "p.room_id=e2ee_key_requests.room_id AND p.session_id=e2ee_key_requests.session_id)",
              1, w);
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db, "SELECT room_id, session_id, sender_user, sender_key, request_id FROM "
                                   "e2ee_key_requests WHERE acct=? AND (state=0 OR (state=1 AND sent_ms < ?)) LIMIT 50",
                            &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, due, -1, SQLITE_TRANSIENT);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    const char *f[5];
    for (int i = 0; i < 5; i++)
      f[i] = (const char *)sqlite3_column_text(st, i);
    rc = send_request(e, "request", f[0], f[1], f[2], f[3], f[4], err);
    if (rc)
      break; /* network trouble: the next maintain tries again */
    const char *v[] = { now, e->user_id, f[0], f[1] };
    /* state IN (0,1): a key stored meanwhile (state 2) must stay cancellable */
    rc = e2ee_db_run(e->db, err, "UPDATE e2ee_key_requests SET state=1, sent_ms=? WHERE acct=? AND room_id=? AND "
                                 "session_id=? AND state IN (0,1)", 4, v);
    mx_info(e->label, "requested room key %s from %s and our other devices", f[1], f[2]);
  }
  sqlite3_finalize(st);
  return rc;
}

static mx_err send_cancellations(struct mx_e2ee *e, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db, "SELECT room_id, session_id, sender_user, request_id FROM e2ee_key_requests "
                                   "WHERE acct=? AND state=2 LIMIT 50", &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_TRANSIENT);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    const char *room = (const char *)sqlite3_column_text(st, 0), *sid = (const char *)sqlite3_column_text(st, 1);
    const char *sender = (const char *)sqlite3_column_text(st, 2), *rid = (const char *)sqlite3_column_text(st, 3);
    rc = send_request(e, "request_cancellation", room, sid, sender, "", rid, err);
    const char *v[] = { e->user_id, room, sid };
    if (!rc)
      rc = e2ee_db_run(e->db, err, "DELETE FROM e2ee_key_requests WHERE acct=? AND room_id=? AND session_id=? AND "
                                   "state=2", 3, v);
  }
  sqlite3_finalize(st);
  return rc;
}

mx_err e2ee_keyreq_maintain(struct mx_e2ee *e, char *err)
{
  mx_err rc = send_due(e, err);
  if (!rc)
    rc = send_cancellations(e, err);
  if (!rc)
    rc = e2ee_forward_answer(e, err);
  return rc;
}
