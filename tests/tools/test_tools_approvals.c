/*
 * tests/tools/test_tools_approvals.c - the approval store on a real SQLite
 * file: only operators decide, approving A cannot run B, single use (a
 * replayed approve or a second consume fails), expiry is deny, waiters wake
 * on decisions, expiry and cancel, and pending actions survive reopening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>

#include "mx_util.h"
#include "tools_approvals.h"
#include "tools_test_util.h"

struct fx {
  char dir[128];
  char db[256];
  struct tools_approvals *ap;
};

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof(*f));
  char err[MX_ERRBUF_LEN];
  assert_non_null(tt_tmpdir(f->dir, sizeof(f->dir), "appr"));
  tt_path(f->db, sizeof(f->db), f->dir, "mxfleet.db");
  assert_int_equal(tools_approvals_open(f->db, &f->ap, err), MX_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fx *f = *state;
  tools_approvals_close(f->ap);
  tt_rmtree(f->dir);
  free(f);
  return 0;
}

static void create(struct fx *f, const char *args, int64_t ttl, struct tools_pending *p)
{
  char err[MX_ERRBUF_LEN];
  memset(p, 0, sizeof(*p));
  p->device = "pc1";
  p->tool = "proc.kill";
  p->args_json = (char *)args;
  p->risk = "destructive";
  p->requester = "@op:example.org";
  assert_int_equal(tools_approvals_create(f->ap, p, ttl, err), MX_OK);
  assert_int_equal(strlen(p->id), TOOLS_ACTION_ID_LEN);
  assert_int_equal(strlen(p->args_hash), TOOLS_ARGS_HASH_LEN);
}

static void test_only_operators_decide(void **state)
{
  struct fx *f = *state;
  struct tools_pending p, got;
  char err[MX_ERRBUF_LEN];
  create(f, "{\"pid\":42}", 0, &p);
  assert_int_equal(tools_approvals_decide(f->ap, p.id, "@mallory:example.org", 0, TOOLS_VERDICT_APPROVE, "reply", err),
                   MX_ERR_DENIED);
  assert_string_equal(err, "'@mallory:example.org' is not an operator of this device: only an operator can approve");
  assert_int_equal(tools_approvals_get(f->ap, p.id, &got, err), MX_OK);
  assert_int_equal(got.state, TOOLS_APPROVAL_PENDING);
  tools_pending_release(&got);
  assert_int_equal(tools_approvals_decide(f->ap, "nosuchid", "@op:example.org", 1, TOOLS_VERDICT_APPROVE, "reply", err),
                   MX_ERR_NOT_FOUND);
}

static void test_approving_a_cannot_run_b_and_single_use(void **state)
{
  struct fx *f = *state;
  struct tools_pending a, b;
  char err[MX_ERRBUF_LEN];
  create(f, "{\"pid\":42}", 0, &a);
  create(f, "{\"pid\":43}", 0, &b);
  assert_string_not_equal(a.args_hash, b.args_hash);
  assert_int_equal(tools_approvals_decide(f->ap, a.id, "@op:example.org", 1, TOOLS_VERDICT_APPROVE, "reaction", err), MX_OK);
  /* A's approval presented with B's arguments. */
  assert_int_equal(tools_approvals_consume(f->ap, a.id, "proc.kill", b.args_hash, err), MX_ERR_DENIED);
  assert_non_null(strstr(err, "not this call"));
  assert_int_equal(tools_approvals_consume(f->ap, a.id, "fs.write", a.args_hash, err), MX_ERR_DENIED);
  /* B itself is still waiting. */
  assert_int_equal(tools_approvals_consume(f->ap, b.id, "proc.kill", b.args_hash, err), MX_ERR_PENDING);
  assert_int_equal(tools_approvals_consume(f->ap, a.id, "proc.kill", a.args_hash, err), MX_OK);
  assert_int_equal(tools_approvals_consume(f->ap, a.id, "proc.kill", a.args_hash, err), MX_ERR_CONFLICT);
  assert_non_null(strstr(err, "is already used"));
  /* Replaying the approve changes nothing. */
  assert_int_equal(tools_approvals_decide(f->ap, a.id, "@op:example.org", 1, TOOLS_VERDICT_APPROVE, "reply", err),
                   MX_ERR_CONFLICT);
}

static void test_expiry_is_deny(void **state)
{
  struct fx *f = *state;
  struct tools_pending p, got;
  char err[MX_ERRBUF_LEN];
  create(f, "{\"pid\":42}", 150, &p);
  int64_t deadline = mx_mono_ms() + 2000;
  while (mx_now_ms() <= p.expires_ms && mx_mono_ms() < deadline)
    usleep(20000);
  assert_int_equal(tools_approvals_decide(f->ap, p.id, "@op:example.org", 1, TOOLS_VERDICT_APPROVE, "reply", err),
                   MX_ERR_EXPIRED);
  assert_int_equal(tools_approvals_get(f->ap, p.id, &got, err), MX_OK);
  assert_int_equal(got.state, TOOLS_APPROVAL_EXPIRED);
  tools_pending_release(&got);
  assert_int_equal(tools_approvals_consume(f->ap, p.id, "proc.kill", p.args_hash, err), MX_ERR_EXPIRED);
}

