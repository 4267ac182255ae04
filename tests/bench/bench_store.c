/* bench_store: the storage layer alone against raw LMDB.
 *
 * 1. Bulk import of N achievements for L learners through
 *    store_deposit_batch() (durable commits, B items per batch), items in the
 *    chosen input order;
 * 2. in the same run, the raw limit: the very same encoded values put by a
 *    minimal loop with sequential keys of the same length (MDB_APPEND) in
 *    durable transactions of 10,000 records;
 * 3. transcript lookup latency (store_transcript with totals) over 10,000
 *    random learners: p50 / p99.
 * Prints a table and one JSON line. Not a test: nothing is asserted.
 *
 *   bench_store [--achievements N] [--learners L] [--batch B]
 *               [--order sorted|grouped|random] [--lookups K] [--dir DIR]
 *
 * Orders: sorted = by ID number, a learner's items adjacent (what cbctl
 * import should send); grouped = learners in random order, items adjacent;
 * random = every item anywhere (a shuffled CSV sent as is).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "store_codec.h"

typedef enum { ORDER_SORTED, ORDER_GROUPED, ORDER_RANDOM } bench_order;

typedef struct bench_opts {
  uint64_t achievements, learners, batch, lookups;
  bench_order order;
  const char *dir;
} bench_opts;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

/* A bijection on [0, n): a keyed cycle-walking permutation (Feistel on the
 * next power of two), so shuffled orders need no memory. */
static uint64_t permute(uint64_t i, uint64_t n, uint64_t key) {
  unsigned bits = 2;
  while ((UINT64_C(1) << bits) < n) bits += 2;
  unsigned half = bits / 2;
  uint64_t mask = (UINT64_C(1) << half) - 1;
  do {
    uint64_t l = i >> half, r = i & mask;
    for (int round = 0; round < 4; round++) {
      uint64_t t = l ^ (mix(r ^ key ^ (uint64_t)round << 56) & mask);
      l = r;
      r = t;
    }
    i = l << half | r;
  } while (i >= n);
  return i;
}

static const char *const k_titles[] = {
    "电子技术", "机械制造工艺", "电工（三级）", "美容师（三级）", "数控铣工（三级）",
    "汽车维修工（二级）", "信息安全师（三级）", "软件测试人员（二级）",
    "网页设计制作人员（三级）", "计算机网络技术人员（三级）", "高等数学", "大学英语",
    "社区书法", "老年摄影", "企业安全生产培训"};
static const char *const k_depositors[] = {"上海开放大学", "上海第二工业大学",
                                           "东海职业技术学院", "徐汇分部",
                                           "上海市职业技能鉴定中心"};

static void make_learner(uint64_t who, store_learner *l) {
  memset(l, 0, sizeof *l);
  for (int i = 0; i < STORE_REF_LEN; i += 8) {
    uint64_t x = mix(who * 4 + (uint64_t)i / 8 + 1);
    memcpy(l->learner_ref + i, &x, 8);
  }
  /* ID numbers increase with who: region code, birth date, sequence. */
  snprintf(l->id_number, sizeof l->id_number, "310115%08llu%03llu%c",
           19600101ULL + (who / 1000) % 460000, (unsigned long long)(who % 1000),
           "0123456789X"[who % 11]);
  snprintf(l->name, sizeof l->name, "学员%llu", (unsigned long long)who);
  l->opened_at_ms = INT64_C(1700000000000);
}

