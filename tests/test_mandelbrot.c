/* The mandelbrot job: SPEC 3.1 arithmetic in every kernel, with and without the cycle test, cancel, parameters and units. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "jobs/job.h"
#include "jobs/mandelbrot.h"
#include "tests/helpers.h"

static const mandel_params_t s_default = {500, 400, -2, 0.5, -1, 1, 255, 1};

Test(mandelbrot, known_pixels_of_the_default_canvas)
{
    uint8_t column[400];
    /* Column 350 is x = -0.25, row 200 is y = 0: the centre of the main cardioid. */
    mandel_column(&s_default, 350, column);
    cr_assert_eq(column[200], 0);
    /* The top-left corner, c = -2 + i: |c|^2 = 5 escapes after one step: 255 - 1. */
    mandel_column(&s_default, 0, column);
    cr_assert_eq(column[0], 254);
    /* c = -2 (row 200 of column 0) is in the set: the tip of the needle. */
    cr_assert_eq(column[200], 0);
}

/* ------------------------------------------------------------ kernels against the SPEC */

/* The SPEC 3.1 loop, written out plainly: the escape count of pixel (i, j). */
static uint32_t s_spec_count(const mandel_params_t *p, uint32_t i, uint32_t j)
{
    double dx = (p->xmax - p->xmin) / p->width, dy = (p->ymax - p->ymin) / p->height;
    double cr = p->xmin + i * dx, ci = p->ymax - j * dy;
    double zr = 0, zi = 0;
    uint32_t k = 0;
    while (k < p->max_iter) {
        double zr2 = zr * zr, zi2 = zi * zi;
        if (zr2 + zi2 > 4.0)
            break;
        zi = (2.0 * zr) * zi + ci;
        zr = (zr2 - zi2) + cr;
        k++;
    }
    return k;
}

/* Index of the first difference of a and b (n elements), or -1. */
static long s_first_difference(const void *a, const void *b, size_t n, size_t size)
{
    for (size_t x = 0; x < n; x++)
        if (memcmp((const char *) a + x * size, (const char *) b + x * size, size) != 0)
            return (long) x;
    return -1;
}

/* Column i of p by kernel (-1: the dispatching entry points) with or
   without the cycle test: its counts against want, then its gray bytes
   against gray (row-major, the width of p), then rows 1 .. height-1 alone. */
static void s_check_column(int kernel, bool cycles, const mandel_params_t *p, uint32_t i, const uint32_t *want,
                           const uint8_t *gray)
{
    const char *name = kernel < 0 ? "dispatched" : mandel_kernel_name((mandel_kernel_t) kernel);
    uint32_t *k = malloc(p->height * sizeof *k);
    uint8_t *col = malloc(p->height), *want_gray = malloc(p->height);
    int rc = kernel < 0 ? mandel_counts(p, i, 0, p->height, k, NULL)
                        : mandel_counts_with((mandel_kernel_t) kernel, cycles, p, i, 0, p->height, k, NULL);
    cr_assert_eq(rc, 0);
    long j = s_first_difference(k, want, p->height, sizeof *k);
    cr_assert_eq(j, -1, "%s%s, %ux%u M %u, x %g..%g, y %g..%g: pixel (%u, %ld) counts %u, not %u", name,
                 cycles ? " with cycle test" : "", p->width, p->height, p->max_iter, p->xmin, p->xmax, p->ymin,
                 p->ymax, i, j, k[j < 0 ? 0 : j], want[j < 0 ? 0 : j]);
    if (kernel < 0)
        mandel_column(p, i, col);
    else
        mandel_column_with((mandel_kernel_t) kernel, cycles, p, i, col);
    for (uint32_t r = 0; r < p->height; r++)
        want_gray[r] = gray[(size_t) r * p->width + i];
    j = s_first_difference(col, want_gray, p->height, 1);
    cr_assert_eq(j, -1, "%s%s, %ux%u M %u: pixel (%u, %ld) gray %u, not %u", name, cycles ? " with cycle test" : "",
                 p->width, p->height, p->max_iter, i, j, col[j < 0 ? 0 : j], want_gray[j < 0 ? 0 : j]);
    if (p->height > 1) {
        rc = kernel < 0 ? mandel_counts(p, i, 1, p->height, k, NULL)
                        : mandel_counts_with((mandel_kernel_t) kernel, cycles, p, i, 1, p->height, k, NULL);
        cr_assert_eq(rc, 0);
        cr_assert_eq(s_first_difference(k, want + 1, p->height - 1, sizeof *k), -1, "%s: rows from 1", name);
    }
    free(k);
    free(col);
    free(want_gray);
}

