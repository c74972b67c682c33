/*
 * tools/policy/tools_policy.h - the per-device manifest: which tools are
 * enabled, readable and writable path roots, command rules (absolute argv[0]
 * plus one pattern per argument; deny, then ask, then allow; deny by
 * default), per-tool limits, and confined path opening (openat2
 * RESOLVE_BENEATH on a dirfd per root). Format: docs/manifest.md.
 * Layer: tools/, linked by the bot and by mxfleet-agent; common/ only, never
 * devices/ or anything about Matrix or LLMs.
 * Ownership: every `const cJSON *` argument is borrowed; a manifest is owned
 * by whoever loaded it (tools_manifest_free) and is read-only after load, so
 * several threads may check and open paths with it at once.
 */
#ifndef TOOLS_POLICY_H
#define TOOLS_POLICY_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "mx_err.h"

struct tools_manifest;

enum tools_decision {
  TOOLS_ALLOW = 0, /* run without asking */
  TOOLS_ASK = 1,   /* run only after an operator approves */
  TOOLS_DENY = 2   /* never run */
};

/* Per-tool limits from the manifest ("defaults" filled in). */
struct tools_limits {
  int timeout_ms;
  size_t max_output;
  int file_mode;      /* fs.write: permission bits of a new file; 0 = 0600 */
};

struct tools_policy_result {
  enum tools_decision decision;
  struct tools_limits limits;
  char reason[256]; /* why: "commands.allow[2] matched", "path '/etc' is outside every readable root" */
};

enum tools_access { TOOLS_ACCESS_READ = 0, TOOLS_ACCESS_WRITE = 1 };

/* Reads and parses a manifest file (at most 1 MiB). */
mx_err tools_policy_load(const char *path, struct tools_manifest **out, char *err);
/* Parses a manifest; source names it in error messages ("pc1.json").
 * Fails (MX_ERR_CONFIG) on unknown keys, bad types, relative roots, and any
 * rule that would run an interpreter or shell.eval without approval. */
mx_err tools_policy_parse(const cJSON *json, const char *source, struct tools_manifest **out, char *err);
void tools_manifest_free(struct tools_manifest *m);

const char *tools_decision_str(enum tools_decision d);
/* 1 when the manifest enables the tool (it is listed under "tools"). */
int tools_policy_enabled(const struct tools_manifest *m, const char *tool);
/* Limits for a tool (defaults when it sets none). */
struct tools_limits tools_policy_limits(const struct tools_manifest *m, const char *tool);

/*
 * Decides a call. args are already schema-validated. Returns MX_OK with
 * res->decision set (DENY included, with the reason); an error code only
 * when the check itself could not be made.
 */
mx_err tools_policy_check(const struct tools_manifest *m, const char *tool, const cJSON *args,
                          struct tools_policy_result *res, char *err);

/* 1 when argv0 (absolute or bare) names an interpreter or escape hatch
 * (sh, bash, python3, env, xargs, sudo, ssh, find, awk ...). */
int tools_policy_is_interpreter(const char *argv0);

/*
 * Opens path confined to the manifest's roots (readable roots for READ,
 * writable roots for WRITE): the root is found by comparing components
 * (never a string prefix), then the rest is resolved with openat2
 * RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS against the root's dirfd; without
 * openat2 every component is walked with O_NOFOLLOW and symlinks refused.
 * flags/mode as for open(2) (O_CLOEXEC is added). Returns the fd in *fd;
 * MX_ERR_DENIED when the path is outside, MX_ERR_NOT_FOUND / MX_ERR_IO
 * otherwise.
 */
mx_err tools_policy_open(const struct tools_manifest *m, const char *path, enum tools_access access,
                         int flags, mode_t mode, int *fd, char *err);

/* tools_policy_open in the shape of devices/local's dev_local_open_fn, so
 * the agent and the bot can wire the local backend to a manifest:
 * opts.open_path = tools_policy_open_cb; opts.open_ctx = manifest. */
mx_err tools_policy_open_cb(void *manifest, const char *path, int write, int flags, mode_t mode, int *fd, char *err);

/* A lexical check of path against the readable roots in the shape of
 * devices/ssh's check_path: MX_OK inside, MX_ERR_DENIED (reason in err)
 * outside. The ssh backend calls it with the path the host resolved. */
mx_err tools_policy_check_path_cb(void *manifest, const char *path, char *err);

/* The remote login shell the manifest declares ("shell"; default "posix",
 * "cmd" for platform windows): "posix", "fish", "cmd" or "powershell". */
const char *tools_policy_shell(const struct tools_manifest *m);

/* Tests: 1 forces the no-openat2 fallback path (process-wide). */
void tools_policy_force_fallback(int on);

#endif
