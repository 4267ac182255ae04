/* cons_state.c: the persisted consensus state (spec/consensus.md §7): what a
 * restarted member needs to never sign two conflicting messages and to keep
 * its lock. Written before any vote it covers leaves the node; checked field
 * by field, and by a trailing SHA-256, when read back. */
#include <stdlib.h>

#include "cons_internal.h"

static const uint8_t magic[4] = {'C', 'B', 'C', 'S'};
#define STATE_VERSION 1
#define POL_NIL 0xFFFFFFFFu

/* The prevotes for our valid value in its round (its proof of lock): kept so
 * that after a restart we can still show peers why we re-propose it. */
static const cons_rnd *pol_round(const cons *c) {
  if (c->valid_round < 0) return NULL;
  const cons_rnd *r = &c->rounds[(uint32_t)c->valid_round % CONS_ROUND_SLOTS];
  return r->round == c->valid_round ? r : NULL;
}

static uint8_t *put_pol(const cons *c, uint8_t *p) {
  const cons_rnd *r = pol_round(c);
  uint8_t *count = p;
  uint32_t n = 0;
  p += 4;
  for (uint32_t m = 0; r && m < c->cfg.n_members; m++) {
    const cons_vote_slot *s = cons_vote_for(r, CONS_PREVOTE, m, c->valid_hash);
    if (!s) continue;
    p = put_bytes(p, s->msg, CONS_VOTE_MSG_BYTES);
    n++;
  }
  put_u32(count, n);
  return p;
}

/* Our own votes of the previous round: a peer still in that round may need
 * them to reach its quorum or its timeout, and we may not sign them again. */
static uint8_t *put_prev_own(const cons *c, uint8_t *p, uint8_t type) {
  const cons_rnd *r = NULL;
  if (c->round > 0 && c->step != CONS_STEP_NEW_HEIGHT) {
    r = &c->rounds[(c->round - 1) % CONS_ROUND_SLOTS];
    if (r->round != (int64_t)c->round - 1) r = NULL;
  }
  const cons_vote_slot *s =
      r ? (type == CONS_PREVOTE ? &r->prevote[c->cfg.self]
                                : &r->precommit[c->cfg.self])
        : NULL;
  if (!s || !s->has) return put_u32(p, 0);
  p = put_u32(p, CONS_VOTE_MSG_BYTES);
  return put_bytes(p, s->msg, CONS_VOTE_MSG_BYTES);
}

int cons_state_encode(const cons *c, uint8_t **out, size_t *len) {
  size_t total = 4 + 1 + 8 + 4 + 1 + 8 + 4 + 1 + CONS_HASH_BYTES + 4 + 4 +
                 c->locked_len + 4 + 4 + c->valid_len + 4 + c->own_prop_len +
                 4 + CONS_VOTE_MSG_BYTES + 4 + CONS_VOTE_MSG_BYTES +
                 4 + CONS_MAX_MEMBERS * CONS_VOTE_MSG_BYTES +
                 2 * (4 + CONS_VOTE_MSG_BYTES) + CONS_HASH_BYTES;
  uint8_t *b = malloc(total), *p = b;
  if (!b) return CONS_ENOMEM;
  p = put_bytes(p, magic, 4);
  p = put_u8(p, STATE_VERSION);
  p = put_u64(p, c->height);
  p = put_u32(p, c->round);
  p = put_u8(p, c->step);
  p = put_u64(p, c->sig_height);
  p = put_u32(p, c->sig_round);
  p = put_u8(p, c->sig_step);
  p = put_bytes(p, c->last_hash, CONS_HASH_BYTES);
  p = put_u32(p, c->locked_round < 0 ? POL_NIL : (uint32_t)c->locked_round);
  p = put_u32(p, (uint32_t)c->locked_len);
  p = put_bytes(p, c->locked_block, c->locked_len);
  p = put_u32(p, c->valid_round < 0 ? POL_NIL : (uint32_t)c->valid_round);
  p = put_u32(p, (uint32_t)c->valid_len);
  p = put_bytes(p, c->valid_block, c->valid_len);
  p = put_pol(c, p);
  p = put_u32(p, (uint32_t)c->own_prop_len);
  p = put_bytes(p, c->own_prop, c->own_prop_len);
  p = put_u32(p, c->has_own_prevote ? CONS_VOTE_MSG_BYTES : 0);
  if (c->has_own_prevote) p = put_bytes(p, c->own_prevote, CONS_VOTE_MSG_BYTES);
  p = put_u32(p, c->has_own_precommit ? CONS_VOTE_MSG_BYTES : 0);
  if (c->has_own_precommit)
    p = put_bytes(p, c->own_precommit, CONS_VOTE_MSG_BYTES);
  p = put_prev_own(c, p, CONS_PREVOTE);
  p = put_prev_own(c, p, CONS_PRECOMMIT);
  cons_hash1(&c->cfg.crypto, b, (size_t)(p - b), p);
  p += CONS_HASH_BYTES;
  assert((size_t)(p - b) <= total);
  *out = b;
  *len = (size_t)(p - b);
  return 0;
}

