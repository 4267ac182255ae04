/* sim_cluster.c: whole clusters of consensus cores in one process, virtual
 * time, one seeded random source (tests/sim/README.md). After every event
 * the invariants are checked: agreement, validity, chain integrity, no
 * honest equivocation; at the end, liveness after the heal. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cons_store.h"
#include "sim.h"

#define MAX_EVENTS_PER_RUN 4000000u
#define REPLAY_RING 128
#define SENT_TABLE (1u << 15)

enum ev_kind { EV_DELIVER, EV_TIMER, EV_PERSIST, EV_TX, EV_CRASH, EV_RESTART,
               EV_NET, EV_HEAL };

typedef struct sim_ev {
  uint64_t at, seq;
  uint8_t kind;
  uint32_t node, from, epoch;
  uint64_t arg;
  uint8_t *data;
  size_t len;
} sim_ev;

typedef struct pending_write {
  uint8_t *state;
  size_t state_len;
  uint64_t seq;
  uint64_t heights[CONS_MAX_COMMITS];
  uint8_t *recs[CONS_MAX_COMMITS];
  size_t rec_lens[CONS_MAX_COMMITS];
  size_t n_recs;
  struct pending_write *next;
} pending_write;

typedef struct sim_node {
  cons *c;
  bool up, byz;
  uint32_t epoch;
  uint64_t timer_gen, timer_at;
  cons_crypto crypto;
  /* the disk: survives crashes */
  uint8_t *state;
  size_t state_len;
  uint8_t **recs;
  size_t *rec_lens;
  size_t n_recs, cap_recs;
  pending_write *wq_head, *wq_tail;
  uint32_t group; /* partition group */
  /* Byzantine memory */
  uint8_t *ring[REPLAY_RING];
  size_t ring_len[REPLAY_RING];
  size_t ring_n;
  uint8_t bad_hash[CONS_HASH_BYTES];
  uint64_t bad_height;
  uint32_t bad_round;
} sim_node;

typedef struct sent_entry {
  uint64_t key; /* 0 = empty */
  uint8_t digest[CONS_HASH_BYTES];
} sent_entry;

typedef struct sim {
  sim_opts o;
  uint64_t rng;
  uint64_t now, seq;
  sim_ev *heap;
  size_t heap_n, heap_cap;
  sim_node nodes[CONS_MAX_MEMBERS];
  sim_keyring *keys;
  cons_crypto checker;
  uint8_t (*agreed)[CONS_HASH_BYTES];
  bool *agreed_set;
  size_t agreed_cap;
  uint64_t next_tx;
  bool healed;
  uint64_t live_target;
  sent_entry *sent;
  sim_stats *st;
  bool failed;
  char *why;
  size_t why_len;
} sim;

/* ---- random source: xorshift64*, the only one ---- */
static uint64_t rnd(sim *s) {
  uint64_t x = s->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}
static uint64_t rnd_below(sim *s, uint64_t n) { return n ? rnd(s) % n : 0; }
static bool chance(sim *s, uint32_t pct) { return rnd_below(s, 100) < pct; }

