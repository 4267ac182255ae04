/* Replay and clock-skew guard for signed requests (spec/protocol.md
 * "Freshness"). Pure: the caller passes the current time; no clock, no I/O.
 *
 * A request dated t is accepted only if |now - t| <= skew_ms and its
 * (requester, nonce) pair has not been seen. A seen pair must be remembered
 * for as long as a request carrying it could still pass the time check, that
 * is until t + skew_ms; after that the time check refuses it on its own, so
 * the entry is dropped. Entries leave in insertion order; each is kept at
 * most 2 * skew_ms after insertion (t can be up to skew_ms ahead of now).
 *
 * Memory is bounded by max_entries. When the cache is full of entries that
 * may still matter, a new request is REFUSED (REPLAY_E_FULL), never admitted
 * by forgetting an unexpired nonce: forgetting would let anyone who can
 * flood the node replay a captured request. A refusal is a retryable error
 * to the honest requester; size max_entries for the peak request rate times
 * 2 * skew_ms. */
#ifndef CB_REPLAY_H
#define CB_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_NONCE_MIN_BYTES 16u
#define REPLAY_NONCE_MAX_BYTES 64u
#define REPLAY_REQUESTER_MAX_BYTES 63u

#define REPLAY_ERRORS(X)                                                  \
  X(REPLAY_OK, "ok")                                                      \
  X(REPLAY_E_ARG, "invalid argument")                                     \
  X(REPLAY_E_NOMEM, "out of memory")                                      \
  X(REPLAY_E_NONCE, "nonce length outside 16-64 bytes")                   \
  X(REPLAY_E_STALE, "request time is older than the allowed clock skew")  \
  X(REPLAY_E_FUTURE, "request time is ahead of the allowed clock skew")   \
  X(REPLAY_E_REPLAYED, "nonce already used (replayed request)")           \
  X(REPLAY_E_FULL, "replay cache full, retry later")

#define REPLAY_ENUM_(name, str) name,
enum replay_err { REPLAY_ERRORS(REPLAY_ENUM_) REPLAY_ERR_COUNT_ };
#undef REPLAY_ENUM_

const char *replay_strerror(int err);

typedef struct replay_cache replay_cache_t;

int replay_init(replay_cache_t **out, int64_t skew_ms, size_t max_entries);
void replay_free(replay_cache_t *rc);

/* Checks a request (requester id, nonce, its time) at now_ms and, if
 * accepted, remembers it. Refusals change nothing. */
int replay_check(replay_cache_t *rc, const char *requester, const uint8_t *nonce,
                 size_t nonce_len, int64_t request_ms, int64_t now_ms);

/* Entries currently held (for metrics and tests). */
size_t replay_count(const replay_cache_t *rc);

#endif
