/*
 * bot/crypto/mx_e2ee.c - life cycle of one identity's crypto: open (pickle
 * key, migrations, account load or creation), start (keys, cross-signing),
 * maintain (one-time keys, fallback key, outdated lists,
 * unwedging) and the command-trust decision. The other mx_e2ee_* entry
 * points live in e2ee_sync.c, e2ee_megolm_in.c, e2ee_megolm_out.c and
 * e2ee_attach.c. Layer: bot/crypto.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

static mx_err identity_keys(struct mx_e2ee *e, char *err)
{
  size_t n = olm_account_identity_keys_length(e->acct);
  char *buf = malloc(n + 1);
  if (!buf)
    return MX_ERR_NOMEM;
  size_t r = olm_account_identity_keys(e->acct, buf, n);
  cJSON *j = r == olm_error() ? NULL : cJSON_ParseWithLength(buf, r);
  free(buf);
  const char *c = mx_json_str(j, "curve25519"), *d = mx_json_str(j, "ed25519");
  mx_err rc = (c && d) ? MX_OK : mx_fail(MX_ERR_CRYPTO, err, "olm account: identity keys unreadable");
  if (!rc) {
    snprintf(e->curve, sizeof(e->curve), "%s", c);
    snprintf(e->ed, sizeof(e->ed), "%s", d);
  }
  cJSON_Delete(j);
  return rc;
}

static mx_err create_account(struct mx_e2ee *e, char *err)
{
  if (!(e->acct = e2ee_new_account()))
    return MX_ERR_NOMEM;
  size_t rl = olm_create_account_random_length(e->acct);
  uint8_t *rnd = malloc(rl);
  mx_err rc = rnd ? mx_random_bytes(rnd, rl) : MX_ERR_NOMEM;
  if (!rc && olm_create_account(e->acct, rnd, rl) == olm_error())
    rc = e2ee_olm_fail(err, "create olm account", olm_account_last_error(e->acct));
  if (rnd)
    memset(rnd, 0, rl);
  free(rnd);
  e->acct_gen = 1;
  e->acct_dirty = 1;
  e->keys_published = 0;
  e->fallback_missing = 1;
  return rc;
}

/* A different device id means a new login: the old crypto state is void. */
static mx_err forget_other_device(struct mx_e2ee *e, char *err)
{
  static const char *const tables[] = { "e2ee_account", "e2ee_olm", "e2ee_inbound", "e2ee_outbound",
                                        "e2ee_outbound_shared", "e2ee_pending", "e2ee_dummy", "e2ee_withheld",
                                        "e2ee_megolm_seen" };
  const char *v[] = { e->user_id };
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < sizeof(tables) / sizeof(tables[0]); i++) {
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE acct=?", tables[i]);
    rc = e2ee_db_run(e->db, err, sql, 1, v);
  }
  return rc;
}

static mx_err load_account(struct mx_e2ee *e, char *err)
{
  const char *v[] = { e->user_id };
  char *dev = e2ee_db_text(e->db, "SELECT device_id FROM e2ee_account WHERE acct=?", 1, v);
  mx_err rc = MX_OK;
  if (dev && strcmp(dev, e->device_id) != 0) {
    mx_warn(e->label, "store belongs to device %s, now %s: starting a fresh crypto identity", dev, e->device_id);
    rc = forget_other_device(e, err);
    free(dev);
    dev = NULL;
  }
  char *pickle = dev ? e2ee_db_text(e->db, "SELECT pickle FROM e2ee_account WHERE acct=?", 1, v) : NULL;
  free(dev);
  if (rc) {
    free(pickle);
    return rc;
  }
  if (!pickle)
    return create_account(e, err);
  e->acct_gen = e2ee_db_int(e->db, "SELECT gen FROM e2ee_account WHERE acct=?", 1, v, 1);
  e->fallback_rotated_ms = e2ee_db_int(e->db, "SELECT fallback_rotated_ms FROM e2ee_account WHERE acct=?", 1, v, 0);
  e->keys_published = e2ee_db_int(e->db, "SELECT keys_published FROM e2ee_account WHERE acct=?", 1, v, 0) == 1;
  /* the previous key is forgotten an hour after the rotation, restart or not */
  e->fallback_replaced_ms = e->fallback_rotated_ms;
  e->acct = e2ee_unpickle_account(e, pickle);
  free(pickle);
  if (!e->acct)
    return mx_fail(MX_ERR_CRYPTO, err, "olm account of %s does not unpickle (wrong e2ee-pickle.key?)", e->user_id);
  return MX_OK;
}

