/* The wire codec: every message round-trips; damaged input is rejected. */
#include <criterion/criterion.h>

#include "common/log.h"
#include "common/protocol.h"

static const uint64_t s_units[] = {0, 1, 499, UINT64_MAX};
static const uint8_t s_params[] = {1, 2, 3, 0, 255};

/* One well-formed example of every command. */
static hy_msg_t s_examples[] = {
    {.command = HY_HELLO, .name = "node-7 (rack 2)", .threads = 16, .heartbeat_ms = 1000},
    {.command = HY_WELCOME, .session = 0x0123456789abcdefull, .heartbeat_ms = 250},
    {.command = HY_JOB, .job = 42, .name = "mandelbrot", .data = s_params, .data_len = sizeof s_params},
    {.command = HY_UNITS, .job = UINT64_MAX, .units = s_units, .unit_count = 4},
    {.command = HY_RESULT, .job = 7, .unit = 1234567890123ull, .status = HY_RESULT_OK, .data = s_params, .data_len = 5},
    {.command = HY_RESULT, .job = 7, .unit = 3, .status = HY_RESULT_FAILED, .data = NULL, .data_len = 0},
    {.command = HY_HEARTBEAT},
    {.command = HY_GOODBYE, .name = "manager exiting"},
    {.command = HY_GOODBYE, .name = ""},
};
#define N_EXAMPLES (sizeof s_examples / sizeof s_examples[0])

static void s_check_same(const hy_msg_t *a, const hy_msg_t *b)
{
    cr_assert_eq(a->command, b->command);
    size_t alen = a->name ? strlen(a->name) : 0;
    cr_assert_eq(b->name_len, alen);
    if (alen)
        cr_assert(memcmp(a->name, b->name, alen) == 0);
    cr_assert_eq(a->threads, b->threads);
    cr_assert_eq(a->heartbeat_ms, b->heartbeat_ms);
    cr_assert_eq(a->session, b->session);
    cr_assert_eq(a->job, b->job);
    cr_assert_eq(a->unit, b->unit);
    cr_assert_eq(a->status, b->status);
    cr_assert_eq(a->data_len, b->data_len);
    if (a->data_len)
        cr_assert(memcmp(a->data, b->data, a->data_len) == 0);
    cr_assert_eq(a->unit_count, b->unit_count);
    for (size_t i = 0; i < a->unit_count; i++)
        cr_assert_eq(hy_unit_at(b, i), a->units[i]);
}

Test(protocol, every_message_round_trips)
{
    for (size_t i = 0; i < N_EXAMPLES; i++) {
        zframe_t *frame = hy_encode(&s_examples[i]);
        cr_assert_not_null(frame, "example %zu did not encode", i);
        hy_msg_t back;
        cr_assert_eq(hy_decode(zframe_data(frame), zframe_size(frame), &back), 0, "example %zu", i);
        s_check_same(&s_examples[i], &back);
        zframe_destroy(&frame);
    }
}

Test(protocol, every_truncation_is_rejected)
{
    for (size_t i = 0; i < N_EXAMPLES; i++) {
        zframe_t *frame = hy_encode(&s_examples[i]);
        hy_msg_t msg;
        for (size_t len = 0; len < zframe_size(frame); len++)
            cr_assert_eq(hy_decode(zframe_data(frame), len, &msg), HY_EMALFORMED,
                         "example %zu cut to %zu bytes was accepted", i, len);
        zframe_destroy(&frame);
    }
}

Test(protocol, trailing_bytes_are_rejected)
{
    for (size_t i = 0; i < N_EXAMPLES; i++) {
        zframe_t *frame = hy_encode(&s_examples[i]);
        size_t len = zframe_size(frame);
        uint8_t *longer = calloc(len + 1, 1);
        memcpy(longer, zframe_data(frame), len);
        hy_msg_t msg;
        cr_assert_eq(hy_decode(longer, len + 1, &msg), HY_EMALFORMED, "example %zu", i);
        free(longer);
        zframe_destroy(&frame);
    }
}

Test(protocol, another_version_is_reported_as_such)
{
    zframe_t *frame = hy_encode(&s_examples[0]);
    uint8_t *data = zframe_data(frame);
    data[2] = HY_PROTOCOL_VERSION + 1;
    hy_msg_t msg;
    cr_assert_eq(hy_decode(data, zframe_size(frame), &msg), HY_EVERSION);
    cr_assert_eq(msg.peer_version, HY_PROTOCOL_VERSION + 1);
    data[0] = 'X';
    cr_assert_eq(hy_decode(data, zframe_size(frame), &msg), HY_EMALFORMED);
    zframe_destroy(&frame);
}

/* Patches byte at of example i to value and expects a rejection. */
static void s_expect_rejected(size_t example, size_t at, uint8_t value)
{
    zframe_t *frame = hy_encode(&s_examples[example]);
    uint8_t *data = zframe_data(frame);
    cr_assert_lt(at, zframe_size(frame));
    data[at] = value;
    hy_msg_t msg;
    cr_assert_eq(hy_decode(data, zframe_size(frame), &msg), HY_EMALFORMED,
                 "example %zu with byte %zu = %u was accepted", example, at, value);
    zframe_destroy(&frame);
}

Test(protocol, out_of_range_fields_are_rejected)
{
    size_t name_len = strlen(s_examples[0].name);
    s_expect_rejected(0, 3, 0);                     /* command 0 */
    s_expect_rejected(0, 3, 99);                    /* unknown command */
    s_expect_rejected(0, 4, 0);                     /* empty worker name */
    s_expect_rejected(0, 5, '\n');                  /* control character in the name */
    s_expect_rejected(0, 5 + name_len + 1, 0);      /* threads = 0 (low byte; high byte is 0) */
    s_expect_rejected(0, 5 + name_len, 0xff);       /* threads > 1024 */
    s_expect_rejected(2, 13, 'A');                  /* job kind with an upper-case letter */
    s_expect_rejected(2, 4 + 8 + 1 + 10, 0x7f);     /* params length beyond the limit */
    s_expect_rejected(3, 13, 0);                    /* zero units */
    s_expect_rejected(4, 4 + 16, 2);                /* result status 2 */
    s_expect_rejected(4, 4 + 17, 0x10);             /* payload length beyond the limit */
}

Test(protocol, garbage_never_crashes)
{
    /* A fixed-seed generator: the same garbage every run. */
    uint64_t x = 0x243f6a8885a308d3ull;
    uint8_t buf[512];
    for (int round = 0; round < 200000; round++) {
        size_t len = (size_t) (x % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t) x;
        }
        /* Half the time, a valid header so that the body parsers are reached. */
        if (len >= 4 && (round & 1)) {
            buf[0] = 'H', buf[1] = 'Y', buf[2] = HY_PROTOCOL_VERSION, buf[3] = 1 + round % 7;
        }
        hy_msg_t msg;
        int rc = hy_decode(buf, len, &msg);
        cr_assert(rc == 0 || rc == HY_EMALFORMED || rc == HY_EVERSION);
        if (rc == 0 && msg.command == HY_UNITS)
            for (size_t i = 0; i < msg.unit_count; i++)
                (void) hy_unit_at(&msg, i);
    }
}

Test(protocol, encoder_refuses_out_of_range_fields)
{
    log_set_level(HY_LOG_OFF);   /* the refusals are logged as programmer errors */
    hy_msg_t empty_units = {.command = HY_UNITS, .job = 1, .units = s_units, .unit_count = 0};
    cr_assert_null(hy_encode(&empty_units));
    hy_msg_t unknown = {.command = 42};
    cr_assert_null(hy_encode(&unknown));
}
