/*
 * mx_config: a table of malformed configs, each with its exact error text;
 * the minimum shape with its documented defaults; every key set; relative
 * paths resolved against the config file's directory; the shipped example
 * loads; docs/config.md documents every key in the fixed shape.
 * Fixtures live beside this file (tests/bot/config/), found through
 * __FILE__ so the test needs no extra CMake definitions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../docs/doc_keys.h"
#include "mx_config.h"
#include "mx_log.h"
#include "mx_util.h"

static char src_dir[PATH_MAX];  /* tests/bot */
static char tmp_dir[PATH_MAX];  /* realpath of this run's scratch dir */
static char old_cwd[PATH_MAX];

static void write_raw(const char *path, const char *data, size_t n)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* No fsync (mx_file_write's): hundreds of scratch files must stay fast. */
static void write_file(const char *path, const char *text)
{
  write_raw(path, text, strlen(text));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int setup(void **state)
{
  (void)state;
  /* tmpfs when there is one: thousands of small rewrites stay fast */
  char tmpl[] = "/dev/shm/mx_config_XXXXXX";
  if (access("/dev/shm", W_OK) != 0)
    memcpy(tmpl, "/tmp/mx_config_XXXXXX", sizeof("/tmp/mx_config_XXXXXX"));
  const char *slash = strrchr(__FILE__, '/');
  snprintf(src_dir, sizeof(src_dir), "%.*s", slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
  if (!mkdtemp(tmpl) || !realpath(tmpl, tmp_dir) || !getcwd(old_cwd, sizeof(old_cwd)))
    return -1;
  if (chdir(tmp_dir) != 0 || mkdir("secrets", 0700) != 0)
    return -1;
  write_file("secrets/pc1.pw", "pw1\n");
  write_file("secrets/pc2.pw", "pw2\n");
  write_file("secrets/empty.pw", "");
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  if (chdir(old_cwd) != 0)
    return -1;
  return nftw(tmp_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

#define HS "\"homeserver\": \"http://127.0.0.1:8008\", "
#define DD "\"data_dir\": \"./data\", "
#define OPS "\"operators\": [\"@alice:example.org\"], "
#define MX(uid, pw) "\"matrix\": {\"user_id\": \"" uid "\", \"password_file\": \"" pw "\"}"
#define DEV(name, uid) "{\"name\": \"" name "\", " MX(uid, "secrets/pc1.pw") "}"
#define DEVS1 "\"devices\": [" DEV("pc1", "@agent-pc1:example.org") "]"
#define BASE HS DD OPS
#define WITH_BACKEND(b) \
  "{" BASE "\"devices\": [{\"name\": \"pc1\", " MX("@agent-pc1:example.org", "secrets/pc1.pw") ", \"backend\": " b "}]}"

struct bad_case {
  const char *name;
  const char *json;
  const char *want; /* "{DIR}" stands for the scratch directory */
};

static const struct bad_case bad_cases[] = {
  {"missing homeserver", "{" DD OPS DEVS1 "}",
   "mxfleet.json: homeserver: required key is missing, expected an http(s) URL like http://127.0.0.1:8008"},
  {"homeserver of the wrong type", "{\"homeserver\": 8008, " DD OPS DEVS1 "}",
   "mxfleet.json: homeserver: expected an http(s) URL like http://127.0.0.1:8008, got 8008"},
  {"homeserver not http", "{\"homeserver\": \"ftp://127.0.0.1\", " DD OPS DEVS1 "}",
   "mxfleet.json: homeserver: expected an http(s) URL like http://127.0.0.1:8008, got 'ftp://127.0.0.1'"},
  {"homeserver with a query", "{\"homeserver\": \"http://h.example/x?y=1\", " DD OPS DEVS1 "}",
   "mxfleet.json: homeserver: expected an http(s) URL like http://127.0.0.1:8008, got 'http://h.example/x?y=1'"},
  {"homeserver with a bad port", "{\"homeserver\": \"http://127.0.0.1:99999\", " DD OPS DEVS1 "}",
   "mxfleet.json: homeserver: expected an http(s) URL like http://127.0.0.1:8008, got 'http://127.0.0.1:99999'"},
  {"data_dir of the wrong type", "{" HS "\"data_dir\": [\"a\"], " OPS DEVS1 "}",
   "mxfleet.json: data_dir: expected a path, got an array"},
  {"missing data_dir", "{" HS OPS DEVS1 "}", "mxfleet.json: data_dir: required key is missing, expected a path"},
  {"no operators", "{" HS DD "\"operators\": [], " DEVS1 "}",
   "mxfleet.json: operators: expected a non-empty array of Matrix user IDs like [\"@alice:example.org\"], got an "
   "array"},
  {"bad operator", "{" HS DD "\"operators\": [\"@alice:example.org\", \"bob\"], " DEVS1 "}",
   "mxfleet.json: operators[1]: expected a Matrix user ID like @alice:example.org, got 'bob'"},
  {"duplicate operator", "{" HS DD "\"operators\": [\"@alice:example.org\", \"@alice:example.org\"], " DEVS1 "}",
   "mxfleet.json: operators[1]: duplicate operator '@alice:example.org' (also operators[0])"},
  {"operator object without user_id", "{" HS DD "\"operators\": [{\"master_key\": \"x\"}], " DEVS1 "}",
   "mxfleet.json: operators[0].user_id: required key is missing, expected a Matrix user ID like @alice:example.org"},
  {"operator object with an unknown key", "{" HS DD "\"operators\": [{\"user_id\": \"@a:b.org\", \"key\": 1}], " DEVS1 "}",
   "mxfleet.json: operators[0].key: unknown key, expected one of user_id, master_key"},
  {"operator master key too short",
   "{" HS DD "\"operators\": [{\"user_id\": \"@a:b.org\", \"master_key\": \"abcd efgh\"}], " DEVS1 "}",
   "mxfleet.json: operators[0].master_key: expected the operator's cross-signing master key, 43 characters of "
   "unpadded base64, got 'abcd efgh'"},
  {"operator master key with padding",
   "{" HS DD "\"operators\": [{\"user_id\": \"@a:b.org\", \"master_key\": "
   "\"IunlzUrtDADqBN0xqXuvBci5lVGWb6pZdk1KTN0JSgE=\"}], " DEVS1 "}",
   "mxfleet.json: operators[0].master_key: expected the operator's cross-signing master key, 43 characters of "
   "unpadded base64, got 'IunlzUrtDADqBN0xqXuvBci5lVGWb6pZdk1KTN0JSgE='"},
  {"operator number", "{" HS DD "\"operators\": [7], " DEVS1 "}",
   "mxfleet.json: operators[0]: expected a Matrix user ID like @alice:example.org or {\"user_id\": ..., "
   "\"master_key\": ...}, got 7"},
  {"bad user id with its index path",
   "{" BASE "\"devices\": [" DEV("pc1", "@agent-pc1:example.org") ", " DEV("pc2", "@agent-pc2:example.org") ", " DEV(
     "pc3", "pc") "]}",
   "mxfleet.json: devices[2].matrix.user_id: expected a Matrix user ID like @agent-pc:example.org, got 'pc'"},
  {"upper-case user id", "{" BASE "\"devices\": [" DEV("pc1", "@Agent:example.org") "]}",
   "mxfleet.json: devices[0].matrix.user_id: expected a Matrix user ID like @agent-pc:example.org, got "
   "'@Agent:example.org'"},
  {"unknown key in matrix",
   "{" BASE "\"devices\": [{\"name\": \"pc1\", \"matrix\": {\"user_id\": \"@agent-pc1:example.org\", "
   "\"password_file\": \"secrets/pc1.pw\", \"passwd\": \"x\"}}]}",
   "mxfleet.json: devices[0].matrix.passwd: unknown key, expected one of user_id, password_file"},
  {"unknown top-level key", "{" BASE "\"homserver\": \"x\", " DEVS1 "}",
   "mxfleet.json: homserver: unknown key, expected one of homeserver, data_dir, operators, alerts_room, devices, "
   "bot, health, redact, llm, speech, registration, log_level"},
  {"log level", "{" BASE "\"log_level\": \"loud\", " DEVS1 "}",
   "mxfleet.json: log_level: expected one of debug, info, warn, error, got 'loud'"},
  {"unknown key with a newline", "{" BASE "\"a\\nb\": 1, " DEVS1 "}",
   "mxfleet.json: a?b: unknown key, expected one of homeserver, data_dir, operators, alerts_room, devices, "
   "bot, health, redact, llm, speech, registration, log_level"},
  {"unknown key in bot", "{" BASE "\"bot\": {\"sync_timeout\": 5}, " DEVS1 "}",
   "mxfleet.json: bot.sync_timeout: unknown key, expected one of command_max_age_s, require_verified_sender, "
   "sync_timeout_ms, sync_timeout_max_ms, http_listen, exclude_insecure_devices, http_idle_timeout_ms"},
  {"backend key of another kind", WITH_BACKEND("{\"kind\": \"local\", \"host\": \"x\"}"),
   "mxfleet.json: devices[0].backend.host: unknown key for kind 'local', expected one of kind"},
  {"duplicate device",
   "{" BASE "\"devices\": [" DEV("pc1", "@agent-pc1:example.org") ", " DEV("pc1", "@agent-pc2:example.org") "]}",
   "mxfleet.json: devices[1].name: duplicate device name 'pc1' (also devices[0])"},
  {"duplicate user id",
   "{" BASE "\"devices\": [" DEV("pc1", "@agent-pc1:example.org") ", " DEV("pc2", "@agent-pc1:example.org") "]}",
   "mxfleet.json: devices[1].matrix.user_id: duplicate user ID '@agent-pc1:example.org' (also devices[0])"},
  {"device is an operator", "{" BASE "\"devices\": [" DEV("pc1", "@alice:example.org") "]}",
   "mxfleet.json: devices[0].matrix.user_id: expected a user ID that is not an operator, got "
   "'@alice:example.org' (also operators[0])"},
  {"syntax error", "{\n  \"homeserver\": \"http://127.0.0.1:8008\",\n  \"data_dir\" \"./data\"\n}",
   "mxfleet.json: line 3, column 14: invalid JSON"},
  {"trailing comma", "{\n  \"homeserver\": \"http://127.0.0.1:8008\",\n}", "mxfleet.json: line 3, column 2: invalid JSON"},
  {"column counts characters", "{\"display\": \"\xc3\xa9t\xc3\xa9\" x}", "mxfleet.json: line 1, column 19: invalid JSON"},
  {"empty file", "", "mxfleet.json: line 1, column 1: invalid JSON"},
  {"not utf-8", "{\"a\": \"\xff\"}", "mxfleet.json: expected UTF-8 JSON text without NUL bytes"},
  {"top level not an object", "[]", "mxfleet.json: expected a JSON object at the top level, got an array"},
  {"duplicate key", "{" HS BASE DEVS1 "}", "mxfleet.json: homeserver: duplicate key, expected each key once"},
  {"missing password file",
   "{" BASE "\"devices\": [{\"name\": \"pc1\", " MX("@agent-pc1:example.org", "secrets/nope.pw") "}]}",
   "mxfleet.json: devices[0].matrix.password_file: cannot read '{DIR}/secrets/nope.pw': No such file or directory"},
  {"empty password file",
   "{" BASE "\"devices\": [{\"name\": \"pc1\", " MX("@agent-pc1:example.org", "./secrets/empty.pw") "}]}",
   "mxfleet.json: devices[0].matrix.password_file: expected a file holding the password, got an empty file "
   "'{DIR}/secrets/empty.pw'"},
  {"password file is a directory",
   "{" BASE "\"devices\": [{\"name\": \"pc1\", " MX("@agent-pc1:example.org", "secrets/") "}]}",
   "mxfleet.json: devices[0].matrix.password_file: expected a regular file holding the password, got "
   "'{DIR}/secrets'"},
  {"bad device name", "{" BASE "\"devices\": [" DEV("PC1", "@agent-pc1:example.org") "]}",
   "mxfleet.json: devices[0].name: expected a device name like pc1 (1-32 of a-z, 0-9, '-', not first), got 'PC1'"},
  {"device name too long",
   "{" BASE "\"devices\": [" DEV("a23456789012345678901234567890123", "@agent-pc1:example.org") "]}",
   "mxfleet.json: devices[0].name: expected a device name like pc1 (1-32 of a-z, 0-9, '-', not first), got "
   "'a23456789012345678901234567890123'"},
  {"device without matrix", "{" BASE "\"devices\": [{\"name\": \"pc1\"}]}",
   "mxfleet.json: devices[0].matrix: required key is missing, expected an object with user_id and password_file"},
  {"device not an object", "{" BASE "\"devices\": [\"pc1\"]}",
   "mxfleet.json: devices[0]: expected an object, got 'pc1'"},
  {"missing devices", "{" BASE "\"alerts_room\": \"#a:example.org\"}",
   "mxfleet.json: devices: required key is missing, expected an array of device objects"},
  {"bad alerts room", "{" BASE "\"alerts_room\": \"operator-alerts\", " DEVS1 "}",
   "mxfleet.json: alerts_room: expected a room alias like #operator-alerts:example.org or a room ID like "
   "!abc:example.org, got 'operator-alerts'"},
  {"sync timeout out of range", "{" BASE "\"bot\": {\"sync_timeout_ms\": 10}, " DEVS1 "}",
   "mxfleet.json: bot.sync_timeout_ms: expected an integer from 1000 to 300000, got 10"},
  {"boolean as a string", "{" BASE "\"bot\": {\"require_verified_sender\": \"yes\"}, " DEVS1 "}",
   "mxfleet.json: bot.require_verified_sender: expected true or false, got 'yes'"},
  {"http listen with a host name", "{" BASE "\"bot\": {\"http_listen\": \"localhost:9090\"}, " DEVS1 "}",
   "mxfleet.json: bot.http_listen: expected IP:PORT like 127.0.0.1:9090, got 'localhost:9090'"},
  {"unknown backend kind", WITH_BACKEND("{\"kind\": \"telnet\"}"),
   "mxfleet.json: devices[0].backend.kind: expected one of local, ssh, wg, got 'telnet'"},
  {"ssh without host", WITH_BACKEND("{\"kind\": \"ssh\", \"user\": \"u\", \"key_file\": \"k\"}"),
   "mxfleet.json: devices[0].backend.host: required key is missing, expected a host name or IP address like "
   "198.51.100.7"},
  {"ssh port not an integer",
   WITH_BACKEND("{\"kind\": \"ssh\", \"host\": \"h\", \"port\": 22.5, \"user\": \"u\", \"key_file\": \"k\"}"),
   "mxfleet.json: devices[0].backend.port: expected an integer from 1 to 65535, got 22.5"},
  {"wg bad public key",
   WITH_BACKEND("{\"kind\": \"wg\", \"address\": \"198.51.100.2\", \"hmac_key_file\": \"k\", \"public_key\": "
                "\"abc\"}"),
   "mxfleet.json: devices[0].backend.public_key: expected a WireGuard public key (44 characters of base64), got "
   "'abc'"},
  {"wg address not an ip", WITH_BACKEND("{\"kind\": \"wg\", \"address\": \"pc.lan\", \"hmac_key_file\": \"k\"}"),
   "mxfleet.json: devices[0].backend.address: expected an IP address like 198.51.100.2, got 'pc.lan'"},
  {"bad os", "{" BASE "\"devices\": [{\"name\": \"pc1\", \"os\": \"beos\", " MX("@agent-pc1:example.org",
                                                                                "secrets/pc1.pw") "}]}",
   "mxfleet.json: devices[0].os: expected one of linux, macos, windows, got 'beos'"},
  {"short redact literal is not printed", "{" BASE "\"redact\": [\"abcdefgh\", \"xyz\"], " DEVS1 "}",
   "mxfleet.json: redact[1]: expected a secret string of at least 6 characters, got a string of 3 characters"},
  {"redact not an array is not printed", "{" BASE "\"redact\": \"hunter2-secret\", " DEVS1 "}",
   "mxfleet.json: redact: expected an array of strings, got a string of 14 characters"},
  {"registration with both files",
   "{" BASE "\"registration\": {\"shared_secret_file\": \"a\", \"admin_token_file\": \"b\"}, " DEVS1 "}",
   "mxfleet.json: registration: expected exactly one of shared_secret_file or admin_token_file, got both"},
  {"llm not an object", "{" BASE "\"llm\": \"gpt\", " DEVS1 "}",
   "mxfleet.json: llm: expected an object (checked by the llm module), got 'gpt'"},
  {"health interval too small", "{" BASE "\"health\": {\"interval_s\": 1}, " DEVS1 "}",
   "mxfleet.json: health.interval_s: expected an integer from 5 to 86400, got 1"},
};

static void subst_dir(const char *want, char *out, size_t n)
{
  const char *p = strstr(want, "{DIR}");
  if (!p)
    snprintf(out, n, "%s", want);
  else if (snprintf(out, n, "%.*s%s%s", (int)(p - want), want, tmp_dir, p + 5) >= (int)n)
    fail_msg("expected error text longer than %zu bytes", n);
}

static void malformed_configs_give_exact_errors(void **state)
{
  (void)state;
  int failures = 0;
  for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
    const struct bad_case *bc = &bad_cases[i];
    char err[MX_ERRBUF_LEN] = "";
    char want[MX_ERRBUF_LEN];
    struct mx_config *cfg = (struct mx_config *)1;
    write_file("mxfleet.json", bc->json);
    mx_err rc = mx_config_load("mxfleet.json", &cfg, err);
    subst_dir(bc->want, want, sizeof(want));
    if (rc != MX_ERR_CONFIG || cfg != NULL || strcmp(err, want) != 0) {
      print_error("case '%s': rc=%d\n  got:  %s\n  want: %s\n", bc->name, (int)rc, err, want);
      failures++;
    }
    if (rc == MX_OK)
      mx_config_free(cfg);
  }
  assert_int_equal(failures, 0);
}

static void a_missing_file_is_named(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN];
  struct mx_config *cfg;
  assert_int_equal(mx_config_load("nope.json", &cfg, err), MX_ERR_CONFIG);
  assert_null(cfg);
  assert_string_equal(err, "nope.json: cannot open: No such file or directory");
}

static char *fixture(const char *name)
{
  char dir[PATH_MAX + 16];
  snprintf(dir, sizeof(dir), "%s/config", src_dir);
  return mx_path_join(dir, name);
}

static char *abs_fixture(const char *name)
{
  char *f = fixture(name);
  char *r = realpath(f, NULL);
  free(f);
  assert_non_null(r);
  return r;
}

static void minimum_shape_loads_with_defaults(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  struct mx_config *cfg;
  char *file = fixture("minimal.json");
  char *dir = abs_fixture("");
  char want[PATH_MAX * 2];
  mx_err rc = mx_config_load(file, &cfg, err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, MX_OK);
  assert_string_equal(cfg->path, file);
  assert_string_equal(cfg->homeserver, "http://127.0.0.1:8008");
  snprintf(want, sizeof(want), "%s/data", dir);
  assert_string_equal(cfg->data_dir, want);
  assert_int_equal(cfg->n_operators, 1);
  assert_string_equal(cfg->operators[0], "@alice:example.org");
  assert_string_equal(cfg->alerts_room, "#operator-alerts:example.org");
  assert_int_equal(cfg->command_max_age_ms, 600000);
  assert_int_equal(cfg->require_verified_sender, 1);
  assert_int_equal(cfg->sync_timeout_ms, 30000);
  assert_int_equal(cfg->sync_timeout_max_ms, 120000);
  assert_int_equal(cfg->http_idle_timeout_ms, 30000);
  assert_int_equal(cfg->log_level, -1);
  assert_null(cfg->http_listen);
  assert_string_equal(cfg->wg_interface, "wg0");
  assert_int_equal(cfg->health_interval_s, 60);
  assert_int_equal(cfg->n_redact_literals, 0);
  assert_null(cfg->llm);
  assert_null(cfg->speech);
  assert_null(cfg->registration);
  assert_int_equal(cfg->n_devices, 1);
  const struct mx_device_config *d = mx_config_device(cfg, "pc1");
  assert_ptr_equal(d, &cfg->devices[0]);
  assert_null(mx_config_device(cfg, "pc2"));
  assert_string_equal(d->user_id, "@agent-pc1:example.org");
  snprintf(want, sizeof(want), "%s/secrets/pc1.pw", dir);
  assert_string_equal(d->password_file, want);
  assert_string_equal(d->display_name, "agent pc1");
  assert_string_equal(d->os, "linux");
  assert_int_equal(d->backend, MX_BACKEND_LOCAL);
  assert_string_equal(mx_backend_name(d->backend), "local");
  assert_null(d->manifest);
  assert_null(d->prompt);
  assert_int_equal(d->ssh_port, 22);
  assert_int_equal(d->wg_port, 7443);
  mx_config_free(cfg);
  free(file);
  free(dir);
}

static void every_key_is_read(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  struct mx_config *cfg;
  char *file = fixture("full.json");
  char *dir = abs_fixture("");
  char want[PATH_MAX * 2];
  mx_err rc = mx_config_load(file, &cfg, err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, MX_OK);
  assert_string_equal(cfg->homeserver, "https://matrix.example.org:8448/base");
  assert_string_equal(cfg->data_dir, "/var/lib/mxfleet");
  assert_int_equal(cfg->n_operators, 2);
  assert_string_equal(cfg->operators[1], "@bob:example.org");
  assert_string_equal(cfg->alerts_room, "!AbCdEf:example.org");
  assert_int_equal(cfg->log_level, MX_LOG_WARN);
  assert_int_equal(cfg->command_max_age_ms, 120000);
  assert_int_equal(cfg->require_verified_sender, 0);
  assert_int_equal(cfg->sync_timeout_ms, 15000);
  assert_int_equal(cfg->sync_timeout_max_ms, 45000);
  assert_int_equal(cfg->http_idle_timeout_ms, 20000);
  assert_string_equal(cfg->http_listen, "127.0.0.1:9090");
  assert_int_equal(cfg->health_interval_s, 30);
  assert_string_equal(cfg->wg_interface, "wg-fleet");
  assert_int_equal(cfg->n_redact_literals, 2);
  assert_string_equal(cfg->redact_literals[1], "another-secret-value");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(cfg->speech, "engine")->valuestring, "pocketsphinx");
  assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(cfg->llm, "providers")));
  snprintf(want, sizeof(want), "%s/secrets/registration.secret", dir);
  assert_string_equal(cfg->registration_shared_secret_file, want);
  assert_null(cfg->registration_admin_token_file);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(cfg->registration, "shared_secret_file")->valuestring, want);
  assert_int_equal(cfg->n_devices, 3);

  const struct mx_device_config *d = &cfg->devices[0];
  assert_string_equal(d->display_name, "Office PC");
  snprintf(want, sizeof(want), "%s/manifests/pc1.json", dir);
  assert_string_equal(d->manifest, want);
  snprintf(want, sizeof(want), "%s/prompts/pc1.md", dir);
  assert_string_equal(d->prompt, want);

  d = mx_config_device(cfg, "web-2");
  assert_int_equal(d->backend, MX_BACKEND_SSH);
  assert_string_equal(d->ssh_host, "198.51.100.7");
  assert_int_equal(d->ssh_port, 2222);
  assert_string_equal(d->ssh_user, "mxfleet");
  snprintf(want, sizeof(want), "%s/keys/web-2", dir);
  assert_string_equal(d->ssh_key_file, want);
  snprintf(want, sizeof(want), "%s/keys/known_hosts", dir);
  assert_string_equal(d->ssh_known_hosts, want);

  d = mx_config_device(cfg, "laptop3");
  assert_int_equal(d->backend, MX_BACKEND_WG);
  assert_string_equal(mx_backend_name(d->backend), "wg");
  assert_string_equal(d->os, "macos");
  assert_string_equal(d->wg_address, "198.51.100.2");
  assert_int_equal(d->wg_port, 7443);
  snprintf(want, sizeof(want), "%s/keys/laptop3.hmac", dir);
  assert_string_equal(d->wg_hmac_key_file, want);
  assert_string_equal(d->wg_public_key, "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=");
  snprintf(want, sizeof(want), "%s/secrets/pc3.pw", dir);
  assert_string_equal(d->password_file, want);
  mx_config_free(cfg);
  free(file);
  free(dir);
}

