/* Identity and federation key files: created 0600, never overwritten,
 * refused when too open, not regular, symlinked or malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "identity.h"

static char dir[64];

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/cbtest-ident-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

static void test_identity_create_load(void **state)
{
  (void)state;
  char path[128], err[256];
  snprintf(path, sizeof path, "%s/id.pem", dir);
  assert_int_equal(identity_create(path, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  EVP_PKEY *k = NULL;
  assert_int_equal(identity_load(path, &k, err, sizeof err), 0);
  uint8_t pub[32], pub2[32];
  assert_int_equal(identity_public_raw(k, pub), 0);
  EVP_PKEY_free(k);
  assert_int_equal(identity_load(path, &k, err, sizeof err), 0);
  assert_int_equal(identity_public_raw(k, pub2), 0);
  assert_memory_equal(pub, pub2, 32);
  EVP_PKEY_free(k);

  /* Never overwritten. */
  assert_int_equal(identity_create(path, err, sizeof err), -1);
  assert_non_null(strstr(err, "refusing to overwrite"));
  assert_int_equal(identity_load(path, &k, err, sizeof err), 0);
  assert_int_equal(identity_public_raw(k, pub2), 0);
  assert_memory_equal(pub, pub2, 32);
  EVP_PKEY_free(k);

  /* Too open. */
  assert_int_equal(chmod(path, 0640), 0);
  assert_int_equal(identity_load(path, &k, err, sizeof err), -1);
  assert_null(k);
  assert_non_null(strstr(err, "mode 0640"));
  assert_int_equal(chmod(path, 0600), 0);

  /* A symlink to a good key is refused. */
  char link[128];
  snprintf(link, sizeof link, "%s/link.pem", dir);
  assert_int_equal(symlink(path, link), 0);
  assert_int_equal(identity_load(link, &k, err, sizeof err), -1);
  assert_non_null(strstr(err, "symbolic link"));
}

