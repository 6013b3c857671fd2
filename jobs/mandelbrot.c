/* mandelbrot: columns of the Mandelbrot set in grayscale, assembled into a PNG.
   Unit k is the run of C columns starting at column k * C (SPEC 3.1). */
#include "jobs/mandelbrot.h"
#include "common/bytes.h"
#include "common/image.h"
#include "common/options.h"
#include "jobs/job.h"

#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE   100000u
#define MAX_PIXELS (1u << 30)    /* the manager holds the whole image */
#define MAX_ITER   1000000000u
#define MAX_PAYLOAD (16u << 20)  /* = HY_MAX_PAYLOAD: one unit's bytes */
#define PARAMS_LEN (4 + 4 + 8 * 4 + 4 + 4)

const char *mandel_params_check(const mandel_params_t *p)
{
    if (p->width < 1 || p->width > MAX_SIDE || p->height < 1 || p->height > MAX_SIDE)
        return "--width and --height must be from 1 to 100000";
    if ((uint64_t) p->width * p->height > MAX_PIXELS)
        return "image too large: width * height must be at most 2^30 pixels";
    if (!isfinite(p->xmin) || !isfinite(p->xmax) || !isfinite(p->ymin) || !isfinite(p->ymax))
        return "the view bounds must be finite numbers";
    if (!(p->xmin < p->xmax))
        return "--xmin must be less than --xmax";
    if (!(p->ymin < p->ymax))
        return "--ymin must be less than --ymax";
    if (!isfinite(p->xmax - p->xmin) || !isfinite(p->ymax - p->ymin))
        return "the view is too wide: --xmax - --xmin and --ymax - --ymin must be finite";
    if (p->max_iter < 1 || p->max_iter > MAX_ITER)
        return "--max-iter must be from 1 to 1000000000";
    if (p->columns_per_unit < 1 || p->columns_per_unit > p->width)
        return "--columns-per-unit must be from 1 to --width";
    if ((uint64_t) p->columns_per_unit * p->height > MAX_PAYLOAD)
        return "--columns-per-unit * --height must be at most 16 MiB";
    return NULL;
}

/* ------------------------------------------------------------ kernels */

static inline uint8_t s_gray(uint32_t k, uint32_t m)
{
    return (uint8_t) (255 - ((uint64_t) k * 255) / m);
}

/* The escape count k of point (cr, ci), at most m. */
static inline uint32_t s_escape(double cr, double ci, uint32_t m)
{
    double zr = 0, zi = 0;
    uint32_t k = 0;
    while (k < m) {
        double zr2 = zr * zr, zi2 = zi * zi;
        if (zr2 + zi2 > 4.0)
            break;
        zi = (2.0 * zr) * zi + ci;
        zr = (zr2 - zi2) + cr;
        k++;
    }
    return k;
}

void mandel_counts_scalar(const mandel_params_t *p, uint32_t i, uint32_t j0, uint32_t j1, uint32_t *k)
{
    const double dx = (p->xmax - p->xmin) / p->width;
    const double dy = (p->ymax - p->ymin) / p->height;
    const double cr = p->xmin + i * dx;
    for (uint32_t j = j0; j < j1; j++)
        k[j - j0] = s_escape(cr, p->ymax - j * dy, p->max_iter);
}

/* Four rows of one column at a time; lanes that escaped stop counting. The
   same IEEE operations in the same order as the scalar path: same bits. */
