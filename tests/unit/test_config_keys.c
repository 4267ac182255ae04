/* extra_identity_key_files (key rotation, spec/protocol.md §10): a list of
 * paths, relative to the config file's directory; every bad list is refused
 * with file:line and what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/cbtest-cfgkeys-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/node.ini", dir);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  unlink(path);
  rmdir(dir);
  return 0;
}

#define BASE                                                                  \
  "[node]\n"                                                                  \
  "id = sh-1\n"                                                               \
  "region = sh\n"                                                             \
  "data_dir = data\n"                                                         \
  "admin_socket = /tmp/cb-admin.sock\n"                                       \
  "federation_key_file = fed.key\n"

static int load(const char *text, config_t *cfg, char *err, size_t errlen)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return config_load(path, cfg, err, errlen);
}

static void test_extra_keys(void **state)
{
  (void)state;
  config_t cfg;
  char err[512] = "", want[256];
  assert_int_equal(load(BASE, &cfg, err, sizeof err), 0);
  assert_int_equal(cfg.n_extra_identity_keys, 0);
  assert_int_equal(load(BASE "extra_identity_key_files = keys/b.pem\n", &cfg, err, sizeof err), 0);
  assert_int_equal(cfg.n_extra_identity_keys, 1);
  snprintf(want, sizeof want, "%s/keys/b.pem", dir);
  assert_string_equal(cfg.extra_identity_key_files[0], want);
  assert_int_equal(load(BASE "extra_identity_key_files = b.pem ,\t/etc/c.pem, d.pem\n", &cfg, err,
                        sizeof err), 0);
  assert_int_equal(cfg.n_extra_identity_keys, 3);
  snprintf(want, sizeof want, "%s/b.pem", dir);
  assert_string_equal(cfg.extra_identity_key_files[0], want);
  assert_string_equal(cfg.extra_identity_key_files[1], "/etc/c.pem");
  snprintf(want, sizeof want, "%s/d.pem", dir);
  assert_string_equal(cfg.extra_identity_key_files[2], want);
}

static void expect_error(const char *text, int line, const char *fragment)
{
  config_t cfg;
  char err[512] = "", prefix[256];
  assert_int_equal(load(text, &cfg, err, sizeof err), -1);
  snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
  if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, fragment))
    fail_msg("error '%s' does not start with '%s' and contain '%s'", err, prefix, fragment);
}

static void test_extra_keys_refused(void **state)
{
  (void)state;
  expect_error(BASE "extra_identity_key_files = a.pem,,b.pem\n", 7, "item 2 is empty");
  expect_error(BASE "extra_identity_key_files = a.pem,\n", 7, "item 2 is empty");
  expect_error(BASE "extra_identity_key_files = ,a.pem\n", 7, "item 1 is empty");
  expect_error(BASE "extra_identity_key_files = a, b, c, d\n", 7, "more than 3 files");
  expect_error(BASE "extra_identity_key_files = a\nextra_identity_key_files = b\n", 8, "set twice");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_extra_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(test_extra_keys_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
