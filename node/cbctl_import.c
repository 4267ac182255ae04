/* cbctl import FILE.csv: bulk deposit from an institution's CSV export.
 *
 * 1. One pass over the file with csvimport validates every row; bad rows
 *    are reported with their line numbers. Valid rows are kept in memory
 *    in their compact protobuf encoding (about the size of the file).
 * 2. If any row is bad and --skip-invalid was not given, nothing is sent.
 * 3. Rows are sorted by ID number (then award date, then file order), the
 *    order the store writes cheapest (storage/store.h), and sent in
 *    batches; each batch is one LMDB transaction on the node and its reply
 *    comes only after the commit, so every count cbctl reports is durable.
 *    Re-importing a file stores nothing new: the store keeps one
 *    achievement per (learner, issuer, code, award date).
 * 4. Two batches are in flight (the node commits one while the next is
 *    built and sent). A batch counts as committed when its own ack
 *    arrived; if the node refuses one, the batch behind it may still
 *    commit: the message counts only acknowledged batches, and running the
 *    same import again completes it without duplicates. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "cbctl_cmds.h"
#include "cbctl_out.h"
#include "csvimport.h"
#include "store.h"

/* Bad rows listed in a JSON document; more are counted, not listed. */
#define IMPORT_JSON_ERRORS_MAX 100000u
/* Room left in a frame for the envelope around the rows. */
#define IMPORT_FRAME_MARGIN_BYTES 4096u

typedef struct row_ref {
  uint64_t id_key;            /* the ID number as a number: see id_sort_key */
  uint64_t off;               /* into import_ctx.packed; rises in file order */
  uint32_t len;               /* packed ImportRow bytes */
  int32_t awarded_on;
} row_ref_t;

/* A normalised ID number (17 digits and a check character 0-9 or X, as
 * csvimport accepts it) as one integer that sorts like the text: the 17
 * digits times 11 plus the check character (X = 10) is below 1.1e18. The
 * sort of a million rows then compares integers instead of 18-byte strings
 * in 24-byte elements (was a fifth of cbctl's time in memcmp/memmove). */
static uint64_t id_sort_key(const char *id)
{
  uint64_t k = 0;
  for (int i = 0; i < IDCARD_LEN - 1; i++) k = k * 10 + (uint64_t)(id[i] - '0');
  char c = id[IDCARD_LEN - 1];
  return k * 11 + (c == 'X' ? 10u : (uint64_t)(c - '0'));
}

typedef struct import_ctx {
  cbctl_ctx_t *cli;
  uint8_t *packed;
  size_t packed_len, packed_cap;
  row_ref_t *refs;
  size_t nrefs, refs_cap;
  json_t *errors;             /* [{line, reason}] in --json mode */
  uint64_t invalid;
  int oom;
} import_ctx_t;

static int reserve(void **p, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 1024;
  while (c < need) c *= 2;
  void *np = realloc(*p, c * elem);
  if (!np) return -1;
  *p = np;
  *cap = c;
  return 0;
}

/* Protobuf writing by hand (proto3: zero scalars and empty strings are
 * left out, fields in number order): rows are packed once when the file is
 * read, and batch frames are the packed rows put together. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static size_t varint_len(uint64_t v)
{
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static size_t put_str(uint8_t *p, uint8_t tag, const char *s)
{
  size_t len = strlen(s);
  if (len == 0) return 0;
  p[0] = tag;
  size_t n = 1 + put_varint(p + 1, len);
  memcpy(p + n, s, len);
  return n + len;
}

static size_t put_int(uint8_t *p, uint8_t tag, int64_t v)
{
  if (v == 0) return 0;
  p[0] = tag;
  return 1 + put_varint(p + 1, (uint64_t)v); /* negative: 10 bytes, as protobuf */
}

/* Room for one packed ImportRow: every text at its bound, tags and lengths. */
#define IMPORT_ROW_MAX_BYTES (sizeof(struct csv_row) + 128)

/* cb.ImportRow (proto/admin.proto) for a row, the bytes protobuf-c would
 * write (pack_row_pb; compared on the first row and every 4096th). Writing
 * them directly halves what keeping a row costs. */
