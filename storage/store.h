/* store: the node's typed record store on one LMDB environment.
 *
 * One environment per node (one data directory), holding named databases
 * for learners, achievements and their indexes (layout and key design:
 * spec/records.md). Other modules of the node (consensus, the transparency
 * log) open their own named databases in the same environment through
 * store_env() and may join a deposit's write transaction through
 * store_write_fn, so that all writes of one operation commit together.
 *
 * Durability: every write function below returns only after its LMDB write
 * transaction has committed durably (no MDB_NOSYNC / MDB_NOMETASYNC). A
 * caller may acknowledge a write once the call returned 0, never before.
 *
 * Threads: a store belongs to one owner thread (the node's loop), which
 * makes every call below. The one exception is store_write_nogrow(), which
 * ONE other thread (the node's access-log writer) may call while the owner
 * keeps reading and writing. All write transactions of the store are
 * serialised by a mutex inside it (store_write and store_write_nogrow hold
 * it from txn begin to commit), so a write on the owner thread waits for
 * the other thread's commit and never overlaps it. No call keeps a read
 * transaction open after it returns. The map grows on MDB_MAP_FULL inside
 * store_write only, i.e. on the owner thread, holding the mutex: at that
 * moment the owner holds no read txn (none outlives a call) and the other
 * thread holds no write txn (the mutex) and never reads, which is what
 * mdb_env_set_mapsize requires (no txn of this process open). So callers
 * (and users of store_env()) must not hold LMDB transactions across calls
 * into store, and must not open write transactions on store_env()
 * themselves while another thread uses store_write_nogrow.
 *
 * Errors: functions return 0 or a negative store_err; the store keeps a
 * message naming what was wrong (store_errmsg()). store_open() has no store
 * yet and writes its message into the caller's buffer instead.
 */
#ifndef CB_STORE_H
#define CB_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Schema version written in the meta record; a data directory of any other
 * version is refused (no silent migration). */
#define STORE_SCHEMA_VERSION 1u

/* Bounds on record fields, in bytes of UTF-8 (the arrays below hold one more
 * byte for the terminating NUL). Longer input is refused, never truncated. */
#define STORE_REF_LEN 32            /* learner_ref: HMAC-SHA256 output */
#define STORE_NODE_ID_MAX 64
#define STORE_REGION_MAX 8
#define STORE_ID_NUMBER_MAX 32      /* normalised ID number: [0-9A-Z]+ */
#define STORE_NAME_MAX 128
#define STORE_ISSUER_MAX 64
#define STORE_CODE_MAX 64
#define STORE_TITLE_MAX 256
#define STORE_LEVEL_MAX 32
#define STORE_SCORE_MAX 32
#define STORE_DEPOSITOR_CODE_MAX 64
#define STORE_DEPOSITOR_NAME_MAX 128
/* One achievement is worth at most 1000 credits (a whole bachelor's degree
 * is about 160): a larger value is a unit mistake, not data. */
#define STORE_CREDITS_MILLI_MAX INT64_C(1000000)
/* Achievement ids are learner_no << 24 | per-learner sequence (1-based), so
 * a learner holds at most 2^24 - 1 achievements and there are at most 2^40
 * learners per node. */
#define STORE_ACH_SEQ_BITS 24
/* Largest batch store_deposit_batch() accepts in one transaction. */
#define STORE_BATCH_MAX 100000u
/* Recommended batch size for bulk import (see store_deposit_batch()):
 * measured 1M achievements / 100k learners, sorted input: 10,000 items per
 * transaction reach ~35% of raw sequential LMDB, 50,000 ~60% (the
 * random-order learner_ref index pages are rewritten once per commit;
 * spec/records.md). A batch array of 50,000 store_deposit is ~55 MB. */
#define STORE_BATCH_RECOMMENDED 50000u

