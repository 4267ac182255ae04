/* Bulk-deposit CSV reader and validator; see csvimport.h and
 * spec/import-csv.md. */
#include "csvimport.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "records.pb-c.h"

/* The template's enums are the records schema's. */
_Static_assert(CSVIMPORT_KIND_ACADEMIC_COURSE ==
                   (int)CB__ACHIEVEMENT_KIND__ACADEMIC_COURSE, "kind");
_Static_assert(CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION ==
                   (int)CB__ACHIEVEMENT_KIND__VOCATIONAL_QUALIFICATION, "kind");
_Static_assert(CSVIMPORT_KIND_VOCATIONAL_SKILL_LEVEL ==
                   (int)CB__ACHIEVEMENT_KIND__VOCATIONAL_SKILL_LEVEL, "kind");
_Static_assert(CSVIMPORT_KIND_NON_FORMAL ==
                   (int)CB__ACHIEVEMENT_KIND__NON_FORMAL, "kind");
_Static_assert(CSVIMPORT_KIND_CULTURAL_LEISURE ==
                   (int)CB__ACHIEVEMENT_KIND__CULTURAL_LEISURE, "kind");
_Static_assert(CSVIMPORT_ROLE_OUTLET == (int)CB__DEPOSITOR_ROLE__OUTLET,
               "role");
_Static_assert(CSVIMPORT_ROLE_BRANCH == (int)CB__DEPOSITOR_ROLE__BRANCH,
               "role");
_Static_assert(CSVIMPORT_ROLE_APPRAISAL_CENTRE ==
                   (int)CB__DEPOSITOR_ROLE__APPRAISAL_CENTRE, "role");
_Static_assert(CSVIMPORT_ROLE_MANAGEMENT_CENTRE ==
                   (int)CB__DEPOSITOR_ROLE__MANAGEMENT_CENTRE, "role");

#define RAW_CHUNK (64u * 1024u)
/* GB18030 → UTF-8 grows at most 3/2 (two bytes → three). */
#define OUT_CHUNK (2u * RAW_CHUNK)
#define MAX_HEADER_FIELDS 64
#define MAX_HEADER_NAME 64
/* libcsv's entry buffer may grow to this and no further. */
#define PARSER_BUF_CAP (CSVIMPORT_MAX_FIELD_BYTES + 512u)

/* ---------------------------------------------------------------- names */

const char *csvimport_strerror(int err) {
  switch (err) {
#define CSVIMPORT_STR_(name, val, str) \
  case name:                           \
    return str;
    CSVIMPORT_ERRORS(CSVIMPORT_STR_)
#undef CSVIMPORT_STR_
  }
  return "unknown error";
}

const char *csvimport_row_strerror(int code) {
  switch (code) {
#define CSVIMPORT_STR_(name, val, str) \
  case name:                           \
    return str;
    CSVIMPORT_ROW_ERRORS(CSVIMPORT_STR_)
#undef CSVIMPORT_STR_
  }
  return "unknown row error";
}

static const char *const col_names[CSVIMPORT_NCOLS] = {
#define CSVIMPORT_NAME_(name, str, req) str,
    CSVIMPORT_COLUMNS(CSVIMPORT_NAME_)
#undef CSVIMPORT_NAME_
};
static const int col_required[CSVIMPORT_NCOLS] = {
#define CSVIMPORT_REQ_(name, str, req) req,
    CSVIMPORT_COLUMNS(CSVIMPORT_REQ_)
#undef CSVIMPORT_REQ_
};

const char *csvimport_column_name(int column) {
  if (column < 0 || column >= CSVIMPORT_NCOLS) return "?";
  return col_names[column];
}

struct alias {
  const char *name;
  int value;
};

/* Header aliases: Chinese headers as institutions' systems export them. */
static const struct alias header_aliases[] = {
    {"身份证号", CSVIMPORT_COL_ID_NUMBER},
    {"身份证号码", CSVIMPORT_COL_ID_NUMBER},
    {"证件号码", CSVIMPORT_COL_ID_NUMBER},
    {"姓名", CSVIMPORT_COL_NAME},
    {"成果类型", CSVIMPORT_COL_KIND},
    {"学习成果类型", CSVIMPORT_COL_KIND},
    {"类型", CSVIMPORT_COL_KIND},
    {"颁发机构", CSVIMPORT_COL_ISSUER},
    {"发证机构", CSVIMPORT_COL_ISSUER},
    {"颁发单位", CSVIMPORT_COL_ISSUER},
    {"代码", CSVIMPORT_COL_CODE},
    {"成果代码", CSVIMPORT_COL_CODE},
    {"课程代码", CSVIMPORT_COL_CODE},
    {"证书代码", CSVIMPORT_COL_CODE},
    {"名称", CSVIMPORT_COL_TITLE},
    {"成果名称", CSVIMPORT_COL_TITLE},
    {"课程名称", CSVIMPORT_COL_TITLE},
    {"证书名称", CSVIMPORT_COL_TITLE},
    {"等级", CSVIMPORT_COL_LEVEL},
    {"级别", CSVIMPORT_COL_LEVEL},
    {"学分", CSVIMPORT_COL_CREDITS},
    {"成绩", CSVIMPORT_COL_SCORE},
    {"获得日期", CSVIMPORT_COL_AWARDED_ON},
    {"取得日期", CSVIMPORT_COL_AWARDED_ON},
    {"颁发日期", CSVIMPORT_COL_AWARDED_ON},
    {"存入机构类型", CSVIMPORT_COL_DEPOSITOR_ROLE},
    {"存入机构代码", CSVIMPORT_COL_DEPOSITOR_CODE},
    {"存入机构名称", CSVIMPORT_COL_DEPOSITOR_NAME},
};