static size_t pack_row(uint64_t line, const struct csv_row *row, uint8_t *out)
{
  uint8_t ach[IMPORT_ROW_MAX_BYTES], dep[IMPORT_ROW_MAX_BYTES];
  size_t an = put_int(ach, 0x18, row->kind);                 /* 3 kind */
  an += put_str(ach + an, 0x22, row->issuer);                /* 4 */
  an += put_str(ach + an, 0x2a, row->code);                  /* 5 */
  an += put_str(ach + an, 0x32, row->title);                 /* 6 */
  an += put_str(ach + an, 0x3a, row->level);                 /* 7 */
  an += put_int(ach + an, 0x40, row->credits_milli);         /* 8 */
  an += put_str(ach + an, 0x4a, row->score);                 /* 9 */
  an += put_int(ach + an, 0x50, row->awarded_on);            /* 10 */
  if (row->depositor_role != CSVIMPORT_ROLE_UNSPECIFIED) {   /* 11 depositor */
    size_t dn = put_int(dep, 0x08, row->depositor_role);
    dn += put_str(dep + dn, 0x12, row->depositor_code);
    dn += put_str(dep + dn, 0x1a, row->depositor_name);
    ach[an++] = 0x5a;
    an += put_varint(ach + an, dn);
    memcpy(ach + an, dep, dn);
    an += dn;
  }
  size_t n = put_int(out, 0x08, line > UINT32_MAX ? UINT32_MAX : (uint32_t)line); /* 1 line */
  n += put_str(out + n, 0x12, row->id_number);               /* 2 */
  n += put_str(out + n, 0x1a, row->name);                    /* 3 */
  out[n++] = 0x22;                                           /* 4 achievement */
  n += put_varint(out + n, an);
  memcpy(out + n, ach, an);
  return n + an;
}

static size_t pack_row_pb(uint64_t line, const struct csv_row *row, uint8_t *out)
{
  Cb__ImportRow r = CB__IMPORT_ROW__INIT;
  Cb__Achievement a = CB__ACHIEVEMENT__INIT;
  Cb__Depositor d = CB__DEPOSITOR__INIT;
  r.line = line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
  r.id_number = (char *)row->id_number;
  r.name = (char *)row->name;
  a.kind = (Cb__AchievementKind)row->kind;
  a.issuer = (char *)row->issuer;
  a.code = (char *)row->code;
  a.title = (char *)row->title;
  a.level = (char *)row->level;
  a.credits_milli = row->credits_milli;
  a.score = (char *)row->score;
  a.awarded_on = row->awarded_on;
  if (row->depositor_role != CSVIMPORT_ROLE_UNSPECIFIED) {
    d.role = (Cb__DepositorRole)row->depositor_role;
    d.code = (char *)row->depositor_code;
    d.name = (char *)row->depositor_name;
    a.depositor = &d;
  }
  r.achievement = &a;
  assert(cb__import_row__get_packed_size(&r) <= IMPORT_ROW_MAX_BYTES);
  return cb__import_row__pack(&r, out);
}

static int keep_row(import_ctx_t *ic, uint64_t line, const struct csv_row *row)
{
  if (reserve((void **)&ic->packed, &ic->packed_cap, ic->packed_len + IMPORT_ROW_MAX_BYTES, 1) != 0 ||
      reserve((void **)&ic->refs, &ic->refs_cap, ic->nrefs + 1, sizeof *ic->refs) != 0)
    return -1;
  uint8_t *out = ic->packed + ic->packed_len;
  size_t n = pack_row(line, row, out);
  if (ic->nrefs % 4096 == 0) {
    /* Our encoder and protobuf-c's must agree (a broken invariant of ours). */
    uint8_t pb[IMPORT_ROW_MAX_BYTES];
    size_t m = pack_row_pb(line, row, pb);
    assert(m == n && memcmp(pb, out, n) == 0);
    (void)m;
  }
  row_ref_t *ref = &ic->refs[ic->nrefs];
  assert(strlen(row->id_number) == IDCARD_LEN);
  ref->id_key = id_sort_key(row->id_number);
  ref->awarded_on = row->awarded_on;
  ref->len = (uint32_t)n;
  ref->off = ic->packed_len;
  ic->packed_len += n;
  ic->nrefs++;
  return 0;
}

/* The node checks every row again with the store's rules, and refuses a
 * whole batch for one bad row; run the same check here so such a row is
 * reported with its line number before anything is sent. The template's
 * bounds and the store's are not all equal (depositor_name). */