static mx_err copy_opts(struct mx_e2ee *e, const struct mx_e2ee_opts *o)
{
  e->user_id = mx_strdup(o->user_id);
  e->label = mx_strdup(o->label ? o->label : o->user_id);
  e->device_id = mx_strdup(o->device_id);
  if (o->password && !(e->password = mx_strdup(o->password)))
    return MX_ERR_NOMEM;
  if (o->password_file && !(e->password_file = mx_strdup(o->password_file)))
    return MX_ERR_NOMEM;
  e->operators = calloc(o->n_operators + 1, sizeof(char *));
  e->operator_keys = calloc(o->n_operators + 1, sizeof(char *));
  if (!e->user_id || !e->label || !e->device_id || !e->operators || !e->operator_keys)
    return MX_ERR_NOMEM;
  if (o->config_path && !(e->config_path = mx_strdup(o->config_path)))
    return MX_ERR_NOMEM;
  for (size_t i = 0; i < o->n_operators; i++) {
    const char *k = o->operator_master_keys ? o->operator_master_keys[i] : NULL;
    if (!(e->operators[i] = mx_strdup(o->operators[i])) || (k && !(e->operator_keys[i] = mx_strdup(k))))
      return MX_ERR_NOMEM;
    e->n_operators++;
  }
  e->api = o->api;
  e->require_verified = o->require_verified_sender;
  e->exclude_insecure = o->exclude_insecure_devices;
  e->rotation_ms = o->rotation_period_ms > 0 ? o->rotation_period_ms : 604800000LL;
  e->rotation_msgs = o->rotation_period_msgs > 0 ? o->rotation_period_msgs : 100;
  e->otk_count = -1;
  e->pins_pending = 1;
  e->ready_maybe = 1;
  e->store_waits = 1;
  return MX_OK;
}

/* The account of e->device_id (the stored one, or a new one when the store
 * holds another device's or none), its identity keys and sessions; a new
 * account is on disk at once. Called with e->lock held. */
static mx_err load_device(struct mx_e2ee *e, char *err)
{
  mx_err rc = load_account(e, err);
  if (!rc)
    rc = identity_keys(e, err);
  if (!rc)
    rc = e2ee_load_state(e, err);
  if (!rc)
    rc = e2ee_flush_unlocked_write(e, err);
  return rc;
}

mx_err mx_e2ee_open(const struct mx_e2ee_opts *o, struct mx_e2ee **out, char *err)
{
  if (!o || !o->db_path || !o->data_dir || !o->user_id || !o->device_id)
    return mx_fail(MX_ERR_INVALID, err, "e2ee: expected db_path, data_dir, user_id and device_id");
  struct mx_e2ee *e = e2ee_alloc(sizeof(*e));
  if (!e)
    return MX_ERR_NOMEM;
  pthread_mutex_init(&e->lock, NULL);
  pthread_mutex_init(&e->send_lock, NULL);
  pthread_mutexattr_t ra;
  pthread_mutexattr_init(&ra);
  pthread_mutexattr_settype(&ra, PTHREAD_MUTEX_RECURSIVE); /* entry points nest */
  pthread_mutex_init(&e->db_lock, &ra);
  pthread_mutexattr_destroy(&ra);
  void *um = malloc(olm_utility_size());
  e->util = um ? olm_utility(um) : NULL;
  mx_err rc = e->util ? copy_opts(e, o) : MX_ERR_NOMEM;
  if (!rc)
    rc = e2ee_pickle_key_load(o->data_dir, e->pickle_key, err);
  if (!rc)
    rc = (e->db_path = mx_strdup(o->db_path)) ? e2ee_conn_join(e->db_path, err) : MX_ERR_NOMEM;
  if (!rc)
    e->joined = 1;
  int entered = !rc && e2ee_db_enter(e, err) == MX_OK;
  if (!rc && !entered)
    rc = MX_ERR_DB;
  if (!rc)
    rc = e2ee_db_migrate(e->db, err);
  if (!rc) {
    pthread_mutex_lock(&e->lock);
    rc = load_device(e, err);
    pthread_mutex_unlock(&e->lock);
  }
  if (entered)
    e2ee_db_leave(e);
  if (rc) {
    mx_e2ee_close(e);
    return rc;
  }
  mx_info(e->label, "e2ee ready: device %s, curve25519 %s, ed25519 %s", e->device_id, e->curve, e->ed);
  *out = e;
  return MX_OK;
}

