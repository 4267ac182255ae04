/* The operator API: a Unix domain socket (mode 0660) speaking the wire
 * framing (frame.h) with the admin messages of proto/admin.proto.
 * Protocol: spec/admin.md.
 *
 * admin.c          the listener and connections (bounded buffers, a cap on
 *                  connections, back-pressure on unread replies);
 * admin_handlers.c the dispatch table: one entry per request type with its
 *                  validate and handle functions;
 * admin_validate.c content checks run before any handler;
 * admin_tls.c      the operator port: the same connections over TLS 1.3
 *                  on TCP, the caller taken from the client certificate;
 * admin_roles.c    who may send what: checked before any handler. */
#ifndef CB_ADMIN_H
#define CB_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "node.h"
#include "wire.pb-c.h"

/* Most rows one ImportBatchRequest may carry (one LMDB transaction). */
#define ADMIN_IMPORT_ROWS_MAX CONFIG_MAX_IMPORT_BATCH
#define ADMIN_READ_CHUNK_BYTES 65536u

typedef struct admin_server admin_server_t;

int admin_server_start(node_t *n, admin_server_t **out, char *err, size_t errlen);
/* Stops listening and closes every connection (asynchronously: the loop
 * finishes the closes). Safe to call twice. */
void admin_server_close(admin_server_t *s);
/* Frees the server after its handles are closed (the loop has run). */
void admin_server_free(admin_server_t *s);

/* Memory for one reply: every allocation made while building the response
 * is freed together once it has been encoded. */
typedef struct admin_arena {
  void **ptrs;
  size_t n, cap;
} admin_arena_t;

void *admin_arena_alloc(admin_arena_t *a, size_t size);   /* zeroed */
char *admin_arena_strdup(admin_arena_t *a, const char *s);
void admin_arena_free(admin_arena_t *a);

struct admin_conn;

typedef struct admin_reply {
  Cb__Envelope env;       /* version and request_id set by the caller */
  admin_arena_t arena;
  struct admin_conn *conn; /* the asking connection (NULL outside admin.c) */
} admin_reply_t;

/* A stored achievement as its wire message, allocated in the arena (the
 * transcript reply and the answers to peers' lookups share it). NULL when
 * the arena is out of memory. */
Cb__Achievement *admin_achievement_to_proto(admin_arena_t *ar, const store_achievement *a);

/* Makes the reply an Error with code and a formatted reason. */
void admin_reply_error(admin_reply_t *r, Cb__ErrorCode code, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* Handles one validated request, filling reply (a typed response or an
 * Error). Returns 0; never fails without an Error in the reply. */
typedef int (*admin_handle_fn)(node_t *n, const Cb__Envelope *req, admin_reply_t *reply);

/* Asynchronous completion, for handlers that wait on the network (the
 * cross-region lookup): the handler calls admin_reply_defer(reply), starts
 * its work and returns ADMIN_PENDING without filling reply. Later it fills
 * admin_pending_reply(p) (a fresh reply with its own arena; request_id
 * already set) and calls admin_pending_complete(p) exactly once, which
 * sends it and frees p. If the client went away meanwhile the reply is
 * dropped there, safely. admin_reply_defer returns NULL when the reply
 * cannot be deferred (no connection, out of memory): answer now then. */
#define ADMIN_PENDING 1
typedef struct admin_pending admin_pending_t;
admin_pending_t *admin_reply_defer(admin_reply_t *reply);
admin_reply_t *admin_pending_reply(admin_pending_t *p);
/* True while the connection that asked is still open. */
int admin_pending_connected(const admin_pending_t *p);
void admin_pending_complete(admin_pending_t *p);

/* The request types the admin socket serves (frame_decode's table) and
 * their handlers, keyed by the Envelope message case. */
extern const frame_type_t admin_types[];
extern const size_t admin_ntypes;
admin_handle_fn admin_handler_for(Cb__Envelope__MsgCase c);

/* Content checks (admin_validate.c), one per request type, as frame_decode
 * calls them: 0 or -FRAME_E_INVALID with a reason naming the field. */
int admin_validate_hello(const Cb__Envelope *env, char *err, size_t errlen);
int admin_validate_learner_open(const Cb__Envelope *env, char *err, size_t errlen);
int admin_validate_deposit(const Cb__Envelope *env, char *err, size_t errlen);
int admin_validate_import_batch(const Cb__Envelope *env, char *err, size_t errlen);
int admin_validate_transcript(const Cb__Envelope *env, char *err, size_t errlen);
int admin_validate_stats(const Cb__Envelope *env, char *err, size_t errlen);

/* Shared by the validators and cbctl: UTF-8 without control characters,
 * at most max_bytes long; required means non-empty. 0 or -1 with a
 * reason naming field. */
int admin_check_text(const char *field, const char *s, size_t max_bytes, int required, char *err,
                     size_t errlen);

/* Maps a frame error to the ErrorCode sent back. */
Cb__ErrorCode admin_error_code_for_frame(int frame_err);

#endif
