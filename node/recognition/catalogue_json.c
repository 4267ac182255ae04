/* Reads a catalogue file with jansson (spec/recognition.md §2): syntax
 * errors by line and column, then shapes and types by path (unknown
 * fields, a number where text belongs, floating-point credits), handing
 * the text of every field to the builder, whose seal checks the meaning.
 * jansson because it is the project's JSON library, validates UTF-8,
 * refuses duplicate keys with a line number and keeps object order. */
#include "catalogue_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#define PATHMAX 320

struct rd {
  struct catalogue_builder *b;
  struct catalogue_errors *errs;
  int oom;
};

/* Paths are bounded: a longer one (only from absurd nesting or keys) is
 * cut, which still names where the problem is. */
static void path_field(char *out, const char *base, const char *field) {
  int n = base && *base ? snprintf(out, PATHMAX, "%s.%s", base, field)
                        : snprintf(out, PATHMAX, "%s", field);
  if (n < 0 || n >= PATHMAX) out[PATHMAX - 1] = '\0';
}

static void path_index(char *out, const char *base, size_t i) {
  int n = snprintf(out, PATHMAX, "%s[%zu]", base, i);
  if (n < 0 || n >= PATHMAX) out[PATHMAX - 1] = '\0';
}

static void bad(struct rd *r, const char *path, const char *msg) {
  if (catalogue_errors_add(r->errs, path, "%s", msg) != 0) r->oom = 1;
}

static const char *type_name(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "a list";
  case JSON_STRING: return "text";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a decimal number";
  case JSON_TRUE:
  case JSON_FALSE: return "true/false";
  default: return "null";
  }
}

/* Refuses fields an object may not have (typos are the usual cause). */
static int check_object(struct rd *r, const json_t *o, const char *path,
                        const char *const *allowed) {
  if (!json_is_object(o)) {
    char m[96];
    snprintf(m, sizeof m, "expected an object, found %s", type_name(o));
    bad(r, path, m);
    return 0;
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)o, key, v) {
    int ok = 0;
    for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, key) == 0;
    if (!ok) {
      char p[PATHMAX];
      path_field(p, path, key);
      bad(r, p, "unknown field");
    }
  }
  return 1;
}

/* Text of a string field, NULL when absent (or wrong: reported). */
static const char *str_of(struct rd *r, const json_t *v, const char *path) {
  if (!v) return NULL;
  if (!json_is_string(v)) {
    char m[96];
    snprintf(m, sizeof m, "expected text, found %s", type_name(v));
    bad(r, path, m);
    return NULL;
  }
  if (strlen(json_string_value(v)) != json_string_length(v)) {
    bad(r, path, "text contains a NUL character");
    return NULL;
  }
  return json_string_value(v);
}

static const char *str_field(struct rd *r, const json_t *o, const char *base, const char *key) {
  char p[PATHMAX];
  path_field(p, base, key);
  return str_of(r, json_object_get(o, key), p);
}

/* A number written as text ("2.5") or an integer: returned as text in buf.
 * Floating point is refused: credits are exact thousandths. */
static const char *num_field(struct rd *r, const json_t *o, const char *base, const char *key,
                             char *buf, size_t cap) {
  char p[PATHMAX];
  path_field(p, base, key);
  const json_t *v = json_object_get(o, key);
  if (!v) return NULL;
  if (json_is_integer(v)) {
    snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    return buf;
  }
  if (json_is_real(v)) {
    bad(r, p, "write it as text (\"2.5\") or an integer: no floating point near credits");
    return NULL;
  }
  return str_of(r, v, p);
}

/* A list of strings (or one string, for convenience). Returns a malloc'd
 * array (the strings are jansson's) and its length in *n. */
static const char **str_list(struct rd *r, const json_t *o, const char *base, const char *key,
                             size_t *n, int *present) {
  char p[PATHMAX];
  path_field(p, base, key);
  const json_t *v = json_object_get(o, key);
  *n = 0;
  if (present) *present = v != NULL;
  if (!v) return NULL;
  if (json_is_string(v)) {
    const char **a = malloc(sizeof *a);
    if (!a) return r->oom = 1, NULL;
    a[0] = str_of(r, v, p);
    if (!a[0]) return free(a), NULL;
    *n = 1;
    return a;
  }
  if (!json_is_array(v)) {
    char m[96];
    snprintf(m, sizeof m, "expected a list of text, found %s", type_name(v));
    bad(r, p, m);
    return NULL;
  }
  size_t len = json_array_size(v);
  if (len > CATALOGUE_MAX_LIST) {
    char m[96];
    snprintf(m, sizeof m, "at most %u entries", CATALOGUE_MAX_LIST);
    bad(r, p, m);
    return NULL;
  }
  const char **a = malloc((len ? len : 1) * sizeof *a);
  if (!a) return r->oom = 1, NULL;
  for (size_t i = 0; i < len; i++) {
    char pi[PATHMAX];
    path_index(pi, p, i);
    const char *s = str_of(r, json_array_get(v, i), pi);
    a[(*n)++] = s ? s : "";
  }
  return a;
}

