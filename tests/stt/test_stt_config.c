/*
 * tests/stt/test_stt_config.c - unit tests of the `speech` config block
 * (defaults, every error with its file and key path, the API key never in
 * a message) and of the audio probe on synthetic WAV/Ogg bytes and garbage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "../docs/doc_keys.h"
#include "llm_stt.h"
#include "mx_util.h"

static mx_err parse(const char *json, struct llm_stt_config *c, char *err)
{
  cJSON *j = cJSON_Parse(json);
  mx_err rc;

  assert_non_null(j);
  rc = llm_stt_config_parse(j, "/etc/mxfleet/config.json", "speech", c, err);
  cJSON_Delete(j);
  return rc;
}

static void expect_error(const char *json, const char *msg)
{
  struct llm_stt_config c;
  char err[MX_ERRBUF_LEN] = "";

  assert_int_not_equal(parse(json, &c, err), MX_OK);
  assert_string_equal(err, msg);
  assert_null(c.base_url); /* released on failure */
}

static void test_defaults(void **state)
{
  struct llm_stt_config c;
  char err[MX_ERRBUF_LEN];
  (void)state;

  assert_int_equal(parse("{\"provider\":\"openai\"}", &c, err), MX_OK);
  assert_int_equal(c.provider, LLM_STT_OPENAI);
  assert_string_equal(c.base_url, "https://api.openai.com");
  assert_string_equal(c.model, "whisper-1");
  assert_int_equal(c.convert, 0);
  assert_int_equal(c.max_duration_s, 120);
  assert_null(c.api_key);
  llm_stt_config_release(&c);

  assert_int_equal(parse("{\"provider\":\"whisper.cpp\",\"base_url\":\"http://127.0.0.1:8080/\",\"language\":\"auto\"}",
                         &c, err),
                   MX_OK);
  assert_string_equal(c.base_url, "http://127.0.0.1:8080");
  assert_int_equal(c.convert, 1);
  assert_string_equal(c.language, "auto");
  llm_stt_config_release(&c);

  assert_int_equal(parse("{\"provider\":\"command\",\"command\":[\"pocketsphinx_continuous\",\"-infile\",\"{wav}\"],"
                         "\"max_duration_s\":30,\"timeout_s\":20,\"max_bytes\":1000000}",
                         &c, err),
                   MX_OK);
  assert_int_equal(c.command_n, 3);
  assert_string_equal(c.command[2], "{wav}");
  assert_null(c.command[3]);
  assert_int_equal(c.max_duration_s, 30);
  assert_int_equal(c.max_bytes, 1000000);
  assert_string_equal(c.opusdec, "opusdec");
  llm_stt_config_release(&c);
}

static void test_api_key_sources(void **state)
{
  struct llm_stt_config c;
  char err[MX_ERRBUF_LEN], path[] = "/tmp/mxh-stt-key-XXXXXX", json[256];
  FILE *f;
  int fd = mkstemp(path);
  (void)state;

  assert_true(fd >= 0);
  f = fdopen(fd, "w");
  fputs("sk-test-secret-123\n", f);
  fclose(f);
  snprintf(json, sizeof json, "{\"provider\":\"openai\",\"api_key_file\":\"%s\"}", path);
  assert_int_equal(parse(json, &c, err), MX_OK);
  assert_string_equal(c.api_key, "sk-test-secret-123");
  llm_stt_config_release(&c);
  unlink(path);
  snprintf(json, sizeof json, "{\"provider\":\"openai\",\"api_key_file\":\"%s\"}", path);
  {
    char msg[512];
    snprintf(msg, sizeof msg, "/etc/mxfleet/config.json: speech.api_key_file: cannot read '%s'", path);
    expect_error(json, msg);
  }
  setenv("MXH_STT_KEY", "sk-env-secret", 1);
  assert_int_equal(parse("{\"provider\":\"openai\",\"api_key_env\":\"MXH_STT_KEY\"}", &c, err), MX_OK);
  assert_string_equal(c.api_key, "sk-env-secret");
  llm_stt_config_release(&c);
  unsetenv("MXH_STT_KEY");
  expect_error("{\"provider\":\"openai\",\"api_key_env\":\"MXH_STT_KEY\"}",
               "/etc/mxfleet/config.json: speech.api_key_env: environment variable 'MXH_STT_KEY' is not set");
  expect_error("{\"provider\":\"openai\",\"api_key_env\":\"A\",\"api_key_file\":\"/x\"}",
               "/etc/mxfleet/config.json: speech: expected only one of api_key_file and api_key_env");
}

