/* End to end: real manager and worker processes over real sockets; outputs
   compared pixel for pixel with an in-process computation. */
#define _GNU_SOURCE   /* dladdr */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/protocol.h"
#include "jobs/mandelbrot.h"
#include "tests/helpers.h"
#include "tests/reference.h"

TestSuite(e2e, .init = t_setup, .fini = t_teardown, .timeout = 60);

static void s_assert_image(const char *file, mandel_params_t p, const uint8_t *expected)
{
    uint32_t w = 0, h = 0;
    uint8_t *png = t_read_png_gray(file, &w, &h);
    cr_assert_not_null(png, "%s is not a grayscale PNG", file);
    cr_assert_eq(w, p.width);
    cr_assert_eq(h, p.height);
    for (size_t i = 0; i < (size_t) w * h; i++)
        cr_assert_eq(png[i], expected[i], "pixel (%zu, %zu) of %s", i % w, i / w, file);
    free(png);
}

static void s_assert_same_bytes(const char *a, const char *b)
{
    size_t alen, blen;
    char *x = t_read_file(a, &alen), *y = t_read_file(b, &blen);
    cr_assert(x && y && alen == blen && memcmp(x, y, alen) == 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* czmq reports sockets left open; a clean program leaves none. */
static void s_assert_clean_log(const char *log)
{
    cr_assert_not(t_file_contains(log, "dangling"), "%s reports a dangling socket", log);
}

static const mandel_params_t s_small = {301, 203, -2, 0.5, -1, 1, 255, 1};

Test(e2e, local_cluster_output_equals_the_computation)
{
    char *out = t_path(t_dir, "a.png"), *json = t_path(t_dir, "a.json"), *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--json", json, "mandelbrot",
                    "--width", "301", "--height", "203", "-o", out, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 0);
    uint8_t *ref = t_mandelbrot_ref(301, 203, -2, 0.5, -1, 1, 255);
    s_assert_image(out, s_small, ref);
    cr_assert_eq(t_json_number(json, "units"), 301);
    cr_assert_eq(t_json_number(json, "done"), 301);
    s_assert_clean_log(log);
    free(ref);
    free(out), free(json), free(log);
}

Test(e2e, static_scheduling_gives_the_same_bytes_and_splits_k_mod_n)
{
    char *a = t_path(t_dir, "dynamic.png"), *b = t_path(t_dir, "static.png");
    char *json = t_path(t_dir, "static.json"), *log = t_path(t_dir, "m.log");
    char *dyn[] = {(char *) t_bin("hyades-manager"), "--local", "2", "mandelbrot", "--width", "301",
                   "--height", "203", "-o", a, NULL};
    char *stat[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--schedule", "static", "--json",
                    json, "mandelbrot", "--width", "301", "--height", "203", "-o", b, NULL};
    cr_assert_eq(t_run(dyn, log, 30000), 0);
    cr_assert_eq(t_run(stat, log, 30000), 0);
    s_assert_same_bytes(a, b);
    /* 301 columns over 2 workers: 151 even ones and 150 odd ones. */
    char *text = t_read_file(json, NULL);
    cr_assert(strstr(text, "\"units\":151,") && strstr(text, "\"units\":150,"), "split: %s", text);
    free(text);
    free(a), free(b), free(json), free(log);
}

/* Starts a manager on an ephemeral loopback port; returns its pid and endpoint. */
static pid_t s_manager_bind(const char *bind, char *const extra[], const char *log, char *endpoint,
                            size_t endpoint_len)
{
    char *argv[40] = {(char *) t_bin("hyades-manager"), "--bind", (char *) bind};
    int argc = 3;
    for (int i = 0; extra[i]; i++)
        argv[argc++] = extra[i];
    pid_t pid = t_spawn(argv, log, NULL);
    cr_assert(t_wait_for(log, "listening on ", endpoint, endpoint_len, 10000), "manager did not bind");
    return pid;
}

static pid_t s_worker_env(const char *endpoint, const char *name, const char *log, char *const env[])
{
    char *argv[] = {(char *) t_bin("hyades-worker"), "--connect", (char *) endpoint, "--threads", "1",
                    "--name", (char *) name, "--heartbeat", "200", NULL};
    return t_spawn(argv, log, env);
}

static pid_t s_worker(const char *endpoint, const char *name, const char *log)
{
    return s_worker_env(endpoint, name, log, NULL);
}

/* Starts n workers named w0, w1, ... */
static void s_workers(const char *endpoint, pid_t *pids, int n, const char *log)
{
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        pids[i] = s_worker(endpoint, name, log);
    }
}

