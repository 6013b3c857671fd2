/* The pi, primes and frames jobs, run in process through the job seam, with
   results accepted in a scrambled order, against independent computations. */
#include <criterion/criterion.h>
#include <gif_lib.h>
#include <inttypes.h>
#include <pthread.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "jobs/job.h"
#include "jobs/primes.h"
#include "tests/helpers.h"
#include "tests/reference.h"

TestSuite(jobs, .init = t_setup, .fini = t_teardown, .timeout = 60);

/* Plans argv, computes every unit, accepts them in a scrambled order (odd
   units first, then even ones backwards) and finishes into output.
   Returns plan/finish status: JOB_OK, JOB_ERROR. */
static int s_run(char **argv, const char *output, char *printed, size_t printed_len)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    const job_kind_t *kind = job_find(argv[0], strlen(argv[0]));
    cr_assert_not_null(kind);
    job_plan_t plan = {0};
    char err[512];
    if (kind->plan(argc, argv, &plan, stdout, err, sizeof err) != JOB_OK)
        return JOB_ERROR;
    void *ctx = kind->load(plan.params, plan.params_len);
    cr_assert_not_null(ctx, "the worker refused the manager's parameters");
    const char *path = plan.output ? plan.output : output ? output : plan.default_output;
    if (kind->begin)
        cr_assert_eq(kind->begin(plan.state, path, err, sizeof err), 0, "%s", err);
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t i = 0; i < plan.units; i++) {
            uint64_t u = pass == 0 ? i : plan.units - 1 - i;
            if (u % 2 != (pass == 0 ? 1u : 0u))
                continue;
            uint8_t *out;
            size_t len;
            cr_assert_eq(kind->compute(ctx, u, NULL, &out, &len), 0, "unit %lu", (unsigned long) u);
            cr_assert_eq(kind->accept(plan.state, u, out, len, NULL, 0), 0, "unit %lu refused", (unsigned long) u);
            free(out);
        }
    }
    char *log = t_path(t_dir, "printed.txt");
    FILE *f = fopen(log, "w+");
    int rc = kind->finish(plan.state, path, f, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    rewind(f);
    size_t n = fread(printed, 1, printed_len - 1, f);
    printed[n] = '\0';
    fclose(f);
    free(log);
    kind->unload(ctx);
    job_plan_clear(kind, &plan);
    return rc;
}

/* ------------------------------------------------------------ pi */

