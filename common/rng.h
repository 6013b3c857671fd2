/* rng: the SplitMix64 mixer and streams that every job derives its numbers from (SPEC 3). */
#ifndef HY_RNG_H
#define HY_RNG_H

#include <stdint.h>

#define HY_GAMMA 0x9e3779b97f4a7c15ull

/* The SplitMix64 finaliser. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Output k (k = 1, 2, ...) of the stream seeded with seed, computed directly. */
static inline uint64_t stream_at(uint64_t seed, uint64_t k)
{
    return mix64(seed + k * HY_GAMMA);
}

#endif