/* A config in sub/ loaded from the scratch dir: paths follow the file, not
 * the working directory; absolute paths are kept as they are. */
static void relative_paths_follow_the_config_file(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  char want[PATH_MAX * 2];
  struct mx_config *cfg;
  assert_int_equal(mx_mkdir_p("sub/secrets", 0700, NULL), MX_OK);
  write_file("sub/secrets/pc1.pw", "pw\n");
  char text[PATH_MAX + 1024];
  snprintf(text, sizeof(text),
           "{" BASE "\"devices\": [" DEV("pc1", "@agent-pc1:example.org") ", {\"name\": \"pc2\", \"manifest\": "
           "\"../m.json\", \"matrix\": {\"user_id\": \"@agent-pc2:example.org\", \"password_file\": "
           "\"%s/secrets/pc2.pw\"}}]}",
           tmp_dir);
  write_file("sub/mxfleet.json", text);
  mx_err rc = mx_config_load("sub/mxfleet.json", &cfg, err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, MX_OK);
  snprintf(want, sizeof(want), "%s/sub/data", tmp_dir);
  assert_string_equal(cfg->data_dir, want);
  snprintf(want, sizeof(want), "%s/sub/secrets/pc1.pw", tmp_dir);
  assert_string_equal(cfg->devices[0].password_file, want);
  snprintf(want, sizeof(want), "%s/secrets/pc2.pw", tmp_dir);
  assert_string_equal(cfg->devices[1].password_file, want);
  snprintf(want, sizeof(want), "%s/sub/../m.json", tmp_dir);
  assert_string_equal(cfg->devices[1].manifest, want);
  mx_config_free(cfg);
}

