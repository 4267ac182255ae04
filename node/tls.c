/* TLS 1.3 over memory BIOs with registry pinning (spec/protocol.md
 * "Transport", "Operators"). */
#include "tls.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_STR_(name, str) str,
static const char *const tls_errstr[] = {TLS_ERRORS(TLS_STR_)};
#undef TLS_STR_

const char *tls_strerror(int err) {
  if (err < 0) err = -err;
  if (err >= TLS_ERR_COUNT_) return "unknown tls error";
  return tls_errstr[err];
}

struct tls_ctx {
  tls_mode_t mode;
  SSL_CTX *ssl;
  registry_t *registry;
  uint8_t server_pin[REGISTRY_KEY_BYTES];
  tls_clock_fn clock;
  void *clock_arg;
};

struct tls_session {
  tls_ctx_t *ctx;
  SSL *ssl;
  BIO *in, *out; /* network side: in = received ciphertext, out = to send */
  int established;
  int failed;
  char expect[REGISTRY_NODE_ID_MAX + 1];
  char peer_node[REGISTRY_NODE_ID_MAX + 1];
  uint8_t peer_key[REGISTRY_KEY_BYTES];
  tls_operator_t op;
  char verify_err[200]; /* set by our verify callbacks */
  char err[320];
};

static int session_idx = -1;

