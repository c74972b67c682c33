/*
 * devices/health/dev_health.c - the monitor: the device list, one run of
 * every check (probes without the lock, then the alert states and posts),
 * inhibition of agent_down by a stale link. Posts happen after the lock is
 * released, so a post callback may call back into the monitor.
 * Layer: devices/; common/ only (wg via dev_health_wg.c). No Matrix here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_health_int.h"
#include "mx_log.h"
#include "mx_util.h"

static int64_t wall_now(void *ctx)
{
  (void)ctx;
  return mx_now_ms() / 1000;
}

int64_t dev_health_now(const struct dev_health *h)
{
  return h->o.now_fn(h->o.now_ctx);
}

static int or_default(int v, int def)
{
  return v > 0 ? v : def;
}

mx_err dev_health_new(const struct dev_health_opts *o, struct dev_health **out, char *err)
{
  struct dev_health *h;

  *out = NULL;
  if (!o->post)
    return mx_fail(MX_ERR_INVALID, err, "health monitor: expected a post callback, got none");
  h = calloc(1, sizeof *h);
  if (!h)
    return mx_fail(MX_ERR_NOMEM, err, "health monitor: out of memory");
  h->o = *o;
  h->o.interval_s = or_default(o->interval_s, DEV_HEALTH_INTERVAL_S);
  h->o.wg_timeout_ms = or_default(o->wg_timeout_ms, 5000);
  if (!h->o.now_fn)
    h->o.now_fn = wall_now;
  h->stale_after_s = or_default(o->stale_after_s, DEV_HEALTH_STALE_AFTER_S);
  h->timing.repeat_s = or_default(o->repeat_s, DEV_HEALTH_REPEAT_S);
  h->timing.pending_s = o->pending_s >= 0 ? o->pending_s : DEV_HEALTH_PENDING_S;
  h->timing.keep_firing_s = o->keep_firing_s >= 0 ? o->keep_firing_s : DEV_HEALTH_KEEP_FIRING_S;
  h->wg_path = mx_strdup(o->wg_path ? o->wg_path : "/usr/bin/wg");
  h->wg_interface = o->wg_interface ? mx_strdup(o->wg_interface) : NULL;
  pthread_mutex_init(&h->lock, NULL);
  pthread_mutex_init(&h->run_lock, NULL);
  if (!h->wg_path || (o->wg_interface && !h->wg_interface)) {
    dev_health_free(h);
    return mx_fail(MX_ERR_NOMEM, err, "health monitor: out of memory");
  }
  *out = h;
  return MX_OK;
}

static void dev_free(struct dev_health_dev *d)
{
  if (!d)
    return;
  for (size_t i = 0; i < d->nchains; i++) {
    free(d->chains[i]->name);
    free(d->chains[i]);
  }
  free(d->chains);
  free(d->name);
  free(d->backend);
  free(d->wg_pubkey);
  free(d->mesh_address);
  free(d->last_command);
  free(d);
}

void dev_health_free(struct dev_health *h)
{
  if (!h)
    return;
  for (size_t i = 0; i < h->ndevs; i++)
    dev_free(h->devs[i]);
  free(h->devs);
  free(h->wg_path);
  free(h->wg_interface);
  pthread_mutex_destroy(&h->lock);
  pthread_mutex_destroy(&h->run_lock);
  free(h);
}

int dev_health_interval_s(const struct dev_health *h)
{
  return h->o.interval_s;
}

struct dev_health_dev *dev_health_find(const struct dev_health *h, const char *name)
{
  for (size_t i = 0; i < h->ndevs; i++) {
    if (strcmp(h->devs[i]->name, name) == 0)
      return h->devs[i];
  }
  return NULL;
}

static char *dup_or_null(const char *s, int *oom)
{
  char *c;

  if (!s)
    return NULL;
  c = mx_strdup(s);
  if (!c)
    *oom = 1;
  return c;
}

static struct dev_health_dev *dev_make(const struct dev_health_device *in)
{
  struct dev_health_dev *d = calloc(1, sizeof *d);
  int oom = 0;

  if (!d)
    return NULL;
  d->name = dup_or_null(in->name, &oom);
  d->backend = dup_or_null(in->backend ? in->backend : "wg", &oom);
  d->wg_pubkey = dup_or_null(in->wg_pubkey, &oom);
  d->mesh_address = dup_or_null(in->mesh_address, &oom);
  d->agent_health = in->agent_health;
  d->agent_ctx = in->agent_ctx;
  d->ssh_reach = in->ssh_reach;
  d->ssh_ctx = in->ssh_ctx;
  d->handshake = -1;
  d->agent_ok = -1;
  d->ssh_ok = -1;
  if (oom) {
    dev_free(d);
    return NULL;
  }
  return d;
}

mx_err dev_health_add_device(struct dev_health *h, const struct dev_health_device *in, char *err)
{
  struct dev_health_dev *d, **nv;
  mx_err rc = MX_OK;

  if (!in->name || !in->name[0])
    return mx_fail(MX_ERR_INVALID, err, "health monitor: expected a device name, got none");
  d = dev_make(in);
  if (!d)
    return mx_fail(MX_ERR_NOMEM, err, "health monitor: out of memory");
  pthread_mutex_lock(&h->lock);
  if (dev_health_find(h, in->name)) {
    rc = mx_fail(MX_ERR_CONFLICT, err, "health monitor: device '%s' is already monitored", in->name);
    goto cleanup;
  }
  nv = realloc(h->devs, (h->ndevs + 1) * sizeof *nv);
  if (!nv) {
    rc = mx_fail(MX_ERR_NOMEM, err, "health monitor: out of memory");
    goto cleanup;
  }
  h->devs = nv;
  h->devs[h->ndevs++] = d;
  d = NULL;
cleanup:
  pthread_mutex_unlock(&h->lock);
  dev_free(d);
  return rc;
}

mx_err dev_health_remove_device(struct dev_health *h, const char *name, char *err)
{
  struct dev_health_dev *d = NULL;

  /* run_lock first: a run holds pointers to the devices it probes. */
  pthread_mutex_lock(&h->run_lock);
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; i < h->ndevs; i++) {
    if (strcmp(h->devs[i]->name, name) == 0) {
      d = h->devs[i];
      memmove(h->devs + i, h->devs + i + 1, (h->ndevs - i - 1) * sizeof *h->devs);
      h->ndevs--;
      break;
    }
  }
  pthread_mutex_unlock(&h->lock);
  pthread_mutex_unlock(&h->run_lock);
  if (!d)
    return mx_fail(MX_ERR_NOT_FOUND, err, "health monitor: no device named '%s'", name);
  dev_free(d);
  return MX_OK;
}

