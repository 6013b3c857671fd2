/* cluster: the manager's event loop, on one thread with no locks. One ROUTER
   socket; a message from a worker is decoded (common/protocol.c), its worker
   found in the roster, and handled by one s_on_* function; after each event
   every worker with credit is given units by the scheduler. */
#define _XOPEN_SOURCE 700   /* nftw */
#include "manager/cluster.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/protocol.h"
#include "manager/journal.h"
#include "manager/local.h"
#include "manager/roster.h"
#include "manager/run.h"

#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

#define TICK_MS 100
#define JOURNAL_FLUSH_MS 200   /* finished units reach the disk in batches this often */
#define PROGRESS_MS 250
#define OFFENDERS 64           /* peers whose bad messages are counted */
#define OFFENCES_MAX 100       /* bad messages before a peer is disconnected */
#define DURATIONS 255          /* recent unit times kept for the median */
#define STRAGGLER_FACTOR 4     /* a straggler takes this many times the median */

/* A peer that sent bad messages. */
typedef struct {
    uint8_t id[256];
    size_t id_len;
    unsigned count;
} offender_t;

struct cluster_t {
    cluster_config_t config;
    zsock_t *router;
    roster_t *roster;
    local_t *local;
    char ipc_dir[64];          /* private directory of the local endpoint, or "" */
    zactor_t *auth;            /* zauth, when CURVE is on */
    uint64_t session;          /* this manager instance, announced in WELCOME */
    uint64_t malformed;        /* messages dropped as malformed, all jobs */
    uint64_t version_mismatch; /* messages of another protocol version */
    offender_t offenders[OFFENDERS];
    size_t next_offender;
    int64_t next_heartbeat;

    /* The job being run, between cluster_run's start and end. */
    const job_kind_t *kind;
    job_plan_t *plan;
    uint64_t job_id;
    run_t *run;
    scheduler_t *sched;        /* NULL until enough workers joined */
    worker_t **slot_owner;     /* static: the worker of each slot, NULL if lost */
    size_t slots;
    uint64_t rejected;         /* results whose payload the job refused */
    char failure[512];         /* set when the job cannot complete */
    int64_t started_ms;
    int64_t next_progress;     /* when to redraw the progress line */
    int64_t durations[DURATIONS];  /* ring of recent unit round trips, ms */
    size_t duration_count;     /* entries ever recorded */
    int64_t straggler_after;   /* ms in flight that make a unit a straggler; 0: none yet */
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

/* ------------------------------------------------------------ scheduling */

/* A unit in flight elsewhere for longer than the straggler limit and not
   copied yet, for idle worker w; marks it copied. */
static bool s_find_straggler(cluster_t *self, worker_t *w, uint64_t *unit)
{
    if (!self->straggler_after)
        return false;
    int64_t now = zclock_mono();
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *other = roster_at(self->roster, i);
        if (other == w || !other->alive)
            continue;
        for (size_t k = 0; k < other->inflight_count; k++) {
            uint64_t u = other->inflight[k].unit;
            if (now - other->inflight[k].sent_ms < self->straggler_after || self->run->copies[u]
                || self->run->state[u] != UNIT_INFLIGHT)
                continue;
            self->run->copies[u]++;
            self->run->speculative++;
            log_info("unit %" PRIu64 " out on worker %s for %" PRId64 " ms: copied to worker %s", u, other->name,
                     now - other->inflight[k].sent_ms, w->name);
            *unit = u;
            return true;
        }
    }
    return false;
}

static int s_compare_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/* The straggler limit: STRAGGLER_FACTOR times the median of recent unit
   times, and at least --straggler-ms; none before a unit completed. */
static void s_update_straggler_limit(cluster_t *self)
{
    size_t n = self->duration_count < DURATIONS ? self->duration_count : DURATIONS;
    if (n == 0)
        return;
    int64_t sorted[DURATIONS];
    memcpy(sorted, self->durations, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, s_compare_ms);
    int64_t limit = STRAGGLER_FACTOR * sorted[n / 2];
    self->straggler_after = limit > self->config.straggler_ms ? limit : self->config.straggler_ms;
}

