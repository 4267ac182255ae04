/* The access log: every peer lookup this node answered, kept durably in
 * its own named database ("access.log") of the store's environment
 * (spec/protocol.md "Access log"). Entries are opaque bytes to this module
 * (the node stores a packed cb.AccessLogEntry: the requester's own signed
 * request, so each entry stays verifiable), keyed by
 *
 *     learner_ref (32) || answered_at_ms (8, big-endian) || entry_id (8)
 *
 * so one learner's entries are adjacent and in time order; entry_id (the
 * first 8 bytes of the signed request body's SHA-256) keeps two answers in
 * the same millisecond apart. Nothing is ever overwritten or deleted. */
#ifndef CB_STORE_ACCESS_H
#define CB_STORE_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_ACCESS_DB "access.log"
#define STORE_ACCESS_ID_LEN 8
/* Largest entry accepted (a signed request is well under 2 KiB). */
#define STORE_ACCESS_MAX_ENTRY_BYTES 16384u

typedef struct store_access store_access;

/* Opens (creating if missing) the access-log database in s's environment.
 * *out is freed with store_access_close (before store_close). */
int store_access_open(store *s, store_access **out);
void store_access_close(store_access *a);

/* Appends one entry durably: returns 0 only after the commit. An entry with
 * the same key already stored is STORE_ECONFLICT (nothing written). */
int store_access_append(store_access *a, const uint8_t ref[STORE_REF_LEN], int64_t answered_at_ms,
                        const uint8_t id[STORE_ACCESS_ID_LEN], const uint8_t *entry, size_t len);

/* Several entries in ONE durable transaction (group commit: one fsync for
 * all the lookups answered in one loop iteration). results[i] is 0 or
 * STORE_ECONFLICT for an entry whose key is already stored (that entry is
 * not written, the others are). Returns 0 once committed, or an error with
 * nothing written. */
typedef struct store_access_item {
  const uint8_t *ref;            /* STORE_REF_LEN bytes */
  int64_t answered_at_ms;
  const uint8_t *id;             /* STORE_ACCESS_ID_LEN bytes */
  const uint8_t *entry;
  size_t len;
} store_access_item;
#define STORE_ACCESS_BATCH_MAX 1024u
int store_access_append_many(store_access *a, const store_access_item *items, size_t n, int *results);

/* The same from a thread other than the store's owner (the node's
 * access-log writer; store.h "Threads"): never grows the map. When the map
 * is full nothing is written, *grow is 1 and STORE_EFULL is returned; the
 * owner thread then calls store_access_append_many, which grows. */
int store_access_append_many_nogrow(store_access *a, const store_access_item *items, size_t n, int *results,
                                    int *grow);

/* Calls cb for each entry of ref in time order, at most max entries (0: no
 * limit); data is valid during the call only and the callback must not
 * call into the store (a read transaction is open). A non-zero return
 * stops the walk and is returned. */
typedef int (*store_access_cb)(int64_t answered_at_ms, const uint8_t *entry, size_t len, void *arg);
int store_access_list(store_access *a, const uint8_t ref[STORE_REF_LEN], size_t max,
                      store_access_cb cb, void *arg);

/* Entries held in total (for stats and tests). */
int store_access_count(store_access *a, uint64_t *out);

#endif