#define STORE_ERRORS(X)                                                       \
  X(STORE_OK, 0, "success")                                                   \
  X(STORE_EINVAL, -1, "invalid argument or record")                           \
  X(STORE_ENOTFOUND, -2, "not found")                                         \
  X(STORE_ENOENT, -3, "data directory missing or not initialised")            \
  X(STORE_EVERSION, -4, "data directory has another schema version")          \
  X(STORE_ENODE, -5, "data directory belongs to another node")                \
  X(STORE_ECONFLICT, -6, "learner_ref and ID number disagree with stored account") \
  X(STORE_EFULL, -7, "storage limit reached (map size maximum or id space)")  \
  X(STORE_ECORRUPT, -8, "stored data is corrupt")                             \
  X(STORE_ENOMEM, -9, "out of memory")                                        \
  X(STORE_EIO, -10, "LMDB or operating system error")                         \
  X(STORE_EABORT, -11, "write aborted by caller's hook")

typedef enum store_err {
#define STORE_ERR_ENUM_(name, value, text) name = value,
  STORE_ERRORS(STORE_ERR_ENUM_)
#undef STORE_ERR_ENUM_
} store_err;

/* Static text for a store_err (or "unknown store error"). */
const char *store_strerror(int err);

/* Values equal those of cb.AchievementKind / cb.DepositorRole in
 * proto/records.proto. */
enum {
  STORE_KIND_ACADEMIC_COURSE = 1,
  STORE_KIND_VOCATIONAL_QUALIFICATION = 2,
  STORE_KIND_VOCATIONAL_SKILL_LEVEL = 3,
  STORE_KIND_NON_FORMAL = 4,
  STORE_KIND_CULTURAL_LEISURE = 5,
  STORE_KIND_MAX = 5
};
enum {
  STORE_ROLE_OUTLET = 1,
  STORE_ROLE_BRANCH = 2,
  STORE_ROLE_APPRAISAL_CENTRE = 3,
  STORE_ROLE_MANAGEMENT_CENTRE = 4,
  STORE_ROLE_MAX = 4
};

typedef struct store store;

typedef struct store_options {
  const char *node_id;        /* required; e.g. "sh"; written at creation,
                                 compared on every later open */
  const char *region;         /* required at creation (sh, js, zj, ah...);
                                 NULL on later opens = take the stored one */
  size_t map_size_bytes;      /* initial map size; 0 = 1 GiB. Rounded up to
                                 whatever the file already needs. */
  size_t max_map_size_bytes;  /* growth ceiling; 0 = 1 TiB */
  bool create;                /* cbnode --init: create the directory (one
                                 level) and the meta record if missing. An
                                 already initialised directory of the same
                                 node and version is opened as is. */
} store_options;

/* A learner's account. Strings are NUL-terminated UTF-8 within bounds. */
typedef struct store_learner {
  uint8_t learner_ref[STORE_REF_LEN];
  char id_number[STORE_ID_NUMBER_MAX + 1];
  char name[STORE_NAME_MAX + 1];
  int64_t opened_at_ms;       /* Unix ms, > 0 */
  /* Set by the store (ignored on input): */
  char region[STORE_REGION_MAX + 1];
  uint64_t learner_no;        /* local account number, 1, 2, 3... */
  uint32_t achievements;      /* achievement ids assigned so far */
} store_learner;

typedef struct store_depositor {
  int role;                   /* STORE_ROLE_* */
  char code[STORE_DEPOSITOR_CODE_MAX + 1];
  char name[STORE_DEPOSITOR_NAME_MAX + 1];
} store_depositor;

typedef struct store_achievement {
  uint64_t id;                /* set by the store; ignored on input */
  uint8_t learner_ref[STORE_REF_LEN];
  int kind;                   /* STORE_KIND_* */
  char issuer[STORE_ISSUER_MAX + 1];  /* required, no control characters */
  char code[STORE_CODE_MAX + 1];      /* required, no control characters */
  char title[STORE_TITLE_MAX + 1];    /* required */
  char level[STORE_LEVEL_MAX + 1];    /* may be empty */
  int64_t credits_milli;      /* 0 .. STORE_CREDITS_MILLI_MAX */
  char score[STORE_SCORE_MAX + 1];    /* may be empty */
  int32_t awarded_on;         /* YYYYMMDD, a real Gregorian date, 1900..2099 */
  store_depositor depositor;  /* role and code required */
  int64_t deposited_at_ms;    /* Unix ms, > 0 (the caller's clock) */
} store_achievement;

