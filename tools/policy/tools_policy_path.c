/*
 * tools/policy/tools_policy_path.c - path components, root matching and
 * confined opening: openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS) on a
 * dirfd per root; where openat2 is missing, a component walk with
 * O_NOFOLLOW that refuses every symlink and "..". Never a string prefix.
 * Layer: tools/; common/ only.
 */
#include "tools_policy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mx_util.h"

static int force_fallback;

void tools_policy_force_fallback(int on) { force_fallback = on; }

static int is_sep(char c, int windows) { return c == '/' || (windows && c == '\\'); }

int policy_split(const char *path, int windows, char *buf, char **comps, int max)
{
  size_t len = strlen(path);
  memcpy(buf, path, len + 1);
  size_t i = 0;
  if (windows && len >= 3 && ((buf[0] | 0x20) >= 'a' && (buf[0] | 0x20) <= 'z') && buf[1] == ':' &&
      is_sep(buf[2], 1))
    i = 2; /* the drive "c:" becomes the first component */
  else if (len == 0 || !is_sep(buf[0], windows))
    return -1;
  int n = 0;
  if (i == 2) {
    buf[2] = '\0';
    comps[n++] = buf;
    i = 3;
  }
  while (i < len) {
    while (i < len && is_sep(buf[i], windows))
      buf[i++] = '\0';
    if (i >= len)
      break;
    char *c = buf + i;
    while (i < len && !is_sep(buf[i], windows))
      i++;
    buf[i] = '\0';
    i++;
    if (strcmp(c, ".") == 0)
      continue;
    if (n >= max)
      return -1;
    comps[n++] = c;
  }
  return n;
}

int policy_find_root(const struct policy_root *roots, int n, char **comps, int ncomps, int windows)
{
  int best = -1;
  for (int r = 0; r < n; r++) {
    const struct policy_root *root = &roots[r];
    if (root->ncomps > ncomps || (best >= 0 && roots[best].ncomps >= root->ncomps))
      continue;
    int same = 1;
    for (int k = 0; k < root->ncomps && same; k++)
      same = windows ? strcasecmp(root->comps[k], comps[k]) == 0 : strcmp(root->comps[k], comps[k]) == 0;
    if (same)
      best = r;
  }
  return best;
}

/* Opens the root's dirfd on first use (a manifest for a remote device never
 * needs them on the bot host). */
