/* cons_codec.c: the canonical binary encoding of consensus messages, blocks,
 * certificates and commit records (spec/consensus.md §5).
 *
 * Every decoder reads through a cons_cur that fails closed, checks each
 * length against its bound and the bytes present, demands canonical values
 * (nil votes carry a zero hash, no trailing bytes), and never allocates.
 * Signatures cover a 16-byte domain tag and the body bytes exactly as they
 * were received: verification never re-serialises. */
#include <stdlib.h>

#include "cons_internal.h"

const uint8_t cons_tag_vote[16] = "cb/cons/vote/v1";
const uint8_t cons_tag_prop[16] = "cb/cons/prop/v1";
const uint8_t cons_tag_block[16] = "cb/cons/blck/v1";

#define CERT_VERSION 1
#define BLOCK_VERSION 1
#define POL_NIL 0xFFFFFFFFu

static const char *const errstr[] = {
#define CONS_ERR_STR(name, code, str) [-(code)] = str,
    CONS_ERRORS(CONS_ERR_STR)
#undef CONS_ERR_STR
};

const char *cons_strerror(int code) {
  if (code > 0 || (size_t)-code >= sizeof errstr / sizeof errstr[0])
    return "unknown consensus error";
  return errstr[-code];
}

static int sign_tagged(const cons_crypto *cr, const uint8_t tag[16],
                       const uint8_t *body, size_t len, uint8_t *sig) {
  uint8_t buf[16 + CONS_PROP_BODY_BYTES];
  assert(len <= CONS_PROP_BODY_BYTES);
  memcpy(buf, tag, 16);
  memcpy(buf + 16, body, len);
  return cr->sign(cr->ctx, buf, 16 + len, sig) ? CONS_ESIGNER : 0;
}

static int verify_tagged(const cons_crypto *cr, uint32_t member,
                         const uint8_t tag[16], const uint8_t *body,
                         size_t len, const uint8_t *sig) {
  uint8_t buf[16 + CONS_PROP_BODY_BYTES];
  assert(len <= CONS_PROP_BODY_BYTES);
  memcpy(buf, tag, 16);
  memcpy(buf + 16, body, len);
  return cr->verify(cr->ctx, member, buf, 16 + len, sig) ? CONS_EBADSIG : 0;
}

static bool all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

/* ---- votes ---- */
int cons_vote_make(const cons_crypto *cr, uint8_t type, uint64_t height,
                   uint32_t round, uint32_t voter, const uint8_t *hash,
                   uint8_t out[CONS_VOTE_MSG_BYTES]) {
  if (type != CONS_PREVOTE && type != CONS_PRECOMMIT) return CONS_EARG;
  uint8_t *p = out;
  p = put_u8(p, CONS_MSG_VOTE);
  uint8_t *body = p;
  p = put_u8(p, type);
  p = put_u64(p, height);
  p = put_u32(p, round);
  p = put_u32(p, voter);
  p = put_u8(p, hash ? 1 : 0);
  if (hash)
    p = put_bytes(p, hash, CONS_HASH_BYTES);
  else {
    memset(p, 0, CONS_HASH_BYTES);
    p += CONS_HASH_BYTES;
  }
  assert(p - body == CONS_VOTE_BODY_BYTES);
  return sign_tagged(cr, cons_tag_vote, body, CONS_VOTE_BODY_BYTES, p);
}

int cons_vote_decode(const uint8_t *msg, size_t len, cons_vote *v) {
  cons_cur c;
  if (len != CONS_VOTE_MSG_BYTES) /* accepted only at its exact size */
    return len < CONS_VOTE_MSG_BYTES ? CONS_ETRUNC : CONS_ETRAILING;
  cur_init(&c, msg, len);
  if (cur_u8(&c) != CONS_MSG_VOTE) return CONS_EMALFORMED;
  v->body = c.p;
  v->type = cur_u8(&c);
  v->height = cur_u64(&c);
  v->round = cur_u32(&c);
  v->voter = cur_u32(&c);
  uint8_t has = cur_u8(&c);
  const uint8_t *h = cur_take(&c, CONS_HASH_BYTES);
  v->sig = cur_take(&c, CONS_SIG_BYTES);
  int rc = cur_finish(&c);
  if (rc) return rc;
  if (v->type != CONS_PREVOTE && v->type != CONS_PRECOMMIT)
    return CONS_EMALFORMED;
  if (has > 1 || (has == 0 && !all_zero(h, CONS_HASH_BYTES)))
    return CONS_EMALFORMED;
  if (v->height == 0 || v->round > INT32_MAX) return CONS_EMALFORMED;
  v->nil = has == 0;
  memcpy(v->hash, h, CONS_HASH_BYTES);
  return 0;
}

