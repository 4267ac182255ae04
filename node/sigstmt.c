/* Signed statements (spec/protocol.md "Signed statements"). */
#include "sigstmt.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#define SIGSTMT_STR_(name, str) str,
static const char *const sigstmt_errstr[] = {SIGSTMT_ERRORS(SIGSTMT_STR_)};
#undef SIGSTMT_STR_

const char *sigstmt_strerror(int err) {
  if (err < 0) err = -err;
  if (err >= SIGSTMT_ERR_COUNT_) return "unknown sigstmt error";
  return sigstmt_errstr[err];
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -code;
}

int sigstmt_key_from_seed(const uint8_t seed[32], EVP_PKEY **out) {
  if (!seed || !out) return -SIGSTMT_E_ARG;
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  if (!k) return -SIGSTMT_E_CRYPTO;
  *out = k;
  return 0;
}

int sigstmt_key_load(const char *path, EVP_PKEY **out, char *err, size_t errlen) {
  if (!path || !out) return fail(err, errlen, SIGSTMT_E_ARG, "no key path");
  FILE *f = fopen(path, "r");
  if (!f) return fail(err, errlen, SIGSTMT_E_ARG, "%s: cannot open", path);
  EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  ERR_clear_error();
  if (!k) return fail(err, errlen, SIGSTMT_E_KEY, "%s: not a PEM private key", path);
  if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(k);
    return fail(err, errlen, SIGSTMT_E_KEY, "%s: not an Ed25519 key", path);
  }
  *out = k;
  return 0;
}

int sigstmt_key_public(const EVP_PKEY *key, uint8_t pub[SIGSTMT_PUBKEY_BYTES]) {
  if (!key || !pub || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return -SIGSTMT_E_KEY;
  size_t len = SIGSTMT_PUBKEY_BYTES;
  if (EVP_PKEY_get_raw_public_key(key, pub, &len) != 1 || len != SIGSTMT_PUBKEY_BYTES)
    return -SIGSTMT_E_CRYPTO;
  return 0;
}

int sigstmt_ed25519_sign(EVP_PKEY *key, const uint8_t *msg, size_t len,
                         uint8_t sig[SIGSTMT_SIG_BYTES]) {
  if (!key || (!msg && len) || !sig) return -SIGSTMT_E_ARG;
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) return -SIGSTMT_E_KEY;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return -SIGSTMT_E_NOMEM;
  size_t siglen = SIGSTMT_SIG_BYTES;
  static const uint8_t empty[1];
  int ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
           EVP_DigestSign(ctx, sig, &siglen, msg ? msg : empty, len) == 1 &&
           siglen == SIGSTMT_SIG_BYTES;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    return -SIGSTMT_E_CRYPTO;
  }
  return 0;
}

static int verify_with(EVP_PKEY *k, const uint8_t *msg, size_t len,
                       const uint8_t sig[SIGSTMT_SIG_BYTES]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int rc = -SIGSTMT_E_NOMEM;
  if (ctx) {
    static const uint8_t empty[1];
    rc = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
                 EVP_DigestVerify(ctx, sig, SIGSTMT_SIG_BYTES, msg ? msg : empty, len) == 1
             ? 0
             : -SIGSTMT_E_BAD_SIGNATURE;
    EVP_MD_CTX_free(ctx);
  }
  ERR_clear_error();
  return rc;
}

int sigstmt_ed25519_verify(const uint8_t pub[SIGSTMT_PUBKEY_BYTES], const uint8_t *msg,
                           size_t len, const uint8_t sig[SIGSTMT_SIG_BYTES]) {
  if (!pub || (!msg && len) || !sig) return -SIGSTMT_E_ARG;
  EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, SIGSTMT_PUBKEY_BYTES);
  if (!k) {
    ERR_clear_error();
    return -SIGSTMT_E_KEY;
  }
  int rc = verify_with(k, msg, len, sig);
  EVP_PKEY_free(k);
  return rc;
}

/* tag || 0x00 || body in a fresh buffer (Ed25519 is one-shot: the whole
 * message is hashed twice, so it must be contiguous). */
static int tagged(const char *tag, const uint8_t *body, size_t len, uint8_t **out,
                  size_t *out_len) {
  if (!tag || (!body && len)) return -SIGSTMT_E_ARG;
  size_t tlen = strlen(tag);
  if (tlen == 0 || tlen > SIGSTMT_TAG_MAX_BYTES) return -SIGSTMT_E_ARG;
  if (len > SIGSTMT_MAX_BODY_BYTES) return -SIGSTMT_E_TOO_LARGE;
  uint8_t *buf = malloc(tlen + 1 + len);
  if (!buf) return -SIGSTMT_E_NOMEM;
  memcpy(buf, tag, tlen);
  buf[tlen] = 0;
  if (len) memcpy(buf + tlen + 1, body, len);
  *out = buf;
  *out_len = tlen + 1 + len;
  return 0;
}

