/* Hardening at the edges: outputs that cannot be hijacked, paths checked
   before any work, write failures named early. Each test is an attack or a
   mistake, reproduced. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/curve.h"
#include "tests/helpers.h"

TestSuite(edges, .init = t_setup, .fini = t_teardown, .timeout = 60);

#define NOBODY 65534

/* Runs fn(arg) in a child as user nobody; returns its exit status. */
static int s_as_nobody(void (*fn)(const char *), const char *arg)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(99);
        fn(arg);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char *s_victim;   /* the file another user's links aim at */

static void s_plant(const char *dir)
{
    char path[4096];
    /* The output itself, and every temporary name the old writer used. */
    snprintf(path, sizeof path, "%s/out.png", dir);
    if (symlink(s_victim, path) != 0)
        _exit(1);
    for (int pid = 2; pid < 4000; pid++) {
        snprintf(path, sizeof path, "%s/out2.png.tmp-%d", dir, pid);
        if (symlink(s_victim, path) != 0)
            _exit(2);
    }
}

Test(edges, links_planted_by_another_user_in_a_shared_directory_redirect_nothing)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to act as another user");
    char *shared = t_path(t_dir, "shared");
    s_victim = t_path(t_dir, "victim");
    cr_assert_eq(mkdir(shared, 0777), 0);
    cr_assert_eq(chmod(shared, 01777), 0);
    cr_assert_eq(chmod(t_dir, 0755), 0);
    FILE *f = fopen(s_victim, "w");
    fputs("precious\n", f);
    fclose(f);
    cr_assert_eq(s_as_nobody(s_plant, shared), 0, "could not plant the links");

    char *out = t_path(shared, "out.png"), *out2 = t_path(shared, "out2.png"), *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--width", "40", "--height", "30",
                    "-o", out, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 2, "the manager followed another user's link");
    cr_assert(t_file_contains(log, "refusing to follow it"));
    char *argv2[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--width", "40", "--height", "30",
                     "-o", out2, NULL};
    cr_assert_eq(t_run(argv2, log, 30000), 0);
    struct stat st;
    cr_assert_eq(lstat(out2, &st), 0);
    cr_assert(S_ISREG(st.st_mode) && st.st_uid == 0, "the output is not our own regular file");
    char *text = t_read_file(s_victim, NULL);
    cr_assert_str_eq(text, "precious\n", "the victim file was overwritten");
    free(text), free(shared), free(s_victim), free(out), free(out2), free(log);
}

/* A link another user planted in a directory anyone may write, sticky or
   not (here: not), is not followed; neither before the job (exit 2) nor
   when it appears during the job (the output is refused at the end, exit
   1). Before, only sticky directories were covered, and root's file the
   link named was replaced by the image. */
static void s_plant_link(const char *path)
{
    if (symlink(s_victim, path) != 0)
        _exit(1);
}

Test(edges, a_link_planted_by_another_user_in_any_shared_directory_is_not_followed)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to act as another user");
    char *shared = t_path(t_dir, "open"), *out = t_path(shared, "out.png"), *log = t_path(t_dir, "m.log");
    s_victim = t_path(t_dir, "victim");
    cr_assert_eq(mkdir(shared, 0777), 0);
    cr_assert_eq(chmod(shared, 0777), 0);   /* writable by all, not sticky */
    cr_assert_eq(chmod(t_dir, 0755), 0);
    FILE *f = fopen(s_victim, "w");
    fputs("precious\n", f);
    fclose(f);
    cr_assert_eq(s_as_nobody(s_plant_link, out), 0, "could not plant the link");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--width", "40", "--height", "30",
                    "-o", out, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 2, "the manager followed another user's link");
    cr_assert(t_file_contains(log, "refusing to follow it"));
    /* Planted while the job runs. */
    cr_assert_eq(unlink(out), 0);
    char *slow[] = {"HYADES_FAILPOINTS=sleep:100", NULL};
    char *argv2[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--width", "10", "--height", "30",
                     "-o", out, NULL};
    unlink(log);
    pid_t manager = t_spawn(argv2, log, slow);
    cr_assert(t_wait_for(log, "job mandelbrot started", NULL, 0, 10000));
    cr_assert_eq(s_as_nobody(s_plant_link, out), 0, "could not plant the link");
    cr_assert_eq(t_wait(manager, 30000), 1, "the manager wrote through a link planted during the job");
    cr_assert(t_file_contains(log, "refusing to follow it"));
    char *text = t_read_file(s_victim, NULL);
    cr_assert_str_eq(text, "precious\n", "the victim file was overwritten");
    /* The same link as --frames-dir: refused before the work (it failed at
       the first frame, after the work). */
    cr_assert_eq(unlink(out), 0);
    cr_assert_eq(s_as_nobody(s_plant_link, out), 0, "could not plant the link");
    char *gif = t_path(t_dir, "f.gif");
    char *frames[] = {(char *) t_bin("hyades-manager"), "--local", "1", "frames", "--count", "5", "--frames-dir", out,
                      "-o", gif, NULL};
    unlink(log);
    cr_assert_eq(t_run(frames, log, 30000), 2, "a planted --frames-dir was taken");
    cr_assert(t_file_contains(log, "refusing to follow it"));
    cr_assert_not(t_file_contains(log, "job frames started"));
    free(text), free(shared), free(out), free(s_victim), free(log), free(gif);
}

/* Frames are written at names the program chose: whatever is at such a
   name in --frames-dir (a link, dangling or not, or a FIFO) is replaced by
   the frame, never followed or written into. Before, a link's target was
   replaced by the frame, and a dangling one created its target. */
Test(edges, frames_replace_links_at_their_names_and_follow_none)
{
    char *dir = t_path(t_dir, "fr"), *victim = t_path(t_dir, "victim"), *absent = t_path(t_dir, "absent");
    char *log = t_path(t_dir, "m.log"), *gif = t_path(t_dir, "f.gif");
    char *f0 = t_path(dir, "frame_00000.png"), *f1 = t_path(dir, "frame_00001.png"), *f2 = t_path(dir, "frame_00002.png");
    cr_assert_eq(mkdir(dir, 0755), 0);
    FILE *f = fopen(victim, "w");
    fputs("precious\n", f);
    fclose(f);
    cr_assert_eq(symlink(victim, f0), 0);
    cr_assert_eq(symlink(absent, f1), 0);
    cr_assert_eq(mkfifo(f2, 0644), 0);
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "frames", "--count", "3", "--width", "4",
                    "--height", "3", "--frames-dir", dir, "-o", gif, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 0);
    char *text = t_read_file(victim, NULL);
    cr_assert_str_eq(text, "precious\n", "a frame was written through a link");
    cr_assert_eq(access(absent, F_OK), -1, "a dangling link's target was created");
    const char *frames[] = {f0, f1, f2};
    for (int i = 0; i < 3; i++) {
        struct stat st;
        cr_assert_eq(lstat(frames[i], &st), 0);
        cr_assert(S_ISREG(st.st_mode), "frame %d is not a file of its own", i);
        size_t len = 0;
        char *png = t_read_file(frames[i], &len);
        cr_assert(len > 8 && memcmp(png, "\x89PNG", 4) == 0, "frame %d is not a PNG", i);
        free(png);
    }
    free(text), free(dir), free(victim), free(absent), free(log), free(gif), free(f0), free(f1), free(f2);
}

Test(edges, an_output_symlink_is_written_through_and_stays_a_link)
{
    char *real = t_path(t_dir, "real.png"), *link = t_path(t_dir, "link.png"), *log = t_path(t_dir, "m.log");
    cr_assert_eq(symlink("real.png", link), 0);   /* relative, like most links */
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--width", "40", "--height", "30",
                    "-o", link, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 0);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the link was replaced by a file");
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(real, &w, &h);
    cr_assert(png && w == 40 && h == 30, "the link's target was not written");
    free(png), free(real), free(link), free(log);
}

Test(edges, a_device_node_is_written_into_not_replaced)
{
    if (geteuid() != 0)
        cr_skip_test("needs root for mknod");
    char *node = t_path(t_dir, "null"), *log = t_path(t_dir, "m.log");
    cr_assert_eq(mknod(node, S_IFCHR | 0666, makedev(1, 3)), 0, "mknod: %s", strerror(errno));
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--width", "40", "--height", "30",
                    "-o", node, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 0);
    struct stat st;
    cr_assert_eq(lstat(node, &st), 0);
    cr_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3), "the device node was replaced");
    char *pi[] = {(char *) t_bin("hyades-manager"), "--local", "1", "pi", "--samples", "1000", "--units", "2", "-o",
                  node, NULL};
    cr_assert_eq(t_run(pi, log, 30000), 0);
    cr_assert_eq(lstat(node, &st), 0);
    cr_assert(S_ISCHR(st.st_mode));
    free(node), free(log);
}

Test(edges, bad_output_paths_are_refused_before_any_work)
{
    char *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "j.json");
    char longname[400];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char *too_long = t_path(t_dir, longname), *missing = t_path(t_dir, "no/such/dir/out.png");
    const char *outputs[] = {t_dir, too_long, missing};
    for (size_t i = 0; i < 3; i++) {
        char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "-o", (char *) outputs[i],
                        NULL};
        cr_assert_eq(t_run(argv, log, 10000), 2, "output %zu was not refused up front", i);
        cr_assert_not(t_file_contains(log, "joined"), "workers started for output %zu", i);
        cr_assert(t_file_contains(log, "cannot write"));
    }
    char *as_json[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--json", t_dir, "noop", NULL};
    cr_assert_eq(t_run(as_json, log, 10000), 2, "--json DIR was not refused up front");
    cr_assert(t_file_contains(log, "is a directory"));
    char *full[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--json", "/dev/full", "noop", "--units", "3",
                    NULL};
    cr_assert_eq(t_run(full, log, 10000), 1, "--json to a full device did not fail");
    cr_assert(t_file_contains(log, "cannot write /dev/full: No space left on device"));
    /* A --frames-dir that is a file: refused with the other bad paths (it
       failed at the first frame written, after the work; later at the
       job's start, exit 1). */
    char *not_dir[] = {(char *) t_bin("hyades-manager"), "--local", "1", "frames", "--count", "50", "--frames-dir",
                       json, "-o", missing, NULL};
    FILE *f = fopen(json, "w");
    fclose(f);
    not_dir[9] = t_path(t_dir, "f.gif");
    cr_assert_eq(t_run(not_dir, log, 10000), 2, "a --frames-dir that is a file was taken");
    cr_assert(t_file_contains(log, "--frames-dir") && t_file_contains(log, "Not a directory"));
    cr_assert_not(t_file_contains(log, "job frames started"), "the job started");
    free(not_dir[9]);
    free(log), free(json), free(too_long), free(missing);
}