/* Static scheduling on --bind with the default --min-workers starts with the
   first worker: the manager says what that means, and the job is exact. */
Test(e2e, static_scheduling_on_one_remote_worker_says_so)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "s.png");
    char *extra[] = {"--schedule", "static", "mandelbrot", "--width", "50", "--height", "30", "-o", out, NULL};
    pid_t manager = s_manager_bind("tcp://127.0.0.1:0", extra, mlog, endpoint, sizeof endpoint);
    pid_t worker = t_worker(endpoint, "only", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0);
    cr_assert(t_file_contains(mlog, "static scheduling with one worker"));
    uint8_t *ref = t_mandelbrot_ref(50, 30, -2, 0.5, -1, 1, 255);
    s_assert_image(out, (mandel_params_t) {50, 30, -2, 0.5, -1, 1, 255, 1}, ref);
    t_stop(worker);
    free(ref), free(mlog), free(wlog), free(out);
}

Test(e2e, remote_workers_serve_successive_managers)
{
    char endpoint[256];
    char *out1 = t_path(t_dir, "1.png"), *out2 = t_path(t_dir, "2.png"), *json = t_path(t_dir, "2.json");
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *extra1[] = {"--min-workers", "3", "--heartbeat", "200", "mandelbrot", "--width", "301",
                      "--height", "203", "-o", out1, NULL};
    pid_t manager = s_manager_bind("tcp://127.0.0.1:0", extra1, mlog, endpoint, sizeof endpoint);
    pid_t workers[3];
    s_workers(endpoint, workers, 3, wlog);
    cr_assert_eq(t_wait(manager, 30000), 0);
    uint8_t *ref = t_mandelbrot_ref(301, 203, -2, 0.5, -1, 1, 255);
    s_assert_image(out1, s_small, ref);

    /* The same workers, still running, serve a second manager on the same endpoint. */
    char *mlog2 = t_path(t_dir, "m2.log");
    char *argv2[] = {(char *) t_bin("hyades-manager"), "--bind", endpoint, "--min-workers", "3",
                     "--json", json, "mandelbrot", "--width", "301", "--height", "203", "-o", out2, NULL};
    cr_assert_eq(t_run(argv2, mlog2, 30000), 0);
    s_assert_same_bytes(out1, out2);
    cr_assert_eq(t_json_number(json, "done"), 301);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(t_stop(workers[i]), 0, "worker %d did not stop cleanly", i);
    s_assert_clean_log(mlog);
    s_assert_clean_log(mlog2);
    s_assert_clean_log(wlog);
    free(ref);
    free(out1), free(out2), free(json), free(mlog), free(mlog2), free(wlog);
}

Test(e2e, a_killed_worker_loses_nothing)
{
    /* Slow enough (10 ms a unit) that the job is still running when a worker dies. */
    const mandel_params_t p = {300, 200, -2, 0.5, -1, 1, 200000, 1};
    char endpoint[256];
    char *out = t_path(t_dir, "k.png"), *json = t_path(t_dir, "k.json");
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *extra[] = {"--min-workers", "3", "--heartbeat", "200", "--json", json, "mandelbrot",
                     "--width", "300", "--height", "200", "--max-iter", "200000", "-o", out, NULL};
    pid_t manager = s_manager_bind("tcp://127.0.0.1:0", extra, mlog, endpoint, sizeof endpoint);
    pid_t workers[3];
    char *slow[] = {"HYADES_FAILPOINTS=sleep:10", NULL};
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        workers[i] = s_worker_env(endpoint, name, wlog, slow);
    }
    cr_assert(t_wait_for(mlog, "job mandelbrot started", NULL, 0, 10000));
    usleep(300 * 1000);
    kill(workers[1], SIGKILL);
    cr_assert_eq(t_wait(workers[1], 5000), 128 + SIGKILL);
    uint8_t *expected = t_mandelbrot_kernel(p);
    cr_assert_eq(t_wait(manager, 50000), 0, "the manager failed");
    s_assert_image(out, p, expected);
    cr_assert(t_file_contains(mlog, "worker w1 lost"));
    cr_assert_geq(t_json_number(json, "reissued"), 1, "no unit was re-issued");
    cr_assert_eq(t_stop(workers[0]), 0);
    cr_assert_eq(t_stop(workers[2]), 0);
    free(expected);
    free(out), free(json), free(mlog), free(wlog);
}

