/*
 * bot/crypto/e2ee_members.c - who a room key goes to, tracked from /sync so
 * that sending a message costs no request but the send itself. The member
 * list of (acct, room) is seeded once with GET /members (when the room is
 * first encrypted to, or after a gappy "limited" timeline, since lazy-loaded
 * members do not bring the state of what was skipped) and then kept current
 * by every m.room.member event the sync worker sees. members_gen counts
 * those events, so a seed fetched while the sync worker recorded a change
 * (a join racing the first send of a new DM) is fetched again, up to
 * SEED_TRIES times: the list sent to must not miss that change, and a seed
 * left unstored would cost a GET /members on every later send.
 * Layer: bot/crypto; the sync side runs inside the sync transaction, the
 * send side on the worker through e->db.
 */
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

static mx_err bump_gen(sqlite3 *db, const char *acct, const char *room_id, int forget, char *err)
{
  const char *v[] = { acct, room_id };
  return e2ee_db_run(db, err,
                     forget ? "INSERT INTO e2ee_rooms(acct, room_id, members_gen) VALUES(?,?,1) ON CONFLICT(acct, "
                              "room_id) DO UPDATE SET members_gen=members_gen+1, members_known=0"
                            : "INSERT INTO e2ee_rooms(acct, room_id, members_gen) VALUES(?,?,1) ON CONFLICT(acct, "
                              "room_id) DO UPDATE SET members_gen=members_gen+1",
                     2, v);
}

mx_err e2ee_members_event(struct mx_e2ee *e, sqlite3 *db, const char *room_id, const char *user,
                          const char *membership, char *err)
{
  const char *v[] = { e->user_id, room_id, user, membership };
  mx_err rc = e2ee_db_run(db, err,
                          "INSERT INTO e2ee_members(acct, room_id, user_id, membership) VALUES(?,?,?,?) "
                          "ON CONFLICT(acct, room_id, user_id) DO UPDATE SET membership=excluded.membership",
                          4, v);
  return rc ? rc : bump_gen(db, e->user_id, room_id, 0, err);
}

mx_err e2ee_members_forget(struct mx_e2ee *e, sqlite3 *db, const char *room_id, char *err)
{
  return bump_gen(db, e->user_id, room_id, 1, err);
}

static void add_user(cJSON *arr, const char *who, const char *ms, int invited_too)
{
  if (who && ms && (strcmp(ms, "join") == 0 || (invited_too && strcmp(ms, "invite") == 0)))
    cJSON_AddItemToArray(arr, cJSON_CreateString(who));
}

static mx_err stored(struct mx_e2ee *e, const char *room_id, int invited_too, cJSON *arr, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db,
                            "SELECT user_id, membership FROM e2ee_members WHERE acct=? AND room_id=? "
                            "AND membership IN ('join', 'invite') ORDER BY user_id",
                            &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, room_id, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW)
    add_user(arr, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
             invited_too);
  sqlite3_finalize(st);
  return MX_OK;
}

#define SEED_TRIES 3

/* Stores the /members answer as the room's list when no member event was
 * recorded since gen was read: MX_ERR_CONFLICT when one was. Otherwise best
 * effort (a failure only costs a refetch at the next send). */
