/*
 * llm/stt/llm_stt.c - one transcription: limits and format first (nothing
 * runs on bytes that are not audio), then a private scratch directory
 * (mkdtemp, removed on every path) when a file or a WAV conversion is
 * needed, then the provider. Also the transcript clean-up shared by all.
 * Layer: llm/; common/ only here. No Matrix: the caller downloads and
 * decrypts the voice message and posts the transcript.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_stt_int.h"
#include "mx_util.h"

struct scratch {
  char dir[4096];
  char in[4200], mid[4200], wav[4200];
};

static mx_err scratch_make(const struct llm_stt_config *cfg, const char *format, struct scratch *s, char *err)
{
  const char *base = cfg->tmp_dir ? cfg->tmp_dir : getenv("TMPDIR");

  if (!base || !base[0])
    base = "/tmp";
  snprintf(s->dir, sizeof s->dir, "%s/mxfleet-stt-XXXXXX", base);
  if (!mkdtemp(s->dir)) {
    int e = errno;
    s->dir[0] = '\0';
    return mx_fail(MX_ERR_IO, err, "speech: cannot create a scratch directory in '%s': %s", base, strerror(e));
  }
  snprintf(s->in, sizeof s->in, "%s/voice.%s", s->dir, strcmp(format, "wav") == 0 ? "wav" : "ogg");
  snprintf(s->mid, sizeof s->mid, "%s/decoded.wav", s->dir);
  snprintf(s->wav, sizeof s->wav, "%s/voice16k.wav", s->dir);
  return MX_OK;
}

static void scratch_remove(struct scratch *s)
{
  if (!s->dir[0])
    return;
  unlink(s->in);
  unlink(s->mid);
  unlink(s->wav);
  rmdir(s->dir);
  s->dir[0] = '\0';
}

static int command_wants_wav(const struct llm_stt_config *cfg)
{
  for (size_t i = 0; i < cfg->command_n; i++) {
    if (strstr(cfg->command[i], "{wav}"))
      return 1;
  }
  return 0;
}

/* HTTP providers: the original bytes, or the converted WAV. */
static mx_err via_http(const struct llm_stt_config *cfg, const void *audio, size_t n, const char *format,
                       struct scratch *s, int64_t deadline_ms, char **text, char *err)
{
  struct mx_buf wav = MX_BUF_INIT(MX_BUF_MAX_MEDIA);
  int is_wav = strcmp(format, "wav") == 0;
  mx_err rc;

  if (!cfg->convert)
    return stt_http_transcribe(cfg, audio, n, is_wav ? "voice.wav" : "voice.ogg", is_wav ? "audio/wav" : "audio/ogg",
                               deadline_ms, text, err);
  rc = scratch_make(cfg, format, s, err);
  if (!rc)
    rc = mx_file_write(s->in, audio, n, 0600, err);
  if (!rc)
    rc = stt_convert_to_wav(cfg, format, s->in, s->wav, s->mid, deadline_ms, err);
  if (!rc)
    rc = mx_file_read(s->wav, MX_BUF_MAX_MEDIA, &wav, err);
  if (!rc)
    rc = stt_http_transcribe(cfg, mx_buf_cstr(&wav), wav.len, "voice.wav", "audio/wav", deadline_ms, text, err);
  mx_buf_release(&wav);
  return rc;
}

static mx_err via_command(const struct llm_stt_config *cfg, const void *audio, size_t n, const char *format,
                          struct scratch *s, int64_t deadline_ms, char **text, char *err)
{
  int want_wav = command_wants_wav(cfg);
  mx_err rc = scratch_make(cfg, format, s, err);

  if (!rc)
    rc = mx_file_write(s->in, audio, n, 0600, err);
  if (!rc && want_wav)
    rc = stt_convert_to_wav(cfg, format, s->in, s->wav, s->mid, deadline_ms, err);
  if (!rc)
    rc = stt_command_transcribe(cfg, s->in, want_wav ? s->wav : NULL, deadline_ms, text, err);
  return rc;
}

mx_err llm_stt_transcribe(const struct llm_stt_config *cfg, const void *audio, size_t n, const char *mimetype,
                          char **text, char *err)
{
  struct llm_stt_audio_info info;
  struct scratch s;
  int64_t deadline_ms = mx_mono_ms() + (int64_t)cfg->timeout_s * 1000;
  mx_err rc;

  *text = NULL;
  s.dir[0] = '\0';
  rc = llm_stt_probe(cfg, audio, n, mimetype, &info, err);
  if (rc)
    return rc;
  if (cfg->provider == LLM_STT_COMMAND)
    rc = via_command(cfg, audio, n, info.format, &s, deadline_ms, text, err);
  else
    rc = via_http(cfg, audio, n, info.format, &s, deadline_ms, text, err);
  scratch_remove(&s);
  if (rc) {
    free(*text);
    *text = NULL;
  }
  return rc;
}

mx_err stt_clean_transcript(char **s, const char *who, char *err)
{
  char *r = *s, *w = *s;
  int space = 0;

  for (; *r; r++) {
    if (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r') {
      space = w != *s;
      continue;
    }
    if (space)
      *w++ = ' ';
    space = 0;
    *w++ = *r;
  }
  *w = '\0';
  if (!mx_utf8_valid(*s, strlen(*s)))
    return mx_fail(MX_ERR_INVALID, err, "%s: the transcript is not valid UTF-8", who);
  if (!(*s)[0])
    return mx_fail(MX_ERR_INVALID, err, "%s: no speech was recognised in the voice message", who);
  return MX_OK;
}