Test(e2e, a_worker_started_first_joins_when_the_manager_appears)
{
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/manager.ipc", t_dir);
    char *out = t_path(t_dir, "late.png"), *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    pid_t worker = s_worker(endpoint, "early", wlog);
    usleep(700 * 1000);   /* longer than its first wait for a WELCOME */
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", endpoint, "mandelbrot", "--width", "301",
                    "--height", "203", "-o", out, NULL};
    cr_assert_eq(t_run(argv, mlog, 30000), 0);
    uint8_t *ref = t_mandelbrot_ref(301, 203, -2, 0.5, -1, 1, 255);
    s_assert_image(out, s_small, ref);
    cr_assert(t_file_contains(mlog, "worker early joined"));
    cr_assert_eq(t_stop(worker), 0);
    free(ref);
    free(out), free(mlog), free(wlog);
}

/* Pids of the direct children of pid. */
Test(e2e, interrupting_the_manager_stops_its_workers_and_writes_nothing)
{
    char *out = t_path(t_dir, "never.png"), *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "mandelbrot", "--max-iter",
                    "1000000", "-o", out, NULL};
    pid_t manager = t_spawn(argv, log, NULL);
    cr_assert(t_wait_for(log, "job mandelbrot started", NULL, 0, 10000));
    pid_t kids[8];
    size_t n = t_children(manager, kids, 8);
    cr_assert_eq(n, 2, "expected 2 local workers, found %zu", n);
    kill(manager, SIGINT);
    int rc = t_wait(manager, 10000);
    cr_assert(rc != 0 && rc != -1, "manager exit status %d", rc);
    cr_assert_eq(access(out, F_OK), -1, "an incomplete output was written");
    for (size_t i = 0; i < n; i++)
        cr_assert(kill(kids[i], 0) != 0, "local worker %d survived its manager", (int) kids[i]);
    cr_assert(t_file_contains(log, "interrupted"));
    free(out), free(log);
}

/* Sends raw bytes as one frame. */
static void s_send_raw(zsock_t *sock, const void *data, size_t len)
{
    zframe_t *frame = zframe_new(data, len);
    zframe_send(&frame, sock, 0);
}

/* The summary's rate is of the work: the time spent waiting for
   --min-workers is reported apart (waited_seconds), not spread over it. */
Test(e2e, the_rate_leaves_out_the_wait_for_workers)
{
    char endpoint[256];
    char *json = t_path(t_dir, "w.json"), *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *extra[] = {"--local", "1", "--min-workers", "2", "--json", json, "noop", "--units", "20000", NULL};
    pid_t manager = s_manager_bind("tcp://127.0.0.1:0", extra, mlog, endpoint, sizeof endpoint);
    cr_assert(t_wait_for(mlog, "worker local-1 joined", NULL, 0, 10000));
    usleep(1500000);
    pid_t late = t_worker(endpoint, "late", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 60000), 0);
    double seconds = t_json_real(json, "seconds"), waited = t_json_real(json, "waited_seconds");
    double rate = t_json_real(json, "units_per_second");
    cr_assert(waited >= 1.4 && waited < seconds, "waited %.3f s of %.3f s (the second worker came after 1.5 s)",
              waited, seconds);
    double computed = rate * (seconds - waited);
    cr_assert(computed > 20000 * 0.99 && computed < 20000 * 1.01,
              "%.1f units/s over %.3f s of work is %.0f units, not the 20000 done", rate, seconds - waited, computed);
    cr_assert(t_file_contains(mlog, "of them waiting for workers"), "the summary does not say how long it waited");
    t_stop(late);
    free(json), free(mlog), free(wlog);
}

/* The units of worker name in the idx-th (from 0) record of a --json file, or -1. */
static long long s_worker_units(const char *json, int idx, const char *name)
{
    char *text = t_read_file(json, NULL), *line = text;
    for (int i = 0; line && i < idx; i++)
        line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL;
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"name\":\"%s\",", name);
    char *end = line ? strchr(line, '\n') : NULL, *at = line ? strstr(line, pattern) : NULL;
    char *units = at && (!end || at < end) ? strstr(at, "\"units\":") : NULL;
    long long v = units ? strtoll(units + 8, NULL, 10) : -1;
    free(text);
    return v;
}

