/* store: typed record store on LMDB. Layout and key design: spec/records.md.
 *
 * Databases (all in the node's one environment):
 *   store.meta               "schema_version" -> u32 BE, "node_id", "region"
 *   store.learners           learner_no (u64 BE)             -> cb.Learner
 *   store.learner_by_id      id_number                       -> learner_no BE
 *   store.learner_by_ref     learner_ref (32 bytes)          -> learner_no BE
 *   store.achievements       learner_no BE | awarded_on BE | issuer 0x00 code
 *                                                            -> cb.Achievement
 * The achievements key is also the dedupe index: a re-sent deposit has the
 * same key. learner_ref is not stored in achievement values (it is the
 * learner's, filled in on read).
 */
#include "store.h"
#include "store_codec.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "records.pb-c.h"

#define STORE_DEFAULT_MAP ((size_t)1 << 30)
#define STORE_DEFAULT_MAX_MAP ((size_t)1 << 40)
#define STORE_MAXDBS 32
#define STORE_RESIZED_RETRIES 8
/* Batches of at least this many items release the map afterwards. */
#define STORE_RELEASE_BATCH 256

struct store {
  MDB_env *env;
  MDB_dbi meta, learners, by_id, by_ref, ach;
  size_t max_map;
  uint32_t grows;
  char dir[PATH_MAX];
  char node_id[STORE_NODE_ID_MAX + 1];
  char region[STORE_REGION_MAX + 1];
  char errmsg[256];
  /* Held across every write transaction of this store and across map
   * growth (store_write, store_write_nogrow): the node commits its access
   * log on a writer thread while the loop thread imports, and
   * mdb_env_set_mapsize needs no write txn of the process to be open. */
  pthread_mutex_t wlock;
};

static const char *const k_db_meta = "store.meta";
static const char *const k_db_learners = "store.learners";
static const char *const k_db_by_id = "store.learner_by_id";
static const char *const k_db_by_ref = "store.learner_by_ref";
static const char *const k_db_ach = "store.achievements";

const char *store_strerror(int err) {
  switch (err) {
#define STORE_ERR_CASE_(name, value, text) \
  case value:                              \
    return text;
    STORE_ERRORS(STORE_ERR_CASE_)
#undef STORE_ERR_CASE_
  default:
    return "unknown store error";
  }
}

__attribute__((format(printf, 3, 4))) static int fail(store *s, int code,
                                                      const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

static bool is_store_err(int rc) { return rc < 0 && rc >= STORE_EABORT; }

/* Map an LMDB (or errno) code to a store error, keeping LMDB's words. */
static int mdb_fail(store *s, int rc, const char *what) {
  int code = STORE_EIO;
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID ||
      rc == MDB_VERSION_MISMATCH || rc == MDB_INCOMPATIBLE)
    code = STORE_ECORRUPT;
  else if (rc == ENOMEM)
    code = STORE_ENOMEM;
  else if (rc == MDB_MAP_FULL)
    code = STORE_EFULL;
  return fail(s, code, "%s: %s", what, mdb_strerror(rc));
}

MDB_env *store_env(store *s) { return s->env; }
const char *store_errmsg(const store *s) { return s->errmsg; }
const char *store_node_id(const store *s) { return s->node_id; }
const char *store_region(const store *s) { return s->region; }

/* ---- transactions ------------------------------------------------------ */

static int grow_map(store *s) {
  MDB_envinfo info;
  int rc = mdb_env_info(s->env, &info);
  if (rc) return mdb_fail(s, rc, "mdb_env_info");
  size_t cur = info.me_mapsize;
  if (cur >= s->max_map)
    return fail(s, STORE_EFULL, "map size %zu bytes reached its maximum %zu",
                cur, s->max_map);
  size_t next = cur > s->max_map / 2 ? s->max_map : cur * 2;
  rc = mdb_env_set_mapsize(s->env, next);
  if (rc) return mdb_fail(s, rc, "mdb_env_set_mapsize");
  s->grows++;
  return 0;
}

static int txn_begin(store *s, unsigned flags, MDB_txn **txn) {
  for (int i = 0;; i++) {
    int rc = mdb_txn_begin(s->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED && i < STORE_RESIZED_RETRIES) {
      /* Another process grew the map: adopt its size (a read begins
       * outside the write lock: take it, so no write txn is open). */
      if (flags & MDB_RDONLY) pthread_mutex_lock(&s->wlock);
      rc = mdb_env_set_mapsize(s->env, 0);
      if (flags & MDB_RDONLY) pthread_mutex_unlock(&s->wlock);
      if (rc) return mdb_fail(s, rc, "mdb_env_set_mapsize");
      continue;
    }
    if (rc) return mdb_fail(s, rc, "mdb_txn_begin");
    return 0;
  }
}

static int store_write_locked(store *s, store_write_fn fn, void *arg);

int store_write(store *s, store_write_fn fn, void *arg) {
  pthread_mutex_lock(&s->wlock);
  int rc = store_write_locked(s, fn, arg);
  pthread_mutex_unlock(&s->wlock);
  return rc;
}