static int fail(cons *c, const char *what) {
  cons_seterr(c, "%s", what);
  return CONS_ESTATE;
}

static int restore_block(cons *c, cons_cur *cur, int32_t *round, uint8_t **blk,
                         size_t *blen, uint8_t *hash) {
  uint32_t r = cur_u32(cur);
  size_t n;
  const uint8_t *b = cur_lenbytes(cur, CONS_MAX_BLOCK_BYTES, &n);
  if (cur->err) return fail(c, "truncated lock or valid block");
  if (r == POL_NIL) {
    if (n) return fail(c, "block without a round");
    *round = CONS_NIL_ROUND;
    return 0;
  }
  if (r > c->round || !n) return fail(c, "lock or valid round out of range");
  *round = (int32_t)r;
  *blk = malloc(n);
  if (!*blk) return CONS_ENOMEM;
  memcpy(*blk, b, n);
  *blen = n;
  cons_block_hash(&c->cfg.crypto, b, n, hash);
  return 0;
}

static int restore_vote(cons *c, cons_cur *cur, uint8_t type, uint8_t *dst,
                        bool *has) {
  size_t n;
  const uint8_t *m = cur_lenbytes(cur, CONS_VOTE_MSG_BYTES, &n);
  if (cur->err) return fail(c, "truncated own vote");
  if (n == 0) return 0;
  cons_vote v;
  if (n != CONS_VOTE_MSG_BYTES || cons_vote_decode(m, n, &v) != 0 ||
      v.type != type || v.height != c->height || v.round != c->round ||
      v.voter != c->cfg.self)
    return fail(c, "own vote does not match the state");
  memcpy(dst, m, CONS_VOTE_MSG_BYTES);
  *has = true;
  return 0;
}

