/* cbctl: the operator's command line for a cbnode. See node/README.md and
 * spec/admin.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbctl_cmds.h"
#include "cbctl_lookup.h"
#include "config.h"

/* Remote mode (--remote and friends, else the CBCTL_* variables). */
typedef struct remote_opts {
  const char *addr, *cert, *key, *node_key, *node_cert;
} remote_opts_t;

static int remote_option(const char *opt, const char *val, remote_opts_t *o)
{
  const char **slot = strcmp(opt, "--remote") == 0      ? &o->addr
                      : strcmp(opt, "--cert") == 0      ? &o->cert
                      : strcmp(opt, "--key") == 0       ? &o->key
                      : strcmp(opt, "--node-key") == 0  ? &o->node_key
                      : strcmp(opt, "--node-cert") == 0 ? &o->node_cert
                                                        : NULL;
  if (!slot) return 0;
  *slot = val;
  return 1;
}

/* 0: local (Unix socket); 1: remote, r filled; -1: usage error printed. */
static int remote_setup(remote_opts_t *o, cbctl_remote_t *r)
{
  if (!o->addr) o->addr = getenv("CBCTL_REMOTE");
  if (!o->addr || !o->addr[0]) {
    if (o->cert || o->key || o->node_key || o->node_cert) {
      fprintf(stderr, "cbctl: --cert, --key, --node-key and --node-cert go with --remote HOST:PORT\n");
      return -1;
    }
    return 0;
  }
  if (!o->cert) o->cert = getenv("CBCTL_CERT");
  if (!o->key) o->key = getenv("CBCTL_KEY");
  if (!o->node_key && !o->node_cert) o->node_key = getenv("CBCTL_NODE_KEY");
  if (!o->cert || !o->key) {
    fprintf(stderr, "cbctl: --remote needs an operator certificate and its key (--cert FILE --key FILE): "
                    "the node admits no client without one (issue one with deploy/keys.sh operator)\n");
    return -1;
  }
  if (!o->node_key == !o->node_cert) {
    fprintf(stderr, "cbctl: --remote needs the node's identity key to pin: give one of --node-key HEX "
                    "or --node-cert FILE\n");
    return -1;
  }
  memset(r, 0, sizeof *r);
  r->addr = o->addr;
  r->cert_file = o->cert;
  r->key_file = o->key;
  char err[512];
  int rc = o->node_key ? cbctl_remote_key_from_hex(o->node_key, r->node_key, err, sizeof err)
                       : cbctl_remote_key_from_file(o->node_cert, r->node_key, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "cbctl: %s\n", err);
    return -1;
  }
  return 1;
}

static void usage(FILE *f)
{
  fprintf(f,
          "usage: cbctl [--socket PATH | --config FILE] [--json] [--quiet] COMMAND ...\n"
          "       cbctl --remote HOST:PORT --cert OP.crt --key OP.key (--node-key HEX | --node-cert FILE)\n"
          "             [--json] [--quiet] COMMAND ...\n"
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
          "--remote reaches the node's operator port over TLS 1.3 with an operator certificate of\n"
          "its province (deploy/keys.sh operator), pinning the node's Ed25519 identity key; what\n"
          "the certificate's role allows is enforced by the node. Defaults: $CBCTL_REMOTE,\n"
          "$CBCTL_CERT, $CBCTL_KEY, $CBCTL_NODE_KEY.\n"
          "--json prints one JSON document on stdout; errors go to stderr (exit 1; usage errors 2).\n");
}

int main(int argc, char **argv)
{
  cbctl_ctx_t ctx;
  memset(&ctx, 0, sizeof ctx);
  remote_opts_t ro;
  memset(&ro, 0, sizeof ro);
  const char *config_path = NULL;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--json") == 0) ctx.json = 1;
    else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) ctx.quiet = 1;
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (i + 1 < argc && remote_option(a, argv[i + 1], &ro)) {
      i++;
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
  static cbctl_remote_t remote;
  int rrc = remote_setup(&ro, &remote);
  if (rrc < 0) {
    free(cfg);
    return 2;
  }
  if (rrc == 1) {
    ctx.socket_path = remote.addr; /* for messages; the transport is TLS */
    cbctl_use_remote(&remote);
  }

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
