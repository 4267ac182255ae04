/* Framing: length checks before allocation, streaming reassembly, capped
 * unpacking, envelope validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

static int validate_stats(const Cb__Envelope *env, char *err, size_t errlen)
{
  (void)env;
  (void)err;
  (void)errlen;
  return 0;
}

static int validate_open(const Cb__Envelope *env, char *err, size_t errlen)
{
  const Cb__LearnerOpenRequest *r = env->learner_open_request;
  if (!r || r->id_number[0] == '\0') {
    snprintf(err, errlen, "id_number is required");
    return -FRAME_E_INVALID;
  }
  return 0;
}

static const frame_type_t types[] = {
  {CB__ENVELOPE__MSG_STATS_REQUEST, "StatsRequest", validate_stats},
  {CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST, "LearnerOpenRequest", validate_open},
};
#define NTYPES (sizeof types / sizeof types[0])

static uint8_t *encode_stats(uint32_t version, uint64_t rid, size_t *len)
{
  Cb__Envelope env = CB__ENVELOPE__INIT;
  Cb__StatsRequest sr = CB__STATS_REQUEST__INIT;
  env.version = version;
  env.request_id = rid;
  env.msg_case = CB__ENVELOPE__MSG_STATS_REQUEST;
  env.stats_request = &sr;
  uint8_t *buf;
  assert_int_equal(frame_encode(&env, 1 << 20, &buf, len), 0);
  return buf;
}

static void test_header_bounds(void **state)
{
  (void)state;
  uint32_t len = 0;
  uint8_t zero[4] = {0, 0, 0, 0};
  assert_int_equal(frame_header_decode(zero, 100, &len), -FRAME_E_EMPTY);
  uint8_t hundred[4] = {0, 0, 0, 100};
  assert_int_equal(frame_header_decode(hundred, 100, &len), 0);
  assert_int_equal(len, 100);
  uint8_t over[4] = {0, 0, 0, 101};
  assert_int_equal(frame_header_decode(over, 100, &len), -FRAME_E_TOO_LARGE);
  /* The ceiling applies even if the configured maximum is larger. */
  uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
  assert_int_equal(frame_header_decode(huge, SIZE_MAX, &len), -FRAME_E_TOO_LARGE);
}

static void test_roundtrip_byte_by_byte(void **state)
{
  (void)state;
  size_t n1, n2;
  uint8_t *f1 = encode_stats(1, 7, &n1);
  uint8_t *f2 = encode_stats(1, 8, &n2);
  uint8_t stream[256];
  assert_true(n1 + n2 <= sizeof stream);
  memcpy(stream, f1, n1);
  memcpy(stream + n1, f2, n2);
  frame_reader_t fr;
  frame_reader_init(&fr, 1024);
  int frames = 0;
  uint64_t ids[2] = {0, 0};
  for (size_t i = 0; i < n1 + n2; i++) {
    size_t used;
    int rc = frame_reader_feed(&fr, stream + i, 1, &used);
    assert_true(rc >= 0);
    assert_int_equal(used, 1);
    if (rc == 1) {
      frame_msg_t *m;
      uint64_t rid;
      char err[128];
      assert_int_equal(frame_decode(fr.body, fr.body_len, types, NTYPES, &m, &rid, err, sizeof err), 0);
      assert_int_equal(frame_msg_envelope(m)->msg_case, CB__ENVELOPE__MSG_STATS_REQUEST);
      assert_string_equal(frame_msg_type(m)->name, "StatsRequest");
      ids[frames++] = rid;
      frame_msg_free(m);
      frame_reader_next(&fr);
    }
  }
  assert_int_equal(frames, 2);
  assert_int_equal(ids[0], 7);
  assert_int_equal(ids[1], 8);
  assert_false(frame_reader_partial(&fr));
  frame_reader_free(&fr);
  free(f1);
  free(f2);
}

static void test_two_frames_one_chunk(void **state)
{
  (void)state;
  size_t n1, n2;
  uint8_t *f1 = encode_stats(1, 1, &n1);
  uint8_t *f2 = encode_stats(1, 2, &n2);
  uint8_t stream[256];
  memcpy(stream, f1, n1);
  memcpy(stream + n1, f2, n2);
  frame_reader_t fr;
  frame_reader_init(&fr, 1024);
  size_t used;
  assert_int_equal(frame_reader_feed(&fr, stream, n1 + n2, &used), 1);
  assert_int_equal(used, n1);
  frame_reader_next(&fr);
  assert_int_equal(frame_reader_feed(&fr, stream + used, n2, &used), 1);
  assert_int_equal(used, n2);
  frame_reader_free(&fr);
  free(f1);
  free(f2);
}

/* A peer announcing a large frame and sending a few bytes costs only the
 * bytes sent: the buffer follows the data, not the announced length. */
static void test_oversize_and_lazy_allocation(void **state)
{
  (void)state;
  frame_reader_t fr;
  frame_reader_init(&fr, 1u << 20);
  uint8_t hdr[4] = {0x00, 0x10, 0x00, 0x00}; /* 1 MiB: allowed */
  size_t used;
  assert_int_equal(frame_reader_feed(&fr, hdr, 4, &used), 0);
  uint8_t some[10] = {0};
  assert_int_equal(frame_reader_feed(&fr, some, sizeof some, &used), 0);
  assert_true(fr.body_cap < 8192);
  assert_true(frame_reader_partial(&fr));
  frame_reader_free(&fr);

  frame_reader_init(&fr, 1000);
  uint8_t big[4] = {0x00, 0x00, 0x03, 0xe9}; /* 1001 */
  assert_int_equal(frame_reader_feed(&fr, big, 4, &used), -FRAME_E_TOO_LARGE);
  assert_null(fr.body);
  frame_reader_free(&fr);
}

