/* The role table and row rules of the operator port (node/admin_roles.h,
 * spec/admin.md "Operators over TLS"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admin.h"
#include "admin_roles.h"

/* ---- fixtures ----------------------------------------------------------- */

static admin_caller_t remote(tls_role_t role, const char *inst, const char *name)
{
  admin_caller_t c;
  memset(&c, 0, sizeof c);
  c.remote = 1;
  c.op.role = role;
  snprintf(c.op.institution, sizeof c.op.institution, "%s", inst ? inst : "");
  snprintf(c.op.name, sizeof c.op.name, "%s", name);
  snprintf(c.addr, sizeof c.addr, "127.0.0.1:5555");
  return c;
}

/* One achievement with an optional depositor claim. */
typedef struct row {
  Cb__Achievement a;
  Cb__Depositor d;
} row_t;

static void row_init(row_t *r, int kind, int drole, const char *dcode, const char *dname)
{
  cb__achievement__init(&r->a);
  cb__depositor__init(&r->d);
  r->a.kind = (Cb__AchievementKind)kind;
  r->a.issuer = (char *)"10272";
  r->a.code = (char *)"0709";
  r->a.title = (char *)"电子技术";
  r->a.awarded_on = 20240115;
  if (drole >= 0) {
    r->d.role = (Cb__DepositorRole)drole;
    r->d.code = (char *)(dcode ? dcode : "");
    r->d.name = (char *)(dname ? dname : "");
    r->a.depositor = &r->d;
  }
}

typedef struct deposit_env {
  Cb__Envelope env;
  Cb__DepositRequest q;
  row_t row;
} deposit_env_t;

static const Cb__Envelope *deposit(deposit_env_t *e, int kind, int drole, const char *dcode)
{
  cb__envelope__init(&e->env);
  cb__deposit_request__init(&e->q);
  row_init(&e->row, kind, drole, dcode, NULL);
  e->q.id_number = (char *)"310101199003071230";
  e->q.achievement = &e->row.a;
  e->env.version = 1;
  e->env.msg_case = CB__ENVELOPE__MSG_DEPOSIT_REQUEST;
  e->env.deposit_request = &e->q;
  return &e->env;
}

#define IMPORT_ROWS 3
typedef struct import_env {
  Cb__Envelope env;
  Cb__ImportBatchRequest q;
  Cb__ImportRow r[IMPORT_ROWS];
  Cb__ImportRow *rp[IMPORT_ROWS];
  row_t rows[IMPORT_ROWS];
} import_env_t;

/* Three rows deposited by codes[i] ("" = no depositor named). */
static const Cb__Envelope *import3(import_env_t *e, const char *codes[IMPORT_ROWS])
{
  cb__envelope__init(&e->env);
  cb__import_batch_request__init(&e->q);
  for (int i = 0; i < IMPORT_ROWS; i++) {
    cb__import_row__init(&e->r[i]);
    row_init(&e->rows[i], CB__ACHIEVEMENT_KIND__ACADEMIC_COURSE, codes[i][0] ? 1 : -1, codes[i], NULL);
    e->r[i].id_number = (char *)"310101199003071230";
    e->r[i].name = (char *)"王小明";
    e->r[i].line = (uint32_t)(i + 2);
    e->r[i].achievement = &e->rows[i].a;
    e->rp[i] = &e->r[i];
  }
  e->q.n_rows = IMPORT_ROWS;
  e->q.rows = e->rp;
  e->env.version = 1;
  e->env.msg_case = CB__ENVELOPE__MSG_IMPORT_BATCH_REQUEST;
  e->env.import_batch_request = &e->q;
  return &e->env;
}

static const Cb__Envelope *bare(Cb__Envelope *env, Cb__Envelope__MsgCase c)
{
  cb__envelope__init(env);
  env->version = 1;
  env->msg_case = c;
  return env;
}

static int check(const admin_caller_t *c, const Cb__Envelope *req, char *why, size_t whylen)
{
  why[0] = '\0';
  return admin_roles_check(c, req, why, whylen);
}

/* ---- the table ---------------------------------------------------------- */

/* Every request type the admin socket serves has a row: a type added
 * without one would be admin-only by accident. */
