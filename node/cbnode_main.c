/* cbnode: the federation node daemon. Runs in the foreground, logs JSON
 * lines on stderr, writes nothing on stdout. See node/README.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "node.h"

static void usage(FILE *f)
{
  fprintf(f,
          "usage: cbnode --config FILE [--init]\n"
          "  --config FILE  node configuration (see deploy/node.example.ini)\n"
          "  --init         create the data directory, identity key, federation key\n"
          "                 (if missing) and the LMDB environment, then exit\n"
          "  --version      print the version and exit\n");
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"init", no_argument, NULL, 'i'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
  };
  const char *config_path = NULL;
  int init = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "c:ih", opts, NULL)) != -1) {
    switch (ch) {
    case 'c': config_path = optarg; break;
    case 'i': init = 1; break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("%s\n", NODE_SOFTWARE); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!config_path || optind != argc) {
    usage(stderr);
    return 2;
  }
  config_t cfg;
  char err[1024];
  if (config_load(config_path, &cfg, err, sizeof err) != 0) {
    log_pack(LOG_ERROR, "config_error", "{s:s}", "error", err);
    return 1;
  }
  log_level_t lvl = LOG_INFO;
  log_level_parse(cfg.log_level, &lvl);
  log_set_level(lvl);

  if (init) {
    if (node_init_dirs(&cfg, err, sizeof err) != 0) {
      log_pack(LOG_ERROR, "init_failed", "{s:s}", "error", err);
      return 1;
    }
    return 0;
  }
  node_t *n = calloc(1, sizeof *n);
  if (!n) return 1;
  if (node_open(n, &cfg, err, sizeof err) != 0) {
    log_pack(LOG_ERROR, "start_failed", "{s:s}", "error", err);
    free(n);
    return 1;
  }
  int code = node_run(n);
  node_close(n);
  free(n);
  log_pack(code == 0 ? LOG_INFO : LOG_ERROR, "stopped", "{s:i}", "exit_code", code);
  return code;
}
