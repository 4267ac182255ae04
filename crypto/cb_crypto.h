/* cb_crypto.h: the one crypto interface of the project (DESIGN.md "Inside
 * node/"). Every pure core (consensus, the Merkle log, recognition
 * evaluation, peer session state) receives its signing, verification and
 * hashing through this table and links no crypto library itself; the one
 * real implementation is OpenSSL's (cb_crypto_openssl.h), built once and
 * handed to the cores by the daemon, cbctl and the tests.
 *
 * Header only: no code, no dependencies beyond the C library. */
#ifndef CB_CRYPTO_H
#define CB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CB_HASH_BYTES 32u   /* SHA-256 */
#define CB_SIG_BYTES 64u    /* Ed25519 */
#define CB_PUBKEY_BYTES 32u /* Ed25519 */

/* One part of a message hashed or signed in pieces. A part may have len 0. */
typedef struct cb_iov {
  const void *data;
  size_t len;
} cb_iov;

typedef struct cb_crypto {
  void *ctx;
  /* Ed25519 signature over msg[0..len) with the key this instance holds
   * (the signer's current key: with key rotation the implementation picks
   * it). pub_out, when not NULL, receives the public key that signed, so
   * the caller can name it beside the signature. Returns 0, or -1 when
   * this instance holds no key or the library failed. NULL for an
   * instance that only verifies. */
  int (*sign)(void *ctx, const uint8_t *msg, size_t len, uint8_t sig[CB_SIG_BYTES],
              uint8_t pub_out[CB_PUBKEY_BYTES]);
  /* 0 if sig is a valid Ed25519 signature by pub over msg[0..len), else -1
   * (also for a malformed key). Never NULL. */
  int (*verify)(void *ctx, const uint8_t pub[CB_PUBKEY_BYTES], const uint8_t *msg, size_t len,
                const uint8_t sig[CB_SIG_BYTES]);
  /* SHA-256 of the concatenation of parts[0..nparts) (nparts may be 0).
   * Cannot fail: an implementation whose library reports an error aborts
   * the process rather than return a wrong digest, since hashes are agreed
   * across the federation. Never NULL. */
  void (*hashv)(void *ctx, const cb_iov *parts, size_t nparts, uint8_t out[CB_HASH_BYTES]);
} cb_crypto;

/* SHA-256 of one buffer through the table. */
static inline void cb_hash(const cb_crypto *c, const void *data, size_t len,
                           uint8_t out[CB_HASH_BYTES]) {
  cb_iov part = {data, len};
  c->hashv(c->ctx, &part, 1, out);
}

#endif
