/* Admin request validators and the dispatch table: each refusal names the
 * field; every served type has a handler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admin.h"

static Cb__Achievement good_achievement(void)
{
  Cb__Achievement a = CB__ACHIEVEMENT__INIT;
  a.kind = CB__ACHIEVEMENT_KIND__ACADEMIC_COURSE;
  a.issuer = (char *)"10272";
  a.code = (char *)"0709";
  a.title = (char *)"电子技术";
  a.credits_milli = 4000;
  a.awarded_on = 20240115;
  return a;
}

static int check_deposit(Cb__Achievement *a, char *err, size_t errlen)
{
  Cb__Envelope env = CB__ENVELOPE__INIT;
  Cb__DepositRequest d = CB__DEPOSIT_REQUEST__INIT;
  d.id_number = (char *)"310101199003071230";
  d.achievement = a;
  env.msg_case = CB__ENVELOPE__MSG_DEPOSIT_REQUEST;
  env.deposit_request = &d;
  return admin_validate_deposit(&env, err, errlen);
}

static void expect_refused(Cb__Achievement *a, const char *fragment)
{
  char err[256] = "";
  assert_int_equal(check_deposit(a, err, sizeof err), -FRAME_E_INVALID);
  if (!strstr(err, fragment)) fail_msg("reason '%s' lacks '%s'", err, fragment);
}

static void test_deposit_fields(void **state)
{
  (void)state;
  char err[256];
  Cb__Achievement a = good_achievement();
  assert_int_equal(check_deposit(&a, err, sizeof err), 0);
  a.id = 5;
  expect_refused(&a, "achievement.id is assigned by the node");
  a = good_achievement();
  a.kind = 6;
  expect_refused(&a, "achievement.kind 6");
  a = good_achievement();
  a.credits_milli = -1;
  expect_refused(&a, "credits_milli -1");
  a = good_achievement();
  a.awarded_on = 18991231;
  expect_refused(&a, "awarded_on 18991231");
  a = good_achievement();
  a.title = (char *)"";
  expect_refused(&a, "achievement.title is required");
  a = good_achievement();
  a.title = (char *)"bad \xc0\xaf utf8";
  expect_refused(&a, "not valid UTF-8 at byte 4");
  a = good_achievement();
  a.code = (char *)"tab\there";
  expect_refused(&a, "control character at byte 3");
  a = good_achievement();
  Cb__Depositor d = CB__DEPOSITOR__INIT;
  d.role = CB__DEPOSITOR_ROLE__OUTLET;
  a.depositor = &d;
  d.code = (char *)"";
  expect_refused(&a, "depositor.code is required");
  d.role = (Cb__DepositorRole)7;
  expect_refused(&a, "depositor.role 7");
  assert_int_equal(check_deposit(NULL, err, sizeof err), -FRAME_E_INVALID);
  assert_string_equal(err, "achievement is required");
}

static void test_text_bounds(void **state)
{
  (void)state;
  char err[128];
  assert_int_equal(admin_check_text("name", "王小明", 9, 1, err, sizeof err), 0);
  assert_int_equal(admin_check_text("name", "王小明", 8, 1, err, sizeof err), -1);
  assert_string_equal(err, "name is 9 bytes, at most 8 allowed");
  assert_int_equal(admin_check_text("name", "", 8, 0, err, sizeof err), 0);
  assert_int_equal(admin_check_text("name", "\xed\xa0\x80", 8, 0, err, sizeof err), -1); /* surrogate */
  assert_int_equal(admin_check_text("name", "\xf4\x90\x80\x80", 8, 0, err, sizeof err), -1); /* > U+10FFFF */
  assert_int_equal(admin_check_text("name", "\xe4\xb8", 8, 0, err, sizeof err), -1); /* truncated */
}

static void test_import_and_transcript(void **state)
{
  (void)state;
  char err[256];
  Cb__Envelope env = CB__ENVELOPE__INIT;
  Cb__ImportBatchRequest b = CB__IMPORT_BATCH_REQUEST__INIT;
  env.msg_case = CB__ENVELOPE__MSG_IMPORT_BATCH_REQUEST;
  env.import_batch_request = &b;
  assert_int_equal(admin_validate_import_batch(&env, err, sizeof err), -FRAME_E_INVALID);
  assert_string_equal(err, "rows: empty batch");
  Cb__ImportRow r0 = CB__IMPORT_ROW__INIT, r1 = CB__IMPORT_ROW__INIT;
  Cb__Achievement a = good_achievement(), bad = good_achievement();
  bad.kind = 0;
  r0.line = 2;
  r0.id_number = (char *)"310101199003071230";
  r0.name = (char *)"王小明";
  r0.achievement = &a;
  r1 = r0;
  r1.line = 9;
  r1.achievement = &bad;
  Cb__ImportRow *rows[2] = {&r0, &r1};
  b.rows = rows;
  b.n_rows = 1;
  assert_int_equal(admin_validate_import_batch(&env, err, sizeof err), 0);
  b.n_rows = 2;
  assert_int_equal(admin_validate_import_batch(&env, err, sizeof err), -FRAME_E_INVALID);
  assert_non_null(strstr(err, "rows[1] (line 9): achievement.kind 0"));
  b.n_rows = ADMIN_IMPORT_ROWS_MAX + 1;
  assert_int_equal(admin_validate_import_batch(&env, err, sizeof err), -FRAME_E_INVALID);
  assert_non_null(strstr(err, "at most"));

  Cb__Envelope t = CB__ENVELOPE__INIT;
  Cb__TranscriptRequest tr = CB__TRANSCRIPT_REQUEST__INIT;
  t.msg_case = CB__ENVELOPE__MSG_TRANSCRIPT_REQUEST;
  t.transcript_request = &tr;
  assert_int_equal(admin_validate_transcript(&t, err, sizeof err), -FRAME_E_INVALID);
  uint8_t ref[31] = {0};
  tr.who_case = CB__TRANSCRIPT_REQUEST__WHO_LEARNER_REF;
  tr.learner_ref.data = ref;
  tr.learner_ref.len = sizeof ref;
  assert_int_equal(admin_validate_transcript(&t, err, sizeof err), -FRAME_E_INVALID);
  assert_string_equal(err, "learner_ref is 31 bytes, expected 32");
}

static void test_dispatch_table(void **state)
{
  (void)state;
  for (size_t i = 0; i < admin_ntypes; i++) {
    assert_non_null(admin_handler_for(admin_types[i].msg_case));
    assert_non_null(admin_types[i].validate);
  }
  assert_null(admin_handler_for(CB__ENVELOPE__MSG_ERROR));
  assert_null(admin_handler_for(CB__ENVELOPE__MSG_STATS_RESPONSE));
  assert_int_equal(admin_error_code_for_frame(-FRAME_E_TOO_LARGE), CB__ERROR_CODE__ERROR_FRAME_TOO_LARGE);
  assert_int_equal(admin_error_code_for_frame(-FRAME_E_ALLOC_CAP), CB__ERROR_CODE__ERROR_MALFORMED);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_deposit_fields),
    cmocka_unit_test(test_text_bounds),
    cmocka_unit_test(test_import_and_transcript),
    cmocka_unit_test(test_dispatch_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
