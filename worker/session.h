/* session: the worker's connection to a manager: hello, heartbeats both ways,
   reconnect with backoff, the job cache, units in, batched results out,
   cancels, and the orderly stop on a signal. */
#ifndef HY_SESSION_H
#define HY_SESSION_H

#include <czmq.h>
#include <stdint.h>

#include "jobs/job.h"
#include "worker/failpoints.h"

/* Running units finish and send their results for this long after the first
   stop signal; then they are cancelled and given back. */
#define STOP_GRACE_MS 3000

typedef struct {
    const char *endpoint;    /* manager endpoint: tcp://host:port, ipc://path */
    const char *name;        /* announced in HELLO */
    int64_t threads;         /* compute threads */
    int64_t heartbeat_ms;    /* interval of our heartbeats */
    int64_t liveness;        /* missed manager heartbeats before we reconnect */
    const job_kind_t *const *kinds;  /* the kinds we compute, announced in HELLO */
    size_t kind_count;       /*   (0: every kind of the registry, in its order) */
    failpoints_t failpoints; /* faults to inject (tests) */
    zcert_t *cert;           /* our CURVE key pair, or NULL: no CURVE */
    zcert_t *manager_key;    /* the manager's public certificate */
    /* Leave when the manager says it finished, or when no manager was heard
       for this long (status 0 after one was joined, 1 when none ever was);
       0: serve managers forever. */
    int64_t exit_when_done_ms;
} session_config_t;

/* Serves managers until a stop signal (signals_init must have run, and the
   caller's thread must have the stop signals blocked: the compute threads
   inherit that; the session unblocks them once its threads exist). The
   first signal stops in order: units queued given back, running ones given
   STOP_GRACE_MS to finish, GOODBYE; a second one stops at once. Returns the
   process exit status. */
int session_run(const session_config_t *config);

#endif