/* A tiny file system of its own, or NULL when mounting is not allowed. */
static char *s_tiny_fs(void)
{
    char *dir = t_path(t_dir, "tiny");
    mkdir(dir, 0700);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

Test(edges, a_full_disk_stops_the_primes_list_at_once_naming_file_and_cause)
{
    char *tiny = s_tiny_fs();
    if (!tiny)
        cr_skip_test("cannot mount a tmpfs here");
    char *out = t_path(tiny, "primes.txt"), *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "p.json");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "--json", json, "primes", "--to", "300000000",
                    "--method", "sieve", "--range-size", "100000", "-o", out, NULL};
    int rc = t_run(argv, log, 50000);
    umount2(tiny, MNT_DETACH);
    cr_assert_eq(rc, 1);
    cr_assert(t_file_contains(log, "No space left on device"), "the cause is not named");
    cr_assert(t_file_contains(log, "primes.txt"), "the file is not named");
    long long done = t_json_number(json, "done");
    cr_assert(done >= 0 && done < 300, "%lld of 3000 units computed after the disk was full", done);
    free(tiny), free(out), free(log), free(json);
}

/* A file mounted on its own (docker -v FILE:FILE) cannot be renamed over:
   refused before the work, not after it. */
Test(edges, an_output_that_is_a_mounted_file_is_refused_before_the_work)
{
    char *src = t_path(t_dir, "src.png"), *target = t_path(t_dir, "target.png"), *log = t_path(t_dir, "m.log");
    fclose(fopen(src, "w"));
    fclose(fopen(target, "w"));
    if (mount(src, target, NULL, MS_BIND, NULL) != 0)
        cr_skip_test("cannot bind-mount a file here");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "-o", target, NULL};
    int rc = t_run(argv, log, 30000);
    umount2(target, MNT_DETACH);
    cr_assert_eq(rc, 2, "a mounted output must be refused as a bad command line");
    cr_assert(t_file_contains(log, "a file is mounted there"), "the reason is not given");
    cr_assert_not(t_file_contains(log, "joined"), "workers started before the refusal");
    free(src), free(target), free(log);
}

/* A worker that cannot start its compute threads (here: too little address
   space for their stacks) says so and exits 1, where it aborted. */
Test(edges, a_worker_that_cannot_start_its_threads_says_so)
{
#ifdef __SANITIZE_ADDRESS__
    cr_skip_test("AddressSanitizer needs more address space than any such limit");
#endif
    char *log = t_path(t_dir, "w.log"), endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/nobody", t_dir);
    char *argv[] = {(char *) t_bin("hyades-worker"), "--connect", endpoint, "--threads", "200", NULL};
    struct rlimit old, tight;
    cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
    tight = old;
    tight.rlim_cur = 500ul << 20;   /* 200 stacks of 8 MiB cannot fit */
    cr_assert_eq(setrlimit(RLIMIT_AS, &tight), 0);
    int rc = t_run(argv, log, 20000);
    cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
    cr_assert_eq(rc, 1, "exit %d, not 1", rc);
    cr_assert(t_file_contains(log, "cannot start 200 compute threads"), "the reason is not given");
    free(log);
}

/* A worker short of memory for a unit's result answers that unit as failed
   and stays up (it crashed on the NULL buffer). */
Test(edges, a_worker_short_of_memory_fails_the_unit_and_lives)
{
#ifdef __SANITIZE_ADDRESS__
    cr_skip_test("AddressSanitizer needs more address space than any such limit");
#endif
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "t.png"),
         endpoint[256];
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--local", "0", "mandelbrot", "--width", "1600", "--height",
                    "100000", "--columns-per-unit", "160", "--max-iter", "1", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    struct rlimit old, tight;
    cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
    tight = old;
    tight.rlim_cur = 150ul << 20;   /* 8 threads' stacks, and not 8 units of 16 MB */
    cr_assert_eq(setrlimit(RLIMIT_AS, &tight), 0);
    char *extra[] = {"--threads", "8", NULL};
    pid_t w = t_worker(endpoint, "tight", wlog, extra, NULL);
    cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
    cr_assert_eq(t_wait(manager, 60000), 1, "the job cannot be done by this worker alone");
    cr_assert(t_file_contains(wlog, "out of memory on this worker"), "the worker did not say why");
    cr_assert_eq(t_exited(w), -1, "the worker died");
    cr_assert_eq(t_stop(w), 0);
    free(mlog), free(wlog), free(out);
}

/* Outputs that could only fail at the end (a socket cannot be opened, an
   immutable or append-only file cannot be replaced) are refused before the
   work. */
static bool s_set_flags(const char *path, int flags)
{
    int fd = open(path, O_RDONLY);
    bool ok = fd >= 0 && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

Test(edges, outputs_that_cannot_be_replaced_are_refused_before_the_work)
{
    char *sock = t_path(t_dir, "sock.png"), *log = t_path(t_dir, "m.log");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock);
    cr_assert_eq(bind(fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "-o", sock, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 2);
    cr_assert(t_file_contains(log, "it is a socket"));
    cr_assert_not(t_file_contains(log, "joined"), "workers started before the refusal");
    close(fd);
    const int flags[] = {FS_IMMUTABLE_FL, FS_APPEND_FL};
    for (size_t i = 0; i < 2; i++) {
        char *fixed = t_path(t_dir, i ? "append.png" : "immutable.png");
        fclose(fopen(fixed, "w"));
        if (!s_set_flags(fixed, flags[i]))
            cr_skip_test("this file system keeps no immutable or append-only flag");
        argv[5] = fixed;
        int rc = t_run(argv, log, 30000);
        s_set_flags(fixed, 0);
        cr_assert_eq(rc, 2, "%s: exit %d", fixed, rc);
        cr_assert(t_file_contains(log, "immutable or append-only"));
        cr_assert_not(t_file_contains(log, "joined"), "workers started before the refusal");
        free(fixed);
    }
    free(sock), free(log);
}

/* A static job waits for as many workers as --local starts; one of them
   that cannot start (given up after exiting again and again) leaves too
   few to ever come: the job fails, where it waited for good. */
Test(edges, a_job_waiting_for_a_local_worker_given_up_fails)
{
    char *script = t_path(t_dir, "worker.sh"), *log = t_path(t_dir, "m.log"), env_worker[600];
    FILE *f = fopen(script, "w");
    fprintf(f, "#!/bin/sh\ncase \"$*\" in *local-2*) exit 3;; esac\nexec %s \"$@\"\n", t_bin("hyades-worker"));
    fclose(f);
    chmod(script, 0755);
    snprintf(env_worker, sizeof env_worker, "HYADES_WORKER=%s", script);
    char *env[] = {env_worker, NULL};
    char *args[] = {"--local", "2", "--schedule", "static", "noop", "--units", "10", NULL};
    pid_t manager = t_manager(args, log, env, NULL, 0);
    int rc = t_wait(manager, 30000);
    if (rc < 0)
        kill(manager, SIGKILL), t_wait(manager, 5000);
    cr_assert_eq(rc, 1, "exit %d: the job did not fail (it waited for good)", rc);
    cr_assert(t_file_contains(log, "only 1 local worker is left"), "the reason is not given");
    free(script), free(log);
}

/* With too few open files, ZeroMQ cannot work (czmq aborted in the worker,
   which was restarted again and again; a worker never connected): both
   programs refuse to start, with the reason. */
Test(edges, too_few_open_files_are_refused_at_start)
{
    char *log = t_path(t_dir, "m.log"), cmd[1200];
    const char *programs[][2] = {{"hyades-manager", "--local 2 noop --units 10"},
                                 {"hyades-worker", "--connect tcp://127.0.0.1:9"}};
    for (size_t i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "ulimit -n 14 && exec %s %s", t_bin(programs[i][0]), programs[i][1]);
        char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        int rc = t_run(argv, log, 20000);
        cr_assert_eq(rc, 1, "%s: exit %d", programs[i][0], rc);
        cr_assert(t_file_contains(log, "at most 14 open files (ulimit -n)"), "%s: the reason is not given",
                  programs[i][0]);
    }
    free(log);
}

/* --local beyond what the open-file limit leaves room for: each local
   worker's connection takes a descriptor, and libzmq's ipc listener aborted
   the manager (exit 134, its private directory left) at the first accept
   without one. It is refused before anything starts; the most it allows
   runs. */
static void s_assert_default_view(const char *out, uint32_t width, uint32_t height);
static pid_t s_manager_limited(int files, const char *args, const char *log, char *const env[]);

Test(edges, more_local_workers_than_open_files_allow_are_refused_up_front)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "x.png"), args[1400];
    snprintf(args, sizeof args, "-q --local 40 mandelbrot --width 40 --height 30 -o %s", out);
    int rc = t_wait(s_manager_limited(64, args, log, NULL), 60000);
    cr_assert_eq(rc, 2, "exit %d", rc);
    cr_assert(t_file_contains(log, "--local 40: at most 64 open files (ulimit -n) leave room for about 32 workers"),
              "the reason is not given");
    cr_assert_eq(access(out, F_OK), -1);
    snprintf(args, sizeof args, "-q --local 32 mandelbrot --width 40 --height 30 -o %s", out);
    cr_assert_eq(t_wait(s_manager_limited(64, args, log, NULL), 60000), 0, "the most it allows did not run");
    s_assert_default_view(out, 40, 30);
    free(log), free(out);
}

/* The output is checked again once the workers have come: a directory
   removed while the manager waited for them fails the job before its work. */
Test(edges, an_output_directory_removed_while_waiting_for_workers_fails_before_the_work)
{
    char *dir = t_path(t_dir, "d"), *out = t_path(dir, "x.png"), *mlog = t_path(t_dir, "m.log"),
         *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "r.json"), endpoint[256];
    cr_assert_eq(mkdir(dir, 0700), 0);
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--local", "0", "--json", json, "mandelbrot", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    cr_assert_eq(rmdir(dir), 0);
    pid_t w = t_worker(endpoint, "late", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 30000), 1);
    cr_assert(t_file_contains(mlog, "does not exist"), "the reason is not given");
    cr_assert_not(t_file_contains(mlog, "job mandelbrot started"), "the work started");
    cr_assert_eq(t_json_number(json, "done"), 0);
    t_stop(w);
    free(dir), free(out), free(mlog), free(wlog), free(json);
}

