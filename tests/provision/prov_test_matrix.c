/*
 * prov_test_matrix.c - test-only Matrix callbacks for onboarding over plain
 * HTTP (the bot's E2EE implementation replaces them in production):
 * "bootstrap" logs in and out and leaves a marker file the undo removes;
 * "greet" finds or creates the DM with the operator (m.direct account data),
 * invites them and posts the greeting. Also HTTP helpers the tests use to
 * look at the homeserver as the operator and as an admin.
 */
#include "prov_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_json.h"
#include "mx_util.h"

long pt_call(const char *hs, const char *method, const char *path_fmt, const char *arg, const char *token,
             const cJSON *body, cJSON **resp)
{
  char err[MX_ERRBUF_LEN] = "";
  long st = 0;
  cJSON *r = NULL;
  char *url = prov_url(hs, path_fmt, arg);
  if (!url || prov_http(method, url, token, body, &st, &r, err) != MX_OK)
    st = -1;
  free(url);
  if (resp)
    *resp = r;
  else
    cJSON_Delete(r);
  return st;
}

static char *marker_path(const char *data_dir, const char *user_id)
{
  char rel[256];
  snprintf(rel, sizeof(rel), "e2ee/%s.json", user_id + 1);
  return mx_path_join(data_dir, rel);
}

static mx_err login_file(const char *hs, const char *user_id, const char *password_file, char **tok, char *err)
{
  char *pw = NULL;
  mx_err rc = prov_read_secret(password_file, "password file", &pw, err);
  if (!rc)
    rc = prov_hs_login(hs, user_id, pw, tok, err);
  free(pw);
  return rc;
}

static mx_err t_bootstrap(void *ctx, const char *hs, const char *user_id, const char *password_file,
                          const char *data_dir, int *created, char *err)
{
  struct pt_matrix *m = ctx;
  char *tok = NULL;
  mx_err rc = login_file(hs, user_id, password_file, &tok, err);
  if (rc)
    return rc;
  prov_hs_logout(hs, tok);
  free(tok);
  char *dir = mx_path_join(data_dir, "e2ee"), *p = marker_path(data_dir, user_id);
  rc = dir && p ? mx_mkdir_p(dir, 0700, err) : MX_ERR_NOMEM;
  if (!rc && !prov_file_exists(p)) {
    rc = mx_file_write(p, "{}", 2, 0600, err);
    *created = 1;
  }
  m->bootstraps++;
  free(dir);
  free(p);
  return rc;
}

static mx_err t_forget(void *ctx, const char *user_id, const char *data_dir, char *err)
{
  (void)ctx;
  char *p = marker_path(data_dir, user_id);
  mx_err rc = p ? prov_remove(p, err) : MX_ERR_NOMEM;
  free(p);
  return rc;
}

/* The DM already recorded in the agent's m.direct for operator, or NULL. */
static char *existing_dm(const char *hs, const char *tok, const char *user_id, const char *op)
{
  struct mx_buf path = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  cJSON *r = NULL;
  char *room = NULL;
  if (mx_buf_adds(&path, "/_matrix/client/v3/user/%s/account_data/m.direct"))
    return NULL;
  long st = pt_call(hs, "GET", mx_buf_cstr(&path), user_id, tok, NULL, &r);
  const cJSON *rooms = st == 200 ? mx_json_arr(r, op) : NULL;
  const cJSON *first = cJSON_GetArrayItem(rooms, 0);
  if (cJSON_IsString(first))
    room = mx_strdup(first->valuestring);
  cJSON_Delete(r);
  mx_buf_release(&path);
  return room;
}

static long create_dm(const char *hs, const char *tok, const char *op, char **room)
{
  cJSON *b = cJSON_CreateObject(), *r = NULL;
  cJSON_AddStringToObject(b, "preset", "trusted_private_chat");
  cJSON_AddBoolToObject(b, "is_direct", 1);
  cJSON *inv = cJSON_AddArrayToObject(b, "invite");
  cJSON_AddItemToArray(inv, cJSON_CreateString(op));
  long st = pt_call(hs, "POST", "/_matrix/client/v3/createRoom", NULL, tok, b, &r);
  const char *id = mx_json_str(r, "room_id");
  *room = st == 200 && id ? mx_strdup(id) : NULL;
  cJSON_Delete(b);
  cJSON_Delete(r);
  return st;
}

static long send_text(const char *hs, const char *tok, const char *room, const char *text)
{
  struct mx_buf p = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char *esc = prov_url("", "%s", room);
  cJSON *b = cJSON_CreateObject();
  cJSON_AddStringToObject(b, "msgtype", "m.text");
  cJSON_AddStringToObject(b, "body", text);
  long st = -1;
  if (esc && !mx_buf_addf(&p, "/_matrix/client/v3/rooms/%s/send/m.room.message/greet%lld", esc,
                          (long long)mx_now_ms()))
    st = pt_call(hs, "PUT", mx_buf_cstr(&p), NULL, tok, b, NULL);
  free(esc);
  cJSON_Delete(b);
  mx_buf_release(&p);
  return st;
}

static long set_direct(const char *hs, const char *tok, const char *user_id, const char *op, const char *room)
{
  cJSON *b = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(b, op);
  cJSON_AddItemToArray(arr, cJSON_CreateString(room));
  long st = pt_call(hs, "PUT", "/_matrix/client/v3/user/%s/account_data/m.direct", user_id, tok, b, NULL);
  cJSON_Delete(b);
  return st;
}

static mx_err t_greet(void *ctx, const char *hs, const char *user_id, const char *password_file,
                      const char *data_dir, const char *op, const char *greeting, int *created, char *err)
{
  struct pt_matrix *m = ctx;
  (void)data_dir;
  char *tok = NULL, *room = NULL;
  mx_err rc = login_file(hs, user_id, password_file, &tok, err);
  if (rc)
    return rc;
  room = existing_dm(hs, tok, user_id, op);
  if (!room) {
    long st = create_dm(hs, tok, op, &room);
    if (!room)
      rc = mx_fail(MX_ERR_HTTP, err, "createRoom: HTTP %ld", st);
    if (!rc && send_text(hs, tok, room, greeting) != 200)
      rc = mx_fail(MX_ERR_HTTP, err, "greeting send failed");
    if (!rc && set_direct(hs, tok, user_id, op, room) != 200)
      rc = mx_fail(MX_ERR_HTTP, err, "m.direct update failed");
    *created = !rc;
    m->rooms_created += !rc;
  }
  if (!rc)
    snprintf(m->last_room, sizeof(m->last_room), "%s", room);
  prov_hs_logout(hs, tok);
  free(tok);
  free(room);
  return rc;
}

void pt_matrix_ops(struct pt_matrix *m, struct dev_prov_matrix_ops *ops)
{
  memset(ops, 0, sizeof(*ops));
  ops->bootstrap_identity = t_bootstrap;
  ops->forget_identity = t_forget;
  ops->open_dm_and_greet = t_greet;
  ops->ctx = m;
}
