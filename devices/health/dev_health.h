/*
 * devices/health/dev_health.h - the fleet health monitor: per device it checks
 * the WireGuard handshake (`wg show IF latest-handshakes`), the agent's
 * /v1/health, SSH reachability and every audit chain, keeps an
 * Alertmanager-style alert state per (device, check) and hands alert texts to
 * a post callback; it also renders the fleet table for `!devices`.
 * Layer: devices/; common/ and devices/local (exec) only. It knows nothing of
 * Matrix, HTTP clients or the audit library: those come in as callbacks the
 * bot wires. cJSON results are owned by the caller (free with cJSON_Delete).
 */
#ifndef DEV_HEALTH_H
#define DEV_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

#define DEV_HEALTH_INTERVAL_S 60
#define DEV_HEALTH_STALE_AFTER_S 600
#define DEV_HEALTH_REPEAT_S (4 * 3600)
#define DEV_HEALTH_PENDING_S 60
#define DEV_HEALTH_KEEP_FIRING_S 300
#define DEV_HEALTH_DETAIL_LEN 200

/* Epoch seconds; injectable so tests never sleep. */
typedef int64_t (*dev_health_now_fn)(void *ctx);
/* Receives one alert: plain text and the same as HTML. Called without any
 * monitor lock held, from the thread that called dev_health_run_once. */
typedef void (*dev_health_post_fn)(void *ctx, const char *text, const char *html);
/* A probe: 0 when healthy, non-zero when not, with a short reason in detail
 * (NUL-terminated, at most n bytes). For an audit chain the reason is the
 * status itself: "hash_chain_corrupted (seq=47)", "truncated", ... */
typedef int (*dev_health_probe_fn)(void *ctx, char *detail, size_t n);
/* Replaces running wg (tests): fills out with `wg show IF latest-handshakes`. */
typedef mx_err (*dev_health_wg_fn)(void *ctx, const char *iface, struct mx_buf *out, char *err);

struct dev_health_opts {
  int interval_s;      /* 0 = DEV_HEALTH_INTERVAL_S; how often the bot should call run_once */
  int stale_after_s;   /* 0 = DEV_HEALTH_STALE_AFTER_S */
  int repeat_s;        /* 0 = DEV_HEALTH_REPEAT_S; re-post a firing alert at most this often */
  int pending_s;       /* -1 = DEV_HEALTH_PENDING_S; bad this long before firing (0 = at once) */
  int keep_firing_s;   /* -1 = DEV_HEALTH_KEEP_FIRING_S; good this long before resolving */
  const char *wg_interface; /* e.g. "wg0"; NULL: no WireGuard checks */
  const char *wg_path;      /* absolute; NULL = /usr/bin/wg */
  int wg_timeout_ms;        /* 0 = 5000 */
  dev_health_wg_fn wg_show; /* NULL = run wg_path */
  void *wg_ctx;
  dev_health_now_fn now_fn; /* NULL = wall clock */
  void *now_ctx;
  dev_health_post_fn post;  /* required */
  void *post_ctx;
};

/* One device; strings are copied, callbacks may be NULL (check not run). */
struct dev_health_device {
  const char *name;         /* device id, e.g. "pc1" */
  const char *backend;      /* "wg", "ssh", "local" */
  const char *wg_pubkey;    /* base64 public key; NULL for non-WireGuard devices */
  const char *mesh_address; /* e.g. "198.51.100.2"; may be NULL */
  dev_health_probe_fn agent_health; /* GET /v1/health through the tunnel */
  void *agent_ctx;
  dev_health_probe_fn ssh_reach;    /* SSH reachability */
  void *ssh_ctx;
};

struct dev_health;

mx_err dev_health_new(const struct dev_health_opts *o, struct dev_health **out, char *err);
void dev_health_free(struct dev_health *h);

/* MX_ERR_CONFLICT when the name is taken. */
mx_err dev_health_add_device(struct dev_health *h, const struct dev_health_device *d, char *err);
/* Stops monitoring a device (revoke): its alerts are dropped without a
 * [RESOLVED]. Waits for a run in progress; never call it from a post or
 * probe callback. MX_ERR_NOT_FOUND when unknown. */
mx_err dev_health_remove_device(struct dev_health *h, const char *name, char *err);
/* One audit chain of a device (verification + checkpoint comparison in fn);
 * chain names a (device, check) alert state of its own. */
mx_err dev_health_add_audit_chain(struct dev_health *h, const char *device, const char *chain,
                                  dev_health_probe_fn fn, void *ctx, char *err);
/* Records the last command run on a device for the table (text copied). */
void dev_health_note_command(struct dev_health *h, const char *device, const char *summary);

/* Runs every check once (blocking: probes may do network I/O), posts alerts,
 * and, when summary is not NULL, appends a per-device summary (`!health`).
 * Runs are serialised; safe to call from any thread. */
mx_err dev_health_run_once(struct dev_health *h, struct mx_buf *summary, char *err);
int dev_health_interval_s(const struct dev_health *h);

/* The `!devices` fleet table as plain text and as an HTML table (either may
 * be NULL). */
mx_err dev_health_render_table(struct dev_health *h, struct mx_buf *text, struct mx_buf *html);
/* Owned object for one device (NULL when unknown or out of memory); the
 * array of all devices for `mxfleet device list --json`. */
cJSON *dev_health_device_json(struct dev_health *h, const char *name);
cJSON *dev_health_fleet_json(struct dev_health *h);

/* ---- parsing and formatting helpers (also used by `mxfleet device list`) ---- */

struct dev_health_handshake {
  char pubkey[45];  /* base64 WireGuard key, 44 chars */
  int64_t when;     /* epoch seconds; 0 = never */
};

/* Parses `wg show IF latest-handshakes` output (lines "PUBKEY\tUNIX_TIME").
 * *out is malloc'd (free()), *n entries; an empty text gives 0 entries. */
mx_err dev_health_parse_handshakes(const char *text, struct dev_health_handshake **out, size_t *n, char *err);

enum dev_health_hs_state { DEV_HEALTH_HS_NEVER = 0, DEV_HEALTH_HS_STALE = 1, DEV_HEALTH_HS_OK = 2 };
enum dev_health_hs_state dev_health_hs_classify(int64_t when, int64_t now, int stale_after_s);
/* "never", "30s ago", "8m ago", "3h ago", "2d ago" into out (size n). */
void dev_health_format_age(int64_t when, int64_t now, char *out, size_t n);

#endif
