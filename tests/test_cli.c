/* Command lines: help, usage errors and exit statuses of both programs. */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/helpers.h"

TestSuite(cli, .init = t_setup, .fini = t_teardown, .timeout = 30);

Test(cli, help_prints_usage_and_exits_0)
{
    char *log = t_path(t_dir, "help.log");
    char *m[] = {(char *) t_bin("hyades-manager"), "--help", NULL};
    char *w[] = {(char *) t_bin("hyades-worker"), "--help", NULL};
    char *j[] = {(char *) t_bin("hyades-manager"), "mandelbrot", "--help", NULL};
    cr_assert_eq(t_run(m, log, 5000), 0);
    cr_assert_eq(t_run(w, log, 5000), 0);
    cr_assert_eq(t_run(j, log, 5000), 0);
    cr_assert(t_file_contains(log, "usage: hyades-manager"));
    cr_assert(t_file_contains(log, "usage: hyades-worker"));
    cr_assert(t_file_contains(log, "--columns-per-unit"));
    char *kinds[] = {"pi", "primes", "frames"};
    for (int i = 0; i < 3; i++) {
        char *argv[] = {(char *) t_bin("hyades-manager"), kinds[i], "--help", NULL};
        cr_assert_eq(t_run(argv, log, 5000), 0);
    }
    cr_assert(t_file_contains(log, "--samples") && t_file_contains(log, "--range-size") && t_file_contains(log, "--frames-dir"));
    free(log);
}

/* Runs the manager with args; expects exit 2, a "hyades-manager: " error as
   the first line, and no output file. */
static void s_expect_usage_error(char *const args[])
{
    char *out = t_path(t_dir, "out.png"), *log = t_path(t_dir, "err.log");
    char *argv[32] = {(char *) t_bin("hyades-manager")};
    int argc = 1;
    for (int i = 0; args[i]; i++)
        argv[argc++] = args[i];
    argv[argc++] = "-o";
    argv[argc++] = out;
    unlink(log);
    cr_assert_eq(t_run(argv, log, 10000), 2, "'%s ...' did not exit 2", args[0]);
    char *text = t_read_file(log, NULL);
    cr_assert(text && strncmp(text, "hyades-manager: ", 16) == 0, "error line: %s", text);
    cr_assert_eq(access(out, F_OK), -1, "an output was written");
    free(text);
    free(out), free(log);
}

