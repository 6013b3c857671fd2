/* run: one job's unit table: a few bytes per unit, and a hash of avoid lists
   for the few units that have one. */
#include "manager/run.h"
#include "manager/unitmap.h"

#include <assert.h>
#include <stdlib.h>

#define AVOID_MAX 32   /* workers remembered per unit; more is more than any job allows */

typedef struct {
    uint32_t iids[AVOID_MAX];
    uint8_t flags[AVOID_MAX]; /* AVOID_* */
    size_t count;
    int64_t anonymous;        /* a worker with no key was lost holding it, last heard from then
                                 (the earliest such; INT64_MAX: none) */
    int64_t lost_at;          /* when a worker was last lost holding it (0: never) */
} avoid_t;

static void s_avoid_free(void **item)
{
    free(*item);
    *item = NULL;
}

run_t *run_new(uint64_t total)
{
    if (total > SIZE_MAX / 8 || sizeof (void *) < sizeof total)
        return NULL;
    run_t *self = calloc(1, sizeof *self);
    size_t n = total ? (size_t) total : 1;
    self->total = total;
    self->state = calloc(n, 1);
    self->holders = calloc(n, 1);
    self->losses = calloc(n, 1);
    self->fails = calloc(n, 1);
    self->copies = calloc(n, 1);
    self->avoided = calloc(n, 1);
    self->avoid = unitmap_new(s_avoid_free);
    self->blocked = unitmap_new(NULL);
    if (!self->state || !self->holders || !self->losses || !self->fails || !self->copies || !self->avoided)
        run_destroy(&self);
    return self;
}

void run_destroy(run_t **self_p)
{
    run_t *self = *self_p;
    if (!self)
        return;
    free(self->state);
    free(self->holders);
    free(self->losses);
    free(self->fails);
    free(self->copies);
    free(self->avoided);
    zhashx_destroy(&self->avoid);
    zhashx_destroy(&self->blocked);
    free(self);
    *self_p = NULL;
}

void run_give(run_t *self, uint64_t unit)
{
    assert(unit < self->total && self->state[unit] != UNIT_DONE);
    if (self->state[unit] == UNIT_PENDING)
        self->inflight++;
    self->state[unit] = UNIT_INFLIGHT;
    if (self->holders[unit] < UINT8_MAX)
        self->holders[unit]++;
}

bool run_drop(run_t *self, uint64_t unit, bool reissue)
{
    assert(unit < self->total);
    if (self->holders[unit] > 0)
        self->holders[unit]--;
    if (self->holders[unit] > 0 || self->state[unit] != UNIT_INFLIGHT)
        return false;
    self->state[unit] = UNIT_PENDING;
    self->inflight--;
    self->reissued += reissue;
    return true;
}

bool run_completed(run_t *self, uint64_t unit)
{
    assert(unit < self->total);
    if (self->state[unit] == UNIT_DONE) {
        self->duplicates++;
        return false;
    }
    if (self->state[unit] == UNIT_INFLIGHT)
        self->inflight--;
    self->state[unit] = UNIT_DONE;
    self->done++;
    while (self->low < self->total && self->state[self->low] == UNIT_DONE)
        self->low++;
    if (self->avoided[unit]) {
        zhashx_delete(self->avoid, UNIT_KEY(unit));
        zhashx_delete(self->blocked, UNIT_KEY(unit));
        self->avoided[unit] = 0;
    }
    return true;
}

/* The unit's avoid list, made if need be (NULL when out of memory). */
static avoid_t *s_avoid_list(run_t *self, uint64_t unit)
{
    void *key = UNIT_KEY(unit);
    avoid_t *a = zhashx_lookup(self->avoid, key);
    if (!a && (a = calloc(1, sizeof *a))) {
        a->anonymous = INT64_MAX;
        zhashx_insert(self->avoid, key, a);
        self->avoided[unit] = 1;
    }
    return a;
}

/* The entry of iid in the unit's avoid list, added if need be (NULL when
   the list is full); *at its index. */
static avoid_t *s_avoid_entry(run_t *self, uint64_t unit, uint32_t iid, size_t *at)
{
    assert(unit < self->total);
    avoid_t *a = s_avoid_list(self, unit);
    if (!a)
        return NULL;
    for (size_t i = 0; i < a->count; i++)
        if (a->iids[i] == iid) {
            *at = i;
            return a;
        }
    if (a->count == AVOID_MAX)
        return NULL;
    a->flags[a->count] = 0;
    a->iids[a->count] = iid;
    *at = a->count++;
    return a;
}

void run_avoid(run_t *self, uint64_t unit, uint32_t iid, unsigned flags)
{
    size_t i;
    avoid_t *a = s_avoid_entry(self, unit, iid, &i);
    if (a)
        a->flags[i] |= (uint8_t) flags;
    if (a && (flags & (AVOID_ANSWERED | AVOID_FAILED)))
        zhashx_insert(self->blocked, UNIT_KEY(unit), self);   /* (no-op when there) */
}

void run_lost_anonymous(run_t *self, uint64_t unit, int64_t heard)
{
    assert(unit < self->total);
    avoid_t *a = s_avoid_list(self, unit);
    if (a && heard < a->anonymous)
        a->anonymous = heard;
}

void run_lost_at(run_t *self, uint64_t unit, int64_t now)
{
    assert(unit < self->total);
    avoid_t *a = s_avoid_list(self, unit);
    if (a)
        a->lost_at = now;
}

/* The unit's avoid list, or NULL when it has none. */
static const avoid_t *s_avoid_of(const run_t *self, uint64_t unit)
{
    return unit < self->total && self->avoided[unit] ? zhashx_lookup(self->avoid, UNIT_KEY(unit)) : NULL;
}

int64_t run_last_lost(const run_t *self, uint64_t unit)
{
    const avoid_t *a = s_avoid_of(self, unit);
    return a ? a->lost_at : 0;
}

bool run_lost_anonymous_before(const run_t *self, uint64_t unit, int64_t joined)
{
    const avoid_t *a = s_avoid_of(self, unit);
    return a && joined > a->anonymous;
}

/* The entry of iid in the unit's avoid list, or NULL; *at its index. */
static const avoid_t *s_avoid_find(const run_t *self, uint64_t unit, uint32_t iid, size_t *at)
{
    const avoid_t *a = s_avoid_of(self, unit);
    for (size_t i = 0; a && i < a->count; i++)
        if (a->iids[i] == iid) {
            *at = i;
            return a;
        }
    return NULL;
}

bool run_avoided_for(const run_t *self, uint64_t unit, uint32_t iid, unsigned flags)
{
    size_t i;
    const avoid_t *a = s_avoid_find(self, unit, iid, &i);
    return a && (a->flags[i] & flags) != 0;
}

bool run_avoids(const run_t *self, uint64_t unit, uint32_t iid)
{
    return run_avoided_for(self, unit, iid, AVOID_ANSWERED | AVOID_FAILED);
}

void run_each_blocked(run_t *self, void (*fn)(void *arg, uint64_t unit), void *arg)
{
    if (zhashx_size(self->blocked) == 0)
        return;
    zlistx_t *keys = zhashx_keys(self->blocked);
    for (void *key = zlistx_first(keys); key; key = zlistx_next(keys))
        fn(arg, KEY_UNIT(key));
    zlistx_destroy(&keys);
}

bool run_is_pending(uint64_t unit, void *arg)
{
    const run_t *self = arg;
    return unit < self->total && self->state[unit] == UNIT_PENDING;
}
