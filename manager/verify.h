/* verify: results checked by a second worker. A unit chosen for checking is
   accepted only when two different workers returned the same bytes; when
   answers differ, more workers are asked until two agree, and the workers
   whose bytes differ from the agreed ones are named as liars. */
#ifndef HY_VERIFY_H
#define HY_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct verify_t verify_t;

typedef enum {
    VERIFY_MORE = 0,    /* no two answers agree yet: ask another worker */
    VERIFY_AGREED = 1,  /* two workers agree: accept the agreed bytes */
} verify_outcome_t;

/* Checks the share fraction (0 < fraction <= 1) of units, chosen by a hash
   of the unit and seed (the job id): random to workers, fixed for the run. */
verify_t *verify_new(double fraction, uint64_t seed);
/* Frees every stored answer; sets *self_p to NULL; harmless on NULL. */
void verify_destroy(verify_t **self_p);

/* Whether unit is one of those checked. */
bool verify_wants(const verify_t *self, uint64_t unit);

/* Identity iid answered unit with (data, len), copied here; answers agree
   only across different identities. On VERIFY_AGREED, *agreed and
   *agreed_len are the bytes to accept (valid until verify_forget), *partner
   the identity whose earlier answer matched, and liars[0 .. *liar_count)
   the identities whose answers differ (liars has room for answers()
   entries). answers() is how many answers the unit has now. */
verify_outcome_t verify_offer(verify_t *self, uint64_t unit, uint32_t iid, const uint8_t *data, size_t len,
                              const uint8_t **agreed, size_t *agreed_len, uint32_t *partner, uint32_t *liars,
                              size_t *liar_count);
/* Answers stored for unit. */
size_t verify_answers(const verify_t *self, uint64_t unit);
/* Drops what is stored for unit (after it was accepted). */
void verify_forget(verify_t *self, uint64_t unit);

/* Units accepted after agreement, and units whose answers disagreed. */
uint64_t verify_verified(const verify_t *self);
uint64_t verify_mismatches(const verify_t *self);

#endif
