/* session: the worker's connection to a manager. One thread, one DEALER, one
   poll over the socket and the pool's signal.

   States: connecting (HELLO sent, waiting for WELCOME) and joined. No WELCOME
   in time, a silent manager, a GOODBYE, or a connection that closed after
   WELCOME (seen by the socket's monitor) makes us drop the socket (and
   cancel every unit: the manager hands them out again), wait out a backoff
   and introduce ourselves again on a new socket. A new manager session id
   makes us forget the jobs we cached. On a stop signal: no new units, queued
   ones given back, running ones given STOP_GRACE_MS, then GOODBYE. */
#include "worker/session.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signals.h"
#include "worker/pool.h"

#include <inttypes.h>

#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   4000
#define BACKOFF_LONG_MS  30000   /* after VERSION, BANNED, REFUSED */
#define MAX_CACHED_JOBS  16
#define STOP_JOIN_MS     1000    /* after the grace period: threads that ignore cancel are left behind */
#define HASTE_JOIN_MS    250     /* the same after a second signal, or when not joined */
#define STOP_LINGER_MS   500     /* for the last results and GOODBYE to leave */
#define GIVE_UP_LINGER_MS 20     /* for GOODBYE to leave a live connection: shorter than ZeroMQ's 100 ms
                                    reconnect, so that a dead one's leftovers never reach a new manager */
#define CLOSED_GRACE_MS  20      /* after a joined connection closed: for what the manager said before to
                                    be read; shorter than ZeroMQ's 100 ms reconnect */
#define POLL_MAX_MS      250     /* a signal that lands just before the poll waits at most this */
#define STILL_MS         750     /* timers later than this beyond POLL_MAX_MS: this worker stood still */
#define SEND_HWM         4       /* messages queued to the manager at most; then results wait here */
#define QUEUE_PER_THREAD 512     /* units queued per thread at most; more are given back (RETURNED) */
#define QUEUE_MIN        1024
#define HOLD_MS          20      /* while the pool computes, results it does not wake us for wait at most this long */
#define HOLD_MAX_MS      320     /* ... or, while takes find nothing (long units), up to this long */

typedef struct {
    const session_config_t *config;
    const char *kinds[HY_MAX_KINDS];  /* names announced in HELLO */
    size_t kind_count;
    zsock_t *dealer;          /* NULL while backing off */
    zsock_t *monitor;         /* the dealer's failed CURVE handshakes and closed connections, or NULL */
    log_limit_t handshake_log;/* their log lines, one a few seconds */
    log_limit_t flood_log;    /* "more units than this worker queues": one a few seconds */
    log_limit_t bad_log;      /* messages from the manager dropped: one line a few seconds */
    pool_t *pool;
    zlist_t *jobs;            /* pool_job_t* (our references), newest last */
    bool joined;              /* WELCOME received on this socket */
    bool have_session;
    uint64_t session;         /* the manager session our cache belongs to */
    int64_t manager_hb;       /* the manager's heartbeat interval (WELCOME), ms */
    int64_t manager_idle;     /* its interval for workers that hold no units (WELCOME), ms */
    int64_t expiry;           /* connecting: WELCOME deadline; joined: when the manager counts as lost */
    int64_t next_heartbeat;
    int64_t backoff;          /* the next backoff, ms */
    int64_t reconnect_at;     /* while dealer is NULL: when to reconnect */
    int64_t heard_at;         /* when a joined manager last spoke (at first: when we started) */
    int64_t tick_at;          /* when the poll last returned */
    bool done;                /* --exit-when-done and the work is over: leave */
    bool ever_joined;         /* some manager welcomed us */
    int status;               /* the exit status when done */
    bool announced;           /* this series of attempts was logged */
    bool version_warned;      /* the version mismatch was logged */
    bool stopping;            /* a stop signal came: no new units */
    int64_t stop_at;          /* when */
    uint64_t malformed;       /* messages dropped */
    uint64_t sent;            /* results sent, computed or failed */
    pool_result_t *out;       /* results taken from the pool, not all sent yet */
    size_t out_count, out_next;
    int64_t pool_at;          /* while the pool has work: when to take its results anyway, or 0 */
    int64_t hold_ms;          /* the interval of those takes: HOLD_MS, doubled after each that found nothing */
    bool blocked;             /* the socket was full: wait for room */
    int64_t closed_at;        /* the joined connection closed: start over then (0: it did not) */
    uint64_t returned;        /* units given back */
} self_t;

