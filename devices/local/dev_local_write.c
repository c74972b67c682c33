/*
 * devices/local/dev_local_write.c - fs.write, atomically: the parent
 * directory is opened through the confined opener, the new content goes to
 * a temporary file in it (O_EXCL, never following a link), is fsync'ed and
 * renamed over the target, and the directory is fsync'ed. A failed write
 * leaves the old file untouched; a hard-linked target (another name for the
 * same inode, possibly outside every root) and anything but a regular file
 * are refused. The replaced file keeps its mode (and owner when we may set
 * it); a new file gets 0600, or the manifest's tools.fs.write.file_mode.
 * Layer: devices/; common/ only.
 */
#include "dev_local_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_crypto.h"
#include "mx_json.h"

#define NEW_FILE_MODE 0600

enum write_how { HOW_OVERWRITE, HOW_APPEND, HOW_CREATE };

struct target {
  const char *path;     /* as given, for messages */
  char dir[4096];       /* parent directory ("/" for a top-level file) */
  const char *base;     /* final component, inside path */
  int dirfd;
  int exists;
  struct stat st;       /* of the existing target */
  char tmp[300];        /* temporary name in dir, "" when none */
};

/* Splits "/a/b/name" into "/a/b" and "name"; the name must be a plain
 * component (not empty, ".", ".."). */
static int split_parent(struct target *t)
{
  const char *slash = strrchr(t->path, '/');
  if (!slash)
    return -1;
  t->base = slash + 1;
  size_t dlen = (size_t)(slash - t->path);
  if (!*t->base || strcmp(t->base, ".") == 0 || strcmp(t->base, "..") == 0 || dlen >= sizeof(t->dir))
    return -1;
  memcpy(t->dir, t->path, dlen);
  t->dir[dlen ? dlen : 1] = '\0';
  if (!dlen)
    t->dir[0] = '/';
  return 0;
}

/* Looks at what the name points to now, without following it. */
static mx_err check_existing(struct target *t, enum write_how how, struct dev_result *r)
{
  if (fstatat(t->dirfd, t->base, &t->st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT)
      return dev_result_set(r, DEV_FAILED, "cannot stat '%s': %s", t->path, strerror(errno)), MX_ERR_IO;
    return MX_OK;
  }
  t->exists = 1;
  if (how == HOW_CREATE)
    return dev_result_set(r, DEV_FAILED, "path '%s' already exists (mode 'create')", t->path), MX_ERR_CONFLICT;
  if (S_ISLNK(t->st.st_mode))
    return dev_result_set(r, DEV_REFUSED, "path '%s' is a symlink: refused (never written through)", t->path),
           MX_ERR_DENIED;
  if (!S_ISREG(t->st.st_mode))
    return dev_result_set(r, DEV_REFUSED, "path '%s' is not a regular file", t->path), MX_ERR_DENIED;
  if (t->st.st_nlink > 1)
    return dev_result_set(r, DEV_REFUSED, "path '%s' has %lu hard links: refused (another name could be outside every root)",
                          t->path, (unsigned long)t->st.st_nlink),
           MX_ERR_DENIED;
  return MX_OK;
}

