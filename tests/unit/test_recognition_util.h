/* Shared helpers of the recognition unit tests (test_recognition*.c,
 * test_catalogue*.c): fixture loading, citations, and the invariants every
 * decision must keep (canonical encoding equal to protobuf-c's packing,
 * decode round trip, index and full scan agreeing). Header-only, included
 * once per test program. */
#ifndef TEST_RECOGNITION_UTIL_H
#define TEST_RECOGNITION_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalogue_json.h"
#include "cb_crypto_openssl.h"
#include "recog.h"
#include "recog_pb.h"

/* Not every test program uses every helper. */
#define RT_UNUSED __attribute__((unused))

static cb_crypto rt_crypto;

static RT_UNUSED void rt_init_crypto(void) { cb_crypto_openssl_verifier(&rt_crypto); }

static RT_UNUSED void rt_fixture_path(char *buf, size_t cap, const char *rel) {
  const char *src = getenv("CB_SOURCE_DIR");
  snprintf(buf, cap, "%s/%s", src ? src : ".", rel);
}

/* Loads a catalogue file; fails the test with every error if it does not load. */
static RT_UNUSED struct catalogue *rt_load(const char *rel) {
  char path[1024];
  rt_fixture_path(path, sizeof path, rel);
  struct catalogue *c = NULL;
  struct catalogue_errors e = {0};
  if (catalogue_load_file(path, &rt_crypto, &c, &e, NULL, NULL) != 0) {
    for (size_t i = 0; i < e.nkept; i++) print_error("%s\n", e.lines[i]);
    catalogue_errors_free(&e);
    fail_msg("%s does not load (set CB_SOURCE_DIR)", path);
  }
  catalogue_errors_free(&e);
  return c;
}

/* A deterministic aid for a label. */
static RT_UNUSED void rt_aid(const char *label, uint8_t aid[RECOG_AID_BYTES]) {
  cb_hash(&rt_crypto, label, strlen(label), aid);
}

static RT_UNUSED struct recog_achievement rt_ach(const char *label, int kind, const char *issuer,
                                       const char *code, const char *level, const char *score,
                                       int32_t awarded) {
  struct recog_achievement a;
  memset(&a, 0, sizeof a);
  rt_aid(label, a.aid);
  a.holder = "js";
  a.has_attestation = 1;
  cb_hash(&rt_crypto, code, strlen(code), a.attestation_hash);
  a.kind = kind;
  a.issuer = issuer;
  a.code = code;
  a.title = label;
  a.level = level;
  a.score = score;
  a.credits_milli = 4000;
  a.awarded_on = awarded;
  return a;
}

#define RT_CERT(label, issuer, code, level, date) \
  rt_ach(label, CATALOGUE_KIND_VOCATIONAL_QUALIFICATION, issuer, code, level, "合格", date)
#define RT_COURSE(label, issuer, code, score, date) \
  rt_ach(label, CATALOGUE_KIND_ACADEMIC_COURSE, issuer, code, "", score, date)

static RT_UNUSED struct recog_request rt_programme(const char *inst, const char *prog, int32_t date,
                                         const struct recog_achievement *cited, size_t n) {
  struct recog_request q;
  memset(&q, 0, sizeof q);
  q.request_id = "req-1";
  q.decider = "sh";
  memset(q.learner_ref, 0x5a, sizeof q.learner_ref);
  q.decided_at_ms = 1767225600000;
  q.date = date;
  q.target_kind = RECOG_TARGET_PROGRAMME;
  q.institution = inst;
  q.programme = prog;
  q.cited = cited;
  q.ncited = n;
  return q;
}

static RT_UNUSED struct recog_request rt_exemption(const char *cert, const char *level, int32_t date,
                                         const struct recog_achievement *cited, size_t n) {
  struct recog_request q = rt_programme(NULL, NULL, date, cited, n);
  q.target_kind = RECOG_TARGET_EXEMPTION;
  q.certificate = cert;
  q.level = level;
  return q;
}

static RT_UNUSED uint8_t *rt_encode(const struct recog_decision *d, size_t *len) {
  *len = recog_encoded_size(d);
  uint8_t *b = malloc(*len + 1);
  assert_non_null(b);
  assert_int_equal(recog_encode(d, b, *len), (long)*len);
  return b;
}