__attribute__((target("avx2"))) static void s_counts_avx2(const mandel_params_t *p, uint32_t i,
                                                          uint32_t j0, uint32_t j1, uint32_t *out)
{
    const double dx = (p->xmax - p->xmin) / p->width;
    const double dy = (p->ymax - p->ymin) / p->height;
    const __m256d cr = _mm256_set1_pd(p->xmin + i * dx);
    const __m256d four = _mm256_set1_pd(4.0), two = _mm256_set1_pd(2.0);
    const __m256i one = _mm256_set1_epi64x(1);
    const uint32_t m = p->max_iter;
    uint32_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        const __m256d ci = _mm256_set_pd(p->ymax - (j + 3) * dy, p->ymax - (j + 2) * dy,
                                         p->ymax - (j + 1) * dy, p->ymax - j * dy);
        __m256d zr = _mm256_setzero_pd(), zi = _mm256_setzero_pd();
        __m256i k = _mm256_setzero_si256();
        __m256i active = _mm256_set1_epi64x(-1);
        for (uint32_t n = 0; n < m; n++) {
            __m256d zr2 = _mm256_mul_pd(zr, zr), zi2 = _mm256_mul_pd(zi, zi);
            __m256d out_mask = _mm256_cmp_pd(_mm256_add_pd(zr2, zi2), four, _CMP_GT_OQ);
            active = _mm256_andnot_si256(_mm256_castpd_si256(out_mask), active);
            if (_mm256_testz_si256(active, active))
                break;
            k = _mm256_add_epi64(k, _mm256_and_si256(active, one));
            zi = _mm256_add_pd(_mm256_mul_pd(_mm256_mul_pd(two, zr), zi), ci);
            zr = _mm256_add_pd(_mm256_sub_pd(zr2, zi2), cr);
        }
        uint64_t ks[4];
        _mm256_storeu_si256((__m256i *) ks, k);
        for (int l = 0; l < 4; l++)
            out[j - j0 + l] = (uint32_t) ks[l];
    }
    for (; j < j1; j++)   /* the last rows, one at a time */
        out[j - j0] = s_escape(p->xmin + i * dx, p->ymax - j * dy, m);
}

/* Eight rows at a time with AVX-512 masks; otherwise as the AVX2 path. */
__attribute__((target("avx512f"))) static void s_counts_avx512(const mandel_params_t *p, uint32_t i,
                                                              uint32_t j0, uint32_t j1, uint32_t *out)
{
    const double dx = (p->xmax - p->xmin) / p->width;
    const double dy = (p->ymax - p->ymin) / p->height;
    const __m512d cr = _mm512_set1_pd(p->xmin + i * dx);
    const __m512d four = _mm512_set1_pd(4.0), two = _mm512_set1_pd(2.0);
    const __m512i one = _mm512_set1_epi64(1);
    const uint32_t m = p->max_iter;
    uint32_t j = j0;
    for (; j + 8 <= j1; j += 8) {
        double rows[8];
        for (int l = 0; l < 8; l++)
            rows[l] = p->ymax - (j + l) * dy;
        const __m512d ci = _mm512_loadu_pd(rows);
        __m512d zr = _mm512_setzero_pd(), zi = _mm512_setzero_pd();
        __m512i k = _mm512_setzero_si512();
        __mmask8 active = 0xff;
        for (uint32_t n = 0; n < m; n++) {
            __m512d zr2 = _mm512_mul_pd(zr, zr), zi2 = _mm512_mul_pd(zi, zi);
            active &= (__mmask8) ~_mm512_cmp_pd_mask(_mm512_add_pd(zr2, zi2), four, _CMP_GT_OQ);
            if (!active)
                break;
            k = _mm512_mask_add_epi64(k, active, k, one);
            zi = _mm512_add_pd(_mm512_mul_pd(_mm512_mul_pd(two, zr), zi), ci);
            zr = _mm512_add_pd(_mm512_sub_pd(zr2, zi2), cr);
        }
        uint64_t ks[8];
        _mm512_storeu_si512(ks, k);
        for (int l = 0; l < 8; l++)
            out[j - j0 + l] = (uint32_t) ks[l];
    }
    for (; j < j1; j++)   /* the last rows, one at a time */
        out[j - j0] = s_escape(p->xmin + i * dx, p->ymax - j * dy, m);
}

typedef void (counts_fn)(const mandel_params_t *, uint32_t, uint32_t, uint32_t, uint32_t *);

