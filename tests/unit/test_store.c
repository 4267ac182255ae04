/* Unit tests of storage/store: round trips, indexes, idempotent deposits,
 * all-or-nothing batches, version/node refusal, map growth, corruption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

/* ---- fixtures ------------------------------------------------------------ */

typedef struct fx {
  char dir[256];
  store *s;
} fx;

static void rm_dir(const char *dir) {
  char p[300];
  snprintf(p, sizeof p, "%s/data.mdb", dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/lock.mdb", dir);
  unlink(p);
  rmdir(dir);
}

static store_options opts(const char *node, size_t map) {
  store_options o = {.node_id = node, .region = "sh", .map_size_bytes = map,
                     .create = true};
  return o;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  const char *t = getenv("TMPDIR");
  snprintf(f->dir, sizeof f->dir, "%s/test_store.XXXXXX", t && *t ? t : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  store_options o = opts("sh", 0);
  char err[256];
  assert_int_equal(store_open(&f->s, f->dir, &o, err, sizeof err), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  store_close(f->s);
  rm_dir(f->dir);
  free(f);
  return 0;
}

static void reopen(fx *f) {
  store_close(f->s);
  store_options o = opts("sh", 0);
  o.create = false;
  o.region = NULL;
  char err[256];
  int rc = store_open(&f->s, f->dir, &o, err, sizeof err);
  if (rc) fail_msg("reopen: %s", err);
}

static void make_ref(uint32_t learner, uint8_t ref[STORE_REF_LEN]) {
  uint64_t x = learner * UINT64_C(0x9e3779b97f4a7c15) + 1;
  for (int i = 0; i < STORE_REF_LEN; i++) {
    x ^= x >> 29;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    ref[i] = (uint8_t)(x >> 56);
  }
}

static void make_learner(uint32_t learner, store_learner *l) {
  memset(l, 0, sizeof *l);
  make_ref(learner, l->learner_ref);
  snprintf(l->id_number, sizeof l->id_number, "3101151990%08uX", learner);
  snprintf(l->name, sizeof l->name, "学员%u", learner);
  l->opened_at_ms = INT64_C(1700000000000) + learner;
}

/* Achievement number n of a learner: distinct (issuer, code, date) per n. */
static void make_item(uint32_t learner, uint32_t n, store_deposit *d) {
  memset(d, 0, sizeof *d);
  make_learner(learner, &d->learner);
  store_achievement *a = &d->achievement;
  memcpy(a->learner_ref, d->learner.learner_ref, STORE_REF_LEN);
  a->kind = 1 + (int)(n % STORE_KIND_MAX);
  snprintf(a->issuer, sizeof a->issuer, "10%03u", n % 7);
  snprintf(a->code, sizeof a->code, "C%05u", n);
  snprintf(a->title, sizeof a->title, "电工（三级）课程 %u", n);
  snprintf(a->level, sizeof a->level, "%s", n % 2 ? "三级" : "");
  a->credits_milli = 1000 + 500 * (int64_t)(n % 5);
  snprintf(a->score, sizeof a->score, "%s", n % 3 ? "85" : "合格");
  a->awarded_on = 20200101 + (int32_t)(n % 28);
  a->depositor.role = STORE_ROLE_OUTLET;
  snprintf(a->depositor.code, sizeof a->depositor.code, "OUT%02u", n % 3);
  snprintf(a->depositor.name, sizeof a->depositor.name, "上海开放大学");
  a->deposited_at_ms = INT64_C(1700000000000) + n;
}

static void assert_ach_equal(const store_achievement *x, const store_achievement *y) {
  assert_memory_equal(x->learner_ref, y->learner_ref, STORE_REF_LEN);
  assert_int_equal(x->kind, y->kind);
  assert_string_equal(x->issuer, y->issuer);
  assert_string_equal(x->code, y->code);
  assert_string_equal(x->title, y->title);
  assert_string_equal(x->level, y->level);
  assert_int_equal(x->credits_milli, y->credits_milli);
  assert_string_equal(x->score, y->score);
  assert_int_equal(x->awarded_on, y->awarded_on);
  assert_int_equal(x->depositor.role, y->depositor.role);
  assert_string_equal(x->depositor.code, y->depositor.code);
  assert_string_equal(x->depositor.name, y->depositor.name);
  assert_int_equal(x->deposited_at_ms, y->deposited_at_ms);
}

static store_stats stats(store *s) {
  store_stats st;
  assert_int_equal(store_get_stats(s, &st), 0);
  return st;
}

typedef struct collect {
  store_achievement a[64];
  size_t n;
} collect;

static int collect_cb(const store_achievement *a, void *arg) {
  collect *c = arg;
  assert_true(c->n < 64);
  c->a[c->n++] = *a;
  return 0;
}

/* ---- round trips ------------------------------------------------------------ */

static void test_round_trip_every_field(void **state) {
  fx *f = *state;
  store_deposit d;
  make_item(7, 3, &d);
  snprintf(d.achievement.level, sizeof d.achievement.level, "二级");
  d.achievement.credits_milli = STORE_CREDITS_MILLI_MAX;
  d.achievement.depositor.role = STORE_ROLE_APPRAISAL_CENTRE;
  store_deposit_result r;
  assert_int_equal(store_deposit_batch(f->s, &d, 1, &r, NULL, NULL), 0);
  assert_int_equal(r.status, STORE_DEPOSIT_STORED);
  assert_true(r.learner_opened);
  assert_int_equal(r.learner_no, 1);
  assert_int_equal(r.achievement_id, (UINT64_C(1) << STORE_ACH_SEQ_BITS) | 1);

  for (int pass = 0; pass < 2; pass++) {
    store_achievement got;
    assert_int_equal(store_achievement_get(f->s, r.achievement_id, &got), 0);
    assert_int_equal(got.id, r.achievement_id);
    assert_ach_equal(&got, &d.achievement);

    store_learner l;
    assert_int_equal(store_learner_get_by_ref(f->s, d.learner.learner_ref, &l), 0);
    assert_memory_equal(l.learner_ref, d.learner.learner_ref, STORE_REF_LEN);
    assert_string_equal(l.id_number, d.learner.id_number);
    assert_string_equal(l.name, d.learner.name);
    assert_int_equal(l.opened_at_ms, d.learner.opened_at_ms);
    assert_string_equal(l.region, "sh");
    assert_int_equal(l.learner_no, 1);
    assert_int_equal(l.achievements, 1);
    reopen(f); /* and again from disk */
  }
  assert_string_equal(store_node_id(f->s), "sh");
  assert_string_equal(store_region(f->s), "sh");
  assert_non_null(store_env(f->s));
}

static void test_learner_open(void **state) {
  fx *f = *state;
  store_learner l, again;
  bool opened = false;
  make_learner(1, &l);
  again = l;
  assert_int_equal(store_learner_open(f->s, &l, &opened), 0);
  assert_true(opened);
  assert_int_equal(l.learner_no, 1);
  snprintf(again.name, sizeof again.name, "another spelling");
  assert_int_equal(store_learner_open(f->s, &again, &opened), 0);
  assert_false(opened); /* existing account returned, as stored */
  assert_int_equal(again.learner_no, 1);
  assert_string_equal(again.name, l.name);

  store_learner other;
  make_learner(2, &other);
  assert_int_equal(store_learner_open(f->s, &other, &opened), 0);
  assert_int_equal(other.learner_no, 2);

  /* Same ID number, another ref: refused, nothing changes. */
  store_learner bad;
  make_learner(1, &bad);
  make_ref(99, bad.learner_ref);
  assert_int_equal(store_learner_open(f->s, &bad, &opened), STORE_ECONFLICT);
  assert_non_null(strstr(store_errmsg(f->s), "ID number"));
  /* Same ref, another ID number: refused. */
  make_learner(1, &bad);
  snprintf(bad.id_number, sizeof bad.id_number, "999");
  assert_int_equal(store_learner_open(f->s, &bad, &opened), STORE_ECONFLICT);
  /* Invalid input. */
  make_learner(3, &bad);
  snprintf(bad.id_number, sizeof bad.id_number, "31011x");
  assert_int_equal(store_learner_open(f->s, &bad, &opened), STORE_EINVAL);
  assert_non_null(strstr(store_errmsg(f->s), "id_number"));
  assert_int_equal(stats(f->s).learners, 2);
}

/* ---- indexes ------------------------------------------------------------------- */

static void test_indexes(void **state) {
  fx *f = *state;
  /* Three learners, their items interleaved and dates descending. */
  store_deposit d[12];
  store_deposit_result r[12];
  for (uint32_t i = 0; i < 12; i++) make_item(10 + i % 3, 11 - i, &d[i]);
  assert_int_equal(store_deposit_batch(f->s, d, 12, r, NULL, NULL), 0);
  for (uint32_t i = 0; i < 12; i++) {
    assert_int_equal(r[i].status, STORE_DEPOSIT_STORED);
    assert_int_equal(r[i].learner_no, 1 + i % 3);
    assert_int_equal(r[i].learner_opened, i < 3);
  }
  for (uint32_t who = 0; who < 3; who++) {
    store_learner by_ref, by_id, by_no;
    make_learner(10 + who, &by_ref);
    assert_int_equal(store_learner_get_by_id_number(f->s, by_ref.id_number, &by_id), 0);
    assert_int_equal(store_learner_get_by_ref(f->s, by_ref.learner_ref, &by_ref), 0);
    assert_int_equal(store_learner_get_by_no(f->s, 1 + who, &by_no), 0);
    assert_int_equal(by_ref.learner_no, 1 + who);
    assert_int_equal(by_id.learner_no, 1 + who);
    assert_memory_equal(by_no.learner_ref, by_ref.learner_ref, STORE_REF_LEN);
    assert_int_equal(by_ref.achievements, 4);

    collect c = {.n = 0};
    assert_int_equal(store_transcript(f->s, by_ref.learner_ref, collect_cb, &c, NULL), 0);
    assert_int_equal(c.n, 4);
    for (size_t k = 0; k < c.n; k++) {
      assert_memory_equal(c.a[k].learner_ref, by_ref.learner_ref, STORE_REF_LEN);
      assert_int_equal(c.a[k].id >> STORE_ACH_SEQ_BITS, 1 + who);
      if (k) assert_true(c.a[k - 1].awarded_on <= c.a[k].awarded_on);
      store_achievement got;
      assert_int_equal(store_achievement_get(f->s, c.a[k].id, &got), 0);
      assert_ach_equal(&got, &c.a[k]);
    }
  }
  store_learner none;
  uint8_t ref[STORE_REF_LEN];
  make_ref(500, ref);
  assert_int_equal(store_learner_get_by_ref(f->s, ref, &none), STORE_ENOTFOUND);
  assert_int_equal(store_learner_get_by_id_number(f->s, "1234", &none), STORE_ENOTFOUND);
  assert_int_equal(store_learner_get_by_id_number(f->s, "", &none), STORE_EINVAL);
  assert_int_equal(store_learner_get_by_no(f->s, 4, &none), STORE_ENOTFOUND);
  assert_int_equal(store_transcript(f->s, ref, NULL, NULL, NULL), STORE_ENOTFOUND);
  store_achievement a;
  assert_int_equal(store_achievement_get(f->s, (UINT64_C(1) << STORE_ACH_SEQ_BITS) | 5, &a),
                   STORE_ENOTFOUND);
  assert_int_equal(store_achievement_get(f->s, UINT64_C(9) << STORE_ACH_SEQ_BITS | 1, &a),
                   STORE_ENOTFOUND);
  assert_int_equal(store_achievement_get(f->s, 0, &a), STORE_ENOTFOUND);
}

/* ---- idempotence --------------------------------------------------------------- */

static void test_redeposit_is_idempotent(void **state) {
  fx *f = *state;
  enum { N = 50 };
  store_deposit d[N];
  store_deposit_result r1[N], r2[N];
  for (uint32_t i = 0; i < N; i++) make_item(i / 5, i, &d[i]);
  assert_int_equal(store_deposit_batch(f->s, d, N, r1, NULL, NULL), 0);
  store_stats before = stats(f->s);
  assert_int_equal(before.learners, 10);
  assert_int_equal(before.achievements, N);
  assert_int_equal(store_deposit_batch(f->s, d, N, r2, NULL, NULL), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(r1[i].status, STORE_DEPOSIT_STORED);
    assert_int_equal(r2[i].status, STORE_DEPOSIT_DUPLICATE);
    assert_int_equal(r2[i].achievement_id, r1[i].achievement_id);
    assert_false(r2[i].learner_opened);
  }
  store_stats after = stats(f->s);
  assert_int_equal(after.learners, before.learners);
  assert_int_equal(after.achievements, before.achievements);

  /* The same item twice in one batch: second is a duplicate of the first.
   * A different title does not make it new: the key is (learner, issuer,
   * code, awarded_on). */
  store_deposit twice[2];
  make_item(100, 1, &twice[0]);
  twice[1] = twice[0];
  snprintf(twice[1].achievement.title, sizeof twice[1].achievement.title, "other");
  store_deposit_result rt[2];
  assert_int_equal(store_deposit_batch(f->s, twice, 2, rt, NULL, NULL), 0);
  assert_int_equal(rt[0].status, STORE_DEPOSIT_STORED);
  assert_int_equal(rt[1].status, STORE_DEPOSIT_DUPLICATE);
  assert_int_equal(rt[1].achievement_id, rt[0].achievement_id);
  /* Another date is another achievement. */
  twice[1].achievement.awarded_on = 20210303;
  assert_int_equal(store_deposit_batch(f->s, twice, 2, rt, NULL, NULL), 0);
  assert_int_equal(rt[0].status, STORE_DEPOSIT_DUPLICATE);
  assert_int_equal(rt[1].status, STORE_DEPOSIT_STORED);
  assert_int_equal(stats(f->s).achievements, N + 2);
}

/* ---- bad input changes nothing ---------------------------------------------------- */

typedef void (*spoil_fn)(store_deposit *d);
static void sp_kind0(store_deposit *d) { d->achievement.kind = 0; }
static void sp_kind6(store_deposit *d) { d->achievement.kind = 6; }
static void sp_credits_neg(store_deposit *d) { d->achievement.credits_milli = -1; }
static void sp_credits_big(store_deposit *d) { d->achievement.credits_milli = STORE_CREDITS_MILLI_MAX + 1; }
static void sp_date_feb30(store_deposit *d) { d->achievement.awarded_on = 20200230; }
static void sp_date_1899(store_deposit *d) { d->achievement.awarded_on = 18991231; }
static void sp_date_feb29(store_deposit *d) { d->achievement.awarded_on = 20230229; }
static void sp_issuer_empty(store_deposit *d) { d->achievement.issuer[0] = 0; }
static void sp_code_empty(store_deposit *d) { d->achievement.code[0] = 0; }
static void sp_title_empty(store_deposit *d) { d->achievement.title[0] = 0; }
static void sp_title_long(store_deposit *d) { memset(d->achievement.title, 'a', sizeof d->achievement.title); }
static void sp_code_ctrl(store_deposit *d) { d->achievement.code[1] = '\n'; }
static void sp_title_utf8(store_deposit *d) { d->achievement.title[0] = (char)0xc0; d->achievement.title[1] = (char)0x80; }
static void sp_role(store_deposit *d) { d->achievement.depositor.role = 0; }
static void sp_dep_code(store_deposit *d) { d->achievement.depositor.code[0] = 0; }
static void sp_dep_time(store_deposit *d) { d->achievement.deposited_at_ms = 0; }
static void sp_ref_zero(store_deposit *d) { memset(d->learner.learner_ref, 0, STORE_REF_LEN); memset(d->achievement.learner_ref, 0, STORE_REF_LEN); }
static void sp_ref_differs(store_deposit *d) { d->achievement.learner_ref[0] ^= 1; }
static void sp_id_lower(store_deposit *d) { d->learner.id_number[17] = 'x'; }
static void sp_id_empty(store_deposit *d) { d->learner.id_number[0] = 0; }
static void sp_name_empty(store_deposit *d) { d->learner.name[0] = 0; }
static void sp_opened(store_deposit *d) { d->learner.opened_at_ms = -5; }

static void test_invalid_item_changes_nothing(void **state) {
  fx *f = *state;
  static const struct { spoil_fn fn; const char *field; } cases[] = {
      {sp_kind0, "kind"}, {sp_kind6, "kind"}, {sp_credits_neg, "credits_milli"},
      {sp_credits_big, "credits_milli"}, {sp_date_feb30, "awarded_on"},
      {sp_date_1899, "awarded_on"}, {sp_date_feb29, "awarded_on"},
      {sp_issuer_empty, "issuer"}, {sp_code_empty, "code"}, {sp_title_empty, "title"},
      {sp_title_long, "title"}, {sp_code_ctrl, "code"}, {sp_title_utf8, "title"},
      {sp_role, "depositor.role"}, {sp_dep_code, "depositor.code"},
      {sp_dep_time, "deposited_at_ms"}, {sp_ref_zero, "learner_ref"},
      {sp_ref_differs, "learner_ref"}, {sp_id_lower, "id_number"},
      {sp_id_empty, "id_number"}, {sp_name_empty, "name"}, {sp_opened, "opened_at_ms"},
  };
  store_deposit good;
  make_item(1, 1, &good);
  store_deposit_result r0;
  assert_int_equal(store_deposit_batch(f->s, &good, 1, &r0, NULL, NULL), 0);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    store_deposit d[3];
    store_deposit_result r[3];
    make_item(2, 1, &d[0]);
    make_item(3, 2, &d[1]);
    make_item(4, 3, &d[2]);
    cases[c].fn(&d[1]);
    char why[128];
    assert_int_equal(store_deposit_validate(&d[1], why, sizeof why), STORE_EINVAL);
    assert_int_equal(store_deposit_batch(f->s, d, 3, r, NULL, NULL), STORE_EINVAL);
    assert_int_equal(r[1].status, STORE_DEPOSIT_INVALID);
    if (!strstr(r[1].reason, cases[c].field))
      fail_msg("case %zu: reason '%s' does not name %s", c, r[1].reason, cases[c].field);
    assert_non_null(strstr(store_errmsg(f->s), "item 1"));
    assert_int_equal(r[0].status, STORE_DEPOSIT_STORED); /* valid, not stored */
    store_stats st = stats(f->s);
    assert_int_equal(st.learners, 1);
    assert_int_equal(st.achievements, 1);
  }
  /* Batch size bounds. */
  store_deposit_result r;
  assert_int_equal(store_deposit_batch(f->s, &good, 0, &r, NULL, NULL), STORE_EINVAL);
  /* Leap day is fine. */
  good.achievement.awarded_on = 20240229;
  assert_int_equal(store_deposit_batch(f->s, &good, 1, &r, NULL, NULL), 0);
  assert_int_equal(r.status, STORE_DEPOSIT_STORED);
}

static void test_conflict_aborts_batch(void **state) {
  fx *f = *state;
  store_deposit d[3];
  store_deposit_result r[3];
  make_item(1, 1, &d[0]);
  assert_int_equal(store_deposit_batch(f->s, d, 1, r, NULL, NULL), 0);
  make_item(2, 1, &d[0]);
  make_item(3, 1, &d[1]);
  make_item(1, 2, &d[2]);
  make_ref(77, d[2].learner.learner_ref); /* learner 1's ID number, new ref */
  memcpy(d[2].achievement.learner_ref, d[2].learner.learner_ref, STORE_REF_LEN);
  assert_int_equal(store_deposit_batch(f->s, d, 3, r, NULL, NULL), STORE_ECONFLICT);
  assert_int_equal(r[2].status, STORE_DEPOSIT_INVALID);
  assert_non_null(strstr(r[2].reason, "ID number"));
  assert_non_null(strstr(store_errmsg(f->s), "item 2"));
  assert_int_equal(r[0].status, STORE_DEPOSIT_INVALID); /* not stored */
  store_stats st = stats(f->s);
  assert_int_equal(st.learners, 1);
  assert_int_equal(st.achievements, 1);
  store_learner l;
  make_learner(2, &l);
  assert_int_equal(store_learner_get_by_ref(f->s, l.learner_ref, &l), STORE_ENOTFOUND);
}

/* ---- hook joins the transaction ---------------------------------------------------- */

typedef struct hook_ctx {
  MDB_dbi dbi;
  int calls;
  int fail;
} hook_ctx;

static int hook_fn(MDB_txn *txn, const store_deposit *items,
                   const store_deposit_result *res, size_t n, void *arg) {
  hook_ctx *h = arg;
  h->calls++;
  for (size_t i = 0; i < n; i++) {
    MDB_val k = {sizeof res[i].achievement_id, (void *)&res[i].achievement_id};
    MDB_val v = {1, (void *)"x"};
    int rc = mdb_put(txn, h->dbi, &k, &v, 0);
    if (rc) return rc;
  }
  (void)items;
  return h->fail;
}

static uint64_t count_entries(store *s, MDB_dbi dbi) {
  MDB_txn *txn;
  MDB_stat st;
  assert_int_equal(mdb_txn_begin(store_env(s), NULL, MDB_RDONLY, &txn), 0);
  assert_int_equal(mdb_stat(txn, dbi, &st), 0);
  mdb_txn_abort(txn);
  return st.ms_entries;
}

static void test_hook_shares_commit(void **state) {
  fx *f = *state;
  hook_ctx h = {0};
  MDB_txn *txn;
  assert_int_equal(mdb_txn_begin(store_env(f->s), NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "test.hook", MDB_CREATE, &h.dbi), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  store_deposit d[4];
  store_deposit_result r[4];
  for (uint32_t i = 0; i < 4; i++) make_item(i, i, &d[i]);
  h.fail = STORE_EABORT;
  assert_int_equal(store_deposit_batch(f->s, d, 4, r, hook_fn, &h), STORE_EABORT);
  assert_int_equal(count_entries(f->s, h.dbi), 0);
  assert_int_equal(stats(f->s).achievements, 0);
  h.fail = 0;
  assert_int_equal(store_deposit_batch(f->s, d, 4, r, hook_fn, &h), 0);
  assert_int_equal(count_entries(f->s, h.dbi), 4);
  assert_int_equal(stats(f->s).achievements, 4);
  assert_int_equal(h.calls, 2);
}

/* ---- open refusals --------------------------------------------------------------------- */

static void test_schema_version_refused(void **state) {
  fx *f = *state;
  MDB_txn *txn;
  MDB_dbi meta;
  assert_int_equal(mdb_txn_begin(store_env(f->s), NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "store.meta", 0, &meta), 0);
  uint8_t v2[4] = {0, 0, 0, 2};
  MDB_val k = {14, (void *)"schema_version"}, v = {4, v2};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  store_close(f->s);
  f->s = NULL;
  store_options o = opts("sh", 0);
  char err[256];
  for (int create = 0; create < 2; create++) {
    o.create = create;
    assert_int_equal(store_open(&f->s, f->dir, &o, err, sizeof err), STORE_EVERSION);
    assert_null(f->s);
    assert_non_null(strstr(err, "schema version 2"));
    assert_non_null(strstr(err, "schema version 1"));
  }
}

static void test_other_node_refused(void **state) {
  fx *f = *state;
  store_close(f->s);
  f->s = NULL;
  store_options o = opts("js", 0);
  char err[256];
  assert_int_equal(store_open(&f->s, f->dir, &o, err, sizeof err), STORE_ENODE);
  assert_non_null(strstr(err, "'sh'"));
  assert_non_null(strstr(err, "'js'"));
  o = opts("sh", 0);
  o.region = "zj";
  assert_int_equal(store_open(&f->s, f->dir, &o, err, sizeof err), STORE_ENODE);
  assert_non_null(strstr(err, "region"));
  o = opts("sh", 0); /* same node again: --init twice is harmless */
  assert_int_equal(store_open(&f->s, f->dir, &o, err, sizeof err), 0);
}

static void test_missing_dir_refused(void **state) {
  fx *f = *state;
  char sub[300], err[256];
  store *s = NULL;
  store_options o = opts("sh", 0);
  o.create = false;
  snprintf(sub, sizeof sub, "%s/none", f->dir);
  assert_int_equal(store_open(&s, sub, &o, err, sizeof err), STORE_ENOENT);
  assert_non_null(strstr(err, "cbnode --init"));
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(store_open(&s, sub, &o, err, sizeof err), STORE_ENOENT);
  assert_non_null(strstr(err, "data.mdb"));
  assert_null(s);
  /* Bad arguments. */
  o.node_id = "";
  assert_int_equal(store_open(&s, sub, &o, err, sizeof err), STORE_EINVAL);
  assert_non_null(strstr(err, "node_id"));
  o = opts("sh", 0);
  o.region = "SH";
  assert_int_equal(store_open(&s, sub, &o, err, sizeof err), STORE_EINVAL);
  assert_non_null(strstr(err, "region"));
  /* create makes it. */
  o = opts("ah", 0);
  assert_int_equal(store_open(&s, sub, &o, err, sizeof err), 0);
  store_close(s);
  rm_dir(sub);
}

/* ---- map growth and reopen ----------------------------------------------------------------- */

static void test_map_growth_loses_nothing(void **state) {
  fx *f = *state;
  store_close(f->s);
  rm_dir(f->dir);
  store_options o = opts("sh", 64 * 1024);
  char err[256];
  assert_int_equal(store_open(&f->s, f->dir, &o, err, sizeof err), 0);
  enum { BATCH = 500, BATCHES = 40, PER = 8 };
  static store_deposit d[BATCH];
  static store_deposit_result r[BATCH];
  for (uint32_t b = 0; b < BATCHES; b++) {
    for (uint32_t i = 0; i < BATCH; i++) {
      uint32_t n = b * BATCH + i;
      make_item(n / PER, n, &d[i]);
    }
    int rc = store_deposit_batch(f->s, d, BATCH, r, NULL, NULL);
    if (rc) fail_msg("batch %u: %s", b, store_errmsg(f->s));
    for (uint32_t i = 0; i < BATCH; i++) assert_int_equal(r[i].status, STORE_DEPOSIT_STORED);
  }
  store_stats st = stats(f->s);
  assert_true(st.map_grows >= 5);
  assert_true(st.map_size_bytes > 64 * 1024);
  assert_int_equal(st.achievements, BATCH * BATCHES);
  assert_int_equal(st.learners, BATCH * BATCHES / PER);
  reopen(f);
  st = stats(f->s);
  assert_int_equal(st.achievements, BATCH * BATCHES);
  for (uint32_t who = 0; who < BATCH * BATCHES / PER; who += 97) {
    uint8_t ref[STORE_REF_LEN];
    make_ref(who, ref);
    store_totals t;
    collect c = {.n = 0};
    assert_int_equal(store_transcript(f->s, ref, collect_cb, &c, &t), 0);
    assert_int_equal(t.count, PER);
    assert_int_equal(c.n, PER);
    for (size_t k = 0; k < c.n; k++) {
      store_deposit want;
      uint32_t n = (uint32_t)strtoul(c.a[k].code + 1, NULL, 10);
      assert_int_equal(n / PER, who);
      make_item(who, n, &want);
      assert_ach_equal(&c.a[k], &want.achievement);
    }
  }
}

static void test_transcript_totals(void **state) {
  fx *f = *state;
  store_deposit d[10];
  store_deposit_result r[10];
  int64_t want_credits[STORE_KIND_MAX + 1] = {0};
  uint64_t want_count[STORE_KIND_MAX + 1] = {0};
  int64_t total = 0;
  for (uint32_t i = 0; i < 10; i++) make_item(5, i, &d[i]);
  make_item(6, 0, &d[9]); /* someone else's: not counted */
  for (uint32_t i = 0; i < 9; i++) {
    want_credits[d[i].achievement.kind] += d[i].achievement.credits_milli;
    want_count[d[i].achievement.kind]++;
    total += d[i].achievement.credits_milli;
  }
  assert_int_equal(store_deposit_batch(f->s, d, 10, r, NULL, NULL), 0);
  store_totals t;
  assert_int_equal(store_transcript(f->s, d[0].learner.learner_ref, NULL, NULL, &t), 0);
  assert_int_equal(t.count, 9);
  assert_int_equal(t.credits_milli, total);
  for (int k = 1; k <= STORE_KIND_MAX; k++) {
    assert_int_equal(t.count_by_kind[k], want_count[k]);
    assert_int_equal(t.credits_milli_by_kind[k], want_credits[k]);
  }
  assert_int_equal(t.count_by_kind[0], 0);
}

static int stop_cb(const store_achievement *a, void *arg) {
  (void)a;
  return ++*(int *)arg == 2 ? 42 : 0;
}

static void test_transcript_stops(void **state) {
  fx *f = *state;
  store_deposit d[5];
  store_deposit_result r[5];
  for (uint32_t i = 0; i < 5; i++) make_item(1, i, &d[i]);
  assert_int_equal(store_deposit_batch(f->s, d, 5, r, NULL, NULL), 0);
  int seen = 0;
  assert_int_equal(store_transcript(f->s, d[0].learner.learner_ref, stop_cb, &seen, NULL), 42);
  assert_int_equal(seen, 2);
}

/* ---- corruption ------------------------------------------------------------------------------ */

static void overwrite_first(store *s, const char *db, const void *val, size_t len) {
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_cursor *cur;
  MDB_val k, v;
  assert_int_equal(mdb_txn_begin(store_env(s), NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
  assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
  assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
  v.mv_size = len;
  v.mv_data = (void *)val;
  assert_int_equal(mdb_cursor_put(cur, &k, &v, MDB_CURRENT), 0);
  mdb_cursor_close(cur);
  assert_int_equal(mdb_txn_commit(txn), 0);
}

static void test_corrupt_record_detected(void **state) {
  fx *f = *state;
  store_deposit d[2];
  store_deposit_result r[2];
  make_item(1, 1, &d[0]);
  make_item(1, 2, &d[1]);
  assert_int_equal(store_deposit_batch(f->s, d, 2, r, NULL, NULL), 0);
  overwrite_first(f->s, "store.achievements", "\xff\xff\xff", 3);
  assert_int_equal(store_transcript(f->s, d[0].learner.learner_ref, NULL, NULL, NULL),
                   STORE_ECORRUPT);
  assert_non_null(strstr(store_errmsg(f->s), "unpack"));
  /* A well-formed record under the wrong key is corrupt too: put the
   * second record's bytes under the first key (it unpacks, but the key
   * names another code). */
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_cursor *cur;
  MDB_val k, v;
  uint8_t second[1024];
  size_t second_len;
  assert_int_equal(mdb_txn_begin(store_env(f->s), NULL, MDB_RDONLY, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "store.achievements", 0, &dbi), 0);
  assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
  assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
  assert_true(v.mv_size <= sizeof second);
  memcpy(second, v.mv_data, v.mv_size);
  second_len = v.mv_size;
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  overwrite_first(f->s, "store.achievements", second, second_len);
  assert_int_equal(store_transcript(f->s, d[0].learner.learner_ref, NULL, NULL, NULL),
                   STORE_ECORRUPT);
  assert_non_null(strstr(store_errmsg(f->s), "key and record disagree"));
  /* A learner record that does not unpack. */
  store_learner l;
  assert_int_equal(store_learner_get_by_ref(f->s, d[0].learner.learner_ref, &l), 0);
  overwrite_first(f->s, "store.learners", "\x0a\x01", 2);
  assert_int_equal(store_learner_get_by_ref(f->s, d[0].learner.learner_ref, &l),
                   STORE_ECORRUPT);
  assert_int_equal(store_deposit_batch(f->s, d, 2, r, NULL, NULL), STORE_ECORRUPT);
}

static void test_strerror(void **state) {
  (void)state;
  assert_string_equal(store_strerror(STORE_OK), "success");
  assert_non_null(strstr(store_strerror(STORE_ECORRUPT), "corrupt"));
  assert_string_equal(store_strerror(12345), "unknown store error");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip_every_field, setup, teardown),
      cmocka_unit_test_setup_teardown(test_learner_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_indexes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redeposit_is_idempotent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_item_changes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conflict_aborts_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hook_shares_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_version_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_node_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_dir_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_map_growth_loses_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_transcript_totals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_transcript_stops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_record_detected, setup, teardown),
      cmocka_unit_test(test_strerror),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
