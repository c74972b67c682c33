/*
 * bot/mx_ext.c - the glue between the bot core and E2EE (bot/crypto), the
 * LLM agent (llm/) and voice transcription (llm/stt); tools and health live
 * in mx_ext_tools.c and mx_ext_health.c. Layer: bot; calls down only.
 * Nothing here sends plaintext into an encrypted room or runs a command
 * from a sender the trust rules refuse.
 */
#include "mx_ext_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_markdown.h"
#include "llm_router.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_metrics.h"
#include "mx_send.h"
#include "mx_util.h"
#include "mx_workers.h"

_Thread_local struct mx_worker *mx_ext_current_worker;

static mx_err router_metrics(void *ctx, struct mx_buf *out)
{
  struct mx_ext *x = ctx;
  return x->agent ? llm_router_metrics(llm_agent_router(x->agent), out) : MX_OK;
}

mx_err mx_ext_init(struct mx_bot *bot, char *err)
{
  struct mx_ext *x = calloc(1, sizeof(*x));
  if (!x)
    return MX_ERR_NOMEM;
  bot->ext = x;
  x->health_timer = -1;
  pthread_mutex_init(&x->health_round, NULL);
  llm_stt_config_init(&x->stt);
  mx_err rc = MX_OK;
  if (bot->cfg->llm) {
    rc = llm_config_parse(bot->cfg->llm, bot->cfg->path, &x->llm_cfg, err);
    if (!rc)
      rc = llm_agent_new(x->llm_cfg, bot->db_path, &x->agent, err);
    if (!rc)
      rc = mx_metrics_add_extra(bot->metrics, router_metrics, x);
  }
  if (!rc && bot->cfg->speech) {
    rc = llm_stt_config_parse(bot->cfg->speech, bot->cfg->path, "speech", &x->stt, err);
    x->has_stt = !rc;
  }
  if (!rc)
    rc = mx_ext_tools_init(bot, err);
  for (size_t i = 0; !rc && i < bot->n_idents; i++) {
    bot->idents[i].ext = calloc(1, sizeof(struct mx_ident_ext));
    if (!bot->idents[i].ext)
      rc = MX_ERR_NOMEM;
    else
      rc = mx_ext_tools_ident(&bot->idents[i], err);
  }
  if (!rc)
    rc = mx_ext_health_init(bot, err);
  return rc;
}

void mx_ext_free(struct mx_bot *bot)
{
  struct mx_ext *x = bot->ext;
  if (!x)
    return;
  mx_ext_health_free(bot);
  if (x->agent)
    mx_metrics_remove_extra(bot->metrics, router_metrics, x);
  for (size_t i = 0; i < bot->n_idents; i++)
    mx_ext_tools_ident_free(&bot->idents[i]);
  mx_ext_tools_free(bot);
  llm_agent_free(x->agent);
  llm_config_free(x->llm_cfg);
  llm_stt_config_release(&x->stt);
  pthread_mutex_destroy(&x->health_round);
  free(x);
  bot->ext = NULL;
}

/* ---- E2EE ---- */

mx_err mx_ext_ident_start(struct mx_ident *id, sqlite3 *db, char *err)
{
  (void)db;
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix)
    return MX_OK;
  if (ix->audit && !ix->interrupted_closed) {
    /* Once per process, after the data_dir lock and before the inbox is
     * recovered or any call runs: calls a crash cut off are reported as
     * interrupted, never re-run. */
    int n = 0;
    char aerr[MX_ERRBUF_LEN] = "";
    ix->interrupted_closed = 1;
    if (tools_audit_close_interrupted(ix->audit, &n, aerr))
      mx_error(id->dev->name, "audit: cannot close the calls a crash interrupted: %s", aerr);
    else if (n)
      mx_warn(id->dev->name, "audit: %d tool call(s) were running when the bot stopped; recorded as interrupted, "
                             "not re-run", n);
  }
  if (!ix->e2ee) {
    struct mx_e2ee_opts o;
    memset(&o, 0, sizeof(o));
    o.db_path = id->bot->db_path;
    o.data_dir = id->bot->cfg->data_dir;
    o.user_id = id->user_id;
    o.label = id->dev->name;
    o.device_id = id->device_id;
    o.api = id->api;
    o.operators = (const char *const *)id->bot->cfg->operators;
    o.operator_master_keys = (const char *const *)id->bot->cfg->operator_master_keys;
    o.n_operators = id->bot->cfg->n_operators;
    o.config_path = id->bot->cfg->path;
    o.require_verified_sender = id->bot->cfg->require_verified_sender;
    o.exclude_insecure_devices = id->bot->cfg->exclude_insecure_devices;
    /* only read if the store was lost and cross-signing must be replaced
     * (user-interactive auth); wiped after use */
    o.password_file = id->dev->password_file;
    mx_err rc = mx_e2ee_open(&o, &ix->e2ee, err);
    if (rc)
      return rc;
  } else if (strcmp(mx_e2ee_device_id(ix->e2ee), id->device_id) != 0) {
    /* logged in again (the stored token was rejected at the first sync) */
    mx_err rc = mx_e2ee_switch_device(ix->e2ee, id->device_id, err);
    if (rc)
      return rc;
  }
  mx_err rc = mx_e2ee_start(ix->e2ee, id->next_batch, err);
  if (!rc)
    mx_info(id->dev->name, "end-to-end encryption ready (device %s, ed25519 %s)", id->device_id,
            mx_e2ee_ed25519(ix->e2ee));
  return rc;
}