int store_write_nogrow(store *s, store_write_fn fn, void *arg, int *grow) {
  *grow = 0;
  pthread_mutex_lock(&s->wlock);
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc == 0) {
    rc = fn(txn, arg);
    if (rc == 0)
      rc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
  }
  pthread_mutex_unlock(&s->wlock);
  if (rc == MDB_MAP_FULL || rc == MDB_MAP_RESIZED) {
    *grow = 1; /* nothing written; the owner thread grows (store_write) */
    return STORE_EFULL;
  }
  if (rc == 0 || is_store_err(rc)) return rc;
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID) return STORE_ECORRUPT;
  return rc == ENOMEM ? STORE_ENOMEM : STORE_EIO;
}

static int store_write_locked(store *s, store_write_fn fn, void *arg) {
  s->errmsg[0] = '\0';
  for (;;) {
    MDB_txn *txn;
    int rc = txn_begin(s, 0, &txn);
    if (rc) return rc;
    rc = fn(txn, arg);
    if (rc == 0)
      rc = mdb_txn_commit(txn); /* frees txn, also on failure */
    else
      mdb_txn_abort(txn);
    if (rc == 0) return 0;
    if (rc == MDB_MAP_FULL) {
      /* Nothing of this attempt was written: grow and run it again. */
      int grc = grow_map(s);
      if (grc) return grc;
      continue;
    }
    if (is_store_err(rc)) {
      if (!s->errmsg[0]) fail(s, rc, "%s", store_strerror(rc));
      return rc;
    }
    return mdb_fail(s, rc, "write transaction");
  }
}

/* Reads through the map fault pages in, and the kernel maps up to 16
 * neighbours of each fault that are in the page cache (fault-around, which
 * MDB_NORDAHEAD does not stop). After a bulk import every page just written
 * is in the page cache, so the process's resident set would grow to the
 * whole file. After a big batch we drop the map's page table entries: for a
 * read-only shared file mapping that only unmaps clean page-cache pages,
 * which later reads fault back in (no I/O while they stay cached). */
/* LMDB does not tell where it mapped the file (mdb_env_info's me_mapaddr is
 * set only with MDB_FIXEDMAP, so this once never ran): the mapping is found
 * in /proc/self/maps by data.mdb's device and inode. Measured: cbnode's
 * peak RSS importing 1M records fell from 221 MB (161 MB of it data.mdb
 * pages) with the map left alone. */
static void release_map(store *s) {
  int fd;
  struct stat st;
  if (mdb_env_get_fd(s->env, &fd) || fstat(fd, &st)) return;
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi, off, ino;
    unsigned maj, min;
    if (sscanf(line, "%lx-%lx %*s %lx %x:%x %lu", &lo, &hi, &off, &maj, &min,
               &ino) != 6)
      continue;
    if (ino != (unsigned long)st.st_ino || maj != major(st.st_dev) ||
        min != minor(st.st_dev) || hi <= lo)
      continue;
    (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
  }
  fclose(f);
}

/* ---- open / close -------------------------------------------------------- */

typedef struct open_ctx {
  store *s;
  const store_options *opt;
  bool create;
} open_ctx;

static int meta_get_str(store *s, MDB_txn *txn, const char *key, char *out,
                        size_t cap) {
  MDB_val k = {strlen(key), (void *)key}, v;
  int rc = mdb_get(txn, s->meta, &k, &v);
  if (rc == MDB_NOTFOUND)
    return fail(s, STORE_ECORRUPT, "meta record has no %s", key);
  if (rc) return rc;
  if (v.mv_size == 0 || v.mv_size >= cap || memchr(v.mv_data, 0, v.mv_size))
    return fail(s, STORE_ECORRUPT, "meta record %s is malformed", key);
  memcpy(out, v.mv_data, v.mv_size);
  out[v.mv_size] = '\0';
  return 0;
}

static int meta_put_str(store *s, MDB_txn *txn, const char *key,
                        const char *val) {
  MDB_val k = {strlen(key), (void *)key}, v = {strlen(val), (void *)val};
  return mdb_put(txn, s->meta, &k, &v, 0);
}

static int open_dbs(store *s, MDB_txn *txn, unsigned flags) {
  int rc;
  if ((rc = mdb_dbi_open(txn, k_db_learners, flags, &s->learners)) ||
      (rc = mdb_dbi_open(txn, k_db_by_id, flags, &s->by_id)) ||
      (rc = mdb_dbi_open(txn, k_db_by_ref, flags, &s->by_ref)) ||
      (rc = mdb_dbi_open(txn, k_db_ach, flags, &s->ach)))
    return rc == MDB_NOTFOUND
               ? fail(s, STORE_ECORRUPT, "a store database is missing")
               : rc;
  return 0;
}

