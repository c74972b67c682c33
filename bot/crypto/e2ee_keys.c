/*
 * bot/crypto/e2ee_keys.c - device keys, one-time keys and the fallback key.
 * Order matters (element-web#31842): generate, pickle and COMMIT the account,
 * then upload; on the 200 mark the keys published and commit again. A failed
 * upload leaves the keys unpublished in the account, so the next attempt
 * (even after a crash) uploads the very same key ids - never new ones.
 * Layer: bot/crypto. Called with e->lock and e->send_lock held; the lock is
 * released around the network call and the commit.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

cJSON *e2ee_device_keys_json(struct mx_e2ee *e, char *err)
{
  cJSON *dk = cJSON_CreateObject();
  cJSON *alg = cJSON_AddArrayToObject(dk, "algorithms");
  cJSON *keys = cJSON_AddObjectToObject(dk, "keys");
  char kid[160];
  if (!dk || !alg || !keys)
    goto oom;
  cJSON_AddItemToArray(alg, cJSON_CreateString("m.olm.v1.curve25519-aes-sha2"));
  cJSON_AddItemToArray(alg, cJSON_CreateString("m.megolm.v1.aes-sha2"));
  snprintf(kid, sizeof(kid), "curve25519:%s", e->device_id);
  cJSON_AddStringToObject(keys, kid, e->curve);
  snprintf(kid, sizeof(kid), "ed25519:%s", e->device_id);
  cJSON_AddStringToObject(keys, kid, e->ed);
  cJSON_AddStringToObject(dk, "device_id", e->device_id);
  cJSON_AddStringToObject(dk, "user_id", e->user_id);
  if (e2ee_sign_json(e, dk, err))
    goto fail;
  return dk;
oom:
  mx_fail(MX_ERR_NOMEM, err, "device keys: out of memory");
fail:
  cJSON_Delete(dk);
  return NULL;
}

/* Parses libolm's {"curve25519":{"AAAAAQ":"key",...}} output. */
static cJSON *olm_keys_json(const char *buf, size_t n)
{
  cJSON *j = cJSON_ParseWithLength(buf, n);
  const cJSON *c = mx_json_obj(j, "curve25519");
  if (!c) {
    cJSON_Delete(j);
    return NULL;
  }
  return j;
}

static cJSON *unpublished_otks(struct mx_e2ee *e)
{
  size_t n = olm_account_one_time_keys_length(e->acct);
  char *buf = malloc(n + 1);
  if (!buf)
    return NULL;
  size_t r = olm_account_one_time_keys(e->acct, buf, n);
  cJSON *j = r == olm_error() ? NULL : olm_keys_json(buf, r);
  free(buf);
  return j;
}

static cJSON *unpublished_fallback(struct mx_e2ee *e)
{
  size_t n = olm_account_unpublished_fallback_key_length(e->acct);
  char *buf = malloc(n + 1);
  if (!buf)
    return NULL;
  size_t r = olm_account_unpublished_fallback_key(e->acct, buf, n);
  cJSON *j = r == olm_error() ? NULL : olm_keys_json(buf, r);
  free(buf);
  return j;
}

static mx_err generate(struct mx_e2ee *e, size_t want_otks, int want_fallback, char *err)
{
  if (want_otks) {
    size_t max = olm_account_max_number_of_one_time_keys(e->acct) / 2;
    if (want_otks > max)
      want_otks = max;
    size_t rl = olm_account_generate_one_time_keys_random_length(e->acct, want_otks);
    uint8_t *rnd = malloc(rl ? rl : 1);
    if (!rnd)
      return MX_ERR_NOMEM;
    mx_err rc = mx_random_bytes(rnd, rl);
    size_t r = rc ? 0 : olm_account_generate_one_time_keys(e->acct, want_otks, rnd, rl);
    memset(rnd, 0, rl);
    free(rnd);
    if (rc)
      return rc;
    if (r == olm_error())
      return e2ee_olm_fail(err, "generate one-time keys", olm_account_last_error(e->acct));
  }
  if (want_fallback) {
    size_t rl = olm_account_generate_fallback_key_random_length(e->acct);
    uint8_t rnd[64];
    if (rl > sizeof(rnd))
      return mx_fail(MX_ERR_INTERNAL, err, "fallback key: libolm wants %zu random bytes", rl);
    mx_err rc = mx_random_bytes(rnd, rl);
    size_t r = rc ? 0 : olm_account_generate_fallback_key(e->acct, rnd, rl);
    memset(rnd, 0, sizeof(rnd));
    if (rc)
      return rc;
    if (r == olm_error())
      return e2ee_olm_fail(err, "generate fallback key", olm_account_last_error(e->acct));
  }
  e->acct_gen++;
  e->acct_dirty = 1;
  return MX_OK;
}

/* Adds {"signed_curve25519:<id>": {key, [fallback], signatures}} for each key. */
static mx_err add_signed(struct mx_e2ee *e, cJSON *dst, const cJSON *olm_keys, int fallback, char *err)
{
  const cJSON *k;
  cJSON_ArrayForEach(k, mx_json_obj(olm_keys, "curve25519"))
  {
    if (!cJSON_IsString(k))
      continue;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "key", k->valuestring) ||
        (fallback && !cJSON_AddTrueToObject(o, "fallback"))) {
      cJSON_Delete(o);
      return MX_ERR_NOMEM;
    }
    mx_err rc = e2ee_sign_json(e, o, err);
    char name[160];
    snprintf(name, sizeof(name), "signed_curve25519:%s", k->string);
    if (rc) {
      cJSON_Delete(o);
      return rc;
    }
    cJSON_AddItemToObject(dst, name, o);
  }
  return MX_OK;
}

