/* The scheduler: dynamic order, static k mod n, re-queues and lost slots. */
#include <criterion/criterion.h>

#include "manager/scheduler.h"

static bool s_all_pending(uint64_t unit, void *arg)
{
    (void) unit, (void) arg;
    return true;
}

Test(scheduler, dynamic_serves_units_in_order_with_requeued_first)
{
    scheduler_t *s = scheduler_new(SCHED_DYNAMIC, 5, 3);
    uint64_t u;
    cr_assert(scheduler_next(s, 0, s_all_pending, NULL, &u) && u == 0);
    cr_assert(scheduler_next(s, 0, s_all_pending, NULL, &u) && u == 1);
    scheduler_requeue(s, 0, 0);
    cr_assert(scheduler_next(s, 0, s_all_pending, NULL, &u) && u == 0);
    for (uint64_t want = 2; want < 5; want++)
        cr_assert(scheduler_next(s, 0, s_all_pending, NULL, &u) && u == want);
    cr_assert_not(scheduler_next(s, 0, s_all_pending, NULL, &u));
    scheduler_destroy(&s);
    cr_assert_null(s);
    scheduler_destroy(&s);
}

Test(scheduler, static_gives_unit_k_to_slot_k_mod_n)
{
    scheduler_t *s = scheduler_new(SCHED_STATIC, 10, 3);
    for (size_t slot = 0; slot < 3; slot++) {
        uint64_t u, want = slot;
        while (scheduler_next(s, slot, s_all_pending, NULL, &u)) {
            cr_assert_eq(u, want);
            want += 3;
        }
        cr_assert_geq(want, 10);
    }
    scheduler_destroy(&s);
}

Test(scheduler, a_lost_slot_is_spread_over_the_survivors)
{
    scheduler_t *s = scheduler_new(SCHED_STATIC, 20, 2);
    uint64_t u;
    /* Slot 1 took units 1 and 3 and is lost; 3 was in flight and comes back. */
    cr_assert(scheduler_next(s, 1, s_all_pending, NULL, &u) && u == 1);
    cr_assert(scheduler_next(s, 1, s_all_pending, NULL, &u) && u == 3);
    scheduler_requeue(s, 1, 3);
    size_t survivors[] = {0};
    scheduler_reassign(s, 1, survivors, 1);
    cr_assert_not(scheduler_next(s, 1, s_all_pending, NULL, &u));
    bool seen[20] = {false};
    while (scheduler_next(s, 0, s_all_pending, NULL, &u)) {
        cr_assert_not(seen[u], "unit %lu served twice", (unsigned long) u);
        seen[u] = true;
    }
    for (uint64_t k = 0; k < 20; k++)
        cr_assert_eq(seen[k], k != 1, "unit %lu", (unsigned long) k);
    scheduler_destroy(&s);
}

Test(scheduler, a_progression_split_three_ways_covers_every_unit_once)
{
    scheduler_t *s = scheduler_new(SCHED_STATIC, 100, 4);
    size_t survivors[] = {0, 2, 3};
    scheduler_reassign(s, 1, survivors, 3);
    int count[100] = {0};
    uint64_t u;
    for (size_t slot = 0; slot < 4; slot++)
        while (scheduler_next(s, slot, s_all_pending, NULL, &u))
            count[u]++;
    for (int k = 0; k < 100; k++)
        cr_assert_eq(count[k], 1, "unit %d served %d times", k, count[k]);
    scheduler_destroy(&s);
}
