/* The worker's compute pool: every unit comes back once with the bytes the
   kind computes, cancels (queued or running) are prompt and leave no result,
   and a job's parameters are loaded once and shared. */
#include <criterion/criterion.h>

#include "common/protocol.h"
#include "jobs/job.h"
#include "worker/pool.h"

TestSuite(pool, .timeout = 30);

/* A job of kind name planned from argv (NULL-terminated, argv[0] the kind). */
static pool_job_t *s_job(uint64_t id, char **argv, uint64_t *units)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    const job_kind_t *kind = job_find(argv[0], strlen(argv[0]));
    cr_assert_not_null(kind);
    job_plan_t plan = {0};
    char err[256];
    cr_assert_eq(kind->plan(argc, argv, &plan, stdout, err, sizeof err), JOB_OK, "%s", err);
    pool_job_t *job = pool_job_new(id, kind, plan.params, plan.params_len);
    cr_assert_null(pool_job_error(job));
    if (units)
        *units = plan.units;
    job_plan_clear(kind, &plan);   /* the job keeps no pointer into the params */
    return job;
}

/* Noop units that sleep sleep_ms each. */
static pool_job_t *s_sleeper(uint64_t id, const char *sleep_ms)
{
    char *argv[] = {"noop", "--units", "100", "--sleep-ms", (char *) sleep_ms, NULL};
    return s_job(id, argv, NULL);
}

static int64_t s_now(void) { return zclock_mono(); }

/* Collects results until want have come or timeout_ms passed; appends them
   to *all (grown as needed). Returns how many there are in *all. */
static size_t s_collect(pool_t *pool, pool_result_t **all, size_t have, size_t want, int timeout_ms)
{
    int64_t until = s_now() + timeout_ms;
    while (have < want && s_now() < until) {
        zmq_pollitem_t item = {zsock_resolve(pool_signal(pool)), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, (long) (until - s_now() > 0 ? until - s_now() : 0));
        pool_result_t *got;
        size_t n = pool_take(pool, &got);
        if (n == 0)
            continue;
        *all = realloc(*all, (have + n) * sizeof **all);
        memcpy(*all + have, got, n * sizeof *got);
        free(got);   /* the entries moved into *all */
        have += n;
    }
    return have;
}

/* Waits until pool_running reports running units (and queued ones). */
static bool s_wait_running(pool_t *pool, size_t running, size_t queued, int timeout_ms)
{
    int64_t until = s_now() + timeout_ms;
    do {   /* (looked at once at least, however late this thread runs) */
        size_t q;
        if (pool_running(pool, NULL, &q) == running && q == queued)
            return true;
        zclock_sleep(2);
    } while (s_now() < until);
    return false;
}

/* Waits until only the caller's reference to job is left. */
static bool s_wait_refs(const pool_job_t *job, size_t refs, int timeout_ms)
{
    int64_t until = s_now() + timeout_ms;
    while (pool_job_refs(job) != refs && s_now() < until)
        zclock_sleep(2);
    return pool_job_refs(job) == refs;
}

/* No result arrives within ms. */
static void s_expect_silence(pool_t *pool, int ms)
{
    pool_result_t *got = NULL;
    size_t n = s_collect(pool, &got, 0, 1, ms);
    cr_assert_eq(n, 0, "a result came for unit %lu", n ? (unsigned long) got[0].unit : 0ul);
}

