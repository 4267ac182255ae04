/* cbctl's remote transport: the node's operator port over TLS 1.3
 * (spec/admin.md "Operators over TLS"). Blocking; cbctl_client.c uses it
 * in place of the Unix socket when cbctl runs with --remote.
 *
 * cbctl presents the operator certificate (issued by the province's
 * operator CA: deploy/keys.sh operator) and pins the node's Ed25519
 * identity key: a node presenting any other key is refused before a byte
 * of the request leaves. */
#ifndef CB_CBCTL_REMOTE_H
#define CB_CBCTL_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#define CBCTL_NODE_KEY_BYTES 32u
#define CBCTL_HANDSHAKE_TIMEOUT_MS 10000

typedef struct cbctl_remote {
  const char *addr;        /* "HOST:PORT" ("[v6]:PORT") */
  const char *cert_file;   /* operator certificate, PEM */
  const char *key_file;    /* its private key, PEM */
  uint8_t node_key[CBCTL_NODE_KEY_BYTES]; /* the node's identity key */
} cbctl_remote_t;

typedef struct cbctl_tls cbctl_tls_t;

/* Connects, loads the certificate and key, and completes the handshake.
 * Errors name what failed: the address, a file, the pin, the handshake. */
int cbctl_remote_open(const cbctl_remote_t *r, cbctl_tls_t **out, char *err, size_t errlen);
/* 0, or -1 with the reason in err (a refusal by the node is named so). */
int cbctl_remote_write(cbctl_tls_t *t, const uint8_t *p, size_t n, char *err, size_t errlen);
int cbctl_remote_read(cbctl_tls_t *t, uint8_t *p, size_t n, char *err, size_t errlen);
/* Sends close_notify (best effort), closes the socket, frees. NULL-safe. */
void cbctl_remote_close(cbctl_tls_t *t);

/* The node key from 64 hex digits, or from a PEM file holding the node's
 * certificate or public key (deploy/keys.sh node writes NODE_ID.crt). */
int cbctl_remote_key_from_hex(const char *hex, uint8_t out[CBCTL_NODE_KEY_BYTES], char *err, size_t errlen);
int cbctl_remote_key_from_file(const char *path, uint8_t out[CBCTL_NODE_KEY_BYTES], char *err,
                               size_t errlen);

#endif
