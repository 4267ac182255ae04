/* The crypto and transport ceilings a cross-region lookup is measured
 * against (issue 3's benchmark): OpenSSL's own Ed25519 sign and verify
 * rates, SHA-256 throughput, the cost of our signed-statement wrapper, and
 * a bare TLS 1.3 echo round trip over loopback through the same TLS
 * module the peers use. Prints a table and one JSON line.
 *
 *   bench_crypto [--seconds S] [--echoes N] [--size BYTES]
 *
 * Crypto ceiling of a lookup: the asking node signs its request and
 * verifies the answer; the answering node verifies the request and signs
 * the answer (one signature per answer, whatever its size). So each side
 * spends sign + verify per lookup, and one core per side caps lookups/s at
 * 1 / (t_sign + t_verify); with both sides' crypto running at once on two
 * threads (as in bench_lookup / bench_lookup_node) it is the lower of the
 * two threads' rates, which is the same on 2 idle cores and falls towards
 * half when other work takes a core (bench_lookup_ceiling.h).
 *
 * The TLS echo is measured twice. "blocking": both ends sleep in recv()
 * between messages, as an event loop sleeps in epoll_wait; on this VM an
 * idle vCPU halts (cpuidle haltpoll) and each wake-up costs tens of
 * microseconds, so the p50 is ~100 us when the machine is otherwise idle
 * and ~9 us when another process keeps the CPUs busy (they never halt):
 * the same code, bimodal with the machine's load. "polling": both ends
 * spin on a non-blocking recv(), so no CPU ever halts: TLS + loopback TCP
 * alone, stable across load (~9 us). Lookups go through an event loop, so
 * they pay the wake-ups too; the ratios print both. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "bench_lookup_ceiling.h"
#include "registry.h"
#include "sigstmt.h"
#include "tls.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile unsigned sink;

/* Runs op repeatedly for about `seconds`; returns operations per second. */
typedef void (*op_fn)(void *);
static double rate(op_fn op, void *arg, double seconds) {
  unsigned long n = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < 64; i++) op(arg);
    n += 64;
    t = now_s();
  } while (t - t0 < seconds);
  return (double)n / (t - t0);
}

typedef struct ed {
  EVP_PKEY *key, *pub;
  uint8_t raw_pub[32];
  uint8_t msg[256];
  size_t len;
  uint8_t sig[64];
} ed_t;

static void op_sign(void *a) {
  ed_t *e = a;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  size_t sl = 64;
  EVP_DigestSignInit(c, NULL, NULL, NULL, e->key);
  EVP_DigestSign(c, e->sig, &sl, e->msg, e->len);
  EVP_MD_CTX_free(c);
}

static void op_verify(void *a) {
  ed_t *e = a;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  EVP_DigestVerifyInit(c, NULL, NULL, NULL, e->pub);
  sink += (unsigned)EVP_DigestVerify(c, e->sig, 64, e->msg, e->len);
  EVP_MD_CTX_free(c);
}

static void op_sigstmt_verify(void *a) {
  ed_t *e = a;
  sink += (unsigned)sigstmt_verify_raw(e->raw_pub, SIGSTMT_TAG_LOOKUP_RESPONSE, e->msg, e->len,
                                       e->sig);
}

typedef struct sha {
  uint8_t *buf;
  size_t len;
} sha_t;

static void op_sha(void *a) {
  sha_t *s = a;
  uint8_t out[32];
  SHA256(s->buf, s->len, out);
  sink += out[0];
}

/* ---- TLS 1.3 echo over loopback ------------------------------------------ */

typedef struct side {
  int fd;
  tls_session_t *tls;
} side_t;

static int pump_out(side_t *s) {
  uint8_t buf[65536];
  size_t n;
  while ((n = tls_session_out_take(s->tls, buf, sizeof buf)) > 0)
    for (size_t off = 0; off < n;) {
      ssize_t w = send(s->fd, buf + off, n - off, MSG_NOSIGNAL);
      if (w <= 0) return -1;
      off += (size_t)w;
    }
  return 0;
}

/* 1: both ends poll their socket instead of sleeping in recv (see the
 * comment at the top: the echo without the CPU's wake-up from idle). */
static int g_spin;

