/* allcores: see allcores.h. */
#include "tests/bench/allcores.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

typedef struct {
    const mandel_params_t *p;
    atomic_uint next;      /* the next column to take */
    uint8_t *image;        /* column-major, as the job assembles it */
} shared_t;

static void *s_columns(void *arg)
{
    shared_t *sh = arg;
    for (uint32_t i; (i = atomic_fetch_add(&sh->next, 1)) < sh->p->width;)
        mandel_column(sh->p, i, sh->image + (size_t) i * sh->p->height);
    return NULL;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

double allcores_render(const mandel_params_t *p, long threads, const char *path)
{
    /* The image in fresh pages, as a program run once gets it: from malloc,
       the bench's runs after the first would reuse the pages the one before
       had faulted in (glibc keeps a freed block this size in its heap),
       which no run of a real program can (4 ms of 260 on 4000x3200). */
    size_t bytes = (size_t) p->width * p->height;
    double t0 = s_now();
    shared_t sh = {.p = p, .image = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)};
    if (sh.image == MAP_FAILED) {
        perror("allcores");
        return -1;
    }
    atomic_init(&sh.next, 0);
    pthread_t tids[256];
    long started = 0;
    while (started < threads && started < 256 && pthread_create(&tids[started], NULL, s_columns, &sh) == 0)
        started++;
    if (started == 0)
        s_columns(&sh);
    for (long t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    char err[256];
    int rc = mandel_write_png(p, sh.image, path, err, sizeof err);
    double t = s_now() - t0;
    munmap(sh.image, bytes);
    if (rc < 0) {
        fprintf(stderr, "allcores: %s\n", err);
        return -1;
    }
    return t;
}
