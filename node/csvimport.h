/* Streaming reader and validator for the bulk-deposit CSV template
 * (spec/import-csv.md). Pure module: reads one file (or a memory buffer),
 * never writes anything, no clock (today is passed in), no LMDB.
 *
 * One call = one pass over the input:
 *   1. encoding check over the whole input (constant memory): a UTF-8 BOM
 *      is stripped; valid UTF-8 is used as is; otherwise the input must be
 *      valid GB18030 and is converted with iconv in chunks. Neither →
 *      CSVIMPORT_EENCODING naming the byte offset and line.
 *   2. RFC 4180 parse (libcsv, strict): quoted fields, doubled quotes,
 *      embedded CR/LF, CRLF or LF line ends, blank lines skipped.
 *   3. header row mapped to the template columns (English names or the
 *      Chinese aliases); unknown, duplicate or missing required columns are
 *      a file-level error naming the column.
 *   4. every data row validated; `cb` is called once per data row, in file
 *      order, with either the validated row or the reason it is bad.
 *
 * The importer keeps nothing between rows: memory is bounded by the field
 * and chunk limits below whatever the file's size. To validate a whole file
 * before writing anything (what `cbctl import` does), make one call with a
 * callback that only counts and lists errors, then a second call that
 * writes; both passes see exactly the same rows.
 */
#ifndef CB_CSVIMPORT_H
#define CB_CSVIMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "idcard.h"

/* Bounds (bytes, after conversion to UTF-8). A field longer than its
 * column's bound makes that row invalid; a single field longer than
 * CSVIMPORT_MAX_FIELD_BYTES (e.g. an unclosed quote swallowing the file)
 * is a file-level error, so a hostile file cannot make us allocate more. */
#define CSVIMPORT_MAX_FIELD_BYTES 4096
#define CSVIMPORT_NAME_MAX 128     /* learner name */
#define CSVIMPORT_CODE_MAX 64      /* issuer, code, depositor_code */
#define CSVIMPORT_TITLE_MAX 256    /* title, depositor_name */
#define CSVIMPORT_LEVEL_MAX 32
#define CSVIMPORT_SCORE_MAX 32
#define CSVIMPORT_DEPOSITOR_NAME_MAX 128 /* storage's bound (records.md) */
#define CSVIMPORT_MAX_CREDITS_MILLI 1000000 /* 1000.000 credits */
#define CSVIMPORT_MIN_AWARDED 19000101
#define CSVIMPORT_MAX_AWARDED 20991231 /* storage's range (records.md) */
#define CSVIMPORT_WHY_MAX 512      /* reason text handed to the callback */

/* File-level results. X(name, value, description). */
#define CSVIMPORT_ERRORS(X)                                                  \
  X(CSVIMPORT_OK, 0, "ok")                                                   \
  X(CSVIMPORT_EINVAL, -1, "invalid argument")                                \
  X(CSVIMPORT_EIO, -2, "cannot read the file")                               \
  X(CSVIMPORT_EEMPTY, -3, "the file is empty")                               \
  X(CSVIMPORT_EENCODING, -4, "the file is neither UTF-8 nor GB18030")        \
  X(CSVIMPORT_EPARSE, -5, "malformed CSV")                                   \
  X(CSVIMPORT_ETOOBIG, -6, "a field exceeds the size limit")                 \
  X(CSVIMPORT_EHEADER, -7, "the header does not match the template")         \
  X(CSVIMPORT_ENODATA, -8, "the file has a header but no data rows")         \
  X(CSVIMPORT_ENOMEM, -9, "out of memory")                                   \
  X(CSVIMPORT_ESTOPPED, -10, "stopped by the caller")

enum csvimport_err {
#define CSVIMPORT_ENUM_(name, val, str) name = (val),
  CSVIMPORT_ERRORS(CSVIMPORT_ENUM_)
#undef CSVIMPORT_ENUM_
};

/* Row-level problems (the first one found in a row is `code`; `why` lists
 * them all). X(name, value, description). */
