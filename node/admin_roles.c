/* The role table and row rules: see admin_roles.h and spec/admin.md
 * "Operators over TLS". */
#include "admin_roles.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define R(role) (1u << (role))
#define READERS                                                                              \
  (R(TLS_ROLE_ADMIN) | R(TLS_ROLE_OUTLET) | R(TLS_ROLE_BRANCH) | R(TLS_ROLE_APPRAISAL_CENTRE) | \
   R(TLS_ROLE_AUDITOR))
#define WRITERS (R(TLS_ROLE_ADMIN) | R(TLS_ROLE_OUTLET) | R(TLS_ROLE_BRANCH) | R(TLS_ROLE_APPRAISAL_CENTRE))

static const admin_role_rule_t role_table[] = {
  {CB__ENVELOPE__MSG_HELLO_REQUEST, "HelloRequest", 0, READERS},
  {CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST, "LearnerOpenRequest", 1, WRITERS},
  {CB__ENVELOPE__MSG_DEPOSIT_REQUEST, "DepositRequest", 1, WRITERS},
  {CB__ENVELOPE__MSG_IMPORT_BATCH_REQUEST, "ImportBatchRequest", 1, WRITERS},
  {CB__ENVELOPE__MSG_TRANSCRIPT_REQUEST, "TranscriptRequest", 0, READERS},
  {CB__ENVELOPE__MSG_STATS_REQUEST, "StatsRequest", 0, READERS},
  /* Asks a peer; the answer is read-only here (the peer logs the access). */
  {CB__ENVELOPE__MSG_REGION_LOOKUP_REQUEST, "RegionLookupRequest", 0, READERS},
  /* Who looked up whose records: for the province's admin and auditors. */
  {CB__ENVELOPE__MSG_ACCESS_LOG_REQUEST, "AccessLogRequest", 0, R(TLS_ROLE_ADMIN) | R(TLS_ROLE_AUDITOR)},
};

const admin_role_rule_t *admin_roles_table(size_t *n)
{
  *n = sizeof role_table / sizeof role_table[0];
  return role_table;
}

const admin_role_rule_t *admin_roles_rule_for(Cb__Envelope__MsgCase c)
{
  for (size_t i = 0; i < sizeof role_table / sizeof role_table[0]; i++)
    if (role_table[i].msg_case == c) return &role_table[i];
  return NULL;
}

int admin_roles_allows(tls_role_t role, Cb__Envelope__MsgCase c)
{
  if (role == TLS_ROLE_ADMIN) return 1;
  if (role <= TLS_ROLE_NONE || role > TLS_ROLE_AUDITOR) return 0;
  const admin_role_rule_t *r = admin_roles_rule_for(c);
  return r && (r->roles & R(role)) != 0;
}

int admin_roles_depositor_role(tls_role_t role)
{
  switch (role) {
  case TLS_ROLE_OUTLET: return STORE_ROLE_OUTLET;
  case TLS_ROLE_BRANCH: return STORE_ROLE_BRANCH;
  case TLS_ROLE_APPRAISAL_CENTRE: return STORE_ROLE_APPRAISAL_CENTRE;
  default: return 0;
  }
}

