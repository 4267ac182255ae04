/* cbctl commands. Each takes the arguments after its name (argv[0] is the
 * command name) and returns the process exit code: 0 success, 1 failure
 * (message on stderr; with --json also {"ok":false,"error":...} on
 * stdout), 2 usage error. */
#ifndef CB_CBCTL_CMDS_H
#define CB_CBCTL_CMDS_H

#include <stdarg.h>

#include <jansson.h>

#include "cbctl_client.h"

typedef struct cbctl_ctx {
  const char *socket_path;
  int json;
  int quiet;               /* no progress bar */
  cbctl_conn_t conn;
  int connected;
} cbctl_ctx_t;

int cbctl_cmd_hello(cbctl_ctx_t *ctx, int argc, char **argv);
int cbctl_cmd_learner(cbctl_ctx_t *ctx, int argc, char **argv);
int cbctl_cmd_deposit(cbctl_ctx_t *ctx, int argc, char **argv);
int cbctl_cmd_transcript(cbctl_ctx_t *ctx, int argc, char **argv);
int cbctl_cmd_stats(cbctl_ctx_t *ctx, int argc, char **argv);
int cbctl_cmd_generate(cbctl_ctx_t *ctx, int argc, char **argv);
int cbctl_cmd_import(cbctl_ctx_t *ctx, int argc, char **argv);   /* cbctl_import.c */

/* Shared helpers. */
int cbctl_ensure_connected(cbctl_ctx_t *ctx);
/* Reports a failure (stderr; JSON error document on stdout with --json)
 * and returns 1. code may be NULL. */
int cbctl_fail(cbctl_ctx_t *ctx, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same, with extra members merged into the JSON error document (stolen). */
int cbctl_fail_json(cbctl_ctx_t *ctx, const char *code, json_t *extra, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
int cbctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs one request; on failure reports it and returns 1 (exit code). */
int cbctl_request(cbctl_ctx_t *ctx, Cb__Envelope *req, Cb__Envelope__MsgCase expect, frame_msg_t **reply);
/* Parses an achievement kind given as a number (1..5) or a name
 * ("academic_course"...); 0 or -1. */
int cbctl_parse_kind(const char *s, int *kind);
/* "academic_course", ...: the CSV template's name of an achievement kind. */
const char *cbctl_kind_name(int kind);
int cbctl_parse_role(const char *s, int *role);
/* JSON for an achievement / learner as the commands print them. */
json_t *cbctl_achievement_json(const Cb__Achievement *a);
json_t *cbctl_learner_json(const Cb__Learner *l);

#endif
