/*
 * bot/crypto/e2ee_megolm_out.c - outbound Megolm: one session per room,
 * shared over Olm with every device of every joined member BEFORE the first
 * message that uses it (the sendToDevice 200 is awaited), rotated on age,
 * message count, a member leaving or a history-visibility change, and
 * m.room_key.withheld (m.no_olm) once for devices we cannot reach.
 * The session and every Olm ratchet step are committed before anything
 * leaves the process. Layer: bot/crypto; worker side (blocking), takes
 * e->send_lock then e->lock for short sections only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <olm/outbound_group_session.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

struct target {
  char *user, *dev, *curve, *ed;
  int insecure; /* excluded by policy: not cross-signed by its owner */
};

struct targets {
  struct target *t;
  size_t n, cap;
};

static void free_targets(struct targets *ts)
{
  for (size_t i = 0; i < ts->n; i++) {
    free(ts->t[i].user);
    free(ts->t[i].dev);
    free(ts->t[i].curve);
    free(ts->t[i].ed);
  }
  free(ts->t);
}

static struct e2ee_outbound *find_out(struct mx_e2ee *e, const char *room_id)
{
  for (struct e2ee_outbound *g = e->out; g; g = g->next) {
    if (strcmp(g->room_id, room_id) == 0)
      return g;
  }
  return NULL;
}

static void room_changed_locked(struct mx_e2ee *e, const char *room_id, const char *why)
{
  struct e2ee_outbound *g = find_out(e, room_id);
  if (!g || g->invalid)
    return;
  g->invalid = 1;
  g->gen++;
  g->dirty = 1;
  mx_info(e->label, "outbound session of %s will rotate: %s", room_id, why);
}

mx_err e2ee_room_changed(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const char *why)
{
  room_changed_locked(e, room_id, why);
  return e2ee_persist_dirty(e, db, NULL);
}

static mx_err new_session(struct e2ee_outbound *g, char *err)
{
  OlmOutboundGroupSession *s = e2ee_new_outbound();
  if (!s)
    return MX_ERR_NOMEM;
  size_t rl = olm_init_outbound_group_session_random_length(s);
  uint8_t *rnd = malloc(rl ? rl : 1);
  mx_err rc = rnd ? mx_random_bytes(rnd, rl) : MX_ERR_NOMEM;
  if (!rc && olm_init_outbound_group_session(s, rnd, rl) == olm_error())
    rc = e2ee_olm_fail(err, "new megolm session", olm_outbound_group_session_last_error(s));
  size_t n = olm_outbound_group_session_id_length(s);
  if (!rc && (n >= sizeof(g->session_id) ||
              olm_outbound_group_session_id(s, (uint8_t *)g->session_id, n) == olm_error()))
    rc = mx_fail(MX_ERR_CRYPTO, err, "new megolm session: no session id");
  if (rnd)
    memset(rnd, 0, rl);
  free(rnd);
  if (rc) {
    e2ee_free_outbound(s);
    return rc;
  }
  g->session_id[n] = '\0';
  e2ee_free_outbound(g->s);
  g->s = s;
  g->created_ms = mx_now_ms();
  g->msg_count = 0;
  g->invalid = 0;
  g->gen++;
  g->dirty = 1;
  return MX_OK;
}

/* 1 when a device that holds the room's current session has gone (logged
 * out, or its user is no longer joined): the session must rotate. Catches
 * leaves missed while the bot was down. e->lock NOT held. */
static int holder_gone(struct mx_e2ee *e, const char *room, const char *sid, const cJSON *joined)
{
  sqlite3_stmt *st = NULL;
  if (!sid[0] || mx_db_prepare(e->db, "SELECT s.user_id, coalesce(d.deleted, 1) FROM e2ee_outbound_shared s "
                                      "LEFT JOIN e2ee_devices d ON d.acct=s.acct AND d.user_id=s.user_id AND "
                                      "d.device_id=s.device_id WHERE s.acct=? AND s.room_id=? AND s.session_id=?",
                               &st, NULL))
    return 0;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, room, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, sid, -1, SQLITE_STATIC);
  int gone = 0;
  while (!gone && sqlite3_step(st) == SQLITE_ROW) {
    const char *u = (const char *)sqlite3_column_text(st, 0);
    int member = 0;
    const cJSON *j;
    cJSON_ArrayForEach(j, joined)
    {
      if (strcmp(j->valuestring, u) == 0)
        member = 1;
    }
    gone = !member || sqlite3_column_int(st, 1);
  }
  sqlite3_finalize(st);
  return gone;
}

