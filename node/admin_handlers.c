/* Admin request handlers and the dispatch table keyed by Envelope message
 * case. Each handler validates what needs the node (ID numbers against
 * today, the store's record rules), calls the store, and builds the reply.
 * Writes are acknowledged only after store_* returned 0, i.e. after the
 * LMDB transaction committed. spec/admin.md "Requests". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_lookup.h"
#include "admin_import.h"
#include "admin_roles.h"
#include "idcard.h"
#include "store.h"

#define ADMIN_PROTOCOL_VERSION 1u

/* ---- arena and replies ------------------------------------------------ */

void *admin_arena_alloc(admin_arena_t *a, size_t size)
{
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    void **p = realloc(a->ptrs, cap * sizeof *p);
    if (!p) return NULL;
    a->ptrs = p;
    a->cap = cap;
  }
  void *m = calloc(1, size ? size : 1);
  if (!m) return NULL;
  a->ptrs[a->n++] = m;
  return m;
}

char *admin_arena_strdup(admin_arena_t *a, const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = admin_arena_alloc(a, n);
  if (d) memcpy(d, s, n);
  return d;
}

void admin_arena_free(admin_arena_t *a)
{
  for (size_t i = 0; i < a->n; i++) free(a->ptrs[i]);
  free(a->ptrs);
  memset(a, 0, sizeof *a);
}

