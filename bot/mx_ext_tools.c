/*
 * bot/mx_ext_tools.c - each device's tools engine (manifest, backend,
 * audit, approvals) wired to Matrix: the model's tool calls, approval
 * notices, approve/deny replies and reactions, !pending, !cancel, !stop,
 * !audit. Layer: bot; calls tools/ and devices/ only through their APIs.
 */
#include "mx_ext_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mx_db.h"
#include "dev_wg.h"
#include "mx_device.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_send.h"
#include "mx_util.h"
#include "tools_render.h"

/* Action ids a turn in this process is waiting on: an approval for one of
 * them wakes that turn; any other approved action (pending across a
 * restart) is run here and its result posted. */
static pthread_mutex_t waiting_lock = PTHREAD_MUTEX_INITIALIZER;
static char waiting[64][TOOLS_ACTION_ID_LEN + 1];

static void waiting_set(const char *id, int on)
{
  pthread_mutex_lock(&waiting_lock);
  for (int i = 0; i < 64; i++) {
    if (on && !waiting[i][0]) {
      snprintf(waiting[i], sizeof(waiting[i]), "%s", id);
      break;
    }
    if (!on && strcmp(waiting[i], id) == 0) {
      waiting[i][0] = '\0';
      break;
    }
  }
  pthread_mutex_unlock(&waiting_lock);
}

static int waiting_has(const char *id)
{
  int found = 0;
  pthread_mutex_lock(&waiting_lock);
  for (int i = 0; i < 64 && !found; i++)
    found = strcmp(waiting[i], id) == 0;
  pthread_mutex_unlock(&waiting_lock);
  return found;
}

mx_err mx_ext_tools_init(struct mx_bot *bot, char *err)
{
  struct mx_ext *x = bot->ext;
  char *key = mx_path_join(bot->cfg->data_dir, "redact.key");
  mx_err rc = key ? tools_redact_new_from_file(key, &x->redactor, err) : MX_ERR_NOMEM;
  free(key);
  for (size_t i = 0; !rc && i < bot->cfg->n_redact_literals; i++)
    rc = tools_redact_add_literal(x->redactor, "config", bot->cfg->redact_literals[i], err);
  if (!rc)
    rc = mx_ext_secrets_add(bot, x->redactor, err);
  if (!rc) {
    /* from here on no log line can carry a known secret shape */
    mx_log_set_filter(tools_redact_log_filter, x->redactor);
    rc = tools_approvals_open(bot->db_path, &x->approvals, err);
  }
  return rc;
}

void mx_ext_tools_free(struct mx_bot *bot)
{
  struct mx_ext *x = bot->ext;
  mx_log_set_filter(NULL, NULL);
  tools_approvals_close(x->approvals);
  tools_redact_free(x->redactor);
}

static mx_err add_escaped(struct mx_buf *html, const char *s, size_t n)
{
  struct mx_buf part = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = mx_buf_add(&part, s, n);
  if (!rc)
    rc = mx_html_escape(mx_buf_cstr(&part), html);
  mx_buf_release(&part);
  return rc;
}

/* The head as HTML: its one backtick span becomes <code>. */
static mx_err head_html(const char *head, struct mx_buf *html)
{
  const char *a = strchr(head, '`'), *b = a ? strrchr(head, '`') : NULL;
  mx_err rc = mx_buf_adds(html, "<p><b>");
  if (!rc && a && b > a) {
    rc = add_escaped(html, head, (size_t)(a - head));
    if (!rc)
      rc = mx_buf_adds(html, "<code>");
    if (!rc)
      rc = add_escaped(html, a + 1, (size_t)(b - a - 1));
    if (!rc)
      rc = mx_buf_adds(html, "</code>");
    if (!rc)
      rc = mx_html_escape(b + 1, html);
  } else if (!rc) {
    rc = mx_html_escape(head, html);
  }
  return rc ? rc : mx_buf_adds(html, "</b></p>");
}

/* Phone first: the question in one bold line, what runs in a code block,
 * the details below. */
