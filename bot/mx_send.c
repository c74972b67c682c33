/* bot/mx_send.c - idempotent sends; see mx_send.h. */
#include "mx_send.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mx_crypto.h"
#include "mx_ext.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_metrics.h"
#include "mx_store.h"
#include "mx_util.h"

#define MX_TYPING_TIMEOUT_MS 30000
#define MX_TYPING_RENEW_MS 20000 /* well inside the timeout, with slack for a slow PUT */

/* br: newlines become <br> (prose); inside <pre> they stay newlines. */
static mx_err escape(const char *text, int br, struct mx_buf *out)
{
  mx_err rc = mx_buf_add(out, "", 0);
  for (const char *p = text; !rc && *p; p++) {
    switch (*p) {
    case '<': rc = mx_buf_adds(out, "&lt;"); break;
    case '>': rc = mx_buf_adds(out, "&gt;"); break;
    case '&': rc = mx_buf_adds(out, "&amp;"); break;
    case '"': rc = mx_buf_adds(out, "&quot;"); break;
    case '\n': rc = br ? mx_buf_adds(out, "<br>") : mx_buf_addc(out, '\n'); break;
    default: rc = mx_buf_addc(out, *p);
    }
  }
  return rc;
}

mx_err mx_html_escape(const char *text, struct mx_buf *out)
{
  return escape(text, 1, out);
}

mx_err mx_html_code_block(const char *text, struct mx_buf *out)
{
  mx_err rc = mx_buf_adds(out, "<pre><code>");
  if (!rc)
    rc = escape(text, 0, out);
  return rc ? rc : mx_buf_adds(out, "</code></pre>");
}

static _Thread_local int64_t last_put_us;

int64_t mx_send_last_put_us(void)
{
  return last_put_us;
}

static mx_err put_event(struct mx_ident *id, const char *room_id, const char *type, const cJSON *content,
                        const char *txn, const struct mx_api_opts *opts, long *status, char *event_id_out,
                        char *err)
{
  char *er = mx_api_escape(room_id), *et = mx_api_escape(type);
  struct mx_buf path = MX_BUF_INIT(4096);
  mx_err rc = er && et ? mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/send/%s/%s", er, et, txn) : MX_ERR_NOMEM;
  free(er);
  free(et);
  if (rc)
    return rc;
  cJSON *resp = NULL;
  last_put_us = mx_mono_us();
  rc = mx_api_call(id->api, "PUT", mx_buf_cstr(&path), content, opts, status, &resp, err);
  mx_buf_release(&path);
  if (!rc) {
    const char *ev = mx_json_str(resp, "event_id");
    if (!ev)
      rc = mx_fail(MX_ERR_INVALID, err, "send: response has no event_id");
    else if (event_id_out)
      snprintf(event_id_out, MX_EVENT_ID_LEN, "%s", ev);
  }
  cJSON_Delete(resp);
  return rc;
}

/* One attempt (with mx_api's retries) to send under txn, encrypted when the
 * room is. *status is the last HTTP status (0: no answer). */
static mx_err send_txn(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *type,
                       const cJSON *content, const char *txn, const struct mx_api_opts *opts, long *status,
                       char *ev, char *err)
{
  *status = 0;
  if (!mx_store_room_get_int(db, id->user_id, room_id, "encrypted"))
    return put_event(id, room_id, type, content, txn, opts, status, ev, err);
  cJSON *enc = NULL;
  mx_err rc = mx_ext_encrypt(id, room_id, type, content, &enc, err);
  if (!rc)
    rc = put_event(id, room_id, "m.room.encrypted", enc, txn, opts, status, ev, err);
  cJSON_Delete(enc);
  return rc;
}

/* A failure the homeserver may get over: no answer, 5xx, 429 with a wait
 * past the call's deadline, or our own shutdown cutting the retries. A 4xx
 * (not in the room, forbidden, too big) would fail the same way again. */
