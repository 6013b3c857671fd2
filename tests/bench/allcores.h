/* allcores: the best single-machine program of hyades-bench's cluster block:
   one thread per core taking columns one at a time (as OpenMP's
   schedule(dynamic,1)), the best kernel, and the same PNG at the end (rows
   from columns, the job's own writer). Shared by the bench, which runs it in
   its own process, and hyades-baseline, which is it as a process. */
#ifndef HY_BENCH_ALLCORES_H
#define HY_BENCH_ALLCORES_H

#include "jobs/mandelbrot.h"

/* Renders p on threads threads into the PNG path; returns the wall seconds
   from the image's allocation to the file in place, or -1 with a reason
   on stderr. */
double allcores_render(const mandel_params_t *p, long threads, const char *path);

#endif