static void test_errors(void **state)
{
  (void)state;
  expect_error("{}", "/etc/mxfleet/config.json: speech.provider: required key is missing");
  expect_error("[]", "/etc/mxfleet/config.json: speech: expected an object");
  expect_error("{\"provider\":\"vosk\"}",
               "/etc/mxfleet/config.json: speech.provider: expected one of openai, whisper.cpp, command, got 'vosk'");
  expect_error("{\"provider\":\"openai\",\"modle\":\"x\"}", "/etc/mxfleet/config.json: speech: unknown key 'modle'");
  expect_error("{\"provider\":\"whisper.cpp\"}",
               "/etc/mxfleet/config.json: speech.base_url: required for provider 'whisper.cpp'");
  expect_error("{\"provider\":\"openai\",\"base_url\":\"ftp://x\"}",
               "/etc/mxfleet/config.json: speech.base_url: expected an http:// or https:// URL, got 'ftp://x'");
  expect_error("{\"provider\":\"command\"}", "/etc/mxfleet/config.json: speech.command: required for provider 'command'");
  expect_error("{\"provider\":\"command\",\"command\":[]}",
               "/etc/mxfleet/config.json: speech.command: expected a non-empty array of strings (argv)");
  expect_error("{\"provider\":\"command\",\"command\":[\"whisper-cli\",3]}",
               "/etc/mxfleet/config.json: speech.command[1]: expected a non-empty string");
  expect_error("{\"provider\":\"command\",\"command\":[\"whisper-cli\",\"-f\",\"x.wav\"]}",
               "/etc/mxfleet/config.json: speech.command: expected {input} or {wav} in one of the arguments, got "
               "'whisper-cli'");
  expect_error("{\"provider\":\"openai\",\"max_duration_s\":0}",
               "/etc/mxfleet/config.json: speech.max_duration_s: expected an integer from 1 to 3600, got '0'");
  expect_error("{\"provider\":\"openai\",\"timeout_s\":\"60\"}",
               "/etc/mxfleet/config.json: speech.timeout_s: expected an integer from 1 to 600, got '\"60\"'");
  expect_error("{\"provider\":\"openai\",\"convert\":1}", "/etc/mxfleet/config.json: speech.convert: expected true or "
                                                         "false");
}

static void test_load_file(void **state)
{
  struct llm_stt_config c;
  char err[MX_ERRBUF_LEN], path[] = "/tmp/mxh-stt-cfg-XXXXXX", msg[600];
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  (void)state;

  fputs("{\"speech\":{\"provider\":\"command\",\"command\":[\"x\",\"{input}\"],\"bogus\":1}}", f);
  fclose(f);
  assert_int_equal(llm_stt_config_load(path, &c, err), MX_ERR_CONFIG);
  snprintf(msg, sizeof msg, "%s: speech: unknown key 'bogus'", path);
  assert_string_equal(err, msg);
  unlink(path);
}

/* api_key_file relative to the config file's directory, not the cwd. */
static void test_relative_key_file(void **state)
{
  struct llm_stt_config c;
  char err[MX_ERRBUF_LEN], dir[] = "/tmp/mxh-stt-rel-XXXXXX", cfg[256], key[256];
  FILE *f;
  (void)state;

  assert_non_null(mkdtemp(dir));
  snprintf(cfg, sizeof cfg, "%s/mxfleet.json", dir);
  snprintf(key, sizeof key, "%s/stt.key", dir);
  f = fopen(key, "w");
  fputs("sk-relative\n", f);
  fclose(f);
  f = fopen(cfg, "w");
  fputs("{\"speech\":{\"provider\":\"openai\",\"api_key_file\":\"stt.key\"}}", f);
  fclose(f);
  assert_int_equal(llm_stt_config_load(cfg, &c, err), MX_OK);
  assert_string_equal(c.api_key, "sk-relative");
  llm_stt_config_release(&c);
  unlink(key);
  unlink(cfg);
  rmdir(dir);
}