static counts_fn *const s_kernels[] = {
    [MANDEL_SCALAR] = mandel_counts_scalar,
    [MANDEL_AVX2] = s_counts_avx2,
    [MANDEL_AVX512] = s_counts_avx512,
};
static const char *const s_kernel_names[] = {"scalar", "AVX2", "AVX-512"};

static mandel_kernel_t s_best;   /* decided once, read-only after */
static pthread_once_t s_best_once = PTHREAD_ONCE_INIT;

static void s_decide(void)
{
    const char *off = getenv("HYADES_NO_SIMD");
    bool simd = !(off && strcmp(off, "0") != 0);
    s_best = MANDEL_SCALAR;
    for (int k = MANDEL_AVX512; simd && k > MANDEL_SCALAR && s_best == MANDEL_SCALAR; k--)
        if (mandel_kernel_available((mandel_kernel_t) k))
            s_best = (mandel_kernel_t) k;
}

bool mandel_kernel_available(mandel_kernel_t kernel)
{
    switch (kernel) {
    case MANDEL_SCALAR: return true;
    case MANDEL_AVX2: return __builtin_cpu_supports("avx2");
    case MANDEL_AVX512: return __builtin_cpu_supports("avx512f");
    }
    return false;
}

mandel_kernel_t mandel_kernel(void)
{
    pthread_once(&s_best_once, s_decide);
    return s_best;
}

const char *mandel_kernel_name(mandel_kernel_t kernel) { return s_kernel_names[kernel]; }

void mandel_counts(const mandel_params_t *p, uint32_t i, uint32_t j0, uint32_t j1, uint32_t *k)
{
    s_kernels[mandel_kernel()](p, i, j0, j1, k);
}

uint32_t mandel_rows_per_look(uint32_t max_iter)
{
    uint32_t rows = (1u << 24) / (max_iter ? max_iter : 1) / 8 * 8;
    return rows < 8 ? 8 : rows > 256 ? 256 : rows;
}

