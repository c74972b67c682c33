/*
 * devices/health/dev_health_int.h - internals of the health monitor shared by
 * its files: the alert state machine (dev_health_alert.c), the device and
 * check records, and the monitor struct. Not for use outside devices/health.
 * Layer: devices/; common/ only.
 */
#ifndef DEV_HEALTH_INT_H
#define DEV_HEALTH_INT_H

#include <pthread.h>

#include "dev_health.h"

/* Alert states, Prometheus-style: a bad observation moves OK to PENDING,
 * which fires after pending_s; a good one moves FIRING to RESOLVING, which
 * resolves after keep_firing_s. */
enum dev_health_astate { AS_OK = 0, AS_PENDING, AS_FIRING, AS_RESOLVING };

struct dev_health_alert {
  enum dev_health_astate state;
  int64_t since;      /* when the current state began */
  int64_t fired_at;   /* when it last began firing */
  int64_t last_sent;  /* when [ALERT] was last posted */
  char status[DEV_HEALTH_DETAIL_LEN]; /* e.g. "stale (handshake 8m ago)" while bad */
};

struct dev_health_timing {
  int pending_s;
  int keep_firing_s;
  int repeat_s;
};

enum dev_health_post_kind { POST_NONE = 0, POST_ALERT, POST_RESOLVED };

/* Applies one observation (bad with its status text, or good) at now and
 * says what to post. inhibited: the observation is ignored (the state is
 * frozen and nothing is posted). */
enum dev_health_post_kind dev_health_alert_observe(struct dev_health_alert *a, const struct dev_health_timing *t,
                                                   int bad, const char *status, int inhibited, int64_t now);

/* The status name of a status text: "stale (handshake 8m ago)" -> "stale". */
void dev_health_status_name(const char *status, char *out, size_t n);

struct dev_health_chain {
  char *name;
  dev_health_probe_fn fn;
  void *ctx;
  int ok;                 /* last result, -1 before the first run */
  char detail[DEV_HEALTH_DETAIL_LEN];
  int probe_ok;           /* this run's result; written only under run_lock */
  char probe_detail[DEV_HEALTH_DETAIL_LEN];
  struct dev_health_alert alert;
};

struct dev_health_dev {
  char *name, *backend, *wg_pubkey, *mesh_address;
  dev_health_probe_fn agent_health, ssh_reach;
  void *agent_ctx, *ssh_ctx;
  /* last observations, read by the renderer under h->lock */
  int64_t handshake;      /* epoch s, 0 never, -1 unknown (peer missing / wg failed) */
  int link_bad;           /* stale link this run */
  char link_detail[DEV_HEALTH_DETAIL_LEN];
  int agent_ok, ssh_ok;   /* -1 not checked */
  char agent_detail[DEV_HEALTH_DETAIL_LEN], ssh_detail[DEV_HEALTH_DETAIL_LEN];
  int64_t checked_at;     /* 0 before the first run */
  char *last_command;
  int64_t last_command_at;
  struct dev_health_alert link_alert, agent_alert, ssh_alert;
  struct dev_health_chain **chains;
  size_t nchains;
  /* this run's probe results; written only under run_lock, then committed */
  struct dev_health_probe {
    int64_t handshake;
    int link_bad, agent_ok, ssh_ok;
    char link_detail[DEV_HEALTH_DETAIL_LEN], agent_detail[DEV_HEALTH_DETAIL_LEN],
        ssh_detail[DEV_HEALTH_DETAIL_LEN];
  } probe;
};

struct dev_health {
  struct dev_health_opts o; /* strings below are owned copies */
  char *wg_interface, *wg_path;
  struct dev_health_timing timing;
  int stale_after_s;
  pthread_mutex_t lock;     /* guards devs and their observations */
  pthread_mutex_t run_lock; /* one run_once at a time */
  struct dev_health_dev **devs;
  size_t ndevs;
};

int64_t dev_health_now(const struct dev_health *h);
struct dev_health_dev *dev_health_find(const struct dev_health *h, const char *name);
/* Whether the device may be called online: fresh handshake (WireGuard) and
 * every check last seen healthy. */
int dev_health_dev_online(const struct dev_health *h, const struct dev_health_dev *d, int64_t now);
/* Reads handshakes for the monitor's interface into *hs and *n (malloc'd). */
mx_err dev_health_wg_read(struct dev_health *h, struct dev_health_handshake **hs, size_t *n, char *err);

/* Appends s HTML-escaped (& < > and both quotes). */
MX_WARN_UNUSED mx_err dev_health_html_escape(struct mx_buf *b, const char *s);
/* Appends the `!health` line of one device (no newline); h->lock held. */
MX_WARN_UNUSED mx_err dev_health_summary_line(const struct dev_health *h, const struct dev_health_dev *d,
                                              int64_t now, struct mx_buf *out);

#endif
