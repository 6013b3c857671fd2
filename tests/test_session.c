/* The worker's session against a scripted manager: a real hyades-worker
   process, and this test playing the manager on a ROUTER with the codec.
   HELLO, batched results, cancels, GOODBYE codes, reconnects and the
   orderly stop on SIGTERM. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/protocol.h"
#include "jobs/job.h"
#include "tests/helpers.h"

TestSuite(session, .init = t_setup, .fini = t_teardown, .timeout = 30);

/* ------------------------------------------------------------ the fake manager */

typedef struct {
    zsock_t *router;
    char endpoint[600];
    uint8_t id[256];      /* routing id of the last peer heard */
    size_t id_len;
    zframe_t *frame;      /* the last message, which msg points into */
    hy_msg_t msg;
} fake_t;

/* A fake manager whose socket holds at most rcvhwm incoming messages per
   worker (0: the usual). */
static fake_t *s_fake_new_hwm(int rcvhwm)
{
    fake_t *f = calloc(1, sizeof *f);
    snprintf(f->endpoint, sizeof f->endpoint, "ipc://%s/m.sock", t_dir);
    f->router = zsock_new(ZMQ_ROUTER);
    hy_socket_setup(f->router);
    if (rcvhwm)
        zsock_set_rcvhwm(f->router, rcvhwm);   /* before the bind, which copies it */
    cr_assert_eq(zsock_bind(f->router, "%s", f->endpoint), 0);
    return f;
}

static fake_t *s_fake_new(void) { return s_fake_new_hwm(0); }

static void s_fake_destroy(fake_t **f_p)
{
    fake_t *f = *f_p;
    zframe_destroy(&f->frame);
    zsock_destroy(&f->router);
    free(f);
    *f_p = NULL;
}

/* The next message within timeout_ms: 0 (in f->msg), HY_EMALFORMED,
   HY_EVERSION, or -1 on time-out. */
