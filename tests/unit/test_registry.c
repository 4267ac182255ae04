/* Federation registry: loading, validation with named errors, key validity
 * periods (node/registry.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry.h"

#define FK "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K1 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define K2 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
#define K3 "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025"
/* K3 in base64 */
#define K3B64 "/FHNjmIYoaONpH7QAjDwWAgW7RO6MwOsXeuRFUiQgCU="

static const char *good =
    "{\"version\":1,\"federation_key\":\"" FK "\",\"members\":["
    "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:7401\",\"keys\":["
    "{\"public_key\":\"" K1 "\",\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2026-07-01T00:00:00Z\"},"
    "{\"public_key\":\"" K2 "\",\"not_before\":\"2026-06-01T00:00:00Z\"}]},"
    "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"localhost:7402\",\"keys\":["
    "{\"public_key\":\"" K3B64 "\",\"not_before\":0,\"not_after\":4102444800000}]}]}";

static registry_t *parse_ok(const char *json) {
  registry_t *r = NULL;
  char err[256] = "";
  int rc = registry_parse(json, strlen(json), &r, err, sizeof err);
  if (rc) fail_msg("unexpected refusal: %s", err);
  return r;
}

/* Parses json expecting a refusal whose message contains each needle. */
static void refused(const char *json, const char *needle1, const char *needle2) {
  registry_t *r = NULL;
  char err[256] = "";
  int rc = registry_parse(json, strlen(json), &r, err, sizeof err);
  if (rc == 0) fail_msg("accepted, expected refusal mentioning %s", needle1);
  assert_null(r);
  if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
    fail_msg("error \"%s\" does not mention \"%s\"/\"%s\"", err, needle1, needle2 ? needle2 : "");
}

static char *edit(const char *from, const char *to) {
  const char *p = strstr(good, from);
  assert_non_null(p);
  size_t n = strlen(good) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  snprintf(out, n, "%.*s%s%s", (int)(p - good), good, to, p + strlen(from));
  return out;
}

static void refused_edit(const char *from, const char *to, const char *n1, const char *n2) {
  char *j = edit(from, to);
  refused(j, n1, n2);
  free(j);
}

static void hex32(const char *h, uint8_t out[32]) {
  for (int i = 0; i < 32; i++) sscanf(h + 2 * i, "%2hhx", &out[i]);
}

static void test_good_registry(void **state) {
  (void)state;
  registry_t *r = parse_ok(good);
  assert_int_equal(registry_member_count(r), 2);
  const registry_member_t *sh = registry_find_member(r, "sh");
  assert_non_null(sh);
  assert_string_equal(sh->host, "127.0.0.1");
  assert_int_equal(sh->port, 7401);
  assert_int_equal(sh->nkeys, 2);
  assert_int_equal(sh->keys[1].not_after_ms, REGISTRY_TIME_OPEN);
  assert_int_equal(sh->keys[0].not_before_ms, 1767225600000LL);
  const registry_member_t *js = registry_member_at(r, 1);
  assert_string_equal(js->node_id, "js");
  assert_null(registry_member_at(r, 2));
  assert_null(registry_find_member(r, "zj"));
  assert_int_equal(registry_federation_key(r)[31], 0x1f);
  uint8_t k3[32];
  hex32(K3, k3);
  assert_memory_equal(js->keys[0].public_key, k3, 32); /* base64 decoded */
  assert_ptr_equal(registry_find_key_owner(r, k3), js);
  registry_release(r);
}

static void test_key_validity(void **state) {
  (void)state;
  registry_t *r = parse_ok(good);
  const registry_member_t *sh = registry_find_member(r, "sh");
  const registry_member_t *js = registry_find_member(r, "js");
  uint8_t k1[32], k2[32], k3[32];
  hex32(K1, k1);
  hex32(K2, k2);
  hex32(K3, k3);
  int64_t jan = 1767225600000LL, jun = 1780272000000LL, jul = 1782864000000LL;
  assert_int_equal(registry_key_valid_at(sh, k1, jan - 1), -REGISTRY_E_KEY_NOT_YET_VALID);
  assert_int_equal(registry_key_valid_at(sh, k1, jan), 0);
  assert_int_equal(registry_key_valid_at(sh, k1, jul - 1), 0);
  assert_int_equal(registry_key_valid_at(sh, k1, jul), -REGISTRY_E_KEY_EXPIRED);
  /* overlap during rotation: both keys valid in June */
  assert_int_equal(registry_key_valid_at(sh, k2, jun), 0);
  assert_int_equal(registry_key_valid_at(sh, k1, jun), 0);
  assert_int_equal(registry_key_valid_at(sh, k2, jun - 1), -REGISTRY_E_KEY_NOT_YET_VALID);
  /* a key of another member is not valid for this one */
  assert_int_equal(registry_key_valid_at(sh, k3, jun), -REGISTRY_E_KEY_UNKNOWN);
  assert_int_equal(registry_key_valid_at(js, k1, jun), -REGISTRY_E_KEY_UNKNOWN);
  registry_release(r);
}

