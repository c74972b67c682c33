/* test_llm_provider.c - the three wire formats: request bodies built from
 * the internal shape, and answers (streamed line by line or whole)
 * normalised back, including fragments, errors after 200 and cut streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "llm_provider.h"

static void feed(struct llm_acc *a, const char *text)
{
  const char *p = text;
  while (*p) {
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    assert_int_equal(llm_acc_line(a, p, n), 0);
    p = e ? e + 1 : p + n;
  }
}

static void openai_stream_fragments_per_index(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_OPENAI);
  feed(&a,
       "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
       "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"fs.list\",\"arguments\":\"\"}}]}}]}\n\n"
       "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"function\":{\"name\":\"sys.uptime\",\"arguments\":\"{\\\"v\"}}]}}]}\n\n"
       "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"pa\"}}]}}]}\n\n"
       ": keep-alive\n\n"
       "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"\\\":1}\"}}]}}]}\n\n"
       "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"th\\\":\\\"/x\\\"}\"}}]}}]}\n\n"
       "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
       "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9}}\n\n"
       "data: [DONE]\n\n");
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_acc_finish(&a, 1, &r, err), MX_OK);
  assert_int_equal(r.ncalls, 2);
  assert_string_equal(r.calls[0].name, "fs.list");
  assert_string_equal(r.calls[0].args_json, "{\"path\":\"/x\"}");
  assert_string_equal(r.calls[1].name, "sys.uptime");
  assert_string_equal(r.calls[1].args_json, "{\"v\":1}");
  assert_int_equal(strlen(r.calls[0].id), 9); /* ours, not call_1 */
  assert_int_equal(r.stop, LLM_STOP_TOOL_USE);
  assert_int_equal(r.in_tokens, 120);
  assert_int_equal(r.out_tokens, 9);
  assert_null(r.call_errors);
  llm_reply_free(&r);
  llm_acc_release(&a);
}

static void openai_stream_without_done_is_a_failure(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_OPENAI);
  feed(&a, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The answer is\"}}]}\n\n");
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_acc_finish(&a, 1, &r, err), MX_ERR_HTTP);
  assert_non_null(strstr(err, "ended before its end marker"));
  assert_int_equal(a.got_token, 1);
  llm_acc_release(&a);
}

static void openai_error_chunk_after_200(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_OPENAI);
  feed(&a, "data: {\"error\":{\"message\":\"tool_use_failed\",\"type\":\"invalid_request_error\",\"code\":\"tool_use_failed\"}}\n\n");
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_acc_finish(&a, 1, &r, err), MX_ERR_HTTP);
  assert_string_equal(a.err_type, "tool_use_failed");
  llm_acc_release(&a);
}

static void openai_whole_with_object_arguments_and_bad_json(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_OPENAI);
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_acc_body(&a,
                                "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                                "{\"id\":null,\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":{\"k\":1}}},"
                                "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{oops\"}}]},"
                                "\"finish_reason\":\"tool\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}",
                                err),
                   MX_OK);
  struct llm_reply r;
  assert_int_equal(llm_acc_finish(&a, 0, &r, err), MX_OK);
  assert_int_equal(r.ncalls, 2);
  assert_string_equal(r.calls[0].args_json, "{\"k\":1}");
  assert_string_equal(r.calls[1].args_json, "{}");
  assert_non_null(r.call_errors);
  assert_null(r.call_errors[0]);
  assert_non_null(strstr(r.call_errors[1], "invalid arguments for b"));
  assert_non_null(strstr(r.call_errors[1], "'{oops'"));
  llm_reply_free(&r);
  llm_acc_release(&a);
}

