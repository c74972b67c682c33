/*
 * tools/redact/tools_redact.c - secret scanners and [REDACTED:<rule>:<hmac8>]
 * tags; see tools_redact.h. Hand-written matchers (no regex engine) so the
 * cost is one pass over the text and binary output cannot confuse them.
 * A match is a secret value only: it never crosses a line break, a quote or
 * a shell token boundary, so what a command does stays readable around it.
 * Layer: tools/; common/ only. Never logs (it is the log filter).
 */
#include "tools_redact.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mx_buf.h"
#include "mx_crypto.h"
#include "mx_util.h"
#include "tools_redact_int.h"

/* config secrets: a few per device, and a fleet may have thousands */
#define MAX_LITERALS 65536
#define MAX_VALUE 4096

struct literal {
  char *rule;
  char *secret;
  size_t len;
};

struct tools_redactor {
  uint8_t key[64];
  size_t keylen;
  struct literal *lit; /* grown as literals are added */
  int nlit, cap;
};

mx_err tools_redact_new(const void *key, size_t keylen, struct tools_redactor **out, char *err)
{
  if (keylen < 16 || keylen > 64)
    return mx_fail(MX_ERR_INVALID, err, "redaction key: expected 16 to 64 bytes, got %zu", keylen);
  struct tools_redactor *r = calloc(1, sizeof(*r));
  if (!r)
    return mx_fail(MX_ERR_NOMEM, err, "redactor: out of memory");
  memcpy(r->key, key, keylen);
  r->keylen = keylen;
  *out = r;
  return MX_OK;
}

/* Creates the key with O_EXCL so two processes starting together agree on
 * one key (the loser reads the winner's file). */
static mx_err create_key_file(const char *path, char *err)
{
  uint8_t key[32];
  mx_err rc = mx_random_bytes(key, sizeof(key));
  if (rc)
    return mx_fail(rc, err, "redaction key: no randomness");
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno == EEXIST ? MX_OK : mx_fail(MX_ERR_IO, err, "cannot create redaction key '%s': %s", path,
                                             strerror(errno));
  ssize_t n = write(fd, key, sizeof(key));
  int ok = n == (ssize_t)sizeof(key) && fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(path);
    return mx_fail(MX_ERR_IO, err, "cannot write redaction key '%s'", path);
  }
  return MX_OK;
}

mx_err tools_redact_new_from_file(const char *key_path, struct tools_redactor **out, char *err)
{
  mx_err rc = create_key_file(key_path, err);
  if (rc)
    return rc;
  struct mx_buf b = MX_BUF_INIT(128);
  rc = mx_file_read(key_path, 64, &b, err);
  if (!rc)
    rc = tools_redact_new(b.buf, b.len, out, err);
  mx_buf_release(&b);
  return rc;
}

void tools_redact_free(struct tools_redactor *r)
{
  if (!r)
    return;
  for (int i = 0; i < r->nlit; i++) {
    free(r->lit[i].rule);
    free(r->lit[i].secret);
  }
  free(r->lit);
  free(r);
}

mx_err tools_redact_add_literal(struct tools_redactor *r, const char *rule, const char *secret, char *err)
{
  if (!secret || strlen(secret) < 4)
    return mx_fail(MX_ERR_INVALID, err, "redaction literal '%s': expected at least 4 bytes", rule ? rule : "config");
  if (strpbrk(secret, "\r\n"))
    return mx_fail(MX_ERR_INVALID, err, "redaction literal '%s': expected one line, got a line break", rule ? rule : "config");
  if (r->nlit >= MAX_LITERALS)
    return mx_fail(MX_ERR_TOO_BIG, err, "redaction literals: at most %d", MAX_LITERALS);
  if (r->nlit == r->cap) {
    int cap = r->cap ? 2 * r->cap : 16;
    struct literal *grown = realloc(r->lit, (size_t)cap * sizeof(*grown));
    if (!grown)
      return mx_fail(MX_ERR_NOMEM, err, "redactor: out of memory");
    r->lit = grown;
    r->cap = cap;
  }
  struct literal *l = &r->lit[r->nlit];
  l->rule = mx_strdup(rule ? rule : "config");
  l->secret = mx_strdup(secret);
  if (!l->rule || !l->secret) {
    free(l->rule);
    free(l->secret);
    return mx_fail(MX_ERR_NOMEM, err, "redactor: out of memory");
  }
  l->len = strlen(secret);
  r->nlit++;
  return MX_OK;
}