static int refuse(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *depositor_role_name(int r)
{
  static const char *const names[] = {"unspecified", "outlet", "branch", "appraisal_centre",
                                      "management_centre"};
  return r >= 0 && r <= STORE_ROLE_MAX ? names[r] : "unknown";
}

/* One achievement of a deposit or import by an outlet, branch or
 * appraisal centre. where names the row ("achievement", "rows[3] (line 5)"). */
static int check_achievement(const tls_operator_t *op, const Cb__Achievement *a, const char *where,
                             char *why, size_t whylen)
{
  const char *role = tls_role_name(op->role);
  int drole = admin_roles_depositor_role(op->role);
  if (!a) return refuse(why, whylen, "%s: no achievement", where);
  if (op->role == TLS_ROLE_APPRAISAL_CENTRE && a->kind != CB__ACHIEVEMENT_KIND__VOCATIONAL_QUALIFICATION &&
      a->kind != CB__ACHIEVEMENT_KIND__VOCATIONAL_SKILL_LEVEL)
    return refuse(why, whylen,
                  "%s '%s' deposits vocational certificates only (qualification or skill level): "
                  "%s has kind %d",
                  role, op->name, where, (int)a->kind);
  const Cb__Depositor *d = a->depositor;
  if (d && d->role != 0 && (int)d->role != drole)
    return refuse(why, whylen, "%s '%s' deposits as %s only: %s names depositor role %s", role,
                  op->name, depositor_role_name(drole), where, depositor_role_name((int)d->role));
  if (d && d->code && d->code[0] && strcmp(d->code, op->institution) != 0)
    return refuse(why, whylen, "%s '%s' deposits only for its own institution '%s': %s names depositor code '%s'",
                  role, op->name, op->institution, where, d->code);
  return 0;
}

static int check_rows(const tls_operator_t *op, const Cb__Envelope *req, char *why, size_t whylen)
{
  if (!op->institution[0])
    return refuse(why, whylen,
                  "%s '%s': the certificate carries no institution code, so it cannot deposit",
                  tls_role_name(op->role), op->name);
  if (req->msg_case == CB__ENVELOPE__MSG_DEPOSIT_REQUEST)
    return check_achievement(op, req->deposit_request ? req->deposit_request->achievement : NULL,
                             "achievement", why, whylen);
  const Cb__ImportBatchRequest *q = req->import_batch_request;
  for (size_t i = 0; q && i < q->n_rows; i++) {
    char where[64];
    snprintf(where, sizeof where, "rows[%zu] (line %u)", i, q->rows[i]->line);
    if (check_achievement(op, q->rows[i]->achievement, where, why, whylen) != 0) return -1;
  }
  return 0;
}

static int check_role(const tls_operator_t *op, const Cb__Envelope *req, char *why, size_t whylen);

int admin_roles_check(const admin_caller_t *caller, const Cb__Envelope *req, char *why, size_t whylen)
{
  if (!caller || !caller->remote) return 0; /* the Unix socket: the province's admin */
  const tls_operator_t *op = &caller->op;
  if (op->role != TLS_ROLE_ADMIN && check_role(op, req, why, whylen) != 0) return -1;
  /* The peer's access log names who asked: over TLS that is the
   * certificate's operator, not whatever name the client typed. */
  if (req->msg_case == CB__ENVELOPE__MSG_REGION_LOOKUP_REQUEST) {
    const char *claimed = req->region_lookup_request ? req->region_lookup_request->operator_id : NULL;
    if (!claimed || strcmp(claimed, op->name) != 0)
      return refuse(why, whylen,
                    "%s '%s': operator_id '%s' is not this certificate's operator; over TLS a lookup "
                    "is logged under the certificate's name (cbctl lookup --operator %s)",
                    tls_role_name(op->role), op->name, claimed ? claimed : "", op->name);
  }
  return 0;
}

/* The role table and, for deposits and imports, the row rules. */
static int check_role(const tls_operator_t *op, const Cb__Envelope *req, char *why, size_t whylen)
{
  const admin_role_rule_t *rule = admin_roles_rule_for(req->msg_case);
  if (!rule)
    return refuse(why, whylen, "%s '%s' may not send message type %d: it is not in the role table "
                  "(admin only)", tls_role_name(op->role), op->name, (int)req->msg_case);
  if (!admin_roles_allows(op->role, req->msg_case)) {
    if (op->role == TLS_ROLE_AUDITOR)
      return refuse(why, whylen, "auditor '%s' may not send %s: an auditor only reads", op->name,
                    rule->name);
    return refuse(why, whylen, "%s '%s' may not send %s", tls_role_name(op->role), op->name,
                  rule->name);
  }
  if (req->msg_case == CB__ENVELOPE__MSG_DEPOSIT_REQUEST ||
      req->msg_case == CB__ENVELOPE__MSG_IMPORT_BATCH_REQUEST)
    return check_rows(op, req, why, whylen);
  return 0;
}

int admin_roles_authorize(const admin_caller_t *caller, const Cb__Envelope *req, admin_reply_t *reply)
{
  char why[512];
  const admin_role_rule_t *rule = admin_roles_rule_for(req->msg_case);
  if (admin_roles_check(caller, req, why, sizeof why) == 0) {
    if (caller && caller->remote && (!rule || rule->writes))
      log_pack(LOG_INFO, "operator_write", "{s:s, s:s, s:s, s:s, s:s}", "operator", caller->op.name,
               "role", tls_role_name(caller->op.role), "institution", caller->op.institution,
               "request", rule ? rule->name : "unlisted", "addr", caller->addr);
    return 0;
  }
  /* Authenticated operators: every refusal is logged, not rate-limited. */
  log_pack(LOG_WARN, "operator_refused", "{s:s, s:s, s:s, s:s, s:s, s:s}", "operator", caller->op.name,
           "role", tls_role_name(caller->op.role), "institution", caller->op.institution, "request",
           rule ? rule->name : "unlisted", "addr", caller->addr, "reason", why);
  admin_reply_error(reply, ADMIN_ERROR_FORBIDDEN, "%s; nothing was changed", why);
  return -1;
}

void admin_roles_stamp_depositor(const admin_caller_t *caller, const Cb__Achievement *a, store_depositor *d)
{
  if (!caller || !caller->remote) return;
  int drole = admin_roles_depositor_role(caller->op.role);
  if (!drole) return;
  d->role = drole;
  snprintf(d->code, sizeof d->code, "%s", caller->op.institution);
  const char *claimed = a && a->depositor && a->depositor->name ? a->depositor->name : "";
  snprintf(d->name, sizeof d->name, "%s", claimed[0] ? claimed : caller->op.name);
}
