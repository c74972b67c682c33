/*
 * tests/fuzz/fuzz_tool_args.c - tool arguments as the model writes them:
 * schema validation (tools/tools_schema.c) against the catalog's schema of
 * the tool, then the manifest decision (tools/policy) for a manifest with
 * read and write roots and allow/ask/deny command rules with globs.
 * Input: the tool's name, a newline, then the JSON arguments (by name, so
 * the seeds survive changes to the catalog's order).
 * Properties: a refusal says why; the decision is made for valid arguments
 * and is one of ALLOW/ASK/DENY with a reason.
 */
#include "fuzz_util.h"

#include <cjson/cJSON.h>

#include "tools_catalog.h"
#include "tools_policy.h"
#include "tools_schema.h"

static const char manifest_json[] =
    "{\"version\":1,\"platform\":\"linux\",\"defaults\":{\"timeout_ms\":5000,\"max_output\":65536},"
    "\"paths\":{\"read\":[\"/var/log\",\"/etc/os-release\"],\"write\":[\"/srv/app/conf\"]},"
    "\"commands\":{"
    "\"deny\":[{\"argv0\":\"/usr/bin/rm\"}],"
    "\"ask\":[{\"argv0\":\"/usr/bin/systemctl\",\"args\":[\"restart\",\"*.service\"]}],"
    "\"allow\":[{\"argv0\":\"/usr/bin/uptime\",\"args\":[]},"
    "{\"argv0\":\"/usr/bin/df\",\"args\":[],\"rest\":\"-[hT]\"},"
    "{\"argv0\":\"/usr/bin/systemctl\",\"args\":[\"status\",\"*.service\"]},"
    "{\"argv0\":\"/usr/bin/journalctl\",\"args\":[\"-u\",\"*.service\",\"-n\",\"[0-9]*\"],\"rest\":\"--no-pager\"}]},"
    "\"tools\":{\"fs.read\":{},\"fs.list\":{},\"fs.stat\":{},\"fs.write\":{\"approval\":\"ask\"},"
    "\"proc.list\":{},\"pkg.list\":{},\"shell.exec\":{},\"shell.eval\":{\"approval\":\"ask\"}}}";

static struct tools_manifest *manifest(void)
{
  static struct tools_manifest *m;
  if (!m) {
    char err[MX_ERRBUF_LEN];
    cJSON *j = cJSON_Parse(manifest_json);
    FUZZ_CHECK(j != NULL);
    if (tools_policy_parse(j, "fuzz.json", &m, err) != MX_OK) {
      fprintf(stderr, "fuzz_tool_args: %s\n", err);
      abort();
    }
    cJSON_Delete(j);
  }
  return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const struct tools_manifest *m = manifest();
  const uint8_t *nl = memchr(data, '\n', size);
  if (!nl || nl - data > 64)
    return 0;
  char name[65];
  memcpy(name, data, (size_t)(nl - data));
  name[nl - data] = '\0';
  const struct tools_spec *s = tools_catalog_find(name);
  if (!s)
    return 0;
  cJSON *args = cJSON_ParseWithLength((const char *)nl + 1, size - (size_t)(nl - data) - 1);
  if (!args)
    return 0;
  cJSON *schema = tools_catalog_schema(s);
  FUZZ_CHECK(schema != NULL);
  char err[MX_ERRBUF_LEN] = "";
  if (tools_schema_validate(schema, args, err) == MX_OK) {
    struct tools_policy_result r;
    memset(&r, 0, sizeof(r));
    if (tools_policy_check(m, s->name, args, &r, err) == MX_OK) {
      FUZZ_CHECK(r.decision == TOOLS_ALLOW || r.decision == TOOLS_ASK || r.decision == TOOLS_DENY);
      FUZZ_CHECK(r.reason[0] != '\0');
    }
    const cJSON *argv = cJSON_GetObjectItemCaseSensitive(args, "argv");
    const cJSON *argv0 = cJSON_GetArrayItem(argv, 0);
    if (cJSON_IsString(argv0))
      (void)tools_policy_is_interpreter(argv0->valuestring);
  } else {
    FUZZ_CHECK(err[0] != '\0');
  }
  cJSON_Delete(schema);
  cJSON_Delete(args);
  return 0;
}