/* The room's usable outbound session, rotated when due (e->lock held). */
mx_err e2ee_room_encryption_state(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const cJSON *c, char *err)
{
  int64_t ms = 0, msgs = 0;
  if (!mx_json_int(c, "rotation_period_ms", &ms) || ms < 0)
    ms = 0;
  if (!mx_json_int(c, "rotation_period_msgs", &msgs) || msgs < 0)
    msgs = 0;
  char a[24], b[24];
  snprintf(a, sizeof(a), "%" PRId64, ms);
  snprintf(b, sizeof(b), "%" PRId64, msgs);
  const char *v[] = { e->user_id, room_id, a, b };
  return e2ee_db_run(db, err, "INSERT INTO e2ee_rooms(acct, room_id, rotation_ms, rotation_msgs) VALUES(?,?,?,?) "
                              "ON CONFLICT(acct, room_id) DO UPDATE SET rotation_ms=excluded.rotation_ms, "
                              "rotation_msgs=excluded.rotation_msgs", 4, v);
}

void e2ee_room_rotation(struct mx_e2ee *e, const char *room_id, int64_t *ms, int64_t *msgs)
{
  const char *v[] = { e->user_id, room_id };
  int64_t rms = e2ee_db_int(e->db, "SELECT rotation_ms FROM e2ee_rooms WHERE acct=? AND room_id=?", 2, v, 0);
  int64_t rmsgs = e2ee_db_int(e->db, "SELECT rotation_msgs FROM e2ee_rooms WHERE acct=? AND room_id=?", 2, v, 0);
  /* the stricter of ours and the room's (the spec: a client must not exceed
   * the room's limits) */
  *ms = rms > 0 && rms < e->rotation_ms ? rms : e->rotation_ms;
  *msgs = rmsgs > 0 && rmsgs < e->rotation_msgs ? rmsgs : e->rotation_msgs;
}

int e2ee_room_keys_for_invited(struct mx_e2ee *e, const char *room_id)
{
  const char *v[] = { e->user_id, room_id };
  char *hv = e2ee_db_text(e->db, "SELECT history_visibility FROM e2ee_rooms WHERE acct=? AND room_id=?", 2, v);
  /* "joined": an invited user may not read anything sent before they join */
  int yes = !hv || strcmp(hv, "joined") != 0;
  free(hv);
  return yes;
}

static mx_err current_session(struct mx_e2ee *e, const char *room_id, int64_t max_ms, int64_t max_msgs,
                              struct e2ee_outbound **out, char *err)
{
  struct e2ee_outbound *g = find_out(e, room_id);
  if (!g) {
    if (!(g = e2ee_alloc(sizeof(*g))))
      return MX_ERR_NOMEM;
    snprintf(g->room_id, sizeof(g->room_id), "%s", room_id);
    g->invalid = 1;
    g->next = e->out;
    e->out = g;
  }
  int64_t age = mx_now_ms() - g->created_ms;
  if (g->invalid || !g->s || age > max_ms || g->msg_count >= max_msgs) {
    mx_err rc = new_session(g, err);
    if (rc)
      return rc;
    mx_info(e->label, "new outbound megolm session %s for %s", g->session_id, room_id);
  }
  *out = g;
  return MX_OK;
}

