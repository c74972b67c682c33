/*
 * bot/crypto/e2ee_olm.c - Olm sessions with other devices: creation from a
 * claimed one-time key, inbound creation from pre-key messages (type 0),
 * decryption with existing sessions (type 1), encryption of to-device
 * payloads, and the validation of decrypted to-device plaintext (sender,
 * recipient, recipient_keys, keys). libolm destroys ciphertext inputs, so
 * each try works on a copy. Every step marks the session dirty; callers
 * persist before anything leaves the process.
 * Layer: bot/crypto. Called with e->lock held unless a function says not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

/* Keeps at most E2EE_MAX_OLM_PER_DEVICE sessions per device: the least
 * recently used beyond that move to e->evicted (deleted at the next write). */
static void evict(struct mx_e2ee *e, const char *their_key)
{
  for (;;) {
    int n = 0;
    struct e2ee_olm **lru = NULL;
    for (struct e2ee_olm **pp = &e->olm; *pp; pp = &(*pp)->next) {
      if (strcmp((*pp)->their_key, their_key) != 0)
        continue;
      n++;
      if (!lru || (*pp)->last_used_ms < (*lru)->last_used_ms)
        lru = pp;
    }
    if (n <= E2EE_MAX_OLM_PER_DEVICE)
      return;
    struct e2ee_olm *o = *lru;
    *lru = o->next;
    o->next = e->evicted;
    e->evicted = o;
  }
}

static struct e2ee_olm *add_session(struct mx_e2ee *e, OlmSession *s, const char *their_key)
{
  struct e2ee_olm *o = e2ee_alloc(sizeof(*o));
  if (!o)
    return NULL;
  o->s = s;
  snprintf(o->their_key, sizeof(o->their_key), "%s", their_key);
  size_t n = olm_session_id_length(s);
  if (n >= sizeof(o->session_id) || olm_session_id(s, o->session_id, n) == olm_error()) {
    free(o);
    return NULL;
  }
  o->session_id[n] = '\0';
  o->last_used_ms = mx_now_ms();
  o->gen = 1;
  o->dirty = 1;
  o->next = e->olm;
  e->olm = o;
  evict(e, their_key);
  return o;
}

struct e2ee_olm *e2ee_olm_find_best(struct mx_e2ee *e, const char *their_key)
{
  struct e2ee_olm *best = NULL;
  for (struct e2ee_olm *o = e->olm; o; o = o->next) {
    if (strcmp(o->their_key, their_key) == 0 && (!best || o->last_used_ms > best->last_used_ms))
      best = o;
  }
  return best;
}

static void touch(struct e2ee_olm *o)
{
  int64_t now = mx_now_ms();
  o->last_used_ms = now > o->last_used_ms ? now : o->last_used_ms + 1;
  o->gen++;
  o->dirty = 1;
}

mx_err e2ee_olm_new_outbound(struct mx_e2ee *e, const char *their_curve, const char *their_otk,
                             struct e2ee_olm **out, char *err)
{
  OlmSession *s = e2ee_new_session();
  if (!s)
    return MX_ERR_NOMEM;
  size_t rl = olm_create_outbound_session_random_length(s);
  uint8_t *rnd = malloc(rl ? rl : 1);
  mx_err rc = rnd ? mx_random_bytes(rnd, rl) : MX_ERR_NOMEM;
  if (!rc && olm_create_outbound_session(s, e->acct, their_curve, strlen(their_curve), their_otk,
                                         strlen(their_otk), rnd, rl) == olm_error())
    rc = e2ee_olm_fail(err, "create olm session", olm_session_last_error(s));
  if (rnd)
    memset(rnd, 0, rl);
  free(rnd);
  if (!rc && !(*out = add_session(e, s, their_curve)))
    rc = MX_ERR_NOMEM;
  if (rc)
    e2ee_free_session(s);
  return rc;
}

