/*
 * devices/health/dev_health_json.c - one device's observations as JSON for
 * `mxfleet device list --json` and `device show`. Reads under h->lock.
 * Layer: devices/; common/ only. Every cJSON returned is owned by the caller
 * (free with cJSON_Delete); NULL means unknown device or out of memory.
 */
#include <stdio.h>

#include "dev_health_int.h"

static int add_str_or_null(cJSON *o, const char *key, const char *v)
{
  return (v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key)) != NULL;
}

/* ok: -1 unchecked -> null. */
static int add_check(cJSON *o, const char *key, int present, int ok, const char *detail)
{
  cJSON *c;

  if (!present)
    return cJSON_AddNullToObject(o, key) != NULL;
  c = cJSON_AddObjectToObject(o, key);
  if (!c)
    return 0;
  if (!(ok < 0 ? cJSON_AddNullToObject(c, "ok") : cJSON_AddBoolToObject(c, "ok", ok)))
    return 0;
  return cJSON_AddStringToObject(c, "detail", ok == 0 ? detail : "") != NULL;
}

static int add_alerts(cJSON *o, const struct dev_health_dev *d)
{
  cJSON *a = cJSON_AddArrayToObject(o, "alerts");
  const struct dev_health_alert *all[3] = {&d->link_alert, &d->agent_alert, &d->ssh_alert};
  int ok = a != NULL;

  for (int i = 0; ok && i < 3; i++) {
    if (all[i]->state == AS_FIRING || all[i]->state == AS_RESOLVING)
      ok = cJSON_AddItemToArray(a, cJSON_CreateString(all[i]->status));
  }
  for (size_t i = 0; ok && i < d->nchains; i++) {
    const struct dev_health_alert *c = &d->chains[i]->alert;
    if (c->state == AS_FIRING || c->state == AS_RESOLVING)
      ok = cJSON_AddItemToArray(a, cJSON_CreateString(c->status));
  }
  return ok;
}

static int add_audit(cJSON *o, const struct dev_health_dev *d)
{
  cJSON *arr = cJSON_AddArrayToObject(o, "audit");
  int ok = arr != NULL;

  for (size_t i = 0; ok && i < d->nchains; i++) {
    const struct dev_health_chain *c = d->chains[i];
    cJSON *e = cJSON_CreateObject();
    ok = e && cJSON_AddItemToArray(arr, e);
    if (!ok) {
      cJSON_Delete(e);
      break;
    }
    ok = cJSON_AddStringToObject(e, "chain", c->name) && add_check(e, "status", 1, c->ok, c->detail);
  }
  return ok;
}

static int add_last_command(cJSON *o, const struct dev_health_dev *d)
{
  cJSON *c;

  if (!d->last_command)
    return cJSON_AddNullToObject(o, "last_command") != NULL;
  c = cJSON_AddObjectToObject(o, "last_command");
  return c && cJSON_AddStringToObject(c, "text", d->last_command) &&
         cJSON_AddNumberToObject(c, "at", (double)d->last_command_at);
}

static cJSON *dev_json(const struct dev_health *h, const struct dev_health_dev *d, int64_t now)
{
  cJSON *o = cJSON_CreateObject();
  int wg = d->wg_pubkey && h->wg_interface;
  char age[32];
  int ok;

  if (!o)
    return NULL;
  dev_health_format_age(d->handshake, now, age, sizeof age);
  ok = cJSON_AddStringToObject(o, "name", d->name) && cJSON_AddStringToObject(o, "backend", d->backend) &&
       add_str_or_null(o, "mesh_address", d->mesh_address) &&
       cJSON_AddBoolToObject(o, "online", dev_health_dev_online(h, d, now)) &&
       (wg && d->handshake >= 0 ? cJSON_AddNumberToObject(o, "last_handshake", (double)d->handshake)
                                : cJSON_AddNullToObject(o, "last_handshake")) &&
       add_str_or_null(o, "last_handshake_age", wg && d->handshake >= 0 ? age : NULL) &&
       add_check(o, "agent", d->agent_health != NULL, d->agent_ok, d->agent_detail) &&
       add_check(o, "ssh", d->ssh_reach != NULL, d->ssh_ok, d->ssh_detail) && add_last_command(o, d) &&
       add_audit(o, d) && add_alerts(o, d) &&
       (d->checked_at ? cJSON_AddNumberToObject(o, "checked_at", (double)d->checked_at)
                      : cJSON_AddNullToObject(o, "checked_at"));
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

cJSON *dev_health_device_json(struct dev_health *h, const char *name)
{
  int64_t now = dev_health_now(h);
  struct dev_health_dev *d;
  cJSON *o = NULL;

  pthread_mutex_lock(&h->lock);
  d = dev_health_find(h, name);
  if (d)
    o = dev_json(h, d, now);
  pthread_mutex_unlock(&h->lock);
  return o;
}

cJSON *dev_health_fleet_json(struct dev_health *h)
{
  int64_t now = dev_health_now(h);
  cJSON *arr = cJSON_CreateArray();

  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; arr && i < h->ndevs; i++) {
    cJSON *o = dev_json(h, h->devs[i], now);
    if (!o || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      cJSON_Delete(arr);
      arr = NULL;
    }
  }
  pthread_mutex_unlock(&h->lock);
  return arr;
}
