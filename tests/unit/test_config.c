/* Config loading: defaults, relative paths, and every refusal names
 * file:line and the problem. */
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
  snprintf(dir, sizeof dir, "/tmp/cbtest-config-XXXXXX");
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

static void write_file(const char *text)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

#define BASE                                                                  \
  "[node]\n"                                                                  \
  "id = sh-1\n"                                                               \
  "region = sh\n"                                                             \
  "data_dir = data\n"                                                         \
  "admin_socket = /tmp/cb-admin.sock\n"                                       \
  "federation_key_file = fed.key\n"

static void test_minimal_defaults(void **state)
{
  (void)state;
  write_file("; comment\n" BASE);
  config_t cfg;
  char err[512];
  assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
  assert_string_equal(cfg.id, "sh-1");
  assert_string_equal(cfg.region, "sh");
  char want[256];
  snprintf(want, sizeof want, "%s/data", dir);
  assert_string_equal(cfg.data_dir, want);
  snprintf(want, sizeof want, "%s/data/identity.pem", dir);
  assert_string_equal(cfg.identity_key_file, want);
  snprintf(want, sizeof want, "%s/fed.key", dir);
  assert_string_equal(cfg.federation_key_file, want);
  assert_string_equal(cfg.admin_socket, "/tmp/cb-admin.sock");
  assert_int_equal(cfg.max_frame_bytes, CONFIG_DEFAULT_MAX_FRAME_BYTES);
  assert_int_equal(cfg.map_size_mb, CONFIG_DEFAULT_MAP_SIZE_MB);
  assert_int_equal(cfg.import_batch_records, CONFIG_DEFAULT_IMPORT_BATCH);
  assert_string_equal(cfg.log_level, "info");
}

static void test_limits(void **state)
{
  (void)state;
  write_file(BASE "[limits]\nmax_frame_bytes = 65536\nmap_size_mb = 64\n"
                  "import_batch_records = 500\nmax_admin_connections = 4\n");
  config_t cfg;
  char err[512];
  assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
  assert_int_equal(cfg.max_frame_bytes, 65536);
  assert_int_equal(cfg.map_size_mb, 64);
  assert_int_equal(cfg.import_batch_records, 500);
  assert_int_equal(cfg.max_admin_connections, 4);
}

/* Each bad file, the line the error must name and a fragment of the reason. */
static void expect_error(const char *text, int line, const char *fragment)
{
  write_file(text);
  config_t cfg;
  char err[512] = "";
  assert_int_equal(config_load(path, &cfg, err, sizeof err), -1);
  char prefix[256];
  if (line > 0)
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
  else
    snprintf(prefix, sizeof prefix, "%s: ", path);
  if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, fragment)) {
    fail_msg("error '%s' does not start with '%s' and contain '%s'", err, prefix, fragment);
  }
}

static void test_errors(void **state)
{
  (void)state;
  expect_error(BASE "colour = blue\n", 7, "unknown key 'colour' in section [node]");
  expect_error(BASE "[extra]\nx = 1\n", 8, "unknown section [extra]");
  expect_error(BASE "region = js\n", 7, "set twice");
  expect_error("[node]\nid = sh-1\nregion = xx\n", 3, "region 'xx' is not one of");
  expect_error("[node]\nid = SH 1\n", 2, "use only a-z");
  expect_error(BASE "[limits]\nmax_frame_bytes = 12k\n", 8, "'12k' is not a number");
  expect_error(BASE "[limits]\nmax_frame_bytes = 100\n", 8, "out of range");
  expect_error(BASE "[limits]\nmax_frame_bytes = 999999999999\n", 8, "out of range");
  expect_error(BASE "[limits]\nimport_batch_records = -5\n", 8, "not a number");
  expect_error(BASE "log_level = loud\n", 7, "log_level 'loud'");
  expect_error(BASE "this line has no equals sign\n", 7, "syntax error");
  expect_error("[node]\nid = sh-1\nregion = sh\ndata_dir = d\nadmin_socket = s\n", 0,
               "missing required key [node] federation_key_file");
  /* A syntax error before a handler error: the line and message agree. */
  expect_error("[node]\nbroken\nid = sh-1\ncolour = red\n", 2, "syntax error");
  char longsock[400];
  snprintf(longsock, sizeof longsock,
           "[node]\nadmin_socket = /tmp/%0120d\n", 0);
  expect_error(longsock, 2, "longer than 107 bytes");
}

/* extra_identity_key_files (key rotation, spec/protocol.md §10): a list of
 * paths, relative to the config file's directory. */
static void test_extra_keys(void **state)
{
  (void)state;
  config_t cfg;
  char err[512] = "", want[256];
  write_file(BASE);
  assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
  assert_int_equal(cfg.n_extra_identity_keys, 0);
  write_file(BASE "extra_identity_key_files = keys/b.pem\n");
  assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
  assert_int_equal(cfg.n_extra_identity_keys, 1);
  snprintf(want, sizeof want, "%s/keys/b.pem", dir);
  assert_string_equal(cfg.extra_identity_key_files[0], want);
  write_file(BASE "extra_identity_key_files = b.pem ,\t/etc/c.pem, d.pem\n");
  assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
  assert_int_equal(cfg.n_extra_identity_keys, 3);
  snprintf(want, sizeof want, "%s/b.pem", dir);
  assert_string_equal(cfg.extra_identity_key_files[0], want);
  assert_string_equal(cfg.extra_identity_key_files[1], "/etc/c.pem");
  snprintf(want, sizeof want, "%s/d.pem", dir);
  assert_string_equal(cfg.extra_identity_key_files[2], want);
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

static void test_missing_file(void **state)
{
  (void)state;
  config_t cfg;
  char err[512];
  assert_int_equal(config_load("/nonexistent/cb.ini", &cfg, err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent/cb.ini: cannot open"));
  assert_true(config_region_valid("ah"));
  assert_false(config_region_valid("bj"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_minimal_defaults, setup, teardown),
    cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_extra_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(test_extra_keys_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