static void anthropic_stream_blocks(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_ANTHROPIC);
  feed(&a,
       "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":300,\"output_tokens\":1}}}\n\n"
       "event: ping\ndata: {\"type\":\"ping\"}\n\n"
       "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
       "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking\"}}\n\n"
       "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"fs.list\",\"input\":{}}}\n\n"
       "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"path\\\":\"}}\n\n"
       "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"/etc\\\"}\"}}\n\n"
       "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
       "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":40}}\n\n");
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  /* no message_stop yet: not complete */
  assert_int_equal(llm_acc_finish(&a, 1, &r, err), MX_ERR_HTTP);
  feed(&a, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  assert_int_equal(llm_acc_finish(&a, 1, &r, err), MX_OK);
  assert_string_equal(r.text, "Checking");
  assert_int_equal(r.ncalls, 1);
  assert_string_equal(r.calls[0].args_json, "{\"path\":\"/etc\"}");
  assert_int_equal(r.in_tokens, 300);
  assert_int_equal(r.out_tokens, 40);
  llm_reply_free(&r);
  llm_acc_release(&a);
}

static void anthropic_error_event_after_200(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_ANTHROPIC);
  feed(&a, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"par\"}}\n\n"
           "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_acc_finish(&a, 1, &r, err), MX_ERR_HTTP);
  assert_string_equal(a.err_type, "overloaded_error");
  assert_non_null(strstr(err, "overloaded_error"));
  llm_acc_release(&a);
}

/* Found by tests/fuzz/fuzz_llm_anthropic: a token count no int64 holds was
 * cast from double (undefined behaviour); it now counts as 0, and a
 * message_delta without input_tokens keeps the count from message_start. */
static void anthropic_usage_out_of_range(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_ANTHROPIC);
  feed(&a,
       "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":300,\"output_tokens\":1}}}\n\n"
       "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"ok\"}}\n\n"
       "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4.8e103}}\n\n"
       "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_acc_finish(&a, 1, &r, err), MX_OK);
  assert_int_equal(r.in_tokens, 300);
  assert_int_equal(r.out_tokens, 0);
  llm_reply_free(&r);
  llm_acc_release(&a);
}

static void anthropic_whole(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_ANTHROPIC);
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_acc_body(&a,
                                "{\"stop_reason\":\"tool_use\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},"
                                "{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"reboot\",\"input\":{\"host\":\"pi-3\"}}],"
                                "\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}",
                                err),
                   MX_OK);
  struct llm_reply r;
  assert_int_equal(llm_acc_finish(&a, 0, &r, err), MX_OK);
  assert_string_equal(r.calls[0].name, "reboot");
  assert_string_equal(r.calls[0].args_json, "{\"host\":\"pi-3\"}");
  llm_reply_free(&r);
  llm_acc_release(&a);
}

static void ollama_ndjson(void **state)
{
  (void)state;
  struct llm_acc a;
  llm_acc_init(&a, LLM_KIND_OLLAMA);
  feed(&a, "{\"message\":{\"role\":\"assistant\",\"content\":\"Hi \"},\"done\":false}\n"
           "{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"index\":0,\"name\":\"get_temperature\",\"arguments\":{\"city\":\"New York\"}}},"
           "{\"function\":{\"name\":\"sys.uptime\",\"arguments\":{}}}]},\"done\":false}\n"
           "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":7,\"eval_count\":8}\n");
  struct llm_reply r;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_acc_finish(&a, 1, &r, err), MX_OK);
  assert_int_equal(r.ncalls, 2);
  assert_string_equal(r.calls[0].name, "get_temperature");
  assert_string_equal(r.calls[0].args_json, "{\"city\":\"New York\"}");
  assert_int_equal(strlen(r.calls[0].id), 9); /* minted: Ollama gives none */
  assert_string_equal(r.text, "Hi ");
  assert_int_equal(r.in_tokens, 7);
  llm_reply_free(&r);
  llm_acc_release(&a);
}

static void error_bodies(void **state)
{
  (void)state;
  char t[64], c[64], m[256];
  llm_provider_error("{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
                     "\"code\":\"insufficient_quota\"}}",
                     t, sizeof(t), c, sizeof(c), m, sizeof(m));
  assert_string_equal(t, "insufficient_quota");
  assert_string_equal(c, "insufficient_quota");
  llm_provider_error("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}", t,
                     sizeof(t), c, sizeof(c), m, sizeof(m));
  assert_string_equal(t, "overloaded_error");
  assert_string_equal(m, "Overloaded");
  llm_provider_error("{\"error\":\"model not found\"}", t, sizeof(t), c, sizeof(c), m, sizeof(m));
  assert_string_equal(m, "model not found");
  assert_string_equal(t, "");
}