/* Check (or, when creating, write) the meta record, then open the DBs. */
static int open_txn_fn(MDB_txn *txn, void *arg) {
  open_ctx *c = arg;
  store *s = c->s;
  int rc = mdb_dbi_open(txn, k_db_meta, c->create ? MDB_CREATE : 0, &s->meta);
  if (rc == MDB_NOTFOUND)
    return fail(s, STORE_ENOENT,
                "%s is not an initialised node data directory (no %s "
                "database; initialise it with cbnode --init)",
                s->dir, k_db_meta);
  if (rc) return rc;

  static const char vkey[] = "schema_version";
  MDB_val k = {sizeof vkey - 1, (void *)vkey}, v;
  rc = mdb_get(txn, s->meta, &k, &v);
  if (rc == MDB_NOTFOUND && c->create) {
    if (!c->opt->region || !store_codec_region_valid(c->opt->region))
      return fail(s, STORE_EINVAL,
                  "region must be 1..%d lower-case letters to initialise %s",
                  STORE_REGION_MAX, s->dir);
    uint8_t ver[4];
    store_codec_put_be32(ver, STORE_SCHEMA_VERSION);
    MDB_val vv = {sizeof ver, ver};
    if ((rc = mdb_put(txn, s->meta, &k, &vv, 0)) ||
        (rc = meta_put_str(s, txn, "node_id", c->opt->node_id)) ||
        (rc = meta_put_str(s, txn, "region", c->opt->region)))
      return rc;
    rc = mdb_get(txn, s->meta, &k, &v);
  }
  if (rc == MDB_NOTFOUND)
    return fail(s, STORE_ENOENT,
                "%s has no schema_version meta record (not initialised; "
                "initialise it with cbnode --init)",
                s->dir);
  if (rc) return rc;
  if (v.mv_size != 4)
    return fail(s, STORE_ECORRUPT, "meta schema_version has %zu bytes, not 4",
                v.mv_size);
  uint32_t ver = store_codec_get_be32(v.mv_data);
  if (ver != STORE_SCHEMA_VERSION)
    return fail(s, STORE_EVERSION,
                "data directory %s has schema version %u, this build uses "
                "schema version %u",
                s->dir, ver, STORE_SCHEMA_VERSION);
  if ((rc = meta_get_str(s, txn, "node_id", s->node_id, sizeof s->node_id)))
    return rc;
  if (strcmp(s->node_id, c->opt->node_id) != 0)
    return fail(s, STORE_ENODE,
                "data directory %s belongs to node '%s', not to node '%s'",
                s->dir, s->node_id, c->opt->node_id);
  if ((rc = meta_get_str(s, txn, "region", s->region, sizeof s->region)))
    return rc;
  if (c->opt->region && strcmp(s->region, c->opt->region) != 0)
    return fail(s, STORE_ENODE,
                "data directory %s holds region '%s', not region '%s'", s->dir,
                s->region, c->opt->region);
  return open_dbs(s, txn, c->create ? MDB_CREATE : 0);
}

static int open_check_args(const char *dir, const store_options *opt,
                           char *err, size_t errlen) {
  const char *why = NULL;
  if (!dir || !*dir)
    why = "no data directory given";
  else if (strlen(dir) + sizeof "/data.mdb" > PATH_MAX)
    why = "data directory path too long";
  else if (!opt || !opt->node_id || !*opt->node_id ||
           strlen(opt->node_id) > STORE_NODE_ID_MAX)
    why = "node_id must be 1..64 bytes";
  else if (!store_codec_text_valid(opt->node_id, strlen(opt->node_id)))
    why = "node_id must be printable UTF-8";
  else if (opt->region && !store_codec_region_valid(opt->region))
    why = "region must be 1..8 lower-case letters";
  if (!why) return 0;
  if (err && errlen) snprintf(err, errlen, "store_open: %s", why);
  return STORE_EINVAL;
}

int store_open(store **out, const char *dir, const store_options *opt,
               char *err, size_t errlen) {
  *out = NULL;
  if (err && errlen) err[0] = '\0';
  int rc = open_check_args(dir, opt, err, errlen);
  if (rc) return rc;
  /* The direct achievement encoder must write what protobuf-c writes. */
  bool encoder_ok = store_codec_encode_self_check();
  assert(encoder_ok);
  (void)encoder_ok;
  store *s = calloc(1, sizeof *s);
  if (!s) {
    if (err && errlen) snprintf(err, errlen, "store_open: out of memory");
    return STORE_ENOMEM;
  }
  if (pthread_mutex_init(&s->wlock, NULL) != 0) {
    free(s);
    if (err && errlen) snprintf(err, errlen, "store_open: cannot create a mutex");
    return STORE_ENOMEM;
  }
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  s->max_map = opt->max_map_size_bytes ? opt->max_map_size_bytes
                                       : STORE_DEFAULT_MAX_MAP;
  size_t map = opt->map_size_bytes ? opt->map_size_bytes : STORE_DEFAULT_MAP;
  if (map > s->max_map) map = s->max_map;

  char path[PATH_MAX + 16];
  struct stat st;
  snprintf(path, sizeof path, "%s/data.mdb", dir);
  if (stat(dir, &st) != 0) {
    if (errno != ENOENT || !opt->create) {
      rc = fail(s, STORE_ENOENT, "data directory %s: %s%s", dir,
                strerror(errno),
                errno == ENOENT ? " (initialise it with cbnode --init)" : "");
      goto fail;
    }
    if (mkdir(dir, 0700) != 0) {
      rc = fail(s, STORE_EIO, "cannot create data directory %s: %s", dir,
                strerror(errno));
      goto fail;
    }
  } else if (!S_ISDIR(st.st_mode)) {
    rc = fail(s, STORE_EINVAL, "%s is not a directory", dir);
    goto fail;
  }
  if (!opt->create && stat(path, &st) != 0) {
    rc = fail(s, STORE_ENOENT,
              "%s holds no node data (%s missing; initialise it with cbnode "
              "--init)",
              dir, path);
    goto fail;
  }

  if ((rc = mdb_env_create(&s->env)) ||
      (rc = mdb_env_set_maxdbs(s->env, STORE_MAXDBS)) ||
      (rc = mdb_env_set_mapsize(s->env, map))) {
    rc = mdb_fail(s, rc, "LMDB environment setup");
    goto fail;
  }
  /* MDB_NOTLS: read txns belong to their handle, not to a thread (libuv's
   * pool may run work elsewhere). Durable: no NOSYNC/NOMETASYNC. */
  rc = mdb_env_open(s->env, dir, MDB_NOTLS | MDB_NORDAHEAD, 0600);
  if (rc) {
    rc = mdb_fail(s, rc, "cannot open LMDB environment");
    goto fail;
  }
  open_ctx c = {s, opt, opt->create};
  rc = store_write(s, open_txn_fn, &c);
  if (rc) goto fail;
  *out = s;
  return 0;
fail:
  if (err && errlen) snprintf(err, errlen, "%s", s->errmsg);
  if (s->env) mdb_env_close(s->env);
  pthread_mutex_destroy(&s->wlock);
  free(s);
  return rc;
}

