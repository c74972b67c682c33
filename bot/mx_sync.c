/* bot/mx_sync.c - long-poll on the loop, processing on a worker; see mx_sync.h. */
#include "mx_sync.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_commands.h"
#include "mx_db.h"
#include "mx_ext.h"
#include "mx_ident.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_metrics.h"
#include "mx_rooms.h"
#include "mx_send.h"
#include "mx_store.h"
#include "mx_util.h"

/* An idle identity's long-poll returns empty every sync_timeout_ms; with
 * 1,000 identities that is 30 syncs a second, so an empty one must cost
 * almost nothing. Its token is kept in memory only: a batch that writes
 * anything stores its token in the same transaction, so the stored token
 * is never past an event that was not handled, and a restart from an
 * older one only replays syncs that had nothing in them. A clean stop
 * stores the tokens kept in memory (mx_sync_store_tokens); for a crash,
 * a token is stored anyway after this long, so the restart does not start
 * far back. */
#define MX_SYNC_TOKEN_MAX_AGE_MS (60 * 60 * 1000)
/* The store sweeps (room actions, kept sends, the crypto store's upkeep)
 * run after a batch that wrote something and when a room action or a kept
 * send waits. What is left for them then is timed in tens of minutes (key
 * request retries, unwedging once an hour, expiring week-old queued
 * events): they run this often while the crypto store holds such work
 * (mx_ext_sweep_waits), and only hourly, as a net, while it holds none. */
#define MX_SYNC_SWEEP_MS (10 * 60 * 1000)
#define MX_SYNC_IDLE_SWEEP_MS (60 * 60 * 1000)

/* ---- loop thread: the long-poll ---- */

static size_t on_sync_body(char *data, size_t size, size_t nmemb, void *ud)
{
  struct mx_ident *id = ud;
  size_t n = size * nmemb;
  return mx_buf_add(&id->sync_body, data, n) ? 0 : n;
}

/* Keeps Retry-After: a 429 may carry the wait only there (the spec's
 * preferred place since v1.10; retry_after_ms in the body is deprecated). */
static size_t on_sync_header(char *data, size_t size, size_t nmemb, void *ud)
{
  struct mx_ident *id = ud;
  size_t n = size * nmemb;
  mx_api_header_value(data, n, "retry-after", id->sync_retry_after, sizeof(id->sync_retry_after));
  return n;
}

struct sync_job {
  struct mx_ident *id;
  cJSON *resp; /* owned */
};

static void start_sync(void *ud);
static void process_job(struct mx_worker *w, void *arg);

static int64_t retry_timer_cb(struct mx_loop *loop, void *ud)
{
  (void)loop;
  struct mx_ident *id = ud;
  id->retry_timer = -1;
  start_sync(id);
  return MX_LOOP_NOMORE;
}

static void schedule_task(void *ud)
{
  struct mx_ident *id = ud;
  start_sync(id);
}

struct delayed {
  struct mx_ident *id;
  int64_t delay;
};

static void schedule_delayed_task(void *ud)
{
  struct delayed *d = ud;
  if (d->id->retry_timer < 0)
    d->id->retry_timer = mx_loop_add_timer(d->id->bot->loop, d->delay, retry_timer_cb, d->id);
  free(d);
}

void mx_sync_schedule(struct mx_ident *id, int64_t delay_ms)
{
  if (delay_ms <= 0) {
    mx_loop_post(id->bot->loop, schedule_task, id);
    return;
  }
  struct delayed *d = malloc(sizeof(*d));
  if (!d)
    return;
  d->id = id;
  d->delay = delay_ms;
  if (mx_loop_post(id->bot->loop, schedule_delayed_task, d))
    free(d);
}

static void on_sync_done(void *ud, CURL *easy, CURLcode res);
static void sync_ended(struct mx_ident *id, CURL *easy, CURLcode res, int hung);

static int64_t watch_period_ms(const struct mx_bot *bot)
{
  int64_t p = bot->cfg->http_idle_timeout_ms / 4;
  return p < 250 ? 250 : p > 5000 ? 5000 : p;
}

/* Abandons the long-polls past their deadline, as a hung request. This is
 * one sweep over the deadlines every few seconds rather than curl's
 * CURLOPT_TIMEOUT_MS: that puts every transfer in curl's timer tree (a
 * splay tree per multi handle), which each curl_multi_socket_action then
 * splays to its smallest node; with a long-poll always open per identity
 * that walk over cold memory was a sixth of the idle CPU at 1,000
 * identities (perf, bench/bot/identities.py --restart-idle). Abandoning a
 * few seconds late costs nothing: the request is being given up on. */
static int64_t watch_syncs(struct mx_loop *loop, void *ud)
{
  struct mx_bot *bot = ud;
  if (bot->stopping)
    return MX_LOOP_NOMORE;
  int64_t now = mx_mono_ms();
  for (size_t i = 0; i < bot->n_idents; i++) {
    struct mx_ident *id = &bot->idents[i];
    if (!bot->sync_deadlines[i] || now < bot->sync_deadlines[i] || !id->sync_easy)
      continue;
    CURL *easy = id->sync_easy;
    mx_loop_remove_transfer(loop, easy);
    sync_ended(id, easy, CURLE_OPERATION_TIMEDOUT, 1);
  }
  return watch_period_ms(bot);
}

