/*
 * devices/health/dev_health_alert.c - the alert state machine of one
 * (device, check), after Alertmanager/Prometheus: `for` (pending) before
 * firing, `keep_firing_for` before resolving, repeat_interval while firing.
 * Pure: no I/O, no clock of its own (now comes in), so tests drive it freely.
 * Layer: devices/; no mxfleet calls at all.
 */
#include <stdio.h>
#include <string.h>

#include "dev_health_int.h"

static void set_status(struct dev_health_alert *a, const char *status)
{
  snprintf(a->status, sizeof a->status, "%s", status ? status : "");
}

static enum dev_health_post_kind fire(struct dev_health_alert *a, int64_t now)
{
  a->state = AS_FIRING;
  a->since = now;
  a->fired_at = now;
  a->last_sent = now;
  return POST_ALERT;
}

/* Bad observation. A status whose name changes while firing (truncated ->
 * hash_chain_corrupted) is a state change of its own: posted at once. */
static enum dev_health_post_kind on_bad(struct dev_health_alert *a, const struct dev_health_timing *t,
                                        const char *status, int64_t now)
{
  char was[DEV_HEALTH_DETAIL_LEN], is[DEV_HEALTH_DETAIL_LEN];

  dev_health_status_name(a->status, was, sizeof was);
  dev_health_status_name(status, is, sizeof is);
  switch (a->state) {
  case AS_OK:
    set_status(a, status);
    a->state = AS_PENDING;
    a->since = now;
    return t->pending_s <= 0 ? fire(a, now) : POST_NONE;
  case AS_PENDING:
    set_status(a, status);
    return now - a->since >= t->pending_s ? fire(a, now) : POST_NONE;
  case AS_RESOLVING:
    /* Flapping back: still the same firing alert, nothing new to say. */
    a->state = AS_FIRING;
    a->since = now;
    /* fall through */
  case AS_FIRING:
    set_status(a, status);
    if (strcmp(was, is) != 0)
      return fire(a, now);
    if (now - a->last_sent >= t->repeat_s) {
      a->last_sent = now;
      return POST_ALERT;
    }
    return POST_NONE;
  }
  return POST_NONE;
}

static enum dev_health_post_kind on_good(struct dev_health_alert *a, const struct dev_health_timing *t, int64_t now)
{
  switch (a->state) {
  case AS_OK:
    return POST_NONE;
  case AS_PENDING:
    a->state = AS_OK;
    a->since = now;
    return POST_NONE;
  case AS_FIRING:
    a->state = AS_RESOLVING;
    a->since = now;
    if (t->keep_firing_s > 0)
      return POST_NONE;
    /* fall through */
  case AS_RESOLVING:
    if (now - a->since < t->keep_firing_s)
      return POST_NONE;
    a->state = AS_OK;
    a->since = now;
    return POST_RESOLVED;
  }
  return POST_NONE;
}

enum dev_health_post_kind dev_health_alert_observe(struct dev_health_alert *a, const struct dev_health_timing *t,
                                                   int bad, const char *status, int inhibited, int64_t now)
{
  if (inhibited)
    return POST_NONE;
  return bad ? on_bad(a, t, status, now) : on_good(a, t, now);
}

void dev_health_status_name(const char *status, char *out, size_t n)
{
  size_t len = strcspn(status, " (");

  if (n == 0)
    return;
  if (len >= n)
    len = n - 1;
  memcpy(out, status, len);
  out[len] = '\0';
}
