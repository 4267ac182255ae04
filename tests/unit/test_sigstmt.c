/* Signed statements: RFC 8032 vectors, domain separation, and the full
 * checks of lookup requests, responses and attestations (node/sigstmt.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_keys.h"
#include <jansson.h>

#include "registry.h"
#include "sigstmt.h"

static void unhex(const char *h, uint8_t *out, size_t n) {
  assert_int_equal(strlen(h), 2 * n);
  for (size_t i = 0; i < n; i++) assert_int_equal(sscanf(h + 2 * i, "%2hhx", &out[i]), 1);
}

static json_t *load_vectors(void) {
  const char *src = getenv("CB_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/fixtures/vectors/rfc8032_7.1_ed25519.json",
           src ? src : ".");
  json_error_t e;
  json_t *root = json_load_file(path, 0, &e);
  if (!root) fail_msg("cannot load %s: %s (set CB_SOURCE_DIR)", path, e.text);
  return root;
}

/* S + L (the group order) as a 256-bit little-endian addition: the same
 * signature in a non-canonical encoding, which RFC 8032 verifiers reject. */
static void add_order(uint8_t s[32]) {
  static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                                0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};
  unsigned carry = 0;
  for (int i = 0; i < 32; i++) {
    unsigned v = s[i] + L[i] + carry;
    s[i] = (uint8_t)v;
    carry = v >> 8;
  }
}

static void test_rfc8032_vectors(void **state) {
  (void)state;
  json_t *root = load_vectors();
  json_t *vecs = json_object_get(root, "vectors");
  assert_true(json_array_size(vecs) >= 5);
  size_t i;
  json_t *v;
  json_array_foreach(vecs, i, v) {
    uint8_t seed[32], pub[32], sig[64], mine[64], got_pub[32];
    unhex(json_string_value(json_object_get(v, "secret_key")), seed, 32);
    unhex(json_string_value(json_object_get(v, "public_key")), pub, 32);
    unhex(json_string_value(json_object_get(v, "signature")), sig, 64);
    size_t mlen = (size_t)json_integer_value(json_object_get(v, "message_len"));
    uint8_t *msg = malloc(mlen + 1);
    if (mlen) unhex(json_string_value(json_object_get(v, "message")), msg, mlen);
    EVP_PKEY *k;
    assert_int_equal(sigstmt_key_from_seed(seed, &k), 0);
    assert_int_equal(sigstmt_key_public(k, got_pub), 0);
    assert_memory_equal(got_pub, pub, 32);
    assert_int_equal(sigstmt_ed25519_sign(k, msg, mlen, mine), 0);
    assert_memory_equal(mine, sig, 64); /* Ed25519 is deterministic */
    assert_int_equal(sigstmt_ed25519_verify(pub, msg, mlen, sig), 0);
    /* negative cases: message changed, signature changed, S + L */
    uint8_t bad[64];
    memcpy(bad, sig, 64);
    bad[0] ^= 1;
    assert_int_equal(sigstmt_ed25519_verify(pub, msg, mlen, bad), -SIGSTMT_E_BAD_SIGNATURE);
    memcpy(bad, sig, 64);
    add_order(bad + 32);
    assert_int_equal(sigstmt_ed25519_verify(pub, msg, mlen, bad), -SIGSTMT_E_BAD_SIGNATURE);
    if (mlen) {
      msg[mlen - 1] ^= 0x80;
      assert_int_equal(sigstmt_ed25519_verify(pub, msg, mlen, sig), -SIGSTMT_E_BAD_SIGNATURE);
    } else {
      uint8_t one = 0;
      assert_int_equal(sigstmt_ed25519_verify(pub, &one, 1, sig), -SIGSTMT_E_BAD_SIGNATURE);
    }
    EVP_PKEY_free(k);
    free(msg);
  }
  json_decref(root);
}

