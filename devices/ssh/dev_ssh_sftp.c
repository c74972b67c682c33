/*
 * dev_ssh_sftp.c - ssh.fs_read and ssh.fs_list over SFTP with byte and entry
 * caps. Paths must be absolute, valid UTF-8; the manifest check happened in
 * tools/ before we are called, so a denied path never reaches the wire.
 * Blocking SFTP calls are bounded by the session timeout, which the caller
 * sets to the call's time limit. Layer: devices/ssh. cJSON args borrowed;
 * the listing cJSON is built and freed here.
 */
#include "dev_ssh_int.h"

#include <fcntl.h>
#include <string.h>

#include <libssh/sftp.h>

#include "mx_json.h"
#include "mx_util.h"

#define DEV_SSH_LIST_DEFAULT 1000
#define DEV_SSH_LIST_MAX 100000

static mx_err arg_path(const struct dev_call *call, const char **path, char *err)
{
  *path = mx_json_str(call->args, "path");
  if (!*path || (*path)[0] != '/')
    return mx_fail(MX_ERR_INVALID, err, "%s args.path: expected an absolute path, got '%s'", call->tool,
                   *path ? *path : "(missing)");
  if (!mx_utf8_valid(*path, strlen(*path)))
    return mx_fail(MX_ERR_INVALID, err, "%s args.path: expected valid UTF-8", call->tool);
  return MX_OK;
}

static size_t arg_limit(const struct dev_call *call, const char *key, size_t dflt, size_t max)
{
  int64_t v = 0;
  if (!mx_json_int(call->args, key, &v) || v <= 0)
    return dflt;
  return (uint64_t)v < max ? (size_t)v : max;
}

static mx_err open_sftp(ssh_session s, const struct dev_call *call, sftp_session *out, int *retry, char *err)
{
  long secs = call->timeout_ms > 0 ? (call->timeout_ms + 999) / 1000 : 30;
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs);
  *out = sftp_new(s);
  if (!*out) {
    *retry = 1; /* the subsystem channel could not be opened: nothing sent */
    return mx_fail(MX_ERR_UNAVAILABLE, err, "ssh: cannot start SFTP: %s", ssh_get_error(s));
  }
  if (sftp_init(*out) != SSH_OK) {
    sftp_free(*out);
    *out = NULL;
    return mx_fail(MX_ERR_UNAVAILABLE, err, "ssh: SFTP handshake failed: %s", ssh_get_error(s));
  }
  return MX_OK;
}

static mx_err sftp_refusal(sftp_session sf, struct dev_result *r, const char *what, const char *path)
{
  int code = sftp_get_error(sf);
  const char *why = code == SSH_FX_NO_SUCH_FILE ? "no such file"
                    : code == SSH_FX_PERMISSION_DENIED ? "permission denied"
                                                      : "sftp error";
  return dev_result_set(r, DEV_FAILED, "%s '%s': %s (sftp code %d)", what, path, why, code);
}

mx_err dev_ssh_fs_read(ssh_session s, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  const char *path;
  sftp_session sf = NULL;
  *retry = 0;
  mx_err rc = arg_path(call, &path, err);
  if (rc)
    return rc;
  size_t cap = arg_limit(call, "max_bytes", dev_ssh_cap(call), dev_ssh_cap(call));
  rc = open_sftp(s, call, &sf, retry, err);
  if (rc)
    return rc;
  sftp_file f = sftp_open(sf, path, O_RDONLY, 0);
  if (!f) {
    sftp_refusal(sf, r, "cannot open", path);
    goto done;
  }
  char buf[32768];
  size_t kept = 0;
  for (;;) {
    ssize_t n = sftp_read(f, buf, sizeof(buf));
    if (n < 0) {
      sftp_refusal(sf, r, "cannot read", path);
      break;
    }
    if (n == 0 || dev_ssh_keep(r, &r->out, cap, &kept, buf, (size_t)n))
      break;
    if (r->truncated)
      break; /* a file has no process to drain: stop at the cap */
  }
  if (!r->detail) {
    r->status = DEV_DONE;
    r->exit_code = 0;
  }
  sftp_close(f);
done:
  sftp_free(sf);
  return MX_OK;
}

static const char *entry_type(uint8_t t)
{
  switch (t) {
  case SSH_FILEXFER_TYPE_REGULAR: return "file";
  case SSH_FILEXFER_TYPE_DIRECTORY: return "dir";
  case SSH_FILEXFER_TYPE_SYMLINK: return "symlink";
  default: return "other";
  }
}

static mx_err add_entry(cJSON *list, sftp_attributes a)
{
  cJSON *e = cJSON_CreateObject();
  if (!e || !cJSON_AddStringToObject(e, "name", a->name ? a->name : "") ||
      !cJSON_AddStringToObject(e, "type", entry_type(a->type)) ||
      !cJSON_AddNumberToObject(e, "size", (double)a->size) ||
      !cJSON_AddNumberToObject(e, "mode", (double)(a->permissions & 07777)) ||
      !cJSON_AddNumberToObject(e, "mtime", (double)a->mtime)) {
    cJSON_Delete(e);
    return MX_ERR_NOMEM;
  }
  cJSON_AddItemToArray(list, e);
  return MX_OK;
}

static mx_err list_dir(sftp_session sf, sftp_dir d, size_t max, struct dev_result *r, char *err)
{
  cJSON *list = cJSON_CreateArray();
  size_t count = 0;
  mx_err rc = list ? MX_OK : MX_ERR_NOMEM;
  sftp_attributes a;
  while (!rc && (a = sftp_readdir(sf, d)) != NULL) {
    int skip = a->name && (strcmp(a->name, ".") == 0 || strcmp(a->name, "..") == 0);
    if (!skip && count >= max)
      r->truncated = 1;
    else if (!skip) {
      rc = add_entry(list, a);
      count++;
    }
    sftp_attributes_free(a);
    if (r->truncated)
      break;
  }
  if (!rc) {
    char *txt = cJSON_PrintUnformatted(list);
    rc = txt && !mx_buf_adds(&r->out, txt) ? MX_OK : MX_ERR_NOMEM;
    cJSON_free(txt);
  }
  cJSON_Delete(list);
  if (rc)
    return mx_fail(rc, err, "ssh.fs_list: listing does not fit the output cap");
  r->status = DEV_DONE;
  r->exit_code = 0;
  return MX_OK;
}

mx_err dev_ssh_fs_list(ssh_session s, const struct dev_call *call, struct dev_result *r, int *retry, char *err)
{
  const char *path;
  sftp_session sf = NULL;
  *retry = 0;
  mx_err rc = arg_path(call, &path, err);
  if (rc)
    return rc;
  size_t max = arg_limit(call, "max_entries", DEV_SSH_LIST_DEFAULT, DEV_SSH_LIST_MAX);
  rc = open_sftp(s, call, &sf, retry, err);
  if (rc)
    return rc;
  sftp_dir d = sftp_opendir(sf, path);
  if (!d)
    sftp_refusal(sf, r, "cannot list", path);
  else {
    rc = list_dir(sf, d, max, r, err);
    sftp_closedir(d);
  }
  sftp_free(sf);
  return rc;
}
