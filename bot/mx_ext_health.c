/*
 * bot/mx_ext_health.c - the health monitor (devices/health) wired to the
 * operator-alerts room: a loop timer runs the checks on a worker every
 * interval, alerts and audit checkpoints are posted by the identity that
 * owns the alerts room, and !devices / !health answer there.
 * Layer: bot; the monitor itself knows nothing of Matrix.
 */
#include "mx_ext_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_health.h"
#include "dev_wg.h"
#include "mx_log.h"
#include "mx_send.h"
#include "mx_util.h"
#include "tools_audit.h"

/* Posts into the alerts room as its owner (the first identity). Alerts
 * notify every operator; audit checkpoints are quiet notices. */
static void post_to_alerts_room(struct mx_bot *bot, const char *text, const char *html, int notify)
{
  struct mx_ident *owner = bot->n_idents ? &bot->idents[0] : NULL;
  struct mx_worker *w = mx_ext_current_worker;
  if (!owner || !owner->alerts_room_id || !w)
    return;
  char err[MX_ERRBUF_LEN];
  mx_err rc = notify ? mx_send_alert(owner, w->db, owner->alerts_room_id, text, html,
                                     (const char *const *)bot->cfg->operators, bot->cfg->n_operators, err)
                     : mx_send_notice(owner, w->db, owner->alerts_room_id, NULL, text, html, NULL, NULL, err);
  if (rc)
    mx_error(NULL, "cannot post alert to %s: %s", owner->alerts_room_id, err);
}

static void post_alert(void *ctx, const char *text, const char *html)
{
  mx_warn(NULL, "%s", text);
  post_to_alerts_room(ctx, text, html, 1);
}

void mx_ext_post_alert(struct mx_bot *bot, struct mx_worker *w, const char *text, const char *html)
{
  struct mx_worker *saved = mx_ext_current_worker;
  mx_ext_current_worker = w;
  post_alert(bot, text, html);
  mx_ext_current_worker = saved;
}

static int probe_backend(void *ctx, char *detail, size_t n)
{
  struct mx_ident *id = ctx;
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix || !ix->backend)
    return 0;
  cJSON *info = NULL;
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc = ix->backend->health(ix->backend, &info, err);
  cJSON_Delete(info);
  if (rc)
    snprintf(detail, n, "%s", err[0] ? err : mx_err_str(rc));
  return rc != MX_OK;
}

static int probe_agent_chain(struct mx_ident *id, struct mx_ident_ext *ix, char *detail, size_t n);

/* Bot-side chain: relinked from genesis and compared with the last signed
 * checkpoint; the device agent's chain (wg) is compared with the stored
 * checkpoints of it. */
static int probe_audit(void *ctx, char *detail, size_t n)
{
  struct mx_ident *id = ctx;
  struct mx_ident_ext *ix = ident_ext(id);
  if (!ix || !ix->audit)
    return 0;
  struct tools_audit_checkpoint anchor;
  struct tools_audit_verify_report rep;
  char err[MX_ERRBUF_LEN] = "", stamp[TOOLS_AUDIT_STAMP_LEN];
  /* 1,000 devices mean 17 chain verifications a second at the default
   * interval: a chain whose files nobody wrote since its last good
   * verification is not read again (stamped before verifying, so a write
   * during it makes the next round look again) */
  tools_audit_release_idle(ix->audit, (int64_t)dev_health_interval_s(id->bot->ext->health) * 1000);
  tools_audit_stamp(ix->audit, stamp);
  memcpy(ix->round_stamp, stamp, sizeof(stamp)); /* for post_checkpoints: one look per round */
  if (strcmp(stamp, ix->audit_ok_stamp) == 0)
    return probe_agent_chain(id, ix, detail, n);
  ix->audit_ok_stamp[0] = '\0';
  int have = tools_audit_last_checkpoint(ix->audit, &anchor, err) == MX_OK;
  if (tools_audit_verify(ix->audit, have ? &anchor : NULL, &rep, err)) {
    snprintf(detail, n, "audit_unreadable (%s)", err);
    return 1;
  }
  if (!rep.ok) {
    if (rep.anchored_size && rep.rows < rep.anchored_size)
      snprintf(detail, n, "truncated (have %lld, anchored %lld)", (long long)rep.rows, (long long)rep.anchored_size);
    else
      snprintf(detail, n, "hash_chain_corrupted (seq=%lld)", (long long)rep.first_bad_seq);
    return 1;
  }
  snprintf(ix->audit_ok_stamp, sizeof(ix->audit_ok_stamp), "%s", stamp);
  return probe_agent_chain(id, ix, detail, n);
}

