/*
 * bot/mx_config.c - loads and validates the daemon's JSON configuration.
 *
 * Layer: bot/, on common/ only; must not call llm/, tools/ or devices/ (the
 * llm and speech blocks are copied verbatim and validated by llm/).
 * Every error reads "FILE: key.path: expected WHAT, got 'VALUE'"; the first
 * problem found wins. Secret values (redact literals, file contents) are
 * never quoted. Ownership: struct mx_config owns every string and the cJSON
 * copies (llm, speech, registration); mx_config_free releases them.
 */
#include "mx_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mx_buf.h"
#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

#define CFG_MAX_BYTES ((size_t)1024 * 1024)
#define CFG_PATH_LEN 128
#define CFG_MIN_REDACT 6

#define EXPECT_USER_ID "a Matrix user ID like @agent-pc:example.org"
#define EXPECT_OPERATOR "a Matrix user ID like @alice:example.org"
#define EXPECT_PATH "a path"

/* Allowed keys per object; also the list docs/config.md must cover. */
static const char *const k_operator[] = {"user_id", "master_key", NULL};
static const char *const k_top[] = {"homeserver", "data_dir", "operators", "alerts_room", "devices",
                                    "bot", "health", "redact", "llm", "speech", "registration", "log_level",
                                    NULL};
static const char *const k_bot[] = {"command_max_age_s",   "require_verified_sender",  "sync_timeout_ms",
                                    "sync_timeout_max_ms", "http_listen",              "exclude_insecure_devices",
                                    "http_idle_timeout_ms", NULL};
static const char *const k_health[] = {"interval_s", "wg_interface", "stale_after_s", "repeat_s", "pending_s",
                                       "keep_firing_s", NULL};
static const char *const k_registration[] = {"shared_secret_file", "admin_token_file", NULL};
static const char *const k_device[] = {"name", "display_name", "os", "manifest", "prompt", "matrix",
                                       "backend", NULL};
static const char *const k_matrix[] = {"user_id", "password_file", NULL};
static const char *const k_local[] = {"kind", NULL};
static const char *const k_ssh[] = {"kind", "host", "port", "user", "key_file", "known_hosts", NULL};
static const char *const k_wg[] = {"kind", "address", "port", "hmac_key_file", "public_key", NULL};
static const char *const k_backend_doc[] = {"kind", "host", "port", "user", "key_file", "known_hosts",
                                            "address", "hmac_key_file", "public_key", NULL};

static const struct {
  const char *prefix;
  const char *const *keys;
} k_documented[] = {
  {"", k_top}, {"operators[].", k_operator}, {"bot.", k_bot}, {"health.", k_health}, {"registration.", k_registration},
  {"devices[].", k_device}, {"devices[].matrix.", k_matrix}, {"devices[].backend.", k_backend_doc},
};

/* Parse state: the file name as given (for messages) and its directory. */
struct cfg {
  const char *file;
  char *dir;
  char *err;
};

typedef int (*valid_fn)(const char *s);

/* ---- messages ---------------------------------------------------------- */

static mx_err cfg_fail(const struct cfg *c, const char *path, const char *fmt, ...) MX_PRINTF(3, 4);

