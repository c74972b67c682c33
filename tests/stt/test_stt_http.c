/*
 * tests/stt/test_stt_http.c - integration: the HTTP providers against
 * fake_stt_server.py (Python stdlib, started and stopped here), which speaks
 * the OpenAI transcription API and whisper.cpp's /inference and records
 * what it received: the multipart fields, the file (name, type, size,
 * sha256, first bytes) and the Authorization header. Also a 401 whose error
 * must not show the key, and a server that is not there.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "llm_stt.h"
#include "mx_crypto.h"
#include "stt_test_util.h"

static char dir[] = "/tmp/mxh-stt-http-XXXXXX";
static char ogg[4096], port_file[4200], record_file[4200];
static pid_t server = -1;
static int port;

static int start_server(void)
{
  char *argv[] = {"/usr/bin/python3", STT_TEST_DIR "/fake_stt_server.py", port_file, record_file, NULL};
  int64_t deadline = mx_mono_ms() + 15000;
  struct mx_buf b = MX_BUF_INIT(64);

  server = fork();
  if (server == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    execv(argv[0], argv);
    _exit(127);
  }
  /* Poll for the port file (written atomically) until the deadline. */
  while (mx_mono_ms() < deadline) {
    if (mx_file_read(port_file, 64, &b, NULL) == MX_OK && b.len > 0) {
      port = atoi(mx_buf_cstr(&b));
      mx_buf_release(&b);
      return port > 0 ? 0 : -1;
    }
    mx_buf_release(&b);
    mx_buf_init(&b, 64);
    usleep(20 * 1000);
  }
  return -1;
}

static int setup(void **state)
{
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!mkdtemp(dir))
    return -1;
  snprintf(port_file, sizeof port_file, "%s/port", dir);
  snprintf(record_file, sizeof record_file, "%s/record.json", dir);
  if (make_voice(dir, "reboot", "reboot pi three", ogg, sizeof ogg) != 0)
    return -1;
  return start_server();
}

static int teardown(void **state)
{
  (void)state;
  if (server > 0) {
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
  }
  rm_tree(dir);
  curl_global_cleanup();
  return 0;
}

static cJSON *last_record(void)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  cJSON *j;

  assert_int_equal(mx_file_read(record_file, b.max, &b, NULL), MX_OK);
  j = cJSON_Parse(mx_buf_cstr(&b));
  mx_buf_release(&b);
  assert_non_null(j);
  unlink(record_file);
  return j;
}

static const char *field(const cJSON *rec, const char *name)
{
  const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "fields"), name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *file_part(const cJSON *rec)
{
  const cJSON *f = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "files"), "file");
  assert_non_null(f);
  return f;
}

static mx_err transcribe(const char *json_fmt, struct mx_buf *audio, char **text, char *err)
{
  struct llm_stt_config c;
  char json[2048];
  cJSON *j;
  mx_err rc;

  snprintf(json, sizeof json, json_fmt, port);
  j = cJSON_Parse(json);
  assert_non_null(j);
  assert_int_equal(llm_stt_config_parse(j, "test", "speech", &c, err), MX_OK);
  cJSON_Delete(j);
  rc = llm_stt_transcribe(&c, audio->buf, audio->len, "audio/ogg", text, err);
  llm_stt_config_release(&c);
  return rc;
}

static void load_ogg(struct mx_buf *a)
{
  mx_buf_init(a, MX_BUF_MAX_MEDIA);
  assert_int_equal(mx_file_read(ogg, a->max, a, NULL), MX_OK);
}

static void test_openai_multipart(void **state)
{
  struct mx_buf a;
  char err[MX_ERRBUF_LEN], *text = NULL, sha[65];
  cJSON *rec;
  const cJSON *f;
  (void)state;

  load_ogg(&a);
  setenv("MXH_STT_TEST_KEY", "sk-test-abc123", 1);
  assert_int_equal(transcribe("{\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d\",\"model\":\"whisper-1\","
                              "\"language\":\"en\",\"prompt\":\"device names: pi three\","
                              "\"api_key_env\":\"MXH_STT_TEST_KEY\"}",
                              &a, &text, err),
                   MX_OK);
  assert_string_equal(text, "reboot pi three");
  free(text);
  rec = last_record();
  assert_string_equal(cJSON_GetObjectItem(rec, "path")->valuestring, "/v1/audio/transcriptions");
  assert_string_equal(cJSON_GetObjectItem(rec, "authorization")->valuestring, "Bearer sk-test-abc123");
  assert_string_equal(cJSON_GetObjectItem(rec, "content_type")->valuestring, "multipart/form-data");
  assert_string_equal(field(rec, "model"), "whisper-1");
  assert_string_equal(field(rec, "language"), "en");
  assert_string_equal(field(rec, "prompt"), "device names: pi three");
  assert_string_equal(field(rec, "response_format"), "json");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(rec, "fields")), 4);
  f = file_part(rec);
  /* Element's Ogg/Opus goes as is: same bytes, named and typed as Ogg. */
  assert_string_equal(cJSON_GetObjectItem(f, "filename")->valuestring, "voice.ogg");
  assert_string_equal(cJSON_GetObjectItem(f, "content_type")->valuestring, "audio/ogg");
  assert_int_equal(cJSON_GetObjectItem(f, "size")->valueint, (int)a.len);
  mx_sha256_hex(a.buf, a.len, sha);
  assert_string_equal(cJSON_GetObjectItem(f, "sha256")->valuestring, sha);
  cJSON_Delete(rec);
  unsetenv("MXH_STT_TEST_KEY");
  mx_buf_release(&a);
}