int cons_vote_verify(const cons_crypto *cr, const cons_vote *v) {
  return verify_tagged(cr, v->voter, cons_tag_vote, v->body,
                       CONS_VOTE_BODY_BYTES, v->sig);
}

/* ---- blocks ---- */
void cons_block_hash(const cons_crypto *cr, const uint8_t *block, size_t len,
                     uint8_t out[CONS_HASH_BYTES]) {
  const cons_iov parts[2] = {{cons_tag_block, 16}, {block, len}};
  cr->hashv(cr->ctx, parts, 2, out);
}

int cons_block_make(uint64_t height, const uint8_t parent[CONS_HASH_BYTES],
                    uint32_t proposer, const uint8_t *const *txs,
                    const size_t *tx_lens, size_t n_txs, uint8_t **out,
                    size_t *out_len) {
  if (n_txs > CONS_MAX_TXS || height == 0) return CONS_ETOOBIG;
  size_t total = 1 + 8 + CONS_HASH_BYTES + 4 + 4;
  for (size_t i = 0; i < n_txs; i++) {
    if (tx_lens[i] == 0 || tx_lens[i] > CONS_MAX_TX_BYTES) return CONS_ETOOBIG;
    total += 4 + tx_lens[i];
  }
  if (total > CONS_MAX_BLOCK_BYTES) return CONS_ETOOBIG;
  uint8_t *b = malloc(total), *p = b;
  if (!b) return CONS_ENOMEM;
  p = put_u8(p, BLOCK_VERSION);
  p = put_u64(p, height);
  p = put_bytes(p, parent, CONS_HASH_BYTES);
  p = put_u32(p, proposer);
  p = put_u32(p, (uint32_t)n_txs);
  for (size_t i = 0; i < n_txs; i++) {
    p = put_u32(p, (uint32_t)tx_lens[i]);
    p = put_bytes(p, txs[i], tx_lens[i]);
  }
  assert((size_t)(p - b) == total);
  *out = b;
  *out_len = total;
  return 0;
}

int cons_block_decode(const uint8_t *data, size_t len, cons_block *b) {
  cons_cur c;
  if (len > CONS_MAX_BLOCK_BYTES) return CONS_ETOOBIG;
  cur_init(&c, data, len);
  if (cur_u8(&c) != BLOCK_VERSION) return c.err ? c.err : CONS_EMALFORMED;
  b->height = cur_u64(&c);
  const uint8_t *parent = cur_take(&c, CONS_HASH_BYTES);
  b->proposer = cur_u32(&c);
  b->n_txs = cur_u32(&c);
  if (c.err) return c.err;
  if (b->n_txs > CONS_MAX_TXS) return CONS_ETOOBIG;
  if (b->height == 0 || b->proposer >= CONS_MAX_MEMBERS)
    return CONS_EMALFORMED;
  memcpy(b->parent, parent, CONS_HASH_BYTES);
  for (uint32_t i = 0; i < b->n_txs; i++) {
    size_t n;
    b->tx[i] = cur_lenbytes(&c, CONS_MAX_TX_BYTES, &n);
    if (c.err) return c.err;
    if (n == 0) return CONS_EMALFORMED;
    b->tx_len[i] = (uint32_t)n;
  }
  return cur_finish(&c);
}

/* ---- proposals ---- */
int cons_proposal_make(const cons_crypto *cr, uint64_t height, uint32_t round,
                       int32_t pol_round, uint32_t proposer,
                       const uint8_t *block, size_t block_len, uint8_t **out,
                       size_t *out_len) {
  if (!cr || !cr->sign || !cr->hashv) return CONS_EARG;
  if (block_len > CONS_MAX_BLOCK_BYTES) return CONS_ETOOBIG;
  if (pol_round < CONS_NIL_ROUND || (pol_round >= 0 && (uint32_t)pol_round >= round))
    return CONS_EARG;
  size_t total = 1 + CONS_PROP_BODY_BYTES + CONS_SIG_BYTES + 4 + block_len;
  uint8_t *m = malloc(total), *p = m;
  if (!m) return CONS_ENOMEM;
  p = put_u8(p, CONS_MSG_PROPOSAL);
  uint8_t *body = p;
  p = put_u64(p, height);
  p = put_u32(p, round);
  p = put_u32(p, pol_round < 0 ? POL_NIL : (uint32_t)pol_round);
  p = put_u32(p, proposer);
  cons_block_hash(cr, block, block_len, p);
  p += CONS_HASH_BYTES;
  int rc = sign_tagged(cr, cons_tag_prop, body, CONS_PROP_BODY_BYTES, p);
  if (rc) {
    free(m);
    return rc;
  }
  p += CONS_SIG_BYTES;
  p = put_u32(p, (uint32_t)block_len);
  p = put_bytes(p, block, block_len);
  assert((size_t)(p - m) == total);
  *out = m;
  *out_len = total;
  return 0;
}