static int may_pass(mx_err rc, long status)
{
  if (rc == MX_ERR_CANCELLED || rc == MX_ERR_TIMEOUT || rc == MX_ERR_RATE_LIMITED)
    return 1;
  return rc == MX_ERR_HTTP && (status == 0 || status >= 500);
}

mx_err mx_send_event(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *type,
                     const cJSON *content, const char *key, char *event_id_out, char *err)
{
  char txn[40], sent_id[MX_EVENT_ID_LEN] = "";
  int already = 0;
  char keybuf[64];
  if (!key) {
    char rnd[17];
    if (mx_random_alnum(rnd, 16))
      return MX_ERR_CRYPTO;
    snprintf(keybuf, sizeof(keybuf), "adhoc:%s", rnd);
    key = keybuf;
  }
  mx_err rc = mx_store_outbox_txn(db, id->user_id, key, room_id, txn, &already, sent_id, sizeof(sent_id), err);
  if (rc)
    return rc;
  if (already) {
    if (event_id_out)
      snprintf(event_id_out, MX_EVENT_ID_LEN, "%s", sent_id);
    return MX_OK;
  }
  char ev[MX_EVENT_ID_LEN] = "", e2[MX_ERRBUF_LEN];
  long status = 0;
  rc = send_txn(id, db, room_id, type, content, txn, NULL, &status, ev, err);
  mx_metrics_inc(id->bot->metrics, id->dev->name, rc ? MX_M_SEND_ERRORS : MX_M_REPLIES_SENT);
  if (rc && may_pass(rc, status)) {
    /* Not lost: sent again under the same txn once the homeserver takes
     * sends again (mx_send_flush_held, after each sync and at start). */
    char *json = cJSON_PrintUnformatted(content);
    mx_err held = json ? mx_store_outbox_hold(db, txn, type, json, e2) : MX_ERR_NOMEM;
    /* after the row is stored: the next sync's flush then sees it */
    atomic_fetch_add(&id->held_gen, 1);
    if (!held)
      mx_warn(id->dev->name, "send %s to %s failed, kept to send again when the homeserver takes it: %s", txn,
              room_id, err);
    cJSON_free(json);
  }
  if (rc)
    return rc;
  if (mx_store_outbox_sent(db, txn, ev, e2))
    mx_warn(id->dev->name, "send: cannot record sent %s: %s", txn, e2);
  if (event_id_out)
    snprintf(event_id_out, MX_EVENT_ID_LEN, "%s", ev);
  return MX_OK;
}

size_t mx_send_flush_held(struct mx_ident *id, sqlite3 *db)
{
  struct mx_store_held held[16];
  size_t n = 0, left = 0;
  char err[MX_ERRBUF_LEN] = "";
  /* a reply older than a day answers a question nobody waits for now */
  if (mx_store_outbox_held(db, id->user_id, mx_now_ms() - 86400000, held, 16, &n, err)) {
    mx_warn(id->dev->name, "kept sends: %s", err);
    return 1;
  }
  /* short: this runs on the sync worker, the next sync tries again */
  struct mx_api_opts o = { 30000, 30000, 0 };
  for (size_t i = 0; i < n; i++) {
    cJSON *content = cJSON_Parse(held[i].content);
    char ev[MX_EVENT_ID_LEN] = "";
    long status = 0;
    mx_err rc = content ? send_txn(id, db, held[i].room_id, held[i].type, content, held[i].txn_id, &o, &status,
                                   ev, err)
                        : mx_fail(MX_ERR_INVALID, err, "kept content is not json");
    cJSON_Delete(content);
    if (rc) {
      mx_info(id->dev->name, "kept send %s still not taken: %s", held[i].txn_id, err);
      if (may_pass(rc, status)) {
        left = n - i; /* the homeserver still refuses: the rest waits for the next sync */
        break;
      }
      mx_store_outbox_sent(db, held[i].txn_id, NULL, err); /* permanent: stop keeping it */
      continue;
    }
    mx_metrics_inc(id->bot->metrics, id->dev->name, MX_M_REPLIES_SENT);
    if (mx_store_outbox_sent(db, held[i].txn_id, ev, err))
      mx_warn(id->dev->name, "send: cannot record sent %s: %s", held[i].txn_id, err);
    else
      mx_info(id->dev->name, "kept send %s delivered as %s", held[i].txn_id, ev);
  }
  mx_store_held_release(held, n);
  /* a full page may have more behind it */
  return left ? left : n == 16;
}

