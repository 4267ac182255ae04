/* Lookup round trip between two nodes on loopback (issue 3's benchmark),
 * in one process: sh answers on its own thread and libuv loop, js asks from
 * the main thread's loop; real TLS 1.3 with pinned keys, real signatures
 * (js signs each request and verifies each answer, sh verifies each
 * request, checks freshness and signs each answer), a learner with 20
 * achievements. The store is not in the path (achievements come from
 * memory), so this is the transport + crypto cost of a lookup.
 *
 *   bench_lookup [--lookups N] [--achievements K]
 *
 * Prints p50/p99 latency and lookups/s at 1 and 32 in flight, the crypto
 * ceiling measured in the same run (bench_lookup_ceiling.h: the two sides
 * are two threads here, each spending 1 sign + 1 verify per lookup, so the
 * ceiling is what two threads doing that at once reach on this machine);
 * a bare TLS 1.3 echo is in bench_crypto. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "bench_lookup_ceiling.h"

#include "peer.h"
#include "peer_lookup.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct server {
  uv_loop_t loop;
  peer_net_t *net;
  registry_t *reg;
  replay_cache_t *replay;
  sigstmt_signer_t self;
  Cb__Achievement **ach;
  size_t nach;
  uint8_t ref[32];
  uv_async_t stop;
  uint16_t port;
  uint64_t errors;
} server_t;

static void on_request(peer_net_t *net, uint64_t sess, const char *peer, const Cb__Envelope *env,
                       void *arg) {
  server_t *s = arg;
  (void)peer;
  const Cb__SignedStatement *req = env->lookup_request->request;
  Cb__LookupRequestBody *b;
  Cb__PeerErrorCode code;
  char err[256];
  Cb__Envelope out;
  cb__envelope__init(&out);
  if (peer_lookup_check_request(s->reg, s->replay, "sh", req, wall_ms(), &b, &code, err,
                                sizeof err)) {
    s->errors++;
    Cb__PeerError pe;
    cb__peer_error__init(&pe);
    pe.code = code;
    pe.reason = err;
    out.msg_case = CB__ENVELOPE__MSG_PEER_ERROR;
    out.peer_error = &pe;
    peer_reply(net, sess, env->request_id, &out);
    return;
  }
  Cb__SignedStatement resp;
  peer_lookup_make_response(&s->self, req, b->learner_ref.data, 1, s->ach, s->nach, wall_ms(),
                            &resp, err, sizeof err);
  cb__lookup_request_body__free_unpacked(b, NULL);
  Cb__LookupResponse lr;
  cb__lookup_response__init(&lr);
  lr.response = &resp;
  out.msg_case = CB__ENVELOPE__MSG_LOOKUP_RESPONSE;
  out.lookup_response = &lr;
  peer_reply(net, sess, env->request_id, &out);
  sigstmt_statement_clear(&resp);
}

static void on_closed(void *arg) { (void)arg; }
static void stop_cb(uv_async_t *a) {
  server_t *s = a->data;
  peer_net_close(s->net, on_closed, NULL);
  uv_close((uv_handle_t *)a, NULL);
}

static void *server_thread(void *arg) {
  server_t *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
  return NULL;
}

typedef struct client {
  uv_loop_t loop;
  peer_net_t *net;
  registry_t *reg;
  sigstmt_signer_t self;
  uint8_t ref[32];
  int total, started, finished, in_flight_max, in_flight, failures;
  double *lat;
  double *t_start;
  Cb__SignedStatement *reqs;
} client_t;

typedef struct slot {
  client_t *c;
  int i;
} slot_t;

static void start_one(client_t *c);

static void on_response(int status, const Cb__Envelope *reply, const char *detail, void *arg) {
  slot_t *sl = arg;
  client_t *c = sl->c;
  int i = sl->i;
  free(sl);
  char err[256];
  if (status == 0 && reply->msg_case == CB__ENVELOPE__MSG_LOOKUP_RESPONSE) {
    Cb__LookupResponseBody *b;
    if (peer_lookup_check_response(c->reg, &c->reqs[i], "sh", reply->lookup_response->response, &b,
                                   err, sizeof err) == 0) {
      if (b->n_achievements == 0) c->failures++;
      cb__lookup_response_body__free_unpacked(b, NULL);
    } else {
      c->failures++;
      fprintf(stderr, "bench_lookup: %s\n", err);
    }
  } else {
    c->failures++;
    fprintf(stderr, "bench_lookup: %s\n",
            status ? detail : reply->msg_case == CB__ENVELOPE__MSG_PEER_ERROR ? reply->peer_error->reason : "?");
  }
  c->lat[i] = (now_s() - c->t_start[i]) * 1e6;
  sigstmt_statement_clear(&c->reqs[i]);
  c->finished++;
  c->in_flight--;
  while (c->started < c->total && c->in_flight < c->in_flight_max) start_one(c);
  if (c->finished == c->total) uv_stop(&c->loop);
}

static void start_one(client_t *c) {
  int i = c->started++;
  uint8_t nonce[16];
  RAND_bytes(nonce, sizeof nonce);
  char err[256];
  c->t_start[i] = now_s();
  if (peer_lookup_make_request(&c->self, "sh", "bench", "benchmark", c->ref, nonce, wall_ms(),
                               &c->reqs[i], err, sizeof err))
    abort();
  Cb__LookupRequest lr;
  cb__lookup_request__init(&lr);
  lr.request = &c->reqs[i];
  Cb__Envelope env;
  cb__envelope__init(&env);
  env.msg_case = CB__ENVELOPE__MSG_LOOKUP_REQUEST;
  env.lookup_request = &lr;
  slot_t *sl = malloc(sizeof *sl);
  sl->c = c;
  sl->i = i;
  c->in_flight++;
  if (peer_net_request(c->net, "sh", &env, 10000, on_response, sl)) abort();
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void up_poll(uv_timer_t *t) {
  client_t *c = t->data;
  if (peer_net_link_up(c->net, "sh")) uv_stop(t->loop);
}

/* Runs `total` lookups with at most `depth` in flight. */
static void run(client_t *c, int total, int depth, double *p50, double *p99, double *rate) {
  c->total = total;
  c->started = c->finished = c->in_flight = 0;
  c->in_flight_max = depth;
  double t0 = now_s();
  while (c->started < c->total && c->in_flight < depth) start_one(c);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  double dt = now_s() - t0;
  qsort(c->lat, (size_t)total, sizeof *c->lat, cmp_d);
  *p50 = c->lat[total / 2];
  *p99 = c->lat[(size_t)total * 99 / 100];
  *rate = total / dt;
}