/* A list of objects: calls fn for each, with its path. */
static void each(struct rd *r, const json_t *obj, const char *base, const char *key,
                 void (*fn)(struct rd *, const json_t *, const char *), int required) {
  char lp[PATHMAX];
  path_field(lp, base, key);
  const json_t *v = json_object_get(obj, key);
  if (!v) {
    if (required) bad(r, lp, "missing");
    return;
  }
  if (!json_is_array(v)) {
    char m[96];
    snprintf(m, sizeof m, "expected a list, found %s", type_name(v));
    bad(r, lp, m);
    return;
  }
  if (json_array_size(v) > CATALOGUE_MAX_ITEMS) {
    bad(r, lp, "too many entries");
    return;
  }
  for (size_t i = 0; i < json_array_size(v) && !r->oom; i++) {
    char p[PATHMAX];
    path_index(p, lp, i);
    fn(r, json_array_get(v, i), p);
  }
}

static void built(struct rd *r, int rc) {
  if (rc != 0) r->oom = 1;
}

/* ------------------------------------------------------------ sections */

static void read_scale(struct rd *r, const json_t *o, const char *path) {
  static const char *const keys[] = {"id", "name", "levels", "aliases", "comment", "source", NULL};
  if (!check_object(r, o, path, keys)) return;
  struct catalogue_scale_spec s = {.path = path};
  s.id = str_field(r, o, path, "id");
  s.name = str_field(r, o, path, "name");
  s.comment = str_field(r, o, path, "comment");
  str_field(r, o, path, "source");
  size_t nl;
  const char **levels = str_list(r, o, path, "levels", &nl, NULL);
  s.levels = (struct catalogue_strs){levels, nl};
  const json_t *al = json_object_get(o, "aliases");
  const char **an = NULL, **alv = NULL;
  size_t na = 0;
  char ap[PATHMAX];
  path_field(ap, path, "aliases");
  if (al && !json_is_object(al)) {
    bad(r, ap, "expected an object {\"alias\": \"level\"}");
  } else if (al) {
    size_t cap = json_object_size(al);
    an = malloc((cap ? cap : 1) * sizeof *an);
    alv = malloc((cap ? cap : 1) * sizeof *alv);
    if (!an || !alv) r->oom = 1;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)al, key, v) {
      if (!an || !alv) break;
      char p[PATHMAX];
      path_field(p, ap, key);
      const char *lv = str_of(r, v, p);
      if (!lv) continue;
      an[na] = key;
      alv[na++] = lv;
    }
  }
  s.alias_names = (struct catalogue_strs){an, na};
  s.alias_levels = (struct catalogue_strs){alv, na};
  built(r, catalogue_builder_scale(r->b, &s));
  free(levels);
  free(an);
  free(alv);
}

static void read_grade(struct rd *r, const json_t *o, const char *path) {
  static const char *const keys[] = {"name", "value", "aliases", "comment", "source", NULL};
  if (!check_object(r, o, path, keys)) return;
  char vb[32];
  struct catalogue_grade_spec g = {.path = path};
  g.name = str_field(r, o, path, "name");
  g.value = num_field(r, o, path, "value", vb, sizeof vb);
  str_field(r, o, path, "comment");
  str_field(r, o, path, "source");
  size_t n;
  const char **al = str_list(r, o, path, "aliases", &n, NULL);
  g.aliases = (struct catalogue_strs){al, n};
  built(r, catalogue_builder_grade(r->b, &g));
  free(al);
}

static void read_scores(struct rd *r, const json_t *root) {
  static const char *const keys[] = {"min", "max", "pass", "grades", "comment", "source", NULL};
  const json_t *o = json_object_get(root, "scores");
  if (!o) return; /* seal reports it missing */
  if (!check_object(r, o, "scores", keys)) return;
  char b1[32], b2[32], b3[32];
  struct catalogue_scores_spec s = {.path = "scores"};
  s.min = num_field(r, o, "scores", "min", b1, sizeof b1);
  s.max = num_field(r, o, "scores", "max", b2, sizeof b2);
  s.pass = num_field(r, o, "scores", "pass", b3, sizeof b3);
  s.comment = str_field(r, o, "scores", "comment");
  str_field(r, o, "scores", "source");
  built(r, catalogue_builder_scores(r->b, &s));
  each(r, o, "scores", "grades", read_grade, 0);
}

