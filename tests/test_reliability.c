/* Reliability and security, with real processes: poison units, stragglers,
   the journal after a killed manager, CURVE, and peers that misbehave. */
#define _GNU_SOURCE   /* sched_setaffinity */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/curve.h"
#include "common/protocol.h"
#include "jobs/mandelbrot.h"
#include "manager/journal.h"
#include "tests/helpers.h"

TestSuite(reliability, .init = t_setup, .fini = t_teardown, .timeout = 90);

/* ------------------------------------------------------------ bounded retries */

/* Every loss counts, also with fewer workers than --max-attempts (a lost
   unit goes to another worker first, and back to one that lost it only when
   none is left; restarted local workers keep their names). */
Test(reliability, a_poison_unit_fails_the_job_naming_it)
{
    for (const char **local = (const char *[]) {"3", "2", NULL}; *local; local++) {
        char *log = t_path(t_dir, *local[0] == '3' ? "m3.log" : "m2.log");
        char *argv[] = {(char *) t_bin("hyades-manager"), "--local", (char *) *local, "--heartbeat", "250", "noop",
                        "--units", "40", NULL};
        char *env[] = {"HYADES_FAILPOINTS=crash:17", NULL};
        int rc = t_wait(t_spawn(argv, log, env), 30000);
        cr_assert_eq(rc, 1, "--local %s: exit status %d", *local, rc);
        cr_assert(t_file_contains(log, "unit 17 was lost 3 times"), "--local %s: the error does not name unit 17",
                  *local);
        free(log);
    }
}

Test(reliability, a_unit_lost_fewer_times_than_allowed_is_retried)
{
    /* One worker crashes in unit 0; the unit goes to the other, once. */
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "r.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "--json", json,
                    "noop", "--units", "60", "--sleep-ms", "5", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *crash[] = {"HYADES_FAILPOINTS=crash:0", NULL};
    pid_t bad = t_worker(endpoint, "bad", wlog, NULL, crash);
    cr_assert(t_wait_for(mlog, "worker bad joined", NULL, 0, 10000));
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job failed");
    cr_assert_eq(t_wait(bad, 5000), 128 + SIGKILL, "the failpoint did not crash the worker");
    cr_assert(t_file_contains(mlog, "worker bad lost"));
    cr_assert_geq(t_json_number(json, "reissued"), 1);
    cr_assert_eq(t_json_number(json, "done"), 60);
    cr_assert_eq(t_stop(good), 0);
    free(mlog), free(wlog), free(json);
}

/* ------------------------------------------------------------ stragglers */

Test(reliability, a_hung_unit_is_copied_to_an_idle_worker)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "s.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "3", "--heartbeat", "250", "--straggler-ms",
                    "300", "--json", json, "noop", "--units", "80", "--sleep-ms", "10", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    /* The first to arrive gets unit 0 first, and hangs in it (while it keeps
       heartbeating); the second is 30 times slower than the third. */
    char *hang[] = {"HYADES_FAILPOINTS=hang:0", NULL}, *slow[] = {"HYADES_FAILPOINTS=slow:30", NULL};
    pid_t hung = t_worker(endpoint, "hung", wlog, NULL, hang);
    cr_assert(t_wait_for(mlog, "worker hung joined", NULL, 0, 10000));
    pid_t slowpoke = t_worker(endpoint, "slow", wlog, NULL, slow);
    cr_assert(t_wait_for(mlog, "worker slow joined", NULL, 0, 10000));
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 60000), 0, "the job did not complete");
    cr_assert(t_file_contains(mlog, "unit 0 out on worker hung"), "unit 0 was not copied");
    cr_assert_geq(t_json_number(json, "speculative"), 1);
    cr_assert_eq(t_json_number(json, "done"), 80);
    cr_assert_not(t_file_contains(mlog, " lost ("), "no worker was lost");
    for (pid_t *p = (pid_t[]) {hung, slowpoke, good, 0}; *p; p++)
        cr_assert_eq(t_stop(*p), 0);
    free(mlog), free(wlog), free(json);
}

/* The copy of a hung unit sits queued on a second worker that hangs too;
   once that one is stalled and its queue taken back, the unit must be
   copied again to the next idle worker rather than stay on the first. */
Test(reliability, a_hung_units_copy_taken_back_is_copied_again)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "c.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "--straggler-ms", "200", "--json", json,
                    "noop", "--units", "3", "--sleep-ms", "10", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *hang0[] = {"HYADES_FAILPOINTS=hang:0", NULL}, *hang1[] = {"HYADES_FAILPOINTS=hang:1", NULL};
    pid_t first = t_worker(endpoint, "first", wlog, NULL, hang0);
    cr_assert(t_wait_for(mlog, "worker first has answered nothing", NULL, 0, 10000));
    pid_t second = t_worker(endpoint, "second", wlog, NULL, hang1);
    cr_assert(t_wait_for(mlog, "unit 0 out on worker first", NULL, 0, 10000), "unit 0 was not copied");
    cr_assert(t_wait_for(mlog, "worker second has answered nothing", NULL, 0, 10000));
    pid_t third = t_worker(endpoint, "third", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 20000), 0, "unit 0 stayed on the hung worker after its copy went back");
    cr_assert_eq(t_json_number(json, "done"), 3);
    for (pid_t *p = (pid_t[]) {first, second, third, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(json);
}

/* Both copies of a unit on workers that hang in it and keep heartbeating:
   once the copy's holder has answered nothing for the straggler limit too,
   the unit is copied again, to the next idle worker. Before, a unit copied
   once was never copied again: the job waited for as long as the two hung
   workers stayed connected, with a healthy worker idle beside them. */
Test(reliability, a_unit_whose_copy_hangs_too_is_copied_again)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "m.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "--straggler-ms",
                    "300", "mandelbrot", "--width", "40", "--height", "30", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    /* Both hang in unit 0 and compute the others: whichever takes it first
       hangs; the other, idle once the rest is done, takes its copy and
       hangs in it too. */
    char *hang[] = {"HYADES_FAILPOINTS=hang:0,sleep:20", NULL};
    pid_t a = t_worker(endpoint, "hung-a", wlog, NULL, hang);
    pid_t b = t_worker(endpoint, "hung-b", wlog, NULL, hang);
    cr_assert(t_wait_for(mlog, "unit 0 out on worker hung-", NULL, 0, 20000), "unit 0 was not copied");
    cr_assert_eq(t_exited(manager), -1, "the job ended with both copies hung");
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job waited for the two hung workers");
    cr_assert(t_file_contains(mlog, "copied to worker good"));
    cr_assert(t_is_default_view(out, 40, 30), "the image differs");
    for (pid_t *p = (pid_t[]) {a, b, good, 0}; *p; p++)
        t_stop(*p);
    free(mlog), free(wlog), free(out);
}

