/*
 * bot/crypto/e2ee_xsign.c - cross-signing bootstrap: master, self-signing
 * and user-signing keys from random seeds, sealed at rest (AES-256-GCM under
 * a key derived from the pickle key), uploaded once, and the own device
 * signed by the self-signing key so Element shows it "verified by owner".
 * Seeds are committed before the upload, so a crash re-uploads the same keys.
 * Layer: bot/crypto. Called with e->send_lock held and e->lock NOT held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

#define SEAL_NONCE 12
#define SEAL_TAG 16

static void seal_key(const uint8_t pickle_key[32], uint8_t out[32])
{
  static const char label[] = "mxfleet e2ee cross-signing seeds v1";
  mx_hmac_sha256(pickle_key, 32, label, sizeof(label) - 1, out);
}

mx_err e2ee_seal(const uint8_t key[32], const uint8_t *plain, size_t n, char **out_b64, char *err)
{
  uint8_t k[32], *buf = malloc(SEAL_NONCE + n + SEAL_TAG);
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  mx_err rc = (buf && c) ? MX_OK : MX_ERR_NOMEM;
  int len = 0;
  seal_key(key, k);
  if (!rc)
    rc = mx_random_bytes(buf, SEAL_NONCE);
  if (!rc && (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, buf) != 1 ||
              EVP_EncryptUpdate(c, buf + SEAL_NONCE, &len, plain, (int)n) != 1 ||
              EVP_EncryptFinal_ex(c, buf + SEAL_NONCE + len, &len) != 1 ||
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, buf + SEAL_NONCE + n) != 1))
    rc = mx_fail(MX_ERR_CRYPTO, err, "seal: aes-256-gcm failed");
  struct mx_buf b = MX_BUF_INIT(4096);
  if (!rc)
    rc = mx_b64_encode(buf, SEAL_NONCE + n + SEAL_TAG, &b);
  if (!rc && !(*out_b64 = mx_buf_take(&b)))
    rc = MX_ERR_NOMEM;
  mx_buf_release(&b);
  memset(k, 0, sizeof(k));
  EVP_CIPHER_CTX_free(c);
  free(buf);
  return rc;
}

mx_err e2ee_unseal(const uint8_t key[32], const char *b64, uint8_t *plain, size_t n, char *err)
{
  uint8_t k[32], *buf = NULL;
  size_t blen = 0;
  if (mx_b64_decode(b64, &buf, &blen) || blen != SEAL_NONCE + n + SEAL_TAG) {
    free(buf);
    return mx_fail(MX_ERR_CRYPTO, err, "unseal: expected %zu sealed bytes", SEAL_NONCE + n + SEAL_TAG);
  }
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int len = 0;
  mx_err rc = c ? MX_OK : MX_ERR_NOMEM;
  seal_key(key, k);
  if (!rc && (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, buf) != 1 ||
              EVP_DecryptUpdate(c, plain, &len, buf + SEAL_NONCE, (int)n) != 1 ||
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, buf + SEAL_NONCE + n) != 1 ||
              EVP_DecryptFinal_ex(c, plain + len, &len) != 1))
    rc = mx_fail(MX_ERR_TAMPERED, err, "unseal: authentication tag does not match (wrong pickle key?)");
  memset(k, 0, sizeof(k));
  EVP_CIPHER_CTX_free(c);
  free(buf);
  return rc;
}

static mx_err seed_pub(const uint8_t seed[32], char pub[64])
{
  void *mem = malloc(olm_pk_signing_size());
  if (!mem)
    return MX_ERR_NOMEM;
  uint8_t copy[32];
  memcpy(copy, seed, 32);
  OlmPkSigning *s = olm_pk_signing(mem);
  size_t r = olm_pk_signing_key_from_seed(s, pub, olm_pk_signing_public_key_length(), copy, 32);
  pub[olm_pk_signing_public_key_length()] = '\0';
  olm_clear_pk_signing(s);
  free(mem);
  memset(copy, 0, sizeof(copy));
  return r == olm_error() ? MX_ERR_CRYPTO : MX_OK;
}

static cJSON *xkey(const char *user_id, const char *usage, const char *pub)
{
  cJSON *k = cJSON_CreateObject();
  cJSON *u = cJSON_AddArrayToObject(k, "usage");
  cJSON *keys = cJSON_AddObjectToObject(k, "keys");
  char kid[96];
  snprintf(kid, sizeof(kid), "ed25519:%s", pub);
  cJSON_AddStringToObject(k, "user_id", user_id);
  cJSON_AddItemToArray(u, cJSON_CreateString(usage));
  cJSON_AddStringToObject(keys, kid, pub);
  return k;
}

struct seeds {
  uint8_t m[32], s[32], u[32];
  char mpub[64], spub[64], upub[64];
  int uploaded;
  char device_signed[256]; /* "device_id ed25519" signed on the server, "" none */
};

