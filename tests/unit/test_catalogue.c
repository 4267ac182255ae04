/* The catalogue reader and validator (node/recognition/catalogue_json.c,
 * cat_seal.c): each kind of error in a file is named by line (syntax) or
 * path, every error of a file is reported at once, and nothing is returned
 * on any error; the demo catalogue loads cleanly and its version is the
 * SHA-256 of the tag and its exact bytes; lookups through aliases; show
 * and diff say what an operator needs. */
#include <openssl/evp.h>

#include "test_recognition_util.h"

#define EVAL "tests/fixtures/catalogue/eval.json"
#define DEMO "deploy/catalogue/demo.json"
/* The demo catalogue's version. Editing deploy/catalogue/demo.json changes
 * it (that is what a version is): update this line with the value the
 * failure prints, and say in the commit why the catalogue changed. */
#define DEMO_VERSION "206706400a19137f164ccc01ecf8b0da95d21f8dc969136e6964f8ec7ca70db4"

static char *read_text(const char *rel, size_t *len) {
  char path[1024];
  rt_fixture_path(path, sizeof path, rel);
  uint8_t *b;
  struct catalogue_errors e = {0};
  if (catalogue_read_file(path, &b, len, &e) != 0) fail_msg("cannot read %s", path);
  catalogue_errors_free(&e);
  char *s = realloc(b, *len + 1);
  assert_non_null(s);
  s[*len] = '\0';
  return s;
}

/* text with `from` replaced by `to` (which must occur exactly once) */
static char *replace(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  if (!at) fail_msg("fixture has no '%s'", from);
  if (strstr(at + 1, from)) fail_msg("fixture has '%s' twice", from);
  size_t a = (size_t)(at - text), fl = strlen(from), tl = strlen(to), n = strlen(text);
  char *s = malloc(n - fl + tl + 1);
  assert_non_null(s);
  memcpy(s, text, a);
  memcpy(s + a, to, tl);
  memcpy(s + a + tl, at + fl, n - a - fl + 1);
  return s;
}

static int has_error(const struct catalogue_errors *e, const char *want) {
  for (size_t i = 0; i < e->nkept; i++)
    if (strstr(e->lines[i], want)) return 1;
  return 0;
}

/* Loading must fail, return nothing, and name each wanted error. */
static void refused(const char *text, const char *const *want, size_t nwant, size_t count) {
  struct catalogue *c = (struct catalogue *)1;
  struct catalogue_errors e = {0};
  assert_int_equal(catalogue_load_buffer(text, strlen(text), &rt_crypto, &c, &e), -1);
  assert_null(c);
  for (size_t i = 0; i < nwant; i++)
    if (!has_error(&e, want[i])) {
      for (size_t j = 0; j < e.nkept; j++) print_error("  got: %s\n", e.lines[j]);
      fail_msg("no error containing '%s'", want[i]);
    }
  if (count) assert_int_equal(e.count, count);
  catalogue_errors_free(&e);
}

struct bad_case {
  const char *from, *to;
  const char *want;
};

