/* Trust under adversity, with real processes: one peer that lies, refuses,
   hangs, freezes, is stopped or restarted must not fail, stall or corrupt a
   job that the honest workers can finish. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/curve.h"
#include "common/protocol.h"
#include "jobs/mandelbrot.h"
#include "tests/helpers.h"

TestSuite(trust, .init = t_setup, .fini = t_teardown, .timeout = 90);

static const mandel_params_t s_small = {120, 90, -2, 0.5, -1, 1, 255, 1};

/* The PNG at path is the small view, exactly. */
static bool s_is_small_image(const char *path)
{
    uint8_t *want = t_mandelbrot_ref(s_small.width, s_small.height, s_small.xmin, s_small.xmax, s_small.ymin,
                                     s_small.ymax, s_small.max_iter);
    uint32_t w = 0, h = 0;
    uint8_t *got = t_read_png_gray(path, &w, &h);
    bool same = got && w == s_small.width && h == s_small.height && memcmp(got, want, (size_t) w * h) == 0;
    free(want), free(got);
    return same;
}

/* Milliseconds on the monotonic clock. */
static int64_t s_now(void) { return zclock_mono(); }

/* ------------------------------------------------------------ capabilities */

/* A flood of peers that cannot compute the job, while it waits: the line
   that says why it waits changes with each, and is rate-limited (it was
   one line a join, unlimited). */
Test(trust, a_flood_of_joins_while_a_job_waits_does_not_flood_the_log)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "noop", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    enum { PEERS = 100 };
    zsock_t *peers[PEERS];
    for (int k = 0; k < PEERS; k++) {
        peers[k] = t_peer_new(endpoint, 5000);
        char name[32];
        snprintf(name, sizeof name, "pi-%d", k);
        cr_assert_eq(t_peer_hello(peers[k], name, 1, "pi"), 0);
        hy_msg_t msg;
        zframe_t *frame;
        cr_assert(t_peer_expect(peers[k], HY_WELCOME, &msg, &frame), "peer %d got no WELCOME", k);
        zframe_destroy(&frame);
    }
    kill(manager, SIGTERM);   /* (each had its WELCOME: every join was seen) */
    t_wait(manager, 10000);
    for (int k = 0; k < PEERS; k++)
        zsock_destroy(&peers[k]);
    int lines = t_count_lines(mlog, "is waiting for workers");
    cr_assert(lines >= 1 && lines <= 12, "%d lines saying why the job waits, for %d joins", lines, PEERS);
    free(mlog);
}

Test(trust, a_worker_gets_only_the_kinds_it_computes)
{
    char endpoint[256], line[128];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "k.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "mandelbrot", "--width", "120", "--height",
                    "90", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *pi_only[] = {"--kinds", "pi", NULL};
    pid_t pi = t_worker(endpoint, "pionly", wlog, pi_only, NULL);
    /* Alone, it is not enough: the job waits and says which kind is missing. */
    cr_assert(t_wait_for(mlog, "waiting for workers that compute mandelbrot", NULL, 0, 10000),
              "the wait does not say which kind is missing");
    usleep(500000);
    cr_assert_not(t_file_contains(mlog, "job mandelbrot started"), "the job started on a worker that cannot compute it");
    pid_t full = t_worker(endpoint, "full", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job failed");
    cr_assert(s_is_small_image(out), "the output differs");
    snprintf(line, sizeof line, "worker %-24s 0 units", "pionly");
    cr_assert(t_file_contains(mlog, line), "the pi-only worker got mandelbrot units");
    cr_assert(t_file_contains(mlog, "kinds pi,"), "the join line does not list the kinds");
    cr_assert_eq(t_stop(pi), 0);
    cr_assert_eq(t_stop(full), 0);
    free(mlog), free(wlog), free(out);
}

Test(trust, a_worker_refuses_an_unknown_kind_list)
{
    char *log = t_path(t_dir, "w.log");
    char *argv[] = {(char *) t_bin("hyades-worker"), "--connect", "tcp://127.0.0.1:1", "--kinds", "pi,mandelbrto",
                    NULL};
    cr_assert_eq(t_run(argv, log, 10000), 2);
    cr_assert(t_file_contains(log, "mandelbrto"), "the error does not name the bad kind");
    free(log);
}

/* ------------------------------------------------------------ blame the worker */

Test(trust, a_refused_unit_goes_to_another_worker)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "r.json");
    /* Static: the first worker owns the even units, so unit 4 is surely its. */
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--schedule", "static", "--heartbeat",
                    "250", "--json", json, "noop", "--units", "40", "--sleep-ms", "5", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *refuse[] = {"HYADES_FAILPOINTS=refuse:4", NULL};
    pid_t bad = t_worker(endpoint, "refuser", wlog, NULL, refuse);
    cr_assert(t_wait_for(mlog, "worker refuser joined", NULL, 0, 10000));
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "one refusing worker failed the job");
    cr_assert(t_file_contains(mlog, "unit 4 failed on worker refuser"));
    cr_assert_eq(t_json_number(json, "done"), 40);
    cr_assert_eq(t_json_number(json, "failed"), 1);
    cr_assert_eq(t_stop(bad), 0);
    cr_assert_eq(t_stop(good), 0);
    free(mlog), free(wlog), free(json);
}

Test(trust, a_unit_refused_by_every_worker_fails_the_job_naming_it)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "noop", "--units", "10", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *refuse[] = {"HYADES_FAILPOINTS=refuse:4", NULL};
    pid_t bad = t_worker(endpoint, "refuser", wlog, NULL, refuse);
    int64_t t0 = s_now();
    cr_assert_eq(t_wait(manager, 20000), 1, "the job did not fail");
    cr_assert_lt(s_now() - t0, 20000);
    cr_assert(t_file_contains(mlog, "unit 4 failed on every worker"), "the failure does not name unit 4");
    cr_assert_eq(t_stop(bad), 0);
    free(mlog), free(wlog);
}

Test(trust, a_worker_that_keeps_failing_is_excluded_and_named)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "x.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--schedule", "static", "--heartbeat",
                    "250", "--json", json, "noop", "--units", "60", "--sleep-ms", "5", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *refuse[] = {"HYADES_FAILPOINTS=refuse:0,refuse:2,refuse:4,refuse:6", NULL};
    pid_t bad = t_worker(endpoint, "refuser", wlog, NULL, refuse);
    cr_assert(t_wait_for(mlog, "worker refuser joined", NULL, 0, 10000));
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job failed");
    cr_assert(t_file_contains(mlog, "worker refuser excluded from job noop: failed 3 units"));
    cr_assert(t_file_contains(mlog, "EXCLUDED"), "the summary does not name the excluded worker");
    cr_assert(t_file_contains(json, "\"excluded\":\"failed 3 units\""));
    cr_assert_eq(t_json_number(json, "done"), 60);
    cr_assert_eq(t_stop(bad), 0);
    cr_assert_eq(t_stop(good), 0);
    free(mlog), free(wlog), free(json);
}

/* ------------------------------------------------------------ no unit stuck */

Test(trust, a_hung_worker_under_static_scheduling_holds_nothing_for_good)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "h.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--schedule", "static", "--heartbeat",
                    "250", "--straggler-ms", "200", "--json", json, "noop", "--units", "200", "--sleep-ms", "2",
                    NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *hang[] = {"HYADES_FAILPOINTS=hang:4", NULL};
    pid_t hung = t_worker(endpoint, "hung", wlog, NULL, hang);
    cr_assert(t_wait_for(mlog, "worker hung joined", NULL, 0, 10000));
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job did not complete");
    cr_assert(t_file_contains(mlog, "worker hung has answered nothing"), "the hung worker was not noticed");
    cr_assert(t_file_contains(mlog, "unit 4 out on worker hung"), "the hung unit was not copied");
    cr_assert_eq(t_json_number(json, "done"), 200);
    cr_assert_eq(t_stop(hung), 0);
    cr_assert_eq(t_stop(good), 0);
    free(mlog), free(wlog), free(json);
}

Test(trust, units_queued_behind_a_hung_unit_are_taken_back_before_anything_completed)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "h.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "--straggler-ms", "200", "--json", json,
                    "noop", "--units", "3", "--sleep-ms", "10", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *hang[] = {"HYADES_FAILPOINTS=hang:0", NULL};
    pid_t hung = t_worker(endpoint, "hung", wlog, NULL, hang);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    /* It holds all three units, hangs in the first; the second worker idles. */
    usleep(200000);
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 20000), 0, "the job stayed stuck behind the hung unit");
    /* The idle worker takes the queued units over (rebalanced), or the
       stalled worker's queue is taken back, whichever comes first. */
    cr_assert(t_json_number(json, "rebalanced") == 2 || t_file_contains(mlog, "taking back the 2 units queued there"),
              "the units queued behind the hung one stayed there");
    cr_assert_eq(t_json_number(json, "done"), 3);
    cr_assert_eq(t_stop(hung), 0);
    cr_assert_eq(t_stop(good), 0);
    free(mlog), free(wlog), free(json);
}

Test(trust, a_frozen_worker_that_announced_a_ten_minute_heartbeat_is_lost_in_the_managers_time)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "f.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--schedule", "static", "--heartbeat",
                    "250", "--json", json, "noop", "--units", "100", "--sleep-ms", "20", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *lazy[] = {"--heartbeat", "600000", NULL};
    pid_t frozen = t_worker(endpoint, "frozen", wlog, lazy, NULL);
    cr_assert(t_wait_for(mlog, "worker frozen joined", NULL, 0, 10000));
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    usleep(100000);
    kill(frozen, SIGSTOP);
    int64_t t0 = s_now();
    cr_assert_eq(t_wait(manager, 20000), 0, "the job did not complete");
    cr_assert_lt(s_now() - t0, 15000);
    cr_assert(t_file_contains(mlog, "worker frozen lost (silent for 750 ms"));
    cr_assert_eq(t_json_number(json, "done"), 100);
    kill(frozen, SIGCONT);
    t_stop(frozen);
    cr_assert_eq(t_stop(good), 0);
    free(mlog), free(wlog), free(json);
}

/* Before the job starts, only silence needs the roster; the manager walks it
   no more than needed, but a worker frozen then is still lost in time: the
   first one to join an empty roster, and one joining beside a live one. */
