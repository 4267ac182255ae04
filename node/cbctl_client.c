/* Blocking admin client: see cbctl_client.h. */
#include "cbctl_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.pb-c.h"

static const cbctl_remote_t *remote; /* set by cbctl_use_remote */

void cbctl_use_remote(const cbctl_remote_t *r)
{
  remote = r;
}

/* Replies cbctl accepts; the node is trusted no further than its frame
 * limit and the unpack cap. */
static const frame_type_t reply_types[] = {
  {CB__ENVELOPE__MSG_ERROR, "Error", NULL},
  {CB__ENVELOPE__MSG_HELLO_RESPONSE, "HelloResponse", NULL},
  {CB__ENVELOPE__MSG_LEARNER_OPEN_RESPONSE, "LearnerOpenResponse", NULL},
  {CB__ENVELOPE__MSG_DEPOSIT_RESPONSE, "DepositResponse", NULL},
  {CB__ENVELOPE__MSG_IMPORT_BATCH_RESPONSE, "ImportBatchResponse", NULL},
  {CB__ENVELOPE__MSG_TRANSCRIPT_RESPONSE, "TranscriptResponse", NULL},
  {CB__ENVELOPE__MSG_STATS_RESPONSE, "StatsResponse", NULL},
  {CB__ENVELOPE__MSG_REGION_LOOKUP_RESPONSE, "RegionLookupResponse", NULL},
  {CB__ENVELOPE__MSG_ACCESS_LOG_RESPONSE, "AccessLogResponse", NULL},
};

const char *cbctl_error_code_name(int code)
{
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&cb__error_code__descriptor, code);
  if (!v) return "UNKNOWN_ERROR";
  /* "ERROR_INVALID_ARGUMENT" -> "INVALID_ARGUMENT" */
  return strncmp(v->name, "ERROR_", 6) == 0 ? v->name + 6 : v->name;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads exactly n bytes; 0, or -1 on error/EOF (errno 0 for EOF). */
static int read_all(int fd, uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) {
      errno = 0;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

int cbctl_conn_read(cbctl_conn_t *c, uint8_t *p, size_t n)
{
  if (c->tls) return cbctl_remote_read(c->tls, p, n, c->io_err, sizeof c->io_err);
  return read_all(c->fd, p, n);
}

int cbctl_conn_write(cbctl_conn_t *c, const uint8_t *p, size_t n)
{
  if (c->tls) return cbctl_remote_write(c->tls, p, n, c->io_err, sizeof c->io_err);
  return write_all(c->fd, p, n);
}

int cbctl_call(cbctl_conn_t *c, Cb__Envelope *req, Cb__Envelope__MsgCase expect, frame_msg_t **reply,
               int *err_code, char *err, size_t errlen)
{
  *reply = NULL;
  if (err_code) *err_code = 0;
  req->version = FRAME_VERSION;
  req->request_id = c->next_request_id++;
  uint8_t *buf;
  size_t len;
  int rc = frame_encode(req, c->max_frame_bytes, &buf, &len);
  if (rc != 0) {
    snprintf(err, errlen, "request not sent: %s", frame_strerror(rc));
    return CBCTL_EPROTO;
  }
  rc = cbctl_conn_write(c, buf, len);
  free(buf);
  if (rc != 0) {
    snprintf(err, errlen, "sending to the node failed: %s", c->tls ? c->io_err : strerror(errno));
    return CBCTL_EIO;
  }
  uint8_t hdr[FRAME_HEADER_BYTES];
  if (cbctl_conn_read(c, hdr, sizeof hdr) != 0) {
    snprintf(err, errlen, "no reply from the node: %s",
             c->tls ? c->io_err : errno ? strerror(errno) : "connection closed");
    return CBCTL_EIO;
  }
  uint32_t blen;
  rc = frame_header_decode(hdr, c->max_frame_bytes, &blen);
  if (rc != 0) {
    snprintf(err, errlen, "bad reply from the node: %s", frame_strerror(rc));
    return CBCTL_EPROTO;
  }
  uint8_t *body = malloc(blen);
  if (!body) {
    snprintf(err, errlen, "out of memory");
    return CBCTL_EPROTO;
  }
  if (cbctl_conn_read(c, body, blen) != 0) {
    free(body);
    snprintf(err, errlen, "reply cut short: %s", c->tls ? c->io_err : errno ? strerror(errno) : "connection closed");
    return CBCTL_EIO;
  }
  frame_msg_t *m;
  char why[256];
  rc = frame_decode(body, blen, reply_types, sizeof reply_types / sizeof reply_types[0], &m, NULL, why,
                    sizeof why);
  free(body);
  if (rc != 0) {
    snprintf(err, errlen, "bad reply from the node: %s", why);
    return CBCTL_EPROTO;
  }
  const Cb__Envelope *env = frame_msg_envelope(m);
  if (env->msg_case == CB__ENVELOPE__MSG_ERROR) {
    const Cb__Error *e = env->error;
    if (err_code) *err_code = (int)e->code;
    snprintf(err, errlen, "%s", e->reason);
    frame_msg_free(m);
    return CBCTL_ENODE;
  }
  if (env->msg_case != expect) {
    snprintf(err, errlen, "the node replied with %s, not the expected response", frame_msg_type(m)->name);
    frame_msg_free(m);
    return CBCTL_EPROTO;
  }
  if (env->request_id != req->request_id) {
    snprintf(err, errlen, "reply to request %llu while waiting for %llu", (unsigned long long)env->request_id,
             (unsigned long long)req->request_id);
    frame_msg_free(m);
    return CBCTL_EPROTO;
  }
  *reply = m;
  return CBCTL_OK;
}

static int unix_connect(cbctl_conn_t *c, const char *socket_path, char *err, size_t errlen)
{
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(socket_path) >= sizeof sa.sun_path) {
    snprintf(err, errlen, "%s: socket path too long", socket_path);
    return CBCTL_EIO;
  }
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", socket_path);
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    snprintf(err, errlen, "cannot connect to %s: %s (is cbnode running?)", socket_path, strerror(errno));
    cbctl_close(c);
    return CBCTL_EIO;
  }
  return 0;
}

