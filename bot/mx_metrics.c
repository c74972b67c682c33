/*
 * bot/mx_metrics.c - per-identity counters and histograms, Prometheus text.
 *
 * Layer: bot/, on common/ only. Two locks: `mu` guards the series table
 * (held briefly by every count), `render_mu` serialises renders with hook
 * removal so a hook's ctx is never used after mx_metrics_remove_extra.
 * Lock order: render_mu, then mu; hooks run with render_mu only.
 * Durations are kept in integer ms so sums print exactly.
 */
#include "mx_metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mx_util.h"

#define MX_METRICS_MAX_EXTRA 8

static const int64_t bucket_us[MX_METRICS_N_BUCKETS] = {5000,    10000,   25000,    50000,    100000,
                                                        250000,  500000,  1000000,  2500000,  5000000,
                                                        10000000, 30000000, 60000000};
static const char *const bucket_le[MX_METRICS_N_BUCKETS] = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                                            "0.25",  "0.5",  "1",     "2.5",  "5",
                                                            "10",    "30",   "60"};
/* Bot-side handling that should take a few ms: resolved below 5 ms. */
static const int64_t fine_us[MX_METRICS_N_BUCKETS] = {250,   500,   1000,   2000,   3000,   5000,  10000,
                                                      25000, 50000, 100000, 250000, 500000, 1000000};
static const char *const fine_le[MX_METRICS_N_BUCKETS] = {"0.00025", "0.0005", "0.001", "0.002", "0.003",
                                                          "0.005",   "0.01",   "0.025", "0.05",  "0.1",
                                                          "0.25",    "0.5",    "1"};

static const struct {
  const char *name;
  const char *help;
} counter_info[MX_M_COUNTER_LAST] = {
  [MX_M_SYNCS] = {"mxfleet_syncs_total", "Sync responses processed."},
  [MX_M_SYNC_ERRORS] = {"mxfleet_sync_errors_total", "Sync requests that failed."},
  [MX_M_MESSAGES_RECEIVED] = {"mxfleet_messages_received_total", "Room messages received."},
  [MX_M_REPLIES_SENT] = {"mxfleet_replies_sent_total", "Replies sent."},
  [MX_M_SEND_ERRORS] = {"mxfleet_send_errors_total", "Sends given up after retries."},
  [MX_M_SEND_RETRIES] = {"mxfleet_send_retries_total", "Send attempts that were retried."},
  [MX_M_COMMANDS] = {"mxfleet_commands_handled_total", "Commands handled."},
  [MX_M_TOOL_CALLS] = {"mxfleet_tool_calls_total", "Tool calls made."},
};

static const struct {
  const char *name;
  const char *help;
  const int64_t *bounds_us;
  const char *const *le;
  int sum_decimals; /* of seconds: 3 (observed in ms) or 6 (in us) */
} hist_info[MX_H_LAST] = {
  [MX_H_SYNC] = {"mxfleet_sync_duration_seconds", "Duration of one /sync request.", bucket_us, bucket_le, 3},
  [MX_H_HANDLING] = {"mxfleet_handling_duration_seconds", "Time from a message's arrival to its reply.", bucket_us,
                     bucket_le, 3},
  [MX_H_PING_REPLY] = {"mxfleet_ping_reply_seconds",
                       "Time from the /sync response carrying a !ping to its reply handed to the HTTP client.",
                       fine_us, fine_le, 6},
};

struct hist {
  uint64_t buckets[MX_METRICS_N_BUCKETS]; /* non-cumulative; summed when rendering */
  uint64_t count;
  int64_t sum_us;
};

struct series {
  char *identity;
  uint64_t counters[MX_M_COUNTER_LAST];
  struct hist hists[MX_H_LAST];
};

struct extra {
  mx_metrics_extra_fn fn;
  void *ctx;
};

struct mx_metrics {
  pthread_mutex_t mu;
  pthread_mutex_t render_mu;
  struct series *series; /* in registration order, as rendered */
  size_t n, alloc;
  uint32_t *slots;       /* open addressing by name: series index + 1, 0 empty */
  size_t n_slots;        /* a power of two, at least 2 n */
  struct extra extras[MX_METRICS_MAX_EXTRA];
  size_t n_extras;
};

struct mx_metrics *mx_metrics_new(void)
{
  struct mx_metrics *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
  pthread_mutex_init(&m->mu, NULL);
  pthread_mutex_init(&m->render_mu, NULL);
  return m;
}

void mx_metrics_free(struct mx_metrics *m)
{
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++)
    free(m->series[i].identity);
  free(m->series);
  free(m->slots);
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->render_mu);
  free(m);
}

/* FNV-1a: identity names are short and every count looks one up. */
static size_t name_hash(const char *s)
{
  uint64_t h = UINT64_C(14695981039346656037);
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
  return (size_t)h;
}

