/* Unit tests of store_deposit_stream (the bulk-import form of a deposit
 * batch, items fetched one at a time) and of the store's direct
 * achievement encoder: counts, idempotence, all or nothing on an invalid
 * item, a caller's abort and a conflict, map growth running the
 * transaction again from item 0, bad arguments, round trips of edge
 * values through the encoder and protobuf-c's decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_codec.h"

typedef struct fx {
  char dir[256];
  store *s;
} fx;

static int open_store(fx *f, size_t map_bytes) {
  store_options o = {.node_id = "sh", .region = "sh", .map_size_bytes = map_bytes, .create = true};
  char err[256];
  return store_open(&f->s, f->dir, &o, err, sizeof err);
}

static int setup_map(void **state, size_t map_bytes) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  const char *t = getenv("TMPDIR");
  snprintf(f->dir, sizeof f->dir, "%s/test_store_stream.XXXXXX", t && *t ? t : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(open_store(f, map_bytes), 0);
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_map(state, 0); }
static int setup_small_map(void **state) { return setup_map(state, 64 * 1024); }

static int teardown(void **state) {
  fx *f = *state;
  store_close(f->s);
  char p[300];
  snprintf(p, sizeof p, "%s/data.mdb", f->dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/lock.mdb", f->dir);
  unlink(p);
  rmdir(f->dir);
  free(f);
  return 0;
}

static void make_item(uint32_t learner, uint32_t n, store_deposit *d) {
  memset(d, 0, sizeof *d);
  store_learner *l = &d->learner;
  for (int i = 0; i < STORE_REF_LEN; i++) l->learner_ref[i] = (uint8_t)(i * 7 + 1);
  for (int i = 0; i < 4; i++) l->learner_ref[i] = (uint8_t)((learner + 1) >> (8 * i)); /* distinct per learner */
  snprintf(l->id_number, sizeof l->id_number, "3101151990%08uX", learner);
  snprintf(l->name, sizeof l->name, "学员%u", learner);
  l->opened_at_ms = INT64_C(1700000000000);
  store_achievement *a = &d->achievement;
  memcpy(a->learner_ref, l->learner_ref, STORE_REF_LEN);
  a->kind = 1 + (int)(n % STORE_KIND_MAX);
  snprintf(a->issuer, sizeof a->issuer, "SH-U-%02u", n % 7);
  snprintf(a->code, sizeof a->code, "C%05u", n);
  snprintf(a->title, sizeof a->title, "电工（三级）课程 %u", n);
  snprintf(a->level, sizeof a->level, "%s", n % 2 ? "三级" : "");
  a->credits_milli = 500 * (int64_t)(n % 5);
  snprintf(a->score, sizeof a->score, "%s", n % 3 ? "85" : "");
  a->awarded_on = 20200101 + (int32_t)(n % 28);
  a->depositor.role = 1 + (int)(n % STORE_ROLE_MAX);
  snprintf(a->depositor.code, sizeof a->depositor.code, "OUT%02u", n % 3);
  snprintf(a->depositor.name, sizeof a->depositor.name, "%s", n % 4 ? "上海开放大学" : "");
  a->deposited_at_ms = INT64_C(1700000000000) + n;
}

/* A getter over an array, counting calls and refusing index abort_at. */
typedef struct src {
  store_deposit *items;
  size_t calls, first_calls;
  size_t abort_at;
} src;

static int get_cb(void *arg, size_t i, store_deposit *out) {
  src *s = arg;
  s->calls++;
  if (i == 0) s->first_calls++;
  if (i == s->abort_at) return -1;
  *out = s->items[i];
  return 0;
}

static store_stats stats(store *s) {
  store_stats st;
  assert_int_equal(store_get_stats(s, &st), 0);
  return st;
}

#define N 20u /* 4 learners x 5 */

static void fill(store_deposit *d) {
  for (uint32_t i = 0; i < N; i++) make_item(i / 5, i, &d[i]);
}

static void test_counts_and_idempotence(void **state) {
  fx *f = *state;
  static store_deposit d[N];
  fill(d);
  src s = {d, 0, 0, SIZE_MAX};
  store_batch_summary sum;
  assert_int_equal(store_deposit_stream(f->s, N, get_cb, &s, &sum), 0);
  assert_int_equal(sum.stored, N);
  assert_int_equal(sum.duplicates, 0);
  assert_int_equal(sum.learners_opened, 4);
  assert_int_equal(s.calls, N);
  store_stats st = stats(f->s);
  assert_int_equal(st.learners, 4);
  assert_int_equal(st.achievements, N);
  /* Sent again: all duplicates, nothing written. */
  assert_int_equal(store_deposit_stream(f->s, N, get_cb, &s, &sum), 0);
  assert_int_equal(sum.stored, 0);
  assert_int_equal(sum.duplicates, N);
  assert_int_equal(sum.learners_opened, 0);
  assert_int_equal(stats(f->s).achievements, N);
}

typedef struct found {
  store_achievement a[8];
  size_t n;
} found;

static int collect_cb(const store_achievement *a, void *arg) {
  found *c = arg;
  if (c->n < 8) c->a[c->n++] = *a;
  return 0;
}

/* Values written by the direct encoder come back through protobuf-c's
 * decoder field for field, edge values included (zero credits, empty
 * level, score and depositor name, long title, largest id sequence). */
