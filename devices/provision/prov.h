/*
 * prov.h - device onboarding and revocation (`mxfleet device add/list/show/
 * revoke`): a list of steps, each with do and undo, journalled under
 * data_dir/provision/ so a failure at step k undoes steps k..1 in reverse and
 * a re-run only reports "already done". Layer: devices/; calls common/,
 * devices/ssh and the homeserver's admin/registration HTTP API (plain libcurl),
 * never bot/: E2EE bootstrap and the DM greeting come in as callbacks.
 * Strings passed in are borrowed for the duration of the call.
 */
#ifndef DEV_PROV_H
#define DEV_PROV_H

#include <stdio.h>

#include "mx_err.h"

/* What onboarding needs from a Matrix client (bot/ fills it; tests use a
 * plain HTTP one). Every function is idempotent and sets *created to 1 only
 * when it changed something; all may be NULL (the step then says "skipped"). */
struct dev_prov_matrix_ops {
  /* Device keys, one-time keys, cross-signing for user_id, logging in with
   * the password in password_file; state kept under data_dir. */
  mx_err (*bootstrap_identity)(void *ctx, const char *homeserver, const char *user_id,
                               const char *password_file, const char *data_dir, int *created, char *err);
  /* Undo of bootstrap_identity: drops local state (the server side goes
   * with the user's deactivation). */
  mx_err (*forget_identity)(void *ctx, const char *user_id, const char *data_dir, char *err);
  /* Finds or creates the DM between user_id and operator_id and posts
   * greeting there once. */
  mx_err (*open_dm_and_greet)(void *ctx, const char *homeserver, const char *user_id,
                              const char *password_file, const char *data_dir, const char *operator_id,
                              const char *greeting, int *created, char *err);
  void *ctx;
};

/* Installs the callbacks dev_provision_cli() uses (the bot calls this once
 * before dispatching `mxfleet device ...`). ops is copied; NULL clears. */
void dev_provision_set_matrix_ops(const struct dev_prov_matrix_ops *ops);

/* Validates the whole config before list/show/revoke read the parts they
 * need (the bot installs its own loader, so these accept exactly what
 * `mxfleet run` accepts). NULL clears. */
void dev_provision_set_config_check(mx_err (*check)(const char *config_path, char *err));

enum dev_prov_via { DEV_PROV_VIA_SSH = 0, DEV_PROV_VIA_WG = 1 };

struct dev_prov_add_opts {
  const char *config_path;   /* the mxfleet JSON config, edited atomically */
  const char *name;          /* device name: [a-z0-9][a-z0-9-]{0,31} */
  enum dev_prov_via via;
  const char *ssh_target;    /* user@host[:port] */
  const char *key_file;      /* SSH private key; NULL = <data_dir>/keys/mxfleet_ed25519 */
  const char *os;            /* linux (default), macos, windows */
  const char *templates_dir; /* manifest templates; NULL = the source tree's tools/templates */
  const char *prompt_template; /* NULL = the source tree's prompts/device.md */
  const char *server_name;   /* NULL = the domain of the first operator */
  const char *host_key_fp;   /* expected "SHA256:..." of the SSH host key; NULL = trust on first use */
  /* --via wg only: */
  const char *mesh;          /* mesh prefix, e.g. "198.51.100.0/24" (default); the hub is its first address */
  const char *wg_interface;  /* hub interface; NULL = config health.wg_interface */
  const char *hub_endpoint;  /* host:port devices reach the hub at (required) */
  const char *agent_bin;     /* mxfleet-agent binary for the device */
  const char *agent_deb;     /* mxfleet-agent .deb, installed by apt where the device has it;
                              * agent_bin, agent_deb or both are required */
  const char *remote_dir;    /* bundle directory on the device; NULL = /opt/mxfleet */
  const char *device_if;     /* WireGuard interface on the device; NULL = wg0 */
  int health_wait_s;         /* deadline for /v1/health through the tunnel; 0 = 30 */
  int no_systemd;            /* run the agent without systemd even where there is one (tests) */
  int fail_at;               /* tests: fail right after step k (1-based); -k: _exit(3) there
                              * (a killed run); 0 = never */
  FILE *out;                 /* progress lines; NULL = stdout */
};

/* Runs (or re-runs) onboarding. On failure every step this run (or an
 * interrupted earlier run, per the journal) created is undone. Runs for
 * the same data_dir are serialised (flock on data_dir/provision);
 * MX_ERR_CONFLICT when another one holds it. */
mx_err dev_prov_add(const struct dev_prov_add_opts *o, const struct dev_prov_matrix_ops *ops, char *err);

/* Deactivates the Matrix user, removes the config entry, the WireGuard peer
 * and the device's secrets/manifest/prompt/known_hosts, and drops its local
 * E2EE state through ops->forget_identity (ops may be NULL); keeps
 * data_dir/audit. */
mx_err dev_prov_revoke(const char *config_path, const char *name, const struct dev_prov_matrix_ops *ops, FILE *out,
                       char *err);

/* Fleet table (or a JSON array with json != 0) from the config + data_dir. */
mx_err dev_prov_list(const char *config_path, int json, FILE *out, char *err);
/* One device in detail (JSON object with json != 0). */
mx_err dev_prov_show(const char *config_path, const char *name, int json, FILE *out, char *err);

#endif
