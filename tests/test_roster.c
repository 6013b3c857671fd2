/* The roster: constant-time lookups by routing id, identities shared by
   the connections of one key, and workers that are gone freed. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "manager/roster.h"
#include "manager/run.h"

Test(roster, twenty_thousand_workers_come_and_go_and_nothing_stays)
{
    roster_t *roster = roster_new();
    enum { N = 20000 };
    for (int round = 0; round < 3; round++) {
        for (uint32_t i = 0; i < N; i++) {
            uint8_t id[5] = {(uint8_t) round, (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i, 7};
            roster_add(roster, id, sizeof id, "w", 1, 1, "");
        }
        cr_assert_eq(roster_alive(roster), N);
        for (uint32_t i = 0; i < N; i++) {
            uint8_t id[5] = {(uint8_t) round, (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i, 7};
            worker_t *w = roster_find(roster, id, sizeof id);
            cr_assert_not_null(w, "worker %u not found", i);
            roster_lose(roster, w);
        }
        cr_assert_eq(roster_alive(roster), 0);
        roster_prune(roster, true);   /* nothing to report: all freed */
        cr_assert_eq(roster_size(roster), 0, "round %d: %zu gone workers kept", round, roster_size(roster));
    }
    roster_destroy(&roster);
}

Test(roster, connections_of_one_key_share_an_identity)
{
    roster_t *roster = roster_new();
    uint8_t a[] = {1}, b[] = {2}, c[] = {3};
    worker_t *wa = roster_add(roster, a, 1, "a", 1, 1, "KEY1");
    worker_t *wb = roster_add(roster, b, 1, "b", 1, 1, "KEY1");
    worker_t *wc = roster_add(roster, c, 1, "c", 1, 1, "");
    cr_assert_eq(wa->ident, wb->ident, "one key, two identities");
    cr_assert_neq(wa->ident, wc->ident);
    wa->ident->failed = 3;
    wa->ident->excluded = true;
    roster_new_job(roster);
    cr_assert(wa->ident->failed == 0 && !wb->ident->excluded, "a new job kept the last one's blame");
    roster_lose(roster, wa);
    roster_prune(roster, false);
    cr_assert_eq(roster_find(roster, b, 1), wb);
    uint8_t d[] = {4};
    worker_t *wd = roster_add(roster, d, 1, "d", 1, 1, "KEY1");   /* the key comes back */
    cr_assert_eq(wd->ident, wb->ident);
    roster_destroy(&roster);
}

/* With no key, nothing tells a worker's connections apart: a unit lost by
   one is held against every connection with no key that joined after the
   lost one was last heard from (it, restarted, by any name), not against
   those that joined before; the earliest loss counts. */
Test(roster, a_unit_lost_with_no_key_is_held_against_connections_that_joined_after)
{
    run_t *run = run_new(4);
    cr_assert_not(run_lost_anonymous_before(run, 1, 100));
    run_lost_anonymous(run, 1, 500);
    cr_assert_not(run_lost_anonymous_before(run, 1, 400), "a worker connected before the loss was blamed");
    cr_assert_not(run_lost_anonymous_before(run, 1, 500));
    cr_assert(run_lost_anonymous_before(run, 1, 501), "a connection after the loss was not suspected");
    cr_assert_not(run_lost_anonymous_before(run, 2, 900), "another unit was blamed");
    cr_assert_not(run_avoided_for(run, 1, 0, AVOID_LOST | AVOID_FAILED | AVOID_ANSWERED));
    run_lost_anonymous(run, 1, 800);   /* lost again, later */
    cr_assert(run_lost_anonymous_before(run, 1, 600), "the earlier loss was forgotten");
    run_lost_anonymous(run, 1, 300);
    cr_assert(run_lost_anonymous_before(run, 1, 400));
    run_avoid(run, 1, 7, AVOID_FAILED);   /* an identity's entry beside it */
    cr_assert(run_lost_anonymous_before(run, 1, 400) && run_avoided_for(run, 1, 7, AVOID_FAILED));
    cr_assert_not(run_avoided_for(run, 1, 8, AVOID_FAILED));
    run_destroy(&run);
}

