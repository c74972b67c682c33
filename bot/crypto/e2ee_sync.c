/*
 * bot/crypto/e2ee_sync.c - the crypto part of one /sync response, run on the
 * sync worker inside the caller's transaction: to-device first (Olm, room
 * keys), then device_lists, one-time key counts (a missing count is 0),
 * unused fallback key types, and membership / history-visibility changes
 * that force a Megolm rotation. No network here: mx_e2ee_maintain acts on
 * what this records. One bad to-device message is logged and skipped; only
 * store errors abort (the caller then rolls back and the sync is redone).
 * Layer: bot/crypto. sync_response is borrowed.
 */
#include <inttypes.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

static mx_err one_to_device(struct mx_e2ee *e, sqlite3 *db, const cJSON *ev)
{
  char err[MX_ERRBUF_LEN] = "";
  const char *type = mx_json_str(ev, "type"), *sender = mx_json_str(ev, "sender");
  if (!type || !sender)
    return MX_OK;
  if (strcmp(type, "m.room_key.withheld") == 0)
    return e2ee_keyreq_withheld(e, db, sender, mx_json_obj(ev, "content"), err) == MX_ERR_DB ? MX_ERR_DB : MX_OK;
  if (strcmp(type, "m.room_key_request") == 0)
    return e2ee_keyreq_incoming(e, db, ev, err) == MX_ERR_DB ? MX_ERR_DB : MX_OK;
  if (strcmp(type, "m.room.encrypted") != 0)
    return MX_OK;
  cJSON *p = NULL;
  char sk[64] = "";
  mx_err rc = e2ee_olm_decrypt_event(e, db, ev, &p, sk, err);
  if (rc == MX_ERR_DB)
    return rc;
  if (rc) {
    mx_warn(e->label, "to-device message from %s dropped: %s", sender, err);
    return MX_OK;
  }
  const char *inner = mx_json_str(p, "type");
  if (strcmp(inner, "m.room_key") == 0) {
    rc = e2ee_room_key_received(e, db, sender, sk, mx_json_str(mx_json_obj(p, "keys"), "ed25519"),
                                mx_json_obj(p, "content"), err);
    if (rc && rc != MX_ERR_DB) {
      mx_warn(e->label, "room key from %s rejected: %s", sender, err);
      rc = MX_OK;
    }
  } else if (strcmp(inner, "m.forwarded_room_key") == 0) {
    rc = e2ee_forwarded_key_received(e, db, sender, sk, mx_json_str(mx_json_obj(p, "keys"), "ed25519"),
                                     mx_json_obj(p, "content"), err);
    if (rc && rc != MX_ERR_DB) {
      mx_warn(e->label, "%s", err);
      rc = MX_OK;
    }
  } else if (strcmp(inner, "m.dummy") != 0) {
    mx_debug(e->label, "ignoring encrypted to-device %s from %s", inner, sender);
  }
  mx_json_delete_wiped(p); /* may hold a session key */
  return rc;
}

static mx_err device_lists(struct mx_e2ee *e, sqlite3 *db, const cJSON *dl, char *err)
{
  const cJSON *u;
  mx_err rc = MX_OK;
  cJSON_ArrayForEach(u, mx_json_arr(dl, "changed"))
  {
    const char *v[] = { e->user_id, cJSON_IsString(u) ? u->valuestring : "" };
    if (!rc)
      rc = e2ee_db_run(db, err, "UPDATE e2ee_users SET outdated=outdated+1 WHERE acct=? AND user_id=? AND tracking=1", 2, v);
    e->lists_changed = 1;
  }
  cJSON_ArrayForEach(u, mx_json_arr(dl, "left"))
  {
    const char *v[] = { e->user_id, cJSON_IsString(u) ? u->valuestring : "" };
    if (!rc)
      rc = e2ee_db_run(db, err, "UPDATE e2ee_users SET tracking=0 WHERE acct=? AND user_id=?", 2, v);
  }
  return rc;
}

static void key_counts(struct mx_e2ee *e, const cJSON *sync)
{
  int64_t n = 0; /* servers may omit zero counts: missing means 0 */
  mx_json_int(mx_json_obj(sync, "device_one_time_keys_count"), "signed_curve25519", &n);
  e->otk_count = n;
  const cJSON *fb = mx_json_arr(sync, "device_unused_fallback_key_types");
  if (!fb)
    return; /* a server without fallback support: nothing to learn */
  int have = 0;
  const cJSON *t;
  cJSON_ArrayForEach(t, fb)
  {
    if (cJSON_IsString(t) && strcmp(t->valuestring, "signed_curve25519") == 0)
      have = 1;
  }
  if (!have && mx_now_ms() - e->fallback_rotated_ms > E2EE_FALLBACK_GRACE_MS)
    e->fallback_missing = 1;
}

