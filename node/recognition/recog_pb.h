/* recog_pb.h: a decision as protobuf-c structs (cb.RecognitionDecision of
 * proto/recognition.proto), for the node's replies, the HTTP API's JSON
 * mapping and `cbctl decision verify FILE`. Library `cbrecognition_pb`
 * (links protobuf-c): kept out of the pure evaluation library.
 *
 * The signed bytes are always recog_encode()'s; protobuf-c's packing of
 * recog_pb_view() is byte-identical (checked by the unit tests), and
 * recog_pb_decode() refuses bytes that are not in that canonical form. */
#ifndef CB_RECOG_PB_H
#define CB_RECOG_PB_H

#include <stddef.h>
#include <stdint.h>

#include "recog.h"
#include "recognition.pb-c.h"

/* A read-only protobuf-c view of a decision: its strings point into d,
 * which must outlive it. */
struct recog_pb_view {
  Cb__RecognitionDecision msg;
  Cb__RecognitionTarget target;
  void *mem;
};
int recog_pb_view(const struct recog_decision *d, struct recog_pb_view *v);
void recog_pb_view_free(struct recog_pb_view *v);

/* Decodes the body of a signed decision or exemption answer: bounded
 * (RECOG_MAX_DECISION_BYTES), every field checked (lengths, enum ranges,
 * dates, printable text), and canonical (re-encoding gives the same
 * bytes). On success 0 and out->d is a decision whose strings point into
 * out's memory; free with recog_pb_decoded_free. On failure a negative
 * enum recog_err and err says why. */
struct recog_pb_decoded {
  struct recog_decision d;
  Cb__RecognitionDecision *msg;
  void *mem;
};
int recog_pb_decode(const uint8_t *buf, size_t len, struct recog_pb_decoded *out, char *err,
                    size_t errlen);
void recog_pb_decoded_free(struct recog_pb_decoded *out);

#endif
