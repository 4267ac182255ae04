/* Replay cache: a ring of entries in insertion order (eviction from the
 * head once expired) and a chained hash index over the same slots. Keys are
 * SHA-256(requester || 0x00 || nonce), so the table's hash is uniform and
 * no input can aim collisions at one bucket. */
#include "replay.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#define NIL UINT32_MAX

typedef struct entry {
  uint8_t key[32];
  int64_t expires_ms; /* request time + skew */
  uint32_t next;      /* hash chain */
} entry_t;

struct replay_cache {
  int64_t skew_ms;
  size_t cap;         /* ring slots = max entries */
  size_t head, count; /* ring: oldest at head */
  entry_t *ring;
  uint32_t *buckets;
  size_t nbuckets;    /* power of two >= cap */
};

#define REPLAY_STR_(name, str) str,
static const char *const replay_errstr[] = {REPLAY_ERRORS(REPLAY_STR_)};
#undef REPLAY_STR_

const char *replay_strerror(int err) {
  if (err < 0) err = -err;
  if (err >= REPLAY_ERR_COUNT_) return "unknown replay error";
  return replay_errstr[err];
}

int replay_init(replay_cache_t **out, int64_t skew_ms, size_t max_entries) {
  if (!out || skew_ms <= 0 || skew_ms > 86400000 || max_entries == 0 || max_entries >= NIL) return -REPLAY_E_ARG;
  replay_cache_t *rc = calloc(1, sizeof *rc);
  if (!rc) return -REPLAY_E_NOMEM;
  rc->skew_ms = skew_ms;
  rc->cap = max_entries;
  rc->nbuckets = 1;
  while (rc->nbuckets < max_entries) rc->nbuckets <<= 1;
  rc->ring = calloc(max_entries, sizeof *rc->ring);
  rc->buckets = malloc(rc->nbuckets * sizeof *rc->buckets);
  if (!rc->ring || !rc->buckets) {
    replay_free(rc);
    return -REPLAY_E_NOMEM;
  }
  for (size_t i = 0; i < rc->nbuckets; i++) rc->buckets[i] = NIL;
  *out = rc;
  return 0;
}

void replay_free(replay_cache_t *rc) {
  if (!rc) return;
  free(rc->ring);
  free(rc->buckets);
  free(rc);
}

size_t replay_count(const replay_cache_t *rc) { return rc->count; }

static size_t bucket_of(const replay_cache_t *rc, const uint8_t key[32]) {
  uint64_t h;
  memcpy(&h, key, sizeof h);
  return (size_t)(h & (rc->nbuckets - 1));
}

static void unlink_slot(replay_cache_t *rc, uint32_t slot) {
  uint32_t *link = &rc->buckets[bucket_of(rc, rc->ring[slot].key)];
  while (*link != slot) {
    assert(*link != NIL);
    link = &rc->ring[*link].next;
  }
  *link = rc->ring[slot].next;
}

/* Drops expired entries from the head of the ring. An entry at the head
 * that has not expired keeps later (possibly expired) ones alive a little
 * longer; they still leave within 2 * skew of insertion. */
static void evict(replay_cache_t *rc, int64_t now_ms) {
  while (rc->count && rc->ring[rc->head].expires_ms < now_ms) {
    unlink_slot(rc, (uint32_t)rc->head);
    rc->head = (rc->head + 1) % rc->cap;
    rc->count--;
  }
}

int replay_check(replay_cache_t *rc, const char *requester, const uint8_t *nonce,
                 size_t nonce_len, int64_t request_ms, int64_t now_ms) {
  if (!rc || !requester || !nonce) return -REPLAY_E_ARG;
  size_t rlen = strlen(requester);
  if (rlen == 0 || rlen > REPLAY_REQUESTER_MAX_BYTES) return -REPLAY_E_ARG;
  if (nonce_len < REPLAY_NONCE_MIN_BYTES || nonce_len > REPLAY_NONCE_MAX_BYTES)
    return -REPLAY_E_NONCE;
  /* now_ms is ours and sane; request_ms is hostile: compare it against
   * bounds computed from now so nothing overflows. */
  assert(now_ms > INT64_MIN / 2 && now_ms < INT64_MAX / 2);
  if (request_ms < now_ms - rc->skew_ms) return -REPLAY_E_STALE;
  if (request_ms > now_ms + rc->skew_ms) return -REPLAY_E_FUTURE;

  evict(rc, now_ms);
  uint8_t buf[REPLAY_REQUESTER_MAX_BYTES + 1 + REPLAY_NONCE_MAX_BYTES], key[32];
  memcpy(buf, requester, rlen);
  buf[rlen] = 0;
  memcpy(buf + rlen + 1, nonce, nonce_len);
  SHA256(buf, rlen + 1 + nonce_len, key);

  size_t b = bucket_of(rc, key);
  for (uint32_t s = rc->buckets[b]; s != NIL; s = rc->ring[s].next)
    if (memcmp(rc->ring[s].key, key, sizeof key) == 0) return -REPLAY_E_REPLAYED;
  if (rc->count == rc->cap) return -REPLAY_E_FULL;

  uint32_t slot = (uint32_t)((rc->head + rc->count) % rc->cap);
  entry_t *e = &rc->ring[slot];
  memcpy(e->key, key, sizeof key);
  e->expires_ms = request_ms + rc->skew_ms;
  e->next = rc->buckets[b];
  rc->buckets[b] = slot;
  rc->count++;
  return 0;
}