/* primesieve is loaded by the first sieve unit, not at start: a worker on
   a machine without it (here: its file hidden by a mount of /dev/null, in
   a mount namespace of its own) fails the sieve's units with the reason,
   which go to another worker, and still computes every other job. */
/* The file libprimesieve is loaded from, into real (it can be hidden from a
   process by a mount over it); skips the test where mount namespaces are
   not open to it. */
static void s_primesieve_file(char real[PATH_MAX])
{
    void *lib = dlopen(PRIMESIEVE_SONAME, RTLD_NOW | RTLD_LOCAL);
    Dl_info info;
    cr_assert(lib && dladdr(dlsym(lib, "primesieve_count_primes"), &info) && realpath(info.dli_fname, real));
    dlclose(lib);
    if (system("unshare -m true 2>/dev/null") != 0)
        cr_skip_test("no mount namespace here (unshare -m needs root)");
}

Test(e2e, a_worker_without_primesieve_serves_every_other_job)
{
    char real[PATH_MAX];
    s_primesieve_file(real);
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *json = t_path(t_dir, "b.json"), *batch = t_path(t_dir, "jobs.txt");
    char *primes = t_path(t_dir, "p.txt"), *png = t_path(t_dir, "m.png");
    FILE *f = fopen(batch, "w");
    fprintf(f, "primes --method sieve --to 3000000 --range-size 100000 -o %s\nmandelbrot --width 120 --height 80 -o %s\n",
            primes, png);
    fclose(f);
    char *extra[] = {"--local", "0", "--min-workers", "2", "--json", json, "--batch", batch, NULL};
    pid_t manager = s_manager_bind("tcp://127.0.0.1:0", extra, mlog, endpoint, sizeof endpoint);
    char script[PATH_MAX * 2 + 512];
    snprintf(script, sizeof script, "mount --bind /dev/null %s && exec %s --connect %s --threads 1 --name nolib", real,
             t_bin("hyades-worker"), endpoint);
    char *hidden[] = {"/usr/bin/unshare", "-m", "sh", "-c", script, NULL};
    char *wlog = t_path(t_dir, "nolib.log"), *glog = t_path(t_dir, "good.log");
    pid_t nolib = t_spawn(hidden, wlog, NULL);
    cr_assert(t_wait_for(mlog, "worker nolib joined", NULL, 0, 10000));
    pid_t good = s_worker(endpoint, "good", glog);
    cr_assert_eq(t_wait(manager, 60000), 0, "the batch failed");
    cr_assert(t_file_contains(mlog, "failed on worker nolib: a library this job needs cannot be loaded on this worker"));
    size_t len, want_len;
    uint64_t count;
    char *got = t_read_file(primes, &len), *want = ref_primes_text(1, 3000000, &want_len, &count);
    cr_assert(got && len == want_len && memcmp(got, want, len) == 0, "the primes list differs");
    cr_assert_eq(s_worker_units(json, 0, "nolib"), 0, "worker nolib returned sieve units");
    cr_assert_gt(s_worker_units(json, 1, "nolib"), 0, "worker nolib computed none of the mandelbrot job");
    uint32_t w, h;
    uint8_t *img = t_read_png_gray(png, &w, &h), *ref = t_mandelbrot_ref(120, 80, -2, 0.5, -1, 1, 255);
    cr_assert(img && ref && w == 120 && h == 80 && memcmp(img, ref, 120 * 80) == 0, "the image differs");
    t_stop(good);
    t_stop(nolib);
    free(got), free(want), free(img), free(ref);
    free(mlog), free(json), free(batch), free(primes), free(png), free(wlog), free(glog);
}

/* The same with no worker that has primesieve (the manager's own local
   workers, all in its mount namespace): the job fails at once, and its one
   line says why the units failed. */
Test(e2e, a_sieve_no_worker_can_run_fails_with_the_reason)
{
    char real[PATH_MAX];
    s_primesieve_file(real);
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "p.txt");
    char script[PATH_MAX * 2 + 512];
    snprintf(script, sizeof script, "mount --bind /dev/null %s && exec %s --quiet --local 2 primes --method sieve"
             " --to 10000000 -o %s", real, t_bin("hyades-manager"), out);
    char *argv[] = {"/usr/bin/unshare", "-m", "sh", "-c", script, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 1);
    cr_assert(t_file_contains(log, "the job's last failure: a library this job needs cannot be loaded on this worker"),
              "the job's failure does not say why its units failed");
    cr_assert_neq(access(out, F_OK), 0);
    free(log), free(out);
}

