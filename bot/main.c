/*
 * bot/main.c - the `mxfleet` command: daemon and operator CLI. One table of
 * subcommands (name, handler, summary) drives dispatch and --help.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "mx_api.h"
#include "mx_cli.h"
#include "mx_daemon.h"
#include "mx_log.h"
#include "mx_util.h"

static int cmd_run(int argc, char **argv);

static const struct mx_subcommand {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *summary;
} subcommands[] = {
  { "run", cmd_run, "run the bot: every device identity on one sync loop" },
  { "audit", mx_cli_audit, "verify or show the tamper-evident audit logs" },
  { "llm", mx_cli_llm, "check the configured LLM providers with a live round trip" },
  { "device", mx_cli_device, "add, list, show or revoke managed devices" },
  { "config", mx_cli_config, "check the configuration the way run reads it (--online: and what it reaches)" },
  { "trust", mx_cli_trust, "show or change the operator master keys commands are trusted under" },
};

static void usage(FILE *out)
{
  fprintf(out, "usage: mxfleet [--version] [--log-level LEVEL] <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
    fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
  fprintf(out, "\n'mxfleet <command> --help' describes a command. Logs go to stderr, one line per event.\n");
}

static int cmd_run(int argc, char **argv)
{
  struct mx_run_opts o = { NULL, NULL, 0 };
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "http", required_argument, NULL, 'H' },
    { "log-level", required_argument, NULL, 'l' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:H:l:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c': o.config = optarg; break;
    case 'H': o.http_listen = optarg; break;
    case 'l':
      if (mx_cli_set_log_level(optarg))
        return 2;
      break;
    case 'h':
      printf("usage: mxfleet run [--config FILE] [--http IP:PORT] [--log-level debug|info|warn|error]\n\n"
             "Runs the bot: logs every device identity in (stored token, or the password file on the first\n"
             "run), syncs them on one loop and answers operators in their DMs. --http serves /health and\n"
             "/metrics on that local address. SIGTERM or SIGINT stop it cleanly.\n"
             "FILE defaults to $MXFLEET_CONFIG, else " MXFLEET_DEFAULT_CONFIG ".\n");
      return 0;
    default: return 2;
    }
  }
  o.config = mx_config_path(o.config);
  o.log_level_given = mx_cli_log_level_given();
  return mx_daemon_run(&o);
}

int main(int argc, char **argv)
{
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
      printf("mxfleet %s\n", MXFLEET_VERSION);
      return 0;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
      if (mx_cli_set_log_level(argv[++i]))
        return 2;
      continue;
    }
    fprintf(stderr, "mxfleet: unknown option '%s'\n", argv[i]);
    usage(stderr);
    return 2;
  }
  if (i >= argc) {
    usage(stderr);
    return 2;
  }
  for (size_t k = 0; k < sizeof(subcommands) / sizeof(subcommands[0]); k++) {
    if (strcmp(argv[i], subcommands[k].name) == 0) {
      curl_global_init(CURL_GLOBAL_DEFAULT);
      mx_cli_install_redaction();
      int rc = subcommands[k].fn(argc - i, argv + i);
      mx_cli_uninstall_redaction();
      mx_api_thread_done();
      curl_global_cleanup();
      return rc;
    }
  }
  fprintf(stderr, "mxfleet: unknown command '%s'\n", argv[i]);
  usage(stderr);
  return 2;
}
