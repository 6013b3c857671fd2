/* primes: all primes in [from, to], in units of range-size consecutive numbers
   (SPEC 3.3). "trial" is the brute-force definition; "sieve" asks primesieve.
   A unit's result is its count and, unless --count-only, its primes as
   decimal text; the manager writes the texts in order as they complete. */
#include "common/bytes.h"
#include "common/options.h"
#include "common/outfile.h"
#include "common/reorder.h"
#include "jobs/job.h"
#include "jobs/primes.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <immintrin.h>
#include <inttypes.h>
#include <primesieve.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define METHOD_TRIAL 0
#define METHOD_SIEVE 1
#define MAX_UNITS     100000000ull
#define MAX_LIST_RANGE 4000000ull   /* keeps a unit's text well under 16 MiB */
#define PARAMS_LEN    (8 + 8 + 8 + 1 + 1)
#define INVERSE_LIMIT (1u << 20)    /* divisors tested by multiplication below this */

typedef struct {
    uint64_t from, to;     /* inclusive, from <= to */
    uint64_t range;        /* numbers per unit */
    uint8_t method;        /* METHOD_* */
    uint8_t count_only;
} primes_params_t;

static uint64_t s_units(const primes_params_t *p) { return (p->to - p->from) / p->range + 1; }

static const char *s_check(const primes_params_t *p)
{
    if (p->to < p->from)
        return "--to must not be below --from";
    if (p->range < 1)
        return "--range-size must be at least 1";
    if (p->method > METHOD_SIEVE)
        return "unknown --method";
    if (!p->count_only && p->range > MAX_LIST_RANGE)
        return "--range-size must be at most 4000000 unless --count-only";
    if ((p->to - p->from) / p->range >= MAX_UNITS)   /* (the count itself would wrap at 2^64) */
        return "more than 100000000 units: raise --range-size";
    return NULL;
}

/* Unit k covers [lo, hi]. */
static void s_range(const primes_params_t *p, uint64_t k, uint64_t *lo, uint64_t *hi)
{
    *lo = p->from + k * p->range;
    *hi = p->to - *lo > p->range - 1 ? *lo + (p->range - 1) : p->to;
}

/* ------------------------------------------------------------ trial division */

/* Odd divisors d below a bound, each with its inverse modulo 2^64 and
   floor((2^64 - 1) / d): for odd d, d divides n exactly when
   n * inverse <= limit (Granlund and Montgomery). The divisors are the same
   as in the definition; only the test is faster than a division. Two
   arrays rather than pairs, so that a vector loads eight of each. */
typedef struct {
    uint64_t *inverse, *limit;   /* entry i: d = 3 + 2i */
    size_t count;
} divisors_t;

static int s_divisors(uint64_t max_d, divisors_t *t)
{
    size_t n = max_d >= 3 ? (size_t) ((max_d - 1) / 2) : 0;   /* 3, 5, ..., max_d */
    t->inverse = malloc((n ? n : 1) * sizeof *t->inverse);
    t->limit = malloc((n ? n : 1) * sizeof *t->limit);
    t->count = n;
    if (!t->inverse || !t->limit)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = 3 + 2 * (uint64_t) i;
        uint64_t x = d;   /* right to 3 bits; each step doubles them */
        for (int step = 0; step < 5; step++)
            x *= 2 - d * x;
        t->inverse[i] = x;
        t->limit[i] = UINT64_MAX / d;
    }
    return 0;
}

static void s_divisors_free(divisors_t *t)
{
    free(t->inverse);
    free(t->limit);
}

/* Whether one of the first m divisors of t divides n (odd). Two tests per
   step: one branch for both. */
static bool s_divides_scalar(uint64_t n, const divisors_t *t, size_t m)
{
    const uint64_t *inv = t->inverse, *lim = t->limit;
    size_t i = 0;
    for (; i + 2 <= m; i += 2)
        if ((n * inv[i] <= lim[i]) | (n * inv[i + 1] <= lim[i + 1]))
            return true;
    return i < m && n * inv[i] <= lim[i];
}

/* The same, sixteen divisors a step in two vectors of eight (AVX-512DQ
   multiplies 64-bit lanes), after the first eight one by one: most numbers
   have a small factor, found before a vector would be. The last lanes are
   masked: a lane masked out neither loads nor counts. */
