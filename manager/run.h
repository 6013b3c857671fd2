/* run: one job's unit table. A unit is pending, in flight (on one worker or,
   when copied, on several) or done; a result for a unit already done is a
   duplicate. The table also remembers which workers a unit must not go to
   again (they failed it, or already answered it for verification). */
#ifndef HY_RUN_H
#define HY_RUN_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { UNIT_PENDING = 0, UNIT_INFLIGHT = 1, UNIT_DONE = 2 } unit_state_t;

typedef struct {
    uint64_t total;        /* units in the job */
    uint64_t done;         /* units with an accepted result */
    uint64_t reissued;     /* units pending again after a loss, failure or give-back */
    uint64_t duplicates;   /* results for units already done or no longer needed */
    uint64_t speculative;  /* second copies of stragglers handed out */
    uint64_t low;          /* the first unit not done (total when all are) */
    uint64_t inflight;     /* units in flight (pending = total - done - inflight) */
    uint8_t *state;        /* unit_state_t per unit */
    uint8_t *holders;      /* per unit: workers it is in flight on */
    uint8_t *losses;       /* per unit: workers lost (killed, silent) while computing it */
    uint8_t *fails;        /* per unit: workers that failed it */
    uint8_t *copies;       /* per unit: speculative copies handed out */
    uint8_t *avoided;      /* per unit: 1 when it has an avoid list */
    zhashx_t *avoid;       /* unit -> avoid_t: workers it must not go to */
    zhashx_t *blocked;     /* units some identity must not get (it answered or failed them) */
} run_t;

/* A table of total units, all pending; NULL when memory is short. */
run_t *run_new(uint64_t total);
/* Frees it, sets *self_p to NULL; harmless on NULL. */
void run_destroy(run_t **self_p);

/* The unit is handed to one more worker: pending or in flight -> in flight. */
void run_give(run_t *self, uint64_t unit);
/* One worker no longer holds the unit (lost, failed, gave it back, cancelled).
   Returns true when nobody holds it any more and it is not done: it is
   pending again (counted as re-issued when reissue; not when it is only
   moved to another worker) and the caller queues it. */
bool run_drop(run_t *self, uint64_t unit, bool reissue);
/* Records an accepted result: returns true when the unit is newly done,
   false for a duplicate (already done; counted). */
bool run_completed(run_t *self, uint64_t unit);

/* Why a unit must not go to an identity again. */
#define AVOID_ANSWERED 1   /* it answered it already (verification wants another) */
#define AVOID_FAILED   2   /* it failed it */
#define AVOID_LOST     4   /* it was lost while holding it: the unit goes to others first, but not
                              only (it may come back as the only worker) */

/* Records that identity iid answered, failed or lost the unit (flags). */
void run_avoid(run_t *self, uint64_t unit, uint32_t iid, unsigned flags);
/* Whether the unit must not go to identity iid (it answered or failed it);
   whether iid is recorded for one of flags. */
bool run_avoids(const run_t *self, uint64_t unit, uint32_t iid);
bool run_avoided_for(const run_t *self, uint64_t unit, uint32_t iid, unsigned flags);
/* A worker with no key (loopback without CURVE: nothing tells its
   connections apart, and a restart has a new name by default), last heard
   from at heard (ms), was lost holding the unit; whether a connection with
   no key that said HELLO at joined may be that worker restarted (it joined
   after). The earliest such loss counts. */
void run_lost_anonymous(run_t *self, uint64_t unit, int64_t heard);
/* When a worker was last lost holding the unit (ms; 0: never). */
void run_lost_at(run_t *self, uint64_t unit, int64_t now);
int64_t run_last_lost(const run_t *self, uint64_t unit);
bool run_lost_anonymous_before(const run_t *self, uint64_t unit, int64_t joined);
/* Calls fn(arg, unit) for every unit some identity must not get (it
   answered or failed it): not those only lost, which any worker may take. */
void run_each_blocked(run_t *self, void (*fn)(void *arg, uint64_t unit), void *arg);

/* Whether unit is pending (scheduler filter; arg is the run). */
bool run_is_pending(uint64_t unit, void *arg);

#endif
