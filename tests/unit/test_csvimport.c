/* Bulk-deposit CSV reader and validator (node/csvimport.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <iconv.h>

#include "csvimport.h"
#include "gen.h"

#define TODAY 20260315
#define HEADER                                                               \
  "id_number,name,kind,issuer,code,title,level,credits,score,awarded_on,"   \
  "depositor_role,depositor_code,depositor_name\n"
#define GOOD_TAIL ",course,SH-U-OU,SH-U-OU-JD-01,电子技术,,4,86,2019-01-15,outlet," \
                  "SH-U-OU,上海开放大学\n"

/* What the callback saw. */
struct seen {
  uint64_t line, index;
  int ok, code, column;
  char why[CSVIMPORT_WHY_MAX];
  struct csv_row row;
};

struct collect {
  struct seen *v;
  size_t n, cap;
  int stop_after; /* 0 = never */
};

static int collect_cb(void *ud, uint64_t line, uint64_t index,
                      const struct csv_row *row,
                      const struct csvimport_row_error *err) {
  struct collect *c = ud;
  assert_true((row == NULL) != (err == NULL));
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 16;
    c->v = realloc(c->v, c->cap * sizeof *c->v);
    assert_non_null(c->v);
  }
  struct seen *s = &c->v[c->n++];
  memset(s, 0, sizeof *s);
  s->line = line;
  s->index = index;
  s->ok = row != NULL;
  if (row) s->row = *row;
  else {
    s->code = err->code;
    s->column = err->column;
    snprintf(s->why, sizeof s->why, "%s", err->why);
  }
  return c->stop_after && c->n >= (size_t)c->stop_after;
}

static const struct csvimport_opts opts = {TODAY, CSVIMPORT_ENC_AUTO};

static int parse_str(const char *text, struct collect *c,
                     struct csvimport_summary *sum) {
  memset(c, 0, sizeof *c);
  return csvimport_buffer(text, strlen(text), &opts, collect_cb, c, sum);
}

static char *fixture(const char *name) {
  const char *top = getenv("CB_SOURCE_DIR");
  if (!top) fail_msg("CB_SOURCE_DIR is not set (run through ctest)");
  static char path[4096];
  snprintf(path, sizeof path, "%s/tests/fixtures/csv/%s", top, name);
  return path;
}

static void expect_contains(const char *hay, const char *needle) {
  if (!strstr(hay, needle)) fail_msg("'%s' does not contain '%s'", hay, needle);
}

static void test_quoting(void **st) {
  (void)st;
  struct collect c;
  struct csvimport_summary sum;
  const char *text =
      HEADER
      "11010519491231002X,\"张 伟\",academic_course,SH-U-OU,\"A,1\","
      "\"He said \"\"hi\"\", then left\",,\"2.50\",86,2019-01-15,,,\n";
  assert_int_equal(parse_str(text, &c, &sum), 0);
  assert_int_equal(c.n, 1);
  assert_true(c.v[0].ok);
  assert_string_equal(c.v[0].row.name, "张 伟");
  assert_string_equal(c.v[0].row.code, "A,1");
  assert_string_equal(c.v[0].row.title, "He said \"hi\", then left");
  assert_int_equal(c.v[0].row.credits_milli, 2500);
  assert_int_equal(c.v[0].row.depositor_role, CSVIMPORT_ROLE_UNSPECIFIED);
  assert_string_equal(c.v[0].row.depositor_code, "");
  free(c.v);
}

static void test_embedded_newlines(void **st) {
  (void)st;
  struct collect c;
  struct csvimport_summary sum;
  const char *text =
      HEADER                                                         /* 1 */
      "11010519491231002X,张伟,course,I,C1,\"电子\n技术\n（上）\",,4,86," /* 2-4 */
      "2019-01-15,,,\n"
      "11010519491231002X,张伟,course,I,C2,机械制造工艺,,4,86,2019-01-15,,,\n"
      "\n"                                                           /* 6 */
      "   \n"                                                        /* 7 */
      ",,,,,,,,,,,,\n"                                               /* 8 */
      "11010519491231002X,张伟,course,I,C3,\"a\"\"\nb\",,4,86,"         /* 9 */
      "2019-01-15,,,\n"
      "11010519491231002X,张伟,course,I,C4,x,,4,86,2019-01-15,,,";   /* 11 */
  assert_int_equal(parse_str(text, &c, &sum), 0);
  assert_int_equal(c.n, 4);
  assert_int_equal(sum.rows, 4);
  assert_int_equal(sum.valid, 4);
  assert_int_equal(c.v[0].line, 2);
  assert_int_equal(c.v[1].line, 5);
  assert_int_equal(c.v[2].line, 9);
  assert_int_equal(c.v[3].line, 11);
  for (size_t i = 0; i < 4; i++) assert_int_equal(c.v[i].index, i + 1);
  /* Line breaks inside a field are folded into one space. */
  assert_string_equal(c.v[0].row.title, "电子 技术 （上）");
  assert_string_equal(c.v[2].row.title, "a\" b");
  assert_int_equal(sum.lines, 11);
  free(c.v);
}