Test(edges, a_full_disk_under_a_png_names_file_and_cause)
{
    /* 1000 x 1000 goes through libpng's writer; 2000 x 2000 is compressed
       in bands first (common/image.h), then written. */
    const char *sides[] = {"1000", "2000"};
    for (size_t i = 0; i < 2; i++) {
        char *tiny = s_tiny_fs();
        if (!tiny)
            cr_skip_test("cannot mount a tmpfs here");
        char *out = t_path(tiny, "big.png"), *log = t_path(t_dir, "m.log");
        char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "mandelbrot", "--width", (char *) sides[i],
                        "--height", (char *) sides[i], "-o", out, NULL};
        int rc = t_run(argv, log, 50000);
        struct stat st;
        bool left = stat(out, &st) == 0;
        umount2(tiny, MNT_DETACH);
        cr_assert_eq(rc, 1, "%s x %s", sides[i], sides[i]);
        cr_assert(t_file_contains(log, "big.png: No space left on device"), "the cause is not named");
        cr_assert_not(left, "a partial PNG was left");
        free(tiny), free(out), free(log);
    }
}

/* ------------------------------------------------------------ configuration */

Test(edges, boolean_variables_take_the_usual_spellings_and_nothing_else)
{
    char *log = t_path(t_dir, "m.log");
    char *insecure[] = {(char *) t_bin("hyades-manager"), "--bind", "tcp://0.0.0.0:0", "noop", NULL};
    char *env_false[] = {"HYADES_INSECURE=false", NULL};
    cr_assert_eq(t_wait(t_spawn(insecure, log, env_false), 10000), 2, "HYADES_INSECURE=false turned insecure mode on");
    cr_assert(t_file_contains(log, "refusing to listen beyond this machine without keys"));
    char *run[] = {(char *) t_bin("hyades-manager"), "--local", "1", "noop", "--units", "2", NULL};
    char *env_no[] = {"HYADES_QUIET=No", NULL};
    cr_assert_eq(t_wait(t_spawn(run, log, env_no), 10000), 0);
    cr_assert(t_file_contains(log, "INFO"), "HYADES_QUIET=No made the manager quiet");
    char *env_bad[] = {"HYADES_QUIET=maybe", NULL};
    cr_assert_eq(t_wait(t_spawn(run, log, env_bad), 10000), 2);
    cr_assert(t_file_contains(log, "HYADES_QUIET: expected 1/0, true/false, yes/no or on/off, got 'maybe'"));
    char *env_on[] = {"HYADES_QUIET=ON", NULL};
    truncate(log, 0);
    cr_assert_eq(t_wait(t_spawn(run, log, env_on), 10000), 0);
    cr_assert_not(t_file_contains(log, "INFO"), "HYADES_QUIET=ON did not make it quiet");
    free(log);
}

Test(edges, numbers_are_plain_decimals_in_range_and_finite)
{
    char *log = t_path(t_dir, "m.log");
    const char *units[] = {" 10", "+10", "10 ", "1e3", "0x10", "-5"};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "noop", "--units", (char *) units[i], NULL};
        cr_assert_eq(t_run(argv, log, 10000), 2, "--units '%s' was accepted", units[i]);
    }
    char *wide[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--xmin", "-1e308", "--xmax",
                    "1e308", NULL};
    cr_assert_eq(t_run(wide, log, 10000), 2, "a view whose span overflows was accepted");
    cr_assert(t_file_contains(log, "too wide"));
    char *out = t_path(t_dir, "tiny.png");   /* subnormal bounds are finite numbers */
    char *tiny[] = {(char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--width", "4", "--height", "4",
                    "--xmin", "-1e-310", "--xmax", "2.2250738585072011e-308", "-o", out, NULL};
    cr_assert_eq(t_run(tiny, log, 10000), 0, "subnormal bounds were refused");
    free(out);
    char *name[] = {(char *) t_bin("hyades-worker"), "--connect", "tcp://127.0.0.1:1", "--name", "nod\xc3\xa9-1", NULL};
    cr_assert_eq(t_run(name, log, 10000), 2, "a non-ASCII worker name was accepted");
    cr_assert(t_file_contains(log, "printable ASCII"));
    free(log);
}

Test(edges, a_worker_with_600_threads_works)
{
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *json = t_path(t_dir, "t.json");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--json", json, "noop", "--units", "3000", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *many[] = {"--threads", "600", NULL};
    pid_t w = t_worker(endpoint, "wide", wlog, many, NULL);
    cr_assert_eq(t_wait(manager, 30000), 0, "the job failed");
    cr_assert_eq(t_json_number(json, "done"), 3000);
    cr_assert_eq(t_stop(w), 0, "the worker did not stop cleanly");
    free(mlog), free(wlog), free(json);
}

/* ------------------------------------------------------------ keys */

Test(edges, secret_keys_others_can_read_are_refused)
{
    char *cert = t_path(t_dir, "w.cert"), *mcert = t_path(t_dir, "m.cert"), *log = t_path(t_dir, "w.log");
    char err[256], secret[4096];
    cr_assert_eq(curve_keygen(cert, err, sizeof err), 0, "%s", err);
    cr_assert_eq(curve_keygen(mcert, err, sizeof err), 0, "%s", err);
    snprintf(secret, sizeof secret, "%s_secret", cert);
    cr_assert_eq(chmod(secret, 0644), 0);
    char *argv[] = {(char *) t_bin("hyades-worker"), "--connect", "tcp://127.0.0.1:1", "--cert", cert,
                    "--manager-key", mcert, NULL};
    cr_assert_eq(t_run(argv, log, 10000), 2, "a world-readable secret key was used");
    cr_assert(t_file_contains(log, "can be read or changed by other users (mode 0644): run 'chmod 600"));
    cr_assert_eq(chmod(secret, 0640), 0);   /* a group may share it (the systemd set-up does) */
    pid_t w = t_spawn(argv, log, NULL);
    cr_assert(t_wait_for(log, "connecting to the manager", NULL, 0, 5000), "a group-readable key was refused");
    cr_assert_eq(t_stop(w), 0);
    free(cert), free(mcert), free(log);
}

/* keygen writes a key only at its own names: a link planted at either
   (dangling: access(2) says nothing is there) is refused, and nothing is
   written where it points; no temporary stays behind. Before, the secret
   key was created at the link's target. */
Test(edges, keygen_never_writes_through_a_planted_link)
{
    char *key = t_path(t_dir, "k"), *secret = t_path(t_dir, "k_secret"), *stolen = t_path(t_dir, "stolen");
    char *pub = t_path(t_dir, "pub"), *log = t_path(t_dir, "keygen.log"), err[256];
    cr_assert_eq(symlink(stolen, secret), 0);
    char *manager[] = {(char *) t_bin("hyades-manager"), "keygen", key, NULL};
    cr_assert_eq(t_run(manager, log, 10000), 1, "keygen wrote through a link");
    cr_assert(t_file_contains(log, "already exists; not overwriting a key"));
    cr_assert_eq(access(stolen, F_OK), -1, "the secret key was written where the link points");
    cr_assert_eq(access(key, F_OK), -1, "half a pair was left");
    unlink(secret);
    cr_assert_eq(symlink(pub, key), 0);
    char *worker[] = {(char *) t_bin("hyades-worker"), "keygen", key, NULL};
    cr_assert_eq(t_run(worker, log, 10000), 1, "keygen wrote through a link");
    cr_assert_eq(access(pub, F_OK), -1, "the public key was written where the link points");
    struct stat st;
    cr_assert_eq(lstat(secret, &st), -1, "half a pair was left");
    unlink(key);
    cr_assert_eq(curve_keygen(key, err, sizeof err), 0, "%s", err);
    cr_assert_eq(stat(secret, &st), 0);
    cr_assert_eq(st.st_mode & 077, 0, "the secret key is readable by others");
    DIR *d = opendir(t_dir);
    for (struct dirent *e; (e = readdir(d));)
        cr_assert(strncmp(e->d_name, ".hyades-keygen", 14) != 0, "%s stayed", e->d_name);
    closedir(d);
    /* A name with a control character is refused, not written and echoed. */
    char odd[4200];
    snprintf(odd, sizeof odd, "%s/k\nx", t_dir);
    char *newline[] = {(char *) t_bin("hyades-manager"), "keygen", odd, NULL};
    cr_assert_eq(t_run(newline, log, 10000), 1);
    cr_assert(t_file_contains(log, "a key file name with a control character (byte 0x0a at offset"));
    cr_assert_eq(access(odd, F_OK), -1);
    free(key), free(secret), free(stolen), free(pub), free(log);
}

/* A certificate whose FILE_secret is of another key pair is refused by
   name: the secret file's own public key was used, unnoticed, and workers
   given FILE as --manager-key failed their handshakes for no clear reason. */
