/* cluster: the manager's event loop, on one thread with no locks. One ROUTER
   socket; a message from a worker is decoded (common/protocol.c), its worker
   found in the roster, and handled by one s_on_* function; after each event
   every worker with credit is given units by the scheduler.

   Trust: a result is taken only from a worker the unit is in flight on; a
   unit a worker fails goes to another worker, and a worker that keeps
   failing, or whose answer two others contradict (--verify), is excluded
   from the job. A worker that answers nothing for the straggler limit is
   stalled: its queued units are taken back, its static slot goes to the
   others, and its units in progress are copied to idle workers. Once it
   holds nothing (its units were finished elsewhere), it gets one unit at a
   time until it answers: it may be the only one left to give a second
   opinion, and a worker that was only paused for a while comes back. */
#include "manager/cluster.h"
#include "manager/dashboard.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/outfile.h"
#include "common/protocol.h"
#include "common/signals.h"
#include "manager/guard.h"
#include "manager/journal.h"
#include "manager/local.h"
#include "manager/privdir.h"
#include "manager/roster.h"
#include "manager/run.h"
#include "manager/verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TICK_MS 100
#define LOCAL_FROZEN_GRACE_MS 200   /* at least this long lost and not back before a local worker is restarted */
#define JOURNAL_FLUSH_MS 200   /* finished units reach the disk in batches this often */
#define PROGRESS_MS 250
#define ASIDE_MAX 64           /* units a dispatch skips because the worker must avoid them */
#define IDLE_FACTOR 4          /* workers that hold no units heartbeat this many times slower (PROTOCOL 4.3) */
#define GATHER_MS 2            /* at most this pause after a wake-up that brought only heartbeats */
#define ROUTER_RCVHWM 64       /* messages queued per peer before ZeroMQ stops reading it */
#define HUNG_AFTER 60          /* x --straggler-ms: a worker answering nothing this long may be hung, whatever
                                  the others do (a minute by default) */
#define CLOSED_GRACE_MS 20     /* a worker whose connection closed is lost this long after: its last messages come in */
#define FD_CLOSED 0x80000000u
#define MAX_TRACKED_FD (1 << 22)   /* connections on higher descriptors are found lost by their silence only */
#define COPIES_MAX 200         /* speculative copies of one unit at most (its holders are counted in a byte) */
#define RETURN_PAUSE_MS 2000   /* an identity that gave units back gets none for this long, on any connection */

struct cluster_t {
    cluster_config_t config;
    zsock_t *router;
    roster_t *roster;
    local_t *local;
    bool last;                 /* the job running is the last (cluster_last_job) */
    char ipc_dir[64];          /* private directory of the local endpoint, or "" */
    privdir_t *privdir;        /* ipc_dir's owner, or NULL */
    zactor_t *auth;            /* zauth, when CURVE is on */
    zsock_t *monitor;          /* the router's connections (accepted, closed) and failed CURVE handshakes, or NULL */
    uint32_t *accepts;         /* per file descriptor: connections the router accepted on it, and
                                  FD_CLOSED when the last one closed */
    size_t accepts_len;
    log_limit_t handshake_log; /* their log lines, one a few seconds */
    log_limit_t join_log;      /* "joined" lines: a burst, then counted */
    log_limit_t copy_log;      /* straggler copies: a peer holding 1024 units says so in a few lines */
    log_limit_t verify_log;    /* "different answers" lines: the same */
    log_limit_t leave_log;     /* "lost" and "left" lines: the same */
    log_limit_t waiting_log;   /* "waiting for workers" warnings, which a flood of joins changes */
    log_limit_t still_log;     /* "stood still" lines: one a few seconds */
    uint64_t session;          /* this manager instance, announced in WELCOME */
    guard_t *guard;            /* bad messages, bans */
    int64_t next_heartbeat;
    int64_t idle_ms;           /* the heartbeat of workers that hold no units, and the manager's own */
    int bind_lock;             /* --bind ipc://PATH: PATH.lock, locked for our life (-1: none) */
    uint64_t beats_read;       /* HEARTBEATs read from known workers */
    int64_t gather_ms;         /* the pause after a wake-up that brought only heartbeats */
    int64_t last_tick;         /* when s_on_tick last ran */
    int64_t tick_ms;           /* how often s_on_tick runs */
    int64_t read_at;           /* when the loop last went to read the socket */
    int64_t *frozen_since;     /* per local worker: lost to silence then, and not back (0: no) */
    int64_t first_expiry;      /* no worker's expiry comes before this */

    /* The job being run, between cluster_run's start and end. */
    const job_kind_t *kind;
    uint64_t kind_bit;         /* the kind's bit in worker_t.kinds */
    job_plan_t *plan;
    uint64_t job_id;
    uint64_t last_job_id;      /* the job before: its late results are expected, not bad */
    run_t *run;
    verify_t *verify;          /* NULL without --verify */
    scheduler_t *sched;        /* NULL until enough workers joined */
    worker_t **slot_owner;     /* static: the worker of each slot, NULL if lost */
    size_t slots;
    uint64_t *strays;          /* static: re-queued units no slot's owner may take (they answered or failed
                                  them), for any worker that may; entries done or given since are dropped */
    size_t strays_count, strays_cap;
    int64_t straggler_after;   /* the current straggler limit, ms */
    uint64_t rejected;         /* results whose payload the job refused */
    uint64_t failed;           /* failed results */
    uint64_t unsolicited;      /* results dropped: not in flight on their sender */
    uint64_t stolen;           /* queued units taken back for an idle worker at the end */
    /* The running job, for its report and the dashboard. */
    const char *args;          /* its words after its kind */
    const char *output;        /* its output path, or NULL */
    int64_t t0;                /* when it started (zclock_mono) */
    int64_t t0_us, started_us; /* the same and started_ms in microseconds (zclock_usecs), for the summary */
    double cpu0;               /* the manager's CPU seconds then */
    int64_t next_publish, next_picture;
    report_totals_t totals;    /* counters of the jobs finished before */
    uint64_t stale;            /* results of the job before, or of a lost connection, dropped */
    uint64_t bad0;             /* bad messages (but unsolicited results) when the job started */
    uint64_t restarts0;        /* local restarts when the job started */
    char failure[512];         /* set when the job cannot complete */
    char last_blame[160];      /* the reason of the job's last failed unit, or "" */
    char bound[300];           /* --bind as bound (the port chosen), until s_short_of_descriptors unbinds it */
    char waiting[400];         /* why the job waits, for the progress line, or "" */
    bool throttled;            /* too much output waits for a late unit */
    bool output_waited;        /* an output waited for a descriptor since the loop last read */
    bool journal_tainted;      /* it holds results of a worker caught lying: removed at the end */
    size_t capable;            /* workers that may take units, at the last round of dispatch */
    bool roster_changed;       /* a worker joined or left since the last look (tick) */
    bool dispatch_all;         /* units or workers changed: offer units to every worker, not only the
                                  one that just answered (no scan of the roster per message) */
    int64_t started_ms;
    int64_t next_progress;     /* when to redraw the progress line */
    journal_t *journal;        /* NULL without --journal */
    int64_t next_flush;        /* when the journal is next flushed */
    uint64_t resumed;          /* units replayed from the journal */
};

static uint64_t s_random64(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1)
        v = (uint64_t) zclock_time() * 6364136223846793005ull ^ (uint64_t) getpid();
    if (f)
        fclose(f);
    return v;
}

/* CPU seconds used by this process so far, all threads, children excluded. */
static double s_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void s_send(cluster_t *self, worker_t *w, hy_msg_t *msg)
{
    hy_send(self->router, w->id, w->id_len, msg);
}

static void s_fail(cluster_t *self, const char *reason)
{
    if (!self->failure[0])
        snprintf(self->failure, sizeof self->failure, "%s", reason);
}

/* Whether w may get units of the current job at all. */
static bool s_capable(const cluster_t *self, const worker_t *w)
{
    return w->alive && !w->ident->excluded && (w->kinds & self->kind_bit);
}

/* Whether w may get unit u now. */
static bool s_eligible(const cluster_t *self, const worker_t *w, uint64_t u)
{
    return s_capable(self, w) && !run_avoids(self->run, u, w->ident->iid);
}

/* ------------------------------------------------------------ scheduling */

/* Whether w, or who it may be, lost u: its identity (key or address) or,
   with no key, any worker with no key lost holding u before w joined (w
   may be it restarted, under a new name by default; a worker connected
   before then keeps its own standing). */
static bool s_lost_here(const cluster_t *self, const worker_t *w, uint64_t u)
{
    return run_avoided_for(self->run, u, w->ident->iid, AVOID_LOST)
        || (!w->ident->key[0] && run_lost_anonymous_before(self->run, u, w->joined_ms));
}

/* Whether x counts as a worker that did not lose u, for the losses and the
   hand-outs after the loss at (the last so far, when this one is being
   recorded): s_lost_here says no, or x lost nothing under its own identity,
   joined before that loss and computes or has computed other units of the
   job. A keyless worker that joined after a loss may be the loser
   restarted, but one that outlived a loss of u and works is a worker that
   could compute it, whoever it is: the healthy workers joining after a
   crashing one's first loss were taken for it, and its losses failed jobs
   they would finish. Idle ones that did nothing do not count, else
   restarts of workers that all crash on u, each waiting for its turn,
   would keep u's losses from counting for good. */
static bool s_outsider(const cluster_t *self, const worker_t *x, uint64_t u, int64_t at)
{
    return !s_lost_here(self, x, u)
        || (!run_avoided_for(self->run, u, x->ident->iid, AVOID_LOST) && x->joined_ms < at
            && (x->inflight_count > 0 || x->done > 0));
}

/* Whether w lost u while another worker that did not could take it: u
   then waits for that one, for the straggler limit at most. A worker that
   keeps freezing or crashing would otherwise take back the unit it lost
   each time it returns, until the losses fail it; and without the limit a
   worker that did not lose it but never takes it, or takes it and hangs
   (then it is stalled and others may copy it), or computes it slowly,
   would hold it up, for good or for long. A roster scan, only for the rare
   units lost in this job. Dynamic only: a static slot's units are for its
   owner (a lost worker's slot goes to the survivors, and one that returns
   has none). */
static bool s_lost_by(cluster_t *self, const worker_t *w, uint64_t u)
{
    int64_t last = run_last_lost(self->run, u);
    if (self->config.schedule != SCHED_DYNAMIC || s_outsider(self, w, u, last)
        || zclock_mono() - last >= self->straggler_after)
        return false;
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        const worker_t *x = roster_at(self->roster, i);
        if (!x->stalled && !x->draining && s_eligible(self, x, u) && s_outsider(self, x, u, last))
            return true;
    }
    return false;
}

/* Puts unit u back in a queue: dynamic, the one queue; static, the slot of
   a worker that may take it, starting from its own slot, else the strays
   (a second opinion under --verify that only workers who joined late, and
   have no slot, may give: it waited for good in its first slot). */
static void s_requeue(cluster_t *self, uint64_t u)
{
    if (!self->sched)
        return;   /* not started: the scheduler's own queues still hold it */
    self->dispatch_all = true;
    if (self->config.schedule == SCHED_STATIC) {
        size_t first = (size_t) (u % self->slots);
        for (size_t i = 0; i < self->slots; i++) {
            worker_t *owner = self->slot_owner[(first + i) % self->slots];
            if (owner && s_eligible(self, owner, u) && !owner->stalled) {
                scheduler_requeue(self->sched, (first + i) % self->slots, u);
                return;
            }
        }
        if (self->strays_count == self->strays_cap) {
            self->strays_cap = self->strays_cap ? 2 * self->strays_cap : 64;
            self->strays = realloc(self->strays, self->strays_cap * sizeof *self->strays);
        }
        self->strays[self->strays_count++] = u;
        return;
    }
    scheduler_requeue(self->sched, 0, u);
}

/* Static: up to room strays that w may take, into units (after the n there
   already); returns the new count. Strays no longer pending are dropped. */
static size_t s_take_strays(cluster_t *self, worker_t *w, uint64_t *units, size_t n, size_t room)
{
    for (size_t i = 0; i < self->strays_count && n < room;) {
        uint64_t u = self->strays[i];
        bool pending = run_is_pending(u, self->run), take = pending && s_eligible(self, w, u) && !s_lost_by(self, w, u);
        for (size_t k = 0; take && k < n; k++)
            take = units[k] != u;
        if (take)
            units[n++] = u;
        if (take || !pending)
            self->strays[i] = self->strays[--self->strays_count];
        else
            i++;
    }
    return n;
}

