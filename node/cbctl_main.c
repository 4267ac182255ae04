/* cbctl: the operator's command line for a cbnode. See node/README.md and
 * spec/admin.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbctl_cmds.h"
#include "cbctl_lookup.h"
#include "config.h"

static void usage(FILE *f)
{
  fprintf(f,
          "usage: cbctl [--socket PATH | --config FILE] [--json] [--quiet] COMMAND ...\n"
          "\n"
          "  hello                                 which node answers (id, region, limits)\n"
          "  learner open --id ID --name NAME      open a learner's account (ID checked per GB 11643)\n"
          "  deposit --id ID --kind K --issuer I --code C --title T --credits N --awarded DATE\n"
          "          [--level L] [--score S] [--depositor-role R --depositor-code C --depositor-name N]\n"
          "                                        deposit one achievement\n"
          "  import FILE.csv [--skip-invalid] [--batch N] [--encoding auto|utf8|gb18030] [--check]\n"
          "                                        bulk deposit from the CSV template\n"
          "  transcript --id ID | --ref HEX        a learner's records and credit totals by kind\n"
          "  stats                                 counts and database size\n"
          "  lookup --id ID (--region R ... | --all-regions) [--purpose TEXT] [--operator NAME] [--timeout-ms N]\n"
          "                                        ask other provinces' nodes (signed, verified; the ID stays here)\n"
          "  access-log --id ID                    which provinces looked this learner up here, when, who, why\n"
          "  generate --seed S --learners N --per-learner K --region R --out FILE [--sorted] [--crlf] [--bom]\n"
          "                                        write deterministic synthetic CSV (no node needed)\n"
          "\n"
          "The socket comes from --socket, else the admin_socket of --config, else $CBCTL_SOCKET.\n"
          "--json prints one JSON document on stdout; errors go to stderr (exit 1; usage errors 2).\n");
}

int main(int argc, char **argv)
{
  cbctl_ctx_t ctx;
  memset(&ctx, 0, sizeof ctx);
  const char *config_path = NULL;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--json") == 0) ctx.json = 1;
    else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) ctx.quiet = 1;
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if ((strcmp(a, "--socket") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
      if (a[2] == 's') ctx.socket_path = argv[++i];
      else config_path = argv[++i];
    } else {
      fprintf(stderr, "cbctl: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (i == argc) {
    usage(stderr);
    return 2;
  }
  config_t *cfg = NULL;
  if (!ctx.socket_path && config_path) {
    cfg = malloc(sizeof *cfg);
    char err[1024];
    if (!cfg || config_load(config_path, cfg, err, sizeof err) != 0) {
      fprintf(stderr, "cbctl: %s\n", cfg ? err : "out of memory");
      free(cfg);
      return 2;
    }
    ctx.socket_path = cfg->admin_socket;
  }
  if (!ctx.socket_path) ctx.socket_path = getenv("CBCTL_SOCKET");

  static const struct {
    const char *name;
    int (*fn)(cbctl_ctx_t *, int, char **);
    int needs_node;
  } cmds[] = {
    {"hello", cbctl_cmd_hello, 1},       {"learner", cbctl_cmd_learner, 1}, {"deposit", cbctl_cmd_deposit, 1},
    {"import", cbctl_cmd_import, 1},     {"transcript", cbctl_cmd_transcript, 1}, {"stats", cbctl_cmd_stats, 1},
    {"generate", cbctl_cmd_generate, 0},
    {"lookup", cbctl_cmd_lookup, 1},     {"access-log", cbctl_cmd_access_log, 1},
  };
  int code = -1;
  for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
    if (strcmp(argv[i], cmds[k].name) != 0) continue;
    if (cmds[k].needs_node && !ctx.socket_path) {
      fprintf(stderr, "cbctl: no admin socket: give --socket PATH or --config FILE\n");
      code = 2;
      break;
    }
    code = cmds[k].fn(&ctx, argc - i, argv + i);
    break;
  }
  if (code == -1) {
    fprintf(stderr, "cbctl: unknown command '%s'\n", argv[i]);
    usage(stderr);
    code = 2;
  }
  if (ctx.connected) cbctl_close(&ctx.conn);
  free(cfg);
  return code;
}