static mx_err notice_html(const struct tools_notice *n, struct mx_buf *html)
{
  mx_err rc = head_html(mx_buf_cstr(&n->head), html);
  if (!rc && n->shown.len)
    rc = mx_html_code_block(mx_buf_cstr(&n->shown), html);
  if (!rc)
    rc = mx_buf_adds(html, "<p>");
  if (!rc)
    rc = mx_html_escape(mx_buf_cstr(&n->details), html);
  return rc ? rc : mx_buf_adds(html, "</p>");
}

/* ✅ and ❌ on the notice, so one tap approves (the operator's tap adds to
 * the bot's reaction). Best effort: typed answers work without them. */
static void add_answer_reactions(struct mx_ident *id, sqlite3 *db, const char *room, const char *notice,
                                 const char *action_id)
{
  static const char *const keys[] = {"\xe2\x9c\x85", "\xe2\x9d\x8c"};
  for (int i = 0; i < 2; i++) {
    cJSON *c = cJSON_CreateObject();
    cJSON *rel = c ? cJSON_AddObjectToObject(c, "m.relates_to") : NULL;
    char key[64], err[MX_ERRBUF_LEN] = "";
    snprintf(key, sizeof(key), "approval-react:%s:%d", action_id, i);
    if (rel && cJSON_AddStringToObject(rel, "rel_type", "m.annotation") &&
        cJSON_AddStringToObject(rel, "event_id", notice) && cJSON_AddStringToObject(rel, "key", keys[i]) &&
        mx_send_event(id, db, room, "m.reaction", c, key, NULL, err))
      mx_warn(id->dev->name, "approval %s: could not pre-add a reaction: %s", action_id, err);
    cJSON_Delete(c);
  }
}

/* Called on whichever thread runs the tool call (the LLM runs parallel
 * calls on threads of its own), so it uses a connection of its own. */
static mx_err post_notice(void *ctx, const struct tools_pending *p, char **notice_event_id, char *err)
{
  struct mx_ident *id = ctx;
  cJSON *origin = p->origin_json ? cJSON_Parse(p->origin_json) : NULL;
  const char *room = origin ? mx_json_str(origin, "room_id") : NULL;
  if (!room) {
    cJSON_Delete(origin);
    return mx_fail(MX_ERR_INTERNAL, err, "approval notice: no room to post in");
  }
  sqlite3 *db = NULL;
  mx_err orc = mx_db_open(id->bot->db_path, &db, err);
  if (orc) {
    cJSON_Delete(origin);
    return orc;
  }
  struct tools_notice n;
  tools_notice_init(&n);
  struct mx_buf text = MX_BUF_INIT(MX_BUF_MAX_SMALL), html = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = tools_render_notice(p, mx_now_ms(), &n);
  if (!rc)
    rc = tools_notice_text(&n, &text);
  if (!rc)
    rc = notice_html(&n, &html);
  char key[64], ev[MX_EVENT_ID_LEN] = "";
  snprintf(key, sizeof(key), "approval:%s", p->id);
  if (!rc)
    rc = mx_send_notice(id, db, room, key, mx_buf_cstr(&text), mx_buf_cstr(&html), NULL, ev, err);
  if (!rc) {
    *notice_event_id = mx_strdup(ev);
    waiting_set(p->id, 1);
    /* known before anything else is sent: a ✅ tapped as soon as the notice
     * shows must find its approval (it was ignored when it came before) */
    char nerr[MX_ERRBUF_LEN];
    if (tools_approvals_set_notice(((struct mx_ext *)id->bot->ext)->approvals, p->id, ev, nerr))
      mx_warn(id->dev->name, "approval %s: %s", p->id, nerr);
    add_answer_reactions(id, db, room, ev, p->id);
  }
  mx_db_close(db);
  tools_notice_release(&n);
  mx_buf_release(&text);
  mx_buf_release(&html);
  cJSON_Delete(origin);
  return rc;
}

static void approval_closed(void *ctx, const struct tools_pending *p)
{
  (void)ctx;
  waiting_set(p->id, 0);
}

