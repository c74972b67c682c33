/*
 * tests/fuzz/fuzz_util.h - what every libFuzzer target here shares: the
 * entry point's prototype, a NUL-terminated copy of the input (the parsers
 * take C strings, and a libFuzzer buffer is not terminated), and a private
 * scratch directory for targets whose parser reads a file or a database.
 * A failed invariant calls FUZZ_CHECK, which aborts so libFuzzer saves the
 * input as a crash.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);        \
      abort();                                                                            \
    }                                                                                     \
  } while (0)

/* Owned, NUL-terminated copy of data (free()); aborts on out of memory. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
  char *s = malloc(size + 1);
  FUZZ_CHECK(s != NULL);
  if (size)
    memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* A private directory ($TMPDIR, else /dev/shm, else /tmp), created once per
 * process and removed at exit. */
const char *fuzz_scratch_dir(void);

#endif