/* Open (or with opt->create, initialise) the store in directory dir.
 * Fails with STORE_ENOENT if dir or its data is missing and !create,
 * STORE_EVERSION / STORE_ENODE naming both values if the directory belongs
 * to another schema version / node. On success *out must be closed with
 * store_close(). err (may be NULL) receives a message on failure. */
int store_open(store **out, const char *dir, const store_options *opt,
               char *err, size_t errlen);
void store_close(store *s);

/* The LMDB environment, for modules that keep their own named databases
 * in it (maxdbs is at least 32; the store uses the names listed in
 * spec/records.md, all starting with "store."). */
MDB_env *store_env(store *s);

/* Message about the last failure of a call on s ("" if none). */
const char *store_errmsg(const store *s);
const char *store_node_id(const store *s);
const char *store_region(const store *s);

/* Run fn inside one durable write transaction, with map growth: on
 * MDB_MAP_FULL the transaction is aborted, the map grown and fn called
 * again from the start, so fn must not keep side effects outside the txn
 * (or must undo them when called again). fn returns 0 to commit or a
 * negative store_err to abort (STORE_EABORT if it has no better code);
 * an MDB_* error from an LMDB call may be returned as is. */
typedef int (*store_write_fn)(MDB_txn *txn, void *arg);
int store_write(store *s, store_write_fn fn, void *arg);

/* The same transaction for a thread other than the owner (see "Threads"
 * above): never grows the map and never touches store_errmsg(). On
 * MDB_MAP_FULL (or a map grown by another process) nothing is written,
 * *grow is set to 1 and STORE_EFULL returned: the owner thread then runs
 * the write again with store_write, which grows. Other errors: STORE_EIO,
 * STORE_ECORRUPT, STORE_ENOMEM or fn's store_err, *grow 0. */
int store_write_nogrow(store *s, store_write_fn fn, void *arg, int *grow);

/* Open a learner's account. If an account with this ID number exists, *l is
 * filled with the stored account and *opened is false (not an error, but
 * STORE_ECONFLICT if its learner_ref differs); else the account is created
 * (learner_no assigned) and *opened is true. */
int store_learner_open(store *s, store_learner *l, bool *opened);
int store_learner_get_by_ref(store *s, const uint8_t ref[STORE_REF_LEN],
                             store_learner *out);
int store_learner_get_by_id_number(store *s, const char *id_number,
                                   store_learner *out);
int store_learner_get_by_no(store *s, uint64_t learner_no, store_learner *out);

/* One item of a deposit: the learner (opened on the fly if new: ref,
 * id_number, name and opened_at_ms are used then) and the achievement
 * (achievement.learner_ref must equal learner.learner_ref). */
typedef struct store_deposit {
  store_learner learner;
  store_achievement achievement;
} store_deposit;

typedef enum store_deposit_status {
  STORE_DEPOSIT_STORED = 0,    /* new: achievement_id assigned */
  STORE_DEPOSIT_DUPLICATE = 1, /* same (learner, issuer, code, awarded_on)
                                  already stored: achievement_id is the
                                  existing one, nothing written */
  STORE_DEPOSIT_INVALID = 2    /* reason in result.reason */
} store_deposit_status;

typedef struct store_deposit_result {
  store_deposit_status status;
  uint64_t achievement_id;
  uint64_t learner_no;
  bool learner_opened;         /* this item opened the learner's account */
  char reason[128];            /* for STORE_DEPOSIT_INVALID: field and why */
} store_deposit_result;

/* Deposit n items (1 <= n <= STORE_BATCH_MAX) in ONE durable write
 * transaction; results[i] describes items[i].
 *
 * All or nothing: every item is validated first; if any is invalid (or its
 * learner_ref / ID number conflict with a stored account) nothing is
 * written, each bad item's result is STORE_DEPOSIT_INVALID with a reason,
 * and the call returns STORE_EINVAL (or STORE_ECONFLICT). Callers validate
 * earlier, so an invalid item here is a caller bug or hostile input.
 * A duplicate is not an error: re-sending a batch is idempotent.
 *
 * hook (may be NULL) runs inside the same transaction after the items are
 * written, with the results filled, so another module (e.g. the log) can add
 * its writes to the same commit; it may be called more than once (map
 * growth), see store_write_fn.
 *
 * Cost (spec/records.md): cheapest when items come sorted by ID number (new
 * learners then get increasing learner_no and every index except learner_ref
 * is written in append order), a learner's items adjacent, ideally also by
 * (awarded_on, issuer, code); and in big batches: STORE_BATCH_RECOMMENDED
 * items per call amortises the commit's fsync and the random-order
 * learner_ref index pages. */