void tools_redact_tag(const struct tools_redactor *r, const char *rule, const char *secret, size_t n, char *out,
                      size_t outsz)
{
  uint8_t mac[MX_SHA256_LEN];
  char hex[2 * MX_SHA256_LEN + 1];
  mx_hmac_sha256(r->key, r->keylen, secret, n, mac);
  mx_hex(mac, 4, hex);
  snprintf(out, outsz, "[REDACTED:%s:%s]", rule, hex);
}

/* ---- matchers: each looks at text[i] and fills *m on a match ---- */

static int is_word(char c) { return isalnum((unsigned char)c) || c == '_'; }
static int at_word_start(const char *t, size_t i) { return i == 0 || !is_word(t[i - 1]); }

static size_t span(const char *t, size_t len, size_t i, const char *set_extra)
{
  size_t j = i;
  while (j < len && (isalnum((unsigned char)t[j]) || (t[j] && strchr(set_extra, t[j]))))
    j++;
  return j - i;
}

static int has_prefix(const char *t, size_t len, size_t i, const char *p)
{
  size_t n = strlen(p);
  return len - i >= n && memcmp(t + i, p, n) == 0;
}

static int has_prefix_ci(const char *t, size_t len, size_t i, const char *p)
{
  size_t n = strlen(p);
  return len - i >= n && strncasecmp(t + i, p, n) == 0;
}

