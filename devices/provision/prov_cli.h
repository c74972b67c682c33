/*
 * prov_cli.h - `mxfleet device add|list|show|revoke` argument parsing and
 * dispatch onto prov.h. Layer: devices/provision; the bot's CLI only forwards
 * argv (starting at "device") here. Prints to stdout/stderr.
 */
#ifndef DEV_PROV_CLI_H
#define DEV_PROV_CLI_H

/* argv[0] is "device"; finds --config FILE itself. Returns an exit code:
 * 0 ok, 1 failed, 2 usage error. Uses the ops installed with
 * dev_provision_set_matrix_ops() (prov.h). */
int dev_provision_cli(int argc, char **argv);

#endif
