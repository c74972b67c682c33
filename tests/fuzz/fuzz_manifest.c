/*
 * tests/fuzz/fuzz_manifest.c - the device manifest parser (tools/policy),
 * which reads files an operator or a provisioning bundle wrote and which
 * mxfleet-agent loads on the device. Every accepted manifest is then asked
 * about every catalog tool with that tool's example arguments, so the
 * decision code runs over whatever rules the parser let through.
 * Properties: a refusal names the source; every decision is ALLOW, ASK or
 * DENY with a reason.
 */
#include "fuzz_util.h"

#include <cjson/cJSON.h>

#include "tools_catalog.h"
#include "tools_policy.h"

static void ask_every_tool(const struct tools_manifest *m)
{
  size_t n = 0;
  const struct tools_spec *c = tools_catalog(&n);
  char err[MX_ERRBUF_LEN];
  for (size_t i = 0; i < n; i++) {
    cJSON *args = cJSON_Parse(c[i].example);
    FUZZ_CHECK(args != NULL);
    struct tools_policy_result r;
    memset(&r, 0, sizeof(r));
    if (tools_policy_check(m, c[i].name, args, &r, err) == MX_OK) {
      FUZZ_CHECK(r.decision == TOOLS_ALLOW || r.decision == TOOLS_ASK || r.decision == TOOLS_DENY);
      FUZZ_CHECK(r.reason[0] != '\0');
    }
    (void)tools_policy_enabled(m, c[i].name);
    struct tools_limits l = tools_policy_limits(m, c[i].name);
    FUZZ_CHECK(l.timeout_ms >= 0);
    cJSON_Delete(args);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cJSON *j = cJSON_ParseWithLength((const char *)data, size);
  if (!j)
    return 0;
  struct tools_manifest *m = NULL;
  char err[MX_ERRBUF_LEN] = "";
  if (tools_policy_parse(j, "fuzz.json", &m, err) == MX_OK) {
    FUZZ_CHECK(m != NULL);
    ask_every_tool(m);
    tools_manifest_free(m);
  } else {
    FUZZ_CHECK(m == NULL);
    FUZZ_CHECK(strncmp(err, "fuzz.json", 9) == 0);
  }
  cJSON_Delete(j);
  return 0;
}
