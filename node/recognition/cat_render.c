/* Catalogue objects as (field, value) pairs, for `catalogue show` and
 * `catalogue diff` (one rendering, so what show prints is what diff
 * compares). Values name codes and, beside them, names. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cat_internal.h"

void cat_obj_free(struct cat_obj *o) {
  free(o->key);
  for (size_t i = 0; i < o->n; i++) free(o->kv[i].value);
  memset(o, 0, sizeof *o);
}

static char *vfmt(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vfmt(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

static void set_key(struct cat_obj *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_key(struct cat_obj *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  o->key = vfmt(fmt, ap);
  va_end(ap);
  if (!o->key) o->oom = 1;
}

static void kv(struct cat_obj *o, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kv(struct cat_obj *o, const char *field, const char *fmt, ...) {
  if (o->n >= CAT_OBJ_MAX_FIELDS) return;
  va_list ap;
  va_start(ap, fmt);
  char *v = vfmt(fmt, ap);
  va_end(ap);
  if (!v) {
    o->oom = 1;
    return;
  }
  o->kv[o->n++] = (struct cat_kv){field, v, 0};
}

/* A list field built in a text buffer, one item per line. */
static void kv_text(struct cat_obj *o, const char *field, struct catalogue_text *t, int list) {
  if (t->oom) o->oom = 1;
  if (o->n >= CAT_OBJ_MAX_FIELDS || t->oom) {
    catalogue_text_free(t);
    return;
  }
  char *v = t->s ? t->s : strdup("");
  if (!v) {
    o->oom = 1;
    return;
  }
  o->kv[o->n++] = (struct cat_kv){field, v, list};
  t->s = NULL;
  catalogue_text_free(t);
}

static void opt(struct cat_obj *o, const char *field, const char *v) {
  if (v && *v) kv(o, field, "%s", v);
}

static const char *level_name(const struct catalogue *c, uint32_t scale, uint32_t lv) {
  if (scale == CATALOGUE_NONE || lv == CATALOGUE_NONE) return "?";
  return c->scales[scale].levels[lv];
}

static void credits(char *buf, int64_t milli) { catalogue_format_milli(milli, buf, 32); }

void cat_render_scale(const struct catalogue *c, uint32_t i, struct cat_obj *o) {
  const struct catalogue_scale *s = &c->scales[i];
  set_key(o, "%s", s->id);
  kv(o, "name", "%s", s->name);
  struct catalogue_text t = {0};
  cat_text_list(&t, s->levels, s->nlevels, " < ");
  kv_text(o, "levels", &t, 0);
  for (uint32_t j = 0; j < s->naliases; j++)
    catalogue_text_printf(&t, "%s%s = %s", j ? "\n" : "", s->alias_names[j],
                          s->levels[s->alias_levels[j]]);
  if (s->naliases) kv_text(o, "aliases", &t, 1);
  opt(o, "comment", s->note);
}

void cat_render_flevel(const struct catalogue *c, uint32_t i, struct cat_obj *o) {
  const struct catalogue_flevel *f = &c->flevels[i];
  set_key(o, "%s", f->id);
  kv(o, "name", "%s", f->name);
  struct catalogue_text t = {0};
  for (uint32_t j = 0; j < f->nmembers; j++)
    catalogue_text_printf(&t, "%s%s %s", j ? "\n" : "", c->scales[f->member_scale[j]].id,
                          c->scales[f->member_scale[j]].levels[f->member_level[j]]);
  kv_text(o, "members", &t, 1);
  opt(o, "comment", f->note);
}

void cat_render_scores(const struct catalogue *c, struct cat_obj *o) {
  char a[32], b[32], p[32];
  credits(a, c->scores.min_milli);
  credits(b, c->scores.max_milli);
  credits(p, c->scores.pass_milli);
  set_key(o, "scores");
  kv(o, "range", "%s..%s", a, b);
  kv(o, "pass", "%s", p);
  struct catalogue_text t = {0};
  for (uint32_t j = 0; j < c->scores.ngrades; j++) {
    const struct catalogue_grade *g = &c->scores.grades[j];
    credits(a, g->value_milli);
    catalogue_text_printf(&t, "%s%s = %s", j ? "\n" : "", g->name, a);
    if (g->naliases) {
      catalogue_text_printf(&t, " (");
      cat_text_list(&t, g->aliases, g->naliases, ", ");
      catalogue_text_printf(&t, ")");
    }
  }
  kv_text(o, "grades", &t, 1);
}

void cat_render_institution(const struct catalogue *c, uint32_t i, struct cat_obj *o) {
  const struct catalogue_institution *in = &c->institutions[i];
  set_key(o, "%s", in->code);
  kv(o, "name", "%s", in->name);
  kv(o, "province", "%s", in->province);
  struct catalogue_text t = {0};
  cat_text_list(&t, in->aliases, in->naliases, "\n");
  if (in->naliases) kv_text(o, "aliases", &t, 1);
  opt(o, "comment", in->note);
}

