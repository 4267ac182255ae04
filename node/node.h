/* The node context: one per cbnode process. Owns the libuv loop, the
 * store, the keys, the signal handlers and every listener (today the admin
 * socket; the peer TLS listener attaches here the same way). All callbacks
 * run on the loop's thread; handlers get the node_t and nothing global. */
#ifndef CB_NODE_H
#define CB_NODE_H

#include <stdint.h>

#include <openssl/evp.h>
#include <uv.h>

#include "config.h"
#include "identity.h"
#include "log.h"
#include "store.h"

#define NODE_SOFTWARE "cbnode 0.1"

struct admin_server;
struct node_peer;

typedef struct node {
  config_t cfg;
  uv_loop_t loop;
  store *st;
  EVP_PKEY *identity;
  uint8_t fedkey[IDENTITY_FEDKEY_BYTES];
  uv_signal_t sig_term;
  uv_signal_t sig_int;
  struct admin_server *admin;
  struct node_peer *peer;         /* federation wiring (node_peer.h); NULL without a registry */
  int loop_ready;
  int stopping;
  int exit_code;
  log_ratelimit_t bad_input_rl;   /* lines caused by untrusted input */
} node_t;

/* cbnode --init: creates data_dir (0700), the federation key file if
 * missing (a demo federation shares one), the identity key (0600; an
 * existing one is never overwritten: refused) and the LMDB environment. */
int node_init_dirs(const config_t *cfg, char *err, size_t errlen);

/* Loads keys, opens the store, binds the admin socket, installs the
 * SIGTERM/SIGINT handlers. On failure everything opened is closed. */
int node_open(node_t *n, const config_t *cfg, char *err, size_t errlen);
/* Runs the loop until node_stop(); returns the exit code. */
int node_run(node_t *n);
/* Begins shutdown: stops listening, closes connections; the loop ends
 * when they are closed. The first call's exit code wins. */
void node_stop(node_t *n, int exit_code, const char *reason);
/* Closes the store and frees everything (after node_run returned). */
void node_close(node_t *n);

/* A store call failed with rc: corrupt storage or an I/O error stops the
 * node with a log line (returns 1); anything else is the request's
 * problem (returns 0). */
int node_store_fatal(node_t *n, int rc, const char *during);

/* Clock, read only here: Unix ms, and today's date (CST) as YYYYMMDD. */
int64_t node_now_ms(void);
int32_t node_today(void);

#endif
