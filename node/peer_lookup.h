/* Cross-region lookup, the protocol core (spec/protocol.md sections 4-7):
 * building and checking signed lookup requests and answers. Pure: time and
 * nonces come in as arguments; no sockets, no clock, no storage. The
 * daemon glues it to node/peer (transport) and the store (achievements,
 * access log).
 *
 *   asking node A                          answering node B
 *   peer_lookup_make_request  -- request -->  peer_lookup_check_request
 *                                             (store: achievements of ref)
 *   peer_lookup_check_response <-- answer --  peer_lookup_make_response
 *                                             peer_lookup_access_entry -> store */
#ifndef CB_PEER_LOOKUP_H
#define CB_PEER_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "peer.pb-c.h"
#include "registry.h"
#include "replay.h"
#include "sigstmt.h"

#define PEER_LOOKUP_NONCE_BYTES 16u
#define PEER_LOOKUP_REF_BYTES 32u
#define PEER_LOOKUP_TEXT_MAX 256u /* operator_id, purpose */

/* A: signs a request for learner_ref at `target`. nonce: 16 fresh random
 * bytes from the caller. *out owns its fields (sigstmt_statement_clear). */
int peer_lookup_make_request(const sigstmt_signer_t *self, const char *target,
                             const char *operator_id, const char *purpose,
                             const uint8_t learner_ref[PEER_LOOKUP_REF_BYTES],
                             const uint8_t nonce[PEER_LOOKUP_NONCE_BYTES], int64_t now_ms,
                             Cb__SignedStatement *out, char *err, size_t errlen);

/* B: the whole check of a received request, in this order: signature and
 * body (sigstmt_open_lookup_request), target = self_id, then freshness
 * (replay: clock skew and nonce). Authentication comes first so that
 * unsigned junk cannot fill the replay cache. On refusal *code is the
 * PeerError code to answer with, err says why, nothing is remembered.
 * On success *out is the body (cb__lookup_request_body__free_unpacked). */
int peer_lookup_check_request(const registry_t *reg, replay_cache_t *replay, const char *self_id,
                              const Cb__SignedStatement *request, int64_t now_ms,
                              Cb__LookupRequestBody **out, Cb__PeerErrorCode *code, char *err,
                              size_t errlen);

/* B: signs the answer: one signature over all n achievements. The
 * achievements must be of learner_ref (checked). */
int peer_lookup_make_response(const sigstmt_signer_t *self, const Cb__SignedStatement *request,
                              const uint8_t learner_ref[PEER_LOOKUP_REF_BYTES], int found,
                              Cb__Achievement *const *achievements, size_t n, int64_t now_ms,
                              Cb__SignedStatement *out, char *err, size_t errlen);

/* B: the access-log record of an answered request (borrows request; pack
 * it with cb__access_log_entry__pack before request goes away). */
void peer_lookup_access_entry(const Cb__SignedStatement *request, int found, size_t n,
                              int64_t now_ms, Cb__AccessLogEntry *out);

/* A: checks an answer against the request it answers: signature and body
 * (sigstmt_open_lookup_response), responder = the node asked,
 * request_hash = SHA-256 of our request body, learner_ref = ours. */
int peer_lookup_check_response(const registry_t *reg, const Cb__SignedStatement *request,
                               const char *responder, const Cb__SignedStatement *response,
                               Cb__LookupResponseBody **out, char *err, size_t errlen);

#endif