int cons_state_restore(cons *c, const uint8_t *data, size_t len) {
  cons_cur cur;
  uint8_t sum[CONS_HASH_BYTES];
  if (len < 4 + 1 + CONS_HASH_BYTES || len > 3 * CONS_MAX_RECORD_BYTES)
    return fail(c, "state record size out of range");
  cons_hash1(&c->cfg.crypto, data, len - CONS_HASH_BYTES, sum);
  if (memcmp(sum, data + len - CONS_HASH_BYTES, CONS_HASH_BYTES) != 0)
    return fail(c, "state record checksum mismatch");
  cur_init(&cur, data, len - CONS_HASH_BYTES);
  const uint8_t *mg = cur_take(&cur, 4);
  if (!mg || memcmp(mg, magic, 4) != 0 || cur_u8(&cur) != STATE_VERSION)
    return fail(c, "state record magic or version");
  c->height = cur_u64(&cur);
  c->round = cur_u32(&cur);
  c->step = cur_u8(&cur);
  c->sig_height = cur_u64(&cur);
  c->sig_round = cur_u32(&cur);
  c->sig_step = cur_u8(&cur);
  const uint8_t *lh = cur_take(&cur, CONS_HASH_BYTES);
  if (cur.err) return fail(c, "truncated state header");
  if (c->height == 0 || c->step > CONS_STEP_PRECOMMIT ||
      c->round > INT32_MAX || c->sig_step > CONS_STEP_PRECOMMIT ||
      c->sig_height > c->height)
    return fail(c, "state header out of range");
  memcpy(c->last_hash, lh, CONS_HASH_BYTES);
  int rc = restore_block(c, &cur, &c->locked_round, &c->locked_block,
                         &c->locked_len, c->locked_hash);
  if (!rc)
    rc = restore_block(c, &cur, &c->valid_round, &c->valid_block,
                       &c->valid_len, c->valid_hash);
  if (rc) return rc;
  uint32_t n_pol = cur_u32(&cur);
  if (cur.err || n_pol > c->cfg.n_members) return fail(c, "proof-of-lock count");
  const uint8_t *pol = cur_take(&cur, (size_t)n_pol * CONS_VOTE_MSG_BYTES);
  if (cur.err) return fail(c, "truncated proof of lock");
  size_t plen;
  const uint8_t *prop = cur_lenbytes(&cur, CONS_MAX_MSG_BYTES, &plen);
  if (cur.err) return fail(c, "truncated own proposal");
  rc = restore_vote(c, &cur, CONS_PREVOTE, c->own_prevote, &c->has_own_prevote);
  if (!rc)
    rc = restore_vote(c, &cur, CONS_PRECOMMIT, c->own_precommit,
                      &c->has_own_precommit);
  if (rc) return rc;
  const uint8_t *prev[2];
  for (int i = 0; i < 2; i++) {
    size_t n;
    prev[i] = cur_lenbytes(&cur, CONS_VOTE_MSG_BYTES, &n);
    if (cur.err) return fail(c, "truncated previous-round vote");
    cons_vote v;
    if (n && (n != CONS_VOTE_MSG_BYTES || cons_vote_decode(prev[i], n, &v) ||
              v.type != (i ? CONS_PRECOMMIT : CONS_PREVOTE) ||
              v.height != c->height || v.round + 1 != c->round ||
              v.voter != c->cfg.self))
      return fail(c, "previous-round vote does not match the state");
    if (!n) prev[i] = NULL;
  }
  if (cur_finish(&cur)) return fail(c, "trailing bytes in state record");
  if (plen) {
    cons_proposal p;
    if (cons_proposal_decode(&c->cfg.crypto, prop, plen, &p) != 0 ||
        p.height != c->height || p.round != c->round ||
        p.proposer != c->cfg.self)
      return fail(c, "own proposal does not match the state");
    c->own_prop = malloc(plen);
    if (!c->own_prop) return CONS_ENOMEM;
    memcpy(c->own_prop, prop, plen);
    c->own_prop_len = plen;
    (void)cons_on_proposal(c, c->cfg.self, c->own_prop, plen);
  }
  /* checked like any peer's votes: a corrupt one is simply not counted */
  for (uint32_t i = 0; i < n_pol; i++)
    (void)cons_on_vote(c, CONS_BROADCAST, pol + i * CONS_VOTE_MSG_BYTES,
                       CONS_VOTE_MSG_BYTES);
  for (int i = 0; i < 2; i++)
    if (prev[i])
      (void)cons_on_vote(c, c->cfg.self, prev[i], CONS_VOTE_MSG_BYTES);
  if (c->has_own_prevote)
    (void)cons_on_vote(c, c->cfg.self, c->own_prevote, CONS_VOTE_MSG_BYTES);
  if (c->has_own_precommit)
    (void)cons_on_vote(c, c->cfg.self, c->own_precommit, CONS_VOTE_MSG_BYTES);
  return 0;
}