static int s_fake_recv(fake_t *f, int timeout_ms)
{
    zmq_pollitem_t item = {zsock_resolve(f->router), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    zmsg_t *m = zmsg_recv(f->router);
    cr_assert_eq(zmsg_size(m), 2, "a worker message is one frame");
    zframe_t *id = zmsg_pop(m);
    f->id_len = zframe_size(id);
    memcpy(f->id, zframe_data(id), f->id_len);
    zframe_destroy(&id);
    zframe_destroy(&f->frame);
    f->frame = zmsg_pop(m);
    zmsg_destroy(&m);
    return hy_decode(zframe_data(f->frame), zframe_size(f->frame), &f->msg);
}

/* The next message that is not a HEARTBEAT; asserts it is command. */
static hy_msg_t *s_fake_expect(fake_t *f, hy_command_t command, int timeout_ms)
{
    int64_t until = zclock_mono() + timeout_ms;
    while (true) {
        int64_t left = until - zclock_mono();
        int rc = s_fake_recv(f, left > 0 ? (int) left : 0);
        cr_assert_neq(rc, -1, "no %s within %d ms", hy_command_name(command), timeout_ms);
        cr_assert_eq(rc, 0, "a malformed message from the worker");
        if (f->msg.command == HY_HEARTBEAT && command != HY_HEARTBEAT)
            continue;
        cr_assert_eq(f->msg.command, command, "got %s, expected %s", hy_command_name(f->msg.command),
                     hy_command_name(command));
        return &f->msg;
    }
}

/* Asserts that nothing but heartbeats comes for ms. */
static void s_fake_quiet(fake_t *f, int ms)
{
    int64_t until = zclock_mono() + ms;
    int64_t left;
    while ((left = until - zclock_mono()) > 0) {
        int rc = s_fake_recv(f, (int) left);
        if (rc == -1)
            return;
        cr_assert(rc == 0 && f->msg.command == HY_HEARTBEAT, "unexpected %s", hy_command_name(f->msg.command));
    }
}

static void s_fake_send(fake_t *f, hy_msg_t msg)
{
    cr_assert_eq(hy_send(f->router, f->id, f->id_len, &msg), 0);
}

static void s_fake_send_raw(fake_t *f, const void *data, size_t len)
{
    zmq_send(zsock_resolve(f->router), f->id, f->id_len, ZMQ_SNDMORE);
    zmq_send(zsock_resolve(f->router), data, len, 0);
}

static const uint64_t s_session = 0x5e55107ull;

/* Waits for HELLO and answers WELCOME (manager heartbeat hb_ms). */
static void s_fake_welcome(fake_t *f, uint64_t session, uint32_t hb_ms)
{
    s_fake_expect(f, HY_HELLO, 5000);
    s_fake_send(f, (hy_msg_t) {.command = HY_WELCOME, .session = session, .heartbeat_ms = hb_ms, .liveness = 3,
                                .idle_ms = hb_ms});
}

/* JOB id: noop with units and sleep_ms. */
static void s_fake_noop_job(fake_t *f, uint64_t id, uint64_t units, uint32_t sleep_ms)
{
    uint8_t params[12];
    for (int i = 0; i < 8; i++)
        params[i] = (uint8_t) (units >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        params[8 + i] = (uint8_t) (sleep_ms >> (24 - 8 * i));
    s_fake_send(f, (hy_msg_t) {.command = HY_JOB, .job = id, .name = "noop", .data = params, .data_len = 12});
}

/* UNITS first .. first + count - 1 of job. */
static void s_fake_units(fake_t *f, uint64_t job, uint64_t first, size_t count)
{
    uint64_t *units = malloc(count * sizeof *units);
    for (size_t i = 0; i < count; i++)
        units[i] = first + i;
    s_fake_send(f, (hy_msg_t) {.command = HY_UNITS, .job = job, .units = units, .unit_count = count});
    free(units);
}

/* The results of the last RESULT message, checked against job: each unit's
   status into status[unit] (units below max), payloads of OK noop units
   checked. Returns how many. */
static size_t s_results(fake_t *f, uint64_t job, int *status, uint64_t max)
{
    cr_assert_eq(f->msg.command, HY_RESULT);
    cr_assert_eq(f->msg.job, job, "a result of job %lu", (unsigned long) f->msg.job);
    size_t cursor = 0, n = 0;
    hy_result_t r;
    while (hy_result_next(&f->msg, &cursor, &r)) {
        cr_assert_lt(r.unit, max);
        cr_assert_eq(status[r.unit], -1, "unit %lu came twice", (unsigned long) r.unit);
        status[r.unit] = r.status;
        if (r.status == HY_RESULT_OK) {
            cr_assert_eq(r.len, 8);
            uint64_t echoed = 0;
            for (int i = 0; i < 8; i++)
                echoed = echoed << 8 | r.data[i];
            cr_assert_eq(echoed, r.unit);
        }
        n++;
    }
    return n;
}

/* A worker connected to f, with extra options (NULL-terminated or NULL). */
static pid_t s_worker(fake_t *f, const char *threads, char *const extra[], const char *log)
{
    char *argv[32] = {(char *) t_bin("hyades-worker"), "--connect", f ? f->endpoint : "ipc:///nonexistent/x",
                      "--name", "w", "--threads", (char *) threads, "--heartbeat", "100", "--liveness", "3"};
    int argc = 11;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    return t_spawn(argv, log, NULL);
}

static int *s_status_table(size_t n)
{
    int *status = malloc(n * sizeof *status);
    for (size_t i = 0; i < n; i++)
        status[i] = -1;
    return status;
}

/* ------------------------------------------------------------ tests */

Test(session, hello_names_the_worker_its_release_and_its_kinds)
{
    fake_t *f = s_fake_new();
    char *log = t_path(t_dir, "w.log");
    char *kinds[] = {"--kinds", "pi,noop,pi", NULL};
    pid_t w = s_worker(f, "3", kinds, log);
    hy_msg_t *hello = s_fake_expect(f, HY_HELLO, 5000);
    cr_assert(hello->name_len == 1 && hello->name[0] == 'w');
    cr_assert_eq(hello->threads, 3);
    cr_assert_eq(hello->heartbeat_ms, 100);
    cr_assert(hello->release_len == strlen(HY_RELEASE) && memcmp(hello->release, HY_RELEASE, hello->release_len) == 0);
    cr_assert_eq(hello->kind_count, 2, "duplicates are announced once");
    const char *want[] = {"pi", "noop"}, *kind;
    size_t cursor = 0, len;
    for (size_t i = 0; hy_kind_next(hello, &cursor, &kind, &len); i++)
        cr_assert(len == strlen(want[i]) && memcmp(kind, want[i], len) == 0);
    cr_assert_eq(t_stop(w), 0);

    /* By default: every kind, in registry order. */
    w = s_worker(f, "1", NULL, log);
    hello = s_fake_expect(f, HY_HELLO, 5000);
    cr_assert_eq(hello->kind_count, job_count());
    cursor = 0;
    for (size_t i = 0; hy_kind_next(hello, &cursor, &kind, &len); i++)
        cr_assert(len == strlen(job_at(i)->name) && memcmp(kind, job_at(i)->name, len) == 0);
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
    free(log);
}

Test(session, every_unit_comes_back_once_in_batches)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "2", NULL, NULL);
    s_fake_welcome(f, s_session, 10000);
    enum { UNITS = 5000 };
    s_fake_noop_job(f, 1, UNITS, 0);
    int *status = s_status_table(UNITS);
    size_t got = 0, messages = 0;
    /* A thousand at a time, within what a worker queues. */
    for (uint64_t first = 0; first < UNITS; first += 1000) {
        s_fake_units(f, 1, first, 1000);
        while (got < first + 1000) {
            s_fake_expect(f, HY_RESULT, 5000);
            got += s_results(f, 1, status, UNITS);
            messages++;
        }
    }
    for (size_t u = 0; u < UNITS; u++)
        cr_assert_eq(status[u], HY_RESULT_OK);
    cr_log_info("%d results in %zu RESULT messages", UNITS, messages);
    cr_assert_lt(messages, UNITS / 2, "%zu messages for %d results: no batching", messages, UNITS);
    cr_assert_eq(t_stop(w), 0);
    free(status);
    s_fake_destroy(&f);
}