static int64_t system_clock_ms(void *arg) {
  (void)arg;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *const role_names[] = {"none", "admin", "outlet", "branch", "appraisal-centre",
                                          "auditor"};

const char *tls_role_name(tls_role_t role) {
  return (unsigned)role < sizeof role_names / sizeof *role_names ? role_names[role] : "none";
}

tls_role_t tls_role_parse(const char *s) {
  for (unsigned i = 1; s && i < sizeof role_names / sizeof *role_names; i++)
    if (strcmp(s, role_names[i]) == 0) return (tls_role_t)i;
  return TLS_ROLE_NONE;
}

static void seterr(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

static tls_session_t *session_of_store(X509_STORE_CTX *x) {
  SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
  return ssl ? SSL_get_ex_data(ssl, session_idx) : NULL;
}

/* Peer modes: replaces chain verification. The certificate is only a
 * carrier for the key: TLS's CertificateVerify proves the peer holds the
 * private half, and the registry says whose key it is and when. */
static int pin_verify_cb(X509_STORE_CTX *x, void *arg) {
  (void)arg;
  tls_session_t *s = session_of_store(x);
  X509 *leaf = X509_STORE_CTX_get0_cert(x);
  if (!s) return 0;
  EVP_PKEY *pk = leaf ? X509_get0_pubkey(leaf) : NULL;
  uint8_t raw[REGISTRY_KEY_BYTES];
  size_t rawlen = sizeof raw;
  if (!pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 || rawlen != sizeof raw) {
    seterr(s->verify_err, sizeof s->verify_err, "peer certificate key is not Ed25519");
    goto refuse;
  }
  const registry_member_t *m = registry_find_key_owner(s->ctx->registry, raw);
  if (!m) {
    seterr(s->verify_err, sizeof s->verify_err,
           "peer key %02x%02x%02x%02x... is not in the registry", raw[0], raw[1], raw[2], raw[3]);
    goto refuse;
  }
  int64_t now = s->ctx->clock(s->ctx->clock_arg);
  int rc = registry_key_valid_at(m, raw, now);
  if (rc) {
    seterr(s->verify_err, sizeof s->verify_err, "peer key of %s: %s", m->node_id,
           registry_strerror(rc));
    goto refuse;
  }
  if (s->expect[0] && strcmp(s->expect, m->node_id) != 0) {
    seterr(s->verify_err, sizeof s->verify_err, "expected %s but the peer's key is %s's",
           s->expect, m->node_id);
    goto refuse;
  }
  snprintf(s->peer_node, sizeof s->peer_node, "%s", m->node_id);
  memcpy(s->peer_key, raw, sizeof raw);
  return 1;
refuse:
  X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

/* OPERATOR_CLIENT: the node's certificate must carry the pinned key. */
static int server_pin_verify_cb(X509_STORE_CTX *x, void *arg) {
  (void)arg;
  tls_session_t *s = session_of_store(x);
  X509 *leaf = X509_STORE_CTX_get0_cert(x);
  if (!s) return 0;
  EVP_PKEY *pk = leaf ? X509_get0_pubkey(leaf) : NULL;
  uint8_t raw[REGISTRY_KEY_BYTES];
  size_t rawlen = sizeof raw;
  if (!pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 || rawlen != sizeof raw ||
      memcmp(raw, s->ctx->server_pin, sizeof raw) != 0) {
    seterr(s->verify_err, sizeof s->verify_err, "node key does not match the pinned key");
    X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  memcpy(s->peer_key, raw, sizeof raw);
  return 1;
}

/* Reads a UTF8String extension by OID into buf; 1 found, 0 absent, -1 bad. */
static int utf8_extension(X509 *cert, const char *oid, char *buf, size_t cap) {
  ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
  if (!obj) return -1;
  int idx = X509_get_ext_by_OBJ(cert, obj, -1);
  int rc = 0;
  if (idx >= 0) {
    if (X509_get_ext_by_OBJ(cert, obj, idx) >= 0) {
      rc = -1; /* repeated: ambiguous */
      goto done;
    }
    ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
    const unsigned char *p = ASN1_STRING_get0_data(data);
    ASN1_UTF8STRING *u = d2i_ASN1_UTF8STRING(NULL, &p, ASN1_STRING_length(data));
    rc = -1;
    if (u && p == ASN1_STRING_get0_data(data) + ASN1_STRING_length(data) &&
        (size_t)ASN1_STRING_length(u) < cap &&
        memchr(ASN1_STRING_get0_data(u), 0, (size_t)ASN1_STRING_length(u)) == NULL) {
      memcpy(buf, ASN1_STRING_get0_data(u), (size_t)ASN1_STRING_length(u));
      buf[ASN1_STRING_length(u)] = 0;
      rc = 1;
    }
    ASN1_UTF8STRING_free(u);
  }
done:
  ASN1_OBJECT_free(obj);
  return rc;
}

static int valid_institution(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          *s == '-' || *s == '_' || *s == '.'))
      return 0;
  return 1;
}

/* OPERATOR_SERVER: ordinary chain verification to the operator CA, then
 * the role extensions of the leaf. */
static int operator_verify_cb(int preverify_ok, X509_STORE_CTX *x) {
  tls_session_t *s = session_of_store(x);
  if (!s) return 0;
  if (!preverify_ok) {
    int e = X509_STORE_CTX_get_error(x);
    seterr(s->verify_err, sizeof s->verify_err, "operator certificate: %s",
           X509_verify_cert_error_string(e));
    return 0;
  }
  if (X509_STORE_CTX_get_error_depth(x) != 0) return 1;
  X509 *leaf = X509_STORE_CTX_get_current_cert(x);
  char role[32] = "", inst[TLS_INSTITUTION_MAX + 1] = "";
  int r = utf8_extension(leaf, TLS_OID_OPERATOR_ROLE, role, sizeof role);
  int i = utf8_extension(leaf, TLS_OID_OPERATOR_INSTITUTION, inst, sizeof inst);
  tls_role_t parsed = r == 1 ? tls_role_parse(role) : TLS_ROLE_NONE;
  if (parsed == TLS_ROLE_NONE) {
    seterr(s->verify_err, sizeof s->verify_err, "operator certificate: %s role",
           r == 1 ? "unknown" : "missing or malformed");
    goto refuse;
  }
  if (i < 0 || (i == 1 && !valid_institution(inst))) {
    seterr(s->verify_err, sizeof s->verify_err, "operator certificate: malformed institution");
    goto refuse;
  }
  if (parsed == TLS_ROLE_OUTLET && i != 1) {
    seterr(s->verify_err, sizeof s->verify_err,
           "operator certificate: outlet without institution code");
    goto refuse;
  }
  s->op.role = parsed;
  snprintf(s->op.institution, sizeof s->op.institution, "%s", inst);
  X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, s->op.name,
                            sizeof s->op.name);
  return 1;
refuse:
  X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

int tls_make_self_signed(EVP_PKEY *key, const char *name, X509 **out) {
  if (!key || !name || !out) return -TLS_E_ARG;
  X509 *x = X509_new();
  if (!x) return -TLS_E_NOMEM;
  uint8_t serial[16];
  BIGNUM *bn = NULL;
  int ok = RAND_bytes(serial, sizeof serial) == 1 && (serial[0] &= 0x7f, 1) &&
           (bn = BN_bin2bn(serial, sizeof serial, NULL)) != NULL &&
           BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
           X509_set_version(x, 2) == 1 && X509_gmtime_adj(X509_getm_notBefore(x), -86400) &&
           X509_gmtime_adj(X509_getm_notAfter(x), 100L * 365 * 86400) &&
           X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                      (const unsigned char *)name, -1, -1, 0) == 1 &&
           X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
           X509_set_pubkey(x, key) == 1 && X509_sign(x, key, NULL) > 0;
  BN_free(bn);
  if (!ok) {
    X509_free(x);
    ERR_clear_error();
    return -TLS_E_CONFIG;
  }
  *out = x;
  return 0;
}

int tls_load_cert(const char *path, X509 **out, char *err, size_t errlen) {
  FILE *f = path ? fopen(path, "r") : NULL;
  if (!f) {
    seterr(err, errlen, "%s: cannot open", path ? path : "(null)");
    return -TLS_E_CONFIG;
  }
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  ERR_clear_error();
  if (!x) {
    seterr(err, errlen, "%s: not a PEM certificate", path);
    return -TLS_E_CONFIG;
  }
  *out = x;
  return 0;
}

static int ctx_fail(tls_ctx_t *c, char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_get_error();
  char buf[160] = "";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  seterr(err, errlen, "tls: %s%s%s", what, e ? ": " : "", buf);
  tls_ctx_free(c);
  return -TLS_E_CONFIG;
}

int tls_ctx_new(const tls_config_t *cfg, tls_ctx_t **out, char *err, size_t errlen) {
  if (!cfg || !out || !cfg->key) {
    seterr(err, errlen, "tls: no key given");
    return -TLS_E_ARG;
  }
  int peer = cfg->mode == TLS_MODE_PEER_SERVER || cfg->mode == TLS_MODE_PEER_CLIENT;
  int server = cfg->mode == TLS_MODE_PEER_SERVER || cfg->mode == TLS_MODE_OPERATOR_SERVER;
  if (peer && !cfg->registry) {
    seterr(err, errlen, "tls: peer mode needs the registry");
    return -TLS_E_ARG;
  }
  if (cfg->mode == TLS_MODE_OPERATOR_SERVER && !cfg->operator_ca_path) {
    seterr(err, errlen, "tls: operator port needs the operator CA");
    return -TLS_E_ARG;
  }
  if (cfg->mode == TLS_MODE_OPERATOR_CLIENT && (!cfg->server_pin || !cfg->cert)) {
    seterr(err, errlen, "tls: operator client needs its certificate and the node's key");
    return -TLS_E_ARG;
  }
  if (session_idx < 0) session_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
  tls_ctx_t *c = calloc(1, sizeof *c);
  if (!c) return -TLS_E_NOMEM;
  c->mode = cfg->mode;
  c->clock = cfg->clock ? cfg->clock : system_clock_ms;
  c->clock_arg = cfg->clock_arg;
  if (cfg->registry) c->registry = registry_retain(cfg->registry);
  if (cfg->server_pin) memcpy(c->server_pin, cfg->server_pin, sizeof c->server_pin);
  c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!c->ssl) return ctx_fail(c, err, errlen, "SSL_CTX_new");
  /* TLS 1.3 only; no resumption (tickets or cache), which would let a
   * later session skip the pin check. */
  if (SSL_CTX_set_min_proto_version(c->ssl, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c->ssl, TLS1_3_VERSION) != 1)
    return ctx_fail(c, err, errlen, "cannot restrict to TLS 1.3");
  SSL_CTX_set_options(c->ssl, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c->ssl, 0);
  SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);

  if (peer && EVP_PKEY_get_id(cfg->key) != EVP_PKEY_ED25519) {
    seterr(err, errlen, "tls: the node identity key must be Ed25519");
    tls_ctx_free(c);
    return -TLS_E_CONFIG;
  }
  X509 *cert = cfg->cert;
  X509 *made = NULL;
  if (!cert) {
    if (tls_make_self_signed(cfg->key, cfg->cert_name ? cfg->cert_name : "cbnode", &made))
      return ctx_fail(c, err, errlen, "cannot make the self-signed certificate");
    cert = made;
  }
  int ok = SSL_CTX_use_certificate(c->ssl, cert) == 1 &&
           SSL_CTX_use_PrivateKey(c->ssl, cfg->key) == 1 && SSL_CTX_check_private_key(c->ssl) == 1;
  X509_free(made);
  if (!ok) return ctx_fail(c, err, errlen, "certificate does not match the key");

  switch (cfg->mode) {
  case TLS_MODE_PEER_SERVER:
  case TLS_MODE_PEER_CLIENT:
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(c->ssl, pin_verify_cb, NULL);
    break;
  case TLS_MODE_OPERATOR_SERVER:
    if (SSL_CTX_load_verify_locations(c->ssl, cfg->operator_ca_path, NULL) != 1) {
      char what[300];
      snprintf(what, sizeof what, "cannot load operator CA %s", cfg->operator_ca_path);
      return ctx_fail(c, err, errlen, what);
    }
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       operator_verify_cb);
    SSL_CTX_set_verify_depth(c->ssl, 2);
    break;
  case TLS_MODE_OPERATOR_CLIENT:
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(c->ssl, server_pin_verify_cb, NULL);
    break;
  }
  *out = c;
  return 0;
}