__attribute__((target("avx512f,avx512dq"))) static bool s_divides_avx512(uint64_t n, const divisors_t *t, size_t m)
{
    const uint64_t *inv = t->inverse, *lim = t->limit;
    size_t i = 0, first = m < 8 ? m : 8;
    for (; i < first; i++)
        if (n * inv[i] <= lim[i])
            return true;
    __m512i vn = _mm512_set1_epi64((long long) n);
    for (; i + 16 <= m; i += 16) {
        __m512i a = _mm512_mullo_epi64(vn, _mm512_loadu_si512(inv + i));
        __m512i b = _mm512_mullo_epi64(vn, _mm512_loadu_si512(inv + i + 8));
        if (_mm512_cmple_epu64_mask(a, _mm512_loadu_si512(lim + i))
            | _mm512_cmple_epu64_mask(b, _mm512_loadu_si512(lim + i + 8)))
            return true;
    }
    for (; i < m; i += 8) {
        __mmask8 k = m - i >= 8 ? 0xFF : (__mmask8) ((1u << (m - i)) - 1);
        __m512i a = _mm512_mullo_epi64(vn, _mm512_maskz_loadu_epi64(k, inv + i));
        if (_mm512_mask_cmple_epu64_mask(k, a, _mm512_maskz_loadu_epi64(k, lim + i)))
            return true;
    }
    return false;
}

typedef bool (*divides_fn)(uint64_t n, const divisors_t *t, size_t m);
static const divides_fn s_divides[] = {[PRIMES_SCALAR] = s_divides_scalar, [PRIMES_AVX512] = s_divides_avx512};
static const char *const s_kernel_names[] = {"scalar", "AVX-512"};

static primes_kernel_t s_best;   /* decided once, read-only after */
static pthread_once_t s_best_once = PTHREAD_ONCE_INIT;

static void s_decide(void)
{
    bool simd = job_simd_allowed();
    s_best = simd && primes_kernel_available(PRIMES_AVX512) ? PRIMES_AVX512 : PRIMES_SCALAR;
}

bool primes_kernel_available(primes_kernel_t kernel)
{
    switch (kernel) {
    case PRIMES_SCALAR: return true;
    case PRIMES_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    }
    return false;
}

primes_kernel_t primes_kernel(void)
{
    pthread_once(&s_best_once, s_decide);
    return s_best;
}

const char *primes_kernel_name(primes_kernel_t kernel) { return s_kernel_names[kernel]; }

