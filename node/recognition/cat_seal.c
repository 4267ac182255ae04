/* catalogue_seal: resolves every reference of what the builder holds and
 * checks it against spec/recognition.md §2-§3, reporting EVERY problem by
 * path. Nothing is returned unless there is no problem at all. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cat_internal.h"

struct seal {
  struct catalogue_builder *b;
  struct catalogue *c;
  struct catalogue_errors *errs;
  struct cat_arena *a;
  int oom;
  struct cat_map scale_ids, flevel_ids;
};

#define PATHMAX 320

static void err(struct seal *st, const char *path, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err(struct seal *st, const char *path, const char *field, const char *fmt, ...) {
  char p[PATHMAX], msg[1024];
  if (field) snprintf(p, sizeof p, "%s.%s", path ? path : "", field);
  else snprintf(p, sizeof p, "%s", path ? path : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (catalogue_errors_add(st->errs, p, "%s", msg) != 0) st->oom = 1;
}

static void *alloc(struct seal *st, size_t n) {
  void *p = cat_arena_alloc(st->a, n ? n : 1);
  if (!p) st->oom = 1;
  return p;
}

static uint32_t *alloc_u32(struct seal *st, size_t n) { return alloc(st, n * sizeof(uint32_t)); }

/* Text checks: required (1..max) or optional (absent or 0..max). */
static int need_text(struct seal *st, const char *path, const char *field, const char *v,
                     size_t max) {
  if (!v) {
    err(st, path, field, "missing");
    return 0;
  }
  if (!catalogue_text_ok(v, max, 0)) {
    err(st, path, field, "must be 1..%zu bytes of printable UTF-8", max);
    return 0;
  }
  return 1;
}

static void opt_text(struct seal *st, const char *path, const char *field, const char *v,
                     size_t max) {
  if (v && !catalogue_text_ok(v, max, 1))
    err(st, path, field, "must be at most %zu bytes of printable UTF-8", max);
}

static int code_chars_ok(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p == ' ' || *p == '/') return 0;
  return 1;
}

/* A code: printable, at most CATALOGUE_CODE_MAX, no space or '/'. */
static int need_code(struct seal *st, const char *path, const char *field, const char *v) {
  if (!need_text(st, path, field, v, CATALOGUE_CODE_MAX)) return 0;
  if (!code_chars_ok(v)) {
    err(st, path, field, "'%s' may not contain a space or '/'", v);
    return 0;
  }
  return 1;
}

static void idx_path(char *buf, size_t cap, const char *field, size_t i) {
  snprintf(buf, cap, "%s[%zu]", field, i);
}

/* ------------------------------------------------------------ header */

static void seal_header(struct seal *st) {
  struct catalogue_builder *b = st->b;
  struct catalogue *c = st->c;
  const struct catalogue_header_spec *h = &b->header;
  if (!b->have_header || !h->format) {
    err(st, "format", NULL, "missing (the first line of a catalogue says \"format\": \"%s\")",
        CATALOGUE_FORMAT);
  } else if (strcmp(h->format, CATALOGUE_FORMAT) != 0) {
    err(st, "format", NULL, "unsupported format '%s' (this node reads %s)", h->format,
        CATALOGUE_FORMAT);
  }
  opt_text(st, "title", NULL, h->title, CATALOGUE_NAME_MAX);
  opt_text(st, "comment", NULL, h->comment, CATALOGUE_NOTE_MAX);
  opt_text(st, "source", NULL, h->source, CATALOGUE_NOTE_MAX);
  c->format = h->format;
  c->title = h->title;
  c->note = h->comment;
  c->source = h->source;
}

/* ------------------------------------------------------------ scales */

static void seal_scale(struct seal *st, uint32_t si, const struct catalogue_scale_spec *s) {
  struct catalogue_scale *d = &st->c->scales[si];
  d->path = s->path;
  d->id = s->id;
  d->name = s->name;
  d->note = s->comment;
  if (need_code(st, s->path, "id", s->id)) {
    uint32_t prev = cat_map_put(&st->scale_ids, 0, s->id, si);
    if (prev != CATALOGUE_NONE)
      err(st, s->path, "id", "duplicate scale id %s (also %s)", s->id,
          st->c->scales[prev].path);
  }
  need_text(st, s->path, "name", s->name, CATALOGUE_NAME_MAX);
  opt_text(st, s->path, "comment", s->comment, CATALOGUE_NOTE_MAX);
  if (s->levels.n == 0 || s->levels.n > CATALOGUE_MAX_LIST)
    err(st, s->path, "levels", "a scale has 1..%u levels", CATALOGUE_MAX_LIST);
  d->nlevels = (uint32_t)s->levels.n;
  d->levels = (const char **)s->levels.v;
  d->framework = alloc_u32(st, s->levels.n);
  for (size_t i = 0; i < s->levels.n && d->framework; i++) {
    char f[64];
    idx_path(f, sizeof f, "levels", i);
    d->framework[i] = CATALOGUE_NONE;
    if (!need_text(st, s->path, f, s->levels.v[i], CATALOGUE_LEVEL_MAX)) continue;
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->levels.v[i], s->levels.v[j]) == 0)
        err(st, s->path, f, "level %s listed twice", s->levels.v[i]);
  }
  assert(s->alias_names.n == s->alias_levels.n);
  d->naliases = (uint32_t)s->alias_names.n;
  d->alias_names = (const char **)s->alias_names.v;
  d->alias_levels = alloc_u32(st, s->alias_names.n);
  for (size_t i = 0; i < s->alias_names.n && d->alias_levels; i++) {
    char f[96];
    snprintf(f, sizeof f, "aliases.%s", s->alias_names.v[i]);
    d->alias_levels[i] = 0;
    if (!need_text(st, s->path, f, s->alias_names.v[i], CATALOGUE_LEVEL_MAX)) continue;
    uint32_t lv = CATALOGUE_NONE;
    for (uint32_t j = 0; j < d->nlevels; j++) {
      if (strcmp(d->levels[j], s->alias_names.v[i]) == 0)
        err(st, s->path, f, "an alias may not be a level name of its scale");
      if (strcmp(d->levels[j], s->alias_levels.v[i]) == 0) lv = j;
    }
    if (lv == CATALOGUE_NONE)
      err(st, s->path, f, "stands for unknown level %s", s->alias_levels.v[i]);
    else d->alias_levels[i] = lv;
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->alias_names.v[i], s->alias_names.v[j]) == 0)
        err(st, s->path, f, "alias listed twice");
  }
}

