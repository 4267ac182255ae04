/* Property: a decision does not depend on the order of its inputs. The
 * same request under every permutation of 7 citations (5,040 orders, with
 * the earlier grants in each of their 6 orders too), and under seeded
 * random permutations of 30 citations on the demo catalogue (two
 * through-train pilots competing for one 40% cap, retakes, one achievement
 * attested by two holders), gives byte-identical canonical encodings. A
 * failure prints the seed and the order. */
#include "test_recognition_util.h"

static uint64_t rng_state;
static uint64_t rng_next(void) { /* splitmix64: seeded, reproducible */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct run {
  const struct catalogue *c;
  struct recog_request q;
  struct recog_achievement *base, *perm;
  size_t n;
  struct recog_earlier_grant *earlier_perm;
  uint8_t *want;
  size_t want_len;
  struct recog_decision d;
  size_t runs;
  uint64_t seed; /* of the random orders; 0 for the exhaustive ones */
};

static void check_order(struct run *r, const size_t *idx) {
  for (size_t i = 0; i < r->n; i++) r->perm[i] = r->base[idx[i]];
  r->q.cited = r->perm;
  char err[256];
  if (recog_evaluate(r->c, &r->q, &r->d, err, sizeof err) != 0) fail_msg("evaluate: %s", err);
  size_t len;
  uint8_t *got = rt_encode(&r->d, &len);
  if (len != r->want_len || memcmp(got, r->want, len) != 0) {
    char order[256] = "";
    for (size_t i = 0; i < r->n && strlen(order) < 200; i++)
      snprintf(order + strlen(order), sizeof order - strlen(order), " %zu", idx[i]);
    fail_msg("decision differs under citation order%s (seed %llu, order number %zu)", order,
             (unsigned long long)r->seed, r->runs);
  }
  free(got);
  r->runs++;
}

static void first(struct run *r) {
  r->q.cited = r->base;
  rt_eval(r->c, &r->q, &r->d); /* with every invariant once */
  r->want = rt_encode(&r->d, &r->want_len);
}

/* Heap's algorithm over idx[0..k). */
static void permute_all(struct run *r, size_t *idx, size_t k) {
  if (k == 1) {
    check_order(r, idx);
    return;
  }
  for (size_t i = 0; i < k - 1; i++) {
    permute_all(r, idx, k - 1);
    size_t j = k % 2 == 0 ? i : 0;
    size_t t = idx[j];
    idx[j] = idx[k - 1];
    idx[k - 1] = t;
  }
  permute_all(r, idx, k - 1);
}

static void test_every_order_of_seven(void **state) {
  (void)state;
  struct catalogue *c = rt_load("tests/fixtures/catalogue/eval.json");
  struct recog_achievement base[7] = {
      RT_CERT("c1-3", "AC-JS", "C1", "三级", 20230101),
      RT_CERT("c1-4", "SH-OSTA", "C1", "四级", 20220101),
      RT_COURSE("a1", "UA", "A1", "80", 20230101),
      RT_COURSE("a2", "10001", "A2", "良好", 20230101),
      RT_COURSE("a3", "UA", "A3", "61", 20230101),
      RT_COURSE("a4", "UA", "A4", "90", 20230101),
      RT_COURSE("b1", "UB", "B1", "70", 20230101),
  };
  struct recog_earlier_grant e[3] = {
      {.rule_id = "R-TT-OLD", .rule_kind = CATALOGUE_RULE_THROUGH_TRAIN, .course = "X1", .credits_milli = 5},
      {.rule_id = "R-TR", .rule_kind = CATALOGUE_RULE_COURSE_TRANSFER, .course = "A6", .credits_milli = 1000},
      {.rule_id = "R-CT2", .rule_kind = CATALOGUE_RULE_CERTIFICATE_RECOGNISED, .course = "A6", .credits_milli = 3333},
  };
  rt_aid("e1", e[0].aid);
  rt_aid("e2", e[1].aid);
  rt_aid("c1-4", e[2].aid); /* the 四级 certificate counted before */
  struct recog_achievement perm[7];
  struct run r = {.c = c, .base = base, .perm = perm, .n = 7};
  recog_decision_init(&r.d);
  r.q = rt_programme("UA", "P1", 20240630, base, 7);
  r.q.earlier = e;
  r.q.nearlier = 3;
  first(&r);
  assert_int_equal(r.d.status, RECOG_PARTIALLY_POSITIVE);
  size_t eorders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (size_t k = 0; k < 6; k++) {
    struct recog_earlier_grant ep[3] = {e[eorders[k][0]], e[eorders[k][1]], e[eorders[k][2]]};
    r.q.earlier = ep;
    size_t idx[7] = {0, 1, 2, 3, 4, 5, 6};
    permute_all(&r, idx, 7);
  }
  assert_int_equal(r.runs, 6 * 5040);
  /* and the exemption question over the same citations */
  free(r.want);
  r.q = rt_exemption("C1", "三级", 20240630, base, 7);
  first(&r);
  size_t idx[7] = {0, 1, 2, 3, 4, 5, 6};
  permute_all(&r, idx, 7);
  free(r.want);
  recog_decision_free(&r.d);
  catalogue_free(c);
}

static void test_random_orders_of_thirty(void **state) {
  (void)state;
  struct catalogue *c = rt_load("deploy/catalogue/demo.json");
  static char codes[40][32];
  struct recog_achievement base[30];
  size_t n = 0;
  for (int k = 1; k <= 4; k++) { /* TT-03 and TT-05 compete for 30.4 credits */
    snprintf(codes[n], sizeof codes[n], "SH-U-OU-TT03-%d", k);
    base[n] = RT_COURSE(codes[n], "SH-U-OU", codes[n], "75", 20240101), n++;
    snprintf(codes[n], sizeof codes[n], "SH-U-OU-TT05-%d", k);
    base[n] = RT_COURSE(codes[n], "10272", codes[n], "85", 20240101), n++;
  }
  for (int k = 1; k <= 6; k++) { /* Jiangsu courses, one failed, one retaken */
    snprintf(codes[n], sizeof codes[n], "JS-U-OU-JD-%02d", k);
    base[n] = RT_COURSE(codes[n], "JS-U-OU", codes[n], k == 2 ? "55" : "80", 20230101), n++;
  }
  base[n] = RT_COURSE("retake", "JS-U-OU", "JS-U-OU-JD-02", "72", 20240101), n++;
  base[n] = RT_CERT("vq0202-3", "JS-AC", "VQ-0202", "三级", 20220101), n++;
  base[n] = RT_CERT("vq0201-4", "AH-AC", "VQ-0201", "四级", 20220101), n++;
  base[n] = RT_CERT("vq0301-3", "SH-OSTA", "VQ-0301", "三级", 20210101), n++;
  base[n] = RT_CERT("vq0302-3", "ZJ-AC", "6-07-06-05", "三级", 20210101), n++;
  base[n] = RT_CERT("vq0302-3", "ZJ-AC", "6-07-06-05", "三级", 20210101); /* same, other holder */
  base[n].holder = "ah", n++;
  base[n] = rt_ach("leisure", CATALOGUE_KIND_CULTURAL_LEISURE, "SH-L-LNDX", "CL-01", "", "优秀",
                   20200101), n++;
  base[n] = RT_COURSE("sspu", "SH-U-SSPU", "SH-U-SSPU-XX-01", "90", 20230101), n++;
  for (int k = 1; n < 30; k++) {
    snprintf(codes[n], sizeof codes[n], "ZJ-U-OU-JY-%02d", k);
    base[n] = RT_COURSE(codes[n], "ZJ-U-OU", codes[n], "66", 20230101), n++;
  }
  struct recog_achievement perm[30];
  struct run r = {.c = c, .base = base, .perm = perm, .n = 30};
  recog_decision_init(&r.d);
  static const char *const targets[][2] = {{"SH-U-OU", "JD"}, {"SH-U-SUESCE", "JD"}, {"SH-U-OU", "JY"}};
  for (size_t t = 0; t < 3; t++) {
    r.q = rt_programme(targets[t][0], targets[t][1], 20260115, base, 30);
    first(&r);
    if (t == 0) {
      assert_int_equal(r.d.credits_milli, 30400 + 6 * 4000); /* the cap, six transfers (one retaken) */
      assert_int_equal(r.d.status, RECOG_PARTIALLY_POSITIVE);
    }
    rng_state = r.seed = 20260115 + t;
    size_t idx[30];
    for (size_t i = 0; i < 30; i++) idx[i] = i;
    for (int round = 0; round < 400; round++) {
      for (size_t i = 29; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)(rng_next() % (i + 1)), x = idx[i];
        idx[i] = idx[j];
        idx[j] = x;
      }
      check_order(&r, idx);
    }
    free(r.want);
  }
  assert_int_equal(r.runs, 3 * 400);
  recog_decision_free(&r.d);
  catalogue_free(c);
}

int main(void) {
  rt_init_crypto();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_order_of_seven),
      cmocka_unit_test(test_random_orders_of_thirty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