/* floor(sqrt(n)) for any 64-bit n. */
static uint64_t s_isqrt(uint64_t n)
{
    uint64_t r = 0;
    for (uint64_t bit = 1ull << 62; bit; bit >>= 2) {
        if (n >= r + bit) {
            n -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
    }
    return r;
}

/* root = floor(sqrt(n - 1)) made floor(sqrt(n)): numbers are tested in
   order, so the root only ever steps up (2^32 - 1 is the largest root). */
static uint64_t s_isqrt_next(uint64_t root, uint64_t n)
{
    while (root < UINT32_MAX && (root + 1) * (root + 1) <= n)
        root++;
    return root;
}

#define DIVISORS_PER_LOOK (1u << 16)   /* trial divisions between two looks at cancel */
#define NUMBERS_PER_LOOK 1024u         /* trial: numbers tested between two looks at cancel */

static bool s_cancelled(const atomic_bool *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

/* n < 2 is not prime; 2 is; other even n are not; odd n is prime when no odd
   d with 3 <= d and d*d <= n divides it (root = floor(sqrt(n))). Returns 1
   (prime), 0, or JOB_CANCELLED: near 2^64 one number takes up to 2^31
   divisions, so the divisions beyond the table look at *cancel every
   DIVISORS_PER_LOOK. */
static int s_trial_prime(uint64_t n, uint64_t root, divides_fn divides, const divisors_t *table,
                         const atomic_bool *cancel)
{
    if (n < 2)
        return 0;
    if (n % 2 == 0)
        return n == 2;
    if (root < 3)
        return 1;
    size_t below = (size_t) ((root - 3) / 2) + 1;   /* odd d from 3 to root */
    size_t m = below < table->count ? below : table->count;
    if (divides(n, table, m))
        return 0;
    uint64_t d = 3 + 2 * (uint64_t) m;
    while (d <= root) {   /* root < 2^32: d + 2 * DIVISORS_PER_LOOK cannot wrap */
        uint64_t stop = root - d > 2 * (uint64_t) DIVISORS_PER_LOOK ? d + 2 * (uint64_t) DIVISORS_PER_LOOK : root;
        for (; d <= stop; d += 2)
            if (n % d == 0)
                return 0;
        if (d <= root && s_cancelled(cancel))
            return JOB_CANCELLED;
    }
    return 1;
}

/* Trial division over [lo, hi] with kernel: how many primes, or
   JOB_CANCELLED; each prime to add(arg, p) when add is not NULL. */
static int s_trial_range(primes_kernel_t kernel, uint64_t lo, uint64_t hi, const atomic_bool *cancel,
                         void (*add)(void *arg, uint64_t p), void *arg, uint64_t *count)
{
    uint64_t root = s_isqrt(hi);
    divisors_t table;
    if (s_divisors(root < INVERSE_LIMIT ? root : INVERSE_LIMIT, &table) < 0) {
        s_divisors_free(&table);
        return JOB_FAILED;
    }
    int rc = 0;
    root = s_isqrt(lo);
    *count = 0;
    for (uint64_t n = lo;; n++) {
        if ((n - lo) % NUMBERS_PER_LOOK == 0 && s_cancelled(cancel)) {
            rc = JOB_CANCELLED;
            break;
        }
        root = s_isqrt_next(root, n);
        int prime = s_trial_prime(n, root, s_divides[kernel], &table, cancel);
        if (prime == JOB_CANCELLED) {
            rc = JOB_CANCELLED;
            break;
        }
        if (prime) {
            ++*count;
            if (add)
                add(arg, n);
        }
        if (n == hi)   /* hi may be 2^64 - 1: no n <= hi loop */
            break;
    }
    s_divisors_free(&table);
    return rc;
}

int primes_trial_count_with(primes_kernel_t kernel, uint64_t lo, uint64_t hi, uint64_t *count)
{
    assert(primes_kernel_available(kernel) && lo <= hi);
    return s_trial_range(kernel, lo, hi, NULL, NULL, NULL, count);
}

/* ------------------------------------------------------------ one unit */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    bool failed;          /* memory ran out: the text is cut short */
} text_t;

static void s_append_prime(text_t *t, uint64_t p)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char) ('0' + p % 10);
        p /= 10;
    } while (p);
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        uint8_t *grown = realloc(t->buf, (t->cap + n + 1) * 2);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = (t->cap + n + 1) * 2;
    }
    if (t->len > 8)   /* after the count: a separator before every prime but the first */
        t->buf[t->len++] = '\n';
    while (n)
        t->buf[t->len++] = (uint8_t) digits[--n];
}

static void s_append_to(void *t, uint64_t p) { s_append_prime(t, p); }

/* primesieve, loaded by the first sieve unit rather than at every start:
   its set-up reads the CPU's caches from sysfs, about 0.7 ms that every
   manager and worker paid before its first message, whatever the job. A
   worker without it computes every other job. PRIMESIEVE_SONAME comes from
   the Makefile. */
static struct {
    __typeof__(primesieve_count_primes) *count_primes;
    __typeof__(primesieve_generate_primes) *generate_primes;
    __typeof__(primesieve_free) *free;
    bool loaded;
} s_ps;
static pthread_once_t s_sieve_once = PTHREAD_ONCE_INIT;

static void s_sieve_setup(void)
{
    void *lib = dlopen(PRIMESIEVE_SONAME, RTLD_NOW | RTLD_LOCAL);   /* kept until exit */
    if (!lib)
        return;
    __typeof__(primesieve_set_num_threads) *set_threads = (__typeof__(set_threads)) dlsym(lib, "primesieve_set_num_threads");
    s_ps.count_primes = (__typeof__(s_ps.count_primes)) dlsym(lib, "primesieve_count_primes");
    s_ps.generate_primes = (__typeof__(s_ps.generate_primes)) dlsym(lib, "primesieve_generate_primes");
    s_ps.free = (__typeof__(s_ps.free)) dlsym(lib, "primesieve_free");
    s_ps.loaded = set_threads && s_ps.count_primes && s_ps.generate_primes && s_ps.free;
    if (s_ps.loaded)
        set_threads(1);   /* one per compute thread */
}

#define SIEVE_CHUNK      (1ull << 26)  /* sieve: numbers sieved between two looks at cancel */
#define SIEVE_CHUNK_MAX  (1ull << 32)  /* ... at most: near 2^64, 4 s of sieving on a 2026 core */

