/* bot/mx_rooms.c - invites, joins, m.direct and the alerts room. */
#include "mx_rooms.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_send.h"
#include "mx_store.h"
#include "mx_util.h"

mx_err mx_rooms_on_invite(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *room, char *err)
{
  const cJSON *events = mx_json_arr(mx_json_obj(room, "invite_state"), "events");
  const cJSON *ev;
  const char *inviter = NULL;
  int is_direct = 0;
  cJSON_ArrayForEach(ev, events) {
    const char *type = mx_json_str(ev, "type"), *sk = mx_json_str(ev, "state_key");
    if (type && sk && strcmp(type, "m.room.member") == 0 && strcmp(sk, id->user_id) == 0) {
      inviter = mx_json_str(ev, "sender");
      is_direct = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(mx_json_obj(ev, "content"), "is_direct"));
    }
  }
  sqlite3_stmt *st = NULL;
  if (mx_db_query(db, &st, NULL, "SELECT 1 FROM room_actions WHERE user_id=? AND room_id=? AND done=0", "ss",
                  id->user_id, room_id) == MX_OK) {
    sqlite3_finalize(st);
    return MX_OK; /* already decided */
  }
  mx_err rc = mx_store_room_upsert(db, id->user_id, room_id, "invite", err);
  if (rc)
    return rc;
  if (inviter && mx_bot_is_operator(id->bot, inviter)) {
    mx_info(id->dev->name, "accepting invite to %s from operator %s", room_id, inviter);
    return mx_store_action_add(db, id->user_id, room_id, is_direct ? "join_dm" : "join", inviter, err);
  }
  mx_info(id->dev->name, "refusing invite to %s from %s: not an operator", room_id, inviter ? inviter : "unknown");
  return mx_store_action_add(db, id->user_id, room_id, "reject", inviter, err);
}

static mx_err room_post(struct mx_ident *id, const char *fmt, const char *room_id, cJSON **resp, char *err)
{
  char *er = mx_api_escape(room_id);
  struct mx_buf path = MX_BUF_INIT(4096);
  mx_err rc = er ? mx_buf_addf(&path, fmt, er) : MX_ERR_NOMEM;
  free(er);
  if (!rc) {
    cJSON *b = cJSON_CreateObject();
    rc = mx_api_call(id->api, "POST", mx_buf_cstr(&path), b, NULL, NULL, resp, err);
    cJSON_Delete(b);
  }
  mx_buf_release(&path);
  return rc;
}

static mx_err mark_direct(struct mx_ident *id, const char *room_id, const char *with, char *err)
{
  return mx_rooms_mark_direct(id->api, id->user_id, room_id, with, err);
}

mx_err mx_rooms_mark_direct(struct mx_api *api, const char *user_id, const char *room_id, const char *with,
                            char *err)
{
  char *eu = mx_api_escape(user_id);
  struct mx_buf path = MX_BUF_INIT(4096);
  mx_err rc = eu ? mx_buf_addf(&path, "/_matrix/client/v3/user/%s/account_data/m.direct", eu) : MX_ERR_NOMEM;
  free(eu);
  cJSON *direct = NULL;
  if (!rc) {
    mx_err g = mx_api_call(api, "GET", mx_buf_cstr(&path), NULL, NULL, NULL, &direct, err);
    if (g == MX_ERR_NOT_FOUND) {
      cJSON_Delete(direct);
      direct = NULL;
    } else if (g) {
      rc = g;
    }
  }
  if (!rc) {
    if (!direct || !cJSON_IsObject(direct)) {
      cJSON_Delete(direct);
      direct = cJSON_CreateObject();
    }
    cJSON *list = cJSON_GetObjectItemCaseSensitive(direct, with);
    if (!cJSON_IsArray(list)) {
      cJSON_DeleteItemFromObjectCaseSensitive(direct, with);
      list = cJSON_AddArrayToObject(direct, with);
    }
    int present = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, list) present |= cJSON_IsString(r) && strcmp(r->valuestring, room_id) == 0;
    if (!present)
      cJSON_AddItemToArray(list, cJSON_CreateString(room_id));
    rc = present ? MX_OK : mx_api_call(api, "PUT", mx_buf_cstr(&path), direct, NULL, NULL, NULL, err);
  }
  cJSON_Delete(direct);
  mx_buf_release(&path);
  return rc;
}

