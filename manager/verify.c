/* verify: stored answers per unit under check, in a hash keyed by unit. */
#include "manager/verify.h"
#include "common/rng.h"
#include "manager/unitmap.h"

#define ANSWERS_MAX 16   /* answers kept per unit; --max-attempts ends a split unit long before */

typedef struct {
    uint32_t uid;        /* the identity that answered */
    uint8_t *data;
    size_t len;
} answer_t;

typedef struct {
    answer_t answers[ANSWERS_MAX];
    size_t count;
    bool split;          /* answers disagreed at least once */
} entry_t;

struct verify_t {
    uint64_t threshold;  /* a unit is checked when its hash is below this (UINT64_MAX: all) */
    uint64_t seed;
    zhashx_t *entries;   /* unit + 1 -> entry_t */
    uint64_t verified, mismatches;
};


static void s_entry_free(void **item)
{
    entry_t *e = *item;
    for (size_t i = 0; e && i < e->count; i++)
        free(e->answers[i].data);
    free(e);
    *item = NULL;
}


verify_t *verify_new(double fraction, uint64_t seed)
{
    verify_t *self = calloc(1, sizeof *self);
    self->threshold = fraction >= 1 ? UINT64_MAX : (uint64_t) (fraction * 18446744073709551616.0);
    self->seed = seed;
    self->entries = unitmap_new(s_entry_free);
    return self;
}

void verify_destroy(verify_t **self_p)
{
    verify_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->entries);
    free(self);
    *self_p = NULL;
}

bool verify_wants(const verify_t *self, uint64_t unit)
{
    return self->threshold == UINT64_MAX || stream_at(self->seed, unit + 1) < self->threshold;
}

verify_outcome_t verify_offer(verify_t *self, uint64_t unit, uint32_t uid, const uint8_t *data, size_t len,
                              const uint8_t **agreed, size_t *agreed_len, uint32_t *partner, uint32_t *liars,
                              size_t *liar_count)
{
    *liar_count = 0;
    entry_t *e = zhashx_lookup(self->entries, UNIT_KEY(unit));
    if (!e) {
        e = calloc(1, sizeof *e);
        zhashx_insert(self->entries, UNIT_KEY(unit), e);
    }
    const answer_t *match = NULL;
    for (size_t i = 0; i < e->count && !match; i++)
        if (e->answers[i].uid != uid && e->answers[i].len == len && memcmp(e->answers[i].data, data, len) == 0)
            match = &e->answers[i];
    if (!match) {
        if (e->count > 0 && !e->split) {
            e->split = true;
            self->mismatches++;
        }
        if (e->count < ANSWERS_MAX) {
            answer_t *a = &e->answers[e->count++];
            a->uid = uid;
            a->data = malloc(len ? len : 1);
            memcpy(a->data, data, len);
            a->len = len;
        }
        return VERIFY_MORE;
    }
    for (size_t i = 0; i < e->count; i++)
        if (e->answers[i].len != len || memcmp(e->answers[i].data, data, len) != 0)
            liars[(*liar_count)++] = e->answers[i].uid;
    *agreed = match->data;
    *agreed_len = match->len;
    *partner = match->uid;
    self->verified++;
    return VERIFY_AGREED;
}

size_t verify_answers(const verify_t *self, uint64_t unit)
{
    const entry_t *e = zhashx_lookup(self->entries, UNIT_KEY(unit));
    return e ? e->count : 0;
}

void verify_forget(verify_t *self, uint64_t unit) { zhashx_delete(self->entries, UNIT_KEY(unit)); }

uint64_t verify_verified(const verify_t *self) { return self->verified; }
uint64_t verify_mismatches(const verify_t *self) { return self->mismatches; }
