/* bench: throughput of the cluster, as ratios against baselines measured in
   the same run (this machine is shared: only ratios mean something).

   1. kernels: each Mandelbrot kernel on one thread, with and without the
      cycle test, against the scalar kernel without it, in process.
   2. the cluster against the best single-machine program: Mandelbrot
      rendered in this process by one thread per core taking columns
      dynamically with the best kernel (what a good OpenMP program does),
      against hyades-manager --local <cores> with default options; and the
      cluster against that program run as a process (hyades-baseline).
   3. the cluster's own cost per unit: the extra time of 200,000 more noop
      units on --local <cores>.
   4. jobs: each job computed in this process on one thread through the job
      seam (plan, load, compute and accept every unit: the work without the
      cluster) against hyades-manager --local 1 and --local <cores>. The
      manager's own CPU time (from its --json summary) shows whether it is
      the bottleneck.
   5. a thousand idle workers (hyades-swarm) on one manager: its CPU, against
      a minimal manager (hyades-swarm --bare-manager) exchanging the same
      messages with the same swarm.
   Blocks can be picked by name: hyades-bench [kernels] [png] [cluster] [dashboard] [noop] [swarm] [jobs]. */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <png.h>
#include <setjmp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/image.h"
#include "jobs/job.h"
#include "jobs/mandelbrot.h"
#include "tests/bench/allcores.h"
#include "tests/helpers.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double s_image(const mandel_params_t *p, mandel_kernel_t kernel, bool cycles)
{
    uint8_t *col = malloc(p->height);
    double t0 = s_now();
    for (uint32_t i = 0; i < p->width; i++)
        mandel_column_with(kernel, cycles, p, i, col);
    double t = s_now() - t0;
    free(col);
    return t;
}

/* Every kernel this CPU has, with and without the cycle test, on view p. */
/* What the cycle test can do for a view, from every 4th column of every
   4th row, iterated by SPEC 3.1 in scalar code with Brent's test: the
   share of points that reach max-iter, the share of those whose state
   repeats bit for bit before it (proven never to escape), and the share of
   all iterations that proof saves. */
static void s_cycle_reach(const mandel_params_t *p)
{
    const double dx = (p->xmax - p->xmin) / p->width, dy = (p->ymax - p->ymin) / p->height;
    uint64_t points = 0, inside = 0, proven = 0, iterations = 0, saved = 0;
    for (uint32_t j = 0; j < p->height; j += 4)
        for (uint32_t i = 0; i < p->width; i += 4) {
            double cr = p->xmin + i * dx, ci = p->ymax - j * dy, zr = 0, zi = 0, sr = 0, si = 0;
            uint32_t k = 0, power = 1, lambda = 0, at = 0;
            while (k < p->max_iter) {
                double zr2 = zr * zr, zi2 = zi * zi;
                if (zr2 + zi2 > 4.0)
                    break;
                zi = (2.0 * zr) * zi + ci;
                zr = (zr2 - zi2) + cr;
                k++;
                if (!at && zr == sr && zi == si)
                    at = k;   /* the state repeats: it cycles for good */
                if (++lambda == power)
                    sr = zr, si = zi, power *= 2, lambda = 0;
            }
            points++;
            iterations += k;
            if (k == p->max_iter) {
                inside++;
                proven += at > 0;
                saved += at ? p->max_iter - at : 0;
            }
        }
    printf("  reach of the cycle test: %.1f%% of the points reach max-iter; %.1f%% of those repeat before it, "
           "which saves %.1f%% of all iterations\n",
           100.0 * inside / points, inside ? 100.0 * proven / inside : 0.0, 100.0 * saved / iterations);
}

static void s_kernels(const char *title, const mandel_params_t *p)
{
    printf("mandelbrot kernels, %s (in use: %s, cycle test on)\n", title, mandel_kernel_name(mandel_kernel()));
    double base = s_image(p, MANDEL_SCALAR, false);
    printf("  scalar, one thread (baseline)          %8.3f s   1.00x\n", base);
    for (int k = MANDEL_SCALAR; k < MANDEL_KERNELS; k++) {
        if (!mandel_kernel_available((mandel_kernel_t) k))
            continue;
        for (int cycles = k == MANDEL_SCALAR; cycles < 2; cycles++) {
            double t = s_image(p, (mandel_kernel_t) k, cycles);
            char name[64];
            snprintf(name, sizeof name, "%s%s, one thread", mandel_kernel_name((mandel_kernel_t) k),
                     cycles ? " + cycle test" : "");
            printf("  %-38s %8.3f s   %.2fx\n", name, t, base / t);
        }
    }
    s_cycle_reach(p);
    printf("\n");
}