Test(e2e, a_rogue_peer_cannot_spoil_the_job)
{
    char endpoint[256];
    char *out = t_path(t_dir, "r.png"), *json = t_path(t_dir, "r.json"), *mlog = t_path(t_dir, "m.log");
    char *extra[] = {"--local", "1", "--min-workers", "2", "--heartbeat", "100", "--json", json,
                     "mandelbrot", "--width", "301", "--height", "203", "-o", out, NULL};
    pid_t manager = s_manager_bind("tcp://127.0.0.1:0", extra, mlog, endpoint, sizeof endpoint);
    zsock_t *rogue = zsock_new_dealer(endpoint);
    cr_assert_not_null(rogue);
    zsock_set_rcvtimeo(rogue, 5000);

    /* Garbage, then a message of a future protocol version. */
    s_send_raw(rogue, "GET / HTTP/1.0\r\n\r\n", 18);
    s_send_raw(rogue, "HY", 2);
    uint8_t future[] = {'H', 'Y', HY_PROTOCOL_VERSION + 1, HY_HELLO, 0, 0};
    s_send_raw(rogue, future, sizeof future);
    zframe_t *reply = zframe_recv(rogue);
    cr_assert_not_null(reply, "no answer to a message of another version");
    hy_msg_t msg;
    cr_assert_eq(hy_decode(zframe_data(reply), zframe_size(reply), &msg), 0);
    cr_assert_eq(msg.command, HY_GOODBYE);
    zframe_destroy(&reply);

    /* Join for real, take units, answer with lies, then fall silent. (It
       joins once the local worker did, so that the job starts at once:
       it never beats, and it has 300 ms before it counts as lost.) */
    cr_assert(t_wait_for(mlog, "worker local-1 joined", NULL, 0, 10000));
    cr_assert_eq(t_peer_hello(rogue, "rogue", 4, "mandelbrot"), 0);
    uint64_t job = 0, units[64];
    size_t got = 0;
    for (int i = 0; i < 20 && got == 0; i++) {
        zframe_t *f = zframe_recv(rogue);
        cr_assert_not_null(f);
        if (hy_decode(zframe_data(f), zframe_size(f), &msg) == 0 && msg.command == HY_UNITS) {
            job = msg.job;
            for (size_t k = 0; k < msg.unit_count && got < 64; k++)
                units[got++] = hy_unit_at(&msg, k);
        }
        zframe_destroy(&f);
    }
    cr_assert_gt(got, 0, "the rogue got no units");
    uint8_t wrong[7] = {0};
    t_peer_result(rogue, job, units[0], HY_RESULT_OK, wrong, sizeof wrong);   /* wrong payload size: rejected */
    t_peer_result(rogue, job, 1u << 30, HY_RESULT_OK, wrong, sizeof wrong);   /* no such unit */
    t_peer_result(rogue, job + 1, units[1], HY_RESULT_OK, wrong, sizeof wrong);   /* no such job */

    cr_assert_eq(t_wait(manager, 30000), 0, "the manager failed");
    zsock_destroy(&rogue);
    uint8_t *ref = t_mandelbrot_ref(301, 203, -2, 0.5, -1, 1, 255);
    s_assert_image(out, s_small, ref);
    char future_line[64];
    snprintf(future_line, sizeof future_line, "speaks protocol version %d", HY_PROTOCOL_VERSION + 1);
    cr_assert(t_file_contains(mlog, future_line));
    cr_assert(t_file_contains(mlog, "failed on worker rogue: its result was malformed (7 bytes, not the 203 of its 1 "
                                    "column)"), "the refusal does not say why");
    cr_assert(t_file_contains(mlog, "worker rogue lost"));
    cr_assert(t_file_contains(mlog, " 1 refused results, "), "the refused payload is not counted as such");
    cr_assert_geq(t_json_number(json, "rejected"), 1);
    cr_assert_geq(t_json_number(json, "reissued"), 1);
    cr_assert_geq(t_json_number(json, "unsolicited"), 2);
    free(ref);
    free(out), free(json), free(mlog);
}

/* ------------------------------------------------------------ every job */

