/* libFuzzer target: a peer session's view of untrusted bytes. The input is
 * a byte stream (after two control bytes) fed to the frame reader in
 * chunks; every complete frame is decoded and validated against the peer
 * message table (node/peer.c), and every signed statement it carries goes
 * through sigstmt_open_* against a fixed registry. When the second control
 * byte is odd, the statement's body is first re-signed with the registered
 * test key, so that the body checks after the signature (unpacking,
 * signer/requester match, lengths, key validity time) are fuzzed too.
 * Nothing may crash, leak or exceed the bounds. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "peer.h"
#include "registry.h"
#include "sigstmt.h"

#define FUZZ_MAX_FRAME 65536u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static registry_t *reg;
static EVP_PKEY *key; /* registered as "js" */

static void init(void) {
  uint8_t seed[32], pub[32];
  memset(seed, 7, sizeof seed);
  if (sigstmt_key_from_seed(seed, &key) || sigstmt_key_public(key, pub)) abort();
  char hex[65], json[512];
  for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", pub[i]);
  snprintf(json, sizeof json,
           "{\"version\":1,\"federation_key\":\"%064d\",\"members\":[{\"node_id\":\"js\","
           "\"region\":\"js\",\"endpoint\":\"127.0.0.1:1\",\"keys\":[{\"public_key\":\"%s\","
           "\"not_before\":0}]}]}",
           0, hex);
  char err[256];
  if (registry_parse(json, strlen(json), &reg, err, sizeof err)) abort();
}

static void check_statement(const Cb__SignedStatement *st, int kind, int resign) {
  Cb__SignedStatement copy = *st;
  uint8_t sig[64];
  static const char *const tags[] = {SIGSTMT_TAG_LOOKUP_REQUEST, SIGSTMT_TAG_LOOKUP_RESPONSE,
                                     SIGSTMT_TAG_ATTESTATION};
  uint8_t pub[32];
  if (resign && st->body.len <= SIGSTMT_MAX_BODY_BYTES &&
      sigstmt_sign_raw(key, tags[kind], st->body.data, st->body.len, sig) == 0 &&
      sigstmt_key_public(key, pub) == 0) {
    copy.signer = "js";
    copy.public_key.data = pub;
    copy.public_key.len = 32;
    copy.signature.data = sig;
    copy.signature.len = 64;
  }
  char err[512];
  if (kind == 0) {
    Cb__LookupRequestBody *b = NULL;
    if (sigstmt_open_lookup_request(reg, &copy, &b, err, sizeof err) == 0) {
      assert(b->nonce.len >= 16 && b->learner_ref.len == 32 && !strcmp(b->requester, "js"));
      cb__lookup_request_body__free_unpacked(b, NULL);
    } else {
      assert(b == NULL && err[0]);
    }
  } else if (kind == 1) {
    Cb__LookupResponseBody *b = NULL;
    if (sigstmt_open_lookup_response(reg, &copy, &b, err, sizeof err) == 0) {
      assert(b->learner_ref.len == 32 && !strcmp(b->responder, "js"));
      cb__lookup_response_body__free_unpacked(b, NULL);
    }
  } else {
    Cb__AttestationBody *b = NULL;
    if (sigstmt_open_attestation(reg, &copy, &b, err, sizeof err) == 0) {
      assert(b->achievement && !strcmp(b->issuer, "js"));
      cb__attestation_body__free_unpacked(b, NULL);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!reg) init();
  if (size < 2) return 0;
  size_t chunk = (size_t)(data[0] % 64) + 1;
  int resign = data[1] & 1;
  int attest = (data[1] >> 1) & 1;
  data += 2;
  size -= 2;
  size_t ntypes;
  const frame_type_t *types = peer_frame_types(&ntypes);
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
    if (rc == 0) continue;
    assert(fr.body_len <= FUZZ_MAX_FRAME);
    frame_msg_t *m = NULL;
    uint64_t rid;
    char err[512];
    if (frame_decode(fr.body, fr.body_len, types, ntypes, &m, &rid, err, sizeof err) == 0) {
      const Cb__Envelope *env = frame_msg_envelope(m);
      if (env->msg_case == CB__ENVELOPE__MSG_LOOKUP_REQUEST)
        check_statement(env->lookup_request->request, attest ? 2 : 0, resign);
      else if (env->msg_case == CB__ENVELOPE__MSG_LOOKUP_RESPONSE)
        check_statement(env->lookup_response->response, 1, resign);
      frame_msg_free(m);
    } else {
      assert(m == NULL && err[0]);
    }
    frame_reader_next(&fr);
  }
  frame_reader_free(&fr);
  return 0;
}