static void s_dispatch(cluster_t *self, worker_t *w)
{
    if (!self->sched || !w->alive || self->failure[0] || w->inflight_count >= w->credit)
        return;
    size_t slot = 0;
    if (self->config.schedule == SCHED_STATIC) {
        if (w->slot < 0)
            return;
        slot = (size_t) w->slot;
    }
    uint64_t units[HY_MAX_BATCH];
    size_t n = 0, room = w->credit - w->inflight_count;
    while (n < room && n < HY_MAX_BATCH
           && scheduler_next(self->sched, slot, run_is_pending, self->run, &units[n]))
        n++;
    if (n == 0 && s_find_straggler(self, w, &units[0]))
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
        if (self->run->state[units[i]] == UNIT_PENDING)
            run_sent(self->run, units[i]);
        worker_inflight_add(w, units[i], now);
    }
}

static void s_dispatch_all(cluster_t *self)
{
    for (size_t i = 0; i < roster_size(self->roster); i++)
        s_dispatch(self, roster_at(self->roster, i));
}

/* Starts handing out units once enough workers are here. Static scheduling
   numbers the workers present, in order of arrival. */
static void s_maybe_start(cluster_t *self)
{
    if (self->sched || !self->run || roster_alive(self->roster) < (size_t) self->config.min_workers)
        return;
    size_t slots = 1;
    if (self->config.schedule == SCHED_STATIC) {
        slots = roster_alive(self->roster);
        self->slot_owner = calloc(slots, sizeof *self->slot_owner);
        self->slots = slots;
        size_t s = 0;
        for (size_t i = 0; i < roster_size(self->roster); i++) {
            worker_t *w = roster_at(self->roster, i);
            if (w->alive) {
                w->slot = (int) s;
                self->slot_owner[s++] = w;
            }
        }
    }
    self->sched = scheduler_new(self->config.schedule, self->run->total, slots);
    self->started_ms = zclock_mono();
    self->next_progress = 0;
    log_info("job %s started: %" PRIu64 " units, %zu workers, %s scheduling", self->kind->name,
             self->run->total, roster_alive(self->roster),
             self->config.schedule == SCHED_STATIC ? "static" : "dynamic");
}