Test(pool, every_unit_comes_back_once_with_the_bytes_of_the_kind)
{
    char *mandel[] = {"mandelbrot", "--width", "97", "--height", "61", "--columns-per-unit", "3", NULL};
    char *pi[] = {"pi", "--samples", "400000", "--units", "40", "--seed", "9", NULL};
    char *primes[] = {"primes", "--to", "200000", "--range-size", "5000", NULL};
    char **argvs[] = {mandel, pi, primes};
    pool_t *pool = pool_new(4, NULL);
    for (size_t k = 0; k < 3; k++) {
        uint64_t units;
        pool_job_t *job = s_job(10 + k, argvs[k], &units);
        for (uint64_t u = 0; u < units; u++)
            pool_submit(pool, job, u);
        pool_result_t *all = NULL;
        size_t n = s_collect(pool, &all, 0, units, 20000);
        cr_assert_eq(n, units, "%s: %zu of %lu results", argvs[k][0], n, (unsigned long) units);
        bool *seen = calloc(units, 1);
        const job_kind_t *kind = job_find(argvs[k][0], strlen(argvs[k][0]));
        job_plan_t plan = {0};
        char err[256];
        int argc = 0;
        while (argvs[k][argc])
            argc++;
        cr_assert_eq(kind->plan(argc, argvs[k], &plan, stdout, err, sizeof err), JOB_OK);
        void *ctx = kind->load(plan.params, plan.params_len);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(all[i].job, job);
            cr_assert_eq(all[i].status, HY_RESULT_OK);
            cr_assert_lt(all[i].unit, units);
            cr_assert_not(seen[all[i].unit], "unit %lu came twice", (unsigned long) all[i].unit);
            seen[all[i].unit] = true;
            uint8_t *want;
            size_t want_len;
            cr_assert_eq(kind->compute(ctx, all[i].unit, NULL, &want, &want_len), 0);
            cr_assert(all[i].len == want_len && memcmp(all[i].data, want, want_len) == 0,
                      "%s unit %lu: other bytes", argvs[k][0], (unsigned long) all[i].unit);
            free(want);
        }
        kind->unload(ctx);
        job_plan_clear(kind, &plan);
        free(seen);
        pool_results_free(&all, n);
        /* Every task and result dropped its reference: the one copy is ours again. */
        cr_assert_eq(pool_job_refs(job), 1);
        pool_job_unref(&job);
        cr_assert_null(job);
    }
    pool_destroy(&pool);
    cr_assert_null(pool);
    pool_destroy(&pool);   /* harmless twice */
}

Test(pool, a_job_is_loaded_once_and_shared_by_reference)
{
    pool_t *pool = pool_new(2, NULL);
    pool_job_t *job = s_sleeper(1, "50");
    for (uint64_t u = 0; u < 6; u++)
        pool_submit(pool, job, u);
    /* One reference per task, no copy: ours plus six. */
    cr_assert_eq(pool_job_refs(job), 7);
    pool_result_t *all = NULL;
    size_t n = s_collect(pool, &all, 0, 6, 5000);
    cr_assert_eq(n, 6);
    cr_assert_eq(pool_job_refs(job), 7, "results hold their job");
    pool_results_free(&all, n);
    cr_assert_eq(pool_job_refs(job), 1);
    /* The session may drop the job while its units run: they keep it. */
    pool_submit(pool, job, 7);
    pool_job_t *mine = job;
    cr_assert(s_wait_running(pool, 1, 0, 2000));
    pool_job_unref(&mine);
    n = s_collect(pool, &all, 0, 1, 5000);
    cr_assert_eq(n, 1);
    cr_assert_eq(all[0].unit, 7);
    cr_assert_eq(pool_job_refs(all[0].job), 1, "the result holds the last reference");
    pool_results_free(&all, n);   /* frees the job */
    pool_destroy(&pool);
}

Test(pool, queued_units_are_cancelled_without_a_result)
{
    pool_t *pool = pool_new(1, NULL);
    pool_job_t *job = s_sleeper(3, "3600000");
    for (uint64_t u = 0; u < 4; u++)
        pool_submit(pool, job, u);
    cr_assert(s_wait_running(pool, 1, 3, 2000), "unit 0 did not start");
    uint64_t two[] = {1, 2};
    cr_assert_eq(pool_cancel(pool, 3, two, 2), 2);
    cr_assert(s_wait_running(pool, 1, 1, 10));
    cr_assert_eq(pool_cancel(pool, 99, NULL, 0), 0, "another job's cancel touched ours");
    cr_assert_eq(pool_job_refs(job), 3);   /* ours, unit 0 running, unit 3 queued */
    /* Every unit of the job: the running one and the last queued one. */
    cr_assert_eq(pool_cancel(pool, 3, NULL, 0), 2);
    cr_assert(s_wait_refs(job, 1, 5000), "the running unit (an hour's sleep) did not stop");
    s_expect_silence(pool, 100);
    pool_job_unref(&job);
    pool_destroy(&pool);
}

