/* roster: the workers a manager knows, in order of arrival. Lookups are linear:
   a LAN cluster has tens of workers, not millions. */
#include "manager/roster.h"

struct roster_t {
    worker_t **workers;
    size_t count, cap;
};

roster_t *roster_new(void) { return calloc(1, sizeof(roster_t)); }

void roster_destroy(roster_t **self_p)
{
    roster_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free(self->workers[i]->inflight);
        free(self->workers[i]);
    }
    free(self->workers);
    free(self);
    *self_p = NULL;
}

worker_t *roster_find(roster_t *self, const uint8_t *id, size_t id_len)
{
    for (size_t i = 0; i < self->count; i++) {
        worker_t *w = self->workers[i];
        if (w->alive && w->id_len == id_len && memcmp(w->id, id, id_len) == 0)
            return w;
    }
    return NULL;
}

worker_t *roster_add(roster_t *self, const uint8_t *id, size_t id_len, const char *name,
                     size_t name_len, uint32_t threads, uint32_t heartbeat_ms)
{
    assert(id_len <= sizeof ((worker_t *) 0)->id && name_len <= HY_MAX_NAME);
    worker_t *w = calloc(1, sizeof *w);
    memcpy(w->id, id, id_len);
    w->id_len = id_len;
    memcpy(w->name, name, name_len);
    w->threads = threads;
    w->heartbeat_ms = heartbeat_ms;
    /* Three units per thread: one computing, one waiting in the thread's
       pipe, one on the wire, so that no thread waits for a round trip. */
    w->credit = 3 * (size_t) threads;
    w->slot = -1;
    w->alive = true;
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 8;
        self->workers = realloc(self->workers, self->cap * sizeof *self->workers);
    }
    self->workers[self->count++] = w;
    return w;
}

size_t roster_size(roster_t *self) { return self->count; }
worker_t *roster_at(roster_t *self, size_t i) { return i < self->count ? self->workers[i] : NULL; }

size_t roster_alive(roster_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        n += self->workers[i]->alive;
    return n;
}

void worker_inflight_add(worker_t *w, uint64_t unit, int64_t now_ms)
{
    if (w->inflight_count == w->inflight_cap) {
        w->inflight_cap = w->inflight_cap ? w->inflight_cap * 2 : 8;
        w->inflight = realloc(w->inflight, w->inflight_cap * sizeof *w->inflight);
    }
    w->inflight[w->inflight_count++] = (inflight_t) {unit, now_ms};
}

int64_t worker_inflight_remove(worker_t *w, uint64_t unit)
{
    for (size_t i = 0; i < w->inflight_count; i++)
        if (w->inflight[i].unit == unit) {
            int64_t sent = w->inflight[i].sent_ms;
            /* Keep the order in which units were sent: oldest first. */
            memmove(w->inflight + i, w->inflight + i + 1, (w->inflight_count - i - 1) * sizeof *w->inflight);
            w->inflight_count--;
            return sent;
        }
    return -1;
}