static const struct alias kind_words[] = {
    {"academic_course", CSVIMPORT_KIND_ACADEMIC_COURSE},
    {"course", CSVIMPORT_KIND_ACADEMIC_COURSE},
    {"学历教育课程", CSVIMPORT_KIND_ACADEMIC_COURSE},
    {"学历课程", CSVIMPORT_KIND_ACADEMIC_COURSE},
    {"课程", CSVIMPORT_KIND_ACADEMIC_COURSE},
    {"vocational_qualification", CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION},
    {"国家职业资格证书", CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION},
    {"职业资格证书", CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION},
    {"vocational_skill_level", CSVIMPORT_KIND_VOCATIONAL_SKILL_LEVEL},
    {"职业技能等级证书", CSVIMPORT_KIND_VOCATIONAL_SKILL_LEVEL},
    {"技能等级证书", CSVIMPORT_KIND_VOCATIONAL_SKILL_LEVEL},
    {"non_formal", CSVIMPORT_KIND_NON_FORMAL},
    {"非正式学习", CSVIMPORT_KIND_NON_FORMAL},
    {"非正规学习", CSVIMPORT_KIND_NON_FORMAL},
    {"非正式/非正规学习", CSVIMPORT_KIND_NON_FORMAL},
    {"cultural_leisure", CSVIMPORT_KIND_CULTURAL_LEISURE},
    {"文化休闲教育", CSVIMPORT_KIND_CULTURAL_LEISURE},
    {"文化休闲", CSVIMPORT_KIND_CULTURAL_LEISURE},
};

static const struct alias role_words[] = {
    {"outlet", CSVIMPORT_ROLE_OUTLET},
    {"网点", CSVIMPORT_ROLE_OUTLET},
    {"branch", CSVIMPORT_ROLE_BRANCH},
    {"分部", CSVIMPORT_ROLE_BRANCH},
    {"appraisal_centre", CSVIMPORT_ROLE_APPRAISAL_CENTRE},
    {"appraisal_center", CSVIMPORT_ROLE_APPRAISAL_CENTRE},
    {"职业技能鉴定中心", CSVIMPORT_ROLE_APPRAISAL_CENTRE},
    {"鉴定中心", CSVIMPORT_ROLE_APPRAISAL_CENTRE},
    {"management_centre", CSVIMPORT_ROLE_MANAGEMENT_CENTRE},
    {"management_center", CSVIMPORT_ROLE_MANAGEMENT_CENTRE},
    {"管理中心", CSVIMPORT_ROLE_MANAGEMENT_CENTRE},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *csvimport_kind_name(int kind) {
  switch (kind) {
  case CSVIMPORT_KIND_ACADEMIC_COURSE: return "academic_course";
  case CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION: return "vocational_qualification";
  case CSVIMPORT_KIND_VOCATIONAL_SKILL_LEVEL: return "vocational_skill_level";
  case CSVIMPORT_KIND_NON_FORMAL: return "non_formal";
  case CSVIMPORT_KIND_CULTURAL_LEISURE: return "cultural_leisure";
  }
  return "?";
}

const char *csvimport_role_name(int role) {
  switch (role) {
  case CSVIMPORT_ROLE_UNSPECIFIED: return "";
  case CSVIMPORT_ROLE_OUTLET: return "outlet";
  case CSVIMPORT_ROLE_BRANCH: return "branch";
  case CSVIMPORT_ROLE_APPRAISAL_CENTRE: return "appraisal_centre";
  case CSVIMPORT_ROLE_MANAGEMENT_CENTRE: return "management_centre";
  }
  return "?";
}

const char *csvimport_encoding_name(int encoding) {
  switch (encoding) {
  case CSVIMPORT_ENC_AUTO: return "auto";
  case CSVIMPORT_ENC_UTF8: return "UTF-8";
  case CSVIMPORT_ENC_GB18030: return "GB18030";
  }
  return "?";
}

/* Folds ASCII letters to lower case and ' ' / '-' to '_' into dst; returns
 * 0 if it does not fit. Non-ASCII bytes are copied as they are. */
static int fold_word(const char *s, size_t n, char *dst, size_t dstlen) {
  if (n + 1 > dstlen) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    else if (c == ' ' || c == '-') c = '_';
    dst[i] = c;
  }
  dst[n] = '\0';
  return 1;
}

static int lookup(const struct alias *tab, size_t n, const char *word) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(tab[i].name, word) == 0) return tab[i].value;
  return -1;
}

/* ------------------------------------------------------------- messages */

/* Appends user text to a message: at most `max` bytes, cut on a UTF-8
 * boundary, control bytes shown as '?'. */
static void quote_text(char *dst, size_t dstlen, const char *s, size_t max) {
  size_t n = strlen(s), o = 0;
  int cut = 0;
  if (n > max) {
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    cut = 1;
  }
  for (size_t i = 0; i < n && o + 1 < dstlen; i++) {
    unsigned char c = (unsigned char)s[i];
    dst[o++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
  }
  if (cut)
    for (int k = 0; k < 3 && o + 1 < dstlen; k++) dst[o++] = '.';
  if (dstlen) dst[o < dstlen ? o : dstlen - 1] = '\0';
}

static int summary_fail(struct csvimport_summary *sum, int err,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int summary_fail(struct csvimport_summary *sum, int err,
                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sum->error, sizeof sum->error, fmt, ap);
  va_end(ap);
  return err;
}

/* --------------------------------------------------------------- input */

struct src {
  FILE *f;                    /* file mode */
  const unsigned char *buf;   /* buffer mode */
  size_t len, pos;
  int ioerr;
};

static size_t src_read(struct src *s, unsigned char *dst, size_t n) {
  if (s->f) {
    size_t got = fread(dst, 1, n, s->f);
    if (got < n && ferror(s->f)) s->ioerr = errno ? errno : EIO;
    return got;
  }
  size_t left = s->len - s->pos;
  if (n > left) n = left;
  memcpy(dst, s->buf + s->pos, n);
  s->pos += n;
  return n;
}

static int src_rewind(struct src *s) {
  if (s->f) {
    if (fseek(s->f, 0, SEEK_SET) != 0) return -1;
    clearerr(s->f);
    return 0;
  }
  s->pos = 0;
  return 0;
}

static uint64_t count_lf(const unsigned char *p, size_t n) {
  uint64_t c = 0;
  const unsigned char *e = p + n;
  while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) c++, p++;
  return c;
}

