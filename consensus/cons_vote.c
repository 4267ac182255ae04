/* cons_vote.c: prevotes and precommits, vote counting, equivocation
 * evidence, and the upon-rules of Algorithm 1 (spec/consensus.md §3). */
#include <stdlib.h>

#include "cons_internal.h"

static cons_vote_slot *slot_of(cons_rnd *r, uint8_t type, uint32_t voter) {
  return type == CONS_PREVOTE ? &r->prevote[voter] : &r->precommit[voter];
}

static bool slot_matches(const cons_vote_slot *s, const uint8_t *hash) {
  if (!s->has) return false;
  if (!hash) return s->nil;
  return !s->nil && memcmp(s->hash, hash, CONS_HASH_BYTES) == 0;
}

const cons_vote_slot *cons_vote_for(const cons_rnd *r, uint8_t type,
                                    uint32_t member, const uint8_t *hash) {
  const cons_vote_slot *s =
      type == CONS_PREVOTE ? &r->prevote[member] : &r->precommit[member];
  if (slot_matches(s, hash)) return s;
  for (uint32_t i = 0; i < r->n_extra; i++)
    if (r->extra_member[i] == member && r->extra_type[i] == type &&
        slot_matches(&r->extra[i], hash))
      return &r->extra[i];
  return NULL;
}

/* Votes in round r of `type`: for `hash` (NULL = nil), or of any kind. A
 * member counts at most once per value, so a duplicate counts once. */
uint32_t cons_count(const cons_rnd *r, uint8_t type, const uint8_t *hash,
                    bool any) {
  uint32_t n = 0;
  for (uint32_t m = 0; m < CONS_MAX_MEMBERS; m++) {
    const cons_vote_slot *s =
        type == CONS_PREVOTE ? &r->prevote[m] : &r->precommit[m];
    if (!s->has) continue;
    if (any) n++;
    else n += cons_vote_for(r, type, m, hash) != NULL;
  }
  return n;
}

static void store_vote(cons_rnd *r, const cons_vote *v, const uint8_t *msg) {
  cons_vote_slot *s = slot_of(r, v->type, v->voter);
  s->has = true;
  s->nil = v->nil;
  memcpy(s->hash, v->hash, CONS_HASH_BYTES);
  memcpy(s->msg, msg, CONS_VOTE_MSG_BYTES);
  r->seen_mask |= 1u << v->voter;
}

int cons_on_vote(cons *c, uint32_t from, const uint8_t *msg, size_t len) {
  cons_vote v;
  int rc = cons_vote_decode(msg, len, &v);
  if (rc) return rc;
  if (v.voter >= c->cfg.n_members) return CONS_ENOTMEMBER;
  rc = cons_admit(c, from, v.height, v.round, msg, len);
  if (rc) return rc;
  cons_rnd *r = cons_round_get(c, v.round, true);
  cons_vote_slot *s = slot_of(r, v.type, v.voter);
  if (s->has) {
    if (memcmp(s->msg, msg, CONS_VOTE_MSG_BYTES) == 0) return CONS_EDUP;
    c->upd.n_verified++;
    if (cons_vote_verify(&c->cfg.crypto, &v)) return CONS_EBADSIG;
    if (cons_vote_for(r, v.type, v.voter, v.nil ? NULL : v.hash))
      return CONS_EDUP; /* same vote, another valid signature encoding */
    /* two signed, different votes at one (height, round, step): evidence.
     * The new vote is also kept and counted for its own value: a peer may
     * have seen only that one, and relays it to us as part of a quorum. */
    cons_add_evidence(c, v.height, v.round, (uint8_t)(16 + v.type), v.voter,
                      s->msg, CONS_VOTE_MSG_BYTES, msg, CONS_VOTE_MSG_BYTES);
    if (r->n_extra < CONS_EXTRA_VOTES) {
      cons_vote_slot *e = &r->extra[r->n_extra];
      e->has = true;
      e->nil = v.nil;
      memcpy(e->hash, v.hash, CONS_HASH_BYTES);
      memcpy(e->msg, msg, CONS_VOTE_MSG_BYTES);
      r->extra_type[r->n_extra] = v.type;
      r->extra_member[r->n_extra++] = (uint8_t)v.voter;
    }
    return CONS_ECONFLICT;
  }
  if (v.voter != c->cfg.self || from != c->cfg.self) {
    c->upd.n_verified++;
    if (cons_vote_verify(&c->cfg.crypto, &v)) return CONS_EBADSIG;
  }
  store_vote(r, &v, msg);
  return 0;
}

