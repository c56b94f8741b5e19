/* Inner loops of the direct kernels, compiled once per instruction set.
 *
 * On x86-64 Linux with GCC, each function is built for AVX-512 (x86-64-v4), AVX2+FMA
 * (x86-64-v3) and the baseline (SSE2); the dynamic loader picks the best one for the CPU at
 * run time (ifunc), so one portable wheel runs the vector code wherever the machine has it.
 * Elsewhere (arm64, clang, macOS, Windows) the functions are built once for the target given
 * to the compiler (PYCONV1D_NATIVE=1 adds -march=native).
 *
 * Every loop visits its elements in a fixed order that depends only on the lengths, never on
 * the thread that runs it, so results are bitwise identical for every thread count.
 */
#ifndef PYCONV1D_SIMD_H
#define PYCONV1D_SIMD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Each kernel module uses some of these functions only. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) \
    && !defined(PYCONV1D_NO_CLONES)
#define PYC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define PYC_HAVE_CLONES 1
#else
#define PYC_CLONES
#endif

/* Output i's accumulators over one, two or three vectors at t (a<i>, b<i>, c<i>), loaded from
 * and stored to y<i>; and the outputs they run over: one, two, four or all eight of y0..y7,
 * or the last four. */
#define PYC_LD1(i) vec a##i = *(vec *)(y##i + t);
#define PYC_LD2(i) PYC_LD1(i) vec b##i = *(vec *)(y##i + t + V);
#define PYC_LD3(i) PYC_LD2(i) vec c##i = *(vec *)(y##i + t + 2 * V);
#define PYC_ST1(i) *(vec *)(y##i + t) = a##i;
#define PYC_ST2(i) PYC_ST1(i) *(vec *)(y##i + t + V) = b##i;
#define PYC_ST3(i) PYC_ST2(i) *(vec *)(y##i + t + 2 * V) = c##i;
#define PYC_EACH1(M) M(0)
#define PYC_EACH2(M) M(0) M(1)
#define PYC_EACH4(M) M(0) M(1) M(2) M(3)
#define PYC_EACH4_HI(M) M(4) M(5) M(6) M(7)
#define PYC_EACH8(M) PYC_EACH4(M) PYC_EACH4_HI(M)

/* Tap k of output i (weight w<i>) into one, two or three vectors of outputs (accumulators
 * a<i>, b<i>, c<i>; inputs xa, xb, xc), the weight broadcast once. */
