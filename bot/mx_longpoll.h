/*
 * bot/mx_longpoll.h - how long the /sync long-polls ask the homeserver to
 * hold them.
 *
 * Every identity renews its long-poll each time one comes back empty: with
 * 1,000 identities at the customary 30 s that is 33 requests a second for
 * nothing, most of the bot's idle CPU and a share of the homeserver's. The
 * homeserver itself holds a long-poll as long as asked; what limits it is
 * whatever stands between (a reverse proxy's read timeout, 50 s in
 * Debian's haproxy, 60 s in nginx; a load balancer's idle timeout). So the
 * length starts at bot.sync_timeout_ms and is stretched by half each time
 * MX_LONGPOLL_HOLDS long-polls have been held their full length, up to
 * bot.sync_timeout_max_ms. A stretched long-poll that something cuts after
 * it outlived the starting length (an error answer or a dropped connection,
 * or silence past its length, a hang) shows where the limit is: from then
 * on long-polls stay below it, at the longest length seen held or 9/10 of
 * where the cut came, for the rest of the run. Such a cut is no failure:
 * the long-poll is asked again at once (nothing is lost, the sync token
 * did not move).
 *
 * One per bot, for all its identities (they share the path); loop thread
 * only. No I/O: the caller reports each long-poll's end.
 */
#ifndef MX_LONGPOLL_H
#define MX_LONGPOLL_H

#include <stdint.h>

/* Long-polls held in full at the current length before it is stretched. */
#define MX_LONGPOLL_HOLDS 10

struct mx_longpoll {
  int base_ms;    /* bot.sync_timeout_ms: the start, never shorter */
  int max_ms;     /* bot.sync_timeout_max_ms: never longer */
  int len_ms;     /* what new long-polls ask for */
  int held_ms;    /* the longest length held in full so far (0: none yet) */
  int cap_ms;     /* lengths from here on were cut: not asked again (0: none cut) */
  int holds;      /* held in full at len_ms since it was set */
};

void mx_longpoll_init(struct mx_longpoll *lp, int base_ms, int max_ms);

/* A long-poll that asked for asked_ms was answered after elapsed_ms. One
 * answered at (or after) its full length counts as held. Returns 1 when
 * this stretched the length. */
int mx_longpoll_answered(struct mx_longpoll *lp, int asked_ms, int64_t elapsed_ms);

/* A long-poll that asked for asked_ms failed after elapsed_ms (a transport
 * error, a 5xx or 408 answer; hung: abandoned as silent past its length).
 * Returns 1 when the failure is a cut of a stretched long-poll, to be asked
 * again at once at the new length; 0 when it is an ordinary failure (the
 * caller's backoff). *shortened is set when the length came down. */
int mx_longpoll_cut(struct mx_longpoll *lp, int asked_ms, int64_t elapsed_ms, int hung, int *shortened);

#endif
