/*
 * tests/tools/test_tools_redact.c - a corpus of fake secrets in realistic
 * surroundings: none may survive, each becomes [REDACTED:<rule>:<hmac8>],
 * the same secret always gets the same tag (and a different key gives a
 * different one), ordinary text is left alone, and the mx_log filter works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_log.h"
#include "tools_redact.h"
#include "tools_test_util.h"

static const char key1[] = "0123456789abcdef0123456789abcdef";
static const char key2[] = "fedcba9876543210fedcba9876543210";

struct sample {
  const char *text;   /* contains the secret */
  const char *secret; /* must not survive */
  const char *rule;
};

static const struct sample corpus[] = {
    {"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", "AKIAIOSFODNN7EXAMPLE", "aws_key"},
    {"key:ASIAY34FZKBOKMUTVV7A,", "ASIAY34FZKBOKMUTVV7A", "aws_key"},
    {"export GITHUB_TOKEN=ghp_1234567890abcdefghijABCDEFGHIJ123456", "ghp_1234567890abcdefghijABCDEFGHIJ123456", "password"},
    {"token ghp_1234567890abcdefghijABCDEFGHIJ123456 used", "ghp_1234567890abcdefghijABCDEFGHIJ123456", "github_token"},
    {"pat: github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_token"},
    {"slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx ok", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"},
    {"Authorization: Bearer abc.DEF-ghi_jkl~mno+pqr/stu=", "abc.DEF-ghi_jkl~mno+pqr/stu=", "password"},
    {"curl -H 'X: bearer 9f8e7d6c5b4a39281706'", "9f8e7d6c5b4a39281706", "bearer"},
    {"DB_PASSWORD=hunter2hunter2 next", "hunter2hunter2", "password"},
    {"{\"password\": \"c0rrect horse\"}", "c0rrect horse", "password"},
    {"mysql --password='s3cr3t!x' -u root", "s3cr3t!x", "password"},
    {"client_secret: abcDEF123456\n", "abcDEF123456", "password"},
    {"jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"},
    {"cookie eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U;",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"},
    {"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n-----END OPENSSH PRIVATE KEY-----\nafter",
     "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB", "private_key"},
    /* output cut inside a key (fs.read at max_bytes): the body seen so far */
    {"x -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtruncatedMIIEowIBAAKC", "MIIEowIBAAKCAQEAtruncatedMIIEowIBAAKC", "private_key"},
    {"PGPASSWORD=pgS3cret psql -h db", "pgS3cret", "password"},
    {"psql postgres://app:pgS3cret@db.example.org:5432/app", "pgS3cret", "url_password"},
    {"mysql -u root -pmyS3cret app", "myS3cret", "password"},
    {"sync with syt_YWxpY2U_FZsvBbNGQFIZEeRlKrxs_0ZoLR1 failed", "syt_YWxpY2U_FZsvBbNGQFIZEeRlKrxs_0ZoLR1", "matrix_token"},
    {"[REDACTED: AKIAIOSFODNN7EXAMPLE ]", "AKIAIOSFODNN7EXAMPLE", "aws_key"},
    {"matrix access token syt_c2VjcmV0_literal_token_1234", "syt_c2VjcmV0_literal_token_1234", "matrix_token"},
};

static struct tools_redactor *make(const char *key)
{
  struct tools_redactor *r = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_redact_new(key, strlen(key), &r, err), MX_OK);
  assert_int_equal(tools_redact_add_literal(r, "matrix_token", "syt_c2VjcmV0_literal_token_1234", err), MX_OK);
  return r;
}

static void test_corpus_has_zero_leaks(void **state)
{
  (void)state;
  struct tools_redactor *r = make(key1);
  for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
    int n = 0;
    char *out = tools_redact(r, corpus[i].text, strlen(corpus[i].text), NULL, &n);
    assert_non_null(out);
    if (strstr(out, corpus[i].secret) || n < 1)
      fail_msg("sample %zu leaked: %s", i, out);
    char tag[96];
    tools_redact_tag(r, corpus[i].rule, corpus[i].secret, strlen(corpus[i].secret), tag, sizeof(tag));
    if (!strstr(out, tag))
      fail_msg("sample %zu: expected tag %s in %s", i, tag, out);
    free(out);
  }
  tools_redact_free(r);
}

