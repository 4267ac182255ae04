/* TLS 1.3 sessions driven through memory BIOs, independent of sockets
 * (spec/protocol.md "Transport"). The caller moves bytes: ciphertext read
 * from the network goes in with tls_session_feed, ciphertext to send comes
 * out with tls_session_out_take; plaintext goes through tls_session_write
 * and tls_session_read.
 *
 * Four modes:
 *   PEER_SERVER / PEER_CLIENT  node to node. Each side presents a
 *       self-signed certificate over its Ed25519 identity key; the other
 *       side pins: the certificate's key must be an Ed25519 key of a
 *       registry member, valid now. No CA, no certificate dates, no
 *       session resumption (a resumed session would skip the pin).
 *   OPERATOR_SERVER            a node's operator port: the client
 *       certificate must chain to the province's operator CA and carry a
 *       role (and, for outlets, an institution code) in the extensions
 *       below.
 *   OPERATOR_CLIENT            cbctl: presents the operator certificate,
 *       pins the node's identity key.
 * Only TLS 1.3 is offered or accepted; a session without a verified peer
 * is never established. */
#ifndef CB_TLS_H
#define CB_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "registry.h"

/* Private OIDs (under 2.25, UUID arc of ITU-T X.667, no registration
 * needed) of the operator certificate extensions. Each extension value is
 * a DER UTF8String. */
#define TLS_OID_ARC "2.25.310943719422949667218847667254963332823"
#define TLS_OID_OPERATOR_ROLE TLS_OID_ARC ".1"
#define TLS_OID_OPERATOR_INSTITUTION TLS_OID_ARC ".2"
#define TLS_INSTITUTION_MAX 32u
#define TLS_OPERATOR_NAME_MAX 64u

#define TLS_ERRORS(X)                                                     \
  X(TLS_OK, "ok")                                                         \
  X(TLS_E_ARG, "invalid argument")                                        \
  X(TLS_E_NOMEM, "out of memory")                                         \
  X(TLS_E_CONFIG, "TLS configuration error")                              \
  X(TLS_E_HANDSHAKE, "TLS handshake failed")                              \
  X(TLS_E_PEER_REFUSED, "peer certificate refused")                       \
  X(TLS_E_NOT_READY, "TLS handshake not complete")                        \
  X(TLS_E_CLOSED, "TLS session closed by peer")                           \
  X(TLS_E_PROTOCOL, "TLS protocol error")

#define TLS_ENUM_(name, str) name,
enum tls_err { TLS_ERRORS(TLS_ENUM_) TLS_ERR_COUNT_ };
#undef TLS_ENUM_

const char *tls_strerror(int err);

typedef enum tls_mode {
  TLS_MODE_PEER_SERVER,
  TLS_MODE_PEER_CLIENT,
  TLS_MODE_OPERATOR_SERVER,
  TLS_MODE_OPERATOR_CLIENT,
} tls_mode_t;

typedef enum tls_role {
  TLS_ROLE_NONE = 0,
  TLS_ROLE_ADMIN,
  TLS_ROLE_OUTLET,
  TLS_ROLE_BRANCH,
  TLS_ROLE_APPRAISAL_CENTRE,
  TLS_ROLE_AUDITOR,
} tls_role_t;

/* "admin", "outlet", "branch", "appraisal-centre", "auditor". */
const char *tls_role_name(tls_role_t role);
tls_role_t tls_role_parse(const char *s);

typedef struct tls_operator {
  tls_role_t role;
  char institution[TLS_INSTITUTION_MAX + 1]; /* outlets: required; others: optional */
  char name[TLS_OPERATOR_NAME_MAX + 1];      /* certificate subject CN */
} tls_operator_t;

/* What each role may do is decided in one place, node/admin_roles.c
 * (spec/admin.md "Roles"); this module only says who the operator is. */

/* Current Unix time in ms; injectable so tests can move the clock. */
typedef int64_t (*tls_clock_fn)(void *arg);

typedef struct tls_config {
  tls_mode_t mode;
  EVP_PKEY *key;              /* own key (Ed25519 in peer modes); borrowed, ref taken */
  X509 *cert;                 /* own certificate; NULL in peer modes = self-signed made here */
  const char *cert_name;      /* CN of the generated certificate (node id) */
  registry_t *registry;       /* PEER_*: pin source (retained) */
  const char *operator_ca_path; /* OPERATOR_SERVER: PEM of the province's operator CA */
  const uint8_t *server_pin;  /* OPERATOR_CLIENT: the node's 32-byte identity key */
  tls_clock_fn clock;         /* NULL: the system clock */
  void *clock_arg;
} tls_config_t;

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_session tls_session_t;

int tls_ctx_new(const tls_config_t *cfg, tls_ctx_t **out, char *err, size_t errlen);
void tls_ctx_free(tls_ctx_t *ctx);
/* Swaps the pin source (registry reload). Sessions already established keep
 * their peer; handshakes from now on use the new snapshot. */
void tls_ctx_set_registry(tls_ctx_t *ctx, registry_t *reg);

int tls_session_new(tls_ctx_t *ctx, tls_session_t **out);
void tls_session_free(tls_session_t *s);
/* PEER_CLIENT: the member we meant to reach; a different member's key is
 * refused even if it is valid. */
int tls_session_expect_peer(tls_session_t *s, const char *node_id);

/* Ciphertext received from the network. Copies; always accepts all. */
int tls_session_feed(tls_session_t *s, const uint8_t *data, size_t len);
/* Advances the handshake: 1 established, 0 needs more input (send what
 * tls_session_out_pending says first), negative error (details in
 * tls_session_error). Starts the handshake for clients. */
int tls_session_handshake(tls_session_t *s);
int tls_session_established(const tls_session_t *s);
/* Plaintext available: *got bytes copied (0: none yet). -TLS_E_CLOSED on
 * close_notify, other negative values on errors. */
int tls_session_read(tls_session_t *s, uint8_t *buf, size_t cap, size_t *got);
/* Encrypts all of data into the outgoing buffer. */
int tls_session_write(tls_session_t *s, const uint8_t *data, size_t len);
/* Sends close_notify (queued as ciphertext). */
void tls_session_close(tls_session_t *s);
size_t tls_session_out_pending(const tls_session_t *s);
/* Moves up to cap bytes of ciphertext to send into buf; returns the count. */
size_t tls_session_out_take(tls_session_t *s, uint8_t *buf, size_t cap);

/* After the handshake. Peer modes: the pinned member and key. */
const char *tls_session_peer_node(const tls_session_t *s);
const uint8_t *tls_session_peer_key(const tls_session_t *s);
/* OPERATOR_SERVER: the operator's role and institution. */
const tls_operator_t *tls_session_operator(const tls_session_t *s);
/* Why the session failed, for the log: names the peer and the reason. */
const char *tls_session_error(const tls_session_t *s);

/* A self-signed X.509 certificate over an Ed25519 key, CN = name. */
int tls_make_self_signed(EVP_PKEY *key, const char *name, X509 **out);
/* Loads a PEM certificate. */
int tls_load_cert(const char *path, X509 **out, char *err, size_t errlen);

#endif
