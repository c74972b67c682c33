/*
 * devices/health/dev_health_run.c - one run of every check: probes first
 * (wg show once for all peers, then each device's callbacks, without the
 * state lock since they may block on the network), then the alert states
 * under the lock, then the posts with no lock held.
 * Layer: devices/; common/ only. Never logs probe details verbatim beyond
 * the short reasons the callbacks chose to give.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_health_int.h"
#include "mx_log.h"

struct post {
  char *text;
  char *html;
};

struct posts {
  struct post *v;
  size_t n;
};

static void link_probe(struct dev_health *h, struct dev_health_dev *d, const struct dev_health_handshake *hs,
                       size_t nhs, const char *wg_err, int64_t now)
{
  struct dev_health_probe *p = &d->probe;
  char age[32];

  p->link_bad = 0;
  p->handshake = -1;
  p->link_detail[0] = '\0';
  if (!d->wg_pubkey || !h->wg_interface)
    return;
  p->link_bad = 1;
  if (wg_err) {
    snprintf(p->link_detail, sizeof p->link_detail, "stale (cannot read handshakes: %.150s)", wg_err);
    return;
  }
  for (size_t i = 0; i < nhs; i++) {
    if (strcmp(hs[i].pubkey, d->wg_pubkey) == 0)
      p->handshake = hs[i].when;
  }
  if (p->handshake < 0) {
    snprintf(p->link_detail, sizeof p->link_detail, "stale (peer not on %s)", h->wg_interface);
    return;
  }
  if (dev_health_hs_classify(p->handshake, now, h->stale_after_s) == DEV_HEALTH_HS_OK) {
    p->link_bad = 0;
    return;
  }
  dev_health_format_age(p->handshake, now, age, sizeof age);
  snprintf(p->link_detail, sizeof p->link_detail, "stale (handshake %s)", age);
}

static int run_probe(dev_health_probe_fn fn, void *ctx, char *detail, size_t n)
{
  int bad;

  detail[0] = '\0';
  bad = fn(ctx, detail, n);
  detail[n - 1] = '\0';
  return !bad;
}

static void device_probe(struct dev_health *h, struct dev_health_dev *d)
{
  struct dev_health_probe *p = &d->probe;
  size_t nchains;

  p->agent_ok = -1;
  p->ssh_ok = -1;
  /* A stale link means the agent cannot answer; asking would only wait for
   * the HTTP timeout, and its alert is inhibited anyway. */
  if (d->agent_health && !p->link_bad)
    p->agent_ok = run_probe(d->agent_health, d->agent_ctx, p->agent_detail, sizeof p->agent_detail);
  if (d->ssh_reach)
    p->ssh_ok = run_probe(d->ssh_reach, d->ssh_ctx, p->ssh_detail, sizeof p->ssh_detail);
  pthread_mutex_lock(&h->lock);
  nchains = d->nchains;
  pthread_mutex_unlock(&h->lock);
  for (size_t i = 0; i < nchains; i++) {
    struct dev_health_chain *c;

    pthread_mutex_lock(&h->lock);
    c = d->chains[i];
    pthread_mutex_unlock(&h->lock);
    c->probe_ok = c->fn ? run_probe(c->fn, c->ctx, c->probe_detail, sizeof c->probe_detail) : 1;
  }
}

static mx_err add_post(struct posts *ps, enum dev_health_post_kind kind, const struct dev_health_dev *d,
                       const struct dev_health_alert *a, int64_t now)
{
  struct mx_buf t = MX_BUF_INIT(MX_BUF_MAX_SMALL), hb = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  struct post *nv;
  char name[DEV_HEALTH_DETAIL_LEN], age[32];
  mx_err rc;

  if (kind == POST_ALERT) {
    rc = mx_buf_addf(&t, "[ALERT] device_id=%s status=%s", d->name, a->status);
  } else {
    dev_health_status_name(a->status, name, sizeof name);
    dev_health_format_age(a->fired_at, now, age, sizeof age);
    rc = mx_buf_addf(&t, "[RESOLVED] device_id=%s status=%s (firing began %s)", d->name, name, age);
  }
  if (!rc)
    rc = mx_buf_adds(&hb, kind == POST_ALERT ? "<b>[ALERT]</b>" : "<b>[RESOLVED]</b>");
  if (!rc)
    rc = dev_health_html_escape(&hb, strchr(mx_buf_cstr(&t), ']') + 1);
  nv = rc ? NULL : realloc(ps->v, (ps->n + 1) * sizeof *nv);
  if (!nv) {
    mx_buf_release(&t);
    mx_buf_release(&hb);
    return MX_ERR_NOMEM;
  }
  ps->v = nv;
  nv[ps->n].text = mx_buf_take(&t);
  nv[ps->n].html = mx_buf_take(&hb);
  ps->n++;
  return MX_OK;
}

/* One check's observation; a post is queued when its state changed. */
static mx_err observe(struct dev_health *h, struct posts *ps, const struct dev_health_dev *d,
                      struct dev_health_alert *a, int bad, const char *status, int inhibited, int64_t now)
{
  enum dev_health_post_kind k = dev_health_alert_observe(a, &h->timing, bad, status, inhibited, now);