/* Streaming UTF-8 validator (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
struct u8state {
  int need;           /* continuation bytes still expected */
  unsigned char lo, hi; /* allowed range of the next continuation byte */
};

/* Returns the index of the first byte that cannot be valid, or n. An
 * unfinished sequence at the end is left in the state. */
static size_t u8_scan(struct u8state *st, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    /* ASCII runs (digits, codes, commas) eight bytes at a time. */
    if (!st->need) {
      while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & UINT64_C(0x8080808080808080)) break;
        i += 8;
      }
      if (i == n) break;
    }
    unsigned char c = p[i];
    if (st->need) {
      if (c < st->lo || c > st->hi) return i;
      st->lo = 0x80, st->hi = 0xBF;
      st->need--;
      continue;
    }
    if (c < 0x80) continue;
    st->lo = 0x80, st->hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) st->need = 1;
    else if (c == 0xE0) st->need = 2, st->lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) st->need = 2;
    else if (c == 0xED) st->need = 2, st->hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) st->need = 2;
    else if (c == 0xF0) st->need = 3, st->lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) st->need = 3;
    else if (c == 0xF4) st->need = 3, st->hi = 0x8F;
    else return i;
  }
  return n;
}

/* Where decoding failed. */
struct decode_err {
  uint64_t offset;  /* byte offset in the file, from 0 */
  uint64_t line;
  unsigned char byte;
  int truncated;    /* the file ends inside a multi-byte sequence */
};

typedef int (*sink_fn)(void *ud, const char *p, size_t n);

/* pump() results besides 0 and the sink's own (negative) results. */
#define PUMP_EDECODE 1 /* *de says where */
#define PUMP_EIO 2
#define PUMP_ENOMEM 3

/* Reads the whole source from `skip` bytes on, decoding `enc` to UTF-8 and
 * handing it to `sink` (may be NULL: check only). Returns 0, a PUMP_E*
 * code, or the sink's non-zero result. */
static int pump(struct src *s, int enc, size_t skip, sink_fn sink, void *ud,
                struct decode_err *de, uint64_t *bytes_out) {
  unsigned char *in = malloc(RAW_CHUNK);
  char *out = enc == CSVIMPORT_ENC_GB18030 ? malloc(OUT_CHUNK) : NULL;
  iconv_t cd = (iconv_t)-1;
  int rc = 0;
  uint64_t consumed = 0, lines = 1; /* file offset of in[0]; LFs before it */
  size_t have = 0;                  /* bytes pending in `in` */
  struct u8state u8 = {0, 0x80, 0xBF};
  memset(de, 0, sizeof *de);
  if (!in || (enc == CSVIMPORT_ENC_GB18030 && !out)) {
    rc = PUMP_ENOMEM;
    goto done;
  }
  if (enc == CSVIMPORT_ENC_GB18030) {
    cd = iconv_open("UTF-8", "GB18030");
    if (cd == (iconv_t)-1) {
      rc = PUMP_ENOMEM;
      goto done;
    }
  }
  if (src_rewind(s) != 0) {
    rc = PUMP_EIO;
    goto done;
  }
  for (size_t left = skip; left > 0;) {
    size_t got = src_read(s, in, left < RAW_CHUNK ? left : RAW_CHUNK);
    if (got == 0) break;
    left -= got;
    consumed += got;
  }
  for (;;) {
    size_t got = src_read(s, in + have, RAW_CHUNK - have);
    if (s->ioerr) {
      rc = PUMP_EIO;
      goto done;
    }
    size_t avail = have + got;
    int eof = got == 0;
    if (avail == 0) break;
    if (enc != CSVIMPORT_ENC_GB18030) {
      size_t bad = u8_scan(&u8, in + have, got);
      if (bad < got) {
        de->offset = consumed + have + bad;
        de->line = lines + count_lf(in, have + bad);
        de->byte = in[have + bad];
        rc = PUMP_EDECODE;
        goto done;
      }
      if (eof) {
        if (u8.need) {
          de->offset = consumed + have;
          de->line = lines + count_lf(in, have);
          de->truncated = 1;
          rc = PUMP_EDECODE;
        }
        goto done;
      }
      if (sink && (rc = sink(ud, (const char *)in + have, got)) != 0)
        goto done;
      lines += count_lf(in + have, got);
      consumed += got;
      have = 0;
      continue;
    }
    /* GB18030 through iconv; an incomplete sequence at the end of the
     * chunk is kept for the next read. */
    char *ip = (char *)in;
    size_t il = avail;
    while (il > 0) {
      char *op = out;
      size_t ol = OUT_CHUNK;
      size_t r = iconv(cd, &ip, &il, &op, &ol);
      int e = r == (size_t)-1 ? errno : 0;
      if (sink && op > out && (rc = sink(ud, out, (size_t)(op - out))) != 0)
        goto done;
      if (e == E2BIG) continue;
      if (e == EILSEQ || (e == EINVAL && eof)) {
        size_t at = (size_t)(ip - (char *)in);
        de->offset = consumed + at;
        de->line = lines + count_lf(in, at);
        de->byte = in[at];
        de->truncated = e == EINVAL;
        rc = PUMP_EDECODE;
        goto done;
      }
      if (e == EINVAL) break; /* incomplete tail: read more */
      if (e != 0) {
        rc = PUMP_ENOMEM;
        goto done;
      }
    }
    size_t used = avail - il;
    lines += count_lf(in, used);
    consumed += used;
    memmove(in, in + used, il);
    have = il;
    if (eof) break;
  }
done:
  if (bytes_out) *bytes_out = consumed + have;
  if (cd != (iconv_t)-1) iconv_close(cd);
  free(in);
  free(out);
  return rc;
}

