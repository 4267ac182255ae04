/* Cross-region lookup and access log, the operator side (admin_lookup.h,
 * spec/protocol.md "The node's wiring"). The ID number is turned into
 * learner_ref here and goes no further. */
#include "admin_lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "idcard.h"
#include "node_peer.h"

/* ---- validators --------------------------------------------------------- */

static int invalid(char *err, size_t errlen, const char *what)
{
  snprintf(err, errlen, "%s", what);
  return -FRAME_E_INVALID;
}

int admin_validate_region_lookup(const Cb__Envelope *env, char *err, size_t errlen)
{
  const Cb__RegionLookupRequest *r = env->region_lookup_request;
  if (!r) return invalid(err, errlen, "missing body");
  if (admin_check_text("id_number", r->id_number, STORE_ID_NUMBER_MAX, 1, err, errlen)) return -FRAME_E_INVALID;
  if (admin_check_text("operator_id", r->operator_id, ADMIN_LOOKUP_TEXT_MAX, 1, err, errlen))
    return -FRAME_E_INVALID;
  if (admin_check_text("purpose", r->purpose, ADMIN_LOOKUP_TEXT_MAX, 1, err, errlen)) return -FRAME_E_INVALID;
  if (r->n_regions > ADMIN_LOOKUP_MAX_REGIONS) return invalid(err, errlen, "regions: too many");
  for (size_t i = 0; i < r->n_regions; i++) {
    if (!config_region_valid(r->regions[i])) {
      snprintf(err, errlen, "regions[%zu] '%.16s' is not one of sh, js, zj, ah", i, r->regions[i]);
      return -FRAME_E_INVALID;
    }
  }
  if (r->timeout_ms > NODE_PEER_LOOKUP_TIMEOUT_MAX_MS) {
    snprintf(err, errlen, "timeout_ms %u is over the limit of %u", r->timeout_ms,
             NODE_PEER_LOOKUP_TIMEOUT_MAX_MS);
    return -FRAME_E_INVALID;
  }
  return 0;
}

int admin_validate_access_log(const Cb__Envelope *env, char *err, size_t errlen)
{
  const Cb__AccessLogRequest *r = env->access_log_request;
  if (!r) return invalid(err, errlen, "missing body");
  if (admin_check_text("id_number", r->id_number, STORE_ID_NUMBER_MAX, 1, err, errlen)) return -FRAME_E_INVALID;
  return 0;
}

/* ---- shared ------------------------------------------------------------ */

static int learner_ref_of(node_t *n, const char *id, uint8_t ref[STORE_REF_LEN], admin_reply_t *r)
{
  char norm[IDCARD_BUFSZ], why[256];
  if (idcard_validate(id, node_today(), norm, why, sizeof why) != 0) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INVALID_ARGUMENT, "id_number '%s': %s", id, why);
    return -1;
  }
  if (idcard_learner_ref(n->fedkey, sizeof n->fedkey, norm, ref) != 0) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INTERNAL, "cannot derive learner_ref");
    return -1;
  }
  return 0;
}

