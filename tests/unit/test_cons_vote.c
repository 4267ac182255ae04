/* test_cons_vote.c: the consensus handlers one by one (spec/consensus.md §3):
 * stale heights and rounds, duplicates, non-members, forged signatures,
 * conflicting votes, the lock rule, the persistence rule, commit, catch-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cons_internal.h"
#include "test_cons_util.h"

typedef struct fx {
  tsign keys[4];
  cons *c; /* member 0: not the proposer of rounds 0-2 at height 1 */
  uint8_t *blk_a, *blk_b;
  size_t len_a, len_b;
  uint8_t hash_a[32], hash_b[32];
  uint64_t now;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  tsign_init(f->keys, 4);
  cons_config cfg = tconfig(f->keys, 0);
  assert_int_equal(cons_init(&f->c, &cfg, NULL, 0, NULL, 0), 0);
  tblock(1, cfg.genesis_hash, 1, 'T', &f->blk_a, &f->len_a);
  tblock(1, cfg.genesis_hash, 2, 'T', &f->blk_b, &f->len_b);
  cons_block_hash(&cfg.crypto, f->blk_a, f->len_a, f->hash_a);
  cons_block_hash(&cfg.crypto, f->blk_b, f->len_b, f->hash_b);
  const cons_update *u;
  assert_int_equal(tstep(f->c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  cons_free(f->c);
  free(f->blk_a);
  free(f->blk_b);
  free(f);
  return 0;
}

static int send_vote(fx *f, uint32_t voter, uint8_t type, uint64_t h,
                     uint32_t r, const uint8_t *hash, const cons_update **u) {
  uint8_t m[CONS_VOTE_MSG_BYTES];
  cons_crypto s = tsign_signer(&f->keys[voter < 4 ? voter : 0]);
  assert_int_equal(cons_vote_make(&s, type, h, r, voter, hash, m), 0);
  return tstep(f->c, CONS_EV_MSG, f->now, voter, m, sizeof m, 0, u);
}

static int send_prop(fx *f, uint32_t proposer, uint32_t r, int32_t pol,
                     const uint8_t *blk, size_t len, const cons_update **u) {
  uint8_t *m;
  size_t ml;
  cons_crypto s = tsign_signer(&f->keys[proposer]);
  assert_int_equal(cons_proposal_make(&s, 1, r, pol, proposer, blk, len, &m, &ml), 0);
  int rc = tstep(f->c, CONS_EV_MSG, f->now, proposer, m, ml, 0, u);
  free(m);
  return rc;
}

/* feed PERSISTED for the update's record; return the release update */
static const cons_update *persist(fx *f, const cons_update *u) {
  const cons_update *r = u;
  if (u->state)
    assert_int_equal(tstep(f->c, CONS_EV_PERSISTED, f->now, 0, NULL, 0, u->state_seq, &r), 0);
  return r;
}

static void fire(fx *f, const cons_update **u) {
  f->now = (*u)->next_timeout_ms;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, u), 0);
}

static void test_vote_held_until_persisted(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(send_prop(f, 1, 0, -1, f->blk_a, f->len_a, &u), 0);
  assert_non_null(u->state); /* the vote's state must be written first... */
  assert_int_equal(u->n_signed, 1);
  assert_false(tfind_vote(u, CONS_PREVOTE, 0, f->hash_a, 0)); /* ...not sent */
  uint64_t seq = u->state_seq;
  /* a premature or invented PERSISTED releases nothing */
  assert_int_equal(tstep(f->c, CONS_EV_PERSISTED, 1, 0, NULL, 0, seq + 1, &u), CONS_EARG);
  assert_int_equal(u->n_msgs, 0);
  assert_int_equal(tstep(f->c, CONS_EV_PERSISTED, 1, 0, NULL, 0, seq, &u), 0);
  assert_true(tfind_vote(u, CONS_PREVOTE, 0, f->hash_a, 0));
}

static void test_wrong_proposer_rejected(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(send_prop(f, 2, 0, -1, f->blk_b, f->len_b, &u), CONS_EPROPOSER);
  assert_null(u->state);
  assert_int_equal(cons_step_kind(f->c), CONS_STEP_PROPOSE);
}