Test(session, units_beyond_the_queue_bound_are_given_back)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "1", NULL, NULL);
    s_fake_welcome(f, s_session, 10000);
    enum { UNITS = 3000 };
    /* Units of 2 ms: the queue cannot drain between the three messages. */
    s_fake_noop_job(f, 1, UNITS, 2);
    for (uint64_t first = 0; first < UNITS; first += 1000)
        s_fake_units(f, 1, first, 1000);
    int *status = s_status_table(UNITS);
    size_t got = 0, ok = 0, back = 0;
    while (got < UNITS) {
        s_fake_expect(f, HY_RESULT, 5000);
        got += s_results(f, 1, status, UNITS);
    }
    for (size_t u = 0; u < UNITS; u++) {
        ok += status[u] == HY_RESULT_OK;
        back += status[u] == HY_RESULT_RETURNED;
    }
    cr_assert_eq(ok + back, UNITS);
    cr_assert_geq(back, UNITS / 3, "%zu of %d units taken at once: no bound", ok, UNITS);
    cr_assert_eq(t_stop(w), 0);
    free(status);
    s_fake_destroy(&f);
}

Test(session, large_payloads_are_split_across_messages_within_the_limit)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "3", NULL, NULL);
    s_fake_welcome(f, s_session, 10000);
    /* Three units of 16, 16 and 8 million bytes: no two fit in one RESULT. */
    char *argv[] = {"mandelbrot", "--width", "400", "--height", "100000", "--max-iter", "1",
                    "--columns-per-unit", "160", NULL};
    const job_kind_t *kind = job_find("mandelbrot", 10);
    job_plan_t plan = {0};
    char err[256];
    cr_assert_eq(kind->plan(9, argv, &plan, stdout, err, sizeof err), JOB_OK, "%s", err);
    s_fake_send(f, (hy_msg_t) {.command = HY_JOB, .job = 3, .name = "mandelbrot", .data = plan.params,
                               .data_len = plan.params_len});
    job_plan_clear(kind, &plan);
    s_fake_units(f, 3, 0, 3);
    size_t got = 0, lengths[3] = {0};
    while (got < 3) {
        s_fake_expect(f, HY_RESULT, 10000);   /* decoded: within HY_MAX_PAYLOAD */
        size_t cursor = 0;
        hy_result_t r;
        while (hy_result_next(&f->msg, &cursor, &r)) {
            cr_assert_eq(r.status, HY_RESULT_OK);
            cr_assert_lt(r.unit, 3);
            lengths[r.unit] = r.len;
            got++;
        }
    }
    cr_assert(lengths[0] == 16000000 && lengths[1] == 16000000 && lengths[2] == 8000000);
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

