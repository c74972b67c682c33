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
  pthread_t *threads;
  struct mx_worker *workers;
};

struct worker_arg {
  struct mx_workers *pool;
  struct mx_worker *w;
};

static void *run(void *ud)
{
  struct worker_arg *a = ud;
  struct mx_workers *p = a->pool;
  struct mx_worker *w = a->w;
  free(a);
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->head && !p->closing)
      pthread_cond_wait(&p->cond, &p->lock);
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
  if (!p->threads || !p->workers) {
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
  while (p->exited < p->n && mx_mono_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cond, &p->lock, &ts);
  }
  int all_exited = p->exited == p->n;
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
  free(p->threads);
  free(p->workers);
  free(p);
  return 1;
}