static void read_flevel(struct rd *r, const json_t *o, const char *path) {
  static const char *const keys[] = {"id", "name", "members", "comment", "source", NULL};
  if (!check_object(r, o, path, keys)) return;
  struct catalogue_flevel_spec s = {.path = path};
  s.id = str_field(r, o, path, "id");
  s.name = str_field(r, o, path, "name");
  s.comment = str_field(r, o, path, "comment");
  str_field(r, o, path, "source");
  const json_t *m = json_object_get(o, "members");
  char mp[PATHMAX];
  path_field(mp, path, "members");
  const char **sc = NULL, **lv = NULL;
  size_t n = 0, cap = 0;
  if (!m) {
    bad(r, mp, "missing");
  } else if (!json_is_object(m)) {
    bad(r, mp, "expected an object {\"scale\": [\"level\", ...]}");
  } else {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)m, key, v) {
      size_t k;
      const char **levels = str_list(r, m, mp, key, &k, NULL);
      if (n + k > cap) {
        cap = (n + k) * 2;
        const char **a = realloc(sc, cap * sizeof *a), **b2 = a ? realloc(lv, cap * sizeof *b2) : NULL;
        if (a) sc = a;
        if (b2) lv = b2;
        if (!a || !b2) {
          r->oom = 1;
          free(levels);
          break;
        }
      }
      for (size_t i = 0; i < k; i++) {
        sc[n] = key;
        lv[n++] = levels[i];
      }
      free(levels);
    }
  }
  s.member_scales = (struct catalogue_strs){sc, n};
  s.member_levels = (struct catalogue_strs){lv, n};
  built(r, catalogue_builder_flevel(r->b, &s));
  free(sc);
  free(lv);
}

static void read_framework(struct rd *r, const json_t *root) {
  static const char *const keys[] = {"levels", "comment", "source", NULL};
  const json_t *o = json_object_get(root, "framework");
  if (!o) return; /* seal reports no levels */
  if (!check_object(r, o, "framework", keys)) return;
  built(r, catalogue_builder_framework_note(r->b, str_field(r, o, "framework", "comment")));
  str_field(r, o, "framework", "source");
  each(r, o, "framework", "levels", read_flevel, 0);
}

static void read_institution(struct rd *r, const json_t *o, const char *path) {
  static const char *const keys[] = {"code", "name", "province", "aliases", "comment", "source",
                                     NULL};
  if (!check_object(r, o, path, keys)) return;
  struct catalogue_institution_spec s = {.path = path};
  s.code = str_field(r, o, path, "code");
  s.name = str_field(r, o, path, "name");
  s.province = str_field(r, o, path, "province");
  s.comment = str_field(r, o, path, "comment");
  str_field(r, o, path, "source");
  size_t n;
  const char **al = str_list(r, o, path, "aliases", &n, NULL);
  s.aliases = (struct catalogue_strs){al, n};
  built(r, catalogue_builder_institution(r->b, &s));
  free(al);
}

static void read_programme(struct rd *r, const json_t *o, const char *path) {
  static const char *const keys[] = {"institution", "code", "name", "level", "total_credits",
                                     "courses", "comment", "source", NULL};
  static const char *const ckeys[] = {"code", "name", "credits", "comment", "source", NULL};
  if (!check_object(r, o, path, keys)) return;
  char tb[32];
  struct catalogue_programme_spec s = {.path = path};
  s.institution = str_field(r, o, path, "institution");
  s.code = str_field(r, o, path, "code");
  s.name = str_field(r, o, path, "name");
  s.level = str_field(r, o, path, "level");
  s.total_credits = num_field(r, o, path, "total_credits", tb, sizeof tb);
  s.comment = str_field(r, o, path, "comment");
  str_field(r, o, path, "source");
  const json_t *cs = json_object_get(o, "courses");
  char cp[PATHMAX];
  path_field(cp, path, "courses");
  size_t n = cs && json_is_array(cs) ? json_array_size(cs) : 0;
  if (cs && !json_is_array(cs)) bad(r, cp, "expected a list of courses");
  if (n > CATALOGUE_MAX_ITEMS) n = 0, bad(r, cp, "too many courses");
  struct catalogue_course_spec *c = calloc(n ? n : 1, sizeof *c);
  char(*paths)[PATHMAX] = malloc((n ? n : 1) * sizeof *paths);
  char(*cred)[32] = malloc((n ? n : 1) * sizeof *cred);
  if (!c || !paths || !cred) {
    r->oom = 1;
    n = 0;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *co = json_array_get(cs, i);
    path_index(paths[k], cp, i);
    if (!check_object(r, co, paths[k], ckeys)) continue;
    c[k].path = paths[k];
    c[k].code = str_field(r, co, paths[k], "code");
    c[k].name = str_field(r, co, paths[k], "name");
    c[k].credits = num_field(r, co, paths[k], "credits", cred[k], sizeof cred[k]);
    str_field(r, co, paths[k], "comment");
    str_field(r, co, paths[k], "source");
    k++;
  }
  s.courses = c;
  s.ncourses = k;
  built(r, catalogue_builder_programme(r->b, &s));
  free(c);
  free(paths);
  free(cred);
}

