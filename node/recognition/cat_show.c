/* `catalogue show [--rules]` and `catalogue diff`: text an operator reads
 * (spec/recognition.md §2.6). Both come from one rendering (cat_render.c). */
#include <stdlib.h>
#include <string.h>

#include "cat_internal.h"

static void print_field(struct catalogue_text *t, const struct cat_kv *kv, const char *indent) {
  if (!kv->list) {
    catalogue_text_printf(t, "%s%s: %s\n", indent, kv->field, kv->value);
    return;
  }
  catalogue_text_printf(t, "%s%s:\n", indent, kv->field);
  const char *p = kv->value;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    catalogue_text_printf(t, "%s  - %.*s\n", indent, (int)n, p);
    p += n + (nl != NULL);
  }
}

static void print_obj(struct catalogue_text *t, const char *what, const struct cat_obj *o) {
  catalogue_text_printf(t, "%s %s\n", what, o->key ? o->key : "?");
  for (size_t i = 0; i < o->n; i++) print_field(t, &o->kv[i], "  ");
}

void catalogue_show_rule(const struct catalogue *c, const struct catalogue_rule *r,
                         struct catalogue_text *out) {
  struct cat_obj o = {0};
  cat_render_rule(c, (uint32_t)(r - c->rules), &o);
  if (o.oom) out->oom = 1;
  print_obj(out, "rule", &o);
  cat_obj_free(&o);
}

static void show_counts(const struct catalogue *c, struct catalogue_text *t) {
  /* institutions by province, in order of first appearance after sorting */
  catalogue_text_printf(t, "institutions: %u", c->ninstitutions);
  const char *seen[64];
  uint32_t count[64], nseen = 0;
  for (uint32_t i = 0; i < c->ninstitutions; i++) {
    const char *p = c->institutions[i].province;
    uint32_t k = 0;
    while (k < nseen && strcmp(seen[k], p) != 0) k++;
    if (k == nseen && nseen < 64) seen[nseen] = p, count[nseen++] = 0;
    if (k < nseen) count[k]++;
  }
  for (uint32_t k = 0; k < nseen; k++)
    catalogue_text_printf(t, "%s%s %u", k ? ", " : " (", seen[k], count[k]);
  catalogue_text_printf(t, "%s\n", nseen ? ")" : "");
  catalogue_text_printf(t, "programmes: %u (courses %u)\n", c->nprogrammes, c->ncourses);
  catalogue_text_printf(t, "certificates: %u\n", c->ncertificates);
  uint32_t by_kind[CATALOGUE_RULE_KIND_MAX + 1] = {0};
  for (uint32_t i = 0; i < c->nrules; i++) by_kind[c->rules[i].kind]++;
  catalogue_text_printf(t, "rules: %u", c->nrules);
  for (int k = 1; k <= CATALOGUE_RULE_KIND_MAX; k++)
    catalogue_text_printf(t, "%s%s %s %u", k > 1 ? ", " : " (", catalogue_rule_kind_cn(k),
                          catalogue_rule_kind_name(k), by_kind[k]);
  catalogue_text_printf(t, ")\n");
}

