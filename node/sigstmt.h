/* Signed statements: Ed25519 over a domain-separation tag and the exact
 * serialised bytes of a body message (spec/protocol.md "Signed statements").
 *
 *   signed message = tag || 0x00 || body
 *
 * The tag is fixed by the context that carries the statement (never read
 * from the wire), so a signature made for one purpose cannot be replayed as
 * another. Verification is done over the carried body bytes; the body is
 * parsed only after its signature checked out, and never re-serialised.
 *
 * The sigstmt_open_* helpers do the whole check of one statement kind, cheap
 * checks first: signer is a registry member, the carried key is one of its
 * keys, body size within bound; then the signature; then the body is
 * unpacked and its own claims (issuer = signer, key valid at the body's
 * time) are checked. */
#ifndef CB_SIGSTMT_H
#define CB_SIGSTMT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "peer.pb-c.h"
#include "registry.h"

#define SIGSTMT_TAG_ATTESTATION "cb/attestation/v1"
#define SIGSTMT_TAG_LOOKUP_REQUEST "cb/lookup-request/v1"
#define SIGSTMT_TAG_LOOKUP_RESPONSE "cb/lookup-response/v1"

#define SIGSTMT_PUBKEY_BYTES 32u
#define SIGSTMT_SIG_BYTES 64u
#define SIGSTMT_TAG_MAX_BYTES 64u
/* Largest body accepted or produced (a lookup answer with a few thousand
 * achievements fits easily). */
#define SIGSTMT_MAX_BODY_BYTES (4u * 1024u * 1024u)
#define SIGSTMT_NONCE_MIN_BYTES 16u
#define SIGSTMT_NONCE_MAX_BYTES 64u

#define SIGSTMT_ERRORS(X)                                                  \
  X(SIGSTMT_OK, "ok")                                                      \
  X(SIGSTMT_E_ARG, "invalid argument")                                     \
  X(SIGSTMT_E_NOMEM, "out of memory")                                      \
  X(SIGSTMT_E_CRYPTO, "cryptographic library failure")                     \
  X(SIGSTMT_E_KEY, "not an Ed25519 key")                                   \
  X(SIGSTMT_E_TOO_LARGE, "statement body over the size limit")             \
  X(SIGSTMT_E_MALFORMED, "malformed statement")                            \
  X(SIGSTMT_E_UNKNOWN_SIGNER, "signer is not a registry member")           \
  X(SIGSTMT_E_KEY_NOT_SIGNERS, "key does not belong to the signer")        \
  X(SIGSTMT_E_KEY_NOT_VALID, "signer's key not valid at the statement's time") \
  X(SIGSTMT_E_BAD_SIGNATURE, "signature does not verify")                  \
  X(SIGSTMT_E_BODY, "statement body is invalid")

#define SIGSTMT_ENUM_(name, str) name,
enum sigstmt_err { SIGSTMT_ERRORS(SIGSTMT_ENUM_) SIGSTMT_ERR_COUNT_ };
#undef SIGSTMT_ENUM_

/* Text for a sigstmt error (positive or negated). */
const char *sigstmt_strerror(int err);

/* --- keys --------------------------------------------------------------- */

/* Ed25519 private key from its 32-byte RFC 8032 seed. */
int sigstmt_key_from_seed(const uint8_t seed[32], EVP_PKEY **out);
/* Loads a PEM private key (PKCS#8, as written by `openssl genpkey`) and
 * checks that it is Ed25519. err names the file and the problem. */
int sigstmt_key_load(const char *path, EVP_PKEY **out, char *err, size_t errlen);
/* Raw 32-byte public key of an Ed25519 key (private or public). */
int sigstmt_key_public(const EVP_PKEY *key, uint8_t pub[SIGSTMT_PUBKEY_BYTES]);

/* --- raw sign / verify --------------------------------------------------- */