/* Decrypts body with s; NULL on failure. The body is copied first. */
static char *try_decrypt(OlmSession *s, int type, const char *body)
{
  char *c1 = mx_strdup(body), *c2 = mx_strdup(body), *plain = NULL;
  if (!c1 || !c2)
    goto done;
  size_t max = olm_decrypt_max_plaintext_length(s, (size_t)type, c1, strlen(c1));
  if (max == olm_error())
    goto done;
  plain = malloc(max + 1);
  size_t r = plain ? olm_decrypt(s, (size_t)type, c2, strlen(c2), plain, max) : olm_error();
  if (r == olm_error()) {
    free(plain);
    plain = NULL;
  } else {
    plain[r] = '\0';
  }
done:
  free(c1);
  free(c2);
  return plain;
}

static int matches(OlmSession *s, const char *sender_key, const char *body)
{
  char *c = mx_strdup(body);
  if (!c)
    return 0;
  size_t r = olm_matches_inbound_session_from(s, sender_key, strlen(sender_key), c, strlen(c));
  free(c);
  return r == 1;
}

/* Type 0 with no matching session: a new inbound session from our OTK. */
static char *decrypt_new_inbound(struct mx_e2ee *e, const char *sender_key, const char *body, char *err)
{
  OlmSession *s = e2ee_new_session();
  char *c = mx_strdup(body), *plain = NULL;
  if (!s) {
    free(c);
    return NULL;
  }
  if (!c || olm_create_inbound_session_from(s, e->acct, sender_key, strlen(sender_key), c, strlen(c)) == olm_error()) {
    e2ee_olm_fail(err, "olm pre-key message", olm_session_last_error(s));
    goto fail;
  }
  plain = try_decrypt(s, 0, body);
  if (!plain) {
    mx_fail(MX_ERR_CRYPTO, err, "olm pre-key message from %s does not decrypt (libolm: %s)", sender_key,
            olm_session_last_error(s));
    goto fail;
  }
  /* only after a successful decrypt: the one-time key is spent (a session
   * made on the fallback key has none to remove: libolm says so, harmless) */
  if (olm_remove_one_time_keys(e->acct, s) == olm_error())
    mx_debug(e->label, "pre-key message from %s: no one-time key removed (%s)", sender_key,
             olm_account_last_error(e->acct));
  e->acct_gen++;
  e->acct_dirty = 1;
  struct e2ee_olm *o = add_session(e, s, sender_key);
  if (!o) {
    free(plain);
    plain = NULL;
    goto fail;
  }
  free(c);
  return plain;
fail:
  free(c);
  e2ee_free_session(s);
  return NULL;
}

static char *decrypt_body(struct mx_e2ee *e, const char *sender_key, int type, const char *body, char *err)
{
  for (struct e2ee_olm *o = e->olm; o; o = o->next) {
    if (strcmp(o->their_key, sender_key) != 0)
      continue;
    if (type == 0 && !matches(o->s, sender_key, body))
      continue;
    char *plain = try_decrypt(o->s, type, body);
    if (plain) {
      touch(o);
      return plain;
    }
    if (type == 0) /* a matching session that cannot decrypt: give up */
      return (mx_fail(MX_ERR_CRYPTO, err, "olm pre-key message from %s fails in its session", sender_key), NULL);
  }
  if (type == 0)
    return decrypt_new_inbound(e, sender_key, body, err);
  mx_fail(MX_ERR_CRYPTO, err, "olm message from %s matches none of our sessions", sender_key);
  return NULL;
}

static void want_dummy(struct mx_e2ee *e, sqlite3 *db, const char *sender_key)
{
  const char *v[] = { e->user_id, sender_key };
  e2ee_db_run(db, NULL, "INSERT INTO e2ee_dummy(acct, their_key, last_ms, wanted) VALUES(?,?,0,1) "
                        "ON CONFLICT(acct, their_key) DO UPDATE SET wanted=1", 2, v);
}

/* Validation of decrypted to-device plaintext (E2E "Validation of incoming
 * decrypted events"). */