void catalogue_show(const struct catalogue *c, int rules, struct catalogue_text *t) {
  char hex[2 * CB_HASH_BYTES + 1];
  catalogue_version_hex(c->version, hex);
  catalogue_text_printf(t, "catalogue %s (%s)\n", hex, c->format);
  if (c->title) catalogue_text_printf(t, "title: %s\n", c->title);
  if (c->source) catalogue_text_printf(t, "source: %s\n", c->source);
  catalogue_text_printf(t, "level scales (lowest first; programmes use %s):\n",
                        c->scales[c->programme_scale].id);
  for (uint32_t i = 0; i < c->nscales; i++) {
    const struct catalogue_scale *s = &c->scales[i];
    catalogue_text_printf(t, "  %s %s: ", s->id, s->name);
    cat_text_list(t, s->levels, s->nlevels, " < ");
    for (uint32_t j = 0; j < s->naliases; j++)
      catalogue_text_printf(t, "%s%s = %s", j ? ", " : "; also ", s->alias_names[j],
                            s->levels[s->alias_levels[j]]);
    catalogue_text_printf(t, "\n");
  }
  char a[32], b[32], p[32];
  catalogue_format_milli(c->scores.min_milli, a, sizeof a);
  catalogue_format_milli(c->scores.max_milli, b, sizeof b);
  catalogue_format_milli(c->scores.pass_milli, p, sizeof p);
  catalogue_text_printf(t, "scores: %s..%s, pass %s; grades", a, b, p);
  for (uint32_t j = 0; j < c->scores.ngrades; j++) {
    catalogue_format_milli(c->scores.grades[j].value_milli, a, sizeof a);
    catalogue_text_printf(t, "%s %s = %s", j ? "," : "", c->scores.grades[j].name, a);
  }
  catalogue_text_printf(t, "\nframework levels (lowest first):\n");
  for (uint32_t i = 0; i < c->nflevels; i++) {
    const struct catalogue_flevel *f = &c->flevels[i];
    catalogue_text_printf(t, "  %s %s:", f->id, f->name);
    for (uint32_t j = 0; j < f->nmembers; j++)
      catalogue_text_printf(t, "%s %s %s", j ? " ·" : "", c->scales[f->member_scale[j]].id,
                            c->scales[f->member_scale[j]].levels[f->member_level[j]]);
    catalogue_text_printf(t, "\n");
  }
  show_counts(c, t);
  if (!rules) return;
  for (uint32_t i = 0; i < c->nrules; i++) {
    catalogue_text_printf(t, "\n");
    catalogue_show_rule(c, &c->rules[i], t);
  }
}

/* ------------------------------------------------------------ diff */

typedef void (*render_fn)(const struct catalogue *, uint32_t, struct cat_obj *);

struct side {
  uint32_t n;
  struct cat_obj *objs;
  const struct cat_obj **order; /* sorted by key */
};

static int obj_key_cmp(const void *x, const void *y) {
  const struct cat_obj *a = *(const struct cat_obj *const *)x;
  const struct cat_obj *b = *(const struct cat_obj *const *)y;
  return strcmp(a->key ? a->key : "", b->key ? b->key : "");
}

static int side_init(struct side *s, const struct catalogue *c, uint32_t n, render_fn fn) {
  s->n = n;
  s->objs = calloc(n ? n : 1, sizeof *s->objs);
  s->order = malloc((n ? n : 1) * sizeof *s->order);
  if (!s->objs || !s->order) return -1;
  int oom = 0;
  for (uint32_t i = 0; i < n; i++) {
    fn(c, i, &s->objs[i]);
    oom |= s->objs[i].oom || !s->objs[i].key;
    s->order[i] = &s->objs[i];
  }
  if (oom) return -1;
  qsort(s->order, n, sizeof *s->order, obj_key_cmp);
  return 0;
}

static void side_free(struct side *s) {
  for (uint32_t i = 0; s->objs && i < s->n; i++) cat_obj_free(&s->objs[i]);
  free(s->objs);
  free(s->order);
}

static const struct cat_kv *find_kv(const struct cat_obj *o, const char *field) {
  for (size_t i = 0; i < o->n; i++)
    if (strcmp(o->kv[i].field, field) == 0) return &o->kv[i];
  return NULL;
}

static int has_line(const char *list, const char *line, size_t n) {
  const char *p = list;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t m = nl ? (size_t)(nl - p) : strlen(p);
    if (m == n && memcmp(p, line, n) == 0) return 1;
    p += m + (nl != NULL);
  }
  return 0;
}

/* Items of list a not in list b, each as "<mark>item". */
static void list_minus(struct catalogue_text *t, const char *a, const char *b, const char *mark,
                       int *first) {
  const char *p = a;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t m = nl ? (size_t)(nl - p) : strlen(p);
    if (!has_line(b, p, m)) {
      catalogue_text_printf(t, "%s%s%.*s", *first ? "" : "; ", mark, (int)m, p);
      *first = 0;
    }
    p += m + (nl != NULL);
  }
}