/* ------------------------------------------------------------- parsing */

struct ctx {
  struct csv_parser p;
  const struct csvimport_opts *opts;
  csvimport_row_cb cb;
  void *ud;
  struct csvimport_summary *sum;
  int err;            /* file-level error found in a callback */
  uint64_t line;      /* physical line being fed, from 1 */
  uint64_t row_start; /* line where the current row started */
  int row_open;       /* bytes of a row have been fed since the last end */
  int last_nl;        /* the last byte fed was a LF */
  int header_done;
  /* header */
  int nhdr;
  int colmap[MAX_HEADER_FIELDS];
  char hdr[MAX_HEADER_FIELDS][MAX_HEADER_NAME + 1];
  size_t hdrlen[MAX_HEADER_FIELDS];
  /* current row */
  size_t nfield;
  int nonempty;
  char val[CSVIMPORT_NCOLS][CSVIMPORT_MAX_FIELD_BYTES + 1];
  size_t vlen[CSVIMPORT_NCOLS];
  int vnul[CSVIMPORT_NCOLS];
  struct csv_row row;
  char why[CSVIMPORT_WHY_MAX];
  size_t whyused;
  int first_code, first_col;
};

static void *capped_realloc(void *ptr, size_t n) {
  if (n > PARSER_BUF_CAP) return NULL;
  return realloc(ptr, n);
}

static int is_ws(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims ASCII blanks and U+3000 (ideographic space) at both ends. */
static void trim(const char **s, size_t *n) {
  const char *p = *s;
  size_t len = *n;
  for (;;) {
    if (len && is_ws((unsigned char)*p)) p++, len--;
    else if (len >= 3 && memcmp(p, "\xE3\x80\x80", 3) == 0) p += 3, len -= 3;
    else break;
  }
  for (;;) {
    if (len && is_ws((unsigned char)p[len - 1])) len--;
    else if (len >= 3 && memcmp(p + len - 3, "\xE3\x80\x80", 3) == 0) len -= 3;
    else break;
  }
  *s = p;
  *n = len;
}

static void field_cb(void *data, size_t len, void *ud) {
  struct ctx *c = ud;
  size_t f = c->nfield++;
  const char *s = data ? data : "";
  if (c->err) return;
  trim(&s, &len);
  if (len) c->nonempty = 1;
  if (!c->header_done) {
    if (f >= MAX_HEADER_FIELDS) return;
    size_t n = len > MAX_HEADER_NAME ? MAX_HEADER_NAME : len;
    memcpy(c->hdr[f], s, n);
    c->hdr[f][n] = '\0';
    c->hdrlen[f] = len;
    return;
  }
  if (f >= (size_t)c->nhdr) return;
  int col = c->colmap[f];
  size_t n = len > CSVIMPORT_MAX_FIELD_BYTES ? CSVIMPORT_MAX_FIELD_BYTES : len;
  memcpy(c->val[col], s, n);
  c->val[col][n] = '\0';
  c->vlen[col] = len;
  c->vnul[col] = memchr(s, '\0', len) != NULL;
}

static void row_error(struct ctx *c, int code, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void row_error(struct ctx *c, int code, int col, const char *fmt, ...) {
  if (!c->first_code) c->first_code = code, c->first_col = col;
  size_t cap = sizeof c->why;
  if (c->whyused + 1 >= cap) return;
  int w = 0;
  if (c->whyused)
    w = snprintf(c->why + c->whyused, cap - c->whyused, "; ");
  if (w > 0) c->whyused += (size_t)w;
  if (c->whyused >= cap) c->whyused = cap - 1;
  if (col >= 0) {
    w = snprintf(c->why + c->whyused, cap - c->whyused, "%s: ",
                 col_names[col]);
    if (w > 0) c->whyused += (size_t)w;
    if (c->whyused >= cap) c->whyused = cap - 1;
  }
  va_list ap;
  va_start(ap, fmt);
  w = vsnprintf(c->why + c->whyused, cap - c->whyused, fmt, ap);
  va_end(ap);
  if (w > 0) c->whyused += (size_t)w;
  if (c->whyused >= cap) c->whyused = cap - 1;
}

static int header_finish(struct ctx *c) {
  struct csvimport_summary *sum = c->sum;
  if (c->nfield > MAX_HEADER_FIELDS)
    return summary_fail(sum, CSVIMPORT_EHEADER,
                        "header (line %llu): %zu columns, at most %d",
                        (unsigned long long)c->row_start, c->nfield,
                        MAX_HEADER_FIELDS);
  int seen_at[CSVIMPORT_NCOLS];
  for (int i = 0; i < CSVIMPORT_NCOLS; i++) seen_at[i] = -1;
  c->nhdr = (int)c->nfield;
  for (int f = 0; f < c->nhdr; f++) {
    char word[MAX_HEADER_NAME + 1], shown[96];
    quote_text(shown, sizeof shown, c->hdr[f], 40);
    if (c->hdrlen[f] == 0)
      return summary_fail(sum, CSVIMPORT_EHEADER,
                          "header: column %d has no name", f + 1);
    int col = -1;
    if (c->hdrlen[f] <= MAX_HEADER_NAME &&
        fold_word(c->hdr[f], c->hdrlen[f], word, sizeof word)) {
      for (int k = 0; k < CSVIMPORT_NCOLS && col < 0; k++)
        if (strcmp(word, col_names[k]) == 0) col = k;
      if (col < 0) col = lookup(header_aliases, NELEM(header_aliases), word);
    }
    if (col < 0)
      return summary_fail(sum, CSVIMPORT_EHEADER,
                          "header: unknown column '%s' (column %d); the "
                          "template's columns are id_number, name, kind, "
                          "issuer, code, title, level, credits, score, "
                          "awarded_on, depositor_role, depositor_code, "
                          "depositor_name",
                          shown, f + 1);
    if (seen_at[col] >= 0)
      return summary_fail(sum, CSVIMPORT_EHEADER,
                          "header: column '%s' appears twice (columns %d and "
                          "%d)",
                          col_names[col], seen_at[col] + 1, f + 1);
    seen_at[col] = f;
    c->colmap[f] = col;
  }
  for (int k = 0; k < CSVIMPORT_NCOLS; k++) {
    sum->columns[k] = seen_at[k] >= 0;
    if (col_required[k] && seen_at[k] < 0)
      return summary_fail(sum, CSVIMPORT_EHEADER,
                          "header: missing required column '%s'",
                          col_names[k]);
  }
  return 0;
}

/* Makes a field's text safe to store: line breaks and tabs inside become
 * one space; other control characters (C0, DEL, C1) are refused. */
static int clean_text(struct ctx *c, int col) {
  char *s = c->val[col];
  size_t n = strlen(s), o = 0;
  if (c->vnul[col]) {
    row_error(c, CSVIMPORT_ROW_ETEXT, col, "contains a NUL byte");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\r' || ch == '\n' || ch == '\t') {
      if (o == 0 || s[o - 1] != ' ') s[o++] = ' ';
      continue;
    }
    if (ch < 0x20 || ch == 0x7F ||
        (ch == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] < 0xA0)) {
      row_error(c, CSVIMPORT_ROW_ETEXT, col,
                "control character U+%04X at byte %zu",
                ch == 0xC2 ? (unsigned char)s[i + 1] : ch, i + 1);
      return -1;
    }
    s[o++] = (char)ch;
  }
  s[o] = '\0';
  c->vlen[col] = c->vlen[col] - n + o;
  return 0;
}