/* Devices of `users` that do not have this session yet. */
static mx_err unshared(struct mx_e2ee *e, const cJSON *users, const char *room, const char *sid, struct targets *ts,
                       char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db,
                            "SELECT d.device_id, d.curve25519, d.ed25519, d.cross_signed FROM e2ee_devices d "
                            "WHERE d.acct=?1 AND d.user_id=?2 AND d.deleted=0 AND NOT (d.user_id=?1 AND "
                            "d.device_id=?5) AND NOT EXISTS (SELECT 1 FROM e2ee_outbound_shared s WHERE "
                            "s.acct=?1 AND s.room_id=?3 AND s.session_id=?4 AND s.user_id=d.user_id AND "
                            "s.device_id=d.device_id) AND NOT EXISTS (SELECT 1 FROM e2ee_withheld_session w "
                            "WHERE w.acct=?1 AND w.room_id=?3 AND w.session_id=?4 AND w.user_id=d.user_id AND "
                            "w.device_id=d.device_id)",
                            &st, err);
  const cJSON *u;
  cJSON_ArrayForEach(u, (rc ? NULL : users))
  {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->valuestring, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->device_id, -1, SQLITE_STATIC);
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
      if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 16;
        struct target *nt = realloc(ts->t, cap * sizeof(*nt));
        if (!nt) {
          rc = MX_ERR_NOMEM;
          break;
        }
        ts->t = nt;
        ts->cap = cap;
      }
      struct target *t = &ts->t[ts->n++];
      t->user = mx_strdup(u->valuestring);
      t->dev = mx_strdup((const char *)sqlite3_column_text(st, 0));
      t->curve = mx_strdup((const char *)sqlite3_column_text(st, 1));
      t->ed = mx_strdup((const char *)sqlite3_column_text(st, 2));
      t->insecure = e->exclude_insecure && !sqlite3_column_int(st, 3);
    }
  }
  sqlite3_finalize(st);
  return rc;
}

static mx_err claim_missing(struct mx_e2ee *e, const struct targets *ts, char *err)
{
  const char **users = calloc(ts->n + 1, sizeof(*users)), **devs = calloc(ts->n + 1, sizeof(*devs));
  size_t k = 0;
  mx_err rc = (users && devs) ? MX_OK : MX_ERR_NOMEM;
  pthread_mutex_lock(&e->lock);
  for (size_t i = 0; !rc && i < ts->n; i++) {
    if (!ts->t[i].insecure && !e2ee_olm_find_best(e, ts->t[i].curve)) {
      users[k] = ts->t[i].user;
      devs[k++] = ts->t[i].dev;
    }
  }
  pthread_mutex_unlock(&e->lock);
  if (!rc && k)
    rc = e2ee_olm_claim(e, users, devs, k, err);
  free(users);
  free(devs);
  return rc;
}

mx_err e2ee_send_to_device(struct mx_e2ee *e, const char *type, cJSON *messages, char *err)
{
  if (e->to_device_hook)
    return e->to_device_hook(e->to_device_ctx, type, messages, err);
  char txn[33];
  mx_err rc = mx_random_alnum(txn, 32);
  struct mx_buf path = MX_BUF_INIT(1024);
  if (!rc)
    rc = mx_buf_addf(&path, "/_matrix/client/v3/sendToDevice/%s/%s", type, txn);
  cJSON *body = cJSON_CreateObject();
  cJSON_AddItemReferenceToObject(body, "messages", messages);
  if (!rc)
    rc = mx_api_call(e->api, "PUT", mx_buf_cstr(&path), body, NULL, NULL, NULL, err);
  cJSON_Delete(body);
  mx_buf_release(&path);
  return rc;
}

static cJSON *room_key_content(struct mx_e2ee *e, struct e2ee_outbound *g)
{
  size_t kl = olm_outbound_group_session_key_length(g->s);
  char *key = malloc(kl + 1);
  if (!key || olm_outbound_group_session_key(g->s, (uint8_t *)key, kl) == olm_error()) {
    free(key);
    return NULL;
  }
  key[kl] = '\0';
  const char *v[] = { e->user_id, g->room_id };
  char *hv = e2ee_db_text(e->db, "SELECT history_visibility FROM e2ee_rooms WHERE acct=? AND room_id=?", 2, v);
  cJSON *c = cJSON_CreateObject();
  cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
  cJSON_AddStringToObject(c, "room_id", g->room_id);
  cJSON_AddStringToObject(c, "session_id", g->session_id);
  cJSON_AddStringToObject(c, "session_key", key);
  cJSON_AddBoolToObject(c, "shared_history", hv && (!strcmp(hv, "shared") || !strcmp(hv, "world_readable")));
  memset(key, 0, kl);
  free(key);
  free(hv);
  return c;
}