static mx_err cfg_fail(const struct cfg *c, const char *path, const char *fmt, ...)
{
  char msg[MX_ERRBUF_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (path && *path)
    return mx_fail(MX_ERR_CONFIG, c->err, "%s: %s: %s", c->file, path, msg);
  return mx_fail(MX_ERR_CONFIG, c->err, "%s: %s", c->file, msg);
}

/* Names a JSON value for "got ...": strings quoted (shortened, control
 * bytes replaced), numbers as written, containers by kind. With
 * kind_only, strings and numbers are named but not shown (secrets). */
static void describe(const cJSON *v, int kind_only, char *out, size_t n)
{
  if (cJSON_IsString(v) && kind_only) {
    snprintf(out, n, "a string of %zu characters", strlen(v->valuestring));
  } else if (cJSON_IsString(v)) {
    char s[64];
    size_t i = 0;
    for (const char *p = v->valuestring; *p && i < 60; p++)
      s[i++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
    s[i] = '\0';
    snprintf(out, n, "'%s%s'", s, strlen(v->valuestring) > 60 ? "..." : "");
  } else if (cJSON_IsNumber(v)) {
    if (kind_only)
      snprintf(out, n, "a number");
    else
      snprintf(out, n, "%.15g", v->valuedouble);
  } else if (cJSON_IsBool(v)) {
    snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
  } else if (cJSON_IsNull(v)) {
    snprintf(out, n, "null");
  } else if (cJSON_IsArray(v)) {
    snprintf(out, n, "an array");
  } else {
    snprintf(out, n, "an object");
  }
}

static mx_err cfg_bad(const struct cfg *c, const char *path, const char *expect, const cJSON *v)
{
  char got[96];
  describe(v, 0, got, sizeof(got));
  return cfg_fail(c, path, "expected %s, got %s", expect, got);
}

/* Key names come from the file: control bytes are shown as '?' so an
 * unknown key cannot break the one-line error. */
static void path_key(char *out, const char *parent, const char *key)
{
  /* A path longer than CFG_PATH_LEN is shown cut, ending in "..." */
  if (snprintf(out, CFG_PATH_LEN, "%s%s%s", parent, *parent ? "." : "", key) >= CFG_PATH_LEN)
    memcpy(out + CFG_PATH_LEN - 4, "...", 4);
  for (char *p = out; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';
}

static void path_index(char *out, const char *parent, size_t i)
{
  snprintf(out, CFG_PATH_LEN, "%s[%zu]", parent, i);
}

/* ---- validators -------------------------------------------------------- */

static int all_chars(const char *s, size_t n, const char *extra)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    int alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
    if (!alnum && !(extra && ch && strchr(extra, ch)))
      return 0;
  }
  return 1;
}

static int valid_port_str(const char *s, int allow0)
{
  size_t n = strlen(s);
  if (n == 0 || n > 5 || !all_chars(s, n, NULL) || strspn(s, "0123456789") != n)
    return 0;
  long v = strtol(s, NULL, 10);
  return v <= 65535 && (allow0 || v > 0);
}

static int valid_ip(const char *s)
{
  unsigned char buf[16];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A DNS name or an IP literal (no brackets). */
static int valid_host(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 253)
    return 0;
  if (valid_ip(s))
    return 1;
  static const char up[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (size_t i = 0; i < n; i++)
    if (!all_chars(s + i, 1, ".-") && !strchr(up, s[i]))
      return 0;
  return s[0] != '-' && s[0] != '.' && s[n - 1] != '.' && !strstr(s, "..");
}

/* Matrix server name: host[:port] or [IPv6][:port]. */
static int valid_server_name(const char *s, size_t n)
{
  char host[256];
  const char *port = NULL;
  if (n == 0 || n >= sizeof(host))
    return 0;
  if (s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (!close)
      return 0;
    size_t hl = (size_t)(close - s - 1);
    memcpy(host, s + 1, hl);
    host[hl] = '\0';
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host, buf) != 1)
      return 0;
    if ((size_t)(close + 1 - s) == n)
      return 1;
    if (close[1] != ':')
      return 0;
    port = close + 2;
  } else {
    const char *colon = memchr(s, ':', n);
    size_t hl = colon ? (size_t)(colon - s) : n;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (!valid_host(host) || strchr(host, ':'))
      return 0;
    if (!colon)
      return 1;
    port = colon + 1;
  }
  char pbuf[8];
  size_t pl = n - (size_t)(port - s);
  if (pl == 0 || pl >= sizeof(pbuf))
    return 0;
  memcpy(pbuf, port, pl);
  pbuf[pl] = '\0';
  return valid_port_str(pbuf, 0);
}

int mx_config_valid_user_id(const char *s)
{
  if (!s || s[0] != '@' || strlen(s) > 255)
    return 0;
  const char *colon = strchr(s, ':');
  if (!colon || colon == s + 1)
    return 0;
  return all_chars(s + 1, (size_t)(colon - s - 1), "._=/+-") &&
         valid_server_name(colon + 1, strlen(colon + 1));
}

/* #alias:server or !opaque:server; the local part is free-form but has no
 * ':' and no whitespace or control characters. */
static int valid_room(const char *s)
{
  if ((s[0] != '#' && s[0] != '!') || strlen(s) > 255)
    return 0;
  const char *colon = strchr(s, ':');
  if (!colon || colon == s + 1)
    return 0;
  for (const char *p = s + 1; p < colon; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return 0;
  return valid_server_name(colon + 1, strlen(colon + 1));
}

/* http(s)://host[:port][/path] without user info, query or fragment. */
static int valid_url(const char *s)
{
  const char *rest;
  if (strncmp(s, "http://", 7) == 0)
    rest = s + 7;
  else if (strncmp(s, "https://", 8) == 0)
    rest = s + 8;
  else
    return 0;
  size_t auth = strcspn(rest, "/");
  if (!valid_server_name(rest, auth))
    return 0;
  for (const char *p = rest + auth; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == '?' || *p == '#' || *p == 0x7f)
      return 0;
  return 1;
}

static int valid_device_name(const char *s)
{
  size_t n = strlen(s);
  return n >= 1 && n <= 32 && s[0] != '-' && all_chars(s, n, "-");
}

static int valid_unix_user(const char *s)
{
  size_t n = strlen(s);
  return n >= 1 && n <= 32 && !(s[0] >= '0' && s[0] <= '9') && s[0] != '-' && s[0] != '.' &&
         all_chars(s, n, "_.-");
}

static int valid_ifname(const char *s)
{
  size_t n = strlen(s);
  static const char up[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_.-";
  if (n == 0 || n > 15)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!all_chars(s + i, 1, up))
      return 0;
  return 1;
}

/* A WireGuard key: 32 bytes in padded base64, 44 characters. */
static int valid_wg_key(const char *s)
{
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return strlen(s) == 44 && strspn(s, b64) == 43 && s[43] == '=';
}

static int valid_os(const char *s)
{
  return !strcmp(s, "linux") || !strcmp(s, "macos") || !strcmp(s, "windows");
}

static int valid_log_level(const char *s)
{
  enum mx_log_level l;
  return mx_log_parse_level(s, &l) == MX_OK;
}

static int valid_nonempty(const char *s)
{
  return s[0] != '\0';
}

static int valid_listen(const char *s)
{
  char host[64];
  int port;
  return mx_config_parse_listen(s, 0, host, sizeof(host), &port, NULL) == MX_OK;
}

mx_err mx_config_parse_listen(const char *s, int allow_port0, char *host, size_t host_len,
                              int *port, char *err)
{
  const char *h = s;
  const char *p;
  size_t hl;
  int family = AF_INET;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    family = AF_INET6;
    h = s + 1;
    hl = close ? (size_t)(close - h) : 0;
    p = close && close[1] == ':' ? close + 2 : NULL;
  } else {
    const char *colon = strrchr(s, ':');
    hl = colon ? (size_t)(colon - s) : 0;
    p = colon ? colon + 1 : NULL;
  }
  unsigned char buf[16];
  if (p && hl > 0 && hl < host_len && hl < 64) {
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (inet_pton(family, host, buf) == 1 && valid_port_str(p, allow_port0)) {
      *port = atoi(p);
      return MX_OK;
    }
  }
  return mx_fail(MX_ERR_INVALID, err, "http listen address '%.80s': expected IP:PORT like 127.0.0.1:9090", s);
}

