/* cb_crypto_openssl.h: the project's one implementation of cb_crypto.h,
 * with OpenSSL 3 (EVP Ed25519, EVP SHA-256). Linked by the daemon, cbctl,
 * the simulator and the tests; the pure cores never include this file.
 *
 * An instance either only verifies and hashes (cb_crypto_openssl_verifier)
 * or also signs with keys chosen by a callback (cb_crypto_openssl_signer),
 * which is how the daemon rotates its identity key: the callback returns
 * the key valid now. Instances keep no mutable state: one may be used from
 * several threads at once. */
#ifndef CB_CRYPTO_OPENSSL_H
#define CB_CRYPTO_OPENSSL_H

#include <openssl/evp.h>

#include "cb_crypto.h"

/* Returns the Ed25519 private key to sign with now (borrowed: it must
 * stay alive until the signature returns), or NULL when there is none. */
typedef EVP_PKEY *(*cb_openssl_key_fn)(void *key_ctx);

typedef struct cb_openssl_signer {
  cb_openssl_key_fn current_key;
  void *key_ctx;
  EVP_PKEY *fixed_key; /* used when current_key is NULL */
} cb_openssl_signer;

/* Fills c with an instance that verifies and hashes; c->sign is NULL. */
void cb_crypto_openssl_verifier(cb_crypto *c);
/* Fills c with an instance that also signs through s (which must outlive
 * c): with s->current_key when set, else with s->fixed_key. */
void cb_crypto_openssl_signer(cb_crypto *c, cb_openssl_signer *s);

/* The functions behind the table, for code that already links OpenSSL. */
int cb_openssl_sign_with(EVP_PKEY *key, const uint8_t *msg, size_t len,
                         uint8_t sig[CB_SIG_BYTES], uint8_t pub_out[CB_PUBKEY_BYTES]);
int cb_openssl_verify(void *ctx, const uint8_t pub[CB_PUBKEY_BYTES], const uint8_t *msg,
                      size_t len, const uint8_t sig[CB_SIG_BYTES]);
void cb_openssl_hashv(void *ctx, const cb_iov *parts, size_t nparts,
                      uint8_t out[CB_HASH_BYTES]);

#endif