/* Encrypts m.room_key for every target with a session (e->lock held);
 * targets without one go to `withheld`. */
static mx_err build_shares(struct mx_e2ee *e, struct e2ee_outbound *g, const struct targets *ts, cJSON *msgs,
                           cJSON *withheld, cJSON *unverified, int *nshare, char *err)
{
  cJSON *rk = room_key_content(e, g);
  if (!rk)
    return mx_fail(MX_ERR_CRYPTO, err, "megolm: cannot export the session key");
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < ts->n; i++) {
    const struct target *t = &ts->t[i];
    struct e2ee_olm *o = t->insecure ? NULL : e2ee_olm_find_best(e, t->curve);
    cJSON *dst = t->insecure ? unverified : o ? msgs : withheld;
    cJSON *u = cJSON_GetObjectItemCaseSensitive(dst, t->user);
    if (!u)
      u = cJSON_AddObjectToObject(dst, t->user);
    cJSON *ct = NULL;
    if (!o) {
      cJSON_AddItemToObject(u, t->dev, cJSON_CreateObject());
      continue;
    }
    rc = e2ee_olm_encrypt(e, o, t->user, t->ed, "m.room_key", rk, &ct, err);
    if (!rc) {
      cJSON_AddItemToObject(u, t->dev, ct);
      (*nshare)++;
    }
  }
  mx_json_delete_wiped(rk);
  return rc;
}

static void record_shared(struct mx_e2ee *e, const char *room, const char *sid, const cJSON *msgs, const char *table)
{
  const cJSON *u, *d;
  cJSON_ArrayForEach(u, msgs)
  {
    cJSON_ArrayForEach(d, u)
    {
      const char *v[] = { e->user_id, room, sid, u->string, d->string };
      if (strcmp(table, "shared") == 0)
        e2ee_db_run(e->db, NULL, "INSERT OR IGNORE INTO e2ee_outbound_shared(acct, room_id, session_id, user_id, "
                                 "device_id) VALUES(?,?,?,?,?)", 5, v);
      else
        e2ee_db_run(e->db, NULL, "INSERT OR IGNORE INTO e2ee_withheld(acct, user_id, device_id) VALUES(?,?,?)", 3,
                    (const char *const[]){ e->user_id, u->string, d->string });
    }
  }
}

/* m.unverified for this session to devices excluded by policy, once per
 * (session, device); Element then shows why instead of a generic error. */
static mx_err send_unverified(struct mx_e2ee *e, const char *room, const char *sid, cJSON *devs, char *err)
{
  cJSON *u, *d;
  cJSON_ArrayForEach(u, devs)
  {
    cJSON_ArrayForEach(d, u)
    {
      cJSON_AddStringToObject(d, "algorithm", "m.megolm.v1.aes-sha2");
      cJSON_AddStringToObject(d, "code", "m.unverified");
      cJSON_AddStringToObject(d, "reason", "This device is not verified by its owner.");
      cJSON_AddStringToObject(d, "room_id", room);
      cJSON_AddStringToObject(d, "session_id", sid);
      cJSON_AddStringToObject(d, "sender_key", e->curve);
      cJSON_AddStringToObject(d, "from_device", e->device_id);
    }
  }
  mx_err rc = e2ee_send_to_device(e, "m.room_key.withheld", devs, err);
  cJSON_ArrayForEach(u, (rc ? NULL : devs))
  {
    cJSON_ArrayForEach(d, u)
    {
      const char *v[] = { e->user_id, room, sid, u->string, d->string };
      e2ee_db_run(e->db, NULL, "INSERT OR IGNORE INTO e2ee_withheld_session(acct, room_id, session_id, user_id, "
                               "device_id) VALUES(?,?,?,?,?)", 5, v);
    }
  }
  if (!rc)
    mx_info(e->label, "withheld session %s of %s from unverified devices (m.unverified)", sid, room);
  return rc;
}

