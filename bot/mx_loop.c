/*
 * bot/mx_loop.c - curl_multi + timers + posted tasks; see mx_loop.h.
 *
 * curl's socket interface on epoll: a wakeup costs what its ready sockets
 * cost. curl_multi_poll + curl_multi_perform walk every transfer on every
 * wakeup, and with 1,000 identities each holding a long-poll that made the
 * idle process spend most of its CPU polling 1,000 quiet sockets.
 *
 * Transfers are spread over MX_LOOP_SHARDS multi handles, each with its own
 * connection cache. libcurl 7.88 walks the whole cache when a transfer
 * ends (curl_multi_remove_handle) and the host's whole bundle when the next
 * one looks for a connection to reuse: with every long-poll in one multi
 * both walks covered 1,000 connections to the one homeserver, three
 * quarters of the idle CPU at 1,000 identities. A handle always goes to the
 * same shard (a hash of its address) so its kept-alive connection is found
 * again.
 */
#include "mx_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mx_util.h"

#define MX_LOOP_SHARDS 32

struct mx_loop;

struct shard {
  struct mx_loop *loop;
  CURLM *multi;
  int index;
  int64_t curl_due; /* mx_mono_ms when curl wants its timeout; -1 none */
  int acted;        /* curl_multi_socket_action ran since its messages were read */
};

struct transfer {
  mx_loop_done_fn done;
  void *ud;
  struct shard *shard;
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
  struct shard shards[MX_LOOP_SHARDS];
  int epfd;             /* curl's sockets, the wakeup and the signal fd */
  int wakefd;           /* eventfd: a task was posted or stop asked */
  struct timer *timers; /* unsorted: a few per identity, O(N) scan is fine */
  long next_timer_id;
  pthread_mutex_t lock; /* guards tasks and stop */
  struct task *tasks, *tasks_tail;
  int stop;
};

/* epoll's data for a socket of shard i: the shard in the high half (1-based,
 * so the wakeup and signal fds, with 0 there, are told apart), the fd low. */
static uint64_t sock_tag(int shard, curl_socket_t s)
{
  return ((uint64_t)(shard + 1) << 32) | (uint32_t)s;
}

/* CURLMOPT_SOCKETFUNCTION: curl says which events it wants on s.
 * A kept-alive connection goes through REMOVE and back with every renewed
 * long-poll; curl's per-socket pointer (curl_multi_assign, dropped with
 * REMOVE) says whether epoll has it, so a new socket is added without a
 * failed EPOLL_CTL_MOD first (a syscall per renewal, 33 a second at 1,000
 * identities). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp)
{
  (void)easy;
  struct shard *sh = ud;
  struct mx_loop *l = sh->loop;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL); /* curl may have closed it already */
    return 0;
  }
  struct epoll_event ev = { 0 };
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  ev.data.u64 = sock_tag(sh->index, s);
  if (sockp) {
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
      epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
  }
  if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
    epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev);
  curl_multi_assign(sh->multi, s, sh); /* any non-NULL: "epoll has it" */
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants curl_multi_socket_action(TIMEOUT). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud)
{
  (void)multi;
  struct shard *sh = ud;
  sh->curl_due = timeout_ms < 0 ? -1 : mx_mono_ms() + timeout_ms;
  return 0;
}

struct mx_loop *mx_loop_new(void)
{
  struct mx_loop *l = calloc(1, sizeof(*l));
  if (!l)
    return NULL;
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int ok = l->epfd >= 0 && l->wakefd >= 0;
  for (int i = 0; i < MX_LOOP_SHARDS; i++) {
    struct shard *sh = &l->shards[i];
    sh->loop = l;
    sh->index = i;
    sh->curl_due = -1;
    if (!(sh->multi = curl_multi_init())) {
      ok = 0;
      continue;
    }
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
  }
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint32_t)l->wakefd };
  if (!ok || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0) {
    for (int i = 0; i < MX_LOOP_SHARDS; i++)
      if (l->shards[i].multi)
        curl_multi_cleanup(l->shards[i].multi);
    if (l->epfd >= 0)
      close(l->epfd);
    if (l->wakefd >= 0)
      close(l->wakefd);
    free(l);
    return NULL;
  }
  pthread_mutex_init(&l->lock, NULL);
  return l;
}

static void wake(struct mx_loop *l)
{
  uint64_t one = 1;
  ssize_t n = write(l->wakefd, &one, sizeof(one)); /* EAGAIN: already pending */
  (void)n;
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
  for (int i = 0; i < MX_LOOP_SHARDS; i++)
    curl_multi_cleanup(l->shards[i].multi);
  close(l->epfd);
  close(l->wakefd);
  pthread_mutex_destroy(&l->lock);
  free(l);
}

/* The same handle lands in the same shard every time (Fibonacci hashing of
 * its address: malloc'd handles are evenly spaced, a plain modulo is not). */
