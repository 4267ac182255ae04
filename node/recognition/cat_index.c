/* The catalogue's lookups, built once at seal so that a request never scans
 * the catalogue (spec/recognition.md §5): hash maps for codes and aliases,
 * and a sorted key array from (target programme, required course or
 * certificate) and from (exempted certificate, level) to rules. */
#include <stdlib.h>
#include <string.h>

#include "cat_internal.h"

int cat_key_cmp(const struct cat_key *x, const struct cat_key *y) {
  if (x->space != y->space) return x->space < y->space ? -1 : 1;
  if (x->a != y->a) return x->a < y->a ? -1 : 1;
  if (x->b != y->b) return x->b < y->b ? -1 : 1;
  return 0;
}

struct key_rule {
  struct cat_key k;
  uint32_t rule;
};

static int key_rule_cmp(const void *x, const void *y) {
  const struct key_rule *a = x, *b = y;
  int k = cat_key_cmp(&a->k, &b->k);
  if (k) return k;
  return a->rule < b->rule ? -1 : a->rule > b->rule;
}

static size_t count_keys(const struct catalogue *c) {
  size_t n = 0;
  for (uint32_t i = 0; i < c->nrules; i++) {
    const struct catalogue_rule *r = &c->rules[i];
    if (r->kind == CATALOGUE_RULE_CREDIT_RECOGNISED) n++;
    else n += r->nrequired + (r->req_certificate != CATALOGUE_NONE);
  }
  return n;
}

static int build_keys(struct catalogue *c, struct catalogue_index *ix) {
  size_t n = count_keys(c);
  struct key_rule *kr = malloc((n ? n : 1) * sizeof *kr);
  ix->keys = malloc((n ? n : 1) * sizeof *ix->keys);
  ix->key_rules = malloc((n ? n : 1) * sizeof *ix->key_rules);
  if (!kr || !ix->keys || !ix->key_rules) {
    free(kr);
    return -1;
  }
  size_t k = 0;
  for (uint32_t i = 0; i < c->nrules; i++) {
    const struct catalogue_rule *r = &c->rules[i];
    if (r->kind == CATALOGUE_RULE_CREDIT_RECOGNISED) {
      kr[k++] = (struct key_rule){{CAT_SPACE_EXEMPT, r->out_certificate, r->out_level}, i};
      continue;
    }
    for (uint32_t j = 0; j < r->nrequired; j++)
      kr[k++] = (struct key_rule){{CAT_SPACE_COURSE, r->target, r->required[j]}, i};
    if (r->req_certificate != CATALOGUE_NONE)
      kr[k++] = (struct key_rule){{CAT_SPACE_CERT, r->target, r->req_certificate}, i};
  }
  qsort(kr, k, sizeof *kr, key_rule_cmp);
  for (size_t j = 0; j < k; j++) {
    ix->keys[j] = kr[j].k;
    ix->key_rules[j] = kr[j].rule;
  }
  ix->nkeys = k;
  free(kr);
  return 0;
}

static int build_maps(struct catalogue *c, struct catalogue_index *ix) {
  size_t ninst = c->ninstitutions, ncert = c->ncertificates;
  for (uint32_t i = 0; i < c->ninstitutions; i++) ninst += c->institutions[i].naliases;
  for (uint32_t i = 0; i < c->ncertificates; i++) ncert += c->certificates[i].naliases;
  if (cat_map_init(&ix->inst, ninst) || cat_map_init(&ix->cert, ncert) ||
      cat_map_init(&ix->course, c->ncourses) || cat_map_init(&ix->prog, c->nprogrammes) ||
      cat_map_init(&ix->rule, c->nrules))
    return -1;
  for (uint32_t i = 0; i < c->ninstitutions; i++) {
    const struct catalogue_institution *in = &c->institutions[i];
    cat_map_put(&ix->inst, 0, in->code, i);
    for (uint32_t j = 0; j < in->naliases; j++) cat_map_put(&ix->inst, 0, in->aliases[j], i);
  }
  for (uint32_t i = 0; i < c->ncertificates; i++) {
    const struct catalogue_certificate *ce = &c->certificates[i];
    cat_map_put(&ix->cert, 0, ce->code, i);
    for (uint32_t j = 0; j < ce->naliases; j++) cat_map_put(&ix->cert, 0, ce->aliases[j], i);
  }
  for (uint32_t i = 0; i < c->ncourses; i++)
    cat_map_put(&ix->course, c->courses[i].institution, c->courses[i].code, i);
  for (uint32_t i = 0; i < c->nprogrammes; i++)
    cat_map_put(&ix->prog, c->programmes[i].institution, c->programmes[i].code, i);
  for (uint32_t i = 0; i < c->nrules; i++) cat_map_put(&ix->rule, 0, c->rules[i].id, i);
  return 0;
}

int cat_index_build(struct catalogue *c) {
  struct catalogue_index *ix = calloc(1, sizeof *ix);
  if (!ix) return -1;
  c->index = ix;
  if (build_maps(c, ix) != 0 || build_keys(c, ix) != 0) return -1;
  return 0;
}

void cat_index_free(struct catalogue_index *ix) {
  cat_map_free(&ix->inst);
  cat_map_free(&ix->cert);
  cat_map_free(&ix->course);
  cat_map_free(&ix->prog);
  cat_map_free(&ix->rule);
  free(ix->keys);
  free(ix->key_rules);
  free(ix);
}

/* ------------------------------------------------------------ lookups */

uint32_t catalogue_institution_find(const struct catalogue *c, const char *code) {
  return cat_map_get(&c->index->inst, 0, code);
}

uint32_t catalogue_course_find(const struct catalogue *c, uint32_t inst, const char *code) {
  if (inst == CATALOGUE_NONE) return CATALOGUE_NONE;
  return cat_map_get(&c->index->course, inst, code);
}

uint32_t catalogue_programme_find(const struct catalogue *c, uint32_t inst, const char *code) {
  if (inst == CATALOGUE_NONE) return CATALOGUE_NONE;
  return cat_map_get(&c->index->prog, inst, code);
}

uint32_t catalogue_certificate_find(const struct catalogue *c, const char *code) {
  return cat_map_get(&c->index->cert, 0, code);
}

uint32_t catalogue_rule_find(const struct catalogue *c, const char *id) {
  return cat_map_get(&c->index->rule, 0, id);
}

static const uint32_t *rules_for(const struct catalogue *c, struct cat_key key, size_t *n) {
  const struct catalogue_index *ix = c->index;
  size_t lo = 0, hi = ix->nkeys;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cat_key_cmp(&ix->keys[mid], &key) < 0) lo = mid + 1;
    else hi = mid;
  }
  size_t end = lo;
  while (end < ix->nkeys && cat_key_cmp(&ix->keys[end], &key) == 0) end++;
  *n = end - lo;
  return ix->key_rules + lo;
}

const uint32_t *catalogue_rules_by_course(const struct catalogue *c, uint32_t prog,
                                          uint32_t course, size_t *n) {
  return rules_for(c, (struct cat_key){CAT_SPACE_COURSE, prog, course}, n);
}

const uint32_t *catalogue_rules_by_certificate(const struct catalogue *c, uint32_t prog,
                                               uint32_t cert, size_t *n) {
  return rules_for(c, (struct cat_key){CAT_SPACE_CERT, prog, cert}, n);
}

const uint32_t *catalogue_rules_exempting(const struct catalogue *c, uint32_t cert,
                                          uint32_t level, size_t *n) {
  return rules_for(c, (struct cat_key){CAT_SPACE_EXEMPT, cert, level}, n);
}