static void test_decode_errors(void **state)
{
  (void)state;
  frame_msg_t *m;
  uint64_t rid;
  char err[256];

  /* Not protobuf: field 1 with wire type 7 does not exist. */
  uint8_t junk[] = {0x0f, 0xff, 0xff};
  assert_int_equal(frame_decode(junk, sizeof junk, types, NTYPES, &m, &rid, err, sizeof err),
                   -FRAME_E_MALFORMED);
  assert_null(m);
  assert_non_null(strstr(err, "not a valid Envelope"));

  /* A length-delimited field running past the end. */
  uint8_t trunc[] = {0x08, 0x01, 0xaa, 0x01, 0x10, 0x00};
  assert_int_equal(frame_decode(trunc, sizeof trunc, types, NTYPES, &m, &rid, err, sizeof err),
                   -FRAME_E_MALFORMED);

  /* Wrong version. */
  size_t n;
  uint8_t *f = encode_stats(2, 99, &n);
  assert_int_equal(frame_decode(f + 4, n - 4, types, NTYPES, &m, &rid, err, sizeof err),
                   -FRAME_E_VERSION);
  assert_int_equal(rid, 99);
  assert_non_null(strstr(err, "version 2"));
  free(f);

  /* Version 1 but no message set: an unknown oneof field (number 49). */
  uint8_t unknown[] = {0x08, 0x01, 0x10, 0x05, 0x8a, 0x03, 0x00};
  assert_int_equal(frame_decode(unknown, sizeof unknown, types, NTYPES, &m, &rid, err, sizeof err),
                   -FRAME_E_UNKNOWN_TYPE);
  assert_int_equal(rid, 5);

  /* A known type this listener does not serve. */
  Cb__Envelope env = CB__ENVELOPE__INIT;
  Cb__HelloRequest hr = CB__HELLO_REQUEST__INIT;
  env.version = 1;
  env.msg_case = CB__ENVELOPE__MSG_HELLO_REQUEST;
  env.hello_request = &hr;
  assert_int_equal(frame_encode(&env, 1024, &f, &n), 0);
  assert_int_equal(frame_decode(f + 4, n - 4, types, NTYPES, &m, &rid, err, sizeof err),
                   -FRAME_E_UNKNOWN_TYPE);
  assert_non_null(strstr(err, "not served"));
  free(f);

  /* Content check: the validate function's reason comes back. */
  Cb__LearnerOpenRequest lo = CB__LEARNER_OPEN_REQUEST__INIT;
  env.msg_case = CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST;
  env.learner_open_request = &lo;
  assert_int_equal(frame_encode(&env, 1024, &f, &n), 0);
  assert_int_equal(frame_decode(f + 4, n - 4, types, NTYPES, &m, &rid, err, sizeof err),
                   -FRAME_E_INVALID);
  assert_string_equal(err, "LearnerOpenRequest: id_number is required");
  free(f);
}

/* Many empty repeated sub-messages: a small frame that unpacks into a
 * large tree. The allocator cap refuses it. */
static void test_alloc_cap(void **state)
{
  (void)state;
  enum { ROWS = 60000 };
  /* ImportBatchRequest { rows: {} x ROWS } inside Envelope field 17. */
  size_t inner = ROWS * 2;
  uint8_t *buf = malloc(inner + 16);
  size_t o = 0;
  buf[o++] = 0x08; /* version = 1 */
  buf[o++] = 0x01;
  buf[o++] = 0x8a; /* field 17, wire type 2 */
  buf[o++] = 0x01;
  size_t v = inner;
  while (v >= 0x80) {
    buf[o++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  buf[o++] = (uint8_t)v;
  for (int i = 0; i < ROWS; i++) {
    buf[o++] = 0x0a;
    buf[o++] = 0x00;
  }
  static const frame_type_t imp[] = {{CB__ENVELOPE__MSG_IMPORT_BATCH_REQUEST, "ImportBatchRequest", NULL}};
  frame_msg_t *m;
  char err[256];
  assert_int_equal(frame_decode(buf, o, imp, 1, &m, NULL, err, sizeof err), -FRAME_E_ALLOC_CAP);
  assert_null(m);
  free(buf);
}

static void test_encode_limit(void **state)
{
  (void)state;
  Cb__Envelope env = CB__ENVELOPE__INIT;
  Cb__Error e = CB__ERROR__INIT;
  char reason[200];
  memset(reason, 'a', sizeof reason - 1);
  reason[sizeof reason - 1] = '\0';
  e.reason = reason;
  env.version = 1;
  env.msg_case = CB__ENVELOPE__MSG_ERROR;
  env.error = &e;
  uint8_t *f;
  size_t n;
  assert_int_equal(frame_encode(&env, 100, &f, &n), -FRAME_E_TOO_LARGE);
  assert_null(f);
  assert_int_equal(frame_encode(&env, 1000, &f, &n), 0);
  assert_int_equal(n, 4 + cb__envelope__get_packed_size(&env));
  assert_int_equal(f[0] << 24 | f[1] << 16 | f[2] << 8 | f[3], n - 4);
  free(f);
  assert_string_equal(frame_strerror(-FRAME_E_TOO_LARGE), "frame length over the configured maximum");
  assert_string_equal(frame_strerror(1000), "unknown frame error");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_header_bounds),
    cmocka_unit_test(test_roundtrip_byte_by_byte),
    cmocka_unit_test(test_two_frames_one_chunk),
    cmocka_unit_test(test_oversize_and_lazy_allocation),
    cmocka_unit_test(test_decode_errors),
    cmocka_unit_test(test_alloc_cap),
    cmocka_unit_test(test_encode_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
