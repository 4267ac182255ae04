/* Recognition evaluation (node/recognition/recog_eval.c) against the small
 * catalogue tests/fixtures/catalogue/eval.json: each rule kind satisfied,
 * each way of falling short named with what it has and what it needs,
 * the boundaries (level exactly L, first and last valid day, age exactly
 * N years, the 40% cap reached exactly and exceeded by one thousandth,
 * credits that do not divide evenly), earlier grants and counting once,
 * aliases, bad requests refused. Every decision is also checked by
 * rt_invariants (canonical bytes = protobuf-c's, decode round trip, index
 * = full scan). */
#include "test_recognition_util.h"

#define DATE 20240630
#define FIXTURE "tests/fixtures/catalogue/eval.json"

static struct catalogue *cat;
static struct recog_decision dec;

static int setup(void **state) {
  (void)state;
  rt_init_crypto();
  cat = rt_load(FIXTURE);
  recog_decision_init(&dec);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  recog_decision_free(&dec);
  catalogue_free(cat);
  return 0;
}

static void decide(int32_t date, const struct recog_achievement *a, size_t n) {
  struct recog_request q = rt_programme("UA", "P1", date, a, n);
  rt_eval(cat, &q, &dec);
}

/* ------------------------------------------------------------ 证书认可型 */

static void test_certificate_recognised(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_CERT("c1", "AC-JS", "C1", "三级", 20230101)};
  decide(DATE, a, 1);
  const struct recog_grant *g = rt_need_grant(&dec, "R-CT", "A5", 4000);
  assert_int_equal(g->kind, RECOG_GRANT_COURSE_CREDITS);
  assert_int_equal(g->naids, 1);
  assert_memory_equal(g->aids[0], a[0].aid, 32);
  assert_string_equal(dec.target_institution, "UA");
  assert_string_equal(dec.target_programme, "P1");
  /* R-CT3 (≥ 四级) wanted the same certificate: counted once per programme. */
  rt_need_short(&dec, "R-CT3", RECOG_SF_ALREADY_COUNTED, "C1", "R-CT (this decision)", NULL);
  assert_null(rt_grant(&dec, "R-CT3", NULL));
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  /* a 四级 certificate suits R-CT3 only: positive, nothing close refused
   * but R-CT's level */
  struct recog_achievement b[] = {RT_CERT("c4", "AC-JS", "C1", "四级", 20230101)};
  decide(DATE, b, 1);
  rt_need_grant(&dec, "R-CT3", "A7", 2000);
}

static void test_level_boundary(void **state) {
  (void)state;
  struct recog_achievement at[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20230101)};
  decide(DATE, at, 1);
  rt_need_grant(&dec, "R-CT", "A5", 4000); /* exactly L */
  struct recog_achievement above[] = {RT_CERT("c1", "AC-SH", "C1", "二级", 20230101)};
  decide(DATE, above, 1);
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  struct recog_achievement below[] = {RT_CERT("c1", "AC-SH", "C1", "四级", 20230101)};
  decide(DATE, below, 1);
  rt_need_short(&dec, "R-CT", RECOG_SF_LEVEL_TOO_LOW, "C1", "四级", "三级");
  /* R-CT3 takes 四级: partially positive, the refusal named. */
  rt_need_grant(&dec, "R-CT3", "A7", 2000);
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  struct recog_achievement five[] = {RT_CERT("c1", "AC-SH", "C1", "五级", 20230101)};
  decide(DATE, five, 1);
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  rt_need_short(&dec, "R-CT3", RECOG_SF_LEVEL_TOO_LOW, "C1", "五级", "四级");
}

static void test_level_vocabulary(void **state) {
  (void)state;
  /* An alias of the scale is the same level. */
  struct recog_achievement alias[] = {RT_CERT("c1", "AC-SH", "C1", "高级", 20230101)};
  decide(DATE, alias, 1);
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  /* A level the scale does not know is a vocabulary mismatch, not "too low". */
  struct recog_achievement bad[] = {RT_CERT("c1", "AC-SH", "C1", "三級", 20230101)};
  decide(DATE, bad, 1);
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  const struct recog_shortfall *s =
      rt_need_short(&dec, "R-CT", RECOG_SF_LEVEL_UNKNOWN, "C1", "三級", NULL);
  assert_non_null(strstr(s->need, "nvq"));
  assert_null(rt_short(&dec, "R-CT", RECOG_SF_LEVEL_TOO_LOW, NULL));
}

