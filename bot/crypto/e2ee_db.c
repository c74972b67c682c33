/*
 * bot/crypto/e2ee_db.c - the "e2ee" migrations and tiny SQL helpers.
 * Every table carries `acct` (our user id): many identities share one file.
 * Layer: bot/crypto on common/mx_db; knows nothing of libolm. Pickles stored
 * here are encrypted by libolm with the per-install pickle key; cross-signing
 * seeds are sealed with AES-256-GCM (e2ee_xsign.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_db.h"
#include "mx_util.h"

static const struct mx_migration migrations[] = {
  { 1,
    "CREATE TABLE e2ee_account(acct TEXT PRIMARY KEY, device_id TEXT NOT NULL, pickle TEXT NOT NULL,"
    " gen INTEGER NOT NULL, device_keys_uploaded INTEGER NOT NULL DEFAULT 0,"
    " fallback_rotated_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE e2ee_users(acct TEXT, user_id TEXT, tracking INTEGER NOT NULL DEFAULT 1,"
    " outdated INTEGER NOT NULL DEFAULT 1, master_key TEXT, self_signing_key TEXT,"
    " master_changed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(acct, user_id));"
    "CREATE TABLE e2ee_devices(acct TEXT, user_id TEXT, device_id TEXT, curve25519 TEXT NOT NULL,"
    " ed25519 TEXT NOT NULL, cross_signed INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(acct, user_id, device_id));"
    "CREATE INDEX e2ee_devices_curve ON e2ee_devices(acct, curve25519);"
    "CREATE TABLE e2ee_olm(acct TEXT, their_key TEXT, session_id TEXT, pickle TEXT NOT NULL,"
    " last_used_ms INTEGER NOT NULL, gen INTEGER NOT NULL, PRIMARY KEY(acct, their_key, session_id));"
    "CREATE TABLE e2ee_inbound(acct TEXT, room_id TEXT, session_id TEXT, sender_user TEXT NOT NULL,"
    " sender_key TEXT NOT NULL, ed25519 TEXT NOT NULL, first_index INTEGER NOT NULL, pickle TEXT NOT NULL,"
    " PRIMARY KEY(acct, room_id, session_id));"
    "CREATE TABLE e2ee_megolm_seen(acct TEXT, room_id TEXT, session_id TEXT, msg_index INTEGER,"
    " event_id TEXT NOT NULL, ts INTEGER, PRIMARY KEY(acct, room_id, session_id, msg_index));"
    "CREATE TABLE e2ee_outbound(acct TEXT, room_id TEXT, session_id TEXT NOT NULL, pickle TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, msg_count INTEGER NOT NULL, gen INTEGER NOT NULL,"
    " invalid INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(acct, room_id));"
    "CREATE TABLE e2ee_outbound_shared(acct TEXT, room_id TEXT, session_id TEXT, user_id TEXT,"
    " device_id TEXT, PRIMARY KEY(acct, room_id, session_id, user_id, device_id));"
    "CREATE TABLE e2ee_pending(acct TEXT, event_id TEXT, room_id TEXT NOT NULL, session_id TEXT NOT NULL,"
    " event TEXT NOT NULL, ready INTEGER NOT NULL DEFAULT 0, ts INTEGER NOT NULL,"
    " PRIMARY KEY(acct, event_id));"
    "CREATE TABLE e2ee_xsign(acct TEXT PRIMARY KEY, master TEXT NOT NULL, self_signing TEXT NOT NULL,"
    " user_signing TEXT NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE e2ee_dummy(acct TEXT, their_key TEXT, last_ms INTEGER NOT NULL, wanted INTEGER NOT NULL,"
    " PRIMARY KEY(acct, their_key));"
    "CREATE TABLE e2ee_rooms(acct TEXT, room_id TEXT, history_visibility TEXT,"
    " PRIMARY KEY(acct, room_id));"
    "CREATE TABLE e2ee_withheld(acct TEXT, user_id TEXT, device_id TEXT, PRIMARY KEY(acct, user_id, device_id));" },
  { 2,
    /* m.unverified is per session: told once per (session, device) */
    "CREATE TABLE e2ee_withheld_session(acct TEXT, room_id TEXT, session_id TEXT, user_id TEXT, device_id TEXT,"
    " PRIMARY KEY(acct, room_id, session_id, user_id, device_id));" },
  { 3,
    /* outgoing m.room_key_request per missing session; state 0 to send,
     * 1 sent (sent_ms), 2 key arrived: cancel. Incoming requests from our
     * own devices wait in e2ee_key_shares until maintain answers them. */
    "CREATE TABLE e2ee_key_requests(acct TEXT, room_id TEXT, session_id TEXT, sender_user TEXT NOT NULL,"
    " sender_key TEXT NOT NULL, request_id TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
    " sent_ms INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(acct, room_id, session_id));"
    "CREATE TABLE e2ee_key_shares(acct TEXT, user_id TEXT, device_id TEXT, request_id TEXT,"
    " room_id TEXT NOT NULL, session_id TEXT NOT NULL, PRIMARY KEY(acct, user_id, device_id, request_id));" },
  { 4,
    /* The operators' master keys are the trust root of every identity in
     * this file, so they are pinned once for all of them (not per acct).
     * source: tofu (first use), pin / repin (mxfleet trust). announced: the
     * first-use pin was posted to the alerts room. seen_master: the master
     * key the last /keys/query published, whatever the pin. */
    "CREATE TABLE e2ee_operator_pins(user_id TEXT PRIMARY KEY, master_key TEXT NOT NULL, source TEXT NOT NULL,"
    " pinned_ms INTEGER NOT NULL, announced INTEGER NOT NULL DEFAULT 0);"
    "ALTER TABLE e2ee_users ADD COLUMN seen_master TEXT;" },
  { 5,
    /* One copy of a Megolm session per sender key: a room member who shares
     * (or forwards) someone else's session no longer displaces the real
     * sender's copy, which made that sender's messages unreadable. */
    "CREATE TABLE e2ee_inbound_v5(acct TEXT, room_id TEXT, session_id TEXT, sender_user TEXT NOT NULL,"
    " sender_key TEXT NOT NULL, ed25519 TEXT NOT NULL, first_index INTEGER NOT NULL, pickle TEXT NOT NULL,"
    " PRIMARY KEY(acct, room_id, session_id, sender_key));"
    "INSERT INTO e2ee_inbound_v5 SELECT acct, room_id, session_id, sender_user, sender_key, ed25519, first_index,"
    " pickle FROM e2ee_inbound;"
    "DROP TABLE e2ee_inbound;"
    "ALTER TABLE e2ee_inbound_v5 RENAME TO e2ee_inbound;" },
  { 6,
    /* the room's own m.room.encryption rotation limits (0 = not set) */
    "ALTER TABLE e2ee_rooms ADD COLUMN rotation_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE e2ee_rooms ADD COLUMN rotation_msgs INTEGER NOT NULL DEFAULT 0;" },
  { 7,
    /* room members tracked from /sync (e2ee_members.c): no GET /members per
     * send. members_known: seeded and current; members_gen: member events
     * recorded, so a seed raced by the sync worker is not stored. */
    "CREATE TABLE e2ee_members(acct TEXT, room_id TEXT, user_id TEXT, membership TEXT NOT NULL,"
    " PRIMARY KEY(acct, room_id, user_id));"
    "ALTER TABLE e2ee_rooms ADD COLUMN members_known INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE e2ee_rooms ADD COLUMN members_gen INTEGER NOT NULL DEFAULT 0;" },
  { 8,
    /* what the homeserver already holds, so a restart uploads nothing twice:
     * keys_published, the device keys of this account; device_signed, the
     * "device_id ed25519" the self-signing key signed on the server */
    "ALTER TABLE e2ee_account ADD COLUMN keys_published INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE e2ee_xsign ADD COLUMN device_signed TEXT;" },
};