Test(pool, a_running_unit_is_cancelled_promptly_and_the_thread_goes_on)
{
    pool_t *pool = pool_new(2, NULL);
    pool_job_t *slow = s_sleeper(4, "3600000"), *quick = s_sleeper(5, "0");
    pool_submit(pool, slow, 0);
    pool_submit(pool, slow, 1);
    cr_assert(s_wait_running(pool, 2, 0, 2000));
    pool_result_t *running;
    cr_assert_eq(pool_running(pool, &running, NULL), 2);
    cr_assert_eq(running[0].status, HY_RESULT_RETURNED);
    cr_assert_eq(running[0].unit + running[1].unit, 1);
    pool_results_free(&running, 2);
    uint64_t one = 1;
    cr_assert_eq(pool_cancel(pool, 4, &one, 1), 1);
    cr_assert(s_wait_running(pool, 1, 0, 10));
    cr_assert(s_wait_refs(slow, 2, 2000), "unit 1 did not stop");   /* ours, unit 0's */
    /* The freed thread computes the next unit at once. */
    pool_submit(pool, quick, 42);
    pool_result_t *all = NULL;
    size_t n = s_collect(pool, &all, 0, 1, 2000);
    cr_assert_eq(n, 1);
    cr_assert_eq(all[0].unit, 42);
    cr_assert_eq(all[0].job, quick);
    pool_results_free(&all, n);
    /* Destroying the pool cancels unit 0, which would sleep an hour. */
    int64_t t0 = s_now();
    pool_destroy(&pool);
    cr_assert_lt(s_now() - t0, 2000);
    cr_assert_eq(pool_job_refs(slow), 1);
    pool_job_unref(&slow);
    pool_job_unref(&quick);
}

Test(pool, stopping_takes_back_queued_units_and_cancels_running_ones_as_returned)
{
    pool_t *pool = pool_new(2, NULL);
    pool_job_t *job = s_sleeper(6, "3600000");
    for (uint64_t u = 0; u < 5; u++)
        pool_submit(pool, job, u);
    cr_assert(s_wait_running(pool, 2, 3, 2000));
    pool_result_t *back;
    cr_assert_eq(pool_take_queued(pool, &back), 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(back[i].status, HY_RESULT_RETURNED);
        cr_assert_eq(back[i].len, 0);
        cr_assert_eq(back[i].unit, 2 + i, "queue order");
        cr_assert_eq(pool_job_id(back[i].job), 6);
    }
    pool_results_free(&back, 3);
    cr_assert(s_wait_running(pool, 2, 0, 10), "running units must go on");
    cr_assert_eq(pool_take_queued(pool, &back), 0);
    cr_assert_null(back);
    cr_assert_eq(pool_cancel_all(pool, &back), 2);
    cr_assert_eq(back[0].unit + back[1].unit, 1);
    cr_assert_eq(back[0].status, HY_RESULT_RETURNED);
    pool_results_free(&back, 2);
    cr_assert(s_wait_refs(job, 1, 1000));
    s_expect_silence(pool, 50);
    pool_job_unref(&job);
    pool_destroy(&pool);
}

/* Drains the wake-up signal; returns how many bytes it held. */
static int s_wakes(pool_t *pool)
{
    uint8_t byte;
    int wakes = 0;
    while (zmq_recv(zsock_resolve(pool_signal(pool)), &byte, 1, ZMQ_DONTWAIT) >= 0)
        wakes++;
    return wakes;
}

