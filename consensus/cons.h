/* cons.h: the federation ledger's consensus core (Tendermint, spec/consensus.md).
 *
 * A pure state machine: no sockets, no clock, no disk, no randomness. The
 * caller feeds events (each carrying the current time) to cons_step() and
 * carries out the returned update: persist, then send, commit, wake up.
 *
 * Ownership: everything an update points to is owned by the cons object and
 * stays valid until the next cons_step() or cons_free() on that object.
 */
#ifndef CONS_H
#define CONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed bounds (spec/consensus.md §8). Every queue and set has one. */
#define CONS_MAX_MEMBERS 16
#define CONS_HASH_BYTES 32
#define CONS_SIG_BYTES 64
#define CONS_MAX_TXS 256                    /* transactions per block */
#define CONS_MAX_TX_BYTES 16384             /* one transaction */
#define CONS_MAX_BLOCK_BYTES (512u * 1024u) /* one encoded block */
#define CONS_MAX_POOL_TXS 1024              /* offered, not yet committed */
#define CONS_MAX_POOL_BYTES (2u * 1024u * 1024u)
#define CONS_ROUND_SLOTS 32 /* rounds of one height kept at once */
#define CONS_ROUND_AHEAD 4  /* how far past our round we store messages */
#define CONS_MAX_OUT 64     /* messages in one update */
#define CONS_MAX_HELD 32    /* signed messages waiting for persistence */
#define CONS_MAX_SERVE 8    /* catch-up answers in one update */
#define CONS_MAX_EVIDENCE 8 /* evidence records in one update */
#define CONS_MAX_COMMITS 4  /* blocks committed in one update */
#define CONS_FUTURE_MSGS 64 /* buffered messages for the next height */
#define CONS_FUTURE_BYTES (4u * 1024u * 1024u)
#define CONS_MAX_MSG_BYTES (CONS_MAX_BLOCK_BYTES + 1024u)
#define CONS_MAX_RECORD_BYTES (CONS_MAX_BLOCK_BYTES + 4096u)

#define CONS_BROADCAST UINT32_MAX
#define CONS_NO_TIMEOUT UINT64_MAX
#define CONS_NIL_ROUND (-1)

/* Wire sizes (spec/consensus.md §5). */
#define CONS_VOTE_BODY_BYTES 50
#define CONS_VOTE_MSG_BYTES (1 + CONS_VOTE_BODY_BYTES + CONS_SIG_BYTES)
#define CONS_PROP_BODY_BYTES 52

#define CONS_ERRORS(X)                                              \
  X(CONS_OK, 0, "ok")                                               \
  X(CONS_ETRUNC, -1, "truncated input")                             \
  X(CONS_ETRAILING, -2, "trailing bytes after message")             \
  X(CONS_ETOOBIG, -3, "length over its bound")                      \
  X(CONS_EMALFORMED, -4, "malformed field")                         \
  X(CONS_ENOTMEMBER, -5, "not a member")                            \
  X(CONS_EBADSIG, -6, "signature does not verify")                  \
  X(CONS_ESTALE, -7, "stale height or round")                       \
  X(CONS_EFUTURE, -8, "height or round too far ahead")              \
  X(CONS_EDUP, -9, "duplicate message")                             \
  X(CONS_EPROPOSER, -10, "not the proposer of this round")          \
  X(CONS_EINVALID, -11, "block fails validation")                   \
  X(CONS_ECERT, -12, "certificate does not verify")                 \
  X(CONS_ENOMEM, -13, "out of memory")                              \
  X(CONS_EFULL, -14, "bound reached, message dropped")              \
  X(CONS_ECHAIN, -15, "block does not extend our chain")            \
  X(CONS_ECONFLICT, -16, "conflicting signed message (evidence)")   \
  X(CONS_ESTATE, -17, "persisted state is corrupt")                 \
  X(CONS_EARG, -18, "bad argument")                                 \
  X(CONS_ESIGNER, -19, "signer failed")

