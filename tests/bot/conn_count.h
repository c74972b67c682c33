/* tests/bot/conn_count.h - counts the TCP connections a libmicrohttpd test
 * server accepts, for the tests that check a client keeps its connections
 * alive. Pass conn_count_notify and a struct conn_count as
 * MHD_OPTION_NOTIFY_CONNECTION; read with conn_count_get. Header-only. */
#ifndef CONN_COUNT_H
#define CONN_COUNT_H

#include <pthread.h>

#include <microhttpd.h>

struct conn_count {
  pthread_mutex_t lock;
  int n;
};

static inline void conn_count_init(struct conn_count *cc)
{
  pthread_mutex_init(&cc->lock, NULL);
  cc->n = 0;
}

static inline void conn_count_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                                     enum MHD_ConnectionNotificationCode code)
{
  (void)c;
  (void)socket_context;
  struct conn_count *cc = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    pthread_mutex_lock(&cc->lock);
    cc->n++;
    pthread_mutex_unlock(&cc->lock);
  }
}

static inline int conn_count_get(struct conn_count *cc)
{
  pthread_mutex_lock(&cc->lock);
  int n = cc->n;
  pthread_mutex_unlock(&cc->lock);
  return n;
}

static inline void conn_count_destroy(struct conn_count *cc)
{
  pthread_mutex_destroy(&cc->lock);
}

#endif
