/* Structured logs: one JSON object per line on stderr (spec/conventions.md
 * "Logs"): {"ts":"...Z","level":"info","event":"name",...fields}.
 * Each line is written with a single write(2) so lines from one process
 * never interleave. */
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdint.h>

#include <jansson.h>

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Where lines go (default 2, stderr) and the lowest level written. */
void log_set_fd(int fd);
void log_set_level(log_level_t min);
/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int log_level_parse(const char *s, log_level_t *out);
const char *log_level_name(log_level_t lvl);

/* Writes one line. fields (may be NULL) is a JSON object whose members are
 * added after ts/level/event; the reference is stolen. */
void log_emit(log_level_t lvl, const char *event, json_t *fields);

/* Convenience: fields built with jansson's json_pack format, e.g.
 * log_pack(LOG_INFO, "start", "{s:s, s:I}", "region", r, "pid", (json_int_t)p). */
void log_pack(log_level_t lvl, const char *event, const char *fmt, ...);

/* Rate limit for lines caused by untrusted input (bad frames from the
 * network or the admin socket): at most burst lines per window_ms; the
 * next line after a quiet spell carries "suppressed":N. Time is passed in so
 * tests can drive it. */
typedef struct log_ratelimit {
  uint64_t window_ms;
  uint32_t burst;
  uint64_t window_start_ms;
  uint32_t in_window;
  uint64_t suppressed;
} log_ratelimit_t;

void log_ratelimit_init(log_ratelimit_t *rl, uint64_t window_ms, uint32_t burst);
/* Emits (stealing fields) unless over the limit; returns 1 if written. */
int log_emit_limited(log_ratelimit_t *rl, uint64_t now_ms, log_level_t lvl, const char *event,
                     json_t *fields);

/* Formats a Unix time in ms as 2026-11-29T15:04:05.123Z into buf (>= 25). */
void log_format_ts(int64_t unix_ms, char *buf, size_t len);

#endif
