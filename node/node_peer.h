/* The node's federation wiring (spec/protocol.md "The node's wiring"):
 * the registry (loaded at start, reloaded on SIGHUP), the peer TLS
 * contexts and sessions (node/peer.h), answering peers' lookups from the
 * store with a durable access-log entry each (storage/store_access.h), and
 * what the admin lookup handlers (admin_lookup.c) need to ask peers.
 * Present only when the configuration names a registry_file. */
#ifndef CB_NODE_PEER_H
#define CB_NODE_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "node.h"
#include "peer.h"
#include "peer_lookup.h"
#include "registry.h"
#include "store_access.h"

/* Skew window for signed requests and the replay cache's bound (peak
 * lookups/s x 2 x skew: 60 s x ~4000/s). */
#define NODE_PEER_SKEW_MS 30000
#define NODE_PEER_REPLAY_MAX 262144u
/* Per-peer deadline of a lookup when the operator gives none, and the most
 * an operator may ask for. */
#define NODE_PEER_LOOKUP_TIMEOUT_MS 3000u
#define NODE_PEER_LOOKUP_TIMEOUT_MAX_MS 30000u
/* Most achievements one answer discloses (the signed body stays far below
 * SIGSTMT_MAX_BODY_BYTES). */
#define NODE_PEER_MAX_ACHIEVEMENTS 4096u
/* Answers waiting for one group commit of their access-log entries. */
#define NODE_PEER_BATCH_MAX 256u

typedef struct node_peer node_peer_t;

/* Loads the registry, checks this node against it (member, region,
 * federation key, own key valid now), opens the access log, starts the
 * peer listener and one link per other member, installs SIGHUP.
 * Does nothing (returns 0) when cfg.registry_file is empty. */
int node_peer_start(node_t *n, char *err, size_t errlen);
/* Begins closing the peer layer (pending lookups fail with "closing"). */
void node_peer_stop(node_t *n);
/* Frees what is left after the loop has run the closes. */
void node_peer_free(node_t *n);

/* Rereads registry_file; a bad file keeps the current registry (logged). */
int node_peer_reload(node_t *n, char *err, size_t errlen);

/* For the admin handlers: NULL when the node runs without a registry. */
registry_t *node_peer_registry(node_t *n);
peer_net_t *node_peer_net(node_t *n);
store_access *node_peer_access(node_t *n);
/* The signer for statements made now: this node's id and its key. */
int node_peer_signer(node_t *n, sigstmt_signer_t *out, char *err, size_t errlen);


#endif
