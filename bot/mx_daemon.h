/*
 * bot/mx_daemon.h - `mxfleet run`: loads the config, opens the store, starts
 * every identity on one loop, serves /health and /metrics, and on
 * SIGTERM/SIGINT finishes in-flight work, persists and exits 0 within 5 s.
 */
#ifndef MX_DAEMON_H
#define MX_DAEMON_H

#include "mx_err.h"

struct mx_run_opts {
  const char *config;
  const char *http_listen; /* overrides the config; NULL = config's */
  int log_level_given;     /* --log-level was given: it wins over the config's log_level */
};

/* Returns the process exit code. */
int mx_daemon_run(const struct mx_run_opts *o);

#endif
