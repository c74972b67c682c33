/* test_llm_config.c - the llm config block: defaults, routes, key loading,
 * and a specific message for every kind of mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../docs/doc_keys.h"
#include "llm_config.h"
#include "mx_util.h"

#define P0 "{\"name\":\"a\",\"kind\":\"openai\",\"base_url\":\"https://api.example.org/v1\",\"model\":\"m\",\"api_key_env\":\"LLMCFG_KEY\"}"
#define P1 "{\"name\":\"b\",\"kind\":\"ollama\",\"base_url\":\"http://127.0.0.1:11434\",\"model\":\"qwen\"}"

static mx_err parse(const char *text, struct llm_config **out, char *err)
{
  cJSON *j = cJSON_Parse(text);
  assert_non_null(j);
  mx_err rc = llm_config_parse(j, "mxfleet.json", out, err);
  cJSON_Delete(j);
  return rc;
}

static void expect_error(const char *text, const char *msg)
{
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN] = "";
  assert_int_not_equal(parse(text, &cfg, err), MX_OK);
  assert_null(cfg);
  if (strcmp(err, msg) != 0)
    fail_msg("got '%s'\nwanted '%s'", err, msg);
}

static void valid_config_with_defaults(void **state)
{
  (void)state;
  setenv("LLMCFG_KEY", "sk-live-123", 1);
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(parse("{\"providers\":[" P0 "," P1 "],\"routes\":{\"default\":[\"a\",\"b\"],\"pc1\":[\"b\"]},"
                         "\"budgets\":{\"device_tokens_per_day\":1000,\"operator_cost_per_day\":2.5},"
                         "\"agent\":{\"max_tool_iterations\":5}}",
                         &cfg, err),
                   MX_OK);
  assert_int_equal(cfg->nproviders, 2);
  assert_string_equal(cfg->providers[0].api_key, "sk-live-123");
  assert_null(cfg->providers[1].api_key);
  assert_int_equal(cfg->providers[0].retry.max_attempts, 3);
  assert_int_equal(cfg->providers[0].breaker.failure_threshold, 5);
  assert_int_equal(cfg->providers[0].stream, 1);
  assert_int_equal(cfg->providers[0].idle_timeout_ms, 60000);  /* hosted: seconds to first byte */
  assert_int_equal(cfg->providers[1].idle_timeout_ms, 300000); /* local: may read a long prompt first */
  assert_int_equal(cfg->agent.max_tool_iterations, 5);
  assert_int_equal(cfg->agent.parallel_tools, 4);
  assert_int_equal(cfg->budgets.device_tokens_per_day, 1000);
  const struct llm_route *r = llm_config_route(cfg, "pc1");
  assert_int_equal(r->nchain, 1);
  assert_string_equal(cfg->providers[r->chain[0]].name, "b");
  r = llm_config_route(cfg, "other");
  assert_string_equal(r->device, "default");
  assert_int_equal(r->nchain, 2);
  llm_config_free(cfg);
}

static void idle_timeout_is_read_and_checked(void **state)
{
  (void)state;
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(parse("{\"providers\":[{\"name\":\"b\",\"kind\":\"ollama\",\"base_url\":\"http://127.0.0.1:11434\","
                         "\"model\":\"qwen\",\"idle_timeout_ms\":2500}],\"routes\":{\"default\":[\"b\"]}}",
                         &cfg, err),
                   MX_OK);
  assert_int_equal(cfg->providers[0].idle_timeout_ms, 2500);
  llm_config_free(cfg);
  cfg = NULL;
  assert_int_not_equal(parse("{\"providers\":[{\"name\":\"b\",\"kind\":\"ollama\",\"base_url\":\"http://127.0.0.1:11434\","
                             "\"model\":\"qwen\",\"idle_timeout_ms\":0}],\"routes\":{\"default\":[\"b\"]}}",
                             &cfg, err),
                       MX_OK);
  assert_non_null(strstr(err, "idle_timeout_ms"));
  assert_null(cfg);
}

static void default_agent_limit_is_8(void **state)
{
  (void)state;
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(parse("{\"providers\":[" P1 "],\"routes\":{\"default\":[\"b\"]}}", &cfg, err), MX_OK);
  assert_int_equal(cfg->agent.max_tool_iterations, 8);
  llm_config_free(cfg);
}

