/*
 * agent_config.c - strict parsing of mxfleet-agent's JSON config; see
 * agent_config.h. Layer: devices/agent; common/ only. The parsed cJSON tree
 * is owned here and freed before returning.
 */
#include "agent_config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mx_json.h"
#include "mx_log.h"
#include "mx_util.h"

#define AGENT_CONFIG_MAX ((size_t)256 * 1024)

static mx_err check_keys(const cJSON *obj, const char *const *keys, const char *src, const char *where, char *err)
{
  const cJSON *it;
  cJSON_ArrayForEach(it, obj)
  {
    int ok = 0;
    for (int k = 0; keys[k] && !ok; k++)
      ok = strcmp(keys[k], it->string) == 0;
    if (!ok)
      return mx_fail(MX_ERR_CONFIG, err, "%s: %s%sunknown key '%s'", src, where, *where ? ": " : "", it->string);
  }
  return MX_OK;
}

/* Copies a string member; required ones must be present and non-empty. */
static mx_err get_str(const cJSON *o, const char *key, int required, const char *src, char **out, char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v && !required)
    return MX_OK;
  if (!v)
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: required key is missing", src, key);
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return mx_fail(MX_ERR_CONFIG, err, "%s: %s: expected a non-empty string", src, key);
  *out = mx_strdup(v->valuestring);
  return *out ? MX_OK : MX_ERR_NOMEM;
}

static mx_err get_uint(const cJSON *o, const char *key, const char *src, long lo, long hi, unsigned long *out,
                       char *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  int64_t n = 0;
  if (!v)
    return MX_OK; /* keep the default */
  if (!mx_json_int(o, key, &n) || n < lo || n > hi) {
    char *txt = cJSON_PrintUnformatted(v);
    mx_err rc = mx_fail(MX_ERR_CONFIG, err, "%s: limits.%s: expected an integer %ld-%ld, got '%s'", src, key, lo, hi,
                        txt ? txt : "?");
    cJSON_free(txt);
    return rc;
  }
  *out = (unsigned long)n;
  return MX_OK;
}

static mx_err parse_listen(const char *src, const char *s, int allow_zero, struct agent_config *c, char *err)
{
  const char *colon = strrchr(s, ':');
  char host[128];
  if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
    return mx_fail(MX_ERR_CONFIG, err, "%s: listen: expected ADDRESS:PORT like 198.51.100.2:7443, got '%s'", src, s);
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  memcpy(host, h, hl);
  host[hl] = '\0';
  char *end = NULL;
  long port = strtol(colon + 1, &end, 10);
  unsigned char a[16];
  int v4 = inet_pton(AF_INET, host, a) == 1, v6 = !v4 && inet_pton(AF_INET6, host, a) == 1;
  if (!v4 && !v6)
    return mx_fail(MX_ERR_CONFIG, err, "%s: listen: expected an IP address (the WireGuard address), got '%s'", src,
                   host);
  if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
    return mx_fail(MX_ERR_CONFIG, err, "%s: listen: expected the device's WireGuard address, not the wildcard '%s'",
                   src, host);
  if (!end || *end || port < (allow_zero ? 0 : 1) || port > 65535)
    return mx_fail(MX_ERR_CONFIG, err, "%s: listen: expected a port 1-65535, got '%s'", src, colon + 1);
  c->listen_host = mx_strdup(host);
  c->listen_port = (int)port;
  return c->listen_host ? MX_OK : MX_ERR_NOMEM;
}

