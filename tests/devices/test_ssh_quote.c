/* test_ssh_quote.c - argv quoting for the ssh backend, per remote shell:
 * exact forms, refusals, the command frames, the probes, and round trips
 * through a real /bin/sh (and fish when installed) that must run nothing.
 * The fish case also shows why one quoting for all shells is wrong: the
 * POSIX form of '1\' lets fish run a second command. */
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
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_POSIX, "it's", 4, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "'it'\\''s'");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_POSIX, "", 0, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "''");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_POSIX, "a;id", 4, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "'a;id'");
  mx_buf_release(&b);
}

static void refusals(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  struct mx_buf b = MX_BUF_INIT(4096);
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_POSIX, "a\0b", 3, "args.argv[1]", &b, err), MX_ERR_INVALID);
  assert_string_equal(err, "args.argv[1]: expected a string without NUL bytes");
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_POSIX, "\xff\xfe", 2, "args.argv[2]", &b, err), MX_ERR_INVALID);
  assert_string_equal(err, "args.argv[2]: expected valid UTF-8");
  cJSON *empty = cJSON_Parse("[]");
  assert_int_equal(dev_ssh_join_argv(DEV_SSH_SHELL_POSIX, empty, "args.argv", &b, err), MX_ERR_INVALID);
  cJSON *mixed = cJSON_Parse("[\"ls\", 3]");
  assert_int_equal(dev_ssh_join_argv(DEV_SSH_SHELL_POSIX, mixed, "args.argv", &b, err), MX_ERR_INVALID);
  assert_string_equal(err, "args.argv[1]: expected a string");
  assert_int_equal(dev_ssh_join_argv(DEV_SSH_SHELL_POSIX, NULL, "args.argv", &b, err), MX_ERR_INVALID);
  cJSON_Delete(empty);
  cJSON_Delete(mixed);
  mx_buf_release(&b);
}

/* Runs line with `shell -c` (what sshd does); returns stdout in got. */
static size_t run_shell(const char *shell, const char *line, char *got, size_t cap, int *status)
{
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(shell, shell, "-c", line, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t k;
  while (n < cap && (k = read(fds[0], got + n, cap - n)) > 0)
    n += (size_t)k;
  close(fds[0]);
  waitpid(pid, status, 0);
  return n;
}

static void round_trip(enum dev_ssh_shell sh, const char *shell)
{
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
  assert_int_equal(dev_ssh_join_argv(sh, argv, "args.argv", &line, err), MX_OK);
  char got[8192];
  int st;
  size_t n = run_shell(shell, mx_buf_cstr(&line), got, sizeof(got), &st);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(n, want.len);
  assert_memory_equal(got, want.buf, n);
  assert_int_equal(access("/tmp/mxq-pwned", F_OK), -1);
  cJSON_Delete(argv);
  mx_buf_release(&want);
  mx_buf_release(&line);
}

static void shell_round_trip(void **state)
{
  (void)state;
  round_trip(DEV_SSH_SHELL_POSIX, "/bin/sh");
}

/* fish, when the package is installed (scripts/install-deps adds it). */
static void fish_round_trip(void **state)
{
  (void)state;
  if (access("/usr/bin/fish", X_OK) != 0)
    skip();
  round_trip(DEV_SSH_SHELL_FISH, "/usr/bin/fish");
  /* The POSIX form of '1\' (the case) under fish: the quote is
   * escaped and the rest of the line becomes fish syntax. */
  char err[MX_ERRBUF_LEN], got[256];
  int st;
  cJSON *argv = cJSON_Parse("[\"echo\", \"1\\\\\", \"; touch /tmp/mxq-pwned; echo \\\\\"]");
  struct mx_buf line = MX_BUF_INIT(4096);
  unlink("/tmp/mxq-pwned");
  assert_int_equal(dev_ssh_join_argv(DEV_SSH_SHELL_POSIX, argv, "args.argv", &line, err), MX_OK);
  run_shell("/usr/bin/fish", mx_buf_cstr(&line), got, sizeof(got), &st);
  assert_int_equal(access("/tmp/mxq-pwned", F_OK), 0); /* POSIX quoting is not fish quoting */
  unlink("/tmp/mxq-pwned");
  mx_buf_reset(&line);
  assert_int_equal(dev_ssh_join_argv(DEV_SSH_SHELL_FISH, argv, "args.argv", &line, err), MX_OK);
  size_t n = run_shell("/usr/bin/fish", mx_buf_cstr(&line), got, sizeof(got), &st);
  assert_int_equal(access("/tmp/mxq-pwned", F_OK), -1);
  assert_true(n > 0 && memcmp(got, "1\\ ; touch", 10) == 0);
  cJSON_Delete(argv);
  mx_buf_release(&line);
}

static void per_shell_forms(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  struct mx_buf b = MX_BUF_INIT(4096);
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_FISH, "1\\'x", 4, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "'1\\\\\\'x'");
  mx_buf_reset(&b);
  /* cmd.exe: operators stay inside double quotes; trailing backslashes doubled */
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_CMD, "x&calc.exe&", 11, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "\"x&calc.exe&\"");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_CMD, "C:\\dir\\", 7, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "\"C:\\dir\\\\\"");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_POWERSHELL, "it's $x", 7, "a", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "'it''s $x'");
  mx_buf_reset(&b);
  /* what a shell cannot carry is refused, never mangled */
  const char *cmd_bad[] = {"a\"&calc.exe&\"", "%PATH%", "!x!", "a^&b", "a\nb", "a\rcalc"};
  for (size_t i = 0; i < sizeof(cmd_bad) / sizeof(cmd_bad[0]); i++) {
    assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_CMD, cmd_bad[i], strlen(cmd_bad[i]), "args.argv[1]", &b, err),
                     MX_ERR_INVALID);
    assert_non_null(strstr(err, "args.argv[1]: cmd.exe cannot carry this argument safely"));
  }
  const char *ps_bad[] = {"a\"b", "a\xe2\x80\x99;calc", "a\xe2\x80\x98", "a\nb"};
  for (size_t i = 0; i < sizeof(ps_bad) / sizeof(ps_bad[0]); i++)
    assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_POWERSHELL, ps_bad[i], strlen(ps_bad[i]), "a", &b, err),
                     MX_ERR_INVALID);
  assert_int_equal(dev_ssh_quote_arg(DEV_SSH_SHELL_UNKNOWN, "x", 1, "a", &b, err), MX_ERR_DENIED);
  assert_int_equal(b.len, 0); /* nothing was appended by a refusal */
  mx_buf_release(&b);
}