mx_err mx_e2ee_switch_device(struct mx_e2ee *e, const char *device_id, char *err)
{
  char *dev = mx_strdup(device_id);
  if (!dev)
    return MX_ERR_NOMEM;
  mx_err rc = e2ee_db_enter(e, err);
  if (rc) {
    free(dev);
    return rc;
  }
  pthread_mutex_lock(&e->send_lock);
  pthread_mutex_lock(&e->lock);
  /* as at open with a store of another device: the old state is void */
  e2ee_drop_sessions(e);
  e2ee_free_account(e->acct);
  e->acct = NULL;
  free(e->device_id);
  e->device_id = dev;
  e->otk_count = -1;
  rc = load_device(e, err);
  pthread_mutex_unlock(&e->lock);
  pthread_mutex_unlock(&e->send_lock);
  e2ee_db_leave(e);
  if (!rc)
    mx_info(e->label, "e2ee switched to device %s, curve25519 %s, ed25519 %s", e->device_id, e->curve, e->ed);
  return rc;
}

const char *mx_e2ee_device_id(const struct mx_e2ee *e)
{
  return e->device_id;
}

void mx_e2ee_close(struct mx_e2ee *e)
{
  if (!e)
    return;
  e2ee_drop_sessions(e);
  e2ee_free_account(e->acct);
  if (e->util) {
    olm_clear_utility(e->util);
    free(e->util);
  }
  while (e->db_users) /* a caller (a test) kept it borrowed, on this thread */
    e2ee_db_leave(e);
  if (e->joined)
    e2ee_conn_part(e->db_path);
  free(e->db_path);
  for (size_t i = 0; e->operators && i <= e->n_operators; i++) {
    free(e->operators[i]);
    free(e->operator_keys ? e->operator_keys[i] : NULL);
  }
  free(e->operators);
  free(e->operator_keys);
  free(e->config_path);
  if (e->password) {
    memset(e->password, 0, strlen(e->password));
    free(e->password);
  }
  free(e->password_file);
  free(e->user_id);
  free(e->label);
  free(e->device_id);
  memset(e->pickle_key, 0, sizeof(e->pickle_key));
  pthread_mutex_destroy(&e->lock);
  pthread_mutex_destroy(&e->send_lock);
  pthread_mutex_destroy(&e->db_lock);
  free(e);
}

const char *mx_e2ee_curve25519(const struct mx_e2ee *e)
{
  return e->curve;
}

const char *mx_e2ee_ed25519(const struct mx_e2ee *e)
{
  return e->ed;
}

static mx_err start_in(struct mx_e2ee *e, const char *since_token, char *err)
{
  pthread_mutex_lock(&e->send_lock);
  pthread_mutex_lock(&e->lock);
  /* first upload: device keys (unless the server holds them already: a
   * restart uploads nothing twice) plus any keys left unpublished by a
   * crash; its response tells how many one-time keys the server holds.
   * Without it the first /sync's count does, and maintain tops up. */
  mx_err rc = e2ee_keys_publish(e, e2ee_api_upload, e, !e->keys_published, err);
  if (!rc)
    rc = e2ee_keys_publish(e, e2ee_api_upload, e, 0, err);
  pthread_mutex_unlock(&e->lock);
  if (!rc) {
    rc = e2ee_xsign_bootstrap(e, err);
    /* 401/403: the account already has cross-signing keys we do not hold
     * (store lost); replacing them needs interactive auth. Encryption still
     * works, the device just shows as unverified: warn, do not fail. */
    if (rc == MX_ERR_AUTH) {
      mx_warn(e->label, "cross-signing not set up: %s", err);
      rc = MX_OK;
    }
  }
  /* No /keys/changes here: the device lists are committed in the same
   * transaction as next_batch, and the first sync from that token carries
   * device_lists.changed/left for the whole time we were away. (It used to
   * be called with from == to, which can never report anything.) */
  (void)since_token;
  pthread_mutex_unlock(&e->send_lock);
  return rc;
}

