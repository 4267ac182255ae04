/* Length-prefixed framing shared by the admin socket and peer sessions:
 * a 4-byte big-endian length, then one protobuf Envelope (proto/wire.proto).
 * spec/admin.md "Framing".
 *
 * Untrusted bytes go through three gates, in this order:
 *   1. the length prefix is checked against the configured maximum before
 *      anything is allocated (frame_reader_feed);
 *   2. protobuf-c unpacks through an allocator with a byte cap
 *      (frame_decode), so a small frame cannot expand into a huge tree;
 *   3. the envelope is validated: version, a message type the caller serves,
 *      then that type's own validate function (required fields, enum
 *      ranges, repeated counts). */
#ifndef CB_FRAME_H
#define CB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "wire.pb-c.h"

#define FRAME_HEADER_BYTES 4u
#define FRAME_VERSION 1u
/* Hard ceiling whatever the configuration says. */
#define FRAME_MAX_CEILING_BYTES (64u * 1024u * 1024u)
/* The unpacked message tree may take at most this multiple of the frame
 * size (plus a fixed allowance): protobuf-c structs are larger than their
 * encoding, but only by a bounded factor for honest input. */
#define FRAME_UNPACK_FACTOR 16u
#define FRAME_UNPACK_SLACK_BYTES (64u * 1024u)

#define FRAME_ERRORS(X)                                              \
  X(FRAME_OK, "ok")                                                  \
  X(FRAME_E_TOO_LARGE, "frame length over the configured maximum")   \
  X(FRAME_E_EMPTY, "zero-length frame")                              \
  X(FRAME_E_MALFORMED, "malformed protobuf")                         \
  X(FRAME_E_ALLOC_CAP, "message expands beyond the unpack cap")      \
  X(FRAME_E_VERSION, "unsupported envelope version")                 \
  X(FRAME_E_UNKNOWN_TYPE, "unknown or unserved message type")        \
  X(FRAME_E_INVALID, "invalid message content")                      \
  X(FRAME_E_NOMEM, "out of memory")

#define FRAME_ENUM_(name, str) name,
enum frame_err { FRAME_ERRORS(FRAME_ENUM_) FRAME_ERR_COUNT_ };
#undef FRAME_ENUM_

/* Returns the text for a frame error (positive or negated code). */
const char *frame_strerror(int err);

/* A message type a listener serves, with its content check. validate
 * returns 0 or writes a reason (field name first) into err and returns
 * -FRAME_E_INVALID. */
typedef int (*frame_validate_fn)(const Cb__Envelope *env, char *err, size_t errlen);
typedef struct frame_type {
  Cb__Envelope__MsgCase msg_case;
  const char *name;
  frame_validate_fn validate;
} frame_type_t;

/* Streaming reassembly of frames from a byte stream. The body buffer grows
 * with the bytes actually received (never straight to the announced
 * length), so a peer announcing a large frame and sending nothing costs
 * nothing. */
typedef struct frame_reader {
  size_t max_bytes;      /* configured maximum body length */
  uint8_t hdr[FRAME_HEADER_BYTES];
  size_t hdr_have;
  uint32_t body_len;     /* valid once hdr_have == FRAME_HEADER_BYTES */
  uint8_t *body;
  size_t body_have;
  size_t body_cap;
} frame_reader_t;

void frame_reader_init(frame_reader_t *fr, size_t max_bytes);
void frame_reader_free(frame_reader_t *fr);
/* Consumes bytes from data[0..len). Returns 1 when a whole frame is ready
 * (body via fr->body/fr->body_len; *consumed says how much of data was
 * used, the rest belongs to the next frame), 0 when all of data was
 * consumed and more is needed, or a negative frame error (TOO_LARGE,
 * EMPTY, NOMEM): the stream is then unusable. */
int frame_reader_feed(frame_reader_t *fr, const uint8_t *data, size_t len, size_t *consumed);
/* Forgets the current frame, keeping the buffer for the next one. */
void frame_reader_next(frame_reader_t *fr);
/* True if a frame has been started but not completed. */
int frame_reader_partial(const frame_reader_t *fr);

/* Checks a 4-byte length prefix against max_bytes. */
int frame_header_decode(const uint8_t hdr[FRAME_HEADER_BYTES], size_t max_bytes, uint32_t *len);

/* An unpacked, validated envelope and the capped allocator that owns it. */
typedef struct frame_msg frame_msg_t;
const Cb__Envelope *frame_msg_envelope(const frame_msg_t *m);
const frame_type_t *frame_msg_type(const frame_msg_t *m);
void frame_msg_free(frame_msg_t *m);

/* Unpacks and validates one frame body. types[0..ntypes) are the message
 * types the caller serves. On failure returns a negative frame error and
 * writes a reason into err; *request_id receives the envelope's request id
 * when the envelope could be unpacked (0 otherwise) so the error reply can
 * echo it. */
int frame_decode(const uint8_t *body, size_t len, const frame_type_t *types, size_t ntypes,
                 frame_msg_t **out, uint64_t *request_id, char *err, size_t errlen);

/* Packs env behind its length prefix into a fresh malloc'd buffer. Fails
 * with -FRAME_E_TOO_LARGE if the encoding exceeds max_bytes. */
int frame_encode(const Cb__Envelope *env, size_t max_bytes, uint8_t **out, size_t *out_len);

#endif