/* w no longer holds u (answered, taken back, or lost): u is queued again
   when nobody else holds it (a re-issue, unless it is only moved). */
static void s_release(cluster_t *self, uint64_t u, bool reissue)
{
    /* Others still hold it: the copy this holder stood for is gone, so it may
       be copied again (else a unit whose copy was taken back from a stalled
       worker stays on a hung one for good). */
    if (self->run->state[u] == UNIT_INFLIGHT && self->run->holders[u] > 1 && self->run->copies[u])
        self->run->copies[u]--;
    if (run_drop(self->run, u, reissue))
        s_requeue(self, u);
}

/* Takes unit u back from w without blame: it is cancelled there and
   queued for others. */
static void s_take_back(cluster_t *self, worker_t *w, uint64_t u, bool reissue)
{
    if (worker_inflight_remove(w, u) < 0)
        return;
    hy_msg_t cancel = {.command = HY_CANCEL, .job = self->job_id, .units = &u, .unit_count = 1};
    s_send(self, w, &cancel);
    worker_cancelled_add(w, u);
    s_release(self, u, reissue);
}

/* Whether w holds unit u. */
static bool s_holds(const worker_t *w, uint64_t u)
{
    for (size_t i = 0; i < w->inflight_count; i++)
        if (w->inflight[i].unit == u)
            return true;
    return false;
}

/* Whether x has answered something within the straggler limit (or since it
   last got units): not stalled. */
static bool s_answers(const cluster_t *self, const worker_t *x, int64_t now)
{
    return !x->stalled && now - x->progress_ms < self->straggler_after;
}

/* Whether in-flight unit u may be copied to w: no connection of w's
   identity holds it (another connection of a hung worker's key is that
   worker), and it has no copy yet, or every worker that holds it has
   answered nothing for the straggler limit: a copy that went to a worker
   that hangs too must not keep the unit waiting for good (two hung
   connections held one unit for as long as they stayed). Each further copy
   waits for the last one's holder to stall, so copies come one straggler
   limit apart at most, and only to workers with nothing to do. holder, if
   not NULL, is one that holds it: when it still answers (s_answers), the
   roster need not be read (the usual case, and the scan is per unit). */
static bool s_copyable(const cluster_t *self, const worker_t *w, uint64_t u, const worker_t *holder, int64_t now)
{
    if (self->run->copies[u] >= COPIES_MAX || (self->run->copies[u] && holder && s_answers(self, holder, now)))
        return false;
    bool all_stalled = true;
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        const worker_t *x = roster_at(self->roster, i);
        if (!x->alive || !s_holds(x, u))
            continue;
        if (x->ident == w->ident)
            return false;
        if (s_answers(self, x, now))
            all_stalled = false;
    }
    return !self->run->copies[u] || all_stalled;
}

/* Whether w, on probation (it stalled, and has not answered since), should
   leave copies to a worker that answers: one that can compute the job and
   is neither stalled nor on probation is connected. Copies went from one
   hung connection to the next, while an idle worker waited. */
static bool s_leaves_copies(const cluster_t *self, const worker_t *w)
{
    if (!w->probation)
        return false;
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        const worker_t *x = roster_at(self->roster, i);
        if (x != w && s_capable(self, x) && !x->stalled && !x->probation && !x->draining)
            return true;
    }
    return false;
}

/* A unit in flight elsewhere for longer than the straggler limit that idle
   worker w may take (s_copyable); marks it copied. */
static bool s_find_straggler(cluster_t *self, worker_t *w, uint64_t *unit)
{
    if (s_leaves_copies(self, w))
        return false;
    int64_t now = zclock_mono();
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *other = roster_at(self->roster, i);
        if (other == w || !other->alive)
            continue;
        for (size_t k = 0; k < other->inflight_count; k++) {
            uint64_t u = other->inflight[k].unit;
            if (now - other->inflight[k].sent_ms < self->straggler_after || self->run->state[u] != UNIT_INFLIGHT
                || !s_eligible(self, w, u) || s_lost_by(self, w, u) || !s_copyable(self, w, u, other, now))
                continue;
            self->run->copies[u]++;
            self->run->speculative++;
            uint64_t held;
            if (log_limit(&self->copy_log, &held))
                log_info("unit %" PRIu64 " out on worker %s for %" PRId64 " ms: copied to worker %s%s", u, other->name,
                         now - other->inflight[k].sent_ms, w->name, log_held(held));
            *unit = u;
            return true;
        }
    }
    return false;
}

/* The end of a dynamic job: nothing is pending and w has a thread with
   nothing to do, while another worker has units queued behind its running
   ones. The one it would compute last is taken back from the worker with
   the longest queue, to be handed to w. Returns whether one was. */
static bool s_steal(cluster_t *self, worker_t *w)
{
    if (self->config.schedule != SCHED_DYNAMIC || w->inflight_count >= w->threads)
        return false;
    worker_t *victim = NULL;
    size_t most = 0;
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *other = roster_at(self->roster, i);
        size_t queued = other->inflight_count > other->threads ? other->inflight_count - other->threads : 0;
        if (other != w && other->alive && queued > most) {
            uint64_t last = other->inflight[other->inflight_count - 1].unit;
            if (!self->run->copies[last] && s_eligible(self, w, last)
                && !s_lost_by(self, w, last)) {
                victim = other;
                most = queued;
            }
        }
    }
    if (!victim)
        return false;
    s_take_back(self, victim, victim->inflight[victim->inflight_count - 1].unit, false);   /* moved, not lost */
    self->stolen++;
    return true;
}

/* The output is written in order and too much waits for a late unit: the
   only unit handed out is that one, to its first taker if it is pending,
   else as a copy to one other worker. Returns true while throttled. */
static bool s_throttled(cluster_t *self, worker_t *w, uint64_t *unit, size_t *n)
{
    if (!self->kind->held || self->kind->held(self->plan->state) <= HOLD_MAX_BYTES)
        return false;
    uint64_t u = self->run->low;
    if (!self->throttled) {
        self->throttled = true;
        log_warn("%zu MiB of results wait for unit %" PRIu64 ": no further units until it is done",
                 self->kind->held(self->plan->state) >> 20, u);
    }
    *n = 0;
    if (u >= self->run->total || !s_eligible(self, w, u) || s_holds(w, u))
        return true;
    if (self->run->state[u] == UNIT_PENDING) {
        *unit = u;
        *n = 1;
    } else if (self->run->state[u] == UNIT_INFLIGHT && !s_leaves_copies(self, w)
               && s_copyable(self, w, u, NULL, zclock_mono())) {
        self->run->copies[u]++;
        self->run->speculative++;
        log_info("unit %" PRIu64 " holds up the output: copied to worker %s", u, w->name);
        *unit = u;
        *n = 1;
    }
    return true;
}

static void s_dispatch(cluster_t *self, worker_t *w)
{
    if (!self->sched || !s_capable(self, w) || w->stalled || w->draining || self->failure[0]
        || w->inflight_count >= (w->probation ? 1 : w->credit) || zclock_mono() < w->ident->paused_until)
        return;
    size_t slot = 0;
    if (self->config.schedule == SCHED_STATIC) {
        if (w->slot < 0)
            slot = SIZE_MAX;   /* no slot (joined late, or stalled once): straggler copies only */
        else
            slot = (size_t) w->slot;
    }
    uint64_t units[HY_MAX_BATCH], aside[ASIDE_MAX];
    size_t n = 0, skipped = 0, room = w->probation ? 1 : w->credit - w->inflight_count;
    /* Near the end, what is left is shared out rather than taken by the
       first worker with room. */
    uint64_t pending = self->run->total - self->run->done - self->run->inflight;
    size_t share = (size_t) (pending / (self->capable ? self->capable : 1)) + 1;
    room = room < share ? room : share;
    /* A worker with most of its credit still queued is refilled a quarter at a
       time rather than one unit per result: fewer, fuller messages. */
    size_t refill = w->credit / 4 ? w->credit / 4 : 1;
    if (room < refill && pending >= refill && w->inflight_count > 0)
        return;
    uint64_t u;
    bool throttled = s_throttled(self, w, &units[0], &n);
    if (!throttled && self->throttled) {
        self->throttled = false;
        log_info("the late unit is done: handing out units again");
    }
    while (!throttled && slot != SIZE_MAX && n < room && n < HY_MAX_BATCH && skipped < ASIDE_MAX
           && scheduler_next(self->sched, slot, run_is_pending, self->run, &u)) {
        if (run_avoids(self->run, u, w->ident->iid) || s_lost_by(self, w, u))
            aside[skipped++] = u;   /* w failed, answered or lost it: for someone else */
        else
            units[n++] = u;
    }
    for (size_t i = skipped; i-- > 0;)
        s_requeue(self, aside[i]);
    if (!throttled && self->strays_count && n < room && n < HY_MAX_BATCH)
        n = s_take_strays(self, w, units, n, room < HY_MAX_BATCH ? room : HY_MAX_BATCH);
    if (n == 0 && !throttled && pending == 0 && slot != SIZE_MAX && s_steal(self, w)
        && scheduler_next(self->sched, slot, run_is_pending, self->run, &u))
        units[n++] = u;
    if (n == 0 && !throttled && s_find_straggler(self, w, &units[0]))
        n = 1;
    if (n == 0)
        return;
    if (!w->job_sent) {
        hy_msg_t job = {.command = HY_JOB, .job = self->job_id, .name = self->kind->name,
                        .data = self->plan->params, .data_len = self->plan->params_len};
        s_send(self, w, &job);
        w->job_sent = true;
    }
    hy_msg_t msg = {.command = HY_UNITS, .job = self->job_id, .units = units, .unit_count = n};
    s_send(self, w, &msg);
    int64_t now = zclock_mono();
    for (size_t i = 0; i < n; i++) {
        run_give(self->run, units[i]);
        worker_inflight_add(w, units[i], now);
    }
}

static size_t s_capable_count(cluster_t *self);

static void s_dispatch_all(cluster_t *self)
{
    if (!self->sched)
        return;   /* not started: nothing to hand out (and a thousand waiting workers to skip) */
    self->capable = s_capable_count(self);
    for (size_t i = 0; i < roster_size(self->roster); i++)
        s_dispatch(self, roster_at(self->roster, i));
}

/* Live workers that can compute the current job. */
static size_t s_capable_count(cluster_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < roster_size(self->roster); i++)
        n += s_capable(self, roster_at(self->roster, i));
    return n;
}

/* The same, counting each identity once (several connections of one key
   are one worker for --min-workers). */
static size_t s_capable_identities(cluster_t *self)
{
    static uint64_t generation;
    generation++;
    size_t n = 0;
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (s_capable(self, w) && w->ident->mark != generation) {
            w->ident->mark = generation;
            n++;
        }
    }
    return n;
}

/* Starts handing out units once enough workers that can compute the job are
   here. Static scheduling numbers them, in order of arrival. */