static void fail(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(sim *s, const char *fmt, ...) {
  if (s->failed) return;
  s->failed = true;
  int off = snprintf(s->why, s->why_len, "t=%" PRIu64 "ms: ", s->now);
  va_list ap;
  va_start(ap, fmt);
  if (off > 0 && (size_t)off < s->why_len)
    vsnprintf(s->why + off, s->why_len - (size_t)off, fmt, ap);
  va_end(ap);
}

/* ---- event heap ordered by (time, insertion) ---- */
static bool ev_less(const sim_ev *a, const sim_ev *b) {
  return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void push(sim *s, sim_ev e) {
  if (s->heap_n == s->heap_cap) {
    s->heap_cap = s->heap_cap ? 2 * s->heap_cap : 1024;
    s->heap = realloc(s->heap, s->heap_cap * sizeof *s->heap);
    if (!s->heap) abort();
  }
  e.seq = s->seq++;
  size_t i = s->heap_n++;
  while (i && ev_less(&e, &s->heap[(i - 1) / 2])) {
    s->heap[i] = s->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  s->heap[i] = e;
}

static sim_ev pop(sim *s) {
  sim_ev top = s->heap[0], last = s->heap[--s->heap_n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const sim_ev *best = &last;
    if (l < s->heap_n && ev_less(&s->heap[l], best)) { m = l; best = &s->heap[l]; }
    if (r < s->heap_n && ev_less(&s->heap[r], best)) { m = r; }
    if (m == i) break;
    s->heap[i] = s->heap[m];
    i = m;
  }
  if (s->heap_n) s->heap[i] = last;
  return top;
}

/* ---- transactions: 'T' + 8-byte id is valid iff the id was offered ---- */
static int validate_cb(void *ctx, uint64_t height, const uint8_t *tx, size_t len) {
  sim *s = ctx;
  if (len != 9 || tx[0] != 'T') return -1;
  uint64_t id = 0;
  for (int i = 1; i < 9; i++) id = id << 8 | tx[i];
  return id < s->next_tx ? 0 : -1;
}

static void make_tx(uint8_t tx[9], char kind, uint64_t id) {
  tx[0] = (uint8_t)kind;
  for (int i = 8; i >= 1; i--, id >>= 8) tx[i] = (uint8_t)id;
}

/* ---- invariant: no honest member signs two different messages for one
 * (member, height, round, step), across crashes and restarts ---- */
static void record_signed(sim *s, uint32_t i, const uint8_t *m, size_t len) {
  uint64_t key;
  uint8_t digest[CONS_HASH_BYTES];
  if (m[0] == CONS_MSG_VOTE) {
    cons_vote v;
    if (cons_vote_decode(m, len, &v)) return;
    if (v.voter != i) return; /* relayed: not this member's signature */
    key = v.height << 24 ^ (uint64_t)v.round << 6 ^ (uint64_t)v.type << 4 ^ v.voter;
    cons_store_hashv(NULL, &(cons_iov){v.body, CONS_VOTE_BODY_BYTES}, 1, digest);
  } else if (m[0] == CONS_MSG_PROPOSAL) {
    cons_proposal p;
    if (cons_proposal_decode(&s->checker, m, len, &p)) return;
    if (p.proposer != i) return;
    key = p.height << 24 ^ (uint64_t)p.round << 6 ^ 3u << 4 ^ p.proposer;
    cons_store_hashv(NULL, &(cons_iov){p.body, CONS_PROP_BODY_BYTES}, 1, digest);
  } else {
    return;
  }
  key = key * 0x9E3779B97F4A7C15ULL | 1;
  for (size_t probe = 0; probe < SENT_TABLE; probe++) {
    sent_entry *e = &s->sent[(key + probe) & (SENT_TABLE - 1)];
    if (e->key == 0) {
      e->key = key;
      memcpy(e->digest, digest, CONS_HASH_BYTES);
      return;
    }
    if (e->key == key) {
      if (memcmp(e->digest, digest, CONS_HASH_BYTES) != 0)
        fail(s, "honest member %u signed two different messages for one step", i);
      return;
    }
  }
  /* table full: the run is far longer than any configured mix */
  fail(s, "sent-message table full");
}

/* ---- network ---- */
static void net_send(sim *s, uint32_t from, uint32_t to, const uint8_t *m, size_t len) {
  if (to == from || to >= s->o.n) return;
  if (!s->nodes[from].byz) {
    s->st->msgs++;
    s->st->bytes += len;
    record_signed(s, from, m, len);
  }
  int copies = 1;
  if (!s->healed) {
    if (chance(s, s->o.loss_pct)) return;
    if (chance(s, s->o.dup_pct)) copies = 2;
  }
  for (int k = 0; k < copies; k++) {
    uint8_t *d = malloc(len);
    if (!d) abort();
    memcpy(d, m, len);
    uint64_t delay = s->o.delay_min_ms +
                     rnd_below(s, s->o.delay_max_ms - s->o.delay_min_ms + 1);
    push(s, (sim_ev){.at = s->now + delay, .kind = EV_DELIVER, .node = to,
                     .from = from, .data = d, .len = len});
  }
}

static void broadcast(sim *s, uint32_t from, const uint8_t *m, size_t len) {
  for (uint32_t to = 0; to < s->o.n; to++) net_send(s, from, to, m, len);
}

/* ---- checks on every commit an honest member reports ---- */
static void check_commit(sim *s, uint32_t i, const cons_commit_out *c) {
  cons_commit_info ci;
  int rc = cons_record_verify(&s->checker, s->o.n, c->record, c->record_len, &ci);
  if (rc) {
    fail(s, "member %u committed height %" PRIu64 " with a record that does not verify: %s",
         i, c->height, cons_strerror(rc));
    return;
  }
  if (ci.height != c->height || memcmp(ci.block_hash, c->block_hash, 32) != 0) {
    fail(s, "member %u: commit record disagrees with the commit it reports", i);
    return;
  }
  if (c->height >= s->agreed_cap) {
    size_t cap = s->agreed_cap * 2 + c->height + 16;
    s->agreed = realloc(s->agreed, cap * sizeof *s->agreed);
    s->agreed_set = realloc(s->agreed_set, cap * sizeof *s->agreed_set);
    if (!s->agreed || !s->agreed_set) abort();
    memset(s->agreed_set + s->agreed_cap, 0, (cap - s->agreed_cap) * sizeof(bool));
    s->agreed_cap = cap;
  }
  if (s->agreed_set[c->height]) {
    if (memcmp(s->agreed[c->height], c->block_hash, 32) != 0)
      fail(s, "AGREEMENT: member %u committed a different block at height %" PRIu64,
           i, c->height);
  } else {
    memcpy(s->agreed[c->height], c->block_hash, 32);
    s->agreed_set[c->height] = true;
  }
  /* chain integrity: the parent is the agreed block below */
  if (c->height > 1) {
    if (!s->agreed_set[c->height - 1] ||
        memcmp(s->agreed[c->height - 1], ci.parent, 32) != 0)
      fail(s, "CHAIN: height %" PRIu64 " at member %u does not extend the agreed chain",
           c->height, i);
  }
  /* validity: every committed transaction was offered and passes validation */
  cons_block *b = malloc(sizeof *b);
  if (!b) abort();
  if (cons_block_decode(ci.block, ci.block_len, b) != 0)
    fail(s, "member %u committed an undecodable block", i);
  else
    for (uint32_t t = 0; t < b->n_txs; t++)
      if (validate_cb(s, c->height, b->tx[t], b->tx_len[t]) != 0)
        fail(s, "VALIDITY: member %u committed an invalid transaction at %" PRIu64,
             i, c->height);
  free(b);
}

/* ---- Byzantine output ---- */
static void byz_remember(sim_node *n, const uint8_t *m, size_t len) {
  size_t slot = n->ring_n++ % REPLAY_RING;
  free(n->ring[slot]);
  n->ring[slot] = malloc(len);
  if (!n->ring[slot]) abort();
  memcpy(n->ring[slot], m, len);
  n->ring_len[slot] = len;
}

static void byz_alt_block(sim *s, uint32_t i, const cons_proposal *p, bool valid,
                          uint8_t **out, size_t *out_len) {
  uint8_t tx[9];
  const uint8_t *txs[1] = {tx};
  size_t lens[1] = {9};
  cons_block b;
  if (cons_block_decode(p->block, p->block_len, &b) != 0) { *out = NULL; return; }
  if (valid && s->next_tx) make_tx(tx, 'T', rnd_below(s, s->next_tx));
  else make_tx(tx, 'X', rnd(s));
  if (cons_block_make(b.height, b.parent, i, txs, lens, 1, out, out_len)) *out = NULL;
}

static void byz_send(sim *s, uint32_t i, const uint8_t *m, size_t len, int mode) {
  sim_node *n = &s->nodes[i];
  if (mode == SIM_BYZ_MIXED) mode = 1 + (int)rnd_below(s, 4);
  if (mode == SIM_BYZ_SILENT) return;
  if (mode == SIM_BYZ_REPLAY) {
    broadcast(s, i, m, len);
    for (int k = 0; k < 2 && n->ring_n; k++) {
      size_t slot = rnd_below(s, n->ring_n < REPLAY_RING ? n->ring_n : REPLAY_RING);
      net_send(s, i, (uint32_t)rnd_below(s, s->o.n), n->ring[slot], n->ring_len[slot]);
    }
    return;
  }
  if (m[0] == CONS_MSG_PROPOSAL) {
    cons_proposal p;
    uint8_t *blk = NULL, *alt = NULL;
    size_t blen = 0, alen = 0;
    if (cons_proposal_decode(&s->checker, m, len, &p)) return;
    byz_alt_block(s, i, &p, mode == SIM_BYZ_EQUIVOCATE, &blk, &blen);
    if (!blk ||
        cons_proposal_make(&n->crypto, p.height, p.round, p.pol_round, i, blk, blen,
                           &alt, &alen)) {
      free(blk);
      return;
    }
    if (mode == SIM_BYZ_INVALID) {
      cons_block_hash(&s->checker, blk, blen, n->bad_hash);
      n->bad_height = p.height;
      n->bad_round = p.round;
      broadcast(s, i, alt, alen);
    } else { /* equivocate: the real one to some peers, the other to the rest */
      for (uint32_t to = 0; to < s->o.n; to++) {
        if (rnd_below(s, 2)) net_send(s, i, to, m, len);
        else net_send(s, i, to, alt, alen);
      }
    }
    free(blk);
    free(alt);
    return;
  }
  if (m[0] == CONS_MSG_VOTE) {
    cons_vote v;
    uint8_t other[CONS_VOTE_MSG_BYTES], h[CONS_HASH_BYTES];
    if (cons_vote_decode(m, len, &v)) return;
    const uint8_t *hash = NULL;
    if (mode == SIM_BYZ_INVALID) {
      if (n->bad_height == v.height) hash = n->bad_hash;
      else { for (int k = 0; k < 32; k++) h[k] = (uint8_t)rnd(s); hash = h; }
    } else if (v.nil) {
      for (int k = 0; k < 32; k++) h[k] = (uint8_t)rnd(s);
      hash = h;
    }
    if (cons_vote_make(&n->crypto, v.type, v.height, v.round, i, hash, other)) return;
    if (mode == SIM_BYZ_INVALID) {
      broadcast(s, i, other, sizeof other);
      return;
    }
    for (uint32_t to = 0; to < s->o.n; to++) {
      if (rnd_below(s, 2)) net_send(s, i, to, m, len);
      else net_send(s, i, to, other, sizeof other);
    }
    return;
  }
  broadcast(s, i, m, len);
}

/* ---- one member takes one step ---- */
static void node_event(sim *s, uint32_t i, cons_event *ev);

static void handle_update(sim *s, uint32_t i, const cons_update *u) {
  sim_node *n = &s->nodes[i];
  s->st->signs += u->n_signed;
  s->st->verifies += u->n_verified;
  if (!n->byz)
    for (size_t k = 0; k < u->n_commits; k++) check_commit(s, i, &u->commits[k]);
  s->st->evidence += n->byz ? 0 : u->n_evidence;
  if (u->state) {
    pending_write *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->state = malloc(u->state_len);
    memcpy(w->state, u->state, u->state_len);
    w->state_len = u->state_len;
    w->seq = u->state_seq;
    for (size_t k = 0; k < u->n_commits; k++) {
      w->heights[k] = u->commits[k].height;
      w->recs[k] = malloc(u->commits[k].record_len);
      memcpy(w->recs[k], u->commits[k].record, u->commits[k].record_len);
      w->rec_lens[k] = u->commits[k].record_len;
    }
    w->n_recs = u->n_commits;
    if (n->wq_tail) n->wq_tail->next = w;
    else n->wq_head = w;
    n->wq_tail = w;
    /* a Byzantine member does not wait for its disk */
    uint64_t disk_ms = n->byz ? 0 : 1 + (s->o.seed + i) % 3;
    push(s, (sim_ev){.at = s->now + disk_ms, .kind = EV_PERSIST, .node = i,
                     .epoch = n->epoch});
  }
  for (size_t k = 0; k < u->n_msgs; k++) {
    const cons_msg_out *m = &u->msgs[k];
    if (n->byz) {
      if (m->to == CONS_BROADCAST) byz_send(s, i, m->data, m->len, s->o.byz_mode);
      else net_send(s, i, m->to, m->data, m->len);
    } else if (m->to == CONS_BROADCAST) {
      broadcast(s, i, m->data, m->len);
    } else {
      net_send(s, i, m->to, m->data, m->len);
    }
  }
  for (size_t k = 0; k < u->n_serve; k++) {
    uint64_t h = u->serve[k].height;
    if (h == 0 || h > n->n_recs) continue; /* committed, not yet durable */
    uint8_t *msg;
    size_t len;
    if (cons_catchup_resp_encode(n->recs[h - 1], n->rec_lens[h - 1], &msg, &len) == 0) {
      net_send(s, i, u->serve[k].to, msg, len);
      free(msg);
    }
  }
  if (u->next_timeout_ms != n->timer_at) {
    n->timer_at = u->next_timeout_ms;
    n->timer_gen++;
    if (n->timer_at != CONS_NO_TIMEOUT)
      push(s, (sim_ev){.at = n->timer_at > s->now ? n->timer_at : s->now,
                       .kind = EV_TIMER, .node = i, .epoch = n->epoch,
                       .arg = n->timer_gen});
  }
}

static void trace(sim *s, uint32_t i, const cons_event *ev, int rc) {
  static int on = -1;
  if (on < 0) on = getenv("SIM_TRACE") != NULL;
  if (!on) return;
  cons *c = s->nodes[i].c;
  fprintf(stderr, "%6" PRIu64 " m%u ev%d", s->now, i, ev->type);
  if (ev->type == CONS_EV_MSG && ev->len) {
    fprintf(stderr, " from %u type %u", ev->from, ev->data[0]);
    cons_vote v;
    cons_proposal p;
    if (cons_vote_decode(ev->data, ev->len, &v) == 0)
      fprintf(stderr, " vote%u h%" PRIu64 " r%u by %u %s%02x", v.type, v.height, v.round,
              v.voter, v.nil ? "nil" : "", v.nil ? 0 : v.hash[0]);
    else if (cons_proposal_decode(&s->checker, ev->data, ev->len, &p) == 0)
      fprintf(stderr, " prop h%" PRIu64 " r%u pol%d %02x", p.height, p.round, p.pol_round,
              p.block_hash[0]);
  }
  fprintf(stderr, " -> rc %d now h%" PRIu64 " r%u s%u lock%d\n", rc, cons_height(c),
          cons_round(c), cons_step_kind(c), cons_locked_round(c));
}

static void node_event(sim *s, uint32_t i, cons_event *ev) {
  const cons_update *u;
  ev->now_ms = s->now;
  int rc = cons_step(s->nodes[i].c, ev, &u);
  trace(s, i, ev, rc);
  handle_update(s, i, u);
}

static void free_write(pending_write *w) {
  free(w->state);
  for (size_t k = 0; k < w->n_recs; k++) free(w->recs[k]);
  free(w);
}

static void node_crash(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  if (!n->up) return;
  cons_free(n->c);
  n->c = NULL;
  n->up = false;
  n->epoch++;
  while (n->wq_head) { /* writes in flight are lost */
    pending_write *w = n->wq_head;
    n->wq_head = w->next;
    free_write(w);
  }
  n->wq_tail = NULL;
  n->timer_at = CONS_NO_TIMEOUT;
}

static cons_config node_config(sim *s, uint32_t i) {
  cons_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.n_members = s->o.n;
  cfg.self = i;
  cfg.crypto = s->nodes[i].crypto;
  cfg.validate_cb = validate_cb;
  cfg.validate_ctx = s;
  memset(cfg.genesis_hash, 0x47, sizeof cfg.genesis_hash);
  cfg.timeout_propose_ms = 150;
  cfg.timeout_propose_delta_ms = 50;
  cfg.timeout_vote_ms = 60;
  cfg.timeout_vote_delta_ms = 30;
  cfg.commit_wait_ms = 40;
  cfg.rebroadcast_ms = 200;
  cfg.max_block_txs = 64;
  return cfg;
}

static void node_start(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  cons_config cfg = node_config(s, i);
  char err[256];
  int rc = cons_init(&n->c, &cfg, n->state, n->state_len, err, sizeof err);
  if (rc) {
    fail(s, "member %u cannot restart from its state: %s (%s)", i, cons_strerror(rc), err);
    return;
  }
  /* the durable chain and the durable state must agree */
  if (cons_height(n->c) != n->n_recs + 1)
    fail(s, "member %u restarted at height %" PRIu64 " with %zu blocks on disk", i,
         cons_height(n->c), n->n_recs);
  n->up = true;
  cons_event ev = {.type = CONS_EV_START};
  node_event(s, i, &ev);
}

static void on_persist(sim *s, sim_ev *e) {
  sim_node *n = &s->nodes[e->node];
  if (e->epoch != n->epoch || !n->wq_head) return;
  pending_write *w = n->wq_head;
  n->wq_head = w->next;
  if (!n->wq_head) n->wq_tail = NULL;
  for (size_t k = 0; k < w->n_recs; k++) {
    if (w->heights[k] != n->n_recs + 1) {
      fail(s, "member %u wrote height %" PRIu64 " after %zu", e->node, w->heights[k], n->n_recs);
      free_write(w);
      return;
    }
    if (n->n_recs == n->cap_recs) {
      n->cap_recs = n->cap_recs ? 2 * n->cap_recs : 64;
      n->recs = realloc(n->recs, n->cap_recs * sizeof *n->recs);
      n->rec_lens = realloc(n->rec_lens, n->cap_recs * sizeof *n->rec_lens);
      if (!n->recs || !n->rec_lens) abort();
    }
    n->recs[n->n_recs] = w->recs[k];
    n->rec_lens[n->n_recs++] = w->rec_lens[k];
    w->recs[k] = NULL;
  }
  free(n->state);
  n->state = w->state;
  n->state_len = w->state_len;
  w->state = NULL;
  uint64_t seq = w->seq;
  free_write(w);
  /* crash between persisting and sending: the votes never leave */
  if (s->o.crashes && !s->healed && !n->byz && chance(s, 3)) {
    node_crash(s, e->node);
    s->st->restarts++;
    push(s, (sim_ev){.at = s->now + 1 + rnd_below(s, 300), .kind = EV_RESTART,
                     .node = e->node});
    return;
  }
  cons_event ev = {.type = CONS_EV_PERSISTED, .persisted_seq = seq};
  node_event(s, e->node, &ev);
}

static void offer_tx(sim *s) {
  uint32_t i = (uint32_t)rnd_below(s, s->o.n);
  if (!s->nodes[i].up) return;
  uint8_t tx[9];
  bool bad = chance(s, 10);
  if (bad) make_tx(tx, 'X', rnd(s));
  else make_tx(tx, 'T', s->next_tx++);
  cons_event ev = {.type = CONS_EV_TXS, .data = tx, .len = sizeof tx};
  const cons_update *u;
  ev.now_ms = s->now;
  int rc = cons_step(s->nodes[i].c, &ev, &u);
  if (bad && rc != CONS_EINVALID && !s->nodes[i].byz)
    fail(s, "member %u accepted an invalid transaction into its pool", i);
  handle_update(s, i, u);
}

static void net_change(sim *s) {
  if (!s->o.partitions || s->healed) return;
  bool split = chance(s, 60);
  for (uint32_t i = 0; i < s->o.n; i++)
    s->nodes[i].group = split ? (uint32_t)rnd_below(s, 2) : 0;
  push(s, (sim_ev){.at = s->now + 100 + rnd_below(s, 900), .kind = EV_NET});
}

static uint64_t honest_min_durable(sim *s) {
  uint64_t m = UINT64_MAX;
  for (uint32_t i = 0; i < s->o.n; i++)
    if (!s->nodes[i].byz && s->nodes[i].n_recs < m) m = s->nodes[i].n_recs;
  return m;
}

static void heal(sim *s) {
  s->healed = true;
  uint64_t top = 0;
  for (uint32_t i = 0; i < s->o.n; i++) {
    s->nodes[i].group = 0;
    if (!s->nodes[i].up) {
      s->st->restarts++;
      node_start(s, i);
    }
    if (!s->nodes[i].byz && s->nodes[i].n_recs > top) top = s->nodes[i].n_recs;
  }
  s->live_target = top + s->o.liveness_heights;
}

static void deliver(sim *s, sim_ev *e) {
  sim_node *n = &s->nodes[e->node];
  if (!n->up) return;
  if (!s->healed && s->o.partitions && n->group != s->nodes[e->from].group) return;
  if (n->byz) byz_remember(n, e->data, e->len);
  cons_event ev = {.type = CONS_EV_MSG, .from = e->from, .data = e->data, .len = e->len};
  node_event(s, e->node, &ev);
}

static void dispatch(sim *s, sim_ev *e) {
  sim_node *n = &s->nodes[e->node];
  switch (e->kind) {
  case EV_DELIVER: deliver(s, e); break;
  case EV_TIMER:
    if (n->up && e->epoch == n->epoch && e->arg == n->timer_gen) {
      cons_event ev = {.type = CONS_EV_TIMEOUT};
      n->timer_at = CONS_NO_TIMEOUT;
      node_event(s, e->node, &ev);
    }
    break;
  case EV_PERSIST: on_persist(s, e); break;
  case EV_TX:
    offer_tx(s);
    push(s, (sim_ev){.at = s->now + 5 + rnd_below(s, 40), .kind = EV_TX});
    break;
  case EV_CRASH:
    if (s->healed || n->byz || !n->up) break;
    node_crash(s, e->node);
    s->st->restarts++;
    push(s, (sim_ev){.at = s->now + 1 + rnd_below(s, 1500), .kind = EV_RESTART,
                     .node = e->node});
    break;
  case EV_RESTART:
    if (!n->up) node_start(s, e->node);
    break;
  case EV_NET: net_change(s); break;
  case EV_HEAL: heal(s); break;
  default: break;
  }
  free(e->data);
}

static void sim_free(sim *s) {
  for (size_t k = 0; k < s->heap_n; k++) free(s->heap[k].data);
  free(s->heap);
  for (uint32_t i = 0; i < s->o.n; i++) {
    sim_node *n = &s->nodes[i];
    if (n->c) cons_free(n->c);
    free(n->state);
    for (size_t k = 0; k < n->n_recs; k++) free(n->recs[k]);
    free(n->recs);
    free(n->rec_lens);
    while (n->wq_head) {
      pending_write *w = n->wq_head;
      n->wq_head = w->next;
      free_write(w);
    }
    for (size_t k = 0; k < REPLAY_RING; k++) free(n->ring[k]);
  }
  free(s->agreed);
  free(s->agreed_set);
  free(s->sent);
  sim_keyring_free(s->keys);
}

int sim_run(const sim_opts *o, sim_stats *st, char *why, size_t why_len) {
  sim *s = calloc(1, sizeof *s);
  if (!s) abort();
  memset(st, 0, sizeof *st);
  s->o = *o;
  s->st = st;
  s->why = why;
  s->why_len = why_len;
  why[0] = 0;
  s->rng = o->seed * 0x9E3779B97F4A7C15ULL + 0x1234567;
  if (!s->rng) s->rng = 1;
  s->sent = calloc(SENT_TABLE, sizeof *s->sent);
  s->keys = sim_keyring_new(o->n, o->seed, o->real_crypto);
  if (!s->sent || !s->keys) abort();
  s->checker = sim_signer(s->keys, UINT32_MAX);
  /* Byzantine members: distinct, chosen by the seed */
  for (uint32_t b = 0; b < o->n_byz;) {
    uint32_t i = (uint32_t)rnd_below(s, o->n);
    if (!s->nodes[i].byz) { s->nodes[i].byz = true; b++; }
  }
  for (uint32_t i = 0; i < o->n; i++) {
    s->nodes[i].crypto = sim_signer(s->keys, i);
    s->nodes[i].timer_at = CONS_NO_TIMEOUT;
  }
  for (uint32_t i = 0; i < o->n && !s->failed; i++) node_start(s, i);
  push(s, (sim_ev){.at = 1, .kind = EV_TX});
  bool faults = o->loss_pct || o->dup_pct || o->partitions || o->crashes || o->n_byz;
  uint64_t heal_at = faults ? o->fault_ms : 0;
  if (o->partitions) push(s, (sim_ev){.at = 50 + rnd_below(s, 500), .kind = EV_NET});
  if (o->crashes) {
    uint32_t n_crash = 1 + (uint32_t)rnd_below(s, 4);
    for (uint32_t k = 0; k < n_crash; k++)
      push(s, (sim_ev){.at = rnd_below(s, heal_at ? heal_at : 1), .kind = EV_CRASH,
                       .node = (uint32_t)rnd_below(s, o->n)});
  }
  if (heal_at) push(s, (sim_ev){.at = heal_at, .kind = EV_HEAL});
  else s->healed = true;
  uint64_t end = o->run_ms ? o->run_ms : heal_at + o->liveness_ms;
  if (!heal_at) s->live_target = o->liveness_heights;
  while (!s->failed && s->heap_n) {
    sim_ev e = pop(s);
    if (e.at > end) {
      free(e.data);
      break;
    }
    s->now = e.at;
    st->events++;
    dispatch(s, &e);
    if (st->events > MAX_EVENTS_PER_RUN) fail(s, "event budget exhausted");
    if (!o->run_ms && s->healed && honest_min_durable(s) >= s->live_target) break;
  }
  st->virtual_ms = s->now;
  st->heights = honest_min_durable(s);
  if (!s->failed && !o->run_ms && honest_min_durable(s) < s->live_target)
    fail(s, "LIVENESS: %" PRIu64 " ms after the heal, honest members reached only "
            "height %" PRIu64 " of %" PRIu64,
         o->liveness_ms, honest_min_durable(s), s->live_target);
  if (o->verbose)
    fprintf(stderr, "seed %" PRIu64 ": %" PRIu64 " events, %" PRIu64 " ms, min height %" PRIu64
            ", %" PRIu64 " msgs, evidence %" PRIu64 ", restarts %" PRIu64 "\n",
            o->seed, st->events, s->now, st->heights, st->msgs, st->evidence, st->restarts);
  if (o->verbose && s->failed)
    for (uint32_t i = 0; i < o->n; i++) {
      sim_node *n = &s->nodes[i];
      fprintf(stderr, "  member %u%s: up=%d durable=%zu height=%" PRIu64 " round=%u step=%u locked=%d\n",
              i, n->byz ? " (byz)" : "", n->up, n->n_recs, n->c ? cons_height(n->c) : 0,
              n->c ? cons_round(n->c) : 0, n->c ? cons_step_kind(n->c) : 0,
              n->c ? cons_locked_round(n->c) : 0);
    }
  int failed = s->failed;
  sim_free(s);
  free(s);
  return failed;
}

/* ---- the fault mixes of the test suite ---- */
static const char *const mix_names[] = {
    "clean", "loss33", "partitions", "crashes", "byz-equivocate+loss",
    "byz-invalid", "byz-replay+partitions", "byz-silent+crashes",
    "everything", "n7-two-byz+loss",
};
#define N_MIX (sizeof mix_names / sizeof mix_names[0])

const char *sim_mix_name(uint64_t seed) { return mix_names[seed % N_MIX]; }

void sim_opts_for_seed(sim_opts *o, uint64_t seed, bool real_crypto) {
  memset(o, 0, sizeof *o);
  o->seed = seed;
  o->n = 4;
  o->real_crypto = real_crypto;
  o->delay_min_ms = 1;
  o->delay_max_ms = 15;
  o->fault_ms = 2500;
  o->liveness_ms = 20000;
  o->liveness_heights = 3;
  /* vary the Byzantine mode across seeds of one mix */
  int byz_variant = (int)((seed / N_MIX) % 5) + 1;
  switch (seed % N_MIX) {
  case 0: o->fault_ms = 0; o->liveness_heights = 12; break;
  case 1: o->loss_pct = 33; break;
  case 2: o->partitions = true; o->delay_max_ms = 60; break;
  case 3: o->crashes = true; o->dup_pct = 5; break;
  case 4: o->n_byz = 1; o->byz_mode = SIM_BYZ_EQUIVOCATE; o->loss_pct = 10; break;
  case 5: o->n_byz = 1; o->byz_mode = SIM_BYZ_INVALID; break;
  case 6: o->n_byz = 1; o->byz_mode = SIM_BYZ_REPLAY; o->partitions = true; break;
  case 7: o->n_byz = 1; o->byz_mode = SIM_BYZ_SILENT; o->crashes = true; break;
  case 8:
    o->n_byz = 1; o->byz_mode = byz_variant; o->loss_pct = 20; o->dup_pct = 10;
    o->partitions = true; o->crashes = true; o->delay_max_ms = 80;
    break;
  default:
    o->n = 7; o->n_byz = 2; o->byz_mode = SIM_BYZ_MIXED; o->loss_pct = 15;
    break;
  }
}
