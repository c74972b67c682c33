/*
 * agent_main.c - the mxfleet-agent command line: --config FILE,
 * --check-config, --version. Runs until SIGTERM/SIGINT. Layer: devices/agent.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "mx_log.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
  (void)sig;
  stop = 1;
}

static int usage(FILE *f)
{
  fprintf(f, "usage: mxfleet-agent --config FILE [--check-config]\n"
             "       mxfleet-agent --version\n");
  return f == stdout ? 0 : 2;
}

static int serve(const struct agent_config *cfg)
{
  char err[MX_ERRBUF_LEN];
  struct agent *a = NULL;
  mx_err rc = agent_prepare(cfg, &a, err);
  if (!rc)
    rc = agent_drop_privileges(cfg->user, err);
  if (!rc)
    rc = agent_start(a, err);
  if (rc) {
    fprintf(stderr, "mxfleet-agent: %s\n", err);
    agent_free(a);
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  while (!stop)
    pause();
  mx_info(cfg->device, "mxfleet-agent stopping");
  agent_free(a);
  return 0;
}

int main(int argc, char **argv)
{
  const char *config = NULL;
  int check = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("mxfleet-agent %s\n", MXFLEET_VERSION);
      return 0;
    } else if (strcmp(argv[i], "--check-config") == 0)
      check = 1;
    else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      config = argv[++i];
    else if (strcmp(argv[i], "--help") == 0)
      return usage(stdout);
    else {
      fprintf(stderr, "mxfleet-agent: unknown argument '%s'\n", argv[i]);
      return usage(stderr);
    }
  }
  if (!config)
    return usage(stderr);
  char err[MX_ERRBUF_LEN];
  struct agent_config cfg;
  if (agent_config_load(config, 0, &cfg, err)) {
    fprintf(stderr, "mxfleet-agent: %s\n", err);
    return 1;
  }
  enum mx_log_level lvl;
  if (cfg.log_level && !mx_log_parse_level(cfg.log_level, &lvl))
    mx_log_set_level(lvl);
  int ret;
  if (check) {
    ret = agent_check(&cfg, err) ? 1 : 0;
    if (ret)
      fprintf(stderr, "mxfleet-agent: %s\n", err);
    else
      printf("%s: ok\n", config);
  } else
    ret = serve(&cfg);
  agent_config_free(&cfg);
  return ret;
}