  return k == POST_NONE ? MX_OK : add_post(ps, k, d, a, now);
}

static void with_detail(char *out, size_t n, const char *status, const char *detail)
{
  if (detail[0])
    snprintf(out, n, "%s (%s)", status, detail);
  else
    snprintf(out, n, "%s", status);
}

/* Under h->lock: publishes the probe results and steps every alert. */
static mx_err commit_device(struct dev_health *h, struct dev_health_dev *d, struct posts *ps, int64_t now)
{
  struct dev_health_probe *p = &d->probe;
  char status[DEV_HEALTH_DETAIL_LEN + 32];
  mx_err rc = MX_OK;

  d->handshake = p->handshake;
  d->link_bad = p->link_bad;
  memcpy(d->link_detail, p->link_detail, sizeof d->link_detail);
  d->agent_ok = p->agent_ok;
  memcpy(d->agent_detail, p->agent_detail, sizeof d->agent_detail);
  d->ssh_ok = p->ssh_ok;
  memcpy(d->ssh_detail, p->ssh_detail, sizeof d->ssh_detail);
  d->checked_at = now;
  if (d->wg_pubkey && h->wg_interface)
    rc = observe(h, ps, d, &d->link_alert, p->link_bad, p->link_detail, 0, now);
  if (!rc && d->agent_health) {
    with_detail(status, sizeof status, "agent_down", p->agent_detail);
    /* Inhibition: a stale link explains a silent agent; say it once. */
    rc = observe(h, ps, d, &d->agent_alert, p->agent_ok == 0, status, p->link_bad, now);
  }
  if (!rc && d->ssh_reach) {
    with_detail(status, sizeof status, "ssh_unreachable", p->ssh_detail);
    rc = observe(h, ps, d, &d->ssh_alert, p->ssh_ok == 0, status, 0, now);
  }
  for (size_t i = 0; !rc && i < d->nchains; i++) {
    struct dev_health_chain *c = d->chains[i];
    c->ok = c->probe_ok;
    memcpy(c->detail, c->probe_detail, sizeof c->detail);
    rc = observe(h, ps, d, &c->alert, !c->ok, c->detail[0] ? c->detail : "audit_failed", 0, now);
  }
  return rc;
}

static mx_err snapshot(struct dev_health *h, struct dev_health_dev ***devs, size_t *n)
{
  pthread_mutex_lock(&h->lock);
  *n = h->ndevs;
  *devs = malloc((*n ? *n : 1) * sizeof **devs);
  if (*devs && *n)
    memcpy(*devs, h->devs, *n * sizeof **devs);
  pthread_mutex_unlock(&h->lock);
  return *devs ? MX_OK : MX_ERR_NOMEM;
}

static void probe_all(struct dev_health *h, struct dev_health_dev **devs, size_t n, int64_t now)
{
  struct dev_health_handshake *hs = NULL;
  size_t nhs = 0;
  char wgerr[MX_ERRBUF_LEN] = "";
  int wg_failed = 0;

  if (h->wg_interface && dev_health_wg_read(h, &hs, &nhs, wgerr) != MX_OK) {
    wg_failed = 1;
    mx_warn(NULL, "health: cannot read handshakes: %s", wgerr);
  }
  for (size_t i = 0; i < n; i++) {
    link_probe(h, devs[i], hs, nhs, wg_failed ? wgerr : NULL, now);
    device_probe(h, devs[i]);
  }
  free(hs);
}

static void send_posts(struct dev_health *h, struct posts *ps)
{
  for (size_t i = 0; i < ps->n; i++) {
    mx_info(NULL, "health: %s", ps->v[i].text);
    h->o.post(h->o.post_ctx, ps->v[i].text, ps->v[i].html);
    free(ps->v[i].text);
    free(ps->v[i].html);
  }
  free(ps->v);
}

mx_err dev_health_run_once(struct dev_health *h, struct mx_buf *summary, char *err)
{
  struct dev_health_dev **devs = NULL;
  struct posts ps = {NULL, 0};
  size_t n = 0;
  int64_t now;
  mx_err rc;

  pthread_mutex_lock(&h->run_lock);
  rc = snapshot(h, &devs, &n);
  if (rc)
    goto cleanup;
  now = dev_health_now(h);
  probe_all(h, devs, n, now);
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; !rc && i < n; i++)
    rc = commit_device(h, devs[i], &ps, now);
  for (size_t i = 0; !rc && summary && i < n; i++) {
    rc = dev_health_summary_line(h, devs[i], now, summary);
    if (!rc)
      rc = mx_buf_addc(summary, '\n');
  }
  if (!rc && summary && n == 0)
    rc = mx_buf_adds(summary, "no devices are monitored\n");
  pthread_mutex_unlock(&h->lock);
cleanup:
  send_posts(h, &ps);
  pthread_mutex_unlock(&h->run_lock);
  free(devs);
  if (rc)
    return mx_fail(rc, err, "health run: out of memory");
  return MX_OK;
}