static void test_domain_separation(void **state) {
  (void)state;
  uint8_t seed[32] = {7}, pub[32], sig[64];
  EVP_PKEY *k;
  assert_int_equal(sigstmt_key_from_seed(seed, &k), 0);
  assert_int_equal(sigstmt_key_public(k, pub), 0);
  const uint8_t body[] = "body bytes";
  assert_int_equal(sigstmt_sign_raw(k, SIGSTMT_TAG_ATTESTATION, body, sizeof body, sig), 0);
  assert_int_equal(sigstmt_verify_raw(pub, SIGSTMT_TAG_ATTESTATION, body, sizeof body, sig), 0);
  assert_int_equal(sigstmt_verify_raw(pub, SIGSTMT_TAG_LOOKUP_RESPONSE, body, sizeof body, sig),
                   -SIGSTMT_E_BAD_SIGNATURE);
  /* The signed message is exactly tag || 0x00 || body. */
  size_t tl = strlen(SIGSTMT_TAG_ATTESTATION);
  uint8_t msg[64];
  memcpy(msg, SIGSTMT_TAG_ATTESTATION, tl);
  msg[tl] = 0;
  memcpy(msg + tl + 1, body, sizeof body);
  assert_int_equal(sigstmt_ed25519_verify(pub, msg, tl + 1 + sizeof body, sig), 0);
  /* Moving the boundary between tag and body changes the message. */
  assert_int_equal(sigstmt_verify_raw(pub, "cb/attestation/v", (const uint8_t *)"1\0body bytes",
                                      sizeof body + 2, sig),
                   -SIGSTMT_E_BAD_SIGNATURE);
  assert_int_equal(sigstmt_sign_raw(k, "", body, 1, sig), -SIGSTMT_E_ARG);
  EVP_PKEY_free(k);
}

/* --- statements against a registry -------------------------------------- */

typedef struct fixture {
  EVP_PKEY *sh, *js, *js_old, *stranger;
  registry_t *reg;
} fixture_t;

#define T_JAN 1767225600000LL /* 2026-01-01 */
#define T_NOW 1790000000000LL /* 2026-09-21 */

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  uint8_t seed[32];
  memset(seed, 1, 32);
  sigstmt_key_from_seed(seed, &f->sh);
  memset(seed, 2, 32);
  sigstmt_key_from_seed(seed, &f->js);
  memset(seed, 3, 32);
  sigstmt_key_from_seed(seed, &f->js_old);
  memset(seed, 4, 32);
  sigstmt_key_from_seed(seed, &f->stranger);
  char a[65], b[65], c[65], json[2048];
  test_key_hex(f->sh, a);
  test_key_hex(f->js, b);
  test_key_hex(f->js_old, c);
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":["
           "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:1\",\"keys\":["
           "{\"public_key\":\"%s\",\"not_before\":0}]},"
           "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"127.0.0.1:2\",\"keys\":["
           "{\"public_key\":\"%s\",\"not_before\":%lld},"
           "{\"public_key\":\"%s\",\"not_before\":0,\"not_after\":%lld}]}]}",
           0, a, b, T_JAN, c, T_JAN);
  char err[256];
  if (registry_parse(json, strlen(json), &f->reg, err, sizeof err)) fail_msg("%s", err);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  EVP_PKEY_free(f->sh);
  EVP_PKEY_free(f->js);
  EVP_PKEY_free(f->js_old);
  EVP_PKEY_free(f->stranger);
  registry_release(f->reg);
  free(f);
  return 0;
}

static uint8_t REF[32] = {0xAB, 1, 2, 3};
static uint8_t NONCE[16] = {9, 9, 9};

static void make_request(Cb__LookupRequestBody *b, const char *requester, int64_t t) {
  cb__lookup_request_body__init(b);
  b->requester = (char *)requester;
  b->operator_id = "op-alice";
  b->purpose = "credit transfer";
  b->time_ms = t;
  b->nonce.data = NONCE;
  b->nonce.len = sizeof NONCE;
  b->learner_ref.data = REF;
  b->learner_ref.len = 32;
  b->target = "sh";
}

static void test_request_ok_and_tamper(void **state) {
  fixture_t *f = *state;
  Cb__LookupRequestBody b;
  make_request(&b, "js", T_NOW);
  sigstmt_signer_t s = {"js", f->js};
  Cb__SignedStatement st;
  assert_int_equal(sigstmt_seal_lookup_request(&s, &b, &st), 0);
  Cb__LookupRequestBody *got = NULL;
  char err[256];
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err), 0);
  assert_string_equal(got->purpose, "credit transfer");
  assert_int_equal(got->time_ms, T_NOW);
  cb__lookup_request_body__free_unpacked(got, NULL);
  /* Every single flipped bit of body or signature is refused. */
  for (size_t i = 0; i < st.body.len; i++) {
    st.body.data[i] ^= 0x01;
    got = NULL;
    int rc = sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err);
    assert_int_equal(rc, -SIGSTMT_E_BAD_SIGNATURE);
    assert_null(got);
    st.body.data[i] ^= 0x01;
  }
  for (size_t i = 0; i < st.signature.len; i++) {
    st.signature.data[i] ^= 0x40;
    assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                     -SIGSTMT_E_BAD_SIGNATURE);
    st.signature.data[i] ^= 0x40;
  }
  /* The same statement read under another tag does not verify. */
  Cb__LookupResponseBody *resp = NULL;
  assert_int_equal(sigstmt_open_lookup_response(f->reg, &st, &resp, err, sizeof err),
                   -SIGSTMT_E_BAD_SIGNATURE);
  assert_non_null(strstr(err, "js"));
  sigstmt_statement_clear(&st);
}