/* ------------------------------------------------------------ all cores */

/* The best single-machine program (allcores) in this process. */
static double s_all_cores(const mandel_params_t *p, long threads)
{
    double t = allcores_render(p, threads, "baseline.png");
    if (t < 0)
        exit(1);
    return t;
}

/* The same program as a process of its own (hyades-baseline), timed from
   its fork to its exit as the cluster is. */
static double s_all_cores_process(const mandel_params_t *p, long threads)
{
    char a[7][32];
    snprintf(a[0], 32, "%u", p->width), snprintf(a[1], 32, "%u", p->height);
    snprintf(a[2], 32, "%.17g", p->xmin), snprintf(a[3], 32, "%.17g", p->xmax);
    snprintf(a[4], 32, "%.17g", p->ymin), snprintf(a[5], 32, "%.17g", p->ymax);
    snprintf(a[6], 32, "%u", p->max_iter);
    char n[24];
    snprintf(n, sizeof n, "%ld", threads);
    char *argv[] = {(char *) t_bin("hyades-baseline"), a[0], a[1], a[2], a[3], a[4], a[5], a[6], n,
                    "baseline-process.png", NULL};
    fflush(stdout);
    double t0 = s_now();
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    double t = s_now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench: %s failed (make %s)\n", argv[0], argv[0]);
        exit(1);
    }
    return t;
}

/* The job's work on one thread in this process: every unit computed and accepted. */
static double s_in_process(char **job, int argc)
{
    const job_kind_t *kind = job_find(job[0], strlen(job[0]));
    job_plan_t plan = {0};
    char err[512];
    FILE *devnull = fopen("/dev/null", "w");
    if (!kind || kind->plan(argc, job, &plan, devnull, err, sizeof err) != JOB_OK) {
        fprintf(stderr, "bench: cannot plan %s\n", job[0]);
        exit(1);
    }
    double t0 = s_now();
    void *ctx = kind->load(plan.params, plan.params_len);
    if (kind->begin)
        kind->begin(plan.state, "/tmp/hyades-bench-in-process.out", err, sizeof err);
    for (uint64_t u = 0; u < plan.units; u++) {
        uint8_t *out;
        size_t len;
        kind->compute(ctx, u, NULL, &out, &len);
        kind->accept(plan.state, u, out, len, NULL, 0);
        free(out);
    }
    double t = s_now() - t0;
    kind->unload(ctx);
    job_plan_clear(kind, &plan);
    fclose(devnull);
    unlink("/tmp/hyades-bench-in-process.out");
    return t;
}

/* Runs the manager on job with n local workers; returns wall seconds and its CPU in *cpu. */
/* Options s_cluster puts before the job (the dashboard block's). */
static char *s_extra[4];

static double s_cluster(char **job, int argc, long n, double *cpu, double *rate)
{
    char local[24], *json = "/tmp/hyades-bench.json";
    snprintf(local, sizeof local, "%ld", n);
    char *argv[40] = {(char *) t_bin("hyades-manager"), "--quiet", "--json", json, "--local", local};
    int k = 6;
    for (int i = 0; i < 4 && s_extra[i]; i++)
        argv[k++] = s_extra[i];
    for (int i = 0; i < argc; i++)
        argv[k++] = job[i];
    argv[k] = NULL;
    fflush(stdout);   /* else the child's stdout would repeat what is buffered */
    double t0 = s_now();
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    double t = s_now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench: %s failed\n", job[0]);
        exit(1);
    }
    char *text = t_read_file(json, NULL);
    const char *at = text ? strstr(text, "\"manager_cpu_seconds\":") : NULL;
    *cpu = at ? strtod(at + 22, NULL) : -1;
    at = text ? strstr(text, "\"units_per_second\":") : NULL;
    *rate = at ? strtod(at + 19, NULL) : -1;
    free(text);
    unlink(json);
    return t;
}

/* CPU seconds pid's threads have used, to the nanosecond (the sum of
   /proc/PID/task/TID/schedstat: /proc/PID/stat counts in clock ticks, too
   coarse for a few tenths of a second); -1 if unknown. */