/* m.no_olm once per device, without room_id/session_id (spec). */
static mx_err send_withheld(struct mx_e2ee *e, cJSON *withheld, char *err)
{
  cJSON *msgs = cJSON_CreateObject();
  const cJSON *u, *d;
  cJSON_ArrayForEach(u, withheld)
  {
    cJSON_ArrayForEach(d, u)
    {
      const char *v[] = { e->user_id, u->string, d->string };
      if (e2ee_db_int(e->db, "SELECT 1 FROM e2ee_withheld WHERE acct=? AND user_id=? AND device_id=?", 3, v, 0))
        continue;
      cJSON *mu = cJSON_GetObjectItemCaseSensitive(msgs, u->string);
      if (!mu)
        mu = cJSON_AddObjectToObject(msgs, u->string);
      cJSON *c = cJSON_AddObjectToObject(mu, d->string);
      cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
      cJSON_AddStringToObject(c, "code", "m.no_olm");
      cJSON_AddStringToObject(c, "reason", "Unable to establish a secure channel.");
      cJSON_AddStringToObject(c, "sender_key", e->curve);
      cJSON_AddStringToObject(c, "from_device", e->device_id);
    }
  }
  mx_err rc = MX_OK;
  if (msgs->child) {
    rc = e2ee_send_to_device(e, "m.room_key.withheld", msgs, err);
    if (!rc)
      record_shared(e, "", "", msgs, "withheld");
  }
  cJSON_Delete(msgs);
  return rc;
}

/* Joined members, their fresh device lists, and the room's current session
 * (rotated if due or if a holder left), committed and kept as inbound too.
 * *users (owned) lists the joined members. */
static mx_err prepare(struct mx_e2ee *e, const char *room_id, cJSON **users, char *sid_out, char *err)
{
  mx_err rc = e2ee_members_get(e, room_id, users, err);
  size_t nu = rc ? 0 : (size_t)cJSON_GetArraySize(*users);
  const char **ul = calloc(nu + 1, sizeof(*ul));
  for (size_t i = 0; ul && i < nu; i++)
    ul[i] = cJSON_GetArrayItem(*users, (int)i)->valuestring;
  if (!rc)
    rc = ul ? e2ee_devices_query(e, ul, nu, 0, err) : MX_ERR_NOMEM;
  free(ul);
  char cur[128] = "";
  pthread_mutex_lock(&e->lock);
  struct e2ee_outbound *g = find_out(e, room_id);
  if (g && !g->invalid)
    snprintf(cur, sizeof(cur), "%s", g->session_id);
  pthread_mutex_unlock(&e->lock);
  int gone = !rc && holder_gone(e, room_id, cur, *users);
  int64_t max_ms = 0, max_msgs = 0;
  e2ee_room_rotation(e, room_id, &max_ms, &max_msgs);
  cJSON *own = NULL;
  pthread_mutex_lock(&e->lock);
  if (gone)
    room_changed_locked(e, room_id, "a device holding the session left");
  if (!rc)
    rc = current_session(e, room_id, max_ms, max_msgs, &g, err);
  if (!rc) {
    snprintf(sid_out, 128, "%s", g->session_id);
    /* a fresh session is also kept as an inbound one: the bot can read
     * its own messages (and a restart does not queue them forever) */
    if (olm_outbound_group_session_message_index(g->s) == 0)
      own = room_key_content(e, g);
    rc = e2ee_flush_unlocked_write(e, err); /* the new session exists on disk before its key leaves */
  }
  pthread_mutex_unlock(&e->lock);
  if (!rc && own)
    rc = e2ee_room_key_received(e, e->db, e->user_id, e->curve, e->ed, own, err);
  mx_json_delete_wiped(own);
  return rc;
}