/* The slot holding identity's index, or the empty slot where it would go. */
static uint32_t *slot_of(const struct mx_metrics *m, const char *id)
{
  size_t mask = m->n_slots - 1;
  for (size_t i = name_hash(id) & mask;; i = (i + 1) & mask) {
    uint32_t *slot = &m->slots[i];
    if (*slot == 0 || strcmp(m->series[*slot - 1].identity, id) == 0)
      return slot;
  }
}

/* Keeps the table at most half full: lookups stay a probe or two. */
static int grow_slots(struct mx_metrics *m)
{
  size_t want = m->n_slots ? m->n_slots * 2 : 64;
  uint32_t *slots = calloc(want, sizeof(*slots));
  if (!slots)
    return -1;
  free(m->slots);
  m->slots = slots;
  m->n_slots = want;
  for (size_t i = 0; i < m->n; i++)
    *slot_of(m, m->series[i].identity) = (uint32_t)(i + 1);
  return 0;
}

/* By hash: with 1,000 identities every long-poll renewal counts, and a
 * linear search by name was a visible share of the idle CPU. Called with
 * mu held. */
static struct series *find(struct mx_metrics *m, const char *identity, int create)
{
  const char *id = identity ? identity : "";
  if (m->n_slots) {
    uint32_t idx = *slot_of(m, id);
    if (idx)
      return &m->series[idx - 1];
  }
  if (!create)
    return NULL;
  if ((m->n + 1) * 2 > m->n_slots && grow_slots(m) != 0)
    return NULL;
  if (m->n == m->alloc) {
    size_t na = m->alloc ? m->alloc * 2 : 16;
    struct series *ns = realloc(m->series, na * sizeof(*ns));
    if (!ns)
      return NULL;
    m->series = ns;
    m->alloc = na;
  }
  struct series *s = &m->series[m->n];
  memset(s, 0, sizeof(*s));
  s->identity = mx_strdup(id);
  if (!s->identity)
    return NULL;
  *slot_of(m, id) = (uint32_t)(m->n + 1);
  m->n++;
  return s;
}

mx_err mx_metrics_register(struct mx_metrics *m, const char *identity)
{
  pthread_mutex_lock(&m->mu);
  struct series *s = find(m, identity, 1);
  pthread_mutex_unlock(&m->mu);
  return s ? MX_OK : MX_ERR_NOMEM;
}

void mx_metrics_add(struct mx_metrics *m, const char *identity, enum mx_counter c, uint64_t n)
{
  if (!m || (unsigned)c >= MX_M_COUNTER_LAST)
    return;
  pthread_mutex_lock(&m->mu);
  struct series *s = find(m, identity, 1);
  if (s)
    s->counters[c] += n;
  pthread_mutex_unlock(&m->mu);
}

void mx_metrics_inc(struct mx_metrics *m, const char *identity, enum mx_counter c)
{
  mx_metrics_add(m, identity, c, 1);
}

void mx_metrics_observe_us(struct mx_metrics *m, const char *identity, enum mx_histogram h, int64_t us)
{
  if (!m || (unsigned)h >= MX_H_LAST)
    return;
  if (us < 0)
    us = 0;
  pthread_mutex_lock(&m->mu);
  struct series *s = find(m, identity, 1);
  if (s) {
    struct hist *hi = &s->hists[h];
    size_t b = 0;
    while (b < MX_METRICS_N_BUCKETS && us > hist_info[h].bounds_us[b])
      b++;
    if (b < MX_METRICS_N_BUCKETS)
      hi->buckets[b]++;
    hi->count++;
    hi->sum_us += us;
  }
  pthread_mutex_unlock(&m->mu);
}

void mx_metrics_observe_ms(struct mx_metrics *m, const char *identity, enum mx_histogram h, int64_t ms)
{
  mx_metrics_observe_us(m, identity, h, ms < 0 ? 0 : ms * 1000);
}

uint64_t mx_metrics_get(struct mx_metrics *m, const char *identity, enum mx_counter c)
{
  uint64_t v = 0;
  if (!m || (unsigned)c >= MX_M_COUNTER_LAST)
    return 0;
  pthread_mutex_lock(&m->mu);
  struct series *s = find(m, identity, 0);
  if (s)
    v = s->counters[c];
  pthread_mutex_unlock(&m->mu);
  return v;
}

mx_err mx_metrics_add_extra(struct mx_metrics *m, mx_metrics_extra_fn fn, void *ctx)
{
  mx_err rc = MX_OK;
  pthread_mutex_lock(&m->mu);
  if (m->n_extras == MX_METRICS_MAX_EXTRA)
    rc = MX_ERR_TOO_BIG;
  else
    m->extras[m->n_extras++] = (struct extra){fn, ctx};
  pthread_mutex_unlock(&m->mu);
  return rc;
}