Test(cli, bad_manager_command_lines_exit_2)
{
    char *cases[][6] = {
        {"--bogus", "mandelbrot"},
        {"mandelbrot", "--bogus"},
        {"mandelbrot", "--width"},
        {"mandelbrot", "--width", "0"},
        {"mandelbrot", "--height", "-5"},
        {"mandelbrot", "--xmin", "1", "--xmax", "0"},
        {"mandelbrot", "--max-iter", "many"},
        {"nosuchjob"},
        {"--local", "0", "mandelbrot"},
        {"--local", "-1", "mandelbrot"},
        {"--schedule", "random", "mandelbrot"},
        {"--heartbeat", "0", "mandelbrot"},
        {"--liveness", "1", "mandelbrot"},   /* a heartbeat a little late would count as missed */
        {"--local", "1", "--min-workers", "2", "mandelbrot"},
        {"pi", "--units", "0"},
        {"pi", "--samples", "0"},
        {"primes", "--from", "10", "--to", "9"},
        {"primes", "--method", "wheel"},
        {"primes", "--count-only", "-o", "count.txt"},   /* it wrote nothing, silently */
        {"-o", "count.txt", "primes", "--count-only"},
        {"frames", "--count", "0"},
        {"frames", "--width", "70000"},
        {"--json", "/nonexistent-dir/run.json", "noop"},
        {"--journal", "/nonexistent-dir/run.journal", "noop"},
        {"--batch", "/nonexistent-dir/jobs.txt"},
        {"--bind", "foo", "noop"},   /* not an endpoint: it said "refusing to listen beyond this machine" */
        {"--bind", "inproc://x", "noop"},
        {"--bind", "ipc://", "noop"},
        {"--json", "/tmp/no-such-hyades-file.json/", "mandelbrot"},   /* it failed after the work */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_expect_usage_error(cases[i]);
}

/* --journal with --batch: refused with its own reason (it spoke of -o too). */
Test(cli, a_journal_is_for_a_single_job)
{
    char *batch = t_path(t_dir, "jobs.txt"), *journal = t_path(t_dir, "j.journal"), *log = t_path(t_dir, "err.log");
    FILE *f = fopen(batch, "w");
    fputs("noop --units 3\n", f);
    fclose(f);
    char *argv[] = {(char *) t_bin("hyades-manager"), "--journal", journal, "--batch", batch, NULL};
    cr_assert_eq(t_run(argv, log, 10000), 2);
    cr_assert(t_file_contains(log, "--journal is for a single job, not a batch"));
    cr_assert_not(t_file_contains(log, "-o "), "the reason speaks of -o, which was not given");
    free(batch), free(journal), free(log);
}

Test(cli, an_unwritable_output_is_refused_before_the_job_runs)
{
    char *log = t_path(t_dir, "out.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "mandelbrot", "-o", "/nonexistent-dir/m.png", NULL};
    cr_assert_eq(t_run(argv, log, 10000), 2);
    cr_assert(t_file_contains(log, "cannot write /nonexistent-dir/m.png"));
    cr_assert_not(t_file_contains(log, "joined"), "workers were started");
    free(log);
}

Test(cli, no_job_exits_2)
{
    char *log = t_path(t_dir, "nojob.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), NULL};
    cr_assert_eq(t_run(argv, log, 5000), 2);
    free(log);
}

Test(cli, bad_worker_command_lines_exit_2)
{
    char *log = t_path(t_dir, "w.log");
    char *cases[][5] = {
        {NULL},                                           /* no --connect */
        {"--connect", "tcp://127.0.0.1:9", "--threads", "0"},
        {"--connect", "tcp://127.0.0.1:9", "--bogus"},
        {"--connect"},
        {"--connect", "tcp://127.0.0.1:9", "extra"},
        {"--connect", "tcp://127.0.0.1:9", "--liveness", "1"},
        {"--connect", "foo"},   /* it tried again and again, for good */
        {"--connect", "inproc://x"},
        {"--connect", "ipc://"},   /* it, too, waited for good */
        {"--connect", "ipc:///tmp/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[8] = {(char *) t_bin("hyades-worker")};
        int argc = 1;
        for (int k = 0; k < 5 && cases[i][k]; k++)
            argv[argc++] = cases[i][k];
        cr_assert_eq(t_run(argv, log, 5000), 2, "worker case %zu", i);
    }
    free(log);
}

/* A batch file that is not text, or not a file, is refused with the
   reason (a NUL byte was called a line too long; a directory, empty). */
Test(cli, a_batch_file_that_is_not_text_says_why)
{
    char *log = t_path(t_dir, "b.log"), *file = t_path(t_dir, "nul.txt");
    FILE *f = fopen(file, "w");
    fputs("noop --units 3\n", f);
    fputc('\0', f);
    fputs(" --units 4\n", f);
    fclose(f);
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--batch", file, NULL};
    cr_assert_eq(t_run(argv, log, 10000), 2);
    cr_assert(t_file_contains(log, "nul.txt:2: a NUL byte"), "no reason given for a NUL byte");
    /* An endless input without newlines: read up to a line's limit, no more. */
    char *zero[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--batch", "/dev/zero", NULL};
    cr_assert_eq(t_run(zero, log, 10000), 2, "an endless batch file was read without end");
    cr_assert(t_file_contains(log, "/dev/zero:1: a NUL byte"));
    /* An endless stream of good lines: a batch is bounded (it was read until
       memory ran out, and the manager crashed). */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "yes 'noop --units 1' | exec '%s' --local 1 --batch /dev/stdin", t_bin("hyades-manager"));
    char *endless[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(t_run(endless, log, 30000), 2, "an endless batch was not refused");
    cr_assert(t_file_contains(log, "split it into several batches"));
    char *dir[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--batch", t_dir, NULL};
    cr_assert_eq(t_run(dir, log, 10000), 2);
    cr_assert(t_file_contains(log, "Is a directory"), "no reason given for a directory");
    free(log), free(file);
}

/* A batch whose lines would overwrite the batch file, or each other's
   outputs, is refused before anything runs (the batch file became a PNG,
   and of two lines writing one file the first output was lost). */
Test(cli, a_batch_that_would_overwrite_itself_or_its_outputs_is_refused)
{
    char *log = t_path(t_dir, "b.log"), *self = t_path(t_dir, "self.txt"), *two = t_path(t_dir, "two.txt");
    char *out = t_path(t_dir, "d.png");
    FILE *f = fopen(self, "w");
    fprintf(f, "noop --units 2\nmandelbrot --width 20 --height 20 -o %s\n", self);
    fclose(f);
    char *a[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--batch", self, NULL};
    cr_assert_eq(t_run(a, log, 10000), 2);
    cr_assert(t_file_contains(log, "is the batch file itself"));
    cr_assert(t_file_contains(self, "noop --units 2"), "the batch file was overwritten");
    char *b[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--json", self, "--batch", self, NULL};
    cr_assert_eq(t_run(b, log, 10000), 2);
    cr_assert(t_file_contains(log, "--json names the batch file"));
    cr_assert(t_file_contains(self, "noop --units 2"), "the batch file was overwritten");
    f = fopen(two, "w");   /* the same file by two names */
    fprintf(f, "mandelbrot --width 20 --height 20 -o %s\nprimes --to 100 -o %s/./d.png\n", out, t_dir);
    fclose(f);
    char *c[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--batch", two, NULL};
    cr_assert_eq(t_run(c, log, 10000), 2);
    cr_assert(t_file_contains(log, "two.txt:2: the output"), "no line number");
    cr_assert(t_file_contains(log, "is also line 1's"));
    cr_assert_eq(access(out, F_OK), -1, "a job ran");
    free(log), free(self), free(two), free(out);
}

/* Frames written into --frames-dir must not overwrite the run's other
   files (a journal named like a frame there was replaced by a PNG, all its
   progress lost) nor another batch line's frames. */
Test(cli, frames_written_into_a_directory_overwrite_no_other_file)
{
    char *log = t_path(t_dir, "f.log"), *fd = t_path(t_dir, "fd"), *journal = t_path(fd, "frame_00002.png");
    char *batch = t_path(t_dir, "jobs.txt"), *gif = t_path(t_dir, "o.gif");
    cr_assert_eq(mkdir(fd, 0755), 0);
    char *a[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--journal", journal, "frames", "--count", "5",
                 "--frames-dir", fd, "-o", gif, NULL};
    cr_assert_eq(t_run(a, log, 10000), 2, "a journal among the frames was taken");
    cr_assert(t_file_contains(log, "would be overwritten by the frames written in"));
    FILE *f = fopen(batch, "w");
    fprintf(f, "frames --count 5 --seed 1 --frames-dir %s -o %s/a.gif\n", fd, t_dir);
    fprintf(f, "frames --count 5 --seed 2 --frames-dir %s/./ -o %s/b.gif\n", fd, t_dir);
    fclose(f);
    char *b[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--batch", batch, NULL};
    cr_assert_eq(t_run(b, log, 10000), 2, "two lines writing frames into one directory were taken");
    cr_assert(t_file_contains(log, "jobs.txt:2: line 1 writes files in the same place"));
    /* The same for a directory that does not exist yet, spelt two ways. */
    f = fopen(batch, "w");
    fprintf(f, "frames --count 5 --frames-dir %s/new -o %s/a.gif\n", t_dir, t_dir);
    fprintf(f, "frames --count 5 --seed 2 --frames-dir %s/sub/../new// -o %s/b.gif\n", t_dir, t_dir);
    fclose(f);
    char *sub = t_path(t_dir, "sub"), *link = t_path(t_dir, "out.gif"), *frame = t_path(fd, "frame_00001.png");
    cr_assert_eq(mkdir(sub, 0755), 0);
    unlink(log);
    cr_assert_eq(t_run(b, log, 10000), 2, "two spellings of one new frames directory were taken");
    cr_assert(t_file_contains(log, "line 1 writes files in the same place"));
    /* An output that is a symlink to a frame's name. */
    cr_assert_eq(symlink(frame, link), 0);
    char *c[] = {(char *) t_bin("hyades-manager"), "--local", "1", "frames", "--count", "5", "--frames-dir", fd, "-o",
                 link, NULL};
    unlink(log);
    cr_assert_eq(t_run(c, log, 10000), 2, "an output linked to a frame was taken");
    cr_assert(t_file_contains(log, "would be overwritten by the frames"));
    free(sub), free(link), free(frame);
    free(log), free(fd), free(journal), free(batch), free(gif);
}

/* The worker's own variables in the manager's environment do not reach
   its local workers, whose command line says what they are to do. */
Test(cli, worker_variables_do_not_reach_local_workers)
{
    char *log = t_path(t_dir, "env.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "noop", "--units", "3", NULL};
    char *env[] = {"HYADES_KINDS=pi", "HYADES_EXIT_WHEN_DONE=1", "HYADES_THREADS=0", "HYADES_MANAGER_KEY=/etc/passwd",
                   "HYADES_NAME=x", NULL};
    cr_assert_eq(t_wait(t_spawn(argv, log, env), 20000), 0, "the job did not run on its local workers");
    cr_assert(t_file_contains(log, "worker local-1 joined") || t_file_contains(log, "worker local-2 joined"));
    free(log);
}

Test(cli, environment_configures_the_worker)
{
    /* HYADES_THREADS=0 is as bad as --threads 0. */
    char *log = t_path(t_dir, "env.log");
    char *argv[] = {(char *) t_bin("hyades-worker"), NULL};
    char *env[] = {"HYADES_CONNECT=tcp://127.0.0.1:9", "HYADES_THREADS=0", NULL};
    cr_assert_eq(t_wait(t_spawn(argv, log, env), 5000), 2);
    cr_assert(t_file_contains(log, "HYADES_THREADS"));
    free(log);
}