/* A minimal PCM WAV header + data of secs seconds at 16 kHz mono 16-bit. */
static unsigned char *make_wav(double secs, size_t *n)
{
  uint32_t data = (uint32_t)(secs * 32000);
  unsigned char *w = calloc(1, 44 + data);
  uint32_t v;

  memcpy(w, "RIFF", 4);
  v = 36 + data;
  memcpy(w + 4, &v, 4);
  memcpy(w + 8, "WAVEfmt ", 8);
  v = 16;
  memcpy(w + 16, &v, 4);
  w[20] = 1;
  w[22] = 1;
  v = 16000;
  memcpy(w + 24, &v, 4);
  v = 32000;
  memcpy(w + 28, &v, 4);
  w[32] = 2;
  w[34] = 16;
  memcpy(w + 36, "data", 4);
  memcpy(w + 40, &data, 4);
  *n = 44 + data;
  return w;
}

static void test_probe(void **state)
{
  struct llm_stt_config c;
  struct llm_stt_audio_info info;
  char err[MX_ERRBUF_LEN];
  size_t n;
  unsigned char *w;
  (void)state;

  llm_stt_config_init(&c);
  w = make_wav(2.5, &n);
  assert_int_equal(llm_stt_probe(&c, w, n, "audio/wav", &info, err), MX_OK);
  assert_string_equal(info.format, "wav");
  assert_true(info.duration_s > 2.49 && info.duration_s < 2.51);
  assert_int_equal(info.channels, 1);
  free(w);
  w = make_wav(312.2, &n);
  assert_int_equal(llm_stt_probe(&c, w, n, "audio/wav", &info, err), MX_ERR_TOO_BIG);
  assert_string_equal(err, "voice message is 313 s long; the limit is 120 s");
  c.max_bytes = 1000;
  assert_int_equal(llm_stt_probe(&c, w, n, "audio/wav", &info, err), MX_ERR_TOO_BIG);
  assert_string_equal(err, "voice message is 9990444 bytes; the limit is 1000 bytes");
  free(w);
  c.max_bytes = LLM_STT_MAX_BYTES;
  assert_int_equal(llm_stt_probe(&c, "\xde\xad\xbe\xef garbage", 12, "audio/ogg", &info, err), MX_ERR_INVALID);
  assert_string_equal(err, "voice message (audio/ogg, 12 bytes): expected Ogg/Opus or WAV audio, got data starting "
                           "with 'de ad be ef 20 67 61 72'");
  assert_int_equal(llm_stt_probe(&c, "OggS\0\0\0", 7, NULL, &info, err), MX_ERR_INVALID);
  assert_string_equal(err, "voice message (no type): broken Ogg page at byte 0");
  assert_int_equal(llm_stt_probe(&c, "", 0, NULL, &info, err), MX_ERR_INVALID);
}

/* Appends one Ogg page (CRC left zero: the probe does not check it). */
static size_t ogg_page(unsigned char *out, int htype, uint64_t granule, const void *body, size_t n)
{
  size_t off = 0, nseg = n / 255 + 1;

  memcpy(out, "OggS", 4);
  out[4] = 0;
  out[5] = (unsigned char)htype;
  for (int i = 0; i < 8; i++)
    out[6 + i] = (unsigned char)(granule >> (8 * i));
  memcpy(out + 14, "\x11\x22\x33\x44", 4); /* serial */
  memset(out + 18, 0, 8);                    /* sequence, crc */
  out[26] = (unsigned char)nseg;
  for (size_t i = 0; i < nseg; i++)
    out[27 + i] = (unsigned char)(i + 1 < nseg ? 255 : n % 255);
  off = 27 + nseg;
  memcpy(out + off, body, n);
  return off + n;
}