/* ---- typed getters ----------------------------------------------------- */

/* Checks that v is an object whose keys are all in `keys`, each once. */
static mx_err cfg_object(const struct cfg *c, const cJSON *v, const char *path, const char *const *keys,
                         const char *qualifier)
{
  char path2[CFG_PATH_LEN];
  if (!cJSON_IsObject(v))
    return cfg_bad(c, path, "an object", v);
  for (const cJSON *it = v->child; it; it = it->next) {
    path_key(path2, path, it->string);
    size_t k = 0;
    while (keys[k] && strcmp(keys[k], it->string) != 0)
      k++;
    if (!keys[k]) {
      char list[256] = "";
      size_t used = 0;
      for (size_t i = 0; keys[i] && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", keys[i]);
      return cfg_fail(c, path2, "unknown key%s, expected one of %s", qualifier ? qualifier : "", list);
    }
    for (const cJSON *prev = v->child; prev != it; prev = prev->next)
      if (strcmp(prev->string, it->string) == 0)
        return cfg_fail(c, path2, "duplicate key, expected each key once");
  }
  return MX_OK;
}

/* Sets *out to a copy of obj[key] when present and valid. Absent: an
 * error when required, else *out (a default or NULL) is kept. */
static mx_err get_str(const struct cfg *c, const cJSON *obj, const char *parent, const char *key,
                      int required, const char *expect, valid_fn ok, char **out)
{
  char path[CFG_PATH_LEN];
  path_key(path, parent, key);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v)
    return required ? cfg_fail(c, path, "required key is missing, expected %s", expect) : MX_OK;
  if (!cJSON_IsString(v) || !ok(v->valuestring))
    return cfg_bad(c, path, expect, v);
  char *d = mx_strdup(v->valuestring);
  if (!d)
    return MX_ERR_NOMEM;
  free(*out);
  *out = d;
  return MX_OK;
}

/* Removes "." segments, doubled and trailing slashes; ".." is kept (it
 * means something else after a symlink). */
static void path_tidy(char *p)
{
  char *w = p;
  for (const char *r = p; *r;) {
    if (r[0] == '/' && (r[1] == '/' || (r[1] == '.' && (r[2] == '/' || r[2] == '\0')))) {
      r += r[1] == '/' ? 1 : 2;
      continue;
    }
    *w++ = *r++;
  }
  *w = '\0';
  if (w > p + 1 && w[-1] == '/')
    w[-1] = '\0';
  if (p[0] == '\0') {
    p[0] = '/';
    p[1] = '\0';
  }
}

/* A path: relative ones are resolved against the config file's directory. */
static mx_err get_path(const struct cfg *c, const cJSON *obj, const char *parent, const char *key,
                       int required, char **out)
{
  char *raw = NULL;
  mx_err rc = get_str(c, obj, parent, key, required, EXPECT_PATH, valid_nonempty, &raw);
  if (rc || !raw)
    return rc;
  char *abs = mx_path_join(c->dir, raw);
  free(raw);
  if (!abs)
    return MX_ERR_NOMEM;
  path_tidy(abs);
  free(*out);
  *out = abs;
  return MX_OK;
}

static mx_err get_int(const struct cfg *c, const cJSON *obj, const char *parent, const char *key,
                      int64_t min, int64_t max, int64_t *out)
{
  char path[CFG_PATH_LEN];
  char expect[80];
  path_key(path, parent, key);
  snprintf(expect, sizeof(expect), "an integer from %lld to %lld", (long long)min, (long long)max);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  int64_t n;
  if (!v)
    return MX_OK;
  if (!mx_json_int(obj, key, &n) || n < min || n > max)
    return cfg_bad(c, path, expect, v);
  *out = n;
  return MX_OK;
}

static mx_err get_int32(const struct cfg *c, const cJSON *obj, const char *parent, const char *key,
                        int min, int max, int *out)
{
  int64_t n = *out;
  mx_err rc = get_int(c, obj, parent, key, min, max, &n);
  *out = (int)n;
  return rc;
}

static mx_err get_bool(const struct cfg *c, const cJSON *obj, const char *parent, const char *key, int *out)
{
  char path[CFG_PATH_LEN];
  path_key(path, parent, key);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v)
    return MX_OK;
  if (!cJSON_IsBool(v))
    return cfg_bad(c, path, "true or false", v);
  *out = cJSON_IsTrue(v) ? 1 : 0;
  return MX_OK;
}