enum cons_error {
#define CONS_ERR_ENUM(name, code, str) name = code,
  CONS_ERRORS(CONS_ERR_ENUM)
#undef CONS_ERR_ENUM
};
const char *cons_strerror(int code);

enum cons_msg_type {
  CONS_MSG_PROPOSAL = 1,
  CONS_MSG_VOTE = 2,
  CONS_MSG_CATCHUP_REQ = 3,
  CONS_MSG_CATCHUP_RESP = 4,
};
enum cons_vote_type { CONS_PREVOTE = 1, CONS_PRECOMMIT = 2 };
enum cons_step_kind {
  CONS_STEP_NEW_HEIGHT = 0, /* committed, waiting commit_wait_ms */
  CONS_STEP_PROPOSE = 1,
  CONS_STEP_PREVOTE = 2,
  CONS_STEP_PRECOMMIT = 3,
};

/* All cryptography comes from outside (spec/consensus.md §6): the core links
 * no crypto library and never sees a key.
 *
 * sign/verify return 0 on success. `msg` is a 16-byte domain tag followed by
 * the exact canonical bytes; the signer signs/verifies exactly those bytes.
 * `verify` names the member whose key must have produced `sig`.
 *
 * hashv writes SHA-256 of the concatenation of parts[0..nparts) to `out`
 * (a part may have len 0; nparts may be 0). Block hashes are agreed across
 * the federation, so it must be SHA-256 and nothing else. It cannot fail: an
 * implementation whose library reports an error must abort the process
 * rather than return a wrong digest. Parts let the core hash a domain tag and
 * a block of up to CONS_MAX_BLOCK_BYTES without copying them together. */
typedef struct cons_iov {
  const uint8_t *data;
  size_t len;
} cons_iov;

typedef struct cons_crypto {
  void *ctx;
  int (*sign)(void *ctx, const uint8_t *msg, size_t len,
              uint8_t sig[CONS_SIG_BYTES]);
  int (*verify)(void *ctx, uint32_t member, const uint8_t *msg, size_t len,
                const uint8_t sig[CONS_SIG_BYTES]);
  void (*hashv)(void *ctx, const cons_iov *parts, size_t nparts,
                uint8_t out[CONS_HASH_BYTES]);
} cons_crypto;

/* Application validation of one ledger transaction at a height: 0 = valid. */
typedef int (*cons_validate_cb)(void *ctx, uint64_t height, const uint8_t *tx,
                                size_t len);

typedef struct cons_config {
  uint32_t n_members; /* n = 3f+1 recommended; equal weights */
  uint32_t self;      /* our member index, < n_members */
  cons_crypto crypto; /* sign, verify and hashv all required */
  cons_validate_cb validate_cb;
  void *validate_ctx;
  uint8_t genesis_hash[CONS_HASH_BYTES]; /* parent of height 1 */
  uint32_t timeout_propose_ms, timeout_propose_delta_ms;
  uint32_t timeout_vote_ms, timeout_vote_delta_ms; /* prevote + precommit */
  uint32_t commit_wait_ms;                         /* pause between heights */
  uint32_t rebroadcast_ms; /* resend own votes, ask for catch-up */
  uint32_t max_block_txs;  /* <= CONS_MAX_TXS; 0 means CONS_MAX_TXS */
} cons_config;

typedef enum cons_event_type {
  CONS_EV_START = 1,     /* once, after cons_init */
  CONS_EV_MSG = 2,       /* data/len from transport peer `from` */
  CONS_EV_TIMEOUT = 3,   /* the deadline of the last update has passed */
  CONS_EV_TXS = 4,       /* one transaction offered, data/len */
  CONS_EV_PERSISTED = 5, /* the state record `persisted_seq` is durable */
} cons_event_type;