void mx_sync_watch_start(struct mx_bot *bot)
{
  mx_loop_add_timer(bot->loop, watch_period_ms(bot), watch_syncs, bot);
}

static void start_sync(void *ud)
{
  struct mx_ident *id = ud;
  if (id->bot->stopping || id->sync_easy)
    return;
  struct mx_buf url = MX_BUF_INIT(8192);
  char *since = id->next_batch ? mx_api_escape(id->next_batch) : NULL;
  /* The first sync of a run returns at once (catch up, then report live);
   * later ones long-poll. */
  int timeout = id->next_batch && id->sync_live ? id->bot->longpoll.len_ms : 0;
  mx_err rc = mx_buf_addf(&url, "%s/_matrix/client/v3/sync?filter=%s&timeout=%d&set_presence=offline%s%s",
                          id->bot->cfg->homeserver, id->filter_id ? id->filter_id : "", timeout,
                          since ? "&since=" : "", since ? since : "");
  free(since);
  /* One handle per identity for all its long-polls: a fresh one per
   * renewal cost an allocation and set-up of curl's whole per-transfer
   * state, 33 times a second at 1,000 identities, and it also keeps the
   * transfer in the same loop shard as its kept-alive connection. */
  CURL *c = rc ? NULL : id->sync_handle ? id->sync_handle : curl_easy_init();
  if (!c) {
    mx_buf_release(&url);
    mx_sync_schedule(id, 1000);
    return;
  }
  if (!id->sync_handle) {
    id->sync_handle = c;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_sync_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, id);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_sync_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, id);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    /* Every identity has one of these open all the time, and an idle
     * long-poll answers a few hundred bytes: a 4 KiB receive buffer instead
     * of curl's 16 KiB saves 12 MB resident at 1,000 identities (a big
     * catch-up sync just takes more reads). */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 4096L);
  }
  /* the body of a failed sync is still held: free it, keep the cap */
  mx_buf_release(&id->sync_body);
  char auth[2048];
  mx_api_bearer_header(id->api, auth, sizeof(auth)); /* a new login changes it */
  id->sync_headers = curl_slist_append(NULL, auth);
  memset(auth, 0, sizeof(auth));
  curl_easy_setopt(c, CURLOPT_URL, mx_buf_cstr(&url));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, id->sync_headers);
  id->sync_retry_after[0] = '\0';
  mx_buf_release(&url);
  id->sync_easy = c;
  id->sync_started_ms = mx_mono_ms();
  /* the server holds the request up to `timeout` and may say nothing
   * meanwhile; past that, silence for http_idle_timeout_ms means it hung
   * (watch_syncs, not CURLOPT_TIMEOUT_MS: see there) */
  id->sync_asked_ms = timeout;
  id->bot->sync_deadlines[id - id->bot->idents] = id->sync_started_ms + timeout + id->bot->cfg->http_idle_timeout_ms;
  if (mx_loop_add_transfer(id->bot->loop, c, on_sync_done, id)) {
    curl_slist_free_all(id->sync_headers);
    id->sync_headers = NULL;
    id->sync_easy = NULL;
    mx_sync_schedule(id, 1000);
  }
}

void mx_sync_abort(struct mx_ident *id)
{
  if (id->retry_timer >= 0) {
    mx_loop_del_timer(id->bot->loop, id->retry_timer);
    id->retry_timer = -1;
  }
  if (id->sync_easy) {
    mx_loop_remove_transfer(id->bot->loop, id->sync_easy);
    curl_slist_free_all(id->sync_headers);
    id->sync_headers = NULL;
    id->sync_easy = NULL;
  }
  curl_easy_cleanup(id->sync_handle);
  id->sync_handle = NULL;
}

static void sync_failed(struct mx_ident *id, long status, int64_t retry_after)
{
  id->sync_failures++;
  id->sync_live = 0;
  mx_metrics_inc(id->bot->metrics, id->dev->name, MX_M_SYNC_ERRORS);
  int64_t delay = retry_after >= 0 ? retry_after : mx_api_backoff_ms(id->sync_failures - 1);
  if (status == 401 && id->token_unchecked) {
    /* the first /sync with the stored token is its check: log in again */
    mx_ident_token_rejected(id);
    return;
  }
  if (status == 401) {
    /* M_UNKNOWN_TOKEN: retrying with the same token cannot help */
    id->state = MX_IDENT_FAILED;
    mx_error(id->dev->name, "sync: access token rejected (http 401); restart mxfleet to log in again");
    return;
  }
  mx_warn(id->dev->name, "sync failed (http %ld), retrying in %lld ms", status, (long long)delay);
  id->retry_timer = mx_loop_add_timer(id->bot->loop, delay, retry_timer_cb, id);
}

static int empty_obj(const cJSON *parent, const char *key)
{
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);
  return !o || !o->child;
}

/* The token kept in memory is stored anyway (MX_SYNC_TOKEN_MAX_AGE_MS). */
static int token_due(const struct mx_ident *id, int64_t now)
{
  return !id->token_stored_ms || now - id->token_stored_ms >= MX_SYNC_TOKEN_MAX_AGE_MS;
}

