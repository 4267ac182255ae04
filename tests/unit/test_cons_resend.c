/* test_cons_resend.c: the resend path never sends a message before the state
 * record that covers it is durable (spec/consensus.md §3.3, §7).
 *
 * Regression for simulator seed 1075183 (mix "crashes"): the precommit
 * timeout and the resend timer of a member fell due in one step. The timeout
 * started round 1, in which the member is proposer, so it signed a proposal
 * (held for persistence); the resend in the same step then sent that
 * proposal, because the record that covers it is numbered only at the end of
 * the step and "persisted_seq == persist_seq" still held. The member crashed
 * before the write, restarted from the round-0 record and proposed a
 * different block for round 1: two signed proposals for one step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_cons_util.h"

#define SELF 2 /* proposer of (height 1, round 1) in a federation of four */

typedef struct fx {
  tsign keys[4];
  cons_config cfg;
  cons *c;
  uint64_t now;
  uint8_t *disk; /* the last durable state record */
  size_t disk_len;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  tsign_init(f->keys, 4);
  f->cfg = tconfig(f->keys, SELF);
  assert_int_equal(cons_init(&f->c, &f->cfg, NULL, 0, NULL, 0), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  cons_free(f->c);
  free(f->disk);
  free(f);
  return 0;
}

/* write the update's record to "disk"; return the update of PERSISTED */
static const cons_update *persist(fx *f, const cons_update *u) {
  if (!u->state) return u;
  free(f->disk);
  f->disk = malloc(u->state_len);
  assert_non_null(f->disk);
  memcpy(f->disk, u->state, u->state_len);
  f->disk_len = u->state_len;
  const cons_update *r;
  assert_int_equal(tstep(f->c, CONS_EV_PERSISTED, f->now, 0, NULL, 0, u->state_seq, &r), 0);
  return r;
}

static void vote_in(fx *f, uint32_t voter, uint8_t type, uint32_t round,
                    const uint8_t *hash, const cons_update **u) {
  uint8_t m[CONS_VOTE_MSG_BYTES];
  cons_crypto s = tsign_signer(&f->keys[voter]);
  assert_int_equal(cons_vote_make(&s, type, 1, round, voter, hash, m), 0);
  assert_int_equal(tstep(f->c, CONS_EV_MSG, f->now, voter, m, sizeof m, 0, u), 0);
}

/* the proposal of `proposer` for round r in the update's messages, or NULL */
static const cons_msg_out *find_prop(fx *f, const cons_update *u, uint32_t r,
                                     cons_proposal *out) {
  for (size_t i = 0; i < u->n_msgs; i++) {
    if (cons_proposal_decode(&f->cfg.crypto, u->msgs[i].data, u->msgs[i].len, out))
      continue;
    if (out->round == r && out->proposer == SELF) return &u->msgs[i];
  }
  return NULL;
}

/* any message of ours, signed by us, for round r */
static int sends_own(fx *f, const cons_update *u, uint32_t r) {
  cons_proposal p;
  return find_prop(f, u, r, &p) != NULL || tfind_vote(u, CONS_PREVOTE, r, NULL, SELF) ||
         tfind_vote(u, CONS_PRECOMMIT, r, NULL, SELF) ||
         tfind_vote(u, CONS_PREVOTE, r, p.block_hash, SELF);
}

static void offer(fx *f, char tag) {
  uint8_t tx[2] = {'T', (uint8_t)tag};
  const cons_update *u;
  assert_int_equal(tstep(f->c, CONS_EV_TXS, f->now, 0, tx, sizeof tx, 0, &u), 0);
}

/* Round 0 ends in nil: we prevote and precommit nil, so do 1 and 3; the
 * precommit timeout is armed, and is left unfired. */
static void round0_nil(fx *f) {
  const cons_update *u;
  assert_int_equal(tstep(f->c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  f->now = 100; /* timeoutPropose(0): prevote nil */
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PREVOTE, 0, NULL, SELF));
  vote_in(f, 1, CONS_PREVOTE, 0, NULL, &u);
  vote_in(f, 3, CONS_PREVOTE, 0, NULL, &u); /* 2f+1 nil: precommit nil */
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PRECOMMIT, 0, NULL, SELF));
  vote_in(f, 1, CONS_PRECOMMIT, 0, NULL, &u);
  vote_in(f, 3, CONS_PRECOMMIT, 0, NULL, &u); /* timeoutPrecommit armed */
  assert_null(u->state);
  assert_true(u->next_timeout_ms < f->cfg.rebroadcast_ms);
  assert_int_equal(cons_round(f->c), 0);
}