typedef struct cons_event {
  cons_event_type type;
  uint64_t now_ms;
  uint32_t from;
  const uint8_t *data;
  size_t len;
  uint64_t persisted_seq;
} cons_event;

typedef struct cons_msg_out {
  uint32_t to; /* member index or CONS_BROADCAST (all but self) */
  const uint8_t *data;
  size_t len;
} cons_msg_out;

typedef struct cons_commit_out {
  uint64_t height;
  uint8_t block_hash[CONS_HASH_BYTES];
  const uint8_t *record; /* block + certificate: store and serve this */
  size_t record_len;
  const uint8_t *block; /* points into record */
  size_t block_len;
} cons_commit_out;

typedef struct cons_serve_out {
  uint32_t to;
  uint64_t height; /* load that committed record, send cons_catchup_resp_encode */
} cons_serve_out;

typedef struct cons_evidence_out {
  uint64_t height;
  uint32_t round;
  uint8_t kind; /* CONS_MSG_PROPOSAL, or CONS_PREVOTE/CONS_PRECOMMIT + 16 */
  uint32_t member;
  const uint8_t *data; /* both signed messages, spec/consensus.md §5.6 */
  size_t len;
} cons_evidence_out;

/* What the driver must do, in this order (spec/consensus.md §7):
 * 1. if state != NULL: write commits, evidence and state in one durable
 *    transaction, then feed CONS_EV_PERSISTED with persisted_seq = state_seq.
 *    Signed messages produced by this step are held inside the core and come
 *    out in the update of that PERSISTED event: the driver cannot send a vote
 *    before the vote's state is on disk.
 * 2. send msgs (they never need persistence first);
 * 3. answer serve requests from storage;
 * 4. feed CONS_EV_TIMEOUT at next_timeout_ms. */
typedef struct cons_update {
  const uint8_t *state;
  size_t state_len;
  uint64_t state_seq;
  cons_commit_out commits[CONS_MAX_COMMITS];
  size_t n_commits;
  cons_evidence_out evidence[CONS_MAX_EVIDENCE];
  size_t n_evidence;
  cons_msg_out msgs[CONS_MAX_OUT];
  size_t n_msgs;
  cons_serve_out serve[CONS_MAX_SERVE];
  size_t n_serve;
  uint64_t next_timeout_ms;
  uint32_t n_signed; /* signatures made in this step (for benchmarks) */
  uint32_t n_verified;
} cons_update;

typedef struct cons cons;

/* state: a record from a previous update (restart), or NULL for genesis. */
int cons_init(cons **out, const cons_config *cfg, const uint8_t *state,
              size_t state_len, char *err, size_t err_len);
void cons_free(cons *c);
/* Returns 0, or a negative code when the event's input was rejected (the
 * update is still valid and must still be carried out). */
int cons_step(cons *c, const cons_event *ev, const cons_update **out);
const char *cons_errmsg(const cons *c);
uint64_t cons_height(const cons *c); /* the height being decided */
uint32_t cons_round(const cons *c);
uint8_t cons_step_kind(const cons *c);
int32_t cons_locked_round(const cons *c);
uint32_t cons_proposer(uint32_t n_members, uint64_t height, uint32_t round);

/* ---- Encoding (spec/consensus.md §5), used by tests, sim and node ---- */
typedef struct cons_vote {
  uint8_t type;
  uint64_t height;
  uint32_t round;
  uint32_t voter;
  bool nil;
  uint8_t hash[CONS_HASH_BYTES];
  const uint8_t *body; /* CONS_VOTE_BODY_BYTES, inside the decoded message */
  const uint8_t *sig;
} cons_vote;

typedef struct cons_proposal {
  uint64_t height;
  uint32_t round;
  int32_t pol_round;
  uint32_t proposer;
  uint8_t block_hash[CONS_HASH_BYTES];
  const uint8_t *body;
  const uint8_t *sig;
  const uint8_t *block;
  size_t block_len;
} cons_proposal;

