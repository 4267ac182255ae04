/* Helpers of the catalogue model: arena, hash map, growing vectors, text
 * buffers, error lists, dates, decimal credits, the text rule. libc only. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cat_internal.h"

/* ------------------------------------------------------------ arena */

struct cat_arena_block {
  struct cat_arena_block *next;
  size_t cap;
  _Alignas(16) unsigned char data[];
};

#define CAT_ARENA_BLOCK (64u * 1024u)

void *cat_arena_alloc(struct cat_arena *a, size_t n) {
  n = (n + 15u) & ~(size_t)15u;
  if (n == 0) n = 16;
  if (!a->head || a->cap - a->used < n) {
    size_t cap = n > CAT_ARENA_BLOCK ? n : CAT_ARENA_BLOCK;
    struct cat_arena_block *b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->cap = cap;
    b->next = a->head;
    a->head = b;
    a->cap = cap;
    a->used = 0;
  }
  void *p = a->head->data + a->used;
  a->used += n;
  memset(p, 0, n);
  return p;
}

char *cat_arena_strdup(struct cat_arena *a, const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = cat_arena_alloc(a, n);
  if (d) memcpy(d, s, n);
  return d;
}

void cat_arena_reset(struct cat_arena *a) {
  if (!a->head) return;
  struct cat_arena_block *keep = a->head;
  /* Keep the largest-capacity head block: free the others. */
  struct cat_arena_block *b = keep->next;
  while (b) {
    struct cat_arena_block *n = b->next;
    free(b);
    b = n;
  }
  keep->next = NULL;
  a->cap = keep->cap;
  a->used = 0;
}

void cat_arena_free(struct cat_arena *a) {
  struct cat_arena_block *b = a->head;
  while (b) {
    struct cat_arena_block *n = b->next;
    free(b);
    b = n;
  }
  a->head = NULL;
  a->used = a->cap = 0;
}

/* ------------------------------------------------------------ map */

static uint64_t fnv1a(uint32_t ns, const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 4; i++) {
    h ^= (ns >> (8 * i)) & 0xffu;
    h *= 0x100000001b3ull;
  }
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ull;
  }
  return h ^ (h >> 29);
}

int cat_map_init(struct cat_map *m, size_t expected) {
  size_t cap = 16;
  while (cap < 2 * expected + 2) cap *= 2;
  m->slots = calloc(cap, sizeof *m->slots);
  if (!m->slots) return -1;
  m->mask = (uint32_t)(cap - 1);
  m->n = 0;
  return 0;
}

void cat_map_free(struct cat_map *m) {
  free(m->slots);
  m->slots = NULL;
  m->mask = m->n = 0;
}

uint32_t cat_map_get(const struct cat_map *m, uint32_t ns, const char *key) {
  if (!m->slots || !key) return CATALOGUE_NONE;
  uint64_t h = fnv1a(ns, key);
  for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
    const struct cat_slot *s = &m->slots[i];
    if (!s->key) return CATALOGUE_NONE;
    if (s->hash == h && s->ns == ns && strcmp(s->key, key) == 0) return s->val;
  }
}

uint32_t cat_map_put(struct cat_map *m, uint32_t ns, const char *key, uint32_t val) {
  assert(m->slots && key && m->n < m->mask);
  uint64_t h = fnv1a(ns, key);
  for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
    struct cat_slot *s = &m->slots[i];
    if (!s->key) {
      s->key = key;
      s->hash = h;
      s->ns = ns;
      s->val = val;
      m->n++;
      return CATALOGUE_NONE;
    }
    if (s->hash == h && s->ns == ns && strcmp(s->key, key) == 0) return s->val;
  }
}

/* ------------------------------------------------------------ vectors */

void *cat_vec_push(struct cat_vec *vec, size_t sz) {
  if (vec->n >= CATALOGUE_MAX_ITEMS) return NULL;
  if (vec->n == vec->cap) {
    size_t cap = vec->cap ? vec->cap * 2 : 16;
    void *v = realloc(vec->v, cap * sz);
    if (!v) return NULL;
    vec->v = v;
    vec->cap = cap;
  }
  void *p = (char *)vec->v + vec->n * sz;
  memset(p, 0, sz);
  vec->n++;
  return p;
}