static void test_validity_boundaries(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20190101)};
  decide(20200101, a, 1); /* first valid day */
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  decide(20191231, a, 1);
  rt_need_short(&dec, "R-CT", RECOG_SF_RULE_NOT_YET_VALID, "", "2019-12-31", "2020-01-01");
  assert_null(rt_grant(&dec, "R-CT", NULL));
  struct recog_achievement b[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20230101)};
  decide(20251231, b, 1); /* last valid day */
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  decide(20260101, b, 1);
  rt_need_short(&dec, "R-CT", RECOG_SF_RULE_NO_LONGER_VALID, "", "2026-01-01", "2025-12-31");
  assert_null(rt_grant(&dec, "R-CT", NULL));
}

static void test_age_boundary(void **state) {
  (void)state;
  struct recog_achievement ok[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20190630)};
  decide(DATE, ok, 1); /* exactly five years old */
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  struct recog_achievement old[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20190629)};
  decide(DATE, old, 1);
  rt_need_short(&dec, "R-CT", RECOG_SF_TOO_OLD, "C1", "2019-06-29", "2019-06-30");
  /* 29 February, five years back, is 28 February. */
  struct recog_achievement feb[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20190228)};
  decide(20240229, feb, 1);
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  struct recog_achievement feb27[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20190227)};
  decide(20240229, feb27, 1);
  rt_need_short(&dec, "R-CT", RECOG_SF_TOO_OLD, "C1", "2019-02-27", "2019-02-28");
  /* awarded after the decision date */
  struct recog_achievement future[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20240701)};
  decide(DATE, future, 1);
  rt_need_short(&dec, "R-CT", RECOG_SF_AWARDED_AFTER_DECISION, "C1", "2024-07-01", "2024-06-30");
}

static void test_issuer_aliases(void **state) {
  (void)state;
  /* SH-OSTA is an alias of AC-SH, which may issue C1; C1-OLD is C1. */
  struct recog_achievement a[] = {RT_CERT("c1", "SH-OSTA", "C1-OLD", "三级", 20230101)};
  decide(DATE, a, 1);
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  assert_string_equal(dec.cited[0].issuer, "AC-SH"); /* canonical in the decision */
  struct recog_achievement b[] = {RT_CERT("c1", "ZZ-AC", "C1", "三级", 20230101)};
  decide(DATE, b, 1);
  rt_need_short(&dec, "R-CT", RECOG_SF_ISSUER_NOT_ACCEPTED, "C1", "ZZ-AC", "AC-JS AC-SH");
  /* The target named by an alias of its institution. */
  struct recog_request q = rt_programme("10001", "P1", DATE, a, 1);
  rt_eval(cat, &q, &dec);
  assert_string_equal(dec.target_institution, "UA");
  rt_need_grant(&dec, "R-CT", "A5", 4000);
}

static void test_kind_mismatch(void **state) {
  (void)state;
  struct recog_achievement a = RT_CERT("c1", "AC-SH", "C1", "三级", 20230101);
  a.kind = CATALOGUE_KIND_VOCATIONAL_SKILL_LEVEL;
  decide(DATE, &a, 1);
  rt_need_short(&dec, "R-CT", RECOG_SF_KIND_MISMATCH, "C1", "vocational_skill_level",
                "vocational_qualification");
  assert_int_equal(dec.status, RECOG_NEGATIVE);
}

static void test_course_kind_and_granted_here(void **state) {
  (void)state;
  /* a course code cited as cultural and leisure learning */
  struct recog_achievement a = rt_ach("a7", CATALOGUE_KIND_CULTURAL_LEISURE, "UA", "A7", "", "90",
                                      20230101);
  decide(DATE, &a, 1);
  rt_need_short(&dec, "R-RS", RECOG_SF_KIND_MISMATCH, "A7", "cultural_leisure",
                "academic_course or non_formal");
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  /* non-formal learning counts as a course (training courses) */
  a.kind = CATALOGUE_KIND_NON_FORMAL;
  decide(DATE, &a, 1);
  rt_need_grant(&dec, "R-RS", "A7", 2000);
  /* A7 granted by R-CT3 (a 四级 certificate) first: R-RS, later in id
   * order, does not grant it again but its eligibility stands */
  struct recog_achievement b[] = {RT_CERT("c4", "AC-SH", "C1", "四级", 20230101),
                                  RT_COURSE("a7", "UA", "A7", "90", 20230101)};
  decide(DATE, b, 2);
  rt_need_grant(&dec, "R-CT3", "A7", 2000);
  rt_need_short(&dec, "R-RS", RECOG_SF_COURSE_ALREADY_GRANTED, "A7", "R-CT3 (this decision)", "");
  assert_null(rt_grant(&dec, "R-RS", "A7"));
  rt_need_grant(&dec, "R-RS", "", 0); /* the eligibility */
  assert_int_equal(dec.credits_milli, 2000);
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
}