/* Optional object member: *out borrowed or NULL; checked against keys. */
static mx_err get_block(const struct cfg *c, const cJSON *obj, const char *parent, const char *key,
                        const char *const *keys, const cJSON **out)
{
  char path[CFG_PATH_LEN];
  path_key(path, parent, key);
  *out = cJSON_GetObjectItemCaseSensitive(obj, key);
  return *out ? cfg_object(c, *out, path, keys, NULL) : MX_OK;
}

/* ---- sections ---------------------------------------------------------- */

static mx_err parse_log_level(const struct cfg *c, const cJSON *root, struct mx_config *cfg)
{
  char *level = NULL;
  enum mx_log_level l;
  mx_err rc = get_str(c, root, "", "log_level", 0, "one of debug, info, warn, error", valid_log_level, &level);
  if (!rc && level && mx_log_parse_level(level, &l) == MX_OK)
    cfg->log_level = (int)l;
  free(level);
  return rc;
}

static mx_err parse_bot(const struct cfg *c, const cJSON *root, struct mx_config *cfg)
{
  const cJSON *b;
  mx_err rc = get_block(c, root, "", "bot", k_bot, &b);
  if (rc || !b)
    return rc;
  int64_t age_s = cfg->command_max_age_ms / 1000;
  rc = get_int(c, b, "bot", "command_max_age_s", 1, 7 * 86400, &age_s);
  if (!rc)
    rc = get_bool(c, b, "bot", "require_verified_sender", &cfg->require_verified_sender);
  if (!rc)
    rc = get_bool(c, b, "bot", "exclude_insecure_devices", &cfg->exclude_insecure_devices);
  if (!rc)
    rc = get_int32(c, b, "bot", "sync_timeout_ms", 1000, 300000, &cfg->sync_timeout_ms);
  if (!rc)
    rc = get_int32(c, b, "bot", "sync_timeout_max_ms", 1000, 300000, &cfg->sync_timeout_max_ms);
  if (!rc)
    rc = get_int32(c, b, "bot", "http_idle_timeout_ms", 1000, 600000, &cfg->http_idle_timeout_ms);
  if (!rc)
    rc = get_str(c, b, "bot", "http_listen", 0, "IP:PORT like 127.0.0.1:9090", valid_listen,
                 &cfg->http_listen);
  cfg->command_max_age_ms = age_s * 1000;
  return rc;
}

static mx_err parse_health(const struct cfg *c, const cJSON *root, struct mx_config *cfg)
{
  const cJSON *h;
  mx_err rc = get_block(c, root, "", "health", k_health, &h);
  if (rc || !h)
    return rc;
  rc = get_int32(c, h, "health", "interval_s", 5, 86400, &cfg->health_interval_s);
  if (!rc)
    rc = get_str(c, h, "health", "wg_interface", 0, "a network interface name like wg0", valid_ifname,
                 &cfg->wg_interface);
  if (!rc)
    rc = get_int32(c, h, "health", "stale_after_s", 30, 86400, &cfg->health_stale_after_s);
  if (!rc)
    rc = get_int32(c, h, "health", "repeat_s", 60, 7 * 86400, &cfg->health_repeat_s);
  if (!rc)
    rc = get_int32(c, h, "health", "pending_s", 0, 86400, &cfg->health_pending_s);
  if (!rc)
    rc = get_int32(c, h, "health", "keep_firing_s", 0, 86400, &cfg->health_keep_firing_s);
  return rc;
}

static mx_err parse_redact(const struct cfg *c, const cJSON *root, struct mx_config *cfg)
{
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "redact");
  char path[CFG_PATH_LEN];
  char got[96];
  if (!a)
    return MX_OK;
  describe(a, 1, got, sizeof(got));
  if (!cJSON_IsArray(a))
    return cfg_fail(c, "redact", "expected an array of strings, got %s", got);
  size_t n = (size_t)cJSON_GetArraySize(a);
  cfg->redact_literals = calloc(n + 1, sizeof(char *));
  if (!cfg->redact_literals)
    return MX_ERR_NOMEM;
  for (const cJSON *it = a->child; it; it = it->next) {
    path_index(path, "redact", cfg->n_redact_literals);
    describe(it, 1, got, sizeof(got));
    /* The value is a secret: only its kind and length are ever shown. */
    if (!cJSON_IsString(it) || strlen(it->valuestring) < CFG_MIN_REDACT)
      return cfg_fail(c, path, "expected a secret string of at least %d characters, got %s", CFG_MIN_REDACT,
                      got);
    cfg->redact_literals[cfg->n_redact_literals] = mx_strdup(it->valuestring);
    if (!cfg->redact_literals[cfg->n_redact_literals])
      return MX_ERR_NOMEM;
    cfg->n_redact_literals++;
  }
  return MX_OK;
}

static mx_err copy_block(const struct cfg *c, const cJSON *root, const char *key, const char *owner,
                         cJSON **out)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  char expect[80];
  if (!v)
    return MX_OK;
  snprintf(expect, sizeof(expect), "an object (checked by the %s module)", owner);
  if (!cJSON_IsObject(v))
    return cfg_bad(c, key, expect, v);
  *out = cJSON_Duplicate(v, 1);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