/* The j-th achievement of learner who. */
static void make_item(uint64_t who, uint64_t j, store_deposit *d) {
  make_learner(who, &d->learner);
  store_achievement *a = &d->achievement;
  memset(a, 0, sizeof *a);
  memcpy(a->learner_ref, d->learner.learner_ref, STORE_REF_LEN);
  uint64_t h = mix(who << 20 | j);
  a->kind = 1 + (int)(j % 5);
  snprintf(a->issuer, sizeof a->issuer, "%05llu", 10000ULL + h % 300);
  snprintf(a->code, sizeof a->code, "%c%06llu", "ACSNL"[j % 5],
           (unsigned long long)((h >> 16) % 1000000));
  snprintf(a->title, sizeof a->title, "%s", k_titles[(h >> 40) % 15]);
  snprintf(a->level, sizeof a->level, "%s", a->kind == 2 || a->kind == 3 ? "三级" : "");
  a->credits_milli = 500 * (int64_t)(1 + (h >> 8) % 10);
  snprintf(a->score, sizeof a->score, "%s", j % 3 ? "合格" : "85");
  a->awarded_on = (int32_t)(20100101 + 10000 * (j % 14) + 100 * ((h >> 24) % 12) +
                            (h >> 32) % 28);
  a->depositor.role = 1 + (int)(j % 3);
  snprintf(a->depositor.code, sizeof a->depositor.code, "D%03llu",
           (unsigned long long)((h >> 48) % 100));
  snprintf(a->depositor.name, sizeof a->depositor.name, "%s",
           k_depositors[(h >> 52) % 5]);
  a->deposited_at_ms = INT64_C(1700000000000) + (int64_t)j;
}

/* Item number i (0..N) in the chosen order → (learner, j). */
static void item_at(const bench_opts *o, uint64_t i, uint64_t *who, uint64_t *j) {
  uint64_t per = o->achievements / o->learners;
  if (o->order == ORDER_RANDOM) i = permute(i, o->achievements, 7);
  *who = i / per;
  *j = i % per;
  if (o->order == ORDER_GROUPED) *who = permute(*who, o->learners, 11);
}