/* Runs the manager with args (NULL-terminated), expecting exit 0. */
static void s_manager_ok(char *const args[], const char *log)
{
    char *argv[48] = {(char *) t_bin("hyades-manager"), "--quiet"};
    int argc = 2;
    for (int i = 0; args[i]; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    cr_assert_eq(t_run(argv, log, 60000), 0, "%s %s failed", args[0], args[1]);
}

Test(e2e, pi_gives_the_same_hits_on_1_2_3_workers_static_and_dynamic)
{
    uint64_t want = ref_pi_hits(300007, 31, 9);
    char *json = t_path(t_dir, "pi.json"), *log = t_path(t_dir, "m.log");
    const char *counts[] = {"1", "2", "3"}, *policies[] = {"dynamic", "static"};
    for (int c = 0; c < 3; c++)
        for (int s = 0; s < 2; s++) {
            char *args[] = {"--local", (char *) counts[c], "--schedule", (char *) policies[s], "pi", "--samples",
                            "300007", "--units", "31", "--seed", "9", "-o", json, NULL};
            s_manager_ok(args, log);
            cr_assert_eq((uint64_t) t_json_number(json, "hits"), want, "%s workers, %s", counts[c], policies[s]);
            unlink(json);
        }
    free(json), free(log);
}

Test(e2e, primes_on_a_local_cluster_equal_the_reference)
{
    size_t want_len;
    uint64_t count;
    char *want = ref_primes_text(1, 200000, &want_len, &count);
    char *out = t_path(t_dir, "p.txt"), *log = t_path(t_dir, "m.log");
    const char *methods[] = {"trial", "sieve"};
    for (int m = 0; m < 2; m++) {
        char *args[] = {"--local", "3", "primes", "--to", "200000", "--range-size", "7919", "--method",
                        (char *) methods[m], "-o", out, NULL};
        s_manager_ok(args, log);
        size_t len;
        char *got = t_read_file(out, &len);
        cr_assert(got && len == want_len && memcmp(got, want, len) == 0, "%s: list differs", methods[m]);
        free(got);
    }
    free(want);
    free(out), free(log);
}

Test(e2e, frames_are_the_same_bytes_on_any_cluster)
{
    char *a = t_path(t_dir, "a.gif"), *b = t_path(t_dir, "b.gif"), *log = t_path(t_dir, "m.log");
    char *one[] = {"--local", "1", "frames", "--count", "700", "--seed", "3", "-o", a, NULL};
    char *three[] = {"--local", "3", "--schedule", "static", "frames", "--count", "700", "--seed", "3",
                     "--frames-per-unit", "9", "-o", b, NULL};
    s_manager_ok(one, log);
    s_manager_ok(three, log);
    s_assert_same_bytes(a, b);
    struct GifFileType *gif = t_gif_open(a);
    for (int f = 0; f < 700; f += 699)
        for (uint32_t i = 0; i < 100; i++) {
            uint8_t want[3], got[3];
            ref_frame_pixel(3, 10, (uint32_t) f, i % 10, i / 10, want);
            t_gif_pixel(gif, f, i, got);
            cr_assert(memcmp(got, want, 3) == 0, "frame %d pixel %u", f, i);
        }
    t_gif_close(gif);
    free(a), free(b), free(log);
}

/* Runs job (args after the manager options) on a manager and three workers,
   kills one worker with SIGKILL mid-job, and expects the job to complete with
   units re-issued. */
static void s_kill_mid_job(char *const job[])
{
    char endpoint[256];
    char *json = t_path(t_dir, "kill.json"), *mlog = t_path(t_dir, "kill.log"), *wlog = t_path(t_dir, "w.log");
    char *extra[48] = {"--min-workers", "3", "--heartbeat", "200", "--json", json};
    int n = 6;
    for (int i = 0; job[i]; i++)
        extra[n++] = job[i];
    extra[n] = NULL;
    pid_t manager = s_manager_bind("tcp://127.0.0.1:0", extra, mlog, endpoint, sizeof endpoint);
    pid_t workers[3];
    s_workers(endpoint, workers, 3, wlog);
    cr_assert(t_wait_for(mlog, " started", NULL, 0, 10000));
    usleep(300 * 1000);
    kill(workers[1], SIGKILL);
    cr_assert_eq(t_wait(manager, 60000), 0, "the manager failed");
    cr_assert(t_file_contains(mlog, "worker w1 lost"));
    cr_assert_geq(t_json_number(json, "reissued"), 1, "no unit was re-issued");
    cr_assert_eq(t_stop(workers[0]), 0);
    cr_assert_eq(t_stop(workers[2]), 0);
    free(json), free(mlog), free(wlog);
}

/* Runs job (its words, without -o) with a worker killed mid-job, then
   fault-free on a local cluster, and compares the two outputs (named name). */
static void s_killed_equals_fault_free(char *const job[], const char *name)
{
    char clean_name[64];
    snprintf(clean_name, sizeof clean_name, "clean-%s", name);
    char *out = t_path(t_dir, name), *clean = t_path(t_dir, clean_name), *log = t_path(t_dir, "m.log");
    char *killed[32], *fault_free[32] = {"--local", "2"};
    int n = 0;
    for (; job[n]; n++)
        killed[n] = fault_free[n + 2] = job[n];
    killed[n] = "-o", killed[n + 1] = out, killed[n + 2] = NULL;
    fault_free[n + 2] = "-o", fault_free[n + 3] = clean, fault_free[n + 4] = NULL;
    s_kill_mid_job(killed);
    s_manager_ok(fault_free, log);
    s_assert_same_bytes(out, clean);
    free(clean), free(out), free(log);
}

Test(e2e, a_killed_worker_loses_no_pi_samples)
{
    char *job[] = {"pi", "--samples", "1500000000", "--units", "60", NULL};
    s_killed_equals_fault_free(job, "pi.json");
}

Test(e2e, a_killed_worker_loses_no_primes)
{
    char *out = t_path(t_dir, "p.txt");
    char *job[] = {"primes", "--from", "1000000000000", "--to", "1000000200000", "-o", out, NULL};
    s_kill_mid_job(job);
    size_t want_len, len;
    uint64_t count;
    char *want = ref_primes_text(1000000000000ull, 1000000200000ull, &want_len, &count);
    char *got = t_read_file(out, &len);
    cr_assert(got && len == want_len && memcmp(got, want, len) == 0, "the list differs from the reference");
    free(want), free(got), free(out);
}

Test(e2e, a_killed_worker_loses_no_frames)
{
    char *job[] = {"frames", "--scene", "zoom", "--count", "120", NULL};
    s_killed_equals_fault_free(job, "z.gif");
}

/* At the end of a dynamic job, a worker with nothing to do takes over units
   still queued behind a slow worker's running one, instead of waiting. */
Test(e2e, an_idle_worker_takes_over_units_queued_on_a_slow_one_at_the_end)
{
    char endpoint[256];
    char *out = t_path(t_dir, "r.png"), *json = t_path(t_dir, "r.json");
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--json", json, "mandelbrot",
                    "--width", "301", "--height", "203", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *slow[] = {"HYADES_FAILPOINTS=sleep:300", NULL};
    pid_t slug = t_worker(endpoint, "slow", wlog, NULL, slow);
    pid_t quick = t_worker(endpoint, "quick", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0);
    uint8_t *ref = t_mandelbrot_ref(301, 203, -2, 0.5, -1, 1, 255);
    s_assert_image(out, s_small, ref);
    cr_assert_geq(t_json_number(json, "rebalanced"), 1, "the slow worker's queue was left to it");
    cr_assert_eq(t_json_number(json, "reissued"), 0, "moving a unit is not re-issuing it");
    cr_assert_eq(t_stop(slug), 0);
    cr_assert_eq(t_stop(quick), 0);
    free(ref);
    free(out), free(json), free(mlog), free(wlog);
}

/* --exit-when-done: the worker leaves when its manager finishes... */
Test(e2e, a_worker_with_exit_when_done_leaves_when_its_manager_finishes)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "noop", "--units", "50", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *leave[] = {"--exit-when-done", NULL};
    pid_t worker = t_worker(endpoint, "leaver", wlog, leave, NULL);
    cr_assert_eq(t_wait(manager, 20000), 0);
    cr_assert_eq(t_wait(worker, 10000), 0, "the worker did not leave with its manager");
    cr_assert(t_file_contains(wlog, "exiting (--exit-when-done)"));
    free(mlog), free(wlog);
}

