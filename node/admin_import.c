/* Learner keys for import batches: see admin_import.h. */
#include "admin_import.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

struct admin_import_keys {
  EVP_MAC *mac;
  EVP_MAC_CTX *keyed;         /* initialised with the key; dup'ed per learner */
  int have_last;
  int cross_checked;          /* first ref compared with idcard_learner_ref */
  const uint8_t *fedkey;
  size_t keylen;
  char last_raw[STORE_ID_NUMBER_MAX + 1];
  char norm[IDCARD_BUFSZ];
  uint8_t ref[IDCARD_REF_LEN];
};

admin_import_keys_t *admin_import_keys_new(const uint8_t *fedkey, size_t keylen)
{
  admin_import_keys_t *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->fedkey = fedkey;
  k->keylen = keylen;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                         OSSL_PARAM_construct_end()};
  k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (k->mac) k->keyed = EVP_MAC_CTX_new(k->mac);
  if (!k->keyed || EVP_MAC_init(k->keyed, fedkey, keylen, params) != 1) {
    admin_import_keys_free(k);
    return NULL;
  }
  return k;
}

void admin_import_keys_free(admin_import_keys_t *k)
{
  if (!k) return;
  EVP_MAC_CTX_free(k->keyed);
  EVP_MAC_free(k->mac);
  free(k);
}

static int derive_ref(admin_import_keys_t *k, const char norm[IDCARD_BUFSZ], uint8_t out[IDCARD_REF_LEN])
{
  EVP_MAC_CTX *c = EVP_MAC_CTX_dup(k->keyed);
  size_t outlen = 0;
  int ok = c && EVP_MAC_update(c, (const unsigned char *)norm, IDCARD_LEN) == 1 &&
           EVP_MAC_final(c, out, &outlen, IDCARD_REF_LEN) == 1 && outlen == IDCARD_REF_LEN;
  EVP_MAC_CTX_free(c);
  return ok ? 0 : -1;
}

int admin_import_learner_key(admin_import_keys_t *k, const char *raw, int32_t today,
                             const char **norm, const uint8_t **ref, char *why, size_t whylen)
{
  size_t len = strnlen(raw, sizeof k->last_raw);
  if (k->have_last && len < sizeof k->last_raw && memcmp(raw, k->last_raw, len + 1) == 0) {
    *norm = k->norm;
    *ref = k->ref;
    return 0;
  }
  k->have_last = 0;
  if (idcard_validate(raw, today, k->norm, why, whylen) != 0) return -1;
  if (derive_ref(k, k->norm, k->ref) != 0) {
    snprintf(why, whylen, "cannot derive learner_ref");
    return -1;
  }
  if (!k->cross_checked) {
    /* Once per batch: this context and the node's one definition of a
     * learner_ref (idcard_learner_ref) must agree. */
    uint8_t want[IDCARD_REF_LEN];
    int rc = idcard_learner_ref(k->fedkey, k->keylen, k->norm, want);
    assert(rc == 0 && memcmp(want, k->ref, IDCARD_REF_LEN) == 0);
    (void)rc;
    k->cross_checked = 1;
  }
  if (len < sizeof k->last_raw) {
    memcpy(k->last_raw, raw, len + 1);
    k->have_last = 1;
  }
  *norm = k->norm;
  *ref = k->ref;
  return 0;
}