static mx_err share(struct mx_e2ee *e, const char *room_id, char *sid_out, char *err)
{
  cJSON *users = NULL, *msgs = cJSON_CreateObject(), *withheld = cJSON_CreateObject();
  cJSON *unverified = cJSON_CreateObject();
  struct targets ts = { 0 };
  int nshare = 0;
  mx_err rc = prepare(e, room_id, &users, sid_out, err);
  if (!rc)
    rc = unshared(e, users, room_id, sid_out, &ts, err);
  if (!rc)
    rc = claim_missing(e, &ts, err);
  pthread_mutex_lock(&e->lock);
  struct e2ee_outbound *g = find_out(e, room_id);
  if (!rc && (!g || strcmp(g->session_id, sid_out) != 0))
    rc = mx_fail(MX_ERR_CONFLICT, err, "megolm: the session of %s rotated while sharing", room_id);
  if (!rc)
    rc = build_shares(e, g, &ts, msgs, withheld, unverified, &nshare, err);
  if (!rc)
    rc = e2ee_flush_unlocked_write(e, err); /* Olm ratchets on disk before sending */
  pthread_mutex_unlock(&e->lock);
  if (!rc && nshare)
    rc = e2ee_send_to_device(e, "m.room.encrypted", msgs, err);
  if (!rc && nshare) {
    record_shared(e, room_id, sid_out, msgs, "shared");
    mx_info(e->label, "shared session %s of %s with %d devices", sid_out, room_id, nshare);
  }
  if (!rc && withheld->child)
    rc = send_withheld(e, withheld, err);
  if (!rc && unverified->child)
    rc = send_unverified(e, room_id, sid_out, unverified, err);
  free_targets(&ts);
  cJSON_Delete(users);
  cJSON_Delete(msgs);
  cJSON_Delete(withheld);
  cJSON_Delete(unverified);
  return rc;
}

static mx_err group_encrypt(struct mx_e2ee *e, const char *room_id, const char *sid, const char *type,
                            const cJSON *content, cJSON **out, char *err)
{
  struct e2ee_outbound *g = find_out(e, room_id);
  if (!g || strcmp(g->session_id, sid) != 0)
    return mx_fail(MX_ERR_CONFLICT, err, "megolm: the session of %s rotated while sharing", room_id);
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "type", type);
  cJSON_AddItemToObject(p, "content", cJSON_Duplicate(content, 1));
  cJSON_AddStringToObject(p, "room_id", room_id);
  char *text = cJSON_PrintUnformatted(p);
  cJSON_Delete(p);
  if (!text)
    return MX_ERR_NOMEM;
  size_t tl = strlen(text), ml = olm_group_encrypt_message_length(g->s, tl);
  char *msg = malloc(ml + 1);
  mx_err rc = msg ? MX_OK : MX_ERR_NOMEM;
  if (!rc && olm_group_encrypt(g->s, (uint8_t *)text, tl, (uint8_t *)msg, ml) == olm_error())
    rc = e2ee_olm_fail(err, "megolm encrypt", olm_outbound_group_session_last_error(g->s));
  if (!rc) {
    msg[ml] = '\0';
    g->msg_count++;
    g->gen++;
    g->dirty = 1;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
    cJSON_AddStringToObject(c, "sender_key", e->curve);
    cJSON_AddStringToObject(c, "device_id", e->device_id);
    cJSON_AddStringToObject(c, "session_id", sid);
    cJSON_AddStringToObject(c, "ciphertext", msg);
    *out = c;
  }
  memset(text, 0, tl);
  cJSON_free(text);
  free(msg);
  return rc;
}

static mx_err encrypt_in(struct mx_e2ee *e, const char *room_id, const char *event_type, const cJSON *content,
                         cJSON **out, char *err)
{
  char sid[128] = "";
  *out = NULL;
  pthread_mutex_lock(&e->send_lock);
  mx_err rc = share(e, room_id, sid, err);
  if (!rc) {
    pthread_mutex_lock(&e->lock);
    rc = group_encrypt(e, room_id, sid, event_type, content, out, err);
    if (!rc)
      rc = e2ee_flush_unlocked_write(e, err); /* the index advance is on disk before the PUT */
    pthread_mutex_unlock(&e->lock);
    if (rc) {
      cJSON_Delete(*out);
      *out = NULL;
    }
  }
  pthread_mutex_unlock(&e->send_lock);
  return rc;
}

mx_err mx_e2ee_encrypt(struct mx_e2ee *e, const char *room_id, const char *event_type, const cJSON *content,
                       cJSON **out, char *err)
{
  mx_err rc = e2ee_db_enter(e, err);
  if (rc)
    return rc;
  rc = encrypt_in(e, room_id, event_type, content, out, err);
  e2ee_db_leave(e);
  return rc;
}