static void hex(const uint8_t *p, size_t len, char *out)
{
  for (size_t i = 0; i < len; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* ---- region lookup ------------------------------------------------------ */

typedef struct lookup_op lookup_op_t;

typedef struct lookup_slot {
  lookup_op_t *op;
  Cb__RegionLookupResult *res;
  Cb__SignedStatement request;   /* what we signed: the answer must match it */
  Cb__LookupResponseBody *body;  /* the verified answer, freed after the reply */
  uint64_t started_ms;
  int done;
  int link_was_up;               /* a session to the peer existed when we asked */
} lookup_slot_t;

struct lookup_op {
  node_t *n;
  admin_pending_t *pending;
  size_t nslots, outstanding;
  lookup_slot_t *slots;
};

static void op_finish(lookup_op_t *op)
{
  admin_pending_complete(op->pending); /* encodes now: bodies still alive */
  for (size_t i = 0; i < op->nslots; i++) {
    sigstmt_statement_clear(&op->slots[i].request);
    if (op->slots[i].body) cb__lookup_response_body__free_unpacked(op->slots[i].body, NULL);
  }
  free(op->slots);
  free(op);
}

static void slot_error(lookup_slot_t *s, const char *a, const char *b)
{
  admin_reply_t *r = admin_pending_reply(s->op->pending);
  char buf[1024];
  snprintf(buf, sizeof buf, "%s%s", a, b);
  s->res->ok = 0;
  s->res->error = admin_arena_strdup(&r->arena, buf);
  if (!s->res->error) s->res->error = (char *)"out of memory";
}

static const char *peer_error_name(Cb__PeerErrorCode c)
{
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&cb__peer_error_code__descriptor, (int)c);
  return v ? v->name : "PEER_ERROR_UNKNOWN";
}

/* One peer's outcome: verified achievements, or why there are none. */
static void slot_settle(lookup_slot_t *s, int status, const Cb__Envelope *reply, const char *detail)
{
  node_t *n = s->op->n;
  admin_reply_t *r = admin_pending_reply(s->op->pending);
  Cb__RegionLookupResult *res = s->res;
  res->elapsed_ms = (uint32_t)(uv_now(&n->loop) - s->started_ms);
  char err[512];
  if (status != 0) {
    node_t *nn = s->op->n;
    peer_net_t *net = node_peer_net(nn);
    int up_now = net && peer_net_link_up(net, res->node_id);
    if (status == -PEER_E_TIMEOUT && !s->link_was_up && !up_now) {
      snprintf(err, sizeof err, "down: no session to %s (unreachable or refusing us) within %u ms",
               res->node_id, res->elapsed_ms);
    } else {
      snprintf(err, sizeof err, "%s: %s", status == -PEER_E_TIMEOUT ? "timeout" : status == -PEER_E_CLOSING ? "closing" : "down",
               peer_strerror(status));
      snprintf(err + strlen(err), sizeof err - strlen(err), " (%.300s)", detail && detail[0] ? detail : "no detail");
    }
    slot_error(s, err, "");
    return;
  }
  if (reply->msg_case == CB__ENVELOPE__MSG_PEER_ERROR) {
    snprintf(err, sizeof err, "refused by %s: %s: ", res->node_id, peer_error_name(reply->peer_error->code));
    slot_error(s, err, reply->peer_error->reason ? reply->peer_error->reason : "");
    return;
  }
  if (reply->msg_case != CB__ENVELOPE__MSG_LOOKUP_RESPONSE || !reply->lookup_response->response) {
    slot_error(s, "rejected: the answer is not a lookup_response from ", res->node_id);
    return;
  }
  registry_t *reg = node_peer_registry(n);
  if (!reg) {
    slot_error(s, "closing: node is shutting down", "");
    return;
  }
  const Cb__SignedStatement *st = reply->lookup_response->response;
  Cb__LookupResponseBody *b = NULL;
  if (peer_lookup_check_response(reg, &s->request, res->node_id, st, &b, err, sizeof err) != 0) {
    log_pack(LOG_WARN, "peer_answer_rejected", "{s:s, s:s}", "peer", res->node_id, "error", err);
    slot_error(s, "rejected: answer does not verify: ", err);
    return;
  }
  for (size_t i = 0; i < b->n_achievements; i++) {
    const Cb__Achievement *a = b->achievements[i];
    if (a->learner_ref.len != b->learner_ref.len ||
        memcmp(a->learner_ref.data, b->learner_ref.data, b->learner_ref.len) != 0) {
      cb__lookup_response_body__free_unpacked(b, NULL);
      slot_error(s, "rejected: answer carries another learner's achievement from ", res->node_id);
      return;
    }
  }
  s->body = b;
  const registry_member_t *m = registry_find_member(reg, b->responder);
  char keyhex[65];
  hex(st->public_key.data, st->public_key.len < 32 ? st->public_key.len : 32, keyhex);
  char ts[32];
  log_format_ts(b->time_ms, ts, sizeof ts);
  snprintf(err, sizeof err, "Ed25519 signature by %s (region %s) key %.16s…, key valid at %s; answers our request",
           b->responder, m ? m->region : "?", keyhex, ts);
  res->ok = 1;
  res->verified = 1;
  res->verification = admin_arena_strdup(&r->arena, err);
  res->found = b->found;
  res->answered_at_ms = b->time_ms;
  res->n_achievements = b->n_achievements;
  res->achievements = b->achievements;
}

static void lookup_response_cb(int status, const Cb__Envelope *reply, const char *detail, void *arg)
{
  lookup_slot_t *s = arg;
  lookup_op_t *op = s->op;
  slot_settle(s, status, reply, detail);
  s->done = 1;
  if (--op->outstanding == 0) op_finish(op);
}

/* Members to ask: every other member, or those of the regions named. */
static int pick_targets(node_t *n, const registry_t *reg, const Cb__RegionLookupRequest *q,
                        const registry_member_t **out, size_t *nout, admin_reply_t *r)
{
  size_t k = 0;
  for (size_t i = 0; i < q->n_regions; i++) {
    if (strcmp(q->regions[i], n->cfg.region) == 0) {
      admin_reply_error(r, CB__ERROR_CODE__ERROR_INVALID_ARGUMENT,
                        "region %s is this node's own region: use transcript", q->regions[i]);
      return -1;
    }
    int any = 0;
    for (size_t j = 0; j < registry_member_count(reg); j++) {
      const registry_member_t *m = registry_member_at(reg, j);
      if (strcmp(m->region, q->regions[i]) != 0 || strcmp(m->node_id, n->cfg.id) == 0) continue;
      int dup = 0;
      for (size_t d = 0; d < k; d++) dup |= out[d] == m;
      if (!dup && k < REGISTRY_MAX_MEMBERS) out[k++] = m;
      any = 1;
    }
    if (!any) {
      admin_reply_error(r, CB__ERROR_CODE__ERROR_NOT_FOUND, "no member of region %s in the registry",
                        q->regions[i]);
      return -1;
    }
  }
  if (q->n_regions == 0)
    for (size_t j = 0; j < registry_member_count(reg) && k < REGISTRY_MAX_MEMBERS; j++) {
      const registry_member_t *m = registry_member_at(reg, j);
      if (strcmp(m->node_id, n->cfg.id) != 0) out[k++] = m;
    }
  if (k == 0) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_NOT_FOUND, "the registry has no other member to ask");
    return -1;
  }
  *nout = k;
  return 0;
}

