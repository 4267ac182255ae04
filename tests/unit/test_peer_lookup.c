/* Cross-region lookup core (node/peer_lookup.h): the signed request and
 * answer flow between js (asking) and sh (answering), and each refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_keys.h"

#include "peer_lookup.h"

#define T_NOW 1790000000000LL

typedef struct fx {
  EVP_PKEY *sh, *js, *zj;
  registry_t *reg;
  replay_cache_t *replay;
  uint8_t ref[32];
  uint8_t nonce[16];
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  f->sh = test_key_seeded(1);
  f->js = test_key_seeded(2);
  f->zj = test_key_seeded(3);
  char a[65], b[65], c[65], json[2048];
  test_key_hex(f->sh, a);
  test_key_hex(f->js, b);
  test_key_hex(f->zj, c);
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":["
           "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:1\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]},"
           "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"127.0.0.1:2\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]},"
           "{\"node_id\":\"zj\",\"region\":\"zj\",\"endpoint\":\"127.0.0.1:3\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]}]}",
           0, a, b, c);
  char err[256];
  if (registry_parse(json, strlen(json), &f->reg, err, sizeof err)) fail_msg("%s", err);
  assert_int_equal(replay_init(&f->replay, 30000, 1000), 0);
  memset(f->ref, 0x5c, 32);
  for (int i = 0; i < 16; i++) f->nonce[i] = (uint8_t)(i * 7 + 1);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  EVP_PKEY_free(f->sh);
  EVP_PKEY_free(f->js);
  EVP_PKEY_free(f->zj);
  registry_release(f->reg);
  replay_free(f->replay);
  free(f);
  return 0;
}

static void ask(fx_t *f, const char *target, int64_t t, Cb__SignedStatement *req) {
  sigstmt_signer_t js = {"js", f->js};
  char err[256];
  if (peer_lookup_make_request(&js, target, "op-wang", "credit transfer to JS University", f->ref,
                               f->nonce, t, req, err, sizeof err))
    fail_msg("%s", err);
}

/* Expects sh to refuse req with code; checks the replay cache is unchanged. */
static void refused(fx_t *f, const Cb__SignedStatement *req, int64_t now, Cb__PeerErrorCode want,
                    const char *needle) {
  size_t before = replay_count(f->replay);
  Cb__LookupRequestBody *b = (void *)1;
  Cb__PeerErrorCode code;
  char err[256] = "";
  assert_true(peer_lookup_check_request(f->reg, f->replay, "sh", req, now, &b, &code, err,
                                        sizeof err) < 0);
  assert_null(b);
  assert_int_equal(code, want);
  if (!strstr(err, needle)) fail_msg("error \"%s\" lacks \"%s\"", err, needle);
  assert_int_equal(replay_count(f->replay), before);
}

static Cb__Achievement **achievements(fx_t *f, size_t n) {
  Cb__Achievement **a = calloc(n, sizeof *a);
  for (size_t i = 0; i < n; i++) {
    a[i] = calloc(1, sizeof **a);
    cb__achievement__init(a[i]);
    a[i]->id = i + 1;
    a[i]->learner_ref.data = f->ref;
    a[i]->learner_ref.len = 32;
    a[i]->kind = CB__ACHIEVEMENT_KIND__ACADEMIC_COURSE;
    a[i]->title = "高等数学";
    a[i]->credits_milli = 4000;
  }
  return a;
}

static void free_achievements(Cb__Achievement **a, size_t n) {
  for (size_t i = 0; i < n; i++) free(a[i]);
  free(a);
}