static double s_cpu_of(pid_t pid)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    unsigned long long total = 0, ns;
    int threads = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.32s/schedstat", (int) pid, e->d_name);
        char *text = t_read_file(path, NULL);
        if (text && sscanf(text, "%llu", &ns) == 1) {
            total += ns;
            threads++;
        }
        free(text);
    }
    closedir(dir);
    return threads ? (double) total / 1e9 : -1;
}

/* Share of one core a manager holding count idle workers (hyades-swarm)
   used over seconds, once they all joined; bare: the swarm's minimal
   manager instead of hyades-manager. */
static int s_free_port(void);

static double s_median(double *v, int n);

static double s_swarm_once(bool bare, int count, int seconds, char *report, size_t report_len)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_free_port());
    char *margv[] = {(char *) t_bin("hyades-manager"), "--quiet", "--bind", endpoint, "--min-workers", "100000",
                     "noop", NULL};
    char *bargv[] = {(char *) t_bin("hyades-swarm"), "--bare-manager", endpoint, NULL};
    pid_t manager = t_spawn(bare ? bargv : margv, NULL, NULL);
    usleep(300000);
    int status;
    if (waitpid(manager, &status, WNOHANG) == manager) {
        fprintf(stderr, "bench: the manager for the swarm block did not start (%s in use?)\n", endpoint);
        exit(1);
    }
    char n[16], secs[16];
    snprintf(n, sizeof n, "%d", count);
    snprintf(secs, sizeof secs, "%d", seconds + 5);
    char *sargv[] = {(char *) t_bin("hyades-swarm"), endpoint, n, secs, NULL};
    pid_t swarm = t_spawn(sargv, "/tmp/hyades-bench-swarm.log", NULL);
    sleep(3);   /* all joined */
    double c0 = s_cpu_of(manager), t0 = s_now();
    sleep((unsigned) seconds);
    double c1 = s_cpu_of(manager), t1 = s_now();
    waitpid(swarm, &status, 0);
    kill(manager, SIGKILL);
    waitpid(manager, &status, 0);
    char *log = t_read_file("/tmp/hyades-bench-swarm.log", NULL);
    snprintf(report, report_len, "%s", log ? strtok(log, "\n") : "no swarm report");
    free(log);
    unlink("/tmp/hyades-bench-swarm.log");
    return 100 * (c1 - c0) / (t1 - t0);
}

/* hyades-manager against the least any manager does for the same idle
   workers: the same messages (HELLO, WELCOME, a HEARTBEAT each way every
   4 s, the idle interval) through ZeroMQ and the kernel, nothing else. Alternated runs,
   medians. */
#define SWARM_RUNS 3

static void s_swarm(int count, int seconds)
{
    const int runs = SWARM_RUNS;
    double bare[SWARM_RUNS], hy[SWARM_RUNS];
    char report[200] = "", bare_report[200] = "";
    for (int i = 0; i < runs; i++) {
        for (int k = 0; k < 2; k++) {
            if ((i + k) % 2)
                hy[i] = s_swarm_once(false, count, seconds, report, sizeof report);
            else
                bare[i] = s_swarm_once(true, count, seconds, bare_report, sizeof bare_report);
        }
    }
    double b = s_median(bare, runs), h = s_median(hy, runs);
    printf("%d idle workers (hyades-swarm) heartbeating on one manager: its CPU over %d s (medians of %d runs)\n",
           count, seconds, runs);
    printf("  minimal manager, same messages (baseline)  %5.2f%% of one core   1.00x   (%s)\n", b, bare_report);
    printf("  hyades-manager                             %5.2f%% of one core   %.2fx   (%s)\n\n", h, h / b, report);
}

