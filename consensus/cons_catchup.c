/* cons_catchup.c: a lagging or restarted member fetches committed blocks
 * with their certificates (spec/consensus.md §4). The core never reads
 * storage: a request becomes a `serve` entry for the driver, which answers
 * from its committed records. */
#include <stdlib.h>

#include "cons_internal.h"

void cons_request_catchup(cons *c) {
  /* at most one request per rebroadcast period and height */
  if (c->last_catchup_ms && c->now_ms < c->last_catchup_ms + c->cfg.rebroadcast_ms / 2)
    return;
  if (c->peer_height_from >= c->cfg.n_members ||
      c->peer_height_from == c->cfg.self)
    return;
  uint8_t m[9];
  cons_catchup_req_encode(c->height, m);
  cons_send(c, c->peer_height_from, m, sizeof m);
  c->last_catchup_ms = c->now_ms ? c->now_ms : 1;
}

int cons_on_catchup_req(cons *c, uint32_t from, const uint8_t *msg,
                        size_t len) {
  cons_cur cur;
  cur_init(&cur, msg, len);
  (void)cur_u8(&cur);
  uint64_t h = cur_u64(&cur);
  int rc = cur_finish(&cur);
  if (rc) return rc;
  if (from >= c->cfg.n_members || from == c->cfg.self) return CONS_ENOTMEMBER;
  if (h == 0 || h >= c->height) return CONS_ESTALE; /* not committed here */
  if (c->upd.n_serve == CONS_MAX_SERVE) return CONS_EFULL;
  c->upd.serve[c->upd.n_serve++] = (cons_serve_out){from, h};
  return 0;
}

int cons_on_catchup_resp(cons *c, uint32_t from, const uint8_t *msg,
                         size_t len) {
  cons_commit_info ci;
  if (len < 1) return CONS_ETRUNC;
  int rc = cons_record_verify(&c->cfg.crypto, c->cfg.n_members, msg + 1,
                              len - 1, &ci);
  c->upd.n_verified += c->quorum; /* at least; counted for benchmarks */
  if (rc) {
    cons_seterr(c, "catch-up record from %u: %s", from, cons_strerror(rc));
    return rc;
  }
  if (ci.height != c->height) return ci.height < c->height ? CONS_ESTALE : CONS_EFUTURE;
  if (memcmp(ci.parent, c->last_hash, CONS_HASH_BYTES) != 0) return CONS_ECHAIN;
  /* 2f+1 signed it, so f+1 honest members validated it; check again anyway:
   * a certificate proves agreement, not that our validation agrees */
  rc = cons_block_valid(c, ci.block, ci.block_len);
  if (rc) {
    cons_seterr(c, "certified block at %llu fails validation here",
                (unsigned long long)ci.height);
    return rc;
  }
  cons_commit(c, ci.block, ci.block_len, ci.block_hash, NULL, 0, msg + 1,
              len - 1);
  c->last_catchup_ms = 0;
  if (c->peer_height > c->height) cons_request_catchup(c); /* keep going */
  return 0;
}
