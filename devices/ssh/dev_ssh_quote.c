/* dev_ssh_quote.c - argv -> single-quoted command string; see dev_ssh_quote.h. */
#include "dev_ssh_quote.h"

#include <stdio.h>
#include <string.h>

#include "mx_util.h"

mx_err dev_ssh_quote_arg(const char *arg, size_t n, const char *where, struct mx_buf *out, char *err)
{
  if (memchr(arg, '\0', n))
    return mx_fail(MX_ERR_INVALID, err, "%s: expected a string without NUL bytes", where);
  if (!mx_utf8_valid(arg, n))
    return mx_fail(MX_ERR_INVALID, err, "%s: expected valid UTF-8", where);
  mx_err rc = mx_buf_addc(out, '\'');
  for (size_t i = 0; !rc && i < n; i++) {
    if (arg[i] == '\'')
      rc = mx_buf_add(out, "'\\''", 4); /* close, escaped quote, reopen */
    else
      rc = mx_buf_addc(out, arg[i]);
  }
  if (!rc)
    rc = mx_buf_addc(out, '\'');
  if (rc)
    return mx_fail(rc, err, "%s: command line too long", where);
  return MX_OK;
}

mx_err dev_ssh_join_argv(const cJSON *argv, const char *where, struct mx_buf *out, char *err)
{
  if (!cJSON_IsArray(argv) || cJSON_GetArraySize(argv) == 0)
    return mx_fail(MX_ERR_INVALID, err, "%s: expected a non-empty array of strings", where);
  int i = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, argv)
  {
    char loc[160];
    snprintf(loc, sizeof(loc), "%s[%d]", where, i);
    if (!cJSON_IsString(a) || !a->valuestring)
      return mx_fail(MX_ERR_INVALID, err, "%s: expected a string", loc);
    if (i > 0 && mx_buf_addc(out, ' '))
      return mx_fail(MX_ERR_TOO_BIG, err, "%s: command line too long", where);
    /* A cJSON string cannot carry NUL (it ends the C string); callers with
     * raw bytes use dev_ssh_quote_arg with an explicit length. */
    mx_err rc = dev_ssh_quote_arg(a->valuestring, strlen(a->valuestring), loc, out, err);
    if (rc)
      return rc;
    i++;
  }
  return MX_OK;
}
