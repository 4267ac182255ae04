/* INI configuration: see config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"

static const char *const config_regions[] = {"sh", "js", "zj", "ah"};

int config_region_valid(const char *region)
{
  for (size_t i = 0; i < sizeof config_regions / sizeof config_regions[0]; i++)
    if (strcmp(region, config_regions[i]) == 0) return 1;
  return 0;
}

/* Which keys were seen, to catch repeats and missing required keys. */
enum {
  K_ID, K_REGION, K_DATA_DIR, K_ADMIN_SOCKET, K_IDENTITY, K_FEDKEY, K_LOG_LEVEL,
  K_REGISTRY, K_PEER_LISTEN, K_EXTRA_IDENTITY,
  K_MAX_FRAME, K_MAP_SIZE, K_IMPORT_BATCH, K_MAX_ADMIN, K_COUNT
};

typedef struct parse_ctx {
  config_t *cfg;
  char dir[PATH_MAX];   /* directory of the config file, for relative paths */
  int seen[K_COUNT];
  int op_seen[5];       /* [operators]: listen, ca_file, max_connections, handshake/idle timeouts */
  char err[512];        /* first error, without the file:line prefix */
  int err_line;         /* line of that error */
  FILE *f;
  int lines_read;       /* lines handed to inih so far: the current line */
} parse_ctx_t;

/* inih reader that counts lines, so handler errors know their line. */
static char *counting_reader(char *buf, int size, void *stream)
{
  parse_ctx_t *ctx = stream;
  char *r = fgets(buf, size, ctx->f);
  if (r) ctx->lines_read++;
  return r;
}

static int fail(parse_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parse_ctx_t *ctx, const char *fmt, ...)
{
  if (ctx->err[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    ctx->err_line = ctx->lines_read;
  }
  return 0; /* inih: handler failure */
}

static int set_string(parse_ctx_t *ctx, const char *name, const char *value, char *dst, size_t cap)
{
  if (value[0] == '\0') return fail(ctx, "%s is empty", name);
  if (strlen(value) >= cap) return fail(ctx, "%s is longer than %zu bytes", name, cap - 1);
  memcpy(dst, value, strlen(value) + 1);
  return 1;
}

static int set_path(parse_ctx_t *ctx, const char *name, const char *value, char *dst, size_t cap)
{
  if (value[0] == '\0') return fail(ctx, "%s is empty", name);
  int n;
  if (value[0] == '/')
    n = snprintf(dst, cap, "%s", value);
  else
    n = snprintf(dst, cap, "%s/%s", ctx->dir, value);
  if (n < 0 || (size_t)n >= cap) return fail(ctx, "%s: path too long", name);
  return 1;
}

static int set_u64(parse_ctx_t *ctx, const char *name, const char *value, uint64_t lo, uint64_t hi,
                   uint64_t *out)
{
  if (value[0] < '0' || value[0] > '9') return fail(ctx, "%s: '%s' is not a number", name, value);
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(value, &end, 10);
  if (errno || *end != '\0') return fail(ctx, "%s: '%s' is not a number", name, value);
  if (v < lo || v > hi)
    return fail(ctx, "%s: %llu is out of range [%llu, %llu]", name, v, (unsigned long long)lo,
                (unsigned long long)hi);
  *out = v;
  return 1;
}

static int key_index(const char *section, const char *name)
{
  static const struct {
    const char *section, *name;
  } keys[K_COUNT] = {
    [K_ID] = {"node", "id"},
    [K_REGION] = {"node", "region"},
    [K_DATA_DIR] = {"node", "data_dir"},
    [K_ADMIN_SOCKET] = {"node", "admin_socket"},
    [K_IDENTITY] = {"node", "identity_key_file"},
    [K_FEDKEY] = {"node", "federation_key_file"},
    [K_LOG_LEVEL] = {"node", "log_level"},
    [K_REGISTRY] = {"node", "registry_file"},
    [K_PEER_LISTEN] = {"node", "peer_listen"},
    [K_EXTRA_IDENTITY] = {"node", "extra_identity_key_files"},
    [K_MAX_FRAME] = {"limits", "max_frame_bytes"},
    [K_MAP_SIZE] = {"limits", "map_size_mb"},
    [K_IMPORT_BATCH] = {"limits", "import_batch_records"},
    [K_MAX_ADMIN] = {"limits", "max_admin_connections"},
  };
  for (int i = 0; i < K_COUNT; i++)
    if (strcmp(section, keys[i].section) == 0 && strcmp(name, keys[i].name) == 0) return i;
  return -1;
}

/* extra_identity_key_files: comma-separated paths, blanks around each
 * ignored, none empty, at most CONFIG_MAX_EXTRA_KEYS. */
static int set_extra_keys(parse_ctx_t *ctx, const char *name, const char *value, config_t *cfg)
{
  const char *p = value;
  size_t n = 0;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && (*p == ' ' || *p == '\t')) {
      p++;
      len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (len == 0) return fail(ctx, "%s: item %zu is empty (expected FILE[, FILE...])", name, n + 1);
    if (n == CONFIG_MAX_EXTRA_KEYS)
      return fail(ctx, "%s: more than %d files", name, CONFIG_MAX_EXTRA_KEYS);
    char item[PATH_MAX];
    if (len >= sizeof item) return fail(ctx, "%s: item %zu: path too long", name, n + 1);
    memcpy(item, p, len);
    item[len] = '\0';
    if (!set_path(ctx, name, item, cfg->extra_identity_key_files[n], PATH_MAX)) return 0;
    n++;
    if (!end) break;
    p = end + 1;
  }
  cfg->n_extra_identity_keys = n;
  return 1;
}

