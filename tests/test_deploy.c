/* Deployment: batch files, the installed tree, the ssh launcher. (The
   docker-compose cluster has its own test: make docker-test.) */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "tests/reference.h"

TestSuite(deploy, .init = t_setup, .fini = t_teardown, .timeout = 90);

static char *s_write(const char *name, const char *text)
{
    char *path = t_path(t_dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static size_t s_count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void s_assert_primes_file(const char *path, uint64_t to)
{
    size_t want_len, len;
    uint64_t count;
    char *want = ref_primes_text(1, to, &want_len, &count);
    char *got = t_read_file(path, &len);
    cr_assert(got && len == want_len && memcmp(got, want, len) == 0, "%s differs from the reference", path);
    free(want), free(got);
}

Test(deploy, a_batch_runs_every_job_and_continues_past_a_failure)
{
    char text[2048];
    snprintf(text, sizeof text,
             "# several kinds on the same workers\n"
             "mandelbrot --width 120 --height 90 -o %s/m.png\n"
             "\n"
             "pi --samples 200000 --units 20 --seed 3 -o '%s/pi result.json'   # a quoted path\n"
             "frames --count 30 --frames-dir %s/m.png -o %s/never.gif   # line 2 made a file there\n"
             "primes --to 50000 --method sieve --range-size 7000 -o %s/p.txt\n",
             t_dir, t_dir, t_dir, t_dir, t_dir);
    char *batch = s_write("jobs.txt", text), *json = t_path(t_dir, "runs.json"), *log = t_path(t_dir, "out.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--json", json, "--batch", batch, NULL};
    cr_assert_eq(t_run(argv, log, 60000), 1, "a batch with a failed job must exit 1");

    char *out = t_read_file(log, NULL);
    cr_assert(strstr(out, "line 2: mandelbrot ok"), "%s", out);
    cr_assert(strstr(out, "line 4: pi ok"), "%s", out);
    cr_assert(strstr(out, "line 5: frames FAILED: --frames-dir") && strstr(out, "m.png: Not a directory"), "%s", out);
    cr_assert(strstr(out, "line 6: primes ok"), "the batch stopped at the failure:\n%s", out);
    cr_assert(strstr(out, "1 of 4 jobs failed"), "%s", out);
    char *records = t_read_file(json, NULL);
    cr_assert_eq(s_count(records, "\n"), 4, "one JSON record per job:\n%s", records);
    cr_assert_eq(s_count(records, "\"status\":\"ok\""), 3);
    cr_assert(strstr(records, "\"line\":5,\"status\":\"failed\""));

    char *png = t_path(t_dir, "m.png"), *pi = t_path(t_dir, "pi result.json"), *primes = t_path(t_dir, "p.txt");
    uint32_t w, h;
    uint8_t *pixels = t_read_png_gray(png, &w, &h), *ref = t_mandelbrot_ref(120, 90, -2, 0.5, -1, 1, 255);
    cr_assert(pixels && w == 120 && h == 90 && memcmp(pixels, ref, 120 * 90) == 0);
    cr_assert_eq((uint64_t) t_json_number(pi, "hits"), ref_pi_hits(200000, 20, 3));
    s_assert_primes_file(primes, 50000);
    char *never = t_path(t_dir, "never.gif");
    cr_assert_eq(access(never, F_OK), -1, "the failed job left an output");
    free(pixels), free(ref), free(out), free(records);
    free(batch), free(json), free(log), free(png), free(pi), free(primes), free(never);
}

/* A batch file from elsewhere: a control character in a line (an escape
   sequence that the messages quoting the line would send to the terminal)
   is refused by number, without echoing it; a UTF-8 byte-order mark at the
   start (as some editors write) is skipped. */
/* Runs the batch text (written as name) on a local worker; its exit
   status, its output in *log (caller frees). */
static int s_run_batch(const char *name, const char *text, char **log)
{
    char *batch = s_write(name, text), logname[64];
    snprintf(logname, sizeof logname, "%s.log", name);
    *log = t_path(t_dir, logname);
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--batch", batch, NULL};
    int rc = t_run(argv, *log, 30000);
    free(batch);
    return rc;
}

Test(deploy, batch_lines_are_text)
{
    char *log;
    cr_assert_eq(s_run_batch("esc.txt", "noop --units 3\r\nnoop --units 2 -o x\033]0;owned\007\n", &log), 2);
    char *out = t_read_file(log, NULL);
    cr_assert(strstr(out, "esc.txt:2: a control character (0x1b) at byte 20: not a text line"), "%s", out);
    cr_assert_null(memchr(out, 0x1b, strlen(out)), "the escape reached the terminal");
    free(out), free(log);
    /* A CR inside a line (it was taken for a space: "-o c" and "d.json"). */
    cr_assert_eq(s_run_batch("cr.txt", "noop --units 3\r\npi -o c\rd.json\r\n", &log), 2);
    cr_assert(t_file_contains(log, "cr.txt:2: a control character (0x0d) at byte 8: not a text line"));
    free(log);
    cr_assert_eq(s_run_batch("bom.txt", "\xef\xbb\xbfnoop --units 3\n", &log), 0);
    cr_assert(t_file_contains(log, "line 1: noop ok"));
    free(log);
}

/* A batch stopped by a signal: the line running fails "interrupted", and
   the lines it never reached still get their line and JSON record ("not
   run"): one of each per job, as promised, with the count of those that
   did not complete. */
Test(deploy, an_interrupted_batch_accounts_for_every_line)
{
    char text[1024];
    snprintf(text, sizeof text,
             "noop --units 10\n"
             "noop --units 100 --sleep-ms 1000\n"
             "mandelbrot --width 60 --height 40 -o %s/never.png\n"
             "pi --samples 1000 --units 2 -o %s/never.json\n", t_dir, t_dir);
    char *batch = s_write("jobs.txt", text), *json = t_path(t_dir, "runs.json"), *log = t_path(t_dir, "out.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--json", json, "--batch", batch, NULL};
    pid_t manager = t_spawn(argv, log, NULL);
    cr_assert(t_wait_for(log, "line 1: noop ok", NULL, 0, 20000));
    usleep(300000);
    kill(manager, SIGTERM);
    cr_assert_eq(t_wait(manager, 20000), 1);
    char *out = t_read_file(log, NULL);
    cr_assert(strstr(out, "line 2: noop FAILED: interrupted"), "%s", out);
    cr_assert(strstr(out, "line 3: mandelbrot FAILED: not run: the batch was interrupted"), "%s", out);
    cr_assert(strstr(out, "line 4: pi FAILED: not run: the batch was interrupted"), "%s", out);
    cr_assert(strstr(out, "3 of 4 jobs failed (interrupted)"), "%s", out);
    char *records = t_read_file(json, NULL);
    cr_assert_eq(s_count(records, "\n"), 4, "one JSON record per job:\n%s", records);
    cr_assert(strstr(records, "\"line\":4,\"status\":\"failed\",\"error\":\"not run: the batch was interrupted\""),
              "%s", records);
    char *never = t_path(t_dir, "never.png");
    cr_assert_eq(access(never, F_OK), -1);
    free(out), free(records), free(batch), free(json), free(log), free(never);
}

/* A signal in the last line: every line ran, and the batch still says it
   was interrupted. */
Test(deploy, a_batch_interrupted_in_its_last_line_says_so)
{
    char *batch = s_write("jobs.txt", "noop --units 3\nnoop --units 100 --sleep-ms 1000\n");
    char *log = t_path(t_dir, "out.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--batch", batch, NULL};
    pid_t manager = t_spawn(argv, log, NULL);
    cr_assert(t_wait_for(log, "line 1: noop ok", NULL, 0, 20000));
    usleep(300000);
    kill(manager, SIGTERM);
    cr_assert_eq(t_wait(manager, 20000), 1);
    cr_assert(t_file_contains(log, "1 of 2 jobs failed (interrupted)"), "the interruption is not said");
    free(batch), free(log);
}

/* A batch killed without warning (SIGKILL, the OOM killer) keeps the JSON
   records of the jobs it finished: the file, which held an older run's
   records, is replaced with the first job's and grows by one whole line a
   job. Before, every record waited in a temporary until the batch ended. */
Test(deploy, a_killed_batch_keeps_the_records_of_its_finished_jobs)
{
    char *batch = s_write("jobs.txt", "noop --units 10\npi --samples 1000 --units 2 -o /dev/null\n"
                                      "noop --units 100 --sleep-ms 1000\nnoop --units 3\n");
    char *json = s_write("runs.json", "{\"an older run\":1}\n");
    char *log = t_path(t_dir, "out.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--json", json, "--batch", batch, NULL};
    pid_t manager = t_spawn(argv, log, NULL);
    cr_assert(t_wait_for(log, "line 2: pi ok", NULL, 0, 20000));
    cr_assert(t_wait_for(log, "job noop started", NULL, 0, 20000));
    usleep(200000);
    kill(manager, SIGKILL);
    t_wait(manager, 5000);
    char *records = t_read_file(json, NULL);
    cr_assert_not_null(records, "the killed batch left no --json file");
    cr_assert_null(strstr(records, "an older run"), "the older run's records are still there:\n%s", records);
    cr_assert_eq(s_count(records, "\n"), 2, "not one record for each finished job:\n%s", records);
    cr_assert(strstr(records, "\"line\":1,\"status\":\"ok\"") && strstr(records, "\"line\":2,\"status\":\"ok\""),
              "%s", records);
    cr_assert_eq(records[strlen(records) - 1], '\n', "the last record is cut short");
    free(records), free(batch), free(json), free(log);
}

/* The disk fills up in the middle of a batch: the record that does not fit
   is cut off again, so the file keeps whole records only, and the batch
   says why it failed. */
Test(deploy, a_full_disk_leaves_whole_json_records)
{
    char *tiny = t_path(t_dir, "tiny");
    mkdir(tiny, 0700);
    if (mount("tmpfs", tiny, "tmpfs", 0, "size=64k") != 0)
        cr_skip_test("cannot mount a tmpfs here");
    char text[4096] = "noop --units 1\nnoop --units 20 --sleep-ms 100\n";
    for (int i = 0; i < 30; i++)   /* about 600 bytes of record each: they soon need a page more */
        strcat(text, "noop --units 1\n");
    char *batch = s_write("jobs.txt", text), *json = t_path(tiny, "runs.json"), *log = t_path(t_dir, "out.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--json", json, "--batch", batch, NULL};
    pid_t manager = t_spawn(argv, log, NULL);
    cr_assert(t_wait_for(log, "line 1: noop ok", NULL, 0, 20000));
    char *filler = t_path(tiny, "filler");
    FILE *f = fopen(filler, "w");
    static char block[1024];
    while (f && fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0)
        ;
    if (f)
        fclose(f);
    int rc = t_wait(manager, 30000);
    char *records = t_read_file(json, NULL);
    umount2(tiny, MNT_DETACH);
    cr_assert_eq(rc, 1, "a batch whose records did not fit did not fail");
    cr_assert(t_file_contains(log, "runs.json: No space left on device"), "the cause is not named");
    cr_assert_not_null(records);
    size_t lines = s_count(records, "\n");
    cr_assert(lines >= 1 && lines < 32, "%zu records", lines);
    cr_assert_eq(records[strlen(records) - 1], '\n', "the last record is cut short:\n%s", records);
    cr_assert_eq(s_count(records, "{\"job\""), lines, "not whole records:\n%s", records);
    free(records), free(filler), free(batch), free(json), free(log), free(tiny);
}

/* A line is checked before the batch starts and planned again when its turn
   comes: what changed in between (here its directory, removed while the
   first line runs) fails that line with the reason, before its work, and
   the rest run. */
Test(deploy, a_batch_line_whose_directory_went_away_fails_alone)
{
    char *gone = t_path(t_dir, "gone"), text[1024];
    cr_assert_eq(mkdir(gone, 0700), 0);
    snprintf(text, sizeof text,
             "pi --samples 400000000 --units 40 -o %s/pi.json\n"
             "mandelbrot --width 60 --height 40 -o %s/m.png\n"
             "mandelbrot --width 61 --height 41 -o %s/last.png\n",
             t_dir, gone, t_dir);
    char *batch = s_write("jobs.txt", text), *log = t_path(t_dir, "out.log");
    char *args[] = {"--local", "2", "--batch", batch, NULL};
    pid_t manager = t_manager(args, log, NULL, NULL, 0);
    cr_assert(t_wait_for(log, "job pi started", NULL, 0, 20000));
    cr_assert_eq(rmdir(gone), 0);
    cr_assert_eq(t_wait(manager, 60000), 1, "the batch with a failed line must exit 1");
    char *out = t_read_file(log, NULL);
    cr_assert(strstr(out, "line 1: pi ok"), "%s", out);
    cr_assert(strstr(out, "line 2: mandelbrot FAILED: cannot write"), "%s", out);
    cr_assert(strstr(out, "line 3: mandelbrot ok"), "%s", out);
    const char *first = strstr(out, "job mandelbrot started");
    cr_assert(first && !strstr(first + 1, "job mandelbrot started"), "line 2 ran although it could not be written");
    char *last = t_path(t_dir, "last.png");
    uint32_t w, h;
    uint8_t *pixels = t_read_png_gray(last, &w, &h), *ref = t_mandelbrot_ref(61, 41, -2, 0.5, -1, 1, 255);
    cr_assert(pixels && w == 61 && h == 41 && memcmp(pixels, ref, 61 * 41) == 0);
    free(pixels), free(ref), free(out), free(last), free(batch), free(log), free(gone);
}

Test(deploy, broken_batch_lines_are_reported_before_anything_runs)
{
    char text[1024];
    snprintf(text, sizeof text,
             "mandelbrot -o %s/first.png\n"
             "mandelbrot --width 0\n"
             "# fine\n"
             "pi --units\n"
             "bogus --x 1\n"
             "primes -o %s/no/such/dir/p.txt\n",
             t_dir, t_dir);
    char *batch = s_write("bad.txt", text), *log = t_path(t_dir, "bad.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--batch", batch, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 2);
    char *out = t_read_file(log, NULL);
    const char *want[] = {"bad.txt:2: ", "bad.txt:4: ", "bad.txt:5: unknown job 'bogus'", "bad.txt:6: cannot write"};
    for (size_t i = 0; i < 4; i++)
        cr_assert(strstr(out, want[i]), "missing '%s' in:\n%s", want[i], out);
    cr_assert_not(strstr(out, "joined"), "workers started before the batch was checked");
    char *first = t_path(t_dir, "first.png");
    cr_assert_eq(access(first, F_OK), -1, "a job ran although the batch is broken");
    free(out), free(batch), free(log), free(first);
}

Test(deploy, a_batch_runs_on_the_same_remote_workers)
{
    char text[1024];
    snprintf(text, sizeof text, "primes --to 30000 -o %s/a.txt\nprimes --to 20000 --method sieve -o %s/b.txt\n"
                                "noop --units 300\n", t_dir, t_dir);
    char *batch = s_write("remote.txt", text), *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *json = t_path(t_dir, "r.json");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", "tcp://127.0.0.1:0", "--min-workers", "2",
                    "--json", json, "--batch", batch, NULL};
    pid_t manager = t_spawn(argv, mlog, NULL);
    char endpoint[256];
    cr_assert(t_wait_for(mlog, "listening on ", endpoint, sizeof endpoint, 10000));
    pid_t workers[2];
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        char *wargv[] = {(char *) t_bin("hyades-worker"), "--connect", endpoint, "--threads", "1", "--name", name, NULL};
        workers[i] = t_spawn(wargv, wlog, NULL);
    }
    cr_assert_eq(t_wait(manager, 60000), 0);
    char *a = t_path(t_dir, "a.txt"), *b = t_path(t_dir, "b.txt");
    s_assert_primes_file(a, 30000);
    s_assert_primes_file(b, 20000);
    /* Every job saw both workers, which joined once. */
    char *records = t_read_file(json, NULL);
    cr_assert_eq(s_count(records, "{\"name\":\"r0\""), 3, "%s", records);
    cr_assert_eq(s_count(records, "{\"name\":\"r1\""), 3, "%s", records);
    char *log = t_read_file(mlog, NULL);
    cr_assert_eq(s_count(log, "worker r0 joined"), 1);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(t_stop(workers[i]), 0);
    free(records), free(log), free(a), free(b), free(batch), free(mlog), free(wlog), free(json);
}