#define PYC_TAP1(i) a##i += w##i[k] * xa;
#define PYC_TAP2(i) { vec c_ = w##i[k] - (vec){}; a##i += c_ * xa; b##i += c_ * xb; }
#define PYC_TAP3(i)                                                                           \
    { __typeof__(*w##i) v_ = w##i[k]; a##i += v_ * xa; b##i += v_ * xb; c##i += v_ * xc; }

/* The loops of pyc_fir8_taps over the outputs EACH (PYC_EACH8, PYC_EACH4 or PYC_EACH4_HI) with
 * VB-byte vectors, NV (1, 2 or 3) vectors of each output at once, while they fit before n
 * (advances t). Each weight, broadcast once, serves NV products; with eight outputs and three
 * vectors, 24 accumulators and 11 loads per tap for 24 multiply-adds, which only AVX-512's 32
 * registers hold. With 32-byte vectors, as on AVX2, two vectors of eight outputs (16
 * accumulators, the inputs and a weight) already passed AVX2's 16 registers: GCC kept some
 * accumulators on the stack, each of their multiply-adds waiting on a store and a load, so
 * there the outputs run four at a time, three vectors each (12 accumulators). */
#define PYC_FIR_NV(T, VB, NV, EACH)                                                           \
    {                                                                                         \
        enum { V = VB / sizeof(T) };                                                          \
        typedef T vec __attribute__((vector_size(VB), aligned(sizeof(T))));                   \
        for (; t + NV * V <= n; t += NV * V) {                                                \
            EACH(PYC_LD##NV)                                                                  \
            for (ptrdiff_t k = 0; k < K; k++) {                                               \
                const T *xk = x + t + off[k];                                                 \
                vec xa = *(const vec *)(xk);                                                  \
                PYC_FIR_X##NV                                                                 \
                EACH(PYC_TAP##NV)                                                             \
            }                                                                                 \
            EACH(PYC_ST##NV)                                                                  \
        }                                                                                     \
    }
#define PYC_FIR_X1
#define PYC_FIR_X2 vec xb = *(const vec *)(xk + V);
#define PYC_FIR_X3 PYC_FIR_X2 vec xc = *(const vec *)(xk + 2 * V);

/* The vector loops of pyc_fir_taps with VB-byte vectors (advance t): blocks of eight vectors
 * of outputs, then one block of four and one of two, then one vector. Each vector's sum is a
 * chain of K dependent multiply-adds, so a rest of up to seven vectors, one at a time, took
 * seven chains end to end: with 31 taps, a quarter of a depthwise row's time (rows of 1,000
 * outputs, split where their taps leave the row, end in 2-7 such vectors). */
#define PYC_FIR_ACC(j) vec a##j = *(vec *)(yt + (j) * V);
#define PYC_FIR_MAC(j) a##j += wk * *(const vec *)(xs + (j) * V);
#define PYC_FIR_OUT(j) *(vec *)(yt + (j) * V) = a##j;
#define PYC_FIR_BLOCK(T, NB)                                                                  \
            {                                                                                 \
                T *yt = y + t;                                                                \
                PYC_EACH##NB(PYC_FIR_ACC)                                                     \
                for (ptrdiff_t k = 0; k < K; k++) {                                           \
                    const T *xs = x + t + off[k];                                             \
                    T wk = w[k];                                                              \
                    PYC_EACH##NB(PYC_FIR_MAC)                                                 \
                }                                                                             \
                PYC_EACH##NB(PYC_FIR_OUT)                                                     \
            }
#define PYC_FIR_BODY(T, VB)                                                                   \
    {                                                                                         \
        enum { V = VB / sizeof(T) };                                                          \
        typedef T vec __attribute__((vector_size(VB), aligned(sizeof(T))));                   \
        for (; t + 8 * V <= n; t += 8 * V) PYC_FIR_BLOCK(T, 8)                                \
        if (t + 4 * V <= n) { PYC_FIR_BLOCK(T, 4) t += 4 * V; }                               \
        if (t + 2 * V <= n) { PYC_FIR_BLOCK(T, 2) t += 2 * V; }                               \
        if (t + V <= n) { PYC_FIR_BLOCK(T, 1) t += V; }                                       \
    }

/* pyc_fir_runs_SUF: the blocks of four 64-byte vectors of outputs of pyc_fir_taps with
 * AVX-512 intrinsics, for taps whose offsets come in runs (off[k + 1] == off[k] + 1: a
 * kernel row). The plain loop loads x once per tap and output vector, and most of those
 * loads straddle two cache lines; here a run of up to one vector's worth of taps loads its
 * five vectors once and shifts them into place in registers (valign), one shift per
 * multiply-add. Every output still sums its taps in k order with one multiply-add each, the
 * accumulators starting from y, so the bits are those of the plain loop. The taps go in
 * batches of PYC_RUNS_BATCH (outputs stored and reloaded between batches: the same values).
 * Runs go up (the forward's kernel rows) or down (the input gradient's reversed rows: the
 * five vectors then start V - 1 before the run's first offset, and tap s of the run shifts
 * by V - 1 - s). Returns how many outputs it computed (whole blocks; the caller runs the
 * rest): none when fewer than half the first batch's taps continue a run (a tap alone gains
 * nothing from the shifts, and the blocks of four vectors keep fewer multiply-adds in flight
 * than the plain loop's eight: 0.92-0.94x on a dilated 3-tap kernel). A run's outer vectors
 * load under a mask of the lanes its shifts use, so no load reads outside the inputs its
 * taps read. */
#if defined(__x86_64__) && defined(__GNUC__) && (defined(PYC_HAVE_CLONES) || defined(__AVX512F__))
#include <immintrin.h>
#if defined(__AVX512F__)
#define PYC_TARGET512
#else
#define PYC_TARGET512 __attribute__((target("arch=x86-64-v4")))
#endif
#define PYC_RUNS_BATCH 64
/* Tap s < m of a run, its inputs for the four vectors of outputs shifted by h lanes out of
 * the run's five vectors. */
#define PYC_RUN_STEP(s, h, VEC, SET1, FMA, ALIGN, TOI, FROMI)                                 \
    if (s < m) {                                                                              \
        VEC c_ = SET1(wk[s]);                                                                 \
        a0 = FMA(c_, FROMI(ALIGN(TOI(v1), TOI(v0), h)), a0);                                  \
        a1 = FMA(c_, FROMI(ALIGN(TOI(v2), TOI(v1), h)), a1);                                  \
        a2 = FMA(c_, FROMI(ALIGN(TOI(v3), TOI(v2), h)), a2);                                  \
        a3 = FMA(c_, FROMI(ALIGN(TOI(v4), TOI(v3), h)), a3);                                  \
    }
#define PYC_RUN_D(s, h) PYC_RUN_STEP(s, h, __m512d, _mm512_set1_pd, _mm512_fmadd_pd,         \
                                     _mm512_alignr_epi64, _mm512_castpd_si512,                \
                                     _mm512_castsi512_pd)
#define PYC_RUN_F(s, h) PYC_RUN_STEP(s, h, __m512, _mm512_set1_ps, _mm512_fmadd_ps,           \
                                     _mm512_alignr_epi32, _mm512_castps_si512,                \
                                     _mm512_castsi512_ps)
/* Taps s of a run going up (shift s, from s = 1: tap 0 needs none) or down (shift 7 - s or
 * 15 - s, from s = 0). */
#define PYC_RUN_UP_d PYC_RUN_D(1, 1) PYC_RUN_D(2, 2) PYC_RUN_D(3, 3) PYC_RUN_D(4, 4)          \
                     PYC_RUN_D(5, 5) PYC_RUN_D(6, 6) PYC_RUN_D(7, 7)
#define PYC_RUN_DOWN_d PYC_RUN_D(0, 7) PYC_RUN_D(1, 6) PYC_RUN_D(2, 5) PYC_RUN_D(3, 4)        \
                       PYC_RUN_D(4, 3) PYC_RUN_D(5, 2) PYC_RUN_D(6, 1) PYC_RUN_D(7, 0)
#define PYC_RUN_UP_f PYC_RUN_F(1, 1) PYC_RUN_F(2, 2) PYC_RUN_F(3, 3) PYC_RUN_F(4, 4)          \
                     PYC_RUN_F(5, 5) PYC_RUN_F(6, 6) PYC_RUN_F(7, 7) PYC_RUN_F(8, 8)          \
                     PYC_RUN_F(9, 9) PYC_RUN_F(10, 10) PYC_RUN_F(11, 11) PYC_RUN_F(12, 12)    \
                     PYC_RUN_F(13, 13) PYC_RUN_F(14, 14) PYC_RUN_F(15, 15)
#define PYC_RUN_DOWN_f PYC_RUN_F(0, 15) PYC_RUN_F(1, 14) PYC_RUN_F(2, 13) PYC_RUN_F(3, 12)    \
                       PYC_RUN_F(4, 11) PYC_RUN_F(5, 10) PYC_RUN_F(6, 9) PYC_RUN_F(7, 8)      \
                       PYC_RUN_F(8, 7) PYC_RUN_F(9, 6) PYC_RUN_F(10, 5) PYC_RUN_F(11, 4)      \
                       PYC_RUN_F(12, 3) PYC_RUN_F(13, 2) PYC_RUN_F(14, 1) PYC_RUN_F(15, 0)
#define PYC_FIR_RUNS(T, SUF, VEC, MASK, LD, LDZ, ST, SET1, FMA)                               \
PYC_TARGET512 static ptrdiff_t pyc_fir_runs_##SUF(ptrdiff_t n, ptrdiff_t K,                   \
                                                  const T *restrict w,                        \
                                                  const ptrdiff_t *restrict off,              \
                                                  const T *restrict x, T *restrict y)         \
{                                                                                             \
    enum { V = 64 / sizeof(T) };                                                              \
    ptrdiff_t nb = n - n % (4 * V);                                                           \
    for (ptrdiff_t k0 = 0; k0 < K; k0 += PYC_RUNS_BATCH) {                                    \
        ptrdiff_t kn = K - k0 < PYC_RUNS_BATCH ? K - k0 : PYC_RUNS_BATCH;                     \
        /* run r: taps start[r] .. start[r] + |len[r]| - 1, going down when len[r] < 0 */     \
        int start[PYC_RUNS_BATCH], len[PYC_RUNS_BATCH], nr = 0;                               \
        for (int k = 0; k < kn;) {                                                            \
            const ptrdiff_t *o = off + k0 + k;                                                \
            int m = 1, d = k + 1 < kn && o[1] == o[0] - 1 ? -1 : 1;                           \
            while (m < V && k + m < kn && o[m] == o[0] + d * m) m++;                          \
            start[nr] = k;                                                                    \
            len[nr++] = d * m;                                                                \
            k += m;                                                                           \
        }                                                                                     \
        if (k0 == 0 && 2 * (kn - nr) < kn)   /* kn - nr taps continue a run */               \
            return 0;                                                                         \
        for (ptrdiff_t t = 0; t < nb; t += 4 * V) {                                           \
            VEC a0 = LD(y + t), a1 = LD(y + t + V), a2 = LD(y + t + 2 * V);                   \
            VEC a3 = LD(y + t + 3 * V);                                                       \
            for (int r = 0; r < nr; r++) {                                                    \
                const T *xs = x + t + off[k0 + start[r]], *wk = w + k0 + start[r];            \
                int m = len[r];                                                               \
                if (m > 0) {                                                                  \
                    VEC v0 = LD(xs), v1 = LD(xs + V), v2 = LD(xs + 2 * V);                    \
                    VEC v3 = LD(xs + 3 * V), c0 = SET1(wk[0]);                                \
                    a0 = FMA(c0, v0, a0); a1 = FMA(c0, v1, a1);                               \
                    a2 = FMA(c0, v2, a2); a3 = FMA(c0, v3, a3);                               \
                    if (m == 1) continue;                                                     \
                    VEC v4 = LDZ((MASK)((1u << (m - 1)) - 1), xs + 4 * V);                    \
                    PYC_RUN_UP_##SUF                                                          \
                } else {                                                                      \
                    m = -m;                                                                   \
                    xs -= V - 1;                                                              \
                    VEC v0 = LDZ((MASK)(~0u << (V - m)), xs), v1 = LD(xs + V);                \
                    VEC v2 = LD(xs + 2 * V), v3 = LD(xs + 3 * V);                             \
                    VEC v4 = LDZ((MASK)((1u << (V - 1)) - 1), xs + 4 * V);                    \
                    PYC_RUN_DOWN_##SUF                                                        \
                }                                                                             \
            }                                                                                 \
            ST(y + t, a0); ST(y + t + V, a1); ST(y + t + 2 * V, a2); ST(y + t + 3 * V, a3);   \
        }                                                                                     \
    }                                                                                         \
    return nb;                                                                                \
}
PYC_FIR_RUNS(float, f, __m512, __mmask16, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
             _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps)
PYC_FIR_RUNS(double, d, __m512d, __mmask8, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
             _mm512_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd)
/* The vector loop of pyc_xcorr_1x8 (eight taps of one output) with AVX-512 intrinsics, for
 * taps one input apart (off[j] = off[0] + j): per vector of g, two loads of x shifted into
 * the eight taps' inputs in registers, where the plain loop loads eight (seven of them
 * across two cache lines). The same products into the same accumulators, and their lanes
 * added into s[j] in lane order, as the plain loop does, so the same bits. Returns the
 * outputs done (whole vectors). */
#define PYC_XCORR_RUN(j, ALIGN, TOI, FROMI, FMA)                                               \
    a##j = FMA(gv, FROMI(ALIGN(TOI(v1), TOI(v0), j)), a##j);
#define PYC_XCORR8_RUN(T, SUF, VEC, MASK, LD, LDZ, ST, ZERO, FMA, ALIGN, TOI, FROMI)          \
PYC_TARGET512 static ptrdiff_t pyc_xcorr8_run_##SUF(ptrdiff_t n, const T *restrict g,       \
                                                    const T *restrict x, T *restrict s)       \
{                                                                                             \
    enum { V = 64 / sizeof(T) };                                                              \
    VEC a0 = ZERO(), a1 = ZERO(), a2 = ZERO(), a3 = ZERO(), a4 = ZERO(), a5 = ZERO();         \
    VEC a6 = ZERO(), a7 = ZERO();                                                             \
    ptrdiff_t t = 0;                                                                          \
    for (; t + V <= n; t += V) {                                                              \
        VEC gv = LD(g + t), v0 = LD(x + t), v1 = LDZ((MASK)0x7f, x + t + V);                  \
        a0 = FMA(gv, v0, a0);                                                                 \
        PYC_XCORR_RUN(1, ALIGN, TOI, FROMI, FMA) PYC_XCORR_RUN(2, ALIGN, TOI, FROMI, FMA)     \
        PYC_XCORR_RUN(3, ALIGN, TOI, FROMI, FMA) PYC_XCORR_RUN(4, ALIGN, TOI, FROMI, FMA)     \
        PYC_XCORR_RUN(5, ALIGN, TOI, FROMI, FMA) PYC_XCORR_RUN(6, ALIGN, TOI, FROMI, FMA)     \
        PYC_XCORR_RUN(7, ALIGN, TOI, FROMI, FMA)                                              \
    }                                                                                         \
    T lanes[8][V];                                                                            \
    ST(lanes[0], a0); ST(lanes[1], a1); ST(lanes[2], a2); ST(lanes[3], a3);                   \
    ST(lanes[4], a4); ST(lanes[5], a5); ST(lanes[6], a6); ST(lanes[7], a7);                   \
    for (int j = 0; j < 8; j++)                                                               \
        for (int l = 0; l < V; l++) s[j] += lanes[j][l];                                      \
    return t;                                                                                 \
}
PYC_XCORR8_RUN(float, f, __m512, __mmask16, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
               _mm512_storeu_ps, _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_alignr_epi32,
               _mm512_castps_si512, _mm512_castsi512_ps)
PYC_XCORR8_RUN(double, d, __m512d, __mmask8, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
               _mm512_storeu_pd, _mm512_setzero_pd, _mm512_fmadd_pd, _mm512_alignr_epi64,
               _mm512_castpd_si512, _mm512_castsi512_pd)
/* Whether pyc_xcorr_1x8's eight taps lie one input apart, where pyc_xcorr8_run takes them. */
static inline int pyc_taps_in_a_row(const ptrdiff_t *off)
{
    for (int j = 1; j < 8; j++)
        if (off[j] != off[0] + j) return 0;
    return 1;
}
#define PYC_FIR_RUNS_CALL(SUF, n, K, w, off, x, y) pyc_fir_runs_##SUF(n, K, w, off, x, y)
#define PYC_XCORR8_RUN_OK(off) pyc_taps_in_a_row(off)
#define PYC_XCORR8_RUN_CALL(SUF, n, g, x, s) pyc_xcorr8_run_##SUF(n, g, x, s)
#else
#define PYC_FIR_RUNS_CALL(SUF, n, K, w, off, x, y) 0
#define PYC_XCORR8_RUN_OK(off) 0
#define PYC_XCORR8_RUN_CALL(SUF, n, g, x, s) 0
#endif

/* 1 when the FIR loops run AVX-512 code (an AVX-512 clone, or a build for AVX-512), where
 * 64-byte vectors pay off; else 0 (32-byte vectors, which fit the registers of AVX2 and
 * SSE2 code). */
static int pyc_wide_vectors(void)
{
#if defined(__AVX512F__)
    return 1;
#elif defined(PYC_HAVE_CLONES)
    __builtin_cpu_init();       /* the features x86-64-v4, the clone the loader picks, needs */
    return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512vl")) ? 1 : 0;
#else
    return 0;
#endif
}

/* The branch-free select loop of pyc_max_tap at stride S (a constant for strides 1 and 2, so
 * that the compiler vectorises them). */
#define PYC_MAX_SELECT(T, S)                                                                  \
    for (ptrdiff_t q = 0; q < n; q++) {                                                       \
        T v = x[q * (S)], b = y[q];                                                           \
        int m = (v > b) | (v != v);                                                           \
        y[q] = m ? v : b;                                                                     \
        idx[q] = m ? pos + q * (S) : idx[q];                                                  \
    }

#define PYC_DEFINE(T, SUF, VT, VN)                                                            \
/* y[i] += a * x[i] */                                                                        \
PYC_CLONES static void pyc_axpy_##SUF(ptrdiff_t n, T a, const T *restrict x, T *restrict y) \
{                                                                                             \
    for (ptrdiff_t i = 0; i < n; i++) y[i] += a * x[i];                                       \
}                                                                                             \
/* y[i] += a * x[i*sx] */                                                                     \
PYC_CLONES static void pyc_axpy_sx_##SUF(ptrdiff_t n, T a, const T *restrict x, ptrdiff_t sx, \
                                          T *restrict y)                                      \
{                                                                                             \
    for (ptrdiff_t i = 0; i < n; i++) y[i] += a * x[i * sx];                                  \
}                                                                                             \
/* y[i*sy] += a * x[i] */                                                                     \
PYC_CLONES static void pyc_axpy_sy_##SUF(ptrdiff_t n, T a, const T *restrict x, T *restrict y, \
                                          ptrdiff_t sy)                                       \
{                                                                                             \
    for (ptrdiff_t i = 0; i < n; i++) y[i * sy] += a * x[i];                                  \
}                                                                                             \
/* y[i] += x[i] */                                                                            \
PYC_CLONES static void pyc_add_##SUF(ptrdiff_t n, const T *restrict x, T *restrict y)        \
{                                                                                             \
    for (ptrdiff_t i = 0; i < n; i++) y[i] += x[i];                                           \
}                                                                                             \
/* sum_i a[i] * b[i*sb]: four vector partial sums, combined in a fixed order */              \
PYC_CLONES static T pyc_dot_##SUF(ptrdiff_t n, const T *restrict a, const T *restrict b,     \
                                  ptrdiff_t sb)                                               \
{                                                                                             \
    typedef T vec __attribute__((vector_size(VN * sizeof(T)), aligned(sizeof(T))));          \
    ptrdiff_t i = 0;                                                                          \
    T s = 0;                                                                                  \
    if (sb == 1 && n >= 4 * VN) {                                                             \
        vec p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};                                           \
        for (; i + 4 * VN <= n; i += 4 * VN) {                                                \
            p0 += *(const vec *)(a + i) * *(const vec *)(b + i);                              \
            p1 += *(const vec *)(a + i + VN) * *(const vec *)(b + i + VN);                    \
            p2 += *(const vec *)(a + i + 2 * VN) * *(const vec *)(b + i + 2 * VN);            \
            p3 += *(const vec *)(a + i + 3 * VN) * *(const vec *)(b + i + 3 * VN);            \
        }                                                                                     \
        p0 = (p0 + p1) + (p2 + p3);                                                           \
        for (int j = 0; j < VN; j++) s += p0[j];                                              \
    } else if (n >= 8) {                                                                      \
        T q0 = 0, q1 = 0, q2 = 0, q3 = 0, q4 = 0, q5 = 0, q6 = 0, q7 = 0;                     \
        for (; i + 8 <= n; i += 8) {                                                          \
            q0 += a[i] * b[i * sb];                 q1 += a[i + 1] * b[(i + 1) * sb];         \
            q2 += a[i + 2] * b[(i + 2) * sb];       q3 += a[i + 3] * b[(i + 3) * sb];         \
            q4 += a[i + 4] * b[(i + 4) * sb];       q5 += a[i + 5] * b[(i + 5) * sb];         \
            q6 += a[i + 6] * b[(i + 6) * sb];       q7 += a[i + 7] * b[(i + 7) * sb];         \
        }                                                                                     \
        s = ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7));                                \
    }                                                                                         \
    for (; i < n; i++) s += a[i] * b[i * sb];                                                 \
    return s;                                                                                 \
}                                                                                             \
/* sum_i x[i]: four vector partial sums, combined in a fixed order */                        \
PYC_CLONES static T pyc_sum_##SUF(ptrdiff_t n, const T *restrict x)                         \
{                                                                                             \
    typedef T vec __attribute__((vector_size(VN * sizeof(T)), aligned(sizeof(T))));          \
    ptrdiff_t i = 0;                                                                          \
    T s = 0;                                                                                  \
    if (n >= 4 * VN) {                                                                        \
        vec p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};                                           \
        for (; i + 4 * VN <= n; i += 4 * VN) {                                                \
            p0 += *(const vec *)(x + i);          p1 += *(const vec *)(x + i + VN);           \
            p2 += *(const vec *)(x + i + 2 * VN); p3 += *(const vec *)(x + i + 3 * VN);       \
        }                                                                                     \
        p0 = (p0 + p1) + (p2 + p3);                                                           \
        for (int j = 0; j < VN; j++) s += p0[j];                                              \
    }                                                                                         \
    for (; i < n; i++) s += x[i];                                                             \
    return s;                                                                                 \
}                                                                                             \
/* y[t] += sum_{k<K} w[k] * x[t + off[k]] for t < n, every index valid: an FIR filter with    \
 * arbitrary tap offsets (a kernel row along a signal, or a 2-D kernel over a padded plane).  \
 * Eight accumulators of VB-byte vectors (64 with AVX-512, 32 elsewhere: see pyc_fir8_taps)   \
 * keep eight multiply-add chains in flight, enough to hide their latency; each y[t] sums its \
 * taps in k order, whichever path computes it. */                                            \
