/* pool: compute threads around one queue of tasks and one list of finished
   results, both behind one mutex. A thread takes the oldest task, computes it
   outside the lock with its own cancel flag, and puts the result on the list.
   It wakes the session (one byte on an inproc PAIR socket, at most once
   between two takes) only when the results should leave now: the pool ran
   out of work, the queued work has become short and enough results wait to
   be worth a refill, or the list is big. Otherwise the session comes for
   them on its own slow timer, so that a message carries many. */
#include "worker/pool.h"
#include "common/protocol.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

/* ------------------------------------------------------------ jobs */

struct pool_job_t {
    uint64_t id;               /* the manager's job id */
    const job_kind_t *kind;    /* registry entry (immutable), or NULL: unknown here */
    void *ctx;                 /* kind->load's context, read-only; NULL when refused */
    const char *error;         /* why its units fail, or NULL */
    atomic_size_t refs;        /* references: the session's cache, tasks, results */
};

pool_job_t *pool_job_new(uint64_t id, const job_kind_t *kind, const uint8_t *params, size_t params_len)
{
    pool_job_t *job = calloc(1, sizeof *job);
    job->id = id;
    job->kind = kind;
    job->ctx = kind ? kind->load(params, params_len) : NULL;
    job->error = !kind ? "unknown job kind" : !job->ctx ? "invalid job parameters" : NULL;
    atomic_init(&job->refs, 1);
    return job;
}

pool_job_t *pool_job_ref(pool_job_t *job)
{
    atomic_fetch_add_explicit(&job->refs, 1, memory_order_relaxed);
    return job;
}

void pool_job_unref(pool_job_t **job_p)
{
    pool_job_t *job = *job_p;
    if (!job)
        return;
    *job_p = NULL;
    /* acq_rel: whatever other holders did with the job happens before the free. */
    if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) == 1) {
        if (job->ctx)
            job->kind->unload(job->ctx);
        free(job);
    }
}

uint64_t pool_job_id(const pool_job_t *job) { return job->id; }
const char *pool_job_error(const pool_job_t *job) { return job->error; }
size_t pool_job_refs(const pool_job_t *job)
{
    return atomic_load_explicit(&((pool_job_t *) job)->refs, memory_order_relaxed);
}

void pool_results_free(pool_result_t **results_p, size_t count)
{
    pool_result_t *results = *results_p;
    if (!results)
        return;
    for (size_t i = 0; i < count; i++) {
        free(results[i].data);
        pool_job_unref(&results[i].job);
    }
    free(results);
    *results_p = NULL;
}

/* ------------------------------------------------------------ state */

/* One unit to compute; holds a reference to its job. */
typedef struct task_t {
    pool_job_t *job;
    uint64_t unit;
    struct task_t *next;     /* queue order: oldest first */
} task_t;

typedef struct {
    pthread_t tid;
    struct pool_t *pool;
    atomic_bool cancel;      /* set: stop the unit being computed (it gives no result) */
    task_t *task;            /* the unit being computed, or NULL (under the mutex) */
} thread_t;

/* A growable array of results. */
typedef struct {
    pool_result_t *items;
    size_t count, cap;
} results_t;

struct pool_t {
    pthread_mutex_t mutex;   /* guards everything below but the sockets' other ends */
    pthread_cond_t work;     /* a task was queued, or the pool stops */
    pthread_cond_t gone;     /* a thread left its loop (CLOCK_MONOTONIC) */
    task_t *head, *tail;     /* queued tasks */
    size_t queued;
    results_t done;          /* finished, not yet taken (bounded: then threads wait) */
    size_t done_bytes;       /* their payload */
    int64_t unit_ns;         /* a unit's compute time, moving average (0: none yet) */
    bool woken;              /* the session was signalled since its last take */
    thread_t *threads;
    size_t count;
    size_t alive;            /* threads still in their loop */
    bool stopping;           /* threads leave their loop */
    bool abandoned;          /* destroy gave up waiting: threads touch nothing shared */
    zsock_t *signal_in;      /* the session polls and drains this end */
    zsock_t *signal_out;     /* threads send one byte on this end, under the mutex */
    const failpoints_t *failpoints;
    struct pool_t *next_abandoned;   /* in s_abandoned */
};