Test(trust, workers_frozen_while_the_job_waits_for_more_are_lost_and_not_counted)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "f.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "3", "--heartbeat", "100", "--json", json,
                    "noop", "--units", "20", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    usleep(500000);   /* timers run with nobody there */
    pid_t first = t_worker(endpoint, "first", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "worker first joined", NULL, 0, 10000));
    kill(first, SIGSTOP);
    cr_assert(t_wait_for(mlog, "worker first lost (silent for 1200 ms)", NULL, 0, 5000));   /* idle: 3 x 400 */
    pid_t live = t_worker(endpoint, "live", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "worker live joined", NULL, 0, 10000));
    usleep(300000);
    pid_t second = t_worker(endpoint, "second", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "worker second joined", NULL, 0, 10000));
    kill(second, SIGSTOP);
    cr_assert(t_wait_for(mlog, "worker second lost (silent for 1200 ms)", NULL, 0, 5000));
    cr_assert_not(t_file_contains(mlog, "job noop started"), "started with a lost worker counted");
    pid_t last = t_worker(endpoint, "last", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "worker last joined", NULL, 0, 10000));
    usleep(300000);
    cr_assert_not(t_file_contains(mlog, "job noop started"), "started with a lost worker counted");
    pid_t third = t_worker(endpoint, "third", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 20000), 0, "the job did not complete");
    cr_assert_eq(t_json_number(json, "done"), 20);
    kill(first, SIGCONT);
    kill(second, SIGCONT);
    t_stop(first);
    t_stop(second);
    cr_assert_eq(t_stop(live), 0);
    cr_assert_eq(t_stop(last), 0);
    cr_assert_eq(t_stop(third), 0);
    free(mlog), free(wlog), free(json);
}

/* The manager stopped for longer than its workers' silence allowance: their
   heartbeats wait in the socket, and they are not taken for silent when it
   goes on, before the job or during it (a job used to fail when units
   counted losses that never were). */
Test(trust, a_paused_manager_does_not_take_its_workers_for_silent)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "p.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "3", "--heartbeat", "200", "--max-attempts",
                    "2", "--json", json, "noop", "--units", "6", "--sleep-ms", "1500", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *patient[] = {"--threads", "1", "--liveness", "100", NULL};   /* they wait for the manager */
    pid_t w1 = t_worker(endpoint, "w1", wlog, patient, NULL), w2 = t_worker(endpoint, "w2", wlog, patient, NULL);
    cr_assert(t_wait_for(mlog, "worker w2 joined", NULL, 0, 10000));
    cr_assert(t_wait_for(mlog, "worker w1 joined", NULL, 0, 10000));
    kill(manager, SIGSTOP);
    usleep(3500000);   /* longer than its allowance for idle workers (3 x 800 ms) */
    kill(manager, SIGCONT);
    usleep(800000);
    cr_assert_not(t_file_contains(mlog, "lost (silent"), "a worker was lost while the manager itself was stopped");
    pid_t w3 = t_worker(endpoint, "w3", wlog, patient, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    t_freeze_times(manager, 2, 500, 1200);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job failed after the manager was paused");
    cr_assert_not(t_file_contains(mlog, "lost (silent"), "a worker was lost while the manager itself was stopped");
    cr_assert_eq(t_json_number(json, "done"), 6);
    cr_assert_eq(t_json_number(json, "reissued"), 0);
    cr_assert(t_file_contains(mlog, "this manager stood still for"), "the manager did not say it stood still");
    cr_assert_eq(t_stop(w1), 0);
    cr_assert_eq(t_stop(w2), 0);
    cr_assert_eq(t_stop(w3), 0);
    free(mlog), free(wlog), free(json);
}

/* ------------------------------------------------------------ orderly stops */

Test(trust, a_worker_stopped_three_times_fails_nothing)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "s.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "--max-attempts", "2", "--json", json,
                    "noop", "--units", "300", "--sleep-ms", "40", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t steady = t_worker(endpoint, "steady", wlog, NULL, NULL);
    char *two[] = {"--threads", "2", NULL};
    for (int i = 1; i <= 3; i++) {
        pid_t w = t_worker(endpoint, "restarted", wlog, two, NULL);
        for (int64_t until = s_now() + 10000; t_count_lines(mlog, "worker restarted joined") < i; usleep(10000))
            cr_assert_lt(s_now(), until, "restart %d did not join", i);
        usleep(300000);
        kill(w, SIGTERM);
        cr_assert_eq(t_wait(w, 10000), 0, "the worker did not stop cleanly");
    }
    cr_assert_eq(t_wait(manager, 30000), 0, "orderly stops failed the job");
    cr_assert_eq(t_count_lines(mlog, "said goodbye: stopping"), 3);
    cr_assert_eq(t_json_number(json, "done"), 300);
    cr_assert_eq(t_stop(steady), 0);
    free(mlog), free(wlog), free(json);
}

Test(trust, a_worker_stops_within_seconds_during_long_units)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "noop", "--units", "4", "--sleep-ms",
                    "30000", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *two[] = {"--threads", "2", NULL};
    pid_t w = t_worker(endpoint, "busy", wlog, two, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    usleep(500000);
    int64_t t0 = s_now();
    kill(w, SIGTERM);
    int rc = t_wait(w, 10000);
    cr_assert_eq(rc, 0, "the worker was not gone within 10 s of SIGTERM (status %d)", rc);
    cr_assert_lt(s_now() - t0, 10000);
    cr_assert(t_wait_for(mlog, "worker busy lost (said goodbye: stopping", NULL, 0, 5000));
    kill(manager, SIGINT);
    cr_assert_eq(t_wait(manager, 10000), 1);
    free(mlog), free(wlog);
}

Test(trust, a_second_signal_stops_a_worker_at_once)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "noop", "--units", "2", "--sleep-ms",
                    "30000", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t w = t_worker(endpoint, "busy", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    usleep(300000);
    int64_t t0 = s_now();
    kill(w, SIGTERM);
    usleep(100000);
    kill(w, SIGTERM);
    cr_assert_neq(t_wait(w, 3000), -1, "a second signal did not stop the worker at once");
    cr_assert_lt(s_now() - t0, 3000);
    kill(manager, SIGINT);
    t_wait(manager, 10000);
    free(mlog), free(wlog);
}

Test(trust, a_new_manager_does_not_wait_behind_an_interrupted_ones_work)
{
    char *sock = t_path(t_dir, "m.sock"), endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s", sock);
    char *mlog = t_path(t_dir, "m1.log"), *m2log = t_path(t_dir, "m2.log"), *wlog = t_path(t_dir, "w.log");
    char *first[] = {"--bind", endpoint, "--heartbeat", "250", "noop", "--units", "10", "--sleep-ms", "30000", NULL};
    pid_t m1 = t_manager(first, mlog, NULL, NULL, 0);
    pid_t w = t_worker(endpoint, "w", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    usleep(300000);
    kill(m1, SIGINT);
    cr_assert_eq(t_wait(m1, 10000), 1);
    char *second[] = {"--bind", endpoint, "--heartbeat", "250", "noop", "--units", "1", "--sleep-ms", "1", NULL};
    int64_t t0 = s_now();
    pid_t m2 = t_manager(second, m2log, NULL, NULL, 0);
    cr_assert_eq(t_wait(m2, 15000), 0, "the second manager's job failed or waited");
    cr_assert_lt(s_now() - t0, 8000, "the one-unit job waited behind abandoned work");
    cr_assert_eq(t_stop(w), 0);
    free(sock), free(mlog), free(m2log), free(wlog);
}

/* ------------------------------------------------------------ supervised local workers */

/* Starts a manager with args (two local workers) and returns one of its
   workers, after_us into the job; the manager in *manager. */
static pid_t s_a_local_worker_midway(char *const args[], const char *log, pid_t *manager, useconds_t after_us)
{
    *manager = t_manager(args, log, NULL, NULL, 0);
    cr_assert(t_wait_for(log, "job noop started", NULL, 0, 10000));
    usleep(after_us);
    pid_t kids[8];
    cr_assert_eq(t_children(*manager, kids, 8), 2);
    return kids[0];
}

/* The same, that worker killed; the manager's exit status. */
static int s_kill_a_local_worker_midway(char *const args[], const char *log)
{
    pid_t manager;
    kill(s_a_local_worker_midway(args, log, &manager, 300000), SIGKILL);
    return t_wait(manager, 60000);
}

Test(trust, a_killed_local_worker_is_restarted)
{
    char *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "l.json");
    char *args[] = {"--local", "2", "--heartbeat", "250", "--json", json, "noop", "--units", "150", "--sleep-ms",
                    "20", NULL};
    cr_assert_eq(s_kill_a_local_worker_midway(args, log), 0, "the job failed");
    cr_assert(t_file_contains(log, "restarting local worker"));
    cr_assert_geq(t_json_number(json, "restarts"), 1);
    cr_assert_eq(t_json_number(json, "done"), 150);
    free(log), free(json);
}

Test(trust, a_poison_unit_early_in_a_batch_spoils_only_its_job)
{
    char *batch = t_path(t_dir, "jobs.txt"), *log = t_path(t_dir, "b.log");
    FILE *f = fopen(batch, "w");
    fprintf(f, "noop --units 10\nnoop --units 3\npi --units 3 --samples 3000\n");
    fclose(f);
    char *args[] = {"--local", "2", "--heartbeat", "250", "--batch", batch, NULL};
    char *env[] = {"HYADES_FAILPOINTS=crash:3", NULL};
    pid_t manager = t_manager(args, log, env, NULL, 0);
    cr_assert_eq(t_wait(manager, 60000), 1, "the batch should report its failed job");
    cr_assert(t_file_contains(log, "line 1: noop FAILED: unit 3 was lost"), "the poison job did not fail on unit 3");
    cr_assert(t_file_contains(log, "line 2: noop ok"), "the job after the poison one failed");
    cr_assert(t_file_contains(log, "line 3: pi ok"), "the last job failed");
    free(batch), free(log);
}

/* A worker whose compute threads hang for good in one job of a batch (deaf
   to cancels, as a stuck kernel) cannot hold up the jobs after it: its
   units go to the other worker, job after job, and every output is right. */
Test(trust, threads_hung_in_one_job_of_a_batch_hold_up_no_later_job)
{
    char endpoint[256];
    char *batch = t_path(t_dir, "jobs.txt"), *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *out1 = t_path(t_dir, "b1.png"), *out3 = t_path(t_dir, "b3.png");
    FILE *f = fopen(batch, "w");
    fprintf(f, "mandelbrot --width 60 --height 40 -o %s\nnoop --units 40 --sleep-ms 10\n"
               "mandelbrot --width 61 --height 41 --columns-per-unit 3 -o %s\n", out1, out3);
    fclose(f);
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "--straggler-ms", "200",
                    "--batch", batch, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *two[] = {"--threads", "2", NULL};
    /* the first units of every job, some of which it gets */
    char *hang[] = {"HYADES_FAILPOINTS=hang:0,hang:1,hang:2,hang:3,hang:4,hang:5,hang:6,hang:7", NULL};
    pid_t stuck = t_worker(endpoint, "stuck", wlog, two, hang);
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 60000), 0, "the batch failed or hung");
    cr_assert(t_file_contains(mlog, "line 1: mandelbrot ok") && t_file_contains(mlog, "line 2: noop ok")
              && t_file_contains(mlog, "line 3: mandelbrot ok"), "a job of the batch failed");
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(out1, &w, &h), *ref = t_mandelbrot_ref(60, 40, -2, 0.5, -1, 1, 255);
    cr_assert(png && w == 60 && h == 40 && memcmp(png, ref, 60 * 40) == 0, "the first image is wrong");
    free(png), free(ref);
    png = t_read_png_gray(out3, &w, &h), ref = t_mandelbrot_ref(61, 41, -2, 0.5, -1, 1, 255);
    cr_assert(png && w == 61 && h == 41 && memcmp(png, ref, 61 * 41) == 0, "the last image is wrong");
    free(png), free(ref);
    cr_assert(t_file_contains(wlog, "hanging at unit"), "the worker's threads did not hang");
    t_stop(stuck), t_stop(good);
    free(batch), free(mlog), free(wlog), free(out1), free(out3);
}

