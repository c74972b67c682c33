/*
 * prov_cli.c - `mxfleet device add|list|show|revoke`: argument parsing,
 * confirmation for revoke on a TTY, exit codes, and the Matrix callbacks the
 * bot installs with dev_provision_set_matrix_ops(). Layer: devices/provision;
 * takes argv from bot/mx_cli.c and never calls back into bot/.
 */
#include "prov_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_log.h"
#include "mx_util.h"
#include "prov.h"

static struct dev_prov_matrix_ops g_ops;
static int g_have_ops;
static mx_err (*g_config_check)(const char *config_path, char *err);

void dev_provision_set_config_check(mx_err (*check)(const char *config_path, char *err))
{
  g_config_check = check;
}

void dev_provision_set_matrix_ops(const struct dev_prov_matrix_ops *ops)
{
  g_have_ops = ops != NULL;
  if (ops)
    g_ops = *ops;
}

static const char usage[] =
  "usage: mxfleet device add NAME --via ssh --ssh USER@HOST[:PORT] [--key FILE] [--config FILE]\n"
  "                          [--os linux|macos|windows] [--templates DIR] [--prompt-template FILE]\n"
  "                          [--server-name NAME] [--host-key SHA256:...]\n"
  "       mxfleet device add NAME --via wg --ssh USER@HOST[:PORT] --hub-endpoint HOST:PORT\n"
  "                          --agent-deb FILE|--agent-bin FILE [--mesh CIDR] [--wg-if IF]\n"
  "                          [--remote-dir DIR] [--device-if IF] [--health-wait SECONDS] [--no-systemd]\n"
  "                          (and the options above)\n"
  "       mxfleet device list [--json] [--config FILE]\n"
  "       mxfleet device show NAME [--json] [--config FILE]\n"
  "       mxfleet device revoke NAME [--yes] [--config FILE]\n"
  "\n"
  "add     onboards a device in numbered steps; safe to re-run (steps already in\n"
  "        place say \"already done\"); a failure undoes the steps before it\n"
  "        --via wg: --agent-deb pushes the mxfleet-agent package, installed by\n"
  "        apt-get on a device that has apt (its architecture must match); with\n"
  "        --agent-bin too, a device without apt gets that binary instead\n"
  "list    the fleet table from the config and data_dir\n"
  "show    one device in detail\n"
  "revoke  removes the WireGuard peer, deactivates the Matrix user and removes the\n"
  "        config entry and secrets; keeps the audit (asks first unless --yes)\n"
  "--verbose (-v) also prints the info log lines of the SSH and Matrix clients\n"
  "FILE defaults to $MXFLEET_CONFIG, else " MXFLEET_DEFAULT_CONFIG ".\n";

struct cli {
  const char *sub, *name, *config, *via, *ssh, *key, *os, *templates, *prompt, *server, *fp;
  const char *mesh, *wg_if, *hub, *agent_bin, *agent_deb, *remote_dir, *device_if, *wait;
  int json, yes, help, fail_at, no_systemd, verbose;
};

/* Options taking a value, and where each goes. */
static const char **value_slot(struct cli *c, const char *opt)
{
  static const char *const names[] = { "--config", "--via", "--ssh", "--key", "--os", "--templates",
                                       "--prompt-template", "--server-name", "--host-key", "--mesh", "--wg-if",
                                       "--hub-endpoint", "--agent-bin", "--agent-deb", "--remote-dir",
                                       "--device-if", "--health-wait" };
  const char **slots[] = { &c->config, &c->via, &c->ssh, &c->key, &c->os, &c->templates, &c->prompt, &c->server,
                           &c->fp, &c->mesh, &c->wg_if, &c->hub, &c->agent_bin, &c->agent_deb, &c->remote_dir,
                           &c->device_if, &c->wait };
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(opt, names[i]) == 0)
      return slots[i];
  return NULL;
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
  char *end = NULL;
  long n = strtol(v, &end, 10);
  if (!*v || *end || n < lo || n > hi) {
    fprintf(stderr, "mxfleet device: %s: expected a whole number %d-%d, got '%s'\n", opt, lo, hi, v);
    return 2;
  }
  *out = (int)n;
  return 0;
}

static int parse_flag(struct cli *c, const char *a)
{
  if (strcmp(a, "--json") == 0)
    c->json = 1;
  else if (strcmp(a, "--yes") == 0 || strcmp(a, "-y") == 0)
    c->yes = 1;
  else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
    c->help = 1;
  else if (strcmp(a, "--no-systemd") == 0)
    c->no_systemd = 1;
  else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0)
    c->verbose = 1;
  else
    return 0;
  return 1;
}