int admin_handle_region_lookup(node_t *n, const Cb__Envelope *req, admin_reply_t *r)
{
  const Cb__RegionLookupRequest *q = req->region_lookup_request;
  registry_t *reg = node_peer_registry(n);
  peer_net_t *net = node_peer_net(n);
  if (!reg || !net) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_UNKNOWN_TYPE,
                      "this node is not in a federation (no registry_file configured)");
    return 0;
  }
  uint8_t ref[STORE_REF_LEN];
  if (learner_ref_of(n, q->id_number, ref, r) != 0) return 0;
  const registry_member_t *targets[REGISTRY_MAX_MEMBERS];
  size_t nt = 0;
  if (pick_targets(n, reg, q, targets, &nt, r) != 0) return 0;
  sigstmt_signer_t signer;
  char err[512];
  if (node_peer_signer(n, &signer, err, sizeof err) != 0) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INTERNAL, "%s", err);
    return 0;
  }
  lookup_op_t *op = calloc(1, sizeof *op);
  lookup_slot_t *slots = calloc(nt, sizeof *slots);
  admin_pending_t *p = op && slots ? admin_reply_defer(r) : NULL;
  if (!p) {
    free(op);
    free(slots);
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INTERNAL, "cannot defer the reply (out of memory)");
    return 0;
  }
  op->n = n;
  op->pending = p;
  op->slots = slots;
  op->nslots = nt;
  admin_reply_t *pr = admin_pending_reply(p);
  Cb__RegionLookupResponse *o = admin_arena_alloc(&pr->arena, sizeof *o);
  Cb__RegionLookupResult **results = admin_arena_alloc(&pr->arena, nt * sizeof *results);
  uint8_t *refcopy = admin_arena_alloc(&pr->arena, STORE_REF_LEN);
  if (o && results && refcopy) {
    cb__region_lookup_response__init(o);
    memcpy(refcopy, ref, STORE_REF_LEN);
    o->learner_ref.data = refcopy;
    o->learner_ref.len = STORE_REF_LEN;
    o->results = results;
    o->n_results = nt;
    pr->env.msg_case = CB__ENVELOPE__MSG_REGION_LOOKUP_RESPONSE;
    pr->env.region_lookup_response = o;
  } else {
    admin_reply_error(pr, CB__ERROR_CODE__ERROR_INTERNAL, "out of memory");
    op_finish(op);
    return ADMIN_PENDING;
  }
  uint64_t timeout = q->timeout_ms ? q->timeout_ms : NODE_PEER_LOOKUP_TIMEOUT_MS;
  int64_t now = node_now_ms();
  /* Every slot is filled before the first request goes out; callbacks come
   * later, never from inside peer_net_request. */
  for (size_t i = 0; i < nt; i++) {
    lookup_slot_t *s = &slots[i];
    s->op = op;
    s->started_ms = uv_now(&n->loop);
    s->res = admin_arena_alloc(&pr->arena, sizeof *s->res);
    if (s->res) {
      cb__region_lookup_result__init(s->res);
      s->res->node_id = admin_arena_strdup(&pr->arena, targets[i]->node_id);
      s->res->region = admin_arena_strdup(&pr->arena, targets[i]->region);
    }
    if (!s->res || !s->res->node_id || !s->res->region) {
      admin_reply_error(pr, CB__ERROR_CODE__ERROR_INTERNAL, "out of memory");
      op_finish(op);
      return ADMIN_PENDING;
    }
    results[i] = s->res;
  }
  for (size_t i = 0; i < nt; i++) {
    lookup_slot_t *s = &slots[i];
    uint8_t nonce[PEER_LOOKUP_NONCE_BYTES];
    int rc = RAND_bytes(nonce, sizeof nonce) == 1 ? 0 : -1;
    if (rc == 0)
      rc = peer_lookup_make_request(&signer, targets[i]->node_id, q->operator_id, q->purpose, ref, nonce,
                                    now, &s->request, err, sizeof err);
    else
      snprintf(err, sizeof err, "no randomness for the nonce");
    if (rc == 0) {
      Cb__LookupRequest lr = CB__LOOKUP_REQUEST__INIT;
      Cb__Envelope env = CB__ENVELOPE__INIT;
      lr.request = &s->request;
      env.msg_case = CB__ENVELOPE__MSG_LOOKUP_REQUEST;
      env.lookup_request = &lr;
      s->link_was_up = peer_net_link_up(net, targets[i]->node_id);
      rc = peer_net_request(net, targets[i]->node_id, &env, timeout, lookup_response_cb, s);
      if (rc == 0) {
        op->outstanding++;
        continue;
      }
      snprintf(err, sizeof err, "%s", peer_strerror(rc));
    }
    slot_error(s, "not sent: ", err);
    s->done = 1;
  }
  log_pack(LOG_INFO, "region_lookup", "{s:s, s:s, s:I, s:I}", "operator", q->operator_id, "purpose",
           q->purpose, "peers", (json_int_t)nt, "sent", (json_int_t)op->outstanding);
  if (op->outstanding == 0) op_finish(op);
  return ADMIN_PENDING;
}

