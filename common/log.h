/* log: one line per event on stderr, with a UTC timestamp and a level. */
#ifndef HY_LOG_H
#define HY_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { HY_LOG_DEBUG, HY_LOG_INFO, HY_LOG_WARN, HY_LOG_ERROR, HY_LOG_OFF } log_level_t;

/* Names the program in every line ("hyades-manager"); the string is not copied. */
void log_init(const char *program);
/* Lines below this level are not printed (default HY_LOG_INFO). */
void log_set_level(log_level_t level);
/* Prints one line: "2026-11-24T13:20:01.123Z manager INFO text". */
void log_printf(log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Also hands every line of level INFO and above (printed or not) to tap,
   with its text alone, on the thread that logs it; NULL: none. */
void log_set_tap(void (*tap)(void *ctx, log_level_t level, const char *text), void *ctx);
/* A live status line at the bottom of a terminal: log lines clear it and
   redraw it. NULL removes it. Only use when stderr is a terminal. */
void log_status(const char *text);

/* A rate limit for a flood of similar lines: at most burst lines (at least
   one) per interval; the lines held back meanwhile are counted. */
typedef struct {
    int64_t interval_ms;   /* set by the user */
    unsigned burst;        /* set by the user; 0 means 1 */
    int64_t next_ms;       /* the current interval ends then (monotonic ms, as zclock_mono) */
    unsigned used;         /* lines printed in it */
    uint64_t held;         /* lines held back since the last one printed */
} log_limit_t;

/* Whether a line may be printed now. When it may, *held says how many were
   held back before it (to be said in that line); when not, it is counted. */
bool log_limit(log_limit_t *limit, uint64_t *held);

/* " (N more like it were held back)" when held > 0, else "": for the line
   after log_limit. A static buffer: use it once per line. */
const char *log_held(uint64_t held);

#define log_debug(...) log_printf(HY_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_printf(HY_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_printf(HY_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_printf(HY_LOG_ERROR, __VA_ARGS__)

#endif