/* Pools left to threads that ignored a cancel: kept reachable (they are
   still in use) until the process exits. Touched by destroying threads only. */
static pool_t *s_abandoned;
static pthread_mutex_t s_abandoned_mutex = PTHREAD_MUTEX_INITIALIZER;

static void s_results_push(results_t *list, pool_result_t result)
{
    if (list->count == list->cap) {
        list->cap = list->cap ? 2 * list->cap : 64;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
    }
    list->items[list->count++] = result;
}

/* Hands the array to the caller: returns its size, *out NULL when empty. */
static size_t s_results_give(results_t *list, pool_result_t **out)
{
    size_t n = list->count;
    if (n == 0) {
        free(list->items);
        *out = NULL;
    } else {
        *out = list->items;
    }
    memset(list, 0, sizeof *list);
    return n;
}

static pool_result_t s_returned(pool_job_t *job, uint64_t unit)
{
    return (pool_result_t) {.job = pool_job_ref(job), .unit = unit, .status = HY_RESULT_RETURNED};
}

static bool s_matches(uint64_t job, const uint64_t *units, size_t count, const pool_job_t *task_job,
                      uint64_t unit)
{
    if (task_job->id != job)
        return false;
    for (size_t i = 0; i < count; i++)
        if (units[i] == unit)
            return true;
    return count == 0;
}

/* ------------------------------------------------------------ one thread */

static bool s_cancelled(const thread_t *t)
{
    return atomic_load_explicit(&t->cancel, memory_order_relaxed);
}

/* Computes task into result (status, data). Returns false when the unit was
   cancelled: it then has no result. */
static bool s_compute(thread_t *t, const task_t *task, pool_result_t *result)
{
    const failpoints_t *fp = t->pool->failpoints;
    const pool_job_t *job = task->job;
    const char *why = job->error;
    uint8_t *out = NULL;
    size_t len = 0;
    if (!why) {
        int decision = fp ? failpoints_before(fp, task->unit, &t->cancel) : FAILPOINT_COMPUTE;
        if (s_cancelled(t))
            return false;
        if (decision == FAILPOINT_REFUSE) {
            why = FAILPOINT_REFUSED;
        } else {
            int64_t start = zclock_mono();
            int rc = job->kind->compute(job->ctx, task->unit, &t->cancel, &out, &len);
            if (rc == JOB_CANCELLED)
                return false;
            if (rc != 0)
                why = rc == JOB_RANGE     ? "unit out of range"
                      : rc == JOB_FAILED  ? "out of memory on this worker"
                      : rc == JOB_MISSING ? "a library this job needs cannot be loaded on this worker"
                                          : "compute failed";
            else if (len > HY_MAX_PAYLOAD)
                why = "payload larger than 16 MiB";
            else if (fp)
                failpoints_after(fp, task->unit, zclock_mono() - start, out, len, &t->cancel);
        }
    }
    if (why) {
        free(out);
        out = (uint8_t *) strdup(why);
        len = strlen(why);
    }
    result->status = why ? HY_RESULT_FAILED : HY_RESULT_OK;
    result->data = out;
    result->len = len;
    return true;
}

static int64_t s_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Under the mutex: the finished results fill the bound; threads wait. */
static bool s_full(const pool_t *pool)
{
    return pool->done.count >= POOL_DONE_MAX || pool->done_bytes >= POOL_DONE_BYTES;
}

/* Under the mutex: whether the finished results should leave now. They do
   when the pool has nothing left to compute; when units are long
   (POOL_PROMPT_MS); when a message's worth waits;
   and when the work still queued would last each thread less than
   POOL_LEAD_MS while a quarter or more of what this worker holds is done
   (the manager refills a quarter at a time: the refill must be on its way
   before the queue runs dry). Else they wait for the session's timer. */
