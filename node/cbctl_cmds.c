/* cbctl commands other than import: see cbctl_cmds.h. */
#include "cbctl_cmds.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cbctl_out.h"
#include "csvimport.h"
#include "gen.h"
#include "log.h"

int cbctl_fail_json(cbctl_ctx_t *ctx, const char *code, json_t *extra, const char *fmt, ...)
{
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "cbctl: %s\n", msg);
  if (ctx->json) {
    json_t *doc = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code ? code : "FAILED", "reason", msg);
    if (extra) json_object_update(doc, extra);
    cbctl_json_print(doc);
  }
  json_decref(extra);
  return 1;
}

int cbctl_fail(cbctl_ctx_t *ctx, const char *code, const char *fmt, ...)
{
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return cbctl_fail_json(ctx, code, NULL, "%s", msg);
}

int cbctl_usage_error(const char *cmd, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "cbctl %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(cbctl --help lists the commands and their options)\n");
  va_end(ap);
  return 2;
}

int cbctl_ensure_connected(cbctl_ctx_t *ctx)
{
  if (ctx->connected) return 0;
  char err[512];
  if (cbctl_connect(&ctx->conn, ctx->socket_path, err, sizeof err) != CBCTL_OK)
    return cbctl_fail(ctx, "UNAVAILABLE", "%s", err);
  ctx->connected = 1;
  return 0;
}

int cbctl_request(cbctl_ctx_t *ctx, Cb__Envelope *req, Cb__Envelope__MsgCase expect, frame_msg_t **reply)
{
  if (cbctl_ensure_connected(ctx) != 0) return 1;
  char err[2048];
  int code = 0;
  int rc = cbctl_call(&ctx->conn, req, expect, reply, &code, err, sizeof err);
  if (rc == CBCTL_OK) return 0;
  const char *name = rc == CBCTL_ENODE ? cbctl_error_code_name(code) : rc == CBCTL_EIO ? "UNAVAILABLE" : "PROTOCOL";
  return cbctl_fail(ctx, name, "%s", err);
}


int cbctl_parse_kind(const char *s, int *kind)
{
  for (int k = 1; k <= 5; k++) {
    char num[4];
    snprintf(num, sizeof num, "%d", k);
    if (strcmp(s, num) == 0 || strcmp(s, csvimport_kind_name(k)) == 0) {
      *kind = k;
      return 0;
    }
  }
  return -1;
}

int cbctl_parse_role(const char *s, int *role)
{
  for (int r = 1; r <= 4; r++) {
    char num[4];
    snprintf(num, sizeof num, "%d", r);
    if (strcmp(s, num) == 0 || strcmp(s, csvimport_role_name(r)) == 0) {
      *role = r;
      return 0;
    }
  }
  return -1;
}

/* The CSV template's names are the ones operators type and read. */
const char *cbctl_kind_name(int k)
{
  return csvimport_kind_name(k);
}

json_t *cbctl_achievement_json(const Cb__Achievement *a)
{
  char credits[32], date[16];
  cbctl_format_credits(a->credits_milli, credits, sizeof credits);
  cbctl_format_date(a->awarded_on, date, sizeof date);
  const Cb__Depositor *d = a->depositor;
  return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:{s:s, s:s, s:s}, s:I}", "id",
                   (json_int_t)a->id, "kind", cbctl_kind_name((int)a->kind), "issuer", a->issuer, "code", a->code,
                   "title", a->title, "level", a->level, "credits", credits, "credits_milli",
                   (json_int_t)a->credits_milli, "score", a->score, "awarded_on", date, "depositor", "role",
                   d && (int)d->role >= 1 && (int)d->role <= 4 ? csvimport_role_name((int)d->role) : "unspecified", "code",
                   d ? d->code : "", "name", d ? d->name : "", "deposited_at_ms", (json_int_t)a->deposited_at_ms);
}