/* examples/mxfleet.json works once its password file exists (the setup
 * script creates it; it is never committed). */
static void the_shipped_example_loads(void **state)
{
  (void)state;
  char err[MX_ERRBUF_LEN] = "";
  char path[PATH_MAX * 2];
  struct mx_config *cfg;
  struct mx_buf text;
  snprintf(path, sizeof(path), "%s/../../examples/mxfleet.json", src_dir);
  assert_int_equal(mx_file_read(path, 1 << 20, &text, err), MX_OK);
  assert_int_equal(mx_mkdir_p("ex/secrets", 0700, NULL), MX_OK);
  write_file("ex/mxfleet.json", mx_buf_cstr(&text));
  mx_buf_release(&text);
  /* Without the password file: a clear error naming it. */
  assert_int_equal(mx_config_load("ex/mxfleet.json", &cfg, err), MX_ERR_CONFIG);
  assert_non_null(strstr(err, "devices[0].matrix.password_file: cannot read '"));
  write_file("ex/secrets/pc1.pw", "example\n");
  mx_err rc = mx_config_load("ex/mxfleet.json", &cfg, err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, MX_OK);
  assert_string_equal(cfg->homeserver, "http://127.0.0.1:8008");
  assert_int_equal(cfg->devices[0].backend, MX_BACKEND_LOCAL);
  mx_config_free(cfg);
}