static bool s_results_due(const pool_t *pool)
{
    size_t running = 0;
    for (size_t i = 0; i < pool->count; i++)
        running += pool->threads[i].task != NULL;
    if (running == 0 && pool->queued == 0)
        return true;
    if (pool->unit_ns >= (int64_t) POOL_PROMPT_MS * 1000000)
        return true;
    if (pool->done.count >= POOL_WAKE_RESULTS || pool->done_bytes >= POOL_WAKE_BYTES || s_full(pool))
        return true;
    double queued_ns = (double) pool->queued * (double) pool->unit_ns;
    bool short_queue = queued_ns <= (double) POOL_LEAD_MS * 1e6 * (double) pool->count;
    return short_queue && 4 * pool->done.count >= pool->done.count + pool->queued + running;
}

/* Runs in its own thread (signals blocked as in its creator): takes tasks
   until the pool stops. */
static void *s_thread(void *arg)
{
    thread_t *t = arg;
    pool_t *pool = t->pool;
    pthread_mutex_lock(&pool->mutex);
    while (true) {
        /* Results the session does not take (its manager does not read
           them) hold the threads back: memory stays bounded. */
        while (!pool->stopping && (!pool->head || s_full(pool)))
            pthread_cond_wait(&pool->work, &pool->mutex);
        if (pool->stopping)
            break;
        task_t *task = pool->head;
        pool->head = task->next;
        if (!pool->head)
            pool->tail = NULL;
        pool->queued--;
        t->task = task;
        atomic_store_explicit(&t->cancel, false, memory_order_relaxed);
        pthread_mutex_unlock(&pool->mutex);

        pool_result_t result = {.job = task->job, .unit = task->unit};   /* the task's reference moves here */
        int64_t start = s_clock_ns();
        bool keep = s_compute(t, task, &result);
        int64_t took = s_clock_ns() - start;

        pthread_mutex_lock(&pool->mutex);
        t->task = NULL;
        if (keep && result.status == HY_RESULT_OK)   /* (not cut short, nor refused) */
            pool->unit_ns = pool->unit_ns ? pool->unit_ns + (took - pool->unit_ns) / 8 : took;
        /* Decided under the mutex: once pool_cancel returns, no result of
           what it cancelled can appear. */
        if (keep && !s_cancelled(t) && !pool->abandoned) {
            s_results_push(&pool->done, result);
            pool->done_bytes += result.len;
            if (!pool->woken && s_results_due(pool)) {
                static const uint8_t wake = 1;
                zmq_send(zsock_resolve(pool->signal_out), &wake, 1, ZMQ_DONTWAIT);
                pool->woken = true;
            }
        } else {
            free(result.data);
            pool_job_unref(&result.job);
        }
        free(task);
    }
    pool->alive--;
    pthread_cond_broadcast(&pool->gone);
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

/* ------------------------------------------------------------ the pool */

pool_t *pool_new(size_t threads, const failpoints_t *failpoints)
{
    assert(threads >= 1);
    pool_t *self = calloc(1, sizeof *self);
    pthread_mutex_init(&self->mutex, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->gone, &attr);
    pthread_condattr_destroy(&attr);
    self->failpoints = failpoints;
    self->signal_in = zsock_new_pair(NULL);
    self->signal_out = zsock_new_pair(NULL);
    int rc = self->signal_in && self->signal_out ? 0 : -1;
    if (rc == 0) {
        zsock_set_sndhwm(self->signal_out, 0);
        zsock_set_linger(self->signal_out, 0);
        zsock_set_linger(self->signal_in, 0);
        rc = zsock_bind(self->signal_in, "inproc://hyades-pool-%p", (void *) self);
    }
    if (rc == 0)
        rc = zsock_connect(self->signal_out, "inproc://hyades-pool-%p", (void *) self);
    self->threads = calloc(threads, sizeof *self->threads);
    if (rc != 0 || !self->threads) {   /* out of sockets or memory */
        int why = zmq_errno() ? zmq_errno() : ENOMEM;
        pool_destroy(&self);
        errno = why;
        return NULL;
    }
    for (size_t i = 0; i < threads; i++) {
        thread_t *t = &self->threads[i];
        t->pool = self;
        atomic_init(&t->cancel, false);
        pthread_mutex_lock(&self->mutex);
        rc = pthread_create(&t->tid, NULL, s_thread, t);
        if (rc == 0)
            self->count++, self->alive++;
        pthread_mutex_unlock(&self->mutex);
        if (rc != 0) {   /* a limit on threads or memory: those started stop */
            pool_destroy(&self);
            errno = rc;
            return NULL;
        }
    }
    return self;
}

int pool_destroy_within(pool_t **self_p, int64_t timeout_ms)
{
    pool_t *self = *self_p;
    if (!self)
        return 0;
    *self_p = NULL;
    pool_cancel_all(self, NULL);
    pthread_mutex_lock(&self->mutex);
    self->stopping = true;
    pthread_cond_broadcast(&self->work);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms >= 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    while (self->alive > 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&self->gone, &self->mutex);
        else if (pthread_cond_timedwait(&self->gone, &self->mutex, &until) == ETIMEDOUT)
            break;
    }
    bool left = self->alive > 0;
    if (left)
        self->abandoned = true;   /* the threads still out touch nothing but the mutex and their task */
    pthread_mutex_unlock(&self->mutex);
    zsock_destroy(&self->signal_out);
    zsock_destroy(&self->signal_in);
    if (left) {   /* the rest of the pool stays for the threads still computing */
        pthread_mutex_lock(&s_abandoned_mutex);
        self->next_abandoned = s_abandoned;
        s_abandoned = self;
        pthread_mutex_unlock(&s_abandoned_mutex);
        return -1;
    }
    for (size_t i = 0; i < self->count; i++)
        pthread_join(self->threads[i].tid, NULL);
    pthread_cond_destroy(&self->work);
    pthread_cond_destroy(&self->gone);
    pthread_mutex_destroy(&self->mutex);
    free(self->done.items);
    free(self->threads);
    free(self);
    return 0;
}