static void test_same_secret_same_tag_other_key_other_tag(void **state)
{
  (void)state;
  struct tools_redactor *a = make(key1), *b = make(key2);
  char *x = tools_redact_str(a, "first AKIAIOSFODNN7EXAMPLE then");
  char *y = tools_redact_str(a, "again: AKIAIOSFODNN7EXAMPLE.");
  char *z = tools_redact_str(b, "first AKIAIOSFODNN7EXAMPLE then");
  const char *tx = strstr(x, "[REDACTED:aws_key:"), *ty = strstr(y, "[REDACTED:aws_key:");
  assert_non_null(tx);
  assert_non_null(ty);
  assert_memory_equal(tx, ty, strlen("[REDACTED:aws_key:12345678]"));
  const char *tz = strstr(z, "[REDACTED:aws_key:");
  assert_non_null(tz);
  assert_memory_not_equal(tx, tz, strlen("[REDACTED:aws_key:12345678]"));
  assert_int_equal(strncmp(x, "first [REDACTED:aws_key:", 24), 0);
  assert_string_equal(x + strlen("first [REDACTED:aws_key:12345678]"), " then");
  free(x);
  free(y);
  free(z);
  tools_redact_free(a);
  tools_redact_free(b);
}

static void test_plain_text_is_untouched(void **state)
{
  (void)state;
  struct tools_redactor *r = make(key1);
  static const char *const plain[] = {
      "PWD=/home/user and PATH=/usr/bin",
      "the password policy requires 12 characters",
      "basic setup instructions: run make",
      "tokenizer output: 42 tokens",
      "AKIA is a prefix but AKIA123 is too short",
      "-rw-r--r-- 1 root root 220 Nov 21 20:00 .bashrc",
      "login: 401 M_UNKNOWN_TOKEN: Unrecognised access token.",
      "mkdir -p -pdir && echo https://example.org:8443/path",
  };
  for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
    int n = -1;
    char *out = tools_redact(r, plain[i], strlen(plain[i]), NULL, &n);
    if (n != 0 || strcmp(out, plain[i]) != 0)
      fail_msg("changed: '%s' -> '%s'", plain[i], out);
    free(out);
  }
  tools_redact_free(r);
}

/* Found by tests/fuzz/fuzz_redact: a pattern that starts before its secret
 * (a key=value pair's key, "Bearer ") copied its lead-in as it was, so a
 * configured literal inside the key survived. */
static void test_literal_inside_a_pairs_key(void **state)
{
  (void)state;
  struct tools_redactor *r = make(key1);
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_redact_add_literal(r, "config", "hunter2-config-secret", err), MX_OK);
  static const char *const texts[] = {"DB_PASSWORD_hunter2-config-secret=x\n",
                                      "export TOKENhunter2-config-secret: abc"};
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
    char *out = tools_redact_str(r, texts[i]);
    assert_non_null(out);
    if (strstr(out, "hunter2-config-secret"))
      fail_msg("literal survived: '%s'", out);
    assert_non_null(strstr(out, "[REDACTED:config:"));
    free(out);
  }
  tools_redact_free(r);
}

static void test_log_filter_redacts_lines(void **state)
{
  (void)state;
  struct tools_redactor *r = make(key1);
  char dir[128], path[256], buf[4096];
  assert_non_null(tt_tmpdir(dir, sizeof(dir), "redact"));
  tt_path(path, sizeof(path), dir, "log");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  mx_log_set_fd(fd);
  mx_log_set_filter(tools_redact_log_filter, r);
  mx_log(MX_LOG_ERROR, "pc1", "login failed with password=hunter2hunter2 for bot");
  mx_log_set_filter(NULL, NULL);
  mx_log_set_fd(-1);
  close(fd);
  assert_true(tt_read(path, buf, sizeof(buf)) > 0);
  assert_null(strstr(buf, "hunter2hunter2"));
  assert_non_null(strstr(buf, "password=[REDACTED:password:"));
  assert_null(tools_redact_log_filter(r, "nothing to hide here"));
  tt_rmtree(dir);
  tools_redact_free(r);
}