/* The device agent's own chain (wg) against the stored checkpoints of it. */
static int probe_agent_chain(struct mx_ident *id, struct mx_ident_ext *ix, char *detail, size_t n)
{
  char err[MX_ERRBUF_LEN] = "";
  if (id->dev->backend == MX_BACKEND_WG && ix->backend) {
    char *status = NULL;
    mx_err rc = dev_wg_check_audit(ix->backend, &status, err);
    if (rc == MX_ERR_TAMPERED) {
      snprintf(detail, n, "%s", status ? status : "agent_chain_rewound");
      free(status);
      return 1;
    }
    free(status);
  }
  return 0;
}

mx_err mx_ext_health_init(struct mx_bot *bot, char *err)
{
  struct mx_ext *x = bot->ext;
  int any_wg = 0;
  for (size_t i = 0; i < bot->n_idents; i++)
    any_wg |= bot->idents[i].dev->backend == MX_BACKEND_WG;
  struct dev_health_opts o;
  memset(&o, 0, sizeof(o));
  o.interval_s = bot->cfg->health_interval_s;
  o.stale_after_s = bot->cfg->health_stale_after_s;
  o.repeat_s = bot->cfg->health_repeat_s;
  o.pending_s = bot->cfg->health_pending_s;
  o.keep_firing_s = bot->cfg->health_keep_firing_s;
  o.wg_interface = any_wg ? bot->cfg->wg_interface : NULL;
  o.post = post_alert;
  o.post_ctx = bot;
  mx_err rc = dev_health_new(&o, &x->health, err);
  for (size_t i = 0; !rc && i < bot->n_idents; i++) {
    struct mx_ident *id = &bot->idents[i];
    const struct mx_device_config *d = id->dev;
    struct dev_health_device hd;
    memset(&hd, 0, sizeof(hd));
    hd.name = d->name;
    hd.backend = mx_backend_name(d->backend);
    hd.wg_pubkey = d->wg_public_key;
    hd.mesh_address = d->wg_address;
    if (d->backend == MX_BACKEND_WG) {
      hd.agent_health = probe_backend;
      hd.agent_ctx = id;
    } else if (d->backend == MX_BACKEND_SSH) {
      hd.ssh_reach = probe_backend;
      hd.ssh_ctx = id;
    }
    rc = dev_health_add_device(x->health, &hd, err);
    if (!rc && ident_ext(id)->audit)
      rc = dev_health_add_audit_chain(x->health, d->name, "audit", probe_audit, id, err);
  }
  return rc;
}

/* Posts a signed checkpoint of every chain that grew since the last one:
 * the alerts room keeps an outside copy that a rewritten chain cannot
 * match. */