typedef int (*store_deposit_hook_fn)(MDB_txn *txn,
                                     const store_deposit *items,
                                     const store_deposit_result *results,
                                     size_t n, void *arg);
int store_deposit_batch(store *s, const store_deposit *items, size_t n,
                        store_deposit_result *results,
                        store_deposit_hook_fn hook, void *hook_arg);

/* Check one item as store_deposit_batch() would before writing (fields
 * only; no lookups). Returns 0 or STORE_EINVAL with the reason in
 * reason[reasonlen]. For callers that want to refuse early. */
int store_deposit_validate(const store_deposit *item, char *reason,
                           size_t reasonlen);

/* Bulk import without an items array: store_deposit_batch() needs the
 * whole batch as store_deposit structs (~1 KB each, 50 MB for 50,000
 * items); this takes the items one at a time from get(arg, i, item), which
 * fills *item completely (item is the store's scratch, reused). Items are
 * fetched in order 0..n-1, possibly more than once (map growth runs the
 * transaction again from item 0), so get must give the same item for the
 * same i. get returns 0, or non-zero to abort the batch (the call then
 * returns STORE_EABORT, sum->bad_index = i; get keeps its own message).
 *
 * One durable transaction, all or nothing, like store_deposit_batch():
 * every item is validated right before it is written; the first invalid
 * or conflicting item aborts the transaction (nothing written) and the
 * call returns STORE_EINVAL / STORE_ECONFLICT with sum->bad_index and
 * sum->reason naming it. Unlike store_deposit_batch(), only the first bad
 * item is reported, no per-item results are kept and there is no hook.
 * On 0, sum holds the counts of the committed batch. */
typedef int (*store_deposit_get_fn)(void *arg, size_t i, store_deposit *item);
typedef struct store_batch_summary {
  size_t stored, duplicates, learners_opened;
  size_t bad_index;           /* when the call failed on one item */
  char reason[128];           /* that item's field and problem */
} store_batch_summary;
int store_deposit_stream(store *s, size_t n, store_deposit_get_fn get,
                         void *arg, store_batch_summary *sum);

/* An achievement by id (learner_ref filled from the account). */
int store_achievement_get(store *s, uint64_t id, store_achievement *out);

/* Totals of a transcript, per kind (index = STORE_KIND_*; 0 unused). */
typedef struct store_totals {
  uint64_t count;
  int64_t credits_milli;
  uint64_t count_by_kind[STORE_KIND_MAX + 1];
  int64_t credits_milli_by_kind[STORE_KIND_MAX + 1];
} store_totals;

/* Called for each achievement of a transcript, in (awarded_on, issuer,
 * code) order; a is valid during the call only. Return 0 to go on, anything
 * else to stop (store_transcript then returns that value). The callback
 * must not call into the store (a read transaction is open). */
typedef int (*store_transcript_cb)(const store_achievement *a, void *arg);

/* Iterate a learner's achievements (cb may be NULL) and/or sum them
 * (totals may be NULL). STORE_ENOTFOUND if no such learner. */
int store_transcript(store *s, const uint8_t ref[STORE_REF_LEN],
                     store_transcript_cb cb, void *arg, store_totals *totals);

typedef struct store_stats {
  uint32_t schema_version;
  uint64_t learners;
  uint64_t achievements;
  uint64_t map_size_bytes;    /* current map size */
  uint64_t used_bytes;        /* pages in use (last page number x size) */
  uint64_t file_bytes;        /* data.mdb blocks allocated on disk */
  uint32_t page_size;
  uint32_t map_grows;         /* growths done by this store since open */
} store_stats;
int store_get_stats(store *s, store_stats *out);

#endif
