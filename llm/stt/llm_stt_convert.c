/*
 * llm/stt/llm_stt_convert.c - conversion to what local recognisers want:
 * 16 kHz, mono, 16-bit PCM WAV. Ogg/Opus goes through opusdec (sox 14.4 in
 * Debian reads Ogg/Vorbis but not Opus) decoding straight at 16 kHz, then
 * sox downmixes to mono and fixes 16-bit; WAV goes through sox alone.
 * Layer: llm/; common/ only (programs run via stt_exec).
 */
#include <stdio.h>
#include <string.h>

#include "llm_stt_int.h"

static mx_err run_step(const char *what, char *const argv[], int64_t deadline_ms, char *err)
{
  struct mx_buf out = MX_BUF_INIT(4096), errout = MX_BUF_INIT(4096);
  struct stt_exec_result res;
  char why[300];
  mx_err rc = stt_exec(argv, deadline_ms, &out, &errout, &res, err);

  if (!rc && (res.timed_out || !res.exited || res.exit_code != 0)) {
    stt_exec_describe(&res, &errout, why, sizeof why);
    rc = mx_fail(res.timed_out ? MX_ERR_TIMEOUT : MX_ERR_INVALID, err, "voice message: cannot %s: %s %s", what,
                 argv[0], why);
  }
  mx_buf_release(&out);
  mx_buf_release(&errout);
  return rc;
}

mx_err stt_convert_to_wav(const struct llm_stt_config *cfg, const char *format, const char *in_path,
                          const char *wav_path, const char *mid_path, int64_t deadline_ms, char *err)
{
  const char *src = in_path;
  mx_err rc;

  if (strcmp(format, "ogg/opus") == 0) {
    char *dec[] = {cfg->opusdec, "--quiet", "--rate", "16000", (char *)in_path, (char *)mid_path, NULL};
    rc = run_step("decode Ogg/Opus audio", dec, deadline_ms, err);
    if (rc)
      return rc;
    src = mid_path;
  }
  {
    char *mix[] = {cfg->sox, "-q", (char *)src, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer",
                   (char *)wav_path, NULL};
    return run_step("convert audio to 16 kHz mono WAV", mix, deadline_ms, err);
  }
}