/* What must hold of every decision. */
static RT_UNUSED void rt_invariants(const struct catalogue *c, const struct recog_request *q,
                          const struct recog_decision *d) {
  size_t len;
  uint8_t *mine = rt_encode(d, &len);
  /* 1. protobuf-c packs the same message to the same bytes. */
  struct recog_pb_view v;
  assert_int_equal(recog_pb_view(d, &v), 0);
  size_t plen = cb__recognition_decision__get_packed_size(&v.msg);
  uint8_t *theirs = malloc(plen + 1);
  assert_non_null(theirs);
  assert_int_equal(cb__recognition_decision__pack(&v.msg, theirs), plen);
  assert_int_equal(plen, len);
  assert_memory_equal(theirs, mine, len);
  recog_pb_view_free(&v);
  free(theirs);
  /* 2. It decodes, and decodes to what re-encodes to it. */
  struct recog_pb_decoded dec;
  char err[256];
  int rc = recog_pb_decode(mine, len, &dec, err, sizeof err);
  if (rc) fail_msg("decode: %s", err);
  size_t len2;
  uint8_t *again = rt_encode(&dec.d, &len2);
  assert_int_equal(len2, len);
  assert_memory_equal(again, mine, len);
  free(again);
  recog_pb_decoded_free(&dec);
  /* 3. The index finds what a scan of every rule finds. */
  struct recog_request scan = *q;
  scan.flags |= RECOG_F_SCAN_ALL;
  struct recog_decision ds;
  recog_decision_init(&ds);
  assert_int_equal(recog_evaluate(c, &scan, &ds, err, sizeof err), 0);
  size_t slen;
  uint8_t *sb = rt_encode(&ds, &slen);
  assert_int_equal(slen, len);
  assert_memory_equal(sb, mine, len);
  free(sb);
  recog_decision_free(&ds);
  /* 4. Text for people is produced without trouble. */
  struct catalogue_text t = {0};
  recog_decision_format(d, &t);
  assert_false(t.oom);
  assert_non_null(t.s);
  catalogue_text_free(&t);
  free(mine);
}

static RT_UNUSED void rt_eval(const struct catalogue *c, const struct recog_request *q,
                    struct recog_decision *d) {
  char err[256];
  int rc = recog_evaluate(c, q, d, err, sizeof err);
  if (rc) fail_msg("recog_evaluate: %d %s", rc, err);
  rt_invariants(c, q, d);
}

static RT_UNUSED const struct recog_grant *rt_grant(const struct recog_decision *d, const char *rule,
                                          const char *course) {
  for (size_t i = 0; i < d->ngrants; i++)
    if (strcmp(d->grants[i].rule_id, rule) == 0 &&
        (!course || strcmp(d->grants[i].course, course) == 0))
      return &d->grants[i];
  return NULL;
}

static RT_UNUSED const struct recog_shortfall *rt_short(const struct recog_decision *d, const char *rule,
                                              int code, const char *subject) {
  for (size_t i = 0; i < d->nshortfalls; i++) {
    const struct recog_shortfall *s = &d->shortfalls[i];
    if (strcmp(s->rule_id, rule) == 0 && s->code == code &&
        (!subject || strcmp(s->subject, subject) == 0))
      return s;
  }
  return NULL;
}

static RT_UNUSED void rt_dump(const struct recog_decision *d) {
  struct catalogue_text t = {0};
  recog_decision_format(d, &t);
  print_message("%s", t.s ? t.s : "");
  catalogue_text_free(&t);
}

/* Fails naming the decision if no such shortfall exists. */
static RT_UNUSED const struct recog_shortfall *rt_need_short(const struct recog_decision *d,
                                                   const char *rule, int code,
                                                   const char *subject, const char *have,
                                                   const char *need) {
  const struct recog_shortfall *s = rt_short(d, rule, code, subject);
  if (!s) {
    rt_dump(d);
    fail_msg("no shortfall %s/%s (%s)", rule, recog_shortfall_name(code), subject ? subject : "-");
    abort(); /* not reached: cmocka's fail does not return */
  }
  if (have) assert_string_equal(s->have, have);
  if (need) assert_string_equal(s->need, need);
  return s;
}

static RT_UNUSED const struct recog_grant *rt_need_grant(const struct recog_decision *d, const char *rule,
                                               const char *course, int64_t credits) {
  const struct recog_grant *g = rt_grant(d, rule, course);
  if (!g) {
    rt_dump(d);
    fail_msg("no grant by %s of %s", rule, course ? course : "-");
    abort(); /* not reached: cmocka's fail does not return */
  }
  if (credits >= 0) assert_int_equal(g->credits_milli, credits);
  return g;
}

#endif