/* A child process holding n raw peers that join, heartbeat every 100 ms,
   take what they are given and answer nothing, until killed. */
static pid_t s_hung_peers(const char *endpoint, int n)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    zsock_t *peers[16];
    for (int i = 0; i < n && i < 16; i++) {
        char name[16];
        snprintf(name, sizeof name, "hung%d", i);
        peers[i] = zsock_new_dealer(endpoint);
        if (!peers[i] || t_peer_hello(peers[i], name, 1, "mandelbrot") != 0)
            _exit(1);
        zsock_set_rcvtimeo(peers[i], 0);
    }
    hy_msg_t beat = {.command = HY_HEARTBEAT};
    while (true) {
        for (int i = 0; i < n && i < 16; i++) {
            hy_send(peers[i], NULL, 0, &beat);
            for (zframe_t *frame; (frame = zframe_recv(peers[i]));)
                zframe_destroy(&frame);
        }
        usleep(100000);
    }
}

/* Hung connections whose units were finished elsewhere get one unit at a
   time until they answer; they must not take the copies of hung units
   while a worker that answers is connected. The copies went from one hung
   connection to the next (each a straggler limit), an honest worker idle. */
Test(reliability, copies_go_to_a_worker_that_answers_before_hung_ones)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "m.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "8", "--heartbeat", "250", "--straggler-ms",
                    "200", "mandelbrot", "--width", "60", "--height", "40", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t peers = s_hung_peers(endpoint, 8);
    cr_assert(t_wait_for(mlog, "job mandelbrot started", NULL, 0, 10000), "the peers did not join");
    /* Slow enough that hung connections whose units it finished are on
       probation while units are still out. */
    char *slow[] = {"HYADES_FAILPOINTS=sleep:40", NULL};
    pid_t good = t_worker(endpoint, "good", wlog, NULL, slow);
    cr_assert(t_wait_for(mlog, "worker good joined", NULL, 0, 10000));
    int rc = t_wait(manager, 60000);
    kill(peers, SIGKILL);
    waitpid(peers, NULL, 0);
    cr_assert_eq(rc, 0, "the job did not complete");
    char *text = t_read_file(mlog, NULL), *joined = strstr(text, "worker good joined");
    cr_assert_null(strstr(joined, "copied to worker hung"), "a hung connection took a copy while good was there");
    cr_assert(t_is_default_view(out, 60, 40), "the image differs");
    free(text);
    t_stop(good);
    free(mlog), free(wlog), free(out);
}

/* A child process holding a raw peer that announces 1024 threads, takes
   what it is given, and answers one unit every 300 ms (correctly: noop
   echoes its index), heartbeating, until killed. */
static pid_t s_trickling_peer(const char *endpoint)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    zsock_t *peer = zsock_new_dealer(endpoint);
    if (!peer || t_peer_hello(peer, "trickle", 1024, "noop") != 0)
        _exit(1);
    zsock_set_rcvtimeo(peer, 0);
    uint64_t held[4096], job = 0;
    size_t count = 0;
    hy_msg_t beat = {.command = HY_HEARTBEAT};
    for (int tick = 0;; tick++) {
        for (zframe_t *frame; (frame = zframe_recv(peer)); zframe_destroy(&frame)) {
            hy_msg_t msg;
            if (hy_decode(zframe_data(frame), zframe_size(frame), &msg) != 0 || msg.command != HY_UNITS)
                continue;
            job = msg.job;
            for (size_t i = 0; i < msg.unit_count && count < 4096; i++)
                held[count++] = hy_unit_at(&msg, i);
        }
        hy_send(peer, NULL, 0, &beat);
        if (tick % 3 == 2 && count > 0) {
            uint64_t u = held[--count];
            uint8_t echo[8];
            for (int i = 0; i < 8; i++)
                echo[i] = (uint8_t) (u >> (56 - 8 * i));
            t_peer_result(peer, job, u, HY_RESULT_OK, echo, sizeof echo);
        }
        usleep(100000);
    }
}

/* A peer that announces 1024 threads and answers a unit now and then could
   hold every unit of a job: it looked busy, never stalled, its units never
   late enough to copy (the straggler limit grew with its own round trips),
   and the honest worker that joined after it sat idle: 200 units took a
   minute. A new connection's credit now grows with what it answers. */
Test(reliability, a_peer_that_claims_many_threads_and_trickles_cannot_hold_the_job)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "t.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "--json", json, "noop", "--units", "200",
                    NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    pid_t peer = s_trickling_peer(endpoint);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000), "the peer did not join");
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    int rc = t_wait(manager, 20000);
    kill(peer, SIGKILL);
    waitpid(peer, NULL, 0);
    cr_assert_eq(rc, 0, "the job waited for the trickling peer");
    cr_assert_eq(t_json_number(json, "done"), 200);
    t_stop(good);
    free(mlog), free(wlog), free(json);
}

/* Missed 10 ms heartbeats before a peer counts as lost in the test below:
   200 ms, longer than a loaded machine's scheduling pauses (30 ms was not,
   now and then), or more in the sanitizer build, whose processes run
   several times slower. The output must take longer than that to write. */
#ifdef __SANITIZE_ADDRESS__
#define SHORT_LIVENESS "30"
#else
#define SHORT_LIVENESS "20"
#endif

/* The shortest heartbeats the options allow, 10 ms. Local workers busy with
   units 150 times longer than the heartbeat keep beating, so none is lost
   for silence within 50 heartbeats (a window three times shorter than a
   unit, and wide enough for a loaded machine's scheduling pauses), and
   nothing is reissued. */
Test(reliability, workers_busy_with_long_units_keep_10_ms_heartbeats)
{
    char *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "h.json");
    char *args[] = {"--local", "2", "--heartbeat", "10", "--liveness", "50", "--json", json, "noop",
                    "--units", "6", "--sleep-ms", "1500", NULL};
    cr_assert_eq(t_wait(t_manager(args, log, NULL, NULL, 0), 30000), 0);
    char *text = t_read_file(log, NULL), *lost = text ? strstr(text, "lost (silent") : NULL;
    cr_assert_null(lost, "a healthy local worker was lost: %.200s", lost);
    free(text);
    cr_assert_eq(t_json_number(json, "reissued"), 0);
    free(log), free(json);
}