static void test_bom_crlf_fixture(void **st) {
  (void)st;
  struct collect c = {0};
  struct csvimport_summary sum;
  int rc = csvimport_file(fixture("bom_crlf.csv"), &opts, collect_cb, &c,
                          &sum);
  if (rc) fail_msg("%s", sum.error);
  assert_true(sum.had_bom);
  assert_int_equal(sum.encoding, CSVIMPORT_ENC_UTF8);
  assert_int_equal(c.n, 2);
  assert_true(c.v[0].ok && c.v[1].ok);
  assert_int_equal(c.v[0].line, 2);
  assert_int_equal(c.v[1].line, 5); /* after the 2-line row and a blank */
  assert_string_equal(c.v[0].row.id_number, "11010519491231002X");
  assert_string_equal(c.v[0].row.title, "电子技术 （上）");
  assert_string_equal(c.v[0].row.depositor_name, "上海开放大学");
  assert_string_equal(c.v[1].row.name, "李\"小\"娜");
  assert_string_equal(c.v[1].row.depositor_name,
                      "上海市职业技能鉴定中心, 徐汇");
  assert_int_equal(c.v[1].row.awarded_on, 20181120);
  assert_int_equal(c.v[1].row.kind, CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION);
  assert_int_equal(c.v[1].row.depositor_role,
                   CSVIMPORT_ROLE_APPRAISAL_CENTRE);
  free(c.v);
}

static void test_bom_and_crlf_in_memory(void **st) {
  (void)st;
  struct collect c;
  struct csvimport_summary sum;
  /* Without stripping, the BOM would make the first column unknown. */
  const char *text =
      "\xEF\xBB\xBFid_number,name,kind,issuer,code,title,credits,awarded_on"
      "\r\n11010519491231002X,张伟,course,I,C,T,1,2019-01-15\r\n";
  assert_int_equal(parse_str(text, &c, &sum), 0);
  assert_int_equal(c.n, 1);
  assert_true(c.v[0].ok);
  assert_int_equal(c.v[0].row.awarded_on, 20190115);
  assert_string_equal(c.v[0].row.title, "T");
  assert_true(sum.had_bom);
  free(c.v);
  /* A BOM followed by invalid UTF-8 is not taken for GB18030. */
  const char bad[] = "\xEF\xBB\xBFid_number\n\xB9\xFA\n";
  memset(&c, 0, sizeof c);
  assert_int_equal(
      csvimport_buffer(bad, sizeof bad - 1, &opts, collect_cb, &c, &sum),
      CSVIMPORT_EENCODING);
  expect_contains(sum.error, "UTF-8");
  expect_contains(sum.error, "line 2");
  assert_int_equal(c.n, 0);
}