static void test_skill_certificate(void **state) {
  (void)state;
  struct recog_achievement a = rt_ach("x", CATALOGUE_KIND_VOCATIONAL_SKILL_LEVEL, "AC-SH", "C2",
                                      "中级", "合格", 20230101);
  decide(DATE, &a, 1);
  rt_need_grant(&dec, "R-CT2", "A6", 3333);
  a.level = "初级";
  decide(DATE, &a, 1);
  rt_need_short(&dec, "R-CT2", RECOG_SF_LEVEL_TOO_LOW, "C2", "初级", "中级");
}

/* ------------------------------------------------------------ 学分认可型 */

static void exempt(const struct recog_achievement *a, size_t n, const char *level) {
  struct recog_request q = rt_exemption("C1", level, DATE, a, n);
  rt_eval(cat, &q, &dec);
}

static void test_exemption(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_COURSE("b1", "UB", "B1", "85", 20230101),
                                  RT_COURSE("b2", "10002", "B2", "良好", 20230101),
                                  RT_COURSE("b3", "UB", "B3", "70", 20230101)};
  exempt(a, 3, "三级");
  assert_int_equal(dec.status, RECOG_POSITIVE);
  const struct recog_grant *g = rt_need_grant(&dec, "R-CR", NULL, 0);
  assert_int_equal(g->kind, RECOG_GRANT_EXAM_EXEMPTION);
  assert_string_equal(g->certificate, "C1");
  assert_string_equal(g->level, "三级");
  assert_int_equal(g->naids, 3);
  assert_int_equal(dec.nshortfalls, 0);
  assert_string_equal(recog_decision_tag(&dec), RECOG_TAG_EXEMPTION);
  /* by an alias of the level */
  exempt(a, 3, "高级");
  assert_int_equal(dec.status, RECOG_POSITIVE);
  /* no rule exempts another level */
  exempt(a, 3, "四级");
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  assert_int_equal(dec.ngrants, 0);
}

static void test_exemption_shortfalls(void **state) {
  (void)state;
  struct recog_achievement two[] = {RT_COURSE("b1", "UB", "B1", "85", 20230101),
                                    RT_COURSE("b2", "UB", "B2", "80", 20230101)};
  exempt(two, 2, "三级");
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  rt_need_short(&dec, "R-CR", RECOG_SF_COURSE_MISSING, "B3", "", "UB");
  struct recog_achievement failed[] = {RT_COURSE("b1", "UB", "B1", "85", 20230101),
                                       RT_COURSE("b2", "UB", "B2", "80", 20230101),
                                       RT_COURSE("b3", "UB", "B3", "55", 20230101)};
  exempt(failed, 3, "三级");
  rt_need_short(&dec, "R-CR", RECOG_SF_COURSE_NOT_PASSED, "B3", "55", "60");
  failed[2].score = "65";
  exempt(failed, 3, "三级");
  rt_need_short(&dec, "R-CR", RECOG_SF_SCORE_TOO_LOW, "B3", "65", "70");
  failed[2].score = "合格"; /* a grade counts as the bottom of its band: 60 */
  exempt(failed, 3, "三级");
  rt_need_short(&dec, "R-CR", RECOG_SF_SCORE_TOO_LOW, "B3", "合格", "70");
  failed[2].score = "";
  exempt(failed, 3, "三级");
  rt_need_short(&dec, "R-CR", RECOG_SF_SCORE_TOO_LOW, "B3", "(none)", "70");
  failed[2].score = "A+";
  exempt(failed, 3, "三级");
  rt_need_short(&dec, "R-CR", RECOG_SF_SCORE_UNKNOWN, "B3", "A+", "0..100 or a grade");
  failed[2].score = "100.5";
  exempt(failed, 3, "三级");
  rt_need_short(&dec, "R-CR", RECOG_SF_SCORE_UNKNOWN, "B3", "100.5", NULL);
  failed[2].score = "70";
  failed[2].issuer = "UA"; /* the same code at another institution is another course */
  exempt(failed, 3, "三级");
  rt_need_short(&dec, "R-CR", RECOG_SF_COURSE_MISSING, "B3", NULL, NULL);
  /* A retaken course: the better of the two attempts counts. */
  struct recog_achievement retake[] = {RT_COURSE("b1", "UB", "B1", "85", 20230101),
                                       RT_COURSE("b2", "UB", "B2", "80", 20230101),
                                       RT_COURSE("b3-first", "UB", "B3", "50", 20220101),
                                       RT_COURSE("b3-again", "UB", "B3", "75", 20230101)};
  exempt(retake, 4, "三级");
  assert_int_equal(dec.status, RECOG_POSITIVE);
  const struct recog_grant *g = rt_need_grant(&dec, "R-CR", NULL, 0);
  uint8_t again[32];
  rt_aid("b3-again", again);
  int found = 0;
  for (uint32_t i = 0; i < g->naids; i++) found |= memcmp(g->aids[i], again, 32) == 0;
  assert_true(found);
}