/* Copies column `col` into dst (max bytes + NUL); checks the length bound
 * and, if required, that it is not empty. Returns 1 if a value was set. */
static int take_text(struct ctx *c, int col, char *dst, size_t max) {
  dst[0] = '\0';
  if (!c->sum->columns[col]) return 0;
  if (c->vlen[col] > max) {
    row_error(c, CSVIMPORT_ROW_ETOOLONG, col, "%zu bytes, at most %zu",
              c->vlen[col], max);
    return 0;
  }
  if (clean_text(c, col) != 0) return 0;
  if (c->vlen[col] == 0) {
    if (col_required[col])
      row_error(c, CSVIMPORT_ROW_EREQUIRED, col, "required, but empty");
    return 0;
  }
  memcpy(dst, c->val[col], c->vlen[col] + 1);
  return 1;
}

int csvimport_parse_credits(const char *s, int64_t *out_milli) {
  if (!s || !out_milli) return -1;
  int64_t whole = 0, frac = 0;
  const char *p = s;
  if (*p < '0' || *p > '9') return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    whole = whole * 10 + (*p - '0');
    if (whole > CSVIMPORT_MAX_CREDITS_MILLI / 1000) return -1;
  }
  if (*p == '.') {
    p++;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
      if (++digits > 3) return -1;
      frac = frac * 10 + (*p - '0');
    }
    if (digits == 0) return -1;
    for (; digits < 3; digits++) frac *= 10;
  }
  if (*p != '\0') return -1;
  int64_t milli = whole * 1000 + frac;
  if (milli > CSVIMPORT_MAX_CREDITS_MILLI) return -1;
  *out_milli = milli;
  return 0;
}

/* Reads 1..maxd digits; returns the number of digits read. */
static int read_num(const char **p, int maxd, int *out) {
  int v = 0, d = 0;
  while (d < maxd && **p >= '0' && **p <= '9') v = v * 10 + (*(*p)++ - '0'), d++;
  *out = v;
  return d;
}

int csvimport_parse_date(const char *s, int32_t *out) {
  if (!s || !out) return -1;
  const char *p = s;
  int y, m, d;
  if (strlen(s) == 8 && strspn(s, "0123456789") == 8) {
    read_num(&p, 8, &y);
    if (!idcard_date_is_real(y)) return -1;
    *out = y;
    return 0;
  }
  if (read_num(&p, 4, &y) != 4) return -1;
  if (strncmp(p, "年", 3) == 0) {
    p += 3;
    if (read_num(&p, 2, &m) < 1 || strncmp(p, "月", 3) != 0) return -1;
    p += 3;
    if (read_num(&p, 2, &d) < 1 || strncmp(p, "日", 3) != 0) return -1;
    p += 3;
  } else {
    char sep = *p;
    if (sep != '-' && sep != '/') return -1;
    p++;
    if (read_num(&p, 2, &m) < 1 || *p != sep) return -1;
    p++;
    if (read_num(&p, 2, &d) < 1) return -1;
  }
  if (*p) return -1;
  int32_t v = (int32_t)(y * 10000 + m * 100 + d);
  if (!idcard_date_is_real(v)) return -1;
  *out = v;
  return 0;
}

static int32_t birth_date(const char *id) {
  int32_t v = 0;
  for (int i = 6; i < 14; i++) v = v * 10 + (id[i] - '0');
  return v;
}

