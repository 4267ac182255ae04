/* Decision <-> protobuf-c (proto/recognition.proto); see recog_pb.h. */
#include "recog_pb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ view */

struct view_mem {
  Cb__CitedAchievement *cited;
  Cb__CitedAchievement **cited_p;
  Cb__Grant *grants;
  Cb__Grant **grants_p;
  ProtobufCBinaryData *aids;
  Cb__Shortfall *sf;
  Cb__Shortfall **sf_p;
};

static ProtobufCBinaryData bin(const uint8_t *p, size_t n) {
  ProtobufCBinaryData b = {n, (uint8_t *)p};
  return b;
}

static char *s(const char *x) { return (char *)(x ? x : ""); }

int recog_pb_view(const struct recog_decision *d, struct recog_pb_view *v) {
  memset(v, 0, sizeof *v);
  struct view_mem *m = calloc(1, sizeof *m);
  size_t naids = 0;
  for (size_t i = 0; i < d->ngrants; i++) naids += d->grants[i].naids;
  if (m) {
    m->cited = calloc(d->ncited + 1, sizeof *m->cited);
    m->cited_p = calloc(d->ncited + 1, sizeof *m->cited_p);
    m->grants = calloc(d->ngrants + 1, sizeof *m->grants);
    m->grants_p = calloc(d->ngrants + 1, sizeof *m->grants_p);
    m->aids = calloc(naids + 1, sizeof *m->aids);
    m->sf = calloc(d->nshortfalls + 1, sizeof *m->sf);
    m->sf_p = calloc(d->nshortfalls + 1, sizeof *m->sf_p);
  }
  v->mem = m;
  if (!m || !m->cited || !m->cited_p || !m->grants || !m->grants_p || !m->aids || !m->sf ||
      !m->sf_p) {
    recog_pb_view_free(v);
    return RECOG_ENOMEM;
  }
  Cb__RecognitionDecision *o = &v->msg;
  cb__recognition_decision__init(o);
  cb__recognition_target__init(&v->target);
  v->target.institution = s(d->target_institution);
  v->target.programme = s(d->target_programme);
  v->target.certificate = s(d->target_certificate);
  v->target.level = s(d->target_level);
  v->target.title = s(d->target_title);
  o->request_id = s(d->request_id);
  o->decider = s(d->decider);
  o->learner_ref = bin(d->learner_ref, sizeof d->learner_ref);
  o->target = &v->target;
  o->catalogue_version = bin(d->catalogue_version, CB_HASH_BYTES);
  o->decision_date = d->date;
  o->decided_at_ms = d->decided_at_ms;
  o->status = (Cb__RecognitionStatus)d->status;
  o->credits_milli = d->credits_milli;
  for (size_t i = 0; i < d->ncited; i++) {
    const struct recog_cited *c = &d->cited[i];
    Cb__CitedAchievement *x = &m->cited[i];
    cb__cited_achievement__init(x);
    x->aid = bin(c->aid, RECOG_AID_BYTES);
    x->holder = s(c->holder);
    if (c->has_attestation) x->attestation_hash = bin(c->attestation_hash, CB_HASH_BYTES);
    x->issuer = s(c->issuer);
    x->code = s(c->code);
    x->title = s(c->title);
    x->level = s(c->level);
    x->awarded_on = c->awarded_on;
    m->cited_p[i] = x;
  }
  o->n_cited = d->ncited;
  o->cited = m->cited_p;
  size_t a = 0;
  for (size_t i = 0; i < d->ngrants; i++) {
    const struct recog_grant *g = &d->grants[i];
    Cb__Grant *x = &m->grants[i];
    cb__grant__init(x);
    x->rule_id = s(g->rule_id);
    x->rule_kind = (Cb__RuleKind)g->rule_kind;
    x->kind = (Cb__GrantKind)g->kind;
    x->course = s(g->course);
    x->course_title = s(g->course_title);
    x->credits_milli = g->credits_milli;
    x->course_credits_milli = g->course_credits_milli;
    x->certificate = s(g->certificate);
    x->certificate_title = s(g->certificate_title);
    x->level = s(g->level);
    x->n_aids = g->naids;
    x->aids = &m->aids[a];
    for (uint32_t j = 0; j < g->naids; j++) m->aids[a++] = bin(g->aids[j], RECOG_AID_BYTES);
    m->grants_p[i] = x;
  }
  o->n_grants = d->ngrants;
  o->grants = m->grants_p;
  for (size_t i = 0; i < d->nshortfalls; i++) {
    const struct recog_shortfall *f = &d->shortfalls[i];
    Cb__Shortfall *x = &m->sf[i];
    cb__shortfall__init(x);
    x->rule_id = s(f->rule_id);
    x->rule_kind = (Cb__RuleKind)f->rule_kind;
    x->code = (Cb__ShortfallCode)f->code;
    x->subject = s(f->subject);
    x->subject_title = s(f->subject_title);
    if (f->has_aid) x->aid = bin(f->aid, RECOG_AID_BYTES);
    x->have = s(f->have);
    x->need = s(f->need);
    m->sf_p[i] = x;
  }
  o->n_shortfalls = d->nshortfalls;
  o->shortfalls = m->sf_p;
  return 0;
}