/* Units in flight on a worker, against a plain list kept beside them:
   answers mostly oldest first (the window moves), some out of order, units
   added all along (the window is moved back or grown), and a clear. */
Test(roster, units_in_flight_stay_in_the_order_they_were_sent)
{
    roster_t *roster = roster_new();
    uint8_t id[] = {9};
    worker_t *w = roster_add(roster, id, 1, "w", 1, 2, "");
    enum { MAX = 600 };
    uint64_t model[MAX];
    size_t n = 0;
    uint64_t next = 0, x = 88172645463325252ull;
    for (int step = 0; step < 200000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (n < MAX && (n == 0 || x % 100 < 52)) {
            worker_inflight_add(w, next, (int64_t) next * 3);
            model[n++] = next++;
        } else {
            /* the oldest three times in four, else any */
            size_t i = x % 4 ? 0 : (size_t) (x >> 32) % n;
            uint64_t u = model[i];
            cr_assert_eq(worker_inflight_remove(w, u), (int64_t) u * 3, "unit %" PRIu64, u);
            memmove(model + i, model + i + 1, (n - i - 1) * sizeof *model);
            n--;
        }
        if (step % 50000 == 49999) {   /* a new job clears them */
            w->inflight_count = n = 0;
            continue;
        }
        cr_assert_eq(w->inflight_count, n);
        if (step % 97 == 0)
            for (size_t k = 0; k < n; k++)
                cr_assert_eq(w->inflight[k].unit, model[k], "step %d, position %zu", step, k);
    }
    cr_assert_eq(worker_inflight_remove(w, next + 1), -1, "a unit never sent was found");
    roster_destroy(&roster);
}

/* Quick round trips double a worker's depth up to DEPTH_MAX units a
   thread, never beyond (it went from 192 to 384); slow ones halve it down
   to DEPTH_MIN. */
Test(roster, depth_follows_round_trips_within_its_bounds)
{
    roster_t *roster = roster_new();
    uint8_t id[] = {1};
    worker_t *w = roster_add(roster, id, 1, "w", 1, 2, "");
    size_t most = 0;
    for (int i = 0; i < 100000; i++) {
        worker_round_trip(w, 1);
        most = w->depth > most ? w->depth : most;
        cr_assert_leq(w->credit, (size_t) DEPTH_MAX * 2);
    }
    cr_assert_eq(most, DEPTH_MAX);
    cr_assert_eq(w->depth, DEPTH_MAX);
    for (int i = 0; i < 100000; i++)
        worker_round_trip(w, 1000);
    cr_assert_eq(w->depth, DEPTH_MIN);
    cr_assert_eq(w->credit, (size_t) DEPTH_MIN * 2);
    roster_destroy(&roster);
}

/* The threads a HELLO announces are a claim: a new connection may hold
   DEPTH_MIN units for SLOW_START_THREADS threads or one for each of up to
   SLOW_START_RUNNING threads, whichever is more, and two more for each it
   answers, up to depth x threads. A worker with few threads has all its
   credit at once, one of 64 a unit for each thread. */
Test(roster, credit_grows_with_what_a_connection_answers)
{
    roster_t *roster = roster_new();
    uint8_t id[] = {1}, id2[] = {2}, id3[] = {3};
    worker_t *big = roster_add(roster, id, 1, "big", 3, 1024, "");
    cr_assert_eq(big->credit, (size_t) SLOW_START_RUNNING);
    for (int i = 1; i <= 10; i++) {
        worker_round_trip(big, 1000);   /* slow answers: the depth stays at DEPTH_MIN */
        cr_assert_eq(big->credit, (size_t) SLOW_START_RUNNING + 2 * (size_t) i);
    }
    for (int i = 0; i < 5000; i++)
        worker_round_trip(big, 1000);
    cr_assert_eq(big->credit, (size_t) DEPTH_MIN * 1024, "capped at depth x threads");
    worker_t *small = roster_add(roster, id2, 1, "small", 5, 4, "");
    cr_assert_eq(small->credit, (size_t) DEPTH_MIN * 4);
    worker_t *mid = roster_add(roster, id3, 1, "mid", 3, 20, "");
    cr_assert_eq(mid->credit, (size_t) DEPTH_MIN * SLOW_START_THREADS);
    roster_destroy(&roster);
}