static void s_maybe_start(cluster_t *self)
{
    if (self->sched || !self->run || self->failure[0] || (!self->roster_changed && self->waiting[0]))
        return;   /* (waiting, and nobody came or went since it was said why) */
    size_t capable = s_capable_identities(self), alive = roster_alive(self->roster);
    if (capable < (size_t) self->config.min_workers) {
        char waiting[sizeof self->waiting];
        size_t connections = s_capable_count(self);   /* that can compute it, counting shared identities */
        size_t cannot = alive - connections, shared = connections - capable;
        if (cannot || shared) {
            char why[160] = "";
            if (cannot)
                snprintf(why, sizeof why, "; %zu connected cannot", cannot);
            if (shared)
                snprintf(why + strlen(why), sizeof why - strlen(why),
                         "; %zu more share a key or address with one counted (one identity is one worker)", shared);
            snprintf(waiting, sizeof waiting, "waiting for workers that compute %s (%zu of %" PRId64 "%s)",
                     self->kind->name, capable, self->config.min_workers, why);
        } else
            snprintf(waiting, sizeof waiting, "waiting for workers (%zu of %" PRId64 ")", capable,
                     self->config.min_workers);
        uint64_t held;
        if ((cannot || shared) && strcmp(self->waiting, waiting) != 0 && log_limit(&self->waiting_log, &held))
            log_warn("job %s is %s%s", self->kind->name, waiting, log_held(held));
        snprintf(self->waiting, sizeof self->waiting, "%s", waiting);
        return;
    }
    /* The output was checked before the wait: a directory removed since
       would otherwise be found after all the work. */
    char why[sizeof self->failure];
    if (self->waiting[0] && self->output && outfile_check(self->output, why, sizeof why) < 0) {
        s_fail(self, why);
        return;
    }
    self->waiting[0] = '\0';
    size_t slots = 1;
    if (self->config.schedule == SCHED_STATIC) {
        slots = s_capable_count(self);
        self->slot_owner = calloc(slots, sizeof *self->slot_owner);
        self->slots = slots;
        size_t s = 0;
        for (size_t i = 0; i < roster_size(self->roster); i++) {
            worker_t *w = roster_at(self->roster, i);
            if (s_capable(self, w)) {
                w->slot = (int) s;
                self->slot_owner[s++] = w;
            }
        }
    }
    self->sched = scheduler_new(self->config.schedule, self->run->total, slots);
    self->dispatch_all = true;
    self->straggler_after = scheduler_straggler_ms(self->sched, self->config.straggler_ms);
    self->started_ms = zclock_mono();
    self->started_us = zclock_usecs();
    self->next_progress = 0;
    log_info("job %s started: %" PRIu64 " units, %zu workers, %s scheduling%s", self->kind->name,
             self->run->total, capable, self->config.schedule == SCHED_STATIC ? "static" : "dynamic",
             self->verify ? ", results verified" : "");
    if (self->config.schedule == SCHED_STATIC && slots == 1 && self->config.bind)
        log_warn("static scheduling with one worker: it has every unit, and workers that join later only take"
                 " copies of late ones (--min-workers N waits for N)");
}

/* Static: a worker that joins while slots have no owner takes all of them. */
static void s_adopt_orphans(cluster_t *self, worker_t *w)
{
    if (!self->sched || self->config.schedule != SCHED_STATIC || w->slot >= 0 || !s_capable(self, w))
        return;
    for (size_t s = 0; s < self->slots; s++) {
        if (self->slot_owner[s])
            continue;
        if (w->slot < 0) {
            w->slot = (int) s;
            self->slot_owner[s] = w;
        } else {
            scheduler_merge(self->sched, s, (size_t) w->slot);
        }
    }
}

/* Static: w's slot (w lost, excluded or stalled) goes to the others; with
   nobody left it waits for the next worker to join. */
static void s_free_slot(cluster_t *self, worker_t *w)
{
    if (!self->sched || self->config.schedule != SCHED_STATIC || w->slot < 0)
        return;
    size_t slot = (size_t) w->slot;
    self->slot_owner[slot] = NULL;
    w->slot = -1;
    size_t *survivors = calloc(self->slots, sizeof *survivors), m = 0;
    for (size_t s = 0; s < self->slots; s++)
        if (self->slot_owner[s] && !self->slot_owner[s]->stalled)
            survivors[m++] = s;
    if (m > 0)
        scheduler_reassign(self->sched, slot, survivors, m);
    free(survivors);
}

/* ------------------------------------------------------------ blame */

static void s_check_unit(void *arg, uint64_t u);

/* Every pending unit some workers must not get (they answered or failed
   it): is anyone left who may take it? Units only lost are not walked:
   anyone may take them, and a flood of lost connections would make this
   walk, after each loss, long. */
static void s_check_units(cluster_t *self)
{
    if (self->run && self->sched && !self->failure[0])
        run_each_blocked(self->run, s_check_unit, self);
}

static long s_local_index(const cluster_t *self, const worker_t *w);

/* Live connections of local workers: all of them (index -1), or of
   local-(index+1). */
static size_t s_locals_here(cluster_t *self, long index)
{
    size_t here = 0;
    for (size_t i = 0; self->local && i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        long at = w->alive ? s_local_index(self, w) : -1;
        here += at >= 0 && (index < 0 || at == index);
    }
    return here;
}

/* Local workers that may still come: running or to be restarted, but not
   connected now (starting, restarting, or paused long enough to be lost). */
static size_t s_locals_coming(cluster_t *self)
{
    size_t live = local_live(self->local), here = live ? s_locals_here(self, -1) : 0;
    return live > here ? live - here : 0;
}

static void s_check_unit(void *arg, uint64_t u)
{
    cluster_t *self = arg;
    if (self->failure[0] || self->run->state[u] != UNIT_PENDING)
        return;
    bool eligible = false, unfailed = false, any = false;
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        eligible |= s_eligible(self, w, u);
        unfailed |= s_capable(self, w) && !run_avoided_for(self->run, u, w->ident->iid, AVOID_FAILED);
        any |= w->alive && (w->kinds & self->kind_bit);
    }
    /* A unit that failed on every worker connected that can compute it
       (excluded ones count as failing) fails the job, unless a local worker
       is on its way (starting, restarting, or lost while its process runs):
       a unit nobody here can compute is said at once, with --bind too
       (--min-workers makes the job wait for more). One that awaits a second
       opinion (--verify) from a worker that has not answered it yet waits
       for one while one may come: with --bind, or a local worker on its
       way. With none connected, one may come. */
    bool starting = s_locals_coming(self) > 0, more = self->config.bind || starting;
    char reason[256];
    if (any && !unfailed && self->run->fails[u] && !starting)
        snprintf(reason, sizeof reason, "unit %" PRIu64 " failed on every worker that can compute it (%u %s; the"
                 " job's last failure: %s)", u, self->run->fails[u], self->run->fails[u] == 1 ? "time" : "times",
                 self->last_blame);
    else if (any && !eligible && !more)
        snprintf(reason, sizeof reason, "unit %" PRIu64 " cannot be completed: every worker left has answered or"
                 " failed it (--verify needs another one)", u);
    else {
        if (any && !eligible && !self->waiting[0]) {
            snprintf(self->waiting, sizeof self->waiting, "unit %" PRIu64 " waits for another worker: every one "
                     "connected has answered it, failed it or is excluded", u);
            log_warn("%s", self->waiting);
        }
        return;
    }
    s_fail(self, reason);
}

/* The identity of w takes no further part in the job, on any connection:
   their units go to the others. */
static void s_exclude(cluster_t *self, worker_t *w, const char *why)
{
    ident_t *ident = w->ident;
    if (ident->excluded)
        return;
    ident->excluded = true;
    snprintf(ident->why, sizeof ident->why, "%s", why);
    log_warn("worker %s excluded from job %s: %s", w->name, self->kind->name, why);
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *other = roster_at(self->roster, i);
        if (other->ident != ident || !other->alive)
            continue;
        while (other->inflight_count > 0)
            s_take_back(self, other, other->inflight[other->inflight_count - 1].unit, true);
        s_free_slot(self, other);
    }
    s_check_units(self);
}

/* w failed unit u (it said so, or sent a payload the job refused): u goes
   to another worker; w carries the blame. */
/* What a job said of a payload it refused (kinds say it; a word if not). */
static const char *s_refusal(const char *why) { return why[0] ? why : "no reason given"; }

static void s_blame(cluster_t *self, worker_t *w, uint64_t u, const char *why)
{
    self->failed++;
    w->failed++;
    w->ident->failed++;
    run_avoid(self->run, u, w->ident->iid, AVOID_FAILED);
    if (self->run->fails[u] < UINT8_MAX)
        self->run->fails[u]++;
    log_warn("unit %" PRIu64 " failed on worker %s: %s", u, w->name, why);
    snprintf(self->last_blame, sizeof self->last_blame, "%s", why);
    if (self->run->fails[u] >= self->config.max_attempts) {
        char reason[512];
        snprintf(reason, sizeof reason, "unit %" PRIu64 " failed on %u workers (--max-attempts %" PRId64 "): %s", u,
                 self->run->fails[u], self->config.max_attempts, why);
        s_fail(self, reason);
    }
    s_release(self, u, true);
    if (w->ident->failed >= EXCLUDE_AFTER_FAILS) {
        char reason[160];
        snprintf(reason, sizeof reason, "failed %" PRIu64 " units", w->ident->failed);
        s_exclude(self, w, reason);
    }
    s_check_units(self);
}

/* The interval w heartbeats at (PROTOCOL 4.3): --heartbeat while it holds
   units, IDLE_FACTOR times that while it holds none. */
static int64_t s_interval(const cluster_t *self, const worker_t *w)
{
    return w->inflight_count ? self->config.heartbeat_ms : self->idle_ms;
}

/* The silence after which w counts as lost, and from when it is counted
   (*from): --liveness of its intervals. Holding units, counted from its
   last message or from when it got units while it held none, whichever is
   later (an idle worker given units beats at the shorter interval from
   then on); but never more than the idle limit after its last message. */
static int64_t s_allowance(const cluster_t *self, const worker_t *w, int64_t *from)
{
    int64_t idle = self->idle_ms * self->config.liveness, busy = self->config.heartbeat_ms * self->config.liveness;
    int64_t start = w->busy_ms > w->heard_ms ? w->busy_ms : w->heard_ms;
    *from = w->heard_ms;
    if (!w->inflight_count || start + busy >= w->heard_ms + idle)
        return idle;
    *from = start;
    return busy;
}

/* When w counts as lost. */
static int64_t s_expiry(const cluster_t *self, const worker_t *w)
{
    int64_t from, allowance = s_allowance(self, w, &from);
    return from + allowance;
}

/* Whether w was heard from lately: within 1.5 of its intervals, or 250 ms
   more than one. */
static bool s_heard_lately(const cluster_t *self, const worker_t *w, int64_t now)
{
    int64_t ivl = s_interval(self, w), half = ivl / 2;
    return now - w->heard_ms < ivl + (half > 250 ? half : 250);
}

/* Whether x, heartbeating or not, may be hung: it holds units and
   answered nothing for HUNG_AFTER x --straggler-ms. Nothing else tells a
   hung worker from one computing a long unit (a unit 750 times longer than
   the others was seen in review, on a healthy worker). */
static bool s_hung(const cluster_t *self, const worker_t *x, int64_t now)
{
    return x->inflight_count > 0 && now - x->progress_ms >= HUNG_AFTER * self->config.straggler_ms;
}

/* Until when lost worker w may have been running, as far as a new
   connection that may be it restarted goes: until its connection closed;
   with its connection still open (frozen, hung, or its host gone without a
   word), until now, since a restart comes after the process that held the
   connection is gone, and one frozen says HELLO again only after it closes
   it; unwatched, until it was last heard from. */
static int64_t s_alive_until(const cluster_t *self, const worker_t *w)
{
    if (w->closed_ms)
        return w->closed_ms - 1;
    if (w->fd >= 0)
        return zclock_mono() - 1;
    return w->heard_ms;
}

/* Whether a worker other than w still computes u: it holds u, was heard
   from since it got u and lately (within 1.5 heartbeats, or 250 ms more
   than one), and does not look hung (s_hung). A copy on
   a worker that died on receiving it, not yet found lost, does not count:
   with workers restarted within the liveness window, copies went to fresh
   restarts faster than silences were found, so every loss of a unit that
   crashes every worker had another copy out and the job waited for good
   instead of failing. Nor does a copy on a worker that hangs, heartbeating
   but answering nothing. */
static bool s_computed_elsewhere(const cluster_t *self, const worker_t *w, uint64_t u)
{
    if (self->run->holders[u] <= 1)
        return false;
    int64_t now = zclock_mono();
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        const worker_t *x = roster_at(self->roster, i);
        if (x == w || !x->alive || !s_heard_lately(self, x, now) || s_hung(self, x, now))
            continue;
        for (size_t k = 0; k < x->inflight_count; k++)
            if (x->inflight[k].unit == u && x->heard_ms > x->inflight[k].sent_ms)
                return true;
    }
    return false;
}

/* Whether, w having lost u before (s_lost_here), another worker could
   still compute u: one that did not lose it (s_outsider, as of the loss
   before this one), may take it, was heard from
   lately and does not look hung (s_hung: a busy one computing a long unit
   counts; not one hung for good). Such a repeated loss does not count
   toward --max-attempts: a worker crashing again and again, restarted
   under new names, failed jobs whose healthy worker was busy with long
   units, since every unit went to its restarts in turn. A unit that
   crashes every worker still fails once every worker that may take it
   has lost it. A roster scan, only for repeated losses. */
