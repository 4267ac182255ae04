/* libFuzzer target: the admin socket's view of untrusted bytes. The input
 * is a byte stream fed to the frame reader in chunks (sizes taken from the
 * first byte); every complete frame is decoded and validated against the
 * admin message table, as node/admin.c does. Nothing may crash, leak or
 * exceed the bounds; a decoded message must re-encode within the limit. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "admin.h"
#include "frame.h"

#define FUZZ_MAX_FRAME 65536u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  size_t chunk = (size_t)(data[0] % 64) + 1;
  data++;
  size--;
  frame_reader_t fr;
  frame_reader_init(&fr, FUZZ_MAX_FRAME);
  size_t off = 0;
  while (off < size) {
    size_t n = size - off < chunk ? size - off : chunk;
    size_t used = 0;
    int rc = frame_reader_feed(&fr, data + off, n, &used);
    assert(used <= n);
    off += used;
    if (rc < 0) break;
    if (rc == 1) {
      assert(fr.body_len <= FUZZ_MAX_FRAME && fr.body_cap <= FUZZ_MAX_FRAME);
      frame_msg_t *m = NULL;
      uint64_t rid;
      char err[512];
      if (frame_decode(fr.body, fr.body_len, admin_types, admin_ntypes, &m, &rid, err, sizeof err) == 0) {
        const Cb__Envelope *env = frame_msg_envelope(m);
        assert(admin_handler_for(env->msg_case) != NULL);
        uint8_t *out;
        size_t outlen;
        /* A validated message always re-encodes (replies echo parts). */
        int erc = frame_encode(env, FRAME_MAX_CEILING_BYTES, &out, &outlen);
        assert(erc == 0);
        free(out);
        frame_msg_free(m);
      } else {
        assert(m == NULL && err[0] != '\0');
      }
      frame_reader_next(&fr);
    } else {
      assert(used == n);
    }
  }
  frame_reader_free(&fr);
  return 0;
}