static int sweep_due(struct mx_ident *id, int64_t now)
{
  return !id->swept_ms ||
         now - id->swept_ms >= (mx_ext_sweep_waits(id) ? MX_SYNC_SWEEP_MS : MX_SYNC_IDLE_SWEEP_MS);
}

/* An idle long-poll's answer: nothing in it that process_job would store,
 * and nothing waiting for the sweeps, so it is handled right here on the
 * loop thread (its token kept in memory, see MX_SYNC_TOKEN_MAX_AGE_MS).
 * No job of this identity runs meanwhile: the next sync starts only when
 * the last one is done, so the sync worker's fields are safe to read. */
static int quiet_sync(struct mx_ident *id, const cJSON *resp)
{
  int64_t now = mx_mono_ms();
  if (!id->first_sync_done || token_due(id, now) || sweep_due(id, now) || id->actions_left ||
      atomic_load(&id->held_gen) != id->held_flushed || id->store_full_since_ms)
    return 0;
  const cJSON *rooms = mx_json_obj(resp, "rooms");
  const cJSON *lists = mx_json_obj(resp, "device_lists");
  if (!empty_obj(rooms, "join") || !empty_obj(rooms, "invite") || !empty_obj(rooms, "leave") ||
      !empty_obj(rooms, "knock") || !empty_obj(mx_json_obj(resp, "to_device"), "events") ||
      !empty_obj(lists, "changed") || !empty_obj(lists, "left"))
    return 0;
  return mx_ext_sync_quiet(id, resp);
}

static void on_sync_done(void *ud, CURL *easy, CURLcode res)
{
  sync_ended(ud, easy, res, 0);
}

/* A stretched long-poll cut by something between the bot and the homeserver
 * (mx_longpoll.h): asked again at once, at the length now in force. */
static int longpoll_cut(struct mx_ident *id, int64_t elapsed, int hung, long status, CURLcode res)
{
  struct mx_bot *bot = id->bot;
  int shortened = 0;
  if (!mx_longpoll_cut(&bot->longpoll, id->sync_asked_ms, elapsed, hung, &shortened))
    return 0;
  char why[96];
  if (hung)
    snprintf(why, sizeof(why), "no answer");
  else if (res != CURLE_OK)
    snprintf(why, sizeof(why), "%s", curl_easy_strerror(res));
  else
    snprintf(why, sizeof(why), "http %ld", status);
  if (shortened) {
    atomic_store(&bot->longpoll_ms, bot->longpoll.len_ms);
    mx_info(NULL, "sync: a long-poll of %d ms was cut after %lld ms (%s) by something between mxfleet and the "
            "homeserver; long-polls now last %d ms (bot.sync_timeout_max_ms)", id->sync_asked_ms,
            (long long)elapsed, why, bot->longpoll.len_ms);
  } else {
    mx_debug(id->dev->name, "sync: a long-poll of %d ms was cut after %lld ms (%s); asked again for %d ms",
             id->sync_asked_ms, (long long)elapsed, why, bot->longpoll.len_ms);
  }
  start_sync(id);
  return 1;
}

/* A /sync ended: by curl (on_sync_done), or abandoned as hung (watch_syncs). */
static void sync_ended(struct mx_ident *id, CURL *easy, CURLcode res, int hung)
{
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(id->sync_headers); /* the handle is kept for the next one */
  id->sync_headers = NULL;
  id->sync_easy = NULL;
  id->bot->sync_deadlines[id - id->bot->idents] = 0;
  id->sync_received_us = mx_mono_us();
  int64_t elapsed = mx_mono_ms() - id->sync_started_ms;
  mx_metrics_observe_ms(id->bot->metrics, id->dev->name, MX_H_SYNC, elapsed);
  if (id->bot->stopping)
    return;
  if ((res != CURLE_OK || status >= 500 || status == 408) && longpoll_cut(id, elapsed, hung, status, res))
    return;
  if (res != CURLE_OK || status != 200) {
    int64_t retry_after = -1;
    if (status == 429) {
      cJSON *j = cJSON_ParseWithLength(mx_buf_cstr(&id->sync_body), id->sync_body.len);
      retry_after = mx_api_retry_after_ms(id->sync_retry_after, j);
      cJSON_Delete(j);
    }
    if (hung)
      mx_warn(id->dev->name, "sync: the homeserver did not answer within the long-poll plus %d ms "
              "(http_idle_timeout_ms): it hung", id->bot->cfg->http_idle_timeout_ms);
    else if (res != CURLE_OK)
      mx_warn(id->dev->name, "sync: %s", curl_easy_strerror(res));
    sync_failed(id, status, retry_after);
    return;
  }
  cJSON *resp = cJSON_ParseWithLength(mx_buf_cstr(&id->sync_body), id->sync_body.len);
  mx_buf_release(&id->sync_body);
  if (!resp || !mx_json_str(resp, "next_batch")) {
    cJSON_Delete(resp);
    mx_warn(id->dev->name, "sync: response is not json with next_batch");
    sync_failed(id, status, -1);
    return;
  }
  id->sync_failures = 0;
  id->token_unchecked = 0;
  if (mx_longpoll_answered(&id->bot->longpoll, id->sync_asked_ms, elapsed)) {
    atomic_store(&id->bot->longpoll_ms, id->bot->longpoll.len_ms);
    mx_debug(NULL, "sync: long-polls held %d times in full: stretched to %d ms", MX_LONGPOLL_HOLDS,
             id->bot->longpoll.len_ms);
  }
  if (quiet_sync(id, resp)) {
    /* nothing to store or do: no worker, no transaction */
    const char *next = mx_json_str(resp, "next_batch");
    char *nb = mx_strdup(next);
    if (nb) {
      free(id->next_batch);
      id->next_batch = nb;
      id->token_unsaved = 1;
      id->last_sync_ok_ms = mx_now_ms();
      id->sync_live = 1;
      mx_metrics_inc(id->bot->metrics, id->dev->name, MX_M_SYNCS);
      cJSON_Delete(resp);
      start_sync(id);
      return;
    }
  }
  struct sync_job *job = malloc(sizeof(*job));
  if (!job) {
    cJSON_Delete(resp);
    sync_failed(id, 0, -1);
    return;
  }
  job->id = id;
  job->resp = resp;
  if (mx_workers_submit(id->bot->workers, process_job, job)) {
    cJSON_Delete(resp); /* shutting down */
    free(job);
  }
}