void admin_reply_error(admin_reply_t *r, Cb__ErrorCode code, const char *fmt, ...)
{
  static Cb__Error oom = CB__ERROR__INIT;
  char reason[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  Cb__Error *e = admin_arena_alloc(&r->arena, sizeof *e);
  char *text = admin_arena_strdup(&r->arena, reason);
  if (!e || !text) {
    oom.code = CB__ERROR_CODE__ERROR_INTERNAL;
    oom.reason = (char *)"out of memory";
    e = &oom;
  } else {
    cb__error__init(e);
    e->code = code;
    e->reason = text;
  }
  r->env.msg_case = CB__ENVELOPE__MSG_ERROR;
  r->env.error = e;
}

Cb__ErrorCode admin_error_code_for_frame(int frame_err)
{
  switch (frame_err < 0 ? -frame_err : frame_err) {
  case FRAME_E_TOO_LARGE: return CB__ERROR_CODE__ERROR_FRAME_TOO_LARGE;
  case FRAME_E_EMPTY:
  case FRAME_E_MALFORMED:
  case FRAME_E_ALLOC_CAP: return CB__ERROR_CODE__ERROR_MALFORMED;
  case FRAME_E_VERSION: return CB__ERROR_CODE__ERROR_UNSUPPORTED_VERSION;
  case FRAME_E_UNKNOWN_TYPE: return CB__ERROR_CODE__ERROR_UNKNOWN_TYPE;
  case FRAME_E_INVALID: return CB__ERROR_CODE__ERROR_INVALID_ARGUMENT;
  default: return CB__ERROR_CODE__ERROR_INTERNAL;
  }
}

static Cb__ErrorCode error_code_for_store(int rc)
{
  switch (rc) {
  case STORE_EINVAL: return CB__ERROR_CODE__ERROR_INVALID_ARGUMENT;
  case STORE_ENOTFOUND: return CB__ERROR_CODE__ERROR_NOT_FOUND;
  case STORE_ECONFLICT: return CB__ERROR_CODE__ERROR_ALREADY_EXISTS;
  default: return CB__ERROR_CODE__ERROR_STORAGE;
  }
}

static int reply_store_error(node_t *n, admin_reply_t *r, int rc, const char *during)
{
  node_store_fatal(n, rc, during);
  const char *msg = store_errmsg(n->st);
  admin_reply_error(r, error_code_for_store(rc), "%s: %s%s%s; nothing was written", during,
                    store_strerror(rc), msg[0] ? ": " : "", msg);
  return 0;
}

static int reply_oom(admin_reply_t *r)
{
  admin_reply_error(r, CB__ERROR_CODE__ERROR_INTERNAL, "out of memory");
  return 0;
}
#define REPLY_OOM(r) reply_oom(r)

/* ---- conversions ------------------------------------------------------ */

static void copy_text(char *dst, size_t cap, const char *src)
{
  /* Lengths were checked by admin_validate against the same bounds; a
   * longer text would be cut here (the store's check then sees the cut
   * text), never overrun. No snprintf: this runs for 9 fields of every
   * imported row. */
  size_t len = src ? strnlen(src, cap - 1) : 0;
  if (len) memcpy(dst, src, len);
  dst[len] = '\0';
}

/* caller: who asks (admin_roles.h); over TLS an outlet, branch or appraisal
 * centre deposits under its certificate, whatever the row claims. */
static void achievement_from_proto(node_t *n, const admin_caller_t *caller, const Cb__Achievement *a,
                                   const uint8_t ref[STORE_REF_LEN], int64_t now_ms, store_achievement *out)
{
  memset(out, 0, sizeof *out);
  memcpy(out->learner_ref, ref, STORE_REF_LEN);
  out->kind = (int)a->kind;
  copy_text(out->issuer, sizeof out->issuer, a->issuer);
  copy_text(out->code, sizeof out->code, a->code);
  copy_text(out->title, sizeof out->title, a->title);
  copy_text(out->level, sizeof out->level, a->level);
  out->credits_milli = a->credits_milli;
  copy_text(out->score, sizeof out->score, a->score);
  out->awarded_on = a->awarded_on;
  if (a->depositor && a->depositor->role != 0) {
    out->depositor.role = (int)a->depositor->role;
    copy_text(out->depositor.code, sizeof out->depositor.code, a->depositor->code);
    copy_text(out->depositor.name, sizeof out->depositor.name, a->depositor->name);
  } else {
    /* No depositor named: the node's own management centre deposits. */
    out->depositor.role = STORE_ROLE_MANAGEMENT_CENTRE;
    copy_text(out->depositor.code, sizeof out->depositor.code, n->cfg.id);
    copy_text(out->depositor.name, sizeof out->depositor.name, "管理中心");
  }
  admin_roles_stamp_depositor(caller, a, &out->depositor);
  out->deposited_at_ms = now_ms;
}

Cb__Achievement *admin_achievement_to_proto(admin_arena_t *ar, const store_achievement *a)
{
  Cb__Achievement *p = admin_arena_alloc(ar, sizeof *p);
  Cb__Depositor *d = admin_arena_alloc(ar, sizeof *d);
  uint8_t *ref = admin_arena_alloc(ar, STORE_REF_LEN);
  if (!p || !d || !ref) return NULL;
  cb__achievement__init(p);
  cb__depositor__init(d);
  p->id = a->id;
  memcpy(ref, a->learner_ref, STORE_REF_LEN);
  p->learner_ref.data = ref;
  p->learner_ref.len = STORE_REF_LEN;
  p->kind = (Cb__AchievementKind)a->kind;
  p->issuer = admin_arena_strdup(ar, a->issuer);
  p->code = admin_arena_strdup(ar, a->code);
  p->title = admin_arena_strdup(ar, a->title);
  p->level = admin_arena_strdup(ar, a->level);
  p->credits_milli = a->credits_milli;
  p->score = admin_arena_strdup(ar, a->score);
  p->awarded_on = a->awarded_on;
  d->role = (Cb__DepositorRole)a->depositor.role;
  d->code = admin_arena_strdup(ar, a->depositor.code);
  d->name = admin_arena_strdup(ar, a->depositor.name);
  p->depositor = d;
  p->deposited_at_ms = a->deposited_at_ms;
  if (!p->issuer || !p->code || !p->title || !p->level || !p->score || !d->code || !d->name) return NULL;
  return p;
}

static Cb__Learner *learner_to_proto(admin_arena_t *ar, const store_learner *l)
{
  Cb__Learner *p = admin_arena_alloc(ar, sizeof *p);
  uint8_t *ref = admin_arena_alloc(ar, STORE_REF_LEN);
  if (!p || !ref) return NULL;
  cb__learner__init(p);
  memcpy(ref, l->learner_ref, STORE_REF_LEN);
  p->learner_ref.data = ref;
  p->learner_ref.len = STORE_REF_LEN;
  p->id_number = admin_arena_strdup(ar, l->id_number);
  p->name = admin_arena_strdup(ar, l->name);
  p->opened_at_ms = l->opened_at_ms;
  p->region = admin_arena_strdup(ar, l->region);
  if (!p->id_number || !p->name || !p->region) return NULL;
  return p;
}

/* Validates an ID number against today and derives its learner_ref. */
static int learner_key(node_t *n, const char *id_in, char norm[IDCARD_BUFSZ],
                       uint8_t ref[STORE_REF_LEN], char *why, size_t whylen)
{
  if (idcard_validate(id_in, node_today(), norm, why, whylen) != 0) return -1;
  if (idcard_learner_ref(n->fedkey, sizeof n->fedkey, norm, ref) != 0) {
    snprintf(why, whylen, "cannot derive learner_ref");
    return -1;
  }
  return 0;
}

/* ---- handlers ----------------------------------------------------------- */

static int handle_hello(node_t *n, const Cb__Envelope *req, admin_reply_t *r)
{
  (void)req;
  Cb__HelloResponse *h = admin_arena_alloc(&r->arena, sizeof *h);
  if (!h) return REPLY_OOM(r);
  cb__hello_response__init(h);
  h->node_id = n->cfg.id;
  h->region = n->cfg.region;
  h->software = (char *)NODE_SOFTWARE;
  h->protocol_version = ADMIN_PROTOCOL_VERSION;
  h->max_frame_bytes = n->cfg.max_frame_bytes;
  h->import_batch_records = n->cfg.import_batch_records;
  r->env.msg_case = CB__ENVELOPE__MSG_HELLO_RESPONSE;
  r->env.hello_response = h;
  return 0;
}

static int handle_learner_open(node_t *n, const Cb__Envelope *req, admin_reply_t *r)
{
  const Cb__LearnerOpenRequest *q = req->learner_open_request;
  store_learner l;
  memset(&l, 0, sizeof l);
  char why[256];
  if (learner_key(n, q->id_number, l.id_number, l.learner_ref, why, sizeof why) != 0) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INVALID_ARGUMENT, "id_number '%s': %s", q->id_number, why);
    return 0;
  }
  copy_text(l.name, sizeof l.name, q->name);
  l.opened_at_ms = node_now_ms();
  bool opened = false;
  int rc = store_learner_open(n->st, &l, &opened);
  if (rc != 0) return reply_store_error(n, r, rc, "learner open");
  Cb__LearnerOpenResponse *o = admin_arena_alloc(&r->arena, sizeof *o);
  if (!o) return REPLY_OOM(r);
  cb__learner_open_response__init(o);
  o->learner = learner_to_proto(&r->arena, &l);
  if (!o->learner) return REPLY_OOM(r);
  o->created = opened;
  if (opened)
    log_pack(LOG_INFO, "learner_opened", "{s:I}", "learner_no", (json_int_t)l.learner_no);
  r->env.msg_case = CB__ENVELOPE__MSG_LEARNER_OPEN_RESPONSE;
  r->env.learner_open_response = o;
  return 0;
}

