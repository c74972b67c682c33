/*
 * bot/mx_device.c - a device entry's manifest and backend (see mx_device.h).
 * The built-in manifests are the documented default for a device without
 * devices[].manifest: read-only, so a device nobody wrote rules for can be
 * asked about its state but never changed.
 */
#include "mx_device.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev_local.h"
#include "dev_ssh.h"
#include "dev_wg.h"
#include "mx_util.h"
#include "tools_audit.h"

static const char default_unix[] =
    "{\"version\": 1, \"platform\": \"%s\",\n"
    " \"comment\": \"built-in read-only default: logs and system state, nothing is written\",\n"
    " \"defaults\": {\"timeout_ms\": 30000, \"max_output\": 65536},\n"
    " \"paths\": {\"read\": [%s], \"write\": []},\n"
    " \"commands\": {\"allow\": [\n"
    "   {\"argv0\": \"/usr/bin/uptime\", \"args\": []},\n"
    "   {\"argv0\": \"%s\", \"args\": [], \"rest\": \"-[hT]\"}]},\n"
    " \"tools\": {\"fs.read\": {}, \"fs.list\": {}, \"fs.stat\": {}, \"proc.list\": {}, \"shell.exec\": {}}}\n";

static const char default_windows[] =
    "{\"version\": 1, \"platform\": \"windows\",\n"
    " \"comment\": \"built-in read-only default: logs, nothing is written\",\n"
    " \"defaults\": {\"timeout_ms\": 30000, \"max_output\": 65536},\n"
    " \"paths\": {\"read\": [\"C:\\\\ProgramData\", \"C:\\\\Windows\\\\Logs\"], \"write\": []},\n"
    " \"tools\": {\"fs.read\": {}, \"fs.list\": {}, \"fs.stat\": {}}}\n";

const char *mx_device_default_manifest(const char *os)
{
  static char linux_m[1024], macos_m[1024];
  if (os && strcmp(os, "windows") == 0)
    return default_windows;
  if (os && strcmp(os, "macos") == 0) {
    if (!macos_m[0])
      snprintf(macos_m, sizeof(macos_m), default_unix, "macos", "\"/Library/Logs\", \"/private/var/log\"",
               "/bin/df");
    return macos_m;
  }
  if (!linux_m[0])
    snprintf(linux_m, sizeof(linux_m), default_unix, "linux", "\"/var/log\", \"/etc/os-release\"", "/usr/bin/df");
  return linux_m;
}

char *mx_device_manifest_path(const struct mx_config *cfg, const struct mx_device_config *d)
{
  if (d->manifest)
    return mx_strdup(d->manifest);
  char rel[128];
  snprintf(rel, sizeof(rel), "manifests/%s.json", d->name);
  char *p = mx_path_join(cfg->data_dir, rel);
  if (p && access(p, F_OK) != 0) {
    free(p);
    p = NULL;
  }
  return p;
}

mx_err mx_device_manifest_load(const struct mx_config *cfg, const struct mx_device_config *d,
                               struct tools_manifest **out, char *where, size_t where_len, char *err)
{
  char *path = mx_device_manifest_path(cfg, d);
  if (path) {
    snprintf(where, where_len, "%s", path);
    mx_err rc = tools_policy_load(path, out, err);
    free(path);
    return rc;
  }
  snprintf(where, where_len, "built-in read-only default");
  cJSON *j = cJSON_Parse(mx_device_default_manifest(d->os));
  if (!j)
    return mx_fail(MX_ERR_INTERNAL, err, "built-in manifest for '%s' is not JSON", d->os);
  /* only what this backend serves, so the default never names a tool the
   * device cannot run (the engine would warn about each at every start) */
  const char *const *served = dev_served_tools(mx_backend_name(d->backend));
  cJSON *tools = cJSON_GetObjectItemCaseSensitive(j, "tools");
  for (cJSON *t = tools ? tools->child : NULL, *next = NULL; t; t = next) {
    next = t->next;
    size_t k = 0;
    while (served && served[k] && strcmp(served[k], t->string) != 0)
      k++;
    if (!served || !served[k])
      cJSON_DeleteItemFromObjectCaseSensitive(tools, t->string);
  }
  mx_err rc = tools_policy_parse(j, "built-in read-only default", out, err);
  cJSON_Delete(j);
  return rc;
}