Test(edges, a_certificate_and_a_secret_of_two_key_pairs_are_refused)
{
    char *a = t_path(t_dir, "a.cert"), *b = t_path(t_dir, "b.cert"), *log = t_path(t_dir, "m.log");
    char *allow = t_path(t_dir, "allow"), err[256], a_secret[4096], b_secret[4096];
    cr_assert_eq(curve_keygen(a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(curve_keygen(b, err, sizeof err), 0, "%s", err);
    snprintf(a_secret, sizeof a_secret, "%s_secret", a);
    snprintf(b_secret, sizeof b_secret, "%s_secret", b);
    cr_assert_eq(rename(b_secret, a_secret), 0);   /* a.cert beside b's secret */
    cr_assert_eq(mkdir(allow, 0700), 0);
    char *manager[] = {(char *) t_bin("hyades-manager"), "--bind", "tcp://127.0.0.1:0", "--cert", a, "--allow", allow,
                       "noop", NULL};
    cr_assert_neq(t_run(manager, log, 10000), 0, "a mismatched key pair was used");
    cr_assert(t_file_contains(log, "are not one key pair"));
    char *worker[] = {(char *) t_bin("hyades-worker"), "--connect", "tcp://127.0.0.1:1", "--cert", a,
                      "--manager-key", b, NULL};
    cr_assert_neq(t_run(worker, log, 10000), 0, "a mismatched key pair was used");
    cr_assert(t_file_contains(log, "are not one key pair"));
    /* b's own pair, its secret key damaged (its public key line intact). */
    cr_assert_eq(curve_keygen(b, err, sizeof err), -1, "b's public file is still there");
    unlink(b);
    cr_assert_eq(curve_keygen(b, err, sizeof err), 0, "%s", err);
    size_t len;
    char *text = t_read_file(b_secret, &len), *key = text ? strstr(text, "secret-key = \"") : NULL;
    cr_assert_not_null(key);
    key += strlen("secret-key = \"");
    key[1] = key[1] == key[0] ? (key[0] == 'a' ? 'b' : 'a') : key[0];
    FILE *f = fopen(b_secret, "w");
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
    manager[4] = b;
    cr_assert_neq(t_run(manager, log, 10000), 0, "a damaged secret key was used");
    cr_assert(t_file_contains(log, "its secret key is not the one of its public key"));
    free(a), free(b), free(log), free(allow);
}

/* Entries of --allow that are not certificates are said to be ignored
   (they were skipped without a word). */
Test(edges, entries_of_allow_that_are_not_certificates_are_reported)
{
    char *m = t_path(t_dir, "m.cert"), *allow = t_path(t_dir, "allow"), *log = t_path(t_dir, "m.log"), err[256];
    cr_assert_eq(curve_keygen(m, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mkdir(allow, 0700), 0);
    char *w = t_path(allow, "w.cert"), *notes = t_path(allow, "notes.txt"), *sub = t_path(allow, "sub");
    cr_assert_eq(curve_keygen(w, err, sizeof err), 0, "%s", err);
    FILE *f = fopen(notes, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    cr_assert_eq(mkdir(sub, 0700), 0);
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--cert", m, "--allow", allow, "noop", NULL};
    char endpoint[256];
    pid_t manager = t_manager(args, log, NULL, endpoint, sizeof endpoint);
    kill(manager, SIGTERM);
    t_wait(manager, 10000);
    cr_assert(t_file_contains(log, "2 entries are not readable certificates and are ignored"),
              "entries that are not certificates went unreported");
    cr_assert_not(t_file_contains(log, "no certificates in --allow"), "the certificate was not counted");
    free(m), free(allow), free(log), free(w), free(notes), free(sub);
}

/* A key file name too long for czmq's "FILE_secret" is refused before
   anything is written: the secret key went into the public file (mode
   0644), or to a name cut short. */
Test(edges, a_key_file_name_too_long_for_its_secret_is_refused)
{
    char name[256];
    memset(name, 'z', 240);
    name[240] = '\0';
    char *path = t_path(t_dir, name), *log = t_path(t_dir, "k.log");
    cr_assert_gt(strlen(path) + 7, 255);
    char *argv[] = {(char *) t_bin("hyades-worker"), "keygen", path, NULL};
    cr_assert_neq(t_run(argv, log, 10000), 0, "a key pair was made under a name czmq cuts");
    cr_assert(t_file_contains(log, "is too long"));
    DIR *d = opendir(t_dir);
    struct dirent *e;
    while ((e = readdir(d)))
        cr_assert(e->d_name[0] != 'z', "%s was written", e->d_name);
    closedir(d);
    free(path), free(log);
}

Test(edges, a_strangers_key_is_reported_on_both_sides)
{
    char *keys = t_path(t_dir, "allowed"), *mcert = t_path(t_dir, "m.cert"), *stranger = t_path(t_dir, "s.cert");
    char *empty = t_path(t_dir, "empty"), err[256];
    cr_assert_eq(mkdir(keys, 0700), 0);
    cr_assert_eq(mkdir(empty, 0700), 0);
    cr_assert_eq(curve_keygen(mcert, err, sizeof err), 0);
    cr_assert_eq(curve_keygen(stranger, err, sizeof err), 0);
    char *known = t_path(keys, "k.cert");
    cr_assert_eq(curve_keygen(known, err, sizeof err), 0);
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--cert", mcert, "--allow", keys, "noop", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *as_stranger[] = {"--cert", stranger, "--manager-key", mcert, NULL};
    pid_t w = t_worker(endpoint, "stranger", wlog, as_stranger, NULL);
    cr_assert(t_wait_for(mlog, "failed the CURVE handshake", NULL, 0, 5000), "the manager said nothing");
    cr_assert(t_wait_for(wlog, "CURVE handshake with the manager failed", NULL, 0, 5000), "the worker said nothing");
    cr_assert_eq(t_stop(w), 0);
    /* A worker with no keys at all is not told about its certificate. */
    char *w2log = t_path(t_dir, "w2.log");
    w = t_worker(endpoint, "keyless", w2log, NULL, NULL);
    cr_assert(t_wait_for(w2log, "the handshake with the manager failed", NULL, 0, 5000), "the worker said nothing");
    cr_assert_not(t_file_contains(w2log, "CURVE"), "a worker without keys was told about CURVE");
    cr_assert_eq(t_stop(w), 0);
    free(w2log);
    kill(manager, SIGINT);
    t_wait(manager, 10000);
    /* An empty --allow directory: said at once. */
    char *args2[] = {"--bind", "tcp://127.0.0.1:0", "--cert", mcert, "--allow", empty, "noop", NULL};
    char *m2log = t_path(t_dir, "m2.log");
    manager = t_manager(args2, m2log, NULL, endpoint, sizeof endpoint);
    cr_assert(t_file_contains(m2log, "no certificates in --allow"), "an empty --allow went unmentioned");
    free(m2log);
    kill(manager, SIGINT);
    t_wait(manager, 10000);
    free(keys), free(mcert), free(stranger), free(empty), free(known), free(mlog), free(wlog);
}

/* ------------------------------------------------------------ journal */

Test(edges, a_flipped_bit_in_a_journal_costs_one_unit)
{
    char *journal = t_path(t_dir, "j"), *log = t_path(t_dir, "m.log"), *json = t_path(t_dir, "j.json");
    char *out = t_path(t_dir, "pi.json");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "-q", "--journal", journal, "--json", json, "pi",
                    "--samples", "200000", "--units", "2000", "-o", out, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 0);
    char *first = t_read_file(out, NULL);
    size_t len;
    char *bytes = t_read_file(journal, &len);
    bytes[len / 2] ^= 0x08;
    FILE *f = fopen(journal, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    unlink(out);
    cr_assert_eq(t_run(argv, log, 30000), 0);
    cr_assert(t_file_contains(log, "damaged bytes"), "damage was not reported at -q");
    long long resumed = t_json_number(json, "resumed");
    cr_assert(resumed >= 1998 && resumed < 2000, "resumed %lld of 2000 after one flipped bit", resumed);
    char *second = t_read_file(out, NULL);
    cr_assert_str_eq(second, first, "the estimate differs after the repair");
    free(first), free(second), free(bytes), free(journal), free(log), free(json), free(out);
}

Test(edges, a_journal_that_is_not_a_regular_file_is_refused_up_front)
{
    char *fifo = t_path(t_dir, "fifo"), *log = t_path(t_dir, "m.log");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    const char *journals[] = {fifo, "/dev/null"};
    for (size_t i = 0; i < 2; i++) {
        char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--journal", (char *) journals[i], "noop",
                        NULL};
        cr_assert_eq(t_run(argv, log, 10000), 2, "--journal %s was not refused", journals[i]);
        cr_assert(t_file_contains(log, "is not a regular file"));
        cr_assert_not(t_file_contains(log, "joined"), "workers started");
    }
    free(fifo), free(log);
}

/* ------------------------------------------------------------ signals */

#include <dirent.h>

/* Whether dir holds a file whose name starts with prefix. */
static bool s_has_file(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool found = false;
    while (d && (e = readdir(d)) && !found)
        found = strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return found;
}

/* The private directory of a manager's local workers, from a child's command line. */
static bool s_private_dir(pid_t manager, char *dir, size_t len)
{
    pid_t kids[8];
    size_t n = t_children(manager, kids, 8);
    for (size_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) kids[i]);
        size_t size;
        char *cmd = t_read_file(path, &size);
        for (size_t at = 0; cmd && at < size; at += strlen(cmd + at) + 1)
            if (strncmp(cmd + at, "ipc://", 6) == 0) {
                snprintf(dir, len, "%s", cmd + at + 6);
                char *slash = strrchr(dir, '/');
                if (slash)
                    *slash = '\0';
                free(cmd);
                return true;
            }
        free(cmd);
    }
    return false;
}

/* A manager killed without warning leaves its private directory; the next
   one to finish removes it, and no other: not a living manager's, not one
   without a lock file (an earlier release's, or anybody's). */
Test(edges, the_next_manager_sweeps_a_killed_manager_s_private_directory)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "never.png"), killed[256], living[256];
    char *args[] = {"--local", "1", "mandelbrot", "-o", out, NULL};
    char *slow[] = {"HYADES_FAILPOINTS=sleep:20", NULL};
    pid_t doomed = t_manager(args, log, slow, NULL, 0);
    cr_assert(t_wait_for(log, "job mandelbrot started", NULL, 0, 10000));
    cr_assert(s_private_dir(doomed, killed, sizeof killed), "no local worker found");
    char *log2 = t_path(t_dir, "m2.log");
    pid_t alive = t_manager(args, log2, slow, NULL, 0);
    cr_assert(t_wait_for(log2, "job mandelbrot started", NULL, 0, 10000));
    cr_assert(s_private_dir(alive, living, sizeof living), "no local worker found");
    char foreign[] = "/tmp/hyades-XXXXXX";   /* no lock file in it */
    cr_assert_not_null(mkdtemp(foreign));
    char keep[sizeof foreign + 8];
    snprintf(keep, sizeof keep, "%s/keep", foreign);
    fclose(fopen(keep, "w"));

    /* A directory that looks stale (a lock nobody holds) with another file
       system mounted inside: what is mounted there is not emptied. */
    char planted[] = "/tmp/hyades-XXXXXX", lock[64], sub[64];
    cr_assert_not_null(mkdtemp(planted));
    snprintf(lock, sizeof lock, "%s/lock", planted);
    snprintf(sub, sizeof sub, "%s/sub", planted);
    fclose(fopen(lock, "w"));
    mkdir(sub, 0700);
    char *precious = t_path(t_dir, "precious"), *file = t_path(precious, "file");
    mkdir(precious, 0700);
    fclose(fopen(file, "w"));
    bool mounted = mount(precious, sub, NULL, MS_BIND, NULL) == 0;
    /* And one that is itself a mount, of a directory that looks like a
       stale private one (a lock nobody holds): not emptied either. */
    char covered[] = "/tmp/hyades-XXXXXX";
    cr_assert_not_null(mkdtemp(covered));
    char *shown = t_path(t_dir, "shown"), *shown_lock = t_path(shown, "lock"), *shown_data = t_path(shown, "data");
    mkdir(shown, 0700);
    fclose(fopen(shown_lock, "w"));
    fclose(fopen(shown_data, "w"));
    bool covering = mount(shown, covered, NULL, MS_BIND, NULL) == 0;
    /* Left by managers killed while they made or removed their directory
       (empty, or only the lock file before it took its name), a minute ago:
       swept; the same, just made: kept (a manager may be making it). */
    char old_empty[] = "/tmp/hyades-XXXXXX", old_half[] = "/tmp/hyades-XXXXXX", new_empty[] = "/tmp/hyades-XXXXXX";
    char half_lock[64];
    cr_assert(mkdtemp(old_empty) && mkdtemp(old_half) && mkdtemp(new_empty));
    snprintf(half_lock, sizeof half_lock, "%s/lock.new", old_half);
    fclose(fopen(half_lock, "w"));
    struct timespec ago[2] = {{.tv_sec = time(NULL) - 120}, {.tv_sec = time(NULL) - 120}};
    cr_assert_eq(utimensat(AT_FDCWD, old_empty, ago, 0), 0);
    cr_assert_eq(utimensat(AT_FDCWD, old_half, ago, 0), 0);

    kill(doomed, SIGKILL);
    t_wait(doomed, 5000);
    cr_assert_eq(access(killed, F_OK), 0, "SIGKILL removed %s: the test proves nothing", killed);
    char *log3 = t_path(t_dir, "m3.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "noop", "--units", "3", NULL};
    cr_assert_eq(t_run(argv, log3, 30000), 0);
    bool swept = access(killed, F_OK) != 0, living_kept = access(living, F_OK) == 0, foreign_kept = access(keep, F_OK) == 0;
    bool precious_kept = access(file, F_OK) == 0 && access(shown_data, F_OK) == 0;
    if (covering)
        umount2(covered, MNT_DETACH);
    rmdir(covered);
    bool old_swept = access(old_empty, F_OK) != 0 && access(old_half, F_OK) != 0;
    bool new_kept = access(new_empty, F_OK) == 0;
    unlink(half_lock), rmdir(old_half), rmdir(old_empty), rmdir(new_empty);
    cr_assert(old_swept, "a half-made directory of a killed manager was kept");
    cr_assert(new_kept, "a directory just made was removed");
    if (mounted)
        umount2(sub, MNT_DETACH);
    unlink(keep), rmdir(foreign), unlink(lock), rmdir(sub), rmdir(planted);
    cr_assert(precious_kept, "a file system mounted in a stale-looking directory was emptied");
    cr_assert(swept, "the killed manager's %s is still there", killed);
    cr_assert(t_file_contains(log3, "left by managers that were killed"));
    cr_assert(living_kept, "a living manager's %s was removed", living);
    cr_assert(foreign_kept, "a directory without a lock was removed");
    kill(alive, SIGINT);
    cr_assert_eq(t_wait(alive, 10000), 1, "the living manager did not stop in order");
    cr_assert_neq(access(living, F_OK), 0);
    free(log), free(log2), free(log3), free(out), free(precious), free(file), free(shown), free(shown_lock),
        free(shown_data);
}