static mx_err parse_registration(const struct cfg *c, const cJSON *root, struct mx_config *cfg)
{
  const cJSON *r;
  mx_err rc = get_block(c, root, "", "registration", k_registration, &r);
  if (rc || !r)
    return rc;
  rc = get_path(c, r, "registration", "shared_secret_file", 0, &cfg->registration_shared_secret_file);
  if (!rc)
    rc = get_path(c, r, "registration", "admin_token_file", 0, &cfg->registration_admin_token_file);
  if (rc)
    return rc;
  if (!cfg->registration_shared_secret_file == !cfg->registration_admin_token_file)
    return cfg_fail(c, "registration", "expected exactly one of shared_secret_file or admin_token_file, got %s",
                    cfg->registration_shared_secret_file ? "both" : "neither");
  cfg->registration = cJSON_CreateObject();
  if (!cfg->registration)
    return MX_ERR_NOMEM;
  const char *key = cfg->registration_shared_secret_file ? "shared_secret_file" : "admin_token_file";
  const char *val = cfg->registration_shared_secret_file ? cfg->registration_shared_secret_file
                                                          : cfg->registration_admin_token_file;
  return cJSON_AddStringToObject(cfg->registration, key, val) ? MX_OK : MX_ERR_NOMEM;
}

/* A master key as Element shows it may be grouped by spaces; stored without
 * them. 43 characters of unpadded base64 are 32 bytes of ed25519. */
static mx_err parse_master_key(const struct cfg *c, const char *path, const cJSON *v, char **out)
{
  static const char expect[] = "the operator's cross-signing master key, 43 characters of unpadded base64";
  if (!cJSON_IsString(v))
    return cfg_bad(c, path, expect, v);
  char key[64];
  size_t n = 0;
  for (const char *p = v->valuestring; *p; p++) {
    if (*p == ' ')
      continue;
    int b64 = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' ||
              *p == '/';
    if (!b64 || n + 1 >= sizeof(key))
      return cfg_bad(c, path, expect, v);
    key[n++] = *p;
  }
  key[n] = '\0';
  if (n != 43)
    return cfg_bad(c, path, expect, v);
  *out = mx_strdup(key);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

/* "@alice:example.org" or {"user_id": "@alice:example.org", "master_key": "..."} */
static mx_err parse_operator(const struct cfg *c, const char *path, const cJSON *it, const char **user_id,
                             char **master_key)
{
  if (cJSON_IsString(it)) {
    *user_id = it->valuestring;
    return mx_config_valid_user_id(*user_id) ? MX_OK : cfg_bad(c, path, EXPECT_OPERATOR, it);
  }
  if (!cJSON_IsObject(it))
    return cfg_bad(c, path, EXPECT_OPERATOR " or {\"user_id\": ..., \"master_key\": ...}", it);
  mx_err rc = cfg_object(c, it, path, k_operator, NULL);
  if (rc)
    return rc;
  char sub[CFG_PATH_LEN];
  path_key(sub, path, "user_id");
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "user_id");
  if (!u)
    return cfg_fail(c, sub, "required key is missing, expected %s", EXPECT_OPERATOR);
  if (!cJSON_IsString(u) || !mx_config_valid_user_id(u->valuestring))
    return cfg_bad(c, sub, EXPECT_OPERATOR, u);
  *user_id = u->valuestring;
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, "master_key");
  path_key(sub, path, "master_key");
  return k ? parse_master_key(c, sub, k, master_key) : MX_OK;
}

static mx_err parse_operators(const struct cfg *c, const cJSON *root, struct mx_config *cfg)
{
  static const char expect[] = "a non-empty array of Matrix user IDs like [\"@alice:example.org\"]";
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "operators");
  char path[CFG_PATH_LEN];
  if (!a)
    return cfg_fail(c, "operators", "required key is missing, expected %s", expect);
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0)
    return cfg_bad(c, "operators", expect, a);
  size_t n = (size_t)cJSON_GetArraySize(a) + 1;
  cfg->operators = calloc(n, sizeof(char *));
  cfg->operator_master_keys = calloc(n, sizeof(char *));
  if (!cfg->operators || !cfg->operator_master_keys)
    return MX_ERR_NOMEM;
  for (const cJSON *it = a->child; it; it = it->next) {
    size_t i = cfg->n_operators;
    path_index(path, "operators", i);
    const char *uid = NULL;
    mx_err rc = parse_operator(c, path, it, &uid, &cfg->operator_master_keys[i]);
    if (rc)
      return rc;
    for (size_t j = 0; j < i; j++)
      if (strcmp(cfg->operators[j], uid) == 0)
        return cfg_fail(c, path, "duplicate operator '%s' (also operators[%zu])", uid, j);
    cfg->operators[i] = mx_strdup(uid);
    if (!cfg->operators[i])
      return MX_ERR_NOMEM;
    cfg->n_operators++;
  }
  return MX_OK;
}

/* The password file must be a readable, non-empty regular file. Only its
 * path is ever shown, never its content (which is not even read here). */
