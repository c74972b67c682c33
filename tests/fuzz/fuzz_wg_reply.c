/*
 * tests/fuzz/fuzz_wg_reply.c - what a compromised device can send back to
 * the bot over WireGuard: the reply to POST /v1/call (devices/wg/dev_wg.c
 * dev_wg_fill_result, under each HTTP status the agent may answer with), a
 * signed audit checkpoint in text form (tools/audit
 * tools_audit_checkpoint_parse without a key and with a pinned one,
 * tools_audit_checkpoint_check against the size and head a reply claims)
 * and audit records from GET /v1/audit (tools_audit_record_hash).
 * Input: first byte picks the HTTP status, the rest is the body.
 * Properties: an accepted reply has a known status and bounded output; an
 * error says why; a checkpoint checked against a key other than the one that
 * signed it is never accepted.
 */
#include "fuzz_util.h"

#include "dev.h"
#include "dev_wg_int.h"
#include "tools_audit.h"

static const long statuses[] = {200, 403, 401, 413, 503, 500, 404, 0};

static void reply(long status, const char *body)
{
  struct dev_result r;
  char err[MX_ERRBUF_LEN] = "";
  dev_result_init(&r);
  if (dev_wg_fill_result("fuzz-device", status, body, &r, err) == MX_OK) {
    FUZZ_CHECK(status == 200 || status == 403);
    FUZZ_CHECK(r.status == DEV_DONE || r.status == DEV_TIMEOUT || r.status == DEV_REFUSED || r.status == DEV_FAILED);
    FUZZ_CHECK(status != 403 || r.status == DEV_REFUSED);
  } else {
    FUZZ_CHECK(strstr(err, "fuzz-device") != NULL);
  }
  dev_result_release(&r);
}

static void checkpoint(const char *text)
{
  /* Not the key of any checkpoint in the corpus. */
  static const uint8_t other_key[32] = {0x3b, 0x6a, 0x27, 0xbc, 0xce, 0xb6, 0xa4, 0x2d, 0x62, 0xa3, 0xa8,
                                        0xd0, 0x2a, 0x6f, 0x0d, 0x73, 0x65, 0x32, 0x15, 0x77, 0x1d, 0xe2,
                                        0x43, 0xa6, 0x3a, 0xc0, 0x48, 0xa1, 0x8b, 0x59, 0xda, 0x29};
  struct tools_audit_checkpoint c;
  char err[MX_ERRBUF_LEN] = "";
  if (tools_audit_checkpoint_parse(text, NULL, &c, err) != MX_OK)
    FUZZ_CHECK(err[0] != '\0');
  FUZZ_CHECK(tools_audit_checkpoint_parse(text, other_key, &c, err) != MX_OK);
  FUZZ_CHECK(tools_audit_checkpoint_check(text, other_key, 1234, "00", err) != MX_OK);
}

/* A /v1/audit reply ({"records": [...]}) or one record: every hash the bot
 * recomputes is 64 hex digits. */
static void records(const char *body)
{
  cJSON *j = cJSON_Parse(body);
  const cJSON *recs = cJSON_GetObjectItemCaseSensitive(j, "records"), *rec;
  char hex[2 * TOOLS_AUDIT_HASH_LEN + 1], err[MX_ERRBUF_LEN];
  if (cJSON_IsObject(j) && tools_audit_record_hash(j, hex, err) == MX_OK)
    FUZZ_CHECK(strlen(hex) == 2 * TOOLS_AUDIT_HASH_LEN);
  if (cJSON_IsArray(recs)) {
    cJSON_ArrayForEach(rec, recs) {
      if (tools_audit_record_hash(rec, hex, err) == MX_OK)
        FUZZ_CHECK(strlen(hex) == 2 * TOOLS_AUDIT_HASH_LEN);
    }
  }
  cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  char *body = fuzz_cstr(data + 1, size - 1);
  reply(statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))], body);
  checkpoint(body);
  records(body);
  free(body);
  return 0;
}
