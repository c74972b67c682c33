/*
 * dev_ssh_sftp.c - fs.read, fs.list and fs.stat over SFTP, with byte and
 * entry caps, printing what the local backend prints. Every path is first
 * resolved by the server (SFTP realpath: symlinks and '..' followed there)
 * and the resolved path must pass the caller's check_path (the manifest's
 * readable roots), so a symlink on the host cannot lead out of a root; the
 * resolved path is what is then opened. (A file swapped for a symlink
 * between the two requests is the remaining race; the agent backend, with
 * openat2 on the device, has none.) fs.read refuses anything but a regular
 * file before opening it, so a FIFO cannot hang the call.
 * Blocking SFTP calls are bounded by the session timeout, which the caller
 * sets to the call's time limit. Layer: devices/ssh. cJSON args borrowed;
 * the result JSON is built and freed here.
 */
#include "dev_ssh_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libssh/sftp.h>

#include "mx_json.h"
#include "mx_util.h"

#define DEV_SSH_LIST_MAX 10000 /* entries, as the local backend */

static mx_err arg_path(const struct dev_call *call, const char **path, char *err)
{
  *path = mx_json_str(call->args, "path");
  if (!*path || !**path)
    return mx_fail(MX_ERR_INVALID, err, "%s args.path: expected a path, got '%s'", call->tool,
                   *path ? *path : "(missing)");
  if (!mx_utf8_valid(*path, strlen(*path)))
    return mx_fail(MX_ERR_INVALID, err, "%s args.path: expected valid UTF-8", call->tool);
  return MX_OK;
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

static void sftp_refusal(sftp_session sf, struct dev_result *r, const char *what, const char *path)
{
  int code = sftp_get_error(sf);
  const char *why = code == SSH_FX_NO_SUCH_FILE ? "does not exist"
                    : code == SSH_FX_PERMISSION_DENIED ? "permission denied"
                                                      : "sftp error";
  dev_result_set(r, DEV_FAILED, "%s '%s': %s (sftp code %d)", what, path, why, code);
}

/* The server's resolution of path, confined: NULL (r says why) when it
 * cannot be resolved or lies outside every readable root. Owned. */
static char *resolve(const struct dev_ssh_config *cfg, sftp_session sf, const char *path, struct dev_result *r)
{
  if (!cfg->check_path) {
    dev_result_set(r, DEV_REFUSED, "no path policy configured: file access refused");
    return NULL;
  }
  char *real = sftp_canonicalize_path(sf, path);
  if (!real) {
    sftp_refusal(sf, r, "path", path);
    return NULL;
  }
  char why[MX_ERRBUF_LEN] = "";
  /* Windows OpenSSH answers "/C:/dir": the manifest spells it "C:/dir". */
  int drive = real[0] == '/' && real[1] && real[2] == ':' && (real[3] == '/' || !real[3]);
  if (cfg->check_path(cfg->check_ctx, real + drive, why) != MX_OK) {
    dev_result_set(r, DEV_REFUSED, "path '%s' resolves to '%s' on the host: %s", path, real, why);
    ssh_string_free_char(real);
    return NULL;
  }
  char *own = mx_strdup(real);
  ssh_string_free_char(real);
  if (!own)
    dev_result_set(r, DEV_FAILED, "out of memory");
  return own;
}

static const char *type_of(uint8_t t)
{
  switch (t) {
  case SSH_FILEXFER_TYPE_REGULAR: return "file";
  case SSH_FILEXFER_TYPE_DIRECTORY: return "dir";
  case SSH_FILEXFER_TYPE_SYMLINK: return "symlink";
  case SSH_FILEXFER_TYPE_SPECIAL: return "device";
  default: return "other";
  }
}

static mx_err put_json(struct dev_result *r, const struct dev_call *call, cJSON *v, char *err)
{
  char *s = v ? cJSON_PrintUnformatted(v) : NULL;
  cJSON_Delete(v);
  size_t kept = 0;
  mx_err rc = s ? dev_ssh_keep(r, &r->out, dev_ssh_cap(call), &kept, s, strlen(s)) : MX_ERR_NOMEM;
  cJSON_free(s);
  if (rc)
    return mx_fail(rc, err, "%s: out of memory", call->tool);
  r->status = DEV_DONE;
  r->exit_code = 0;
  return MX_OK;
}

static mx_err read_file(sftp_session sf, const struct dev_call *call, const char *real, struct dev_result *r)
{
  int64_t offset = 0, max = (int64_t)dev_ssh_cap(call);
  mx_json_int(call->args, "offset", &offset);
  if (mx_json_int(call->args, "max_bytes", &max) && (size_t)max > dev_ssh_cap(call))
    max = (int64_t)dev_ssh_cap(call);
  sftp_attributes a = sftp_stat(sf, real);
  if (!a) {
    sftp_refusal(sf, r, "cannot stat", real);
    return MX_OK;
  }
  int regular = a->type == SSH_FILEXFER_TYPE_REGULAR;
  uint64_t size = a->size;
  sftp_attributes_free(a);
  if (!regular)
    return dev_result_set(r, DEV_FAILED, "path '%s' is not a regular file", mx_json_str(call->args, "path"));
  sftp_file f = sftp_open(sf, real, O_RDONLY, 0);
  if (!f) {
    sftp_refusal(sf, r, "cannot open", real);
    return MX_OK;
  }
  if (offset > 0 && sftp_seek64(f, (uint64_t)offset) != 0) {
    sftp_close(f);
    return dev_result_set(r, DEV_FAILED, "cannot seek '%s' to %lld", real, (long long)offset);
  }
  char buf[32768];
  size_t kept = 0;
  for (;;) {
    ssize_t n = sftp_read(f, buf, sizeof(buf));
    if (n < 0) {
      sftp_refusal(sf, r, "cannot read", real);
      break;
    }
    if (n == 0 || dev_ssh_keep(r, &r->out, (size_t)max, &kept, buf, (size_t)n) || r->truncated)
      break; /* a file has no process to drain: stop at the cap */
  }
  sftp_close(f);
  if (!r->detail) {
    if (kept < (size > (uint64_t)offset ? size - (uint64_t)offset : 0))
      r->truncated = 1;
    r->status = DEV_DONE;
    r->exit_code = 0;
  }
  return MX_OK;
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(mx_json_str(*(cJSON *const *)a, "name"), mx_json_str(*(cJSON *const *)b, "name"));
}

static mx_err list_dir(sftp_session sf, const struct dev_call *call, const char *real, struct dev_result *r,
                       char *err)
{
  sftp_dir d = sftp_opendir(sf, real);
  if (!d) {
    sftp_refusal(sf, r, "cannot list", real);
    return MX_OK;
  }
  size_t n = 0, cap = 64;
  cJSON **items = malloc(cap * sizeof(*items));
  mx_err rc = items ? MX_OK : MX_ERR_NOMEM;
  sftp_attributes a;
  while (!rc && n < DEV_SSH_LIST_MAX && (a = sftp_readdir(sf, d)) != NULL) {
    int skip = !a->name || strcmp(a->name, ".") == 0 || strcmp(a->name, "..") == 0;
    cJSON *e = skip ? NULL : cJSON_CreateObject();
    if (!skip && (!e || !cJSON_AddStringToObject(e, "name", a->name) ||
                  !cJSON_AddStringToObject(e, "type", type_of(a->type)) ||
                  !cJSON_AddNumberToObject(e, "size", (double)a->size)))
      rc = MX_ERR_NOMEM;
    sftp_attributes_free(a);
    if (!rc && e && n == cap) {
      cJSON **more = realloc(items, 2 * cap * sizeof(*items));
      rc = more ? MX_OK : MX_ERR_NOMEM;
      if (more) {
        items = more;
        cap *= 2;
      }
    }
    if (!rc && e)
      items[n++] = e;
    else
      cJSON_Delete(e);
  }
  sftp_closedir(d);
  if (items)
    qsort(items, n, sizeof(*items), cmp_names);
  cJSON *arr = rc ? NULL : cJSON_CreateArray();
  for (size_t i = 0; i < n; i++) {
    if (arr)
      cJSON_AddItemToArray(arr, items[i]);
    else
      cJSON_Delete(items[i]);
  }
  free(items);
  if (rc || !arr)
    return mx_fail(MX_ERR_NOMEM, err, "fs.list: out of memory");
  return put_json(r, call, arr, err);
}

static mx_err stat_path(sftp_session sf, const struct dev_call *call, const char *real, struct dev_result *r,
                        char *err)
{
  sftp_attributes a = sftp_lstat(sf, real);
  if (!a) {
    sftp_refusal(sf, r, "cannot stat", real);
    return MX_OK;
  }
  cJSON *o = cJSON_CreateObject();
  char mode[8];
  snprintf(mode, sizeof(mode), "%04o", (unsigned)(a->permissions & 07777));
  cJSON_AddStringToObject(o, "type", type_of(a->type));
  cJSON_AddNumberToObject(o, "size", (double)a->size);
  cJSON_AddStringToObject(o, "mode", mode);
  cJSON_AddNumberToObject(o, "uid", a->uid);
  cJSON_AddNumberToObject(o, "gid", a->gid);
  cJSON_AddNumberToObject(o, "mtime", (double)a->mtime);
  sftp_attributes_free(a);
  return put_json(r, call, o, err);
}

mx_err dev_ssh_fs(ssh_session s, const struct dev_ssh_config *cfg, const struct dev_call *call, struct dev_result *r,
                  int *retry, char *err)
{
  const char *path;
  sftp_session sf = NULL;
  *retry = 0;
  mx_err rc = arg_path(call, &path, err);
  if (!rc)
    rc = open_sftp(s, call, &sf, retry, err);
  if (rc)
    return rc;
  char *real = resolve(cfg, sf, path, r);
  if (real) {
    if (strcmp(call->tool, "fs.read") == 0)
      rc = read_file(sf, call, real, r);
    else if (strcmp(call->tool, "fs.list") == 0)
      rc = list_dir(sf, call, real, r, err);
    else
      rc = stat_path(sf, call, real, r, err);
  }
  free(real);
  sftp_free(sf);
  return rc;
}