static int handle_deposit(node_t *n, const Cb__Envelope *req, admin_reply_t *r)
{
  const Cb__DepositRequest *q = req->deposit_request;
  store_deposit item;
  memset(&item, 0, sizeof item);
  char norm[IDCARD_BUFSZ], why[256];
  uint8_t ref[STORE_REF_LEN];
  if (learner_key(n, q->id_number, norm, ref, why, sizeof why) != 0) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INVALID_ARGUMENT, "id_number '%s': %s", q->id_number, why);
    return 0;
  }
  int rc = store_learner_get_by_id_number(n->st, norm, &item.learner);
  if (rc == STORE_ENOTFOUND) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_NOT_FOUND,
                      "no account for ID number %s; open one first (cbctl learner open)", norm);
    return 0;
  }
  if (rc != 0) return reply_store_error(n, r, rc, "deposit");
  achievement_from_proto(n, admin_reply_caller(r), q->achievement, item.learner.learner_ref, node_now_ms(),
                         &item.achievement);
  if (store_deposit_validate(&item, why, sizeof why) != 0) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INVALID_ARGUMENT, "achievement: %s", why);
    return 0;
  }
  store_deposit_result res;
  rc = store_deposit_batch(n->st, &item, 1, &res, NULL, NULL);
  if (rc != 0) {
    if (rc == STORE_EINVAL && res.status == STORE_DEPOSIT_INVALID) {
      admin_reply_error(r, CB__ERROR_CODE__ERROR_INVALID_ARGUMENT, "achievement: %s", res.reason);
      return 0;
    }
    return reply_store_error(n, r, rc, "deposit");
  }
  Cb__DepositResponse *d = admin_arena_alloc(&r->arena, sizeof *d);
  uint8_t *refcopy = admin_arena_alloc(&r->arena, STORE_REF_LEN);
  if (!d || !refcopy) return REPLY_OOM(r);
  cb__deposit_response__init(d);
  d->achievement_id = res.achievement_id;
  d->duplicate = res.status == STORE_DEPOSIT_DUPLICATE;
  memcpy(refcopy, item.learner.learner_ref, STORE_REF_LEN);
  d->learner_ref.data = refcopy;
  d->learner_ref.len = STORE_REF_LEN;
  log_pack(LOG_INFO, "deposit", "{s:I, s:b}", "achievement_id", (json_int_t)res.achievement_id,
           "duplicate", d->duplicate);
  r->env.msg_case = CB__ENVELOPE__MSG_DEPOSIT_RESPONSE;
  r->env.deposit_response = d;
  return 0;
}

