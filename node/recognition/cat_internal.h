/* Private helpers of node/recognition/ (not installed anywhere else):
 * a bump arena, a fixed-size string hash map, the builder's state and the
 * catalogue's index. Pure C, libc only. */
#ifndef CB_CAT_INTERNAL_H
#define CB_CAT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "catalogue.h"

/* ------------------------------------------------------------ arena */

struct cat_arena_block;
struct cat_arena {
  struct cat_arena_block *head;
  size_t used, cap; /* of head */
};

void *cat_arena_alloc(struct cat_arena *a, size_t n); /* zeroed, 16-aligned */
char *cat_arena_strdup(struct cat_arena *a, const char *s); /* NULL → NULL */
/* Drops everything but keeps the first block (for reuse per request). */
void cat_arena_reset(struct cat_arena *a);
void cat_arena_free(struct cat_arena *a);

/* ------------------------------------------------------------ map
 * Open addressing, fixed capacity (twice the expected size, a power of
 * two): keys are (namespace, string), the string is borrowed. */

struct cat_slot {
  uint64_t hash;
  const char *key;
  uint32_t ns, val;
};

struct cat_map {
  uint32_t mask, n;
  struct cat_slot *slots;
};

int cat_map_init(struct cat_map *m, size_t expected);
void cat_map_free(struct cat_map *m);
/* The value, or CATALOGUE_NONE. */
uint32_t cat_map_get(const struct cat_map *m, uint32_t ns, const char *key);
/* Inserts; when the key exists returns its value and inserts nothing,
 * else returns CATALOGUE_NONE. The map must have room (init's size). */
uint32_t cat_map_put(struct cat_map *m, uint32_t ns, const char *key, uint32_t val);

/* ------------------------------------------------------------ index */

struct cat_key {
  uint32_t space, a, b;
};
enum { CAT_SPACE_COURSE = 1, CAT_SPACE_CERT = 2, CAT_SPACE_EXEMPT = 3 };

struct catalogue_index {
  struct cat_map inst, cert, course, prog, rule;
  struct cat_key *keys; /* sorted */
  uint32_t *key_rules;  /* parallel to keys */
  size_t nkeys;
};

int cat_key_cmp(const struct cat_key *x, const struct cat_key *y);
int cat_index_build(struct catalogue *c);
void cat_index_free(struct catalogue_index *ix);

/* ------------------------------------------------------------ builder */

struct cat_vec {
  void *v;
  size_t n, cap;
};
/* Appends one zeroed element of size sz; NULL when out of memory or at
 * CATALOGUE_MAX_ITEMS. */
void *cat_vec_push(struct cat_vec *vec, size_t sz);

struct catalogue_builder {
  struct cat_arena *arena;
  int oom;
  int have_header, have_scores, have_framework_note;
  struct catalogue_header_spec header;
  struct catalogue_scores_spec scores;
  const char *framework_note;
  struct cat_vec scales, grades, flevels, institutions, programmes, certificates, rules;
};


/* ------------------------------------------------------------ render
 * Each catalogue object as (field, value) pairs: what show prints and
 * what diff compares. A list value holds one item per line. */

#define CAT_OBJ_MAX_FIELDS 24
struct cat_kv {
  const char *field;
  char *value;
  int list;
};
struct cat_obj {
  char *key;     /* "SH-U-OU/JD", a rule id... */
  struct cat_kv kv[CAT_OBJ_MAX_FIELDS];
  size_t n;
  int oom;
};
void cat_obj_free(struct cat_obj *o);
void cat_render_scale(const struct catalogue *c, uint32_t i, struct cat_obj *o);
void cat_render_flevel(const struct catalogue *c, uint32_t i, struct cat_obj *o);
void cat_render_scores(const struct catalogue *c, struct cat_obj *o);
void cat_render_institution(const struct catalogue *c, uint32_t i, struct cat_obj *o);
void cat_render_programme(const struct catalogue *c, uint32_t i, struct cat_obj *o);
void cat_render_certificate(const struct catalogue *c, uint32_t i, struct cat_obj *o);
void cat_render_rule(const struct catalogue *c, uint32_t i, struct cat_obj *o);

/* ------------------------------------------------------------ misc */

int cat_strcmp_p(const void *a, const void *b); /* qsort of const char * */
/* Appends "a, b, c" of a string list to a text. */
void cat_text_list(struct catalogue_text *t, const char *const *v, size_t n, const char *sep);

#endif
