/* Who may send which admin request (spec/admin.md "Operators over TLS").
 *
 * Every request carries a caller. On the Unix socket the caller is the
 * province's admin (whoever may open the 0660 socket): full rights. On the
 * operator TLS port (admin_tls.c) it is the role, institution and name of
 * the client certificate, and this module decides, in one table plus the
 * row rules below, before any handler runs:
 *
 *   admin             everything; deposits keep the depositor they name
 *   outlet            reads (not the access log); opens learners; deposits and imports only
 *                     for its own institution (depositor code = the
 *                     certificate's institution code, or empty: filled in)
 *   branch            as an outlet, under its own code (certificate's
 *                     institution code required to deposit)
 *   appraisal-centre  as a branch, and only vocational certificates
 *                     (qualification or skill level kinds)
 *   auditor           reads only (hello, transcript, stats, region
 *                     lookup, access log)
 * The access log (who looked up whose records) is for admin and auditors;
 * region lookups are open to every role.
 *
 * A request type missing from the table is refused for every role but
 * admin (fail closed): a new request type gets a row here. */
#ifndef CB_ADMIN_ROLES_H
#define CB_ADMIN_ROLES_H

#include <stddef.h>

#include "admin.h"
#include "store.h"
#include "tls.h"

/* ErrorCode sent for a refused request. */
#define ADMIN_ERROR_FORBIDDEN CB__ERROR_CODE__ERROR_FORBIDDEN

typedef struct admin_caller {
  int remote;              /* 0: Unix socket (the province's admin) */
  tls_operator_t op;       /* remote: from the verified certificate */
  char addr[64];           /* remote: "host:port" of the client, for logs */
} admin_caller_t;

/* One row of the role table. */
typedef struct admin_role_rule {
  Cb__Envelope__MsgCase msg_case;
  const char *name;        /* request type, as errors and logs name it */
  int writes;              /* changes stored state */
  unsigned roles;          /* bit (1u << tls_role_t) per role allowed */
} admin_role_rule_t;

/* The table row for a request type, or NULL (not in the table). */
const admin_role_rule_t *admin_roles_rule_for(Cb__Envelope__MsgCase c);
/* The whole table, for tests and docs. */
const admin_role_rule_t *admin_roles_table(size_t *n);

/* Whether role may send request type c at all (row rules aside). */
int admin_roles_allows(tls_role_t role, Cb__Envelope__MsgCase c);

/* The depositor role (STORE_ROLE_*) a certificate role deposits as; 0 for
 * roles that do not deposit under their own name (admin, auditor). */
int admin_roles_depositor_role(tls_role_t role);

/* Decides one request: 0 allowed; -1 refused with a reason naming the
 * role, the operator, the request and (for rows) the row. Pure. */
int admin_roles_check(const admin_caller_t *caller, const Cb__Envelope *req, char *why,
                      size_t whylen);

/* The dispatch point: admin_roles_check, and on refusal a FORBIDDEN Error
 * in reply and a warn log line "operator_refused" naming the operator.
 * Accepted writes from the TLS port are logged ("operator_write"). */
int admin_roles_authorize(const admin_caller_t *caller, const Cb__Envelope *req,
                          admin_reply_t *reply);

/* The caller of the request a reply answers (admin.c): NULL outside a
 * connection (unit tests), which counts as the Unix socket's admin. */
const admin_caller_t *admin_reply_caller(const admin_reply_t *r);

/* Deposits over TLS by outlets, branches and appraisal centres are
 * recorded under the certificate: role and code from it; name as the
 * client gave it, else the operator's name. No-op for the Unix socket and
 * for admin certificates. a is the request's achievement (for the name). */
void admin_roles_stamp_depositor(const admin_caller_t *caller, const Cb__Achievement *a,
                                 store_depositor *d);

#endif
