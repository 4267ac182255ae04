/* Framing and envelope decoding: see frame.h and spec/admin.md "Framing". */
#include "frame.h"

#include <assert.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_STR_(name, str) str,
static const char *const frame_err_str[] = {FRAME_ERRORS(FRAME_STR_)};
#undef FRAME_STR_

const char *frame_strerror(int err)
{
  if (err < 0) err = -err;
  if (err >= FRAME_ERR_COUNT_) return "unknown frame error";
  return frame_err_str[err];
}

/* ---- reader ---------------------------------------------------------- */

#define FRAME_READER_FIRST_CAP 4096u

void frame_reader_init(frame_reader_t *fr, size_t max_bytes)
{
  memset(fr, 0, sizeof *fr);
  if (max_bytes > FRAME_MAX_CEILING_BYTES) max_bytes = FRAME_MAX_CEILING_BYTES;
  fr->max_bytes = max_bytes;
}

void frame_reader_free(frame_reader_t *fr)
{
  free(fr->body);
  fr->body = NULL;
  fr->body_cap = fr->body_have = 0;
  fr->hdr_have = 0;
}

void frame_reader_next(frame_reader_t *fr)
{
  fr->hdr_have = 0;
  fr->body_len = 0;
  fr->body_have = 0;
  /* A buffer grown for one large frame is not kept for the life of the
   * connection. */
  if (fr->body_cap > 4u * FRAME_READER_FIRST_CAP * 16u) {
    free(fr->body);
    fr->body = NULL;
    fr->body_cap = 0;
  }
}

int frame_reader_partial(const frame_reader_t *fr)
{
  return fr->hdr_have > 0;
}

int frame_header_decode(const uint8_t hdr[FRAME_HEADER_BYTES], size_t max_bytes, uint32_t *len)
{
  uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
  if (n == 0) return -FRAME_E_EMPTY;
  if (max_bytes > FRAME_MAX_CEILING_BYTES) max_bytes = FRAME_MAX_CEILING_BYTES;
  if (n > max_bytes) return -FRAME_E_TOO_LARGE;
  *len = n;
  return 0;
}

/* Grows the body buffer to hold at least need bytes, never past body_len. */
static int reader_reserve(frame_reader_t *fr, size_t need)
{
  if (need <= fr->body_cap) return 0;
  size_t cap = fr->body_cap ? fr->body_cap : FRAME_READER_FIRST_CAP;
  while (cap < need) cap *= 2;
  if (cap > fr->body_len) cap = fr->body_len;
  uint8_t *p = realloc(fr->body, cap);
  if (!p) return -FRAME_E_NOMEM;
  fr->body = p;
  fr->body_cap = cap;
  return 0;
}

int frame_reader_feed(frame_reader_t *fr, const uint8_t *data, size_t len, size_t *consumed)
{
  size_t used = 0;
  *consumed = 0;
  while (fr->hdr_have < FRAME_HEADER_BYTES) {
    if (used == len) return 0;
    fr->hdr[fr->hdr_have++] = data[used++];
    *consumed = used;
    if (fr->hdr_have == FRAME_HEADER_BYTES) {
      int rc = frame_header_decode(fr->hdr, fr->max_bytes, &fr->body_len);
      if (rc < 0) return rc;
    }
  }
  size_t want = fr->body_len - fr->body_have;
  size_t take = len - used < want ? len - used : want;
  if (take > 0) {
    int rc = reader_reserve(fr, fr->body_have + take);
    if (rc < 0) return rc;
    memcpy(fr->body + fr->body_have, data + used, take);
    fr->body_have += take;
    used += take;
  }
  *consumed = used;
  return fr->body_have == fr->body_len ? 1 : 0;
}

/* ---- capped allocator ------------------------------------------------- */

/* The unpacked tree lives in a bump arena owned by the message: one batch
 * of 50,000 import rows is ~500,000 small allocations, which malloc/free
 * one by one spent a sixth of the node's import time on (and its per-chunk
 * overhead doubled the tree's footprint). Freeing a block is a no-op; the
 * whole arena goes with frame_msg_free. The cap counts every byte handed
 * out, so blocks protobuf-c frees during unpack still count against it:
 * the cap stays an upper bound on what the message can make us hold. */
#define FRAME_ARENA_FIRST_BYTES 4096u
#define FRAME_ARENA_MAX_CHUNK_BYTES (1024u * 1024u)

typedef struct frame_chunk {
  struct frame_chunk *next;
  size_t size, used;
  max_align_t data[];
} frame_chunk_t;

struct frame_msg {
  ProtobufCAllocator alloc;
  size_t used;
  size_t cap;
  int over_cap;
  frame_chunk_t *chunks;      /* newest first; bump from the head */
  size_t next_chunk_bytes;
  Cb__Envelope *env;
  const frame_type_t *type;
};

static frame_chunk_t *arena_chunk(size_t size)
{
  frame_chunk_t *c = malloc(sizeof *c + size);
  if (!c) return NULL;
  c->size = size;
  c->used = 0;
  return c;
}

