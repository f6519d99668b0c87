/* Unit tests of lib/ps_failover: which receiver a stream tries next and
 * when, on a clock and a "random" jitter the tests choose. */
#include "config.h"

#include "unit_util.h"

#include "ps_failover.h"

static void add3(ps__failover *f) {
  char err[PS_ERRMSG_MAX];
  memset(f, 0, sizeof(*f));
  ck_assert_int_eq(ps__failover_add(f, "b", 2, 0, err), 0);
  ck_assert_int_eq(ps__failover_add(f, "c", 3, 0, err), 0);
  ck_assert_int_eq(ps__failover_add(f, "a", 1, 1, err), 0);
}

START_TEST(test_add) {
  ps__failover f;
  char err[PS_ERRMSG_MAX];
  add3(&f);
  ck_assert_str_eq(f.rcv[0].host, "a");
  ck_assert_str_eq(f.rcv[1].host, "b");
  ck_assert_str_eq(f.rcv[2].host, "c");
  ck_assert_err(ps__failover_add(&f, "", 1, 0, err), PS_ERR_INVALID, err,
                "invalid receiver address");
  ck_assert_err(ps__failover_add(&f, "h", 0, 0, err), PS_ERR_INVALID, err,
                "invalid receiver address");
  char longname[300];
  memset(longname, 'x', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  ck_assert_int_eq(ps__failover_add(&f, longname, 1, 0, err), PS_ERR_INVALID);
  for (int i = 3; i < PS_MAX_RECEIVERS; i++) {
    ck_assert_int_eq(ps__failover_add(&f, "h", 9, 0, err), 0);
  }
  ck_assert_err(ps__failover_add(&f, "h", 9, 0, err), PS_ERR_LIMIT, err,
                "at most 8 receivers");
}
END_TEST

START_TEST(test_first_connection) {
  /* Round robin at once; rounds 1 s, 2 s, 4 s apart; gives up when the
   * next round would start past the timeout. */
  ps__failover f;
  add3(&f);
  ps__failover_start(&f, 1000, 10000);
  int64_t now = 1000;
  int64_t waits[8];
  int n = 0;
  for (;;) {
    ck_assert_str_eq(ps__failover_host(&f), "a");
    ck_assert_int_eq(ps__failover_failed(&f, now, 1, 0), PS_FAILOVER_NEXT);
    ck_assert_uint_eq(ps__failover_port(&f), 2);
    ck_assert_int_eq(f.next_ms, now);
    ck_assert_int_eq(ps__failover_failed(&f, now, 1, 0), PS_FAILOVER_NEXT);
    ck_assert_str_eq(ps__failover_host(&f), "c");
    enum ps__failover_next r = ps__failover_failed(&f, now, 1, 0);
    if (r == PS_FAILOVER_GIVE_UP) {
      break;
    }
    ck_assert_int_eq(r, PS_FAILOVER_WAIT);
    waits[n++] = f.next_ms - now;
    now = f.next_ms;
  }
  ck_assert_int_eq(n, 3);
  ck_assert_int_eq(waits[0], 1000);
  ck_assert_int_eq(waits[1], 2000);
  ck_assert_int_eq(waits[2], 4000);
  ck_assert_uint_eq(f.attempts, 12);
}
END_TEST

START_TEST(test_first_connection_caps_at_30s) {
  ps__failover f;
  char err[PS_ERRMSG_MAX];
  memset(&f, 0, sizeof(f));
  ck_assert_int_eq(ps__failover_add(&f, "a", 1, 0, err), 0);
  ps__failover_start(&f, 0, 0); /* never gives up */
  int64_t now = 0, last = 0;
  for (int i = 0; i < 20; i++) {
    ck_assert_int_eq(ps__failover_failed(&f, now, 1, 0), PS_FAILOVER_WAIT);
    last = f.next_ms - now;
    now = f.next_ms;
  }
  ck_assert_int_eq(last, 30000);
}
END_TEST

START_TEST(test_reconnect_backoff) {
  /* After the first connection: 0.5 s doubling to 30 s, with the jitter
   * within +-25%; a session that worked starts it over, a connection
   * that did not leaves it. */
  ps__failover f;
  add3(&f);
  ps__failover_start(&f, 0, 0);
  ps__failover_connected(&f, 1);
  ps__failover_lost(&f, 0, 0);
  ck_assert_int_eq(f.next_ms, 375);             /* the least jitter */
  ck_assert_str_eq(ps__failover_host(&f), "a"); /* the same receiver */
  ps__failover_lost(&f, 0, UINT32_MAX);
  ck_assert_int_ge(f.next_ms, 750);
  ck_assert_int_le(f.next_ms, 1250);
  ps__failover_lost(&f, 0, 1000);
  ck_assert_int_eq(f.next_ms, 1500 + 1000 % 1001);
  for (int i = 0; i < 10; i++) {
    ps__failover_lost(&f, 0, 0);
  }
  ck_assert_int_eq(f.next_ms, 22500);
  ps__failover_connected(&f, 0);
  ps__failover_lost(&f, 0, 0);
  ck_assert_int_eq(f.next_ms, 22500);
  ps__failover_connected(&f, 1);
  ps__failover_lost(&f, 0, 0);
  ck_assert_int_eq(f.next_ms, 375);
  /* Failed attempts: the others at once, then the backoff. */
  ck_assert_int_eq(ps__failover_failed(&f, 100, 0, 0), PS_FAILOVER_NEXT);
  ck_assert_int_eq(ps__failover_failed(&f, 100, 0, 0), PS_FAILOVER_NEXT);
  ck_assert_int_eq(ps__failover_failed(&f, 100, 0, 0), PS_FAILOVER_WAIT);
  ck_assert_int_eq(f.next_ms, 100 + 750);
  ck_assert_str_eq(ps__failover_host(&f), "a");
  ck_assert_uint_eq(f.attempts, 0);
}
END_TEST

static Suite *failover_suite(void) {
  Suite *s = suite_create("failover");
  TCase *tc = tcase_create("plan");
  tcase_add_test(tc, test_add);
  tcase_add_test(tc, test_first_connection);
  tcase_add_test(tc, test_first_connection_caps_at_30s);
  tcase_add_test(tc, test_reconnect_backoff);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(failover_suite());
}
