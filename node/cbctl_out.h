/* cbctl output: aligned human tables (display width aware: CJK characters
 * take two columns), JSON documents via jansson, and a progress bar for
 * terminals. */
#ifndef CB_CBCTL_OUT_H
#define CB_CBCTL_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Terminal columns a UTF-8 string takes (East Asian wide and fullwidth
 * characters count 2, combining marks 0). Invalid bytes count 1 each. */
size_t cbctl_display_width(const char *s);

/* A table of string cells; the table owns copies. */
typedef struct cbctl_table {
  size_t ncols;
  size_t nrows;
  size_t cap;
  char **cells;          /* (nrows + 1) * ncols, row 0 is the header */
  unsigned right_align;  /* bit i set: column i is right-aligned (numbers) */
} cbctl_table_t;

int cbctl_table_init(cbctl_table_t *t, size_t ncols, const char *const *headers);
/* Appends a row of ncols cells (NULL cells print as empty). */
int cbctl_table_add(cbctl_table_t *t, const char *const *cells);
void cbctl_table_print(const cbctl_table_t *t, FILE *f);
void cbctl_table_free(cbctl_table_t *t);

/* Prints "key  value" lines with keys padded to the same width. */
void cbctl_print_kv(FILE *f, const char *const *keys, const char *const *values, size_t n);

/* Writes doc (stolen) to stdout as one JSON document and a newline. */
void cbctl_json_print(json_t *doc);

/* Credits in thousandths as a decimal string: 2500 -> "2.5", 3000 -> "3". */
void cbctl_format_credits(int64_t milli, char *buf, size_t len);
/* 20240630 -> "2024-06-30". */
void cbctl_format_date(int32_t yyyymmdd, char *buf, size_t len);
/* Lower-case hex of len bytes into buf (2 * len + 1). */
void cbctl_hex(const uint8_t *p, size_t len, char *buf);
/* Bytes as "12.3 MiB". */
void cbctl_format_bytes(uint64_t n, char *buf, size_t len);

/* Progress bar on stderr, drawn only when stderr is a terminal. */
typedef struct cbctl_progress {
  int enabled;
  uint64_t total;
  uint64_t done;
  const char *label;
  int64_t started_ms;
  int64_t last_draw_ms;
} cbctl_progress_t;

void cbctl_progress_start(cbctl_progress_t *p, const char *label, uint64_t total, int allow);
void cbctl_progress_update(cbctl_progress_t *p, uint64_t done);
void cbctl_progress_finish(cbctl_progress_t *p);

#endif