/* The sequence of seed 1075183, by hand. */
static void test_resend_in_signing_step_holds_proposal(void **state) {
  fx *f = *state;
  const cons_update *u;
  cons_proposal p1, p2;
  offer(f, 'a');
  round0_nil(f);
  /* one step fires both the precommit timeout and the resend timer */
  f->now = f->cfg.rebroadcast_ms;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  assert_int_equal(cons_round(f->c), 1);
  assert_int_equal(cons_step_kind(f->c), CONS_STEP_PREVOTE); /* proposed, prevoted */
  assert_int_equal(u->n_signed, 2);
  assert_non_null(u->state);
  /* nothing of round 1 leaves before its record is durable */
  assert_false(sends_own(f, u, 1));
  /* a second resend tick while the write is in flight sends nothing of ours */
  uint64_t seq = u->state_seq;
  f->now += f->cfg.rebroadcast_ms;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  assert_false(sends_own(f, u, 1));
  assert_false(sends_own(f, u, 0));

  /* crash before the write (record `seq` is lost): restart from the round-0
   * record on disk. Round 1's proposal never left, so a different one now is
   * no equivocation. */
  assert_true(seq > 0);
  cons_free(f->c);
  f->c = NULL;
  assert_int_equal(cons_init(&f->c, &f->cfg, f->disk, f->disk_len, NULL, 0), 0);
  assert_int_equal(cons_round(f->c), 0);
  assert_int_equal(cons_step_kind(f->c), CONS_STEP_PRECOMMIT);
  f->now += 1;
  assert_int_equal(tstep(f->c, CONS_EV_START, f->now, 0, NULL, 0, 0, &u), 0);
  assert_null(find_prop(f, u, 1, &p1));
  offer(f, 'a');
  offer(f, 'b'); /* a different pool: a different block for round 1 */
  f->now = u->next_timeout_ms;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  assert_int_equal(cons_round(f->c), 1);
  assert_false(sends_own(f, u, 1));
  u = persist(f, u);
  const cons_msg_out *m = find_prop(f, u, 1, &p2);
  if (!m) { /* released by PERSISTED, and only then */
    fail_msg("PERSISTED did not release the proposal");
    return;
  }
  assert_true(tfind_vote(u, CONS_PREVOTE, 1, p2.block_hash, SELF));

  /* once durable, the resend sends the same bytes again, never re-signed */
  uint8_t *first = malloc(m->len);
  size_t first_len = m->len;
  assert_non_null(first);
  memcpy(first, m->data, m->len);
  f->now += f->cfg.rebroadcast_ms;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  assert_int_equal(u->n_signed, 0);
  m = find_prop(f, u, 1, &p1);
  if (!m) {
    free(first);
    fail_msg("the durable proposal was not resent");
    return;
  }
  assert_int_equal(m->len, first_len);
  assert_memory_equal(m->data, first, first_len);
  free(first);
}

/* The same hole with a vote: timeoutPropose (line 57) and the resend timer in
 * one step. The nil prevote is held; the resend must not send it. */
static void test_resend_in_signing_step_holds_prevote(void **state) {
  fx *f = *state;
  const cons_update *u;
  assert_int_equal(tstep(f->c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  f->now = f->cfg.rebroadcast_ms; /* past timeoutPropose(0) and the resend */
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  assert_int_equal(u->n_signed, 1);
  assert_non_null(u->state);
  assert_false(tfind_vote(u, CONS_PREVOTE, 0, NULL, SELF));
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PREVOTE, 0, NULL, SELF));
  /* durable now: the next resend carries it again */
  f->now += f->cfg.rebroadcast_ms;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  assert_true(tfind_vote(u, CONS_PREVOTE, 0, NULL, SELF));
}

/* A record written for something other than a signature (here: evidence)
 * does not hold back our own messages that are already durable. */
static void test_durable_votes_resent_while_other_write_in_flight(void **state) {
  fx *f = *state;
  const cons_update *u;
  cons_free(f->c);
  f->cfg.rebroadcast_ms = 120; /* the resend falls after timeoutPropose(0) */
  assert_int_equal(cons_init(&f->c, &f->cfg, NULL, 0, NULL, 0), 0);
  assert_int_equal(tstep(f->c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  f->now = 100;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  u = persist(f, u);
  assert_true(tfind_vote(u, CONS_PREVOTE, 0, NULL, SELF)); /* durable, sent */
  /* member 3 prevotes nil and then for a block: evidence, a new record */
  f->now = 110;
  vote_in(f, 3, CONS_PREVOTE, 0, NULL, &u);
  uint8_t h[32] = {9}, m[CONS_VOTE_MSG_BYTES];
  cons_crypto s = tsign_signer(&f->keys[3]);
  assert_int_equal(cons_vote_make(&s, CONS_PREVOTE, 1, 0, 3, h, m), 0);
  assert_int_equal(tstep(f->c, CONS_EV_MSG, f->now, 3, m, sizeof m, 0, &u), CONS_ECONFLICT);
  assert_int_equal(u->n_evidence, 1);
  assert_non_null(u->state);
  assert_int_equal(u->n_signed, 0);
  /* that record is still in flight at the resend: our prevote goes again */
  f->now = 120;
  assert_int_equal(tstep(f->c, CONS_EV_TIMEOUT, f->now, 0, NULL, 0, 0, &u), 0);
  assert_int_equal(u->n_signed, 0);
  assert_true(tfind_vote(u, CONS_PREVOTE, 0, NULL, SELF));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_resend_in_signing_step_holds_proposal, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_resend_in_signing_step_holds_prevote, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_durable_votes_resent_while_other_write_in_flight,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
