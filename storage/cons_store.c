/* cons_store.c: LMDB adapter for consensus state, committed blocks and
 * evidence (spec/consensus.md §7). Raw LMDB on the caller's environment. */
#include "cons_store.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const store_errstr[] = {
#define CONS_STORE_STR(name, code, str) [-(code)] = str,
    CONS_STORE_ERRORS(CONS_STORE_STR)
#undef CONS_STORE_STR
};

const char *cons_store_strerror(int code) {
  if (code > 0 || (size_t)-code >= sizeof store_errstr / sizeof store_errstr[0])
    return "unknown cons_store error";
  return store_errstr[-code];
}

static int lmdb_fail(cons_store *s, const char *what, int rc) {
  snprintf(s->err, sizeof s->err, "%s: %s", what, mdb_strerror(rc));
  return rc == MDB_CORRUPTED ? CONS_STORE_ECORRUPT : CONS_STORE_ELMDB;
}

void cons_store_hashv(void *ctx, const cons_iov *parts, size_t nparts,
                      uint8_t out[CONS_HASH_BYTES]) {
  (void)ctx;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned int n = 0;
  bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
  for (size_t i = 0; ok && i < nparts; i++)
    ok = parts[i].len == 0 ||
         EVP_DigestUpdate(md, parts[i].data, parts[i].len) == 1;
  ok = ok && EVP_DigestFinal_ex(md, out, &n) == 1 && n == CONS_HASH_BYTES;
  EVP_MD_CTX_free(md);
  if (!ok) {
    /* a wrong block hash would split the federation: never return one */
    fprintf(stderr, "cons_store_hashv: OpenSSL SHA-256 failed\n");
    abort();
  }
}

/* check_commit needs only the hash of the interface */
static const cons_crypto store_hasher = {NULL, NULL, NULL, cons_store_hashv};

static void be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

int cons_store_open(cons_store *s, MDB_env *env) {
  MDB_txn *txn;
  memset(s, 0, sizeof *s);
  if (!env) return CONS_STORE_EARG;
  s->env = env;
  int rc = mdb_txn_begin(env, NULL, 0, &txn);
  if (rc) return lmdb_fail(s, "begin", rc);
  if ((rc = mdb_dbi_open(txn, "cons_state", MDB_CREATE, &s->state)) ||
      (rc = mdb_dbi_open(txn, "cons_blocks", MDB_CREATE, &s->blocks)) ||
      (rc = mdb_dbi_open(txn, "cons_evidence", MDB_CREATE, &s->evidence))) {
    mdb_txn_abort(txn);
    return lmdb_fail(s, "open databases", rc);
  }
  rc = mdb_txn_commit(txn);
  return rc ? lmdb_fail(s, "commit", rc) : 0;
}

void cons_store_close(cons_store *s) {
  /* the handles belong to the environment, closed with it by its owner */
  s->env = NULL;
}

/* Right before writing: the record must decode, sit at the height it claims
 * and extend the block below it. */
static int check_commit(cons_store *s, MDB_txn *txn, const cons_commit_out *c) {
  cons_block *b = malloc(sizeof *b);
  int rc = CONS_STORE_EARG;
  if (!b) return CONS_STORE_ELMDB;
  if (cons_block_decode(c->block, c->block_len, b) != 0 ||
      b->height != c->height) {
    snprintf(s->err, sizeof s->err, "commit at %llu does not decode",
             (unsigned long long)c->height);
    goto done;
  }
  if (c->height > 1) {
    uint8_t k[8], h[CONS_HASH_BYTES];
    be64(k, c->height - 1);
    MDB_val key = {8, k}, val;
    int lrc = mdb_get(txn, s->blocks, &key, &val);
    if (lrc == 0) {
      /* u32 block_len, block: the parent's hash is over those bytes */
      const uint8_t *p = val.mv_data;
      if (val.mv_size < 4) { rc = CONS_STORE_ECORRUPT; goto done; }
      size_t blen = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
      if (blen + 4 > val.mv_size) { rc = CONS_STORE_ECORRUPT; goto done; }
      cons_block_hash(&store_hasher, p + 4, blen, h);
      if (memcmp(h, b->parent, CONS_HASH_BYTES) != 0) {
        snprintf(s->err, sizeof s->err, "commit at %llu does not extend ours",
                 (unsigned long long)c->height);
        goto done;
      }
    }
  }
  rc = 0;
done:
  free(b);
  return rc;
}

