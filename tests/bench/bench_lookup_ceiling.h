/* The crypto ceiling of a lookup, shared by bench_lookup and
 * bench_lookup_node (header only: each benchmark is one program).
 *
 * A lookup costs exactly two signatures and two verifications: the asking
 * side signs its request and verifies the answer, the answering side
 * verifies the request and signs the answer. The two sides run at the same
 * time on different threads (bench_lookup) or processes
 * (bench_lookup_node), so the ceiling is what BOTH can do at once:
 *
 *   own_core   1 / (t_sign + t_verify), measured on one thread alone: the
 *              ceiling when each side has a core to itself (2 free cores);
 *   both       two threads, one per side, each doing sign + verify pairs for
 *              the same time, started together: the lower of the two rates.
 *              On an idle 2-core machine this equals own_core; when other
 *              work takes a core (or with 1 core) it falls towards
 *              own_core / 2, exactly as the benchmark's two sides would.
 *
 * The targets are judged against `both` (measured in the same run, so the
 * machine's load at that moment counts on both sides of the ratio); both
 * numbers are printed. Uses OpenSSL's Ed25519 (sigstmt_ed25519_*) on a
 * 600-byte message, about an answer body with 20 achievements. */
#ifndef CB_BENCH_LOOKUP_CEILING_H
#define CB_BENCH_LOOKUP_CEILING_H

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "sigstmt.h"

typedef struct bench_ceiling {
  double sign_per_s, verify_per_s; /* one thread alone */
  double own_core;                 /* 1 / (t_sign + t_verify) */
  double both;                     /* both sides at once: min of the two threads */
} bench_ceiling_t;

typedef struct bench_ceiling_side {
  EVP_PKEY *key;
  double seconds, rate;
  int op; /* 0 sign, 1 verify, 2 sign + verify */
} bench_ceiling_side_t;

static double bench_ceiling_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *bench_ceiling_loop(void *arg)
{
  bench_ceiling_side_t *s = arg;
  uint8_t pub[SIGSTMT_PUBKEY_BYTES], sig[SIGSTMT_SIG_BYTES], msg[600];
  memset(msg, 'x', sizeof msg);
  sigstmt_key_public(s->key, pub);
  sigstmt_ed25519_sign(s->key, msg, sizeof msg, sig);
  long n = 0;
  double t0 = bench_ceiling_now(), t;
  do {
    for (int i = 0; i < 16; i++) {
      if (s->op != 1) sigstmt_ed25519_sign(s->key, msg, sizeof msg, sig);
      if (s->op != 0) sigstmt_ed25519_verify(pub, msg, sizeof msg, sig);
    }
    n += 16;
    t = bench_ceiling_now();
  } while (t - t0 < s->seconds);
  s->rate = (double)n / (t - t0);
  return NULL;
}

/* ka, kb: the two sides' keys; seconds per measurement (4 of them). */
static void bench_ceiling_measure(EVP_PKEY *ka, EVP_PKEY *kb, double seconds, bench_ceiling_t *out)
{
  bench_ceiling_side_t a = {ka, seconds, 0, 0}, b = {kb, seconds, 0, 2};
  bench_ceiling_loop(&a);
  out->sign_per_s = a.rate;
  a.op = 1;
  bench_ceiling_loop(&a);
  out->verify_per_s = a.rate;
  a.op = 2;
  bench_ceiling_loop(&a);
  out->own_core = a.rate; /* ~ 1 / (1/sign_per_s + 1/verify_per_s) */
  pthread_t th;
  if (pthread_create(&th, NULL, bench_ceiling_loop, &b) != 0) {
    out->both = out->own_core / 2; /* no second thread: both sides share this one */
    return;
  }
  bench_ceiling_loop(&a);
  pthread_join(th, NULL);
  out->both = a.rate < b.rate ? a.rate : b.rate;
}

#endif