/* With --heartbeat 10 an idle peer hears from the manager every 40 ms, the
   idle interval: counted over two seconds by a raw peer, about 50 beats,
   where beating at the heartbeat would give 200 (protocol version 2). The
   peer beats every 100 ms, well within its window of 50 x 40 ms. */
Test(reliability, a_manager_with_10_ms_heartbeats_beats_idle_workers_every_40_ms)
{
    char endpoint[256];
    char *log = t_path(t_dir, "m.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "10", "--liveness", "50", "--min-workers", "2",
                    "noop", NULL};
    pid_t manager = t_manager(args, log, NULL, endpoint, sizeof endpoint);
    uint32_t heartbeat, idle;
    zsock_t *peer = t_peer_join(endpoint, "raw", "noop", &heartbeat, &idle);
    cr_assert_eq(idle, 40);
    zsock_set_rcvtimeo(peer, 20);
    hy_msg_t msg;
    zframe_t *frame;
    hy_msg_t beat = {.command = HY_HEARTBEAT};
    int beats = 0;
    int64_t start = zclock_mono(), next_beat = start;
    while (zclock_mono() - start < 2000) {
        if (zclock_mono() >= next_beat) {
            hy_send(peer, NULL, 0, &beat);
            next_beat += 100;
        }
        frame = zframe_recv(peer);   /* 20 ms time-out */
        if (frame && hy_decode(zframe_data(frame), zframe_size(frame), &msg) == 0 && msg.command == HY_HEARTBEAT)
            beats++;
        zframe_destroy(&frame);
    }
    cr_assert(beats >= 30 && beats <= 80, "%d heartbeats in two seconds from a manager beating every 40 ms", beats);
    cr_assert_not(t_file_contains(log, " lost "), "the peer was lost");
    zsock_destroy(&peer);
    kill(manager, SIGTERM);
    t_wait(manager, 10000);
    free(log);
}

/* A raw peer that heartbeats every beat_ms for ms, reading and dropping
   what comes; returns the number of UNITS it got. */
static int s_peer_beat(zsock_t *peer, int beat_ms, int ms)
{
    zsock_set_rcvtimeo(peer, 10);
    hy_msg_t beat = {.command = HY_HEARTBEAT}, msg;
    int units = 0;
    int64_t start = zclock_mono(), next = start;
    while (zclock_mono() - start < ms) {
        if (zclock_mono() >= next) {
            hy_send(peer, NULL, 0, &beat);
            next += beat_ms;
        }
        zframe_t *frame = zframe_recv(peer);
        if (frame && hy_decode(zframe_data(frame), zframe_size(frame), &msg) == 0 && msg.command == HY_UNITS)
            units++;
        zframe_destroy(&frame);
    }
    return units;
}

/* PROTOCOL 4.3 from the manager's side, --heartbeat 100: a peer that holds
   no units may beat every 350 ms (the idle interval is 400 ms) and is not
   lost; once it holds units and still beats every 350 ms, it is lost after
   3 x 100 ms, and a real worker finishes the job. */
Test(reliability, an_idle_peer_beats_at_the_idle_interval_a_busy_one_at_the_heartbeat)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "100", "--min-workers", "2", "noop", "--units",
                    "40", "--sleep-ms", "20", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    uint32_t heartbeat, idle;
    zsock_t *peer = t_peer_join(endpoint, "slow", "noop", &heartbeat, &idle);
    cr_assert_eq(heartbeat, 100);
    cr_assert_eq(idle, 400);
    cr_assert_eq(s_peer_beat(peer, 350, 2500), 0, "units before the job started");
    cr_assert_not(t_file_contains(mlog, " lost "), "an idle peer beating within the idle interval was lost");
    pid_t worker = t_worker(endpoint, "real", wlog, NULL, NULL);
    cr_assert_gt(s_peer_beat(peer, 350, 3000), 0, "the peer got no units");
    cr_assert(t_file_contains(mlog, "worker slow lost (silent for 300 ms"), "a busy peer beating every 350 ms was not lost");
    cr_assert_eq(t_wait(manager, 30000), 0);
    cr_assert_eq(t_stop(worker), 0);
    zsock_destroy(&peer);
    free(mlog), free(wlog);
}

/* A worker stopped before it ever joined, while a manager comes up: let go
   on, it joins, instead of exiting 1 "no manager" for its own stop. */
Test(reliability, a_worker_stopped_before_it_joined_joins_instead_of_exiting)
{
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/m.sock", t_dir);
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *extra[] = {"--exit-when-done", "--gone-after", "2", NULL};
    pid_t w = t_worker(endpoint, "early", wlog, extra, NULL);
    usleep(300000);
    kill(w, SIGSTOP);
    char *args[] = {"--bind", endpoint, "--min-workers", "1", "noop", "--units", "3", NULL};
    pid_t manager = t_manager(args, mlog, NULL, NULL, 0);
    usleep(3000000);
    kill(w, SIGCONT);
    cr_assert(t_wait_for(mlog, "worker early joined", NULL, 0, 10000), "the worker did not join");
    cr_assert_eq(t_wait(manager, 20000), 0);
    cr_assert_eq(t_wait(w, 20000), 0, "the worker did not leave cleanly after the job");
    free(mlog), free(wlog);
}

/* A worker stopped (SIGSTOP) longer than both the manager's allowance and
   its own --gone-after: the manager loses it meanwhile; let go on, it does
   not take its own stop for the manager's absence (it used to exit "no
   manager for 4 s" under --exit-when-done), and joins again. */
Test(reliability, a_worker_stopped_past_gone_after_joins_again_instead_of_exiting)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "100", "--min-workers", "2", "noop", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *extra[] = {"--exit-when-done", "--gone-after", "2", NULL};
    pid_t w = t_worker(endpoint, "sleepy", wlog, extra, NULL);
    cr_assert(t_wait_for(mlog, "worker sleepy joined", NULL, 0, 10000));
    kill(w, SIGSTOP);
    cr_assert(t_wait_for(mlog, "worker sleepy lost", NULL, 0, 10000));
    usleep(3000000);
    kill(w, SIGCONT);
    const char *second = NULL;
    for (int i = 0; i < 100 && !second; i++) {
        usleep(100000);
        char *text = t_read_file(mlog, NULL);
        const char *first = text ? strstr(text, "worker sleepy joined") : NULL;
        second = first && strstr(first + 1, "worker sleepy joined") ? "yes" : NULL;
        free(text);
    }
    cr_assert_eq(t_exited(w), -1, "the worker exited (%s)", t_file_contains(wlog, "no manager for") ? "no manager" : "?");
    cr_assert_not_null(second, "the worker did not join again");
    cr_assert_eq(t_stop(w), 0);
    kill(manager, SIGTERM);
    t_wait(manager, 10000);
    free(mlog), free(wlog);
}