int cbctl_connect(cbctl_conn_t *c, const char *socket_path, char *err, size_t errlen)
{
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->next_request_id = 1;
  c->max_frame_bytes = FRAME_MAX_CEILING_BYTES;
  if (remote) {
    if (cbctl_remote_open(remote, &c->tls, err, errlen) != 0) return CBCTL_EIO;
  } else if (unix_connect(c, socket_path, err, errlen) != 0) {
    return CBCTL_EIO;
  }
  Cb__Envelope req = CB__ENVELOPE__INIT;
  Cb__HelloRequest hello = CB__HELLO_REQUEST__INIT;
  hello.client = (char *)"cbctl 0.1";
  req.msg_case = CB__ENVELOPE__MSG_HELLO_REQUEST;
  req.hello_request = &hello;
  frame_msg_t *m;
  int rc = cbctl_call(c, &req, CB__ENVELOPE__MSG_HELLO_RESPONSE, &m, NULL, err, errlen);
  if (rc != CBCTL_OK) {
    cbctl_close(c);
    return rc;
  }
  const Cb__HelloResponse *h = frame_msg_envelope(m)->hello_response;
  if (!h) {
    frame_msg_free(m);
    snprintf(err, errlen, "unexpected reply to hello");
    cbctl_close(c);
    return CBCTL_EPROTO;
  }
  snprintf(c->node_id, sizeof c->node_id, "%s", h->node_id);
  snprintf(c->region, sizeof c->region, "%s", h->region);
  snprintf(c->software, sizeof c->software, "%s", h->software);
  c->node_max_frame_bytes = h->max_frame_bytes;
  c->node_import_batch_records = h->import_batch_records;
  if (h->max_frame_bytes >= 1024 && h->max_frame_bytes < c->max_frame_bytes)
    c->max_frame_bytes = h->max_frame_bytes;
  frame_msg_free(m);
  return CBCTL_OK;
}

void cbctl_close(cbctl_conn_t *c)
{
  if (c->tls) {
    cbctl_remote_close(c->tls); /* owns the socket */
    c->tls = NULL;
    return;
  }
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}