/* ---- worker: processing one sync response ---- */

static void batch_add(struct mx_sync_batch *b, struct mx_msg *m)
{
  if (b->n == b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 8;
    struct mx_msg **nm = realloc(b->msgs, nc * sizeof(*nm));
    if (!nm) {
      mx_msg_free(m);
      return;
    }
    b->msgs = nm;
    b->cap = nc;
  }
  b->msgs[b->n++] = m;
}

void mx_sync_batch_free(struct mx_sync_batch *b)
{
  for (size_t i = 0; i < b->n; i++)
    mx_msg_free(b->msgs[i]);
  free(b->msgs);
  b->msgs = NULL;
  b->n = b->cap = 0;
}

/* Returns the message's text body, or NULL for events that are not commands
 * (notices from other bots, edits, unsupported msgtypes). */
static const char *command_body(const char *type, const cJSON *content)
{
  if (strcmp(type, "m.reaction") == 0)
    return "";
  const char *msgtype = mx_json_str(content, "msgtype");
  const cJSON *rel = mx_json_obj(content, "m.relates_to");
  const char *rel_type = rel ? mx_json_str(rel, "rel_type") : NULL;
  if (rel_type && strcmp(rel_type, "m.replace") == 0)
    return NULL;
  if (!msgtype || (strcmp(msgtype, "m.text") != 0 && strcmp(msgtype, "m.audio") != 0))
    return NULL;
  const char *body = mx_json_str(content, "body");
  return body ? body : NULL;
}

static struct mx_msg *new_msg(struct mx_ident *id, const char *room_id, const char *event_id, const char *sender,
                              const struct mx_sender_info *si, int64_t ts, const char *body,
                              const cJSON *event_plain)
{
  const char *sender_device = si->device_id;
  int verified = si->verified;
  struct mx_msg *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
  m->id = id;
  m->event_id = mx_strdup(event_id);
  m->room_id = mx_strdup(room_id);
  m->sender = mx_strdup(sender);
  m->sender_device = sender_device && *sender_device ? mx_strdup(sender_device) : NULL;
  m->body = mx_strdup(body);
  m->content = cJSON_Duplicate(event_plain, 1);
  m->origin_ts = ts;
  m->verified = verified;
  m->encrypted = si->encrypted;
  m->sender_key = si->sender_key[0] ? mx_strdup(si->sender_key) : NULL;
  m->sender_ed25519 = si->ed25519[0] ? mx_strdup(si->ed25519) : NULL;
  if (!m->event_id || !m->room_id || !m->sender || !m->body || !m->content) {
    mx_msg_free(m);
    return NULL;
  }
  return m;
}

/* The Matrix spec caps an event at 65536 bytes of canonical JSON; a
 * homeserver must refuse anything bigger, so a bigger one is not genuine. */
#define MX_EVENT_MAX_BYTES 65536

/* Adds a rough count of j's JSON bytes to *n, stopping once past limit
 * (so a hostile 50 MB event costs no more than the limit to measure). */
static void json_size(const cJSON *j, size_t limit, size_t *n)
{
  for (; j && *n <= limit; j = j->next) {
    *n += (j->string ? strlen(j->string) + 4 : 0) + 2;
    if (cJSON_IsString(j))
      *n += strlen(j->valuestring);
    else if (cJSON_IsNumber(j))
      *n += 20;
    json_size(j->child, limit, n);
  }
}

/* NULL when ev has what every event must have with the right JSON types,
 * else the name of the first field that does not (for the log line). */
static const char *malformed_field(const cJSON *ev)
{
  static const char *const strings[] = { "type", "sender", "event_id" };
  if (!cJSON_IsObject(ev))
    return "the event itself (not a JSON object)";
  for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ev, strings[i])))
      return strings[i];
  }
  if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(ev, "origin_server_ts")))
    return "origin_server_ts";
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(ev, "content");
  if (content && !cJSON_IsObject(content))
    return "content";
  /* absent (a redacted message) is fine; present with another type is not */
  const cJSON *msgtype = cJSON_GetObjectItemCaseSensitive(content, "msgtype");
  const cJSON *body = cJSON_GetObjectItemCaseSensitive(content, "body");
  if (msgtype && !cJSON_IsString(msgtype))
    return "content.msgtype";
  if (body && !cJSON_IsString(body))
    return "content.body";
  return NULL;
}

