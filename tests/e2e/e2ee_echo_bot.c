/*
 * tests/e2e/e2ee_echo_bot.c - a minimal bot built only from mx_api and
 * mx_e2ee, used by the E2EE integration test before (and independently of)
 * the daemon. It syncs with the same crash-safety contract the daemon uses:
 * one transaction per sync holding the crypto state, a ledger of handled
 * event ids and next_batch; replies go out after the commit.
 *   "!ping" -> "pong" (trusted operator device) or a refusal notice
 *   encrypted file -> "file sha256 <hex>" or "file rejected: ..."
 *   "quiet:..." -> decrypted and logged, no reply
 * Environment: MX_HS_URL, BOT_USER, BOT_PW, [BOT_PW_FILE], BOT_DIR, OPERATORS (comma list),
 * REQUIRE_VERIFIED (default 1), EXCLUDE_INSECURE (default 0), CRASH_ON (body that triggers one SIGKILL
 * mid-transaction when BOT_DIR/crash-once exists). Stops on SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_api.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_e2ee.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
  (void)sig;
  stop = 1;
}

struct work {
  char room[256], event_id[256], body[512];
  struct mx_e2ee_sender sender;
  cJSON *file; /* owned */
};

static struct work works[64];
static int nworks;

static const char *env(const char *k, const char *dflt)
{
  const char *v = getenv(k);
  return v && *v ? v : dflt;
}

static char *kv_get(sqlite3 *db, const char *k)
{
  sqlite3_stmt *st = NULL;
  char *out = NULL;
  if (mx_db_prepare(db, "SELECT v FROM echo_state WHERE k=?", &st, NULL))
    return NULL;
  sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW)
    out = mx_strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out;
}

static void kv_set(sqlite3 *db, const char *k, const char *v)
{
  sqlite3_stmt *st = NULL;
  if (mx_db_prepare(db, "INSERT OR REPLACE INTO echo_state(k, v) VALUES(?,?)", &st, NULL))
    return;
  sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
  sqlite3_step(st);
  sqlite3_finalize(st);
}

static int login(sqlite3 *db, struct mx_api *api, const char *user, const char *pw)
{
  cJSON *body = cJSON_CreateObject(), *resp = NULL, *id = cJSON_AddObjectToObject(body, "identifier");
  cJSON_AddStringToObject(body, "type", "m.login.password");
  cJSON_AddStringToObject(id, "type", "m.id.user");
  cJSON_AddStringToObject(id, "user", user);
  cJSON_AddStringToObject(body, "password", pw);
  cJSON_AddStringToObject(body, "initial_device_display_name", "mxfleet e2ee echo bot");
  char err[MX_ERRBUF_LEN];
  mx_err rc = mx_api_call(api, "POST", "/_matrix/client/v3/login", body, NULL, NULL, &resp, err);
  cJSON_Delete(body);
  if (rc || !mx_json_str(resp, "access_token")) {
    fprintf(stderr, "echo-bot: login failed: %s\n", err);
    cJSON_Delete(resp);
    return -1;
  }
  kv_set(db, "token", mx_json_str(resp, "access_token"));
  kv_set(db, "device_id", mx_json_str(resp, "device_id"));
  kv_set(db, "user_id", mx_json_str(resp, "user_id"));
  cJSON_Delete(resp);
  return 0;
}

static void handle_plain(sqlite3 *db, const char *room, const char *eid, const cJSON *plain,
                         const struct mx_e2ee_sender *s, const char *self)
{
  const cJSON *c = mx_json_obj(plain, "content");
  const char *type = mx_json_str(plain, "type"), *body = mx_json_str(c, "body");
  if (!type || strcmp(type, "m.room.message") != 0 || strcmp(s->user_id, self) == 0 || nworks >= 64)
    return;
  /* test hook: die with SIGKILL in the middle of the sync transaction,
   * once (the marker file is removed first), to prove nothing is lost */
  const char *crash_on = getenv("CRASH_ON");
  char *marker = mx_path_join(env("BOT_DIR", "."), "crash-once");
  if (crash_on && body && strcmp(body, crash_on) == 0 && marker && unlink(marker) == 0)
    raise(SIGKILL);
  free(marker);
  /* the ledger makes a redelivered event (after a crash) a no-op */
  sqlite3_stmt *st = NULL;
  if (mx_db_prepare(db, "INSERT OR IGNORE INTO echo_handled(event_id) VALUES(?)", &st, NULL))
    return;
  sqlite3_bind_text(st, 1, eid, -1, SQLITE_STATIC);
  sqlite3_step(st);
  int fresh = sqlite3_changes(db) == 1;
  sqlite3_finalize(st);
  if (!fresh)
    return;
  if (body && strncmp(body, "quiet:", 6) == 0) { /* test traffic: logged, no reply */
    printf("echo-bot: quiet '%s'\n", body);
    return;
  }
  struct work *w = &works[nworks++];
  memset(w, 0, sizeof(*w));
  snprintf(w->room, sizeof(w->room), "%s", room);
  snprintf(w->event_id, sizeof(w->event_id), "%s", eid);
  snprintf(w->body, sizeof(w->body), "%s", body ? body : "");
  w->sender = *s;
  if (mx_json_obj(c, "file"))
    w->file = cJSON_Duplicate(mx_json_obj(c, "file"), 1);
  printf("echo-bot: received '%s' from %s/%s verified=%d\n", w->body, s->user_id, s->device_id, s->verified);
  fflush(stdout);
}

