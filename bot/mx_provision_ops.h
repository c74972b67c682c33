/*
 * bot/mx_provision_ops.h - installs the bot's Matrix callbacks (login,
 * E2EE bootstrap, encrypted DM + greeting) into devices/provision before
 * `mxfleet device ...` runs.
 */
#ifndef MX_PROVISION_OPS_H
#define MX_PROVISION_OPS_H

void mx_provision_ops_install(void);

#endif
