/* The mandelbrot job: SPEC 3.1 arithmetic, the SIMD path, parameters and units. */
#include <criterion/criterion.h>

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

/* Every kernel this CPU has, and the dispatching entry point, against the reference. */
static void s_compare_with_reference(mandel_params_t p)
{
    uint8_t *ref = t_mandelbrot_ref(p.width, p.height, p.xmin, p.xmax, p.ymin, p.ymax, p.max_iter);
    uint8_t *column = malloc(p.height);
    for (int kernel = -1; kernel < MANDEL_KERNELS; kernel++) {
        if (kernel >= 0 && !mandel_kernel_available((mandel_kernel_t) kernel))
            continue;
        for (uint32_t i = 0; i < p.width; i++) {
            if (kernel < 0)
                mandel_column(&p, i, column);
            else
                mandel_column_with((mandel_kernel_t) kernel, true, &p, i, column);
            for (uint32_t j = 0; j < p.height; j++)
                cr_assert_eq(column[j], ref[(size_t) j * p.width + i], "%s pixel (%u, %u)",
                             kernel < 0 ? "dispatched" : mandel_kernel_name((mandel_kernel_t) kernel), i, j);
        }
    }
    free(ref);
    free(column);
}

Test(mandelbrot, whole_images_equal_an_independent_computation)
{
    s_compare_with_reference((mandel_params_t) {120, 97, -2, 0.5, -1, 1, 255, 1});
    /* A deep view with M = 1000: the gray formula 255 - k*255/M. */
    s_compare_with_reference((mandel_params_t) {64, 61, -0.7453, -0.7449, 0.1126, 0.1130, 1000, 1});
    /* A view where many points escape late and rows are not a multiple of 4. */
    s_compare_with_reference((mandel_params_t) {33, 7, -1.8, -1.7, -0.05, 0.05, 5000, 1});
}

static void *s_load(const job_kind_t *kind, int argc, char **argv, job_plan_t *plan)
{
    char err[256];
    cr_assert_eq(kind->plan(argc, argv, plan, stdout, err, sizeof err), JOB_OK, "%s", err);
    void *ctx = kind->load(plan->params, plan->params_len);
    cr_assert_not_null(ctx);
    return ctx;
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
    char dir_template[] = "/tmp/hyades-test-XXXXXX";
    char *dir = mkdtemp(dir_template);
    char *path = t_path(dir, "m.png");
    char err[256];
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert_eq(kind->finish(plan.state, path, devnull, err, sizeof err), 0, "%s", err);
    fclose(devnull);
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(path, &w, &h);
    cr_assert_not_null(png);
    cr_assert_eq(w, 50);
    cr_assert_eq(h, 30);
    uint8_t *ref = t_mandelbrot_ref(50, 30, -2, 0.5, -1, 1, 255);
    cr_assert(memcmp(png, ref, 50 * 30) == 0);
    free(ref);
    free(png);
    t_rmdir(dir);
    free(path);
    kind->unload(ctx);
    job_plan_clear(kind, &plan);
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