/* The rows of an import batch, handed to store_deposit_stream one at a
 * time: no array of 50,000 store_deposit (~50 MB) is built. */
typedef struct import_rows {
  node_t *n;
  const admin_caller_t *caller; /* depositor from the certificate over TLS */
  const Cb__ImportBatchRequest *q;
  admin_import_keys_t *keys;
  int64_t now_ms;
  int32_t today;
  char why[256];              /* why get refused a row */
} import_rows_t;

static int import_row_get(void *arg, size_t i, store_deposit *it)
{
  import_rows_t *ir = arg;
  const Cb__ImportRow *row = ir->q->rows[i];
  const char *norm;
  const uint8_t *ref;
  if (admin_import_learner_key(ir->keys, row->id_number, ir->today, &norm, &ref, ir->why, sizeof ir->why) != 0)
    return -1;
  store_learner *l = &it->learner;
  memcpy(l->learner_ref, ref, STORE_REF_LEN);
  memcpy(l->id_number, norm, IDCARD_BUFSZ);
  copy_text(l->name, sizeof l->name, row->name);
  l->opened_at_ms = ir->now_ms;
  achievement_from_proto(ir->n, ir->caller, row->achievement, ref, ir->now_ms, &it->achievement);
  return 0;
}

static int handle_import_batch(node_t *n, const Cb__Envelope *req, admin_reply_t *r)
{
  const Cb__ImportBatchRequest *q = req->import_batch_request;
  size_t count = q->n_rows;
  import_rows_t ir = {.n = n, .caller = admin_reply_caller(r), .q = q, .now_ms = node_now_ms(), .today = node_today()};
  ir.keys = admin_import_keys_new(n->fedkey, sizeof n->fedkey);
  if (!ir.keys) return REPLY_OOM(r);
  /* Every row is checked (ID number here, the store's record rules inside
   * the transaction) right before it is written; the first bad row aborts
   * the transaction, so nothing of the batch is written. */
  store_batch_summary sum;
  int rc = store_deposit_stream(n->st, count, import_row_get, &ir, &sum);
  admin_import_keys_free(ir.keys);
  if (rc == STORE_EABORT && sum.bad_index < count) {
    const Cb__ImportRow *row = q->rows[sum.bad_index];
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INVALID_ARGUMENT,
                      "rows[%zu] (line %u): id_number '%s': %s; nothing was written", sum.bad_index, row->line,
                      row->id_number, ir.why);
    return 0;
  }
  if ((rc == STORE_EINVAL || rc == STORE_ECONFLICT) && sum.bad_index < count && sum.reason[0]) {
    admin_reply_error(r, error_code_for_store(rc), "rows[%zu] (line %u): %s; nothing was written", sum.bad_index,
                      q->rows[sum.bad_index]->line, sum.reason);
    return 0;
  }
  if (rc != 0) return reply_store_error(n, r, rc, "import batch");
  Cb__ImportBatchResponse *b = admin_arena_alloc(&r->arena, sizeof *b);
  if (!b) return REPLY_OOM(r);
  cb__import_batch_response__init(b);
  b->stored = sum.stored;
  b->duplicates = sum.duplicates;
  b->learners_opened = sum.learners_opened;
  log_pack(LOG_INFO, "import_batch", "{s:I, s:I, s:I, s:I}", "rows", (json_int_t)count, "stored",
           (json_int_t)b->stored, "duplicates", (json_int_t)b->duplicates, "learners_opened",
           (json_int_t)b->learners_opened);
  r->env.msg_case = CB__ENVELOPE__MSG_IMPORT_BATCH_RESPONSE;
  r->env.import_batch_response = b;
  return 0;
}

