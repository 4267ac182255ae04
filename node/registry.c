/* Federation registry loaded from JSON. Format and rules: spec/protocol.md
 * "Registry". Every check names the member and the field it refuses. */
#include "registry.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

struct registry {
  unsigned refs;
  uint8_t federation_key[REGISTRY_FEDERATION_KEY_BYTES];
  size_t nmembers;
  size_t nmembers_alloc;
  registry_member_t *members;
};

#define REGISTRY_STR_(name, str) str,
static const char *const registry_errstr[] = {REGISTRY_ERRORS(REGISTRY_STR_)};
#undef REGISTRY_STR_

const char *registry_strerror(int err) {
  if (err < 0) err = -err;
  if (err >= REGISTRY_ERR_COUNT_) return "unknown registry error";
  return registry_errstr[err];
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
  return -code;
}

static const char *const regions[] = {"sh", "js", "zj", "ah"};

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes exactly n bytes given as 2n hex digits, or as base64 of n bytes. */
static int decode_key_text(const char *s, uint8_t *out, size_t n) {
  size_t len = strlen(s);
  if (len == 2 * n) {
    for (size_t i = 0; i < n; i++) {
      int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
      if (hi < 0 || lo < 0) return -1;
      out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
  }
  /* base64 with padding: 4 * ceil(n / 3) characters. */
  if (len != 4 * ((n + 2) / 3)) return -1;
  uint8_t buf[4 * 64];
  if (len / 4 * 3 > sizeof buf) return -1;
  int got = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
  if (got < 0) return -1;
  size_t pad = 0;
  if (len >= 1 && s[len - 1] == '=') pad++;
  if (len >= 2 && s[len - 2] == '=') pad++;
  if ((size_t)got - pad != n) return -1;
  memcpy(out, buf, n);
  return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  /* Howard Hinnant's algorithm: days since 1970-01-01. */
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int read_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

int registry_parse_time_text(const char *s, int64_t *ms) {
  if (!s || !ms) return -REGISTRY_E_ARG;
  const char *p = s;
  int y, mo, d, h, mi, sec;
  if (read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) || *p++ != '-' ||
      read_digits(&p, 2, &d) || (*p != 'T' && *p != 't') || (p++, read_digits(&p, 2, &h)) ||
      *p++ != ':' || read_digits(&p, 2, &mi) || *p++ != ':' || read_digits(&p, 2, &sec))
    return -REGISTRY_E_INVALID;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
    return -REGISTRY_E_INVALID;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return -REGISTRY_E_INVALID;
  if (sec == 60) sec = 59; /* a leap second maps onto the second before */
  int frac_ms = 0;
  if (*p == '.') {
    p++;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
      if (digits < 3) frac_ms = frac_ms * 10 + (*p - '0');
      digits++;
      p++;
    }
    if (digits == 0) return -REGISTRY_E_INVALID;
    for (; digits < 3; digits++) frac_ms *= 10;
  }
  int64_t offset_min = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1, oh, om;
    if (read_digits(&p, 2, &oh) || *p++ != ':' || read_digits(&p, 2, &om) || oh > 23 || om > 59)
      return -REGISTRY_E_INVALID;
    offset_min = sign * (oh * 60 + om);
  } else {
    return -REGISTRY_E_INVALID;
  }
  if (*p) return -REGISTRY_E_INVALID;
  int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
  *ms = secs * 1000 + frac_ms;
  return 0;
}

/* Checks that obj has only the listed keys. */
static int only_fields(json_t *obj, const char *const *allowed, const char *where, char *err,
                       size_t errlen) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    int ok = 0;
    for (size_t i = 0; allowed[i]; i++)
      if (strcmp(k, allowed[i]) == 0) ok = 1;
    if (!ok) return fail(err, errlen, REGISTRY_E_INVALID, "%s: unknown field \"%s\"", where, k);
  }
  return 0;
}

static int parse_time_field(json_t *v, const char *where, const char *field, int64_t *ms,
                            char *err, size_t errlen) {
  if (json_is_integer(v)) {
    if (json_integer_value(v) < 0)
      return fail(err, errlen, REGISTRY_E_INVALID, "%s: %s is negative", where, field);
    *ms = json_integer_value(v);
    return 0;
  }
  if (json_is_string(v) && registry_parse_time_text(json_string_value(v), ms) == 0) return 0;
  return fail(err, errlen, REGISTRY_E_INVALID,
              "%s: %s must be milliseconds since the epoch or RFC 3339 time", where, field);
}

