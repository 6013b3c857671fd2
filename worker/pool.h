/* pool: the worker's compute threads. They take units from one shared queue
   and put finished results on one shared list; the session is woken through
   one socket when that list stops being empty. A job's parameters are loaded
   once and shared, by reference, by every unit of it. */
#ifndef HY_POOL_H
#define HY_POOL_H

#include <czmq.h>
#include <stdint.h>

#include "jobs/job.h"
#include "worker/failpoints.h"

typedef struct pool_t pool_t;

/* ------------------------------------------------------------ jobs */

/* A job as the compute threads see it: its kind and the context loaded from
   its parameters, read-only once made, freed with its last reference. The
   counts are atomic: any thread may drop a reference. */
typedef struct pool_job_t pool_job_t;

/* Loads params with kind->load, once; the params are not kept. A NULL kind
   (unknown here, or not served) or parameters the kind refuses give a job
   whose units fail. Returns a job with one reference: the caller's. */
pool_job_t *pool_job_new(uint64_t id, const job_kind_t *kind, const uint8_t *params, size_t params_len);
/* Adds a reference; returns job. */
pool_job_t *pool_job_ref(pool_job_t *job);
/* Drops the caller's reference and sets *job_p to NULL; the last one
   unloads the context and frees the job. Harmless on NULL. */
void pool_job_unref(pool_job_t **job_p);
/* The job id the manager gave it. */
uint64_t pool_job_id(const pool_job_t *job);
/* Why its units fail ("unknown job kind", "invalid job parameters"), or
   NULL when they can be computed. */
const char *pool_job_error(const pool_job_t *job);
/* References held now (for tests and logs: units queued, running or
   finished hold one each). */
size_t pool_job_refs(const pool_job_t *job);

/* ------------------------------------------------------------ results */

typedef struct {
    pool_job_t *job;   /* a reference, dropped by pool_results_free */
    uint64_t unit;
    uint8_t status;    /* hy_status_t */
    uint8_t *data;     /* payload; a printable reason when failed; NULL when returned */
    size_t len;
} pool_result_t;

/* Frees count results (their data and job references) and the array, and
   sets *results_p to NULL. Harmless on NULL. */
void pool_results_free(pool_result_t **results_p, size_t count);

/* ------------------------------------------------------------ the pool */

/* Starts threads compute threads (they inherit the caller's signal mask),
   which apply failpoints (not copied: it must outlive the pool). NULL with
   errno set when the system would not start them all. */
pool_t *pool_new(size_t threads, const failpoints_t *failpoints);

/* Finished results waiting to be taken beyond which the threads stop
   starting units (the session is not taking them: memory stays bounded). */
#define POOL_DONE_MAX   4096
#define POOL_DONE_BYTES (64u << 20)
/* A message's worth: the session is woken when this many results, or this
   many bytes of them, wait. */
#define POOL_WAKE_RESULTS 1024
#define POOL_WAKE_BYTES   (4u << 20)
/* The session is woken when the queued work would last each thread less
   than this (and a quarter of what the worker holds is done), so that the
   manager's next units arrive before the threads run dry. */
#define POOL_LEAD_MS 4
/* Units that take this long on average are answered one by one, at once:
   batching saves next to nothing there (20 messages a second per thread at
   most), and a result held back for the session's
   timer (up to 320 ms) is lost with it if the worker dies meanwhile, and
   the loss is then blamed on that unit rather than the one it died on. */
#define POOL_PROMPT_MS 50
/* Cancels every unit, waits for the threads and frees the pool; sets *self_p
   to NULL; harmless on NULL. */
void pool_destroy(pool_t **self_p);
/* As pool_destroy, but waits at most timeout_ms for the threads to see the
   cancel. Returns 0; or -1 when a thread is still computing: the pool is then
   left to it (not freed, never touched again by the threads' results) and
   the process should exit soon. */
int pool_destroy_within(pool_t **self_p, int64_t timeout_ms);

/* The socket to poll: readable when results are waiting. Owned by the pool. */
zsock_t *pool_signal(pool_t *self);

/* Queues unit of job; the task takes its own reference to job. */
void pool_submit(pool_t *self, pool_job_t *job, uint64_t unit);
/* Queues count units of job at once (one lock, one wake-up). */
void pool_submit_many(pool_t *self, pool_job_t *job, const uint64_t *units, size_t count);
/* Takes every finished result, in the order they finished: returns their
   number (0: none, *results NULL) and an array in *results that the caller
   owns (pool_results_free). Drains the signal socket. A unit whose compute
   was cancelled has no result.
   The signal socket wakes the caller at most once between two takes, when
   the results should leave now: the pool has nothing left to compute, a
   message's worth waits, or the queued work has become short (POOL_LEAD_MS)
   while a quarter of the units held are done. Otherwise the caller comes
   for them on its own timer, taking many at once. */
size_t pool_take(pool_t *self, pool_result_t **results);

/* Cancels the listed units of job id job (count 0: every unit of it): queued
   tasks are dropped, threads computing them told to stop, finished results
   not yet taken dropped. No result ever comes for them. Returns the number of
   units cancelled (queued, running or finished). */
size_t pool_cancel(pool_t *self, uint64_t job, const uint64_t *units, size_t count);
/* Cancels every unit as pool_cancel does. When returned is not NULL, the
   units that were queued or running come back in it as RETURNED results
   (caller owns; NULL when none). Returns their number. */
size_t pool_cancel_all(pool_t *self, pool_result_t **returned);
/* Takes back every queued unit that no thread has started, as RETURNED
   results in *returned (caller owns; NULL when none). Running units go on.
   Returns their number. */
size_t pool_take_queued(pool_t *self, pool_result_t **returned);

/* Units being computed now, not counting those already told to stop (when
   running is not NULL, they come back in it as RETURNED results, caller
   owns; NULL when none), and units queued (into *queued when not NULL).
   Returns the number running. */
size_t pool_running(pool_t *self, pool_result_t **running, size_t *queued);

#endif
