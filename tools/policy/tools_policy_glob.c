/*
 * tools/policy/tools_policy_glob.c - the pattern language of command rules
 * (docs/manifest.md "Patterns"). fnmatch(3) alone read weaker than it
 * looked: '*' matched option-shaped and empty arguments, and "[0-9]*" meant
 * "a digit, then anything". Here, for allow and ask rules:
 *   *  any run of characters except '/'     ?  one character except '/'
 *   [set] one character of set ([!set] not) [set]+  one or more of set
 *   \c  the character c
 * and a wildcard never matches a leading '-' (only a pattern that starts
 * with '-' matches an option), nor a '.' at the start of a component, and
 * an empty argument matches only the empty pattern "". Deny rules match
 * loosely (wildcards cross '/', leading '.' and '-' included), so a deny
 * never gets narrower than it reads.
 * Layer: tools/; libc only. Bounded: a pattern that needs more than
 * GLOB_BUDGET steps does not match an allow rule and does match a deny rule.
 */
#include "tools_policy_int.h"

#include <string.h>

#define GLOB_BUDGET 200000

struct glob_ctx {
  int strict; /* allow/ask rules */
  long steps;
  const char *start; /* the argument, to find component starts */
};

/* Parses the bracket expression at p (just after '['); sets *end past ']'.
 * Returns 1 when c is in the set. A malformed set is a literal '['. */
static int in_set(const char *p, char c, const char **end)
{
  int neg = *p == '!' || *p == '^';
  if (neg)
    p++;
  int hit = 0, first = 1;
  while (*p && (*p != ']' || first)) {
    char lo = *p == '\\' && p[1] ? *++p : *p;
    char hi = lo;
    if (p[1] == '-' && p[2] && p[2] != ']') {
      hi = p[2] == '\\' && p[3] ? p[3] : p[2];
      p += p[2] == '\\' && p[3] ? 3 : 2;
    }
    if (c >= lo && c <= hi)
      hit = 1;
    p++;
    first = 0;
  }
  if (*p != ']') {
    *end = NULL;
    return 0;
  }
  *end = p + 1;
  return neg ? !hit : hit;
}

/* May a wildcard consume the character at s? */
static int wild_ok(const struct glob_ctx *g, const char *s)
{
  if (!g->strict)
    return 1;
  if (*s == '/')
    return 0;
  if (s == g->start && *s == '-')
    return 0;
  return !(*s == '.' && (s == g->start || s[-1] == '/'));
}

static int match(struct glob_ctx *g, const char *p, const char *s)
{
  while (*p) {
    if (++g->steps > GLOB_BUDGET)
      return !g->strict;
    if (*p == '*') {
      while (*p == '*')
        p++;
      for (const char *t = s;; t++) {
        if (match(g, p, t))
          return 1;
        if (!*t || !wild_ok(g, t) || g->steps > GLOB_BUDGET)
          return g->steps > GLOB_BUDGET ? !g->strict : 0;
      }
    }
    if (*p == '[') {
      const char *end = NULL;
      int hit = *s && wild_ok(g, s) && in_set(p + 1, *s, &end);
      if (!end && *s) /* malformed: '[' is literal */
        in_set(p + 1, 'x', &end);
      if (!end) {
        if (*s != '[')
          return 0;
        p++;
        s++;
        continue;
      }
      if (!hit)
        return 0;
      if (*end == '+') { /* one or more: try the longest run first */
        const char *t = s + 1, *e2;
        while (*t && wild_ok(g, t) && in_set(p + 1, *t, &e2))
          t++;
        for (; t > s; t--)
          if (match(g, end + 1, t))
            return 1;
        return 0;
      }
      p = end;
      s++;
      continue;
    }
    if (*p == '?') {
      if (!*s || !wild_ok(g, s))
        return 0;
    } else {
      if (*p == '\\' && p[1])
        p++;
      if (*p != *s)
        return 0;
    }
    p++;
    s++;
  }
  return *s == '\0';
}

int policy_glob(const char *pat, const char *arg, int strict)
{
  struct glob_ctx g = {strict, 0, arg};
  if (strict && !*arg)
    return !*pat; /* "" is allowed only by the pattern "" */
  return match(&g, pat, arg);
}