/* An output past the file-size limit (`ulimit -f`): SIGXFSZ killed the
   manager, leaving its temporary and private directory; the write now
   fails with the reason, and nothing is left. */
Test(edges, an_output_past_the_file_size_limit_fails_naming_the_cause)
{
    char *out = t_path(t_dir, "big.png"), *log = t_path(t_dir, "m.log"), script[1024];
    snprintf(script, sizeof script, "ulimit -f 40 && exec %s -q --local 2 mandelbrot --width 800 --height 600 -o %s",
             t_bin("hyades-manager"), out);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    int rc = t_run(argv, log, 30000);
    cr_assert_eq(rc, 1, "exit status %d", rc);
    cr_assert(t_file_contains(log, "big.png: File too large"), "the cause is not named");
    cr_assert_eq(access(out, F_OK), -1);
    cr_assert_not(s_has_file(t_dir, ".big.png."), "the temporary was left");
    free(out), free(log);
}

/* Whatever the umask, the private directory is 0700, which is how a sweep
   knows it (with umask 0177 it was 0600, and never swept). */
Test(edges, the_private_directory_is_0700_whatever_the_umask)
{
    char *log = t_path(t_dir, "m.log"), script[1024], dir[256];
    snprintf(script, sizeof script, "umask 0177 && exec %s --local 1 noop --units 100 --sleep-ms 50",
             t_bin("hyades-manager"));
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    pid_t manager = t_spawn(argv, log, NULL);
    cr_assert(t_wait_for(log, "job noop started", NULL, 0, 10000));
    cr_assert(s_private_dir(manager, dir, sizeof dir), "no local worker found");
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    kill(manager, SIGINT);
    t_wait(manager, 10000);
    cr_assert_eq(st.st_mode & 07777, 0700, "mode %o", st.st_mode & 07777);
    free(log);
}

Test(edges, a_closed_stdout_does_not_stop_the_work)
{
    char *out = t_path(t_dir, "p.png"), *log = t_path(t_dir, "m.log");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    close(fds[0]);   /* as `| head -c1` after its first byte */
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        int err = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(err, STDERR_FILENO);
        execl(t_bin("hyades-manager"), "hyades-manager", "--local", "2", "mandelbrot", "--width", "60", "--height",
              "40", "-o", out, (char *) NULL);
        _exit(127);
    }
    close(fds[1]);
    cr_assert_eq(t_wait(pid, 30000), 0, "a closed stdout failed the job");
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(out, &w, &h);
    cr_assert(png && w == 60 && h == 40);
    free(png), free(out), free(log);
}

Test(edges, sighup_stops_the_manager_cleanly_and_its_private_directory_goes)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "never.png"), dir[256];
    char *args[] = {"--local", "2", "mandelbrot", "-o", out, NULL};
    char *slow[] = {"HYADES_FAILPOINTS=sleep:20", NULL};
    pid_t manager = t_manager(args, log, slow, NULL, 0);
    cr_assert(t_wait_for(log, "job mandelbrot started", NULL, 0, 10000));
    cr_assert(s_private_dir(manager, dir, sizeof dir), "no local worker found");
    cr_assert_eq(access(dir, F_OK), 0);
    kill(manager, SIGHUP);
    cr_assert_eq(t_wait(manager, 10000), 1, "SIGHUP did not stop the manager in order");
    cr_assert(t_file_contains(log, "interrupted"));
    cr_assert_neq(access(dir, F_OK), 0, "the private directory %s was left behind", dir);
    cr_assert_neq(access(out, F_OK), 0);
    free(log), free(out);
}

Test(edges, sigint_during_the_final_write_completes_it)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "big.png");
    char *args[] = {"--local", "2", "mandelbrot", "--width", "12000", "--height", "8000", "--max-iter", "1",
                    "--columns-per-unit", "1000", "-o", out, NULL};
    pid_t manager = t_manager(args, log, NULL, NULL, 0);
    int waited = 0;
    while (!s_has_file(t_dir, ".big.png.") && waited++ < 3000)
        usleep(5000);
    cr_assert(s_has_file(t_dir, ".big.png."), "the output's temporary never appeared");
    kill(manager, SIGINT);
    cr_assert_eq(t_wait(manager, 60000), 0, "an interrupted final write did not complete with exit 0");
    uint32_t w, h;
    uint8_t *png = t_read_png_gray(out, &w, &h);
    cr_assert(png && w == 12000 && h == 8000, "the output is not whole");
    cr_assert_not(s_has_file(t_dir, ".big.png."), "the temporary was left behind");
    free(png), free(log), free(out);
}

Test(edges, localhost_is_bound_as_loopback)
{
    char endpoint[256];
    char *log = t_path(t_dir, "m.log");
    char *args[] = {"--bind", "tcp://localhost:0", "--local", "1", "noop", "--units", "3", NULL};
    pid_t manager = t_manager(args, log, NULL, endpoint, sizeof endpoint);
    cr_assert(strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0, "bound %s", endpoint);
    cr_assert_eq(t_wait(manager, 20000), 0);
    free(log);
}

/* A second manager on the ipc:// endpoint of a running one is refused: it
   used to remove the socket file and bind anew, and the first waited for
   good for workers that now reached the second. A socket file nobody
   listens on (left by a process gone) is bound over. */
Test(edges, a_second_manager_on_a_running_ones_ipc_endpoint_is_refused)
{
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/m.sock", t_dir);
    char *alog = t_path(t_dir, "a.log"), *blog = t_path(t_dir, "b.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", endpoint, "noop", "--units", "5", NULL}, bound[300];
    pid_t first = t_manager(args, alog, NULL, bound, sizeof bound);   /* (once it listens) */
    char *again[] = {(char *) t_bin("hyades-manager"), "--bind", endpoint, "noop", NULL};
    cr_assert_eq(t_run(again, blog, 10000), 1, "a second manager bound the endpoint of a running one");
    cr_assert(t_file_contains(blog, "cannot bind"));
    cr_assert_eq(t_count_lines(blog, "hyades-manager:"), 1, "not one line");
    pid_t w = t_worker(endpoint, "w", wlog, NULL, NULL);
    cr_assert_eq(t_wait(first, 20000), 0, "the first manager lost its endpoint");
    t_stop(w);
    /* Its socket file, left behind by a manager killed without warning. */
    unlink(alog);
    first = t_manager(args, alog, NULL, bound, sizeof bound);
    kill(first, SIGKILL);
    t_wait(first, 5000);
    char *stale[] = {(char *) t_bin("hyades-manager"), "--bind", endpoint, "--local", "1", "noop", "--units", "5", NULL};
    cr_assert_eq(t_run(stale, blog, 20000), 0, "a socket file nobody listens on was not bound over");
    /* A file that is no socket is not removed to make room. */
    char *notes = t_path(t_dir, "notes.txt"), on_file[300];
    FILE *f = fopen(notes, "w");
    fputs("precious\n", f);
    fclose(f);
    snprintf(on_file, sizeof on_file, "ipc://%s", notes);
    char *over[] = {(char *) t_bin("hyades-manager"), "--bind", on_file, "--local", "1", "noop", "--units", "5", NULL};
    cr_assert_eq(t_run(over, blog, 20000), 1, "the manager bound over a file");
    cr_assert(t_file_contains(blog, "something other than a socket is there"));
    cr_assert(t_file_contains(notes, "precious"), "the file was removed");
    free(notes);
    /* Another program's datagram socket: in use, not stale (it was removed). */
    char *dg = t_path(t_dir, "dg.sock"), on_dg[300];
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", dg);
    cr_assert_eq(bind(fd, (struct sockaddr *) &un, sizeof un), 0);
    struct stat before, after;
    cr_assert_eq(stat(dg, &before), 0);
    snprintf(on_dg, sizeof on_dg, "ipc://%s", dg);
    over[2] = on_dg;
    cr_assert_eq(t_run(over, blog, 20000), 1, "the manager bound over a live datagram socket");
    cr_assert(stat(dg, &after) == 0 && after.st_ino == before.st_ino, "the datagram socket was replaced");
    close(fd);
    free(dg);
    free(alog), free(blog), free(wlog);
}

