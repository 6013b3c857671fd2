/* failpoints: faults a worker injects on purpose, for tests, from the
   environment variable HYADES_FAILPOINTS ("crash:K,hang:K,slow:F"). */
#ifndef HY_FAILPOINTS_H
#define HY_FAILPOINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAILPOINTS_MAX 16

typedef struct {
    uint64_t crash[FAILPOINTS_MAX];   /* the process dies (SIGKILL) 0.1 s into these units */
    size_t crash_count;
    uint64_t hang[FAILPOINTS_MAX];    /* the thread computing these never returns */
    size_t hang_count;
    double slow;                      /* every unit takes this many times longer; 1 = off */
} failpoints_t;

/* Parses spec (NULL or "" means none). Returns 0, or -1 with a one-line reason. */
int failpoints_parse(const char *spec, failpoints_t *fp, char *err, size_t errlen);
/* Whether any failpoint is set. */
bool failpoints_active(const failpoints_t *fp);
/* Called by a compute thread before unit: crashes or hangs as asked. A hang
   lasts until the process is asked to stop. */
void failpoints_before(const failpoints_t *fp, uint64_t unit);
/* Called after a unit that took elapsed_ms: sleeps to make it slow:F times longer. */
void failpoints_after(const failpoints_t *fp, int64_t elapsed_ms);

#endif
