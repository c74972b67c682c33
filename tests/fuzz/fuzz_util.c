/*
 * tests/fuzz/fuzz_util.c - the scratch directory of fuzz_util.h: one mkdtemp
 * per process ($TMPDIR, else /dev/shm, else /tmp), removed at exit, so
 * parallel targets and repeated runs never share files.
 */
#include "fuzz_util.h"

#include <unistd.h>

static char scratch[512];

static void remove_scratch(void)
{
  char cmd[600];
  if (!scratch[0])
    return;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
  if (system(cmd) != 0)
    fprintf(stderr, "fuzz: could not remove %s\n", scratch);
}

const char *fuzz_scratch_dir(void)
{
  if (scratch[0])
    return scratch;
  /* tmpfs when there is one: targets that write a file per input run
   * several times faster than on a disk's journal. */
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp)
    tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(scratch, sizeof(scratch), "%s/mxfleet-fuzz.XXXXXX", tmp);
  FUZZ_CHECK(mkdtemp(scratch) != NULL);
  atexit(remove_scratch);
  return scratch;
}