static void test_gb18030_fixture(void **st) {
  (void)st;
  struct collect c = {0};
  struct csvimport_summary sum;
  int rc = csvimport_file(fixture("gb18030.csv"), &opts, collect_cb, &c,
                          &sum);
  if (rc) fail_msg("%s", sum.error);
  assert_int_equal(sum.encoding, CSVIMPORT_ENC_GB18030);
  assert_int_equal(c.n, 3);
  for (size_t i = 0; i < c.n; i++)
    if (!c.v[i].ok) fail_msg("row %zu: %s", i, c.v[i].why);
  /* 䶮 (U+4DAE) and 𠮷 (U+20BB7) are outside GBK: 4-byte GB18030. */
  assert_string_equal(c.v[0].row.name, "刘䶮");
  assert_string_equal(c.v[0].row.title, "数控铣工");
  assert_string_equal(c.v[0].row.level, "三级");
  assert_int_equal(c.v[0].row.kind, CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION);
  assert_string_equal(c.v[1].row.name, "𠮷田");
  assert_string_equal(c.v[1].row.title, "电子技术,实训");
  assert_int_equal(c.v[1].row.credits_milli, 4500);
  assert_int_equal(c.v[1].row.awarded_on, 20190115);
  assert_int_equal(c.v[2].row.awarded_on, 20210630);
  assert_int_equal(c.v[2].row.kind, CSVIMPORT_KIND_CULTURAL_LEISURE);
  /* Chinese header aliases; the depositor columns are absent. */
  assert_true(sum.columns[CSVIMPORT_COL_ID_NUMBER]);
  assert_true(sum.columns[CSVIMPORT_COL_AWARDED_ON]);
  assert_false(sum.columns[CSVIMPORT_COL_DEPOSITOR_ROLE]);
  assert_int_equal(c.v[2].line, 4);
  free(c.v);
  /* Forcing UTF-8 on it fails and says where. */
  struct csvimport_opts u8 = {TODAY, CSVIMPORT_ENC_UTF8};
  memset(&c, 0, sizeof c);
  assert_int_equal(csvimport_file(fixture("gb18030.csv"), &u8, collect_cb, &c,
                                  &sum),
                   CSVIMPORT_EENCODING);
  expect_contains(sum.error, "not valid UTF-8");
  expect_contains(sum.error, "line 1");
  assert_int_equal(c.n, 0);
}

static void test_stdin(void **st) {
  (void)st;
  /* "-" reads standard input (held in memory for the encoding check). */
  assert_non_null(freopen(fixture("gb18030.csv"), "rb", stdin));
  struct collect c = {0};
  struct csvimport_summary sum;
  int rc = csvimport_file("-", &opts, collect_cb, &c, &sum);
  if (rc) fail_msg("%s", sum.error);
  assert_int_equal(sum.encoding, CSVIMPORT_ENC_GB18030);
  assert_int_equal(sum.valid, 3);
  assert_string_equal(c.v[0].row.name, "刘䶮");
  free(c.v);
}