/* Hostile or corrupt input gets a clear log line and is skipped; the rest
 * of the sync goes on. Returns 1 when ev must be skipped. */
static int skip_bad_event(struct mx_ident *id, const char *room_id, const cJSON *ev)
{
  const char *event_id = cJSON_IsObject(ev) ? mx_json_str(ev, "event_id") : NULL;
  const char *bad = malformed_field(ev);
  if (bad) {
    mx_warn(id->dev->name, "sync: skipped a malformed event in %s: expected %s of the right JSON type (event %s)",
            room_id, bad, event_id ? event_id : "without an ID");
    return 1;
  }
  size_t n = 0;
  json_size(ev->child, MX_EVENT_MAX_BYTES, &n);
  if (n > MX_EVENT_MAX_BYTES) {
    mx_warn(id->dev->name, "sync: skipped event %s in %s: over the %d-byte limit of a Matrix event", event_id,
            room_id, MX_EVENT_MAX_BYTES);
    return 1;
  }
  return 0;
}

/* One timeline event: decrypt if needed, record in the ledger, and queue
 * it for handling when it is a new command from an operator. */
static mx_err timeline_event(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *ev,
                             struct mx_sync_batch *b, char *err)
{
  if (skip_bad_event(id, room_id, ev))
    return MX_OK;
  const char *type = mx_json_str(ev, "type"), *sender = mx_json_str(ev, "sender");
  const char *event_id = mx_json_str(ev, "event_id");
  int64_t ts = 0;
  if (!mx_json_int(ev, "origin_server_ts", &ts))
    return MX_OK;
  /* before the own-sender skip: the room may be one this identity made
   * encrypted (the alerts room) */
  if (strcmp(type, "m.room.encryption") == 0)
    return mx_store_room_set_int(db, id->user_id, room_id, "encrypted", 1, err);
  if (strcmp(sender, id->user_id) == 0)
    return MX_OK;
  cJSON *plain = NULL;
  struct mx_sender_info si;
  memset(&si, 0, sizeof(si));
  const cJSON *event_plain = ev;
  if (strcmp(type, "m.room.encrypted") == 0) {
    char e2[MX_ERRBUF_LEN] = "";
    mx_err rc = mx_ext_decrypt(id, db, room_id, ev, &plain, &si, e2);
    if (rc == MX_ERR_PENDING) /* queued until its room key arrives */
      return mx_rooms_note_undecryptable(id, db, room_id, ev, err);
    if (rc) {
      mx_warn(id->dev->name, "cannot decrypt %s from %s in %s: %s", event_id, sender, room_id, e2);
            return MX_OK;
    }
    event_plain = plain;
    type = mx_json_str(plain, "type");
    if (!type) {
      cJSON_Delete(plain);
      return MX_OK;
    }
  }
  const cJSON *content = mx_json_obj(event_plain, "content");
  const char *body = content && (strcmp(type, "m.room.message") == 0 || strcmp(type, "m.reaction") == 0)
                         ? command_body(type, content)
                         : NULL;
  mx_err rc = MX_OK;
  if (body) {
    const char *state = !id->first_sync_done ? "seen" : mx_bot_is_operator(id->bot, sender) ? "new" : "ignored";
    char *content_json = cJSON_PrintUnformatted(event_plain);
    struct mx_inbox_item it = { .event_id = event_id, .room_id = room_id, .sender = sender,
                                .sender_device = si.device_id, .body = body, .content_json = content_json,
                                .origin_ts = ts, .verified = si.verified, .encrypted = si.encrypted,
                                .sender_key = si.sender_key, .sender_ed25519 = si.ed25519, .state = state };
    int is_new = 0;
    rc = mx_store_inbox_add(db, id->user_id, &it, &is_new, err);
    cJSON_free(content_json);
    if (!rc && !is_new)
      mx_debug(id->dev->name, "sync: event %s delivered again: already in the ledger, skipped", event_id);
    if (!rc && is_new) {
      mx_metrics_inc(id->bot->metrics, id->dev->name, MX_M_MESSAGES_RECEIVED);
      if (strcmp(state, "new") == 0) {
        struct mx_msg *m = new_msg(id, room_id, event_id, sender, &si, ts, body, event_plain);
        if (m) {
          m->synced_us = id->sync_received_us;
          batch_add(b, m);
        }
      }
    }
  }
  cJSON_Delete(plain);
  return rc;
}

