/* mx_util.c - time, file and string helpers; see mx_util.h. */
#include "mx_util.h"

#include "mx_crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t mx_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mx_mono_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mx_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

mx_err mx_file_read(const char *path, size_t max, struct mx_buf *out, char *err)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return mx_fail(errno == ENOENT ? MX_ERR_NOT_FOUND : MX_ERR_IO, err, "cannot open '%s': %s", path,
                   strerror(errno));
  mx_buf_init(out, max);
  mx_err rc = mx_buf_add(out, "", 0);
  char chunk[8192];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = mx_fail(MX_ERR_IO, err, "cannot read '%s': %s", path, strerror(errno));
      break;
    }
    if (n == 0)
      break;
    rc = mx_buf_add(out, chunk, (size_t)n);
    if (rc) {
      rc = mx_fail(rc, err, "'%s' is larger than %zu bytes", path, max);
      break;
    }
  }
  close(fd);
  if (rc)
    mx_buf_release(out);
  return rc;
}

mx_err mx_file_write(const char *path, const void *data, size_t n, mode_t mode, char *err)
{
  /* unique per call: two threads may write the same file at once (the
   * rename makes the last complete write win, never a mix of both) */
  char uniq[13];
  if (mx_random_alnum(uniq, 12))
    return mx_fail(MX_ERR_CRYPTO, err, "no randomness for a temporary file name");
  size_t len = strlen(path) + 40;
  char *tmp = malloc(len);
  if (!tmp)
    return MX_ERR_NOMEM;
  snprintf(tmp, len, "%s.tmp%ld.%s", path, (long)getpid(), uniq);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    mx_err rc = mx_fail(MX_ERR_IO, err, "cannot create '%s': %s", tmp, strerror(errno));
    free(tmp);
    return rc;
  }
  fchmod(fd, mode);
  const char *p = data;
  size_t left = n;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      break;
    p += w;
    left -= (size_t)w;
  }
  int ok = left == 0 && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, path) != 0) {
    mx_err rc = mx_fail(MX_ERR_IO, err, "cannot write '%s': %s", path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return rc;
  }
  free(tmp);
  return MX_OK;
}

mx_err mx_mkdir_p(const char *path, mode_t mode, char *err)
{
  char *copy = mx_strdup(path);
  if (!copy)
    return MX_ERR_NOMEM;
  for (char *p = copy + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char saved = *p;
      *p = '\0';
      if (mkdir(copy, mode) != 0 && errno != EEXIST) {
        mx_err rc = mx_fail(MX_ERR_IO, err, "cannot create directory '%s': %s", copy, strerror(errno));
        free(copy);
        return rc;
      }
      *p = saved;
      if (saved == '\0')
        break;
    }
  }
  free(copy);
  return MX_OK;
}

char *mx_path_join(const char *dir, const char *name)
{
  if (name[0] == '/' || !dir || !*dir)
    return mx_strdup(name);
  size_t n = strlen(dir) + strlen(name) + 2;
  char *out = malloc(n);
  if (out)
    snprintf(out, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
  return out;
}

const char *mx_config_path(const char *given)
{
  const char *env = getenv("MXFLEET_CONFIG");
  if (given)
    return given;
  return env && *env ? env : MXFLEET_DEFAULT_CONFIG;
}

char *mx_strdup(const char *s)
{
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

int mx_utf8_valid(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t len;
    uint32_t cp;
    if (c == 0)
      return 0;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (i + len > n)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    /* reject overlong forms, surrogates and values past U+10FFFF */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return 0;
    i += len;
  }
  return 1;
}

void mx_rtrim(char *s)
{
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
}
