/* Node secrets on disk: the Ed25519 identity key (PEM, PKCS#8) and the
 * federation key (32 bytes as 64 hex digits) from which learner_ref is
 * derived. Both files are created with mode 0600 and refused on load if
 * group or others have any access, if they are not regular files, or if
 * they are symbolic links. */
#ifndef CB_IDENTITY_H
#define CB_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "registry.h"

#define IDENTITY_FEDKEY_BYTES 32u
#define IDENTITY_PUBKEY_BYTES 32u

/* Generates a new Ed25519 key and writes it to path (0600, O_EXCL: an
 * existing file is never overwritten). 0 or -1 with err set. */
int identity_create(const char *path, char *err, size_t errlen);
/* Loads and checks the key; *out is the caller's (EVP_PKEY_free). */
int identity_load(const char *path, EVP_PKEY **out, char *err, size_t errlen);
/* Raw 32-byte public key of an Ed25519 key. */
int identity_public_raw(const EVP_PKEY *key, uint8_t pub[IDENTITY_PUBKEY_BYTES]);

/* Writes 32 fresh random bytes as hex (0600, O_EXCL). */
int identity_fedkey_create(const char *path, char *err, size_t errlen);
int identity_fedkey_load(const char *path, uint8_t key[IDENTITY_FEDKEY_BYTES], char *err,
                         size_t errlen);

/* True if path exists (any type). */
int identity_file_exists(const char *path);

/* Key rotation (spec/protocol.md §10). A node may hold several identity
 * keys; which one it signs and handshakes with is decided by the registry:
 * among pubs[0..n), those self lists as valid at now_ms, the one whose
 * period began last (ties: the one that ends last, then the lower index).
 * Returns its index, or -1 if none is valid now. Pure. */
int identity_choose(const registry_member_t *self, const uint8_t (*pubs)[IDENTITY_PUBKEY_BYTES],
                    size_t n, int64_t now_ms);
/* The first time after now_ms at which identity_choose's answer can change
 * (a not_before or not_after of one of pubs' periods in self);
 * REGISTRY_TIME_OPEN if none lies ahead. Pure. */
int64_t identity_next_change(const registry_member_t *self,
                             const uint8_t (*pubs)[IDENTITY_PUBKEY_BYTES], size_t n, int64_t now_ms);

#endif