void pool_destroy(pool_t **self_p)
{
    pool_destroy_within(self_p, -1);
}

zsock_t *pool_signal(pool_t *self) { return self->signal_in; }

void pool_submit(pool_t *self, pool_job_t *job, uint64_t unit) { pool_submit_many(self, job, &unit, 1); }

void pool_submit_many(pool_t *self, pool_job_t *job, const uint64_t *units, size_t count)
{
    if (count == 0)
        return;
    /* The tasks are linked outside the lock, then queued in one go. */
    task_t *first = NULL, *last = NULL;
    for (size_t i = 0; i < count; i++) {
        task_t *task = calloc(1, sizeof *task);
        task->job = pool_job_ref(job);
        task->unit = units[i];
        if (last)
            last->next = task;
        else
            first = task;
        last = task;
    }
    pthread_mutex_lock(&self->mutex);
    if (self->tail)
        self->tail->next = first;
    else
        self->head = first;
    self->tail = last;
    self->queued += count;
    if (count == 1)
        pthread_cond_signal(&self->work);
    else
        pthread_cond_broadcast(&self->work);
    pthread_mutex_unlock(&self->mutex);
}

size_t pool_take(pool_t *self, pool_result_t **results)
{
    pthread_mutex_lock(&self->mutex);
    uint8_t byte;
    while (zmq_recv(zsock_resolve(self->signal_in), &byte, 1, ZMQ_DONTWAIT) >= 0)
        ;
    size_t n = s_results_give(&self->done, results);
    self->done_bytes = 0;
    self->woken = false;
    if (n)
        pthread_cond_broadcast(&self->work);   /* room again for threads held back */
    pthread_mutex_unlock(&self->mutex);
    return n;
}