void tls_ctx_free(tls_ctx_t *c) {
  if (!c) return;
  SSL_CTX_free(c->ssl);
  registry_release(c->registry);
  free(c);
}

void tls_ctx_set_registry(tls_ctx_t *c, registry_t *reg) {
  assert(c && reg);
  registry_t *old = c->registry;
  c->registry = registry_retain(reg);
  registry_release(old);
}

int tls_session_new(tls_ctx_t *ctx, tls_session_t **out) {
  if (!ctx || !out) return -TLS_E_ARG;
  tls_session_t *s = calloc(1, sizeof *s);
  if (!s) return -TLS_E_NOMEM;
  s->ctx = ctx;
  s->ssl = SSL_new(ctx->ssl);
  s->in = BIO_new(BIO_s_mem());
  s->out = BIO_new(BIO_s_mem());
  if (!s->ssl || !s->in || !s->out) {
    BIO_free(s->in);
    BIO_free(s->out);
    SSL_free(s->ssl);
    free(s);
    ERR_clear_error();
    return -TLS_E_NOMEM;
  }
  /* An empty memory BIO means "retry later", not EOF. */
  BIO_set_mem_eof_return(s->in, -1);
  SSL_set_bio(s->ssl, s->in, s->out); /* the SSL owns both now */
  SSL_set_ex_data(s->ssl, session_idx, s);
  if (ctx->mode == TLS_MODE_PEER_CLIENT || ctx->mode == TLS_MODE_OPERATOR_CLIENT)
    SSL_set_connect_state(s->ssl);
  else
    SSL_set_accept_state(s->ssl);
  *out = s;
  return 0;
}

