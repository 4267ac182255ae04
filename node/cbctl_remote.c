/* cbctl over TLS to the operator port: see cbctl_remote.h. */
#include "cbctl_remote.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "tls.h"

struct cbctl_tls {
  int fd;
  tls_ctx_t *ctx;
  tls_session_t *s;
  const char *addr;
};

static int seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int seterr(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- node key ------------------------------------------------------------ */

int cbctl_remote_key_from_hex(const char *hex, uint8_t out[CBCTL_NODE_KEY_BYTES], char *err, size_t errlen)
{
  if (strlen(hex) != 2 * CBCTL_NODE_KEY_BYTES)
    return seterr(err, errlen, "--node-key: expected %u hex digits (the node's Ed25519 identity key), got %zu",
                  2 * CBCTL_NODE_KEY_BYTES, strlen(hex));
  for (size_t i = 0; i < CBCTL_NODE_KEY_BYTES; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
        !strchr("0123456789abcdefABCDEF", hex[2 * i + 1]))
      return seterr(err, errlen, "--node-key: '%.2s' at position %zu is not hex", hex + 2 * i, 2 * i);
    out[i] = (uint8_t)v;
  }
  return 0;
}

int cbctl_remote_key_from_file(const char *path, uint8_t out[CBCTL_NODE_KEY_BYTES], char *err, size_t errlen)
{
  FILE *f = fopen(path, "r");
  if (!f) return seterr(err, errlen, "--node-cert %s: cannot open: %s", path, strerror(errno));
  EVP_PKEY *pk = NULL;
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  if (x) {
    pk = X509_get_pubkey(x);
    X509_free(x);
  } else {
    rewind(f);
    pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
  }
  fclose(f);
  ERR_clear_error();
  size_t len = CBCTL_NODE_KEY_BYTES;
  int ok = pk && EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519 &&
           EVP_PKEY_get_raw_public_key(pk, out, &len) == 1 && len == CBCTL_NODE_KEY_BYTES;
  EVP_PKEY_free(pk);
  ERR_clear_error();
  if (!ok)
    return seterr(err, errlen, "--node-cert %s: not a PEM certificate or public key with an Ed25519 key", path);
  return 0;
}

/* ---- socket -------------------------------------------------------------- */

static int tcp_connect(const char *addr, char *err, size_t errlen)
{
  const char *colon = strrchr(addr, ':');
  char host[256];
  if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= sizeof host)
    return seterr(err, errlen, "--remote '%s': expected HOST:PORT", addr);
  const char *h = addr;
  size_t hlen = (size_t)(colon - addr);
  if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
    h++;
    hlen -= 2;
  }
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, colon + 1, &hints, &res);
  if (rc != 0) return seterr(err, errlen, "--remote %s: %s", addr, gai_strerror(rc));
  int fd = -1, e = 0;
  for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      e = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0)
    return seterr(err, errlen, "cannot connect to %s: %s (is the node's operator port open?)", addr,
                  strerror(e ? e : errno));
  /* Requests are small and answered one at a time: do not let Nagle hold
   * them back waiting for an ACK. */
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n)
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

/* Sends whatever the session has queued. */
static int flush(cbctl_tls_t *t, char *err, size_t errlen)
{
  uint8_t buf[16384];
  size_t n;
  while ((n = tls_session_out_take(t->s, buf, sizeof buf)) > 0)
    if (send_all(t->fd, buf, n) != 0)
      return seterr(err, errlen, "sending to %s: %s", t->addr, strerror(errno));
  return 0;
}

/* Reads one chunk of ciphertext into the session; timeout_ms < 0: none. */
static int pump(cbctl_tls_t *t, int timeout_ms, char *err, size_t errlen)
{
  if (timeout_ms >= 0) {
    struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
    int rc;
    do rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) return seterr(err, errlen, "no answer from %s within %d ms", t->addr, timeout_ms);
  }
  uint8_t buf[16384];
  ssize_t r;
  do r = recv(t->fd, buf, sizeof buf, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return seterr(err, errlen, "reading from %s: %s", t->addr, strerror(errno));
  if (r == 0) {
    errno = 0;
    return seterr(err, errlen, "%s closed the connection", t->addr);
  }
  tls_session_feed(t->s, buf, (size_t)r);
  return 0;
}

/* A session error, said plainly: an alert from the node after our
 * certificate went out is the node refusing it. */
