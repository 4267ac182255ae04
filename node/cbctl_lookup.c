/* cbctl lookup / access-log: see cbctl_lookup.h. The ID number goes to the
 * local node only; the node derives learner_ref and asks its peers. */
#include "cbctl_lookup.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbctl_out.h"
#include "log.h"

#define LOOKUP_DEFAULT_PURPOSE "cross-region lookup"

static const char *region_name(const char *r)
{
  if (!strcmp(r, "sh")) return "上海";
  if (!strcmp(r, "js")) return "江苏";
  if (!strcmp(r, "zj")) return "浙江";
  if (!strcmp(r, "ah")) return "安徽";
  return "";
}

/* The local login name, for the default operator id. */
static void default_operator(char *buf, size_t len)
{
  const struct passwd *pw = getpwuid(geteuid());
  snprintf(buf, len, "local:%s", pw && pw->pw_name ? pw->pw_name : "unknown");
}

static void ms_text(int64_t ms, char *buf, size_t len)
{
  if (ms > 0) log_format_ts(ms, buf, len);
  else snprintf(buf, len, "-");
}

static void print_lookup(const Cb__RegionLookupResponse *r)
{
  size_t ok = 0, found = 0, total = 0;
  static const char *const hdr[] = {"region", "node", "kind", "issuer", "code", "title", "credits", "awarded", "verified"};
  cbctl_table_t t;
  cbctl_table_init(&t, 9, hdr);
  t.right_align = 1u << 6;
  for (size_t i = 0; i < r->n_results; i++) {
    const Cb__RegionLookupResult *x = r->results[i];
    if (!x->ok) continue;
    ok++;
    found += x->found;
    for (size_t j = 0; j < x->n_achievements; j++) {
      const Cb__Achievement *a = x->achievements[j];
      char credits[32], date[16];
      cbctl_format_credits(a->credits_milli, credits, sizeof credits);
      cbctl_format_date(a->awarded_on, date, sizeof date);
      const char *kind = cbctl_kind_name((int)a->kind);
      const char *cells[] = {x->region, x->node_id, kind, a->issuer, a->code, a->title, credits, date,
                             x->verified ? "yes" : "NO"};
      cbctl_table_add(&t, cells);
      total++;
    }
  }
  if (total) cbctl_table_print(&t, stdout);
  cbctl_table_free(&t);
  printf("%s%zu achievement(s) from %zu region(s)\n", total ? "\n" : "", total, found);
  for (size_t i = 0; i < r->n_results; i++) {
    const Cb__RegionLookupResult *x = r->results[i];
    if (x->ok)
      printf("  %-2s %s %-6s %s, %zu achievement(s), %u ms; %s\n", x->region, region_name(x->region), x->node_id,
             x->found ? "account found" : "no account", x->n_achievements, x->elapsed_ms,
             x->verification ? x->verification : "");
    else
      printf("  %-2s %s %-6s ERROR after %u ms: %s\n", x->region, region_name(x->region), x->node_id,
             x->elapsed_ms, x->error ? x->error : "?");
  }
}

static json_t *lookup_json(const Cb__RegionLookupResponse *r)
{
  char ref[65] = "";
  if (r->learner_ref.len == 32) cbctl_hex(r->learner_ref.data, 32, ref);
  json_t *res = json_array();
  int any_error = 0;
  for (size_t i = 0; i < r->n_results; i++) {
    const Cb__RegionLookupResult *x = r->results[i];
    json_t *o = json_pack("{s:s, s:s, s:b, s:I}", "node_id", x->node_id, "region", x->region, "ok", x->ok,
                          "elapsed_ms", (json_int_t)x->elapsed_ms);
    if (x->ok) {
      json_t *ach = json_array();
      for (size_t j = 0; j < x->n_achievements; j++) {
        json_t *a = cbctl_achievement_json(x->achievements[j]);
        json_object_set_new(a, "issuer_region", json_string(x->region));
        json_object_set_new(a, "verified", json_boolean(x->verified));
        json_array_append_new(ach, a);
      }
      char ts[32];
      ms_text(x->answered_at_ms, ts, sizeof ts);
      json_object_set_new(o, "found", json_boolean(x->found));
      json_object_set_new(o, "verified", json_boolean(x->verified));
      json_object_set_new(o, "verification", json_string(x->verification ? x->verification : ""));
      json_object_set_new(o, "answered_at", json_string(ts));
      json_object_set_new(o, "achievements", ach);
    } else {
      any_error = 1;
      json_object_set_new(o, "error", json_string(x->error ? x->error : ""));
    }
    json_array_append_new(res, o);
  }
  return json_pack("{s:b, s:b, s:s, s:o}", "ok", 1, "partial", any_error, "learner_ref", ref, "results", res);
}

