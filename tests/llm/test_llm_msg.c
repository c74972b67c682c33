/* test_llm_msg.c - the internal message shape: argument normalisation, our
 * ids, text-embedded call extraction, history JSON, truncation, progress
 * text and stuck detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "llm_loop_util.h"
#include "llm_msg.h"

static void args_from_string_object_and_empty(void **state)
{
  (void)state;
  char *out = NULL;
  char err[MX_ERRBUF_LEN];
  cJSON *s = cJSON_CreateString("{\"path\": \"/var/log\"}");
  assert_int_equal(llm_args_normalise(s, &out, err), MX_OK);
  assert_string_equal(out, "{\"path\":\"/var/log\"}");
  free(out);
  cJSON *o = cJSON_Parse("{\"n\":2}");
  assert_int_equal(llm_args_normalise(o, &out, err), MX_OK);
  assert_string_equal(out, "{\"n\":2}");
  free(out);
  assert_int_equal(llm_args_normalise(NULL, &out, err), MX_OK);
  assert_string_equal(out, "{}");
  free(out);
  assert_int_equal(llm_args_from_text("  ", &out, err), MX_OK);
  assert_string_equal(out, "{}");
  free(out);
  cJSON_Delete(s);
  cJSON_Delete(o);
}

static void args_invalid_say_what_is_wrong(void **state)
{
  (void)state;
  char *out = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(llm_args_from_text("{\"path\": /var/log", &out, err), MX_ERR_INVALID);
  assert_non_null(strstr(err, "not valid JSON"));
  assert_non_null(strstr(err, "near byte 9"));
  assert_string_equal(out, "{\"path\": /var/log");
  free(out);
  assert_int_equal(llm_args_from_text("[1,2]", &out, err), MX_ERR_INVALID);
  assert_non_null(strstr(err, "must be a JSON object, got '[1,2]'"));
  free(out);
  cJSON *n = cJSON_CreateNumber(3);
  assert_int_equal(llm_args_normalise(n, &out, err), MX_ERR_INVALID);
  free(out);
  cJSON_Delete(n);
}

static void ids_are_nine_alphanumerics_and_differ(void **state)
{
  (void)state;
  char a[10], b[10];
  assert_int_equal(llm_new_call_id(a), MX_OK);
  assert_int_equal(llm_new_call_id(b), MX_OK);
  assert_int_equal(strlen(a), 9);
  for (int i = 0; i < 9; i++)
    assert_true((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z') || (a[i] >= '0' && a[i] <= '9'));
  assert_string_not_equal(a, b);
}

static const char *const known[] = {"fs.list", "sys.uptime"};

static void extract_tool_call_tags(void **state)
{
  (void)state;
  struct llm_reply r = {0};
  r.text = strdup("Let me check.\n<tool_call>{\"name\": \"fs.list\", \"arguments\": {\"path\": \"/tmp\"}}</tool_call>\n"
                  "<tool_call>{\"name\":\"sys.uptime\",\"arguments\":\"{}\"}</tool_call>");
  assert_int_equal(llm_extract_text_calls(&r, known, 2), 1);
  assert_int_equal(r.ncalls, 2);
  assert_string_equal(r.calls[0].name, "fs.list");
  assert_string_equal(r.calls[0].args_json, "{\"path\":\"/tmp\"}");
  assert_string_equal(r.calls[1].name, "sys.uptime");
  assert_string_equal(r.calls[1].args_json, "{}");
  assert_string_equal(r.text, "Let me check.");
  assert_int_equal(r.stop, LLM_STOP_TOOL_USE);
  llm_reply_free(&r);
}

static void extract_bare_json_and_ignore_unknown(void **state)
{
  (void)state;
  struct llm_reply r = {0};
  r.text = strdup("```json\n{\"name\": \"sys.uptime\", \"parameters\": {\"verbose\": true}}\n```");
  assert_int_equal(llm_extract_text_calls(&r, known, 2), 1);
  assert_int_equal(r.ncalls, 1);
  assert_string_equal(r.calls[0].args_json, "{\"verbose\":true}");
  assert_null(r.text);
  llm_reply_free(&r);
  r.text = strdup("{\"name\": \"rm.everything\", \"arguments\": {}}");
  assert_int_equal(llm_extract_text_calls(&r, known, 2), 0);
  assert_int_equal(r.ncalls, 0);
  llm_reply_free(&r);
  r.text = strdup("The JSON {\"a\":1} is fine.");
  assert_int_equal(llm_extract_text_calls(&r, known, 2), 0);
  llm_reply_free(&r);
}

static void history_json_round_trip(void **state)
{
  (void)state;
  struct llm_conv c, d;
  llm_conv_init(&c);
  llm_conv_init(&d);
  struct llm_tool_call call = {"abcDEF123", "fs.list", "{\"path\":\"/\"}"};
  assert_int_equal(llm_conv_add_user(&c, "list /"), MX_OK);
  assert_int_equal(llm_conv_add_assistant(&c, NULL, &call, 1), MX_OK);
  assert_int_equal(llm_conv_add_tool(&c, "abcDEF123", "fs.list", "bin etc", 1), MX_OK);
  char err[MX_ERRBUF_LEN];
  for (size_t i = 0; i < c.n; i++) {
    char *j = NULL;
    assert_int_equal(llm_msg_to_json(&c.v[i], &j), MX_OK);
    assert_int_equal(llm_msg_from_json(j, &d, err), MX_OK);
    free(j);
  }
  assert_int_equal(d.n, 3);
  assert_int_equal(d.v[1].role, LLM_ROLE_ASSISTANT);
  assert_null(d.v[1].text);
  assert_string_equal(d.v[1].calls[0].id, "abcDEF123");
  assert_string_equal(d.v[1].calls[0].args_json, "{\"path\":\"/\"}");
  assert_string_equal(d.v[2].call_id, "abcDEF123");
  assert_int_equal(d.v[2].is_error, 1);
  assert_int_equal(llm_msg_from_json("{\"role\":7}", &d, err), MX_ERR_INVALID);
  llm_conv_free(&c);
  llm_conv_free(&d);
}

static void truncate_keeps_head_and_tail_with_marker(void **state)
{
  (void)state;
  char big[5001];
  for (int i = 0; i < 5000; i++)
    big[i] = (char)('a' + i % 26);
  big[0] = 'H';
  big[4999] = 'T';
  big[5000] = '\0';
  char *t = llm_truncate(big, 1000);
  assert_non_null(t);
  assert_true(strlen(t) < 1100);
  assert_int_equal(t[0], 'H');
  assert_int_equal(t[strlen(t) - 1], 'T');
  assert_non_null(strstr(t, "characters omitted"));
  free(t);
  t = llm_truncate("short", 1000);
  assert_string_equal(t, "short");
  free(t);
  /* never cuts inside a UTF-8 sequence */
  char u[3001];
  for (int i = 0; i < 3000; i += 2) {
    u[i] = (char)0xC3;
    u[i + 1] = (char)0xA9;
  }
  u[3000] = '\0';
  t = llm_truncate(u, 500);
  char *m = strstr(t, "\n[...");
  assert_non_null(m);
  assert_int_equal((m - t) % 2, 0);
  free(t);
}

