/* The wire codec, version 3: every message round-trips; damaged input is
   rejected as malformed, another version is told apart. */
#include <criterion/criterion.h>

#include "common/log.h"
#include "common/protocol.h"

static const uint64_t s_units[] = {0, 1, 499, UINT64_MAX};
static const uint8_t s_params[] = {1, 2, 3, 0, 255};
static const char *const s_kinds[] = {"mandelbrot", "pi", "no_op-2"};
static const char s_reason[] = "unit out of range";
static const hy_result_t s_batch[] = {
    {.unit = 1234567890123ull, .status = HY_RESULT_OK, .data = s_params, .len = sizeof s_params},
    {.unit = 3, .status = HY_RESULT_FAILED, .data = (const uint8_t *) s_reason, .len = sizeof s_reason - 1},
    {.unit = UINT64_MAX, .status = HY_RESULT_RETURNED, .data = NULL, .len = 0},
    {.unit = 0, .status = HY_RESULT_OK, .data = NULL, .len = 0},
};
static const hy_result_t s_one[] = {{.unit = 9, .status = HY_RESULT_OK, .data = s_params, .len = 2}};

/* One well-formed example of every command. */
static hy_msg_t s_examples[] = {
    {.command = HY_HELLO, .name = "node-7 (rack 2)", .threads = 16, .heartbeat_ms = 1000, .release = HY_RELEASE,
     .kind_count = 3, .kinds = s_kinds},
    {.command = HY_WELCOME, .session = 0x0123456789abcdefull, .heartbeat_ms = 250, .liveness = 3, .idle_ms = 1000},
    {.command = HY_JOB, .job = 42, .name = "mandelbrot", .data = s_params, .data_len = sizeof s_params},
    {.command = HY_UNITS, .job = UINT64_MAX, .units = s_units, .unit_count = 4},
    {.command = HY_RESULT, .job = 7, .results = s_batch, .result_count = 4},
    {.command = HY_RESULT, .job = 8, .results = s_one, .result_count = 1},
    {.command = HY_HEARTBEAT},
    {.command = HY_GOODBYE, .code = HY_BYE_STOPPING, .name = "worker stopping"},
    {.command = HY_GOODBYE, .code = HY_BYE_FINISHED, .name = ""},
    {.command = HY_CANCEL, .job = 5, .unit_count = 0},
    {.command = HY_CANCEL, .job = 6, .units = s_units, .unit_count = 3},
    {.command = HY_HELLO, .name = "w", .threads = 1024, .heartbeat_ms = 10, .release = "x", .kind_count = 1,
     .kinds = s_kinds},
};
#define N_EXAMPLES (sizeof s_examples / sizeof s_examples[0])
enum { HELLO = 0, WELCOME = 1, JOB = 2, UNITS = 3, RESULT = 4, GOODBYE = 7, CANCEL_ALL = 9, CANCEL = 10 };

static void s_same_bytes(const void *a, size_t alen, const void *b, size_t blen, const char *what)
{
    cr_assert_eq(alen, blen, "%s: length %zu, want %zu", what, blen, alen);
    if (alen)
        cr_assert(memcmp(a, b, alen) == 0, "%s differs", what);
}