/* The bot's own data_dir, resolved: a local device's fs.* tools never open
 * anything in it. Besides the secrets there, the tools run inside the
 * daemon, and on Linux close() of any descriptor of a file drops every
 * POSIX lock the process holds on it - fs.read of mxfleet.db or an audit
 * chain would silently unlock SQLite's files under the daemon's own
 * connections (see common/mx_db.c). One data_dir per process. */
static char own_state[PATH_MAX];

static int inside_own_state(const char *resolved)
{
  size_t n = strlen(own_state);
  return n && strncmp(resolved, own_state, n) == 0 && (resolved[n] == '\0' || resolved[n] == '/');
}

/* Where path (or, when it does not exist yet, its parent) really is,
 * resolved by the manifest's own confined opener with O_PATH: closing an
 * O_PATH descriptor drops no lock. 1 = inside own_state. */
static int probe_own_state(void *manifest, const char *path, int write)
{
  int probe = -1;
  char e2[MX_ERRBUF_LEN];
  if (tools_policy_open_cb(manifest, path, write, O_PATH, 0, &probe, e2) != MX_OK) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
      return 0;
    char *parent = strndup(path, (size_t)(slash - path));
    if (!parent || tools_policy_open_cb(manifest, parent, write, O_PATH | O_DIRECTORY, 0, &probe, e2) != MX_OK)
      probe = -1;
    free(parent);
    if (probe < 0)
      return 0; /* the real open below fails with the reason */
  }
  char link[64], resolved[PATH_MAX];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", probe);
  ssize_t n = readlink(link, resolved, sizeof(resolved) - 1);
  close(probe);
  if (n <= 0)
    return 0;
  resolved[n] = '\0';
  return inside_own_state(resolved);
}

static mx_err open_outside_own_state(void *manifest, const char *path, int write, int flags, mode_t mode, int *fd,
                                     char *err)
{
  if (own_state[0] && path && probe_own_state(manifest, path, write))
    return mx_fail(MX_ERR_DENIED, err, "path '%s' is inside the bot's own data_dir (%s): its databases, keys and "
                                       "secrets are never opened by a tool", path, own_state);
  return tools_policy_open_cb(manifest, path, write, flags, mode, fd, err);
}

mx_err mx_device_backend_open(const struct mx_config *cfg, const struct mx_device_config *d,
                              struct tools_manifest *m, struct dev_backend **out, char *err)
{
  switch (d->backend) {
  case MX_BACKEND_LOCAL: {
    struct dev_local_opts o;
    memset(&o, 0, sizeof(o));
    if (!own_state[0] && cfg->data_dir && !realpath(cfg->data_dir, own_state))
      snprintf(own_state, sizeof(own_state), "%s", cfg->data_dir); /* not made yet: as configured (absolute) */
    o.open_path = open_outside_own_state;
    o.open_ctx = m;
    return dev_local_new(&o, out, err);
  }
  case MX_BACKEND_SSH: {
    char *kh = d->ssh_known_hosts ? mx_strdup(d->ssh_known_hosts) : mx_path_join(cfg->data_dir, "ssh_known_hosts");
    struct dev_ssh_config c = { .host = d->ssh_host, .port = d->ssh_port, .user = d->ssh_user,
                                .key_file = d->ssh_key_file, .known_hosts = kh, .device = d->name,
                                .shell = tools_policy_shell(m),
                                .check_path = tools_policy_check_path_cb, .check_ctx = m };
    mx_err rc = kh ? dev_ssh_new(&c, out, err) : MX_ERR_NOMEM;
    free(kh);
    return rc;
  }
  case MX_BACKEND_WG: {
    /* the agent's checkpoints are verified with tools/audit's code */
    static const struct dev_wg_audit_checks checks = {tools_audit_checkpoint_check, tools_audit_record_hash};
    char url[160];
    snprintf(url, sizeof(url), "http://%s:%d", d->wg_address, d->wg_port);
    struct dev_wg_config c = { .url = url, .key_file = d->wg_hmac_key_file, .data_dir = cfg->data_dir,
                               .device = d->name, .audit_checks = &checks };
    return dev_wg_new(&c, out, err);
  }
  }
  return mx_fail(MX_ERR_CONFIG, err, "devices.%s.backend: unknown kind", d->name);
}