static void command_frames(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  cJSON *argv = cJSON_Parse("[\"/usr/bin/id\", \"-u\"]");
  cJSON *win = cJSON_Parse("[\"C:/Windows/System32/ipconfig.exe\", \"/all\"]");
  struct mx_buf b = MX_BUF_INIT(4096);
  assert_int_equal(dev_ssh_command(DEV_SSH_SHELL_POSIX, argv, NULL, &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "exec '/usr/bin/id' '-u'");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_command(DEV_SSH_SHELL_POSIX, argv, "/srv/a b", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "cd '/srv/a b' && exec '/usr/bin/id' '-u'");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_command(DEV_SSH_SHELL_FISH, argv, "/srv", &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "cd '/srv'; and exec '/usr/bin/id' '-u'");
  mx_buf_reset(&b);
  /* cmd.exe: the line never starts with a quote (cmd /c would strip it) */
  assert_int_equal(dev_ssh_command(DEV_SSH_SHELL_CMD, win, NULL, &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "cd . && \"C:/Windows/System32/ipconfig.exe\" \"/all\"");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_command(DEV_SSH_SHELL_POWERSHELL, win, NULL, &b, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "& 'C:/Windows/System32/ipconfig.exe' '/all'; exit $LASTEXITCODE");
  mx_buf_reset(&b);
  assert_int_equal(dev_ssh_command(DEV_SSH_SHELL_UNKNOWN, argv, NULL, &b, err), MX_ERR_DENIED);
  assert_non_null(strstr(err, "not known"));
  assert_int_equal(dev_ssh_shell_from_name(NULL), DEV_SSH_SHELL_POSIX);
  assert_int_equal(dev_ssh_shell_from_name("fish"), DEV_SSH_SHELL_FISH);
  assert_int_equal(dev_ssh_shell_from_name("tcsh"), DEV_SSH_SHELL_UNKNOWN);
  cJSON_Delete(argv);
  cJSON_Delete(win);
  mx_buf_release(&b);
}

/* Each probe prints its expectation under its own shell and something else
 * under the others we can run here. */
static void probes(void **state)
{
  (void)state;
  const char *cmd, *expect;
  char got[256];
  int st;
  dev_ssh_shell_probe(DEV_SSH_SHELL_POSIX, &cmd, &expect);
  size_t n = run_shell("/bin/sh", cmd, got, sizeof(got), &st);
  assert_int_equal(n, strlen(expect));
  assert_memory_equal(got, expect, n);
  n = run_shell("/bin/bash", cmd, got, sizeof(got), &st);
  assert_memory_equal(got, expect, strlen(expect));
  dev_ssh_shell_probe(DEV_SSH_SHELL_FISH, &cmd, &expect);
  n = run_shell("/bin/sh", cmd, got, sizeof(got), &st);
  assert_false(n == strlen(expect) && memcmp(got, expect, n) == 0);
  dev_ssh_shell_probe(DEV_SSH_SHELL_POWERSHELL, &cmd, &expect);
  n = run_shell("/bin/sh", cmd, got, sizeof(got), &st);
  assert_false(n >= strlen(expect) && memcmp(got, expect, strlen(expect)) == 0);
  dev_ssh_shell_probe(DEV_SSH_SHELL_CMD, &cmd, &expect);
  n = run_shell("/bin/sh", cmd, got, sizeof(got), &st);
  assert_false(n >= strlen(expect) && memcmp(got, expect, strlen(expect)) == 0);
  if (access("/usr/bin/fish", X_OK) == 0) {
    dev_ssh_shell_probe(DEV_SSH_SHELL_POSIX, &cmd, &expect);
    n = run_shell("/usr/bin/fish", cmd, got, sizeof(got), &st);
    assert_false(n >= strlen(expect) && memcmp(got, expect, strlen(expect)) == 0);
    dev_ssh_shell_probe(DEV_SSH_SHELL_FISH, &cmd, &expect);
    n = run_shell("/usr/bin/fish", cmd, got, sizeof(got), &st);
    assert_int_equal(n, strlen(expect));
    assert_memory_equal(got, expect, n);
  }
  dev_ssh_shell_probe(DEV_SSH_SHELL_UNKNOWN, &cmd, &expect);
  assert_null(cmd);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(quote_forms),
      cmocka_unit_test(refusals),
      cmocka_unit_test(shell_round_trip),
      cmocka_unit_test(fish_round_trip),
      cmocka_unit_test(per_shell_forms),
      cmocka_unit_test(command_frames),
      cmocka_unit_test(probes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