/* Between the jobs of a batch the manager writes a large output (on one
   core) and reads nothing: its workers, with 10 ms heartbeats (40 ms idle) and a liveness
   of 5, give up on it, say GOODBYE and come back. None is taken for
   silent, and the outputs are exact. */
Test(reliability, workers_that_give_up_on_a_manager_busy_between_jobs_leave_cleanly)
{
    char endpoint[256];
    char *batch = t_path(t_dir, "jobs.txt"), *log = t_path(t_dir, "b.log"), *wlog = t_path(t_dir, "w.log");
    char *a = t_path(t_dir, "a.png"), *b = t_path(t_dir, "b.png");
    FILE *f = fopen(batch, "w");
    fprintf(f, "mandelbrot --width 12000 --height 8000 --max-iter 30 -o %s\n", a);
    fprintf(f, "mandelbrot --width 12000 --height 8000 --max-iter 30 -o %s\n", b);
    fclose(f);
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "10", "--liveness",
                    SHORT_LIVENESS, "--batch", batch, NULL};
    /* The manager may use one core only: it compresses the PNG on as many
       as it has, and must stay busy longer than the workers' patience. */
    cpu_set_t all, one;
    cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    pid_t manager = t_manager(args, log, NULL, endpoint, sizeof endpoint);
    cr_assert_eq(sched_setaffinity(0, sizeof all, &all), 0);
    char *impatient[] = {"--threads", "1", "--liveness", "5", NULL};
    pid_t w1 = t_worker(endpoint, "w1", wlog, impatient, NULL), w2 = t_worker(endpoint, "w2", wlog, impatient, NULL);
    cr_assert_eq(t_wait(manager, 60000), 0);
    cr_assert_eq(t_stop(w1), 0);
    cr_assert_eq(t_stop(w2), 0);
    char *text = t_read_file(log, NULL), *lost = text ? strstr(text, "lost (silent") : NULL;
    cr_assert_null(lost, "a worker was taken for silent: %.200s", lost);
    cr_assert(t_file_contains(log, "line 2: mandelbrot ok"));
    cr_assert(t_file_contains(log, "said goodbye: stopping: manager silent"),
              "no worker gave up on the manager while it wrote 96 MB: the test did not test");
    size_t na, nb;
    char *pa = t_read_file(a, &na), *pb = t_read_file(b, &nb);
    cr_assert(pa && pb && na == nb && memcmp(pa, pb, na) == 0, "the two outputs differ");
    free(text), free(pa), free(pb);
    free(batch), free(log), free(wlog), free(a), free(b);
}

/* ------------------------------------------------------------ journal */

static long s_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long) st.st_size : -1;
}

/* Starts argv with its local workers slowed (a job that lasts) and returns
   once journal holds at least min bytes. */
static pid_t s_start_journalling(char *const argv[], const char *log, const char *journal, long min)
{
    char *slow[] = {"HYADES_FAILPOINTS=sleep:25", NULL};
    pid_t manager = t_spawn(argv, log, slow);
    for (int i = 0; i < 2000 && s_file_size(journal) < min; i++)
        usleep(5000);
    cr_assert_geq(s_file_size(journal), min, "too little reached the journal %s", journal);
    return manager;
}

/* Whether the image at path is exactly p's. */
static bool s_exact_mandelbrot(const char *path, mandel_params_t p)
{
    uint8_t *want = t_mandelbrot_kernel(p);
    uint32_t w, h;
    uint8_t *got = t_read_png_gray(path, &w, &h);
    bool same = got && w == p.width && h == p.height && memcmp(got, want, (size_t) w * h) == 0;
    free(want), free(got);
    return same;
}

Test(reliability, a_killed_manager_resumes_from_its_journal)
{
    const mandel_params_t p = {240, 160, -2, 0.5, -1, 1, 300000, 1};
    char *out = t_path(t_dir, "j.png"), *journal = t_path(t_dir, "run.journal"), *log = t_path(t_dir, "m.log");
    char *json = t_path(t_dir, "j.json");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--journal", journal, "--json", json,
                    "mandelbrot", "--width", "240", "--height", "160", "--max-iter", "300000", "-o", out, NULL};
    /* Wait until some units are on disk, then kill it without warning. */
    pid_t manager = s_start_journalling(argv, log, journal, 4000);
    kill(manager, SIGKILL);
    t_wait(manager, 5000);
    cr_assert_eq(access(out, F_OK), -1, "a killed manager left an output");

    /* A torn last record, as a crash in the middle of a write leaves it. */
    FILE *f = fopen(journal, "ab");
    /* unit 7, 256 bytes announced, 3 present */
    static const uint8_t torn[] = {'H', 'Y', 'R', 'C', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 1, 0, 0xaa, 0xbb, 0xcc};
    fwrite(torn, 1, sizeof torn, f);
    fclose(f);

    /* Another job with the same journal is refused before anything runs. */
    char *other[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--journal", journal, "mandelbrot",
                     "--width", "241", "-o", out, NULL};
    char *other_log = t_path(t_dir, "other.log");
    cr_assert_eq(t_run(other, other_log, 10000), 2);
    cr_assert(t_file_contains(other_log, "journal of a mandelbrot job with other options"));

    /* The same command resumes and gives the bytes of an uninterrupted run. */
    cr_assert_eq(t_run(argv, log, 60000), 0, "the resumed run failed");
    long resumed = t_json_number(json, "resumed");
    cr_assert(resumed > 0 && resumed < 240, "resumed %ld of 240 units", resumed);
    cr_assert(t_file_contains(log, "resumed"));
    cr_assert(s_exact_mandelbrot(out, p), "the resumed image differs");
    free(out), free(journal), free(log), free(json), free(other_log);
}

/* The same command started twice (an impatient operator) on one journal:
   the second is refused up front, also with other options, and the first
   goes on undisturbed; once it is done, the journal is free again. */
