/* session: the worker's connection to a manager. One thread, one DEALER, one
   poller over the socket and the compute threads' pipes.

   States: connecting (HELLO sent, waiting for WELCOME) and joined. A silent
   manager, or one that says GOODBYE, makes us drop the socket, wait out a
   backoff (doubling, capped) and introduce ourselves again on a new one. A new
   manager session id makes us forget the jobs we cached. */
#include "worker/session.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signals.h"
#include "jobs/job.h"
#include "worker/pool.h"

#include <inttypes.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 4000
#define MAX_CACHED_JOBS 16

typedef struct {
    uint64_t id;
    const job_kind_t *kind;   /* NULL when the kind is unknown here */
    uint8_t *params;
    size_t params_len;
} cached_job_t;

typedef struct {
    const session_config_t *config;
    zsock_t *dealer;          /* NULL while backing off */
    pool_t *pool;
    zpoller_t *poller;
    zlist_t *jobs;            /* cached_job_t*, newest last */
    bool joined;              /* WELCOME received on this socket */
    bool have_session;
    uint64_t session;         /* the manager session our cache belongs to */
    int64_t manager_hb;       /* manager's heartbeat interval, ms */
    int64_t expiry;           /* when the manager counts as silent */
    int64_t next_heartbeat;
    int64_t backoff;          /* next backoff, ms */
    int64_t reconnect_at;     /* while dealer is NULL: when to reconnect */
    uint64_t malformed;       /* messages dropped */
    uint64_t computed;        /* results sent */
    bool version_warned;
} self_t;

static void s_job_free(cached_job_t *job)
{
    free(job->params);
    free(job);
}

static cached_job_t *s_job_find(self_t *self, uint64_t id)
{
    for (cached_job_t *job = zlist_first(self->jobs); job; job = zlist_next(self->jobs))
        if (job->id == id)
            return job;
    return NULL;
}

static void s_send(self_t *self, hy_msg_t *msg)
{
    if (self->dealer && hy_send(self->dealer, NULL, 0, msg) < 0)
        log_debug("could not queue %s", hy_command_name(msg->command));
}

/* A new socket, and HELLO on it. */
static void s_connect(self_t *self)
{
    self->dealer = zsock_new(ZMQ_DEALER);
    hy_socket_setup(self->dealer);
    if (self->config->cert)
        curve_client_setup(self->dealer, self->config->cert, self->config->manager_key);
    zsock_set_reconnect_ivl(self->dealer, 100);
    zsock_set_reconnect_ivl_max(self->dealer, 2000);
    if (zsock_connect(self->dealer, "%s", self->config->endpoint) < 0) {
        log_error("cannot connect to %s", self->config->endpoint);
        zsock_destroy(&self->dealer);
        self->reconnect_at = zclock_mono() + BACKOFF_MAX_MS;
        return;
    }
    zpoller_add(self->poller, self->dealer);
    self->joined = false;
    hy_msg_t hello = {.command = HY_HELLO, .name = self->config->name,
                      .threads = (uint32_t) self->config->threads,
                      .heartbeat_ms = (uint32_t) self->config->heartbeat_ms};
    s_send(self, &hello);
    int64_t now = zclock_mono();
    self->expiry = now + self->config->heartbeat_ms * self->config->liveness;
    self->next_heartbeat = now + self->config->heartbeat_ms;
}

/* Drops the socket; reconnects after the backoff (0: at once). */
static void s_disconnect(self_t *self, int64_t delay)
{
    if (self->dealer) {
        zpoller_remove(self->poller, self->dealer);
        zsock_destroy(&self->dealer);
    }
    self->joined = false;
    self->reconnect_at = zclock_mono() + delay;
}

static void s_forget_jobs(self_t *self)
{
    cached_job_t *job;
    while ((job = zlist_pop(self->jobs)))
        s_job_free(job);
    pool_purge(self->pool);
}

/* ------------------------------------------------------------ manager messages */

static void s_on_welcome(self_t *self, const hy_msg_t *msg)
{
    if (!self->have_session || msg->session != self->session) {
        s_forget_jobs(self);
        self->session = msg->session;
        self->have_session = true;
    }
    if (!self->joined)
        log_info("joined manager at %s (session %016" PRIx64 ")", self->config->endpoint, msg->session);
    self->joined = true;
    self->manager_hb = msg->heartbeat_ms;
    self->backoff = BACKOFF_MIN_MS;
}

static void s_on_job(self_t *self, const hy_msg_t *msg)
{
    if (s_job_find(self, msg->job))
        return;
    cached_job_t *job = calloc(1, sizeof *job);
    job->id = msg->job;
    job->kind = job_find(msg->name, msg->name_len);
    if (!job->kind)
        log_warn("manager sent a job of unknown kind '%.*s'", (int) msg->name_len, msg->name);
    job->params = malloc(msg->data_len ? msg->data_len : 1);
    if (msg->data_len)
        memcpy(job->params, msg->data, msg->data_len);
    job->params_len = msg->data_len;
    if (zlist_size(self->jobs) >= MAX_CACHED_JOBS)
        s_job_free(zlist_pop(self->jobs));
    zlist_append(self->jobs, job);
}

static void s_on_units(self_t *self, const hy_msg_t *msg)
{
    cached_job_t *job = s_job_find(self, msg->job);
    for (size_t i = 0; i < msg->unit_count; i++) {
        uint64_t unit = hy_unit_at(msg, i);
        if (job) {
            pool_submit(self->pool, job->id, job->kind, job->params, job->params_len, unit);
        } else {
            const char *why = "unknown job";
            hy_msg_t failed = {.command = HY_RESULT, .job = msg->job, .unit = unit,
                               .status = HY_RESULT_FAILED, .data = (const uint8_t *) why,
                               .data_len = strlen(why)};
            s_send(self, &failed);
        }
    }
}