static int parse(struct cli *c, int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = value_slot(c, a);
    if (slot || strcmp(a, "--fail-at") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "mxfleet device: %s: expected a value\n", a);
        return 2;
      }
      if (slot)
        *slot = argv[++i];
      else if (parse_int(a, argv[++i], -64, 64, &c->fail_at)) /* hidden, for the rollback tests */
        return 2;
    } else if (parse_flag(c, a)) {
      continue;
    } else if (a[0] == '-') {
      fprintf(stderr, "mxfleet device: unknown option '%s'\n", a);
      return 2;
    } else if (!c->sub) {
      c->sub = a;
    } else if (!c->name) {
      c->name = a;
    } else {
      fprintf(stderr, "mxfleet device: unexpected argument '%s'\n", a);
      return 2;
    }
  }
  return 0;
}

static int confirm(const char *name)
{
  if (!isatty(STDIN_FILENO)) {
    fprintf(stderr, "mxfleet device revoke: not a terminal; pass --yes to confirm revoking '%s'\n", name);
    return 0;
  }
  char line[128] = "";
  fprintf(stderr, "Revoke %s? This deactivates its Matrix account for good. Type the device name: ", name);
  if (!fgets(line, sizeof(line), stdin))
    return 0;
  line[strcspn(line, "\r\n")] = '\0';
  return strcmp(line, name) == 0;
}

static int run_add(const struct cli *c, char *err)
{
  struct dev_prov_add_opts o = {
    .config_path = c->config, .name = c->name, .ssh_target = c->ssh, .key_file = c->key, .os = c->os,
    .templates_dir = c->templates, .prompt_template = c->prompt, .server_name = c->server, .host_key_fp = c->fp, .fail_at = c->fail_at,
    .mesh = c->mesh, .wg_interface = c->wg_if, .hub_endpoint = c->hub, .agent_bin = c->agent_bin,
    .agent_deb = c->agent_deb, .remote_dir = c->remote_dir, .device_if = c->device_if, .health_wait_s = 0,
    .no_systemd = c->no_systemd,
  };
  if (!c->via || strcmp(c->via, "ssh") == 0)
    o.via = DEV_PROV_VIA_SSH;
  else if (strcmp(c->via, "wg") == 0)
    o.via = DEV_PROV_VIA_WG;
  else {
    fprintf(stderr, "mxfleet device add: --via: expected ssh or wg, got '%s'\n", c->via);
    return 2;
  }
  if (!c->ssh) {
    fprintf(stderr, "mxfleet device add: --ssh USER@HOST[:PORT] is required\n");
    return 2;
  }
  if (c->wait && parse_int("--health-wait", c->wait, 1, 3600, &o.health_wait_s))
    return 2;
  return dev_prov_add(&o, g_have_ops ? &g_ops : NULL, err) ? 1 : 0;
}

static int dispatch(const struct cli *c, char *err)
{
  if (g_config_check && strcmp(c->sub, "add") != 0 && g_config_check(c->config, err))
    return 1;
  if (strcmp(c->sub, "list") == 0)
    return dev_prov_list(c->config, c->json, stdout, err) ? 1 : 0;
  if (!c->name) {
    fprintf(stderr, "mxfleet device %s: expected a device NAME\n%s", c->sub, usage);
    return 2;
  }
  if (strcmp(c->sub, "add") == 0)
    return run_add(c, err);
  if (strcmp(c->sub, "show") == 0)
    return dev_prov_show(c->config, c->name, c->json, stdout, err) ? 1 : 0;
  if (strcmp(c->sub, "revoke") == 0) {
    if (!c->yes && !confirm(c->name)) {
      fprintf(stderr, "mxfleet device revoke: not confirmed; nothing changed\n");
      return 1;
    }
    return dev_prov_revoke(c->config, c->name, g_have_ops ? &g_ops : NULL, stdout, err) ? 1 : 0;
  }
  fprintf(stderr, "mxfleet device: unknown command '%s', expected add, list, show or revoke\n", c->sub);
  return 2;
}

int dev_provision_cli(int argc, char **argv)
{
  struct cli c;
  memset(&c, 0, sizeof(c));
  int rc = parse(&c, argc, argv);
  if (rc)
    return rc;
  if (c.help || !c.sub) {
    fputs(usage, c.help ? stdout : stderr);
    return c.help ? 0 : 2;
  }
  c.config = mx_config_path(c.config);
  char err[MX_ERRBUF_LEN] = "";
  /* Info lines from libssh sessions and the Matrix client would land in
   * the middle of the "[k/N] ... result" lines; --verbose keeps them. */
  if (!c.verbose && mx_log_get_level() < MX_LOG_WARN)
    mx_log_set_level(MX_LOG_WARN);
  fflush(stdout);
  rc = dispatch(&c, err);
  fflush(stdout);
  if (rc == 1 && err[0])
    fprintf(stderr, "mxfleet device %s: %s\n", c.sub, err);
  return rc;
}