PYC_CLONES static void pyc_fir_taps_##SUF(ptrdiff_t n, ptrdiff_t K, const T *restrict w,     \
                                          const ptrdiff_t *restrict off, const T *restrict x, \
                                          T *restrict y, int wide)                            \
{                                                                                             \
    ptrdiff_t t = 0;                                                                          \
    if (wide) {                                                                               \
        if (n >= 256 / (ptrdiff_t)sizeof(T))  /* a block of four vectors: see pyc_fir_runs */ \
            t = PYC_FIR_RUNS_CALL(SUF, n, K, w, off, x, y);                                   \
        PYC_FIR_BODY(T, 64)                                                                   \
    } else {                                                                                  \
        PYC_FIR_BODY(T, 32)                                                                   \
    }                                                                                         \
    for (; t < n; t++) {                                                                      \
        T a = y[t];                                                                           \
        for (ptrdiff_t k = 0; k < K; k++) a += w[k] * x[t + off[k]];                          \
        y[t] = a;                                                                             \
    }                                                                                         \
}                                                                                             \
/* y[m*ys + t] += sum_{k<K} w[m*ws + k] * x[t + off[k]] for t < n, a whole number of          \
 * 64-byte vectors (the caller runs the rest through pyc_fir_taps), and the outputs m < nb    \
 * (1 <= nb <= 8) at once: one load of x serves eight output channels, so the loop runs on    \
 * multiply-adds rather than on loads. With nb < 8, outputs nb..7 repeat output nb - 1 (the   \
 * same sums, stored to the same place): the cost of eight outputs, but eight chains of       \
 * multiply-adds in flight, where pyc_fir_taps on a row shorter than its eight vectors runs   \
 * one. With AVX-512, 64-byte vectors of the eight outputs at once; elsewhere 32-byte        \
 * vectors of four outputs at a time (PYC_FIR_NV: outputs 4..7 only where nb > 4). Each       \
 * y[m*ys + t] sums its taps in k order, as the vector loops of pyc_fir_taps do, so the two   \
 * give the same bits. */                                                                     \
