/* cons_propose.c: making and receiving proposals (spec/consensus.md §3.1,
 * Algorithm 1 lines 14-21 and the PROPOSAL half of lines 22-35). */
#include <stdlib.h>

#include "cons_internal.h"

/* getValue(): the transactions waiting in the pool, in arrival order,
 * re-validated at this height, within the block bounds. */
static int build_block(cons *c, uint8_t **out, size_t *out_len) {
  const uint8_t *txs[CONS_MAX_TXS];
  size_t lens[CONS_MAX_TXS];
  size_t n = 0, bytes = 64;
  for (size_t i = 0; i < c->pool_n && n < c->cfg.max_block_txs; i++) {
    const cons_pool_tx *t = &c->pool[i];
    if (bytes + 4 + t->len > CONS_MAX_BLOCK_BYTES) break;
    if (c->cfg.validate_cb &&
        c->cfg.validate_cb(c->cfg.validate_ctx, c->height, t->data, t->len))
      continue;
    txs[n] = t->data;
    lens[n++] = t->len;
    bytes += 4 + t->len;
  }
  return cons_block_make(c->height, c->last_hash, c->cfg.self, txs, lens, n,
                         out, out_len);
}

/* Line 14: the proposer proposes validValue if it has one, else a new block. */
void cons_propose(cons *c) {
  if (!cons_signing_allowed(c, c->round, CONS_STEP_PROPOSE)) return;
  uint8_t *block = NULL, *msg = NULL;
  size_t block_len = 0, msg_len = 0;
  int32_t pol = CONS_NIL_ROUND;
  int rc;
  if (c->valid_block) {
    block = c->valid_block;
    block_len = c->valid_len;
    pol = c->valid_round;
  } else if ((rc = build_block(c, &block, &block_len)) != 0) {
    cons_seterr(c, "cannot build block: %s", cons_strerror(rc));
    return;
  }
  rc = cons_proposal_make(&c->cfg.crypto, c->height, c->round, pol,
                          c->cfg.self, block, block_len, &msg, &msg_len);
  if (block != c->valid_block) free(block);
  if (rc) {
    cons_seterr(c, "cannot sign proposal: %s", cons_strerror(rc));
    return;
  }
  c->upd.n_signed++;
  c->sig_height = c->height;
  c->sig_round = c->round;
  c->sig_step = CONS_STEP_PROPOSE;
  c->dirty = true;
  free(c->own_prop);
  c->own_prop = msg;
  c->own_prop_len = msg_len;
  cons_send_signed(c, msg, msg_len);
  if (pol >= 0) cons_relay_pol(c); /* receivers need them for line 28 */
  /* we receive our own proposal like everyone else */
  (void)cons_on_proposal(c, c->cfg.self, msg, msg_len);
}

int cons_round_prop_valid(cons *c, cons_rnd *r) {
  if (!r->prop_msg) return 0;
  if (r->prop_valid < 0)
    r->prop_valid = cons_block_valid(c, r->prop.block, r->prop.block_len) == 0;
  return r->prop_valid;
}

int cons_on_proposal(cons *c, uint32_t from, const uint8_t *msg, size_t len) {
  cons_proposal p;
  int rc = cons_proposal_decode(&c->cfg.crypto, msg, len, &p);
  if (rc) return rc;
  if (p.proposer >= c->cfg.n_members) return CONS_ENOTMEMBER;
  rc = cons_admit(c, from, p.height, p.round, msg, len);
  if (rc) return rc;
  if (p.proposer != cons_proposer(c->cfg.n_members, p.height, p.round))
    return CONS_EPROPOSER;
  cons_rnd *r = cons_round_get(c, p.round, true);
  if (r->prop_msg) {
    if (memcmp(r->prop.block_hash, p.block_hash, CONS_HASH_BYTES) == 0 &&
        r->prop.pol_round == p.pol_round)
      return CONS_EDUP;
    /* a second, different proposal: keep both as evidence if it is signed */
    if (from != c->cfg.self) c->upd.n_verified++;
    if (cons_proposal_verify(&c->cfg.crypto, &p)) return CONS_EBADSIG;
    cons_add_evidence(c, p.height, p.round, CONS_MSG_PROPOSAL, p.proposer,
                      r->prop.body, CONS_PROP_BODY_BYTES + CONS_SIG_BYTES,
                      p.body, CONS_PROP_BODY_BYTES + CONS_SIG_BYTES);
    return CONS_ECONFLICT;
  }
  if (from != c->cfg.self) {
    c->upd.n_verified++;
    if (cons_proposal_verify(&c->cfg.crypto, &p)) return CONS_EBADSIG;
  }
  uint8_t *copy = malloc(len);
  if (!copy) return CONS_ENOMEM;
  memcpy(copy, msg, len);
  r->prop = p; /* re-point into the copy */
  r->prop.body = copy + (p.body - msg);
  r->prop.sig = copy + (p.sig - msg);
  r->prop.block = copy + (p.block - msg);
  r->prop_msg = copy;
  r->prop_len = len;
  r->prop_valid = -1;
  r->seen_mask |= 1u << p.proposer;
  return 0;
}