/* ------------------------------------------------------------ verified results */

Test(trust, verify_catches_a_lying_worker_and_names_it)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "v.json");
    char *out = t_path(t_dir, "v.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "3", "--heartbeat", "250", "--verify", "--json",
                    json, "mandelbrot", "--width", "120", "--height", "90", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *lie[] = {"HYADES_FAILPOINTS=corrupt:all", NULL};
    pid_t liar = t_worker(endpoint, "liar", wlog, NULL, lie);
    pid_t h1 = t_worker(endpoint, "honest1", wlog, NULL, NULL);
    pid_t h2 = t_worker(endpoint, "honest2", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 60000), 0, "the job failed");
    cr_assert(s_is_small_image(out), "a lie reached the output");
    cr_assert(t_file_contains(mlog, "worker liar excluded"), "the liar was not named");
    cr_assert(t_file_contains(json, "\"name\":\"liar\""));
    cr_assert_geq(t_json_number(json, "mismatches"), 1);
    cr_assert_eq(t_json_number(json, "verified"), 120);
    for (pid_t *p = (pid_t[]) {liar, h1, h2, 0}; *p; p++)
        cr_assert_eq(t_stop(*p), 0);
    free(mlog), free(wlog), free(json), free(out);
}

Test(trust, without_verify_a_lying_worker_corrupts_the_output)
{
    /* The counterpart of the test above: the corruption is real. */
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "nv.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--schedule", "static", "--heartbeat",
                    "250", "mandelbrot", "--width", "120", "--height", "90", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *lie[] = {"HYADES_FAILPOINTS=corrupt:all", NULL};
    pid_t liar = t_worker(endpoint, "liar", wlog, NULL, lie);
    pid_t h1 = t_worker(endpoint, "honest1", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 60000), 0, "the job failed");
    cr_assert_not(s_is_small_image(out), "a corrupting worker left no trace: the failpoint does nothing");
    cr_assert_eq(t_stop(liar), 0);
    cr_assert_eq(t_stop(h1), 0);
    free(mlog), free(wlog), free(out);
}

/* Waits until the journal at path holds at least bytes more than its
   header: results were accepted (and flushed). */
static bool s_journal_grew(const char *path, off_t bytes, int timeout_ms)
{
    struct stat st;
    off_t header = 0;
    for (int64_t end = s_now() + timeout_ms; s_now() < end; usleep(5000)) {
        if (stat(path, &st) != 0 || st.st_size == 0)
            continue;
        if (!header)
            header = st.st_size;
        else if (st.st_size >= header + bytes)
            return true;
    }
    return false;
}

/* A liar caught by sampled verification fails the job; the results it
   had slipped through unchecked must not come back from the journal when
   the job is run again: the journal is removed, and the rerun is exact.
   The liar starts alone, so its first results in the journal are ones it
   returned unchecked; the honest workers that catch it come after. */
Test(trust, a_liar_caught_by_sampling_leaves_nothing_in_the_journal)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "l.png");
    char *journal = t_path(t_dir, "l.journal");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--local", "0", "--verify", "0.5", "--journal", journal,
                    "mandelbrot", "--width", "200", "--height", "20", "--max-iter", "80", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *liar_env[] = {"HYADES_FAILPOINTS=corrupt:all,sleep:5", NULL}, *slow[] = {"HYADES_FAILPOINTS=sleep:5", NULL};
    pid_t liar = t_worker(endpoint, "liar", wlog, NULL, liar_env);
    cr_assert(s_journal_grew(journal, 1, 30000), "the liar's unchecked results never reached the journal");
    pid_t h1 = t_worker(endpoint, "h1", wlog, NULL, slow), h2 = t_worker(endpoint, "h2", wlog, NULL, slow);
    cr_assert_eq(t_wait(manager, 60000), 1, "the job with a liar caught by sampling did not fail");
    cr_assert(t_file_contains(mlog, "accepted unchecked"), "the liar was not caught with unchecked results");
    cr_assert(t_file_contains(mlog, "removed the journal"));
    cr_assert_neq(access(journal, F_OK), 0, "the journal with the liar's results is still there");
    for (pid_t *p = (pid_t[]) {liar, h1, h2, 0}; *p; p++)
        t_stop(*p);
    /* Run again as the message says: the image is the reference. */
    char *again[] = {"--local", "2", "--verify", "--journal", journal, "mandelbrot", "--width", "200", "--height",
                     "20", "--max-iter", "80", "-o", out, NULL};
    cr_assert_eq(t_wait(t_manager(again, mlog, NULL, NULL, 0), 60000), 0);
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(out, &w, &h), *ref = t_mandelbrot_ref(200, 20, -2, 0.5, -1, 1, 80);
    cr_assert(png && w == 200 && h == 20 && memcmp(png, ref, 200 * 20) == 0, "the rerun's image is wrong");
    free(png), free(ref), free(mlog), free(wlog), free(out), free(journal);
}

/* A journal serves only a run with its own --verify: results accepted
   unchecked (or without --verify) cannot stand in a run that checks more. */
Test(trust, a_journal_resumes_only_under_its_own_verify)
{
    char *log = t_path(t_dir, "m.log"), *journal = t_path(t_dir, "v.journal");
    char *plain[] = {"--local", "2", "--journal", journal, "noop", "--units", "20", NULL};
    cr_assert_eq(t_wait(t_manager(plain, log, NULL, NULL, 0), 30000), 0);
    char *checked[] = {"--local", "2", "--verify", "--journal", journal, "noop", "--units", "20", NULL};
    cr_assert_eq(t_wait(t_manager(checked, log, NULL, NULL, 0), 30000), 2, "a journal without --verify was resumed");
    cr_assert(t_file_contains(log, "written without --verify"));
    unlink(journal);
    char *half[] = {"--local", "2", "--verify", "0.5", "--journal", journal, "noop", "--units", "20", NULL};
    cr_assert_eq(t_wait(t_manager(half, log, NULL, NULL, 0), 30000), 0);
    cr_assert_eq(t_wait(t_manager(checked, log, NULL, NULL, 0), 30000), 2, "a journal of --verify 0.5 was resumed");
    cr_assert(t_file_contains(log, "written with --verify 0.5"));
    cr_assert_eq(t_wait(t_manager(half, log, NULL, NULL, 0), 30000), 0, "the same --verify could not resume it");
    free(log), free(journal);
}

/* A liar caught in a run resumed from a journal of sampled verification:
   which of the journal's units it had computed, unchecked, is not known;
   the job fails and the journal goes. */
Test(trust, a_liar_caught_after_a_resume_under_sampling_takes_the_journal_with_it)
{
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/m.sock", t_dir);
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *journal = t_path(t_dir, "r.journal");
    /* (nearly every unit checked: the liar's noop payloads, wrong, are refused
       when unchecked, and three refusals would exclude it before it is caught) */
    char *args[] = {"--bind", endpoint, "--local", "0", "--min-workers", "2", "--verify", "0.99", "--heartbeat", "250",
                    "--journal", journal, "noop", "--units", "300", "--sleep-ms", "10", NULL};
    pid_t manager = t_manager(args, mlog, NULL, NULL, 0);
    pid_t h1 = t_worker(endpoint, "h1", wlog, NULL, NULL), h2 = t_worker(endpoint, "h2", wlog, NULL, NULL);
    cr_assert(s_journal_grew(journal, 1, 30000), "no result reached the journal");
    kill(manager, SIGKILL);
    t_wait(manager, 10000);
    /* The same command again, and a liar among the workers. */
    manager = t_manager(args, mlog, NULL, NULL, 0);
    char *liar_env[] = {"HYADES_FAILPOINTS=corrupt:all", NULL};
    pid_t liar = t_worker(endpoint, "liar", wlog, NULL, liar_env);
    cr_assert_eq(t_wait(manager, 60000), 1, "the job with a liar and a resumed journal did not fail");
    cr_assert(t_file_contains(mlog, "came from the journal"), "not failed for the journal's units");
    cr_assert_neq(access(journal, F_OK), 0, "the journal is still there");
    for (pid_t *p = (pid_t[]) {h1, h2, liar, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(journal);
}

/* A local worker killed during a verified job is started again; the units
   the other one answered wait for its second opinion instead of failing
   the job (the restarted worker is a new identity). */
Test(trust, under_verify_a_killed_local_worker_is_waited_for)
{
    char *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "k.json");
    char *args[] = {"--local", "2", "--verify", "--heartbeat", "250", "--json", json, "noop", "--units", "120",
                    "--sleep-ms", "10", NULL};
    cr_assert_eq(s_kill_a_local_worker_midway(args, log), 0, "the verified job failed when a local worker was killed");
    cr_assert_eq(t_json_number(json, "done"), 120);
    cr_assert_eq(t_json_number(json, "verified"), 120);
    free(log), free(json);
}

/* A local worker paused long enough to be lost is frozen as far as the
   job can tell: it is started again rather than waited for or blamed, and
   a verified job completes. */
Test(trust, under_verify_a_paused_local_worker_is_started_again)
{
    char *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "p.json");
    char *args[] = {"--local", "2", "--verify", "--heartbeat", "100", "--json", json, "noop", "--units", "200",
                    "--sleep-ms", "20", NULL};
    pid_t manager, paused = s_a_local_worker_midway(args, log, &manager, 400000);
    kill(paused, SIGSTOP);
    cr_assert(t_wait_for(log, " lost (silent", NULL, 0, 10000), "the paused worker was not lost");
    usleep(1500000);
    kill(paused, SIGCONT);
    cr_assert_eq(t_wait(manager, 60000), 0, "the verified job failed when a local worker was paused");
    cr_assert_eq(t_json_number(json, "verified"), 200);
    cr_assert(t_file_contains(log, "restarting local worker"));
    free(log), free(json);
}

/* A remote worker that calls itself local-1 is not the local worker: while
   it is connected, the real local-1, paused long enough to be lost, is
   still started again (the name alone used to count as local-1 being
   there). */
