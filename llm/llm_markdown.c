/*
 * llm_markdown.c - Markdown subset to Matrix HTML; see llm_markdown.h.
 * Line-oriented block pass, then an inline pass per line.
 * Layer: llm; pure.
 */
#include "llm_markdown.h"

#include <ctype.h>
#include <string.h>

enum block { B_NONE = 0, B_PARA, B_UL, B_OL, B_QUOTE };

static mx_err esc_n(struct mx_buf *o, const char *s, size_t n)
{
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < n; i++) {
    switch (s[i]) {
    case '&':
      rc = mx_buf_adds(o, "&amp;");
      break;
    case '<':
      rc = mx_buf_adds(o, "&lt;");
      break;
    case '>':
      rc = mx_buf_adds(o, "&gt;");
      break;
    case '"':
      rc = mx_buf_adds(o, "&quot;");
      break;
    case '\'':
      rc = mx_buf_adds(o, "&#39;");
      break;
    default:
      rc = mx_buf_addc(o, s[i]);
    }
  }
  return rc;
}

static int safe_url(const char *u, size_t n)
{
  static const char *const ok[] = {"http://", "https://", "mailto:", NULL};
  for (size_t i = 0; ok[i]; i++)
    if (n > strlen(ok[i]) && strncmp(u, ok[i], strlen(ok[i])) == 0)
      return 1;
  return 0;
}

static mx_err inline_md(struct mx_buf *o, const char *s, size_t n);

/* [text](url) at s; returns bytes consumed or 0. */
static size_t link(struct mx_buf *o, const char *s, size_t n, mx_err *rc)
{
  const char *close = memchr(s, ']', n);
  if (!close || (size_t)(close - s) + 1 >= n || close[1] != '(')
    return 0;
  const char *url = close + 2;
  const char *end = memchr(url, ')', n - (size_t)(url - s));
  if (!end || !safe_url(url, (size_t)(end - url)) || memchr(url, ' ', (size_t)(end - url)))
    return 0;
  *rc = mx_buf_adds(o, "<a href=\"");
  if (!*rc)
    *rc = esc_n(o, url, (size_t)(end - url));
  if (!*rc)
    *rc = mx_buf_adds(o, "\">");
  if (!*rc)
    *rc = inline_md(o, s + 1, (size_t)(close - s - 1));
  if (!*rc)
    *rc = mx_buf_adds(o, "</a>");
  return (size_t)(end - s) + 1;
}

/* A span delimited by delim (1 or 2 chars) wrapped in tag; returns bytes
 * consumed or 0 when there is no closing delimiter. */
static size_t span(struct mx_buf *o, const char *s, size_t n, const char *delim, const char *tag, int code,
                   mx_err *rc)
{
  size_t dl = strlen(delim);
  if (n <= 2 * dl || isspace((unsigned char)s[dl]))
    return 0;
  for (size_t i = dl + 1; i + dl <= n; i++) {
    if (memcmp(s + i, delim, dl) != 0 || isspace((unsigned char)s[i - 1]))
      continue;
    *rc = mx_buf_addf(o, "<%s>", tag);
    if (!*rc)
      *rc = code ? esc_n(o, s + dl, i - dl) : inline_md(o, s + dl, i - dl);
    if (!*rc)
      *rc = mx_buf_addf(o, "</%s>", tag);
    return i + dl;
  }
  return 0;
}

static mx_err inline_md(struct mx_buf *o, const char *s, size_t n)
{
  mx_err rc = MX_OK;
  size_t i = 0;
  while (!rc && i < n) {
    size_t used = 0;
    const char *p = s + i;
    size_t left = n - i;
    if (*p == '`')
      used = span(o, p, left, "`", "code", 1, &rc);
    else if (left > 1 && memcmp(p, "~~", 2) == 0)
      used = span(o, p, left, "~~", "del", 0, &rc);
    else if (left > 1 && (memcmp(p, "**", 2) == 0 || memcmp(p, "__", 2) == 0))
      used = span(o, p, left, *p == '*' ? "**" : "__", "strong", 0, &rc);
    else if (*p == '*' || (*p == '_' && (i == 0 || !isalnum((unsigned char)s[i - 1]))))
      used = span(o, p, left, *p == '*' ? "*" : "_", "em", 0, &rc);
    else if (*p == '[')
      used = link(o, p, left, &rc);
    if (rc)
      break;
    if (used) {
      i += used;
      continue;
    }
    rc = esc_n(o, p, 1);
    i++;
  }
  return rc;
}

static mx_err close_block(struct mx_buf *o, enum block *b)
{
  static const char *const closing[] = {"", "</p>\n", "</ul>\n", "</ol>\n", "</blockquote>\n"};
  mx_err rc = mx_buf_adds(o, closing[*b]);
  *b = B_NONE;
  return rc;
}

static int list_item(const char *l, size_t n, enum block *kind, size_t *skip)
{
  if (n >= 2 && (l[0] == '-' || l[0] == '*' || l[0] == '+') && l[1] == ' ') {
    *kind = B_UL;
    *skip = 2;
    return 1;
  }
  size_t d = 0;
  while (d < n && isdigit((unsigned char)l[d]))
    d++;
  if (d > 0 && d < 10 && d + 1 < n && (l[d] == '.' || l[d] == ')') && l[d + 1] == ' ') {
    *kind = B_OL;
    *skip = d + 2;
    return 1;
  }
  return 0;
}