static void test_request_wrong_signers(void **state) {
  fixture_t *f = *state;
  Cb__LookupRequestBody b;
  Cb__SignedStatement st;
  Cb__LookupRequestBody *got = NULL;
  char err[256];
  /* Signed with sh's key but claims to be js. */
  make_request(&b, "js", T_NOW);
  sigstmt_signer_t liar = {"js", f->sh};
  assert_int_equal(sigstmt_seal_lookup_request(&liar, &b, &st), 0);
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_KEY_NOT_SIGNERS);
  sigstmt_statement_clear(&st);
  /* A key in no registry. */
  sigstmt_signer_t stranger = {"js", f->stranger};
  assert_int_equal(sigstmt_seal_lookup_request(&stranger, &b, &st), 0);
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_KEY_NOT_SIGNERS);
  sigstmt_statement_clear(&st);
  /* A signer that is not a member. */
  sigstmt_signer_t gd = {"gd", f->stranger};
  assert_int_equal(sigstmt_seal_lookup_request(&gd, &b, &st), 0);
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_UNKNOWN_SIGNER);
  assert_non_null(strstr(err, "gd"));
  sigstmt_statement_clear(&st);
  /* Body claims another requester than the signer. */
  make_request(&b, "sh", T_NOW);
  sigstmt_signer_t js = {"js", f->js};
  assert_int_equal(sigstmt_seal_lookup_request(&js, &b, &st), 0);
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_BODY);
  assert_non_null(strstr(err, "requester"));
  sigstmt_statement_clear(&st);
  assert_null(got);
}

static void test_key_validity_periods(void **state) {
  fixture_t *f = *state;
  Cb__LookupRequestBody b;
  Cb__SignedStatement st;
  Cb__LookupRequestBody *got = NULL;
  char err[256];
  /* The new js key is not valid before T_JAN. */
  make_request(&b, "js", T_JAN - 1);
  sigstmt_signer_t js = {"js", f->js};
  assert_int_equal(sigstmt_seal_lookup_request(&js, &b, &st), 0);
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_KEY_NOT_VALID);
  assert_non_null(strstr(err, "not yet valid"));
  sigstmt_statement_clear(&st);
  /* The old js key after its not_after is refused... */
  sigstmt_signer_t old = {"js", f->js_old};
  make_request(&b, "js", T_NOW);
  assert_int_equal(sigstmt_seal_lookup_request(&old, &b, &st), 0);
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_KEY_NOT_VALID);
  assert_non_null(strstr(err, "expired"));
  sigstmt_statement_clear(&st);
  /* ... but an attestation it issued while valid still verifies. */
  Cb__Achievement a;
  cb__achievement__init(&a);
  a.id = 7;
  a.learner_ref.data = REF;
  a.learner_ref.len = 32;
  a.title = "Data structures";
  a.credits_milli = 4000;
  Cb__AttestationBody ab;
  cb__attestation_body__init(&ab);
  ab.issuer = "js";
  ab.learner_ref.data = REF;
  ab.learner_ref.len = 32;
  ab.achievement = &a;
  ab.issued_at_ms = T_JAN - 1000;
  assert_int_equal(sigstmt_seal_attestation(&old, &ab, &st), 0);
  Cb__AttestationBody *att = NULL;
  assert_int_equal(sigstmt_open_attestation(f->reg, &st, &att, err, sizeof err), 0);
  assert_int_equal(att->achievement->credits_milli, 4000);
  cb__attestation_body__free_unpacked(att, NULL);
  /* Tampered attestation (body or signature) and wrong issuer. */
  st.body.data[st.body.len / 2] ^= 0x10;
  assert_int_equal(sigstmt_open_attestation(f->reg, &st, &att, err, sizeof err),
                   -SIGSTMT_E_BAD_SIGNATURE);
  st.body.data[st.body.len / 2] ^= 0x10;
  st.signature.data[63] ^= 0x01;
  assert_int_equal(sigstmt_open_attestation(f->reg, &st, &att, err, sizeof err),
                   -SIGSTMT_E_BAD_SIGNATURE);
  sigstmt_statement_clear(&st);
  sigstmt_signer_t sh_as_js = {"sh", f->sh};
  assert_int_equal(sigstmt_seal_attestation(&sh_as_js, &ab, &st), 0); /* issuer "js" */
  assert_int_equal(sigstmt_open_attestation(f->reg, &st, &att, err, sizeof err), -SIGSTMT_E_BODY);
  assert_non_null(strstr(err, "issuer"));
  sigstmt_statement_clear(&st);
}

