/* Peer sessions between federation nodes over libuv TCP and TLS 1.3
 * (spec/protocol.md "Sessions"). One peer_net per node: a listener for
 * inbound sessions and one maintained outbound link per other member.
 *
 *   - After TLS (mutual, pinned: node/tls.h) each side sends PeerHello;
 *     the Hello's node id must be the member whose key TLS verified.
 *   - Frames are 4-byte big-endian length + Envelope (node/frame.h).
 *   - Requests on a link carry ids chosen by the requester; replies echo
 *     them, so many requests are in flight on one session and answered in
 *     any order. Each request has its own deadline.
 *   - Handshake timeout (TCP accepted or connecting until Hello received),
 *     idle timeout (nothing received), keep-alive pings when quiet.
 *   - Outbound links reconnect with exponential backoff and jitter; the
 *     randomness comes from the configuration (tests pass their own).
 *   - Back-pressure: when the bytes queued to a peer pass write_high_bytes,
 *     the session stops reading from that peer (and stops decoding what it
 *     already has) until the queue is drained below half of that.
 * Everything here runs on the caller's loop thread. */
#ifndef CB_PEER_H
#define CB_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "frame.h"
#include "tls.h"
#include "wire.pb-c.h"

#define PEER_PROTOCOL_VERSION 1u
#define PEER_CAP_LOOKUP "lookup/v1"

#define PEER_ERRORS(X)                                                 \
  X(PEER_OK, "ok")                                                     \
  X(PEER_E_ARG, "invalid argument")                                    \
  X(PEER_E_NOMEM, "out of memory")                                     \
  X(PEER_E_NET, "network error")                                       \
  X(PEER_E_NO_LINK, "no link to that node")                            \
  X(PEER_E_TOO_MANY, "too many requests in flight")                    \
  X(PEER_E_TIMEOUT, "request timed out")                               \
  X(PEER_E_DISCONNECTED, "session closed before the reply")            \
  X(PEER_E_CLOSING, "peer layer is closing")                           \
  X(PEER_E_TOO_LARGE, "message over the frame limit")                  \
  X(PEER_E_REMOVED, "link removed")

#define PEER_ENUM_(name, str) name,
enum peer_err { PEER_ERRORS(PEER_ENUM_) PEER_ERR_COUNT_ };
#undef PEER_ENUM_

const char *peer_strerror(int err);

typedef struct peer_limits {
  size_t max_frame_bytes;        /* default 8 MiB */
  uint64_t handshake_timeout_ms; /* TCP start until Hello received; default 5000 */
  uint64_t idle_timeout_ms;      /* nothing received; default 30000 */
  uint64_t keepalive_ms;         /* ping when nothing received for this; default 10000 */
  uint64_t request_timeout_ms;   /* when a request gives 0; default 5000 */
  size_t max_in_flight;          /* per link (outbound) and per session (inbound); default 256 */
  size_t write_high_bytes;       /* stop reading above this; default 4 MiB */
  size_t max_sessions;           /* inbound sessions at once; default 256 */
  uint64_t backoff_base_ms;      /* default 200 */
  uint64_t backoff_max_ms;       /* default 30000 */
} peer_limits_t;

void peer_limits_default(peer_limits_t *l);

typedef struct peer_net peer_net_t;

typedef enum peer_event {
  PEER_EV_UP,       /* Hello received: session usable */
  PEER_EV_DOWN,     /* session closed; detail says why */
  PEER_EV_REFUSED,  /* bad input or failed handshake; detail says what */
} peer_event_t;

/* Randomness for jitter: a uniformly random 32-bit value. */
typedef uint32_t (*peer_rand_fn)(void *arg);

/* A request arrived (lookup_request, or any request type the node serves).
 * env is valid only during the call; the handler answers, now or later,
 * with peer_reply(net, session_id, env->request_id, ...) exactly once. */
typedef void (*peer_request_cb)(peer_net_t *net, uint64_t session_id, const char *peer_node,
                                const Cb__Envelope *env, void *arg);
typedef void (*peer_event_cb)(peer_net_t *net, const char *peer_node, peer_event_t ev,
                              const char *detail, void *arg);
/* A request's outcome. status 0: reply is the peer's answer (its own
 * message type, or peer_error); negative: -PEER_E_TIMEOUT,
 * -PEER_E_DISCONNECTED, -PEER_E_CLOSING, with detail. reply is valid only
 * during the call. */
typedef void (*peer_response_cb)(int status, const Cb__Envelope *reply, const char *detail,
                                 void *arg);

