/* cbctl's side of the admin socket: a blocking client that sends one
 * request Envelope and reads its reply. */
#ifndef CB_CBCTL_CLIENT_H
#define CB_CBCTL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cbctl_remote.h"
#include "frame.h"

typedef struct cbctl_conn {
  int fd;
  cbctl_tls_t *tls;           /* remote mode (cbctl_use_remote): TLS instead of fd */
  char io_err[512];           /* what the TLS transport said went wrong */
  uint64_t next_request_id;
  size_t max_frame_bytes;     /* for requests and replies */
  /* From the node's HelloResponse (cbctl_connect says hello first). */
  char node_id[64];
  char region[8];
  char software[64];
  uint32_t node_max_frame_bytes;
  uint32_t node_import_batch_records;
} cbctl_conn_t;

/* Outcome of a call, for exit codes and messages. */
enum {
  CBCTL_OK = 0,
  CBCTL_ENODE = -1,     /* the node answered with an Error */
  CBCTL_EIO = -2,       /* connection failed or closed: outcome unknown */
  CBCTL_EPROTO = -3,    /* the reply was not a valid frame */
};

/* Remote mode: from now on cbctl_connect reaches the node's operator port
 * over TLS as r says (r must stay valid) and ignores its socket_path. */
void cbctl_use_remote(const cbctl_remote_t *r);

/* Connects to the socket (or the remote node) and exchanges Hello. */
int cbctl_connect(cbctl_conn_t *c, const char *socket_path, char *err, size_t errlen);
void cbctl_close(cbctl_conn_t *c);

/* Raw bytes over the connection (Unix socket or TLS), for callers that
 * pipeline frames themselves (cbctl import). 0, or -1 with errno, or for
 * TLS c->io_err, saying why (errno 0: the node closed the connection). */
int cbctl_conn_write(cbctl_conn_t *c, const uint8_t *p, size_t n);
int cbctl_conn_read(cbctl_conn_t *c, uint8_t *p, size_t n);

/* Sends req (version and request_id are filled in) and waits for its
 * reply, which must be an Error or of type expect. On CBCTL_OK *reply holds the typed response (frame_msg_free it);
 * on CBCTL_ENODE err holds the reason and *err_code the ErrorCode. */
int cbctl_call(cbctl_conn_t *c, Cb__Envelope *req, Cb__Envelope__MsgCase expect, frame_msg_t **reply,
               int *err_code, char *err, size_t errlen);

/* Name of an ErrorCode, e.g. "INVALID_ARGUMENT". */
const char *cbctl_error_code_name(int code);

#endif