Test(session, units_of_unknown_jobs_and_kinds_fail_with_a_reason)
{
    fake_t *f = s_fake_new();
    char *kinds[] = {"--kinds", "pi", NULL};
    pid_t w = s_worker(f, "2", kinds, NULL);
    s_fake_welcome(f, s_session, 10000);
    const struct { uint64_t job; const char *why; } cases[] = {
        {99, "unknown job"}, {1, "unknown job kind"}, {2, "invalid job parameters"},
    };
    s_fake_noop_job(f, 1, 10, 0);   /* not among --kinds */
    s_fake_send(f, (hy_msg_t) {.command = HY_JOB, .job = 2, .name = "pi", .data = (const uint8_t *) "x", .data_len = 1});
    for (size_t c = 0; c < 3; c++) {
        s_fake_units(f, cases[c].job, 0, 600);
        int *status = s_status_table(600);
        size_t got = 0;
        while (got < 600) {
            s_fake_expect(f, HY_RESULT, 5000);
            size_t cursor = 0;
            hy_result_t r;
            while (hy_result_next(&f->msg, &cursor, &r))
                cr_assert(r.len == strlen(cases[c].why) && memcmp(r.data, cases[c].why, r.len) == 0,
                          "job %lu: '%.*s'", (unsigned long) cases[c].job, (int) r.len, (const char *) r.data);
            got += s_results(f, cases[c].job, status, 600);
        }
        for (size_t u = 0; u < 600; u++)
            cr_assert_eq(status[u], HY_RESULT_FAILED);
        free(status);
    }
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

Test(session, cancelled_units_give_no_result_and_free_their_threads)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "2", NULL, NULL);
    s_fake_welcome(f, s_session, 10000);
    s_fake_noop_job(f, 1, 100, 3600000);
    s_fake_units(f, 1, 0, 6);   /* 0 and 1 run, 2..5 wait */
    zclock_sleep(200);
    const uint64_t some[] = {0, 2, 3, 4, 5};   /* one running, every queued one */
    s_fake_send(f, (hy_msg_t) {.command = HY_CANCEL, .job = 1, .units = some, .unit_count = 5});
    /* A thread is free again: a quick unit comes back at once. */
    s_fake_noop_job(f, 2, 10, 0);
    s_fake_units(f, 2, 7, 1);
    s_fake_expect(f, HY_RESULT, 1000);
    cr_assert_eq(f->msg.job, 2);
    s_fake_send(f, (hy_msg_t) {.command = HY_CANCEL, .job = 1, .unit_count = 0});   /* the rest of job 1 */
    s_fake_units(f, 2, 0, 5);
    int *status = s_status_table(10);
    size_t got = 0;
    while (got < 5) {
        s_fake_expect(f, HY_RESULT, 1000);
        got += s_results(f, 2, status, 10);   /* asserts no result of job 1 */
    }
    s_fake_quiet(f, 300);
    cr_assert_eq(t_stop(w), 0);
    free(status);
    s_fake_destroy(&f);
}

Test(session, a_stop_returns_queued_units_lets_running_ones_finish_and_says_goodbye)
{
    fake_t *f = s_fake_new();
    char *log = t_path(t_dir, "w.log");
    pid_t w = s_worker(f, "2", NULL, log);
    s_fake_welcome(f, s_session, 10000);
    s_fake_noop_job(f, 1, 100, 2000);
    s_fake_units(f, 1, 0, 10);
    zclock_sleep(800);   /* 0 and 1 run */
    int64_t t0 = zclock_mono();
    kill(w, SIGTERM);
    int *status = s_status_table(100);
    s_fake_expect(f, HY_RESULT, 1000);
    cr_assert_eq(s_results(f, 1, status, 100), 8, "the queued units go back in one message");
    for (size_t u = 2; u < 10; u++)
        cr_assert_eq(status[u], HY_RESULT_RETURNED);
    /* New units are given back at once. */
    s_fake_units(f, 1, 20, 3);
    s_fake_expect(f, HY_RESULT, 1000);
    cr_assert_eq(s_results(f, 1, status, 100), 3);
    cr_assert_eq(status[20], HY_RESULT_RETURNED);
    /* The running ones finish, then GOODBYE. */
    size_t got = 0;
    while (got < 2) {
        s_fake_expect(f, HY_RESULT, 3000);
        got += s_results(f, 1, status, 100);
    }
    cr_assert(status[0] == HY_RESULT_OK && status[1] == HY_RESULT_OK);
    hy_msg_t *bye = s_fake_expect(f, HY_GOODBYE, 2000);
    cr_assert_eq(bye->code, HY_BYE_STOPPING);
    cr_assert(bye->name_len == 15 && memcmp(bye->name, "worker stopping", 15) == 0);
    cr_assert_eq(t_wait(w, 3000), 0);
    cr_assert_lt(zclock_mono() - t0, 4500);
    cr_assert_not(t_file_contains(log, "dangling"));
    free(status);
    free(log);
    s_fake_destroy(&f);
}

Test(session, units_longer_than_the_grace_period_are_given_back)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "2", NULL, NULL);
    s_fake_welcome(f, s_session, 10000);
    s_fake_noop_job(f, 1, 100, 3600000);
    s_fake_units(f, 1, 0, 2);
    zclock_sleep(1000);   /* both run */
    int64_t t0 = zclock_mono();
    kill(w, SIGTERM);
    int *status = s_status_table(100);
    size_t got = 0;
    while (got < 2) {
        s_fake_expect(f, HY_RESULT, 5000);
        got += s_results(f, 1, status, 100);
    }
    int64_t at = zclock_mono() - t0;
    cr_assert(at >= 2800 && at < 6000, "given back after %ld ms (the grace is 3 s)", (long) at);
    cr_assert(status[0] == HY_RESULT_RETURNED && status[1] == HY_RESULT_RETURNED);
    cr_assert_eq(s_fake_expect(f, HY_GOODBYE, 1000)->code, HY_BYE_STOPPING);
    cr_assert_eq(t_wait(w, 2000), 0);
    free(status);
    s_fake_destroy(&f);
}