static void decrypt_one(struct mx_e2ee *e, sqlite3 *db, const char *room, const cJSON *ev, const char *self)
{
  cJSON *plain = NULL;
  struct mx_e2ee_sender s;
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc = mx_e2ee_decrypt(e, db, room, ev, &plain, &s, err);
  if (rc == MX_OK)
    handle_plain(db, room, mx_json_str(ev, "event_id"), plain, &s, self);
  else if (rc != MX_ERR_PENDING)
    printf("echo-bot: UTD %s: %s\n", mx_json_str(ev, "event_id") ? mx_json_str(ev, "event_id") : "?", err);
  cJSON_Delete(plain);
}

static mx_err process(struct mx_e2ee *e, sqlite3 *db, const cJSON *sync, const char *self, cJSON *joins,
                      char *err)
{
  mx_err rc = mx_e2ee_process_sync(e, db, sync, err);
  if (rc)
    return rc;
  const cJSON *r, *ev;
  cJSON_ArrayForEach(r, mx_json_obj(mx_json_obj(sync, "rooms"), "invite"))
  {
    cJSON_AddItemToArray(joins, cJSON_CreateString(r->string));
  }
  cJSON_ArrayForEach(r, mx_json_obj(mx_json_obj(sync, "rooms"), "join"))
  {
    cJSON_ArrayForEach(ev, mx_json_arr(mx_json_obj(r, "timeline"), "events"))
    {
      const char *t = mx_json_str(ev, "type");
      if (t && strcmp(t, "m.room.encrypted") == 0)
        decrypt_one(e, db, r->string, ev, self);
    }
  }
  cJSON *ready = NULL;
  rc = mx_e2ee_take_ready(e, db, &ready, err);
  cJSON_ArrayForEach(ev, ready)
  {
    decrypt_one(e, db, mx_json_str(ev, "room_id"), ev, self);
  }
  cJSON_Delete(ready);
  return rc;
}