int main(int argc, char **argv) {
  int lookups = 5000;
  size_t nach = 20;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--lookups") && i + 1 < argc) lookups = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--achievements") && i + 1 < argc) nach = (size_t)atol(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_lookup [--lookups N] [--achievements K]\n");
      return 2;
    }
  }
  if (lookups < 100 || nach > 5000) {
    fprintf(stderr, "bench_lookup: --lookups >= 100, --achievements <= 5000\n");
    return 2;
  }
  uint8_t s1[32], s2[32], p1[32], p2[32];
  memset(s1, 11, 32);
  memset(s2, 12, 32);
  EVP_PKEY *ksh, *kjs;
  sigstmt_key_from_seed(s1, &ksh);
  sigstmt_key_from_seed(s2, &kjs);
  sigstmt_key_public(ksh, p1);
  sigstmt_key_public(kjs, p2);
  char h1[65], h2[65], json[1024], err[256];
  for (int i = 0; i < 32; i++) {
    sprintf(h1 + 2 * i, "%02x", p1[i]);
    sprintf(h2 + 2 * i, "%02x", p2[i]);
  }
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":["
           "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:1\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]},"
           "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"127.0.0.1:2\",\"keys\":[{\"public_key\":\"%s\",\"not_before\":0}]}]}",
           0, h1, h2);
  registry_t *reg;
  if (registry_parse(json, strlen(json), &reg, err, sizeof err)) {
    fprintf(stderr, "bench_lookup: %s\n", err);
    return 1;
  }
  bench_ceiling_t cl;
  bench_ceiling_measure(ksh, kjs, 0.4, &cl);
  double ceiling = cl.both;

  server_t *s = calloc(1, sizeof *s);
  uv_loop_init(&s->loop);
  s->reg = reg;
  s->self = (sigstmt_signer_t){"sh", ksh};
  memset(s->ref, 0x42, 32);
  replay_init(&s->replay, 30000, 1u << 20);
  s->nach = nach;
  s->ach = calloc(nach ? nach : 1, sizeof *s->ach);
  for (size_t i = 0; i < nach; i++) {
    Cb__Achievement *a = calloc(1, sizeof *a);
    cb__achievement__init(a);
    a->id = i + 1;
    a->learner_ref.data = s->ref;
    a->learner_ref.len = 32;
    a->kind = CB__ACHIEVEMENT_KIND__ACADEMIC_COURSE;
    a->issuer = "10247";
    a->code = "MATH101";
    a->title = "高等数学（上）";
    a->credits_milli = 4000;
    a->score = "85";
    a->awarded_on = 20250701;
    a->deposited_at_ms = 1751328000000;
    s->ach[i] = a;
  }
  tls_config_t sc = {.mode = TLS_MODE_PEER_SERVER, .key = ksh, .cert_name = "sh", .registry = reg};
  tls_config_t cc = {.mode = TLS_MODE_PEER_CLIENT, .key = kjs, .cert_name = "js", .registry = reg};
  tls_ctx_t *stls, *ctls;
  if (tls_ctx_new(&sc, &stls, err, sizeof err) || tls_ctx_new(&cc, &ctls, err, sizeof err)) {
    fprintf(stderr, "bench_lookup: %s\n", err);
    return 1;
  }
  peer_config_t spc = {.loop = &s->loop, .node_id = "sh", .server_tls = stls,
                       .on_request = on_request, .arg = s};
  peer_limits_default(&spc.limits);
  if (peer_net_new(&spc, &s->net, err, sizeof err) ||
      peer_net_listen(s->net, "127.0.0.1", 0, &s->port, err, sizeof err)) {
    fprintf(stderr, "bench_lookup: %s\n", err);
    return 1;
  }
  uv_async_init(&s->loop, &s->stop, stop_cb);
  s->stop.data = s;
  pthread_t th;
  pthread_create(&th, NULL, server_thread, s);

  client_t *c = calloc(1, sizeof *c);
  uv_loop_init(&c->loop);
  c->reg = reg;
  c->self = (sigstmt_signer_t){"js", kjs};
  memset(c->ref, 0x42, 32);
  c->lat = calloc((size_t)lookups, sizeof *c->lat);
  c->t_start = calloc((size_t)lookups, sizeof *c->t_start);
  c->reqs = calloc((size_t)lookups, sizeof *c->reqs);
  peer_config_t cpc = {.loop = &c->loop, .node_id = "js", .client_tls = ctls};
  peer_limits_default(&cpc.limits);
  if (peer_net_new(&cpc, &c->net, err, sizeof err) ||
      peer_net_add_link(c->net, "sh", "127.0.0.1", s->port, err, sizeof err)) {
    fprintf(stderr, "bench_lookup: %s\n", err);
    return 1;
  }
  uv_timer_t poll;
  uv_timer_init(&c->loop, &poll);
  poll.data = c;
  uv_timer_start(&poll, up_poll, 1, 1);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&poll, NULL);

  double w50, w99, wr, a50, a99, ar, b50, b99, br;
  run(c, lookups / 10 > 100 ? lookups / 10 : 100, 1, &w50, &w99, &wr); /* warm-up */
  run(c, lookups, 1, &a50, &a99, &ar);
  run(c, lookups, 32, &b50, &b99, &br);

  printf("%-40s %12s %12s %12s\n", "lookup (TLS 1.3, signed, 20 ach.)", "p50 us", "p99 us",
         "lookups/s");
  printf("%-40s %12.0f %12.0f %12.0f\n", "1 in flight", a50, a99, ar);
  printf("%-40s %12.0f %12.0f %12.0f\n", "32 in flight", b50, b99, br);
  printf("crypto ceiling, each side 1 sign + 1 verify: %.0f lookups/s with both sides at once (own core each: %.0f)\n",
         ceiling, cl.own_core);
  printf("32 in flight / ceiling: %.2f   (target >= 0.50; / own-core ceiling: %.2f)\n", br / ceiling,
         br / cl.own_core);
  printf("p99 at 1 in flight: %.2f ms   (target < 2 ms)\n", a99 / 1000);
  printf("failures: %d, refused by sh: %llu\n", c->failures, (unsigned long long)s->errors);
  printf("{\"bench\":\"lookup\",\"achievements\":%zu,\"lookups\":%d,\"p50_us_1\":%.0f,"
         "\"p99_us_1\":%.0f,\"rate_1\":%.0f,\"p50_us_32\":%.0f,\"p99_us_32\":%.0f,\"rate_32\":%.0f,"
         "\"crypto_ceiling\":%.0f,\"crypto_ceiling_own_core\":%.0f,\"ratio_32_to_ceiling\":%.2f,\"failures\":%d}\n",
         nach, lookups, a50, a99, ar, b50, b99, br, ceiling, cl.own_core, br / ceiling, c->failures);

  peer_net_close(c->net, on_closed, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  uv_loop_close(&c->loop);
  uv_async_send(&s->stop);
  pthread_join(th, NULL);
  uv_loop_close(&s->loop);
  for (size_t i = 0; i < nach; i++) free(s->ach[i]);
  free(s->ach);
  replay_free(s->replay);
  tls_ctx_free(stls);
  tls_ctx_free(ctls);
  registry_release(reg);
  EVP_PKEY_free(ksh);
  EVP_PKEY_free(kjs);
  free(c->lat);
  free(c->t_start);
  free(c->reqs);
  int failed = c->failures != 0;
  free(c);
  free(s);
  return failed;
}