static bool s_cancelled(const atomic_bool *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

/* Gray values of column i through counts, in groups of rows that fit on the
   stack; between two groups, a look at *cancel (NULL: never cancelled).
   Returns 0, or JOB_CANCELLED with out partly written. Any grouping gives
   the same bytes: each row is computed on its own. */
static int s_column(const mandel_params_t *p, uint32_t i, uint8_t *out,
                    void (*counts)(const mandel_params_t *, uint32_t, uint32_t, uint32_t, uint32_t *),
                    const atomic_bool *cancel)
{
    uint32_t k[256];
    uint32_t group = cancel ? mandel_rows_per_look(p->max_iter) : 256;
    for (uint32_t j0 = 0; j0 < p->height; j0 += group) {
        if (s_cancelled(cancel))
            return JOB_CANCELLED;
        uint32_t j1 = p->height - j0 < group ? p->height : j0 + group;
        counts(p, i, j0, j1, k);
        for (uint32_t j = j0; j < j1; j++)
            out[j] = s_gray(k[j - j0], p->max_iter);
    }
    return 0;
}

void mandel_column(const mandel_params_t *p, uint32_t i, uint8_t *out)
{
    s_column(p, i, out, s_kernels[mandel_kernel()], NULL);
}

void mandel_column_with(mandel_kernel_t kernel, const mandel_params_t *p, uint32_t i, uint8_t *out)
{
    assert(mandel_kernel_available(kernel));
    s_column(p, i, out, s_kernels[kernel], NULL);
}

void mandel_column_scalar(const mandel_params_t *p, uint32_t i, uint8_t *out)
{
    s_column(p, i, out, mandel_counts_scalar, NULL);
}

/* ------------------------------------------------------------ parameters */

static void s_encode(const mandel_params_t *p, uint8_t *buf)
{
    writer_t w = {buf};
    writer_be(&w, p->width, 4);
    writer_be(&w, p->height, 4);
    writer_double(&w, p->xmin);
    writer_double(&w, p->xmax);
    writer_double(&w, p->ymin);
    writer_double(&w, p->ymax);
    writer_be(&w, p->max_iter, 4);
    writer_be(&w, p->columns_per_unit, 4);
}

static int s_decode(const uint8_t *buf, size_t len, mandel_params_t *p)
{
    reader_t r = reader_new(buf, len);
    p->width = (uint32_t) reader_be(&r, 4);
    p->height = (uint32_t) reader_be(&r, 4);
    p->xmin = reader_double(&r);
    p->xmax = reader_double(&r);
    p->ymin = reader_double(&r);
    p->ymax = reader_double(&r);
    p->max_iter = (uint32_t) reader_be(&r, 4);
    p->columns_per_unit = (uint32_t) reader_be(&r, 4);
    return reader_done(&r) && !mandel_params_check(p) ? 0 : -1;
}

static uint64_t s_units(const mandel_params_t *p)
{
    return (p->width + (uint64_t) p->columns_per_unit - 1) / p->columns_per_unit;
}

/* ------------------------------------------------------------ manager side */

typedef struct {
    mandel_params_t p;
    uint8_t *columns;  /* width * height gray bytes, column-major as they arrive */
} state_t;

static int s_plan(int argc, char **argv, job_plan_t *plan, FILE *out, char *err, size_t errlen)
{
    int64_t width = 500, height = 400, max_iter = 255, cpu = 1;
    double xmin = -2, xmax = 0.5, ymin = -1, ymax = 1;
    const char *output = NULL;
    bool help = false;
    const opt_t opts[] = {
        {"width", 0, OPT_INT, &width, 1, MAX_SIDE, 0, 0, NULL, NULL, "W", "image width in pixels (500)"},
        {"height", 0, OPT_INT, &height, 1, MAX_SIDE, 0, 0, NULL, NULL, "H", "image height in pixels (400)"},
        {"xmin", 0, OPT_DOUBLE, &xmin, 0, 0, 0, 0, NULL, NULL, "X", "left edge of the view (-2)"},
        {"xmax", 0, OPT_DOUBLE, &xmax, 0, 0, 0, 0, NULL, NULL, "X", "right edge of the view (0.5)"},
        {"ymin", 0, OPT_DOUBLE, &ymin, 0, 0, 0, 0, NULL, NULL, "Y", "bottom edge of the view (-1)"},
        {"ymax", 0, OPT_DOUBLE, &ymax, 0, 0, 0, 0, NULL, NULL, "Y", "top edge of the view (1)"},
        {"max-iter", 0, OPT_INT, &max_iter, 1, MAX_ITER, 0, 0, NULL, NULL, "M", "iterations before a point counts as inside (255)"},
        {"columns-per-unit", 0, OPT_INT, &cpu, 1, MAX_SIDE, 0, 0, NULL, NULL, "C", "adjacent columns in one work unit (1)"},
        {"output", 'o', OPT_STRING, &output, 0, 0, 0, 0, NULL, NULL, "FILE", "output PNG (mandelbrot.png)"},
        {"help", 'h', OPT_FLAG, &help, 0, 0, 0, 0, NULL, NULL, NULL, "show this help"},
        {NULL},
    };
    int rc = job_options(opts, &help, "mandelbrot: columns of the Mandelbrot set, assembled into a grayscale PNG", argc, argv, out, err, errlen);
    if (rc != JOB_OK)
        return rc;
    mandel_params_t p = {(uint32_t) width, (uint32_t) height, xmin, xmax, ymin, ymax,
                         (uint32_t) max_iter, (uint32_t) cpu};
    const char *why = mandel_params_check(&p);
    if (why) {
        snprintf(err, errlen, "mandelbrot: %s", why);
        return JOB_ERROR;
    }
    state_t *state = calloc(1, sizeof *state);
    state->p = p;
    state->columns = calloc((size_t) p.width * p.height, 1);
    if (!state->columns) {
        free(state);
        snprintf(err, errlen, "mandelbrot: not enough memory for a %ux%u image", p.width, p.height);
        return JOB_ERROR;
    }
    plan->params = malloc(PARAMS_LEN);
    plan->params_len = PARAMS_LEN;
    s_encode(&p, plan->params);
    plan->units = s_units(&p);
    plan->output = output;
    plan->default_output = "mandelbrot.png";
    plan->state = state;
    return JOB_OK;
}

static int s_accept(void *self, uint64_t unit, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    state_t *state = self;
    const mandel_params_t *p = &state->p;
    if (unit >= s_units(p))
        return -1;
    uint32_t first = (uint32_t) unit * p->columns_per_unit;
    uint32_t ncols = p->width - first < p->columns_per_unit ? p->width - first : p->columns_per_unit;
    if (len != (size_t) ncols * p->height)
        return -1;
    memcpy(state->columns + (size_t) first * p->height, data, len);
    return 0;
}

/* Column-major to row-major in 64 x 64 tiles, which stay in cache. */
static void s_transpose(const uint8_t *columns, uint32_t width, uint32_t height, uint8_t *rows)
{
    enum { TILE = 64 };
    for (uint32_t i0 = 0; i0 < width; i0 += TILE)
        for (uint32_t j0 = 0; j0 < height; j0 += TILE)
            for (uint32_t i = i0; i < i0 + TILE && i < width; i++)
                for (uint32_t j = j0; j < j0 + TILE && j < height; j++)
                    rows[(size_t) j * width + i] = columns[(size_t) i * height + j];
}

static int s_finish(void *self, const char *output, FILE *out, char *err, size_t errlen)
{
    state_t *state = self;
    uint8_t *rows = malloc((size_t) state->p.width * state->p.height);
    if (!rows) {
        snprintf(err, errlen, "mandelbrot: not enough memory to write the image");
        return -1;
    }
    s_transpose(state->columns, state->p.width, state->p.height, rows);
    int rc = image_write_png(output, rows, state->p.width, state->p.height, 1, err, errlen);
    free(rows);
    if (rc < 0)
        return -1;
    fprintf(out, "mandelbrot: wrote %s (%ux%u, max-iter %u)\n", output, state->p.width,
            state->p.height, state->p.max_iter);
    return 0;
}

static void s_destroy(void *self)
{
    state_t *state = self;
    if (state)
        free(state->columns);
    free(state);
}

/* ------------------------------------------------------------ worker side */

static void *s_load(const uint8_t *params, size_t len)
{
    mandel_params_t p;
    if (s_decode(params, len, &p) < 0)
        return NULL;
    mandel_params_t *ctx = malloc(sizeof *ctx);
    *ctx = p;
    return ctx;
}

static void s_unload(void *ctx) { free(ctx); }

/* ctx is only read: every compute thread shares it. */
static int s_compute(const void *ctx, uint64_t unit, const atomic_bool *cancel, uint8_t **out, size_t *out_len)
{
    const mandel_params_t *p = ctx;
    if (unit >= s_units(p))
        return JOB_RANGE;
    uint32_t first = (uint32_t) unit * p->columns_per_unit;
    uint32_t ncols = p->width - first < p->columns_per_unit ? p->width - first : p->columns_per_unit;
    size_t len = (size_t) ncols * p->height;
    uint8_t *buf = malloc(len);
    counts_fn *counts = s_kernels[mandel_kernel()];
    for (uint32_t c = 0; c < ncols; c++)
        if (s_column(p, first + c, buf + (size_t) c * p->height, counts, cancel) == JOB_CANCELLED) {
            free(buf);
            *out = NULL;
            *out_len = 0;
            return JOB_CANCELLED;
        }
    *out = buf;
    *out_len = len;
    return 0;
}

const job_kind_t mandelbrot_job = {
    .name = "mandelbrot",
    .summary = "columns of the Mandelbrot set, assembled into a grayscale PNG",
    .plan = s_plan,
    .load = s_load,
    .unload = s_unload,
    .compute = s_compute,
    .accept = s_accept,
    .finish = s_finish,
    .destroy = s_destroy,
};
