/*
 * bot/mx_config.h - the daemon's configuration, parsed from one JSON file.
 *
 * Every error names the file, the key path and what was expected, e.g.
 *   mxfleet.json: devices[2].matrix.user_id: expected a Matrix user ID like
 *   @agent-pc:example.org, got 'pc'
 * Unknown keys are errors. Relative paths are resolved against the config
 * file's directory. Blocks owned by other layers (llm, speech) are kept as
 * owned cJSON copies and validated by their own modules.
 * Ownership: mx_config_load returns an owned struct; free with mx_config_free.
 */
#ifndef MX_CONFIG_H
#define MX_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_err.h"

enum mx_backend_kind { MX_BACKEND_LOCAL = 0, MX_BACKEND_SSH, MX_BACKEND_WG };

struct mx_device_config {
  char *name;                 /* [a-z0-9][a-z0-9-]{0,31} */
  char *user_id;              /* @agent-NAME:server */
  char *password_file;        /* absolute after load */
  char *display_name;         /* default "agent NAME" */
  enum mx_backend_kind backend;
  char *os;                   /* "linux" (default), "macos", "windows" */
  char *manifest;             /* path to the device manifest JSON; NULL = built-in default */
  char *prompt;               /* path to the prompt template; NULL = prompts/device.md */
  /* ssh backend */
  char *ssh_host;
  int ssh_port;               /* default 22 */
  char *ssh_user;
  char *ssh_key_file;
  /* wg backend */
  char *wg_address;           /* agent's WireGuard address, e.g. 198.51.100.2 */
  int wg_port;                /* agent port, default 7443 */
  char *wg_hmac_key_file;
  char *wg_public_key;        /* device's WireGuard public key (health checks) */
  /* additions (config owner) */
  char *ssh_known_hosts;      /* pinned known_hosts file, absolute; NULL = backend default */
};

struct mx_config {
  char *path;                 /* the file it came from */
  char *homeserver;           /* base URL, no trailing slash */
  char *data_dir;             /* absolute after load */
  char **operators;           /* Matrix user IDs */
  char **operator_master_keys;/* parallel to operators: the configured master
                                 key (unpadded base64 ed25519) or NULL = pinned
                                 on first use */
  size_t n_operators;
  char *alerts_room;          /* alias #x:server or room ID !x:server; may be NULL */
  struct mx_device_config *devices;
  size_t n_devices;
  /* bot behaviour */
  int64_t command_max_age_ms; /* default 600000 */
  int require_verified_sender;/* default 1 */
  int exclude_insecure_devices; /* default 0: room keys only to cross-signed devices */
  int sync_timeout_ms;        /* long-poll timeout, default 30000 */
  int sync_timeout_max_ms;    /* ... stretched up to this while the path holds it, default 120000 */
  int log_level;              /* enum mx_log_level; -1 = not set (info, or --log-level) */
  int http_idle_timeout_ms;   /* homeserver silent this long: request stalled, default 30000 */
  char *http_listen;          /* "127.0.0.1:PORT" or NULL (also --http) */
  char *wg_interface;         /* hub WireGuard interface for health, default "wg0" */
  int health_interval_s;      /* default 60 */
  int health_stale_after_s;   /* handshake older than this = stale, default 600 */
  int health_repeat_s;        /* re-post a firing alert at most this often, default 14400 */
  int health_pending_s;       /* bad this long before an alert fires, default 60 */
  int health_keep_firing_s;   /* good this long before [RESOLVED], default 300 */
  char **redact_literals;     /* extra secrets to redact, from config */
  size_t n_redact_literals;
  cJSON *llm;                 /* owned copy of the "llm" block or NULL */
  cJSON *speech;              /* owned copy of the "speech" block or NULL */
  cJSON *registration;        /* owned copy: {"shared_secret_file"|"admin_token_file"} or NULL */
  /* additions (config owner) */
  char *registration_shared_secret_file; /* absolute, or NULL */
  char *registration_admin_token_file;   /* absolute, or NULL */
};

/* Loads and validates FILE. On error returns a code and err holds
 * "FILE: key.path: what was expected". */
mx_err mx_config_load(const char *file, struct mx_config **out, char *err);
void mx_config_free(struct mx_config *cfg);
/* Finds a device by name; NULL when absent. Borrowed. */
const struct mx_device_config *mx_config_device(const struct mx_config *cfg, const char *name);
const char *mx_backend_name(enum mx_backend_kind k);

/* 1 when s is a Matrix user ID "@localpart:server" (localpart of
 * [a-z0-9._=/+-], server a host name, IPv4 or [IPv6] literal, optional port). */
int mx_config_valid_user_id(const char *s);
/* Parses "IP:PORT" ("127.0.0.1:9090", "[::1]:9090"): an IP literal, never a
 * host name, so exactly that address is bound. host gets the literal without
 * brackets (at least 64 bytes); port 0 is accepted only when allow_port0.
 * err: "http listen address 'x': expected IP:PORT like 127.0.0.1:9090". */
mx_err mx_config_parse_listen(const char *s, int allow_port0, char *host, size_t host_len,
                              int *port, char *err);
/* Calls fn once for every documented key path, e.g. "devices[].matrix.user_id"
 * (docs/config.md has one section per path; a test keeps them in step). */
void mx_config_each_key(void (*fn)(void *ctx, const char *path), void *ctx);

#endif