static void post_checkpoints(struct mx_bot *bot)
{
  for (size_t i = 0; i < bot->n_idents; i++) {
    struct mx_ident_ext *ix = ident_ext(&bot->idents[i]);
    if (!ix || !ix->audit)
      continue;
    struct tools_audit_checkpoint last, now;
    char err[MX_ERRBUF_LEN], stamp[TOOLS_AUDIT_STAMP_LEN];
    int64_t size = 0;
    uint8_t head[TOOLS_AUDIT_HASH_LEN];
    /* a chain whose files did not change since the last look has not grown
     * (and reading its head opens its database: 1,000 a minute otherwise).
     * The round's probe just took the stamp, before it read anything: a
     * write since then shows in the next round's. */
    if (ix->round_stamp[0])
      memcpy(stamp, ix->round_stamp, sizeof(stamp));
    else
      tools_audit_stamp(ix->audit, stamp);
    if (strcmp(stamp, ix->ckpt_stamp) == 0)
      continue;
    if (tools_audit_head(ix->audit, &size, head, err))
      continue;
    if (size == 0 || (tools_audit_last_checkpoint(ix->audit, &last, err) == MX_OK && last.size == size)) {
      snprintf(ix->ckpt_stamp, sizeof(ix->ckpt_stamp), "%s", stamp); /* nothing new: look again when it changes */
      continue;
    }
    if (tools_audit_checkpoint(ix->audit, &now, err))
      continue;
    struct mx_buf text = MX_BUF_INIT(MX_BUF_MAX_SMALL);
    if (!tools_audit_checkpoint_text(&now, &text)) {
      struct mx_buf msg = MX_BUF_INIT(MX_BUF_MAX_SMALL);
      if (!mx_buf_addf(&msg, "[CHECKPOINT] device_id=%s\n%s", bot->idents[i].dev->name, mx_buf_cstr(&text))) {
        mx_info(NULL, "%s", mx_buf_cstr(&msg));
        post_to_alerts_room(bot, mx_buf_cstr(&msg), NULL, 0);
      }
      mx_buf_release(&msg);
    }
    mx_buf_release(&text);
  }
}

static void health_job(struct mx_worker *w, void *arg)
{
  struct mx_bot *bot = arg;
  struct mx_ext *x = bot->ext;
  mx_ext_current_worker = w;
  char err[MX_ERRBUF_LEN] = "";
  pthread_mutex_lock(&x->health_round);
  if (dev_health_run_once(x->health, NULL, err))
    mx_warn(NULL, "health checks: %s", err);
  post_checkpoints(bot);
  pthread_mutex_unlock(&x->health_round);
  mx_ext_current_worker = NULL;
}

static int64_t health_timer(struct mx_loop *loop, void *ud)
{
  (void)loop;
  struct mx_bot *bot = ud;
  if (!bot->stopping)
    mx_workers_submit(bot->workers, health_job, bot);
  return (int64_t)dev_health_interval_s(((struct mx_ext *)bot->ext)->health) * 1000;
}

void mx_ext_health_start(struct mx_bot *bot)
{
  struct mx_ext *x = bot->ext;
  if (x && x->health)
    x->health_timer = mx_loop_add_timer(bot->loop, (int64_t)dev_health_interval_s(x->health) * 1000, health_timer, bot);
}

void mx_ext_health_free(struct mx_bot *bot)
{
  struct mx_ext *x = bot->ext;
  dev_health_free(x->health);
  x->health = NULL;
}

int mx_ext_health_command(struct mx_msg *m, const char *cmd)
{
  struct mx_ext *x = m->id->bot->ext;
  if (!x || !x->health)
    return 0;
  struct mx_buf text = MX_BUF_INIT(MX_BUF_MAX_SMALL), html = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  char err[MX_ERRBUF_LEN] = "";
  mx_err rc;
  if (strcmp(cmd, "health") == 0) {
    pthread_mutex_lock(&x->health_round);
    rc = dev_health_run_once(x->health, &text, err);
    pthread_mutex_unlock(&x->health_round);
    if (!rc)
      mx_msg_reply(m, mx_buf_cstr(&text), NULL, NULL);
  } else {
    rc = dev_health_render_table(x->health, &text, &html);
    if (!rc)
      mx_msg_reply(m, mx_buf_cstr(&text), mx_buf_cstr(&html), NULL);
  }
  if (rc)
    mx_msg_replyf(m, "!%s: %s", cmd, err[0] ? err : mx_err_str(rc));
  mx_buf_release(&text);
  mx_buf_release(&html);
  return 1;
}
