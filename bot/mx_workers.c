/* bot/mx_workers.c - worker pool; see mx_workers.h. */
#include "mx_workers.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "mx_db.h"
#include "mx_log.h"
#include "mx_util.h"

struct job {
  mx_job_fn fn;
  void *arg;
  struct job *next;
};

struct mx_workers {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct job *head, *tail;
  int n, running_jobs, closing, exited;
  int longs;  /* jobs between long_begin and long_end */
  int extras; /* extra workers alive (detached; each frees itself) */
  int spawned; /* extra workers ever started (their index) */
  pthread_t *threads;
  struct mx_worker *workers;
  char *db_path; /* for extra workers' connections */
};

struct worker_arg {
  struct mx_workers *pool;
  struct mx_worker *w;
  int extra; /* 1: owns w and its connection, leaves when not needed */
};

static void *run(void *ud)
{
  struct worker_arg *a = ud;
  struct mx_workers *p = a->pool;
  struct mx_worker *w = a->w;
  int extra = a->extra;
  free(a);
  pthread_mutex_lock(&p->lock);
  for (;;) {
    /* an extra worker leaves once fewer long jobs run than extras exist */
    while (!p->head && !p->closing && !(extra && p->extras > p->longs))
      pthread_cond_wait(&p->cond, &p->lock);
    if (extra && !p->head && (p->closing || p->extras > p->longs)) {
      p->extras--;
      pthread_cond_broadcast(&p->cond);
      pthread_mutex_unlock(&p->lock);
      mx_db_close(w->db);
      free(w);
      return NULL;
    }
    if (!p->head && p->closing)
      break;
    struct job *j = p->head;
    p->head = j->next;
    if (!p->head)
      p->tail = NULL;
    p->running_jobs++;
    pthread_mutex_unlock(&p->lock);
    j->fn(w, j->arg);
    free(j);
    pthread_mutex_lock(&p->lock);
    p->running_jobs--;
    pthread_cond_broadcast(&p->cond);
  }
  p->exited++;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

mx_err mx_workers_new(int n, const char *db_path, struct mx_workers **out, char *err)
{
  struct mx_workers *p = calloc(1, sizeof(*p));
  if (!p)
    return MX_ERR_NOMEM;
  p->n = n;
  p->threads = calloc((size_t)n, sizeof(*p->threads));
  p->workers = calloc((size_t)n, sizeof(*p->workers));
  p->db_path = mx_strdup(db_path);
  if (!p->threads || !p->workers || !p->db_path) {
    free(p->db_path);
    free(p->threads);
    free(p->workers);
    free(p);
    return MX_ERR_NOMEM;
  }
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  for (int i = 0; i < n; i++) {
    p->workers[i].index = i;
    mx_err rc = mx_db_open(db_path, &p->workers[i].db, err);
    if (rc) {
      for (int k = 0; k < i; k++)
        mx_db_close(p->workers[k].db);
      free(p->db_path);
      free(p->threads);
      free(p->workers);
      free(p);
      return rc;
    }
  }
  for (int i = 0; i < n; i++) {
    struct worker_arg *a = malloc(sizeof(*a));
    if (!a)
      return MX_ERR_NOMEM;
    a->pool = p;
    a->w = &p->workers[i];
    a->extra = 0;
    pthread_create(&p->threads[i], NULL, run, a);
  }
  *out = p;
  return MX_OK;
}

mx_err mx_workers_submit(struct mx_workers *p, mx_job_fn fn, void *arg)
{
  struct job *j = malloc(sizeof(*j));
  if (!j)
    return MX_ERR_NOMEM;
  j->fn = fn;
  j->arg = arg;
  j->next = NULL;
  pthread_mutex_lock(&p->lock);
  if (p->closing) {
    pthread_mutex_unlock(&p->lock);
    free(j);
    return MX_ERR_CANCELLED;
  }
  if (p->tail)
    p->tail->next = j;
  else
    p->head = j;
  p->tail = j;
  pthread_cond_signal(&p->cond);
  pthread_mutex_unlock(&p->lock);
  return MX_OK;
}

/* Called with p->lock held. Best effort: without a thread or a connection
 * the pool keeps its usual size. */
static void spawn_extra(struct mx_workers *p)
{
  if (p->closing || p->extras >= MX_WORKERS_MAX_EXTRA || p->extras >= p->longs)
    return;
  struct mx_worker *w = calloc(1, sizeof(*w));
  struct worker_arg *a = malloc(sizeof(*a));
  char err[MX_ERRBUF_LEN] = "";
  pthread_t t;
  pthread_attr_t attr;
  if (!w || !a || mx_db_open(p->db_path, &w->db, err)) {
    if (err[0])
      mx_warn(NULL, "workers: no extra worker for long work: %s", err);
    free(w);
    free(a);
    return;
  }
  w->index = p->n + p->spawned;
  a->pool = p;
  a->w = w;
  a->extra = 1;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, run, a) == 0) {
    p->extras++;
    p->spawned++;
  } else {
    mx_db_close(w->db);
    free(w);
    free(a);
  }
  pthread_attr_destroy(&attr);
}

void mx_workers_long_begin(struct mx_workers *p)
{
  if (!p)
    return;
  pthread_mutex_lock(&p->lock);
  p->longs++;
  spawn_extra(p);
  pthread_mutex_unlock(&p->lock);
}

void mx_workers_long_end(struct mx_workers *p)
{
  if (!p)
    return;
  pthread_mutex_lock(&p->lock);
  p->longs--;
  pthread_cond_broadcast(&p->cond); /* an idle extra may leave */
  pthread_mutex_unlock(&p->lock);
}

int mx_workers_busy(struct mx_workers *p)
{
  pthread_mutex_lock(&p->lock);
  int n = p->running_jobs;
  for (struct job *j = p->head; j; j = j->next)
    n++;
  pthread_mutex_unlock(&p->lock);
  return n;
}

int mx_workers_shutdown(struct mx_workers *p, int64_t deadline_ms)
{
  int64_t deadline = mx_mono_ms() + deadline_ms;
  pthread_mutex_lock(&p->lock);
  p->closing = 1;
  pthread_cond_broadcast(&p->cond);
  while ((p->exited < p->n || p->extras > 0) && mx_mono_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cond, &p->lock, &ts);
  }
  int all_exited = p->exited == p->n && p->extras == 0;
  pthread_mutex_unlock(&p->lock);
  if (!all_exited) {
    /* A job overran the shutdown deadline (e.g. a stuck remote call): the
     * process is exiting, so leave its thread and connection to the OS. */
    mx_warn(NULL, "shutdown: %d job(s) still running after the deadline", mx_workers_busy(p));
    return 0;
  }
  for (int i = 0; i < p->n; i++) {
    pthread_join(p->threads[i], NULL);
    mx_db_close(p->workers[i].db);
  }
  while (p->head) {
    struct job *j = p->head;
    p->head = j->next;
    free(j);
  }
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cond);
  free(p->db_path);
  free(p->threads);
  free(p->workers);
  free(p);
  return 1;
}
