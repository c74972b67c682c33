/*
 * bot/mx_device.h - what a device entry of the config means at run time:
 * the manifest that governs it and the backend that reaches it. `mxfleet run`
 * and `mxfleet config check` both resolve them here, so what the check
 * accepts is what the daemon runs. Layer: bot; calls tools/policy and
 * devices/ backends, never back.
 */
#ifndef MX_DEVICE_H
#define MX_DEVICE_H

#include "dev.h"
#include "mx_config.h"
#include "tools_policy.h"

/* The manifest file for d: devices[].manifest, else the one onboarding
 * wrote (data_dir/manifests/NAME.json) when it exists; NULL means the
 * built-in read-only default. Owned by the caller (free). */
char *mx_device_manifest_path(const struct mx_config *cfg, const struct mx_device_config *d);

/* Loads d's manifest (see above). where (where_len bytes) receives the
 * file's path or "built-in read-only default". *out owned, free with
 * tools_manifest_free. */
mx_err mx_device_manifest_load(const struct mx_config *cfg, const struct mx_device_config *d,
                               struct tools_manifest **out, char *where, size_t where_len, char *err);

/* The built-in read-only manifest for an OS ("linux", "macos", "windows"):
 * reads logs and system information, runs a few harmless commands, writes
 * nothing. Static text; mx_device_manifest_load() keeps of its tools only
 * those the device's backend serves. */
const char *mx_device_default_manifest(const char *os);

/* Opens d's backend (no connection is made yet). m is borrowed by the local
 * backend for its path checks and must outlive it. */
mx_err mx_device_backend_open(const struct mx_config *cfg, const struct mx_device_config *d,
                              struct tools_manifest *m, struct dev_backend **out, char *err);

#endif
