/* test_ssh_quote.c - argv quoting for the ssh backend: exact forms, refusals,
 * and a round trip through a real /bin/sh that must run nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "dev_ssh_quote.h"

static const char *corpus[] = {"a;id", "$(touch /tmp/mxq-pwned)", "`touch /tmp/mxq-pwned`", "it's", "\"dq\"",
                               "two words", "line1\nline2", "'", "''", "\\", "*", "$HOME", "a|b&c>d<e", "", "é✓"};
#define NCORPUS (sizeof(corpus) / sizeof(corpus[0]))

static void quote_forms(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct mx_buf b = MX_BUF_INIT(4096);
  assert_int_equal(dev_ssh_quote_arg("it's", 4, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "'it'\\''s'");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_quote_arg("", 0, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "''");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_quote_arg("a;id", 4, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "'a;id'");
  mx_buf_release(&b);
}

static void refusals(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  struct mx_buf b = MX_BUF_INIT(4096);
  assert_int_equal(dev_ssh_quote_arg("a\0b", 3, "args.argv[1]", &b, err), MX_ERR_INVALID);
  assert_string_equal(err, "args.argv[1]: expected a string without NUL bytes");
  assert_int_equal(dev_ssh_quote_arg("\xff\xfe", 2, "args.argv[2]", &b, err), MX_ERR_INVALID);
  assert_string_equal(err, "args.argv[2]: expected valid UTF-8");
  cJSON *empty = cJSON_Parse("[]");
  assert_int_equal(dev_ssh_join_argv(empty, "args.argv", &b, err), MX_ERR_INVALID);
  cJSON *mixed = cJSON_Parse("[\"ls\", 3]");
  assert_int_equal(dev_ssh_join_argv(mixed, "args.argv", &b, err), MX_ERR_INVALID);
  assert_string_equal(err, "args.argv[1]: expected a string");
  assert_int_equal(dev_ssh_join_argv(NULL, "args.argv", &b, err), MX_ERR_INVALID);
  cJSON_Delete(empty);
  cJSON_Delete(mixed);
  mx_buf_release(&b);
}

/* Runs the joined line through sh -c (what sshd does) and compares bytes. */
static void shell_round_trip(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  unlink("/tmp/mxq-pwned");
  cJSON *argv = cJSON_CreateArray();
  cJSON_AddItemToArray(argv, cJSON_CreateString("printf"));
  cJSON_AddItemToArray(argv, cJSON_CreateString("%s\\0"));
  struct mx_buf want = MX_BUF_INIT(4096);
  for (size_t i = 0; i < NCORPUS; i++) {
    cJSON_AddItemToArray(argv, cJSON_CreateString(corpus[i]));
    assert_int_equal(mx_buf_add(&want, corpus[i], strlen(corpus[i]) + 1), MX_OK);
  }
  struct mx_buf line = MX_BUF_INIT(8192);
  assert_int_equal(dev_ssh_join_argv(argv, "args.argv", &line, err), MX_OK);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    execl("/bin/sh", "sh", "-c", mx_buf_cstr(&line), (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char got[8192];
  size_t n = 0;
  ssize_t k;
  while ((k = read(fds[0], got + n, sizeof(got) - n)) > 0)
    n += (size_t)k;
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(n, want.len);
  assert_memory_equal(got, want.buf, n);
  assert_int_equal(access("/tmp/mxq-pwned", F_OK), -1);
  cJSON_Delete(argv);
  mx_buf_release(&want);
  mx_buf_release(&line);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(quote_forms),
      cmocka_unit_test(refusals),
      cmocka_unit_test(shell_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
