/* run: one job's unit table; two bytes per unit. */
#include "manager/run.h"

#include <assert.h>
#include <stdlib.h>

run_t *run_new(uint64_t total)
{
    run_t *self = calloc(1, sizeof *self);
    self->total = total;
    self->state = calloc(total ? total : 1, 1);
    self->losses = calloc(total ? total : 1, 1);
    self->copies = calloc(total ? total : 1, 1);
    if (!self->state || !self->losses || !self->copies)
        run_destroy(&self);
    return self;
}

void run_destroy(run_t **self_p)
{
    run_t *self = *self_p;
    if (!self)
        return;
    free(self->state);
    free(self->losses);
    free(self->copies);
    free(self);
    *self_p = NULL;
}

void run_sent(run_t *self, uint64_t unit)
{
    assert(unit < self->total && self->state[unit] == UNIT_PENDING);
    self->state[unit] = UNIT_INFLIGHT;
}

bool run_completed(run_t *self, uint64_t unit)
{
    assert(unit < self->total);
    if (self->state[unit] == UNIT_DONE) {
        self->duplicates++;
        return false;
    }
    self->state[unit] = UNIT_DONE;
    self->done++;
    return true;
}

unsigned run_lost(run_t *self, uint64_t unit, bool blame)
{
    assert(unit < self->total);
    if (self->state[unit] != UNIT_INFLIGHT)
        return 0;
    self->state[unit] = UNIT_PENDING;
    self->reissued++;
    if (blame && self->losses[unit] < UINT8_MAX)
        self->losses[unit]++;
    return self->losses[unit] ? self->losses[unit] : 1;
}

unsigned run_failed(run_t *self, uint64_t unit)
{
    assert(unit < self->total && self->state[unit] != UNIT_DONE);
    self->state[unit] = UNIT_PENDING;
    self->reissued++;
    if (self->losses[unit] < UINT8_MAX)
        self->losses[unit]++;
    return self->losses[unit];
}

bool run_is_pending(uint64_t unit, void *arg)
{
    const run_t *self = arg;
    return unit < self->total && self->state[unit] == UNIT_PENDING;
}