/* Sign and send our vote for the current round; stored in our own set first. */
void cons_sign_vote(cons *c, uint8_t type, const uint8_t *hash) {
  uint8_t step = type == CONS_PREVOTE ? CONS_STEP_PREVOTE : CONS_STEP_PRECOMMIT;
  uint8_t *dst = type == CONS_PREVOTE ? c->own_prevote : c->own_precommit;
  c->step = step;
  if (!cons_signing_allowed(c, c->round, step)) return; /* signed before */
  if (cons_vote_make(&c->cfg.crypto, type, c->height, c->round, c->cfg.self,
                     hash, dst) != 0) {
    cons_seterr(c, "signer failed on a vote");
    return;
  }
  c->upd.n_signed++;
  c->sig_height = c->height;
  c->sig_round = c->round;
  c->sig_step = step;
  if (type == CONS_PREVOTE) c->has_own_prevote = true;
  else c->has_own_precommit = true;
  c->dirty = true;
  cons_send_signed(c, dst, CONS_VOTE_MSG_BYTES);
  (void)cons_on_vote(c, c->cfg.self, dst, CONS_VOTE_MSG_BYTES);
  if (type == CONS_PREVOTE)
    c->timers[CONS_T_PROPOSE].deadline_ms = CONS_NO_TIMEOUT;
}

static void keep_block(uint8_t **dst, size_t *dst_len, uint8_t *dst_hash,
                       const cons_proposal *p) {
  if (*dst && *dst_len == p->block_len &&
      memcmp(dst_hash, p->block_hash, CONS_HASH_BYTES) == 0)
    return;
  uint8_t *copy = malloc(p->block_len);
  assert(copy != NULL); /* bounded by CONS_MAX_BLOCK_BYTES */
  memcpy(copy, p->block, p->block_len);
  free(*dst);
  *dst = copy;
  *dst_len = p->block_len;
  memcpy(dst_hash, p->block_hash, CONS_HASH_BYTES);
}

/* The block with hash h we hold at this height: the round's proposal, or
 * our locked or valid block (which survive a restart; the proposal does not).
 * Deciding on any block whose hash 2f+1 members precommitted is safe: the
 * proposer's signature adds nothing to the certificate. */
static const uint8_t *block_for(cons *c, cons_rnd *r, const uint8_t *h,
                                size_t *len) {
  if (r->prop_msg && memcmp(r->prop.block_hash, h, CONS_HASH_BYTES) == 0) {
    if (!cons_round_prop_valid(c, r)) return NULL;
    *len = r->prop.block_len;
    return r->prop.block;
  }
  const uint8_t *b = NULL;
  if (c->locked_block && memcmp(c->locked_hash, h, CONS_HASH_BYTES) == 0) {
    b = c->locked_block;
    *len = c->locked_len;
  } else if (c->valid_block && memcmp(c->valid_hash, h, CONS_HASH_BYTES) == 0) {
    b = c->valid_block;
    *len = c->valid_len;
  }
  return b && cons_block_valid(c, b, *len) == 0 ? b : NULL;
}

static bool decide_round(cons *c, cons_rnd *r, const uint8_t *h) {
  size_t block_len = 0;
  if (cons_count(r, CONS_PRECOMMIT, h, false) < c->quorum) return false;
  const uint8_t *blk = block_for(c, r, h, &block_len);
  if (!blk) return false;
  const uint8_t *pcs[CONS_MAX_MEMBERS];
  size_t n = 0;
  for (uint32_t m = 0; m < c->cfg.n_members; m++) {
    const cons_vote_slot *s = cons_vote_for(r, CONS_PRECOMMIT, m, h);
    if (s) pcs[n++] = s->msg;
  }
  uint8_t *cert = NULL;
  size_t cert_len = 0;
  int rc = cons_cert_make(c->height, (uint32_t)r->round, h, pcs, n, &cert,
                          &cert_len);
  assert(rc == 0);
  uint8_t hash[CONS_HASH_BYTES];
  memcpy(hash, h, CONS_HASH_BYTES);
  /* the block lives in the round slot or the lock, which commit clears */
  uint8_t *block = malloc(block_len);
  assert(block != NULL);
  memcpy(block, blk, block_len);
  cons_commit(c, block, block_len, hash, cert, cert_len, NULL, 0);
  free(block);
  free(cert);
  return true;
}