/* "> text": consecutive lines form one blockquote. */
static mx_err quote_line(struct mx_buf *o, const char *l, size_t n, enum block *b)
{
  size_t skip = (n > 1 && l[1] == ' ') ? 2 : 1;
  mx_err rc = MX_OK;
  if (*b == B_QUOTE) {
    rc = mx_buf_adds(o, "<br>\n");
  } else {
    rc = close_block(o, b);
    if (!rc)
      rc = mx_buf_adds(o, "<blockquote>");
    *b = B_QUOTE;
  }
  return rc ? rc : inline_md(o, l + skip, n - skip);
}

static mx_err line_block(struct mx_buf *o, const char *l, size_t n, enum block *b)
{
  size_t lead = 0;
  while (lead < n && lead < 3 && l[lead] == ' ')
    lead++;
  l += lead;
  n -= lead;
  mx_err rc = MX_OK;
  size_t h = 0;
  while (h < n && h < 7 && l[h] == '#')
    h++;
  enum block kind;
  size_t skip;
  if (n == 0)
    return close_block(o, b);
  if (h >= 1 && h <= 6 && h < n && l[h] == ' ') {
    rc = close_block(o, b);
    if (!rc)
      rc = mx_buf_addf(o, "<h%zu>", h);
    if (!rc)
      rc = inline_md(o, l + h + 1, n - h - 1);
    if (!rc)
      rc = mx_buf_addf(o, "</h%zu>\n", h);
    return rc;
  }
  if (n >= 3 && (strspn(l, "-") == n || strspn(l, "*") == n || strspn(l, "_") == n)) {
    rc = close_block(o, b);
    return rc ? rc : mx_buf_adds(o, "<hr>\n");
  }
  if (l[0] == '>')
    return quote_line(o, l, n, b);
  if (list_item(l, n, &kind, &skip)) {
    if (*b != kind) {
      rc = close_block(o, b);
      if (!rc)
        rc = mx_buf_adds(o, kind == B_UL ? "<ul>\n" : "<ol>\n");
      *b = kind;
    }
    if (!rc)
      rc = mx_buf_adds(o, "<li>");
    if (!rc)
      rc = inline_md(o, l + skip, n - skip);
    if (!rc)
      rc = mx_buf_adds(o, "</li>\n");
    return rc;
  }
  if (*b == B_PARA) {
    rc = mx_buf_adds(o, "<br>\n");
  } else {
    rc = close_block(o, b);
    if (!rc)
      rc = mx_buf_adds(o, "<p>");
    *b = B_PARA;
  }
  return rc ? rc : inline_md(o, l, n);
}

/* ``` fence at line start: emits the code block up to the closing fence and
 * returns where to continue. */
static const char *fence(struct mx_buf *o, const char *p, mx_err *rc)
{
  const char *eol = strchr(p, '\n');
  const char *lang = p + 3;
  size_t ln = eol ? (size_t)(eol - lang) : strlen(lang);
  while (ln && isspace((unsigned char)lang[ln - 1]))
    ln--;
  const char *body = eol ? eol + 1 : p + strlen(p);
  const char *end = body;
  while (*end && !(strncmp(end, "```", 3) == 0 && (end == body || end[-1] == '\n')))
    end++;
  size_t bn = (size_t)(end - body);
  if (bn && body[bn - 1] == '\n')
    bn--;
  *rc = mx_buf_adds(o, "<pre><code");
  if (!*rc && ln) {
    *rc = mx_buf_adds(o, " class=\"language-");
    if (!*rc)
      *rc = esc_n(o, lang, ln);
    if (!*rc)
      *rc = mx_buf_adds(o, "\"");
  }
  if (!*rc)
    *rc = mx_buf_adds(o, ">");
  if (!*rc)
    *rc = esc_n(o, body, bn);
  if (!*rc)
    *rc = mx_buf_adds(o, "</code></pre>\n");
  if (!*end)
    return end;
  const char *after = strchr(end, '\n');
  return after ? after + 1 : end + strlen(end);
}

mx_err llm_markdown_to_html(const char *md, struct mx_buf *out)
{
  enum block b = B_NONE;
  mx_err rc = MX_OK;
  const char *p = md ? md : "";
  while (!rc && *p) {
    if (strncmp(p, "```", 3) == 0) {
      rc = close_block(out, &b);
      if (!rc)
        p = fence(out, p, &rc);
      continue;
    }
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    if (n && p[n - 1] == '\r')
      n--;
    rc = line_block(out, p, n, &b);
    p = eol ? eol + 1 : p + strlen(p);
  }
  if (!rc)
    rc = close_block(out, &b);
  /* Drop the trailing newline: Matrix clients render it as space. */
  if (!rc && out->len && out->buf[out->len - 1] == '\n')
    out->buf[--out->len] = '\0';
  return rc;
}
