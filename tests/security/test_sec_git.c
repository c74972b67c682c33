/*
 * tests/security/test_sec_git.c - issue 11 finding 3 with Debian's git: a
 * repository's own config must not make git.status / git.diff / git.log
 * run a program (filter.<x>.clean with .gitattributes, log.showSignature
 * with gpg.program, fsmonitor, external diff, textconv, pager), and a
 * directory below a root must not reach a parent repository outside the
 * root (no ceiling) or through a ".git" file. Each program would create a
 * marker file in $D/var; none may appear, and the audit records the call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sec_fx.h"

#define GIT_TOOLS ",\"git.status\":{},\"git.log\":{},\"git.diff\":{}"

static void sh(struct sec_fx *f, const char *tmpl)
{
  char cmd[8192];
  sec_expand(f, tmpl, cmd, sizeof(cmd));
  if (system(cmd) != 0)
    fail_msg("setup command failed: %s", cmd);
}

static int git_setup(void **state)
{
  if (access("/usr/bin/git", X_OK) != 0) {
    print_message("git is not installed (scripts/install-deps installs it)\n");
    return -1;
  }
  sec_setup(state);
  struct sec_fx *f = *state;
  sec_engine(f, SEC_MANIFEST("", GIT_TOOLS), 0);
  return 0;
}

/* A repository whose config names a program for every hook git has. */
static void hostile_repo(struct sec_fx *f)
{
  sh(f, "set -e; cd $D/srv && git init -q repo && cd repo && "
        "printf '#!/bin/sh\\ntouch \"$D/var/marker-$1\"\\ncat\\n' > ../../var/prog && chmod +x ../../var/prog && "
        "echo 'hello' > a.txt && echo '*.txt filter=evil diff=evil' > .gitattributes && "
        "git add a.txt .gitattributes && "
        "tree=$(git write-tree) && "
        "c=$(printf 'tree %s\\nauthor a <a@example.org> 1700000000 +0000\\ncommitter a <a@example.org> 1700000000 "
        "+0000\\ngpgsig -----BEGIN PGP SIGNATURE-----\\n \\n ZmFrZQ==\\n -----END PGP SIGNATURE-----\\n\\nsigned\\n' "
        "$tree | git hash-object -t commit -w --stdin) && git update-ref HEAD $c && "
        "git config filter.evil.clean '$D/var/prog filter-clean' && "
        "git config filter.evil.smudge '$D/var/prog filter-smudge' && "
        "git config filter.evil.required true && "
        "git config diff.evil.textconv '$D/var/prog textconv' && "
        "git config diff.evil.command '$D/var/prog diffdriver' && "
        "git config diff.external '$D/var/prog external' && "
        "git config core.fsmonitor '$D/var/prog fsmonitor' && "
        "git config core.pager '$D/var/prog pager' && "
        "git config log.showSignature true && "
        "printf '#!/bin/sh\\ntouch $D/var/marker-gpg\\n' > $D/var/gpg && chmod +x $D/var/gpg && "
        "git config gpg.program $D/var/gpg && "
        "git config core.hooksPath $D/var/hooks && mkdir -p $D/var/hooks && "
        "printf '#!/bin/sh\\ntouch $D/var/marker-hook\\n' > $D/var/hooks/post-index-change && "
        "chmod +x $D/var/hooks/post-index-change && "
        /* same size, new mtime: git must hash a.txt again, through the filter */
        "echo 'HELLO' > a.txt && touch -d '2001-01-01' a.txt");
}

static void assert_no_marker(struct sec_fx *f)
{
  static const char *const kinds[] = {"filter-clean", "filter-smudge", "textconv", "diffdriver", "external",
                                      "fsmonitor", "pager", "gpg", "hook"};
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
    char rel[64];
    snprintf(rel, sizeof(rel), "var/marker-%s", kinds[i]);
    if (sec_exists(f, rel))
      fail_msg("the repository's config ran a program: %s", kinds[i]);
  }
}

static void assert_audit_done(struct sec_fx *f)
{
  char st[32];
  assert_string_equal(sec_last_status(f, st, sizeof(st)), "done");
}

/* One read tool on the hostile repository: it runs (audited as done), and
 * no program named by the repository does. */
static void run_clean(struct sec_fx *f, const char *tool, const char *want)
{
  struct tools_outcome out;
  sec_call(f, tool, "{\"repo\":\"$D/srv/repo\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  if (want)
    assert_non_null(strstr(out.text, want));
  tools_outcome_release(&out);
  assert_audit_done(f);
  assert_no_marker(f);
}

static void test_repo_config_runs_no_program(void **state)
{
  struct sec_fx *f = *state;
  hostile_repo(f);
  run_clean(f, "git.log", "signed");
  run_clean(f, "git.status", "a.txt");
  run_clean(f, "git.diff", NULL);
}

/* $D is a repository; its read root $D/srv is not. git must not walk up. */
static void test_no_walk_up_into_a_parent_repository(void **state)
{
  struct sec_fx *f = *state;
  sh(f, "set -e; cd $D && git init -q && git -c user.name=o -c user.email=o@example.org commit -q --allow-empty "
        "-m OUTSIDE-SECRET && mkdir -p srv/plain srv/gf && "
        "printf 'gitdir: %s/.git\\n' $D > srv/gf/.git");
  sec_expect_refused(f, "git.log", "{\"repo\":\"$D/srv/plain\"}", NULL, "OUTSIDE-SECRET");
  sec_expect_refused(f, "git.log", "{\"repo\":\"$D/srv/gf\"}", ".git is a file", "OUTSIDE-SECRET");
  /* A real work tree inside the root still works. */
  struct tools_outcome out;
  sh(f, "set -e; cd $D/srv && git init -q inner && cd inner && git -c user.name=i -c user.email=i@example.org "
        "commit -q --allow-empty -m inner-commit");
  sec_call(f, "git.log", "{\"repo\":\"$D/srv/inner\"}", &out);
  assert_int_equal(out.status, TOOLS_OUT_OK);
  assert_non_null(strstr(out.text, "inner-commit"));
  assert_null(strstr(out.text, "OUTSIDE-SECRET"));
  tools_outcome_release(&out);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_repo_config_runs_no_program, git_setup, sec_teardown),
      cmocka_unit_test_setup_teardown(test_no_walk_up_into_a_parent_repository, git_setup, sec_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
