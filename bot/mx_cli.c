/* bot/mx_cli.c - operator subcommands; see mx_cli.h. */
#include "mx_cli.h"

#include <stdio.h>
#include <string.h>

#include "mx_log.h"

int mx_cli_set_log_level(const char *level)
{
  enum mx_log_level l;
  if (mx_log_parse_level(level, &l)) {
    fprintf(stderr, "mxfleet: --log-level: expected debug, info, warn or error, got '%s'\n", level);
    return 2;
  }
  mx_log_set_level(l);
  return 0;
}

void mx_cli_install_redaction(void)
{
}

void mx_cli_uninstall_redaction(void)
{
}

static int not_in_this_build(const char *what)
{
  fprintf(stderr, "mxfleet %s: not available in this build yet\n", what);
  return 2;
}

int mx_cli_audit(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return not_in_this_build("audit");
}

int mx_cli_llm(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return not_in_this_build("llm");
}

int mx_cli_device(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return not_in_this_build("device");
}
