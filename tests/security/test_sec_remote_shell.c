/*
 * tests/security/test_sec_remote_shell.c - issue 11 finding 4 at the policy
 * layer, for devices whose commands a non-POSIX shell or Windows runs:
 * - '..' hidden behind a '\' separator ("C:/logs/..\..\Windows\win.ini")
 *   matched an allow rule, since only '/' was taken as a separator;
 * - Windows names of interpreters (pwsh.exe, bash.exe, wsl.exe, a .bat
 *   file) could be allowed without approval.
 * Each refused call is audited as denied and nothing runs. The quoting per
 * remote shell itself is proven in tests/devices (test_ssh_quote: exact
 * forms and real shells; test_ssh: the login-shell probe against sshd).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sec_fx.h"

#define WIN_MANIFEST(rules)                                                                                   \
  "{\"version\":1,\"platform\":\"windows\",\"paths\":{\"read\":[\"C:/logs\"]},"                              \
  "\"commands\":{\"allow\":[" rules "]},\"tools\":{\"shell.exec\":{\"timeout_ms\":3000}}}"

static int setup(void **state) { return sec_setup(state); }

static void test_backslash_dotdot_is_a_dotdot(void **state)
{
  struct sec_fx *f = *state;
  sec_engine(f, WIN_MANIFEST("{\"argv0\":\"C:/tools/viewer.exe\",\"args\":[\"C:/logs/*\"]}"), 0);
  const char *escapes[] = {
      "{\"argv\":[\"C:/tools/viewer.exe\",\"C:/logs/..\\\\..\\\\Windows\\\\win.ini\"]}",
      "{\"argv\":[\"C:/tools/viewer.exe\",\"C:/logs/..\\\\secret.txt\"]}",
      "{\"argv\":[\"C:/tools/viewer.exe\",\"C:/logs/a\\\\..\"]}",
  };
  for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
    struct tools_outcome out;
    sec_call(f, "shell.exec", escapes[i], &out);
    if (out.status != TOOLS_OUT_DENIED)
      fail_msg("%s: expected denied, got %s: %s", escapes[i], tools_outcome_status_str(out.status), out.text);
    tools_outcome_release(&out);
    sec_assert_audit_refused(f);
  }
  /* a name that merely contains dots is still a name */
  char err[MX_ERRBUF_LEN];
  cJSON *args = cJSON_Parse("{\"argv\":[\"C:/tools/viewer.exe\",\"C:/logs/app..1.log\"]}");
  struct tools_policy_result r;
  assert_int_equal(tools_policy_check(f->m, "shell.exec", args, &r, err), MX_OK);
  assert_int_equal(r.decision, TOOLS_ALLOW);
  cJSON_Delete(args);
}

static void test_windows_interpreter_names_need_approval(void **state)
{
  (void)state;
  const char *progs[] = {"C:/Program Files/PowerShell/7/pwsh.exe", "C:/Windows/System32/bash.exe",
                         "C:/Windows/System32/wsl.exe", "C:/Windows/System32/WSL.EXE",
                         "C:/Python312/python.exe", "C:/scripts/restart.bat", "C:/scripts/x.CMD",
                         "C:/Windows/System32/mshta.exe", "C:/Windows/System32/rundll32.exe",
                         "C:/Windows/System32/wscript.exe"};
  for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
    char text[512], err[MX_ERRBUF_LEN] = "";
    snprintf(text, sizeof(text), WIN_MANIFEST("{\"argv0\":\"%s\",\"args\":[]}"), progs[i]);
    cJSON *j = cJSON_Parse(text);
    struct tools_manifest *m = NULL;
    if (tools_policy_parse(j, "win.json", &m, err) != MX_ERR_CONFIG)
      fail_msg("%s under commands.allow loaded: it runs other programs and must ask", progs[i]);
    assert_non_null(strstr(err, "interpreter or escape hatch"));
    cJSON_Delete(j);
    assert_true(tools_policy_is_interpreter(progs[i]));
  }
  assert_false(tools_policy_is_interpreter("C:/Windows/System32/ipconfig.exe"));
  assert_false(tools_policy_is_interpreter("/usr/bin/uptime"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_backslash_dotdot_is_a_dotdot, setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_windows_interpreter_names_need_approval, setup, sec_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
