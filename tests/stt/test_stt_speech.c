/*
 * tests/stt/test_stt_speech.c - integration: real speech through the
 * "command" provider. espeak-ng says a command, opusenc makes an Element-
 * style Ogg/Opus voice message, llm_stt_transcribe converts it (opusdec +
 * sox) and Debian pocketsphinx with tests/stt/cmds.gram recognises it.
 * Also: limits, garbage and truncated audio, a missing or hanging program,
 * and no scratch file left behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "llm_stt.h"
#include "stt_test_util.h"

static char dir[] = "/tmp/mxh-stt-speech-XXXXXX";
static char scratch[4096];
static char ogg[4096];

static int setup(void **state)
{
  (void)state;
  if (!mkdtemp(dir))
    return -1;
  snprintf(scratch, sizeof scratch, "%s/scratch", dir);
  if (mx_mkdir_p(scratch, 0700, NULL) != MX_OK)
    return -1;
  return make_voice(dir, "disk", "check disk usage", ogg, sizeof ogg);
}

static int teardown(void **state)
{
  (void)state;
  rm_tree(scratch);
  rm_tree(dir);
  return 0;
}

static void pocketsphinx_config(struct llm_stt_config *c)
{
  char json[10000];
  char err[MX_ERRBUF_LEN];
  cJSON *j;

  snprintf(json, sizeof json,
           "{\"provider\":\"command\",\"command\":[\"pocketsphinx_continuous\",\"-infile\",\"{wav}\",\"-jsgf\","
           "\"%s/cmds.gram\",\"-logfn\",\"/dev/null\"],\"tmp_dir\":\"%s\",\"timeout_s\":30}",
           STT_TEST_DIR, scratch);
  j = cJSON_Parse(json);
  assert_non_null(j);
  assert_int_equal(llm_stt_config_parse(j, "test", "speech", c, err), MX_OK);
  cJSON_Delete(j);
}

static void read_ogg(const char *path, struct mx_buf *b)
{
  char err[MX_ERRBUF_LEN];
  mx_buf_init(b, MX_BUF_MAX_MEDIA);
  assert_int_equal(mx_file_read(path, MX_BUF_MAX_MEDIA, b, err), MX_OK);
}

static void test_pocketsphinx_exact(void **state)
{
  struct llm_stt_config c;
  struct mx_buf a;
  char err[MX_ERRBUF_LEN], *text = NULL, ogg2[4096];
  (void)state;

  pocketsphinx_config(&c);
  read_ogg(ogg, &a);
  assert_int_equal(llm_stt_transcribe(&c, a.buf, a.len, "audio/ogg", &text, err), MX_OK);
  assert_string_equal(text, "check disk usage");
  free(text);
  mx_buf_release(&a);
  assert_int_equal(count_entries(scratch), 0);

  assert_int_equal(make_voice(dir, "docker", "restart docker", ogg2, sizeof ogg2), 0);
  read_ogg(ogg2, &a);
  assert_int_equal(llm_stt_transcribe(&c, a.buf, a.len, "audio/ogg", &text, err), MX_OK);
  assert_string_equal(text, "restart docker");
  free(text);
  mx_buf_release(&a);
  llm_stt_config_release(&c);
}

static void test_limits_and_bad_audio(void **state)
{
  struct llm_stt_config c;
  struct mx_buf a;
  char err[MX_ERRBUF_LEN], *text = NULL;
  (void)state;

  pocketsphinx_config(&c);
  read_ogg(ogg, &a);
  c.max_duration_s = 1; /* "check disk usage" is about 1.3 s */
  assert_int_equal(llm_stt_transcribe(&c, a.buf, a.len, "audio/ogg", &text, err), MX_ERR_TOO_BIG);
  assert_string_equal(err, "voice message is 2 s long; the limit is 1 s");
  assert_null(text);
  c.max_duration_s = 120;
  assert_int_equal(llm_stt_transcribe(&c, a.buf, a.len / 2, "audio/ogg", &text, err), MX_ERR_INVALID);
  assert_non_null(strstr(err, "voice message (audio/ogg): truncated Ogg page at byte "));
  assert_int_equal(llm_stt_transcribe(&c, "not audio at all", 16, "audio/ogg", &text, err), MX_ERR_INVALID);
  assert_string_equal(err, "voice message (audio/ogg, 16 bytes): expected Ogg/Opus or WAV audio, got data starting "
                           "with '6e 6f 74 20 61 75 64 69'");
  assert_null(text);
  assert_int_equal(count_entries(scratch), 0);
  mx_buf_release(&a);
  llm_stt_config_release(&c);
}