/* Static: a worker that joins while slots have no owner takes all of them. */
static void s_adopt_orphans(cluster_t *self, worker_t *w)
{
    if (!self->sched || self->config.schedule != SCHED_STATIC || w->slot >= 0)
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

/* A worker is gone (silent, crashed, or said goodbye): its units go back to
   pending. The loss counts only against the units it was most likely
   computing, its `threads` oldest; the others were waiting their turn. */
static void s_worker_lost(cluster_t *self, worker_t *w, const char *why)
{
    w->alive = false;
    log_warn("worker %s lost (%s); re-issuing %zu units", w->name, why, w->inflight_count);
    size_t slot = w->slot >= 0 ? (size_t) w->slot : 0;
    /* Newest first onto the re-queue stack, so that the oldest goes out first. */
    for (size_t i = w->inflight_count; i-- > 0 && self->run;) {
        uint64_t u = w->inflight[i].unit;
        bool blame = i < w->threads;
        unsigned losses = run_lost(self->run, u, blame);
        if (losses == 0)
            continue;   /* done meanwhile */
        if (blame && losses >= self->config.max_attempts) {
            char reason[256];
            snprintf(reason, sizeof reason, "unit %" PRIu64 " was lost %u times (--max-attempts %" PRId64 ")",
                     u, losses, self->config.max_attempts);
            s_fail(self, reason);
        }
        if (self->sched)
            scheduler_requeue(self->sched, slot, u);
    }
    w->inflight_count = 0;
    if (self->sched && self->config.schedule == SCHED_STATIC && w->slot >= 0) {
        self->slot_owner[slot] = NULL;
        size_t *survivors = calloc(self->slots, sizeof *survivors), m = 0;
        for (size_t s = 0; s < self->slots; s++)
            if (self->slot_owner[s])
                survivors[m++] = s;
        if (m > 0)
            scheduler_reassign(self->sched, slot, survivors, m);
        free(survivors);
        w->slot = -1;
    }
}

/* ------------------------------------------------------------ messages */

/* Counts a bad message from a peer; after OFFENCES_MAX of them its
   connection is cut (shutdown of the socket it came through). ZeroMQ has no
   call to drop one peer of a ROUTER; the message's source descriptor is the
   way to it. */
static void s_offence(cluster_t *self, const uint8_t *id, size_t id_len, int fd, const char *who)
{
    offender_t *o = NULL;
    for (size_t i = 0; i < OFFENDERS && !o; i++)
        if (self->offenders[i].id_len == id_len && memcmp(self->offenders[i].id, id, id_len) == 0)
            o = &self->offenders[i];
    if (!o) {   /* a new one replaces the oldest entry */
        o = &self->offenders[self->next_offender++ % OFFENDERS];
        memcpy(o->id, id, id_len);
        o->id_len = id_len;
        o->count = 0;
    }
    if (++o->count >= OFFENCES_MAX && fd >= 0) {
        log_warn("disconnected %s after %u bad messages", who, o->count);
        shutdown(fd, SHUT_RDWR);
        o->count = 0;
    }
}

static void s_on_hello(cluster_t *self, const uint8_t *id, size_t id_len, worker_t *w, const hy_msg_t *msg,
                       const char *key)
{
    if (!w) {
        w = roster_add(self->roster, id, id_len, msg->name, msg->name_len, msg->threads, msg->heartbeat_ms);
        log_info("worker %s joined (%u threads, %zu workers%s%.8s%s)", w->name, w->threads,
                 roster_alive(self->roster), key && *key ? ", key " : "", key ? key : "", key && *key ? "..." : "");
    }
    w->expiry = zclock_mono() + (int64_t) w->heartbeat_ms * self->config.liveness;
    hy_msg_t welcome = {.command = HY_WELCOME, .session = self->session,
                        .heartbeat_ms = (uint32_t) self->config.heartbeat_ms};
    s_send(self, w, &welcome);
    s_maybe_start(self);
    s_adopt_orphans(self, w);
}

static void s_on_result(cluster_t *self, worker_t *w, const hy_msg_t *msg, int fd)
{
    if (!self->run || msg->job != self->job_id)
        return;   /* a late result of an earlier job */
    if (msg->unit >= self->run->total) {
        self->malformed++;
        log_warn("worker %s sent a result for unit %" PRIu64 " of %" PRIu64 "; dropped", w->name,
                 msg->unit, self->run->total);
        s_offence(self, w->id, w->id_len, fd, w->name);
        return;
    }
    int64_t sent = worker_inflight_remove(w, msg->unit);
    if (sent >= 0)
        self->durations[self->duration_count++ % DURATIONS] = zclock_mono() - sent;
    uint64_t u = msg->unit;
    if (self->run->state[u] == UNIT_DONE) {
        run_completed(self->run, u);   /* counts the duplicate */
        return;
    }
    const char *why = NULL;
    if (msg->status != HY_RESULT_OK)
        why = "the worker could not compute it";
    else if (self->kind->accept(self->plan->state, u, msg->data, msg->data_len) < 0)
        why = "its result was malformed";
    if (!why) {
        run_completed(self->run, u);
        w->done++;
        if (self->journal && journal_append(self->journal, u, msg->data, msg->data_len) < 0)
            s_fail(self, "cannot write the journal");
        return;
    }
    self->rejected++;
    if (msg->status != HY_RESULT_OK)
        log_warn("unit %" PRIu64 " failed on worker %s: %.*s", u, w->name, (int) msg->data_len,
                 (const char *) msg->data);
    else {
        log_warn("unit %" PRIu64 " from worker %s: %s; dropped", u, w->name, why);
        s_offence(self, w->id, w->id_len, fd, w->name);
    }
    unsigned losses = run_failed(self->run, u);
    if (losses >= self->config.max_attempts) {
        char reason[256];
        snprintf(reason, sizeof reason, "unit %" PRIu64 " failed %u times: %s", u, losses, why);
        s_fail(self, reason);
    }
    scheduler_requeue(self->sched, w->slot >= 0 ? (size_t) w->slot : 0, u);
}

static void s_on_message(cluster_t *self)
{
    void *handle = zsock_resolve(self->router);
    zmq_msg_t parts[2];
    zmq_msg_init(&parts[0]);
    zmq_msg_init(&parts[1]);
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
        return;
    }
    const uint8_t *id = zmq_msg_data(&parts[0]);
    size_t id_len = zmq_msg_size(&parts[0]);
    int fd = count >= 2 ? zmq_msg_get(&parts[1], ZMQ_SRCFD) : -1;
    hy_msg_t msg;
    int rc = count != 2 ? HY_EMALFORMED : hy_decode(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), &msg);
    worker_t *w = roster_find(self->roster, id, id_len);
    const char *who = w ? w->name : "an unknown peer";

    if (rc == HY_EVERSION) {
        if (self->version_mismatch++ % 100 == 0)
            log_warn("a peer speaks protocol version %u; this manager speaks version %u: "
                     "run the same hyades release on both (dropped)", msg.peer_version,
                     HY_PROTOCOL_VERSION);
        hy_msg_t bye = {.command = HY_GOODBYE, .name = "protocol version mismatch"};
        hy_send(self->router, id, id_len, &bye);
        s_offence(self, id, id_len, fd, who);
    } else if (rc < 0) {
        if (self->malformed++ % 100 == 0)
            log_warn("dropped a malformed message from %s (%" PRIu64 " so far)", who, self->malformed);
        s_offence(self, id, id_len, fd, who);
    } else if (msg.command == HY_HELLO) {
        const char *key = zmq_msg_gets(&parts[1], "User-Id");
        s_on_hello(self, id, id_len, w, &msg, key);
    } else if (!w) {
        /* Not (or no longer) on the roster: it must introduce itself again. */
        if (msg.command != HY_GOODBYE) {
            hy_msg_t bye = {.command = HY_GOODBYE, .name = "unknown worker: say HELLO"};
            hy_send(self->router, id, id_len, &bye);
        }
    } else {
        w->expiry = zclock_mono() + (int64_t) w->heartbeat_ms * self->config.liveness;
        switch (msg.command) {
        case HY_HEARTBEAT: break;
        case HY_RESULT: s_on_result(self, w, &msg, fd); break;
        case HY_GOODBYE: {
            char why[300];
            snprintf(why, sizeof why, "said goodbye: %.*s", (int) msg.name_len, msg.name);
            s_worker_lost(self, w, why);
            break;
        }
        default:
            self->malformed++;
            log_warn("dropped unexpected %s from worker %s", hy_command_name(msg.command), w->name);
            s_offence(self, w->id, w->id_len, fd, who);
        }
    }
    zmq_msg_close(&parts[0]);
    zmq_msg_close(&parts[1]);
}