Test(session, a_second_signal_stops_at_once)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "2", NULL, NULL);
    s_fake_welcome(f, s_session, 10000);
    s_fake_noop_job(f, 1, 100, 3600000);
    s_fake_units(f, 1, 0, 2);
    zclock_sleep(200);
    int64_t t0 = zclock_mono();
    kill(w, SIGTERM);
    zclock_sleep(100);
    kill(w, SIGINT);
    cr_assert_eq(t_wait(w, 3000), 0);
    cr_assert_lt(zclock_mono() - t0, 2000);
    s_fake_destroy(&f);
}

Test(session, a_worker_without_a_manager_stops_at_once)
{
    char *log = t_path(t_dir, "w.log");
    pid_t w = s_worker(NULL, "2", NULL, log);
    cr_assert(t_wait_for(log, "connecting to the manager", NULL, 0, 5000));
    zclock_sleep(1500);   /* a few attempts */
    int64_t t0 = zclock_mono();
    kill(w, SIGTERM);
    cr_assert_eq(t_wait(w, 3000), 0);
    cr_assert_lt(zclock_mono() - t0, 2000);
    /* One line for the series of attempts, not one per attempt. */
    char *text = t_read_file(log, NULL);
    char *first = strstr(text, "connecting to the manager");
    cr_assert_null(strstr(first + 1, "connecting to the manager"), "%s", text);
    free(text);
    free(log);
}

Test(session, no_welcome_means_a_new_socket_and_hello)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "1", NULL, NULL);
    s_fake_expect(f, HY_HELLO, 5000);
    uint8_t first[256];
    size_t first_len = f->id_len;
    memcpy(first, f->id, first_len);
    int64_t t0 = zclock_mono();
    /* After 100 ms x 3: GOODBYE on the old socket (a manager that was only
       busy reads it with the HELLO and forgets that connection) ... */
    hy_msg_t *bye = s_fake_expect(f, HY_GOODBYE, 2000);
    cr_assert_eq(bye->code, HY_BYE_STOPPING);
    cr_assert(f->id_len == first_len && memcmp(f->id, first, first_len) == 0, "GOODBYE on another socket");
    /* ... and, after a 100 ms backoff, HELLO on a new one. */
    s_fake_expect(f, HY_HELLO, 2000);
    cr_assert_geq(zclock_mono() - t0, 250);
    cr_assert(f->id_len != first_len || memcmp(f->id, first, first_len) != 0, "the same socket");
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

/* Counts the worker's HEARTBEATs for ms while the fake manager beats every
   beat_ms (0: never); asserts nothing else comes but RESULTs, counted in
   *results when not NULL. */
static int s_count_beats(fake_t *f, int ms, int beat_ms, int *results)
{
    int beats = 0;
    int64_t until = zclock_mono() + ms, next = 0;
    while (zclock_mono() < until) {
        if (beat_ms && zclock_mono() >= next) {
            s_fake_send(f, (hy_msg_t) {.command = HY_HEARTBEAT});
            next = zclock_mono() + beat_ms;
        }
        if (s_fake_recv(f, 5) == 0) {
            if (f->msg.command == HY_RESULT && results)
                (*results)++;
            else {
                cr_assert_eq(f->msg.command, HY_HEARTBEAT, "got %s", hy_command_name(f->msg.command));
                beats++;
            }
        }
    }
    return beats;
}

/* PROTOCOL 4.3: holding no units, the worker beats at WELCOME's idle
   interval and waits that times its liveness for the manager; holding
   units, at the heartbeat; and at once when units come to it idle. */