Test(reliability, a_second_manager_on_a_journal_in_use_is_refused)
{
    const mandel_params_t p = {240, 160, -2, 0.5, -1, 1, 300000, 1};
    char *out = t_path(t_dir, "j.png"), *journal = t_path(t_dir, "run.journal"), *log = t_path(t_dir, "m.log");
    char *json = t_path(t_dir, "j.json"), *log2 = t_path(t_dir, "m2.log"), *out2 = t_path(t_dir, "j2.png");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--journal", journal, "--json", json,
                    "mandelbrot", "--width", "240", "--height", "160", "--max-iter", "300000", "-o", out, NULL};
    pid_t first = s_start_journalling(argv, log, journal, 4000);

    char *again[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--journal", journal, "mandelbrot",
                     "--width", "240", "--height", "160", "--max-iter", "300000", "-o", out2, NULL};
    char *other[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--journal", journal, "pi", NULL};
    char *const *seconds[] = {again, other};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(t_run(seconds[i], log2, 10000), 2, "a second manager was let onto the journal");
        cr_assert(t_file_contains(log2, "is in use by another manager"), "the refusal does not say why");
        cr_assert_not(t_file_contains(log2, "joined"), "the second manager started workers");
    }
    cr_assert_eq(t_exited(first), -1, "the first manager did not outlive the second");
    cr_assert_eq(t_wait(first, 60000), 0, "the first manager failed");
    cr_assert_eq(t_json_number(json, "resumed"), 0);
    cr_assert(s_exact_mandelbrot(out, p), "the first manager's image differs");

    /* Free again: the same command resumes every unit. */
    cr_assert_eq(t_run(again, log2, 30000), 0, "the journal stayed locked");
    cr_assert(t_file_contains(log2, "resumed 240 of 240 units"));
    cr_assert(s_exact_mandelbrot(out2, p));
    free(out), free(journal), free(log), free(json), free(log2), free(out2);
}

/* A journal removed under its manager (an operator cleaning up too soon):
   the job goes on, and the manager says that its records are lost. */
Test(reliability, a_journal_removed_while_in_use_is_reported)
{
    const mandel_params_t p = {240, 160, -2, 0.5, -1, 1, 300000, 1};
    char *out = t_path(t_dir, "j.png"), *journal = t_path(t_dir, "run.journal"), *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--journal", journal, "mandelbrot", "--width",
                    "240", "--height", "160", "--max-iter", "300000", "-o", out, NULL};
    pid_t manager = s_start_journalling(argv, log, journal, 4000);
    cr_assert_eq(unlink(journal), 0);
    cr_assert(t_wait_for(log, "was removed or replaced while this manager wrote it", NULL, 0, 10000),
              "the removal went unmentioned");
    cr_assert_eq(t_wait(manager, 60000), 0, "the job failed");
    cr_assert(s_exact_mandelbrot(out, p));
    free(out), free(journal), free(log);
}

/* A journal damaged in the middle is rewritten and renamed over the old one
   when a manager resumes it: the new file is locked before it takes the
   name, so a manager started meanwhile is still refused. */
Test(reliability, a_repaired_journal_stays_locked)
{
    const mandel_params_t p = {240, 160, -2, 0.5, -1, 1, 300000, 1};
    char *out = t_path(t_dir, "j.png"), *journal = t_path(t_dir, "run.journal"), *log = t_path(t_dir, "m.log");
    char *log2 = t_path(t_dir, "m2.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--journal", journal, "mandelbrot", "--width",
                    "240", "--height", "160", "--max-iter", "300000", "-o", out, NULL};
    pid_t manager = s_start_journalling(argv, log, journal, 20000);
    kill(manager, SIGKILL);
    t_wait(manager, 5000);
    size_t len;
    char *bytes = t_read_file(journal, &len);
    bytes[len / 2] ^= 0x10;   /* damage in the middle: the resume rewrites the file */
    FILE *f = fopen(journal, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    struct stat before;
    cr_assert_eq(stat(journal, &before), 0);
    /* What a manager killed in the middle of a repair leaves beside it, and
       a file that only looks like it. */
    char *left = t_path(t_dir, ".run.journal.repair.AbC123"), *other = t_path(t_dir, ".run.journal.repair.AbC1234");
    char *foreign = t_path(t_dir, ".run.journal.repair.XyZ789"), *busy = t_path(t_dir, ".run.journal.repair.BuSy42");
    fclose(fopen(left, "w"));
    fclose(fopen(other, "w"));
    f = fopen(foreign, "w");   /* the name, but not this job's journal */
    fputs("HYADESJ1 and then something else", f);
    fclose(f);
    int held = open(busy, O_RDWR | O_CREAT, 0600);   /* the name, and somebody's lock on it */
    cr_assert_eq(flock(held, LOCK_EX), 0);

    char *slow[] = {"HYADES_FAILPOINTS=sleep:25", NULL};
    manager = t_spawn(argv, log, slow);
    cr_assert(t_wait_for(log, "damaged bytes", NULL, 0, 20000), "the damage was not found");
    struct stat after;
    for (int i = 0; i < 1000 && (stat(journal, &after) != 0 || after.st_ino == before.st_ino); i++)
        usleep(5000);
    cr_assert_neq(after.st_ino, before.st_ino, "the journal was not rewritten");
    cr_assert_eq(t_run(argv, log2, 10000), 2, "a manager was let onto the repaired journal");
    cr_assert(t_file_contains(log2, "is in use by another manager"));
    cr_assert_eq(t_wait(manager, 60000), 0, "the resumed run failed");
    cr_assert(s_exact_mandelbrot(out, p), "the resumed image differs");
    cr_assert_neq(access(left, F_OK), 0, "a cut-short repair's temporary is still there");
    cr_assert(t_file_contains(log, "left by a repair cut short"));
    cr_assert_eq(access(other, F_OK), 0, "a file of another name was removed");
    cr_assert_eq(access(foreign, F_OK), 0, "a file that is not this job's journal was removed");
    cr_assert_eq(access(busy, F_OK), 0, "a file somebody holds a lock on was removed");
    close(held);
    free(bytes), free(out), free(journal), free(log), free(log2), free(left), free(other), free(foreign), free(busy);
}

/* Every kind resumes from its journal with the bytes of the run that wrote
   it: here the journal of a whole run, so that every result is replayed
   (a frames journal crashed the manager: giflib writes to the line it is
   given, and replayed results are read-only). */
Test(reliability, every_kind_resumes_from_its_journal_with_the_same_bytes)
{
    static const char *const jobs[][12] = {
        {"frames", "--count", "120", "--frames-per-unit", "7", NULL},
        {"frames", "--scene", "zoom", "--count", "12", "--width", "64", "--height", "48", NULL},
        {"mandelbrot", "--width", "90", "--height", "60", NULL},
        {"pi", "--samples", "200000", "--units", "20", NULL},
        {"primes", "--to", "200000", NULL},
        {"primes", "--to", "200000", "--method", "sieve", NULL},
    };
    for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++) {
        char name[32];
        snprintf(name, sizeof name, "out%zu", j);
        char *out = t_path(t_dir, name), *journal = t_path(t_dir, "all.journal"), *log = t_path(t_dir, "m.log");
        char *json = t_path(t_dir, "r.json"), *first = t_path(t_dir, "first");
        char *argv[32] = {(char *) t_bin("hyades-manager"), "--local", "2", "--journal", journal, "--json", json};
        int argc = 7;
        for (size_t k = 0; jobs[j][k]; k++)
            argv[argc++] = (char *) jobs[j][k];
        argv[argc++] = "-o";
        argv[argc++] = out;
        argv[argc] = NULL;
        unlink(journal);
        cr_assert_eq(t_run(argv, log, 60000), 0, "%s: the first run failed", jobs[j][0]);
        cr_assert_eq(rename(out, first), 0);
        long long units = t_json_number(json, "units");
        cr_assert_eq(t_run(argv, log, 60000), 0, "%s (job %zu): the run resumed from its journal failed", jobs[j][0], j);
        cr_assert_eq(t_json_number(json, "resumed"), units, "%s: not every unit came from the journal", jobs[j][0]);
        size_t na, nb;
        char *a = t_read_file(first, &na), *b = t_read_file(out, &nb);
        cr_assert(a && b && na == nb && memcmp(a, b, na) == 0, "%s (job %zu): the resumed output differs", jobs[j][0], j);
        free(a), free(b);
        free(out), free(journal), free(log), free(json), free(first);
    }
}