static mx_err check_password_file(const struct cfg *c, const char *path, const char *file)
{
  struct stat st;
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return cfg_fail(c, path, "cannot read '%s': %s", file, strerror(errno));
  int ok = fstat(fd, &st) == 0;
  close(fd);
  if (!ok || !S_ISREG(st.st_mode))
    return cfg_fail(c, path, "expected a regular file holding the password, got '%s'", file);
  if (st.st_size == 0)
    return cfg_fail(c, path, "expected a file holding the password, got an empty file '%s'", file);
  return MX_OK;
}

static mx_err parse_matrix(const struct cfg *c, const cJSON *dev, const char *dpath, struct mx_device_config *d)
{
  char path[CFG_PATH_LEN];
  char ppath[CFG_PATH_LEN];
  path_key(path, dpath, "matrix");
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(dev, "matrix");
  if (!m)
    return cfg_fail(c, path, "required key is missing, expected an object with user_id and password_file");
  mx_err rc = cfg_object(c, m, path, k_matrix, NULL);
  if (!rc)
    rc = get_str(c, m, path, "user_id", 1, EXPECT_USER_ID, mx_config_valid_user_id, &d->user_id);
  if (!rc)
    rc = get_path(c, m, path, "password_file", 1, &d->password_file);
  path_key(ppath, path, "password_file");
  return rc ? rc : check_password_file(c, ppath, d->password_file);
}

static mx_err parse_ssh(const struct cfg *c, const cJSON *b, const char *path, struct mx_device_config *d)
{
  mx_err rc = get_str(c, b, path, "host", 1, "a host name or IP address like 198.51.100.7", valid_host,
                      &d->ssh_host);
  if (!rc)
    rc = get_int32(c, b, path, "port", 1, 65535, &d->ssh_port);
  if (!rc)
    rc = get_str(c, b, path, "user", 1, "a user name like mxfleet", valid_unix_user, &d->ssh_user);
  if (!rc)
    rc = get_path(c, b, path, "key_file", 1, &d->ssh_key_file);
  if (!rc)
    rc = get_path(c, b, path, "known_hosts", 0, &d->ssh_known_hosts);
  return rc;
}

static mx_err parse_wg(const struct cfg *c, const cJSON *b, const char *path, struct mx_device_config *d)
{
  mx_err rc = get_str(c, b, path, "address", 1, "an IP address like 198.51.100.2", valid_ip, &d->wg_address);
  if (!rc)
    rc = get_int32(c, b, path, "port", 1, 65535, &d->wg_port);
  if (!rc)
    rc = get_path(c, b, path, "hmac_key_file", 1, &d->wg_hmac_key_file);
  if (!rc)
    rc = get_str(c, b, path, "public_key", 0, "a WireGuard public key (44 characters of base64)",
                 valid_wg_key, &d->wg_public_key);
  return rc;
}

static mx_err parse_backend(const struct cfg *c, const cJSON *dev, const char *dpath, struct mx_device_config *d)
{
  static const char expect[] = "one of local, ssh, wg";
  char path[CFG_PATH_LEN];
  char kpath[CFG_PATH_LEN];
  char qual[48];
  path_key(path, dpath, "backend");
  path_key(kpath, path, "kind");
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(dev, "backend");
  if (!b)
    return MX_OK;
  if (!cJSON_IsObject(b))
    return cfg_bad(c, path, "an object like {\"kind\": \"local\"}", b);
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(b, "kind");
  if (!k)
    return cfg_fail(c, kpath, "required key is missing, expected %s", expect);
  const char *kind = cJSON_IsString(k) ? k->valuestring : "";
  const char *const *keys = !strcmp(kind, "local") ? k_local : !strcmp(kind, "ssh") ? k_ssh
                          : !strcmp(kind, "wg") ? k_wg : NULL;
  if (!keys)
    return cfg_bad(c, kpath, expect, k);
  snprintf(qual, sizeof(qual), " for kind '%s'", kind);
  mx_err rc = cfg_object(c, b, path, keys, qual);
  if (rc)
    return rc;
  d->backend = keys == k_ssh ? MX_BACKEND_SSH : keys == k_wg ? MX_BACKEND_WG : MX_BACKEND_LOCAL;
  if (d->backend == MX_BACKEND_SSH)
    return parse_ssh(c, b, path, d);
  if (d->backend == MX_BACKEND_WG)
    return parse_wg(c, b, path, d);
  return MX_OK;
}

static mx_err device_defaults(struct mx_device_config *d)
{
  d->backend = MX_BACKEND_LOCAL;
  d->ssh_port = 22;
  d->wg_port = 7443;
  d->os = mx_strdup("linux");
  return d->os ? MX_OK : MX_ERR_NOMEM;
}

static mx_err parse_device(const struct cfg *c, const cJSON *dev, const char *path, struct mx_device_config *d)
{
  mx_err rc = device_defaults(d);
  if (!rc)
    rc = cfg_object(c, dev, path, k_device, NULL);
  if (!rc)
    rc = get_str(c, dev, path, "name", 1, "a device name like pc1 (1-32 of a-z, 0-9, '-', not first)",
                 valid_device_name, &d->name);
  if (!rc)
    rc = parse_matrix(c, dev, path, d);
  if (!rc)
    rc = get_str(c, dev, path, "display_name", 0, "a non-empty string", valid_nonempty, &d->display_name);
  if (!rc)
    rc = get_str(c, dev, path, "os", 0, "one of linux, macos, windows", valid_os, &d->os);
  if (!rc)
    rc = get_path(c, dev, path, "manifest", 0, &d->manifest);
  if (!rc)
    rc = get_path(c, dev, path, "prompt", 0, &d->prompt);
  if (!rc)
    rc = parse_backend(c, dev, path, d);
  if (rc || d->display_name)
    return rc;
  size_t n = strlen(d->name) + 7;
  d->display_name = malloc(n);
  if (!d->display_name)
    return MX_ERR_NOMEM;
  snprintf(d->display_name, n, "agent %s", d->name);
  return MX_OK;
}