static void test_table_covers_every_served_type(void **state)
{
  (void)state;
  for (size_t i = 0; i < admin_ntypes; i++) {
    const admin_role_rule_t *r = admin_roles_rule_for(admin_types[i].msg_case);
    if (!r) fail_msg("%s has no row in the role table (node/admin_roles.c)", admin_types[i].name);
    assert_string_equal(r->name, admin_types[i].name);
  }
  size_t n;
  const admin_role_rule_t *t = admin_roles_table(&n);
  assert_int_equal(n, admin_ntypes);
  for (size_t i = 0; i < n; i++) {
    assert_true(t[i].roles & (1u << TLS_ROLE_ADMIN));
    /* Auditors read everything and write nothing. */
    assert_int_equal(!!(t[i].roles & (1u << TLS_ROLE_AUDITOR)), !t[i].writes);
  }
}

static void test_forbidden_code_is_free(void **state)
{
  (void)state;
  const ProtobufCEnumValue *v =
    protobuf_c_enum_descriptor_get_value(&cb__error_code__descriptor, (int)ADMIN_ERROR_FORBIDDEN);
  assert_non_null(v);
  assert_string_equal(v->name, "ERROR_FORBIDDEN");
}

static void test_allows_matrix(void **state)
{
  (void)state;
  static const struct {
    Cb__Envelope__MsgCase c;
    int admin, outlet, branch, appraisal, auditor;
  } m[] = {
    {CB__ENVELOPE__MSG_HELLO_REQUEST, 1, 1, 1, 1, 1},
    {CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST, 1, 1, 1, 1, 0},
    {CB__ENVELOPE__MSG_DEPOSIT_REQUEST, 1, 1, 1, 1, 0},
    {CB__ENVELOPE__MSG_IMPORT_BATCH_REQUEST, 1, 1, 1, 1, 0},
    {CB__ENVELOPE__MSG_TRANSCRIPT_REQUEST, 1, 1, 1, 1, 1},
    {CB__ENVELOPE__MSG_STATS_REQUEST, 1, 1, 1, 1, 1},
    {CB__ENVELOPE__MSG_REGION_LOOKUP_REQUEST, 1, 1, 1, 1, 1},
    {CB__ENVELOPE__MSG_ACCESS_LOG_REQUEST, 1, 0, 0, 0, 1},
  };
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    assert_int_equal(admin_roles_allows(TLS_ROLE_ADMIN, m[i].c), m[i].admin);
    assert_int_equal(admin_roles_allows(TLS_ROLE_OUTLET, m[i].c), m[i].outlet);
    assert_int_equal(admin_roles_allows(TLS_ROLE_BRANCH, m[i].c), m[i].branch);
    assert_int_equal(admin_roles_allows(TLS_ROLE_APPRAISAL_CENTRE, m[i].c), m[i].appraisal);
    assert_int_equal(admin_roles_allows(TLS_ROLE_AUDITOR, m[i].c), m[i].auditor);
    assert_int_equal(admin_roles_allows(TLS_ROLE_NONE, m[i].c), 0);
  }
  /* Not in the table: admin only. */
  assert_int_equal(admin_roles_allows(TLS_ROLE_ADMIN, CB__ENVELOPE__MSG_PEER_PING), 1);
  assert_int_equal(admin_roles_allows(TLS_ROLE_AUDITOR, CB__ENVELOPE__MSG_PEER_PING), 0);
  assert_int_equal(admin_roles_allows(TLS_ROLE_OUTLET, CB__ENVELOPE__MSG_PEER_PING), 0);
}

/* ---- callers ------------------------------------------------------------ */

static void test_unix_socket_caller_may_do_anything(void **state)
{
  (void)state;
  char why[512];
  deposit_env_t d;
  admin_caller_t local;
  memset(&local, 0, sizeof local);
  assert_int_equal(check(NULL, deposit(&d, 1, 1, "ANY"), why, sizeof why), 0);
  assert_int_equal(check(&local, deposit(&d, 1, 2, "OTHER"), why, sizeof why), 0);
  Cb__Envelope e;
  assert_int_equal(check(&local, bare(&e, CB__ENVELOPE__MSG_PEER_PING), why, sizeof why), 0);
}

