/* GB 11643 ID validation and learner_ref derivation (node/idcard.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "idcard.h"

#define TODAY 20260315

/* Independent check-character computation: weights as 2^(17-i) mod 11
 * computed by a loop, check value (12 - sum mod 11) mod 11 with 10 = X. */
static char ref_check(const char *s) {
  int sum = 0;
  for (int i = 0; i < 17; i++) {
    int w = 1;
    for (int k = 0; k < 17 - i; k++) w = w * 2 % 11;
    sum += (s[i] - '0') * w;
  }
  int r = (12 - sum % 11) % 11;
  return r == 10 ? 'X' : (char)('0' + r);
}

static void expect_valid(const char *in, const char *norm) {
  char out[IDCARD_BUFSZ], why[128];
  int rc = idcard_validate(in, TODAY, out, why, sizeof why);
  if (rc != 0) fail_msg("'%s' refused: %s", in, why);
  assert_string_equal(out, norm);
}

static void expect_invalid(const char *in, int err, const char *why_part) {
  char out[IDCARD_BUFSZ] = "junk", why[256];
  int rc = idcard_validate(in, TODAY, out, why, sizeof why);
  if (rc != err)
    fail_msg("'%s': got %d (%s), want %d", in, rc, why, err);
  assert_string_equal(out, "");
  if (why_part && !strstr(why, why_part))
    fail_msg("'%s': reason '%s' lacks '%s'", in, why, why_part);
}

static void test_valid_numbers(void **st) {
  (void)st;
  /* The standard's own example, ending in X. */
  expect_valid("11010519491231002X", "11010519491231002X");
  expect_valid("31010419900307123X", "31010419900307123X");
  expect_valid("320106198508150013", "320106198508150013");
  /* Feb 29 in a leap year (2000 is one: divisible by 400). */
  expect_valid("340102200002290041", "340102200002290041");
  expect_valid("330106196001010006", "330106196001010006");
  /* Hong Kong resident (province-level code, rest 0000). */
  expect_valid("810000199505050022", "810000199505050022");
  /* County-level division directly under the province (prefecture 90). */
  expect_valid("659001197201010123", "659001197201010123");
  /* Surrounding blanks are ignored, as pasted. */
  expect_valid("  11010519491231002X\r\n", "11010519491231002X");
}

static void test_lowercase_x_normalised(void **st) {
  (void)st;
  expect_valid("11010519491231002x", "11010519491231002X");
}

static void test_check_char_cross_checked(void **st) {
  (void)st;
  const char *nums[] = {"11010519491231002X", "31010419900307123X",
                        "320106198508150013", "340102200002290041",
                        "440524188001010014"};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    assert_int_equal(idcard_check_char(nums[i]), nums[i][17]);
    assert_int_equal(ref_check(nums[i]), nums[i][17]);
  }
  /* Every residue: sweep the sequence digits of one prefix. */
  char s[18] = "3101151988070100";
  int seen[11] = {0};
  for (int d = 0; d < 100; d++) {
    s[15] = (char)('0' + d / 10);
    s[16] = (char)('0' + d % 10);
    char c = idcard_check_char(s);
    assert_int_equal(c, ref_check(s));
    seen[c == 'X' ? 10 : c - '0'] = 1;
  }
  for (int i = 0; i < 11; i++) assert_true(seen[i]);
  assert_int_equal(idcard_check_char("3101151988070100a"), 0);
}

static void test_length(void **st) {
  (void)st;
  expect_invalid("11010519491231002", IDCARD_ELENGTH, "17 characters");
  expect_invalid("11010519491231002X1", IDCARD_ELENGTH, "19 characters");
  expect_invalid("", IDCARD_ELENGTH, "empty");
  expect_invalid("   ", IDCARD_ELENGTH, "empty");
  expect_invalid("110105491231002", IDCARD_EOLDFORMAT, "15-digit");
}

static void test_charset(void **st) {
  (void)st;
  expect_invalid("1101051949123100AX", IDCARD_ECHARSET, "position 17");
  expect_invalid("11010519491231X02X", IDCARD_ECHARSET, "18th");
  expect_invalid("110105 19491231002X", IDCARD_ECHARSET, "whitespace");
  expect_invalid("110105\t19491231002X", IDCARD_ECHARSET, "whitespace");
  /* Full-width digit one (U+FF11). */
  expect_invalid("\xef\xbc\x91" "1010519491231002X", IDCARD_ECHARSET,
                 "non-ASCII");
  expect_invalid("11010519491231002-", IDCARD_ECHARSET, "position 18");
}

