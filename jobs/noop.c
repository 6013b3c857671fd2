/* noop: units that return a few bytes after an optional sleep. For fault
   injection and for measuring the cluster's own overhead per unit. */
#include "common/bytes.h"
#include "common/options.h"
#include "jobs/job.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#define MAX_UNITS 100000000u
#define MAX_SLEEP_MS 3600000u

typedef struct {
    uint64_t units;
    uint32_t sleep_ms;
} noop_params_t;

typedef struct {
    noop_params_t p;
    uint64_t sum;   /* of the unit indices echoed back: checks every unit came once */
} state_t;

static int s_plan(int argc, char **argv, job_plan_t *plan, FILE *out, char *err, size_t errlen)
{
    uint64_t units = 1000, sleep_ms = 0;
    bool help = false;
    const opt_t opts[] = {
        {"units", 0, OPT_U64, &units, 0, 0, 1, MAX_UNITS, NULL, NULL, "N", "units (1000)"},
        {"sleep-ms", 0, OPT_U64, &sleep_ms, 0, 0, 0, MAX_SLEEP_MS, NULL, NULL, "MS", "each unit sleeps this long (0)"},
        {"help", 'h', OPT_FLAG, &help, 0, 0, 0, 0, NULL, NULL, NULL, "show this help"},
        {NULL},
    };
    int rc = job_options(opts, &help, "noop: units that return their index after an optional sleep", argc, argv, out, err, errlen);
    if (rc != JOB_OK)
        return rc;
    state_t *state = calloc(1, sizeof *state);
    state->p = (noop_params_t) {units, (uint32_t) sleep_ms};
    plan->params = malloc(12);
    plan->params_len = 12;
    writer_t w = {plan->params};
    writer_be(&w, units, 8);
    writer_be(&w, sleep_ms, 4);
    plan->units = units;
    plan->no_output = true;
    plan->state = state;
    return JOB_OK;
}

static int s_accept(void *self, uint64_t unit, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    state_t *state = self;
    reader_t r = reader_new(data, len);
    uint64_t echoed = reader_be(&r, 8);
    if (!reader_done(&r) || echoed != unit) {
        if (reader_done(&r))
            snprintf(err, errlen, "unit %" PRIu64 "'s index", echoed);
        else
            snprintf(err, errlen, "%zu bytes, not 8", len);
        return JOB_MALFORMED;
    }
    state->sum += unit;
    return 0;
}

static int s_finish(void *self, const char *output, FILE *out, char *err, size_t errlen)
{
    state_t *state = self;
    uint64_t n = state->p.units;
    /* 0 + 1 + ... + (n-1), the same modulo 2^64 as the sum of what came back. */
    uint64_t want = n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
    if (state->sum != want) {
        snprintf(err, errlen, "noop: units came back wrong (sum %" PRIu64 ", expected %" PRIu64 ")", state->sum, want);
        return -1;
    }
    fprintf(out, "noop: %" PRIu64 " units\n", n);
    return 0;
}

static void s_destroy(void *self) { free(self); }

static void *s_load(const uint8_t *params, size_t len)
{
    reader_t r = reader_new(params, len);
    noop_params_t p = {reader_be(&r, 8), (uint32_t) reader_be(&r, 4)};
    if (!reader_done(&r) || p.units < 1 || p.units > MAX_UNITS || p.sleep_ms > MAX_SLEEP_MS)
        return NULL;
    noop_params_t *ctx = malloc(sizeof *ctx);
    *ctx = p;
    return ctx;
}

static void s_unload(void *ctx) { free(ctx); }

/* Sleeps in slices of at most 10 ms, looking at *cancel between them. */
static int s_compute(const void *ctx, uint64_t unit, const atomic_bool *cancel, uint8_t **out, size_t *out_len)
{
    const noop_params_t *p = ctx;
    if (unit >= p->units)
        return JOB_RANGE;
    uint32_t left = p->sleep_ms;
    do {
        if (cancel && atomic_load_explicit(cancel, memory_order_relaxed))
            return JOB_CANCELLED;
        uint32_t slice = left < 10 ? left : 10;
        struct timespec ts = {0, (long) slice * 1000000L};
        while (slice && nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        left -= slice;
    } while (left);
    *out = malloc(8);
    *out_len = 8;
    writer_t w = {*out};
    writer_be(&w, unit, 8);
    return 0;
}

const job_kind_t noop_job = {
    .name = "noop",
    .summary = "units that return their index after an optional sleep (tests, overhead)",
    .plan = s_plan,
    .load = s_load,
    .unload = s_unload,
    .compute = s_compute,
    .accept = s_accept,
    .finish = s_finish,
    .destroy = s_destroy,
};
