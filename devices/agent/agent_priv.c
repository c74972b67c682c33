/*
 * agent_priv.c - dropping root for mxfleet-agent, and keeping the audit
 * signing key from the user that runs tools. Called after the socket is
 * bound and the keys read, before anything runs a tool. The audit key signs
 * the checkpoints the bot anchors; a tool that could read it could sign a
 * rewritten chain. So when started as root, the key lives in a root-owned
 * directory and is read before the drop. Layer: devices/agent.
 */
#include "agent.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_log.h"
#include "mx_util.h"
#include "tools_audit.h"

mx_err agent_drop_privileges(const char *user, char *err)
{
  if (geteuid() != 0)
    return MX_OK;
  if (!user) {
    mx_warn(NULL, "running as root: set \"user\" in the config to drop privileges");
    return MX_OK;
  }
  struct passwd *pw = getpwnam(user);
  if (!pw)
    return mx_fail(MX_ERR_CONFIG, err, "user: no such user '%s'", user);
  if (pw->pw_uid == 0)
    return mx_fail(MX_ERR_CONFIG, err, "user: expected an unprivileged user, got '%s' (uid 0)", user);
  /* Supplementary groups first, then gid, then uid: after setuid we could
   * no longer change the groups. */
  if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
    return mx_fail(MX_ERR_DENIED, err, "cannot drop privileges to '%s': %s", user, strerror(errno));
  if (setuid(0) == 0)
    return mx_fail(MX_ERR_INTERNAL, err, "privileges could be regained after dropping to '%s'", user);
  mx_info(NULL, "dropped privileges user=%s uid=%u", user, (unsigned)pw->pw_uid);
  return MX_OK;
}

/* path must be root's and closed to others (a directory or the key). */
static mx_err root_only(const char *path, int dir, char *err)
{
  struct stat st;
  if (lstat(path, &st) != 0)
    return mx_fail(MX_ERR_IO, err, "audit key: cannot stat '%s': %s", path, strerror(errno));
  if ((dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) || st.st_uid != 0 || (st.st_mode & (dir ? 022 : 077)))
    return mx_fail(MX_ERR_DENIED, err,
                   "audit key: expected '%s' to be a %s owned by root and closed to others, got uid %u mode %04o; "
                   "refusing to start (move it away to make a new key: the bot will report key_changed)",
                   path, dir ? "directory" : "file", (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
  return MX_OK;
}

mx_err agent_audit_key_prepare(const char *data_dir, const char *user, uint8_t seed[32], int *have, char *err)
{
  *have = 0;
  if (geteuid() != 0 || !user)
    return MX_OK;
  struct passwd *pw = getpwnam(user);
  if (!pw)
    return mx_fail(MX_ERR_CONFIG, err, "user: no such user '%s'", user);
  struct stat st;
  mx_err rc = mx_mkdir_p(data_dir, 0700, err);
  /* a data_dir made just now by root must belong to the agent user */
  if (!rc && stat(data_dir, &st) == 0 && st.st_uid == 0 && chown(data_dir, pw->pw_uid, pw->pw_gid) != 0)
    rc = mx_fail(MX_ERR_IO, err, "cannot hand '%s' to '%s': %s", data_dir, user, strerror(errno));
  char *dir = rc ? NULL : mx_path_join(data_dir, "audit-key");
  char *key = dir ? mx_path_join(dir, "ed25519.key") : NULL;
  if (!rc && (!dir || !key))
    rc = MX_ERR_NOMEM;
  if (!rc && mkdir(dir, 0700) != 0 && errno != EEXIST)
    rc = mx_fail(MX_ERR_IO, err, "cannot create '%s': %s", dir, strerror(errno));
  if (!rc)
    rc = root_only(dir, 1, err);
  if (!rc)
    rc = tools_audit_key_read(key, seed, err);
  if (!rc)
    rc = root_only(key, 0, err);
  *have = rc == MX_OK;
  free(dir);
  free(key);
  return rc;
}
