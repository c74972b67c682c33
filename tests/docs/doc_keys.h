/*
 * tests/docs/doc_keys.h - a parser and its documentation page agree on the
 * keys: every key path the parser's each_key() names has a section heading
 * "### KEY" (or "### `KEY`" with quoted), and every such heading starting
 * with prefix names a key the parser accepts, unless its text begins
 * "Not a key". Used by the config, llm and speech tests; header-only.
 */
#ifndef TESTS_DOC_KEYS_H
#define TESTS_DOC_KEYS_H

#include <stdio.h>
#include <string.h>

#include "mx_buf.h"
#include "mx_util.h"

typedef void (*doc_each_key_fn)(void (*fn)(void *ctx, const char *path), void *ctx);

struct doc_keys_ctx {
  const char *doc, *file, *want;
  int quoted, keys, problems, found;
};

static void doc_keys_has_section(void *ctx, const char *path)
{
  struct doc_keys_ctx *d = ctx;
  char title[192];
  snprintf(title, sizeof(title), d->quoted ? "\n### `%s`\n" : "\n### %s\n", path);
  d->keys++;
  if (!strstr(d->doc, title)) {
    fprintf(stderr, "%s: no section for key '%s'\n", d->file, path);
    d->problems++;
  }
}

static void doc_keys_find(void *ctx, const char *path)
{
  struct doc_keys_ctx *d = ctx;
  d->found |= strcmp(d->want, path) == 0;
}

/* Returns the number of problems (each printed); *keys gets how many keys
 * the parser named. */
static int doc_keys_check(const char *file, doc_each_key_fn each, const char *prefix, int quoted, int *keys)
{
  struct mx_buf text;
  if (mx_file_read(file, 1 << 20, &text, NULL)) {
    fprintf(stderr, "%s: cannot read\n", file);
    return 1;
  }
  struct doc_keys_ctx d = { mx_buf_cstr(&text), file, NULL, quoted, 0, 0, 0 };
  each(doc_keys_has_section, &d);
  char head[96];
  snprintf(head, sizeof(head), quoted ? "\n### `%s" : "\n### %s", prefix);
  size_t skip = quoted ? 6 : 5; /* "\n### `" or "\n### " */
  for (const char *p = strstr(d.doc, head); p; p = strstr(p + 1, head)) {
    char key[128];
    size_t n = strcspn(p + skip, quoted ? "`\n" : "\n");
    const char *after = p + skip + n + (quoted ? 1 : 0);
    if (n >= sizeof(key) || strncmp(after, "\n\nNot a key", 11) == 0)
      continue;
    memcpy(key, p + skip, n);
    key[n] = '\0';
    d.want = key;
    d.found = 0;
    each(doc_keys_find, &d);
    if (!d.found) {
      fprintf(stderr, "%s: section '%s' is not a key the parser accepts\n", file, key);
      d.problems++;
    }
  }
  mx_buf_release(&text);
  *keys = d.keys;
  return d.problems;
}

#endif