/* ---- access log ------------------------------------------------------------ */

typedef struct access_ctx {
  node_t *n;
  registry_t *reg;
  admin_reply_t *r;
  Cb__AccessLogRecord **items;
  size_t n_items;
  int oom, truncated;
} access_ctx_t;

static int access_cb(int64_t answered_at_ms, const uint8_t *data, size_t len, void *arg)
{
  access_ctx_t *c = arg;
  if (c->n_items == ADMIN_ACCESS_LOG_MAX) {
    c->truncated = 1;
    return 1;
  }
  admin_arena_t *ar = &c->r->arena;
  Cb__AccessLogRecord *rec = admin_arena_alloc(ar, sizeof *rec);
  if (!rec) {
    c->oom = 1;
    return 1;
  }
  cb__access_log_record__init(rec);
  rec->answered_at_ms = answered_at_ms;
  Cb__AccessLogEntry *e = cb__access_log_entry__unpack(NULL, len, data);
  char why[512] = "";
  Cb__LookupRequestBody *b = NULL;
  if (!e || !e->request) {
    snprintf(why, sizeof why, "stored entry does not decode");
  } else {
    rec->found = e->found;
    rec->achievements = e->achievements;
    /* Re-verified now against the current registry, at the request's own
     * time (a rotated-out key still verifies what it signed then). */
    if (c->reg && sigstmt_open_lookup_request(c->reg, e->request, &b, why, sizeof why) == 0) {
      rec->signature_valid = 1;
      char keyhex[65];
      hex(e->request->public_key.data, e->request->public_key.len < 32 ? e->request->public_key.len : 32, keyhex);
      snprintf(why, sizeof why, "Ed25519 signature by %s key %.16s… verifies", b->requester, keyhex);
    } else {
      if (!c->reg) snprintf(why, sizeof why, "no registry to verify against");
      b = cb__lookup_request_body__unpack(NULL, e->request->body.len, e->request->body.data);
    }
  }
  int had_body = b != NULL;
  if (b) {
    rec->requester = admin_arena_strdup(ar, b->requester);
    rec->operator_id = admin_arena_strdup(ar, b->operator_id);
    rec->purpose = admin_arena_strdup(ar, b->purpose);
    rec->request_time_ms = b->time_ms;
    uint8_t *nonce = admin_arena_alloc(ar, b->nonce.len);
    if (nonce) {
      memcpy(nonce, b->nonce.data, b->nonce.len);
      rec->nonce.data = nonce;
      rec->nonce.len = b->nonce.len;
    }
    const registry_member_t *m = c->reg ? registry_find_member(c->reg, b->requester) : NULL;
    rec->requester_region = admin_arena_strdup(ar, m ? m->region : "");
    cb__lookup_request_body__free_unpacked(b, NULL);
  }
  rec->verification = admin_arena_strdup(ar, why);
  if (e) cb__access_log_entry__free_unpacked(e, NULL);
  if (!rec->verification || (had_body && (!rec->requester || !rec->operator_id || !rec->purpose))) {
    c->oom = 1;
    return 1;
  }
  c->items[c->n_items++] = rec;
  return 0;
}