/* The route device gets: its chain's provider names, first to last. */
static void expect_route(const struct llm_config *cfg, const char *device, const char *want_route,
                         const char *const *names, size_t n)
{
  const struct llm_route *r = llm_config_route(cfg, device);
  assert_non_null(r);
  assert_string_equal(r->device, want_route);
  assert_int_equal(r->nchain, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(cfg->providers[r->chain[i]].name, names[i]);
}

/* A config without "routes" (one provider is the common case) routes every
 * device through the providers in the order listed. */
static void routes_default_to_the_providers_in_order(void **state)
{
  (void)state;
  setenv("LLMCFG_KEY", "sk-live-123", 1);
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN] = "";
  if (parse("{\"providers\":[" P1 "," P0 "]}", &cfg, err))
    fail_msg("%s", err);
  static const char *const both[] = {"b", "a"}, *const only_a[] = {"a"};
  expect_route(cfg, "pc1", "default", both, 2);
  llm_config_free(cfg);
  /* routes for some devices only: the others still get that default */
  if (parse("{\"providers\":[" P1 "," P0 "],\"routes\":{\"nas\":[\"a\"]}}", &cfg, err))
    fail_msg("%s", err);
  expect_route(cfg, "nas", "nas", only_a, 1);
  expect_route(cfg, "pc1", "default", both, 2);
  llm_config_free(cfg);
}

static void key_from_file(void **state)
{
  (void)state;
  char path[] = "/tmp/llmkeyXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "sk-file-key\n", 12), 12);
  close(fd);
  char text[1024];
  snprintf(text, sizeof(text),
           "{\"providers\":[{\"name\":\"a\",\"kind\":\"anthropic\",\"base_url\":\"https://api.anthropic.com\","
           "\"model\":\"claude\",\"api_key_file\":\"%s\"}],\"routes\":{\"default\":[\"a\"]}}",
           path);
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(parse(text, &cfg, err), MX_OK);
  assert_string_equal(cfg->providers[0].api_key, "sk-file-key");
  llm_config_free(cfg);
  unlink(path);
}

static void relative_paths_follow_the_config_file(void **state)
{
  (void)state;
  char dir[] = "/tmp/llmcfgdirXXXXXX";
  assert_non_null(mkdtemp(dir));
  char key[64];
  snprintf(key, sizeof(key), "%s/k.key", dir);
  FILE *f = fopen(key, "w");
  assert_non_null(f);
  fputs("sk-relative\n", f);
  fclose(f);
  char file[64];
  snprintf(file, sizeof(file), "%s/mxfleet.json", dir);
  cJSON *j = cJSON_Parse("{\"providers\":[{\"name\":\"a\",\"kind\":\"openai\",\"base_url\":\"https://x\","
                         "\"model\":\"m\",\"api_key_file\":\"k.key\"}],\"routes\":{\"default\":[\"a\"]}}");
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_config_parse(j, file, &cfg, err), MX_OK);
  assert_string_equal(cfg->providers[0].api_key, "sk-relative");
  char want[96];
  snprintf(want, sizeof(want), "%s/prompts", dir);
  assert_string_equal(cfg->agent.prompts_dir, want);
  llm_config_free(cfg);
  cJSON_Delete(j);
  unlink(key);
  rmdir(dir);
}