/* Loads the sealed seeds, or makes and commits new ones. */
static mx_err load_or_create(struct mx_e2ee *e, struct seeds *sd, char *err)
{
  sqlite3_stmt *st = NULL;
  mx_err rc = mx_db_prepare(e->db, "SELECT master, self_signing, user_signing, uploaded, device_signed FROM e2ee_xsign "
                                   "WHERE acct=?", &st, err);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, e->user_id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    rc = e2ee_unseal(e->pickle_key, (const char *)sqlite3_column_text(st, 0), sd->m, 32, err);
    if (!rc)
      rc = e2ee_unseal(e->pickle_key, (const char *)sqlite3_column_text(st, 1), sd->s, 32, err);
    if (!rc)
      rc = e2ee_unseal(e->pickle_key, (const char *)sqlite3_column_text(st, 2), sd->u, 32, err);
    sd->uploaded = sqlite3_column_int(st, 3);
    const char *signed_dev = (const char *)sqlite3_column_text(st, 4);
    snprintf(sd->device_signed, sizeof(sd->device_signed), "%s", signed_dev ? signed_dev : "");
    sqlite3_finalize(st);
  } else {
    sqlite3_finalize(st);
    char *sm = NULL, *ss = NULL, *su = NULL;
    rc = mx_random_bytes(sd->m, 32);
    if (!rc)
      rc = mx_random_bytes(sd->s, 32);
    if (!rc)
      rc = mx_random_bytes(sd->u, 32);
    if (!rc)
      rc = e2ee_seal(e->pickle_key, sd->m, 32, &sm, err);
    if (!rc)
      rc = e2ee_seal(e->pickle_key, sd->s, 32, &ss, err);
    if (!rc)
      rc = e2ee_seal(e->pickle_key, sd->u, 32, &su, err);
    const char *v[] = { e->user_id, sm, ss, su };
    if (!rc)
      rc = e2ee_db_run(e->db, err, "INSERT INTO e2ee_xsign(acct, master, self_signing, user_signing) VALUES(?,?,?,?)",
                       4, v);
    free(sm);
    free(ss);
    free(su);
  }
  if (!rc && (seed_pub(sd->m, sd->mpub) || seed_pub(sd->s, sd->spub) || seed_pub(sd->u, sd->upub)))
    rc = mx_fail(MX_ERR_CRYPTO, err, "cross-signing: cannot derive public keys");
  return rc;
}

/* User-interactive auth for replacing existing cross-signing keys (the
 * store was lost): m.login.password with the identity's own password, in
 * the UIA session the server's 401 opened. Without a password: no auth. */
static cJSON *uia_auth(struct mx_e2ee *e, const cJSON *challenge)
{
  const char *session = mx_json_str(challenge, "session");
  struct mx_buf pw = MX_BUF_INIT(4096);
  char ferr[MX_ERRBUF_LEN];
  if (!session)
    return NULL;
  if (!e->password && e->password_file) { /* read only now, wiped below */
    if (mx_file_read(e->password_file, 4096, &pw, ferr) != MX_OK) {
      mx_warn(e->label, "cross-signing: %s", ferr);
      return NULL;
    }
    mx_rtrim(pw.buf ? pw.buf : (char *)"");
  }
  const char *password = e->password ? e->password : pw.buf;
  cJSON *a = NULL;
  if (password && *password) {
    a = cJSON_CreateObject();
    cJSON *id = cJSON_AddObjectToObject(a, "identifier");
    cJSON_AddStringToObject(a, "type", "m.login.password");
    cJSON_AddStringToObject(id, "type", "m.id.user");
    cJSON_AddStringToObject(id, "user", e->user_id);
    cJSON_AddStringToObject(a, "password", password);
    cJSON_AddStringToObject(a, "session", session);
  }
  if (pw.buf)
    memset(pw.buf, 0, pw.len);
  mx_buf_release(&pw);
  return a;
}

/* The request body holds the password after uia_auth: wipe it. */
static void wipe_auth(cJSON *body)
{
  cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "auth"), "password");
  if (cJSON_IsString(p))
    memset(p->valuestring, 0, strlen(p->valuestring));
}

static mx_err upload_keys(struct mx_e2ee *e, const struct seeds *sd, char *err)
{
  cJSON *body = cJSON_CreateObject(), *resp = NULL;
  cJSON *m = xkey(e->user_id, "master", sd->mpub);
  cJSON *s = xkey(e->user_id, "self_signing", sd->spub);
  cJSON *u = xkey(e->user_id, "user_signing", sd->upub);
  mx_err rc = e2ee_pk_sign_json(sd->m, sd->mpub, e->user_id, s, err);
  if (!rc)
    rc = e2ee_pk_sign_json(sd->m, sd->mpub, e->user_id, u, err);
  cJSON_AddItemToObject(body, "master_key", m);
  cJSON_AddItemToObject(body, "self_signing_key", s);
  cJSON_AddItemToObject(body, "user_signing_key", u);
  long status = 0;
  static const char path[] = "/_matrix/client/v3/keys/device_signing/upload";
  if (!rc)
    rc = mx_api_call(e->api, "POST", path, body, NULL, &status, &resp, err);
  cJSON *auth = rc == MX_ERR_AUTH && status == 401 ? uia_auth(e, resp) : NULL;
  if (auth) {
    cJSON_AddItemToObject(body, "auth", auth);
    cJSON_Delete(resp);
    resp = NULL;
    rc = mx_api_call(e->api, "POST", path, body, NULL, &status, &resp, err);
    wipe_auth(body);
    if (!rc)
      mx_warn(e->label, "replaced this account's cross-signing keys (the crypto store was lost): "
                          "operators see a new identity for it");
  }
  cJSON_Delete(resp);
  cJSON_Delete(body);
  return rc;
}