/* A conversation with a tool round, built for each kind. */
struct fixture {
  struct llm_conv conv;
  struct llm_tool_spec spec;
  struct llm_provider_cfg p;
};

static void make(struct fixture *f, enum llm_kind kind)
{
  memset(f, 0, sizeof(*f));
  llm_conv_init(&f->conv);
  struct llm_tool_call c[2] = {{"AAAAAAAA1", "fs.list", "{\"path\":\"/\"}"}, {"BBBBBBBB2", "sys.uptime", "{}"}};
  assert_int_equal(llm_conv_add_user(&f->conv, "look"), MX_OK);
  assert_int_equal(llm_conv_add_assistant(&f->conv, "ok", c, 2), MX_OK);
  assert_int_equal(llm_conv_add_tool(&f->conv, "AAAAAAAA1", "fs.list", "bin", 0), MX_OK);
  assert_int_equal(llm_conv_add_tool(&f->conv, "BBBBBBBB2", "sys.uptime", "up 3 days", 1), MX_OK);
  f->spec.name = "fs.list";
  f->spec.description = "list";
  f->spec.schema_json = "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}";
  f->p.name = "p";
  f->p.kind = kind;
  f->p.base_url = "http://127.0.0.1:1/v1/";
  f->p.model = "m";
  f->p.api_key = "sk-secret";
  f->p.max_tokens = 99;
}

static cJSON *build(struct fixture *f, struct mx_buf *url, struct curl_slist **h)
{
  struct llm_chat_req req = {"be brief", &f->conv, &f->spec, 1};
  struct mx_buf body = MX_BUF_INIT(1 << 20);
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_provider_build(&f->p, &req, 1, url, h, &body, err), MX_OK);
  cJSON *j = cJSON_Parse(mx_buf_cstr(&body));
  mx_buf_release(&body);
  assert_non_null(j);
  return j;
}

static int has_header(const struct curl_slist *h, const char *line)
{
  for (; h; h = h->next)
    if (strcmp(h->data, line) == 0)
      return 1;
  return 0;
}

static void openai_request_shape(void **state)
{
  (void)state;
  struct fixture f;
  make(&f, LLM_KIND_OPENAI);
  struct mx_buf url = MX_BUF_INIT(1024);
  struct curl_slist *h = NULL;
  cJSON *j = build(&f, &url, &h);
  assert_string_equal(mx_buf_cstr(&url), "http://127.0.0.1:1/v1/chat/completions");
  assert_true(has_header(h, "Authorization: Bearer sk-secret"));
  cJSON *msgs = cJSON_GetObjectItem(j, "messages");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring, "system");
  cJSON *asst = cJSON_GetArrayItem(msgs, 2);
  cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(asst, "tool_calls"), 0);
  assert_string_equal(cJSON_GetObjectItem(tc, "id")->valuestring, "AAAAAAAA1");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "arguments")->valuestring,
                      "{\"path\":\"/\"}");
  cJSON *tool = cJSON_GetArrayItem(msgs, 4);
  assert_string_equal(cJSON_GetObjectItem(tool, "role")->valuestring, "tool");
  assert_string_equal(cJSON_GetObjectItem(tool, "tool_call_id")->valuestring, "BBBBBBBB2");
  cJSON *fn = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tools"), 0), "function");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(fn, "parameters"), "type")->valuestring, "object");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
  assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 99);
  cJSON_Delete(j);
  curl_slist_free_all(h);
  h = NULL;
  mx_buf_reset(&url);
  f.p.base_url = "https://api.openai.com/v1";
  j = build(&f, &url, &h);
  assert_null(cJSON_GetObjectItem(j, "max_tokens"));
  assert_int_equal(cJSON_GetObjectItem(j, "max_completion_tokens")->valueint, 99);
  cJSON_Delete(j);
  curl_slist_free_all(h);
  mx_buf_release(&url);
  llm_conv_free(&f.conv);
}