/* Transcript rows are collected until the reply would approach the frame
 * limit; the totals always cover every achievement. */
typedef struct transcript_ctx {
  admin_arena_t *arena;
  Cb__Achievement **items;
  size_t n, cap;
  size_t bytes, budget;
  int truncated;
  int oom;
} transcript_ctx_t;

static int transcript_cb(const store_achievement *a, void *arg)
{
  transcript_ctx_t *t = arg;
  if (t->truncated) return 0;
  Cb__Achievement *p = admin_achievement_to_proto(t->arena, a);
  if (!p) {
    t->oom = 1;
    return 1;
  }
  size_t sz = cb__achievement__get_packed_size(p) + 8;
  if (t->bytes + sz > t->budget) {
    t->truncated = 1;
    return 0;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 32;
    Cb__Achievement **np = admin_arena_alloc(t->arena, cap * sizeof *np);
    if (!np) {
      t->oom = 1;
      return 1;
    }
    if (t->n) memcpy(np, t->items, t->n * sizeof *np);
    t->items = np;
    t->cap = cap;
  }
  t->items[t->n++] = p;
  t->bytes += sz;
  return 0;
}

static int handle_transcript(node_t *n, const Cb__Envelope *req, admin_reply_t *r)
{
  const Cb__TranscriptRequest *q = req->transcript_request;
  store_learner l;
  int rc;
  if (q->who_case == CB__TRANSCRIPT_REQUEST__WHO_ID_NUMBER) {
    char norm[IDCARD_BUFSZ], why[256];
    if (idcard_validate(q->id_number, 0, norm, why, sizeof why) != 0) {
      admin_reply_error(r, CB__ERROR_CODE__ERROR_INVALID_ARGUMENT, "id_number '%s': %s", q->id_number, why);
      return 0;
    }
    rc = store_learner_get_by_id_number(n->st, norm, &l);
    if (rc == STORE_ENOTFOUND) {
      admin_reply_error(r, CB__ERROR_CODE__ERROR_NOT_FOUND, "no account for ID number %s on this node", norm);
      return 0;
    }
  } else {
    rc = store_learner_get_by_ref(n->st, q->learner_ref.data, &l);
    if (rc == STORE_ENOTFOUND) {
      admin_reply_error(r, CB__ERROR_CODE__ERROR_NOT_FOUND, "no account with that learner_ref on this node");
      return 0;
    }
  }
  if (rc != 0) return reply_store_error(n, r, rc, "transcript");

  transcript_ctx_t t;
  memset(&t, 0, sizeof t);
  t.arena = &r->arena;
  t.budget = n->cfg.max_frame_bytes > 8192 ? n->cfg.max_frame_bytes - 4096 : 4096;
  store_totals tot;
  rc = store_transcript(n->st, l.learner_ref, transcript_cb, &t, &tot);
  if (t.oom) return REPLY_OOM(r);
  if (rc != 0) return reply_store_error(n, r, rc, "transcript");

  Cb__TranscriptResponse *o = admin_arena_alloc(&r->arena, sizeof *o);
  if (!o) return REPLY_OOM(r);
  cb__transcript_response__init(o);
  o->learner = learner_to_proto(&r->arena, &l);
  if (!o->learner) return REPLY_OOM(r);
  o->n_achievements = t.n;
  o->achievements = t.items;
  o->truncated = t.truncated;
  o->credits_milli_total = tot.credits_milli;
  size_t kinds = 0;
  for (int k = 1; k <= STORE_KIND_MAX; k++) kinds += tot.count_by_kind[k] > 0;
  o->totals = admin_arena_alloc(&r->arena, (kinds ? kinds : 1) * sizeof *o->totals);
  if (!o->totals) return REPLY_OOM(r);
  for (int k = 1; k <= STORE_KIND_MAX; k++) {
    if (!tot.count_by_kind[k]) continue;
    Cb__CreditTotal *ct = admin_arena_alloc(&r->arena, sizeof *ct);
    if (!ct) return REPLY_OOM(r);
    cb__credit_total__init(ct);
    ct->kind = (Cb__AchievementKind)k;
    ct->count = (uint32_t)tot.count_by_kind[k];
    ct->credits_milli = tot.credits_milli_by_kind[k];
    o->totals[o->n_totals++] = ct;
  }
  r->env.msg_case = CB__ENVELOPE__MSG_TRANSCRIPT_RESPONSE;
  r->env.transcript_response = o;
  return 0;
}

