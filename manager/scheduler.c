/* scheduler: queues of pending units. A queue is a stack of re-queued units
   plus a list of arithmetic progressions (start, stride), so that a job of a
   billion units costs a few words, not a billion entries. */
#include "manager/scheduler.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t next, stride;   /* units next, next + stride, ... below the total */
} progression_t;

typedef struct {
    uint64_t *retry;         /* re-queued units; the last one is issued first */
    size_t retry_count, retry_cap;
    progression_t *prog;     /* progressions, served in order */
    size_t prog_count, prog_cap;
} queue_t;

struct scheduler_t {
    uint64_t units;
    queue_t *queues;
    size_t slots;
    int64_t times[STRAGGLER_WINDOW];  /* ring of recent round trips, ms */
    size_t time_count;                /* entries ever recorded */
    int64_t median;                   /* of the ring, when median_at == time_count */
    size_t median_at;
};

static void s_push_retry(queue_t *q, uint64_t unit)
{
    if (q->retry_count == q->retry_cap) {
        q->retry_cap = q->retry_cap ? q->retry_cap * 2 : 16;
        q->retry = realloc(q->retry, q->retry_cap * sizeof *q->retry);
    }
    q->retry[q->retry_count++] = unit;
}

static void s_push_prog(queue_t *q, uint64_t next, uint64_t stride)
{
    if (q->prog_count == q->prog_cap) {
        q->prog_cap = q->prog_cap ? q->prog_cap * 2 : 4;
        q->prog = realloc(q->prog, q->prog_cap * sizeof *q->prog);
    }
    q->prog[q->prog_count++] = (progression_t) {next, stride};
}

scheduler_t *scheduler_new(sched_policy_t policy, uint64_t units, size_t slots)
{
    assert(slots >= 1);
    if (policy == SCHED_DYNAMIC)
        slots = 1;
    scheduler_t *self = calloc(1, sizeof *self);
    self->units = units;
    self->slots = slots;
    self->queues = calloc(slots, sizeof *self->queues);
    for (size_t s = 0; s < slots; s++)
        if (s < units)
            s_push_prog(&self->queues[s], s, slots);
    return self;
}

void scheduler_destroy(scheduler_t **self_p)
{
    scheduler_t *self = *self_p;
    if (!self)
        return;
    for (size_t s = 0; s < self->slots; s++) {
        free(self->queues[s].retry);
        free(self->queues[s].prog);
    }
    free(self->queues);
    free(self);
    *self_p = NULL;
}

bool scheduler_next(scheduler_t *self, size_t slot, bool (*is_pending)(uint64_t, void *), void *arg,
                    uint64_t *unit)
{
    assert(slot < self->slots);
    queue_t *q = &self->queues[slot];
    while (q->retry_count > 0) {
        uint64_t u = q->retry[--q->retry_count];
        if (is_pending(u, arg)) {
            *unit = u;
            return true;
        }
    }
    while (q->prog_count > 0) {
        progression_t *p = &q->prog[0];
        if (p->next >= self->units) {
            memmove(q->prog, q->prog + 1, (q->prog_count - 1) * sizeof *q->prog);
            q->prog_count--;
            continue;
        }
        uint64_t u = p->next;
        /* Past the end, or a stride that would wrap around: exhausted. */
        p->next = self->units - u > p->stride ? u + p->stride : self->units;
        if (is_pending(u, arg)) {
            *unit = u;
            return true;
        }
    }
    return false;
}

void scheduler_requeue(scheduler_t *self, size_t slot, uint64_t unit)
{
    assert(slot < self->slots);
    s_push_retry(&self->queues[slot], unit);
}

void scheduler_reassign(scheduler_t *self, size_t lost, const size_t *survivors, size_t m)
{
    assert(lost < self->slots && m >= 1);
    queue_t *q = &self->queues[lost];
    for (size_t i = 0; i < q->retry_count; i++)
        s_push_retry(&self->queues[survivors[i % m]], q->retry[i]);
    q->retry_count = 0;
    for (size_t i = 0; i < q->prog_count; i++) {
        progression_t p = q->prog[i];
        /* (next, stride) becomes m progressions (next + j*stride, m*stride). */
        for (size_t j = 0; j < m; j++) {
            uint64_t offset = (uint64_t) j * p.stride;
            if (p.next >= self->units || offset >= self->units - p.next)
                break;
            uint64_t stride = p.stride > self->units / m ? self->units : p.stride * m;
            s_push_prog(&self->queues[survivors[j]], p.next + offset, stride);
        }
    }
    q->prog_count = 0;
}

void scheduler_merge(scheduler_t *self, size_t from, size_t to)
{
    assert(from < self->slots && to < self->slots);
    if (from == to)
        return;
    size_t one[1] = {to};
    scheduler_reassign(self, from, one, 1);
}

void scheduler_record(scheduler_t *self, int64_t ms)
{
    self->times[self->time_count++ % STRAGGLER_WINDOW] = ms;
}

static int s_compare_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

int64_t scheduler_straggler_ms(scheduler_t *self, int64_t floor_ms)
{
    size_t n = self->time_count < STRAGGLER_WINDOW ? self->time_count : STRAGGLER_WINDOW;
    if (n == 0)
        return STRAGGLER_FACTOR * floor_ms;
    if (self->median_at != self->time_count) {
        int64_t sorted[STRAGGLER_WINDOW];
        memcpy(sorted, self->times, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, s_compare_ms);
        self->median = sorted[n / 2];
        self->median_at = self->time_count;
    }
    int64_t limit = STRAGGLER_FACTOR * self->median;
    return limit > floor_ms ? limit : floor_ms;
}
