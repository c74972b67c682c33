/*
 * bot/mx_cli.h - operator subcommands other than `run`: audit, llm, device,
 * config (mx_config_check.c), trust (mx_cli_trust.c).
 * Each takes (argc, argv) starting at the subcommand name and returns the
 * process exit code (0 ok, 1 failure found, 2 usage or config error).
 */
#ifndef MX_CLI_H
#define MX_CLI_H

#include "mx_err.h"

struct mx_config;
struct llm_config;

int mx_cli_audit(int argc, char **argv);
int mx_cli_llm(int argc, char **argv);
int mx_cli_device(int argc, char **argv);
int mx_cli_config(int argc, char **argv);
/* The blocks run parses after mx_config_load (llm, speech), first error
 * in err. *lc (may be NULL) receives the parsed llm config. */
mx_err mx_config_check_blocks(const struct mx_config *cfg, struct llm_config **lc, char *err);
int mx_cli_trust(int argc, char **argv);
/* Loads the config as `run` does; prints the error and returns NULL on
 * failure (free with mx_config_free). */
struct mx_config *mx_cli_load_config(const char *path);
/* Parses and applies a --log-level value; prints the error and returns
 * non-zero when it is not debug|info|warn|error. */
int mx_cli_set_log_level(const char *level);
/* 1 once a --log-level was given (it then wins over the config's log_level). */
int mx_cli_log_level_given(void);
/* Every log line passes through the secret redactor. */
void mx_cli_install_redaction(void);
void mx_cli_uninstall_redaction(void);

#endif
