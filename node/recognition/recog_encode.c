/* The canonical byte encoding of a decision (spec/recognition.md §6): the
 * protobuf wire form of cb.RecognitionDecision (proto/recognition.proto)
 * written by hand, so that this pure library needs no protobuf runtime and
 * the bytes are canonical by construction: fields in number order, proto3
 * defaults (0, "", empty bytes) omitted, nested messages always with their
 * exact length, repeated fields in the decision's order. What protobuf-c
 * packs for the same message is byte-identical (tests/unit/
 * test_recognition_encode.c checks it on every decision it makes). */
#include <stdlib.h>
#include <string.h>

#include "recog.h"

struct pb {
  uint8_t *p; /* NULL: count only */
  size_t len, cap;
};

static void put_byte(struct pb *b, uint8_t v) {
  if (b->p && b->len < b->cap) b->p[b->len] = v;
  b->len++;
}

static void put_varint(struct pb *b, uint64_t v) {
  while (v >= 0x80) {
    put_byte(b, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  put_byte(b, (uint8_t)v);
}

static void put_tag(struct pb *b, unsigned field, unsigned wire) {
  put_varint(b, ((uint64_t)field << 3) | wire);
}

static void put_raw(struct pb *b, const void *data, size_t n) {
  if (b->p && b->len + n <= b->cap) memcpy(b->p + b->len, data, n);
  b->len += n;
}

/* Length-delimited; omitted when empty unless always (repeated bytes). */
static void put_bytes(struct pb *b, unsigned field, const void *data, size_t n, int always) {
  if (!n && !always) return;
  put_tag(b, field, 2);
  put_varint(b, n);
  put_raw(b, data, n);
}

static void put_str(struct pb *b, unsigned field, const char *s) {
  if (s) put_bytes(b, field, s, strlen(s), 0);
}

/* int32/int64/enum: proto3 omits 0; negatives are 10-byte varints. */
static void put_int(struct pb *b, unsigned field, int64_t v) {
  if (!v) return;
  put_tag(b, field, 0);
  put_varint(b, (uint64_t)v);
}

typedef void (*msg_fn)(struct pb *, const void *);

/* A nested message: always written (present), with its exact length. */
static void put_msg(struct pb *b, unsigned field, msg_fn fn, const void *m) {
  struct pb count = {0};
  fn(&count, m);
  put_tag(b, field, 2);
  put_varint(b, count.len);
  fn(b, m);
}

struct target_view {
  const struct recog_decision *d;
};

static void enc_target(struct pb *b, const void *x) {
  const struct recog_decision *d = ((const struct target_view *)x)->d;
  put_str(b, 1, d->target_institution);
  put_str(b, 2, d->target_programme);
  put_str(b, 3, d->target_certificate);
  put_str(b, 4, d->target_level);
  put_str(b, 5, d->target_title);
}

static void enc_cited(struct pb *b, const void *x) {
  const struct recog_cited *c = x;
  put_bytes(b, 1, c->aid, RECOG_AID_BYTES, 0);
  put_str(b, 2, c->holder);
  if (c->has_attestation) put_bytes(b, 3, c->attestation_hash, CB_HASH_BYTES, 0);
  put_str(b, 4, c->issuer);
  put_str(b, 5, c->code);
  put_str(b, 6, c->title);
  put_str(b, 7, c->level);
  put_int(b, 8, c->awarded_on);
}

static void enc_grant(struct pb *b, const void *x) {
  const struct recog_grant *g = x;
  put_str(b, 1, g->rule_id);
  put_int(b, 2, g->rule_kind);
  put_int(b, 3, g->kind);
  put_str(b, 4, g->course);
  put_str(b, 5, g->course_title);
  put_int(b, 6, g->credits_milli);
  put_int(b, 7, g->course_credits_milli);
  put_str(b, 8, g->certificate);
  put_str(b, 9, g->certificate_title);
  put_str(b, 10, g->level);
  for (uint32_t i = 0; i < g->naids; i++) put_bytes(b, 11, g->aids[i], RECOG_AID_BYTES, 1);
}

static void enc_shortfall(struct pb *b, const void *x) {
  const struct recog_shortfall *s = x;
  put_str(b, 1, s->rule_id);
  put_int(b, 2, s->rule_kind);
  put_int(b, 3, s->code);
  put_str(b, 4, s->subject);
  put_str(b, 5, s->subject_title);
  if (s->has_aid) put_bytes(b, 6, s->aid, RECOG_AID_BYTES, 0);
  put_str(b, 7, s->have);
  put_str(b, 8, s->need);
}

static void enc_decision(struct pb *b, const struct recog_decision *d) {
  struct target_view tv = {d};
  put_str(b, 1, d->request_id);
  put_str(b, 2, d->decider);
  put_bytes(b, 3, d->learner_ref, sizeof d->learner_ref, 0);
  put_msg(b, 4, enc_target, &tv);
  put_bytes(b, 5, d->catalogue_version, CB_HASH_BYTES, 0);
  put_int(b, 6, d->date);
  put_int(b, 7, d->decided_at_ms);
  put_int(b, 8, d->status);
  for (size_t i = 0; i < d->ncited; i++) put_msg(b, 9, enc_cited, &d->cited[i]);
  for (size_t i = 0; i < d->ngrants; i++) put_msg(b, 10, enc_grant, &d->grants[i]);
  for (size_t i = 0; i < d->nshortfalls; i++) put_msg(b, 11, enc_shortfall, &d->shortfalls[i]);
  put_int(b, 12, d->credits_milli);
}

size_t recog_encoded_size(const struct recog_decision *d) {
  struct pb b = {0};
  enc_decision(&b, d);
  return b.len;
}

long recog_encode(const struct recog_decision *d, uint8_t *buf, size_t cap) {
  size_t need = recog_encoded_size(d);
  if (need > RECOG_MAX_DECISION_BYTES || need > cap || !buf) return RECOG_ETOOBIG;
  struct pb b = {buf, 0, cap};
  enc_decision(&b, d);
  return (long)b.len;
}

const char *recog_decision_tag(const struct recog_decision *d) {
  return d->target_kind == RECOG_TARGET_EXEMPTION ? RECOG_TAG_EXEMPTION : RECOG_TAG_DECISION;
}

/* tag || 0x00 || body, the signed-statement message. */
static uint8_t *statement(const char *tag, const uint8_t *body, size_t len, size_t *n) {
  size_t t = strlen(tag);
  if (len > RECOG_MAX_DECISION_BYTES) return NULL;
  uint8_t *m = malloc(t + 1 + len);
  if (!m) return NULL;
  memcpy(m, tag, t);
  m[t] = 0;
  if (len) memcpy(m + t + 1, body, len);
  *n = t + 1 + len;
  return m;
}

int recog_sign(const cb_crypto *crypto, const char *tag, const uint8_t *body, size_t len,
               uint8_t sig[CB_SIG_BYTES], uint8_t pub_out[CB_PUBKEY_BYTES]) {
  if (!crypto || !crypto->sign || !tag || (!body && len)) return RECOG_EINVAL;
  size_t n;
  uint8_t *m = statement(tag, body, len, &n);
  if (!m) return RECOG_ENOMEM;
  int rc = crypto->sign(crypto->ctx, m, n, sig, pub_out);
  free(m);
  return rc == 0 ? 0 : RECOG_ECRYPTO;
}

int recog_verify(const cb_crypto *crypto, const uint8_t pub[CB_PUBKEY_BYTES], const char *tag,
                 const uint8_t *body, size_t len, const uint8_t sig[CB_SIG_BYTES]) {
  if (!crypto || !tag || (!body && len)) return RECOG_EINVAL;
  size_t n;
  uint8_t *m = statement(tag, body, len, &n);
  if (!m) return RECOG_ENOMEM;
  int rc = crypto->verify(crypto->ctx, pub, m, n, sig);
  free(m);
  return rc == 0 ? 0 : RECOG_EBADSIG;
}
