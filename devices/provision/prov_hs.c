/*
 * prov_hs.c - device accounts on the homeserver: Synapse shared-secret
 * registration (nonce + HMAC-SHA1), the admin user API, password login,
 * logout and deactivation. Layer: devices/provision; plain HTTP through
 * prov_http(), never the bot's client. Never logs or quotes a password,
 * token or the shared secret.
 */
#include "prov_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mx_crypto.h"
#include "mx_json.h"
#include "mx_util.h"

static const char *errcode(const cJSON *r)
{
  const char *e = mx_json_str(r, "errcode");
  return e ? e : "no errcode";
}

static mx_err status_fail(const char *what, long st, const cJSON *r, char *err)
{
  mx_err code = st == 401 || st == 403 ? MX_ERR_AUTH : st == 429 ? MX_ERR_RATE_LIMITED : MX_ERR_HTTP;
  const char *msg = mx_json_str(r, "error");
  return mx_fail(code, err, "%s: HTTP %ld %s%s%s", what, st, errcode(r), msg ? ": " : "", msg ? msg : "");
}

/* Synapse: HMAC-SHA1 over nonce NUL user NUL password NUL ("admin" | "notadmin"). */
static mx_err reg_mac(const char *secret, const char *nonce, const char *user, const char *pw, int admin,
                      char hex[41])
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  mx_err rc = mx_buf_adds(&b, nonce);
  if (!rc)
    rc = mx_buf_add(&b, "", 1);
  if (!rc)
    rc = mx_buf_adds(&b, user);
  if (!rc)
    rc = mx_buf_add(&b, "", 1);
  if (!rc)
    rc = mx_buf_adds(&b, pw);
  if (!rc)
    rc = mx_buf_add(&b, "", 1);
  if (!rc)
    rc = mx_buf_adds(&b, admin ? "admin" : "notadmin");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!rc && !HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)b.buf, b.len, md, &mdlen))
    rc = MX_ERR_CRYPTO;
  if (!rc)
    mx_hex(md, mdlen, hex);
  mx_buf_release(&b); /* holds the password */
  return rc;
}

static mx_err get_nonce(const char *url, char **nonce, char *err)
{
  long st = 0;
  cJSON *r = NULL;
  mx_err rc = prov_http("GET", url, NULL, NULL, &st, &r, err);
  if (!rc && st != 200)
    rc = status_fail("shared-secret registration nonce", st, r, err);
  const char *n = r ? mx_json_str(r, "nonce") : NULL;
  if (!rc && !n)
    rc = mx_fail(MX_ERR_HTTP, err, "shared-secret registration: reply has no nonce");
  if (!rc && !(*nonce = mx_strdup(n)))
    rc = MX_ERR_NOMEM;
  cJSON_Delete(r);
  return rc;
}

mx_err prov_hs_register(const char *hs, const char *secret, const char *localpart, const char *password, int admin,
                        char *err)
{
  char *url = prov_url(hs, "/_synapse/admin/v1/register", NULL);
  char *nonce = NULL;
  char mac[41] = "";
  cJSON *body = NULL, *r = NULL;
  long st = 0;
  mx_err rc = url ? get_nonce(url, &nonce, err) : MX_ERR_NOMEM;
  if (!rc)
    rc = reg_mac(secret, nonce, localpart, password, admin, mac);
  if (!rc && !(body = cJSON_CreateObject()))
    rc = MX_ERR_NOMEM;
  if (!rc) {
    cJSON_AddStringToObject(body, "nonce", nonce);
    cJSON_AddStringToObject(body, "username", localpart);
    cJSON_AddStringToObject(body, "password", password);
    cJSON_AddBoolToObject(body, "admin", admin);
    cJSON_AddStringToObject(body, "mac", mac);
    rc = prov_http("POST", url, NULL, body, &st, &r, err);
  }
  if (!rc && st == 400 && strcmp(errcode(r), "M_USER_IN_USE") == 0)
    rc = mx_fail(MX_ERR_CONFLICT, err, "user '%s' already exists on the homeserver (a revoked or rolled-back "
                 "device keeps its name taken; pick another name)", localpart);
  else if (!rc && st != 200)
    rc = status_fail("shared-secret registration", st, r, err);
  free(url);
  free(nonce);
  cJSON_Delete(body);
  cJSON_Delete(r);
  return rc;
}

mx_err prov_hs_admin_get(const char *hs, const char *token, const char *user_id, int *exists, int *deactivated,
                         char *err)
{
  char *url = prov_url(hs, "/_synapse/admin/v2/users/%s", user_id);
  cJSON *r = NULL;
  long st = 0;
  mx_err rc = url ? prov_http("GET", url, token, NULL, &st, &r, err) : MX_ERR_NOMEM;
  *exists = *deactivated = 0;
  if (!rc && st == 200) {
    *exists = 1;
    *deactivated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "deactivated"));
  } else if (!rc && st != 404) {
    rc = status_fail("admin user lookup", st, r, err);
  }
  free(url);
  cJSON_Delete(r);
  return rc;
}

