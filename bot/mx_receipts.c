/* bot/mx_receipts.c - read receipts, delayed and coalesced per room; see mx_receipts.h. */
#include "mx_receipts.h"

#include <stdlib.h>
#include <string.h>

#include "mx_log.h"
#include "mx_send.h"
#include "mx_util.h"

struct mx_receipt {
  struct mx_ident *id;
  char *room_id;
  char *event_id;
  struct mx_receipt *next;
};

static void receipt_free(struct mx_receipt *r)
{
  free(r->room_id);
  free(r->event_id);
  free(r);
}

/* worker: sends what is pending now (blocking calls, with mx_api's retries) */
static void flush_job(struct mx_worker *w, void *arg)
{
  (void)w;
  struct mx_bot *bot = arg;
  pthread_mutex_lock(&bot->receipts_lock);
  struct mx_receipt *list = bot->receipts;
  bot->receipts = NULL;
  bot->receipts_armed = 0;
  pthread_mutex_unlock(&bot->receipts_lock);
  while (list) {
    struct mx_receipt *r = list;
    list = r->next;
    if (!bot->stopping) {
      mx_send_receipt(r->id, r->room_id, r->event_id);
      mx_debug(r->id->dev->name, "read receipt on %s in %s", r->event_id, r->room_id);
    }
    receipt_free(r);
  }
}

static int64_t due_cb(struct mx_loop *loop, void *ud)
{
  (void)loop;
  struct mx_bot *bot = ud;
  /* shutting down: the list stays for mx_receipts_discard */
  mx_workers_submit(bot->workers, flush_job, bot);
  return MX_LOOP_NOMORE;
}

static void arm_task(void *ud)
{
  struct mx_bot *bot = ud;
  if (mx_loop_add_timer(bot->loop, MX_RECEIPT_DELAY_MS, due_cb, bot) < 0)
    mx_workers_submit(bot->workers, flush_job, bot); /* no timer: send now */
}

void mx_receipt_later(struct mx_ident *id, const char *room_id, const char *event_id)
{
  struct mx_bot *bot = id->bot;
  char *ev = mx_strdup(event_id);
  if (!ev)
    return;
  pthread_mutex_lock(&bot->receipts_lock);
  struct mx_receipt *r = bot->receipts;
  while (r && !(r->id == id && strcmp(r->room_id, room_id) == 0))
    r = r->next;
  if (r) {
    free(r->event_id);
    r->event_id = ev;
  } else if ((r = calloc(1, sizeof(*r))) && (r->room_id = mx_strdup(room_id))) {
    r->id = id;
    r->event_id = ev;
    r->next = bot->receipts;
    bot->receipts = r;
  } else {
    free(r);
    free(ev);
    r = NULL;
  }
  int arm = r && !bot->receipts_armed;
  if (arm)
    bot->receipts_armed = 1;
  pthread_mutex_unlock(&bot->receipts_lock);
  if (arm && mx_loop_post(bot->loop, arm_task, bot)) {
    pthread_mutex_lock(&bot->receipts_lock);
    bot->receipts_armed = 0; /* out of memory: the next receipt tries again */
    pthread_mutex_unlock(&bot->receipts_lock);
  }
}

void mx_receipts_discard(struct mx_bot *bot)
{
  pthread_mutex_lock(&bot->receipts_lock);
  struct mx_receipt *list = bot->receipts;
  bot->receipts = NULL;
  pthread_mutex_unlock(&bot->receipts_lock);
  while (list) {
    struct mx_receipt *r = list;
    list = r->next;
    receipt_free(r);
  }
}