/* OpusHead (pre-skip 312) + OpusTags + a page without a packet end
 * (granule -1) + a last page at 3 s. */
static size_t make_ogg(unsigned char *o, const char *first)
{
  unsigned char head[19] = "OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
  unsigned char tags[16] = "OpusTags";
  unsigned char audio[300] = {0};
  size_t n = 0;

  if (first)
    memcpy(head, first, 8);
  n += ogg_page(o + n, 2, 0, head, sizeof head);
  n += ogg_page(o + n, 0, 0, tags, sizeof tags);
  n += ogg_page(o + n, 0, UINT64_MAX, audio, sizeof audio);
  n += ogg_page(o + n, 4, 312 + 48000 * 3, audio, 100);
  return n;
}

static void test_probe_ogg(void **state)
{
  struct llm_stt_config c;
  struct llm_stt_audio_info info;
  unsigned char o[2048], m[2048];
  char err[MX_ERRBUF_LEN];
  size_t n;
  (void)state;

  llm_stt_config_init(&c);
  n = make_ogg(o, NULL);
  assert_int_equal(llm_stt_probe(&c, o, n, "audio/ogg", &info, err), MX_OK);
  assert_string_equal(info.format, "ogg/opus");
  assert_true(info.duration_s > 2.9999 && info.duration_s < 3.0001);
  assert_int_equal(info.channels, 1);
  assert_int_equal(info.sample_rate, 48000);
  c.max_duration_s = 2;
  assert_int_equal(llm_stt_probe(&c, o, n, "audio/ogg", &info, err), MX_ERR_TOO_BIG);
  assert_string_equal(err, "voice message is 3 s long; the limit is 2 s");
  c.max_duration_s = 120;
  assert_int_equal(llm_stt_probe(&c, o, n - 1, "audio/ogg", &info, err), MX_ERR_INVALID);
  assert_string_equal(err, "voice message (audio/ogg): truncated Ogg page at byte 420");
  n = make_ogg(o, "\x01vorbis");
  assert_int_equal(llm_stt_probe(&c, o, n, "audio/ogg", &info, err), MX_ERR_INVALID);
  assert_string_equal(err, "voice message (audio/ogg): expected Ogg/Opus audio, got Ogg/Vorbis");
  n = make_ogg(o, "OpusHeaX");
  assert_int_equal(llm_stt_probe(&c, o, n, NULL, &info, err), MX_ERR_INVALID);
  assert_string_equal(err, "voice message (no type): expected an OpusHead in the first Ogg page");

  /* Damaged copies: always a clean answer, never a read out of bounds (ASan). */
  n = make_ogg(o, NULL);
  srand(7);
  for (int i = 0; i < 5000; i++) {
    size_t len = (size_t)rand() % (n + 1);
    mx_err rc;
    memcpy(m, o, n);
    for (int k = rand() % 4; k >= 0; k--)
      m[(size_t)rand() % n] = (unsigned char)rand();
    rc = llm_stt_probe(&c, m, len, "audio/ogg", &info, err);
    assert_true(rc == MX_OK || rc == MX_ERR_INVALID || rc == MX_ERR_TOO_BIG);
    if (rc == MX_OK)
      assert_true(info.duration_s > 0 && info.duration_s <= 120);
  }
}

/* docs/config-speech.md has a section for every key the parser accepts and
 * none for a key it rejects. */
static void test_docs_and_parser_agree_on_keys(void **state)
{
  (void)state;
  int keys = 0;
  assert_int_equal(doc_keys_check(MXFLEET_DOCS_DIR "/config-speech.md", llm_stt_config_each_key, "speech.", 1,
                                  &keys), 0);
  assert_true(keys >= 10);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults), cmocka_unit_test(test_api_key_sources), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_load_file), cmocka_unit_test(test_relative_key_file), cmocka_unit_test(test_probe),
      cmocka_unit_test(test_probe_ogg), cmocka_unit_test(test_docs_and_parser_agree_on_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