/* Numbers the sieve takes in one call below hi: SIEVE_CHUNK, or more where
   each call's own sieving up to sqrt(hi) would cost more than the chunk;
   never more than SIEVE_CHUNK_MAX, since a call cannot be interrupted: a
   cancelled unit near 2^64 stops within one call (about 1 s sieving the
   primes below 2^32, then up to 4 s), rather than the minute that 16 times
   sqrt(hi) numbers took there. */
static uint64_t s_sieve_chunk(uint64_t hi)
{
    uint64_t root = s_isqrt(hi);
    uint64_t chunk = root > SIEVE_CHUNK / 16 ? 16 * root : SIEVE_CHUNK;
    return chunk < SIEVE_CHUNK_MAX ? chunk : SIEVE_CHUNK_MAX;
}

/* Payload: count (u64), then the primes as text unless count_only. Returns
   0, JOB_RANGE (the sieve refused the range) or JOB_CANCELLED; *out is set
   only on success. */
static int s_compute_range(const primes_params_t *p, uint64_t lo, uint64_t hi, const atomic_bool *cancel,
                           uint8_t **out, size_t *out_len)
{
    text_t t = {malloc(64), 8, 64, false};
    t.failed = !t.buf;
    uint64_t count = 0;
    int rc = 0;
    if (p->method == METHOD_SIEVE) {
        pthread_once(&s_sieve_once, s_sieve_setup);
        if (!s_ps.loaded) {
            free(t.buf);
            return JOB_MISSING;
        }
        uint64_t chunk = s_sieve_chunk(hi);
        /* [a, b] one chunk at a time, in order: the same primes, the same text. */
        for (uint64_t a = lo; rc == 0;) {
            uint64_t b = hi - a > chunk - 1 ? a + (chunk - 1) : hi;
            if (s_cancelled(cancel)) {
                rc = JOB_CANCELLED;
                break;
            }
            if (p->count_only) {
                count += s_ps.count_primes(a, b);
            } else {
                size_t n = 0;
                errno = 0;
                uint64_t *primes = s_ps.generate_primes(a, b, &n, UINT64_PRIMES);
                if (errno == EDOM) {
                    rc = JOB_RANGE;
                    break;
                }
                for (size_t i = 0; i < n; i++)
                    s_append_prime(&t, primes[i]);
                count += n;
                s_ps.free(primes);
            }
            if (b == hi)
                break;
            a = b + 1;
        }
    } else if (s_cancelled(cancel)) {   /* before the table: it takes a while */
        rc = JOB_CANCELLED;
    } else {
        rc = s_trial_range(primes_kernel(), lo, hi, cancel, p->count_only ? NULL : s_append_to, &t, &count);
    }
    if (rc == 0 && t.failed)
        rc = JOB_FAILED;
    if (rc != 0) {
        free(t.buf);
        return rc;
    }
    writer_t w = {t.buf};
    writer_be(&w, count, 8);
    *out = t.buf;
    *out_len = t.len;
    return 0;
}

/* ------------------------------------------------------------ parameters */

static void s_encode(const primes_params_t *p, uint8_t *buf)
{
    writer_t w = {buf};
    writer_be(&w, p->from, 8);
    writer_be(&w, p->to, 8);
    writer_be(&w, p->range, 8);
    writer_be(&w, p->method, 1);
    writer_be(&w, p->count_only, 1);
}

/* ------------------------------------------------------------ manager side */

typedef struct {
    primes_params_t p;
    uint64_t count;        /* primes in accepted units */
    reorder_t *reorder;    /* texts waiting for an earlier unit */
    outfile_t *out;        /* the list being written, or NULL */
    const char *path;      /* its path */
    bool wrote_any;        /* a prime was written: the next needs a separator */
    char write_error[512]; /* the first write error, naming the file */
} state_t;

static int s_emit(void *arg, uint64_t unit, const uint8_t *text, size_t len)
{
    (void) unit;
    state_t *state = arg;
    if (len == 0)
        return 0;
    FILE *file = outfile_stream(state->out);
    if ((state->wrote_any && fputc('\n', file) == EOF) || fwrite(text, 1, len, file) != len) {
        snprintf(state->write_error, sizeof state->write_error, "cannot write %s: %s", state->path, strerror(errno));
        return -1;
    }
    state->wrote_any = true;
    return 0;
}