/* Converts UTF-8 text to GB18030 with iconv. */
static char *to_gb18030(const char *in, size_t inlen, size_t *outlen) {
  iconv_t cd = iconv_open("GB18030", "UTF-8");
  assert_true(cd != (iconv_t)-1);
  size_t cap = inlen * 2 + 16;
  char *out = malloc(cap), *ip = (char *)in, *op = out;
  size_t il = inlen, ol = cap;
  assert_non_null(out);
  assert_true(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
  iconv_close(cd);
  *outlen = cap - ol;
  return out;
}

static void test_gb18030_across_chunks(void **st) {
  (void)st;
  /* A few thousand generated rows (names with 䶮 among them) is several
   * 64 KiB chunks: multi-byte sequences get split at chunk boundaries. */
  char *u8 = NULL;
  size_t u8len = 0;
  FILE *m = open_memstream(&u8, &u8len);
  assert_int_equal(gen_write_csv(m, 7, 600, 5, "zj", GEN_CRLF), 0);
  fclose(m);
  size_t gblen;
  char *gb = to_gb18030(u8, u8len, &gblen);
  assert_true(gblen > 3 * 65536);
  struct collect a = {0}, b = {0};
  struct csvimport_summary sa, sb;
  assert_int_equal(csvimport_buffer(u8, u8len, &opts, collect_cb, &a, &sa), 0);
  int rc = csvimport_buffer(gb, gblen, &opts, collect_cb, &b, &sb);
  if (rc) fail_msg("%s", sb.error);
  assert_int_equal(sa.encoding, CSVIMPORT_ENC_UTF8);
  assert_int_equal(sb.encoding, CSVIMPORT_ENC_GB18030);
  assert_int_equal(a.n, 3000);
  assert_int_equal(b.n, 3000);
  assert_int_equal(sb.valid, 3000);
  int rare = 0;
  for (size_t i = 0; i < a.n; i++) {
    assert_true(a.v[i].ok && b.v[i].ok);
    assert_int_equal(a.v[i].line, b.v[i].line);
    unsigned char da[32], db[32];
    csvimport_row_digest(&a.v[i].row, da);
    csvimport_row_digest(&b.v[i].row, db);
    assert_memory_equal(da, db, 32);
    rare += strstr(b.v[i].row.name, "䶮") != NULL;
  }
  assert_true(rare > 0);
  free(a.v);
  free(b.v);
  free(gb);
  free(u8);
}

static void test_encoding_errors(void **st) {
  (void)st;
  struct collect c = {0};
  struct csvimport_summary sum;
  /* 0xFF is neither UTF-8 nor GB18030. */
  const char bad[] = HEADER "11010519491231002X,\xFF\xFF,course\n";
  assert_int_equal(
      csvimport_buffer(bad, sizeof bad - 1, &opts, collect_cb, &c, &sum),
      CSVIMPORT_EENCODING);
  expect_contains(sum.error, "not UTF-8");
  expect_contains(sum.error, "not GB18030");
  expect_contains(sum.error, "line 2");
  assert_int_equal(c.n, 0);
  /* A GB18030 lead byte cut off by the end of the file. */
  const char cut[] = HEADER "11010519491231002X,\xB9";
  assert_int_equal(
      csvimport_buffer(cut, sizeof cut - 1, &opts, collect_cb, &c, &sum),
      CSVIMPORT_EENCODING);
  expect_contains(sum.error, "incomplete");
  /* UTF-16 is refused with advice. */
  const char u16[] = "\xFF\xFEi\0d\0";
  assert_int_equal(
      csvimport_buffer(u16, sizeof u16 - 1, &opts, collect_cb, &c, &sum),
      CSVIMPORT_EENCODING);
  expect_contains(sum.error, "UTF-16");
  /* Overlong UTF-8 and a surrogate are not UTF-8 (nor GB18030 here). */
  struct csvimport_opts u8 = {TODAY, CSVIMPORT_ENC_UTF8};
  const char ovl[] = "id\xC0\xAF\n";
  assert_int_equal(
      csvimport_buffer(ovl, sizeof ovl - 1, &u8, collect_cb, &c, &sum),
      CSVIMPORT_EENCODING);
  expect_contains(sum.error, "offset 2, line 1");
  const char sur[] = "id\xED\xA0\x80\n";
  assert_int_equal(
      csvimport_buffer(sur, sizeof sur - 1, &u8, collect_cb, &c, &sum),
      CSVIMPORT_EENCODING);
  assert_int_equal(c.n, 0);
}

static void test_empty_and_header_only(void **st) {
  (void)st;
  struct collect c = {0};
  struct csvimport_summary sum;
  assert_int_equal(
      csvimport_file(fixture("empty.csv"), &opts, collect_cb, &c, &sum),
      CSVIMPORT_EEMPTY);
  expect_contains(sum.error, "empty");
  assert_int_equal(csvimport_buffer("", 0, &opts, collect_cb, &c, &sum),
                   CSVIMPORT_EEMPTY);
  assert_int_equal(csvimport_buffer("\xEF\xBB\xBF", 3, &opts, collect_cb, &c,
                                    &sum),
                   CSVIMPORT_EEMPTY);
  assert_int_equal(parse_str("\n\r\n  \n", &c, &sum), CSVIMPORT_EEMPTY);
  expect_contains(sum.error, "no header");
  memset(&c, 0, sizeof c);
  assert_int_equal(
      csvimport_file(fixture("header_only.csv"), &opts, collect_cb, &c, &sum),
      CSVIMPORT_ENODATA);
  expect_contains(sum.error, "no data rows");
  assert_int_equal(c.n, 0);
  assert_int_equal(csvimport_file("/nonexistent/x.csv", &opts, collect_cb, &c,
                                  &sum),
                   CSVIMPORT_EIO);
  expect_contains(sum.error, "/nonexistent/x.csv");
}

static void test_header_mismatch(void **st) {
  (void)st;
  struct collect c;
  struct csvimport_summary sum;
  assert_int_equal(
      parse_str("id_number,name,kind,issuer,code,title,awarded_on\n"
                "11010519491231002X,张伟,course,I,C,T,2019-01-15\n",
                &c, &sum),
      CSVIMPORT_EHEADER);
  expect_contains(sum.error, "missing required column 'credits'");
  assert_int_equal(c.n, 0);
  assert_int_equal(
      parse_str("id_number,name,kind,issuer,code,title,credits,grade,"
                "awarded_on\n",
                &c, &sum),
      CSVIMPORT_EHEADER);
  expect_contains(sum.error, "unknown column 'grade' (column 8)");
  assert_int_equal(
      parse_str("id_number,name,kind,issuer,code,title,credits,kind,"
                "awarded_on\n",
                &c, &sum),
      CSVIMPORT_EHEADER);
  expect_contains(sum.error, "'kind' appears twice (columns 3 and 8)");
  /* An alias and its English name are the same column. */
  assert_int_equal(parse_str("身份证号,姓名,成果类型,issuer,code,title,credits,"
                             "awarded_on,类型\n",
                             &c, &sum),
                   CSVIMPORT_EHEADER);
  expect_contains(sum.error, "'kind' appears twice");
  assert_int_equal(
      parse_str("id_number,name,,issuer,code,title,credits,awarded_on\n", &c,
                &sum),
      CSVIMPORT_EHEADER);
  expect_contains(sum.error, "column 3 has no name");
  /* Case and surrounding blanks in header names do not matter. */
  assert_int_equal(parse_str(" ID_Number ,Name,KIND,Issuer,Code,Title,"
                             "Credits,Awarded-On\n"
                             "11010519491231002X,张伟,course,I,C,T,1,"
                             "2019-01-15\n",
                             &c, &sum),
                   0);
  assert_int_equal(sum.valid, 1);
  free(c.v);
}

struct bad_case {
  const char *row;
  int code, column;
  const char *why;
};

static void test_every_bad_field(void **st) {
  (void)st;
  const struct bad_case cases[] = {
      {"11010519491231002X,张伟,course,I,C,T,,4,86,2019-01-15,,,,extra",
       CSVIMPORT_ROW_EFIELDCOUNT, -1, "row has 14 fields, the header has 13"},
      {"11010519491231002X,张伟,course,I,C,T", CSVIMPORT_ROW_EFIELDCOUNT, -1,
       "row has 6 fields"},
      {"11010519491231002X,,course,I,C,T,,4,86,2019-01-15,,,",
       CSVIMPORT_ROW_EREQUIRED, CSVIMPORT_COL_NAME, "name: required"},
      {"11010519491231002X,张伟,course,I,\"  \",T,,4,86,2019-01-15,,,",
       CSVIMPORT_ROW_EREQUIRED, CSVIMPORT_COL_CODE, "code: required"},
      {"110105194912310021,张伟,course,I,C,T,,4,86,2019-01-15,,,",
       CSVIMPORT_ROW_EIDNUMBER, CSVIMPORT_COL_ID_NUMBER,
       "id_number: check character is '1', expected 'X'"},
      {"110105491231002,张伟,course,I,C,T,,4,86,2019-01-15,,,",
       CSVIMPORT_ROW_EIDNUMBER, CSVIMPORT_COL_ID_NUMBER, "15-digit"},
      {"11010519491231002X,张伟,degree,I,C,T,,4,86,2019-01-15,,,",
       CSVIMPORT_ROW_EKIND, CSVIMPORT_COL_KIND, "unknown kind 'degree'"},
      {"11010519491231002X,张伟,course,I,C,T,,-1,86,2019-01-15,,,",
       CSVIMPORT_ROW_ECREDITS, CSVIMPORT_COL_CREDITS, "'-1'"},
      {"11010519491231002X,张伟,course,I,C,T,,1.2345,86,2019-01-15,,,",
       CSVIMPORT_ROW_ECREDITS, CSVIMPORT_COL_CREDITS, "at most 3 decimals"},
      {"11010519491231002X,张伟,course,I,C,T,,1e3,86,2019-01-15,,,",
       CSVIMPORT_ROW_ECREDITS, CSVIMPORT_COL_CREDITS, "'1e3'"},
      {"11010519491231002X,张伟,course,I,C,T,,1000.001,86,2019-01-15,,,",
       CSVIMPORT_ROW_ECREDITS, CSVIMPORT_COL_CREDITS, "'1000.001'"},
      {"11010519491231002X,张伟,course,I,C,T,,4,86,2019-02-29,,,",
       CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON, "not a real date"},
      {"11010519491231002X,张伟,course,I,C,T,,4,86,2026-03-16,,,",
       CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON, "in the future"},
      {"11010519491231002X,张伟,course,I,C,T,,4,86,1949-12-30,,,",
       CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON, "before the learner's"},
      {"11010519491231002X,张伟,course,I,C,T,,4,86,2019-1-15x,,,",
       CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON, "'2019-1-15x'"},
      {"11010519491231002X,张伟,course,I,C,T,,4,86,2019-01-15,teacher,,",
       CSVIMPORT_ROW_EROLE, CSVIMPORT_COL_DEPOSITOR_ROLE,
       "unknown role 'teacher'"},
      {"11010519491231002X,张\x01伟,course,I,C,T,,4,86,2019-01-15,,,",
       CSVIMPORT_ROW_ETEXT, CSVIMPORT_COL_NAME, "control character U+0001"},
      {"11010519491231002X,张伟,course,I,C,T\xC2\x85,,4,86,2019-01-15,,,",
       CSVIMPORT_ROW_ETEXT, CSVIMPORT_COL_TITLE, "U+0085"},
      {"11010519491231002X,张伟,course,"
       "IIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIII,C,T,"
       ",4,86,2019-01-15,,,",
       CSVIMPORT_ROW_ETOOLONG, CSVIMPORT_COL_ISSUER,
       "issuer: 65 bytes, at most 64"},
      {"11010519491231002X,张伟,course,I,C,T,,4,86,2019-01-15,outlet,O,"
       "一二三四五六七八九十一二三四五六七八九十一二"
       "三四五六七八九十一二三四五六七八九十一二三",
       CSVIMPORT_ROW_ETOOLONG, CSVIMPORT_COL_DEPOSITOR_NAME,
       "depositor_name: 129 bytes, at most 128"},
  };
  size_t n = sizeof cases / sizeof cases[0];
  /* One file: a valid row first, then each bad row, each on its own line. */
  char *text = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&text, &len);
  fputs(HEADER, m);
  fputs("11010519491231002X,张伟" GOOD_TAIL, m);
  for (size_t i = 0; i < n; i++) fprintf(m, "%s\n", cases[i].row);
  fclose(m);
  struct collect c;
  struct csvimport_summary sum;
  assert_int_equal(parse_str(text, &c, &sum), 0);
  assert_int_equal(c.n, n + 1);
  assert_int_equal(sum.valid, 1);
  assert_int_equal(sum.invalid, n);
  assert_true(c.v[0].ok);
  for (size_t i = 0; i < n; i++) {
    struct seen *s = &c.v[i + 1];
    if (s->ok) fail_msg("case %zu accepted: %s", i, cases[i].row);
    assert_int_equal(s->line, i + 3);
    if (s->code != cases[i].code || s->column != cases[i].column)
      fail_msg("case %zu: code %d column %d (%s), want %d %d", i, s->code,
               s->column, s->why, cases[i].code, cases[i].column);
    expect_contains(s->why, cases[i].why);
  }
  free(c.v);
  free(text);
}

