/*
 * bot/crypto/e2ee_store.c - writes in-memory libolm state to SQLite.
 * Writes are upserts guarded by a generation number (WHERE excluded.gen >
 * gen), so the sync thread (caller's connection) and a worker (private
 * connection) can persist the same object in any order and the newest
 * ratchet state wins. Workers never hold e->lock while waiting for SQLite's
 * write lock: the sync thread holds that lock and then waits for e->lock.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_util.h"

#define SQL_ACCT                                                                                \
  "INSERT INTO e2ee_account(acct, device_id, gen, pickle) VALUES(?,?,?,?) ON CONFLICT(acct) DO " \
  "UPDATE SET pickle=excluded.pickle, gen=excluded.gen WHERE excluded.gen > e2ee_account.gen"
#define SQL_OLM                                                                                   \
  "INSERT INTO e2ee_olm(acct, their_key, session_id, pickle, last_used_ms, gen) VALUES(?,?,?,?,?,?) " \
  "ON CONFLICT(acct, their_key, session_id) DO UPDATE SET pickle=excluded.pickle, "              \
  "last_used_ms=excluded.last_used_ms, gen=excluded.gen WHERE excluded.gen > e2ee_olm.gen"
#define SQL_OUT                                                                                  \
  "INSERT INTO e2ee_outbound(acct, room_id, session_id, pickle, created_ms, msg_count, gen, invalid) " \
  "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(acct, room_id) DO UPDATE SET session_id=excluded.session_id, " \
  "pickle=excluded.pickle, created_ms=excluded.created_ms, msg_count=excluded.msg_count, "      \
  "gen=excluded.gen, invalid=excluded.invalid WHERE excluded.gen > e2ee_outbound.gen"

struct write {
  const char *sql;
  int n;
  char *v[8];
  char num[4][24];
  char *owned_a, *owned_b; /* strings that outlive an evicted session */
};

struct writes {
  struct write *w;
  size_t n, cap;
};

static struct write *add_write(struct writes *ws)
{
  if (ws->n == ws->cap) {
    size_t cap = ws->cap ? ws->cap * 2 : 8;
    struct write *nw = realloc(ws->w, cap * sizeof(*nw));
    if (!nw)
      return NULL;
    ws->w = nw;
    ws->cap = cap;
  }
  struct write *w = &ws->w[ws->n++];
  memset(w, 0, sizeof(*w));
  return w;
}

static void free_writes(struct writes *ws)
{
  for (size_t i = 0; i < ws->n; i++) {
    if (ws->w[i].n > 3)
      free(ws->w[i].v[3]); /* the pickle is owned; the rest point into e */
    free(ws->w[i].owned_a);
    free(ws->w[i].owned_b);
  }
  free(ws->w);
}

static const char *num(struct write *w, int slot, int64_t v)
{
  snprintf(w->num[slot], sizeof(w->num[slot]), "%" PRId64, v);
  return w->num[slot];
}

static mx_err snapshot_evicted(struct mx_e2ee *e, struct writes *ws)
{
  while (e->evicted) {
    struct e2ee_olm *o = e->evicted;
    struct write *w = add_write(ws);
    if (!w)
      return MX_ERR_NOMEM;
    w->sql = "DELETE FROM e2ee_olm WHERE acct=? AND their_key=? AND session_id=?";
    w->n = 3;
    w->v[0] = e->user_id;
    w->v[1] = w->owned_a = mx_strdup(o->their_key);
    w->v[2] = w->owned_b = mx_strdup(o->session_id);
    e->evicted = o->next;
    e2ee_free_session(o->s);
    free(o);
    if (!w->v[1] || !w->v[2])
      return MX_ERR_NOMEM;
  }
  return MX_OK;
}

static mx_err snapshot_olm(struct mx_e2ee *e, struct writes *ws)
{
  for (struct e2ee_olm *o = e->olm; o; o = o->next) {
    if (!o->dirty)
      continue;
    struct write *w = add_write(ws);
    if (!w)
      return MX_ERR_NOMEM;
    w->sql = SQL_OLM;
    w->n = 6;
    w->v[0] = e->user_id;
    w->v[1] = o->their_key;
    w->v[2] = o->session_id;
    w->v[3] = e2ee_pickle_session(e, o->s);
    w->v[4] = (char *)num(w, 0, o->last_used_ms);
    w->v[5] = (char *)num(w, 1, o->gen);
    if (!w->v[3])
      return MX_ERR_CRYPTO;
    o->dirty = 0;
  }
  return MX_OK;
}

static mx_err snapshot_outbound(struct mx_e2ee *e, struct writes *ws)
{
  for (struct e2ee_outbound *g = e->out; g; g = g->next) {
    if (!g->dirty)
      continue;
    struct write *w = add_write(ws);
    if (!w)
      return MX_ERR_NOMEM;
    w->sql = SQL_OUT;
    w->n = 8;
    w->v[0] = e->user_id;
    w->v[1] = g->room_id;
    w->v[2] = g->session_id;
    w->v[3] = e2ee_pickle_outbound(e, g->s);
    w->v[4] = (char *)num(w, 0, g->created_ms);
    w->v[5] = (char *)num(w, 1, g->msg_count);
    w->v[6] = (char *)num(w, 2, g->gen);
    w->v[7] = (char *)num(w, 3, g->invalid);
    if (!w->v[3])
      return MX_ERR_CRYPTO;
    g->dirty = 0;
  }
  return MX_OK;
}

