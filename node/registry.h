/* The federation registry: who the members are, where they listen, which
 * Ed25519 keys they sign with (several per member, each with a validity
 * period, so keys rotate with overlap) and the federation key from which
 * learner_ref is derived. spec/protocol.md "Registry".
 *
 * A registry_t is an immutable, reference-counted snapshot. Today it comes
 * from a JSON file (registry_load); the consensus work will build the same
 * snapshot from the ledger. Every consumer (TLS pinning, statement
 * verification, the peer table) only sees this interface, so that swap is
 * local. Reload = build a new snapshot and swap the pointer; holders of the
 * old one keep it valid until they release it. */
#ifndef CB_REGISTRY_H
#define CB_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define REGISTRY_KEY_BYTES 32u
#define REGISTRY_FEDERATION_KEY_BYTES 32u
#define REGISTRY_NODE_ID_MAX 63u
#define REGISTRY_HOST_MAX 253u
#define REGISTRY_MAX_MEMBERS 64u
#define REGISTRY_MAX_KEYS 16u       /* per member */
#define REGISTRY_MAX_FILE_BYTES (1024u * 1024u)
/* not_after absent: valid until replaced. */
#define REGISTRY_TIME_OPEN INT64_MAX

#define REGISTRY_ERRORS(X)                                          \
  X(REGISTRY_OK, "ok")                                              \
  X(REGISTRY_E_ARG, "invalid argument")                             \
  X(REGISTRY_E_NOMEM, "out of memory")                              \
  X(REGISTRY_E_IO, "cannot read registry file")                     \
  X(REGISTRY_E_PARSE, "registry is not valid JSON")                 \
  X(REGISTRY_E_INVALID, "registry content is invalid")              \
  X(REGISTRY_E_UNKNOWN_MEMBER, "no such member")                    \
  X(REGISTRY_E_KEY_UNKNOWN, "key does not belong to the member")    \
  X(REGISTRY_E_KEY_NOT_YET_VALID, "key is not yet valid")           \
  X(REGISTRY_E_KEY_EXPIRED, "key has expired")

#define REGISTRY_ENUM_(name, str) name,
enum registry_err { REGISTRY_ERRORS(REGISTRY_ENUM_) REGISTRY_ERR_COUNT_ };
#undef REGISTRY_ENUM_

const char *registry_strerror(int err);

typedef struct registry_key {
  uint8_t public_key[REGISTRY_KEY_BYTES];
  int64_t not_before_ms; /* inclusive */
  int64_t not_after_ms;  /* exclusive; REGISTRY_TIME_OPEN if unbounded */
  EVP_PKEY *pkey;        /* the same key imported once, for verification */
} registry_key_t;

typedef struct registry_member {
  char node_id[REGISTRY_NODE_ID_MAX + 1];
  char region[3];        /* sh, js, zj, ah */
  char host[REGISTRY_HOST_MAX + 1];
  uint16_t port;
  size_t nkeys;
  registry_key_t keys[REGISTRY_MAX_KEYS];
} registry_member_t;

typedef struct registry registry_t;

/* Reads and validates a JSON registry file. On error *out is untouched and
 * err says what is wrong, naming the member (by index and node id) and the
 * field. */
int registry_load(const char *path, registry_t **out, char *err, size_t errlen);
/* Same from a buffer (the file's content). */
int registry_parse(const char *json, size_t len, registry_t **out, char *err, size_t errlen);

/* Reference counting: a new snapshot has one reference. */
registry_t *registry_retain(registry_t *reg);
void registry_release(registry_t *reg);

size_t registry_member_count(const registry_t *reg);
const registry_member_t *registry_member_at(const registry_t *reg, size_t i);
const registry_member_t *registry_find_member(const registry_t *reg, const char *node_id);
/* The member one of whose keys (any period) is pub; NULL if none. Keys are
 * unique across members, so the answer is unambiguous. */
const registry_member_t *registry_find_key_owner(const registry_t *reg,
                                                 const uint8_t pub[REGISTRY_KEY_BYTES]);
/* 0 if pub is one of member's keys and valid at time_ms; otherwise
 * -REGISTRY_E_KEY_UNKNOWN, -REGISTRY_E_KEY_NOT_YET_VALID or
 * -REGISTRY_E_KEY_EXPIRED. A key appears at most once per member. */
int registry_key_valid_at(const registry_member_t *member, const uint8_t pub[REGISTRY_KEY_BYTES],
                          int64_t time_ms);
const uint8_t *registry_federation_key(const registry_t *reg);
/* The member's key pub, imported for OpenSSL (owned by the snapshot); NULL
 * if pub is not one of its keys. */
EVP_PKEY *registry_key_pkey(const registry_member_t *member, const uint8_t pub[REGISTRY_KEY_BYTES]);

/* Parses a time given as integer milliseconds since the Unix epoch or as
 * RFC 3339 text ("2026-01-01T00:00:00Z", fractional seconds and +hh:mm
 * offsets allowed). Exposed for tests and tools. */
int registry_parse_time_text(const char *s, int64_t *ms);

#endif
