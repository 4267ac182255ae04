/* The demo catalogue (deploy/catalogue/demo.json) decides the paper's
 * examples as the paper says, and recognises what deploy/demo.sh deposits
 * and what `cbctl generate` (node/gen.c) emits: a Jiangsu-held certificate
 * converted at a Shanghai institution, a refusal explained, an exemption
 * answer, a through-train pilot and its 40% cap, a cross-province course
 * transfer. */
#include "gen.h"
#include "test_recognition_util.h"

#define DEMO "deploy/catalogue/demo.json"
#define DATE 20260115

static struct catalogue *cat;
static struct recog_decision dec;

static int setup(void **state) {
  (void)state;
  rt_init_crypto();
  cat = rt_load(DEMO);
  recog_decision_init(&dec);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  recog_decision_free(&dec);
  catalogue_free(cat);
  return 0;
}

static void decide(const char *inst, const char *prog, const struct recog_achievement *a,
                   size_t n) {
  struct recog_request q = rt_programme(inst, prog, DATE, a, n);
  rt_eval(cat, &q, &dec);
}

static void test_jiangsu_certificate_at_shanghai(void **state) {
  (void)state;
  /* 数控铣工（三级）⇒ 机械制造工艺, 上海工程技术大学继续教育学院 机电一体化
   * (the paper's example), the certificate held and attested by Jiangsu. */
  struct recog_achievement a[] = {RT_CERT("js-cert", "JS-AC", "VQ-0202", "三级", 20220615)};
  decide("SH-U-SUESCE", "JD", a, 1);
  assert_int_equal(dec.status, RECOG_POSITIVE);
  const struct recog_grant *g = rt_need_grant(&dec, "CRT-SUESCE-JD-01", "SH-U-SUESCE-JD-02", 4000);
  assert_string_equal(g->course_title, "机械制造工艺");
  assert_string_equal(dec.cited[0].holder, "js");
  assert_int_equal(dec.credits_milli, 4000);
}

static void test_demo_sh_learner(void **state) {
  (void)state;
  /* What deploy/demo.sh deposits for 王小明 in sh, js and zj. */
  struct recog_achievement a[] = {
      RT_CERT("sh-dg", "SH-OSTA", "6-07-06-05", "三级", 20230630),
      RT_COURSE("sh-dz", "10272", "0709", "86", 20240115),
      RT_COURSE("js-net", "10284", "080901", "91", 20241220),
      rt_ach("zj-sec", CATALOGUE_KIND_VOCATIONAL_SKILL_LEVEL, "ZJ-SKILL", "4-04-05-05", "四级",
             "合格", 20250301)};
  decide("10272", "JY", a, 4); /* the target by its alias */
  assert_string_equal(dec.target_institution, "SH-U-OU");
  rt_need_grant(&dec, "TR-NJU-SHOU-JY-01", "SH-U-OU-JY-01", 4000);
  rt_need_short(&dec, "CRT-SHOU-JY-01", RECOG_SF_LEVEL_TOO_LOW, "4-04-05-05", "四级", "三级");
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  rt_need_short(&dec, "", RECOG_SF_NO_RULE, "0709", NULL, NULL);
  rt_need_short(&dec, "", RECOG_SF_NO_RULE, "6-07-06-05", NULL, NULL);
  /* 电工（三级） by its 职业分类大典 code and the demo's issuer code */
  decide("SH-U-SUESCE", "JD", a, 1);
  rt_need_grant(&dec, "CRT-SUESCE-JD-03", "SH-U-SUESCE-JD-03", 4000);
  struct catalogue_text t = {0};
  recog_decision_format(&dec, &t);
  assert_non_null(strstr(t.s, "status: positive, 4 credits granted"));
  catalogue_text_free(&t);
}

static void test_donghai_exemption(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_COURSE("d1", "SH-U-DHVC", "SH-U-DHVC-JD-01", "82", 20230110),
                                  RT_COURSE("d3", "SH-U-DHVC", "SH-U-DHVC-JD-03", "75", 20230610),
                                  RT_COURSE("d5", "SH-U-DHVC", "SH-U-DHVC-JD-05", "良好", 20240110),
                                  RT_COURSE("d6", "SH-U-DHVC", "SH-U-DHVC-JD-06", "68", 20240610)};
  struct recog_request q = rt_exemption("6-07-06-05", "三级", DATE, a, 4);
  rt_eval(cat, &q, &dec);
  assert_int_equal(dec.status, RECOG_POSITIVE);
  const struct recog_grant *g = rt_need_grant(&dec, "CRD-DHVC-JD-01", NULL, 0);
  assert_int_equal(g->kind, RECOG_GRANT_EXAM_EXEMPTION);
  assert_string_equal(g->certificate, "VQ-0302");
  assert_int_equal(g->naids, 4);
  struct catalogue_text t = {0};
  recog_decision_format(&dec, &t);
  assert_non_null(strstr(t.s, "status: EXEMPT"));
  catalogue_text_free(&t);
  /* three of four: not exempt, and exactly what is missing */
  q.ncited = 3;
  rt_eval(cat, &q, &dec);
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  const struct recog_shortfall *s =
      rt_need_short(&dec, "CRD-DHVC-JD-01", RECOG_SF_COURSE_MISSING, "SH-U-DHVC-JD-06", "", "SH-U-DHVC");
  assert_string_equal(s->subject_title, "电机与电气控制");
  assert_int_equal(dec.nshortfalls, 1);
}

