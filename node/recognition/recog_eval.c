/* Recognition evaluation (spec/recognition.md §4-§5): pure, deterministic,
 * independent of the order of its inputs.
 *
 * 1. Check every citation and earlier grant; sort citations by (aid,
 *    holder, attestation) and earlier grants by aid, rule and course.
 * 2. Resolve each citation once: issuer through the institution aliases,
 *    certificate or course, level in the certificate's scale, score.
 * 3. Candidate rules from the index (target programme × cited course or
 *    certificate; or exempted certificate × level), in rule-id order.
 * 4. Each candidate: validity on the decision date, then each requirement
 *    (best eligible citation, else every reason each candidate falls
 *    short), then grants under the caps and the "counted once" rule.
 * 5. Citations no rule looked at are named; the status follows. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cat_internal.h"
#include "recog.h"

/* ------------------------------------------------------------ memory */

struct ev_cite {
  const struct recog_achievement *a;
  uint32_t inst, cert, course, level;
  int score_state; /* 0 none, 1 value, -1 not a score of the catalogue */
  int64_t score;
  const char *counted_by;   /* rule id the aid already counts under */
  int counted_earlier;      /* ... in an earlier decision */
  int referenced;
};

struct recog_mem {
  struct cat_arena arena;
  struct cat_vec cited, grants, shortfalls;
  struct cat_vec cites, order, cand, earlier;
};

void recog_decision_init(struct recog_decision *d) { memset(d, 0, sizeof *d); }

void recog_decision_free(struct recog_decision *d) {
  struct recog_mem *m = d->mem;
  if (m) {
    cat_arena_free(&m->arena);
    struct cat_vec *vs[] = {&m->cited, &m->grants, &m->shortfalls, &m->cites,
                            &m->order, &m->cand,   &m->earlier};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) free(vs[i]->v);
    free(m);
  }
  memset(d, 0, sizeof *d);
}

struct ev {
  const struct catalogue *c;
  const struct recog_request *req;
  struct recog_decision *d;
  struct recog_mem *m;
  int oom;
  struct ev_cite *cites;
  size_t ncites;
  uint32_t target;               /* programme, or NONE for an exemption */
  uint32_t ex_cert, ex_level;
  const struct recog_earlier_grant **earlier; /* sorted by aid */
  size_t nearlier;
  int64_t tt_used;               /* through-train credits toward the target */
};

static const char *keep(struct ev *e, const char *s) {
  char *d = cat_arena_strdup(&e->m->arena, s ? s : "");
  if (!d) e->oom = 1;
  return d ? d : "";
}