/* Every kernel this CPU has, with and without the cycle test, and the
   dispatching entry points: counts against the SPEC loop above, gray bytes
   against the helpers' independent reference. */
static void s_compare_with_reference(mandel_params_t p)
{
    uint8_t *gray = t_mandelbrot_ref(p.width, p.height, p.xmin, p.xmax, p.ymin, p.ymax, p.max_iter);
    uint32_t *want = malloc((size_t) p.width * p.height * sizeof *want);   /* column-major */
    for (uint32_t i = 0; i < p.width; i++)
        for (uint32_t j = 0; j < p.height; j++)
            want[(size_t) i * p.height + j] = s_spec_count(&p, i, j);
    for (int kernel = -1; kernel < MANDEL_KERNELS; kernel++) {
        if (kernel >= 0 && !mandel_kernel_available((mandel_kernel_t) kernel))
            continue;
        for (int cycles = 0; cycles < 2; cycles++)
            for (uint32_t i = 0; i < p.width; i++)
                s_check_column(kernel, cycles, &p, i, want + (size_t) i * p.height, gray);
    }
    free(gray);
    free(want);
}

Test(mandelbrot, whole_images_equal_an_independent_computation)
{
    s_compare_with_reference((mandel_params_t) {120, 97, -2, 0.5, -1, 1, 255, 1});
    /* A deep view with M = 1000: the gray formula 255 - k*255/M. */
    s_compare_with_reference((mandel_params_t) {64, 61, -0.7453, -0.7449, 0.1126, 0.1130, 1000, 1});
    /* A view where many points escape late and rows are not a multiple of 4. */
    s_compare_with_reference((mandel_params_t) {33, 7, -1.8, -1.7, -0.05, 0.05, 5000, 1});
}

Test(mandelbrot, the_default_view_is_exact_at_max_iter_255_and_1000)
{
    s_compare_with_reference((mandel_params_t) {500, 400, -2, 0.5, -1, 1, 255, 1});
    s_compare_with_reference((mandel_params_t) {500, 400, -2, 0.5, -1, 1, 1000, 1});
}

Test(mandelbrot, deep_views_and_views_near_the_boundary_are_exact)
{
    s_compare_with_reference((mandel_params_t) {80, 64, -0.75, -0.74, 0.1, 0.108, 5000, 1});
    /* The cusp of the main cardioid: orbits inside creep to their fixed point. */
    s_compare_with_reference((mandel_params_t) {40, 33, 0.24, 0.26, -0.01, 0.01, 20000, 1});
    /* The neck between the cardioid and the period-2 bulb. */
    s_compare_with_reference((mandel_params_t) {40, 33, -0.76, -0.74, -0.01, 0.01, 20000, 1});
    /* Inside the set (cardioid and period-2 bulb), where the cycle test ends most orbits. */
    s_compare_with_reference((mandel_params_t) {70, 41, -1.2, -0.1, -0.3, 0.3, 5000, 1});
}

Test(mandelbrot, tiny_max_iter_is_exact)
{
    for (uint32_t m = 1; m <= 3; m++)
        s_compare_with_reference((mandel_params_t) {120, 97, -2, 0.5, -1, 1, m, 1});
}

Test(mandelbrot, heights_that_are_no_multiple_of_the_lanes_are_exact)
{
    static const uint32_t heights[] = {1, 2, 3, 5, 7, 9, 17, 31, 33};
    for (size_t h = 0; h < sizeof heights / sizeof heights[0]; h++) {
        s_compare_with_reference((mandel_params_t) {13, heights[h], -2, 0.5, -1, 1, 300, 1});
        s_compare_with_reference((mandel_params_t) {13, heights[h], -0.75, -0.74, 0.1, 0.108, 2000, 1});
    }
}

/* |c| <= 1/4 keeps |z| <= 1/2 (|z^2 + c| <= 1/4 + 1/4): such points never escape. */
static const mandel_params_t s_disc = {7, 64, -0.16, 0.16, -0.12, 0.12, 300, 1};

Test(mandelbrot, columns_whose_rows_all_escape_or_all_stay_together)
{
    /* |c|^2 >= 18: every row escapes at its first test after one step. */
    mandel_params_t out = {5, 64, 3, 4, 3, 4, 100, 1};
    uint32_t k[64];
    for (int kernel = 0; kernel < MANDEL_KERNELS; kernel++)
        for (int cycles = 0; kernel < MANDEL_KERNELS && mandel_kernel_available(kernel) && cycles < 2; cycles++) {
            mandel_counts_with((mandel_kernel_t) kernel, cycles, &out, 2, 0, 64, k, NULL);
            for (int j = 0; j < 64; j++)
                cr_assert_eq(k[j], 1, "%s row %d", mandel_kernel_name((mandel_kernel_t) kernel), j);
            mandel_counts_with((mandel_kernel_t) kernel, cycles, &s_disc, 3, 0, 64, k, NULL);
            for (int j = 0; j < 64; j++)
                cr_assert_eq(k[j], 300, "%s row %d", mandel_kernel_name((mandel_kernel_t) kernel), j);
        }
    s_compare_with_reference(out);
    s_compare_with_reference(s_disc);
}