/* ... or when the manager it joined is gone for --gone-after seconds. */
Test(e2e, a_worker_with_exit_when_done_leaves_when_its_manager_is_gone)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--heartbeat", "250", "noop", "--units", "1000", "--sleep-ms",
                    "100", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *leave[] = {"--exit-when-done", "--gone-after", "1", NULL};
    pid_t worker = t_worker(endpoint, "leaver", wlog, leave, NULL);
    cr_assert(t_wait_for(mlog, "job noop started", NULL, 0, 10000));
    kill(manager, SIGKILL);
    t_wait(manager, 5000);
    cr_assert_eq(t_wait(worker, 15000), 0, "the worker waited for a manager that is gone");
    cr_assert(t_file_contains(wlog, "no manager for"));
    free(mlog), free(wlog);
}

/* ... and fails when no manager ever came in --gone-after seconds. */
Test(e2e, a_worker_with_exit_when_done_leaves_when_no_manager_ever_comes)
{
    char *wlog = t_path(t_dir, "w.log");
    char *leave[] = {"--exit-when-done", "--gone-after", "1", NULL};
    pid_t worker = t_worker("tcp://127.0.0.1:1", "lonely", wlog, leave, NULL);
    cr_assert_eq(t_wait(worker, 15000), 1, "the worker waited forever for a manager, or called it a success");
    cr_assert(t_file_contains(wlog, "no manager at tcp://127.0.0.1:1 in 1 s"));
    free(wlog);
}