static int pump_in(side_t *s) {
  uint8_t buf[65536];
  ssize_t n;
  do
    n = recv(s->fd, buf, sizeof buf, g_spin ? MSG_DONTWAIT : 0);
  while (n < 0 && g_spin && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
  if (n <= 0) return -1;
  return tls_session_feed(s->tls, buf, (size_t)n);
}

static int handshake(side_t *s) {
  int rc;
  while ((rc = tls_session_handshake(s->tls)) == 0)
    if (pump_out(s) || pump_in(s)) return -1;
  return rc < 0 ? -1 : pump_out(s);
}

/* Reads exactly len plaintext bytes. */
static int read_exact(side_t *s, uint8_t *buf, size_t len) {
  size_t have = 0;
  while (have < len) {
    size_t got = 0;
    if (tls_session_read(s->tls, buf + have, len - have, &got) < 0) return -1;
    have += got;
    if (got == 0 && pump_in(s)) return -1;
  }
  return 0;
}

typedef struct echo_srv {
  int listen_fd;
  tls_ctx_t *ctx;
  size_t size;
  int count;
} echo_srv_t;

static void *echo_thread(void *arg) {
  echo_srv_t *e = arg;
  side_t s = {accept(e->listen_fd, NULL, NULL), NULL};
  int one = 1;
  setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  uint8_t *buf = malloc(e->size);
  if (tls_session_new(e->ctx, &s.tls) == 0 && handshake(&s) == 0)
    for (int i = 0; i < e->count; i++) {
      if (read_exact(&s, buf, e->size)) break;
      if (tls_session_write(s.tls, buf, e->size) || pump_out(&s)) break;
    }
  free(buf);
  tls_session_free(s.tls);
  close(s.fd);
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int tls_echo(EVP_PKEY *ka, EVP_PKEY *kb, registry_t *reg, int count, size_t size,
                    double *p50_us, double *p99_us) {
  tls_config_t sc = {.mode = TLS_MODE_PEER_SERVER, .key = ka, .cert_name = "sh", .registry = reg};
  tls_config_t cc = {.mode = TLS_MODE_PEER_CLIENT, .key = kb, .cert_name = "js", .registry = reg};
  tls_ctx_t *sctx, *cctx;
  char err[256];
  if (tls_ctx_new(&sc, &sctx, err, sizeof err) || tls_ctx_new(&cc, &cctx, err, sizeof err)) {
    fprintf(stderr, "bench_crypto: %s\n", err);
    return -1;
  }
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 1) ||
      getsockname(lfd, (struct sockaddr *)&a, &alen))
    return -1;
  echo_srv_t e = {lfd, sctx, size, count + 100};
  pthread_t th;
  pthread_create(&th, NULL, echo_thread, &e);
  side_t c = {socket(AF_INET, SOCK_STREAM, 0), NULL};
  int one = 1, rc = -1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double *lat = malloc(sizeof(double) * (size_t)count);
  uint8_t *out = malloc(size), *in = malloc(size);
  memset(out, 'e', size);
  if (connect(c.fd, (struct sockaddr *)&a, sizeof a) == 0 && tls_session_new(cctx, &c.tls) == 0 &&
      handshake(&c) == 0) {
    rc = 0;
    for (int i = 0; i < count + 100 && rc == 0; i++) {
      double t0 = now_s();
      if (tls_session_write(c.tls, out, size) || pump_out(&c) || read_exact(&c, in, size)) rc = -1;
      if (i >= 100) lat[i - 100] = (now_s() - t0) * 1e6; /* first 100: warm-up */
    }
  }
  close(c.fd);
  pthread_join(th, NULL);
  close(lfd);
  if (rc == 0) {
    qsort(lat, (size_t)count, sizeof *lat, cmp_d);
    *p50_us = lat[count / 2];
    *p99_us = lat[(size_t)count * 99 / 100];
  }
  free(lat);
  free(out);
  free(in);
  tls_session_free(c.tls);
  tls_ctx_free(sctx);
  tls_ctx_free(cctx);
  return rc;
}

