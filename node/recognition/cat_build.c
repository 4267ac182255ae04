/* The catalogue builder: copies what a reader found into the arena, as
 * text. Nothing is checked here; catalogue_seal (cat_seal.c) checks it
 * all, so that every problem of a file is reported at once. */
#include <stdlib.h>
#include <string.h>

#include "cat_internal.h"

struct catalogue_builder *catalogue_builder_new(void) {
  struct catalogue_builder *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->arena = calloc(1, sizeof *b->arena);
  if (!b->arena) {
    free(b);
    return NULL;
  }
  return b;
}

void catalogue_builder_free(struct catalogue_builder *b) {
  if (!b) return;
  struct cat_vec *vs[] = {&b->scales,     &b->grades,       &b->flevels, &b->institutions,
                          &b->programmes, &b->certificates, &b->rules};
  for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) free(vs[i]->v);
  if (b->arena) {
    cat_arena_free(b->arena);
    free(b->arena);
  }
  free(b);
}

/* Copies a string into the arena; a failed copy marks the builder. */
static const char *dup(struct catalogue_builder *b, const char *s) {
  if (!s) return NULL;
  const char *d = cat_arena_strdup(b->arena, s);
  if (!d) b->oom = 1;
  return d;
}

static struct catalogue_strs dup_strs(struct catalogue_builder *b, struct catalogue_strs in) {
  struct catalogue_strs out = {NULL, 0};
  if (!in.n) return out;
  const char **v = cat_arena_alloc(b->arena, in.n * sizeof *v);
  if (!v) {
    b->oom = 1;
    return out;
  }
  for (size_t i = 0; i < in.n; i++) v[i] = dup(b, in.v[i] ? in.v[i] : "");
  out.v = v;
  out.n = in.n;
  return out;
}

static void *push(struct catalogue_builder *b, struct cat_vec *vec, size_t sz) {
  void *p = cat_vec_push(vec, sz);
  if (!p) b->oom = 1;
  return p;
}

#define DUP(field) d->field = dup(b, s->field)
#define DUPS(field) d->field = dup_strs(b, s->field)

int catalogue_builder_header(struct catalogue_builder *b, const struct catalogue_header_spec *s) {
  struct catalogue_header_spec *d = &b->header;
  DUP(format);
  DUP(title);
  DUP(comment);
  DUP(source);
  DUP(programme_scale);
  b->have_header = 1;
  return b->oom ? -1 : 0;
}

int catalogue_builder_scale(struct catalogue_builder *b, const struct catalogue_scale_spec *s) {
  struct catalogue_scale_spec *d = push(b, &b->scales, sizeof *d);
  if (!d) return -1;
  DUP(path);
  DUP(id);
  DUP(name);
  DUP(comment);
  DUPS(levels);
  DUPS(alias_names);
  DUPS(alias_levels);
  return b->oom ? -1 : 0;
}

int catalogue_builder_scores(struct catalogue_builder *b, const struct catalogue_scores_spec *s) {
  struct catalogue_scores_spec *d = &b->scores;
  DUP(path);
  DUP(min);
  DUP(max);
  DUP(pass);
  DUP(comment);
  b->have_scores = 1;
  return b->oom ? -1 : 0;
}

int catalogue_builder_grade(struct catalogue_builder *b, const struct catalogue_grade_spec *s) {
  struct catalogue_grade_spec *d = push(b, &b->grades, sizeof *d);
  if (!d) return -1;
  DUP(path);
  DUP(name);
  DUP(value);
  DUPS(aliases);
  return b->oom ? -1 : 0;
}

int catalogue_builder_framework_note(struct catalogue_builder *b, const char *comment) {
  b->framework_note = dup(b, comment);
  b->have_framework_note = 1;
  return b->oom ? -1 : 0;
}

int catalogue_builder_flevel(struct catalogue_builder *b, const struct catalogue_flevel_spec *s) {
  struct catalogue_flevel_spec *d = push(b, &b->flevels, sizeof *d);
  if (!d) return -1;
  DUP(path);
  DUP(id);
  DUP(name);
  DUP(comment);
  DUPS(member_scales);
  DUPS(member_levels);
  return b->oom ? -1 : 0;
}

int catalogue_builder_institution(struct catalogue_builder *b,
                                  const struct catalogue_institution_spec *s) {
  struct catalogue_institution_spec *d = push(b, &b->institutions, sizeof *d);
  if (!d) return -1;
  DUP(path);
  DUP(code);
  DUP(name);
  DUP(province);
  DUP(comment);
  DUPS(aliases);
  return b->oom ? -1 : 0;
}

int catalogue_builder_programme(struct catalogue_builder *b,
                                const struct catalogue_programme_spec *s) {
  struct catalogue_programme_spec *d = push(b, &b->programmes, sizeof *d);
  if (!d) return -1;
  DUP(path);
  DUP(institution);
  DUP(code);
  DUP(name);
  DUP(level);
  DUP(total_credits);
  DUP(comment);
  if (s->ncourses > CATALOGUE_MAX_ITEMS) return b->oom = 1, -1;
  if (s->ncourses) {
    struct catalogue_course_spec *c = cat_arena_alloc(b->arena, s->ncourses * sizeof *c);
    if (!c) return b->oom = 1, -1;
    for (size_t i = 0; i < s->ncourses; i++) {
      c[i].path = dup(b, s->courses[i].path);
      c[i].code = dup(b, s->courses[i].code);
      c[i].name = dup(b, s->courses[i].name);
      c[i].credits = dup(b, s->courses[i].credits);
    }
    d->courses = c;
    d->ncourses = s->ncourses;
  }
  return b->oom ? -1 : 0;
}

int catalogue_builder_certificate(struct catalogue_builder *b,
                                  const struct catalogue_certificate_spec *s) {
  struct catalogue_certificate_spec *d = push(b, &b->certificates, sizeof *d);
  if (!d) return -1;
  DUP(path);
  DUP(code);
  DUP(name);
  DUP(kind);
  DUP(scale);
  DUP(comment);
  DUPS(aliases);
  DUPS(issuers);
  DUPS(levels);
  return b->oom ? -1 : 0;
}

int catalogue_builder_rule(struct catalogue_builder *b, const struct catalogue_rule_spec *s) {
  struct catalogue_rule_spec *d = push(b, &b->rules, sizeof *d);
  if (!d) return -1;
  DUP(path);
  DUP(id);
  DUP(kind);
  DUP(valid_from);
  DUP(valid_to);
  DUP(comment);
  DUP(source);
  DUP(max_age_years);
  DUP(min_score);
  DUP(max_credits);
  DUP(from);
  DUPS(courses);
  DUP(certificate);
  DUP(min_level);
  DUP(target);
  DUPS(grants);
  d->grants_present = s->grants_present;
  DUP(exempt_certificate);
  DUP(exempt_level);
  DUP(eligible_certificate);
  DUP(eligible_level);
  DUP(framework_override);
  return b->oom ? -1 : 0;
}
