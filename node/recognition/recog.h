/* recog.h: recognition evaluation (spec/recognition.md §4-§6). Pure: the C
 * library and the crypto interface only; no clock, no I/O, no randomness.
 *
 * Given the cited achievements (already attested and verified by the
 * caller), the learner's earlier grants toward the target, a target (a
 * programme, or a certificate and level for the exemption question), a
 * sealed catalogue and the decision date, recog_evaluate() returns the
 * decision: status, what each satisfied rule grants and which aids it used,
 * and for each rule that came close exactly what is missing. The result
 * depends on the inputs only, never on their order (they are sorted
 * canonically first), and has one canonical byte encoding (recog_encode),
 * the body of the signed statement tagged RECOG_TAG_DECISION or
 * RECOG_TAG_EXEMPTION. */
#ifndef CB_RECOG_H
#define CB_RECOG_H

#include <stddef.h>
#include <stdint.h>

#include "catalogue.h"
#include "cb_crypto.h"

#define RECOG_TAG_DECISION "cb/recognition-decision/v1"
#define RECOG_TAG_EXEMPTION "cb/exemption-answer/v1"

#define RECOG_AID_BYTES 32u
#define RECOG_MAX_CITED 4096u   /* achievements in one request */
#define RECOG_MAX_EARLIER 65536u
#define RECOG_ID_MAX 128u       /* request id, node ids */
/* Bounds of a cited achievement's text: those of spec/records.md. */
#define RECOG_CODE_MAX 64u
#define RECOG_TITLE_MAX 256u
#define RECOG_LEVEL_MAX 32u
#define RECOG_SCORE_MAX 32u
#define RECOG_MAX_DECISION_BYTES (8u * 1024u * 1024u)

#define RECOG_ERRORS(X)                                                        \
  X(RECOG_OK, 0, "ok")                                                         \
  X(RECOG_EINVAL, -1, "invalid request")                                       \
  X(RECOG_ETARGET, -2, "unknown target")                                       \
  X(RECOG_ENOMEM, -3, "out of memory")                                         \
  X(RECOG_ETOOBIG, -4, "request or decision over its size limit")              \
  X(RECOG_ECRYPTO, -5, "signing failed")                                       \
  X(RECOG_EBADSIG, -6, "signature does not verify")

enum recog_err {
#define RECOG_ENUM_(name, val, str) name = (val),
  RECOG_ERRORS(RECOG_ENUM_)
#undef RECOG_ENUM_
};
const char *recog_strerror(int err);

/* Numbers of cb.RecognitionStatus, cb.GrantKind, cb.ShortfallCode. */
enum recog_status {
  RECOG_POSITIVE = 1,
  RECOG_PARTIALLY_POSITIVE = 2,
  RECOG_NEGATIVE = 3,
};

enum recog_grant_kind {
  RECOG_GRANT_COURSE_CREDITS = 1,
  RECOG_GRANT_EXAM_EXEMPTION = 2,
  RECOG_GRANT_CERTIFICATE_ELIGIBILITY = 3,
};

#define RECOG_SHORTFALLS(X)                                                              \
  X(RECOG_SF_RULE_NOT_YET_VALID, 1, "rule not yet valid")                                 \
  X(RECOG_SF_RULE_NO_LONGER_VALID, 2, "rule no longer valid")                             \
  X(RECOG_SF_COURSE_MISSING, 3, "course not passed")                                      \
  X(RECOG_SF_COURSE_NOT_PASSED, 4, "course failed")                                       \
  X(RECOG_SF_SCORE_TOO_LOW, 5, "score below the rule's minimum")                          \
  X(RECOG_SF_CERTIFICATE_MISSING, 6, "certificate missing")                               \
  X(RECOG_SF_LEVEL_TOO_LOW, 7, "level too low")                                           \
  X(RECOG_SF_LEVEL_UNKNOWN, 8, "level not in the certificate's scale")                    \
  X(RECOG_SF_SCORE_UNKNOWN, 9, "score neither a number in range nor a known grade")       \
  X(RECOG_SF_TOO_OLD, 10, "achievement older than the rule allows")                       \
  X(RECOG_SF_AWARDED_AFTER_DECISION, 11, "awarded after the decision date")               \
  X(RECOG_SF_ISSUER_NOT_ACCEPTED, 12, "issuer not accepted for this certificate")         \
  X(RECOG_SF_KIND_MISMATCH, 13, "achievement of another kind")                            \
  X(RECOG_SF_ALREADY_COUNTED, 14, "achievement already counted toward this programme")    \
  X(RECOG_SF_COURSE_ALREADY_GRANTED, 15, "course already granted")                        \
  X(RECOG_SF_CAP_REACHED, 16, "credit cap reached")                                       \
  X(RECOG_SF_NO_RULE, 17, "no rule toward this target uses it")                           \
  X(RECOG_SF_UNKNOWN_ISSUER, 18, "issuer not in the catalogue")

enum recog_shortfall_code {
#define RECOG_ENUM_(name, val, str) name = (val),
  RECOG_SHORTFALLS(RECOG_ENUM_)
#undef RECOG_ENUM_
};
const char *recog_shortfall_name(int code);   /* "level too low" */
const char *recog_status_name(int status);    /* "positive" ... */

/* ------------------------------------------------------------ input */

/* One cited achievement, as its holder attested it (spec/records.md). The
 * strings are borrowed for the call. */
struct recog_achievement {
  uint8_t aid[RECOG_AID_BYTES];
  const char *holder;              /* node id that attested it, 1..RECOG_ID_MAX */
  uint8_t attestation_hash[CB_HASH_BYTES];
  int has_attestation;             /* 0: the deciding node's own record */
  int kind;                        /* enum catalogue_achievement_kind */
  const char *issuer, *code, *title;
  const char *level;               /* "" where none applies */
  const char *score;               /* "" when none was given */
  int64_t credits_milli;
  int32_t awarded_on;              /* YYYYMMDD */
};