json_t *cbctl_learner_json(const Cb__Learner *l)
{
  char ref[2 * 32 + 1] = "";
  if (l->learner_ref.len == 32) cbctl_hex(l->learner_ref.data, 32, ref);
  char ts[32];
  log_format_ts(l->opened_at_ms, ts, sizeof ts);
  return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id_number", l->id_number, "name", l->name, "learner_ref", ref,
                   "region", l->region, "opened_at", ts);
}

/* ---- hello -------------------------------------------------------------- */

int cbctl_cmd_hello(cbctl_ctx_t *ctx, int argc, char **argv)
{
  (void)argv;
  if (argc != 1) return cbctl_usage_error("hello", "takes no arguments");
  if (cbctl_ensure_connected(ctx) != 0) return 1;
  const cbctl_conn_t *c = &ctx->conn;
  if (ctx->json) {
    cbctl_json_print(json_pack("{s:b, s:s, s:s, s:s, s:i, s:i}", "ok", 1, "node_id", c->node_id, "region",
                               c->region, "software", c->software, "max_frame_bytes",
                               (int)c->node_max_frame_bytes, "import_batch_records",
                               (int)c->node_import_batch_records));
  } else {
    char frame[32], batch[32];
    snprintf(frame, sizeof frame, "%u", c->node_max_frame_bytes);
    snprintf(batch, sizeof batch, "%u", c->node_import_batch_records);
    const char *k[] = {"node", "region", "software", "max frame bytes", "import batch rows"};
    const char *v[] = {c->node_id, c->region, c->software, frame, batch};
    cbctl_print_kv(stdout, k, v, 5);
  }
  return 0;
}

/* ---- learner open --------------------------------------------------------- */

int cbctl_cmd_learner(cbctl_ctx_t *ctx, int argc, char **argv)
{
  if (argc < 2 || strcmp(argv[1], "open") != 0)
    return cbctl_usage_error("learner", "expected 'learner open --id ID --name NAME'");
  static const struct option opts[] = {
    {"id", required_argument, NULL, 'i'}, {"name", required_argument, NULL, 'n'}, {NULL, 0, NULL, 0}};
  const char *id = NULL, *name = NULL;
  int ch;
  optind = 0;
  argc--;
  argv++;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'i': id = optarg; break;
    case 'n': name = optarg; break;
    default: return cbctl_usage_error("learner open", "unknown option");
    }
  }
  if (optind != argc) return cbctl_usage_error("learner open", "unexpected argument '%s'", argv[optind]);
  if (!id || !name) return cbctl_usage_error("learner open", "--id and --name are required");

  Cb__Envelope req = CB__ENVELOPE__INIT;
  Cb__LearnerOpenRequest lo = CB__LEARNER_OPEN_REQUEST__INIT;
  lo.id_number = (char *)id;
  lo.name = (char *)name;
  req.msg_case = CB__ENVELOPE__MSG_LEARNER_OPEN_REQUEST;
  req.learner_open_request = &lo;
  frame_msg_t *m;
  if (cbctl_request(ctx, &req, CB__ENVELOPE__MSG_LEARNER_OPEN_RESPONSE, &m) != 0) return 1;
  const Cb__LearnerOpenResponse *r = frame_msg_envelope(m)->learner_open_response;
  if (!r->learner) {
    frame_msg_free(m);
    return cbctl_fail(ctx, "PROTOCOL", "reply without a learner");
  }
  if (ctx->json) {
    cbctl_json_print(json_pack("{s:b, s:b, s:o}", "ok", 1, "created", r->created, "learner",
                               cbctl_learner_json(r->learner)));
  } else {
    const Cb__Learner *l = r->learner;
    char ref[65] = "";
    if (l->learner_ref.len == 32) cbctl_hex(l->learner_ref.data, 32, ref);
    char ts[32];
    log_format_ts(l->opened_at_ms, ts, sizeof ts);
    printf("%s\n", r->created ? "Learner account opened" : "Learner account already open (unchanged)");
    const char *k[] = {"ID number", "name", "learner_ref", "region", "opened at"};
    const char *v[] = {l->id_number, l->name, ref, l->region, ts};
    cbctl_print_kv(stdout, k, v, 5);
  }
  frame_msg_free(m);
  return 0;
}