static bool s_computable_elsewhere(cluster_t *self, const worker_t *w, uint64_t u, int64_t previous)
{
    int64_t now = zclock_mono();
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        const worker_t *x = roster_at(self->roster, i);
        if (x != w && !x->draining && s_eligible(self, x, u) && s_outsider(self, x, u, previous)
            && s_heard_lately(self, x, now) && !s_hung(self, x, now))
            return true;
    }
    return false;
}

/* A worker is gone (silent, crashed, or said goodbye): its units go back to
   pending. A loss counts against the units it was most likely computing,
   its `threads` oldest, unless it left in order (blame false). */
static void s_worker_gone(cluster_t *self, worker_t *w, const char *why, bool blame)
{
    self->roster_changed = true;
    roster_lose(self->roster, w);
    uint64_t held;
    if (!log_limit(&self->leave_log, &held))
        ;   /* a flood of comings and goings: counted, said in the next line */
    else if (self->run)
        log_warn("worker %s lost (%s); re-issuing %zu units%s", w->name, why, w->inflight_count, log_held(held));
    else
        log_info("worker %s left (%s)%s", w->name, why, log_held(held));
    /* The units it was most likely computing: with several threads, which
       one crashed it (if one did) is not known; a failure names them all. */
    char beside[192] = "";
    size_t blamed = 0, listed = 0;
    for (size_t i = 0; blame && self->run && i < w->inflight_count && i < w->threads; i++)
        if (self->run->state[w->inflight[i].unit] == UNIT_INFLIGHT) {
            size_t at = strlen(beside);
            if (at + 48 < sizeof beside) {
                snprintf(beside + at, sizeof beside - at, "%s%" PRIu64, blamed ? ", " : "", w->inflight[i].unit);
                listed++;
            }
            blamed++;
        }
    if (listed < blamed)
        snprintf(beside + strlen(beside), sizeof beside - strlen(beside), " and %zu more", blamed - listed);
    for (size_t i = 0; i < w->inflight_count && self->run; i++) {
        uint64_t u = w->inflight[i].unit;
        if (!blame || i >= w->threads || self->run->state[u] != UNIT_INFLIGHT)
            continue;
        /* A loss counts (a unit that crashes each worker it reaches fails
           however few there are) unless the loser lost the unit before
           while another worker could compute it (s_computable_elsewhere);
           the unit goes to another worker first (s_lost_by); and while
           another worker still computes it (s_computed_elsewhere), a loss
           (of a copy) cannot fail the job. A worker that keeps freezing or
           crashing cannot fail units the others can finish. */
        bool again = s_lost_here(self, w, u);
        int64_t previous = run_last_lost(self->run, u);
        run_avoid(self->run, u, w->ident->iid, AVOID_LOST);
        run_lost_at(self->run, u, zclock_mono());
        if (!w->ident->key[0])
            run_lost_anonymous(self->run, u, s_alive_until(self, w));
        if (again && s_computable_elsewhere(self, w, u, previous))
            continue;
        if (self->run->losses[u] < UINT8_MAX && ++self->run->losses[u] >= self->config.max_attempts
            && !s_computed_elsewhere(self, w, u)) {
            char reason[512];
            bool several = blamed > 1;
            snprintf(reason, sizeof reason,
                     "unit %" PRIu64 " was lost %u times (--max-attempts %" PRId64 ")%s%.64s%s%s%s", u,
                     self->run->losses[u], self->config.max_attempts, several ? "; the last time worker " : "",
                     several ? w->name : "", several ? " was computing units " : "", several ? beside : "",
                     several ? " at once, and any of them may be the cause" : "");
            s_fail(self, reason);
        }
    }
    /* Newest first onto the re-queue stacks, so that the oldest goes out first. */
    for (size_t i = w->inflight_count; i-- > 0 && self->run;)
        s_release(self, w->inflight[i].unit, true);
    w->inflight_count = 0;
    if (self->run) {
        s_free_slot(self, w);
        s_check_units(self);
    }
}

/* A worker named local-N is one of ours: N - 1, or -1. */
static long s_local_index(const cluster_t *self, const worker_t *w)
{
    char *end;
    if (!self->local || !w->private_socket || strncmp(w->name, "local-", 6) != 0)
        return -1;
    long n = strtol(w->name + 6, &end, 10);
    return *end || n < 1 ? -1 : n - 1;
}

/* ------------------------------------------------------------ messages */

static void s_on_monitor(cluster_t *self);

/* w's connection closed at now: it is lost a grace later (CLOSED_GRACE_MS:
   what it sent before may still be on its way in), at the next tick due. */
static void s_closed(cluster_t *self, worker_t *w, int64_t now)
{
    w->closed_ms = now;
    if (now + CLOSED_GRACE_MS < self->first_expiry)
        self->first_expiry = now + CLOSED_GRACE_MS;
}

/* What a peer is banned by: its CURVE key, else its network address unless
   it is this machine's loopback (shared by every local peer), else nothing
   (its connection). */
static void s_peer_key(zmq_msg_t *body, char *key, size_t len)
{
    const char *user = zmq_msg_gets(body, "User-Id");
    const char *address = zmq_msg_gets(body, "Peer-Address");
    if (user && *user)
        snprintf(key, len, "%s", user);
    else if (address && *address && strncmp(address, "127.", 4) != 0 && strcmp(address, "::1") != 0)
        snprintf(key, len, "%s", address);
    else
        key[0] = '\0';
}

/* Counts a bad message from a peer; one that sends too many is banned: told
   so, dropped from the roster, and its connection cut (shutdown of the
   socket its messages came through: ZeroMQ has no call to drop one peer of
   a ROUTER, and the ban keeps it out when it reconnects). */
static void s_offence(cluster_t *self, const uint8_t *id, size_t id_len, zmq_msg_t *body, bad_kind_t kind,
                      const char *who)
{
    char key[64];
    s_peer_key(body, key, sizeof key);
    if (!guard_offence(self->guard, id, id_len, key, kind, who))
        return;
    hy_msg_t bye = {.command = HY_GOODBYE, .code = HY_BYE_BANNED, .name = "too many bad messages: banned for a while"};
    hy_send(self->router, id, id_len, &bye);
    worker_t *w = roster_find(self->roster, id, id_len);
    if (w)
        s_worker_gone(self, w, "banned", false);
    int fd = zmq_msg_get(body, ZMQ_SRCFD);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void s_on_hello(cluster_t *self, const uint8_t *id, size_t id_len, worker_t *w, const hy_msg_t *msg,
                       const char *key, const char *identity, const char *address, int fd, int fd_family,
                       bool private_socket)
{
    if (!w) {
        self->roster_changed = true;
        w = roster_add(self->roster, id, id_len, msg->name, msg->name_len, msg->threads, identity);
        w->fd = fd >= 0 && (size_t) fd < self->accepts_len ? fd : -1;
        w->fd_accepts = w->fd >= 0 ? self->accepts[fd] & ~FD_CLOSED : 0;
        if (w->fd >= 0 && (self->accepts[fd] & FD_CLOSED))   /* gone already, before its HELLO was read */
            s_closed(self, w, zclock_mono());
        memcpy(w->release, msg->release, msg->release_len);
        w->private_socket = private_socket;
        w->joined_ms = zclock_mono();
        snprintf(w->host, sizeof w->host, "%s", address && *address && fd_family != AF_UNIX ? address : "local");
        size_t cursor = 0, len;
        const char *name;
        char kinds[HY_MAX_KINDS * 16] = "";
        while (hy_kind_next(msg, &cursor, &name, &len)) {
            for (size_t i = 0; i < job_count() && i < 64; i++)
                if (strlen(job_at(i)->name) == len && memcmp(job_at(i)->name, name, len) == 0)
                    w->kinds |= 1ull << i;
            if (strlen(kinds) + len + 2 < sizeof kinds)
                snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%.*s", kinds[0] ? "," : "",
                         (int) len, name);
        }
        uint64_t held;
        if (log_limit(&self->join_log, &held))
            log_info("worker %s joined (release %s, %u threads, kinds %s, %zu workers%s%.8s%s)%s", w->name,
                     w->release, w->threads, kinds, roster_alive(self->roster), key && *key ? ", key " : "",
                     key ? key : "", key && *key ? "..." : "", log_held(held));
        long local = s_local_index(self, w);
        if (local >= 0)
            local_joined(self->local, (size_t) local);
    }
    /* A second HELLO on a connection changes nothing but is answered again. */
    w->heard_ms = zclock_mono();
    int64_t expiry = s_expiry(self, w);
    if (expiry < self->first_expiry)
        self->first_expiry = expiry;   /* the roster may have been empty */
    hy_msg_t welcome = {.command = HY_WELCOME, .session = self->session,
                        .heartbeat_ms = (uint32_t) self->config.heartbeat_ms,
                        .liveness = (uint32_t) self->config.liveness, .idle_ms = (uint32_t) self->idle_ms};
    s_send(self, w, &welcome);
    if (self->run) {
        s_maybe_start(self);
        s_adopt_orphans(self, w);
        self->dispatch_all = true;
    }
}

/* Accepts the bytes of unit u, which came from w (and, verified, from others). */
static void s_accept(cluster_t *self, worker_t *w, uint64_t u, const uint8_t *data, size_t len)
{
    run_completed(self->run, u);
    run_drop(self->run, u, true);   /* w no longer holds it */
    if (self->throttled)
        self->dispatch_all = true;   /* the late unit may be done: everyone gets units again */
    w->done++;
    w->total++;
    if (self->journal && journal_append(self->journal, u, data, len) < 0)
        s_fail(self, journal_error(self->journal));
    /* Other copies are no longer needed. */
    for (size_t i = 0; self->run->copies[u] && i < roster_size(self->roster); i++) {
        worker_t *other = roster_at(self->roster, i);
        if (other != w && other->alive && worker_inflight_remove(other, u) >= 0) {
            hy_msg_t cancel = {.command = HY_CANCEL, .job = self->job_id, .units = &u, .unit_count = 1};
            s_send(self, other, &cancel);
            worker_cancelled_add(other, u);
            run_drop(self->run, u, true);
        }
    }
}

/* The connection of identity iid, alive if one is, or NULL. */
static worker_t *s_worker_of(cluster_t *self, uint32_t iid)
{
    worker_t *found = NULL;
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (w->ident->iid == iid && (!found || w->alive))
            found = w;
    }
    return found;
}

/* A good payload for a unit under --verify: accepted once two different
   identities returned the same bytes. */
static void s_on_verified(cluster_t *self, worker_t *w, uint64_t u, const uint8_t *data, size_t len)
{
    const uint8_t *agreed;
    size_t agreed_len, liar_count;
    uint32_t liars[32], partner;
    if (verify_answers(self->verify, u) >= 31) {
        s_fail(self, "verification: too many answers");
        return;
    }
    verify_outcome_t outcome = verify_offer(self->verify, u, w->ident->iid, data, len, &agreed, &agreed_len, &partner,
                                            liars, &liar_count);
    if (outcome == VERIFY_MORE) {
        size_t answers = verify_answers(self->verify, u);
        uint64_t held;
        if (answers >= 2 && log_limit(&self->verify_log, &held))
            log_warn("verify: unit %" PRIu64 ": %zu different answers so far (latest from worker %s); asking another"
                     " worker%s", u, answers, w->name, log_held(held));
        if (answers > (size_t) self->config.max_attempts) {
            char reason[256];
            snprintf(reason, sizeof reason, "unit %" PRIu64 ": %zu workers answered and no two agree", u, answers);
            s_fail(self, reason);
        }
        run_avoid(self->run, u, w->ident->iid, AVOID_ANSWERED);
        /* The next opinion is not a re-issue; when w answered a copy, the
           unit may be copied again (its first holder may never answer). */
        s_release(self, u, false);
        s_check_units(self);
        return;
    }
    worker_t *other = s_worker_of(self, partner);
    char why[512] = "";
    int rc = self->kind->accept(self->plan->state, u, agreed, agreed_len, why, sizeof why);
    if (rc == JOB_WRITE_FAILED) {
        s_fail(self, why);
        return;
    }
    if (rc < 0) {
        /* Two identities agree on bytes the job refuses: both are broken or
           lying together. Neither is trusted again; others compute it. */
        verify_forget(self->verify, u);
        self->rejected++;
        char blame[600];
        snprintf(blame, sizeof blame, "its result was malformed (%s) and agreed with another worker's",
                 s_refusal(why));
        s_blame(self, w, u, blame);
        if (other) {
            run_avoid(self->run, u, other->ident->iid, AVOID_FAILED);
            s_exclude(self, other, "its result agreed with another worker's malformed one");
        }
        s_exclude(self, w, "its result was malformed");
        return;
    }
    for (size_t k = 0; k < liar_count; k++) {
        worker_t *liar = s_worker_of(self, liars[k]);
        if (!liar)
            continue;
        char lie[160];
        snprintf(lie, sizeof lie, "its result for unit %" PRIu64 " differs from two other workers'", u);
        log_warn("verify: unit %" PRIu64 ": worker %s is in the minority", u, liar->name);
        s_exclude(self, liar, lie);
        if (liar->ident->unchecked) {
            /* Sampling caught it: what it returned unchecked cannot be
               trusted, and the journal may hold it (this run's or an
               earlier one's, whose authors it does not know). */
            self->journal_tainted = self->journal != NULL;
            char reason[512];
            snprintf(reason, sizeof reason, "worker %s returned wrong bytes for unit %" PRIu64 " and %" PRIu64
                     " of its results were accepted unchecked (--verify %g): rerun with --verify to check every unit",
                     liar->name, u, liar->ident->unchecked, self->config.verify);
            s_fail(self, reason);
        } else if (self->resumed && self->config.verify < 1) {
            /* A liar is about, and units came from the journal of a run
               that checked only some (the journal's --verify is this
               run's): who computed the others is not known. */
            self->journal_tainted = true;
            char reason[512];
            snprintf(reason, sizeof reason, "worker %s returned wrong bytes for unit %" PRIu64 ", and %" PRIu64
                     " units came from the journal, whose workers are not known: run the job again (the journal"
                     " goes)", liar->name, u, self->resumed);
            s_fail(self, reason);
        }
    }
    if (other && other != w)
        other->done++;   /* its answer is in the output too */
    s_accept(self, w, u, data, len);
    verify_forget(self->verify, u);
}

