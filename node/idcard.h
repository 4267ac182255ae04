/* Citizen ID numbers (居民身份证号码) per GB 11643-1999, and the learner
 * reference derived from them (DESIGN.md "Records", spec/idcard.md).
 *
 * Pure module: no clock, no I/O. "Today" (for the birth-in-the-future
 * check) is passed in by the caller as a YYYYMMDD integer.
 *
 * Layout of an 18-character number:
 *   RRRRRR  region code, GB/T 2260 (province, prefecture, county)
 *   YYYYMMDD birth date
 *   SSS     sequence (odd = male, even = female)
 *   C       ISO 7064 MOD 11-2 check character, '0'..'9' or 'X'
 */
#ifndef CB_IDCARD_H
#define CB_IDCARD_H

#include <stddef.h>
#include <stdint.h>

#define IDCARD_LEN 18            /* characters in a normalised number */
#define IDCARD_BUFSZ (IDCARD_LEN + 1)
#define IDCARD_REF_LEN 32        /* bytes of a learner_ref (HMAC-SHA256) */
#define IDCARD_MIN_BIRTH 19000101

/* Error codes: X(name, value, short description). */
#define IDCARD_ERRORS(X)                                                     \
  X(IDCARD_OK, 0, "valid")                                                   \
  X(IDCARD_ELENGTH, -1, "wrong length (must be 18 characters)")              \
  X(IDCARD_ECHARSET, -2, "invalid character")                                \
  X(IDCARD_EREGION, -3, "unknown region code")                               \
  X(IDCARD_EBIRTHDATE, -4, "invalid birth date")                             \
  X(IDCARD_ECHECKSUM, -5, "check character does not match")                  \
  X(IDCARD_EOLDFORMAT, -6, "15-digit first-generation number not accepted")  \
  X(IDCARD_EINVAL, -7, "invalid argument")                                   \
  X(IDCARD_ECRYPTO, -8, "cryptographic library failure")

enum idcard_err {
#define IDCARD_ENUM_(name, val, str) name = (val),
  IDCARD_ERRORS(IDCARD_ENUM_)
#undef IDCARD_ENUM_
};

/* Short static description of an idcard_err code ("unknown error" for
 * anything else). The `why` buffer of idcard_validate says more. */
const char *idcard_strerror(int err);

/* Validates an ID number and writes its normalised form.
 *
 * in:   NUL-terminated text as typed or read from a file. Leading and
 *       trailing ASCII blanks (space, tab, CR, LF) are ignored; whitespace
 *       inside is refused (IDCARD_ECHARSET). A lower-case 'x' check
 *       character is accepted and normalised to 'X'. A 15-digit
 *       first-generation number is refused with IDCARD_EOLDFORMAT.
 * today_yyyymmdd: the caller's current date (China Standard Time), e.g.
 *       20260315; a birth date after it is refused. 0 skips that check.
 *       Birth dates before 1900-01-01 are always refused.
 * out_normalised: IDCARD_BUFSZ bytes, receives the 18 normalised
 *       characters and a NUL on success; set to "" on failure. May be NULL.
 * why/whylen: receives a one-line English reason naming the offending
 *       part (e.g. "check character is '3', expected 'X'"; "birth date
 *       19990230 is not a real date"). May be NULL/0.
 * Returns 0 (IDCARD_OK) or a negative enum idcard_err. */
int idcard_validate(const char *in, int32_t today_yyyymmdd,
                    char out_normalised[IDCARD_BUFSZ], char *why,
                    size_t whylen);

/* The MOD 11-2 check character for the first 17 characters, which must be
 * ASCII digits: returns '0'..'9' or 'X', or 0 if any of them is not a digit.
 * Used by the synthetic-data generator to build valid numbers. */
char idcard_check_char(const char first17[17]);

/* learner_ref = HMAC-SHA256(fed_key, the 18 normalised characters).
 * `normalised` must be a number accepted by idcard_validate (this is
 * re-checked for format, not for the birth date against today).
 * Returns 0, IDCARD_EINVAL (NULL/empty key, not normalised) or
 * IDCARD_ECRYPTO. */
int idcard_learner_ref(const unsigned char *fed_key, size_t keylen,
                       const char normalised[IDCARD_BUFSZ],
                       unsigned char out[IDCARD_REF_LEN]);

/* 1 if yyyymmdd is a real Gregorian calendar date in years 1..9999,
 * else 0. Shared with the CSV importer for award dates. */
int idcard_date_is_real(int32_t yyyymmdd);

/* The calendar date, as YYYYMMDD, in China Standard Time (UTC+8) of a Unix
 * time in seconds. Pure arithmetic (no clock, no time zone database):
 * callers that have read the clock use it to build `today_yyyymmdd`. */
int32_t idcard_yyyymmdd_from_unix(int64_t unix_s);

#endif