static void build_specs(struct mx_ident_ext *ix)
{
  ix->specs = tools_engine_specs(ix->engine);
  ix->n_specs = (size_t)cJSON_GetArraySize(ix->specs);
  ix->llm_specs = calloc(ix->n_specs ? ix->n_specs : 1, sizeof(*ix->llm_specs));
  size_t i = 0;
  const cJSON *s;
  cJSON_ArrayForEach(s, ix->specs) {
    if (!ix->llm_specs || i >= ix->n_specs)
      break;
    cJSON *params = cJSON_GetObjectItemCaseSensitive(s, "parameters");
    /* keep the printed schema alive next to the spec it describes */
    char *schema = params ? cJSON_PrintUnformatted(params) : NULL;
    cJSON_AddStringToObject((cJSON *)s, "schema_text", schema ? schema : "{}");
    cJSON_free(schema);
    ix->llm_specs[i].name = mx_json_str(s, "name");
    ix->llm_specs[i].description = mx_json_str(s, "description");
    ix->llm_specs[i].schema_json = mx_json_str(s, "schema_text");
    i++;
  }
  ix->n_specs = i;
}

mx_err mx_ext_tools_ident(struct mx_ident *id, char *err)
{
  struct mx_ident_ext *ix = ident_ext(id);
  struct mx_ext *x = id->bot->ext;
  mx_err rc = mx_device_manifest_load(id->bot->cfg, id->dev, &ix->manifest, ix->manifest_note,
                                      sizeof(ix->manifest_note), err);
  if (!rc)
    rc = mx_device_backend_open(id->bot->cfg, id->dev, ix->manifest, &ix->backend, err);
  if (!rc) {
    struct tools_audit_opts ao = { .data_dir = id->bot->cfg->data_dir, .device = id->dev->name };
    rc = tools_audit_open(&ao, &ix->audit, err);
  }
  if (!rc) {
    struct tools_engine_opts eo;
    memset(&eo, 0, sizeof(eo));
    eo.device = id->dev->name;
    eo.manifest = ix->manifest;
    eo.backend = ix->backend;
    eo.audit = ix->audit;
    eo.approvals = x->approvals;
    eo.redactor = x->redactor;
    eo.approver.ctx = id;
    eo.approver.post_notice = post_notice;
    eo.approver.closed = approval_closed;
    rc = tools_engine_new(&eo, &ix->engine, err);
  }
  if (!rc)
    build_specs(ix);
  return rc;
}

void mx_ext_tools_ident_free(struct mx_ident *id)
{
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix)
    return;
  tools_engine_free(ix->engine);
  tools_audit_close(ix->audit);
  if (ix->backend)
    ix->backend->destroy(ix->backend);
  tools_manifest_free(ix->manifest);
  cJSON_Delete(ix->specs);
  free(ix->llm_specs);
  ix->engine = NULL;
  ix->audit = NULL;
  ix->backend = NULL;
  ix->manifest = NULL;
  ix->specs = NULL;
  ix->llm_specs = NULL;
}

const char *mx_ext_tools_policy_summary(struct mx_ident *id)
{
  struct mx_ident_ext *ix = ident_ext(id);
  return ix && ix->manifest ? "Only what this device's manifest allows; risky actions wait for the operator's approval."
                            : "No tools are available on this device.";
}

/* ---- the model's tool calls ---- */

struct turn_tools {
  struct llm_tools t;
  struct mx_msg *m;
  void (*waiting)(void *ctx, int on);
  void *waiting_ctx;
};

static size_t turn_specs(void *ctx, const struct llm_tool_spec **out)
{
  struct turn_tools *tt = ctx;
  struct mx_ident_ext *ix = ident_ext(tt->m->id);
  *out = ix->llm_specs;
  return ix->engine ? ix->n_specs : 0;
}

