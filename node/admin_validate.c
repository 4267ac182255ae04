/* Content checks of admin requests, run by frame_decode before any handler
 * sees the message: presence of required fields, enum ranges, repeated
 * counts and text bounds. Semantic checks that need the node (ID number
 * against today, the store's own record rules) happen in the handlers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "store.h"

static int invalid(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int invalid(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -FRAME_E_INVALID;
}

/* Length of the UTF-8 sequence starting at p (1..4), or 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF refused). */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
  unsigned c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (left < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  return n;
}

/* The same rules as admin_check_text, without a message: true if s is
 * within max_bytes, present if required, UTF-8 without control characters.
 * One pass, ASCII bytes checked without decoding. Import batches run this
 * on every text of every row and format a message only for a row that
 * fails (through the checks below, which then name the field). */
static int text_ok(const char *s, size_t max_bytes, int required)
{
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t i = 0;
  for (;;) {
    unsigned c = p[i];
    if (c == 0) break;
    if (i >= max_bytes) return 0;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return 0;
      i++;
      continue;
    }
    /* The text is NUL-terminated and NUL is no continuation byte, so
     * utf8_seq stops at it: no need to measure what is left. */
    size_t n = utf8_seq(p + i, 4);
    if (n == 0 || i + n > max_bytes) return 0;
    i += n;
  }
  return !required || i > 0;
}

static int achievement_ok(const Cb__Achievement *a)
{
  if (!a || a->id != 0 || a->learner_ref.len != 0 || a->deposited_at_ms != 0) return 0;
  if ((int)a->kind < 1 || (int)a->kind > STORE_KIND_MAX) return 0;
  if (!text_ok(a->issuer, STORE_ISSUER_MAX, 1) || !text_ok(a->code, STORE_CODE_MAX, 1) ||
      !text_ok(a->title, STORE_TITLE_MAX, 1) || !text_ok(a->level, STORE_LEVEL_MAX, 0) ||
      !text_ok(a->score, STORE_SCORE_MAX, 0))
    return 0;
  if (a->credits_milli < 0 || a->credits_milli > STORE_CREDITS_MILLI_MAX) return 0;
  if (a->awarded_on < 19000101 || a->awarded_on > 20991231) return 0;
  if (a->depositor) {
    const Cb__Depositor *d = a->depositor;
    if ((int)d->role < 0 || (int)d->role > STORE_ROLE_MAX) return 0;
    if (!text_ok(d->code, STORE_DEPOSITOR_CODE_MAX, d->role != 0) ||
        !text_ok(d->name, STORE_DEPOSITOR_NAME_MAX, 0))
      return 0;
  }
  return 1;
}

int admin_check_text(const char *field, const char *s, size_t max_bytes, int required, char *err,
                     size_t errlen)
{
  if (!s) s = "";
  size_t len = strlen(s);
  if (required && len == 0) return invalid(err, errlen, "%s is required", field), -1;
  if (len > max_bytes)
    return invalid(err, errlen, "%s is %zu bytes, at most %zu allowed", field, len, max_bytes), -1;
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    if (p[i] < 0x20 || p[i] == 0x7f)
      return invalid(err, errlen, "%s has a control character at byte %zu", field, i), -1;
    size_t n = utf8_seq(p + i, len - i);
    if (n == 0) return invalid(err, errlen, "%s is not valid UTF-8 at byte %zu", field, i), -1;
    i += n;
  }
  return 0;
}

#define CHECK_TEXT(field, s, max, req)                                        \
  do {                                                                        \
    if (admin_check_text(field, s, max, req, err, errlen) != 0) return -FRAME_E_INVALID; \
  } while (0)

/* The achievement of a deposit or import row. The node assigns id,
 * learner_ref and deposited_at_ms, so those must be unset. */