static uint64_t disk_bytes(const char *dir) {
  char p[4400];
  struct stat st;
  snprintf(p, sizeof p, "%s/data.mdb", dir);
  return stat(p, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

static void rm_env(const char *dir) {
  char p[4400];
  snprintf(p, sizeof p, "%s/data.mdb", dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/lock.mdb", dir);
  unlink(p);
  rmdir(dir);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int parse(int argc, char **argv, bench_opts *o) {
  for (int i = 1; i + 1 < argc || i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    unsigned long long n = v ? strtoull(v, &end, 10) : 0;
    bool num = v && end && !*end && n > 0;
    if (!v) goto bad;
    if (!strcmp(a, "--achievements") && num) o->achievements = n;
    else if (!strcmp(a, "--learners") && num) o->learners = n;
    else if (!strcmp(a, "--batch") && num && n <= STORE_BATCH_MAX) o->batch = n;
    else if (!strcmp(a, "--lookups") && num) o->lookups = n;
    else if (!strcmp(a, "--dir")) o->dir = v;
    else if (!strcmp(a, "--order") && !strcmp(v, "sorted")) o->order = ORDER_SORTED;
    else if (!strcmp(a, "--order") && !strcmp(v, "grouped")) o->order = ORDER_GROUPED;
    else if (!strcmp(a, "--order") && !strcmp(v, "random")) o->order = ORDER_RANDOM;
    else goto bad;
    continue;
  bad:
    fprintf(stderr,
            "usage: bench_store [--achievements N] [--learners L] [--batch B]\n"
            "       [--order sorted|grouped|random] [--lookups K] [--dir DIR]\n"
            "bench_store: bad option or value: %s %s\n", a, v ? v : "");
    return 2;
  }
  if (o->achievements % o->learners) {
    fprintf(stderr, "bench_store: --achievements must be a multiple of --learners\n");
    return 2;
  }
  return 0;
}

typedef struct run_result {
  double secs, rps;
  uint64_t disk;
  double key_bytes, value_bytes;
} run_result;

static int run_store(const bench_opts *o, const char *dir, store_deposit *items,
                     store_deposit_result *res, run_result *out, double *lat,
                     store_stats *st) {
  store *s;
  char err[256];
  store_options so = {.node_id = "bench", .region = "sh", .create = true};
  if (store_open(&s, dir, &so, err, sizeof err)) {
    fprintf(stderr, "bench_store: %s\n", err);
    return 1;
  }
  double in_store = 0, kb = 0, vb = 0;
  uint8_t key[STORE_CODEC_ACH_KEY_MAX], val[STORE_CODEC_ACH_MAX];
  for (uint64_t done = 0; done < o->achievements;) {
    size_t n = 0;
    for (; n < o->batch && done + n < o->achievements; n++) {
      uint64_t who, j;
      item_at(o, done + n, &who, &j);
      make_item(who, j, &items[n]);
      kb += (double)store_codec_ach_key(1, &items[n].achievement, key);
      vb += (double)store_codec_achievement_encode(&items[n].achievement, 1, val);
    }
    double t0 = now_s();
    int rc = store_deposit_batch(s, items, n, res, NULL, NULL);
    in_store += now_s() - t0;
    if (rc) {
      fprintf(stderr, "bench_store: deposit: %s\n", store_errmsg(s));
      store_close(s);
      return 1;
    }
    done += n;
  }
  out->secs = in_store;
  out->rps = (double)o->achievements / in_store;
  out->key_bytes = kb / (double)o->achievements;
  out->value_bytes = vb / (double)o->achievements;
  store_get_stats(s, st);
  out->disk = st->file_bytes;
  if (getenv("BENCH_STORE_MEM")) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
      if (!strncmp(line, "VmHWM", 5) || !strncmp(line, "Rss", 3)) fputs(line, stderr);
    if (f) fclose(f);
  }

  for (uint64_t i = 0; i < o->lookups; i++) {
    store_learner l;
    make_learner(mix(i + 12345) % o->learners, &l);
    store_totals t;
    double t0 = now_s();
    int rc = store_transcript(s, l.learner_ref, NULL, NULL, &t);
    lat[i] = now_s() - t0;
    if (rc || t.count != o->achievements / o->learners) {
      fprintf(stderr, "bench_store: transcript: %s (count %llu)\n",
              store_errmsg(s), (unsigned long long)t.count);
      store_close(s);
      return 1;
    }
  }
  store_close(s);
  return 0;
}

/* The raw limit: the same values, sequential keys of the same length. */
static int run_raw(const bench_opts *o, const char *dir, run_result *out) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  int rc;
  if (mkdir(dir, 0700) && errno != EEXIST) return 1;
  if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 4)) ||
      (rc = mdb_env_set_mapsize(env, (size_t)o->achievements * 2048 + (64u << 20))) ||
      (rc = mdb_env_open(env, dir, 0, 0600)) ||
      (rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
      (rc = mdb_dbi_open(txn, "raw", MDB_CREATE, &dbi)) || (rc = mdb_txn_commit(txn))) {
    fprintf(stderr, "bench_store: raw setup: %s\n", mdb_strerror(rc));
    return 1;
  }
  /* One transaction's records are encoded before its clock starts. */
  enum { RAW_TXN = 10000 };
  uint8_t *keys = malloc((size_t)RAW_TXN * STORE_CODEC_ACH_KEY_MAX);
  uint8_t *vals = malloc((size_t)RAW_TXN * STORE_CODEC_ACH_MAX);
  size_t *klen = malloc(RAW_TXN * sizeof *klen), *vlen = malloc(RAW_TXN * sizeof *vlen);
  if (!keys || !vals || !klen || !vlen) return 1;
  uint64_t per = o->achievements / o->learners;
  store_deposit d;
  double t_total = 0;
  for (uint64_t done = 0; done < o->achievements && !rc;) {
    size_t n = 0;
    for (; n < RAW_TXN && done + n < o->achievements; n++) {
      uint64_t i = done + n, who = i / per;
      make_item(who, i % per, &d);
      uint8_t *k = keys + n * STORE_CODEC_ACH_KEY_MAX;
      klen[n] = store_codec_ach_key(who + 1, &d.achievement, k);
      vlen[n] = store_codec_achievement_encode(&d.achievement, i + 1,
                                               vals + n * STORE_CODEC_ACH_MAX);
      store_codec_put_be64(k, i); /* sequential, same length */
    }
    double t0 = now_s();
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn))) break;
    for (size_t m = 0; m < n && !rc; m++) {
      MDB_val k = {klen[m], keys + m * STORE_CODEC_ACH_KEY_MAX};
      MDB_val v = {vlen[m], vals + m * STORE_CODEC_ACH_MAX};
      rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
    }
    if (rc) {
      mdb_txn_abort(txn);
      break;
    }
    rc = mdb_txn_commit(txn);
    t_total += now_s() - t0;
    done += n;
  }
  free(keys);
  free(vals);
  free(klen);
  free(vlen);
  if (rc) fprintf(stderr, "bench_store: raw: %s\n", mdb_strerror(rc));
  mdb_env_close(env);
  out->secs = t_total;
  out->rps = (double)o->achievements / t_total;
  out->disk = disk_bytes(dir);
  return rc != 0;
}

