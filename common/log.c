/* log: timestamped event lines on stderr, and an optional live status line. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *s_program = "hyades";
static log_level_t s_level = HY_LOG_INFO;
static char s_status[256];   /* the status line currently shown, or "" */

void log_init(const char *program) { s_program = program; }
void log_set_level(log_level_t level) { s_level = level; }

static void (*s_tap)(void *ctx, log_level_t level, const char *text);
static void *s_tap_ctx;

void log_printf(log_level_t level, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    bool tapped = s_tap && level >= HY_LOG_INFO;
    if (level < s_level && !tapped)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* One line per event: a newline inside the text would forge another line. */
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (tapped)
        s_tap(s_tap_ctx, level, text);
    if (level < s_level)
        return;
    fprintf(stderr, "%s%s.%03ldZ %s %s %s\n%s", s_status[0] ? "\r\033[K" : "", when,
            ts.tv_nsec / 1000000, s_program, names[level], text, s_status);
    fflush(stderr);
}

void log_set_tap(void (*tap)(void *ctx, log_level_t level, const char *text), void *ctx)
{
    s_tap = tap;
    s_tap_ctx = ctx;
}

void log_status(const char *text)
{
    if (!text) {
        if (s_status[0])
            fputs("\r\033[K", stderr);
        s_status[0] = '\0';
    } else {
        snprintf(s_status, sizeof s_status, "%s", text);
        fprintf(stderr, "\r\033[K%s", s_status);
    }
    fflush(stderr);
}

/* Milliseconds on the monotonic clock (zclock_mono's, without czmq: the
   bench's standalone program writes files through outfile, which logs). */
static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool log_limit(log_limit_t *limit, uint64_t *held)
{
    int64_t now = s_mono_ms();
    if (now >= limit->next_ms) {   /* a new interval */
        limit->next_ms = now + limit->interval_ms;
        limit->used = 0;
    }
    if (limit->used >= (limit->burst ? limit->burst : 1)) {
        limit->held++;
        return false;
    }
    limit->used++;
    *held = limit->held;
    limit->held = 0;
    return true;
}

const char *log_held(uint64_t held)
{
    static _Thread_local char text[64];
    if (held == 0)
        return "";
    snprintf(text, sizeof text, " (%llu more like it were held back)", (unsigned long long) held);
    return text;
}