static int store_check(const struct csv_row *row, char *why, size_t whylen)
{
  store_deposit item;
  memset(&item, 0, sizeof item);
#define COPY(dst, src, field)                                                               \
  do {                                                                                      \
    size_t len_ = strlen(src);                                                              \
    if (len_ >= sizeof(dst)) {                                                              \
      snprintf(why, whylen, "%s: %zu bytes, at most %zu accepted by the node", field, len_,  \
               sizeof(dst) - 1);                                                            \
      return -1;                                                                            \
    }                                                                                       \
    memcpy(dst, src, len_ + 1);                                                             \
  } while (0)
  COPY(item.learner.id_number, row->id_number, "id_number");
  COPY(item.learner.name, row->name, "name");
  COPY(item.achievement.issuer, row->issuer, "issuer");
  COPY(item.achievement.code, row->code, "code");
  COPY(item.achievement.title, row->title, "title");
  COPY(item.achievement.level, row->level, "level");
  COPY(item.achievement.score, row->score, "score");
  if (row->depositor_role != CSVIMPORT_ROLE_UNSPECIFIED) {
    COPY(item.achievement.depositor.code, row->depositor_code, "depositor_code");
    COPY(item.achievement.depositor.name, row->depositor_name, "depositor_name");
    item.achievement.depositor.role = row->depositor_role;
  } else {
    /* The node attributes it to its management centre. */
    item.achievement.depositor.role = STORE_ROLE_MANAGEMENT_CENTRE;
    COPY(item.achievement.depositor.code, "node", "depositor_code");
  }
#undef COPY
  /* learner_ref is the node's to derive (it holds the federation key); any
   * non-zero value stands in for it here. */
  memset(item.learner.learner_ref, 0x5a, STORE_REF_LEN);
  memcpy(item.achievement.learner_ref, item.learner.learner_ref, STORE_REF_LEN);
  item.learner.opened_at_ms = 1;
  item.achievement.kind = row->kind;
  item.achievement.credits_milli = row->credits_milli;
  item.achievement.awarded_on = row->awarded_on;
  item.achievement.deposited_at_ms = 1;
  return store_deposit_validate(&item, why, whylen) == 0 ? 0 : -1;
}

static void report_bad(import_ctx_t *ic, uint64_t line, const char *why)
{
  ic->invalid++;
  if (ic->cli->json) {
    if (json_array_size(ic->errors) < IMPORT_JSON_ERRORS_MAX)
      json_array_append_new(ic->errors, json_pack("{s:I, s:s}", "line", (json_int_t)line, "reason", why));
  } else {
    fprintf(stderr, "line %" PRIu64 ": %s\n", line, why);
  }
}

static int validate_cb(void *ud, uint64_t line, uint64_t row_index, const struct csv_row *row,
                       const struct csvimport_row_error *err)
{
  (void)row_index;
  import_ctx_t *ic = ud;
  if (row) {
    char why[256];
    if (store_check(row, why, sizeof why) != 0) {
      report_bad(ic, line, why);
      return 0;
    }
    if (keep_row(ic, line, row) != 0) {
      ic->oom = 1;
      return 1;
    }
    return 0;
  }
  report_bad(ic, line, err->why);
  return 0;
}