static void test_sspu_restructured(void **state) {
  (void)state;
  struct recog_achievement a[] = {RT_COURSE("x1", "SH-U-SSPU", "SH-U-SSPU-XX-01", "88", 20230110),
                                  RT_COURSE("x3", "SH-U-SSPU", "SH-U-SSPU-XX-03", "80", 20230610),
                                  RT_COURSE("x5", "SH-U-SSPU", "SH-U-SSPU-XX-05", "优秀", 20240110),
                                  RT_COURSE("x6", "SH-U-SSPU", "SH-U-SSPU-XX-06", "合格", 20240610)};
  decide("SH-U-SSPU", "XX", a, 4);
  assert_int_equal(dec.status, RECOG_POSITIVE);
  assert_int_equal(dec.credits_milli, 20000);
  rt_need_grant(&dec, "CRS-SSPU-XX-01", "SH-U-SSPU-XX-05", 6000);
  int elig = 0;
  for (size_t i = 0; i < dec.ngrants; i++)
    elig += dec.grants[i].kind == RECOG_GRANT_CERTIFICATE_ELIGIBILITY &&
            strcmp(dec.grants[i].certificate, "VQ-0501") == 0;
  assert_int_equal(elig, 1);
}

static void tt_courses(struct recog_achievement *a, int pilot, int n) {
  static char codes[16][8][32];
  for (int k = 0; k < n; k++) {
    snprintf(codes[pilot][k], sizeof codes[pilot][k], "SH-U-OU-TT%02d-%d", pilot, k + 1);
    a[k] = RT_COURSE(codes[pilot][k], "SOU-01", codes[pilot][k], "80", 20240601);
  }
}

static void test_through_train_pilots(void **state) {
  (void)state;
  struct recog_achievement a[8];
  tt_courses(a, 5, 4); /* 数控铣工（三级）⇒ 机电一体化技术 */
  decide("SH-U-OU", "JD", a, 4);
  assert_int_equal(dec.status, RECOG_POSITIVE);
  assert_int_equal(dec.credits_milli, 30000);
  int elig = 0;
  for (size_t i = 0; i < dec.ngrants; i++)
    elig += dec.grants[i].kind == RECOG_GRANT_CERTIFICATE_ELIGIBILITY &&
            strcmp(dec.grants[i].certificate, "VQ-0202") == 0 &&
            strcmp(dec.grants[i].level, "三级") == 0;
  assert_int_equal(elig, 1);
  /* a second pilot toward the same programme meets the 40% cap (30.4) */
  tt_courses(a + 4, 3, 4); /* 数控车工（三级）⇒ 机电一体化技术: evaluated first (TT-03) */
  decide("SH-U-OU", "JD", a, 8);
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  assert_int_equal(dec.credits_milli, 30400);
  rt_need_grant(&dec, "TT-05", "SH-U-OU-TT05-1", 400);
  rt_need_short(&dec, "TT-05", RECOG_SF_CAP_REACHED, "SH-U-OU-TT05-1", "0.4 of 8", "30.4 (40% of 76)");
  rt_need_short(&dec, "TT-05", RECOG_SF_CAP_REACHED, "SH-U-OU-TT05-4", "0 of 7", NULL);
  /* one certificate, three majors: the same integrated courses */
  tt_courses(a, 13, 5);
  decide("SH-U-OU", "WL", a, 5);
  rt_need_grant(&dec, "TT-15", "SH-U-OU-TT13-3", 6000);
  decide("SH-U-OU", "DS", a, 5);
  rt_need_grant(&dec, "TT-14", "SH-U-OU-TT13-3", 6000);
}