typedef struct cons_block {
  uint64_t height;
  uint8_t parent[CONS_HASH_BYTES];
  uint32_t proposer;
  uint32_t n_txs;
  const uint8_t *tx[CONS_MAX_TXS];
  uint32_t tx_len[CONS_MAX_TXS];
} cons_block;

typedef struct cons_commit_info {
  uint64_t height;
  uint32_t round;
  uint8_t block_hash[CONS_HASH_BYTES];
  uint8_t parent[CONS_HASH_BYTES];
  const uint8_t *block;
  size_t block_len;
  uint32_t n_sigs;
} cons_commit_info;

/* SHA-256(`cb/cons/blck/v1\0` || block) through cr->hashv. */
void cons_block_hash(const cons_crypto *cr, const uint8_t *block, size_t len,
                     uint8_t out[CONS_HASH_BYTES]);

/* Build a signed vote message (CONS_VOTE_MSG_BYTES into out). hash NULL = nil. */
int cons_vote_make(const cons_crypto *cr, uint8_t type, uint64_t height,
                   uint32_t round, uint32_t voter, const uint8_t *hash,
                   uint8_t out[CONS_VOTE_MSG_BYTES]);
int cons_vote_decode(const uint8_t *msg, size_t len, cons_vote *out);
/* Verify a decoded vote's signature against the bytes it carries. */
int cons_vote_verify(const cons_crypto *cr, const cons_vote *v);

/* Build a block; *out is malloc'd. */
int cons_block_make(uint64_t height, const uint8_t parent[CONS_HASH_BYTES],
                    uint32_t proposer, const uint8_t *const *txs,
                    const size_t *tx_lens, size_t n_txs, uint8_t **out,
                    size_t *out_len);
int cons_block_decode(const uint8_t *data, size_t len, cons_block *out);

/* Build a signed proposal message carrying block; *out is malloc'd. */
int cons_proposal_make(const cons_crypto *cr, uint64_t height, uint32_t round,
                       int32_t pol_round, uint32_t proposer,
                       const uint8_t *block, size_t block_len, uint8_t **out,
                       size_t *out_len);
/* Also checks that the carried block hashes (cr->hashv) to the signed
 * block_hash; the signature itself is checked by cons_proposal_verify. */
int cons_proposal_decode(const cons_crypto *cr, const uint8_t *msg, size_t len,
                         cons_proposal *out);
int cons_proposal_verify(const cons_crypto *cr, const cons_proposal *p);

/* Build a certificate from signed precommit messages (each
 * CONS_VOTE_MSG_BYTES); *out is malloc'd. Entries are sorted by voter. */
int cons_cert_make(uint64_t height, uint32_t round,
                   const uint8_t hash[CONS_HASH_BYTES],
                   const uint8_t *const *precommits, size_t n, uint8_t **out,
                   size_t *out_len);
/* Check a certificate offline: 2f+1 distinct members' valid precommits for
 * (height, round, hash). n_members gives f. */
int cons_cert_verify(const cons_crypto *cr, uint32_t n_members,
                     const uint8_t *cert, size_t len, uint64_t height,
                     const uint8_t hash[CONS_HASH_BYTES], uint32_t *round_out,
                     uint32_t *n_sigs_out);
/* A commit record = block + certificate; verify it entirely offline. */
int cons_record_make(const uint8_t *block, size_t block_len,
                     const uint8_t *cert, size_t cert_len, uint8_t **out,
                     size_t *out_len);
int cons_record_verify(const cons_crypto *cr, uint32_t n_members,
                       const uint8_t *record, size_t len,
                       cons_commit_info *out);

int cons_catchup_req_encode(uint64_t height, uint8_t out[9]);
/* Wrap a stored commit record as a CATCHUP_RESP message; *out is malloc'd. */
int cons_catchup_resp_encode(const uint8_t *record, size_t len, uint8_t **out,
                             size_t *out_len);

#endif
