/* Unit tests of storage/store_access: entries of one learner come back in
 * time order and only theirs; a repeated key is refused and changes
 * nothing; bad arguments are refused; entries survive a reopen; the walk
 * stops when told and honours its limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_access.h"

typedef struct fx {
  char dir[256];
  store *s;
  store_access *a;
} fx;

static void open_all(fx *f, bool create)
{
  store_options o = {.node_id = "js", .region = create ? "js" : NULL, .create = create};
  char err[256];
  assert_int_equal(store_open(&f->s, f->dir, &o, err, sizeof err), 0);
  assert_int_equal(store_access_open(f->s, &f->a), 0);
}

static void close_all(fx *f)
{
  store_access_close(f->a);
  store_close(f->s);
}

static int setup(void **state)
{
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  const char *t = getenv("TMPDIR");
  snprintf(f->dir, sizeof f->dir, "%s/test_store_access.XXXXXX", t && *t ? t : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  open_all(f, true);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  fx *f = *state;
  close_all(f);
  char p[300];
  snprintf(p, sizeof p, "%s/data.mdb", f->dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/lock.mdb", f->dir);
  unlink(p);
  rmdir(f->dir);
  free(f);
  return 0;
}

typedef struct seen {
  int64_t t[16];
  char text[16][32];
  size_t n;
  size_t stop_after; /* 0: never */
} seen_t;

static int collect(int64_t t, const uint8_t *e, size_t len, void *arg)
{
  seen_t *s = arg;
  assert_true(s->n < 16);
  s->t[s->n] = t;
  snprintf(s->text[s->n], sizeof s->text[0], "%.*s", (int)len, (const char *)e);
  s->n++;
  return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static void id_of(int k, uint8_t id[STORE_ACCESS_ID_LEN])
{
  memset(id, 0, STORE_ACCESS_ID_LEN);
  id[0] = (uint8_t)k;
}

static void put(fx *f, const uint8_t ref[32], int64_t t, int k, const char *text, int want)
{
  uint8_t id[STORE_ACCESS_ID_LEN];
  id_of(k, id);
  assert_int_equal(store_access_append(f->a, ref, t, id, (const uint8_t *)text, strlen(text)), want);
}

static void test_order_and_isolation(void **state)
{
  fx *f = *state;
  uint8_t r1[32], r2[32], r0[32];
  memset(r1, 0x11, 32);
  memset(r2, 0x12, 32);
  memset(r0, 0x10, 32);
  put(f, r1, 3000, 1, "third", 0);
  put(f, r2, 1500, 2, "other learner", 0);
  put(f, r1, 1000, 3, "first", 0);
  put(f, r1, 2000, 4, "second", 0);
  put(f, r1, 2000, 5, "second too", 0); /* same ms, another request */
  seen_t s = {0};
  assert_int_equal(store_access_list(f->a, r1, 0, collect, &s), 0);
  assert_int_equal(s.n, 4);
  assert_int_equal(s.t[0], 1000);
  assert_string_equal(s.text[0], "first");
  assert_int_equal(s.t[1], 2000);
  assert_int_equal(s.t[2], 2000);
  assert_int_equal(s.t[3], 3000);
  assert_string_equal(s.text[3], "third");
  seen_t s0 = {0};
  assert_int_equal(store_access_list(f->a, r0, 0, collect, &s0), 0);
  assert_int_equal(s0.n, 0);
  uint64_t n = 0;
  assert_int_equal(store_access_count(f->a, &n), 0);
  assert_int_equal(n, 5);
}

static void test_refusals_change_nothing(void **state)
{
  fx *f = *state;
  uint8_t r[32], id[STORE_ACCESS_ID_LEN];
  memset(r, 0x21, 32);
  id_of(1, id);
  put(f, r, 5000, 1, "kept", 0);
  put(f, r, 5000, 1, "overwrite attempt", STORE_ECONFLICT);
  static uint8_t big[STORE_ACCESS_MAX_ENTRY_BYTES + 1];
  assert_int_equal(store_access_append(f->a, r, 1, id, big, sizeof big), STORE_EINVAL);
  assert_int_equal(store_access_append(f->a, r, 1, id, big, 0), STORE_EINVAL);
  assert_int_equal(store_access_append(f->a, r, -1, id, (const uint8_t *)"x", 1), STORE_EINVAL);
  assert_int_equal(store_access_append(f->a, NULL, 1, id, (const uint8_t *)"x", 1), STORE_EINVAL);
  seen_t s = {0};
  assert_int_equal(store_access_list(f->a, r, 0, collect, &s), 0);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.text[0], "kept");
}

static void test_reopen_limit_and_stop(void **state)
{
  fx *f = *state;
  uint8_t r[32];
  memset(r, 0x31, 32);
  for (int k = 0; k < 5; k++) put(f, r, 100 + k, k, "e", 0);
  close_all(f);
  open_all(f, false);
  seen_t s = {0};
  assert_int_equal(store_access_list(f->a, r, 3, collect, &s), 0);
  assert_int_equal(s.n, 3);
  seen_t s2 = {.stop_after = 2};
  assert_int_equal(store_access_list(f->a, r, 0, collect, &s2), 7);
  assert_int_equal(s2.n, 2);
  seen_t all = {0};
  assert_int_equal(store_access_list(f->a, r, 0, collect, &all), 0);
  assert_int_equal(all.n, 5);
  assert_int_equal(all.t[4], 104);
}