Test(trust, a_remote_worker_named_like_a_local_one_does_not_stand_in_for_it)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "i.json");
    char *args[] = {"--local", "1", "--bind", "tcp://127.0.0.1:0", "--heartbeat", "100", "--json", json, "noop",
                    "--units", "300", "--sleep-ms", "20", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *one[] = {"--threads", "1", NULL};
    pid_t impostor = t_worker(endpoint, "local-1", wlog, one, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    for (int i = 0; i < 500 && t_count_lines(mlog, "worker local-1 joined") < 2; i++)
        usleep(20000);
    cr_assert_eq(t_count_lines(mlog, "worker local-1 joined"), 2, "both workers named local-1 should have joined");
    pid_t kids[4];
    cr_assert_eq(t_children(manager, kids, 4), 1);
    kill(kids[0], SIGSTOP);
    cr_assert(t_wait_for(mlog, "worker local-1 lost (silent", NULL, 0, 10000));
    cr_assert(t_wait_for(mlog, "restarting local worker 1", NULL, 0, 3000),
              "the paused local worker was not started again while its namesake was connected");
    kill(kids[0], SIGCONT);
    cr_assert_eq(t_wait(manager, 60000), 0);
    cr_assert_eq(t_json_number(json, "done"), 300);
    cr_assert_eq(t_stop(impostor), 0);
    free(mlog), free(wlog), free(json);
}

/* A local worker only late, lost to silence but back on a new connection
   soon after, is not killed: that is kept for one still gone after a grace
   (a healthy worker was SIGKILLed when a loaded machine delayed it past a
   short --heartbeat). */
Test(trust, a_local_worker_lost_but_soon_back_is_not_killed)
{
    char *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "b.json");
    char *args[] = {"--local", "2", "--heartbeat", "200", "--liveness", "5", "--json", json, "noop", "--units",
                    "200", "--sleep-ms", "20", NULL};
    pid_t manager, late = s_a_local_worker_midway(args, log, &manager, 300000);
    kill(late, SIGSTOP);
    cr_assert(t_wait_for(log, " lost (silent for 1000 ms", NULL, 0, 10000), "the stopped worker was not lost");
    usleep(150000);   /* lost at 1000 ms; the grace ends at 2000 */
    kill(late, SIGCONT);
    cr_assert_eq(t_wait(manager, 60000), 0);
    cr_assert_eq(t_json_number(json, "done"), 200);
    cr_assert_not(t_file_contains(log, "killed by signal"), "the late local worker was killed");
    cr_assert_eq(t_json_number(json, "restarts"), 0);
    free(log), free(json);
}

Test(trust, verify_on_a_fraction_checks_about_that_share)
{
    char *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "f.json");
    char *args[] = {"--local", "2", "--verify", "0.25", "--json", json, "noop", "--units", "400", NULL};
    cr_assert_eq(t_wait(t_manager(args, log, NULL, NULL, 0), 30000), 0);
    long long verified = t_json_number(json, "verified");
    cr_assert(verified > 50 && verified < 150, "verified %lld of 400 units at 0.25", verified);
    cr_assert_eq(t_json_number(json, "done"), 400);
    char *bad[] = {"--local", "2", "--verify", "1.5", "noop", NULL};
    cr_assert_eq(t_wait(t_manager(bad, log, NULL, NULL, 0), 10000), 2);
    char *one[] = {"--local", "1", "--verify", "noop", NULL};
    cr_assert_eq(t_wait(t_manager(one, log, NULL, NULL, 0), 10000), 2);
    free(log), free(json);
}

/* ------------------------------------------------------------ rogue peers */

/* A result sent again for a unit its sender answered (a replay) is for a
   unit it no longer holds: unsolicited (PROTOCOL 4.2), not a duplicate. */
Test(trust, a_replayed_result_is_unsolicited)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *json = t_path(t_dir, "r.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--json", json, "noop", "--units", "2", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    zsock_t *peer = t_peer_new(endpoint, 5000);
    cr_assert_eq(t_peer_hello(peer, "replayer", 1, "noop"), 0);
    hy_msg_t msg;
    zframe_t *frame;
    cr_assert(t_peer_expect(peer, HY_UNITS, &msg, &frame), "the peer got no units");
    uint64_t job = msg.job, unit = hy_unit_at(&msg, 0);
    zframe_destroy(&frame);
    uint8_t echo[8];
    for (int i = 0; i < 8; i++)
        echo[i] = (uint8_t) (unit >> (56 - 8 * i));
    for (int i = 0; i < 3; i++)   /* its answer, and the same twice more */
        cr_assert_eq(t_peer_result(peer, job, unit, HY_RESULT_OK, echo, sizeof echo), 0);
    char *wlog = t_path(t_dir, "w.log");
    pid_t worker = t_worker(endpoint, "w", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job failed");
    zsock_destroy(&peer);
    cr_assert_eq(t_json_number(json, "unsolicited"), 2);
    cr_assert_eq(t_json_number(json, "duplicates"), 0);
    t_stop(worker);
    free(mlog), free(json), free(wlog);
}

Test(trust, results_for_units_a_peer_was_not_given_are_dropped)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *json = t_path(t_dir, "r.json"), *out = t_path(t_dir, "r.png");
    /* (a window of 3 s: the rogue never beats, and its lies must come
       before it is lost, whatever the local worker's start costs) */
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--local", "1", "--min-workers", "2", "--heartbeat", "1000",
                    "--json", json, "mandelbrot", "--width", "120", "--height", "90", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    zsock_t *rogue = t_peer_new(endpoint, 5000);
    cr_assert_eq(t_peer_hello(rogue, "rogue", 1, "mandelbrot"), 0);
    hy_msg_t msg;
    zframe_t *frame;
    cr_assert(t_peer_expect(rogue, HY_UNITS, &msg, &frame), "the rogue got no units");
    uint64_t job = msg.job;
    bool given[120] = {false};
    do {   /* every unit it was given (it answers none, so no more come) */
        for (size_t i = 0; i < msg.unit_count; i++)
            given[hy_unit_at(&msg, i) % 120] = true;
        zframe_destroy(&frame);
        zsock_set_rcvtimeo(rogue, 100);   /* well below the heartbeat: it must not be lost meanwhile */
    } while (t_peer_expect(rogue, HY_UNITS, &msg, &frame));
    uint64_t other = 0;
    while (given[other])
        other++;
    /* Grey columns for every unit of the job but those it was given, in batches. */
    uint8_t grey[90];
    memset(grey, 0x80, sizeof grey);
    hy_result_t batch[30];
    size_t n = 0, sent = 0;
    for (uint64_t u = 0; u < 120; u++) {
        if (given[u] && u != 119)
            continue;
        if (!given[u])
            batch[n++] = (hy_result_t) {.unit = u, .status = HY_RESULT_OK, .data = grey, .len = sizeof grey};
        if (n == 30 || (u == 119 && n > 0)) {
            hy_msg_t lie = {.command = HY_RESULT, .job = job, .results = batch, .result_count = n};
            cr_assert_eq(hy_send(rogue, NULL, 0, &lie), 0);
            sent += n;
            n = 0;
        }
    }
    /* A failed result for a unit it was not given counts against nobody's unit. */
    t_peer_result(rogue, job, other, HY_RESULT_FAILED, "no", 2);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job failed");
    zsock_destroy(&rogue);
    cr_assert(s_is_small_image(out), "results the rogue was not given reached the output");
    /* Each lie counts against the rogue: after 100 its connection is cut,
       so what it sent after that may never have arrived. */
    cr_assert_geq(t_json_number(json, "unsolicited"), sent < 100 ? (long long) sent : 100);
    cr_assert_eq(t_json_number(json, "failed"), 0, "a failed result for a unit not given counted");
    cr_assert(t_file_contains(mlog, "which it does not hold"));
    free(mlog), free(json), free(out);
}

Test(trust, a_version_1_peer_hears_the_mismatch_and_the_manager_logs_it)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "noop", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    zsock_t *old = t_peer_new(endpoint, 5000);
    /* HELLO as version 1 encoded it: name, threads, heartbeat. */
    uint8_t hello[] = {'H', 'Y', 1, 1, 3, 'o', 'l', 'd', 0, 1, 0, 0, 3, 0xe8};
    zframe_t *frame = zframe_new(hello, sizeof hello);
    zframe_send(&frame, old, 0);
    frame = zframe_recv(old);
    cr_assert_not_null(frame, "no answer to a version 1 HELLO");
    const uint8_t *d = zframe_data(frame);
    /* A version 1 decoder sees 'H' 'Y' and another version: it reports the mismatch. */
    cr_assert(zframe_size(frame) >= 4 && d[0] == 'H' && d[1] == 'Y' && d[2] == HY_PROTOCOL_VERSION);
    hy_msg_t msg;
    cr_assert_eq(hy_decode(d, zframe_size(frame), &msg), 0);
    cr_assert_eq(msg.command, HY_GOODBYE);
    cr_assert_eq(msg.code, HY_BYE_VERSION);
    zframe_destroy(&frame);
    zsock_destroy(&old);
    char line[80];
    snprintf(line, sizeof line, "speaks protocol version 1; this manager speaks version %d", HY_PROTOCOL_VERSION);
    cr_assert(t_wait_for(mlog, line, NULL, 0, 5000));
    kill(manager, SIGINT);
    t_wait(manager, 10000);
    free(mlog);
}

Test(trust, a_worker_facing_a_version_1_manager_says_so)
{
    /* A version 1 manager answers our HELLO with its own GOODBYE. */
    zsock_t *old = zsock_new(ZMQ_ROUTER);
    int port = zsock_bind(old, "tcp://127.0.0.1:*");
    cr_assert_gt(port, 0);
    char endpoint[64], *wlog = t_path(t_dir, "w.log");
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    pid_t w = t_worker(endpoint, "new", wlog, NULL, NULL);
    zsock_set_rcvtimeo(old, 5000);
    zframe_t *id = zframe_recv(old), *body = zframe_recv(old);
    cr_assert(id && body, "the worker said nothing");
    cr_assert_eq(zframe_data(body)[2], HY_PROTOCOL_VERSION);
    uint8_t bye[] = {'H', 'Y', 1, 7, 0};
    zframe_send(&id, old, ZFRAME_MORE);
    zframe_t *reply = zframe_new(bye, sizeof bye);
    zframe_send(&reply, old, 0);
    zframe_destroy(&body);
    cr_assert(t_wait_for(wlog, "run the same hyades release on both", NULL, 0, 5000),
              "the worker did not report the version mismatch");
    cr_assert_eq(t_stop(w), 0);
    zsock_destroy(&old);
    free(wlog);
}

/* ------------------------------------------------------------ many workers */

Test(trust, a_thousand_idle_workers_stay_connected, .timeout = 60)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *slog = t_path(t_dir, "swarm.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "5000", "noop", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *swarm[] = {(char *) t_bin("hyades-swarm"), endpoint, "1000", "8", NULL};
    cr_assert_eq(t_run(swarm, slog, 30000), 0, "not every simulated worker joined");
    cr_assert(t_file_contains(slog, "swarm: 1000 joined, 0 rejoined"), "workers were declared lost");
    /* (when the swarm ends, its connections close: those are lost, rightly) */
    cr_assert_eq(t_count_lines(mlog, " lost (silent"), 0, "workers were taken for silent");
    kill(manager, SIGINT);
    cr_assert_eq(t_wait(manager, 10000), 1);
    free(mlog), free(slog);
}

