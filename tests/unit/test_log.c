/* JSON-lines log: one parseable object per line, fixed keys first, level
 * filter, rate limiting of untrusted-input lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

static FILE *capture;

static int setup(void **state)
{
  (void)state;
  capture = tmpfile();
  assert_non_null(capture);
  log_set_fd(fileno(capture));
  log_set_level(LOG_INFO);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  log_set_fd(2);
  fclose(capture);
  return 0;
}

/* Returns the lines written so far as parsed JSON objects (array). */
static json_t *read_lines(void)
{
  json_t *arr = json_array();
  rewind(capture);
  char line[8192];
  while (fgets(line, sizeof line, capture)) {
    size_t n = strlen(line);
    assert_true(n > 0 && line[n - 1] == '\n');
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    assert_non_null(o);
    json_array_append_new(arr, o);
  }
  return arr;
}

static void test_line_shape(void **state)
{
  (void)state;
  log_pack(LOG_INFO, "start", "{s:s, s:I, s:s}", "region", "sh", "pid", (json_int_t)42, "event",
           "must not override");
  json_t *lines = read_lines();
  assert_int_equal(json_array_size(lines), 1);
  json_t *o = json_array_get(lines, 0);
  const char *first_key = json_object_iter_key(json_object_iter(o));
  assert_string_equal(first_key, "ts");
  const char *ts = json_string_value(json_object_get(o, "ts"));
  assert_non_null(ts);
  assert_int_equal(strlen(ts), 24);
  assert_int_equal(ts[23], 'Z');
  assert_int_equal(ts[10], 'T');
  assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
  assert_string_equal(json_string_value(json_object_get(o, "event")), "start");
  assert_string_equal(json_string_value(json_object_get(o, "region")), "sh");
  assert_int_equal(json_integer_value(json_object_get(o, "pid")), 42);
  json_decref(lines);
}

static void test_escaping_and_level(void **state)
{
  (void)state;
  log_pack(LOG_DEBUG, "hidden", NULL);
  log_pack(LOG_WARN, "bad_input", "{s:s}", "reason", "line\nbreak \"quoted\" 学分");
  json_t *lines = read_lines();
  assert_int_equal(json_array_size(lines), 1);
  json_t *o = json_array_get(lines, 0);
  assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
  assert_string_equal(json_string_value(json_object_get(o, "reason")),
                      "line\nbreak \"quoted\" 学分");
  json_decref(lines);

  log_level_t l;
  assert_int_equal(log_level_parse("error", &l), 0);
  assert_int_equal(l, LOG_ERROR);
  assert_int_equal(log_level_parse("verbose", &l), -1);
}

static void test_ratelimit(void **state)
{
  (void)state;
  log_ratelimit_t rl;
  log_ratelimit_init(&rl, 1000, 3);
  int written = 0;
  for (int i = 0; i < 10; i++)
    written += log_emit_limited(&rl, 5000 + (uint64_t)i, LOG_WARN, "bad_frame", json_pack("{s:i}", "i", i));
  assert_int_equal(written, 3);
  /* Next window: the first line reports what was dropped. */
  assert_int_equal(log_emit_limited(&rl, 6001, LOG_WARN, "bad_frame", NULL), 1);
  json_t *lines = read_lines();
  assert_int_equal(json_array_size(lines), 4);
  json_t *last = json_array_get(lines, 3);
  assert_int_equal(json_integer_value(json_object_get(last, "suppressed")), 7);
  assert_null(json_object_get(json_array_get(lines, 0), "suppressed"));
  json_decref(lines);
}

static void test_format_ts(void **state)
{
  (void)state;
  char buf[32];
  log_format_ts(INT64_C(1795964645123), buf, sizeof buf);
  assert_string_equal(buf, "2026-11-29T15:04:05.123Z");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_line_shape, setup, teardown),
    cmocka_unit_test_setup_teardown(test_escaping_and_level, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ratelimit, setup, teardown),
    cmocka_unit_test(test_format_ts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