/* Names and user IDs are unique; a device is never also an operator (it
 * would then obey its own messages). */
static mx_err check_device_unique(const struct cfg *c, const struct mx_config *cfg, size_t i)
{
  const struct mx_device_config *d = &cfg->devices[i];
  char path[CFG_PATH_LEN];
  for (size_t j = 0; j < i; j++) {
    if (strcmp(cfg->devices[j].name, d->name) == 0) {
      snprintf(path, sizeof(path), "devices[%zu].name", i);
      return cfg_fail(c, path, "duplicate device name '%s' (also devices[%zu])", d->name, j);
    }
    if (strcmp(cfg->devices[j].user_id, d->user_id) == 0) {
      snprintf(path, sizeof(path), "devices[%zu].matrix.user_id", i);
      return cfg_fail(c, path, "duplicate user ID '%s' (also devices[%zu])", d->user_id, j);
    }
  }
  for (size_t j = 0; j < cfg->n_operators; j++) {
    if (strcmp(cfg->operators[j], d->user_id) == 0) {
      snprintf(path, sizeof(path), "devices[%zu].matrix.user_id", i);
      return cfg_fail(c, path, "expected a user ID that is not an operator, got '%s' (also operators[%zu])",
                      d->user_id, j);
    }
  }
  return MX_OK;
}

static mx_err parse_devices(const struct cfg *c, const cJSON *root, struct mx_config *cfg)
{
  static const char expect[] = "an array of device objects";
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "devices");
  char path[CFG_PATH_LEN];
  if (!a)
    return cfg_fail(c, "devices", "required key is missing, expected %s", expect);
  if (!cJSON_IsArray(a))
    return cfg_bad(c, "devices", expect, a);
  cfg->devices = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof(*cfg->devices));
  if (!cfg->devices)
    return MX_ERR_NOMEM;
  for (const cJSON *it = a->child; it; it = it->next) {
    size_t i = cfg->n_devices;
    path_index(path, "devices", i);
    /* Counted first so that mx_config_free releases a half-filled entry. */
    cfg->n_devices++;
    mx_err rc = parse_device(c, it, path, &cfg->devices[i]);
    if (!rc)
      rc = check_device_unique(c, cfg, i);
    if (rc)
      return rc;
  }
  return MX_OK;
}

static mx_err parse_top(const struct cfg *c, const cJSON *root, struct mx_config *cfg)
{
  char got[96];
  if (!cJSON_IsObject(root)) {
    describe(root, 0, got, sizeof(got));
    return cfg_fail(c, NULL, "expected a JSON object at the top level, got %s", got);
  }
  mx_err rc = cfg_object(c, root, "", k_top, NULL);
  if (!rc)
    rc = get_str(c, root, "", "homeserver", 1, "an http(s) URL like http://127.0.0.1:8008", valid_url,
                 &cfg->homeserver);
  if (!rc)
    rc = get_path(c, root, "", "data_dir", 1, &cfg->data_dir);
  if (!rc)
    rc = parse_operators(c, root, cfg);
  if (!rc)
    rc = get_str(c, root, "", "alerts_room", 0,
                 "a room alias like #operator-alerts:example.org or a room ID like !abc:example.org",
                 valid_room, &cfg->alerts_room);
  if (!rc)
    rc = parse_log_level(c, root, cfg);
  if (!rc)
    rc = parse_bot(c, root, cfg);
  if (!rc)
    rc = parse_health(c, root, cfg);
  if (!rc)
    rc = parse_redact(c, root, cfg);
  if (!rc)
    rc = copy_block(c, root, "llm", "llm", &cfg->llm);
  if (!rc)
    rc = copy_block(c, root, "speech", "llm speech", &cfg->speech);
  if (!rc)
    rc = parse_registration(c, root, cfg);
  if (!rc)
    rc = parse_devices(c, root, cfg);
  return rc;
}

/* ---- file -------------------------------------------------------------- */

/* Line and column (1-based, in characters) of byte offset off. */
static void line_col(const char *text, size_t off, size_t *line, size_t *col)
{
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off && text[i]; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
      (*col)++;
    }
  }
}