static bool try_decide(cons *c) {
  /* line 49: a proposal and 2f+1 precommits for it in any round */
  for (size_t i = 0; i < CONS_ROUND_SLOTS; i++) {
    cons_rnd *r = &c->rounds[i];
    if (r->round < 0) continue;
    if (r->prop_msg && decide_round(c, r, r->prop.block_hash)) return true;
    if (c->locked_block && decide_round(c, r, c->locked_hash)) return true;
    if (c->valid_block && decide_round(c, r, c->valid_hash)) return true;
  }
  return false;
}

static bool try_skip(cons *c) {
  /* line 55: f+1 members already in a later round: go there */
  for (size_t i = 0; i < CONS_ROUND_SLOTS; i++) {
    cons_rnd *r = &c->rounds[i];
    if (r->round <= (int64_t)c->round) continue;
    if ((uint32_t)__builtin_popcount(r->seen_mask) >= c->weak) {
      cons_start_round(c, (uint32_t)r->round);
      return true;
    }
  }
  return false;
}

static bool try_prevote(cons *c, cons_rnd *r) {
  if (c->step != CONS_STEP_PROPOSE || !r->prop_msg) return false;
  const cons_proposal *p = &r->prop;
  bool valid = cons_round_prop_valid(c, r);
  bool lock_ok;
  if (p->pol_round == CONS_NIL_ROUND) { /* line 22 */
    lock_ok = c->locked_round == CONS_NIL_ROUND ||
              memcmp(c->locked_hash, p->block_hash, CONS_HASH_BYTES) == 0;
  } else { /* line 28 */
    cons_rnd *pr = cons_round_get(c, (uint32_t)p->pol_round, false);
    if (!pr || cons_count(pr, CONS_PREVOTE, p->block_hash, false) < c->quorum)
      return false;
    lock_ok = c->locked_round <= p->pol_round ||
              memcmp(c->locked_hash, p->block_hash, CONS_HASH_BYTES) == 0;
  }
  cons_sign_vote(c, CONS_PREVOTE, valid && lock_ok ? p->block_hash : NULL);
  return true;
}

bool cons_rules(cons *c) {
  if (c->step == CONS_STEP_NEW_HEIGHT) return false;
  if (try_decide(c) || try_skip(c)) return true;
  cons_rnd *r = cons_round_get(c, c->round, true);
  uint64_t vote_timeout =
      c->cfg.timeout_vote_ms + (uint64_t)c->cfg.timeout_vote_delta_ms * c->round;
  if (try_prevote(c, r)) return true;
  if (c->step == CONS_STEP_PREVOTE && !r->prevote_timer_done &&
      cons_count(r, CONS_PREVOTE, NULL, true) >= c->quorum) { /* line 34 */
    r->prevote_timer_done = true;
    cons_arm(c, CONS_T_PREVOTE, vote_timeout);
    return true;
  }
  if (c->step >= CONS_STEP_PREVOTE && !r->lock_rule_done && r->prop_msg &&
      cons_count(r, CONS_PREVOTE, r->prop.block_hash, false) >= c->quorum &&
      cons_round_prop_valid(c, r)) { /* line 36 */
    r->lock_rule_done = true;
    if (c->step == CONS_STEP_PREVOTE) {
      keep_block(&c->locked_block, &c->locked_len, c->locked_hash, &r->prop);
      c->locked_round = (int32_t)c->round;
      c->dirty = true; /* the lock is persisted with the precommit */
      cons_sign_vote(c, CONS_PRECOMMIT, r->prop.block_hash);
    }
    keep_block(&c->valid_block, &c->valid_len, c->valid_hash, &r->prop);
    c->valid_round = (int32_t)c->round;
    return true;
  }
  if (c->step == CONS_STEP_PREVOTE &&
      cons_count(r, CONS_PREVOTE, NULL, false) >= c->quorum) { /* line 44 */
    cons_sign_vote(c, CONS_PRECOMMIT, NULL);
    return true;
  }
  if (!r->precommit_timer_done &&
      cons_count(r, CONS_PRECOMMIT, NULL, true) >= c->quorum) { /* line 47 */
    r->precommit_timer_done = true;
    cons_arm(c, CONS_T_PRECOMMIT, vote_timeout);
    return true;
  }
  return false;
}