static mx_err turn_call(void *ctx, const struct llm_tool_call *call, struct llm_tool_result *out)
{
  struct turn_tools *tt = ctx;
  struct mx_msg *m = tt->m;
  struct mx_ident_ext *ix = ident_ext(m->id);
  if (!ix->engine) {
    out->text = mx_strdup("no tools are available on this device");
    out->is_error = 1;
    return MX_OK;
  }
  struct tools_origin origin = { m->sender, m->sender_device, m->verified ? "verified" : "unverified",
                                 m->room_id, m->event_id, m->via_voice,
                                 m->trusted_master[0] ? m->trusted_master : NULL, m->via_voice ? m->body : NULL,
                                 tt->waiting, tt->waiting_ctx };
  struct tools_outcome o;
  memset(&o, 0, sizeof(o));
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc = tools_engine_call(ix->engine, &origin, call->id, call->name, call->args_json, &o, err);
  if (rc) {
    tools_outcome_release(&o);
    return rc;
  }
  out->text = o.text;
  o.text = NULL;
  out->is_error = o.status != TOOLS_OUT_OK || o.exit_code > 0;
  tools_outcome_release(&o);
  return MX_OK;
}

struct llm_tools *mx_ext_tools_for_turn(struct mx_msg *m, void (*on_wait)(void *ctx, int on), void *ctx)
{
  struct turn_tools *tt = calloc(1, sizeof(*tt));
  if (!tt)
    return NULL;
  tt->m = m;
  tt->waiting = on_wait;
  tt->waiting_ctx = ctx;
  tt->t.ctx = tt;
  tt->t.specs = turn_specs;
  tt->t.call = turn_call;
  return &tt->t;
}

void mx_ext_tools_turn_free(struct llm_tools *t)
{
  free(t); /* t is the first member of struct turn_tools */
}

/* ---- approvals and chat commands ---- */

static void post_outcome(struct mx_msg *m, const char *action_id, struct tools_outcome *o)
{
  mx_msg_replyf(m, "Action %s: %s%s%s", action_id, tools_outcome_status_str(o->status), o->text ? "\n" : "",
                o->text ? o->text : "");
}

static void decide(struct mx_msg *m, const char *action_id, enum tools_verdict v, const char *via)
{
  struct mx_ext *x = m->id->bot->ext;
  struct mx_ident_ext *ix = ident_ext(m->id);
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc = tools_approvals_decide(x->approvals, action_id, m->sender, mx_bot_is_operator(m->id->bot, m->sender),
                                     v, via, err);
  if (rc) {
    mx_msg_replyf(m, "Could not %s %s: %s", v == TOOLS_VERDICT_APPROVE ? "approve" : "deny", action_id,
                  err[0] ? err : mx_err_str(rc));
    return;
  }
  if (v == TOOLS_VERDICT_DENY) {
    mx_msg_replyf(m, "Denied %s; it will not run.", action_id);
    return;
  }
  if (waiting_has(action_id)) {
    mx_msg_replyf(m, "Approved %s; running it now.", action_id);
    return;
  }
  /* nobody waits for it (approved after a restart): run it here */
  if (!ix->engine) {
    mx_msg_replyf(m, "Approved %s, but this device has no tools engine to run it.", action_id);
    return;
  }
  struct tools_outcome o;
  memset(&o, 0, sizeof(o));
  rc = tools_engine_run_approved(ix->engine, action_id, &o, err);
  if (rc)
    mx_msg_replyf(m, "Approved %s, but it could not run: %s", action_id, err);
  else
    post_outcome(m, action_id, &o);
  tools_outcome_release(&o);
}

/* The device agent keeps its own chain: compare its signed checkpoint with
 * the ones stored on earlier checks (a rewound or truncated chain shows). */
static mx_err agent_chain_line(struct mx_ident_ext *ix, struct mx_buf *out)
{
  char *status = NULL, err[MX_ERRBUF_LEN] = "";
  mx_err rc = dev_wg_check_audit(ix->backend, &status, err);
  mx_err w = mx_buf_addf(out, "\nagent chain: %s%s", rc == MX_ERR_TAMPERED ? "PROBLEM: " : "",
                         status ? status : err[0] ? err : mx_err_str(rc));
  free(status);
  return w;
}

