/*
 * bot/mx_receipts.h - read receipts on handled messages, sent a moment
 * later and coalesced per room.
 *
 * A message the bot has handled gets a read receipt (m.read) so the
 * operator sees it was read. The receipt is not sent on the reply's heels:
 * Synapse would process it, and wake the operator's /sync for it, while the
 * reply is being delivered and the operator's next message sent. Instead
 * the latest handled event of each room waits MX_RECEIPT_DELAY_MS from the
 * first one pending, then one receipt per room goes out from a worker; a
 * burst of commands in a room costs one receipt, not one each. Receipts
 * still pending at shutdown are dropped (best effort, like before: a
 * receipt is never retried past its deadline either).
 */
#ifndef MX_RECEIPTS_H
#define MX_RECEIPTS_H

#include "mx_bot.h"

#define MX_RECEIPT_DELAY_MS 1000

/* Marks event_id in room_id read by id, within MX_RECEIPT_DELAY_MS (any
 * thread). A later event of the same room replaces a pending one. */
void mx_receipt_later(struct mx_ident *id, const char *room_id, const char *event_id);

/* Frees the receipts still pending (the daemon's close, after the workers
 * have stopped). */
void mx_receipts_discard(struct mx_bot *bot);

#endif
