/* libFuzzer target: an institution's CSV export is untrusted input. The
 * bytes go through encoding detection (UTF-8, BOM, GB18030 via iconv),
 * RFC 4180 parsing and row validation, as `cbctl import` runs them. Nothing
 * may crash, leak or read out of bounds; every row is reported either valid
 * or with a reason; a valid row's fields respect the template's bounds.
 * The first byte chooses the forced encoding so that each decoder is
 * reached. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "csvimport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
  uint64_t rows, valid, invalid, last_line;
} seen_t;

static int row_cb(void *ud, uint64_t line, uint64_t row_index, const struct csv_row *row,
                  const struct csvimport_row_error *err)
{
  seen_t *s = ud;
  assert((row == NULL) != (err == NULL));
  assert(row_index == s->rows + 1);
  /* Rows start on non-decreasing lines. Not strictly increasing: line
   * numbers count LF, and a bare CR also ends a row (spec/import-csv.md). */
  assert(line >= s->last_line);
  s->last_line = line;
  s->rows++;
  if (row) {
    s->valid++;
    assert(row->credits_milli >= 0);
    assert(strlen(row->id_number) == 18);
  } else {
    s->invalid++;
    assert(err->why && err->why[0] != '\0');
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  struct csvimport_opts opts = {.today_yyyymmdd = 20261129, .encoding = data[0] % 3};
  seen_t s = {0};
  struct csvimport_summary sum;
  int rc = csvimport_buffer(data + 1, size - 1, &opts, row_cb, &s, &sum);
  if (rc == 0) {
    assert(sum.rows == s.rows && sum.valid == s.valid && sum.invalid == s.invalid);
  } else {
    assert(rc < 0 && sum.error[0] != '\0');
  }
  return 0;
}
