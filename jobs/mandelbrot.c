/* mandelbrot: columns of the Mandelbrot set in grayscale, assembled into a PNG.
   Unit k is the run of C columns starting at column k * C (SPEC 3.1). */
#include "jobs/mandelbrot.h"
#include "common/bytes.h"
#include "common/image.h"
#include "common/options.h"
#include "jobs/job.h"

#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_SIDE   100000u
#define MAX_PIXELS (1u << 30)    /* the manager holds the whole image */
#define MAX_ITER   1000000000u
#define MAX_PAYLOAD (16u << 20)  /* = HY_MAX_PAYLOAD: one unit's bytes */
#define PARAMS_LEN (4 + 4 + 8 * 4 + 4 + 4)

const char *mandel_params_check(const mandel_params_t *p)
{
    if (p->width < 1 || p->width > MAX_SIDE || p->height < 1 || p->height > MAX_SIDE)
        return "--width and --height must be from 1 to 100000";
    if ((uint64_t) p->width * p->height > MAX_PIXELS)
        return "image too large: width * height must be at most 2^30 pixels";
    if (!isfinite(p->xmin) || !isfinite(p->xmax) || !isfinite(p->ymin) || !isfinite(p->ymax))
        return "the view bounds must be finite numbers";
    if (!(p->xmin < p->xmax))
        return "--xmin must be less than --xmax";
    if (!(p->ymin < p->ymax))
        return "--ymin must be less than --ymax";
    if (!isfinite(p->xmax - p->xmin) || !isfinite(p->ymax - p->ymin))
        return "the view is too wide: --xmax - --xmin and --ymax - --ymin must be finite";
    if (p->max_iter < 1 || p->max_iter > MAX_ITER)
        return "--max-iter must be from 1 to 1000000000";
    if (p->columns_per_unit < 1 || p->columns_per_unit > p->width)
        return "--columns-per-unit must be from 1 to --width";
    if ((uint64_t) p->columns_per_unit * p->height > MAX_PAYLOAD)
        return "--columns-per-unit * --height must be at most 16 MiB";
    return NULL;
}

/* ------------------------------------------------------------ kernels */

/* Why every kernel gives the SPEC's counts exactly.
   - Each lane follows one point with the SPEC's operations in the SPEC's
     order, each rounded on its own (-ffp-contract=off, no FMA intrinsics),
     and tests for escape at every step. A lane that escapes when its count
     is k reports k, or M if k >= M (the SPEC stops at M without testing).
     A vector lane whose count reaches M is noticed at the next block
     boundary, after a few more steps that change nothing it reports.
   - The lanes of a vector kernel are rows of one column. A lane whose row
     is done takes the next row at once, from z = 0, so that lanes do not
     idle while others run on; rows are independent, so when a row runs,
     and beside which others, changes nothing in its count.
   - Cycle test (Brent): at block boundaries, each lane compares its state
     (zr, zi) bit for bit with a state it saved at an earlier boundary (the
     first after its count passed 1, 2, 4, 8, ...). The next state is a
     function of the state and c alone, so equal states mean the orbit
     repeats forever, and every state of that cycle has passed the escape
     test: the SPEC loop would run on to k = M. The spacing of the checks
     only delays the finding (by a few percent more steps than checking at
     every step, which would cost more than that). A lane's state is never
     NaN (that needs an infinity, which comes only after an escape), so NaN
     bits (-1) mean "nothing saved". */

#define STEPS 16                /* steps between block boundaries (8 and 32: about as fast) */
#define POLL_STEPS (1 << 17)    /* steps between looks at the cancel flag: ~1 ms */
#define CHUNK 4096              /* rows given to a kernel at once by s_column */
#define MAX_LANES 32
#define IDLE_START (INT64_MAX / 4)   /* start of an idle lane: its count stays negative */
#define AVX2_VECTORS 4          /* vectors in flight: 4 beat 2 and 3 (see bench) */
#define AVX512_VECTORS 4

static inline uint8_t s_gray(uint32_t k, uint32_t m)
{
    return (uint8_t) (255 - ((uint64_t) k * 255) / m);
}

/* Gray values of counts 0..m, computed once per thread for its current m
   (up to GRAY_TABLE_MAX): a table look-up instead of a division per pixel. */
#define GRAY_TABLE_MAX 65536
static const uint8_t *s_gray_table(uint32_t m)
{
    static _Thread_local uint8_t table[GRAY_TABLE_MAX + 1];
    static _Thread_local uint32_t table_m;
    if (m > GRAY_TABLE_MAX)
        return NULL;
    if (table_m != m) {
        for (uint32_t k = 0; k <= m; k++)
            table[k] = s_gray(k, m);
        table_m = m;
    }
    return table;
}