/* ------------------------------------------------------------ 课程重组型, 学历互认 */

static void test_course_restructured(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_COURSE("a7", "UA", "A7", "90", 20230101)};
  decide(DATE, a, 1);
  assert_int_equal(dec.status, RECOG_POSITIVE);
  rt_need_grant(&dec, "R-RS", "A7", 2000);
  const struct recog_grant *e = NULL;
  for (size_t i = 0; i < dec.ngrants; i++)
    if (dec.grants[i].kind == RECOG_GRANT_CERTIFICATE_ELIGIBILITY) e = &dec.grants[i];
  if (!e) {
    fail_msg("no eligibility granted");
    return;
  }
  assert_string_equal(e->rule_id, "R-RS");
  assert_string_equal(e->certificate, "C1");
  assert_string_equal(e->level, "三级");
  assert_int_equal(dec.credits_milli, 2000);
}

static void test_transfer_cap_thousandths(void **state) {
  (void)state;
  /* R-TR grants A6 (3.333) and A7 (2) under a cap of 4: 3.333 + 0.667. */
  struct recog_achievement a[] = {RT_COURSE("b1", "UB", "B1", "60", 20230101),
                                  RT_COURSE("b2", "UB", "B2", "60", 20230101)};
  decide(DATE, a, 2);
  rt_need_grant(&dec, "R-TR", "A6", 3333);
  const struct recog_grant *g = rt_need_grant(&dec, "R-TR", "A7", 667);
  assert_int_equal(g->course_credits_milli, 2000);
  assert_int_equal(g->naids, 2);
  rt_need_short(&dec, "R-TR", RECOG_SF_CAP_REACHED, "A7", "0.667 of 2", "4");
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  assert_int_equal(dec.credits_milli, 4000);
  /* one of the two courses missing: nothing */
  decide(DATE, a, 1);
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  rt_need_short(&dec, "R-TR", RECOG_SF_COURSE_MISSING, "B2", NULL, NULL);
}

/* ------------------------------------------------------------ 直通车式 and the 40% cap */

static void test_through_train_cap_exact(void **state) {
  (void)state;
  /* 75.003 × 40% = 30.0012 → 30.001; A1+A2+A3 = 10.001+10+10 = 30.001. */
  struct recog_achievement a[] = {RT_COURSE("a1", "UA", "A1", "80", 20230101),
                                  RT_COURSE("a2", "UA", "A2", "80", 20230101),
                                  RT_COURSE("a3", "UA", "A3", "80", 20230101)};
  decide(DATE, a, 3);
  assert_int_equal(dec.status, RECOG_POSITIVE);
  rt_need_grant(&dec, "R-TT1", "A1", 10001);
  rt_need_grant(&dec, "R-TT1", "A2", 10000);
  rt_need_grant(&dec, "R-TT1", "A3", 10000);
  assert_int_equal(dec.credits_milli, 30001);
  assert_int_equal(catalogue_through_train_cap_milli(&cat->programmes[0]), 30001);
  /* With A4 as well: the cap is reached, R-TT2 grants no credit (its
   * eligibility still stands) and says why. */
  struct recog_achievement b[] = {a[0], a[1], a[2], RT_COURSE("a4", "UA", "A4", "80", 20230101)};
  decide(DATE, b, 4);
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  assert_null(rt_grant(&dec, "R-TT2", "A4"));
  rt_need_short(&dec, "R-TT2", RECOG_SF_CAP_REACHED, "A4", "0 of 0.002", "30.001 (40% of 75.003)");
  assert_int_equal(dec.credits_milli, 30001);
}

