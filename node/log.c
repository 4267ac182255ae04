/* JSON-lines logging: see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static log_level_t log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_fd(int fd)
{
  log_fd = fd;
}

void log_set_level(log_level_t min)
{
  log_min = min;
}

int log_level_parse(const char *s, log_level_t *out)
{
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (log_level_t)i;
      return 0;
    }
  }
  return -1;
}

const char *log_level_name(log_level_t lvl)
{
  return (unsigned)lvl < 4 ? level_names[lvl] : "unknown";
}

void log_format_ts(int64_t unix_ms, char *buf, size_t len)
{
  time_t secs = (time_t)(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(unix_ms % 1000));
}

static int64_t now_unix_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return; /* nowhere left to report a failing log */
    }
    p += w;
    n -= (size_t)w;
  }
}

void log_emit(log_level_t lvl, const char *event, json_t *fields)
{
  if (lvl < log_min) {
    json_decref(fields);
    return;
  }
  char ts[32];
  log_format_ts(now_unix_ms(), ts, sizeof ts);
  json_t *o = json_object();
  if (!o) {
    json_decref(fields);
    return;
  }
  json_object_set_new(o, "ts", json_string(ts));
  json_object_set_new(o, "level", json_string(log_level_name(lvl)));
  json_object_set_new(o, "event", json_string(event));
  if (fields && json_is_object(fields)) {
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v)
    {
      /* The three fixed keys stay first and are never overwritten. */
      if (strcmp(k, "ts") && strcmp(k, "level") && strcmp(k, "event")) json_object_set(o, k, v);
    }
  }
  json_decref(fields);
  char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
  json_decref(o);
  if (!line) return;
  size_t n = strlen(line);
  /* One write per line: copy into a buffer with room for the newline. */
  char small[4096];
  char *buf = n + 1 <= sizeof small ? small : malloc(n + 1);
  if (buf) {
    memcpy(buf, line, n);
    buf[n] = '\n';
    write_all(log_fd, buf, n + 1);
    if (buf != small) free(buf);
  }
  free(line);
}

void log_pack(log_level_t lvl, const char *event, const char *fmt, ...)
{
  if (lvl < log_min) return;
  json_error_t jerr;
  va_list ap;
  va_start(ap, fmt);
  json_t *fields = json_vpack_ex(&jerr, 0, fmt, ap);
  va_end(ap);
  if (!fields) fields = json_pack("{s:s}", "log_error", jerr.text);
  log_emit(lvl, event, fields);
}

void log_ratelimit_init(log_ratelimit_t *rl, uint64_t window_ms, uint32_t burst)
{
  memset(rl, 0, sizeof *rl);
  rl->window_ms = window_ms;
  rl->burst = burst;
}

int log_emit_limited(log_ratelimit_t *rl, uint64_t now_ms, log_level_t lvl, const char *event,
                     json_t *fields)
{
  if (now_ms < rl->window_start_ms || now_ms - rl->window_start_ms >= rl->window_ms) {
    rl->window_start_ms = now_ms;
    rl->in_window = 0;
  }
  if (rl->in_window >= rl->burst) {
    rl->suppressed++;
    json_decref(fields);
    return 0;
  }
  rl->in_window++;
  if (rl->suppressed) {
    if (!fields) fields = json_object();
    if (fields) json_object_set_new(fields, "suppressed", json_integer((json_int_t)rl->suppressed));
    rl->suppressed = 0;
  }
  log_emit(lvl, event, fields);
  return 1;
}
