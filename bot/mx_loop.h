/*
 * bot/mx_loop.h - the main loop: curl_multi handles (32 shards, see
 * mx_loop.c) driving every identity's long-poll /sync, timers, and tasks
 * posted from other threads.
 *
 * Shaped after Redis ae.c: timers return their next delay (or
 * MX_LOOP_NOMORE); epoll_wait() sleeps until the nearest timer (ours or
 * curl's), a socket event (curl's socket interface), a posted task (an
 * eventfd) or the signal fd.
 * Runs on one thread; only mx_loop_post and mx_loop_stop are thread-safe.
 * Ownership: the loop never frees a CURL handle; the done callback does.
 */
#ifndef MX_LOOP_H
#define MX_LOOP_H

#include <stdint.h>

#include <curl/curl.h>

#include "mx_err.h"

#define MX_LOOP_NOMORE (-1)

struct mx_loop;

typedef void (*mx_loop_done_fn)(void *ud, CURL *easy, CURLcode result);
typedef int64_t (*mx_loop_timer_fn)(struct mx_loop *loop, void *ud);
typedef void (*mx_loop_task_fn)(void *ud);

struct mx_loop *mx_loop_new(void);
void mx_loop_free(struct mx_loop *loop);
mx_err mx_loop_add_transfer(struct mx_loop *loop, CURL *easy, mx_loop_done_fn done, void *ud);
/* Aborts a transfer without calling its done callback. */
void mx_loop_remove_transfer(struct mx_loop *loop, CURL *easy);
long mx_loop_add_timer(struct mx_loop *loop, int64_t delay_ms, mx_loop_timer_fn fn, void *ud);
void mx_loop_del_timer(struct mx_loop *loop, long id);
/* Thread-safe: runs fn(ud) on the loop thread soon. */
mx_err mx_loop_post(struct mx_loop *loop, mx_loop_task_fn fn, void *ud);
/* Thread-safe. */
void mx_loop_stop(struct mx_loop *loop);
/* Runs until mx_loop_stop or a byte arrives on signal_fd (-1 for none). */
void mx_loop_run(struct mx_loop *loop, int signal_fd);

#endif