static void test_through_train_cap_exceeded_by_one(void **state) {
  (void)state;
  /* Earlier decisions granted 29.999 through-train credits: A4 (0.002)
   * reaches the cap of 30.001 exactly. After 30.000, A4 would exceed it by
   * one thousandth: 0.001 of it is granted. */
  struct recog_earlier_grant e = {.rule_id = "R-TT-OLD", .rule_kind = CATALOGUE_RULE_THROUGH_TRAIN,
                                  .course = "OLD", .credits_milli = 29999};
  rt_aid("old", e.aid);
  struct recog_achievement a[] = {RT_COURSE("a4", "UA", "A4", "80", 20230101)};
  struct recog_request q = rt_programme("UA", "P1", DATE, a, 1);
  q.earlier = &e;
  q.nearlier = 1;
  rt_eval(cat, &q, &dec);
  rt_need_grant(&dec, "R-TT2", "A4", 2);
  assert_int_equal(dec.status, RECOG_POSITIVE);
  /* 30.000 earlier: one thousandth of room left for 0.002 */
  e.credits_milli = 30000;
  rt_eval(cat, &q, &dec);
  rt_need_grant(&dec, "R-TT2", "A4", 1);
  rt_need_short(&dec, "R-TT2", RECOG_SF_CAP_REACHED, "A4", "0.001 of 0.002",
                "30.001 (40% of 75.003)");
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  /* a transfer's credits do not count toward the through-train cap */
  e.rule_kind = CATALOGUE_RULE_COURSE_TRANSFER;
  rt_eval(cat, &q, &dec);
  rt_need_grant(&dec, "R-TT2", "A4", 2);
}

/* ------------------------------------------------------------ earlier grants */

static void test_earlier_grants(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20230101)};
  /* the certificate already counted toward this programme */
  struct recog_earlier_grant e = {.rule_id = "R-CT", .rule_kind = CATALOGUE_RULE_CERTIFICATE_RECOGNISED,
                                  .course = "A5", .credits_milli = 4000};
  memcpy(e.aid, a[0].aid, 32);
  struct recog_request q = rt_programme("UA", "P1", DATE, a, 1);
  q.earlier = &e;
  q.nearlier = 1;
  rt_eval(cat, &q, &dec);
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  rt_need_short(&dec, "R-CT", RECOG_SF_ALREADY_COUNTED, "C1", "R-CT (earlier decision)", "");
  rt_need_short(&dec, "R-CT3", RECOG_SF_ALREADY_COUNTED, "C1", "R-CT (earlier decision)", "");
  /* another certificate aid, but the course was granted before */
  rt_aid("some other certificate", e.aid);
  rt_eval(cat, &q, &dec);
  rt_need_short(&dec, "R-CT", RECOG_SF_COURSE_ALREADY_GRANTED, "A5", "R-CT (earlier decision)", "");
  /* R-CT then grants nothing, so the aid is free for R-CT3 */
  rt_need_grant(&dec, "R-CT3", "A7", 2000);
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  /* a rule's own cap counts its earlier grants */
  struct recog_achievement b[] = {RT_COURSE("b1", "UB", "B1", "60", 20230101),
                                  RT_COURSE("b2", "UB", "B2", "60", 20230101)};
  struct recog_earlier_grant f = {.rule_id = "R-TR", .rule_kind = CATALOGUE_RULE_COURSE_TRANSFER,
                                  .course = "A6", .credits_milli = 3333};
  rt_aid("an earlier transfer", f.aid);
  q = rt_programme("UA", "P1", DATE, b, 2);
  q.earlier = &f;
  q.nearlier = 1;
  rt_eval(cat, &q, &dec);
  rt_need_short(&dec, "R-TR", RECOG_SF_COURSE_ALREADY_GRANTED, "A6", NULL, NULL);
  rt_need_grant(&dec, "R-TR", "A7", 667);
}

