/* TLS 1.3 sessions over memory BIOs: registry pinning, refusals, operator
 * certificates with roles (node/tls.h). Operator certificates are made by
 * deploy/keys.sh, so the script is tested along the way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_keys.h"
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "registry.h"
#include "sigstmt.h"
#include "tls.h"

#define T_JAN 1767225600000LL /* 2026-01-01 */
#define T_NOW 1790000000000LL

static int64_t fake_now = T_NOW;
static int64_t fake_clock(void *arg) {
  (void)arg;
  return fake_now;
}

typedef struct fx {
  EVP_PKEY *sh, *js, *stranger, *expired;
  registry_t *reg;
  char dir[64]; /* operator material from deploy/keys.sh */
} fx_t;

static const char *source_dir(void) {
  static char buf[1024];
  const char *s = getenv("CB_SOURCE_DIR");
  if (s) return s;
  snprintf(buf, sizeof buf, "%s", __FILE__); /* .../tests/unit/test_tls.c */
  for (int i = 0; i < 3; i++) {
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0;
  }
  return buf;
}

static void sh_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh_run(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  f->sh = test_key_seeded(1);
  f->js = test_key_seeded(2);
  f->stranger = test_key_seeded(3);
  f->expired = test_key_seeded(4);
  char a[65], b[65], c[65], json[2048];
  test_key_hex(f->sh, a);
  test_key_hex(f->js, b);
  test_key_hex(f->expired, c);
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":["
           "{\"node_id\":\"sh\",\"region\":\"sh\",\"endpoint\":\"127.0.0.1:1\",\"keys\":["
           "{\"public_key\":\"%s\",\"not_before\":0}]},"
           "{\"node_id\":\"js\",\"region\":\"js\",\"endpoint\":\"127.0.0.1:2\",\"keys\":["
           "{\"public_key\":\"%s\",\"not_before\":0},"
           "{\"public_key\":\"%s\",\"not_before\":0,\"not_after\":%lld}]}]}",
           0, a, b, c, T_JAN);
  char err[256];
  if (registry_parse(json, strlen(json), &f->reg, err, sizeof err)) fail_msg("%s", err);
  fake_now = T_NOW;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  EVP_PKEY_free(f->sh);
  EVP_PKEY_free(f->js);
  EVP_PKEY_free(f->stranger);
  EVP_PKEY_free(f->expired);
  registry_release(f->reg);
  if (f->dir[0]) sh_run("rm -rf '%s'", f->dir);
  free(f);
  return 0;
}

static tls_ctx_t *peer_ctx(fx_t *f, tls_mode_t mode, EVP_PKEY *key, const char *name) {
  tls_config_t cfg = {.mode = mode, .key = key, .cert_name = name, .registry = f->reg,
                      .clock = fake_clock};
  tls_ctx_t *c = NULL;
  char err[256];
  if (tls_ctx_new(&cfg, &c, err, sizeof err)) fail_msg("tls_ctx_new: %s", err);
  return c;
}

static void move(tls_session_t *from, tls_session_t *to, int *moved) {
  uint8_t buf[16384];
  size_t n;
  while ((n = tls_session_out_take(from, buf, sizeof buf)) > 0) {
    assert_int_equal(tls_session_feed(to, buf, n), 0);
    *moved = 1;
  }
}

/* Runs both handshakes to completion or failure. Returns server's result;
 * *client_rc receives the client's. */
static int handshake(tls_session_t *c, tls_session_t *s, int *client_rc) {
  int rc_c = 0, rc_s = 0;
  for (int i = 0; i < 50; i++) {
    if (rc_c == 0) rc_c = tls_session_handshake(c);
    if (rc_s == 0) rc_s = tls_session_handshake(s);
    int moved = 0;
    move(c, s, &moved);
    move(s, c, &moved);
    if (!moved && rc_c != 0 && rc_s != 0) break;
    if (!moved && (rc_c < 0 || rc_s < 0)) break;
  }
  *client_rc = rc_c;
  return rc_s;
}

