/* bot/mx_longpoll.c - stretching the /sync long-poll; see mx_longpoll.h. */
#include "mx_longpoll.h"

void mx_longpoll_init(struct mx_longpoll *lp, int base_ms, int max_ms)
{
  lp->base_ms = base_ms;
  lp->max_ms = max_ms > base_ms ? max_ms : base_ms;
  lp->len_ms = base_ms;
  lp->held_ms = 0;
  lp->cap_ms = 0;
  lp->holds = 0;
}

int mx_longpoll_answered(struct mx_longpoll *lp, int asked_ms, int64_t elapsed_ms)
{
  /* an answer before the length (events came) proves nothing */
  if (asked_ms <= 0 || elapsed_ms < asked_ms)
    return 0;
  if (asked_ms > lp->held_ms)
    lp->held_ms = asked_ms;
  /* only holds at the current length stretch it, and never after a cut */
  if (asked_ms != lp->len_ms || lp->cap_ms || lp->len_ms >= lp->max_ms || ++lp->holds < MX_LONGPOLL_HOLDS)
    return 0;
  int64_t next = (int64_t)lp->len_ms * 3 / 2;
  lp->len_ms = next > lp->max_ms ? lp->max_ms : (int)next;
  lp->holds = 0;
  return 1;
}

int mx_longpoll_cut(struct mx_longpoll *lp, int asked_ms, int64_t elapsed_ms, int hung, int *shortened)
{
  *shortened = 0;
  /* Within the starting length the length is not the cause: the caller's
   * ordinary retry with backoff. */
  if (asked_ms <= lp->base_ms || elapsed_ms < lp->base_ms)
    return 0;
  if (lp->cap_ms && asked_ms >= lp->cap_ms)
    return 1; /* started before the limit was found, cut by the same */
  lp->cap_ms = asked_ms;
  /* Below the cut: the longest length held (not the one just cut), or 9/10
   * of where an active cut came (a proxy's timeout counts from the request);
   * a hang says nothing of when the path was lost. */
  int len = lp->held_ms < asked_ms ? lp->held_ms : 0;
  int64_t near = (elapsed_ms < asked_ms ? elapsed_ms : asked_ms) * 9 / 10;
  if (!hung && near > len)
    len = (int)near;
  if (len < lp->base_ms)
    len = lp->base_ms;
  if (len >= asked_ms)
    len = lp->base_ms;
  if (len < lp->len_ms) {
    lp->len_ms = len;
    *shortened = 1;
  }
  lp->holds = 0;
  return 1;
}
