/*
 * mx_share.c - finds shipped data files; see mx_share.h. The binary's own
 * location comes first so that `cmake --install --prefix P` and a package
 * both work without a rebuild; then the source tree, so a build tree runs
 * without installing (an installed binary never gets that far: its own
 * share/ exists); the configured prefix last, for a binary copied
 * elsewhere. Lowest layer.
 */
#include "mx_share.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_util.h"

#ifndef MX_INSTALL_DATADIR
#define MX_INSTALL_DATADIR "/usr/local/share/mxfleet"
#endif
#ifndef MX_SOURCE_DIR
#define MX_SOURCE_DIR "."
#endif

static const struct {
  const char *installed, *source;
} k_dirs[] = {
  [MX_SHARE_TEMPLATES] = { "templates", "tools/templates" },
  [MX_SHARE_PROMPTS] = { "prompts", "prompts" },
  [MX_SHARE_SYSTEMD] = { "systemd", "packaging/systemd" },
  [MX_SHARE_EXAMPLES] = { "examples", "examples" },
};

static int is_dir(const char *p)
{
  struct stat st;
  return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* <dir of /proc/self/exe>/../share/mxfleet, or NULL */
static char *next_to_binary(void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return NULL;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash)
    return NULL;
  *slash = '\0';
  return mx_path_join(exe, "../share/mxfleet");
}

char *mx_share_dir(enum mx_share_dir what)
{
  const char *name = k_dirs[what].installed;
  const char *env = getenv("MXFLEET_DATADIR");
  char *cand[4] = { NULL, NULL, NULL, NULL };
  char *base = next_to_binary();
  cand[0] = env && *env ? mx_path_join(env, name) : NULL;
  cand[1] = base ? mx_path_join(base, name) : NULL;
  cand[2] = mx_path_join(MX_SOURCE_DIR, k_dirs[what].source);
  cand[3] = mx_path_join(MX_INSTALL_DATADIR, name);
  free(base);
  int pick = 3;
  for (int i = 0; i < 4; i++)
    if (is_dir(cand[i])) {
      pick = i;
      break;
    }
  char *out = cand[pick];
  for (int i = 0; i < 4; i++)
    if (i != pick)
      free(cand[i]);
  return out;
}