static void test_dates_without_today(void **st) {
  (void)st;
  struct collect c = {0};
  struct csvimport_summary sum;
  const char *text = HEADER
      "11010519491231002X,张伟,course,I,C,T,,4,86,2030-01-01,,,\n"
      "11010519491231002X,张伟,course,I,C,T,,4,86,2100-01-01,,,\n";
  /* No today: only the schema's 2099 limit applies. */
  assert_int_equal(
      csvimport_buffer(text, strlen(text), NULL, collect_cb, &c, &sum), 0);
  assert_int_equal(c.n, 2);
  assert_true(c.v[0].ok);
  assert_false(c.v[1].ok);
  expect_contains(c.v[1].why, "after 2099-12-31");
  free(c.v);
}

static void test_several_errors_in_one_row(void **st) {
  (void)st;
  struct collect c;
  struct csvimport_summary sum;
  assert_int_equal(
      parse_str(HEADER "110105194912310021,张伟,degree,I,C,T,,x,86,20190230,,,\n",
                &c, &sum),
      0);
  assert_int_equal(c.n, 1);
  assert_false(c.v[0].ok);
  assert_int_equal(c.v[0].code, CSVIMPORT_ROW_EIDNUMBER);
  expect_contains(c.v[0].why, "id_number:");
  expect_contains(c.v[0].why, "; kind: unknown kind 'degree'");
  expect_contains(c.v[0].why, "; credits: 'x'");
  expect_contains(c.v[0].why, "; awarded_on: '20190230'");
  free(c.v);
}