#define CSVIMPORT_ROW_ERRORS(X)                                              \
  X(CSVIMPORT_ROW_EFIELDCOUNT, 1, "wrong number of fields")                  \
  X(CSVIMPORT_ROW_EREQUIRED, 2, "required field is empty")                   \
  X(CSVIMPORT_ROW_ETOOLONG, 3, "field too long")                             \
  X(CSVIMPORT_ROW_EIDNUMBER, 4, "invalid ID number")                         \
  X(CSVIMPORT_ROW_EKIND, 5, "unknown achievement kind")                      \
  X(CSVIMPORT_ROW_ECREDITS, 6, "invalid credits")                            \
  X(CSVIMPORT_ROW_EDATE, 7, "invalid date")                                  \
  X(CSVIMPORT_ROW_EROLE, 8, "unknown depositor role")                        \
  X(CSVIMPORT_ROW_ETEXT, 9, "invalid text (control character or bad UTF-8)")

enum csvimport_row_err {
#define CSVIMPORT_ENUM_(name, val, str) name = (val),
  CSVIMPORT_ROW_ERRORS(CSVIMPORT_ENUM_)
#undef CSVIMPORT_ENUM_
};

/* Template columns, in the canonical order of the template's header. */
#define CSVIMPORT_COLUMNS(X)                                                 \
  X(CSVIMPORT_COL_ID_NUMBER, "id_number", 1)                                 \
  X(CSVIMPORT_COL_NAME, "name", 1)                                           \
  X(CSVIMPORT_COL_KIND, "kind", 1)                                           \
  X(CSVIMPORT_COL_ISSUER, "issuer", 1)                                       \
  X(CSVIMPORT_COL_CODE, "code", 1)                                           \
  X(CSVIMPORT_COL_TITLE, "title", 1)                                         \
  X(CSVIMPORT_COL_LEVEL, "level", 0)                                         \
  X(CSVIMPORT_COL_CREDITS, "credits", 1)                                     \
  X(CSVIMPORT_COL_SCORE, "score", 0)                                         \
  X(CSVIMPORT_COL_AWARDED_ON, "awarded_on", 1)                               \
  X(CSVIMPORT_COL_DEPOSITOR_ROLE, "depositor_role", 0)                       \
  X(CSVIMPORT_COL_DEPOSITOR_CODE, "depositor_code", 0)                       \
  X(CSVIMPORT_COL_DEPOSITOR_NAME, "depositor_name", 0)

enum csvimport_column {
#define CSVIMPORT_ENUM_(name, str, req) name,
  CSVIMPORT_COLUMNS(CSVIMPORT_ENUM_)
#undef CSVIMPORT_ENUM_
  CSVIMPORT_NCOLS
};

/* Same numbers as cb.AchievementKind / cb.DepositorRole in
 * proto/records.proto (checked at compile time in csvimport.c). */
enum csvimport_kind {
  CSVIMPORT_KIND_ACADEMIC_COURSE = 1,
  CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION = 2,
  CSVIMPORT_KIND_VOCATIONAL_SKILL_LEVEL = 3,
  CSVIMPORT_KIND_NON_FORMAL = 4,
  CSVIMPORT_KIND_CULTURAL_LEISURE = 5,
};
enum csvimport_role {
  CSVIMPORT_ROLE_UNSPECIFIED = 0, /* column absent or empty: the caller
                                     uses the operator's own identity */
  CSVIMPORT_ROLE_OUTLET = 1,
  CSVIMPORT_ROLE_BRANCH = 2,
  CSVIMPORT_ROLE_APPRAISAL_CENTRE = 3,
  CSVIMPORT_ROLE_MANAGEMENT_CENTRE = 4,
};

/* One validated row. Strings are NUL-terminated UTF-8, without control
 * characters; optional ones are "" when absent. */
struct csv_row {
  char id_number[IDCARD_BUFSZ];  /* normalised (upper-case X) */
  char name[CSVIMPORT_NAME_MAX + 1];
  int kind;                      /* enum csvimport_kind */
  char issuer[CSVIMPORT_CODE_MAX + 1];
  char code[CSVIMPORT_CODE_MAX + 1];
  char title[CSVIMPORT_TITLE_MAX + 1];
  char level[CSVIMPORT_LEVEL_MAX + 1];
  int64_t credits_milli;         /* 0 .. CSVIMPORT_MAX_CREDITS_MILLI */
  char score[CSVIMPORT_SCORE_MAX + 1];
  int32_t awarded_on;            /* YYYYMMDD, a real date */
  int depositor_role;            /* enum csvimport_role */
  char depositor_code[CSVIMPORT_CODE_MAX + 1];
  char depositor_name[CSVIMPORT_TITLE_MAX + 1]; /* at most
                                  CSVIMPORT_DEPOSITOR_NAME_MAX bytes used */
};

