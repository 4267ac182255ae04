/* Node context, loop and lifecycle: see node.h. */
#include "node.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "admin.h"
#include "idcard.h"
#include "node_peer.h"

int64_t node_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int32_t node_today(void)
{
  return idcard_yyyymmdd_from_unix(node_now_ms() / 1000);
}

static void store_options_for(const config_t *cfg, store_options *o, int create)
{
  memset(o, 0, sizeof *o);
  o->node_id = cfg->id;
  o->region = cfg->region;
  o->map_size_bytes = (size_t)cfg->map_size_mb * 1024u * 1024u;
  o->create = create != 0;
}

int node_init_dirs(const config_t *cfg, char *err, size_t errlen)
{
  if (identity_file_exists(cfg->identity_key_file)) {
    snprintf(err, errlen, "%s: identity key already exists; this node is initialised "
             "(refusing to overwrite it)", cfg->identity_key_file);
    return -1;
  }
  if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "%s: cannot create data directory: %s", cfg->data_dir, strerror(errno));
    return -1;
  }
  struct stat st;
  if (stat(cfg->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s: not a directory", cfg->data_dir);
    return -1;
  }
  if (!identity_file_exists(cfg->federation_key_file)) {
    if (identity_fedkey_create(cfg->federation_key_file, err, errlen) != 0) return -1;
    log_pack(LOG_INFO, "federation_key_created", "{s:s}", "path", cfg->federation_key_file);
  } else {
    uint8_t k[IDENTITY_FEDKEY_BYTES];
    int rc = identity_fedkey_load(cfg->federation_key_file, k, err, errlen);
    OPENSSL_cleanse(k, sizeof k);
    if (rc != 0) return -1;
  }
  store_options o;
  store_options_for(cfg, &o, 1);
  store *s = NULL;
  int rc = store_open(&s, cfg->data_dir, &o, err, errlen);
  if (rc != 0) return -1;
  store_close(s);
  if (identity_create(cfg->identity_key_file, err, errlen) != 0) return -1;
  EVP_PKEY *k = NULL;
  if (identity_load(cfg->identity_key_file, &k, err, errlen) != 0) return -1;
  uint8_t pub[IDENTITY_PUBKEY_BYTES];
  char hex[2 * IDENTITY_PUBKEY_BYTES + 1];
  identity_public_raw(k, pub);
  EVP_PKEY_free(k);
  for (size_t i = 0; i < sizeof pub; i++) snprintf(hex + 2 * i, 3, "%02x", pub[i]);
  log_pack(LOG_INFO, "initialised", "{s:s, s:s, s:s, s:s}", "node", cfg->id, "region", cfg->region,
           "data_dir", cfg->data_dir, "identity_public_key", hex);
  return 0;
}

static void signal_cb(uv_signal_t *h, int signum)
{
  node_t *n = h->data;
  if (n->stopping) {
    /* Every acknowledged write is already committed durably, so leaving
     * now loses nothing that was promised. */
    log_pack(LOG_ERROR, "forced_exit", "{s:s}", "signal", strsignal(signum));
    _exit(2);
  }
  log_pack(LOG_INFO, "shutdown", "{s:s}", "signal", strsignal(signum));
  node_stop(n, 0, "signal");
}

int node_open(node_t *n, const config_t *cfg, char *err, size_t errlen)
{
  memset(n, 0, sizeof *n);
  n->cfg = *cfg;
  log_ratelimit_init(&n->bad_input_rl, 1000, 20);
  if (identity_fedkey_load(cfg->federation_key_file, n->fedkey, err, errlen) != 0) return -1;
  if (identity_load(cfg->identity_key_file, &n->identity, err, errlen) != 0) goto fail;
  store_options o;
  store_options_for(cfg, &o, 0);
  o.region = NULL; /* take the stored one; store_open checks the node id */
  if (store_open(&n->st, cfg->data_dir, &o, err, errlen) != 0) {
    n->st = NULL;
    goto fail;
  }
  if (strcmp(store_region(n->st), cfg->region) != 0) {
    snprintf(err, errlen, "%s: data directory belongs to region '%s', config says '%s'",
             cfg->data_dir, store_region(n->st), cfg->region);
    goto fail;
  }
  int rc = uv_loop_init(&n->loop);
  if (rc != 0) {
    snprintf(err, errlen, "event loop: %s", uv_strerror(rc));
    goto fail;
  }
  n->loop_ready = 1;
  uv_signal_init(&n->loop, &n->sig_term);
  uv_signal_init(&n->loop, &n->sig_int);
  n->sig_term.data = n->sig_int.data = n;
  uv_signal_start(&n->sig_term, signal_cb, SIGTERM);
  uv_signal_start(&n->sig_int, signal_cb, SIGINT);
  signal(SIGPIPE, SIG_IGN);
  if (admin_server_start(n, &n->admin, err, errlen) != 0) goto fail;
  if (node_peer_start(n, err, errlen) != 0) goto fail;
  return 0;
fail:
  node_close(n);
  return -1;
}

int node_run(node_t *n)
{
  store_stats s;
  memset(&s, 0, sizeof s);
  store_get_stats(n->st, &s);
  log_pack(LOG_INFO, "ready", "{s:s, s:s, s:s, s:I, s:I}", "node", n->cfg.id, "region",
           n->cfg.region, "admin_socket", n->cfg.admin_socket, "learners", (json_int_t)s.learners,
           "achievements", (json_int_t)s.achievements);
  uv_run(&n->loop, UV_RUN_DEFAULT);
  return n->exit_code;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void node_stop(node_t *n, int exit_code, const char *reason)
{
  if (n->stopping) return;
  n->stopping = 1;
  n->exit_code = exit_code;
  if (exit_code != 0) log_pack(LOG_ERROR, "stopping", "{s:s, s:i}", "reason", reason, "exit_code", exit_code);
  if (n->admin) admin_server_close(n->admin);
  node_peer_stop(n);
  /* Signals stay installed so a second one can force the exit; they are
   * unref'd so they do not keep the loop alive. */
  uv_unref((uv_handle_t *)&n->sig_term);
  uv_unref((uv_handle_t *)&n->sig_int);
}

void node_close(node_t *n)
{
  if (n->loop_ready) {
    if (n->admin) admin_server_close(n->admin);
    node_peer_stop(n); /* its handles close through peer_net_close, not the walk */
    uv_walk(&n->loop, close_walk_cb, NULL);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    node_peer_free(n);
    if (n->admin) admin_server_free(n->admin);
    n->admin = NULL;
    int rc = uv_loop_close(&n->loop);
    assert(rc == 0);
    (void)rc;
    n->loop_ready = 0;
  }
  if (n->st) {
    store_close(n->st);
    n->st = NULL;
  }
  EVP_PKEY_free(n->identity);
  n->identity = NULL;
  OPENSSL_cleanse(n->fedkey, sizeof n->fedkey);
}

int node_store_fatal(node_t *n, int rc, const char *during)
{
  if (rc != STORE_ECORRUPT && rc != STORE_EIO) return 0;
  log_pack(LOG_ERROR, "store_failed", "{s:s, s:s, s:s}", "during", during, "error",
           store_strerror(rc), "detail", store_errmsg(n->st));
  node_stop(n, 1, "store failed");
  return 1;
}