static void seal_scales(struct seal *st) {
  struct catalogue_builder *b = st->b;
  size_t n = b->scales.n;
  if (cat_map_init(&st->scale_ids, n) != 0) {
    st->oom = 1;
    return;
  }
  st->c->scales = alloc(st, n * sizeof *st->c->scales);
  if (!st->c->scales) return;
  st->c->nscales = (uint32_t)n;
  const struct catalogue_scale_spec *v = b->scales.v;
  for (size_t i = 0; i < n; i++) seal_scale(st, (uint32_t)i, &v[i]);
  if (n == 0) err(st, "level_scales", NULL, "at least one level scale is needed");
}

uint32_t catalogue_level_find(const struct catalogue *c, uint32_t scale, const char *text) {
  if (scale >= c->nscales || !text) return CATALOGUE_NONE;
  const struct catalogue_scale *s = &c->scales[scale];
  for (uint32_t i = 0; i < s->nlevels; i++)
    if (strcmp(s->levels[i], text) == 0) return i;
  for (uint32_t i = 0; i < s->naliases; i++)
    if (strcmp(s->alias_names[i], text) == 0) return s->alias_levels[i];
  return CATALOGUE_NONE;
}

static void scale_levels_text(const struct catalogue_scale *s, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (uint32_t i = 0; i < s->nlevels && used < cap; i++) {
    int n = snprintf(buf + used, cap - used, "%s%s", i ? " " : "", s->levels[i]);
    if (n < 0) break;
    used += (size_t)n;
  }
}

/* Resolves a level text in a scale, reporting an unknown one. */
static uint32_t need_level(struct seal *st, const char *path, const char *field, uint32_t scale,
                           const char *text) {
  if (!text) {
    err(st, path, field, "missing");
    return CATALOGUE_NONE;
  }
  if (scale == CATALOGUE_NONE) return CATALOGUE_NONE; /* already reported */
  uint32_t lv = catalogue_level_find(st->c, scale, text);
  if (lv == CATALOGUE_NONE) {
    char lvls[512];
    scale_levels_text(&st->c->scales[scale], lvls, sizeof lvls);
    err(st, path, field, "unknown level %s in scale %s (%s)", text, st->c->scales[scale].id,
        lvls);
  }
  return lv;
}

static uint32_t find_scale(struct seal *st, const char *path, const char *field,
                           const char *id) {
  if (!id) {
    err(st, path, field, "missing");
    return CATALOGUE_NONE;
  }
  uint32_t s = cat_map_get(&st->scale_ids, 0, id);
  if (s == CATALOGUE_NONE) err(st, path, field, "unknown scale %s", id);
  return s;
}

/* ------------------------------------------------------------ scores */

#define SCORE_MAX_MILLI 1000000000 /* a million points */

static int grade_cmp(const void *x, const void *y) {
  const struct catalogue_grade *a = x, *b = y;
  if (a->value_milli != b->value_milli) return a->value_milli < b->value_milli ? -1 : 1;
  return strcmp(a->name, b->name);
}

static void seal_scores(struct seal *st) {
  struct catalogue_builder *b = st->b;
  struct catalogue_scores *d = &st->c->scores;
  const struct catalogue_scores_spec *s = &b->scores;
  const char *path = s->path ? s->path : "scores";
  if (!b->have_scores) {
    err(st, "scores", NULL, "missing (numeric range, pass mark and grades)");
    return;
  }
  d->note = s->comment;
  opt_text(st, path, "comment", s->comment, CATALOGUE_NOTE_MAX);
  const char *f[3] = {"min", "max", "pass"};
  const char *v[3] = {s->min, s->max, s->pass};
  int64_t *o[3] = {&d->min_milli, &d->max_milli, &d->pass_milli};
  int ok = 1;
  for (int i = 0; i < 3; i++) {
    if (!v[i]) err(st, path, f[i], "missing"), ok = 0;
    else if (catalogue_parse_milli(v[i], SCORE_MAX_MILLI, o[i]) != 0)
      err(st, path, f[i], "'%s' is not a number of points (at most 3 decimals)", v[i]), ok = 0;
  }
  if (ok && !(d->min_milli < d->max_milli && d->pass_milli >= d->min_milli &&
              d->pass_milli <= d->max_milli))
    err(st, path, "pass", "min < max and min <= pass <= max are needed");
  size_t n = b->grades.n;
  const struct catalogue_grade_spec *g = b->grades.v;
  d->grades = alloc(st, n * sizeof *d->grades);
  if (!d->grades) return;
  d->ngrades = (uint32_t)n;
  struct cat_map names;
  if (cat_map_init(&names, n * 8 + 8) != 0) {
    st->oom = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    struct catalogue_grade *dg = &d->grades[i];
    dg->name = g[i].name ? g[i].name : "";
    dg->aliases = (const char **)g[i].aliases.v;
    dg->naliases = (uint32_t)g[i].aliases.n;
    const char *all[CATALOGUE_MAX_LIST + 1];
    size_t nall = 0;
    if (need_text(st, g[i].path, "name", g[i].name, CATALOGUE_LEVEL_MAX)) all[nall++] = g[i].name;
    for (size_t j = 0; j < g[i].aliases.n && nall <= CATALOGUE_MAX_LIST; j++) {
      char f2[64];
      idx_path(f2, sizeof f2, "aliases", j);
      if (need_text(st, g[i].path, f2, g[i].aliases.v[j], CATALOGUE_LEVEL_MAX))
        all[nall++] = g[i].aliases.v[j];
    }
    for (size_t j = 0; j < nall; j++) {
      int64_t dummy;
      if (catalogue_parse_milli(all[j], SCORE_MAX_MILLI, &dummy) == 0)
        err(st, g[i].path, "name", "grade '%s' reads as a number: a grade must be a word",
            all[j]);
      if (names.n < names.mask && cat_map_put(&names, 0, all[j], (uint32_t)i) != CATALOGUE_NONE)
        err(st, g[i].path, "name", "grade name or alias '%s' used twice", all[j]);
    }
    if (!g[i].value) err(st, g[i].path, "value", "missing");
    else if (catalogue_parse_milli(g[i].value, SCORE_MAX_MILLI, &dg->value_milli) != 0)
      err(st, g[i].path, "value", "'%s' is not a number of points", g[i].value);
    else if (ok && (dg->value_milli < d->min_milli || dg->value_milli > d->max_milli))
      err(st, g[i].path, "value", "%s is outside the numeric range %s..%s", g[i].value, s->min,
          s->max);
  }
  cat_map_free(&names);
  qsort(d->grades, n, sizeof *d->grades, grade_cmp);
}