struct decider {
  struct tools_approvals *ap;
  char id[16];
  int delay_ms;
};

static void *decide_later(void *arg)
{
  struct decider *d = arg;
  usleep((useconds_t)d->delay_ms * 1000);
  tools_approvals_decide(d->ap, d->id, "@op:example.org", 1, TOOLS_VERDICT_APPROVE, "reply", NULL);
  return NULL;
}

static void test_wait_wakes_on_decision_expiry_and_cancel(void **state)
{
  struct fx *f = *state;
  struct tools_pending p;
  enum tools_approval_state st;
  char err[MX_ERRBUF_LEN];
  create(f, "{\"pid\":42}", 0, &p);
  struct decider d = {f->ap, "", 100};
  snprintf(d.id, sizeof(d.id), "%s", p.id);
  pthread_t th;
  pthread_create(&th, NULL, decide_later, &d);
  int64_t t0 = mx_mono_ms();
  assert_int_equal(tools_approvals_wait(f->ap, p.id, NULL, &st, err), MX_OK);
  pthread_join(th, NULL);
  assert_int_equal(st, TOOLS_APPROVAL_APPROVED);
  assert_true(mx_mono_ms() - t0 < 1500);
  create(f, "{\"pid\":44}", 300, &p);
  assert_int_equal(tools_approvals_wait(f->ap, p.id, NULL, &st, err), MX_OK);
  assert_int_equal(st, TOOLS_APPROVAL_EXPIRED);
  create(f, "{\"pid\":45}", 0, &p);
  volatile int cancel = 1;
  assert_int_equal(tools_approvals_wait(f->ap, p.id, &cancel, &st, err), MX_OK);
  assert_int_equal(st, TOOLS_APPROVAL_CANCELLED);
}

static void test_pending_survives_restart(void **state)
{
  struct fx *f = *state;
  struct tools_pending p, got;
  char err[MX_ERRBUF_LEN];
  create(f, "{\"pid\":42}", 0, &p);
  assert_int_equal(tools_approvals_set_notice(f->ap, p.id, "$notice1", err), MX_OK);
  tools_approvals_close(f->ap);
  f->ap = NULL;
  assert_int_equal(tools_approvals_open(f->db, &f->ap, err), MX_OK);
  cJSON *list = NULL;
  assert_int_equal(tools_approvals_list_pending(f->ap, NULL, "pc1", &list, err), MX_OK);
  assert_int_equal(cJSON_GetArraySize(list), 1);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "id")->valuestring, p.id);
  cJSON_Delete(list);
  char id[TOOLS_ACTION_ID_LEN + 1];
  assert_int_equal(tools_approvals_find_by_notice(f->ap, "$notice1", id, err), MX_OK);
  assert_string_equal(id, p.id);
  assert_int_equal(tools_approvals_decide(f->ap, id, "@op:example.org", 1, TOOLS_VERDICT_DENY, "reaction", err), MX_OK);
  assert_int_equal(tools_approvals_get(f->ap, p.id, &got, err), MX_OK);
  assert_int_equal(got.state, TOOLS_APPROVAL_DENIED);
  assert_string_equal(got.decided_by, "@op:example.org");
  tools_pending_release(&got);
}

static void test_cancel_and_stop_all(void **state)
{
  struct fx *f = *state;
  struct tools_pending a, b, c;
  char err[MX_ERRBUF_LEN];
  int n = 0;
  create(f, "{\"pid\":1001}", 0, &a);
  create(f, "{\"pid\":1002}", 0, &b);
  create(f, "{\"pid\":1003}", 0, &c);
  assert_int_equal(tools_approvals_cancel(f->ap, a.id, "@op:example.org", err), MX_OK);
  assert_int_equal(tools_approvals_cancel(f->ap, a.id, "@op:example.org", err), MX_ERR_CONFLICT);
  assert_int_equal(tools_approvals_cancel_device(f->ap, "pc1", &n, err), MX_OK);
  assert_int_equal(n, 2);
  cJSON *list = NULL;
  assert_int_equal(tools_approvals_list_pending(f->ap, NULL, NULL, &list, err), MX_OK);
  assert_int_equal(cJSON_GetArraySize(list), 0);
  cJSON_Delete(list);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_only_operators_decide, setup, teardown),
      cmocka_unit_test_setup_teardown(test_approving_a_cannot_run_b_and_single_use, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry_is_deny, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wait_wakes_on_decision_expiry_and_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_survives_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_and_stop_all, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
