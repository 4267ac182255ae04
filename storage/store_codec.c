/* store_codec: record encoding and validation (spec/records.md). */
#include "store_codec.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "records.pb-c.h"

void store_codec_put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

void store_codec_put_be64(uint8_t *p, uint64_t v) {
  store_codec_put_be32(p, (uint32_t)(v >> 32));
  store_codec_put_be32(p + 4, (uint32_t)v);
}

uint32_t store_codec_get_be32(const void *vp) {
  const uint8_t *p = vp;
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

uint64_t store_codec_get_be64(const void *p) {
  return (uint64_t)store_codec_get_be32(p) << 32 |
         store_codec_get_be32((const uint8_t *)p + 4);
}

bool store_codec_text_valid(const char *str, size_t len) {
  const uint8_t *s = (const uint8_t *)str;
  for (size_t i = 0; i < len;) {
    uint8_t c = s[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      i++;
      continue;
    }
    size_t n;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      n = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (len - i < n) return false;
    for (size_t j = 1; j < n; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    if (cp >= 0x80 && cp < 0xa0) return false; /* C1 controls */
    i += n;
  }
  return true;
}

bool store_codec_region_valid(const char *region) {
  size_t len = strnlen(region, STORE_REGION_MAX + 1);
  if (len == 0 || len > STORE_REGION_MAX) return false;
  for (size_t i = 0; i < len; i++)
    if (region[i] < 'a' || region[i] > 'z') return false;
  return true;
}

bool store_codec_date_valid(int32_t d) {
  int y = d / 10000, m = d / 100 % 100, day = d % 100;
  if (d < 0 || y < 1900 || y > 2099 || m < 1 || m > 12 || day < 1) return false;
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int max = mdays[m - 1];
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) max = 29;
  return day <= max;
}

/* A NUL-terminated text field of arr[cap + 1] holding min..cap bytes. */
static bool field_ok(const char *name, const char *arr, size_t cap, size_t min,
                     char *why, size_t whylen) {
  const char *nul = memchr(arr, 0, cap + 1);
  if (!nul) {
    snprintf(why, whylen, "%s longer than %zu bytes", name, cap);
    return false;
  }
  size_t len = (size_t)(nul - arr);
  if (len < min) {
    snprintf(why, whylen, "%s is empty", name);
    return false;
  }
  if (!store_codec_text_valid(arr, len)) {
    snprintf(why, whylen, "%s is not printable UTF-8", name);
    return false;
  }
  return true;
}

#define FIELD(rec, f, min) field_ok(#f, (rec)->f, sizeof((rec)->f) - 1, min, why, whylen)

static bool ref_ok(const uint8_t *ref) {
  for (size_t i = 0; i < STORE_REF_LEN; i++)
    if (ref[i]) return true;
  return false; /* all zero: never set */
}

int store_codec_learner_input_valid(const store_learner *l, char *why,
                                    size_t whylen) {
  if (!ref_ok(l->learner_ref)) {
    snprintf(why, whylen, "learner_ref is all zero (not set)");
    return -1;
  }
  const char *nul = memchr(l->id_number, 0, sizeof l->id_number);
  size_t len = nul ? (size_t)(nul - l->id_number) : 0;
  if (!nul || len == 0) {
    snprintf(why, whylen, "id_number must be 1..%d characters",
             STORE_ID_NUMBER_MAX);
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    char c = l->id_number[i];
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) {
      snprintf(why, whylen,
               "id_number has '%c' at %zu (normalised: digits and upper-case "
               "letters)",
               c >= 0x20 && c < 0x7f ? c : '?', i);
      return -1;
    }
  }
  if (!FIELD(l, name, 1)) return -1;
  if (l->opened_at_ms <= 0) {
    snprintf(why, whylen, "opened_at_ms must be > 0");
    return -1;
  }
  return 0;
}

