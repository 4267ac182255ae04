/* cons_internal.h: state shared by the handler files of consensus/.
 * Not installed; nothing outside consensus/ includes it. */
#ifndef CONS_INTERNAL_H
#define CONS_INTERNAL_H

#include <assert.h>
#include <string.h>

#include "cons.h"

/* ---- Bounded cursor: every read checks the bytes left, fails closed. ---- */
typedef struct cons_cur {
  const uint8_t *p;
  size_t left;
  int err; /* first error; later reads keep failing */
} cons_cur;

static inline void cur_init(cons_cur *c, const uint8_t *p, size_t len) {
  c->p = p;
  c->left = len;
  c->err = 0;
}
static inline const uint8_t *cur_take(cons_cur *c, size_t n) {
  if (c->err) return NULL;
  if (n > c->left) {
    c->err = CONS_ETRUNC;
    return NULL;
  }
  const uint8_t *r = c->p;
  c->p += n;
  c->left -= n;
  return r;
}
static inline uint8_t cur_u8(cons_cur *c) {
  const uint8_t *p = cur_take(c, 1);
  return p ? p[0] : 0;
}
static inline uint32_t cur_u32(cons_cur *c) {
  const uint8_t *p = cur_take(c, 4);
  if (!p) return 0;
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}
static inline uint64_t cur_u64(cons_cur *c) {
  uint64_t hi = cur_u32(c);
  return hi << 32 | cur_u32(c);
}
/* A length-prefixed field: the length is checked against `max` and against
 * the bytes present before anything is used. */
static inline const uint8_t *cur_lenbytes(cons_cur *c, size_t max,
                                          size_t *len) {
  uint32_t n = cur_u32(c);
  *len = 0;
  if (c->err) return NULL;
  if (n > max) {
    c->err = CONS_ETOOBIG;
    return NULL;
  }
  const uint8_t *p = cur_take(c, n);
  if (p) *len = n;
  return p;
}
static inline int cur_finish(cons_cur *c) {
  if (c->err) return c->err;
  return c->left ? CONS_ETRAILING : 0;
}

static inline uint8_t *put_u8(uint8_t *p, uint8_t v) {
  *p = v;
  return p + 1;
}
static inline uint8_t *put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return p + 4;
}
static inline uint8_t *put_u64(uint8_t *p, uint64_t v) {
  p = put_u32(p, (uint32_t)(v >> 32));
  return put_u32(p, (uint32_t)v);
}
static inline uint8_t *put_bytes(uint8_t *p, const void *b, size_t n) {
  if (n) memcpy(p, b, n);
  return p + n;
}

/* Domain tags: 16 bytes each, signed in front of the canonical body. */
extern const uint8_t cons_tag_vote[16];
extern const uint8_t cons_tag_prop[16];
extern const uint8_t cons_tag_block[16];

/* SHA-256 of one contiguous buffer through the caller's hashv. */
static inline void cons_hash1(const cons_crypto *cr, const uint8_t *d,
                              size_t len, uint8_t out[CONS_HASH_BYTES]) {
  const cons_iov part = {d, len};
  cr->hashv(cr->ctx, &part, 1, out);
}

/* ---- Core state ---- */
#define CONS_EXTRA_VOTES (2 * CONS_MAX_MEMBERS)

typedef struct cons_vote_slot {
  bool has;
  bool nil;
  uint8_t hash[CONS_HASH_BYTES];
  uint8_t msg[CONS_VOTE_MSG_BYTES];
} cons_vote_slot;

typedef struct cons_rnd {
  int64_t round; /* -1: slot unused */
  cons_vote_slot prevote[CONS_MAX_MEMBERS];
  cons_vote_slot precommit[CONS_MAX_MEMBERS];
  /* second and further distinct votes of equivocating members: each is
   * counted for its own value (safe: see spec/consensus.md §3.4) */
  cons_vote_slot extra[CONS_EXTRA_VOTES];
  uint8_t extra_type[CONS_EXTRA_VOTES], extra_member[CONS_EXTRA_VOTES];
  uint32_t n_extra;
  uint32_t seen_mask; /* members with any signed message in this round */
  /* the proposal of proposer(h, round), the first valid one we saw */
  uint8_t *prop_msg;
  size_t prop_len;
  cons_proposal prop; /* points into prop_msg */
  int prop_valid;     /* -1 unknown, 0 invalid, 1 valid (cached) */
  bool prevote_timer_done, precommit_timer_done, lock_rule_done;
} cons_rnd;

typedef struct cons_held {
  uint64_t seq;
  uint8_t *data;
  size_t len;
} cons_held;

typedef struct cons_pool_tx {
  uint8_t *data;
  size_t len;
  uint8_t hash[CONS_HASH_BYTES];
} cons_pool_tx;

typedef struct cons_future {
  uint32_t from;
  uint8_t *data;
  size_t len;
} cons_future;

enum cons_timer_kind {
  CONS_T_PROPOSE,
  CONS_T_PREVOTE,
  CONS_T_PRECOMMIT,
  CONS_T_COMMIT_WAIT,
  CONS_T_REBROADCAST,
  CONS_T_COUNT
};
typedef struct cons_timer {
  uint64_t deadline_ms; /* CONS_NO_TIMEOUT: disarmed */
  uint64_t height;
  uint32_t round;
} cons_timer;

