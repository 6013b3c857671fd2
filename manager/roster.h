/* roster: the workers a manager knows: identity, threads, credit, liveness,
   units in flight and units done. */
#ifndef HY_ROSTER_H
#define HY_ROSTER_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/protocol.h"

/* A unit sent to a worker and not answered yet. */
typedef struct {
    uint64_t unit;
    int64_t sent_ms;          /* zclock_mono() when sent */
} inflight_t;

typedef struct {
    uint8_t id[256];          /* ZeroMQ routing id of its connection */
    size_t id_len;
    char name[HY_MAX_NAME + 1];
    uint32_t threads;         /* announced in HELLO */
    uint32_t heartbeat_ms;    /* its heartbeat interval */
    size_t credit;            /* units it may hold in flight */
    inflight_t *inflight;     /* units sent, no result yet, oldest first */
    size_t inflight_count, inflight_cap;
    int64_t expiry;           /* counts as lost after this (zclock_mono ms) */
    uint64_t done;            /* units whose accepted result came from it */
    int slot;                 /* static slot, or -1 */
    bool alive;               /* false once lost or gone; kept for the summary */
    bool job_sent;            /* JOB sent for the current job */
} worker_t;

typedef struct roster_t roster_t;

roster_t *roster_new(void);
/* Frees every worker; sets *self_p to NULL; harmless on NULL. */
void roster_destroy(roster_t **self_p);

/* The live worker with this routing id, or NULL. */
worker_t *roster_find(roster_t *self, const uint8_t *id, size_t id_len);
/* Adds a live worker (arrival order is kept); the roster owns it. */
worker_t *roster_add(roster_t *self, const uint8_t *id, size_t id_len, const char *name,
                     size_t name_len, uint32_t threads, uint32_t heartbeat_ms);
/* Number of workers ever added, and the i-th in order of arrival. */
size_t roster_size(roster_t *self);
worker_t *roster_at(roster_t *self, size_t i);
/* Number of live workers. */
size_t roster_alive(roster_t *self);

/* Records a unit sent to w at now_ms; removes one when its result came.
   inflight_remove returns when it was sent, or -1 when it was not in flight on w. */
void worker_inflight_add(worker_t *w, uint64_t unit, int64_t now_ms);
int64_t worker_inflight_remove(worker_t *w, uint64_t unit);

#endif