/* ---- deposit ---------------------------------------------------------------- */

int cbctl_cmd_deposit(cbctl_ctx_t *ctx, int argc, char **argv)
{
  static const struct option opts[] = {
    {"id", required_argument, NULL, 'i'},      {"kind", required_argument, NULL, 'k'},
    {"issuer", required_argument, NULL, 'I'},  {"code", required_argument, NULL, 'c'},
    {"title", required_argument, NULL, 't'},   {"level", required_argument, NULL, 'l'},
    {"credits", required_argument, NULL, 'C'}, {"score", required_argument, NULL, 's'},
    {"awarded", required_argument, NULL, 'a'}, {"depositor-role", required_argument, NULL, 'r'},
    {"depositor-code", required_argument, NULL, 'd'}, {"depositor-name", required_argument, NULL, 'N'},
    {NULL, 0, NULL, 0}};
  const char *id = NULL, *kind_s = NULL, *issuer = NULL, *code = NULL, *title = NULL, *level = "",
             *credits_s = NULL, *score = "", *awarded_s = NULL, *role_s = NULL, *dcode = "", *dname = "";
  int ch;
  optind = 0;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'i': id = optarg; break;
    case 'k': kind_s = optarg; break;
    case 'I': issuer = optarg; break;
    case 'c': code = optarg; break;
    case 't': title = optarg; break;
    case 'l': level = optarg; break;
    case 'C': credits_s = optarg; break;
    case 's': score = optarg; break;
    case 'a': awarded_s = optarg; break;
    case 'r': role_s = optarg; break;
    case 'd': dcode = optarg; break;
    case 'N': dname = optarg; break;
    default: return cbctl_usage_error("deposit", "unknown option");
    }
  }
  if (optind != argc) return cbctl_usage_error("deposit", "unexpected argument '%s'", argv[optind]);
  if (!id || !kind_s || !issuer || !code || !title || !credits_s || !awarded_s)
    return cbctl_usage_error("deposit", "--id, --kind, --issuer, --code, --title, --credits and --awarded are required");
  int kind, role = 0;
  int64_t credits;
  int32_t awarded;
  if (cbctl_parse_kind(kind_s, &kind) != 0)
    return cbctl_usage_error("deposit", "--kind '%s': use 1..5 or academic_course, vocational_qualification, "
                             "vocational_skill_level, non_formal, cultural_leisure", kind_s);
  if (csvimport_parse_credits(credits_s, &credits) != 0)
    return cbctl_usage_error("deposit", "--credits '%s': a decimal with at most 3 decimals, 0..1000", credits_s);
  if (csvimport_parse_date(awarded_s, &awarded) != 0)
    return cbctl_usage_error("deposit", "--awarded '%s': a real date as YYYY-MM-DD", awarded_s);
  if (role_s && cbctl_parse_role(role_s, &role) != 0)
    return cbctl_usage_error("deposit", "--depositor-role '%s': use outlet, branch, appraisal_centre or "
                             "management_centre", role_s);

  Cb__Envelope req = CB__ENVELOPE__INIT;
  Cb__DepositRequest dr = CB__DEPOSIT_REQUEST__INIT;
  Cb__Achievement a = CB__ACHIEVEMENT__INIT;
  Cb__Depositor d = CB__DEPOSITOR__INIT;
  a.kind = (Cb__AchievementKind)kind;
  a.issuer = (char *)issuer;
  a.code = (char *)code;
  a.title = (char *)title;
  a.level = (char *)level;
  a.credits_milli = credits;
  a.score = (char *)score;
  a.awarded_on = awarded;
  if (role) {
    d.role = (Cb__DepositorRole)role;
    d.code = (char *)dcode;
    d.name = (char *)dname;
    a.depositor = &d;
  }
  dr.id_number = (char *)id;
  dr.achievement = &a;
  req.msg_case = CB__ENVELOPE__MSG_DEPOSIT_REQUEST;
  req.deposit_request = &dr;
  frame_msg_t *m;
  if (cbctl_request(ctx, &req, CB__ENVELOPE__MSG_DEPOSIT_RESPONSE, &m) != 0) return 1;
  const Cb__DepositResponse *r = frame_msg_envelope(m)->deposit_response;
  if (ctx->json) {
    cbctl_json_print(json_pack("{s:b, s:I, s:b}", "ok", 1, "achievement_id", (json_int_t)r->achievement_id,
                               "duplicate", r->duplicate));
  } else if (r->duplicate) {
    printf("Already on file as achievement %" PRIu64 " (nothing written)\n", r->achievement_id);
  } else {
    printf("Deposited as achievement %" PRIu64 "\n", r->achievement_id);
  }
  frame_msg_free(m);
  return 0;
}