/* Loads text; it must either load or fail with a one-line error that starts
 * with the file name, has no final full stop and shows no redact literal. */
static int load_cleanly(const char *text, size_t n)
{
  char err[MX_ERRBUF_LEN] = "";
  struct mx_config *cfg = NULL;
  write_raw("fz/mxfleet.json", text, n);
  mx_err rc = mx_config_load("fz/mxfleet.json", &cfg, err);
  if (rc == MX_OK) {
    assert_non_null(cfg);
    mx_config_free(cfg);
    return 0;
  }
  size_t len = strlen(err);
  if (rc != MX_ERR_CONFIG || cfg || strncmp(err, "fz/mxfleet.json: ", 17) != 0 || strchr(err, '\n') ||
      err[len - 1] == '.' || strstr(err, "hunter2-literal") || strstr(err, "another-secret-value")) {
    print_error("rc=%d err=%s\n", (int)rc, err);
    return 1;
  }
  return 0;
}

/* Every truncation and every single-byte deletion of the full fixture fails
 * cleanly (no crash or leak under ASan, a well-formed message) or loads. */
static void damaged_configs_fail_cleanly(void **state)
{
  (void)state;
  struct mx_buf text;
  char *file = fixture("full.json");
  assert_int_equal(mx_file_read(file, 1 << 20, &text, NULL), MX_OK);
  free(file);
  assert_int_equal(mx_mkdir_p("fz/secrets", 0700, NULL), MX_OK);
  write_file("fz/secrets/pc1.pw", "pw\n");
  write_file("fz/secrets/pc2.pw", "pw\n");
  write_file("fz/secrets/pc3.pw", "pw\n");
  char *buf = malloc(text.len + 1);
  int bad = 0;
  for (size_t cut = 0; cut < text.len; cut++)
    bad += load_cleanly(text.buf, cut);
  for (size_t del = 0; del < text.len; del++) {
    memcpy(buf, text.buf, del);
    memcpy(buf + del, text.buf + del + 1, text.len - del - 1);
    bad += load_cleanly(buf, text.len - 1);
  }
  assert_int_equal(load_cleanly(text.buf, text.len), 0);
  free(buf);
  mx_buf_release(&text);
  assert_int_equal(bad, 0);
}