void store_close(store *s) {
  if (!s) return;
  mdb_env_close(s->env);
  pthread_mutex_destroy(&s->wlock);
  free(s);
}

/* ---- learners ------------------------------------------------------------ */

/* Read learner_no's record; fills *out and checks it (ECORRUPT if bad). */
static int learner_read(store *s, MDB_txn *txn, uint64_t no,
                        store_learner *out) {
  uint8_t kb[8];
  store_codec_put_be64(kb, no);
  MDB_val k = {8, kb}, v;
  int rc = mdb_get(txn, s->learners, &k, &v);
  if (rc == MDB_NOTFOUND)
    return fail(s, STORE_ENOTFOUND, "no learner number %llu",
                (unsigned long long)no);
  if (rc) return rc;
  char why[128];
  if (store_codec_learner_decode(v.mv_data, v.mv_size, out, why, sizeof why) ||
      out->learner_no != no)
    return fail(s, STORE_ECORRUPT, "learner record %llu: %s",
                (unsigned long long)no,
                out->learner_no != no ? "key and record disagree" : why);
  return 0;
}

static int learner_write(store *s, MDB_txn *txn, const store_learner *l,
                         unsigned flags) {
  uint8_t kb[8], vb[STORE_CODEC_LEARNER_MAX];
  store_codec_put_be64(kb, l->learner_no);
  size_t len = store_codec_learner_encode(l, vb);
  MDB_val k = {8, kb}, v = {len, vb};
  return mdb_put(txn, s->learners, &k, &v, flags);
}

static int index_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
                     uint64_t *no) {
  MDB_val k = {klen, (void *)key}, v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc) return rc;
  if (v.mv_size != 8) return MDB_CORRUPTED;
  *no = store_codec_get_be64(v.mv_data);
  return 0;
}

/* Put with MDB_APPEND when the key sorts after the last one (the cheap,
 * page-filling path), else a normal put. Both refuse to overwrite. */
static int put_append(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v) {
  int rc = mdb_put(txn, dbi, k, v, MDB_APPEND | MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) rc = mdb_put(txn, dbi, k, v, MDB_NOOVERWRITE);
  return rc;
}

static int next_learner_no(store *s, MDB_txn *txn, uint64_t *no) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, s->learners, &cur);
  if (rc) return rc;
  MDB_val k, v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
  mdb_cursor_close(cur);
  if (rc == MDB_NOTFOUND) {
    *no = 1;
    return 0;
  }
  if (rc) return rc;
  if (k.mv_size != 8) return fail(s, STORE_ECORRUPT, "learner key size %zu", k.mv_size);
  *no = store_codec_get_be64(k.mv_data) + 1;
  if (*no >= (UINT64_C(1) << (64 - STORE_ACH_SEQ_BITS)))
    return fail(s, STORE_EFULL, "learner numbers exhausted");
  return 0;
}

/* Find the account for l (by ref, then by ID number) or open it.
 * On return *l holds the stored account. Conflicts are STORE_ECONFLICT. */