static void read_certificate(struct rd *r, const json_t *o, const char *path) {
  static const char *const keys[] = {"code", "name", "kind", "scale", "levels", "aliases",
                                     "issuers", "comment", "source", NULL};
  if (!check_object(r, o, path, keys)) return;
  struct catalogue_certificate_spec s = {.path = path};
  s.code = str_field(r, o, path, "code");
  s.name = str_field(r, o, path, "name");
  s.kind = str_field(r, o, path, "kind");
  s.scale = str_field(r, o, path, "scale");
  s.comment = str_field(r, o, path, "comment");
  str_field(r, o, path, "source");
  size_t na, ni, nl;
  const char **al = str_list(r, o, path, "aliases", &na, NULL);
  const char **is = str_list(r, o, path, "issuers", &ni, NULL);
  const char **lv = str_list(r, o, path, "levels", &nl, NULL);
  s.aliases = (struct catalogue_strs){al, na};
  s.issuers = (struct catalogue_strs){is, ni};
  s.levels = (struct catalogue_strs){lv, nl};
  built(r, catalogue_builder_certificate(r->b, &s));
  free(al);
  free(is);
  free(lv);
}

/* "exempts" / "eligible_for": {"certificate": C, "level": L}. */
static void read_cert_level(struct rd *r, const json_t *o, const char *path, const char *key,
                            const char **cert, const char **level) {
  static const char *const keys[] = {"certificate", "level", "comment", NULL};
  const json_t *v = json_object_get(o, key);
  if (!v) return;
  char p[PATHMAX];
  path_field(p, path, key);
  if (!check_object(r, v, p, keys)) return;
  *cert = str_field(r, v, p, "certificate");
  *level = str_field(r, v, p, "level");
  str_field(r, v, p, "comment");
  if (!*cert && !*level) *cert = ""; /* present but empty: seal names what is missing */
}

static void read_rule(struct rd *r, const json_t *o, const char *path) {
  static const char *const keys[] = {
      "id",          "kind",      "valid_from", "valid_to",    "from",   "courses",
      "certificate", "min_level", "target",     "grants",      "exempts", "eligible_for",
      "min_score",   "max_age_years", "max_credits", "framework_override", "comment", "source",
      NULL};
  if (!check_object(r, o, path, keys)) return;
  char b1[32], b2[32], b3[32];
  struct catalogue_rule_spec s = {.path = path};
  s.id = str_field(r, o, path, "id");
  s.kind = str_field(r, o, path, "kind");
  s.valid_from = str_field(r, o, path, "valid_from");
  s.valid_to = str_field(r, o, path, "valid_to");
  s.from = str_field(r, o, path, "from");
  s.certificate = str_field(r, o, path, "certificate");
  s.min_level = str_field(r, o, path, "min_level");
  s.target = str_field(r, o, path, "target");
  s.min_score = num_field(r, o, path, "min_score", b1, sizeof b1);
  s.max_age_years = num_field(r, o, path, "max_age_years", b2, sizeof b2);
  s.max_credits = num_field(r, o, path, "max_credits", b3, sizeof b3);
  s.framework_override = str_field(r, o, path, "framework_override");
  s.comment = str_field(r, o, path, "comment");
  s.source = str_field(r, o, path, "source");
  read_cert_level(r, o, path, "exempts", &s.exempt_certificate, &s.exempt_level);
  read_cert_level(r, o, path, "eligible_for", &s.eligible_certificate, &s.eligible_level);
  size_t nc, ng;
  const char **cs = str_list(r, o, path, "courses", &nc, NULL);
  const char **gs = str_list(r, o, path, "grants", &ng, &s.grants_present);
  s.courses = (struct catalogue_strs){cs, nc};
  s.grants = (struct catalogue_strs){gs, ng};
  built(r, catalogue_builder_rule(r->b, &s));
  free(cs);
  free(gs);
}