static cJSON *notice_content(const char *text, const char *html)
{
  cJSON *c = cJSON_CreateObject();
  struct mx_buf h = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  if (!html) {
    if (mx_html_escape(text, &h)) {
      cJSON_Delete(c);
      return NULL;
    }
    html = mx_buf_cstr(&h);
  }
  cJSON_AddStringToObject(c, "msgtype", "m.notice");
  cJSON_AddStringToObject(c, "body", text);
  cJSON_AddStringToObject(c, "format", "org.matrix.custom.html");
  cJSON_AddStringToObject(c, "formatted_body", html);
  mx_buf_release(&h);
  return c;
}

mx_err mx_send_notice(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *key, const char *text,
                      const char *html, const char *reply_to, char *event_id_out, char *err)
{
  cJSON *c = notice_content(text, html);
  if (!c)
    return MX_ERR_NOMEM;
  if (reply_to) {
    cJSON *rel = cJSON_AddObjectToObject(c, "m.relates_to");
    cJSON *irt = cJSON_AddObjectToObject(rel, "m.in_reply_to");
    cJSON_AddStringToObject(irt, "event_id", reply_to);
  }
  mx_err rc = mx_send_event(id, db, room_id, "m.room.message", c, key, event_id_out, err);
  cJSON_Delete(c);
  return rc;
}

mx_err mx_send_alert(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *text, const char *html,
                     const char *const *mention, size_t n_mention, char *err)
{
  cJSON *c = notice_content(text, html);
  if (!c)
    return MX_ERR_NOMEM;
  /* m.text, not m.notice: .m.rule.suppress_notices runs before the mention
   * rule, so a notice is silent on the phone whatever it mentions. */
  cJSON_ReplaceItemInObjectCaseSensitive(c, "msgtype", cJSON_CreateString("m.text"));
  cJSON *ids = cJSON_AddArrayToObject(cJSON_AddObjectToObject(c, "m.mentions"), "user_ids");
  for (size_t i = 0; i < n_mention; i++)
    cJSON_AddItemToArray(ids, cJSON_CreateString(mention[i]));
  mx_err rc = mx_send_event(id, db, room_id, "m.room.message", c, NULL, NULL, err);
  cJSON_Delete(c);
  return rc;
}

mx_err mx_send_edit(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *key,
                    const char *orig_event_id, const char *text, const char *html, char *err)
{
  cJSON *newc = notice_content(text, html);
  if (!newc)
    return MX_ERR_NOMEM;
  struct mx_buf fallback = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  mx_err rc = mx_buf_addf(&fallback, "* %s", text);
  cJSON *c = rc ? NULL : notice_content(mx_buf_cstr(&fallback), html);
  mx_buf_release(&fallback);
  if (!c) {
    cJSON_Delete(newc);
    return MX_ERR_NOMEM;
  }
  cJSON_AddItemToObject(c, "m.new_content", newc); /* consumed */
  cJSON *rel = cJSON_AddObjectToObject(c, "m.relates_to");
  cJSON_AddStringToObject(rel, "rel_type", "m.replace");
  cJSON_AddStringToObject(rel, "event_id", orig_event_id);
  rc = mx_send_event(id, db, room_id, "m.room.message", c, key, NULL, err);
  cJSON_Delete(c);
  return rc;
}