Test(jobs, pi_hits_equal_an_independent_computation)
{
    struct { const char *samples, *units, *seed; } cases[] = {
        {"1", "1", "1"}, {"1000", "7", "1"}, {"100003", "10", "42"}, {"250000", "100", "18446744073709551615"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *json = t_path(t_dir, "pi.json"), printed[512];
        char *argv[] = {"pi", "--samples", (char *) cases[i].samples, "--units", (char *) cases[i].units,
                        "--seed", (char *) cases[i].seed, "-o", json, NULL};
        cr_assert_eq(s_run(argv, NULL, printed, sizeof printed), JOB_OK);
        uint64_t want = ref_pi_hits(strtoull(cases[i].samples, NULL, 10), strtoull(cases[i].units, NULL, 10),
                                    strtoull(cases[i].seed, NULL, 10));
        cr_assert_eq((uint64_t) t_json_number(json, "hits"), want, "case %zu", i);
        cr_assert_eq((uint64_t) t_json_number(json, "samples"), strtoull(cases[i].samples, NULL, 10));
        cr_assert(t_file_contains(json, "\"estimate\":") && t_file_contains(json, "\"error\":"));
        char expect[64];
        snprintf(expect, sizeof expect, "%llu hits", (unsigned long long) want);
        cr_assert(strstr(printed, expect), "printed: %s", printed);
        free(json);
    }
}

Test(jobs, pi_accepts_a_trillion_samples_and_refuses_bad_options)
{
    const job_kind_t *kind = job_find("pi", 2);
    job_plan_t plan = {0};
    char err[256];
    char *big[] = {"pi", "--samples", "1000000000000", "--units", "1000", NULL};
    cr_assert_eq(kind->plan(5, big, &plan, stdout, err, sizeof err), JOB_OK, "%s", err);
    cr_assert_eq(plan.units, 1000);
    /* A unit of 10^9 samples may report up to 10^9 hits, not more. */
    uint8_t hits[8] = {0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0x00};   /* 10^9 */
    cr_assert_eq(kind->accept(plan.state, 0, hits, 8, NULL, 0), 0);
    hits[7] = 0x01;
    cr_assert_eq(kind->accept(plan.state, 1, hits, 8, err, sizeof err), JOB_MALFORMED);
    cr_assert_str_eq(err, "1000000001 hits from 1000000000 samples", "the refusal does not say why");
    cr_assert_eq(kind->accept(plan.state, 2, hits, 7, err, sizeof err), JOB_MALFORMED);
    cr_assert_str_eq(err, "7 bytes, not 8");
    job_plan_clear(kind, &plan);
    char *bad[][3] = {{"--units", "0"}, {"--samples", "0"}, {"--samples", "5", "--units"}, {"--seed", "-1"}, {"--units", "x"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[6] = {"pi"};
        int argc = 1;
        for (int k = 0; k < 3 && bad[i][k]; k++)
            argv[argc++] = bad[i][k];
        cr_assert_eq(kind->plan(argc, argv, &plan, stdout, err, sizeof err), JOB_ERROR, "case %zu", i);
        job_plan_clear(kind, &plan);
    }
    char *more_units[] = {"pi", "--samples", "5", "--units", "6", NULL};
    cr_assert_eq(kind->plan(5, more_units, &plan, stdout, err, sizeof err), JOB_ERROR);
}

/* ------------------------------------------------------------ primes */

static void s_check_primes(const char *from, const char *to, const char *method, const char *range)
{
    char *out = t_path(t_dir, "primes.txt"), printed[512];
    char *argv[16] = {"primes", "--from", (char *) from, "--to", (char *) to, "--method", (char *) method, "-o", out};
    int argc = 9;
    if (range) {
        argv[argc++] = "--range-size";
        argv[argc++] = (char *) range;
    }
    argv[argc] = NULL;
    cr_assert_eq(s_run(argv, NULL, printed, sizeof printed), JOB_OK);
    size_t want_len, got_len;
    uint64_t count;
    char *want = ref_primes_text(strtoull(from, NULL, 10), strtoull(to, NULL, 10), &want_len, &count);
    char *got = t_read_file(out, &got_len);
    cr_assert_not_null(got);
    cr_assert(got_len == want_len && memcmp(got, want, got_len) == 0,
              "%s %s..%s (range %s): %zu bytes, want %zu", method, from, to, range ? range : "default", got_len, want_len);
    cr_assert(got_len == 0 || got[got_len - 1] != '\n', "a newline after the last prime");
    char expect[64];
    snprintf(expect, sizeof expect, "primes: %llu primes", (unsigned long long) count);
    cr_assert(strstr(printed, expect), "printed: %s", printed);

    /* --count-only prints the same count and writes nothing (-o has no
       place beside it: refused). */
    unlink(out);
    argv[argc++] = "--count-only";
    argv[argc] = NULL;
    cr_assert_eq(s_run(argv, NULL, printed, sizeof printed), JOB_ERROR);
    memmove(argv + 7, argv + 9, (size_t) (argc - 9 + 1) * sizeof *argv);   /* without "-o FILE" */
    cr_assert_eq(s_run(argv, NULL, printed, sizeof printed), JOB_OK);
    cr_assert(strstr(printed, expect), "count-only printed: %s", printed);
    cr_assert_eq(access(out, F_OK), -1, "--count-only wrote a list");
    free(want);
    free(got);
    free(out);
}

Test(jobs, primes_equal_an_independent_reference_for_both_methods)
{
    const char *methods[] = {"trial", "sieve"};
    for (int m = 0; m < 2; m++) {
        s_check_primes("0", "1", methods[m], NULL);        /* empty: an empty file */
        s_check_primes("1", "2", methods[m], NULL);
        s_check_primes("2", "2", methods[m], NULL);
        s_check_primes("0", "1000", methods[m], "77");     /* 77 does not divide 1001 */
        s_check_primes("24", "28", methods[m], "1");       /* no primes, five units */
        s_check_primes("999990", "1000100", methods[m], "13");
        s_check_primes("1000000000000", "1000000100000", methods[m], NULL);
    }
    /* Near 2^64 (each sieve unit there first sieves the primes below 2^32,
       about a second): the sieve lists the three largest 64-bit primes; trial
       division ends at 2^64 - 1 without wrapping around. */
    s_check_primes("18446744073709551516", "18446744073709551615", "sieve", "60");
    s_check_primes("18446744073709551614", "18446744073709551615", "trial", NULL);
}

/* Every trial-division kernel this CPU has gives the reference's count:
   small numbers, the table's last divisors (roots from 3 to 2^20), its
   vector tails, and numbers whose roots run past the table into plain
   division. */
Test(jobs, every_trial_division_kernel_counts_as_the_reference)
{
    static const uint64_t ranges[][2] = {{0, 50},           {0, 100000},          {999990, 1000100},
                                         {4294967000, 4294968000}, {1099509530000, 1099509570000},
                                         {1000000000000, 1000000020000}, {10000000000000, 10000000002000}};
    int tested = 0;
    for (int k = 0; k < PRIMES_KERNELS; k++) {
        if (!primes_kernel_available((primes_kernel_t) k))
            continue;
        tested++;
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            size_t len;
            uint64_t want, got;
            free(ref_primes_text(ranges[r][0], ranges[r][1], &len, &want));
            cr_assert_eq(primes_trial_count_with((primes_kernel_t) k, ranges[r][0], ranges[r][1], &got), 0);
            cr_assert_eq(got, want, "%s kernel: %" PRIu64 " primes in %" PRIu64 "..%" PRIu64 ", want %" PRIu64,
                         primes_kernel_name((primes_kernel_t) k), got, ranges[r][0], ranges[r][1], want);
        }
    }
    cr_assert_geq(tested, 1);
}

Test(jobs, the_first_million_numbers_hold_78498_primes)
{
    const char *methods[] = {"trial", "sieve"};
    for (int m = 0; m < 2; m++) {
        char printed[512];
        char *argv[] = {"primes", "--to", "1000000", "--method", (char *) methods[m], "--count-only", NULL};
        cr_assert_eq(s_run(argv, NULL, printed, sizeof printed), JOB_OK);
        cr_assert(strstr(printed, "78498 primes"), "%s: %s", methods[m], printed);
    }
}

Test(jobs, primes_refuse_bad_ranges_and_payloads)
{
    const job_kind_t *kind = job_find("primes", 6);
    job_plan_t plan = {0};
    char err[256];
    char *bad[][4] = {{"--from", "10", "--to", "9"}, {"--range-size", "0"}, {"--to", "18446744073709551616"},
                      {"--method", "magic"}, {"--from", "-1"}, {"--range-size", "5000000"}, {"--to", "10000000000000", "--range-size", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[6] = {"primes"};
        int argc = 1;
        for (int k = 0; k < 4 && bad[i][k]; k++)
            argv[argc++] = bad[i][k];
        cr_assert_eq(kind->plan(argc, argv, &plan, stdout, err, sizeof err), JOB_ERROR, "case %zu", i);
        cr_assert(!strchr(err, '\n'));
        job_plan_clear(kind, &plan);
    }
    char *argv[] = {"primes", "--to", "100", "--range-size", "10", NULL};
    cr_assert_eq(kind->plan(5, argv, &plan, stdout, err, sizeof err), JOB_OK);
    uint8_t too_many[] = {0, 0, 0, 0, 0, 0, 0, 11};
    cr_assert_eq(kind->accept(plan.state, 0, too_many, sizeof too_many, err, sizeof err), JOB_MALFORMED);
    cr_assert_str_eq(err, "a count of 11 primes among 10 numbers");
    /* Lists of unit 0 (1..10) the job refuses, each with the rule it breaks
       and where: a count byte, then the text. */
    struct {
        const char *text;
        uint8_t count;
        const char *why;
    } lists[] = {
        {"2\n3x", 2, "not one number a line on line 2"},
        {"2\n3", 3, "fewer numbers than its count"},
        {"", 1, "fewer numbers than its count"},
        {"2\n3\n5", 2, "more numbers than its count"},
        {"2\n", 1, "an empty last line on line 2"},
        {"2\n\n3", 2, "not a decimal number on line 2"},
        {"7\n5", 2, "not in ascending order on line 2"},
        {"3\n3", 2, "not in ascending order on line 2"},
        {"11", 1, "a number outside its range on line 1"},
        {"03", 1, "a leading zero on line 1"},
        {"99999999999999999999", 1, "a number beyond 2^64 on line 1"},
        /* Numbers no honest worker lists: 1, and a multiple of 2, 3, 5 or 7. */
        {"1\n2", 2, "a number that is not prime on line 1"},
        {"7\n9", 2, "a number that is not prime on line 2"},
        {"3\n4\n5", 3, "a number that is not prime on line 2"},
        {"5\n6", 2, "a number that is not prime on line 2"},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        uint8_t payload[64] = {0};
        size_t n = strlen(lists[i].text);
        payload[7] = lists[i].count;
        memcpy(payload + 8, lists[i].text, n);
        cr_assert_eq(kind->accept(plan.state, 0, payload, 8 + n, err, sizeof err), JOB_MALFORMED, "case %zu", i);
        char want[200];
        snprintf(want, sizeof want, "not a list of %u prime%s of its range: %s", lists[i].count,
                 lists[i].count == 1 ? "" : "s", lists[i].why);
        cr_assert_str_eq(err, want, "case %zu", i);
    }
    uint8_t good[] = {0, 0, 0, 0, 0, 0, 0, 4, '2', '\n', '3', '\n', '5', '\n', '7'};
    cr_assert_eq(kind->accept(plan.state, 0, good, sizeof good, NULL, 0), 0);
    job_plan_clear(kind, &plan);
}

/* ------------------------------------------------------------ frames */

/* Whether the GIF carries NETSCAPE2.0 with loop count 0 (forever). */
static bool s_loops_forever(const GifFileType *gif)
{
    for (int i = -1; i < gif->ImageCount; i++) {
        const ExtensionBlock *ext = i < 0 ? gif->ExtensionBlocks : gif->SavedImages[i].ExtensionBlocks;
        int n = i < 0 ? gif->ExtensionBlockCount : gif->SavedImages[i].ExtensionBlockCount;
        for (int k = 0; k + 1 < n; k++)
            if (ext[k].Function == APPLICATION_EXT_FUNC_CODE && ext[k].ByteCount == 11
                && memcmp(ext[k].Bytes, "NETSCAPE2.0", 11) == 0 && ext[k + 1].ByteCount == 3
                && ext[k + 1].Bytes[0] == 1 && ext[k + 1].Bytes[1] == 0 && ext[k + 1].Bytes[2] == 0)
                return true;
    }
    return false;
}

Test(jobs, random_frames_decode_to_the_specified_colours)
{
    char *gifpath = t_path(t_dir, "f.gif"), *dir = t_path(t_dir, "frames"), printed[512];
    char *argv[] = {"frames", "--count", "203", "--width", "12", "--height", "9", "--seed", "77", "--delay",
                    "7", "--frames-per-unit", "10", "--frames-dir", dir, "-o", gifpath, NULL};
    cr_assert_eq(s_run(argv, NULL, printed, sizeof printed), JOB_OK);
    GifFileType *gif = t_gif_open(gifpath);
    cr_assert_eq(gif->ImageCount, 203);
    cr_assert_eq(gif->SWidth, 12);
    cr_assert_eq(gif->SHeight, 9);
    cr_assert(s_loops_forever(gif), "no NETSCAPE2.0 loop extension");
    for (int f = 0; f < gif->ImageCount; f++) {
        GraphicsControlBlock gcb;
        cr_assert_eq(DGifSavedExtensionToGCB(gif, f, &gcb), GIF_OK);
        cr_assert_eq(gcb.DelayTime, 7, "frame %d delay", f);
        /* The PNG frame of the same index. */
        char name[32];
        snprintf(name, sizeof name, "frame_%05d.png", f);
        char *png = t_path(dir, name);
        png_image image = {.version = PNG_IMAGE_VERSION};
        cr_assert(png_image_begin_read_from_file(&image, png), "%s", png);
        image.format = PNG_FORMAT_RGB;
        uint8_t *rgb = malloc(PNG_IMAGE_SIZE(image));
        cr_assert(png_image_finish_read(&image, NULL, rgb, 0, NULL));
        cr_assert_eq(image.width, 12);
        cr_assert_eq(image.height, 9);
        for (uint32_t y = 0; y < 9; y++)
            for (uint32_t x = 0; x < 12; x++) {
                uint8_t want[3];
                ref_frame_pixel(77, 12, (uint32_t) f, x, y, want);
                uint8_t got[3];
                t_gif_pixel(gif, f, y * 12 + x, got);
                cr_assert(memcmp(got, want, 3) == 0, "frame %d pixel (%u, %u)", f, x, y);
                cr_assert(memcmp(rgb + 3 * (y * 12 + x), want, 3) == 0, "%s pixel (%u, %u)", png, x, y);
            }
        free(rgb);
        free(png);
    }
    t_gif_close(gif);
    free(gifpath);
    free(dir);
}

Test(jobs, frames_with_more_than_256_colours_are_quantised)
{
    char *gifpath = t_path(t_dir, "q.gif"), printed[512];
    char *argv[] = {"frames", "--count", "3", "--width", "40", "--height", "30", "-o", gifpath, NULL};
    cr_assert_eq(s_run(argv, NULL, printed, sizeof printed), JOB_OK);
    GifFileType *gif = t_gif_open(gifpath);
    cr_assert_eq(gif->ImageCount, 3);
    /* 1200 random colours in 256: each channel of a decoded pixel stays near
       the original (median cut); the frame is not blank. */
    long total_error = 0;
    for (uint32_t i = 0; i < 1200; i++) {
        uint8_t want[3];
        ref_frame_pixel(1, 40, 1, i % 40, i / 40, want);
        uint8_t got[3];
        t_gif_pixel(gif, 1, i, got);
        total_error += abs(got[0] - want[0]) + abs(got[1] - want[1]) + abs(got[2] - want[2]);
    }
    cr_assert_lt(total_error / 1200, 60, "mean error %ld per pixel", total_error / 1200);
    t_gif_close(gif);
    free(gifpath);
}

Test(jobs, the_zoom_scene_gives_a_valid_gif_of_differing_frames)
{
    char *gifpath = t_path(t_dir, "z.gif"), printed[512];
    char *argv[] = {"frames", "--scene", "zoom", "--count", "12", "--width", "64", "--height", "48", "-o", gifpath, NULL};
    cr_assert_eq(s_run(argv, NULL, printed, sizeof printed), JOB_OK);
    GifFileType *gif = t_gif_open(gifpath);
    cr_assert_eq(gif->ImageCount, 12);
    cr_assert(s_loops_forever(gif));
    for (int f = 1; f < 12; f++) {
        size_t same = 0;
        for (size_t i = 0; i < 64 * 48; i++) {
            uint8_t a[3], b[3];
            t_gif_pixel(gif, f - 1, i, a);
            t_gif_pixel(gif, f, i, b);
            same += memcmp(a, b, 3) == 0;
        }
        cr_assert_lt(same, 64 * 48, "frames %d and %d are identical", f - 1, f);
    }
    t_gif_close(gif);
    free(gifpath);
}

Test(jobs, frames_refuse_bad_options)
{
    const job_kind_t *kind = job_find("frames", 6);
    job_plan_t plan = {0};
    char err[256];
    char *bad[][4] = {{"--count", "0"}, {"--width", "65536"}, {"--height", "0"}, {"--delay", "70000"},
                      {"--scene", "plasma"}, {"--frames-per-unit", "5001"}, {"--width", "5000", "--height", "5000"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[6] = {"frames"};
        int argc = 1;
        for (int k = 0; k < 4 && bad[i][k]; k++)
            argv[argc++] = bad[i][k];
        cr_assert_eq(kind->plan(argc, argv, &plan, stdout, err, sizeof err), JOB_ERROR, "case %zu", i);
        job_plan_clear(kind, &plan);
    }
    /* Results no honest worker sends, refused with what is wrong. */
    char *argv[] = {"frames", "--count", "4", "--width", "2", "--height", "1", "--frames-per-unit", "2", NULL};
    cr_assert_eq(kind->plan(9, argv, &plan, stdout, err, sizeof err), JOB_OK, "%s", err);
    uint8_t no_palette[] = {0, 0};
    cr_assert_eq(kind->accept(plan.state, 1, no_palette, sizeof no_palette, err, sizeof err), JOB_MALFORMED);
    cr_assert_str_eq(err, "frame 2: a palette of 0 colours");
    uint8_t beyond[] = {0, 1, 9, 9, 9, 0, 1};   /* one colour, pixels 0 and 1 */
    cr_assert_eq(kind->accept(plan.state, 0, beyond, sizeof beyond, err, sizeof err), JOB_MALFORMED);
    cr_assert_str_eq(err, "frame 0: colour 1 of a palette of 1");
    uint8_t one_frame[] = {0, 1, 9, 9, 9, 0, 0};
    cr_assert_eq(kind->accept(plan.state, 0, one_frame, sizeof one_frame, err, sizeof err), JOB_MALFORMED);
    cr_assert_str_eq(err, "7 bytes: cut short in frame 1");
    uint8_t cut_palette[] = {0, 50, 1, 2, 3};   /* 50 colours announced, one given */
    cr_assert_eq(kind->accept(plan.state, 0, cut_palette, sizeof cut_palette, err, sizeof err), JOB_MALFORMED);
    cr_assert_str_eq(err, "5 bytes: cut short in frame 0");
    uint8_t trailing[] = {0, 1, 9, 9, 9, 0, 0, 0, 1, 9, 9, 9, 0, 0, 7};
    cr_assert_eq(kind->accept(plan.state, 0, trailing, sizeof trailing, err, sizeof err), JOB_MALFORMED);
    cr_assert_str_eq(err, "15 bytes: more than its 2 frames");
    job_plan_clear(kind, &plan);
}

/* ------------------------------------------------------------ cancel */

/* Units that would take minutes or hours, one per kind and method. The
   bounds below are seconds: far below the units' length, far above what a
   loaded machine adds (a first bound of 50 ms failed on one). */
static char *s_long_units[][20] = {
    /* By the cusp at 0.25 orbits crawl: they neither escape nor repeat for
       millions of iterations, so the cycle test cannot shorten them. */
    {"mandelbrot", "--width", "64", "--height", "20000", "--columns-per-unit", "64", "--max-iter", "10000000",
     "--xmin", "0.2499", "--xmax", "0.25", "--ymin", "-0.0001", "--ymax", "0.0001"},
    {"pi", "--samples", "100000000000", "--units", "1"},
    {"primes", "--from", "10000000000000000000", "--to", "10000000000001000000", "--range-size", "1000001"},
    {"primes", "--to", "1000000000000", "--method", "sieve", "--count-only", "--range-size", "1000000000000"},
    {"frames", "--scene", "zoom", "--count", "100", "--width", "4000", "--height", "4000", "--frames-per-unit", "1"},
    {"frames", "--count", "640", "--width", "500", "--height", "500", "--frames-per-unit", "64"},
    {"noop", "--units", "1", "--sleep-ms", "3600000"},
};

typedef struct {
    const job_kind_t *kind;
    const void *ctx;
    uint64_t unit;
    atomic_bool cancel;
    int rc;
    uint8_t *out;
    int64_t returned_at;
} compute_call_t;

static int64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *s_compute_thread(void *arg)
{
    compute_call_t *call = arg;
    size_t len = 0;
    call->out = NULL;
    call->rc = call->kind->compute(call->ctx, call->unit, &call->cancel, &call->out, &len);
    call->returned_at = s_ms();
    return NULL;
}

/* Starts call computing, sets its flag 50 ms in; returns how long after
   that it returned (call->rc and call->out say how). */
static int64_t s_cancel_while_computing(compute_call_t *call)
{
    atomic_store(&call->cancel, false);
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, s_compute_thread, call), 0);
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
    int64_t set_at = s_ms();
    atomic_store(&call->cancel, true);
    pthread_join(tid, NULL);
    return call->returned_at - set_at;
}

Test(jobs, every_kind_stops_promptly_when_cancelled)
{
    for (size_t i = 0; i < sizeof s_long_units / sizeof s_long_units[0]; i++) {
        char **argv = s_long_units[i];
        int argc = 0;
        while (argc < 20 && argv[argc])
            argc++;
        const job_kind_t *kind = job_find(argv[0], strlen(argv[0]));
        job_plan_t plan = {0};
        char err[256];
        cr_assert_eq(kind->plan(argc, argv, &plan, stdout, err, sizeof err), JOB_OK, "case %zu: %s", i, err);
        void *ctx = kind->load(plan.params, plan.params_len);
        cr_assert_not_null(ctx);
        uint64_t unit = plan.units - 1;   /* the zoom's last frame is its deepest */

        /* The flag already set: nothing is computed. */
        compute_call_t call = {.kind = kind, .ctx = ctx, .unit = unit};
        atomic_init(&call.cancel, true);
        int64_t t0 = s_ms();
        s_compute_thread(&call);
        cr_assert_eq(call.rc, JOB_CANCELLED, "case %zu (%s): rc %d", i, argv[0], call.rc);
        cr_assert_null(call.out);
        cr_assert_lt(call.returned_at - t0, 2000, "case %zu (%s): %ld ms", i, argv[0], (long) (call.returned_at - t0));

        /* Set while it computes: it looks again every few milliseconds of work. */
        int64_t after = s_cancel_while_computing(&call);
        cr_assert_eq(call.rc, JOB_CANCELLED, "case %zu (%s): finished before the cancel", i, argv[0]);
        cr_assert_null(call.out);
        cr_assert_lt(after, 2000, "case %zu (%s): %ld ms after the cancel", i, argv[0], (long) after);
        kind->unload(ctx);
        job_plan_clear(kind, &plan);
    }
}

/* primesieve cannot be interrupted: the sieve looks at the flag between its
   calls. Near 2^64 each call first sieves the primes below 2^32 (about a
   second), so the calls there are bounded rather than made long to hide
   that cost: a cancelled unit of 2^40 numbers below 2^64 stops within
   seconds (it took over a minute a call: a new manager's job waited). */
Test(jobs, a_sieve_near_2_to_the_64_stops_within_seconds_when_cancelled)
{
    char *argv[] = {"primes", "--method", "sieve", "--count-only", "--from", "18446742974197923840", "--to",
                    "18446744073709551615", "--range-size", "1099511627776", NULL};
    const job_kind_t *kind = job_find("primes", 6);
    job_plan_t plan = {0};
    char err[256];
    cr_assert_eq(kind->plan(10, argv, &plan, stdout, err, sizeof err), JOB_OK, "%s", err);
    cr_assert_eq(plan.units, 1);
    compute_call_t call = {.kind = kind, .ctx = kind->load(plan.params, plan.params_len), .unit = 0};
    cr_assert_not_null(call.ctx);
    atomic_init(&call.cancel, false);
    int64_t after = s_cancel_while_computing(&call);
    cr_assert_eq(call.rc, JOB_CANCELLED);
    cr_assert_lt(after, 30000, "%ld ms after the cancel", (long) after);
    kind->unload((void *) call.ctx);
    job_plan_clear(kind, &plan);
}
