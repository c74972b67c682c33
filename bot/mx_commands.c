/* bot/mx_commands.c - message handling and the built-in command table. */
#include "mx_commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_ext.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_metrics.h"
#include "mx_receipts.h"
#include "mx_send.h"
#include "mx_store.h"
#include "mx_util.h"

typedef void (*mx_cmd_fn)(struct mx_msg *m, const char *args);

static void cmd_ping(struct mx_msg *m, const char *args);
static void cmd_help(struct mx_msg *m, const char *args);
static void cmd_status(struct mx_msg *m, const char *args);
static void cmd_confirm(struct mx_msg *m, const char *args);

/* One table: dispatch and !help come from it. fn NULL = provided by the
 * lower layers through mx_ext_handle_command. */
static const struct {
  const char *name;
  mx_cmd_fn fn;
  const char *usage;
  const char *help;
} commands[] = {
  { "ping", cmd_ping, "!ping", "reply pong with the measured latency" },
  { "help", cmd_help, "!help", "this list" },
  { "status", cmd_status, "!status", "device, backend, uptime, version, LLM providers" },
  { "confirm", cmd_confirm, "!confirm CODE", "run a command that was held because it was old" },
  { "reset", NULL, "!reset", "forget this conversation's history" },
  { "pending", NULL, "!pending [ID]", "list actions waiting for approval; with ID, all of what it would run" },
  { "cancel", NULL, "!cancel ID", "cancel one pending action" },
  { "stop", NULL, "!stop", "kill switch: cancel everything pending and running on this device" },
  { "audit", NULL, "!audit [N] | !audit verify", "recent audit records, or verify the audit chain" },
  { "devices", NULL, "!devices", "fleet table (alerts room)" },
  { "health", NULL, "!health", "run the health checks now (alerts room)" },
};

mx_err mx_commands_help(struct mx_buf *out, int alerts_room)
{
  (void)alerts_room;
  mx_err rc = mx_buf_adds(out, "Commands:\n");
  for (size_t i = 0; !rc && i < sizeof(commands) / sizeof(commands[0]); i++)
    rc = mx_buf_addf(out, "  %s - %s\n", commands[i].usage, commands[i].help);
  if (!rc)
    rc = mx_buf_adds(out, "  approve ID / deny ID - decide on a pending action (or react with ✅ / ❌)\n"
                          "Anything else is a request for this device's agent.");
  return rc;
}

static void cmd_ping(struct mx_msg *m, const char *args)
{
  (void)args;
  int64_t ms = mx_now_ms() - m->origin_ts;
  if (ms < 0)
    ms = 0;
  char text[128], html[160];
  snprintf(text, sizeof(text), "pong (%lld ms)", (long long)ms);
  snprintf(html, sizeof(html), "<b>pong</b> (%lld ms)", (long long)ms);
  if (!mx_msg_reply(m, text, html, NULL) && m->synced_us)
    mx_metrics_observe_us(m->id->bot->metrics, m->id->dev->name, MX_H_PING_REPLY, mx_send_last_put_us() - m->synced_us);
}

static void cmd_help(struct mx_msg *m, const char *args)
{
  (void)args;
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL), h = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  if (!mx_commands_help(&b, 0) && !mx_html_code_block(mx_buf_cstr(&b), &h))
    mx_msg_reply(m, mx_buf_cstr(&b), mx_buf_cstr(&h), NULL);
  mx_buf_release(&b);
  mx_buf_release(&h);
}

static void cmd_status(struct mx_msg *m, const char *args)
{
  (void)args;
  struct mx_ident *id = m->id;
  int64_t up = (mx_now_ms() - id->bot->started_ms) / 1000;
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = mx_buf_addf(&b,
                          "device: %s\nidentity: %s (device %s)\nbackend: %s\nuptime: %lldd %02lld:%02lld:%02lld\n"
                          "version: mxfleet %s\nsync: %s",
                          id->dev->name, id->user_id, id->device_id ? id->device_id : "-",
                          mx_backend_name(id->dev->backend), (long long)(up / 86400), (long long)(up / 3600 % 24),
                          (long long)(up / 60 % 60), (long long)(up % 60), MXFLEET_VERSION,
                          id->sync_live ? "live" : "not live");
  if (!rc)
    mx_ext_status(id, &b);
  struct mx_buf h = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  if (!rc && !mx_html_code_block(mx_buf_cstr(&b), &h))
    mx_msg_reply(m, mx_buf_cstr(&b), mx_buf_cstr(&h), NULL);
  mx_buf_release(&b);
  mx_buf_release(&h);
}