static struct shard *shard_of(struct mx_loop *l, CURL *easy)
{
  uint64_t h = (uint64_t)(uintptr_t)easy * UINT64_C(0x9E3779B97F4A7C15);
  return &l->shards[h >> 59]; /* the top 5 bits: 32 shards */
}

mx_err mx_loop_add_transfer(struct mx_loop *l, CURL *easy, mx_loop_done_fn done, void *ud)
{
  struct transfer *t = malloc(sizeof(*t));
  if (!t)
    return MX_ERR_NOMEM;
  t->done = done;
  t->ud = ud;
  t->shard = shard_of(l, easy);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
  if (curl_multi_add_handle(t->shard->multi, easy) != CURLM_OK) {
    free(t);
    return MX_ERR_HTTP;
  }
  return MX_OK;
}

void mx_loop_remove_transfer(struct mx_loop *l, CURL *easy)
{
  struct transfer *t = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
  curl_multi_remove_handle((t ? t->shard : shard_of(l, easy))->multi, easy);
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
  wake(l);
  return MX_OK;
}

void mx_loop_stop(struct mx_loop *l)
{
  pthread_mutex_lock(&l->lock);
  l->stop = 1;
  pthread_mutex_unlock(&l->lock);
  wake(l);
}

static int64_t nearest_timer_ms(struct mx_loop *l)
{
  int64_t now = mx_mono_ms(), best = 1000; /* wake at least once a second */
  for (struct timer *t = l->timers; t; t = t->next) {
    int64_t d = t->due - now;
    if (d < best)
      best = d < 0 ? 0 : d;
  }
  for (int i = 0; i < MX_LOOP_SHARDS; i++) {
    int64_t due = l->shards[i].curl_due;
    if (due >= 0 && due - now < best)
      best = due - now < 0 ? 0 : due - now;
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

static void finish_transfers(struct shard *sh)
{
  CURLMsg *m;
  int left;
  sh->acted = 0;
  while ((m = curl_multi_info_read(sh->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *easy = m->easy_handle;
    CURLcode res = m->data.result;
    struct transfer *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_multi_remove_handle(sh->multi, easy);
    if (t) {
      mx_loop_done_fn done = t->done;
      void *ud = t->ud;
      free(t);
      done(ud, easy, res);
    }
  }
}

static void socket_action(struct shard *sh, curl_socket_t s, int flags)
{
  int running = 0;
  sh->acted = 1;
  curl_multi_socket_action(sh->multi, s, flags, &running);
}

/* Runs curl's due timeouts and hands finished transfers to their owners,
 * only in the shards that need it: at 1,000 identities the idle loop wakes
 * some 20 times a second (a wakeup often carries several answers), and
 * reading 32 empty message queues each time showed in its profile. A done callback usually starts the next
 * transfer (a renewed long-poll), which curl wants driven at once (a 0 ms
 * timeout): that is done here in the same pass rather than after one more
 * trip through epoll_wait. A few rounds at most; anything still due is
 * left to the next wakeup. */
static void service_shards(struct mx_loop *l)
{
  for (int round = 0; round < 4; round++) {
    int64_t now = mx_mono_ms();
    int busy = 0;
    for (int i = 0; i < MX_LOOP_SHARDS; i++) {
      struct shard *sh = &l->shards[i];
      if (sh->curl_due >= 0 && now >= sh->curl_due) {
        sh->curl_due = -1;
        socket_action(sh, CURL_SOCKET_TIMEOUT, 0);
      }
      if (sh->acted) {
        finish_transfers(sh);
        busy = 1;
      }
    }
    if (!busy)
      return;
  }
}

void mx_loop_run(struct mx_loop *l, int signal_fd)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint32_t)signal_fd };
  if (signal_fd >= 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, signal_fd, &ev) != 0)
    signal_fd = -1;
  for (;;) {
    pthread_mutex_lock(&l->lock);
    int stop = l->stop;
    pthread_mutex_unlock(&l->lock);
    if (stop)
      break;
    struct epoll_event evs[64];
    int n = epoll_wait(l->epfd, evs, 64, (int)nearest_timer_ms(l));
    int signalled = 0;
    for (int i = 0; i < n; i++) {
      uint64_t tag = evs[i].data.u64;
      int fd = (int)(uint32_t)tag, shard = (int)(tag >> 32) - 1;
      if (shard < 0 && fd == signal_fd) {
        signalled = 1;
      } else if (shard < 0) {
        uint64_t v;
        ssize_t r = read(l->wakefd, &v, sizeof(v));
        (void)r;
      } else {
        int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) | (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                    (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        socket_action(&l->shards[shard], fd, flags);
      }
    }
    if (signalled)
      break;
    service_shards(l);
    run_tasks(l);
    run_timers(l);
    service_shards(l); /* transfers the tasks and timers just started */
  }
  if (signal_fd >= 0)
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, signal_fd, NULL);
}
