/* mx_workers: a job marked as long work (an LLM turn waiting for the model
 * or an approval) does not take a worker from short jobs: with every base
 * worker inside long jobs, a new short job still runs at once; the extra
 * workers leave again once the long jobs end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "mx_util.h"
#include "mx_workers.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int release_long, longs_in, short_done;
static struct mx_workers *pool;

static void long_job(struct mx_worker *w, void *arg)
{
  (void)w;
  (void)arg;
  mx_workers_long_begin(pool);
  pthread_mutex_lock(&mu);
  longs_in++;
  pthread_cond_broadcast(&cv);
  while (!release_long)
    pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  mx_workers_long_end(pool);
}

static void short_job(struct mx_worker *w, void *arg)
{
  (void)arg;
  assert_non_null(w->db);
  pthread_mutex_lock(&mu);
  short_done++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* waits (deadline 10 s) until *v >= want; returns the value seen */
static int wait_at_least(int *v, int want)
{
  int64_t deadline = mx_mono_ms() + 10000;
  pthread_mutex_lock(&mu);
  while (*v < want && mx_mono_ms() < deadline) {
    pthread_mutex_unlock(&mu);
    usleep(10000);
    pthread_mutex_lock(&mu);
  }
  int got = *v;
  pthread_mutex_unlock(&mu);
  return got;
}

static void short_jobs_do_not_queue_behind_long_ones(void **state)
{
  (void)state;
  char path[128], err[MX_ERRBUF_LEN] = "";
  snprintf(path, sizeof(path), "/tmp/mx-workers-test-%d.db", (int)getpid());
  assert_int_equal(mx_workers_new(2, path, &pool, err), MX_OK);
  for (int i = 0; i < 3; i++) /* more long jobs than base workers */
    assert_int_equal(mx_workers_submit(pool, long_job, NULL), MX_OK);
  assert_int_equal(wait_at_least(&longs_in, 3), 3);
  assert_int_equal(mx_workers_submit(pool, short_job, NULL), MX_OK);
  assert_int_equal(wait_at_least(&short_done, 1), 1);
  pthread_mutex_lock(&mu);
  release_long = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  assert_int_equal(mx_workers_shutdown(pool, 10000), 1); /* the extras left too */
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(short_jobs_do_not_queue_behind_long_ones),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