static int valid_node_id(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > REGISTRY_NODE_ID_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(islower(c) || isdigit(c) || c == '-' || c == '_' || c == '.')) return 0;
  }
  return 1;
}

static int parse_endpoint(const char *s, registry_member_t *m) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s) return -1;
  size_t hlen = (size_t)(colon - s);
  const char *h = s;
  if (*h == '[') { /* [v6]:port */
    if (hlen < 3 || s[hlen - 1] != ']') return -1;
    h++;
    hlen -= 2;
  }
  if (hlen == 0 || hlen > REGISTRY_HOST_MAX) return -1;
  for (size_t i = 0; i < hlen; i++)
    if (!(isalnum((unsigned char)h[i]) || h[i] == '.' || h[i] == '-' || h[i] == ':')) return -1;
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (errno || *end || end == colon + 1 || port < 1 || port > 65535) return -1;
  memcpy(m->host, h, hlen);
  m->host[hlen] = 0;
  m->port = (uint16_t)port;
  return 0;
}

static int parse_key(json_t *k, const char *mwhere, size_t ki, registry_key_t *out, char *err,
                     size_t errlen) {
  char where[160];
  snprintf(where, sizeof where, "%s keys[%zu]", mwhere, ki);
  static const char *const allowed[] = {"public_key", "not_before", "not_after", NULL};
  if (!json_is_object(k)) return fail(err, errlen, REGISTRY_E_INVALID, "%s: not an object", where);
  int rc = only_fields(k, allowed, where, err, errlen);
  if (rc) return rc;
  json_t *pk = json_object_get(k, "public_key");
  if (!json_is_string(pk))
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: public_key missing or not a string", where);
  if (decode_key_text(json_string_value(pk), out->public_key, REGISTRY_KEY_BYTES))
    return fail(err, errlen, REGISTRY_E_INVALID,
                "%s: public_key must be 32 bytes as 64 hex digits or base64", where);
  json_t *nb = json_object_get(k, "not_before");
  if (!nb) return fail(err, errlen, REGISTRY_E_INVALID, "%s: not_before missing", where);
  if ((rc = parse_time_field(nb, where, "not_before", &out->not_before_ms, err, errlen))) return rc;
  json_t *na = json_object_get(k, "not_after");
  out->not_after_ms = REGISTRY_TIME_OPEN;
  if (na && !json_is_null(na) &&
      (rc = parse_time_field(na, where, "not_after", &out->not_after_ms, err, errlen)))
    return rc;
  if (out->not_after_ms <= out->not_before_ms)
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: not_after is not after not_before", where);
  out->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, out->public_key,
                                          REGISTRY_KEY_BYTES);
  if (!out->pkey)
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: public_key is not an Ed25519 key", where);
  return 0;
}

static int parse_member(json_t *m, size_t mi, registry_member_t *out, char *err, size_t errlen) {
  char where[128];
  snprintf(where, sizeof where, "members[%zu]", mi);
  static const char *const allowed[] = {"node_id", "region", "endpoint", "keys", NULL};
  if (!json_is_object(m)) return fail(err, errlen, REGISTRY_E_INVALID, "%s: not an object", where);
  json_t *id = json_object_get(m, "node_id");
  if (!json_is_string(id))
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: node_id missing or not a string", where);
  if (!valid_node_id(json_string_value(id)))
    return fail(err, errlen, REGISTRY_E_INVALID,
                "%s: node_id \"%.64s\" must be 1-63 characters of a-z 0-9 - _ .", where,
                json_string_value(id));
  snprintf(out->node_id, sizeof out->node_id, "%s", json_string_value(id));
  snprintf(where, sizeof where, "members[%zu] (%s)", mi, out->node_id);
  int rc = only_fields(m, allowed, where, err, errlen);
  if (rc) return rc;
  json_t *region = json_object_get(m, "region");
  if (!json_is_string(region))
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: region missing or not a string", where);
  int known = 0;
  for (size_t i = 0; i < sizeof regions / sizeof *regions; i++)
    if (strcmp(json_string_value(region), regions[i]) == 0) known = 1;
  if (!known)
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: unknown region \"%.16s\" (sh, js, zj, ah)",
                where, json_string_value(region));
  snprintf(out->region, sizeof out->region, "%s", json_string_value(region));
  json_t *ep = json_object_get(m, "endpoint");
  if (!json_is_string(ep))
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: endpoint missing or not a string", where);
  if (parse_endpoint(json_string_value(ep), out))
    return fail(err, errlen, REGISTRY_E_INVALID,
                "%s: endpoint \"%.64s\" must be host:port with port 1-65535", where,
                json_string_value(ep));
  json_t *keys = json_object_get(m, "keys");
  if (!json_is_array(keys) || json_array_size(keys) == 0)
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: keys missing or empty", where);
  if (json_array_size(keys) > REGISTRY_MAX_KEYS)
    return fail(err, errlen, REGISTRY_E_INVALID, "%s: more than %u keys", where,
                REGISTRY_MAX_KEYS);
  size_t ki;
  json_t *k;
  json_array_foreach(keys, ki, k) {
    if ((rc = parse_key(k, where, ki, &out->keys[ki], err, errlen))) return rc;
    for (size_t j = 0; j < ki; j++)
      if (memcmp(out->keys[j].public_key, out->keys[ki].public_key, REGISTRY_KEY_BYTES) == 0)
        return fail(err, errlen, REGISTRY_E_INVALID, "%s: keys[%zu] repeats keys[%zu]", where, ki,
                    j);
  }
  out->nkeys = json_array_size(keys);
  return 0;
}