static void test_non_member_and_forged(void **state) {
  fx *f = *state;
  const cons_update *u;
  /* member 4 of a 4-member federation (valid index of the key table) */
  assert_int_equal(send_vote(f, 4, CONS_PREVOTE, 1, 0, f->hash_a, &u), CONS_ENOTMEMBER);
  uint8_t m[CONS_VOTE_MSG_BYTES];
  cons_crypto s1 = tsign_signer(&f->keys[1]);
  /* member 2's vote signed with member 1's key */
  assert_int_equal(cons_vote_make(&s1, CONS_PREVOTE, 1, 0, 2, f->hash_a, m), 0);
  assert_int_equal(tstep(f->c, CONS_EV_MSG, 0, 2, m, sizeof m, 0, &u), CONS_EBADSIG);
  assert_int_equal(cons_vote_make(&s1, CONS_PREVOTE, 1, 0, 1, f->hash_a, m), 0);
  m[CONS_VOTE_MSG_BYTES - 1] ^= 1;
  assert_int_equal(tstep(f->c, CONS_EV_MSG, 0, 1, m, sizeof m, 0, &u), CONS_EBADSIG);
  cons_rnd *r = cons_round_get(f->c, 0, false);
  assert_true(r == NULL || cons_count(r, CONS_PREVOTE, NULL, true) == 0);
}