/* "HOST:PORT" with an IP literal host ("[v6]:port" for IPv6). */
static int set_operator_listen(parse_ctx_t *ctx, const char *value, config_t *cfg)
{
  const char *colon = strrchr(value, ':');
  if (!colon || colon == value)
    return fail(ctx, "listen '%s': expected HOST:PORT, e.g. 127.0.0.1:7443", value);
  const char *h = value;
  size_t hlen = (size_t)(colon - value);
  if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
    h++;
    hlen -= 2;
  }
  if (hlen == 0 || hlen >= sizeof cfg->operators_host)
    return fail(ctx, "listen '%s': host is empty or too long", value);
  char host[CONFIG_HOST_MAX];
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  unsigned char addr[16];
  if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
    return fail(ctx, "listen '%s': host '%s' is not an IP address", value, host);
  uint64_t port;
  if (!set_u64(ctx, "listen port", colon + 1, 0, 65535, &port)) return 0;
  memcpy(cfg->operators_host, host, hlen + 1);
  cfg->operators_port = (uint16_t)port;
  return 1;
}

static int operators_key(parse_ctx_t *ctx, const char *name, const char *value)
{
  static const char *const keys[] = {"listen", "ca_file", "max_connections", "handshake_timeout_ms",
                                     "idle_timeout_ms"};
  config_t *cfg = ctx->cfg;
  int k = -1;
  for (int i = 0; i < 5; i++)
    if (strcmp(name, keys[i]) == 0) k = i;
  if (k < 0) return fail(ctx, "unknown key '%s' in section [operators]", name);
  if (ctx->op_seen[k]++) return fail(ctx, "key '%s' in [operators] is set twice", name);
  uint64_t v;
  switch (k) {
  case 0: return set_operator_listen(ctx, value, cfg);
  case 1: return set_path(ctx, name, value, cfg->operators_ca_file, sizeof cfg->operators_ca_file);
  case 2:
    if (!set_u64(ctx, name, value, 1, 4096, &v)) return 0;
    cfg->operators_max_connections = (uint32_t)v;
    return 1;
  case 3:
    if (!set_u64(ctx, name, value, 100, 600000, &v)) return 0;
    cfg->operators_handshake_timeout_ms = (uint32_t)v;
    return 1;
  default:
    if (!set_u64(ctx, name, value, 1000, 86400000, &v)) return 0;
    cfg->operators_idle_timeout_ms = (uint32_t)v;
    return 1;
  }
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
  parse_ctx_t *ctx = user;
  config_t *cfg = ctx->cfg;
  if (ctx->err[0]) return 0;
  if (strcmp(section, "operators") == 0) return operators_key(ctx, name, value);
  if (strcmp(section, "node") != 0 && strcmp(section, "limits") != 0)
    return fail(ctx, "unknown section [%s] (known: [node], [limits], [operators])", section);
  int k = key_index(section, name);
  if (k < 0) return fail(ctx, "unknown key '%s' in section [%s]", name, section);
  if (ctx->seen[k]++) return fail(ctx, "key '%s' in [%s] is set twice", name, section);
  uint64_t v;
  switch (k) {
  case K_ID:
    if (!set_string(ctx, name, value, cfg->id, sizeof cfg->id)) return 0;
    for (const char *p = value; *p; p++)
      if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
        return fail(ctx, "id '%s': use only a-z, 0-9, '-' and '_'", value);
    return 1;
  case K_REGION:
    if (!config_region_valid(value))
      return fail(ctx, "region '%s' is not one of sh, js, zj, ah", value);
    return set_string(ctx, name, value, cfg->region, sizeof cfg->region);
  case K_DATA_DIR: return set_path(ctx, name, value, cfg->data_dir, sizeof cfg->data_dir);
  case K_ADMIN_SOCKET: {
    if (!set_path(ctx, name, value, cfg->admin_socket, sizeof cfg->admin_socket)) return 0;
    /* sun_path is 108 bytes on Linux, NUL included. */
    if (strlen(cfg->admin_socket) > 107)
      return fail(ctx, "admin_socket path '%s' is longer than 107 bytes", cfg->admin_socket);
    return 1;
  }
  case K_IDENTITY:
    return set_path(ctx, name, value, cfg->identity_key_file, sizeof cfg->identity_key_file);
  case K_FEDKEY:
    return set_path(ctx, name, value, cfg->federation_key_file, sizeof cfg->federation_key_file);
  case K_EXTRA_IDENTITY:
    return set_extra_keys(ctx, name, value, cfg);
  case K_LOG_LEVEL: {
    log_level_t l;
    if (log_level_parse(value, &l) != 0)
      return fail(ctx, "log_level '%s' is not one of debug, info, warn, error", value);
    return set_string(ctx, name, value, cfg->log_level, sizeof cfg->log_level);
  }
  case K_REGISTRY:
    return set_path(ctx, name, value, cfg->registry_file, sizeof cfg->registry_file);
  case K_PEER_LISTEN: {
    const char *colon = strrchr(value, ':');
    if (!colon || colon == value || colon[1] == '\0')
      return fail(ctx, "peer_listen '%s': expected host:port", value);
    if (!set_u64(ctx, name, colon + 1, 1, 65535, &v)) return 0;
    return set_string(ctx, name, value, cfg->peer_listen, sizeof cfg->peer_listen);
  }
  case K_MAX_FRAME:
    if (!set_u64(ctx, name, value, CONFIG_MIN_MAX_FRAME_BYTES, FRAME_MAX_CEILING_BYTES, &v)) return 0;
    cfg->max_frame_bytes = (uint32_t)v;
    return 1;
  case K_MAP_SIZE:
    /* 16 MiB to 1 TiB: LMDB's map size is a hard limit on the data. */
    if (!set_u64(ctx, name, value, 16, 1024u * 1024u, &v)) return 0;
    cfg->map_size_mb = v;
    return 1;
  case K_IMPORT_BATCH:
    if (!set_u64(ctx, name, value, 1, CONFIG_MAX_IMPORT_BATCH, &v)) return 0;
    cfg->import_batch_records = (uint32_t)v;
    return 1;
  case K_MAX_ADMIN:
    if (!set_u64(ctx, name, value, 1, 1024, &v)) return 0;
    cfg->max_admin_connections = (uint32_t)v;
    return 1;
  default: break;
  }
  return fail(ctx, "unhandled key '%s'", name);
}

