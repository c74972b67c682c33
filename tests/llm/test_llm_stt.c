/* test_llm_stt.c - speech to text: the openai and whisper.cpp multipart
 * requests against the scripted server (fields, file part, key header,
 * errors), the command backend (argv without a shell, temporary copy
 * removed, exit status and timeout), config errors, and a real
 * espeak-ng -> sox -> pocketsphinx round trip when those are installed.
 * Label: integration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "llm_stt.h"
#include "llm_test_server.h"
#include "mx_util.h"

extern char **environ;

static struct llm_ts ts;
static int run_no;

static int setup(void **state)
{
  (void)state;
  setenv("STT_TEST_KEY", "sk-stt-secret", 1);
  return llm_ts_start(&ts);
}

static int teardown(void **state)
{
  (void)state;
  llm_ts_stop(&ts);
  return 0;
}

static struct llm_stt_cfg *cfg_from(const char *json, char *err)
{
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  struct llm_stt_cfg *c = NULL;
  mx_err rc = llm_stt_config_parse(j, "mxfleet.json", "llm.stt", &c, err);
  cJSON_Delete(j);
  return rc ? NULL : c;
}

static void openai_multipart_request(void **state)
{
  (void)state;
  char json[512], err[MX_ERRBUF_LEN], run[16];
  snprintf(run, sizeof(run), "t%d", ++run_no);
  snprintf(json, sizeof(json),
           "{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/s/stt_ok/%s/v1\",\"api_key_env\":\"STT_TEST_KEY\","
           "\"language\":\"en\"}",
           ts.port, run);
  struct llm_stt_cfg *c = cfg_from(json, err);
  assert_non_null(c);
  struct mx_buf text = MX_BUF_INIT(4096);
  char audio[1000];
  memset(audio, 'x', sizeof(audio));
  memcpy(audio, "OggS", 4);
  assert_int_equal(llm_stt_transcribe(c, audio, sizeof(audio), "audio/ogg", &text, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&text), "reboot pi three");
  cJSON *reqs = llm_ts_requests(&ts, "stt_ok", run);
  cJSON *r0 = cJSON_GetArrayItem(reqs, 0);
  assert_non_null(strstr(cJSON_GetObjectItem(r0, "path")->valuestring, "/v1/audio/transcriptions"));
  cJSON *h = cJSON_GetObjectItem(r0, "headers");
  assert_string_equal(cJSON_GetObjectItem(h, "authorization")->valuestring, "Bearer sk-stt-secret");
  assert_non_null(strstr(cJSON_GetObjectItem(h, "content-type")->valuestring, "multipart/form-data"));
  cJSON *b = cJSON_GetObjectItem(r0, "body");
  assert_string_equal(cJSON_GetObjectItem(b, "model")->valuestring, "whisper-1");
  assert_string_equal(cJSON_GetObjectItem(b, "response_format")->valuestring, "json");
  assert_string_equal(cJSON_GetObjectItem(b, "language")->valuestring, "en");
  cJSON *f = cJSON_GetObjectItem(b, "file");
  assert_string_equal(cJSON_GetObjectItem(f, "filename")->valuestring, "voice.ogg");
  assert_string_equal(cJSON_GetObjectItem(f, "type")->valuestring, "audio/ogg");
  assert_int_equal(cJSON_GetObjectItem(f, "size")->valueint, 1000);
  assert_int_equal(strncmp(cJSON_GetObjectItem(f, "head")->valuestring, "OggS", 4), 0);
  cJSON_Delete(reqs);
  mx_buf_release(&text);
  llm_stt_config_free(c);
}

static void whisper_cpp_request_and_errors(void **state)
{
  (void)state;
  char json[512], err[MX_ERRBUF_LEN], run[16];
  snprintf(run, sizeof(run), "t%d", ++run_no);
  snprintf(json, sizeof(json), "{\"kind\":\"whisper_cpp\",\"base_url\":\"http://127.0.0.1:%d/s/stt_ok/%s/\"}",
           ts.port, run);
  struct llm_stt_cfg *c = cfg_from(json, err);
  assert_non_null(c);
  struct mx_buf text = MX_BUF_INIT(4096);
  assert_int_equal(llm_stt_transcribe(c, "RIFF....WAVE", 12, "audio/wav", &text, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&text), "reboot pi three");
  cJSON *reqs = llm_ts_requests(&ts, "stt_ok", run);
  cJSON *r0 = cJSON_GetArrayItem(reqs, 0);
  assert_non_null(strstr(cJSON_GetObjectItem(r0, "path")->valuestring, "/inference"));
  cJSON *b = cJSON_GetObjectItem(r0, "body");
  assert_string_equal(cJSON_GetObjectItem(b, "language")->valuestring, "auto");
  assert_null(cJSON_GetObjectItem(b, "model"));
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "file"), "filename")->valuestring, "voice.wav");
  assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r0, "headers"), "authorization"));
  cJSON_Delete(reqs);
  llm_stt_config_free(c);
  /* a rejected key, an empty note, an oversized one */
  snprintf(json, sizeof(json),
           "{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/s/stt_401/%s/v1\",\"api_key_env\":\"STT_TEST_KEY\","
           "\"max_bytes\":2048}",
           ts.port, run);
  c = cfg_from(json, err);
  assert_int_equal(llm_stt_transcribe(c, "x", 1, "audio/ogg", &text, err), MX_ERR_AUTH);
  assert_string_equal(err, "stt: the transcription server answered HTTP 401: Incorrect API key");
  assert_int_equal(llm_stt_transcribe(c, "x", 0, "audio/ogg", &text, err), MX_ERR_INVALID);
  static char big[4096];
  assert_int_equal(llm_stt_transcribe(c, big, sizeof(big), "audio/ogg", &text, err), MX_ERR_TOO_BIG);
  assert_string_equal(err, "stt: the voice message has 4096 bytes, over the limit of 2048");
  mx_buf_release(&text);
  llm_stt_config_free(c);
}