static void errors_are_specific(void **state)
{
  (void)state;
  setenv("LLMCFG_KEY", "sk-live-123", 1);
  unsetenv("LLMCFG_MISSING");
  expect_error("{\"providers\":[" P0 ",{\"name\":\"x\",\"kind\":\"x\"}],\"routes\":{\"default\":[\"a\"]}}",
               "mxfleet.json: llm.providers[1].kind: expected one of openai, anthropic, ollama, got 'x'");
  expect_error("{\"providers\":[" P0 "],\"routes\":{\"default\":[\"a\"]},\"extra\":1}",
               "mxfleet.json: llm: unknown key 'extra'");
  expect_error("{\"providers\":[{\"name\":\"a\",\"kind\":\"openai\",\"base_url\":\"https://x\",\"model\":\"m\","
               "\"api_key_env\":\"LLMCFG_KEY\",\"colour\":\"red\"}],\"routes\":{\"default\":[\"a\"]}}",
               "mxfleet.json: llm.providers[0]: unknown key 'colour'");
  expect_error("{\"providers\":[" P0 "],\"routes\":{\"default\":[\"zz\"]}}",
               "mxfleet.json: llm.routes.default[0]: expected the name of a provider, got 'zz'");
  expect_error("{\"providers\":[{\"name\":\"a\",\"kind\":\"openai\",\"base_url\":\"https://x\",\"model\":\"m\","
               "\"api_key_env\":\"LLMCFG_MISSING\"}],\"routes\":{\"default\":[\"a\"]}}",
               "mxfleet.json: llm.providers[0].api_key_env: environment variable 'LLMCFG_MISSING' is not set");
  expect_error("{\"providers\":[{\"name\":\"a\",\"kind\":\"openai\",\"base_url\":\"https://x\",\"model\":\"m\"}],"
               "\"routes\":{\"default\":[\"a\"]}}",
               "mxfleet.json: llm.providers[0]: expected api_key_file or api_key_env for kind 'openai'");
  expect_error("{\"providers\":[{\"name\":\"a\",\"kind\":\"ollama\",\"base_url\":\"ftp://x\",\"model\":\"m\"}],"
               "\"routes\":{\"default\":[\"a\"]}}",
               "mxfleet.json: llm.providers[0].base_url: expected an http:// or https:// URL, got 'ftp://x'");
  expect_error("{\"providers\":[" P1 "],\"routes\":{\"default\":[\"b\"]},\"agent\":{\"max_tool_iterations\":0}}",
               "mxfleet.json: llm.agent.max_tool_iterations: expected an integer from 1 to 100, got '0'");
  expect_error("{\"providers\":[" P1 "],\"routes\":{\"default\":[\"b\"]},\"budgets\":{\"device_cost_per_day\":\"1\"}}",
               "mxfleet.json: llm.budgets.device_cost_per_day: expected a number >= 0, got '\"1\"'");
  expect_error("{\"providers\":[{\"name\":\"b\",\"kind\":\"ollama\",\"base_url\":\"http://h\",\"model\":\"q\","
               "\"retry\":{\"tries\":2}}],\"routes\":{\"default\":[\"b\"]}}",
               "mxfleet.json: llm.providers[0].retry: unknown key 'tries'");
  expect_error("{\"providers\":[" P1 "," P1 "],\"routes\":{\"default\":[\"b\"]}}",
               "mxfleet.json: llm.providers[1].name: duplicate provider name 'b'");
  expect_error("{\"providers\":[],\"routes\":{\"default\":[\"b\"]}}",
               "mxfleet.json: llm.providers: expected a non-empty array");
}

static void secret_never_in_messages(void **state)
{
  (void)state;
  setenv("LLMCFG_KEY", "sk-live-SECRET", 1);
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN] = "";
  assert_int_not_equal(parse("{\"providers\":[{\"name\":\"a\",\"kind\":\"openai\",\"base_url\":\"https://x\","
                             "\"model\":\"m\",\"api_key_env\":\"LLMCFG_KEY\",\"timeout_ms\":-1}],"
                             "\"routes\":{\"default\":[\"a\"]}}",
                             &cfg, err),
                   MX_OK);
  assert_null(strstr(err, "SECRET"));
}

/* docs/llm.md has a section for every key the parser accepts, and every
 * "### llm.x" section is such a key (or says it is not one). */
static void docs_and_parser_agree_on_keys(void **state)
{
  (void)state;
  int keys = 0;
  assert_int_equal(doc_keys_check(MXFLEET_DOCS_DIR "/llm.md", llm_config_each_key, "llm.", 0, &keys), 0);
  assert_true(keys > 30);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_config_with_defaults),
      cmocka_unit_test(docs_and_parser_agree_on_keys),
      cmocka_unit_test(idle_timeout_is_read_and_checked),
      cmocka_unit_test(default_agent_limit_is_8),
      cmocka_unit_test(routes_default_to_the_providers_in_order),
      cmocka_unit_test(key_from_file),
      cmocka_unit_test(relative_paths_follow_the_config_file),
      cmocka_unit_test(errors_are_specific),
      cmocka_unit_test(secret_never_in_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