static int match_aws(const char *t, size_t len, size_t i, struct match *m)
{
  static const char *const pfx[] = {"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "ABIA", "ACCA"};
  if (t[i] != 'A' || !at_word_start(t, i))
    return 0;
  for (size_t k = 0; k < sizeof(pfx) / sizeof(pfx[0]); k++) {
    if (!has_prefix(t, len, i, pfx[k]))
      continue;
    size_t j = i + 4;
    while (j < len && j - i < 20 && (isupper((unsigned char)t[j]) || isdigit((unsigned char)t[j])))
      j++;
    if (j - i == 20 && (j == len || !is_word(t[j]))) {
      m->start = i;
      m->end = j;
      m->rule = "aws_key";
      return 1;
    }
  }
  return 0;
}

static int match_github(const char *t, size_t len, size_t i, struct match *m)
{
  if (t[i] != 'g' || !at_word_start(t, i))
    return 0;
  size_t n = 0;
  if (has_prefix(t, len, i, "github_pat_")) {
    n = span(t, len, i + 11, "_");
    if (n < 22)
      return 0;
    n += 11;
  } else if (len - i > 4 && t[i + 1] == 'h' && strchr("pousr", t[i + 2]) && t[i + 2] && t[i + 3] == '_') {
    n = span(t, len, i + 4, "");
    if (n < 30)
      return 0;
    n += 4;
  } else {
    return 0;
  }
  m->start = i;
  m->end = i + n;
  m->rule = "github_token";
  return 1;
}

static int match_slack(const char *t, size_t len, size_t i, struct match *m)
{
  if (t[i] != 'x' || !at_word_start(t, i))
    return 0;
  size_t body;
  if (has_prefix(t, len, i, "xapp-"))
    body = i + 5;
  else if (len - i > 5 && t[i + 1] == 'o' && t[i + 2] == 'x' && t[i + 3] && strchr("baprs", t[i + 3]) && t[i + 4] == '-')
    body = i + 5;
  else
    return 0;
  size_t n = span(t, len, body, "-");
  if (n < 10)
    return 0;
  m->start = i;
  m->end = body + n;
  m->rule = "slack_token";
  return 1;
}

static int match_jwt(const char *t, size_t len, size_t i, struct match *m)
{
  if (t[i] != 'e' || !has_prefix(t, len, i, "eyJ") || !at_word_start(t, i))
    return 0;
  size_t a = span(t, len, i, "_-");
  if (a < 10 || i + a >= len || t[i + a] != '.')
    return 0;
  size_t b = span(t, len, i + a + 1, "_-");
  if (b < 10 || i + a + 1 + b >= len || t[i + a + 1 + b] != '.')
    return 0;
  size_t c = span(t, len, i + a + b + 2, "_-");
  m->start = i;
  m->end = i + a + b + 2 + c;
  m->rule = "jwt";
  return 1;
}

static int match_bearer(const char *t, size_t len, size_t i, struct match *m)
{
  if ((t[i] | 0x20) != 'b' || !has_prefix_ci(t, len, i, "bearer") || !at_word_start(t, i))
    return 0;
  size_t j = i + 6;
  if (j >= len || (t[j] != ' ' && t[j] != '\t'))
    return 0;
  while (j < len && (t[j] == ' ' || t[j] == '\t'))
    j++;
  size_t n = span(t, len, j, "._~+/=-");
  if (n < 8)
    return 0;
  m->start = j;
  m->end = j + n;
  m->rule = "bearer";
  return 1;
}

/* Key names whose value is a secret; matched as the whole key or its suffix
 * after '_', '-' or '.' (db_password, MYSQL_PWD, aws_secret_access_key). */
static const char *const secret_keys[] = {
    "password", "passwd", "pwd", "pass", "secret", "token", "api_key", "apikey", "access_key",
    "secret_key", "private_key", "client_secret", "auth_token", "access_token", "refresh_token",
    "secret_access_key", "authorization", "credentials", "passphrase", "pickle_key",
};

static int key_is_secret(const char *k, size_t n)
{
  /* Matrix error codes (M_UNKNOWN_TOKEN: Unrecognised access token) name
   * a token, they never carry one. */
  if (n > 2 && k[0] == 'M' && k[1] == '_')
    return 0;
  for (size_t s = 0; s < sizeof(secret_keys) / sizeof(secret_keys[0]); s++) {
    size_t sl = strlen(secret_keys[s]);
    if (n < sl || strncasecmp(k + n - sl, secret_keys[s], sl) != 0)
      continue;
    /* Bare PWD is the shell's working directory, bare "pass" too common:
     * those two only count with a prefix (MYSQL_PWD, db_pass). */
    int needs_prefix = strcmp(secret_keys[s], "pwd") == 0 || strcmp(secret_keys[s], "pass") == 0;
    /* PGPASSWORD, REDISPASSWORD: "password" glued to its program's name */
    int glued = strcmp(secret_keys[s], "password") == 0 || strcmp(secret_keys[s], "passwd") == 0;
    if ((n == sl && !needs_prefix) || (n > sl && (glued || strchr("_-.", k[n - sl - 1]))))
      return 1;
  }
  return 0;
}

/* Bytes a secret value never spans: line breaks, quotes, expansions and
 * escapes always; blanks and shell operators unless the value is quoted. */
static int value_stops(char c, char q)
{
  if (c == '\n' || c == '\r' || c == '\0' || c == '"' || c == '\'' || c == '`' || c == '$' || c == '\\')
    return 1;
  return !q && (isspace((unsigned char)c) || strchr(",;&|<>(){}[]", c));
}

/* "Unrecognised access token": after "key: " a plain word followed by more
 * words is prose, not a value. */
static int is_prose(const char *t, size_t len, size_t j, size_t k)
{
  for (size_t x = j; x < k; x++)
    if (!isalpha((unsigned char)t[x]))
      return 0;
  return j > 0 && t[j - 1] == ' ' && k + 1 < len && t[k] == ' ' && isalpha((unsigned char)t[k + 1]);
}

/* Value after the separator: quoted (up to the closing quote) or bare (up to
 * a token boundary); see value_stops. "Basic"/"Bearer" schemes are skipped. */
static int pair_value(const char *t, size_t len, size_t j, struct match *m)
{
  char q = 0;
  if (j < len && (t[j] == '"' || t[j] == '\''))
    q = t[j++];
  if (has_prefix_ci(t, len, j, "basic "))
    j += 6;
  else if (has_prefix_ci(t, len, j, "bearer "))
    j += 7;
  size_t k = j;
  while (k < len && k - j < MAX_VALUE && !value_stops(t[k], q))
    k++;
  if (k == j || tools_redact_is_tag(t, len, j, NULL))
    return 0;
  if (!q && ((k - j == 4 && strncmp(t + j, "null", 4) == 0) || is_prose(t, len, j, k)))
    return 0;
  m->start = j;
  m->end = k;
  m->rule = "password";
  return 1;
}

static int match_pair(const char *t, size_t len, size_t i, struct match *m)
{
  if (!isalpha((unsigned char)t[i]) || !at_word_start(t, i) || (i > 0 && t[i - 1] == '.'))
    return 0;
  size_t n = span(t, len, i, "_-.");
  if (n > 64 || !key_is_secret(t + i, n))
    return 0;
  size_t j = i + n;
  if (j < len && (t[j] == '"' || t[j] == '\''))
    j++;
  while (j < len && (t[j] == ' ' || t[j] == '\t'))
    j++;
  if (j >= len || (t[j] != '=' && t[j] != ':'))
    return 0;
  j++;
  while (j < len && (t[j] == ' ' || t[j] == '\t'))
    j++;
  return pair_value(t, len, j, m);
}

static int match_literal(const struct tools_redactor *r, const char *t, size_t len, size_t i, struct match *m)
{
  for (int k = 0; k < r->nlit; k++) {
    const struct literal *l = &r->lit[k];
    if (t[i] == l->secret[0] && len - i >= l->len && memcmp(t + i, l->secret, l->len) == 0) {
      m->start = i;
      m->end = i + l->len;
      m->rule = l->rule;
      return 1;
    }
  }
  return 0;
}

/* Matrix access and refresh tokens: syt_<localpart b64>_<random>_<crc>. */
static int match_matrix(const char *t, size_t len, size_t i, struct match *m)
{
  if (t[i] != 's' || !at_word_start(t, i) || !(has_prefix(t, len, i, "syt_") || has_prefix(t, len, i, "syr_")))
    return 0;
  size_t n = span(t, len, i + 4, "_");
  if (n < 20)
    return 0;
  m->start = i;
  m->end = i + 4 + n;
  m->rule = "matrix_token";
  return 1;
}

/* The password of a URL's userinfo: scheme://user:PASSWORD@host. */
static int match_url_password(const char *t, size_t len, size_t i, struct match *m)
{
  if (t[i] != ':' || !has_prefix(t, len, i, "://"))
    return 0;
  size_t u = i + 3;
  while (u < len && u - i < 260 && t[u] != ':' && t[u] != '@' && t[u] != '/' && !value_stops(t[u], 0))
    u++;
  if (u >= len || t[u] != ':') /* the user may be empty: redis://:PASSWORD@host */
    return 0;
  size_t p = u + 1, k = p;
  while (k < len && k - p < MAX_VALUE && t[k] != '@' && t[k] != '/' && !value_stops(t[k], 0))
    k++;
  if (k == p || k >= len || t[k] != '@' || tools_redact_is_tag(t, len, p, NULL))
    return 0;
  m->start = p;
  m->end = k;
  m->rule = "url_password";
  return 1;
}

/* mysql -pSECRET (the password glued to -p) on a mysql/mariadb command
 * line: the program name must come earlier on the same line. */
static int match_mysql_p(const char *t, size_t len, size_t i, struct match *m)
{
  if (t[i] != '-' || len - i < 3 || t[i + 1] != 'p' || value_stops(t[i + 2], 0) || t[i + 2] == '-' ||
      (i > 0 && !isspace((unsigned char)t[i - 1]) && t[i - 1] != '"' && t[i - 1] != '\''))
    return 0;
  size_t ls = i;
  while (ls > 0 && t[ls - 1] != '\n')
    ls--;
  if (!memmem(t + ls, i - ls, "mysql", 5) && !memmem(t + ls, i - ls, "mariadb", 7))
    return 0;
  size_t k = i + 2;
  while (k < len && k - i < MAX_VALUE && !value_stops(t[k], 0))
    k++;
  m->start = i + 2;
  m->end = k;
  m->rule = "password";
  return 1;
}

static int match_any(const struct tools_redactor *r, const char *t, size_t len, size_t i, int exec, struct match *m)
{
  return match_literal(r, t, len, i, m) || tools_redact_match_pem(t, len, i, exec, m) || match_aws(t, len, i, m) ||
         match_github(t, len, i, m) || match_slack(t, len, i, m) || match_matrix(t, len, i, m) ||
         match_jwt(t, len, i, m) || match_bearer(t, len, i, m) || match_url_password(t, len, i, m) ||
         match_mysql_p(t, len, i, m) || match_pair(t, len, i, m);
}

int tools_redact_is_tag(const char *t, size_t len, size_t i, size_t *n)
{
  if (!has_prefix(t, len, i, "[REDACTED:"))
    return 0;
  size_t j = i + 10, r = 0;
  while (j < len && r < 32 && (islower((unsigned char)t[j]) || isdigit((unsigned char)t[j]) || t[j] == '_'))
    j++, r++;
  if (!r || j + 10 > len || t[j] != ':')
    return 0;
  for (size_t k = j + 1; k < j + 9; k++)
    if (!isdigit((unsigned char)t[k]) && (t[k] < 'a' || t[k] > 'f'))
      return 0;
  if (t[j + 9] != ']')
    return 0;
  if (n)
    *n = j + 10 - i;
  return 1;
}

char *tools_redact_ex(const struct tools_redactor *r, const char *text, size_t len, int flags, size_t *outlen,
                      int *count)
{
  /* Redacted text can only grow by a tag per secret; cap generously. */
  struct mx_buf b = MX_BUF_INIT(len * 8 + 4096);
  size_t copied = 0, tag_len = 0;
  int hits = 0, exec = (flags & TOOLS_REDACT_EXEC) != 0;
  mx_err rc = mx_buf_add(&b, "", 0);
  for (size_t i = 0; !rc && i < len;) {
    struct match m;
    if (text[i] == '[' && tools_redact_is_tag(text, len, i, &tag_len)) {
      /* Already a tag (text redacted twice, e.g. engine output then the log
       * filter): keep it whole so it stays stable. Only an exact tag is
       * skipped, so "[REDACTED:" cannot shield what follows it. */
      i += tag_len;
      continue;
    }
    if (!match_any(r, text, len, i, exec, &m)) {
      i++;
      continue;
    }
    /* A pattern may start before its secret (a pair's key, "Bearer "): a
     * configured literal in that lead-in would be copied as it is, so it
     * is redacted first. */
    for (size_t k = i + 1; k < m.start; k++) {
      struct match lit;
      if (match_literal(r, text, len, k, &lit)) {
        m = lit;
        break;
      }
    }
    char tag[96];
    tools_redact_tag(r, m.rule, text + m.start, m.end - m.start, tag, sizeof(tag));
    rc = mx_buf_add(&b, text + copied, m.start - copied);
    if (!rc)
      rc = mx_buf_adds(&b, tag);
    copied = i = m.end;
    hits++;
  }
  if (!rc)
    rc = mx_buf_add(&b, text + copied, len - copied);
  if (rc)
    return NULL;
  if (outlen)
    *outlen = b.len;
  if (count)
    *count = hits;
  return mx_buf_take(&b);
}

char *tools_redact(const struct tools_redactor *r, const char *text, size_t len, size_t *outlen, int *count)
{
  return tools_redact_ex(r, text, len, 0, outlen, count);
}

char *tools_redact_str(const struct tools_redactor *r, const char *s)
{
  return tools_redact(r, s ? s : "", s ? strlen(s) : 0, NULL, NULL);
}

char *tools_redact_log_filter(void *ctx, const char *line)
{
  int n = 0;
  char *out = tools_redact(ctx, line, strlen(line), NULL, &n);
  if (out && n == 0) {
    free(out);
    return NULL;
  }
  return out;
}
