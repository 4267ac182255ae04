/* test_cons_codec.c: the consensus encodings reject malformed input with an
 * error code (spec/consensus.md §5): every truncation, every flipped length
 * byte, trailing bytes, non-canonical fields; certificates with forged,
 * repeated, missing or foreign signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_cons_util.h"

static tsign keys[8]; /* 0-3 members, 5 a stranger */
static const uint8_t parent[32] = {9};

static void test_sha256_vectors(void **state) {
  (void)state;
  uint8_t out[32];
  static const uint8_t abc_hash[32] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  cons_sha256((const uint8_t *)"abc", 3, out);
  assert_memory_equal(out, abc_hash, 32);
  static const uint8_t empty_hash[4] = {0xe3, 0xb0, 0xc4, 0x42};
  cons_sha256(NULL, 0, out);
  assert_memory_equal(out, empty_hash, 4);
  /* 1,000,000 x 'a' crosses every block boundary case */
  uint8_t *a = malloc(1000000);
  memset(a, 'a', 1000000);
  static const uint8_t million_a[4] = {0xcd, 0xc7, 0x6e, 0x5c};
  cons_sha256(a, 1000000, out);
  assert_memory_equal(out, million_a, 4);
  free(a);
}

static void test_vote_roundtrip_and_truncation(void **state) {
  (void)state;
  cons_signer s = tsign_signer(&keys[2]);
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
  cons_signer s = tsign_signer(&keys[1]);
  uint8_t *blk, *m;
  size_t bl, ml;
  tblock(1, parent, 1, 'T', &blk, &bl);
  assert_int_equal(cons_proposal_make(&s, 1, 0, -1, 1, blk, bl, &m, &ml), 0);
  cons_proposal p;
  assert_int_equal(cons_proposal_decode(m, ml, &p), 0);
  assert_int_equal(cons_proposal_verify(&s, &p), 0);
  assert_int_equal(p.pol_round, -1);
  for (size_t n = 0; n < ml; n++) assert_int_not_equal(cons_proposal_decode(m, n, &p), 0);
  /* flip each byte of the block length field: never accepted */
  size_t len_off = 1 + CONS_PROP_BODY_BYTES + CONS_SIG_BYTES;
  for (size_t i = 0; i < 4; i++)
    for (int bit = 0; bit < 8; bit++) {
      m[len_off + i] ^= (uint8_t)(1 << bit);
      assert_int_not_equal(cons_proposal_decode(m, ml, &p), 0);
      m[len_off + i] ^= (uint8_t)(1 << bit);
    }
  /* the block must be the one whose hash is signed */
  m[ml - 1] ^= 1;
  assert_int_equal(cons_proposal_decode(m, ml, &p), CONS_EMALFORMED);
  m[ml - 1] ^= 1;
  /* pol_round must be before the round */
  uint8_t *m2;
  size_t ml2;
  assert_int_equal(cons_proposal_make(&s, 1, 2, 2, 1, blk, bl, &m2, &ml2), CONS_EARG);
  m[1 + 8 + 4 + 3] = 0; /* pol_round 0xFFFFFF00 >= round 0 */
  assert_int_equal(cons_proposal_decode(m, ml, &p), CONS_EMALFORMED);
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
    cons_signer s = tsign_signer(&keys[voters[i]]);
    assert_int_equal(cons_vote_make(&s, CONS_PRECOMMIT, 4, 1, voters[i], h, pcs[i]), 0);
    pp[i] = pcs[i];
  }
  assert_int_equal(cons_cert_make(4, 1, h, pp, n, cert, len), 0);
}

static void test_certificates(void **state) {
  (void)state;
  cons_signer chk = tsign_signer(&keys[0]);
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
      cmocka_unit_test(test_sha256_vectors),
      cmocka_unit_test(test_vote_roundtrip_and_truncation),
      cmocka_unit_test(test_proposal_lengths),
      cmocka_unit_test(test_block_bounds),
      cmocka_unit_test(test_certificates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
