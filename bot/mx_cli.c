/*
 * bot/mx_cli.c - operator subcommands other than `run` (see mx_cli.h):
 * `audit verify|show` (tools/ audit renderers), `llm test` (llm/), and
 * `device ...` (devices/provision). Each reads the same config file as the
 * daemon, so paths and device names agree.
 */
#include "mx_cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_cli.h"
#include "llm_config.h"
#include "mx_config.h"
#include "mx_crypto.h"
#include "mx_log.h"
#include "mx_util.h"
#include "mx_provision_ops.h"
#include "prov.h"
#include "prov_cli.h"
#include "tools_redact.h"
#include "tools_render.h"

static struct tools_redactor *cli_redactor;

static int log_level_given;

int mx_cli_log_level_given(void)
{
  return log_level_given;
}

int mx_cli_set_log_level(const char *level)
{
  enum mx_log_level l;
  log_level_given = 1;
  if (mx_log_parse_level(level, &l)) {
    fprintf(stderr, "mxfleet: --log-level: expected debug, info, warn or error, got '%s'\n", level);
    return 2;
  }
  mx_log_set_level(l);
  return 0;
}

void mx_cli_install_redaction(void)
{
  /* Per-run key: the CLI's tags only need to be consistent within its own
   * output; the daemon uses the install's persistent key. */
  uint8_t key[32];
  char err[MX_ERRBUF_LEN];
  if (mx_random_bytes(key, sizeof(key)) || tools_redact_new(key, sizeof(key), &cli_redactor, err))
    return;
  mx_log_set_filter(tools_redact_log_filter, cli_redactor);
}

void mx_cli_uninstall_redaction(void)
{
  mx_log_set_filter(NULL, NULL);
  tools_redact_free(cli_redactor);
  cli_redactor = NULL;
}

/* path: --config, else $MXFLEET_CONFIG, else the built-in default. */
struct mx_config *mx_cli_load_config(const char *path)
{
  struct mx_config *cfg = NULL;
  char err[MX_ERRBUF_LEN] = "";
  path = mx_config_path(path);
  if (mx_config_load(path, &cfg, err)) {
    fprintf(stderr, "mxfleet: %s\n", err);
    return NULL;
  }
  return cfg;
}

static const char audit_usage[] =
    "usage: mxfleet audit verify [--config FILE] [--device NAME]\n"
    "       mxfleet audit show [--config FILE] --device NAME [--since TIME] [--json]\n\n"
    "verify relinks every chain from genesis and compares it with its last signed checkpoint;\n"
    "it names the first modified record and reports deletions, reordering and truncation.\n"
    "Exit status: 0 all chains intact, 1 a problem was found, 2 usage or config error.\n"
    "show prints the records; --since TIME keeps those from TIME on: an ISO time like\n"
    "2026-11-21T20:00:00Z (UTC) or an age like 90s, 30m, 2h, 7d.\n"
    "FILE defaults to $MXFLEET_CONFIG, else " MXFLEET_DEFAULT_CONFIG ".\n";

int mx_cli_audit(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' }, { "device", required_argument, NULL, 'd' },
    { "since", required_argument, NULL, 's' },  { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
  };
  const char *config = NULL, *device = NULL, *since = NULL;
  int json = 0, c;
  if (argc < 2 || argv[1][0] == '-') {
    int help = argc >= 2 && strcmp(argv[1], "--help") == 0;
    fputs(audit_usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  const char *verb = argv[1];
  optind = 2;
  while ((c = getopt_long(argc, argv, "c:d:s:jh", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 'd': device = optarg; break;
    case 's': since = optarg; break;
    case 'j': json = 1; break;
    case 'h': fputs(audit_usage, stdout); return 0;
    default: return 2;
    }
  }
  struct mx_config *cfg = mx_cli_load_config(config);
  if (!cfg)
    return 2;
  int rc = 2;
  if (device && !mx_config_device(cfg, device)) {
    fprintf(stderr, "mxfleet audit: no device '%s' in %s\n", device, cfg->path);
  } else if (strcmp(verb, "verify") == 0) {
    const char **names = calloc(cfg->n_devices ? cfg->n_devices : 1, sizeof(*names));
    int n = 0;
    for (size_t i = 0; names && i < cfg->n_devices; i++)
      if (!device || strcmp(device, cfg->devices[i].name) == 0)
        names[n++] = cfg->devices[i].name;
    rc = names ? tools_audit_cli_verify(cfg->data_dir, names, n, stdout) : 1;
    free(names);
  } else if (strcmp(verb, "show") == 0) {
    if (!device)
      fprintf(stderr, "mxfleet audit show: --device NAME is required\n");
    else
      rc = tools_audit_cli_show(cfg->data_dir, device, since, json, stdout);
  } else {
    fprintf(stderr, "mxfleet audit: unknown action '%s' (expected verify or show)\n", verb);
  }
  mx_config_free(cfg);
  return rc;
}

int mx_cli_llm(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "provider", required_argument, NULL, 'p' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  static const char usage[] =
      "usage: mxfleet llm test [--config FILE] [--provider NAME]\n\n"
      "Makes a live round trip to each configured provider (or only NAME): reports the latency and\n"
      "whether the model called a test tool. Exit status 0 when all passed.\n"
      "FILE defaults to $MXFLEET_CONFIG, else " MXFLEET_DEFAULT_CONFIG ".\n";
  if (argc < 2 || strcmp(argv[1], "test") != 0) {
    int help = argc >= 2 && strcmp(argv[1], "--help") == 0;
    fputs(usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  const char *config = NULL, *provider = NULL;
  int c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "c:p:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 'p': provider = optarg; break;
    case 'h': fputs(usage, stdout); return 0;
    default: return 2;
    }
  }
  struct mx_config *cfg = mx_cli_load_config(config);
  if (!cfg)
    return 2;
  int rc = 2;
  struct llm_config *lc = NULL;
  char err[MX_ERRBUF_LEN] = "";
  if (!cfg->llm)
    fprintf(stderr, "mxfleet llm test: %s has no \"llm\" block\n", cfg->path);
  else if (llm_config_parse(cfg->llm, cfg->path, &lc, err))
    fprintf(stderr, "mxfleet: %s\n", err);
  else
    rc = llm_cli_test(lc, provider, stdout);
  llm_config_free(lc);
  mx_config_free(cfg);
  return rc;
}

/* device list/show/revoke read the config through the daemon's own loader
 * first, so they accept exactly what `mxfleet run` accepts. */
static mx_err validate_config(const char *path, char *err)
{
  struct mx_config *cfg = NULL;
  mx_err rc = mx_config_load(path, &cfg, err);
  if (!rc)
    rc = mx_config_check_blocks(cfg, NULL, err);
  mx_config_free(cfg);
  return rc;
}

int mx_cli_device(int argc, char **argv)
{
  mx_provision_ops_install();
  dev_provision_set_config_check(validate_config);
  return dev_provision_cli(argc, argv);
}
