/* The crypto interface's OpenSSL implementation (crypto/cb_crypto.h):
 * RFC 8032 §7.1 signatures reproduced and verified through the table,
 * tampering refused, SHA-256 over parts equal to SHA-256 of the whole
 * (FIPS 180-2 "abc" vector), the signer's key callback (rotation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "cb_crypto_openssl.h"

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

static EVP_PKEY *key_from_seed(const uint8_t seed[32]) {
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  assert_non_null(k);
  return k;
}

static void test_rfc8032_through_table(void **state) {
  (void)state;
  json_t *root = load_vectors();
  json_t *vecs = json_object_get(root, "vectors");
  assert_true(json_array_size(vecs) >= 5);
  size_t i;
  json_t *v;
  json_array_foreach(vecs, i, v) {
    uint8_t seed[32], pub[32], want[64], sig[64], used[32];
    unhex(json_string_value(json_object_get(v, "secret_key")), seed, 32);
    unhex(json_string_value(json_object_get(v, "public_key")), pub, 32);
    unhex(json_string_value(json_object_get(v, "signature")), want, 64);
    size_t mlen = (size_t)json_integer_value(json_object_get(v, "message_len"));
    uint8_t *msg = malloc(mlen ? mlen : 1);
    assert_non_null(msg);
    if (mlen) unhex(json_string_value(json_object_get(v, "message")), msg, mlen);

    cb_openssl_signer s = {.fixed_key = key_from_seed(seed)};
    cb_crypto c;
    cb_crypto_openssl_signer(&c, &s);
    assert_int_equal(c.sign(c.ctx, msg, mlen, sig, used), 0);
    assert_memory_equal(sig, want, 64);
    assert_memory_equal(used, pub, 32);
    assert_int_equal(c.verify(c.ctx, pub, msg, mlen, sig), 0);

    cb_crypto ver;
    cb_crypto_openssl_verifier(&ver);
    assert_null(ver.sign);
    assert_int_equal(ver.verify(ver.ctx, pub, msg, mlen, sig), 0);
    sig[0] ^= 1;
    assert_int_equal(ver.verify(ver.ctx, pub, msg, mlen, sig), -1);
    sig[0] ^= 1;
    if (mlen) {
      msg[mlen - 1] ^= 0x80;
      assert_int_equal(ver.verify(ver.ctx, pub, msg, mlen, sig), -1);
    }
    pub[5] ^= 4;
    assert_int_equal(ver.verify(ver.ctx, pub, msg, mlen, sig), -1);
    EVP_PKEY_free(s.fixed_key);
    free(msg);
  }
  json_decref(root);
}

static void test_sha256_parts(void **state) {
  (void)state;
  cb_crypto c;
  cb_crypto_openssl_verifier(&c);
  uint8_t want[32], got[32];
  unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
  cb_hash(&c, "abc", 3, got);
  assert_memory_equal(got, want, 32);
  cb_iov parts[] = {{"a", 1}, {NULL, 0}, {"bc", 2}};
  c.hashv(c.ctx, parts, 3, got);
  assert_memory_equal(got, want, 32);
  unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
  c.hashv(c.ctx, NULL, 0, got);
  assert_memory_equal(got, want, 32);
}

static EVP_PKEY *pick_key(void *ctx) { return *(EVP_PKEY **)ctx; }

static void test_signer_callback_rotates(void **state) {
  (void)state;
  uint8_t seed_a[32], seed_b[32], pub_a[32], pub_b[32], used[32], sig[64];
  memset(seed_a, 0xa1, 32);
  memset(seed_b, 0xb2, 32);
  EVP_PKEY *a = key_from_seed(seed_a), *b = key_from_seed(seed_b), *now = a;
  size_t n = 32;
  assert_int_equal(EVP_PKEY_get_raw_public_key(a, pub_a, &n), 1);
  assert_int_equal(EVP_PKEY_get_raw_public_key(b, pub_b, &n), 1);
  cb_openssl_signer s = {.current_key = pick_key, .key_ctx = &now};
  cb_crypto c;
  cb_crypto_openssl_signer(&c, &s);
  assert_int_equal(c.sign(c.ctx, (const uint8_t *)"m", 1, sig, used), 0);
  assert_memory_equal(used, pub_a, 32);
  now = b;
  assert_int_equal(c.sign(c.ctx, (const uint8_t *)"m", 1, sig, used), 0);
  assert_memory_equal(used, pub_b, 32);
  assert_int_equal(c.verify(c.ctx, pub_b, (const uint8_t *)"m", 1, sig), 0);
  assert_int_equal(c.verify(c.ctx, pub_a, (const uint8_t *)"m", 1, sig), -1);
  now = NULL;
  assert_int_equal(c.sign(c.ctx, (const uint8_t *)"m", 1, sig, used), -1);
  EVP_PKEY_free(a);
  EVP_PKEY_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc8032_through_table),
      cmocka_unit_test(test_sha256_parts),
      cmocka_unit_test(test_signer_callback_rotates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