static void sync_aborted_in(struct mx_e2ee *e)
{
  pthread_mutex_lock(&e->lock);
  char err[MX_ERRBUF_LEN];
  if (e2ee_load_state(e, err))
    mx_error(e->label, "cannot reload crypto state after a rollback: %s", err);
  OlmAccount *a = NULL;
  const char *v[] = { e->user_id };
  char *pickle = e2ee_db_text(e->db, "SELECT pickle FROM e2ee_account WHERE acct=?", 1, v);
  if (pickle && (a = e2ee_unpickle_account(e, pickle))) {
    e2ee_free_account(e->acct);
    e->acct = a;
    e->acct_gen = e2ee_db_int(e->db, "SELECT gen FROM e2ee_account WHERE acct=?", 1, v, e->acct_gen);
  }
  free(pickle);
  pthread_mutex_unlock(&e->lock);
}

/* m.dummy over a fresh Olm session to devices whose messages we could not
 * decrypt, at most once per device per hour (E2E "Recovering from
 * undecryptable messages"). */
static mx_err unwedge(struct mx_e2ee *e, char *err)
{
  char since[24];
  snprintf(since, sizeof(since), "%" PRId64, mx_now_ms() - E2EE_DUMMY_INTERVAL_MS);
  const char *v[] = { e->user_id, since };
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db, "SELECT d.user_id, d.device_id, d.curve25519, d.ed25519 FROM e2ee_dummy w JOIN "
                                   "e2ee_devices d ON d.acct=w.acct AND d.curve25519=w.their_key WHERE w.acct=? AND "
                                   "w.wanted=1 AND w.last_ms < ? LIMIT 20", &st, err);
  for (int i = 0; !rc && i < 2; i++)
    sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_TRANSIENT);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    const char *user = (const char *)sqlite3_column_text(st, 0), *dev = (const char *)sqlite3_column_text(st, 1);
    const char *curve = (const char *)sqlite3_column_text(st, 2), *ed = (const char *)sqlite3_column_text(st, 3);
    char now[24];
    snprintf(now, sizeof(now), "%" PRId64, mx_now_ms());
    const char *w[] = { now, e->user_id, curve };
    e2ee_db_run(e->db, NULL, "UPDATE e2ee_dummy SET wanted=0, last_ms=? WHERE acct=? AND their_key=?", 3, w);
    const char *u1[] = { user }, *d1[] = { dev };
    /* The m.dummy must start a NEW session (that is what unwedges the
     * peer): remember which session was best before the claim, and send
     * nothing when the claim made none (no one-time key left). */
    pthread_mutex_lock(&e->lock);
    struct e2ee_olm *was = e2ee_olm_find_best(e, curve);
    char stuck[128] = "";
    if (was)
      snprintf(stuck, sizeof(stuck), "%s", was->session_id);
    pthread_mutex_unlock(&e->lock);
    if (e2ee_olm_claim(e, u1, d1, 1, err) != MX_OK) {
      /* the homeserver did not answer: still wanted, tried again after the
       * interval (last_ms is now) */
      e2ee_db_run(e->db, NULL, "UPDATE e2ee_dummy SET wanted=1 WHERE acct=? AND their_key=?", 2, w + 1);
      mx_warn(e->label, "cannot unwedge the olm session with %s/%s: %s; trying again later", user, dev, err);
      continue;
    }
    pthread_mutex_lock(&e->lock);
    struct e2ee_olm *o = e2ee_olm_find_best(e, curve);
    if (o && strcmp(o->session_id, stuck) == 0)
      o = NULL;
    cJSON *ct = NULL, *empty = cJSON_CreateObject();
    if (o && e2ee_olm_encrypt(e, o, user, ed, "m.dummy", empty, &ct, err) == MX_OK &&
        e2ee_flush_unlocked_write(e, err) != MX_OK) {
      /* the ratchet step is not on disk: sending could reuse its key after
       * a crash, so this m.dummy is dropped (tried again next interval) */
      cJSON_Delete(ct);
      ct = NULL;
    }
    pthread_mutex_unlock(&e->lock);
    cJSON_Delete(empty);
    if (!o || !ct) {
      /* still wanted: tried again after the interval (last_ms is now) */
      e2ee_db_run(e->db, NULL, "UPDATE e2ee_dummy SET wanted=1 WHERE acct=? AND their_key=?", 2, w + 1);
      if (!o)
        mx_warn(e->label, "cannot unwedge the olm session with %s/%s: no new session (no one-time key to claim); "
                          "trying again later", user, dev);
    }
    if (ct) {
      cJSON *msgs = cJSON_CreateObject();
      cJSON_AddItemToObject(cJSON_AddObjectToObject(msgs, user), dev, ct);
      if (e2ee_send_to_device(e, "m.room.encrypted", msgs, err) == MX_OK)
        mx_info(e->label, "sent m.dummy to %s/%s to recover a wedged olm session", user, dev);
      cJSON_Delete(msgs);
    }
  }
  sqlite3_finalize(st);
  return rc;
}