static void test_many_in_one_commit(void **state)
{
  fx *f = *state;
  uint8_t r[32], ids[3][STORE_ACCESS_ID_LEN];
  memset(r, 0x41, 32);
  for (int k = 0; k < 3; k++) id_of(k + 1, ids[k]);
  put(f, r, 700, 2, "already there", 0);
  store_access_item items[3] = {
    {r, 600, ids[0], (const uint8_t *)"a", 1},
    {r, 700, ids[1], (const uint8_t *)"dup", 3}, /* same key as the stored one */
    {r, 800, ids[2], (const uint8_t *)"c", 1},
  };
  int res[3] = {99, 99, 99};
  assert_int_equal(store_access_append_many(f->a, items, 3, res), 0);
  assert_int_equal(res[0], 0);
  assert_int_equal(res[1], STORE_ECONFLICT);
  assert_int_equal(res[2], 0);
  seen_t s = {0};
  assert_int_equal(store_access_list(f->a, r, 0, collect, &s), 0);
  assert_int_equal(s.n, 3);
  assert_string_equal(s.text[0], "a");
  assert_string_equal(s.text[1], "already there");
  assert_string_equal(s.text[2], "c");
  /* One bad item refuses the whole batch before anything is written. */
  store_access_item bad[2] = {{r, 900, ids[0], (const uint8_t *)"x", 1}, {r, 901, ids[1], NULL, 1}};
  assert_int_equal(store_access_append_many(f->a, bad, 2, res), STORE_EINVAL);
  assert_int_equal(store_access_append_many(f->a, items, 0, res), STORE_EINVAL);
  seen_t s2 = {0};
  assert_int_equal(store_access_list(f->a, r, 0, collect, &s2), 0);
  assert_int_equal(s2.n, 3);
}


/* The node's access-log writer runs on its own thread and may not grow the
 * map (store.h "Threads"): when the map is full it must write nothing, say
 * so, and leave the owner thread to write the same batch with growth. */
typedef struct writer_job {
  store_access *a;
  const store_access_item *items;
  size_t n;
  int *results;
  int rc, grow;
} writer_job;

static void *writer_thread(void *arg)
{
  writer_job *j = arg;
  j->rc = store_access_append_many_nogrow(j->a, j->items, j->n, j->results, &j->grow);
  return NULL;
}

static int run_writer(writer_job *j)
{
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, writer_thread, j), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  return j->rc;
}

static void test_writer_thread_never_grows(void **state)
{
  fx *f = *state;
  close_all(f);
  /* Reopen with a tiny map so that a few batches of big entries fill it. */
  store_options o = {.node_id = "js", .map_size_bytes = 256 * 1024};
  char err[256];
  assert_int_equal(store_open(&f->s, f->dir, &o, err, sizeof err), 0);
  assert_int_equal(store_access_open(f->s, &f->a), 0);

  enum { N = 8, ENTRY = 12000 };
  static uint8_t text[ENTRY];
  memset(text, 'e', sizeof text);
  uint8_t r[32], ids[N][STORE_ACCESS_ID_LEN];
  memset(r, 0x42, 32);
  store_access_item items[N];
  int res[N];
  int64_t t = 1000;
  size_t stored = 0;
  writer_job j = {.a = f->a, .items = items, .n = N, .results = res};
  for (int round = 0; round < 64; round++) {
    for (int k = 0; k < N; k++) {
      id_of(round * N + k + 1, ids[k]);
      ids[k][1] = (uint8_t)round;
      items[k] = (store_access_item){r, t++, ids[k], text, sizeof text};
    }
    j.grow = 0;
    if (run_writer(&j) == 0) {
      assert_int_equal(j.grow, 0);
      stored += N;
      continue;
    }
    /* Full: nothing of this batch was written, and the writer says so. */
    assert_int_equal(j.rc, STORE_EFULL);
    assert_int_equal(j.grow, 1);
    uint64_t count = 0;
    assert_int_equal(store_access_count(f->a, &count), 0);
    assert_int_equal(count, stored);
    /* The owner thread writes the same batch, growing the map. */
    assert_int_equal(store_access_append_many(f->a, items, N, res), 0);
    for (int k = 0; k < N; k++) assert_int_equal(res[k], 0);
    stored += N;
    assert_int_equal(store_access_count(f->a, &count), 0);
    assert_int_equal(count, stored);
    return;
  }
  fail_msg("the map never filled: the test did not reach the writer's refusal");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_order_and_isolation, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refusals_change_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reopen_limit_and_stop, setup, teardown),
    cmocka_unit_test_setup_teardown(test_many_in_one_commit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_writer_thread_never_grows, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
