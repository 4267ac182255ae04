/* A decision in words for operators and learners (spec/recognition.md
 * §7): every shortfall says what is missing, in terms of the catalogue. */
#include <stdio.h>
#include <string.h>

#include "recog.h"

static void aid_short(const uint8_t *aid, char out[17]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) {
    out[2 * i] = hex[aid[i] >> 4];
    out[2 * i + 1] = hex[aid[i] & 15];
  }
  out[16] = '\0';
}

void recog_shortfall_text(const struct recog_shortfall *s, struct catalogue_text *t) {
  const char *k = catalogue_rule_kind_cn(s->rule_kind);
  if (s->rule_id[0]) catalogue_text_printf(t, "%s (%s): ", s->rule_id, k ? k : "?");
  const char *sub = s->subject, *ti = s->subject_title;
  switch (s->code) {
  case 1:
    catalogue_text_printf(t, "rule valid only from %s; the decision date is %s", s->need, s->have);
    break;
  case 2:
    catalogue_text_printf(t, "rule valid only until %s; the decision date is %s", s->need, s->have);
    break;
  case 3:
    catalogue_text_printf(t, "course %s %s of %s not passed (not among the achievements cited)",
                          sub, ti, s->need);
    break;
  case 4:
    catalogue_text_printf(t, "course %s %s: score %s below the pass mark %s", sub, ti, s->have,
                          s->need);
    break;
  case 5:
    catalogue_text_printf(t, "course %s %s: score %s below the rule's minimum %s", sub, ti,
                          s->have, s->need);
    break;
  case 6:
    catalogue_text_printf(t, "certificate %s %s at level %s or above not cited", sub, ti, s->need);
    break;
  case 7:
    catalogue_text_printf(t, "certificate %s %s: level %s below %s", sub, ti, s->have, s->need);
    break;
  case 8:
    catalogue_text_printf(t, "certificate %s %s: level '%s' is not in the catalogue's scale (%s): "
                          "vocabulary mismatch", sub, ti, s->have, s->need);
    break;
  case 9:
    catalogue_text_printf(t, "course %s %s: score '%s' is not a score of the catalogue (%s)", sub,
                          ti, s->have, s->need);
    break;
  case 10:
    catalogue_text_printf(t, "%s %s awarded %s, older than the rule allows (awarded on or after "
                          "%s)", sub, ti, s->have, s->need);
    break;
  case 11:
    catalogue_text_printf(t, "%s %s awarded %s, after the decision date %s", sub, ti, s->have,
                          s->need);
    break;
  case 12:
    catalogue_text_printf(t, "certificate %s %s issued by %s, not by an issuer the catalogue lists "
                          "for it (%s)", sub, ti, s->have, s->need);
    break;
  case 13:
    catalogue_text_printf(t, "%s %s is cited as %s; the rule needs %s", sub, ti, s->have, s->need);
    break;
  case 14:
    catalogue_text_printf(t, "%s %s already counts toward this programme under rule %s", sub, ti,
                          s->have);
    break;
  case 15:
    catalogue_text_printf(t, "course %s %s already granted by rule %s", sub, ti, s->have);
    break;
  case 16:
    catalogue_text_printf(t, "course %s %s: %s credits granted; cap %s reached", sub, ti, s->have,
                          s->need);
    break;
  case 17:
    catalogue_text_printf(t, "%s %s: no rule of the catalogue toward this target uses it", sub,
                          ti);
    break;
  case 18:
    catalogue_text_printf(t, "%s %s: issuer %s is not in the catalogue's institution table", sub,
                          ti, s->have);
    break;
  default:
    catalogue_text_printf(t, "%s (%s %s)", recog_shortfall_name(s->code), sub, ti);
  }
  if (s->has_aid && s->code != 3 && s->code != 6) {
    char a[17];
    aid_short(s->aid, a);
    catalogue_text_printf(t, " [aid %s…]", a);
  }
}

void recog_decision_format(const struct recog_decision *d, struct catalogue_text *t) {
  char c[32], date[16], v[2 * CB_HASH_BYTES + 1];
  catalogue_format_date(d->date, date, sizeof date);
  catalogue_version_hex(d->catalogue_version, v);
  if (d->target_kind == RECOG_TARGET_EXEMPTION)
    catalogue_text_printf(t, "exemption answer %s by %s: theory exam of %s %s %s\n",
                          d->request_id, d->decider, d->target_certificate, d->target_title,
                          d->target_level);
  else
    catalogue_text_printf(t, "decision %s by %s: %s/%s %s\n", d->request_id, d->decider,
                          d->target_institution, d->target_programme, d->target_title);
  catalogue_text_printf(t, "catalogue %.16s…, decision date %s\n", v, date);
  catalogue_format_milli(d->credits_milli, c, sizeof c);
  if (d->target_kind == RECOG_TARGET_EXEMPTION)
    catalogue_text_printf(t, "status: %s\n", d->status == RECOG_POSITIVE ? "EXEMPT" : "not exempt");
  else
    catalogue_text_printf(t, "status: %s, %s credits granted\n", recog_status_name(d->status), c);
  if (d->ngrants) catalogue_text_printf(t, "granted:\n");
  for (size_t i = 0; i < d->ngrants; i++) {
    const struct recog_grant *g = &d->grants[i];
    catalogue_text_printf(t, "  %s (%s): ", g->rule_id, catalogue_rule_kind_cn(g->rule_kind));
    if (g->kind == RECOG_GRANT_COURSE_CREDITS) {
      catalogue_format_milli(g->credits_milli, c, sizeof c);
      catalogue_text_printf(t, "course %s %s, %s credits", g->course, g->course_title, c);
      if (g->credits_milli < g->course_credits_milli) {
        catalogue_format_milli(g->course_credits_milli, c, sizeof c);
        catalogue_text_printf(t, " (of %s: capped)", c);
      }
    } else {
      catalogue_text_printf(t, "%s %s %s %s", g->kind == RECOG_GRANT_EXAM_EXEMPTION
                                                  ? "theory exam exemption:" : "eligible for",
                            g->certificate, g->certificate_title, g->level);
    }
    catalogue_text_printf(t, "; uses");
    for (uint32_t j = 0; j < g->naids; j++) {
      char a[17];
      aid_short(g->aids[j], a);
      catalogue_text_printf(t, " %s…", a);
    }
    catalogue_text_printf(t, "\n");
  }
  if (d->nshortfalls) catalogue_text_printf(t, "not granted, and why:\n");
  for (size_t i = 0; i < d->nshortfalls; i++) {
    catalogue_text_printf(t, "  ");
    recog_shortfall_text(&d->shortfalls[i], t);
    catalogue_text_printf(t, "\n");
  }
  catalogue_text_printf(t, "cited: %zu\n", d->ncited);
  for (size_t i = 0; i < d->ncited; i++) {
    const struct recog_cited *ci = &d->cited[i];
    char a[17];
    aid_short(ci->aid, a);
    catalogue_format_date(ci->awarded_on, date, sizeof date);
    catalogue_text_printf(t, "  %s… %s %s %s%s%s %s (held by %s%s)\n", a, ci->issuer, ci->code,
                          ci->title, ci->level[0] ? " " : "", ci->level, date, ci->holder,
                          ci->has_attestation ? ", attested" : "");
  }
}