PYC_CLONES static void pyc_fir8_taps_##SUF(ptrdiff_t n, ptrdiff_t K, const T *restrict w,    \
                                           ptrdiff_t ws, const ptrdiff_t *restrict off,       \
                                           const T *restrict x, T *restrict y, ptrdiff_t ys,  \
                                           int nb, int wide)                                  \
{                                                                                             \
    ptrdiff_t t = 0;                                                                          \
    /* outputs m >= nb repeat output nb - 1: the same sums stored to the same place */        \
    ptrdiff_t m1 = nb > 1 ? 1 : nb - 1, m2 = nb > 2 ? 2 : nb - 1, m3 = nb > 3 ? 3 : nb - 1;   \
    ptrdiff_t m4 = nb > 4 ? 4 : nb - 1, m5 = nb > 5 ? 5 : nb - 1, m6 = nb > 6 ? 6 : nb - 1;   \
    ptrdiff_t m7 = nb > 7 ? 7 : nb - 1;                                                       \
    T *y0 = y, *y1 = y + m1 * ys, *y2 = y + m2 * ys, *y3 = y + m3 * ys;                       \
    T *y4 = y + m4 * ys, *y5 = y + m5 * ys, *y6 = y + m6 * ys, *y7 = y + m7 * ys;             \
    const T *w0 = w, *w1 = w + m1 * ws, *w2 = w + m2 * ws, *w3 = w + m3 * ws;                 \
    const T *w4 = w + m4 * ws, *w5 = w + m5 * ws, *w6 = w + m6 * ws, *w7 = w + m7 * ws;       \
    if (wide) {                                                                               \
        PYC_FIR_NV(T, 64, 3, PYC_EACH8)                                                       \
        PYC_FIR_NV(T, 64, 2, PYC_EACH8)                                                       \
        PYC_FIR_NV(T, 64, 1, PYC_EACH8)                                                       \
    } else {                                                                                  \
        ptrdiff_t t0 = t;                                                                     \
        PYC_FIR_NV(T, 32, 3, PYC_EACH4)                                                       \
        PYC_FIR_NV(T, 32, 1, PYC_EACH4)                                                       \
        if (nb > 4) {     /* else outputs 4..7 repeat output nb - 1, done */                  \
            t = t0;                                                                           \
            PYC_FIR_NV(T, 32, 3, PYC_EACH4_HI)                                                \
            PYC_FIR_NV(T, 32, 1, PYC_EACH4_HI)                                                \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
/* One tap of a max pool over `rows` runs of n outputs: output q of run r takes v = x[r*xr +  \
 * q*s], at flat position pos + r*xr + q*s, into y[r*yr + q] / idx[r*yr + q]. first: the     \
 * output is v and its position; else v replaces it when v > y or v is NaN (so the first     \
 * maximum in tap order is kept and a NaN always wins, as PyTorch's CPU kernels). The        \
 * selects have no branches, so random data costs no mispredictions; strides 1 and 2 get     \
 * loops of their own that the compiler vectorises. */                                        \
PYC_CLONES static void pyc_max_tap_##SUF(ptrdiff_t rows, ptrdiff_t n, const T *restrict x,   \
                                         ptrdiff_t xr, ptrdiff_t s, int64_t pos,              \
                                         T *restrict y, int64_t *restrict idx, ptrdiff_t yr,  \
                                         int first)                                           \
{                                                                                             \
    for (ptrdiff_t r = 0; r < rows; r++, x += xr, pos += xr, y += yr, idx += yr) {            \
        if (first) {                                                                          \
            for (ptrdiff_t q = 0; q < n; q++) { y[q] = x[q * s]; idx[q] = pos + q * s; }      \
        } else if (s == 2) {                                                                  \
            PYC_MAX_SELECT(T, 2)                                                              \
        } else if (s == 1) {                                                                  \
            PYC_MAX_SELECT(T, 1)                                                              \
        } else {                                                                              \
            PYC_MAX_SELECT(T, s)                                                              \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
/* dst[i] = src[i*s] */                                                                       \
static inline void pyc_gather_##SUF(ptrdiff_t n, const T *restrict src, ptrdiff_t s,         \
                                    T *restrict dst)                                          \
{                                                                                             \
    if (s == 1) { memcpy(dst, src, (size_t)n * sizeof(T)); return; }                          \
    for (ptrdiff_t i = 0; i < n; i++) dst[i] = src[i * s];                                    \
}

PYC_DEFINE(float, f, v8f, 8)
PYC_DEFINE(double, d, v4d, 4)

/* pyc_phase_split with a column stride of 2 and both column phases: each input row is read
 * once, its even and odd columns going to the two phases' rows in one loop (which the
 * compiler vectorises as loads of two vectors and shuffles), the few columns at the edges
 * (padding, or the one phase past the row's end) one by one. Element (v, m) of phase r
 * holds input column 2*m + r - pl, zero outside the row. */
#define PYC_PHASE2_EDGE(m)                                                                    \
    {                                                                                         \
        ptrdiff_t c_ = 2 * (m) - pl;                                                          \
        r0[m] = c_ >= 0 && c_ < W ? row[c_] : 0;                                              \
        r1[m] = c_ + 1 >= 0 && c_ + 1 < W ? row[c_ + 1] : 0;                                  \
    }
#define PYC_PHASE_SPLIT2(T, SUF)                                                              \
PYC_CLONES static void pyc_phase_split2_##SUF(const T *restrict src, ptrdiff_t H, ptrdiff_t W,\
                                              T *restrict dst, ptrdiff_t Hd, ptrdiff_t Wd,    \
                                              ptrdiff_t sh, ptrdiff_t nh, ptrdiff_t pt,       \
                                              ptrdiff_t pl, ptrdiff_t rs, ptrdiff_t vs)       \
{                                                                                             \
    /* the columns m where both phases' input columns lie in [0, W): [lo, hi) */              \
    ptrdiff_t lo = pl > 0 ? (pl + 1) / 2 : 0, hi = W + pl > 0 ? (W + pl) / 2 : 0;            \
    lo = lo > Wd ? Wd : lo;                                                                   \
    hi = hi > Wd ? Wd : (hi < lo ? lo : hi);                                                  \
    for (ptrdiff_t a = 0; a < nh; a++)                                                        \
        for (ptrdiff_t v = 0; v < Hd; v++) {                                                  \
            T *r0 = dst + 2 * a * rs + v * vs, *r1 = r0 + rs;                                 \
            ptrdiff_t h = v * sh + a - pt;                                                    \
            if (h < 0 || h >= H) {                                                            \
                for (ptrdiff_t m = 0; m < Wd; m++) { r0[m] = 0; r1[m] = 0; }                  \
                continue;                                                                     \
            }                                                                                 \
            const T *row = src + h * W;                                                       \
            for (ptrdiff_t m = 0; m < lo; m++) PYC_PHASE2_EDGE(m)                             \
            const T *s_ = row + 2 * lo - pl;                                                  \
            T *d0 = r0 + lo, *d1 = r1 + lo;                                                   \
            for (ptrdiff_t m = 0; m < hi - lo; m++) { d0[m] = s_[2 * m]; d1[m] = s_[2 * m + 1]; }\
            for (ptrdiff_t m = hi; m < Wd; m++) PYC_PHASE2_EDGE(m)                            \
        }                                                                                     \
}
PYC_PHASE_SPLIT2(float, f)
PYC_PHASE_SPLIT2(double, d)

/* Phase (a, r) of an input plane (H x W at src), zero-padded by pt rows and pl columns, for
 * a < nh and r < nw: the padded plane's rows v*sh + a (v < Hd) and columns m*sw + r
 * (m < Wd), row v at dst + (a*nw + r)*rs + v*vs. The direct forward's strided planes keep
 * each phase whole (rs = Hd*Wd, vs = Wd: _pad_phase_planes in _conv.pyx), the packed tiles'
 * strips each padded row as its sw phases (sh = nh = 1, rs = Wd, vs = sw*Wd). One call a
 * plane, the loops inline: row by row through memset and a gather of variable stride, the
 * split of 28x28 planes took half a stride-2 depthwise forward. A stride of 2 gets its own
 * loop, which the compiler vectorises with shuffles, and with both column phases kept
 * pyc_phase_split2. */
#define PYC_PHASE_ROW(STRIDE)                                                                 \
    for (ptrdiff_t m = m0; m < m1; m++) row[m] = s_[(m - m0) * (STRIDE)];
#define PYC_PHASE_SPLIT(T, SUF)                                                               \
PYC_CLONES static void pyc_phase_split_##SUF(const T *restrict src, ptrdiff_t H, ptrdiff_t W, \
                                             T *restrict dst, ptrdiff_t Hd, ptrdiff_t Wd,     \
                                             ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t nh,        \
                                             ptrdiff_t nw, ptrdiff_t pt, ptrdiff_t pl,        \
                                             ptrdiff_t rs, ptrdiff_t vs)                      \
{                                                                                             \
    if (sw == 2 && nw == 2) {                                                                 \
        pyc_phase_split2_##SUF(src, H, W, dst, Hd, Wd, sh, nh, pt, pl, rs, vs);               \
        return;                                                                               \
    }                                                                                         \
    for (ptrdiff_t a = 0; a < nh; a++)                                                        \
        for (ptrdiff_t r = 0; r < nw; r++) {                                                  \
            /* the columns m whose input column m*sw + r - pl lies in [0, W) */               \
            ptrdiff_t lo = pl - r, hi = W + pl - r;                                           \
            ptrdiff_t m0 = lo <= 0 ? -((-lo) / sw) : (lo + sw - 1) / sw;                      \
            ptrdiff_t m1 = hi <= 0 ? -((-hi) / sw) : (hi + sw - 1) / sw;                      \
            m0 = m0 < 0 ? 0 : (m0 > Wd ? Wd : m0);                                            \
            m1 = m1 > Wd ? Wd : (m1 < m0 ? m0 : m1);                                          \
            T *ph = dst + (a * nw + r) * rs;                                                  \
            for (ptrdiff_t v = 0; v < Hd; v++) {                                              \
                T *row = ph + v * vs;                                                         \
                ptrdiff_t h = v * sh + a - pt;                                                \
                if (h < 0 || h >= H || m1 <= m0) {                                            \
                    for (ptrdiff_t m = 0; m < Wd; m++) row[m] = 0;                            \
                    continue;                                                                 \
                }                                                                             \
                for (ptrdiff_t m = 0; m < m0; m++) row[m] = 0;                                \
                const T *s_ = src + h * W + m0 * sw + r - pl;                                 \
                if (sw == 2) { PYC_PHASE_ROW(2) }                                             \
                else if (sw == 1) { PYC_PHASE_ROW(1) }                                        \
                else { PYC_PHASE_ROW(sw) }                                                    \
                for (ptrdiff_t m = m1; m < Wd; m++) row[m] = 0;                               \
            }                                                                                 \
        }                                                                                     \
}
PYC_PHASE_SPLIT(float, f)
PYC_PHASE_SPLIT(double, d)

/* The inverse for a column stride of 2: a row of W from its two column phases, row[s] = (s +
 * pl even ? p0 : p1)[(s + pl) / 2]. Both phases in one loop, so that the compiler
 * vectorises the interleave (one phase at a time, every other element, stays scalar: the
 * scatter took most of a 3x3 stride-2 depthwise input gradient). */
#define PYC_PHASE_MERGE2(T, SUF)                                                              \
PYC_CLONES static void pyc_phase_merge2_##SUF(const T *restrict p0, const T *restrict p1,     \
                                              ptrdiff_t W, ptrdiff_t pl, T *restrict row)     \
{                                                                                             \
    ptrdiff_t s = 0;                                                                          \
    if (W > 0 && (pl & 1)) { row[0] = p1[pl >> 1]; s = 1; }                                   \
    const T *a = p0 + ((s + pl) >> 1), *b = p1 + ((s + pl) >> 1);                             \
    T *d = row + s;                                                                           \
    ptrdiff_t n = (W - s) >> 1;                                                               \
    for (ptrdiff_t u = 0; u < n; u++) { d[2 * u] = a[u]; d[2 * u + 1] = b[u]; }               \
    if ((W - s) & 1) d[2 * n] = a[n];                                                         \
}
PYC_PHASE_MERGE2(float, f)
PYC_PHASE_MERGE2(double, d)

/* The position of the maximum of x[0..n), n >= 1, by the rule of the scalar loop "from best =
 * -inf at position 0, take v when v > best or v is NaN": the first maximum, or the last NaN
 * if there is one. The largest value and whether there is a NaN come from VN lanes of
 * branch-free selects that the compiler vectorises; the position is then the first one
 * holding that value (or the last NaN), found by a scan with no carried dependency. */
#define PYC_ARGMAX(T, SUF, VN)                                                                \
PYC_CLONES static ptrdiff_t pyc_argmax_##SUF(ptrdiff_t n, const T *restrict x)              \
{                                                                                             \
    T b[VN], best = -INFINITY;                                                                \
    int bad[VN], nan = 0;                                                                     \
    ptrdiff_t t = 0;                                                                          \
    for (int l = 0; l < VN; l++) { b[l] = -INFINITY; bad[l] = 0; }                            \
    for (; t + VN <= n; t += VN)                                                              \
        for (int l = 0; l < VN; l++) {                                                        \
            T v = x[t + l];                                                                   \
            b[l] = v > b[l] ? v : b[l];                                                       \
            bad[l] |= v != v;                                                                 \
        }                                                                                     \
    for (int l = 0; l < VN; l++) { best = b[l] > best ? b[l] : best; nan |= bad[l]; }        \
    for (; t < n; t++) { best = x[t] > best ? x[t] : best; nan |= x[t] != x[t]; }            \
    if (nan) {                                                                                \
        for (t = n - 1; t > 0; t--) if (x[t] != x[t]) break;                                  \
        return t;                                                                             \
    }                                                                                         \
    for (t = 0; t < n - 1; t++) if (x[t] == best) break;                                      \
    return t;                                                                                 \
}

PYC_ARGMAX(float, f, 8)
PYC_ARGMAX(double, d, 4)

/* The vector loop of a correlation tile with VB-byte vectors over outputs I0 <= i < I0 + NP
 * (advances t; adds the lanes of each accumulator, in lane order, into s). */
#define PYC_XCORR_TILE_BODY(T, VB, I0, NP, NJ)                                                \
    {                                                                                         \
        enum { V = VB / sizeof(T) };                                                          \
        typedef T vec __attribute__((vector_size(VB), aligned(sizeof(T))));                   \
        vec a[NP][NJ];                                                                        \
        for (int i = 0; i < NP; i++)                                                          \
            for (int j = 0; j < NJ; j++) a[i][j] = (vec){0};                                  \
        for (; t + V <= n; t += V) {                                                          \
            vec xv[NJ], gv;                                                                   \
            for (int j = 0; j < NJ; j++) xv[j] = *(const vec *)(x + t + off[j]);              \
            for (int i = 0; i < NP; i++) {                                                    \
                gv = *(const vec *)(g + (I0 + i) * gs + t);                                   \
                for (int j = 0; j < NJ; j++) a[i][j] += gv * xv[j];                           \
            }                                                                                 \
        }                                                                                     \
        for (int i = 0; i < NP; i++)                                                          \
            for (int j = 0; j < NJ; j++)                                                      \
                for (int l = 0; l < V; l++) s[I0 + i][j] += a[i][j][l];                       \
    }

/* A tile of the direct weight gradient: out[i*os + j] += sum_{t<n} g[i*gs + t] * x[t + off[j]]
 * for i < NI outputs and j < NJ taps. NI loads of g and NJ of x serve NI*NJ products, in
 * NI*NJ vector accumulators (with 32-byte vectors, a 4x4 tile as two of 2x4, which AVX2's
 * 16 registers hold); each sum takes its terms in a fixed order (vector lanes, then the
 * scalar tail). */
#define PYC_XCORR_TILE(T, SUF, NI, NJ)                                                        \
PYC_CLONES static void pyc_xcorr_##NI##x##NJ##_##SUF(                                         \
    ptrdiff_t n, const T *restrict g, ptrdiff_t gs, const T *restrict x,                      \
    const ptrdiff_t *restrict off, T *restrict out, ptrdiff_t os, int wide)                   \
{                                                                                             \
    T s[NI][NJ];                                                                              \
    ptrdiff_t t = 0;                                                                          \
    for (int i = 0; i < NI; i++)                                                              \
        for (int j = 0; j < NJ; j++) s[i][j] = 0;                                             \
    if (wide && NI == 1 && NJ == 8 && PYC_XCORR8_RUN_OK(off)) {                               \
        t = PYC_XCORR8_RUN_CALL(SUF, n, g, x + off[0], s[0]);                                 \
    } else if (wide) {                                                                        \
        PYC_XCORR_TILE_BODY(T, 64, 0, NI, NJ)                                                 \
    } else if (NI * NJ > 8) {                                                                 \
        /* two outputs at a time: 4x4 accumulators, the inputs and g exceed AVX2's 16 */      \
        ptrdiff_t t0 = t;                                                                     \
        for (int h = 0; h < NI; h += 2) {                                                     \
            t = t0;                                                                           \
            PYC_XCORR_TILE_BODY(T, 32, h, 2, NJ)                                              \
        }                                                                                     \
    } else {                                                                                  \
        PYC_XCORR_TILE_BODY(T, 32, 0, NI, NJ)                                                 \
    }                                                                                         \
    for (; t < n; t++)                                                                        \
        for (int i = 0; i < NI; i++)                                                          \
            for (int j = 0; j < NJ; j++) s[i][j] += g[i * gs + t] * x[t + off[j]];            \
    for (int i = 0; i < NI; i++)                                                              \
        for (int j = 0; j < NJ; j++) out[i * os + j] += s[i][j];                              \
}

