/* bench: throughput of the cluster, as ratios against baselines measured in
   the same run (this machine is shared: only ratios mean something).

   1. kernels: each Mandelbrot kernel on one thread, with and without the
      cycle test, against the scalar kernel without it, in process.
   2. jobs: each job computed in this process on one thread through the job
      seam (plan, load, compute and accept every unit: the work without the
      cluster) against hyades-manager --local 1 and --local <cores>. The
      manager's own CPU time (from its --json summary) shows whether it is
      the bottleneck. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobs/job.h"
#include "jobs/mandelbrot.h"
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
    printf("\n");
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
static double s_cluster(char **job, int argc, long n, double *cpu, double *rate)
{
    char local[24], *json = "/tmp/hyades-bench.json";
    snprintf(local, sizeof local, "%ld", n);
    char *argv[40] = {(char *) t_bin("hyades-manager"), "--quiet", "--json", json, "--local", local};
    int k = 6;
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

int main(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* Jobs write their default outputs (mandelbrot.png, ...) in a directory of our own. */
    char dir[] = "/tmp/hyades-bench-XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        perror("bench");
        return 1;
    }
    printf("hyades bench: %ld cores; ratios against the baseline of each block, measured in this run\n\n", cores);

    s_kernels("4000x3200, max-iter 1000", &(mandel_params_t) {4000, 3200, -2, 0.5, -1, 1, 1000, 1});
    s_kernels("deep view 2000x1600, x -0.75..-0.74, y 0.1..0.108, max-iter 5000",
              &(mandel_params_t) {2000, 1600, -0.75, -0.74, 0.1, 0.108, 5000, 1});

    struct {
        const char *title;
        char *argv[16];
    } jobs[] = {
        {"mandelbrot 4000x3200, max-iter 1000", {"mandelbrot", "--width", "4000", "--height", "3200", "--max-iter", "1000"}},
        {"pi, 10^9 samples in 200 units", {"pi", "--samples", "1000000000", "--units", "200"}},
        {"primes to 10^10, sieve, count only", {"primes", "--to", "10000000000", "--method", "sieve", "--count-only"}},
        {"primes to 3x10^6, trial division", {"primes", "--to", "3000000"}},
        {"frames, 5000 random 10x10", {"frames"}},
        {"noop, 20000 empty units (the cluster's own cost per unit)", {"noop", "--units", "20000"}},
    };
    for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++) {
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