/* Snapshots every dirty object (e->lock held) and clears the dirty flags. */
static mx_err snapshot(struct mx_e2ee *e, struct writes *ws)
{
  if (e->acct_dirty) {
    struct write *w = add_write(ws);
    if (!w)
      return MX_ERR_NOMEM;
    w->sql = SQL_ACCT;
    w->n = 4;
    w->v[0] = e->user_id;
    w->v[1] = e->device_id;
    w->v[2] = (char *)num(w, 0, e->acct_gen);
    w->v[3] = e2ee_pickle_account(e);
    if (!w->v[3])
      return MX_ERR_CRYPTO;
    e->acct_dirty = 0;
  }
  mx_err rc = snapshot_evicted(e, ws);
  if (!rc)
    rc = snapshot_olm(e, ws);
  if (!rc)
    rc = snapshot_outbound(e, ws);
  return rc;
}

static mx_err apply(sqlite3 *db, const struct writes *ws, char *err)
{
  for (size_t i = 0; i < ws->n; i++) {
    mx_err rc = e2ee_db_run(db, err, ws->w[i].sql, ws->w[i].n, (const char *const *)ws->w[i].v);
    if (rc)
      return rc;
  }
  return MX_OK;
}

mx_err e2ee_persist_dirty(struct mx_e2ee *e, sqlite3 *db, char *err)
{
  struct writes ws = { 0 };
  mx_err rc = snapshot(e, &ws);
  if (rc)
    mx_fail(rc, err, "e2ee store: cannot pickle state");
  else
    rc = apply(db, &ws, err);
  free_writes(&ws);
  return rc;
}

mx_err e2ee_flush_unlocked_write(struct mx_e2ee *e, char *err)
{
  struct writes ws = { 0 };
  mx_err rc = snapshot(e, &ws);
  if (rc) {
    free_writes(&ws);
    return mx_fail(rc, err, "e2ee store: cannot pickle state");
  }
  if (ws.n == 0) {
    free_writes(&ws);
    return MX_OK;
  }
  /* Why unlock: the sync thread may hold SQLite's write lock while waiting
   * for e->lock; waiting for SQLite here with e->lock held would stall both
   * until the busy timeout. The generation guard keeps the order right. */
  pthread_mutex_unlock(&e->lock);
  rc = mx_db_begin(e->db, err);
  if (!rc)
    rc = apply(e->db, &ws, err);
  if (!rc)
    rc = mx_db_commit(e->db, err);
  else
    mx_db_rollback(e->db);
  pthread_mutex_lock(&e->lock);
  if (rc) {
    /* not written: mark everything dirty again (the gen guard makes
     * rewriting unchanged objects harmless) */
    e->acct_dirty = 1;
    for (struct e2ee_olm *o = e->olm; o; o = o->next)
      o->dirty = 1;
    for (struct e2ee_outbound *g = e->out; g; g = g->next)
      g->dirty = 1;
  }
  free_writes(&ws);
  return rc;
}

static mx_err load_olm(struct mx_e2ee *e, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db, "SELECT their_key, session_id, pickle, last_used_ms, gen FROM e2ee_olm "
                                   "WHERE acct=? ORDER BY last_used_ms", &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_STATIC);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    struct e2ee_olm *o = e2ee_alloc(sizeof(*o));
    if (!o) {
      rc = MX_ERR_NOMEM;
      break;
    }
    snprintf(o->their_key, sizeof(o->their_key), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(o->session_id, sizeof(o->session_id), "%s", (const char *)sqlite3_column_text(st, 1));
    o->s = e2ee_unpickle_session(e, (const char *)sqlite3_column_text(st, 2));
    o->last_used_ms = sqlite3_column_int64(st, 3);
    o->gen = sqlite3_column_int64(st, 4);
    if (!o->s) {
      rc = mx_fail(MX_ERR_CRYPTO, err, "e2ee store: olm session '%s' does not unpickle", o->session_id);
      free(o);
      break;
    }
    o->next = e->olm;
    e->olm = o;
  }
  sqlite3_finalize(st);
  return rc;
}

static mx_err load_outbound(struct mx_e2ee *e, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db, "SELECT room_id, session_id, pickle, created_ms, msg_count, gen, invalid "
                                   "FROM e2ee_outbound WHERE acct=?", &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_STATIC);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    struct e2ee_outbound *g = e2ee_alloc(sizeof(*g));
    if (!g) {
      rc = MX_ERR_NOMEM;
      break;
    }
    snprintf(g->room_id, sizeof(g->room_id), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(g->session_id, sizeof(g->session_id), "%s", (const char *)sqlite3_column_text(st, 1));
    g->s = e2ee_unpickle_outbound(e, (const char *)sqlite3_column_text(st, 2));
    g->created_ms = sqlite3_column_int64(st, 3);
    g->msg_count = sqlite3_column_int(st, 4);
    g->gen = sqlite3_column_int64(st, 5);
    g->invalid = sqlite3_column_int(st, 6);
    if (!g->s) {
      /* an unreadable outbound session is simply rotated */
      g->invalid = 1;
    }
    g->next = e->out;
    e->out = g;
  }
  sqlite3_finalize(st);
  return rc;
}

void e2ee_drop_sessions(struct mx_e2ee *e)
{
  while (e->evicted) {
    struct e2ee_olm *o = e->evicted;
    e->evicted = o->next;
    e2ee_free_session(o->s);
    free(o);
  }
  while (e->olm) {
    struct e2ee_olm *o = e->olm;
    e->olm = o->next;
    e2ee_free_session(o->s);
    free(o);
  }
  while (e->out) {
    struct e2ee_outbound *g = e->out;
    e->out = g->next;
    e2ee_free_outbound(g->s);
    free(g);
  }
}

mx_err e2ee_load_state(struct mx_e2ee *e, char *err)
{
  e2ee_drop_sessions(e);
  mx_err rc = load_olm(e, err);
  if (!rc)
    rc = load_outbound(e, err);
  return rc;
}
