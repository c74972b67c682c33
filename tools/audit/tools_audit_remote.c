/*
 * tools/audit/tools_audit_remote.c - checks on another install's chain as
 * fetched over the network (mxfleet-agent's /v1/audit/checkpoint and
 * /v1/audit): the checkpoint's Ed25519 signature over its own text, which
 * must state the size and head the reply claims, and each record's hash
 * recomputed from its fields, seq and prev_hash, never taken on trust.
 * devices/wg gets these as callbacks wired by the bot (devices/ never calls
 * tools/). Layer: tools/; common/ + OpenSSL only. cJSON borrowed.
 */
#include "tools_audit_int.h"

#include <stdio.h>
#include <string.h>

#include "mx_crypto.h"
#include "mx_json.h"

mx_err tools_audit_checkpoint_check(const char *text, const uint8_t pub[32], int64_t size, const char *head_hex,
                                    char *err)
{
  struct tools_audit_checkpoint c;
  mx_err rc = tools_audit_checkpoint_parse(text, pub, &c, err);
  if (rc)
    return rc;
  char hex[2 * TOOLS_AUDIT_HASH_LEN + 1];
  mx_hex(c.head, TOOLS_AUDIT_HASH_LEN, hex);
  if (c.size != size || !head_hex || strcmp(hex, head_hex) != 0)
    return mx_fail(MX_ERR_AUTH, err, "checkpoint: the signed text says size %lld head %.16s, the reply %lld %.16s",
                   (long long)c.size, hex, (long long)size, head_hex ? head_hex : "(none)");
  return MX_OK;
}

static int unhex32(const char *s, uint8_t out[TOOLS_AUDIT_HASH_LEN])
{
  if (!s || strlen(s) != 2 * TOOLS_AUDIT_HASH_LEN)
    return -1;
  for (int i = 0; i < TOOLS_AUDIT_HASH_LEN; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1)
      return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

mx_err tools_audit_record_hash(const cJSON *record, char hash_hex[2 * TOOLS_AUDIT_HASH_LEN + 1], char *err)
{
  int64_t seq = 0;
  uint8_t prev[TOOLS_AUDIT_HASH_LEN], h[TOOLS_AUDIT_HASH_LEN];
  if (!mx_json_int(record, "seq", &seq) || seq < 1 || unhex32(mx_json_str(record, "prev_hash"), prev))
    return mx_fail(MX_ERR_INVALID, err, "audit record: expected seq >= 1 and a 64-hex prev_hash");
  /* The record as chained: everything but the three fields /v1/audit adds. */
  cJSON *copy = cJSON_Duplicate(record, 1);
  struct mx_buf canon = MX_BUF_INIT(MX_BUF_MAX_TOOL_OUTPUT);
  mx_err rc = copy ? MX_OK : mx_fail(MX_ERR_NOMEM, err, "out of memory");
  if (!rc) {
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "seq");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "prev_hash");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "hash");
    rc = mx_json_canonical(copy, &canon, err);
  }
  if (!rc && !audit_hash_md(NULL, NULL, seq, prev, canon.buf, canon.len, h))
    rc = mx_fail(MX_ERR_CRYPTO, err, "audit record %lld: SHA-256 failed", (long long)seq);
  if (!rc)
    mx_hex(h, TOOLS_AUDIT_HASH_LEN, hash_hex);
  cJSON_Delete(copy);
  mx_buf_release(&canon);
  return rc;
}
