/*
 * tests/fuzz/fuzz_config.c - the daemon's config loader (bot/mx_config.c)
 * over any file an operator could write, followed, when it loads, by the
 * blocks other layers own: "llm" (llm/llm_config.c) and "speech"
 * (llm/stt/llm_stt_config.c). The loader reads a file, so each input is
 * written to mxfleet.json in a private scratch directory first, beside
 * secrets/{pc1,nas,pi3}.pw (the loader checks password files exist).
 * Properties: a refusal names the file; a loaded config has a homeserver
 * without a trailing '/' and every device a name and a user ID.
 */
#include "fuzz_util.h"

#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "llm_config.h"
#include "llm_stt.h"
#include "mx_config.h"

static void check_loaded(const struct mx_config *cfg, const char *path)
{
  size_t n = strlen(cfg->homeserver);
  FUZZ_CHECK(n == 0 || cfg->homeserver[n - 1] != '/');
  for (size_t i = 0; i < cfg->n_devices; i++)
    FUZZ_CHECK(cfg->devices[i].name && cfg->devices[i].user_id);
  char err[MX_ERRBUF_LEN] = "";
  if (cfg->llm) {
    struct llm_config *llm = NULL;
    if (llm_config_parse(cfg->llm, path, &llm, err) == MX_OK)
      llm_config_free(llm);
    else
      FUZZ_CHECK(err[0] != '\0');
  }
  if (cfg->speech) {
    struct llm_stt_config stt;
    llm_stt_config_init(&stt);
    if (llm_stt_config_parse(cfg->speech, path, "speech", &stt, err) != MX_OK)
      FUZZ_CHECK(err[0] != '\0');
    llm_stt_config_release(&stt);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static char path[600];
  if (!path[0]) {
    /* The password files the seeds name must exist, or every device stops
     * at that check. */
    static const char *const names[] = {"pc1", "nas", "pi3"};
    char secret[700];
    snprintf(secret, sizeof(secret), "%s/secrets", fuzz_scratch_dir());
    FUZZ_CHECK(mkdir(secret, 0700) == 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
      snprintf(secret, sizeof(secret), "%s/secrets/%s.pw", fuzz_scratch_dir(), names[i]);
      FILE *pw = fopen(secret, "w");
      FUZZ_CHECK(pw && fputs("correct horse battery staple\n", pw) >= 0 && fclose(pw) == 0);
    }
    snprintf(path, sizeof(path), "%s/mxfleet.json", fuzz_scratch_dir());
  }
  FILE *f = fopen(path, "wb");
  FUZZ_CHECK(f != NULL);
  FUZZ_CHECK(fwrite(data, 1, size, f) == size);
  FUZZ_CHECK(fclose(f) == 0);

  struct mx_config *cfg = NULL;
  char err[MX_ERRBUF_LEN] = "";
  if (mx_config_load(path, &cfg, err) == MX_OK) {
    check_loaded(cfg, path);
    mx_config_free(cfg);
  } else {
    FUZZ_CHECK(cfg == NULL);
    FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0);
  }
  return 0;
}