static mx_err validate(struct mx_e2ee *e, sqlite3 *db, const cJSON *p, const char *sender, const char *sender_key,
                       char *err)
{
  const char *ps = mx_json_str(p, "sender"), *rcpt = mx_json_str(p, "recipient");
  const char *red = mx_json_str(mx_json_obj(p, "recipient_keys"), "ed25519");
  const char *ked = mx_json_str(mx_json_obj(p, "keys"), "ed25519");
  if (!ps || strcmp(ps, sender) != 0)
    return mx_fail(MX_ERR_CRYPTO, err, "olm plaintext: sender '%s' is not the event sender '%s'", ps ? ps : "", sender);
  if (!rcpt || strcmp(rcpt, e->user_id) != 0)
    return mx_fail(MX_ERR_CRYPTO, err, "olm plaintext: recipient '%s' is not us", rcpt ? rcpt : "");
  if (!red || strcmp(red, e->ed) != 0)
    return mx_fail(MX_ERR_CRYPTO, err, "olm plaintext: recipient_keys.ed25519 is not our key");
  if (!ked || !mx_json_str(p, "type") || !mx_json_obj(p, "content"))
    return mx_fail(MX_ERR_CRYPTO, err, "olm plaintext: expected keys.ed25519, type and content");
  const char *v[] = { e->user_id, sender, sender_key };
  char *known = e2ee_db_text(db, "SELECT ed25519 FROM e2ee_devices WHERE acct=? AND user_id=? AND curve25519=? "
                                 "AND deleted=0", 3, v);
  mx_err rc = MX_OK;
  if (known && strcmp(known, ked) != 0)
    rc = mx_fail(MX_ERR_CRYPTO, err, "olm plaintext: keys.ed25519 differs from the pinned key of the sending device");
  free(known);
  return rc;
}

mx_err e2ee_olm_decrypt_event(struct mx_e2ee *e, sqlite3 *db, const cJSON *ev, cJSON **plain, char *sender_key_out,
                              char *err)
{
  const cJSON *c = mx_json_obj(ev, "content");
  const char *sender = mx_json_str(ev, "sender"), *sk = mx_json_str(c, "sender_key");
  const cJSON *mine = mx_json_obj(mx_json_obj(c, "ciphertext"), e->curve);
  int64_t type = -1;
  const char *body = mx_json_str(mine, "body");
  if (!sender || !sk || !body || !mx_json_int(mine, "type", &type) || (type != 0 && type != 1))
    return mx_fail(MX_ERR_INVALID, err, "to_device m.room.encrypted: expected sender, sender_key and a ciphertext "
                                        "for our key with type 0 or 1");
  snprintf(sender_key_out, 64, "%s", sk);
  char *text = decrypt_body(e, sk, (int)type, body, err);
  if (!text) {
    want_dummy(e, db, sk);
    return MX_ERR_CRYPTO;
  }
  mx_err rc = e2ee_persist_dirty(e, db, err); /* the ratchet step commits with next_batch */
  cJSON *p = rc ? NULL : cJSON_Parse(text);
  memset(text, 0, strlen(text));
  free(text);
  if (!rc && !p)
    rc = mx_fail(MX_ERR_INVALID, err, "olm plaintext from %s: not json", sender);
  if (!rc)
    rc = validate(e, db, p, sender, sk, err);
  if (rc)
    mx_json_delete_wiped(p);
  else
    *plain = p;
  return rc;
}

