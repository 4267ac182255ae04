/* Replay cache and clock-skew window (node/replay.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "replay.h"

static void nonce_of(uint8_t n[16], uint32_t i) {
  memset(n, 0xA5, 16);
  memcpy(n, &i, sizeof i);
}

static void test_accept_then_replay_refused(void **state) {
  (void)state;
  replay_cache_t *rc;
  assert_int_equal(replay_init(&rc, 30000, 100), 0);
  uint8_t n[16];
  nonce_of(n, 1);
  assert_int_equal(replay_check(rc, "js", n, 16, 1000000, 1000000), 0);
  assert_int_equal(replay_check(rc, "js", n, 16, 1000000, 1000001), -REPLAY_E_REPLAYED);
  assert_int_equal(replay_count(rc), 1);
  /* Same nonce from another requester is a different request. */
  assert_int_equal(replay_check(rc, "zj", n, 16, 1000000, 1000001), 0);
  replay_free(rc);
}

static void test_skew_window(void **state) {
  (void)state;
  replay_cache_t *rc;
  assert_int_equal(replay_init(&rc, 30000, 100), 0);
  uint8_t n[16];
  int64_t now = 5000000;
  nonce_of(n, 1);
  assert_int_equal(replay_check(rc, "js", n, 16, now - 30001, now), -REPLAY_E_STALE);
  nonce_of(n, 2);
  assert_int_equal(replay_check(rc, "js", n, 16, now + 30001, now), -REPLAY_E_FUTURE);
  assert_int_equal(replay_count(rc), 0); /* refusals change nothing */
  nonce_of(n, 3);
  assert_int_equal(replay_check(rc, "js", n, 16, now - 30000, now), 0);
  nonce_of(n, 4);
  assert_int_equal(replay_check(rc, "js", n, 16, now + 30000, now), 0);
  /* Hostile extremes do not overflow. */
  nonce_of(n, 5);
  assert_int_equal(replay_check(rc, "js", n, 16, INT64_MIN, now), -REPLAY_E_STALE);
  assert_int_equal(replay_check(rc, "js", n, 16, INT64_MAX, now), -REPLAY_E_FUTURE);
  replay_free(rc);
}

static void test_nonce_length(void **state) {
  (void)state;
  replay_cache_t *rc;
  assert_int_equal(replay_init(&rc, 1000, 10), 0);
  uint8_t n[65] = {0};
  assert_int_equal(replay_check(rc, "js", n, 15, 0, 0), -REPLAY_E_NONCE);
  assert_int_equal(replay_check(rc, "js", n, 65, 0, 0), -REPLAY_E_NONCE);
  assert_int_equal(replay_check(rc, "js", n, 64, 0, 0), 0);
  assert_int_equal(replay_check(rc, "", n, 16, 0, 0), -REPLAY_E_ARG);
  replay_free(rc);
}

static void test_full_refuses_then_expiry_frees(void **state) {
  (void)state;
  replay_cache_t *rc;
  assert_int_equal(replay_init(&rc, 1000, 8), 0);
  uint8_t n[16];
  int64_t now = 100000;
  for (uint32_t i = 0; i < 8; i++) {
    nonce_of(n, i);
    assert_int_equal(replay_check(rc, "sh", n, 16, now, now), 0);
  }
  nonce_of(n, 100);
  assert_int_equal(replay_check(rc, "sh", n, 16, now, now + 10), -REPLAY_E_FULL);
  /* A replay of a remembered nonce is still refused as a replay. */
  nonce_of(n, 3);
  assert_int_equal(replay_check(rc, "sh", n, 16, now, now + 10), -REPLAY_E_REPLAYED);
  /* Once the window has passed, entries are dropped; the old nonce would be
   * stale anyway, so forgetting it is safe. */
  int64_t later = now + 1001;
  nonce_of(n, 3);
  assert_int_equal(replay_check(rc, "sh", n, 16, now, later), -REPLAY_E_STALE);
  nonce_of(n, 100);
  assert_int_equal(replay_check(rc, "sh", n, 16, later, later), 0);
  assert_int_equal(replay_count(rc), 1);
  replay_free(rc);
}

static void test_many_rounds_stay_bounded(void **state) {
  (void)state;
  replay_cache_t *rc;
  assert_int_equal(replay_init(&rc, 50, 32), 0);
  uint8_t n[16];
  int64_t now = 0;
  size_t refused = 0;
  for (uint32_t i = 0; i < 100000; i++) {
    now += 1;
    nonce_of(n, i);
    int r = replay_check(rc, "ah", n, 16, now - (int64_t)(i % 40), now);
    if (r == -REPLAY_E_FULL) refused++;
    else assert_int_equal(r, 0);
    assert_true(replay_count(rc) <= 32);
  }
  /* 1 request per ms and entries live <= 2*skew = 100 ms: the cap of 32 is
   * reached at times, and then requests are refused rather than forgotten. */
  assert_true(refused > 0);
  replay_free(rc);
}

static void test_init_args(void **state) {
  (void)state;
  replay_cache_t *rc;
  assert_int_equal(replay_init(&rc, 0, 10), -REPLAY_E_ARG);
  assert_int_equal(replay_init(&rc, 10, 0), -REPLAY_E_ARG);
  assert_string_equal(replay_strerror(-REPLAY_E_REPLAYED), "nonce already used (replayed request)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_then_replay_refused),
      cmocka_unit_test(test_skew_window),
      cmocka_unit_test(test_nonce_length),
      cmocka_unit_test(test_full_refuses_then_expiry_frees),
      cmocka_unit_test(test_many_rounds_stay_bounded),
      cmocka_unit_test(test_init_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