static int parse_root(json_t *root, registry_t *reg, char *err, size_t errlen) {
  static const char *const allowed[] = {"version", "federation_key", "members", NULL};
  if (!json_is_object(root))
    return fail(err, errlen, REGISTRY_E_INVALID, "registry: top level is not an object");
  int rc = only_fields(root, allowed, "registry", err, errlen);
  if (rc) return rc;
  json_t *ver = json_object_get(root, "version");
  if (!json_is_integer(ver) || json_integer_value(ver) != 1)
    return fail(err, errlen, REGISTRY_E_INVALID, "registry: version must be 1");
  json_t *fk = json_object_get(root, "federation_key");
  if (!json_is_string(fk) ||
      decode_key_text(json_string_value(fk), reg->federation_key, REGISTRY_FEDERATION_KEY_BYTES))
    return fail(err, errlen, REGISTRY_E_INVALID,
                "registry: federation_key must be 32 bytes as 64 hex digits or base64");
  json_t *members = json_object_get(root, "members");
  if (!json_is_array(members) || json_array_size(members) == 0)
    return fail(err, errlen, REGISTRY_E_INVALID, "registry: members missing or empty");
  if (json_array_size(members) > REGISTRY_MAX_MEMBERS)
    return fail(err, errlen, REGISTRY_E_INVALID, "registry: more than %u members",
                REGISTRY_MAX_MEMBERS);
  reg->members = calloc(json_array_size(members), sizeof *reg->members);
  if (!reg->members) return fail(err, errlen, REGISTRY_E_NOMEM, "registry: out of memory");
  reg->nmembers_alloc = json_array_size(members);
  size_t mi;
  json_t *m;
  json_array_foreach(members, mi, m) {
    registry_member_t *cur = &reg->members[mi];
    if ((rc = parse_member(m, mi, cur, err, errlen))) return rc;
    for (size_t j = 0; j < mi; j++) {
      const registry_member_t *o = &reg->members[j];
      if (strcmp(o->node_id, cur->node_id) == 0)
        return fail(err, errlen, REGISTRY_E_INVALID, "members[%zu] (%s): duplicate node_id", mi,
                    cur->node_id);
      if (strcmp(o->host, cur->host) == 0 && o->port == cur->port)
        return fail(err, errlen, REGISTRY_E_INVALID,
                    "members[%zu] (%s): endpoint already used by %s", mi, cur->node_id,
                    o->node_id);
      for (size_t a = 0; a < cur->nkeys; a++)
        for (size_t b = 0; b < o->nkeys; b++)
          if (memcmp(cur->keys[a].public_key, o->keys[b].public_key, REGISTRY_KEY_BYTES) == 0)
            return fail(err, errlen, REGISTRY_E_INVALID,
                        "members[%zu] (%s): keys[%zu] is already a key of %s", mi, cur->node_id,
                        a, o->node_id);
    }
    reg->nmembers = mi + 1;
  }
  return 0;
}

int registry_parse(const char *text, size_t len, registry_t **out, char *err, size_t errlen) {
  if (!text || !out) return fail(err, errlen, REGISTRY_E_ARG, "registry: no input");
  if (len > REGISTRY_MAX_FILE_BYTES)
    return fail(err, errlen, REGISTRY_E_INVALID, "registry: larger than %u bytes",
                REGISTRY_MAX_FILE_BYTES);
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return fail(err, errlen, REGISTRY_E_PARSE, "registry: line %d column %d: %s", jerr.line,
                jerr.column, jerr.text);
  registry_t *reg = calloc(1, sizeof *reg);
  int rc;
  if (!reg) {
    rc = fail(err, errlen, REGISTRY_E_NOMEM, "registry: out of memory");
    goto done;
  }
  reg->refs = 1;
  rc = parse_root(root, reg, err, errlen);
  if (rc) {
    registry_release(reg);
    goto done;
  }
  *out = reg;
done:
  json_decref(root);
  return rc;
}