void recog_pb_view_free(struct recog_pb_view *v) {
  struct view_mem *m = v->mem;
  if (m) {
    free(m->cited);
    free(m->cited_p);
    free(m->grants);
    free(m->grants_p);
    free(m->aids);
    free(m->sf);
    free(m->sf_p);
    free(m);
  }
  v->mem = NULL;
}

/* ------------------------------------------------------------ decode */

struct decoded_mem {
  struct recog_cited *cited;
  struct recog_grant *grants;
  struct recog_shortfall *sf;
  uint8_t (*aids)[RECOG_AID_BYTES];
  uint8_t *again;
};

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return RECOG_EINVAL;
}

static int text(const char *x, size_t max) { return x && catalogue_text_ok(x, max, 1); }

static int check_msg(const Cb__RecognitionDecision *o, char *err, size_t errlen) {
  if (!text(o->request_id, RECOG_ID_MAX) || !o->request_id[0] || !text(o->decider, RECOG_ID_MAX) ||
      !o->decider[0])
    return bad(err, errlen, "request id or decider missing or not printable");
  if (o->learner_ref.len != 32 || o->catalogue_version.len != CB_HASH_BYTES)
    return bad(err, errlen, "learner_ref and catalogue_version must be 32 bytes");
  if (!o->target) return bad(err, errlen, "target missing");
  const Cb__RecognitionTarget *t = o->target;
  if (!text(t->institution, RECOG_CODE_MAX) || !text(t->programme, RECOG_CODE_MAX) ||
      !text(t->certificate, RECOG_CODE_MAX) || !text(t->level, RECOG_LEVEL_MAX) ||
      !text(t->title, RECOG_TITLE_MAX))
    return bad(err, errlen, "target: bad text");
  int prog = t->institution[0] && t->programme[0], ex = t->certificate[0] && t->level[0];
  if (prog == ex) return bad(err, errlen, "target: a programme or a certificate and level");
  if (!catalogue_date_valid(o->decision_date)) return bad(err, errlen, "decision date invalid");
  if (o->status < 1 || o->status > 3) return bad(err, errlen, "status %d unknown", (int)o->status);
  if (o->credits_milli < 0) return bad(err, errlen, "negative credits");
  for (size_t i = 0; i < o->n_cited; i++) {
    const Cb__CitedAchievement *c = o->cited[i];
    if (c->aid.len != RECOG_AID_BYTES || (c->attestation_hash.len != 0 &&
                                          c->attestation_hash.len != CB_HASH_BYTES) ||
        !text(c->holder, RECOG_ID_MAX) || !text(c->issuer, RECOG_CODE_MAX) ||
        !text(c->code, RECOG_CODE_MAX) || !text(c->title, RECOG_TITLE_MAX) ||
        !text(c->level, RECOG_LEVEL_MAX) || !catalogue_date_valid(c->awarded_on))
      return bad(err, errlen, "cited[%zu] invalid", i);
  }
  for (size_t i = 0; i < o->n_grants; i++) {
    const Cb__Grant *g = o->grants[i];
    if (g->rule_kind < 1 || g->rule_kind > CATALOGUE_RULE_KIND_MAX || g->kind < 1 || g->kind > 3 ||
        g->credits_milli < 0 || g->course_credits_milli < 0 || !text(g->rule_id, RECOG_CODE_MAX) ||
        !text(g->course, RECOG_CODE_MAX) || !text(g->course_title, RECOG_TITLE_MAX) ||
        !text(g->certificate, RECOG_CODE_MAX) || !text(g->certificate_title, RECOG_TITLE_MAX) ||
        !text(g->level, RECOG_LEVEL_MAX))
      return bad(err, errlen, "grants[%zu] invalid", i);
    for (size_t j = 0; j < g->n_aids; j++)
      if (g->aids[j].len != RECOG_AID_BYTES) return bad(err, errlen, "grants[%zu].aids invalid", i);
  }
  for (size_t i = 0; i < o->n_shortfalls; i++) {
    const Cb__Shortfall *f = o->shortfalls[i];
    if (f->rule_kind < 0 || f->rule_kind > CATALOGUE_RULE_KIND_MAX || f->code < 1 || f->code > 18 ||
        (f->aid.len != 0 && f->aid.len != RECOG_AID_BYTES) || !text(f->rule_id, RECOG_CODE_MAX) ||
        !text(f->subject, RECOG_CODE_MAX) || !text(f->subject_title, RECOG_TITLE_MAX) ||
        !text(f->have, 1024) || !text(f->need, 1024))
      return bad(err, errlen, "shortfalls[%zu] invalid", i);
  }
  return 0;
}