mx_err e2ee_olm_encrypt(struct mx_e2ee *e, struct e2ee_olm *o, const char *recipient, const char *recipient_ed,
                        const char *type, const cJSON *content, cJSON **ct_obj, char *err)
{
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "type", type);
  cJSON_AddItemToObject(p, "content", cJSON_Duplicate(content, 1));
  cJSON_AddStringToObject(p, "sender", e->user_id);
  cJSON_AddStringToObject(p, "sender_device", e->device_id);
  cJSON_AddStringToObject(p, "recipient", recipient);
  cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "recipient_keys"), "ed25519", recipient_ed);
  cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "keys"), "ed25519", e->ed);
  cJSON *dk = e2ee_device_keys_json(e, err); /* MSC4147: lets the peer trust us before it queried */
  if (dk)
    cJSON_AddItemToObject(p, "sender_device_keys", dk);
  char *text = cJSON_PrintUnformatted(p);
  mx_json_delete_wiped(p); /* content may be a room key */
  if (!text)
    return MX_ERR_NOMEM;
  size_t tl = strlen(text), rl = olm_encrypt_random_length(o->s);
  size_t mt = olm_encrypt_message_type(o->s), ml = olm_encrypt_message_length(o->s, tl);
  uint8_t *rnd = malloc(rl ? rl : 1);
  char *msg = malloc(ml + 1);
  mx_err rc = (rnd && msg) ? mx_random_bytes(rnd, rl) : MX_ERR_NOMEM;
  if (!rc && olm_encrypt(o->s, text, tl, rnd, rl, msg, ml) == olm_error())
    rc = e2ee_olm_fail(err, "olm encrypt", olm_session_last_error(o->s));
  if (!rc) {
    msg[ml] = '\0';
    touch(o);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "algorithm", "m.olm.v1.curve25519-aes-sha2");
    cJSON_AddStringToObject(out, "sender_key", e->curve);
    cJSON *one = cJSON_AddObjectToObject(cJSON_AddObjectToObject(out, "ciphertext"), o->their_key);
    cJSON_AddNumberToObject(one, "type", (double)mt);
    cJSON_AddStringToObject(one, "body", msg);
    *ct_obj = out;
  }
  memset(text, 0, tl);
  cJSON_free(text);
  if (rnd)
    memset(rnd, 0, rl);
  free(rnd);
  free(msg);
  return rc;
}

/* Creates sessions from a /keys/claim response (e->lock held). */
static void sessions_from_claim(struct mx_e2ee *e, const cJSON *resp)
{
  const cJSON *u, *d, *k;
  cJSON_ArrayForEach(u, mx_json_obj(resp, "one_time_keys"))
  {
    cJSON_ArrayForEach(d, u)
    {
      const char *v[] = { e->user_id, u->string, d->string };
      char *ed = e2ee_db_text(e->db, "SELECT ed25519 FROM e2ee_devices WHERE acct=? AND user_id=? AND device_id=?", 3, v);
      char *cur = e2ee_db_text(e->db, "SELECT curve25519 FROM e2ee_devices WHERE acct=? AND user_id=? AND device_id=?", 3, v);
      cJSON_ArrayForEach(k, d)
      {
        char verr[MX_ERRBUF_LEN];
        struct e2ee_olm *o = NULL;
        const char *key = mx_json_str(k, "key");
        if (!ed || !cur || !key || strncmp(k->string, "signed_curve25519:", 18) != 0 ||
            e2ee_verify_json(e->util, k, u->string, d->string, ed, verr) != MX_OK) {
          mx_warn(e->label, "keys/claim: key for %s/%s is unsigned or badly signed; skipped", u->string, d->string);
          continue;
        }
        if (e2ee_olm_new_outbound(e, cur, key, &o, verr) != MX_OK)
          mx_warn(e->label, "cannot create olm session with %s/%s: %s", u->string, d->string, verr);
        break;
      }
      free(ed);
      free(cur);
    }
  }
}

/* Worker side, e->lock NOT held: claims one key per device and creates
 * sessions. Devices that returned nothing simply have no session after. */
mx_err e2ee_olm_claim(struct mx_e2ee *e, const char *const *users, const char *const *devs, size_t n, char *err)
{
  if (n == 0)
    return MX_OK;
  cJSON *body = cJSON_CreateObject(), *otk = cJSON_AddObjectToObject(body, "one_time_keys"), *resp = NULL;
  for (size_t i = 0; i < n; i++) {
    cJSON *u = cJSON_GetObjectItemCaseSensitive(otk, users[i]);
    if (!u)
      u = cJSON_AddObjectToObject(otk, users[i]);
    cJSON_AddStringToObject(u, devs[i], "signed_curve25519");
  }
  mx_err rc = mx_api_call(e->api, "POST", "/_matrix/client/v3/keys/claim", body, NULL, NULL, &resp, err);
  cJSON_Delete(body);
  if (!rc) {
    pthread_mutex_lock(&e->lock);
    sessions_from_claim(e, resp);
    rc = e2ee_flush_unlocked_write(e, err);
    pthread_mutex_unlock(&e->lock);
  }
  cJSON_Delete(resp);
  return rc;
}
