/* bot/mx_daemon.c - the `mxfleet run` daemon; see mx_daemon.h. */
#include "mx_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <curl/curl.h>

#include "mx_bot.h"
#include "mx_db.h"
#include "mx_ext.h"
#include "mx_httpd.h"
#include "mx_ident.h"
#include "mx_log.h"
#include "mx_metrics.h"
#include "mx_receipts.h"
#include "mx_store.h"
#include "mx_sync.h"
#include "mx_util.h"

#define MX_WORKERS 6
#define MX_SHUTDOWN_MS 3000

static int signal_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
  (void)sig;
  int saved = errno;
  ssize_t w = write(signal_pipe[1], "x", 1);
  (void)w;
  errno = saved;
}

int mx_bot_is_operator(const struct mx_bot *bot, const char *user_id)
{
  for (size_t i = 0; i < bot->cfg->n_operators; i++)
    if (strcmp(bot->cfg->operators[i], user_id) == 0)
      return 1;
  return 0;
}

struct mx_ident *mx_bot_ident(struct mx_bot *bot, const char *user_id)
{
  for (size_t i = 0; i < bot->n_idents; i++)
    if (strcmp(bot->idents[i].user_id, user_id) == 0)
      return &bot->idents[i];
  return NULL;
}

/* Live = started and its last sync finished within the longest long-poll
 * plus a margin. Called on the HTTP thread: reads atomics only. */
static int health_cb(void *ctx, cJSON *report)
{
  struct mx_bot *bot = ctx;
  int all = 1;
  int64_t now = mx_now_ms(), limit = bot->longpoll.max_ms + 60000; /* set before the HTTP thread starts */
  cJSON *ids = cJSON_AddObjectToObject(report, "identities");
  const char *reason = NULL;
  for (size_t i = 0; i < bot->n_idents; i++) {
    struct mx_ident *id = &bot->idents[i];
    int state = id->state;
    int64_t last = id->last_sync_ok_ms;
    const char *s = state == MX_IDENT_FAILED ? "failed"
                    : state == MX_IDENT_STARTING ? "starting"
                    : !id->sync_live || last == 0 ? "sync not live"
                    : now - last > limit ? "sync stalled" : "live";
    cJSON_AddStringToObject(ids, id->dev->name, s);
    if (strcmp(s, "live") != 0) {
      all = 0;
      if (!reason)
        reason = s;
    }
  }
  if (!all) {
    char r[256];
    snprintf(r, sizeof(r), "not every identity is syncing (first problem: %s)", reason);
    cJSON_AddStringToObject(report, "reason", r);
  }
  return all;
}

/* One instance per data_dir: two processes on one Matrix device would
 * fork its Olm ratchets and wedge every session. */
static int lock_data_dir(const char *data_dir, char *err)
{
  char *path = mx_path_join(data_dir, "mxfleet.lock");
  int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
    mx_fail(MX_ERR_CONFLICT, err, "data_dir '%s' is in use by another mxfleet process", data_dir);
    if (fd >= 0)
      close(fd);
    fd = -1;
  }
  free(path);
  return fd;
}

/* /metrics: the length new long-polls ask for, mx_longpoll.h (HTTP thread). */
static mx_err longpoll_metrics(void *ctx, struct mx_buf *out)
{
  const struct mx_bot *bot = ctx;
  return mx_buf_addf(out,
                     "# HELP mxfleet_sync_longpoll_seconds How long a /sync long-poll asks the homeserver to "
                     "hold it: bot.sync_timeout_ms, stretched up to bot.sync_timeout_max_ms while nothing "
                     "cuts it.\n"
                     "# TYPE mxfleet_sync_longpoll_seconds gauge\n"
                     "mxfleet_sync_longpoll_seconds %.3f\n",
                     atomic_load(&bot->longpoll_ms) / 1000.0);
}

