/* mx_longpoll: the /sync long-poll is stretched only by long-polls held in
 * full at the current length, and a stretched one cut by something in the
 * path brings every later one below the cut for good, while failures that
 * the length cannot explain stay ordinary failures (the caller's backoff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mx_longpoll.h"

/* n long-polls at the current length, each answered empty at its length */
static int hold(struct mx_longpoll *lp, int n)
{
  int stretched = 0;
  for (int i = 0; i < n; i++)
    stretched += mx_longpoll_answered(lp, lp->len_ms, lp->len_ms + 3);
  return stretched;
}

static void stretches_by_half_up_to_the_max(void **state)
{
  (void)state;
  struct mx_longpoll lp;
  mx_longpoll_init(&lp, 30000, 120000);
  assert_int_equal(lp.len_ms, 30000);
  assert_int_equal(hold(&lp, MX_LONGPOLL_HOLDS - 1), 0);
  assert_int_equal(lp.len_ms, 30000);
  assert_int_equal(hold(&lp, 1), 1);
  assert_int_equal(lp.len_ms, 45000);
  hold(&lp, MX_LONGPOLL_HOLDS);
  assert_int_equal(lp.len_ms, 67500);
  hold(&lp, MX_LONGPOLL_HOLDS);
  assert_int_equal(lp.len_ms, 101250);
  hold(&lp, MX_LONGPOLL_HOLDS);
  assert_int_equal(lp.len_ms, 120000);
  assert_int_equal(hold(&lp, 5 * MX_LONGPOLL_HOLDS), 0);
  assert_int_equal(lp.len_ms, 120000);
}

static void only_full_holds_at_the_current_length_count(void **state)
{
  (void)state;
  struct mx_longpoll lp;
  mx_longpoll_init(&lp, 30000, 120000);
  for (int i = 0; i < 5 * MX_LONGPOLL_HOLDS; i++) {
    /* answered early (events came), a catch-up sync, a shorter length */
    assert_int_equal(mx_longpoll_answered(&lp, 30000, 12000), 0);
    assert_int_equal(mx_longpoll_answered(&lp, 0, 5), 0);
    assert_int_equal(mx_longpoll_answered(&lp, 20000, 20001), 0);
  }
  assert_int_equal(lp.len_ms, 30000);
}

static void no_stretching_when_the_max_is_not_above_the_start(void **state)
{
  (void)state;
  struct mx_longpoll lp;
  mx_longpoll_init(&lp, 30000, 30000);
  assert_int_equal(hold(&lp, 5 * MX_LONGPOLL_HOLDS), 0);
  assert_int_equal(lp.len_ms, 30000);
  mx_longpoll_init(&lp, 60000, 45000); /* a max below the start: the start */
  assert_int_equal(hold(&lp, 5 * MX_LONGPOLL_HOLDS), 0);
  assert_int_equal(lp.len_ms, 60000);
}

/* nginx's proxy_read_timeout of 60 s cuts the 67.5 s long-poll at 60 s */
static void an_active_cut_brings_the_length_below_it_for_good(void **state)
{
  (void)state;
  struct mx_longpoll lp;
  int shortened = -1;
  mx_longpoll_init(&lp, 30000, 120000);
  hold(&lp, 2 * MX_LONGPOLL_HOLDS);
  assert_int_equal(lp.len_ms, 67500);
  assert_int_equal(mx_longpoll_cut(&lp, 67500, 60004, 0, &shortened), 1);
  assert_int_equal(shortened, 1);
  assert_int_equal(lp.len_ms, 54003); /* 9/10 of the cut, above the 45 s held */
  /* the other identities' long-polls of 67.5 s are cut the same way */
  assert_int_equal(mx_longpoll_cut(&lp, 67500, 60010, 0, &shortened), 1);
  assert_int_equal(shortened, 0);
  assert_int_equal(lp.len_ms, 54003);
  /* and it is never stretched again */
  assert_int_equal(hold(&lp, 10 * MX_LONGPOLL_HOLDS), 0);
  assert_int_equal(lp.len_ms, 54003);
}

/* haproxy's 50 s: the cut comes early in the stretched long-poll, 9/10 of
 * it (45 s) is what held already */
static void a_cut_never_goes_below_what_held(void **state)
{
  (void)state;
  struct mx_longpoll lp;
  int shortened = 0;
  mx_longpoll_init(&lp, 30000, 120000);
  hold(&lp, 2 * MX_LONGPOLL_HOLDS);
  assert_int_equal(mx_longpoll_cut(&lp, 67500, 50000, 0, &shortened), 1);
  assert_int_equal(lp.len_ms, 45000);
  /* a cut again at the new length brings it lower still, not below the start */
  assert_int_equal(mx_longpoll_cut(&lp, 45000, 31000, 0, &shortened), 1);
  assert_int_equal(shortened, 1);
  assert_int_equal(lp.len_ms, 30000);
}

/* a NAT that drops idle connections silently: the long-poll is abandoned
 * as hung past its length; where the path was lost is unknown */
static void a_hang_falls_back_to_the_longest_held(void **state)
{
  (void)state;
  struct mx_longpoll lp;
  int shortened = 0;
  mx_longpoll_init(&lp, 30000, 120000);
  hold(&lp, 2 * MX_LONGPOLL_HOLDS);
  assert_int_equal(mx_longpoll_cut(&lp, 67500, 97500, 1, &shortened), 1);
  assert_int_equal(shortened, 1);
  assert_int_equal(lp.len_ms, 45000);
  /* a hang at the first stretch goes back to the start */
  mx_longpoll_init(&lp, 30000, 120000);
  hold(&lp, MX_LONGPOLL_HOLDS);
  assert_int_equal(mx_longpoll_cut(&lp, 45000, 75000, 1, &shortened), 1);
  assert_int_equal(lp.len_ms, 30000);
}

static void failures_the_length_does_not_explain_are_ordinary(void **state)
{
  (void)state;
  struct mx_longpoll lp;
  int shortened = -1;
  mx_longpoll_init(&lp, 30000, 120000);
  /* a long-poll at the start length: nothing to learn */
  assert_int_equal(mx_longpoll_cut(&lp, 30000, 30500, 0, &shortened), 0);
  assert_int_equal(mx_longpoll_cut(&lp, 30000, 60000, 1, &shortened), 0);
  assert_int_equal(shortened, 0);
  hold(&lp, MX_LONGPOLL_HOLDS);
  assert_int_equal(lp.len_ms, 45000);
  /* a stretched one failing before the start length ran out (the
   * homeserver restarting): not the length */
  assert_int_equal(mx_longpoll_cut(&lp, 45000, 12000, 0, &shortened), 0);
  assert_int_equal(mx_longpoll_cut(&lp, 0, 31000, 0, &shortened), 0);
  assert_int_equal(lp.len_ms, 45000);
  assert_int_equal(lp.cap_ms, 0);
  hold(&lp, MX_LONGPOLL_HOLDS);
  assert_int_equal(lp.len_ms, 67500);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(stretches_by_half_up_to_the_max),
    cmocka_unit_test(only_full_holds_at_the_current_length_count),
    cmocka_unit_test(no_stretching_when_the_max_is_not_above_the_start),
    cmocka_unit_test(an_active_cut_brings_the_length_below_it_for_good),
    cmocka_unit_test(a_cut_never_goes_below_what_held),
    cmocka_unit_test(a_hang_falls_back_to_the_longest_held),
    cmocka_unit_test(failures_the_length_does_not_explain_are_ordinary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