void mx_ext_ident_free(struct mx_ident *id)
{
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix)
    return;
  mx_e2ee_close(ix->e2ee);
  free(ix);
  id->ext = NULL;
}

mx_err mx_ext_process_sync(struct mx_ident *id, sqlite3 *db, const cJSON *sync, char *err)
{
  struct mx_ident_ext *ix = ident_ext(id);
  return ix && ix->e2ee ? mx_e2ee_process_sync(ix->e2ee, db, sync, err) : MX_OK;
}

int mx_ext_sync_quiet(struct mx_ident *id, const cJSON *sync)
{
  struct mx_ident_ext *ix = ident_ext(id);
  return !ix || !ix->e2ee || mx_e2ee_sync_quiet(ix->e2ee, sync);
}

int mx_ext_sweep_waits(struct mx_ident *id)
{
  struct mx_ident_ext *ix = ident_ext(id);
  return ix && ix->e2ee && mx_e2ee_store_waits(ix->e2ee);
}

void mx_ext_sync_done(struct mx_ident *id, int committed, int sweep)
{
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix || !ix->e2ee)
    return;
  if (!committed) {
    mx_e2ee_sync_aborted(ix->e2ee);
    return;
  }
  char err[MX_ERRBUF_LEN] = "";
  /* one-time keys, fallback key; with sweep also unwedging, key requests */
  if ((sweep ? mx_e2ee_maintain(ix->e2ee, err) : mx_e2ee_maintain_keys(ix->e2ee, err)))
    mx_warn(id->dev->name, "e2ee maintenance: %s", err);
}

mx_err mx_ext_decrypt(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *event, cJSON **plain,
                      struct mx_sender_info *sender, char *err)
{
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix || !ix->e2ee)
    return mx_fail(MX_ERR_UNSUPPORTED, err, "end-to-end encryption is not started for %s", id->user_id);
  struct mx_e2ee_sender s;
  memset(&s, 0, sizeof(s));
  mx_err rc = mx_e2ee_decrypt(ix->e2ee, db, room_id, event, plain, &s, err);
  if (!rc) {
    snprintf(sender->device_id, sizeof(sender->device_id), "%s", s.device_id);
    snprintf(sender->sender_key, sizeof(sender->sender_key), "%s", s.sender_key);
    snprintf(sender->ed25519, sizeof(sender->ed25519), "%s", s.ed25519);
    sender->verified = s.verified;
    sender->encrypted = 1;
  }
  return rc;
}

mx_err mx_ext_take_ready(struct mx_ident *id, sqlite3 *db, cJSON **events, char *err)
{
  struct mx_ident_ext *ix = ident_ext(id);
  *events = NULL;
  return ix && ix->e2ee ? mx_e2ee_take_ready(ix->e2ee, db, events, err) : MX_OK;
}

mx_err mx_ext_encrypt(struct mx_ident *id, const char *room_id, const char *type, const cJSON *content,
                      cJSON **out, char *err)
{
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix || !ix->e2ee)
    return mx_fail(MX_ERR_UNSUPPORTED, err, "room %s is encrypted and encryption is not started", room_id);
  return mx_e2ee_encrypt(ix->e2ee, room_id, type, content, out, err);
}