static void test_key_file_is_created_once_0600(void **state)
{
  (void)state;
  char dir[128], path[256], err[MX_ERRBUF_LEN];
  assert_non_null(tt_tmpdir(dir, sizeof(dir), "rkey"));
  tt_path(path, sizeof(path), dir, "redact.key");
  struct tools_redactor *a = NULL, *b = NULL;
  assert_int_equal(tools_redact_new_from_file(path, &a, err), MX_OK);
  assert_int_equal(tools_redact_new_from_file(path, &b, err), MX_OK);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_size, 32);
  char ta[96], tb[96];
  tools_redact_tag(a, "x", "secret-value", 12, ta, sizeof(ta));
  tools_redact_tag(b, "x", "secret-value", 12, tb, sizeof(tb));
  assert_string_equal(ta, tb);
  assert_int_equal(tools_redact_add_literal(a, "short", "abc", err), MX_ERR_INVALID);
  tools_redact_free(a);
  tools_redact_free(b);
  tt_rmtree(dir);
}

/* A fleet of 1,000 devices has a password file each: every one is masked
 * (the redactor used to refuse more than 512 literals, so such a daemon did
 * not start). */
static void test_a_literal_per_device_of_a_large_fleet(void **state)
{
  (void)state;
  struct tools_redactor *r = NULL;
  char err[MX_ERRBUF_LEN], secret[64];
  assert_int_equal(tools_redact_new(key1, strlen(key1), &r, err), MX_OK);
  for (int i = 0; i < 3000; i++) {
    snprintf(secret, sizeof(secret), "device-%04d-password-Xq9", i);
    assert_int_equal(tools_redact_add_literal(r, "config", secret, err), MX_OK);
  }
  int n = 0;
  char *out = tools_redact(r, "login with device-2999-password-Xq9 failed", 42, NULL, &n);
  assert_non_null(out);
  assert_int_equal(n, 1);
  assert_null(strstr(out, "device-2999-password-Xq9"));
  free(out);
  tools_redact_free(r);
}

/* Arguments as a tree: every string on its own, argv context for mysql. */
static void test_json_args_keep_structure(void **state)
{
  (void)state;
  struct tools_redactor *r = make(key1);
  cJSON *a = cJSON_Parse("{\"argv\":[\"/usr/bin/mysql\",\"-u\",\"root\",\"-pS3cretPw\",\"-e\",\"select 1\"],"
                         "\"env\":\"PGPASSWORD=pgS3cretPw\"}");
  cJSON *red = tools_redact_json(r, a);
  char *txt = cJSON_PrintUnformatted(red);
  assert_null(strstr(txt, "S3cretPw"));
  assert_non_null(strstr(txt, "\"-p[REDACTED:password:"));
  assert_non_null(strstr(txt, "\"-u\",\"root\""));
  assert_non_null(strstr(txt, "\"select 1\""));
  cJSON_free(txt);
  cJSON_Delete(red);
  cJSON_Delete(a);
  a = cJSON_Parse("{\"argv\":[\"/bin/mkdir\",\"-p\",\"-pdir\"]}"); /* not mysql: -pdir is a name */
  red = tools_redact_json(r, a);
  txt = cJSON_PrintUnformatted(red);
  assert_string_equal(txt, "{\"argv\":[\"/bin/mkdir\",\"-p\",\"-pdir\"]}");
  cJSON_free(txt);
  cJSON_Delete(red);
  cJSON_Delete(a);
  tools_redact_free(r);
}

/* A key cut off (no END line): masked in output, visible in what runs. */
static void test_unterminated_key_modes(void **state)
{
  (void)state;
  struct tools_redactor *r = make(key1);
  const char *t = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n";
  char *out = tools_redact_ex(r, t, strlen(t), 0, NULL, NULL);
  assert_null(strstr(out, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw"));
  free(out);
  out = tools_redact_ex(r, t, strlen(t), TOOLS_REDACT_EXEC, NULL, NULL);
  assert_string_equal(out, t);
  free(out);
  tools_redact_free(r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_corpus_has_zero_leaks),
      cmocka_unit_test(test_same_secret_same_tag_other_key_other_tag),
      cmocka_unit_test(test_plain_text_is_untouched),
      cmocka_unit_test(test_literal_inside_a_pairs_key),
      cmocka_unit_test(test_log_filter_redacts_lines),
      cmocka_unit_test(test_key_file_is_created_once_0600),
      cmocka_unit_test(test_json_args_keep_structure),
      cmocka_unit_test(test_a_literal_per_device_of_a_large_fleet),
      cmocka_unit_test(test_unterminated_key_modes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