int cons_proposal_decode(const cons_crypto *cr, const uint8_t *msg, size_t len,
                         cons_proposal *pr) {
  cons_cur c;
  if (!cr || !cr->hashv) return CONS_EARG;
  if (len > CONS_MAX_MSG_BYTES) return CONS_ETOOBIG;
  cur_init(&c, msg, len);
  if (cur_u8(&c) != CONS_MSG_PROPOSAL) return c.err ? c.err : CONS_EMALFORMED;
  pr->body = c.p;
  pr->height = cur_u64(&c);
  pr->round = cur_u32(&c);
  uint32_t pol = cur_u32(&c);
  pr->proposer = cur_u32(&c);
  const uint8_t *h = cur_take(&c, CONS_HASH_BYTES);
  pr->sig = cur_take(&c, CONS_SIG_BYTES);
  pr->block = cur_lenbytes(&c, CONS_MAX_BLOCK_BYTES, &pr->block_len);
  int rc = cur_finish(&c);
  if (rc) return rc;
  if (pr->height == 0 || pr->round > INT32_MAX) return CONS_EMALFORMED;
  if (pol != POL_NIL && pol >= pr->round) return CONS_EMALFORMED;
  pr->pol_round = pol == POL_NIL ? CONS_NIL_ROUND : (int32_t)pol;
  memcpy(pr->block_hash, h, CONS_HASH_BYTES);
  /* the signed hash must be the hash of the carried block */
  uint8_t real[CONS_HASH_BYTES];
  cons_block_hash(cr, pr->block, pr->block_len, real);
  if (memcmp(real, h, CONS_HASH_BYTES) != 0) return CONS_EMALFORMED;
  return 0;
}

int cons_proposal_verify(const cons_crypto *cr, const cons_proposal *p) {
  return verify_tagged(cr, p->proposer, cons_tag_prop, p->body,
                       CONS_PROP_BODY_BYTES, p->sig);
}

/* ---- certificates ---- */
static int cmp_voter(const void *a, const void *b) {
  const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
  cons_vote vx, vy;
  (void)cons_vote_decode(x, CONS_VOTE_MSG_BYTES, &vx);
  (void)cons_vote_decode(y, CONS_VOTE_MSG_BYTES, &vy);
  return vx.voter < vy.voter ? -1 : vx.voter > vy.voter;
}

int cons_cert_make(uint64_t height, uint32_t round,
                   const uint8_t hash[CONS_HASH_BYTES],
                   const uint8_t *const *precommits, size_t n, uint8_t **out,
                   size_t *out_len) {
  if (n == 0 || n > CONS_MAX_MEMBERS) return CONS_EARG;
  const uint8_t *sorted[CONS_MAX_MEMBERS];
  memcpy(sorted, precommits, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_voter);
  size_t total = 1 + 8 + 4 + CONS_HASH_BYTES + 4 + n * CONS_VOTE_MSG_BYTES;
  uint8_t *m = malloc(total), *p = m;
  if (!m) return CONS_ENOMEM;
  p = put_u8(p, CERT_VERSION);
  p = put_u64(p, height);
  p = put_u32(p, round);
  p = put_bytes(p, hash, CONS_HASH_BYTES);
  p = put_u32(p, (uint32_t)n);
  for (size_t i = 0; i < n; i++) p = put_bytes(p, sorted[i], CONS_VOTE_MSG_BYTES);
  assert((size_t)(p - m) == total);
  *out = m;
  *out_len = total;
  return 0;
}