/* Two managers started at the same instant on one ipc:// path: exactly one
   listens, the other is refused (both used to bind at times, and one then
   waited for good). And one that finds PATH.lock held is refused. */
Test(edges, of_two_managers_started_at_once_on_one_ipc_path_one_binds)
{
    char endpoint[300], lock[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/race.sock", t_dir);
    snprintf(lock, sizeof lock, "%s/race.sock.lock", t_dir);
    char *alog = t_path(t_dir, "a.log"), *blog = t_path(t_dir, "b.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", endpoint, "noop", NULL};
    for (int round = 0; round < 8; round++) {
        unlink(alog), unlink(blog);
        pid_t a = t_spawn(argv, alog, NULL), b = t_spawn(argv, blog, NULL);
        int listening = 0, refused = 0;
        for (int i = 0; i < 200 && listening + refused < 2; i++) {
            usleep(20000);
            listening = t_file_contains(alog, "listening on") + t_file_contains(blog, "listening on");
            refused = t_file_contains(alog, "cannot bind") + t_file_contains(blog, "cannot bind");
        }
        cr_assert_eq(listening, 1, "round %d: %d managers listen on one ipc path", round, listening);
        cr_assert_eq(refused, 1, "round %d: %d managers refused", round, refused);
        kill(a, SIGTERM), kill(b, SIGTERM);
        t_wait(a, 10000), t_wait(b, 10000);
    }
    /* Its lock held by someone else: refused, with the reason. */
    int fd = open(lock, O_RDONLY | O_CREAT, 0600);
    cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    cr_assert_eq(t_run(argv, blog, 10000), 1, "bound while another held the lock");
    cr_assert(t_file_contains(blog, "another manager is starting or listening there"));
    close(fd);
    free(alog), free(blog);
}

/* A listener at the path that never accepts, its backlog full: the manager
   is refused at once (its check used to wait in connect() for good, deaf
   to Ctrl-C, holding the path's lock). */
Test(edges, a_listener_that_never_accepts_at_the_ipc_path_is_refused_at_once)
{
    char *sock = t_path(t_dir, "full.sock"), endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", sock);
    cr_assert_eq(bind(fd, (struct sockaddr *) &un, sizeof un), 0);
    cr_assert_eq(listen(fd, 0), 0);
    int clients[64], n = 0;
    for (; n < 64; n++) {   /* until the backlog is full */
        clients[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(clients[n], (struct sockaddr *) &un, sizeof un) != 0) {
            close(clients[n]);
            break;
        }
    }
    cr_assert_lt(n, 64, "the backlog never filled");
    char *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", endpoint, "noop", NULL};
    cr_assert_eq(t_run(argv, log, 10000), 1, "the manager did not refuse the path at once");
    cr_assert(t_file_contains(log, "is listening there"));
    for (int i = 0; i < n; i++)
        close(clients[i]);
    close(fd);
    free(sock), free(log);
}

/* An IPv6 address: the manager binds it and a worker connects to it (both
   said "No such device" or could not connect: ZeroMQ takes IPv6 only when
   asked). */
Test(edges, an_ipv6_loopback_endpoint_works)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ipv6 = probe >= 0 && bind(probe, (struct sockaddr *) &sa, sizeof sa) == 0;
    if (probe >= 0)
        close(probe);
    if (!ipv6)
        cr_skip_test("no IPv6 loopback on this machine");
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log");
    char *args[] = {"--bind", "tcp://[::1]:0", "--local", "0", "noop", "--units", "20", NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    cr_assert(strncmp(endpoint, "tcp://[::1]:", 12) == 0, "bound %s", endpoint);
    pid_t w = t_worker(endpoint, "v6", wlog, NULL, NULL);
    cr_assert_eq(t_wait(manager, 20000), 0, "the job over IPv6 failed");
    cr_assert(t_file_contains(mlog, "worker v6 joined"));
    t_stop(w);
    free(mlog), free(wlog);
}

/* -o /dev/stdout: stdout carries the output's bytes and nothing else (the
   status line "wrote ..." was appended to them, a PNG or JSON spoiled). */
Test(edges, an_output_to_stdout_is_the_output_alone)
{
    static const char *const jobs[] = {"mandelbrot --width 64 --height 48", "primes --to 1000",
                                       "pi --samples 1000 --units 2"};
    for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++) {
        char *piped = t_path(t_dir, "piped"), *file = t_path(t_dir, "file"), *log = t_path(t_dir, "s.log");
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "exec '%s' -q --local 2 %s -o /dev/stdout > '%s'", t_bin("hyades-manager"), jobs[j],
                 piped);
        char *sh[] = {"/bin/sh", "-c", cmd, NULL};
        cr_assert_eq(t_run(sh, log, 20000), 0, "%s -o /dev/stdout failed", jobs[j]);
        snprintf(cmd, sizeof cmd, "exec '%s' -q --local 2 %s -o '%s' > /dev/null", t_bin("hyades-manager"), jobs[j],
                 file);
        cr_assert_eq(t_run(sh, log, 20000), 0, "%s -o FILE failed", jobs[j]);
        size_t na, nb;
        char *a = t_read_file(piped, &na), *b = t_read_file(file, &nb);
        cr_assert(a && b && na == nb && memcmp(a, b, na) == 0, "%s: stdout is not the output alone (%zu bytes, %zu)",
                  jobs[j], na, nb);
        free(a), free(b);
        /* --json /dev/stdout: JSON lines alone ("pi: estimate ..." came first). */
        snprintf(cmd, sizeof cmd, "exec '%s' --local 2 --json /dev/stdout %s -o '%s' > '%s'", t_bin("hyades-manager"),
                 jobs[j], file, piped);
        cr_assert_eq(t_run(sh, log, 20000), 0, "%s --json /dev/stdout failed", jobs[j]);
        char *json = t_read_file(piped, &na);
        cr_assert(json && na > 2 && json[0] == '{' && json[na - 2] == '}' && !strchr(json, '\n')[1],
                  "%s: stdout is not one JSON line: %s", jobs[j], json);
        free(json);
        free(piped), free(file), free(log);
    }
}

Test(edges, json_with_odd_bytes_in_a_path_stays_valid)
{
    char *dir = t_path(t_dir, "caf\xe9");   /* not UTF-8 (a control byte is refused in a path: see below) */
    cr_assert_eq(mkdir(dir, 0700), 0);
    char *out = t_path(dir, "o.png"), *json = t_path(t_dir, "j.json"), *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "--json", json, "mandelbrot", "--width", "20",
                    "--height", "10", "-o", out, NULL};
    cr_assert_eq(t_run(argv, log, 20000), 0);
    char *text = t_read_file(json, NULL);
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        cr_assert(*c >= 0x20 || *c == '\n', "a control byte in the JSON");
    cr_assert(strstr(text, "caf\\ufffd/o.png"), "%s", text);
    free(text), free(dir), free(out);
    /* Valid UTF-8 stays as it is. */
    dir = t_path(t_dir, "h\xc3\xa9llo-\xe6\x97\xa5");
    cr_assert_eq(mkdir(dir, 0700), 0);
    out = t_path(dir, "o.png");
    argv[11] = out;
    cr_assert_eq(t_run(argv, log, 20000), 0);
    text = t_read_file(json, NULL);
    cr_assert(strstr(text, "h\xc3\xa9llo-\xe6\x97\xa5/o.png"), "%s", text);
    free(text), free(dir), free(out), free(json), free(log);
}

/* ------------------------------------------------------------ bounded memory */


Test(edges, a_late_first_unit_does_not_make_the_manager_hold_the_whole_list, .timeout = 90)
{
    if (getenv("ASAN_OPTIONS"))
        cr_skip_test("resident memory means nothing under AddressSanitizer (make asan)");
    char endpoint[256];
    char *mlog = t_path(t_dir, "m.log"), *wlog = t_path(t_dir, "w.log"), *out = t_path(t_dir, "p.txt");
    /* About 100 MB of primes; unit 0 is held by a worker that hangs in it. */
    char *args[] = {"--bind", "tcp://127.0.0.1:0", "--min-workers", "2", "--heartbeat", "250", "primes", "--to",
                    "200000000", "--method", "sieve", "--range-size", "500000", "-o", out, NULL};
    pid_t manager = t_manager(args, mlog, NULL, endpoint, sizeof endpoint);
    char *hang[] = {"HYADES_FAILPOINTS=hang:0", NULL};
    pid_t hung = t_worker(endpoint, "hung", wlog, NULL, hang);
    cr_assert(t_wait_for(mlog, "worker hung joined", NULL, 0, 10000));
    pid_t good = t_worker(endpoint, "good", wlog, NULL, NULL);
    long peak = 0;
    while (kill(manager, 0) == 0) {
        long kib = t_status_kib(manager, "VmHWM:");
        if (kib < 0)
            break;
        peak = kib > peak ? kib : peak;
        usleep(20000);
    }
    cr_assert_eq(t_wait(manager, 60000), 0, "the job failed");
    struct stat st;
    cr_assert_eq(stat(out, &st), 0);
    cr_log_info("primes list %lld bytes, manager peak %ld KiB", (long long) st.st_size, peak);
    cr_assert_gt(st.st_size, 90 << 20, "the list is smaller than the test assumes");
    cr_assert_lt(peak, 96 * 1024, "the manager held %ld KiB for a %lld-byte list", peak, (long long) st.st_size);
    cr_assert(t_file_contains(mlog, "wait for unit 0"));
    t_stop(hung);
    cr_assert_eq(t_stop(good), 0);
    free(mlog), free(wlog), free(out);
}

Test(edges, a_journal_whose_header_was_cut_short_starts_afresh)
{
    char *journal = t_path(t_dir, "j"), *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "pi.json");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "-q", "--journal", journal, "pi", "--samples",
                    "100000", "--units", "20", "-o", out, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 0);
    char *first = t_read_file(out, NULL);
    for (off_t cut = 1; cut < 40; cut += 7) {   /* a crash while the header was written */
        cr_assert_eq(truncate(journal, cut), 0);
        unlink(out);
        cr_assert_eq(t_run(argv, log, 30000), 0, "cut at %ld: refused", (long) cut);
        char *again = t_read_file(out, NULL);
        cr_assert_str_eq(again, first);
        free(again);
    }
    /* Another file's bytes are still refused. */
    FILE *f = fopen(journal, "w");
    fputs("not a journal", f);
    fclose(f);
    cr_assert_eq(t_run(argv, log, 30000), 2);
    free(first), free(journal), free(log), free(out);
}

/* ------------------------------------------------------------ local workers and a manager that dies */