Test(session, an_idle_worker_beats_at_the_idle_interval_a_busy_one_at_the_heartbeat)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "1", NULL, NULL);
    s_fake_expect(f, HY_HELLO, 5000);
    s_fake_send(f, (hy_msg_t) {.command = HY_WELCOME, .session = s_session, .heartbeat_ms = 100, .liveness = 3,
                                .idle_ms = 1500});
    /* Idle, the manager beating every 1500 ms: about 2 beats in 3 s, where
       the 100 ms heartbeat would give 30. */
    int idle = s_count_beats(f, 3000, 1500, NULL);
    cr_assert(idle >= 1 && idle <= 6, "%d heartbeats in 3 s idle (interval 1500 ms)", idle);
    /* Busy with one unit of 1.5 s: beats every 100 ms, the first at once. */
    s_fake_noop_job(f, 1, 10, 1500);
    s_fake_units(f, 1, 0, 1);
    int64_t given = zclock_mono();
    s_fake_expect(f, HY_HEARTBEAT, 1000);
    cr_assert_lt(zclock_mono() - given, 800, "the first heartbeat after units came %" PRId64 " ms later",
                 zclock_mono() - given);
    int results = 0;
    int busy = s_count_beats(f, 1000, 0, &results);
    cr_assert_eq(results, 0);
    cr_assert_geq(busy, 4, "%d heartbeats in 1 s busy (heartbeat 100 ms)", busy);
    s_fake_expect(f, HY_RESULT, 2000);
    /* Idle again, and the manager silent after one last heartbeat: given up
       after 3 x 1500 ms, not after 3 x 100. */
    s_fake_send(f, (hy_msg_t) {.command = HY_HEARTBEAT});
    int64_t t0 = zclock_mono();
    hy_msg_t *bye = s_fake_expect(f, HY_GOODBYE, 10000);
    cr_assert_eq(bye->code, HY_BYE_STOPPING);
    cr_assert_geq(zclock_mono() - t0, 3000, "gave up on the manager after %" PRId64 " ms", zclock_mono() - t0);
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

/* A WELCOME that does not parse (here an idle interval below the
   heartbeat) is reported once, and the worker does not ask again soon. */
Test(session, a_malformed_welcome_is_reported_and_not_asked_for_again_soon)
{
    fake_t *f = s_fake_new();
    char *log = t_path(t_dir, "w.log");
    pid_t w = s_worker(f, "1", NULL, log);
    s_fake_expect(f, HY_HELLO, 5000);
    s_fake_send(f, (hy_msg_t) {.command = HY_WELCOME, .session = s_session, .heartbeat_ms = 1000, .liveness = 3,
                                .idle_ms = 999});
    cr_assert(t_wait_for(log, "sent a malformed WELCOME", NULL, 0, 5000), "not reported");
    cr_assert_neq(s_fake_recv(f, 3000) == 0 && f->msg.command == HY_HELLO, 1, "HELLO again within 3 s");
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
    free(log);
}

/* A joined manager that sends garbage again and again: counted and
   dropped, with one log line every few seconds, not one each. */
Test(session, a_flood_of_malformed_messages_after_welcome_logs_a_few_lines)
{
    fake_t *f = s_fake_new();
    char *log = t_path(t_dir, "w.log");
    pid_t w = s_worker(f, "1", NULL, log);
    s_fake_welcome(f, s_session, 1000);
    uint8_t bad[18] = {'H', 'Y', HY_PROTOCOL_VERSION, HY_WELCOME};   /* zero heartbeat */
    for (int i = 0; i < 5000; i++)
        s_fake_send_raw(f, bad, sizeof bad);
    s_fake_send(f, (hy_msg_t) {.command = HY_HEARTBEAT});
    usleep(1500000);
    int lines = t_count_lines(log, "dropped a malformed message");
    cr_assert(lines >= 1 && lines <= 5, "%d log lines for 5000 malformed messages", lines);
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
    free(log);
}

/* A manager that welcomes and then says nothing (here with a 10 ms
   heartbeat and liveness 2): the worker leaves it each time, and comes
   back ever later (100 ms doubling to 4 s), not every 130 ms. */
Test(session, a_manager_that_only_welcomes_is_retried_ever_later)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "1", NULL, NULL);
    int hellos = 0;
    int64_t until = zclock_mono() + 4000;
    while (zclock_mono() < until) {
        if (s_fake_recv(f, 50) == 0 && f->msg.command == HY_HELLO) {
            hellos++;
            s_fake_send(f, (hy_msg_t) {.command = HY_WELCOME, .session = s_session, .heartbeat_ms = 10,
                                        .liveness = 2, .idle_ms = 10});
        }
    }
    cr_assert(hellos >= 2 && hellos <= 8, "%d HELLOs in 4 s", hellos);
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

