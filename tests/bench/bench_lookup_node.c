/* Lookup round trip through a real cbnode (issue 3's benchmark, the
 * through-the-node variant of bench_lookup): this program is a federation
 * member (its key, the registry) asking a running cbnode over the peer
 * protocol; the node answers from LMDB and commits an access-log entry
 * durably before each answer (spec/protocol.md §10). Driven by
 * bench_lookup_node.sh, which sets the node up with a learner of 20
 * achievements.
 *
 *   bench_lookup_node --connect HOST:PORT --registry FILE --key PEM --node ID
 *                     --target ID --ref HEX64 [--lookups N] [--expect K]
 *                     [--node-pid PID]
 *
 * Prints p50/p99 latency and lookups/s at 1 and 32 in flight; in the same
 * run OpenSSL's own Ed25519 sign and verify rates, the crypto ceiling of a
 * lookup (bench_lookup_ceiling.h: this program and cbnode each spend one
 * sign + one verify per lookup, on two cores at once) and the ratios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "bench_lookup_ceiling.h"
#include "peer.h"
#include "peer_lookup.h"

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct run {
  uv_loop_t loop;
  peer_net_t *net;
  registry_t *reg;
  sigstmt_signer_t self;
  const char *target;
  uint8_t ref[32];
  size_t expect;
  int total, started, finished, depth, in_flight, failures;
  double *lat, *t0;
  Cb__SignedStatement *reqs;
} run_t;

typedef struct slot {
  run_t *r;
  int i;
} slot_t;

static void start_one(run_t *r);

static void on_response(int status, const Cb__Envelope *reply, const char *detail, void *arg)
{
  slot_t *sl = arg;
  run_t *r = sl->r;
  int i = sl->i;
  free(sl);
  char err[512];
  if (status == 0 && reply->msg_case == CB__ENVELOPE__MSG_LOOKUP_RESPONSE) {
    Cb__LookupResponseBody *b;
    if (peer_lookup_check_response(r->reg, &r->reqs[i], r->target, reply->lookup_response->response, &b, err,
                                   sizeof err) == 0) {
      if (b->n_achievements != r->expect) {
        r->failures++;
        fprintf(stderr, "bench_lookup_node: %zu achievements, expected %zu\n", b->n_achievements, r->expect);
      }
      cb__lookup_response_body__free_unpacked(b, NULL);
    } else {
      r->failures++;
      fprintf(stderr, "bench_lookup_node: %s\n", err);
    }
  } else {
    r->failures++;
    fprintf(stderr, "bench_lookup_node: %s\n",
            status ? detail : reply->msg_case == CB__ENVELOPE__MSG_PEER_ERROR ? reply->peer_error->reason : "?");
  }
  r->lat[i] = (now_s() - r->t0[i]) * 1e6;
  sigstmt_statement_clear(&r->reqs[i]);
  r->finished++;
  r->in_flight--;
  while (r->started < r->total && r->in_flight < r->depth) start_one(r);
  if (r->finished == r->total) uv_stop(&r->loop);
}

static void start_one(run_t *r)
{
  int i = r->started++;
  uint8_t nonce[16];
  RAND_bytes(nonce, sizeof nonce);
  char err[256];
  r->t0[i] = now_s();
  if (peer_lookup_make_request(&r->self, r->target, "bench", "benchmark", r->ref, nonce, wall_ms(), &r->reqs[i], err,
                               sizeof err)) {
    fprintf(stderr, "bench_lookup_node: %s\n", err);
    exit(1);
  }
  Cb__LookupRequest lr = CB__LOOKUP_REQUEST__INIT;
  lr.request = &r->reqs[i];
  Cb__Envelope env = CB__ENVELOPE__INIT;
  env.msg_case = CB__ENVELOPE__MSG_LOOKUP_REQUEST;
  env.lookup_request = &lr;
  slot_t *sl = malloc(sizeof *sl);
  if (!sl) exit(1);
  sl->r = r;
  sl->i = i;
  r->in_flight++;
  if (peer_net_request(r->net, r->target, &env, 10000, on_response, sl)) exit(1);
}

static int cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void measure(run_t *r, int total, int depth, double *p50, double *p99, double *rate)
{
  r->total = total;
  r->started = r->finished = r->in_flight = 0;
  r->depth = depth;
  double t0 = now_s();
  while (r->started < r->total && r->in_flight < depth) start_one(r);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  double dt = now_s() - t0;
  qsort(r->lat, (size_t)total, sizeof *r->lat, cmp_d);
  *p50 = r->lat[total / 2];
  *p99 = r->lat[(size_t)total * 99 / 100];
  *rate = total / dt;
}

static void up_poll(uv_timer_t *t)
{
  run_t *r = t->data;
  if (peer_net_link_up(r->net, r->target)) uv_stop(t->loop);
}

/* CPU seconds (user + system) of process pid (0: this one), -1 if unknown. */
static double cpu_s(long pid)
{
  char path[64];
  if (pid == 0) snprintf(path, sizeof path, "/proc/self/stat");
  else snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* comm may hold spaces */
  unsigned long ut, st;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* One measured phase with the CPU both processes spent in it, in cores. */
static void measure_cpu(run_t *r, int total, int depth, long node_pid, double *p50, double *p99, double *rate,
                        double *cpu_self, double *cpu_node)
{
  double s0 = cpu_s(0), n0 = node_pid ? cpu_s(node_pid) : -1, t0 = now_s();
  measure(r, total, depth, p50, p99, rate);
  double dt = now_s() - t0, s1 = cpu_s(0), n1 = node_pid ? cpu_s(node_pid) : -1;
  *cpu_self = s0 >= 0 && s1 >= 0 ? (s1 - s0) / dt : -1;
  *cpu_node = n0 >= 0 && n1 >= 0 ? (n1 - n0) / dt : -1;
}

static int parse_hex32(const char *h, uint8_t out[32])
{
  if (!h || strlen(h) != 64) return -1;
  for (int i = 0; i < 32; i++) {
    unsigned v;
    if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

static void on_closed(void *arg)
{
  (void)arg;
}

int main(int argc, char **argv)
{
  const char *connect = NULL, *regf = NULL, *keyf = NULL, *node = NULL, *target = NULL, *refh = NULL;
  int lookups = 2000;
  long node_pid = 0;
  size_t expect = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--connect")) connect = argv[i + 1];
    else if (!strcmp(argv[i], "--registry")) regf = argv[i + 1];
    else if (!strcmp(argv[i], "--key")) keyf = argv[i + 1];
    else if (!strcmp(argv[i], "--node")) node = argv[i + 1];
    else if (!strcmp(argv[i], "--target")) target = argv[i + 1];
    else if (!strcmp(argv[i], "--ref")) refh = argv[i + 1];
    else if (!strcmp(argv[i], "--lookups")) lookups = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--expect")) expect = (size_t)atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--node-pid")) node_pid = atol(argv[i + 1]);
    else break;
  }
  run_t *r = calloc(1, sizeof *r);
  char err[512], host[64];
  const char *colon = connect ? strrchr(connect, ':') : NULL;
  if (!r || !connect || !regf || !keyf || !node || !target || !colon || (size_t)(colon - connect) >= sizeof host ||
      parse_hex32(refh, r->ref) != 0 || lookups < 100) {
    fprintf(stderr, "usage: bench_lookup_node --connect HOST:PORT --registry FILE --key PEM --node ID --target ID "
                    "--ref HEX64 [--lookups N>=100] [--expect K] [--node-pid PID]\n");
    return 2;
  }
  memcpy(host, connect, (size_t)(colon - connect));
  host[colon - connect] = '\0';
  EVP_PKEY *key;
  if (registry_load(regf, &r->reg, err, sizeof err) != 0 || sigstmt_key_load(keyf, &key, err, sizeof err) != 0) {
    fprintf(stderr, "bench_lookup_node: %s\n", err);
    return 1;
  }
  /* The node's key is not ours: a second key of the same kind stands in
   * for it (the cost of Ed25519 does not depend on the key). */
  EVP_PKEY *other = NULL;
  uint8_t seed[32];
  RAND_bytes(seed, sizeof seed);
  if (sigstmt_key_from_seed(seed, &other) != 0) {
    fprintf(stderr, "bench_lookup_node: cannot make a key\n");
    return 1;
  }
  bench_ceiling_t cl;
  bench_ceiling_measure(key, other, 0.4, &cl);
  EVP_PKEY_free(other);
  double verify_rate = cl.verify_per_s, ceiling = cl.both;
  r->self = (sigstmt_signer_t){node, key};
  r->target = target;
  r->expect = expect;
  r->lat = calloc((size_t)lookups, sizeof *r->lat);
  r->t0 = calloc((size_t)lookups, sizeof *r->t0);
  r->reqs = calloc((size_t)lookups, sizeof *r->reqs);
  uv_loop_init(&r->loop);
  tls_config_t tc = {.mode = TLS_MODE_PEER_CLIENT, .key = key, .cert_name = node, .registry = r->reg};
  tls_ctx_t *ctls;
  peer_config_t pc = {.loop = &r->loop, .node_id = node};
  peer_limits_default(&pc.limits);
  if (tls_ctx_new(&tc, &ctls, err, sizeof err) != 0) {
    fprintf(stderr, "bench_lookup_node: %s\n", err);
    return 1;
  }
  pc.client_tls = ctls;
  if (peer_net_new(&pc, &r->net, err, sizeof err) != 0 ||
      peer_net_add_link(r->net, target, host, (uint16_t)atoi(colon + 1), err, sizeof err) != 0) {
    fprintf(stderr, "bench_lookup_node: %s\n", err);
    return 1;
  }
  uv_timer_t poll;
  uv_timer_init(&r->loop, &poll);
  poll.data = r;
  uv_timer_start(&poll, up_poll, 1, 1);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&poll, NULL);

  double w50, w99, wr, a50, a99, ar, b50, b99, br;
  measure(r, lookups / 10 > 100 ? lookups / 10 : 100, 1, &w50, &w99, &wr); /* warm-up */
  double ca, cna, cb, cnb;
  measure_cpu(r, lookups, 1, node_pid, &a50, &a99, &ar, &ca, &cna);
  measure_cpu(r, lookups, 32, node_pid, &b50, &b99, &br, &cb, &cnb);

  printf("%-44s %10s %10s %10s\n", "lookup through cbnode (LMDB + durable log)", "p50 us", "p99 us", "lookups/s");
  printf("%-44s %10.0f %10.0f %10.0f\n", "1 in flight", a50, a99, ar);
  printf("%-44s %10.0f %10.0f %10.0f\n", "32 in flight", b50, b99, br);
  printf("OpenSSL Ed25519 verify (same run): %.0f /s; lookups/s at 1 in flight / verify rate: %.3f\n", verify_rate,
         ar / verify_rate);
  printf("OpenSSL Ed25519 sign (same run): %.0f /s\n", cl.sign_per_s);
  printf("crypto ceiling, each side 1 sign + 1 verify: %.0f lookups/s with both sides at once (own core each: %.0f)\n",
         ceiling, cl.own_core);
  printf("32 in flight / ceiling: %.2f   (target >= 0.50; / own-core ceiling: %.2f)\n", br / ceiling,
         br / cl.own_core);
  printf("p99 at 1 in flight: %.2f ms   (target < 2 ms)\n", a99 / 1000);
  printf("CPU in cores (1.00 = one core busy), 1 in flight: this program %.2f, cbnode %.2f; "
         "32 in flight: %.2f, %.2f%s\n",
         ca, cna, cb, cnb, node_pid ? "" : " (no --node-pid: cbnode's unknown)");
  printf("failures: %d\n", r->failures);
  printf("{\"bench\":\"lookup_node\",\"achievements\":%zu,\"lookups\":%d,\"p50_us_1\":%.0f,\"p99_us_1\":%.0f,"
         "\"rate_1\":%.0f,\"p50_us_32\":%.0f,\"p99_us_32\":%.0f,\"rate_32\":%.0f,\"ed25519_verify_per_s\":%.0f,"
         "\"ed25519_sign_per_s\":%.0f,\"crypto_ceiling\":%.0f,\"crypto_ceiling_own_core\":%.0f,"
         "\"ratio_32_to_ceiling\":%.2f,\"cpu_self_1\":%.2f,\"cpu_node_1\":%.2f,\"cpu_self_32\":%.2f,"
         "\"cpu_node_32\":%.2f,\"failures\":%d}\n",
         expect, lookups, a50, a99, ar, b50, b99, br, verify_rate, cl.sign_per_s, ceiling, cl.own_core, br / ceiling,
         ca, cna, cb, cnb, r->failures);
  peer_net_close(r->net, on_closed, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
  tls_ctx_free(ctls);
  registry_release(r->reg);
  EVP_PKEY_free(key);
  int failed = r->failures != 0;
  free(r->lat);
  free(r->t0);
  free(r->reqs);
  free(r);
  return failed;
}