static int s_plan(int argc, char **argv, job_plan_t *plan, FILE *out, char *err, size_t errlen)
{
    uint64_t from = 1, to = 1000000, range = 0;
    int method = METHOD_TRIAL;
    bool count_only = false, help = false;
    const char *output = NULL;
    const opt_t opts[] = {
        {"from", 0, OPT_U64, &from, 0, 0, 0, UINT64_MAX, NULL, NULL, "A", "first number of the range (1)"},
        {"to", 0, OPT_U64, &to, 0, 0, 0, UINT64_MAX, NULL, NULL, "B", "last number of the range, inclusive (1000000)"},
        {"range-size", 0, OPT_U64, &range, 0, 0, 1, UINT64_MAX, NULL, NULL, "R", "numbers per unit (trial 10000; sieve 1000000, or 1000000000 with --count-only)"},
        {"method", 0, OPT_CHOICE, &method, 0, 0, 0, 0, "trial|sieve", NULL, "M", "trial division (the definition) or sieve (primesieve)"},
        {"count-only", 0, OPT_FLAG, &count_only, 0, 0, 0, 0, NULL, NULL, NULL, "count the primes, write no list"},
        {"output", 'o', OPT_STRING, &output, 0, 0, 0, 0, NULL, NULL, "FILE", "the list, one prime a line (primes.txt)"},
        {"help", 'h', OPT_FLAG, &help, 0, 0, 0, 0, NULL, NULL, NULL, "show this help"},
        {NULL},
    };
    int rc = job_options(opts, &help, "primes: all primes in a range, in ranges of --range-size numbers", argc, argv, out, err, errlen);
    if (rc != JOB_OK)
        return rc;
    if (range == 0)
        range = method == METHOD_TRIAL ? 10000 : count_only ? 1000000000 : 1000000;
    primes_params_t p = {from, to, range, (uint8_t) method, count_only};
    const char *why = count_only && output ? "--count-only writes no file: -o has no place here" : s_check(&p);
    if (why) {
        snprintf(err, errlen, "primes: %s", why);
        return JOB_ERROR;
    }
    state_t *state = calloc(1, sizeof *state);
    state->p = p;
    plan->params = malloc(PARAMS_LEN);
    plan->params_len = PARAMS_LEN;
    s_encode(&p, plan->params);
    plan->units = s_units(&p);
    plan->output = output;
    plan->default_output = count_only ? NULL : "primes.txt";
    plan->no_output = count_only;   /* the count is printed */
    plan->state = state;
    return JOB_OK;
}

static int s_begin(void *self, const char *output, char *err, size_t errlen)
{
    state_t *state = self;
    state->reorder = reorder_new(0, s_emit, state);
    if (state->p.count_only || !output)
        return 0;
    state->path = output;
    state->out = outfile_open(output, err, errlen);
    return state->out ? 0 : -1;
}

/* A unit's text: count decimal numbers without leading zeros, one '\n'
   between them, strictly ascending, all within [lo, hi]. (Whether they are
   prime is for --verify to settle; this keeps the file's format whole.)
   Returns NULL, or the first rule broken, with its line number in *line
   (0: the count). */