static void test_each_error_named(void **state) {
  (void)state;
  size_t len;
  char *base = read_text(EVAL, &len);
  static const struct bad_case cases[] = {
      /* unknown level */
      {"\"min_level\": \"三级\", \"max_age_years\"", "\"min_level\": \"三極\", \"max_age_years\"",
       "rules[1].min_level: unknown level 三極 in scale nvq (五级 四级 三级 二级 一级)"},
      /* unknown institution */
      {"\"from\": \"UB\", \"courses\": [\"B1\", \"B2\", \"B3\"]",
       "\"from\": \"UX\", \"courses\": [\"B1\", \"B2\", \"B3\"]", "rules[0].from: unknown institution UX"},
      /* duplicate rule id */
      {"\"id\": \"R-CT2\"", "\"id\": \"R-CT\"", "rules[2].id: duplicate rule id R-CT (also rules[1])"},
      /* bad dates */
      {"\"valid_to\": \"2025-12-31\"", "\"valid_to\": \"2019-12-31\"",
       "rules[1].valid_to: 2019-12-31 is before valid_from 2020-01-01"},
      {"\"valid_to\": \"2025-12-31\"", "\"valid_to\": \"2023-02-29\"",
       "rules[1].valid_to: '2023-02-29' is not a date"},
      {"\"valid_from\": \"2016-01-01\"", "\"valid_from\": \"2016/01/01\"",
       "rules[0].valid_from: '2016/01/01' is not a date"},
      /* the through-train cap */
      {"\n     \"target\": \"UA/P1\"}", "\n     \"target\": \"UA/P1\", \"max_credits\": \"30.002\"}",
       "rules[6].max_credits: cap 30.002 is more than 40% of UA/P1's 75.003 credits (30.001)"},
      {"\"credits\": \"10.001\"", "\"credits\": \"10.002\"",
       "rules[6].courses: the integrated courses total 30.002 credits, more than 40% of UA/P1's "
       "75.003 credits (30.001)"},
      /* references to what does not exist */
      {"\"grants\": [\"A5\"]", "\"grants\": [\"A9\"]", "rules[1].grants[0]: unknown course A9 at UA"},
      {"\"grants\": [\"A5\"]", "\"grants\": [\"B1\"]", "rules[1].grants[0]: unknown course B1 at UA"},
      {"\"certificate\": \"C2\"", "\"certificate\": \"C9\"",
       "rules[2].certificate: unknown certificate C9"},
      {"\"target\": \"UA/P1\", \"grants\": [\"A5\"]", "\"target\": \"UA/P9\", \"grants\": [\"A5\"]",
       "rules[1].target: unknown programme P9 at UA"},
      {"\"issuers\": [\"AC-SH\", \"AC-JS\"]", "\"issuers\": [\"AC-SH\", \"AC-ZJ\"]",
       "certificates[0].issuers[1]: unknown institution AC-ZJ"},
      {"\"institution\": \"UB\"", "\"institution\": \"UC\"",
       "programmes[1].institution: unknown institution UC"},
      /* aliases: written codes only, each name meaning one institution */
      {"\"target\": \"UA/P1\", \"grants\": [\"A5\"]", "\"target\": \"10001/P1\", \"grants\": [\"A5\"]",
       "rules[1].target: 10001 is an alias of UA (甲大学): write the institution's code"},
      {"\"aliases\": [\"10002\"]", "\"aliases\": [\"10001\"]",
       "institutions[1].aliases[0]: 10001 already names UA (institutions[0])"},
      /* shapes and types */
      {"\"valid_from\": \"2020-01-01\", \"valid_to\"", "\"valid_form\": \"2020-01-01\", \"valid_to\"",
       "rules[1].valid_form: unknown field"},
      {"\"credits\": \"10.001\"", "\"credits\": 10.001", "no floating point near credits"},
      {"\"kind\": \"credit_recognised\"", "\"kind\": \"credit_recognized\"",
       "rules[0].kind: unknown kind credit_recognized"},
      {"\"min_score\": \"70\"", "\"min_score\": \"70\", \"target\": \"UA/P1\"",
       "rules[0].target: not part of a credit_recognised rule"},
      {"\"min_score\": \"70\"", "\"min_score\": \"50\"", "rules[0].min_score: 50 is below the pass mark"},
      {"\"exempts\": {\"certificate\": \"C1\", \"level\": \"三级\"}", "\"comment\": \"none\"",
       "rules[0].exempts: missing (a credit_recognised rule needs it)"},
      {"\"format\": \"cb-catalogue/1\"", "\"format\": \"cb-catalogue/2\"",
       "format: unsupported format 'cb-catalogue/2'"},
      {"\"name\": \"甲大学\"", "\"name\": \"甲\\u0000大学\"", "line 29, column 38: \\u0000 is not allowed"},
      {"\"province\": \"js\", \"aliases\"", "\"province\": \"Jiangsu\", \"aliases\"",
       "institutions[1].province: 'Jiangsu' is not a region id"},
      /* Figure 2: a 二级 pilot into a 专科 programme needs a stated reason */
      {", \"framework_override\": \"test: a 二级 pilot into a 专科 programme\"", "",
       "rules[7].eligible_for.level: 数控铣工 二级 sits at framework level high but programme UA/P1 "
       "is 专科, framework level middle"},
      /* a level a certificate is not offered at */
      {"\"aliases\": [\"C1-OLD\"]", "\"levels\": [\"四级\", \"二级\"], \"aliases\": [\"C1-OLD\"]",
       "rules[0].exempts.level: C1 (数控铣工) is not offered at level 三级"},
      /* a merge rule without grants grants its own courses: they must be the target's */
      {"\"from\": \"UA\", \"courses\": [\"A7\"]", "\"from\": \"UB\", \"courses\": [\"B3\"]",
       "rules[4].grants: missing: without grants the integrated courses are granted"},
      /* transfer within one institution */
      {"\"from\": \"UB\", \"courses\": [\"B1\", \"B2\"]", "\"from\": \"UA\", \"courses\": [\"A1\", \"A2\"]",
       "rules[5].from: a course transfer is between two institutions"},
      /* a course defined twice differently */
      {"{\"code\": \"A7\", \"name\": \"电子技术\", \"credits\": \"2\"}",
       "{\"code\": \"A7\", \"name\": \"电子技术\", \"credits\": \"2\"}, {\"code\": \"A6\", \"name\": \"x\", \"credits\": \"1\"}",
       "programmes[0].courses[7].code: course A6 is already defined with another name or credits"},
      /* a duplicate key is a syntax error, with its line */
      {"\"title\": \"Evaluation", "\"format\": \"x\", \"title\": \"Evaluation",
       "line 3, column"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *text = replace(base, cases[i].from, cases[i].to);
    const char *want[] = {cases[i].want};
    print_message("case %zu: %s\n", i, cases[i].want);
    refused(text, want, 1, 0);
    free(text);
  }
  free(base);
}

static void test_every_error_at_once(void **state) {
  (void)state;
  size_t len;
  char *base = read_text(EVAL, &len);
  char *a = replace(base, "\"min_level\": \"三级\", \"max_age_years\"",
                    "\"min_level\": \"三極\", \"max_age_years\"");
  char *b = replace(a, "\"id\": \"R-CT2\"", "\"id\": \"R-CT\"");
  char *c = replace(b, "\"grants\": [\"A6\", \"A7\"]", "\"grants\": [\"A6\", \"A8\"]");
  char *d = replace(c, "\"valid_from\": \"2014-09-01\"", "\"valid_from\": \"2014-13-01\"");
  const char *want[] = {"rules[1].min_level: unknown level 三極", "rules[2].id: duplicate rule id R-CT",
                        "rules[5].grants[1]: unknown course A8 at UA",
                        "rules[4].valid_from: '2014-13-01' is not a date"};
  refused(d, want, 4, 4);
  free(a);
  free(b);
  free(c);
  free(d);
  free(base);
}

static void test_syntax_and_shape(void **state) {
  (void)state;
  const char *syntax = "{\n  \"format\": \"cb-catalogue/1\",\n  \"rules\": [1,]\n}\n";
  const char *w1[] = {"line 3, column 15: unexpected token near ']'"};
  refused(syntax, w1, 1, 1);
  const char *w2[] = {"line 1"};
  refused("", w2, 1, 1);
  const char *w3[] = {"expected an object, found a list"};
  refused("[]", w3, 1, 0);
  const char *w4[] = {"format: missing", "level_scales: missing", "institutions: missing",
                      "rules: missing", "scores: missing"};
  refused("{}", w4, 5, 0);
  char path[1024];
  rt_fixture_path(path, sizeof path, "tests/fixtures/catalogue/no-such-file.json");
  struct catalogue *c = NULL;
  struct catalogue_errors e = {0};
  assert_int_equal(catalogue_load_file(path, &rt_crypto, &c, &e, NULL, NULL), -1);
  assert_null(c);
  assert_true(has_error(&e, "cannot open"));
  catalogue_errors_free(&e);
}

static void test_demo_loads(void **state) {
  (void)state;
  size_t len;
  char *text = read_text(DEMO, &len);
  struct catalogue *c = NULL;
  struct catalogue_errors e = {0};
  assert_int_equal(catalogue_load_buffer(text, len, &rt_crypto, &c, &e), 0);
  assert_int_equal(e.count, 0);
  assert_non_null(c);
  assert_int_equal(c->nrules, 55);
  /* version = SHA-256("cb/catalogue/v1" || 0x00 || bytes), computed here
   * without the crypto interface */
  uint8_t want[32];
  unsigned int wl = 0;
  EVP_MD_CTX *x = EVP_MD_CTX_new();
  assert_non_null(x);
  assert_int_equal(EVP_DigestInit_ex(x, EVP_sha256(), NULL), 1);
  assert_int_equal(EVP_DigestUpdate(x, "cb/catalogue/v1", 15), 1);
  assert_int_equal(EVP_DigestUpdate(x, "", 1), 1);
  assert_int_equal(EVP_DigestUpdate(x, text, len), 1);
  assert_int_equal(EVP_DigestFinal_ex(x, want, &wl), 1);
  EVP_MD_CTX_free(x);
  assert_memory_equal(c->version, want, 32);
  char hex[65];
  catalogue_version_hex(c->version, hex);
  if (strcmp(hex, DEMO_VERSION) != 0)
    fail_msg("the demo catalogue's version is %s, not %s: update DEMO_VERSION if the change of "
             "deploy/catalogue/demo.json was meant", hex, DEMO_VERSION);
  /* the same content with one more byte is another version, with no change */
  char *more = malloc(len + 2);
  assert_non_null(more);
  memcpy(more, text, len);
  more[len] = '\n';
  struct catalogue *c2 = NULL;
  assert_int_equal(catalogue_load_buffer(more, len + 1, &rt_crypto, &c2, &e), 0);
  assert_memory_not_equal(c2->version, c->version, 32);
  struct catalogue_text t = {0};
  assert_int_equal(catalogue_diff(c, c2, &t), 0);
  assert_non_null(strstr(t.s, "no changes of content"));
  catalogue_text_free(&t);
  catalogue_free(c2);
  free(more);
  /* aliases: 10272, SOU-01 and SH-U-OU are one institution */
  uint32_t sou = catalogue_institution_find(c, "SH-U-OU");
  assert_int_not_equal(sou, CATALOGUE_NONE);
  assert_int_equal(catalogue_institution_find(c, "10272"), sou);
  assert_int_equal(catalogue_institution_find(c, "SOU-01"), sou);
  assert_string_equal(c->institutions[sou].name, "上海开放大学");
  assert_int_equal(catalogue_institution_find(c, "10273"), CATALOGUE_NONE);
  uint32_t dg = catalogue_certificate_find(c, "VQ-0302");
  assert_int_equal(catalogue_certificate_find(c, "6-07-06-05"), dg);
  /* the index: certificate × programme → rules */
  uint32_t suesce = catalogue_institution_find(c, "SH-U-SUESCE");
  uint32_t jd = catalogue_programme_find(c, suesce, "JD");
  size_t n;
  const uint32_t *r =
      catalogue_rules_by_certificate(c, jd, catalogue_certificate_find(c, "VQ-0202"), &n);
  assert_int_equal(n, 1);
  assert_string_equal(c->rules[r[0]].id, "CRT-SUESCE-JD-01");
  /* every through-train pilot stays within 40% of its programme */
  int tt = 0;
  for (uint32_t i = 0; i < c->nrules; i++) {
    const struct catalogue_rule *ru = &c->rules[i];
    if (ru->kind != CATALOGUE_RULE_THROUGH_TRAIN) continue;
    tt++;
    int64_t sum = 0;
    for (uint32_t j = 0; j < ru->ngrants; j++) sum += c->courses[ru->grants[j]].credits_milli;
    assert_true(sum <= catalogue_through_train_cap_milli(&c->programmes[ru->target]));
    assert_true(ru->nrequired >= 3 && ru->nrequired <= 5);
  }
  assert_int_equal(tt, 15);
  catalogue_errors_free(&e);
  catalogue_free(c);
  free(text);
}

static void test_show(void **state) {
  (void)state;
  struct catalogue *c = rt_load(DEMO);
  struct catalogue_text t = {0};
  catalogue_show(c, 0, &t);
  assert_false(t.oom);
  assert_non_null(strstr(t.s, "catalogue " DEMO_VERSION));
  assert_non_null(strstr(t.s, "rules: 55 (学分认可型 credit_recognised 1, 证书认可型 "
                              "certificate_recognised 10, 课程重组型 course_restructured 1, "
                              "直通车式 through_train 15, 学历课程互认 course_transfer 28)"));
  assert_non_null(strstr(t.s, "middle 基准等级·中: academic 专科 · nvq 三级"));
  assert_null(strstr(t.s, "rule TT-05"));
  catalogue_text_free(&t);
  catalogue_show(c, 1, &t);
  assert_non_null(strstr(t.s, "rule TT-05\n  kind: through_train 直通车式\n"));
  assert_non_null(strstr(t.s, "  eligible_for: VQ-0202 数控铣工 三级\n"));
  assert_non_null(strstr(t.s, "  cap: 30.4 credits (at most 40% of 76)\n"));
  assert_non_null(strstr(t.s, "  exempts: VQ-0302 电工 三级 theory exam\n"));
  catalogue_text_free(&t);
  catalogue_free(c);
}

static void test_diff(void **state) {
  (void)state;
  size_t len;
  char *text = read_text(DEMO, &len);
  struct catalogue *a = NULL, *b = NULL;
  struct catalogue_errors e = {0};
  assert_int_equal(catalogue_load_buffer(text, len, &rt_crypto, &a, &e), 0);
  /* TT-05 ends earlier, SOU gains an alias, a transfer is withdrawn, a
   * course is added to a programme, a new rule appears */
  char *s1 = replace(text, "\"id\": \"TT-05\",\n      \"kind\": \"through_train\",\n      "
                           "\"valid_from\": \"2015-09-01\",\n      \"valid_to\": \"2030-12-31\"",
                     "\"id\": \"TT-05\",\n      \"kind\": \"through_train\",\n      "
                     "\"valid_from\": \"2015-09-01\",\n      \"valid_to\": \"2025-12-31\"");
  char *s2 = replace(s1, "\"aliases\": [\"10272\", \"SOU-01\"]", "\"aliases\": [\"10272\", \"SOU-01\", \"SOU-02\"]");
  const char *tr = strstr(s2, "    {\n      \"id\": \"TR-AMEVC-NJIVT-JX-04\"");
  assert_non_null(tr);
  const char *tr_end = strstr(tr, "\n    }");
  assert_non_null(tr_end);
  size_t cut0 = (size_t)(tr - s2) - 2, cut1 = (size_t)(tr_end - s2) + 6; /* with ",\n" before */
  char *s3 = malloc(strlen(s2) + 1);
  assert_non_null(s3);
  memcpy(s3, s2, cut0);
  strcpy(s3 + cut0, s2 + cut1);
  char *s4 = replace(s3, "{\"code\": \"SH-U-OU-JD-06\", \"name\": \"电机与电气控制\", \"credits\": \"4\"},",
                     "{\"code\": \"SH-U-OU-JD-06\", \"name\": \"电机与电气控制\", \"credits\": \"4\"},\n"
                     "        {\"code\": \"SH-U-OU-JD-07\", \"name\": \"PLC应用技术\", \"credits\": \"3\"},");
  char *s5 = replace(s4, "  \"rules\": [\n", "  \"rules\": [\n    {\"id\": \"CRT-SHOU-JD-09\", "
                     "\"kind\": \"certificate_recognised\", \"valid_from\": \"2026-01-01\", "
                     "\"certificate\": \"VQ-0301\", \"min_level\": \"三级\", \"target\": \"SH-U-OU/JD\", "
                     "\"grants\": [\"SH-U-OU-JD-07\"]},\n");
  if (catalogue_load_buffer(s5, strlen(s5), &rt_crypto, &b, &e) != 0) {
    for (size_t i = 0; i < e.nkept; i++) print_error("%s\n", e.lines[i]);
    fail_msg("modified demo does not load");
  }
  struct catalogue_text t = {0};
  size_t n = catalogue_diff(a, b, &t);
  print_message("%s", t.s);
  assert_int_equal(n, 5);
  const char *want[] = {
      "rules: ~ TT-05 valid: 2015-09-01 .. 2030-12-31 → 2015-09-01 .. 2025-12-31\n",
      "institutions: ~ SH-U-OU aliases: + SOU-02\n",
      "rules: - TR-AMEVC-NJIVT-JX-04 (kind: course_transfer 学历课程互认)\n",
      "programmes: ~ SH-U-OU/JD courses: + SH-U-OU-JD-07 PLC应用技术 3\n",
      "rules: + CRT-SHOU-JD-09 (kind: certificate_recognised 证书认可型)\n"};
  for (size_t i = 0; i < 5; i++)
    if (!strstr(t.s, want[i])) fail_msg("diff lacks: %s", want[i]);
  catalogue_text_free(&t);
  /* and back: the same changes the other way */
  assert_int_equal(catalogue_diff(b, a, &t), 5);
  assert_non_null(strstr(t.s, "institutions: ~ SH-U-OU aliases: - SOU-02\n"));
  catalogue_text_free(&t);
  catalogue_free(a);
  catalogue_free(b);
  catalogue_errors_free(&e);
  free(text);
  free(s1);
  free(s2);
  free(s3);
  free(s4);
  free(s5);
}

static void test_helpers(void **state) {
  (void)state;
  int64_t v;
  assert_int_equal(catalogue_parse_milli("2.5", 1000000, &v), 0);
  assert_int_equal(v, 2500);
  assert_int_equal(catalogue_parse_milli("0.125", 1000000, &v), 0);
  assert_int_equal(v, 125);
  assert_int_equal(catalogue_parse_milli("1000", 1000000, &v), 0);
  assert_int_equal(catalogue_parse_milli("1000.001", 1000000, &v), -1);
  const char *bad[] = {"", ".5", "5.", "1.2345", "-1", "+1", "1e3", " 1", "1 ", "0x10",
                       "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(catalogue_parse_milli(bad[i], INT64_MAX, &v), -1);
  char buf[32];
  catalogue_format_milli(30400, buf, sizeof buf);
  assert_string_equal(buf, "30.4");
  catalogue_format_milli(1, buf, sizeof buf);
  assert_string_equal(buf, "0.001");
  catalogue_format_milli(2000, buf, sizeof buf);
  assert_string_equal(buf, "2");
  int32_t d;
  assert_int_equal(catalogue_parse_date("2024-02-29", &d), 0);
  assert_int_equal(d, 20240229);
  assert_int_equal(catalogue_parse_date("2023-02-29", &d), -1);
  assert_int_equal(catalogue_parse_date("2100-01-01", &d), -1);
  assert_int_equal(catalogue_date_minus_years(20240229, 1), 20230228);
  assert_int_equal(catalogue_date_minus_years(20240229, 4), 20200229);
  assert_true(catalogue_text_ok("上海开放大学", 64, 0));
  assert_false(catalogue_text_ok("a\x7f", 64, 0));
  assert_false(catalogue_text_ok("a\xc2\x85", 64, 0)); /* C1 control NEL */
  assert_false(catalogue_text_ok("\xed\xa0\x80", 64, 0)); /* surrogate */
  assert_false(catalogue_text_ok("\xc0\xaf", 64, 0));    /* overlong */
  assert_false(catalogue_text_ok("", 64, 0));
  assert_true(catalogue_text_ok("", 64, 1));
  assert_int_equal(catalogue_rule_kind_parse("直通车式"), CATALOGUE_RULE_THROUGH_TRAIN);
  assert_int_equal(catalogue_rule_kind_parse("through_train"), CATALOGUE_RULE_THROUGH_TRAIN);
  assert_int_equal(catalogue_rule_kind_parse("train"), 0);
}

int main(void) {
  rt_init_crypto();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_error_named), cmocka_unit_test(test_every_error_at_once),
      cmocka_unit_test(test_syntax_and_shape), cmocka_unit_test(test_demo_loads),
      cmocka_unit_test(test_show),             cmocka_unit_test(test_diff),
      cmocka_unit_test(test_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