static mx_err bot_open(struct mx_bot *bot, const struct mx_run_opts *o, char *err)
{
  mx_err rc = mx_config_load(o->config, &bot->cfg, err);
  if (rc)
    return rc;
  if (!o->log_level_given && bot->cfg->log_level >= 0)
    mx_log_set_level((enum mx_log_level)bot->cfg->log_level);
  rc = mx_mkdir_p(bot->cfg->data_dir, 0700, err);
  if (rc)
    return rc;
  bot->db_path = mx_path_join(bot->cfg->data_dir, "mxfleet.db");
  if (!bot->db_path)
    return MX_ERR_NOMEM;
  rc = mx_db_open(bot->db_path, &bot->db, err);
  if (!rc)
    rc = mx_store_migrate(bot->db, err);
  if (rc)
    return rc;
  bot->metrics = mx_metrics_new();
  bot->loop = mx_loop_new();
  if (!bot->metrics || !bot->loop)
    return MX_ERR_NOMEM;
  mx_longpoll_init(&bot->longpoll, bot->cfg->sync_timeout_ms, bot->cfg->sync_timeout_max_ms);
  atomic_store(&bot->longpoll_ms, bot->longpoll.len_ms);
  rc = mx_metrics_add_extra(bot->metrics, longpoll_metrics, bot);
  if (rc)
    return rc;
  rc = mx_workers_new(MX_WORKERS, bot->db_path, &bot->workers, err);
  if (rc)
    return rc;
  bot->idents = calloc(bot->cfg->n_devices ? bot->cfg->n_devices : 1, sizeof(*bot->idents));
  bot->sync_deadlines = calloc(bot->cfg->n_devices ? bot->cfg->n_devices : 1, sizeof(*bot->sync_deadlines));
  if (!bot->idents || !bot->sync_deadlines)
    return MX_ERR_NOMEM;
  for (size_t i = 0; i < bot->cfg->n_devices; i++) {
    rc = mx_ident_init(&bot->idents[i], bot, &bot->cfg->devices[i], err);
    if (rc)
      return rc;
    bot->n_idents++;
    mx_metrics_register(bot->metrics, bot->cfg->devices[i].name);
  }
  return mx_ext_init(bot, err);
}

/* Returns 0 when a job overran the shutdown deadline (nothing freed). */
static int bot_close(struct mx_bot *bot)
{
  bot->stopping = 1;
  for (size_t i = 0; i < bot->n_idents; i++)
    mx_sync_abort(&bot->idents[i]);
  /* Everything committed is safe; a job stuck past the deadline (a remote
   * call that ignores its timeout) must not hold the exit: leave its memory
   * to the OS rather than free it under the running thread. */
  if (bot->workers && !mx_workers_shutdown(bot->workers, MX_SHUTDOWN_MS))
    return 0;
  if (bot->db)
    mx_sync_store_tokens(bot, bot->db);
  mx_ext_free(bot);
  mx_receipts_discard(bot);
  pthread_mutex_destroy(&bot->receipts_lock);
  for (size_t i = 0; i < bot->n_idents; i++)
    mx_ident_release(&bot->idents[i]);
  free(bot->idents);
  free(bot->sync_deadlines);
  mx_loop_free(bot->loop);
  mx_metrics_free(bot->metrics);
  mx_db_close(bot->db);
  free(bot->db_path);
  mx_config_free(bot->cfg);
  return 1;
}

int mx_daemon_run(const struct mx_run_opts *o)
{
  struct mx_bot bot;
  memset(&bot, 0, sizeof(bot));
  bot.started_ms = mx_now_ms();
  pthread_mutex_init(&bot.receipts_lock, NULL);
  char err[MX_ERRBUF_LEN] = "";
  int lock_fd = -1, code = 1;
  struct mx_httpd *httpd = NULL;

  if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    mx_error(NULL, "cannot create signal pipe");
    return 1;
  }
  /* A fixed mmap threshold: glibc otherwise raises it to the size of any
   * mmapped block freed (up to 32 MB), so after the first /metrics scrape
   * at 1,000 identities (3.5 MB of text) every later render, and every big
   * catch-up sync, lands on the heap and stays resident: 6.6 MB more from
   * the second scrape on (bench/bot/identities.py --restart-idle). */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  mx_err rc = bot_open(&bot, o, err);
  if (!rc && (lock_fd = lock_data_dir(bot.cfg->data_dir, err)) < 0)
    rc = MX_ERR_CONFLICT;
  const char *listen = o->http_listen ? o->http_listen : bot.cfg ? bot.cfg->http_listen : NULL;
  if (!rc && listen)
    rc = mx_httpd_start(listen, health_cb, &bot, bot.metrics, &httpd, err);
  if (rc) {
    fprintf(stderr, "mxfleet: %s\n", err[0] ? err : mx_err_str(rc));
    code = rc == MX_ERR_CONFIG || rc == MX_ERR_INVALID ? 2 : 1;
  } else {
    mx_info(NULL, "mxfleet %s starting %zu identities on %s", MXFLEET_VERSION, bot.n_idents, bot.cfg->homeserver);
    mx_ident_start_all(&bot);
    mx_sync_watch_start(&bot);
    mx_ext_health_start(&bot);
    mx_loop_run(bot.loop, signal_pipe[0]);
    mx_info(NULL, "shutting down");
    code = 0;
  }
  mx_httpd_stop(httpd);
  if (!bot_close(&bot)) {
    /* A job is still blocked (an LLM turn waiting for an approval, a remote
     * call ignoring its timeout). Everything it did is committed; its
     * approval stays pending in the database for the next start. Leave
     * without unwinding the memory it still uses. */
    mx_info(NULL, "stopped (a waiting job was left to the restart)");
    fflush(NULL);
    _exit(0);
  }
  if (lock_fd >= 0)
    close(lock_fd);
  close(signal_pipe[0]);
  close(signal_pipe[1]);
  if (code == 0)
    mx_info(NULL, "stopped");
  return code;
}
