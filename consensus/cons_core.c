/* cons_core.c: the step function, round and height transitions, commit, and
 * the bookkeeping of the update handed to the driver (spec/consensus.md §3,
 * §7). Handlers for each message kind live in their own files. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cons_internal.h"

#define RULES_BOUND 4096 /* fired rules per event; more is a bug of ours */

void cons_seterr(cons *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
}

const char *cons_errmsg(const cons *c) { return c->err; }
uint64_t cons_height(const cons *c) { return c->height; }
uint32_t cons_round(const cons *c) { return c->round; }
uint8_t cons_step_kind(const cons *c) { return c->step; }
int32_t cons_locked_round(const cons *c) { return c->locked_round; }

uint32_t cons_proposer(uint32_t n, uint64_t height, uint32_t round) {
  return (uint32_t)((height + round) % n);
}

/* ---- the update: buffers live until the next step ---- */
uint8_t *cons_upd_keep(cons *c, uint8_t *buf) {
  size_t cap = sizeof c->upd_bufs / sizeof c->upd_bufs[0];
  if (!buf) return NULL;
  if (c->n_upd_bufs == cap) {
    free(buf);
    return NULL;
  }
  c->upd_bufs[c->n_upd_bufs++] = buf;
  return buf;
}

static void upd_reset(cons *c) {
  for (size_t i = 0; i < c->n_upd_bufs; i++) free(c->upd_bufs[i]);
  c->n_upd_bufs = 0;
  memset(&c->upd, 0, sizeof c->upd);
}

void cons_send(cons *c, uint32_t to, const uint8_t *data, size_t len) {
  if (c->upd.n_msgs == CONS_MAX_OUT) {
    cons_seterr(c, "outgoing message bound reached, dropped one");
    return; /* resent on the next rebroadcast tick */
  }
  uint8_t *copy = malloc(len);
  if (!copy) return;
  memcpy(copy, data, len);
  if (!cons_upd_keep(c, copy)) return;
  cons_msg_out *m = &c->upd.msgs[c->upd.n_msgs++];
  m->to = to;
  m->data = copy;
  m->len = len;
}

/* A message we signed: held until the state record of this step is durable
 * (spec/consensus.md §7, the persistence rule). */
void cons_send_signed(cons *c, const uint8_t *data, size_t len) {
  uint8_t *copy = malloc(len);
  assert(c->dirty); /* signing always marks the state for persistence */
  if (!copy) return;
  memcpy(copy, data, len);
  if (c->n_held == CONS_MAX_HELD) {
    /* the driver is far behind on persistence; the oldest held message is
     * for an older step and is superseded. Dropping it is always safe. */
    free(c->held[0].data);
    memmove(c->held, c->held + 1, (CONS_MAX_HELD - 1) * sizeof c->held[0]);
    c->n_held--;
  }
  c->held[c->n_held++] = (cons_held){c->persist_seq + 1, copy, len};
  c->own_seq = c->persist_seq + 1; /* the record this step will produce */
}

/* Not `persisted_seq == persist_seq`: within the step that signed, the new
 * record has no sequence number yet (cons_step numbers it at the end), so
 * that test passed for a message signed a moment earlier in the same step
 * and a resend sent it before its record was durable (seed 1075183). */
bool cons_own_durable(const cons *c) { return c->persisted_seq >= c->own_seq; }

static void release_held(cons *c) {
  size_t keep = 0;
  for (size_t i = 0; i < c->n_held; i++) {
    if (c->held[i].seq <= c->persisted_seq) {
      cons_send(c, CONS_BROADCAST, c->held[i].data, c->held[i].len);
      free(c->held[i].data);
    } else {
      c->held[keep++] = c->held[i];
    }
  }
  c->n_held = keep;
}

