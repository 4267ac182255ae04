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
void cons_rebroadcast(cons *c) {
  if (c->persisted_seq != c->persist_seq) return;
  if (c->own_prop) cons_send(c, CONS_BROADCAST, c->own_prop, c->own_prop_len);
  if (c->has_own_prevote)
    cons_send(c, CONS_BROADCAST, c->own_prevote, CONS_VOTE_MSG_BYTES);
  if (c->has_own_precommit)
    cons_send(c, CONS_BROADCAST, c->own_precommit, CONS_VOTE_MSG_BYTES);
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