static bool s_cancelled(const atomic_bool *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

static inline uint64_t s_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* The escape count k of point (cr, ci), at most m; with cycles, the cycle
   test at every STEPS-th count. UINT32_MAX when it saw *cancel set. */
static uint32_t s_escape(double cr, double ci, uint32_t m, bool cycles, const atomic_bool *cancel)
{
    double zr = 0, zi = 0;
    uint64_t sr = UINT64_MAX, si = UINT64_MAX;   /* the saved state: none yet */
    uint32_t k = 0, save = 1;
    while (k < m) {
        uint32_t end = m - k < STEPS ? m : k + STEPS;
        for (; k < end; k++) {
            double zr2 = zr * zr, zi2 = zi * zi;
            if (zr2 + zi2 > 4.0)
                return k;
            zi = (2.0 * zr) * zi + ci;
            zr = (zr2 - zi2) + cr;
        }
        if (cycles) {
            if (s_bits(zr) == sr && s_bits(zi) == si)
                return m;
            if (k >= save) {
                sr = s_bits(zr), si = s_bits(zi);
                save = 2 * k;   /* k <= 10^9: no overflow */
            }
        }
        if (k % POLL_STEPS == 0 && s_cancelled(cancel))
            return UINT32_MAX;
    }
    return k;
}

static int s_counts_scalar(const mandel_params_t *p, uint32_t i, uint32_t j0, uint32_t j1, uint32_t *out,
                           bool cycles, const atomic_bool *cancel)
{
    const double dx = (p->xmax - p->xmin) / p->width;
    const double dy = (p->ymax - p->ymin) / p->height;
    const double cr = p->xmin + i * dx;
    uint64_t spent = 0;
    for (uint32_t j = j0; j < j1; j++) {
        uint32_t k = s_escape(cr, p->ymax - j * dy, p->max_iter, cycles, cancel);
        if (k == UINT32_MAX)
            return JOB_CANCELLED;
        out[j - j0] = k;
        if ((spent += k + 1) >= POLL_STEPS) {
            spent = 0;
            if (s_cancelled(cancel))
                return JOB_CANCELLED;
        }
    }
    return 0;
}

/* The rows of one column shared out among the lanes of a vector kernel.
   Lane l is element l % L of vector l / L. The kernel keeps z in registers;
   the rest lives here, changed a whole vector at a time (so that the next
   step's loads are forwarded from those stores). n counts the kernel's steps. */
typedef struct {
    _Alignas(64) double cr[MAX_LANES];      /* c of the lane's row; 0 when idle (then z stays 0) */
    _Alignas(64) double ci[MAX_LANES];
    _Alignas(64) double row[MAX_LANES];     /* the lane's row */
    _Alignas(64) int64_t start[MAX_LANES];  /* step at which the row began: its count is n - start */
    _Alignas(64) int64_t save[MAX_LANES];   /* count at which the state is saved next */
    _Alignas(64) int64_t sr[MAX_LANES];     /* bits of the saved zr; -1 (NaN): none */
    _Alignas(64) int64_t si[MAX_LANES];     /* bits of the saved zi */
    uint32_t next, end;                     /* rows next .. end-1 wait for a lane */
    uint32_t active;                        /* lanes with a row */
    uint32_t j0, m;                         /* out[j - j0] receives row j's count, at most m */
    uint32_t *out;
    double cr0, ymax, dy;                   /* the column's cr; row j's ci is ymax - j * dy */
} lanes_t;

static void s_lanes_init(lanes_t *ln, const mandel_params_t *p, uint32_t i, uint32_t j0, uint32_t j1,
                         uint32_t *out, int lanes)
{
    memset(ln, 0, sizeof *ln);
    const double dx = (p->xmax - p->xmin) / p->width;
    ln->cr0 = p->xmin + i * dx;
    ln->ymax = p->ymax;
    ln->dy = (p->ymax - p->ymin) / p->height;
    ln->next = j0, ln->end = j1, ln->active = (uint32_t) lanes;
    ln->j0 = j0, ln->m = p->max_iter, ln->out = out;
}

/* Lane l's row is done with count k, clipped to M. */
static inline void s_report(lanes_t *ln, int l, int64_t k)
{
    ln->out[(uint32_t) ln->row[l] - ln->j0] = k < ln->m ? (uint32_t) k : ln->m;
}

/* s_rank[b & 7][l]: how many lanes below lane l the 4-lane mask b holds (bit 3
   never counts, lane 3 being the last). */
#define RANK(b) {0, (b) & 1, ((b) & 1) + ((b) >> 1 & 1), ((b) & 1) + ((b) >> 1 & 1) + ((b) >> 2 & 1)}
static const double s_rank[8][4] = {RANK(0), RANK(1), RANK(2), RANK(3), RANK(4), RANK(5), RANK(6), RANK(7)};

/* The lanes of vector v set in mask take the next rows, in order, from z = 0
   at step n; those for which no row is left go idle. The caller zeroes z. */
__attribute__((target("avx2"), always_inline)) static inline void s_refill_avx2(lanes_t *ln, int v, __m256d mask,
                                                                               int64_t n)
{
    double *cr = ln->cr + 4 * v, *ci = ln->ci + 4 * v, *row = ln->row + 4 * v;
    __m256i *start = (__m256i *) (ln->start + 4 * v), *save = (__m256i *) (ln->save + 4 * v);
    __m256i *sr = (__m256i *) (ln->sr + 4 * v), *si = (__m256i *) (ln->si + 4 * v);
    int bits = _mm256_movemask_pd(mask);
    __m256d rows = _mm256_add_pd(_mm256_set1_pd(ln->next), _mm256_loadu_pd(s_rank[bits & 7]));
    __m256d fresh = _mm256_and_pd(mask, _mm256_cmp_pd(rows, _mm256_set1_pd(ln->end), _CMP_LT_OQ));
    __m256d idle = _mm256_andnot_pd(fresh, mask);
    ln->next += (uint32_t) __builtin_popcount(_mm256_movemask_pd(fresh));
    ln->active -= (uint32_t) __builtin_popcount(_mm256_movemask_pd(idle));
    __m256d c = _mm256_sub_pd(_mm256_set1_pd(ln->ymax), _mm256_mul_pd(rows, _mm256_set1_pd(ln->dy)));
    _mm256_store_pd(row, _mm256_blendv_pd(_mm256_load_pd(row), rows, fresh));
    _mm256_store_pd(ci, _mm256_andnot_pd(idle, _mm256_blendv_pd(_mm256_load_pd(ci), c, fresh)));
    _mm256_store_pd(cr, _mm256_andnot_pd(idle, _mm256_blendv_pd(_mm256_load_pd(cr), _mm256_set1_pd(ln->cr0), fresh)));
    __m256d s = _mm256_blendv_pd(_mm256_castsi256_pd(_mm256_load_si256(start)),
                                 _mm256_castsi256_pd(_mm256_set1_epi64x(n)), fresh);
    s = _mm256_blendv_pd(s, _mm256_castsi256_pd(_mm256_set1_epi64x(IDLE_START)), idle);
    _mm256_store_si256(start, _mm256_castpd_si256(s));
    s = _mm256_blendv_pd(_mm256_castsi256_pd(_mm256_load_si256(save)), _mm256_castsi256_pd(_mm256_set1_epi64x(1)),
                         fresh);
    s = _mm256_blendv_pd(s, _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX)), idle);
    _mm256_store_si256(save, _mm256_castpd_si256(s));
    _mm256_store_si256(sr, _mm256_or_si256(_mm256_load_si256(sr), _mm256_castpd_si256(mask)));
    _mm256_store_si256(si, _mm256_or_si256(_mm256_load_si256(si), _mm256_castpd_si256(mask)));
}