/* One-time keys and the fallback key: decided from what the last syncs
 * said (kept in memory), so free when there is nothing to do. Called with
 * e->send_lock held. */
static mx_err maintain_keys(struct mx_e2ee *e, char *err)
{
  pthread_mutex_lock(&e->lock);
  mx_err rc = MX_OK;
  if (e->otk_count >= 0 && e->otk_count < E2EE_OTK_TARGET / 2) {
    /* A /sync computed before our last upload still shows the old low
     * count; topping up from it would push libolm past its 100 private
     * keys and forget published ones. Ask the server (an empty upload
     * returns the live counts) before generating anything. */
    cJSON *empty = cJSON_CreateObject();
    int64_t live = -1;
    pthread_mutex_unlock(&e->lock);
    rc = empty ? e2ee_api_upload(e, empty, &live, err) : MX_ERR_NOMEM;
    pthread_mutex_lock(&e->lock);
    cJSON_Delete(empty);
    if (!rc)
      e->otk_count = live;
  }
  if (!rc && ((e->otk_count >= 0 && e->otk_count < E2EE_OTK_TARGET / 2) || e->fallback_missing)) {
    int replacing_fallback = e->fallback_missing;
    rc = e2ee_keys_publish(e, e2ee_api_upload, e, 0, err);
    if (!rc && replacing_fallback && !e->fallback_missing) {
      e->fallback_replaced_ms = e->fallback_rotated_ms = mx_now_ms();
      char ms[24];
      snprintf(ms, sizeof(ms), "%" PRId64, e->fallback_rotated_ms);
      const char *v[] = { ms, e->user_id };
      if (e2ee_db_run(e->db, NULL, "UPDATE e2ee_account SET fallback_rotated_ms=? WHERE acct=?", 2, v))
        mx_warn(e->user_id, "cannot store the fallback key rotation time");
    }
  }
  /* keep the previous fallback key's private half for an hour, for
   * pre-key messages still in flight, then forget it (spec: at most two) */
  if (!rc && e->fallback_replaced_ms && mx_now_ms() - e->fallback_replaced_ms > E2EE_FALLBACK_FORGET_MS) {
    olm_account_forget_old_fallback_key(e->acct);
    e->fallback_replaced_ms = 0;
    e->acct_gen++;
    e->acct_dirty = 1;
    rc = e2ee_flush_unlocked_write(e, err);
  }
  pthread_mutex_unlock(&e->lock);
  return rc;
}

/* The store sweeps: unwedging, expired queued events, key requests and
 * key shares to answer. Called with e->send_lock held. */
static mx_err maintain_store(struct mx_e2ee *e, char *err)
{
  mx_err rc = unwedge(e, err);
  if (!rc) {
    /* events whose key never came (e.g. sent before we joined) are not
     * kept forever */
    char old[24];
    snprintf(old, sizeof(old), "%" PRId64, mx_now_ms() - E2EE_PENDING_MAX_AGE_MS);
    const char *v[] = { e->user_id, old };
    e2ee_db_run(e->db, NULL, "DELETE FROM e2ee_pending WHERE acct=? AND ts < ?", 2, v);
  }
  char kerr[MX_ERRBUF_LEN] = "";
  /* key requests are best effort: a failed send is retried next time */
  if (!rc && e2ee_keyreq_maintain(e, kerr) != MX_OK)
    mx_warn(e->label, "key requests: %s", kerr);
  /* What a later sweep could find to do on time alone: an olm session to
   * unwedge, queued events to expire, key requests to retry or cancel, key
   * shares to answer. Without any, the timed sweeps of an idle identity
   * would only parse and run these statements for nothing (at 1,000
   * identities that was a third of the idle CPU). New rows come only with
   * a sync batch that writes, and that batch is swept at once (a sweep
   * that fails or cannot run leaves it set: see maintain). */
  const char *v[] = { e->user_id };
  e->store_waits = rc || e2ee_db_int(e->db, "SELECT EXISTS(SELECT 1 FROM e2ee_dummy WHERE acct=?1 AND wanted=1) OR "
                                            "EXISTS(SELECT 1 FROM e2ee_pending WHERE acct=?1) OR "
                                            "EXISTS(SELECT 1 FROM e2ee_key_requests WHERE acct=?1) OR "
                                            "EXISTS(SELECT 1 FROM e2ee_key_shares WHERE acct=?1)", 1, v, 1) != 0;
  return rc;
}