static void config_defaults(config_t *cfg)
{
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->log_level, sizeof cfg->log_level, "info");
  cfg->max_frame_bytes = CONFIG_DEFAULT_MAX_FRAME_BYTES;
  cfg->map_size_mb = CONFIG_DEFAULT_MAP_SIZE_MB;
  cfg->import_batch_records = CONFIG_DEFAULT_IMPORT_BATCH;
  cfg->max_admin_connections = CONFIG_DEFAULT_MAX_ADMIN_CONNECTIONS;
  cfg->operators_max_connections = CONFIG_DEFAULT_OPERATOR_CONNECTIONS;
  cfg->operators_handshake_timeout_ms = CONFIG_DEFAULT_OPERATOR_HANDSHAKE_MS;
  cfg->operators_idle_timeout_ms = CONFIG_DEFAULT_OPERATOR_IDLE_MS;
}

int config_load(const char *path, config_t *cfg, char *err, size_t errlen)
{
  config_defaults(cfg);
  if (strlen(path) >= sizeof cfg->path) {
    snprintf(err, errlen, "%s: path too long", path);
    return -1;
  }
  snprintf(cfg->path, sizeof cfg->path, "%s", path);

  parse_ctx_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.cfg = cfg;
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(ctx.dir, sizeof ctx.dir, ".");
  else if (slash == path)
    snprintf(ctx.dir, sizeof ctx.dir, "/");
  else
    snprintf(ctx.dir, sizeof ctx.dir, "%.*s", (int)(slash - path), path);

  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  ctx.f = f;
  int line = ini_parse_stream(counting_reader, &ctx, handler, &ctx);
  fclose(f);
  if (line != 0) {
    if (line < 0) {
      snprintf(err, errlen, "%s: cannot read", path);
    } else if (ctx.err[0] && ctx.err_line == line) {
      snprintf(err, errlen, "%s:%d: %s", path, line, ctx.err);
    } else {
      snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, line);
    }
    return -1;
  }
  static const struct {
    int k;
    const char *what;
  } required[] = {
    {K_ID, "[node] id"},
    {K_REGION, "[node] region"},
    {K_DATA_DIR, "[node] data_dir"},
    {K_ADMIN_SOCKET, "[node] admin_socket"},
    {K_FEDKEY, "[node] federation_key_file"},
  };
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    if (!ctx.seen[required[i].k]) {
      snprintf(err, errlen, "%s: missing required key %s", path, required[i].what);
      return -1;
    }
  }
  if (ctx.op_seen[0] != ctx.op_seen[1]) {
    snprintf(err, errlen, "%s: [operators] needs both listen and ca_file (the operator port "
             "verifies client certificates against the province's operator CA)", path);
    return -1;
  }
  if (!ctx.seen[K_IDENTITY]) {
    int n = snprintf(cfg->identity_key_file, sizeof cfg->identity_key_file, "%s/identity.pem",
                     cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof cfg->identity_key_file) {
      snprintf(err, errlen, "%s: data_dir path too long", path);
      return -1;
    }
  }
  return 0;
}