int registry_load(const char *path, registry_t **out, char *err, size_t errlen) {
  if (!path || !out) return fail(err, errlen, REGISTRY_E_ARG, "registry: no path");
  FILE *f = fopen(path, "rb");
  if (!f) return fail(err, errlen, REGISTRY_E_IO, "%s: %s", path, strerror(errno));
  char *buf = malloc(REGISTRY_MAX_FILE_BYTES + 1);
  if (!buf) {
    fclose(f);
    return fail(err, errlen, REGISTRY_E_NOMEM, "%s: out of memory", path);
  }
  size_t n = fread(buf, 1, REGISTRY_MAX_FILE_BYTES + 1, f);
  int rd_err = ferror(f);
  fclose(f);
  int rc;
  if (rd_err) {
    rc = fail(err, errlen, REGISTRY_E_IO, "%s: read error", path);
  } else if (n > REGISTRY_MAX_FILE_BYTES) {
    rc = fail(err, errlen, REGISTRY_E_INVALID, "%s: larger than %u bytes", path,
              REGISTRY_MAX_FILE_BYTES);
  } else {
    char inner[512] = "";
    rc = registry_parse(buf, n, out, inner, sizeof inner);
    if (rc) fail(err, errlen, -rc, "%s: %s", path, inner);
  }
  free(buf);
  return rc;
}

registry_t *registry_retain(registry_t *reg) {
  assert(reg && reg->refs > 0);
  reg->refs++;
  return reg;
}

void registry_release(registry_t *reg) {
  if (!reg) return;
  assert(reg->refs > 0);
  if (--reg->refs) return;
  for (size_t i = 0; reg->members && i < reg->nmembers_alloc; i++)
    for (size_t k = 0; k < REGISTRY_MAX_KEYS; k++) EVP_PKEY_free(reg->members[i].keys[k].pkey);
  free(reg->members);
  OPENSSL_cleanse(reg->federation_key, sizeof reg->federation_key);
  free(reg);
}

size_t registry_member_count(const registry_t *reg) { return reg->nmembers; }

const registry_member_t *registry_member_at(const registry_t *reg, size_t i) {
  return i < reg->nmembers ? &reg->members[i] : NULL;
}

const registry_member_t *registry_find_member(const registry_t *reg, const char *node_id) {
  if (!reg || !node_id) return NULL;
  for (size_t i = 0; i < reg->nmembers; i++)
    if (strcmp(reg->members[i].node_id, node_id) == 0) return &reg->members[i];
  return NULL;
}

const registry_member_t *registry_find_key_owner(const registry_t *reg,
                                                 const uint8_t pub[REGISTRY_KEY_BYTES]) {
  if (!reg || !pub) return NULL;
  for (size_t i = 0; i < reg->nmembers; i++)
    for (size_t k = 0; k < reg->members[i].nkeys; k++)
      if (memcmp(reg->members[i].keys[k].public_key, pub, REGISTRY_KEY_BYTES) == 0)
        return &reg->members[i];
  return NULL;
}

int registry_key_valid_at(const registry_member_t *member, const uint8_t pub[REGISTRY_KEY_BYTES],
                          int64_t time_ms) {
  if (!member || !pub) return -REGISTRY_E_ARG;
  for (size_t k = 0; k < member->nkeys; k++) {
    const registry_key_t *key = &member->keys[k];
    if (memcmp(key->public_key, pub, REGISTRY_KEY_BYTES) != 0) continue;
    if (time_ms < key->not_before_ms) return -REGISTRY_E_KEY_NOT_YET_VALID;
    if (time_ms >= key->not_after_ms) return -REGISTRY_E_KEY_EXPIRED;
    return 0;
  }
  return -REGISTRY_E_KEY_UNKNOWN;
}

EVP_PKEY *registry_key_pkey(const registry_member_t *member, const uint8_t pub[REGISTRY_KEY_BYTES]) {
  for (size_t k = 0; member && pub && k < member->nkeys; k++)
    if (memcmp(member->keys[k].public_key, pub, REGISTRY_KEY_BYTES) == 0) return member->keys[k].pkey;
  return NULL;
}

const uint8_t *registry_federation_key(const registry_t *reg) { return reg->federation_key; }