/* ------------------------------------------------------------ text */

void catalogue_text_free(struct catalogue_text *t) {
  free(t->s);
  t->s = NULL;
  t->len = t->cap = 0;
  t->oom = 0;
}

static void text_vprintf(struct catalogue_text *t, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void text_vprintf(struct catalogue_text *t, const char *fmt, va_list ap) {
  if (t->oom) return;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    t->oom = 1;
    return;
  }
  if (!t->s || t->len + (size_t)n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + (size_t)n + 1) cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s) {
      t->oom = 1;
      return;
    }
    t->s = s;
    t->cap = cap;
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  }
  t->len += (size_t)n;
}

void catalogue_text_printf(struct catalogue_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  text_vprintf(t, fmt, ap);
  va_end(ap);
}

void cat_text_list(struct catalogue_text *t, const char *const *v, size_t n, const char *sep) {
  for (size_t i = 0; i < n; i++) catalogue_text_printf(t, "%s%s", i ? sep : "", v[i]);
}

int cat_strcmp_p(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ------------------------------------------------------------ errors */

void catalogue_errors_free(struct catalogue_errors *e) {
  for (size_t i = 0; i < e->nkept; i++) free(e->lines[i]);
  free(e->lines);
  e->lines = NULL;
  e->count = e->nkept = 0;
}

int catalogue_errors_add(struct catalogue_errors *e, const char *path, const char *fmt, ...) {
  e->count++;
  if (e->nkept >= CATALOGUE_MAX_ERRORS_KEPT) return 0;
  struct catalogue_text t = {0};
  if (path && *path) catalogue_text_printf(&t, "%s: ", path);
  va_list ap;
  va_start(ap, fmt);
  text_vprintf(&t, fmt, ap);
  va_end(ap);
  if (t.oom || !t.s) {
    catalogue_text_free(&t);
    return -1;
  }
  if ((e->nkept & (e->nkept - 1)) == 0) { /* grow at powers of two */
    char **l = realloc(e->lines, (e->nkept ? 2 * e->nkept : 1) * sizeof *l);
    if (!l) {
      catalogue_text_free(&t);
      return -1;
    }
    e->lines = l;
  }
  e->lines[e->nkept++] = t.s;
  return 0;
}

/* ------------------------------------------------------------ numbers */

int catalogue_parse_milli(const char *s, int64_t max, int64_t *out) {
  if (!s || !*s) return -1;
  int64_t whole = 0;
  const char *p = s;
  size_t digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++) {
    if (whole > INT64_MAX / 10000) return -1;
    whole = whole * 10 + (*p - '0');
  }
  if (digits == 0) return -1;
  int64_t frac = 0;
  if (*p == '.') {
    p++;
    int n = 0;
    for (; *p >= '0' && *p <= '9'; p++, n++) {
      if (n == 3) return -1;
      frac = frac * 10 + (*p - '0');
    }
    if (n == 0) return -1;
    for (; n < 3; n++) frac *= 10;
  }
  if (*p) return -1;
  int64_t v = whole * 1000 + frac;
  if (v > max) return -1;
  *out = v;
  return 0;
}

void catalogue_format_milli(int64_t milli, char *buf, size_t cap) {
  const char *sign = milli < 0 ? "-" : "";
  uint64_t m = milli < 0 ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
  uint64_t whole = m / 1000, frac = m % 1000;
  if (frac == 0) {
    snprintf(buf, cap, "%s%llu", sign, (unsigned long long)whole);
    return;
  }
  char f[4] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10),
               '\0'};
  for (int i = 2; i > 0 && f[i] == '0'; i--) f[i] = '\0';
  snprintf(buf, cap, "%s%llu.%s", sign, (unsigned long long)whole, f);
}

/* ------------------------------------------------------------ dates */

static int is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