static void test_identity_bad_content(void **state)
{
  (void)state;
  char path[128], err[256];
  snprintf(path, sizeof path, "%s/bad.pem", dir);
  FILE *f = fopen(path, "w");
  fputs("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", f);
  fclose(f);
  chmod(path, 0600);
  EVP_PKEY *k = NULL;
  assert_int_equal(identity_load(path, &k, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a PEM private key"));

  /* An RSA key is not an identity key. */
  char rsa[128];
  snprintf(rsa, sizeof rsa, "%s/rsa.pem", dir);
  EVP_PKEY *r = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  assert_non_null(r);
  f = fopen(rsa, "w");
  assert_int_equal(PEM_write_PrivateKey(f, r, NULL, NULL, 0, NULL, NULL), 1);
  fclose(f);
  EVP_PKEY_free(r);
  chmod(rsa, 0600);
  assert_int_equal(identity_load(rsa, &k, err, sizeof err), -1);
  assert_non_null(strstr(err, "not Ed25519"));

  /* Missing and directory. */
  assert_int_equal(identity_load(dir, &k, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a regular file"));
  snprintf(path, sizeof path, "%s/missing.pem", dir);
  assert_int_equal(identity_load(path, &k, err, sizeof err), -1);
  assert_non_null(strstr(err, "cannot open"));
}

static void test_fedkey(void **state)
{
  (void)state;
  char path[128], err[256];
  snprintf(path, sizeof path, "%s/fed.key", dir);
  assert_int_equal(identity_fedkey_create(path, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_size, 65);
  uint8_t k1[32], k2[32];
  assert_int_equal(identity_fedkey_load(path, k1, err, sizeof err), 0);
  assert_int_equal(identity_fedkey_create(path, err, sizeof err), -1);
  assert_int_equal(identity_fedkey_load(path, k2, err, sizeof err), 0);
  assert_memory_equal(k1, k2, 32);

  /* Known content decodes to known bytes. */
  char p2[128];
  snprintf(p2, sizeof p2, "%s/fixed.key", dir);
  FILE *f = fopen(p2, "w");
  fputs("000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\r\n", f);
  fclose(f);
  chmod(p2, 0600);
  assert_int_equal(identity_fedkey_load(p2, k1, err, sizeof err), 0);
  for (int i = 0; i < 32; i++) assert_int_equal(k1[i], i);

  f = fopen(p2, "w");
  fputs("00010203", f);
  fclose(f);
  assert_int_equal(identity_fedkey_load(p2, k1, err, sizeof err), -1);
  assert_non_null(strstr(err, "expected 64 hex digits, found 8"));
  f = fopen(p2, "w");
  fputs("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", f);
  fclose(f);
  assert_int_equal(identity_fedkey_load(p2, k1, err, sizeof err), -1);
  assert_non_null(strstr(err, "character 64 is not a hex digit"));
  chmod(p2, 0644);
  assert_int_equal(identity_fedkey_load(p2, k1, err, sizeof err), -1);
  assert_non_null(strstr(err, "mode 0644"));
}

/* Key rotation: the newest key the registry lists as valid now. Keys A
 * [1000, 5000), B [3000, open), D [2000, 4000) as sh's; C is js's. */
static void rot_pub(uint8_t out[IDENTITY_PUBKEY_BYTES], char hex[65])
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  assert_non_null(k);
  assert_int_equal(identity_public_raw(k, out), 0);
  EVP_PKEY_free(k);
  for (unsigned i = 0; i < IDENTITY_PUBKEY_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", out[i]);
}

static void test_identity_choose(void **state)
{
  (void)state;
  uint8_t pubs[4][IDENTITY_PUBKEY_BYTES];
  char a[65], b[65], c[65], d[65], json[2048], err[256];
  rot_pub(pubs[0], a);
  rot_pub(pubs[1], b);
  rot_pub(pubs[2], c);
  rot_pub(pubs[3], d);
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":["
           "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:1\",\"keys\":["
           "{\"public_key\":\"%s\",\"not_before\":1000,\"not_after\":5000},"
           "{\"public_key\":\"%s\",\"not_before\":3000},"
           "{\"public_key\":\"%s\",\"not_before\":2000,\"not_after\":4000}]},"
           "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"127.0.0.1:2\",\"keys\":["
           "{\"public_key\":\"%s\",\"not_before\":0}]}]}",
           0, a, b, d, c);
  registry_t *reg;
  if (registry_parse(json, strlen(json), &reg, err, sizeof err)) fail_msg("%s", err);
  const registry_member_t *sh = registry_find_member(reg, "sh");
  /* Order given: A, B, C (another member's), D. */
  assert_int_equal(identity_choose(sh, pubs, 4, 999), -1);    /* nothing valid yet */
  assert_int_equal(identity_choose(sh, pubs, 4, 1000), 0);    /* A from its first ms */
  assert_int_equal(identity_choose(sh, pubs, 4, 2500), 3);    /* D began later than A */
  assert_int_equal(identity_choose(sh, pubs, 4, 3000), 1);    /* B: the newest */
  assert_int_equal(identity_choose(sh, pubs, 4, 99999), 1);
  assert_int_equal(identity_choose(sh, pubs, 1, 4999), 0);    /* only A held */
  assert_int_equal(identity_choose(sh, pubs, 1, 5000), -1);   /* A expired (end exclusive) */
  assert_int_equal(identity_choose(sh, pubs + 2, 1, 3000), -1); /* js's key is not sh's */
  assert_int_equal(identity_choose(NULL, pubs, 4, 3000), -1);
  /* When the choice can change next. */
  assert_int_equal(identity_next_change(sh, pubs, 4, 0), 1000);
  assert_int_equal(identity_next_change(sh, pubs, 4, 1000), 2000);
  assert_int_equal(identity_next_change(sh, pubs, 4, 3000), 4000);
  assert_int_equal(identity_next_change(sh, pubs, 4, 4000), 5000);
  assert_true(identity_next_change(sh, pubs, 4, 5000) == REGISTRY_TIME_OPEN);
  assert_true(identity_next_change(sh, pubs + 2, 1, 0) == REGISTRY_TIME_OPEN);
  registry_release(reg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_identity_create_load, setup, teardown),
    cmocka_unit_test_setup_teardown(test_identity_bad_content, setup, teardown),
    cmocka_unit_test_setup_teardown(test_fedkey, setup, teardown),
    cmocka_unit_test(test_identity_choose),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
