/* reorder: a ring of slots indexed by unit mod capacity, covering the window
   [next, next + capacity); it doubles when a result lands beyond it. */
#include "common/reorder.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *data;   /* NULL: empty slot */
    size_t len;
} slot_t;

struct reorder_t {
    uint64_t next;
    slot_t *slots;
    size_t cap;      /* a power of two */
    size_t held;
    size_t held_bytes;   /* payload bytes of the results held */
    reorder_emit_fn *emit;
    void *arg;
};

reorder_t *reorder_new(uint64_t first, reorder_emit_fn *emit, void *arg)
{
    reorder_t *self = calloc(1, sizeof *self);
    self->next = first;
    self->cap = 64;
    self->slots = calloc(self->cap, sizeof *self->slots);
    self->emit = emit;
    self->arg = arg;
    return self;
}

void reorder_destroy(reorder_t **self_p)
{
    reorder_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->cap; i++)
        free(self->slots[i].data);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static void s_grow(reorder_t *self, uint64_t distance)
{
    size_t cap = self->cap;
    while (cap <= distance)
        cap *= 2;
    slot_t *slots = calloc(cap, sizeof *slots);
    for (size_t i = 0; i < self->cap; i++) {
        if (!self->slots[i].data)
            continue;
        /* The unit in slot i is the one of the window that maps to i. */
        uint64_t unit = self->next + ((i - self->next) & (self->cap - 1));
        slots[unit & (cap - 1)] = self->slots[i];
    }
    free(self->slots);
    self->slots = slots;
    self->cap = cap;
}

int reorder_put(reorder_t *self, uint64_t unit, const uint8_t *data, size_t len)
{
    assert(unit >= self->next);
    if (unit == self->next) {
        if (self->emit(self->arg, unit, data, len) < 0)
            return -1;
        self->next++;
        /* Release the run of held results that now follows. */
        while (true) {
            slot_t *s = &self->slots[self->next & (self->cap - 1)];
            if (!s->data)
                return 0;
            int rc = self->emit(self->arg, self->next, s->data, s->len);
            free(s->data);
            s->data = NULL;
            self->held--;
            self->held_bytes -= s->len;
            if (rc < 0)
                return -1;
            self->next++;
        }
    }
    if (unit - self->next >= self->cap)
        s_grow(self, unit - self->next);
    slot_t *s = &self->slots[unit & (self->cap - 1)];
    assert(!s->data);
    s->data = malloc(len ? len : 1);
    if (len)
        memcpy(s->data, data, len);
    s->len = len;
    self->held++;
    self->held_bytes += len;
    return 0;
}

uint64_t reorder_next(const reorder_t *self) { return self->next; }
size_t reorder_held(const reorder_t *self) { return self->held; }
size_t reorder_memory(const reorder_t *self) { return self->held_bytes + self->cap * sizeof(slot_t); }