/* ------------------------------------------------------------ helpers */

/* Whether we hold units of the manager's: queued, computing, or results
   not yet sent. */
static bool s_busy(const self_t *self)
{
    return self->pool_at || self->out_next < self->out_count;
}

/* Our heartbeat interval (PROTOCOL 4.3): the shorter of ours and the
   manager's while we hold units, the manager's idle interval while we hold
   none. */
static int64_t s_heartbeat_ivl(const self_t *self)
{
    if (self->manager_idle && !s_busy(self))
        return self->manager_idle;
    int64_t own = self->config->heartbeat_ms;
    return self->manager_hb && self->manager_hb < own ? self->manager_hb : own;
}

static pool_job_t *s_job_find(self_t *self, uint64_t id)
{
    for (pool_job_t *job = zlist_first(self->jobs); job; job = zlist_next(self->jobs))
        if (pool_job_id(job) == id)
            return job;
    return NULL;
}

static bool s_serves(const self_t *self, const job_kind_t *kind)
{
    for (size_t i = 0; i < self->kind_count; i++)
        if (streq(self->kinds[i], kind->name))
            return true;
    return false;
}

static void s_send(self_t *self, const hy_msg_t *msg)
{
    if (!self->dealer)
        return;
    if (hy_send(self->dealer, NULL, 0, msg) < 0)
        log_debug("could not queue %s", hy_command_name(msg->command));
    else if (self->joined)   /* any message counts as a heartbeat */
        self->next_heartbeat = zclock_mono() + s_heartbeat_ivl(self);
}

/* Sends n results of one job in as few RESULT messages as the limits allow. */
static void s_send_job_results(self_t *self, uint64_t job, const hy_result_t *items, size_t n)
{
    size_t first = 0;
    while (first < n) {
        size_t count = 0, payload = 0;
        while (first + count < n && count < HY_MAX_BATCH
               && (count == 0 || payload + items[first + count].len <= HY_MAX_PAYLOAD))
            payload += items[first + count++].len;
        hy_msg_t msg = {.command = HY_RESULT, .job = job, .result_count = count, .results = items + first};
        s_send(self, &msg);
        first += count;
    }
}

/* Sends what is waiting in self->out, from out_next on, in as few RESULT
   messages as the limits allow; results whose job is no longer the one
   cached under its id are dropped. Stops when the socket is full (the rest
   waits for room). Returns true when everything went. */
static bool s_flush(self_t *self)
{
    hy_result_t items[HY_MAX_BATCH];
    while (self->out_next < self->out_count) {
        if (!self->dealer || !self->joined) {   /* nobody to send to: they are cancelled there */
            self->out_next = self->out_count;
            break;
        }
        /* A batch: consecutive results of one job, within the limits. */
        pool_job_t *job = self->out[self->out_next].job;
        bool current = s_job_find(self, pool_job_id(job)) == job;
        size_t end = self->out_next, count = 0, payload = 0;
        while (end < self->out_count && self->out[end].job == job && count < HY_MAX_BATCH
               && (count == 0 || payload + self->out[end].len <= HY_MAX_PAYLOAD)) {
            const pool_result_t *r = &self->out[end++];
            payload += r->len;
            items[count++] = (hy_result_t) {.unit = r->unit, .status = r->status, .data = r->data, .len = r->len};
        }
        if (current) {
            hy_msg_t msg = {.command = HY_RESULT, .job = pool_job_id(job), .result_count = count, .results = items};
            if (hy_send(self->dealer, NULL, 0, &msg) < 0) {
                self->blocked = true;   /* full: the manager is not reading; try again when there is room */
                return false;
            }
            self->next_heartbeat = zclock_mono() + s_heartbeat_ivl(self);
            for (size_t i = 0; i < count; i++) {
                if (items[i].status == HY_RESULT_FAILED)
                    log_warn("unit %" PRIu64 " of job %" PRIu64 " failed: %.*s", items[i].unit, pool_job_id(job),
                             (int) items[i].len, (const char *) items[i].data);
                if (items[i].status == HY_RESULT_RETURNED)
                    self->returned++;
                else
                    self->sent++;
            }
        }
        self->out_next = end;
    }
    pool_results_free(&self->out, self->out_count);
    self->out_count = self->out_next = 0;
    return true;
}

