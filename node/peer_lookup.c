/* Cross-region lookup core (spec/protocol.md sections 4-7). */
#include "peer_lookup.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

static int text_ok(const char *s) {
  return s && s[0] && strlen(s) <= PEER_LOOKUP_TEXT_MAX;
}

int peer_lookup_make_request(const sigstmt_signer_t *self, const char *target,
                             const char *operator_id, const char *purpose,
                             const uint8_t learner_ref[PEER_LOOKUP_REF_BYTES],
                             const uint8_t nonce[PEER_LOOKUP_NONCE_BYTES], int64_t now_ms,
                             Cb__SignedStatement *out, char *err, size_t errlen) {
  if (!self || !self->node_id || !target || !target[0] || !learner_ref || !nonce || !out) {
    snprintf(err, errlen, "lookup request: signer, target, learner_ref and nonce are required");
    return -SIGSTMT_E_ARG;
  }
  if (!text_ok(operator_id) || !text_ok(purpose)) {
    snprintf(err, errlen, "lookup request: operator and purpose are required (1-%u bytes)",
             PEER_LOOKUP_TEXT_MAX);
    return -SIGSTMT_E_ARG;
  }
  Cb__LookupRequestBody b;
  cb__lookup_request_body__init(&b);
  b.requester = (char *)self->node_id;
  b.operator_id = (char *)operator_id;
  b.purpose = (char *)purpose;
  b.time_ms = now_ms;
  b.nonce.data = (uint8_t *)nonce;
  b.nonce.len = PEER_LOOKUP_NONCE_BYTES;
  b.learner_ref.data = (uint8_t *)learner_ref;
  b.learner_ref.len = PEER_LOOKUP_REF_BYTES;
  b.target = (char *)target;
  int rc = sigstmt_seal_lookup_request(self, &b, out);
  if (rc) snprintf(err, errlen, "lookup request: %s", sigstmt_strerror(rc));
  return rc;
}

static Cb__PeerErrorCode code_of_sigstmt(int rc) {
  switch (-rc) {
  case SIGSTMT_E_MALFORMED:
  case SIGSTMT_E_BODY:
  case SIGSTMT_E_TOO_LARGE:
    return CB__PEER_ERROR_CODE__PEER_ERROR_MALFORMED;
  case SIGSTMT_E_NOMEM:
  case SIGSTMT_E_CRYPTO:
    return CB__PEER_ERROR_CODE__PEER_ERROR_INTERNAL;
  default:
    return CB__PEER_ERROR_CODE__PEER_ERROR_UNAUTHENTIC;
  }
}

int peer_lookup_check_request(const registry_t *reg, replay_cache_t *replay, const char *self_id,
                              const Cb__SignedStatement *request, int64_t now_ms,
                              Cb__LookupRequestBody **out, Cb__PeerErrorCode *code, char *err,
                              size_t errlen) {
  *out = NULL;
  *code = CB__PEER_ERROR_CODE__PEER_ERROR_UNSPECIFIED;
  Cb__LookupRequestBody *b = NULL;
  int rc = sigstmt_open_lookup_request(reg, request, &b, err, errlen);
  if (rc) {
    *code = code_of_sigstmt(rc);
    return rc;
  }
  if (strcmp(b->target, self_id) != 0) {
    snprintf(err, errlen, "lookup request from %s is addressed to %.63s, not %s", b->requester,
             b->target, self_id);
    *code = CB__PEER_ERROR_CODE__PEER_ERROR_WRONG_TARGET;
    cb__lookup_request_body__free_unpacked(b, NULL);
    return -SIGSTMT_E_BODY;
  }
  if (!text_ok(b->operator_id) || !text_ok(b->purpose)) {
    snprintf(err, errlen, "lookup request from %s: operator or purpose over %u bytes",
             b->requester, PEER_LOOKUP_TEXT_MAX);
    *code = CB__PEER_ERROR_CODE__PEER_ERROR_MALFORMED;
    cb__lookup_request_body__free_unpacked(b, NULL);
    return -SIGSTMT_E_BODY;
  }
  rc = replay_check(replay, b->requester, b->nonce.data, b->nonce.len, b->time_ms, now_ms);
  if (rc) {
    snprintf(err, errlen, "lookup request from %s (time %lld, now %lld): %s", b->requester,
             (long long)b->time_ms, (long long)now_ms, replay_strerror(rc));
    *code = rc == -REPLAY_E_REPLAYED ? CB__PEER_ERROR_CODE__PEER_ERROR_REPLAYED
            : rc == -REPLAY_E_FULL   ? CB__PEER_ERROR_CODE__PEER_ERROR_BUSY
            : rc == -REPLAY_E_NONCE  ? CB__PEER_ERROR_CODE__PEER_ERROR_MALFORMED
                                     : CB__PEER_ERROR_CODE__PEER_ERROR_STALE;
    cb__lookup_request_body__free_unpacked(b, NULL);
    return rc;
  }
  *out = b;
  return 0;
}

