/*
 * llm_prompt.c - template rendering; see llm_prompt.h.
 * Layer: llm; common/ file helpers only.
 */
#include "llm_prompt.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_log.h"
#include "mx_util.h"

#define PROMPT_MAX ((size_t)256 * 1024)

/* The shipped prompts/device.md, used when the configured template file does
 * not exist (a package installed without prompts/, a daemon started from
 * elsewhere), so a turn never fails for want of a prompt.
 * tests/llm/test_llm_store.c keeps the two identical. */
static const char builtin_device_md[] =
    "You are the operations agent of the machine **{{device}}** ({{os}}). The\n"
    "operator talks to you from Matrix on a phone, so answer briefly, in\n"
    "Markdown, with the facts first.\n"
    "\n"
    "The current time is {{now}}.\n"
    "\n"
    "## Tools you may use on {{device}}\n"
    "{{tools}}\n"
    "## Policy\n"
    "{{policy}}\n"
    "\n"
    "## Rules\n"
    "- Use the tools to look at the machine; never guess its state.\n"
    "- Call independent read-only tools in parallel when that saves a round trip.\n"
    "- A tool result marked as an error means the tool ran and failed: read it,\n"
    "  and either fix the arguments or tell the operator what went wrong.\n"
    "- Never invent tool names or arguments that are not in the schema.\n"
    "- Changing actions may need the operator's approval; if a call is denied,\n"
    "  explain what you wanted to do and why, and stop.\n"
    "- Never reveal secrets that appear in tool output.\n";

const char *llm_prompt_builtin(void)
{
  return builtin_device_md;
}

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
  mx_err rc = MX_OK;
  if (access(path, F_OK) != 0 && errno == ENOENT) {
    static atomic_int warned;
    if (!atomic_exchange(&warned, 1))
      mx_warn(NULL, "prompt template '%s' does not exist; using the built-in default", path);
    rc = llm_prompt_render(builtin_device_md, "built-in device.md", v, out, err);
  } else {
    rc = mx_file_read(path, PROMPT_MAX, &t, err);
    if (!rc)
      rc = llm_prompt_render(mx_buf_cstr(&t), path, v, out, err);
  }
  mx_buf_release(&t);
  free(path);
  return rc;
}
