/*
 * devices/local/dev_local_fs.c - fs.read, fs.list, fs.stat, fs.write. Every
 * path is opened through the open_path callback (the manifest's confined
 * opener), and all I/O goes through the fd it returns, so a path cannot be
 * swapped for a symlink between the check and the use. Nothing is opened
 * in a way that can block (FIFOs, devices); fs.write lives in
 * dev_local_write.c.
 * Layer: devices/; common/ only. Output: file bytes (fs.read) or JSON text.
 */
#include "dev_local_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_json.h"
#include "mx_util.h"

mx_err dev_local_open_arg(struct dev_local *l, const struct dev_call *c, int write, int flags, mode_t mode, int *fd,
                       struct dev_result *r)
{
  const char *path = mx_json_str(c->args, "path");
  char why[MX_ERRBUF_LEN] = "";
  if (!path)
    return dev_result_set(r, DEV_FAILED, "path: missing"), MX_ERR_INVALID;
  if (!l->o.open_path)
    return dev_result_set(r, DEV_REFUSED, "no path policy configured: file access refused"), MX_ERR_DENIED;
  mx_err rc = l->o.open_path(l->o.open_ctx, path, write, flags, mode, fd, why);
  if (rc)
    dev_result_set(r, rc == MX_ERR_DENIED ? DEV_REFUSED : DEV_FAILED, "%s", why);
  return rc;
}

static const char *type_of(mode_t m)
{
  return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : S_ISFIFO(m) ? "fifo"
         : S_ISSOCK(m) ? "socket" : "device";
}

/* Opens without blocking (a FIFO or device node would otherwise hold the
 * worker forever inside open()) and refuses anything but a regular file
 * before a single byte is read. */
static mx_err open_regular(struct dev_local *l, const struct dev_call *c, int *fd, struct stat *st,
                           struct dev_result *r)
{
  if (dev_local_open_arg(l, c, 0, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, fd, r))
    return MX_ERR_DENIED;
  if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
    close(*fd);
    *fd = -1;
    dev_result_set(r, DEV_REFUSED, "path '%s' is not a regular file (%s)", mx_json_str(c->args, "path"),
                   type_of(st->st_mode));
    return MX_ERR_DENIED;
  }
  return MX_OK;
}

static mx_err fs_read(struct dev_local *l, const struct dev_call *c, struct dev_result *r)
{
  int fd = -1;
  struct stat st = {0};
  int64_t offset = 0, max = (int64_t)c->max_output;
  int64_t deadline = mx_mono_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 30000);
  mx_json_int(c->args, "offset", &offset);
  if (mx_json_int(c->args, "max_bytes", &max) && (size_t)max > c->max_output)
    max = (int64_t)c->max_output;
  if (open_regular(l, c, &fd, &st, r))
    return MX_OK;
  char buf[65536];
  int64_t pos = offset;
  mx_err rc = MX_OK;
  for (;;) {
    if (mx_mono_ms() >= deadline) { /* a slow network file system: stop at the call's limit */
      dev_result_set(r, DEV_TIMEOUT, "stopped reading after %d ms", c->timeout_ms);
      break;
    }
    ssize_t n = pread(fd, buf, sizeof(buf), pos);
    if (n <= 0)
      break;
    size_t before = r->out.len;
    if ((rc = dev_local_out(r, (size_t)max, buf, (size_t)n)) || r->out.len - before < (size_t)n)
      break;
    pos += n;
  }
  if (r->out.len < (size_t)(st.st_size > offset ? st.st_size - offset : 0))
    r->truncated = 1;
  close(fd);
  r->exit_code = 0;
  return rc;
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(mx_json_str(*(cJSON *const *)a, "name"), mx_json_str(*(cJSON *const *)b, "name"));
}

/* Sorted [{name, type, size}] of a directory read through its fd. */
static mx_err list_dir(int fd, cJSON *arr, size_t cap)
{
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return MX_ERR_IO;
  }
  struct dirent *e;
  size_t count = 0;
  while ((e = readdir(d)) != NULL && count < cap) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    struct stat st;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->d_name);
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      cJSON_AddStringToObject(o, "type", type_of(st.st_mode));
      cJSON_AddNumberToObject(o, "size", (double)st.st_size);
    }
    cJSON_AddItemToArray(arr, o);
    count++;
  }
  closedir(d);
  int n = cJSON_GetArraySize(arr);
  cJSON **items = malloc(sizeof(*items) * (size_t)(n ? n : 1));
  if (!items)
    return MX_ERR_NOMEM;
  for (int i = n - 1; i >= 0; i--)
    items[i] = cJSON_DetachItemFromArray(arr, i);
  qsort(items, (size_t)n, sizeof(*items), cmp_names);
  for (int i = 0; i < n; i++)
    cJSON_AddItemToArray(arr, items[i]);
  free(items);
  return MX_OK;
}

static mx_err put_json(struct dev_result *r, size_t max, cJSON *v)
{
  char *s = cJSON_PrintUnformatted(v);
  cJSON_Delete(v);
  if (!s)
    return MX_ERR_NOMEM;
  mx_err rc = dev_local_out(r, max, s, strlen(s));
  cJSON_free(s);
  r->exit_code = 0;
  return rc;
}

static mx_err fs_list(struct dev_local *l, const struct dev_call *c, struct dev_result *r)
{
  int fd = -1;
  if (dev_local_open_arg(l, c, 0, O_RDONLY | O_DIRECTORY | O_NONBLOCK, 0, &fd, r))
    return MX_OK;
  cJSON *arr = cJSON_CreateArray();
  if (!arr || list_dir(fd, arr, 10000)) {
    cJSON_Delete(arr);
    return dev_result_set(r, DEV_FAILED, "cannot list '%s'", mx_json_str(c->args, "path"));
  }
  return put_json(r, c->max_output, arr);
}

static mx_err fs_stat(struct dev_local *l, const struct dev_call *c, struct dev_result *r)
{
  int fd = -1;
  struct stat st;
  if (dev_local_open_arg(l, c, 0, O_PATH, 0, &fd, r))
    return MX_OK;
  int ok = fstat(fd, &st) == 0;
  close(fd);
  if (!ok)
    return dev_result_set(r, DEV_FAILED, "cannot stat '%s': %s", mx_json_str(c->args, "path"), strerror(errno));
  cJSON *o = cJSON_CreateObject();
  char mode[8];
  snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
  cJSON_AddStringToObject(o, "type", type_of(st.st_mode));
  cJSON_AddNumberToObject(o, "size", (double)st.st_size);
  cJSON_AddStringToObject(o, "mode", mode);
  cJSON_AddNumberToObject(o, "uid", st.st_uid);
  cJSON_AddNumberToObject(o, "gid", st.st_gid);
  cJSON_AddNumberToObject(o, "mtime", (double)st.st_mtime);
  return put_json(r, c->max_output, o);
}

mx_err dev_local_fs(struct dev_local *l, const struct dev_call *c, struct dev_result *r, char *err)
{
  (void)err;
  if (strcmp(c->tool, "fs.read") == 0)
    return fs_read(l, c, r);
  if (strcmp(c->tool, "fs.list") == 0)
    return fs_list(l, c, r);
  if (strcmp(c->tool, "fs.stat") == 0)
    return fs_stat(l, c, r);
  return dev_local_fs_write(l, c, r);
}