static void validate_row(struct ctx *c) {
  struct csv_row *r = &c->row;
  char tmp[CSVIMPORT_TITLE_MAX + 1], shown[96], why[160];
  memset(r, 0, sizeof *r);
  c->why[0] = '\0';
  c->whyused = 0;
  c->first_code = 0;
  c->first_col = -1;

  if (c->nfield != (size_t)c->nhdr) {
    row_error(c, CSVIMPORT_ROW_EFIELDCOUNT, -1,
              "row has %zu fields, the header has %d", c->nfield, c->nhdr);
    return;
  }
  if (take_text(c, CSVIMPORT_COL_ID_NUMBER, tmp, CSVIMPORT_TITLE_MAX)) {
    int rc = idcard_validate(tmp, c->opts->today_yyyymmdd, r->id_number, why,
                             sizeof why);
    if (rc != IDCARD_OK)
      row_error(c, CSVIMPORT_ROW_EIDNUMBER, CSVIMPORT_COL_ID_NUMBER, "%s",
                why);
  }
  take_text(c, CSVIMPORT_COL_NAME, r->name, CSVIMPORT_NAME_MAX);
  if (take_text(c, CSVIMPORT_COL_KIND, tmp, CSVIMPORT_TITLE_MAX)) {
    char word[CSVIMPORT_TITLE_MAX + 1];
    fold_word(tmp, strlen(tmp), word, sizeof word);
    r->kind = lookup(kind_words, NELEM(kind_words), word);
    if (r->kind < 0) {
      r->kind = 0;
      quote_text(shown, sizeof shown, tmp, 40);
      row_error(c, CSVIMPORT_ROW_EKIND, CSVIMPORT_COL_KIND,
                "unknown kind '%s' (academic_course, "
                "vocational_qualification, vocational_skill_level, "
                "non_formal, cultural_leisure)",
                shown);
    }
  }
  take_text(c, CSVIMPORT_COL_ISSUER, r->issuer, CSVIMPORT_CODE_MAX);
  take_text(c, CSVIMPORT_COL_CODE, r->code, CSVIMPORT_CODE_MAX);
  take_text(c, CSVIMPORT_COL_TITLE, r->title, CSVIMPORT_TITLE_MAX);
  take_text(c, CSVIMPORT_COL_LEVEL, r->level, CSVIMPORT_LEVEL_MAX);
  if (take_text(c, CSVIMPORT_COL_CREDITS, tmp, CSVIMPORT_TITLE_MAX) &&
      csvimport_parse_credits(tmp, &r->credits_milli) != 0) {
    quote_text(shown, sizeof shown, tmp, 40);
    row_error(c, CSVIMPORT_ROW_ECREDITS, CSVIMPORT_COL_CREDITS,
              "'%s' is not a decimal from 0 to %d with at most 3 decimals",
              shown, CSVIMPORT_MAX_CREDITS_MILLI / 1000);
  }
  take_text(c, CSVIMPORT_COL_SCORE, r->score, CSVIMPORT_SCORE_MAX);
  if (take_text(c, CSVIMPORT_COL_AWARDED_ON, tmp, CSVIMPORT_TITLE_MAX)) {
    quote_text(shown, sizeof shown, tmp, 40);
    int32_t today = c->opts->today_yyyymmdd;
    if (csvimport_parse_date(tmp, &r->awarded_on) != 0)
      row_error(c, CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON,
                "'%s' is not a real date (YYYY-MM-DD or YYYYMMDD)", shown);
    else if (r->awarded_on < CSVIMPORT_MIN_AWARDED)
      row_error(c, CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON,
                "'%s' is before 1900-01-01", shown);
    else if (r->awarded_on > CSVIMPORT_MAX_AWARDED)
      row_error(c, CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON,
                "'%s' is after 2099-12-31", shown);
    else if (today > 0 && r->awarded_on > today)
      row_error(c, CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON,
                "'%s' is in the future (today is %08d)", shown, (int)today);
    else if (r->id_number[0] && r->awarded_on < birth_date(r->id_number))
      row_error(c, CSVIMPORT_ROW_EDATE, CSVIMPORT_COL_AWARDED_ON,
                "'%s' is before the learner's birth date", shown);
  }
  if (take_text(c, CSVIMPORT_COL_DEPOSITOR_ROLE, tmp, CSVIMPORT_TITLE_MAX)) {
    char word[CSVIMPORT_TITLE_MAX + 1];
    fold_word(tmp, strlen(tmp), word, sizeof word);
    r->depositor_role = lookup(role_words, NELEM(role_words), word);
    if (r->depositor_role < 0) {
      r->depositor_role = 0;
      quote_text(shown, sizeof shown, tmp, 40);
      row_error(c, CSVIMPORT_ROW_EROLE, CSVIMPORT_COL_DEPOSITOR_ROLE,
                "unknown role '%s' (outlet, branch, appraisal_centre, "
                "management_centre)",
                shown);
    }
  }
  take_text(c, CSVIMPORT_COL_DEPOSITOR_CODE, r->depositor_code,
            CSVIMPORT_CODE_MAX);
  take_text(c, CSVIMPORT_COL_DEPOSITOR_NAME, r->depositor_name,
            CSVIMPORT_DEPOSITOR_NAME_MAX);
}

static void row_cb(int term, void *ud) {
  struct ctx *c = ud;
  (void)term;
  size_t nfield = c->nfield;
  int nonempty = c->nonempty;
  c->nfield = 0;
  c->nonempty = 0;
  c->row_open = 0;
  if (c->err) return;
  if (!nonempty) goto reset; /* blank or ",,,," rows are skipped */
  if (!c->header_done) {
    c->nfield = nfield;
    c->err = header_finish(c);
    c->nfield = 0;
    c->header_done = 1;
    goto reset;
  }
  c->nfield = nfield;
  validate_row(c);
  c->nfield = 0;
  struct csvimport_summary *sum = c->sum;
  sum->rows++;
  int stop;
  if (c->first_code) {
    sum->invalid++;
    struct csvimport_row_error e = {c->first_code, c->first_col, c->why};
    stop = c->cb ? c->cb(c->ud, c->row_start, sum->rows, NULL, &e) : 0;
  } else {
    sum->valid++;
    stop = c->cb ? c->cb(c->ud, c->row_start, sum->rows, &c->row, NULL) : 0;
  }
  if (stop)
    c->err = summary_fail(sum, CSVIMPORT_ESTOPPED,
                          "stopped by the caller at line %llu",
                          (unsigned long long)c->row_start);
reset:
  for (int k = 0; k < CSVIMPORT_NCOLS; k++) {
    c->val[k][0] = '\0';
    c->vlen[k] = 0;
    c->vnul[k] = 0;
  }
}