static int handle_stats(node_t *n, const Cb__Envelope *req, admin_reply_t *r)
{
  (void)req;
  store_stats s;
  int rc = store_get_stats(n->st, &s);
  if (rc != 0) return reply_store_error(n, r, rc, "stats");
  Cb__StatsResponse *o = admin_arena_alloc(&r->arena, sizeof *o);
  if (!o) return REPLY_OOM(r);
  cb__stats_response__init(o);
  o->learners = s.learners;
  o->achievements = s.achievements;
  o->db_size_bytes = s.used_bytes;
  o->map_size_bytes = s.map_size_bytes;
  o->file_size_bytes = s.file_bytes;
  o->node_id = n->cfg.id;
  o->region = n->cfg.region;
  r->env.msg_case = CB__ENVELOPE__MSG_STATS_RESPONSE;
  r->env.stats_response = o;
  return 0;
}

/* ---- dispatch table ----------------------------------------------------- */

static const struct {
  Cb__Envelope__MsgCase msg_case;
  admin_handle_fn handle;
} admin_routes[] = {
  {CB__ENVELOPE__MSG_HELLO_REQUEST, handle_hello},
  {CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST, handle_learner_open},
  {CB__ENVELOPE__MSG_DEPOSIT_REQUEST, handle_deposit},
  {CB__ENVELOPE__MSG_IMPORT_BATCH_REQUEST, handle_import_batch},
  {CB__ENVELOPE__MSG_TRANSCRIPT_REQUEST, handle_transcript},
  {CB__ENVELOPE__MSG_STATS_REQUEST, handle_stats},
  {CB__ENVELOPE__MSG_REGION_LOOKUP_REQUEST, admin_handle_region_lookup},
  {CB__ENVELOPE__MSG_ACCESS_LOG_REQUEST, admin_handle_access_log},
};

const frame_type_t admin_types[] = {
  {CB__ENVELOPE__MSG_HELLO_REQUEST, "HelloRequest", admin_validate_hello},
  {CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST, "LearnerOpenRequest", admin_validate_learner_open},
  {CB__ENVELOPE__MSG_DEPOSIT_REQUEST, "DepositRequest", admin_validate_deposit},
  {CB__ENVELOPE__MSG_IMPORT_BATCH_REQUEST, "ImportBatchRequest", admin_validate_import_batch},
  {CB__ENVELOPE__MSG_TRANSCRIPT_REQUEST, "TranscriptRequest", admin_validate_transcript},
  {CB__ENVELOPE__MSG_STATS_REQUEST, "StatsRequest", admin_validate_stats},
  {CB__ENVELOPE__MSG_REGION_LOOKUP_REQUEST, "RegionLookupRequest", admin_validate_region_lookup},
  {CB__ENVELOPE__MSG_ACCESS_LOG_REQUEST, "AccessLogRequest", admin_validate_access_log},
};
const size_t admin_ntypes = sizeof admin_types / sizeof admin_types[0];

admin_handle_fn admin_handler_for(Cb__Envelope__MsgCase c)
{
  for (size_t i = 0; i < sizeof admin_routes / sizeof admin_routes[0]; i++)
    if (admin_routes[i].msg_case == c) return admin_routes[i].handle;
  return NULL;
}
