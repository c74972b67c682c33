/*
 * agent_config.h - mxfleet-agent's configuration file (JSON), parsed
 * strictly: unknown keys, wrong types and out-of-range values fail with the
 * file and key path named ("agent.json: limits.max_body: expected ...").
 * Documented in docs/agent.md. Layer: devices/agent; common/ only.
 */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stddef.h>

#include "mx_err.h"

struct agent_config {
  char *source;        /* the file name, for messages */
  char *device;        /* [A-Za-z0-9._-]{1,64}: audit chain name */
  char *listen_host;   /* the WireGuard address; never a wildcard */
  int listen_port;     /* 1-65535; 0 only when allow_port_zero (tests) */
  char *key_file;      /* per-device HMAC key shared with the bot (0600) */
  char *manifest;      /* the device's manifest, enforced here */
  char *data_dir;      /* audit database and checkpoints */
  char *user;          /* drop to this user when started as root; may be NULL */
  char *log_level;     /* "debug|info|warn|error"; may be NULL */
  size_t max_body;     /* bytes; bigger bodies get 413 */
  unsigned max_connections;
  unsigned per_ip_connections;
  unsigned connection_timeout_s;
};

/* Loads and validates path (at most 256 KiB). */
mx_err agent_config_load(const char *path, int allow_port_zero, struct agent_config *out, char *err);
void agent_config_free(struct agent_config *c);

#endif
