/* roster: the workers a manager knows: identity, capabilities, credit,
   liveness, units in flight, and what they did in the current job. */
#ifndef HY_ROSTER_H
#define HY_ROSTER_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/protocol.h"

#define CANCELLED_RING 256   /* units cancelled on a worker, remembered for its late results */
#define DEPTH_MIN 3          /* units in flight per thread: one computing, one queued, one on the wire */
#define DEPTH_MAX 256
#define DEPTH_LOW_MS 10      /* round trips shorter than this: twice the depth */
#define DEPTH_HIGH_MS 40     /* longer: half (never below DEPTH_MIN) */
#define SLOW_START_THREADS 8 /* a new connection's credit: DEPTH_MIN units for at most this many threads, */
#define SLOW_START_RUNNING 64 /* or one a thread for at most this many, whichever is more; and two more per
                                unit it answers, up to depth x threads */
#define LATE_SLACK 16        /* messages a lost connection may still send, not counted as bad */
#define DEPARTED_MAX 4096    /* lost connections remembered for their late messages */

/* Who a worker is, for blame and verification: its CURVE key, else its
   network address (not loopback's, which every local peer shares), else
   only its connection. Reconnecting does not change a key or an address, so
   failures, exclusions and answers stick to them across connections. */
typedef struct {
    uint32_t iid;             /* the identity in avoid lists and verification */
    char key[64];             /* key or address; "" when it has none (this connection alone) */
    uint64_t failed;          /* units it failed in the current job */
    uint64_t unchecked;       /* units accepted from it without a second opinion (current job) */
    bool excluded;            /* excluded from the current job */
    char why[160];            /* why */
    int64_t paused_until;     /* it gave units back: no new units before this (zclock_mono ms) */
    uint64_t mark;            /* for counting identities once */
} ident_t;

/* A unit sent to a worker and not answered yet. */
typedef struct {
    uint64_t unit;
    int64_t sent_ms;          /* zclock_mono() when sent */
} inflight_t;

typedef struct {
    uint8_t id[256];          /* ZeroMQ routing id of its connection */
    size_t id_len;
    uint32_t uid;             /* unique in this manager's life: this connection */
    ident_t *ident;           /* who it is (shared by the connections of one key or address) */
    char name[HY_MAX_NAME + 1];
    char release[HY_MAX_RELEASE + 1];
    uint32_t threads;         /* announced in HELLO */
    uint64_t kinds;           /* bit i: it computes job_at(i) */
    size_t credit;            /* units it may hold in flight: depth x threads, once it has shown it can */
    size_t depth;             /* units in flight per thread, sized from its round trips */
    double rtt_ms;            /* moving average of its round trips (sent to answered) */
    uint64_t rtt_count;       /* round trips recorded */
    inflight_t *inflight;     /* units sent, no answer yet, oldest first: a window of inflight_mem */
    size_t inflight_count, inflight_cap;
    inflight_t *inflight_mem; /* the allocation (inflight_cap entries); answers come mostly oldest
                                 first, so taking the oldest moves the window instead of the entries */
    uint64_t cancelled[CANCELLED_RING];  /* units cancelled on it (current job) */
    size_t cancelled_count;   /* entries ever written (ring) */
    int64_t heard_ms;         /* when its last message came (zclock_mono ms) */
    int64_t busy_ms;          /* when it last went from holding no units to holding some */
    int64_t progress_ms;      /* last answer, or when it last went from idle to busy */
    bool alive;               /* false once lost or gone; kept for the summary until the next job */
    bool job_sent;            /* JOB sent for the current job */
    bool stalled;             /* no answer for too long: gets no new units until it answers */
    bool probation;           /* was stalled and holds nothing now: one unit at a time until it answers */
    bool draining;            /* it gave units back (it is stopping): no new units on this connection */
    int slot;                 /* static slot, or -1 */
    uint64_t done;            /* units of the current job whose accepted result came from it */
    uint64_t failed;          /* units of the current job it failed */
    uint64_t unsolicited;     /* results it sent for units it did not hold (current job) */
    uint64_t total;           /* units whose accepted result came from it, in the manager's life */
    char host[64];            /* its network address ("local": ipc) */
    bool private_socket;      /* came through the local workers' private socket: it may be one of them */
    int64_t joined_ms;        /* when it said HELLO (zclock_mono ms) */
    int fd;                   /* its connection's file descriptor (-1: unknown) */
    uint32_t fd_accepts;      /* connections accepted on fd when it said HELLO: which one is its */
    int64_t closed_ms;        /* when its connection closed (0: open) */
} worker_t;

typedef struct roster_t roster_t;

roster_t *roster_new(void);
/* Frees every worker; sets *self_p to NULL; harmless on NULL. */
void roster_destroy(roster_t **self_p);

/* The live worker with this routing id, or NULL: constant time. */
worker_t *roster_find(roster_t *self, const uint8_t *id, size_t id_len);
/* Whether a message on this routing id is one of those a worker lost on it
   may still send (counted down from LATE_SLACK: results are batched, so an
   honest worker sends a few before it hears it was lost).
   The last DEPARTED_MAX lost connections are remembered. */
bool roster_late(roster_t *self, const uint8_t *id, size_t id_len);
/* Adds a live worker (arrival order is kept) whose identity is key (its
   CURVE key or address, "" for none); the roster owns it. */
worker_t *roster_add(roster_t *self, const uint8_t *id, size_t id_len, const char *name, size_t name_len,
                     uint32_t threads, const char *key);
/* A new job: every identity's failures and exclusion are forgotten. */
void roster_new_job(roster_t *self);
/* w is gone: it is no longer found by its routing id; it stays listed (for
   the summary) until roster_prune. */
void roster_lose(roster_t *self, worker_t *w);
/* Frees every worker that is gone; with idle_only, only those with nothing
   to report (no unit done or failed, not excluded). */
void roster_prune(roster_t *self, bool idle_only);
/* Number of workers listed, and the i-th in order of arrival. */
size_t roster_size(roster_t *self);
worker_t *roster_at(roster_t *self, size_t i);
/* Number of live workers. */
size_t roster_alive(roster_t *self);

/* Records a unit sent to w at now_ms; removes one when its answer came or
   it was taken back. inflight_remove returns when it was sent, or -1 when
   it was not in flight on w. Both take constant time when answers come in
   the order units were sent (amortised). */
void worker_inflight_add(worker_t *w, uint64_t unit, int64_t now_ms);
int64_t worker_inflight_remove(worker_t *w, uint64_t unit);
/* Records one round trip of w (ms) and resizes its credit: about
   DEPTH_LOW_MS to DEPTH_HIGH_MS of work in flight per thread, so that it
   never waits for work and each message carries many short units. */
void worker_round_trip(worker_t *w, int64_t ms);
/* Remembers that unit was cancelled on w; whether it was (recently). */
void worker_cancelled_add(worker_t *w, uint64_t unit);
bool worker_cancelled_has(const worker_t *w, uint64_t unit);

#endif
