/*
 * bot/mx_cli.h - operator subcommands other than `run`: audit, llm, device.
 * Each takes (argc, argv) starting at the subcommand name and returns the
 * process exit code (0 ok, 1 failure found, 2 usage or config error).
 */
#ifndef MX_CLI_H
#define MX_CLI_H

int mx_cli_audit(int argc, char **argv);
int mx_cli_llm(int argc, char **argv);
int mx_cli_device(int argc, char **argv);
/* Parses and applies a --log-level value; prints the error and returns
 * non-zero when it is not debug|info|warn|error. */
int mx_cli_set_log_level(const char *level);
/* Every log line passes through the secret redactor. */
void mx_cli_install_redaction(void);
void mx_cli_uninstall_redaction(void);

#endif