int sigstmt_sign_raw(EVP_PKEY *key, const char *tag, const uint8_t *body, size_t len,
                     uint8_t sig[SIGSTMT_SIG_BYTES]) {
  uint8_t *msg;
  size_t mlen;
  int rc = tagged(tag, body, len, &msg, &mlen);
  if (rc) return rc;
  rc = sigstmt_ed25519_sign(key, msg, mlen, sig);
  free(msg);
  return rc;
}

int sigstmt_verify_raw(const uint8_t pub[SIGSTMT_PUBKEY_BYTES], const char *tag,
                       const uint8_t *body, size_t len, const uint8_t sig[SIGSTMT_SIG_BYTES]) {
  uint8_t *msg;
  size_t mlen;
  int rc = tagged(tag, body, len, &msg, &mlen);
  if (rc) return rc;
  rc = sigstmt_ed25519_verify(pub, msg, mlen, sig);
  free(msg);
  return rc;
}

int sigstmt_verify_pkey(EVP_PKEY *pub, const char *tag, const uint8_t *body, size_t len,
                        const uint8_t sig[SIGSTMT_SIG_BYTES]) {
  if (!pub || !sig) return -SIGSTMT_E_ARG;
  uint8_t *msg;
  size_t mlen;
  int rc = tagged(tag, body, len, &msg, &mlen);
  if (rc) return rc;
  rc = verify_with(pub, msg, mlen, sig);
  free(msg);
  return rc;
}

void sigstmt_statement_clear(Cb__SignedStatement *st) {
  if (!st) return;
  free(st->signer);
  free(st->public_key.data);
  free(st->body.data);
  free(st->signature.data);
  cb__signed_statement__init(st);
}

int sigstmt_seal(const sigstmt_signer_t *signer, const char *tag, const uint8_t *body,
                 size_t len, Cb__SignedStatement *st) {
  if (!signer || !signer->node_id || !signer->key || !st) return -SIGSTMT_E_ARG;
  if (len > SIGSTMT_MAX_BODY_BYTES) return -SIGSTMT_E_TOO_LARGE;
  cb__signed_statement__init(st);
  st->signer = strdup(signer->node_id);
  st->public_key.data = malloc(SIGSTMT_PUBKEY_BYTES);
  st->signature.data = malloc(SIGSTMT_SIG_BYTES);
  st->body.data = malloc(len ? len : 1);
  int rc = -SIGSTMT_E_NOMEM;
  if (!st->signer || !st->public_key.data || !st->signature.data || !st->body.data) goto fail;
  st->public_key.len = SIGSTMT_PUBKEY_BYTES;
  st->signature.len = SIGSTMT_SIG_BYTES;
  if (len) memcpy(st->body.data, body, len);
  st->body.len = len;
  if ((rc = sigstmt_key_public(signer->key, st->public_key.data))) goto fail;
  if ((rc = sigstmt_sign_raw(signer->key, tag, body, len, st->signature.data))) goto fail;
  return 0;
fail:
  sigstmt_statement_clear(st);
  return rc;
}

int sigstmt_verify(const registry_t *reg, const Cb__SignedStatement *st, const char *tag,
                   const registry_member_t **member, char *err, size_t errlen) {
  if (!reg || !st || !tag) return fail(err, errlen, SIGSTMT_E_ARG, "statement: missing");
  if (!st->signer || !st->signer[0])
    return fail(err, errlen, SIGSTMT_E_MALFORMED, "statement: signer missing");
  if (st->public_key.len != SIGSTMT_PUBKEY_BYTES)
    return fail(err, errlen, SIGSTMT_E_MALFORMED, "statement: public_key is %zu bytes, not 32",
                st->public_key.len);
  if (st->signature.len != SIGSTMT_SIG_BYTES)
    return fail(err, errlen, SIGSTMT_E_MALFORMED, "statement: signature is %zu bytes, not 64",
                st->signature.len);
  if (st->body.len > SIGSTMT_MAX_BODY_BYTES)
    return fail(err, errlen, SIGSTMT_E_TOO_LARGE, "statement: body of %zu bytes over %u",
                st->body.len, SIGSTMT_MAX_BODY_BYTES);
  const registry_member_t *m = registry_find_member(reg, st->signer);
  if (!m)
    return fail(err, errlen, SIGSTMT_E_UNKNOWN_SIGNER, "statement: signer \"%.64s\" not in registry",
                st->signer);
  if (registry_key_valid_at(m, st->public_key.data, 0) == -REGISTRY_E_KEY_UNKNOWN)
    return fail(err, errlen, SIGSTMT_E_KEY_NOT_SIGNERS, "statement: key is not one of %s's keys",
                m->node_id);
  EVP_PKEY *pk = registry_key_pkey(m, st->public_key.data);
  int rc = pk ? sigstmt_verify_pkey(pk, tag, st->body.data, st->body.len, st->signature.data)
              : sigstmt_verify_raw(st->public_key.data, tag, st->body.data, st->body.len,
                                   st->signature.data);
  if (rc)
    return fail(err, errlen, -rc, "statement by %s: %s (tag %s)", m->node_id,
                sigstmt_strerror(rc), tag);
  if (member) *member = m;
  return 0;
}

