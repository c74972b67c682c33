/*
 * llm/stt/llm_stt.h - speech to text for voice messages: the `speech` config
 * block, audio checks (size, duration, Ogg/Opus or WAV), conversion to 16 kHz
 * mono WAV (opusdec + sox), and three providers: "openai" (POST
 * /v1/audio/transcriptions; also faster-whisper-server, LocalAI),
 * "whisper.cpp" (POST /inference) and "command" (a local program, no shell).
 * Layer: llm/; common/, libcurl and cJSON only; knows nothing of Matrix.
 * Thread-safe: no shared state, so any worker thread may transcribe (the
 * process must have called curl_global_init once). Never logs the API key.
 */
#ifndef LLM_STT_H
#define LLM_STT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mx_err.h"

enum llm_stt_provider { LLM_STT_OPENAI = 0, LLM_STT_WHISPER_CPP = 1, LLM_STT_COMMAND = 2 };

#define LLM_STT_MAX_BYTES ((size_t)20 * 1024 * 1024)
#define LLM_STT_MAX_DURATION_S 120
#define LLM_STT_TIMEOUT_S 60
#define LLM_STT_MAX_OUTPUT ((size_t)64 * 1024)

/* Every string is owned (llm_stt_config_release frees them). */
struct llm_stt_config {
  enum llm_stt_provider provider;
  char *base_url;      /* openai, whisper.cpp: "http://127.0.0.1:8080" (no trailing path) */
  char *model;         /* openai: required ("whisper-1"); whisper.cpp: ignored */
  char *language;      /* optional ISO-639-1 code, "auto" for whisper.cpp detection */
  char *prompt;        /* optional vocabulary hint */
  char *api_key;       /* optional; read from api_key_file or api_key_env; a secret */
  char **command;      /* command: argv template, NULL-terminated; {input} and {wav} */
  size_t command_n;
  int convert;         /* 1: send/feed 16 kHz mono WAV; 0: the original bytes */
  size_t max_bytes;    /* voice message size limit */
  int max_duration_s;  /* voice message duration limit */
  int timeout_s;       /* whole transcription (conversion + provider) */
  size_t max_output;   /* command: stdout kept */
  char *opusdec;       /* converter programs; default "opusdec", "sox" (PATH) */
  char *sox;
  char *tmp_dir;       /* scratch files; default $TMPDIR or /tmp */
};

void llm_stt_config_init(struct llm_stt_config *c);
/* Calls fn for every key path the parser accepts ("speech.provider" ...);
 * docs/config-speech.md has a section for each (a test keeps them in step). */
void llm_stt_config_each_key(void (*fn)(void *ctx, const char *path), void *ctx);
void llm_stt_config_release(struct llm_stt_config *c);

/*
 * Parses a `speech` block (borrowed). file and path name the place for
 * errors: "FILE: PATH.key: expected ..., got '...'". Unknown keys are errors.
 * On failure *out is released and err says why.
 */
mx_err llm_stt_config_parse(const cJSON *speech, const char *file, const char *path, struct llm_stt_config *out,
                            char *err);
/* Reads FILE (JSON) and parses its top-level "speech" member. */
mx_err llm_stt_config_load(const char *file, struct llm_stt_config *out, char *err);

struct llm_stt_audio_info {
  const char *format;  /* "ogg/opus" or "wav" */
  double duration_s;
  int channels;
  int sample_rate;     /* the input rate (Opus: the original rate from OpusHead) */
};

/* Checks bytes against the limits and identifies the format; no programs
 * are run. MX_ERR_TOO_BIG for size or duration, MX_ERR_INVALID for data that
 * is not Ogg/Opus or WAV. mimetype (may be NULL) is only used in messages. */
mx_err llm_stt_probe(const struct llm_stt_config *cfg, const void *audio, size_t n, const char *mimetype,
                     struct llm_stt_audio_info *info, char *err);

/*
 * Transcribes one voice message (blocking; up to cfg->timeout_s). On success
 * *text is a malloc'd, trimmed, non-empty UTF-8 transcript (free()). Errors:
 * MX_ERR_TOO_BIG (limits), MX_ERR_INVALID (not audio, undecodable, no speech),
 * MX_ERR_HTTP / MX_ERR_AUTH / MX_ERR_TIMEOUT / MX_ERR_UNAVAILABLE (provider),
 * MX_ERR_IO (a program could not run). The audio buffer is only read.
 */
mx_err llm_stt_transcribe(const struct llm_stt_config *cfg, const void *audio, size_t n, const char *mimetype,
                          char **text, char *err);

const char *llm_stt_provider_name(enum llm_stt_provider p);

#endif