/* Queues results (from the pool, owned: taken over) behind those waiting. */
static void s_queue_results(self_t *self, pool_result_t *results, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < self->out_next; i++) {   /* those already sent */
        free(self->out[i].data);
        pool_job_unref(&self->out[i].job);
    }
    size_t left = self->out_count - self->out_next;
    pool_result_t *all = malloc((left + n) * sizeof *all);
    if (left)
        memcpy(all, self->out + self->out_next, left * sizeof *all);
    memcpy(all + left, results, n * sizeof *all);
    free(self->out);
    free(results);
    self->out = all;
    self->out_count = left + n;
    self->out_next = 0;
}

/* Queues results and sends everything waiting now. */
static void s_send_results(self_t *self, pool_result_t *results, size_t n)
{
    s_queue_results(self, results, n);
    self->blocked = false;
    s_flush(self);
}

/* Takes what the pool finished and sends it. The pool wakes us when results
   should leave now; else we come back every HOLD_MS while it computes, so
   that one message carries many results of short units (less often while
   nothing comes, as during long units). */
static void s_on_pool(self_t *self)
{
    if (self->blocked) {   /* room again? */
        self->blocked = false;
        if (!s_flush(self))
            return;
    }
    pool_result_t *results;
    size_t n = pool_take(self->pool, &results);
    s_queue_results(self, results, n);
    s_flush(self);
    size_t queued, running = pool_running(self->pool, NULL, &queued);
    if (n > 0 || !self->hold_ms)
        self->hold_ms = HOLD_MS;
    else if (self->hold_ms < HOLD_MAX_MS)
        self->hold_ms *= 2;
    self->pool_at = running || queued ? zclock_mono() + self->hold_ms : 0;
}

/* Units of msg answered without computing: status and reason for all. */
static void s_answer_units(self_t *self, const hy_msg_t *msg, uint8_t status, const char *why)
{
    hy_result_t items[HY_MAX_BATCH];
    for (size_t i = 0; i < msg->unit_count; i++)
        items[i] = (hy_result_t) {.unit = hy_unit_at(msg, i), .status = status, .data = (const uint8_t *) why,
                                  .len = why ? strlen(why) : 0};
    s_send_job_results(self, msg->job, items, msg->unit_count);
    if (status == HY_RESULT_RETURNED)
        self->returned += msg->unit_count;
}

/* ------------------------------------------------------------ connection */

/* A new socket, and HELLO on it. */
static void s_connect(self_t *self)
{
    const session_config_t *config = self->config;
    if (!self->announced)
        log_info("connecting to the manager at %s", config->endpoint);
    self->announced = true;
    self->dealer = zsock_new(ZMQ_DEALER);
    hy_socket_setup(self->dealer);
    zsock_set_sndhwm(self->dealer, SEND_HWM);
    if (config->cert)
        curve_client_setup(self->dealer, config->cert, config->manager_key);
    self->monitor = hy_monitor_new(self->dealer, true);
    zsock_set_reconnect_ivl(self->dealer, 100);
    zsock_set_reconnect_ivl_max(self->dealer, 2000);
    if (strchr(config->endpoint, '['))
        zsock_set_ipv6(self->dealer, 1);   /* an IPv6 address: tcp://[::1]:5555 */
    if (zsock_connect(self->dealer, "%s", config->endpoint) < 0) {
        log_error("cannot connect to %s", config->endpoint);
        hy_monitor_close(self->dealer, &self->monitor);
        zsock_destroy(&self->dealer);
        self->reconnect_at = zclock_mono() + BACKOFF_MAX_MS;
        return;
    }
    self->joined = false;
    self->manager_hb = 0;
    hy_msg_t hello = {.command = HY_HELLO, .name = config->name, .threads = (uint32_t) config->threads,
                      .heartbeat_ms = (uint32_t) config->heartbeat_ms, .release = HY_RELEASE,
                      .kind_count = self->kind_count, .kinds = self->kinds};
    s_send(self, &hello);
    self->expiry = zclock_mono() + config->heartbeat_ms * config->liveness;
}

/* Drops the socket and every unit (the manager hands them out again);
   reconnects after delay ms (0: at once). Cached jobs stay. */