/* AVX2_VECTORS vectors of 4 lanes in flight, so that the latency of one
   step (mul, sub, add in a chain) does not leave the FP units idle. */
__attribute__((target("avx2"))) static int s_counts_avx2(const mandel_params_t *p, uint32_t i, uint32_t j0,
                                                         uint32_t j1, uint32_t *out, bool cycles,
                                                         const atomic_bool *cancel)
{
    enum { L = 4, V = AVX2_VECTORS };
    lanes_t ln;
    s_lanes_init(&ln, p, i, j0, j1, out, V * L);
    const uint32_t m = p->max_iter, block = m < STEPS ? m : STEPS;
    const __m256d four = _mm256_set1_pd(4.0), two = _mm256_set1_pd(2.0);
    const __m256i last = _mm256_set1_epi64x((int64_t) m - 1);
    const __m256d all = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    __m256d zr[V], zi[V], esc[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; v++) {
        zr[v] = zi[v] = _mm256_setzero_pd();
        s_refill_avx2(&ln, v, all, 0);
    }
    int64_t n = 0, poll = POLL_STEPS;
    while (ln.active) {
        for (uint32_t s = 0; s < block; s++) {
            __m256d any = _mm256_setzero_pd();
#pragma GCC unroll 8
            for (int v = 0; v < V; v++) {
                __m256d zr2 = _mm256_mul_pd(zr[v], zr[v]), zi2 = _mm256_mul_pd(zi[v], zi[v]);
                esc[v] = _mm256_cmp_pd(_mm256_add_pd(zr2, zi2), four, _CMP_GT_OQ);
                any = _mm256_or_pd(any, esc[v]);
                zi[v] = _mm256_add_pd(_mm256_mul_pd(_mm256_mul_pd(two, zr[v]), zi[v]), _mm256_load_pd(ln.ci + L * v));
                zr[v] = _mm256_add_pd(_mm256_sub_pd(zr2, zi2), _mm256_load_pd(ln.cr + L * v));
            }
            n++;
            if (_mm256_testz_pd(any, any))
                continue;
#pragma GCC unroll 8
            for (int v = 0; v < V; v++) {   /* lanes that escaped, with count n - 1 - start */
                int bits = _mm256_movemask_pd(esc[v]);
                if (!bits)
                    continue;
                for (; bits; bits &= bits - 1) {
                    int l = L * v + __builtin_ctz((unsigned) bits);
                    s_report(&ln, l, n - 1 - ln.start[l]);
                }
                s_refill_avx2(&ln, v, esc[v], n);
                zr[v] = _mm256_andnot_pd(esc[v], zr[v]);
                zi[v] = _mm256_andnot_pd(esc[v], zi[v]);
            }
        }
        /* Block boundary: lanes whose count reached M, and the cycle test. */
        const __m256i nv = _mm256_set1_epi64x(n);
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) {
            __m256i *save = (__m256i *) (ln.save + L * v);
            __m256i *sr = (__m256i *) (ln.sr + L * v), *si = (__m256i *) (ln.si + L * v);
            __m256i k = _mm256_sub_epi64(nv, _mm256_load_si256((__m256i *) (ln.start + L * v)));
            __m256i done = _mm256_cmpgt_epi64(k, last);
            if (cycles) {
                __m256i r = _mm256_castpd_si256(zr[v]), im = _mm256_castpd_si256(zi[v]);
                __m256i old_r = _mm256_load_si256(sr), old_i = _mm256_load_si256(si);
                done = _mm256_or_si256(done, _mm256_and_si256(_mm256_cmpeq_epi64(r, old_r),
                                                              _mm256_cmpeq_epi64(im, old_i)));
                __m256d keep = _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_load_si256(save), k));
                _mm256_store_pd((double *) sr, _mm256_blendv_pd(zr[v], _mm256_castsi256_pd(old_r), keep));
                _mm256_store_pd((double *) si, _mm256_blendv_pd(zi[v], _mm256_castsi256_pd(old_i), keep));
                _mm256_store_pd((double *) save, _mm256_blendv_pd(_mm256_castsi256_pd(_mm256_add_epi64(k, k)),
                                                                  _mm256_castsi256_pd(_mm256_load_si256(save)), keep));
            }
            int bits = _mm256_movemask_pd(_mm256_castsi256_pd(done));
            if (!bits)
                continue;
            for (; bits; bits &= bits - 1)
                s_report(&ln, L * v + __builtin_ctz((unsigned) bits), m);
            s_refill_avx2(&ln, v, _mm256_castsi256_pd(done), n);
            zr[v] = _mm256_andnot_pd(_mm256_castsi256_pd(done), zr[v]);
            zi[v] = _mm256_andnot_pd(_mm256_castsi256_pd(done), zi[v]);
        }
        if (n >= poll) {
            if (s_cancelled(cancel))
                return JOB_CANCELLED;
            poll = n + POLL_STEPS;
        }
    }
    return 0;
}