static void test_region(void **st) {
  (void)st;
  /* Province 99 and 00 do not exist; 16, 24, 47, 55, 66, 72 neither. */
  char s[IDCARD_BUFSZ];
  const char *bad[] = {"99", "00", "16", "24", "38", "47", "55", "66", "72",
                       "80", "84", "91"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(s, sizeof s, "%s0105194912310020", bad[i]);
    s[17] = ref_check(s);
    s[18] = '\0';
    expect_invalid(s, IDCARD_EREGION, "province-level");
  }
  /* Prefecture digits 00 and 80 are never used on the mainland. */
  strcpy(s, "31000019900307123");
  s[17] = ref_check(s);
  s[18] = '\0';
  expect_invalid(s, IDCARD_EREGION, "prefecture digits 00");
  strcpy(s, "31800119900307123");
  s[17] = ref_check(s);
  s[18] = '\0';
  expect_invalid(s, IDCARD_EREGION, "prefecture digits 80");
  /* Hong Kong with a county part. */
  strcpy(s, "81010119950505002");
  s[17] = ref_check(s);
  s[18] = '\0';
  expect_invalid(s, IDCARD_EREGION, "0000");
  /* An abolished county (310103, 卢湾区, merged 2011) stays valid. */
  strcpy(s, "31010319800101002");
  s[17] = ref_check(s);
  s[18] = '\0';
  expect_valid(s, s);
}

static void with_birth(char s[IDCARD_BUFSZ], const char *yyyymmdd) {
  memcpy(s, "310104", 6);
  memcpy(s + 6, yyyymmdd, 8);
  memcpy(s + 14, "123", 3);
  s[17] = ref_check(s);
  s[18] = '\0';
}

static void test_birthdate(void **st) {
  (void)st;
  char s[IDCARD_BUFSZ];
  with_birth(s, "19900230");
  expect_invalid(s, IDCARD_EBIRTHDATE, "19900230 is not a real date");
  with_birth(s, "19990229"); /* 1999 not a leap year */
  expect_invalid(s, IDCARD_EBIRTHDATE, "not a real date");
  with_birth(s, "19000229"); /* 1900 not a leap year (century) */
  expect_invalid(s, IDCARD_EBIRTHDATE, "not a real date");
  with_birth(s, "19901301");
  expect_invalid(s, IDCARD_EBIRTHDATE, "not a real date");
  with_birth(s, "19900400");
  expect_invalid(s, IDCARD_EBIRTHDATE, "not a real date");
  with_birth(s, "19900431");
  expect_invalid(s, IDCARD_EBIRTHDATE, "not a real date");
  with_birth(s, "18991231");
  expect_invalid(s, IDCARD_EBIRTHDATE, "before 1900");
  expect_invalid("440524188001010014", IDCARD_EBIRTHDATE, "before 1900");
  with_birth(s, "20260316"); /* the day after TODAY */
  expect_invalid(s, IDCARD_EBIRTHDATE, "future");
  /* Today itself is fine, and 0 skips the future check. */
  with_birth(s, "20260315");
  expect_valid(s, s);
  with_birth(s, "20990101");
  char out[IDCARD_BUFSZ];
  assert_int_equal(idcard_validate(s, 0, out, NULL, 0), IDCARD_OK);
  with_birth(s, "19960229");
  expect_valid(s, s);
}

static void test_checksum(void **st) {
  (void)st;
  expect_invalid("110105194912310021", IDCARD_ECHECKSUM, "expected 'X'");
  expect_invalid("320106198508150012", IDCARD_ECHECKSUM,
                 "check character is '2', expected '3'");
  /* A single transposition of two digits is caught. */
  expect_invalid("320160198508150013", IDCARD_ECHECKSUM, NULL);
}