static void test_duplicate_counted_once(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(send_vote(f, 1, CONS_PRECOMMIT, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(send_vote(f, 1, CONS_PRECOMMIT, 1, 0, f->hash_a, &u), CONS_EDUP);
  assert_int_equal(send_vote(f, 1, CONS_PRECOMMIT, 1, 0, f->hash_a, &u), CONS_EDUP);
  assert_int_equal(send_vote(f, 2, CONS_PRECOMMIT, 1, 0, f->hash_a, &u), 0);
  cons_rnd *r = cons_round_get(f->c, 0, false);
  assert_non_null(r);
  assert_int_equal(cons_count(r, CONS_PRECOMMIT, f->hash_a, false), 2);
  assert_int_equal(cons_count(r, CONS_PRECOMMIT, NULL, true), 2);
  /* two precommits plus duplicates are not a quorum: no precommit timer */
  assert_int_equal(f->c->timers[CONS_T_PRECOMMIT].deadline_ms, CONS_NO_TIMEOUT);
}

static void test_conflicting_vote_is_evidence(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(send_vote(f, 3, CONS_PREVOTE, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(send_vote(f, 3, CONS_PREVOTE, 1, 0, f->hash_b, &u), CONS_ECONFLICT);
  assert_int_equal(u->n_evidence, 1);
  assert_int_equal(u->evidence[0].member, 3);
  assert_non_null(u->state); /* evidence is persisted */
  assert_int_equal(u->evidence[0].len, 8 + 2 * CONS_VOTE_MSG_BYTES);
}

static void test_stale_and_future(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(send_vote(f, 1, CONS_PREVOTE, 1, CONS_ROUND_AHEAD + 1, f->hash_a, &u),
                   CONS_EFUTURE);
  assert_int_equal(send_vote(f, 1, CONS_PREVOTE, 3, 0, f->hash_a, &u), CONS_EFUTURE);
  /* commit height 1, then height-1 messages are stale */
  assert_int_equal(send_prop(f, 1, 0, -1, f->blk_a, f->len_a, &u), 0);
  for (uint32_t m = 1; m < 4; m++)
    assert_int_equal(send_vote(f, m, CONS_PRECOMMIT, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(u->n_commits, 1);
  assert_int_equal(cons_height(f->c), 2);
  assert_int_equal(send_vote(f, 1, CONS_PREVOTE, 1, 0, f->hash_a, &u), CONS_ESTALE);
  assert_int_equal(send_prop(f, 1, 0, -1, f->blk_a, f->len_a, &u), CONS_ESTALE);
}

static void test_commit_record_verifies(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(send_prop(f, 1, 0, -1, f->blk_a, f->len_a, &u), 0);
  for (uint32_t m = 1; m < 4; m++)
    assert_int_equal(send_vote(f, m, CONS_PREVOTE, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(cons_locked_round(f->c), 0);
  assert_int_equal(send_vote(f, 1, CONS_PRECOMMIT, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(send_vote(f, 2, CONS_PRECOMMIT, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(u->n_commits, 1); /* own precommit + 2 = 2f+1 */
  cons_commit_info ci;
  cons_crypto chk = tsign_signer(&f->keys[0]);
  assert_int_equal(cons_record_verify(&chk, 4, u->commits[0].record,
                                      u->commits[0].record_len, &ci), 0);
  assert_int_equal(ci.height, 1);
  assert_memory_equal(ci.block_hash, f->hash_a, 32);
  assert_int_equal(ci.n_sigs, 3);
  assert_non_null(u->state);
}

/* Algorithm 1 lines 22-33: locked on A in round 0, a member prevotes nil for
 * a fresh B, and only prevotes B once shown 2f+1 prevotes for B in a round
 * at or after its lock. */
static void test_lock_rule(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(send_prop(f, 1, 0, -1, f->blk_a, f->len_a, &u), 0);
  u = persist(f, u);
  assert_int_equal(send_vote(f, 1, CONS_PREVOTE, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(cons_locked_round(f->c), -1);
  /* our own prevote and two others: 2f+1, we lock and precommit A */
  assert_int_equal(send_vote(f, 2, CONS_PREVOTE, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(cons_locked_round(f->c), 0);
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PRECOMMIT, 0, f->hash_a, 0));
  for (uint32_t m = 1; m < 4; m++)
    assert_int_equal(send_vote(f, m, CONS_PRECOMMIT, 1, 0, NULL, &u), 0);
  fire(f, &u); /* precommit timeout: round 1 */
  assert_int_equal(cons_round(f->c), 1);

  /* round 1: proposer 2 proposes B fresh; we are locked on A: nil */
  uint8_t *blk_b2;
  size_t len_b2;
  uint8_t hash_b2[32];
  tblock(1, f->c->cfg.genesis_hash, 2, 'T', &blk_b2, &len_b2);
  cons_block_hash(&f->c->cfg.crypto, blk_b2, len_b2, hash_b2);
  assert_int_equal(send_prop(f, 2, 1, -1, blk_b2, len_b2, &u), 0);
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PREVOTE, 1, NULL, 0));
  assert_int_equal(send_vote(f, 1, CONS_PREVOTE, 1, 1, hash_b2, &u), 0);
  assert_int_equal(send_vote(f, 2, CONS_PREVOTE, 1, 1, hash_b2, &u), 0);
  assert_int_equal(cons_locked_round(f->c), 0);
  fire(f, &u); /* prevote timeout: precommit nil */
  for (uint32_t m = 1; m < 4; m++)
    assert_int_equal(send_vote(f, m, CONS_PRECOMMIT, 1, 1, NULL, &u), 0);
  fire(f, &u);
  assert_int_equal(cons_round(f->c), 2);

  /* round 2: proposer 3 re-proposes B with pol 1; two prevotes are not a
   * proof of lock... */
  assert_int_equal(send_prop(f, 3, 2, 1, blk_b2, len_b2, &u), 0);
  assert_int_equal(u->n_signed, 0);
  assert_int_equal(cons_step_kind(f->c), CONS_STEP_PROPOSE);
  /* ...the third is: locked_round 0 <= pol 1, so we prevote B */
  assert_int_equal(send_vote(f, 3, CONS_PREVOTE, 1, 1, hash_b2, &u), 0);
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PREVOTE, 2, hash_b2, 0));
  free(blk_b2);
}

static void test_invalid_block_prevote_nil(void **state) {
  fx *f = *state;
  const cons_update *u;
  uint8_t *bad;
  size_t len;
  tblock(1, f->c->cfg.genesis_hash, 1, 'X', &bad, &len); /* fails validation */
  assert_int_equal(send_prop(f, 1, 0, -1, bad, len, &u), 0);
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PREVOTE, 0, NULL, 0));
  free(bad);
}

static void test_propose_timeout(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, 99, 0, NULL, 0, 0, &u), 0);
  assert_int_equal(u->n_signed, 0); /* not yet: timeout_propose is 100 */
  assert_int_equal(u->next_timeout_ms, 100);
  f->now = 100;
  fire(f, &u);
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PREVOTE, 0, NULL, 0));
}

static void test_catchup(void **state) {
  fx *f = *state;
  const cons_update *u;
  /* a record made by the others: block A, precommits of 1, 2, 3 */
  uint8_t pcs[3][CONS_VOTE_MSG_BYTES];
  const uint8_t *pp[3];
  for (uint32_t m = 1; m < 4; m++) {
    cons_crypto s = tsign_signer(&f->keys[m]);
    assert_int_equal(cons_vote_make(&s, CONS_PRECOMMIT, 1, 0, m, f->hash_a, pcs[m - 1]), 0);
    pp[m - 1] = pcs[m - 1];
  }
  uint8_t *cert, *rec, *msg;
  size_t cert_len, rec_len, msg_len;
  assert_int_equal(cons_cert_make(1, 0, f->hash_a, pp, 3, &cert, &cert_len), 0);
  assert_int_equal(cons_record_make(f->blk_a, f->len_a, cert, cert_len, &rec, &rec_len), 0);
  assert_int_equal(cons_catchup_resp_encode(rec, rec_len, &msg, &msg_len), 0);
  /* forged: one signature byte flipped */
  msg[msg_len - 1] ^= 1;
  assert_int_equal(tstep(f->c, CONS_EV_MSG, 0, 1, msg, msg_len, 0, &u), CONS_EBADSIG);
  assert_int_equal(cons_height(f->c), 1);
  msg[msg_len - 1] ^= 1;
  assert_int_equal(tstep(f->c, CONS_EV_MSG, 0, 1, msg, msg_len, 0, &u), 0);
  assert_int_equal(u->n_commits, 1);
  assert_int_equal(cons_height(f->c), 2);
  /* a peer asking for height 1 gets a serve entry for the driver */
  uint8_t req[9];
  cons_catchup_req_encode(1, req);
  assert_int_equal(tstep(f->c, CONS_EV_MSG, 0, 3, req, sizeof req, 0, &u), 0);
  assert_int_equal(u->n_serve, 1);
  assert_int_equal(u->serve[0].to, 3);
  assert_int_equal(u->serve[0].height, 1);
  cons_catchup_req_encode(2, req); /* not committed here yet */
  assert_int_equal(tstep(f->c, CONS_EV_MSG, 0, 3, req, sizeof req, 0, &u), CONS_ESTALE);
  free(cert);
  free(rec);
  free(msg);
}

static void test_future_height_buffered(void **state) {
  fx *f = *state;
  const cons_update *u;
  /* a height-2 vote arrives before we commit height 1: kept, then counted */
  uint8_t h2[32] = {1};
  assert_int_equal(send_vote(f, 3, CONS_PREVOTE, 2, 0, h2, &u), 0);
  assert_int_equal(send_prop(f, 1, 0, -1, f->blk_a, f->len_a, &u), 0);
  for (uint32_t m = 1; m < 4; m++)
    assert_int_equal(send_vote(f, m, CONS_PRECOMMIT, 1, 0, f->hash_a, &u), 0);
  assert_int_equal(cons_height(f->c), 2);
  cons_rnd *r = cons_round_get(f->c, 0, false);
  assert_non_null(r);
  assert_int_equal(cons_count(r, CONS_PREVOTE, h2, false), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_vote_held_until_persisted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_proposer_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_non_member_and_forged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_counted_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conflicting_vote_is_evidence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_and_future, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_record_verifies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lock_rule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_block_prevote_nil, setup, teardown),
      cmocka_unit_test_setup_teardown(test_propose_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_catchup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_future_height_buffered, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