int catalogue_date_valid(int32_t v) {
  int y = v / 10000, m = v / 100 % 100, d = v % 100;
  return y >= 1900 && y <= 2099 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

int catalogue_parse_date(const char *s, int32_t *out) {
  if (!s) return -1;
  size_t n = strlen(s);
  int digits[8], k = 0;
  if (n == 10 && s[4] == '-' && s[7] == '-') {
    for (size_t i = 0; i < n; i++) {
      if (i == 4 || i == 7) continue;
      if (s[i] < '0' || s[i] > '9') return -1;
      digits[k++] = s[i] - '0';
    }
  } else if (n == 8) {
    for (size_t i = 0; i < n; i++) {
      if (s[i] < '0' || s[i] > '9') return -1;
      digits[k++] = s[i] - '0';
    }
  } else {
    return -1;
  }
  int32_t v = 0;
  for (int i = 0; i < 8; i++) v = v * 10 + digits[i];
  if (!catalogue_date_valid(v)) return -1;
  *out = v;
  return 0;
}

int32_t catalogue_date_minus_years(int32_t v, uint32_t years) {
  int y = v / 10000 - (int)years, m = v / 100 % 100, d = v % 100;
  if (m == 2 && d == 29 && !is_leap(y)) d = 28;
  return y * 10000 + m * 100 + d;
}

void catalogue_format_date(int32_t v, char *buf, size_t cap) {
  snprintf(buf, cap, "%04d-%02d-%02d", (int)(v / 10000), (int)(v / 100 % 100), (int)(v % 100));
}

/* ------------------------------------------------------------ text rule */

int catalogue_text_ok(const char *s, size_t max, int empty_ok) {
  if (!s) return 0;
  size_t n = strlen(s);
  if (n > max || (n == 0 && !empty_ok)) return 0;
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return 0;
      p++;
      continue;
    }
    int len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (end - p < len) return 0;
    for (int i = 1; i < len; i++) {
      if ((p[i] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    if (cp >= 0x80 && cp <= 0x9f) return 0; /* C1 controls */
    p += len;
  }
  return 1;
}

/* ------------------------------------------------------------ names */

static const char *const kind_names[] = {NULL, "credit_recognised", "certificate_recognised",
                                         "course_restructured", "through_train",
                                         "course_transfer"};
static const char *const kind_cn[] = {NULL, "学分认可型", "证书认可型", "课程重组型", "直通车式",
                                      "学历课程互认"};

const char *catalogue_rule_kind_name(int kind) {
  return kind >= 1 && kind <= CATALOGUE_RULE_KIND_MAX ? kind_names[kind] : NULL;
}

const char *catalogue_rule_kind_cn(int kind) {
  return kind >= 1 && kind <= CATALOGUE_RULE_KIND_MAX ? kind_cn[kind] : NULL;
}

int catalogue_rule_kind_parse(const char *s) {
  if (!s) return 0;
  for (int k = 1; k <= CATALOGUE_RULE_KIND_MAX; k++)
    if (strcmp(s, kind_names[k]) == 0 || strcmp(s, kind_cn[k]) == 0) return k;
  return 0;
}

const char *catalogue_achievement_kind_name(int kind) {
  static const char *const n[] = {NULL, "academic_course", "vocational_qualification",
                                  "vocational_skill_level", "non_formal", "cultural_leisure"};
  return kind >= 1 && kind <= 5 ? n[kind] : NULL;
}

void catalogue_version(const cb_crypto *crypto, const void *bytes, size_t len,
                       uint8_t out[CB_HASH_BYTES]) {
  static const uint8_t zero = 0;
  cb_iov parts[3] = {{CATALOGUE_VERSION_TAG, strlen(CATALOGUE_VERSION_TAG)},
                     {&zero, 1},
                     {bytes, len}};
  crypto->hashv(crypto->ctx, parts, 3, out);
}

void catalogue_version_hex(const uint8_t v[CB_HASH_BYTES], char out[2 * CB_HASH_BYTES + 1]) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < CB_HASH_BYTES; i++) {
    out[2 * i] = hex[v[i] >> 4];
    out[2 * i + 1] = hex[v[i] & 15];
  }
  out[2 * CB_HASH_BYTES] = '\0';
}