static void s_disconnect(self_t *self, int64_t delay)
{
    pool_cancel_all(self->pool, NULL);
    pool_results_free(&self->out, self->out_count);   /* the manager hands them out again */
    self->out_count = self->out_next = 0;
    hy_monitor_close(self->dealer, &self->monitor);
    zsock_destroy(&self->dealer);
    self->closed_at = 0;
    self->joined = false;
    self->reconnect_at = zclock_mono() + delay;
}

/* s_disconnect after the current backoff, which then doubles. */
static void s_retry(self_t *self)
{
    s_disconnect(self, self->backoff);
    self->backoff = self->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff * 2;
}

static void s_forget_jobs(self_t *self)
{
    pool_job_t *job;
    while ((job = zlist_pop(self->jobs)))
        pool_job_unref(&job);
}

static void s_version_mismatch(self_t *self)
{
    if (!self->version_warned)
        log_error("the manager at %s speaks another protocol version: run the same hyades release on both "
                  "(this worker: %s, protocol %d); retrying every %d s",
                  self->config->endpoint, HY_RELEASE, HY_PROTOCOL_VERSION, BACKOFF_LONG_MS / 1000);
    self->version_warned = true;
    s_disconnect(self, BACKOFF_LONG_MS);
}

/* ------------------------------------------------------------ manager messages */

static void s_on_welcome(self_t *self, const hy_msg_t *msg)
{
    if (!self->have_session || msg->session != self->session) {
        if (self->have_session && zlist_size(self->jobs))
            log_info("a new manager session: forgetting %zu cached jobs", zlist_size(self->jobs));
        pool_cancel_all(self->pool, NULL);
        s_forget_jobs(self);
        self->session = msg->session;
        self->have_session = true;
    }
    if (!self->joined)
        log_info("joined manager at %s (session %016" PRIx64 ", heartbeat %u ms)", self->config->endpoint,
                 msg->session, msg->heartbeat_ms);
    self->joined = true;
    self->ever_joined = true;
    self->manager_hb = msg->heartbeat_ms;
    self->manager_idle = msg->idle_ms;
    self->announced = false;
    self->version_warned = false;
    self->next_heartbeat = zclock_mono() + s_heartbeat_ivl(self);
}

static void s_on_job(self_t *self, const hy_msg_t *msg)
{
    if (s_job_find(self, msg->job))
        return;
    const job_kind_t *kind = job_find(msg->name, msg->name_len);
    if (!kind)
        log_warn("job %" PRIu64 " is of unknown kind '%.*s': its units fail here", msg->job, (int) msg->name_len,
                 msg->name);
    else if (!s_serves(self, kind)) {
        log_warn("job %" PRIu64 " is of kind %s, which this worker does not compute (--kinds): its units fail here",
                 msg->job, kind->name);
        kind = NULL;
    }
    pool_job_t *job = pool_job_new(msg->job, kind, msg->data, msg->data_len);
    if (kind && pool_job_error(job))
        log_warn("job %" PRIu64 " (%s): %s", msg->job, kind->name, pool_job_error(job));
    if (zlist_size(self->jobs) >= MAX_CACHED_JOBS) {
        pool_job_t *oldest = zlist_pop(self->jobs);   /* its units still queued or running keep it */
        pool_job_unref(&oldest);
    }
    zlist_append(self->jobs, job);
}

static void s_on_units(self_t *self, const hy_msg_t *msg)
{
    pool_job_t *job = s_job_find(self, msg->job);
    if (self->stopping)
        s_answer_units(self, msg, HY_RESULT_RETURNED, NULL);
    else if (!job)
        s_answer_units(self, msg, HY_RESULT_FAILED, "unknown job");
    else {
        /* An honest manager sends at most 3 units a thread; more are given
           back rather than queued without bound. */
        size_t queued, limit = (size_t) self->config->threads * QUEUE_PER_THREAD;
        pool_running(self->pool, NULL, &queued);
        limit = limit > QUEUE_MIN ? limit : QUEUE_MIN;
        hy_result_t back[HY_MAX_BATCH];
        uint64_t take[HY_MAX_BATCH];
        size_t n = 0, k = 0;
        for (size_t i = 0; i < msg->unit_count; i++) {
            if (queued++ < limit)
                take[k++] = hy_unit_at(msg, i);
            else
                back[n++] = (hy_result_t) {.unit = hy_unit_at(msg, i), .status = HY_RESULT_RETURNED};
        }
        pool_submit_many(self->pool, job, take, k);
        if (k && !self->pool_at) {
            self->hold_ms = HOLD_MS;
            self->pool_at = zclock_mono() + HOLD_MS;
        }
        if (n) {
            uint64_t held;
            if (log_limit(&self->flood_log, &held))
                log_warn("the manager sent more units than this worker queues (%zu); %zu given back%s", limit, n,
                         log_held(held));
            s_send_job_results(self, msg->job, back, n);
            self->returned += n;
        }
    }
    /* Holding units now: the manager expects the shorter interval from here. */
    int64_t due = zclock_mono() + s_heartbeat_ivl(self);
    if (self->next_heartbeat > due)
        self->next_heartbeat = due;
}