static void test_auditor_reads_never_writes(void **state)
{
  (void)state;
  char why[512];
  admin_caller_t a = remote(TLS_ROLE_AUDITOR, NULL, "aud-1");
  Cb__Envelope e;
  assert_int_equal(check(&a, bare(&e, CB__ENVELOPE__MSG_HELLO_REQUEST), why, sizeof why), 0);
  assert_int_equal(check(&a, bare(&e, CB__ENVELOPE__MSG_TRANSCRIPT_REQUEST), why, sizeof why), 0);
  assert_int_equal(check(&a, bare(&e, CB__ENVELOPE__MSG_STATS_REQUEST), why, sizeof why), 0);
  assert_int_equal(check(&a, bare(&e, CB__ENVELOPE__MSG_ACCESS_LOG_REQUEST), why, sizeof why), 0);
  assert_int_equal(check(&a, bare(&e, CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST), why, sizeof why), -1);
  assert_non_null(strstr(why, "auditor 'aud-1' may not send LearnerOpenRequest"));
  deposit_env_t d;
  assert_int_equal(check(&a, deposit(&d, 1, -1, NULL), why, sizeof why), -1);
  assert_non_null(strstr(why, "DepositRequest"));
  assert_non_null(strstr(why, "only reads"));
  import_env_t im;
  const char *codes[IMPORT_ROWS] = {"", "", ""};
  assert_int_equal(check(&a, import3(&im, codes), why, sizeof why), -1);
  assert_non_null(strstr(why, "ImportBatchRequest"));
}

static void test_no_role_is_refused_everything(void **state)
{
  (void)state;
  char why[512];
  admin_caller_t a = remote(TLS_ROLE_NONE, NULL, "x");
  Cb__Envelope e;
  assert_int_equal(check(&a, bare(&e, CB__ENVELOPE__MSG_HELLO_REQUEST), why, sizeof why), -1);
  assert_int_equal(check(&a, bare(&e, CB__ENVELOPE__MSG_STATS_REQUEST), why, sizeof why), -1);
}

static void test_outlet_deposits_for_its_institution_only(void **state)
{
  (void)state;
  char why[512];
  admin_caller_t o = remote(TLS_ROLE_OUTLET, "INST-A", "outlet-a");
  deposit_env_t d;
  assert_int_equal(check(&o, deposit(&d, 1, STORE_ROLE_OUTLET, "INST-A"), why, sizeof why), 0);
  assert_int_equal(check(&o, deposit(&d, 1, -1, NULL), why, sizeof why), 0);      /* filled in */
  assert_int_equal(check(&o, deposit(&d, 1, 0, ""), why, sizeof why), 0);         /* empty claim */
  assert_int_equal(check(&o, deposit(&d, 1, STORE_ROLE_OUTLET, "INST-B"), why, sizeof why), -1);
  assert_non_null(strstr(why, "outlet 'outlet-a' deposits only for its own institution 'INST-A'"));
  assert_non_null(strstr(why, "'INST-B'"));
  /* A code without a role still names another institution. */
  assert_int_equal(check(&o, deposit(&d, 1, 0, "INST-B"), why, sizeof why), -1);
  /* Its own code under another role is not its to claim either. */
  assert_int_equal(check(&o, deposit(&d, 1, STORE_ROLE_BRANCH, "INST-A"), why, sizeof why), -1);
  assert_non_null(strstr(why, "depositor role branch"));
  Cb__Envelope e;
  assert_int_equal(check(&o, bare(&e, CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST), why, sizeof why), 0);
  assert_int_equal(check(&o, bare(&e, CB__ENVELOPE__MSG_ACCESS_LOG_REQUEST), why, sizeof why), -1);
}

static void test_outlet_import_refused_whole_for_one_foreign_row(void **state)
{
  (void)state;
  char why[512];
  admin_caller_t o = remote(TLS_ROLE_OUTLET, "INST-A", "outlet-a");
  import_env_t im;
  const char *ok[IMPORT_ROWS] = {"INST-A", "", "INST-A"};
  assert_int_equal(check(&o, import3(&im, ok), why, sizeof why), 0);
  const char *bad[IMPORT_ROWS] = {"INST-A", "INST-B", "INST-A"};
  assert_int_equal(check(&o, import3(&im, bad), why, sizeof why), -1);
  assert_non_null(strstr(why, "rows[1] (line 3)"));
  assert_non_null(strstr(why, "'INST-B'"));
}