static void send_text(struct mx_api *api, struct mx_e2ee *e, const char *room, const char *txn_seed, const char *text)
{
  cJSON *c = cJSON_CreateObject(), *enc = NULL;
  cJSON_AddStringToObject(c, "msgtype", "m.notice");
  cJSON_AddStringToObject(c, "body", text);
  char err[MX_ERRBUF_LEN] = "", txn[65];
  mx_err rc = mx_e2ee_encrypt(e, room, "m.room.message", c, &enc, err);
  cJSON_Delete(c);
  if (rc) {
    printf("echo-bot: encrypt failed: %s\n", err);
    return;
  }
  mx_sha256_hex(txn_seed, strlen(txn_seed), txn); /* same event -> same txn: the server dedupes */
  char *er = mx_api_escape(room);
  struct mx_buf path = MX_BUF_INIT(4096);
  if (er && !mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/send/m.room.encrypted/%s", er, txn))
    rc = mx_api_call(api, "PUT", mx_buf_cstr(&path), enc, NULL, NULL, NULL, err);
  printf("echo-bot: replied '%s' rc=%d %s\n", text, rc, rc ? err : "");
  fflush(stdout);
  free(er);
  mx_buf_release(&path);
  cJSON_Delete(enc);
}

static void run_work(struct mx_api *api, struct mx_e2ee *e, struct work *w)
{
  char reason[512], reply[700];
  if (w->file) {
    struct mx_buf plain;
    char err[MX_ERRBUF_LEN] = "", hex[65];
    mx_buf_init(&plain, MX_BUF_MAX_MEDIA);
    if (mx_e2ee_attachment_fetch(api, w->file, MX_BUF_MAX_MEDIA, &plain, err) == MX_OK) {
      mx_sha256_hex(plain.buf ? plain.buf : "", plain.len, hex);
      snprintf(reply, sizeof(reply), "file sha256 %s", hex);
    } else {
      snprintf(reply, sizeof(reply), "file rejected: %s", err);
    }
    mx_buf_release(&plain);
    cJSON_Delete(w->file);
    w->file = NULL;
  } else if (!mx_e2ee_sender_trusted(e, &w->sender, reason, sizeof(reason))) {
    snprintf(reply, sizeof(reply), "refused: %s", reason);
  } else if (strcmp(w->body, "!ping") == 0) {
    snprintf(reply, sizeof(reply), "pong");
  } else {
    snprintf(reply, sizeof(reply), "echo: %s", w->body);
  }
  send_text(api, e, w->room, w->event_id, reply);
}

static void join_all(struct mx_api *api, const cJSON *joins)
{
  const cJSON *j;
  cJSON_ArrayForEach(j, joins)
  {
    char *er = mx_api_escape(j->valuestring), err[MX_ERRBUF_LEN] = "";
    struct mx_buf path = MX_BUF_INIT(4096);
    cJSON *body = cJSON_CreateObject();
    if (er && !mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/join", er))
      printf("echo-bot: join %s rc=%d\n", j->valuestring,
             mx_api_call(api, "POST", mx_buf_cstr(&path), body, NULL, NULL, NULL, err));
    cJSON_Delete(body);
    free(er);
    mx_buf_release(&path);
  }
  fflush(stdout);
}

static int one_sync(struct mx_api *api, struct mx_e2ee *e, sqlite3 *db, const char *self)
{
  char *since = kv_get(db, "next_batch"), *es = since ? mx_api_escape(since) : NULL;
  struct mx_buf path = MX_BUF_INIT(4096);
  char err[MX_ERRBUF_LEN] = "";
  if (mx_buf_addf(&path, "/_matrix/client/v3/sync?timeout=1000%s%s", es ? "&since=" : "", es ? es : ""))
    return -1;
  free(es);
  free(since);
  struct mx_api_opts o = { 40000, 60000, 0 };
  cJSON *resp = NULL, *joins = cJSON_CreateArray();
  mx_err rc = mx_api_call(api, "GET", mx_buf_cstr(&path), NULL, &o, NULL, &resp, err);
  mx_buf_release(&path);
  if (!rc)
    rc = mx_db_begin(db, err);
  if (!rc) {
    nworks = 0;
    rc = process(e, db, resp, self, joins, err);
    if (!rc && mx_json_str(resp, "next_batch"))
      kv_set(db, "next_batch", mx_json_str(resp, "next_batch"));
    if (!rc)
      rc = mx_db_commit(db, err);
    if (rc) {
      mx_db_rollback(db);
      mx_e2ee_sync_aborted(e);
      nworks = 0;
    }
  }
  cJSON_Delete(resp);
  if (rc)
    printf("echo-bot: sync failed: %s\n", err);
  join_all(api, joins);
  cJSON_Delete(joins);
  for (int i = 0; i < nworks; i++)
    run_work(api, e, &works[i]);
  if (mx_e2ee_maintain(e, err))
    printf("echo-bot: maintain: %s\n", err);
  fflush(stdout);
  return rc ? -1 : 0;
}

static int setup(sqlite3 *db, struct mx_api *api, char **user_id, char **device_id)
{
  char err[MX_ERRBUF_LEN];
  if (mx_db_exec(db, "CREATE TABLE IF NOT EXISTS echo_state(k TEXT PRIMARY KEY, v TEXT);"
                     "CREATE TABLE IF NOT EXISTS echo_handled(event_id TEXT PRIMARY KEY)", err))
    return -1;
  char *tok = kv_get(db, "token");
  if (!tok && login(db, api, env("BOT_USER", "bot"), env("BOT_PW", "pw")))
    return -1;
  free(tok);
  tok = kv_get(db, "token");
  mx_api_set_token(api, tok);
  free(tok);
  *user_id = kv_get(db, "user_id");
  *device_id = kv_get(db, "device_id");
  return *user_id && *device_id ? 0 : -1;
}

int main(void)
{
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *dir = env("BOT_DIR", ".");
  char *dbp = mx_path_join(dir, "bot.db"), *user_id = NULL, *device_id = NULL, *ops = mx_strdup(env("OPERATORS", ""));
  sqlite3 *db = NULL;
  char err[MX_ERRBUF_LEN] = "";
  struct mx_api *api = mx_api_new(env("MX_HS_URL", "http://127.0.0.1:8008"), NULL, NULL);
  struct mx_e2ee *e = NULL;
  int rc = 1;
  const char *oplist[16];
  size_t nops = 0;
  for (char *p = ops, *save = NULL, *t; (t = strtok_r(p, ",", &save)) && nops < 16; p = NULL)
    oplist[nops++] = t;
  if (mx_db_open(dbp, &db, err) || setup(db, api, &user_id, &device_id))
    goto cleanup;
  struct mx_e2ee_opts o = { .db_path = dbp, .data_dir = dir, .user_id = user_id, .device_id = device_id,
                            .api = api, .operators = oplist, .n_operators = nops,
                            /* UIA for cross-signing: from a file when BOT_PW_FILE is set */
                            .password = getenv("BOT_PW_FILE") ? NULL : env("BOT_PW", "pw"),
                            .password_file = getenv("BOT_PW_FILE"),
                            .require_verified_sender = atoi(env("REQUIRE_VERIFIED", "1")),
                            .exclude_insecure_devices = atoi(env("EXCLUDE_INSECURE", "0")) };
  char *since = kv_get(db, "next_batch");
  if (mx_e2ee_open(&o, &e, err) || mx_e2ee_start(e, since, err)) {
    free(since);
    fprintf(stderr, "echo-bot: e2ee: %s\n", err);
    goto cleanup;
  }
  free(since);
  printf("echo-bot: ready %s %s\n", user_id, device_id);
  while (!stop)
    one_sync(api, e, db, user_id);
  rc = 0;
cleanup:
  mx_e2ee_close(e);
  mx_db_close(db);
  mx_api_free(api);
  mx_api_thread_done();
  free(dbp);
  free(user_id);
  free(device_id);
  free(ops);
  return rc;
}