/* Under the mutex: removes the queued tasks that match (all when all), moving
   them into returned as RETURNED results when it is not NULL. */
static size_t s_unqueue(pool_t *self, bool all, uint64_t job, const uint64_t *units, size_t count,
                        results_t *returned)
{
    size_t n = 0;
    task_t **link = &self->head, *last = NULL;
    while (*link) {
        task_t *task = *link;
        if (all || s_matches(job, units, count, task->job, task->unit)) {
            *link = task->next;
            if (returned)
                s_results_push(returned, s_returned(task->job, task->unit));
            pool_job_unref(&task->job);
            free(task);
            self->queued--;
            n++;
        } else {
            last = task;
            link = &task->next;
        }
    }
    self->tail = last;
    return n;
}

/* Under the mutex: tells the threads computing a matching unit to stop. */
static size_t s_stop_running(pool_t *self, bool all, uint64_t job, const uint64_t *units, size_t count,
                             results_t *returned)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++) {
        thread_t *t = &self->threads[i];
        if (t->task && !s_cancelled(t)
            && (all || s_matches(job, units, count, t->task->job, t->task->unit))) {
            atomic_store_explicit(&t->cancel, true, memory_order_relaxed);
            if (returned)
                s_results_push(returned, s_returned(t->task->job, t->task->unit));
            n++;
        }
    }
    return n;
}

/* Under the mutex: drops the finished results that match. */
static size_t s_drop_done(pool_t *self, bool all, uint64_t job, const uint64_t *units, size_t count)
{
    size_t kept = 0, n = 0;
    for (size_t i = 0; i < self->done.count; i++) {
        pool_result_t *r = &self->done.items[i];
        if (all || s_matches(job, units, count, r->job, r->unit)) {
            self->done_bytes -= r->len;
            free(r->data);
            pool_job_unref(&r->job);
            n++;
        } else {
            self->done.items[kept++] = *r;
        }
    }
    self->done.count = kept;
    return n;
}

size_t pool_cancel(pool_t *self, uint64_t job, const uint64_t *units, size_t count)
{
    pthread_mutex_lock(&self->mutex);
    size_t n = s_unqueue(self, false, job, units, count, NULL);
    n += s_stop_running(self, false, job, units, count, NULL);
    n += s_drop_done(self, false, job, units, count);
    pthread_mutex_unlock(&self->mutex);
    return n;
}

size_t pool_cancel_all(pool_t *self, pool_result_t **returned)
{
    results_t list = {0};
    pthread_mutex_lock(&self->mutex);
    size_t n = s_unqueue(self, true, 0, NULL, 0, returned ? &list : NULL);
    n += s_stop_running(self, true, 0, NULL, 0, returned ? &list : NULL);
    s_drop_done(self, true, 0, NULL, 0);
    pthread_mutex_unlock(&self->mutex);
    if (returned)
        s_results_give(&list, returned);
    return n;
}

size_t pool_take_queued(pool_t *self, pool_result_t **returned)
{
    results_t list = {0};
    pthread_mutex_lock(&self->mutex);
    s_unqueue(self, true, 0, NULL, 0, &list);
    pthread_mutex_unlock(&self->mutex);
    return s_results_give(&list, returned);
}

size_t pool_running(pool_t *self, pool_result_t **running, size_t *queued)
{
    results_t list = {0};
    size_t n = 0;
    pthread_mutex_lock(&self->mutex);
    for (size_t i = 0; i < self->count; i++) {
        task_t *task = self->threads[i].task;
        if (task && !s_cancelled(&self->threads[i])) {
            n++;
            if (running)
                s_results_push(&list, s_returned(task->job, task->unit));
        }
    }
    if (queued)
        *queued = self->queued;
    pthread_mutex_unlock(&self->mutex);
    if (running)
        s_results_give(&list, running);
    return n;
}