struct doc_check {
  const char *doc;
  int missing;
  int keys;
};

/* Each key has a "### `path`" section with the five fixed headings in order
 * before the next section. */
static void check_doc_key(void *ctx, const char *path)
{
  struct doc_check *dc = ctx;
  static const char *const heads[] = {"NAME", "TYPE", "DEFAULT", "DESCRIPTION", "EXAMPLE"};
  char title[160];
  dc->keys++;
  snprintf(title, sizeof(title), "\n### `%s`\n", path);
  const char *sec = strstr(dc->doc, title);
  if (!sec) {
    print_error("docs/config.md: no section for '%s'\n", path);
    dc->missing++;
    return;
  }
  const char *end = strstr(sec + strlen(title), "\n### ");
  const char *p = sec;
  for (size_t i = 0; i < 5; i++) {
    char h[32];
    snprintf(h, sizeof(h), "\n#### %s\n", heads[i]);
    p = strstr(p, h);
    if (!p || (end && p > end)) {
      print_error("docs/config.md: section '%s' lacks heading %s (in order)\n", path, heads[i]);
      dc->missing++;
      return;
    }
  }
}

static void read_config_md(struct mx_buf *doc)
{
  char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/../../docs/config.md", src_dir);
  assert_int_equal(mx_file_read(path, 1 << 20, doc, NULL), MX_OK);
}

