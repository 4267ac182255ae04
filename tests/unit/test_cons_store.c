/* test_cons_store.c: the LMDB adapter and the restart rule (spec/consensus.md
 * §7): a member killed after its vote's state is durable but before the vote
 * is sent resumes from LMDB and never signs a conflicting vote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cons_internal.h"
#include "cons_store.h"
#include "test_cons_util.h"

typedef struct fx {
  char dir[64];
  MDB_env *env;
  cons_store st;
  tsign keys[4];
  cons_config cfg;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/cons_store_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(mdb_env_create(&f->env), 0);
  assert_int_equal(mdb_env_set_maxdbs(f->env, 16), 0);
  assert_int_equal(mdb_env_set_mapsize(f->env, 64u << 20), 0);
  assert_int_equal(mdb_env_open(f->env, f->dir, 0, 0600), 0);
  assert_int_equal(cons_store_open(&f->st, f->env), 0);
  tsign_init(f->keys, 4);
  f->cfg = tconfig(f->keys, 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  char path[128];
  cons_store_close(&f->st);
  mdb_env_close(f->env);
  snprintf(path, sizeof path, "%s/data.mdb", f->dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/lock.mdb", f->dir);
  unlink(path);
  rmdir(f->dir);
  free(f);
  return 0;
}

/* the driver: persist through LMDB, then tell the core */
static const cons_update *drive(fx *f, cons *c, const cons_update *u) {
  if (!u->state) return u;
  assert_int_equal(cons_store_apply(&f->st, u), 0);
  const cons_update *r;
  assert_int_equal(tstep(c, CONS_EV_PERSISTED, 0, 0, NULL, 0, u->state_seq, &r), 0);
  return r;
}