/* A manager killed while a worker computes its units, and another started at
   once on the same address: ZeroMQ reconnects the worker's socket to it by
   itself, and the results of the dead manager's units would reach it as a
   stranger's, counted against the worker. The worker starts over instead:
   its units cancelled, HELLO on a new socket. */
Test(reliability, a_new_manager_on_the_same_address_gets_no_results_of_the_old_ones_units)
{
    char endpoint[256];
    char *alog = t_path(t_dir, "a.log"), *blog = t_path(t_dir, "b.log"), *wlog = t_path(t_dir, "w.log");
    char *json = t_path(t_dir, "b.json");
    /* Results stream from the worker all the time: some always wait in its socket. */
    char *a_args[] = {"--bind", "tcp://127.0.0.1:0", "noop", "--units", "100000000", NULL};
    pid_t a = t_manager(a_args, alog, NULL, endpoint, sizeof endpoint);
    pid_t worker = t_worker(endpoint, "w", wlog, NULL, NULL);
    cr_assert(t_wait_for(alog, "job noop started", NULL, 0, 10000));
    usleep(300000);
    kill(a, SIGKILL);
    t_wait(a, 5000);
    char *b_args[] = {"--bind", endpoint, "--json", json, "noop", "--units", "20", "--sleep-ms", "50", NULL};
    pid_t b = t_manager(b_args, blog, NULL, NULL, 0);
    cr_assert_eq(t_wait(b, 30000), 0, "the new manager's job failed");
    cr_assert_eq(t_json_number(json, "unsolicited"), 0);
    cr_assert_not(t_file_contains(blog, "WARN dropped "), "the new manager got the old one's results");
    cr_assert(t_file_contains(wlog, "connection to the manager at"), "the worker did not see its connection close");
    t_stop(worker);
    free(alog), free(blog), free(wlog), free(json);
}

/* A worker paused long enough to be lost, then going on: what it computed
   before it heard it was lost still comes on its old connection. The
   manager dropped it, not it the manager: those results are dropped but not
   held against it as bad messages (which would ban an honest worker paused
   often enough). */
Test(reliability, a_lost_workers_late_results_are_not_held_against_it)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "m.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "100", "--liveness", "2", "--json", json,
                    "noop", "--units", "3000000", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *fast[] = {"--heartbeat", "100", NULL};
    pid_t worker = t_worker(endpoint, "w", wlog, fast, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    t_freeze_times(worker, 3, 200, 500);
    cr_assert_eq(t_wait(manager, 60000), 0, "the job failed");
    cr_assert(t_file_contains(mlog, "worker w lost"), "the worker was never lost: the test proves nothing");
    cr_assert_eq(t_json_number(json, "unsolicited"), 0);
    cr_assert_not(t_file_contains(mlog, "WARN dropped "), "late results counted as bad messages");
    t_stop(worker);
    free(mlog), free(wlog), free(json);
}

/* The allowance for a lost connection's late results, exactly: 16 messages
   are dropped without counting; more count as unsolicited, as from anyone.
   Also after the manager forgot the worker itself (gone with nothing done). */
Test(reliability, a_lost_connection_may_send_16_late_messages_no_more)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *json = t_path(t_dir, "m.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "100", "--liveness", "2", "--json", json, "noop",
                    "--units", "30", "--sleep-ms", "100", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    zsock_t *peer = t_peer_new(endpoint, 5000);
    cr_assert_eq(t_peer_hello(peer, "late", 1, "noop"), 0);
    hy_msg_t msg;
    zframe_t *frame;
    cr_assert(t_peer_expect(peer, HY_UNITS, &msg, &frame), "the peer got no units");
    uint64_t job = msg.job, unit = hy_unit_at(&msg, 0);
    zframe_destroy(&frame);
    cr_assert(t_wait_for(mlog, "worker late lost", NULL, 0, 10000), "the silent peer was not lost");
    char *wlog = t_path(t_dir, "w.log");
    pid_t worker = t_worker(endpoint, "w", wlog, NULL, NULL);
    cr_assert(t_wait_for(mlog, "worker w joined", NULL, 0, 10000));
    usleep(300000);   /* the tick that forgets workers gone with nothing done */
    uint8_t payload[8] = {0};
    for (int i = 0; i < 30; i++)
        t_peer_result(peer, job, unit, HY_RESULT_OK, payload, sizeof payload);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job failed");
    cr_assert_eq(t_json_number(json, "unsolicited"), 30 - 16);
    zsock_destroy(&peer);
    t_stop(worker);
    free(mlog), free(json), free(wlog);
}