int main(int argc, char **argv) {
  bench_opts o = {.achievements = 1000000, .learners = 100000,
                  .batch = STORE_BATCH_RECOMMENDED, .lookups = 10000,
                  .order = ORDER_SORTED};
  int rc = parse(argc, argv, &o);
  if (rc) return rc;
  char base[4096], sdir[4200], rdir[4200];
  const char *t = getenv("TMPDIR");
  if (o.dir) {
    snprintf(base, sizeof base, "%s", o.dir);
    if (mkdir(base, 0700) && errno != EEXIST) {
      perror("bench_store: mkdir");
      return 1;
    }
  } else {
    snprintf(base, sizeof base, "%s/bench_store.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(base)) {
      perror("bench_store: mkdtemp");
      return 1;
    }
  }
  snprintf(sdir, sizeof sdir, "%s/store", base);
  snprintf(rdir, sizeof rdir, "%s/raw", base);

  store_deposit *items = calloc(o.batch, sizeof *items);
  store_deposit_result *res = calloc(o.batch, sizeof *res);
  double *lat = calloc(o.lookups, sizeof *lat);
  if (!items || !res || !lat) return 1;
  run_result rs = {0}, rr = {0};
  store_stats st;
  rc = run_store(&o, sdir, items, res, &rs, lat, &st);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (!rc) rc = run_raw(&o, rdir, &rr);
  rm_env(sdir);
  rm_env(rdir);
  if (!o.dir) rmdir(base);
  if (rc) return 1;

  qsort(lat, o.lookups, sizeof *lat, cmp_double);
  double p50 = lat[o.lookups / 2] * 1e6, p99 = lat[o.lookups * 99 / 100] * 1e6;
  static const char *const names[] = {"sorted", "grouped", "random"};
  double n = (double)o.achievements;
  printf("bench_store: %llu achievements, %llu learners, %llu per batch, order %s\n",
         (unsigned long long)o.achievements, (unsigned long long)o.learners,
         (unsigned long long)o.batch, names[o.order]);
  printf("  record: key %.1f bytes, value %.1f bytes (average)\n", rs.key_bytes,
         rs.value_bytes);
  printf("  %-28s %10s %12s %14s\n", "path", "seconds", "records/s", "disk B/record");
  printf("  %-28s %10.2f %12.0f %14.1f\n", "store_deposit_batch", rs.secs, rs.rps,
         (double)rs.disk / n);
  printf("  %-28s %10.2f %12.0f %14.1f\n", "raw LMDB, sequential keys", rr.secs,
         rr.rps, (double)rr.disk / n);
  printf("  ratio store/raw: %.2f; map grows %u; peak RSS %ld KiB\n", rs.rps / rr.rps,
         st.map_grows, ru.ru_maxrss);
  printf("  transcript lookup over %llu random learners: p50 %.1f us, p99 %.1f us\n",
         (unsigned long long)o.lookups, p50, p99);
  printf("{\"bench\":\"store\",\"order\":\"%s\",\"achievements\":%llu,\"learners\":%llu,"
         "\"batch\":%llu,\"store_records_per_s\":%.0f,\"raw_records_per_s\":%.0f,"
         "\"ratio\":%.3f,\"store_disk_bytes_per_record\":%.1f,"
         "\"raw_disk_bytes_per_record\":%.1f,\"peak_rss_kib\":%ld,"
         "\"transcript_p50_us\":%.1f,\"transcript_p99_us\":%.1f}\n",
         names[o.order], (unsigned long long)o.achievements,
         (unsigned long long)o.learners, (unsigned long long)o.batch, rs.rps, rr.rps,
         rs.rps / rr.rps, (double)rs.disk / n, (double)rr.disk / n, ru.ru_maxrss, p50,
         p99);
  free(items);
  free(res);
  free(lat);
  return 0;
}
