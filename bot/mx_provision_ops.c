/*
 * bot/mx_provision_ops.c - the Matrix half of onboarding (`mxfleet device
 * add`), handed to devices/provision as callbacks: log the new identity in
 * (the same store the daemon uses, so it keeps that device), bootstrap its
 * E2EE identity and cross-signing, and open an encrypted DM with each
 * operator with a greeting. Every step is idempotent: a second run finds
 * the stored login, the published keys, the m.direct room and the greeting
 * already sent (its transaction key), and changes nothing.
 */
#include "mx_provision_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_db.h"
#include "mx_e2ee.h"
#include "mx_ident.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_rooms.h"
#include "mx_send.h"
#include "mx_store.h"
#include "mx_util.h"
#include "prov.h"

struct session {
  sqlite3 *db;
  char *db_path;
  struct mx_api *api;
  char *device_id;
};

static void session_close(struct session *s)
{
  mx_db_close(s->db);
  mx_api_free(s->api);
  free(s->db_path);
  free(s->device_id);
  memset(s, 0, sizeof(*s));
}

/* The stored login of user_id, or a new password login (*created = 1). */
static mx_err session_open(const char *homeserver, const char *user_id, const char *password_file,
                           const char *data_dir, struct session *s, int *created, char *err)
{
  memset(s, 0, sizeof(*s));
  mx_err rc = mx_mkdir_p(data_dir, 0700, err);
  if (rc)
    return rc;
  s->db_path = mx_path_join(data_dir, "mxfleet.db");
  s->api = mx_api_new(homeserver, user_id, NULL);
  if (!s->db_path || !s->api)
    return MX_ERR_NOMEM;
  rc = mx_db_open(s->db_path, &s->db, err);
  if (!rc)
    rc = mx_store_migrate(s->db, err);
  if (rc)
    return rc;
  struct mx_store_ident st;
  rc = mx_store_ident_load(s->db, user_id, &st, err);
  if (rc == MX_OK) {
    mx_api_set_token(s->api, st.access_token);
    s->device_id = mx_strdup(st.device_id);
    mx_store_ident_release(&st);
    return MX_OK;
  }
  if (rc != MX_ERR_NOT_FOUND)
    return rc;
  if (created)
    *created = 1;
  return mx_ident_login(s->api, s->db, user_id, password_file, "onboarding", &s->device_id, err);
}

static mx_err open_e2ee(struct session *s, const char *user_id, const char *data_dir, struct mx_e2ee **e, char *err)
{
  struct mx_e2ee_opts o;
  memset(&o, 0, sizeof(o));
  o.db_path = s->db_path;
  o.data_dir = data_dir;
  o.user_id = user_id;
  o.device_id = s->device_id;
  o.api = s->api;
  o.require_verified_sender = 1;
  return mx_e2ee_open(&o, e, err);
}

static mx_err bootstrap_identity(void *ctx, const char *homeserver, const char *user_id, const char *password_file,
                                 const char *data_dir, int *created, char *err)
{
  (void)ctx;
  struct session s;
  struct mx_e2ee *e = NULL;
  mx_err rc = session_open(homeserver, user_id, password_file, data_dir, &s, created, err);
  if (!rc)
    rc = open_e2ee(&s, user_id, data_dir, &e, err);
  /* device keys, one-time keys, fallback key, cross-signing: published
   * once, found published on a re-run */
  if (!rc)
    rc = mx_e2ee_start(e, NULL, err);
  mx_e2ee_close(e);
  session_close(&s);
  return rc;
}

static mx_err forget_identity(void *ctx, const char *user_id, const char *data_dir, char *err)
{
  (void)ctx;
  char *path = mx_path_join(data_dir, "mxfleet.db");
  sqlite3 *db = NULL;
  mx_err rc = path ? mx_db_open(path, &db, err) : MX_ERR_NOMEM;
  if (!rc)
    rc = mx_store_migrate(db, err);
  static const char *tables[] = { "identities", "rooms", "room_actions", "inbox", "outbox" };
  for (size_t i = 0; !rc && i < sizeof(tables) / sizeof(tables[0]); i++) {
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE user_id=?", tables[i]);
    rc = mx_db_run(db, err, sql, "s", user_id);
  }
  mx_db_close(db);
  free(path);
  return rc;
}

/* The DM with operator_id from m.direct, if there is one we are in. */
static char *find_dm(struct session *s, const char *user_id, const char *operator_id)
{
  char *eu = mx_api_escape(user_id);
  struct mx_buf path = MX_BUF_INIT(4096);
  cJSON *direct = NULL;
  char *room = NULL, err[MX_ERRBUF_LEN];
  if (eu && !mx_buf_addf(&path, "/_matrix/client/v3/user/%s/account_data/m.direct", eu)
      && !mx_api_call(s->api, "GET", mx_buf_cstr(&path), NULL, NULL, NULL, &direct, err)) {
    const cJSON *list = mx_json_arr(direct, operator_id);
    const cJSON *r;
    cJSON_ArrayForEach(r, list) {
      if (cJSON_IsString(r) && !room)
        room = mx_strdup(r->valuestring);
    }
  }
  cJSON_Delete(direct);
  free(eu);
  mx_buf_release(&path);
  return room;
}