static void anthropic_request_shape(void **state)
{
  (void)state;
  struct fixture f;
  make(&f, LLM_KIND_ANTHROPIC);
  f.p.base_url = "https://api.anthropic.com";
  struct mx_buf url = MX_BUF_INIT(1024);
  struct curl_slist *h = NULL;
  cJSON *j = build(&f, &url, &h);
  assert_string_equal(mx_buf_cstr(&url), "https://api.anthropic.com/v1/messages");
  assert_true(has_header(h, "x-api-key: sk-secret"));
  assert_true(has_header(h, "anthropic-version: 2023-06-01"));
  assert_string_equal(cJSON_GetObjectItem(j, "system")->valuestring, "be brief");
  assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 99);
  cJSON *msgs = cJSON_GetObjectItem(j, "messages");
  assert_int_equal(cJSON_GetArraySize(msgs), 3); /* user, assistant, user(tool_result x2) */
  cJSON *asst = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content");
  cJSON *use = cJSON_GetArrayItem(asst, 1);
  assert_string_equal(cJSON_GetObjectItem(use, "type")->valuestring, "tool_use");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(use, "input"), "path")->valuestring, "/");
  cJSON *res = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 2), "content");
  assert_int_equal(cJSON_GetArraySize(res), 2);
  cJSON *r2 = cJSON_GetArrayItem(res, 1);
  assert_string_equal(cJSON_GetObjectItem(r2, "tool_use_id")->valuestring, "BBBBBBBB2");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r2, "is_error")));
  assert_non_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tools"), 0), "input_schema"));
  cJSON_Delete(j);
  curl_slist_free_all(h);
  mx_buf_release(&url);
  llm_conv_free(&f.conv);
}

static void ollama_request_shape(void **state)
{
  (void)state;
  struct fixture f;
  make(&f, LLM_KIND_OLLAMA);
  f.p.base_url = "http://127.0.0.1:11434";
  f.p.api_key = NULL;
  struct mx_buf url = MX_BUF_INIT(1024);
  struct curl_slist *h = NULL;
  cJSON *j = build(&f, &url, &h);
  assert_string_equal(mx_buf_cstr(&url), "http://127.0.0.1:11434/api/chat");
  cJSON *msgs = cJSON_GetObjectItem(j, "messages");
  cJSON *asst = cJSON_GetArrayItem(msgs, 2);
  cJSON *fn = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(asst, "tool_calls"), 0), "function");
  assert_true(cJSON_IsObject(cJSON_GetObjectItem(fn, "arguments")));
  cJSON *tool = cJSON_GetArrayItem(msgs, 3);
  assert_string_equal(cJSON_GetObjectItem(tool, "tool_name")->valuestring, "fs.list");
  assert_null(cJSON_GetObjectItem(tool, "tool_call_id"));
  for (struct curl_slist *p = h; p; p = p->next)
    assert_null(strstr(p->data, "Authorization"));
  cJSON_Delete(j);
  curl_slist_free_all(h);
  mx_buf_release(&url);
  llm_conv_free(&f.conv);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(openai_stream_fragments_per_index),
      cmocka_unit_test(openai_stream_without_done_is_a_failure),
      cmocka_unit_test(openai_error_chunk_after_200),
      cmocka_unit_test(openai_whole_with_object_arguments_and_bad_json),
      cmocka_unit_test(anthropic_stream_blocks),
      cmocka_unit_test(anthropic_error_event_after_200),
      cmocka_unit_test(anthropic_usage_out_of_range),
      cmocka_unit_test(anthropic_whole),
      cmocka_unit_test(ollama_ndjson),
      cmocka_unit_test(error_bodies),
      cmocka_unit_test(openai_request_shape),
      cmocka_unit_test(anthropic_request_shape),
      cmocka_unit_test(ollama_request_shape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
