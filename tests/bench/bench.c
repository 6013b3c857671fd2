/* bench: throughput of the cluster, as ratios against baselines measured in
   the same run (this machine is shared: only ratios mean something).

   1. kernel: the SIMD Mandelbrot path against the scalar one, in process.
   2. cluster: hyades-manager --local 1 and --local N against the same image
      computed in this process on one thread; the manager's own CPU time
      (from its --json summary) shows whether it is the bottleneck. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobs/mandelbrot.h"
#include "tests/helpers.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double s_image(const mandel_params_t *p, void (*column)(const mandel_params_t *, uint32_t, uint8_t *))
{
    uint8_t *col = malloc(p->height);
    double t0 = s_now();
    for (uint32_t i = 0; i < p->width; i++)
        column(p, i, col);
    double t = s_now() - t0;
    free(col);
    return t;
}

/* Runs the manager; returns wall seconds. */
static double s_manager(char *const argv[])
{
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
        fprintf(stderr, "bench: manager failed\n");
        exit(1);
    }
    return t;
}

int main(int argc, char **argv)
{
    const char *width = argc > 1 ? argv[1] : "4000", *height = argc > 2 ? argv[2] : "3200";
    const char *iter = argc > 3 ? argv[3] : "1000";
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mandel_params_t p = {(uint32_t) atoi(width), (uint32_t) atoi(height), -2, 0.5, -1, 1, (uint32_t) atoi(iter), 1};
    printf("hyades bench: mandelbrot %sx%s, max-iter %s, %ld cores\n\n", width, height, iter, cores);

    double scalar = s_image(&p, mandel_column_scalar);
    double fast = s_image(&p, mandel_column);
    printf("kernel   scalar, one thread (baseline)  %8.3f s   1.00x\n", scalar);
    printf("kernel   %-29s %8.3f s   %.2fx\n", mandel_simd_active() ? "SIMD (AVX2), one thread" : "dispatch (no SIMD here)",
           fast, scalar / fast);

    char *out = t_path("/tmp", "hyades-bench.png"), *json = t_path("/tmp", "hyades-bench.json");
    char local[24];
    long counts[2] = {1, cores};
    for (int k = 0; k < (cores > 1 ? 2 : 1); k++) {
        long n = counts[k];
        snprintf(local, sizeof local, "%ld", n);
        char *args[] = {(char *) t_bin("hyades-manager"), "--quiet", "--json", json, "--local", local, "mandelbrot", "--width",
                        (char *) width, "--height", (char *) height, "--max-iter", (char *) iter, "-o", out, NULL};
        double wall = s_manager(args);
        char *text = t_read_file(json, NULL);
        const char *at = text ? strstr(text, "\"manager_cpu_seconds\":") : NULL;
        double cpu = at ? strtod(at + 22, NULL) : -1;
        free(text);
        printf("cluster  --local %-2ld                     %8.3f s   %.2fx of the one-thread kernel;"
               " manager CPU %.2f s (%.0f%% of wall)\n",
               n, wall, fast / wall, cpu, 100 * cpu / wall);
    }
    unlink(out);
    unlink(json);
    free(out);
    free(json);
    return 0;
}