/* First-use pins are posted to the alerts room once, with how to check
 * them: a pin nobody compared is only as good as the first /keys/query. */
static void announce_new_pins(struct mx_ident *id, struct mx_worker *w, struct mx_e2ee *e)
{
  cJSON *pins = NULL;
  char err[MX_ERRBUF_LEN] = "";
  if (mx_e2ee_take_new_pins(e, &pins, err))
    mx_warn(id->dev->name, "cannot read new operator pins: %s", err);
  const cJSON *p;
  cJSON_ArrayForEach(p, pins)
  {
    const char *user = mx_json_str(p, "user_id"), *key = mx_json_str(p, "master_key");
    struct mx_buf text = MX_BUF_INIT(2048);
    if (mx_buf_addf(&text,
                    "Pinned the cross-signing identity of operator %s on first use: master key %s\n"
                    "Commands from %s are accepted only from sessions signed under this key. Check that it is "
                    "yours: Element Android shows it under Settings > Security & Privacy > Cross-Signing (\"Master "
                    "Key\"; compare ignoring spaces). If it differs, stop the bot "
                    "and run `mxfleet trust show %s --config %s`. To make the key mandatory, put it in the config: "
                    "operators: [{\"user_id\": \"%s\", \"master_key\": \"%s\"}].",
                    user, key, user, user, id->bot->cfg->path, user, key) == MX_OK)
      mx_ext_post_alert(id->bot, w, mx_buf_cstr(&text), NULL);
    mx_buf_release(&text);
  }
  cJSON_Delete(pins);
}

int mx_ext_sender_trusted(struct mx_ident *id, struct mx_msg *m, char *reason, size_t reason_len)
{
  if (!mx_bot_is_operator(id->bot, m->sender)) {
    snprintf(reason, reason_len, "%s is not an operator of this bot.", m->sender);
    return 0;
  }
  struct mx_ident_ext *ix = ident_ext(id);
  if (!m->encrypted) {
    if (!id->bot->cfg->require_verified_sender)
      return 1;
    snprintf(reason, reason_len,
             "Refused: this room is not end-to-end encrypted, and commands are accepted only from encrypted rooms "
             "and devices verified by their owner. Start an encrypted DM with me (Element does this by default).");
    return 0;
  }
  if (!ix || !ix->e2ee) {
    snprintf(reason, reason_len, "Refused: encryption is not ready on this device yet; try again in a moment.");
    return 0;
  }
  struct mx_e2ee_sender s;
  memset(&s, 0, sizeof(s));
  snprintf(s.user_id, sizeof(s.user_id), "%s", m->sender);
  snprintf(s.device_id, sizeof(s.device_id), "%s", m->sender_device ? m->sender_device : "");
  snprintf(s.sender_key, sizeof(s.sender_key), "%s", m->sender_key ? m->sender_key : "");
  snprintf(s.ed25519, sizeof(s.ed25519), "%s", m->sender_ed25519 ? m->sender_ed25519 : "");
  s.verified = m->verified;
  int ok = mx_e2ee_sender_trusted(ix->e2ee, &s, reason, reason_len);
  /* the audit records the state this decision used (the first message of
   * a fresh DM arrives before the sender's devices are known) */
  m->verified = s.verified;
  snprintf(m->trusted_master, sizeof(m->trusted_master), "%s", s.master_key);
  announce_new_pins(id, m->w, ix->e2ee);
  return ok;
}

/* ---- LLM turns ---- */

struct progress {
  struct mx_msg *m;
  char event_id[MX_EVENT_ID_LEN];
};

/* The progress line quotes the start of each call's arguments: it goes
 * through the redactor like everything else that reaches the room. */
static void on_progress(void *ctx, const char *raw)
{
  struct progress *p = ctx;
  struct mx_ext *x = p->m->id->bot->ext;
  char *text = x->redactor ? tools_redact_str(x->redactor, raw) : NULL;
  if (!text)
    return; /* out of memory: better no progress line than an unredacted one */
  if (!p->event_id[0])
    mx_msg_reply(p->m, text, NULL, p->event_id);
  else
    mx_msg_edit(p->m, p->event_id, text, NULL);
  free(text);
}