static void docs_cover_every_key(void **state)
{
  (void)state;
  struct mx_buf doc;
  read_config_md(&doc);
  struct doc_check dc = {mx_buf_cstr(&doc), 0, 0};
  mx_config_each_key(check_doc_key, &dc);
  mx_buf_release(&doc);
  assert_true(dc.keys > 30);
  assert_int_equal(dc.missing, 0);
}

/* The other direction: every key section in docs/config.md is a key the
 * loader accepts (a documented key the loader rejects is a broken promise). */
static void docs_document_only_real_keys(void **state)
{
  (void)state;
  char path[PATH_MAX * 2];
  int keys = 0;
  snprintf(path, sizeof(path), "%s/../../docs/config.md", src_dir);
  assert_int_equal(doc_keys_check(path, mx_config_each_key, "", 1, &keys), 0);
  assert_true(keys > 30);
}

static void user_ids_and_listen_addresses(void **state)
{
  (void)state;
  static const char *const good[] = {"@a:example.org", "@agent-pc1:matrix.example.org:8448", "@x.y_z=/+-:h",
                                     "@a:127.0.0.1", "@a:[::1]:8448"};
  static const char *const bad[] = {"a:example.org", "@:example.org", "@a", "@a:", "@A:example.org",
                                    "@a:exa mple.org", "@a:example.org:0", "@a:[zz]", "@a b:example.org"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    assert_true(mx_config_valid_user_id(good[i]));
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_false(mx_config_valid_user_id(bad[i]));

  char host[64];
  char err[MX_ERRBUF_LEN];
  int port = -1;
  assert_int_equal(mx_config_parse_listen("127.0.0.1:9090", 0, host, sizeof(host), &port, err), MX_OK);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 9090);
  assert_int_equal(mx_config_parse_listen("[::1]:80", 0, host, sizeof(host), &port, err), MX_OK);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 80);
  assert_int_equal(mx_config_parse_listen("127.0.0.1:0", 1, host, sizeof(host), &port, err), MX_OK);
  assert_int_equal(port, 0);
  assert_int_equal(mx_config_parse_listen("127.0.0.1:0", 0, host, sizeof(host), &port, err), MX_ERR_INVALID);
  assert_string_equal(err, "http listen address '127.0.0.1:0': expected IP:PORT like 127.0.0.1:9090");
  static const char *const bad_listen[] = {"localhost:80", "127.0.0.1", ":80", "127.0.0.1:65536", "::1:80",
                                           "[::1]80", "127.0.0.1:8a"};
  for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++)
    assert_int_equal(mx_config_parse_listen(bad_listen[i], 1, host, sizeof(host), &port, NULL), MX_ERR_INVALID);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(malformed_configs_give_exact_errors),
    cmocka_unit_test(a_missing_file_is_named),
    cmocka_unit_test(minimum_shape_loads_with_defaults),
    cmocka_unit_test(every_key_is_read),
    cmocka_unit_test(relative_paths_follow_the_config_file),
    cmocka_unit_test(the_shipped_example_loads),
    cmocka_unit_test(docs_cover_every_key),
    cmocka_unit_test(docs_document_only_real_keys),
    cmocka_unit_test(damaged_configs_fail_cleanly),
    cmocka_unit_test(user_ids_and_listen_addresses),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