static void test_field_too_long_and_malformed(void **st) {
  (void)st;
  struct collect c = {0};
  struct csvimport_summary sum;
  /* A row-level limit: title 257 bytes. */
  char title[258];
  memset(title, 'T', 257);
  title[257] = '\0';
  char row[1024];
  snprintf(row, sizeof row,
           HEADER "11010519491231002X,张伟,course,I,C,%s,,4,86,2019-01-15,,,\n",
           title);
  assert_int_equal(parse_str(row, &c, &sum), 0);
  assert_int_equal(c.v[0].code, CSVIMPORT_ROW_ETOOLONG);
  expect_contains(c.v[0].why, "title: 257 bytes, at most 256");
  free(c.v);
  /* A file-level limit: one field over CSVIMPORT_MAX_FIELD_BYTES. */
  size_t big = CSVIMPORT_MAX_FIELD_BYTES * 4;
  char *text = malloc(big + 256);
  int k = snprintf(text, 256, HEADER "11010519491231002X,\"");
  memset(text + k, 'x', big);
  strcpy(text + k + big, "\",course\n");
  assert_int_equal(parse_str(text, &c, &sum), CSVIMPORT_ETOOBIG);
  expect_contains(sum.error, "line 2");
  free(text);
  free(c.v);
  /* An unclosed quote swallowing the rest of the file. */
  assert_int_equal(parse_str(HEADER "11010519491231002X,\"张伟,course\n\n",
                             &c, &sum),
                   CSVIMPORT_EPARSE);
  expect_contains(sum.error, "unterminated quoted field in the row starting "
                             "at line 2");
  free(c.v);
  /* A quote inside an unquoted field, and text after a closing quote. */
  assert_int_equal(parse_str(HEADER HEADER "1101,张\"伟,x\n", &c, &sum),
                   CSVIMPORT_EPARSE);
  expect_contains(sum.error, "line 3");
  free(c.v);
  assert_int_equal(parse_str(HEADER "\"1101\"x,张伟\n", &c, &sum),
                   CSVIMPORT_EPARSE);
  expect_contains(sum.error, "line 2");
  free(c.v);
}

