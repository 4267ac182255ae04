/* cbnode configuration file (INI, parsed with inih). Keys and defaults:
 * deploy/node.example.ini and spec/admin.md "Configuration".
 * Relative paths are taken relative to the directory of the config file,
 * so a node directory can be moved as a whole. */
#ifndef CB_CONFIG_H
#define CB_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_ID_MAX 64
#define CONFIG_DEFAULT_MAX_FRAME_BYTES (16u * 1024u * 1024u)
#define CONFIG_MIN_MAX_FRAME_BYTES 1024u
#define CONFIG_DEFAULT_MAP_SIZE_MB 1024u
#define CONFIG_DEFAULT_IMPORT_BATCH 50000u /* storage measured: STORE_BATCH_RECOMMENDED */
#define CONFIG_MAX_IMPORT_BATCH 50000u
#define CONFIG_DEFAULT_MAX_ADMIN_CONNECTIONS 16u
#define CONFIG_DEFAULT_OPERATOR_CONNECTIONS 64u
#define CONFIG_DEFAULT_OPERATOR_HANDSHAKE_MS 10000u
#define CONFIG_DEFAULT_OPERATOR_IDLE_MS 300000u
#define CONFIG_HOST_MAX 64
#define CONFIG_MAX_EXTRA_KEYS 3 /* extra_identity_key_files: 4 keys in all */

typedef struct config {
  char path[PATH_MAX];              /* the file this was loaded from */
  /* [node] */
  char id[CONFIG_ID_MAX];           /* e.g. "sh-1" */
  char region[8];                   /* sh, js, zj, ah */
  char data_dir[PATH_MAX];
  char admin_socket[PATH_MAX];
  char identity_key_file[PATH_MAX]; /* default <data_dir>/identity.pem */
  /* Key rotation: further identity keys; each signature and new TLS
   * session uses the newest key the registry lists as valid now
   * (spec/protocol.md §10). identity_key_file stays the key operators pin. */
  char extra_identity_key_files[CONFIG_MAX_EXTRA_KEYS][PATH_MAX];
  size_t n_extra_identity_keys;
  char federation_key_file[PATH_MAX];
  char log_level[8];                /* debug, info, warn, error */
  /* Federation (optional: without registry_file the node runs alone). */
  char registry_file[PATH_MAX];     /* JSON registry (node/registry.h); reread on SIGHUP */
  char peer_listen[300];            /* host:port of the peer port; "" = own registry endpoint */
  /* [limits] */
  uint32_t max_frame_bytes;
  uint64_t map_size_mb;
  uint32_t import_batch_records;
  uint32_t max_admin_connections;
  /* [operators]: the operator TLS port (spec/admin.md "Operators over TLS") */
  char operators_host[CONFIG_HOST_MAX]; /* IP literal; "" = no operator port */
  uint16_t operators_port;              /* 0 = any free port (logged) */
  char operators_ca_file[PATH_MAX];     /* the province's operator CA (PEM) */
  uint32_t operators_max_connections;
  uint32_t operators_handshake_timeout_ms;
  uint32_t operators_idle_timeout_ms;
} config_t;

/* Loads and checks path. On error returns -1 and writes "file:line: what"
 * (or "file: what" for whole-file problems such as a missing key). Unknown
 * sections and keys, repeated keys, malformed numbers and out-of-range
 * values are all errors. */
int config_load(const char *path, config_t *cfg, char *err, size_t errlen);

/* True if region is one of the federation's region codes. */
int config_region_valid(const char *region);

#endif