/* Waits up to ms for every child of this process to be gone (reaping
   them); returns how many are left. */
static size_t s_children_left(int ms)
{
    for (int waited = 0;; waited += 10) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        pid_t kids[16];
        size_t n = t_children(getpid(), kids, 16);
        if (n == 0 || waited >= ms)
            return n;
        usleep(10000);
    }
}

/* A manager that fails as it starts (its --bind taken) leaves no local
   worker behind. Orphans would come to this process (a subreaper). */
Test(edges, a_manager_that_fails_after_forking_its_workers_leaves_none)
{
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert(bind(fd, (struct sockaddr *) &sa, len) == 0 && listen(fd, 1) == 0);
    getsockname(fd, (struct sockaddr *) &sa, &len);
    char bind_at[64];
    snprintf(bind_at, sizeof bind_at, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
    char *log = t_path(t_dir, "m.log");
    char *argv[] = {(char *) t_bin("hyades-manager"), "--bind", bind_at, "--local", "2", "noop", NULL};
    cr_assert_eq(t_run(argv, log, 10000), 1);
    cr_assert(t_file_contains(log, "cannot bind"));
    cr_assert_eq(s_children_left(3000), 0, "a forked local worker outlived its manager");
    close(fd);
    free(log);
}

/* An impatient operator: SIGKILL to the manager at any moment of its
   start, before and after its workers are started. None of them outlives
   it. */
Test(edges, a_manager_killed_while_starting_leaves_no_worker)
{
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char *log = t_path(t_dir, "m.log");
    for (int delay_us = 0; delay_us <= 14000; delay_us += 2000) {   /* (each leaves its private directory) */
        char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "noop", "--units", "100",
                        "--sleep-ms", "100", NULL};
        pid_t manager = t_spawn(argv, log, NULL);
        usleep((useconds_t) delay_us);
        kill(manager, SIGKILL);
        cr_assert_eq(s_children_left(3000), 0, "a local worker outlived a manager killed %d us after its start",
                     delay_us);
    }
    free(log);
}

/* ------------------------------------------------------------ descriptors run out */

/* Opens up to n TCP connections to 127.0.0.1:port, each sending the start of
   an HTTP request that never ends when partial is set; their descriptors go
   to fds, their number is returned. */
static size_t s_hold_connections(int port, size_t n, bool partial, int *fds)
{
    size_t held = 0;
    for (size_t i = 0; i < n; i++) {
        /* Non-blocking: with the manager's queue full a connect would wait
           for seconds; the kernel completes them as it takes them. */
        int fd = socket(AF_INET, SOCK_STREAM | (partial ? 0 : SOCK_NONBLOCK), 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (fd < 0 || (connect(fd, (struct sockaddr *) &sa, sizeof sa) != 0 && errno != EINPROGRESS)) {
            if (fd >= 0)
                close(fd);
            break;
        }
        if (partial)
            (void) !write(fd, "GET / HTTP/1.1\r\nHo", 18);
        fds[held++] = fd;
    }
    return held;
}

/* The descriptors pid has open. */
static size_t s_open_files(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int) pid);
    DIR *d = opendir(path);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* The most descriptors pid held, looked at for up to 2 s or until it
   holds limit. */
static size_t s_most_open_files(pid_t pid, size_t limit)
{
    size_t most = 0;
    for (int i = 0; i < 200 && most < limit; i++) {
        size_t n = s_open_files(pid);
        most = n > most ? n : most;
        usleep(10000);
    }
    return most;
}

/* The manager running `ulimit -n files; exec hyades-manager args` under the
   failpoints env; its log in log. */
static pid_t s_manager_limited(int files, const char *args, const char *log, char *const env[])
{
    char script[4096];
    snprintf(script, sizeof script, "ulimit -n %d && exec %s %s", files, t_bin("hyades-manager"), args);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    return t_spawn(argv, log, env);
}

/* A mandelbrot job of the default view, width x height, sleep_ms a unit,
   under `ulimit -n files` with the manager options given; waits for the
   log line that names its port (port_line, followed by the port: into
   *port) and for the job to start. */
static pid_t s_limited_mandelbrot(int files, const char *options, uint32_t width, uint32_t height, int sleep_ms,
                                  const char *port_line, const char *log, const char *out, int *port)
{
    char args[1024], env_sleep[64], rest[256];
    snprintf(args, sizeof args, "%s mandelbrot --width %u --height %u -o %s", options, width, height, out);
    snprintf(env_sleep, sizeof env_sleep, "HYADES_FAILPOINTS=sleep:%d", sleep_ms);
    char *env[] = {env_sleep, NULL};
    pid_t manager = s_manager_limited(files, args, log, env);
    cr_assert(t_wait_for(log, port_line, rest, sizeof rest, 10000));
    *port = atoi(rest);
    cr_assert(t_wait_for(log, "job mandelbrot started", NULL, 0, 10000));
    return manager;
}

/* out is the default view, width x height, pixel for pixel. */
static void s_assert_default_view(const char *out, uint32_t width, uint32_t height)
{
    cr_assert(t_is_default_view(out, width, height), "the image differs");
}

/* Pages held open on the dashboard cannot take the descriptors the job
   needs: at `ulimit -n 150`, 300 slow connections once made a job that had
   computed every unit fail with "cannot write ...: Too many open files". The
   dashboard now takes at most an eighth of the limit. */
Test(edges, slow_dashboard_pages_cannot_take_the_output_s_descriptors)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "fd.png");
    int port;
    pid_t manager = s_limited_mandelbrot(150, "--local 2 --dashboard 127.0.0.1:0", 400, 100, 10,
                                         "dashboard at http://127.0.0.1:", log, out, &port);
    static int fds[300];
    size_t held = s_hold_connections(port, 300, true, fds);
    cr_assert_gt(held, 100, "only %zu connections", held);
    int rc = t_wait(manager, 60000);
    for (size_t i = 0; i < held; i++)
        close(fds[i]);
    cr_assert_eq(rc, 0, "the job failed with pages held open");
    s_assert_default_view(out, 400, 100);
    free(log), free(out);
}

/* A flood of connections to --bind takes every descriptor the manager may
   have while its last units come in: the output, short of one, waits, and
   the manager stops listening (the last job), which gives it one, rather
   than losing the work to "Too many open files". */
Test(edges, the_output_waits_for_descriptors_a_flood_holds)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "flood.png");
    int port;
    pid_t manager = s_limited_mandelbrot(64, "--bind tcp://127.0.0.1:0 --local 1", 200, 50, 20,
                                         "listening on tcp://127.0.0.1:", log, out, &port);
    /* Every descriptor taken (the kernel queues the rest), until the work
       (200 units of 20 ms) is over. */
    static int fds[200];
    size_t held = s_hold_connections(port, 200, false, fds);
    size_t most = s_most_open_files(manager, 64);
    cr_assert_geq(most, 62, "the flood took %zu of 64 descriptors: the test proves nothing", most);
    cr_assert(t_file_contains(log, "at most 64 open files: about 32 workers can connect"));
    /* Held until the manager is done, or 20 s: its last job's output must
       not need the flood to end. */
    int rc = t_wait(manager, 20000);
    for (size_t i = 0; i < held; i++)
        close(fds[i]);
    if (rc == -1)
        rc = t_wait(manager, 60000);
    cr_assert_eq(rc, 0, "the job failed under the flood");
    cr_assert(t_file_contains(log, "a descriptor came back"), "the output never lacked a descriptor");
    s_assert_default_view(out, 200, 50);
    free(log), free(out);
}

/* A two-line batch under `ulimit -n 64` (its first line a mandelbrot into
   out, 10 ms a unit, on one local worker, with the manager options given)
   whose first output finds no descriptor: a flood of connections takes
   them all once the job has started. */
typedef struct {
    pid_t manager;
    bool waiting;   /* the output said it waits for a descriptor */
    size_t held;    /* the flood's connections, in fds */
    int fds[200];
} flooded_t;

static void s_flooded_batch(const char *options, const char *log, const char *out, flooded_t *fl)
{
    char *batch = t_path(t_dir, "jobs"), args[1024], rest[256];
    FILE *f = fopen(batch, "w");
    fprintf(f, "mandelbrot --width 200 --height 50 -o %s\nnoop --units 2\n", out);
    fclose(f);
    snprintf(args, sizeof args, "%s --bind tcp://127.0.0.1:0 --local 1 --batch %s", options, batch);
    char *env[] = {"HYADES_FAILPOINTS=sleep:10", NULL};
    fl->manager = s_manager_limited(64, args, log, env);
    cr_assert(t_wait_for(log, "listening on tcp://127.0.0.1:", rest, sizeof rest, 10000));
    cr_assert(t_wait_for(log, "job mandelbrot started", NULL, 0, 10000));   /* the local worker is in */
    fl->held = s_hold_connections(atoi(rest), 200, false, fl->fds);
    fl->waiting = t_wait_for(log, "waiting up to 30 s for a descriptor", NULL, 0, 20000);
    free(batch);
}

/* The flood goes. */
static void s_flood_end(flooded_t *fl)
{
    for (size_t i = 0; i < fl->held; i++)
        close(fl->fds[i]);
    fl->held = 0;
}

/* The workers keep getting their heartbeats while the output waits: a
   worker that found its manager silent reconnected, and a local worker's
   reconnection, short of a descriptor, made libzmq abort the manager
   (exit 134, the work lost). Here the workers give up on a silent manager
   after 1.2 s (--heartbeat 100), and the flood holds every descriptor for
   3 s of the wait. */
Test(edges, the_workers_keep_their_heartbeats_while_the_output_waits)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "first.png");
    static flooded_t fl;
    s_flooded_batch("--heartbeat 100", log, out, &fl);
    usleep(3000000);
    s_flood_end(&fl);
    int rc = t_wait(fl.manager, 30000);
    cr_assert(fl.waiting, "the output never waited for a descriptor: the test proves nothing");
    cr_assert_eq(rc, 0, "exit status %d after the wait", rc);
    cr_assert_not(t_file_contains(log, "silent; reconnecting"), "a worker found the waiting manager silent");
    cr_assert_not(t_file_contains(log, "stood still"), "the wait was taken for a manager starved of CPU");
    s_assert_default_view(out, 200, 50);
    free(log), free(out);
}

/* A local worker that dies while a flood holds every descriptor is
   restarted only once one is free: its connection, short of one, made
   libzmq's ipc listener abort the manager (exit 134). */