static void test_stop_and_args(void **st) {
  (void)st;
  struct collect c = {0};
  struct csvimport_summary sum;
  c.stop_after = 1;
  const char *text = HEADER "11010519491231002X,张伟" GOOD_TAIL
                            "11010519491231002X,张伟" GOOD_TAIL;
  assert_int_equal(
      csvimport_buffer(text, strlen(text), &opts, collect_cb, &c, &sum),
      CSVIMPORT_ESTOPPED);
  assert_int_equal(c.n, 1);
  free(c.v);
  assert_int_equal(csvimport_buffer(text, strlen(text), NULL, NULL, NULL, NULL),
                   CSVIMPORT_EINVAL);
  /* No callback, no options: still validates and counts. */
  assert_int_equal(csvimport_buffer(text, strlen(text), NULL, NULL, NULL, &sum),
                   0);
  assert_int_equal(sum.valid, 2);
  struct csvimport_opts bad = {0, 9};
  assert_int_equal(csvimport_buffer(text, strlen(text), &bad, NULL, NULL, &sum),
                   CSVIMPORT_EINVAL);
  assert_string_equal(csvimport_strerror(CSVIMPORT_EHEADER),
                      "the header does not match the template");
  assert_string_equal(csvimport_row_strerror(CSVIMPORT_ROW_ECREDITS),
                      "invalid credits");
  assert_string_equal(csvimport_column_name(CSVIMPORT_COL_AWARDED_ON),
                      "awarded_on");
}