/* As s_refill_avx2, with masks: expand places next, next + 1, ... in the lanes of mask. */
__attribute__((target("avx512f"), always_inline)) static inline void s_refill_avx512(lanes_t *ln, int v,
                                                                                    __mmask8 mask, int64_t n)
{
    double *cr = ln->cr + 8 * v, *ci = ln->ci + 8 * v, *row = ln->row + 8 * v;
    int64_t *start = ln->start + 8 * v, *save = ln->save + 8 * v, *sr = ln->sr + 8 * v, *si = ln->si + 8 * v;
    __m512d seq = _mm512_add_pd(_mm512_set1_pd(ln->next), _mm512_set_pd(7, 6, 5, 4, 3, 2, 1, 0));
    __m512d rows = _mm512_maskz_expand_pd(mask, seq);
    __mmask8 fresh = _mm512_mask_cmp_pd_mask(mask, rows, _mm512_set1_pd(ln->end), _CMP_LT_OQ);
    __mmask8 idle = mask & (__mmask8) ~fresh;
    ln->next += (uint32_t) __builtin_popcount(fresh);
    ln->active -= (uint32_t) __builtin_popcount(idle);
    __m512d c = _mm512_sub_pd(_mm512_set1_pd(ln->ymax), _mm512_mul_pd(rows, _mm512_set1_pd(ln->dy)));
    _mm512_store_pd(row, _mm512_mask_mov_pd(_mm512_load_pd(row), fresh, rows));
    _mm512_store_pd(ci, _mm512_maskz_mov_pd((__mmask8) ~idle, _mm512_mask_mov_pd(_mm512_load_pd(ci), fresh, c)));
    _mm512_store_pd(cr, _mm512_maskz_mov_pd((__mmask8) ~idle,
                                            _mm512_mask_mov_pd(_mm512_load_pd(cr), fresh, _mm512_set1_pd(ln->cr0))));
    __m512i s = _mm512_mask_mov_epi64(_mm512_load_si512(start), fresh, _mm512_set1_epi64(n));
    _mm512_store_si512(start, _mm512_mask_mov_epi64(s, idle, _mm512_set1_epi64(IDLE_START)));
    s = _mm512_mask_mov_epi64(_mm512_load_si512(save), fresh, _mm512_set1_epi64(1));
    _mm512_store_si512(save, _mm512_mask_mov_epi64(s, idle, _mm512_set1_epi64(INT64_MAX)));
    _mm512_store_si512(sr, _mm512_mask_mov_epi64(_mm512_load_si512(sr), mask, _mm512_set1_epi64(-1)));
    _mm512_store_si512(si, _mm512_mask_mov_epi64(_mm512_load_si512(si), mask, _mm512_set1_epi64(-1)));
}

/* AVX512_VECTORS vectors of 8 lanes, with mask registers; otherwise as AVX2. */
__attribute__((target("avx512f"))) static int s_counts_avx512(const mandel_params_t *p, uint32_t i, uint32_t j0,
                                                             uint32_t j1, uint32_t *out, bool cycles,
                                                             const atomic_bool *cancel)
{
    enum { L = 8, V = AVX512_VECTORS };
    lanes_t ln;
    s_lanes_init(&ln, p, i, j0, j1, out, V * L);
    const uint32_t m = p->max_iter, block = m < STEPS ? m : STEPS;
    const __m512d four = _mm512_set1_pd(4.0), two = _mm512_set1_pd(2.0);
    const __m512i last = _mm512_set1_epi64((int64_t) m - 1);
    __m512d zr[V], zi[V];
    __mmask8 esc[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; v++) {
        zr[v] = zi[v] = _mm512_setzero_pd();
        s_refill_avx512(&ln, v, 0xff, 0);
    }
    int64_t n = 0, poll = POLL_STEPS;
    while (ln.active) {
        for (uint32_t s = 0; s < block; s++) {
            unsigned any = 0;
#pragma GCC unroll 8
            for (int v = 0; v < V; v++) {
                __m512d zr2 = _mm512_mul_pd(zr[v], zr[v]), zi2 = _mm512_mul_pd(zi[v], zi[v]);
                esc[v] = _mm512_cmp_pd_mask(_mm512_add_pd(zr2, zi2), four, _CMP_GT_OQ);
                any |= esc[v];
                zi[v] = _mm512_add_pd(_mm512_mul_pd(_mm512_mul_pd(two, zr[v]), zi[v]), _mm512_load_pd(ln.ci + L * v));
                zr[v] = _mm512_add_pd(_mm512_sub_pd(zr2, zi2), _mm512_load_pd(ln.cr + L * v));
            }
            n++;
            if (!any)
                continue;
#pragma GCC unroll 8
            for (int v = 0; v < V; v++) {   /* lanes that escaped, with count n - 1 - start */
                if (!esc[v])
                    continue;
                for (unsigned bits = esc[v]; bits; bits &= bits - 1) {
                    int l = L * v + __builtin_ctz(bits);
                    s_report(&ln, l, n - 1 - ln.start[l]);
                }
                s_refill_avx512(&ln, v, esc[v], n);
                zr[v] = _mm512_maskz_mov_pd((__mmask8) ~esc[v], zr[v]);
                zi[v] = _mm512_maskz_mov_pd((__mmask8) ~esc[v], zi[v]);
            }
        }
        /* Block boundary: lanes whose count reached M, and the cycle test. */
        const __m512i nv = _mm512_set1_epi64(n);
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) {
            int64_t *save = ln.save + L * v, *sr = ln.sr + L * v, *si = ln.si + L * v;
            __m512i k = _mm512_sub_epi64(nv, _mm512_load_si512(ln.start + L * v));
            __mmask8 done = _mm512_cmpgt_epi64_mask(k, last);
            if (cycles) {
                __m512i r = _mm512_castpd_si512(zr[v]), im = _mm512_castpd_si512(zi[v]);
                __m512i old_r = _mm512_load_si512(sr), old_i = _mm512_load_si512(si);
                done |= _mm512_cmpeq_epi64_mask(r, old_r) & _mm512_cmpeq_epi64_mask(im, old_i);
                __mmask8 now = _mm512_cmple_epi64_mask(_mm512_load_si512(save), k);
                _mm512_store_si512(sr, _mm512_mask_mov_epi64(old_r, now, r));
                _mm512_store_si512(si, _mm512_mask_mov_epi64(old_i, now, im));
                _mm512_store_si512(save, _mm512_mask_mov_epi64(_mm512_load_si512(save), now, _mm512_add_epi64(k, k)));
            }
            if (!done)
                continue;
            for (unsigned bits = done; bits; bits &= bits - 1)
                s_report(&ln, L * v + __builtin_ctz(bits), m);
            s_refill_avx512(&ln, v, done, n);
            zr[v] = _mm512_maskz_mov_pd((__mmask8) ~done, zr[v]);
            zi[v] = _mm512_maskz_mov_pd((__mmask8) ~done, zi[v]);
        }
        if (n >= poll) {
            if (s_cancelled(cancel))
                return JOB_CANCELLED;
            poll = n + POLL_STEPS;
        }
    }
    return 0;
}