static mx_err maintain(struct mx_e2ee *e, int sweep, char *err)
{
  /* Called after every sync, possibly on the sync worker: never wait for a
   * long key share (or other crypto work) in progress; the next sync's call
   * does the work. The connection first, as every entry point: see
   * e2ee_conn.c for the lock order. */
  int swept = 0;
  mx_err rc = e2ee_db_try_enter(e, err);
  if (!rc) {
    if (pthread_mutex_trylock(&e->send_lock) == 0) {
      rc = maintain_keys(e, err);
      if (!rc && sweep) {
        rc = maintain_store(e, err);
        swept = 1;
      }
      pthread_mutex_unlock(&e->send_lock);
    }
    e2ee_db_leave(e);
  } else if (rc == MX_ERR_CONFLICT) {
    rc = MX_OK;
  }
  /* a sweep asked for and not done: what the batch before it wrote may
   * wait for the timer (mx_e2ee_store_waits) */
  if (sweep && !swept)
    e->store_waits = 1;
  return rc;
}

mx_err mx_e2ee_maintain(struct mx_e2ee *e, char *err)
{
  return maintain(e, 1, err);
}

mx_err mx_e2ee_maintain_keys(struct mx_e2ee *e, char *err)
{
  return maintain(e, 0, err);
}

int mx_e2ee_store_waits(struct mx_e2ee *e)
{
  return e->store_waits;
}

/* Device keys as stored: must be those that carried the Megolm session. */
static int device_matches(struct mx_e2ee *e, const struct mx_e2ee_sender *s)
{
  const char *v[] = { e->user_id, s->user_id, s->device_id, s->sender_key, s->ed25519 };
  return e2ee_db_int(e->db, "SELECT 1 FROM e2ee_devices WHERE acct=? AND user_id=? AND device_id=? AND curve25519=? "
                            "AND ed25519=? AND deleted=0", 5, v, 0) == 1;
}

/* The refusal when the operator's published master key is not the trusted
 * one: a configured key is changed in the config, a pin by `trust repin`. */
static void refuse_changed(struct mx_e2ee *e, int op, const char *user, char *reason, size_t reason_len)
{
  const char *v[] = { e->user_id, user };
  char *seen = e2ee_db_text(e->db, "SELECT seen_master FROM e2ee_users WHERE acct=? AND user_id=?", 2, v);
  char *trusted = e2ee_db_text(e->db, "SELECT master_key FROM e2ee_users WHERE acct=? AND user_id=?", 2, v);
  if (e->operator_keys[op])
    snprintf(reason, reason_len,
             "Refused: the cross-signing identity of %s (master key %s) is not the one configured for this operator "
             "(operators[%d].master_key %s). If you reset your identity, put the new key in the bot's config.",
             user, seen ? seen : "?", op, e->operator_keys[op]);
  else
    snprintf(reason, reason_len,
             "Refused: the cross-signing identity of %s changed since it was pinned (pinned master key %s, now %s). "
             "If you reset it yourself, compare the new key with the one your client shows, then run on the bot "
             "host: mxfleet trust repin %s --config %s",
             user, trusted ? trusted : "?", seen ? seen : "?", user, e->config_path ? e->config_path : "FILE");
  free(seen);
  free(trusted);
}

