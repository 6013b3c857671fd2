/* pi: a Monte Carlo estimate of pi from (samples, seed) tuples (SPEC 3.2).
   Unit u draws n_u points from its own SplitMix64 stream; its result is the
   number of points inside the quarter circle. */
#include "common/bytes.h"
#include "common/options.h"
#include "common/outfile.h"
#include "common/rng.h"
#include "jobs/job.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_UNITS  10000000u
#define CHART_POINTS 512          /* the running estimate's chart: points across the job */
#define PARAMS_LEN 24

typedef struct {
    uint64_t samples;   /* N */
    uint64_t units;     /* U, 1 .. min(N, MAX_UNITS) */
    uint64_t seed;      /* S */
} pi_params_t;

static const char *s_check(const pi_params_t *p)
{
    if (p->samples < 1)
        return "--samples must be at least 1";
    if (p->units < 1 || p->units > MAX_UNITS)
        return "--units must be from 1 to 10000000";
    if (p->units > p->samples)
        return "--units must not exceed --samples";
    return NULL;
}

/* The (samples, seed) tuple of unit u. */
static void s_tuple(const pi_params_t *p, uint64_t u, uint64_t *n, uint64_t *seed)
{
    *n = p->samples / p->units + (u < p->samples % p->units ? 1 : 0);
    *seed = stream_at(p->seed, u + 1);
}

#define SAMPLES_PER_LOOK (1u << 16)   /* samples drawn between two looks at cancel */

/* Hits among n samples of the stream seeded with seed, into *hits. Returns 0,
   or JOB_CANCELLED when it saw *cancel set (NULL: never). */
static int s_hits(uint64_t seed, uint64_t n, const atomic_bool *cancel, uint64_t *hits_out)
{
    const double scale = 0x1p-53;
    uint64_t hits = 0;
    uint64_t i = 0;
    do {
        if (cancel && atomic_load_explicit(cancel, memory_order_relaxed))
            return JOB_CANCELLED;
        uint64_t end = n - i > SAMPLES_PER_LOOK ? i + SAMPLES_PER_LOOK : n;
        for (; i < end; i++) {
            double x = (double) (stream_at(seed, 2 * i + 1) >> 11) * scale;
            double y = (double) (stream_at(seed, 2 * i + 2) >> 11) * scale;
            hits += x * x + y * y <= 1.0;
        }
    } while (i < n);
    *hits_out = hits;
    return 0;
}

static void s_encode(const pi_params_t *p, uint8_t *buf)
{
    writer_t w = {buf};
    writer_be(&w, p->samples, 8);
    writer_be(&w, p->units, 8);
    writer_be(&w, p->seed, 8);
}

/* ------------------------------------------------------------ manager side */

typedef struct {
    pi_params_t p;
    uint64_t hits;      /* sum over accepted units */
    uint64_t samples;   /* their samples */
    uint64_t accepted;  /* units accepted */
    double history[CHART_POINTS];   /* the estimate as units came in, by share of the job */
    bool have[CHART_POINTS];
} state_t;

static int s_plan(int argc, char **argv, job_plan_t *plan, FILE *out, char *err, size_t errlen)
{
    uint64_t samples = 100000000, units = 100, seed = 1;
    const char *output = NULL;
    bool help = false;
    const opt_t opts[] = {
        {"samples", 0, OPT_U64, &samples, 0, 0, 1, UINT64_MAX, NULL, NULL, "N", "points to draw (100000000)"},
        {"units", 0, OPT_U64, &units, 0, 0, 1, MAX_UNITS, NULL, NULL, "U", "work units, each a (samples, seed) tuple (100)"},
        {"seed", 0, OPT_U64, &seed, 0, 0, 0, UINT64_MAX, NULL, NULL, "S", "seed of the whole job (1)"},
        {"output", 'o', OPT_STRING, &output, 0, 0, 0, 0, NULL, NULL, "FILE", "also write the result as JSON"},
        {"help", 'h', OPT_FLAG, &help, 0, 0, 0, 0, NULL, NULL, NULL, "show this help"},
        {NULL},
    };
    int rc = job_options(opts, &help, "pi: a Monte Carlo estimate of pi from (samples, seed) tuples", argc, argv, out, err, errlen);
    if (rc != JOB_OK)
        return rc;
    pi_params_t p = {samples, units, seed};
    const char *why = s_check(&p);
    if (why) {
        snprintf(err, errlen, "pi: %s", why);
        return JOB_ERROR;
    }
    state_t *state = calloc(1, sizeof *state);
    state->p = p;
    plan->params = malloc(PARAMS_LEN);
    plan->params_len = PARAMS_LEN;
    s_encode(&p, plan->params);
    plan->units = p.units;
    plan->output = output;
    plan->default_output = NULL;
    plan->state = state;
    return JOB_OK;
}

static int s_accept(void *self, uint64_t unit, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    state_t *state = self;
    reader_t r = reader_new(data, len);
    uint64_t hits = reader_be(&r, 8);
    uint64_t n, seed;
    if (unit >= state->p.units || !reader_done(&r)) {
        snprintf(err, errlen, "%zu bytes, not 8", len);
        return JOB_MALFORMED;
    }
    s_tuple(&state->p, unit, &n, &seed);
    if (hits > n) {
        snprintf(err, errlen, "%" PRIu64 " hits from %" PRIu64 " samples", hits, n);
        return JOB_MALFORMED;
    }
    state->hits += hits;
    state->samples += n;
    size_t at = (size_t) (state->accepted++ * CHART_POINTS / state->p.units);
    state->history[at] = 4.0 * (double) state->hits / (double) state->samples;
    state->have[at] = true;
    return 0;
}

