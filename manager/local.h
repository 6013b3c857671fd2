/* local: the worker processes a manager starts on its own machine (--local N),
   restarts when they exit, and stops when it exits. */
#ifndef HY_LOCAL_H
#define HY_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOCAL_BACKOFF_MIN_MS 200    /* first restart delay; doubles on each quick exit */
#define LOCAL_BACKOFF_MAX_MS 5000
#define LOCAL_STABLE_MS      10000  /* a worker that lived this long restarts at once */
#define LOCAL_GIVE_UP        5      /* exits in a row before it ever joined: stop restarting it */

typedef struct local_t local_t;

/* Starts count hyades-worker processes connecting to endpoint, one compute
   thread each, named local-1 .. local-count; with cert and manager_key (else
   NULL), over CURVE, worker i with the key pair cert-i. The program is $HYADES_WORKER or hyades-worker beside
   this executable. Returns NULL with a one-line reason in err. */
local_t *local_start(const char *endpoint, size_t count, int64_t heartbeat_ms, int64_t liveness,
                     const char *cert, const char *manager_key, char *err, size_t errlen);
/* Collects workers that exited, logging how, calling exited(arg, i) for the
   i-th (0-based) if exited is not NULL, and schedules their restart; starts
   those whose restart is due. Returns how many run now. */
size_t local_supervise(local_t *self, void (*exited)(void *arg, size_t index), void *arg);
/* Workers running or to be started again (not given up, not terminated):
   those not connected now may still come. */
size_t local_live(const local_t *self);
/* SIGKILL to worker local-(index+1), if it runs (it is restarted as if it
   had crashed): for one that went silent, frozen or stopped. */
void local_kill(local_t *self, size_t index);
/* Worker local-(index+1) said HELLO: it works, so a later exit is not a broken start. */
void local_joined(local_t *self, size_t index);
/* Whether every worker was given up (each exited LOCAL_GIVE_UP times in a
   row without joining). */
bool local_gave_up(const local_t *self);
/* Restarts so far. */
uint64_t local_restarts(const local_t *self);
/* Restarts of the index-th worker (from 0). */
uint64_t local_restarts_of(const local_t *self, size_t index);
/* SIGTERM to every worker still running, without waiting (local_stop
   collects them); none is restarted any more. For when the work is over
   and the manager still has its output to write. */
void local_terminate(local_t *self);
/* SIGTERM to every worker still running, SIGKILL to any still there after
   two seconds; frees and sets *self_p to NULL; harmless on NULL. */
void local_stop(local_t **self_p);

#endif