void tls_session_free(tls_session_t *s) {
  if (!s) return;
  SSL_free(s->ssl);
  free(s);
}

int tls_session_expect_peer(tls_session_t *s, const char *node_id) {
  if (!s || !node_id || strlen(node_id) > REGISTRY_NODE_ID_MAX) return -TLS_E_ARG;
  snprintf(s->expect, sizeof s->expect, "%s", node_id);
  return 0;
}

int tls_session_feed(tls_session_t *s, const uint8_t *data, size_t len) {
  if (!s || (!data && len)) return -TLS_E_ARG;
  while (len) {
    int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
    int n = BIO_write(s->in, data, chunk);
    if (n <= 0) return -TLS_E_NOMEM;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Records why the session failed: our verify reason first, else OpenSSL's. */
static int session_fail(tls_session_t *s, int code, const char *stage) {
  unsigned long e = ERR_peek_error();
  char buf[160] = "";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  if (s->verify_err[0])
    seterr(s->err, sizeof s->err, "%s: %s", stage, s->verify_err);
  else
    seterr(s->err, sizeof s->err, "%s: %s", stage, e ? buf : tls_strerror(code));
  s->failed = code;
  return -code;
}

int tls_session_handshake(tls_session_t *s) {
  if (!s) return -TLS_E_ARG;
  if (s->failed) return -s->failed;
  if (s->established) return 1;
  ERR_clear_error();
  int r = SSL_do_handshake(s->ssl);
  if (r == 1) {
    s->established = 1;
    return 1;
  }
  int e = SSL_get_error(s->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  return session_fail(s, s->verify_err[0] ? TLS_E_PEER_REFUSED : TLS_E_HANDSHAKE, "handshake");
}

int tls_session_established(const tls_session_t *s) { return s && s->established && !s->failed; }

int tls_session_read(tls_session_t *s, uint8_t *buf, size_t cap, size_t *got) {
  if (!s || !buf || !got) return -TLS_E_ARG;
  *got = 0;
  if (s->failed) return -s->failed;
  if (!s->established) return -TLS_E_NOT_READY;
  ERR_clear_error();
  size_t n = 0;
  int r = SSL_read_ex(s->ssl, buf, cap, &n);
  if (r == 1) {
    *got = n;
    return 0;
  }
  int e = SSL_get_error(s->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) {
    seterr(s->err, sizeof s->err, "peer closed the session");
    s->failed = TLS_E_CLOSED;
    return -TLS_E_CLOSED;
  }
  /* A server that refused our certificate after we finished shows up here
   * as an alert. */
  return session_fail(s, TLS_E_PROTOCOL, "read");
}

int tls_session_write(tls_session_t *s, const uint8_t *data, size_t len) {
  if (!s || (!data && len)) return -TLS_E_ARG;
  if (s->failed) return -s->failed;
  if (!s->established) return -TLS_E_NOT_READY;
  ERR_clear_error();
  while (len) {
    size_t n = 0;
    if (SSL_write_ex(s->ssl, data, len, &n) != 1) return session_fail(s, TLS_E_PROTOCOL, "write");
    data += n;
    len -= n;
  }
  return 0;
}

void tls_session_close(tls_session_t *s) {
  if (s && s->established && !s->failed) {
    SSL_shutdown(s->ssl);
    ERR_clear_error();
  }
}

size_t tls_session_out_pending(const tls_session_t *s) {
  return s ? BIO_ctrl_pending(s->out) : 0;
}

size_t tls_session_out_take(tls_session_t *s, uint8_t *buf, size_t cap) {
  if (!s || !buf || !cap) return 0;
  int chunk = cap > (1u << 30) ? (1 << 30) : (int)cap;
  int n = BIO_read(s->out, buf, chunk);
  return n > 0 ? (size_t)n : 0;
}

const char *tls_session_peer_node(const tls_session_t *s) {
  return s && s->established && s->peer_node[0] ? s->peer_node : NULL;
}

const uint8_t *tls_session_peer_key(const tls_session_t *s) {
  return s && s->established && (s->peer_node[0] || s->ctx->mode == TLS_MODE_OPERATOR_CLIENT)
             ? s->peer_key
             : NULL;
}

const tls_operator_t *tls_session_operator(const tls_session_t *s) {
  return s && s->established && s->op.role != TLS_ROLE_NONE ? &s->op : NULL;
}

const char *tls_session_error(const tls_session_t *s) { return s && s->err[0] ? s->err : ""; }