/* make install into dir with prefix; returns the make exit status. */
static int s_install(const char *destdir, const char *prefix)
{
    char build[512], dest[512], pre[512];
    snprintf(build, sizeof build, "BUILD=%s", t_bin(""));
    build[strlen(build) - 1] = '\0';   /* no trailing slash */
    snprintf(dest, sizeof dest, "DESTDIR=%s", destdir);
    snprintf(pre, sizeof pre, "PREFIX=%s", prefix);
    char *log = t_path(t_dir, "install.log");
    char *argv[] = {"/usr/bin/make", "--no-print-directory", "-s", "install", build, dest, pre, NULL};
    int rc = t_run(argv, log, 120000);
    free(log);
    return rc;
}

Test(deploy, the_installed_tree_runs_without_path_help)
{
    char *dest = t_path(t_dir, "root");
    cr_assert_eq(s_install(dest, "/usr"), 0, "make install failed");
    char *manager = t_path(dest, "usr/bin/hyades-manager"), *unit = t_path(dest, "usr/lib/systemd/system/hyades-worker.service");
    char *example = t_path(dest, "usr/share/hyades/worker.env.example");
    cr_assert_eq(access(manager, X_OK), 0);
    cr_assert(t_file_contains(unit, "ExecStart=/usr/bin/hyades-worker"));
    cr_assert(t_file_contains(unit, "EnvironmentFile=/etc/hyades/worker.env"));
    cr_assert(t_file_contains(example, "HYADES_CONNECT="));
    /* Run from the installed tree with an empty PATH: the manager finds its
       worker beside itself. */
    char *out = t_path(t_dir, "installed.png"), *log = t_path(t_dir, "run.log");
    char *argv[] = {manager, "--local", "2", "mandelbrot", "--width", "64", "--height", "48", "-o", out, NULL};
    char *env[] = {"PATH=/nonexistent", NULL};
    cr_assert_eq(t_wait(t_spawn(argv, log, env), 30000), 0);
    cr_assert(t_file_contains(log, "worker local-1 joined") || t_file_contains(log, "worker local-2 joined"));
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(out, &w, &h), *ref = t_mandelbrot_ref(64, 48, -2, 0.5, -1, 1, 255);
    cr_assert(png && memcmp(png, ref, 64 * 48) == 0);
    free(png), free(ref), free(dest), free(manager), free(unit), free(example), free(out), free(log);
}