static int parse_error(struct ctx *c) {
  int e = csv_error(&c->p);
  if (e == CSV_ENOMEM || e == CSV_ETOOBIG)
    return summary_fail(c->sum, CSVIMPORT_ETOOBIG,
                        "line %llu: a field longer than %u bytes (row "
                        "starting at line %llu; an unclosed quote?)",
                        (unsigned long long)c->line,
                        (unsigned)CSVIMPORT_MAX_FIELD_BYTES,
                        (unsigned long long)c->row_start);
  return summary_fail(c->sum, CSVIMPORT_EPARSE,
                      "line %llu: malformed quoting (a quote inside an "
                      "unquoted field, or text after a closing quote); "
                      "RFC 4180 writes a quote inside a quoted field as \"\"",
                      (unsigned long long)c->line);
}

/* Sink of decoded UTF-8: fed to libcsv one physical line at a time so the
 * line where each row starts is known. */
static int feed(void *ud, const char *p, size_t n) {
  struct ctx *c = ud;
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t seg = nl ? (size_t)(nl - p) + 1 : n;
    if (!c->row_open) {
      c->row_start = c->line;
      for (size_t i = 0; i < seg; i++)
        if (!is_ws((unsigned char)p[i])) {
          c->row_open = 1;
          break;
        }
    }
    if (csv_parse(&c->p, p, seg, field_cb, row_cb, c) != seg)
      return c->err ? c->err : parse_error(c);
    if (c->err) return c->err;
    if (nl) c->line++;
    c->last_nl = nl != NULL;
    p += seg;
    n -= seg;
  }
  return 0;
}

