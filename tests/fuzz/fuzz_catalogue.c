/* libFuzzer target: a catalogue file is operator input that every node
 * loads, and a catalogue fetched from a peer by hash is peer input. The
 * bytes go through the JSON reader and the validator as `cbctl catalogue
 * validate` runs them. Nothing may crash, leak or read out of bounds; a
 * refused file returns nothing and names at least one error; an accepted
 * one can be shown, diffed with itself (no change), and each of its first
 * rules, fed the achievements it asks for, evaluates without error to a
 * decision whose canonical bytes decode again and equal the full scan's. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue_json.h"
#include "cb_crypto_openssl.h"
#include "recog.h"
#include "recog_pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cb_crypto crypto;
static int ready;

static uint8_t *encode(const struct recog_decision *d, size_t *len) {
  *len = recog_encoded_size(d);
  uint8_t *b = malloc(*len + 1);
  assert(b && recog_encode(d, b, *len) == (long)*len);
  return b;
}

/* The achievements a rule asks for, at its thresholds. */
static size_t cite_rule(const struct catalogue *c, const struct catalogue_rule *r,
                        struct recog_achievement *a, size_t cap) {
  size_t n = 0;
  if (r->req_certificate != CATALOGUE_NONE && n < cap) {
    const struct catalogue_certificate *ce = &c->certificates[r->req_certificate];
    memset(&a[n], 0, sizeof a[n]);
    a[n].aid[0] = (uint8_t)n;
    a[n].holder = "js";
    a[n].kind = ce->kind;
    a[n].issuer = ce->nissuers ? c->institutions[ce->issuers[0]].code : "?";
    a[n].code = ce->code;
    a[n].title = ce->name;
    a[n].level = c->scales[ce->scale].levels[r->req_min_level];
    a[n].score = "";
    a[n].awarded_on = r->valid_from;
    n++;
  }
  for (uint32_t i = 0; i < r->nrequired && n < cap; i++, n++) {
    const struct catalogue_course *co = &c->courses[r->required[i]];
    memset(&a[n], 0, sizeof a[n]);
    a[n].aid[0] = (uint8_t)n;
    a[n].aid[1] = 1;
    a[n].holder = "sh";
    a[n].kind = CATALOGUE_KIND_ACADEMIC_COURSE;
    a[n].issuer = c->institutions[co->institution].code;
    a[n].code = co->code;
    a[n].title = co->name;
    a[n].level = "";
    a[n].score = r->min_score_text ? r->min_score_text : "";
    a[n].credits_milli = co->credits_milli;
    a[n].awarded_on = r->valid_from;
  }
  return n;
}

static void evaluate_rule(const struct catalogue *c, const struct catalogue_rule *r,
                          struct recog_decision *d, struct recog_decision *scan) {
  struct recog_achievement a[64];
  struct recog_request q;
  memset(&q, 0, sizeof q);
  q.request_id = "fuzz";
  q.decider = "sh";
  q.date = r->valid_from;
  q.cited = a;
  q.ncited = cite_rule(c, r, a, 64);
  if (r->kind == CATALOGUE_RULE_CREDIT_RECOGNISED) {
    const struct catalogue_certificate *ce = &c->certificates[r->out_certificate];
    q.target_kind = RECOG_TARGET_EXEMPTION;
    q.certificate = ce->code;
    q.level = c->scales[ce->scale].levels[r->out_level];
  } else {
    const struct catalogue_programme *p = &c->programmes[r->target];
    q.target_kind = RECOG_TARGET_PROGRAMME;
    q.institution = c->institutions[p->institution].code;
    q.programme = p->code;
  }
  char err[256];
  int rc = recog_evaluate(c, &q, d, err, sizeof err);
  if (rc != 0) {
    /* only a citation the catalogue itself made invalid (a text bound of
     * records.md tighter than the catalogue's) may be refused */
    assert(rc == RECOG_EINVAL && err[0]);
    return;
  }
  assert(d->status >= RECOG_POSITIVE && d->status <= RECOG_NEGATIVE);
  q.flags = RECOG_F_SCAN_ALL;
  assert(recog_evaluate(c, &q, scan, err, sizeof err) == 0);
  size_t la, lb;
  uint8_t *x = encode(d, &la), *y = encode(scan, &lb);
  assert(la == lb && memcmp(x, y, la) == 0);
  struct recog_pb_decoded dec;
  assert(recog_pb_decode(x, la, &dec, err, sizeof err) == 0);
  recog_pb_decoded_free(&dec);
  struct catalogue_text t = {0};
  recog_decision_format(d, &t);
  catalogue_text_free(&t);
  free(x);
  free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ready) {
    cb_crypto_openssl_verifier(&crypto);
    ready = 1;
  }
  struct catalogue *c = NULL;
  struct catalogue_errors e = {0};
  int rc = catalogue_load_buffer(data, size, &crypto, &c, &e);
  if (rc != 0) {
    assert(c == NULL && e.count > 0 && e.nkept > 0);
    for (size_t i = 0; i < e.nkept; i++) assert(e.lines[i][0] != '\0');
    catalogue_errors_free(&e);
    return 0;
  }
  assert(c && e.count == 0);
  struct catalogue_text t = {0};
  catalogue_show(c, 1, &t);
  assert(t.oom || t.len > 0);
  catalogue_text_free(&t);
  assert(catalogue_diff(c, c, &t) == 0);
  catalogue_text_free(&t);
  struct recog_decision d, scan;
  recog_decision_init(&d);
  recog_decision_init(&scan);
  for (uint32_t i = 0; i < c->nrules && i < 16; i++) evaluate_rule(c, &c->rules[i], &d, &scan);
  recog_decision_free(&d);
  recog_decision_free(&scan);
  catalogue_free(c);
  return 0;
}
