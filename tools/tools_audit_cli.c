/*
 * tools/tools_audit_cli.c - `mxfleet audit verify [--device NAME]` and
 * `mxfleet audit show --device NAME [--since TIME] [--json]`: open the
 * chains under data_dir/audit, print, return an exit code. The bot's main
 * parses the command line and calls these. Layer: tools/; common/ only.
 */
#include "tools_render.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mx_util.h"

static int verify_one(const char *data_dir, const char *device, FILE *out)
{
  struct tools_audit_opts o = {data_dir, device, NULL};
  struct tools_audit *a = NULL;
  struct tools_audit_verify_report rep;
  char err[MX_ERRBUF_LEN];
  struct mx_buf b = MX_BUF_INIT(4096);
  mx_err rc = tools_audit_open(&o, &a, err);
  if (!rc)
    rc = tools_audit_verify(a, NULL, &rep, err);
  tools_audit_close(a);
  if (rc) {
    fprintf(out, "audit %s: cannot verify: %s\n", device, err);
    return 2;
  }
  if (tools_render_verify(device, &rep, &b) == MX_OK)
    fprintf(out, "%s\n", mx_buf_cstr(&b));
  mx_buf_release(&b);
  return rep.ok ? 0 : 1;
}

int tools_audit_cli_verify(const char *data_dir, const char *const *devices, int n, FILE *out)
{
  int worst = 0, seen = 0;
  for (int i = 0; devices && i < n; i++) {
    int r = verify_one(data_dir, devices[i], out);
    worst = r > worst ? r : worst;
    seen++;
  }
  if (seen)
    return worst;
  char *dir = mx_path_join(data_dir, "audit");
  DIR *d = dir ? opendir(dir) : NULL;
  free(dir);
  if (!d) {
    fprintf(out, "no audit chains under %s/audit\n", data_dir);
    return 2;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len <= 3 || strcmp(e->d_name + len - 3, ".db") != 0 || len - 3 > 64)
      continue;
    char name[72];
    snprintf(name, sizeof(name), "%.*s", (int)(len - 3), e->d_name);
    int r = verify_one(data_dir, name, out);
    worst = r > worst ? r : worst;
    seen++;
  }
  closedir(d);
  if (!seen)
    fprintf(out, "no audit chains under %s/audit\n", data_dir);
  return seen ? worst : 2;
}

/* since: NULL, "2026-11-21T20:00:00Z" or an age like 30m, 2h, 7d. */
static int parse_since(const char *s, int64_t *ms)
{
  if (!s) {
    *ms = 0;
    return 1;
  }
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (end != s && v >= 0 && end[0] && !end[1]) {
    int64_t unit = end[0] == 's' ? 1000 : end[0] == 'm' ? 60000 : end[0] == 'h' ? 3600000 : end[0] == 'd' ? 86400000 : 0;
    *ms = mx_now_ms() - v * unit;
    return unit != 0;
  }
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest || (rest[0] && strcmp(rest, "Z") != 0))
    return 0;
  *ms = (int64_t)timegm(&tm) * 1000;
  return 1;
}

int tools_audit_cli_show(const char *data_dir, const char *device, const char *since, int json, FILE *out)
{
  int64_t since_ms;
  if (!parse_since(since, &since_ms)) {
    fprintf(out, "--since: expected an ISO time like 2026-11-21T20:00:00Z or an age like 30m, 2h, 7d, got '%s'\n",
            since);
    return 2;
  }
  struct tools_audit_opts o = {data_dir, device, NULL};
  struct tools_audit *a = NULL;
  cJSON *recs = NULL;
  char err[MX_ERRBUF_LEN];
  mx_err rc = tools_audit_open(&o, &a, err);
  if (!rc)
    rc = tools_audit_since(a, since_ms, &recs, err);
  tools_audit_close(a);
  if (rc) {
    fprintf(out, "audit %s: %s\n", device ? device : "?", err);
    return 2;
  }
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  if (json) {
    const cJSON *r;
    cJSON_ArrayForEach(r, recs) {
      char *s = cJSON_PrintUnformatted(r);
      if (s)
        fprintf(out, "%s\n", s);
      cJSON_free(s);
    }
  } else if (tools_render_audit(recs, &b) == MX_OK) {
    fputs(mx_buf_cstr(&b), out);
  }
  mx_buf_release(&b);
  cJSON_Delete(recs);
  return 0;
}