static void test_round_trip(void **state) {
  fx *f = *state;
  static store_deposit d[5];
  for (uint32_t i = 0; i < 5; i++) make_item(7, i, &d[i]);
  memset(d[4].achievement.title, 'T', STORE_TITLE_MAX);
  d[4].achievement.title[STORE_TITLE_MAX] = '\0';
  d[4].achievement.credits_milli = STORE_CREDITS_MILLI_MAX;
  src s = {d, 0, 0, SIZE_MAX};
  store_batch_summary sum;
  assert_int_equal(store_deposit_stream(f->s, 5, get_cb, &s, &sum), 0);
  found c = {.n = 0};
  store_totals tot;
  assert_int_equal(store_transcript(f->s, d[0].learner.learner_ref, collect_cb, &c, &tot), 0);
  assert_int_equal(c.n, 5);
  for (size_t k = 0; k < c.n; k++) {
    const store_achievement *got = &c.a[k];
    size_t i = 0;
    while (i < 5 && strcmp(d[i].achievement.code, got->code) != 0) i++;
    assert_true(i < 5);
    const store_achievement *want = &d[i].achievement;
    assert_int_equal(got->kind, want->kind);
    assert_string_equal(got->issuer, want->issuer);
    assert_string_equal(got->title, want->title);
    assert_string_equal(got->level, want->level);
    assert_int_equal(got->credits_milli, want->credits_milli);
    assert_string_equal(got->score, want->score);
    assert_int_equal(got->awarded_on, want->awarded_on);
    assert_int_equal(got->depositor.role, want->depositor.role);
    assert_string_equal(got->depositor.code, want->depositor.code);
    assert_string_equal(got->depositor.name, want->depositor.name);
    assert_int_equal(got->deposited_at_ms, want->deposited_at_ms);
    assert_true(got->id >> STORE_ACH_SEQ_BITS >= 1);
  }
  assert_true(store_codec_encode_self_check());
}

static void test_invalid_item_writes_nothing(void **state) {
  fx *f = *state;
  static store_deposit d[N];
  fill(d);
  d[13].achievement.title[0] = '\0';
  src s = {d, 0, 0, SIZE_MAX};
  store_batch_summary sum;
  assert_int_equal(store_deposit_stream(f->s, N, get_cb, &s, &sum), STORE_EINVAL);
  assert_int_equal(sum.bad_index, 13);
  assert_non_null(strstr(sum.reason, "title"));
  assert_int_equal(sum.stored, 0);
  store_stats st = stats(f->s);
  assert_int_equal(st.learners, 0);
  assert_int_equal(st.achievements, 0);
}

static void test_caller_abort_writes_nothing(void **state) {
  fx *f = *state;
  static store_deposit d[N];
  fill(d);
  src s = {d, 0, 0, 17};
  store_batch_summary sum;
  assert_int_equal(store_deposit_stream(f->s, N, get_cb, &s, &sum), STORE_EABORT);
  assert_int_equal(sum.bad_index, 17);
  assert_int_equal(stats(f->s).achievements, 0);
}

static void test_conflict_writes_nothing(void **state) {
  fx *f = *state;
  static store_deposit d[N];
  fill(d);
  src s = {d, 0, 0, SIZE_MAX};
  store_batch_summary sum;
  assert_int_equal(store_deposit_stream(f->s, 5, get_cb, &s, &sum), 0); /* learner 0 */
  /* Learner 0's ID number with another learner_ref, after new rows. */
  static store_deposit e[N];
  for (uint32_t i = 0; i < N; i++) make_item(10 + i / 5, 100 + i, &e[i]);
  e[9].learner = d[0].learner;
  e[9].learner.learner_ref[0] ^= 0xff;
  memcpy(e[9].achievement.learner_ref, e[9].learner.learner_ref, STORE_REF_LEN);
  src t = {e, 0, 0, SIZE_MAX};
  assert_int_equal(store_deposit_stream(f->s, N, get_cb, &t, &sum), STORE_ECONFLICT);
  assert_int_equal(sum.bad_index, 9);
  assert_true(sum.reason[0] != '\0');
  store_stats st = stats(f->s);
  assert_int_equal(st.learners, 1);
  assert_int_equal(st.achievements, 5);
}

/* A 64 KiB map fills: the transaction runs again from item 0 after the
 * map grew, and the counts are those of the committed attempt. */
static void test_map_growth_restarts(void **state) {
  fx *f = *state;
  enum { M = 3000 };
  store_deposit *d = calloc(M, sizeof *d);
  assert_non_null(d);
  for (uint32_t i = 0; i < M; i++) make_item(i / 10, i, &d[i]);
  src s = {d, 0, 0, SIZE_MAX};
  store_batch_summary sum;
  int rc = store_deposit_stream(f->s, M, get_cb, &s, &sum);
  if (rc) fail_msg("stream: %s", store_errmsg(f->s));
  assert_true(s.first_calls >= 2);
  assert_int_equal(sum.stored, M);
  assert_int_equal(sum.learners_opened, M / 10);
  store_stats st = stats(f->s);
  assert_true(st.map_grows >= 1);
  assert_int_equal(st.achievements, M);
  free(d);
}

static void test_bad_arguments(void **state) {
  fx *f = *state;
  static store_deposit d[1];
  make_item(1, 1, &d[0]);
  src s = {d, 0, 0, SIZE_MAX};
  store_batch_summary sum;
  assert_int_equal(store_deposit_stream(f->s, 0, get_cb, &s, &sum), STORE_EINVAL);
  assert_int_equal(store_deposit_stream(f->s, STORE_BATCH_MAX + 1, get_cb, &s, &sum), STORE_EINVAL);
  assert_int_equal(store_deposit_stream(f->s, 1, NULL, &s, &sum), STORE_EINVAL);
  assert_int_equal(s.calls, 0);
  assert_int_equal(stats(f->s).achievements, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_counts_and_idempotence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_item_writes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_caller_abort_writes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conflict_writes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_map_growth_restarts, setup_small_map, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