static int session_err(cbctl_tls_t *t, char *err, size_t errlen)
{
  const char *why = tls_session_error(t->s);
  const char *alert = strstr(why, "alert ");
  if (alert)
    return seterr(err, errlen,
                  "%s refused this operator certificate (TLS alert: %s): is it issued by this "
                  "province's operator CA, still valid, and carrying a role?",
                  t->addr, alert + 6);
  if (strstr(why, "pinned key"))
    return seterr(err, errlen,
                  "%s presented a node key that does not match --node-key/--node-cert: not the node "
                  "you meant (or its key was rotated); nothing was sent",
                  t->addr);
  return seterr(err, errlen, "TLS with %s: %s", t->addr, why[0] ? why : "failed");
}

/* ---- open / read / write / close ------------------------------------------ */

static int load_credentials(const cbctl_remote_t *r, X509 **cert, EVP_PKEY **key, char *err, size_t errlen)
{
  char why[320];
  if (tls_load_cert(r->cert_file, cert, why, sizeof why) != 0)
    return seterr(err, errlen, "--cert: %s", why);
  FILE *f = fopen(r->key_file, "r");
  if (!f) {
    X509_free(*cert);
    return seterr(err, errlen, "--key %s: cannot open: %s", r->key_file, strerror(errno));
  }
  *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  ERR_clear_error();
  if (!*key) {
    X509_free(*cert);
    return seterr(err, errlen, "--key %s: not a PEM private key", r->key_file);
  }
  return 0;
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cbctl_remote_open(const cbctl_remote_t *r, cbctl_tls_t **out, char *err, size_t errlen)
{
  *out = NULL;
  X509 *cert = NULL;
  EVP_PKEY *key = NULL;
  if (load_credentials(r, &cert, &key, err, errlen) != 0) return -1;
  cbctl_tls_t *t = calloc(1, sizeof *t);
  if (!t) {
    X509_free(cert);
    EVP_PKEY_free(key);
    return seterr(err, errlen, "out of memory");
  }
  t->fd = -1;
  t->addr = r->addr;
  tls_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.mode = TLS_MODE_OPERATOR_CLIENT;
  cfg.key = key;
  cfg.cert = cert;
  cfg.server_pin = r->node_key;
  char why[320];
  int rc = tls_ctx_new(&cfg, &t->ctx, why, sizeof why);
  X509_free(cert); /* the context holds its own references */
  EVP_PKEY_free(key);
  if (rc != 0) {
    seterr(err, errlen, "--cert %s / --key %s: %s", r->cert_file, r->key_file, why);
    goto fail;
  }
  if (tls_session_new(t->ctx, &t->s) != 0) {
    seterr(err, errlen, "out of memory");
    goto fail;
  }
  t->fd = tcp_connect(r->addr, err, errlen);
  if (t->fd < 0) goto fail;
  int64_t deadline = mono_ms() + CBCTL_HANDSHAKE_TIMEOUT_MS;
  for (;;) {
    rc = tls_session_handshake(t->s);
    if (flush(t, err, errlen) != 0) goto fail;
    if (rc == 1) break;
    if (rc < 0) {
      session_err(t, err, errlen);
      goto fail;
    }
    int64_t left = deadline - mono_ms();
    if (left <= 0 || pump(t, (int)left, err, errlen) != 0) {
      if (left <= 0) seterr(err, errlen, "TLS handshake with %s timed out", r->addr);
      else if (errno == 0)
        seterr(err, errlen, "%s closed the connection during the TLS handshake (busy, or not an operator port?)",
               r->addr);
      goto fail;
    }
  }
  *out = t;
  return 0;
fail:
  cbctl_remote_close(t);
  return -1;
}

int cbctl_remote_write(cbctl_tls_t *t, const uint8_t *p, size_t n, char *err, size_t errlen)
{
  if (tls_session_write(t->s, p, n) != 0) return session_err(t, err, errlen);
  return flush(t, err, errlen);
}

int cbctl_remote_read(cbctl_tls_t *t, uint8_t *p, size_t n, char *err, size_t errlen)
{
  while (n > 0) {
    size_t got = 0;
    int rc = tls_session_read(t->s, p, n, &got);
    if (rc == -TLS_E_CLOSED) return seterr(err, errlen, "%s closed the TLS session", t->addr);
    if (rc < 0) return session_err(t, err, errlen);
    if (got) {
      p += got;
      n -= got;
      continue;
    }
    if (flush(t, err, errlen) != 0 || pump(t, -1, err, errlen) != 0) return -1;
  }
  return 0;
}

void cbctl_remote_close(cbctl_tls_t *t)
{
  if (!t) return;
  if (t->s && t->fd >= 0) {
    char ignored[64];
    tls_session_close(t->s);
    flush(t, ignored, sizeof ignored);
  }
  if (t->fd >= 0) close(t->fd);
  tls_session_free(t->s);
  tls_ctx_free(t->ctx);
  free(t);
}
