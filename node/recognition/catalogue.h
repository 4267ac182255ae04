/* catalogue.h: the recognition catalogue in memory (spec/recognition.md
 * §2-§3). Pure: libc and the crypto interface only.
 *
 * A catalogue is built from "specs" (plain strings, as any file format
 * gives them, each element carrying the path it came from, e.g.
 * "rules[57]"), then sealed: seal resolves every reference, checks every
 * rule and reports EVERY problem by path ("rules[57].min_level: unknown
 * level 三極 in scale nvq (五级 四级 三级 二级 一级)"). Sealing succeeds only
 * when there is no problem at all; on any problem nothing is returned.
 * After seal a catalogue is immutable and may be shared by threads.
 *
 * The JSON file reader is catalogue_json.h (a separate library linking
 * jansson); the evaluation is recog.h. */
#ifndef CB_CATALOGUE_H
#define CB_CATALOGUE_H

#include <stddef.h>
#include <stdint.h>

#include "cb_crypto.h"

#define CATALOGUE_FORMAT "cb-catalogue/1"
#define CATALOGUE_VERSION_TAG "cb/catalogue/v1"
#define CATALOGUE_NONE UINT32_MAX

/* Bounds (bytes of UTF-8 unless said). Longer input is refused. */
#define CATALOGUE_MAX_FILE_BYTES (64u * 1024u * 1024u)
#define CATALOGUE_CODE_MAX 64u    /* codes, ids, aliases (as records.md) */
#define CATALOGUE_NAME_MAX 256u   /* names, titles */
#define CATALOGUE_LEVEL_MAX 32u   /* level and grade texts */
#define CATALOGUE_NOTE_MAX 4096u  /* comment / source */
#define CATALOGUE_MAX_ITEMS 1000000u /* per list (rules, courses, ...) */
#define CATALOGUE_MAX_LIST 1024u  /* per small list (levels, aliases, a rule's courses) */
#define CATALOGUE_MAX_CREDITS_MILLI 1000000 /* 1000 credits, as records.md */
#define CATALOGUE_MAX_ERRORS_KEPT 1000u
/* 直通车式: the integrated courses are at most this share of the
 * programme's credits (the paper: 融通课程学分占学历教育总学分的40%). */
#define CATALOGUE_THROUGH_TRAIN_PERCENT 40

/* Rule kinds: the numbers of cb.RuleKind (proto/recognition.proto). */
enum catalogue_rule_kind {
  CATALOGUE_RULE_CREDIT_RECOGNISED = 1,      /* 学分认可型 */
  CATALOGUE_RULE_CERTIFICATE_RECOGNISED = 2, /* 证书认可型 */
  CATALOGUE_RULE_COURSE_RESTRUCTURED = 3,    /* 课程重组型 */
  CATALOGUE_RULE_THROUGH_TRAIN = 4,          /* 直通车式 */
  CATALOGUE_RULE_COURSE_TRANSFER = 5,        /* 学历课程互认 */
};
#define CATALOGUE_RULE_KIND_MAX 5

/* Achievement kinds: the numbers of cb.AchievementKind (records.proto). */
enum catalogue_achievement_kind {
  CATALOGUE_KIND_ACADEMIC_COURSE = 1,
  CATALOGUE_KIND_VOCATIONAL_QUALIFICATION = 2,
  CATALOGUE_KIND_VOCATIONAL_SKILL_LEVEL = 3,
  CATALOGUE_KIND_NON_FORMAL = 4,
  CATALOGUE_KIND_CULTURAL_LEISURE = 5,
};

/* "credit_recognised" ... and "学分认可型" ...; NULL for a bad kind. */
const char *catalogue_rule_kind_name(int kind);
const char *catalogue_rule_kind_cn(int kind);
int catalogue_rule_kind_parse(const char *s); /* 0 if unknown */
const char *catalogue_achievement_kind_name(int kind);

/* ------------------------------------------------------------ errors */

/* Every problem found, each one line "path: message". At most
 * CATALOGUE_MAX_ERRORS_KEPT lines are kept; count counts them all. */
struct catalogue_errors {
  size_t count;
  size_t nkept;
  char **lines;
};
void catalogue_errors_free(struct catalogue_errors *e);
/* Adds a line (used by loaders for syntax and type errors). Returns 0, or
 * -1 when out of memory (the count still grows). */
