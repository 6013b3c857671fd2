/* primes: all primes in a range (SPEC 3.3); the trial division's kernels,
   for the tests and the bench. */
#ifndef HY_PRIMES_H
#define HY_PRIMES_H

#include <stdbool.h>
#include <stdint.h>

/* The kernels that test a number against the table of small divisors:
   each gives the same answers; the fastest the CPU has is used. */
typedef enum { PRIMES_SCALAR = 0, PRIMES_AVX512 = 1 } primes_kernel_t;
#define PRIMES_KERNELS 2

/* Whether this CPU can run kernel (AVX-512: F and DQ). */
bool primes_kernel_available(primes_kernel_t kernel);
/* The kernel in use: the widest available, scalar when HYADES_NO_SIMD=1. */
primes_kernel_t primes_kernel(void);
/* "scalar", "AVX-512". */
const char *primes_kernel_name(primes_kernel_t kernel);
/* The number of primes in [lo, hi] by trial division with kernel, which
   must be available: 0, or JOB_FAILED (out of memory). */
int primes_trial_count_with(primes_kernel_t kernel, uint64_t lo, uint64_t hi, uint64_t *count);

#endif