static mx_err sign_own_device(struct mx_e2ee *e, const struct seeds *sd, char *err)
{
  pthread_mutex_lock(&e->lock);
  cJSON *dk = e2ee_device_keys_json(e, err);
  pthread_mutex_unlock(&e->lock);
  if (!dk)
    return MX_ERR_CRYPTO;
  mx_err rc = e2ee_pk_sign_json(sd->s, sd->spub, e->user_id, dk, err);
  cJSON *body = cJSON_CreateObject(), *mine = cJSON_AddObjectToObject(body, e->user_id);
  cJSON_AddItemToObject(mine, e->device_id, dk);
  cJSON *resp = NULL;
  if (!rc)
    rc = mx_api_call(e->api, "POST", "/_matrix/client/v3/keys/signatures/upload", body, NULL, NULL, &resp, err);
  const cJSON *failures = mx_json_obj(resp, "failures");
  if (!rc && failures && failures->child)
    rc = mx_fail(MX_ERR_AUTH, err, "keys/signatures/upload: the server refused the own-device signature");
  cJSON_Delete(resp);
  cJSON_Delete(body);
  return rc;
}

/* 1 when the server already holds our master key (an upload that reached
 * the server before a crash): replacing "them" needs no auth, nothing to do. */
static int server_has_master(struct mx_e2ee *e, const char *mpub)
{
  cJSON *body = cJSON_CreateObject(), *resp = NULL;
  cJSON_AddItemToObject(cJSON_AddObjectToObject(body, "device_keys"), e->user_id, cJSON_CreateArray());
  char err[MX_ERRBUF_LEN], kid[96];
  int have = 0;
  if (mx_api_call(e->api, "POST", "/_matrix/client/v3/keys/query", body, NULL, NULL, &resp, err) == MX_OK) {
    snprintf(kid, sizeof(kid), "ed25519:%s", mpub);
    const char *k = mx_json_str(mx_json_obj(mx_json_obj(mx_json_obj(resp, "master_keys"), e->user_id), "keys"), kid);
    have = k && strcmp(k, mpub) == 0;
  }
  cJSON_Delete(body);
  cJSON_Delete(resp);
  return have;
}

mx_err e2ee_xsign_bootstrap(struct mx_e2ee *e, char *err)
{
  struct seeds sd;
  memset(&sd, 0, sizeof(sd));
  mx_err rc = load_or_create(e, &sd, err);
  if (!rc && !sd.uploaded) {
    rc = upload_keys(e, &sd, err);
    if (rc == MX_ERR_AUTH && server_has_master(e, sd.mpub))
      rc = MX_OK; /* our own earlier upload: carry on and sign the device */
    const char *v[] = { e->user_id };
    if (!rc)
      rc = e2ee_db_run(e->db, err, "UPDATE e2ee_xsign SET uploaded=1 WHERE acct=?", 1, v);
  }
  const char *pin[] = { e->user_id, e->user_id, sd.mpub, sd.spub };
  /* written once, not on every start (a write per identity at a restart) */
  int pinned = !rc && e2ee_db_int(e->db, "SELECT 1 FROM e2ee_users WHERE acct=? AND user_id=? AND master_key=? AND "
                                         "self_signing_key=?", 4, pin, 0) == 1;
  if (!rc && !pinned)
    rc = e2ee_db_run(e->db, err,
                     "INSERT INTO e2ee_users(acct, user_id, tracking, outdated, master_key, self_signing_key) "
                     "VALUES(?,?,1,0,?,?) ON CONFLICT(acct, user_id) DO UPDATE SET master_key=excluded.master_key, "
                     "self_signing_key=excluded.self_signing_key",
                     4, pin);
  /* the server keeps the signature: sign again only for another device
   * or other device keys (a new login, a lost store), never per restart */
  char dev[256];
  snprintf(dev, sizeof(dev), "%s %s", e->device_id, e->ed);
  if (!rc && strcmp(sd.device_signed, dev) != 0) {
    rc = sign_own_device(e, &sd, err);
    const char *v[] = { dev, e->user_id };
    if (!rc)
      rc = e2ee_db_run(e->db, err, "UPDATE e2ee_xsign SET device_signed=? WHERE acct=?", 2, v);
  }
  if (!rc)
    mx_info(e->label, "cross-signing ready, own device signed (master key %s)", sd.mpub);
  else if (rc == MX_ERR_AUTH)
    mx_warn(e->label, "this account has cross-signing keys we do not hold and replacing them needs "
                        "interactive auth: the bot device will show as unverified");
  memset(&sd, 0, sizeof(sd));
  return rc;
}