/* The running estimate against units done: a line that settles on a band
   around pi (the green line), scaled to the largest distance from it. */
static int s_preview(void *self, uint32_t max_side, job_picture_t *picture)
{
    const state_t *state = self;
    uint32_t w = max_side < 2 * CHART_POINTS ? max_side : 2 * CHART_POINTS, h = w * 3 / 8;
    if (state->accepted == 0 || w < 16)
        return -1;
    double far = 1e-9;
    for (size_t i = 0; i < CHART_POINTS; i++)
        if (state->have[i] && fabs(state->history[i] - M_PI) > far)
            far = fabs(state->history[i] - M_PI);
    uint8_t *rgb = malloc((size_t) w * h * 3);
    if (!rgb)
        return -1;
    for (size_t i = 0; i < (size_t) w * h; i++)
        rgb[3 * i] = 16, rgb[3 * i + 1] = 20, rgb[3 * i + 2] = 28;
    for (uint32_t x = 0; x < w; x++) {   /* pi itself */
        uint8_t *px = rgb + ((size_t) (h / 2) * w + x) * 3;
        px[0] = 60, px[1] = 150, px[2] = 100;
    }
    long last = -1;
    for (uint32_t x = 0; x < w; x++) {
        size_t i = (size_t) x * CHART_POINTS / w;
        if (!state->have[i])
            continue;
        double rel = (state->history[i] - M_PI) / far;   /* -1 .. 1 */
        long y = lround((h - 1) / 2.0 - rel * ((h - 1) / 2.0 - 4));
        long from = last < 0 ? y : last, to = y;
        if (from > to)
            from = y, to = last;
        for (long yy = from; yy <= to; yy++) {
            uint8_t *px = rgb + ((size_t) yy * w + x) * 3;
            px[0] = 240, px[1] = 190, px[2] = 80;
        }
        last = y;
    }
    *picture = (job_picture_t) {rgb, w, h};
    return 0;
}

/* The running estimate: 4 * hits / samples over the units accepted so far. */
static int s_estimate(void *self, double *value, char *text, size_t len)
{
    const state_t *state = self;
    if (state->samples == 0)
        return -1;
    *value = 4.0 * (double) state->hits / (double) state->samples;
    snprintf(text, len, "pi ~ %.10f", *value);
    return 0;
}

static int s_finish(void *self, const char *output, FILE *out, char *err, size_t errlen)
{
    state_t *state = self;
    /* 4 * hits / N, with hits and N exact up to 2^53 and rounded once beyond. */
    double estimate = 4.0 * (double) state->hits / (double) state->p.samples;
    double error = fabs(estimate - M_PI);
    fprintf(out, "pi: estimate %.12f from %" PRIu64 " samples, %" PRIu64 " hits, error %.3e\n", estimate,
            state->p.samples, state->hits, error);
    if (!output)
        return 0;
    outfile_t *file = outfile_open(output, err, errlen);
    if (!file)
        return -1;
    fprintf(outfile_stream(file), "{\"estimate\":%.17g,\"samples\":%" PRIu64 ",\"hits\":%" PRIu64 ",\"error\":%.17g,\"units\":%" PRIu64
               ",\"seed\":%" PRIu64 "}\n",
            estimate, state->p.samples, state->hits, error, state->p.units, state->p.seed);
    return outfile_close(&file, true, err, errlen);
}

static void s_destroy(void *self) { free(self); }

/* ------------------------------------------------------------ worker side */

static void *s_load(const uint8_t *params, size_t len)
{
    reader_t r = reader_new(params, len);
    pi_params_t p;
    p.samples = reader_be(&r, 8);
    p.units = reader_be(&r, 8);
    p.seed = reader_be(&r, 8);
    if (!reader_done(&r) || s_check(&p))
        return NULL;
    pi_params_t *ctx = malloc(sizeof *ctx);
    *ctx = p;
    return ctx;
}

static void s_unload(void *ctx) { free(ctx); }

/* ctx is only read: every compute thread shares it. */
static int s_compute(const void *ctx, uint64_t unit, const atomic_bool *cancel, uint8_t **out, size_t *out_len)
{
    const pi_params_t *p = ctx;
    if (unit >= p->units)
        return JOB_RANGE;
    uint64_t n, seed, hits;
    s_tuple(p, unit, &n, &seed);
    if (s_hits(seed, n, cancel, &hits) == JOB_CANCELLED)
        return JOB_CANCELLED;
    *out = malloc(8);
    *out_len = 8;
    writer_t w = {*out};
    writer_be(&w, hits, 8);
    return 0;
}

const job_kind_t pi_job = {
    .name = "pi",
    .summary = "Monte Carlo estimate of pi from (samples, seed) tuples",
    .plan = s_plan,
    .load = s_load,
    .unload = s_unload,
    .compute = s_compute,
    .accept = s_accept,
    .estimate = s_estimate,
    .preview = s_preview,
    .finish = s_finish,
    .destroy = s_destroy,
};