/* One result of a RESULT message from w. */
static void s_on_result(cluster_t *self, worker_t *w, const hy_result_t *r, zmq_msg_t *body)
{
    uint64_t u = r->unit;
    if (u >= self->run->total) {
        self->unsolicited++;
        s_offence(self, w->id, w->id_len, body, BAD_UNSOLICITED, w->name);
        return;
    }
    int64_t sent = worker_inflight_remove(w, u);
    if (sent < 0) {
        if (worker_cancelled_has(w, u) || (self->run->state[u] == UNIT_DONE && self->run->copies[u])) {
            self->run->duplicates++;   /* cancelled, or a copy that lost the race */
            return;
        }
        if (!w->unsolicited++)
            log_warn("worker %s sent a result for unit %" PRIu64 ", which it does not hold (never given to it, or"
                     " answered already); dropped (the next ones are counted in the summary lines)", w->name, u);
        self->unsolicited++;
        s_offence(self, w->id, w->id_len, body, BAD_UNSOLICITED, w->name);
        return;
    }
    w->progress_ms = zclock_mono();
    if (w->stalled || w->probation) {
        w->stalled = w->probation = false;
        log_info("worker %s answers again", w->name);
    }
    if (r->status == HY_RESULT_RETURNED) {
        /* Given back, in order: no blame; but this connection is leaving,
           so it gets nothing more (its share goes to the others). */
        if (!w->draining) {
            w->draining = true;
            s_free_slot(self, w);
        }
        w->ident->paused_until = zclock_mono() + RETURN_PAUSE_MS;   /* reconnecting does not get it more */
        s_release(self, u, true);
        return;
    }
    if (self->run->state[u] == UNIT_DONE) {
        run_completed(self->run, u);   /* counts the duplicate */
        run_drop(self->run, u, true);
        return;
    }
    if (r->status == HY_RESULT_FAILED) {
        char why[300];
        snprintf(why, sizeof why, "%.*s", (int) r->len, (const char *) r->data);
        s_blame(self, w, u, why[0] ? why : "(no reason given)");
        return;
    }
    scheduler_record(self->sched, w->progress_ms - sent);
    worker_round_trip(w, w->progress_ms - sent);
    if (self->verify && verify_wants(self->verify, u)) {
        s_on_verified(self, w, u, r->data, r->len);
        return;
    }
    char why[512] = "";
    int rc = self->kind->accept(self->plan->state, u, r->data, r->len, why, sizeof why);
    if (rc == JOB_WRITE_FAILED) {
        s_fail(self, why);
        return;
    }
    if (rc < 0) {
        char blame[600];
        snprintf(blame, sizeof blame, "its result was malformed (%s)", s_refusal(why));
        self->rejected++;
        s_offence(self, w->id, w->id_len, body, BAD_REFUSED, w->name);
        s_blame(self, w, u, blame);
        return;
    }
    if (self->verify)
        w->ident->unchecked++;   /* a unit not chosen for checking */
    s_accept(self, w, u, r->data, r->len);
}

static void s_on_results(cluster_t *self, worker_t *w, const hy_msg_t *msg, zmq_msg_t *body)
{
    if (!self->run || msg->job != self->job_id) {
        if (self->last_job_id && msg->job == self->last_job_id) {
            self->stale += msg->result_count;   /* an ended job's: expected after its cancel */
        } else {
            self->unsolicited += msg->result_count;
            s_offence(self, w->id, w->id_len, body, BAD_UNSOLICITED, w->name);
        }
        return;
    }
    size_t cursor = 0;
    hy_result_t r;
    /* The sender may be banned (and gone) halfway through. */
    uint32_t uid = w->uid;
    while (hy_result_next(msg, &cursor, &r) && self->run && w->alive && w->uid == uid)
        s_on_result(self, w, &r, body);
    if (self->run && w->alive && w->uid == uid)
        s_dispatch(self, w);   /* its room is free again */
}

/* Reads and handles one message; false when none was waiting. */
static bool s_on_message(cluster_t *self)
{
    zmq_msg_t parts[2];
    zmq_msg_init(&parts[0]);
    zmq_msg_init(&parts[1]);
    void *handle = zsock_resolve(self->router);
    size_t count = 0;
    bool more = true;
    /* A routing id and one body; anything else is malformed. */
    while (more) {
        zmq_msg_t *part = &parts[count < 2 ? count : 1];
        if (count >= 2) {
            zmq_msg_close(part);
            zmq_msg_init(part);
        }
        if (zmq_msg_recv(part, handle, ZMQ_DONTWAIT) < 0)
            break;
        count++;
        more = zmq_msg_more(part);
    }
    if (count == 0) {
        zmq_msg_close(&parts[0]);
        zmq_msg_close(&parts[1]);
        return false;
    }
    const uint8_t *id = zmq_msg_data(&parts[0]);
    size_t id_len = zmq_msg_size(&parts[0]);
    zmq_msg_t *part = &parts[1];
    const uint8_t *body = zmq_msg_data(part);
    size_t body_len = zmq_msg_size(part);
    worker_t *w = roster_find(self->roster, id, id_len);
    const char *who = w ? w->name : "an unknown peer";
    bool ours = count == 2 && body_len >= 4 && body[0] == 'H' && body[1] == 'Y';
    hy_msg_t msg;
    int rc = HY_EMALFORMED;

    if (!w && guard_any_bans(self->guard)) {
        /* A banned peer is dropped unread. */
        char key[64];
        s_peer_key(part, key, sizeof key);
        if (guard_banned(self->guard, id, id_len, key)) {
            guard_dropped(self->guard);
            goto done;
        }
    }
    if (!w && ours && body[2] == HY_PROTOCOL_VERSION && body[3] != HY_HELLO) {
        /* A stranger's message other than HELLO: not worth decoding. It is
           told (at most once a second) to introduce itself. */
        if (body[3] != HY_GOODBYE && guard_tell_stranger(self->guard, id, id_len)) {
            hy_msg_t bye = {.command = HY_GOODBYE, .code = HY_BYE_UNKNOWN, .name = "unknown worker: say HELLO"};
            hy_send(self->router, id, id_len, &bye);
        }
        if (body[3] == HY_RESULT && roster_late(self->roster, id, id_len)) {
            /* Computed before it heard it was lost (the manager dropped it,
               not it the manager): dropped, not held against it. */
            self->stale++;
        } else if (body[3] == HY_RESULT) {
            self->unsolicited += self->run != NULL;
            s_offence(self, id, id_len, part, BAD_UNSOLICITED, who);
        }
        goto done;
    }
    rc = count == 2 ? hy_decode(body, body_len, &msg) : HY_EMALFORMED;
    if (rc == HY_EVERSION) {
        if (guard_tell_stranger(self->guard, id, id_len)) {
            if (guard_count(self->guard, BAD_VERSION) == 0)
                log_warn("a peer speaks protocol version %u; this manager speaks version %u: "
                         "run the same hyades release on both (dropped)", msg.peer_version, HY_PROTOCOL_VERSION);
            hy_msg_t bye = {.command = HY_GOODBYE, .code = HY_BYE_VERSION,
                            .name = "protocol version mismatch: run the same hyades release on both"};
            hy_send(self->router, id, id_len, &bye);
        }
        s_offence(self, id, id_len, part, BAD_VERSION, who);
    } else if (rc < 0) {
        if (guard_count(self->guard, BAD_MALFORMED) == 0)
            log_warn("dropped a malformed message from %s (more are counted in the summary lines)", who);
        /* A HELLO we cannot read gets an answer, so that its sender knows why. */
        if (!w && ours && body[3] == HY_HELLO && guard_tell_stranger(self->guard, id, id_len)) {
            hy_msg_t bye = {.command = HY_GOODBYE, .code = HY_BYE_REFUSED,
                            .name = "malformed HELLO (name 1-255 printable bytes, threads 1-1024, heartbeat"
                                    " 10-600000 ms, release 1-32 printable bytes, 1-32 kinds of a-z 0-9 _ -,"
                                    " nothing after)"};
            hy_send(self->router, id, id_len, &bye);
        }
        s_offence(self, id, id_len, part, BAD_MALFORMED, who);
    } else if (msg.command == HY_HELLO) {
        char identity[64];
        s_peer_key(part, identity, sizeof identity);
        struct sockaddr_storage sa = {0};
        socklen_t sa_len = sizeof sa;
        int fd = zmq_msg_get(part, ZMQ_SRCFD);
        if (fd < 0 || getsockname(fd, (struct sockaddr *) &sa, &sa_len) < 0)
            sa.ss_family = AF_UNSPEC;
        s_on_monitor(self);   /* its connection's acceptance, and the closes before it */
        /* Only a peer in our private directory (the local workers) can have
           come through its socket; a name like "local-1" proves nothing. */
        char private_path[sizeof self->ipc_dir + 16];
        snprintf(private_path, sizeof private_path, "%s/manager", self->ipc_dir);
        bool private_socket = self->ipc_dir[0] && sa.ss_family == AF_UNIX
                              && strncmp(((struct sockaddr_un *) &sa)->sun_path, private_path,
                                         sizeof ((struct sockaddr_un *) &sa)->sun_path) == 0;
        s_on_hello(self, id, id_len, w, &msg, zmq_msg_gets(part, "User-Id"), identity,
                   zmq_msg_gets(part, "Peer-Address"), fd, sa.ss_family, private_socket);
    } else if (!w) {
        s_offence(self, id, id_len, part, BAD_UNEXPECTED, who);   /* a stranger's GOODBYE, or a manager's command */
    } else {
        w->heard_ms = zclock_mono();
        switch (msg.command) {
        case HY_HEARTBEAT: self->beats_read++; break;
        case HY_RESULT: s_on_results(self, w, &msg, part); break;
        case HY_GOODBYE: {
            char why[300];
            snprintf(why, sizeof why, "said goodbye: %s: %.*s", hy_bye_name(msg.code), (int) msg.name_len, msg.name);
            s_worker_gone(self, w, why, false);
            break;
        }
        default:
            if (guard_count(self->guard, BAD_UNEXPECTED) == 0)
                log_warn("dropped unexpected %s from worker %s", hy_command_name(msg.command), w->name);
            s_offence(self, w->id, w->id_len, part, BAD_UNEXPECTED, who);
        }
    }
done:
    zmq_msg_close(&parts[0]);
    zmq_msg_close(&parts[1]);
    return true;
}