mx_err mx_rooms_note_undecryptable(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *ev,
                                   char *err)
{
  const char *sender = mx_json_str(ev, "sender");
  const cJSON *c = mx_json_obj(ev, "content");
  const char *session = mx_json_str(c, "session_id");
  if (!sender || !session || !mx_bot_is_operator(id->bot, sender))
    return MX_OK;
  /* arg: the session (dedupe key), then the sender's device if the event
   * still names it (a deprecated field some clients still send) */
  const char *dev = mx_json_str(c, "device_id");
  struct mx_buf arg = MX_BUF_INIT(512);
  mx_err rc = mx_buf_addf(&arg, "%s %s", session, dev ? dev : "");
  sqlite3_stmt *st = NULL;
  int seen = 0;
  if (!rc) {
    rc = mx_db_query(db, &st, err, "SELECT 1 FROM room_actions WHERE user_id=? AND room_id=? AND action='utd_notice' "
                                   "AND arg LIKE ? || ' %'", "sss", id->user_id, room_id, session);
    seen = rc == MX_OK;
    sqlite3_finalize(st);
    if (rc == MX_ERR_NOT_FOUND)
      rc = MX_OK;
  }
  if (!rc && !seen)
    rc = mx_store_action_add(db, id->user_id, room_id, "utd_notice", mx_buf_cstr(&arg), err);
  mx_buf_release(&arg);
  return rc;
}

/* The operator hears that a message was not read, instead of silence; the
 * queued event is answered when its key arrives (e2ee key requests). */
static mx_err utd_notice(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *arg, char *err)
{
  const char *dev = arg ? strchr(arg, ' ') : NULL;
  dev = dev && dev[1] ? dev + 1 : NULL;
  char text[512], key[300];
  snprintf(text, sizeof(text),
           "I could not read your message%s%s yet: I do not have its decryption key. I asked your sessions for it "
           "and will answer as soon as it arrives.", dev ? " from session " : "", dev ? dev : "");
  snprintf(key, sizeof(key), "utd:%.250s", arg ? arg : "");
  return mx_send_notice(id, db, room_id, key, text, NULL, NULL, NULL, err);
}

static mx_err do_action(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *action,
                        const char *arg, char *err)
{
  if (strcmp(action, "utd_notice") == 0)
    return utd_notice(id, db, room_id, arg, err);
  if (strcmp(action, "reject") == 0)
    return room_post(id, "/_matrix/client/v3/rooms/%s/leave", room_id, NULL, err);
  mx_err rc = room_post(id, "/_matrix/client/v3/join/%s", room_id, NULL, err);
  if (!rc)
    rc = mx_store_room_upsert(db, id->user_id, room_id, "join", err);
  if (!rc && strcmp(action, "join_dm") == 0 && arg) {
    rc = mx_store_room_set_int(db, id->user_id, room_id, "is_dm", 1, err);
    char e2[MX_ERRBUF_LEN];
    if (!rc && mark_direct(id, room_id, arg, e2))
      mx_warn(id->dev->name, "cannot mark %s as a DM with %s: %s", room_id, arg, e2);
  }
  return rc;
}

struct pending {
  int64_t id;
  char *room_id, *action, *arg;
};

/* Reads the pending rows first and acts after: a read statement left open
 * across the HTTP calls would hold a snapshot, and the first write after
 * another connection's commit would fail with "database is locked". */