/* ------------------------------------------------------------ timers */

/* A local worker process exited: no need to wait for its silence. */
static void s_local_exited(void *arg, size_t index)
{
    cluster_t *self = arg;
    char name[32];
    snprintf(name, sizeof name, "local-%zu", index + 1);
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (w->alive && streq(w->name, name))
            s_worker_lost(self, w, "its process exited");
    }
}

static void s_on_tick(cluster_t *self)
{
    int64_t now = zclock_mono();
    s_update_straggler_limit(self);
    if (self->journal && now >= self->next_flush) {
        if (journal_flush(self->journal) < 0)
            s_fail(self, "cannot write the journal");
        self->next_flush = now + JOURNAL_FLUSH_MS;
    }
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (w->alive && now >= w->expiry) {
            char why[64];
            snprintf(why, sizeof why, "silent for %" PRId64 " ms",
                     (int64_t) w->heartbeat_ms * self->config.liveness);
            s_worker_lost(self, w, why);
        }
    }
    if (now >= self->next_heartbeat) {
        hy_msg_t beat = {.command = HY_HEARTBEAT};
        for (size_t i = 0; i < roster_size(self->roster); i++) {
            worker_t *w = roster_at(self->roster, i);
            if (w->alive)
                s_send(self, w, &beat);
        }
        self->next_heartbeat = now + self->config.heartbeat_ms;
    }
    if (self->local && local_reap(self->local, s_local_exited, self) == 0 && !self->config.bind
        && roster_alive(self->roster) == 0)
        s_fail(self, "all local workers exited");
}

