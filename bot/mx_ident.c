/* bot/mx_ident.c - identity start-up; see mx_ident.h. */
#include "mx_ident.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_ext.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_rooms.h"
#include "mx_store.h"
#include "mx_sync.h"
#include "mx_util.h"

mx_err mx_ident_init(struct mx_ident *id, struct mx_bot *bot, const struct mx_device_config *dev, char *err)
{
  memset(id, 0, sizeof(*id));
  id->bot = bot;
  id->dev = dev;
  id->user_id = dev->user_id;
  id->api = mx_api_new(bot->cfg->homeserver, dev->user_id, NULL);
  if (!id->api)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  mx_api_set_cancel(id->api, &bot->stopping);
  mx_api_set_idle_timeout(id->api, bot->cfg->http_idle_timeout_ms);
  mx_api_set_label(id->api, dev->name);
  mx_buf_init(&id->sync_body, MX_BUF_MAX_HTTP);
  id->retry_timer = -1;
  pthread_mutex_init(&id->crypto_lock, NULL);
  pthread_mutex_init(&id->turn_lock, NULL);
  pthread_cond_init(&id->turn_free, NULL);
  return MX_OK;
}

void mx_ident_release(struct mx_ident *id)
{
  mx_ext_ident_free(id);
  mx_api_free(id->api);
  free(id->device_id);
  free(id->filter_id);
  free(id->next_batch);
  free(id->alerts_room_id);
  mx_buf_release(&id->sync_body);
  pthread_mutex_destroy(&id->crypto_lock);
  pthread_mutex_destroy(&id->turn_lock);
  pthread_cond_destroy(&id->turn_free);
}

mx_err mx_ident_login(struct mx_api *api, sqlite3 *db, const char *user_id, const char *password_file,
                      const char *label, char **device_id, char *err)
{
  struct mx_buf pw = MX_BUF_INIT(4096);
  mx_err rc = mx_file_read(password_file, 4096, &pw, err);
  if (rc)
    return mx_fail(rc, err, "%s: cannot read the password file '%s'", label, password_file);
  char *pass = mx_buf_take(&pw);
  mx_rtrim(pass);
  cJSON *body = cJSON_CreateObject();
  cJSON_AddStringToObject(body, "type", "m.login.password");
  cJSON *ident = cJSON_AddObjectToObject(body, "identifier");
  cJSON_AddStringToObject(ident, "type", "m.id.user");
  cJSON_AddStringToObject(ident, "user", user_id);
  cJSON_AddStringToObject(body, "password", pass);
  char dname[128];
  snprintf(dname, sizeof(dname), "mxfleet %s", label);
  cJSON_AddStringToObject(body, "initial_device_display_name", dname);
  memset(pass, 0, strlen(pass));
  free(pass);
  cJSON *resp = NULL;
  struct mx_api_opts o = { 30000, 120000, 0 };
  rc = mx_api_call(api, "POST", "/_matrix/client/v3/login", body, &o, NULL, &resp, err);
  /* wipe the password copy inside the request body */
  cJSON *pwitem = cJSON_GetObjectItemCaseSensitive(body, "password");
  if (pwitem && pwitem->valuestring)
    memset(pwitem->valuestring, 0, strlen(pwitem->valuestring));
  cJSON_Delete(body);
  if (rc) {
    cJSON_Delete(resp);
    return rc;
  }
  const char *token = mx_json_str(resp, "access_token"), *device = mx_json_str(resp, "device_id");
  if (!token || !device) {
    cJSON_Delete(resp);
    return mx_fail(MX_ERR_INVALID, err, "login: response lacks access_token or device_id");
  }
  rc = mx_store_ident_save_login(db, user_id, device, token, err);
  if (!rc) {
    mx_api_set_token(api, token);
    *device_id = mx_strdup(device);
    mx_info(label, "logged in as %s, device %s", user_id, device);
  }
  cJSON_Delete(resp);
  return rc;
}

static mx_err login(struct mx_ident *id, sqlite3 *db, char *err)
{
  char *dev = NULL;
  mx_err rc = mx_ident_login(id->api, db, id->user_id, id->dev->password_file, id->dev->name, &dev, err);
  if (!rc) {
    free(id->device_id);
    id->device_id = dev;
  }
  return rc;
}

