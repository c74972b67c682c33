/*
 * prov_files.c - small file helpers for the steps: existence, "same bytes"
 * checks for idempotency and removal that treats a missing file as done.
 * Layer: devices/provision; common/ only.
 */
#include "prov_int.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_util.h"

int prov_file_exists(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0;
}

mx_err prov_file_same(const char *path, const char *data, size_t n, int *same, char *err)
{
  struct mx_buf b;
  *same = 0;
  mx_err rc = mx_file_read(path, PROV_CONFIG_MAX, &b, err);
  if (rc == MX_ERR_NOT_FOUND)
    return MX_OK;
  if (rc)
    return rc;
  *same = b.len == n && (n == 0 || memcmp(b.buf, data, n) == 0);
  mx_buf_release(&b);
  return MX_OK;
}

mx_err prov_remove(const char *path, char *err)
{
  if (unlink(path) != 0 && errno != ENOENT)
    return mx_fail(MX_ERR_IO, err, "cannot remove '%s': %s", path, strerror(errno));
  return MX_OK;
}