static void s_show_progress(cluster_t *self)
{
    const run_t *run = self->run;
    char line[200];
    if (!self->sched) {
        snprintf(line, sizeof line, "%s: waiting for workers (%zu of %" PRId64 ")", self->kind->name,
                 roster_alive(self->roster), self->config.min_workers);
    } else {
        double secs = (zclock_mono() - self->started_ms) / 1000.0;
        double rate = secs > 0 ? run->done / secs : 0;
        double eta = rate > 0 ? (run->total - run->done) / rate : 0;
        snprintf(line, sizeof line, "%s: %" PRIu64 "/%" PRIu64 " units (%.0f%%), %.0f units/s, ETA %.1f s, %zu workers",
                 self->kind->name, run->done, run->total, run->total ? 100.0 * run->done / run->total : 100.0,
                 rate, eta, roster_alive(self->roster));
    }
    log_status(line);
}

/* ------------------------------------------------------------ life cycle */

/* Removes dir and everything below it (our private directory only). */
static int s_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove(path);
}

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
    zcert_t *cert = curve_load(self->config.cert, true, err, errlen);
    if (!cert)
        return -1;
    const char *allowed = self->config.allow;
    char dir[160];
    if (self->config.local > 0) {
        /* Local workers get a key pair of their own, allowed beside --allow. */
        char path[256];
        snprintf(dir, sizeof dir, "%s/allowed", self->ipc_dir);
        zcert_t *local = zcert_new();
        snprintf(path, sizeof path, "%s/local-worker", self->ipc_dir);
        int rc = mkdir(dir, 0700) == 0 && s_copy_certs(allowed, dir, err, errlen) == 0 ? zcert_save(local, path) : -1;
        snprintf(path, sizeof path, "%s/local-worker", dir);
        if (rc == 0)
            rc = zcert_save_public(local, path);
        snprintf(path, sizeof path, "%s/manager.pub", self->ipc_dir);
        if (rc == 0)
            rc = zcert_save_public(cert, path);
        zcert_destroy(&local);
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
    return rc;
}