/* ---- transcript ------------------------------------------------------------- */

static int parse_hex32(const char *s, uint8_t out[32])
{
  if (strlen(s) != 64) return -1;
  for (int i = 0; i < 32; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    if (!strchr("0123456789abcdefABCDEF", s[2 * i]) || !strchr("0123456789abcdefABCDEF", s[2 * i + 1])) return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

static void print_transcript(const Cb__TranscriptResponse *r)
{
  const Cb__Learner *l = r->learner;
  char ref[65] = "";
  if (l->learner_ref.len == 32) cbctl_hex(l->learner_ref.data, 32, ref);
  printf("Transcript of %s (%s), region %s\n", l->name, l->id_number, l->region);
  printf("learner_ref %s\n\n", ref);
  static const char *const hdr[] = {"id", "awarded", "kind", "issuer", "code", "title", "level", "credits", "score"};
  cbctl_table_t t;
  cbctl_table_init(&t, 9, hdr);
  t.right_align = 1u << 0 | 1u << 7;
  for (size_t i = 0; i < r->n_achievements; i++) {
    const Cb__Achievement *a = r->achievements[i];
    char id[24], date[16], credits[32];
    snprintf(id, sizeof id, "%" PRIu64, a->id);
    cbctl_format_date(a->awarded_on, date, sizeof date);
    cbctl_format_credits(a->credits_milli, credits, sizeof credits);
    const char *row[] = {id, date, cbctl_kind_name((int)a->kind), a->issuer, a->code, a->title, a->level, credits, a->score};
    cbctl_table_add(&t, row);
  }
  cbctl_table_print(&t, stdout);
  cbctl_table_free(&t);
  if (r->truncated) printf("(more achievements than fit one reply; totals below cover all)\n");
  printf("\nTotals by kind\n");
  static const char *const thdr[] = {"kind", "count", "credits"};
  cbctl_table_init(&t, 3, thdr);
  t.right_align = 1u << 1 | 1u << 2;
  uint64_t count = 0;
  for (size_t i = 0; i < r->n_totals; i++) {
    char n[24], credits[32];
    snprintf(n, sizeof n, "%u", r->totals[i]->count);
    count += r->totals[i]->count;
    cbctl_format_credits(r->totals[i]->credits_milli, credits, sizeof credits);
    const char *row[] = {cbctl_kind_name((int)r->totals[i]->kind), n, credits};
    cbctl_table_add(&t, row);
  }
  char n[24], credits[32];
  snprintf(n, sizeof n, "%" PRIu64, count);
  cbctl_format_credits(r->credits_milli_total, credits, sizeof credits);
  const char *row[] = {"total", n, credits};
  cbctl_table_add(&t, row);
  cbctl_table_print(&t, stdout);
  cbctl_table_free(&t);
}

int cbctl_cmd_transcript(cbctl_ctx_t *ctx, int argc, char **argv)
{
  static const struct option opts[] = {
    {"id", required_argument, NULL, 'i'}, {"ref", required_argument, NULL, 'r'}, {NULL, 0, NULL, 0}};
  const char *id = NULL, *ref = NULL;
  int ch;
  optind = 0;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'i': id = optarg; break;
    case 'r': ref = optarg; break;
    default: return cbctl_usage_error("transcript", "unknown option");
    }
  }
  if (optind != argc) return cbctl_usage_error("transcript", "unexpected argument '%s'", argv[optind]);
  if (!id == !ref) return cbctl_usage_error("transcript", "give exactly one of --id ID or --ref HEX");
  Cb__Envelope req = CB__ENVELOPE__INIT;
  Cb__TranscriptRequest tr = CB__TRANSCRIPT_REQUEST__INIT;
  uint8_t refbin[32];
  if (id) {
    tr.who_case = CB__TRANSCRIPT_REQUEST__WHO_ID_NUMBER;
    tr.id_number = (char *)id;
  } else {
    if (parse_hex32(ref, refbin) != 0) return cbctl_usage_error("transcript", "--ref must be 64 hex digits");
    tr.who_case = CB__TRANSCRIPT_REQUEST__WHO_LEARNER_REF;
    tr.learner_ref.data = refbin;
    tr.learner_ref.len = 32;
  }
  req.msg_case = CB__ENVELOPE__MSG_TRANSCRIPT_REQUEST;
  req.transcript_request = &tr;
  frame_msg_t *m;
  if (cbctl_request(ctx, &req, CB__ENVELOPE__MSG_TRANSCRIPT_RESPONSE, &m) != 0) return 1;
  const Cb__TranscriptResponse *r = frame_msg_envelope(m)->transcript_response;
  if (!r->learner) {
    frame_msg_free(m);
    return cbctl_fail(ctx, "PROTOCOL", "reply without a learner");
  }
  if (ctx->json) {
    json_t *ach = json_array();
    for (size_t i = 0; i < r->n_achievements; i++) json_array_append_new(ach, cbctl_achievement_json(r->achievements[i]));
    json_t *tot = json_array();
    for (size_t i = 0; i < r->n_totals; i++) {
      char credits[32];
      cbctl_format_credits(r->totals[i]->credits_milli, credits, sizeof credits);
      json_array_append_new(tot, json_pack("{s:s, s:i, s:s, s:I}", "kind", cbctl_kind_name((int)r->totals[i]->kind), "count",
                                           (int)r->totals[i]->count, "credits", credits, "credits_milli",
                                           (json_int_t)r->totals[i]->credits_milli));
    }
    char credits[32];
    cbctl_format_credits(r->credits_milli_total, credits, sizeof credits);
    cbctl_json_print(json_pack("{s:b, s:o, s:o, s:o, s:s, s:I, s:b}", "ok", 1, "learner", cbctl_learner_json(r->learner),
                               "achievements", ach, "totals", tot, "credits_total", credits, "credits_milli_total",
                               (json_int_t)r->credits_milli_total, "truncated", r->truncated));
  } else {
    print_transcript(r);
  }
  frame_msg_free(m);
  return 0;
}

