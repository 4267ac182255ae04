/* test_cons_codec.c: the consensus encodings reject malformed input with an
 * error code (spec/consensus.md §5): every truncation, every flipped length
 * byte, trailing bytes, non-canonical fields; certificates with forged,
 * repeated, missing or foreign signatures. And the crypto seam (§6): block
 * hashes go through the caller's hashv, an incomplete interface is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_cons_util.h"

static tsign keys[8]; /* 0-3 members, 5 a stranger */
static const uint8_t parent[32] = {9};

/* cons_store_hashv (what a driver plugs into cons_crypto.hashv) hashes the
 * concatenation of its parts, however the bytes are split: FIPS 180-2
 * vectors cut into pieces, empty pieces, and no pieces at all. */
static void test_hashv_parts(void **state) {
  (void)state;
  uint8_t out[32];
  static const uint8_t abc_hash[32] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  static const uint8_t empty_hash[32] = {
      0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
      0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
      0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
  static const uint8_t million_a[32] = {
      0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
      0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
      0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
  const uint8_t *abc = (const uint8_t *)"abc";
  const cons_iov split[4] = {{abc, 1}, {NULL, 0}, {abc + 1, 2}, {abc, 0}};
  cons_store_hashv(NULL, split, 4, out);
  assert_memory_equal(out, abc_hash, 32);
  cons_store_hashv(NULL, split, 1, out); /* only "a" */
  assert_memory_not_equal(out, abc_hash, 32);
  cons_store_hashv(NULL, NULL, 0, out);
  assert_memory_equal(out, empty_hash, 32);
  cons_store_hashv(NULL, &split[1], 1, out);
  assert_memory_equal(out, empty_hash, 32);
  uint8_t *a = malloc(1000000);
  assert_non_null(a);
  memset(a, 'a', 1000000);
  /* pieces that straddle 64-byte block boundaries */
  const cons_iov pieces[4] = {{a, 1}, {a, 63}, {a, 65}, {a, 1000000 - 129}};
  cons_store_hashv(NULL, pieces, 4, out);
  assert_memory_equal(out, million_a, 32);
  free(a);
}

/* a hashv that counts its calls, then hashes with cons_store_hashv; with
 * `flip` set it returns a different (non-SHA-256) digest */
typedef struct counting {
  unsigned calls;
  bool flip;
} counting;
static void counting_hashv(void *ctx, const cons_iov *parts, size_t n,
                           uint8_t out[CONS_HASH_BYTES]) {
  counting *k = ctx;
  k->calls++;
  cons_store_hashv(NULL, parts, n, out);
  if (k->flip) out[0] ^= 1;
}

/* Block hashes are SHA-256(tag || block) through the caller's hashv, and
 * nothing in the core hashes any other way. */
static void test_block_hash_uses_interface(void **state) {
  (void)state;
  uint8_t *blk, *m, *contig, want[32], got[32], untagged[32];
  size_t bl, ml;
  tblock(2, parent, 1, 'T', &blk, &bl);
  contig = malloc(16 + bl);
  assert_non_null(contig);
  memcpy(contig, "cb/cons/blck/v1", 16); /* 15 characters and the NUL */
  memcpy(contig + 16, blk, bl);
  cons_store_hashv(NULL, &(cons_iov){contig, 16 + bl}, 1, want);
  cons_store_hashv(NULL, &(cons_iov){blk, bl}, 1, untagged);
  cons_crypto h = thash();
  cons_block_hash(&h, blk, bl, got);
  assert_memory_equal(got, want, 32);
  assert_memory_not_equal(got, untagged, 32);
  free(contig);

  /* proposal_make and proposal_decode both hash the block via hashv */
  counting k = {0, false};
  cons_crypto s = tsign_signer(&keys[1]);
  cons_crypto cs = s;
  cs.hashv = counting_hashv;
  cs.ctx = &k;
  cs.sign = NULL; /* hashing only: decode needs no signer */
  assert_int_equal(cons_proposal_make(&s, 2, 0, -1, 1, blk, bl, &m, &ml), 0);
  cons_proposal p;
  assert_int_equal(cons_proposal_decode(&cs, m, ml, &p), 0);
  assert_int_equal(k.calls, 1);
  assert_memory_equal(p.block_hash, want, 32);
  /* a member hashing differently sees a block that does not match its hash */
  k.flip = true;
  assert_int_equal(cons_proposal_decode(&cs, m, ml, &p), CONS_EMALFORMED);
  assert_int_equal(k.calls, 2);
  free(m);
  free(blk);
}

/* An incomplete interface is refused with CONS_EARG, naming what is missing,
 * before anything is hashed or verified. */
static void test_incomplete_crypto_refused(void **state) {
  (void)state;
  tsign t[4];
  tsign_init(t, 4);
  cons_config cfg = tconfig(t, 0);
  char err[96];
  cons *c = NULL;
  cfg.crypto.hashv = NULL;
  assert_int_equal(cons_init(&c, &cfg, NULL, 0, err, sizeof err), CONS_EARG);
  assert_null(c);
  assert_string_equal(err, "crypto: hashv missing");
  cfg = tconfig(t, 0);
  cfg.crypto.verify = NULL;
  assert_int_equal(cons_init(&c, &cfg, NULL, 0, err, sizeof err), CONS_EARG);
  assert_string_equal(err, "crypto: sign or verify missing");
  cfg = tconfig(t, 0);
  assert_int_equal(cons_init(&c, &cfg, NULL, 0, err, sizeof err), 0);
  cons_free(c);

  uint8_t *blk, *m, *rec;
  size_t bl, ml, rl;
  tblock(1, parent, 1, 'T', &blk, &bl);
  cons_crypto s = tsign_signer(&t[1]), nohash = s, noverify = s, hashonly = thash();
  nohash.hashv = NULL;
  noverify.verify = NULL;
  assert_int_equal(cons_proposal_make(&nohash, 1, 0, -1, 1, blk, bl, &m, &ml), CONS_EARG);
  assert_int_equal(cons_proposal_make(&hashonly, 1, 0, -1, 1, blk, bl, &m, &ml), CONS_EARG);
  assert_int_equal(cons_proposal_make(&s, 1, 0, -1, 1, blk, bl, &m, &ml), 0);
  cons_proposal p;
  assert_int_equal(cons_proposal_decode(&nohash, m, ml, &p), CONS_EARG);
  assert_int_equal(cons_proposal_decode(NULL, m, ml, &p), CONS_EARG);
  assert_int_equal(cons_proposal_decode(&hashonly, m, ml, &p), 0);
  /* offline record and certificate checks take the interface too */
  uint8_t h[32], pc[3][CONS_VOTE_MSG_BYTES];
  const uint8_t *pp[3];
  cons_block_hash(&s, blk, bl, h);
  for (uint32_t i = 0; i < 3; i++) {
    cons_crypto si = tsign_signer(&t[i]);
    assert_int_equal(cons_vote_make(&si, CONS_PRECOMMIT, 1, 0, i, h, pc[i]), 0);
    pp[i] = pc[i];
  }
  uint8_t *cert;
  size_t cl;
  assert_int_equal(cons_cert_make(1, 0, h, pp, 3, &cert, &cl), 0);
  assert_int_equal(cons_record_make(blk, bl, cert, cl, &rec, &rl), 0);
  cons_commit_info ci;
  assert_int_equal(cons_record_verify(&nohash, 4, rec, rl, &ci), CONS_EARG);
  assert_int_equal(cons_record_verify(&noverify, 4, rec, rl, &ci), CONS_EARG);
  assert_int_equal(cons_cert_verify(&noverify, 4, cert, cl, 1, h, NULL, NULL), CONS_EARG);
  assert_int_equal(cons_cert_verify(NULL, 4, cert, cl, 1, h, NULL, NULL), CONS_EARG);
  assert_int_equal(cons_record_verify(&s, 4, rec, rl, &ci), 0);
  assert_memory_equal(ci.block_hash, h, 32);
  assert_int_equal(ci.n_sigs, 3);
  free(rec);
  free(cert);
  free(m);
  free(blk);
}

static void test_vote_roundtrip_and_truncation(void **state) {
  (void)state;
  cons_crypto s = tsign_signer(&keys[2]);
  uint8_t m[CONS_VOTE_MSG_BYTES], h[32] = {5};
  cons_vote v;
  assert_int_equal(cons_vote_make(&s, CONS_PRECOMMIT, 7, 3, 2, h, m), 0);
  assert_int_equal(cons_vote_decode(m, sizeof m, &v), 0);
  assert_int_equal(v.type, CONS_PRECOMMIT);
  assert_int_equal(v.height, 7);
  assert_int_equal(v.round, 3);
  assert_int_equal(v.voter, 2);
  assert_false(v.nil);
  assert_int_equal(cons_vote_verify(&s, &v), 0);
  for (size_t n = 0; n < sizeof m; n++)
    assert_int_equal(cons_vote_decode(m, n, &v), CONS_ETRUNC);
  uint8_t longer[CONS_VOTE_MSG_BYTES + 1];
  memcpy(longer, m, sizeof m);
  assert_int_equal(cons_vote_decode(longer, sizeof longer, &v), CONS_ETRAILING);
  /* every single-bit change either fails to decode or fails to verify */
  for (size_t i = 0; i < sizeof m; i++) {
    uint8_t x[CONS_VOTE_MSG_BYTES];
    memcpy(x, m, sizeof m);
    x[i] ^= 0x10;
    if (cons_vote_decode(x, sizeof x, &v) == 0)
      assert_int_not_equal(cons_vote_verify(&s, &v), 0);
  }
  /* nil must carry a zero hash; type and flag ranges */
  assert_int_equal(cons_vote_make(&s, CONS_PREVOTE, 7, 3, 2, NULL, m), 0);
  assert_int_equal(cons_vote_decode(m, sizeof m, &v), 0);
  assert_true(v.nil);
  m[1 + 1 + 8 + 4 + 4 + 1] = 1;
  assert_int_equal(cons_vote_decode(m, sizeof m, &v), CONS_EMALFORMED);
  m[1 + 1 + 8 + 4 + 4 + 1] = 0;
  m[1] = 9;
  assert_int_equal(cons_vote_decode(m, sizeof m, &v), CONS_EMALFORMED);
  assert_int_equal(cons_vote_make(&s, 3, 7, 3, 2, NULL, m), CONS_EARG);
}

static void test_proposal_lengths(void **state) {
  (void)state;
  cons_crypto s = tsign_signer(&keys[1]);
  uint8_t *blk, *m;
  size_t bl, ml;
  tblock(1, parent, 1, 'T', &blk, &bl);
  assert_int_equal(cons_proposal_make(&s, 1, 0, -1, 1, blk, bl, &m, &ml), 0);
  cons_proposal p;
  assert_int_equal(cons_proposal_decode(&s, m, ml, &p), 0);
  assert_int_equal(cons_proposal_verify(&s, &p), 0);
  assert_int_equal(p.pol_round, -1);
  for (size_t n = 0; n < ml; n++) assert_int_not_equal(cons_proposal_decode(&s, m, n, &p), 0);
  /* flip each byte of the block length field: never accepted */
  size_t len_off = 1 + CONS_PROP_BODY_BYTES + CONS_SIG_BYTES;
  for (size_t i = 0; i < 4; i++)
    for (int bit = 0; bit < 8; bit++) {
      m[len_off + i] ^= (uint8_t)(1 << bit);
      assert_int_not_equal(cons_proposal_decode(&s, m, ml, &p), 0);
      m[len_off + i] ^= (uint8_t)(1 << bit);
    }
  /* the block must be the one whose hash is signed */
  m[ml - 1] ^= 1;
  assert_int_equal(cons_proposal_decode(&s, m, ml, &p), CONS_EMALFORMED);
  m[ml - 1] ^= 1;
  /* pol_round must be before the round */
  uint8_t *m2;
  size_t ml2;
  assert_int_equal(cons_proposal_make(&s, 1, 2, 2, 1, blk, bl, &m2, &ml2), CONS_EARG);
  m[1 + 8 + 4 + 3] = 0; /* pol_round 0xFFFFFF00 >= round 0 */
  assert_int_equal(cons_proposal_decode(&s, m, ml, &p), CONS_EMALFORMED);
  free(blk);
  free(m);
}

static void test_block_bounds(void **state) {
  (void)state;
  uint8_t *blk;
  size_t bl;
  cons_block b;
  tblock(3, parent, 2, 'T', &blk, &bl);
  assert_int_equal(cons_block_decode(blk, bl, &b), 0);
  assert_int_equal(b.height, 3);
  assert_int_equal(b.n_txs, 1);
  for (size_t n = 0; n < bl; n++) assert_int_not_equal(cons_block_decode(blk, n, &b), 0);
  size_t ntx_off = 1 + 8 + 32 + 4;
  blk[ntx_off] = 0xFF; /* tx count far over CONS_MAX_TXS */
  assert_int_equal(cons_block_decode(blk, bl, &b), CONS_ETOOBIG);
  blk[ntx_off] = 0;
  blk[ntx_off + 4] = 0x7F; /* tx length over CONS_MAX_TX_BYTES */
  assert_int_equal(cons_block_decode(blk, bl, &b), CONS_ETOOBIG);
  free(blk);
  const uint8_t *txs[CONS_MAX_TXS + 1];
  size_t lens[CONS_MAX_TXS + 1];
  uint8_t tx = 'T';
  for (size_t i = 0; i <= CONS_MAX_TXS; i++) {
    txs[i] = &tx;
    lens[i] = 1;
  }
  assert_int_equal(cons_block_make(1, parent, 0, txs, lens, CONS_MAX_TXS + 1, &blk, &bl),
                   CONS_ETOOBIG);
}

static void make_cert(const uint8_t h[32], const uint32_t *voters, size_t n,
                      uint8_t **cert, size_t *len) {
  uint8_t pcs[8][CONS_VOTE_MSG_BYTES];
  const uint8_t *pp[8];
  for (size_t i = 0; i < n; i++) {
    cons_crypto s = tsign_signer(&keys[voters[i]]);
    assert_int_equal(cons_vote_make(&s, CONS_PRECOMMIT, 4, 1, voters[i], h, pcs[i]), 0);
    pp[i] = pcs[i];
  }
  assert_int_equal(cons_cert_make(4, 1, h, pp, n, cert, len), 0);
}

static void test_certificates(void **state) {
  (void)state;
  cons_crypto chk = tsign_signer(&keys[0]);
  uint8_t h[32] = {0xAB}, other[32] = {0xCD};
  uint8_t *c;
  size_t cl;
  uint32_t round, nsig;
  const uint32_t good[3] = {3, 0, 2};
  make_cert(h, good, 3, &c, &cl);
  assert_int_equal(cons_cert_verify(&chk, 4, c, cl, 4, h, &round, &nsig), 0);
  assert_int_equal(round, 1);
  assert_int_equal(nsig, 3);
  assert_int_equal(cons_cert_verify(&chk, 4, c, cl, 5, h, NULL, NULL), CONS_ECERT);
  assert_int_equal(cons_cert_verify(&chk, 4, c, cl, 4, other, NULL, NULL), CONS_ECERT);
  for (size_t n = 0; n < cl; n++)
    assert_int_not_equal(cons_cert_verify(&chk, 4, c, n, 4, h, NULL, NULL), 0);
  /* forged: a flipped signature byte in each entry */
  for (size_t e = 0; e < 3; e++) {
    size_t off = 1 + 8 + 4 + 32 + 4 + e * CONS_VOTE_MSG_BYTES + CONS_VOTE_MSG_BYTES - 3;
    c[off] ^= 0x80;
    assert_int_equal(cons_cert_verify(&chk, 4, c, cl, 4, h, NULL, NULL), CONS_EBADSIG);
    c[off] ^= 0x80;
  }
  free(c);
  /* repeated signer: the same valid precommit twice plus one more */
  const uint32_t rep[3] = {1, 1, 2};
  make_cert(h, rep, 3, &c, &cl);
  assert_int_equal(cons_cert_verify(&chk, 4, c, cl, 4, h, NULL, NULL), CONS_ECERT);
  free(c);
  /* too few */
  const uint32_t two[2] = {1, 2};
  make_cert(h, two, 2, &c, &cl);
  assert_int_equal(cons_cert_verify(&chk, 4, c, cl, 4, h, NULL, NULL), CONS_ECERT);
  free(c);
  /* a signer outside the federation */
  const uint32_t foreign[3] = {0, 1, 5};
  make_cert(h, foreign, 3, &c, &cl);
  assert_int_equal(cons_cert_verify(&chk, 4, c, cl, 4, h, NULL, NULL), CONS_ENOTMEMBER);
  free(c);
}

int main(void) {
  tsign_init(keys, 8);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hashv_parts),
      cmocka_unit_test(test_block_hash_uses_interface),
      cmocka_unit_test(test_incomplete_crypto_refused),
      cmocka_unit_test(test_vote_roundtrip_and_truncation),
      cmocka_unit_test(test_proposal_lengths),
      cmocka_unit_test(test_block_bounds),
      cmocka_unit_test(test_certificates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