int main(int argc, char **argv) {
  double seconds = 1.0;
  int echoes = 5000;
  size_t size = 256;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--echoes") && i + 1 < argc) echoes = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = (size_t)atol(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_crypto [--seconds S] [--echoes N] [--size BYTES]\n");
      return 2;
    }
  }
  if (seconds <= 0 || echoes < 100 || size == 0 || size > (1u << 20)) {
    fprintf(stderr, "bench_crypto: seconds > 0, echoes >= 100, 0 < size <= 1 MiB\n");
    return 2;
  }
  ed_t e = {0};
  uint8_t seed[32] = {42}, seed2[32] = {43};
  sigstmt_key_from_seed(seed, &e.key);
  sigstmt_key_public(e.key, e.raw_pub);
  e.pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, e.raw_pub, 32);
  /* A lookup answer's signed message is body-sized; hash cost inside
   * Ed25519 is small next to the curve work, so 256 bytes is typical. */
  e.len = sizeof e.msg;
  memset(e.msg, 'm', e.len);
  op_sign(&e);
  double sign_rate = rate(op_sign, &e, seconds);
  double verify_rate = rate(op_verify, &e, seconds);
  sigstmt_sign_raw(e.key, SIGSTMT_TAG_LOOKUP_RESPONSE, e.msg, e.len, e.sig);
  double stmt_verify_rate = rate(op_sigstmt_verify, &e, seconds);
  sha_t s64 = {malloc(64), 64}, s16k = {malloc(16384), 16384};
  memset(s64.buf, 1, 64);
  memset(s16k.buf, 1, 16384);
  double sha64 = rate(op_sha, &s64, seconds / 2);
  double sha16k = rate(op_sha, &s16k, seconds / 2);

  EVP_PKEY *kb;
  sigstmt_key_from_seed(seed2, &kb);
  uint8_t pa[32], pb[32];
  sigstmt_key_public(e.key, pa);
  sigstmt_key_public(kb, pb);
  char json[1024], ha[65], hb[65];
  for (int i = 0; i < 32; i++) {
    sprintf(ha + 2 * i, "%02x", pa[i]);
    sprintf(hb + 2 * i, "%02x", pb[i]);
  }
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":["
           "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:1\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]},"
           "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"127.0.0.1:2\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]}]}",
           0, ha, hb);
  registry_t *reg;
  char err[256];
  if (registry_parse(json, strlen(json), &reg, err, sizeof err)) {
    fprintf(stderr, "bench_crypto: %s\n", err);
    return 1;
  }
  double p50 = 0, p99 = 0, sp50 = 0, sp99 = 0;
  if (tls_echo(e.key, kb, reg, echoes, size, &p50, &p99)) {
    fprintf(stderr, "bench_crypto: TLS echo failed\n");
    return 1;
  }
  g_spin = 1;
  if (tls_echo(e.key, kb, reg, echoes, size, &sp50, &sp99)) {
    fprintf(stderr, "bench_crypto: TLS echo (polling) failed\n");
    return 1;
  }
  g_spin = 0;
  double per_side = 1.0 / (1.0 / sign_rate + 1.0 / verify_rate);
  bench_ceiling_t cl;
  bench_ceiling_measure(e.key, kb, seconds / 2, &cl);

  printf("%-44s %14s\n", "measure", "value");
  printf("%-44s %14.0f\n", "Ed25519 sign /s (OpenSSL, 256 B)", sign_rate);
  printf("%-44s %14.0f\n", "Ed25519 verify /s (OpenSSL, 256 B)", verify_rate);
  printf("%-44s %14.0f\n", "sigstmt_verify_raw /s (key import + tag)", stmt_verify_rate);
  printf("%-44s %14.2f\n", "  ratio sigstmt / OpenSSL verify", stmt_verify_rate / verify_rate);
  printf("%-44s %14.0f\n", "SHA-256 /s (64 B)", sha64);
  printf("%-44s %14.1f\n", "SHA-256 MB/s (16 KiB)", sha16k * 16384 / 1e6);
  printf("%-44s %14.1f\n", "TLS 1.3 echo p50 us (loopback, blocking)", p50);
  printf("%-44s %14.1f\n", "TLS 1.3 echo p99 us (loopback, blocking)", p99);
  printf("%-44s %14.1f\n", "TLS 1.3 echo p50 us (loopback, polling)", sp50);
  printf("%-44s %14.1f\n", "TLS 1.3 echo p99 us (loopback, polling)", sp99);
  printf("%-44s %14.0f\n", "crypto ceiling lookups/s, own core per side", per_side);
  printf("%-44s %14.0f\n", "crypto ceiling lookups/s, both sides at once", cl.both);
  printf("  (each side: 1 sign + 1 verify per lookup; own core: 1/(t_sign + t_verify);\n"
         "   both at once: two threads measured together, the lower rate)\n");
  printf("{\"bench\":\"crypto\",\"ed25519_sign_per_s\":%.0f,\"ed25519_verify_per_s\":%.0f,"
         "\"sigstmt_verify_per_s\":%.0f,\"sha256_64B_per_s\":%.0f,\"sha256_16KiB_MB_per_s\":%.1f,"
         "\"tls13_echo_bytes\":%zu,\"tls13_echo_p50_us\":%.1f,\"tls13_echo_p99_us\":%.1f,"
         "\"tls13_echo_poll_p50_us\":%.1f,\"tls13_echo_poll_p99_us\":%.1f,"
         "\"lookup_crypto_ceiling_per_s\":%.0f,\"lookup_crypto_ceiling_both_per_s\":%.0f}\n",
         sign_rate, verify_rate, stmt_verify_rate, sha64, sha16k * 16384 / 1e6, size, p50, p99, sp50, sp99,
         per_side, cl.both);
  registry_release(reg);
  EVP_PKEY_free(e.key);
  EVP_PKEY_free(e.pub);
  EVP_PKEY_free(kb);
  free(s64.buf);
  free(s16k.buf);
  return 0;
}