static int learner_resolve(store *s, MDB_txn *txn, uint64_t *next_no,
                           store_learner *l, bool *opened, bool *created) {
  uint64_t no;
  *opened = false;
  int rc = index_get(txn, s->by_ref, l->learner_ref, STORE_REF_LEN, &no);
  if (rc == 0) {
    char id_number[sizeof l->id_number];
    memcpy(id_number, l->id_number, sizeof id_number);
    if ((rc = learner_read(s, txn, no, l))) return rc == STORE_ENOTFOUND ? fail(s, STORE_ECORRUPT, "learner_ref index points to missing learner %llu", (unsigned long long)no) : rc;
    if (strcmp(id_number, l->id_number) != 0)
      return fail(s, STORE_ECONFLICT,
                  "learner_ref belongs to account %llu with another ID number",
                  (unsigned long long)no);
    return 0;
  }
  if (rc != MDB_NOTFOUND) return rc;
  size_t idlen = strlen(l->id_number);
  rc = index_get(txn, s->by_id, l->id_number, idlen, &no);
  if (rc == 0)
    return fail(s, STORE_ECONFLICT,
                "ID number already has account %llu with another learner_ref",
                (unsigned long long)no);
  if (rc != MDB_NOTFOUND) return rc;

  if (*next_no == 0 && (rc = next_learner_no(s, txn, next_no))) return rc;
  l->learner_no = (*next_no)++;
  l->achievements = 0;
  snprintf(l->region, sizeof l->region, "%s", s->region);
  uint8_t nb[8];
  store_codec_put_be64(nb, l->learner_no);
  MDB_val kr = {STORE_REF_LEN, l->learner_ref}, ki = {idlen, l->id_number},
          v = {8, nb};
  if ((rc = mdb_put(txn, s->by_ref, &kr, &v, MDB_NOOVERWRITE)) ||
      (rc = put_append(txn, s->by_id, &ki, &v)))
    return rc;
  *opened = true;
  *created = true; /* record not yet written: caller writes it */
  return 0;
}

typedef struct learner_open_ctx {
  store *s;
  store_learner in, out;
  bool opened;
} learner_open_ctx;

static int learner_open_fn(MDB_txn *txn, void *arg) {
  learner_open_ctx *c = arg;
  store *s = c->s;
  c->out = c->in;
  uint64_t no;
  int rc = index_get(txn, s->by_id, c->in.id_number, strlen(c->in.id_number), &no);
  if (rc == 0) {
    c->opened = false;
    if ((rc = learner_read(s, txn, no, &c->out))) return rc == STORE_ENOTFOUND ? fail(s, STORE_ECORRUPT, "ID index points to missing learner %llu", (unsigned long long)no) : rc;
    if (memcmp(c->out.learner_ref, c->in.learner_ref, STORE_REF_LEN) != 0)
      return fail(s, STORE_ECONFLICT,
                  "ID number already has account %llu with another learner_ref",
                  (unsigned long long)no);
    return 0;
  }
  if (rc != MDB_NOTFOUND) return rc;
  uint64_t next = 0;
  bool created = false;
  if ((rc = learner_resolve(s, txn, &next, &c->out, &c->opened, &created)))
    return rc;
  return learner_write(s, txn, &c->out, MDB_APPEND);
}

int store_learner_open(store *s, store_learner *l, bool *opened) {
  char why[128];
  s->errmsg[0] = '\0';
  if (store_codec_learner_input_valid(l, why, sizeof why))
    return fail(s, STORE_EINVAL, "learner: %s", why);
  learner_open_ctx c = {.s = s, .in = *l};
  int rc = store_write(s, learner_open_fn, &c);
  if (rc && rc != STORE_ECONFLICT) return rc;
  /* On conflict *l is left as given; the message names the account. */
  if (rc == 0) {
    *l = c.out;
    *opened = c.opened;
  }
  return rc;
}

typedef enum { BY_REF, BY_ID, BY_NO } learner_key_kind;

static int learner_get(store *s, learner_key_kind kind, const void *key,
                       size_t klen, uint64_t no, store_learner *out) {
  s->errmsg[0] = '\0';
  MDB_txn *txn;
  int rc = txn_begin(s, MDB_RDONLY, &txn);
  if (rc) return rc;
  if (kind != BY_NO) {
    rc = index_get(txn, kind == BY_REF ? s->by_ref : s->by_id, key, klen, &no);
    if (rc == MDB_NOTFOUND) {
      rc = fail(s, STORE_ENOTFOUND, "no learner with this %s",
                kind == BY_REF ? "learner_ref" : "ID number");
      goto out;
    }
    if (rc) {
      rc = mdb_fail(s, rc, "learner index");
      goto out;
    }
  }
  rc = learner_read(s, txn, no, out);
  if (rc == STORE_ENOTFOUND && kind != BY_NO)
    rc = fail(s, STORE_ECORRUPT, "index points to missing learner %llu",
              (unsigned long long)no);
  else if (rc > 0 || (rc < 0 && !is_store_err(rc)))
    rc = mdb_fail(s, rc, "learner read");
out:
  mdb_txn_abort(txn);
  return rc;
}

int store_learner_get_by_ref(store *s, const uint8_t ref[STORE_REF_LEN],
                             store_learner *out) {
  return learner_get(s, BY_REF, ref, STORE_REF_LEN, 0, out);
}

int store_learner_get_by_id_number(store *s, const char *id_number,
                                   store_learner *out) {
  size_t len = id_number ? strnlen(id_number, STORE_ID_NUMBER_MAX + 1) : 0;
  if (len == 0 || len > STORE_ID_NUMBER_MAX)
    return fail(s, STORE_EINVAL, "ID number must be 1..%d bytes",
                STORE_ID_NUMBER_MAX);
  return learner_get(s, BY_ID, id_number, len, 0, out);
}

int store_learner_get_by_no(store *s, uint64_t learner_no, store_learner *out) {
  return learner_get(s, BY_NO, NULL, 0, learner_no, out);
}

/* ---- deposits -------------------------------------------------------------- */