static int audit_command(struct mx_msg *m, const char *args)
{
  struct mx_ident_ext *ix = ident_ext(m->id);
  if (!ix->audit) {
    mx_msg_reply(m, "This device has no audit log (no tools are configured).", NULL, NULL);
    return 1;
  }
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc;
  if (strncmp(args, "verify", 6) == 0) {
    struct tools_audit_checkpoint anchor;
    struct tools_audit_verify_report rep;
    int have = tools_audit_last_checkpoint(ix->audit, &anchor, err) == MX_OK;
    rc = tools_audit_verify(ix->audit, have ? &anchor : NULL, &rep, err);
    if (!rc)
      rc = tools_render_verify(m->id->dev->name, &rep, &out);
    if (!rc && m->id->dev->backend == MX_BACKEND_WG)
      rc = agent_chain_line(ix, &out);
  } else {
    int n = atoi(args);
    cJSON *recs = NULL;
    rc = tools_audit_recent(ix->audit, n > 0 && n <= 100 ? n : 10, &recs, err);
    if (!rc)
      rc = tools_render_audit(recs, &out);
    cJSON_Delete(recs);
  }
  if (rc)
    mx_msg_replyf(m, "audit: %s", err[0] ? err : mx_err_str(rc));
  else
    mx_msg_reply(m, mx_buf_cstr(&out), NULL, NULL);
  mx_buf_release(&out);
  return 1;
}

/* The action id of "approve K3F9Q2XA." as a phone keyboard types it:
 * leading blanks skipped, letters lowercased, trailing punctuation dropped. */
static void action_id_arg(const char *args, char id[32])
{
  size_t k = 0;
  while (*args == ' ' || *args == '\t')
    args++;
  for (; k < 31 && ((*args >= 'a' && *args <= 'z') || (*args >= 'A' && *args <= 'Z') || (*args >= '0' && *args <= '9'));
       args++)
    id[k++] = (char)(*args >= 'A' && *args <= 'Z' ? *args - 'A' + 'a' : *args);
  id[k] = '\0';
}

/* Chunks of a long text, each one code block, so nothing is cut. 12 KiB of
 * text plus its escaped HTML stays well under Matrix's 64 KiB event limit
 * once encrypted (base64 adds a third). */
#define PENDING_PART_MAX (12 * 1024)

static void reply_in_parts(struct mx_msg *m, const char *text)
{
  size_t n = strlen(text), parts = (n + PENDING_PART_MAX - 1) / PENDING_PART_MAX, off = 0;
  for (size_t i = 1; off < n; i++) {
    size_t len = n - off > PENDING_PART_MAX ? PENDING_PART_MAX : n - off;
    while (off + len < n && len && ((unsigned char)text[off + len] & 0xC0) == 0x80)
      len--; /* never split a UTF-8 sequence */
    struct mx_buf t = MX_BUF_INIT(MX_BUF_MAX_SMALL), h = MX_BUF_INIT(MX_BUF_MAX_SMALL);
    mx_err rc = parts > 1 ? mx_buf_addf(&t, "(part %zu of %zu)\n", i, parts) : MX_OK;
    if (!rc)
      rc = mx_buf_add(&t, text + off, len);
    if (!rc)
      rc = mx_html_code_block(mx_buf_cstr(&t), &h);
    if (!rc)
      mx_msg_reply(m, mx_buf_cstr(&t), mx_buf_cstr(&h), NULL);
    mx_buf_release(&t);
    mx_buf_release(&h);
    off += len;
  }
}

/* `!pending ID`: everything the action would run, secret values masked. */
static void pending_one(struct mx_msg *m, const char *id)
{
  struct mx_ext *x = m->id->bot->ext;
  struct tools_pending p;
  char err[MX_ERRBUF_LEN] = "";
  if (tools_approvals_get(x->approvals, id, &p, err)) {
    mx_msg_replyf(m, "!pending %s: %s", id, err);
    return;
  }
  cJSON *raw = cJSON_Parse(p.args_json ? p.args_json : "{}");
  cJSON *red = raw ? tools_redact_json(x->redactor, raw) : NULL;
  free(p.args_json);
  p.args_json = red ? cJSON_PrintUnformatted(red) : NULL;
  struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  if (strcmp(p.device, m->id->dev->name) != 0)
    mx_msg_replyf(m, "!pending %s: that action belongs to device '%s'; ask its agent", id, p.device);
  else if (!p.args_json || tools_render_action_full(&p, mx_now_ms(), &out))
    mx_msg_replyf(m, "!pending %s: cannot show its arguments", id);
  else
    reply_in_parts(m, mx_buf_cstr(&out));
  mx_buf_release(&out);
  cJSON_Delete(raw);
  cJSON_Delete(red);
  tools_pending_release(&p);
}