/* Why a row was refused. */
struct csvimport_row_error {
  int code;          /* first enum csvimport_row_err found */
  int column;        /* enum csvimport_column of that problem, or -1 */
  const char *why;   /* every problem of the row, "; "-separated, e.g.
                        "credits: '2.5x' is not a decimal number" */
};

enum csvimport_encoding {
  CSVIMPORT_ENC_AUTO = 0,    /* detect (the default) */
  CSVIMPORT_ENC_UTF8 = 1,
  CSVIMPORT_ENC_GB18030 = 2,
};

struct csvimport_opts {
  int32_t today_yyyymmdd;   /* birth and award dates after it are refused;
                               0 skips that check */
  int encoding;             /* enum csvimport_encoding: AUTO, or force one */
};

/* Per row callback. `line` is the 1-based physical line (LF-counted, the
 * header being on line 1 of a file without leading blank lines) where the
 * row starts; `row_index` counts data rows from 1. Exactly one of row/err
 * is non-NULL; both point to memory valid only during the call. Return 0
 * to go on, anything else to stop (the import returns CSVIMPORT_ESTOPPED). */
typedef int (*csvimport_row_cb)(void *ud, uint64_t line, uint64_t row_index,
                                const struct csv_row *row,
                                const struct csvimport_row_error *err);

/* What one pass saw. */
struct csvimport_summary {
  int encoding;             /* enum csvimport_encoding actually used */
  int had_bom;              /* 1 if a UTF-8 BOM was stripped */
  uint64_t rows;            /* data rows seen */
  uint64_t valid;
  uint64_t invalid;
  uint64_t lines;           /* physical lines read */
  uint64_t bytes;           /* input bytes read */
  int columns[CSVIMPORT_NCOLS]; /* 1 if the header has that column */
  char error[512];          /* file-level error message ("" if none),
                               e.g. "header: unknown column 'grade' (field 9)" */
};

/* Reads and validates `path` ("-" = standard input; an auto encoding then
 * needs the whole input held in memory for the check, bounded by
 * CSVIMPORT_MAX_STDIN_BYTES). Returns 0 when the whole file was read
 * (summary.invalid says how many rows were bad), or a negative
 * enum csvimport_err with summary->error saying what and where. opts may be
 * NULL (defaults: auto encoding, no future-date check). summary must not be
 * NULL. */
#define CSVIMPORT_MAX_STDIN_BYTES (256u * 1024u * 1024u)
int csvimport_file(const char *path, const struct csvimport_opts *opts,
                   csvimport_row_cb cb, void *ud,
                   struct csvimport_summary *summary);

/* Same over a memory buffer (tests, fuzzing). */
int csvimport_buffer(const void *buf, size_t len,
                     const struct csvimport_opts *opts, csvimport_row_cb cb,
                     void *ud, struct csvimport_summary *summary);

const char *csvimport_strerror(int err);           /* file-level codes */
const char *csvimport_row_strerror(int code);      /* row-level codes */
const char *csvimport_column_name(int column);     /* "id_number", ... */
const char *csvimport_kind_name(int kind);         /* "academic_course" */
const char *csvimport_role_name(int role);         /* "outlet", ... */
const char *csvimport_encoding_name(int encoding); /* "UTF-8", "GB18030" */

/* Parses a credits value: a plain decimal with at most 3 fractional
 * digits ("3", "2.5", "0.125"; no sign, exponent or grouping) into
 * thousandths, bounded by CSVIMPORT_MAX_CREDITS_MILLI. 0 or -1. */
int csvimport_parse_credits(const char *s, int64_t *out_milli);

/* Parses YYYY-MM-DD, YYYY/M/D or YYYYMMDD into a real YYYYMMDD. 0 or -1. */
int csvimport_parse_date(const char *s, int32_t *out_yyyymmdd);

/* Content digest of a validated row: SHA-256 over a length-prefixed
 * encoding of every field. Identical rows give identical digests, so a
 * caller can use it to make re-importing the same file add nothing. */
void csvimport_row_digest(const struct csv_row *row, unsigned char out[32]);

#endif