static void test_null_and_strerror(void **st) {
  (void)st;
  assert_int_equal(idcard_validate(NULL, 0, NULL, NULL, 0), IDCARD_EINVAL);
  /* NULL out and why are allowed. */
  assert_int_equal(idcard_validate("11010519491231002X", 0, NULL, NULL, 0), 0);
  assert_string_equal(idcard_strerror(IDCARD_ECHECKSUM),
                      "check character does not match");
  assert_string_equal(idcard_strerror(12345), "unknown error");
  /* A tiny why buffer is truncated, never overrun. */
  char why[8];
  assert_int_equal(idcard_validate("1", 0, NULL, why, sizeof why),
                   IDCARD_ELENGTH);
  assert_int_equal(strlen(why), 7);
}

static void test_dates(void **st) {
  (void)st;
  assert_true(idcard_date_is_real(20000229));
  assert_false(idcard_date_is_real(21000229));
  assert_false(idcard_date_is_real(20241232));
  assert_false(idcard_date_is_real(0));
  assert_false(idcard_date_is_real(-20240101));
  /* 2026-03-14T16:00:00Z is 2026-03-15 00:00 in Beijing. */
  assert_int_equal(idcard_yyyymmdd_from_unix(1773504000), 20260315);
  assert_int_equal(idcard_yyyymmdd_from_unix(1773504000 - 1), 20260314);
  assert_int_equal(idcard_yyyymmdd_from_unix(0), 19700101);
  assert_int_equal(idcard_yyyymmdd_from_unix(-8 * 3600 - 1), 19691231);
  assert_int_equal(idcard_yyyymmdd_from_unix(951782400), 20000229);
}

static void test_learner_ref(void **st) {
  (void)st;
  static const unsigned char key[] = "yrd-federation-test-key-0001";
  size_t keylen = sizeof key - 1;
  unsigned char ref[IDCARD_REF_LEN], want[EVP_MAX_MD_SIZE];
  unsigned int wantlen = 0;
  assert_int_equal(
      idcard_learner_ref(key, keylen, "11010519491231002X", ref), 0);
  /* Known value (computed with Python's hmac module). */
  static const unsigned char known[32] = {
      0x27, 0xfd, 0xd3, 0x8c, 0x5c, 0xef, 0xb8, 0x63, 0xec, 0x62, 0x66,
      0x6e, 0xfc, 0x4c, 0xb6, 0xe9, 0x69, 0xe1, 0x47, 0xe9, 0xfd, 0xd2,
      0xf2, 0xbc, 0x20, 0x0b, 0xa6, 0xb1, 0x0c, 0x53, 0x63, 0x53};
  assert_memory_equal(ref, known, 32);
  /* And with OpenSSL's one-shot HMAC on another number. */
  assert_int_equal(
      idcard_learner_ref(key, keylen, "320106198508150013", ref), 0);
  assert_non_null(HMAC(EVP_sha256(), key, (int)keylen,
                       (const unsigned char *)"320106198508150013", 18, want,
                       &wantlen));
  assert_int_equal(wantlen, 32);
  assert_memory_equal(ref, want, 32);
  /* Lower-case x is not normalised: refused, so one person cannot get two
   * refs. Invalid numbers and empty keys are refused too. */
  assert_int_equal(idcard_learner_ref(key, keylen, "11010519491231002x", ref),
                   IDCARD_EINVAL);
  assert_int_equal(idcard_learner_ref(key, keylen, "110105194912310021", ref),
                   IDCARD_EINVAL);
  assert_int_equal(idcard_learner_ref(key, 0, "11010519491231002X", ref),
                   IDCARD_EINVAL);
  assert_int_equal(idcard_learner_ref(NULL, 4, "11010519491231002X", ref),
                   IDCARD_EINVAL);
  /* A different key gives a different ref. */
  unsigned char ref2[IDCARD_REF_LEN];
  assert_int_equal(idcard_learner_ref((const unsigned char *)"other", 5,
                                      "11010519491231002X", ref2),
                   0);
  assert_memory_not_equal(ref2, known, 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_numbers),
      cmocka_unit_test(test_lowercase_x_normalised),
      cmocka_unit_test(test_check_char_cross_checked),
      cmocka_unit_test(test_length),
      cmocka_unit_test(test_charset),
      cmocka_unit_test(test_region),
      cmocka_unit_test(test_birthdate),
      cmocka_unit_test(test_checksum),
      cmocka_unit_test(test_null_and_strerror),
      cmocka_unit_test(test_dates),
      cmocka_unit_test(test_learner_ref),
  };
  return cmocka_run_group_tests_name("idcard", tests, NULL, NULL);
}
