/* reference: the specification's arithmetic, written plainly for the tests. */
#include "tests/reference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_splitmix(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ull;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z;
}

static const uint64_t GOLDEN = 0x9e3779b97f4a7c15ull;

uint64_t ref_pi_hits(uint64_t samples, uint64_t units, uint64_t seed)
{
    uint64_t total = 0;
    for (uint64_t u = 0; u < units; u++) {
        uint64_t n = samples / units;
        if (u < samples % units)
            n += 1;
        uint64_t su = s_splitmix(seed + (u + 1) * GOLDEN);
        for (uint64_t i = 0; i < n; i++) {
            double x = (double) (s_splitmix(su + (2 * i + 1) * GOLDEN) >> 11) / 9007199254740992.0;
            double y = (double) (s_splitmix(su + (2 * i + 2) * GOLDEN) >> 11) / 9007199254740992.0;
            if (x * x + y * y <= 1.0)
                total++;
        }
    }
    return total;
}

static uint64_t s_mulmod(uint64_t a, uint64_t b, uint64_t m)
{
    return (uint64_t) ((unsigned __int128) a * b % m);
}

static uint64_t s_powmod(uint64_t a, uint64_t e, uint64_t m)
{
    uint64_t r = 1;
    a %= m;
    while (e) {
        if (e & 1)
            r = s_mulmod(r, a, m);
        a = s_mulmod(a, a, m);
        e >>= 1;
    }
    return r;
}

bool ref_is_prime(uint64_t n)
{
    static const uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    if (n < 2)
        return false;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (n == bases[i])
            return true;
        if (n % bases[i] == 0)
            return false;
    }
    uint64_t d = n - 1;
    int s = 0;
    while (d % 2 == 0) {
        d /= 2;
        s++;
    }
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        uint64_t x = s_powmod(bases[i], d, n);
        if (x == 1 || x == n - 1)
            continue;
        bool composite = true;
        for (int r = 1; r < s && composite; r++) {
            x = s_mulmod(x, x, n);
            if (x == n - 1)
                composite = false;
        }
        if (composite)
            return false;
    }
    return true;
}

/* Sieve of Eratosthenes over [from, to] (to below 2^42): composite[k - from]. */
static bool *s_sieve(uint64_t from, uint64_t to)
{
    uint64_t root = 1;
    while ((root + 1) * (root + 1) <= to)
        root++;
    bool *small = calloc(root + 1, 1), *composite = calloc(to - from + 1, 1);
    for (uint64_t d = 2; d <= root; d++) {
        if (small[d])
            continue;
        for (uint64_t m = d * d; m <= root; m += d)
            small[m] = true;
        uint64_t start = from / d * d < from ? from / d * d + d : from / d * d;
        if (start < d * d)
            start = d * d;
        for (uint64_t m = start; m <= to; m += d)
            composite[m - from] = true;
    }
    for (uint64_t k = from; k <= to && k < 2; k++)
        composite[k - from] = true;
    free(small);
    return composite;
}

char *ref_primes_text(uint64_t from, uint64_t to, size_t *len, uint64_t *count)
{
    size_t cap = 1024, n = 0;
    char *text = malloc(cap);
    *count = 0;
    bool *composite = to < (1ull << 42) ? s_sieve(from, to) : NULL;
    for (uint64_t k = from; k <= to; k++) {
        if (composite ? !composite[k - from] : ref_is_prime(k)) {
            if (n + 24 > cap)
                text = realloc(text, cap *= 2);
            n += (size_t) sprintf(text + n, "%s%llu", *count ? "\n" : "", (unsigned long long) k);
            ++*count;
        }
        if (k == UINT64_MAX)
            break;
    }
    free(composite);
    text[n] = '\0';
    *len = n;
    return text;
}

void ref_frame_pixel(uint64_t seed, uint32_t width, uint32_t f, uint32_t x, uint32_t y, uint8_t rgb[3])
{
    uint64_t sf = s_splitmix(seed + ((uint64_t) f + 1) * GOLDEN);
    uint64_t p = (uint64_t) y * width + x;
    uint64_t v = s_splitmix(sf + (p + 1) * GOLDEN);
    rgb[0] = v & 0xff;
    rgb[1] = (v >> 8) & 0xff;
    rgb[2] = (v >> 16) & 0xff;
}