/* A grant an earlier decision made toward the same target programme. */
struct recog_earlier_grant {
  uint8_t aid[RECOG_AID_BYTES];    /* one of the aids the grant used */
  const char *rule_id;
  int rule_kind;                   /* enum catalogue_rule_kind (counts toward the
                                      through-train cap when 4) */
  const char *course;              /* target course code, "" for none */
  int64_t credits_milli;
};

enum recog_target_kind {
  RECOG_TARGET_PROGRAMME = 1, /* credits toward a programme */
  RECOG_TARGET_EXEMPTION = 2, /* the appraisal centre's question */
};

struct recog_request {
  const char *request_id;          /* 1..RECOG_ID_MAX */
  const char *decider;             /* node id of the deciding node */
  uint8_t learner_ref[32];
  int64_t decided_at_ms;           /* the caller's clock; only recorded */
  int32_t date;                    /* decision date YYYYMMDD: rules and ages use it */
  int target_kind;
  const char *institution, *programme;  /* RECOG_TARGET_PROGRAMME (aliases ok) */
  const char *certificate, *level;      /* RECOG_TARGET_EXEMPTION */
  const struct recog_achievement *cited;
  size_t ncited;
  const struct recog_earlier_grant *earlier;
  size_t nearlier;
  unsigned flags;
};
/* Candidate rules by scanning every rule instead of the index: same
 * decision, for tests and the benchmark's comparison only. */
#define RECOG_F_SCAN_ALL 0x1u

/* ------------------------------------------------------------ output
 * Strings point into the decision's own memory. */

struct recog_cited {
  uint8_t aid[RECOG_AID_BYTES];
  const char *holder;
  uint8_t attestation_hash[CB_HASH_BYTES];
  int has_attestation;
  const char *issuer;              /* canonical code, or as cited when unknown */
  const char *code, *title, *level;
  int32_t awarded_on;
};

struct recog_grant {
  const char *rule_id;
  int rule_kind;
  int kind;                        /* enum recog_grant_kind */
  const char *course, *course_title;
  int64_t credits_milli, course_credits_milli;
  const char *certificate, *certificate_title, *level;
  uint32_t naids;
  const uint8_t (*aids)[RECOG_AID_BYTES]; /* ascending */
};

struct recog_shortfall {
  const char *rule_id;             /* "" for a citation no rule used */
  int rule_kind;                   /* 0 then */
  int code;                        /* enum recog_shortfall_code */
  const char *subject, *subject_title;
  int has_aid;
  uint8_t aid[RECOG_AID_BYTES];
  const char *have, *need;
};

struct recog_decision {
  const char *request_id, *decider;
  uint8_t learner_ref[32];
  int target_kind;
  const char *target_institution, *target_programme;
  const char *target_certificate, *target_level, *target_title;
  uint8_t catalogue_version[CB_HASH_BYTES];
  int32_t date;
  int64_t decided_at_ms;
  int status;                      /* enum recog_status */
  int64_t credits_milli;           /* total granted */
  size_t ncited, ngrants, nshortfalls;
  struct recog_cited *cited;       /* ascending by aid */
  struct recog_grant *grants;      /* rules by id, then courses by code */
  struct recog_shortfall *shortfalls;
  void *mem;                       /* private: reused across evaluations */
};

/* A decision starts zeroed or from recog_decision_init; it may be reused
 * for many evaluations (its memory is kept) and is released by
 * recog_decision_free. */
void recog_decision_init(struct recog_decision *d);
void recog_decision_free(struct recog_decision *d);

/* Evaluates req under catalogue c into d. Returns 0, or a negative enum
 * recog_err with err saying what is wrong (the first bad citation in
 * canonical order, an unknown target...). A negative decision is a
 * decision (0), not an error. */
int recog_evaluate(const struct catalogue *c, const struct recog_request *req,
                   struct recog_decision *d, char *err, size_t errlen);

/* ------------------------------------------------------------ encoding */

/* The canonical encoding of d (cb.RecognitionDecision, proto/
 * recognition.proto): exact size first, then the bytes. recog_encode
 * returns the length written, or a negative enum recog_err when cap is too
 * small or the decision exceeds RECOG_MAX_DECISION_BYTES. */
size_t recog_encoded_size(const struct recog_decision *d);
long recog_encode(const struct recog_decision *d, uint8_t *buf, size_t cap);

/* The tag a decision of this kind is signed with. */
const char *recog_decision_tag(const struct recog_decision *d);

/* Ed25519 over tag || 0x00 || body through the crypto interface (the
 * signed-statement rule of spec/protocol.md). pub_out may be NULL. */
int recog_sign(const cb_crypto *crypto, const char *tag, const uint8_t *body, size_t len,
               uint8_t sig[CB_SIG_BYTES], uint8_t pub_out[CB_PUBKEY_BYTES]);
int recog_verify(const cb_crypto *crypto, const uint8_t pub[CB_PUBKEY_BYTES], const char *tag,
                 const uint8_t *body, size_t len, const uint8_t sig[CB_SIG_BYTES]);

/* ------------------------------------------------------------ text */

/* One shortfall as a sentence: "TT-05: course SH-U-OU-TT05-2 数控铣削加工
 * (融通) not passed". */
void recog_shortfall_text(const struct recog_shortfall *s, struct catalogue_text *out);
/* The whole decision for an operator: status, grants, shortfalls. */
void recog_decision_format(const struct recog_decision *d, struct catalogue_text *out);

#endif
