/* hyades-baseline: hyades-bench's single-machine program (allcores) as a
   process of its own, for the bench to time from its exec to its exit, as
   it times hyades-manager: what a user compares the cluster with when they
   run a good standalone program. It links only what that program needs
   (the kernel, the PNG writer: libpng, giflib, zlib), not ZeroMQ.
     hyades-baseline WIDTH HEIGHT XMIN XMAX YMIN YMAX MAX_ITER THREADS OUT.png */
#include "tests/bench/allcores.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: hyades-baseline WIDTH HEIGHT XMIN XMAX YMIN YMAX MAX_ITER THREADS OUT.png\n");
        return 2;
    }
    mandel_params_t p = {(uint32_t) strtoul(argv[1], NULL, 10), (uint32_t) strtoul(argv[2], NULL, 10),
                         strtod(argv[3], NULL), strtod(argv[4], NULL), strtod(argv[5], NULL), strtod(argv[6], NULL),
                         (uint32_t) strtoul(argv[7], NULL, 10), 1};
    const char *bad = mandel_params_check(&p);
    if (bad) {
        fprintf(stderr, "hyades-baseline: %s\n", bad);
        return 2;
    }
    return allcores_render(&p, strtol(argv[8], NULL, 10), argv[9]) < 0 ? 1 : 0;
}