/* A job that writes no file refuses -o rather than claim an output it never writes. */
Test(e2e, noop_refuses_an_output_it_would_not_write)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "never");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "-o", out, "noop", "--units", "5", NULL};
    cr_assert_eq(t_run(argv, log, 20000), 2);
    cr_assert(t_file_contains(log, "noop writes no output file"));
    cr_assert_neq(access(out, F_OK), 0);
    free(log), free(out);
}

/* A port ZeroMQ would wrap around (70000 binds 4464) is a bad command line,
   for the manager's --bind and for the worker's --connect (which would
   otherwise reach whoever listens on the wrapped port). */
Test(e2e, a_port_beyond_65535_is_refused)
{
    char *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", "tcp://127.0.0.1:70000", "noop", NULL};
    cr_assert_eq(t_run(argv, log, 10000), 2);
    cr_assert(t_file_contains(log, "the port must be a number from 0 to 65535"));
    const char *bad[] = {"tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1:*", "tcp://127.0.0.1:5x",
                         "tcp://127.0.0.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%zu.log", i);
        char *wlog = t_path(t_dir, name);
        char *wargv[] = {(char *) t_bin("hyades-worker"), "--connect", (char *) bad[i], NULL};
        cr_assert_eq(t_run(wargv, wlog, 10000), 2, "%s", bad[i]);
        cr_assert(t_file_contains(wlog, "the port must be a number from 1 to 65535"), "%s", bad[i]);
        free(wlog);
    }
    free(log);
}

/* The bench's swarm of simulated workers refuses what it cannot do
   instead of crashing, hanging or reporting zero workers. */
Test(e2e, the_swarm_tool_refuses_bad_command_lines)
{
    char *bad[][5] = {
        {"tcp://127.0.0.1:5555", "-1", "1"},     {"tcp://127.0.0.1:5555", "abc", "1"},
        {"tcp://127.0.0.1:5555", "99999999999", "1"}, {"tcp://127.0.0.1:5555", "10", "1.5"},
        {"tcp://127.0.0.1:5555", "10", "0"},     {"tcp://127.0.0.1:99999", "10", "1"},
        {"--bare-manager", "tcp://127.0.0.1:5555", "extra"}, {"--bare-manager", "tcp://127.0.0.1:70000"},
        {"tcp://127.0.0.1:5555", "100000", "1"},   /* beyond the open-files limit, where it is */
    };
    struct rlimit rl;
    bool room = getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= 200064);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] - room; i++) {
        char *argv[6] = {(char *) t_bin("hyades-swarm")};
        for (int k = 0; k < 3 && bad[i][k]; k++)
            argv[k + 1] = bad[i][k];
        cr_assert_eq(t_run(argv, NULL, 10000), 2, "case %zu", i);
    }
}

/* An --allow directory anyone can write to would let anyone in. */
Test(e2e, a_world_writable_allow_directory_is_refused)
{
    char *log = t_path(t_dir, "m.log"), *cert = t_path(t_dir, "m.cert"), *allow = t_path(t_dir, "allow");
    char *keygen[] = {(char *) t_bin("hyades-manager"), "keygen", cert, NULL};
    cr_assert_eq(t_run(keygen, NULL, 10000), 0);
    cr_assert_eq(mkdir(allow, 0777), 0);
    chmod(allow, 0777);
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", "tcp://127.0.0.1:0", "--cert", cert, "--allow", allow,
                    "noop", NULL};
    cr_assert_eq(t_run(argv, log, 10000), 1);
    cr_assert(t_file_contains(log, "is writable by every user"));
    free(log), free(cert), free(allow);
}
