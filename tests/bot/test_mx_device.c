/*
 * tests/bot/test_mx_device.c - a local device's backend as the daemon opens
 * it: its fs.* tools never open a file in the bot's own data_dir, even when
 * the manifest grants a root above it. (Reading mxfleet.db there would hand
 * the model the bot's state and, by closing the descriptor, drop every
 * POSIX lock the daemon holds on the database.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev.h"
#include "mx_config.h"
#include "mx_device.h"
#include "mx_json.h"
#include "mx_util.h"
#include "tools_policy.h"

static char dir[256], data[300], db[320], outside[300];

static void write_file(const char *path, const char *text)
{
  char err[MX_ERRBUF_LEN];
  assert_int_equal(mx_file_write(path, text, strlen(text), 0600, err), MX_OK);
}

static struct dev_result read_file(struct dev_backend *b, const char *path)
{
  char args[600], err[MX_ERRBUF_LEN] = "";
  snprintf(args, sizeof(args), "{\"path\":\"%s\"}", path);
  cJSON *a = cJSON_Parse(args);
  struct dev_call c = {.request_id = "t1", .tool = "fs.read", .args = a, .timeout_ms = 5000, .max_output = 4096};
  struct dev_result r;
  dev_result_init(&r);
  assert_int_equal(b->run(b, &c, &r, err), MX_OK);
  cJSON_Delete(a);
  return r;
}

static void own_data_dir_is_never_opened(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "", manifest[700];
  snprintf(dir, sizeof(dir), "/tmp/mx-device-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(data, sizeof(data), "%s/data", dir);
  snprintf(db, sizeof(db), "%s/mxfleet.db", data);
  snprintf(outside, sizeof(outside), "%s/notes.txt", dir);
  assert_int_equal(mkdir(data, 0700), 0);
  write_file(db, "SQLite format 3 (stand-in)");
  write_file(outside, "operator notes");
  snprintf(manifest, sizeof(manifest),
           "{\"version\": 1, \"platform\": \"linux\", \"paths\": {\"read\": [\"%s\"], \"write\": []},"
           " \"tools\": {\"fs.read\": {}}}", dir);
  cJSON *j = cJSON_Parse(manifest);
  struct tools_manifest *m = NULL;
  assert_int_equal(tools_policy_parse(j, "test", &m, err), MX_OK);
  cJSON_Delete(j);
  struct mx_config cfg = {.data_dir = data};
  struct mx_device_config d = {.name = "pc1", .backend = MX_BACKEND_LOCAL};
  struct dev_backend *b = NULL;
  assert_int_equal(mx_device_backend_open(&cfg, &d, m, &b, err), MX_OK);

  struct dev_result r = read_file(b, outside); /* the manifest's root works */
  assert_int_equal(r.status, DEV_DONE);
  assert_non_null(strstr(mx_buf_cstr(&r.out), "operator notes"));
  dev_result_release(&r);

  char sneaky[400];
  snprintf(sneaky, sizeof(sneaky), "%s/data/../data/mxfleet.db", dir);
  const char *inside[] = {db, sneaky};
  for (size_t i = 0; i < 2; i++) {
    r = read_file(b, inside[i]);
    assert_int_not_equal(r.status, DEV_DONE);
    assert_null(strstr(mx_buf_cstr(&r.out), "SQLite"));
    assert_non_null(r.detail);
    assert_non_null(strstr(r.detail, "inside the bot's own data_dir"));
    dev_result_release(&r);
  }
  b->destroy(b);
  tools_manifest_free(m);
  unlink(db);
  unlink(outside);
  rmdir(data);
  rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {cmocka_unit_test(own_data_dir_is_never_opened)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