static void test_branch_and_appraisal_centre(void **state)
{
  (void)state;
  char why[512];
  deposit_env_t d;
  admin_caller_t b = remote(TLS_ROLE_BRANCH, "BR-1", "branch-1");
  assert_int_equal(check(&b, deposit(&d, 1, -1, NULL), why, sizeof why), 0);
  assert_int_equal(check(&b, deposit(&d, 1, STORE_ROLE_BRANCH, "BR-1"), why, sizeof why), 0);
  assert_int_equal(check(&b, deposit(&d, 1, STORE_ROLE_OUTLET, "BR-1"), why, sizeof why), -1);
  assert_int_equal(check(&b, deposit(&d, 1, STORE_ROLE_BRANCH, "BR-2"), why, sizeof why), -1);
  /* No institution code in the certificate: may open learners, not deposit. */
  admin_caller_t nb = remote(TLS_ROLE_BRANCH, NULL, "branch-x");
  assert_int_equal(check(&nb, deposit(&d, 1, -1, NULL), why, sizeof why), -1);
  assert_non_null(strstr(why, "no institution code"));
  Cb__Envelope e;
  assert_int_equal(check(&nb, bare(&e, CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST), why, sizeof why), 0);

  admin_caller_t ac = remote(TLS_ROLE_APPRAISAL_CENTRE, "AC-9", "ac-9");
  assert_int_equal(check(&ac, deposit(&d, CB__ACHIEVEMENT_KIND__VOCATIONAL_QUALIFICATION, -1, NULL), why,
                         sizeof why), 0);
  assert_int_equal(check(&ac, deposit(&d, CB__ACHIEVEMENT_KIND__VOCATIONAL_SKILL_LEVEL,
                                      STORE_ROLE_APPRAISAL_CENTRE, "AC-9"), why, sizeof why), 0);
  assert_int_equal(check(&ac, deposit(&d, CB__ACHIEVEMENT_KIND__ACADEMIC_COURSE, -1, NULL), why, sizeof why), -1);
  assert_non_null(strstr(why, "vocational certificates only"));
  assert_int_equal(check(&ac, deposit(&d, CB__ACHIEVEMENT_KIND__NON_FORMAL, -1, NULL), why, sizeof why), -1);
}

static void test_remote_admin_deposits_for_anyone(void **state)
{
  (void)state;
  char why[512];
  deposit_env_t d;
  admin_caller_t a = remote(TLS_ROLE_ADMIN, NULL, "admin");
  assert_int_equal(check(&a, deposit(&d, 1, STORE_ROLE_OUTLET, "ANY"), why, sizeof why), 0);
  assert_int_equal(check(&a, deposit(&d, 4, STORE_ROLE_BRANCH, "OTHER"), why, sizeof why), 0);
}

/* The peer's access log names the asking operator: over TLS, the certificate's. */
static void test_lookup_names_the_certificate_operator(void **state)
{
  (void)state;
  char why[512];
  Cb__Envelope e;
  Cb__RegionLookupRequest q;
  cb__region_lookup_request__init(&q);
  bare(&e, CB__ENVELOPE__MSG_REGION_LOOKUP_REQUEST);
  e.region_lookup_request = &q;
  q.operator_id = (char *)"aud-1";
  admin_caller_t a = remote(TLS_ROLE_AUDITOR, NULL, "aud-1");
  assert_int_equal(check(&a, &e, why, sizeof why), 0);
  q.operator_id = (char *)"someone-else";
  assert_int_equal(check(&a, &e, why, sizeof why), -1);
  assert_non_null(strstr(why, "operator_id 'someone-else' is not this certificate's operator"));
  admin_caller_t adm = remote(TLS_ROLE_ADMIN, NULL, "admin");
  assert_int_equal(check(&adm, &e, why, sizeof why), -1);
  q.operator_id = (char *)"admin";
  assert_int_equal(check(&adm, &e, why, sizeof why), 0);
  /* The Unix socket's operator names itself. */
  q.operator_id = (char *)"root";
  assert_int_equal(check(NULL, &e, why, sizeof why), 0);
}

/* ---- the depositor recorded -------------------------------------------- */

