/*
 * bot/crypto/e2ee_conn.c - the database connections crypto work borrows.
 *
 * Every identity used to keep a connection of its own open for its
 * worker-side crypto work: with 1,000 identities, 1,000 connections, each
 * with its own copy of the schema and its own page cache (some 40 KB
 * resident each), while only a handful ever work at the same moment (one
 * per worker thread). Now an identity borrows one for each piece of work
 * (e2ee_db_enter/leave, nestable, one thread at a time) from a small process-wide pool per
 * database file; idle ones give their page cache back. A file's idle
 * connections are closed when its last mx_e2ee closes, so a database
 * deleted and made again afterwards is never reached through a stale one.
 * Layer: bot/crypto.
 */
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_db.h"
#include "mx_util.h"

#define E2EE_POOL_IDLE 8 /* idle connections kept per file; more are closed */

struct pool {
  struct pool *next;
  char *path;
  int users; /* open mx_e2ee on this file */
  int n_idle;
  sqlite3 *idle[E2EE_POOL_IDLE];
};

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool *pools;

static struct pool *find(const char *path)
{
  for (struct pool *p = pools; p; p = p->next)
    if (strcmp(p->path, path) == 0)
      return p;
  return NULL;
}

mx_err e2ee_conn_join(const char *path, char *err)
{
  pthread_mutex_lock(&pools_lock);
  struct pool *p = find(path);
  if (!p && (p = calloc(1, sizeof(*p)))) {
    if ((p->path = mx_strdup(path))) {
      p->next = pools;
      pools = p;
    } else {
      free(p);
      p = NULL;
    }
  }
  if (p)
    p->users++;
  pthread_mutex_unlock(&pools_lock);
  return p ? MX_OK : mx_fail(MX_ERR_NOMEM, err, "out of memory");
}

void e2ee_conn_part(const char *path)
{
  sqlite3 *close_these[E2EE_POOL_IDLE];
  int n = 0;
  pthread_mutex_lock(&pools_lock);
  struct pool **pp = &pools;
  while (*pp && strcmp((*pp)->path, path) != 0)
    pp = &(*pp)->next;
  struct pool *p = *pp;
  if (p && --p->users == 0) {
    *pp = p->next;
    n = p->n_idle;
    memcpy(close_these, p->idle, sizeof(sqlite3 *) * (size_t)n);
    free(p->path);
    free(p);
  }
  pthread_mutex_unlock(&pools_lock);
  for (int i = 0; i < n; i++)
    mx_db_close(close_these[i]);
}

static mx_err take(const char *path, sqlite3 **db, char *err)
{
  *db = NULL;
  pthread_mutex_lock(&pools_lock);
  struct pool *p = find(path);
  if (p && p->n_idle)
    *db = p->idle[--p->n_idle];
  pthread_mutex_unlock(&pools_lock);
  return *db ? MX_OK : mx_db_open(path, db, err); /* opened outside the lock */
}

static void give_back(const char *path, sqlite3 *db)
{
  sqlite3_db_release_memory(db); /* an idle connection holds no pages */
  pthread_mutex_lock(&pools_lock);
  struct pool *p = find(path);
  if (p && p->n_idle < E2EE_POOL_IDLE) {
    p->idle[p->n_idle++] = db;
    db = NULL;
  }
  pthread_mutex_unlock(&pools_lock);
  if (db)
    mx_db_close(db);
}

/* The borrowed connection is one thread's from enter to the matching leave:
 * e->db_lock (recursive: entry points nest) is held all that time. Two
 * threads of one identity on one connection would share its transaction:
 * one's BEGIN fails inside the other's, and one's writes vanish with the
 * other's ROLLBACK. Lock order: e->db_lock, then e->send_lock, then e->lock;
 * nobody enters while holding either of those (or a write transaction on
 * another connection), so waiting here cannot deadlock or stall SQLite. */
static mx_err entered(struct mx_e2ee *e, char *err)
{
  mx_err rc = MX_OK;
  if (e->db_users == 0)
    rc = take(e->db_path, &e->db, err);
  if (!rc)
    e->db_users++;
  else
    pthread_mutex_unlock(&e->db_lock);
  return rc;
}

mx_err e2ee_db_enter(struct mx_e2ee *e, char *err)
{
  pthread_mutex_lock(&e->db_lock);
  return entered(e, err);
}

mx_err e2ee_db_try_enter(struct mx_e2ee *e, char *err)
{
  if (pthread_mutex_trylock(&e->db_lock) != 0)
    return MX_ERR_CONFLICT;
  return entered(e, err);
}

void e2ee_db_leave(struct mx_e2ee *e)
{
  if (e->db_users > 0 && --e->db_users == 0) {
    give_back(e->db_path, e->db);
    e->db = NULL;
  }
  pthread_mutex_unlock(&e->db_lock);
}