static int sender_trusted_in(struct mx_e2ee *e, struct mx_e2ee_sender *s, char *reason, size_t reason_len)
{
  char err[MX_ERRBUF_LEN] = "";
  int op = e2ee_operator_index(e, s->user_id);
  s->verified = 0;
  s->master_key[0] = '\0';
  if (op < 0) {
    snprintf(reason, reason_len, "%s is not an operator of this device", s->user_id);
    return 0;
  }
  pthread_mutex_lock(&e->send_lock);
  const char *users[] = { s->user_id };
  const char *v[] = { e->user_id, s->user_id };
  /* The stored signatures were checked under the key trusted then; when the
   * trust root moved since (config edited, re-pinned), check them again. */
  char *trusted = e2ee_operator_pin(e, e->db, op, NULL, err);
  char *stored = e2ee_db_text(e->db, "SELECT master_key FROM e2ee_users WHERE acct=? AND user_id=?", 2, v);
  int force = trusted && (!stored || strcmp(trusted, stored) != 0);
  free(trusted);
  free(stored);
  if (e2ee_devices_query(e, users, 1, force, err) != MX_OK)
    mx_warn(e->label, "cannot refresh the devices of %s: %s", s->user_id, err);
  /* A list still outdated after the refresh may hide a removed or replaced
   * device: never decide on the cache then. */
  int outdated = e->api && e2ee_db_int(e->db, "SELECT outdated FROM e2ee_users WHERE acct=? AND user_id=?", 2, v, 1) != 0;
  int match = !outdated && device_matches(e, s);
  int changed = e2ee_db_int(e->db, "SELECT master_changed FROM e2ee_users WHERE acct=? AND user_id=?", 2, v, 0) == 1;
  int verified = match && !changed && e2ee_device_verified(e, e->db, s->user_id, s->device_id);
  char *master = e2ee_db_text(e->db, "SELECT master_key FROM e2ee_users WHERE acct=? AND user_id=?", 2, v);
  if (changed)
    refuse_changed(e, op, s->user_id, reason, reason_len);
  pthread_mutex_unlock(&e->send_lock);
  /* what the decision used, for the audit: not what decryption guessed */
  s->verified = verified;
  if (master && !changed)
    snprintf(s->master_key, sizeof(s->master_key), "%s", master);
  free(master);
  if (outdated) {
    snprintf(reason, reason_len, "Refused: I could not get the current list of your sessions from the homeserver, "
                                 "so I cannot tell whether session %s is still yours. Try again in a moment.",
             s->device_id[0] ? s->device_id : "(unknown)");
    return 0;
  }
  if (!match) {
    snprintf(reason, reason_len, "your session %s is unknown or its keys do not match the keys that encrypted "
                                 "this message; refusing", s->device_id[0] ? s->device_id : "(unknown)");
    return 0;
  }
  if (changed)
    return 0;
  if (e->require_verified && !verified) {
    snprintf(reason, reason_len, "your session %s is not verified: verify it from another of your sessions "
                                 "(Settings > Sessions) so it is signed by your cross-signing key, then retry",
             s->device_id);
    return 0;
  }
  if (reason_len)
    reason[0] = '\0';
  return 1;
}

/* ---- entry points that work through e->db: borrow it meanwhile ---- */

mx_err mx_e2ee_start(struct mx_e2ee *e, const char *since_token, char *err)
{
  mx_err rc = e2ee_db_enter(e, err);
  if (rc)
    return rc;
  rc = start_in(e, since_token, err);
  e2ee_db_leave(e);
  return rc;
}

void mx_e2ee_sync_aborted(struct mx_e2ee *e)
{
  char err[MX_ERRBUF_LEN];
  if (e2ee_db_enter(e, err)) {
    mx_error(e->label, "cannot reload crypto state after a rollback: %s", err);
    return;
  }
  sync_aborted_in(e);
  e2ee_db_leave(e);
}

int mx_e2ee_sender_trusted(struct mx_e2ee *e, struct mx_e2ee_sender *s, char *reason, size_t reason_len)
{
  char err[MX_ERRBUF_LEN];
  if (e2ee_db_enter(e, err)) {
    s->verified = 0;
    s->master_key[0] = '\0';
    snprintf(reason, reason_len, "Refused: I cannot read my crypto store right now (%s). Try again in a moment.",
             err);
    return 0;
  }
  int ok = sender_trusted_in(e, s, reason, reason_len);
  e2ee_db_leave(e);
  return ok;
}