int catalogue_score_value(const struct catalogue *c, const char *text, int64_t *milli) {
  if (!text || !*text) return -1;
  int64_t v;
  if (catalogue_parse_milli(text, SCORE_MAX_MILLI, &v) == 0) {
    if (v < c->scores.min_milli || v > c->scores.max_milli) return -1;
    *milli = v;
    return 0;
  }
  for (uint32_t i = 0; i < c->scores.ngrades; i++) {
    const struct catalogue_grade *g = &c->scores.grades[i];
    int hit = strcmp(g->name, text) == 0;
    for (uint32_t j = 0; !hit && j < g->naliases; j++) hit = strcmp(g->aliases[j], text) == 0;
    if (hit) {
      *milli = g->value_milli;
      return 0;
    }
  }
  return -1;
}

/* ------------------------------------------------------------ framework */

static void seal_framework(struct seal *st) {
  struct catalogue_builder *b = st->b;
  struct catalogue *c = st->c;
  c->framework_note = b->framework_note;
  opt_text(st, "framework", "comment", b->framework_note, CATALOGUE_NOTE_MAX);
  size_t n = b->flevels.n;
  const struct catalogue_flevel_spec *v = b->flevels.v;
  c->flevels = alloc(st, n * sizeof *c->flevels);
  if (!c->flevels || cat_map_init(&st->flevel_ids, n) != 0) {
    st->oom = 1;
    return;
  }
  c->nflevels = (uint32_t)n;
  for (size_t i = 0; i < n; i++) {
    struct catalogue_flevel *d = &c->flevels[i];
    const struct catalogue_flevel_spec *s = &v[i];
    d->id = s->id;
    d->name = s->name;
    d->note = s->comment;
    d->path = s->path;
    if (need_code(st, s->path, "id", s->id) &&
        cat_map_put(&st->flevel_ids, 0, s->id, (uint32_t)i) != CATALOGUE_NONE)
      err(st, s->path, "id", "duplicate framework level %s", s->id);
    need_text(st, s->path, "name", s->name, CATALOGUE_NAME_MAX);
    opt_text(st, s->path, "comment", s->comment, CATALOGUE_NOTE_MAX);
    assert(s->member_scales.n == s->member_levels.n);
    d->nmembers = (uint32_t)s->member_scales.n;
    d->member_scale = alloc_u32(st, d->nmembers);
    d->member_level = alloc_u32(st, d->nmembers);
    if (!d->member_scale || !d->member_level) return;
    for (uint32_t j = 0; j < d->nmembers; j++) {
      char f[96];
      snprintf(f, sizeof f, "members.%s", s->member_scales.v[j]);
      uint32_t sc = find_scale(st, s->path, f, s->member_scales.v[j]);
      uint32_t lv = need_level(st, s->path, f, sc, s->member_levels.v[j]);
      d->member_scale[j] = sc;
      d->member_level[j] = lv;
      if (sc == CATALOGUE_NONE || lv == CATALOGUE_NONE) continue;
      uint32_t *slot = &c->scales[sc].framework[lv];
      if (*slot != CATALOGUE_NONE && *slot != i)
        err(st, s->path, f, "level %s of scale %s is already in framework level %s",
            s->member_levels.v[j], s->member_scales.v[j], c->flevels[*slot].id);
      else *slot = (uint32_t)i;
    }
  }
  if (n == 0) err(st, "framework", NULL, "at least one framework level is needed (Figure 2)");
}

/* ------------------------------------------------------------ institutions */

struct order {
  const char *key;
  size_t i;
};

static int order_cmp(const void *x, const void *y) {
  const struct order *a = x, *b = y;
  int k = strcmp(a->key ? a->key : "", b->key ? b->key : "");
  if (k) return k;
  return a->i < b->i ? -1 : a->i > b->i;
}

static struct order *sorted(struct seal *st, size_t n, const void *v, size_t sz, size_t off) {
  struct order *o = malloc((n ? n : 1) * sizeof *o);
  if (!o) {
    st->oom = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    o[i].key = *(const char *const *)((const char *)v + i * sz + off);
    o[i].i = i;
  }
  qsort(o, n, sizeof *o, order_cmp);
  return o;
}

static int province_ok(const char *p) {
  size_t n = 0;
  for (; p[n]; n++)
    if (p[n] < 'a' || p[n] > 'z') return 0;
  return n >= 1 && n <= 8;
}

static void seal_institutions(struct seal *st, struct cat_map *inst) {
  struct catalogue_builder *b = st->b;
  struct catalogue *c = st->c;
  size_t n = b->institutions.n;
  const struct catalogue_institution_spec *v = b->institutions.v;
  size_t names = n;
  for (size_t i = 0; i < n; i++) names += v[i].aliases.n;
  if (cat_map_init(inst, names) != 0) {
    st->oom = 1;
    return;
  }
  struct order *o = sorted(st, n, v, sizeof *v, offsetof(struct catalogue_institution_spec, code));
  c->institutions = alloc(st, n * sizeof *c->institutions);
  if (!o || !c->institutions) {
    free(o);
    return;
  }
  c->ninstitutions = (uint32_t)n;
  for (size_t k = 0; k < n; k++) {
    const struct catalogue_institution_spec *s = &v[o[k].i];
    struct catalogue_institution *d = &c->institutions[k];
    d->code = s->code ? s->code : "";
    d->name = s->name;
    d->province = s->province;
    d->note = s->comment;
    d->path = s->path;
    d->aliases = (const char **)s->aliases.v;
    d->naliases = (uint32_t)s->aliases.n;
    if (need_code(st, s->path, "code", s->code)) {
      uint32_t prev = cat_map_put(inst, 0, s->code, (uint32_t)k);
      if (prev != CATALOGUE_NONE)
        err(st, s->path, "code", "%s already names %s (%s)", s->code,
            c->institutions[prev].code, c->institutions[prev].path);
    }
    need_text(st, s->path, "name", s->name, CATALOGUE_NAME_MAX);
    if (need_text(st, s->path, "province", s->province, 8) && !province_ok(s->province))
      err(st, s->path, "province", "'%s' is not a region id (1..8 lower-case letters: sh js zj ah)",
          s->province);
    opt_text(st, s->path, "comment", s->comment, CATALOGUE_NOTE_MAX);
    if (s->aliases.n > CATALOGUE_MAX_LIST)
      err(st, s->path, "aliases", "at most %u aliases", CATALOGUE_MAX_LIST);
  }
  /* Aliases after every code, so that a clash names the code's owner. */
  for (size_t k = 0; k < n; k++) {
    const struct catalogue_institution_spec *s = &v[o[k].i];
    for (size_t j = 0; j < s->aliases.n; j++) {
      char f[64];
      idx_path(f, sizeof f, "aliases", j);
      if (!need_code(st, s->path, f, s->aliases.v[j])) continue;
      uint32_t prev = cat_map_put(inst, 0, s->aliases.v[j], (uint32_t)k);
      if (prev != CATALOGUE_NONE)
        err(st, s->path, f, "%s already names %s (%s)", s->aliases.v[j],
            c->institutions[prev].code, c->institutions[prev].path);
    }
  }
  free(o);
}

