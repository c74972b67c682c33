/* bot/mx_loop.c - curl_multi + timers + posted tasks; see mx_loop.h. */
#include "mx_loop.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "mx_util.h"

struct transfer {
  mx_loop_done_fn done;
  void *ud;
};

struct timer {
  long id;
  int64_t due;
  mx_loop_timer_fn fn;
  void *ud;
  struct timer *next;
};

struct task {
  mx_loop_task_fn fn;
  void *ud;
  struct task *next;
};

struct mx_loop {
  CURLM *multi;
  struct timer *timers; /* unsorted: a few per identity, O(N) scan is fine */
  long next_timer_id;
  pthread_mutex_t lock; /* guards tasks and stop */
  struct task *tasks, *tasks_tail;
  int stop;
};

struct mx_loop *mx_loop_new(void)
{
  struct mx_loop *l = calloc(1, sizeof(*l));
  if (!l)
    return NULL;
  l->multi = curl_multi_init();
  if (!l->multi) {
    free(l);
    return NULL;
  }
  pthread_mutex_init(&l->lock, NULL);
  return l;
}

void mx_loop_free(struct mx_loop *l)
{
  if (!l)
    return;
  while (l->timers) {
    struct timer *t = l->timers;
    l->timers = t->next;
    free(t);
  }
  while (l->tasks) {
    struct task *t = l->tasks;
    l->tasks = t->next;
    free(t);
  }
  curl_multi_cleanup(l->multi);
  pthread_mutex_destroy(&l->lock);
  free(l);
}

mx_err mx_loop_add_transfer(struct mx_loop *l, CURL *easy, mx_loop_done_fn done, void *ud)
{
  struct transfer *t = malloc(sizeof(*t));
  if (!t)
    return MX_ERR_NOMEM;
  t->done = done;
  t->ud = ud;
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
  if (curl_multi_add_handle(l->multi, easy) != CURLM_OK) {
    free(t);
    return MX_ERR_HTTP;
  }
  return MX_OK;
}

void mx_loop_remove_transfer(struct mx_loop *l, CURL *easy)
{
  struct transfer *t = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
  curl_multi_remove_handle(l->multi, easy);
  free(t);
}

long mx_loop_add_timer(struct mx_loop *l, int64_t delay_ms, mx_loop_timer_fn fn, void *ud)
{
  struct timer *t = malloc(sizeof(*t));
  if (!t)
    return -1;
  t->id = ++l->next_timer_id;
  t->due = mx_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
  t->fn = fn;
  t->ud = ud;
  t->next = l->timers;
  l->timers = t;
  return t->id;
}

void mx_loop_del_timer(struct mx_loop *l, long id)
{
  for (struct timer **pp = &l->timers; *pp; pp = &(*pp)->next) {
    if ((*pp)->id == id) {
      struct timer *t = *pp;
      *pp = t->next;
      free(t);
      return;
    }
  }
}

mx_err mx_loop_post(struct mx_loop *l, mx_loop_task_fn fn, void *ud)
{
  struct task *t = malloc(sizeof(*t));
  if (!t)
    return MX_ERR_NOMEM;
  t->fn = fn;
  t->ud = ud;
  t->next = NULL;
  pthread_mutex_lock(&l->lock);
  if (l->tasks_tail)
    l->tasks_tail->next = t;
  else
    l->tasks = t;
  l->tasks_tail = t;
  pthread_mutex_unlock(&l->lock);
  curl_multi_wakeup(l->multi);
  return MX_OK;
}

void mx_loop_stop(struct mx_loop *l)
{
  pthread_mutex_lock(&l->lock);
  l->stop = 1;
  pthread_mutex_unlock(&l->lock);
  curl_multi_wakeup(l->multi);
}

static int64_t nearest_timer_ms(struct mx_loop *l)
{
  int64_t now = mx_mono_ms(), best = 1000; /* wake at least once a second */
  for (struct timer *t = l->timers; t; t = t->next) {
    int64_t d = t->due - now;
    if (d < best)
      best = d < 0 ? 0 : d;
  }
  return best;
}

static void run_timers(struct mx_loop *l)
{
  int64_t now = mx_mono_ms();
  /* Collect due ids first: a callback may add or delete timers. */
  long due[64];
  int n = 0;
  for (struct timer *t = l->timers; t && n < 64; t = t->next)
    if (t->due <= now)
      due[n++] = t->id;
  for (int i = 0; i < n; i++) {
    struct timer *t = NULL;
    for (struct timer *s = l->timers; s; s = s->next)
      if (s->id == due[i])
        t = s;
    if (!t)
      continue;
    int64_t next = t->fn(l, t->ud);
    /* the callback may have deleted its own timer */
    for (struct timer *s = l->timers; s; s = s->next) {
      if (s == t && s->id == due[i]) {
        if (next == MX_LOOP_NOMORE)
          mx_loop_del_timer(l, due[i]);
        else
          t->due = mx_mono_ms() + next;
        break;
      }
    }
  }
}

static void run_tasks(struct mx_loop *l)
{
  pthread_mutex_lock(&l->lock);
  struct task *list = l->tasks;
  l->tasks = l->tasks_tail = NULL;
  pthread_mutex_unlock(&l->lock);
  while (list) {
    struct task *t = list;
    list = t->next;
    t->fn(t->ud);
    free(t);
  }
}

static void finish_transfers(struct mx_loop *l)
{
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(l->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *easy = m->easy_handle;
    CURLcode res = m->data.result;
    struct transfer *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_multi_remove_handle(l->multi, easy);
    if (t) {
      mx_loop_done_fn done = t->done;
      void *ud = t->ud;
      free(t);
      done(ud, easy, res);
    }
  }
}

void mx_loop_run(struct mx_loop *l, int signal_fd)
{
  for (;;) {
    pthread_mutex_lock(&l->lock);
    int stop = l->stop;
    pthread_mutex_unlock(&l->lock);
    if (stop)
      return;
    struct curl_waitfd extra = { signal_fd, CURL_WAIT_POLLIN, 0 };
    int running = 0;
    curl_multi_poll(l->multi, signal_fd >= 0 ? &extra : NULL, signal_fd >= 0 ? 1 : 0,
                    (int)nearest_timer_ms(l), NULL);
    if (signal_fd >= 0 && (extra.revents & CURL_WAIT_POLLIN))
      return;
    curl_multi_perform(l->multi, &running);
    finish_transfers(l);
    run_tasks(l);
    run_timers(l);
  }
}