void cons_add_evidence(cons *c, uint64_t h, uint32_t r, uint8_t kind,
                       uint32_t member, const uint8_t *a, size_t alen,
                       const uint8_t *b, size_t blen) {
  if (c->upd.n_evidence == CONS_MAX_EVIDENCE) return;
  uint8_t *buf = malloc(8 + alen + blen), *p = buf;
  if (!buf) return;
  p = put_u32(p, (uint32_t)alen);
  p = put_bytes(p, a, alen);
  p = put_u32(p, (uint32_t)blen);
  put_bytes(p, b, blen);
  if (!cons_upd_keep(c, buf)) return;
  c->upd.evidence[c->upd.n_evidence++] =
      (cons_evidence_out){h, r, kind, member, buf, 8 + alen + blen};
  c->dirty = true; /* evidence is written with the next state record */
}

/* ---- rounds of the current height ---- */
static void round_clear(cons_rnd *r) {
  free(r->prop_msg);
  memset(r, 0, sizeof *r);
  r->round = -1;
  r->prop_valid = -1;
}

cons_rnd *cons_round_get(cons *c, uint32_t round, bool create) {
  cons_rnd *r = &c->rounds[round % CONS_ROUND_SLOTS];
  if (r->round == (int64_t)round) return r;
  if (!create) return NULL;
  round_clear(r); /* the slot held a round that left the window */
  r->round = round;
  return r;
}

static void clear_own(cons *c) {
  free(c->own_prop);
  c->own_prop = NULL;
  c->own_prop_len = 0;
  c->has_own_prevote = c->has_own_precommit = false;
}

void cons_arm(cons *c, int kind, uint64_t delay_ms) {
  c->timers[kind] =
      (cons_timer){c->now_ms + delay_ms, c->height, c->round};
}

/* StartRound (spec/consensus.md §3.1) */
void cons_start_round(cons *c, uint32_t round) {
  c->round = round;
  c->step = CONS_STEP_PROPOSE;
  clear_own(c);
  (void)cons_round_get(c, round, true);
  cons_arm(c, CONS_T_PROPOSE,
           c->cfg.timeout_propose_ms +
               (uint64_t)c->cfg.timeout_propose_delta_ms * round);
  if (cons_proposer(c->cfg.n_members, c->height, round) == c->cfg.self)
    cons_propose(c);
}

bool cons_signing_allowed(const cons *c, uint32_t round, uint8_t step) {
  if (c->height != c->sig_height) return c->height > c->sig_height;
  if (round != c->sig_round) return round > c->sig_round;
  return step > c->sig_step;
}

/* ---- validity of a proposed block at our height ---- */
int cons_block_valid(cons *c, const uint8_t *block, size_t len) {
  cons_block *b = malloc(sizeof *b);
  int rc = 0;
  if (!b) return CONS_ENOMEM;
  rc = cons_block_decode(block, len, b);
  if (rc) goto done;
  if (b->height != c->height ||
      memcmp(b->parent, c->last_hash, CONS_HASH_BYTES) != 0) {
    rc = CONS_ECHAIN;
    goto done;
  }
  if (b->proposer >= c->cfg.n_members || b->n_txs > c->cfg.max_block_txs) {
    rc = CONS_EINVALID;
    goto done;
  }
  for (uint32_t i = 0; i < b->n_txs; i++)
    if (c->cfg.validate_cb &&
        c->cfg.validate_cb(c->cfg.validate_ctx, c->height, b->tx[i],
                           b->tx_len[i]) != 0) {
      rc = CONS_EINVALID;
      goto done;
    }
done:
  free(b);
  return rc;
}

/* ---- transaction pool ---- */
static int pool_add(cons *c, const uint8_t *tx, size_t len) {
  if (len == 0 || len > CONS_MAX_TX_BYTES) return CONS_ETOOBIG;
  if (c->pool_n == CONS_MAX_POOL_TXS ||
      c->pool_bytes + len > CONS_MAX_POOL_BYTES)
    return CONS_EFULL;
  if (c->cfg.validate_cb &&
      c->cfg.validate_cb(c->cfg.validate_ctx, c->height, tx, len) != 0)
    return CONS_EINVALID;
  uint8_t h[CONS_HASH_BYTES];
  cons_hash1(&c->cfg.crypto, tx, len, h);
  for (size_t i = 0; i < c->pool_n; i++)
    if (memcmp(c->pool[i].hash, h, CONS_HASH_BYTES) == 0) return CONS_EDUP;
  uint8_t *copy = malloc(len);
  if (!copy) return CONS_ENOMEM;
  memcpy(copy, tx, len);
  cons_pool_tx *p = &c->pool[c->pool_n++];
  p->data = copy;
  p->len = len;
  memcpy(p->hash, h, CONS_HASH_BYTES);
  c->pool_bytes += len;
  return 0;
}