/* ------------------------------------------------------------ one peer, many faces */

Test(trust, a_peer_that_gives_every_unit_back_gets_no_more)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "r.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "--json", json, "noop",
                    "--units", "40", "--sleep-ms", "5", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    zsock_t *rogue = t_peer_new(endpoint, 100);
    cr_assert_eq(t_peer_hello(rogue, "returner", 64, "noop"), 0);
    cr_assert(t_wait_for(mlog, "worker returner joined", NULL, 0, 5000));
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    /* It answers every unit it gets with "returned", and keeps heartbeating. */
    int64_t until = zclock_mono() + 20000;
    while (!t_file_contains(mlog, "job noop done") && zclock_mono() < until) {
        hy_msg_t msg;
        zframe_t *frame;
        if (t_peer_expect(rogue, HY_UNITS, &msg, &frame)) {
            hy_result_t back[HY_MAX_BATCH];
            for (size_t i = 0; i < msg.unit_count; i++)
                back[i] = (hy_result_t) {.unit = hy_unit_at(&msg, i), .status = HY_RESULT_RETURNED};
            hy_msg_t reply = {.command = HY_RESULT, .job = msg.job, .results = back, .result_count = msg.unit_count};
            hy_send(rogue, NULL, 0, &reply);
            zframe_destroy(&frame);
        }
        hy_msg_t beat = {.command = HY_HEARTBEAT};
        hy_send(rogue, NULL, 0, &beat);
    }
    cr_assert_eq(t_wait(manager, 20000), 0, "the job did not complete");
    zsock_destroy(&rogue);
    cr_assert_leq(t_json_number(json, "reissued"), 64, "units went back and forth");
    cr_assert_eq(t_json_number(json, "done"), 40);
    cr_assert_eq(t_stop(good), 0);
    free(mlog), free(wlog), free(json);
}