Test(mandelbrot, huge_max_iter_inside_the_set_ends_through_the_cycle_test, .timeout = 30)
{
    mandel_params_t p = {40, 30, -0.16, 0.16, -0.12, 0.12, 1000000, 1};
    uint32_t k[30];
    for (int kernel = 0; kernel < MANDEL_KERNELS; kernel++) {
        if (!mandel_kernel_available((mandel_kernel_t) kernel))
            continue;
        for (uint32_t i = 0; i < p.width; i++) {
            cr_assert_eq(mandel_counts_with((mandel_kernel_t) kernel, true, &p, i, 0, p.height, k, NULL), 0);
            for (uint32_t j = 0; j < p.height; j++)
                cr_assert_eq(k[j], p.max_iter, "%s pixel (%u, %u)", mandel_kernel_name((mandel_kernel_t) kernel), i, j);
        }
    }
}

/* ------------------------------------------------------------ cancel */

typedef struct {
    mandel_kernel_t kernel;
    const mandel_params_t *p;
    atomic_bool cancel;
    int rc;
    double returned_at;
} counts_call_t;

static double s_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *s_counts_thread(void *arg)
{
    counts_call_t *call = arg;
    uint32_t *k = malloc(call->p->height * sizeof *k);
    call->rc = mandel_counts_with(call->kernel, false, call->p, 0, 0, call->p->height, k, &call->cancel);
    call->returned_at = s_seconds();
    free(k);
    return NULL;
}

Test(mandelbrot, every_kernel_stops_mid_column_when_cancelled, .timeout = 30)
{
    /* Without the cycle test, 64 rows of 10^9 steps each: minutes. */
    mandel_params_t p = s_disc;
    p.max_iter = 1000000000;
    for (int kernel = 0; kernel < MANDEL_KERNELS; kernel++) {
        if (!mandel_kernel_available((mandel_kernel_t) kernel))
            continue;
        counts_call_t call = {.kernel = (mandel_kernel_t) kernel, .p = &p};
        atomic_init(&call.cancel, false);
        pthread_t tid;
        cr_assert_eq(pthread_create(&tid, NULL, s_counts_thread, &call), 0);
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
        double set_at = s_seconds();
        atomic_store(&call.cancel, true);
        pthread_join(tid, NULL);
        cr_assert_eq(call.rc, JOB_CANCELLED, "%s", mandel_kernel_name((mandel_kernel_t) kernel));
        cr_assert_lt(call.returned_at - set_at, 1.0, "%s: %.3f s after the cancel",
                     mandel_kernel_name((mandel_kernel_t) kernel), call.returned_at - set_at);
    }
}

typedef struct {
    const job_kind_t *kind;
    const void *ctx;
    atomic_bool cancel;
    int rc;
    uint8_t *out;
    double returned_at;
} compute_call_t;

static void *s_compute_thread(void *arg)
{
    compute_call_t *call = arg;
    size_t len = 0;
    call->rc = call->kind->compute(call->ctx, 0, &call->cancel, &call->out, &len);
    call->returned_at = s_seconds();
    return NULL;
}

static void *s_load(const job_kind_t *kind, int argc, char **argv, job_plan_t *plan)
{
    char err[256];
    cr_assert_eq(kind->plan(argc, argv, plan, stdout, err, sizeof err), JOB_OK, "%s", err);
    void *ctx = kind->load(plan->params, plan->params_len);
    cr_assert_not_null(ctx);
    return ctx;
}

/* Writes the job's output (finish) and checks it is the w x h reference
   image of the default view at 255 iterations; then frees the job. */
