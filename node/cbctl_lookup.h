/* cbctl commands that reach the federation through the node:
 *   lookup --id ID (--region R ... | --all-regions) [--purpose T] [--operator O] [--timeout-ms N]
 *   access-log --id ID
 * See cbctl_cmds.h for the conventions (exit codes, --json). */
#ifndef CB_CBCTL_LOOKUP_H
#define CB_CBCTL_LOOKUP_H

#include "cbctl_cmds.h"

int cbctl_cmd_lookup(cbctl_ctx_t *ctx, int argc, char **argv);
int cbctl_cmd_access_log(cbctl_ctx_t *ctx, int argc, char **argv);

#endif