static mx_err read_json(struct cfg *c, cJSON **out)
{
  char abs[PATH_MAX];
  char inner[MX_ERRBUF_LEN];
  struct mx_buf text;
  if (!realpath(c->file, abs))
    return mx_fail(MX_ERR_CONFIG, c->err, "%s: cannot open: %s", c->file, strerror(errno));
  c->dir = mx_strdup(abs);
  if (!c->dir)
    return MX_ERR_NOMEM;
  char *slash = strrchr(c->dir, '/');
  slash[slash == c->dir ? 1 : 0] = '\0';
  if (mx_file_read(abs, CFG_MAX_BYTES, &text, inner))
    return mx_fail(MX_ERR_CONFIG, c->err, "%s: %s", c->file, inner);
  mx_err rc = MX_OK;
  if (!mx_utf8_valid(text.buf, text.len)) {
    rc = mx_fail(MX_ERR_CONFIG, c->err, "%s: expected UTF-8 JSON text without NUL bytes", c->file);
  } else {
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text.buf, text.len + 1, &end, 1);
    if (!*out) {
      size_t line, col;
      size_t off = end && end >= text.buf ? (size_t)(end - text.buf) : 0;
      line_col(text.buf, off, &line, &col);
      rc = mx_fail(MX_ERR_CONFIG, c->err, "%s: line %zu, column %zu: invalid JSON", c->file, line, col);
    }
  }
  mx_buf_release(&text);
  return rc;
}

static mx_err set_defaults(struct mx_config *cfg, const char *file)
{
  cfg->command_max_age_ms = 600000;
  cfg->require_verified_sender = 1;
  cfg->sync_timeout_ms = 30000;
  cfg->sync_timeout_max_ms = 120000;
  cfg->http_idle_timeout_ms = 30000;
  cfg->log_level = -1;
  cfg->health_interval_s = 60;
  cfg->health_stale_after_s = 600;
  cfg->health_repeat_s = 4 * 3600;
  cfg->health_pending_s = 60;
  cfg->health_keep_firing_s = 300;
  cfg->path = mx_strdup(file);
  cfg->wg_interface = mx_strdup("wg0");
  return cfg->path && cfg->wg_interface ? MX_OK : MX_ERR_NOMEM;
}

mx_err mx_config_load(const char *file, struct mx_config **out, char *err)
{
  struct cfg c = {file, NULL, err};
  cJSON *root = NULL;
  *out = NULL;
  struct mx_config *cfg = calloc(1, sizeof(*cfg));
  if (!cfg)
    return MX_ERR_NOMEM;
  mx_err rc = set_defaults(cfg, file);
  if (!rc)
    rc = read_json(&c, &root);
  if (!rc)
    rc = parse_top(&c, root, cfg);
  if (!rc) {
    size_t n = strlen(cfg->homeserver);
    while (n > 0 && cfg->homeserver[n - 1] == '/')
      cfg->homeserver[--n] = '\0';
  }
  cJSON_Delete(root);
  free(c.dir);
  if (rc == MX_ERR_NOMEM)
    mx_fail(rc, err, "%s: out of memory while loading", file);
  if (rc) {
    mx_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return MX_OK;
}

/* ---- the rest of the API ----------------------------------------------- */

static void free_device(struct mx_device_config *d)
{
  char **fields[] = {&d->name, &d->user_id, &d->password_file, &d->display_name, &d->os, &d->manifest,
                     &d->prompt, &d->ssh_host, &d->ssh_user, &d->ssh_key_file, &d->wg_address,
                     &d->wg_hmac_key_file, &d->wg_public_key, &d->ssh_known_hosts};
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
    free(*fields[i]);
}

static void free_list(char **list, size_t n)
{
  for (size_t i = 0; list && i < n; i++)
    free(list[i]);
  free(list);
}

void mx_config_free(struct mx_config *cfg)
{
  if (!cfg)
    return;
  for (size_t i = 0; cfg->devices && i < cfg->n_devices; i++)
    free_device(&cfg->devices[i]);
  free(cfg->devices);
  free_list(cfg->operators, cfg->n_operators);
  free_list(cfg->operator_master_keys, cfg->n_operators + 1); /* calloc'd: a key parsed before an error counts */
  /* Literals are secrets: wipe before freeing. */
  for (size_t i = 0; cfg->redact_literals && i < cfg->n_redact_literals; i++)
    memset(cfg->redact_literals[i], 0, strlen(cfg->redact_literals[i]));
  free_list(cfg->redact_literals, cfg->n_redact_literals);
  char *fields[] = {cfg->path, cfg->homeserver, cfg->data_dir, cfg->alerts_room, cfg->http_listen,
                    cfg->wg_interface, cfg->registration_shared_secret_file, cfg->registration_admin_token_file};
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
    free(fields[i]);
  cJSON_Delete(cfg->llm);
  cJSON_Delete(cfg->speech);
  cJSON_Delete(cfg->registration);
  free(cfg);
}

const struct mx_device_config *mx_config_device(const struct mx_config *cfg, const char *name)
{
  for (size_t i = 0; cfg && name && i < cfg->n_devices; i++)
    if (strcmp(cfg->devices[i].name, name) == 0)
      return &cfg->devices[i];
  return NULL;
}

const char *mx_backend_name(enum mx_backend_kind k)
{
  switch (k) {
  case MX_BACKEND_LOCAL: return "local";
  case MX_BACKEND_SSH: return "ssh";
  case MX_BACKEND_WG: return "wg";
  }
  return "unknown";
}

void mx_config_each_key(void (*fn)(void *ctx, const char *path), void *ctx)
{
  char path[CFG_PATH_LEN];
  for (size_t t = 0; t < sizeof(k_documented) / sizeof(k_documented[0]); t++) {
    for (const char *const *k = k_documented[t].keys; *k; k++) {
      snprintf(path, sizeof(path), "%s%s", k_documented[t].prefix, *k);
      fn(ctx, path);
    }
  }
}
