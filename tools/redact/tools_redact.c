/*
 * tools/redact/tools_redact.c - secret scanners and [REDACTED:<rule>:<hmac8>]
 * tags; see tools_redact.h. Hand-written matchers (no regex engine) so the
 * cost is one pass over the text and binary output cannot confuse them.
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

#define MAX_LITERALS 64
#define MAX_VALUE 4096

struct literal {
  char *rule;
  char *secret;
  size_t len;
};

struct tools_redactor {
  uint8_t key[64];
  size_t keylen;
  struct literal lit[MAX_LITERALS];
  int nlit;
};

/* A match: the secret is text[start, end); rule names it. */
struct match {
  size_t start, end;
  const char *rule;
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
  free(r);
}

mx_err tools_redact_add_literal(struct tools_redactor *r, const char *rule, const char *secret, char *err)
{
  if (!secret || strlen(secret) < 4)
    return mx_fail(MX_ERR_INVALID, err, "redaction literal '%s': expected at least 4 bytes", rule ? rule : "config");
  if (r->nlit >= MAX_LITERALS)
    return mx_fail(MX_ERR_TOO_BIG, err, "redaction literals: at most %d", MAX_LITERALS);
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

static const char *find_bytes(const char *t, size_t len, size_t from, const char *needle)
{
  if (from >= len)
    return NULL;
  return memmem(t + from, len - from, needle, strlen(needle));
}

static int match_private_key(const char *t, size_t len, size_t i, struct match *m)
{
  if (!has_prefix(t, len, i, "-----BEGIN "))
    return 0;
  const char *hdr_end = find_bytes(t, len, i + 11, "-----");
  if (!hdr_end || (size_t)(hdr_end - t) - i > 64)
    return 0;
  size_t hdr_len = (size_t)(hdr_end - t) - i;
  if (!memmem(t + i, hdr_len, "PRIVATE KEY", 11))
    return 0;
  size_t end = len;
  const char *e = find_bytes(t, len, (size_t)(hdr_end - t) + 5, "-----END ");
  if (e) {
    const char *close = find_bytes(t, len, (size_t)(e - t) + 9, "-----");
    if (close)
      end = (size_t)(close - t) + 5;
  }
  m->start = i;
  m->end = end;
  m->rule = "private_key";
  return 1;
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
  for (size_t s = 0; s < sizeof(secret_keys) / sizeof(secret_keys[0]); s++) {
    size_t sl = strlen(secret_keys[s]);
    if (n < sl || strncasecmp(k + n - sl, secret_keys[s], sl) != 0)
      continue;
    /* Bare PWD is the shell's working directory, bare "pass" too common:
     * those two only count with a prefix (MYSQL_PWD, db_pass). */
    int needs_prefix = strcmp(secret_keys[s], "pwd") == 0 || strcmp(secret_keys[s], "pass") == 0;
    if ((n == sl && !needs_prefix) || (n > sl && strchr("_-.", k[n - sl - 1])))
      return 1;
  }
  return 0;
}

/* Value after the separator: quoted (up to the closing quote) or bare (up to
 * whitespace or a delimiter). "Basic"/"Bearer" schemes are skipped. */
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
  while (k < len && k - j < MAX_VALUE) {
    char c = t[k];
    if (q ? c == q : (isspace((unsigned char)c) || strchr(",;&)}]\"'", c) || c == '\0'))
      break;
    k++;
  }
  if (k == j || has_prefix(t, len, j, "[REDACTED:"))
    return 0;
  if (!q && (k - j == 4 && strncmp(t + j, "null", 4) == 0))
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

static int match_any(const struct tools_redactor *r, const char *t, size_t len, size_t i, struct match *m)
{
  return match_literal(r, t, len, i, m) || match_private_key(t, len, i, m) || match_aws(t, len, i, m) ||
         match_github(t, len, i, m) || match_slack(t, len, i, m) || match_jwt(t, len, i, m) ||
         match_bearer(t, len, i, m) || match_pair(t, len, i, m);
}

char *tools_redact(const struct tools_redactor *r, const char *text, size_t len, size_t *outlen, int *count)
{
  /* Redacted text can only grow by a tag per secret; cap generously. */
  struct mx_buf b = MX_BUF_INIT(len * 8 + 4096);
  size_t copied = 0;
  int hits = 0;
  mx_err rc = mx_buf_add(&b, "", 0);
  for (size_t i = 0; !rc && i < len;) {
    struct match m;
    if (text[i] == '[' && has_prefix(text, len, i, "[REDACTED:")) {
      /* Already a tag (text redacted twice, e.g. engine output then the log
       * filter): keep it whole so it stays stable. */
      const char *close = memchr(text + i, ']', len - i < 96 ? len - i : 96);
      i = close ? (size_t)(close - text) + 1 : i + 10;
      continue;
    }
    if (!match_any(r, text, len, i, &m)) {
      i++;
      continue;
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
