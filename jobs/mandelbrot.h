/* mandelbrot: columns of the Mandelbrot set in grayscale (SPEC 3.1). */
#ifndef HY_MANDELBROT_H
#define HY_MANDELBROT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint32_t width, height;      /* pixels */
    double xmin, xmax, ymin, ymax;
    uint32_t max_iter;           /* M */
    uint32_t columns_per_unit;   /* C */
} mandel_params_t;

/* Checks ranges and limits; NULL when valid, else a one-line reason. */
const char *mandel_params_check(const mandel_params_t *p);

/* Gray values 255 - (k * 255) / M of column i, rows 0 .. height-1, into out.
   Uses the fastest path this CPU has; every path gives the same bytes. */
void mandel_column(const mandel_params_t *p, uint32_t i, uint8_t *out);
/* The plain scalar path, the reference for the others. */
void mandel_column_scalar(const mandel_params_t *p, uint32_t i, uint8_t *out);
/* Escape counts k (0..M) of rows j0 .. j1-1 of column i into k[0 .. j1-j0). */
void mandel_counts(const mandel_params_t *p, uint32_t i, uint32_t j0, uint32_t j1, uint32_t *k);
void mandel_counts_scalar(const mandel_params_t *p, uint32_t i, uint32_t j0, uint32_t j1, uint32_t *k);
/* Whether mandel_column uses a SIMD path (false when HYADES_NO_SIMD=1 is set). */
bool mandel_simd_active(void);

#endif
