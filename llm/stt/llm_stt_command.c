/*
 * llm/stt/llm_stt_command.c - the "command" provider: a local recogniser
 * (pocketsphinx_continuous, whisper-cli, ...) run from an argv template in
 * which {input} (the voice message as received) and {wav} (16 kHz mono WAV)
 * are replaced; no shell, so nothing in a path is interpreted. The
 * transcript is its stdout, capped; stderr only feeds error messages.
 * Layer: llm/; common/ only.
 */
#include <stdlib.h>
#include <string.h>

#include "llm_stt_int.h"

/* One argument with every placeholder replaced; NULL on out of memory. */
static char *expand(const char *tmpl, const char *input_path, const char *wav_path)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  const char *p = tmpl;
  mx_err rc = MX_OK;

  while (*p && !rc) {
    if (strncmp(p, "{input}", 7) == 0) {
      rc = mx_buf_adds(&b, input_path);
      p += 7;
    } else if (strncmp(p, "{wav}", 5) == 0 && wav_path) {
      rc = mx_buf_adds(&b, wav_path);
      p += 5;
    } else {
      rc = mx_buf_addc(&b, *p++);
    }
  }
  return rc ? NULL : mx_buf_take(&b);
}

static void free_argv(char **argv, size_t n)
{
  for (size_t i = 0; argv && i < n; i++)
    free(argv[i]);
  free(argv);
}

static mx_err run_command(const struct llm_stt_config *cfg, char **argv, int64_t deadline_ms, char **text,
                          char *err)
{
  struct mx_buf out = MX_BUF_INIT(cfg->max_output), errout = MX_BUF_INIT(4096);
  struct stt_exec_result res;
  char why[300];
  mx_err rc = stt_exec(argv, deadline_ms, &out, &errout, &res, err);

  if (rc)
    goto cleanup;
  if (res.timed_out || !res.exited || res.exit_code != 0) {
    stt_exec_describe(&res, &errout, why, sizeof why);
    rc = mx_fail(res.timed_out ? MX_ERR_TIMEOUT : MX_ERR_UNAVAILABLE, err, "speech.command: '%s' %s", argv[0], why);
    goto cleanup;
  }
  if (res.truncated) {
    rc = mx_fail(MX_ERR_TOO_BIG, err, "speech.command: '%s' printed more than %zu bytes", argv[0], cfg->max_output);
    goto cleanup;
  }
  *text = mx_buf_take(&out);
  rc = *text ? stt_clean_transcript(text, "speech.command", err) : mx_fail(MX_ERR_NOMEM, err, "out of memory");
cleanup:
  mx_buf_release(&out);
  mx_buf_release(&errout);
  return rc;
}

mx_err stt_command_transcribe(const struct llm_stt_config *cfg, const char *input_path, const char *wav_path,
                              int64_t deadline_ms, char **text, char *err)
{
  char **argv = calloc(cfg->command_n + 1, sizeof *argv);
  mx_err rc = MX_OK;

  *text = NULL;
  if (!argv)
    return mx_fail(MX_ERR_NOMEM, err, "speech.command: out of memory");
  for (size_t i = 0; i < cfg->command_n && !rc; i++) {
    argv[i] = expand(cfg->command[i], input_path, wav_path);
    if (!argv[i])
      rc = mx_fail(MX_ERR_NOMEM, err, "speech.command: out of memory");
  }
  if (!rc)
    rc = run_command(cfg, argv, deadline_ms, text, err);
  free_argv(argv, cfg->command_n);
  return rc;
}