void cons_pool_remove_block(cons *c, const cons_block *b) {
  for (uint32_t t = 0; t < b->n_txs && c->pool_n; t++) {
    uint8_t h[CONS_HASH_BYTES];
    cons_hash1(&c->cfg.crypto, b->tx[t], b->tx_len[t], h);
    for (size_t i = 0; i < c->pool_n; i++) {
      if (memcmp(c->pool[i].hash, h, CONS_HASH_BYTES) != 0) continue;
      c->pool_bytes -= c->pool[i].len;
      free(c->pool[i].data);
      memmove(&c->pool[i], &c->pool[i + 1],
              (c->pool_n - i - 1) * sizeof c->pool[0]);
      c->pool_n--;
      break;
    }
  }
}

/* ---- messages for the next height, and heights seen at peers ---- */
void cons_note_peer_height(cons *c, uint64_t h, uint32_t from) {
  if (h > c->peer_height) {
    c->peer_height = h;
    c->peer_height_from = from;
  }
  if (h >= c->height + 2) cons_request_catchup(c); /* surely behind */
}

int cons_admit(cons *c, uint32_t from, uint64_t height, uint32_t round,
               const uint8_t *msg, size_t len) {
  if (height < c->height) return CONS_ESTALE;
  if (height > c->height) {
    cons_note_peer_height(c, height, from);
    if (height != c->height + 1) return CONS_EFUTURE;
    if (c->n_future == CONS_FUTURE_MSGS ||
        c->future_bytes + len > CONS_FUTURE_BYTES)
      return CONS_EFULL;
    uint8_t *copy = malloc(len);
    if (!copy) return CONS_ENOMEM;
    memcpy(copy, msg, len);
    c->future[c->n_future++] = (cons_future){from, copy, len};
    c->future_bytes += len;
    return 1; /* kept for when we reach that height */
  }
  if (round > c->round + CONS_ROUND_AHEAD) return CONS_EFUTURE;
  if (c->round >= CONS_ROUND_SLOTS - CONS_ROUND_AHEAD &&
      round <= c->round - (CONS_ROUND_SLOTS - CONS_ROUND_AHEAD))
    return CONS_ESTALE; /* left the window of kept rounds */
  return 0;
}

static int dispatch(cons *c, uint32_t from, const uint8_t *msg, size_t len) {
  if (len == 0) return CONS_ETRUNC;
  if (len > CONS_MAX_MSG_BYTES) return CONS_ETOOBIG;
  switch (msg[0]) {
  case CONS_MSG_PROPOSAL: return cons_on_proposal(c, from, msg, len);
  case CONS_MSG_VOTE: return cons_on_vote(c, from, msg, len);
  case CONS_MSG_CATCHUP_REQ: return cons_on_catchup_req(c, from, msg, len);
  case CONS_MSG_CATCHUP_RESP: return cons_on_catchup_resp(c, from, msg, len);
  default: return CONS_EMALFORMED;
  }
}