int store_codec_achievement_valid(const store_achievement *a, char *why,
                                  size_t whylen) {
  if (!ref_ok(a->learner_ref)) {
    snprintf(why, whylen, "learner_ref is all zero (not set)");
    return -1;
  }
  if (a->kind < 1 || a->kind > STORE_KIND_MAX) {
    snprintf(why, whylen, "kind %d out of range 1..%d", a->kind, STORE_KIND_MAX);
    return -1;
  }
  if (!FIELD(a, issuer, 1) || !FIELD(a, code, 1) || !FIELD(a, title, 1) ||
      !FIELD(a, level, 0) || !FIELD(a, score, 0))
    return -1;
  if (a->credits_milli < 0 || a->credits_milli > STORE_CREDITS_MILLI_MAX) {
    snprintf(why, whylen, "credits_milli %lld out of range 0..%lld",
             (long long)a->credits_milli, (long long)STORE_CREDITS_MILLI_MAX);
    return -1;
  }
  if (!store_codec_date_valid(a->awarded_on)) {
    snprintf(why, whylen, "awarded_on %ld is not a date YYYYMMDD in 1900..2099",
             (long)a->awarded_on);
    return -1;
  }
  const store_depositor *d = &a->depositor;
  if (d->role < 1 || d->role > STORE_ROLE_MAX) {
    snprintf(why, whylen, "depositor.role %d out of range 1..%d", d->role,
             STORE_ROLE_MAX);
    return -1;
  }
  if (!field_ok("depositor.code", d->code, STORE_DEPOSITOR_CODE_MAX, 1, why,
                whylen) ||
      !field_ok("depositor.name", d->name, STORE_DEPOSITOR_NAME_MAX, 0, why,
                whylen))
    return -1;
  if (a->deposited_at_ms <= 0) {
    snprintf(why, whylen, "deposited_at_ms must be > 0");
    return -1;
  }
  return 0;
}

/* ---- protobuf-c with a bounded arena: decoding never mallocs ----------- */

typedef struct arena {
  _Alignas(16) uint8_t buf[16384];
  size_t used;
} arena;

static void *arena_alloc(void *data, size_t size) {
  arena *a = data;
  size = (size + 15) & ~(size_t)15;
  if (size > sizeof a->buf - a->used) return NULL;
  void *p = a->buf + a->used;
  a->used += size;
  return p;
}

static void arena_free(void *data, void *p) { (void)data, (void)p; }

static bool copy_str(char *dst, size_t cap, const char *src) {
  size_t len = src ? strlen(src) : 0;
  if (len > cap) return false;
  memcpy(dst, src ? src : "", len + 1);
  return true;
}

#define COPY(dst, src) copy_str((dst), sizeof(dst) - 1, (src))

size_t store_codec_learner_encode(const store_learner *l, uint8_t *out) {
  Cb__Learner m = CB__LEARNER__INIT;
  m.learner_ref.data = (uint8_t *)l->learner_ref;
  m.learner_ref.len = STORE_REF_LEN;
  m.id_number = (char *)l->id_number;
  m.name = (char *)l->name;
  m.opened_at_ms = l->opened_at_ms;
  m.region = (char *)l->region;
  m.learner_no = l->learner_no;
  m.achievements = l->achievements;
  size_t len = cb__learner__get_packed_size(&m);
  assert(len <= STORE_CODEC_LEARNER_MAX);
  return cb__learner__pack(&m, out);
}

int store_codec_learner_decode(const void *data, size_t len, store_learner *out,
                               char *why, size_t whylen) {
  if (len > STORE_CODEC_LEARNER_MAX) {
    snprintf(why, whylen, "record of %zu bytes (max %d)", len,
             STORE_CODEC_LEARNER_MAX);
    return -1;
  }
  arena ar;
  ar.used = 0;
  ProtobufCAllocator alloc = {arena_alloc, arena_free, &ar};
  Cb__Learner *m = cb__learner__unpack(&alloc, len, data);
  if (!m) {
    snprintf(why, whylen, "does not unpack as cb.Learner");
    return -1;
  }
  memset(out, 0, sizeof *out);
  if (m->learner_ref.len != STORE_REF_LEN || !COPY(out->id_number, m->id_number) ||
      !COPY(out->name, m->name) || !COPY(out->region, m->region)) {
    snprintf(why, whylen, "field lengths out of bounds");
    return -1;
  }
  memcpy(out->learner_ref, m->learner_ref.data, STORE_REF_LEN);
  out->opened_at_ms = m->opened_at_ms;
  out->learner_no = m->learner_no;
  out->achievements = m->achievements;
  if (store_codec_learner_input_valid(out, why, whylen)) return -1;
  if (!store_codec_region_valid(out->region) || out->learner_no == 0 ||
      out->achievements >= (UINT32_C(1) << STORE_ACH_SEQ_BITS)) {
    snprintf(why, whylen, "region, learner_no or achievements out of range");
    return -1;
  }
  return 0;
}

