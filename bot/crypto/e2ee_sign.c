/*
 * bot/crypto/e2ee_sign.c - signing and verifying JSON objects (Matrix
 * appendix "Signing JSON"): canonical form without top-level signatures and
 * unsigned, ed25519 over it, unpadded base64. libolm's verify overwrites its
 * signature argument and some calls destroy inputs, so every wrapper copies
 * first: the caller's buffers are never changed.
 * Layer: bot/crypto; libolm + common/mx_json only. Ownership: obj is
 * modified in place only by the sign functions (signatures added).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_json.h"
#include "mx_util.h"

static mx_err add_signature(cJSON *obj, const char *user_id, const char *key_id, const char *sig)
{
  cJSON *sigs = cJSON_GetObjectItemCaseSensitive(obj, "signatures");
  if (!sigs && !(sigs = cJSON_AddObjectToObject(obj, "signatures")))
    return MX_ERR_NOMEM;
  cJSON *mine = cJSON_GetObjectItemCaseSensitive(sigs, user_id);
  if (!mine && !(mine = cJSON_AddObjectToObject(sigs, user_id)))
    return MX_ERR_NOMEM;
  cJSON_DeleteItemFromObjectCaseSensitive(mine, key_id);
  return cJSON_AddStringToObject(mine, key_id, sig) ? MX_OK : MX_ERR_NOMEM;
}

mx_err e2ee_sign_json(struct mx_e2ee *e, cJSON *obj, char *err)
{
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = mx_json_canonical_for_signing(obj, &canon, err);
  if (rc)
    return rc;
  size_t n = olm_account_signature_length(e->acct);
  char *sig = malloc(n + 1);
  if (!sig) {
    mx_buf_release(&canon);
    return MX_ERR_NOMEM;
  }
  size_t r = olm_account_sign(e->acct, canon.buf, canon.len, sig, n);
  mx_buf_release(&canon);
  if (r == olm_error()) {
    rc = e2ee_olm_fail(err, "sign json", olm_account_last_error(e->acct));
  } else {
    sig[r] = '\0';
    char key_id[160];
    snprintf(key_id, sizeof(key_id), "ed25519:%s", e->device_id);
    rc = add_signature(obj, e->user_id, key_id, sig);
  }
  free(sig);
  return rc;
}

mx_err e2ee_pk_sign_json(const uint8_t seed[32], const char *pub, const char *user_id, cJSON *obj,
                         char *err)
{
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = mx_json_canonical_for_signing(obj, &canon, err);
  if (rc)
    return rc;
  void *mem = malloc(olm_pk_signing_size());
  size_t plen = olm_pk_signing_public_key_length(), slen = olm_pk_signature_length();
  char *pubkey = malloc(plen + 1), *sig = malloc(slen + 1);
  uint8_t seed_copy[32];
  memcpy(seed_copy, seed, 32);
  if (!mem || !pubkey || !sig) {
    rc = MX_ERR_NOMEM;
    goto cleanup;
  }
  OlmPkSigning *s = olm_pk_signing(mem);
  if (olm_pk_signing_key_from_seed(s, pubkey, plen, seed_copy, 32) == olm_error() ||
      olm_pk_sign(s, (const uint8_t *)canon.buf, canon.len, (uint8_t *)sig, slen) == olm_error()) {
    rc = e2ee_olm_fail(err, "cross-signing sign", olm_pk_signing_last_error(s));
  } else {
    sig[slen] = '\0';
    char key_id[128];
    snprintf(key_id, sizeof(key_id), "ed25519:%s", pub);
    rc = add_signature(obj, user_id, key_id, sig);
  }
  olm_clear_pk_signing(s);
cleanup:
  memset(seed_copy, 0, sizeof(seed_copy));
  free(mem);
  free(pubkey);
  free(sig);
  mx_buf_release(&canon);
  return rc;
}

mx_err e2ee_ed25519_verify(OlmUtility *u, const char *pubkey, const char *msg, size_t msg_len,
                           const char *sig, char *err)
{
  char *sig_copy = mx_strdup(sig);
  char *msg_copy = malloc(msg_len + 1);
  char *key_copy = mx_strdup(pubkey);
  mx_err rc = MX_OK;
  if (!sig_copy || !msg_copy || !key_copy) {
    rc = MX_ERR_NOMEM;
  } else {
    memcpy(msg_copy, msg, msg_len);
    msg_copy[msg_len] = '\0';
    if (olm_ed25519_verify(u, key_copy, strlen(key_copy), msg_copy, msg_len, sig_copy, strlen(sig_copy)) ==
        olm_error())
      rc = mx_fail(MX_ERR_AUTH, err, "signature by ed25519 key '%s' does not verify (%s)", pubkey,
                   olm_utility_last_error(u));
  }
  free(sig_copy);
  free(msg_copy);
  free(key_copy);
  return rc;
}

mx_err e2ee_verify_json(OlmUtility *u, const cJSON *obj, const char *user_id, const char *key_id,
                        const char *pubkey, char *err)
{
  char full[160];
  snprintf(full, sizeof(full), "ed25519:%s", key_id);
  const cJSON *by_user = mx_json_obj(mx_json_obj(obj, "signatures"), user_id);
  const char *sig = mx_json_str(by_user, full);
  if (!sig)
    return mx_fail(MX_ERR_AUTH, err, "signatures.%s: expected a signature '%s', found none", user_id, full);
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = mx_json_canonical_for_signing(obj, &canon, err);
  if (!rc)
    rc = e2ee_ed25519_verify(u, pubkey, canon.buf, canon.len, sig, err);
  mx_buf_release(&canon);
  return rc;
}
