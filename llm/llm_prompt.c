/*
 * llm_prompt.c - template rendering; see llm_prompt.h.
 * Layer: llm; common/ file helpers only.
 */
#include "llm_prompt.h"

#include <stdlib.h>
#include <string.h>

#include "mx_util.h"

#define PROMPT_MAX ((size_t)256 * 1024)

static const char *lookup(const struct llm_prompt_vars *v, const char *name, size_t n)
{
  struct {
    const char *k;
    const char *v;
  } tab[] = {{"device", v->device}, {"backend", v->backend}, {"os", v->os},
             {"tools", v->tools},   {"policy", v->policy},   {"now", v->now}};
  for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
    if (strlen(tab[i].k) == n && memcmp(tab[i].k, name, n) == 0)
      return tab[i].v ? tab[i].v : "unknown";
  return NULL;
}

mx_err llm_prompt_render(const char *tmpl, const char *where, const struct llm_prompt_vars *v, struct mx_buf *out,
                         char *err)
{
  const char *p = tmpl;
  int line = 1;
  while (*p) {
    const char *o = strstr(p, "{{");
    size_t lit = o ? (size_t)(o - p) : strlen(p);
    for (size_t i = 0; i < lit; i++)
      line += p[i] == '\n';
    if (mx_buf_add(out, p, lit))
      return mx_fail(MX_ERR_TOO_BIG, err, "%s: rendered prompt is too large", where);
    if (!o)
      break;
    const char *c = strstr(o + 2, "}}");
    const char *name = o + 2;
    while (c && *name == ' ')
      name++;
    size_t n = c ? (size_t)(c - name) : 0;
    while (n && name[n - 1] == ' ')
      n--;
    const char *val = c ? lookup(v, name, n) : NULL;
    if (!val)
      return mx_fail(MX_ERR_CONFIG, err,
                     "%s:%d: expected one of {{device}} {{backend}} {{os}} {{tools}} {{policy}} {{now}}, got '%.*s'",
                     where, line, c ? (int)(c - o + 2) : 20, o);
    if (mx_buf_adds(out, val))
      return mx_fail(MX_ERR_TOO_BIG, err, "%s: rendered prompt is too large", where);
    p = c + 2;
  }
  return MX_OK;
}

mx_err llm_prompt_load(const char *dir, const char *file, const struct llm_prompt_vars *v, struct mx_buf *out,
                       char *err)
{
  char *path = mx_path_join(dir, file);
  if (!path)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  struct mx_buf t = MX_BUF_INIT(PROMPT_MAX);
  mx_err rc = mx_file_read(path, PROMPT_MAX, &t, err);
  if (!rc)
    rc = llm_prompt_render(mx_buf_cstr(&t), path, v, out, err);
  mx_buf_release(&t);
  free(path);
  return rc;
}