/* Uses the stored token when there is one (never a new device per start).
 * It is not checked here: that would cost a request per identity on every
 * start. The first /sync checks it; when the homeserver rejects it there
 * (or a start-up call does), the identity comes back here with
 * token_rejected set and logs in again. */
static mx_err restore_or_login(struct mx_ident *id, sqlite3 *db, struct mx_store_ident *st, char *err)
{
  mx_err rc = mx_store_ident_load(db, id->user_id, st, err);
  if (!rc && id->token_rejected) {
    /* The token was revoked (e.g. the device deleted by an admin): a new
     * login is a new device, so Element will see new keys. Say so. */
    mx_warn(id->dev->name, "stored access token rejected (M_UNKNOWN_TOKEN); logging in again as a new device");
    mx_store_ident_release(st);
    memset(st, 0, sizeof(*st));
    rc = MX_ERR_NOT_FOUND;
  }
  if (rc == MX_ERR_NOT_FOUND) {
    id->token_rejected = 0;
    id->token_unchecked = 0;
    rc = login(id, db, err);
    if (!rc)
      rc = mx_store_ident_load(db, id->user_id, st, err);
    return rc;
  }
  if (rc)
    return rc;
  mx_api_set_token(id->api, st->access_token);
  free(id->device_id);
  id->device_id = mx_strdup(st->device_id);
  id->token_unchecked = 1;
  return id->device_id ? MX_OK : MX_ERR_NOMEM;
}

static mx_err ensure_profile_and_filter(struct mx_ident *id, sqlite3 *db, struct mx_store_ident *st, char *err)
{
  char *eu = mx_api_escape(id->user_id);
  struct mx_buf path = MX_BUF_INIT(1024);
  mx_err rc = MX_OK;
  if (!st->displayname_set) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "displayname", id->dev->display_name ? id->dev->display_name : id->dev->name);
    rc = mx_buf_addf(&path, "/_matrix/client/v3/profile/%s/displayname", eu);
    if (!rc)
      rc = mx_api_call(id->api, "PUT", mx_buf_cstr(&path), b, NULL, NULL, NULL, err);
    cJSON_Delete(b);
    if (!rc)
      rc = mx_store_ident_set_int(db, id->user_id, "displayname_set", 1, err);
    mx_buf_reset(&path);
  }
  if (!rc && !st->filter_id) {
    /* Lazy-loaded members keep initial syncs small with many rooms; no
     * presence, no ephemeral noise; a generous timeline so a short outage
     * does not produce a gap ("limited") in a DM. */
    cJSON *f = cJSON_Parse("{\"presence\":{\"not_types\":[\"*\"]},\"account_data\":{\"not_types\":[\"*\"]},"
                           "\"room\":{\"state\":{\"lazy_load_members\":true},\"ephemeral\":{\"not_types\":[\"*\"]},"
                           "\"timeline\":{\"limit\":100,\"lazy_load_members\":true},"
                           "\"account_data\":{\"not_types\":[\"*\"]}}}");
    cJSON *resp = NULL;
    rc = mx_buf_addf(&path, "/_matrix/client/v3/user/%s/filter", eu);
    if (!rc)
      rc = mx_api_call(id->api, "POST", mx_buf_cstr(&path), f, NULL, NULL, &resp, err);
    const char *fid = resp ? mx_json_str(resp, "filter_id") : NULL;
    if (!rc && !fid)
      rc = mx_fail(MX_ERR_INVALID, err, "filter: response has no filter_id");
    if (!rc)
      rc = mx_store_ident_set(db, id->user_id, "filter_id", fid, err);
    if (!rc)
      st->filter_id = mx_strdup(fid);
    cJSON_Delete(f);
    cJSON_Delete(resp);
  }
  free(eu);
  mx_buf_release(&path);
  return rc;
}

void mx_ident_restart_later(struct mx_ident *id, int64_t delay_ms);

/* Start-up jobs queued ahead of the ones running: enough to keep every
 * worker busy, few enough that a sync response (queued on the same
 * workers) never waits behind the start-up of a whole fleet. */