static void s_check_same(const hy_msg_t *a, const hy_msg_t *b)
{
    cr_assert_eq(a->command, b->command);
    cr_assert_eq(b->peer_version, HY_PROTOCOL_VERSION);
    s_same_bytes(a->name, a->name ? strlen(a->name) : 0, b->name, b->name_len, "name");
    s_same_bytes(a->release, a->release ? strlen(a->release) : 0, b->release, b->release_len, "release");
    cr_assert_eq(a->threads, b->threads);
    cr_assert_eq(a->heartbeat_ms, b->heartbeat_ms);
    cr_assert_eq(a->liveness, b->liveness);
    cr_assert_eq(a->idle_ms, b->idle_ms);
    cr_assert_eq(a->code, b->code);
    cr_assert_eq(a->session, b->session);
    cr_assert_eq(a->job, b->job);
    s_same_bytes(a->data, a->data_len, b->data, b->data_len, "data");
    cr_assert_eq(a->unit_count, b->unit_count);
    for (size_t i = 0; i < a->unit_count; i++)
        cr_assert_eq(hy_unit_at(b, i), a->units[i]);

    cr_assert_eq(a->kind_count, b->kind_count);
    size_t cursor = 0, n = 0;
    const char *kind;
    size_t kind_len;
    while (hy_kind_next(b, &cursor, &kind, &kind_len)) {
        cr_assert_lt(n, a->kind_count);
        s_same_bytes(a->kinds[n], strlen(a->kinds[n]), kind, kind_len, "kind");
        n++;
    }
    cr_assert_eq(n, a->kind_count, "%zu kinds read back", n);

    cr_assert_eq(a->result_count, b->result_count);
    cursor = n = 0;
    hy_result_t r;
    while (hy_result_next(b, &cursor, &r)) {
        cr_assert_lt(n, a->result_count);
        cr_assert_eq(r.unit, a->results[n].unit);
        cr_assert_eq(r.status, a->results[n].status);
        s_same_bytes(a->results[n].data, a->results[n].len, r.data, r.len, "result");
        n++;
    }
    cr_assert_eq(n, a->result_count, "%zu results read back", n);
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

Test(protocol, a_result_adds_its_announced_size)
{
    hy_msg_t one = {.command = HY_RESULT, .job = 1, .results = s_one, .result_count = 1};
    zframe_t *frame = hy_encode(&one);
    cr_assert_eq(zframe_size(frame), 4 + 8 + 2 + hy_result_size(s_one[0].len));
    zframe_destroy(&frame);
    frame = hy_encode(&s_examples[RESULT]);
    size_t want = 4 + 8 + 2;
    for (size_t i = 0; i < 4; i++)
        want += hy_result_size(s_batch[i].len);
    cr_assert_eq(zframe_size(frame), want);
    zframe_destroy(&frame);
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
    for (size_t i = 0; i < N_EXAMPLES; i++) {
        zframe_t *frame = hy_encode(&s_examples[i]);
        uint8_t *data = zframe_data(frame);
        hy_msg_t msg;
        const uint8_t others[] = {1, HY_PROTOCOL_VERSION + 1, 255};
        for (size_t v = 0; v < sizeof others; v++) {
            data[2] = others[v];
            cr_assert_eq(hy_decode(data, zframe_size(frame), &msg), HY_EVERSION, "example %zu", i);
            cr_assert_eq(msg.peer_version, others[v]);
        }
        /* Even a bare header of another version, whatever follows. */
        cr_assert_eq(hy_decode(data, 4, &msg), HY_EVERSION);
        data[0] = 'X';
        cr_assert_eq(hy_decode(data, zframe_size(frame), &msg), HY_EMALFORMED);
        zframe_destroy(&frame);
    }
}

/* Expects bytes (len) to be malformed. */
static void s_expect_malformed(const uint8_t *data, size_t len, const char *what)
{
    hy_msg_t msg;
    cr_assert_eq(hy_decode(data, len, &msg), HY_EMALFORMED, "%s was accepted", what);
}

/* Patches byte at of example i to value and expects a rejection. */
static void s_expect_rejected(size_t example, size_t at, uint8_t value)
{
    zframe_t *frame = hy_encode(&s_examples[example]);
    uint8_t *data = zframe_data(frame);
    cr_assert_lt(at, zframe_size(frame));
    data[at] = value;
    char what[80];
    snprintf(what, sizeof what, "example %zu with byte %zu = %u", example, at, value);
    s_expect_malformed(data, zframe_size(frame), what);
    zframe_destroy(&frame);
}

Test(protocol, out_of_range_fields_are_rejected)
{
    size_t name = strlen(s_examples[HELLO].name), release = strlen(HY_RELEASE);
    size_t threads = 4 + 1 + name, rel = threads + 2 + 4, kinds = rel + 1 + release;
    s_expect_rejected(HELLO, 3, 0);                      /* command 0 */
    s_expect_rejected(HELLO, 3, 99);                     /* unknown command */
    s_expect_rejected(HELLO, 4, 0);                      /* empty worker name */
    s_expect_rejected(HELLO, 5, '\n');                   /* control character in the name */
    s_expect_rejected(HELLO, threads + 1, 0);            /* threads = 0 (high byte is 0) */
    s_expect_rejected(HELLO, threads, 0xff);             /* threads > 1024 */
    s_expect_rejected(HELLO, rel, 0);                    /* empty release */
    s_expect_rejected(HELLO, rel + 1, 0x7f);             /* non-printable release */
    s_expect_rejected(HELLO, kinds, 0);                  /* zero kinds (the kinds then trail) */
    s_expect_rejected(HELLO, kinds, HY_MAX_KINDS + 1);   /* too many kinds */
    s_expect_rejected(HELLO, kinds + 2, 'M');            /* a kind with an upper-case letter */
    s_expect_rejected(HELLO, kinds + 1, 0);              /* an empty kind name */
    s_expect_rejected(WELCOME, 4 + 8 + 4 + 1, 0);        /* liveness 0 */
    s_expect_rejected(WELCOME, 4 + 8 + 4, 0x04);         /* liveness > 1000 */
    s_expect_rejected(WELCOME, 4 + 8 + 3, 5);            /* heartbeat 5 ms */
    s_expect_rejected(WELCOME, 4 + 8 + 4 + 2 + 2, 0);    /* idle heartbeat 232 ms, below the heartbeat's 250 */
    s_expect_rejected(WELCOME, 4 + 8 + 4 + 2, 0xff);     /* idle heartbeat beyond 600,000 ms */
    s_expect_rejected(JOB, 13, 'A');                     /* job kind with an upper-case letter */
    s_expect_rejected(JOB, 4 + 8 + 1 + 10, 0x7f);        /* params length beyond the limit */
    s_expect_rejected(UNITS, 13, 0);                     /* zero units */
    s_expect_rejected(CANCEL, 13, 0xff);                 /* more units than the frame holds */
    s_expect_rejected(RESULT, 13, 0);                    /* zero results */
    s_expect_rejected(RESULT, 12, 0x04);                 /* more than 1024 results */
    s_expect_rejected(RESULT, 14 + 8, 3);                /* result status 3 */
    s_expect_rejected(RESULT, 14 + 9, 0x10);             /* payload length beyond the limit */
    s_expect_rejected(GOODBYE, 4, HY_BYE_MAX + 1);       /* unknown goodbye code */
    s_expect_rejected(GOODBYE, 6, 0x01);                 /* control character in the reason */
}

/* hy_decode of a HELLO whose fields are the example's but for heartbeat. */
static int s_hello_with_heartbeat(uint32_t heartbeat)
{
    hy_msg_t hello = s_examples[HELLO];
    hello.heartbeat_ms = heartbeat;
    zframe_t *frame = hy_encode(&hello);
    hy_msg_t msg;
    int rc = hy_decode(zframe_data(frame), zframe_size(frame), &msg);
    zframe_destroy(&frame);
    return rc;
}

Test(protocol, heartbeats_are_range_checked)
{
    cr_assert_eq(s_hello_with_heartbeat(HY_MIN_HEARTBEAT_MS), 0);
    cr_assert_eq(s_hello_with_heartbeat(HY_MAX_HEARTBEAT_MS), 0);
    cr_assert_eq(s_hello_with_heartbeat(HY_MIN_HEARTBEAT_MS - 1), HY_EMALFORMED);
    cr_assert_eq(s_hello_with_heartbeat(HY_MAX_HEARTBEAT_MS + 1), HY_EMALFORMED);
}

/* Encodes one result (the encoder leaves status/payload rules to the decoder). */
static int s_decode_result(uint8_t status, const char *data, size_t len)
{
    hy_result_t r = {.unit = 1, .status = status, .data = (const uint8_t *) data, .len = len};
    hy_msg_t msg = {.command = HY_RESULT, .job = 1, .results = &r, .result_count = 1};
    zframe_t *frame = hy_encode(&msg);
    cr_assert_not_null(frame);
    hy_msg_t back;
    int rc = hy_decode(zframe_data(frame), zframe_size(frame), &back);
    zframe_destroy(&frame);
    return rc;
}

Test(protocol, result_statuses_carry_what_they_must)
{
    cr_assert_eq(s_decode_result(HY_RESULT_RETURNED, NULL, 0), 0);
    cr_assert_eq(s_decode_result(HY_RESULT_RETURNED, "x", 1), HY_EMALFORMED, "a returned unit with a payload");
    cr_assert_eq(s_decode_result(HY_RESULT_FAILED, "why not", 7), 0);
    cr_assert_eq(s_decode_result(HY_RESULT_FAILED, "", 0), 0);
    cr_assert_eq(s_decode_result(HY_RESULT_FAILED, "bad\x01", 4), HY_EMALFORMED, "a non-printable reason");
    cr_assert_eq(s_decode_result(HY_RESULT_FAILED, "tab\t", 4), HY_EMALFORMED, "a non-printable reason");
    cr_assert_eq(s_decode_result(HY_RESULT_OK, "\x00\x01\xff", 3), 0, "an OK payload is any bytes");
}

/* A RESULT of count results of len bytes each, written by hand (the encoder
   refuses what the decoder must refuse). Caller frees; size in *size. */
static uint8_t *s_raw_result(size_t count, size_t len, size_t *size)
{
    *size = 4 + 8 + 2 + count * (8 + 1 + 4 + len);
    uint8_t *buf = calloc(*size, 1), *p = buf;
    *p++ = 'H', *p++ = 'Y', *p++ = HY_PROTOCOL_VERSION, *p++ = HY_RESULT;
    p += 7, *p++ = 1;                         /* job 1 */
    *p++ = (uint8_t) (count >> 8), *p++ = (uint8_t) count;
    for (size_t i = 0; i < count; i++) {
        p += 7, *p++ = (uint8_t) i;           /* unit i, status ok */
        p++;
        *p++ = (uint8_t) (len >> 24), *p++ = (uint8_t) (len >> 16), *p++ = (uint8_t) (len >> 8), *p++ = (uint8_t) len;
        p += len;
    }
    cr_assert_eq((size_t) (p - buf), *size);
    return buf;
}

Test(protocol, a_result_batch_is_limited_in_count_and_payload)
{
    size_t size;
    uint8_t *buf = s_raw_result(HY_MAX_BATCH, 1, &size);
    hy_msg_t msg;
    cr_assert_eq(hy_decode(buf, size, &msg), 0, "a full batch");
    cr_assert_eq(msg.result_count, HY_MAX_BATCH);
    free(buf);
    buf = s_raw_result(HY_MAX_BATCH + 1, 1, &size);
    s_expect_malformed(buf, size, "1025 results");
    free(buf);
    buf = s_raw_result(2, HY_MAX_PAYLOAD / 2, &size);
    cr_assert_eq(hy_decode(buf, size, &msg), 0, "16 MiB of payload in two results");
    free(buf);
    buf = s_raw_result(2, HY_MAX_PAYLOAD / 2 + 1, &size);
    s_expect_malformed(buf, size, "two results of more than 16 MiB together");
    free(buf);
    buf = s_raw_result(1, HY_MAX_PAYLOAD + 1, &size);
    s_expect_malformed(buf, size, "one payload of more than 16 MiB");
    free(buf);
}

Test(protocol, a_hello_without_kinds_is_rejected)
{
    zframe_t *frame = hy_encode(&s_examples[HELLO]);
    size_t cut = 4 + 1 + strlen(s_examples[HELLO].name) + 2 + 4 + 1 + strlen(HY_RELEASE) + 1;
    uint8_t *data = zframe_data(frame);
    data[cut - 1] = 0;   /* kind count 0, and nothing after it */
    s_expect_malformed(data, cut, "a HELLO with no kinds");
    zframe_destroy(&frame);
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
            buf[0] = 'H', buf[1] = 'Y', buf[2] = HY_PROTOCOL_VERSION, buf[3] = 1 + round % 8;
        }
        hy_msg_t msg;
        int rc = hy_decode(buf, len, &msg);
        cr_assert(rc == 0 || rc == HY_EMALFORMED || rc == HY_EVERSION);
        if (rc != 0)
            continue;
        for (size_t i = 0; i < msg.unit_count; i++)
            (void) hy_unit_at(&msg, i);
        size_t cursor = 0, n = 0, kind_len;
        const char *kind;
        while (hy_kind_next(&msg, &cursor, &kind, &kind_len))
            n++;
        cr_assert_eq(n, msg.command == HY_HELLO ? msg.kind_count : 0);
        cursor = n = 0;
        hy_result_t r;
        while (hy_result_next(&msg, &cursor, &r))
            n++;
        cr_assert_eq(n, msg.result_count);
    }
}