int catalogue_errors_add(struct catalogue_errors *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ text */

/* A growing text buffer for show, diff and decision formatting. oom is set
 * (and text stops growing) if an allocation failed. */
struct catalogue_text {
  char *s;
  size_t len, cap;
  int oom;
};
void catalogue_text_free(struct catalogue_text *t);
void catalogue_text_printf(struct catalogue_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ model
 * Sealed form: every reference is an index into the catalogue's arrays;
 * lists named "sorted" are ascending by the code they refer to. */

struct catalogue_scale {
  const char *id, *name, *note;
  uint32_t nlevels;
  const char **levels;       /* lowest first: the ordinal is the index */
  uint32_t naliases;
  const char **alias_names;  /* e.g. 高级工 */
  uint32_t *alias_levels;    /* ordinal each alias stands for */
  uint32_t *framework;       /* per level: framework level index or NONE */
  const char *path;
};

struct catalogue_grade {
  const char *name;
  int64_t value_milli;       /* numeric equivalent, thousandths of a point */
  uint32_t naliases;
  const char **aliases;
};

struct catalogue_scores {
  int64_t min_milli, max_milli, pass_milli;
  uint32_t ngrades;
  struct catalogue_grade *grades; /* ascending by value */
  const char *note;
};

struct catalogue_flevel { /* a qualification-framework level (Figure 2) */
  const char *id, *name, *note;
  uint32_t nmembers;
  uint32_t *member_scale, *member_level;
  const char *path;
};

struct catalogue_institution {
  const char *code, *name, *province, *note;
  uint32_t naliases;
  const char **aliases;
  const char *path;
};

struct catalogue_course {
  uint32_t institution;
  const char *code, *name;
  int64_t credits_milli;
  const char *path; /* where it was first defined */
};

struct catalogue_programme {
  uint32_t institution;
  const char *code, *name, *note;
  uint32_t level;               /* ordinal in the programme scale, or NONE */
  int64_t total_credits_milli;  /* 0: not a degree programme (no grants) */
  uint32_t ncourses;
  uint32_t *courses;            /* sorted */
  const char *path;
};

struct catalogue_certificate {
  const char *code, *name, *note;
  int kind;                     /* enum catalogue_achievement_kind: 2 or 3 */
  uint32_t scale;
  uint32_t naliases;
  const char **aliases;
  uint32_t nissuers;
  uint32_t *issuers;            /* institutions that may issue it, sorted */
  uint32_t nlevels;
  uint32_t *levels;             /* ordinals offered, ascending */
  const char *path;
};

struct catalogue_rule {
  const char *id, *note, *source;
  int kind;                     /* enum catalogue_rule_kind */
  int32_t valid_from, valid_to; /* YYYYMMDD, inclusive; valid_to 0: open */
  uint32_t max_age_years;       /* 0: any age */
  int64_t min_score_milli;      /* -1: the pass mark only */
  const char *min_score_text;
  int64_t max_credits_milli;    /* -1: none given */
  int64_t cap_milli;            /* effective cap of this rule per programme
                                   (max_credits; through-train also 40%), -1 none */
  uint32_t from;                /* institution of the required courses, or NONE */
  uint32_t nrequired;
  uint32_t *required;           /* required courses, sorted */
  uint32_t req_certificate;     /* required certificate, or NONE */
  uint32_t req_min_level;       /* its minimum level (ordinal) */
  uint32_t target;              /* programme receiving credits, or NONE */
  uint32_t ngrants;
  uint32_t *grants;             /* granted courses, sorted */
  uint32_t out_certificate;     /* exempted / eligible certificate, or NONE */
  uint32_t out_level;
  const char *framework_override; /* reason given to skip the Figure 2 check */
  const char *path;
};

struct catalogue_index; /* private: lookups built at seal */

struct catalogue {
  uint8_t version[CB_HASH_BYTES];
  const char *format, *title, *note, *source;
  uint32_t programme_scale;     /* scale of programmes' academic levels */
  uint32_t nscales;
  struct catalogue_scale *scales;
  struct catalogue_scores scores;
  const char *framework_note;
  uint32_t nflevels;
  struct catalogue_flevel *flevels; /* lowest first */
  uint32_t ninstitutions;
  struct catalogue_institution *institutions; /* sorted by code */
  uint32_t ncourses;
  struct catalogue_course *courses;       /* in the order first defined */
  uint32_t nprogrammes;
  struct catalogue_programme *programmes; /* in file order */
  uint32_t ncertificates;
  struct catalogue_certificate *certificates; /* sorted by code */
  uint32_t nrules;
  struct catalogue_rule *rules;   /* sorted by id */
  struct catalogue_index *index;
  void *arena;
};

/* ------------------------------------------------------------ specs
 * What a reader hands the builder: strings exactly as written, NULL when a
 * field is absent. The builder copies everything; specs may be freed after
 * the call. `path` names the element ("rules[57]"). Lists are arrays of
 * strings with a count. */

struct catalogue_strs {
  const char *const *v;
  size_t n;
};

struct catalogue_header_spec {
  const char *format, *title, *comment, *source;
  const char *programme_scale;
};

struct catalogue_scale_spec {
  const char *path, *id, *name, *comment;
  struct catalogue_strs levels;        /* lowest first */
  struct catalogue_strs alias_names;   /* parallel lists */
  struct catalogue_strs alias_levels;
};

struct catalogue_grade_spec {
  const char *path, *name, *value;
  struct catalogue_strs aliases;
};

struct catalogue_scores_spec {
  const char *path, *min, *max, *pass, *comment;
};

struct catalogue_flevel_spec {
  const char *path, *id, *name, *comment;
  struct catalogue_strs member_scales;  /* parallel: scale id, level text */
  struct catalogue_strs member_levels;
};

struct catalogue_institution_spec {
  const char *path, *code, *name, *province, *comment;
  struct catalogue_strs aliases;
};

struct catalogue_course_spec {
  const char *path, *code, *name, *credits;
};

struct catalogue_programme_spec {
  const char *path, *institution, *code, *name, *level, *total_credits, *comment;
  const struct catalogue_course_spec *courses;
  size_t ncourses;
};

struct catalogue_certificate_spec {
  const char *path, *code, *name, *kind, *scale, *comment;
  struct catalogue_strs aliases, issuers, levels;
};

struct catalogue_rule_spec {
  const char *path, *id, *kind, *valid_from, *valid_to, *comment, *source;
  const char *max_age_years, *min_score, *max_credits;
  const char *from;                   /* institution of required courses */
  struct catalogue_strs courses;      /* required course codes at `from` */
  const char *certificate, *min_level;/* certificate_recognised */
  const char *target;                 /* "INSTITUTION/PROGRAMME" */
  struct catalogue_strs grants;       /* course codes in the target; absent
                                         (n = 0, present = 0) for the merge
                                         kinds means "the required courses" */
  int grants_present;
  const char *exempt_certificate, *exempt_level;     /* "exempts" */
  const char *eligible_certificate, *eligible_level; /* "eligible_for" */
  const char *framework_override;
};

struct catalogue_builder;

struct catalogue_builder *catalogue_builder_new(void);
void catalogue_builder_free(struct catalogue_builder *b);

/* Each returns 0, or -1 when out of memory (the builder then refuses to
 * seal). Semantic checks wait for seal, so that every problem is found. */
int catalogue_builder_header(struct catalogue_builder *b, const struct catalogue_header_spec *s);
int catalogue_builder_scale(struct catalogue_builder *b, const struct catalogue_scale_spec *s);
int catalogue_builder_scores(struct catalogue_builder *b, const struct catalogue_scores_spec *s);
int catalogue_builder_grade(struct catalogue_builder *b, const struct catalogue_grade_spec *s);
int catalogue_builder_framework_note(struct catalogue_builder *b, const char *comment);
int catalogue_builder_flevel(struct catalogue_builder *b, const struct catalogue_flevel_spec *s);
int catalogue_builder_institution(struct catalogue_builder *b,
                                  const struct catalogue_institution_spec *s);
int catalogue_builder_programme(struct catalogue_builder *b,
                                const struct catalogue_programme_spec *s);
int catalogue_builder_certificate(struct catalogue_builder *b,
                                  const struct catalogue_certificate_spec *s);
int catalogue_builder_rule(struct catalogue_builder *b, const struct catalogue_rule_spec *s);

/* Resolves and checks everything. On success returns 0 and *out (free with
 * catalogue_free); the builder is consumed either way. On any problem
 * returns -1, *out stays NULL and errs lists every problem by path (errs
 * may already hold the reader's own errors: then seal still checks all it
 * can, and fails). version is the catalogue_version() of the exact bytes. */
int catalogue_seal(struct catalogue_builder *b, const uint8_t version[CB_HASH_BYTES],
                   struct catalogue **out, struct catalogue_errors *errs);
void catalogue_free(struct catalogue *c);

/* Version of a catalogue file: SHA-256(CATALOGUE_VERSION_TAG || 0x00 ||
 * the file's exact bytes), through the crypto interface. */
void catalogue_version(const cb_crypto *crypto, const void *bytes, size_t len,
                       uint8_t out[CB_HASH_BYTES]);
/* Lower-case hex of a version (65 bytes with the NUL). */
void catalogue_version_hex(const uint8_t v[CB_HASH_BYTES], char out[2 * CB_HASH_BYTES + 1]);

/* ------------------------------------------------------------ lookups
 * O(1) hash lookups built at seal; CATALOGUE_NONE when absent. */

/* An institution by its code or any alias. */
uint32_t catalogue_institution_find(const struct catalogue *c, const char *code_or_alias);
/* A course by institution index and course code. */
uint32_t catalogue_course_find(const struct catalogue *c, uint32_t inst, const char *code);
uint32_t catalogue_programme_find(const struct catalogue *c, uint32_t inst, const char *code);
/* A certificate by its code or any alias. */
uint32_t catalogue_certificate_find(const struct catalogue *c, const char *code_or_alias);
uint32_t catalogue_rule_find(const struct catalogue *c, const char *id);
/* A level text (name or alias) in a scale: its ordinal, or NONE. */
uint32_t catalogue_level_find(const struct catalogue *c, uint32_t scale, const char *text);

/* Score text → thousandths of a point: a decimal number within the
 * numeric range, or a grade name or alias. 0 ok, -1 not a score of this
 * catalogue. Empty text is -1 too (the caller decides what "no score"
 * means). */
int catalogue_score_value(const struct catalogue *c, const char *text, int64_t *milli);

/* Rules whose candidates a request may touch (built at seal, sorted by rule
 * index): rules granting toward programme `prog` that require course
 * `course`, or that require certificate `cert`; credit_recognised rules
 * exempting (cert, level). *n receives the count; the pointer stays valid
 * for the catalogue's life. */
const uint32_t *catalogue_rules_by_course(const struct catalogue *c, uint32_t prog,
                                          uint32_t course, size_t *n);
const uint32_t *catalogue_rules_by_certificate(const struct catalogue *c, uint32_t prog,
                                               uint32_t cert, size_t *n);
const uint32_t *catalogue_rules_exempting(const struct catalogue *c, uint32_t cert,
                                          uint32_t level, size_t *n);

/* The through-train cap of a programme: floor(total × 40 / 100), in
 * thousandths (integer arithmetic). */
int64_t catalogue_through_train_cap_milli(const struct catalogue_programme *p);

/* ------------------------------------------------------------ show, diff */

/* Printable summary (`cbctl catalogue show`): version, scales, the
 * framework, counts by province and kind; with rules != 0 every rule. */
void catalogue_show(const struct catalogue *c, int rules, struct catalogue_text *out);
/* One rule, as show --rules prints it (one block of lines). */
void catalogue_show_rule(const struct catalogue *c, const struct catalogue_rule *r,
                         struct catalogue_text *out);

/* Readable list of changes from a to b (`cbctl catalogue diff`): one line
 * per change, "rules: + TT-16 …", "rules: ~ TT-05 valid_to: 2030-12-31 →
 * 2025-12-31", "institutions: - …". Returns the number of changes (0: same
 * content; the versions may still differ by comments' whitespace). */
size_t catalogue_diff(const struct catalogue *a, const struct catalogue *b,
                      struct catalogue_text *out);

/* ------------------------------------------------------------ helpers */

/* Credits / score text "12", "2.5", "0.125" → thousandths (no sign, at most
 * three decimals, at most max). 0 or -1. */
int catalogue_parse_milli(const char *s, int64_t max, int64_t *out);
/* Thousandths → shortest text ("30.4", "2", "0.125"); buf ≥ 32 bytes. */
void catalogue_format_milli(int64_t milli, char *buf, size_t cap);
/* "YYYY-MM-DD" (or YYYYMMDD digits) → a real date YYYYMMDD in 1900..2099.
 * 0 or -1. */
int catalogue_parse_date(const char *s, int32_t *out);
int catalogue_date_valid(int32_t yyyymmdd);
/* The same calendar day `years` earlier (29 Feb → 28 Feb). */
int32_t catalogue_date_minus_years(int32_t yyyymmdd, uint32_t years);
/* YYYYMMDD → "YYYY-MM-DD"; buf ≥ 11 bytes. */
void catalogue_format_date(int32_t yyyymmdd, char *buf, size_t cap);
/* Well-formed UTF-8 without C0/C1 controls or DEL, 1..max bytes (0..max
 * when empty_ok). */
int catalogue_text_ok(const char *s, size_t max, int empty_ok);

#endif