static void s_on_manager(self_t *self)
{
    zframe_t *frame = zframe_recv(self->dealer);
    if (!frame)
        return;
    hy_msg_t msg;
    int rc = hy_decode(zframe_data(frame), zframe_size(frame), &msg);
    if (rc == HY_EVERSION) {
        if (!self->version_warned)
            log_error("manager at %s speaks protocol version %u; this worker speaks version %u: "
                      "run the same hyades release on both", self->config->endpoint,
                      msg.peer_version, HY_PROTOCOL_VERSION);
        self->version_warned = true;
        self->malformed++;
        zframe_destroy(&frame);
        s_disconnect(self, BACKOFF_MAX_MS);
        return;
    }
    if (rc < 0) {
        self->malformed++;
        log_warn("dropped a malformed message from the manager (%" PRIu64 " so far)", self->malformed);
        zframe_destroy(&frame);
        return;
    }
    self->expiry = zclock_mono() + (self->manager_hb ? self->manager_hb : self->config->heartbeat_ms)
                                       * self->config->liveness;
    if (!self->joined && msg.command != HY_WELCOME && msg.command != HY_GOODBYE) {
        self->malformed++;
        log_warn("dropped %s from the manager before WELCOME", hy_command_name(msg.command));
        zframe_destroy(&frame);
        return;
    }
    switch (msg.command) {
    case HY_WELCOME: s_on_welcome(self, &msg); break;
    case HY_JOB: s_on_job(self, &msg); break;
    case HY_UNITS: s_on_units(self, &msg); break;
    case HY_HEARTBEAT: break;
    case HY_GOODBYE:
        log_info("manager said goodbye (%.*s); waiting for the next one", (int) msg.name_len, msg.name);
        pool_purge(self->pool);
        s_disconnect(self, BACKOFF_MIN_MS);
        self->backoff = BACKOFF_MIN_MS;
        break;
    default:
        self->malformed++;
        log_warn("dropped unexpected %s from the manager", hy_command_name(msg.command));
        break;
    }
    zframe_destroy(&frame);
}

/* A compute thread finished a unit: send it on if it still belongs to a job
   of the manager we are joined to. */
static void s_on_result(self_t *self, pool_result_t result)
{
    if (self->joined && s_job_find(self, result.job)) {
        hy_msg_t msg = {.command = HY_RESULT, .job = result.job, .unit = result.unit,
                        .status = result.status, .data = result.data, .data_len = result.len};
        s_send(self, &msg);
        self->computed++;
        if (result.status != HY_RESULT_OK)
            log_warn("unit %" PRIu64 " failed: %.*s", result.unit, (int) result.len, (char *) result.data);
    }
    free(result.data);
}

/* ------------------------------------------------------------ timers */

static void s_on_tick(self_t *self)
{
    int64_t now = zclock_mono();
    if (!self->dealer) {
        if (now >= self->reconnect_at)
            s_connect(self);
        return;
    }
    if (now >= self->expiry) {
        log_warn("manager at %s is silent; reconnecting in %" PRId64 " ms", self->config->endpoint,
                 self->backoff);
        s_disconnect(self, self->backoff);
        self->backoff = self->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff * 2;
        return;
    }
    if (self->joined && now >= self->next_heartbeat) {
        hy_msg_t beat = {.command = HY_HEARTBEAT};
        s_send(self, &beat);
        self->next_heartbeat = now + self->config->heartbeat_ms;
    }
}

static int64_t s_next_timer(self_t *self)
{
    int64_t now = zclock_mono();
    int64_t at = !self->dealer ? self->reconnect_at
               : self->joined && self->next_heartbeat < self->expiry ? self->next_heartbeat
                                                                     : self->expiry;
    return at > now ? at - now : 0;
}

int session_run(const session_config_t *config)
{
    self_t self = {.config = config, .backoff = BACKOFF_MIN_MS};
    self.pool = pool_new((size_t) config->threads, &config->failpoints);
    self.jobs = zlist_new();
    self.poller = zpoller_new(NULL);
    pool_poll_add(self.pool, self.poller);
    log_info("worker %s starting: %" PRId64 " threads, manager %s", config->name, config->threads,
             config->endpoint);
    s_connect(&self);
    /* Every thread is started (compute threads, ZeroMQ's): from now on
       SIGINT and SIGTERM reach this one and wake its poller at once. */
    signals_unblock();

    while (!zsys_interrupted) {
        void *which = zpoller_wait(self.poller, (int) s_next_timer(&self));
        if (zpoller_terminated(self.poller))
            break;
        if (which && self.dealer && which == self.dealer)
            s_on_manager(&self);
        else if (which) {
            pool_result_t result;
            if (pool_recv(self.pool, which, &result) == 0)
                s_on_result(&self, result);
        }
        s_on_tick(&self);
    }

    log_info("stopping: %" PRIu64 " results sent", self.computed);
    if (self.dealer && self.joined) {
        hy_msg_t bye = {.command = HY_GOODBYE, .name = "worker stopping"};
        s_send(&self, &bye);
        zsock_set_linger(self.dealer, 200);   /* the goodbye may leave after the close */
    }
    s_forget_jobs(&self);
    pool_destroy(&self.pool);
    if (self.dealer)
        zsock_destroy(&self.dealer);
    zpoller_destroy(&self.poller);
    zlist_destroy(&self.jobs);
    return 0;
}