/* sig = Ed25519(key, tag || 0x00 || body). */
int sigstmt_sign_raw(EVP_PKEY *key, const char *tag, const uint8_t *body, size_t len,
                     uint8_t sig[SIGSTMT_SIG_BYTES]);
/* 0 if sig is a valid signature by pub over tag || 0x00 || body, else
 * -SIGSTMT_E_BAD_SIGNATURE (or another error for bad arguments). */
int sigstmt_verify_raw(const uint8_t pub[SIGSTMT_PUBKEY_BYTES], const char *tag,
                       const uint8_t *body, size_t len, const uint8_t sig[SIGSTMT_SIG_BYTES]);
/* Same with an already imported public key (the registry's). */
int sigstmt_verify_pkey(EVP_PKEY *pub, const char *tag, const uint8_t *body, size_t len,
                        const uint8_t sig[SIGSTMT_SIG_BYTES]);
/* Plain Ed25519 (no tag), for test vectors and benchmarks. */
int sigstmt_ed25519_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[SIGSTMT_SIG_BYTES]);
int sigstmt_ed25519_verify(const uint8_t pub[SIGSTMT_PUBKEY_BYTES], const uint8_t *msg, size_t len,
                           const uint8_t sig[SIGSTMT_SIG_BYTES]);

/* --- statements ---------------------------------------------------------- */

/* A signer: the node's id and its current identity key (borrowed). */
typedef struct sigstmt_signer {
  const char *node_id;
  EVP_PKEY *key;
} sigstmt_signer_t;

/* Fills st (already initialised with cb__signed_statement__init) from the
 * serialised body: body bytes are copied, signature computed. Free the
 * owned fields with sigstmt_statement_clear. */
int sigstmt_seal(const sigstmt_signer_t *signer, const char *tag, const uint8_t *body, size_t len,
                 Cb__SignedStatement *st);
void sigstmt_statement_clear(Cb__SignedStatement *st);

/* Checks signer membership and key ownership, then the signature over the
 * carried body. Does not check key validity time (the caller knows the
 * relevant time only after parsing the body): see sigstmt_open_*. On
 * success *member is the signer's registry entry. */
int sigstmt_verify(const registry_t *reg, const Cb__SignedStatement *st, const char *tag,
                   const registry_member_t **member, char *err, size_t errlen);

/* Builders: serialise and seal a body. */
int sigstmt_seal_lookup_request(const sigstmt_signer_t *signer, const Cb__LookupRequestBody *body,
                                Cb__SignedStatement *st);
int sigstmt_seal_lookup_response(const sigstmt_signer_t *signer, const Cb__LookupResponseBody *body,
                                 Cb__SignedStatement *st);
int sigstmt_seal_attestation(const sigstmt_signer_t *signer, const Cb__AttestationBody *body,
                             Cb__SignedStatement *st);

/* Full checks, returning the unpacked body (free with the matching
 * cb__*__free_unpacked(body, NULL)). For requests the key must be valid at
 * the request's time_ms; for responses at their time_ms; for attestations
 * at issued_at_ms (old attestations stay verifiable after rotation). The
 * body's own signer field (requester/responder/issuer) must equal the
 * statement's signer; nonce and learner_ref lengths are checked. */
int sigstmt_open_lookup_request(const registry_t *reg, const Cb__SignedStatement *st,
                                Cb__LookupRequestBody **out, char *err, size_t errlen);
int sigstmt_open_lookup_response(const registry_t *reg, const Cb__SignedStatement *st,
                                 Cb__LookupResponseBody **out, char *err, size_t errlen);
int sigstmt_open_attestation(const registry_t *reg, const Cb__SignedStatement *st,
                             Cb__AttestationBody **out, char *err, size_t errlen);

/* SHA-256 of a statement's body bytes: what a response's request_hash and
 * the access log refer to. */
void sigstmt_body_hash(const Cb__SignedStatement *st, uint8_t out[32]);

#endif