static void fill(const Cb__RecognitionDecision *o, struct decoded_mem *m, struct recog_decision *d) {
  const Cb__RecognitionTarget *t = o->target;
  d->request_id = o->request_id;
  d->decider = o->decider;
  memcpy(d->learner_ref, o->learner_ref.data, 32);
  d->target_kind = t->certificate[0] ? RECOG_TARGET_EXEMPTION : RECOG_TARGET_PROGRAMME;
  d->target_institution = t->institution;
  d->target_programme = t->programme;
  d->target_certificate = t->certificate;
  d->target_level = t->level;
  d->target_title = t->title;
  memcpy(d->catalogue_version, o->catalogue_version.data, CB_HASH_BYTES);
  d->date = o->decision_date;
  d->decided_at_ms = o->decided_at_ms;
  d->status = o->status;
  d->credits_milli = o->credits_milli;
  for (size_t i = 0; i < o->n_cited; i++) {
    const Cb__CitedAchievement *c = o->cited[i];
    struct recog_cited *x = &m->cited[i];
    memcpy(x->aid, c->aid.data, RECOG_AID_BYTES);
    x->holder = c->holder;
    x->has_attestation = c->attestation_hash.len != 0;
    if (x->has_attestation) memcpy(x->attestation_hash, c->attestation_hash.data, CB_HASH_BYTES);
    x->issuer = c->issuer;
    x->code = c->code;
    x->title = c->title;
    x->level = c->level;
    x->awarded_on = c->awarded_on;
  }
  size_t a = 0;
  for (size_t i = 0; i < o->n_grants; i++) {
    const Cb__Grant *g = o->grants[i];
    struct recog_grant *x = &m->grants[i];
    x->rule_id = g->rule_id;
    x->rule_kind = g->rule_kind;
    x->kind = g->kind;
    x->course = g->course;
    x->course_title = g->course_title;
    x->credits_milli = g->credits_milli;
    x->course_credits_milli = g->course_credits_milli;
    x->certificate = g->certificate;
    x->certificate_title = g->certificate_title;
    x->level = g->level;
    x->naids = (uint32_t)g->n_aids;
    x->aids = (const uint8_t(*)[RECOG_AID_BYTES])m->aids[a];
    for (size_t j = 0; j < g->n_aids; j++) memcpy(m->aids[a++], g->aids[j].data, RECOG_AID_BYTES);
  }
  for (size_t i = 0; i < o->n_shortfalls; i++) {
    const Cb__Shortfall *f = o->shortfalls[i];
    struct recog_shortfall *x = &m->sf[i];
    x->rule_id = f->rule_id;
    x->rule_kind = f->rule_kind;
    x->code = f->code;
    x->subject = f->subject;
    x->subject_title = f->subject_title;
    x->has_aid = f->aid.len != 0;
    if (x->has_aid) memcpy(x->aid, f->aid.data, RECOG_AID_BYTES);
    x->have = f->have;
    x->need = f->need;
  }
  d->cited = m->cited;
  d->ncited = o->n_cited;
  d->grants = m->grants;
  d->ngrants = o->n_grants;
  d->shortfalls = m->sf;
  d->nshortfalls = o->n_shortfalls;
}

int recog_pb_decode(const uint8_t *buf, size_t len, struct recog_pb_decoded *out, char *err,
                    size_t errlen) {
  memset(out, 0, sizeof *out);
  if (len > RECOG_MAX_DECISION_BYTES) {
    bad(err, errlen, "decision of %zu bytes is over the limit", len);
    return RECOG_ETOOBIG;
  }
  Cb__RecognitionDecision *o = cb__recognition_decision__unpack(NULL, len, buf);
  if (!o) return bad(err, errlen, "not a cb.RecognitionDecision");
  out->msg = o;
  int rc = check_msg(o, err, errlen);
  if (rc) {
    recog_pb_decoded_free(out);
    return rc;
  }
  struct decoded_mem *m = calloc(1, sizeof *m);
  size_t naids = 0;
  for (size_t i = 0; i < o->n_grants; i++) naids += o->grants[i]->n_aids;
  if (m) {
    m->cited = calloc(o->n_cited + 1, sizeof *m->cited);
    m->grants = calloc(o->n_grants + 1, sizeof *m->grants);
    m->sf = calloc(o->n_shortfalls + 1, sizeof *m->sf);
    m->aids = calloc(naids + 1, sizeof *m->aids);
    m->again = malloc(len + 1);
  }
  out->mem = m;
  if (!m || !m->cited || !m->grants || !m->sf || !m->aids || !m->again) {
    recog_pb_decoded_free(out);
    bad(err, errlen, "out of memory");
    return RECOG_ENOMEM;
  }
  fill(o, m, &out->d);
  long n = recog_encode(&out->d, m->again, len);
  if (n < 0 || (size_t)n != len || memcmp(m->again, buf, len) != 0) {
    recog_pb_decoded_free(out);
    return bad(err, errlen, "decision bytes are not in canonical form");
  }
  return 0;
}

void recog_pb_decoded_free(struct recog_pb_decoded *out) {
  struct decoded_mem *m = out->mem;
  if (m) {
    free(m->cited);
    free(m->grants);
    free(m->sf);
    free(m->aids);
    free(m->again);
    free(m);
  }
  if (out->msg) cb__recognition_decision__free_unpacked(out->msg, NULL);
  memset(out, 0, sizeof *out);
}