Test(session, a_silent_manager_is_left_and_the_cache_survives)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "1", NULL, NULL);
    s_fake_welcome(f, s_session, 200);
    /* Heartbeats at the faster of the two intervals: 200 ms (ours every 160). */
    int beats = 0;
    int64_t until = zclock_mono() + 1000, next = 0;
    while (zclock_mono() < until) {
        if (zclock_mono() >= next) {
            s_fake_send(f, (hy_msg_t) {.command = HY_HEARTBEAT});
            next = zclock_mono() + 160;
        }
        if (s_fake_recv(f, 10) == 0) {
            cr_assert_eq(f->msg.command, HY_HEARTBEAT, "got %s", hy_command_name(f->msg.command));
            beats++;
        }
    }
    cr_assert_geq(beats, 3, "%d heartbeats in 1000 ms", beats);
    /* Silence: lost after 3 x 200 ms; GOODBYE, then a new HELLO; the same
       session keeps job 1. */
    s_fake_noop_job(f, 1, 100, 0);
    hy_msg_t *bye = s_fake_expect(f, HY_GOODBYE, 3000);
    cr_assert_eq(bye->code, HY_BYE_STOPPING);
    cr_assert(bye->name_len == 28 && memcmp(bye->name, "manager silent: reconnecting", 28) == 0);
    s_fake_expect(f, HY_HELLO, 2000);
    s_fake_send(f, (hy_msg_t) {.command = HY_WELCOME, .session = s_session, .heartbeat_ms = 10000, .liveness = 3,
                                .idle_ms = 10000});
    s_fake_units(f, 1, 5, 1);
    s_fake_expect(f, HY_RESULT, 1000);
    hy_result_t r;
    size_t cursor = 0;
    cr_assert(hy_result_next(&f->msg, &cursor, &r) && r.status == HY_RESULT_OK);
    /* A new session forgets it. */
    s_fake_send(f, (hy_msg_t) {.command = HY_GOODBYE, .code = HY_BYE_FINISHED, .name = "done"});
    s_fake_welcome(f, s_session + 1, 10000);
    s_fake_units(f, 1, 6, 1);
    s_fake_expect(f, HY_RESULT, 1000);
    cursor = 0;
    cr_assert(hy_result_next(&f->msg, &cursor, &r) && r.status == HY_RESULT_FAILED);
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

/* The manager's heartbeat is answered at once when the worker's own is due
   within half an interval, and not otherwise (PROTOCOL 4.3): idle workers'
   heartbeats then reach the manager together. */