size_t store_codec_ach_key(uint64_t learner_no, const store_achievement *a,
                           uint8_t *out) {
  size_t il = strlen(a->issuer), cl = strlen(a->code);
  assert(il <= STORE_ISSUER_MAX && cl <= STORE_CODE_MAX);
  store_codec_put_be64(out, learner_no);
  store_codec_put_be32(out + 8, (uint32_t)a->awarded_on);
  memcpy(out + 12, a->issuer, il);
  out[12 + il] = 0;
  memcpy(out + 13 + il, a->code, cl);
  return 13 + il + cl;
}

/* The same bytes protobuf-c writes for cb.Achievement (proto3: fields in
 * number order, zero scalars and empty strings left out, the depositor
 * sub-message always present), written directly: protobuf-c's generic
 * packer (plus a second walk for the size) was a quarter of the store's
 * import CPU. store_codec_encode_self_check() compares both at open. */
static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static size_t put_str(uint8_t *p, uint8_t tag, const char *s) {
  size_t len = strlen(s);
  if (len == 0) return 0;
  p[0] = tag;
  size_t n = 1 + put_varint(p + 1, len);
  memcpy(p + n, s, len);
  return n + len;
}

/* int32 and enum values: negative ones are sign-extended to 10 bytes. */
static size_t put_int(uint8_t *p, uint8_t tag, int64_t v) {
  if (v == 0) return 0;
  p[0] = tag;
  return 1 + put_varint(p + 1, (uint64_t)v);
}

size_t store_codec_achievement_encode(const store_achievement *a, uint64_t id,
                                      uint8_t *out) {
  uint8_t dep[8 + STORE_DEPOSITOR_CODE_MAX + STORE_DEPOSITOR_NAME_MAX];
  size_t dn = put_int(dep, 0x08, a->depositor.role);
  dn += put_str(dep + dn, 0x12, a->depositor.code);
  dn += put_str(dep + dn, 0x1a, a->depositor.name);
  size_t n = 0;
  if (id) {
    out[n++] = 0x08;
    n += put_varint(out + n, id);
  }
  /* learner_ref (2) left empty: the key's learner_no names the learner. */
  n += put_int(out + n, 0x18, a->kind);
  n += put_str(out + n, 0x22, a->issuer);
  n += put_str(out + n, 0x2a, a->code);
  n += put_str(out + n, 0x32, a->title);
  n += put_str(out + n, 0x3a, a->level);
  n += put_int(out + n, 0x40, a->credits_milli);
  n += put_str(out + n, 0x4a, a->score);
  n += put_int(out + n, 0x50, a->awarded_on);
  out[n++] = 0x5a;
  n += put_varint(out + n, dn);
  memcpy(out + n, dep, dn);
  n += dn;
  n += put_int(out + n, 0x60, a->deposited_at_ms);
  assert(n <= STORE_CODEC_ACH_MAX);
  return n;
}

static size_t achievement_encode_pb(const store_achievement *a, uint64_t id,
                                    uint8_t *out) {
  Cb__Depositor d = CB__DEPOSITOR__INIT;
  d.role = (Cb__DepositorRole)a->depositor.role;
  d.code = (char *)a->depositor.code;
  d.name = (char *)a->depositor.name;
  Cb__Achievement m = CB__ACHIEVEMENT__INIT;
  m.id = id;
  m.kind = (Cb__AchievementKind)a->kind;
  m.issuer = (char *)a->issuer;
  m.code = (char *)a->code;
  m.title = (char *)a->title;
  m.level = (char *)a->level;
  m.credits_milli = a->credits_milli;
  m.score = (char *)a->score;
  m.awarded_on = a->awarded_on;
  m.depositor = &d;
  m.deposited_at_ms = a->deposited_at_ms;
  if (cb__achievement__get_packed_size(&m) > STORE_CODEC_ACH_MAX) return 0;
  return cb__achievement__pack(&m, out);
}

