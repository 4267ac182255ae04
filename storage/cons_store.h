/* cons_store.h: LMDB persistence for the consensus core (spec/consensus.md §7).
 *
 * Works on an environment the caller has opened (the node's; it must allow
 * three more named databases). Three databases of our own:
 *   cons_state     key "state"          -> the latest state record
 *   cons_blocks    key height (8 bytes, big-endian) -> commit record
 *   cons_evidence  key height|round|kind|member     -> both signed messages
 * cons_store_apply() writes one update's commits, evidence and state in one
 * durable write transaction; only after it returns 0 may the driver feed
 * CONS_EV_PERSISTED to the core. */
#ifndef CONS_STORE_H
#define CONS_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "cons.h"

#define CONS_STORE_ERRORS(X)                                 \
  X(CONS_STORE_OK, 0, "ok")                                  \
  X(CONS_STORE_ENOTFOUND, -1, "not found")                   \
  X(CONS_STORE_ELMDB, -2, "lmdb error")                      \
  X(CONS_STORE_ECORRUPT, -3, "stored consensus data corrupt") \
  X(CONS_STORE_ETOOBIG, -4, "record larger than the buffer")  \
  X(CONS_STORE_EARG, -5, "bad argument")

enum cons_store_error {
#define CONS_STORE_ENUM(name, code, str) name = code,
  CONS_STORE_ERRORS(CONS_STORE_ENUM)
#undef CONS_STORE_ENUM
};
const char *cons_store_strerror(int code);

typedef struct cons_store {
  MDB_env *env;
  MDB_dbi state, blocks, evidence;
  char err[192];
} cons_store;

int cons_store_open(cons_store *s, MDB_env *env);
void cons_store_close(cons_store *s);
/* Persist what an update asks for (commits, evidence, state) atomically.
 * A commit record is checked (height, parent chain) before it is written. */
int cons_store_apply(cons_store *s, const cons_update *u);
/* The last state record; *out is malloc'd. CONS_STORE_ENOTFOUND on a fresh
 * environment. */
int cons_store_load_state(cons_store *s, uint8_t **out, size_t *len);
/* A committed record by height; *out is malloc'd. */
int cons_store_get_block(cons_store *s, uint64_t height, uint8_t **out,
                         size_t *len);
/* Highest committed height (0 when none). */
int cons_store_last_height(cons_store *s, uint64_t *height);
int cons_store_evidence_count(cons_store *s, size_t *count);

/* SHA-256 over parts through OpenSSL (EVP), in the shape of
 * cons_crypto.hashv: a driver linked with OpenSSL plugs it into its
 * cons_crypto. ctx is unused. Aborts if OpenSSL reports an error (the core's
 * hashv may not fail, spec/consensus.md §6). The store uses it itself to
 * check that a commit extends the block below it. */
void cons_store_hashv(void *ctx, const cons_iov *parts, size_t nparts,
                      uint8_t out[CONS_HASH_BYTES]);

#endif