/* ------------------------------------------------------------ CURVE */

Test(reliability, only_allowed_keys_get_work)
{
    char *keys = t_path(t_dir, "allowed"), *mcert = t_path(t_dir, "manager.cert");
    char *good = t_path(keys, "good.cert"), *stranger = t_path(t_dir, "stranger.cert");
    char err[256];
    cr_assert_eq(mkdir(keys, 0700), 0);
    cr_assert_eq(curve_keygen(mcert, err, sizeof err), 0, "%s", err);
    cr_assert_eq(curve_keygen(good, err, sizeof err), 0, "%s", err);
    cr_assert_eq(curve_keygen(stranger, err, sizeof err), 0, "%s", err);
    cr_assert_eq(curve_keygen(good, err, sizeof err), -1, "keygen overwrote a key");

    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "c.png");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--cert", mcert, "--allow", keys, "--local", "1",
                    "--min-workers", "2", "--heartbeat", "250", "mandelbrot", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    /* A stranger's key and a plain connection: neither is let in. */
    char *as_stranger[] = {"--cert", stranger, "--manager-key", mcert, NULL};
    pid_t w1 = t_worker(endpoint, "stranger", wlog, as_stranger, NULL);
    pid_t w2 = t_worker(endpoint, "plain", wlog, NULL, NULL);
    sleep(1);
    cr_assert_not(t_file_contains(mlog, "job mandelbrot started"), "the job started with an intruder");
    cr_assert_not(t_file_contains(mlog, "worker stranger joined"));
    cr_assert_not(t_file_contains(mlog, "worker plain joined"));
    char *as_good[] = {"--cert", good, "--manager-key", mcert, NULL};
    pid_t w3 = t_worker(endpoint, "good", wlog, as_good, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0);
    cr_assert(t_file_contains(mlog, "worker good joined"));
    cr_assert(t_file_contains(mlog, "worker local-1 joined"), "a local worker could not join over CURVE");
    uint8_t *ref = t_mandelbrot_ref(500, 400, -2, 0.5, -1, 1, 255);
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(out, &w, &h);
    cr_assert(png && memcmp(png, ref, 500 * 400) == 0);
    for (pid_t *p = (pid_t[]) {w1, w2, w3, 0}; *p; p++)
        cr_assert_eq(t_stop(*p), 0);
    cr_assert(t_file_contains(wlog, "stranger starting") && !t_file_contains(wlog, "stranger joined"));
    free(png), free(ref);
    free(keys), free(mcert), free(good), free(stranger), free(mlog), free(wlog), free(out);
}

Test(reliability, listening_beyond_this_machine_needs_keys)
{
    char *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", "tcp://0.0.0.0:0", "noop", NULL};
    cr_assert_eq(t_run(argv, log, 10000), 2);
    cr_assert(t_file_contains(log, "hyades-manager keygen"), "the refusal does not say how to make keys");
    cr_assert_not(t_file_contains(log, "listening"));
    char *half[] = {(char *) t_bin("hyades-manager"), "--cert", "x.cert", "noop", NULL};
    cr_assert_eq(t_run(half, log, 10000), 2);
    free(log);
}

Test(reliability, a_curve_server_without_zauth_lets_nobody_in)
{
    /* The trap: a CURVE server with no ZAP handler accepts any client. Ours
       enforces its ZAP domain, so with no zauth running nothing gets through. */
    zcert_t *server_cert = zcert_new(), *client_cert = zcert_new();
    zsock_t *server = zsock_new(ZMQ_PULL);
    char err[256];
    cr_assert_eq(curve_server_setup(server, server_cert, err, sizeof err), 0, "%s", err);
    int port = zsock_bind(server, "tcp://127.0.0.1:*");
    cr_assert_gt(port, 0);
    zsock_t *client = zsock_new(ZMQ_PUSH);
    curve_client_setup(client, client_cert, server_cert);
    zsock_set_sndtimeo(client, 100);
    zsock_connect(client, "tcp://127.0.0.1:%d", port);
    zstr_send(client, "let me in");
    zsock_set_rcvtimeo(server, 700);
    char *got = zstr_recv(server);
    cr_assert_null(got, "a client got through with no ZAP handler");
    zsock_destroy(&client);
    zsock_destroy(&server);
    zcert_destroy(&server_cert);
    zcert_destroy(&client_cert);
}

/* ------------------------------------------------------------ hostile peers */

Test(reliability, a_garbage_flood_is_banned_summarised_and_the_job_completes)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *out = t_path(t_dir, "g.png"), *json = t_path(t_dir, "g.json");
    /* A job long enough (two seconds) to be running through the whole flood. */
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--local", "1", "--json", json, "mandelbrot", "--max-iter",
                    "60000", "-o", out, NULL};
    char *slow[] = {"HYADES_FAILPOINTS=sleep:4", NULL};   /* 500 units: two seconds */
    pid_t manager = t_manager(args, mlog, slow, endpoint, sizeof endpoint);
    cr_assert(t_wait_for(mlog, "job mandelbrot started", NULL, 0, 10000));
    /* A frame over the maximum message size (ZeroMQ drops the connection
       that carries it), then garbage, results that were never asked for and
       16 MiB results with no HELLO first, again and again on new connections. */
    zsock_t *rogue = zsock_new_dealer(endpoint);
    zsock_set_sndtimeo(rogue, 100);
    zframe_t *huge = zframe_new(NULL, HY_MAX_MESSAGE + 1);
    memset(zframe_data(huge), 'H', zframe_size(huge));
    zframe_send(&huge, rogue, 0);
    zsock_destroy(&rogue);
    uint8_t junk[64];
    uint8_t *big = calloc(1, HY_MAX_PAYLOAD);
    long sent = 0;
    for (int round = 0; round < 20; round++) {
        rogue = zsock_new_dealer(endpoint);
        zsock_set_sndtimeo(rogue, 100);
        zsock_set_linger(rogue, 1000);   /* what is queued leaves, however slow the machine */
        for (int i = 0; i < 400; i++, sent++) {
            for (size_t k = 0; k < sizeof junk; k++)
                junk[k] = (uint8_t) (i * 31 + k * 7 + round);
            zframe_t *frame = zframe_new(junk, (size_t) (i % 64));
            zframe_send(&frame, rogue, ZFRAME_DONTWAIT);
        }
        for (int i = 0; i < 50; i++, sent++)
            t_peer_result(rogue, 12345, (uint64_t) i, HY_RESULT_OK, junk, 8);
        if (round % 5 == 0)
            t_peer_result(rogue, 12345, 0, HY_RESULT_OK, big, HY_MAX_PAYLOAD);
        zclock_sleep(20);
        zsock_destroy(&rogue);
    }
    free(big);
    cr_assert_eq(t_wait(manager, 60000), 0, "the job failed");
    cr_assert(t_file_contains(mlog, "banned an unknown peer"), "nobody was banned");
    cr_assert(t_file_contains(mlog, "bad messages or results in the last"), "no summary line");
    int lines = t_count_lines(mlog, " manager ");
    cr_assert_lt(lines, 60, "%d log lines for a flood of %ld messages", lines, sent);
    uint8_t *ref = t_mandelbrot_kernel((mandel_params_t) {500, 400, -2, 0.5, -1, 1, 60000, 1});
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(out, &w, &h);
    cr_assert(png && memcmp(png, ref, 500 * 400) == 0, "the output differs");
    cr_assert_eq(t_json_number(json, "rejected"), 0);
    cr_assert_geq(t_json_number(json, "malformed"), 100);
    free(png), free(ref);
    free(mlog), free(out), free(json);
}