#define BENCH_REPEAT_MAX 50

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* The median of n values (sorted in place). */
static double s_median(double *v, int n)
{
    qsort(v, (size_t) n, sizeof *v, s_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double s_min(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double s_max(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* ------------------------------------------------------------ dashboard */

/* A free loopback port (the kernel's pick, released for the manager to take). */
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    bind(fd, (struct sockaddr *) &sa, sizeof sa);
    getsockname(fd, (struct sockaddr *) &sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

typedef struct {
    int port;
    atomic_bool stop;
    unsigned requests;
} watcher_t;

/* One GET, its answer read and dropped; whether one came. */
static bool s_fetch(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        close(fd);
        return false;
    }
    char request[128], buffer[65536];
    snprintf(request, sizeof request, "GET %s HTTP/1.0\r\n\r\n", path);
    send(fd, request, strlen(request), MSG_NOSIGNAL);
    ssize_t n, total = 0;
    while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0)
        total += n;
    close(fd);
    return total > 0;
}

/* What the page does while it is open: the status twice a second, the
   picture once a second. */
static void *s_watch(void *arg)
{
    watcher_t *w = arg;
    for (unsigned tick = 0; !atomic_load(&w->stop); tick++) {
        if (!s_fetch(w->port, "/api/status")) {
            usleep(20000);   /* not up yet */
            continue;
        }
        w->requests++;
        if (tick % 2 == 0)
            w->requests += s_fetch(w->port, "/preview.png");
        usleep(500000);
    }
    return NULL;
}

/* libpng's own writer with the settings image.c gives it (fastest
   compression, the up filter), row by row on one thread: what every PNG was
   written with before the banded writer. */
static void s_libpng_write(const char *path, const uint8_t *rows, uint32_t width, uint32_t height)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!f || !info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "bench: cannot write %s\n", path);
        exit(1);
    }
    png_init_io(png, f);
    png_set_compression_level(png, 1);
    png_set_filter(png, 0, PNG_FILTER_UP);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++)
        png_write_row(png, rows + (size_t) y * width);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* The final write of the first view's plot: libpng's writer on one thread
   against image_write_png (bands on every core), medians of repeat. */
static void s_png_block(const mandel_params_t *p, int repeat)
{
    uint8_t *columns = malloc((size_t) p->width * p->height), *rows = malloc((size_t) p->width * p->height);
    for (uint32_t i = 0; i < p->width; i++)
        mandel_column(p, i, columns + (size_t) i * p->height);
    for (uint32_t i = 0; i < p->width; i++)
        for (uint32_t j = 0; j < p->height; j++)
            rows[(size_t) j * p->width + i] = columns[(size_t) i * p->height + j];
    double one[BENCH_REPEAT_MAX], banded[BENCH_REPEAT_MAX];
    char err[256];
    for (int r = 0; r < repeat; r++) {
        double t0 = s_now();
        s_libpng_write("libpng.png", rows, p->width, p->height);
        one[r] = s_now() - t0;
        t0 = s_now();
        if (image_write_png("banded.png", rows, p->width, p->height, 1, err, sizeof err) < 0) {
            fprintf(stderr, "bench: %s\n", err);
            exit(1);
        }
        banded[r] = s_now() - t0;
    }
    struct stat a, b;
    stat("libpng.png", &a), stat("banded.png", &b);
    double base = s_median(one, repeat), t = s_median(banded, repeat);
    printf("PNG of the %ux%u plot (max-iter %u), from rows in memory to the file (medians of %d)\n", p->width,
           p->height, p->max_iter, repeat);
    printf("  libpng's writer, one thread (baseline)  %8.3f s   1.00x   %lld bytes\n", base, (long long) a.st_size);
    printf("  image_write_png, bands on every core    %8.3f s   %.2fx   %lld bytes\n\n", t, base / t,
           (long long) b.st_size);
    unlink("libpng.png"), unlink("banded.png");
    free(columns), free(rows);
}

/* Whether block name was asked for (no arguments: every block). */
static bool s_wanted(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return argc < 2;
}