typedef struct peer_config {
  uv_loop_t *loop;
  const char *node_id;
  tls_ctx_t *server_tls; /* TLS_MODE_PEER_SERVER; NULL: no listener */
  tls_ctx_t *client_tls; /* TLS_MODE_PEER_CLIENT; NULL: no outbound links */
  peer_limits_t limits;
  peer_rand_fn rand;     /* NULL: OpenSSL's RAND_bytes */
  void *rand_arg;
  peer_request_cb on_request;
  peer_event_cb on_event;
  void *arg;
} peer_config_t;

typedef struct peer_stats {
  size_t sessions;               /* open sessions, both directions */
  size_t links_up;
  uint64_t accepted;
  uint64_t refused_over_limit;   /* inbound over max_sessions */
  uint64_t handshake_timeouts;
  uint64_t idle_timeouts;
  uint64_t frames_refused;       /* oversized, malformed, unknown type, bad Hello */
  uint64_t reads_paused;         /* back-pressure episodes */
  uint64_t requests_timed_out;
  uint64_t late_replies;         /* replies to requests already timed out */
  uint64_t reconnects;           /* outbound connection attempts after the first */
  size_t max_queued_bytes;       /* high-water mark of one session's write queue */
} peer_stats_t;

int peer_net_new(const peer_config_t *cfg, peer_net_t **out, char *err, size_t errlen);
/* Listens on host:port (port 0: any; *bound receives the port). */
int peer_net_listen(peer_net_t *net, const char *host, uint16_t port, uint16_t *bound, char *err,
                    size_t errlen);
/* Keeps a session to node_id at host:port (numeric address or a name
 * resolved once, here), reconnecting with backoff. */
int peer_net_add_link(peer_net_t *net, const char *node_id, const char *host, uint16_t port,
                      char *err, size_t errlen);
int peer_net_link_up(const peer_net_t *net, const char *node_id);
/* Drops the link to node_id (member removed from the registry): its
 * session closes, it is not reconnected, and every request on it, sent or
 * waiting, fails with -PEER_E_REMOVED and a detail naming the node and
 * reason (NULL: "removed"). Requests made afterwards get -PEER_E_NO_LINK.
 * -PEER_E_NO_LINK if there is no such link. */
int peer_net_remove_link(peer_net_t *net, const char *node_id, const char *reason);
/* Moves the link to node_id to host:port (endpoint changed in the
 * registry): a session to the old endpoint closes (requests already sent
 * on it fail with -PEER_E_DISCONNECTED, waiting ones stay queued) and a
 * connection to the new one starts at once. Returns 1 if the endpoint
 * changed, 0 if it was already host:port (nothing done), negative on error
 * (err says what; the link keeps its old endpoint). */
int peer_net_update_link(peer_net_t *net, const char *node_id, const char *host, uint16_t port,
                         char *err, size_t errlen);
/* Sessions made from now on use these TLS contexts (own key rotated);
 * sessions already open keep theirs. A context must stay alive while
 * peer_net_tls_in_use says a session still uses it. A NULL argument keeps
 * that side's current context. */
void peer_net_set_tls(peer_net_t *net, tls_ctx_t *server_tls, tls_ctx_t *client_tls);
int peer_net_tls_in_use(const peer_net_t *net, const tls_ctx_t *ctx);
/* Registry reload: closes every session (either direction) whose peer was
 * pinned at handshake and for which keep(node, key, arg) now says 0 (the
 * member was removed or its key is no longer valid). Returns how many
 * closed; each gets a PEER_EV_DOWN event with why. */
typedef int (*peer_keep_fn)(const char *node_id, const uint8_t key[32], void *arg);
size_t peer_net_recheck_sessions(peer_net_t *net, peer_keep_fn keep, void *arg, const char *why);
/* Sends env (message set by the caller; version and request_id are set
 * here) to node_id. If the link is not up yet the request waits for it
 * within its deadline. cb is called exactly once, never from inside this
 * call. timeout_ms 0: limits.request_timeout_ms. */
int peer_net_request(peer_net_t *net, const char *node_id, Cb__Envelope *env, uint64_t timeout_ms,
                     peer_response_cb cb, void *arg);
/* Answers a request received through on_request. */
int peer_reply(peer_net_t *net, uint64_t session_id, uint64_t request_id, Cb__Envelope *env);
void peer_net_stats(const peer_net_t *net, peer_stats_t *out);
/* Closes everything; pending requests get -PEER_E_CLOSING. done(arg) runs
 * once every handle is closed; the net is freed right after it returns. */
void peer_net_close(peer_net_t *net, void (*done)(void *arg), void *arg);

/* The message types a peer session serves, with their content checks
 * (frame_decode's table; also used by the fuzz target). */
const frame_type_t *peer_frame_types(size_t *n);

/* Reconnect delay before attempt n (0-based): exponential from base_ms,
 * capped at max_ms, "equal jitter": half fixed, half random from rnd. Pure. */
uint64_t peer_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint32_t rnd);

#endif