static int run_pending(struct mx_ident *id, sqlite3 *db)
{
  sqlite3_stmt *st = NULL;
  if (mx_db_prepare(db, "SELECT id, room_id, action, arg FROM room_actions WHERE user_id=? AND done=0 ORDER BY id",
                    &st, NULL))
    return 1;
  sqlite3_bind_text(st, 1, id->user_id, -1, SQLITE_STATIC);
  struct pending rows[64];
  int n = 0, left = 0;
  while (n < 64 && sqlite3_step(st) == SQLITE_ROW) {
    const char *arg = (const char *)sqlite3_column_text(st, 3);
    struct pending *p = &rows[n];
    p->id = sqlite3_column_int64(st, 0);
    p->room_id = mx_strdup((const char *)sqlite3_column_text(st, 1));
    p->action = mx_strdup((const char *)sqlite3_column_text(st, 2));
    p->arg = arg ? mx_strdup(arg) : NULL;
    if (!p->room_id || !p->action || (arg && !p->arg)) {
      free(p->room_id);
      free(p->action);
      free(p->arg);
      left++;
      break;
    }
    n++;
  }
  if (n == 64 && sqlite3_step(st) == SQLITE_ROW)
    left++;
  sqlite3_finalize(st);
  for (int i = 0; i < n; i++) {
    struct pending *p = &rows[i];
    char err[MX_ERRBUF_LEN] = "";
    mx_err rc = do_action(id, db, p->room_id, p->action, p->arg, err);
    if (rc)
      mx_warn(id->dev->name, "room action %s on %s: %s", p->action, p->room_id, err);
    /* a room that is gone or forbids us will not change its mind: stop trying */
    int done = !rc || rc == MX_ERR_AUTH || rc == MX_ERR_NOT_FOUND;
    if (!done || mx_db_run(db, NULL, "UPDATE room_actions SET done=1 WHERE id=?", "i", p->id))
      left++;
    free(p->room_id);
    free(p->action);
    free(p->arg);
  }
  return left;
}

/* One run per identity at a time. A sync worker schedules the next
 * long-poll before its batch's room actions are done, so the next batch,
 * on another worker, used to run the same pending rows as well: every
 * invite was joined two or three times and m.direct written as often. A
 * caller that finds a run in progress leaves its rows to that run, which
 * goes round again before it ends. */
int mx_rooms_run_actions(struct mx_ident *id, sqlite3 *db)
{
  atomic_store(&id->actions_wanted, 1);
  if (atomic_exchange(&id->actions_busy, 1))
    return 0;
  int left;
  do {
    atomic_store(&id->actions_wanted, 0);
    left = run_pending(id, db);
    atomic_store(&id->actions_busy, 0);
  } while (atomic_load(&id->actions_wanted) && !atomic_exchange(&id->actions_busy, 1));
  return left;
}

static mx_err invite_operators(struct mx_ident *id, const char *room_id)
{
  for (size_t i = 0; i < id->bot->cfg->n_operators; i++) {
    char *er = mx_api_escape(room_id);
    struct mx_buf path = MX_BUF_INIT(4096);
    if (er && !mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/invite", er)) {
      cJSON *b = cJSON_CreateObject();
      cJSON_AddStringToObject(b, "user_id", id->bot->cfg->operators[i]);
      char err[MX_ERRBUF_LEN];
      /* 403 "already in the room" is the normal case after the first run */
      if (mx_api_call(id->api, "POST", mx_buf_cstr(&path), b, NULL, NULL, NULL, err) && !strstr(err, "M_FORBIDDEN"))
        mx_warn(id->dev->name, "alerts room: cannot invite %s: %s", id->bot->cfg->operators[i], err);
      cJSON_Delete(b);
    }
    free(er);
    mx_buf_release(&path);
  }
  return MX_OK;
}

static cJSON *encryption_content(void)
{
  cJSON *c = cJSON_CreateObject();
  cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
  return c;
}

/* An alerts room made before it was created encrypted (or by hand) gets
 * encryption switched on: unencrypted, every command there is refused with
 * require_verified_sender on. Encryption cannot be switched off again, so
 * this is done once and logged. The store flag is set here rather than left
 * to sync, so the first alert is already encrypted. */
static mx_err ensure_encrypted(struct mx_ident *id, sqlite3 *db, const char *room_id, char *err)
{
  char *er = mx_api_escape(room_id);
  struct mx_buf path = MX_BUF_INIT(4096);
  mx_err rc = er ? mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/state/m.room.encryption/", er) : MX_ERR_NOMEM;
  free(er);
  cJSON *cur = NULL;
  if (!rc)
    rc = mx_api_call(id->api, "GET", mx_buf_cstr(&path), NULL, NULL, NULL, &cur, err);
  cJSON_Delete(cur);
  if (rc == MX_ERR_NOT_FOUND) {
    cJSON *c = encryption_content();
    rc = mx_api_call(id->api, "PUT", mx_buf_cstr(&path), c, NULL, NULL, NULL, err);
    cJSON_Delete(c);
    if (!rc)
      mx_info(id->dev->name, "alerts room %s was not encrypted: enabled end-to-end encryption in it", room_id);
  }
  mx_buf_release(&path);
  if (rc)
    return rc;
  return mx_store_room_set_int(db, id->user_id, room_id, "encrypted", 1, err);
}