/* Keys in dir/NAME.cert for each name, and the manager's in dir/m.cert. */
static void s_keys(const char *dir, const char *const names[])
{
    char err[256], path[4096];
    snprintf(path, sizeof path, "%s/m.cert", dir);
    cr_assert_eq(curve_keygen(path, err, sizeof err), 0, "%s", err);
    snprintf(path, sizeof path, "%s/allowed", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    for (size_t i = 0; names[i]; i++) {
        char cert[4096], copy[4096];
        snprintf(cert, sizeof cert, "%s/%s.cert", dir, names[i]);
        cr_assert_eq(curve_keygen(cert, err, sizeof err), 0, "%s", err);
        snprintf(copy, sizeof copy, "%s/allowed/%s.cert", dir, names[i]);
        zcert_t *c = zcert_load(cert);
        zcert_save_public(c, copy);
        zcert_destroy(&c);
    }
}

/* Static scheduling with --verify, the job started with one worker: it
   owns every unit, and the second opinions can come only from workers that
   joined later, with no slot. They waited in its slot for good (0 of 300
   units done), with two workers idle. */
Test(trust, static_verify_takes_second_opinions_from_workers_that_joined_late)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "s.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--schedule", "static", "--verify", "mandelbrot", "--width", "60",
                    "--height", "40", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t first = t_worker(endpoint, "first", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "job mandelbrot started", NULL, 0, 10000));
    pid_t w1 = t_worker(endpoint, "late1", wlog, NULL, NULL);
    pid_t w2 = t_worker(endpoint, "late2", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the second opinions waited for good");
    cr_assert(t_is_default_view(out, 60, 40), "the image differs");
    for (pid_t *p = (pid_t[]) {first, w1, w2, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(out);
}

Test(trust, two_connections_of_one_key_are_one_worker_to_verify)
{
    const char *names[] = {"liar", "h1", "h2", NULL};
    s_keys(t_dir, names);
    char endpoint[256], mcert[4096], allowed[4096], liar[4096], h1[4096], h2[4096];
    snprintf(mcert, sizeof mcert, "%s/m.cert", t_dir);
    snprintf(allowed, sizeof allowed, "%s/allowed", t_dir);
    snprintf(liar, sizeof liar, "%s/liar.cert", t_dir);
    snprintf(h1, sizeof h1, "%s/h1.cert", t_dir);
    snprintf(h2, sizeof h2, "%s/h2.cert", t_dir);
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "v.png");
    /* Three identities (--min-workers counts keys, not connections). */
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--cert", mcert, "--allow", allowed, "--min-workers", "3",
                    "--heartbeat", "250", "--verify", "mandelbrot", "--width", "120", "--height", "90", "-o", out,
                    NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    /* One liar with two connections, the same key, the same lies. */
    char *lie[] = {"HYADES_FAILPOINTS=corrupt:all", NULL};
    char *as_liar[] = {"--cert", liar, "--manager-key", mcert, NULL};
    char *as_h1[] = {"--cert", h1, "--manager-key", mcert, NULL}, *as_h2[] = {"--cert", h2, "--manager-key", mcert, NULL};
    pid_t l1 = t_worker(endpoint, "liar-a", wlog, as_liar, lie);
    pid_t l2 = t_worker(endpoint, "liar-b", wlog, as_liar, lie);
    pid_t w1 = t_worker(endpoint, "honest1", wlog, as_h1, NULL);
    pid_t w2 = t_worker(endpoint, "honest2", wlog, as_h2, NULL);
    cr_assert_eq(t_wait(manager, 60000), 0, "the job failed");
    cr_assert(s_is_small_image(out), "two connections of one liar outvoted the honest workers");
    cr_assert(t_file_contains(mlog, "worker liar-"), "the liar was not named");
    cr_assert_not(t_file_contains(mlog, "worker honest1 excluded"));
    cr_assert_not(t_file_contains(mlog, "worker honest2 excluded"));
    for (pid_t *p = (pid_t[]) {l1, l2, w1, w2, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(out);
}

/* A unit a key's connection hangs in is never copied to another
   connection of the same key (that worker again), but to another worker;
   its copy went to the second connection, hung there too, and the job
   waited for as long as the key stayed connected. */
Test(trust, a_hung_units_copy_never_goes_to_another_connection_of_its_key)
{
    const char *names[] = {"hung", "good", NULL};
    s_keys(t_dir, names);
    char endpoint[256], mcert[4096], allowed[4096], hung[4096], good[4096];
    snprintf(mcert, sizeof mcert, "%s/m.cert", t_dir);
    snprintf(allowed, sizeof allowed, "%s/allowed", t_dir);
    snprintf(hung, sizeof hung, "%s/hung.cert", t_dir);
    snprintf(good, sizeof good, "%s/good.cert", t_dir);
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "h.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--cert", mcert, "--allow", allowed, "--heartbeat", "250",
                    "--straggler-ms", "300", "mandelbrot", "--width", "40", "--height", "30", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *hang[] = {"HYADES_FAILPOINTS=hang:0,sleep:20", NULL};
    char *as_hung[] = {"--cert", hung, "--manager-key", mcert, NULL}, *as_good[] = {"--cert", good, "--manager-key",
                                                                                      mcert, NULL};
    pid_t h1 = t_worker(endpoint, "hung-a", wlog, as_hung, hang);
    pid_t h2 = t_worker(endpoint, "hung-b", wlog, as_hung, hang);
    cr_assert(t_wait_for(mlog, "has answered nothing for", NULL, 0, 20000), "unit 0 did not hang");
    usleep(1500000);   /* five straggler limits: the other connection has long been idle */
    cr_assert_not(t_file_contains(mlog, "copied to worker hung-"), "a copy went to the same key's other connection");
    pid_t w = t_worker(endpoint, "good", wlog, as_good, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job waited for the hung key");
    cr_assert(t_file_contains(mlog, "copied to worker good"));
    cr_assert_not(t_file_contains(mlog, "copied to worker hung-"), "a copy went to the same key's other connection");
    cr_assert(t_is_default_view(out, 40, 30), "the image differs");
    for (pid_t *p = (pid_t[]) {h1, h2, w, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(out);
}

Test(trust, a_refusing_key_counts_once_however_many_connections_it_opens)
{
    const char *names[] = {"refuser", "good", NULL};
    s_keys(t_dir, names);
    char endpoint[256], mcert[4096], allowed[4096], bad[4096], good[4096];
    snprintf(mcert, sizeof mcert, "%s/m.cert", t_dir);
    snprintf(allowed, sizeof allowed, "%s/allowed", t_dir);
    snprintf(bad, sizeof bad, "%s/refuser.cert", t_dir);
    snprintf(good, sizeof good, "%s/good.cert", t_dir);
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--cert", mcert, "--allow", allowed, "--min-workers", "2",
                    "--max-attempts", "2", "--heartbeat", "250", "noop", "--units", "60", "--sleep-ms", "5", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *refuse[] = {"HYADES_FAILPOINTS=refuse:0,refuse:1,refuse:2,refuse:3,refuse:4,refuse:5,refuse:6,refuse:7", NULL};
    char *as_bad[] = {"--cert", bad, "--manager-key", mcert, NULL}, *as_good[] = {"--cert", good, "--manager-key", mcert, NULL};
    pid_t b1 = t_worker(endpoint, "refuser-a", wlog, as_bad, refuse);
    pid_t b2 = t_worker(endpoint, "refuser-b", wlog, as_bad, refuse);
    cr_assert(t_wait_for(mlog, "worker refuser-b joined", NULL, 0, 10000));
    pid_t g = t_worker(endpoint, "good", wlog, as_good, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "one key on two connections failed the job");
    cr_assert_not(t_file_contains(mlog, "failed on 2 workers"));
    cr_assert(t_file_contains(mlog, "excluded from job noop: failed 3 units"));
    for (pid_t *p = (pid_t[]) {b1, b2, g, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog);
}

Test(trust, verify_says_what_it_waits_for)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "w.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "--verify", "mandelbrot",
                    "--width", "120", "--height", "90", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *lie[] = {"HYADES_FAILPOINTS=corrupt:all", NULL};
    pid_t liar = t_worker(endpoint, "liar", wlog, NULL, lie);
    pid_t h1 = t_worker(endpoint, "honest1", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "waits for another worker", NULL, 0, 10000), "a stuck verification said nothing");
    pid_t h2 = t_worker(endpoint, "honest2", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 60000), 0, "the job did not complete once a third worker came");
    cr_assert(s_is_small_image(out));
    for (pid_t *p = (pid_t[]) {liar, h1, h2, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(out);
}

/* A worker paused long enough to count as stalled, whose units the others
   finished meanwhile, holds nothing it could answer: once resumed it must
   get work again, here because it is the only one left for a unit the
   other worker refuses. */
Test(trust, a_paused_worker_whose_units_were_finished_elsewhere_gets_work_again)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "p.json");
    /* (liveness long enough, on both sides, that the pause is no loss) */
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--straggler-ms", "100", "--liveness", "30",
                    "--json", json, "noop", "--units", "200", "--sleep-ms", "30", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *patient[] = {"--liveness", "30", NULL};
    pid_t paused = t_worker(endpoint, "paused", wlog, patient, NULL);
    cr_assert(t_wait_for(mlog, "worker paused joined", NULL, 0, 10000));
    char *refuse[] = {"HYADES_FAILPOINTS=refuse:38", NULL};
    pid_t other = t_worker(endpoint, "other", wlog, NULL, refuse);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    usleep(40000);
    kill(paused, SIGSTOP);
    /* The other worker takes its queue back, then copies its running unit
       once idle: the paused worker then holds nothing, and unit 38 waits
       for somebody other than the worker that refused it. */
    cr_assert(t_wait_for(mlog, "worker paused has answered nothing", NULL, 0, 10000));
    cr_assert(t_wait_for(mlog, "worker paused holds no units any more", NULL, 0, 20000),
              "the paused worker kept units nobody else finished");
    kill(paused, SIGCONT);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job waited for good on a worker that held nothing");
    cr_assert_eq(t_json_number(json, "done"), 200);
    cr_assert(t_file_contains(mlog, "worker paused answers again"));
    cr_assert_eq(t_stop(paused), 0);
    cr_assert_eq(t_stop(other), 0);
    free(mlog), free(wlog), free(json);
}

/* Under --verify, a worker that hangs in its first units holds them for
   good: once a copy has given the first opinion, the unit must be copied
   again for the second rather than wait on the hung one. */
Test(trust, under_verify_a_hung_worker_does_not_hold_up_second_opinions)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "v.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "3", "--verify", "--straggler-ms", "100",
                    "--json", json, "noop", "--units", "40", "--sleep-ms", "10", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *hang[] = {"HYADES_FAILPOINTS=hang:0,hang:1,hang:2,hang:3,hang:4,hang:5,hang:6,hang:7", NULL};
    pid_t hung = t_worker(endpoint, "hung", wlog, NULL, hang);
    cr_assert(t_wait_for(mlog, "worker hung joined", NULL, 0, 10000));
    pid_t a = t_worker(endpoint, "a", wlog, NULL, NULL), b = t_worker(endpoint, "b", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "a unit held by the hung worker never got its second opinion");
    cr_assert_eq(t_json_number(json, "done"), 40);
    for (pid_t *p = (pid_t[]) {hung, a, b, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(json);
}

/* A worker that keeps freezing long enough to be lost, then coming back,
   takes the copies of long units the others are computing and loses them:
   those losses cannot fail the job while the others still compute them. */
Test(trust, a_worker_that_keeps_freezing_cannot_fail_units_others_compute)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "z.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "--straggler-ms", "200",
                    "--json", json, "noop", "--units", "2", "--sleep-ms", "6000", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t a = t_worker(endpoint, "a", wlog, NULL, NULL), b = t_worker(endpoint, "b", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    pid_t flaky = t_worker(endpoint, "flaky", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "copied to worker flaky", NULL, 0, 10000));
    pid_t loop = t_freeze_loop(flaky, 1200, 300);   /* lost after 0.75 s frozen */
    int rc = t_wait(manager, 30000);
    t_freeze_loop_end(loop, flaky);
    cr_assert_eq(rc, 0, "the job failed on the freezing worker's losses");
    cr_assert_eq(t_json_number(json, "done"), 2);
    cr_assert(t_count_lines(mlog, "worker flaky lost") >= 2, "the worker was not lost again and again");
    for (pid_t *p = (pid_t[]) {flaky, a, b, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(json);
}

/* A worker frozen just past its liveness again and again, while the other is
   healthy: each time it comes back (a new connection, the same name) it must
   not take back the unit it lost, or that unit's losses fail a job the
   healthy worker could finish. Also when the healthy one has the same name
   (without keys, names are all that tells them apart). */
Test(trust, a_worker_frozen_again_and_again_does_not_fail_a_job_the_other_finishes)
{
    for (const char **name = (const char *[]) {"good", "flaky", NULL}; *name; name++) {
        char endpoint[256];
        char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "z.json");
        unlink(mlog);
        char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "100", "--liveness", "3",
                        "--json", json, "noop", "--units", "40", "--sleep-ms", "250", NULL};
        char *fast[] = {"--heartbeat", "100", "--liveness", "3", NULL};
        pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
        pid_t flaky = t_worker(endpoint, "flaky", wlog, fast, NULL);
        cr_assert(t_wait_for(mlog, "worker flaky joined", NULL, 0, 10000));
        pid_t good = t_worker(endpoint, *name, wlog, fast, NULL);
        cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
        pid_t loop = t_freeze_loop(flaky, 450, 450);   /* lost after 300 ms frozen */
        int rc = t_wait(manager, 60000);
        t_freeze_loop_end(loop, flaky);
        cr_assert_eq(rc, 0, "the job failed on the frozen worker's losses (other worker named %s)", *name);
        cr_assert_eq(t_json_number(json, "done"), 40);
        cr_assert(t_count_lines(mlog, "worker flaky lost") >= 3, "the worker was not lost again and again");
        t_stop(flaky), t_stop(good);
        free(mlog), free(wlog), free(json);
    }
}

/* A worker killed again and again, each time back under a new name (no
   key: nothing tells its lives apart), beside one healthy worker busy with
   units far longer than the straggler limit: each pending unit went to
   the restarts in turn, each died holding it, and the losses failed the
   job ("unit N was lost 3 times") that the healthy one finishes alone. A
   repeated loss no longer counts while a worker that did not lose the
   unit could compute it. */
Test(trust, a_worker_crashing_again_and_again_under_new_names_does_not_fail_long_units)
{
    /* The healthy worker joins after the crashing one (first 0), before it
       (1), or after its first loss (2): then it may be the crashing one
       restarted, as far as the manager can tell, until it outlives a loss. */
    for (int first = 0; first < 3; first++) {
        char endpoint[256];
        char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "c.json");
        unlink(mlog);
        char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "1", "--heartbeat", "100", "--liveness", "8",
                        "--straggler-ms", "200", "--json", json, "noop", "--units", "3", "--sleep-ms", "2500", NULL};
        char *opts[] = {"--heartbeat", "100", "--liveness", "8", NULL};
        char *loop_opts[] = {"--heartbeat", "100", "--liveness", "8", "--threads", "4", NULL};
        pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint), h = 0, loop;
        static const unsigned life[1] = {500};
        if (first == 1) {
            h = t_worker(endpoint, "h", wlog, opts, NULL);
            cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
            loop = t_restart_loop(endpoint, "f-%u", wlog, loop_opts, NULL, life, 1, 50);
        } else {
            loop = t_restart_loop(endpoint, "f-%u", wlog, loop_opts, NULL, life, 1, 50);
            cr_assert(t_wait_for(mlog, first ? " lost (" : "job noop started", NULL, 0, 10000));
            h = t_worker(endpoint, "h", wlog, opts, NULL);
        }
        int rc = t_wait(manager, 40000);
        t_restart_loop_end(loop);
        t_stop(h);
        cr_assert_eq(rc, 0, "the job failed on the restarted worker's losses (healthy worker first: %d)", first);
        cr_assert_eq(t_json_number(json, "done"), 3);
        cr_assert(t_count_lines(mlog, "lost (") - t_count_lines(mlog, "re-issuing 0 units") >= 3,
                  "the restarts lost too few units: the test proves nothing");
        free(mlog), free(wlog), free(json);
    }
}

/* A peer with no key takes both units and vanishes before its first
   heartbeat, and comes back again and again under new names, taking the
   units and vanishing each time; a healthy worker joined a moment after it
   first said HELLO, while its connection was still open. That worker is
   not taken for the peer restarted (it was, as it joined after the peer was
   last heard from, and the peer's losses then failed the job): the job
   completes. */
Test(trust, a_worker_that_joined_while_a_vanished_one_was_connected_is_not_taken_for_it)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "v.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--straggler-ms", "200", "--json", json, "noop", "--units", "2",
                    "--sleep-ms", "3000", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    zsock_t *peer = t_peer_new(endpoint, 2000);
    cr_assert_eq(t_peer_hello(peer, "v", 2, "noop"), 0);
    hy_msg_t msg;
    zframe_t *frame;
    cr_assert(t_peer_expect(peer, HY_UNITS, &msg, &frame), "the peer got no units");
    zframe_destroy(&frame);
    pid_t h = t_worker(endpoint, "h", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "worker h joined", NULL, 0, 5000));
    usleep(300000);
    zsock_destroy(&peer);   /* gone, its connection closed */
    int took = 0, rc = -1;
    for (int round = 0; round < 8 && rc == -1; round++) {
        usleep(100000);
        peer = t_peer_new(endpoint, 20);
        t_peer_hello(peer, "v", 2, "noop");
        for (int64_t until = zclock_mono() + 1500; zclock_mono() < until;) {
            hy_msg_t beat = {.command = HY_HEARTBEAT};
            hy_send(peer, NULL, 0, &beat);
            if (t_peer_expect(peer, HY_UNITS, &msg, &frame)) {
                zframe_destroy(&frame);
                took++;
                break;
            }
        }
        zsock_destroy(&peer);
        rc = t_exited(manager);
    }
    if (rc == -1)
        rc = t_wait(manager, 30000);
    t_stop(h);
    cr_assert_eq(rc, 0, "the job failed on the vanishing peer's losses");
    cr_assert_eq(t_json_number(json, "done"), 2);
    cr_assert_geq(took, 3, "the peer's returns took units %d times: the test proves nothing", took);
    free(mlog), free(wlog), free(json);
}

/* A worker that crashes on one unit, restarted again and again, beside a
   slow but healthy one whose units take 300 times longer than the others:
   the slow one is not taken for hung while it computes, so the crashes on
   that unit do not count and it computes the unit itself. */
Test(trust, a_slow_worker_is_not_taken_for_hung_while_a_crashing_one_loses_a_unit)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "s.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--straggler-ms", "100", "--json", json,
                    "noop", "--units", "10", "--sleep-ms", "10", NULL};
    char *slow_env[] = {"HYADES_FAILPOINTS=sleep:3000", NULL}, *poison[] = {"HYADES_FAILPOINTS=crash:5", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t slow = t_worker(endpoint, "slow", wlog, NULL, slow_env);
    static const unsigned life[1] = {60000};
    pid_t loop = t_restart_loop(endpoint, "c-%u", wlog, NULL, poison, life, 1, 100);
    int rc = t_wait(manager, 40000);
    t_restart_loop_end(loop);
    t_stop(slow);
    cr_assert_eq(rc, 0, "the job failed on the crashing worker's losses");
    cr_assert_eq(t_json_number(json, "done"), 10);
    cr_assert(t_count_lines(mlog, "lost (") >= 3, "the crashing worker was not lost again and again");
    free(mlog), free(wlog), free(json);
}