static const char *keepf(struct ev *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *keepf(struct ev *e, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return keep(e, buf);
}

static void *push(struct ev *e, struct cat_vec *v, size_t sz) {
  void *p = cat_vec_push(v, sz);
  if (!p) e->oom = 1;
  return p;
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

static void aid_hex(const uint8_t *aid, char out[17]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) {
    out[2 * i] = hex[aid[i] >> 4];
    out[2 * i + 1] = hex[aid[i] & 15];
  }
  out[16] = '\0';
}

/* ------------------------------------------------------------ checks */

static int cited_ok(const struct recog_achievement *a, char *why, size_t cap) {
  const char *bad = NULL;
  if (!a->holder || !catalogue_text_ok(a->holder, RECOG_ID_MAX, 0)) bad = "holder";
  else if (a->kind < 1 || a->kind > 5) bad = "kind";
  else if (!a->issuer || !catalogue_text_ok(a->issuer, RECOG_CODE_MAX, 0)) bad = "issuer";
  else if (!a->code || !catalogue_text_ok(a->code, RECOG_CODE_MAX, 0)) bad = "code";
  else if (!a->title || !catalogue_text_ok(a->title, RECOG_TITLE_MAX, 0)) bad = "title";
  else if (!a->level || !catalogue_text_ok(a->level, RECOG_LEVEL_MAX, 1)) bad = "level";
  else if (!a->score || !catalogue_text_ok(a->score, RECOG_SCORE_MAX, 1)) bad = "score";
  else if (a->credits_milli < 0 || a->credits_milli > CATALOGUE_MAX_CREDITS_MILLI) bad = "credits";
  else if (!catalogue_date_valid(a->awarded_on)) bad = "awarded_on";
  if (bad) snprintf(why, cap, "%s", bad);
  return bad == NULL;
}

static int str_eq(const char *a, const char *b) { return strcmp(a, b) == 0; }

static int same_content(const struct recog_achievement *a, const struct recog_achievement *b) {
  return a->kind == b->kind && str_eq(a->issuer, b->issuer) && str_eq(a->code, b->code) &&
         str_eq(a->title, b->title) && str_eq(a->level, b->level) && str_eq(a->score, b->score) &&
         a->credits_milli == b->credits_milli && a->awarded_on == b->awarded_on;
}

static int cite_cmp(const void *x, const void *y) {
  const struct recog_achievement *a = *(const struct recog_achievement *const *)x;
  const struct recog_achievement *b = *(const struct recog_achievement *const *)y;
  int k = memcmp(a->aid, b->aid, RECOG_AID_BYTES);
  if (k) return k;
  k = strcmp(a->holder, b->holder);
  if (k) return k;
  if (a->has_attestation != b->has_attestation) return a->has_attestation - b->has_attestation;
  return memcmp(a->attestation_hash, b->attestation_hash, CB_HASH_BYTES);
}

static int earlier_cmp(const void *x, const void *y) {
  const struct recog_earlier_grant *a = *(const struct recog_earlier_grant *const *)x;
  const struct recog_earlier_grant *b = *(const struct recog_earlier_grant *const *)y;
  int k = memcmp(a->aid, b->aid, RECOG_AID_BYTES);
  if (k) return k;
  k = strcmp(a->rule_id, b->rule_id);
  if (k) return k;
  return strcmp(a->course, b->course);
}

static int check_request(const struct recog_request *q, char *err, size_t errlen) {
  if (!q->request_id || !catalogue_text_ok(q->request_id, RECOG_ID_MAX, 0))
    return fail(err, errlen, RECOG_EINVAL, "request id: 1..%u bytes of printable text", RECOG_ID_MAX);
  if (!q->decider || !catalogue_text_ok(q->decider, RECOG_ID_MAX, 0))
    return fail(err, errlen, RECOG_EINVAL, "decider: 1..%u bytes of printable text", RECOG_ID_MAX);
  if (!catalogue_date_valid(q->date))
    return fail(err, errlen, RECOG_EINVAL, "decision date %d is not a date", (int)q->date);
  if (q->ncited > RECOG_MAX_CITED || q->nearlier > RECOG_MAX_EARLIER)
    return fail(err, errlen, RECOG_ETOOBIG, "at most %u citations and %u earlier grants",
                RECOG_MAX_CITED, RECOG_MAX_EARLIER);
  if ((q->ncited && !q->cited) || (q->nearlier && !q->earlier))
    return fail(err, errlen, RECOG_EINVAL, "citations or earlier grants missing");
  for (size_t i = 0; i < q->ncited; i++)
    if (!q->cited[i].holder || !q->cited[i].issuer || !q->cited[i].code || !q->cited[i].title ||
        !q->cited[i].level || !q->cited[i].score)
      return fail(err, errlen, RECOG_EINVAL, "citation %zu: a text field is NULL", i);
  for (size_t i = 0; i < q->nearlier; i++) {
    const struct recog_earlier_grant *g = &q->earlier[i];
    if (!g->rule_id || !catalogue_text_ok(g->rule_id, RECOG_CODE_MAX, 0) || !g->course ||
        !catalogue_text_ok(g->course, RECOG_CODE_MAX, 1) || g->rule_kind < 1 ||
        g->rule_kind > CATALOGUE_RULE_KIND_MAX || g->credits_milli < 0 ||
        g->credits_milli > CATALOGUE_MAX_CREDITS_MILLI)
      return fail(err, errlen, RECOG_EINVAL, "earlier grant %zu: bad rule id, kind, course or "
                  "credits", i);
  }
  return 0;
}

/* ------------------------------------------------------------ setup */

static int resolve_target(struct ev *e, char *err, size_t errlen) {
  const struct catalogue *c = e->c;
  const struct recog_request *q = e->req;
  struct recog_decision *d = e->d;
  e->target = e->ex_cert = e->ex_level = CATALOGUE_NONE;
  d->target_kind = q->target_kind;
  if (q->target_kind == RECOG_TARGET_PROGRAMME) {
    if (!q->institution || !q->programme)
      return fail(err, errlen, RECOG_EINVAL, "target: institution and programme needed");
    uint32_t inst = catalogue_institution_find(c, q->institution);
    if (inst == CATALOGUE_NONE)
      return fail(err, errlen, RECOG_ETARGET, "target: unknown institution %s", q->institution);
    e->target = catalogue_programme_find(c, inst, q->programme);
    if (e->target == CATALOGUE_NONE)
      return fail(err, errlen, RECOG_ETARGET, "target: no programme %s at %s (%s)", q->programme,
                  c->institutions[inst].code, c->institutions[inst].name);
    const struct catalogue_programme *p = &c->programmes[e->target];
    d->target_institution = keep(e, c->institutions[inst].code);
    d->target_programme = keep(e, p->code);
    d->target_title = keep(e, p->name);
    return 0;
  }
  if (q->target_kind == RECOG_TARGET_EXEMPTION) {
    if (!q->certificate || !q->level)
      return fail(err, errlen, RECOG_EINVAL, "target: certificate and level needed");
    e->ex_cert = catalogue_certificate_find(c, q->certificate);
    if (e->ex_cert == CATALOGUE_NONE)
      return fail(err, errlen, RECOG_ETARGET, "target: unknown certificate %s", q->certificate);
    const struct catalogue_certificate *ce = &c->certificates[e->ex_cert];
    e->ex_level = catalogue_level_find(c, ce->scale, q->level);
    if (e->ex_level == CATALOGUE_NONE)
      return fail(err, errlen, RECOG_ETARGET, "target: %s has no level %s in scale %s", ce->code,
                  q->level, c->scales[ce->scale].id);
    d->target_certificate = keep(e, ce->code);
    d->target_level = keep(e, c->scales[ce->scale].levels[e->ex_level]);
    d->target_title = keep(e, ce->name);
    return 0;
  }
  return fail(err, errlen, RECOG_EINVAL, "target: unknown kind %d", q->target_kind);
}

static const struct recog_earlier_grant *earlier_of(const struct ev *e, const uint8_t *aid) {
  size_t lo = 0, hi = e->nearlier;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int k = memcmp(e->earlier[mid]->aid, aid, RECOG_AID_BYTES);
    if (k < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo < e->nearlier && memcmp(e->earlier[lo]->aid, aid, RECOG_AID_BYTES) == 0
             ? e->earlier[lo]
             : NULL;
}

static void resolve_cite(struct ev *e, struct ev_cite *ci) {
  const struct catalogue *c = e->c;
  const struct recog_achievement *a = ci->a;
  ci->inst = catalogue_institution_find(c, a->issuer);
  ci->cert = ci->course = ci->level = CATALOGUE_NONE;
  if (a->kind == CATALOGUE_KIND_VOCATIONAL_QUALIFICATION ||
      a->kind == CATALOGUE_KIND_VOCATIONAL_SKILL_LEVEL) {
    ci->cert = catalogue_certificate_find(c, a->code);
    if (ci->cert != CATALOGUE_NONE)
      ci->level = catalogue_level_find(c, c->certificates[ci->cert].scale, a->level);
  } else {
    ci->course = catalogue_course_find(c, ci->inst, a->code);
  }
  ci->score_state = 0;
  if (a->score[0]) ci->score_state = catalogue_score_value(c, a->score, &ci->score) == 0 ? 1 : -1;
  if (e->target != CATALOGUE_NONE) {
    const struct recog_earlier_grant *g = earlier_of(e, a->aid);
    if (g) {
      ci->counted_by = g->rule_id;
      ci->counted_earlier = 1;
    }
  }
}

/* Sorts and checks citations; fills d->cited and e->cites (one per aid). */
static int setup_cites(struct ev *e, char *err, size_t errlen) {
  const struct recog_request *q = e->req;
  struct recog_mem *m = e->m;
  const struct recog_achievement **ord = NULL;
  for (size_t i = 0; i < q->ncited; i++) {
    const struct recog_achievement **p = push(e, &m->order, sizeof *p);
    if (!p) return RECOG_ENOMEM;
    *p = &q->cited[i];
  }
  ord = m->order.v;
  if (q->ncited > 1) qsort(ord, q->ncited, sizeof *ord, cite_cmp);
  for (size_t i = 0; i < q->ncited; i++) {
    const struct recog_achievement *a = ord[i];
    char why[32], hex[17];
    aid_hex(a->aid, hex);
    if (!cited_ok(a, why, sizeof why))
      return fail(err, errlen, RECOG_EINVAL, "citation %s…: bad %s", hex, why);
    int same_aid = i > 0 && memcmp(ord[i - 1]->aid, a->aid, RECOG_AID_BYTES) == 0;
    if (same_aid && !same_content(ord[i - 1], a))
      return fail(err, errlen, RECOG_EINVAL, "aid %s… is cited twice with different contents", hex);
    if (i > 0 && cite_cmp(&ord[i - 1], &ord[i]) == 0) continue; /* the same citation twice */
    struct recog_cited *rc = push(e, &m->cited, sizeof *rc);
    if (!rc) return RECOG_ENOMEM;
    memcpy(rc->aid, a->aid, RECOG_AID_BYTES);
    rc->holder = keep(e, a->holder);
    rc->has_attestation = a->has_attestation;
    memcpy(rc->attestation_hash, a->attestation_hash, CB_HASH_BYTES);
    rc->code = keep(e, a->code);
    rc->title = keep(e, a->title);
    rc->level = keep(e, a->level);
    rc->awarded_on = a->awarded_on;
    uint32_t inst = catalogue_institution_find(e->c, a->issuer);
    rc->issuer = keep(e, inst != CATALOGUE_NONE ? e->c->institutions[inst].code : a->issuer);
    if (same_aid) continue; /* the same achievement from another holder */
    struct ev_cite *ci = push(e, &m->cites, sizeof *ci);
    if (!ci) return RECOG_ENOMEM;
    ci->a = a;
  }
  e->cites = m->cites.v;
  e->ncites = m->cites.n;
  for (size_t i = 0; i < e->ncites; i++) resolve_cite(e, &e->cites[i]);
  return e->oom ? RECOG_ENOMEM : 0;
}

static int setup_earlier(struct ev *e) {
  const struct recog_request *q = e->req;
  for (size_t i = 0; i < q->nearlier; i++) {
    const struct recog_earlier_grant **p = push(e, &e->m->earlier, sizeof *p);
    if (!p) return RECOG_ENOMEM;
    *p = &q->earlier[i];
    if (q->earlier[i].rule_kind == CATALOGUE_RULE_THROUGH_TRAIN) {
      /* one grant may list several aids: count each (rule, course) once */
      int dup = 0;
      for (size_t j = 0; j < i && !dup; j++)
        dup = q->earlier[j].rule_kind == CATALOGUE_RULE_THROUGH_TRAIN &&
              str_eq(q->earlier[j].rule_id, q->earlier[i].rule_id) &&
              str_eq(q->earlier[j].course, q->earlier[i].course);
      if (!dup) e->tt_used += q->earlier[i].credits_milli;
    }
  }
  e->earlier = e->m->earlier.v;
  e->nearlier = e->m->earlier.n;
  if (e->nearlier > 1) qsort((void *)e->earlier, e->nearlier, sizeof *e->earlier, earlier_cmp);
  return 0;
}

/* Credits an earlier decision granted under rule id toward the target
 * (each (rule, course) once, whatever the number of aids it lists). */
static int64_t earlier_rule_credits(const struct ev *e, const char *rule_id) {
  const struct recog_request *q = e->req;
  int64_t sum = 0;
  for (size_t i = 0; i < q->nearlier; i++) {
    if (!str_eq(q->earlier[i].rule_id, rule_id)) continue;
    int dup = 0;
    for (size_t j = 0; j < i && !dup; j++)
      dup = str_eq(q->earlier[j].rule_id, rule_id) &&
            str_eq(q->earlier[j].course, q->earlier[i].course);
    if (!dup) sum += q->earlier[i].credits_milli;
  }
  return sum;
}

static const char *earlier_course_rule(const struct ev *e, const char *course) {
  const struct recog_request *q = e->req;
  const char *best = NULL;
  for (size_t i = 0; i < q->nearlier; i++)
    if (q->earlier[i].course[0] && str_eq(q->earlier[i].course, course) &&
        (!best || strcmp(q->earlier[i].rule_id, best) < 0))
      best = q->earlier[i].rule_id;
  return best;
}

/* ------------------------------------------------------------ candidates */

static int u32_cmp(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return a < b ? -1 : a > b;
}

static void add_cands(struct ev *e, const uint32_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t *p = push(e, &e->m->cand, sizeof *p);
    if (p) *p = v[i];
  }
}

static int rule_touches(const struct ev *e, const struct catalogue_rule *r) {
  for (size_t i = 0; i < e->ncites; i++) {
    const struct ev_cite *ci = &e->cites[i];
    if (ci->cert != CATALOGUE_NONE && ci->cert == r->req_certificate) return 1;
    for (uint32_t j = 0; ci->course != CATALOGUE_NONE && j < r->nrequired; j++)
      if (r->required[j] == ci->course) return 1;
  }
  return 0;
}

/* Same set as the index gives, by looking at every rule. */
static void scan_cands(struct ev *e) {
  const struct catalogue *c = e->c;
  for (uint32_t i = 0; i < c->nrules; i++) {
    const struct catalogue_rule *r = &c->rules[i];
    int hit = e->target != CATALOGUE_NONE
                  ? r->kind != CATALOGUE_RULE_CREDIT_RECOGNISED && r->target == e->target &&
                        rule_touches(e, r)
                  : r->kind == CATALOGUE_RULE_CREDIT_RECOGNISED && r->out_certificate == e->ex_cert &&
                        r->out_level == e->ex_level;
    if (hit) add_cands(e, &i, 1);
  }
}

static void find_cands(struct ev *e) {
  const struct catalogue *c = e->c;
  size_t n;
  if (e->req->flags & RECOG_F_SCAN_ALL) {
    scan_cands(e);
  } else if (e->target == CATALOGUE_NONE) {
    const uint32_t *v = catalogue_rules_exempting(c, e->ex_cert, e->ex_level, &n);
    add_cands(e, v, n);
  } else {
    for (size_t i = 0; i < e->ncites; i++) {
      const struct ev_cite *ci = &e->cites[i];
      const uint32_t *v;
      if (ci->cert != CATALOGUE_NONE) {
        v = catalogue_rules_by_certificate(c, e->target, ci->cert, &n);
        add_cands(e, v, n);
      }
      if (ci->course != CATALOGUE_NONE) {
        v = catalogue_rules_by_course(c, e->target, ci->course, &n);
        add_cands(e, v, n);
      }
    }
  }
  uint32_t *v = e->m->cand.v;
  size_t k = 0;
  if (e->m->cand.n > 1) qsort(v, e->m->cand.n, sizeof *v, u32_cmp);
  for (size_t i = 0; i < e->m->cand.n; i++)
    if (k == 0 || v[k - 1] != v[i]) v[k++] = v[i];
  e->m->cand.n = k;
}

/* ------------------------------------------------------------ shortfalls */

static void shortfall(struct ev *e, const struct catalogue_rule *r, int code, const char *subject,
                      const char *subject_title, const struct ev_cite *ci, const char *have,
                      const char *need) {
  struct recog_shortfall *s = push(e, &e->m->shortfalls, sizeof *s);
  if (!s) return;
  s->rule_id = r ? r->id : "";
  s->rule_kind = r ? r->kind : 0;
  s->code = code;
  s->subject = keep(e, subject);
  s->subject_title = keep(e, subject_title);
  if (ci) {
    s->has_aid = 1;
    memcpy(s->aid, ci->a->aid, RECOG_AID_BYTES);
  }
  s->have = keep(e, have);
  s->need = keep(e, need);
}

static void date_text(int32_t v, char *buf) { catalogue_format_date(v, buf, 16); }

/* Problems shared by every requirement: dates and "counted once". */
static int check_common(struct ev *e, const struct catalogue_rule *r, const struct ev_cite *ci,
                        const char *subject, const char *title, int report) {
  int ok = 1;
  char a[16], b[16];
  if (ci->a->awarded_on > e->req->date) {
    ok = 0;
    if (report) {
      date_text(ci->a->awarded_on, a);
      date_text(e->req->date, b);
      shortfall(e, r, RECOG_SF_AWARDED_AFTER_DECISION, subject, title, ci, a, b);
    }
  }
  if (r->max_age_years) {
    int32_t earliest = catalogue_date_minus_years(e->req->date, r->max_age_years);
    if (ci->a->awarded_on < earliest) {
      ok = 0;
      if (report) {
        date_text(ci->a->awarded_on, a);
        date_text(earliest, b);
        shortfall(e, r, RECOG_SF_TOO_OLD, subject, title, ci, a, b);
      }
    }
  }
  if (e->target != CATALOGUE_NONE && ci->counted_by) {
    ok = 0;
    if (report)
      shortfall(e, r, RECOG_SF_ALREADY_COUNTED, subject, title, ci,
                keepf(e, "%s (%s)", ci->counted_by,
                      ci->counted_earlier ? "earlier decision" : "this decision"),
                "");
  }
  return ok;
}

static int issuer_accepted(const struct catalogue_certificate *ce, uint32_t inst) {
  for (uint32_t i = 0; i < ce->nissuers; i++)
    if (ce->issuers[i] == inst) return 1;
  return 0;
}

static int check_cert(struct ev *e, const struct catalogue_rule *r, const struct ev_cite *ci,
                      int report) {
  const struct catalogue *c = e->c;
  const struct catalogue_certificate *ce = &c->certificates[r->req_certificate];
  const struct catalogue_scale *sc = &c->scales[ce->scale];
  int ok = 1;
  if (ci->a->kind != ce->kind) {
    ok = 0;
    if (report)
      shortfall(e, r, RECOG_SF_KIND_MISMATCH, ce->code, ce->name, ci,
                catalogue_achievement_kind_name(ci->a->kind),
                catalogue_achievement_kind_name(ce->kind));
  }
  if (ci->inst == CATALOGUE_NONE || !issuer_accepted(ce, ci->inst)) {
    ok = 0;
    if (report) {
      struct catalogue_text t = {0};
      for (uint32_t i = 0; i < ce->nissuers; i++)
        catalogue_text_printf(&t, "%s%s", i ? " " : "", c->institutions[ce->issuers[i]].code);
      shortfall(e, r, RECOG_SF_ISSUER_NOT_ACCEPTED, ce->code, ce->name, ci, ci->a->issuer,
                t.s ? t.s : "");
      if (t.oom) e->oom = 1;
      catalogue_text_free(&t);
    }
  }
  if (ci->level == CATALOGUE_NONE) {
    ok = 0;
    if (report) {
      struct catalogue_text t = {0};
      catalogue_text_printf(&t, "%s: ", sc->id);
      cat_text_list(&t, sc->levels, sc->nlevels, " ");
      shortfall(e, r, RECOG_SF_LEVEL_UNKNOWN, ce->code, ce->name, ci, ci->a->level,
                t.s ? t.s : "");
      if (t.oom) e->oom = 1;
      catalogue_text_free(&t);
    }
  } else if (ci->level < r->req_min_level) {
    ok = 0;
    if (report)
      shortfall(e, r, RECOG_SF_LEVEL_TOO_LOW, ce->code, ce->name, ci, sc->levels[ci->level],
                sc->levels[r->req_min_level]);
  }
  return check_common(e, r, ci, ce->code, ce->name, report) && ok;
}

static const char *score_need(struct ev *e, int64_t milli) {
  char b[32];
  catalogue_format_milli(milli, b, sizeof b);
  return keep(e, b);
}

static int check_course(struct ev *e, const struct catalogue_rule *r, const struct ev_cite *ci,
                        const struct catalogue_course *co, int report) {
  const struct catalogue *c = e->c;
  int ok = 1;
  int kind = ci->a->kind;
  if (kind != CATALOGUE_KIND_ACADEMIC_COURSE && kind != CATALOGUE_KIND_NON_FORMAL) {
    ok = 0;
    if (report)
      shortfall(e, r, RECOG_SF_KIND_MISMATCH, co->code, co->name, ci,
                catalogue_achievement_kind_name(kind), "academic_course or non_formal");
  }
  if (ci->score_state < 0) {
    ok = 0;
    if (report) {
      char lo[32], hi[32];
      catalogue_format_milli(c->scores.min_milli, lo, sizeof lo);
      catalogue_format_milli(c->scores.max_milli, hi, sizeof hi);
      shortfall(e, r, RECOG_SF_SCORE_UNKNOWN, co->code, co->name, ci, ci->a->score,
                keepf(e, "%s..%s or a grade", lo, hi));
    }
  } else if (ci->score_state > 0 && ci->score < c->scores.pass_milli) {
    ok = 0;
    if (report)
      shortfall(e, r, RECOG_SF_COURSE_NOT_PASSED, co->code, co->name, ci, ci->a->score,
                score_need(e, c->scores.pass_milli));
  } else if (r->min_score_milli >= 0 && (ci->score_state == 0 || ci->score < r->min_score_milli)) {
    ok = 0;
    if (report)
      shortfall(e, r, RECOG_SF_SCORE_TOO_LOW, co->code, co->name, ci,
                ci->score_state ? ci->a->score : "(none)", r->min_score_text);
  }
  return check_common(e, r, ci, co->code, co->name, report) && ok;
}

/* ------------------------------------------------------------ requirements */

/* Best citation of a certificate: highest level, then latest, then the
 * smallest aid (citations are in aid order). */
static int better_cert(const struct ev_cite *x, const struct ev_cite *best) {
  if (!best) return 1;
  if (x->level != best->level) return x->level > best->level;
  return x->a->awarded_on > best->a->awarded_on;
}

static int better_course(const struct ev_cite *x, const struct ev_cite *best) {
  if (!best) return 1;
  int64_t xs = x->score_state > 0 ? x->score : -1, bs = best->score_state > 0 ? best->score : -1;
  if (xs != bs) return xs > bs;
  return x->a->awarded_on > best->a->awarded_on;
}

static struct ev_cite *need_certificate(struct ev *e, const struct catalogue_rule *r) {
  struct ev_cite *best = NULL;
  int any = 0;
  for (size_t i = 0; i < e->ncites; i++) {
    struct ev_cite *ci = &e->cites[i];
    if (ci->cert != r->req_certificate) continue;
    any = 1;
    ci->referenced = 1;
    if (check_cert(e, r, ci, 0) && better_cert(ci, best)) best = ci;
  }
  if (best) return best;
  const struct catalogue_certificate *ce = &e->c->certificates[r->req_certificate];
  if (!any) {
    const struct catalogue_scale *sc = &e->c->scales[ce->scale];
    shortfall(e, r, RECOG_SF_CERTIFICATE_MISSING, ce->code, ce->name, NULL, "",
              sc->levels[r->req_min_level]);
  }
  for (size_t i = 0; i < e->ncites; i++)
    if (e->cites[i].cert == r->req_certificate) check_cert(e, r, &e->cites[i], 1);
  return NULL;
}

static struct ev_cite *need_course(struct ev *e, const struct catalogue_rule *r, uint32_t course) {
  const struct catalogue_course *co = &e->c->courses[course];
  struct ev_cite *best = NULL;
  int any = 0;
  for (size_t i = 0; i < e->ncites; i++) {
    struct ev_cite *ci = &e->cites[i];
    if (ci->course != course) continue;
    any = 1;
    ci->referenced = 1;
    if (check_course(e, r, ci, co, 0) && better_course(ci, best)) best = ci;
  }
  if (best) return best;
  if (!any) {
    const struct catalogue_institution *in = &e->c->institutions[co->institution];
    shortfall(e, r, RECOG_SF_COURSE_MISSING, co->code, co->name, NULL, "", in->code);
    return NULL;
  }
  for (size_t i = 0; i < e->ncites; i++)
    if (e->cites[i].course == course) check_course(e, r, &e->cites[i], co, 1);
  return NULL;
}

/* ------------------------------------------------------------ grants */

static int aid_cmp(const void *x, const void *y) { return memcmp(x, y, RECOG_AID_BYTES); }

static struct recog_grant *new_grant(struct ev *e, const struct catalogue_rule *r, int kind,
                                     struct ev_cite *const *used, size_t nused) {
  uint8_t(*aids)[RECOG_AID_BYTES] = cat_arena_alloc(&e->m->arena, (nused ? nused : 1) * RECOG_AID_BYTES);
  struct recog_grant *g = push(e, &e->m->grants, sizeof *g);
  if (!aids || !g) {
    e->oom = 1;
    return NULL;
  }
  size_t n = 0;
  for (size_t i = 0; i < nused; i++) {
    int dup = 0;
    for (size_t j = 0; j < n && !dup; j++) dup = memcmp(aids[j], used[i]->a->aid, RECOG_AID_BYTES) == 0;
    if (!dup) memcpy(aids[n++], used[i]->a->aid, RECOG_AID_BYTES);
  }
  if (n > 1) qsort(aids, n, RECOG_AID_BYTES, aid_cmp);
  g->rule_id = r->id;
  g->rule_kind = r->kind;
  g->kind = kind;
  g->course = g->course_title = g->certificate = g->certificate_title = g->level = "";
  g->aids = (const uint8_t(*)[RECOG_AID_BYTES])aids;
  g->naids = (uint32_t)n;
  return g;
}

static void grant_certificate(struct ev *e, const struct catalogue_rule *r, int kind,
                              struct ev_cite *const *used, size_t nused) {
  const struct catalogue_certificate *ce = &e->c->certificates[r->out_certificate];
  struct recog_grant *g = new_grant(e, r, kind, used, nused);
  if (!g) return;
  g->certificate = ce->code;
  g->certificate_title = ce->name;
  g->level = e->c->scales[ce->scale].levels[r->out_level];
}

/* A course granted in this decision already (by an earlier rule). */
static const char *granted_here(const struct ev *e, uint32_t course) {
  const struct recog_grant *g = e->m->grants.v;
  const char *code = e->c->courses[course].code;
  for (size_t i = 0; i < e->m->grants.n; i++)
    if (g[i].kind == RECOG_GRANT_COURSE_CREDITS && str_eq(g[i].course, code)) return g[i].rule_id;
  return NULL;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int grant_courses(struct ev *e, const struct catalogue_rule *r, struct ev_cite *const *used,
                         size_t nused) {
  const struct catalogue *c = e->c;
  const struct catalogue_programme *p = &c->programmes[e->target];
  int64_t rule_room = r->cap_milli >= 0 ? r->cap_milli - earlier_rule_credits(e, r->id) : INT64_MAX;
  int tt = r->kind == CATALOGUE_RULE_THROUGH_TRAIN;
  int64_t tt_cap = catalogue_through_train_cap_milli(p);
  int any = 0;
  for (uint32_t j = 0; j < r->ngrants; j++) {
    const struct catalogue_course *co = &c->courses[r->grants[j]];
    const char *by = earlier_course_rule(e, co->code);
    const char *here = by ? NULL : granted_here(e, r->grants[j]);
    if (by || here) {
      shortfall(e, r, RECOG_SF_COURSE_ALREADY_GRANTED, co->code, co->name, NULL,
                keepf(e, "%s (%s)", by ? by : here, by ? "earlier decision" : "this decision"), "");
      continue;
    }
    int64_t room = min64(rule_room, tt ? tt_cap - e->tt_used : INT64_MAX);
    int64_t give = min64(co->credits_milli, room > 0 ? room : 0);
    if (give < co->credits_milli) {
      char have[32], want[32], cap[32], tot[32];
      catalogue_format_milli(give, have, sizeof have);
      catalogue_format_milli(co->credits_milli, want, sizeof want);
      int tt_bound = tt && tt_cap - e->tt_used <= rule_room;
      catalogue_format_milli(tt_bound ? tt_cap : r->cap_milli, cap, sizeof cap);
      catalogue_format_milli(p->total_credits_milli, tot, sizeof tot);
      shortfall(e, r, RECOG_SF_CAP_REACHED, co->code, co->name, NULL,
                keepf(e, "%s of %s", have, want),
                tt_bound ? keepf(e, "%s (%d%% of %s)", cap, CATALOGUE_THROUGH_TRAIN_PERCENT, tot)
                         : keep(e, cap));
    }
    if (give <= 0) continue;
    struct recog_grant *g = new_grant(e, r, RECOG_GRANT_COURSE_CREDITS, used, nused);
    if (!g) return any;
    g->course = co->code;
    g->course_title = co->name;
    g->credits_milli = give;
    g->course_credits_milli = co->credits_milli;
    e->d->credits_milli += give;
    rule_room -= give;
    if (tt) e->tt_used += give;
    any = 1;
  }
  return any;
}

/* ------------------------------------------------------------ a rule */

static void eval_rule(struct ev *e, const struct catalogue_rule *r) {
  const struct recog_request *q = e->req;
  char a[16], b[16];
  /* Mark what the rule looks at, even when it is out of date. */
  for (size_t i = 0; i < e->ncites; i++) {
    struct ev_cite *ci = &e->cites[i];
    if (ci->cert != CATALOGUE_NONE && ci->cert == r->req_certificate) ci->referenced = 1;
    for (uint32_t j = 0; ci->course != CATALOGUE_NONE && j < r->nrequired; j++)
      if (r->required[j] == ci->course) ci->referenced = 1;
  }
  if (q->date < r->valid_from) {
    date_text(q->date, a);
    date_text(r->valid_from, b);
    shortfall(e, r, RECOG_SF_RULE_NOT_YET_VALID, "", "", NULL, a, b);
    return;
  }
  if (r->valid_to && q->date > r->valid_to) {
    date_text(q->date, a);
    date_text(r->valid_to, b);
    shortfall(e, r, RECOG_SF_RULE_NO_LONGER_VALID, "", "", NULL, a, b);
    return;
  }
  struct ev_cite *used[CATALOGUE_MAX_LIST + 1];
  size_t nused = 0;
  int ok = 1;
  if (r->req_certificate != CATALOGUE_NONE) {
    struct ev_cite *ci = need_certificate(e, r);
    if (ci) used[nused++] = ci;
    else ok = 0;
  }
  for (uint32_t j = 0; j < r->nrequired && nused <= CATALOGUE_MAX_LIST; j++) {
    struct ev_cite *ci = need_course(e, r, r->required[j]);
    if (ci) used[nused++] = ci;
    else ok = 0;
  }
  if (!ok) return;
  int granted = 0;
  if (r->kind == CATALOGUE_RULE_CREDIT_RECOGNISED) {
    grant_certificate(e, r, RECOG_GRANT_EXAM_EXEMPTION, used, nused);
    granted = 1;
  } else {
    granted = grant_courses(e, r, used, nused);
    if (r->out_certificate != CATALOGUE_NONE) {
      grant_certificate(e, r, RECOG_GRANT_CERTIFICATE_ELIGIBILITY, used, nused);
      granted = 1;
    }
  }
  if (granted && e->target != CATALOGUE_NONE)
    for (size_t i = 0; i < nused; i++)
      if (!used[i]->counted_by) used[i]->counted_by = r->id;
}

/* ------------------------------------------------------------ the end */

static void name_unused(struct ev *e) {
  if (e->target == CATALOGUE_NONE) return; /* an exemption answer names only its rules */
  for (size_t i = 0; i < e->ncites; i++) {
    const struct ev_cite *ci = &e->cites[i];
    if (ci->referenced) continue;
    int unknown = ci->inst == CATALOGUE_NONE && ci->cert == CATALOGUE_NONE;
    shortfall(e, NULL, unknown ? RECOG_SF_UNKNOWN_ISSUER : RECOG_SF_NO_RULE, ci->a->code,
              ci->a->title, ci, unknown ? ci->a->issuer : "", "");
  }
}

static void finish(struct ev *e) {
  struct recog_decision *d = e->d;
  struct recog_mem *m = e->m;
  d->cited = m->cited.v;
  d->ncited = m->cited.n;
  d->grants = m->grants.v;
  d->ngrants = m->grants.n;
  d->shortfalls = m->shortfalls.v;
  d->nshortfalls = m->shortfalls.n;
  int close = 0;
  for (size_t i = 0; i < d->nshortfalls; i++) close |= d->shortfalls[i].rule_id[0] != '\0';
  if (d->ngrants == 0) {
    d->status = RECOG_NEGATIVE;
  } else if (e->target == CATALOGUE_NONE) {
    d->status = RECOG_POSITIVE; /* exempt: what other rules miss does not matter */
    d->nshortfalls = m->shortfalls.n = 0;
  } else {
    d->status = close ? RECOG_PARTIALLY_POSITIVE : RECOG_POSITIVE;
  }
}

static void reset(struct recog_decision *d, struct recog_mem *m) {
  cat_arena_reset(&m->arena);
  struct cat_vec *vs[] = {&m->cited, &m->grants, &m->shortfalls, &m->cites,
                          &m->order, &m->cand,   &m->earlier};
  for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) vs[i]->n = 0;
  void *keep_mem = d->mem;
  memset(d, 0, sizeof *d);
  d->mem = keep_mem;
}

int recog_evaluate(const struct catalogue *c, const struct recog_request *req,
                   struct recog_decision *d, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  if (!d->mem && !(d->mem = calloc(1, sizeof(struct recog_mem))))
    return fail(err, errlen, RECOG_ENOMEM, "out of memory");
  struct recog_mem *m = d->mem;
  reset(d, m);
  if (!c || !req) return fail(err, errlen, RECOG_EINVAL, "no catalogue or request");
  int rc = check_request(req, err, errlen);
  if (rc) return rc;
  struct ev e = {.c = c, .req = req, .d = d, .m = m};
  d->request_id = keep(&e, req->request_id);
  d->decider = keep(&e, req->decider);
  memcpy(d->learner_ref, req->learner_ref, sizeof d->learner_ref);
  memcpy(d->catalogue_version, c->version, CB_HASH_BYTES);
  d->date = req->date;
  d->decided_at_ms = req->decided_at_ms;
  d->target_institution = d->target_programme = d->target_certificate = d->target_level = "";
  if ((rc = resolve_target(&e, err, errlen)) != 0) goto out;
  if ((rc = setup_earlier(&e)) != 0) goto out;
  if ((rc = setup_cites(&e, err, errlen)) != 0) goto out;
  find_cands(&e);
  const uint32_t *cand = m->cand.v;
  for (size_t i = 0; i < m->cand.n && !e.oom; i++) eval_rule(&e, &c->rules[cand[i]]);
  name_unused(&e);
  finish(&e);
out:
  if (!rc && e.oom) rc = fail(err, errlen, RECOG_ENOMEM, "out of memory");
  if (rc) {
    void *keep_mem = d->mem;
    reset(d, m);
    d->mem = keep_mem;
  }
  return rc;
}

const char *recog_strerror(int err) {
  switch (err) {
#define RECOG_STR_(name, val, str) \
  case val: return str;
    RECOG_ERRORS(RECOG_STR_)
#undef RECOG_STR_
  default: return "unknown recognition error";
  }
}

const char *recog_shortfall_name(int code) {
  switch (code) {
#define RECOG_STR_(name, val, str) \
  case val: return str;
    RECOG_SHORTFALLS(RECOG_STR_)
#undef RECOG_STR_
  default: return "unknown shortfall";
  }
}

const char *recog_status_name(int status) {
  switch (status) {
  case RECOG_POSITIVE: return "positive";
  case RECOG_PARTIALLY_POSITIVE: return "partially positive";
  case RECOG_NEGATIVE: return "negative";
  default: return "unknown";
  }
}