static void s_on_cancel(self_t *self, const hy_msg_t *msg)
{
    uint64_t units[HY_MAX_BATCH];
    for (size_t i = 0; i < msg->unit_count; i++)
        units[i] = hy_unit_at(msg, i);
    size_t n = pool_cancel(self->pool, msg->job, units, msg->unit_count);
    log_debug("job %" PRIu64 ": %zu units cancelled", msg->job, n);
}

/* The manager's HEARTBEAT is answered at once when ours is due within half
   an interval (PROTOCOL 4.3): every worker's heartbeat then follows the
   manager's by a round trip, so that it reads a thousand idle workers'
   heartbeats in a few wake-ups instead of one each. */
static void s_on_heartbeat(self_t *self)
{
    if (self->next_heartbeat - zclock_mono() <= s_heartbeat_ivl(self) / 2) {
        hy_msg_t beat = {.command = HY_HEARTBEAT};
        s_send(self, &beat);
    }
}

static void s_on_goodbye(self_t *self, const hy_msg_t *msg)
{
    const char *endpoint = self->config->endpoint;
    int len = (int) msg->name_len;
    switch (msg->code) {
    case HY_BYE_FINISHED:
        if (self->config->exit_when_done_ms > 0) {
            log_info("manager finished (%.*s); exiting (--exit-when-done)", len, msg->name);
            self->done = true;
            break;
        }
        log_info("manager finished (%.*s); waiting for the next one", len, msg->name);
        s_disconnect(self, BACKOFF_MIN_MS);
        self->backoff = BACKOFF_MIN_MS;
        break;
    case HY_BYE_UNKNOWN:
        log_info("the manager at %s does not know this worker (%.*s): saying HELLO again", endpoint, len, msg->name);
        s_disconnect(self, 0);
        break;
    case HY_BYE_VERSION:
        s_version_mismatch(self);
        break;
    case HY_BYE_BANNED:
        log_error("the manager at %s banned this worker: %.*s; retrying in %d s", endpoint, len, msg->name,
                  BACKOFF_LONG_MS / 1000);
        s_disconnect(self, BACKOFF_LONG_MS);
        break;
    case HY_BYE_REFUSED:
        log_error("the manager at %s refused this worker: %.*s; retrying in %d s", endpoint, len, msg->name,
                  BACKOFF_LONG_MS / 1000);
        s_disconnect(self, BACKOFF_LONG_MS);
        break;
    case HY_BYE_STOPPING:
    default:
        log_info("the manager at %s is stopping (%.*s); reconnecting in %" PRId64 " ms", endpoint, len,
                 msg->name, self->backoff);
        s_retry(self);
        break;
    }
}

/* A message from the manager dropped: counted, and said one line every
   few seconds (a manager sending garbage does not fill the log). */
static void s_dropped(self_t *self, const char *what, const char *why)
{
    self->malformed++;
    uint64_t held;
    if (log_limit(&self->bad_log, &held))
        log_warn("dropped %s from the manager%s (%" PRIu64 " so far)%s", what, why, self->malformed, log_held(held));
}

