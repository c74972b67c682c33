/*
 * tests/fuzz/fuzz_canonical_json.c - Matrix canonical JSON (common/mx_json.c)
 * over any JSON a homeserver or device could send: signed device keys,
 * cross-signing keys, audit records. Properties: canonical output parses
 * back, and is a fixed point (canonicalising it again gives the same bytes);
 * the signing form never contains the top-level "signatures" or "unsigned".
 */
#include "fuzz_util.h"

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_json.h"

static void check_fixed_point(const struct mx_buf *first)
{
  cJSON *back = cJSON_ParseWithLength(first->buf, first->len);
  FUZZ_CHECK(back != NULL);
  struct mx_buf second = MX_BUF_INIT(first->len + 64);
  char err[MX_ERRBUF_LEN];
  FUZZ_CHECK(mx_json_canonical(back, &second, err) == MX_OK);
  FUZZ_CHECK(second.len == first->len && memcmp(second.buf, first->buf, first->len) == 0);
  mx_buf_release(&second);
  cJSON_Delete(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cJSON *v = cJSON_ParseWithLength((const char *)data, size);
  if (!v)
    return 0;
  char err[MX_ERRBUF_LEN];
  struct mx_buf out = MX_BUF_INIT(1 << 22);
  if (mx_json_canonical(v, &out, err) == MX_OK)
    check_fixed_point(&out);
  mx_buf_release(&out);

  if (cJSON_IsObject(v)) {
    struct mx_buf sig = MX_BUF_INIT(1 << 22);
    if (mx_json_canonical_for_signing(v, &sig, err) == MX_OK) {
      cJSON *back = cJSON_ParseWithLength(sig.buf, sig.len);
      FUZZ_CHECK(back != NULL);
      FUZZ_CHECK(!cJSON_GetObjectItemCaseSensitive(back, "signatures"));
      FUZZ_CHECK(!cJSON_GetObjectItemCaseSensitive(back, "unsigned"));
      cJSON_Delete(back);
    }
    mx_buf_release(&sig);
  }
  /* Every string value as a string literal on its own. */
  if (cJSON_IsString(v)) {
    struct mx_buf s = MX_BUF_INIT(1 << 22);
    if (mx_json_add_string(&s, v->valuestring) == MX_OK) {
      cJSON *back = cJSON_ParseWithLength(s.buf, s.len);
      FUZZ_CHECK(back && cJSON_IsString(back) && strcmp(back->valuestring, v->valuestring) == 0);
      cJSON_Delete(back);
    }
    mx_buf_release(&s);
  }
  cJSON_Delete(v);
  return 0;
}