int cbctl_cmd_lookup(cbctl_ctx_t *ctx, int argc, char **argv)
{
  static const struct option opts[] = {
    {"id", required_argument, NULL, 'i'},       {"region", required_argument, NULL, 'r'},
    {"all-regions", no_argument, NULL, 'a'},    {"purpose", required_argument, NULL, 'p'},
    {"operator", required_argument, NULL, 'o'}, {"timeout-ms", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0}};
  const char *id = NULL, *purpose = LOOKUP_DEFAULT_PURPOSE, *op = NULL;
  char *regions[16];
  size_t nreg = 0;
  int all = 0;
  unsigned long timeout = 0;
  int ch;
  optind = 0;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'i': id = optarg; break;
    case 'r':
      if (nreg == sizeof regions / sizeof regions[0]) return cbctl_usage_error("lookup", "too many --region");
      regions[nreg++] = optarg;
      break;
    case 'a': all = 1; break;
    case 'p': purpose = optarg; break;
    case 'o': op = optarg; break;
    case 't': {
      char *end;
      timeout = strtoul(optarg, &end, 10);
      if (*end || !optarg[0] || timeout < 1 || timeout > 30000)
        return cbctl_usage_error("lookup", "--timeout-ms must be 1..30000");
      break;
    }
    default: return cbctl_usage_error("lookup", "unknown option");
    }
  }
  if (optind != argc) return cbctl_usage_error("lookup", "unexpected argument '%s'", argv[optind]);
  if (!id) return cbctl_usage_error("lookup", "--id ID is required");
  if (all == (nreg > 0)) return cbctl_usage_error("lookup", "give --region R (repeatable) or --all-regions");
  char opbuf[128];
  if (!op) {
    default_operator(opbuf, sizeof opbuf);
    op = opbuf;
  }
  Cb__Envelope req = CB__ENVELOPE__INIT;
  Cb__RegionLookupRequest q = CB__REGION_LOOKUP_REQUEST__INIT;
  q.id_number = (char *)id;
  q.regions = regions;
  q.n_regions = nreg;
  q.operator_id = (char *)op;
  q.purpose = (char *)purpose;
  q.timeout_ms = (uint32_t)timeout;
  req.msg_case = CB__ENVELOPE__MSG_REGION_LOOKUP_REQUEST;
  req.region_lookup_request = &q;
  frame_msg_t *m;
  if (cbctl_request(ctx, &req, CB__ENVELOPE__MSG_REGION_LOOKUP_RESPONSE, &m) != 0) return 1;
  const Cb__RegionLookupResponse *r = frame_msg_envelope(m)->region_lookup_response;
  if (ctx->json) cbctl_json_print(lookup_json(r));
  else print_lookup(r);
  /* Exit 0 when every peer answered (found or not); 1 if any failed. */
  int code = 0;
  for (size_t i = 0; i < r->n_results; i++) code |= !r->results[i]->ok;
  frame_msg_free(m);
  return code;
}

int cbctl_cmd_access_log(cbctl_ctx_t *ctx, int argc, char **argv)
{
  static const struct option opts[] = {{"id", required_argument, NULL, 'i'}, {NULL, 0, NULL, 0}};
  const char *id = NULL;
  int ch;
  optind = 0;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (ch == 'i') id = optarg;
    else return cbctl_usage_error("access-log", "unknown option");
  }
  if (optind != argc) return cbctl_usage_error("access-log", "unexpected argument '%s'", argv[optind]);
  if (!id) return cbctl_usage_error("access-log", "--id ID is required");
  Cb__Envelope req = CB__ENVELOPE__INIT;
  Cb__AccessLogRequest q = CB__ACCESS_LOG_REQUEST__INIT;
  q.id_number = (char *)id;
  req.msg_case = CB__ENVELOPE__MSG_ACCESS_LOG_REQUEST;
  req.access_log_request = &q;
  frame_msg_t *m;
  if (cbctl_request(ctx, &req, CB__ENVELOPE__MSG_ACCESS_LOG_RESPONSE, &m) != 0) return 1;
  const Cb__AccessLogResponse *r = frame_msg_envelope(m)->access_log_response;
  if (ctx->json) {
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n_records; i++) {
      const Cb__AccessLogRecord *x = r->records[i];
      char t1[32], t2[32], nonce[129] = "";
      ms_text(x->request_time_ms, t1, sizeof t1);
      ms_text(x->answered_at_ms, t2, sizeof t2);
      if (x->nonce.len <= 64) cbctl_hex(x->nonce.data, x->nonce.len, nonce);
      json_array_append_new(
          arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:b, s:i, s:b, s:s, s:s}", "requester",
                         x->requester ? x->requester : "", "requester_region",
                         x->requester_region ? x->requester_region : "", "operator",
                         x->operator_id ? x->operator_id : "", "purpose", x->purpose ? x->purpose : "",
                         "requested_at", t1, "request_time_ms", (json_int_t)x->request_time_ms, "answered_at", t2,
                         "answered_at_ms", (json_int_t)x->answered_at_ms, "found", x->found, "achievements",
                         (int)x->achievements, "signature_valid", x->signature_valid, "verification",
                         x->verification ? x->verification : "", "nonce", nonce));
    }
    char ref[65] = "";
    if (r->learner_ref.len == 32) cbctl_hex(r->learner_ref.data, 32, ref);
    cbctl_json_print(json_pack("{s:b, s:s, s:o, s:b}", "ok", 1, "learner_ref", ref, "entries", arr, "truncated",
                               r->truncated));
  } else {
    static const char *const hdr[] = {"answered at", "by region", "node", "operator", "purpose", "disclosed", "signature"};
    cbctl_table_t t;
    cbctl_table_init(&t, 7, hdr);
    t.right_align = 1u << 5;
    for (size_t i = 0; i < r->n_records; i++) {
      const Cb__AccessLogRecord *x = r->records[i];
      char t2[32], n[16];
      ms_text(x->answered_at_ms, t2, sizeof t2);
      snprintf(n, sizeof n, "%u", x->achievements);
      const char *cells[] = {t2, x->requester_region, x->requester, x->operator_id, x->purpose, n,
                             x->signature_valid ? "valid" : "INVALID"};
      cbctl_table_add(&t, cells);
    }
    if (r->n_records) cbctl_table_print(&t, stdout);
    cbctl_table_free(&t);
    printf("%s%zu lookup(s) of this learner answered by this node%s\n", r->n_records ? "\n" : "", r->n_records,
           r->truncated ? " (list truncated)" : "");
    for (size_t i = 0; i < r->n_records; i++)
      if (!r->records[i]->signature_valid)
        printf("  entry %zu: %s\n", i + 1, r->records[i]->verification ? r->records[i]->verification : "");
  }
  frame_msg_free(m);
  return 0;
}
