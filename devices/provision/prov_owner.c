/*
 * prov_owner.c - files that `device add`/`revoke` write while running as
 * root for a bot that runs as an unprivileged service user (the packaged
 * `mxfleet` user): they get that user's ownership, so the next start of the
 * service can read its password files, manifests, keys and E2EE state. The
 * service user is the owner of data_dir when that is not root, else the
 * user named like the config file's group (/etc/mxfleet/mxfleet.json is
 * root:mxfleet 0640). The config file itself keeps its owner, group and
 * mode across the text edit. Layer: devices/provision; common/ only.
 */
#include "prov_int.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_util.h"

int prov_owner_find(const struct prov_cfg *cfg, uid_t *uid, gid_t *gid)
{
  struct stat st;
  if (geteuid() != 0)
    return 0; /* not root: whatever we create is ours, and ours is the bot's */
  if (stat(cfg->data_fs, &st) == 0 && st.st_uid != 0) {
    *uid = st.st_uid;
    *gid = st.st_gid;
    return 1;
  }
  if (stat(cfg->path, &st) != 0 || st.st_gid == 0)
    return 0;
  const struct group *g = getgrgid(st.st_gid);
  const struct passwd *p = g ? getpwnam(g->gr_name) : NULL;
  if (!p || p->pw_uid == 0)
    return 0;
  *uid = p->pw_uid;
  *gid = p->pw_gid;
  return 1;
}

/* nftw has no user pointer; one walk at a time in this CLI */
static uid_t walk_uid;
static gid_t walk_gid;
static int walk_errno;

static int give(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)flag;
  (void)ftw;
  /* only what root made: files a user put there on purpose stay theirs */
  if (st->st_uid == 0 && lchown(path, walk_uid, walk_gid) != 0 && !walk_errno)
    walk_errno = errno;
  return 0;
}

mx_err prov_owner_apply(const char *dir, uid_t uid, gid_t gid, char *err)
{
  walk_uid = uid;
  walk_gid = gid;
  walk_errno = 0;
  if (nftw(dir, give, 16, FTW_PHYS | FTW_MOUNT) != 0 && errno != ENOENT)
    return mx_fail(MX_ERR_IO, err, "cannot walk '%s' to hand it to uid %ld: %s", dir, (long)uid, strerror(errno));
  if (walk_errno)
    return mx_fail(MX_ERR_IO, err, "cannot hand files under '%s' to uid %ld: %s", dir, (long)uid,
                   strerror(walk_errno));
  return MX_OK;
}

mx_err prov_config_write(const char *path, const char *text, char *err)
{
  struct stat st;
  int had = stat(path, &st) == 0;
  mx_err rc = mx_file_write(path, text, strlen(text), had ? (st.st_mode & 07777) : 0600, err);
  /* the rename left a root-owned file: give it back its owner and group */
  if (!rc && had && geteuid() == 0 && chown(path, st.st_uid, st.st_gid) != 0)
    rc = mx_fail(MX_ERR_IO, err, "cannot restore the owner of '%s': %s", path, strerror(errno));
  return rc;
}
