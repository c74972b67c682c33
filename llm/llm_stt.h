/*
 * llm_stt.h - speech to text for voice messages (issue 7's voice part):
 * `openai` (POST <base_url>/audio/transcriptions, multipart; also
 * faster-whisper-server/speaches), `whisper_cpp` (whisper.cpp server,
 * POST <base_url>/inference, multipart) and `command` (a local program such
 * as pocketsphinx, run without a shell on a temporary copy of the audio,
 * transcript read from its stdout). Config block `llm.stt` (docs/llm.md).
 * Layer: llm; knows nothing of Matrix: the bot downloads/decrypts the media
 * and hands the bytes in. cJSON blocks are borrowed. Blocking; thread-safe.
 */
#ifndef LLM_STT_H
#define LLM_STT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

enum llm_stt_kind { LLM_STT_OPENAI = 0, LLM_STT_WHISPER_CPP, LLM_STT_COMMAND };

struct llm_stt_cfg {
  enum llm_stt_kind kind;
  char *base_url;     /* openai, whisper_cpp */
  char *model;        /* openai: default whisper-1 */
  char *api_key;      /* openai (optional for local servers); secret */
  char *language;     /* ISO-639-1; NULL: openai auto, whisper_cpp "auto" */
  char **command;     /* command: argv, "{file}" replaced by the audio path */
  size_t ncommand;
  int64_t timeout_ms;
  size_t max_bytes;
};

/* Parses the `stt` object; path names it in messages ("llm.stt"). */
mx_err llm_stt_config_parse(const cJSON *blk, const char *file, const char *path, struct llm_stt_cfg **out,
                            char *err);
void llm_stt_config_free(struct llm_stt_cfg *c);

/* Transcribes audio (mimetype as in the m.audio event, e.g. audio/ogg) into
 * text (appended, trimmed). MX_ERR_NOT_FOUND when no speech was recognised;
 * MX_ERR_TOO_BIG over max_bytes; MX_ERR_TIMEOUT past timeout_ms. */
mx_err llm_stt_transcribe(const struct llm_stt_cfg *c, const void *audio, size_t n, const char *mimetype,
                          struct mx_buf *text, char *err);

/* Internal: one backend each (llm_stt_http.c, llm_stt_cmd.c). */
mx_err llm_stt_http(const struct llm_stt_cfg *c, const void *audio, size_t n, const char *mimetype,
                    const char *filename, struct mx_buf *text, char *err);
mx_err llm_stt_cmd(const struct llm_stt_cfg *c, const void *audio, size_t n, const char *filename,
                   struct mx_buf *text, char *err);

#endif