int store_deposit_validate(const store_deposit *item, char *reason,
                           size_t reasonlen) {
  if (store_codec_learner_input_valid(&item->learner, reason, reasonlen))
    return STORE_EINVAL;
  if (store_codec_achievement_valid(&item->achievement, reason, reasonlen))
    return STORE_EINVAL;
  if (memcmp(item->learner.learner_ref, item->achievement.learner_ref,
             STORE_REF_LEN) != 0) {
    snprintf(reason, reasonlen,
             "achievement.learner_ref differs from learner.learner_ref");
    return STORE_EINVAL;
  }
  return 0;
}

typedef struct deposit_ctx {
  store *s;
  const store_deposit *items;
  size_t n;
  store_deposit_result *res;
  store_deposit_hook_fn hook;
  void *hook_arg;
} deposit_ctx;

/* The learner the batch is on: consecutive items of one learner (the
 * cheap input order) touch the learner's record once. */
typedef struct cur_learner {
  bool have, dirty, created;
  store_learner l;
} cur_learner;

static int cur_flush(store *s, MDB_txn *txn, cur_learner *c) {
  if (!c->have || !c->dirty) return 0;
  /* A learner opened in this batch has the highest number: append. */
  int rc = learner_write(s, txn, &c->l, c->created ? MDB_APPEND : 0);
  if (rc == MDB_KEYEXIST) rc = learner_write(s, txn, &c->l, 0);
  c->dirty = false;
  c->created = false;
  return rc;
}

static int deposit_one(store *s, MDB_txn *txn, const store_deposit *it,
                       store_deposit_result *r, cur_learner *cur,
                       uint64_t *next_no) {
  int rc;
  if (!cur->have ||
      memcmp(cur->l.learner_ref, it->learner.learner_ref, STORE_REF_LEN) != 0) {
    if ((rc = cur_flush(s, txn, cur))) return rc;
    cur->l = it->learner;
    cur->have = true;
    bool opened = false, created = false;
    rc = learner_resolve(s, txn, next_no, &cur->l, &opened, &created);
    if (rc) {
      cur->have = false;
      return rc;
    }
    cur->created = created;
    cur->dirty = created;
    r->learner_opened = opened;
  }
  r->learner_no = cur->l.learner_no;

  const store_achievement *a = &it->achievement;
  uint8_t kb[STORE_CODEC_ACH_KEY_MAX], vb[STORE_CODEC_ACH_MAX];
  size_t klen = store_codec_ach_key(cur->l.learner_no, a, kb);
  uint32_t seq = cur->l.achievements + 1;
  if (seq >= (UINT32_C(1) << STORE_ACH_SEQ_BITS))
    return fail(s, STORE_EFULL, "learner %llu has the maximum number of achievements",
                (unsigned long long)cur->l.learner_no);
  uint64_t id = cur->l.learner_no << STORE_ACH_SEQ_BITS | seq;
  size_t vlen = store_codec_achievement_encode(a, id, vb);
  MDB_val k = {klen, kb}, v = {vlen, vb};
  rc = mdb_put(txn, s->ach, &k, &v, MDB_APPEND | MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) {
    /* Not after the last key: either a re-sent deposit or an insert in the
     * middle (an existing learner, or this learner's items out of order). */
    MDB_val old;
    rc = mdb_get(txn, s->ach, &k, &old);
    if (rc == 0) {
      uint64_t old_id;
      if (store_codec_achievement_id(old.mv_data, old.mv_size, &old_id))
        return fail(s, STORE_ECORRUPT, "achievement of learner %llu unreadable",
                    (unsigned long long)cur->l.learner_no);
      r->status = STORE_DEPOSIT_DUPLICATE;
      r->achievement_id = old_id;
      return 0;
    }
    if (rc != MDB_NOTFOUND) return rc;
    rc = mdb_put(txn, s->ach, &k, &v, MDB_NOOVERWRITE);
  }
  if (rc) return rc;
  cur->l.achievements = seq;
  cur->dirty = true;
  r->status = STORE_DEPOSIT_STORED;
  r->achievement_id = id;
  return 0;
}

static int deposit_fn(MDB_txn *txn, void *arg) {
  deposit_ctx *c = arg;
  store *s = c->s;
  cur_learner cur = {0};
  uint64_t next_no = 0;
  for (size_t i = 0; i < c->n; i++) {
    store_deposit_result *r = &c->res[i];
    memset(r, 0, sizeof *r);
    int rc = deposit_one(s, txn, &c->items[i], r, &cur, &next_no);
    if (rc == STORE_ECONFLICT) {
      r->status = STORE_DEPOSIT_INVALID;
      snprintf(r->reason, sizeof r->reason, "%.*s", (int)sizeof r->reason - 1, s->errmsg);
      char msg[sizeof s->errmsg];
      snprintf(msg, sizeof msg, "%s", s->errmsg);
      return fail(s, rc, "item %zu: %s", i, msg);
    }
    if (rc) return rc;
  }
  int rc = cur_flush(s, txn, &cur);
  if (rc) return rc;
  if (c->hook) {
    rc = c->hook(txn, c->items, c->res, c->n, c->hook_arg);
    if (rc && !is_store_err(rc) && !(rc <= MDB_KEYEXIST && rc >= MDB_LAST_ERRCODE))
      rc = STORE_EABORT;
  }
  return rc;
}