Test(pool, results_not_taken_hold_the_threads_back_at_the_bound_with_one_wake_up)
{
    pool_t *pool = pool_new(3, NULL);
    char units[16];
    snprintf(units, sizeof units, "%d", POOL_DONE_MAX + 100);
    char *argv[] = {"noop", "--units", units, NULL};
    pool_job_t *job = s_job(7, argv, NULL);
    for (uint64_t u = 0; u < POOL_DONE_MAX + 100; u++)
        pool_submit(pool, job, u);
    /* Each thread may have started one more unit as the bound was reached. */
    size_t queued = POOL_DONE_MAX + 100, running = 1;
    for (int i = 0; i < 5000 && (running || queued > 100); i++) {
        zclock_sleep(1);
        running = pool_running(pool, NULL, &queued);
    }
    cr_assert_eq(running, 0, "the threads did not stop");
    cr_assert(queued >= 100 - 3 && queued <= 100, "%zu units queued at the bound", queued);
    zclock_sleep(50);   /* and they stay stopped */
    size_t later;
    pool_running(pool, NULL, &later);
    cr_assert_eq(later, queued, "the threads went on past the bound");
    /* Thousands of results, one wake-up: nothing was taken in between. */
    cr_assert_eq(s_wakes(pool), 1);
    pool_result_t *all;
    size_t taken = pool_take(pool, &all);
    cr_assert_eq(taken, POOL_DONE_MAX + 100 - queued);
    pool_results_free(&all, taken);
    /* Taking them lets the rest through. */
    for (int i = 0; i < 5000 && taken < POOL_DONE_MAX + 100; i++) {
        zclock_sleep(1);
        size_t n = pool_take(pool, &all);
        pool_results_free(&all, n);
        taken += n;
    }
    cr_assert_eq(taken, POOL_DONE_MAX + 100);
    cr_assert_eq(pool_take(pool, &all), 0);
    cr_assert_null(all);
    pool_job_unref(&job);
    pool_destroy(&pool);
}

Test(pool, unknown_kinds_and_refused_parameters_fail_with_a_reason)
{
    pool_t *pool = pool_new(2, NULL);
    const uint8_t junk[] = {1, 2, 3};
    pool_job_t *unknown = pool_job_new(8, NULL, junk, sizeof junk);
    pool_job_t *bad = pool_job_new(9, job_find("pi", 2), junk, sizeof junk);
    cr_assert_str_eq(pool_job_error(unknown), "unknown job kind");
    cr_assert_str_eq(pool_job_error(bad), "invalid job parameters");
    pool_job_t *small = s_sleeper(10, "0");   /* 100 units */
    pool_submit(pool, unknown, 0);
    pool_submit(pool, bad, 1);
    pool_submit(pool, small, 100);
    pool_result_t *all = NULL;
    size_t n = s_collect(pool, &all, 0, 3, 5000);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(all[i].status, HY_RESULT_FAILED);
        const char *want = all[i].job == unknown ? "unknown job kind"
                         : all[i].job == bad     ? "invalid job parameters"
                                                 : "unit out of range";
        cr_assert(all[i].len == strlen(want) && memcmp(all[i].data, want, all[i].len) == 0, "%.*s",
                  (int) all[i].len, (const char *) all[i].data);
    }
    pool_results_free(&all, n);
    pool_job_unref(&unknown);
    pool_job_unref(&bad);
    pool_job_unref(&small);
    pool_destroy(&pool);
}