/* ---- stats -------------------------------------------------------------------- */

int cbctl_cmd_stats(cbctl_ctx_t *ctx, int argc, char **argv)
{
  (void)argv;
  if (argc != 1) return cbctl_usage_error("stats", "takes no arguments");
  Cb__Envelope req = CB__ENVELOPE__INIT;
  Cb__StatsRequest sr = CB__STATS_REQUEST__INIT;
  req.msg_case = CB__ENVELOPE__MSG_STATS_REQUEST;
  req.stats_request = &sr;
  frame_msg_t *m;
  if (cbctl_request(ctx, &req, CB__ENVELOPE__MSG_STATS_RESPONSE, &m) != 0) return 1;
  const Cb__StatsResponse *r = frame_msg_envelope(m)->stats_response;
  if (ctx->json) {
    cbctl_json_print(json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "ok", 1, "node_id", r->node_id, "region",
                               r->region, "learners", (json_int_t)r->learners, "achievements",
                               (json_int_t)r->achievements, "db_size_bytes", (json_int_t)r->db_size_bytes,
                               "file_size_bytes", (json_int_t)r->file_size_bytes, "map_size_bytes",
                               (json_int_t)r->map_size_bytes));
  } else {
    char l[24], a[24], used[32], file[32], map[32];
    snprintf(l, sizeof l, "%" PRIu64, r->learners);
    snprintf(a, sizeof a, "%" PRIu64, r->achievements);
    cbctl_format_bytes(r->db_size_bytes, used, sizeof used);
    cbctl_format_bytes(r->file_size_bytes, file, sizeof file);
    cbctl_format_bytes(r->map_size_bytes, map, sizeof map);
    const char *k[] = {"node", "region", "learners", "achievements", "database in use", "data file", "map size"};
    const char *v[] = {r->node_id, r->region, l, a, used, file, map};
    cbctl_print_kv(stdout, k, v, 7);
  }
  frame_msg_free(m);
  return 0;
}

