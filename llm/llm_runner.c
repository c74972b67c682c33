/*
 * llm_runner.c - parallel tool execution; see llm_runner.h. Workers pull
 * the next call index under a mutex, so at most `cap` tools run at once and
 * each result lands in its own slot (call order is kept without sorting).
 * Layer: llm.
 */
#include "llm_runner.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mx_buf.h"
#include "mx_util.h"

#define RUNNER_MAX_THREADS 64

struct job {
  const struct llm_tools *tools;
  const struct llm_tool_call *calls;
  struct llm_tool_result *results;
  size_t n, next;
  pthread_mutex_t mu;
};

static void run_one(const struct job *j, size_t i)
{
  struct llm_tool_result *r = &j->results[i];
  memset(r, 0, sizeof(*r));
  mx_err rc = j->tools->call(j->tools->ctx, &j->calls[i], r);
  if (rc) {
    free(r->text);
    struct mx_buf b = MX_BUF_INIT(1024);
    if (mx_buf_addf(&b, "tool %s could not run: %s", j->calls[i].name, mx_err_str(rc)) == MX_OK)
      r->text = mx_buf_take(&b);
    else
      r->text = NULL;
    r->is_error = 1;
  }
  if (!r->text)
    r->text = mx_strdup("");
}

static void *worker(void *arg)
{
  struct job *j = arg;
  for (;;) {
    pthread_mutex_lock(&j->mu);
    size_t i = j->next++;
    pthread_mutex_unlock(&j->mu);
    if (i >= j->n)
      return NULL;
    run_one(j, i);
  }
}

mx_err llm_run_calls(const struct llm_tools *tools, const struct llm_tool_call *calls, size_t n, int cap,
                     struct llm_tool_result *results, char *err)
{
  struct job j = {tools, calls, results, n, 0, PTHREAD_MUTEX_INITIALIZER};
  size_t nt = (size_t)(cap < 1 ? 1 : cap);
  if (nt > n)
    nt = n;
  if (nt > RUNNER_MAX_THREADS)
    nt = RUNNER_MAX_THREADS;
  if (nt <= 1) { /* one call: run it on this thread */
    worker(&j);
  } else {
    pthread_t th[RUNNER_MAX_THREADS];
    size_t started = 0;
    for (; started + 1 < nt; started++) /* this thread is the last worker */
      if (pthread_create(&th[started], NULL, worker, &j) != 0)
        break;
    worker(&j); /* finishes alone if no thread could start */
    for (size_t i = 0; i < started; i++)
      pthread_join(th[i], NULL);
  }
  pthread_mutex_destroy(&j.mu);
  for (size_t i = 0; i < n; i++)
    if (!results[i].text)
      return mx_fail(MX_ERR_NOMEM, err, "out of memory while running tools");
  return MX_OK;
}
