/*
 * bot/mx_rooms.h - room membership decisions: auto-join invites only from
 * configured operators (others are rejected), mark DMs in m.direct, and
 * join or create the operator-alerts room. Decisions are stored as room
 * actions inside the sync transaction and carried out after its commit, so
 * a crash in between never loses an invite.
 */
#ifndef MX_ROOMS_H
#define MX_ROOMS_H

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "mx_bot.h"

/* Inside the sync transaction: decide about one invited room. */
mx_err mx_rooms_on_invite(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *room, char *err);
/* After commit: carry out pending joins/rejections (best effort, retried
 * after the next sync on transient errors). Returns how many are left to
 * retry (1 when the store could not be read; 0 when a run already in
 * progress on another thread takes them). */
int mx_rooms_run_actions(struct mx_ident *id, sqlite3 *db);
/* An operator's encrypted event waits for its room key: once per Megolm
 * session, tell them (after the commit) that it was not read yet. */
mx_err mx_rooms_note_undecryptable(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *ev,
                                   char *err);
/* Joins the configured alerts room by alias, creating it (operators
 * invited) when it does not exist; sets id->alerts_room_id. */
mx_err mx_rooms_ensure_alerts(struct mx_ident *id, sqlite3 *db, char *err);

/* Adds room_id to user_id's m.direct under `with` (read-modify-write). */
mx_err mx_rooms_mark_direct(struct mx_api *api, const char *user_id, const char *room_id, const char *with,
                            char *err);

#endif