void cat_render_programme(const struct catalogue *c, uint32_t i, struct cat_obj *o) {
  const struct catalogue_programme *p = &c->programmes[i];
  char a[32];
  set_key(o, "%s/%s", c->institutions[p->institution].code, p->code);
  kv(o, "name", "%s", p->name);
  if (p->total_credits_milli) {
    credits(a, p->total_credits_milli);
    kv(o, "level", "%s", level_name(c, c->programme_scale, p->level));
    kv(o, "total_credits", "%s", a);
  }
  struct catalogue_text t = {0};
  for (uint32_t j = 0; j < p->ncourses; j++) {
    const struct catalogue_course *co = &c->courses[p->courses[j]];
    credits(a, co->credits_milli);
    catalogue_text_printf(&t, "%s%s %s %s", j ? "\n" : "", co->code, co->name, a);
  }
  kv_text(o, "courses", &t, 1);
  opt(o, "comment", p->note);
}

void cat_render_certificate(const struct catalogue *c, uint32_t i, struct cat_obj *o) {
  const struct catalogue_certificate *ce = &c->certificates[i];
  set_key(o, "%s", ce->code);
  kv(o, "name", "%s", ce->name);
  kv(o, "kind", "%s", catalogue_achievement_kind_name(ce->kind));
  kv(o, "scale", "%s", c->scales[ce->scale].id);
  struct catalogue_text t = {0};
  for (uint32_t j = 0; j < ce->nlevels; j++)
    catalogue_text_printf(&t, "%s%s", j ? " " : "", c->scales[ce->scale].levels[ce->levels[j]]);
  kv_text(o, "levels", &t, 0);
  cat_text_list(&t, ce->aliases, ce->naliases, "\n");
  if (ce->naliases) kv_text(o, "aliases", &t, 1);
  for (uint32_t j = 0; j < ce->nissuers; j++)
    catalogue_text_printf(&t, "%s%s", j ? "\n" : "", c->institutions[ce->issuers[j]].code);
  kv_text(o, "issuers", &t, 1);
  opt(o, "comment", ce->note);
}

static void course_list(const struct catalogue *c, const uint32_t *v, uint32_t n,
                        struct catalogue_text *t) {
  char a[32];
  for (uint32_t j = 0; j < n; j++) {
    const struct catalogue_course *co = &c->courses[v[j]];
    credits(a, co->credits_milli);
    catalogue_text_printf(t, "%s%s %s %s", j ? "\n" : "", co->code, co->name, a);
  }
}

static void rule_validity(const struct catalogue_rule *r, struct cat_obj *o) {
  char a[16], b[16];
  catalogue_format_date(r->valid_from, a, sizeof a);
  if (r->valid_to) catalogue_format_date(r->valid_to, b, sizeof b);
  else snprintf(b, sizeof b, "open");
  kv(o, "valid", "%s .. %s", a, b);
}

static void rule_target(const struct catalogue *c, const struct catalogue_rule *r,
                        struct cat_obj *o) {
  if (r->target == CATALOGUE_NONE) return;
  const struct catalogue_programme *p = &c->programmes[r->target];
  char a[32];
  credits(a, p->total_credits_milli);
  kv(o, "target", "%s/%s %s (%s, %s credits)", c->institutions[p->institution].code, p->code,
     p->name, level_name(c, c->programme_scale, p->level), a);
}

void cat_render_rule(const struct catalogue *c, uint32_t i, struct cat_obj *o) {
  const struct catalogue_rule *r = &c->rules[i];
  char a[32], b[32];
  set_key(o, "%s", r->id);
  kv(o, "kind", "%s %s", catalogue_rule_kind_name(r->kind), catalogue_rule_kind_cn(r->kind));
  rule_validity(r, o);
  if (r->from != CATALOGUE_NONE)
    kv(o, "from", "%s %s", c->institutions[r->from].code, c->institutions[r->from].name);
  struct catalogue_text t = {0};
  if (r->nrequired) {
    course_list(c, r->required, r->nrequired, &t);
    kv_text(o, "courses", &t, 1);
  }
  if (r->min_score_text) kv(o, "min_score", "%s", r->min_score_text);
  if (r->req_certificate != CATALOGUE_NONE) {
    const struct catalogue_certificate *ce = &c->certificates[r->req_certificate];
    kv(o, "certificate", "%s %s at level %s or above", ce->code, ce->name,
       level_name(c, ce->scale, r->req_min_level));
  }
  if (r->max_age_years) kv(o, "max_age_years", "%u", r->max_age_years);
  rule_target(c, r, o);
  if (r->ngrants && r->kind != CATALOGUE_RULE_CREDIT_RECOGNISED) {
    course_list(c, r->grants, r->ngrants, &t);
    kv_text(o, "grants", &t, 1);
  }
  if (r->out_certificate != CATALOGUE_NONE) {
    const struct catalogue_certificate *ce = &c->certificates[r->out_certificate];
    kv(o, r->kind == CATALOGUE_RULE_CREDIT_RECOGNISED ? "exempts" : "eligible_for",
       "%s %s %s%s", ce->code, ce->name, level_name(c, ce->scale, r->out_level),
       r->kind == CATALOGUE_RULE_CREDIT_RECOGNISED ? " theory exam" : "");
  }
  if (r->cap_milli >= 0) {
    credits(a, r->cap_milli);
    if (r->kind == CATALOGUE_RULE_THROUGH_TRAIN && r->target != CATALOGUE_NONE) {
      credits(b, c->programmes[r->target].total_credits_milli);
      kv(o, "cap", "%s credits (at most %d%% of %s)", a, CATALOGUE_THROUGH_TRAIN_PERCENT, b);
    } else {
      kv(o, "cap", "%s credits", a);
    }
  }
  opt(o, "framework_override", r->framework_override);
  opt(o, "source", r->source);
  opt(o, "comment", r->note);
}
