/*
 * llm/stt/llm_stt_int.h - internals of speech to text shared by its files:
 * the exec helper, conversion to WAV, the HTTP providers and the command
 * provider. Not for use outside llm/stt.
 * Layer: llm/; common/, libcurl, cJSON.
 */
#ifndef LLM_STT_INT_H
#define LLM_STT_INT_H

#include <stdint.h>

#include "llm_stt.h"
#include "mx_buf.h"

struct stt_exec_result {
  int exited;        /* 1: exit_code is valid */
  int exit_code;
  int signal;        /* terminating signal, 0 for none */
  int timed_out;
  int truncated;     /* stdout went past its cap */
};

/*
 * Runs argv (argv[0] looked up in PATH; no shell) in its own process group,
 * stdin from /dev/null, until deadline_ms (mx_mono_ms clock): then SIGTERM to
 * the group and SIGKILL 500 ms later. stdout into out (its cap), the first
 * bytes of stderr into errout. MX_ERR_IO when it could not start.
 */
mx_err stt_exec(char *const argv[], int64_t deadline_ms, struct mx_buf *out, struct mx_buf *errout,
                struct stt_exec_result *res, char *err);

/* A one-line description of a failed run for messages: "exited with status
 * 1: <first stderr line>", "timed out", "killed by signal 9". */
void stt_exec_describe(const struct stt_exec_result *res, const struct mx_buf *errout, char *out, size_t n);

/* Converts in_path (format from probe) to 16 kHz mono 16-bit WAV at wav_path:
 * Ogg/Opus with opusdec (decoding at 16 kHz), then sox for mono/16-bit. */
mx_err stt_convert_to_wav(const struct llm_stt_config *cfg, const char *format, const char *in_path,
                          const char *wav_path, const char *mid_path, int64_t deadline_ms, char *err);

/* HTTP providers: audio is the file to upload (filename and type given). */
mx_err stt_http_transcribe(const struct llm_stt_config *cfg, const void *audio, size_t n, const char *filename,
                           const char *mimetype, int64_t deadline_ms, char **text, char *err);

/* Command provider: argv template with {input} and {wav} substituted. */
mx_err stt_command_transcribe(const struct llm_stt_config *cfg, const char *input_path, const char *wav_path,
                              int64_t deadline_ms, char **text, char *err);

/* Trims, folds runs of whitespace (newlines too) into one space, checks
 * UTF-8; MX_ERR_INVALID when nothing is left. Takes ownership of *s. */
mx_err stt_clean_transcript(char **s, const char *who, char *err);

#endif