/* ------------------------------------------------------------ journal format */

static void s_count_replay(void *arg, uint64_t unit, const uint8_t *data, size_t len)
{
    uint64_t *seen = arg;
    cr_assert_eq(len, unit + 1, "record %lu has the wrong payload", (unsigned long) unit);
    for (size_t i = 0; i < len; i++)
        cr_assert_eq(data[i], (uint8_t) (unit * 3 + i));
    seen[unit]++;
}

Test(reliability, a_journal_cut_anywhere_replays_exactly_its_whole_records)
{
    char *path = t_path(t_dir, "j"), *cut = t_path(t_dir, "cut"), err[256];
    const uint8_t params[] = {1, 2, 3};
    long ends[6];   /* file size after the header and after each record */
    journal_t *j = journal_open(path, "noop", params, 3, 5, 0, s_count_replay, NULL, err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    journal_flush(j);
    ends[0] = s_file_size(path);
    for (uint64_t u = 0; u < 5; u++) {
        uint8_t data[8];
        for (size_t i = 0; i <= u; i++)
            data[i] = (uint8_t) (u * 3 + i);
        cr_assert_eq(journal_append(j, u, data, u + 1), 0);
        journal_flush(j);
        ends[u + 1] = s_file_size(path);
    }
    journal_close(&j);
    size_t len;
    char *whole = t_read_file(path, &len);
    cr_assert_eq((long) len, ends[5]);
    for (long n = ends[0]; n <= ends[5]; n++) {
        FILE *f = fopen(cut, "wb");
        fwrite(whole, 1, (size_t) n, f);
        fclose(f);
        uint64_t seen[5] = {0};
        j = journal_open(cut, "noop", params, 3, 5, 0, s_count_replay, seen, err, sizeof err);
        cr_assert_not_null(j, "cut at %ld: %s", n, err);
        journal_close(&j);
        for (uint64_t u = 0; u < 5; u++)
            cr_assert_eq(seen[u], n >= ends[u + 1] ? 1u : 0u, "cut at %ld, record %lu", n, (unsigned long) u);
        /* The torn tail is gone: the file ends after the last whole record. */
        long whole_end = ends[0];
        for (int r = 1; r <= 5; r++)
            if (n >= ends[r])
                whole_end = ends[r];
        cr_assert_eq(s_file_size(cut), whole_end, "cut at %ld", n);
    }
    /* A flipped bit inside the record of unit 1: it alone is lost; the
       records after it are kept, and the file is rewritten without it. */
    whole[ends[2] - 2] ^= 0x40;
    FILE *f = fopen(cut, "wb");
    fwrite(whole, 1, len, f);
    fclose(f);
    uint64_t seen[5] = {0};
    j = journal_open(cut, "noop", params, 3, 5, 0, s_count_replay, seen, err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    journal_close(&j);
    for (uint64_t u = 0; u < 5; u++)
        cr_assert_eq(seen[u], u == 1 ? 0u : 1u, "unit %lu", (unsigned long) u);
    cr_assert_eq(s_file_size(cut), ends[5] - (ends[2] - ends[1]), "the damage is still in the file");
    uint64_t again[5] = {0};
    j = journal_open(cut, "noop", params, 3, 5, 0, s_count_replay, again, err, sizeof err);
    journal_close(&j);
    for (uint64_t u = 0; u < 5; u++)
        cr_assert_eq(again[u], u == 1 ? 0u : 1u, "reopened: unit %lu", (unsigned long) u);
    /* Another job's parameters are refused. */
    const uint8_t other[] = {1, 2, 4};
    cr_assert_eq(journal_check(path, "noop", other, 3, 5, 0, err, sizeof err), -1);
    cr_assert_eq(journal_check(path, "noop", params, 3, 6, 0, err, sizeof err), -1);
    cr_assert_eq(journal_check(path, "pi", params, 3, 5, 0, err, sizeof err), -1);
    cr_assert_eq(journal_check(path, "noop", params, 3, 5, 0, err, sizeof err), 0);
    free(whole), free(path), free(cut);
}

/* ------------------------------------------------------------ chaos */

Test(reliability, a_short_chaos_run_changes_no_output_byte, .timeout = 120)
{
    char *log = t_path(t_dir, "chaos.log");
    char *argv[] = {"/bin/bash", "tests/chaos/chaos.sh", "--seconds", "6", "--build", (char *) t_bin(""), NULL};
    int rc = t_run(argv, log, 110000);
    char *text = t_read_file(log, NULL);
    cr_assert_eq(rc, 0, "chaos failed:\n%s", text ? text : "");
    cr_assert(strstr(text, "every output identical"), "%s", text);
    free(text);
    free(log);
}

/* ------------------------------------------------------------ several hosts */

Test(reliability, a_cut_cable_loses_nothing_and_the_worker_rejoins, .timeout = 120)
{
    char *log = t_path(t_dir, "netns.log");
    char *argv[] = {"/bin/bash", "tests/netns/cut_cable.sh", "--build", (char *) t_bin(""), NULL};
    int rc = t_run(argv, log, 110000);
    char *text = t_read_file(log, NULL);
    if (rc == 77)
        cr_skip_test("%s", text ? text : "network namespaces unavailable");
    cr_assert_eq(rc, 0, "%s", text ? text : "");
    free(text);
    free(log);
}