static void test_stamp_depositor_from_certificate(void **state)
{
  (void)state;
  store_depositor sd;
  row_t r;
  admin_caller_t o = remote(TLS_ROLE_OUTLET, "INST-A", "outlet-a");

  /* No claim: role and code from the certificate, name = operator. */
  memset(&sd, 0, sizeof sd);
  sd.role = STORE_ROLE_MANAGEMENT_CENTRE;
  snprintf(sd.code, sizeof sd.code, "sh");
  row_init(&r, 1, -1, NULL, NULL);
  admin_roles_stamp_depositor(&o, &r.a, &sd);
  assert_int_equal(sd.role, STORE_ROLE_OUTLET);
  assert_string_equal(sd.code, "INST-A");
  assert_string_equal(sd.name, "outlet-a");

  /* A display name given by the client is kept; role and code are not its. */
  row_init(&r, 1, STORE_ROLE_OUTLET, "INST-A", "浦东社区学院");
  admin_roles_stamp_depositor(&o, &r.a, &sd);
  assert_int_equal(sd.role, STORE_ROLE_OUTLET);
  assert_string_equal(sd.code, "INST-A");
  assert_string_equal(sd.name, "浦东社区学院");

  admin_caller_t ac = remote(TLS_ROLE_APPRAISAL_CENTRE, "AC-9", "ac-9");
  admin_roles_stamp_depositor(&ac, &r.a, &sd);
  assert_int_equal(sd.role, STORE_ROLE_APPRAISAL_CENTRE);
  assert_string_equal(sd.code, "AC-9");

  /* The Unix socket and admin certificates: left as the handler made it. */
  store_depositor before = sd;
  admin_caller_t local;
  memset(&local, 0, sizeof local);
  admin_roles_stamp_depositor(&local, &r.a, &sd);
  admin_roles_stamp_depositor(NULL, &r.a, &sd);
  admin_caller_t adm = remote(TLS_ROLE_ADMIN, NULL, "admin");
  admin_roles_stamp_depositor(&adm, &r.a, &sd);
  assert_memory_equal(&before, &sd, sizeof sd);
}

static void test_authorize_replies_forbidden(void **state)
{
  (void)state;
  admin_caller_t o = remote(TLS_ROLE_OUTLET, "INST-A", "outlet-a");
  deposit_env_t d;
  admin_reply_t r;
  memset(&r, 0, sizeof r);
  cb__envelope__init(&r.env);
  assert_int_equal(admin_roles_authorize(&o, deposit(&d, 1, STORE_ROLE_OUTLET, "INST-B"), &r), -1);
  assert_int_equal(r.env.msg_case, CB__ENVELOPE__MSG_ERROR);
  assert_int_equal(r.env.error->code, ADMIN_ERROR_FORBIDDEN);
  assert_non_null(strstr(r.env.error->reason, "nothing was changed"));
  admin_arena_free(&r.arena);

  memset(&r, 0, sizeof r);
  cb__envelope__init(&r.env);
  assert_int_equal(admin_roles_authorize(&o, deposit(&d, 1, STORE_ROLE_OUTLET, "INST-A"), &r), 0);
  assert_int_equal(r.env.msg_case, CB__ENVELOPE__MSG__NOT_SET);
  admin_arena_free(&r.arena);
  assert_null(admin_reply_caller(&r)); /* no connection: the Unix socket's admin */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table_covers_every_served_type),
    cmocka_unit_test(test_forbidden_code_is_free),
    cmocka_unit_test(test_allows_matrix),
    cmocka_unit_test(test_unix_socket_caller_may_do_anything),
    cmocka_unit_test(test_auditor_reads_never_writes),
    cmocka_unit_test(test_no_role_is_refused_everything),
    cmocka_unit_test(test_outlet_deposits_for_its_institution_only),
    cmocka_unit_test(test_outlet_import_refused_whole_for_one_foreign_row),
    cmocka_unit_test(test_branch_and_appraisal_centre),
    cmocka_unit_test(test_remote_admin_deposits_for_anyone),
    cmocka_unit_test(test_lookup_names_the_certificate_operator),
    cmocka_unit_test(test_stamp_depositor_from_certificate),
    cmocka_unit_test(test_authorize_replies_forbidden),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
