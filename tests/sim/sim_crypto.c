/* sim_crypto.c: the crypto interfaces (cons_crypto) of the simulator. Two
 * signers: the stand-in is a keyed SHA-256 (cheap, deterministic,
 * unforgeable by a simulated member that only holds its own key index); the
 * real one is Ed25519 through OpenSSL, so the path the node will run is
 * simulated too. Both hash with OpenSSL's SHA-256. None of this belongs in
 * consensus/, which links no crypto library. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "cons_store.h"
#include "sim.h"

typedef struct sim_signer_ctx {
  struct sim_keyring *k;
  uint32_t self;
} sim_signer_ctx;

struct sim_keyring {
  sim_signer_ctx ctx[CONS_MAX_MEMBERS + 1];
  uint32_t n;
  bool real;
  uint8_t secret[CONS_MAX_MEMBERS][32];
  EVP_PKEY *priv[CONS_MAX_MEMBERS], *pub[CONS_MAX_MEMBERS];
  uint64_t signs, verifies;
};

/* sig = SHA-256(key || msg) || SHA-256(key ^ 0x5c in byte 0 || msg) */
static void fake_sig(const uint8_t key[32], const uint8_t *msg, size_t len,
                     uint8_t sig[64]) {
  uint8_t key2[32];
  memcpy(key2, key, 32);
  key2[0] ^= 0x5c;
  const cons_iov a[2] = {{key, 32}, {msg, len}}, b[2] = {{key2, 32}, {msg, len}};
  cons_store_hashv(NULL, a, 2, sig);
  cons_store_hashv(NULL, b, 2, sig + 32);
}

static int sim_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t sig[64]) {
  sim_signer_ctx *c = ctx;
  if (c->self >= c->k->n) return -1;
  c->k->signs++;
  if (!c->k->real) {
    fake_sig(c->k->secret[c->self], msg, len, sig);
    return 0;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t sl = 64;
  int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, c->k->priv[c->self]) == 1 &&
           EVP_DigestSign(md, sig, &sl, msg, len) == 1 && sl == 64;
  EVP_MD_CTX_free(md);
  return ok ? 0 : -1;
}

static int sim_verify(void *ctx, uint32_t member, const uint8_t *msg,
                      size_t len, const uint8_t sig[64]) {
  sim_signer_ctx *c = ctx;
  if (member >= c->k->n) return -1;
  c->k->verifies++;
  if (!c->k->real) {
    uint8_t want[64];
    fake_sig(c->k->secret[member], msg, len, want);
    return memcmp(want, sig, 64) == 0 ? 0 : -1;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, c->k->pub[member]) == 1 &&
           EVP_DigestVerify(md, sig, 64, msg, len) == 1;
  EVP_MD_CTX_free(md);
  return ok ? 0 : -1;
}

sim_keyring *sim_keyring_new(uint32_t n, uint64_t seed, bool real) {
  sim_keyring *k = calloc(1, sizeof *k);
  if (!k || n > CONS_MAX_MEMBERS) {
    free(k);
    return NULL;
  }
  k->n = n;
  k->real = real;
  for (uint32_t m = 0; m < n; m++) {
    uint8_t in[16];
    for (int i = 0; i < 8; i++) in[i] = (uint8_t)(seed >> (8 * i));
    for (int i = 0; i < 8; i++) in[8 + i] = (uint8_t)((uint64_t)m >> (8 * i));
    cons_store_hashv(NULL, &(cons_iov){in, sizeof in}, 1, k->secret[m]);
    if (!real) continue;
    k->priv[m] = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->secret[m], 32);
    uint8_t pk[32];
    size_t pl = 32;
    if (!k->priv[m] || EVP_PKEY_get_raw_public_key(k->priv[m], pk, &pl) != 1 ||
        !(k->pub[m] = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, 32))) {
      sim_keyring_free(k);
      return NULL;
    }
  }
  return k;
}

void sim_keyring_free(sim_keyring *k) {
  if (!k) return;
  for (uint32_t m = 0; m < k->n; m++) {
    EVP_PKEY_free(k->priv[m]);
    EVP_PKEY_free(k->pub[m]);
  }
  free(k);
}

cons_crypto sim_signer(sim_keyring *k, uint32_t self) {
  sim_signer_ctx *c = &k->ctx[self < k->n ? self : k->n];
  c->k = k;
  c->self = self;
  return (cons_crypto){c, sim_sign, sim_verify, cons_store_hashv};
}

uint64_t sim_keyring_signs(const sim_keyring *k) { return k->signs; }
uint64_t sim_keyring_verifies(const sim_keyring *k) { return k->verifies; }