/* An institution named by its code (an alias is refused with a hint). */
static uint32_t need_institution(struct seal *st, const struct cat_map *inst, const char *path,
                                 const char *field, const char *code) {
  if (!code) {
    err(st, path, field, "missing");
    return CATALOGUE_NONE;
  }
  uint32_t i = cat_map_get(inst, 0, code);
  if (i == CATALOGUE_NONE) {
    err(st, path, field, "unknown institution %s", code);
    return CATALOGUE_NONE;
  }
  if (strcmp(st->c->institutions[i].code, code) != 0) {
    err(st, path, field, "%s is an alias of %s (%s): write the institution's code", code,
        st->c->institutions[i].code, st->c->institutions[i].name);
    return CATALOGUE_NONE;
  }
  return i;
}

/* ------------------------------------------------------------ programmes */

struct course_tab {
  struct cat_vec v; /* struct catalogue_course */
  struct cat_map map;
};

/* Course indices by code (insertion sort: lists are short, and no global
 * comparison context is needed). */
static void sort_courses(const struct catalogue *c, uint32_t *v, size_t n) {
  for (size_t x = 1; x < n; x++)
    for (size_t y = x; y > 0 && strcmp(c->courses[v[y - 1]].code, c->courses[v[y]].code) > 0; y--) {
      uint32_t t = v[y];
      v[y] = v[y - 1];
      v[y - 1] = t;
    }
}

static void seal_course(struct seal *st, struct course_tab *ct, uint32_t inst,
                        const struct catalogue_course_spec *s, uint32_t *out) {
  *out = CATALOGUE_NONE;
  int ok = need_code(st, s->path, "code", s->code);
  ok &= need_text(st, s->path, "name", s->name, CATALOGUE_NAME_MAX);
  int64_t credits = 0;
  if (!s->credits) err(st, s->path, "credits", "missing"), ok = 0;
  else if (catalogue_parse_milli(s->credits, CATALOGUE_MAX_CREDITS_MILLI, &credits) != 0 ||
           credits == 0)
    err(st, s->path, "credits", "'%s' is not a number of credits above 0 (at most 3 decimals, "
        "at most 1000)", s->credits), ok = 0;
  if (!ok || inst == CATALOGUE_NONE) return;
  uint32_t prev = cat_map_get(&ct->map, inst, s->code);
  if (prev != CATALOGUE_NONE) {
    const struct catalogue_course *p = &((const struct catalogue_course *)ct->v.v)[prev];
    if (strcmp(p->name, s->name) != 0 || p->credits_milli != credits)
      err(st, s->path, "code", "course %s is already defined with another name or credits (%s)",
          s->code, p->path);
    *out = prev;
    return;
  }
  struct catalogue_course *d = cat_vec_push(&ct->v, sizeof *d);
  if (!d || ct->map.n >= ct->map.mask) {
    st->oom = 1;
    return;
  }
  d->institution = inst;
  d->code = s->code;
  d->name = s->name;
  d->credits_milli = credits;
  d->path = s->path;
  *out = (uint32_t)(ct->v.n - 1);
  cat_map_put(&ct->map, inst, s->code, *out);
}

static void seal_programmes(struct seal *st, const struct cat_map *inst, struct cat_map *progs,
                            struct course_tab *ct) {
  struct catalogue_builder *b = st->b;
  struct catalogue *c = st->c;
  size_t n = b->programmes.n;
  const struct catalogue_programme_spec *v = b->programmes.v;
  size_t ncourses = 0;
  for (size_t i = 0; i < n; i++) ncourses += v[i].ncourses;
  c->programmes = alloc(st, n * sizeof *c->programmes);
  if (!c->programmes || cat_map_init(progs, n) != 0 || cat_map_init(&ct->map, ncourses) != 0) {
    st->oom = 1;
    return;
  }
  c->nprogrammes = (uint32_t)n;
  for (size_t i = 0; i < n; i++) {
    const struct catalogue_programme_spec *s = &v[i];
    struct catalogue_programme *d = &c->programmes[i];
    d->path = s->path;
    d->code = s->code ? s->code : "";
    d->name = s->name;
    d->note = s->comment;
    d->level = CATALOGUE_NONE;
    d->institution = need_institution(st, inst, s->path, "institution", s->institution);
    if (need_code(st, s->path, "code", s->code) && d->institution != CATALOGUE_NONE &&
        cat_map_put(progs, d->institution, s->code, (uint32_t)i) != CATALOGUE_NONE)
      err(st, s->path, "code", "programme %s/%s defined twice", s->institution, s->code);
    need_text(st, s->path, "name", s->name, CATALOGUE_NAME_MAX);
    opt_text(st, s->path, "comment", s->comment, CATALOGUE_NOTE_MAX);
    if (!s->level != !s->total_credits)
      err(st, s->path, s->level ? "total_credits" : "level",
          "a degree programme has both level and total_credits; a training programme neither");
    if (s->level) d->level = need_level(st, s->path, "level", c->programme_scale, s->level);
    if (s->total_credits &&
        (catalogue_parse_milli(s->total_credits, CATALOGUE_MAX_CREDITS_MILLI,
                               &d->total_credits_milli) != 0 ||
         d->total_credits_milli == 0))
      err(st, s->path, "total_credits", "'%s' is not a number of credits above 0",
          s->total_credits);
    d->courses = alloc_u32(st, s->ncourses);
    if (!d->courses) return;
    for (size_t j = 0; j < s->ncourses; j++) {
      uint32_t ci;
      seal_course(st, ct, d->institution, &s->courses[j], &ci);
      if (ci == CATALOGUE_NONE) continue;
      for (uint32_t k = 0; k < d->ncourses; k++)
        if (d->courses[k] == ci) {
          err(st, s->courses[j].path, "code", "course %s listed twice in %s", s->courses[j].code,
              d->code);
          ci = CATALOGUE_NONE;
          break;
        }
      if (ci != CATALOGUE_NONE) d->courses[d->ncourses++] = ci;
    }
  }
}

/* ------------------------------------------------------------ certificates */