void mx_metrics_remove_extra(struct mx_metrics *m, mx_metrics_extra_fn fn, void *ctx)
{
  pthread_mutex_lock(&m->render_mu);
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->n_extras; i++) {
    if (m->extras[i].fn == fn && m->extras[i].ctx == ctx) {
      memmove(&m->extras[i], &m->extras[i + 1], (m->n_extras - i - 1) * sizeof(m->extras[0]));
      m->n_extras--;
      break;
    }
  }
  pthread_mutex_unlock(&m->mu);
  pthread_mutex_unlock(&m->render_mu);
}

mx_err mx_metrics_escape_label(struct mx_buf *out, const char *v)
{
  mx_err rc = MX_OK;
  for (const char *p = v; *p && !rc; p++) {
    if (*p == '\\')
      rc = mx_buf_adds(out, "\\\\");
    else if (*p == '"')
      rc = mx_buf_adds(out, "\\\"");
    else if (*p == '\n')
      rc = mx_buf_adds(out, "\\n");
    else
      rc = mx_buf_addc(out, *p);
  }
  return rc;
}

static mx_err add_labelled(struct mx_buf *out, const char *name, const char *suffix, const char *identity,
                           const char *le)
{
  mx_err rc = mx_buf_addf(out, "%s%s{identity=\"", name, suffix);
  if (!rc)
    rc = mx_metrics_escape_label(out, identity);
  if (!rc && le)
    rc = mx_buf_addf(out, "\",le=\"%s", le);
  if (!rc)
    rc = mx_buf_adds(out, "\"} ");
  return rc;
}

static mx_err render_counter(struct mx_metrics *m, enum mx_counter c, struct mx_buf *out)
{
  const char *name = counter_info[c].name;
  mx_err rc = mx_buf_addf(out, "# HELP %s %s\n# TYPE %s counter\n", name, counter_info[c].help, name);
  for (size_t i = 0; i < m->n && !rc; i++) {
    rc = add_labelled(out, name, "", m->series[i].identity, NULL);
    if (!rc)
      rc = mx_buf_addf(out, "%" PRIu64 "\n", m->series[i].counters[c]);
  }
  return rc;
}

static mx_err render_one_hist(enum mx_histogram which, const char *identity, const struct hist *h,
                              struct mx_buf *out)
{
  const char *name = hist_info[which].name;
  uint64_t cum = 0;
  mx_err rc = MX_OK;
  for (size_t b = 0; b < MX_METRICS_N_BUCKETS && !rc; b++) {
    cum += h->buckets[b];
    rc = add_labelled(out, name, "_bucket", identity, hist_info[which].le[b]);
    if (!rc)
      rc = mx_buf_addf(out, "%" PRIu64 "\n", cum);
  }
  if (!rc)
    rc = add_labelled(out, name, "_bucket", identity, "+Inf");
  if (!rc)
    rc = mx_buf_addf(out, "%" PRIu64 "\n", h->count);
  if (!rc)
    rc = add_labelled(out, name, "_sum", identity, NULL);
  if (!rc)
    rc = hist_info[which].sum_decimals == 6
           ? mx_buf_addf(out, "%" PRId64 ".%06" PRId64 "\n", h->sum_us / 1000000, h->sum_us % 1000000)
           : mx_buf_addf(out, "%" PRId64 ".%03" PRId64 "\n", h->sum_us / 1000000, h->sum_us % 1000000 / 1000);
  if (!rc)
    rc = add_labelled(out, name, "_count", identity, NULL);
  if (!rc)
    rc = mx_buf_addf(out, "%" PRIu64 "\n", h->count);
  return rc;
}

static mx_err render_hist(struct mx_metrics *m, enum mx_histogram h, struct mx_buf *out)
{
  const char *name = hist_info[h].name;
  mx_err rc = mx_buf_addf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, hist_info[h].help, name);
  for (size_t i = 0; i < m->n && !rc; i++)
    rc = render_one_hist(h, m->series[i].identity, &m->series[i].hists[h], out);
  return rc;
}

/* Formats under mu, then runs the hooks on a copy of the hook list with mu
 * released (a hook may be slow or count metrics itself). */
mx_err mx_metrics_render(struct mx_metrics *m, struct mx_buf *out)
{
  struct extra extras[MX_METRICS_MAX_EXTRA];
  size_t n_extras;
  mx_err rc = MX_OK;
  pthread_mutex_lock(&m->render_mu);
  pthread_mutex_lock(&m->mu);
  for (int c = 0; c < MX_M_COUNTER_LAST && !rc; c++)
    rc = render_counter(m, (enum mx_counter)c, out);
  for (int h = 0; h < MX_H_LAST && !rc; h++)
    rc = render_hist(m, (enum mx_histogram)h, out);
  n_extras = m->n_extras;
  memcpy(extras, m->extras, sizeof(extras));
  pthread_mutex_unlock(&m->mu);
  for (size_t i = 0; i < n_extras && !rc; i++)
    rc = extras[i].fn(extras[i].ctx, out);
  pthread_mutex_unlock(&m->render_mu);
  return rc;
}