static const char *s_invalid_text(const uint8_t *text, size_t len, uint64_t count, uint64_t lo, uint64_t hi,
                                  uint64_t *line)
{
    uint64_t lines = 0, prev = 0;
    *line = 0;
    if (len == 0)
        return count == 0 ? NULL : "fewer numbers than its count";
    size_t i = 0;
    while (i <= len) {
        size_t start = i;
        uint64_t v = 0;
        *line = lines + 1;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            unsigned d = (unsigned) (text[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return "a number beyond 2^64";
            v = v * 10 + d;
            i++;
        }
        size_t digits = i - start;
        if (digits == 0)
            return i == len ? "an empty last line" : "not a decimal number";
        if (digits > 1 && text[start] == '0')
            return "a leading zero";
        if (v < lo || v > hi)
            return "a number outside its range";
        if (lines > 0 && v <= prev)
            return "not in ascending order";
        /* Not a proof, a cheap sieve of what no honest worker sends: 0, 1,
           and multiples of 2, 3, 5 and 7 but those primes (--verify checks
           the rest). */
        if (v < 2 || (v % 2 == 0 && v != 2) || (v % 3 == 0 && v != 3) || (v % 5 == 0 && v != 5)
            || (v % 7 == 0 && v != 7))
            return "a number that is not prime";
        prev = v;
        lines++;
        if (i == len)
            break;
        if (text[i] != '\n')
            return "not one number a line";
        i++;
    }
    *line = 0;   /* no one line is at fault */
    return lines == count ? NULL : lines < count ? "fewer numbers than its count" : "more numbers than its count";
}

static int s_accept(void *self, uint64_t unit, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    state_t *state = self;
    const primes_params_t *p = &state->p;
    reader_t r = reader_new(data, len);
    uint64_t count = reader_be(&r, 8);
    uint64_t lo, hi;
    if (unit >= s_units(p) || r.bad) {
        snprintf(err, errlen, "%zu bytes: shorter than its 8-byte count", len);
        return JOB_MALFORMED;
    }
    s_range(p, unit, &lo, &hi);
    if (count > hi - lo + 1) {
        snprintf(err, errlen, "a count of %" PRIu64 " primes among %" PRIu64 " numbers", count, hi - lo + 1);
        return JOB_MALFORMED;
    }
    if (p->count_only && !reader_done(&r)) {
        snprintf(err, errlen, "more than a count");
        return JOB_MALFORMED;
    }
    uint64_t line;
    const char *broken = p->count_only ? NULL : s_invalid_text(data + 8, len - 8, count, lo, hi, &line);
    if (broken) {
        char at[40] = "";
        if (line)
            snprintf(at, sizeof at, " on line %" PRIu64, line);
        snprintf(err, errlen, "not a list of %" PRIu64 " prime%s of its range: %s%s", count, count == 1 ? "" : "s",
                 broken, at);
        return JOB_MALFORMED;
    }
    state->count += count;
    if (state->out && reorder_put(state->reorder, unit, data + 8, len - 8) < 0) {
        snprintf(err, errlen, "%s", state->write_error);
        return JOB_WRITE_FAILED;
    }
    return 0;
}

static int s_finish(void *self, const char *output, FILE *out, char *err, size_t errlen)
{
    state_t *state = self;
    if (state->out) {
        if (state->write_error[0]) {
            snprintf(err, errlen, "%s", state->write_error);
            outfile_close(&state->out, false, NULL, 0);
            return -1;
        }
        if (outfile_close(&state->out, true, err, errlen) < 0)
            return -1;
        fprintf(out, "primes: %" PRIu64 " primes from %" PRIu64 " to %" PRIu64 ", written to %s\n", state->count,
                state->p.from, state->p.to, output);
    } else {
        fprintf(out, "primes: %" PRIu64 " primes from %" PRIu64 " to %" PRIu64 "\n", state->count,
                state->p.from, state->p.to);
    }
    return 0;
}

static size_t s_held(void *self)
{
    state_t *state = self;
    return state->reorder ? reorder_memory(state->reorder) : 0;
}

static void s_destroy(void *self)
{
    state_t *state = self;
    if (!state)
        return;
    outfile_close(&state->out, false, NULL, 0);   /* the job did not finish: no partial list stays behind */
    reorder_destroy(&state->reorder);
    free(state);
}

/* ------------------------------------------------------------ worker side */

static void *s_load(const uint8_t *params, size_t len)
{
    reader_t r = reader_new(params, len);
    primes_params_t p;
    p.from = reader_be(&r, 8);
    p.to = reader_be(&r, 8);
    p.range = reader_be(&r, 8);
    p.method = (uint8_t) reader_be(&r, 1);
    p.count_only = (uint8_t) reader_be(&r, 1);
    if (!reader_done(&r) || p.count_only > 1 || s_check(&p))
        return NULL;
    primes_params_t *ctx = malloc(sizeof *ctx);
    *ctx = p;
    return ctx;
}

static void s_unload(void *ctx) { free(ctx); }

/* ctx is only read: every compute thread shares it. */
static int s_compute(const void *ctx, uint64_t unit, const atomic_bool *cancel, uint8_t **out, size_t *out_len)
{
    const primes_params_t *p = ctx;
    if (unit >= s_units(p))
        return JOB_RANGE;
    uint64_t lo, hi;
    s_range(p, unit, &lo, &hi);
    return s_compute_range(p, lo, hi, cancel, out, out_len);
}

const job_kind_t primes_job = {
    .name = "primes",
    .summary = "all primes in a range, by trial division or a sieve, written in order",
    .plan = s_plan,
    .load = s_load,
    .unload = s_unload,
    .compute = s_compute,
    .begin = s_begin,
    .accept = s_accept,
    .held = s_held,
    .finish = s_finish,
    .destroy = s_destroy,
};