static void s_finish_matches_reference(const job_kind_t *kind, job_plan_t *plan, void *ctx, uint32_t w, uint32_t h)
{
    char dir_template[] = "/tmp/hyades-test-XXXXXX";
    char *dir = mkdtemp(dir_template);
    char *path = t_path(dir, "m.png");
    char err[256];
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert_eq(kind->finish(plan->state, path, devnull, err, sizeof err), 0, "%s", err);
    fclose(devnull);
    uint32_t pw, ph;
    uint8_t *png = t_read_png_gray(path, &pw, &ph);
    cr_assert_not_null(png);
    cr_assert_eq(pw, w);
    cr_assert_eq(ph, h);
    uint8_t *ref = t_mandelbrot_ref(w, h, -2, 0.5, -1, 1, 255);
    cr_assert(memcmp(png, ref, (size_t) w * h) == 0, "the image differs from the reference");
    free(ref);
    free(png);
    t_rmdir(dir);
    free(path);
    kind->unload(ctx);
    job_plan_clear(kind, plan);
}

/* Rows are built a tile of columns at a time as tiles complete, each
   tile's columns waiting in a buffer of their own until then: units that
   straddle tiles, arriving in any order (so that most of the 24 tiles are
   in progress at once), and a last partial tile still give the reference
   image; halfway, the preview shows exactly the columns accepted so far. */
Test(mandelbrot, units_in_any_order_across_tiles_assemble_the_image)
{
    const job_kind_t *kind = job_find("mandelbrot", 10);
    char *argv[] = {"mandelbrot", "--width", "1500", "--height", "70", "--columns-per-unit", "7", NULL};
    job_plan_t plan = {0};
    void *ctx = s_load(kind, 7, argv, &plan);
    enum { UNITS = 215 };   /* ceil(1500 / 7) */
    cr_assert_eq(plan.units, UNITS);
    uint64_t order[UNITS];
    for (uint64_t u = 0; u < UNITS; u++)
        order[u] = u;
    uint64_t x = 12345;
    for (size_t i = UNITS - 1; i > 0; i--) {   /* a fixed shuffle */
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t) (x >> 33) % (i + 1);
        uint64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint8_t *ref = t_mandelbrot_ref(1500, 70, -2, 0.5, -1, 1, 255);
    bool accepted[UNITS] = {false};
    for (size_t i = 0; i < UNITS; i++) {
        uint8_t *out;
        size_t len;
        cr_assert_eq(kind->compute(ctx, order[i], NULL, &out, &len), 0);
        cr_assert_eq(kind->accept(plan.state, order[i], out, len, NULL, 0), 0);
        accepted[order[i]] = true;
        free(out);
        if (i != UNITS / 2)
            continue;
        job_picture_t pic;
        cr_assert_eq(kind->preview(plan.state, 1500, &pic), 0);
        cr_assert_eq(pic.width, 1500);
        cr_assert_eq(pic.height, 70);
        for (uint32_t col = 0; col < 1500; col++)
            for (uint32_t row = 0; row < 70; row++) {
                const uint8_t *px = pic.rgb + ((size_t) row * 1500 + col) * 3;
                if (accepted[col / 7])
                    cr_assert(px[0] == ref[(size_t) row * 1500 + col] && px[1] == px[0] && px[2] == px[0],
                              "preview pixel (%u, %u) is not the image's", col, row);
                else
                    cr_assert(px[2] > px[0] + 30, "preview pixel (%u, %u) of a missing column is not blue", col, row);
            }
        free(pic.rgb);
    }
    free(ref);
    s_finish_matches_reference(kind, &plan, ctx, 1500, 70);
}

/* Columns become rows 16 x 16 bytes at a time, the edges a byte at a time:
   sizes below, at and just past multiples of 16 and of a tile (64), in
   rows and in columns, each against the independent computation. */
Test(mandelbrot, images_of_every_shape_around_the_block_sizes_assemble_exactly)
{
    const job_kind_t *kind = job_find("mandelbrot", 10);
    static const uint32_t sizes[][2] = {{1, 1}, {15, 16}, {16, 15}, {16, 16}, {17, 33}, {64, 48},
                                        {65, 17}, {128, 64}, {129, 31}, {200, 1}, {1, 200}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char w[16], h[16];
        snprintf(w, sizeof w, "%u", sizes[k][0]);
        snprintf(h, sizeof h, "%u", sizes[k][1]);
        char *argv[] = {"mandelbrot", "--width", w, "--height", h, NULL};
        job_plan_t plan = {0};
        void *ctx = s_load(kind, 5, argv, &plan);
        for (uint64_t u = plan.units; u-- > 0;) {   /* last first: tiles complete out of order */
            uint8_t *out;
            size_t len;
            cr_assert_eq(kind->compute(ctx, u, NULL, &out, &len), 0);
            cr_assert_eq(kind->accept(plan.state, u, out, len, NULL, 0), 0);
            free(out);
        }
        s_finish_matches_reference(kind, &plan, ctx, sizes[k][0], sizes[k][1]);
    }
}