static void progress_text_names_calls(void **state)
{
  (void)state;
  struct llm_tool_call calls[2] = {{"a", "fs.list", "{\"path\":\"/var/log\"}"}, {"b", "sys.uptime", "{}"}};
  struct mx_buf b = MX_BUF_INIT(1024);
  assert_int_equal(llm_progress_text(calls, 2, &b), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "running fs.list /var/log, sys.uptime\xE2\x80\xA6");
  mx_buf_release(&b);
  /* long values are cut after a whole word, never inside a token (a
   * secret's prefix would escape the bot's redactor) */
  struct llm_tool_call longc = {"c", "shell.eval", "{\"command\":\"psql -h db.example.org -c select_everything "
                                                 "PGPASSWORD=AbCdEfGhIjKlMnOpQrStUvWxYz\"}"};
  mx_buf_init(&b, 1024);
  assert_int_equal(llm_progress_text(&longc, 1, &b), MX_OK);
  assert_string_equal(mx_buf_cstr(&b), "running shell.eval psql -h db.example.org -c select_everything \xE2\x80\xA6\xE2\x80\xA6");
  mx_buf_release(&b);
}

static void stuck_same_call_same_result(void **state)
{
  (void)state;
  struct llm_stuck s;
  llm_stuck_init(&s);
  assert_int_equal(llm_stuck_push(&s, "fs.list", "{}", "x"), 0);
  assert_int_equal(llm_stuck_push(&s, "fs.list", "{}", "x"), 0);
  assert_int_equal(llm_stuck_push(&s, "fs.list", "{}", "y"), 0); /* result changed: progress */
  assert_int_equal(llm_stuck_push(&s, "fs.list", "{}", "y"), 0);
  assert_int_equal(llm_stuck_push(&s, "fs.list", "{}", "y"), 1);
  llm_stuck_free(&s);
}

static void stuck_abab(void **state)
{
  (void)state;
  struct llm_stuck s;
  llm_stuck_init(&s);
  assert_int_equal(llm_stuck_push(&s, "a", "{}", "1"), 0);
  assert_int_equal(llm_stuck_push(&s, "b", "{}", "2"), 0);
  assert_int_equal(llm_stuck_push(&s, "a", "{}", "1"), 0);
  assert_int_equal(llm_stuck_push(&s, "b", "{}", "2"), 1);
  llm_stuck_free(&s);
  llm_stuck_init(&s);
  assert_int_equal(llm_stuck_push(&s, "a", "{}", "1"), 0);
  assert_int_equal(llm_stuck_push(&s, "b", "{}", "2"), 0);
  assert_int_equal(llm_stuck_push(&s, "a", "{}", "1"), 0);
  assert_int_equal(llm_stuck_push(&s, "b", "{}", "3"), 0); /* B's result changed */
  assert_int_equal(llm_stuck_push(&s, "c", "{}", "1"), 0);
  llm_stuck_free(&s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(args_from_string_object_and_empty),
      cmocka_unit_test(args_invalid_say_what_is_wrong),
      cmocka_unit_test(ids_are_nine_alphanumerics_and_differ),
      cmocka_unit_test(extract_tool_call_tags),
      cmocka_unit_test(extract_bare_json_and_ignore_unknown),
      cmocka_unit_test(history_json_round_trip),
      cmocka_unit_test(truncate_keeps_head_and_tail_with_marker),
      cmocka_unit_test(progress_text_names_calls),
      cmocka_unit_test(stuck_same_call_same_result),
      cmocka_unit_test(stuck_abab),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
