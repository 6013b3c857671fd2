/* mandelbrot: columns of the Mandelbrot set in grayscale (SPEC 3.1). */
#ifndef HY_MANDELBROT_H
#define HY_MANDELBROT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mandel_params {
    uint32_t width, height;      /* pixels */
    double xmin, xmax, ymin, ymax;
    uint32_t max_iter;           /* M */
    uint32_t columns_per_unit;   /* C */
} mandel_params_t;

/* Checks ranges and limits; NULL when valid, else a one-line reason. */
const char *mandel_params_check(const mandel_params_t *p);

/* The kernels: each computes the same bits; the fastest the CPU has is used. */
typedef enum { MANDEL_SCALAR = 0, MANDEL_AVX2 = 1, MANDEL_AVX512 = 2 } mandel_kernel_t;
#define MANDEL_KERNELS 3

/* Whether this CPU can run kernel. */
bool mandel_kernel_available(mandel_kernel_t kernel);
/* The kernel in use: the widest available, scalar when HYADES_NO_SIMD=1. */
mandel_kernel_t mandel_kernel(void);
/* "scalar", "AVX2", "AVX-512". */
const char *mandel_kernel_name(mandel_kernel_t kernel);

/* Gray values 255 - (k * 255) / M of column i, rows 0 .. height-1, into out.
   Uses the fastest kernel this CPU has, with the cycle test; every kernel
   gives the same bytes. */
void mandel_column(const mandel_params_t *p, uint32_t i, uint8_t *out);
/* The image of columns (column-major, as the job assembles it) written to
   path as the job writes it: a grayscale PNG. 0, or -1 with err set. */
int mandel_write_png(const mandel_params_t *p, const uint8_t *columns, const char *path, char *err, size_t errlen);
/* The plain scalar kernel (with the cycle test), the reference for the others. */
void mandel_column_scalar(const mandel_params_t *p, uint32_t i, uint8_t *out);
/* Column i with a given kernel, which must be available, with or without
   the cycle test (the same bytes either way): for tests and benchmarks. */
void mandel_column_with(mandel_kernel_t kernel, bool cycles, const mandel_params_t *p, uint32_t i, uint8_t *out);

/* Escape counts k (0..M) of rows j0 .. j1-1 (j0 <= j1 <= height) of column i
   into k[0 .. j1-j0), with the fastest kernel and the cycle test. Looks at
   *cancel (NULL: never cancelled) about every millisecond of work; returns
   0, or JOB_CANCELLED with k partly written. */
int mandel_counts(const mandel_params_t *p, uint32_t i, uint32_t j0, uint32_t j1, uint32_t *k,
                  const atomic_bool *cancel);
/* The same with a given (available) kernel, with or without the cycle test. */
int mandel_counts_with(mandel_kernel_t kernel, bool cycles, const mandel_params_t *p, uint32_t i, uint32_t j0,
                       uint32_t j1, uint32_t *k, const atomic_bool *cancel);

#endif