static void command_backend(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  /* sh only to print the path too; the backend itself never uses a shell */
  struct llm_stt_cfg *c = cfg_from("{\"kind\":\"command\",\"command\":[\"sh\",\"-c\",\"echo \\\"$0\\\"; cat \\\"$0\\\"\","
                                   "\"{file}\"]}",
                                   err);
  assert_non_null(c);
  struct mx_buf text = MX_BUF_INIT(4096);
  assert_int_equal(llm_stt_transcribe(c, "hello from the command\n", 23, "audio/ogg", &text, err), MX_OK);
  char *nl = strchr(text.buf, '\n');
  assert_non_null(nl);
  *nl = '\0';
  assert_non_null(strstr(text.buf, "/voice.ogg"));
  assert_int_not_equal(access(text.buf, F_OK), 0); /* the temporary copy is gone */
  assert_string_equal(nl + 1, "hello from the command");
  llm_stt_config_free(c);
  mx_buf_reset(&text);
  c = cfg_from("{\"kind\":\"command\",\"command\":[\"sh\",\"-c\",\"echo no model >&2; exit 3\",\"{file}\"]}", err);
  assert_int_equal(llm_stt_transcribe(c, "a", 1, "audio/ogg", &text, err), MX_ERR_IO);
  assert_string_equal(err, "stt: 'sh' exited with status 3: no model");
  llm_stt_config_free(c);
  c = cfg_from("{\"kind\":\"command\",\"command\":[\"true\",\"{file}\"]}", err);
  assert_int_equal(llm_stt_transcribe(c, "a", 1, "audio/ogg", &text, err), MX_ERR_NOT_FOUND);
  llm_stt_config_free(c);
  /* sh starts sleep as its child: the whole process group is killed */
  c = cfg_from("{\"kind\":\"command\",\"command\":[\"sh\",\"-c\",\"sleep 20; echo late\",\"{file}\"],"
               "\"timeout_ms\":300}", err);
  int64_t t0 = mx_mono_ms();
  assert_int_equal(llm_stt_transcribe(c, "a", 1, "audio/ogg", &text, err), MX_ERR_TIMEOUT);
  assert_true(mx_mono_ms() - t0 < 3000);
  assert_string_equal(err, "stt: 'sh' did not finish within 300 ms");
  llm_stt_config_free(c);
  mx_buf_release(&text);
}

static void config_errors(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  assert_null(cfg_from("{\"kind\":\"vosk\"}", err));
  assert_string_equal(err, "mxfleet.json: llm.stt.kind: expected one of openai, whisper_cpp, command, got 'vosk'");
  assert_null(cfg_from("{\"kind\":\"command\",\"command\":[\"pocketsphinx\"]}", err));
  assert_string_equal(err, "mxfleet.json: llm.stt.command: expected an argument containing {file}, got none");
  assert_null(cfg_from("{\"kind\":\"openai\"}", err));
  assert_string_equal(err, "mxfleet.json: llm.stt.base_url: required key is missing");
  assert_null(cfg_from("{\"kind\":\"openai\",\"base_url\":\"http://x\",\"voice\":1}", err));
  assert_string_equal(err, "mxfleet.json: llm.stt: unknown key 'voice'");
}

static int run_cmd(char *const argv[])
{
  pid_t pid;
  if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
    return -1;
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void real_pocketsphinx_round_trip(void **state)
{
  (void)state;
  if (access("/usr/bin/pocketsphinx_continuous", X_OK) || access("/usr/bin/espeak-ng", X_OK) ||
      access("/usr/bin/sox", X_OK))
    skip();
  char dir[] = "/tmp/mxfleet-stt-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char wav[96], wav16[96];
  snprintf(wav, sizeof(wav), "%s/say.wav", dir);
  snprintf(wav16, sizeof(wav16), "%s/say16.wav", dir);
  char *say[] = {"espeak-ng", "-s", "130", "-w", wav, "yes", NULL};
  char *conv[] = {"sox", wav, "-r", "16000", "-c", "1", "-b", "16", wav16, NULL};
  assert_int_equal(run_cmd(say), 0);
  assert_int_equal(run_cmd(conv), 0);
  struct mx_buf audio = MX_BUF_INIT(16 << 20);
  char err[MX_ERRBUF_LEN];
  assert_int_equal(mx_file_read(wav16, 16 << 20, &audio, err), MX_OK);
  struct llm_stt_cfg *c = cfg_from("{\"kind\":\"command\",\"command\":[\"pocketsphinx_continuous\",\"-infile\","
                                   "\"{file}\",\"-logfn\",\"/dev/null\"],\"timeout_ms\":60000}",
                                   err);
  struct mx_buf text = MX_BUF_INIT(4096);
  assert_int_equal(llm_stt_transcribe(c, audio.buf, audio.len, "audio/wav", &text, err), MX_OK);
  assert_string_equal(mx_buf_cstr(&text), "yes");
  llm_stt_config_free(c);
  mx_buf_release(&text);
  mx_buf_release(&audio);
  unlink(wav);
  unlink(wav16);
  rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(openai_multipart_request),
      cmocka_unit_test(whisper_cpp_request_and_errors),
      cmocka_unit_test(command_backend),
      cmocka_unit_test(config_errors),
      cmocka_unit_test(real_pocketsphinx_round_trip),
  };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  curl_global_cleanup();
  return rc;
}
