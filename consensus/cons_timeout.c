/* cons_timeout.c: round timeouts (Algorithm 1 lines 57-67), the pause between
 * heights, and the periodic resend that makes the protocol live over a
 * lossy network (spec/consensus.md §3.3, §4). */
#include "cons_internal.h"

uint64_t cons_next_deadline(const cons *c) {
  uint64_t d = CONS_NO_TIMEOUT;
  for (int k = 0; k < CONS_T_COUNT; k++)
    if (c->timers[k].deadline_ms < d) d = c->timers[k].deadline_ms;
  return d;
}

static bool due(cons *c, int kind) {
  cons_timer *t = &c->timers[kind];
  if (t->deadline_ms > c->now_ms) return false;
  t->deadline_ms = CONS_NO_TIMEOUT;
  return t->height == c->height && t->round == c->round;
}

/* Our signed messages of this round, byte for byte as first sent. Only once
 * durable: until then they are still held for the driver. */
static void relay_votes(cons *c, const cons_rnd *r, uint8_t type,
                        const uint8_t *only_hash) {
  for (uint32_t m = 0; m < c->cfg.n_members; m++) {
    const cons_vote_slot *s =
        only_hash ? cons_vote_for(r, type, m, only_hash)
                  : type == CONS_PREVOTE ? &r->prevote[m] : &r->precommit[m];
    if (!s || !s->has) continue;
    /* our own vote only once durable (until then the driver holds it) */
    if (m == c->cfg.self && !cons_own_durable(c)) continue;
    cons_send(c, CONS_BROADCAST, s->msg, CONS_VOTE_MSG_BYTES);
  }
}

/* Our own messages of this round, byte for byte as first sent (only once
 * durable: until then they are still held for the driver), plus a relay of
 * what justifies our round and our valid value: the round's proposal and
 * votes, and the prevotes of the valid round (proof of lock). Without the
 * relay, a peer that missed a message a Byzantine member sent only to us
 * could wait forever (spec/consensus.md §3.3). */
void cons_rebroadcast(cons *c) {
  if (c->step == CONS_STEP_NEW_HEIGHT) return;
  cons_rnd *r = cons_round_get(c, c->round, false);
  if (r) {
    if (r->prop_msg &&
        (r->prop.proposer != c->cfg.self || cons_own_durable(c)))
      cons_send(c, CONS_BROADCAST, r->prop_msg, r->prop_len);
    relay_votes(c, r, CONS_PREVOTE, NULL);
    relay_votes(c, r, CONS_PRECOMMIT, NULL);
  }
  /* the votes of the previous round let a peer still waiting there (for
   * 2f+1 prevotes or precommits to arm its timeout) follow us */
  cons_rnd *prev = c->round ? cons_round_get(c, c->round - 1, false) : NULL;
  if (prev) {
    relay_votes(c, prev, CONS_PREVOTE, NULL);
    relay_votes(c, prev, CONS_PRECOMMIT, NULL);
  }
  if (c->valid_round >= 0 && (uint32_t)c->valid_round != c->round)
    cons_relay_pol(c);
}

void cons_relay_pol(cons *c) {
  if (c->valid_round < 0) return;
  cons_rnd *v = cons_round_get(c, (uint32_t)c->valid_round, false);
  if (v) relay_votes(c, v, CONS_PREVOTE, c->valid_hash);
}

void cons_on_timeout(cons *c) {
  if (due(c, CONS_T_COMMIT_WAIT) && c->step == CONS_STEP_NEW_HEIGHT)
    cons_start_round(c, 0);
  if (due(c, CONS_T_PROPOSE) && c->step == CONS_STEP_PROPOSE)
    cons_sign_vote(c, CONS_PREVOTE, NULL); /* line 57 */
  if (due(c, CONS_T_PREVOTE) && c->step == CONS_STEP_PREVOTE)
    cons_sign_vote(c, CONS_PRECOMMIT, NULL); /* line 61 */
  if (due(c, CONS_T_PRECOMMIT) && c->step != CONS_STEP_NEW_HEIGHT)
    cons_start_round(c, c->round + 1); /* line 65 */
  cons_timer *t = &c->timers[CONS_T_REBROADCAST];
  if (t->deadline_ms <= c->now_ms) {
    cons_rebroadcast(c);
    if (c->peer_height > c->height) cons_request_catchup(c);
    cons_arm(c, CONS_T_REBROADCAST, c->cfg.rebroadcast_ms);
  }
}