static void test_pinned_ok_and_data(void **state) {
  fx_t *f = *state;
  tls_ctx_t *cc = peer_ctx(f, TLS_MODE_PEER_CLIENT, f->js, "js");
  tls_ctx_t *sc = peer_ctx(f, TLS_MODE_PEER_SERVER, f->sh, "sh");
  tls_session_t *c, *s;
  assert_int_equal(tls_session_new(cc, &c), 0);
  assert_int_equal(tls_session_new(sc, &s), 0);
  assert_int_equal(tls_session_expect_peer(c, "sh"), 0);
  assert_int_equal(tls_session_write(c, (const uint8_t *)"x", 1), -TLS_E_NOT_READY);
  int rc_c, rc_s = handshake(c, s, &rc_c);
  assert_int_equal(rc_c, 1);
  assert_int_equal(rc_s, 1);
  assert_string_equal(tls_session_peer_node(c), "sh");
  assert_string_equal(tls_session_peer_node(s), "js");
  uint8_t pub[32];
  sigstmt_key_public(f->js, pub);
  assert_memory_equal(tls_session_peer_key(s), pub, 32);
  assert_null(tls_session_operator(s));
  /* Application data both ways. */
  assert_int_equal(tls_session_write(c, (const uint8_t *)"hello sh", 8), 0);
  int moved = 0;
  move(c, s, &moved);
  uint8_t buf[64];
  size_t got;
  assert_int_equal(tls_session_read(s, buf, sizeof buf, &got), 0);
  assert_int_equal(got, 8);
  assert_memory_equal(buf, "hello sh", 8);
  assert_int_equal(tls_session_read(s, buf, sizeof buf, &got), 0);
  assert_int_equal(got, 0); /* nothing more yet */
  assert_int_equal(tls_session_write(s, (const uint8_t *)"hi js", 5), 0);
  /* A flipped ciphertext byte is detected and kills the session. */
  uint8_t ct[256];
  size_t n = tls_session_out_take(s, ct, sizeof ct);
  assert_true(n > 10);
  ct[n - 3] ^= 0x20;
  assert_int_equal(tls_session_feed(c, ct, n), 0);
  assert_true(tls_session_read(c, buf, sizeof buf, &got) < 0);
  assert_int_equal(got, 0);
  assert_non_null(strstr(tls_session_error(c), "read"));
  tls_session_free(c);
  tls_session_free(s);
  tls_ctx_free(cc);
  tls_ctx_free(sc);
}

/* Client identity `ckey`; expects the server to refuse it with a reason
 * containing `why`. */
static void expect_server_refuses(fx_t *f, EVP_PKEY *ckey, const char *why) {
  tls_ctx_t *cc = peer_ctx(f, TLS_MODE_PEER_CLIENT, ckey, "client");
  tls_ctx_t *sc = peer_ctx(f, TLS_MODE_PEER_SERVER, f->sh, "sh");
  tls_session_t *c, *s;
  assert_int_equal(tls_session_new(cc, &c), 0);
  assert_int_equal(tls_session_new(sc, &s), 0);
  int rc_c, rc_s = handshake(c, s, &rc_c);
  assert_int_equal(rc_s, -TLS_E_PEER_REFUSED);
  if (!strstr(tls_session_error(s), why))
    fail_msg("server error \"%s\" lacks \"%s\"", tls_session_error(s), why);
  assert_null(tls_session_peer_node(s));
  /* The client may have finished its side (TLS 1.3), but its first read
   * sees the server's alert: no session. */
  uint8_t buf[16];
  size_t got;
  if (rc_c == 1) assert_true(tls_session_read(c, buf, sizeof buf, &got) < 0);
  else assert_true(rc_c < 0);
  assert_int_equal(tls_session_write(s, (const uint8_t *)"x", 1), -TLS_E_PEER_REFUSED);
  tls_session_free(c);
  tls_session_free(s);
  tls_ctx_free(cc);
  tls_ctx_free(sc);
}