static mx_err joined_room(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *room,
                          const cJSON *gap, struct mx_sync_batch *b, char *err)
{
  mx_err rc = mx_store_room_upsert(db, id->user_id, room_id, "join", err);
  const cJSON *state = mx_json_arr(mx_json_obj(room, "state"), "events");
  const cJSON *ev;
  cJSON_ArrayForEach(ev, state) {
    const char *type = mx_json_str(ev, "type");
    if (!rc && type && strcmp(type, "m.room.encryption") == 0)
      rc = mx_store_room_set_int(db, id->user_id, room_id, "encrypted", 1, err);
  }
  cJSON_ArrayForEach(ev, gap) {
    if (!rc)
      rc = timeline_event(id, db, room_id, ev, b, err);
  }
  const cJSON *timeline = mx_json_arr(mx_json_obj(room, "timeline"), "events");
  cJSON_ArrayForEach(ev, timeline) {
    if (!rc)
      rc = timeline_event(id, db, room_id, ev, b, err);
  }
  return rc;
}

/* A "limited" timeline means events were skipped since our last sync (we
 * were down or slow). Fetch one page back so nothing that arrived while
 * the bot was down is silently dropped; the ledger skips the ones already
 * handled. Done before the transaction: it is network I/O. */
static cJSON *fetch_gaps(struct mx_ident *id, const cJSON *join)
{
  cJSON *gaps = cJSON_CreateObject();
  if (!id->next_batch || !gaps)
    return gaps;
  const cJSON *room;
  cJSON_ArrayForEach(room, join) {
    const cJSON *tl = mx_json_obj(room, "timeline");
    const char *prev = tl ? mx_json_str(tl, "prev_batch") : NULL;
    if (!tl || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tl, "limited")) || !prev)
      continue;
    char *er = mx_api_escape(room->string), *ef = mx_api_escape(prev), *et = mx_api_escape(id->next_batch);
    struct mx_buf path = MX_BUF_INIT(4096);
    cJSON *resp = NULL;
    char err[MX_ERRBUF_LEN];
    if (er && ef && et
        && !mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/messages?dir=b&limit=100&from=%s&to=%s", er, ef, et)
        && !mx_api_call(id->api, "GET", mx_buf_cstr(&path), NULL, NULL, NULL, &resp, err)) {
      const cJSON *chunk = mx_json_arr(resp, "chunk");
      cJSON *ordered = cJSON_CreateArray();
      for (int i = cJSON_GetArraySize(chunk) - 1; i >= 0; i--)
        cJSON_AddItemToArray(ordered, cJSON_Duplicate(cJSON_GetArrayItem(chunk, i), 1));
      cJSON_AddItemToObject(gaps, room->string, ordered);
      mx_info(id->dev->name, "timeline gap in %s: fetched %d earlier events", room->string,
              cJSON_GetArraySize(chunk));
    }
    cJSON_Delete(resp);
    free(er);
    free(ef);
    free(et);
    mx_buf_release(&path);
  }
  return gaps;
}

static mx_err process_rooms(struct mx_ident *id, sqlite3 *db, const cJSON *resp, const cJSON *gaps,
                            struct mx_sync_batch *b, char *err)
{
  const cJSON *rooms = mx_json_obj(resp, "rooms");
  const cJSON *room;
  mx_err rc = MX_OK;
  cJSON_ArrayForEach(room, mx_json_obj(rooms, "invite")) {
    if (!rc)
      rc = mx_rooms_on_invite(id, db, room->string, room, err);
  }
  cJSON_ArrayForEach(room, mx_json_obj(rooms, "join")) {
    if (!rc)
      rc = joined_room(id, db, room->string, room, cJSON_GetObjectItemCaseSensitive(gaps, room->string), b, err);
  }
  cJSON_ArrayForEach(room, mx_json_obj(rooms, "leave")) {
    if (!rc)
      rc = mx_store_room_upsert(db, id->user_id, room->string, "leave", err);
  }
  /* Events whose room key arrived in this batch */
  cJSON *ready = NULL;
  if (!rc && !mx_ext_take_ready(id, db, &ready, err)) {
    const cJSON *ev;
    cJSON_ArrayForEach(ev, ready) {
      const char *room_id = mx_json_str(ev, "room_id");
      if (!rc && room_id)
        rc = timeline_event(id, db, room_id, ev, b, err);
    }
  }
  cJSON_Delete(ready);
  return rc;
}

mx_err mx_sync_process(struct mx_ident *id, sqlite3 *db, const cJSON *resp, const cJSON *gaps,
                       struct mx_sync_batch *b, char *err)
{
  mx_err rc = mx_ext_process_sync(id, db, resp, err);
  if (!rc)
    rc = process_rooms(id, db, resp, gaps, b, err);
  return rc;
}

/* A full data_dir cannot be announced while it lasts: every send first
 * writes its outbox row, and an encrypted one its ratchet step, before
 * anything leaves (sending without them risks doubles or key reuse). So it
 * is logged at once and alerted, with how long it lasted, as soon as a
 * batch commits again. Nothing is lost meanwhile: next_batch stays put. */
static void store_full_state(struct mx_ident *id, struct mx_worker *w, const char *failure)
{
  int full = failure && strstr(failure, "database or disk is full"); /* SQLite's SQLITE_FULL text */
  if (full && !id->store_full_since_ms) {
    id->store_full_since_ms = mx_now_ms();
    mx_error(id->dev->name, "data_dir %s is full: messages wait on the homeserver until space is freed",
             id->bot->cfg->data_dir);
  } else if (!failure && id->store_full_since_ms) {
    char text[512];
    snprintf(text, sizeof(text),
             "[ALERT] device_id=%s status=store_full: data_dir %s was full for %" PRId64 " s; processing waited "
             "and has resumed, nothing was lost. Keep free space there.",
             id->dev->name, id->bot->cfg->data_dir, (mx_now_ms() - id->store_full_since_ms) / 1000);
    id->store_full_since_ms = 0;
    mx_ext_post_alert(id->bot, w, text, NULL);
  }
}


