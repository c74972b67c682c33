/*
 * tests/fuzz/fuzz_ogg_opus.c - the voice message reader (llm/stt/
 * llm_stt_audio.c): the bytes of an m.audio attachment, Ogg/Opus as Element
 * records it or WAV, checked page by page before any program sees them; and
 * the transcript cleaner that a speech provider's answer goes through.
 * Properties: an accepted file has a format, a duration within the
 * limit; a refusal says why; a cleaned transcript is non-empty valid UTF-8
 * without leading, trailing or doubled spaces.
 */
#include "fuzz_util.h"

#include "llm_stt.h"
#include "llm_stt_int.h"
#include "mx_util.h"

static void probe(const uint8_t *data, size_t size)
{
  static struct llm_stt_config cfg;
  static int ready;
  if (!ready) {
    llm_stt_config_init(&cfg);
    ready = 1;
  }
  struct llm_stt_audio_info info;
  char err[MX_ERRBUF_LEN] = "";
  if (llm_stt_probe(&cfg, data, size, "audio/ogg", &info, err) == MX_OK) {
    FUZZ_CHECK(info.format != NULL);
    FUZZ_CHECK(info.duration_s >= 0 && info.duration_s <= cfg.max_duration_s);
  } else {
    FUZZ_CHECK(err[0] != '\0');
  }
}

static void transcript(const uint8_t *data, size_t size)
{
  char *s = fuzz_cstr(data, size);
  char err[MX_ERRBUF_LEN] = "";
  if (stt_clean_transcript(&s, "fuzz", err) == MX_OK) {
    size_t n = strlen(s);
    FUZZ_CHECK(n > 0 && s[0] != ' ' && s[n - 1] != ' ' && !strstr(s, "  "));
    FUZZ_CHECK(mx_utf8_valid(s, n));
  } else {
    FUZZ_CHECK(err[0] != '\0');
  }
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  probe(data, size);
  transcript(data, size);
  return 0;
}