int main(int argc_main, char **argv_main)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* The programs it runs sit next to it, unless HYADES_BUILD says otherwise: found
       before the chdir below, so that the bench runs from any directory. */
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0 && !getenv("HYADES_BUILD")) {
        self[n] = '\0';
        *strrchr(self, '/') = '\0';
        setenv("HYADES_BUILD", self, 1);
    }
    /* Jobs write their default outputs (mandelbrot.png, ...) in a directory of our own. */
    char dir[] = "/tmp/hyades-bench-XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        perror("bench");
        return 1;
    }
    /* How many times the cluster block runs each side (HYADES_BENCH_REPEAT, 1..50). */
    const char *rep = getenv("HYADES_BENCH_REPEAT");
    int repeat = rep && *rep ? atoi(rep) : 11;
    if (repeat < 1 || repeat > BENCH_REPEAT_MAX) {
        fprintf(stderr, "bench: HYADES_BENCH_REPEAT must be 1..%d\n", BENCH_REPEAT_MAX);
        return 2;
    }
    printf("hyades bench: %ld cores; ratios against the baseline of each block, measured in this run\n\n", cores);

    if (s_wanted(argc_main, argv_main, "kernels")) {
        s_kernels("4000x3200, max-iter 1000", &(mandel_params_t) {4000, 3200, -2, 0.5, -1, 1, 1000, 1});
        s_kernels("deep view 2000x1600, x -0.75..-0.74, y 0.1..0.108, max-iter 5000",
                  &(mandel_params_t) {2000, 1600, -0.75, -0.74, 0.1, 0.108, 5000, 1});
    }

    if (s_wanted(argc_main, argv_main, "png"))
        s_png_block(&(mandel_params_t) {4000, 3200, -2, 0.5, -1, 1, 1000, 1}, repeat);

    /* 2. The cluster against the best single-machine program, same cores. */
    struct {
        const char *title;
        mandel_params_t p;
        char *argv[20];
    } views[] = {
        {"mandelbrot 4000x3200, max-iter 1000", {4000, 3200, -2, 0.5, -1, 1, 1000, 1},
         {"mandelbrot", "--width", "4000", "--height", "3200", "--max-iter", "1000"}},
        {"mandelbrot deep view 2000x1600, x -0.75..-0.74, y 0.1..0.108, max-iter 5000",
         {2000, 1600, -0.75, -0.74, 0.1, 0.108, 5000, 1},
         {"mandelbrot", "--width", "2000", "--height", "1600", "--xmin", "-0.75", "--xmax", "-0.74", "--ymin",
          "0.1", "--ymax", "0.108", "--max-iter", "5000"}},
    };
    for (size_t v = 0; s_wanted(argc_main, argv_main, "cluster") && v < sizeof views / sizeof views[0]; v++) {
        int argc = 0;
        while (views[v].argv[argc])
            argc++;
        printf("%s: the cluster against the best single-machine program on %ld cores\n", views[v].title, cores);
        /* Alternated, so that both see the same machine; medians, so that one
           noisy run does not decide. */
        /* The same job with a hand-picked unit size, which the defaults
           should make needless. */
        char *tuned_argv[24];
        memcpy(tuned_argv, views[v].argv, (size_t) argc * sizeof *tuned_argv);
        tuned_argv[argc] = "--columns-per-unit", tuned_argv[argc + 1] = "16";
        double base[BENCH_REPEAT_MAX], wall[BENCH_REPEAT_MAX], cpu[BENCH_REPEAT_MAX], tuned[BENCH_REPEAT_MAX], rate,
            tuned_cpu, process[BENCH_REPEAT_MAX];
        for (int r = 0; r < repeat; r++) {
            base[r] = s_all_cores(&views[v].p, cores);
            process[r] = s_all_cores_process(&views[v].p, cores);
            wall[r] = s_cluster(views[v].argv, argc, cores, &cpu[r], &rate);
            tuned[r] = s_cluster(tuned_argv, argc + 2, cores, &tuned_cpu, &rate);
        }
        double b = s_median(base, repeat), w = s_median(wall, repeat), c = s_median(cpu, repeat);
        printf("  in process, %ld threads, dynamic columns, PNG  %8.3f s   1.00x (baseline; median of %d, %.3f..%.3f)\n",
               cores, b, repeat, s_min(base, repeat), s_max(base, repeat));
        printf("  cluster --local %-2ld, default options            %8.3f s   %.2fx the baseline's time (%.3f..%.3f), "
               "manager CPU %.2f s\n", cores, w, w / b, s_min(wall, repeat), s_max(wall, repeat), c);
        double t = s_median(tuned, repeat);
        printf("  cluster --local %-2ld, --columns-per-unit 16      %8.3f s   %.2fx the baseline's time (%.3f..%.3f): "
               "the default is %.2fx its time\n", cores, t, t / b, s_min(tuned, repeat), s_max(tuned, repeat), w / t);
        /* On a shared machine, others' work only ever adds time: the best run
           of each side is the other estimate of what it costs. */
        printf("  best run of each: cluster %.3f s, baseline %.3f s: %.2fx\n", s_min(wall, repeat),
               s_min(base, repeat), s_min(wall, repeat) / s_min(base, repeat));
        /* The same program started as a process, as a user runs it: its
           start and exit counted as the cluster's are. */
        double pr = s_median(process, repeat);
        printf("  the same program as a process (hyades-baseline) %7.3f s   the cluster is %.2fx its time (%.3f..%.3f)\n\n",
               pr, w / pr, s_min(process, repeat), s_max(process, repeat));
    }

    /* The dashboard's cost: the same job with none, with one nobody watches,
       and with one a page watches. */
    if (s_wanted(argc_main, argv_main, "dashboard")) {
        char *job[] = {"mandelbrot", "--width", "3000", "--height", "2400", "--xmin", "-0.75", "--xmax", "-0.74",
                       "--ymin", "0.1", "--ymax", "0.108", "--max-iter", "5000"};
        printf("mandelbrot deep view 3000x2400, max-iter 5000 on --local %ld: the cost of --dashboard (medians of %d)\n",
               cores, repeat);
        double plain[BENCH_REPEAT_MAX], idle[BENCH_REPEAT_MAX], watched[BENCH_REPEAT_MAX], cpu, rate;
        unsigned requests = 0;
        for (int r = 0; r < repeat; r++) {
            s_extra[0] = NULL;
            plain[r] = s_cluster(job, 15, cores, &cpu, &rate);
            char addr[32];
            snprintf(addr, sizeof addr, "127.0.0.1:%d", s_free_port());
            s_extra[0] = "--dashboard", s_extra[1] = addr, s_extra[2] = NULL;
            idle[r] = s_cluster(job, 15, cores, &cpu, &rate);
            watcher_t w = {.port = s_free_port()};
            snprintf(addr, sizeof addr, "127.0.0.1:%d", w.port);
            pthread_t tid;
            pthread_create(&tid, NULL, s_watch, &w);
            watched[r] = s_cluster(job, 15, cores, &cpu, &rate);
            atomic_store(&w.stop, true);
            pthread_join(tid, NULL);
            requests += w.requests;
            s_extra[0] = NULL;
        }
        double p = s_median(plain, repeat);
        printf("  no dashboard (baseline)                  %8.3f s   1.00x\n", p);
        printf("  --dashboard, nobody watching             %8.3f s   %.2fx\n", s_median(idle, repeat),
               s_median(idle, repeat) / p);
        printf("  --dashboard, a page polling it           %8.3f s   %.2fx   (%u answers)\n\n",
               s_median(watched, repeat), s_median(watched, repeat) / p, requests);
    }

    /* 3. The cluster's own cost per unit. */
    if (s_wanted(argc_main, argv_main, "noop")) {
        char *small[] = {"noop", "--units", "100000"}, *large[] = {"noop", "--units", "300000"};
        double cpu1, cpu2, rate;
        double t1 = s_cluster(small, 3, cores, &cpu1, &rate);
        double t2 = s_cluster(large, 3, cores, &cpu2, &rate);
        printf("noop units through one manager on --local %ld (extra time of 200,000 more units)\n", cores);
        printf("  100,000 units %.3f s, 300,000 units %.3f s: %.0f units/s, %.2f us of manager CPU a unit\n\n", t1, t2,
               200000 / (t2 - t1), (cpu2 - cpu1) / 200000 * 1e6);
    }

    /* 5 (before the jobs, which take longest). A thousand idle workers. */
    if (s_wanted(argc_main, argv_main, "swarm"))
        s_swarm(1000, 8);   /* two idle heartbeats (4 s) each way */

    /* 4. Every job kind. */
    struct {
        const char *title;
        char *argv[16];
    } jobs[] = {
        {"pi, 10^9 samples in 200 units", {"pi", "--samples", "1000000000", "--units", "200"}},
        {"primes to 10^10, sieve, count only", {"primes", "--to", "10000000000", "--method", "sieve", "--count-only"}},
        {"primes to 3x10^6, trial division", {"primes", "--to", "3000000"}},
        {"frames, 5000 random 10x10", {"frames"}},
        {"noop, 20000 empty units (the cluster's own cost per unit)", {"noop", "--units", "20000"}},
    };
    for (size_t j = 0; s_wanted(argc_main, argv_main, "jobs") && j < sizeof jobs / sizeof jobs[0]; j++) {
        int argc = 0;
        while (jobs[j].argv[argc])
            argc++;
        printf("%s\n", jobs[j].title);
        double base = s_in_process(jobs[j].argv, argc);
        printf("  in process, one thread (baseline)      %8.3f s   1.00x\n", base);
        long counts[2] = {1, cores};
        for (int k = 0; k < (cores > 1 ? 2 : 1); k++) {
            double cpu, rate;
            double wall = s_cluster(jobs[j].argv, argc, counts[k], &cpu, &rate);
            printf("  cluster --local %-2ld                     %8.3f s   %.2fx   manager CPU %.2f s, %.0f units/s\n",
                   counts[k], wall, base / wall, cpu, rate);
        }
        printf("\n");
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
