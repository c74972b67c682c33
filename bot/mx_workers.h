/*
 * bot/mx_workers.h - a fixed pool of worker threads for everything that
 * blocks: processing sync responses (serialised per identity by the caller),
 * built-in commands, LLM turns, tool calls and approval waits.
 * Each worker owns one SQLite connection to the shared database (SQLite
 * handles are per thread here). Jobs run in submission order per worker
 * queue; there is no ordering between workers.
 * A job that may block for minutes (an LLM turn: model calls, approval
 * waits) says so with mx_workers_long_begin/end: while it runs, an extra
 * worker takes its place (up to MX_WORKERS_MAX_EXTRA), so short jobs (sync
 * processing, approve, !stop) never queue behind long ones.
 */
#ifndef MX_WORKERS_H
#define MX_WORKERS_H

#include <sqlite3.h>
#include <stdint.h>

#include "mx_err.h"

struct mx_worker {
  int index;
  sqlite3 *db; /* this thread's connection */
};

typedef void (*mx_job_fn)(struct mx_worker *w, void *arg);

struct mx_workers;

mx_err mx_workers_new(int n, const char *db_path, struct mx_workers **out, char *err);
/* Queues fn(w, arg); returns MX_ERR_CANCELLED once shutdown began (the
 * caller still owns arg then). */
mx_err mx_workers_submit(struct mx_workers *p, mx_job_fn fn, void *arg);
#define MX_WORKERS_MAX_EXTRA 64

/* The calling job is long work (see above); pair every begin with an end.
 * NULL pool: nothing. */
void mx_workers_long_begin(struct mx_workers *p);
void mx_workers_long_end(struct mx_workers *p);
/* Jobs queued or running. */
int mx_workers_busy(struct mx_workers *p);
/* Stops accepting jobs, waits until the queue is empty and every worker is
 * idle or deadline_ms passed, then joins the threads and frees the pool.
 * Returns 0 when a job overran the deadline: then nothing is freed (its
 * thread still runs) and the caller must exit without freeing what jobs use. */
int mx_workers_shutdown(struct mx_workers *p, int64_t deadline_ms);

#endif
