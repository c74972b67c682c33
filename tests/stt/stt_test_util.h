/*
 * tests/stt/stt_test_util.h - helpers for the speech tests: run a program
 * (posix_spawnp, no shell) and wait, make a voice message with espeak-ng +
 * opusenc (Ogg/Opus mono, as Element sends), read a file, a scratch
 * directory removed at the end. Test-only; header-only (static functions).
 */
#ifndef STT_TEST_UTIL_H
#define STT_TEST_UTIL_H

#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mx_buf.h"
#include "mx_util.h"

extern char **environ;

/* 0 when argv ran and exited 0. */
static inline int run_prog(char *const argv[])
{
  pid_t pid;
  int st = 0;

  if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
    return -1;
  if (waitpid(pid, &st, 0) < 0)
    return -1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Writes DIR/NAME.wav and DIR/NAME.ogg saying text; 0 on success. */
static inline int make_voice(const char *dir, const char *name, const char *text, char *ogg, size_t n)
{
  char wav[4096];
  char *say[] = {"espeak-ng", "-w", wav, (char *)text, NULL};
  char *enc[] = {"opusenc", "--quiet", wav, ogg, NULL};

  snprintf(wav, sizeof wav, "%s/%s.wav", dir, name);
  snprintf(ogg, n, "%s/%s.ogg", dir, name);
  if (run_prog(say) != 0)
    return -1;
  return run_prog(enc);
}

static inline void rm_tree(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[4096];

  if (!d)
    return;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

/* Entries in dir (to check that no scratch file was left behind). */
static inline int count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;

  if (!d)
    return -1;
  while ((e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

#endif