int mx_ext_tools_command(struct mx_msg *m, const char *cmd, const char *args)
{
  struct mx_ext *x = m->id->bot->ext;
  struct mx_ident_ext *ix = ident_ext(m->id);
  char id[32] = "", err[MX_ERRBUF_LEN] = "";
  action_id_arg(args, id);
  if (strcasecmp(cmd, "approve") == 0 || strcasecmp(cmd, "deny") == 0) {
    decide(m, id, (cmd[0] | 0x20) == 'a' ? TOOLS_VERDICT_APPROVE : TOOLS_VERDICT_DENY, "reply");
    return 1;
  }
  if (strcmp(cmd, "pending") == 0 && id[0]) {
    pending_one(m, id);
    return 1;
  }
  if (strcmp(cmd, "pending") == 0) {
    cJSON *list = NULL;
    struct mx_buf out = MX_BUF_INIT(MX_BUF_MAX_SMALL);
    if (tools_approvals_list_pending(x->approvals, x->redactor, m->id->dev->name, &list, err) ||
        tools_render_pending(list, &out))
      mx_msg_replyf(m, "!pending: %s", err);
    else
      mx_msg_reply(m, mx_buf_cstr(&out), NULL, NULL);
    cJSON_Delete(list);
    mx_buf_release(&out);
    return 1;
  }
  if (strcmp(cmd, "cancel") == 0) {
    if (!id[0])
      mx_msg_reply(m, "usage: !cancel ID (see !pending)", NULL, NULL);
    else if (tools_approvals_cancel(x->approvals, id, m->sender, err))
      mx_msg_replyf(m, "Could not cancel %s: %s", id, err);
    else
      mx_msg_replyf(m, "Cancelled %s.", id);
    return 1;
  }
  if (strcmp(cmd, "stop") == 0) {
    int n = 0;
    m->id->stop_gen++; /* running turns end before their next model or tool call */
    if (ix->engine)
      n = tools_engine_stop_all(ix->engine);
    else
      tools_approvals_cancel_device(x->approvals, m->id->dev->name, &n, err);
    mx_msg_replyf(m, "Stopped: %d pending or running action(s) on %s cancelled, and any running request ends "
                     "without further steps.", n, m->id->dev->name);
    return 1;
  }
  if (strcmp(cmd, "audit") == 0)
    return audit_command(m, args);
  return 0;
}

int mx_ext_tools_reaction(struct mx_msg *m, const char *target, const char *key)
{
  struct mx_ext *x = m->id->bot->ext;
  int approve = strncmp(key, "\xe2\x9c\x85", 3) == 0 || strncmp(key, "\xf0\x9f\x91\x8d", 4) == 0; /* ✅ 👍 */
  int deny = strncmp(key, "\xe2\x9d\x8c", 3) == 0 || strncmp(key, "\xf0\x9f\x91\x8e", 4) == 0;    /* ❌ 👎 */
  if (!approve && !deny)
    return 0;
  char action[TOOLS_ACTION_ID_LEN + 1], err[MX_ERRBUF_LEN];
  if (tools_approvals_find_by_notice(x->approvals, target, action, err))
    return 0;
  char reason[512];
  if (!mx_ext_reaction_allowed(m, action, approve, reason, sizeof(reason))) {
    mx_msg_reply(m, reason, NULL, NULL);
    return 1;
  }
  decide(m, action, approve ? TOOLS_VERDICT_APPROVE : TOOLS_VERDICT_DENY,
         m->encrypted ? "reaction" : "reaction (unencrypted)");
  return 1;
}

void mx_ext_tools_status(struct mx_ident *id, struct mx_buf *out)
{
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix)
    return;
  if (mx_buf_addf(out, "\nmanifest: %s\ntools: %zu", ix->manifest_note, ix->engine ? ix->n_specs : (size_t)0))
    return;
}