static int ref_cmp(const void *pa, const void *pb)
{
  const row_ref_t *a = pa, *b = pb;
  if (a->id_key != b->id_key) return a->id_key < b->id_key ? -1 : 1;
  if (a->awarded_on != b->awarded_on) return a->awarded_on < b->awarded_on ? -1 : 1;
  return a->off < b->off ? -1 : a->off > b->off; /* file order */
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct send_totals {
  uint64_t batches, batches_planned, rows_committed;
  uint64_t stored, duplicates, learners_opened;
} send_totals_t;

/* Batches sent whose acknowledgement has not arrived yet. Two keep the
 * node busy: it commits one while the next is built and crosses the
 * socket. A batch counts as committed only when its own ack arrived. */
#define IMPORT_WINDOW 2u

typedef struct inflight {
  uint64_t request_id;
  size_t rows;
} inflight_t;

/* Protobuf tags (field << 3 | wire type) of the frame cbctl writes by hand
 * (proto/wire.proto, proto/admin.proto). */
#define TAG_ENVELOPE_VERSION 0x08u               /* 1, varint */
#define TAG_ENVELOPE_REQUEST_ID 0x10u            /* 2, varint */
#define TAG_ENVELOPE_IMPORT_BATCH ((17u << 3) | 2u)
#define TAG_IMPORT_BATCH_ROWS ((1u << 3) | 2u)

/* The frame of one ImportBatchRequest for refs[from, to). The rows are
 * already packed ImportRow messages, so the frame is their concatenation
 * behind the Envelope's few bytes: nothing is unpacked and packed again
 * (which took a third of cbctl's time). The node decodes it like any
 * other frame. */
static uint8_t *build_batch_frame(const import_ctx_t *ic, size_t from, size_t to, uint64_t request_id,
                                  size_t *frame_len)
{
  size_t body = 0;
  for (size_t i = from; i < to; i++) body += 1 + varint_len(ic->refs[i].len) + ic->refs[i].len;
  size_t env = 1 + varint_len(FRAME_VERSION) + 1 + varint_len(request_id) + varint_len(TAG_ENVELOPE_IMPORT_BATCH) +
               varint_len(body) + body;
  uint8_t *buf = malloc(FRAME_HEADER_BYTES + env);
  if (!buf) return NULL;
  uint8_t *p = buf;
  *p++ = (uint8_t)(env >> 24);
  *p++ = (uint8_t)(env >> 16);
  *p++ = (uint8_t)(env >> 8);
  *p++ = (uint8_t)env;
  p += put_varint(p, TAG_ENVELOPE_VERSION);
  p += put_varint(p, FRAME_VERSION);
  p += put_varint(p, TAG_ENVELOPE_REQUEST_ID);
  p += put_varint(p, request_id);
  p += put_varint(p, TAG_ENVELOPE_IMPORT_BATCH);
  p += put_varint(p, body);
  for (size_t i = from; i < to; i++) {
    const row_ref_t *r = &ic->refs[i];
    *p++ = TAG_IMPORT_BATCH_ROWS;
    p += put_varint(p, r->len);
    memcpy(p, ic->packed + r->off, r->len);
    p += r->len;
  }
  assert((size_t)(p - buf) == FRAME_HEADER_BYTES + env);
  *frame_len = FRAME_HEADER_BYTES + env;
  return buf;
}

static const char *conn_io_err(const cbctl_conn_t *c)
{
  return c->tls ? c->io_err : errno ? strerror(errno) : "connection closed";
}

static const frame_type_t import_reply_types[] = {
  {CB__ENVELOPE__MSG_ERROR, "Error", NULL},
  {CB__ENVELOPE__MSG_IMPORT_BATCH_RESPONSE, "ImportBatchResponse", NULL},
};

/* Reads the reply to the oldest batch in flight; on CBCTL_OK adds its
 * counts (the batch is committed). */
static int recv_ack(cbctl_conn_t *c, const inflight_t *want, send_totals_t *t, char *err, size_t errlen)
{
  uint8_t hdr[FRAME_HEADER_BYTES];
  if (cbctl_conn_read(c, hdr, sizeof hdr) != 0) {
    snprintf(err, errlen, "no reply from the node: %s", conn_io_err(c));
    return CBCTL_EIO;
  }
  uint32_t blen;
  int rc = frame_header_decode(hdr, c->max_frame_bytes, &blen);
  if (rc != 0) {
    snprintf(err, errlen, "bad reply from the node: %s", frame_strerror(rc));
    return CBCTL_EPROTO;
  }
  uint8_t *body = malloc(blen);
  if (!body) {
    snprintf(err, errlen, "out of memory");
    return CBCTL_EPROTO;
  }
  if (cbctl_conn_read(c, body, blen) != 0) {
    free(body);
    snprintf(err, errlen, "reply cut short: %s", conn_io_err(c));
    return CBCTL_EIO;
  }
  frame_msg_t *m;
  char why[256];
  rc = frame_decode(body, blen, import_reply_types, sizeof import_reply_types / sizeof import_reply_types[0], &m,
                    NULL, why, sizeof why);
  free(body);
  if (rc != 0) {
    snprintf(err, errlen, "bad reply from the node: %s", why);
    return CBCTL_EPROTO;
  }
  const Cb__Envelope *env = frame_msg_envelope(m);
  rc = CBCTL_OK;
  if (env->request_id != want->request_id) {
    snprintf(err, errlen, "reply to request %llu while waiting for %llu", (unsigned long long)env->request_id,
             (unsigned long long)want->request_id);
    rc = CBCTL_EPROTO;
  } else if (env->msg_case == CB__ENVELOPE__MSG_ERROR) {
    snprintf(err, errlen, "%s", env->error->reason);
    rc = CBCTL_ENODE;
  } else {
    const Cb__ImportBatchResponse *r = env->import_batch_response;
    t->batches++;
    t->rows_committed += want->rows;
    t->stored += r->stored;
    t->duplicates += r->duplicates;
    t->learners_opened += r->learners_opened;
  }
  frame_msg_free(m);
  return rc;
}

/* Sends refs in batches of at most batch_rows rows and budget bytes,
 * IMPORT_WINDOW in flight; returns CBCTL_OK when every batch is
 * acknowledged, else the first failure (t says what was committed). */
static size_t batch_end(const import_ctx_t *ic, size_t from, size_t batch_rows, size_t frame_budget);
static int send_batches(import_ctx_t *ic, size_t batch_rows, size_t budget, send_totals_t *t,
                        cbctl_progress_t *prog, char *err, size_t errlen)
{
  cbctl_conn_t *c = &ic->cli->conn;
  inflight_t win[IMPORT_WINDOW];
  size_t head = 0, nin = 0, from = 0, acked_rows = 0;
  int rc = CBCTL_OK;
  while (from < ic->nrefs || nin > 0) {
    if (from < ic->nrefs && nin < IMPORT_WINDOW) {
      size_t to = batch_end(ic, from, batch_rows, budget);
      size_t len;
      uint64_t id = c->next_request_id++;
      uint8_t *f = build_batch_frame(ic, from, to, id, &len);
      if (!f) {
        snprintf(err, errlen, "out of memory");
        rc = CBCTL_EPROTO;
        break;
      }
      if (len - FRAME_HEADER_BYTES > c->max_frame_bytes) {
        free(f);
        snprintf(err, errlen, "request not sent: %s", frame_strerror(-FRAME_E_TOO_LARGE));
        rc = CBCTL_EPROTO;
        break;
      }
      int wr = cbctl_conn_write(c, f, len);
      free(f);
      if (wr != 0) {
        snprintf(err, errlen, "sending to the node failed: %s", c->tls ? c->io_err : strerror(errno));
        rc = CBCTL_EIO;
        break;
      }
      win[(head + nin) % IMPORT_WINDOW] = (inflight_t){id, to - from};
      nin++;
      from = to;
      continue;
    }
    rc = recv_ack(c, &win[head], t, err, errlen);
    if (rc != CBCTL_OK) break;
    acked_rows += win[head].rows;
    head = (head + 1) % IMPORT_WINDOW;
    nin--;
    cbctl_progress_update(prog, acked_rows);
  }
  return rc;
}

/* Cuts refs into batches of at most batch_rows rows and frame_budget bytes. */
static size_t batch_end(const import_ctx_t *ic, size_t from, size_t batch_rows, size_t frame_budget)
{
  size_t bytes = 0, i = from;
  while (i < ic->nrefs && i - from < batch_rows) {
    size_t sz = ic->refs[i].len + 6; /* tag and length of the repeated field */
    if (i > from && bytes + sz > frame_budget) break;
    bytes += sz;
    i++;
  }
  return i;
}

static json_t *summary_json(const char *path, const struct csvimport_summary *s, import_ctx_t *ic)
{
  /* Rows csvimport accepted but the store's rules refuse count as invalid. */
  uint64_t invalid = ic->invalid, valid = s->rows >= invalid ? s->rows - invalid : 0;
  json_t *doc = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I}", "file", path, "encoding",
                          csvimport_encoding_name(s->encoding), "bom", s->had_bom, "rows", (json_int_t)s->rows, "valid",
                          (json_int_t)valid, "invalid", (json_int_t)invalid);
  json_object_set(doc, "errors", ic->errors);
  if (invalid > json_array_size(ic->errors)) json_object_set_new(doc, "errors_truncated", json_true());
  return doc;
}