bool store_codec_encode_self_check(void) {
  static const struct {
    uint64_t id;
    int kind, role;
    int64_t credits, at;
    int32_t on;
    const char *level, *score, *dname;
  } cases[] = {
      {UINT64_C(1) << 24 | 1, 1, 1, 5500, INT64_C(1764000000000), 20150508, "", "87", "上海开放大学"},
      {UINT64_C(123456789) << 24 | 16777215, 5, 4, 0, 1, 19000101, "三级", "", ""},
      {0, 3, 0, 1000000, INT64_MAX, 20991231, "", "", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    store_achievement a;
    memset(&a, 0, sizeof a);
    a.kind = cases[i].kind;
    snprintf(a.issuer, sizeof a.issuer, "SH-U-OU");
    snprintf(a.code, sizeof a.code, "SH-U-OU-RG-%02zu", i);
    memset(a.title, 'T', i == 1 ? STORE_TITLE_MAX : 10); /* long: 2-byte lengths */
    snprintf(a.level, sizeof a.level, "%s", cases[i].level);
    a.credits_milli = cases[i].credits;
    snprintf(a.score, sizeof a.score, "%s", cases[i].score);
    a.awarded_on = cases[i].on;
    a.depositor.role = cases[i].role;
    snprintf(a.depositor.code, sizeof a.depositor.code, "%s", cases[i].role ? "SH-BR-XH" : "");
    snprintf(a.depositor.name, sizeof a.depositor.name, "%s", cases[i].dname);
    a.deposited_at_ms = cases[i].at;
    uint8_t mine[STORE_CODEC_ACH_MAX], pb[STORE_CODEC_ACH_MAX];
    size_t n = store_codec_achievement_encode(&a, cases[i].id, mine);
    size_t m = achievement_encode_pb(&a, cases[i].id, pb);
    if (n != m || memcmp(mine, pb, n) != 0) return false;
  }
  return true;
}

static Cb__Achievement *ach_unpack(arena *ar, const void *data, size_t len) {
  if (len > STORE_CODEC_ACH_MAX) return NULL;
  ar->used = 0;
  ProtobufCAllocator alloc = {arena_alloc, arena_free, ar};
  return cb__achievement__unpack(&alloc, len, data);
}

int store_codec_achievement_decode(const void *data, size_t len,
                                   store_achievement *out, char *why,
                                   size_t whylen) {
  arena ar;
  Cb__Achievement *m = ach_unpack(&ar, data, len);
  if (!m) {
    snprintf(why, whylen, "record of %zu bytes does not unpack as cb.Achievement",
             len);
    return -1;
  }
  memset(out, 0, sizeof *out);
  const Cb__Depositor *d = m->depositor;
  if (m->learner_ref.len != 0 || !d || !COPY(out->issuer, m->issuer) ||
      !COPY(out->code, m->code) || !COPY(out->title, m->title) ||
      !COPY(out->level, m->level) || !COPY(out->score, m->score) ||
      !COPY(out->depositor.code, d->code) || !COPY(out->depositor.name, d->name)) {
    snprintf(why, whylen, "fields missing or out of bounds");
    return -1;
  }
  out->id = m->id;
  out->kind = (int)m->kind;
  out->credits_milli = m->credits_milli;
  out->awarded_on = m->awarded_on;
  out->depositor.role = (int)d->role;
  out->deposited_at_ms = m->deposited_at_ms;
  /* The ref is the learner's; a placeholder lets the one validator run. */
  memset(out->learner_ref, 0xff, STORE_REF_LEN);
  int rc = store_codec_achievement_valid(out, why, whylen);
  memset(out->learner_ref, 0, STORE_REF_LEN);
  if (rc) return -1;
  if ((out->id & ((UINT64_C(1) << STORE_ACH_SEQ_BITS) - 1)) == 0) {
    snprintf(why, whylen, "id %llu has no sequence part", (unsigned long long)out->id);
    return -1;
  }
  return 0;
}

int store_codec_achievement_id(const void *data, size_t len, uint64_t *id) {
  arena ar;
  Cb__Achievement *m = ach_unpack(&ar, data, len);
  if (!m || m->id == 0) return -1;
  *id = m->id;
  return 0;
}