Test(pool, failpoints_refuse_corrupt_and_hang_for_good)
{
    failpoints_t fp;
    char err[256];
    cr_assert_eq(failpoints_parse("refuse:1,corrupt:2,hang:3", &fp, err, sizeof err), 0, "%s", err);
    pool_t *pool = pool_new(2, &fp);
    pool_job_t *job = s_sleeper(11, "0");
    for (uint64_t u = 0; u < 4; u++)
        pool_submit(pool, job, u);
    pool_result_t *all = NULL;
    size_t n = s_collect(pool, &all, 0, 3, 5000);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        const pool_result_t *r = &all[i];
        cr_assert_neq(r->unit, 3, "the hung unit gave a result");
        if (r->unit == 1) {
            cr_assert_eq(r->status, HY_RESULT_FAILED);
            cr_assert(r->len == strlen(FAILPOINT_REFUSED) && memcmp(r->data, FAILPOINT_REFUSED, r->len) == 0);
        } else {
            cr_assert_eq(r->status, HY_RESULT_OK);
            cr_assert_eq(r->len, 8);
            uint8_t last = (uint8_t) r->unit ^ (r->unit == 2 ? 1 : 0);
            cr_assert_eq(r->data[7], last, "unit %lu", (unsigned long) r->unit);
        }
    }
    pool_results_free(&all, n);
    cr_assert(s_wait_running(pool, 1, 0, 1000));
    int64_t t0 = s_now();
    uint64_t three = 3;
    cr_assert_eq(pool_cancel(pool, 11, &three, 1), 1);
    s_expect_silence(pool, 100);   /* cancelled: no result, even though the thread is still stuck */
    /* The stuck thread is left behind rather than waited for. */
    cr_assert_eq(pool_destroy_within(&pool, 300), -1);
    cr_assert_lt(s_now() - t0, 1000);
    pool_job_unref(&job);
}

Test(pool, failpoint_specs_parse_or_name_the_bad_item)
{
    failpoints_t fp;
    char err[256];
    cr_assert_eq(failpoints_parse("corrupt:all,slow:2,crash:5", &fp, err, sizeof err), 0);
    cr_assert(fp.corrupt_all && fp.slow == 2 && fp.crash_count == 1 && fp.crash[0] == 5);
    cr_assert(failpoints_active(&fp));
    cr_assert_eq(failpoints_parse(NULL, &fp, err, sizeof err), 0);
    cr_assert_not(failpoints_active(&fp));
    const char *bad[] = {"refuse:x", "corrupt:", "hang:-1", "slow:0.5", "explode:1", "corrupt:al"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(failpoints_parse(bad[i], &fp, err, sizeof err), -1, "%s", bad[i]);
        cr_assert(strstr(err, "refuse:K") && strstr(err, "corrupt:all"), "%s", err);
    }
}

/* A kind whose compute ignores the cancel flag and takes 3 s; it counts
   the computes that began (a unit cancelled before its compute began has
   none, and no result) and those that ended. */
static atomic_int s_stubborn_began;
static atomic_int s_stubborn_ended;
static void *s_stubborn_load(const uint8_t *params, size_t len) { return malloc(1); }
static void s_stubborn_unload(void *ctx) { free(ctx); }
static int s_stubborn_compute(const void *ctx, uint64_t unit, const atomic_bool *cancel, uint8_t **out,
                              size_t *out_len)
{
    atomic_fetch_add(&s_stubborn_began, 1);
    int64_t until = zclock_mono() + 3000;   /* a signal may cut one sleep short */
    while (zclock_mono() < until)
        zclock_sleep((int) (until - zclock_mono()));
    atomic_fetch_add(&s_stubborn_ended, 1);
    *out = malloc(1);
    *out_len = 1;
    return 0;
}
static const job_kind_t s_stubborn = {.name = "stubborn", .load = s_stubborn_load, .unload = s_stubborn_unload,
                                      .compute = s_stubborn_compute};

static bool s_wait_began(int count, int timeout_ms)
{
    int64_t until = s_now() + timeout_ms;
    while (atomic_load(&s_stubborn_began) < count && s_now() < until)
        zclock_sleep(1);
    return atomic_load(&s_stubborn_began) >= count;
}

Test(pool, a_thread_that_ignores_cancel_is_left_behind_after_the_wait)
{
    pool_t *pool = pool_new(2, NULL);
    pool_job_t *job = pool_job_new(12, &s_stubborn, NULL, 0);
    pool_submit(pool, job, 0);
    cr_assert(s_wait_began(1, 1000));
    cr_assert_eq(pool_destroy_within(&pool, 100), -1);
    cr_assert_null(pool);
    cr_assert_eq(atomic_load(&s_stubborn_ended), 0, "destroy waited for the unit to end");
    /* The thread ends its unit later, touches nothing of the pool but its
       own task, and drops its reference. */
    cr_assert(s_wait_refs(job, 1, 10000));
    cr_assert_eq(atomic_load(&s_stubborn_ended), 1);
    pool_job_unref(&job);

    /* With enough time, the same pool is joined and freed. */
    pool = pool_new(1, NULL);
    job = pool_job_new(13, &s_stubborn, NULL, 0);
    pool_submit(pool, job, 0);
    cr_assert(s_wait_began(2, 1000));
    cr_assert_eq(pool_destroy_within(&pool, 10000), 0);
    cr_assert_eq(atomic_load(&s_stubborn_ended), 2);
    cr_assert_eq(pool_job_refs(job), 1);
    pool_job_unref(&job);
}