/* Peers that say HELLO and close their connection at once, before the
   manager read the HELLO, one after another: each is lost because its
   connection closed, within a moment, not after its silence (3 s). Their
   closes used to be seen before they were known, and missed. */
Test(trust, a_connection_closed_before_its_hello_was_read_is_lost_at_once)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "noop", "--units", "200", "--sleep-ms", "100", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t h = t_worker(endpoint, "h", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    enum { PEERS = 20 };
    for (int k = 0; k < PEERS; k++) {
        zsock_t *peer = t_peer_new(endpoint, 100);
        zsock_set_linger(peer, 500);   /* the HELLO leaves, and the close follows it at once */
        t_peer_hello(peer, "gone", 64, "noop");
        zsock_destroy(&peer);
        usleep(50000);
    }
    /* Counted for at most 2.5 s, less than the 3 s after which silence
       would find them. */
    int closed = 0, joined = 0;
    for (int64_t until = s_now() + 2500; s_now() < until; usleep(50000)) {
        closed = t_count_lines(mlog, "worker gone lost (its connection closed)");
        joined = t_count_lines(mlog, "worker gone joined");
        if (joined >= PEERS / 2 && closed == joined)
            break;
    }
    kill(manager, SIGTERM);
    t_wait(manager, 10000);
    t_stop(h);
    cr_assert_geq(joined, PEERS / 2, "only %d peers joined: the test proves nothing", joined);
    cr_assert_eq(closed, joined, "%d of %d closed connections were found closed", closed, joined);
    free(mlog), free(wlog);
}

/* A unit that crashes every worker it reaches, on remote workers restarted
   at once, beside a worker that hangs on it (heartbeating, answering
   nothing): the job fails, saying which unit, in bounded time. The hung
   worker's copy used to count as the unit still being computed, for good. */
Test(trust, a_unit_that_crashes_every_restarted_worker_fails_the_job_also_beside_a_hung_one)
{
    for (int hung = 0; hung < 2; hung++) {
        char endpoint[256];
        char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
        unlink(mlog);
        char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "1", "--heartbeat", "250", "--liveness", "4",
                        "--straggler-ms", "200", "noop", "--units", "20", NULL};
        char *opts[] = {"--heartbeat", "250", NULL};
        char *poison[] = {"HYADES_FAILPOINTS=crash:7", NULL}, *hang[] = {"HYADES_FAILPOINTS=hang:7", NULL};
        pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
        pid_t h = hung ? t_worker(endpoint, "hung", wlog, opts, hang) : 0;
        static const unsigned life[1] = {60000};
        pid_t loops[2] = {t_restart_loop(endpoint, "a-%u", wlog, opts, poison, life, 1, 50),
                          t_restart_loop(endpoint, "b-%u", wlog, opts, poison, life, 1, 50)};
        int rc = t_wait(manager, 40000);
        for (int k = 0; k < 2; k++)
            t_restart_loop_end(loops[k]);
        if (h)
            t_stop(h);
        cr_assert_neq(rc, -1, "the job waited for good on a unit that crashes every worker (hung one: %d)", hung);
        cr_assert_neq(rc, 0, "the job succeeded with a unit that crashes every worker");
        cr_assert(t_file_contains(mlog, "unit 7 was lost"), "the failure does not name the unit");
        cr_assert(!hung || t_file_contains(mlog, "failpoint: hanging at unit 7") || t_file_contains(wlog, "hanging at unit 7"),
                  "the hung worker never held the unit: the test proves nothing");
        free(mlog), free(wlog);
    }
}

/* Three workers restarted whenever they die, all crashing on one unit, at
   default options: the job fails in seconds. Idle restarts waiting for
   their turn at the unit kept its losses from counting (the job failed
   only when the 60 s hung limit ran out, or never). */
Test(trust, a_unit_that_crashes_three_restarting_workers_fails_the_job_in_seconds)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "noop", "--units", "40", "--sleep-ms", "200", NULL};
    char *poison[] = {"HYADES_FAILPOINTS=crash:5", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    static const unsigned life[1] = {60000};
    pid_t loops[3];
    for (int k = 0; k < 3; k++)
        loops[k] = t_restart_loop(endpoint, "r-%u", wlog, NULL, poison, life, 1, 20);
    int rc = t_wait(manager, 25000);
    for (int k = 0; k < 3; k++)
        t_restart_loop_end(loops[k]);
    cr_assert_neq(rc, -1, "the job was still waiting after 25 s on a unit that crashes every worker");
    cr_assert_neq(rc, 0);
    cr_assert(t_file_contains(mlog, "unit 5 was lost"), "the failure does not name the unit");
    free(mlog), free(wlog);
}

/* A worker with two threads computes units of 500 ms and crashes 100 ms
   into unit 3, again and again: the units it finished before leave at
   once, so the losses are blamed on what it was computing (2 and 3), never
   on units it had finished (their results used to wait up to 320 ms for a
   batch, and died with it); and the failure names both. */
Test(trust, results_of_long_units_leave_at_once_so_a_crash_is_not_blamed_on_them)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "noop", "--units", "8", "--sleep-ms", "500", NULL};
    char *poison[] = {"HYADES_FAILPOINTS=crash:3", NULL}, *two[] = {"--threads", "2", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    static const unsigned life[1] = {60000};
    pid_t loop = t_restart_loop(endpoint, "c-%u", wlog, two, poison, life, 1, 50);
    int rc = t_wait(manager, 30000);
    t_restart_loop_end(loop);
    cr_assert_neq(rc, -1);
    cr_assert_neq(rc, 0, "the job succeeded with a unit that crashes its only worker");
    cr_assert(t_file_contains(mlog, "unit 2 was lost") || t_file_contains(mlog, "unit 3 was lost"),
              "the losses were blamed on a unit the worker had finished");
    /* Which of the two crashed it is not known: the failure names both
       (it named unit 2 alone, which crashes nobody). */
    cr_assert(t_file_contains(mlog, "unit 3 was lost") || t_file_contains(mlog, "computing units 2, 3 at once"),
              "the failure does not name the unit that crashes the worker");
    free(mlog), free(wlog);
}

/* Without keys, connections that close in the middle of ZeroMQ's greeting
   are no CURVE matter: the manager does not say that a peer failed a CURVE
   handshake (it did, for every such connection, once it watched them). */
Test(trust, connections_cut_mid_greeting_without_keys_are_not_called_curve_failures)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "noop", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    const char *colon = strrchr(endpoint, ':');
    cr_assert_not_null(colon);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int k = 0; k < 20; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        static const uint8_t part[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3};   /* the start of a greeting */
        cr_assert_eq(write(fd, part, sizeof part), (ssize_t) sizeof part);
        usleep(5000);
        close(fd);
    }
    usleep(300000);
    kill(manager, SIGTERM);
    t_wait(manager, 10000);
    cr_assert_not(t_file_contains(mlog, "CURVE"), "a cut connection without keys was called a CURVE failure");
    free(mlog);
}

/* Peers that take a unit and fall silent without closing their connection
   (a host gone, a process frozen), one joining every 150 ms and beating
   every 100 ms until then: each holder of the unit is found lost only
   after it was copied to the next, so every loss has another copy out. A
   copy on a peer not heard from since it got the unit (but for a beat
   that crossed it) is not the unit being computed: the losses fail the job
   while peers still come, instead of it waiting as long as they do. */
Test(trust, copies_on_peers_silent_since_they_got_them_do_not_keep_a_job_waiting)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "--liveness", "4", "--straggler-ms", "200",
                    "noop", "--units", "1", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    enum { PEERS = 100 };
    zsock_t *peers[PEERS] = {0};
    bool silent[PEERS] = {0};
    int64_t beat_at[PEERS] = {0};
    int rc = -1, joined = 0;
    for (; joined < PEERS && rc == -1; joined++) {
        peers[joined] = t_peer_new(endpoint, 20);
        cr_assert_eq(t_peer_hello(peers[joined], "p", 1, "noop"), 0);
        beat_at[joined] = zclock_mono() + 100;
        for (int64_t until = zclock_mono() + 150; zclock_mono() < until;) {
            for (int k = 0; k <= joined; k++) {
                zframe_t *frame;
                hy_msg_t msg;
                while (!silent[k] && (frame = zframe_recv_nowait(peers[k]))) {
                    if (hy_decode(zframe_data(frame), zframe_size(frame), &msg) == 0 && msg.command == HY_UNITS)
                        silent[k] = true;   /* takes it, and says nothing more */
                    zframe_destroy(&frame);
                }
                if (!silent[k] && zclock_mono() >= beat_at[k]) {
                    hy_msg_t beat = {.command = HY_HEARTBEAT};
                    hy_send(peers[k], NULL, 0, &beat);
                    beat_at[k] += 100;
                }
            }
            usleep(5000);
        }
        rc = t_exited(manager);
    }
    for (int k = 0; k < PEERS; k++)
        zsock_destroy(&peers[k]);
    if (rc == -1)
        t_wait(manager, 5000);
    cr_assert_neq(rc, -1, "the job was still waiting after %d silent peers, on copies held by silent ones", joined);
    cr_assert_neq(rc, 0);
    cr_assert(t_file_contains(mlog, "unit 0 was lost"), "the failure does not name the unit");
    cr_assert_geq(t_count_lines(mlog, "copied to worker"), 2, "copies did not go out: the test proves nothing");
    free(mlog);
}

/* Two workers killed and started again under their names again and again
   (lives of 100 to 400 ms, so that one, two or three connections of a name
   are connected at a time), each new one joining before the one it
   replaces is found lost, beside a healthy one: the units they lose go to
   the healthy one, and the job completes. The rule itself is checked step
   by step in the test after this one. */
