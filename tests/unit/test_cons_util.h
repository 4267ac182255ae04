/* test_cons_util.h: fixtures shared by the consensus unit tests: a keyed-hash
 * stand-in signer, the OpenSSL hash the store supplies (cons_store_hashv) and
 * helpers that drive one core by hand. */
#ifndef TEST_CONS_UTIL_H
#define TEST_CONS_UTIL_H

#include <stdint.h>
#include <string.h>

#include "cons.h"
#include "cons_store.h"

typedef struct tsign {
  uint32_t self;
  uint8_t keys[CONS_MAX_MEMBERS][32];
} tsign;

/* sig = SHA-256(key || msg) || SHA-256(key ^ 1 in byte 0 || msg) */
static inline void tsig_make(const uint8_t key[32], const uint8_t *msg,
                             size_t len, uint8_t sig[64]) {
  uint8_t key2[32];
  memcpy(key2, key, 32);
  key2[0] ^= 1;
  const cons_iov a[2] = {{key, 32}, {msg, len}};
  const cons_iov b[2] = {{key2, 32}, {msg, len}};
  cons_store_hashv(NULL, a, 2, sig);
  cons_store_hashv(NULL, b, 2, sig + 32);
}

static inline int tsign_sign(void *ctx, const uint8_t *msg, size_t len,
                             uint8_t sig[64]) {
  tsign *t = ctx;
  tsig_make(t->keys[t->self], msg, len, sig);
  return 0;
}

static inline int tsign_verify(void *ctx, uint32_t m, const uint8_t *msg,
                               size_t len, const uint8_t sig[64]) {
  tsign *t = ctx;
  uint8_t want[64];
  if (m >= CONS_MAX_MEMBERS) return -1;
  tsig_make(t->keys[m], msg, len, want);
  return memcmp(want, sig, 64) ? -1 : 0;
}

/* signers for members 0..n-1 sharing one key set */
static inline void tsign_init(tsign *t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    t[i].self = i;
    for (uint32_t m = 0; m < CONS_MAX_MEMBERS; m++)
      for (int b = 0; b < 32; b++) t[i].keys[m][b] = (uint8_t)(m * 31 + b + 7);
  }
}

static inline cons_crypto tsign_signer(tsign *t) {
  return (cons_crypto){t, tsign_sign, tsign_verify, cons_store_hashv};
}

/* hashing only (block hashes in tests that sign nothing) */
static inline cons_crypto thash(void) {
  return (cons_crypto){NULL, NULL, NULL, cons_store_hashv};
}

static inline int tvalid(void *ctx, uint64_t h, const uint8_t *tx, size_t len) {
  (void)ctx;
  (void)h;
  return len >= 1 && tx[0] == 'T' ? 0 : -1;
}

static inline cons_config tconfig(tsign *t, uint32_t self) {
  cons_config c;
  memset(&c, 0, sizeof c);
  c.n_members = 4;
  c.self = self;
  c.crypto = tsign_signer(&t[self]);
  c.validate_cb = tvalid;
  memset(c.genesis_hash, 0x47, sizeof c.genesis_hash);
  c.timeout_propose_ms = 100;
  c.timeout_propose_delta_ms = 50;
  c.timeout_vote_ms = 50;
  c.timeout_vote_delta_ms = 25;
  c.commit_wait_ms = 0;
  c.rebroadcast_ms = 1000;
  c.max_block_txs = 16;
  return c;
}

/* a block at `height` on `parent` with one transaction `tag` */
static inline void tblock(uint64_t height, const uint8_t parent[32],
                          uint32_t proposer, char tag, uint8_t **out,
                          size_t *len) {
  uint8_t tx[2] = {(uint8_t)tag, (uint8_t)proposer};
  const uint8_t *txs[1] = {tx};
  size_t lens[1] = {sizeof tx};
  int rc = cons_block_make(height, parent, proposer, txs, lens, 1, out, len);
  (void)rc;
}

static inline int tstep(cons *c, cons_event_type type, uint64_t now,
                        uint32_t from, const uint8_t *data, size_t len,
                        uint64_t seq, const cons_update **u) {
  cons_event ev = {type, now, from, data, len, seq};
  return cons_step(c, &ev, u);
}

/* does the update send a vote of `type` at round r for hash (NULL = nil)? */
static inline int tfind_vote(const cons_update *u, uint8_t type, uint32_t r,
                             const uint8_t *hash, uint32_t voter) {
  for (size_t i = 0; i < u->n_msgs; i++) {
    cons_vote v;
    if (cons_vote_decode(u->msgs[i].data, u->msgs[i].len, &v)) continue;
    if (v.type != type || v.round != r || v.voter != voter) continue;
    if (hash ? (!v.nil && !memcmp(v.hash, hash, 32)) : v.nil) return 1;
  }
  return 0;
}

#endif