static void process_job(struct mx_worker *w, void *arg)
{
  struct sync_job *job = arg;
  struct mx_ident *id = job->id;
  const char *next = mx_json_str(job->resp, "next_batch");
  char err[MX_ERRBUF_LEN] = "";
  struct mx_sync_batch b = { NULL, 0, 0 };
  cJSON *gaps = fetch_gaps(id, mx_json_obj(mx_json_obj(job->resp, "rooms"), "join"));
  int64_t now = mx_mono_ms();

  /* crypto lock before the write transaction: the same order as senders */
  pthread_mutex_lock(&id->crypto_lock);
  sqlite3_int64 changes = sqlite3_total_changes64(w->db);
  mx_err rc = mx_db_begin(w->db, err);
  if (!rc)
    rc = mx_sync_process(id, w->db, job->resp, gaps, &b, err);
  int wrote = sqlite3_total_changes64(w->db) != changes;
  int store_token = wrote || !id->first_sync_done || token_due(id, now);
  if (!rc && store_token)
    rc = mx_store_ident_set(w->db, id->user_id, "next_batch", next, err);
  if (!rc && !id->first_sync_done)
    rc = mx_store_ident_set_int(w->db, id->user_id, "first_sync_done", 1, err);
  if (!rc)
    rc = mx_db_commit(w->db, err);
  if (rc)
    mx_db_rollback(w->db);
  pthread_mutex_unlock(&id->crypto_lock);
  cJSON_Delete(gaps);

  int sweep = wrote || b.n || sweep_due(id, now);
  mx_ext_sync_done(id, rc == MX_OK, sweep);
  store_full_state(id, w, rc ? err : NULL);
  if (rc) {
    /* Nothing was committed: the same batch comes again from the old token. */
    mx_error(id->dev->name, "sync processing failed, will retry the batch: %s", err);
    mx_sync_batch_free(&b);
    cJSON_Delete(job->resp);
    free(job);
    id->sync_live = 0;
    mx_sync_schedule(id, mx_api_backoff_ms(2));
    return;
  }
  free(id->next_batch);
  id->next_batch = mx_strdup(next);
  id->first_sync_done = 1;
  if (!id->token_stored_ms && (size_t)atomic_fetch_add(&id->bot->caught_up, 1) + 1 == id->bot->n_idents) {
    /* Every identity has caught up: start-up's transient memory (logins,
     * key uploads, catch-up syncs queued for the workers, all at once with
     * 1,000 identities) is free now but scattered through the heap, and
     * malloc keeps it resident. Give the free pages back once. */
    malloc_trim(0);
  }
  if (store_token)
    id->token_stored_ms = now;
  id->token_unsaved = !store_token;
  id->last_sync_ok_ms = mx_now_ms();
  id->sync_live = 1;
  mx_metrics_inc(id->bot->metrics, id->dev->name, MX_M_SYNCS);
  cJSON_Delete(job->resp);
  free(job);
  if (sweep || id->actions_left)
    id->actions_left = mx_rooms_run_actions(id, w->db);
  unsigned held = atomic_load(&id->held_gen);
  if ((sweep || held != id->held_flushed) && mx_send_flush_held(id, w->db) == 0)
    id->held_flushed = held;
  if (sweep)
    id->swept_ms = now;
  /* The last command runs here, on this worker, once the next long-poll is
   * on its way: handing it to another worker would add a thread wake-up
   * (a wait for a CPU on a busy machine) between the /sync response and
   * the reply; the others run in parallel on the pool as before. */
  struct mx_msg *last = NULL;
  for (size_t i = 0; i < b.n; i++) {
    if (i + 1 < b.n)
      mx_commands_dispatch(b.msgs[i]);
    else
      last = b.msgs[i];
    b.msgs[i] = NULL;
  }
  b.n = 0;
  mx_sync_batch_free(&b);
  mx_sync_schedule(id, 0);
  if (last)
    mx_commands_run(last, w);
}

/* ---- start-up recovery ---- */

static int replay_safe(const char *body)
{
  /* built-ins without side effects may run again; their replies reuse the
   * stored transaction IDs, so the operator still sees each reply once */
  static const char *safe[] = { "!ping", "!help", "!status" };
  for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++) {
    size_t n = strlen(safe[i]);
    if (strncmp(body, safe[i], n) == 0 && (body[n] == '\0' || body[n] == ' '))
      return 1;
  }
  return 0;
}

/* A message the crash left "running": if its handler's final answer was
 * already sent it is done; otherwise the operator is told it was not
 * finished, under the final answer's key - when that answer was on the wire
 * (its transaction stored, the send unconfirmed) the homeserver sees the
 * same transaction ID and keeps the answer, so exactly one of the two is
 * shown either way. */