static void confirm_code(const char *event_id, char out[9])
{
  char hex[65];
  mx_sha256_hex(event_id, strlen(event_id), hex);
  memcpy(out, hex, 8);
  out[8] = '\0';
}

static void run_message(struct mx_msg *m);

static void cmd_confirm(struct mx_msg *m, const char *args)
{
  char code[16];
  if (sscanf(args, "%15s", code) != 1) {
    mx_msg_reply(m, "usage: !confirm CODE (the code from my notice about the held command)", NULL, NULL);
    return;
  }
  sqlite3_stmt *st = NULL;
  if (mx_db_query(m->w->db, &st, NULL,
                  "SELECT event_id, body, origin_ts FROM inbox WHERE user_id=? AND room_id=? AND state='await_confirm'"
                  " AND note=?",
                  "sss", m->id->user_id, m->room_id, code)) {
    mx_msg_replyf(m, "No held command with code %s in this room.", code);
    return;
  }
  struct mx_msg *held = calloc(1, sizeof(*held));
  if (held) {
    held->id = m->id;
    held->w = m->w;
    held->event_id = mx_db_col_str(st, 0);
    held->body = mx_db_col_str(st, 1);
    held->origin_ts = mx_now_ms(); /* confirmed now */
    held->room_id = mx_strdup(m->room_id);
    held->sender = mx_strdup(m->sender);
    held->sender_device = m->sender_device ? mx_strdup(m->sender_device) : NULL;
    held->verified = m->verified;
    held->content = cJSON_CreateObject();
    held->reply_seq = 10; /* keys 0..9 belong to the hold notice */
  }
  sqlite3_finalize(st);
  if (!held || !held->event_id || !held->body || !held->room_id || !held->sender) {
    mx_msg_free(held);
    return;
  }
  mx_store_inbox_set_state(m->w->db, m->id->user_id, held->event_id, "running", "confirmed", NULL);
  run_message(held);
  mx_store_inbox_set_state(m->w->db, m->id->user_id, held->event_id, "done", "confirmed", NULL);
  mx_msg_free(held);
}

/* Runs a built-in command or hands the text to the agent. */
static void run_message(struct mx_msg *m)
{
  const char *body = m->body;
  while (*body == ' ')
    body++;
  if (body[0] == '!') {
    char name[32];
    size_t k = 0;
    const char *p = body + 1;
    while (*p && *p != ' ' && *p != '\n' && k + 1 < sizeof(name))
      name[k++] = *p++;
    name[k] = '\0';
    while (*p == ' ')
      p++;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
      if (strcmp(commands[i].name, name) != 0)
        continue;
      if (commands[i].fn)
        commands[i].fn(m, p);
      else if (!mx_ext_handle_command(m, name, p))
        mx_msg_replyf(m, "!%s is not available on this device.", name);
      mx_metrics_inc(m->id->bot->metrics, m->id->dev->name, MX_M_COMMANDS);
      return;
    }
    mx_msg_replyf(m, "Unknown command !%s. Send !help for the list.", name);
    return;
  }
  /* "approve ID" / "deny ID", also as a phone types it: "Approve k3f9q2xa." */
  if (strncasecmp(body, "approve ", 8) == 0 || strncasecmp(body, "deny ", 5) == 0) {
    const char *sp = strchr(body, ' ');
    const char *cmd = (body[0] | 0x20) == 'a' ? "approve" : "deny";
    if (!mx_ext_handle_command(m, cmd, sp + 1))
      mx_msg_reply(m, "There is nothing to approve on this device.", NULL, NULL);
    return;
  }
  struct mx_typing *t = mx_typing_start(m->id, m->room_id);
  mx_ext_handle_text(m);
  mx_typing_stop(t);
}

static void hold_for_confirmation(struct mx_msg *m)
{
  char code[9];
  confirm_code(m->event_id, code);
  int64_t age_min = (mx_now_ms() - m->origin_ts) / 60000;
  mx_store_inbox_set_state(m->w->db, m->id->user_id, m->event_id, "await_confirm", code, NULL);
  struct mx_buf t = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  if (!mx_buf_addf(&t,
                   "Your message \"%.80s\" is %lld min old (it arrived while I was offline), so I have not run it. "
                   "Reply !confirm %s to run it now.",
                   m->body, (long long)age_min, code))
    mx_msg_reply(m, mx_buf_cstr(&t), NULL, NULL);
  mx_buf_release(&t);
}

