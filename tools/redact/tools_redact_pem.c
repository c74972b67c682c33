/*
 * tools/redact/tools_redact_pem.c - the private key rule. Only a block that
 * is well formed is masked, and only its body: BEGIN line, then lines of
 * base64 of one width (the last may be shorter), then the END line with the
 * same label. A body line that is also a heredoc delimiter used in the text
 * means the "key" is really shell structure (a heredoc closed and reopened
 * around commands), so the block stays visible. Anything else stays
 * visible too: a mask must never hide what will run.
 * Layer: tools/redact; no allocation.
 */
#include "tools_redact_int.h"

#include <ctype.h>
#include <string.h>

#define PEM_LABEL_MAX 48
#define PEM_BODY_MIN 32 /* base64 chars: anything shorter is no key */

static int is_b64(char c) { return isalnum((unsigned char)c) || c == '+' || c == '/' || c == '='; }

static size_t line_end(const char *t, size_t len, size_t i)
{
  const char *nl = i < len ? memchr(t + i, '\n', len - i) : NULL;
  return nl ? (size_t)(nl - t) : len;
}

/* Width of the base64 line at t[i, e) ("\r" before "\n" allowed), or 0. */
static size_t b64_line(const char *t, size_t i, size_t e)
{
  if (e > i && t[e - 1] == '\r')
    e--;
  for (size_t k = i; k < e; k++)
    if (!is_b64(t[k]))
      return 0;
  return e - i;
}

/* "-----<word> <LABEL>-----" at t[i], alone up to the end of its line;
 * the label's offset and length go to *lab / *labn. */
static int armor_line(const char *t, size_t len, size_t i, const char *word, size_t *lab, size_t *labn)
{
  size_t wn = strlen(word), e = line_end(t, len, i);
  if (e - i < 10 + wn + 1 || memcmp(t + i, "-----", 5) != 0 || memcmp(t + i + 5, word, wn) != 0 ||
      t[i + 5 + wn] != ' ')
    return 0;
  if (t[e - 1] == '\r')
    e--;
  if (e - i < 10 + wn + 2 || memcmp(t + e - 5, "-----", 5) != 0)
    return 0;
  *lab = i + 6 + wn;
  *labn = e - 5 - *lab;
  if (*labn == 0 || *labn > PEM_LABEL_MAX)
    return 0;
  for (size_t k = *lab; k < *lab + *labn; k++)
    if (!isupper((unsigned char)t[k]) && !isdigit((unsigned char)t[k]) && t[k] != ' ')
      return 0;
  return 1;
}

/* 1 when the word t[w, w+n) follows a "<<" (or "<<-", quoted or not)
 * anywhere in the text: then it is a heredoc delimiter. */
static int is_heredoc_word(const char *t, size_t len, size_t w, size_t n)
{
  for (const char *p = t; (p = memmem(p, len - (size_t)(p - t), "<<", 2)) != NULL; p += 2) {
    size_t k = (size_t)(p - t) + 2;
    while (k < len && (t[k] == '-' || t[k] == ' ' || t[k] == '\t' || t[k] == '\'' || t[k] == '"' || t[k] == '\\'))
      k++;
    if (len - k >= n && memcmp(t + k, t + w, n) == 0 && (k + n == len || !is_b64(t[k + n])))
      return 1;
  }
  return 0;
}

struct body {
  size_t start, end; /* body text, without the newline before END */
  size_t width, chars;
  int lines, closed;
};

/* Walks the body lines from b->start; stops at the first line that is not
 * base64 (b->closed = 1 when that line is the matching END line). */
static void scan_body(const char *t, size_t len, size_t lab, size_t labn, struct body *b)
{
  size_t i = b->start, last = 0;
  while (i < len) {
    size_t e = line_end(t, len, i), el, eln;
    if (armor_line(t, len, i, "END", &el, &eln)) {
      b->closed = eln == labn && memcmp(t + el, t + lab, labn) == 0;
      break;
    }
    size_t w = b64_line(t, i, e);
    if (!w || (b->lines && (last != b->width || w > b->width)) || is_heredoc_word(t, len, i, w))
      break;
    if (!b->lines)
      b->width = w;
    last = w;
    b->chars += w;
    b->lines++;
    b->end = e;
    i = e + 1;
  }
}

int tools_redact_match_pem(const char *t, size_t len, size_t i, int exec, struct match *m)
{
  size_t lab, labn;
  if (t[i] != '-' || !armor_line(t, len, i, "BEGIN", &lab, &labn) ||
      !memmem(t + lab, labn, "PRIVATE KEY", 11))
    return 0;
  struct body b = {0};
  b.start = line_end(t, len, i) + 1;
  if (b.start >= len)
    return 0;
  scan_body(t, len, lab, labn, &b);
  if (!b.lines || b.chars < PEM_BODY_MIN || (exec && !b.closed))
    return 0;
  if (b.end > b.start && t[b.end - 1] == '\r')
    b.end--;
  m->start = b.start;
  m->end = b.end;
  m->rule = "private_key";
  return 1;
}