static void test_same_aid_two_requests(void **state) {
  (void)state;
  /* The first decision's grants, fed back as earlier grants, leave the
   * second request with nothing and the reason. */
  struct recog_achievement a[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20230101)};
  decide(DATE, a, 1);
  struct recog_earlier_grant e[8];
  size_t n = 0;
  for (size_t i = 0; i < dec.ngrants; i++)
    for (uint32_t j = 0; j < dec.grants[i].naids && n < 8; j++, n++) {
      memcpy(e[n].aid, dec.grants[i].aids[j], 32);
      e[n].rule_id = strdup(dec.grants[i].rule_id);
      e[n].rule_kind = dec.grants[i].rule_kind;
      e[n].course = strdup(dec.grants[i].course);
      e[n].credits_milli = dec.grants[i].credits_milli;
    }
  assert_int_equal(n, 1);
  struct recog_request q = rt_programme("UA", "P1", DATE, a, 1);
  q.request_id = "req-2";
  q.earlier = e;
  q.nearlier = n;
  rt_eval(cat, &q, &dec);
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  assert_int_equal(dec.credits_milli, 0);
  rt_need_short(&dec, "R-CT", RECOG_SF_ALREADY_COUNTED, "C1", "R-CT (earlier decision)", NULL);
  for (size_t i = 0; i < n; i++) {
    free((char *)e[i].rule_id);
    free((char *)e[i].course);
  }
}

/* ------------------------------------------------------------ unused citations, errors */

static void test_unused_citations(void **state) {
  (void)state;
  struct recog_achievement a[] = {
      RT_CERT("c1", "AC-SH", "C1", "二级", 20230101),
      rt_ach("leisure", CATALOGUE_KIND_CULTURAL_LEISURE, "SH-L-LNDX", "CL-01", "", "优秀", 20200101),
      RT_COURSE("b1", "UB", "B1", "90", 20230101)};
  struct recog_request q = rt_programme("UA", "P1", DATE, a, 2);
  rt_eval(cat, &q, &dec);
  rt_need_short(&dec, "", RECOG_SF_UNKNOWN_ISSUER, "CL-01", "SH-L-LNDX", "");
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  /* B1 is required by R-TR, a rule toward UA/P1: named by that rule as
   * falling short (B2 missing), not as unused; the rule came close, so the
   * decision is partially positive. */
  q.ncited = 3;
  rt_eval(cat, &q, &dec);
  rt_need_short(&dec, "R-TR", RECOG_SF_COURSE_MISSING, "B2", NULL, NULL);
  assert_null(rt_short(&dec, "", RECOG_SF_NO_RULE, "B1"));
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  /* a known certificate that no rule toward the target uses */
  q = rt_programme("UB", "Q1", DATE, a, 1);
  rt_eval(cat, &q, &dec);
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  rt_need_short(&dec, "", RECOG_SF_NO_RULE, "C1", "", "");
}

static void test_bad_requests(void **state) {
  (void)state;
  char err[256];
  struct recog_achievement a[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20230101)};
  struct recog_request q = rt_programme("UA", "NOPE", DATE, a, 1);
  assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), RECOG_ETARGET);
  assert_non_null(strstr(err, "NOPE"));
  q = rt_programme("ZZ", "P1", DATE, a, 1);
  assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), RECOG_ETARGET);
  q = rt_exemption("C9", "三级", DATE, a, 1);
  assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), RECOG_ETARGET);
  q = rt_exemption("C1", "九级", DATE, a, 1);
  assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), RECOG_ETARGET);
  q = rt_programme("UA", "P1", 20230230, a, 1);
  assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), RECOG_EINVAL);
  struct recog_achievement bad = a[0];
  bad.awarded_on = 20230229;
  q = rt_programme("UA", "P1", DATE, &bad, 1);
  assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), RECOG_EINVAL);
  assert_non_null(strstr(err, "awarded_on"));
  bad = a[0];
  bad.code = "C\x01";
  assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), RECOG_EINVAL);
  /* one aid with two different contents */
  struct recog_achievement two[] = {a[0], a[0]};
  two[1].level = "二级";
  q = rt_programme("UA", "P1", DATE, two, 2);
  assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), RECOG_EINVAL);
  assert_non_null(strstr(err, "different contents"));
  /* the same achievement from two holders: one citation of each, used once */
  two[1] = a[0];
  two[1].holder = "zj";
  q = rt_programme("UA", "P1", DATE, two, 2);
  rt_eval(cat, &q, &dec);
  assert_int_equal(dec.ncited, 2);
  rt_need_grant(&dec, "R-CT", "A5", 4000);
  assert_int_equal(dec.credits_milli, 4000);
  /* the very same citation twice counts once */
  two[1] = a[0];
  rt_eval(cat, &q, &dec);
  assert_int_equal(dec.ncited, 1);
  /* a failed evaluation leaves an empty decision */
  q = rt_programme("UA", "NOPE", DATE, a, 1);
  assert_int_not_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), 0);
  assert_int_equal(dec.ngrants, 0);
  assert_null(dec.request_id);
}