static void recover_interrupted(struct mx_msg *m)
{
  struct mx_ident *id = m->id;
  char key[400], txn[40], err[MX_ERRBUF_LEN] = "";
  int answered = 0;
  snprintf(key, sizeof(key), MX_MSG_FINAL_KEY_FMT, m->event_id);
  if (mx_store_outbox_txn(m->w->db, id->user_id, key, m->room_id, txn, &answered, NULL, 0, err))
    mx_warn(id->dev->name, "recovering %s: %s", m->event_id, err);
  if (answered) {
    mx_store_inbox_set_state(m->w->db, id->user_id, m->event_id, "done", "answered before a restart", NULL);
    return;
  }
  mx_store_inbox_set_state(m->w->db, id->user_id, m->event_id, "interrupted", "restart", NULL);
  mx_msg_reply_final(m, "I was restarted while handling this message, so it was not finished and will not be "
                        "re-run automatically. Send it again if you still want it. Actions that were waiting for "
                        "your approval still are: see !pending.", NULL);
}

void mx_sync_recover_inbox(struct mx_ident *id, struct mx_worker *w)
{
  /* Read every row first, then act: writing (state, outbox) while the
   * SELECT's read transaction is open fails with "database is locked" as
   * soon as a dispatched job on another connection has written (a WAL
   * snapshot cannot be upgraded), and the message is never answered. */
  struct mx_msg **msgs = NULL;
  int *running = NULL;
  size_t n = 0, cap = 0;
  sqlite3_stmt *st = NULL;
  if (mx_db_prepare(w->db,
                    "SELECT event_id, room_id, sender, sender_device, verified, origin_ts, body, content, state,"
                    " encrypted, sender_key, sender_ed25519 FROM inbox WHERE user_id=? AND state IN ('new','running') ORDER BY origin_ts",
                    &st, NULL))
    return;
  sqlite3_bind_text(st, 1, id->user_id, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *event_id = (const char *)sqlite3_column_text(st, 0);
    const char *room_id = (const char *)sqlite3_column_text(st, 1);
    const char *sender = (const char *)sqlite3_column_text(st, 2);
    const char *dev = (const char *)sqlite3_column_text(st, 3);
    const char *body = (const char *)sqlite3_column_text(st, 6);
    const char *content = (const char *)sqlite3_column_text(st, 7);
    const char *state = (const char *)sqlite3_column_text(st, 8);
    if (!event_id || !room_id || !sender || !body)
      continue;
    cJSON *ev = content ? cJSON_Parse(content) : cJSON_CreateObject();
    struct mx_sender_info si;
    memset(&si, 0, sizeof(si));
    snprintf(si.device_id, sizeof(si.device_id), "%s", dev ? dev : "");
    si.verified = sqlite3_column_int(st, 4);
    si.encrypted = sqlite3_column_int(st, 9);
    snprintf(si.sender_key, sizeof(si.sender_key), "%s", sqlite3_column_text(st, 10) ? (const char *)sqlite3_column_text(st, 10) : "");
    snprintf(si.ed25519, sizeof(si.ed25519), "%s", sqlite3_column_text(st, 11) ? (const char *)sqlite3_column_text(st, 11) : "");
    struct mx_msg *m = new_msg(id, room_id, event_id, sender, &si, sqlite3_column_int64(st, 5), body, ev);
    cJSON_Delete(ev);
    if (!m)
      continue;
    if (n == cap) {
      size_t c2 = cap ? 2 * cap : 16;
      struct mx_msg **m2 = realloc(msgs, c2 * sizeof(*m2));
      int *r2 = m2 ? realloc(running, c2 * sizeof(*r2)) : NULL;
      if (m2)
        msgs = m2;
      if (r2)
        running = r2;
      if (!m2 || !r2) {
        mx_error(id->dev->name, "recovering the inbox: out of memory");
        mx_msg_free(m);
        break;
      }
      cap = c2;
    }
    running[n] = strcmp(state, "running") == 0 && !replay_safe(body);
    msgs[n++] = m;
  }
  sqlite3_finalize(st);
  for (size_t i = 0; i < n; i++) {
    if (running[i]) {
      /* It may have had effects already: never run it twice silently. */
      msgs[i]->w = w;
      recover_interrupted(msgs[i]);
      mx_msg_free(msgs[i]);
    } else {
      mx_commands_dispatch(msgs[i]);
    }
  }
  free(msgs);
  free(running);
}

void mx_sync_store_tokens(struct mx_bot *bot, sqlite3 *db)
{
  char err[MX_ERRBUF_LEN] = "";
  size_t n = 0;
  mx_err rc = mx_db_begin(db, err);
  for (size_t i = 0; !rc && i < bot->n_idents; i++) {
    struct mx_ident *id = &bot->idents[i];
    if (!id->token_unsaved || !id->next_batch)
      continue;
    rc = mx_store_ident_set(db, id->user_id, "next_batch", id->next_batch, err);
    n++;
  }
  if (!rc)
    rc = mx_db_commit(db, err);
  if (rc) {
    mx_db_rollback(db);
    /* nothing lost: the next start replays syncs that had nothing in them */
    mx_warn(NULL, "cannot store the sync positions at stop: %s", err);
    return;
  }
  if (n)
    mx_debug(NULL, "stored the sync positions of %zu identities", n);
}
