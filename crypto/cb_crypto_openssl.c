/* cb_crypto_openssl.c: cb_crypto.h with OpenSSL 3 (see the header). */
#include "cb_crypto_openssl.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>

/* A hash that cannot be computed must not be replaced by a wrong one: the
 * digests are agreed across the federation (cb_crypto.h). */
static void die_hash(const char *what) {
  fprintf(stderr, "cb_crypto: SHA-256 failed in %s; aborting rather than use a wrong digest\n",
          what);
  ERR_print_errors_fp(stderr);
  abort();
}

void cb_openssl_hashv(void *ctx, const cb_iov *parts, size_t nparts,
                      uint8_t out[CB_HASH_BYTES]) {
  (void)ctx;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) die_hash("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) die_hash("EVP_DigestInit_ex");
  for (size_t i = 0; i < nparts; i++) {
    if (parts[i].len && EVP_DigestUpdate(md, parts[i].data, parts[i].len) != 1)
      die_hash("EVP_DigestUpdate");
  }
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(md, out, &n) != 1 || n != CB_HASH_BYTES) die_hash("EVP_DigestFinal_ex");
  EVP_MD_CTX_free(md);
}

int cb_openssl_sign_with(EVP_PKEY *key, const uint8_t *msg, size_t len,
                         uint8_t sig[CB_SIG_BYTES], uint8_t pub_out[CB_PUBKEY_BYTES]) {
  static const uint8_t empty[1];
  if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return -1;
  if (pub_out) {
    size_t plen = CB_PUBKEY_BYTES;
    if (EVP_PKEY_get_raw_public_key(key, pub_out, &plen) != 1 || plen != CB_PUBKEY_BYTES)
      return -1;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) return -1;
  size_t slen = CB_SIG_BYTES;
  int ok = EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
           EVP_DigestSign(md, sig, &slen, msg ? msg : empty, len) == 1 && slen == CB_SIG_BYTES;
  EVP_MD_CTX_free(md);
  return ok ? 0 : -1;
}

int cb_openssl_verify(void *ctx, const uint8_t pub[CB_PUBKEY_BYTES], const uint8_t *msg,
                      size_t len, const uint8_t sig[CB_SIG_BYTES]) {
  static const uint8_t empty[1];
  (void)ctx;
  EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, CB_PUBKEY_BYTES);
  if (!k) {
    ERR_clear_error();
    return -1;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
           EVP_DigestVerify(md, sig, CB_SIG_BYTES, msg ? msg : empty, len) == 1;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(k);
  if (!ok) ERR_clear_error();
  return ok ? 0 : -1;
}

static int sign_through(void *ctx, const uint8_t *msg, size_t len, uint8_t sig[CB_SIG_BYTES],
                        uint8_t pub_out[CB_PUBKEY_BYTES]) {
  cb_openssl_signer *s = ctx;
  EVP_PKEY *key = s->current_key ? s->current_key(s->key_ctx) : s->fixed_key;
  return cb_openssl_sign_with(key, msg, len, sig, pub_out);
}

void cb_crypto_openssl_verifier(cb_crypto *c) {
  *c = (cb_crypto){NULL, NULL, cb_openssl_verify, cb_openssl_hashv};
}

void cb_crypto_openssl_signer(cb_crypto *c, cb_openssl_signer *s) {
  *c = (cb_crypto){s, sign_through, cb_openssl_verify, cb_openssl_hashv};
}