/* While much work is queued, results wait for the session's own timer; the
   pool wakes it when the queue runs short (the manager's next units must be
   on their way) and when it has nothing left to compute. */
Test(pool, the_pool_stays_quiet_while_much_work_is_queued_and_wakes_as_it_runs_out)
{
    pool_t *pool = pool_new(1, NULL);
    pool_job_t *job = s_sleeper(5, "20");
    for (uint64_t u = 0; u < 40; u++)
        pool_submit(pool, job, u);
    size_t taken = 0;
    int quiet_checks = 0;
    for (int i = 0; i < 1000 && taken < 40; i++) {
        zclock_sleep(12);
        int wakes = s_wakes(pool);
        size_t queued;
        pool_running(pool, NULL, &queued);
        pool_result_t *all;
        size_t n = pool_take(pool, &all);
        pool_results_free(&all, n);
        taken += n;
        /* 40 ms of work still queued is well beyond POOL_LEAD_MS */
        if (queued >= 2 && n > 0) {
            cr_assert_eq(wakes, 0, "woken with %zu units of 20 ms still queued", queued);
            quiet_checks++;
        }
        if (queued == 0)
            break;
    }
    cr_assert_geq(quiet_checks, 3, "the pool was never seen computing between takes");
    /* The last units: their results are due at once, without a take. */
    zmq_pollitem_t item = {zsock_resolve(pool_signal(pool)), 0, ZMQ_POLLIN, 0};
    while (taken < 40) {
        cr_assert_eq(zmq_poll(&item, 1, 5000), 1, "no wake-up as the pool ran out of work (%zu taken)", taken);
        pool_result_t *all;
        size_t n = pool_take(pool, &all);
        pool_results_free(&all, n);
        taken += n;
    }
    cr_assert_eq(taken, 40);
    /* A lone unit on an idle pool is due as soon as it is done. */
    pool_submit(pool, job, 40);
    cr_assert_eq(zmq_poll(&item, 1, 5000), 1, "no wake-up for a lone unit");
    pool_result_t *all;
    cr_assert_eq(pool_take(pool, &all), 1);
    pool_results_free(&all, 1);
    pool_job_unref(&job);
    pool_destroy(&pool);
}

/* Short units: the first results wait for company; one wake-up brings many. */
Test(pool, results_of_short_units_leave_in_numbers)
{
    pool_t *pool = pool_new(1, NULL);
    char *argv[] = {"noop", "--units", "400", NULL};
    pool_job_t *job = s_job(9, argv, NULL);
    uint64_t units[400];
    for (uint64_t u = 0; u < 400; u++)
        units[u] = u;
    pool_submit_many(pool, job, units, 400);
    zmq_pollitem_t item = {zsock_resolve(pool_signal(pool)), 0, ZMQ_POLLIN, 0};
    cr_assert_eq(zmq_poll(&item, 1, 5000), 1, "no wake-up");
    pool_result_t *all;
    size_t n = pool_take(pool, &all);
    /* due once a quarter of what the pool holds is done */
    cr_assert_geq(n, 100, "woken for %zu results of 400", n);
    pool_results_free(&all, n);
    size_t taken = n;
    while (taken < 400 && zmq_poll(&item, 1, 5000) == 1) {
        n = pool_take(pool, &all);
        pool_results_free(&all, n);
        taken += n;
    }
    cr_assert_eq(taken, 400);
    pool_job_unref(&job);
    pool_destroy(&pool);
}
