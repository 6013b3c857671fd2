/* pool: the worker's compute threads (pre-threaded), fed one unit at a time
   over their inproc pipes. Threads share no mutable state. */
#ifndef HY_POOL_H
#define HY_POOL_H

#include <czmq.h>
#include <stdint.h>

#include "jobs/job.h"
#include "worker/failpoints.h"

typedef struct pool_t pool_t;

typedef struct {
    uint64_t job, unit;
    uint8_t status;    /* hy_status_t */
    uint8_t *data;     /* payload, or an error text when status is failed; caller frees */
    size_t len;
} pool_result_t;

/* Starts threads compute threads, which apply failpoints (not copied: it
   must outlive the pool). */
pool_t *pool_new(size_t threads, const failpoints_t *failpoints);
/* Stops the threads (each finishes the unit it is computing) and frees the
   pool; sets *self_p to NULL; harmless on NULL. */
void pool_destroy(pool_t **self_p);

/* Queues one unit; params are copied. A NULL kind makes the unit fail. */
void pool_submit(pool_t *self, uint64_t job, const job_kind_t *kind, const uint8_t *params,
                 size_t params_len, uint64_t unit);
/* Drops every queued unit that no thread has started. */
void pool_purge(pool_t *self);

/* Adds the threads' pipes to poller. */
void pool_poll_add(pool_t *self, zpoller_t *poller);
/* Takes the finished unit waiting on pipe which (from zpoller_wait) into
   result and hands that thread the next queued unit. Returns 0, or -1 when
   which is not one of the pool's pipes or nothing could be read. */
int pool_recv(pool_t *self, void *which, pool_result_t *result);

#endif