int store_deposit_batch(store *s, const store_deposit *items, size_t n,
                        store_deposit_result *results,
                        store_deposit_hook_fn hook, void *hook_arg) {
  s->errmsg[0] = '\0';
  if (n == 0 || n > STORE_BATCH_MAX)
    return fail(s, STORE_EINVAL, "batch of %zu items (must be 1..%u)", n,
                STORE_BATCH_MAX);
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < n; i++) {
    store_deposit_result *r = &results[i];
    memset(r, 0, sizeof *r);
    if (store_deposit_validate(&items[i], r->reason, sizeof r->reason)) {
      r->status = STORE_DEPOSIT_INVALID;
      if (bad++ == 0) first_bad = i;
    }
  }
  if (bad)
    return fail(s, STORE_EINVAL, "%zu invalid item(s), nothing stored; item %zu: %s",
                bad, first_bad, results[first_bad].reason);
  deposit_ctx c = {s, items, n, results, hook, hook_arg};
  int rc = store_write(s, deposit_fn, &c);
  if (rc == 0 && n >= STORE_RELEASE_BATCH) release_map(s);
  if (rc) {
    /* Nothing was written: no item may look stored. */
    for (size_t i = 0; i < n; i++)
      if (results[i].status != STORE_DEPOSIT_INVALID) {
        results[i].status = STORE_DEPOSIT_INVALID;
        snprintf(results[i].reason, sizeof results[i].reason,
                 "batch not stored: %s", store_strerror(rc));
      }
  }
  return rc;
}

typedef struct stream_ctx {
  store *s;
  size_t n;
  store_deposit_get_fn get;
  void *arg;
  store_batch_summary *sum;
} stream_ctx;

static int stream_fn(MDB_txn *txn, void *arg) {
  stream_ctx *c = arg;
  store *s = c->s;
  store_batch_summary *sum = c->sum;
  cur_learner cur = {0};
  uint64_t next_no = 0;
  store_deposit item;
  memset(&item, 0, sizeof item); /* fields get() need not set (store-assigned) */
  sum->stored = sum->duplicates = sum->learners_opened = 0;
  sum->reason[0] = '\0';
  for (size_t i = 0; i < c->n; i++) {
    sum->bad_index = i;
    if (c->get(c->arg, i, &item) != 0)
      return fail(s, STORE_EABORT, "item %zu refused by the caller", i);
    if (store_deposit_validate(&item, sum->reason, sizeof sum->reason))
      return fail(s, STORE_EINVAL, "item %zu: %s; nothing stored", i, sum->reason);
    store_deposit_result r;
    memset(&r, 0, sizeof r);
    int rc = deposit_one(s, txn, &item, &r, &cur, &next_no);
    if (rc == STORE_ECONFLICT) {
      snprintf(sum->reason, sizeof sum->reason, "%.*s", (int)sizeof sum->reason - 1, s->errmsg);
      char msg[sizeof s->errmsg];
      snprintf(msg, sizeof msg, "%s", s->errmsg);
      return fail(s, rc, "item %zu: %s", i, msg);
    }
    if (rc) return rc;
    sum->stored += r.status == STORE_DEPOSIT_STORED;
    sum->duplicates += r.status == STORE_DEPOSIT_DUPLICATE;
    sum->learners_opened += r.learner_opened;
  }
  sum->bad_index = 0;
  return cur_flush(s, txn, &cur);
}

int store_deposit_stream(store *s, size_t n, store_deposit_get_fn get,
                         void *arg, store_batch_summary *sum) {
  s->errmsg[0] = '\0';
  memset(sum, 0, sizeof *sum);
  if (n == 0 || n > STORE_BATCH_MAX || !get)
    return fail(s, STORE_EINVAL, "batch of %zu items (must be 1..%u)", n,
                STORE_BATCH_MAX);
  stream_ctx c = {s, n, get, arg, sum};
  int rc = store_write(s, stream_fn, &c);
  if (rc == 0 && n >= STORE_RELEASE_BATCH) release_map(s);
  if (rc) sum->stored = sum->duplicates = sum->learners_opened = 0;
  return rc;
}

/* ---- reads: achievements and transcripts ------------------------------------ */

typedef int (*ach_visit_fn)(const store_achievement *a, void *arg);

/* Visit every achievement of learner l (ref filled in), re-checking each. */
static int ach_scan(store *s, MDB_txn *txn, const store_learner *l,
                    ach_visit_fn fn, void *arg) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, s->ach, &cur);
  if (rc) return mdb_fail(s, rc, "cursor");
  uint8_t prefix[8];
  store_codec_put_be64(prefix, l->learner_no);
  MDB_val k = {8, prefix}, v;
  store_achievement a;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size < 8 || memcmp(k.mv_data, prefix, 8) != 0) break;
    char why[128];
    if (store_codec_achievement_decode(v.mv_data, v.mv_size, &a, why, sizeof why)) {
      rc = fail(s, STORE_ECORRUPT, "achievement of learner %llu: %s",
                (unsigned long long)l->learner_no, why);
      goto out;
    }
    uint8_t kb[STORE_CODEC_ACH_KEY_MAX];
    size_t klen = store_codec_ach_key(l->learner_no, &a, kb);
    if (klen != k.mv_size || memcmp(kb, k.mv_data, klen) != 0 ||
        a.id >> STORE_ACH_SEQ_BITS != l->learner_no) {
      rc = fail(s, STORE_ECORRUPT, "achievement %llu: key and record disagree",
                (unsigned long long)a.id);
      goto out;
    }
    memcpy(a.learner_ref, l->learner_ref, STORE_REF_LEN);
    if ((rc = fn(&a, arg))) goto out;
  }
  if (rc == MDB_NOTFOUND) rc = 0;
  else if (rc) rc = mdb_fail(s, rc, "achievement scan");
