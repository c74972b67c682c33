/*
 * agent.h - mxfleet-agent as a library, so tests can run it in-process and
 * the binary (agent_main.c) stays a thin CLI. Start-up order matters:
 * agent_prepare (as root: key, manifest, bind the socket), then the caller
 * drops privileges, then agent_start (as the agent user: audit database,
 * local backend, HTTP threads). Layer: devices/agent; links only common,
 * tools policy + audit, devices/local and the request signing.
 */
#ifndef AGENT_H
#define AGENT_H

#include <stdint.h>

#include "agent_config.h"
#include "mx_err.h"

struct agent;

/* Loads the key and the manifest and binds the listening socket.
 * cfg must outlive the agent. */
mx_err agent_prepare(const struct agent_config *cfg, struct agent **out, char *err);
/* Opens the audit chain and starts serving. */
mx_err agent_start(struct agent *a, char *err);
/* The bound port (useful when the config said port 0). */
int agent_port(const struct agent *a);
/* Stops serving (waits for in-flight requests) and frees everything. */
void agent_free(struct agent *a);

/* --check-config: the key file and the manifest load (nothing is bound). */
mx_err agent_check(const struct agent_config *cfg, char *err);

/* Drops to user (setgroups, setgid, setuid) when running as root; refuses
 * to continue as root if that fails. A no-op when not root. */
mx_err agent_drop_privileges(const char *user, char *err);

/* When root with a user to drop to: reads (or creates) the audit signing
 * seed in <data_dir>/audit-key/ed25519.key, both root-owned and closed to
 * others, so the user that runs tools can neither read nor replace it;
 * *have = 1. Not root, or no user: *have = 0 (the key stays in data_dir). */
mx_err agent_audit_key_prepare(const char *data_dir, const char *user, uint8_t seed[32], int *have, char *err);

#endif