/* The router's connection events waiting, in order. A failed CURVE
   handshake (a worker with a key we do not allow, or with the wrong manager
   key) is said at a bounded rate, with keys only. A connection accepted on a file
   descriptor is counted there, so that a worker knows its own among those
   that used the descriptor; when a worker's connection closes (its process
   died, or its host), it is lost a grace later (s_closed) instead of after
   its silence. */
static void s_on_monitor(cluster_t *self)
{
    while (self->monitor && (zsock_events(self->monitor) & ZMQ_POLLIN)) {
        char what[300];
        uint64_t held;
        int fd = -1, event = hy_monitor_read(self->monitor, what, sizeof what, &fd);
        /* (without keys, a handshake that fails is a connection that closed
           early: not a CURVE matter, and its close is seen below) */
        if (event == HY_EVENT_HANDSHAKE_FAILED && self->config.cert && log_limit(&self->handshake_log, &held))
            log_warn("a peer failed the CURVE handshake at %s%s", what, log_held(held));
        if (event == HY_EVENT_ACCEPTED && fd >= 0 && fd < MAX_TRACKED_FD) {
            if ((size_t) fd >= self->accepts_len) {
                size_t len = (size_t) fd * 2 + 64;
                uint32_t *grown = realloc(self->accepts, len * sizeof *grown);
                if (!grown)
                    continue;   /* its workers are found lost by their silence */
                memset(grown + self->accepts_len, 0, (len - self->accepts_len) * sizeof *grown);
                self->accepts = grown;
                self->accepts_len = len;
            }
            self->accepts[fd] = (self->accepts[fd] & ~FD_CLOSED) + 1;
        }
        if (event == HY_EVENT_DISCONNECTED && fd >= 0 && (size_t) fd < self->accepts_len) {
            int64_t now = zclock_mono();
            for (size_t i = 0; i < roster_size(self->roster); i++) {
                worker_t *w = roster_at(self->roster, i);
                if (w->alive && w->fd == fd && w->fd_accepts == (self->accepts[fd] & ~FD_CLOSED) && !w->closed_ms)
                    s_closed(self, w, now);
            }
            self->accepts[fd] |= FD_CLOSED;   /* a HELLO of it still unread is from a connection gone */
        }
    }
}

/* ------------------------------------------------------------ timers */

/* A local worker process exited: no need to wait for its silence. */
static void s_local_exited(void *arg, size_t index)
{
    cluster_t *self = arg;
    self->frozen_since[index] = 0;   /* its next process is another */
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (w->alive && s_local_index(self, w) == (long) index)
            s_worker_gone(self, w, "its process exited", true);
    }
}

/* A local worker lost to silence is killed and started again once it has
   not come back on another connection for a grace: frozen or stopped. One
   that was only late (a loaded machine, a short --heartbeat) comes back by
   itself within it. */
static void s_restart_frozen_locals(cluster_t *self, int64_t now)
{
    int64_t window = self->config.heartbeat_ms * self->config.liveness;
    int64_t grace = window > LOCAL_FROZEN_GRACE_MS ? window : LOCAL_FROZEN_GRACE_MS;
    for (size_t i = 0; self->frozen_since && i < (size_t) self->config.local; i++) {
        if (!self->frozen_since[i])
            continue;
        if (s_locals_here(self, (long) i) > 0) {
            self->frozen_since[i] = 0;
        } else if (now - self->frozen_since[i] >= grace) {
            local_kill(self->local, i);
            self->frozen_since[i] = 0;
        }
    }
}

/* A worker that holds units and answered nothing for the straggler limit is
   stalled: it keeps the units it is computing (others copy them when idle)
   but gives back those queued behind them, and its static slot. */
static void s_check_stalled(cluster_t *self, worker_t *w, int64_t now)
{
    if (w->stalled && w->inflight_count == 0) {
        w->stalled = false;
        w->probation = true;
        log_info("worker %s holds no units any more: one unit at a time for it until it answers", w->name);
        return;
    }
    if (w->stalled || w->inflight_count == 0 || now - w->progress_ms < self->straggler_after)
        return;
    w->stalled = true;
    size_t queued = w->inflight_count > w->threads ? w->inflight_count - w->threads : 0;
    char taken[80] = "";
    if (queued)
        snprintf(taken, sizeof taken, "; taking back the %zu units queued there", queued);
    log_warn("worker %s has answered nothing for %" PRId64 " ms: no new units for it until it does%s%s", w->name,
             now - w->progress_ms, taken,
             self->config.schedule == SCHED_STATIC && w->slot >= 0 ? "; its share of the job goes to the others" : "");
    while (w->inflight_count > w->threads)
        s_take_back(self, w, w->inflight[w->inflight_count - 1].unit, true);
    s_free_slot(self, w);
}

/* Silences, stalls and stragglers are measured in the manager's own
   running time: when it stood still (stopped, swapped out, busy writing a
   batch job's output) since it last read its socket, its workers' messages
   waited there unread, and every clock that counts their silence moves on
   by that time. Called before anything is read or sent. */
static void s_check_stood_still(cluster_t *self)
{
    int64_t now = zclock_mono(), still = self->read_at ? now - self->read_at - self->tick_ms : 0;
    self->read_at = now;
    if (still <= self->config.heartbeat_ms - self->tick_ms)
        return;
    /* Workers wait the idle heartbeat x their own --liveness (3 by default)
       for the manager: past that they give up, rejoin, and their units start
       over. */
    uint64_t held;
    bool waited = self->output_waited;   /* for a descriptor, beating all the while: said already */
    self->output_waited = false;
    if (still > self->idle_ms * 3 && self->run && !waited && log_limit(&self->still_log, &held))
        log_warn("this manager stood still for %" PRId64 " ms (stopped, or starved of CPU): workers that wait less"
                 " for it rejoin and their units start over%s", still, log_held(held));
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (!w->alive)
            continue;
        w->heard_ms += still;
        w->busy_ms += still;
        w->progress_ms += still;
        for (size_t k = 0; k < w->inflight_count; k++)
            w->inflight[k].sent_ms += still;
    }
    self->first_expiry = 0;
}

/* The manager's heartbeat to every worker, when it is due. */
static void s_heartbeat(cluster_t *self, int64_t now)
{
    if (now < self->next_heartbeat)
        return;
    hy_msg_t beat = {.command = HY_HEARTBEAT};
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (w->alive)
            s_send(self, w, &beat);
    }
    self->next_heartbeat = now + self->idle_ms;
}

static void s_on_tick(cluster_t *self)
{
    int64_t now = zclock_mono();
    /* After a pause of the manager itself (s_check_stood_still), no worker
       is taken for frozen. */
    bool paused = self->last_tick && now - self->last_tick > self->config.heartbeat_ms;
    self->last_tick = now;
    if (self->sched)
        self->straggler_after = scheduler_straggler_ms(self->sched, self->config.straggler_ms);
    if (self->journal && now >= self->next_flush) {
        if (journal_flush(self->journal) < 0)
            s_fail(self, journal_error(self->journal));
        self->next_flush = now + JOURNAL_FLUSH_MS;
    }
    /* Between jobs nothing but silence needs the roster: it is walked only
       once the earliest expiry may have come (a message only pushes its
       sender's expiry later, and s_on_hello lowers first_expiry for a
       newcomer). */
    bool walk = self->sched || now >= self->first_expiry;
    int64_t first_expiry = INT64_MAX;
    for (size_t i = 0; walk && i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        int64_t expiry = w->alive ? s_expiry(self, w) : 0;
        if (w->alive && now < expiry && expiry < first_expiry)
            first_expiry = expiry;
        if (w->alive && w->closed_ms && now - w->closed_ms >= CLOSED_GRACE_MS) {
            s_worker_gone(self, w, "its connection closed", true);
        } else if (w->alive && w->closed_ms && w->closed_ms + CLOSED_GRACE_MS < first_expiry) {
            first_expiry = w->closed_ms + CLOSED_GRACE_MS;
        } else if (w->alive && now >= expiry) {
            char why[64];
            int64_t from, allowance = s_allowance(self, w, &from);
            snprintf(why, sizeof why, "silent for %" PRId64 " ms%s", allowance,
                     from > w->heard_ms ? " since it got units" : "");
            s_worker_gone(self, w, why, true);
            /* A local one silent so long, and not back on another
               connection, may be frozen or stopped: if it is still not
               back after a grace, it is started again, a worker the job
               can count on (s_restart_frozen_locals). */
            long local = s_local_index(self, w);
            if (local >= 0 && !paused && s_locals_here(self, local) == 0 && !self->frozen_since[local])
                self->frozen_since[local] = now;
        } else if (w->alive && self->sched) {
            s_check_stalled(self, w, now);
            /* Static: a worker with no share takes the shares nobody holds
               (their owners lost or stalled before it came). */
            if (w->slot < 0 && !w->stalled && !w->draining)
                s_adopt_orphans(self, w);
        }
    }
    if (walk)
        self->first_expiry = first_expiry;
    s_heartbeat(self, now);
    guard_tick(self->guard, false);
    if (self->roster_changed)
        roster_prune(self->roster, true);   /* gone with nothing to report: freed at once */
    s_restart_frozen_locals(self, now);
    local_supervise(self->local, s_local_exited, self);
    if (self->waiting[0])
        s_check_units(self);   /* a unit waiting for a worker that may no longer come */
    if (self->local && local_gave_up(self->local) && !self->config.bind && roster_alive(self->roster) == 0)
        s_fail(self, "all local workers exited and keep exiting");
    else if (self->local && !self->sched && self->run && !self->config.bind
             && local_live(self->local) < (size_t) self->config.min_workers) {
        /* Waiting for more workers than can ever come: only local ones can. */
        char why[200];
        size_t left = local_live(self->local);
        snprintf(why, sizeof why, "it waits for %" PRId64 " workers, and only %zu local worker%s left (the others "
                 "exited and keep exiting)", self->config.min_workers, left, left == 1 ? " is" : "s are");
        s_fail(self, why);
    }
}

static void s_show_progress(cluster_t *self)
{
    const run_t *run = self->run;
    char line[512];
    if (!self->sched) {
        snprintf(line, sizeof line, "%s: %s", self->kind->name, self->waiting);
    } else {
        double secs = (zclock_mono() - self->started_ms) / 1000.0;
        double rate = secs > 0 ? run->done / secs : 0;
        double eta = rate > 0 ? (run->total - run->done) / rate : 0;
        snprintf(line, sizeof line, "%s: %" PRIu64 "/%" PRIu64 " units (%.0f%%), %.0f units/s, ETA %.1f s, %zu workers",
                 self->kind->name, run->done, run->total, run->total ? 100.0 * run->done / run->total : 100.0,
                 rate, eta, s_capable_count(self));
        double value;
        char text[80];
        if (self->kind->estimate && self->kind->estimate(self->plan->state, &value, text, sizeof text) == 0)
            snprintf(line + strlen(line), sizeof line - strlen(line), ", %s", text);
    }
    log_status(line);
}

/* ------------------------------------------------------------ life cycle */

/* Removes dir and everything below it (our private directory only). */
/* Copies every public certificate of dir into the directory to. */
static int s_copy_certs(const char *dir, const char *to, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read --allow %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || (n > 7 && streq(e->d_name + n - 7, "_secret")))
            continue;
        char from[4096], path[4096];
        snprintf(from, sizeof from, "%s/%s", dir, e->d_name);
        snprintf(path, sizeof path, "%s/%s", to, e->d_name);
        zcert_t *cert = zcert_load(from);
        if (cert) {
            zcert_save_public(cert, path);
            zcert_destroy(&cert);
        }
    }
    closedir(d);
    return 0;
}

/* CURVE on the router: our key pair, zauth allowing the certificates of
   --allow (and of our local workers, whose key pair we make here). */