struct cons {
  cons_config cfg;
  uint32_t f, quorum, weak; /* f, 2f+1, f+1 */
  uint64_t now_ms;

  uint64_t height;
  uint32_t round;
  uint8_t step;
  uint8_t last_hash[CONS_HASH_BYTES]; /* parent of the block at `height` */
  int32_t locked_round, valid_round;
  uint8_t *locked_block, *valid_block;
  size_t locked_len, valid_len;
  uint8_t locked_hash[CONS_HASH_BYTES], valid_hash[CONS_HASH_BYTES];

  cons_rnd rounds[CONS_ROUND_SLOTS];

  /* our own signed messages in the current round, for resending after a
   * loss or a restart: resent byte for byte, never signed again */
  uint8_t *own_prop;
  size_t own_prop_len;
  uint8_t own_prevote[CONS_VOTE_MSG_BYTES], own_precommit[CONS_VOTE_MSG_BYTES];
  bool has_own_prevote, has_own_precommit;
  /* the last (height, round, step) we signed: never signed again */
  uint64_t sig_height;
  uint32_t sig_round;
  uint8_t sig_step;

  cons_timer timers[CONS_T_COUNT];

  /* persistence ordering */
  uint64_t persist_seq, persisted_seq;
  /* the state record that covers our latest signature: until it is durable
   * (persisted_seq >= own_seq) none of our own signed messages may be sent
   * outside the held queue, not even by a resend in the same step */
  uint64_t own_seq;
  bool dirty;
  cons_held held[CONS_MAX_HELD];
  size_t n_held;

  cons_pool_tx pool[CONS_MAX_POOL_TXS];
  size_t pool_n, pool_bytes;

  cons_future future[CONS_FUTURE_MSGS];
  size_t n_future, future_bytes;

  /* catch-up */
  uint64_t peer_height; /* highest height a peer was seen working on */
  uint32_t peer_height_from;
  uint64_t last_catchup_ms;
  bool catchup_sent_since_tick;

  /* the update under construction, and the buffers it points to */
  cons_update upd;
  uint8_t *upd_bufs[CONS_MAX_OUT + CONS_MAX_COMMITS + CONS_MAX_EVIDENCE + 2];
  size_t n_upd_bufs;

  char err[192];
};

/* cons_core.c */
void cons_seterr(cons *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint8_t *cons_upd_keep(cons *c, uint8_t *buf); /* update now owns buf */
void cons_send(cons *c, uint32_t to, const uint8_t *data, size_t len);
void cons_send_signed(cons *c, const uint8_t *data, size_t len);
void cons_add_evidence(cons *c, uint64_t h, uint32_t r, uint8_t kind,
                       uint32_t member, const uint8_t *a, size_t alen,
                       const uint8_t *b, size_t blen);
cons_rnd *cons_round_get(cons *c, uint32_t round, bool create);
void cons_start_round(cons *c, uint32_t round);
void cons_arm(cons *c, int kind, uint64_t delay_ms);
void cons_commit(cons *c, const uint8_t *block, size_t block_len,
                 const uint8_t hash[CONS_HASH_BYTES], const uint8_t *cert,
                 size_t cert_len, const uint8_t *record, size_t record_len);
int cons_block_valid(cons *c, const uint8_t *block, size_t len);
bool cons_signing_allowed(const cons *c, uint32_t round, uint8_t step);
/* every message we signed so far is covered by a durable state record */
bool cons_own_durable(const cons *c);
void cons_note_peer_height(cons *c, uint64_t h, uint32_t from);
/* admission of a (height, round) pair of an incoming message */
int cons_admit(cons *c, uint32_t from, uint64_t height, uint32_t round,
               const uint8_t *msg, size_t len);
void cons_pool_remove_block(cons *c, const cons_block *b);

/* cons_propose.c */
int cons_on_proposal(cons *c, uint32_t from, const uint8_t *msg, size_t len);
void cons_propose(cons *c);
int cons_round_prop_valid(cons *c, cons_rnd *r);

/* cons_vote.c */
int cons_on_vote(cons *c, uint32_t from, const uint8_t *msg, size_t len);
void cons_sign_vote(cons *c, uint8_t type, const uint8_t *hash);
uint32_t cons_count(const cons_rnd *r, uint8_t type, const uint8_t *hash,
                    bool any);
/* member's vote of `type` in r for hash (NULL = nil), primary or extra */
const cons_vote_slot *cons_vote_for(const cons_rnd *r, uint8_t type,
                                    uint32_t member, const uint8_t *hash);
bool cons_rules(cons *c); /* fire one enabled rule; false when none */

/* cons_timeout.c */
void cons_on_timeout(cons *c);
uint64_t cons_next_deadline(const cons *c);
void cons_rebroadcast(cons *c);
void cons_relay_pol(cons *c); /* prevotes proving our valid value */

/* cons_catchup.c */
int cons_on_catchup_req(cons *c, uint32_t from, const uint8_t *msg,
                        size_t len);
int cons_on_catchup_resp(cons *c, uint32_t from, const uint8_t *msg,
                         size_t len);
void cons_request_catchup(cons *c);

/* cons_state.c: the persisted state record */
int cons_state_encode(const cons *c, uint8_t **out, size_t *len);
int cons_state_restore(cons *c, const uint8_t *data, size_t len);

#endif