static void seal_certificates(struct seal *st, const struct cat_map *inst, struct cat_map *certs) {
  struct catalogue_builder *b = st->b;
  struct catalogue *c = st->c;
  size_t n = b->certificates.n;
  const struct catalogue_certificate_spec *v = b->certificates.v;
  size_t names = n;
  for (size_t i = 0; i < n; i++) names += v[i].aliases.n;
  struct order *o = sorted(st, n, v, sizeof *v, offsetof(struct catalogue_certificate_spec, code));
  c->certificates = alloc(st, n * sizeof *c->certificates);
  if (!o || !c->certificates || cat_map_init(certs, names) != 0) {
    free(o);
    st->oom = 1;
    return;
  }
  c->ncertificates = (uint32_t)n;
  for (size_t k = 0; k < n; k++) {
    const struct catalogue_certificate_spec *s = &v[o[k].i];
    struct catalogue_certificate *d = &c->certificates[k];
    d->path = s->path;
    d->code = s->code ? s->code : "";
    d->name = s->name;
    d->note = s->comment;
    d->aliases = (const char **)s->aliases.v;
    d->naliases = (uint32_t)s->aliases.n;
    if (need_code(st, s->path, "code", s->code)) {
      uint32_t prev = cat_map_put(certs, 0, s->code, (uint32_t)k);
      if (prev != CATALOGUE_NONE)
        err(st, s->path, "code", "%s already names certificate %s (%s)", s->code,
            c->certificates[prev].code, c->certificates[prev].path);
    }
    need_text(st, s->path, "name", s->name, CATALOGUE_NAME_MAX);
    opt_text(st, s->path, "comment", s->comment, CATALOGUE_NOTE_MAX);
    if (!s->kind) err(st, s->path, "kind", "missing");
    else if (strcmp(s->kind, "vocational_qualification") == 0)
      d->kind = CATALOGUE_KIND_VOCATIONAL_QUALIFICATION;
    else if (strcmp(s->kind, "vocational_skill_level") == 0)
      d->kind = CATALOGUE_KIND_VOCATIONAL_SKILL_LEVEL;
    else
      err(st, s->path, "kind", "unknown certificate kind %s (vocational_qualification, "
          "vocational_skill_level)", s->kind);
    d->scale = find_scale(st, s->path, "scale", s->scale);
    /* Levels offered (all of the scale when absent). */
    if (d->scale != CATALOGUE_NONE) {
      const struct catalogue_scale *sc = &c->scales[d->scale];
      size_t nl = s->levels.n ? s->levels.n : sc->nlevels;
      d->levels = alloc_u32(st, nl);
      if (!d->levels) break;
      for (size_t j = 0; j < nl; j++) {
        uint32_t lv = (uint32_t)j;
        if (s->levels.n) {
          char f[64];
          idx_path(f, sizeof f, "levels", j);
          lv = need_level(st, s->path, f, d->scale, s->levels.v[j]);
          for (uint32_t m = 0; lv != CATALOGUE_NONE && m < d->nlevels; m++)
            if (d->levels[m] == lv) err(st, s->path, f, "level listed twice"), lv = CATALOGUE_NONE;
        }
        if (lv != CATALOGUE_NONE) d->levels[d->nlevels++] = lv;
      }
      /* ascending ordinals (insertion sort: a handful of levels) */
      for (uint32_t x = 1; x < d->nlevels; x++)
        for (uint32_t y = x; y > 0 && d->levels[y - 1] > d->levels[y]; y--) {
          uint32_t t = d->levels[y];
          d->levels[y] = d->levels[y - 1];
          d->levels[y - 1] = t;
        }
    }
    if (s->issuers.n == 0)
      err(st, s->path, "issuers", "list the institutions that issue this certificate");
    d->issuers = alloc_u32(st, s->issuers.n);
    if (!d->issuers) break;
    for (size_t j = 0; j < s->issuers.n; j++) {
      char f[64];
      idx_path(f, sizeof f, "issuers", j);
      uint32_t ii = need_institution(st, inst, s->path, f, s->issuers.v[j]);
      for (uint32_t m = 0; ii != CATALOGUE_NONE && m < d->nissuers; m++)
        if (d->issuers[m] == ii) err(st, s->path, f, "issuer listed twice"), ii = CATALOGUE_NONE;
      if (ii != CATALOGUE_NONE) d->issuers[d->nissuers++] = ii;
    }
    for (uint32_t x = 1; x < d->nissuers; x++)
      for (uint32_t y = x; y > 0 && d->issuers[y - 1] > d->issuers[y]; y--) {
        uint32_t t = d->issuers[y];
        d->issuers[y] = d->issuers[y - 1];
        d->issuers[y - 1] = t;
      }
  }
  for (size_t k = 0; k < n && !st->oom; k++) {
    const struct catalogue_certificate_spec *s = &v[o[k].i];
    for (size_t j = 0; j < s->aliases.n; j++) {
      char f[64];
      idx_path(f, sizeof f, "aliases", j);
      if (!need_code(st, s->path, f, s->aliases.v[j])) continue;
      uint32_t prev = cat_map_put(certs, 0, s->aliases.v[j], (uint32_t)k);
      if (prev != CATALOGUE_NONE)
        err(st, s->path, f, "%s already names certificate %s (%s)", s->aliases.v[j],
            c->certificates[prev].code, c->certificates[prev].path);
    }
  }
  free(o);
}

/* ------------------------------------------------------------ rules */

struct maps {
  struct cat_map inst, progs, certs, rules;
  struct course_tab ct;
};

static uint32_t need_certificate(struct seal *st, const struct maps *m, const char *path,
                                 const char *field, const char *code) {
  if (!code) {
    err(st, path, field, "missing");
    return CATALOGUE_NONE;
  }
  uint32_t i = cat_map_get(&m->certs, 0, code);
  if (i == CATALOGUE_NONE) {
    err(st, path, field, "unknown certificate %s", code);
    return CATALOGUE_NONE;
  }
  if (strcmp(st->c->certificates[i].code, code) != 0) {
    err(st, path, field, "%s is an alias of certificate %s (%s): write its code", code,
        st->c->certificates[i].code, st->c->certificates[i].name);
    return CATALOGUE_NONE;
  }
  return i;
}

/* A level the certificate is offered at. */
static uint32_t need_offered_level(struct seal *st, const char *path, const char *field,
                                   uint32_t cert, const char *text) {
  if (cert == CATALOGUE_NONE) {
    if (!text) err(st, path, field, "missing");
    return CATALOGUE_NONE;
  }
  const struct catalogue_certificate *ce = &st->c->certificates[cert];
  uint32_t lv = need_level(st, path, field, ce->scale, text);
  if (lv == CATALOGUE_NONE) return lv;
  for (uint32_t i = 0; i < ce->nlevels; i++)
    if (ce->levels[i] == lv) return lv;
  err(st, path, field, "%s (%s) is not offered at level %s", ce->code, ce->name, text);
  return CATALOGUE_NONE;
}