int peer_lookup_make_response(const sigstmt_signer_t *self, const Cb__SignedStatement *request,
                              const uint8_t learner_ref[PEER_LOOKUP_REF_BYTES], int found,
                              Cb__Achievement *const *achievements, size_t n, int64_t now_ms,
                              Cb__SignedStatement *out, char *err, size_t errlen) {
  if (!self || !request || !learner_ref || !out || (n && !achievements)) {
    snprintf(err, errlen, "lookup response: missing argument");
    return -SIGSTMT_E_ARG;
  }
  for (size_t i = 0; i < n; i++)
    if (achievements[i]->learner_ref.len != PEER_LOOKUP_REF_BYTES ||
        memcmp(achievements[i]->learner_ref.data, learner_ref, PEER_LOOKUP_REF_BYTES) != 0) {
      snprintf(err, errlen, "lookup response: achievements[%zu] is another learner's", i);
      return -SIGSTMT_E_ARG;
    }
  uint8_t hash[32];
  sigstmt_body_hash(request, hash);
  Cb__LookupResponseBody b;
  cb__lookup_response_body__init(&b);
  b.responder = (char *)self->node_id;
  b.request_hash.data = hash;
  b.request_hash.len = sizeof hash;
  b.time_ms = now_ms;
  b.learner_ref.data = (uint8_t *)learner_ref;
  b.learner_ref.len = PEER_LOOKUP_REF_BYTES;
  b.found = found != 0;
  b.n_achievements = n;
  b.achievements = (Cb__Achievement **)achievements;
  int rc = sigstmt_seal_lookup_response(self, &b, out);
  if (rc) snprintf(err, errlen, "lookup response: %s", sigstmt_strerror(rc));
  return rc;
}

void peer_lookup_access_entry(const Cb__SignedStatement *request, int found, size_t n,
                              int64_t now_ms, Cb__AccessLogEntry *out) {
  cb__access_log_entry__init(out);
  out->request = (Cb__SignedStatement *)request;
  out->answered_at_ms = now_ms;
  out->found = found != 0;
  out->achievements = (uint32_t)n;
}

int peer_lookup_check_response(const registry_t *reg, const Cb__SignedStatement *request,
                               const char *responder, const Cb__SignedStatement *response,
                               Cb__LookupResponseBody **out, char *err, size_t errlen) {
  *out = NULL;
  if (!request || !responder || !response) {
    snprintf(err, errlen, "lookup response: missing argument");
    return -SIGSTMT_E_ARG;
  }
  Cb__LookupResponseBody *b = NULL;
  int rc = sigstmt_open_lookup_response(reg, response, &b, err, errlen);
  if (rc) return rc;
  uint8_t hash[32];
  sigstmt_body_hash(request, hash);
  Cb__LookupRequestBody *q =
      cb__lookup_request_body__unpack(NULL, request->body.len, request->body.data);
  if (strcmp(b->responder, responder) != 0) {
    snprintf(err, errlen, "lookup response signed by %.63s, but %s was asked", b->responder,
             responder);
    rc = -SIGSTMT_E_BODY;
  } else if (CRYPTO_memcmp(b->request_hash.data, hash, sizeof hash) != 0) {
    snprintf(err, errlen, "lookup response from %s answers another request", responder);
    rc = -SIGSTMT_E_BODY;
  } else if (!q || q->learner_ref.len != b->learner_ref.len ||
             memcmp(q->learner_ref.data, b->learner_ref.data, b->learner_ref.len) != 0) {
    snprintf(err, errlen, "lookup response from %s is about another learner", responder);
    rc = -SIGSTMT_E_BODY;
  } else if (!b->found && b->n_achievements) {
    snprintf(err, errlen, "lookup response from %s: not found, yet achievements", responder);
    rc = -SIGSTMT_E_BODY;
  }
  if (q) cb__lookup_request_body__free_unpacked(q, NULL);
  if (rc) {
    cb__lookup_response_body__free_unpacked(b, NULL);
    return rc;
  }
  *out = b;
  return 0;
}
