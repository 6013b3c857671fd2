/* session: the worker's connection to a manager: hello, heartbeats both ways,
   reconnect with backoff, the job cache, units in and results out. */
#ifndef HY_SESSION_H
#define HY_SESSION_H

#include <czmq.h>
#include <stdint.h>

#include "worker/failpoints.h"

typedef struct {
    const char *endpoint;    /* manager endpoint: tcp://host:port, ipc://path */
    const char *name;        /* announced in HELLO */
    int64_t threads;         /* compute threads */
    int64_t heartbeat_ms;    /* interval of our heartbeats */
    int64_t liveness;        /* missed manager heartbeats before we reconnect */
    failpoints_t failpoints; /* faults to inject (tests) */
    zcert_t *cert;           /* our CURVE key pair, or NULL: no CURVE */
    zcert_t *manager_key;    /* the manager's public certificate */
} session_config_t;

/* Serves managers until SIGINT/SIGTERM. Returns the process exit status. */
int session_run(const session_config_t *config);

#endif