Test(deploy, the_worker_unit_passes_systemd_verification)
{
    if (access("/usr/bin/systemd-analyze", X_OK) != 0)
        cr_skip_test("systemd-analyze is not installed");
    char *prefix = t_path(t_dir, "prefix");
    cr_assert_eq(s_install("", prefix), 0, "make install failed");
    char *unit = t_path(prefix, "lib/systemd/system/hyades-worker.service"), *log = t_path(t_dir, "verify.log");
    char *argv[] = {"/usr/bin/systemd-analyze", "verify", unit, NULL};
    int rc = t_run(argv, log, 30000);
    char *text = t_read_file(log, NULL);
    cr_assert_eq(rc, 0, "%s", text);
    free(text), free(prefix), free(unit), free(log);
}

Test(deploy, the_ssh_launcher_starts_and_stops_workers)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *llog = t_path(t_dir, "launch.log"), *hosts = t_path(t_dir, "hosts");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", "tcp://127.0.0.1:0", "--min-workers", "2",
                    "noop", "--units", "200", NULL};
    pid_t manager = t_spawn(argv, mlog, NULL);
    cr_assert(t_wait_for(mlog, "listening on ", endpoint, sizeof endpoint, 10000));
    /* A fake ssh runs the command here with a home of its own per host. */
    char path[1024], root[600];
    snprintf(path, sizeof path, "PATH=%s:/usr/bin:/bin", t_bin(""));
    snprintf(root, sizeof root, "FAKE_SSH_ROOT=%s", hosts);
    char *env[] = {path, root, "HYADES_SSH=tests/deploy/fake-ssh", NULL};
    char *start[] = {"/bin/bash", "deploy/lan-workers.sh", "start", endpoint, "alpha", "beta", "--", "--threads", "1", NULL};
    cr_assert_eq(t_wait(t_spawn(start, llog, env), 10000), 0);
    cr_assert_eq(t_wait(manager, 30000), 0);
    cr_assert(t_file_contains(mlog, "worker alpha joined") && t_file_contains(mlog, "worker beta joined"));
    char *stop[] = {"/bin/bash", "deploy/lan-workers.sh", "stop", "alpha", "beta", NULL};
    cr_assert_eq(t_wait(t_spawn(stop, llog, env), 10000), 0);
    cr_assert(t_file_contains(llog, "stopped the worker on beta"));
    char *alpha_log = t_path(hosts, "alpha/hyades-worker.log");
    cr_assert(t_wait_for(alpha_log, "stopping", NULL, 0, 5000), "the worker on alpha did not stop");
    free(alpha_log), free(mlog), free(llog), free(hosts);
}