/* ------------------------------------------------------------ signatures */

static void test_sign_verify(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_CERT("c1", "AC-SH", "C1", "三级", 20230101)};
  decide(DATE, a, 1);
  size_t len;
  uint8_t *body = rt_encode(&dec, &len);
  uint8_t seed[32];
  memset(seed, 7, sizeof seed);
  EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  assert_non_null(key);
  cb_openssl_signer s = {.fixed_key = key};
  cb_crypto signer;
  cb_crypto_openssl_signer(&signer, &s);
  uint8_t sig[64], pub[32];
  assert_int_equal(recog_sign(&signer, recog_decision_tag(&dec), body, len, sig, pub), 0);
  assert_int_equal(recog_verify(&rt_crypto, pub, RECOG_TAG_DECISION, body, len, sig), 0);
  /* domain separation: not valid as an exemption answer */
  assert_int_equal(recog_verify(&rt_crypto, pub, RECOG_TAG_EXEMPTION, body, len, sig),
                   RECOG_EBADSIG);
  body[len / 2] ^= 1;
  assert_int_equal(recog_verify(&rt_crypto, pub, RECOG_TAG_DECISION, body, len, sig),
                   RECOG_EBADSIG);
  EVP_PKEY_free(key);
  free(body);
}

static void test_decode_refuses(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_CERT("c1", "AC-SH", "C1", "四级", 20230101)};
  decide(DATE, a, 1);
  size_t len;
  uint8_t *body = rt_encode(&dec, &len);
  struct recog_pb_decoded out;
  char err[256];
  /* truncations never crash; most are refused (one ending at a field
   * boundary may be a valid shorter decision: the signature, not the
   * decoder, protects integrity) */
  for (size_t n = 0; n < len; n++)
    if (recog_pb_decode(body, n, &out, err, sizeof err) == 0) recog_pb_decoded_free(&out);
  /* the same fields in another order are valid protobuf but not canonical:
   * move the request id (field 1) to the end */
  assert_int_equal(body[0], 0x0a);
  size_t flen = 2 + body[1];
  uint8_t *moved = malloc(len);
  assert_non_null(moved);
  memcpy(moved, body + flen, len - flen);
  memcpy(moved + len - flen, body, flen);
  assert_int_equal(recog_pb_decode(moved, len, &out, err, sizeof err), RECOG_EINVAL);
  assert_non_null(strstr(err, "canonical"));
  free(moved);
  assert_int_equal(recog_pb_decode(body, len, &out, err, sizeof err), 0);
  assert_string_equal(out.d.request_id, "req-1");
  assert_int_equal(out.d.status, RECOG_PARTIALLY_POSITIVE);
  recog_pb_decoded_free(&out);
  free(body);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_certificate_recognised),
      cmocka_unit_test(test_level_boundary),
      cmocka_unit_test(test_level_vocabulary),
      cmocka_unit_test(test_validity_boundaries),
      cmocka_unit_test(test_age_boundary),
      cmocka_unit_test(test_issuer_aliases),
      cmocka_unit_test(test_kind_mismatch),
      cmocka_unit_test(test_course_kind_and_granted_here),
      cmocka_unit_test(test_skill_certificate),
      cmocka_unit_test(test_exemption),
      cmocka_unit_test(test_exemption_shortfalls),
      cmocka_unit_test(test_course_restructured),
      cmocka_unit_test(test_transfer_cap_thousandths),
      cmocka_unit_test(test_through_train_cap_exact),
      cmocka_unit_test(test_through_train_cap_exceeded_by_one),
      cmocka_unit_test(test_earlier_grants),
      cmocka_unit_test(test_same_aid_two_requests),
      cmocka_unit_test(test_unused_citations),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_sign_verify),
      cmocka_unit_test(test_decode_refuses),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