/* pyc_xcorr_tile_SUF: the tile of 4 (full_o) or 1 outputs and 4 (full_k) or 1 taps; and
 * pyc_xcorr_1x8_SUF, eight taps of one output (one load of g serves the eight). */
#define PYC_XCORR_TILES(T, SUF)                                                               \
PYC_XCORR_TILE(T, SUF, 1, 8)                                                                  \
PYC_XCORR_TILE(T, SUF, 4, 4)                                                                  \
PYC_XCORR_TILE(T, SUF, 4, 1)                                                                  \
PYC_XCORR_TILE(T, SUF, 1, 4)                                                                  \
PYC_XCORR_TILE(T, SUF, 1, 1)                                                                  \
static inline void pyc_xcorr_tile_##SUF(int full_o, int full_k, ptrdiff_t n,                  \
                                        const T *restrict g, ptrdiff_t gs,                    \
                                        const T *restrict x, const ptrdiff_t *restrict off,   \
                                        T *restrict out, ptrdiff_t os, int wide)              \
{                                                                                             \
    if (full_o && full_k) pyc_xcorr_4x4_##SUF(n, g, gs, x, off, out, os, wide);               \
    else if (full_o) pyc_xcorr_4x1_##SUF(n, g, gs, x, off, out, os, wide);                    \
    else if (full_k) pyc_xcorr_1x4_##SUF(n, g, gs, x, off, out, os, wide);                    \
    else pyc_xcorr_1x1_##SUF(n, g, gs, x, off, out, os, wide);                                \
}

PYC_XCORR_TILES(float, f)
PYC_XCORR_TILES(double, d)

/* The vector loop of pyc_fir3x3_rows with VB-byte vectors and R output rows at once. Input row
 * q (relative to the block's first output row, -2 <= q < R) serves output row r = q + i
 * through tap row i; the rows are visited from the last down, which gives every output its
 * taps in (plane, i, j) order. The pfn bytes at pf are prefetched a few 64-byte lines per
 * step, spread evenly over the steps. */
