/* Access log in its own LMDB database: see store_access.h. */
#include "store_access.h"

#include <stdlib.h>
#include <string.h>

struct store_access {
  store *st;
  MDB_dbi dbi;
};

#define KEY_LEN (STORE_REF_LEN + 8 + STORE_ACCESS_ID_LEN)

static void make_key(uint8_t key[KEY_LEN], const uint8_t *ref, int64_t t_ms, const uint8_t *id)
{
  memcpy(key, ref, STORE_REF_LEN);
  uint64_t t = (uint64_t)t_ms;
  for (int i = 0; i < 8; i++) key[STORE_REF_LEN + i] = (uint8_t)(t >> (56 - 8 * i));
  memcpy(key + STORE_REF_LEN + 8, id, STORE_ACCESS_ID_LEN);
}

static int open_fn(MDB_txn *txn, void *arg)
{
  store_access *a = arg;
  return mdb_dbi_open(txn, STORE_ACCESS_DB, MDB_CREATE, &a->dbi);
}

int store_access_open(store *s, store_access **out)
{
  *out = NULL;
  store_access *a = calloc(1, sizeof *a);
  if (!a) return STORE_ENOMEM;
  a->st = s;
  int rc = store_write(s, open_fn, a);
  if (rc) {
    free(a);
    return rc < 0 && rc >= STORE_EABORT ? rc : STORE_EIO;
  }
  *out = a;
  return 0;
}

void store_access_close(store_access *a)
{
  /* The dbi handle belongs to the environment and closes with it. */
  free(a);
}

typedef struct append_ctx {
  store_access *a;
  uint8_t key[KEY_LEN];
  const uint8_t *entry;
  size_t len;
} append_ctx;

static int append_fn(MDB_txn *txn, void *arg)
{
  append_ctx *c = arg;
  MDB_val k = {KEY_LEN, c->key}, v = {c->len, (void *)c->entry};
  int rc = mdb_put(txn, c->a->dbi, &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return STORE_ECONFLICT;
  return rc;
}

int store_access_append(store_access *a, const uint8_t ref[STORE_REF_LEN], int64_t answered_at_ms,
                        const uint8_t id[STORE_ACCESS_ID_LEN], const uint8_t *entry, size_t len)
{
  if (!a || !ref || !id || !entry || len == 0 || len > STORE_ACCESS_MAX_ENTRY_BYTES ||
      answered_at_ms < 0)
    return STORE_EINVAL;
  append_ctx c = {.a = a, .entry = entry, .len = len};
  make_key(c.key, ref, answered_at_ms, id);
  return store_write(a->st, append_fn, &c);
}

typedef struct many_ctx {
  store_access *a;
  const store_access_item *items;
  size_t n;
  int *results;
} many_ctx;

static int many_fn(MDB_txn *txn, void *arg)
{
  many_ctx *c = arg;
  for (size_t i = 0; i < c->n; i++) {
    const store_access_item *it = &c->items[i];
    uint8_t key[KEY_LEN];
    make_key(key, it->ref, it->answered_at_ms, it->id);
    MDB_val k = {KEY_LEN, key}, v = {it->len, (void *)it->entry};
    int rc = mdb_put(txn, c->a->dbi, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
      c->results[i] = STORE_ECONFLICT;
      continue;
    }
    if (rc) return rc;
    c->results[i] = 0;
  }
  return 0;
}

static int check_many(const store_access *a, const store_access_item *items, size_t n, const int *results)
{
  if (!a || !items || !results || n == 0 || n > STORE_ACCESS_BATCH_MAX) return STORE_EINVAL;
  for (size_t i = 0; i < n; i++) {
    const store_access_item *it = &items[i];
    if (!it->ref || !it->id || !it->entry || it->len == 0 || it->len > STORE_ACCESS_MAX_ENTRY_BYTES ||
        it->answered_at_ms < 0)
      return STORE_EINVAL;
  }
  return 0;
}

int store_access_append_many(store_access *a, const store_access_item *items, size_t n, int *results)
{
  int rc = check_many(a, items, n, results);
  if (rc) return rc;
  many_ctx c = {.a = a, .items = items, .n = n, .results = results};
  return store_write(a->st, many_fn, &c);
}

int store_access_append_many_nogrow(store_access *a, const store_access_item *items, size_t n, int *results,
                                    int *grow)
{
  *grow = 0;
  int rc = check_many(a, items, n, results);
  if (rc) return rc;
  many_ctx c = {.a = a, .items = items, .n = n, .results = results};
  return store_write_nogrow(a->st, many_fn, &c, grow);
}

int store_access_list(store_access *a, const uint8_t ref[STORE_REF_LEN], size_t max,
                      store_access_cb cb, void *arg)
{
  if (!a || !ref || !cb) return STORE_EINVAL;
  MDB_txn *txn;
  if (mdb_txn_begin(store_env(a->st), NULL, MDB_RDONLY, &txn)) return STORE_EIO;
  MDB_cursor *cur;
  if (mdb_cursor_open(txn, a->dbi, &cur)) {
    mdb_txn_abort(txn);
    return STORE_EIO;
  }
  uint8_t start[STORE_REF_LEN];
  memcpy(start, ref, STORE_REF_LEN);
  MDB_val k = {STORE_REF_LEN, start}, v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  int out = 0;
  size_t n = 0;
  while (rc == 0 && (max == 0 || n < max)) {
    if (k.mv_size != KEY_LEN) {
      out = STORE_ECORRUPT;
      break;
    }
    if (memcmp(k.mv_data, ref, STORE_REF_LEN) != 0) break;
    const uint8_t *kb = k.mv_data;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++) t = t << 8 | kb[STORE_REF_LEN + i];
    out = cb((int64_t)t, v.mv_data, v.mv_size, arg);
    if (out) break;
    n++;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  if (!out && rc != 0 && rc != MDB_NOTFOUND) out = STORE_EIO;
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return out;
}

int store_access_count(store_access *a, uint64_t *out)
{
  MDB_txn *txn;
  if (mdb_txn_begin(store_env(a->st), NULL, MDB_RDONLY, &txn)) return STORE_EIO;
  MDB_stat s;
  int rc = mdb_stat(txn, a->dbi, &s);
  mdb_txn_abort(txn);
  if (rc) return STORE_EIO;
  *out = s.ms_entries;
  return 0;
}