static mx_err create_dm(struct session *s, const char *operator_id, char **room, char *err)
{
  cJSON *b = cJSON_CreateObject();
  cJSON_AddStringToObject(b, "preset", "trusted_private_chat");
  cJSON_AddBoolToObject(b, "is_direct", 1);
  cJSON *inv = cJSON_AddArrayToObject(b, "invite");
  cJSON_AddItemToArray(inv, cJSON_CreateString(operator_id));
  cJSON *st = cJSON_AddArrayToObject(b, "initial_state");
  cJSON *enc = cJSON_CreateObject();
  cJSON_AddStringToObject(enc, "type", "m.room.encryption");
  cJSON_AddStringToObject(enc, "state_key", "");
  cJSON *c = cJSON_AddObjectToObject(enc, "content");
  cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
  cJSON_AddItemToArray(st, enc);
  cJSON *resp = NULL;
  struct mx_api_opts o = { 30000, 60000, 1 };
  mx_err rc = mx_api_call(s->api, "POST", "/_matrix/client/v3/createRoom", b, &o, NULL, &resp, err);
  const char *rid = resp ? mx_json_str(resp, "room_id") : NULL;
  if (!rc && !rid)
    rc = mx_fail(MX_ERR_INVALID, err, "createRoom: response has no room_id");
  if (!rc)
    *room = mx_strdup(rid);
  cJSON_Delete(b);
  cJSON_Delete(resp);
  return rc;
}

/* Sends the greeting encrypted, once: its transaction is keyed by the
 * operator, so a re-run finds it sent. */
static mx_err greet(struct session *s, struct mx_e2ee *e, const char *user_id, const char *room,
                    const char *operator_id, const char *greeting, int *created, char *err)
{
  char key[300], txn[40], ev[MX_EVENT_ID_LEN] = "";
  int sent = 0;
  snprintf(key, sizeof(key), "greet:%s", operator_id);
  mx_err rc = mx_store_outbox_txn(s->db, user_id, key, room, txn, &sent, ev, sizeof(ev), err);
  if (rc || sent)
    return rc;
  cJSON *content = cJSON_CreateObject(), *enc = NULL;
  cJSON_AddStringToObject(content, "msgtype", "m.notice");
  cJSON_AddStringToObject(content, "body", greeting);
  rc = mx_e2ee_encrypt(e, room, "m.room.message", content, &enc, err);
  char *er = mx_api_escape(room), *et = mx_api_escape(txn);
  struct mx_buf path = MX_BUF_INIT(4096);
  cJSON *resp = NULL;
  if (!rc)
    rc = er && et ? mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/send/m.room.encrypted/%s", er, et) : MX_ERR_NOMEM;
  if (!rc)
    rc = mx_api_call(s->api, "PUT", mx_buf_cstr(&path), enc, NULL, NULL, &resp, err);
  const char *event_id = resp ? mx_json_str(resp, "event_id") : NULL;
  if (!rc && event_id)
    rc = mx_store_outbox_sent(s->db, txn, event_id, err);
  if (!rc)
    *created = 1;
  cJSON_Delete(content);
  cJSON_Delete(enc);
  cJSON_Delete(resp);
  free(er);
  free(et);
  mx_buf_release(&path);
  return rc;
}

static mx_err open_dm_and_greet(void *ctx, const char *homeserver, const char *user_id, const char *password_file,
                                const char *data_dir, const char *operator_id, const char *greeting, int *created,
                                char *err)
{
  (void)ctx;
  struct session s;
  struct mx_e2ee *e = NULL;
  char *room = NULL;
  mx_err rc = session_open(homeserver, user_id, password_file, data_dir, &s, NULL, err);
  if (!rc)
    rc = open_e2ee(&s, user_id, data_dir, &e, err);
  if (!rc && !(room = find_dm(&s, user_id, operator_id))) {
    rc = create_dm(&s, operator_id, &room, err);
    if (!rc) {
      *created = 1;
      rc = mx_rooms_mark_direct(s.api, user_id, room, operator_id, err);
    }
    if (!rc)
      rc = mx_store_room_upsert(s.db, user_id, room, "join", err);
    if (!rc)
      rc = mx_store_room_set_int(s.db, user_id, room, "encrypted", 1, err);
    if (!rc)
      rc = mx_store_room_set_int(s.db, user_id, room, "is_dm", 1, err);
  }
  if (!rc)
    rc = greet(&s, e, user_id, room, operator_id, greeting, created, err);
  free(room);
  mx_e2ee_close(e);
  session_close(&s);
  return rc;
}

void mx_provision_ops_install(void)
{
  static const struct dev_prov_matrix_ops ops = { bootstrap_identity, forget_identity, open_dm_and_greet, NULL };
  dev_provision_set_matrix_ops(&ops);
}
