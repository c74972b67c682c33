/*
 * bot/mx_sync.h - the sync cycle of one identity.
 *
 * The long-poll runs on the loop thread (curl_multi); its response is
 * processed on a worker in ONE transaction: E2EE to_device and device lists
 * first, then invites, then joined rooms' timelines into the inbox ledger,
 * and last next_batch - committed after processing, so a crash at any point
 * replays the batch instead of losing it, and the ledger makes the replay
 * harmless. Only then is the next long-poll started.
 */
#ifndef MX_SYNC_H
#define MX_SYNC_H

#include "mx_bot.h"

/* Thread-safe: starts the next /sync after delay_ms on the loop thread. */
void mx_sync_schedule(struct mx_ident *id, int64_t delay_ms);
/* Aborts a running long-poll (shutdown). Loop thread only. */
void mx_sync_abort(struct mx_ident *id);
/* After start-up: re-dispatches inbox items left "new" by a previous run and
 * reports those interrupted while running. */
void mx_sync_recover_inbox(struct mx_ident *id, struct mx_worker *w);

#endif