static void test_response_one_signature(void **state) {
  fixture_t *f = *state;
  enum { N = 20 };
  Cb__Achievement as[N], *ap[N];
  for (int i = 0; i < N; i++) {
    cb__achievement__init(&as[i]);
    as[i].id = (uint64_t)i + 1;
    as[i].learner_ref.data = REF;
    as[i].learner_ref.len = 32;
    as[i].title = "Course";
    as[i].credits_milli = 1000 * i;
    ap[i] = &as[i];
  }
  uint8_t rh[32] = {5};
  Cb__LookupResponseBody r;
  cb__lookup_response_body__init(&r);
  r.responder = "sh";
  r.request_hash.data = rh;
  r.request_hash.len = 32;
  r.time_ms = T_NOW;
  r.learner_ref.data = REF;
  r.learner_ref.len = 32;
  r.found = 1;
  r.n_achievements = N;
  r.achievements = ap;
  sigstmt_signer_t sh = {"sh", f->sh};
  Cb__SignedStatement st;
  assert_int_equal(sigstmt_seal_lookup_response(&sh, &r, &st), 0);
  Cb__LookupResponseBody *got = NULL;
  char err[256];
  assert_int_equal(sigstmt_open_lookup_response(f->reg, &st, &got, err, sizeof err), 0);
  assert_int_equal(got->n_achievements, N);
  assert_int_equal(got->achievements[19]->credits_milli, 19000);
  cb__lookup_response_body__free_unpacked(got, NULL);
  sigstmt_statement_clear(&st);
  /* An achievement of another learner inside the answer is refused. */
  uint8_t other[32] = {1};
  as[3].learner_ref.data = other;
  assert_int_equal(sigstmt_seal_lookup_response(&sh, &r, &st), 0);
  assert_int_equal(sigstmt_open_lookup_response(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_BODY);
  assert_non_null(strstr(err, "achievements[3]"));
  sigstmt_statement_clear(&st);
}

static void test_malformed_statements(void **state) {
  fixture_t *f = *state;
  Cb__SignedStatement st;
  cb__signed_statement__init(&st);
  char err[256];
  Cb__LookupRequestBody *got = NULL;
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_MALFORMED);
  /* A validly signed body that is not protobuf. */
  sigstmt_signer_t js = {"js", f->js};
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  assert_int_equal(sigstmt_seal(&js, SIGSTMT_TAG_LOOKUP_REQUEST, junk, sizeof junk, &st), 0);
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_BODY);
  sigstmt_statement_clear(&st);
  /* Short nonce. */
  Cb__LookupRequestBody b;
  make_request(&b, "js", T_NOW);
  b.nonce.len = 8;
  assert_int_equal(sigstmt_seal_lookup_request(&js, &b, &st), 0);
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_BODY);
  assert_non_null(strstr(err, "nonce"));
  sigstmt_statement_clear(&st);
  /* Signature of the wrong length. */
  make_request(&b, "js", T_NOW);
  assert_int_equal(sigstmt_seal_lookup_request(&js, &b, &st), 0);
  st.signature.len = 63;
  assert_int_equal(sigstmt_open_lookup_request(f->reg, &st, &got, err, sizeof err),
                   -SIGSTMT_E_MALFORMED);
  st.signature.len = 64;
  sigstmt_statement_clear(&st);
  assert_null(got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc8032_vectors),
      cmocka_unit_test(test_domain_separation),
      cmocka_unit_test_setup_teardown(test_request_ok_and_tamper, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_wrong_signers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_validity_periods, setup, teardown),
      cmocka_unit_test_setup_teardown(test_response_one_signature, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_statements, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