Test(trust, workers_killed_and_restarted_again_and_again_do_not_fail_a_job_the_others_finish)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "k.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "1", "--heartbeat", "100", "--liveness", "8",
                    "--json", json, "noop", "--units", "200", "--sleep-ms", "40", NULL};
    char *fast[] = {"--heartbeat", "100", "--liveness", "8", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t h = t_worker(endpoint, "h", wlog, fast, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    /* 100 to 400 ms of life, killed, back 20 ms later */
    static const unsigned lives[2][4] = {{100, 400, 300, 200}, {400, 300, 200, 100}};
    pid_t loops[2] = {t_restart_loop(endpoint, "f1", wlog, fast, NULL, lives[0], 4, 20),
                      t_restart_loop(endpoint, "f2", wlog, fast, NULL, lives[1], 4, 20)};
    int rc = t_wait(manager, 60000);
    for (int k = 0; k < 2; k++)
        t_restart_loop_end(loops[k]);
    cr_assert_eq(rc, 0, "the job failed on the restarted workers' losses");
    cr_assert_eq(t_json_number(json, "done"), 200);
    cr_assert(t_count_lines(mlog, "worker f1 lost") >= 3 && t_count_lines(mlog, "worker f2 lost") >= 3,
              "the workers were not lost again and again");
    t_stop(h);
    free(mlog), free(wlog), free(json);
}

/* Heartbeats from each peer of peers[0..n) that is not NULL. */
static void s_beat(zsock_t *const peers[], size_t n)
{
    hy_msg_t beat = {.command = HY_HEARTBEAT};
    for (size_t i = 0; i < n; i++)
        if (peers[i])
            hy_send(peers[i], NULL, 0, &beat);
}

/* The units of the first UNITS that peers[k] gets within 3 s, while all of
   peers heartbeat; how many (0: none came). */
static size_t s_units_beating(zsock_t *const peers[], size_t n, size_t k, uint64_t *units, size_t max)
{
    for (int64_t until = zclock_mono() + 3000; zclock_mono() < until;) {
        s_beat(peers, n);
        hy_msg_t msg;
        zframe_t *frame;
        if (t_peer_expect(peers[k], HY_UNITS, &msg, &frame)) {   /* 20 ms receive timeout */
            size_t got = msg.unit_count < max ? msg.unit_count : max;
            for (size_t i = 0; i < got; i++)
                units[i] = hy_unit_at(&msg, i);
            zframe_destroy(&frame);
            return got;
        }
    }
    return 0;
}

/* Without keys nothing tells a restarted worker from the one lost (by
   default a restart even has a new name: host-pid): a connection that
   joins after the lost one was last heard from must not get the unit it
   lost while a worker connected before can take it, whatever its name and
   however many others are connected when it joins (here a namesake
   connected before the loss, then a restart under the same name, then one
   under another). */
Test(trust, a_restart_with_no_key_does_not_get_the_unit_lost_whatever_its_name)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "--liveness", "4",
                    "noop", "--units", "40", "--sleep-ms", "3000", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t h = t_worker(endpoint, "h", wlog, NULL, NULL);   /* busy for seconds with the units it holds */
    cr_assert(t_wait_for(mlog, "worker h joined", NULL, 0, 10000));
    zsock_t *f[4] = {NULL};
    uint64_t units[HY_MAX_BATCH], lost = 0;
    for (size_t k = 0; k < 2; k++) {
        f[k] = t_peer_new(endpoint, 20);
        cr_assert_eq(t_peer_hello(f[k], "f", 1, "noop"), 0);
        cr_assert_gt(s_units_beating(f, k + 1, k, units, HY_MAX_BATCH), 0, "namesake %zu got no units", k);
        if (k == 0)
            lost = units[0];   /* its oldest: the one its loss counts against */
    }
    zsock_destroy(&f[0]);   /* the first one dies holding its units; its second keeps beating */
    int64_t until = zclock_mono() + 5000;
    while (!t_file_contains(mlog, "worker f lost") && zclock_mono() < until) {
        s_beat(f, 4);
        usleep(20000);
    }
    cr_assert(t_file_contains(mlog, "worker f lost"), "the silent namesake was not lost");
    for (size_t k = 2; k < 4; k++) {
        f[k] = t_peer_new(endpoint, 20);
        cr_assert_eq(t_peer_hello(f[k], k == 2 ? "f" : "host-4242", 1, "noop"), 0);
        uint64_t got[HY_MAX_BATCH];
        size_t n = s_units_beating(f, k + 1, k, got, HY_MAX_BATCH);
        cr_assert_gt(n, 0, "restart %zu got no units", k);
        for (size_t i = 0; i < n; i++)
            cr_assert_neq(got[i], lost, "restart %zu got the unit lost before it joined", k);
    }
    for (size_t k = 1; k < 4; k++)
        zsock_destroy(&f[k]);
    kill(manager, SIGKILL);
    t_wait(manager, 5000);
    t_stop(h);
    free(mlog), free(wlog);
}

/* A peer connected before a worker was lost, that heartbeats but never
   answers (it takes units, is stalled, and holds nothing once they are
   done elsewhere), must not keep the lost worker's units from the workers
   that joined after the loss: those wait for it for the straggler limit at
   most, then take or copy them. */
Test(trust, a_hung_peer_connected_before_a_loss_does_not_hold_its_units_up_for_good)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "h.json");
    /* (windows of 1 s: the killed worker is found by its closed connection,
       and the healthy ones must not be lost to a loaded machine's pauses;
       units enough that the killed one, with 32 threads, is still busy) */
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "--liveness", "4",
                    "--json", json, "noop", "--units", "1200", "--sleep-ms", "50", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    zsock_t *old[1] = {t_peer_new(endpoint, 20)};
    cr_assert_eq(t_peer_hello(old[0], "old", 64, "noop"), 0);
    char *threads[] = {"--threads", "32", NULL};
    pid_t f = t_worker(endpoint, "f", wlog, threads, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    for (int64_t until = zclock_mono() + 1500; zclock_mono() < until; usleep(50000))
        s_beat(old, 1);
    kill(f, SIGKILL);
    t_wait(f, 5000);
    for (int64_t until = zclock_mono() + 10000; !t_file_contains(mlog, "worker f lost") && zclock_mono() < until;
         usleep(50000))
        s_beat(old, 1);
    cr_assert(t_file_contains(mlog, "worker f lost"), "the killed worker was not found lost");
    pid_t h1 = t_worker(endpoint, "h", wlog, NULL, NULL), h2 = t_worker(endpoint, "h", wlog, NULL, NULL);
    int status = 0;
    pid_t done = 0;
    for (int64_t until = zclock_mono() + 40000; !done && zclock_mono() < until; usleep(50000)) {
        s_beat(old, 1);
        done = waitpid(manager, &status, WNOHANG);
    }
    if (!done) {
        kill(manager, SIGKILL);
        t_wait(manager, 5000);
    }
    zsock_destroy(&old[0]);
    t_stop(h1), t_stop(h2);
    cr_assert(done == manager, "the job stalled behind the hung peer");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the job failed");
    cr_assert_eq(t_json_number(json, "done"), 1200);
    free(mlog), free(wlog), free(json);
}

/* The liar starts alone: by the time honest workers come, dozens of its
   results were accepted unchecked (in the journal, kept here only to see
   them) and some await a check, so it is caught, and the job fails. */
Test(trust, sampled_verification_fails_a_job_a_caught_liar_touched_unchecked)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "s.png"), *journal = t_path(t_dir, "s.journal");
    char endpoint[256], *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "--verify", "0.3", "--journal", journal,
                    "mandelbrot", "--width", "120", "--height", "90", "-o", out, NULL};
    pid_t manager = t_manager(args, log, NULL, endpoint, sizeof endpoint);
    char *lie[] = {"HYADES_FAILPOINTS=corrupt:all", NULL};
    pid_t liar = t_worker(endpoint, "liar", wlog, NULL, lie);
    /* 30 records of a 90-row column (16 + 90 + 4 bytes each) */
    cr_assert(s_journal_grew(journal, 30 * 110, 30000), "the liar's unchecked results never reached the journal");
    pid_t h1 = t_worker(endpoint, "honest1", wlog, NULL, NULL);
    pid_t h2 = t_worker(endpoint, "honest2", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 60000), 1, "a liar caught by sampling did not fail the job");
    cr_assert(t_file_contains(log, "rerun with --verify to check every unit"));
    cr_assert_neq(access(out, F_OK), 0, "an output was written");
    for (pid_t *p = (pid_t[]) {liar, h1, h2, 0}; *p; p++)
        t_stop(*p);
    free(log), free(out), free(wlog), free(journal);
}

Test(trust, under_static_scheduling_a_restarted_worker_takes_over_the_share_of_the_one_it_replaces)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "st.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--schedule", "static", "--heartbeat", "250", "--straggler-ms",
                    "200", "--json", json, "noop", "--units", "300", "--sleep-ms", "5", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t first = t_worker(endpoint, "first", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    usleep(300000);
    /* Killed, and started again at once (as systemd would): the new one
       joins while the old one still holds the whole share. */
    kill(first, SIGKILL);
    t_wait(first, 5000);
    pid_t second = t_worker(endpoint, "second", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job stalled with its only share orphaned");
    cr_assert_eq(t_json_number(json, "done"), 300);
    cr_assert_eq(t_stop(second), 0);
    free(mlog), free(wlog), free(json);
}

/* A peer that says it has 1024 threads answers its first 1000 units (its
   credit grows with them), then takes some 2000 more and answers none: each
   is copied to the real worker once it counts as late, and the log says so
   in a few lines a few seconds, with the count of the others, rather than
   a line a unit. */
Test(trust, a_thousand_straggler_copies_are_logged_in_a_few_lines)
{
    char endpoint[256], *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--local", "0", "--straggler-ms", "200", "noop", "--units", "4000",
                    NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    zsock_t *hog = t_peer_new(endpoint, 20);
    cr_assert_eq(t_peer_hello(hog, "hog", 1024, "noop"), 0);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    pid_t worker = -1;
    int rc = -1, answered = 0;
    for (int64_t beat_at = 0, until = zclock_mono() + 60000; rc == -1 && zclock_mono() < until; rc = t_exited(manager)) {
        zframe_t *frame;
        while ((frame = zframe_recv_nowait(hog))) {
            hy_msg_t msg;
            if (answered < 1000 && hy_decode(zframe_data(frame), zframe_size(frame), &msg) == 0
                && msg.command == HY_UNITS)
                for (size_t i = 0; i < msg.unit_count && answered < 1000; i++, answered++) {
                    uint64_t u = hy_unit_at(&msg, i);
                    uint8_t echo[8];
                    for (int b = 0; b < 8; b++)
                        echo[b] = (uint8_t) (u >> (56 - 8 * b));
                    t_peer_result(hog, msg.job, u, HY_RESULT_OK, echo, sizeof echo);
                }
            zframe_destroy(&frame);   /* past its first 1000: takes every unit, answers none */
        }
        if (answered >= 1000 && worker < 0)
            worker = t_worker(endpoint, "real", wlog, NULL, NULL);
        if (zclock_mono() >= beat_at) {
            hy_msg_t beat = {.command = HY_HEARTBEAT};
            hy_send(hog, NULL, 0, &beat);
            beat_at = zclock_mono() + 100;
        }
        usleep(5000);
    }
    zsock_destroy(&hog);
    if (worker > 0)
        t_stop(worker);
    cr_assert_eq(rc, 0, "the job did not complete on copies");
    char rest[64];
    cr_assert(t_wait_for(mlog, "speculative ", rest, sizeof rest, 1000));
    long copies = atol(rest);
    int lines = t_count_lines(mlog, "copied to worker");
    cr_assert_geq(copies, 1000, "only %ld copies: the test proves nothing", copies);
    cr_assert(lines >= 1 && lines <= 100, "%d lines for %ld copies", lines, copies);
    free(mlog), free(wlog);
}