static int write_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Appending copies the current content first, so append is atomic too. */
static int copy_existing(struct target *t, int out)
{
  int in = openat(t->dirfd, t->base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  if (in < 0)
    return -1;
  /* The same inode we checked: not swapped for a FIFO or a linked file. */
  int ok = fstat(in, &st) == 0 && st.st_ino == t->st.st_ino && st.st_dev == t->st.st_dev;
  char buf[65536];
  ssize_t n;
  while (ok && (n = read(in, buf, sizeof(buf))) != 0)
    ok = n > 0 ? write_all(out, buf, (size_t)n) == 0 : errno == EINTR;
  close(in);
  return ok ? 0 : -1;
}

static int open_tmp(struct target *t, mode_t mode)
{
  char rnd[13];
  if (mx_random_alnum(rnd, 12))
    return -1;
  /* ".name.mxfleet-XXXX": hidden, beside the target, under NAME_MAX. */
  snprintf(t->tmp, sizeof(t->tmp), ".%.200s.mxfleet-%s", t->base, rnd);
  int fd = openat(t->dirfd, t->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0 && fchmod(fd, mode) != 0) { /* exact bits, whatever the umask */
    close(fd);
    unlinkat(t->dirfd, t->tmp, 0);
    return -1;
  }
  return fd;
}

/* The mode (and owner, when allowed) of the file being replaced. */
static void keep_attrs(const struct target *t, int fd)
{
  if (!t->exists)
    return;
  if (fchown(fd, t->st.st_uid, t->st.st_gid) != 0) {
    /* not root: the file becomes ours, as with any editor's save */
  }
  fchmod(fd, t->st.st_mode & 07777);
}

static int put_in_place(struct target *t, enum write_how how)
{
  if (how != HOW_CREATE)
    return renameat(t->dirfd, t->tmp, t->dirfd, t->base);
  /* create: link(2) fails when the name appeared meanwhile. */
  if (linkat(t->dirfd, t->tmp, t->dirfd, t->base, 0) != 0)
    return -1;
  unlinkat(t->dirfd, t->tmp, 0);
  return 0;
}

static mx_err write_tmp(struct target *t, enum write_how how, const char *content, mode_t mode,
                        struct dev_result *r)
{
  int fd = open_tmp(t, mode);
  if (fd < 0) {
    t->tmp[0] = '\0';
    return dev_result_set(r, DEV_FAILED, "cannot create a temporary file beside '%s': %s", t->path, strerror(errno)),
           MX_ERR_IO;
  }
  int e = 0;
  errno = 0;
  if ((how == HOW_APPEND && t->exists && copy_existing(t, fd) != 0) || write_all(fd, content, strlen(content)) != 0)
    e = errno ? errno : EIO;
  keep_attrs(t, fd);
  if (!e && fsync(fd) != 0)
    e = errno;
  close(fd);
  if (e)
    return dev_result_set(r, DEV_FAILED, "write to '%s' failed: %s (the file is unchanged)", t->path, strerror(e)),
           MX_ERR_IO;
  if (put_in_place(t, how) != 0)
    return dev_result_set(r, DEV_FAILED, "cannot replace '%s': %s (the file is unchanged)", t->path, strerror(errno)),
           MX_ERR_IO;
  t->tmp[0] = '\0';
  fsync(t->dirfd); /* the rename itself survives a crash */
  return MX_OK;
}

static enum write_how how_of(const char *s)
{
  return s && strcmp(s, "append") == 0 ? HOW_APPEND : s && strcmp(s, "create") == 0 ? HOW_CREATE : HOW_OVERWRITE;
}

mx_err dev_local_fs_write(struct dev_local *l, const struct dev_call *c, struct dev_result *r)
{
  struct target t = {.path = mx_json_str(c->args, "path"), .dirfd = -1};
  const char *content = mx_json_str(c->args, "content");
  enum write_how how = how_of(mx_json_str(c->args, "mode"));
  char why[MX_ERRBUF_LEN] = "";
  if (!t.path || !content)
    return dev_result_set(r, DEV_FAILED, "%s: missing", t.path ? "content" : "path");
  if (!l->o.open_path)
    return dev_result_set(r, DEV_REFUSED, "no path policy configured: file access refused");
  if (split_parent(&t) != 0)
    return dev_result_set(r, DEV_REFUSED, "path: expected an absolute path to a file, got '%s'", t.path);
  mx_err rc = l->o.open_path(l->o.open_ctx, t.dir, 1, O_RDONLY | O_DIRECTORY, 0, &t.dirfd, why);
  if (rc)
    return dev_result_set(r, rc == MX_ERR_DENIED ? DEV_REFUSED : DEV_FAILED, "%s", why);
  mode_t mode = c->new_file_mode > 0 ? (mode_t)(c->new_file_mode & 0777) : NEW_FILE_MODE;
  if (!check_existing(&t, how, r) && !write_tmp(&t, how, content, mode, r)) {
    r->exit_code = 0;
    rc = mx_buf_addf(&r->out, "wrote %zu bytes to %s", strlen(content), t.path);
  }
  if (t.tmp[0])
    unlinkat(t.dirfd, t.tmp, 0);
  close(t.dirfd);
  return rc;
}