typedef int (counts_fn)(const mandel_params_t *, uint32_t, uint32_t, uint32_t, uint32_t *, bool,
                        const atomic_bool *);

static counts_fn *const s_kernels[] = {
    [MANDEL_SCALAR] = s_counts_scalar,
    [MANDEL_AVX2] = s_counts_avx2,
    [MANDEL_AVX512] = s_counts_avx512,
};
static const char *const s_kernel_names[] = {"scalar", "AVX2", "AVX-512"};

static mandel_kernel_t s_best;   /* decided once, read-only after */
static pthread_once_t s_best_once = PTHREAD_ONCE_INIT;

static void s_decide(void)
{
    bool simd = job_simd_allowed();
    s_best = MANDEL_SCALAR;
    for (int k = MANDEL_AVX512; simd && k > MANDEL_SCALAR && s_best == MANDEL_SCALAR; k--)
        if (mandel_kernel_available((mandel_kernel_t) k))
            s_best = (mandel_kernel_t) k;
}

bool mandel_kernel_available(mandel_kernel_t kernel)
{
    switch (kernel) {
    case MANDEL_SCALAR: return true;
    case MANDEL_AVX2: return __builtin_cpu_supports("avx2");
    case MANDEL_AVX512: return __builtin_cpu_supports("avx512f");
    }
    return false;
}

mandel_kernel_t mandel_kernel(void)
{
    pthread_once(&s_best_once, s_decide);
    return s_best;
}

const char *mandel_kernel_name(mandel_kernel_t kernel) { return s_kernel_names[kernel]; }

int mandel_counts_with(mandel_kernel_t kernel, bool cycles, const mandel_params_t *p, uint32_t i, uint32_t j0,
                       uint32_t j1, uint32_t *k, const atomic_bool *cancel)
{
    assert(mandel_kernel_available(kernel) && j0 <= j1 && j1 <= p->height);
    return s_kernels[kernel](p, i, j0, j1, k, cycles, cancel);
}

int mandel_counts(const mandel_params_t *p, uint32_t i, uint32_t j0, uint32_t j1, uint32_t *k,
                  const atomic_bool *cancel)
{
    return mandel_counts_with(mandel_kernel(), true, p, i, j0, j1, k, cancel);
}

/* Gray values of column i, CHUNK rows at a time, with a look at *cancel
   before each chunk (and inside the kernel). Returns 0, or JOB_CANCELLED
   with out partly written. */
static int s_column(mandel_kernel_t kernel, bool cycles, const mandel_params_t *p, uint32_t i, uint8_t *out,
                    const atomic_bool *cancel)
{
    uint32_t k[CHUNK];
    const uint8_t *gray = s_gray_table(p->max_iter);
    for (uint32_t j0 = 0; j0 < p->height; j0 += CHUNK) {
        uint32_t j1 = p->height - j0 < CHUNK ? p->height : j0 + CHUNK;
        if (s_cancelled(cancel) || mandel_counts_with(kernel, cycles, p, i, j0, j1, k, cancel) == JOB_CANCELLED)
            return JOB_CANCELLED;
        if (gray)
            for (uint32_t j = j0; j < j1; j++)
                out[j] = gray[k[j - j0]];   /* k <= max_iter */
        else
            for (uint32_t j = j0; j < j1; j++)
                out[j] = s_gray(k[j - j0], p->max_iter);
    }
    return 0;
}

void mandel_column(const mandel_params_t *p, uint32_t i, uint8_t *out)
{
    s_column(mandel_kernel(), true, p, i, out, NULL);
}

void mandel_column_with(mandel_kernel_t kernel, bool cycles, const mandel_params_t *p, uint32_t i, uint8_t *out)
{
    s_column(kernel, cycles, p, i, out, NULL);
}

void mandel_column_scalar(const mandel_params_t *p, uint32_t i, uint8_t *out)
{
    s_column(MANDEL_SCALAR, true, p, i, out, NULL);
}

/* ------------------------------------------------------------ parameters */

static void s_encode(const mandel_params_t *p, uint8_t *buf)
{
    writer_t w = {buf};
    writer_be(&w, p->width, 4);
    writer_be(&w, p->height, 4);
    writer_double(&w, p->xmin);
    writer_double(&w, p->xmax);
    writer_double(&w, p->ymin);
    writer_double(&w, p->ymax);
    writer_be(&w, p->max_iter, 4);
    writer_be(&w, p->columns_per_unit, 4);
}