static cJSON *build_body(struct mx_e2ee *e, const cJSON *otks, const cJSON *fb, int with_device_keys,
                         int *nkeys, char *err)
{
  cJSON *body = cJSON_CreateObject();
  if (!body)
    return NULL;
  *nkeys = cJSON_GetArraySize(mx_json_obj(otks, "curve25519")) + cJSON_GetArraySize(mx_json_obj(fb, "curve25519"));
  if (with_device_keys) {
    cJSON *dk = e2ee_device_keys_json(e, err);
    if (!dk)
      goto fail;
    cJSON_AddItemToObject(body, "device_keys", dk);
  }
  if (cJSON_GetArraySize(mx_json_obj(otks, "curve25519")) > 0 &&
      add_signed(e, cJSON_AddObjectToObject(body, "one_time_keys"), otks, 0, err))
    goto fail;
  if (cJSON_GetArraySize(mx_json_obj(fb, "curve25519")) > 0 &&
      add_signed(e, cJSON_AddObjectToObject(body, "fallback_keys"), fb, 1, err))
    goto fail;
  return body;
fail:
  cJSON_Delete(body);
  return NULL;
}

mx_err e2ee_keys_publish(struct mx_e2ee *e, e2ee_upload_fn up, void *ctx, int with_device_keys, char *err)
{
  cJSON *otks = unpublished_otks(e), *fb = unpublished_fallback(e), *body = NULL;
  mx_err rc = (otks && fb) ? MX_OK : mx_fail(MX_ERR_CRYPTO, err, "one-time keys: libolm output unreadable");
  int have_otks = cJSON_GetArraySize(mx_json_obj(otks, "curve25519"));
  int have_fb = cJSON_GetArraySize(mx_json_obj(fb, "curve25519"));
  /* Unpublished keys from an earlier failed attempt go out as they are. */
  size_t want = 0;
  if (!rc && have_otks == 0 && e->otk_count >= 0 && e->otk_count < E2EE_OTK_TARGET)
    want = (size_t)(E2EE_OTK_TARGET - e->otk_count);
  int want_fb = !rc && have_fb == 0 && e->fallback_missing;
  if (!rc && (want || want_fb)) {
    rc = generate(e, want, want_fb, err);
    if (!rc) {
      cJSON_Delete(otks);
      cJSON_Delete(fb);
      otks = unpublished_otks(e);
      fb = unpublished_fallback(e);
      if (!otks || !fb)
        rc = mx_fail(MX_ERR_CRYPTO, err, "one-time keys: libolm output unreadable");
    }
  }
  if (!rc)
    rc = e2ee_flush_unlocked_write(e, err); /* commit BEFORE upload */
  int nkeys = 0;
  if (!rc && !(body = build_body(e, otks, fb, with_device_keys, &nkeys, err)))
    rc = err && *err ? MX_ERR_CRYPTO : MX_ERR_NOMEM;
  if (rc || (nkeys == 0 && !with_device_keys))
    goto cleanup;
  int64_t count = -1;
  pthread_mutex_unlock(&e->lock);
  rc = up(ctx, body, &count, err);
  pthread_mutex_lock(&e->lock);
  if (rc)
    goto cleanup; /* keys stay unpublished: the same ones are retried */
  olm_account_mark_keys_as_published(e->acct);
  if (cJSON_GetArraySize(mx_json_obj(fb, "curve25519")) > 0)
    e->fallback_missing = 0;
  e->otk_count = count;
  e->acct_gen++;
  e->acct_dirty = 1;
  rc = e2ee_flush_unlocked_write(e, err);
  if (!rc && with_device_keys && !e->keys_published) {
    const char *v[] = { e->user_id };
    rc = e2ee_db_run(e->db, err, "UPDATE e2ee_account SET keys_published=1 WHERE acct=?", 1, v);
    e->keys_published = !rc;
  }
  if (!rc && nkeys)
    mx_info(e->label, "published %d one-time/fallback keys (server now has %" PRId64 ")", nkeys, count);
cleanup:
  cJSON_Delete(otks);
  cJSON_Delete(fb);
  cJSON_Delete(body);
  return rc;
}

mx_err e2ee_api_upload(void *ctx, const cJSON *body, int64_t *otk_count, char *err)
{
  struct mx_e2ee *e = ctx;
  cJSON *resp = NULL;
  long status = 0;
  mx_err rc = mx_api_call(e->api, "POST", "/_matrix/client/v3/keys/upload", body, NULL, &status, &resp, err);
  if (!rc) {
    const cJSON *counts = mx_json_obj(resp, "one_time_key_counts");
    int64_t c = 0; /* a missing count means zero (servers may omit zeros) */
    mx_json_int(counts, "signed_curve25519", &c);
    *otk_count = c;
  }
  cJSON_Delete(resp);
  return rc;
}