mx_err e2ee_db_migrate(sqlite3 *db, char *err)
{
  return mx_db_migrate(db, "e2ee", migrations, (int)(sizeof(migrations) / sizeof(migrations[0])), err);
}

static mx_err prep(sqlite3 *db, const char *sql, int n, const char *const *texts, sqlite3_stmt **st,
                   char *err)
{
  mx_err rc = mx_db_prepare(db, sql, st, err);
  if (rc)
    return rc;
  for (int i = 0; i < n; i++) {
    if (texts[i])
      sqlite3_bind_text(*st, i + 1, texts[i], -1, SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(*st, i + 1);
  }
  return MX_OK;
}

mx_err e2ee_db_run(sqlite3 *db, char *err, const char *sql, int n, const char *const *texts)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = prep(db, sql, n, texts, &st, err);
  if (rc)
    return rc;
  int s = sqlite3_step(st);
  if (s != SQLITE_DONE && s != SQLITE_ROW)
    rc = mx_fail(MX_ERR_DB, err, "e2ee store: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

char *e2ee_db_text(sqlite3 *db, const char *sql, int n, const char *const *texts)
{
  sqlite3_stmt *st = NULL;
  if (prep(db, sql, n, texts, &st, NULL))
    return NULL;
  char *out = NULL;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    out = mx_strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out;
}

int64_t e2ee_db_int(sqlite3 *db, const char *sql, int n, const char *const *texts, int64_t dflt)
{
  sqlite3_stmt *st = NULL;
  if (prep(db, sql, n, texts, &st, NULL))
    return dflt;
  int64_t v = dflt;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

mx_err e2ee_db_begin(sqlite3 *db, char *err)
{
  return mx_db_begin(db, err);
}