static int run(struct src *s, const struct csvimport_opts *opts_in,
               csvimport_row_cb cb, void *ud, struct csvimport_summary *sum) {
  static const struct csvimport_opts defaults = {0, CSVIMPORT_ENC_AUTO};
  const struct csvimport_opts *opts = opts_in ? opts_in : &defaults;
  unsigned char head[4] = {0};
  size_t nhead = src_read(s, head, sizeof head);
  if (s->ioerr)
    return summary_fail(sum, CSVIMPORT_EIO, "read error: %s",
                        strerror(s->ioerr));
  if (nhead == 0)
    return summary_fail(sum, CSVIMPORT_EEMPTY, "the file is empty (0 bytes)");
  if (nhead >= 2 && ((head[0] == 0xFF && head[1] == 0xFE) ||
                     (head[0] == 0xFE && head[1] == 0xFF)))
    return summary_fail(sum, CSVIMPORT_EENCODING,
                        "the file is UTF-16 (byte-order mark %02X %02X); "
                        "save it as 'CSV UTF-8' or GB18030 CSV",
                        head[0], head[1]);
  size_t skip = 0;
  int enc = opts->encoding;
  if (enc < CSVIMPORT_ENC_AUTO || enc > CSVIMPORT_ENC_GB18030)
    return summary_fail(sum, CSVIMPORT_EINVAL, "unknown encoding %d", enc);
  if (nhead >= 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0 &&
      enc != CSVIMPORT_ENC_GB18030) {
    skip = 3;
    enc = CSVIMPORT_ENC_UTF8;
    sum->had_bom = 1;
  } else if (nhead == 4 && memcmp(head, "\x84\x31\x95\x33", 4) == 0 &&
             enc != CSVIMPORT_ENC_UTF8) {
    skip = 4; /* GB18030's encoding of U+FEFF */
    enc = CSVIMPORT_ENC_GB18030;
  }

  /* Pass 1: the whole input must decode before any row is reported. */
  struct decode_err u8e, gbe;
  int rc = 0;
  if (enc != CSVIMPORT_ENC_GB18030) {
    rc = pump(s, CSVIMPORT_ENC_UTF8, skip, NULL, NULL, &u8e, &sum->bytes);
    if (rc == 0) enc = CSVIMPORT_ENC_UTF8;
  }
  if (enc == CSVIMPORT_ENC_GB18030 || (rc == PUMP_EDECODE && enc == CSVIMPORT_ENC_AUTO)) {
    rc = pump(s, CSVIMPORT_ENC_GB18030, skip, NULL, NULL, &gbe, &sum->bytes);
    if (rc == 0) enc = CSVIMPORT_ENC_GB18030;
  }
  if (rc == PUMP_EIO)
    return summary_fail(sum, CSVIMPORT_EIO, "read error: %s",
                        strerror(s->ioerr ? s->ioerr : EIO));
  if (rc == PUMP_ENOMEM)
    return summary_fail(sum, CSVIMPORT_ENOMEM,
                        "cannot set up decoding (out of memory or no "
                        "GB18030 converter)");
  if (rc == PUMP_EDECODE) {
    if (opts->encoding == CSVIMPORT_ENC_AUTO && !sum->had_bom &&
        enc == CSVIMPORT_ENC_AUTO)
      return summary_fail(
          sum, CSVIMPORT_EENCODING,
          "not UTF-8 (byte 0x%02X at offset %llu, line %llu) and not GB18030 "
          "(%s at offset %llu, line %llu); save it as 'CSV UTF-8'",
          u8e.byte, (unsigned long long)u8e.offset,
          (unsigned long long)u8e.line,
          gbe.truncated ? "incomplete sequence" : "invalid sequence",
          (unsigned long long)gbe.offset, (unsigned long long)gbe.line);
    const struct decode_err *e =
        enc == CSVIMPORT_ENC_GB18030 ? &gbe : &u8e;
    return summary_fail(sum, CSVIMPORT_EENCODING,
                        "not valid %s: %s at offset %llu, line %llu",
                        csvimport_encoding_name(enc == CSVIMPORT_ENC_GB18030
                                                    ? enc
                                                    : CSVIMPORT_ENC_UTF8),
                        e->truncated ? "the file ends inside a character"
                                     : "invalid byte sequence",
                        (unsigned long long)e->offset,
                        (unsigned long long)e->line);
  }
  sum->encoding = enc;

  /* Pass 2: decode again and parse. */
  struct ctx *c = calloc(1, sizeof *c);
  if (!c) return summary_fail(sum, CSVIMPORT_ENOMEM, "out of memory");
  if (csv_init(&c->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
    free(c);
    return summary_fail(sum, CSVIMPORT_ENOMEM, "out of memory");
  }
  csv_set_realloc_func(&c->p, capped_realloc);
  c->opts = opts;
  c->cb = cb;
  c->ud = ud;
  c->sum = sum;
  c->line = 1;
  rc = pump(s, enc, skip, feed, c, &u8e, NULL);
  if (rc == PUMP_EIO)
    rc = summary_fail(sum, CSVIMPORT_EIO, "read error: %s",
                      strerror(s->ioerr ? s->ioerr : EIO));
  else if (rc == PUMP_EDECODE || rc == PUMP_ENOMEM)
    /* The file changed between the two passes, or memory ran out. */
    rc = summary_fail(sum, CSVIMPORT_EIO,
                      "the file changed while being read, or decoding failed");
  if (rc == 0) {
    if (!c->row_open) c->row_start = c->line;
    if (csv_fini(&c->p, field_cb, row_cb, c) != 0)
      rc = summary_fail(sum, CSVIMPORT_EPARSE,
                        "unterminated quoted field in the row starting at "
                        "line %llu",
                        (unsigned long long)c->row_start);
    else if (c->err)
      rc = c->err;
  }
  sum->lines = c->line - (c->last_nl ? 1u : 0u);
  if (rc == 0 && !c->header_done)
    rc = summary_fail(sum, CSVIMPORT_EEMPTY,
                      "the file has no header row (only blank lines)");
  else if (rc == 0 && sum->rows == 0)
    rc = summary_fail(sum, CSVIMPORT_ENODATA,
                      "the file has a header but no data rows");
  csv_free(&c->p);
  free(c);
  return rc;
}

static void summary_init(struct csvimport_summary *sum) {
  memset(sum, 0, sizeof *sum);
}

int csvimport_buffer(const void *buf, size_t len,
                     const struct csvimport_opts *opts, csvimport_row_cb cb,
                     void *ud, struct csvimport_summary *sum) {
  if (!sum) return CSVIMPORT_EINVAL;
  summary_init(sum);
  if (!buf && len)
    return summary_fail(sum, CSVIMPORT_EINVAL, "no buffer given");
  struct src s = {.buf = buf ? buf : (const void *)"", .len = len};
  return run(&s, opts, cb, ud, sum);
}

static int read_stdin(struct csvimport_summary *sum, unsigned char **out,
                      size_t *outlen) {
  size_t cap = 0, len = 0;
  unsigned char *b = NULL;
  for (;;) {
    if (len == cap) {
      if (cap >= CSVIMPORT_MAX_STDIN_BYTES) {
        free(b);
        return summary_fail(sum, CSVIMPORT_ETOOBIG,
                            "standard input is larger than %u bytes; give "
                            "a file name",
                            CSVIMPORT_MAX_STDIN_BYTES);
      }
      cap = cap ? cap * 2 : RAW_CHUNK;
      unsigned char *nb = realloc(b, cap);
      if (!nb) {
        free(b);
        return summary_fail(sum, CSVIMPORT_ENOMEM, "out of memory");
      }
      b = nb;
    }
    size_t got = fread(b + len, 1, cap - len, stdin);
    len += got;
    if (got == 0) break;
  }
  if (ferror(stdin)) {
    free(b);
    return summary_fail(sum, CSVIMPORT_EIO, "read error on standard input");
  }
  *out = b;
  *outlen = len;
  return 0;
}

int csvimport_file(const char *path, const struct csvimport_opts *opts,
                   csvimport_row_cb cb, void *ud,
                   struct csvimport_summary *sum) {
  if (!sum) return CSVIMPORT_EINVAL;
  summary_init(sum);
  if (!path) return summary_fail(sum, CSVIMPORT_EINVAL, "no file given");
  if (strcmp(path, "-") == 0) {
    unsigned char *b = NULL;
    size_t len = 0;
    int rc = read_stdin(sum, &b, &len);
    if (rc) return rc;
    struct src s = {.buf = b ? b : (const unsigned char *)"", .len = len};
    rc = run(&s, opts, cb, ud, sum);
    free(b);
    return rc;
  }
  FILE *f = fopen(path, "rb");
  if (!f)
    return summary_fail(sum, CSVIMPORT_EIO, "cannot open %s: %s", path,
                        strerror(errno));
  struct src s = {.f = f};
  int rc = run(&s, opts, cb, ud, sum);
  fclose(f);
  return rc;
}

/* ------------------------------------------------------------- digest */

static size_t put_str(unsigned char *b, size_t o, const char *s) {
  size_t n = strlen(s);
  b[o++] = (unsigned char)(n >> 8);
  b[o++] = (unsigned char)n;
  memcpy(b + o, s, n);
  return o + n;
}

static size_t put_i64(unsigned char *b, size_t o, int64_t v) {
  for (int i = 7; i >= 0; i--) b[o++] = (unsigned char)((uint64_t)v >> (8 * i));
  return o;
}

void csvimport_row_digest(const struct csv_row *r, unsigned char out[32]) {
  /* Every string is bounded well below 64 KiB, so 2-byte lengths. */
  unsigned char b[sizeof(struct csv_row) + 64];
  size_t o = 0;
  memcpy(b, "cb.csvrow.v1", 12);
  o = 12;
  o = put_str(b, o, r->id_number);
  o = put_str(b, o, r->name);
  o = put_i64(b, o, r->kind);
  o = put_str(b, o, r->issuer);
  o = put_str(b, o, r->code);
  o = put_str(b, o, r->title);
  o = put_str(b, o, r->level);
  o = put_i64(b, o, r->credits_milli);
  o = put_str(b, o, r->score);
  o = put_i64(b, o, r->awarded_on);
  o = put_i64(b, o, r->depositor_role);
  o = put_str(b, o, r->depositor_code);
  o = put_str(b, o, r->depositor_name);
  unsigned int len = 0;
  if (EVP_Digest(b, o, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
    abort(); /* SHA-256 cannot fail short of a broken library */
}