static void test_unknown_key_refused(void **state) {
  fx_t *f = *state;
  expect_server_refuses(f, f->stranger, "not in the registry");
}

static void test_key_outside_validity_refused(void **state) {
  fx_t *f = *state;
  expect_server_refuses(f, f->expired, "expired");
  /* The same key inside its period is accepted. */
  fake_now = T_JAN - 1;
  tls_ctx_t *cc = peer_ctx(f, TLS_MODE_PEER_CLIENT, f->expired, "js");
  tls_ctx_t *sc = peer_ctx(f, TLS_MODE_PEER_SERVER, f->sh, "sh");
  tls_session_t *c, *s;
  tls_session_new(cc, &c);
  tls_session_new(sc, &s);
  int rc_c, rc_s = handshake(c, s, &rc_c);
  assert_int_equal(rc_s, 1);
  assert_string_equal(tls_session_peer_node(s), "js");
  tls_session_free(c);
  tls_session_free(s);
  tls_ctx_free(cc);
  tls_ctx_free(sc);
}

static void test_client_refuses_wrong_server(void **state) {
  fx_t *f = *state;
  tls_ctx_t *cc = peer_ctx(f, TLS_MODE_PEER_CLIENT, f->js, "js");
  tls_ctx_t *sc = peer_ctx(f, TLS_MODE_PEER_SERVER, f->stranger, "evil");
  tls_session_t *c, *s;
  tls_session_new(cc, &c);
  tls_session_new(sc, &s);
  int rc_c;
  handshake(c, s, &rc_c);
  assert_int_equal(rc_c, -TLS_E_PEER_REFUSED);
  assert_non_null(strstr(tls_session_error(c), "not in the registry"));
  tls_session_free(c);
  tls_session_free(s);
  tls_ctx_free(sc);
  /* A member, but not the one we meant to reach. */
  sc = peer_ctx(f, TLS_MODE_PEER_SERVER, f->sh, "sh");
  tls_session_new(cc, &c);
  tls_session_new(sc, &s);
  tls_session_expect_peer(c, "zj");
  handshake(c, s, &rc_c);
  assert_int_equal(rc_c, -TLS_E_PEER_REFUSED);
  assert_non_null(strstr(tls_session_error(c), "expected zj"));
  tls_session_free(c);
  tls_session_free(s);
  tls_ctx_free(cc);
  tls_ctx_free(sc);
}

/* A plain OpenSSL client over memory BIOs, for what our API cannot make. */
typedef struct raw {
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *in, *out;
} raw_t;