static void *capped_alloc(void *data, size_t size)
{
  frame_msg_t *m = data;
  const size_t align = sizeof(max_align_t);
  size_t need = (size + align - 1) / align * align;
  if (need < size || need > m->cap - m->used) {
    m->over_cap = 1;
    return NULL;
  }
  frame_chunk_t *c = m->chunks;
  if (!c || c->size - c->used < need) {
    if (need > FRAME_ARENA_MAX_CHUNK_BYTES / 4) {
      /* A big block (a repeated field's array) gets a chunk of its own,
       * behind the current one so the current one keeps serving. */
      frame_chunk_t *big = arena_chunk(need);
      if (!big) return NULL;
      big->used = need;
      if (c) {
        big->next = c->next;
        c->next = big;
      } else {
        big->next = NULL;
        m->chunks = big;
      }
      m->used += need;
      return big->data;
    }
    size_t sz = m->next_chunk_bytes ? m->next_chunk_bytes : FRAME_ARENA_FIRST_BYTES;
    if (sz < FRAME_ARENA_MAX_CHUNK_BYTES) m->next_chunk_bytes = sz * 2;
    frame_chunk_t *nc = arena_chunk(sz);
    if (!nc) return NULL;
    nc->next = c;
    m->chunks = c = nc;
  }
  void *p = (unsigned char *)c->data + c->used;
  c->used += need;
  m->used += need;
  return p;
}

static void capped_free(void *data, void *ptr)
{
  (void)data;
  (void)ptr; /* returned with the arena */
}

const Cb__Envelope *frame_msg_envelope(const frame_msg_t *m)
{
  return m->env;
}

const frame_type_t *frame_msg_type(const frame_msg_t *m)
{
  return m->type;
}

void frame_msg_free(frame_msg_t *m)
{
  if (!m) return;
  for (frame_chunk_t *c = m->chunks, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(m);
}

static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

int frame_decode(const uint8_t *body, size_t len, const frame_type_t *types, size_t ntypes,
                 frame_msg_t **out, uint64_t *request_id, char *err, size_t errlen)
{
  *out = NULL;
  if (request_id) *request_id = 0;
  if (err && errlen) err[0] = '\0';
  if (len == 0) return set_err(err, errlen, -FRAME_E_EMPTY, "zero-length frame");
  if (len > FRAME_MAX_CEILING_BYTES)
    return set_err(err, errlen, -FRAME_E_TOO_LARGE, "frame of %zu bytes over the ceiling", len);

  frame_msg_t *m = calloc(1, sizeof *m);
  if (!m) return set_err(err, errlen, -FRAME_E_NOMEM, "out of memory");
  m->alloc.alloc = capped_alloc;
  m->alloc.free = capped_free;
  m->alloc.allocator_data = m;
  m->cap = len * FRAME_UNPACK_FACTOR + FRAME_UNPACK_SLACK_BYTES;

  m->env = cb__envelope__unpack(&m->alloc, len, body);
  if (!m->env) {
    int code = m->over_cap ? -FRAME_E_ALLOC_CAP : -FRAME_E_MALFORMED;
    frame_msg_free(m);
    if (code == -FRAME_E_ALLOC_CAP)
      return set_err(err, errlen, code, "envelope of %zu bytes expands past the unpack cap", len);
    return set_err(err, errlen, code, "frame of %zu bytes is not a valid Envelope", len);
  }
  if (request_id) *request_id = m->env->request_id;
  if (m->env->version != FRAME_VERSION) {
    uint32_t v = m->env->version;
    frame_msg_free(m);
    return set_err(err, errlen, -FRAME_E_VERSION, "envelope version %u (this node speaks %u)", v,
                   FRAME_VERSION);
  }
  for (size_t i = 0; i < ntypes; i++) {
    if (types[i].msg_case != m->env->msg_case) continue;
    m->type = &types[i];
    break;
  }
  if (!m->type) {
    int c = (int)m->env->msg_case;
    frame_msg_free(m);
    if (c == CB__ENVELOPE__MSG__NOT_SET)
      return set_err(err, errlen, -FRAME_E_UNKNOWN_TYPE, "envelope carries no known message type");
    return set_err(err, errlen, -FRAME_E_UNKNOWN_TYPE,
                   "message type %d is not served on this connection", c);
  }
  if (m->type->validate) {
    char why[256] = "";
    if (m->type->validate(m->env, why, sizeof why) != 0) {
      const char *name = m->type->name;
      set_err(err, errlen, -FRAME_E_INVALID, "%s: %s", name, why[0] ? why : "invalid");
      frame_msg_free(m);
      return -FRAME_E_INVALID;
    }
  }
  *out = m;
  return 0;
}

int frame_encode(const Cb__Envelope *env, size_t max_bytes, uint8_t **out, size_t *out_len)
{
  *out = NULL;
  *out_len = 0;
  if (max_bytes > FRAME_MAX_CEILING_BYTES) max_bytes = FRAME_MAX_CEILING_BYTES;
  size_t n = cb__envelope__get_packed_size(env);
  if (n == 0) return -FRAME_E_EMPTY;
  if (n > max_bytes) return -FRAME_E_TOO_LARGE;
  uint8_t *buf = malloc(FRAME_HEADER_BYTES + n);
  if (!buf) return -FRAME_E_NOMEM;
  buf[0] = (uint8_t)(n >> 24);
  buf[1] = (uint8_t)(n >> 16);
  buf[2] = (uint8_t)(n >> 8);
  buf[3] = (uint8_t)n;
  size_t w = cb__envelope__pack(env, buf + FRAME_HEADER_BYTES);
  assert(w == n);
  *out = buf;
  *out_len = FRAME_HEADER_BYTES + n;
  return 0;
}