static void test_whisper_cpp_gets_16k_mono_wav(void **state)
{
  struct mx_buf a;
  char err[MX_ERRBUF_LEN], *text = NULL;
  const char *head;
  cJSON *rec;
  const cJSON *f;
  (void)state;

  load_ogg(&a);
  assert_int_equal(transcribe("{\"provider\":\"whisper.cpp\",\"base_url\":\"http://127.0.0.1:%d/\",\"language\":\"auto\"}",
                              &a, &text, err),
                   MX_OK);
  assert_string_equal(text, "check disk usage");
  free(text);
  rec = last_record();
  assert_string_equal(cJSON_GetObjectItem(rec, "path")->valuestring, "/inference");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(rec, "authorization")));
  assert_null(field(rec, "model"));
  assert_string_equal(field(rec, "language"), "auto");
  assert_string_equal(field(rec, "response_format"), "json");
  assert_string_equal(field(rec, "temperature"), "0.0");
  f = file_part(rec);
  assert_string_equal(cJSON_GetObjectItem(f, "filename")->valuestring, "voice.wav");
  assert_string_equal(cJSON_GetObjectItem(f, "content_type")->valuestring, "audio/wav");
  head = cJSON_GetObjectItem(f, "head_hex")->valuestring;
  /* "RIFF" .... "WAVEfmt " 16 | PCM=1 | channels=1 | 16000 Hz | 32000 B/s | align 2 | 16 bits */
  assert_memory_equal(head, "52494646", 8);
  assert_memory_equal(head + 16, "57415645666d7420", 16);
  assert_memory_equal(head + 40, "0100" "0100" "803e0000" "007d0000" "0200" "1000", 32);
  cJSON_Delete(rec);
  mx_buf_release(&a);
}

/* A stereo recording (not what Element sends, but other clients may) is
 * downmixed: whisper.cpp still gets one channel. */
static void test_stereo_is_downmixed(void **state)
{
  struct mx_buf a = MX_BUF_INIT(MX_BUF_MAX_MEDIA);
  char wav[4200], st_wav[4200], st_ogg[4200], err[MX_ERRBUF_LEN], *text = NULL;
  char *mix[] = {"sox", wav, "-c", "2", st_wav, NULL};
  char *enc[] = {"opusenc", "--quiet", st_wav, st_ogg, NULL};
  cJSON *rec;
  const char *head;
  (void)state;

  snprintf(wav, sizeof wav, "%s/reboot.wav", dir);
  snprintf(st_wav, sizeof st_wav, "%s/stereo.wav", dir);
  snprintf(st_ogg, sizeof st_ogg, "%s/stereo.ogg", dir);
  assert_int_equal(run_prog(mix), 0);
  assert_int_equal(run_prog(enc), 0);
  assert_int_equal(mx_file_read(st_ogg, a.max, &a, NULL), MX_OK);
  assert_int_equal(a.buf[0x25], 2); /* OpusHead channel count: really stereo */
  assert_int_equal(transcribe("{\"provider\":\"whisper.cpp\",\"base_url\":\"http://127.0.0.1:%d\"}", &a, &text, err),
                   MX_OK);
  free(text);
  rec = last_record();
  head = cJSON_GetObjectItem(file_part(rec), "head_hex")->valuestring;
  assert_memory_equal(head + 40, "0100" "0100" "803e0000", 16);
  cJSON_Delete(rec);
  mx_buf_release(&a);
}

static void test_errors_never_show_the_key(void **state)
{
  struct mx_buf a;
  char err[MX_ERRBUF_LEN], *text = NULL, want[256];
  (void)state;

  load_ogg(&a);
  setenv("MXH_STT_TEST_KEY", "wrong", 1);
  assert_int_equal(transcribe("{\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d\","
                              "\"api_key_env\":\"MXH_STT_TEST_KEY\"}",
                              &a, &text, err),
                   MX_ERR_AUTH);
  snprintf(want, sizeof want,
           "speech: http://127.0.0.1:%d/v1/audio/transcriptions: HTTP 401: Incorrect API key provided", port);
  assert_string_equal(err, want);
  assert_null(text);
  unsetenv("MXH_STT_TEST_KEY");
  /* Nobody listens on port 9 of loopback. */
  {
    int saved = port;
    port = 9;
    assert_int_equal(transcribe("{\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d\",\"timeout_s\":5}", &a,
                                &text, err),
                     MX_ERR_UNAVAILABLE);
    port = saved;
  }
  assert_non_null(strstr(err, "speech: http://127.0.0.1:9/v1/audio/transcriptions: "));
  mx_buf_release(&a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_openai_multipart),
      cmocka_unit_test(test_whisper_cpp_gets_16k_mono_wav),
      cmocka_unit_test(test_stereo_is_downmixed),
      cmocka_unit_test(test_errors_never_show_the_key),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
