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

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "mx_bot.h"
#include "mx_msg.h"

/* New operator commands found in one sync response, in order (owned). */
struct mx_sync_batch {
  struct mx_msg **msgs;
  size_t n, cap;
};
void mx_sync_batch_free(struct mx_sync_batch *b);

/* The processing of one sync response, inside the caller's open transaction
 * on db, without network: E2EE (to_device, device lists), invites, joined
 * rooms' timelines with gaps (the earlier events fetched for limited
 * timelines, keyed by room ID; may be NULL) into the inbox ledger, and events
 * whose room keys arrived. Commands to dispatch are appended to b. The sync
 * worker calls it; so does tests/fuzz/fuzz_sync.c with any body. */
mx_err mx_sync_process(struct mx_ident *id, sqlite3 *db, const cJSON *resp, const cJSON *gaps,
                       struct mx_sync_batch *b, char *err);

/* Thread-safe: starts the next /sync after delay_ms on the loop thread. */
void mx_sync_schedule(struct mx_ident *id, int64_t delay_ms);
/* Starts the loop timer that abandons hung long-polls (once, before the
 * loop runs, on its thread). */
void mx_sync_watch_start(struct mx_bot *bot);
/* Aborts a running long-poll (shutdown). Loop thread only. */
void mx_sync_abort(struct mx_ident *id);
/* At a clean stop, once no sync job runs: stores the tokens that quiet
 * syncs kept in memory only, all in one transaction, so the next start
 * continues from there. */
void mx_sync_store_tokens(struct mx_bot *bot, sqlite3 *db);
/* After start-up: re-dispatches inbox items left "new" by a previous run and
 * reports those interrupted while running. */
void mx_sync_recover_inbox(struct mx_ident *id, struct mx_worker *w);

#endif