static int s_decode(const uint8_t *buf, size_t len, mandel_params_t *p)
{
    reader_t r = reader_new(buf, len);
    p->width = (uint32_t) reader_be(&r, 4);
    p->height = (uint32_t) reader_be(&r, 4);
    p->xmin = reader_double(&r);
    p->xmax = reader_double(&r);
    p->ymin = reader_double(&r);
    p->ymax = reader_double(&r);
    p->max_iter = (uint32_t) reader_be(&r, 4);
    p->columns_per_unit = (uint32_t) reader_be(&r, 4);
    return reader_done(&r) && !mandel_params_check(p) ? 0 : -1;
}

static uint64_t s_units(const mandel_params_t *p)
{
    return (p->width + (uint64_t) p->columns_per_unit - 1) / p->columns_per_unit;
}

/* ------------------------------------------------------------ manager side */

/* Columns are turned into the PNG's rows a tile of TILE columns at a time,
   as soon as the tile's columns have all come: that work then overlaps the
   computing, and only the compression is left for the end. Until then a
   tile's columns wait in a buffer of their own, which is used again for a
   later tile: the few tiles in progress stay in cache, where one
   column-major copy of the whole image would not. */
#define TILE 64
#define SPARE_TILES 8

typedef struct {
    mandel_params_t p;
    uint8_t *rows;     /* width * height gray bytes, row-major: each tile once whole */
    uint8_t *have;     /* one byte per unit: accepted (for the preview) */
    uint16_t *missing; /* per tile: its columns not accepted yet */
    uint8_t **tiles;   /* per tile in progress: its columns so far (column-major); else NULL */
    uint8_t *spare[SPARE_TILES];   /* buffers of finished tiles, for the next ones */
    int spares;
    pthread_t populator;           /* makes the rows' pages (s_begin) */
    bool populating;
} state_t;

static void s_state_free(state_t *state)
{
    if (state) {
        if (state->populating)
            pthread_join(state->populator, NULL);
        uint32_t tiles = (state->p.width + TILE - 1) / TILE;
        for (uint32_t t = 0; state->tiles && t < tiles; t++)
            free(state->tiles[t]);
        for (int i = 0; i < state->spares; i++)
            free(state->spare[i]);
        free(state->tiles);
        free(state->rows);
        free(state->have);
        free(state->missing);
        free(state);
    }
}

static int s_plan(int argc, char **argv, job_plan_t *plan, FILE *out, char *err, size_t errlen)
{
    int64_t width = 500, height = 400, max_iter = 255, cpu = 1;
    double xmin = -2, xmax = 0.5, ymin = -1, ymax = 1;
    const char *output = NULL;
    bool help = false;
    const opt_t opts[] = {
        {"width", 0, OPT_INT, &width, 1, MAX_SIDE, 0, 0, NULL, NULL, "W", "image width in pixels (500)"},
        {"height", 0, OPT_INT, &height, 1, MAX_SIDE, 0, 0, NULL, NULL, "H", "image height in pixels (400)"},
        {"xmin", 0, OPT_DOUBLE, &xmin, 0, 0, 0, 0, NULL, NULL, "X", "left edge of the view (-2)"},
        {"xmax", 0, OPT_DOUBLE, &xmax, 0, 0, 0, 0, NULL, NULL, "X", "right edge of the view (0.5)"},
        {"ymin", 0, OPT_DOUBLE, &ymin, 0, 0, 0, 0, NULL, NULL, "Y", "bottom edge of the view (-1)"},
        {"ymax", 0, OPT_DOUBLE, &ymax, 0, 0, 0, 0, NULL, NULL, "Y", "top edge of the view (1)"},
        {"max-iter", 0, OPT_INT, &max_iter, 1, MAX_ITER, 0, 0, NULL, NULL, "M", "iterations before a point counts as inside (255)"},
        {"columns-per-unit", 0, OPT_INT, &cpu, 1, MAX_SIDE, 0, 0, NULL, NULL, "C", "adjacent columns in one work unit (1)"},
        {"output", 'o', OPT_STRING, &output, 0, 0, 0, 0, NULL, NULL, "FILE", "output PNG (mandelbrot.png)"},
        {"help", 'h', OPT_FLAG, &help, 0, 0, 0, 0, NULL, NULL, NULL, "show this help"},
        {NULL},
    };
    int rc = job_options(opts, &help, "mandelbrot: columns of the Mandelbrot set, assembled into a grayscale PNG", argc, argv, out, err, errlen);
    if (rc != JOB_OK)
        return rc;
    mandel_params_t p = {(uint32_t) width, (uint32_t) height, xmin, xmax, ymin, ymax,
                         (uint32_t) max_iter, (uint32_t) cpu};
    const char *why = mandel_params_check(&p);
    if (why) {
        snprintf(err, errlen, "mandelbrot: %s", why);
        return JOB_ERROR;
    }
    state_t *state = calloc(1, sizeof *state);
    uint32_t tiles = (p.width + TILE - 1) / TILE;
    if (state) {
        state->p = p;
        state->rows = calloc((size_t) p.width * p.height, 1);
        state->have = calloc(s_units(&p), 1);
        state->missing = calloc(tiles, sizeof *state->missing);
        state->tiles = calloc(tiles, sizeof *state->tiles);
    }
    if (!state || !state->rows || !state->have || !state->missing || !state->tiles) {
        s_state_free(state);
        snprintf(err, errlen, "mandelbrot: not enough memory for a %ux%u image", p.width, p.height);
        return JOB_ERROR;
    }
    for (uint32_t t = 0; t < tiles; t++)
        state->missing[t] = (uint16_t) (p.width - t * TILE < TILE ? p.width - t * TILE : TILE);
    plan->params = malloc(PARAMS_LEN);
    plan->params_len = PARAMS_LEN;
    s_encode(&p, plan->params);
    plan->units = s_units(&p);
    plan->output = output;
    plan->default_output = "mandelbrot.png";
    plan->state = state;
    return JOB_OK;
}