static mx_err seed(struct mx_e2ee *e, const char *room_id, int64_t gen, const cJSON *chunk)
{
  char err[MX_ERRBUF_LEN] = "";
  const char *v[] = { e->user_id, room_id };
  if (mx_db_begin(e->db, err))
    return MX_OK;
  mx_err rc = MX_OK;
  if (e2ee_db_int(e->db, "SELECT members_gen FROM e2ee_rooms WHERE acct=? AND room_id=?", 2, v, 0) != gen)
    rc = MX_ERR_CONFLICT;
  if (!rc)
    rc = e2ee_db_run(e->db, err, "DELETE FROM e2ee_members WHERE acct=? AND room_id=?", 2, v);
  const cJSON *m;
  cJSON_ArrayForEach(m, chunk)
  {
    const char *who = mx_json_str(m, "state_key");
    const char *ms = mx_json_str(mx_json_obj(m, "content"), "membership");
    const char *row[] = { e->user_id, room_id, who, ms };
    if (!rc && who && ms)
      rc = e2ee_db_run(e->db, err, "INSERT OR REPLACE INTO e2ee_members(acct, room_id, user_id, membership) "
                                   "VALUES(?,?,?,?)", 4, row);
  }
  if (!rc)
    rc = e2ee_db_run(e->db, err, "INSERT INTO e2ee_rooms(acct, room_id, members_known) VALUES(?,?,1) "
                                 "ON CONFLICT(acct, room_id) DO UPDATE SET members_known=1", 2, v);
  if (!rc)
    rc = mx_db_commit(e->db, err);
  if (rc) {
    mx_db_rollback(e->db);
    mx_debug(e->label, "members of %s not stored (%s)", room_id, rc == MX_ERR_CONFLICT ? "changed meanwhile" : err);
  }
  return rc == MX_ERR_CONFLICT ? rc : MX_OK;
}

static mx_err fetch_once(struct mx_e2ee *e, const char *room_id, int invited_too, cJSON *arr, char *err)
{
  const char *v[] = { e->user_id, room_id };
  int64_t gen = e2ee_db_int(e->db, "SELECT members_gen FROM e2ee_rooms WHERE acct=? AND room_id=?", 2, v, 0);
  char *esc = mx_api_escape(room_id);
  struct mx_buf path = MX_BUF_INIT(4096);
  mx_err rc = esc ? mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/members?not_membership=leave", esc)
                  : MX_ERR_NOMEM;
  free(esc);
  cJSON *resp = NULL;
  if (!rc)
    rc = mx_api_call(e->api, "GET", mx_buf_cstr(&path), NULL, NULL, NULL, &resp, err);
  mx_buf_release(&path);
  const cJSON *m;
  cJSON_ArrayForEach(m, (rc ? NULL : mx_json_arr(resp, "chunk")))
  add_user(arr, mx_json_str(m, "state_key"), mx_json_str(mx_json_obj(m, "content"), "membership"), invited_too);
  if (!rc)
    rc = seed(e, room_id, gen, mx_json_arr(resp, "chunk"));
  cJSON_Delete(resp);
  return rc;
}

static mx_err fetch(struct mx_e2ee *e, const char *room_id, int invited_too, cJSON *arr, char *err)
{
  mx_err rc = MX_ERR_CONFLICT;
  for (int i = 0; i < SEED_TRIES && rc == MX_ERR_CONFLICT; i++) {
    while (cJSON_GetArraySize(arr) > 0)
      cJSON_DeleteItemFromArray(arr, 0);
    rc = fetch_once(e, room_id, invited_too, arr, err);
  }
  /* still changing after SEED_TRIES: send to the latest answer, unstored */
  return rc == MX_ERR_CONFLICT ? MX_OK : rc;
}

/* Joined and invited members: like Element, an invited user gets the room
 * key too, so what is sent between the invite and the join (a greeting in a
 * new DM) is readable once they join; not when history_visibility is
 * "joined". Members who left are never included. */
mx_err e2ee_members_get(struct mx_e2ee *e, const char *room_id, cJSON **users, char *err)
{
  int invited_too = e2ee_room_keys_for_invited(e, room_id);
  const char *v[] = { e->user_id, room_id };
  int known = e2ee_db_int(e->db, "SELECT members_known FROM e2ee_rooms WHERE acct=? AND room_id=?", 2, v, 0) == 1;
  cJSON *arr = cJSON_CreateArray();
  mx_err rc = !arr ? MX_ERR_NOMEM
              : known ? stored(e, room_id, invited_too, arr, err)
                      : fetch(e, room_id, invited_too, arr, err);
  if (rc) {
    cJSON_Delete(arr);
    return rc;
  }
  *users = arr;
  return MX_OK;
}
