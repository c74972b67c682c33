/*
 * bot/mx_ident.h - one managed device's Matrix identity: start-up (stored
 * token or password login, display name, sync filter, E2EE start, alerts
 * room) on a worker, then the sync cycle (mx_sync.h).
 * Never calls /logout: that would delete the device and its keys.
 */
#ifndef MX_IDENT_H
#define MX_IDENT_H

#include <sqlite3.h>

#include "mx_bot.h"

mx_err mx_ident_init(struct mx_ident *id, struct mx_bot *bot, const struct mx_device_config *dev, char *err);
void mx_ident_release(struct mx_ident *id);
/* Password login (the first run of an identity, or onboarding): stores the
 * token and device in db, sets it on api; *device_id malloc'd. label names
 * the device in messages. */
mx_err mx_ident_login(struct mx_api *api, sqlite3 *db, const char *user_id, const char *password_file,
                      const char *label, char **device_id, char *err);
/* Queues the start-up job; on success it starts the sync cycle. A stored
 * token is used unchecked (no request): the first /sync checks it. */
mx_err mx_ident_start(struct mx_ident *id);
/* Starts every identity of bot: a few queued at first, each start-up job
 * queuing the next, so the fleet's start-up never fills the worker queue. */
void mx_ident_start_all(struct mx_bot *bot);
/* The homeserver rejected the stored, unchecked token (M_UNKNOWN_TOKEN):
 * start again with a password login as a new device. */
void mx_ident_token_rejected(struct mx_ident *id);

#endif
