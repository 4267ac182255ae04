/* GB 11643-1999 citizen ID numbers; see idcard.h and spec/idcard.md. */
#include "idcard.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

const char *idcard_strerror(int err) {
  switch (err) {
#define IDCARD_STR_(name, val, str) \
  case name:                        \
    return str;
    IDCARD_ERRORS(IDCARD_STR_)
#undef IDCARD_STR_
  }
  return "unknown error";
}

static int fail(int err, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int err, char *why, size_t whylen, const char *fmt, ...) {
  if (why && whylen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
  }
  return err;
}

static int is_blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
         c == '\f';
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int two(const char *p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

char idcard_check_char(const char first17[17]) {
  /* ISO 7064 MOD 11-2: weight of position i (1-based from the left) is
   * 2^(18-i) mod 11. */
  static const int weight[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6,
                                 3, 7, 9, 10, 5, 8, 4, 2};
  static const char check[11] = {'1', '0', 'X', '9', '8', '7',
                                 '6', '5', '4', '3', '2'};
  int sum = 0;
  for (int i = 0; i < 17; i++) {
    if (!is_digit((unsigned char)first17[i])) return 0;
    sum += (first17[i] - '0') * weight[i];
  }
  return check[sum % 11];
}

int idcard_date_is_real(int32_t ymd) {
  if (ymd <= 0) return 0;
  int y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100;
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1) return 0;
  static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  int max = mdays[m - 1] + (m == 2 && leap);
  return d <= max;
}

int32_t idcard_yyyymmdd_from_unix(int64_t unix_s) {
  /* Days since 1970-01-01 in UTC+8, floored, then the civil-from-days
   * algorithm (eras of 400 years). */
  int64_t t = unix_s + 8 * 3600;
  int64_t z = t / 86400 - (t % 86400 < 0);
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  return (int32_t)(y * 10000 + m * 100 + d);
}

/* GB/T 2260 province-level codes. 83 is not in GB/T 2260 but is the region
 * code of residence permits of Taiwan residents (GB 11643 format). */
static int province_known(int p) {
  return (p >= 11 && p <= 15) || (p >= 21 && p <= 23) ||
         (p >= 31 && p <= 37) || (p >= 41 && p <= 46) ||
         (p >= 50 && p <= 54) || (p >= 61 && p <= 65) || p == 71 ||
         p == 81 || p == 82 || p == 83;
}

static int check_region(const char *s, char *why, size_t whylen) {
  int p = two(s), pref = two(s + 2), county = two(s + 4);
  if (!province_known(p))
    return fail(IDCARD_EREGION, why, whylen,
                "region code %.6s: %.2s is not a province-level code of "
                "GB/T 2260",
                s, s);
  if (p == 71 || p >= 81) {
    /* Taiwan, Hong Kong, Macao: the whole region code is province-level. */
    if (pref != 0 || county != 0)
      return fail(IDCARD_EREGION, why, whylen,
                  "region code %.6s: for province code %.2s the remaining "
                  "four digits must be 0000",
                  s, s);
    return IDCARD_OK;
  }
  /* Prefecture digits: 01-70 cities and prefectures, 90 county-level
   * divisions directly under the province. The county digits are not
   * checked against a table: see spec/idcard.md. */
  if (!((pref >= 1 && pref <= 70) || pref == 90))
    return fail(IDCARD_EREGION, why, whylen,
                "region code %.6s: prefecture digits %.2s are not used by "
                "GB/T 2260 (01-70 or 90)",
                s, s + 2);
  return IDCARD_OK;
}