static cons *restart(fx *f, const cons_update **start) {
  uint8_t *st;
  size_t len;
  cons *c;
  const cons_update *u;
  assert_int_equal(cons_store_load_state(&f->st, &st, &len), 0);
  assert_int_equal(cons_init(&c, &f->cfg, st, len, NULL, 0), 0);
  free(st);
  assert_int_equal(tstep(c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  assert_int_equal(u->n_signed, 0);
  if (start) *start = u;
  return c;
}

static void send_prop(fx *f, cons *c, uint32_t proposer, char tag,
                      const cons_update **u, uint8_t hash[32]) {
  uint8_t *blk, *m;
  size_t bl, ml;
  tblock(1, f->cfg.genesis_hash, proposer, tag, &blk, &bl);
  cons_block_hash(&f->cfg.crypto, blk, bl, hash);
  cons_crypto s = tsign_signer(&f->keys[proposer]);
  assert_int_equal(cons_proposal_make(&s, 1, 0, -1, proposer, blk, bl, &m, &ml), 0);
  (void)tstep(c, CONS_EV_MSG, 0, proposer, m, ml, 0, u);
  free(blk);
  free(m);
}

static void test_kill_between_persist_and_send(void **state) {
  fx *f = *state;
  cons *c;
  const cons_update *u;
  uint8_t ha[32], hb[32];
  assert_int_equal(cons_store_load_state(&f->st, (uint8_t **)&u, &(size_t){0}),
                   CONS_STORE_ENOTFOUND);
  assert_int_equal(cons_init(&c, &f->cfg, NULL, 0, NULL, 0), 0);
  assert_int_equal(tstep(c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  /* proposal A from member 1: we sign a prevote for A */
  send_prop(f, c, 1, 'T', &u, ha);
  assert_non_null(u->state);
  assert_false(tfind_vote(u, CONS_PREVOTE, 0, ha, 0));
  /* persisted... and killed before PERSISTED, so the vote never left */
  assert_int_equal(cons_store_apply(&f->st, u), 0);
  cons_free(c);

  const cons_update *t;
  c = restart(f, &t);
  assert_int_equal(cons_step_kind(c), CONS_STEP_PREVOTE);
  /* what a restarted member sends is the prevote for A, byte for byte */
  assert_true(tfind_vote(t, CONS_PREVOTE, 0, ha, 0));
  /* proposal A gossiped again: stored, but nothing is signed twice */
  send_prop(f, c, 1, 'T', &u, hb);
  assert_memory_equal(ha, hb, 32);
  assert_int_equal(u->n_signed, 0);

  /* the others prevote A: we lock, precommit A; kill again before sending */
  for (uint32_t m = 1; m < 3; m++) {
    uint8_t v[CONS_VOTE_MSG_BYTES];
    cons_crypto s = tsign_signer(&f->keys[m]);
    assert_int_equal(cons_vote_make(&s, CONS_PREVOTE, 1, 0, m, ha, v), 0);
    assert_int_equal(tstep(c, CONS_EV_MSG, 0, m, v, sizeof v, 0, &u), 0);
    if (u->state) assert_int_equal(cons_store_apply(&f->st, u), 0);
  }
  assert_int_equal(cons_locked_round(c), 0);
  cons_free(c);
  c = restart(f, NULL);
  assert_int_equal(cons_locked_round(c), 0); /* the lock survived */
  assert_int_equal(cons_step_kind(c), CONS_STEP_PRECOMMIT);
  /* precommits from 1 and 2 complete the commit; the record is stored */
  for (uint32_t m = 1; m < 3; m++) {
    uint8_t v[CONS_VOTE_MSG_BYTES];
    cons_crypto s = tsign_signer(&f->keys[m]);
    assert_int_equal(cons_vote_make(&s, CONS_PRECOMMIT, 1, 0, m, ha, v), 0);
    assert_int_equal(tstep(c, CONS_EV_MSG, 0, m, v, sizeof v, 0, &u), 0);
    u = drive(f, c, u);
  }
  assert_int_equal(cons_height(c), 2);
  uint64_t last;
  assert_int_equal(cons_store_last_height(&f->st, &last), 0);
  assert_int_equal(last, 1);
  uint8_t *rec;
  size_t rl;
  assert_int_equal(cons_store_get_block(&f->st, 1, &rec, &rl), 0);
  cons_commit_info ci;
  cons_crypto chk = tsign_signer(&f->keys[3]);
  assert_int_equal(cons_record_verify(&chk, 4, rec, rl, &ci), 0);
  assert_memory_equal(ci.block_hash, ha, 32);
  free(rec);
  assert_int_equal(cons_store_get_block(&f->st, 2, &rec, &rl), CONS_STORE_ENOTFOUND);
  cons_free(c);
  /* and a restart after the commit resumes at height 2 */
  c = restart(f, NULL);
  assert_int_equal(cons_height(c), 2);
  cons_free(c);
}

/* After a restart in the prevote step, let every timer fire: whatever is
 * signed, no second prevote of round 0 ever appears. */
static void test_restart_timeouts_never_conflict(void **state) {
  fx *f = *state;
  cons *c;
  const cons_update *u;
  uint8_t ha[32];
  assert_int_equal(cons_init(&c, &f->cfg, NULL, 0, NULL, 0), 0);
  assert_int_equal(tstep(c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  send_prop(f, c, 1, 'T', &u, ha);
  assert_int_equal(cons_store_apply(&f->st, u), 0);
  cons_free(c);
  for (int life = 0; life < 3; life++) {
    c = restart(f, &u);
    /* a Byzantine proposer shows the restarted member B for round 0 */
    const cons_update *b;
    uint8_t hb[32];
    send_prop(f, c, 1, (char)('U' + life), &b, hb);
    assert_int_equal(b->n_signed, 0);
    assert_false(tfind_vote(b, CONS_PREVOTE, 0, hb, 0));
    for (int k = 0; k < 6 && u->next_timeout_ms != CONS_NO_TIMEOUT; k++) {
      uint64_t at = u->next_timeout_ms;
      assert_int_equal(tstep(c, CONS_EV_TIMEOUT, at, 0, NULL, 0, 0, &u), 0);
      for (size_t i = 0; i < u->n_msgs; i++) {
        cons_vote v;
        if (cons_vote_decode(u->msgs[i].data, u->msgs[i].len, &v) == 0 &&
            v.voter == 0 && v.type == CONS_PREVOTE && v.round == 0)
          assert_memory_equal(v.hash, ha, 32);
      }
      if (u->state) assert_int_equal(cons_store_apply(&f->st, u), 0);
    }
    cons_free(c); /* killed again, perhaps between persist and send */
  }
}

static void test_evidence_stored(void **state) {
  fx *f = *state;
  cons *c;
  const cons_update *u;
  uint8_t h1[32] = {1}, h2[32] = {2}, v[CONS_VOTE_MSG_BYTES];
  assert_int_equal(cons_init(&c, &f->cfg, NULL, 0, NULL, 0), 0);
  assert_int_equal(tstep(c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  cons_crypto s = tsign_signer(&f->keys[3]);
  assert_int_equal(cons_vote_make(&s, CONS_PRECOMMIT, 1, 0, 3, h1, v), 0);
  assert_int_equal(tstep(c, CONS_EV_MSG, 0, 3, v, sizeof v, 0, &u), 0);
  assert_int_equal(cons_vote_make(&s, CONS_PRECOMMIT, 1, 0, 3, h2, v), 0);
  assert_int_equal(tstep(c, CONS_EV_MSG, 0, 3, v, sizeof v, 0, &u), CONS_ECONFLICT);
  assert_int_equal(cons_store_apply(&f->st, u), 0);
  size_t n;
  assert_int_equal(cons_store_evidence_count(&f->st, &n), 0);
  assert_int_equal(n, 1);
  cons_free(c);
}

static void test_corrupt_state_refused(void **state) {
  fx *f = *state;
  cons *c;
  const cons_update *u;
  assert_int_equal(cons_init(&c, &f->cfg, NULL, 0, NULL, 0), 0);
  assert_int_equal(tstep(c, CONS_EV_START, 0, 0, NULL, 0, 0, &u), 0);
  uint8_t ha[32];
  send_prop(f, c, 1, 'T', &u, ha);
  assert_non_null(u->state);
  uint8_t *copy = malloc(u->state_len);
  size_t len = u->state_len;
  memcpy(copy, u->state, len);
  cons_free(c);
  char err[128];
  for (size_t i = 0; i < len; i += 7) { /* any flipped byte is caught */
    copy[i] ^= 0x20;
    assert_int_equal(cons_init(&c, &f->cfg, copy, len, err, sizeof err), CONS_ESTATE);
    copy[i] ^= 0x20;
  }
  assert_int_equal(cons_init(&c, &f->cfg, copy, len - 1, err, sizeof err), CONS_ESTATE);
  assert_int_equal(cons_init(&c, &f->cfg, copy, len, err, sizeof err), 0);
  cons_free(c);
  free(copy);
}

static void test_store_refuses_broken_chain(void **state) {
  fx *f = *state;
  /* a commit at height 2 whose parent is not block 1 is refused before write */
  uint8_t *b1, *b2;
  size_t l1, l2;
  uint8_t wrong[32] = {0xEE};
  tblock(1, f->cfg.genesis_hash, 1, 'T', &b1, &l1);
  tblock(2, wrong, 2, 'T', &b2, &l2);
  cons_update u;
  memset(&u, 0, sizeof u);
  u.n_commits = 1;
  uint8_t *rec;
  size_t rl;
  uint8_t cert[1] = {0};
  assert_int_equal(cons_record_make(b1, l1, cert, 1, &rec, &rl), 0);
  u.commits[0] = (cons_commit_out){.height = 1, .record = rec, .record_len = rl,
                                   .block = rec + 4, .block_len = l1};
  assert_int_equal(cons_store_apply(&f->st, &u), 0);
  free(rec);
  assert_int_equal(cons_record_make(b2, l2, cert, 1, &rec, &rl), 0);
  u.commits[0] = (cons_commit_out){.height = 2, .record = rec, .record_len = rl,
                                   .block = rec + 4, .block_len = l2};
  assert_int_equal(cons_store_apply(&f->st, &u), CONS_STORE_EARG);
  uint64_t last;
  assert_int_equal(cons_store_last_height(&f->st, &last), 0);
  assert_int_equal(last, 1);
  free(rec);
  free(b1);
  free(b2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_kill_between_persist_and_send, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_timeouts_never_conflict, setup, teardown),
      cmocka_unit_test_setup_teardown(test_evidence_stored, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_state_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_refuses_broken_chain, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
