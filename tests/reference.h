/* reference: independent implementations of SPEC 3.2 to 3.4, written from the
   specification for the tests, sharing no code with jobs/. */
#ifndef HY_TEST_REFERENCE_H
#define HY_TEST_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SPEC 3.2: total hits of the pi job (samples N, units U, seed S). */
uint64_t ref_pi_hits(uint64_t samples, uint64_t units, uint64_t seed);

/* Deterministic Miller-Rabin for every 64-bit n. */
bool ref_is_prime(uint64_t n);
/* SPEC 3.3's file for [from, to] (a sieve of Eratosthenes below 2^42,
   Miller-Rabin above): primes in decimal, '\n' between them, no
   final newline. Caller frees; its length in *len, the count in *count. */
char *ref_primes_text(uint64_t from, uint64_t to, size_t *len, uint64_t *count);

/* SPEC 3.4 random scene: the RGB colour of pixel (x, y) of frame f. */
void ref_frame_pixel(uint64_t seed, uint32_t width, uint32_t f, uint32_t x, uint32_t y, uint8_t rgb[3]);

#endif
