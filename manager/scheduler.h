/* scheduler: which pending unit goes to which worker.
   dynamic: one shared queue, served to whichever worker has credit.
   static:  n slots; unit k belongs to slot k mod n. A lost slot's units are
            spread over the surviving slots.
   It also keeps recent unit times, which say when a unit is a straggler. */
#ifndef HY_SCHEDULER_H
#define HY_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SCHED_DYNAMIC = 0, SCHED_STATIC = 1 } sched_policy_t;

#define STRAGGLER_FACTOR 4     /* a straggler takes this many times the median */
#define STRAGGLER_WINDOW 255   /* recent round trips the median is taken over */

typedef struct scheduler_t scheduler_t;

/* A scheduler for units 0 .. units-1 split over slots queues (1 for dynamic). */
scheduler_t *scheduler_new(sched_policy_t policy, uint64_t units, size_t slots);
/* Frees it, sets *self_p to NULL; harmless on NULL. */
void scheduler_destroy(scheduler_t **self_p);

/* The next unit for the worker in slot (0 for dynamic), in ascending order
   with re-queued units first. is_pending(unit, arg) filters units done or in
   flight meanwhile. Returns false when the slot has nothing left. */
bool scheduler_next(scheduler_t *self, size_t slot, bool (*is_pending)(uint64_t, void *), void *arg,
                    uint64_t *unit);
/* Puts a unit back at the front of slot's queue (it will be issued again). */
void scheduler_requeue(scheduler_t *self, size_t slot, uint64_t unit);
/* Moves everything of slot lost to the survivors, spread evenly (k-th
   remaining unit to survivors[k mod m]). */
void scheduler_reassign(scheduler_t *self, size_t lost, const size_t *survivors, size_t m);
/* Moves everything of slot from into slot to. */
void scheduler_merge(scheduler_t *self, size_t from, size_t to);

/* Records one unit's round trip (ms), for the straggler limit. */
void scheduler_record(scheduler_t *self, int64_t ms);
/* How long a unit may be out before it counts as a straggler (and a worker
   that answers nothing for that long as stalled): the larger of floor_ms and
   STRAGGLER_FACTOR x the median of the last STRAGGLER_WINDOW round trips;
   before any unit completed, STRAGGLER_FACTOR x floor_ms. */
int64_t scheduler_straggler_ms(scheduler_t *self, int64_t floor_ms);

#endif