struct turn_cancel {
  struct mx_ident *id;
  int64_t gen; /* stop_gen when the turn started */
};

static int turn_cancelled(void *ctx)
{
  const struct turn_cancel *c = ctx;
  return c->id->stop_gen != c->gen;
}

/* The turn slot: one turn of a device at a time talks to the model or runs
 * tools (its conversation and its device are not raced). A turn whose tool
 * call waits for the operator's approval (up to the approval's lifetime)
 * gives the slot up meanwhile, so a new question is answered; it takes the
 * slot back before the approved call runs. Two turns asking for writes each
 * wait for their own approval, shown with its exact arguments. */
struct turn_slot {
  struct mx_ident *id;
  int waiting; /* this turn's calls waiting for approval (parallel calls) */
};

static void slot_take(struct mx_ident *id)
{
  while (id->turn_busy)
    pthread_cond_wait(&id->turn_free, &id->turn_lock);
  id->turn_busy = 1;
}

static void slot_give(struct mx_ident *id)
{
  id->turn_busy = 0;
  pthread_cond_broadcast(&id->turn_free);
}

/* tools_origin.waiting: any thread (the LLM runs parallel calls on threads
 * of its own), hence a flag under a mutex rather than the mutex itself. */
static void turn_waiting(void *ctx, int on)
{
  struct turn_slot *t = ctx;
  pthread_mutex_lock(&t->id->turn_lock);
  if (on && t->waiting++ == 0)
    slot_give(t->id);
  else if (!on && --t->waiting == 0)
    slot_take(t->id);
  pthread_mutex_unlock(&t->id->turn_lock);
}

void mx_ext_handle_text(struct mx_msg *m)
{
  struct mx_ext *x = m->id->bot->ext;
  if (!x || !x->agent) {
    mx_msg_reply(m, "No LLM is configured for this device, so I can only run built-in commands. Send !help.",
                 NULL, NULL);
    return;
  }
  mx_ext_current_worker = m->w;
  /* a turn may wait minutes (the model, an approval): its worker is not
   * counted, so commands such as approve and !stop never queue behind it */
  mx_workers_long_begin(m->id->bot->workers);
  struct turn_slot slot = { m->id, 0 };
  pthread_mutex_lock(&m->id->turn_lock);
  slot_take(m->id);
  pthread_mutex_unlock(&m->id->turn_lock);
  struct llm_tools *tools = mx_ext_tools_for_turn(m, turn_waiting, &slot);
  struct llm_turn_req req;
  memset(&req, 0, sizeof(req));
  req.device = m->id->dev->name;
  req.backend = mx_backend_name(m->id->dev->backend);
  req.os = m->id->dev->os ? m->id->dev->os : "linux";
  req.policy = mx_ext_tools_policy_summary(m->id);
  req.prompt_file = m->id->dev->prompt; /* what onboarding wrote, else the llm.agent default */
  req.tools = tools;
  req.room_id = m->room_id;
  req.thread_id = "";
  req.operator_id = m->sender;
  req.text = m->body;
  struct turn_cancel tc = { m->id, m->id->stop_gen };
  req.cancelled = turn_cancelled;
  req.cancel_ctx = &tc;
  struct progress p = { m, "" };
  struct llm_sink sink = { &p, on_progress };
  struct llm_turn_result res;
  memset(&res, 0, sizeof(res));
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc = llm_agent_turn(x->agent, &req, &sink, &res, err);
  if (res.markdown) {
    mx_msg_reply_final(m, res.markdown, res.html);
  } else if (rc) {
    /* an id the operator can quote and the admin can grep for */
    char id[9] = "";
    if (mx_random_alnum(id, 8))
      snprintf(id, sizeof(id), "%08lx", (unsigned long)(mx_now_ms() & 0xffffffff));
    mx_error(m->id->dev->name, "agent turn failed (error id %s): %s", id, err);
    char text[200];
    snprintf(text, sizeof(text), "Sorry, I could not handle that because of an internal error (error id %s). The "
                                 "bot's log has the details under that id.", id);
    mx_msg_reply_final(m, text, NULL);
  }
  /* The answer replies to the question; the progress notice ("running
   * ...") would only be left behind as a stale status: it goes. What ran is
   * in the approval notices, the answer and the audit. */
  if (p.event_id[0] && (res.markdown || rc))
    mx_send_redact(m->id, m->room_id, p.event_id, "progress of a finished request");
  llm_turn_result_free(&res);
  mx_ext_tools_turn_free(tools);
  pthread_mutex_lock(&m->id->turn_lock);
  slot_give(m->id);
  pthread_mutex_unlock(&m->id->turn_lock);
  mx_workers_long_end(m->id->bot->workers);
  mx_ext_current_worker = NULL;
}