static int s_secure(cluster_t *self, char *err, size_t errlen)
{
    struct stat st;
    if (stat(self->config.allow, &st) == 0 && (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        /* Anyone could drop a certificate in and be let in. */
        snprintf(err, errlen, "--allow %s is writable by every user: chmod o-w it", self->config.allow);
        return -1;
    }
    zcert_t *cert = curve_load(self->config.cert, true, err, errlen);
    if (!cert)
        return -1;
    const char *allowed = self->config.allow;
    char dir[160];
    if (self->config.local > 0) {
        /* Each local worker gets a key pair of its own (its identity),
           allowed beside --allow. */
        char path[256];
        snprintf(dir, sizeof dir, "%s/allowed", self->ipc_dir);
        int rc = mkdir(dir, 0700) == 0 && s_copy_certs(allowed, dir, err, errlen) == 0 ? 0 : -1;
        for (int64_t i = 1; rc == 0 && i <= self->config.local; i++) {
            zcert_t *local = zcert_new();
            snprintf(path, sizeof path, "%s/local-worker-%" PRId64, self->ipc_dir, i);
            rc = zcert_save(local, path);
            snprintf(path, sizeof path, "%s/local-worker-%" PRId64, dir, i);
            if (rc == 0)
                rc = zcert_save_public(local, path);
            zcert_destroy(&local);
        }
        snprintf(path, sizeof path, "%s/manager.pub", self->ipc_dir);
        if (rc == 0)
            rc = zcert_save_public(cert, path);
        if (rc != 0) {
            if (!err[0])
                snprintf(err, errlen, "cannot write keys in %s: %s", self->ipc_dir, strerror(errno));
            zcert_destroy(&cert);
            return -1;
        }
        allowed = dir;
    } else if (access(allowed, R_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot read --allow %s: %s", allowed, strerror(errno));
        zcert_destroy(&cert);
        return -1;
    }
    self->auth = zactor_new(zauth, NULL);
    zstr_sendx(self->auth, "CURVE", allowed, NULL);
    zsock_wait(self->auth);
    int rc = curve_server_setup(self->router, cert, err, errlen);
    zcert_destroy(&cert);
    size_t skipped = 0;
    char first[256] = "";
    if (rc == 0 && curve_count_certs(self->config.allow, &skipped, first, sizeof first) == 0)
        log_warn("no certificates in --allow %s: no remote worker can join until the manager is restarted with some",
                 self->config.allow);
    if (rc == 0 && skipped)
        log_warn("--allow %s: %zu entries are not readable certificates and are ignored (%s%s)", self->config.allow,
                 skipped, first, skipped > 1 ? ", ..." : "");
    return rc;
}

/* Two managers started at the same instant on one ipc:// path would both
   find it free and both bind, one of them then waiting for good: the one
   that locks PATH.lock first goes on, the other is refused. The lock lasts
   as long as this process (the file stays, empty, readable by all so that
   another user's manager may take it after). Returns the locked
   descriptor, -1 when there is nothing to lock (or a lock file another
   user made unreadable: then only the check of the socket guards the
   path, as without a lock), -2 with why written when it cannot be had. */
/* The file an ipc:// endpoint binds, or NULL: not ipc, an abstract name
   (one taken fails to bind), or "*" (a fresh temporary path). */
static const char *s_ipc_path(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) != 0 || endpoint[6] == '@' || strcmp(endpoint + 6, "*") == 0)
        return NULL;
    return endpoint + 6;
}

static int s_ipc_lock(const char *endpoint, char *why, size_t why_len)
{
    const char *at = s_ipc_path(endpoint);
    if (!at)
        return -1;
    struct stat st;
    if (lstat(at, &st) == 0 && !S_ISSOCK(st.st_mode))
        return -1;   /* refused without binding (s_ipc_problem): no lock file beside it */
    char path[PATH_MAX];
    if ((size_t) snprintf(path, sizeof path, "%s.lock", at) >= sizeof path)
        return -1;   /* ZeroMQ refuses such a path anyway */
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0 && errno == EACCES && access(path, F_OK) == 0)
        return -1;
    if (fd < 0) {
        snprintf(why, why_len, "its lock file %s cannot be opened: %s", path, strerror(errno));
        return -2;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        snprintf(why, why_len, "another manager is starting or listening there (it holds %s)", path);
        return -2;
    }
    return fd;
}

/* What keeps the manager from binding the ipc:// endpoint given, or NULL:
   ZeroMQ removes whatever is at the path and binds anew, so a file there
   would be lost, and a manager listening there would wait for good for
   workers that come here instead. (A socket file nobody listens on is
   left from a process gone: binding over it is right.) */
static const char *s_ipc_problem(const char *endpoint)
{
    const char *at = s_ipc_path(endpoint);
    struct stat st;
    if (!at || lstat(at, &st) != 0)
        return NULL;
    if (!S_ISSOCK(st.st_mode))
        return "something other than a socket is there, and binding would remove it";
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(at) >= sizeof sa.sun_path)
        return NULL;   /* ZeroMQ refuses it */
    strcpy(sa.sun_path, at);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return NULL;
    /* Only a socket nobody answers on is stale: one of another kind
       (datagrams) refuses a stream connection otherwise, and is in use.
       The connect does not wait: a listener that never accepts, its
       backlog full, would hold it (and the manager, deaf to signals)
       for good; it answers EAGAIN, in use. */
    bool stale = connect(fd, (struct sockaddr *) &sa, sizeof sa) != 0 && errno == ECONNREFUSED;
    close(fd);
    return stale ? NULL : "a manager (or another program) is listening there";
}