static void s_on_manager(self_t *self)
{
    zframe_t *frame = zframe_recv(self->dealer);
    if (!frame)
        return;
    hy_msg_t msg;
    int rc = hy_decode(zframe_data(frame), zframe_size(frame), &msg);
    if (rc == HY_EVERSION) {
        self->malformed++;
        zframe_destroy(&frame);
        s_version_mismatch(self);
        return;
    }
    if (rc < 0 && !self->joined && zframe_size(frame) > 3 && zframe_data(frame)[3] == HY_WELCOME) {
        /* Nothing can be done with a manager whose WELCOME does not parse:
           say why, and do not ask again soon. */
        self->malformed++;
        zframe_destroy(&frame);
        log_error("the manager at %s sent a malformed WELCOME (heartbeat 10-600000 ms, liveness 1-1000, idle "
                  "interval from the heartbeat to 600000 ms): run the same hyades release on both; retrying in %d s",
                  self->config->endpoint, BACKOFF_LONG_MS / 1000);
        s_disconnect(self, BACKOFF_LONG_MS);
        return;
    }
    if (rc < 0) {
        s_dropped(self, "a malformed message", "");
        zframe_destroy(&frame);
        return;
    }
    if (!self->joined && msg.command != HY_WELCOME && msg.command != HY_GOODBYE) {
        s_dropped(self, hy_command_name(msg.command), " before WELCOME");
        zframe_destroy(&frame);
        return;
    }
    switch (msg.command) {
    case HY_WELCOME: s_on_welcome(self, &msg); break;
    case HY_JOB: s_on_job(self, &msg); break;
    case HY_UNITS: s_on_units(self, &msg); break;
    case HY_CANCEL: s_on_cancel(self, &msg); break;
    case HY_HEARTBEAT: s_on_heartbeat(self); break;
    case HY_GOODBYE: s_on_goodbye(self, &msg); break;
    default:
        s_dropped(self, hy_command_name(msg.command), " (unexpected)");
        break;
    }
    if (self->joined && msg.command != HY_WELCOME)
        self->backoff = BACKOFF_MIN_MS;   /* a manager that only welcomes, then falls silent, is retried ever slower */
    if (self->joined) {   /* any message proves the manager alive */
        self->expiry = zclock_mono() + self->config->liveness * self->manager_idle;
        self->heard_at = zclock_mono();
    }
    zframe_destroy(&frame);
}

/* What the socket's monitor saw. A CURVE handshake with the manager
   failed: our key is not among those it allows, or --manager-key is not its
   key (said at a bounded rate). Or the connection closed after WELCOME: it
   cannot carry on, since ZeroMQ would reconnect the socket by itself and
   deliver what waits in it (results of units handed out behind the old
   connection) to whatever manager listens there now, as a stranger's. So
   what the manager said before it closed is read, then the socket dropped
   and HELLO said again on a new one. Before WELCOME, ZeroMQ's own
   reconnecting is what we want. */
static void s_on_monitor(self_t *self)
{
    char what[300];
    uint64_t held;
    int event = hy_monitor_read(self->monitor, what, sizeof what, NULL);
    if (event == HY_EVENT_HANDSHAKE_FAILED && log_limit(&self->handshake_log, &held)) {
        if (self->config->cert)
            log_warn("the CURVE handshake with the manager failed at %s: is our certificate in its --allow "
                     "directory, and is --manager-key its certificate?%s", what, log_held(held));
        else   /* no keys: the manager closed the connection during ZeroMQ's greeting */
            log_warn("the handshake with the manager failed at %s (a manager that wants keys, or one that "
                     "stopped)%s", what, log_held(held));
    }
    if (event == HY_EVENT_DISCONNECTED && self->joined && !self->closed_at)
        self->closed_at = zclock_mono() + CLOSED_GRACE_MS;   /* its last messages may still be on their way in */
}

/* The joined connection closed a grace ago: what the manager said before is
   read by now (a GOODBYE has been acted on); start over on a new socket. */
static void s_on_closed(self_t *self)
{
    self->closed_at = 0;
    while (self->dealer && self->joined && !self->done && (zsock_events(self->dealer) & ZMQ_POLLIN))
        s_on_manager(self);
    if (self->dealer && self->joined && !self->done) {
        log_warn("the connection to the manager at %s closed; reconnecting in %" PRId64 " ms", self->config->endpoint,
                 self->backoff);
        s_retry(self);
    }
}

/* ------------------------------------------------------------ timers */

/* This worker stood still (stopped, or starved of CPU) since its poll
   last returned: the manager's messages waited in the socket meanwhile, so
   the clocks of its silence move on by that time, as the manager's clocks
   of ours do. Called when the poll returns, before anything is read. */