int mx_ext_handle_command(struct mx_msg *m, const char *cmd, const char *args)
{
  struct mx_ext *x = m->id->bot->ext;
  mx_ext_current_worker = m->w;
  int handled = 0;
  if (strcmp(cmd, "reset") == 0) {
    char err[MX_ERRBUF_LEN] = "";
    if (!x || !x->agent)
      mx_msg_reply(m, "There is no conversation to reset: no LLM is configured.", NULL, NULL);
    else if (llm_history_reset(x->agent, m->id->dev->name, m->room_id, "", err))
      mx_msg_replyf(m, "Could not reset the conversation: %s", err);
    else
      mx_msg_reply(m, "Conversation history cleared.", NULL, NULL);
    handled = 1;
  } else if (strcmp(cmd, "devices") == 0 || strcmp(cmd, "health") == 0) {
    handled = mx_ext_health_command(m, cmd);
  } else {
    handled = mx_ext_tools_command(m, cmd, args);
  }
  mx_ext_current_worker = NULL;
  return handled;
}

int mx_ext_handle_reaction(struct mx_msg *m, const char *target_event_id, const char *key)
{
  mx_ext_current_worker = m->w;
  int handled = mx_ext_tools_reaction(m, target_event_id, key);
  mx_ext_current_worker = NULL;
  return handled;
}

void mx_ext_status(struct mx_ident *id, struct mx_buf *out)
{
  struct mx_ext *x = id->bot->ext;
  struct mx_ident_ext *ix = ident_ext(id);
  if (ix && ix->e2ee && mx_buf_addf(out, "\nencryption: on (ed25519 %s)", mx_e2ee_ed25519(ix->e2ee)))
    return;
  mx_ext_tools_status(id, out);
  if (x && x->agent) {
    if (mx_buf_adds(out, "\nLLM providers:\n"))
      return;
    if (llm_router_status_text(llm_agent_router(x->agent), out))
      return;
  } else if (mx_buf_adds(out, "\nLLM: not configured")) {
    return;
  }
  if (mx_buf_addf(out, "\nspeech-to-text: %s", x && x->has_stt ? llm_stt_provider_name(x->stt.provider) : "off"))
    return;
}

/* ---- voice ---- */

mx_err mx_ext_transcribe(struct mx_msg *m, char **text, char *err)
{
  struct mx_ext *x = m->id->bot->ext;
  if (!x || !x->has_stt)
    return mx_fail(MX_ERR_UNSUPPORTED, err, "voice messages need a speech-to-text provider (config key 'speech')");
  const cJSON *content = mx_json_obj(m->content, "content");
  const cJSON *info = mx_json_obj(content, "info");
  const char *mime = info ? mx_json_str(info, "mimetype") : NULL;
  int64_t size = 0;
  if (info && mx_json_int(info, "size", &size) && (size_t)size > x->stt.max_bytes)
    return mx_fail(MX_ERR_TOO_BIG, err, "voice message is %lld bytes; the limit is %zu", (long long)size,
                   x->stt.max_bytes);
  struct mx_buf audio = MX_BUF_INIT(x->stt.max_bytes);
  mx_err rc;
  const cJSON *file = mx_json_obj(content, "file");
  const char *url = mx_json_str(content, "url");
  if (file)
    rc = mx_e2ee_attachment_fetch(m->id->api, file, x->stt.max_bytes, &audio, err);
  else if (url)
    rc = mx_api_download(m->id->api, url, x->stt.max_bytes, &audio, err);
  else
    rc = mx_fail(MX_ERR_INVALID, err, "voice message has neither 'url' nor 'file'");
  if (!rc)
    rc = llm_stt_transcribe(&x->stt, audio.buf, audio.len, mime ? mime : "audio/ogg", text, err);
  mx_buf_release(&audio);
  return rc;
}