static mx_err transcribe_with(const char *json, char **text, char *err, int64_t *ms)
{
  struct llm_stt_config c;
  struct mx_buf a;
  cJSON *j = cJSON_Parse(json);
  int64_t t0 = mx_mono_ms();
  mx_err rc;

  assert_non_null(j);
  rc = llm_stt_config_parse(j, "test", "speech", &c, err);
  cJSON_Delete(j);
  if (rc)
    return rc;
  read_ogg(ogg, &a);
  rc = llm_stt_transcribe(&c, a.buf, a.len, "audio/ogg", text, err);
  *ms = mx_mono_ms() - t0;
  mx_buf_release(&a);
  llm_stt_config_release(&c);
  return rc;
}

static void test_command_failures(void **state)
{
  char err[MX_ERRBUF_LEN], *text = NULL;
  int64_t ms;
  (void)state;

  assert_int_equal(transcribe_with("{\"provider\":\"command\",\"command\":[\"mxh-no-such-recognizer\",\"{input}\"]}",
                                   &text, err, &ms),
                   MX_ERR_IO);
  assert_string_equal(err, "cannot run 'mxh-no-such-recognizer': No such file or directory");
  /* A hanging recogniser is stopped at the deadline, not waited for. */
  assert_int_equal(transcribe_with("{\"provider\":\"command\",\"timeout_s\":1,"
                                   "\"command\":[\"/bin/sh\",\"-c\",\"sleep 30\",\"sh\",\"{input}\"]}",
                                   &text, err, &ms),
                   MX_ERR_TIMEOUT);
  assert_string_equal(err, "speech.command: '/bin/sh' timed out");
  assert_true(ms < 5000);
  assert_int_equal(transcribe_with("{\"provider\":\"command\",\"command\":[\"/bin/sh\",\"-c\","
                                   "\"echo oops >&2; exit 3\",\"sh\",\"{input}\"]}",
                                   &text, err, &ms),
                   MX_ERR_UNAVAILABLE);
  assert_string_equal(err, "speech.command: '/bin/sh' exited with status 3: oops");
  assert_int_equal(transcribe_with("{\"provider\":\"command\",\"command\":[\"/bin/sh\",\"-c\","
                                   "\"test -s \\\"$1\\\" && printf '\\\\n  hello \\\\n world\\\\n'\",\"sh\",\"{input}\"]}",
                                   &text, err, &ms),
                   MX_OK);
  assert_string_equal(text, "hello world");
  free(text);
  assert_int_equal(transcribe_with("{\"provider\":\"command\",\"command\":[\"/bin/echo\",\"\",\"{input}\"]}", &text,
                                   err, &ms),
                   MX_ERR_CONFIG);
  assert_int_equal(transcribe_with("{\"provider\":\"command\",\"command\":[\"/bin/sh\",\"-c\",\"true\",\"{input}\"]}",
                                   &text, err, &ms),
                   MX_ERR_INVALID);
  assert_string_equal(err, "speech.command: no speech was recognised in the voice message");
  assert_int_equal(count_entries(scratch), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pocketsphinx_exact),
      cmocka_unit_test(test_limits_and_bad_audio),
      cmocka_unit_test(test_command_failures),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