#define MX_START_AHEAD 8

static void start_next(struct mx_bot *bot)
{
  size_t i = atomic_fetch_add(&bot->next_start, 1);
  if (i < bot->n_idents)
    mx_ident_start(&bot->idents[i]);
}

void mx_ident_start_all(struct mx_bot *bot)
{
  size_t ahead = bot->n_idents < MX_START_AHEAD ? bot->n_idents : MX_START_AHEAD;
  atomic_store(&bot->next_start, ahead);
  for (size_t i = 0; i < ahead; i++)
    mx_ident_start(&bot->idents[i]);
}

static void start_job(struct mx_worker *w, void *arg)
{
  struct mx_ident *id = arg;
  char err[MX_ERRBUF_LEN] = "";
  if (!id->start_chained) { /* the first start of this identity: queue the next one's */
    id->start_chained = 1;
    start_next(id->bot);
  }
  struct mx_store_ident st;
  memset(&st, 0, sizeof(st));
  mx_err rc = restore_or_login(id, w->db, &st, err);
  if (!rc)
    rc = ensure_profile_and_filter(id, w->db, &st, err);
  if (!rc) {
    free(id->filter_id);
    free(id->next_batch);
    id->filter_id = mx_strdup(st.filter_id);
    id->next_batch = mx_strdup(st.next_batch);
    id->first_sync_done = st.first_sync_done;
    rc = mx_ext_ident_start(id, w->db, err);
  }
  mx_store_ident_release(&st);
  if (!rc && id == &id->bot->idents[0] && id->bot->cfg->alerts_room) {
    char e2[MX_ERRBUF_LEN];
    if (mx_rooms_ensure_alerts(id, w->db, e2))
      mx_warn(id->dev->name, "alerts room %s: %s", id->bot->cfg->alerts_room, e2);
  }
  if (rc == MX_ERR_CANCELLED)
    return;
  if (rc == MX_ERR_AUTH && id->token_unchecked && strstr(err, "M_UNKNOWN_TOKEN")) {
    mx_ident_token_rejected(id);
    return;
  }
  if (rc == MX_ERR_HTTP || rc == MX_ERR_TIMEOUT || rc == MX_ERR_RATE_LIMITED || rc == MX_ERR_UNAVAILABLE) {
    /* homeserver down or overloaded: keep trying, the daemon stays up */
    int64_t delay = mx_api_backoff_ms(id->start_attempts < 6 ? id->start_attempts : 6);
    id->start_attempts++;
    mx_warn(id->dev->name, "start-up failed, retrying in %lld ms: %s", (long long)delay, err);
    mx_ident_restart_later(id, delay);
    return;
  }
  if (rc) {
    id->state = MX_IDENT_FAILED;
    mx_error(id->dev->name, "start-up failed: %s", err);
    return;
  }
  id->state = MX_IDENT_RUNNING;
  mx_rooms_run_actions(id, w->db);
  if (!id->inbox_recovered) { /* once per run, not again after a new login */
    id->inbox_recovered = 1;
    mx_sync_recover_inbox(id, w);
  }
  mx_sync_schedule(id, 0);
}

mx_err mx_ident_start(struct mx_ident *id)
{
  return mx_workers_submit(id->bot->workers, start_job, id);
}

void mx_ident_token_rejected(struct mx_ident *id)
{
  id->token_unchecked = 0;
  id->token_rejected = 1;
  id->state = MX_IDENT_STARTING;
  mx_ident_start(id);
}

static int64_t restart_timer(struct mx_loop *loop, void *ud)
{
  (void)loop;
  struct mx_ident *id = ud;
  if (!id->bot->stopping)
    mx_ident_start(id);
  return MX_LOOP_NOMORE;
}

static void restart_task(void *ud)
{
  struct mx_ident *id = ud;
  mx_loop_add_timer(id->bot->loop, id->start_delay_ms, restart_timer, id);
}

void mx_ident_restart_later(struct mx_ident *id, int64_t delay_ms)
{
  id->start_delay_ms = delay_ms;
  mx_loop_post(id->bot->loop, restart_task, id);
}