static int root_fd(struct tools_manifest *m, struct policy_root *root)
{
  pthread_mutex_lock(&m->mu);
  if (root->fd == -2)
    root->fd = m->windows ? -1 : open(root->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int fd = root->fd;
  pthread_mutex_unlock(&m->mu);
  return fd;
}

static int openat2_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  /* O_TMPFILE contains the O_DIRECTORY bit: compare all of it. */
  how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

/* Fallback: walk component by component; every intermediate must be a real
 * directory (O_NOFOLLOW + O_DIRECTORY), the last is opened O_NOFOLLOW. */
static int walk_beneath(int dirfd, char **comps, int n, int flags, mode_t mode)
{
  int cur = dup(dirfd);
  for (int k = 0; cur >= 0 && k < n; k++) {
    if (strcmp(comps[k], "..") == 0) {
      close(cur);
      errno = EXDEV;
      return -1;
    }
    int last = k == n - 1;
    int f = last ? (flags | O_NOFOLLOW | O_CLOEXEC) : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int next = openat(cur, comps[k], f, mode);
    int saved = errno;
    close(cur);
    errno = saved;
    if (next < 0 && errno == ENOTDIR && !last)
      errno = ELOOP; /* a symlink where a directory was expected */
    cur = next;
  }
  if (cur >= 0 && n == 0) {
    int f = openat(cur, ".", flags | O_CLOEXEC, mode);
    close(cur);
    cur = f;
  }
  return cur;
}

/* openat2 on the components below the root ("." for the root itself);
 * the component walk when the kernel has no openat2. */
static int open_beneath(int dfd, char **rel, int nrel, int flags, mode_t mode)
{
  if (!force_fallback) {
    struct mx_buf b = MX_BUF_INIT(8192);
    mx_err rc = mx_buf_adds(&b, nrel ? "" : ".");
    for (int k = 0; !rc && k < nrel; k++)
      rc = mx_buf_addf(&b, "%s%s", k ? "/" : "", rel[k]);
    if (rc) {
      errno = ENAMETOOLONG;
      return -1;
    }
    int got = openat2_beneath(dfd, mx_buf_cstr(&b), flags, mode);
    int saved = errno;
    mx_buf_release(&b);
    if (got >= 0 || saved != ENOSYS) {
      errno = saved;
      return got;
    }
    force_fallback = 1; /* kernel before 5.6: use the walk from now on */
  }
  return walk_beneath(dfd, rel, nrel, flags, mode);
}

static mx_err open_errno(int e, const char *path, char *err)
{
  switch (e) {
  case EXDEV:
  case ELOOP:
    return mx_fail(MX_ERR_DENIED, err, "path '%s' resolves outside its root (symlink or '..')", path);
  case ENOENT:
    return mx_fail(MX_ERR_NOT_FOUND, err, "path '%s' does not exist", path);
  case EACCES:
  case EPERM:
    return mx_fail(MX_ERR_DENIED, err, "path '%s': permission denied", path);
  default:
    return mx_fail(MX_ERR_IO, err, "cannot open '%s': %s", path, strerror(e));
  }
}

mx_err tools_policy_open(const struct tools_manifest *cm, const char *path, enum tools_access access, int flags,
                         mode_t mode, int *fd, char *err)
{
  struct tools_manifest *m = (struct tools_manifest *)cm; /* only the lazy dirfds change */
  char *buf = malloc(strlen(path) + 1);
  char *comps[POLICY_MAX_COMPS];
  mx_err rc = MX_OK;
  if (!buf)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  /* A read root never yields a writable fd, whatever the caller asked. */
  if (access == TOOLS_ACCESS_READ &&
      ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_APPEND)) ||
       (flags & O_TMPFILE) == O_TMPFILE)) {
    free(buf);
    return mx_fail(MX_ERR_DENIED, err, "path '%s': write access through a readable root", path);
  }
  int n = policy_split(path, m->windows, buf, comps, POLICY_MAX_COMPS);
  struct policy_root *roots = access == TOOLS_ACCESS_WRITE ? m->write : m->read;
  int nroots = access == TOOLS_ACCESS_WRITE ? m->nwrite : m->nread;
  int r = n < 0 ? -1 : policy_find_root(roots, nroots, comps, n, m->windows);
  if (n < 0) {
    rc = mx_fail(MX_ERR_DENIED, err, "path: expected an absolute path, got '%s'", path);
    goto cleanup;
  }
  if (r < 0) {
    rc = mx_fail(MX_ERR_DENIED, err, "path '%s' is outside every %s root", path,
                 access == TOOLS_ACCESS_WRITE ? "writable" : "readable");
    goto cleanup;
  }
  int dfd = root_fd(m, &roots[r]);
  if (dfd < 0) {
    rc = mx_fail(MX_ERR_UNAVAILABLE, err, "root '%s' is not available on this host", roots[r].path);
    goto cleanup;
  }
  /* Never write through a final symlink. A directory (fs.write's parent)
   * may be reached through one: RESOLVE_BENEATH still keeps it inside. */
  if (access == TOOLS_ACCESS_WRITE && !(flags & O_DIRECTORY))
    flags |= O_NOFOLLOW;
  int got = open_beneath(dfd, comps + roots[r].ncomps, n - roots[r].ncomps, flags, mode);
  if (got < 0) {
    rc = open_errno(errno, path, err);
    goto cleanup;
  }
  *fd = got;
cleanup:
  free(buf);
  return rc;
}

mx_err tools_policy_open_cb(void *manifest, const char *path, int write, int flags, mode_t mode, int *fd, char *err)
{
  return tools_policy_open(manifest, path, write ? TOOLS_ACCESS_WRITE : TOOLS_ACCESS_READ, flags, mode, fd, err);
}