/* Bytes from..to of columns i0..i1 (column c at columns + c * height) into
   the rows of an image stride bytes wide, one at a time. */
static void s_transpose_bytes(const uint8_t *columns, uint32_t height, uint32_t i0, uint32_t i1, uint32_t from,
                              uint32_t to, uint8_t *rows, size_t stride)
{
    for (uint32_t i = i0; i < i1; i++)
        for (uint32_t j = from; j < to; j++)
            rows[(size_t) j * stride + i] = columns[(size_t) i * height + j];
}

#ifdef __SSE2__
/* 16 columns of 16 bytes (column c at src + c * src_stride) into 16 rows of
   16 bytes (row j at dst + j * dst_stride): four rounds of interleaving,
   bytes, then pairs, fours and eights of them. SSE2 is part of every
   x86-64 processor: no dispatch. */
static void s_transpose16(const uint8_t *src, size_t src_stride, uint8_t *dst, size_t dst_stride)
{
    __m128i a[16], b[16];
    for (int c = 0; c < 16; c++)
        a[c] = _mm_loadu_si128((const __m128i *) (src + (size_t) c * src_stride));
    for (int k = 0; k < 8; k++) {   /* b[2k]: rows 0-7 of columns 2k, 2k+1; b[2k+1]: rows 8-15 */
        b[2 * k] = _mm_unpacklo_epi8(a[2 * k], a[2 * k + 1]);
        b[2 * k + 1] = _mm_unpackhi_epi8(a[2 * k], a[2 * k + 1]);
    }
    for (int g = 0; g < 4; g++) {   /* a[4g+q]: rows 4q..4q+3 of columns 4g..4g+3 */
        a[4 * g] = _mm_unpacklo_epi16(b[4 * g], b[4 * g + 2]);
        a[4 * g + 1] = _mm_unpackhi_epi16(b[4 * g], b[4 * g + 2]);
        a[4 * g + 2] = _mm_unpacklo_epi16(b[4 * g + 1], b[4 * g + 3]);
        a[4 * g + 3] = _mm_unpackhi_epi16(b[4 * g + 1], b[4 * g + 3]);
    }
    for (int h = 0; h < 2; h++)     /* b[8h+m]: rows 2m, 2m+1 of columns 8h..8h+7 */
        for (int q = 0; q < 4; q++) {
            b[8 * h + 2 * q] = _mm_unpacklo_epi32(a[8 * h + q], a[8 * h + 4 + q]);
            b[8 * h + 2 * q + 1] = _mm_unpackhi_epi32(a[8 * h + q], a[8 * h + 4 + q]);
        }
    for (int m = 0; m < 8; m++) {
        _mm_storeu_si128((__m128i *) (dst + (size_t) (2 * m) * dst_stride), _mm_unpacklo_epi64(b[m], b[8 + m]));
        _mm_storeu_si128((__m128i *) (dst + (size_t) (2 * m + 1) * dst_stride), _mm_unpackhi_epi64(b[m], b[8 + m]));
    }
}
#endif

/* width columns of height bytes each (column-major, one after the other)
   into the rows of an image stride bytes wide, in TILE x TILE blocks, which
   stay in cache: 16 x 16 at once where the CPU can, the edges a byte at a
   time. The manager does this for every pixel while its workers compute. */
static void s_transpose(const uint8_t *columns, uint32_t width, uint32_t height, uint8_t *rows, size_t stride)
{
    for (uint32_t i0 = 0; i0 < width; i0 += TILE) {
        uint32_t i1 = i0 + TILE < width ? i0 + TILE : width, full_i = i0, full_j = 0;
#ifdef __SSE2__
        full_i = i0 + ((i1 - i0) & ~15u), full_j = height & ~15u;
        for (uint32_t j0 = 0; j0 < full_j; j0 += TILE)
            for (uint32_t j = j0; j < j0 + TILE && j < full_j; j += 16)
                for (uint32_t i = i0; i < full_i; i += 16)
                    s_transpose16(columns + (size_t) i * height + j, height, rows + (size_t) j * stride + i, stride);
#endif
        s_transpose_bytes(columns, height, i0, full_i, full_j, height, rows, stride);   /* the last rows */
        s_transpose_bytes(columns, height, full_i, i1, 0, height, rows, stride);       /* the last columns */
    }
}

/* The pages of n bytes at p, made now in one system call rather than one
   fault at a time later (Linux 5.14 and later; elsewhere they still fault
   in when first written). */
static void s_populate(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t) p + page - 1) & ~(page - 1), to = ((uintptr_t) p + n) & ~(page - 1);
    if (to > from)
        (void) madvise((void *) from, to - from, MADV_POPULATE_WRITE);
#else
    (void) p, (void) n;
#endif
}

static void *s_populator(void *arg)
{
    state_t *state = arg;
    s_populate(state->rows, (size_t) state->p.width * state->p.height);
    return NULL;
}

/* The image's memory, made beside the event loop while the workers start
   (the first tile would otherwise fault it in, a page per row, while
   results wait; and made on the loop, it would keep the workers' HELLOs
   waiting). Only the page tables change: rows written meanwhile stay. */
static int s_begin(void *self, const char *output, char *err, size_t errlen)
{
    (void) output, (void) err, (void) errlen;
    state_t *state = self;
    state->populating = pthread_create(&state->populator, NULL, s_populator, state) == 0;
    return 0;
}