cluster_t *cluster_new(const cluster_config_t *config, char *err, size_t errlen)
{
    cluster_t *self = calloc(1, sizeof *self);
    self->config = *config;
    self->session = s_random64();
    self->roster = roster_new();
    self->router = zsock_new(ZMQ_ROUTER);
    hy_socket_setup(self->router);
    err[0] = '\0';
    /* Local workers use a socket in a directory only we can enter. */
    snprintf(self->ipc_dir, sizeof self->ipc_dir, "/tmp/hyades-XXXXXX");
    if (config->local > 0 && !mkdtemp(self->ipc_dir)) {
        self->ipc_dir[0] = '\0';
        snprintf(err, errlen, "cannot create a private directory in /tmp: %s", strerror(errno));
        cluster_destroy(&self);
        return NULL;
    }
    if (config->local == 0)
        self->ipc_dir[0] = '\0';
    if (config->cert && s_secure(self, err, errlen) < 0) {
        cluster_destroy(&self);
        return NULL;
    }
    if (config->bind) {
        if (zsock_bind(self->router, "%s", config->bind) < 0) {
            snprintf(err, errlen, "cannot bind %s: %s", config->bind, zmq_strerror(zmq_errno()));
            cluster_destroy(&self);
            return NULL;
        }
        /* The endpoint as bound: with port 0 or *, the port the system gave. */
        char *bound = zsock_last_endpoint(self->router);
        log_info("listening on %s%s", bound, config->cert ? " (CURVE: only allowed keys, encrypted)" : "");
        zstr_free(&bound);
    }
    if (config->local > 0) {
        char endpoint[128], cert[128], manager[128];
        snprintf(endpoint, sizeof endpoint, "ipc://%s/manager", self->ipc_dir);
        snprintf(cert, sizeof cert, "%s/local-worker", self->ipc_dir);
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

void cluster_destroy(cluster_t **self_p)
{
    cluster_t *self = *self_p;
    if (!self)
        return;
    hy_msg_t bye = {.command = HY_GOODBYE, .name = "manager exiting"};
    for (size_t i = 0; self->router && i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (w->alive)
            s_send(self, w, &bye);
    }
    local_stop(&self->local);
    if (self->router)
        zsock_set_linger(self->router, 200);   /* the goodbyes may leave after the close */
    zsock_destroy(&self->router);
    zactor_destroy(&self->auth);
    if (self->ipc_dir[0])
        nftw(self->ipc_dir, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    roster_destroy(&self->roster);
    free(self);
    *self_p = NULL;
}

/* A unit read back from the journal: accepted as if a worker had sent it. */
static void s_replay(void *arg, uint64_t unit, const uint8_t *data, size_t len)
{
    cluster_t *self = arg;
    if (unit >= self->run->total || self->run->state[unit] == UNIT_DONE)
        return;
    if (self->kind->accept(self->plan->state, unit, data, len) < 0) {
        log_warn("journal: unit %" PRIu64 " refused by the job; computing it again", unit);
        return;
    }
    run_completed(self->run, unit);
    self->resumed++;
}

int cluster_run(cluster_t *self, const job_kind_t *kind, job_plan_t *plan, const char *output,
                job_report_t *report)
{
    memset(report, 0, sizeof *report);
    report->job = kind->name;
    report->output = output;
    int64_t t0 = zclock_mono();
    double cpu0 = s_cpu_seconds();
    self->kind = kind;
    self->plan = plan;
    self->job_id = s_random64();
    self->run = run_new(plan->units);
    self->failure[0] = '\0';
    self->rejected = 0;
    self->duration_count = 0;
    self->straggler_after = 0;
    if (!self->run)
        s_fail(self, "not enough memory for the unit table");
    char why[512];
    if (!self->failure[0] && kind->begin && kind->begin(plan->state, output, why, sizeof why) < 0)
        s_fail(self, why);
    self->resumed = 0;
    if (!self->failure[0] && self->config.journal) {
        self->journal = journal_open(self->config.journal, kind->name, plan->params, plan->params_len, plan->units,
                                     s_replay, self, why, sizeof why);
        if (!self->journal)
            s_fail(self, why);
        else if (self->resumed)
            log_info("resumed %" PRIu64 " of %" PRIu64 " units from the journal %s", self->resumed, plan->units,
                     self->config.journal);
    }
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        w->job_sent = false;
        w->slot = -1;
        w->done = 0;
        w->inflight_count = 0;
    }
    zpoller_t *poller = zpoller_new(self->router, NULL);
    int64_t next_tick = 0;
    self->next_progress = 0;
    s_maybe_start(self);
    while (!self->failure[0] && self->run && self->run->done < self->run->total) {
        s_dispatch_all(self);
        void *which = zpoller_wait(poller, TICK_MS);
        if (zpoller_terminated(poller) || zsys_interrupted) {
            s_fail(self, "interrupted");
            break;
        }
        if (which == self->router) {
            /* Drain what is waiting before the next round of timers. */
            for (int i = 0; i < 1000 && (zsock_events(self->router) & ZMQ_POLLIN); i++)
                s_on_message(self);
        }
        if (zclock_mono() >= next_tick) {
            s_on_tick(self);
            next_tick = zclock_mono() + TICK_MS / 2;
        }
        if (self->config.progress && zclock_mono() >= self->next_progress) {
            s_show_progress(self);
            self->next_progress = zclock_mono() + PROGRESS_MS;
        }
    }
    zpoller_destroy(&poller);
    if (self->config.progress)
        log_status(NULL);
    journal_close(&self->journal);

    if (!self->failure[0]) {
        char err[512];
        if (kind->finish(plan->state, output, stdout, err, sizeof err) < 0)
            s_fail(self, err);
        fflush(stdout);
    }
    report->ok = !self->failure[0];
    snprintf(report->error, sizeof report->error, "%s", self->failure);
    report->units = self->run ? self->run->total : plan->units;
    report->done = self->run ? self->run->done : 0;
    report->reissued = self->run ? self->run->reissued : 0;
    report->duplicates = self->run ? self->run->duplicates : 0;
    report->speculative = self->run ? self->run->speculative : 0;
    report->resumed = self->resumed;
    report->rejected = self->rejected;
    report->seconds = (zclock_mono() - t0) / 1000.0;
    report->cpu_seconds = s_cpu_seconds() - cpu0;
    report->workers = calloc(roster_size(self->roster) + 1, sizeof *report->workers);
    for (size_t i = 0; i < roster_size(self->roster); i++) {
        worker_t *w = roster_at(self->roster, i);
        if (!w->alive && w->done == 0)
            continue;
        snprintf(report->workers[report->worker_count].name, sizeof report->workers[0].name, "%s", w->name);
        report->workers[report->worker_count++].units = w->done;
    }
    scheduler_destroy(&self->sched);
    free(self->slot_owner);
    self->slot_owner = NULL;
    self->slots = 0;
    run_destroy(&self->run);
    self->kind = NULL;
    self->plan = NULL;
    return report->ok ? 0 : -1;
}

/* ------------------------------------------------------------ reports */

void report_print(const job_report_t *r, FILE *out)
{
    double rate = r->seconds > 0 ? r->done / r->seconds : 0;
    if (r->ok)
        fprintf(out, "job %s done", r->job);
    else
        fprintf(out, "job %s FAILED: %s", r->job, r->error);
    fprintf(out, "%s%s\n", r->output ? ", output " : "", r->output ? r->output : "");
    fprintf(out, "  units %" PRIu64 "/%" PRIu64 " in %.3f s (%.1f units/s, manager CPU %.2f s)\n", r->done, r->units,
            r->seconds, rate, r->cpu_seconds);
    fprintf(out, "  resumed %" PRIu64 ", re-issued %" PRIu64 ", speculative %" PRIu64 ", duplicates %" PRIu64
                 ", rejected %" PRIu64 "\n",
            r->resumed, r->reissued, r->speculative, r->duplicates, r->rejected);
    for (size_t i = 0; i < r->worker_count; i++)
        fprintf(out, "  worker %-24s %" PRIu64 " units\n", r->workers[i].name, r->workers[i].units);
}

void report_line(const job_report_t *r, FILE *out)
{
    fprintf(out, "line %d: %s ", r->line, r->job);
    if (r->ok)
        fprintf(out, "ok, %" PRIu64 " units in %.3f s, re-issued %" PRIu64 "%s%s\n", r->units, r->seconds, r->reissued,
                r->output ? ", output " : "", r->output ? r->output : "");
    else
        fprintf(out, "FAILED: %s\n", r->error);
}

static void s_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

void report_json(const job_report_t *r, FILE *out)
{
    fprintf(out, "{\"job\":");
    s_json_string(out, r->job);
    if (r->line)
        fprintf(out, ",\"line\":%d", r->line);
    fprintf(out, ",\"status\":\"%s\",\"error\":", r->ok ? "ok" : "failed");
    s_json_string(out, r->error);
    fprintf(out, ",\"output\":");
    if (r->output)
        s_json_string(out, r->output);
    else
        fputs("null", out);
    fprintf(out, ",\"units\":%" PRIu64 ",\"done\":%" PRIu64 ",\"seconds\":%.6f,\"manager_cpu_seconds\":%.6f,\"units_per_second\":%.3f"
                 ",\"resumed\":%" PRIu64 ",\"reissued\":%" PRIu64 ",\"speculative\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"workers\":[",
            r->units, r->done, r->seconds, r->cpu_seconds, r->seconds > 0 ? r->done / r->seconds : 0.0, r->resumed,
            r->reissued, r->speculative, r->duplicates, r->rejected);
    for (size_t i = 0; i < r->worker_count; i++) {
        fprintf(out, "%s{\"name\":", i ? "," : "");
        s_json_string(out, r->workers[i].name);
        fprintf(out, ",\"units\":%" PRIu64 "}", r->workers[i].units);
    }
    fprintf(out, "]}\n");
}

void report_clear(job_report_t *report)
{
    free(report->workers);
    report->workers = NULL;
    report->worker_count = 0;
}
