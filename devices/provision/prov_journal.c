/*
 * prov_journal.c - the onboarding journal, data_dir/provision/<name>.json:
 * {"created": ["ssh_pin", "matrix_user", ...]} lists the steps whose effect
 * a run created and has not yet committed. It is rewritten atomically after
 * every step, so a run killed half-way leaves a record the next run uses to
 * undo those effects if it fails too; it is deleted when a run completes or
 * finishes rolling back. Layer: devices/provision. *out is owned (cJSON_Delete).
 */
#include "prov_int.h"

#include <string.h>

#include "mx_json.h"
#include "mx_util.h"

mx_err prov_journal_load(const char *path, cJSON **out, char *err)
{
  struct mx_buf b;
  *out = NULL;
  mx_err rc = mx_file_read(path, MX_BUF_MAX_SMALL, &b, err);
  if (rc == MX_ERR_NOT_FOUND) {
    *out = cJSON_CreateObject();
    if (*out && cJSON_AddArrayToObject(*out, "created"))
      return MX_OK;
    cJSON_Delete(*out);
    *out = NULL;
    return MX_ERR_NOMEM;
  }
  if (rc)
    return rc;
  *out = cJSON_ParseWithLength(b.buf, b.len);
  mx_buf_release(&b);
  if (!*out || !mx_json_arr(*out, "created")) {
    cJSON_Delete(*out);
    *out = NULL;
    return mx_fail(MX_ERR_INVALID, err, "%s: expected {\"created\": [...]}, the journal is damaged", path);
  }
  return MX_OK;
}

int prov_journal_has(const cJSON *journal, const char *step_id)
{
  const cJSON *s = NULL;
  cJSON_ArrayForEach(s, mx_json_arr(journal, "created")) {
    if (cJSON_IsString(s) && strcmp(s->valuestring, step_id) == 0)
      return 1;
  }
  return 0;
}

mx_err prov_journal_mark(const char *path, cJSON *journal, const char *step_id, char *err)
{
  cJSON *arr = cJSON_GetObjectItemCaseSensitive(journal, "created");
  if (!prov_journal_has(journal, step_id)) {
    cJSON *s = cJSON_CreateString(step_id);
    if (!s)
      return MX_ERR_NOMEM;
    cJSON_AddItemToArray(arr, s);
  }
  char *text = cJSON_PrintUnformatted(journal);
  if (!text)
    return MX_ERR_NOMEM;
  mx_err rc = mx_file_write(path, text, strlen(text), 0600, err);
  cJSON_free(text);
  return rc;
}