cluster_t *cluster_new(const cluster_config_t *config, char *err, size_t errlen)
{
    cluster_t *self = calloc(1, sizeof *self);
    self->config = *config;
    self->bind_lock = -1;
    self->idle_ms = config->heartbeat_ms * IDLE_FACTOR < HY_MAX_HEARTBEAT_MS ? config->heartbeat_ms * IDLE_FACTOR
                                                                             : HY_MAX_HEARTBEAT_MS;
    self->session = s_random64();
    self->roster = roster_new();
    self->guard = guard_new();
    self->join_log = self->leave_log = (log_limit_t) {.interval_ms = 5000, .burst = 50};
    self->copy_log = (log_limit_t) {.interval_ms = 5000, .burst = 20};
    self->waiting_log = (log_limit_t) {.interval_ms = 5000, .burst = 10};
    self->verify_log = (log_limit_t) {.interval_ms = 5000, .burst = 10};
    self->still_log = (log_limit_t) {.interval_ms = 5000, .burst = 1};
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->router) {   /* no file descriptor, thread or memory left for ZeroMQ */
        snprintf(err, errlen, "cannot open the manager's socket: %s", zmq_strerror(zmq_errno()));
        cluster_destroy(&self);
        return NULL;
    }
    hy_socket_setup(self->router);
    /* A connection that has not finished ZeroMQ's handshake (and CURVE's)
       by then is dropped: each holds a descriptor, and a flood of them held
       open would keep workers out until they go (ZeroMQ's default: 30 s). */
    zsock_set_handshake_ivl(self->router, HANDSHAKE_MS);
    /* Messages waiting per peer: a worker sends a few batches at a time, and
       a stranger's flood of large messages waits in few of them (set before
       the binds, which copy it). */
    zsock_set_rcvhwm(self->router, ROUTER_RCVHWM);
    self->monitor = hy_monitor_new(self->router, true);
    self->handshake_log.interval_ms = 5000;
    err[0] = '\0';
    /* Local workers use a socket in a directory only we can enter. */
    if (config->local > 0 && !(self->privdir = privdir_new(err, errlen))) {
        cluster_destroy(&self);
        return NULL;
    }
    snprintf(self->ipc_dir, sizeof self->ipc_dir, "%s", self->privdir ? privdir_path(self->privdir) : "");
    if (config->cert && s_secure(self, err, errlen) < 0) {
        cluster_destroy(&self);
        return NULL;
    }
    if (config->bind) {
        char lock_why[PATH_MAX + 100] = "";
        self->bind_lock = s_ipc_lock(config->bind, lock_why, sizeof lock_why);
        const char *taken = lock_why[0] ? lock_why : s_ipc_problem(config->bind);   /* (it connects: once) */
        if (taken) {
            snprintf(err, errlen, "cannot bind %s: %s", config->bind, taken);
            cluster_destroy(&self);
            return NULL;
        }
        if (strchr(config->bind, '['))
            zsock_set_ipv6(self->router, 1);   /* an IPv6 address: tcp://[::1]:5555 */
        if (zsock_bind(self->router, "%s", config->bind) < 0) {
            snprintf(err, errlen, "cannot bind %s: %s", config->bind, zmq_strerror(zmq_errno()));
            cluster_destroy(&self);
            return NULL;
        }
        /* The endpoint as bound: with port 0 or *, the port the system gave. */
        char *bound = zsock_last_endpoint(self->router);
        log_info("listening on %s%s", bound, config->cert ? " (CURVE: only allowed keys, encrypted)" : "");
        snprintf(self->bound, sizeof self->bound, "%s", bound ? bound : "");
        zstr_free(&bound);
    }
    if (config->local > 0) {
        self->frozen_since = calloc((size_t) config->local, sizeof *self->frozen_since);
        char endpoint[128], cert[128], manager[128];
        snprintf(endpoint, sizeof endpoint, "ipc://%s/manager", self->ipc_dir);
        snprintf(cert, sizeof cert, "%s/local-worker", self->ipc_dir);   /* -1, -2, ...: local.c adds the number */
        snprintf(manager, sizeof manager, "%s/manager.pub", self->ipc_dir);
        if (zsock_bind(self->router, "%s", endpoint) < 0) {
            snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
            cluster_destroy(&self);
            return NULL;
        }
        self->local = local_start(endpoint, (size_t) config->local, config->heartbeat_ms, config->liveness,
                                  config->cert ? cert : NULL, config->cert ? manager : NULL, err, errlen);
        if (!self->local) {
            cluster_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void cluster_last_job(cluster_t *self) { self->last = true; }

void cluster_destroy(cluster_t **self_p)
{
    cluster_t *self = *self_p;
    if (!self)
        return;
    bool stopped = signals_count() > 0;
    hy_msg_t bye = {.command = HY_GOODBYE, .code = stopped ? HY_BYE_STOPPING : HY_BYE_FINISHED,
                    .name = stopped ? "manager interrupted" : "manager exiting"};
    for (size_t i = 0; self->router && i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (w->alive)
            s_send(self, w, &bye);
    }
    local_stop(&self->local);
    if (self->router)
        zsock_set_linger(self->router, 200);   /* the goodbyes may leave after the close */
    hy_monitor_close(self->router, &self->monitor);
    free(self->accepts);
    free(self->strays);
    zsock_destroy(&self->router);
    zactor_destroy(&self->auth);
    if (self->privdir) {
        size_t swept = privdir_destroy(&self->privdir);   /* and those of managers killed before us */
        if (swept)
            log_info("removed %zu private director%s left by managers that were killed", swept,
                     swept == 1 ? "y" : "ies");
    }
    roster_destroy(&self->roster);
    guard_destroy(&self->guard);
    free(self->frozen_since);
    if (self->bind_lock >= 0)
        close(self->bind_lock);
    free(self);
    *self_p = NULL;
}

/* A unit read back from the journal: accepted as if a worker had sent it. */
static void s_replay(void *arg, uint64_t unit, const uint8_t *data, size_t len)
{
    cluster_t *self = arg;
    if (unit >= self->run->total || self->run->state[unit] == UNIT_DONE)
        return;
    char why[512] = "";
    int rc = self->kind->accept(self->plan->state, unit, data, len, why, sizeof why);
    if (rc == JOB_WRITE_FAILED) {
        s_fail(self, why);
        return;
    }
    if (rc < 0) {
        log_warn("journal: unit %" PRIu64 " refused by the job (%s); computing it again", unit, s_refusal(why));
        return;
    }
    run_completed(self->run, unit);
    self->resumed++;
}

/* Bad messages so far, but for unsolicited results (counted by the job). */
static uint64_t s_bad_messages(const cluster_t *self)
{
    uint64_t n = 0;
    for (int k = 0; k < BAD_KINDS; k++)
        n += k == BAD_UNSOLICITED || k == BAD_REFUSED ? 0 : guard_count(self->guard, (bad_kind_t) k);
    return n;
}

/* Fills the report of the job that just ended. */
static void s_report(cluster_t *self, job_report_t *report)
{
    const run_t *run = self->run;
    report->ok = !self->failure[0];
    snprintf(report->error, sizeof report->error, "%s", self->failure);
    report->units = run ? run->total : self->plan->units;
    report->done = run ? run->done : 0;
    report->reissued = run ? run->reissued : 0;
    report->duplicates = run ? run->duplicates : 0;
    report->speculative = run ? run->speculative : 0;
    report->rebalanced = self->stolen;
    report->resumed = self->resumed;
    report->rejected = self->rejected;
    report->failed = self->failed;
    report->unsolicited = self->unsolicited;
    report->malformed = s_bad_messages(self) - self->bad0;
    report->verified = self->verify ? verify_verified(self->verify) : 0;
    report->mismatches = self->verify ? verify_mismatches(self->verify) : 0;
    report->restarts = local_restarts(self->local) - self->restarts0;
    int64_t now_us = zclock_usecs();   /* microseconds: a short job's rate is not 0 units/s */
    report->seconds = (now_us - self->t0_us) / 1e6;
    report->waited = ((self->sched ? self->started_us : now_us) - self->t0_us) / 1e6;
    report->cpu_seconds = s_cpu_seconds() - self->cpu0;
    report->workers = calloc(roster_size(self->roster) + 1, sizeof *report->workers);
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (!w->alive && w->done == 0 && w->failed == 0 && !w->ident->excluded)
            continue;
        report_worker_t *rw = &report->workers[report->worker_count++];
        snprintf(rw->name, sizeof rw->name, "%s", w->name);
        rw->units = w->done;
        rw->failed = w->failed;
        snprintf(rw->excluded, sizeof rw->excluded, "%s", w->ident->why);
        snprintf(rw->host, sizeof rw->host, "%s", w->host);
        rw->threads = w->threads;
        rw->state = w->ident->excluded ? "excluded"
                    : !w->alive        ? "lost"
                    : w->stalled       ? "stalled"
                    : w->inflight_count ? "working"
                                        : "idle";
        rw->inflight = w->inflight_count;
        rw->total = w->total;
        long local = s_local_index(self, w);
        rw->restarts = local >= 0 ? local_restarts_of(self->local, (size_t) local) : 0;
        rw->rate = report->seconds > 0 ? w->done / report->seconds : 0;
    }
    report->workers_connected = roster_alive(self->roster);
    report->args = self->args;
    report->has_preview = self->kind->preview != NULL;
    report->has_estimate = self->kind->estimate
                           && self->kind->estimate(self->plan->state, &report->estimate, report->estimate_text,
                                                   sizeof report->estimate_text) == 0;
}

/* The live status and metrics for the dashboard (final: the job just ended,
   report holds its summary). A picture of the output while one is asked for. */
static void s_publish(cluster_t *self, job_report_t *report, bool final)
{
    dashboard_t *dash = self->config.dashboard;
    job_report_t live;
    if (!final) {
        memset(&live, 0, sizeof live);
        live.job = self->kind->name;
        live.output = self->output;
        s_report(self, &live);
        report = &live;
        report->state = self->sched ? "running" : "waiting";
        report->inflight = self->run ? self->run->inflight : 0;
        uint64_t done = report->done - self->resumed;
        double secs = self->sched ? (zclock_mono() - self->started_ms) / 1000.0 : 0;
        report->rate = secs > 0 ? done / secs : 0;
        report->eta = report->rate > 0 ? (report->units - report->done) / report->rate : -1;
    } else {
        report->state = report->ok ? "done" : "failed";
        report->eta = report->ok ? 0 : -1;
        report->rate = report->seconds > 0 ? report->done / report->seconds : 0;
        report_add_totals(&self->totals, report);
    }
    report_totals_t sum = self->totals;   /* a finished job's counters are in it already */
    if (!final)
        report_add_counters(&sum, report);
    char *status = NULL, *metrics = NULL;
    size_t status_len = 0, metrics_len = 0;
    FILE *s = open_memstream(&status, &status_len), *m = open_memstream(&metrics, &metrics_len);
    if (s && m) {
        report_status_json(report, s);
        report_metrics(report, &sum, s_cpu_seconds(), m);
    }
    if (s)
        fclose(s);
    if (m)
        fclose(m);
    if (status && metrics)
        dashboard_publish(dash, status, status_len, metrics, metrics_len, report->has_preview);
    free(status), free(metrics);
    if (!final)
        report_clear(&live);
    int64_t now = zclock_mono();
    /* Only while somebody asks for one; the last one too, whatever the time. */
    if (self->kind->preview && dashboard_picture_wanted(dash) && (final || now >= self->next_picture)) {
        job_picture_t picture;
        if (self->kind->preview(self->plan->state, DASHBOARD_PREVIEW_SIDE, &picture) == 0)
            dashboard_publish_picture(dash, &picture);
        self->next_picture = now + DASHBOARD_PREVIEW_MS;
    }
}

/* The final write found no descriptor left: after the last job the
   manager takes no new connection, or ZeroMQ's accept loop would take each
   descriptor a flood gives back before the output could (the workers
   connected through --bind lose their connection with it, and with it the
   goodbye). Meanwhile the workers get their heartbeats: silent for the
   idle heartbeat x their --liveness (12 s by default), they would reconnect,
   and a local worker's reconnection, short of a descriptor, makes libzmq's
   ipc listener abort. A stop signal ends the wait: false. */
static bool s_short_of_descriptors(void *arg, int waited_ms)
{
    cluster_t *self = arg;
    if (waited_ms == 0 && self->last && self->bound[0] && zsock_unbind(self->router, "%s", self->bound) == 0) {
        log_warn("no longer listening on %s, for the output", self->bound);
        self->bound[0] = '\0';
    }
    s_heartbeat(self, zclock_mono());
    self->output_waited = true;
    return signals_count() == 0;   /* Ctrl-C: the operator will not wait */
}

int cluster_run(cluster_t *self, const job_kind_t *kind, job_plan_t *plan, const char *output, const char *args,
                job_report_t *report)
{
    memset(report, 0, sizeof *report);
    report->job = kind->name;
    report->output = output;
    self->t0 = zclock_mono();
    self->t0_us = zclock_usecs();
    self->cpu0 = s_cpu_seconds();
    self->args = args;
    self->output = output;
    self->next_publish = self->next_picture = 0;
    self->kind = kind;
    self->kind_bit = 0;
    for (size_t i = 0; i < job_count() && i < 64; i++)
        if (job_at(i) == kind)
            self->kind_bit = 1ull << i;
    self->plan = plan;
    self->job_id = s_random64();
    self->run = run_new(plan->units);
    self->verify = self->config.verify > 0 ? verify_new(self->config.verify, self->job_id) : NULL;
    self->failure[0] = '\0';
    self->waiting[0] = '\0';
    self->throttled = false;
    self->rejected = self->failed = self->unsolicited = self->stale = self->stolen = 0;
    self->last_blame[0] = '\0';
    self->restarts0 = local_restarts(self->local);
    self->bad0 = s_bad_messages(self);
    self->straggler_after = STRAGGLER_FACTOR * self->config.straggler_ms;
    if (!self->run)
        s_fail(self, "not enough memory for the unit table");
    char why[512] = "";
    if (!self->failure[0] && kind->begin && kind->begin(plan->state, output, why, sizeof why) < 0)
        s_fail(self, why);
    self->resumed = 0;
    if (!self->failure[0] && self->config.journal) {
        self->journal = journal_open(self->config.journal, kind->name, plan->params, plan->params_len, plan->units,
                                     self->config.verify, s_replay, self, why, sizeof why);
        if (!self->journal)
            s_fail(self, why);
        else if (self->resumed)
            log_info("resumed %" PRIu64 " of %" PRIu64 " units from the journal %s", self->resumed, plan->units,
                     self->config.journal);
    }
    roster_prune(self->roster, false);   /* workers gone during the job before */
    roster_new_job(self->roster);
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        w->job_sent = w->stalled = w->probation = w->draining = false;
        w->slot = -1;
        w->done = w->failed = w->unsolicited = 0;
        w->inflight_count = 0;
        w->cancelled_count = 0;
    }
    zpoller_t *poller = zpoller_new(self->router, NULL);
    if (self->monitor)
        zpoller_add(poller, self->monitor);
    int64_t next_tick = 0;
    /* Timers run every TICK_MS / 2, or a quarter of the heartbeat when that
       is shorter: heartbeats then leave on time and silences are seen on
       time whatever --heartbeat says. */
    int64_t tick = self->config.heartbeat_ms / 4 < TICK_MS / 2 ? self->config.heartbeat_ms / 4 : TICK_MS / 2;
    tick = tick > 0 ? tick : 1;
    self->tick_ms = tick;
    self->gather_ms = self->config.heartbeat_ms / 10 < GATHER_MS ? self->config.heartbeat_ms / 10 : GATHER_MS;
    /* What came since the last job's end (goodbyes of workers that gave up
       on a manager busy with that job's output, say) before any unit goes. */
    s_check_stood_still(self);
    for (int i = 0; i < 10000 && s_on_message(self); i++)
        ;
    self->next_progress = 0;
    s_maybe_start(self);
    while (!self->failure[0] && self->run && self->run->done < self->run->total) {
        if (self->dispatch_all) {
            self->dispatch_all = false;
            s_dispatch_all(self);
        }
        void *which = zpoller_wait(poller, (int) tick);
        if (signals_count() > 0) {
            s_fail(self, "interrupted");
            break;
        }
        s_check_stood_still(self);
        if (which == self->router) {
            /* Drain what is waiting before the next round of timers (reading
               until there is nothing: asking ZMQ_EVENTS first would cost a
               system call a message). */
            int read = 0;
            uint64_t beats = self->beats_read;
            while (read < 1000 && s_on_message(self))
                read++;
            /* Idle workers answer the manager's heartbeat one after another
               over some milliseconds; waking for each costs more than
               reading it. After a wake-up that brought nothing else, a short
               pause lets the next ones gather: a thousand idle workers then
               cost tens of wake-ups a second instead of hundreds. Anything
               else (results, HELLO, GOODBYE) waits at most that pause. */
            if (read > 0 && self->beats_read - beats == (uint64_t) read)
                zclock_sleep((int) self->gather_ms);
        } else if (which && which == self->monitor) {
            s_on_monitor(self);
        }
        if (zclock_mono() >= next_tick) {
            s_check_stood_still(self);   /* a stop during the reading, or the pause above */
            s_on_tick(self);
            s_maybe_start(self);
            self->roster_changed = false;
            self->dispatch_all = true;   /* stragglers to copy, capacity to use */
            next_tick = zclock_mono() + tick;
        }
        if (self->config.progress && zclock_mono() >= self->next_progress) {
            s_show_progress(self);
            self->next_progress = zclock_mono() + PROGRESS_MS;
        }
        if (self->config.dashboard && zclock_mono() >= self->next_publish) {
            s_publish(self, NULL, false);
            self->next_publish = zclock_mono() + DASHBOARD_PUBLISH_MS;
        }
    }
    zpoller_destroy(&poller);
    if (self->config.progress)
        log_status(NULL);
    guard_tick(self->guard, true);
    if (self->journal_tainted) {   /* removed while still locked: no other manager takes it up meanwhile */
        if (unlink(self->config.journal) == 0)
            log_warn("removed the journal %s: it held results of a worker caught lying, accepted unchecked",
                     self->config.journal);
        else
            log_error("could not remove the journal %s (%s): it holds results of a worker caught lying; delete it"
                      " before running the job again", self->config.journal, strerror(errno));
        self->journal_tainted = false;
    }
    journal_close(&self->journal);
    /* Whatever workers still hold of this job is no longer needed. */
    hy_msg_t cancel = {.command = HY_CANCEL, .job = self->job_id};
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (w->alive && w->job_sent)
            s_send(self, w, &cancel);
        w->inflight_count = 0;
    }
    self->last_job_id = self->job_id;
    if (self->last && !self->failure[0])
        local_terminate(self->local);   /* they exit while the output is written */

    if (!self->failure[0]) {
        char err[512];
        /* (not inside an output that goes to stdout) */
        FILE *status = self->config.status_to_stderr ? stderr : stdout;
        /* The work is done: an output short of a descriptor waits for one
           (a flood of connections holds them) rather than lose the work. */
        outfile_patience(OUTPUT_PATIENCE_MS, s_short_of_descriptors, self);
        if (kind->finish(plan->state, output, status, err, sizeof err) < 0)
            s_fail(self, err);
        outfile_patience(0, NULL, NULL);
        fflush(status);
    }
    s_report(self, report);
    if (self->config.dashboard)
        s_publish(self, report, true);
    scheduler_destroy(&self->sched);
    free(self->slot_owner);
    self->slot_owner = NULL;
    self->slots = 0;
    self->strays_count = 0;
    verify_destroy(&self->verify);
    run_destroy(&self->run);
    self->kind = NULL;
    self->plan = NULL;
    return report->ok ? 0 : -1;
}
