/* pool: the worker's compute threads, each fed through an inproc pipe and
   computing one unit at a time; the pool hands the next queued unit to
   whichever thread has room. */
#include "worker/pool.h"
#include "common/protocol.h"

#include <pthread.h>

typedef struct {
    uint64_t job, unit;
    const job_kind_t *kind;   /* registry entry (immutable), or NULL */
    uint8_t *params;          /* owned copy */
    size_t params_len;
} task_t;

/* Units a thread holds: the one it computes and the next, already in its
   pipe, so that it never waits for a hand-over between two units. */
#define THREAD_DEPTH 2

/* A compute thread and the two ends of its inproc pipe. Both ends are made
   and destroyed by the pool's thread; the compute thread uses its end only
   between its start and the join. (Not a czmq actor: an actor's thread may
   still be closing its end when the program exits, which czmq's shutdown
   then waits out for 200 ms.) */
typedef struct {
    pthread_t tid;
    zsock_t *pipe;       /* our end */
    zsock_t *theirs;     /* the thread's end */
    const failpoints_t *failpoints;
    size_t held;         /* units sent to it, result not yet back (<= THREAD_DEPTH) */
} thread_t;

struct pool_t {
    thread_t *threads;
    size_t count;
    zlist_t *queue;   /* task_t*, oldest first */
    size_t held;      /* units held by threads */
};

/* ------------------------------------------------------------ one thread */

/* Runs in its own thread: receives TASK, answers RESULT, until $TERM. It keeps
   the decoded parameters of the last job it saw. */
static void *s_thread(void *args)
{
    thread_t *self = args;
    zsock_t *pipe = self->theirs;
    const failpoints_t *failpoints = self->failpoints;
    const job_kind_t *ctx_kind = NULL;
    void *ctx = NULL;
    uint64_t ctx_job = 0;
    while (true) {
        char *command = NULL;
        uint64_t job = 0, unit = 0;
        void *kind_ptr = NULL;
        uint8_t *params = NULL;
        size_t params_len = 0;
        if (zsock_recv(pipe, "s8pb8", &command, &job, &kind_ptr, &params, &params_len, &unit) < 0)
            break;   /* interrupted */
        if (!command || streq(command, "$TERM")) {
            free(command);
            free(params);
            break;
        }
        const job_kind_t *kind = kind_ptr;
        if (kind && (ctx_kind != kind || ctx_job != job || !ctx)) {
            if (ctx_kind && ctx)
                ctx_kind->unload(ctx);
            ctx = kind->load(params, params_len);
            ctx_kind = kind;
            ctx_job = job;
        }
        uint8_t *out = NULL;
        size_t out_len = 0;
        uint8_t status = HY_RESULT_OK;
        const char *why = NULL;
        if (!kind)
            why = "unknown job kind";
        else if (!ctx)
            why = "invalid job parameters";
        else {
            failpoints_before(failpoints, unit);
            int64_t start = zclock_mono();
            if (kind->compute(ctx, unit, &out, &out_len) < 0)
                why = "unit out of range";
            failpoints_after(failpoints, zclock_mono() - start);
        }
        if (why) {
            status = HY_RESULT_FAILED;
            free(out);
            out = (uint8_t *) strdup(why);
            out_len = strlen(why);
        }
        zsock_send(pipe, "881b", job, unit, status, out, out_len);
        free(out);
        free(command);
        free(params);
    }
    if (ctx_kind && ctx)
        ctx_kind->unload(ctx);
    return NULL;
}

/* ------------------------------------------------------------ the pool */

static void s_task_free(task_t **task_p)
{
    if (*task_p) {
        free((*task_p)->params);
        free(*task_p);
        *task_p = NULL;
    }
}

/* Hands queued tasks to threads with room, the least loaded first. */
static void s_dispatch(pool_t *self)
{
    for (size_t depth = 0; depth < THREAD_DEPTH; depth++)
        for (size_t i = 0; i < self->count && zlist_size(self->queue) > 0; i++) {
            thread_t *t = &self->threads[i];
            if (t->held > depth)
                continue;
            task_t *task = zlist_pop(self->queue);
            zsock_send(t->pipe, "s8pb8", "TASK", task->job, (void *) task->kind, task->params,
                       task->params_len, task->unit);
            t->held++;
            self->held++;
            s_task_free(&task);
        }
}

pool_t *pool_new(size_t threads, const failpoints_t *failpoints)
{
    assert(threads >= 1);
    pool_t *self = calloc(1, sizeof *self);
    self->threads = calloc(threads, sizeof *self->threads);
    self->count = threads;
    self->queue = zlist_new();
    for (size_t i = 0; i < threads; i++) {
        thread_t *t = &self->threads[i];
        char bind[80], connect[80];
        snprintf(bind, sizeof bind, "@inproc://hyades-pool-%p-%zu", (void *) self, i);
        snprintf(connect, sizeof connect, ">%s", bind + 1);
        t->pipe = zsock_new_pair(bind);
        t->theirs = zsock_new_pair(connect);
        zsock_set_sndhwm(t->pipe, 0);
        zsock_set_sndhwm(t->theirs, 0);
        t->failpoints = failpoints;
        int rc = pthread_create(&t->tid, NULL, s_thread, t);
        assert(rc == 0);
    }
    return self;
}

void pool_destroy(pool_t **self_p)
{
    pool_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        zstr_send(self->threads[i].pipe, "$TERM");
    for (size_t i = 0; i < self->count; i++) {
        pthread_join(self->threads[i].tid, NULL);
        zsock_destroy(&self->threads[i].theirs);
        zsock_destroy(&self->threads[i].pipe);
    }
    pool_purge(self);
    zlist_destroy(&self->queue);
    free(self->threads);
    free(self);
    *self_p = NULL;
}

void pool_submit(pool_t *self, uint64_t job, const job_kind_t *kind, const uint8_t *params,
                 size_t params_len, uint64_t unit)
{
    task_t *task = calloc(1, sizeof *task);
    task->job = job;
    task->unit = unit;
    task->kind = kind;
    task->params = malloc(params_len ? params_len : 1);
    if (params_len)
        memcpy(task->params, params, params_len);
    task->params_len = params_len;
    zlist_append(self->queue, task);
    s_dispatch(self);
}

void pool_purge(pool_t *self)
{
    task_t *task;
    while ((task = zlist_pop(self->queue)))
        s_task_free(&task);
}

void pool_poll_add(pool_t *self, zpoller_t *poller)
{
    for (size_t i = 0; i < self->count; i++)
        zpoller_add(poller, self->threads[i].pipe);
}

int pool_recv(pool_t *self, void *which, pool_result_t *result)
{
    thread_t *t = NULL;
    for (size_t i = 0; i < self->count && !t; i++)
        if (which == self->threads[i].pipe)
            t = &self->threads[i];
    if (!t)
        return -1;
    memset(result, 0, sizeof *result);
    int rc = zsock_recv(t->pipe, "881b", &result->job, &result->unit, &result->status,
                        &result->data, &result->len);
    if (t->held > 0) {
        t->held--;
        self->held--;
    }
    s_dispatch(self);
    return rc;
}