static void test_full_flow(void **state) {
  fx_t *f = *state;
  Cb__SignedStatement req;
  ask(f, "sh", T_NOW, &req);
  /* sh checks it */
  Cb__LookupRequestBody *b;
  Cb__PeerErrorCode code;
  char err[256];
  assert_int_equal(peer_lookup_check_request(f->reg, f->replay, "sh", &req, T_NOW + 1500, &b, &code,
                                             err, sizeof err),
                   0);
  assert_string_equal(b->operator_id, "op-wang");
  assert_memory_equal(b->learner_ref.data, f->ref, 32);
  /* sh answers with 20 achievements under one signature */
  Cb__Achievement **a = achievements(f, 20);
  sigstmt_signer_t sh = {"sh", f->sh};
  Cb__SignedStatement resp;
  assert_int_equal(peer_lookup_make_response(&sh, &req, b->learner_ref.data, 1, a, 20,
                                             T_NOW + 1600, &resp, err, sizeof err),
                   0);
  /* the access log keeps the requester's own signed request */
  Cb__AccessLogEntry e;
  peer_lookup_access_entry(&req, 1, 20, T_NOW + 1600, &e);
  size_t len = cb__access_log_entry__get_packed_size(&e);
  uint8_t *packed = malloc(len);
  cb__access_log_entry__pack(&e, packed);
  Cb__AccessLogEntry *back = cb__access_log_entry__unpack(NULL, len, packed);
  Cb__LookupRequestBody *logged;
  assert_int_equal(sigstmt_open_lookup_request(f->reg, back->request, &logged, err, sizeof err), 0);
  assert_string_equal(logged->purpose, "credit transfer to JS University");
  assert_int_equal(back->achievements, 20);
  cb__lookup_request_body__free_unpacked(logged, NULL);
  cb__access_log_entry__free_unpacked(back, NULL);
  free(packed);
  cb__lookup_request_body__free_unpacked(b, NULL);
  /* js checks the answer */
  Cb__LookupResponseBody *got;
  assert_int_equal(peer_lookup_check_response(f->reg, &req, "sh", &resp, &got, err, sizeof err), 0);
  assert_int_equal(got->n_achievements, 20);
  assert_true(got->found);
  cb__lookup_response_body__free_unpacked(got, NULL);
  /* the same answer presented for another question is refused */
  Cb__SignedStatement other;
  f->nonce[0] ^= 0xff;
  ask(f, "sh", T_NOW, &other);
  assert_int_equal(peer_lookup_check_response(f->reg, &other, "sh", &resp, &got, err, sizeof err),
                   -SIGSTMT_E_BODY);
  assert_non_null(strstr(err, "another request"));
  /* or as coming from a node not asked */
  assert_int_equal(peer_lookup_check_response(f->reg, &req, "zj", &resp, &got, err, sizeof err),
                   -SIGSTMT_E_BODY);
  assert_non_null(strstr(err, "zj was asked"));
  /* a flipped byte in the answer */
  resp.body.data[resp.body.len - 5] ^= 1;
  assert_int_equal(peer_lookup_check_response(f->reg, &req, "sh", &resp, &got, err, sizeof err),
                   -SIGSTMT_E_BAD_SIGNATURE);
  assert_null(got);
  sigstmt_statement_clear(&resp);
  /* an answer signed by the wrong node (zj's key, claiming sh) */
  sigstmt_signer_t liar = {"sh", f->zj};
  assert_int_equal(peer_lookup_make_response(&liar, &req, f->ref, 1, a, 20, T_NOW + 1600, &resp,
                                             err, sizeof err),
                   0);
  assert_int_equal(peer_lookup_check_response(f->reg, &req, "sh", &resp, &got, err, sizeof err),
                   -SIGSTMT_E_KEY_NOT_SIGNERS);
  sigstmt_statement_clear(&resp);
  /* sh will not sign achievements of another learner into the answer */
  uint8_t other_ref[32] = {1};
  a[7]->learner_ref.data = other_ref;
  assert_int_equal(peer_lookup_make_response(&sh, &req, f->ref, 1, a, 20, T_NOW, &resp, err,
                                             sizeof err),
                   -SIGSTMT_E_ARG);
  free_achievements(a, 20);
  sigstmt_statement_clear(&req);
  sigstmt_statement_clear(&other);
}

static void test_request_refusals(void **state) {
  fx_t *f = *state;
  Cb__SignedStatement req;
  ask(f, "sh", T_NOW, &req);
  /* stale and future, before any acceptance: the nonce stays unused */
  refused(f, &req, T_NOW + 30001, CB__PEER_ERROR_CODE__PEER_ERROR_STALE, "older than");
  refused(f, &req, T_NOW - 30001, CB__PEER_ERROR_CODE__PEER_ERROR_STALE, "ahead");
  /* addressed to another node */
  Cb__SignedStatement to_zj;
  f->nonce[1] ^= 0x55;
  ask(f, "zj", T_NOW, &to_zj);
  refused(f, &to_zj, T_NOW, CB__PEER_ERROR_CODE__PEER_ERROR_WRONG_TARGET, "addressed to zj");
  sigstmt_statement_clear(&to_zj);
  /* tampered request: one byte of body, one of signature */
  req.body.data[3] ^= 0x04;
  refused(f, &req, T_NOW, CB__PEER_ERROR_CODE__PEER_ERROR_UNAUTHENTIC, "signature");
  req.body.data[3] ^= 0x04;
  req.signature.data[10] ^= 0x80;
  refused(f, &req, T_NOW, CB__PEER_ERROR_CODE__PEER_ERROR_UNAUTHENTIC, "signature");
  req.signature.data[10] ^= 0x80;
  /* accepted once ... */
  Cb__LookupRequestBody *b;
  Cb__PeerErrorCode code;
  char err[256];
  assert_int_equal(
      peer_lookup_check_request(f->reg, f->replay, "sh", &req, T_NOW, &b, &code, err, sizeof err), 0);
  cb__lookup_request_body__free_unpacked(b, NULL);
  /* ... and replayed with the same nonce */
  refused(f, &req, T_NOW + 10, CB__PEER_ERROR_CODE__PEER_ERROR_REPLAYED, "replayed");
  sigstmt_statement_clear(&req);
  /* a requester whose key is not in the registry */
  EVP_PKEY *stranger = test_key_seeded(9);
  sigstmt_signer_t gd = {"js", stranger};
  f->nonce[2] ^= 0x33;
  assert_int_equal(peer_lookup_make_request(&gd, "sh", "op", "why", f->ref, f->nonce, T_NOW, &req,
                                            err, sizeof err),
                   0);
  refused(f, &req, T_NOW, CB__PEER_ERROR_CODE__PEER_ERROR_UNAUTHENTIC, "not one of js's keys");
  sigstmt_statement_clear(&req);
  EVP_PKEY_free(stranger);
  /* operator and purpose are required when asking */
  sigstmt_signer_t js = {"js", f->js};
  assert_int_equal(peer_lookup_make_request(&js, "sh", "", "why", f->ref, f->nonce, T_NOW, &req,
                                            err, sizeof err),
                   -SIGSTMT_E_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_full_flow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_refusals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