Test(edges, a_local_worker_is_not_restarted_into_a_flood)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "flood.png");
    int port;
    pid_t manager = s_limited_mandelbrot(64, "--bind tcp://127.0.0.1:0 --local 2", 200, 50, 20,
                                         "listening on tcp://127.0.0.1:", log, out, &port);
    /* Both in before the flood (the job starts with the first): a first
       connection during it would make libzmq abort, as below. */
    cr_assert(t_wait_for(log, "worker local-1 joined", NULL, 0, 10000));
    cr_assert(t_wait_for(log, "worker local-2 joined", NULL, 0, 10000));
    static int fds[200];
    size_t held = s_hold_connections(port, 200, false, fds);
    size_t most = s_most_open_files(manager, 64);
    pid_t kids[4];
    size_t n = t_children(manager, kids, 4);
    if (n > 0)
        kill(kids[0], SIGKILL);
    /* The flood comes and goes: a few connections closed and opened again
       every 20 ms, for 3 s (each closed one frees a descriptor for a moment). */
    for (int round = 0; round < 150; round++) {
        size_t k = (size_t) (round * 3) % (held > 3 ? held - 3 : 1);
        size_t want = held - k < 3 ? held - k : 3;
        for (size_t j = k; j < k + want; j++)
            if (fds[j] >= 0)
                close(fds[j]);
        for (size_t j = k + s_hold_connections(port, want, false, &fds[k]); j < k + want; j++)
            fds[j] = -1;
        usleep(20000);
    }
    bool starved = t_file_contains(log, "waits to be restarted: too few descriptors are left");
    int early = t_exited(manager);
    for (size_t i = 0; i < held; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    int rc = t_wait(manager, 60000);
    cr_assert_geq(most, 62, "the flood took %zu of 64 descriptors: the test proves nothing", most);
    cr_assert_gt(n, 0, "no local worker found");
    cr_assert_eq(early, -1, "the manager ended (status %d) while the flood held its descriptors", early);
    cr_assert(starved, "the restart did not wait for a descriptor");
    cr_assert_eq(rc, 0, "exit status %d", rc);
    cr_assert(t_file_contains(log, "restarting local worker"));
    s_assert_default_view(out, 200, 50);
    free(log), free(out);
}

/* Ctrl-C ends that wait: the operator is not kept 30 s. Here the batch's
   first job, after which the manager keeps listening (another job may want
   new workers), so the flood keeps every descriptor and only the signal
   ends the wait. */
Test(edges, a_signal_ends_the_wait_for_a_descriptor)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "first.png");
    static flooded_t fl;
    s_flooded_batch("", log, out, &fl);
    char dir[256] = "";
    bool found = s_private_dir(fl.manager, dir, sizeof dir);
    kill(fl.manager, SIGINT);
    int rc = t_wait(fl.manager, 5000);
    bool dir_left = found && access(dir, F_OK) == 0;
    s_flood_end(&fl);
    cr_assert(fl.waiting, "the output never waited for a descriptor: the test proves nothing");
    cr_assert_eq(rc, 1, "exit status %d: Ctrl-C did not end the wait", rc);
    cr_assert(found, "no local worker found");
    cr_assert_not(dir_left, "the private directory %s was left behind", dir);
    cr_assert(t_file_contains(log, "the wait for a descriptor was ended"), "the failure does not say why");
    cr_assert_eq(access(out, F_OK), -1, "an output was left");
    free(log), free(out);
}

/* A stop signal at any moment of the start: the manager dies of it (before
   its handler is in place) or exits 1 saying why. A signal during its set-up
   (ZeroMQ, the local workers) made it exit 1 with nothing on stderr. */
Test(edges, a_stop_signal_during_the_start_is_never_a_silent_failure)
{
    char *log = t_path(t_dir, "m.log"), *out = t_path(t_dir, "x.png");
    int silent = 0, said = 0;
    for (int delay_us = 500; delay_us <= 20000; delay_us += 500) {
        unlink(log);
        char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "mandelbrot", "-o", out, NULL};
        pid_t manager = t_spawn(argv, log, NULL);
        usleep((useconds_t) delay_us);
        kill(manager, SIGTERM);
        int rc = t_wait(manager, 20000);
        cr_assert(rc == 0 || rc == 1 || rc == 128 + SIGTERM, "exit %d after %d us", rc, delay_us);
        if (rc != 1)
            continue;
        size_t len = 0;
        char *text = t_read_file(log, &len);
        if (len == 0)
            silent++;
        else
            said++;
        free(text);
    }
    cr_assert_eq(silent, 0, "%d of %d failures said nothing", silent, silent + said);
    free(log), free(out);
}

/* A --frames-dir the job cannot use is refused with the other bad paths,
   before any work (exit 2); it failed the job at its start (exit 1). */
Test(edges, an_unusable_frames_dir_is_refused_up_front)
{
    char *file = t_path(t_dir, "file"), *missing = t_path(t_dir, "no/such"), *gif = t_path(t_dir, "f.gif");
    char *log = t_path(t_dir, "m.log");
    FILE *f = fopen(file, "w");
    fclose(f);
    const char *dirs[][2] = {{file, "Not a directory"}, {missing, "No such file or directory"},
                             {"/dev/null", "Not a directory"}};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "1", "frames", "--count", "3", "--frames-dir",
                        (char *) dirs[i][0], "-o", gif, NULL};
        unlink(log);
        cr_assert_eq(t_run(argv, log, 30000), 2, "%s was taken", dirs[i][0]);
        char want[4200];
        snprintf(want, sizeof want, "--frames-dir %s: %s", dirs[i][0], dirs[i][1]);
        cr_assert(t_file_contains(log, want), "%s: the reason is not given", dirs[i][0]);
        cr_assert_not(t_file_contains(log, "job frames started"), "%s: the job started", dirs[i][0]);
    }
    cr_assert_eq(access(gif, F_OK), -1);
    free(file), free(missing), free(gif), free(log);
}

/* A path with a control character in it is refused, not echoed: a newline
   in -o forged a log line in the status and summary lines. */
Test(edges, paths_with_control_characters_are_refused)
{
    char *log = t_path(t_dir, "m.log"), bad[4200];
    snprintf(bad, sizeof bad, "%s/a\nINFO forged", t_dir);
    char *out[] = {(char *) t_bin("hyades-manager"), "-q", "--local", "1", "mandelbrot", "-o", bad, NULL};
    cr_assert_eq(t_run(out, log, 10000), 2);
    cr_assert(t_file_contains(log, "an output path with a control character (byte 0x0a at offset"));
    cr_assert_not(t_file_contains(log, "\nINFO forged"), "the name was echoed");
    snprintf(bad, sizeof bad, "%s/\x1b[31m", t_dir);
    char *dir[] = {(char *) t_bin("hyades-manager"), "-q", "--local", "1", "frames", "--frames-dir", bad, NULL};
    unlink(log);
    cr_assert_eq(t_run(dir, log, 10000), 2);
    cr_assert(t_file_contains(log, "a --frames-dir with a control character (byte 0x1b at offset"));
    free(log);
}

/* Frames in --frames-dir come with the job's success: an interrupted job
   leaves none (it left every frame written so far, thousands), a finished
   one all of them under their names and nothing hidden. */
Test(edges, an_interrupted_frames_job_leaves_no_frames)
{
    char *dir = t_path(t_dir, "fr"), *gif = t_path(t_dir, "f.gif"), *log = t_path(t_dir, "m.log");
    char *slow[] = {"HYADES_FAILPOINTS=sleep:20", NULL};
    char *argv[] = {(char *) t_bin("hyades-manager"), "--local", "2", "frames", "--count", "3000", "--frames-per-unit",
                    "10", "--frames-dir", dir, "-o", gif, NULL};
    pid_t manager = t_spawn(argv, log, slow);
    /* Until frames are being written: the first units are in. */
    cr_assert(t_wait_for(log, "job frames started", NULL, 0, 10000));
    size_t seen = 0;
    for (int i = 0; i < 400 && seen == 0; i++, usleep(10000)) {
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));)
            seen += strstr(e->d_name, "frame_") != NULL;
        if (d)
            closedir(d);
    }
    cr_assert_gt(seen, 0, "no frame was written");
    kill(manager, SIGTERM);
    cr_assert_eq(t_wait(manager, 20000), 1);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d));)
        cr_assert(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0, "%s stayed", e->d_name);
    closedir(d);
    cr_assert_eq(access(gif, F_OK), -1);
    /* A whole run: every frame under its name, nothing else. */
    char *argv2[] = {(char *) t_bin("hyades-manager"), "--local", "2", "frames", "--count", "40", "--frames-per-unit",
                     "3", "--frames-dir", dir, "-o", gif, NULL};
    cr_assert_eq(t_run(argv2, log, 30000), 0);
    size_t frames = 0;
    d = opendir(dir);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' && (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0))
            continue;
        unsigned n;
        char tail;
        cr_assert_eq(sscanf(e->d_name, "frame_%5u.pn%c", &n, &tail), 2, "%s is there", e->d_name);
        cr_assert_lt(n, 40u);
        frames++;
    }
    closedir(d);
    cr_assert_eq(frames, 40);
    free(dir), free(gif), free(log);
}

/* Another user's file in a sticky directory cannot be renamed over: the
   output is refused before the work (it failed at the end, with the work
   lost). */
Test(edges, another_users_file_in_a_sticky_directory_is_refused_up_front)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
        cr_skip_test("needs root and setpriv to act as another user");
    char *shared = t_path(t_dir, "sticky"), *out = t_path(shared, "theirs.png"), *log = t_path(t_dir, "m.log");
    cr_assert_eq(mkdir(shared, 0777), 0);
    cr_assert_eq(chmod(shared, 01777), 0);
    cr_assert_eq(chmod(t_dir, 0755), 0);
    FILE *f = fopen(out, "w");
    fputs("theirs\n", f);
    fclose(f);
    cr_assert_eq(chmod(out, 0666), 0);   /* writable, yet not replaceable by others */
    char *probe[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                     (char *) t_bin("hyades-manager"), "--version", NULL};
    if (t_run(probe, NULL, 10000) != 0)
        cr_skip_test("user nobody cannot run %s here", t_bin("hyades-manager"));
    char *argv[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    (char *) t_bin("hyades-manager"), "--local", "1", "mandelbrot", "--width", "40", "--height", "30",
                    "-o", out, NULL};
    cr_assert_eq(t_run(argv, log, 30000), 2);
    cr_assert(t_file_contains(log, "it belongs to another user in a sticky directory"), "the reason is not given");
    cr_assert_not(t_file_contains(log, "job mandelbrot started"), "the work was done first");
    char *text = t_read_file(out, NULL);
    cr_assert_str_eq(text, "theirs\n");
    free(text), free(shared), free(out), free(log);
}