static void test_refusals(void **state) {
  (void)state;
  refused("{", "line", NULL);
  refused("[]", "top level", NULL);
  refused_edit("\"version\":1", "\"version\":2", "version", NULL);
  refused_edit("\"version\":1,", "\"version\":1,\"extra\":true,", "unknown field \"extra\"", NULL);
  refused_edit("\"federation_key\":\"" FK, "\"federation_key\":\"0011", "federation_key", NULL);
  refused_edit("\"region\":\"js\"", "\"region\":\"gd\"", "members[1] (js)", "unknown region");
  refused_edit("\"node_id\":\"js\"", "\"node_id\":\"sh\"", "members[1] (sh)", "duplicate node_id");
  refused_edit("\"node_id\":\"js\"", "\"node_id\":\"JS!\"", "members[1]", "node_id");
  refused_edit("localhost:7402", "localhost:0", "members[1] (js)", "endpoint");
  refused_edit("localhost:7402", "localhost", "members[1] (js)", "endpoint");
  refused_edit("localhost:7402", "127.0.0.1:7401", "members[1] (js)", "endpoint already used by sh");
  refused_edit("\"public_key\":\"" K1 "\"", "\"public_key\":\"" K1 "00\"", "members[0] (sh) keys[0]",
               "public_key");
  refused_edit(K3B64, "AAAA", "members[1] (js) keys[0]", "public_key");
  refused_edit("\"public_key\":\"" K3B64 "\"", "\"public_key\":\"" K1 "\"", "members[1] (js)",
               "already a key of sh");
  refused_edit("\"public_key\":\"" K2 "\"", "\"public_key\":\"" K1 "\"", "members[0] (sh)",
               "keys[1] repeats keys[0]");
  refused_edit("\"not_after\":\"2026-07-01T00:00:00Z\"", "\"not_after\":\"2025-07-01T00:00:00Z\"",
               "members[0] (sh) keys[0]", "not_after is not after");
  refused_edit("\"not_before\":\"2026-01-01T00:00:00Z\"", "\"not_before\":\"2026-02-30T00:00:00Z\"",
               "keys[0]", "not_before");
  refused_edit("\"not_before\":0", "\"not_before\":-5", "members[1] (js) keys[0]", "negative");
  refused_edit(",\"not_before\":0", "", "members[1] (js) keys[0]", "not_before missing");
  refused_edit("\"endpoint\":\"localhost:7402\",", "\"endpoint\":\"localhost:7402\",\"colour\":1,",
               "members[1] (js)", "unknown field \"colour\"");
  refused_edit("{\"public_key\":\"" K3B64, "{\"weight\":3,\"public_key\":\"" K3B64,
               "members[1] (js) keys[0]", "unknown field \"weight\"");
  refused_edit("\"keys\":[{\"public_key\":\"" K3B64 "\",\"not_before\":0,\"not_after\":4102444800000}]",
               "\"keys\":[]", "members[1] (js)", "keys missing or empty");
  /* JSON duplicate keys are refused by the parser itself. */
  refused_edit("\"version\":1", "\"version\":1,\"version\":1", "duplicate", NULL);
}

static void test_time_text(void **state) {
  (void)state;
  int64_t ms;
  assert_int_equal(registry_parse_time_text("1970-01-01T00:00:00Z", &ms), 0);
  assert_int_equal(ms, 0);
  assert_int_equal(registry_parse_time_text("2026-11-29T15:04:05.123Z", &ms), 0);
  assert_int_equal(ms, 1795964645123LL);
  assert_int_equal(registry_parse_time_text("2026-11-29T23:04:05.123+08:00", &ms), 0);
  assert_int_equal(ms, 1795964645123LL);
  assert_int_equal(registry_parse_time_text("2024-02-29T00:00:00Z", &ms), 0);
  assert_int_equal(registry_parse_time_text("2025-02-29T00:00:00Z", &ms), -REGISTRY_E_INVALID);
  assert_int_equal(registry_parse_time_text("2026-11-29 15:04:05Z", &ms), -REGISTRY_E_INVALID);
  assert_int_equal(registry_parse_time_text("2026-11-29T15:04:05", &ms), -REGISTRY_E_INVALID);
  assert_int_equal(registry_parse_time_text("2026-11-29T15:04:05Zjunk", &ms), -REGISTRY_E_INVALID);
}

static void test_load_file_and_swap(void **state) {
  (void)state;
  char path[] = "/tmp/cb-registry-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
  close(fd);
  registry_t *cur = NULL;
  char err[256];
  assert_int_equal(registry_load(path, &cur, err, sizeof err), 0);
  /* A session holds the snapshot while the node reloads. */
  registry_t *held = registry_retain(cur);
  /* A bad new file leaves the current snapshot in place. */
  FILE *f = fopen(path, "w");
  fputs("{\"version\":1}", f);
  fclose(f);
  registry_t *next = NULL;
  assert_int_equal(registry_load(path, &next, err, sizeof err), -REGISTRY_E_INVALID);
  assert_non_null(strstr(err, path));
  assert_null(next);
  registry_release(cur);
  assert_non_null(registry_find_member(held, "sh")); /* still valid for its holder */
  registry_release(held);
  unlink(path);
  assert_int_equal(registry_load("/nonexistent/registry.json", &next, err, sizeof err),
                   -REGISTRY_E_IO);
  assert_non_null(strstr(err, "/nonexistent/registry.json"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_registry),      cmocka_unit_test(test_key_validity),
      cmocka_unit_test(test_refusals),           cmocka_unit_test(test_time_text),
      cmocka_unit_test(test_load_file_and_swap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