void sigstmt_body_hash(const Cb__SignedStatement *st, uint8_t out[32]) {
  static const uint8_t empty[1];
  SHA256(st->body.len ? st->body.data : empty, st->body.len, out);
}

/* --- typed bodies --------------------------------------------------------- */

static int seal_packed(const sigstmt_signer_t *signer, const char *tag,
                       const ProtobufCMessage *msg, Cb__SignedStatement *st) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  if (len > SIGSTMT_MAX_BODY_BYTES) return -SIGSTMT_E_TOO_LARGE;
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return -SIGSTMT_E_NOMEM;
  protobuf_c_message_pack(msg, buf);
  int rc = sigstmt_seal(signer, tag, buf, len, st);
  free(buf);
  return rc;
}

int sigstmt_seal_lookup_request(const sigstmt_signer_t *signer, const Cb__LookupRequestBody *body,
                                Cb__SignedStatement *st) {
  if (!body) return -SIGSTMT_E_ARG;
  return seal_packed(signer, SIGSTMT_TAG_LOOKUP_REQUEST, &body->base, st);
}

int sigstmt_seal_lookup_response(const sigstmt_signer_t *signer,
                                 const Cb__LookupResponseBody *body, Cb__SignedStatement *st) {
  if (!body) return -SIGSTMT_E_ARG;
  return seal_packed(signer, SIGSTMT_TAG_LOOKUP_RESPONSE, &body->base, st);
}

int sigstmt_seal_attestation(const sigstmt_signer_t *signer, const Cb__AttestationBody *body,
                             Cb__SignedStatement *st) {
  if (!body) return -SIGSTMT_E_ARG;
  return seal_packed(signer, SIGSTMT_TAG_ATTESTATION, &body->base, st);
}

/* Capped allocator for unpacking a body: the tree may take at most a fixed
 * multiple of the body's size, whatever its content claims. */
typedef struct capped {
  size_t used, cap;
} capped_t;

static void *capped_alloc(void *arg, size_t size) {
  capped_t *c = arg;
  if (size > c->cap - c->used) return NULL;
  size_t *p = malloc(sizeof(size_t) * 2 + size);
  if (!p) return NULL;
  c->used += size;
  p[0] = size;
  return p + 2;
}

static void capped_free(void *arg, void *ptr) {
  capped_t *c = arg;
  if (!ptr) return;
  size_t *p = (size_t *)ptr - 2;
  c->used -= p[0];
  free(p);
}

/* Unpacks with a cap, then copies nothing: protobuf-c frees through the
 * allocator given to unpack, so the returned tree must be freed with the
 * plain allocator. To keep one rule for callers (free_unpacked(x, NULL)),
 * unpack once capped to prove the size bound, then again unbounded. The
 * second unpack cannot grow past the first: same bytes. */
static ProtobufCMessage *unpack_body(const ProtobufCMessageDescriptor *desc,
                                     const Cb__SignedStatement *st) {
  capped_t cap = {0, 16 * st->body.len + 64 * 1024};
  ProtobufCAllocator a = {capped_alloc, capped_free, &cap};
  ProtobufCMessage *probe = protobuf_c_message_unpack(desc, &a, st->body.len, st->body.data);
  if (!probe) return NULL;
  protobuf_c_message_free_unpacked(probe, &a);
  return protobuf_c_message_unpack(desc, NULL, st->body.len, st->body.data);
}

static int key_time_check(const registry_member_t *m, const Cb__SignedStatement *st,
                          int64_t t, const char *what, char *err, size_t errlen) {
  int rc = registry_key_valid_at(m, st->public_key.data, t);
  if (rc)
    return fail(err, errlen, SIGSTMT_E_KEY_NOT_VALID, "%s by %s: key %s at %lld", what,
                m->node_id, registry_strerror(rc), (long long)t);
  return 0;
}

