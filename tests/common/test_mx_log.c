/* mx_log: under systemd (JOURNAL_STREAM names the log fd) every line starts
 * with its journald priority; anywhere else the line is unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_log.h"

/* Logs one line of each level into a pipe and returns what came out; with
 * journal, JOURNAL_STREAM names that pipe, as systemd names the stream it
 * connects to stderr. */
static void capture(char *out, size_t n, int journal)
{
  int p[2];
  struct stat st;
  char env[64];
  assert_int_equal(pipe(p), 0);
  if (journal) {
    assert_int_equal(fstat(p[1], &st), 0);
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);
  }
  mx_log_set_fd(p[1]);
  mx_log_set_level(MX_LOG_DEBUG);
  mx_error("pc1", "e");
  mx_warn("pc1", "w");
  mx_info("pc1", "i");
  mx_debug("pc1", "d");
  mx_log_set_fd(-1);
  close(p[1]);
  ssize_t got = read(p[0], out, n - 1);
  assert_true(got > 0);
  out[got] = '\0';
  close(p[0]);
}

static void journal_stream_gets_priorities(void **state)
{
  (void)state;
  char out[4096];
  capture(out, sizeof(out), 1);
  unsetenv("JOURNAL_STREAM");
  const char *l = out;
  static const char *const want[] = { "<3>", "<4>", "<6>", "<7>" };
  for (int i = 0; i < 4; i++) {
    if (strncmp(l, want[i], 3) != 0)
      fail_msg("line %d: expected prefix %s, got '%.40s'", i, want[i], l);
    l = strchr(l, '\n');
    assert_non_null(l);
    l++;
  }
}

static void other_streams_are_plain(void **state)
{
  (void)state;
  char out[4096];
  unsetenv("JOURNAL_STREAM");
  capture(out, sizeof(out), 0);
  assert_true(out[0] >= '0' && out[0] <= '9'); /* starts with the timestamp */
  assert_null(strstr(out, "<3>"));
  /* a JOURNAL_STREAM naming another stream (inherited, stderr redirected) */
  setenv("JOURNAL_STREAM", "1:1", 1);
  capture(out, sizeof(out), 0);
  assert_null(strstr(out, "<3>"));
  assert_non_null(strstr(out, "level=error id=pc1 msg=\"e\""));
  unsetenv("JOURNAL_STREAM");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(journal_stream_gets_priorities),
    cmocka_unit_test(other_streams_are_plain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
