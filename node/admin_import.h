/* Learner keys for import batches: the ID number of each row is checked
 * (GB 11643, against today) and its learner_ref derived on the node, which
 * never trusts cbctl. Rows arrive grouped by learner (cbctl sorts by ID
 * number), so both are done once per learner, not once per row, and the
 * HMAC runs on a context keyed once per batch instead of fetching HMAC and
 * SHA-256 for every call (EVP_Q_mac), which showed up as OpenSSL's lock
 * traffic in the import profile. spec/admin.md "Import". */
#ifndef CB_ADMIN_IMPORT_H
#define CB_ADMIN_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "idcard.h"
#include "store.h"

typedef struct admin_import_keys admin_import_keys_t;

/* A key cache for one batch, HMAC keyed with the federation key. NULL if
 * OpenSSL or memory fails. */
admin_import_keys_t *admin_import_keys_new(const uint8_t *fedkey, size_t keylen);
void admin_import_keys_free(admin_import_keys_t *k);

/* Checks the ID number as typed (idcard_validate against today) and gives
 * its normalised form and learner_ref, valid until the next call. The
 * previous row's answer is reused when raw is the same text. Returns 0, or
 * -1 with why[] saying what is wrong with the number (or that the ref could
 * not be derived). */
int admin_import_learner_key(admin_import_keys_t *k, const char *raw, int32_t today,
                             const char **norm, const uint8_t **ref, char *why, size_t whylen);

#endif