static int is_voice(const struct mx_msg *m)
{
  const cJSON *content = mx_json_obj(m->content, "content");
  const char *msgtype = content ? mx_json_str(content, "msgtype") : NULL;
  return msgtype && strcmp(msgtype, "m.audio") == 0;
}

/* Voice: transcript first (as a reply to the voice message), then the text
 * is handled as if typed - with via_voice set, so anything above read risk
 * asks for approval. Returns 0 when there is nothing to run. */
static int transcribe_voice(struct mx_msg *m)
{
  char *text = NULL, err[MX_ERRBUF_LEN] = "";
  mx_err rc = mx_ext_transcribe(m, &text, err);
  if (rc) {
    mx_msg_replyf(m, "I could not transcribe this voice message: %s", err);
    return 0;
  }
  if (!text[0]) {
    mx_msg_reply(m, "I heard nothing I could transcribe in this voice message.", NULL, NULL);
    free(text);
    return 0;
  }
  struct mx_buf t = MX_BUF_INIT(MX_BUF_MAX_SMALL), h = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  if (!mx_buf_addf(&t, "\U0001F3A4 \"%s\"", text) && !mx_buf_adds(&h, "\U0001F3A4 <i>") && !mx_html_escape(text, &h)
      && !mx_buf_adds(&h, "</i>")) {
    char key[400], e2[MX_ERRBUF_LEN];
    snprintf(key, sizeof(key), "reply:%s:%d", m->event_id, m->reply_seq++);
    mx_send_notice(m->id, m->w->db, m->room_id, key, mx_buf_cstr(&t), mx_buf_cstr(&h), m->event_id, NULL, e2);
  }
  mx_buf_release(&t);
  mx_buf_release(&h);
  free(m->body);
  m->body = text;
  m->via_voice = 1;
  return 1;
}

static void handle_job(struct mx_worker *w, void *arg)
{
  struct mx_msg *m = arg;
  struct mx_ident *id = m->id;
  m->w = w;
  int64_t t0 = mx_mono_ms();
  const char *type = mx_json_str(m->content, "type");
  if (type && strcmp(type, "m.reaction") == 0) {
    const cJSON *rel = mx_json_obj(mx_json_obj(m->content, "content"), "m.relates_to");
    const char *target = rel ? mx_json_str(rel, "event_id") : NULL, *key = rel ? mx_json_str(rel, "key") : NULL;
    int handled = target && key && mx_ext_handle_reaction(m, target, key);
    mx_store_inbox_set_state(w->db, id->user_id, m->event_id, handled ? "done" : "ignored", NULL, NULL);
    mx_msg_free(m);
    return;
  }
  char reason[512] = "";
  int trusted = mx_ext_sender_trusted(id, m, reason, sizeof(reason));
  if (mx_bot_is_operator(id->bot, m->sender))
    mx_ext_note_writer(m, trusted && m->encrypted);
  if (!trusted) {
    mx_store_inbox_set_state(w->db, id->user_id, m->event_id, "refused", reason, NULL);
    mx_info(id->dev->name, "refused message %s from %s: %s", m->event_id, m->sender, reason);
    mx_msg_reply(m, reason, NULL, NULL);
    mx_msg_free(m);
    return;
  }
  int is_confirm = strncmp(m->body, "!confirm", 8) == 0;
  if (!is_confirm && mx_now_ms() - m->origin_ts > id->bot->cfg->command_max_age_ms) {
    hold_for_confirmation(m);
    mx_receipt_later(id, m->room_id, m->event_id);
    mx_msg_free(m);
    return;
  }
  mx_store_inbox_set_state(w->db, id->user_id, m->event_id, "running", NULL, NULL);
  if (is_voice(m) && !transcribe_voice(m)) {
    mx_store_inbox_set_state(w->db, id->user_id, m->event_id, "failed", "transcription", NULL);
    mx_msg_free(m);
    return;
  }
  run_message(m);
  mx_store_inbox_set_state(w->db, id->user_id, m->event_id, "done", NULL, NULL);
  mx_receipt_later(id, m->room_id, m->event_id);
  mx_metrics_observe_ms(id->bot->metrics, id->dev->name, MX_H_HANDLING, mx_mono_ms() - t0);
  mx_msg_free(m);
}

void mx_commands_run(struct mx_msg *m, struct mx_worker *w)
{
  handle_job(w, m);
}

void mx_commands_dispatch(struct mx_msg *m)
{
  if (mx_workers_submit(m->id->bot->workers, handle_job, m))
    mx_msg_free(m); /* shutting down: it stays "new" in the inbox for the next start */
}