int idcard_validate(const char *in, int32_t today, char out[IDCARD_BUFSZ],
                    char *why, size_t whylen) {
  if (out) out[0] = '\0';
  if (why && whylen) why[0] = '\0';
  if (!in) return fail(IDCARD_EINVAL, why, whylen, "no ID number given");

  const unsigned char *b = (const unsigned char *)in;
  size_t len = strlen(in);
  while (len && is_blank(b[len - 1])) len--;
  while (len && is_blank(*b)) b++, len--;
  if (len == 0) return fail(IDCARD_ELENGTH, why, whylen, "ID number is empty");

  for (size_t i = 0; i < len; i++) {
    if (is_blank(b[i]))
      return fail(IDCARD_ECHARSET, why, whylen,
                  "whitespace inside the ID number (after character %zu)", i);
    if (b[i] >= 0x80)
      return fail(IDCARD_ECHARSET, why, whylen,
                  "non-ASCII character at byte %zu (full-width digits or "
                  "letters are not accepted)",
                  i + 1);
  }
  size_t digits = 0;
  for (size_t i = 0; i < len; i++) digits += is_digit(b[i]);
  if (len == 15 && digits == 15)
    return fail(IDCARD_EOLDFORMAT, why, whylen,
                "15-digit first-generation ID number; the 18-digit number "
                "(with 4-digit birth year and check character) is required");
  if (len != IDCARD_LEN)
    return fail(IDCARD_ELENGTH, why, whylen,
                "ID number has %zu characters, must have 18", len);

  char s[IDCARD_BUFSZ];
  for (size_t i = 0; i < IDCARD_LEN; i++) {
    unsigned char c = b[i];
    if (i == IDCARD_LEN - 1 && (c == 'x' || c == 'X')) c = 'X';
    else if (!is_digit(c)) {
      if (c == 'x' || c == 'X')
        return fail(IDCARD_ECHARSET, why, whylen,
                    "'%c' at position %zu: X is allowed only as the 18th "
                    "(check) character",
                    c, i + 1);
      return fail(IDCARD_ECHARSET, why, whylen,
                  "'%c' at position %zu: only digits (and X as the last "
                  "character) are allowed",
                  c, i + 1);
    }
    s[i] = (char)c;
  }
  s[IDCARD_LEN] = '\0';

  int rc = check_region(s, why, whylen);
  if (rc) return rc;

  int32_t birth = 0;
  for (int i = 6; i < 14; i++) birth = birth * 10 + (s[i] - '0');
  if (!idcard_date_is_real(birth))
    return fail(IDCARD_EBIRTHDATE, why, whylen,
                "birth date %.8s is not a real date", s + 6);
  if (birth < IDCARD_MIN_BIRTH)
    return fail(IDCARD_EBIRTHDATE, why, whylen,
                "birth date %.8s is before 1900-01-01", s + 6);
  if (today > 0 && birth > today)
    return fail(IDCARD_EBIRTHDATE, why, whylen,
                "birth date %.8s is in the future (today is %08d)", s + 6,
                (int)today);

  char want = idcard_check_char(s);
  if (want != s[17])
    return fail(IDCARD_ECHECKSUM, why, whylen,
                "check character is '%c', expected '%c'", s[17], want);
  if (out) memcpy(out, s, IDCARD_BUFSZ);
  return IDCARD_OK;
}

int idcard_learner_ref(const unsigned char *fed_key, size_t keylen,
                       const char normalised[IDCARD_BUFSZ],
                       unsigned char out[IDCARD_REF_LEN]) {
  if (!fed_key || keylen == 0 || !normalised || !out) return IDCARD_EINVAL;
  char norm[IDCARD_BUFSZ];
  if (strnlen(normalised, IDCARD_BUFSZ) != IDCARD_LEN ||
      idcard_validate(normalised, 0, norm, NULL, 0) != IDCARD_OK ||
      memcmp(norm, normalised, IDCARD_LEN) != 0)
    return IDCARD_EINVAL;
  size_t outlen = 0;
  unsigned char *r =
      EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, fed_key, keylen,
                (const unsigned char *)norm, IDCARD_LEN, out, IDCARD_REF_LEN,
                &outlen);
  if (!r || outlen != IDCARD_REF_LEN) return IDCARD_ECRYPTO;
  return IDCARD_OK;
}