Test(protocol, encoder_refuses_out_of_range_fields)
{
    log_set_level(HY_LOG_OFF);   /* the refusals are logged as programmer errors */
    hy_msg_t empty_units = {.command = HY_UNITS, .job = 1, .units = s_units, .unit_count = 0};
    cr_assert_null(hy_encode(&empty_units));
    hy_msg_t unknown = {.command = 42};
    cr_assert_null(hy_encode(&unknown));
    hy_msg_t no_results = {.command = HY_RESULT, .job = 1, .results = s_batch, .result_count = 0};
    cr_assert_null(hy_encode(&no_results));
    hy_msg_t many = {.command = HY_RESULT, .job = 1, .results = s_batch, .result_count = HY_MAX_BATCH + 1};
    cr_assert_null(hy_encode(&many));
    hy_msg_t no_kinds = s_examples[HELLO];
    no_kinds.kind_count = 0;
    cr_assert_null(hy_encode(&no_kinds));
    hy_msg_t many_cancels = {.command = HY_CANCEL, .job = 1, .units = s_units, .unit_count = HY_MAX_BATCH + 1};
    cr_assert_null(hy_encode(&many_cancels));
}

Test(protocol, names_for_logs)
{
    cr_assert_str_eq(hy_command_name(HY_CANCEL), "CANCEL");
    cr_assert_str_eq(hy_command_name(0), "?");
    cr_assert_str_eq(hy_bye_name(HY_BYE_STOPPING), "stopping");
    cr_assert_str_eq(hy_bye_name(HY_BYE_MAX + 1), "?");
}