static int s_accept(void *self, uint64_t unit, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    state_t *state = self;
    const mandel_params_t *p = &state->p;
    if (unit >= s_units(p))
        return JOB_MALFORMED;
    uint32_t first = (uint32_t) unit * p->columns_per_unit;
    uint32_t ncols = p->width - first < p->columns_per_unit ? p->width - first : p->columns_per_unit;
    if (len != (size_t) ncols * p->height) {
        snprintf(err, errlen, "%zu bytes, not the %zu of its %u column%s", len, (size_t) ncols * p->height, ncols,
                 ncols == 1 ? "" : "s");
        return JOB_MALFORMED;
    }
    for (uint32_t c = first; c < first + ncols;) {   /* the tiles these columns fall in */
        uint32_t t = c / TILE, end = (t + 1) * TILE < first + ncols ? (t + 1) * TILE : first + ncols;
        uint8_t **tile = &state->tiles[t];
        if (!*tile)
            *tile = state->spares ? state->spare[--state->spares] : malloc((size_t) TILE * p->height);
        if (!*tile) {
            snprintf(err, errlen, "mandelbrot: not enough memory for the image's columns");
            return JOB_WRITE_FAILED;
        }
        memcpy(*tile + (size_t) (c - t * TILE) * p->height, data + (size_t) (c - first) * p->height,
               (size_t) (end - c) * p->height);
        state->missing[t] -= (uint16_t) (end - c);
        if (state->missing[t] == 0) {
            uint32_t width = (t + 1) * TILE < p->width ? TILE : p->width - t * TILE;
            s_transpose(*tile, width, p->height, state->rows + (size_t) t * TILE, p->width);
            if (state->spares < SPARE_TILES)
                state->spare[state->spares++] = *tile;
            else
                free(*tile);
            *tile = NULL;
        }
        c = end;
    }
    state->have[unit] = 1;
    return 0;
}

/* The image so far, every s-th pixel of every s-th row (s the smallest
   factor that fits max_side both ways); columns not computed yet are
   hatched in blue. */
static int s_preview(void *self, uint32_t max_side, job_picture_t *picture)
{
    const state_t *state = self;
    const mandel_params_t *p = &state->p;
    if (max_side == 0)
        return -1;
    uint32_t side = p->width > p->height ? p->width : p->height;
    uint32_t s = (side + max_side - 1) / max_side;
    s = s ? s : 1;
    uint32_t w = (p->width + s - 1) / s, h = (p->height + s - 1) / s;
    uint8_t *rgb = malloc((size_t) w * h * 3);
    if (!rgb)
        return -1;
    for (uint32_t x = 0; x < w; x++) {
        uint32_t i = x * s;
        bool have = state->have[i / p->columns_per_unit];
        const uint8_t *staged = state->tiles[i / TILE];   /* NULL once the tile is in the rows */
        for (uint32_t y = 0; y < h; y++) {
            uint8_t *px = rgb + ((size_t) y * w + x) * 3;
            if (have) {
                px[0] = px[1] = px[2] = staged ? staged[(size_t) (i % TILE) * p->height + (size_t) y * s]
                                               : state->rows[(size_t) y * s * p->width + i];
            } else {
                bool stripe = ((x + y) / 6) % 2;
                px[0] = stripe ? 38 : 52, px[1] = stripe ? 52 : 70, px[2] = stripe ? 96 : 128;
            }
        }
    }
    *picture = (job_picture_t) {rgb, w, h};
    return 0;
}

int mandel_write_png(const mandel_params_t *p, const uint8_t *columns, const char *path, char *err, size_t errlen)
{
    uint8_t *rows = malloc((size_t) p->width * p->height);
    if (!rows) {
        snprintf(err, errlen, "mandelbrot: not enough memory to write the image");
        return -1;
    }
    s_transpose(columns, p->width, p->height, rows, p->width);
    int rc = image_write_png(path, rows, p->width, p->height, 1, err, errlen);
    free(rows);
    return rc;
}

static int s_finish(void *self, const char *output, FILE *out, char *err, size_t errlen)
{
    state_t *state = self;
    if (image_write_png(output, state->rows, state->p.width, state->p.height, 1, err, errlen) < 0)
        return -1;
    fprintf(out, "mandelbrot: wrote %s (%ux%u, max-iter %u)\n", output, state->p.width,
            state->p.height, state->p.max_iter);
    return 0;
}

static void s_destroy(void *self) { s_state_free(self); }

/* ------------------------------------------------------------ worker side */

static void *s_load(const uint8_t *params, size_t len)
{
    mandel_params_t p;
    if (s_decode(params, len, &p) < 0)
        return NULL;
    mandel_params_t *ctx = malloc(sizeof *ctx);
    *ctx = p;
    return ctx;
}

static void s_unload(void *ctx) { free(ctx); }

/* ctx is only read: every compute thread shares it. */
static int s_compute(const void *ctx, uint64_t unit, const atomic_bool *cancel, uint8_t **out, size_t *out_len)
{
    const mandel_params_t *p = ctx;
    if (unit >= s_units(p))
        return JOB_RANGE;
    uint32_t first = (uint32_t) unit * p->columns_per_unit;
    uint32_t ncols = p->width - first < p->columns_per_unit ? p->width - first : p->columns_per_unit;
    size_t len = (size_t) ncols * p->height;
    uint8_t *buf = malloc(len);
    if (!buf)
        return JOB_FAILED;
    for (uint32_t c = 0; c < ncols; c++)
        if (s_column(mandel_kernel(), true, p, first + c, buf + (size_t) c * p->height, cancel) == JOB_CANCELLED) {
            free(buf);
            *out = NULL;
            *out_len = 0;
            return JOB_CANCELLED;
        }
    *out = buf;
    *out_len = len;
    return 0;
}

const job_kind_t mandelbrot_job = {
    .name = "mandelbrot",
    .summary = "columns of the Mandelbrot set, assembled into a grayscale PNG",
    .plan = s_plan,
    .load = s_load,
    .unload = s_unload,
    .compute = s_compute,
    .begin = s_begin,
    .accept = s_accept,
    .preview = s_preview,
    .finish = s_finish,
    .destroy = s_destroy,
};
