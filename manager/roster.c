/* roster: the workers a manager knows, in order of arrival, and a hash of the
   live ones by routing id. */
#include "manager/roster.h"

struct roster_t {
    worker_t **workers;
    size_t count, cap;
    zhashx_t *by_id;       /* hex routing id -> live worker (not owned) */
    zhashx_t *departed;    /* hex routing id -> late messages it may still send (size_t, owned) */
    zlistx_t *departed_order;  /* their keys, oldest first, to forget the oldest beyond DEPARTED_MAX */
    zhashx_t *idents;      /* key or address -> ident_t (owned), for workers that have one */
    uint32_t next_uid;
};

/* The destructor of the hashes whose items are plain allocations. */
static void s_free_item(void **item)
{
    free(*item);
    *item = NULL;
}

/* The hash key of a routing id: its bytes in hex. */
static void s_key(const uint8_t *id, size_t id_len, char key[513])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < id_len && i < 256; i++) {
        key[2 * i] = hex[id[i] >> 4];
        key[2 * i + 1] = hex[id[i] & 15];
    }
    key[2 * (id_len < 256 ? id_len : 256)] = '\0';
}

static void s_free(worker_t *w)
{
    if (!w->ident->key[0])
        free(w->ident);   /* its own; keyed ones belong to the roster */
    free(w->inflight_mem);
    free(w);
}

roster_t *roster_new(void)
{
    roster_t *self = calloc(1, sizeof *self);
    self->by_id = zhashx_new();
    self->departed = zhashx_new();
    zhashx_set_destructor(self->departed, s_free_item);
    self->departed_order = zlistx_new();
    zlistx_set_duplicator(self->departed_order, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor(self->departed_order, (zlistx_destructor_fn *) zstr_free);
    self->idents = zhashx_new();
    zhashx_set_destructor(self->idents, s_free_item);
    return self;
}

void roster_destroy(roster_t **self_p)
{
    roster_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        s_free(self->workers[i]);
    free(self->workers);
    zhashx_destroy(&self->by_id);
    zhashx_destroy(&self->departed);
    zlistx_destroy(&self->departed_order);
    zhashx_destroy(&self->idents);
    free(self);
    *self_p = NULL;
}

worker_t *roster_find(roster_t *self, const uint8_t *id, size_t id_len)
{
    char key[513];
    s_key(id, id_len, key);
    return zhashx_lookup(self->by_id, key);
}

bool roster_late(roster_t *self, const uint8_t *id, size_t id_len)
{
    char key[513];
    s_key(id, id_len, key);
    size_t *late = zhashx_lookup(self->departed, key);
    if (!late || *late == 0)
        return false;
    (*late)--;
    return true;
}

/* depth x threads, but no more than the connection has shown it can take:
   a start (DEPTH_MIN units for SLOW_START_THREADS threads, or one unit per
   thread up to SLOW_START_RUNNING, whichever is more), and twice what it
   answered so far. The threads a HELLO announces are a claim: a peer that
   announced 1024 and answered a unit now and then held every unit of a job
   (each "running" on one of its threads, none ever late enough to copy).
   A worker of up to 64 threads has every thread busy from the start; one
   with more gets its credit after a few round trips. */
static size_t s_credit(const worker_t *w)
{
    size_t full = w->depth * w->threads;
    size_t queued = DEPTH_MIN * (size_t) (w->threads < SLOW_START_THREADS ? w->threads : SLOW_START_THREADS);
    size_t running = w->threads < SLOW_START_RUNNING ? w->threads : SLOW_START_RUNNING;
    uint64_t shown = (queued > running ? queued : running) + 2 * w->rtt_count;
    return shown < full ? (size_t) shown : full;
}

worker_t *roster_add(roster_t *self, const uint8_t *id, size_t id_len, const char *name, size_t name_len,
                     uint32_t threads, const char *key)
{
    assert(id_len <= sizeof ((worker_t *) 0)->id && name_len <= HY_MAX_NAME);
    worker_t *w = calloc(1, sizeof *w);
    memcpy(w->id, id, id_len);
    w->id_len = id_len;
    w->uid = ++self->next_uid;
    w->ident = key && *key ? zhashx_lookup(self->idents, key) : NULL;
    if (!w->ident) {
        w->ident = calloc(1, sizeof *w->ident);
        w->ident->iid = w->uid;
        if (key && *key) {
            snprintf(w->ident->key, sizeof w->ident->key, "%s", key);
            zhashx_insert(self->idents, key, w->ident);
        }
    }
    memcpy(w->name, name, name_len);
    w->threads = threads;
    w->depth = DEPTH_MIN;
    w->credit = s_credit(w);
    w->slot = -1;
    w->alive = true;
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 8;
        self->workers = realloc(self->workers, self->cap * sizeof *self->workers);
    }
    self->workers[self->count++] = w;
    char hex[513];
    s_key(id, id_len, hex);
    zhashx_update(self->by_id, hex, w);
    zhashx_delete(self->departed, hex);   /* a peer that chose its routing id may reuse one */
    return w;
}