int sigstmt_open_lookup_request(const registry_t *reg, const Cb__SignedStatement *st,
                                Cb__LookupRequestBody **out, char *err, size_t errlen) {
  const registry_member_t *m;
  int rc = sigstmt_verify(reg, st, SIGSTMT_TAG_LOOKUP_REQUEST, &m, err, errlen);
  if (rc) return rc;
  Cb__LookupRequestBody *b =
      (Cb__LookupRequestBody *)unpack_body(&cb__lookup_request_body__descriptor, st);
  if (!b) return fail(err, errlen, SIGSTMT_E_BODY, "lookup request by %s: malformed body", m->node_id);
  if (strcmp(b->requester, m->node_id) != 0)
    rc = fail(err, errlen, SIGSTMT_E_BODY, "lookup request: requester \"%.64s\" is not signer %s",
              b->requester, m->node_id);
  else if (b->nonce.len < SIGSTMT_NONCE_MIN_BYTES || b->nonce.len > SIGSTMT_NONCE_MAX_BYTES)
    rc = fail(err, errlen, SIGSTMT_E_BODY, "lookup request by %s: nonce of %zu bytes (16-64)",
              m->node_id, b->nonce.len);
  else if (b->learner_ref.len != 32)
    rc = fail(err, errlen, SIGSTMT_E_BODY, "lookup request by %s: learner_ref of %zu bytes, not 32",
              m->node_id, b->learner_ref.len);
  else if (!b->target[0] || !b->operator_id[0] || !b->purpose[0])
    rc = fail(err, errlen, SIGSTMT_E_BODY,
              "lookup request by %s: target, operator_id and purpose are required", m->node_id);
  else
    rc = key_time_check(m, st, b->time_ms, "lookup request", err, errlen);
  if (rc) {
    cb__lookup_request_body__free_unpacked(b, NULL);
    return rc;
  }
  *out = b;
  return 0;
}

int sigstmt_open_lookup_response(const registry_t *reg, const Cb__SignedStatement *st,
                                 Cb__LookupResponseBody **out, char *err, size_t errlen) {
  const registry_member_t *m;
  int rc = sigstmt_verify(reg, st, SIGSTMT_TAG_LOOKUP_RESPONSE, &m, err, errlen);
  if (rc) return rc;
  Cb__LookupResponseBody *b =
      (Cb__LookupResponseBody *)unpack_body(&cb__lookup_response_body__descriptor, st);
  if (!b)
    return fail(err, errlen, SIGSTMT_E_BODY, "lookup response by %s: malformed body", m->node_id);
  if (strcmp(b->responder, m->node_id) != 0)
    rc = fail(err, errlen, SIGSTMT_E_BODY, "lookup response: responder \"%.64s\" is not signer %s",
              b->responder, m->node_id);
  else if (b->request_hash.len != 32 || b->learner_ref.len != 32)
    rc = fail(err, errlen, SIGSTMT_E_BODY,
              "lookup response by %s: request_hash and learner_ref must be 32 bytes", m->node_id);
  else
    rc = key_time_check(m, st, b->time_ms, "lookup response", err, errlen);
  for (size_t i = 0; !rc && i < b->n_achievements; i++) {
    const Cb__Achievement *a = b->achievements[i];
    if (a->learner_ref.len != b->learner_ref.len ||
        memcmp(a->learner_ref.data, b->learner_ref.data, b->learner_ref.len) != 0)
      rc = fail(err, errlen, SIGSTMT_E_BODY,
                "lookup response by %s: achievements[%zu] is another learner's", m->node_id, i);
  }
  if (rc) {
    cb__lookup_response_body__free_unpacked(b, NULL);
    return rc;
  }
  *out = b;
  return 0;
}

int sigstmt_open_attestation(const registry_t *reg, const Cb__SignedStatement *st,
                             Cb__AttestationBody **out, char *err, size_t errlen) {
  const registry_member_t *m;
  int rc = sigstmt_verify(reg, st, SIGSTMT_TAG_ATTESTATION, &m, err, errlen);
  if (rc) return rc;
  Cb__AttestationBody *b =
      (Cb__AttestationBody *)unpack_body(&cb__attestation_body__descriptor, st);
  if (!b) return fail(err, errlen, SIGSTMT_E_BODY, "attestation by %s: malformed body", m->node_id);
  if (strcmp(b->issuer, m->node_id) != 0)
    rc = fail(err, errlen, SIGSTMT_E_BODY, "attestation: issuer \"%.64s\" is not signer %s",
              b->issuer, m->node_id);
  else if (b->learner_ref.len != 32 || !b->achievement)
    rc = fail(err, errlen, SIGSTMT_E_BODY,
              "attestation by %s: learner_ref (32 bytes) and achievement are required", m->node_id);
  else if (b->achievement->learner_ref.len != 32 ||
           memcmp(b->achievement->learner_ref.data, b->learner_ref.data, 32) != 0)
    rc = fail(err, errlen, SIGSTMT_E_BODY,
              "attestation by %s: achievement's learner_ref differs from the attested one",
              m->node_id);
  else
    rc = key_time_check(m, st, b->issued_at_ms, "attestation", err, errlen);
  if (rc) {
    cb__attestation_body__free_unpacked(b, NULL);
    return rc;
  }
  *out = b;
  return 0;
}