mx_err mx_rooms_ensure_alerts(struct mx_ident *id, sqlite3 *db, char *err)
{
  const char *alias = id->bot->cfg->alerts_room;
  char room_id[256] = "";
  if (alias[0] == '!') {
    snprintf(room_id, sizeof(room_id), "%s", alias);
  } else {
    char *ea = mx_api_escape(alias);
    struct mx_buf path = MX_BUF_INIT(4096);
    cJSON *resp = NULL;
    mx_err rc = ea ? mx_buf_addf(&path, "/_matrix/client/v3/directory/room/%s", ea) : MX_ERR_NOMEM;
    free(ea);
    if (!rc)
      rc = mx_api_call(id->api, "GET", mx_buf_cstr(&path), NULL, NULL, NULL, &resp, err);
    mx_buf_release(&path);
    if (!rc && mx_json_str(resp, "room_id"))
      snprintf(room_id, sizeof(room_id), "%s", mx_json_str(resp, "room_id"));
    cJSON_Delete(resp);
    if (rc && rc != MX_ERR_NOT_FOUND)
      return rc;
    if (!room_id[0]) {
      /* create it: alias localpart between '#' and ':' */
      const char *colon = strchr(alias, ':');
      if (!colon || colon == alias + 1)
        return mx_fail(MX_ERR_CONFIG, err, "alerts_room: expected #name:server, got '%s'", alias);
      char local[200];
      snprintf(local, sizeof(local), "%.*s", (int)(colon - alias - 1), alias + 1);
      cJSON *b = cJSON_CreateObject();
      cJSON_AddStringToObject(b, "room_alias_name", local);
      cJSON_AddStringToObject(b, "name", "mxfleet operator alerts");
      cJSON_AddStringToObject(b, "topic", "Health alerts and audit checkpoints from mxfleet");
      cJSON_AddStringToObject(b, "preset", "private_chat");
      /* encrypted from the start: commands there come from verified
       * operator sessions only (require_verified_sender), as in the DMs */
      cJSON *st = cJSON_CreateObject();
      cJSON_AddStringToObject(st, "type", "m.room.encryption");
      cJSON_AddStringToObject(st, "state_key", "");
      cJSON_AddItemToObject(st, "content", encryption_content());
      cJSON_AddItemToArray(cJSON_AddArrayToObject(b, "initial_state"), st);
      cJSON *inv = cJSON_AddArrayToObject(b, "invite");
      for (size_t i = 0; i < id->bot->cfg->n_operators; i++)
        cJSON_AddItemToArray(inv, cJSON_CreateString(id->bot->cfg->operators[i]));
      resp = NULL;
      struct mx_api_opts o = { 30000, 60000, 1 };
      rc = mx_api_call(id->api, "POST", "/_matrix/client/v3/createRoom", b, &o, NULL, &resp, err);
      cJSON_Delete(b);
      if (!rc && mx_json_str(resp, "room_id"))
        snprintf(room_id, sizeof(room_id), "%s", mx_json_str(resp, "room_id"));
      cJSON_Delete(resp);
      if (rc)
        return rc;
      mx_info(id->dev->name, "created alerts room %s as %s", alias, room_id);
    }
  }
  cJSON *resp = NULL;
  mx_err rc = room_post(id, "/_matrix/client/v3/join/%s", room_id, &resp, err);
  cJSON_Delete(resp);
  if (rc)
    return rc;
  invite_operators(id, room_id);
  rc = mx_store_room_upsert(db, id->user_id, room_id, "join", err);
  if (!rc)
    rc = mx_store_room_set_int(db, id->user_id, room_id, "is_alerts", 1, err);
  char e2[MX_ERRBUF_LEN];
  /* alerts still go out when this fails (a room the bot may not change) */
  if (!rc && ensure_encrypted(id, db, room_id, e2))
    mx_warn(id->dev->name, "alerts room %s: cannot enable encryption, commands there will be refused: %s",
            room_id, e2);
  free(id->alerts_room_id);
  id->alerts_room_id = mx_strdup(room_id);
  if (!rc)
    mx_debug(id->dev->name, "alerts room %s is %s", alias, room_id);
  return rc;
}
