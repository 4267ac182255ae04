/* bench_lmdb_raw: the raw LMDB limit the node's import is measured against.
 *
 * Puts N records of a fixed key and value size into a fresh environment in
 * durable transactions of T records (default 10,000), with keys in
 * sequential order (MDB_APPEND) or in random order, and prints records/s and
 * bytes on disk per record, then one JSON summary line.
 *
 *   bench_lmdb_raw [--records N] [--txn T] [--key-bytes K] [--value-bytes V]
 *                  [--order seq|random] [--dir DIR] [--keep]
 *
 * DIR defaults to a fresh mkdtemp() directory under $TMPDIR (or /tmp), which
 * is removed afterwards unless --keep. Not a test: nothing is asserted.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct raw_opts {
  uint64_t records;
  uint64_t txn_records;
  size_t key_bytes;
  size_t value_bytes;
  bool random_order;
  const char *dir;
  bool keep;
} raw_opts;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix64(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static int usage(void) {
  fprintf(stderr,
          "usage: bench_lmdb_raw [--records N] [--txn T] [--key-bytes K]\n"
          "       [--value-bytes V] [--order seq|random] [--dir DIR] [--keep]\n");
  return 2;
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static int parse_args(int argc, char **argv, raw_opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n;
    if (!strcmp(a, "--keep")) {
      o->keep = true;
      continue;
    }
    if (!v) return usage();
    i++;
    if (!strcmp(a, "--records") && parse_u64(v, 1, UINT64_C(1) << 32, &n))
      o->records = n;
    else if (!strcmp(a, "--txn") && parse_u64(v, 1, 10000000, &n))
      o->txn_records = n;
    else if (!strcmp(a, "--key-bytes") && parse_u64(v, 8, 511, &n))
      o->key_bytes = (size_t)n;
    else if (!strcmp(a, "--value-bytes") && parse_u64(v, 0, 65536, &n))
      o->value_bytes = (size_t)n;
    else if (!strcmp(a, "--order") && (!strcmp(v, "seq") || !strcmp(v, "random")))
      o->random_order = !strcmp(v, "random");
    else if (!strcmp(a, "--dir"))
      o->dir = v;
    else {
      fprintf(stderr, "bench_lmdb_raw: bad option or value: %s %s\n", a, v);
      return usage();
    }
  }
  return 0;
}

#define CHECK(call)                                                         \
  do {                                                                      \
    int rc_ = (call);                                                       \
    if (rc_) {                                                              \
      fprintf(stderr, "bench_lmdb_raw: %s: %s\n", #call, mdb_strerror(rc_)); \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

int main(int argc, char **argv) {
  raw_opts o = {.records = 1000000, .txn_records = 10000, .key_bytes = 16,
                .value_bytes = 128};
  int prc = parse_args(argc, argv, &o);
  if (prc) return prc;

  char tmpl[4096];
  const char *dir = o.dir;
  if (!dir) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/bench_lmdb_raw.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpl)) {
      perror("bench_lmdb_raw: mkdtemp");
      return 1;
    }
    dir = tmpl;
  } else if (mkdir(dir, 0700) && errno != EEXIST) {
    perror("bench_lmdb_raw: mkdir");
    return 1;
  }

  MDB_env *env;
  CHECK(mdb_env_create(&env));
  size_t per = o.key_bytes + o.value_bytes + 64;
  CHECK(mdb_env_set_maxdbs(env, 4));
  CHECK(mdb_env_set_mapsize(env, (size_t)(o.records * per * 3 + (64u << 20))));
  CHECK(mdb_env_open(env, dir, 0, 0600));
  MDB_txn *txn;
  MDB_dbi dbi;
  CHECK(mdb_txn_begin(env, NULL, 0, &txn));
  CHECK(mdb_dbi_open(txn, "raw", MDB_CREATE, &dbi));
  CHECK(mdb_txn_commit(txn));

  uint8_t *key = calloc(1, o.key_bytes);
  uint8_t *val = malloc(o.value_bytes ? o.value_bytes : 1);
  if (!key || !val) return 1;
  for (size_t i = 0; i < o.value_bytes; i++) val[i] = (uint8_t)splitmix64(i);

  double t0 = now_s();
  for (uint64_t done = 0; done < o.records;) {
    CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    uint64_t end = done + o.txn_records;
    if (end > o.records) end = o.records;
    for (; done < end; done++) {
      uint64_t k = o.random_order ? splitmix64(done) : done;
      put_be64(key, k);
      memcpy(val, &done, sizeof done); /* values differ, as real ones do */
      MDB_val mk = {o.key_bytes, key}, mv = {o.value_bytes, val};
      CHECK(mdb_put(txn, dbi, &mk, &mv, o.random_order ? 0 : MDB_APPEND));
    }
    CHECK(mdb_txn_commit(txn));
  }
  double secs = now_s() - t0;

  char path[4200];
  snprintf(path, sizeof path, "%s/data.mdb", dir);
  struct stat st;
  uint64_t disk = stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
  MDB_envinfo info;
  MDB_stat mst;
  CHECK(mdb_env_info(env, &info));
  CHECK(mdb_env_stat(env, &mst));
  uint64_t used = (uint64_t)(info.me_last_pgno + 1) * mst.ms_psize;
  mdb_env_close(env);

  double rps = (double)o.records / secs;
  printf("raw LMDB, %s keys: %llu records of %zu+%zu bytes, %llu per durable txn\n",
         o.random_order ? "random" : "sequential", (unsigned long long)o.records,
         o.key_bytes, o.value_bytes, (unsigned long long)o.txn_records);
  printf("  %.2f s, %.0f records/s, %.1f bytes on disk per record (%.1f used)\n",
         secs, rps, (double)disk / (double)o.records,
         (double)used / (double)o.records);
  printf("{\"bench\":\"lmdb_raw\",\"order\":\"%s\",\"records\":%llu,\"txn_records\":%llu,"
         "\"key_bytes\":%zu,\"value_bytes\":%zu,\"seconds\":%.3f,\"records_per_s\":%.0f,"
         "\"disk_bytes\":%llu,\"disk_bytes_per_record\":%.1f}\n",
         o.random_order ? "random" : "seq", (unsigned long long)o.records,
         (unsigned long long)o.txn_records, o.key_bytes, o.value_bytes, secs, rps,
         (unsigned long long)disk, (double)disk / (double)o.records);

  if (!o.keep) {
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
  }
  free(key);
  free(val);
  return 0;
}