static void s_check_stood_still(self_t *self)
{
    int64_t now = zclock_mono(), still = self->tick_at ? now - self->tick_at - POLL_MAX_MS : 0;
    self->tick_at = now;
    if (still > STILL_MS) {
        self->heard_at += still;
        if (self->dealer)
            self->expiry += still;   /* the manager's silence, or the wait for its WELCOME */
    }
}

static void s_on_tick(self_t *self)
{
    int64_t now = zclock_mono();
    if (self->closed_at && now >= self->closed_at)
        s_on_closed(self);
    if (self->pool_at && now >= self->pool_at && !self->blocked)
        s_on_pool(self);
    if (self->config->exit_when_done_ms > 0 && !self->joined && now - self->heard_at >= self->config->exit_when_done_ms) {
        if (self->ever_joined) {
            log_info("no manager for %" PRId64 " s; exiting (--exit-when-done)", (now - self->heard_at) / 1000);
        } else {
            /* Never reached one (wrong address or key, or it never came): a
               failure, so that a batch system or orchestrator sees it. */
            log_error("no manager at %s in %" PRId64 " s; exiting (--exit-when-done)", self->config->endpoint,
                      (now - self->heard_at) / 1000);
            self->status = 1;
        }
        self->done = true;
        return;
    }
    if (!self->dealer) {
        if (now >= self->reconnect_at && !self->stopping)
            s_connect(self);
        return;
    }
    if (now >= self->expiry) {
        if (self->joined)
            log_warn("the manager at %s is silent; reconnecting in %" PRId64 " ms", self->config->endpoint,
                     self->backoff);
        else
            log_debug("no WELCOME from %s; trying again in %" PRId64 " ms", self->config->endpoint, self->backoff);
        /* A manager only busy or stopped reads this when it goes on: it
           hands this connection's units out again at once, and does not
           take it for a worker (or, never welcomed, a newcomer) gone
           silent. With nobody there, it is dropped with whatever results
           were waiting for the connection to come back. */
        hy_msg_t bye = {.command = HY_GOODBYE, .code = HY_BYE_STOPPING, .name = "manager silent: reconnecting"};
        s_send(self, &bye);
        zsock_set_linger(self->dealer, GIVE_UP_LINGER_MS);
        s_retry(self);
        return;
    }
    if (self->joined && now >= self->next_heartbeat) {
        hy_msg_t beat = {.command = HY_HEARTBEAT};
        s_send(self, &beat);
        self->next_heartbeat = now + s_heartbeat_ivl(self);
    }
}

static int64_t s_next_timer(const self_t *self)
{
    int64_t now = zclock_mono();
    int64_t at = !self->dealer ? self->reconnect_at : self->expiry;
    if (self->dealer && self->joined && self->next_heartbeat < at)
        at = self->next_heartbeat;
    if (self->stopping && self->stop_at + STOP_GRACE_MS < at)
        at = self->stop_at + STOP_GRACE_MS;
    if (self->pool_at && !self->blocked && self->pool_at < at)
        at = self->pool_at;
    if (self->closed_at && self->closed_at < at)
        at = self->closed_at;
    int64_t wait = at > now ? at - now : 0;
    return wait < POLL_MAX_MS ? wait : POLL_MAX_MS;
}

/* ------------------------------------------------------------ stopping */

/* The first stop signal: no new units; the queued ones go back at once. */
static void s_begin_stop(self_t *self)
{
    self->stopping = true;
    self->stop_at = zclock_mono();
    if (!self->joined) {
        log_info("stopping (not joined to a manager)");
        return;
    }
    s_on_pool(self);
    pool_result_t *back;
    size_t n = pool_take_queued(self->pool, &back);
    s_send_results(self, back, n);
    size_t running = pool_running(self->pool, NULL, NULL);
    log_info("stopping: %zu queued units given back; %zu running get %d ms to finish", n, running,
             STOP_GRACE_MS);
}

/* Whether the stop can end now: not joined, nothing left to compute, or
   the grace period over. */
static bool s_stop_due(self_t *self)
{
    if (!self->joined)
        return true;
    size_t queued;
    size_t running = pool_running(self->pool, NULL, &queued);
    return (running == 0 && queued == 0) || zclock_mono() >= self->stop_at + STOP_GRACE_MS;
}