void roster_new_job(roster_t *self)
{
    for (ident_t *i = zhashx_first(self->idents); i; i = zhashx_next(self->idents)) {
        i->failed = i->unchecked = 0;
        i->excluded = false;
        i->why[0] = '\0';
        i->paused_until = 0;
    }
    for (size_t k = 0; k < self->count; k++) {
        ident_t *i = self->workers[k]->ident;
        i->failed = i->unchecked = 0;
        i->excluded = false;
        i->why[0] = '\0';
        i->paused_until = 0;
    }
}

void roster_lose(roster_t *self, worker_t *w)
{
    char key[513];
    s_key(w->id, w->id_len, key);
    if (zhashx_lookup(self->by_id, key) == w) {
        zhashx_delete(self->by_id, key);
        /* What it may still send on this connection, computed before it
           hears it was lost: remembered a while, whether or not the worker
           stays listed. */
        if (zhashx_size(self->departed) >= DEPARTED_MAX) {
            char *oldest = zlistx_first(self->departed_order);
            if (oldest)
                zhashx_delete(self->departed, oldest);
            zlistx_delete(self->departed_order, zlistx_cursor(self->departed_order));
        }
        size_t *late = malloc(sizeof *late);
        *late = LATE_SLACK;
        zhashx_update(self->departed, key, late);
        zlistx_add_end(self->departed_order, key);
    }
    w->alive = false;
}

void roster_prune(roster_t *self, bool idle_only)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->count; i++) {
        worker_t *w = self->workers[i];
        bool idle = w->done == 0 && w->failed == 0 && !w->ident->excluded;
        if (w->alive || (idle_only && !idle))
            self->workers[kept++] = w;
        else
            s_free(w);
    }
    self->count = kept;
}

size_t roster_size(roster_t *self) { return self->count; }
worker_t *roster_at(roster_t *self, size_t i) { return i < self->count ? self->workers[i] : NULL; }
size_t roster_alive(roster_t *self) { return zhashx_size(self->by_id); }

void worker_inflight_add(worker_t *w, uint64_t unit, int64_t now_ms)
{
    size_t head = w->inflight ? (size_t) (w->inflight - w->inflight_mem) : 0;
    if (head + w->inflight_count == w->inflight_cap) {
        if (head >= w->inflight_count && head > 0) {
            /* at least as many taken from the front as are left: move them back */
            memmove(w->inflight_mem, w->inflight, w->inflight_count * sizeof *w->inflight);
        } else {
            w->inflight_cap = w->inflight_cap ? w->inflight_cap * 2 : 8;
            inflight_t *mem = malloc(w->inflight_cap * sizeof *mem);
            if (w->inflight_count)
                memcpy(mem, w->inflight, w->inflight_count * sizeof *mem);
            free(w->inflight_mem);
            w->inflight_mem = mem;
        }
        w->inflight = w->inflight_mem;
    }
    if (w->inflight_count == 0)
        w->progress_ms = w->busy_ms = now_ms;
    w->inflight[w->inflight_count++] = (inflight_t) {unit, now_ms};
}

int64_t worker_inflight_remove(worker_t *w, uint64_t unit)
{
    for (size_t i = 0; i < w->inflight_count; i++)
        if (w->inflight[i].unit == unit) {
            int64_t sent = w->inflight[i].sent_ms;
            /* Keep the order in which units were sent: oldest first. */
            if (i == 0)
                w->inflight++;
            else
                memmove(w->inflight + i, w->inflight + i + 1, (w->inflight_count - i - 1) * sizeof *w->inflight);
            w->inflight_count--;
            return sent;
        }
    return -1;
}

void worker_round_trip(worker_t *w, int64_t ms)
{
    w->rtt_ms += ((double) ms - w->rtt_ms) / 8;
    if (++w->rtt_count % (w->depth * w->threads / 2 + 1) == 0) {   /* resized about twice per round of its credit */
        if (w->rtt_ms < DEPTH_LOW_MS && w->depth < DEPTH_MAX)
            w->depth = w->depth * 2 < DEPTH_MAX ? w->depth * 2 : DEPTH_MAX;
        else if (w->rtt_ms > DEPTH_HIGH_MS && w->depth > DEPTH_MIN)
            w->depth = w->depth / 2 > DEPTH_MIN ? w->depth / 2 : DEPTH_MIN;
    }
    w->credit = s_credit(w);
}

void worker_cancelled_add(worker_t *w, uint64_t unit)
{
    w->cancelled[w->cancelled_count++ % CANCELLED_RING] = unit;
}

bool worker_cancelled_has(const worker_t *w, uint64_t unit)
{
    size_t n = w->cancelled_count < CANCELLED_RING ? w->cancelled_count : CANCELLED_RING;
    for (size_t i = 0; i < n; i++)
        if (w->cancelled[i] == unit)
            return true;
    return false;
}