#define PYC_FIR3X3_BODY(T, VB, R)                                                             \
    {                                                                                         \
        enum { V = VB / sizeof(T) };                                                          \
        typedef T vec __attribute__((vector_size(VB), aligned(sizeof(T))));                   \
        ptrdiff_t iters = (rows / R) * (n / V), lines = (pfn + 63) / 64, li = 0;              \
        ptrdiff_t per = iters > 0 ? (lines + iters - 1) / iters : 0;                          \
        for (ptrdiff_t r0 = 0; r0 + R <= rows; r0 += R) {                                     \
            T *yb = y + r0 * ws;                                                              \
            const T *xb = x + r0 * ws;                                                        \
            for (ptrdiff_t t = 0; t + V <= n; t += V) {                                       \
                vec a[R];                                                                     \
                for (ptrdiff_t k = 0; k < per && li < lines; k++, li++)                       \
                    __builtin_prefetch(pf + li * 64, 0, 2);                                   \
                _Pragma("GCC unroll 8")                                                      \
                for (int r = 0; r < R; r++) a[r] = *(vec *)(yb + r * ws + t);                 \
                for (ptrdiff_t p = 0; p < P; p++) {                                           \
                    const T *wp = w + 9 * p;                                                  \
                    const ptrdiff_t *op = off + 9 * p;                                        \
                    T c[9];                                                                   \
                    _Pragma("GCC unroll 9")                                                  \
                    for (int k = 0; k < 9; k++) c[k] = wp[k];                                 \
                    _Pragma("GCC unroll 10")                                                 \
                    for (int q = R - 1; q >= -2; q--) {                                       \
                        _Pragma("GCC unroll 3")                                              \
                        for (int j = 0; j < 3; j++) {                                         \
                            vec xv = *(const vec *)(xb + t + op[j] + q * ws);                 \
                            _Pragma("GCC unroll 3")                                          \
                            for (int i = 0; i < 3; i++) {                                     \
                                const int r = q + i;                                          \
                                if (r >= 0 && r < R) a[r] += c[3 * i + j] * xv;               \
                            }                                                                 \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
                _Pragma("GCC unroll 8")                                                      \
                for (int r = 0; r < R; r++) *(vec *)(yb + r * ws + t) = a[r];                 \
            }                                                                                 \
        }                                                                                     \
    }

/* pyc_fir_taps for the reversed 3x3 kernels of the input gradient, over rows: y[r*ws + t] +=
 * sum_{p<P} sum_{k<9} w[9p + k] * x[r*ws + t + off[9p + k]] for r < rows (a multiple of 4)
 * and t < n (a multiple of 64 / sizeof(T)), where tap row i of each plane lies i rows of ws
 * elements before its row 0 (off[9p + 3i + j] == off[9p + j] - i*ws). Four output rows run at
 * once: a load of x serves up to three of them, so there are about half as many loads per
 * multiply-add as in pyc_fir_taps, and every output takes its taps in the same order, with
 * the same bits. pf, pfn: memory the caller reads next (NULL, 0: none), prefetched into the
 * cache while the arithmetic runs, so that its loads from memory overlap this filter instead
 * of following it. */
#define PYC_FIR3X3(T, SUF)                                                                    \
PYC_CLONES static void pyc_fir3x3_rows_##SUF(ptrdiff_t n, ptrdiff_t rows, ptrdiff_t ws,       \
                                             ptrdiff_t P, const T *restrict w,                \
                                             const ptrdiff_t *restrict off,                   \
                                             const T *restrict x, T *restrict y, int wide,    \
                                             const char *pf, ptrdiff_t pfn)                   \
{                                                                                             \
    if (wide) PYC_FIR3X3_BODY(T, 64, 4)                                                       \
    else PYC_FIR3X3_BODY(T, 32, 4)                                                            \
}

PYC_FIR3X3(float, f)
PYC_FIR3X3(double, d)

/* Tiles of a stride-1 convolution computed as a GEMM whose unrolled operand is never built
 * (the packed path): out[i*ldo + t] = b[i] + sum_{c<C, k<KK} w[(c*KK + k)*6 + i] *
 * x[c*plane + off[k] + t], for the six filters i < 6 and the positions t < NV vectors of 32
 * bytes, the input read straight from padded rows (off[k]: tap k's offset in a plane). The
 * weights are packed six filters at a time, so that one step of the sum broadcasts six
 * consecutive weights against NV vectors of inputs: 6*NV multiply-adds held in 6*NV
 * registers (12 of AVX2's 16 with NV = 2). b NULL: continue the sums already in out. Every
 * output takes its terms in (c, k) order however the caller splits C or the positions, so
 * the bits depend on neither the blocking nor the threads. */
#define PYC_PG_ROWS(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define PYC_PG_BIAS1(i) vec a##i = b[i] - (vec){};
#define PYC_PG_BIAS2(i) vec a##i = b[i] - (vec){}, c##i = a##i;
#define PYC_PG_LOAD1(i) vec a##i = *(vec *)(out + (i) * ldo);
#define PYC_PG_LOAD2(i) vec a##i = *(vec *)(out + (i) * ldo), c##i = *(vec *)(out + (i) * ldo + V);
#define PYC_PG_STEP1(i) { vec t_ = w[i] - (vec){}; a##i += t_ * xa; }
#define PYC_PG_STEP2(i) { vec t_ = w[i] - (vec){}; a##i += t_ * xa; c##i += t_ * xc; }
#define PYC_PG_STORE1(i) *(vec *)(out + (i) * ldo) = a##i;
#define PYC_PG_STORE2(i) *(vec *)(out + (i) * ldo) = a##i; *(vec *)(out + (i) * ldo + V) = c##i;
#define PYC_PG_LOOP(NV)                                                                       \
    for (ptrdiff_t c = 0; c < C; c++, x += plane)                                             \
        for (ptrdiff_t k = 0; k < KK; k++, w += 6) {                                          \
            __typeof__(x) p_ = x + off[k];                                                    \
            vec xa = *(const vec *)p_;                                                        \
            PYC_PG_LOOP_##NV                                                                  \
        }
#define PYC_PG_LOOP_1 PYC_PG_ROWS(PYC_PG_STEP1)
#define PYC_PG_LOOP_2 vec xc = *(const vec *)(p_ + V); PYC_PG_ROWS(PYC_PG_STEP2)
#define PYC_PGEMM(T, SUF, NV)                                                                 \
PYC_CLONES static void pyc_pgemm##NV##_##SUF(ptrdiff_t C, ptrdiff_t plane, ptrdiff_t KK,      \
                                             const ptrdiff_t *restrict off,                   \
                                             const T *restrict x, const T *restrict w,        \
                                             const T *restrict b, T *restrict out,            \
                                             ptrdiff_t ldo)                                   \
{                                                                                             \
    enum { V = 32 / sizeof(T) };                                                              \
    typedef T vec __attribute__((vector_size(32), aligned(sizeof(T))));                       \
    if (b) {                                                                                  \
        PYC_PG_ROWS(PYC_PG_BIAS##NV)                                                          \
        PYC_PG_LOOP(NV)                                                                       \
        PYC_PG_ROWS(PYC_PG_STORE##NV)                                                         \
    } else {                                                                                  \
        PYC_PG_ROWS(PYC_PG_LOAD##NV)                                                          \
        PYC_PG_LOOP(NV)                                                                       \
        PYC_PG_ROWS(PYC_PG_STORE##NV)                                                         \
    }                                                                                         \
}

PYC_PGEMM(float, f, 1)
PYC_PGEMM(float, f, 2)
PYC_PGEMM(double, d, 1)
PYC_PGEMM(double, d, 2)

/* The tile of nv (1 or 2) vectors of positions. */
#define PYC_PGEMM_NV(T, SUF)                                                                  \
static inline void pyc_pgemm_##SUF(int nv, ptrdiff_t C, ptrdiff_t plane, ptrdiff_t KK,        \
                                   const ptrdiff_t *off, const T *x, const T *w, const T *b,  \
                                   T *out, ptrdiff_t ldo)                                     \
{                                                                                             \
    if (nv == 2) pyc_pgemm2_##SUF(C, plane, KK, off, x, w, b, out, ldo);                      \
    else pyc_pgemm1_##SUF(C, plane, KK, off, x, w, b, out, ldo);                              \
}
PYC_PGEMM_NV(float, f)
PYC_PGEMM_NV(double, d)

/* Depthwise convolution over a block of channels stored channel-minor (the direct forward of
 * depthwise layers: one input and one output channel per group). pyc_dw_pack copies nc <= V
 * input planes (H x W, plane elements apart) into buf as a zero-padded Hp x Wp plane of
 * V-channel vectors, element (r, s, c) at buf[(r*Wp + s)*V + c] = x[c][r - pt][s - pl], zero
 * outside x and for channels c >= nc; V = 32 / sizeof(T). pyc_dw_conv then computes
 * y[c][p*Wo + q] = b[c] + sum_k w[k*V + c] * buf[(p*sh*Wp + q*sw)*V + off[k] + c] over the KK
 * taps k in order, eight outputs of a row at a time, each an aligned vector of V channels
 * (strides and dilations are only other offsets), and writes them back to the nc output
 * planes (P elements apart) through an in-register transpose. Over planes in NCHW, small
 * planes spent most of their time around the filter (padding a plane, filling and copying out
 * short rows: four fifths of a 3x3 depthwise forward over 28x28 planes); here every tap of
 * every output is one aligned load and one multiply-add. Each output sums bias then taps in
 * k order, as pyc_fir_taps does over a padded plane: the same bits (in float64 the padded
 * planes left some edge outputs to loops without fused multiply-adds; here all have them). */
/* The V x V transposes of the vectors r[0..V-1] (r[k][c] = old r[c][k]) in place: 8 x 8 floats
 * or 4 x 4 doubles, in the shuffles of the unpack/shuffle/permute pattern; macros, so that
 * each clone compiles them for its own instruction set. */
#define PYC_SHUF8(A, B, m0, m1, m2, m3, m4, m5, m6, m7)                                       \
    __builtin_shuffle(A, B, (pyc_m8){m0, m1, m2, m3, m4, m5, m6, m7})
#define PYC_DW_T_f(r)                                                                         \
    {                                                                                         \
        typedef int32_t pyc_m8 __attribute__((vector_size(32)));                              \
        __typeof__(r[0]) t_[8], u_[8];                                                        \
        for (int i_ = 0; i_ < 8; i_ += 2) {                                                   \
            t_[i_] = PYC_SHUF8(r[i_], r[i_ + 1], 0, 8, 1, 9, 4, 12, 5, 13);                   \
            t_[i_ + 1] = PYC_SHUF8(r[i_], r[i_ + 1], 2, 10, 3, 11, 6, 14, 7, 15);             \
        }                                                                                     \
        for (int i_ = 0; i_ < 8; i_ += 4) {                                                   \
            u_[i_] = PYC_SHUF8(t_[i_], t_[i_ + 2], 0, 1, 8, 9, 4, 5, 12, 13);                 \
            u_[i_ + 1] = PYC_SHUF8(t_[i_], t_[i_ + 2], 2, 3, 10, 11, 6, 7, 14, 15);           \
            u_[i_ + 2] = PYC_SHUF8(t_[i_ + 1], t_[i_ + 3], 0, 1, 8, 9, 4, 5, 12, 13);         \
            u_[i_ + 3] = PYC_SHUF8(t_[i_ + 1], t_[i_ + 3], 2, 3, 10, 11, 6, 7, 14, 15);       \
        }                                                                                     \
        for (int i_ = 0; i_ < 4; i_++) {                                                      \
            r[i_] = PYC_SHUF8(u_[i_], u_[i_ + 4], 0, 1, 2, 3, 8, 9, 10, 11);                  \
            r[i_ + 4] = PYC_SHUF8(u_[i_], u_[i_ + 4], 4, 5, 6, 7, 12, 13, 14, 15);            \
        }                                                                                     \
    }
#define PYC_DW_T_d(r)                                                                         \
    {                                                                                         \
        typedef int64_t pyc_m4 __attribute__((vector_size(32)));                              \
        __typeof__(r[0]) t0_ = __builtin_shuffle(r[0], r[1], (pyc_m4){0, 4, 2, 6});           \
        __typeof__(r[0]) t1_ = __builtin_shuffle(r[0], r[1], (pyc_m4){1, 5, 3, 7});           \
        __typeof__(r[0]) t2_ = __builtin_shuffle(r[2], r[3], (pyc_m4){0, 4, 2, 6});           \
        __typeof__(r[0]) t3_ = __builtin_shuffle(r[2], r[3], (pyc_m4){1, 5, 3, 7});           \
        r[0] = __builtin_shuffle(t0_, t2_, (pyc_m4){0, 1, 4, 5});                             \
        r[2] = __builtin_shuffle(t0_, t2_, (pyc_m4){2, 3, 6, 7});                             \
        r[1] = __builtin_shuffle(t1_, t3_, (pyc_m4){0, 1, 4, 5});                             \
        r[3] = __builtin_shuffle(t1_, t3_, (pyc_m4){2, 3, 6, 7});                             \
    }
/* The V vectors r[0..V-1] (r[u] = V channels of position u) transposed and stored to nc
 * planes: dst[c*stride + u] = r[u][c], whole vectors when nc == V. */
#define PYC_DW_PUT(SUF, r, dst, stride, nc)                                                   \
    {                                                                                         \
        PYC_DW_T_##SUF(r);                                                                    \
        if ((nc) == V) {                                                                      \
            for (int c_ = 0; c_ < V; c_++) *(vec *)((dst) + c_ * (stride)) = r[c_];           \
        } else {                                                                              \
            for (ptrdiff_t c_ = 0; c_ < (nc); c_++)                                           \
                for (int u_ = 0; u_ < V; u_++) (dst)[c_ * (stride) + u_] = r[c_][u_];         \
        }                                                                                     \
    }
#define PYC_DW_ACC(u) avec a##u = bv;
#define PYC_DW_MAC(u) a##u += wv * *(const avec *)(xk + (u) * xs);
#define PYC_DW_SAVE(u) acc[u] = a##u;
/* acc[u] = the outputs q + u of the row (NB of them: 8 or 4), each of V channels */
#define PYC_DW_SUMS(NB)                                                                       \
    PYC_EACH##NB(PYC_DW_ACC)                                                                  \
    for (ptrdiff_t k = 0; k < KK; k++) {                                                      \
        const avec wv = *(const avec *)(w + k * V);                                           \
        const __typeof__(*row) *xk = row + q * xs + off[k];                                   \
        PYC_EACH##NB(PYC_DW_MAC)                                                              \
    }                                                                                         \
    PYC_EACH##NB(PYC_DW_SAVE)
#define PYC_DW(T, SUF)                                                                        \
PYC_CLONES static void pyc_dw_pack_##SUF(const T *restrict x, ptrdiff_t nc, ptrdiff_t plane,  \
                                         ptrdiff_t H, ptrdiff_t W, T *restrict buf,           \
                                         ptrdiff_t Hp, ptrdiff_t Wp, ptrdiff_t pt,            \
                                         ptrdiff_t pl)                                        \
{                                                                                             \
    enum { V = 32 / sizeof(T) };                                                              \
    typedef T vec __attribute__((vector_size(32), aligned(sizeof(T))));                       \
    typedef T avec __attribute__((vector_size(32)));                                          \
    /* the input rows and columns that land in the buffer */                                  \
    ptrdiff_t r0 = pt < 0 ? -pt : 0, r1 = Hp - pt < H ? Hp - pt : H;                          \
    ptrdiff_t s0 = pl < 0 ? -pl : 0, s1 = Wp - pl < W ? Wp - pl : W;                          \
    if (nc < V || r1 <= r0 || s1 <= s0) {                                                     \
        memset(buf, 0, (size_t)(Hp * Wp * V) * sizeof(T));                                   \
    } else {                                                                                  \
        /* the border only: rows above and below, columns left and right */                   \
        memset(buf, 0, (size_t)((r0 + pt) * Wp * V) * sizeof(T));                             \
        memset(buf + (r1 + pt) * Wp * V, 0, (size_t)((Hp - r1 - pt) * Wp * V) * sizeof(T));   \
        for (ptrdiff_t r = r0; r < r1; r++) {                                                 \
            T *d = buf + (r + pt) * Wp * V;                                                   \
            memset(d, 0, (size_t)((s0 + pl) * V) * sizeof(T));                                \
            memset(d + (s1 + pl) * V, 0, (size_t)((Wp - s1 - pl) * V) * sizeof(T));           \
        }                                                                                     \
    }                                                                                         \
    if (r1 <= r0 || s1 <= s0) return;                                                         \
    for (ptrdiff_t r = r0; r < r1; r++) {                                                     \
        T *d = buf + ((r + pt) * Wp + pl) * V;                                                \
        const T *src = x + r * W;                                                             \
        ptrdiff_t s = s0;                                                                     \
        for (; s + V <= s1; s += V) {                                                         \
            avec t[V];                                                                        \
            for (int c = 0; c < V; c++)                                                       \
                t[c] = c < nc ? *(const vec *)(src + c * plane + s) : (avec){};               \
            PYC_DW_T_##SUF(t);                                                                \
            for (int k = 0; k < V; k++) *(avec *)(d + (s + k) * V) = t[k];                    \
        }                                                                                     \
        for (; s < s1; s++)                                                                   \
            for (ptrdiff_t c = 0; c < nc; c++) d[s * V + c] = src[c * plane + s];             \
    }                                                                                         \
}                                                                                             \
PYC_CLONES static void pyc_dw_conv_##SUF(const T *restrict buf, ptrdiff_t Wp, ptrdiff_t KK,   \
                                         const ptrdiff_t *restrict off, const T *restrict w,  \
                                         const T *restrict b, ptrdiff_t sh, ptrdiff_t sw,     \
                                         ptrdiff_t Ho, ptrdiff_t Wo, T *restrict y,           \
                                         ptrdiff_t P, ptrdiff_t nc)                           \
{                                                                                             \
    enum { V = 32 / sizeof(T) };                                                              \
    typedef T vec __attribute__((vector_size(32), aligned(sizeof(T))));                       \
    typedef T avec __attribute__((vector_size(32)));                                          \
    const avec bv = *(const avec *)b;                                                         \
    const ptrdiff_t xs = sw * V;                                                              \
    for (ptrdiff_t p = 0; p < Ho; p++) {                                                      \
        const T *row = buf + p * sh * Wp * V;                                                 \
        T *yr = y + p * Wo;                                                                   \
        /* blocks of eight outputs, the last one ending at the row's end (it recomputes    \
         * some outputs of the block before: the same values); rows of fewer, four and one */\
        for (ptrdiff_t q = 0; q < Wo; q += 8) {                                               \
            q = q + 8 <= Wo ? q : Wo - 8;                                                     \
            if (q < 0) break;                                                                 \
            avec acc[8];                                                                      \
            PYC_DW_SUMS(8)                                                                    \
            for (int h = 0; h < 8; h += V) {                                                  \
                avec *blk_ = acc + h;                                                         \
                PYC_DW_PUT(SUF, blk_, yr + q + h, P, nc)                                      \
            }                                                                                 \
        }                                                                                     \
        if (Wo >= 8) continue;                                                                \
        for (ptrdiff_t q = 0; q < Wo; q += 4) {                                               \
            q = q + 4 <= Wo ? q : Wo - 4;                                                     \
            if (q < 0) break;                                                                 \
            avec acc[4];                                                                      \
            PYC_DW_SUMS(4)                                                                    \
            for (ptrdiff_t c = 0; c < nc; c++)                                                \
                for (int u = 0; u < 4; u++) yr[c * P + q + u] = acc[u][c];                    \
        }                                                                                     \
        if (Wo >= 4) continue;                                                                \
        for (ptrdiff_t q = 0; q < Wo; q++) {                                                  \
            avec a = bv;                                                                      \
            for (ptrdiff_t k = 0; k < KK; k++)                                                \
                a += *(const avec *)(w + k * V) * *(const avec *)(row + q * xs + off[k]);    \
            for (ptrdiff_t c = 0; c < nc; c++) yr[c * P + q] = a[c];                          \
        }                                                                                     \
    }                                                                                         \
}
PYC_DW(float, f)
PYC_DW(double, d)

/* The weight sums of a depthwise layer over one sample's block of channels, in the layout of
 * pyc_dw_conv: part[k*V + c] = sum_{p, q} g[(p*gs + q)*V + c] * buf[(p*sh*Wn + q*sw)*V +
 * off[k] + c] for the KK taps k (g: grad_output's Ho x Wo plane of channel vectors, rows gs
 * vectors apart, so that it may lie inside a padded plane; buf: the input's padded plane;
 * part needs no alignment). Taps go six at a time, each with two accumulators (the even and the
 * odd outputs of a row, added at the end): twelve chains of multiply-adds in flight, one load
 * of grad_output serving six taps. The order of every sum depends on the shape alone. */
#define PYC_K1(M) M(0)
#define PYC_K2(M) PYC_K1(M) M(1)
#define PYC_K3(M) PYC_K2(M) M(2)
#define PYC_K4(M) PYC_K3(M) M(3)
#define PYC_K5(M) PYC_K4(M) M(4)
#define PYC_K6(M) PYC_K5(M) M(5)
#define PYC_DWC_ZERO(j) avec a##j = (avec){}, b##j = (avec){};
#define PYC_DWC_MAC2(j)                                                                       \
    a##j += g0 * *(const avec *)(x0 + o##j); b##j += g1 * *(const avec *)(x0 + xs + o##j);
#define PYC_DWC_MAC1(j) a##j += g0 * *(const avec *)(x0 + o##j);
#define PYC_DWC_OFF(j) const ptrdiff_t o##j = off[k0 + (j)];
#define PYC_DWC_OUT(j) *(vec *)(part + (k0 + (j)) * V) = a##j + b##j;
#define PYC_DWC_BODY(NK)                                                                      \
    {                                                                                         \
        PYC_K##NK(PYC_DWC_OFF)                                                                \
        PYC_K##NK(PYC_DWC_ZERO)                                                               \
        for (ptrdiff_t p = 0; p < Ho; p++) {                                                  \
            const dwc_t *gr = g + p * gs * V, *row = buf + p * sh * Wn * V;                   \
            ptrdiff_t q = 0;                                                                  \
            for (; q + 2 <= Wo; q += 2) {                                                     \
                const avec g0 = *(const avec *)(gr + q * V), g1 = *(const avec *)(gr + q * V + V);\
                const dwc_t *x0 = row + q * xs;                                               \
                PYC_K##NK(PYC_DWC_MAC2)                                                       \
            }                                                                                 \
            if (q < Wo) {                                                                     \
                const avec g0 = *(const avec *)(gr + q * V);                                  \
                const dwc_t *x0 = row + q * xs;                                               \
                PYC_K##NK(PYC_DWC_MAC1)                                                       \
            }                                                                                 \
        }                                                                                     \
        PYC_K##NK(PYC_DWC_OUT)                                                                \
    }
#define PYC_DW_CORR(T, SUF)                                                                   \
PYC_CLONES static void pyc_dw_corr_##SUF(const T *restrict g, ptrdiff_t gs, ptrdiff_t Ho,    \
                                         ptrdiff_t Wo, const T *restrict buf, ptrdiff_t Wn,   \
                                         ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t KK,            \
                                         const ptrdiff_t *restrict off, T *restrict part)     \
{                                                                                             \
    enum { V = 32 / sizeof(T) };                                                              \
    typedef T vec __attribute__((vector_size(32), aligned(sizeof(T))));                       \
    typedef T avec __attribute__((vector_size(32)));                                          \
    typedef T dwc_t;                                                                          \
    const ptrdiff_t xs = sw * V;                                                              \
    for (ptrdiff_t k0 = 0; k0 < KK; k0 += 6) {                                                \
        switch (KK - k0 < 6 ? KK - k0 : 6) {                                                  \
        case 1: PYC_DWC_BODY(1) break;                                                        \
        case 2: PYC_DWC_BODY(2) break;                                                        \
        case 3: PYC_DWC_BODY(3) break;                                                        \
        case 4: PYC_DWC_BODY(4) break;                                                        \
        case 5: PYC_DWC_BODY(5) break;                                                        \
        default: PYC_DWC_BODY(6) break;                                                       \
        }                                                                                     \
    }                                                                                         \
}
PYC_DW_CORR(float, f)
PYC_DW_CORR(double, d)

/* The input gradient of a strided depthwise layer in the layout of pyc_dw_conv, by scatter:
 * buf (the input's padded plane of channel vectors, Wn wide, zeroed by the caller) gets
 * buf[(p*sh*Wn + q*sw)*V + off[k] + c] += w[k*V + c] * g[(p*Wo + q)*V + c] for every output
 * (p, q) and tap k, output row by output row, tap by tap, the outputs of a row four at a
 * time (one tap's targets are distinct, so the read-modify-writes do not wait on each
 * other): each element sums its terms in (p, k) order. pyc_dw_unpack then writes the nc
 * planes (H x W, plane elements apart) from buf's rows and columns from (pt, pl), zero
 * where they lie past buf (inputs no output reads). */
#define PYC_DW_SCATTER(T, SUF)                                                                \
PYC_CLONES static void pyc_dw_scatter_##SUF(const T *restrict g, ptrdiff_t Ho, ptrdiff_t Wo,  \
                                            T *restrict buf, ptrdiff_t Wn, ptrdiff_t sh,      \
                                            ptrdiff_t sw, ptrdiff_t KK,                       \
                                            const ptrdiff_t *restrict off,                    \
                                            const T *restrict w)                              \
{                                                                                             \
    enum { V = 32 / sizeof(T) };                                                              \
    typedef T avec __attribute__((vector_size(32)));                                          \
    const ptrdiff_t xs = sw * V;                                                              \
    for (ptrdiff_t p = 0; p < Ho; p++) {                                                      \
        const T *gr = g + p * Wo * V;                                                         \
        for (ptrdiff_t k = 0; k < KK; k++) {                                                  \
            const avec wv = *(const avec *)(w + k * V);                                       \
            T *d = buf + p * sh * Wn * V + off[k];                                            \
            ptrdiff_t q = 0;                                                                  \
            for (; q + 4 <= Wo; q += 4) {                                                     \
                *(avec *)(d + q * xs) += wv * *(const avec *)(gr + q * V);                    \
                *(avec *)(d + (q + 1) * xs) += wv * *(const avec *)(gr + (q + 1) * V);        \
                *(avec *)(d + (q + 2) * xs) += wv * *(const avec *)(gr + (q + 2) * V);        \
                *(avec *)(d + (q + 3) * xs) += wv * *(const avec *)(gr + (q + 3) * V);        \
            }                                                                                 \
            for (; q < Wo; q++) *(avec *)(d + q * xs) += wv * *(const avec *)(gr + q * V);    \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
PYC_CLONES static void pyc_dw_unpack_##SUF(const T *restrict buf, ptrdiff_t Hn, ptrdiff_t Wn,\
                                           ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t H,          \
                                           ptrdiff_t W, ptrdiff_t nc, T *restrict x,          \
                                           ptrdiff_t plane)                                   \
{                                                                                             \
    enum { V = 32 / sizeof(T) };                                                              \
    typedef T vec __attribute__((vector_size(32), aligned(sizeof(T))));                       \
    typedef T avec __attribute__((vector_size(32)));                                          \
    /* the columns s whose buffer column s + pl lies inside it: [0, s1) */                    \
    ptrdiff_t s1 = Wn - pl < W ? Wn - pl : W;                                                 \
    s1 = s1 < 0 ? 0 : s1;                                                                     \
    for (ptrdiff_t r = 0; r < H; r++) {                                                       \
        T *dst = x + r * W;                                                                   \
        if (r + pt >= Hn) {                                                                   \
            for (ptrdiff_t c = 0; c < nc; c++) memset(dst + c * plane, 0, W * sizeof(T));     \
            continue;                                                                         \
        }                                                                                     \
        const T *src = buf + ((r + pt) * Wn + pl) * V;                                        \
        ptrdiff_t s = 0;                                                                      \
        for (; s + V <= s1; s += V) {                                                         \
            avec t[V];                                                                        \
            for (int k = 0; k < V; k++) t[k] = *(const avec *)(src + (s + k) * V);            \
            PYC_DW_PUT(SUF, t, dst + s, plane, nc)                                            \
        }                                                                                     \
        for (; s < s1; s++)                                                                   \
            for (ptrdiff_t c = 0; c < nc; c++) dst[c * plane + s] = src[s * V + c];           \
        for (ptrdiff_t c = 0; c < nc; c++)                                                    \
            for (ptrdiff_t u = s1; u < W; u++) dst[c * plane + u] = 0;                        \
    }                                                                                         \
}
PYC_DW_SCATTER(float, f)
PYC_DW_SCATTER(double, d)

/* The weight gradient over vectors of output channels (grad_weight_vec): for one sample, a
 * block of nv*V outputs of a group (nv = 1 or 2; V = 32 / sizeof(T)) and the J pairs j of an
 * input channel and a tap, part[(j*nv + v)*V + l] += sum_{p<Ho, q<Wo} G[v*Ho*Wo*V + (p*Wo +
 * q)*V + l] * x[xoff[j] + p*sh*Wp + q*sw]. G holds the block's grad_output planes as vectors
 * of V channels (pyc_dw_pack, 32-byte aligned); x the group's input planes, zero-padded (or
 * in place where nothing pads them), rows Wp apart, xoff[j] the offset of pair j's tap in
 * them. Each step of the sum broadcasts one input element against the block's nv vectors of
 * grad_output: tiles of 6 pairs x 2 vectors or 10 pairs x 1 (12 or 10 accumulators of AVX2's
 * 16 registers, one load of G and one broadcast per pair; the last tile holds the pairs
 * left), over at most PYC_GWV_COLS outputs of a row at a time, so that G's and x's rows stay
 * in the L1 cache for all the tiles. Every sum takes the outputs in (p, q) order: its bits
 * depend on the shape alone. Where the layers' weight gradient is a GEMM of M = outputs, N =
 * pairs and a long K = pixels, with few pairs (conv2d over 1-4 channels, grouped layers of
 * a few channels per group), the unroll and the planes' tiles ran 16-26 GFLOP/s in float32;
 * this loop runs about 60-85 from the L1 cache on AVX2 (Zen 3, one core). */
#define PYC_GWV_COLS 512
#define PYC_GWV_TILE(NV, NJ)                                                                  \
    {                                                                                         \
        avec a[NV][NJ];                                                                       \
        const gwv_t *b[NJ];                                                                   \
        gwv_t *pj = part + jt * NV * V;                                                       \
        _Pragma("GCC unroll 10")                                                              \
        for (int j = 0; j < NJ; j++) {                                                        \
            b[j] = xr + xoff[jt + j];                                                         \
            _Pragma("GCC unroll 2")                                                           \
            for (int v = 0; v < NV; v++) a[v][j] = *(const vec *)(pj + (j * NV + v) * V);     \
        }                                                                                     \
        for (ptrdiff_t q = 0, i = 0; q < n; q++, i += sw) {                                   \
            const avec g0 = *(const avec *)(g0r + q * V);                                     \
            const avec g1 = NV > 1 ? *(const avec *)(g1r + q * V) : g0;                       \
            _Pragma("GCC unroll 10")                                                          \
            for (int j = 0; j < NJ; j++) {                                                    \
                const gwv_t s = b[j][i];                                                      \
                a[0][j] += g0 * s;                                                            \
                if (NV > 1) a[NV - 1][j] += g1 * s;                                           \
            }                                                                                 \
        }                                                                                     \
        _Pragma("GCC unroll 10")                                                              \
        for (int j = 0; j < NJ; j++)                                                          \
            _Pragma("GCC unroll 2")                                                           \
            for (int v = 0; v < NV; v++) *(vec *)(pj + (j * NV + v) * V) = a[v][j];           \
    }
#define PYC_GWV(T, SUF)                                                                       \
PYC_CLONES static void pyc_gwv_##SUF(const T *restrict G, ptrdiff_t nv, ptrdiff_t Ho,         \
                                     ptrdiff_t Wo, const T *restrict x, ptrdiff_t Wp,         \
                                     ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t J,                 \
                                     const ptrdiff_t *restrict xoff, T *restrict part)        \
{                                                                                             \
    enum { V = 32 / sizeof(T) };                                                              \
    typedef T vec __attribute__((vector_size(32), aligned(sizeof(T))));                       \
    typedef T avec __attribute__((vector_size(32)));                                          \
    typedef T gwv_t;                                                                          \
    for (ptrdiff_t p = 0; p < Ho; p++) {                                                      \
        for (ptrdiff_t q0 = 0; q0 < Wo; q0 += PYC_GWV_COLS) {                                 \
            const ptrdiff_t n = Wo - q0 < PYC_GWV_COLS ? Wo - q0 : PYC_GWV_COLS;              \
            const T *g0r = G + (p * Wo + q0) * V, *g1r = g0r + Ho * Wo * V;                   \
            const T *xr = x + p * sh * Wp + q0 * sw;                                          \
            for (ptrdiff_t jt = 0; jt < J; jt += nv == 2 ? 6 : 10) {                          \
                const ptrdiff_t r = J - jt;                                                   \
                if (nv == 2) {                                                                \
                    switch (r < 6 ? r : 6) {                                                  \
                    case 1: PYC_GWV_TILE(2, 1) break;                                         \
                    case 2: PYC_GWV_TILE(2, 2) break;                                         \
                    case 3: PYC_GWV_TILE(2, 3) break;                                         \
                    case 4: PYC_GWV_TILE(2, 4) break;                                         \
                    case 5: PYC_GWV_TILE(2, 5) break;                                         \
                    default: PYC_GWV_TILE(2, 6) break;                                        \
                    }                                                                         \
                } else if (r >= 10) {                                                         \
                    PYC_GWV_TILE(1, 10)                                                       \
                } else {                                                                      \
                    switch (r) {                                                              \
                    case 1: PYC_GWV_TILE(1, 1) break;                                         \
                    case 2: PYC_GWV_TILE(1, 2) break;                                         \
                    case 3: PYC_GWV_TILE(1, 3) break;                                         \
                    case 4: PYC_GWV_TILE(1, 4) break;                                         \
                    case 5: PYC_GWV_TILE(1, 5) break;                                         \
                    case 6: PYC_GWV_TILE(1, 6) break;                                         \
                    case 7: PYC_GWV_TILE(1, 7) break;                                         \
                    case 8: PYC_GWV_TILE(1, 8) break;                                         \
                    default: PYC_GWV_TILE(1, 9) break;                                        \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}
PYC_GWV(float, f)
PYC_GWV(double, d)

/* Winograd's transforms: out[r*ldo + t] = sum_{a < A} mat[r*A + a] * in[a*ldi + t] for r < R
 * (R, A <= 8), t < n. A vector of t's A inputs is loaded once for all R rows; each element's
 * products are summed in the order a = 0, 1, ..., whatever n is. */
#define PYC_MIX(T, SUF, VN)                                                                   \
PYC_CLONES static void pyc_mix_##SUF(ptrdiff_t n, ptrdiff_t R, ptrdiff_t A,                   \
                                     const T *restrict mat, const T *restrict in,             \
                                     ptrdiff_t ldi, T *restrict out, ptrdiff_t ldo)           \
{                                                                                             \
    typedef T vec __attribute__((vector_size(VN * sizeof(T)), aligned(sizeof(T))));          \
    ptrdiff_t t = 0;                                                                          \
    for (; t + VN <= n; t += VN) {                                                            \
        vec x[8];                                                                             \
        for (ptrdiff_t a = 0; a < A; a++) x[a] = *(const vec *)(in + a * ldi + t);            \
        for (ptrdiff_t r = 0; r < R; r++) {                                                   \
            const T *m = mat + r * A;                                                         \
            vec acc = m[0] * x[0];                                                            \
            for (ptrdiff_t a = 1; a < A; a++) acc += m[a] * x[a];                             \
            *(vec *)(out + r * ldo + t) = acc;                                                \
        }                                                                                     \
    }                                                                                         \
    for (; t < n; t++)                                                                        \
        for (ptrdiff_t r = 0; r < R; r++) {                                                   \
            const T *m = mat + r * A;                                                         \
            T acc = m[0] * in[t];                                                             \
            for (ptrdiff_t a = 1; a < A; a++) acc += m[a] * in[a * ldi + t];                  \
            out[r * ldo + t] = acc;                                                           \
        }                                                                                     \
}
PYC_MIX(float, f, 8)
PYC_MIX(double, d, 4)

/* 1 when the CPU runs the AVX2+FMA (x86-64-v3) code of the clones or the build: where the
 * packed path's tiles fit the 16 vector registers; else 0. With clones, the test the loader
 * makes for the x86-64-v3 clone (GCC 12+; before, its main features). */
static int pyc_fma_vectors(void)
{
#if defined(__AVX2__) && defined(__FMA__)
    return 1;
#elif defined(PYC_HAVE_CLONES)
    __builtin_cpu_init();
#if __GNUC__ >= 12
    return __builtin_cpu_supports("x86-64-v3") ? 1 : 0;
#else
    return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2")) ? 1 : 0;
#endif
#else
    return 0;
#endif
}

#endif