mx_err prov_hs_admin_put(const char *hs, const char *token, const char *user_id, const char *password,
                         const char *display, char *err)
{
  char *url = prov_url(hs, "/_synapse/admin/v2/users/%s", user_id);
  cJSON *body = cJSON_CreateObject(), *r = NULL;
  long st = 0;
  mx_err rc = url && body ? MX_OK : MX_ERR_NOMEM;
  if (!rc) {
    cJSON_AddStringToObject(body, "password", password);
    cJSON_AddStringToObject(body, "displayname", display);
    cJSON_AddBoolToObject(body, "admin", 0);
    rc = prov_http("PUT", url, token, body, &st, &r, err);
  }
  if (!rc && st != 200 && st != 201)
    rc = status_fail("admin user create", st, r, err);
  free(url);
  cJSON_Delete(body);
  cJSON_Delete(r);
  return rc;
}

mx_err prov_hs_login(const char *hs, const char *user_id, const char *password, char **token, char *err)
{
  char *url = prov_url(hs, "/_matrix/client/v3/login", NULL);
  cJSON *body = cJSON_CreateObject(), *r = NULL;
  long st = 0;
  *token = NULL;
  mx_err rc = url && body ? MX_OK : MX_ERR_NOMEM;
  if (!rc) {
    cJSON_AddStringToObject(body, "type", "m.login.password");
    cJSON *id = cJSON_AddObjectToObject(body, "identifier");
    cJSON_AddStringToObject(id, "type", "m.id.user");
    cJSON_AddStringToObject(id, "user", user_id);
    cJSON_AddStringToObject(body, "password", password);
    cJSON_AddStringToObject(body, "initial_device_display_name", "mxfleet provisioning");
    rc = prov_http("POST", url, NULL, body, &st, &r, err);
  }
  const char *tok = r ? mx_json_str(r, "access_token") : NULL;
  if (!rc && st == 403 && strcmp(errcode(r), "M_USER_DEACTIVATED") == 0)
    rc = mx_fail(MX_ERR_DENIED, err, "login %s: the account is deactivated", user_id);
  else if (!rc && st != 200)
    rc = status_fail("login", st, r, err);
  else if (!rc && !tok)
    rc = mx_fail(MX_ERR_HTTP, err, "login %s: reply has no access_token", user_id);
  if (!rc && !(*token = mx_strdup(tok)))
    rc = MX_ERR_NOMEM;
  free(url);
  cJSON_Delete(body);
  cJSON_Delete(r);
  return rc;
}

void prov_hs_logout(const char *hs, const char *token)
{
  char *url = prov_url(hs, "/_matrix/client/v3/logout", NULL);
  cJSON *r = NULL;
  long st = 0;
  char err[MX_ERRBUF_LEN];
  if (url)
    (void)prov_http("POST", url, token, NULL, &st, &r, err); /* best effort: the device is ours */
  free(url);
  cJSON_Delete(r);
}

static mx_err admin_deactivate(const char *hs, const char *token, const char *user_id, char *err)
{
  char *url = prov_url(hs, "/_synapse/admin/v1/deactivate/%s", user_id);
  cJSON *body = cJSON_CreateObject(), *r = NULL;
  long st = 0;
  mx_err rc = url && body ? MX_OK : MX_ERR_NOMEM;
  if (!rc) {
    cJSON_AddBoolToObject(body, "erase", 0);
    rc = prov_http("POST", url, token, body, &st, &r, err);
  }
  if (!rc && st != 200)
    rc = status_fail("admin deactivate", st, r, err);
  free(url);
  cJSON_Delete(body);
  cJSON_Delete(r);
  return rc;
}

/* Client API deactivation: the first POST opens a UIA session (401 with a
 * session id), the second answers it with the password. */
static mx_err self_deactivate(const char *hs, const char *user_id, const char *password, char *err)
{
  char *token = NULL;
  mx_err rc = prov_hs_login(hs, user_id, password, &token, err);
  if (rc == MX_ERR_DENIED)
    return MX_OK; /* already deactivated */
  if (rc)
    return rc;
  char *url = prov_url(hs, "/_matrix/client/v3/account/deactivate", NULL);
  cJSON *body = cJSON_CreateObject(), *r = NULL;
  long st = 0;
  rc = url && body ? prov_http("POST", url, token, body, &st, &r, err) : MX_ERR_NOMEM;
  const char *session = r ? mx_json_str(r, "session") : NULL;
  if (!rc && st == 401 && session) {
    cJSON *auth = cJSON_AddObjectToObject(body, "auth");
    cJSON_AddStringToObject(auth, "type", "m.login.password");
    cJSON_AddStringToObject(auth, "session", session);
    cJSON *id = cJSON_AddObjectToObject(auth, "identifier");
    cJSON_AddStringToObject(id, "type", "m.id.user");
    cJSON_AddStringToObject(id, "user", user_id);
    cJSON_AddStringToObject(auth, "password", password);
    cJSON_Delete(r);
    r = NULL;
    rc = prov_http("POST", url, token, body, &st, &r, err);
  }
  if (!rc && st != 200)
    rc = status_fail("deactivate", st, r, err);
  free(url);
  free(token);
  cJSON_Delete(body);
  cJSON_Delete(r);
  return rc;
}

mx_err prov_hs_deactivate(const char *hs, const char *admin_token, const char *user_id, const char *password,
                          char *err)
{
  if (admin_token)
    return admin_deactivate(hs, admin_token, user_id, err);
  if (!password)
    return mx_fail(MX_ERR_CONFIG, err, "deactivate %s: no admin token and no password file", user_id);
  return self_deactivate(hs, user_id, password, err);
}