static void read_root(struct rd *r, const json_t *root) {
  static const char *const keys[] = {"format",       "title",      "comment",   "source",
                                     "programme_scale", "level_scales", "scores", "framework",
                                     "institutions", "programmes", "certificates", "rules",
                                     NULL};
  if (!check_object(r, root, "", keys)) return;
  struct catalogue_header_spec h = {0};
  h.format = str_field(r, root, "", "format");
  h.title = str_field(r, root, "", "title");
  h.comment = str_field(r, root, "", "comment");
  h.source = str_field(r, root, "", "source");
  h.programme_scale = str_field(r, root, "", "programme_scale");
  built(r, catalogue_builder_header(r->b, &h));
  each(r, root, "", "level_scales", read_scale, 1);
  read_scores(r, root);
  read_framework(r, root);
  each(r, root, "", "institutions", read_institution, 1);
  each(r, root, "", "programmes", read_programme, 0);
  each(r, root, "", "certificates", read_certificate, 0);
  each(r, root, "", "rules", read_rule, 1);
}

/* ------------------------------------------------------------ entry points */

int catalogue_load_buffer(const void *buf, size_t len, const cb_crypto *crypto,
                          struct catalogue **out, struct catalogue_errors *errs) {
  *out = NULL;
  if (len > CATALOGUE_MAX_FILE_BYTES) {
    catalogue_errors_add(errs, "", "the file is %zu bytes, more than the limit of %u", len,
                         CATALOGUE_MAX_FILE_BYTES);
    return -1;
  }
  json_error_t je;
  json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    catalogue_errors_add(errs, "", "line %d, column %d: %s", je.line, je.column, je.text);
    return -1;
  }
  struct rd r = {.b = catalogue_builder_new(), .errs = errs};
  if (!r.b) {
    json_decref(root);
    catalogue_errors_add(errs, "", "out of memory");
    return -1;
  }
  read_root(&r, root);
  if (r.oom) catalogue_errors_add(errs, "", "out of memory while reading the catalogue");
  uint8_t version[CB_HASH_BYTES];
  catalogue_version(crypto, buf, len, version);
  /* Seal even after reader errors: it reports every remaining problem. */
  int rc = catalogue_seal(r.b, version, out, errs);
  json_decref(root);
  return rc;
}

int catalogue_read_file(const char *path, uint8_t **buf, size_t *len,
                        struct catalogue_errors *errs) {
  *buf = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    catalogue_errors_add(errs, path, "cannot open: %s", strerror(errno));
    return -1;
  }
  struct stat stt;
  if (fstat(fileno(f), &stt) != 0 || !S_ISREG(stt.st_mode)) {
    fclose(f);
    catalogue_errors_add(errs, path, "not a regular file");
    return -1;
  }
  if ((uint64_t)stt.st_size > CATALOGUE_MAX_FILE_BYTES) {
    fclose(f);
    catalogue_errors_add(errs, path, "%lld bytes, more than the limit of %u",
                         (long long)stt.st_size, CATALOGUE_MAX_FILE_BYTES);
    return -1;
  }
  size_t n = (size_t)stt.st_size;
  uint8_t *b = malloc(n ? n : 1);
  if (!b || fread(b, 1, n, f) != n || fgetc(f) != EOF) {
    free(b);
    fclose(f);
    catalogue_errors_add(errs, path, "read failed or the file changed while read");
    return -1;
  }
  fclose(f);
  *buf = b;
  *len = n;
  return 0;
}

int catalogue_load_file(const char *path, const cb_crypto *crypto, struct catalogue **out,
                        struct catalogue_errors *errs, uint8_t **bytes, size_t *len) {
  uint8_t *b;
  size_t n;
  *out = NULL;
  if (bytes) *bytes = NULL;
  if (catalogue_read_file(path, &b, &n, errs) != 0) return -1;
  int rc = catalogue_load_buffer(b, n, crypto, out, errs);
  if (rc == 0 && bytes) {
    *bytes = b;
    if (len) *len = n;
  } else {
    free(b);
  }
  return rc;
}