int cons_cert_verify(const cons_crypto *cr, uint32_t n_members,
                     const uint8_t *cert, size_t len, uint64_t height,
                     const uint8_t hash[CONS_HASH_BYTES], uint32_t *round_out,
                     uint32_t *n_sigs_out) {
  cons_cur c;
  if (!cr || !cr->verify) return CONS_EARG;
  if (n_members == 0 || n_members > CONS_MAX_MEMBERS) return CONS_EARG;
  uint32_t quorum = 2 * ((n_members - 1) / 3) + 1;
  cur_init(&c, cert, len);
  if (cur_u8(&c) != CERT_VERSION) return c.err ? c.err : CONS_EMALFORMED;
  uint64_t h = cur_u64(&c);
  uint32_t round = cur_u32(&c);
  const uint8_t *ch = cur_take(&c, CONS_HASH_BYTES);
  uint32_t n = cur_u32(&c);
  if (c.err) return c.err;
  if (n > n_members) return CONS_ETOOBIG;
  if (h != height || memcmp(ch, hash, CONS_HASH_BYTES) != 0) return CONS_ECERT;
  /* cheap structural checks on every entry before any signature */
  cons_vote v[CONS_MAX_MEMBERS];
  int64_t prev = -1;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = cur_take(&c, CONS_VOTE_MSG_BYTES);
    if (!e) return c.err;
    int rc = cons_vote_decode(e, CONS_VOTE_MSG_BYTES, &v[i]);
    if (rc) return rc;
    if (v[i].type != CONS_PRECOMMIT || v[i].nil || v[i].height != height ||
        v[i].round != round || memcmp(v[i].hash, hash, CONS_HASH_BYTES) != 0)
      return CONS_ECERT;
    if (v[i].voter >= n_members) return CONS_ENOTMEMBER;
    /* strictly ascending voters: a repeated signer is rejected */
    if ((int64_t)v[i].voter <= prev) return CONS_ECERT;
    prev = v[i].voter;
  }
  int rc = cur_finish(&c);
  if (rc) return rc;
  if (n < quorum) return CONS_ECERT;
  for (uint32_t i = 0; i < n; i++)
    if (cons_vote_verify(cr, &v[i])) return CONS_EBADSIG;
  if (round_out) *round_out = round;
  if (n_sigs_out) *n_sigs_out = n;
  return 0;
}

/* ---- commit records: u32 block_len, block, u32 cert_len, cert ---- */
int cons_record_make(const uint8_t *block, size_t block_len,
                     const uint8_t *cert, size_t cert_len, uint8_t **out,
                     size_t *out_len) {
  size_t total = 8 + block_len + cert_len;
  if (block_len > CONS_MAX_BLOCK_BYTES || total > CONS_MAX_RECORD_BYTES)
    return CONS_ETOOBIG;
  uint8_t *m = malloc(total), *p = m;
  if (!m) return CONS_ENOMEM;
  p = put_u32(p, (uint32_t)block_len);
  p = put_bytes(p, block, block_len);
  p = put_u32(p, (uint32_t)cert_len);
  p = put_bytes(p, cert, cert_len);
  *out = m;
  *out_len = total;
  return 0;
}

int cons_record_verify(const cons_crypto *cr, uint32_t n_members,
                       const uint8_t *record, size_t len,
                       cons_commit_info *out) {
  cons_cur c;
  size_t blen, clen;
  if (!cr || !cr->verify || !cr->hashv) return CONS_EARG;
  if (len > CONS_MAX_RECORD_BYTES) return CONS_ETOOBIG;
  cur_init(&c, record, len);
  const uint8_t *block = cur_lenbytes(&c, CONS_MAX_BLOCK_BYTES, &blen);
  const uint8_t *cert = cur_lenbytes(&c, CONS_MAX_RECORD_BYTES, &clen);
  int rc = cur_finish(&c);
  if (rc) return rc;
  cons_block *b = malloc(sizeof *b);
  if (!b) return CONS_ENOMEM;
  rc = cons_block_decode(block, blen, b);
  if (rc) goto done;
  out->height = b->height;
  memcpy(out->parent, b->parent, CONS_HASH_BYTES);
  out->block = block;
  out->block_len = blen;
  cons_block_hash(cr, block, blen, out->block_hash);
  rc = cons_cert_verify(cr, n_members, cert, clen, b->height, out->block_hash,
                        &out->round, &out->n_sigs);
done:
  free(b);
  return rc;
}

int cons_catchup_req_encode(uint64_t height, uint8_t out[9]) {
  put_u64(put_u8(out, CONS_MSG_CATCHUP_REQ), height);
  return 0;
}

int cons_catchup_resp_encode(const uint8_t *record, size_t len, uint8_t **out,
                             size_t *out_len) {
  if (len > CONS_MAX_RECORD_BYTES) return CONS_ETOOBIG;
  uint8_t *m = malloc(1 + len);
  if (!m) return CONS_ENOMEM;
  m[0] = CONS_MSG_CATCHUP_RESP;
  memcpy(m + 1, record, len);
  *out = m;
  *out_len = 1 + len;
  return 0;
}