out:
  mdb_cursor_close(cur);
  return rc;
}

typedef struct transcript_ctx {
  store_transcript_cb cb;
  void *arg;
  store_totals *totals;
} transcript_ctx;

static int transcript_visit(const store_achievement *a, void *arg) {
  transcript_ctx *c = arg;
  if (c->totals) {
    c->totals->count++;
    c->totals->credits_milli += a->credits_milli;
    c->totals->count_by_kind[a->kind]++;
    c->totals->credits_milli_by_kind[a->kind] += a->credits_milli;
  }
  return c->cb ? c->cb(a, c->arg) : 0;
}

int store_transcript(store *s, const uint8_t ref[STORE_REF_LEN],
                     store_transcript_cb cb, void *arg, store_totals *totals) {
  s->errmsg[0] = '\0';
  if (totals) memset(totals, 0, sizeof *totals);
  MDB_txn *txn;
  int rc = txn_begin(s, MDB_RDONLY, &txn);
  if (rc) return rc;
  uint64_t no;
  store_learner l;
  rc = index_get(txn, s->by_ref, ref, STORE_REF_LEN, &no);
  if (rc == MDB_NOTFOUND) {
    rc = fail(s, STORE_ENOTFOUND, "no learner with this learner_ref");
    goto out;
  }
  if (rc) {
    rc = mdb_fail(s, rc, "learner_ref index");
    goto out;
  }
  if ((rc = learner_read(s, txn, no, &l))) {
    if (rc == STORE_ENOTFOUND)
      rc = fail(s, STORE_ECORRUPT, "learner_ref index points to missing learner");
    else if (!is_store_err(rc))
      rc = mdb_fail(s, rc, "learner read");
    goto out;
  }
  transcript_ctx c = {cb, arg, totals};
  rc = ach_scan(s, txn, &l, transcript_visit, &c);
out:
  mdb_txn_abort(txn);
  return rc;
}

typedef struct find_ctx {
  uint64_t id;
  store_achievement *out;
} find_ctx;

static int find_visit(const store_achievement *a, void *arg) {
  find_ctx *c = arg;
  if (a->id != c->id) return 0;
  *c->out = *a;
  return 1;
}

int store_achievement_get(store *s, uint64_t id, store_achievement *out) {
  s->errmsg[0] = '\0';
  uint64_t no = id >> STORE_ACH_SEQ_BITS;
  if (no == 0 || (id & ((UINT64_C(1) << STORE_ACH_SEQ_BITS) - 1)) == 0)
    return fail(s, STORE_ENOTFOUND, "no achievement %llu (not a valid id)",
                (unsigned long long)id);
  MDB_txn *txn;
  int rc = txn_begin(s, MDB_RDONLY, &txn);
  if (rc) return rc;
  store_learner l;
  rc = learner_read(s, txn, no, &l);
  if (rc == STORE_ENOTFOUND) {
    rc = fail(s, STORE_ENOTFOUND, "no achievement %llu", (unsigned long long)id);
  } else if (rc == 0) {
    find_ctx c = {id, out};
    rc = ach_scan(s, txn, &l, find_visit, &c);
    if (rc == 1)
      rc = 0;
    else if (rc == 0)
      rc = fail(s, STORE_ENOTFOUND, "no achievement %llu", (unsigned long long)id);
  } else if (!is_store_err(rc)) {
    rc = mdb_fail(s, rc, "learner read");
  }
  mdb_txn_abort(txn);
  return rc;
}

/* ---- stats ------------------------------------------------------------------ */

int store_get_stats(store *s, store_stats *out) {
  s->errmsg[0] = '\0';
  memset(out, 0, sizeof *out);
  MDB_txn *txn;
  int rc = txn_begin(s, MDB_RDONLY, &txn);
  if (rc) return rc;
  MDB_stat st;
  MDB_envinfo info;
  if ((rc = mdb_stat(txn, s->learners, &st))) goto fail;
  out->learners = st.ms_entries;
  out->page_size = st.ms_psize;
  if ((rc = mdb_stat(txn, s->ach, &st))) goto fail;
  out->achievements = st.ms_entries;
  if ((rc = mdb_env_info(s->env, &info))) goto fail;
  mdb_txn_abort(txn);
  out->schema_version = STORE_SCHEMA_VERSION;
  out->map_size_bytes = info.me_mapsize;
  out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * out->page_size;
  out->map_grows = s->grows;
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/data.mdb", s->dir);
  struct stat fst;
  if (stat(path, &fst) == 0) out->file_bytes = (uint64_t)fst.st_blocks * 512u;
  return 0;
fail:
  mdb_txn_abort(txn);
  return mdb_fail(s, rc, "stats");
}