static mx_err room_events(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const cJSON *events, char *err)
{
  const cJSON *ev;
  mx_err rc = MX_OK;
  cJSON_ArrayForEach(ev, events)
  {
    const char *type = mx_json_str(ev, "type");
    const cJSON *c = mx_json_obj(ev, "content");
    if (!type || !c || !mx_json_str(ev, "state_key") || rc)
      continue;
    if (strcmp(type, "m.room.member") == 0) {
      const char *m = mx_json_str(c, "membership");
      if (m)
        rc = e2ee_members_event(e, db, room_id, mx_json_str(ev, "state_key"), m, err);
      if (!rc && m && (strcmp(m, "leave") == 0 || strcmp(m, "ban") == 0))
        rc = e2ee_room_changed(e, db, room_id, "a member left");
    } else if (strcmp(type, "m.room.encryption") == 0) {
      rc = e2ee_room_encryption_state(e, db, room_id, c, err);
    } else if (strcmp(type, "m.room.history_visibility") == 0) {
      const char *hv = mx_json_str(c, "history_visibility");
      const char *v[] = { e->user_id, room_id, hv ? hv : "shared" };
      rc = e2ee_db_run(db, err, "INSERT INTO e2ee_rooms(acct, room_id, history_visibility) VALUES(?,?,?) "
                                "ON CONFLICT(acct, room_id) DO UPDATE SET history_visibility=excluded.history_visibility",
                       3, v);
      if (!rc)
        rc = e2ee_room_changed(e, db, room_id, "history visibility changed");
    }
  }
  return rc;
}

static mx_err rooms(struct mx_e2ee *e, sqlite3 *db, const cJSON *sync, char *err)
{
  const cJSON *r;
  mx_err rc = MX_OK;
  cJSON_ArrayForEach(r, mx_json_obj(mx_json_obj(sync, "rooms"), "join"))
  {
    /* lazy-loaded members: a gap may hide joins and leaves */
    if (!rc && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(mx_json_obj(r, "timeline"), "limited")))
      rc = e2ee_members_forget(e, db, r->string, err);
    if (!rc)
      rc = room_events(e, db, r->string, mx_json_arr(mx_json_obj(r, "state"), "events"), err);
    if (!rc)
      rc = room_events(e, db, r->string, mx_json_arr(mx_json_obj(r, "timeline"), "events"), err);
  }
  /* while we are out of a room nothing tells us who comes and goes */
  cJSON_ArrayForEach(r, mx_json_obj(mx_json_obj(sync, "rooms"), "leave"))
  {
    if (!rc)
      rc = e2ee_members_forget(e, db, r->string, err);
  }
  return rc;
}

static int any_dirty(const struct mx_e2ee *e)
{
  if (e->acct_dirty || e->evicted)
    return 1;
  for (const struct e2ee_olm *o = e->olm; o; o = o->next)
    if (o->dirty)
      return 1;
  for (const struct e2ee_outbound *g = e->out; g; g = g->next)
    if (g->dirty)
      return 1;
  return 0;
}

int mx_e2ee_sync_quiet(struct mx_e2ee *e, const cJSON *sync)
{
  pthread_mutex_lock(&e->lock);
  int quiet = !any_dirty(e);
  if (quiet) {
    key_counts(e, sync);
    /* what mx_e2ee_maintain_keys would act on */
    quiet = !(e->otk_count >= 0 && e->otk_count < E2EE_OTK_TARGET / 2) && !e->fallback_missing &&
            !(e->fallback_replaced_ms && mx_now_ms() - e->fallback_replaced_ms > E2EE_FALLBACK_FORGET_MS);
  }
  pthread_mutex_unlock(&e->lock);
  return quiet;
}

mx_err mx_e2ee_process_sync(struct mx_e2ee *e, sqlite3 *db, const cJSON *sync, char *err)
{
  pthread_mutex_lock(&e->lock);
  const cJSON *ev;
  mx_err rc = MX_OK;
  cJSON_ArrayForEach(ev, mx_json_arr(mx_json_obj(sync, "to_device"), "events"))
  {
    if (!rc)
      rc = one_to_device(e, db, ev);
  }
  if (rc)
    mx_fail(rc, err, "to_device: cannot store crypto state");
  if (!rc)
    rc = device_lists(e, db, mx_json_obj(sync, "device_lists"), err);
  if (!rc) {
    key_counts(e, sync);
    rc = rooms(e, db, sync, err);
  }
  if (!rc)
    rc = e2ee_persist_dirty(e, db, err);
  pthread_mutex_unlock(&e->lock);
  return rc;
}
