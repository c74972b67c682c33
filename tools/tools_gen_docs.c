/*
 * tools/tools_gen_docs.c - writes docs/tools/<name>.md for every catalog
 * entry (and with --check, compares instead and fails on any difference,
 * which is what the ctest check runs). Layer: tools/ tooling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_util.h"
#include "tools_catalog.h"

int main(int argc, char **argv)
{
  int check = argc > 2 && strcmp(argv[1], "--check") == 0;
  const char *dir = argc > 1 ? argv[argc - 1] : NULL;
  if (!dir || (argc > 2 && !check)) {
    fprintf(stderr, "usage: tools_gen_docs [--check] DIR\n");
    return 2;
  }
  size_t n;
  const struct tools_spec *c = tools_catalog(&n);
  int bad = 0;
  for (size_t i = 0; i <= n; i++) { /* n: the index page */
    struct mx_buf want = MX_BUF_INIT(MX_BUF_MAX_SMALL), have = MX_BUF_INIT(MX_BUF_MAX_SMALL);
    char name[128], err[MX_ERRBUF_LEN];
    snprintf(name, sizeof(name), "%s.md", i < n ? c[i].name : "README");
    char *path = mx_path_join(dir, name);
    if (!path || (i < n ? tools_catalog_doc(&c[i], &want) : tools_catalog_doc_index(&want))) {
      fprintf(stderr, "%s: cannot render\n", name);
      bad = 1;
    } else if (check) {
      if (mx_file_read(path, MX_BUF_MAX_SMALL, &have, err) || have.len != want.len ||
          memcmp(have.buf, want.buf, want.len) != 0) {
        fprintf(stderr, "%s: out of date with tools/tools_catalog.c; run tools_gen_docs %s\n", path, dir);
        bad = 1;
      }
    } else if (mx_file_write(path, want.buf, want.len, 0644, err)) {
      fprintf(stderr, "%s\n", err);
      bad = 1;
    }
    free(path);
    mx_buf_release(&want);
    mx_buf_release(&have);
  }
  return bad;
}