Test(session, the_managers_heartbeat_is_answered_when_ours_is_half_due)
{
    fake_t *f = s_fake_new();
    char *extra[] = {"--heartbeat", "4000", NULL};
    pid_t w = s_worker(f, "1", extra, NULL);
    s_fake_welcome(f, s_session, 4000);
    int64_t welcomed = zclock_mono();
    /* Ours is due in 4 s: no answer. */
    s_fake_send(f, (hy_msg_t) {.command = HY_HEARTBEAT});
    cr_assert_eq(s_fake_recv(f, 300), -1, "a heartbeat answered 4 s before ours was due");
    /* 2.6 s on, ours is due in 1.4 s (later if the worker read the WELCOME
       late, up to 600 ms later): answered at once, long before it is. */
    zclock_sleep((int) (2600 - (zclock_mono() - welcomed)));
    s_fake_send(f, (hy_msg_t) {.command = HY_HEARTBEAT});
    cr_assert_eq(s_fake_recv(f, 1000), 0, "the heartbeat was not answered");
    cr_assert_eq(f->msg.command, HY_HEARTBEAT);
    cr_assert_lt(zclock_mono() - welcomed, 3800, "answered only when its own was due");
    /* Having just sent one, the next is not answered. */
    s_fake_send(f, (hy_msg_t) {.command = HY_HEARTBEAT});
    cr_assert_eq(s_fake_recv(f, 300), -1, "a heartbeat answered right after one was sent");
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

/* A worker with --heartbeat 10 beats every 10 ms on its own, whatever its
   timers' usual granularity: about 200 beats in two seconds, where 50 ms
   timers would give at most 40. This manager beats only every 100 ms, and the
   worker waits 50 of its intervals before it gives up on it. */
Test(session, a_worker_with_10_ms_heartbeats_beats_every_10_ms)
{
    fake_t *f = s_fake_new();
    char *extra[] = {"--heartbeat", "10", "--liveness", "50", NULL};
    pid_t w = s_worker(f, "1", extra, NULL);
    s_fake_expect(f, HY_HELLO, 5000);
    s_fake_send(f, (hy_msg_t) {.command = HY_WELCOME, .session = s_session, .heartbeat_ms = 10, .liveness = 50,
                                .idle_ms = 10});
    int beats = 0;
    int64_t start = zclock_mono(), next_beat = start + 100;
    while (zclock_mono() - start < 2000) {
        if (zclock_mono() >= next_beat) {
            s_fake_send(f, (hy_msg_t) {.command = HY_HEARTBEAT});
            next_beat += 100;
        }
        int rc = s_fake_recv(f, 10);
        cr_assert(rc == -1 || (rc == 0 && f->msg.command == HY_HEARTBEAT), "unexpected %s",
                  rc == 0 ? hy_command_name(f->msg.command) : "malformed message");
        beats += rc == 0;
    }
    cr_assert_geq(beats, 60, "%d heartbeats in two seconds from a worker beating every 10 ms", beats);
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

Test(session, goodbye_unknown_means_hello_at_once)
{
    fake_t *f = s_fake_new();
    pid_t w = s_worker(f, "1", NULL, NULL);
    s_fake_welcome(f, s_session, 10000);
    int64_t t0 = zclock_mono();
    s_fake_send(f, (hy_msg_t) {.command = HY_GOODBYE, .code = HY_BYE_UNKNOWN, .name = "say HELLO"});
    s_fake_expect(f, HY_HELLO, 2000);
    cr_assert_lt(zclock_mono() - t0, 1000);
    cr_assert_eq(t_stop(w), 0);
    s_fake_destroy(&f);
}

Test(session, another_version_is_logged_once_and_not_retried_soon)
{
    fake_t *f = s_fake_new();
    char *log = t_path(t_dir, "w.log");
    pid_t w = s_worker(f, "1", NULL, log);
    s_fake_expect(f, HY_HELLO, 5000);
    const uint8_t v1_goodbye[] = {'H', 'Y', 1, 7, 0};
    s_fake_send_raw(f, v1_goodbye, sizeof v1_goodbye);
    cr_assert(t_wait_for(log, "speaks another protocol version", NULL, 0, 2000));
    cr_assert(t_file_contains(log, "run the same hyades release on both"));
    cr_assert_eq(s_fake_recv(f, 1500), -1, "the worker came back at once");
    cr_assert_eq(t_stop(w), 0);
    free(log);
    s_fake_destroy(&f);
}

Test(session, refused_and_banned_workers_say_why_and_wait)
{
    const uint8_t codes[] = {HY_BYE_REFUSED, HY_BYE_BANNED, HY_BYE_VERSION};
    for (size_t i = 0; i < sizeof codes; i++) {
        fake_t *f = s_fake_new();
        char *log = t_path(t_dir, "w.log");
        unlink(log);
        pid_t w = s_worker(f, "1", NULL, log);
        s_fake_expect(f, HY_HELLO, 5000);
        s_fake_send(f, (hy_msg_t) {.command = HY_GOODBYE, .code = codes[i], .name = "because"});
        cr_assert(t_wait_for(log, codes[i] == HY_BYE_VERSION ? "another protocol version" : "because", NULL, 0,
                             2000), "code %u", codes[i]);
        cr_assert_eq(s_fake_recv(f, 1000), -1, "code %u: the worker came back at once", codes[i]);
        cr_assert_eq(t_stop(w), 0);
        free(log);
        s_fake_destroy(&f);
    }
}


Test(session, a_manager_that_reads_nothing_cannot_swell_a_worker)
{
    /* It sends units of large columns again and again and never reads a
       result: the worker's memory must stay bounded. */
    fake_t *f = s_fake_new_hwm(2);   /* so that nothing piles up on our side either */
    char *wlog = t_path(t_dir, "w.log");
    pid_t w = s_worker(f, "2", NULL, wlog);
    s_fake_welcome(f, s_session, 10000);
    char *argv[] = {"mandelbrot", "--width", "2000", "--height", "100000", "--max-iter", "1", NULL};
    const job_kind_t *kind = job_find("mandelbrot", 10);
    job_plan_t plan = {0};
    char err[256];
    cr_assert_eq(kind->plan(7, argv, &plan, stdout, err, sizeof err), JOB_OK, "%s", err);
    s_fake_send(f, (hy_msg_t) {.command = HY_JOB, .job = 4, .name = "mandelbrot", .data = plan.params,
                               .data_len = plan.params_len});
    job_plan_clear(kind, &plan);
    long peak = 0;
    for (int round = 0; round < 30; round++) {   /* 30,000 units of 100 kB: 3 GB if nothing held it back */
        s_fake_units(f, 4, (uint64_t) (round % 2) * 1000, 1000);
        zclock_sleep(100);
        long rss = t_status_kib(w, "VmRSS:");
        peak = rss > peak ? rss : peak;
    }
    cr_assert_gt(peak, 0);
    cr_assert_lt(peak, 256 * 1024, "the worker grew to %ld KiB", peak);
    cr_assert_eq(t_stop(w), 0);
    cr_log_info("worker peak RSS %ld KiB", peak);
    free(wlog);
    s_fake_destroy(&f);
}