static void add_totals(json_t *doc, const send_totals_t *t, size_t batch_rows, int64_t ms)
{
  json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "batch_rows", (json_int_t)batch_rows, "batches",
                        (json_int_t)t->batches_planned, "batches_committed", (json_int_t)t->batches,
                        "rows_committed", (json_int_t)t->rows_committed, "stored", (json_int_t)t->stored,
                        "duplicates", (json_int_t)t->duplicates, "learners_opened", (json_int_t)t->learners_opened,
                        "elapsed_ms", (json_int_t)ms);
  json_object_update(doc, o);
  json_decref(o);
}

static void usage_import(void)
{
  fprintf(stderr, "usage: cbctl import FILE.csv [--skip-invalid] [--batch N] [--encoding auto|utf8|gb18030] [--check]\n");
}

int cbctl_cmd_import(cbctl_ctx_t *ctx, int argc, char **argv)
{
  static const struct option opts[] = {
    {"skip-invalid", no_argument, NULL, 's'}, {"batch", required_argument, NULL, 'b'},
    {"encoding", required_argument, NULL, 'e'}, {"check", no_argument, NULL, 'c'},
    {NULL, 0, NULL, 0}};
  int skip_invalid = 0, check_only = 0;
  unsigned long batch_opt = 0;
  struct csvimport_opts copts = {0, CSVIMPORT_ENC_AUTO};
  int ch;
  optind = 0;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 's': skip_invalid = 1; break;
    case 'c': check_only = 1; break;
    case 'b': {
      char *end;
      errno = 0;
      batch_opt = strtoul(optarg, &end, 10);
      if (errno || *end || optarg[0] < '1' || optarg[0] > '9' || batch_opt > ADMIN_IMPORT_ROWS_MAX) {
        usage_import();
        return cbctl_usage_error("import", "--batch '%s': a number of rows in 1..%u", optarg, ADMIN_IMPORT_ROWS_MAX);
      }
      break;
    }
    case 'e':
      if (strcmp(optarg, "auto") == 0) copts.encoding = CSVIMPORT_ENC_AUTO;
      else if (strcmp(optarg, "utf8") == 0 || strcmp(optarg, "utf-8") == 0) copts.encoding = CSVIMPORT_ENC_UTF8;
      else if (strcmp(optarg, "gb18030") == 0) copts.encoding = CSVIMPORT_ENC_GB18030;
      else return cbctl_usage_error("import", "--encoding '%s': use auto, utf8 or gb18030", optarg);
      break;
    default: usage_import(); return 2;
    }
  }
  if (optind + 1 != argc) {
    usage_import();
    return cbctl_usage_error("import", "give exactly one FILE.csv");
  }
  const char *path = argv[optind];
  copts.today_yyyymmdd = idcard_yyyymmdd_from_unix((int64_t)time(NULL));

  import_ctx_t ic;
  memset(&ic, 0, sizeof ic);
  ic.cli = ctx;
  ic.errors = json_array();
  struct csvimport_summary sum;
  memset(&sum, 0, sizeof sum);
  int64_t t0 = mono_ms();
  /* Packed rows take about the file's size: reserve it once rather than
   * copying a growing buffer over and over (a hint; growth still works). */
  struct stat st;
  if (stat(path, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX / 2)
    (void)reserve((void **)&ic.packed, &ic.packed_cap, (size_t)st.st_size + IMPORT_ROW_MAX_BYTES, 1);
  int rc = csvimport_file(path, &copts, validate_cb, &ic, &sum);
  int exit_code = 0;
  if (ic.oom) {
    exit_code = cbctl_fail(ctx, "NO_MEMORY", "%s: out of memory holding %zu rows", path, ic.nrefs);
    goto out;
  }
  if (rc != 0) {
    exit_code = cbctl_fail_json(ctx, "BAD_FILE", summary_json(path, &sum, &ic), "%s: %s; nothing imported", path,
                                sum.error[0] ? sum.error : csvimport_strerror(rc));
    goto out;
  }
  if (ic.invalid > 0 && !skip_invalid) {
    exit_code = cbctl_fail_json(ctx, "INVALID_ROWS", summary_json(path, &sum, &ic),
                                "%s: %" PRIu64 " of %" PRIu64 " rows are invalid (listed above); nothing imported "
                                "(--skip-invalid imports the valid rows)",
                                path, ic.invalid, sum.rows);
    goto out;
  }
  if (check_only) {
    if (ctx->json) {
      json_t *doc = summary_json(path, &sum, &ic);
      json_object_set_new(doc, "ok", json_true());
      cbctl_json_print(doc);
    } else {
      printf("%s: %" PRIu64 " rows, %" PRIu64 " valid, %" PRIu64 " invalid (%s%s); nothing sent (--check)\n", path,
             sum.rows, (uint64_t)ic.nrefs, ic.invalid, csvimport_encoding_name(sum.encoding), sum.had_bom ? ", BOM" : "");
    }
    goto out;
  }

  qsort(ic.refs, ic.nrefs, sizeof *ic.refs, ref_cmp);
  if (cbctl_ensure_connected(ctx) != 0) {
    exit_code = 1;
    goto out;
  }
  size_t batch_rows = batch_opt ? batch_opt : ctx->conn.node_import_batch_records;
  if (batch_rows == 0 || batch_rows > ADMIN_IMPORT_ROWS_MAX) batch_rows = ADMIN_IMPORT_ROWS_MAX;
  size_t budget = ctx->conn.max_frame_bytes > 2 * IMPORT_FRAME_MARGIN_BYTES
                    ? ctx->conn.max_frame_bytes - IMPORT_FRAME_MARGIN_BYTES
                    : IMPORT_FRAME_MARGIN_BYTES;
  send_totals_t t;
  memset(&t, 0, sizeof t);
  for (size_t i = 0; i < ic.nrefs; i = batch_end(&ic, i, batch_rows, budget)) t.batches_planned++;

  cbctl_progress_t prog;
  cbctl_progress_start(&prog, "import", ic.nrefs, !ctx->quiet);
  char err[2048];
  rc = send_batches(&ic, batch_rows, budget, &t, &prog, err, sizeof err);
  if (rc != CBCTL_OK) {
    cbctl_progress_finish(&prog);
    json_t *doc = summary_json(path, &sum, &ic);
    add_totals(doc, &t, batch_rows, mono_ms() - t0);
    /* Running it again helps when the node went away, not when it said no. */
    const char *next = rc == CBCTL_EIO ? "run the same import again to complete it"
                                       : "running it again will be refused the same way";
    exit_code = cbctl_fail_json(ctx, rc == CBCTL_EIO ? "UNAVAILABLE" : "REFUSED", doc,
                                "import stopped at batch %" PRIu64 " of %" PRIu64 ": %s; the %" PRIu64
                                " batches (%" PRIu64 " rows) before it are committed; %s",
                                t.batches + 1, t.batches_planned, err, t.batches, t.rows_committed, next);
    goto out;
  }
  cbctl_progress_finish(&prog);
  int64_t ms = mono_ms() - t0;
  if (ctx->json) {
    json_t *doc = summary_json(path, &sum, &ic);
    json_object_set_new(doc, "ok", json_true());
    add_totals(doc, &t, batch_rows, ms);
    cbctl_json_print(doc);
  } else {
    printf("Imported %s (%s%s) into node %s in %.1f s\n", path, csvimport_encoding_name(sum.encoding),
           sum.had_bom ? ", BOM" : "", ctx->conn.node_id, (double)ms / 1000.0);
    static const char *const hdr[] = {"rows", "stored", "duplicates", "skipped", "learners opened", "batches"};
    cbctl_table_t tab;
    cbctl_table_init(&tab, 6, hdr);
    tab.right_align = 0x3f;
    char c[6][24];
    snprintf(c[0], 24, "%" PRIu64, sum.rows);
    snprintf(c[1], 24, "%" PRIu64, t.stored);
    snprintf(c[2], 24, "%" PRIu64, t.duplicates);
    snprintf(c[3], 24, "%" PRIu64, ic.invalid);
    snprintf(c[4], 24, "%" PRIu64, t.learners_opened);
    snprintf(c[5], 24, "%" PRIu64, t.batches);
    const char *row[] = {c[0], c[1], c[2], c[3], c[4], c[5]};
    cbctl_table_add(&tab, row);
    cbctl_table_print(&tab, stdout);
    cbctl_table_free(&tab);
    if (ic.invalid) printf("%" PRIu64 " invalid rows skipped (listed above)\n", ic.invalid);
  }
out:
  json_decref(ic.errors);
  free(ic.packed);
  free(ic.refs);
  return exit_code;
}