Test(mandelbrot, units_cover_columns_and_assemble_the_image)
{
    const job_kind_t *kind = job_find("mandelbrot", 10);
    cr_assert_not_null(kind);
    char *argv[] = {"mandelbrot", "--width", "50", "--height", "30", "--columns-per-unit", "7", NULL};
    job_plan_t plan = {0};
    void *ctx = s_load(kind, 7, argv, &plan);
    cr_assert_eq(plan.units, 8);   /* ceil(50 / 7) */
    for (uint64_t u = 0; u < plan.units; u++) {
        uint8_t *out;
        size_t len;
        cr_assert_eq(kind->compute(ctx, u, NULL, &out, &len), 0);
        cr_assert_eq(len, (u == 7 ? 1 : 7) * 30u);
        cr_assert_eq(kind->accept(plan.state, u, out, len, NULL, 0), 0);
        cr_assert_eq(kind->accept(plan.state, u, out, len - 1, NULL, 0), -1, "a short payload must be refused");
        free(out);
    }
    uint8_t *out;
    size_t len;
    cr_assert_eq(kind->compute(ctx, plan.units, NULL, &out, &len), JOB_RANGE, "a unit past the end must fail");
    s_finish_matches_reference(kind, &plan, ctx, 50, 30);
}

Test(mandelbrot, bad_parameters_are_refused)
{
    const job_kind_t *kind = job_find("mandelbrot", 10);
    char *cases[][4] = {
        {"--width", "0"}, {"--height", "-3"}, {"--xmin", "1", "--xmax", "0"}, {"--xmin", "0.5"},
        {"--ymin", "2"}, {"--max-iter", "0"}, {"--width", "abc"}, {"--xmin", "nan"}, {"--xmax", "inf"},
        {"--columns-per-unit", "501"}, {"--bogus", "1"}, {"--width"}, {"--width", "100000", "--height", "100000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[6] = {"mandelbrot"};
        int argc = 1;
        for (int k = 0; k < 4 && cases[i][k]; k++)
            argv[argc++] = cases[i][k];
        job_plan_t plan = {0};
        char err[256] = "";
        cr_assert_eq(kind->plan(argc, argv, &plan, stdout, err, sizeof err), JOB_ERROR, "case %zu", i);
        cr_assert(strlen(err) > 0 && !strchr(err, '\n'), "case %zu: one-line error expected", i);
        job_plan_clear(kind, &plan);
    }
}

Test(mandelbrot, worker_refuses_damaged_parameters)
{
    const job_kind_t *kind = job_find("mandelbrot", 10);
    char *argv[] = {"mandelbrot", NULL};
    job_plan_t plan = {0};
    void *ctx = s_load(kind, 1, argv, &plan);
    kind->unload(ctx);
    cr_assert_null(kind->load(plan.params, plan.params_len - 1));
    uint8_t *bad = malloc(plan.params_len);
    memcpy(bad, plan.params, plan.params_len);
    bad[0] = 0xff;   /* width 4 billion */
    cr_assert_null(kind->load(bad, plan.params_len));
    memcpy(bad, plan.params, plan.params_len);
    memset(bad + 8, 0xff, 8);   /* xmin = NaN */
    cr_assert_null(kind->load(bad, plan.params_len));
    free(bad);
    job_plan_clear(kind, &plan);
}

Test(mandelbrot, a_unit_stops_mid_column_when_cancelled_despite_the_cycle_test, .timeout = 30)
{
    /* Next to the cusp c = 1/4, orbits creep towards 1/2 for some 10^8 steps
       before they repeat: seconds per column even with the cycle test. */
    const job_kind_t *kind = job_find("mandelbrot", 10);
    char *argv[] = {"mandelbrot", "--width", "1", "--height", "64", "--max-iter", "1000000000", "--xmin", "0.25",
                    "--xmax", "0.2500001", "--ymin", "-1e-12", "--ymax", "1e-12", NULL};
    job_plan_t plan = {0};
    compute_call_t call = {.kind = kind, .ctx = s_load(kind, 15, argv, &plan)};
    atomic_init(&call.cancel, false);
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, s_compute_thread, &call), 0);
    struct timespec pause = {0, 100 * 1000000L};
    nanosleep(&pause, NULL);
    double set_at = s_seconds();
    atomic_store(&call.cancel, true);
    pthread_join(tid, NULL);
    cr_assert_eq(call.rc, JOB_CANCELLED, "the unit finished before the cancel");
    cr_assert_null(call.out);
    cr_assert_lt(call.returned_at - set_at, 1.0, "%.3f s after the cancel", call.returned_at - set_at);
    kind->unload((void *) call.ctx);
    job_plan_clear(kind, &plan);
}