/* ---- commit: Algorithm 1 line 49, or a verified catch-up record ---- */
void cons_commit(cons *c, const uint8_t *block, size_t block_len,
                 const uint8_t hash[CONS_HASH_BYTES], const uint8_t *cert,
                 size_t cert_len, const uint8_t *record, size_t record_len) {
  uint8_t *rec = NULL;
  size_t rec_len = 0;
  if (record) {
    rec = malloc(record_len);
    if (rec) memcpy(rec, record, record_len);
    rec_len = record_len;
  } else if (cons_record_make(block, block_len, cert, cert_len, &rec,
                              &rec_len) != 0) {
    rec = NULL;
  }
  /* A committed block we cannot hand over would be lost: that is an
   * invariant of ours (allocation of a bounded size), not peer input. */
  assert(rec != NULL);
  assert(c->upd.n_commits < CONS_MAX_COMMITS);
  rec = cons_upd_keep(c, rec);
  assert(rec != NULL);
  cons_commit_out *o = &c->upd.commits[c->upd.n_commits++];
  o->height = c->height;
  memcpy(o->block_hash, hash, CONS_HASH_BYTES);
  o->record = rec;
  o->record_len = rec_len;
  o->block = rec + 4;
  o->block_len = block_len;

  cons_block *b = malloc(sizeof *b);
  if (b && cons_block_decode(o->block, o->block_len, b) == 0)
    cons_pool_remove_block(c, b);
  free(b);

  c->height++;
  memcpy(c->last_hash, hash, CONS_HASH_BYTES);
  for (size_t i = 0; i < CONS_ROUND_SLOTS; i++) round_clear(&c->rounds[i]);
  free(c->locked_block);
  free(c->valid_block);
  c->locked_block = c->valid_block = NULL;
  c->locked_len = c->valid_len = 0;
  c->locked_round = c->valid_round = CONS_NIL_ROUND;
  clear_own(c);
  c->round = 0;
  c->step = CONS_STEP_NEW_HEIGHT;
  c->dirty = true;
  for (int k = 0; k < CONS_T_REBROADCAST; k++)
    c->timers[k].deadline_ms = CONS_NO_TIMEOUT;
  cons_arm(c, CONS_T_COMMIT_WAIT, c->cfg.commit_wait_ms);

  /* replay what arrived early for this height */
  size_t n = c->n_future;
  cons_future fut[CONS_FUTURE_MSGS];
  memcpy(fut, c->future, n * sizeof fut[0]);
  c->n_future = 0;
  c->future_bytes = 0;
  for (size_t i = 0; i < n; i++) {
    (void)dispatch(c, fut[i].from, fut[i].data, fut[i].len);
    free(fut[i].data);
  }
}

/* ---- life cycle ---- */
static int check_config(const cons_config *cfg, char *err, size_t err_len) {
  const char *why = NULL;
  if (cfg->n_members == 0 || cfg->n_members > CONS_MAX_MEMBERS)
    why = "n_members out of range";
  else if (cfg->self >= cfg->n_members)
    why = "self is not a member";
  else if (!cfg->crypto.sign || !cfg->crypto.verify)
    why = "crypto: sign or verify missing";
  else if (!cfg->crypto.hashv)
    why = "crypto: hashv missing";
  else if (cfg->max_block_txs > CONS_MAX_TXS)
    why = "max_block_txs over CONS_MAX_TXS";
  else if (cfg->rebroadcast_ms == 0 || cfg->timeout_propose_ms == 0 ||
           cfg->timeout_vote_ms == 0)
    why = "timeouts must be positive";
  if (why && err) snprintf(err, err_len, "%s", why);
  return why ? CONS_EARG : 0;
}

int cons_init(cons **out, const cons_config *cfg, const uint8_t *state,
              size_t state_len, char *err, size_t err_len) {
  int rc = check_config(cfg, err, err_len);
  if (rc) return rc;
  cons *c = calloc(1, sizeof *c);
  if (!c) return CONS_ENOMEM;
  c->cfg = *cfg;
  if (c->cfg.max_block_txs == 0) c->cfg.max_block_txs = CONS_MAX_TXS;
  c->f = (cfg->n_members - 1) / 3;
  c->quorum = 2 * c->f + 1;
  c->weak = c->f + 1;
  for (size_t i = 0; i < CONS_ROUND_SLOTS; i++) {
    c->rounds[i].round = -1;
    c->rounds[i].prop_valid = -1;
  }
  for (int k = 0; k < CONS_T_COUNT; k++)
    c->timers[k].deadline_ms = CONS_NO_TIMEOUT;
  c->height = 1;
  c->step = CONS_STEP_NEW_HEIGHT;
  c->locked_round = c->valid_round = CONS_NIL_ROUND;
  memcpy(c->last_hash, cfg->genesis_hash, CONS_HASH_BYTES);
  if (state) {
    rc = cons_state_restore(c, state, state_len);
    if (rc) {
      if (err) snprintf(err, err_len, "state record: %s", c->err);
      cons_free(c);
      return rc;
    }
  }
  *out = c;
  return 0;
}