static int check_achievement(const char *where, const Cb__Achievement *a, char *err, size_t errlen)
{
  char f[96];
  if (!a) return invalid(err, errlen, "%sachievement is required", where);
  if (a->id != 0) return invalid(err, errlen, "%sachievement.id is assigned by the node; leave it unset", where);
  if (a->learner_ref.len != 0)
    return invalid(err, errlen, "%sachievement.learner_ref is derived by the node; leave it unset", where);
  if (a->deposited_at_ms != 0)
    return invalid(err, errlen, "%sachievement.deposited_at_ms is set by the node; leave it unset", where);
  if ((int)a->kind < 1 || (int)a->kind > STORE_KIND_MAX)
    return invalid(err, errlen, "%sachievement.kind %d is not a known kind (1..%d)", where, (int)a->kind,
                   STORE_KIND_MAX);
#define TXT(name, max, req)                                                   \
  snprintf(f, sizeof f, "%sachievement." #name, where);                       \
  CHECK_TEXT(f, a->name, max, req)
  TXT(issuer, STORE_ISSUER_MAX, 1);
  TXT(code, STORE_CODE_MAX, 1);
  TXT(title, STORE_TITLE_MAX, 1);
  TXT(level, STORE_LEVEL_MAX, 0);
  TXT(score, STORE_SCORE_MAX, 0);
#undef TXT
  if (a->credits_milli < 0 || a->credits_milli > STORE_CREDITS_MILLI_MAX)
    return invalid(err, errlen, "%sachievement.credits_milli %lld is outside 0..%lld", where,
                   (long long)a->credits_milli, (long long)STORE_CREDITS_MILLI_MAX);
  if (a->awarded_on < 19000101 || a->awarded_on > 20991231)
    return invalid(err, errlen, "%sachievement.awarded_on %d is not a date YYYYMMDD in 1900..2099",
                   where, (int)a->awarded_on);
  if (a->depositor) {
    const Cb__Depositor *d = a->depositor;
    if ((int)d->role < 0 || (int)d->role > STORE_ROLE_MAX)
      return invalid(err, errlen, "%sachievement.depositor.role %d is not a known role (0..%d)",
                     where, (int)d->role, STORE_ROLE_MAX);
    snprintf(f, sizeof f, "%sachievement.depositor.code", where);
    CHECK_TEXT(f, d->code, STORE_DEPOSITOR_CODE_MAX, d->role != 0);
    snprintf(f, sizeof f, "%sachievement.depositor.name", where);
    CHECK_TEXT(f, d->name, STORE_DEPOSITOR_NAME_MAX, 0);
  }
  return 0;
}

int admin_validate_hello(const Cb__Envelope *env, char *err, size_t errlen)
{
  const Cb__HelloRequest *r = env->hello_request;
  if (!r) return invalid(err, errlen, "missing body");
  CHECK_TEXT("client", r->client, 128, 0);
  return 0;
}

int admin_validate_learner_open(const Cb__Envelope *env, char *err, size_t errlen)
{
  const Cb__LearnerOpenRequest *r = env->learner_open_request;
  if (!r) return invalid(err, errlen, "missing body");
  CHECK_TEXT("id_number", r->id_number, STORE_ID_NUMBER_MAX, 1);
  CHECK_TEXT("name", r->name, STORE_NAME_MAX, 1);
  return 0;
}

int admin_validate_deposit(const Cb__Envelope *env, char *err, size_t errlen)
{
  const Cb__DepositRequest *r = env->deposit_request;
  if (!r) return invalid(err, errlen, "missing body");
  CHECK_TEXT("id_number", r->id_number, STORE_ID_NUMBER_MAX, 1);
  return check_achievement("", r->achievement, err, errlen);
}

int admin_validate_import_batch(const Cb__Envelope *env, char *err, size_t errlen)
{
  const Cb__ImportBatchRequest *r = env->import_batch_request;
  if (!r) return invalid(err, errlen, "missing body");
  if (r->n_rows == 0) return invalid(err, errlen, "rows: empty batch");
  if (r->n_rows > ADMIN_IMPORT_ROWS_MAX)
    return invalid(err, errlen, "rows: %zu rows, at most %u per batch", r->n_rows, ADMIN_IMPORT_ROWS_MAX);
  for (size_t i = 0; i < r->n_rows; i++) {
    const Cb__ImportRow *row = r->rows[i];
    if (text_ok(row->id_number, STORE_ID_NUMBER_MAX, 1) && text_ok(row->name, STORE_NAME_MAX, 1) &&
        achievement_ok(row->achievement))
      continue;
    /* A bad row: the checks below name the field. */
    char where[64];
    snprintf(where, sizeof where, "rows[%zu] (line %u): ", i, row->line);
    char f[96];
    snprintf(f, sizeof f, "%sid_number", where);
    CHECK_TEXT(f, row->id_number, STORE_ID_NUMBER_MAX, 1);
    snprintf(f, sizeof f, "%sname", where);
    CHECK_TEXT(f, row->name, STORE_NAME_MAX, 1);
    if (check_achievement(where, row->achievement, err, errlen) != 0) return -FRAME_E_INVALID;
  }
  return 0;
}

int admin_validate_transcript(const Cb__Envelope *env, char *err, size_t errlen)
{
  const Cb__TranscriptRequest *r = env->transcript_request;
  if (!r) return invalid(err, errlen, "missing body");
  switch (r->who_case) {
  case CB__TRANSCRIPT_REQUEST__WHO_ID_NUMBER:
    CHECK_TEXT("id_number", r->id_number, STORE_ID_NUMBER_MAX, 1);
    return 0;
  case CB__TRANSCRIPT_REQUEST__WHO_LEARNER_REF:
    if (r->learner_ref.len != STORE_REF_LEN)
      return invalid(err, errlen, "learner_ref is %zu bytes, expected %d", r->learner_ref.len, STORE_REF_LEN);
    return 0;
  default: return invalid(err, errlen, "give id_number or learner_ref");
  }
}

int admin_validate_stats(const Cb__Envelope *env, char *err, size_t errlen)
{
  if (!env->stats_request) return invalid(err, errlen, "missing body");
  return 0;
}