void mx_send_typing(struct mx_ident *id, const char *room_id, int typing)
{
  char *er = mx_api_escape(room_id), *eu = mx_api_escape(id->user_id);
  struct mx_buf path = MX_BUF_INIT(4096);
  if (er && eu && !mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/typing/%s", er, eu)) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddBoolToObject(b, "typing", typing);
    if (typing)
      cJSON_AddNumberToObject(b, "timeout", MX_TYPING_TIMEOUT_MS);
    struct mx_api_opts o = { 10000, 10000, 1 };
    char err[MX_ERRBUF_LEN];
    /* best effort: a lost typing notification is harmless */
    if (mx_api_call(id->api, "PUT", mx_buf_cstr(&path), b, &o, NULL, NULL, err))
      mx_debug(id->dev->name, "typing: %s", err);
    cJSON_Delete(b);
  }
  free(er);
  free(eu);
  mx_buf_release(&path);
}

void mx_send_receipt(struct mx_ident *id, const char *room_id, const char *event_id)
{
  char *er = mx_api_escape(room_id), *ee = mx_api_escape(event_id);
  struct mx_buf path = MX_BUF_INIT(4096);
  if (er && ee && !mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/receipt/m.read/%s", er, ee)) {
    cJSON *b = cJSON_CreateObject();
    struct mx_api_opts o = { 10000, 30000, 0 };
    char err[MX_ERRBUF_LEN];
    if (mx_api_call(id->api, "POST", mx_buf_cstr(&path), b, &o, NULL, NULL, err))
      mx_debug(id->dev->name, "receipt: %s", err);
    cJSON_Delete(b);
  }
  free(er);
  free(ee);
  mx_buf_release(&path);
}

void mx_send_redact(struct mx_ident *id, const char *room_id, const char *event_id, const char *reason)
{
  /* the txn id is the event's: a retry redacts once */
  char *er = mx_api_escape(room_id), *ee = mx_api_escape(event_id);
  struct mx_buf path = MX_BUF_INIT(4096);
  if (er && ee && !mx_buf_addf(&path, "/_matrix/client/v3/rooms/%s/redact/%s/redact-%s", er, ee, ee)) {
    cJSON *b = cJSON_CreateObject();
    struct mx_api_opts o = { 10000, 30000, 0 };
    char err[MX_ERRBUF_LEN];
    if (!b || !cJSON_AddStringToObject(b, "reason", reason) ||
        mx_api_call(id->api, "PUT", mx_buf_cstr(&path), b, &o, NULL, NULL, err))
      mx_warn(id->dev->name, "could not remove %s: %s", event_id, b ? err : "out of memory");
    cJSON_Delete(b);
  }
  free(er);
  free(ee);
  mx_buf_release(&path);
}

struct mx_typing {
  struct mx_ident *id;
  char *room_id;
  pthread_t th;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int done;
};

static void *typing_keeper(void *arg)
{
  struct mx_typing *t = arg;
  pthread_mutex_lock(&t->lock);
  while (!t->done) {
    pthread_mutex_unlock(&t->lock);
    mx_send_typing(t->id, t->room_id, 1);
    pthread_mutex_lock(&t->lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += MX_TYPING_RENEW_MS / 1000;
    while (!t->done && pthread_cond_timedwait(&t->cond, &t->lock, &until) == 0)
      ;
  }
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

struct mx_typing *mx_typing_start(struct mx_ident *id, const char *room_id)
{
  struct mx_typing *t = calloc(1, sizeof(*t));
  if (t && !(t->room_id = mx_strdup(room_id))) {
    free(t);
    t = NULL;
  }
  if (t) {
    t->id = id;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (pthread_create(&t->th, NULL, typing_keeper, t) == 0)
      return t;
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t->room_id);
    free(t);
  }
  mx_send_typing(id, room_id, 1);
  return NULL;
}

void mx_typing_stop(struct mx_typing *t)
{
  if (!t)
    return;
  pthread_mutex_lock(&t->lock);
  t->done = 1;
  pthread_cond_signal(&t->cond);
  pthread_mutex_unlock(&t->lock);
  pthread_join(t->th, NULL);
  mx_send_typing(t->id, t->room_id, 0);
  pthread_mutex_destroy(&t->lock);
  pthread_cond_destroy(&t->cond);
  free(t->room_id);
  free(t);
}