static void test_parsers(void **st) {
  (void)st;
  int64_t m;
  assert_int_equal(csvimport_parse_credits("3", &m), 0);
  assert_int_equal(m, 3000);
  assert_int_equal(csvimport_parse_credits("0.125", &m), 0);
  assert_int_equal(m, 125);
  assert_int_equal(csvimport_parse_credits("2.5", &m), 0);
  assert_int_equal(m, 2500);
  assert_int_equal(csvimport_parse_credits("0", &m), 0);
  assert_int_equal(m, 0);
  assert_int_equal(csvimport_parse_credits("1000", &m), 0);
  assert_int_equal(m, 1000000);
  const char *bad[] = {"", "+1", "-0", ".5", "5.", "1.0000", "1,5", "1 ",
                       "99999999999999999999", "1001", "0x10", "NaN"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (csvimport_parse_credits(bad[i], &m) == 0)
      fail_msg("credits '%s' accepted", bad[i]);
  int32_t d;
  assert_int_equal(csvimport_parse_date("2019-01-15", &d), 0);
  assert_int_equal(d, 20190115);
  assert_int_equal(csvimport_parse_date("2019/1/5", &d), 0);
  assert_int_equal(d, 20190105);
  assert_int_equal(csvimport_parse_date("20000229", &d), 0);
  assert_int_equal(csvimport_parse_date("2021年6月30日", &d), 0);
  assert_int_equal(d, 20210630);
  const char *bdates[] = {"2019-01-15 ", "2019-1/5", "19-01-15", "20190230",
                          "2019-13-01", "2019-00-10", "2019-01-32",
                          "2019011", "201901155", "2019-001-05", ""};
  for (size_t i = 0; i < sizeof bdates / sizeof bdates[0]; i++)
    if (csvimport_parse_date(bdates[i], &d) == 0)
      fail_msg("date '%s' accepted", bdates[i]);
}

static void test_reimport_same_digests(void **st) {
  (void)st;
  struct collect a = {0}, b = {0};
  struct csvimport_summary sa, sb;
  char ex[4096];
  const char *top = getenv("CB_SOURCE_DIR");
  if (!top) fail_msg("CB_SOURCE_DIR is not set");
  snprintf(ex, sizeof ex, "%s/deploy/example-import.csv", top);
  assert_int_equal(csvimport_file(ex, &opts, collect_cb, &a, &sa), 0);
  assert_int_equal(csvimport_file(ex, &opts, collect_cb, &b, &sb), 0);
  /* The shipped example is entirely valid. */
  assert_int_equal(sa.invalid, 0);
  assert_true(sa.valid >= 12);
  for (size_t i = 0; i < a.n; i++) {
    unsigned char da[32], db[32];
    csvimport_row_digest(&a.v[i].row, da);
    csvimport_row_digest(&b.v[i].row, db);
    assert_memory_equal(da, db, 32);
    /* and distinct rows have distinct digests */
    for (size_t j = 0; j < i; j++) {
      unsigned char dj[32];
      csvimport_row_digest(&a.v[j].row, dj);
      assert_memory_not_equal(da, dj, 32);
    }
  }
  free(a.v);
  free(b.v);
}

struct count {
  uint64_t valid, invalid, kinds[6];
};

static int count_cb(void *ud, uint64_t line, uint64_t index,
                    const struct csv_row *row,
                    const struct csvimport_row_error *err) {
  struct count *c = ud;
  if (row) {
    c->valid++;
    c->kinds[row->kind]++;
  } else {
    c->invalid++;
    fprintf(stderr, "line %llu: %s\n", (unsigned long long)line, err->why);
  }
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_100k_rows(void **st) {
  (void)st;
  char path[] = "/tmp/cb-csvimport-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  double t0 = now_s();
  assert_int_equal(gen_write_csv(f, 2026, 20000, 5, "sh", GEN_BOM), 0);
  assert_int_equal(fclose(f), 0);
  double t1 = now_s();
  struct count c = {0};
  struct csvimport_summary sum;
  int rc = csvimport_file(path, &opts, count_cb, &c, &sum);
  double t2 = now_s();
  unlink(path);
  if (rc) fail_msg("%s", sum.error);
  assert_int_equal(sum.rows, 100000);
  assert_int_equal(c.valid, 100000);
  assert_int_equal(c.invalid, 0);
  for (int k = 1; k <= 5; k++) assert_true(c.kinds[k] >= 20000);
  printf("# 100,000 rows (%.1f MB): generated in %.2f s, validated in %.2f s "
         "(%.0f rows/s)\n",
         (double)sum.bytes / 1e6, t1 - t0, t2 - t1,
         100000.0 / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quoting),
      cmocka_unit_test(test_embedded_newlines),
      cmocka_unit_test(test_bom_crlf_fixture),
      cmocka_unit_test(test_bom_and_crlf_in_memory),
      cmocka_unit_test(test_gb18030_fixture),
      cmocka_unit_test(test_gb18030_across_chunks),
      cmocka_unit_test(test_stdin),
      cmocka_unit_test(test_encoding_errors),
      cmocka_unit_test(test_empty_and_header_only),
      cmocka_unit_test(test_header_mismatch),
      cmocka_unit_test(test_every_bad_field),
      cmocka_unit_test(test_dates_without_today),
      cmocka_unit_test(test_several_errors_in_one_row),
      cmocka_unit_test(test_field_too_long_and_malformed),
      cmocka_unit_test(test_stop_and_args),
      cmocka_unit_test(test_parsers),
      cmocka_unit_test(test_reimport_same_digests),
      cmocka_unit_test(test_100k_rows),
  };
  return cmocka_run_group_tests_name("csvimport", tests, NULL, NULL);
}