void cons_free(cons *c) {
  if (!c) return;
  upd_reset(c);
  for (size_t i = 0; i < CONS_ROUND_SLOTS; i++) free(c->rounds[i].prop_msg);
  for (size_t i = 0; i < c->n_held; i++) free(c->held[i].data);
  for (size_t i = 0; i < c->pool_n; i++) free(c->pool[i].data);
  for (size_t i = 0; i < c->n_future; i++) free(c->future[i].data);
  free(c->own_prop);
  free(c->locked_block);
  free(c->valid_block);
  free(c);
}

static void on_start(cons *c) {
  if (c->step == CONS_STEP_NEW_HEIGHT) {
    cons_start_round(c, c->round);
  } else {
    /* restarted mid-round: resend what we signed (already durable), re-arm
     * the timer of our step; never sign anything twice */
    if (c->step == CONS_STEP_PROPOSE) {
      cons_arm(c, CONS_T_PROPOSE,
               c->cfg.timeout_propose_ms +
                   (uint64_t)c->cfg.timeout_propose_delta_ms * c->round);
      if (!c->own_prop &&
          cons_proposer(c->cfg.n_members, c->height, c->round) == c->cfg.self)
        cons_propose(c);
    } else if (c->step == CONS_STEP_PREVOTE) {
      cons_arm(c, CONS_T_PREVOTE,
               c->cfg.timeout_vote_ms +
                   (uint64_t)c->cfg.timeout_vote_delta_ms * c->round);
    } else {
      cons_arm(c, CONS_T_PRECOMMIT,
               c->cfg.timeout_vote_ms +
                   (uint64_t)c->cfg.timeout_vote_delta_ms * c->round);
    }
    cons_rebroadcast(c);
  }
  cons_arm(c, CONS_T_REBROADCAST, c->cfg.rebroadcast_ms);
}

int cons_step(cons *c, const cons_event *ev, const cons_update **out) {
  int rc = 0;
  upd_reset(c);
  if (ev->now_ms > c->now_ms) c->now_ms = ev->now_ms; /* time never goes back */
  switch (ev->type) {
  case CONS_EV_START: on_start(c); break;
  case CONS_EV_MSG:
    if (!ev->data) {
      rc = CONS_EARG;
      break;
    }
    rc = dispatch(c, ev->from, ev->data, ev->len);
    if (rc > 0) rc = 0;
    break;
  case CONS_EV_TIMEOUT: cons_on_timeout(c); break;
  case CONS_EV_TXS:
    rc = ev->data ? pool_add(c, ev->data, ev->len) : CONS_EARG;
    break;
  case CONS_EV_PERSISTED:
    if (ev->persisted_seq > c->persist_seq) {
      rc = CONS_EARG; /* the driver claims a record we never produced */
      break;
    }
    if (ev->persisted_seq > c->persisted_seq) c->persisted_seq = ev->persisted_seq;
    release_held(c);
    break;
  default: rc = CONS_EARG; break;
  }
  int fired = 0;
  while (cons_rules(c)) assert(++fired < RULES_BOUND);
  if (c->dirty) {
    uint8_t *st = NULL;
    size_t st_len = 0;
    int src = cons_state_encode(c, &st, &st_len);
    assert(src == 0); /* bounded sizes, our own data */
    st = cons_upd_keep(c, st);
    assert(st != NULL);
    c->persist_seq++;
    c->upd.state = st;
    c->upd.state_len = st_len;
    c->upd.state_seq = c->persist_seq;
    c->dirty = false;
  }
  c->upd.next_timeout_ms = cons_next_deadline(c);
  *out = &c->upd;
  return rc;
}
