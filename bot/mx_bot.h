/*
 * bot/mx_bot.h - the daemon's state shared by the bot/ modules (internal to
 * bot/): the bot (config, loop, workers, identities) and one identity per
 * managed device. Who touches what:
 *   - sync fields (sync_easy, sync_body, next_batch while a sync runs) only
 *     on the loop thread, then handed to one worker job at a time;
 *   - e2ee state under `crypto_lock`; one LLM turn of an identity at a time
 *     holds the turn slot (`turn_busy` under `turn_lock`, `turn_free`
 *     signalled when it frees); a turn waiting for an operator's approval
 *     gives the slot up (mx_ext.c), so other questions proceed; counters are
 *     atomics.
 */
#ifndef MX_BOT_H
#define MX_BOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "mx_api.h"
#include "mx_buf.h"
#include "mx_config.h"
#include "mx_longpoll.h"
#include "mx_loop.h"
#include "mx_workers.h"

struct mx_bot;
struct mx_metrics;
struct mx_receipt; /* a pending read receipt, see mx_receipts.h */
struct mx_ext; /* LLM, tools and E2EE wiring, see mx_ext.h */

enum mx_ident_state { MX_IDENT_STARTING = 0, MX_IDENT_RUNNING, MX_IDENT_FAILED };

struct mx_ident {
  struct mx_bot *bot;
  const struct mx_device_config *dev; /* borrowed from bot->cfg */
  const char *user_id;                /* = dev->user_id */
  char *device_id;
  char *filter_id;
  char *next_batch;                   /* NULL before the first sync */
  int first_sync_done;
  struct mx_api *api;
  _Atomic int state;
  int start_attempts;                 /* start-up retries so far */
  int token_unchecked;                /* stored token not yet accepted by the homeserver */
  int token_rejected;                 /* ... and rejected: the next start logs in */
  int inbox_recovered;                /* the inbox left by the last run was recovered */
  int start_chained;                  /* its first start queued the next identity's */
  int64_t start_delay_ms;

  /* loop thread only */
  CURL *sync_handle;                  /* kept for every long-poll of the identity */
  CURL *sync_easy;                    /* sync_handle while a /sync is in flight, else NULL */
  struct curl_slist *sync_headers;
  struct mx_buf sync_body;
  char sync_retry_after[32]; /* Retry-After header of the last /sync answer */
  int sync_failures;
  long retry_timer;
  int64_t sync_started_ms;
  int sync_asked_ms;                  /* the timeout the /sync in flight asked for */
  int64_t sync_received_us;           /* mx_mono_us of the last /sync response */

  _Atomic int64_t last_sync_ok_ms;    /* wall clock of the last good sync */
  _Atomic int sync_live;
  int64_t store_full_since_ms;        /* sync worker: data_dir full since (0 = not) */
  int64_t token_stored_ms;            /* sync worker: mx_mono_ms next_batch was stored, 0 not this run */
  int token_unsaved;                  /* the sync that ended last: next_batch is newer than the stored one */
  int64_t swept_ms;                   /* sync worker: mx_mono_ms of the last store sweep, 0 none */
  _Atomic int actions_left;           /* sync workers: room actions still to retry */
  _Atomic int actions_busy;           /* mx_rooms_run_actions: a run is in progress */
  _Atomic int actions_wanted;         /* asked again meanwhile: the runner goes again */
  unsigned held_flushed;              /* sync worker: held_gen when no send was kept */
  _Atomic unsigned held_gen;          /* bumped whenever a send is kept to send again */
  char *alerts_room_id;               /* for the identity that owns the alerts room */

  pthread_mutex_t crypto_lock;
  pthread_mutex_t turn_lock;          /* guards turn_busy */
  pthread_cond_t turn_free;
  int turn_busy;                      /* 1 while a turn talks to the model or runs tools */
  _Atomic int64_t stop_gen;           /* bumped by !stop: turns started before it end */
  void *ext;                          /* per-identity extension state (mx_ext.c) */
};

struct mx_bot {
  struct mx_config *cfg;
  char *db_path;
  sqlite3 *db;                        /* loop thread's connection */
  struct mx_loop *loop;
  struct mx_workers *workers;
  struct mx_ident *idents;
  size_t n_idents;
  int64_t started_ms;
  _Atomic size_t next_start;          /* next identity mx_ident_start_all queues */
  _Atomic int stopping;
  _Atomic size_t caught_up;           /* identities past their first sync of this run */
  struct mx_metrics *metrics;
  struct mx_ext *ext;
  pthread_mutex_t receipts_lock;      /* guards receipts, receipts_armed */
  struct mx_receipt *receipts;        /* read receipts waiting to be sent */
  int receipts_armed;                 /* a flush is scheduled */
  int64_t *sync_deadlines;            /* loop thread, per identity: mx_mono_ms past which its
                                         /sync in flight hung, 0 none (an array: the watch scans
                                         8 KB, not 1,000 cold mx_idents) */
  struct mx_longpoll longpoll;        /* loop thread: the long-poll's length */
  _Atomic int longpoll_ms;            /* longpoll.len_ms for other threads (/metrics) */
};

/* 1 when user_id is a configured operator. */
int mx_bot_is_operator(const struct mx_bot *bot, const char *user_id);
/* Looks up an identity by Matrix user ID; NULL when none. */
struct mx_ident *mx_bot_ident(struct mx_bot *bot, const char *user_id);

#endif