/* The end of an orderly stop: last results, the rest given back, GOODBYE. */
static void s_end_stop(self_t *self)
{
    if (!self->joined)
        return;
    s_on_pool(self);
    pool_result_t *back;
    size_t n = pool_cancel_all(self->pool, &back);
    if (n)
        log_info("stopping: %zu running units cancelled and given back", n);
    s_send_results(self, back, n);
    hy_msg_t bye = {.command = HY_GOODBYE, .code = HY_BYE_STOPPING, .name = "worker stopping"};
    s_send(self, &bye);
    zsock_set_linger(self->dealer, STOP_LINGER_MS);   /* they may leave after the close */
}

/* ------------------------------------------------------------ the loop */

int session_run(const session_config_t *config)
{
    self_t self = {.config = config, .heard_at = zclock_mono(), .tick_at = zclock_mono(), .backoff = BACKOFF_MIN_MS,
                   .handshake_log = {.interval_ms = 5000}, .flood_log = {.interval_ms = 5000},
                   .bad_log = {.interval_ms = 5000}};
    if (config->kind_count)
        for (size_t i = 0; i < config->kind_count && i < HY_MAX_KINDS; i++)
            self.kinds[self.kind_count++] = config->kinds[i]->name;
    else
        for (size_t i = 0; i < job_count() && i < HY_MAX_KINDS; i++)
            self.kinds[self.kind_count++] = job_at(i)->name;
    self.pool = pool_new((size_t) config->threads, &config->failpoints);
    if (!self.pool) {
        log_error("cannot start %" PRId64 " compute threads: %s", config->threads, strerror(errno));
        signals_unblock();
        return 1;
    }
    self.jobs = zlist_new();
    log_info("worker %s starting: %" PRId64 " threads, manager %s", config->name, config->threads,
             config->endpoint);
    s_connect(&self);
    /* Every thread is started (compute threads, ZeroMQ's): from now on the
       stop signals reach this one and interrupt its poll. */
    signals_unblock();

    bool haste = false;
    while (true) {
        int signals = signals_count();
        if (signals >= 2) {
            haste = true;
            break;
        }
        if (signals == 1 && !self.stopping)
            s_begin_stop(&self);
        if ((self.stopping && s_stop_due(&self)) || self.done)
            break;
        /* Results waiting for room in the socket: wait for room, not for
           more results. */
        bool waiting = self.blocked && self.out_next < self.out_count && self.dealer;
        zmq_pollitem_t items[3] = {{zsock_resolve(pool_signal(self.pool)), 0, waiting ? 0 : ZMQ_POLLIN, 0}};
        int count = 1;
        if (self.dealer)
            items[count++] = (zmq_pollitem_t) {zsock_resolve(self.dealer), 0,
                                               (short) (ZMQ_POLLIN | (waiting ? ZMQ_POLLOUT : 0)), 0};
        if (self.dealer && self.monitor)
            items[count++] = (zmq_pollitem_t) {zsock_resolve(self.monitor), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(items, count, s_next_timer(&self));
        s_check_stood_still(&self);
        if (rc < 0 && zmq_errno() != EINTR) {
            log_error("poll failed: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (rc > 0 && ((items[0].revents & ZMQ_POLLIN) || (waiting && (items[1].revents & ZMQ_POLLOUT))))
            s_on_pool(&self);
        if (rc > 0 && count == 3 && (items[2].revents & ZMQ_POLLIN))
            s_on_monitor(&self);
        if (rc > 0 && self.dealer && (items[1].revents & ZMQ_POLLIN))
            s_on_manager(&self);
        s_on_tick(&self);
    }

    int64_t join_ms = HASTE_JOIN_MS;
    if (haste) {
        log_info("stopping at once (second signal)");
        if (self.dealer)
            zsock_set_linger(self.dealer, 0);
    } else if (self.stopping && self.joined) {
        s_end_stop(&self);
        int64_t left = self.stop_at + STOP_GRACE_MS + STOP_JOIN_MS - zclock_mono();
        join_ms = left > 0 ? left : 0;
    }
    log_info("stopped: %" PRIu64 " results sent, %" PRIu64 " units given back", self.sent, self.returned);
    pool_results_free(&self.out, self.out_count);
    hy_monitor_close(self.dealer, &self.monitor);
    zsock_destroy(&self.dealer);
    s_forget_jobs(&self);
    if (pool_destroy_within(&self.pool, join_ms) < 0)
        log_warn("a compute thread did not stop in time; exiting without it");
    zlist_destroy(&self.jobs);
    return self.status;
}