static mx_err parse_limits(const cJSON *l, const char *src, struct agent_config *c, char *err)
{
  static const char *const keys[] = {"max_body", "max_connections", "per_ip_connections", "connection_timeout_s",
                                     NULL};
  unsigned long body = c->max_body, conns = c->max_connections, perip = c->per_ip_connections,
                to = c->connection_timeout_s;
  mx_err rc = MX_OK;
  if (!l)
    return MX_OK;
  if (!cJSON_IsObject(l))
    return mx_fail(MX_ERR_CONFIG, err, "%s: limits: expected an object", src);
  if ((rc = check_keys(l, keys, src, "limits", err)) || (rc = get_uint(l, "max_body", src, 1024, 64L << 20, &body, err)) ||
      (rc = get_uint(l, "max_connections", src, 1, 1024, &conns, err)) ||
      (rc = get_uint(l, "per_ip_connections", src, 1, 1024, &perip, err)) ||
      (rc = get_uint(l, "connection_timeout_s", src, 1, 3600, &to, err)))
    return rc;
  c->max_body = body;
  c->max_connections = (unsigned)conns;
  c->per_ip_connections = (unsigned)perip;
  c->connection_timeout_s = (unsigned)to;
  return MX_OK;
}

static int device_name_ok(const char *s)
{
  size_t n = strlen(s);
  if (n < 1 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
      return 0;
  return 1;
}

static mx_err parse(const cJSON *j, int allow_zero, struct agent_config *c, char *err)
{
  static const char *const keys[] = {"device", "listen", "key_file", "manifest", "data_dir", "user", "log_level",
                                     "limits", "comment", NULL};
  const char *src = c->source;
  char *listen = NULL;
  enum mx_log_level lvl;
  if (!cJSON_IsObject(j))
    return mx_fail(MX_ERR_CONFIG, err, "%s: expected a JSON object at the top level", src);
  mx_err rc = check_keys(j, keys, src, "", err);
  if (!rc)
    rc = get_str(j, "device", 1, src, &c->device, err);
  if (!rc && !device_name_ok(c->device))
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: device: expected 1-64 of [A-Za-z0-9._-], got '%s'", src, c->device);
  if (!rc)
    rc = get_str(j, "listen", 1, src, &listen, err);
  if (!rc)
    rc = parse_listen(src, listen, allow_zero, c, err);
  if (!rc)
    rc = get_str(j, "key_file", 1, src, &c->key_file, err);
  if (!rc)
    rc = get_str(j, "manifest", 1, src, &c->manifest, err);
  if (!rc)
    rc = get_str(j, "data_dir", 1, src, &c->data_dir, err);
  if (!rc)
    rc = get_str(j, "user", 0, src, &c->user, err);
  if (!rc)
    rc = get_str(j, "log_level", 0, src, &c->log_level, err);
  if (!rc && c->log_level && mx_log_parse_level(c->log_level, &lvl))
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: log_level: expected debug, info, warn or error, got '%s'", src,
                 c->log_level);
  if (!rc)
    rc = parse_limits(cJSON_GetObjectItemCaseSensitive(j, "limits"), src, c, err);
  free(listen);
  return rc;
}

mx_err agent_config_load(const char *path, int allow_port_zero, struct agent_config *out, char *err)
{
  memset(out, 0, sizeof(*out));
  out->max_body = (size_t)1 << 20;
  out->max_connections = 32;
  out->per_ip_connections = 8;
  out->connection_timeout_s = 30;
  out->source = mx_strdup(path);
  if (!out->source)
    return MX_ERR_NOMEM;
  struct mx_buf b = MX_BUF_INIT(AGENT_CONFIG_MAX);
  mx_err rc = mx_file_read(path, AGENT_CONFIG_MAX, &b, err);
  if (rc) {
    agent_config_free(out);
    return rc;
  }
  const char *where = NULL;
  cJSON *j = cJSON_ParseWithOpts(b.buf ? b.buf : "", &where, 1);
  if (!j)
    rc = mx_fail(MX_ERR_CONFIG, err, "%s: invalid JSON at byte %ld", path, where && b.buf ? (long)(where - b.buf) : 0L);
  else
    rc = parse(j, allow_port_zero, out, err);
  cJSON_Delete(j);
  mx_buf_release(&b);
  if (rc)
    agent_config_free(out);
  return rc;
}

void agent_config_free(struct agent_config *c)
{
  free(c->source);
  free(c->device);
  free(c->listen_host);
  free(c->key_file);
  free(c->manifest);
  free(c->data_dir);
  free(c->user);
  free(c->log_level);
  memset(c, 0, sizeof(*c));
}
