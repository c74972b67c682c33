/*
 * bot/mx_metrics.h - the process's metrics registry: counters and latency
 * histograms per Matrix identity, rendered in the Prometheus text exposition
 * format (version 0.0.4) for GET /metrics.
 *
 * Thread-safe: any thread may count or observe; one mutex guards the table.
 * Other modules add their own lines through an "extra" hook (e.g. the LLM
 * router's breaker gauges) without this file knowing them: hooks are called
 * while rendering, outside the registry's lock. Layer: bot/, on common/ only.
 */
#ifndef MX_METRICS_H
#define MX_METRICS_H

#include <stdint.h>

#include "mx_buf.h"
#include "mx_err.h"

/* Never renumbered; new ones go above the _LAST value with their text. */
enum mx_counter {
  MX_M_SYNCS = 0,          /* mxfleet_syncs_total: /sync responses processed */
  MX_M_SYNC_ERRORS,        /* mxfleet_sync_errors_total */
  MX_M_MESSAGES_RECEIVED,  /* mxfleet_messages_received_total */
  MX_M_REPLIES_SENT,       /* mxfleet_replies_sent_total */
  MX_M_SEND_ERRORS,        /* mxfleet_send_errors_total: sends given up */
  MX_M_SEND_RETRIES,       /* mxfleet_send_retries_total */
  MX_M_COMMANDS,           /* mxfleet_commands_handled_total */
  MX_M_TOOL_CALLS,         /* mxfleet_tool_calls_total */
  MX_M_COUNTER_LAST
};

enum mx_histogram {
  MX_H_SYNC = 0,  /* mxfleet_sync_duration_seconds: one /sync request */
  MX_H_HANDLING,  /* mxfleet_handling_duration_seconds: message in to reply out */
  MX_H_PING_REPLY, /* mxfleet_ping_reply_seconds: /sync response received to the !ping
                      reply's PUT handed to the HTTP client (fine buckets, 0.25 ms up) */
  MX_H_LAST
};

/* Bucket upper bounds in ms (Prometheus' defaults from 5 ms to 10 s, plus
 * 30 s and 60 s because a long-poll /sync lasts up to its timeout). */
#define MX_METRICS_N_BUCKETS 13

struct mx_metrics;

/* Appends complete exposition lines (with their own HELP/TYPE) to out. */
typedef mx_err (*mx_metrics_extra_fn)(void *ctx, struct mx_buf *out);

struct mx_metrics *mx_metrics_new(void);
void mx_metrics_free(struct mx_metrics *m);

/* Makes an identity's series appear (at zero) before anything happens, so
 * rate() sees the start. Counting an unknown identity registers it too. */
mx_err mx_metrics_register(struct mx_metrics *m, const char *identity);
void mx_metrics_add(struct mx_metrics *m, const char *identity, enum mx_counter c, uint64_t n);
void mx_metrics_inc(struct mx_metrics *m, const char *identity, enum mx_counter c);
/* Records one duration (negative values count as 0). */
void mx_metrics_observe_ms(struct mx_metrics *m, const char *identity, enum mx_histogram h, int64_t ms);
void mx_metrics_observe_us(struct mx_metrics *m, const char *identity, enum mx_histogram h, int64_t us);
/* Current value (tests, !status). 0 for an unknown identity. */
uint64_t mx_metrics_get(struct mx_metrics *m, const char *identity, enum mx_counter c);

/* At most 8 hooks (MX_ERR_TOO_BIG beyond). Removal takes the same (fn, ctx)
 * and waits for a render in progress to finish, so ctx may be freed once it
 * returns; a hook must therefore not call remove itself. */
mx_err mx_metrics_add_extra(struct mx_metrics *m, mx_metrics_extra_fn fn, void *ctx);
void mx_metrics_remove_extra(struct mx_metrics *m, mx_metrics_extra_fn fn, void *ctx);

/* Appends the whole exposition text to out (cap it: MX_BUF_MAX_HTTP). */
mx_err mx_metrics_render(struct mx_metrics *m, struct mx_buf *out);

/* Appends v as a label value: backslash, double quote and newline escaped. */
mx_err mx_metrics_escape_label(struct mx_buf *out, const char *v);

#endif