/* ---- generate ------------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
  if (!s || *s < '0' || *s > '9') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

int cbctl_cmd_generate(cbctl_ctx_t *ctx, int argc, char **argv)
{
  static const struct option opts[] = {
    {"seed", required_argument, NULL, 's'},   {"learners", required_argument, NULL, 'l'},
    {"per-learner", required_argument, NULL, 'k'}, {"region", required_argument, NULL, 'r'},
    {"out", required_argument, NULL, 'o'},    {"sorted", no_argument, NULL, 'S'},
    {"crlf", no_argument, NULL, 'c'},         {"bom", no_argument, NULL, 'b'},
    {NULL, 0, NULL, 0}};
  const char *seed_s = NULL, *learners_s = NULL, *per_s = NULL, *region = NULL, *out = NULL;
  unsigned flags = 0;
  int ch;
  optind = 0;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 's': seed_s = optarg; break;
    case 'l': learners_s = optarg; break;
    case 'k': per_s = optarg; break;
    case 'r': region = optarg; break;
    case 'o': out = optarg; break;
    case 'S': flags |= GEN_SORTED; break;
    case 'c': flags |= GEN_CRLF; break;
    case 'b': flags |= GEN_BOM; break;
    default: return cbctl_usage_error("generate", "unknown option");
    }
  }
  if (optind != argc) return cbctl_usage_error("generate", "unexpected argument '%s'", argv[optind]);
  uint64_t seed, learners, per;
  if (parse_u64(seed_s, &seed) || parse_u64(learners_s, &learners) || parse_u64(per_s, &per) || !region || !out)
    return cbctl_usage_error("generate", "--seed S --learners N --per-learner K --region R --out FILE are required "
                             "(numbers as decimal)");
  if (!gen_region_valid(region)) return cbctl_usage_error("generate", "--region '%s': use sh, js, zj or ah", region);
  FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
  if (!f) return cbctl_fail(ctx, "IO", "%s: cannot create: %s", out, strerror(errno));
  int rc = gen_write_csv(f, seed, learners, per, region, flags);
  int cerr = f == stdout ? fflush(f) : fclose(f);
  if (rc == -1) return cbctl_fail(ctx, "INVALID_ARGUMENT", "generate: bad parameters (learners beyond the region's capacity?)");
  if (rc != 0 || cerr != 0) return cbctl_fail(ctx, "IO", "%s: write failed", out);
  if (f != stdout) {
    if (ctx->json)
      cbctl_json_print(json_pack("{s:b, s:s, s:I, s:I, s:I}", "ok", 1, "path", out, "rows", (json_int_t)(learners * per),
                                 "learners", (json_int_t)learners, "seed", (json_int_t)seed));
    else
      printf("Wrote %" PRIu64 " rows (%" PRIu64 " learners x %" PRIu64 ") to %s\n", learners * per, learners, per, out);
  }
  return 0;
}