static int rule_id_ok(const char *s) {
  for (const char *p = s; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_' || *p == '.'))
      return 0;
  return 1;
}

/* Which fields each kind needs (1), allows (2) or refuses (0). */
enum { F_FROM, F_COURSES, F_MIN_SCORE, F_CERT, F_MIN_LEVEL, F_TARGET, F_GRANTS, F_EXEMPTS,
       F_ELIGIBLE, F_MAX_CREDITS, F_OVERRIDE, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "from",    "courses", "min_score", "certificate", "min_level", "target",
    "grants",  "exempts", "eligible_for", "max_credits", "framework_override"};
static const unsigned char field_use[CATALOGUE_RULE_KIND_MAX + 1][F_COUNT] = {
    [CATALOGUE_RULE_CREDIT_RECOGNISED] = {1, 1, 2, 0, 0, 0, 0, 1, 0, 0, 0},
    [CATALOGUE_RULE_CERTIFICATE_RECOGNISED] = {0, 0, 0, 1, 1, 1, 1, 0, 0, 2, 0},
    [CATALOGUE_RULE_COURSE_RESTRUCTURED] = {1, 1, 2, 0, 0, 1, 2, 0, 1, 2, 2},
    [CATALOGUE_RULE_THROUGH_TRAIN] = {1, 1, 2, 0, 0, 1, 2, 0, 1, 2, 2},
    [CATALOGUE_RULE_COURSE_TRANSFER] = {1, 1, 2, 0, 0, 1, 1, 0, 0, 2, 0},
};

static void check_fields(struct seal *st, const struct catalogue_rule_spec *s, int kind) {
  int present[F_COUNT] = {
      s->from != NULL, s->courses.n > 0, s->min_score != NULL, s->certificate != NULL,
      s->min_level != NULL, s->target != NULL, s->grants_present,
      s->exempt_certificate || s->exempt_level, s->eligible_certificate || s->eligible_level,
      s->max_credits != NULL, s->framework_override != NULL};
  for (int f = 0; f < F_COUNT; f++) {
    int use = field_use[kind][f];
    if (use == 1 && !present[f])
      err(st, s->path, field_names[f], "missing (a %s rule needs it)",
          catalogue_rule_kind_name(kind));
    if (use == 0 && present[f])
      err(st, s->path, field_names[f], "not part of a %s rule", catalogue_rule_kind_name(kind));
  }
}

static void rule_courses(struct seal *st, const struct maps *m, const struct catalogue_rule_spec *s,
                         const char *field, struct catalogue_strs codes, uint32_t inst,
                         const char *inst_code, uint32_t **out, uint32_t *nout) {
  *out = alloc_u32(st, codes.n);
  *nout = 0;
  if (!*out) return;
  if (codes.n > CATALOGUE_MAX_LIST) err(st, s->path, field, "at most %u courses", CATALOGUE_MAX_LIST);
  for (size_t j = 0; j < codes.n; j++) {
    char f[64];
    idx_path(f, sizeof f, field, j);
    if (!need_code(st, s->path, f, codes.v[j]) || inst == CATALOGUE_NONE) continue;
    uint32_t ci = cat_map_get(&m->ct.map, inst, codes.v[j]);
    if (ci == CATALOGUE_NONE) {
      err(st, s->path, f, "unknown course %s at %s", codes.v[j], inst_code);
      continue;
    }
    for (uint32_t k = 0; k < *nout; k++)
      if ((*out)[k] == ci) err(st, s->path, f, "course %s listed twice", codes.v[j]), ci = CATALOGUE_NONE;
    if (ci != CATALOGUE_NONE) (*out)[(*nout)++] = ci;
  }
}

static int in_programme(const struct catalogue_programme *p, uint32_t course) {
  for (uint32_t i = 0; i < p->ncourses; i++)
    if (p->courses[i] == course) return 1;
  return 0;
}

static uint32_t need_target(struct seal *st, const struct maps *m, const char *path,
                            const char *target) {
  if (!target) return CATALOGUE_NONE;
  const char *slash = strchr(target, '/');
  if (!slash || slash == target || !slash[1] || strchr(slash + 1, '/')) {
    err(st, path, "target", "'%s' is not INSTITUTION/PROGRAMME", target);
    return CATALOGUE_NONE;
  }
  char inst_code[CATALOGUE_CODE_MAX + 1];
  size_t n = (size_t)(slash - target);
  if (n > CATALOGUE_CODE_MAX) {
    err(st, path, "target", "institution code too long");
    return CATALOGUE_NONE;
  }
  memcpy(inst_code, target, n);
  inst_code[n] = '\0';
  uint32_t inst = need_institution(st, &m->inst, path, "target", inst_code);
  if (inst == CATALOGUE_NONE) return CATALOGUE_NONE;
  uint32_t p = cat_map_get(&m->progs, inst, slash + 1);
  if (p == CATALOGUE_NONE) {
    err(st, path, "target", "unknown programme %s at %s", slash + 1, inst_code);
    return CATALOGUE_NONE;
  }
  if (st->c->programmes[p].total_credits_milli == 0) {
    err(st, path, "target", "programme %s has no level and total credits: it cannot receive "
        "credits", target);
    return CATALOGUE_NONE;
  }
  return p;
}

static uint32_t framework_of(const struct catalogue *c, uint32_t scale, uint32_t level) {
  if (scale == CATALOGUE_NONE || level == CATALOGUE_NONE) return CATALOGUE_NONE;
  return c->scales[scale].framework[level];
}

/* Figure 2 as data: the certificate level a merge rule leads to and the
 * programme's academic level must sit at one framework level. */
static void check_framework(struct seal *st, const struct catalogue_rule_spec *s,
                            const struct catalogue_rule *r) {
  struct catalogue *c = st->c;
  if (r->out_certificate == CATALOGUE_NONE || r->out_level == CATALOGUE_NONE ||
      r->target == CATALOGUE_NONE || s->framework_override)
    return;
  const struct catalogue_certificate *ce = &c->certificates[r->out_certificate];
  const struct catalogue_programme *p = &c->programmes[r->target];
  if (p->level == CATALOGUE_NONE) return; /* its unknown level is reported already */
  uint32_t fc = framework_of(c, ce->scale, r->out_level);
  uint32_t fp = framework_of(c, c->programme_scale, p->level);
  if (fc != CATALOGUE_NONE && fc == fp) return;
  const char *lv = c->scales[ce->scale].levels[r->out_level];
  const char *plv = p->level != CATALOGUE_NONE ? c->scales[c->programme_scale].levels[p->level] : "?";
  err(st, s->path, "eligible_for.level",
      "%s %s sits at framework level %s but programme %s/%s is %s, framework level %s; "
      "set framework_override with the reason to keep this rule",
      ce->name, lv, fc == CATALOGUE_NONE ? "(none)" : c->flevels[fc].id,
      c->institutions[p->institution].code, p->code, plv,
      fp == CATALOGUE_NONE ? "(none)" : c->flevels[fp].id);
}

static int64_t sum_credits(const struct catalogue *c, const uint32_t *v, uint32_t n) {
  int64_t s = 0;
  for (uint32_t i = 0; i < n; i++) s += c->courses[v[i]].credits_milli;
  return s;
}

static void seal_caps(struct seal *st, const struct catalogue_rule_spec *s,
                      struct catalogue_rule *r) {
  struct catalogue *c = st->c;
  r->max_credits_milli = -1;
  if (s->max_credits) {
    if (catalogue_parse_milli(s->max_credits, CATALOGUE_MAX_CREDITS_MILLI,
                              &r->max_credits_milli) != 0 ||
        r->max_credits_milli == 0) {
      err(st, s->path, "max_credits", "'%s' is not a number of credits above 0", s->max_credits);
      r->max_credits_milli = -1;
    }
  }
  r->cap_milli = r->max_credits_milli;
  if (r->kind != CATALOGUE_RULE_THROUGH_TRAIN || r->target == CATALOGUE_NONE) return;
  const struct catalogue_programme *p = &c->programmes[r->target];
  int64_t cap40 = catalogue_through_train_cap_milli(p);
  char capt[32], tot[32], x[32];
  catalogue_format_milli(cap40, capt, sizeof capt);
  catalogue_format_milli(p->total_credits_milli, tot, sizeof tot);
  if (r->max_credits_milli > cap40) {
    catalogue_format_milli(r->max_credits_milli, x, sizeof x);
    err(st, s->path, "max_credits", "cap %s is more than %d%% of %s/%s's %s credits (%s)", x,
        CATALOGUE_THROUGH_TRAIN_PERCENT, c->institutions[p->institution].code, p->code, tot,
        capt);
  }
  int64_t granted = sum_credits(c, r->grants, r->ngrants);
  if (granted > cap40) {
    catalogue_format_milli(granted, x, sizeof x);
    err(st, s->path, s->grants_present ? "grants" : "courses",
        "the integrated courses total %s credits, more than %d%% of %s/%s's %s credits (%s)", x,
        CATALOGUE_THROUGH_TRAIN_PERCENT, c->institutions[p->institution].code, p->code, tot,
        capt);
  }
  if (r->cap_milli < 0 || r->cap_milli > cap40) r->cap_milli = cap40;
}

int64_t catalogue_through_train_cap_milli(const struct catalogue_programme *p) {
  return p->total_credits_milli * CATALOGUE_THROUGH_TRAIN_PERCENT / 100;
}

static void seal_rule(struct seal *st, struct maps *m, uint32_t ri,
                      const struct catalogue_rule_spec *s) {
  struct catalogue *c = st->c;
  struct catalogue_rule *r = &c->rules[ri];
  r->path = s->path;
  r->id = s->id ? s->id : "";
  r->note = s->comment;
  r->source = s->source;
  r->from = r->req_certificate = r->req_min_level = r->target = CATALOGUE_NONE;
  r->out_certificate = r->out_level = CATALOGUE_NONE;
  r->min_score_milli = r->max_credits_milli = r->cap_milli = -1;
  r->min_score_text = s->min_score;
  r->framework_override = s->framework_override;
  if (need_code(st, s->path, "id", s->id)) {
    if (!rule_id_ok(s->id))
      err(st, s->path, "id", "'%s': a rule id is letters, digits, '-', '_' and '.'", s->id);
    uint32_t prev = cat_map_put(&m->rules, 0, s->id, ri);
    if (prev != CATALOGUE_NONE)
      err(st, s->path, "id", "duplicate rule id %s (also %s)", s->id, c->rules[prev].path);
  }
  r->kind = catalogue_rule_kind_parse(s->kind);
  if (!s->kind) err(st, s->path, "kind", "missing");
  else if (!r->kind)
    err(st, s->path, "kind", "unknown kind %s (credit_recognised, certificate_recognised, "
        "course_restructured, through_train, course_transfer)", s->kind);
  opt_text(st, s->path, "comment", s->comment, CATALOGUE_NOTE_MAX);
  opt_text(st, s->path, "source", s->source, CATALOGUE_NOTE_MAX);
  opt_text(st, s->path, "framework_override", s->framework_override, CATALOGUE_NOTE_MAX);
  if (s->framework_override && !*s->framework_override)
    err(st, s->path, "framework_override", "give the reason");
  /* validity */
  if (!s->valid_from) err(st, s->path, "valid_from", "missing");
  else if (catalogue_parse_date(s->valid_from, &r->valid_from) != 0)
    err(st, s->path, "valid_from", "'%s' is not a date YYYY-MM-DD in 1900..2099", s->valid_from);
  if (s->valid_to) {
    if (catalogue_parse_date(s->valid_to, &r->valid_to) != 0)
      err(st, s->path, "valid_to", "'%s' is not a date YYYY-MM-DD in 1900..2099", s->valid_to);
    else if (r->valid_from && r->valid_to < r->valid_from)
      err(st, s->path, "valid_to", "%s is before valid_from %s", s->valid_to, s->valid_from);
  }
  if (s->max_age_years) {
    int64_t y;
    if (catalogue_parse_milli(s->max_age_years, 100000, &y) != 0 || y % 1000 || y < 1000)
      err(st, s->path, "max_age_years", "'%s' is not a whole number of years 1..100",
          s->max_age_years);
    else r->max_age_years = (uint32_t)(y / 1000);
  }
  if (r->kind) check_fields(st, s, r->kind);
  /* what is required */
  if (s->from) r->from = need_institution(st, &m->inst, s->path, "from", s->from);
  rule_courses(st, m, s, "courses", s->courses, r->from, s->from, &r->required, &r->nrequired);
  if (s->min_score) {
    if (catalogue_score_value(c, s->min_score, &r->min_score_milli) != 0) {
      err(st, s->path, "min_score", "'%s' is neither a score in range nor a grade", s->min_score);
      r->min_score_milli = -1;
    } else if (r->min_score_milli < c->scores.pass_milli) {
      err(st, s->path, "min_score", "%s is below the pass mark", s->min_score);
    }
  }
  if (s->certificate) {
    r->req_certificate = need_certificate(st, m, s->path, "certificate", s->certificate);
    if (r->req_certificate != CATALOGUE_NONE)
      r->req_min_level = need_level(st, s->path, "min_level",
                                    c->certificates[r->req_certificate].scale, s->min_level);
  }
  /* what is granted */
  r->target = need_target(st, m, s->path, s->target);
  const struct catalogue_programme *tp = r->target != CATALOGUE_NONE ? &c->programmes[r->target] : NULL;
  if (s->grants_present) {
    uint32_t ti = tp ? tp->institution : CATALOGUE_NONE;
    rule_courses(st, m, s, "grants", s->grants, ti, tp ? c->institutions[ti].code : "",
                 &r->grants, &r->ngrants);
    if (s->grants.n == 0 && field_use[r->kind][F_GRANTS])
      err(st, s->path, "grants", "list at least one course");
  } else if (r->kind == CATALOGUE_RULE_COURSE_RESTRUCTURED || r->kind == CATALOGUE_RULE_THROUGH_TRAIN) {
    r->grants = r->required; /* the integrated courses themselves */
    r->ngrants = r->nrequired;
    if (tp && r->from != CATALOGUE_NONE && r->from != tp->institution)
      err(st, s->path, "grants", "missing: without grants the integrated courses are granted, "
          "so from must be the target's institution");
  }
  for (uint32_t j = 0; tp && j < r->ngrants; j++)
    if (!in_programme(tp, r->grants[j]))
      err(st, s->path, s->grants_present ? "grants" : "courses", "course %s is not in programme %s",
          c->courses[r->grants[j]].code, s->target);
  if (r->kind == CATALOGUE_RULE_COURSE_TRANSFER && tp && r->from == tp->institution)
    err(st, s->path, "from", "a course transfer is between two institutions; from and target are "
        "both %s", s->from);
  if (s->exempt_certificate || s->exempt_level) {
    r->out_certificate = need_certificate(st, m, s->path, "exempts.certificate", s->exempt_certificate);
    r->out_level = need_offered_level(st, s->path, "exempts.level", r->out_certificate, s->exempt_level);
  } else if (s->eligible_certificate || s->eligible_level) {
    r->out_certificate = need_certificate(st, m, s->path, "eligible_for.certificate",
                                          s->eligible_certificate);
    r->out_level = need_offered_level(st, s->path, "eligible_for.level", r->out_certificate,
                                      s->eligible_level);
  }
  seal_caps(st, s, r);
  if (r->kind == CATALOGUE_RULE_COURSE_RESTRUCTURED || r->kind == CATALOGUE_RULE_THROUGH_TRAIN)
    check_framework(st, s, r);
  if (r->required) sort_courses(c, r->required, r->nrequired);
  if (r->grants && r->grants != r->required) sort_courses(c, r->grants, r->ngrants);
}

static void seal_rules(struct seal *st, struct maps *m) {
  struct catalogue_builder *b = st->b;
  struct catalogue *c = st->c;
  size_t n = b->rules.n;
  const struct catalogue_rule_spec *v = b->rules.v;
  struct order *o = sorted(st, n, v, sizeof *v, offsetof(struct catalogue_rule_spec, id));
  c->rules = alloc(st, n * sizeof *c->rules);
  if (!o || !c->rules || cat_map_init(&m->rules, n) != 0) {
    free(o);
    st->oom = 1;
    return;
  }
  c->nrules = (uint32_t)n;
  for (size_t k = 0; k < n && !st->oom; k++) seal_rule(st, m, (uint32_t)k, &v[o[k].i]);
  free(o);
}

/* ------------------------------------------------------------ seal */

static void maps_free(struct maps *m, struct seal *st) {
  cat_map_free(&m->inst);
  cat_map_free(&m->progs);
  cat_map_free(&m->certs);
  cat_map_free(&m->rules);
  cat_map_free(&m->ct.map);
  free(m->ct.v.v);
  cat_map_free(&st->scale_ids);
  cat_map_free(&st->flevel_ids);
}

int catalogue_seal(struct catalogue_builder *b, const uint8_t version[CB_HASH_BYTES],
                   struct catalogue **out, struct catalogue_errors *errs) {
  *out = NULL;
  struct catalogue *c = calloc(1, sizeof *c);
  struct seal st = {.b = b, .c = c, .errs = errs, .a = b->arena, .oom = b->oom || !c};
  struct maps m;
  memset(&m, 0, sizeof m);
  if (!st.oom) {
    memcpy(c->version, version, CB_HASH_BYTES);
    c->programme_scale = CATALOGUE_NONE;
    seal_header(&st);
    seal_scales(&st);
    if (!st.oom)
      c->programme_scale = find_scale(&st, "programme_scale", NULL, b->header.programme_scale);
    if (!st.oom) seal_scores(&st);
    if (!st.oom) seal_framework(&st);
    if (!st.oom) seal_institutions(&st, &m.inst);
    if (!st.oom) seal_programmes(&st, &m.inst, &m.progs, &m.ct);
    if (!st.oom) {
      c->courses = cat_arena_alloc(st.a, (m.ct.v.n ? m.ct.v.n : 1) * sizeof *c->courses);
      if (!c->courses) st.oom = 1;
      else if (m.ct.v.n) memcpy(c->courses, m.ct.v.v, m.ct.v.n * sizeof *c->courses);
      c->ncourses = (uint32_t)m.ct.v.n;
    }
    if (!st.oom) {
      for (uint32_t i = 0; i < c->nprogrammes; i++)
        sort_courses(c, c->programmes[i].courses, c->programmes[i].ncourses);
      seal_certificates(&st, &m.inst, &m.certs);
    }
    if (!st.oom) seal_rules(&st, &m);
  }
  maps_free(&m, &st);
  if (st.oom) catalogue_errors_add(errs, "", "out of memory while checking the catalogue");
  if (errs->count > 0 || st.oom) {
    if (c) free(c);
    catalogue_builder_free(b);
    return -1;
  }
  c->arena = b->arena;
  b->arena = NULL;
  catalogue_builder_free(b);
  if (cat_index_build(c) != 0) {
    catalogue_errors_add(errs, "", "out of memory while indexing the catalogue");
    catalogue_free(c);
    return -1;
  }
  *out = c;
  return 0;
}

void catalogue_free(struct catalogue *c) {
  if (!c) return;
  if (c->index) cat_index_free(c->index);
  if (c->arena) {
    cat_arena_free(c->arena);
    free(c->arena);
  }
  free(c);
}
