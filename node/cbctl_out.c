/* cbctl output helpers: see cbctl_out.h. */
#include "cbctl_out.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Decodes one UTF-8 sequence; returns its length (1 for invalid bytes,
 * with *cp = 0xFFFD). */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
  unsigned c = p[0];
  size_t n;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    v = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    v = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    v = c & 0x07;
  } else {
    *cp = 0xfffd;
    return 1;
  }
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) {
      *cp = 0xfffd;
      return 1;
    }
    v = v << 6 | (p[i] & 0x3f);
  }
  *cp = v;
  return n;
}

/* East Asian Wide (W) and Fullwidth (F) ranges, and zero-width marks; a
 * compact table of the blocks that occur in names and titles. */
static int cp_width(uint32_t c)
{
  if (c == 0) return 0;
  if ((c >= 0x0300 && c <= 0x036f) || (c >= 0x200b && c <= 0x200f) || (c >= 0xfe00 && c <= 0xfe0f))
    return 0;
  if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0x303e) || (c >= 0x3041 && c <= 0x33ff) ||
      (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xa000 && c <= 0xa4cf) ||
      (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) ||
      (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
      (c >= 0x20000 && c <= 0x3fffd))
    return 2;
  return 1;
}

size_t cbctl_display_width(const char *s)
{
  size_t w = 0;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    uint32_t cp;
    p += utf8_next(p, &cp);
    w += (size_t)cp_width(cp);
  }
  return w;
}

int cbctl_table_init(cbctl_table_t *t, size_t ncols, const char *const *headers)
{
  memset(t, 0, sizeof *t);
  t->ncols = ncols;
  t->cap = 16;
  t->cells = calloc(t->cap * ncols, sizeof *t->cells);
  if (!t->cells) return -1;
  for (size_t i = 0; i < ncols; i++) t->cells[i] = strdup(headers[i]);
  return 0;
}

int cbctl_table_add(cbctl_table_t *t, const char *const *cells)
{
  if (t->nrows + 2 > t->cap) {
    size_t cap = t->cap * 2;
    char **p = realloc(t->cells, cap * t->ncols * sizeof *p);
    if (!p) return -1;
    t->cells = p;
    t->cap = cap;
  }
  char **row = t->cells + (t->nrows + 1) * t->ncols;
  for (size_t i = 0; i < t->ncols; i++) row[i] = strdup(cells[i] ? cells[i] : "");
  t->nrows++;
  return 0;
}

static void pad(FILE *f, size_t n)
{
  while (n--) fputc(' ', f);
}

void cbctl_table_print(const cbctl_table_t *t, FILE *f)
{
  size_t *w = calloc(t->ncols, sizeof *w);
  if (!w) return;
  for (size_t r = 0; r <= t->nrows; r++)
    for (size_t c = 0; c < t->ncols; c++) {
      size_t cw = cbctl_display_width(t->cells[r * t->ncols + c]);
      if (cw > w[c]) w[c] = cw;
    }
  for (size_t r = 0; r <= t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      const char *cell = t->cells[r * t->ncols + c];
      size_t gap = w[c] - cbctl_display_width(cell);
      int right = (t->right_align >> c) & 1u;
      if (c) fputs("  ", f);
      if (right) pad(f, gap);
      fputs(cell, f);
      if (!right && c + 1 < t->ncols) pad(f, gap);
    }
    fputc('\n', f);
    if (r == 0) {
      for (size_t c = 0; c < t->ncols; c++) {
        if (c) fputs("  ", f);
        for (size_t i = 0; i < w[c]; i++) fputc('-', f);
      }
      fputc('\n', f);
    }
  }
  free(w);
}

void cbctl_table_free(cbctl_table_t *t)
{
  if (!t->cells) return;
  for (size_t i = 0; i < (t->nrows + 1) * t->ncols; i++) free(t->cells[i]);
  free(t->cells);
  memset(t, 0, sizeof *t);
}

void cbctl_print_kv(FILE *f, const char *const *keys, const char *const *values, size_t n)
{
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    size_t kw = cbctl_display_width(keys[i]);
    if (kw > w) w = kw;
  }
  for (size_t i = 0; i < n; i++) {
    fputs("  ", f);
    fputs(keys[i], f);
    pad(f, w - cbctl_display_width(keys[i]) + 2);
    fputs(values[i] ? values[i] : "", f);
    fputc('\n', f);
  }
}

void cbctl_json_print(json_t *doc)
{
  char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(doc);
  if (!s) return;
  fputs(s, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  free(s);
}

void cbctl_format_credits(int64_t milli, char *buf, size_t len)
{
  int neg = milli < 0;
  uint64_t m = neg ? (uint64_t)(-(milli + 1)) + 1 : (uint64_t)milli;
  uint64_t whole = m / 1000, frac = m % 1000;
  if (frac == 0) {
    snprintf(buf, len, "%s%" PRIu64, neg ? "-" : "", whole);
    return;
  }
  char f[4];
  snprintf(f, sizeof f, "%03u", (unsigned)frac);
  if (f[2] == '0') f[2] = '\0';
  if (f[1] == '0' && f[2] == '\0') f[1] = '\0';
  snprintf(buf, len, "%s%" PRIu64 ".%s", neg ? "-" : "", whole, f);
}

void cbctl_format_date(int32_t d, char *buf, size_t len)
{
  snprintf(buf, len, "%04d-%02d-%02d", (int)(d / 10000), (int)(d / 100 % 100), (int)(d % 100));
}

void cbctl_hex(const uint8_t *p, size_t len, char *buf)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    buf[2 * i] = digits[p[i] >> 4];
    buf[2 * i + 1] = digits[p[i] & 15];
  }
  buf[2 * len] = '\0';
}

void cbctl_format_bytes(uint64_t n, char *buf, size_t len)
{
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    u++;
  }
  if (u == 0) snprintf(buf, len, "%" PRIu64 " B", n);
  else snprintf(buf, len, "%.1f %s", v, units[u]);
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cbctl_progress_start(cbctl_progress_t *p, const char *label, uint64_t total, int allow)
{
  memset(p, 0, sizeof *p);
  p->enabled = allow && isatty(2) && total > 0;
  p->total = total;
  p->label = label;
  p->started_ms = mono_ms();
  p->last_draw_ms = -1000;
}

static void progress_draw(cbctl_progress_t *p)
{
  enum { WIDTH = 30 };
  uint64_t done = p->done > p->total ? p->total : p->done;
  size_t fill = (size_t)(done * WIDTH / p->total);
  char bar[WIDTH + 1];
  for (size_t i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
  bar[WIDTH] = '\0';
  double secs = (double)(mono_ms() - p->started_ms) / 1000.0;
  double rate = secs > 0 ? (double)done / secs : 0;
  fprintf(stderr, "\r%s [%s] %3u%% %" PRIu64 "/%" PRIu64 " rows %.0f rows/s ", p->label, bar,
          (unsigned)(done * 100 / p->total), done, p->total, rate);
  fflush(stderr);
}

void cbctl_progress_update(cbctl_progress_t *p, uint64_t done)
{
  p->done = done;
  if (!p->enabled) return;
  int64_t now = mono_ms();
  if (now - p->last_draw_ms < 100 && done < p->total) return;
  p->last_draw_ms = now;
  progress_draw(p);
}

void cbctl_progress_finish(cbctl_progress_t *p)
{
  if (!p->enabled) return;
  progress_draw(p);
  fputc('\n', stderr);
  p->enabled = 0;
}