int admin_handle_access_log(node_t *n, const Cb__Envelope *req, admin_reply_t *r)
{
  store_access *acc = node_peer_access(n);
  if (!acc) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_UNKNOWN_TYPE,
                      "this node is not in a federation (no registry_file configured)");
    return 0;
  }
  uint8_t ref[STORE_REF_LEN];
  if (learner_ref_of(n, req->access_log_request->id_number, ref, r) != 0) return 0;
  access_ctx_t c = {.n = n, .reg = node_peer_registry(n), .r = r};
  c.items = admin_arena_alloc(&r->arena, ADMIN_ACCESS_LOG_MAX * sizeof *c.items);
  Cb__AccessLogResponse *o = admin_arena_alloc(&r->arena, sizeof *o);
  uint8_t *refcopy = admin_arena_alloc(&r->arena, STORE_REF_LEN);
  if (!c.items || !o || !refcopy) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INTERNAL, "out of memory");
    return 0;
  }
  int rc = store_access_list(acc, ref, 0, access_cb, &c);
  if (c.oom) {
    admin_reply_error(r, CB__ERROR_CODE__ERROR_INTERNAL, "out of memory");
    return 0;
  }
  if (rc != 0 && rc != 1) {
    node_store_fatal(n, rc, "access log");
    admin_reply_error(r, CB__ERROR_CODE__ERROR_STORAGE, "access log: %s", store_strerror(rc));
    return 0;
  }
  cb__access_log_response__init(o);
  memcpy(refcopy, ref, STORE_REF_LEN);
  o->learner_ref.data = refcopy;
  o->learner_ref.len = STORE_REF_LEN;
  o->records = c.items;
  o->n_records = c.n_items;
  o->truncated = c.truncated;
  r->env.msg_case = CB__ENVELOPE__MSG_ACCESS_LOG_RESPONSE;
  r->env.access_log_response = o;
  return 0;
}
