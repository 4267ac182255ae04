/* The operator port: the admin protocol over TLS 1.3 on TCP
 * (spec/admin.md "Operators over TLS").
 *
 * A TLS connection is an ordinary admin connection (admin.c: framing,
 * limits, back-pressure, dispatch, deferred replies) whose bytes pass
 * through a TLS session (tls.h, TLS_MODE_OPERATOR_SERVER: the client
 * certificate must chain to the province's operator CA and carry a role).
 * This file owns the TCP listener, the TLS session of each connection,
 * the handshake and idle timeouts and the connection cap; admin.c calls
 * in for ciphertext received and plaintext to send. The caller identity
 * of the connection comes from the certificate (admin_roles.h). */
#ifndef CB_ADMIN_TLS_H
#define CB_ADMIN_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "admin.h"
#include "admin_roles.h"

typedef struct admin_tls admin_tls_t;
typedef struct admin_tls_conn admin_tls_conn_t;
typedef struct admin_conn admin_conn_t;

/* ---- called by admin.c's server ---------------------------------------- */

/* Starts the operator port if [operators] listen is configured (else *out
 * = NULL and 0). On failure *out may be set: close and free it. */
int admin_tls_start(node_t *n, admin_server_t *srv, admin_tls_t **out, char *err, size_t errlen);
/* Stops listening and the timer (connections are admin.c's to close). */
void admin_tls_close(admin_tls_t *t);
/* After the loop has closed its handles. */
void admin_tls_free(admin_tls_t *t);
/* Open TLS connections (they count against [operators] max_connections,
 * not against the Unix socket's cap). */
uint32_t admin_tls_conn_count(const admin_tls_t *t);

/* ---- called by admin.c for a TLS connection ---------------------------- */

/* Ciphertext received: advances the handshake or decrypts and hands the
 * plaintext to admin_conn_consume. */
void admin_tls_conn_on_cipher(admin_conn_t *c, admin_tls_conn_t *tc, const uint8_t *p, size_t len);
/* Encrypts plain[0..len) into a fresh malloc'd buffer (*out, *outlen). */
int admin_tls_conn_seal(admin_tls_conn_t *tc, const uint8_t *plain, size_t len, uint8_t **out,
                        size_t *outlen);
/* The connection's handle has closed. NULL-safe. */
void admin_tls_conn_free(admin_tls_conn_t *tc);

/* ---- admin.c's side, called by admin_tls.c ----------------------------- */

/* Accepts a TCP client from listener into a new admin connection that
 * takes ownership of tc (freed with the connection, also when this fails:
 * then NULL). The caller is "remote, no role" until admin_conn_set_caller. */
admin_conn_t *admin_conn_accept_tcp(admin_server_t *s, uv_stream_t *listener, admin_tls_conn_t *tc);
void admin_conn_set_caller(admin_conn_t *c, const admin_caller_t *who);
/* Plaintext from the client: frames are reassembled and dispatched. */
void admin_conn_consume(admin_conn_t *c, const uint8_t *p, size_t len);
/* Queues bytes as they are (buf is taken over, freed after the write). */
void admin_conn_write_raw(admin_conn_t *c, uint8_t *buf, size_t len);
/* Closes once everything queued is written (after a TLS alert). */
void admin_conn_finish(admin_conn_t *c);
/* Closes now. */
void admin_conn_drop(admin_conn_t *c);
int admin_conn_closing(const admin_conn_t *c);
uv_stream_t *admin_conn_stream(admin_conn_t *c);

#endif