static size_t diff_fields(struct catalogue_text *t, const char *section, const struct cat_obj *a,
                          const struct cat_obj *b) {
  size_t changes = 0;
  for (size_t i = 0; i < b->n; i++) {
    const struct cat_kv *nk = &b->kv[i];
    const struct cat_kv *ok = find_kv(a, nk->field);
    if (ok && strcmp(ok->value, nk->value) == 0) continue;
    changes++;
    catalogue_text_printf(t, "%s: ~ %s %s: ", section, b->key, nk->field);
    if (ok && nk->list && ok->list) {
      int first = 1;
      list_minus(t, nk->value, ok->value, "+ ", &first);
      list_minus(t, ok->value, nk->value, "- ", &first);
      catalogue_text_printf(t, "\n");
    } else {
      catalogue_text_printf(t, "%s → %s\n", ok ? ok->value : "(none)", nk->value);
    }
  }
  for (size_t i = 0; i < a->n; i++)
    if (!find_kv(b, a->kv[i].field)) {
      changes++;
      catalogue_text_printf(t, "%s: ~ %s %s: %s → (none)\n", section, a->key, a->kv[i].field,
                            a->kv[i].value);
    }
  return changes;
}

static void added(struct catalogue_text *t, const char *section, const char *mark,
                  const struct cat_obj *o) {
  const struct cat_kv *name = o->n ? &o->kv[0] : NULL;
  catalogue_text_printf(t, "%s: %s %s", section, mark, o->key);
  if (name && !name->list) catalogue_text_printf(t, " (%s: %s)", name->field, name->value);
  catalogue_text_printf(t, "\n");
}

static size_t diff_section(struct catalogue_text *t, const char *section,
                           const struct catalogue *a, uint32_t na, const struct catalogue *b,
                           uint32_t nb, render_fn fn) {
  struct side sa = {0}, sb = {0};
  size_t changes = 0;
  if (side_init(&sa, a, na, fn) != 0 || side_init(&sb, b, nb, fn) != 0) {
    t->oom = 1;
    side_free(&sa);
    side_free(&sb);
    return 0;
  }
  uint32_t i = 0, j = 0;
  while (i < na || j < nb) {
    const struct cat_obj *x = i < na ? sa.order[i] : NULL;
    const struct cat_obj *y = j < nb ? sb.order[j] : NULL;
    int k = !x ? 1 : !y ? -1 : strcmp(x->key, y->key);
    if (k < 0) {
      added(t, section, "-", x), i++, changes++;
    } else if (k > 0) {
      added(t, section, "+", y), j++, changes++;
    } else {
      changes += diff_fields(t, section, x, y);
      i++, j++;
    }
  }
  side_free(&sa);
  side_free(&sb);
  return changes;
}

static void render_scores_i(const struct catalogue *c, uint32_t i, struct cat_obj *o) {
  (void)i;
  cat_render_scores(c, o);
}

size_t catalogue_diff(const struct catalogue *a, const struct catalogue *b,
                      struct catalogue_text *out) {
  char ha[2 * CB_HASH_BYTES + 1], hb[2 * CB_HASH_BYTES + 1];
  catalogue_version_hex(a->version, ha);
  catalogue_version_hex(b->version, hb);
  catalogue_text_printf(out, "catalogue diff %.16s… → %.16s…\n", ha, hb);
  size_t n = 0;
  n += diff_section(out, "level_scales", a, a->nscales, b, b->nscales, cat_render_scale);
  n += diff_section(out, "scores", a, 1, b, 1, render_scores_i);
  n += diff_section(out, "framework", a, a->nflevels, b, b->nflevels, cat_render_flevel);
  n += diff_section(out, "institutions", a, a->ninstitutions, b, b->ninstitutions,
                    cat_render_institution);
  n += diff_section(out, "programmes", a, a->nprogrammes, b, b->nprogrammes,
                    cat_render_programme);
  n += diff_section(out, "certificates", a, a->ncertificates, b, b->ncertificates,
                    cat_render_certificate);
  n += diff_section(out, "rules", a, a->nrules, b, b->nrules, cat_render_rule);
  if (n == 0) catalogue_text_printf(out, "no changes of content\n");
  return n;
}