int cons_store_apply(cons_store *s, const cons_update *u) {
  MDB_txn *txn;
  if (!u->state && !u->n_commits && !u->n_evidence) return 0;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc) return lmdb_fail(s, "begin", rc);
  for (size_t i = 0; i < u->n_commits; i++) {
    const cons_commit_out *c = &u->commits[i];
    int crc = check_commit(s, txn, c);
    if (crc) {
      mdb_txn_abort(txn);
      return crc;
    }
    uint8_t k[8];
    be64(k, c->height);
    MDB_val key = {8, k}, val = {c->record_len, (void *)c->record};
    if ((rc = mdb_put(txn, s->blocks, &key, &val, 0))) goto fail;
  }
  for (size_t i = 0; i < u->n_evidence; i++) {
    const cons_evidence_out *e = &u->evidence[i];
    uint8_t k[17];
    be64(k, e->height);
    k[8] = (uint8_t)(e->round >> 24);
    k[9] = (uint8_t)(e->round >> 16);
    k[10] = (uint8_t)(e->round >> 8);
    k[11] = (uint8_t)e->round;
    k[12] = e->kind;
    k[13] = (uint8_t)(e->member >> 24);
    k[14] = (uint8_t)(e->member >> 16);
    k[15] = (uint8_t)(e->member >> 8);
    k[16] = (uint8_t)e->member;
    MDB_val key = {sizeof k, k}, val = {e->len, (void *)e->data};
    rc = mdb_put(txn, s->evidence, &key, &val, MDB_NOOVERWRITE);
    if (rc && rc != MDB_KEYEXIST) goto fail; /* first evidence kept */
  }
  if (u->state) {
    MDB_val key = {5, "state"}, val = {u->state_len, (void *)u->state};
    if ((rc = mdb_put(txn, s->state, &key, &val, 0))) goto fail;
  }
  rc = mdb_txn_commit(txn); /* durable: the env has no NOSYNC flags */
  return rc ? lmdb_fail(s, "commit", rc) : 0;
fail:
  mdb_txn_abort(txn);
  return lmdb_fail(s, "put", rc);
}

static int get_copy(cons_store *s, MDB_dbi dbi, MDB_val *key, uint8_t **out,
                    size_t *len) {
  MDB_txn *txn;
  MDB_val val;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc) return lmdb_fail(s, "begin read", rc);
  rc = mdb_get(txn, dbi, key, &val);
  if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return CONS_STORE_ENOTFOUND;
  }
  if (rc) {
    mdb_txn_abort(txn);
    return lmdb_fail(s, "get", rc);
  }
  if (val.mv_size > 3 * CONS_MAX_RECORD_BYTES) {
    mdb_txn_abort(txn);
    snprintf(s->err, sizeof s->err, "stored value of %zu bytes", val.mv_size);
    return CONS_STORE_ECORRUPT;
  }
  *out = malloc(val.mv_size ? val.mv_size : 1);
  if (!*out) {
    mdb_txn_abort(txn);
    return CONS_STORE_ELMDB;
  }
  memcpy(*out, val.mv_data, val.mv_size);
  *len = val.mv_size;
  mdb_txn_abort(txn); /* short read transaction, never held across calls */
  return 0;
}

int cons_store_load_state(cons_store *s, uint8_t **out, size_t *len) {
  MDB_val key = {5, "state"};
  return get_copy(s, s->state, &key, out, len);
}

int cons_store_get_block(cons_store *s, uint64_t height, uint8_t **out,
                         size_t *len) {
  uint8_t k[8];
  be64(k, height);
  MDB_val key = {8, k};
  return get_copy(s, s->blocks, &key, out, len);
}

int cons_store_last_height(cons_store *s, uint64_t *height) {
  MDB_txn *txn;
  MDB_cursor *cur;
  MDB_val key, val;
  *height = 0;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc) return lmdb_fail(s, "begin read", rc);
  if ((rc = mdb_cursor_open(txn, s->blocks, &cur))) {
    mdb_txn_abort(txn);
    return lmdb_fail(s, "cursor", rc);
  }
  rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
  if (rc == 0 && key.mv_size == 8) {
    const uint8_t *k = key.mv_data;
    for (int i = 0; i < 8; i++) *height = *height << 8 | k[i];
  } else if (rc == 0) {
    rc = CONS_STORE_ECORRUPT;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (rc == MDB_NOTFOUND) return 0;
  return rc == CONS_STORE_ECORRUPT ? rc : rc ? lmdb_fail(s, "last", rc) : 0;
}

int cons_store_evidence_count(cons_store *s, size_t *count) {
  MDB_txn *txn;
  MDB_stat st;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc) return lmdb_fail(s, "begin read", rc);
  rc = mdb_stat(txn, s->evidence, &st);
  mdb_txn_abort(txn);
  if (rc) return lmdb_fail(s, "stat", rc);
  *count = st.ms_entries;
  return 0;
}
