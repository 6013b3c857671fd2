/* The in-order writer: results given in any order come out in index order,
   and only early ones are held. */
#include <criterion/criterion.h>

#include "common/reorder.h"

typedef struct {
    uint64_t seen[1000];
    size_t count;
    int fail_at;   /* emit fails for this unit, or -1 */
} sink_t;

static int s_emit(void *arg, uint64_t unit, const uint8_t *data, size_t len)
{
    sink_t *sink = arg;
    if ((int) unit == sink->fail_at)
        return -1;
    cr_assert_eq(len, unit % 7, "unit %lu: wrong length", (unsigned long) unit);
    for (size_t i = 0; i < len; i++)
        cr_assert_eq(data[i], (uint8_t) (unit + i));
    sink->seen[sink->count++] = unit;
    return 0;
}

static void s_put(reorder_t *r, uint64_t unit)
{
    uint8_t data[8];
    for (size_t i = 0; i < unit % 7; i++)
        data[i] = (uint8_t) (unit + i);
    cr_assert_eq(reorder_put(r, unit, data, unit % 7), 0);
}

Test(reorder, any_arrival_order_comes_out_in_order)
{
    sink_t sink = {.fail_at = -1};
    reorder_t *r = reorder_new(0, s_emit, &sink);
    /* A fixed shuffle of 0..999 (multiplication by a unit modulo 1000), which
       lands results far ahead of the next one and makes the window grow. */
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t unit = (i * 377 + 11) % 1000;
        s_put(r, unit);
        cr_assert_eq(reorder_held(r) + sink.count, i + 1, "every result is either out or held");
    }
    cr_assert_eq(sink.count, 1000);
    for (uint64_t u = 0; u < 1000; u++)
        cr_assert_eq(sink.seen[u], u);
    cr_assert_eq(reorder_held(r), 0);
    cr_assert_eq(reorder_next(r), 1000);
    reorder_destroy(&r);
    cr_assert_null(r);
    reorder_destroy(&r);
}

Test(reorder, a_failing_emit_stops_the_release)
{
    sink_t sink = {.fail_at = 3};
    reorder_t *r = reorder_new(0, s_emit, &sink);
    s_put(r, 1);
    s_put(r, 3);
    s_put(r, 2);
    uint8_t data[1] = {0};
    cr_assert_eq(reorder_put(r, 0, data, 0), -1, "the failure of unit 3 must be reported");
    cr_assert_eq(sink.count, 3);
    cr_assert_eq(reorder_next(r), 3);
    reorder_destroy(&r);
}