static void test_cross_province_transfer(void **state) {
  (void)state;
  /* codes as `cbctl generate --region js` emits them */
  struct recog_achievement a[] = {RT_COURSE("js1", "JS-U-OU", "JS-U-OU-JD-01", "78", 20230110),
                                  RT_COURSE("js2", "JS-U-OU", "JS-U-OU-JD-02", "59", 20230110),
                                  RT_COURSE("js4", "JS-U-OU", "JS-U-OU-JD-04", "合格", 20120110)};
  decide("SH-U-OU", "JD", a, 3);
  assert_int_equal(dec.status, RECOG_PARTIALLY_POSITIVE);
  rt_need_grant(&dec, "TR-JSOU-SHOU-JD-01", "SH-U-OU-JD-01", 4000);
  rt_need_short(&dec, "TR-JSOU-SHOU-JD-02", RECOG_SF_COURSE_NOT_PASSED, "JS-U-OU-JD-02", "59", "60");
  rt_need_short(&dec, "TR-JSOU-SHOU-JD-04", RECOG_SF_TOO_OLD, "JS-U-OU-JD-04", "2012-01-10",
                "2016-01-15");
  /* two-to-two: both needed */
  struct recog_achievement b[] = {RT_COURSE("z2", "ZJ-U-ZIME", "ZJ-U-ZIME-JX-02", "70", 20230110),
                                  RT_COURSE("z3", "ZJ-U-ZIME", "ZJ-U-ZIME-JX-03", "71", 20230110)};
  decide("SH-U-SUESCE", "JX", b, 2);
  assert_int_equal(dec.status, RECOG_POSITIVE);
  assert_int_equal(dec.credits_milli, 6000);
  const struct recog_grant *g = rt_need_grant(&dec, "TR-ZIME-SUESCE-JX-01", "SH-U-SUESCE-JX-02", 3000);
  assert_int_equal(g->naids, 2);
}

static void test_certificate_age(void **state) {
  (void)state;
  /* example-import.csv's 董超: 汽车维修工（二级） from 2015, older than the
   * ten years CRT-SHOU-QC-01 accepts in 2026 */
  struct recog_achievement a[] = {RT_CERT("dc", "SH-AC", "VQ-0101", "二级", 20150409)};
  decide("SH-U-OU", "QC", a, 1);
  assert_int_equal(dec.status, RECOG_NEGATIVE);
  rt_need_short(&dec, "CRT-SHOU-QC-01", RECOG_SF_TOO_OLD, "VQ-0101", "2015-04-09", "2016-01-15");
  /* a 1+X certificate at 中级 */
  struct recog_achievement x = rt_ach("x", CATALOGUE_KIND_VOCATIONAL_SKILL_LEVEL, "SH-X-0001",
                                      "X-01", "中级", "合格", 20220905);
  decide("SH-U-OU", "JY", &x, 1);
  rt_need_grant(&dec, "CRT-SHOU-JY-02", "SH-U-OU-JY-02", 4000);
}

/* What `cbctl generate` emits today is recognised: certificates by their
 * codes and any province's appraisal centre, open-university courses across
 * provinces. */
static void test_generated_learners(void **state) {
  (void)state;
  static const char *const regions[] = {"sh", "js", "zj", "ah"};
  static const char *const targets[][2] = {
      {"SH-U-SUESCE", "JD"}, {"SH-U-OU", "JD"}, {"SH-U-OU", "JY"}, {"SH-U-OU", "QC"},
      {"SH-U-OU", "WL"},     {"JS-U-OU", "RG"}, {"AH-U-OU", "QC"}, {"ZJ-U-OU", "JY"}};
  size_t by_kind[CATALOGUE_RULE_KIND_MAX + 1] = {0};
  struct csv_row rows[8];
  struct recog_achievement a[8];
  char labels[8][64];
  for (size_t r = 0; r < 4; r++)
    for (uint64_t li = 0; li < 150; li++) {
      struct gen_learner l;
      assert_int_equal(gen_learner(1, regions[r], li, &l), 0);
      for (uint64_t j = 0; j < 8; j++) {
        assert_int_equal(gen_achievement(1, regions[r], &l, li, j, &rows[j]), 0);
        snprintf(labels[j], sizeof labels[j], "%s-%llu-%llu", regions[r], (unsigned long long)li,
                 (unsigned long long)j);
        a[j] = rt_ach(labels[j], rows[j].kind, rows[j].issuer, rows[j].code, rows[j].level,
                      rows[j].score, rows[j].awarded_on);
        a[j].title = rows[j].title;
        a[j].holder = regions[r];
      }
      for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        struct recog_request q = rt_programme(targets[t][0], targets[t][1], DATE, a, 8);
        char err[256];
        assert_int_equal(recog_evaluate(cat, &q, &dec, err, sizeof err), 0);
        for (size_t g = 0; g < dec.ngrants; g++) by_kind[dec.grants[g].rule_kind]++;
      }
    }
  print_message("grants over generated learners: certificate_recognised %zu, course_transfer %zu\n",
                by_kind[CATALOGUE_RULE_CERTIFICATE_RECOGNISED], by_kind[CATALOGUE_RULE_COURSE_TRANSFER]);
  assert_true(by_kind[CATALOGUE_RULE_CERTIFICATE_RECOGNISED] > 20);
  assert_true(by_kind[CATALOGUE_RULE_COURSE_TRANSFER] > 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jiangsu_certificate_at_shanghai),
      cmocka_unit_test(test_demo_sh_learner),
      cmocka_unit_test(test_donghai_exemption),
      cmocka_unit_test(test_sspu_restructured),
      cmocka_unit_test(test_through_train_pilots),
      cmocka_unit_test(test_cross_province_transfer),
      cmocka_unit_test(test_certificate_age),
      cmocka_unit_test(test_generated_learners),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
