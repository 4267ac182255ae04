/* consensus.pml: one height of the consensus protocol (spec/consensus.md §9)
 * with four members, member 3 Byzantine, rounds 0 and 1. Checked with spin
 * for agreement (no two honest members decide differently) and validity
 * (only a valid, proposed value is decided).
 *
 * Abstraction (standard for Tendermint models): a message once sent can be
 * received by anyone at any later time, so a guard reads the set of sent
 * messages; an honest member's vote is one global value per round. The
 * Byzantine member is a wildcard: at any receiver, at any time, it may supply
 * a vote for any value in any round and (as proposer of round 0) a proposal
 * of any value, including the invalid X, with any valid round. Timeouts may
 * fire at any time (full asynchrony). Persistence is modelled as atomic with
 * signing: spec/consensus.md §7 makes the implementation match that. */

#define NONE 255
#define NIL 0
#define A 1
#define B 2
#define X 3 /* a value that fails validation */
#define PROPOSE 1
#define PREVOTE 2
#define PRECOMMIT 3
#define BYZ 3
#define Q 3 /* 2f+1 */

#define proposer(r) ((r + 3) % 4) /* round 0: the Byzantine member */
#define valid(v) (v == A || v == B)

byte pv[6];  /* prevote of honest q in round r: pv[r*3+q] */
byte pc[6];  /* precommit */
byte prop_v[2];  /* proposal of an honest proposer in round r */
byte prop_vr[2]; /* its valid round, NONE = -1 */
byte decision[3];
byte rnd[3], step[3], lockedV[3], lockedR[3], validV[3], validR[3];
bool done36[3];

#define PV(r, q) pv[(r) * 3 + (q)]
#define PC(r, q) pc[(r) * 3 + (q)]
#define IS(x, v) ((x) == (v) -> 1 : 0)
/* honest votes for v, plus the Byzantine member's (a wildcard) */
#define CNT_PV(r, v) (IS(PV(r, 0), v) + IS(PV(r, 1), v) + IS(PV(r, 2), v) + 1)
#define CNT_PC(r, v) (IS(PC(r, 0), v) + IS(PC(r, 1), v) + IS(PC(r, 2), v) + 1)
#define SENT(x) ((x) != NONE -> 1 : 0)
#define ANY_PV(r) (SENT(PV(r, 0)) + SENT(PV(r, 1)) + SENT(PV(r, 2)) + 1)
#define ANY_PC(r) (SENT(PC(r, 0)) + SENT(PC(r, 1)) + SENT(PC(r, 2)) + 1)
#define IN_ROUND(r, q) ((PV(r, q) != NONE || PC(r, q) != NONE) -> 1 : 0)
#define ANY_MSG(r) (IN_ROUND(r, 0) + IN_ROUND(r, 1) + IN_ROUND(r, 2) + 1)

/* proposal (v, vr) of round r can be received */
#define HASPROP(r, v, vr) (proposer(r) == BYZ || (prop_v[r] == v && prop_vr[r] == vr))
#define HASPROP_ANY(r, v) (proposer(r) == BYZ || prop_v[r] == v)

/* StartRound(1): only round 1 is ever started here (round 0 by init) */
#define START_ROUND1 \
  rnd[p] = 1; step[p] = PROPOSE; done36[p] = 0; \
  if \
  :: proposer(1) == p && validV[p] != NONE -> prop_v[1] = validV[p]; prop_vr[1] = validR[p] \
  :: proposer(1) == p && validV[p] == NONE -> prop_vr[1] = NONE; \
     if :: prop_v[1] = A :: prop_v[1] = B fi \
  :: else -> skip \
  fi

/* Algorithm 1 line 22: a proposal with no valid round */
#define L22(v) \
  :: atomic { step[p] == PROPOSE && HASPROP(rnd[p], v, NONE) -> \
       if \
       :: valid(v) && (lockedR[p] == NONE || lockedV[p] == v) -> PV(rnd[p], p) = v \
       :: else -> PV(rnd[p], p) = NIL \
       fi; \
       step[p] = PREVOTE }

/* line 28: a proposal with valid round 0, seen in round 1, with its proof */
#define L28(v) \
  :: atomic { step[p] == PROPOSE && rnd[p] == 1 && HASPROP(1, v, 0) && CNT_PV(0, v) >= Q -> \
       if \
       :: valid(v) && (lockedR[p] == NONE || lockedR[p] <= 0 || lockedV[p] == v) -> PV(1, p) = v \
       :: else -> PV(1, p) = NIL \
       fi; \
       step[p] = PREVOTE }

/* line 36: 2f+1 prevotes for a valid proposal: lock (if in prevote), valid */
#define L36(v) \
  :: atomic { step[p] >= PREVOTE && !done36[p] && valid(v) && HASPROP_ANY(rnd[p], v) && \
              CNT_PV(rnd[p], v) >= Q -> \
       done36[p] = 1; \
       if \
       :: step[p] == PREVOTE -> lockedV[p] = v; lockedR[p] = rnd[p]; \
                                PC(rnd[p], p) = v; step[p] = PRECOMMIT \
       :: else -> skip \
       fi; \
       validV[p] = v; validR[p] = rnd[p] }

/* line 49: decide, in any round; the properties are checked right here */
#define DECIDE(v, r) \
  :: atomic { decision[p] == NONE && valid(v) && HASPROP_ANY(r, v) && CNT_PC(r, v) >= Q -> \
       decision[p] = v; \
       assert(v != X && v != NIL); \
       assert(decision[0] == NONE || decision[0] == v); \
       assert(decision[1] == NONE || decision[1] == v); \
       assert(decision[2] == NONE || decision[2] == v) }

proctype honest(byte p) {
end:
  do
  L22(A)
  L22(B)
  L22(X)
  L28(A)
  L28(B)
  L28(X)
  L36(A)
  L36(B)
  /* line 44: 2f+1 prevotes for nil */
  :: atomic { step[p] == PREVOTE && CNT_PV(rnd[p], NIL) >= Q ->
       PC(rnd[p], p) = NIL; step[p] = PRECOMMIT }
  DECIDE(A, 0)
  DECIDE(B, 0)
  DECIDE(A, 1)
  DECIDE(B, 1)
  /* line 55: f+1 members already in round 1 */
  :: atomic { rnd[p] == 0 && ANY_MSG(1) >= 2 -> START_ROUND1 }
  /* timeouts, lines 57-67 */
  :: atomic { step[p] == PROPOSE -> PV(rnd[p], p) = NIL; step[p] = PREVOTE }
  :: atomic { step[p] == PREVOTE && ANY_PV(rnd[p]) >= Q ->
       PC(rnd[p], p) = NIL; step[p] = PRECOMMIT }
  :: atomic { rnd[p] == 0 && ANY_PC(0) >= Q -> START_ROUND1 }
  od
}

init {
  atomic {
    byte i;
    for (i : 0 .. 5) { pv[i] = NONE; pc[i] = NONE }
    prop_v[0] = NONE; prop_v[1] = NONE; prop_vr[0] = NONE; prop_vr[1] = NONE;
    for (i : 0 .. 2) {
      decision[i] = NONE; rnd[i] = 0; step[i] = PROPOSE;
      lockedV[i] = NONE; lockedR[i] = NONE; validV[i] = NONE; validR[i] = NONE
    }
    run honest(0); run honest(1); run honest(2)
  }
}
