/* run: one job's unit table. A unit is pending, in flight or done; a result
   for a unit already done is a duplicate; a unit lost or failed too often
   stops the job. */
#ifndef HY_RUN_H
#define HY_RUN_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { UNIT_PENDING = 0, UNIT_INFLIGHT = 1, UNIT_DONE = 2 } unit_state_t;

typedef struct {
    uint64_t total;        /* units in the job */
    uint64_t done;         /* units with an accepted result */
    uint64_t reissued;     /* units handed out again after a loss or failure */
    uint64_t duplicates;   /* results for units already done */
    uint64_t speculative;  /* second copies of stragglers handed out */
    uint8_t *state;        /* unit_state_t per unit */
    uint8_t *losses;       /* per unit: workers lost or failed while on it */
    uint8_t *copies;       /* per unit: speculative copies handed out */
} run_t;

/* A table of total units, all pending; NULL when memory is short. */
run_t *run_new(uint64_t total);
/* Frees it, sets *self_p to NULL; harmless on NULL. */
void run_destroy(run_t **self_p);

/* pending -> in flight. */
void run_sent(run_t *self, uint64_t unit);
/* Records a result: returns true when the unit is newly done, false for a
   duplicate (already done; counted). */
bool run_completed(run_t *self, uint64_t unit);
/* in flight -> pending after its worker was lost or its result failed; when
   blame, the loss counts against the unit. Returns the unit's losses so far
   (at least 1; the caller compares with its limit), or 0 when the unit was
   not in flight (done meanwhile: nothing to re-issue). */
unsigned run_lost(run_t *self, uint64_t unit, bool blame);
/* A result for unit that was refused (not done yet: in flight or already
   pending again): the unit is pending, counted as re-issued, and the
   failure counts against it. Returns its losses so far. */
unsigned run_failed(run_t *self, uint64_t unit);
/* Whether unit is pending (scheduler filter; arg is the run). */
bool run_is_pending(uint64_t unit, void *arg);

#endif