static void raw_init(raw_t *r, int max_version, EVP_PKEY *key) {
  r->ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(r->ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(r->ctx, max_version);
  SSL_CTX_set_verify(r->ctx, SSL_VERIFY_NONE, NULL);
  if (key) {
    X509 *x;
    assert_int_equal(tls_make_self_signed(key, "raw", &x), 0);
    SSL_CTX_use_certificate(r->ctx, x);
    SSL_CTX_use_PrivateKey(r->ctx, key);
    X509_free(x);
  }
  r->ssl = SSL_new(r->ctx);
  r->in = BIO_new(BIO_s_mem());
  r->out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(r->in, -1);
  SSL_set_bio(r->ssl, r->in, r->out);
  SSL_set_connect_state(r->ssl);
}

static void raw_free(raw_t *r) {
  SSL_free(r->ssl);
  SSL_CTX_free(r->ctx);
  ERR_clear_error();
}

static int raw_vs_server(raw_t *r, tls_session_t *s) {
  int rc_s = 0;
  for (int i = 0; i < 50; i++) {
    SSL_do_handshake(r->ssl);
    uint8_t buf[16384];
    int n;
    int moved = 0;
    while ((n = BIO_read(r->out, buf, sizeof buf)) > 0) {
      tls_session_feed(s, buf, (size_t)n);
      moved = 1;
    }
    if (rc_s == 0) rc_s = tls_session_handshake(s);
    size_t m;
    while ((m = tls_session_out_take(s, buf, sizeof buf)) > 0) {
      BIO_write(r->in, buf, (int)m);
      moved = 1;
    }
    if (!moved) break;
  }
  return rc_s;
}

static void test_tls12_refused(void **state) {
  fx_t *f = *state;
  tls_ctx_t *sc = peer_ctx(f, TLS_MODE_PEER_SERVER, f->sh, "sh");
  tls_session_t *s;
  tls_session_new(sc, &s);
  raw_t r;
  raw_init(&r, TLS1_2_VERSION, f->js); /* a registered key, but TLS 1.2 only */
  assert_int_equal(raw_vs_server(&r, s), -TLS_E_HANDSHAKE);
  assert_non_null(strstr(tls_session_error(s), "protocol"));
  assert_null(tls_session_peer_node(s));
  raw_free(&r);
  tls_session_free(s);
  tls_ctx_free(sc);
}

static void test_client_without_certificate_refused(void **state) {
  fx_t *f = *state;
  tls_ctx_t *sc = peer_ctx(f, TLS_MODE_PEER_SERVER, f->sh, "sh");
  tls_session_t *s;
  tls_session_new(sc, &s);
  raw_t r;
  raw_init(&r, TLS1_3_VERSION, NULL);
  int rc = raw_vs_server(&r, s);
  assert_true(rc < 0);
  assert_non_null(strstr(tls_session_error(s), "certificate"));
  assert_null(tls_session_peer_node(s));
  raw_free(&r);
  tls_session_free(s);
  tls_ctx_free(sc);
}

/* --- operators ------------------------------------------------------------ */

static void make_operator_material(fx_t *f) {
  snprintf(f->dir, sizeof f->dir, "/tmp/cb-test-tls-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  const char *src = source_dir();
  sh_run("bash '%s/deploy/keys.sh' operator-ca '%s/ca' sh", src, f->dir);
  sh_run("bash '%s/deploy/keys.sh' operator-ca '%s/ca2' js", src, f->dir);
  sh_run("bash '%s/deploy/keys.sh' operator '%s/ca' '%s/ops' out1 outlet 10247", src, f->dir, f->dir);
  sh_run("bash '%s/deploy/keys.sh' operator '%s/ca' '%s/ops' aud auditor", src, f->dir, f->dir);
  sh_run("bash '%s/deploy/keys.sh' operator '%s/ca2' '%s/ops' foreign admin", src, f->dir, f->dir);
  sh_run("bash '%s/deploy/keys.sh' node '%s/node' sh >/dev/null", src, f->dir);
  /* The script refuses an outlet without institution and unknown roles. */
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "bash '%s/deploy/keys.sh' operator '%s/ca' '%s/ops' x outlet 2>/dev/null",
           src, f->dir, f->dir);
  assert_true(system(cmd) != 0);
  snprintf(cmd, sizeof cmd, "bash '%s/deploy/keys.sh' operator '%s/ca' '%s/ops' y root 2>/dev/null",
           src, f->dir, f->dir);
  assert_true(system(cmd) != 0);
}

/* Connects operator `name` (key+cert under ops/, or node/sh.* if name is
 * "node") to sh's operator port; returns the server's handshake result. */
static int operator_connect(fx_t *f, const char *name, tls_operator_t *op_out, char *why,
                            size_t whylen) {
  char ca[256], key[256], crt[256], err[256];
  snprintf(ca, sizeof ca, "%s/ca/operator-ca.crt", f->dir);
  if (strcmp(name, "node") == 0) {
    snprintf(key, sizeof key, "%s/node/sh.key", f->dir);
    snprintf(crt, sizeof crt, "%s/node/sh.crt", f->dir);
  } else {
    snprintf(key, sizeof key, "%s/ops/%s.key", f->dir, name);
    snprintf(crt, sizeof crt, "%s/ops/%s.crt", f->dir, name);
  }
  EVP_PKEY *okey;
  X509 *ocert;
  assert_int_equal(sigstmt_key_load(key, &okey, err, sizeof err), 0);
  assert_int_equal(tls_load_cert(crt, &ocert, err, sizeof err), 0);
  uint8_t pin[32];
  sigstmt_key_public(f->sh, pin);
  tls_config_t scfg = {.mode = TLS_MODE_OPERATOR_SERVER, .key = f->sh, .cert_name = "sh",
                       .operator_ca_path = ca};
  tls_config_t ccfg = {.mode = TLS_MODE_OPERATOR_CLIENT, .key = okey, .cert = ocert,
                       .server_pin = pin};
  tls_ctx_t *sc, *cc;
  if (tls_ctx_new(&scfg, &sc, err, sizeof err)) fail_msg("%s", err);
  if (tls_ctx_new(&ccfg, &cc, err, sizeof err)) fail_msg("%s", err);
  tls_session_t *c, *s;
  tls_session_new(cc, &c);
  tls_session_new(sc, &s);
  int rc_c, rc_s = handshake(c, s, &rc_c);
  if (rc_s == 1) {
    assert_int_equal(rc_c, 1);
    *op_out = *tls_session_operator(s);
  } else {
    assert_null(tls_session_operator(s));
  }
  snprintf(why, whylen, "%s", tls_session_error(s));
  tls_session_free(c);
  tls_session_free(s);
  tls_ctx_free(cc);
  tls_ctx_free(sc);
  EVP_PKEY_free(okey);
  X509_free(ocert);
  return rc_s;
}

static void test_operator_certificates(void **state) {
  fx_t *f = *state;
  make_operator_material(f);
  tls_operator_t op;
  char why[320];
  assert_int_equal(operator_connect(f, "out1", &op, why, sizeof why), 1);
  assert_int_equal(op.role, TLS_ROLE_OUTLET);
  assert_string_equal(op.institution, "10247");
  assert_string_equal(op.name, "out1");
  assert_int_equal(operator_connect(f, "aud", &op, why, sizeof why), 1);
  assert_int_equal(op.role, TLS_ROLE_AUDITOR);
  /* Issued by another province's CA. */
  assert_int_equal(operator_connect(f, "foreign", &op, why, sizeof why), -TLS_E_PEER_REFUSED);
  assert_non_null(strstr(why, "operator certificate"));
  /* A node's self-signed certificate is no operator certificate. */
  assert_int_equal(operator_connect(f, "node", &op, why, sizeof why), -TLS_E_PEER_REFUSED);
}

static void test_roles(void **state) {
  (void)state;
  assert_int_equal(tls_role_parse("appraisal-centre"), TLS_ROLE_APPRAISAL_CENTRE);
  assert_int_equal(tls_role_parse("root"), TLS_ROLE_NONE);
  assert_string_equal(tls_role_name(TLS_ROLE_BRANCH), "branch");
}

static void test_config_refusals(void **state) {
  fx_t *f = *state;
  tls_ctx_t *c;
  char err[256];
  tls_config_t cfg = {.mode = TLS_MODE_PEER_SERVER, .key = f->sh};
  assert_int_equal(tls_ctx_new(&cfg, &c, err, sizeof err), -TLS_E_ARG);
  assert_non_null(strstr(err, "registry"));
  cfg.mode = TLS_MODE_OPERATOR_SERVER;
  cfg.operator_ca_path = "/nonexistent/ca.crt";
  assert_int_equal(tls_ctx_new(&cfg, &c, err, sizeof err), -TLS_E_CONFIG);
  assert_non_null(strstr(err, "/nonexistent/ca.crt"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pinned_ok_and_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_key_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_outside_validity_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_refuses_wrong_server, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls12_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_without_certificate_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_operator_certificates, setup, teardown),
      cmocka_unit_test(test_roles),
      cmocka_unit_test_setup_teardown(test_config_refusals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