mx_err dev_health_add_audit_chain(struct dev_health *h, const char *device, const char *chain,
                                  dev_health_probe_fn fn, void *ctx, char *err)
{
  struct dev_health_chain *c = calloc(1, sizeof *c), **nv;
  struct dev_health_dev *d;
  mx_err rc = MX_OK;

  if (!c || !(c->name = mx_strdup(chain))) {
    free(c);
    return mx_fail(MX_ERR_NOMEM, err, "health monitor: out of memory");
  }
  c->fn = fn;
  c->ctx = ctx;
  c->ok = -1;
  pthread_mutex_lock(&h->lock);
  d = dev_health_find(h, device);
  if (!d) {
    rc = mx_fail(MX_ERR_NOT_FOUND, err, "health monitor: no device named '%s'", device);
    goto cleanup;
  }
  nv = realloc(d->chains, (d->nchains + 1) * sizeof *nv);
  if (!nv) {
    rc = mx_fail(MX_ERR_NOMEM, err, "health monitor: out of memory");
    goto cleanup;
  }
  d->chains = nv;
  d->chains[d->nchains++] = c;
  c = NULL;
cleanup:
  pthread_mutex_unlock(&h->lock);
  if (c) {
    free(c->name);
    free(c);
  }
  return rc;
}

void dev_health_note_command(struct dev_health *h, const char *device, const char *summary)
{
  struct dev_health_dev *d;
  char *copy = mx_strdup(summary);

  pthread_mutex_lock(&h->lock);
  d = dev_health_find(h, device);
  if (d && copy) {
    free(d->last_command);
    d->last_command = copy;
    d->last_command_at = dev_health_now(h);
    copy = NULL;
  }
  pthread_mutex_unlock(&h->lock);
  free(copy);
}
