/* local: the worker processes a manager starts on its own machine (--local N),
   and stops when it exits. */
#ifndef HY_LOCAL_H
#define HY_LOCAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct local_t local_t;

/* Starts count hyades-worker processes connecting to endpoint, one compute
   thread each; with cert and manager_key (else NULL), over CURVE. The
   program is $HYADES_WORKER or hyades-worker beside this executable.
   Returns NULL with a one-line reason in err. */
local_t *local_start(const char *endpoint, size_t count, int64_t heartbeat_ms, int64_t liveness,
                     const char *cert, const char *manager_key, char *err, size_t errlen);
/* Collects workers that exited, logging how and calling exited(arg, i) for
   the i-th (0-based; named local-(i+1)) if exited is not NULL. Returns how
   many still run. */
size_t local_reap(local_t *self, void (*exited)(void *arg, size_t index), void *arg);
/* SIGTERM to every worker still running, SIGKILL to any still there after
   two seconds; frees and sets *self_p to NULL; harmless on NULL. */
void local_stop(local_t **self_p);

#endif
