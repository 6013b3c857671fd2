/* failpoints: faults a worker injects on purpose, for tests, from the
   environment variable HYADES_FAILPOINTS
   ("crash:K,hang:K,refuse:K,corrupt:K,corrupt:all,slow:F,sleep:MS"). */
#ifndef HY_FAILPOINTS_H
#define HY_FAILPOINTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAILPOINTS_MAX 16

typedef struct {
    uint64_t crash[FAILPOINTS_MAX];   /* the process dies (SIGKILL) 0.1 s into these units */
    size_t crash_count;
    uint64_t hang[FAILPOINTS_MAX];    /* the thread computing these never returns, cancelled or not */
    size_t hang_count;
    uint64_t refuse[FAILPOINTS_MAX];  /* answered with a failed result, not computed */
    size_t refuse_count;
    uint64_t corrupt[FAILPOINTS_MAX]; /* computed, then the last payload byte flipped */
    size_t corrupt_count;
    bool corrupt_all;                 /* every unit's payload flipped so */
    double slow;                      /* every unit takes this many times longer; 1 = off */
    int64_t sleep_ms;                 /* and this much longer besides; 0 = off */
} failpoints_t;

/* What failpoints_before decided for a unit. */
#define FAILPOINT_COMPUTE 0   /* compute it */
#define FAILPOINT_REFUSE  1   /* answer with a failed result, FAILPOINT_REFUSED as the reason */
#define FAILPOINT_REFUSED "refused (failpoint)"

/* Parses spec (NULL or "" means none). Returns 0, or -1 with a one-line reason. */
int failpoints_parse(const char *spec, failpoints_t *fp, char *err, size_t errlen);
/* Whether any failpoint is set. */
bool failpoints_active(const failpoints_t *fp);
/* Called by a compute thread before unit, with the flag that cancels it:
   crashes the process, or hangs for good (deaf to cancels, as a stuck
   kernel), as asked. Returns FAILPOINT_COMPUTE or FAILPOINT_REFUSE. */
int failpoints_before(const failpoints_t *fp, uint64_t unit, const atomic_bool *cancel);
/* Called after unit was computed in elapsed_ms into data (len bytes):
   flips its last byte if it is to be corrupted, then sleeps to make it
   slow:F times longer and sleep:MS longer besides (in 10 ms slices, ending
   early when *cancel is set). */
void failpoints_after(const failpoints_t *fp, uint64_t unit, int64_t elapsed_ms, uint8_t *data, size_t len,
                      const atomic_bool *cancel);

#endif
