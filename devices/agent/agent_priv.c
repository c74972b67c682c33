/*
 * agent_priv.c - dropping root for mxfleet-agent. Called after the socket is
 * bound and the key read, before anything runs a tool. Layer: devices/agent.
 */
#include "agent.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "mx_log.h"

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
