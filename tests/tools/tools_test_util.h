/*
 * tests/tools/tools_test_util.h - helpers for the tools/ tests: temporary
 * directory trees (made and removed by each test), small file writes and a
 * manifest built from JSON text. Header-only, static functions.
 */
#ifndef TOOLS_TEST_UTIL_H
#define TOOLS_TEST_UTIL_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int tt_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  /* never through a symlink: chmod follows it, and the escape tests plant
   * links to /etc (this made the host's /etc 0700) */
  if (flag != FTW_SL && flag != FTW_SLN)
    chmod(p, 0700);
  return remove(p);
}

static inline void tt_rmtree(const char *dir)
{
  nftw(dir, tt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdtemp under /tmp; returns a static-lifetime copy in buf. */
static inline char *tt_tmpdir(char *buf, size_t n, const char *tag)
{
  snprintf(buf, n, "/tmp/mxtools-%s-XXXXXX", tag);
  return mkdtemp(buf);
}

static inline void tt_path(char *out, size_t n, const char *dir, const char *rel)
{
  snprintf(out, n, "%s/%s", dir, rel);
}

static inline int tt_write(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fputs(text, f);
  return fclose(f);
}

static inline int tt_mkdir(const char *dir, const char *rel)
{
  char p[1024];
  tt_path(p, sizeof(p), dir, rel);
  return mkdir(p, 0755);
}

/* Reads a small file into buf; returns its length or -1. */
static inline long tt_read(const char *path, char *buf, size_t n)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t got = fread(buf, 1, n - 1, f);
  buf[got] = '\0';
  fclose(f);
  return (long)got;
}

#endif
