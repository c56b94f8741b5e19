# cython: language_level=3
"""Convolution kernels, forward, input gradient and weight gradient (fused float32/float64).

One set of 2-D kernels serves conv1d and conv2d: a 1-D convolution is a 2-D one with a single
row (H = KH = 1), so both share every optimisation and every test.

Layouts, all C-contiguous::

    x  (N, C_in, H, W)               input
    w  (C_out, C_in/groups, KH, KW)  weight
    y  (N, C_out, H_out, W_out)      output
    g  (N, C_out, H_out, W_out)      gradient of the loss with respect to y

With Cg = C_in/groups, Og = C_out/groups and gr = o // Og the group of output channel o::

    y[n, o, p, q]   = b[o] + sum_{c, i, j} w[o, c, i, j]
                          * x[n, gr*Cg + c, p*sh + i*dh - pad_top, q*sw + j*dw - pad_left]
    gx[n, gr*Cg + c, p*sh + i*dh - pad_top, q*sw + j*dw - pad_left]
                    += sum_{o in gr} w[o, c, i, j] * g[n, o, p, q]
    gw[o, c, i, j]  = sum_{n, p, q} g[n, o, p, q]
                          * x[n, gr*Cg + c, p*sh + i*dh - pad_top, q*sw + j*dw - pad_left]

Indices outside the input read as zero; the padding is never materialised.

Two algorithms here, chosen by the caller (pyconv1d.functional documents the cost model; the
third, the FFT, lives in pyconv1d/_fft.py):

* direct: FIR-style loops over the taps with vectorised row updates (src/_simd.h); 2-D
  kernels with unit strides, and the forward and input gradient of conv1d rows whose
  channels mix, run over zero-padded copies of the planes (rows), the taps of a chunk of
  input channels in one pass, eight outputs per load (four with AVX2) (a conv1d row of one
  input channel, or of one grad_output plane, reads its inside stretch in place); a single
  filter with AVX-512 loads each run of a kernel row's inputs once and shifts it in
  registers; the 2-D weight gradient correlates tiles of 4 grad_output planes with 4 taps.
  Work is split over (sample, channel) planes; best for depthwise, grouped, few-channel and
  (unit strides) mid-channel shapes.
* gemm: "unroll + matmul". A block of output pixels (or of several whole samples, when planes
  are small) is unrolled into a (Cg*KH*KW, T) matrix in a per-thread scratch buffer (im2col),
  then one BLAS gemm per block computes y[block, group] = w[group] @ cols. The input gradient
  is w[group]^T @ g followed by the reverse unroll (col2im); the weight gradient is
  g @ cols^T summed over blocks. With a column stride, the input is first split into its
  stride phases so that every unrolled row is a contiguous copy. The caller may run the
  forward (and with unit strides, as the convolution of g with the flipped kernel, the input
  gradient) by forward_packed instead: GEMM tiles that read the unrolled operand in place
  from zero-padded strips of the input (see "packed algorithm" below).

Determinism: every output element is produced by exactly one job, jobs are defined by the shape
alone (block sizes and reduction chunks never depend on the thread count), each job runs
sequentially, and BLAS runs single-threaded inside a job (the caller limits it). The gemm jobs
are handed out dynamically, which changes which thread runs a job, never what it computes; the
weight gradient of the gemm path sums per-chunk partials in chunk order. So results are bitwise
identical for every thread count.

The kernels check nothing; the caller validates every argument, allocates the outputs (y holds
the bias) and passes scratch buffers of the sizes given by the *_scratch functions. Every output
element is written by the job that owns it (the input gradient's jobs zero their planes where
they add into them), so no output needs zeroing beforehand, outside the parallel jobs.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.limits cimport INT_MAX
from libc.math cimport isfinite
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

from _omp cimport PYCONV1D_HAVE_OPENMP, omp_get_max_threads

cdef extern from "_simd.h" nogil:
    void pyc_axpy_f(Py_ssize_t n, float a, const float* x, float* y)
    void pyc_axpy_d(Py_ssize_t n, double a, const double* x, double* y)
    void pyc_axpy_sx_f(Py_ssize_t n, float a, const float* x, Py_ssize_t sx, float* y)
    void pyc_axpy_sx_d(Py_ssize_t n, double a, const double* x, Py_ssize_t sx, double* y)
    void pyc_axpy_sy_f(Py_ssize_t n, float a, const float* x, float* y, Py_ssize_t sy)
    void pyc_axpy_sy_d(Py_ssize_t n, double a, const double* x, double* y, Py_ssize_t sy)
    void pyc_add_f(Py_ssize_t n, const float* x, float* y)
    void pyc_add_d(Py_ssize_t n, const double* x, double* y)
    float pyc_dot_f(Py_ssize_t n, const float* a, const float* b, Py_ssize_t sb)
    double pyc_dot_d(Py_ssize_t n, const double* a, const double* b, Py_ssize_t sb)
    void pyc_fir_taps_f(Py_ssize_t n, Py_ssize_t K, const float* w, const Py_ssize_t* off,
                        const float* x, float* y, int wide)
    void pyc_fir_taps_d(Py_ssize_t n, Py_ssize_t K, const double* w, const Py_ssize_t* off,
                        const double* x, double* y, int wide)
    void pyc_fir8_taps_f(Py_ssize_t n, Py_ssize_t K, const float* w, Py_ssize_t ws,
                         const Py_ssize_t* off, const float* x, float* y, Py_ssize_t ys,
                         int nb, int wide)
    void pyc_fir8_taps_d(Py_ssize_t n, Py_ssize_t K, const double* w, Py_ssize_t ws,
                         const Py_ssize_t* off, const double* x, double* y, Py_ssize_t ys,
                         int nb, int wide)
    void pyc_fir3x3_rows_f(Py_ssize_t n, Py_ssize_t rows, Py_ssize_t ws, Py_ssize_t P,
                           const float* w, const Py_ssize_t* off, const float* x, float* y,
                           int wide, const char* pf, Py_ssize_t pfn)
    void pyc_fir3x3_rows_d(Py_ssize_t n, Py_ssize_t rows, Py_ssize_t ws, Py_ssize_t P,
                           const double* w, const Py_ssize_t* off, const double* x, double* y,
                           int wide, const char* pf, Py_ssize_t pfn)
    int pyc_wide_vectors()
    float pyc_sum_f(Py_ssize_t n, const float* x)
    double pyc_sum_d(Py_ssize_t n, const double* x)
    void pyc_xcorr_1x8_f(Py_ssize_t n, const float* g, Py_ssize_t gs, const float* x,
                         const Py_ssize_t* off, float* out, Py_ssize_t os, int wide)
    void pyc_xcorr_1x8_d(Py_ssize_t n, const double* g, Py_ssize_t gs, const double* x,
                         const Py_ssize_t* off, double* out, Py_ssize_t os, int wide)
    void pyc_xcorr_tile_f(int full_o, int full_k, Py_ssize_t n, const float* g, Py_ssize_t gs,
                          const float* x, const Py_ssize_t* off, float* out, Py_ssize_t os,
                          int wide)
    void pyc_xcorr_tile_d(int full_o, int full_k, Py_ssize_t n, const double* g,
                          Py_ssize_t gs, const double* x, const Py_ssize_t* off, double* out,
                          Py_ssize_t os, int wide)
    void pyc_gather_f(Py_ssize_t n, const float* src, Py_ssize_t s, float* dst)
    void pyc_gather_d(Py_ssize_t n, const double* src, Py_ssize_t s, double* dst)
    void pyc_phase_split_f(const float* src, Py_ssize_t H, Py_ssize_t W, float* dst,
                           Py_ssize_t Hd, Py_ssize_t Wd, Py_ssize_t sh, Py_ssize_t sw,
                           Py_ssize_t nh, Py_ssize_t nw, Py_ssize_t pt, Py_ssize_t pl,
                           Py_ssize_t rs, Py_ssize_t vs)
    void pyc_phase_split_d(const double* src, Py_ssize_t H, Py_ssize_t W, double* dst,
                           Py_ssize_t Hd, Py_ssize_t Wd, Py_ssize_t sh, Py_ssize_t sw,
                           Py_ssize_t nh, Py_ssize_t nw, Py_ssize_t pt, Py_ssize_t pl,
                           Py_ssize_t rs, Py_ssize_t vs)
    void pyc_phase_merge2_f(const float* p0, const float* p1, Py_ssize_t W, Py_ssize_t pl,
                            float* row)
    void pyc_phase_merge2_d(const double* p0, const double* p1, Py_ssize_t W, Py_ssize_t pl,
                            double* row)
    void pyc_pgemm_f(int nv, Py_ssize_t C, Py_ssize_t plane, Py_ssize_t KK,
                     const Py_ssize_t* off, const float* x, const float* w, const float* b,
                     float* out, Py_ssize_t ldo)
    void pyc_pgemm_d(int nv, Py_ssize_t C, Py_ssize_t plane, Py_ssize_t KK,
                     const Py_ssize_t* off, const double* x, const double* w, const double* b,
                     double* out, Py_ssize_t ldo)
    int pyc_fma_vectors()
    void pyc_dw_scatter_f(const float* g, Py_ssize_t Ho, Py_ssize_t Wo, float* buf,
                          Py_ssize_t Wn, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t KK,
                          const Py_ssize_t* off, const float* w)
    void pyc_dw_scatter_d(const double* g, Py_ssize_t Ho, Py_ssize_t Wo, double* buf,
                          Py_ssize_t Wn, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t KK,
                          const Py_ssize_t* off, const double* w)
    void pyc_dw_unpack_f(const float* buf, Py_ssize_t Hn, Py_ssize_t Wn, Py_ssize_t pt,
                         Py_ssize_t pl, Py_ssize_t H, Py_ssize_t W, Py_ssize_t nc, float* x,
                         Py_ssize_t plane)
    void pyc_dw_unpack_d(const double* buf, Py_ssize_t Hn, Py_ssize_t Wn, Py_ssize_t pt,
                         Py_ssize_t pl, Py_ssize_t H, Py_ssize_t W, Py_ssize_t nc, double* x,
                         Py_ssize_t plane)
    void pyc_dw_corr_f(const float* g, Py_ssize_t gs, Py_ssize_t Ho, Py_ssize_t Wo,
                       const float* buf, Py_ssize_t Wn, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t KK, const Py_ssize_t* off, float* part)
    void pyc_dw_corr_d(const double* g, Py_ssize_t gs, Py_ssize_t Ho, Py_ssize_t Wo,
                       const double* buf, Py_ssize_t Wn, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t KK, const Py_ssize_t* off, double* part)
    void pyc_dw_pack_f(const float* x, Py_ssize_t nc, Py_ssize_t plane, Py_ssize_t H,
                       Py_ssize_t W, float* buf, Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t pt,
                       Py_ssize_t pl)
    void pyc_dw_pack_d(const double* x, Py_ssize_t nc, Py_ssize_t plane, Py_ssize_t H,
                       Py_ssize_t W, double* buf, Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t pt,
                       Py_ssize_t pl)
    void pyc_dw_conv_f(const float* buf, Py_ssize_t Wp, Py_ssize_t KK, const Py_ssize_t* off,
                       const float* w, const float* b, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t Ho, Py_ssize_t Wo, float* y, Py_ssize_t P, Py_ssize_t nc)
    void pyc_dw_conv_d(const double* buf, Py_ssize_t Wp, Py_ssize_t KK, const Py_ssize_t* off,
                       const double* w, const double* b, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t Ho, Py_ssize_t Wo, double* y, Py_ssize_t P, Py_ssize_t nc)
    void pyc_gwv_f(const float* G, Py_ssize_t nv, Py_ssize_t Ho, Py_ssize_t Wo, const float* x,
                   Py_ssize_t Wp, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t J,
                   const Py_ssize_t* xoff, float* part)
    void pyc_gwv_d(const double* G, Py_ssize_t nv, Py_ssize_t Ho, Py_ssize_t Wo, const double* x,
                   Py_ssize_t Wp, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t J,
                   const Py_ssize_t* xoff, double* part)
    void pyc_mix_f(Py_ssize_t n, Py_ssize_t R, Py_ssize_t A, const float* mat, const float* inp,
                   Py_ssize_t ldi, float* out, Py_ssize_t ldo)
    void pyc_mix_d(Py_ssize_t n, Py_ssize_t R, Py_ssize_t A, const double* mat,
                   const double* inp, Py_ssize_t ldi, double* out, Py_ssize_t ldo)

cdef enum:
    # bytes of the unrolled block each thread works on. Wider blocks mean fewer gemm calls,
    # each of which packs the weight again: measured here on dense conv1d layers (textcnn,
    # dilated, mel80), 1 << 22 runs float64 10-25% and float32 fwd+bwd 5-8% faster than
    # 1 << 20 (which was 5-35% faster than 1 << 19); 1 << 23 gains nothing more
    BLOCK_BYTES = 1 << 22
    # the gemm weight gradient splits its sum over (sample, block) into at most this many
    # chunks, whatever the thread count; when its blocks would make fewer jobs than that, of
    # at least SPLIT_FLOPS each, it takes blocks of fewer samples (_grad_weight_geom) or
    # splits each chunk by input channels (_grad_weight_channels)
    REDUCE_CHUNKS = 16
    SPLIT_FLOPS = 1 << 27
    # taps of a kernel row that the direct weight gradient computes together
    TAP_BLOCK = 8
    # planes the padded-plane path filters together (pyc_fir8_taps), and the fewest jobs a
    # call must keep for it to do so (a constant: the blocking never depends on the threads)
    PLANE_BLOCK = 8
    PLANE_MIN_JOBS = 16
    # bytes of padded input planes the direct 2-D forward filters in one pass
    CHUNK_BYTES = 1 << 17
    # the most bytes of padded planes per thread the direct forward (input gradient) keeps
    # for a sample, padded once for all its blocks of outputs (inputs)
    PAD_ONCE_BYTES = 1 << 21
    # the longest output rows of a conv1d whose channels mix that run over padded rows
    ROW_PLANE_MAX_OUT = 4096
    # elements past a padded plane and its filter's span, so that the FIR loops run whole
    # vectors only (the extra outputs are dropped): one AVX-512 vector of float32
    SLACK = 16
    # fir_planes runs a rest of 4-7 filters as eight (pyc_fir8_taps; measured on 3x3 kernels
    # over 16 channels of 20x52: 4 filters 1.17x, 3 even, 2 0.87x the speed of one at a time),
    # and one of 2-3 on spans shorter than this, where pyc_fir_taps has fewer than eight vectors
    # of outputs to keep its chains busy (a 300 -> 100 conv1d over rows of 64, 4 left over:
    # the whole forward 1.2x)
    FIR8_REST_MAX_N = 128
    # Py_ssize_t entries between two threads' tags (_thread_tags): a 64-byte cache line
    TAG_STRIDE = 8
    # the blocked depthwise forward (_dw_path): the fewest channels, and the most bytes of its
    # padded plane of channel vectors (per thread)
    DW_MIN_CHANNELS = 2
    DW_MAX_BYTES = 1 << 19

cdef int WIDE = pyc_wide_vectors()
#: PLANE_BLOCK and ROW_PLANE_MAX_OUT, for pyconv1d.functional's cost model
PLANE_BLOCK_SIZE = PLANE_BLOCK
ROW_PLANE_MAX_OUTPUTS = ROW_PLANE_MAX_OUT


def openmp_enabled():
    """True when this module was compiled with OpenMP."""
    return bool(PYCONV1D_HAVE_OPENMP)


def fma_vectors():
    """True when this CPU runs the kernels' AVX2+FMA code (x86-64-v3, or AVX-512, which has
    it too): where the packed path's tiles (forward_packed) fit the vector registers."""
    return bool(pyc_fma_vectors())


def wide_vectors():
    """True when the direct path's loops run on 64-byte (AVX-512) vectors on this CPU: the
    module was compiled for AVX-512, or its AVX-512 clone is the one the loader picked."""
    return bool(WIDE)


def max_threads():
    """OpenMP's default team size (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return omp_get_max_threads()


# ----------------------------------------------------------------------------------------------
# small helpers

cdef struct Geom:
    Py_ssize_t N, C_in, H, W, C_out, Cg, Og, KH, KW, H_out, W_out
    Py_ssize_t sh, sw, pt, pl, dh, dw, groups
    Py_ssize_t KK       # Cg * KH * KW, the reduction length of one output
    Py_ssize_t P        # H_out * W_out, output pixels per plane
    Py_ssize_t T        # output pixels of one plane per gemm block
    Py_ssize_t NB       # gemm blocks per plane
    Py_ssize_t S        # whole samples per gemm block when a plane is smaller than a block
    Py_ssize_t TC       # columns of one unrolled block: S * T
    Py_ssize_t NU       # gemm blocks in all
    Py_ssize_t itemsize # bytes per element


cdef inline void tap_range(Py_ssize_t off, Py_ssize_t L, Py_ssize_t L_out, Py_ssize_t s,
                           Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Outputs t in [lo, hi) whose input index t*s + off falls inside [0, L)."""
    cdef Py_ssize_t a = 0, b
    if s == 1:      # no division on the unit-stride path of the unroll
        a = -off if off < 0 else 0
        b = min(max(L - off, 0), L_out)
        lo[0] = a
        hi[0] = b if b > a else a
        return
    if off < 0:
        a = (-off + s - 1) // s
    if L - 1 - off < 0:
        b = 0
    else:
        b = (L - 1 - off) // s + 1
    if b > L_out:
        b = L_out
    if b < a:
        b = a
    lo[0] = a
    hi[0] = b


cdef inline void axpy(Py_ssize_t n, floating a, const floating* x, floating* y) noexcept nogil:
    if floating is float:
        pyc_axpy_f(n, a, x, y)
    else:
        pyc_axpy_d(n, a, x, y)


cdef inline void axpy_sx(Py_ssize_t n, floating a, const floating* x, Py_ssize_t sx,
                         floating* y) noexcept nogil:
    if sx == 1:
        axpy(n, a, x, y)
    elif floating is float:
        pyc_axpy_sx_f(n, a, x, sx, y)
    else:
        pyc_axpy_sx_d(n, a, x, sx, y)


cdef inline void axpy_sy(Py_ssize_t n, floating a, const floating* x, floating* y,
                         Py_ssize_t sy) noexcept nogil:
    if sy == 1:
        axpy(n, a, x, y)
    elif floating is float:
        pyc_axpy_sy_f(n, a, x, y, sy)
    else:
        pyc_axpy_sy_d(n, a, x, y, sy)


cdef inline void mix(Py_ssize_t n, Py_ssize_t R, Py_ssize_t A, const floating* mat,
                     const floating* inp, Py_ssize_t ldi, floating* out,
                     Py_ssize_t ldo) noexcept nogil:
    """out[r*ldo + t] = sum_{a < A} mat[r*A + a] * inp[a*ldi + t], r < R, t < n."""
    if floating is float:
        pyc_mix_f(n, R, A, mat, inp, ldi, out, ldo)
    else:
        pyc_mix_d(n, R, A, mat, inp, ldi, out, ldo)


cdef inline void add_sy(Py_ssize_t n, const floating* x, floating* y,
                        Py_ssize_t sy) noexcept nogil:
    """y[i*sy] += x[i]"""
    if sy != 1:
        axpy_sy(n, <floating>1, x, y, sy)
    elif floating is float:
        pyc_add_f(n, x, y)
    else:
        pyc_add_d(n, x, y)


cdef inline floating dot(Py_ssize_t n, const floating* a, const floating* b,
                         Py_ssize_t sb) noexcept nogil:
    if floating is float:
        return pyc_dot_f(n, a, b, sb)
    else:
        return pyc_dot_d(n, a, b, sb)


cdef inline void xcorr8(Py_ssize_t n, const floating* g, const floating* x, Py_ssize_t d,
                        floating* out) noexcept nogil:
    """out[j] += sum_{q<n} g[q] * x[q + j*d] for j < 8 (all indices valid): xcorr_taps8
    with evenly spaced taps."""
    cdef Py_ssize_t off[8]
    cdef int j
    for j in range(8):
        off[j] = j * d
    xcorr_taps8(n, g, x, off, out)


cdef inline void fir_taps(Py_ssize_t n, Py_ssize_t K, const floating* w, const Py_ssize_t* off,
                          const floating* x, floating* y) noexcept nogil:
    """y[t] += sum_k w[k] * x[t + off[k]] for t < n."""
    if floating is float:
        pyc_fir_taps_f(n, K, w, off, x, y, WIDE)
    else:
        pyc_fir_taps_d(n, K, w, off, x, y, WIDE)


cdef void fir_planes(Py_ssize_t nb, Py_ssize_t n, Py_ssize_t K, const floating* w,
                     Py_ssize_t ws, const Py_ssize_t* off, const floating* x, floating* y,
                     Py_ssize_t ys, Py_ssize_t rows=0, Py_ssize_t cols=0,
                     Py_ssize_t Wp=0, const void* pf=NULL, Py_ssize_t pfn=0) noexcept nogil:
    """fir_taps for nb filters (w + m*ws) into nb outputs (y + m*ys) over the same input x,
    eight at a time; the same bits as nb calls of fir_taps. With rows > 0 (the input gradient's
    reversed 3x3 kernels without row dilation, on rows of cols outputs Wp apart, Wp at least
    cols rounded up to whole 64-byte vectors: _gi_wp) the filters left over run four rows at a
    time (pyc_fir3x3_rows, over those whole vectors) and the rows after the last four over the
    flat span, with the same bits; the first of them prefetches the pfn bytes at pf (the
    memory the caller reads next) while it computes.

    pyc_fir8_taps runs whole 64-byte vectors only; the outputs past the last (t >= nv) go
    through fir_taps filter by filter: the two kernels' scalar loops may contract their
    multiply-adds differently (GCC does, for float64 with AVX2), their vector loops do not."""
    cdef Py_ssize_t m = 0, j, nb8, r4 = (rows // 4) * 4, nv = n - n % (64 // sizeof(floating))
    while m < nb:
        # eight filters, or the rest together repeating the last (see pyc_fir8_taps)
        nb8 = min(8, nb - m)
        if nb8 < 8 and (rows > 0 or nb8 < 2 or (nb8 < 4 and n >= FIR8_REST_MAX_N)):
            break
        if floating is float:
            pyc_fir8_taps_f(nv, K, w + m * ws, ws, off, x, y + m * ys, ys, <int>nb8, WIDE)
        else:
            pyc_fir8_taps_d(nv, K, w + m * ws, ws, off, x, y + m * ys, ys, <int>nb8, WIDE)
        if nv < n:
            for j in range(m, m + nb8):
                fir_taps(n - nv, K, w + j * ws, off, x + nv, y + j * ys + nv)
        m = m + nb8
    while m < nb:
        if r4 > 0:
            if floating is float:
                pyc_fir3x3_rows_f((cols + 15) // 16 * 16, r4, Wp, K // 9, w + m * ws, off, x,
                                  y + m * ys, WIDE, <const char*>pf, pfn)
            else:
                pyc_fir3x3_rows_d((cols + 7) // 8 * 8, r4, Wp, K // 9, w + m * ws, off, x,
                                  y + m * ys, WIDE, <const char*>pf, pfn)
            pfn = 0
        fir_taps(n - r4 * Wp, K, w + m * ws, off, x + r4 * Wp, y + m * ys + r4 * Wp)
        m = m + 1


cdef inline void xcorr_taps8(Py_ssize_t n, const floating* g, const floating* x,
                             const Py_ssize_t* off, floating* out) noexcept nogil:
    """out[j] += sum_t g[t] * x[t + off[j]] for j < 8 (the 1 x 8 correlation tile)."""
    if floating is float:
        pyc_xcorr_1x8_f(n, g, 0, x, off, out, 1, WIDE)
    else:
        pyc_xcorr_1x8_d(n, g, 0, x, off, out, 1, WIDE)


cdef inline void fill(Py_ssize_t n, floating v, floating* y) noexcept nogil:
    """y[i] = v"""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = v


cdef inline floating plane_sum(Py_ssize_t n, const floating* x) noexcept nogil:
    """The sum of x[:n] with vector partial sums (pyc_sum): one plane of grad_bias."""
    if floating is float:
        return pyc_sum_f(n, x)
    else:
        return pyc_sum_d(n, x)


cdef inline void shift_copy(Py_ssize_t n, floating v, const floating* x,
                            floating* y) noexcept nogil:
    """y[i] = v + x[i]"""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = v + x[i]


cdef inline void gather(Py_ssize_t n, const floating* src, Py_ssize_t s,
                        floating* dst) noexcept nogil:
    if floating is float:
        pyc_gather_f(n, src, s, dst)
    else:
        pyc_gather_d(n, src, s, dst)


cdef Py_ssize_t GEMM_MAX_LD = INT_MAX


def _gemm_max_ld(Py_ssize_t n):
    """Sets the largest leading dimension gemm() hands BLAS (for the tests, which cannot make
    planes of 2**31 elements); returns the one it replaces."""
    global GEMM_MAX_LD
    old, GEMM_MAX_LD = GEMM_MAX_LD, max(n, 1)
    return old


cdef void gemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
               floating alpha, const floating* A, Py_ssize_t lda,
               const floating* B, Py_ssize_t ldb, floating beta,
               floating* C, Py_ssize_t ldc) noexcept nogil:
    """Row-major C (M x N) = alpha * op(A) (M x K) @ op(B) (K x N) + beta * C.

    BLAS is column-major, where a row-major matrix is its transpose: C^T = op(B)^T op(A)^T.
    Its leading dimensions are ints: a leading dimension past GEMM_MAX_LD (the rows of an
    output plane of 2**31 elements or more, passed as one matrix) is split off, one row or
    column of C at a time, or as rank-one updates along K (BLAS refused the call and left C
    as it was: zeros where the plane came out)."""
    cdef Py_ssize_t i
    # (a matrix of one row or column needs no leading dimension beyond its length: the calls
    # below pass that, and a split stops there)
    if M > 1 and (ldc > GEMM_MAX_LD or (not trans_a and lda > GEMM_MAX_LD)):  # rows of C
        for i in range(M):
            gemm(trans_a, trans_b, 1, N, K, alpha, A + (i if trans_a else i * lda),
                 lda if trans_a else K, B, ldb, beta, C + i * ldc, N)
        return
    if N > 1 and trans_b and ldb > GEMM_MAX_LD:                       # by columns of C
        for i in range(N):
            gemm(trans_a, trans_b, M, 1, K, alpha, A, lda, B + i * ldb, K, beta, C + i, ldc)
        return
    if K > 1 and ((trans_a and lda > GEMM_MAX_LD)
                  or (not trans_b and ldb > GEMM_MAX_LD)):             # rank-one updates
        for i in range(K):
            gemm(trans_a, trans_b, M, N, 1, alpha, A + (i * lda if trans_a else i),
                 M if trans_a else lda, B + (i if trans_b else i * ldb),
                 ldb if trans_b else N, beta if i == 0 else 1, C, ldc)
        return
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int m = <int>N, n = <int>M, k = <int>K
    cdef int la = <int>lda, lb = <int>ldb, lc = <int>ldc
    if floating is float:
        sgemm(&tb, &ta, &m, &n, &k, &alpha, <float*>B, &lb, <float*>A, &la, &beta, C, &lc)
    else:
        dgemm(&tb, &ta, &m, &n, &k, &alpha, <double*>B, &lb, <double*>A, &la, &beta, C, &lc)


cdef Geom make_geom(const Py_ssize_t* xshape, const Py_ssize_t* wshape,
                    const Py_ssize_t* yshape, Py_ssize_t sh, Py_ssize_t sw,
                    Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                    Py_ssize_t groups, Py_ssize_t itemsize) noexcept:
    cdef Geom g
    g.N, g.C_in, g.H, g.W = xshape[0], xshape[1], xshape[2], xshape[3]
    g.C_out, g.Cg, g.KH, g.KW = wshape[0], wshape[1], wshape[2], wshape[3]
    g.H_out, g.W_out = yshape[2], yshape[3]
    g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.groups = sh, sw, pt, pl, dh, dw, groups
    g.itemsize = itemsize
    g.Og = g.C_out // groups
    g.KK = g.Cg * g.KH * g.KW
    g.P = g.H_out * g.W_out
    # Blocks depend on the shape alone. A plane larger than a block is cut into NB blocks; small
    # planes (short sentences, narrow spectrograms) are grouped, S whole samples to a block, so
    # that the matrix product stays wide enough to run near the machine's peak.
    g.T = max(16, BLOCK_BYTES // (itemsize * g.KK))
    g.S = 1
    if g.T >= g.P:
        if g.P > 0:
            # ... but keep at least 8 blocks when the batch allows, to share out among threads
            g.S = max(1, min(g.N // 8, g.T // g.P))
        g.T = g.P
    g.NB = (g.P + g.T - 1) // g.T if g.P > 0 else 0
    g.TC = g.S * g.T
    g.NU = g.N * g.NB if g.S == 1 else (g.N + g.S - 1) // g.S
    return g


cdef Geom _grad_weight_geom(Geom g) noexcept:
    """The blocks of the gemm weight gradient: make_geom's (g), unless they hold several
    samples each and make fewer than REDUCE_CHUNKS jobs (groups x blocks) of at least
    SPLIT_FLOPS each; then blocks of fewer samples, for about REDUCE_CHUNKS jobs (mel80-k5:
    8 blocks of 2 samples, 0.4 GFLOP each, become 16 of one)."""
    cdef Py_ssize_t units = (REDUCE_CHUNKS + g.groups - 1) // g.groups
    if g.S == 1 or g.NU >= units or 2.0 * g.Og * g.KK * g.N * g.P / g.NU < SPLIT_FLOPS:
        return g
    g.S = max(1, g.N // units)
    g.NU = (g.N + g.S - 1) // g.S
    g.TC = g.S * g.T
    return g


cdef Geom shape_geom(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                     Py_ssize_t itemsize):
    """The geometry of a call from its shapes and (sh, sw, pt, pl, dh, dw, groups), for sizing
    scratch buffers."""
    cdef Py_ssize_t xs[4]
    cdef Py_ssize_t ws[4]
    cdef Py_ssize_t ys[4]
    cdef int i
    for i in range(4):
        xs[i] = xshape[i]
        ws[i] = wshape[i]
        ys[i] = yshape[i]
    sh, sw, pt, pl, dh, dw, groups = geometry
    return make_geom(xs, ws, ys, sh, sw, pt, pl, dh, dw, groups, itemsize)


# ----------------------------------------------------------------------------------------------
# direct algorithm

cdef void _direct_forward_plane(const floating* x, const floating* w, floating* y,
                                const Py_ssize_t* off, Geom* g) noexcept nogil:
    """One (n, o) output plane: y[p, q] += sum_{c,i,j} w[c,i,j] * x[c, p*sh+i*dh-pt, q*sw+j*dw-pl].

    With a unit column stride, the columns where every tap of a kernel row lands inside the
    input run as one FIR filter over the row (src/_simd.h; off: tap_offsets OFF_ROW_FORWARD);
    the edges, tap by tap."""
    cdef Py_ssize_t c, i, j, p, offh, offw, plo, phi, qlo, qhi, ilo = 0, ihi = 0, a, b, tmp
    cdef const floating* xr
    cdef floating* yr
    cdef const floating* wr
    if g.sw == 1:
        tap_range(-g.pl, g.W, g.W_out, 1, &ilo, &tmp)                       # first tap
        tap_range((g.KW - 1) * g.dw - g.pl, g.W, g.W_out, 1, &tmp, &ihi)   # last tap
        if ihi < ilo:
            ihi = ilo
    for c in range(g.Cg):
        for i in range(g.KH):
            offh = i * g.dh - g.pt
            tap_range(offh, g.H, g.H_out, g.sh, &plo, &phi)
            wr = w + (c * g.KH + i) * g.KW
            for p in range(plo, phi):
                xr = x + (c * g.H + p * g.sh + offh) * g.W
                yr = y + p * g.W_out
                if g.sw == 1 and ihi > ilo:
                    fir_taps(ihi - ilo, g.KW, wr, off, xr + ilo - g.pl, yr + ilo)
                for j in range(g.KW):
                    offw = j * g.dw - g.pl
                    tap_range(offw, g.W, g.W_out, g.sw, &qlo, &qhi)
                    if g.sw == 1 and ihi > ilo:
                        # the columns left and right of the FIR's range
                        b = min(qhi, ilo)
                        if b > qlo:
                            axpy(b - qlo, wr[j], xr + qlo + offw, yr + qlo)
                        a = max(qlo, ihi)
                        if qhi > a:
                            axpy(qhi - a, wr[j], xr + a + offw, yr + a)
                    elif qhi > qlo:
                        axpy_sx(qhi - qlo, wr[j], xr + qlo * g.sw + offw, g.sw, yr + qlo)


cdef void _direct_grad_input_plane(const floating* go, const floating* w, floating* gx,
                                   const Py_ssize_t* off, Geom* g) noexcept nogil:
    """One (n, input channel) plane: scatter w[o, c, i, j] * g[o, p, q] back onto gx.

    With a unit column stride, gx[u] += sum_j w[j] * g[u - j*dw + pl] is an FIR filter with the
    kernel row reversed (off: tap_offsets OFF_ROW_GRAD_INPUT) over the columns u where every
    tap lands inside g; the edges go tap by tap."""
    cdef Py_ssize_t o, i, j, p, offh, offw, plo, phi, qlo, qhi, ulo = 0, uhi = 0, a, b
    cdef const floating* gr
    cdef floating* xr
    cdef const floating* wr
    if g.sw == 1:
        ulo = max(0, (g.KW - 1) * g.dw - g.pl)
        uhi = min(g.W, g.W_out - g.pl)
        if uhi < ulo:
            uhi = ulo
    for o in range(g.Og):
        for i in range(g.KH):
            offh = i * g.dh - g.pt
            tap_range(offh, g.H, g.H_out, g.sh, &plo, &phi)
            wr = w + (o * g.Cg * g.KH + i) * g.KW
            for p in range(plo, phi):
                gr = go + (o * g.H_out + p) * g.W_out
                xr = gx + (p * g.sh + offh) * g.W
                if g.sw == 1 and uhi > ulo:
                    fir_taps(uhi - ulo, g.KW, wr, off, gr + ulo - (g.KW - 1) * g.dw + g.pl,
                             xr + ulo)
                for j in range(g.KW):
                    offw = j * g.dw - g.pl
                    tap_range(offw, g.W, g.W_out, g.sw, &qlo, &qhi)
                    if g.sw == 1 and uhi > ulo:
                        # outputs q whose target u = q + offw lies outside [ulo, uhi)
                        b = min(qhi, ulo - offw)
                        if b > qlo:
                            axpy(b - qlo, wr[j], gr + qlo, xr + qlo + offw)
                        a = max(qlo, uhi - offw)
                        if qhi > a:
                            axpy(qhi - a, wr[j], gr + a, xr + a + offw)
                    elif qhi > qlo:
                        axpy_sy(qhi - qlo, wr[j], gr + qlo, xr + qlo * g.sw + offw, g.sw)


cdef void _direct_grad_weight_taps(const floating* go, const floating* x, floating* out,
                                   Geom* g, Py_ssize_t i, Py_ssize_t j0,
                                   Py_ssize_t nj) noexcept nogil:
    """out[j - j0] = sum_{n, p, q} g[n, o, p, q] * x[n, c, p*sh + i*dh - pt, q*sw + j*dw - pl]
    for the taps j0 <= j < j0 + nj (nj <= 8) of kernel row i (go and x point at plane (0, o)
    and (0, c)).

    With a unit column stride, the columns where eight taps from j0 on land inside the input
    run through one vectorised pass (src/_simd.h; a block of fewer than eight taps computes the
    missing ones into a throw-away buffer) and the edges tap by tap; otherwise each tap is a dot
    product. Every out[j] sums the same terms in the same order whatever the thread count."""
    cdef Py_ssize_t n, p, j, offh, plo, phi, qlo, qhi, ilo = 0, ihi = 0, a, b, tmp, offw
    cdef const floating* gr
    cdef const floating* xr
    cdef floating acc8[8]
    cdef bint block = g.sw == 1
    for j in range(nj):
        out[j] = 0
    offh = i * g.dh - g.pt
    tap_range(offh, g.H, g.H_out, g.sh, &plo, &phi)
    if block:
        tap_range(j0 * g.dw - g.pl, g.W, g.W_out, 1, &ilo, &tmp)
        tap_range((j0 + TAP_BLOCK - 1) * g.dw - g.pl, g.W, g.W_out, 1, &tmp, &ihi)
        if ihi < ilo:
            ihi = ilo
    for n in range(g.N):
        for p in range(plo, phi):
            gr = go + n * g.C_out * g.P + p * g.W_out
            xr = x + n * g.C_in * g.H * g.W + (p * g.sh + offh) * g.W
            if block and ihi > ilo:
                if nj == TAP_BLOCK:
                    xcorr8(ihi - ilo, gr + ilo, xr + ilo + j0 * g.dw - g.pl, g.dw, out)
                else:
                    for j in range(TAP_BLOCK):
                        acc8[j] = 0
                    xcorr8(ihi - ilo, gr + ilo, xr + ilo + j0 * g.dw - g.pl, g.dw, acc8)
                    for j in range(nj):
                        out[j] += acc8[j]
            for j in range(nj):
                offw = (j0 + j) * g.dw - g.pl
                tap_range(offw, g.W, g.W_out, g.sw, &qlo, &qhi)
                if block and ihi > ilo:
                    b = min(qhi, ilo)
                    if b > qlo:
                        out[j] += dot(b - qlo, gr + qlo, xr + qlo + offw, 1)
                    a = max(qlo, ihi)
                    if qhi > a:
                        out[j] += dot(qhi - a, gr + a, xr + a + offw, 1)
                elif qhi > qlo:
                    out[j] += dot(qhi - qlo, gr + qlo, xr + qlo * g.sw + offw, g.sw)


# ----------------------------------------------------------------------------------------------
# direct algorithm over padded planes (2-D kernels, unit strides)
#
# Short rows make the row-by-row loops above pay per row and per tap. With unit strides, a plane
# copied into a zero-padded buffer lets every output row run all KH*KW taps as one FIR filter
# whose tap offsets are i*dh*Wp + j*dw (Wp the padded width): no edge cases, the accumulators
# stay in registers across the whole kernel.

cdef inline bint _plane_path(Geom* g, bint weight=False) noexcept nogil:
    """Whether the direct path runs over padded planes: 2-D kernels with unit strides, and for
    the forward and input gradient also kernel rows whose channels mix (2+ taps, a reduction
    of 16+, rows of up to ROW_PLANE_MAX_OUT outputs: eight outputs share each load, measured
    0.95-1.45x the speed of the unroll on dense conv1d layers; on longer rows the eight
    output rows no longer stay in cache between passes) and in float32 long rows of taps
    (KW >= 8), whose edges would otherwise run tap by tap (measured here: 15% faster at
    K=31; float64 rows 20% slower)."""
    return g.sh == 1 and g.sw == 1 and (
        g.KH > 1 or (not weight and (
            (g.KW >= 2 and g.Cg * g.KW >= 16 and g.W_out <= ROW_PLANE_MAX_OUT)
            or (g.KW >= 8 and g.itemsize == 4))))


cdef inline Py_ssize_t _row_phases(Geom* g) noexcept nogil:
    """The row phases of the direct forward's padded planes that its taps can read: the
    row stride's, at most the kernel's extent (see _fwd_pad)."""
    return min(g.sh, (g.KH - 1) * g.dh + 1)


cdef inline Py_ssize_t _col_phases(Geom* g) noexcept nogil:
    return min(g.sw, (g.KW - 1) * g.dw + 1)


cdef inline bint _fwd_plane_path(Geom* g) noexcept nogil:
    """Whether the direct forward runs over padded planes: _plane_path's, and strided
    convolutions with no more phases than taps (not a dilation far beyond a stride far beyond
    the kernel) and phase planes of at most four times an input plane's elements (and 4,096:
    not a padding or dilation far beyond the input, which would make the scratch grow with
    it), whose padded planes are stored as their strides' phases (_fwd_pad:
    each tap then reads consecutive inputs, as with unit strides; tap by tap along strided
    rows, depthwise layers with stride 2 ran 1.5-14x slower than torch's forward)."""
    return _plane_path(g) or ((g.sh > 1 or g.sw > 1)
                              and _row_phases(g) * _col_phases(g) <= g.KH * g.KW
                              and <double>_row_phases(g) * _col_phases(g)
                              * (<double>g.H_out + (g.KH - 1) * g.dh // g.sh)
                              * (<double>g.W_out + (g.KW - 1) * g.dw // g.sw)
                              <= 4.0 * g.H * g.W + 4096)


cdef inline bint _gw_plane_path(Geom* g) noexcept nogil:
    """Whether the direct weight gradient runs over padded planes: _plane_path's, and strided
    kernels of 4+ taps where the forward's phase planes apply (_fwd_plane_path): each tap is
    then a dot product of the grad_output plane with a phase plane, as with unit strides
    (tap by tap along strided rows, a 3x3 stride-2 depthwise weight gradient ran at
    0.2-0.4x torch's speed in float32, and strided conv1d rows of 4-400 taps 1.3-6x slower
    than now; of 2-3 taps they ran as fast, in float64 1.0-1.2x as fast)."""
    return _plane_path(g, True) or ((g.sh > 1 or g.sw > 1) and g.KH * g.KW >= 4
                                    and _fwd_plane_path(g))


cdef inline Py_ssize_t _fwd_wp(Geom* g) noexcept nogil:
    """The padded width of the forward's planes (with a column stride, of their phases)."""
    return g.W_out + (g.KW - 1) * g.dw // g.sw


cdef inline Py_ssize_t _fwd_hp(Geom* g) noexcept nogil:
    """The padded rows of the forward's planes (with strides, of their phases one after the
    other)."""
    return _row_phases(g) * _col_phases(g) * (g.H_out + (g.KH - 1) * g.dh // g.sh)


cdef inline bint _gi_rows(Geom* g) noexcept nogil:
    """Whether the direct 2-D input gradient runs four rows at a time (pyc_fir3x3_rows): 3x3
    kernels without row dilation, and fewer than PLANE_BLOCK input channels per group (so no
    eight of them share the loads)."""
    return g.KH == 3 and g.KW == 3 and g.dh == 1 and g.Cg < PLANE_BLOCK


cdef inline Py_ssize_t _gi_wp(Geom* g) noexcept nogil:
    """The padded width of the input gradient's planes; for _gi_rows at least the width
    rounded up to whole 64-byte vectors, the columns the four-row filter computes (their
    reads then run less than a vector past the last plane, inside its SLACK)."""
    cdef Py_ssize_t Wp = g.W + g.pl + (g.KW - 1) * g.dw, v = 64 // g.itemsize
    if _gi_rows(g):
        return max(Wp, (g.W + v - 1) // v * v)
    return Wp


cdef inline Py_ssize_t _gi_hp(Geom* g) noexcept nogil:
    return g.H + g.pt + (g.KH - 1) * g.dh


cdef inline Py_ssize_t _chunk(Py_ssize_t planes, Py_ssize_t elems,
                              Py_ssize_t itemsize) noexcept nogil:
    """How many of `planes` padded planes of `elems` elements fit CHUNK_BYTES (at least one):
    the planes the direct 2-D path filters in one pass, so that the accumulators stay in
    registers over all their taps."""
    return max(1, min(planes, CHUNK_BYTES // max(elems * itemsize, 1)))


cdef inline Py_ssize_t _fwd_chunk(Geom* g) noexcept nogil:
    """Input channels per pass of the direct 2-D forward."""
    return _chunk(g.Cg, _fwd_hp(g) * _fwd_wp(g), g.itemsize)


cdef inline bint _conv1d_rows(Geom* g) noexcept nogil:
    """Whether the planes are single rows with kernel rows (a conv1d: one output row, from
    the input row itself, no row padding above it) and a unit column stride: then one input
    channel (forward) or one grad_output plane (input gradient) per group filters the row in
    place (_forward_row_segments, _grad_input_row_segments), with no padded plane to share.
    (A conv2d over rows of one pixel padded above or below has more output rows, or its
    output row reads padding: the row-by-row path. Before, a row stride took such a layer
    here, which wrote the first output row only and left the others unset.)"""
    return g.H == 1 and g.KH == 1 and g.H_out == 1 and g.pt == 0 and g.sw == 1


cdef inline bint _fwd_pad_once(Geom* g) noexcept nogil:
    """Whether the direct 2-D forward pads a sample's input planes (of a group) once for all
    its blocks of outputs: when they take at most PAD_ONCE_BYTES, and not for conv1d rows of
    one input channel, which filter their row in place and leave no padded plane behind.
    Else each block pads its chunks afresh."""
    return (g.Cg * _fwd_hp(g) * _fwd_wp(g) * g.itemsize <= PAD_ONCE_BYTES
            and not (g.Cg == 1 and _conv1d_rows(g)))


cdef inline Py_ssize_t _fwd_pad_planes(Geom* g) noexcept nogil:
    """The padded input planes the forward's scratch holds: all of a group's, or a chunk."""
    return g.Cg if _fwd_pad_once(g) else _fwd_chunk(g)


cdef inline bint _gi_pad_once(Geom* g) noexcept nogil:
    """Whether the direct 2-D input gradient pads a sample's grad_output planes (of a group)
    once for all its blocks of input channels: when it has more than one block and the
    planes take at most PAD_ONCE_BYTES (not for conv1d rows of one grad_output plane, which
    filter it in place)."""
    cdef Py_ssize_t nb = _plane_block(g, g.N * g.groups, g.Cg)
    return (g.Cg > nb and g.Og * _gi_hp(g) * _gi_wp(g) * g.itemsize <= PAD_ONCE_BYTES
            and not (g.Og == 1 and _conv1d_rows(g)))


cdef inline Py_ssize_t _gi_pad_planes(Geom* g) noexcept nogil:
    """The padded grad_output planes the input gradient's scratch holds."""
    return g.Og if _gi_pad_once(g) else _gi_chunk(g)


cdef inline Py_ssize_t _gi_chunk(Geom* g) noexcept nogil:
    """grad_output channels per pass of the direct 2-D input gradient."""
    return _chunk(g.Og, _gi_hp(g) * _gi_wp(g), g.itemsize)


cdef inline Py_ssize_t _round_up(Py_ssize_t n) noexcept nogil:
    """n rounded up to a multiple of SLACK."""
    return (n + SLACK - 1) // SLACK * SLACK


cdef inline Py_ssize_t _plane_block(Geom* g, Py_ssize_t outer, Py_ssize_t planes) noexcept nogil:
    """Planes per job of the padded-plane path: PLANE_BLOCK when that still leaves
    PLANE_MIN_JOBS jobs (outer jobs times the blocks of `planes`), else one."""
    if outer * ((planes + PLANE_BLOCK - 1) // PLANE_BLOCK) >= PLANE_MIN_JOBS:
        return PLANE_BLOCK
    return 1


cdef Py_ssize_t plane_scratch(Geom* g, int which) noexcept nogil:
    """Scratch elements per thread of the padded-plane path: 0 forward, 1 grad input (a chunk
    of padded planes, or all of a group's when they are padded once, and a block of outputs
    at the padded width), 2 grad weight (a tile of grad_output planes at the padded width, a
    padded input plane and its overrun)."""
    if which == 0:
        return (_fwd_pad_planes(g) * _fwd_hp(g) * _fwd_wp(g) + SLACK
                + PLANE_BLOCK * _round_up(g.H_out * _fwd_wp(g)))
    if which == 1:
        return (_gi_pad_planes(g) * _gi_hp(g) * _gi_wp(g) + SLACK
                + PLANE_BLOCK * _round_up(g.H * _gi_wp(g)))
    return (TILE * g.H_out * _fwd_wp(g) + _fwd_hp(g) * _fwd_wp(g)
            + max(SLACK, (g.KW - 1) * g.dw) + TILE * g.KH * g.KW)


cdef void _padded_to_rows(const floating* src, Py_ssize_t nb, Py_ssize_t ys,
                          Py_ssize_t plane, Py_ssize_t rows, Py_ssize_t width,
                          floating* dst, Py_ssize_t Wp) noexcept nogil:
    """nb planes of rows Wp wide (ys apart) to planes of rows x width (plane apart); the
    columns past width are dropped."""
    cdef Py_ssize_t m, r
    for m in range(nb):
        for r in range(rows):
            gather(width, src + m * ys + r * Wp, 1, dst + m * plane + r * width)


cdef void _pad_plane(const floating* src, Py_ssize_t H, Py_ssize_t W, floating* dst,
                     Py_ssize_t Hd, Py_ssize_t Wd, Py_ssize_t top,
                     Py_ssize_t left) noexcept nogil:
    """dst (Hd x Wd)[a, b] = src (H x W)[a - top, b - left], zero outside src."""
    cdef Py_ssize_t a, r, b0, b1
    cdef floating* row
    b0 = min(max(left, 0), Wd)
    b1 = max(min(left + W, Wd), b0)
    for a in range(Hd):
        r = a - top
        row = dst + a * Wd
        if r < 0 or r >= H or b1 <= b0:
            memset(row, 0, Wd * sizeof(floating))
            continue
        if b0 > 0:
            memset(row, 0, b0 * sizeof(floating))
        gather(b1 - b0, src + r * W + (b0 - left), 1, row + b0)
        if b1 < Wd:
            memset(row + b1, 0, (Wd - b1) * sizeof(floating))


cdef inline void _phase_split(const floating* src, Py_ssize_t H, Py_ssize_t W, floating* dst,
                              Py_ssize_t Hd, Py_ssize_t Wd, Py_ssize_t sh, Py_ssize_t sw,
                              Py_ssize_t nh, Py_ssize_t nw, Py_ssize_t pt, Py_ssize_t pl,
                              Py_ssize_t rs, Py_ssize_t vs) noexcept nogil:
    """A plane zero-padded and split into its strides' phases (src/_simd.h)."""
    if floating is float:
        pyc_phase_split_f(src, H, W, dst, Hd, Wd, sh, sw, nh, nw, pt, pl, rs, vs)
    else:
        pyc_phase_split_d(src, H, W, dst, Hd, Wd, sh, sw, nh, nw, pt, pl, rs, vs)


cdef void _pad_planes(const floating* src, Py_ssize_t count, Py_ssize_t H, Py_ssize_t W,
                      floating* dst, Py_ssize_t Hd, Py_ssize_t Wd, Py_ssize_t top,
                      Py_ssize_t left) noexcept nogil:
    """count planes (H x W, one after the other at src) padded into dst (Hd x Wd each, one
    after the other: _pad_plane), then SLACK zeros, which the last plane's whole vectors read
    past it (the other planes' vectors read into the next plane, for outputs that are
    dropped)."""
    cdef Py_ssize_t j
    for j in range(count):
        _pad_plane(src + j * H * W, H, W, dst + j * Hd * Wd, Hd, Wd, top, left)
    memset(dst + count * Hd * Wd, 0, SLACK * sizeof(floating))


cdef void _fwd_pad(const floating* src, Py_ssize_t count, Geom* g,
                   floating* dst) noexcept nogil:
    """count input planes padded for the direct forward (_fwd_hp x _fwd_wp each), then SLACK
    zeros; with strides each is split into its strides' phases: phase (a, r) of plane c,
    Hd x Wd at dst + ((c*nh + a)*nw + r)*Hd*Wd, holds the padded plane's rows v*sh + a and
    columns m*sw + r (Wd = _fwd_wp, Hd = _fwd_hp / (nh*nw)), so that tap (i, j) of output
    (p, q) reads phase ((i*dh) % sh, (j*dw) % sw) at row p + (i*dh) // sh and column
    q + (j*dw) // sw. Only the phases taps can read are kept: nh = _row_phases,
    nw = _col_phases (one phase, the padded plane itself, with unit strides)."""
    cdef Py_ssize_t nh = _row_phases(g), nw = _col_phases(g)
    cdef Py_ssize_t Wd = _fwd_wp(g), Hd = _fwd_hp(g) // (nh * nw), c
    for c in range(count):
        _phase_split(src + c * g.H * g.W, g.H, g.W, dst + c * nh * nw * Hd * Wd, Hd, Wd,
                     g.sh, g.sw, nh, nw, g.pt, g.pl, Hd * Wd, Wd)
    memset(dst + count * nh * nw * Hd * Wd, 0, SLACK * sizeof(floating))


cdef inline void _inside_vectors(Py_ssize_t first, Py_ssize_t end, Py_ssize_t n,
                                 Py_ssize_t itemsize, Py_ssize_t* a, Py_ssize_t* b) noexcept nogil:
    """[a, b): the outputs of a row of n, from first rounded up to end rounded down, in whole
    64-byte vectors counted from 0 and within the row's last whole vector (a <= b; first and
    end bound the outputs whose taps all land inside the row)."""
    cdef Py_ssize_t v = 64 // itemsize, whole = n - n % v
    a[0] = min((max(first, 0) + v - 1) // v * v, whole)
    b[0] = max(a[0], min(end // v * v, whole))


cdef void _forward_row_segments(const floating* x, const floating* w, const floating* bias,
                                floating* y, floating* pad, const Py_ssize_t* off, Geom* g,
                                Py_ssize_t nb) noexcept nogil:
    """_plane_forward for one input row (conv1d) and any number of outputs: the outputs [a,
    b) whose taps all land in x filter x in place; the whole vectors before them and the
    outputs after them filter zero-padded copies of their stretch of the row in pad. a and b
    are whole vectors (b may end at the last whole vector), so every output runs through the
    code it would over the whole padded row (the same bits), without copying the row in or
    (one float32 output) the outputs out: 15-30 % of a depthwise K=31 forward."""
    cdef Py_ssize_t a, b, m, ext = (g.KW - 1) * g.dw
    _inside_vectors(g.pl, g.W + g.pl - ext, g.W_out, g.itemsize, &a, &b)
    for m in range(nb):
        fill(g.W_out, bias[m], y + m * g.P)
    if a > 0:
        _pad_plane(x, 1, g.W, pad, 1, a + ext, 0, g.pl)
        fir_planes(nb, a, g.KW, w, g.KK, off, pad, y, g.P)
    if b > a:
        fir_planes(nb, b - a, g.KW, w, g.KK, off, x + a - g.pl, y + a, g.P)
    if g.W_out > b:
        _pad_plane(x, 1, g.W, pad, 1, g.W_out - b + ext, 0, g.pl - b)
        fir_planes(nb, g.W_out - b, g.KW, w, g.KK, off, pad, y + b, g.P)


cdef void _plane_forward(const floating* x, const floating* w, const floating* bias,
                         floating* y, floating* pad, const Py_ssize_t* off, Geom* g,
                         Py_ssize_t nb, bint padded=False) noexcept nogil:
    """nb output planes of one sample (y at the first, bias at its bias; w at its kernel; x at
    the group's first input plane) over padded input planes. All rows run as one FIR filter
    at the padded width (the positions between rows are computed and dropped), and each
    padded input plane serves the nb outputs together; with one input channel per group, row
    by row straight into y. The planes of a chunk of input channels (_fwd_chunk) lie one after
    the other in pad and run as one filter of chunk * KH * KW taps (off: tap_offsets), the
    taps in weight order, so the sums are the same as channel by channel. When all the
    group's padded planes fit pad (_fwd_pad_once), they are padded together, and with padded
    pad already holds them, left by the previous block of outputs of the same sample."""
    cdef Py_ssize_t c, nc, m, KHW = g.KH * g.KW, Hp = _fwd_hp(g), Wp = _fwd_wp(g)
    cdef Py_ssize_t ys = _round_up(g.H_out * Wp), span = _round_up((g.H_out - 1) * Wp + g.W_out)
    cdef Py_ssize_t chunk = _fwd_chunk(g), plane = Hp * Wp
    cdef bint once = _fwd_pad_once(g)
    cdef floating* acc = pad + _fwd_pad_planes(g) * plane + SLACK
    cdef floating* src
    cdef Py_ssize_t p, n, over = _round_up(g.W_out) - g.W_out
    if g.Cg == 1 and (nb > 1 or g.itemsize == 8 or _conv1d_rows(g)):
        # one input plane for a block of outputs: filter row by row straight into y, so
        # that the output is written once. A row's whole vectors may run into the next rows
        # of its plane, which are filled and filtered after it; never past its plane. (A
        # single float32 output plane, as in depthwise layers, runs below as one filter over
        # the whole padded plane: the same sums, 17-21 % faster on 3x3 kernels over 20x52
        # and 40x101 planes, the rows' short vector loops having few independent sums; for a
        # block of eight, copying the outputs out costs more than that, and in float64 the
        # two differ in a row's scalar tail. A conv1d row, one output or more, filters the
        # row in place: a single float32 output took the padded plane's copy in and the
        # outputs' copy out, 20-30 % of a depthwise K=31 forward, for the same bits.)
        if _conv1d_rows(g):
            _forward_row_segments(x, w, bias, y, pad, off, g, nb)
            return
        if not padded:
            _fwd_pad(x, 1, g, pad)
        for p in range(g.H_out):
            for m in range(nb):
                fill(g.W_out, bias[m], y + m * g.P + p * g.W_out)
            n = g.W_out + over if (g.H_out - 1 - p) * g.W_out >= over else g.W_out
            fir_planes(nb, n, KHW, w, g.KK, off, pad + p * Wp, y + p * g.W_out, g.P)
        return
    for m in range(nb):
        fill(ys, bias[m], acc + m * ys)
    if once and not padded:
        _fwd_pad(x, g.Cg, g, pad)
    c = 0
    while c < g.Cg:
        nc = min(chunk, g.Cg - c)
        src = pad + c * plane if once else pad
        if not once:
            _fwd_pad(x + c * g.H * g.W, nc, g, pad)
        fir_planes(nb, span, nc * KHW, w + c * KHW, g.KK, off, src, acc, ys)
        c = c + nc
    _padded_to_rows(acc, nb, ys, g.P, g.H_out, g.W_out, y, Wp)


cdef void _grad_input_row_segments(const floating* go, const floating* wt, floating* gx,
                                   floating* pad, floating* acc, const Py_ssize_t* off,
                                   Geom* g, Py_ssize_t nb, Py_ssize_t span,
                                   Py_ssize_t ys) noexcept nogil:
    """_plane_grad_input for one row and one grad_output plane (depthwise conv1d, or one
    output per group), as _forward_row_segments: the outputs [a, b) whose taps all land in
    grad_output filter it in place, straight into gx; the whole vectors before them into gx
    from a zero-padded copy of their stretch; the rest up to span (whole vectors) from
    another into acc, then copied out. The same vectors of the same sums as over the whole
    padded row, so the same bits."""
    cdef Py_ssize_t a, b, m, ext = (g.KW - 1) * g.dw, reach = g.pl + ext
    _inside_vectors(ext - g.pl, g.W_out - g.pl, g.W, g.itemsize, &a, &b)
    for m in range(nb):
        memset(gx + m * g.W, 0, b * sizeof(floating))
    if a > 0:
        _pad_plane(go, 1, g.W_out, pad, 1, a + reach, 0, ext)
        fir_planes(nb, a, g.KW, wt, g.KW, off, pad, gx, g.W)
    if b > a:
        fir_planes(nb, b - a, g.KW, wt, g.KW, off, go + a - ext, gx + a, g.W)
    if g.W > b:
        memset(acc, 0, nb * ys * sizeof(floating))
        _pad_plane(go, 1, g.W_out, pad, 1, span - b + reach, 0, ext - b)
        fir_planes(nb, span - b, g.KW, wt, g.KW, off, pad, acc, ys)
        for m in range(nb):
            memcpy(gx + m * g.W + b, acc + m * ys, (g.W - b) * sizeof(floating))


cdef void _plane_grad_input(const floating* go, const floating* wt, floating* gx,
                            floating* pad, const Py_ssize_t* off, Geom* g,
                            Py_ssize_t nb, const floating* x=NULL, floating* part=NULL,
                            floating* pb=NULL, floating* pw=NULL,
                            const Py_ssize_t* off_gw=NULL, bint padded=False) noexcept nogil:
    """nb input-channel planes of one sample (gx at the first, overwritten; wt at the first's
    kernels in the repacked weight, (Og, KH, KW) per input channel; go at the group's first
    output plane): gx[c, r, s] = sum_{o, i, j} w[o, c, i, j] * g[o, r + pt - i*dh, s + pl -
    j*dw], over grad_output planes padded by the kernel extent, as one FIR filter over all
    rows and, as in _plane_forward, over a chunk of grad_output planes (_gi_chunk) at once.
    With part not NULL (_fused_backward_job: nb is Cg, x at the group's first input plane, pw
    scratch for _plane_grad_weight_sample), also part (Og x KK, zeroed) += the sample's weight
    sums and pb (Og) = its bias sums, each tile of planes right after the pass that brought
    it into cache. Without part, when all the group's padded planes fit pad (_gi_pad_once)
    they are padded together, and with padded pad already holds them, left by the previous
    block of input channels of the same sample."""
    cdef Py_ssize_t o, j, no, nxt, t = 0, KHW = g.KH * g.KW, Hp = _gi_hp(g), Wp = _gi_wp(g)
    cdef Py_ssize_t ys = _round_up(g.H * Wp), span = _round_up((g.H - 1) * Wp + g.W)
    cdef Py_ssize_t chunk = _gi_chunk(g), plane = Hp * Wp
    cdef Py_ssize_t top = (g.KH - 1) * g.dh, left = (g.KW - 1) * g.dw
    cdef bint once = part == NULL and _gi_pad_once(g)
    cdef floating* acc = pad + _gi_pad_planes(g) * plane + SLACK
    cdef floating* src = pad
    if g.Og == 1 and part == NULL and _conv1d_rows(g):
        _grad_input_row_segments(go, wt, gx, pad, acc, off, g, nb, span, ys)
        return
    memset(acc, 0, nb * ys * sizeof(floating))
    if once and not padded:
        _pad_planes(go, g.Og, g.H_out, g.W_out, pad, Hp, Wp, top, left)
    o = 0
    while o < g.Og:
        no = min(chunk, g.Og - o)
        nxt = 0
        if once:
            src = pad + o * plane
        else:
            _pad_planes(go + o * g.P, no, g.H_out, g.W_out, pad, Hp, Wp, top, left)
            # the next chunk's grad_output planes come from memory while this one is
            # filtered
            nxt = min(chunk, g.Og - o - no)
        fir_planes(nb, span, no * KHW, wt + o * KHW, g.Og * KHW, off, src, acc, ys,
                   g.H if _gi_rows(g) else 0, g.W, Wp, go + (o + no) * g.P if nxt else NULL,
                   nxt * g.P * sizeof(floating))
        o = o + no
        if part != NULL:
            for j in range(o - no, o):
                pb[j] = plane_sum(g.P, go + j * g.P)
            while t < o and (t + TILE <= o or o == g.Og):
                _plane_grad_weight_sample(go + t * g.P, x, part + t * g.KK, pw, off_gw, g,
                                          min(TILE, g.Og - t), g.Cg)
                t = t + TILE
    _padded_to_rows(acc, nb, ys, g.H * g.W, g.H, g.W, gx, Wp)


cdef enum:
    # outputs and taps of one tile of the direct 2-D weight gradient (pyc_xcorr_4x4)
    TILE = 4


cdef inline void xcorr_tile(bint full_o, bint full_k, Py_ssize_t n, const floating* go,
                            Py_ssize_t gs, const floating* x, const Py_ssize_t* off,
                            floating* out, Py_ssize_t os) noexcept nogil:
    """out[i*os + j] += sum_t go[i*gs + t] * x[t + off[j]] for TILE (full_o) or 1 outputs i
    and TILE (full_k) or 1 taps j."""
    if floating is float:
        pyc_xcorr_tile_f(full_o, full_k, n, go, gs, x, off, out, os, WIDE)
    else:
        pyc_xcorr_tile_d(full_o, full_k, n, go, gs, x, off, out, os, WIDE)


cdef void _plane_grad_weight_sample(const floating* go, const floating* x, floating* out,
                                    floating* pad, const Py_ssize_t* off, Geom* g,
                                    Py_ssize_t no, Py_ssize_t nc) noexcept nogil:
    """out[o, c, k] += sum_t g[o, t] * xpad[c, t + off[k]] for one sample: no (<= TILE)
    outputs and nc input channels of a group (out at the first pair's kernel; go at the
    first output's plane, x at the first channel's plane). The no grad_output planes go to
    pad once, at the padded width (zeros in the gap columns), and each input plane after
    them, padded as the forward's (_fwd_pad: with strides, split into its phases), with the
    overrun of its last row's taps zeroed. Tiles of TILE outputs x TILE taps share their
    loads; each sum is made whole and then added to out.

    The sums run over the whole padded width, where the gap columns of grad_output (zeros)
    meet inputs the tap never reaches: an infinity or NaN there would make a tap's sum NaN
    (0 * inf) where the exact sum is finite. So a channel's sums go to sums (zeroed) first,
    and where they come out non-finite they are summed again there row by row, over the
    outputs only; then added to out (the same sums as adding them to out directly)."""
    cdef Py_ssize_t i, k, c, r, KHW = g.KH * g.KW, os = g.Cg * KHW
    cdef Py_ssize_t Hp = _fwd_hp(g), Wp = _fwd_wp(g), span = g.H_out * _fwd_wp(g)
    cdef floating* gn = pad
    cdef floating* xn = pad + TILE * span
    cdef floating* sums = xn + Hp * Wp + max(SLACK, (g.KW - 1) * g.dw)
    memset(xn + Hp * Wp, 0, (g.KW - 1) * g.dw * sizeof(floating))
    for i in range(no):
        for r in range(g.H_out):
            gather(g.W_out, go + i * g.P + r * g.W_out, 1, gn + i * span + r * Wp)
            memset(gn + i * span + r * Wp + g.W_out, 0, (Wp - g.W_out) * sizeof(floating))
    for c in range(nc):
        _fwd_pad(x + c * g.H * g.W, 1, g, xn)
        memset(sums, 0, no * KHW * sizeof(floating))
        _xcorr_sums(no, KHW, span, gn, span, xn, off, sums)
        if not _all_finite(no * KHW, sums):
            memset(sums, 0, no * KHW * sizeof(floating))
            for r in range(g.H_out):
                _xcorr_sums(no, KHW, g.W_out, gn + r * Wp, span, xn + r * Wp, off, sums)
        for i in range(no):
            for k in range(KHW):
                out[i * os + c * KHW + k] += sums[i * KHW + k]


cdef void _xcorr_sums(Py_ssize_t no, Py_ssize_t KHW, Py_ssize_t n, const floating* gn,
                      Py_ssize_t gs, const floating* xn, const Py_ssize_t* off,
                      floating* out) noexcept nogil:
    """out[i*KHW + k] += sum_{t<n} gn[i*gs + t] * xn[t + off[k]] for i < no, k < KHW, in
    tiles of TILE outputs x TILE taps (xcorr_tile)."""
    cdef Py_ssize_t i = 0, k
    cdef bint full_o, full_k
    while i < no:
        full_o = no - i >= TILE
        k = 0
        while k < KHW:
            full_k = KHW - k >= TILE
            xcorr_tile(full_o, full_k, n, gn + i * gs, gs, xn, off + k, out + i * KHW + k,
                       KHW)
            k = k + (TILE if full_k else 1)
        i = i + (TILE if full_o else 1)


cdef inline bint _all_finite(Py_ssize_t n, const floating* x) noexcept nogil:
    """Whether x[:n] is all finite."""
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(x[i]):
            return False
    return True


cdef void _plane_grad_weight(const floating* go, const floating* x, floating* out,
                             floating* gb, floating* pad, const Py_ssize_t* off, Geom* g,
                             Py_ssize_t no, Py_ssize_t nc) noexcept nogil:
    """out[o, c, k] = sum_{n, t} g[n, o, t] * xpad[n, c, t + off[k]] for no (<= TILE) outputs
    and nc input channels of a group (out at the first pair's kernel; go at the first
    output's plane, x at the first channel's plane, of sample 0): the samples' sums
    (_plane_grad_weight_sample) added in sample order. Unless gb is NULL, gb[o] = the bias
    gradient of the no outputs, summed as grad_bias does (plane sums added in sample order,
    the same bits) while the planes are in cache."""
    cdef Py_ssize_t n, i, KHW = g.KH * g.KW, os = g.Cg * KHW
    for i in range(no):
        memset(out + i * os, 0, nc * KHW * sizeof(floating))
        if gb != NULL:
            gb[i] = 0
    for n in range(g.N):
        if gb != NULL:
            for i in range(no):
                gb[i] = gb[i] + plane_sum(g.P, go + (n * g.C_out + i) * g.P)
        _plane_grad_weight_sample(go + n * g.C_out * g.P, x + n * g.C_in * g.H * g.W, out,
                                  pad, off, g, no, nc)


cdef inline bint _fused_backward(Geom* g) noexcept nogil:
    """Whether grad_input_weight() applies: the weight gradient's direct path over padded
    planes (unit strides, kernels of 2+ rows), which the input gradient takes too, few input
    channels per group (one job per sample and group does its whole input gradient), enough
    such jobs to share out, and nothing empty."""
    return (_plane_path(g, True) and g.Cg < PLANE_BLOCK
            and g.N * g.groups >= PLANE_MIN_JOBS and g.P > 0 and g.H > 0 and g.W > 0
            and g.C_out > 0)


cdef void _fused_backward_job(const floating* go, const floating* x, const floating* wt,
                              floating* gx, floating* part, floating* pb, floating* pad,
                              const Py_ssize_t* off_gi, const Py_ssize_t* off_gw,
                              Geom* g) noexcept nogil:
    """One sample and group (go, x, gx at its planes; wt at the group's repacked weight):
    its input gradient, its weight-gradient sums part (Og x Cg x KH x KW) and its bias
    sums pb (Og), all while its grad_output planes are in cache."""
    memset(part, 0, g.Og * g.KK * sizeof(floating))
    _plane_grad_input(go, wt, gx, pad, off_gi, g, g.Cg, x, part, pb, pad + plane_scratch(g, 1),
                      off_gw)


cdef enum:
    # what tap_offsets() lays out
    OFF_PLANE_FORWARD = 0       # every tap, into a padded input plane
    OFF_PLANE_GRAD_INPUT = 1    # every tap reversed, into a padded grad_output plane
    OFF_ROW_FORWARD = 2         # one kernel row, along an input row
    OFF_ROW_GRAD_INPUT = 3      # one kernel row reversed, along a grad_output row


cdef Py_ssize_t* tap_offsets(Geom* g, int which):
    """Tap offsets for fir_taps (malloc'ed; the caller frees): the first KH*KW (planes) or KW
    (rows) entries, in weight order; for the planes, those of a chunk of planes laid one
    after the other (_fwd_chunk, _gi_chunk: the taps of plane j shifted by j planes)."""
    cdef Py_ssize_t i, j, Wp, KHW = g.KH * g.KW
    cdef Py_ssize_t planes = 1, plane = 0, phase = 0
    if which == OFF_PLANE_FORWARD:
        planes, plane = _fwd_chunk(g), _fwd_hp(g) * _fwd_wp(g)
        phase = plane // (_row_phases(g) * _col_phases(g))     # elements of one phase
    elif which == OFF_PLANE_GRAD_INPUT:
        planes, plane = _gi_chunk(g), _gi_hp(g) * _gi_wp(g)
    cdef Py_ssize_t* off = <Py_ssize_t*>malloc(planes * KHW * sizeof(Py_ssize_t))
    if off == NULL:
        raise MemoryError()
    for i in range(g.KH):
        for j in range(g.KW):
            if which == OFF_PLANE_GRAD_INPUT:   # shifted by the padding
                Wp = _gi_wp(g)
                off[i * g.KW + j] = ((g.pt + (g.KH - 1 - i) * g.dh) * Wp
                                     + g.pl + (g.KW - 1 - j) * g.dw)
            elif which == OFF_PLANE_FORWARD:     # into the phases (_fwd_pad)
                Wp = _fwd_wp(g)
                off[i * g.KW + j] = (((i * g.dh % g.sh) * _col_phases(g) + j * g.dw % g.sw)
                                     * phase + i * g.dh // g.sh * Wp + j * g.dw // g.sw)
            elif which == OFF_ROW_FORWARD:
                off[i * g.KW + j] = j * g.dw
            else:
                off[i * g.KW + j] = (g.KW - 1 - j) * g.dw
    for j in range(1, planes):
        for i in range(KHW):
            off[j * KHW + i] = j * plane + off[i]
    return off


# ----------------------------------------------------------------------------------------------
# gemm algorithm

cdef inline Py_ssize_t _phase_width(Geom* g) noexcept nogil:
    return (g.W + g.sw - 1) // g.sw


cdef inline void _phase(Py_ssize_t off, Py_ssize_t s, Py_ssize_t* r,
                        Py_ssize_t* qd) noexcept nogil:
    """off = qd*s + r with 0 <= r < s, so that x[q*s + off] = xd[r, q + qd] (see _decimate)."""
    if s == 1:
        r[0] = 0
        qd[0] = off
        return
    r[0] = off % s
    if r[0] < 0:
        r[0] = r[0] + s
    qd[0] = (off - r[0]) // s


cdef struct Tap:
    # kernel tap (i, j) of the unroll and col2im: its input offsets, the output columns
    # [qlo, qhi) whose input column falls inside a row, and its phase r, qd (see _phase)
    Py_ssize_t offh, offw, qlo, qhi, r, qd


cdef inline Tap _tap(Geom* g, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    cdef Tap tp
    tp.offh = i * g.dh - g.pt
    tp.offw = j * g.dw - g.pl
    tap_range(tp.offw, g.W, g.W_out, g.sw, &tp.qlo, &tp.qhi)
    _phase(tp.offw, g.sw, &tp.r, &tp.qd)
    return tp


cdef void _decimate(const floating* x, floating* xd, Geom* g, Py_ssize_t nc) noexcept nogil:
    """xd[c, h, r, j] = x[c, h, j*sw + r] for the nc channels c < nc: each input row split into
    its sw phases, so that the unroll of a strided convolution copies contiguous runs instead
    of gathering."""
    cdef Py_ssize_t c, h, r, Wd = _phase_width(g)
    cdef const floating* src
    cdef floating* dst
    for c in range(nc):
        for h in range(g.H):
            src = x + (c * g.H + h) * g.W
            dst = xd + (c * g.H + h) * g.sw * Wd
            for r in range(g.sw):
                gather((g.W - r + g.sw - 1) // g.sw, src + r, g.sw, dst + r * Wd)


cdef void _im2col(const floating* x, const floating* xd, floating* cols, Py_ssize_t ld,
                  Geom* g, Py_ssize_t P0, Py_ssize_t T, Py_ssize_t nc) noexcept nogil:
    """cols[(c*KH + i)*KW + j, t] = x[c, p*sh + i*dh - pt, q*sw + j*dw - pl] for the nc
    channels c < nc and the output pixels P0 + t = p*W_out + q, t < T (row stride ld); zero
    where the index falls in the padding. With a column stride, xd is x split into phases
    (_decimate) and every run is a contiguous copy."""
    cdef Py_ssize_t c, i, j, P, p, q0, q1, h, a, b
    cdef Py_ssize_t Wd = _phase_width(g), p0 = P0 // g.W_out
    cdef Tap tp
    cdef floating* dst
    cdef const floating* xrow
    for c in range(nc):
        for i in range(g.KH):
            for j in range(g.KW):
                tp = _tap(g, i, j)
                dst = cols + ((c * g.KH + i) * g.KW + j) * ld
                P = P0
                p = p0
                q0 = P0 - p0 * g.W_out
                while P < P0 + T:
                    q1 = min(g.W_out, q0 + P0 + T - P)
                    h = p * g.sh + tp.offh
                    if h < 0 or h >= g.H:
                        memset(dst, 0, (q1 - q0) * sizeof(floating))
                    else:
                        a = max(q0, tp.qlo)
                        b = min(q1, tp.qhi)
                        if b <= a:
                            memset(dst, 0, (q1 - q0) * sizeof(floating))
                        else:
                            if a > q0:
                                memset(dst, 0, (a - q0) * sizeof(floating))
                            if xd != NULL:
                                gather(b - a, xd + ((c * g.H + h) * g.sw + tp.r) * Wd + a + tp.qd,
                                       1, dst + (a - q0))
                            else:
                                xrow = x + (c * g.H + h) * g.W
                                gather(b - a, xrow + a * g.sw + tp.offw, g.sw, dst + (a - q0))
                            if q1 > b:
                                memset(dst + (b - q0), 0, (q1 - b) * sizeof(floating))
                    dst += q1 - q0
                    P = P + q1 - q0
                    p = p + 1       # the next run starts a row of outputs
                    q0 = 0


cdef void _col2im(const floating* cols, Py_ssize_t ld, floating* gx, floating* gxd, Geom* g,
                  Py_ssize_t c0, Py_ssize_t nc, Py_ssize_t P0, Py_ssize_t T) noexcept nogil:
    """The reverse of _im2col for channels c0 <= c < c0 + nc: gx[c, ...] += cols[...] (a
    tap's ranges worked out once for all channels; each element of gx gets its terms in tap
    order, whatever the loop order).

    With a column stride the runs are added, contiguous, into the phases gxd of channels
    c0.. (see _decimate; _interleave_add puts them back) instead of scattered."""
    cdef Py_ssize_t c, i, j, P, p, q0, q1, h, a, b, t
    cdef Py_ssize_t Wd = _phase_width(g), step = g.KH * g.KW * ld, p0 = P0 // g.W_out
    cdef Tap tp
    cdef const floating* src
    for i in range(g.KH):
        for j in range(g.KW):
            tp = _tap(g, i, j)
            P = P0
            t = 0
            p = p0
            q0 = P0 - p0 * g.W_out
            while P < P0 + T:
                q1 = min(g.W_out, q0 + P0 + T - P)
                h = p * g.sh + tp.offh
                a = max(q0, tp.qlo)
                b = min(q1, tp.qhi)
                if 0 <= h < g.H and b > a:
                    for c in range(nc):
                        src = cols + (i * g.KW + j) * ld + c * step + t + (a - q0)
                        if gxd != NULL:
                            add_sy(b - a, src,
                                   gxd + ((c * g.H + h) * g.sw + tp.r) * Wd + a + tp.qd, 1)
                        else:
                            add_sy(b - a, src,
                                   gx + ((c0 + c) * g.H + h) * g.W + a * g.sw + tp.offw, g.sw)
                t = t + q1 - q0
                P = P + q1 - q0
                p = p + 1
                q0 = 0


cdef void _interleave_add(floating* gxd, floating* gx, Geom* g, Py_ssize_t c0,
                          Py_ssize_t nc) noexcept nogil:
    """gx[c, h, j*sw + r] += gxd[c - c0, h, r, j] for channels c0 <= c < c0 + nc; gxd is
    zeroed for the next sample."""
    cdef Py_ssize_t c, h, r, Wd = _phase_width(g)
    cdef floating* src
    for c in range(nc):
        for h in range(g.H):
            for r in range(g.sw):
                src = gxd + ((c * g.H + h) * g.sw + r) * Wd
                add_sy((g.W - r + g.sw - 1) // g.sw, src,
                       gx + ((c0 + c) * g.H + h) * g.W + r, g.sw)
    memset(gxd, 0, nc * g.H * g.sw * Wd * sizeof(floating))


cdef inline void _unit(Geom* g, Py_ssize_t u, Py_ssize_t* n0, Py_ssize_t* ns, Py_ssize_t* P0,
                       Py_ssize_t* T) noexcept nogil:
    """Block u: samples n0 <= n < n0 + ns, pixels P0 <= P < P0 + T of each."""
    if g.S == 1:
        n0[0] = u // g.NB
        ns[0] = 1
        P0[0] = (u - n0[0] * g.NB) * g.T
        T[0] = min(g.T, g.P - P0[0])
    else:
        n0[0] = u * g.S
        ns[0] = min(g.S, g.N - n0[0])
        P0[0] = 0
        T[0] = g.P


cdef inline Py_ssize_t decimate_scratch(Geom* g) noexcept nogil:
    """Scratch elements for the phases of one sample's group (0 without a column stride)."""
    return g.Cg * g.H * g.sw * _phase_width(g) if g.sw > 1 else 0


cdef void _unroll(const floating* x_all, floating* cols, Geom* g, Py_ssize_t gr,
                  Py_ssize_t n0, Py_ssize_t ns, Py_ssize_t P0, Py_ssize_t T, Py_ssize_t c0,
                  Py_ssize_t nc) noexcept nogil:
    """cols (nc*KH*KW x ns*T): the im2col of channels c0..c0+nc-1 of group gr of samples
    n0..n0+ns-1 side by side. With a column stride the phases go to the scratch after the
    cols block and the product buffer."""
    cdef Py_ssize_t s
    cdef const floating* x
    cdef floating* xd = NULL
    if g.sw > 1:
        xd = cols + (g.KK + g.Og) * g.TC
    for s in range(ns):
        x = x_all + ((n0 + s) * g.C_in + gr * g.Cg + c0) * g.H * g.W
        if xd != NULL:
            _decimate(x, xd, g, nc)
        _im2col(x, xd, cols + s * T, ns * T, g, P0, T, nc)


cdef void _gather_planes(const floating* y_all, floating* dst, Geom* g, Py_ssize_t gr,
                         Py_ssize_t n0, Py_ssize_t ns) noexcept nogil:
    """dst (Og x ns*P) = the planes of group gr of samples n0..n0+ns-1 side by side."""
    cdef Py_ssize_t o, s
    for o in range(g.Og):
        for s in range(ns):
            gather(g.P, y_all + ((n0 + s) * g.C_out + gr * g.Og + o) * g.P, 1,
                   dst + (o * ns + s) * g.P)


cdef void _gemm_forward_job(const floating* x_all, const floating* w, const floating* bias,
                            floating* y_all, floating* cols, Geom* g, Py_ssize_t gr,
                            Py_ssize_t u) noexcept nogil:
    """y[block u, group gr] = bias + w[group] @ cols."""
    cdef Py_ssize_t n0, ns, P0, T, o, s
    cdef floating* tmp
    cdef floating* yb
    _unit(g, u, &n0, &ns, &P0, &T)
    _unroll(x_all, cols, g, gr, n0, ns, P0, T, 0, g.Cg)
    if ns == 1:
        yb = y_all + (n0 * g.C_out + gr * g.Og) * g.P + P0
        for o in range(g.Og):
            fill(T, bias[gr * g.Og + o], yb + o * g.P)
        gemm(False, False, g.Og, T, g.KK, <floating>1, w, g.KK, cols, T, <floating>1, yb, g.P)
    else:
        tmp = cols + g.KK * g.TC
        gemm(False, False, g.Og, ns * T, g.KK, <floating>1, w, g.KK, cols, ns * T,
             <floating>0, tmp, ns * T)
        for o in range(g.Og):
            for s in range(ns):
                shift_copy(T, bias[gr * g.Og + o], tmp + (o * ns + s) * T,
                           y_all + ((n0 + s) * g.C_out + gr * g.Og + o) * g.P)


cdef void _gemm_grad_input_job(const floating* g_all, const floating* w, floating* gx_all,
                               floating* cols, Geom* g, Py_ssize_t gr, Py_ssize_t c0,
                               Py_ssize_t nc, Py_ssize_t su) noexcept nogil:
    """gx[samples of unit su, group gr, channels c0:c0+nc] = col2im(w[group][:, c0:c0+nc]^T @ g).

    One job owns whole samples (it zeroes their planes first), so the blocks of a sample
    (whose col2im overlap) run in order.
    Scratch: cols (nc*KH*KW x TC), the grad_output of a multi-sample block (Og x TC), and with
    a column stride the zeroed phases of nc channels."""
    cdef Py_ssize_t KHW = g.KH * g.KW
    cdef Py_ssize_t n0 = su * g.S, ns = min(g.S, g.N - su * g.S), b, P0, T, s
    cdef floating* tmp = cols + nc * KHW * g.TC
    cdef floating* gxd = NULL
    cdef floating* gx = gx_all + (n0 * g.C_in + gr * g.Cg) * g.H * g.W
    for s in range(ns):
        memset(gx + (s * g.C_in + c0) * g.H * g.W, 0, nc * g.H * g.W * sizeof(floating))
    if g.sw > 1:
        gxd = tmp + g.Og * g.TC
        memset(gxd, 0, nc * g.H * g.sw * _phase_width(g) * sizeof(floating))
    if g.S == 1:
        for b in range(g.NB):
            P0 = b * g.T
            T = min(g.T, g.P - P0)
            gemm(True, False, nc * KHW, T, g.Og, <floating>1, w + c0 * KHW, g.KK,
                 g_all + (n0 * g.C_out + gr * g.Og) * g.P + P0, g.P, <floating>0, cols, T)
            _col2im(cols, T, gx, gxd, g, c0, nc, P0, T)
        if gxd != NULL:
            _interleave_add(gxd, gx, g, c0, nc)
    else:
        _gather_planes(g_all, tmp, g, gr, n0, ns)
        gemm(True, False, nc * KHW, ns * g.P, g.Og, <floating>1, w + c0 * KHW, g.KK,
             tmp, ns * g.P, <floating>0, cols, ns * g.P)
        for s in range(ns):
            _col2im(cols + s * g.P, ns * g.P, gx + s * g.C_in * g.H * g.W, gxd, g, c0, nc, 0,
                    g.P)
            if gxd != NULL:
                _interleave_add(gxd, gx + s * g.C_in * g.H * g.W, g, c0, nc)


cdef inline bint _grad_weight_transposed(Geom* g) noexcept nogil:
    """Whether the gemm weight gradient computes each part as (KK x Og), cols @ g^T: BLAS
    runs that product with the outputs as its rows, measured 1.05-1.7x faster in float32 when
    there are no more outputs than taps (and 0.84x with 200 outputs over 64 taps); in float64
    it gains (up to 1.18x) only below 64 outputs, and loses up to 0.88x from 100 on."""
    return g.Og <= g.KK and (g.itemsize == 4 or g.Og < 64)


cdef void _gemm_grad_weight_job(const floating* g_all, const floating* x_all,
                                floating* part, floating* cols, Geom* g, Py_ssize_t gr,
                                Py_ssize_t u0, Py_ssize_t u1, Py_ssize_t c0,
                                Py_ssize_t nc) noexcept nogil:
    """The taps of input channels c0..c0+nc-1 of part (Og x KK) = sum over blocks
    u0 <= u < u1 of g[block, group] @ cols^T, or of its transpose (KK x Og) when
    _grad_weight_transposed."""
    cdef Py_ssize_t u, n0, ns, P0, T, ld, rows = nc * g.KH * g.KW, r0 = c0 * g.KH * g.KW
    cdef floating beta = 0
    cdef floating* tmp = cols + g.KK * g.TC
    cdef const floating* go
    for u in range(u0, u1):
        _unit(g, u, &n0, &ns, &P0, &T)
        _unroll(x_all, cols, g, gr, n0, ns, P0, T, c0, nc)
        if ns == 1:
            go = g_all + (n0 * g.C_out + gr * g.Og) * g.P + P0
            ld = g.P
        else:
            _gather_planes(g_all, tmp, g, gr, n0, ns)
            go = tmp
            ld = ns * T
        if _grad_weight_transposed(g):
            gemm(False, True, rows, g.Og, ns * T, <floating>1, cols, ns * T, go, ld, beta,
                 part + r0 * g.Og, g.Og)
        else:
            gemm(False, True, g.Og, rows, ns * T, <floating>1, go, ld, cols, ns * T, beta,
                 part + r0, g.KK)
        beta = 1


cdef inline Py_ssize_t _reduce_chunks(Geom* g) noexcept nogil:
    """The chunks the gemm weight gradient cuts its sum over blocks into (its partials)."""
    return max(1, min(REDUCE_CHUNKS, g.NU))


cdef inline Py_ssize_t _grad_weight_channels(Geom* g, Py_ssize_t nch) noexcept nogil:
    """Input channels per job of the gemm weight gradient: all of a group's, unless its
    groups x reduction chunks (_grad_weight_geom) are fewer than REDUCE_CHUNKS jobs of at
    least SPLIT_FLOPS each; then fewer, for about REDUCE_CHUNKS jobs: each job unrolls only
    its channels and computes their taps (dilated-d2: 8 chunks of 0.4 GFLOP become 16 jobs of
    128 channels). Cutting the planes into smaller blocks instead cost 10 % there (thinner
    products, and twice the partial sums); this costs reading grad_output twice."""
    cdef Py_ssize_t jobs = g.groups * nch, want
    if jobs >= REDUCE_CHUNKS or 2.0 * g.Og * g.KK * g.N * g.P / nch < SPLIT_FLOPS:
        return g.Cg
    want = min(g.Cg, (REDUCE_CHUNKS + jobs - 1) // jobs)
    return (g.Cg + want - 1) // want


# ----------------------------------------------------------------------------------------------
# entry points

cdef Py_ssize_t _unroll_scratch(Geom* g) noexcept nogil:
    """Per-thread scratch of the gemm forward and weight gradient: the unrolled block, the
    product (or grad_output) of a multi-sample block, and the phases of a strided input."""
    if g.sw > 1:
        return (g.KK + g.Og) * g.TC + decimate_scratch(g)
    return (g.KK + (g.Og if g.S > 1 else 0)) * g.TC


# ----------------------------------------------------------------------------------------------
# packed algorithm: the gemm path's forward, without an unrolled copy
#
# A GEMM whose unrolled operand is read in place: the tiles of pyc_pgemm* (src/_simd.h) take 6
# filters x 2 vectors of output positions and sum w[o, c, i, j] * x[c, p*sh + i*dh,
# q*sw + j*dw] over (c, i, j), the input straight from zero-padded rows, the weights packed 6
# filters at a time. Jobs are strips of an output plane (RH rows x CW columns) of one sample and
# group; a job pads the input its strip reads into its thread's scratch, then runs, for each
# tile of positions, chunks of CB input channels over all its tiles of filters, so that the
# chunk's inputs stay in the L1 cache while every filter passes over them; where one chunk
# holds all channels, each tile of filters runs along the whole strip instead (its weights
# in L1, the strip's inputs in L2), writing its output rows in order. With a column
# stride sw each padded row is stored as its sw phases (phase r holds the columns m*sw + r), so
# that tap j reads consecutive elements of phase (j*dw) % sw from (j*dw) // sw on: the same
# tiles, every tap a real one. Outputs of a tile that stops short of 6 filters or of its
# positions are summed in the job's own tail buffer and copied out. Each output takes its terms
# in (c, i, j) order whatever the strips, chunks or threads: the bits depend on the shape
# alone.

cdef enum:
    PG_ROWS = 6                 # filters per tile
    PG_STRIP = 256              # output columns per strip at most, in float64 (float32: twice)
    PG_STRIP_PIXELS = 2048      # output pixels per strip of several rows, about
    PG_PANEL_BYTES = 1 << 14    # padded inputs one tile reads per chunk of channels, at most
    PG_WEIGHT_BYTES = 3 << 16   # packed weights of all filters per chunk of channels, at most

#: the packed path's blocking (packed_geom), for pyconv1d.functional's exact scratch figure
PACKED_TILE_ROWS = PG_ROWS
PACKED_STRIP = PG_STRIP
PACKED_STRIP_PIXELS = PG_STRIP_PIXELS


cdef struct Packed:
    Py_ssize_t TW               # positions per tile: two 32-byte vectors
    Py_ssize_t CW, RH           # output columns and rows per strip
    Py_ssize_t NCS, NRS         # strips across and down a plane
    Py_ssize_t Wd               # a padded row's phase: elements (sw phases to a row)
    Py_ssize_t Wl, Hl, plane    # a strip's padded input: row pitch, rows, elements per plane
    Py_ssize_t OB               # tiles of PG_ROWS filters per group
    Py_ssize_t CB               # input channels per chunk


cdef Packed packed_geom(Geom* g) noexcept nogil:
    cdef Packed k
    cdef Py_ssize_t line
    k.TW = 64 // g.itemsize
    k.CW = max(1, min(g.W_out, PG_STRIP * 8 // g.itemsize))
    k.RH = max(1, min(g.H_out, PG_STRIP_PIXELS // k.CW))
    k.NCS = (g.W_out + k.CW - 1) // k.CW
    k.NRS = (g.H_out + k.RH - 1) // k.RH
    k.Wd = k.CW + (g.KW - 1) * g.dw // g.sw
    k.Wl = g.sw * k.Wd
    k.Hl = (k.RH - 1) * g.sh + (g.KH - 1) * g.dh + 1
    # planes a whole odd number of 64-byte lines apart, so that the rows a tile reads from
    # successive channels fall into different sets of the L1 cache (about 4 KiB apart, they
    # would evict each other)
    line = 64 // g.itemsize
    k.plane = (k.Hl * k.Wl + line - 1) // line
    k.plane = (k.plane + 1 - k.plane % 2) * line
    k.OB = (g.Og + PG_ROWS - 1) // PG_ROWS
    k.CB = max(1, min(g.Cg, PG_PANEL_BYTES
                      // (g.itemsize * g.KH * (min(g.KW, g.sw) * k.TW
                                               + (g.KW - 1) * g.dw // g.sw + 16)),
                      PG_WEIGHT_BYTES // (g.itemsize * g.KH * g.KW * k.OB * PG_ROWS)))
    return k


cdef inline Py_ssize_t _packed_scratch(Geom* g) noexcept nogil:
    """Elements per thread: a strip's padded input planes, the slack its last tiles read past
    them, the tail tiles of every filter and a 64-byte line to align them; -1 past 2**60
    bytes (where the 64-bit products could wrap: the caller never runs such a call)."""
    cdef Packed k = packed_geom(g)
    cdef double rows = <double>max(g.H_out, 1) * g.sh + <double>(g.KH - 1) * g.dh
    cdef double cols = <double>max(g.W_out, 1) * g.sw + <double>(g.KW - 1) * g.dw
    if (<double>g.Cg * rows * cols + <double>g.C_out * 64) * g.itemsize > <double>(1 << 60):
        return -1
    return g.Cg * k.plane + k.TW + k.OB * PG_ROWS * k.TW + 64 // g.itemsize


cdef inline void _pgemm(int nv, Py_ssize_t C, Py_ssize_t plane, Py_ssize_t KHW,
                        const Py_ssize_t* off, const floating* x, const floating* w,
                        const floating* b, floating* out, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        pyc_pgemm_f(nv, C, plane, KHW, off, x, w, b, out, ldo)
    else:
        pyc_pgemm_d(nv, C, plane, KHW, off, x, w, b, out, ldo)


cdef void _packed_job(const floating* x, const floating* wk, const floating* bk, floating* y,
                      floating* buf, const Py_ssize_t* off, Geom* g, Packed* k,
                      Py_ssize_t h0, Py_ssize_t w0) noexcept nogil:
    """The strip of outputs from row h0 and column w0 of one sample and group: x its input
    planes, y its output planes, wk and bk the group's packed weights and biases."""
    cdef Py_ssize_t KHW = g.KH * g.KW, half = k.TW // 2
    cdef Py_ssize_t rh = min(k.RH, g.H_out - h0), cw = min(k.CW, g.W_out - w0)
    cdef Py_ssize_t c, r, j, jt, n, c0, ct, cn, ob, rows, i, ldo
    cdef int nv
    cdef bint full, whole
    cdef floating* tails
    cdef floating* out
    cdef floating* dst
    buf = buf + (-(<size_t>buf) % 64) // sizeof(floating)    # planes on 64-byte lines
    tails = buf + g.Cg * k.plane + k.TW
    for c in range(g.Cg):
        # each padded row as its sw phases (with unit strides, the padded row itself)
        _phase_split(x + c * g.H * g.W, g.H, g.W, buf + c * k.plane, k.Hl, k.Wd, 1, g.sw, 1,
                     g.sw, g.pt - h0 * g.sh, g.pl - w0 * g.sw, k.Wd, k.Wl)
        # the lanes of a tile past its outputs read on into the gap between the planes:
        # zeros, never stale values (a denormal there would slow the whole vector down)
        memset(buf + c * k.plane + k.Hl * k.Wl, 0, (k.plane - k.Hl * k.Wl) * sizeof(floating))
    memset(buf + g.Cg * k.plane, 0, k.TW * sizeof(floating))
    if k.CB >= g.Cg:
        # all channels in one chunk: each tile of filters passes along the whole strip, so
        # that its six output rows are written one after the other instead of a tile's
        # worth of every filter at a time (scattered over all Og rows: 1.1-3x slower where
        # the reduction is short, measured with AVX2)
        for ob in range(k.OB):
            rows = min(PG_ROWS, g.Og - ob * PG_ROWS)
            for r in range(rh):
                for jt in range((cw + k.TW - 1) // k.TW):
                    j = jt * k.TW
                    n = min(k.TW, cw - j)
                    nv = 2 if n > half else 1
                    whole = n == nv * half and rows == PG_ROWS
                    dst = y + (h0 + r) * g.W_out + w0 + j + ob * PG_ROWS * g.P
                    out = dst if whole else tails
                    _pgemm(nv, g.Cg, k.plane, KHW, off, buf + r * g.sh * k.Wl + j,
                           wk + ob * g.KK * PG_ROWS, bk + ob * PG_ROWS, out,
                           g.P if whole else k.TW)
                    if not whole:
                        for i in range(rows):
                            memcpy(dst + i * g.P, tails + i * k.TW, n * sizeof(floating))
        return
    for r in range(rh):
        for jt in range((cw + k.TW - 1) // k.TW):
            j = jt * k.TW
            n = min(k.TW, cw - j)
            nv = 2 if n > half else 1            # vectors of positions in the tile
            full = n == nv * half                # ... all of them outputs
            dst = y + (h0 + r) * g.W_out + w0 + j
            for ct in range((g.Cg + k.CB - 1) // k.CB):
                c0 = ct * k.CB
                cn = min(k.CB, g.Cg - c0)
                for ob in range(k.OB):
                    whole = full and g.Og - ob * PG_ROWS >= PG_ROWS
                    out = dst + ob * PG_ROWS * g.P if whole else tails + ob * PG_ROWS * k.TW
                    ldo = g.P if whole else k.TW
                    _pgemm(nv, cn, k.plane, KHW, off,
                           buf + c0 * k.plane + r * g.sh * k.Wl + j,
                           wk + (ob * g.KK + c0 * KHW) * PG_ROWS,
                           bk + ob * PG_ROWS if c0 == 0 else NULL, out, ldo)
            for ob in range(k.OB):
                rows = min(PG_ROWS, g.Og - ob * PG_ROWS)
                if full and rows == PG_ROWS:
                    continue
                for i in range(rows):
                    memcpy(dst + (ob * PG_ROWS + i) * g.P, tails + (ob * PG_ROWS + i) * k.TW,
                           n * sizeof(floating))


def packed_scratch(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                   Py_ssize_t itemsize):
    """Scratch elements one thread needs for forward_packed()."""
    cdef Geom g = shape_geom(xshape, wshape, yshape, geometry, itemsize)
    return _packed_scratch(&g)


def forward_packed(const floating[:, :, :, ::1] x,      # IN  (N, C_in, H, W)
                   const floating[:, :, :, ::1] w,      # IN  (C_out, Cg, KH, KW)
                   const floating[::1] bias,            # IN  (C_out,): zeros for none
                   floating[:, :, :, ::1] y,            # OUT (N, C_out, H_out, W_out)
                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                   Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads,
                   floating[:, ::1] scratch):           # (num_threads, packed_scratch)
    """forward() by the packed algorithm (above)."""
    if sh < 1 or sw < 1:
        raise ValueError(f"strides must be >= 1, got ({sh}, {sw})")
    cdef Geom g = make_geom(x.shape, w.shape, y.shape, sh, sw, pt, pl, dh, dw, groups,
                            sizeof(floating))
    cdef Packed k = packed_geom(&g)
    cdef Py_ssize_t job, n, gr, rs, cs, ob, i, r, o, t, KHW = g.KH * g.KW
    cdef Py_ssize_t strips = k.NRS * k.NCS
    if bias.shape[0] != g.C_out:
        raise ValueError(f"bias must have {g.C_out} elements, got {bias.shape[0]}")
    if g.N == 0 or g.P == 0 or g.C_out == 0:
        return
    cdef Py_ssize_t need = _packed_scratch(&g)
    if need < 0:
        raise ValueError("the packed path's scratch would pass 2**60 bytes")
    if scratch.shape[0] < max(num_threads, 1) or scratch.shape[1] < need:
        raise ValueError(f"scratch must be at least ({num_threads}, {need}), "
                         f"got ({scratch.shape[0]}, {scratch.shape[1]})")
    cdef Py_ssize_t packed = g.groups * k.OB * PG_ROWS
    cdef floating* wk = <floating*>malloc(max(packed * g.KK, 1) * sizeof(floating))
    cdef floating* bk = <floating*>malloc(max(packed, 1) * sizeof(floating))
    cdef Py_ssize_t* off = <Py_ssize_t*>malloc(KHW * sizeof(Py_ssize_t))
    if wk == NULL or bk == NULL or off == NULL:
        free(wk)
        free(bk)
        free(off)
        raise MemoryError()
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef floating* yp = &y[0, 0, 0, 0]
    cdef floating* sp = &scratch[0, 0]
    try:
        with nogil:
            # wk[gr, ob, r, i] = w[gr*Og + ob*6 + i, r] over the reduction r = (c, i, j); the
            # filters past Og are zeros
            for gr in range(g.groups):
                for ob in range(k.OB):
                    for i in range(PG_ROWS):
                        o = ob * PG_ROWS + i
                        t = (gr * k.OB + ob) * PG_ROWS
                        bk[t + i] = bias[gr * g.Og + o] if o < g.Og else 0
                        for r in range(g.KK):
                            wk[(t * g.KK) + r * PG_ROWS + i] = \
                                wp[(gr * g.Og + o) * g.KK + r] if o < g.Og else 0
            for i in range(g.KH):
                for r in range(g.KW):
                    off[i * g.KW + r] = (i * g.dh * k.Wl + (r * g.dw) % g.sw * k.Wd
                                         + (r * g.dw) // g.sw)
            for job in prange(g.N * g.groups * strips, schedule='dynamic',
                              num_threads=num_threads):
                n = job // (g.groups * strips)
                gr = (job // strips) % g.groups
                rs = (job % strips) // k.NCS
                cs = job % k.NCS
                _packed_job(xp + (n * g.C_in + gr * g.Cg) * g.H * g.W,
                            wk + gr * k.OB * PG_ROWS * g.KK, bk + gr * k.OB * PG_ROWS,
                            yp + (n * g.C_out + gr * g.Og) * g.P,
                            sp + threadid() * scratch.shape[1], off, &g, &k,
                            rs * k.RH, cs * k.CW)
    finally:
        free(wk)
        free(bk)
        free(off)


# ----------------------------------------------------------------------------------------------
# depthwise forward over blocks of channels
#
# A depthwise layer (one input and one output channel per group) filters each plane alone:
# over NCHW planes the direct path pads a plane, filters it as one flat FIR and copies its rows
# out, which on small planes costs more than the filter (a 3x3 depthwise forward over 28x28
# planes: four fifths of its time around pyc_fir_taps). Here a job takes _dw_lanes consecutive
# channels of one sample (one 32-byte vector of them), transposes their planes into one
# zero-padded plane of channel vectors (pyc_dw_pack) and filters that with aligned vector
# loads, strides and dilations being only other offsets (pyc_dw_conv), eight outputs at a time
# transposed back into the output planes (1.2-3.2x as fast with AVX2). The same sums in the
# same order as the padded planes (bias, then the taps in weight order): the same bits in
# float32; in float64 the padded planes left some edge outputs to loops without fused
# multiply-adds, which now take them.

cdef int DW_BLOCKED = 1

def _dw_blocked(int on):
    """Turns the blocked depthwise forward on or off (for the tests and benchmarks that compare
    it with the padded planes); returns the previous setting."""
    global DW_BLOCKED
    old, DW_BLOCKED = DW_BLOCKED, on
    return old


cdef inline Py_ssize_t _dw_lanes(Geom* g) noexcept nogil:
    """Channels per job of the blocked depthwise forward: one 32-byte vector."""
    return 32 // g.itemsize


cdef inline Py_ssize_t _dw_hn(Geom* g) noexcept nogil:
    """Rows of the padded plane the outputs read."""
    return (g.H_out - 1) * g.sh + (g.KH - 1) * g.dh + 1


cdef inline Py_ssize_t _dw_wn(Geom* g) noexcept nogil:
    return (g.W_out - 1) * g.sw + (g.KW - 1) * g.dw + 1


cdef inline bint _dw_path(Geom* g) noexcept nogil:
    """Whether the direct forward runs the blocked depthwise kernel: depthwise, with at least
    DW_MIN_CHANNELS channels and a padded plane of channel vectors of at most DW_MAX_BYTES;
    not float64 conv1d rows of up to 512 outputs with unit strides and 2-6 taps, where the
    transposes cost more than they save (measured with AVX2: 0.83-0.94x the rows' speed over
    rows of 200; 1.1-1.7x over rows of 1,000 and 16,000, and 1.2-1.3x from 7 taps)."""
    return (DW_BLOCKED and g.Cg == 1 and g.Og == 1 and g.C_out >= DW_MIN_CHANNELS
            and <double>_dw_hn(g) * _dw_wn(g) * 32 <= DW_MAX_BYTES
            and not (g.itemsize == 8 and _conv1d_rows(g) and g.KW < 7
                     and g.W_out <= 512))


cdef inline Py_ssize_t _dw_scratch(Geom* g) noexcept nogil:
    """Elements per thread: the padded plane of channel vectors, the weights and bias of a
    block of channels, and a 32-byte vector to align them."""
    return (_dw_hn(g) * _dw_wn(g) + g.KH * g.KW + 2) * _dw_lanes(g)


cdef void _dw_offsets(Geom* g, Py_ssize_t* off) noexcept nogil:
    """The taps' offsets into g's padded plane of channel vectors."""
    cdef Py_ssize_t k
    for k in range(g.KH * g.KW):
        off[k] = ((k // g.KW) * g.dh * _dw_wn(g) + (k % g.KW) * g.dw) * _dw_lanes(g)


cdef void _dw_weights(const floating* w, Py_ssize_t nc, Geom* g, bint flip,
                      floating* wb) noexcept nogil:
    """The kernels of nc channels (w at the first's), flipped or not, as KH*KW vectors of
    channels, zeros for the lanes past nc."""
    cdef Py_ssize_t V = _dw_lanes(g), KHW = g.KH * g.KW, c, k
    for k in range(KHW):
        for c in range(V):
            wb[k * V + c] = w[c * KHW + (KHW - 1 - k if flip else k)] if c < nc else 0


cdef inline void _dw_pack(const floating* x, Py_ssize_t nc, Py_ssize_t plane, Py_ssize_t H,
                          Py_ssize_t W, floating* buf, Py_ssize_t Hp, Py_ssize_t Wp,
                          Py_ssize_t pt, Py_ssize_t pl) noexcept nogil:
    if floating is float:
        pyc_dw_pack_f(x, nc, plane, H, W, buf, Hp, Wp, pt, pl)
    else:
        pyc_dw_pack_d(x, nc, plane, H, W, buf, Hp, Wp, pt, pl)


cdef void _dw_job(const floating* x, const floating* w, const floating* bias, floating* y,
                  floating* buf, const Py_ssize_t* off, Geom* g, Py_ssize_t nc,
                  bint flip=False) noexcept nogil:
    """The nc (<= _dw_lanes) channels from x's first plane into y's (w and bias at their
    first channel's; bias NULL: zeros; flip: the kernels flipped, for the input gradient's
    forward over grad_output, _dw_flipped)."""
    cdef Py_ssize_t V = _dw_lanes(g), KHW = g.KH * g.KW, Hn = _dw_hn(g), Wn = _dw_wn(g), c
    buf = buf + (-(<size_t>buf) % 32) // sizeof(floating)
    cdef floating* wb = buf + Hn * Wn * V
    cdef floating* bb = wb + KHW * V
    _dw_weights(w, nc, g, flip, wb)
    for c in range(V):
        bb[c] = bias[c] if bias != NULL and c < nc else 0
    _dw_pack(x, nc, g.H * g.W, g.H, g.W, buf, Hn, Wn, g.pt, g.pl)
    if floating is float:
        pyc_dw_conv_f(buf, Wn, KHW, off, wb, bb, g.sh, g.sw, g.H_out, g.W_out, y, g.P, nc)
    else:
        pyc_dw_conv_d(buf, Wn, KHW, off, wb, bb, g.sh, g.sw, g.H_out, g.W_out, y, g.P, nc)


cdef enum:
    # output columns per job of forward_windows (the shape's split alone: bits independent
    # of the thread count)
    WINDOW_COLUMNS = 256


def windows_scratch(tuple xshape, tuple wshape, Py_ssize_t stride):
    """(per-thread scratch of forward_windows, chunks of grad_weight_windows' partials) for
    input (N, C_in, L) and weight (C_out, C_in, K): a block of products when the batch's
    windows are one operand (one input channel, rows a whole number of strides), else 0;
    up to REDUCE_CHUNKS chunks of samples. The shapes' alone."""
    cdef bint flat = xshape[1] == 1 and stride >= 1 and xshape[2] % stride == 0
    return (wshape[0] * WINDOW_COLUMNS if flat else 0,
            max(1, min(REDUCE_CHUNKS, <Py_ssize_t>xshape[0])))


def forward_windows(const floating[:, :, ::1] x,    # IN  (N, C_in, L), read in place
                    const floating[:, :, ::1] w,    # IN  (C_out, C_in, K)
                    const floating[::1] bias,       # IN  (C_out,): zeros for none
                    floating[:, :, ::1] y,          # OUT (N, C_out, L_out), overwritten
                    Py_ssize_t stride, int num_threads,
                    floating[:, ::1] scratch):      # (num_threads, windows_scratch[0])
    """The unpadded, undilated, ungrouped strided conv1d without an unroll: output t of
    sample n reads the window x[n, c, t*s : t*s + K] of each channel, so the taps j*s ..
    j*s + K_j - 1 (K_j = min(s, K - j*s)) of every window form a matrix whose rows lie s
    apart in x, a BLAS operand with leading dimension s >= K_j: y[n] = sum over channels c
    and runs j of w[:, c, run j] @ (those rows)^T, in that order, then + bias. With one
    input channel and rows a whole number of strides long, the samples' windows lie s apart
    across the batch too (a window past its row's last output reads the next row, and is
    dropped): the products run over WINDOW_COLUMNS windows of the whole batch at a time, into
    the thread's scratch the outputs are copied from; otherwise one job per sample and block
    of WINDOW_COLUMNS outputs, straight into y."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t O = w.shape[0], K = w.shape[2], T = y.shape[2]
    cdef Py_ssize_t job, n, t0, nt, c, j, kj, o, t, u, k, nblk, runs, per, R = 0, U = 0, ld
    cdef Py_ssize_t cols = WINDOW_COLUMNS
    cdef bint flat
    cdef const floating* xp
    cdef const floating* wp
    cdef const floating* bp
    cdef floating* yp
    cdef floating* buf = NULL
    cdef floating* out
    cdef Py_ssize_t need = windows_scratch((N, C, L), (O, C, K), stride)[0]
    _windows_check(N, C, L, O, K, T, stride, w.shape[1], y.shape[0], y.shape[1], "y")
    if bias.shape[0] != O:
        raise ValueError(f"bias must have {O} elements, got {bias.shape[0]}")
    if N == 0 or O == 0 or T == 0:
        return
    runs = (K + stride - 1) // stride
    per = (T + WINDOW_COLUMNS - 1) // WINDOW_COLUMNS       # blocks per row, row by row
    flat = need > 0
    if flat and (scratch.shape[0] < max(num_threads, 1) or scratch.shape[1] < need):
        raise ValueError(f"scratch must be at least ({num_threads}, {need}), got "
                         f"({scratch.shape[0]}, {scratch.shape[1]})")
    if flat:
        R = L // stride                 # windows per row, T of them outputs
        U = (N - 1) * R + T             # windows up to the last row's last output
        # an even number of blocks of equal width, at most WINDOW_COLUMNS (the shape's split)
        nblk = 2 * ((U + 2 * WINDOW_COLUMNS - 1) // (2 * WINDOW_COLUMNS)) if U >= 64 else 1
        cols = (U + nblk - 1) // nblk
        buf = &scratch[0, 0]
    else:
        nblk = N * per
    xp = &x[0, 0, 0]
    wp = &w[0, 0, 0]
    bp = &bias[0]
    yp = &y[0, 0, 0]
    with nogil:
        for job in prange(nblk, schedule='static', num_threads=num_threads):
            if flat:
                t0 = job * cols
                nt = min(cols, U - t0)
                out = buf + threadid() * scratch.shape[1]
                ld = nt
                n = 0
            else:
                n = job // per
                t0 = job % per * WINDOW_COLUMNS
                nt = min(WINDOW_COLUMNS, T - t0)
                out = yp + n * O * T + t0
                ld = T
            for c in range(C):
                for j in range(runs):
                    kj = min(stride, K - j * stride)
                    gemm(False, True, O, nt, kj, <floating>1, wp + c * K + j * stride, C * K,
                         xp + (n * C + c) * L + t0 * stride + j * stride, stride,
                         <floating>(0 if c == 0 and j == 0 else 1), out, ld)
            if flat:
                # the block's windows row by row: row u // R, outputs u % R < T
                u = t0
                while u < t0 + nt:
                    n = u // R
                    t = u - n * R
                    k = min(t0 + nt, (n + 1) * R) - u      # windows of this row in the block
                    if t < T:
                        for o in range(O):
                            for j in range(min(k, T - t)):
                                yp[(n * O + o) * T + t + j] = out[o * ld + u - t0 + j] + bp[o]
                    u = u + k
            else:
                for o in range(O):
                    for t in range(nt):
                        out[o * ld + t] = out[o * ld + t] + bp[o]


def grad_input_windows(const floating[:, :, ::1] go,   # IN  (N, C_out, L_out)
                       const floating[:, :, ::1] w,    # IN  (C_out, C_in, K)
                       floating[:, :, ::1] gx,         # OUT (N, C_in, L), overwritten
                       Py_ssize_t stride, int num_threads):
    """The input gradient of forward_windows's layers without col2im: per sample and input
    channel, for each run j of taps in order, the rows t*s + j*s .. t*s + j*s + K_j - 1 of
    gx (s apart, so disjoint: K_j <= s) += go[n]^T @ w[:, c, run j]. One job per sample and
    input channel."""
    cdef Py_ssize_t N = gx.shape[0], C = gx.shape[1], L = gx.shape[2]
    cdef Py_ssize_t O = w.shape[0], K = w.shape[2], T = go.shape[2]
    cdef Py_ssize_t job, n, c, j, runs
    cdef const floating* gp
    cdef const floating* wp
    cdef floating* xp
    _windows_check(N, C, L, O, K, T, stride, w.shape[1], go.shape[0], go.shape[1],
                   "grad_output")
    if N == 0 or C == 0 or L == 0:
        return
    xp = &gx[0, 0, 0]
    if O == 0 or T == 0:
        memset(xp, 0, N * C * L * sizeof(floating))
        return
    runs = (K + stride - 1) // stride
    gp = &go[0, 0, 0]
    wp = &w[0, 0, 0]
    with nogil:
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            n = job // C
            c = job % C
            memset(xp + job * L, 0, L * sizeof(floating))
            for j in range(runs):
                gemm(True, False, T, min(stride, K - j * stride), O, <floating>1,
                     gp + n * O * T, T, wp + c * K + j * stride, C * K, <floating>1,
                     xp + job * L + j * stride, stride)


def grad_weight_windows(const floating[:, :, ::1] go,   # IN  (N, C_out, L_out)
                        const floating[:, :, ::1] x,    # IN  (N, C_in, L)
                        floating[:, :, ::1] gw,         # OUT (C_out, C_in, K)
                        Py_ssize_t stride, int num_threads,
                        floating[:, :, ::1] partials):  # (chunks, C_out, C_in*K)
    """The weight gradient of forward_windows's layers without an unroll: per chunk of
    samples (partials.shape[0] chunks, the shape's split), its partial[:, c, run j] += go[n]
    @ (the rows of run j's taps, s apart in x[n, c]), samples in order; then gw = the
    chunks' sum in chunk order."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t O = gw.shape[0], K = gw.shape[2], T = go.shape[2]
    cdef Py_ssize_t nch = partials.shape[0], P = O * C * K
    cdef Py_ssize_t ch, n, n0, n1, c, j, runs, i
    cdef const floating* gp
    cdef const floating* xp
    cdef floating* wp
    cdef floating* pp
    cdef floating* part
    _windows_check(N, C, L, O, K, T, stride, gw.shape[1], go.shape[0], go.shape[1],
                   "grad_output")
    if P == 0:
        return
    wp = &gw[0, 0, 0]
    if N == 0 or T == 0:
        memset(wp, 0, P * sizeof(floating))
        return
    if nch < 1 or partials.shape[1] != O or partials.shape[2] != C * K:
        raise ValueError(f"partials must be (chunks >= 1, {O}, {C * K}), got "
                         f"{tuple(partials.shape)[:3]}")
    runs = (K + stride - 1) // stride
    gp = &go[0, 0, 0]
    xp = &x[0, 0, 0]
    pp = &partials[0, 0, 0]
    with nogil:
        for ch in prange(nch, schedule='dynamic', num_threads=num_threads):
            part = pp + ch * P
            n0 = ch * N // nch
            n1 = (ch + 1) * N // nch
            memset(part, 0, P * sizeof(floating))
            for n in range(n0, n1):
                for c in range(C):
                    for j in range(runs):
                        gemm(False, False, O, min(stride, K - j * stride), T, <floating>1,
                             gp + n * O * T, T, xp + (n * C + c) * L + j * stride, stride,
                             <floating>1, part + c * K + j * stride, C * K)
        for i in prange(P, schedule='static', num_threads=num_threads):
            wp[i] = pp[i]
            for ch in range(1, nch):
                wp[i] = wp[i] + pp[ch * P + i]


cdef _windows_check(Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, Py_ssize_t O, Py_ssize_t K,
                    Py_ssize_t T, Py_ssize_t stride, Py_ssize_t wc, Py_ssize_t yn,
                    Py_ssize_t yo, str what):
    """The window kernels' shapes (N samples of C rows of L, a weight of O x wc x K, ``what``
    (y or grad_output) of yn samples of yo rows of T): a ValueError naming what does not
    match."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if wc != C or yn != N or yo != O:
        raise ValueError(f"shapes do not match: {N} samples of {C} channels, a weight of "
                         f"{O} x {wc} x {K}, {what} of {yn} samples of {yo} channels")
    if K < 1 or T != max(0, (L - K) // stride + 1):
        raise ValueError(f"{what} must have {max(0, (L - K) // stride + 1)} outputs per "
                         f"row for rows of {L} and {K} taps at stride {stride}, got {T}")


def forward_scratch(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                    Py_ssize_t itemsize, bint use_gemm):
    """Scratch elements one thread needs for forward(): the unrolled block and, when a block
    spans several samples, the product before it is added into the planes; or a padded plane."""
    cdef Geom g = shape_geom(xshape, wshape, yshape, geometry, itemsize)
    if use_gemm:
        return _unroll_scratch(&g)
    if _dw_path(&g):
        return _dw_scratch(&g)
    return plane_scratch(&g, 0) if _fwd_plane_path(&g) else 0


cdef Py_ssize_t* _thread_tags(int num_threads) except NULL:
    """Per thread t of a padded-plane call, at tags[t * TAG_STRIDE], the (sample, group) whose
    padded planes its scratch holds: -1, none yet (malloc'ed; the caller frees). Each thread's
    tag has a 64-byte cache line to itself: written after every job, tags sharing a line
    kept it moving between the cores (5 % of a 2-thread conv1d input gradient's time)."""
    cdef Py_ssize_t t, n = max(num_threads, 1)
    cdef Py_ssize_t* tags = <Py_ssize_t*>malloc(n * TAG_STRIDE * sizeof(Py_ssize_t))
    if tags == NULL:
        raise MemoryError()
    for t in range(n):
        tags[t * TAG_STRIDE] = -1
    return tags


def forward(const floating[:, :, :, ::1] x,      # IN  (N, C_in, H, W)
            const floating[:, :, :, ::1] w,      # IN  (C_out, Cg, KH, KW)
            const floating[::1] bias,            # IN  (C_out,): zeros for none
            floating[:, :, :, ::1] y,            # OUT (N, C_out, H_out, W_out), overwritten
            Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
            Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads,
            bint use_gemm, floating[:, ::1] scratch):   # scratch: (num_threads, forward_scratch)
    cdef Geom g = make_geom(x.shape, w.shape, y.shape,
                            sh, sw, pt, pl, dh, dw, groups, sizeof(floating))
    cdef Py_ssize_t job, n, o, gr, b, t, nb = 1, nob = 1
    cdef Py_ssize_t* last = NULL
    if bias.shape[0] != g.C_out:
        raise ValueError(f"bias must have {g.C_out} elements, got {bias.shape[0]}")
    if g.N == 0 or g.P == 0 or g.C_out == 0:
        return
    cdef bint dwise = not use_gemm and _dw_path(&g)
    cdef bint plane = not use_gemm and not dwise and _fwd_plane_path(&g)
    cdef Py_ssize_t V = _dw_lanes(&g), nblk = (g.C_out + V - 1) // V
    if plane:
        nb = _plane_block(&g, g.N * g.groups, g.Og)
        nob = (g.Og + nb - 1) // nb
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef const floating* bp = &bias[0]
    cdef floating* yp = &y[0, 0, 0, 0]
    cdef floating* sp = NULL
    cdef Py_ssize_t* off = NULL
    if use_gemm or plane or dwise:
        sp = &scratch[0, 0]
    cdef bint pad_once = plane and _fwd_pad_once(&g)
    if dwise:
        if scratch.shape[0] < max(num_threads, 1) or scratch.shape[1] < _dw_scratch(&g):
            raise ValueError(f"scratch must be at least ({num_threads}, {_dw_scratch(&g)}), "
                             f"got ({scratch.shape[0]}, {scratch.shape[1]})")
        off = <Py_ssize_t*>malloc(g.KH * g.KW * sizeof(Py_ssize_t))
        if off == NULL:
            raise MemoryError()
        _dw_offsets(&g, off)
    elif plane:
        off = tap_offsets(&g, OFF_PLANE_FORWARD)
        try:
            last = _thread_tags(num_threads)
        except MemoryError:
            free(off)
            raise
    elif not use_gemm:
        off = tap_offsets(&g, OFF_ROW_FORWARD)
    try:
        with nogil:
            if use_gemm:
                for job in prange(g.NU * g.groups, schedule='dynamic', num_threads=num_threads):
                    b = job // g.groups
                    gr = job % g.groups
                    _gemm_forward_job(xp, wp + gr * g.Og * g.KK, bp, yp,
                                      sp + threadid() * scratch.shape[1], &g, gr, b)
            elif dwise:
                # one job per (sample, block of V channels)
                for job in prange(g.N * nblk, schedule='static', num_threads=num_threads):
                    n = job // nblk
                    o = (job % nblk) * V
                    _dw_job(xp + (n * g.C_in + o) * g.H * g.W, wp + o * g.KK, bp + o,
                            yp + (n * g.C_out + o) * g.P, sp + threadid() * scratch.shape[1],
                            off, &g, min(V, g.C_out - o))
            elif plane:
                # one job per (n, block of nb outputs of a group); a static schedule gives
                # each thread consecutive blocks, and when a sample's padded planes fit
                # PAD_ONCE_BYTES, a thread pads them only for its first block of that sample
                for job in prange(g.N * g.groups * nob, schedule='static',
                                  num_threads=num_threads):
                    n = job // (g.groups * nob)
                    gr = (job // nob) % g.groups
                    o = gr * g.Og + (job % nob) * nb
                    t = threadid()
                    _plane_forward(xp + (n * g.C_in + gr * g.Cg) * g.H * g.W,
                                   wp + o * g.KK, bp + o, yp + (n * g.C_out + o) * g.P,
                                   sp + t * scratch.shape[1], off, &g,
                                   min(nb, (gr + 1) * g.Og - o),
                                   pad_once and last[t * TAG_STRIDE] == job // nob)
                    last[t * TAG_STRIDE] = job // nob
            else:
                for job in prange(g.N * g.C_out, schedule='static', num_threads=num_threads):
                    n = job // g.C_out
                    o = job % g.C_out
                    fill(g.P, bp[o], yp + (n * g.C_out + o) * g.P)
                    _direct_forward_plane(xp + (n * g.C_in + (o // g.Og) * g.Cg) * g.H * g.W,
                                          wp + o * g.KK, yp + (n * g.C_out + o) * g.P, off, &g)
    finally:
        free(off)
        free(last)


# ----------------------------------------------------------------------------------------------
# direct input gradient with strides, over phases
#
# Input position (r, s) lies at (v*sh + a, u*sw + b) of the padded plane; only the taps (i, j)
# with (i*dh) % sh == a and (j*dw) % sw == b reach it, from grad_output (v - (i*dh) // sh,
# u - (j*dw) // sw). So each phase (a, b) of the input gradient is a unit-stride filter of
# grad_output, zero-padded by the taps' reach, with that phase's taps: contiguous reads and
# the accumulators in registers, where tap by tap along strided rows the 3x3 stride-2
# depthwise input gradient ran at 0.2-0.5x torch's speed in float32.

cdef inline Py_ssize_t _ph_rt(Geom* g) noexcept nogil:
    """Rows of zeros above grad_output in the phases' padded planes: the taps' row reach."""
    return (g.KH - 1) * g.dh // g.sh


cdef inline Py_ssize_t _ph_lt(Geom* g) noexcept nogil:
    return (g.KW - 1) * g.dw // g.sw


cdef inline Py_ssize_t _ph_hv(Geom* g) noexcept nogil:
    """Rows of a phase of the padded input plane (the most any phase has)."""
    return (g.pt + g.H + g.sh - 1) // g.sh


cdef inline Py_ssize_t _ph_wg(Geom* g) noexcept nogil:
    """The width of the phases' planes: a phase's columns and the taps' column reach."""
    return (g.pl + g.W + g.sw - 1) // g.sw + _ph_lt(g)


cdef inline Py_ssize_t _ph_plane(Geom* g) noexcept nogil:
    """Elements of one padded grad_output plane of the phase path."""
    return (_ph_hv(g) + _ph_rt(g)) * _ph_wg(g)


cdef inline bint _ph_merge(Geom* g) noexcept nogil:
    """Whether _phase_grad_input keeps every phase and merges each input row from its two
    column phases (pyc_phase_merge2): a column stride of 2 and a row stride of up to 8."""
    return g.sw == 2 and g.sh <= 8


cdef inline Py_ssize_t _ph_accs(Geom* g) noexcept nogil:
    """The phases' planes _phase_grad_input keeps: with _ph_merge every phase that taps
    reach and a plane of zeros for the others, else one at a time."""
    return min(g.KH * g.KW, 2 * g.sh) + 1 if _ph_merge(g) else 1


cdef inline void phase_merge2(const floating* p0, const floating* p1, Py_ssize_t W,
                              Py_ssize_t pl, floating* row) noexcept nogil:
    if floating is float:
        pyc_phase_merge2_f(p0, p1, W, pl, row)
    else:
        pyc_phase_merge2_d(p0, p1, W, pl, row)


cdef inline bint _gi_phase_path(Geom* g) noexcept nogil:
    """Whether the direct input gradient with strides runs over phases (_phase_grad_input):
    strides, and padded grad_output planes of at most four times an output plane's elements
    and 4,096 (not a padding or dilation far beyond the input: else tap by tap)."""
    return ((g.sh > 1 or g.sw > 1)
            and <double>(_ph_hv(g) + _ph_rt(g)) * _ph_wg(g) <= 4.0 * g.P + 4096)


cdef inline Py_ssize_t* _ph_order(Py_ssize_t* t, Py_ssize_t KHW) noexcept nogil:
    """_phase_table's taps by phase: position -> weight index."""
    return t + 1 + 4 * KHW


cdef inline Py_ssize_t* _ph_offsets(Py_ssize_t* t, Py_ssize_t KHW) noexcept nogil:
    """_phase_table's offsets into the padded grad_output planes."""
    return t + 1 + 5 * KHW


cdef Py_ssize_t _ph_find(Py_ssize_t* t, Py_ssize_t nph, Geom* g, Py_ssize_t k) noexcept nogil:
    """The phase among t's first nph whose residues tap k has (nph: none yet)."""
    cdef Py_ssize_t q = 0, a = k // g.KW * g.dh % g.sh, b = k % g.KW * g.dw % g.sw
    while q < nph and (t[1 + 4 * q] != a or t[2 + 4 * q] != b):
        q = q + 1
    if q == nph:
        t[1 + 4 * q] = a
        t[2 + 4 * q] = b
        t[4 + 4 * q] = 0
    return q


cdef Py_ssize_t* _phase_table(Geom* g) except NULL:
    """The phases that taps reach, for _phase_grad_input (malloc'ed; the caller frees): t[0]
    phases, then per phase q at t[1 + 4*q] its row and column residue, its first position
    and its number of taps in the taps' order by phase (weight order within a phase, phases
    in the order of their first tap); then _ph_order (position -> weight index) and
    _ph_offsets: Og * KH * KW offsets into the padded grad_output planes, phase q's at
    Og * first, o * taps + m for its m-th tap on grad_output plane o."""
    cdef Py_ssize_t k, q, m, o, first = 0, nph = 0, KHW = g.KH * g.KW, Wg = _ph_wg(g)
    cdef Py_ssize_t* t = <Py_ssize_t*>malloc((1 + 5 * KHW + g.Og * KHW) * sizeof(Py_ssize_t))
    if t == NULL:
        raise MemoryError()
    cdef Py_ssize_t* order = _ph_order(t, KHW)
    cdef Py_ssize_t* off = _ph_offsets(t, KHW)
    for k in range(KHW):             # the phases and their numbers of taps
        q = _ph_find(t, nph, g, k)
        nph = max(nph, q + 1)
        t[4 + 4 * q] = t[4 + 4 * q] + 1
    t[0] = nph
    for q in range(nph):             # first positions; the counts restart to place the taps
        t[3 + 4 * q] = first
        first = first + t[4 + 4 * q]
        t[4 + 4 * q] = 0
    for k in range(KHW):
        q = _ph_find(t, nph, g, k)
        order[t[3 + 4 * q] + t[4 + 4 * q]] = k
        t[4 + 4 * q] = t[4 + 4 * q] + 1
    for q in range(nph):
        for m in range(t[4 + 4 * q]):
            k = order[t[3 + 4 * q] + m]
            for o in range(g.Og):
                off[g.Og * t[3 + 4 * q] + o * t[4 + 4 * q] + m] = (
                    o * _ph_plane(g) + (_ph_rt(g) - k // g.KW * g.dh // g.sh) * Wg
                    + _ph_lt(g) - k % g.KW * g.dw // g.sw)
    return t


cdef floating* _phase_weight(const floating* wp, Geom* g, Py_ssize_t* t) except NULL:
    """The weight for _phase_grad_input (malloc'ed; the caller frees): per input channel, its
    taps in _phase_table's layout (phase q's at Og * first, o * taps + m)."""
    cdef Py_ssize_t ch, gr, c, o, q, m, KHW = g.KH * g.KW
    cdef Py_ssize_t* order = _ph_order(t, KHW)
    cdef floating* wr = <floating*>malloc(max(g.C_in * g.Og * KHW, 1) * sizeof(floating))
    cdef floating* dst
    if wr == NULL:
        raise MemoryError()
    for ch in range(g.C_in):
        gr = ch // g.Cg
        c = ch % g.Cg
        for q in range(t[0]):
            dst = wr + ch * g.Og * KHW + g.Og * t[3 + 4 * q]
            for o in range(g.Og):
                for m in range(t[4 + 4 * q]):
                    dst[o * t[4 + 4 * q] + m] = wp[((gr * g.Og + o) * g.Cg + c) * KHW
                                                   + order[t[3 + 4 * q] + m]]
    return wr


cdef void _phase_grad_input(const floating* go, const floating* wr, floating* gx,
                            floating* pad, Py_ssize_t* t, Geom* g,
                            bint padded) noexcept nogil:
    """The input gradient of one input channel of one sample (go at its group's first
    grad_output plane, wr at the channel's phase weights, gx at its plane), with strides:
    the Og grad_output planes zero-padded by the taps' reach (_ph_rt rows above, _ph_lt
    columns left) at the phases' width, one after the other in pad (unless padded: pad
    holds them, left by the previous channel of the same sample and group); then for each
    phase, one FIR filter of all the phase's taps over all those planes (t: _phase_table),
    into the scratch after them from zeros, and its values scattered to their positions of
    gx; with _ph_merge, into a plane per phase and each row of gx then merged from its two
    column phases. Positions no tap reaches are zero."""
    cdef Py_ssize_t o, q, a, b, v, u, v0, v1, u0, u1, t0, t1, rr, ss
    cdef Py_ssize_t KHW = g.KH * g.KW, Wg = _ph_wg(g), plane = _ph_plane(g)
    cdef Py_ssize_t Hd = _ph_hv(g) + _ph_rt(g), hw = _ph_hv(g) * Wg
    cdef floating* acc = pad + g.Og * plane + SLACK
    cdef floating* ac
    cdef floating* zero = acc + (_ph_accs(g) - 1) * hw
    cdef floating* p0
    cdef floating* p1
    cdef bint merge = _ph_merge(g)
    cdef const Py_ssize_t* off = _ph_offsets(t, KHW)
    cdef Py_ssize_t[16] idx     # _ph_merge: residue (a, b) -> its plane, -1 for none
    if not padded:
        for o in range(g.Og):
            _phase_split(go + o * g.P, g.H_out, g.W_out, pad + o * plane, Hd, Wg, 1, 1, 1, 1,
                         _ph_rt(g), _ph_lt(g), plane, Wg)
        memset(pad + g.Og * plane, 0, SLACK * sizeof(floating))
        if merge:
            memset(zero, 0, hw * sizeof(floating))
    if merge:
        for q in range(2 * g.sh):
            idx[q] = -1
        for q in range(t[0]):
            idx[2 * t[1 + 4 * q] + t[2 + 4 * q]] = q
    else:
        memset(gx, 0, g.H * g.W * sizeof(floating))
    for q in range(t[0]):
        a = t[1 + 4 * q]
        b = t[2 + 4 * q]
        # the phase's rows v (input row v*sh + a - pt) and columns u inside the input
        v0 = (max(g.pt - a, 0) + g.sh - 1) // g.sh
        v1 = (g.pt + g.H - a + g.sh - 1) // g.sh
        u0 = (max(g.pl - b, 0) + g.sw - 1) // g.sw
        u1 = (g.pl + g.W - b + g.sw - 1) // g.sw
        if v1 <= v0 or u1 <= u0:
            continue
        t0 = v0 * Wg + u0
        t1 = (v1 - 1) * Wg + u1
        ac = acc + q * hw if merge else acc
        memset(ac + t0, 0, (t1 - t0) * sizeof(floating))
        fir_taps(t1 - t0, g.Og * t[4 + 4 * q], wr + g.Og * t[3 + 4 * q],
                 off + g.Og * t[3 + 4 * q], pad + t0, ac + t0)
        if merge:
            continue
        for v in range(v0, v1):
            rr = v * g.sh + a - g.pt
            ss = u0 * g.sw + b - g.pl
            for u in range(u0, u1):
                gx[rr * g.W + ss] = acc[v * Wg + u]
                ss = ss + g.sw
    if merge:
        for rr in range(g.H):
            a = (rr + g.pt) % g.sh
            v = (rr + g.pt) // g.sh
            p0 = acc + idx[2 * a] * hw if idx[2 * a] >= 0 else zero
            p1 = acc + idx[2 * a + 1] * hw if idx[2 * a + 1] >= 0 else zero
            phase_merge2(p0 + v * Wg, p1 + v * Wg, g.W, g.pl, gx + rr * g.W)


def grad_input_scratch(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                       Py_ssize_t itemsize, bint use_gemm):
    """(scratch elements per thread, input channels per job) for grad_input()."""
    cdef Geom g = shape_geom(xshape, wshape, yshape, geometry, itemsize)
    if not use_gemm:
        if _plane_path(&g):
            return plane_scratch(&g, 1), 1
        if _gi_phase_path(&g):
            return g.Og * _ph_plane(&g) + SLACK + _ph_accs(&g) * _ph_hv(&g) * _ph_wg(&g), 1
        return 0, 1
    # enough channels per job for an efficient gemm, few enough to share the work out
    cdef Py_ssize_t nc = max(1, min(g.Cg, 256 // (g.KH * g.KW)))
    if g.sw > 1:
        return (nc * g.KH * g.KW + g.Og) * g.TC + nc * g.H * g.sw * _phase_width(&g), nc
    return (nc * g.KH * g.KW + (g.Og if g.S > 1 else 0)) * g.TC, nc


cdef floating* _repack_weight(const floating* wp, Geom* g) except NULL:
    """The weight as (groups, Cg, Og, KH, KW) (malloc'ed; the caller frees): for the direct
    input gradient, a chunk of grad_output planes has its taps side by side for each input
    channel."""
    cdef Py_ssize_t gr, o, c, KHW = g.KH * g.KW
    cdef floating* wt = <floating*>malloc(max(g.C_out * g.KK, 1) * sizeof(floating))
    if wt == NULL:
        raise MemoryError()
    for gr in range(g.groups):
        for o in range(g.Og):
            for c in range(g.Cg):
                memcpy(wt + ((gr * g.Cg + c) * g.Og + o) * KHW,
                       wp + ((gr * g.Og + o) * g.Cg + c) * KHW, KHW * sizeof(floating))
    return wt


def grad_input(const floating[:, :, :, ::1] go,     # IN  (N, C_out, H_out, W_out)
               const floating[:, :, :, ::1] w,      # IN  (C_out, Cg, KH, KW)
               floating[:, :, :, ::1] gx,           # OUT (N, C_in, H, W), overwritten
               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
               Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads,
               bint use_gemm, floating[:, ::1] scratch, Py_ssize_t chans_per_job):
    cdef Geom g = make_geom(gx.shape, w.shape, go.shape,
                            sh, sw, pt, pl, dh, dw, groups, sizeof(floating))
    cdef Py_ssize_t job, n, ch, gr, cb, c0, su, t, nb = 1, nib = 1
    cdef Py_ssize_t* last = NULL
    if g.N == 0 or g.P == 0 or g.H == 0 or g.W == 0:
        gx[...] = 0
        return
    cdef bint plane = not use_gemm and _plane_path(&g)
    cdef bint phases = not use_gemm and not plane and _gi_phase_path(&g)
    cdef Py_ssize_t* table = NULL
    if plane:
        nb = _plane_block(&g, g.N * g.groups, g.Cg)
        nib = (g.Cg + nb - 1) // nb
    cdef const floating* gp = &go[0, 0, 0, 0]
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef floating* xp = &gx[0, 0, 0, 0]
    cdef floating* sp = NULL
    cdef floating* wt = NULL
    cdef Py_ssize_t* off = NULL
    cdef Py_ssize_t ncb = (g.Cg + chans_per_job - 1) // chans_per_job
    cdef Py_ssize_t KHW = g.KH * g.KW
    cdef Py_ssize_t nsu = (g.N + g.S - 1) // g.S
    if use_gemm or plane or phases:
        sp = &scratch[0, 0]
    cdef bint pad_once = plane and _gi_pad_once(&g)
    if plane:
        off = tap_offsets(&g, OFF_PLANE_GRAD_INPUT)
        try:
            last = _thread_tags(num_threads)
            wt = _repack_weight(wp, &g)
        except MemoryError:
            free(off)
            free(last)
            raise
    elif phases:
        try:
            table = _phase_table(&g)
            wt = _phase_weight(wp, &g, table)
            last = _thread_tags(num_threads)
        except MemoryError:
            free(table)
            free(wt)
            raise
    elif not use_gemm:
        off = tap_offsets(&g, OFF_ROW_GRAD_INPUT)
    try:
        with nogil:
            if phases:
                # one job per (n, input channel); as in forward(), a thread pads a sample's
                # grad_output planes of a group once for its consecutive channels of it
                for job in prange(g.N * g.C_in, schedule='static', num_threads=num_threads):
                    n = job // g.C_in
                    ch = job % g.C_in
                    gr = ch // g.Cg
                    t = threadid()
                    _phase_grad_input(gp + (n * g.C_out + gr * g.Og) * g.P,
                                      wt + ch * g.Og * KHW,
                                      xp + (n * g.C_in + ch) * g.H * g.W,
                                      sp + t * scratch.shape[1], table, &g,
                                      last[t * TAG_STRIDE] == n * g.groups + gr)
                    last[t * TAG_STRIDE] = n * g.groups + gr
            elif use_gemm:
                for job in prange(nsu * g.groups * ncb, schedule='dynamic',
                                  num_threads=num_threads):
                    su = job // (g.groups * ncb)
                    gr = (job // ncb) % g.groups
                    cb = job % ncb
                    c0 = cb * chans_per_job
                    _gemm_grad_input_job(gp, wp + gr * g.Og * g.KK, xp,
                                         sp + threadid() * scratch.shape[1], &g, gr, c0,
                                         min(chans_per_job, g.Cg - c0), su)
            elif plane:
                # one job per (n, block of nb input channels of a group); as in forward(),
                # a thread pads a sample's planes once for its consecutive blocks
                for job in prange(g.N * g.groups * nib, schedule='static',
                                  num_threads=num_threads):
                    n = job // (g.groups * nib)
                    gr = (job // nib) % g.groups
                    c0 = (job % nib) * nb
                    t = threadid()
                    _plane_grad_input(gp + (n * g.C_out + gr * g.Og) * g.P,
                                      wt + (gr * g.Cg + c0) * g.Og * KHW,
                                      xp + (n * g.C_in + gr * g.Cg + c0) * g.H * g.W,
                                      sp + t * scratch.shape[1], off, &g,
                                      min(nb, g.Cg - c0), NULL, NULL, NULL, NULL, NULL,
                                      pad_once and last[t * TAG_STRIDE] == job // nib)
                    last[t * TAG_STRIDE] = job // nib
            else:
                for job in prange(g.N * g.C_in, schedule='static', num_threads=num_threads):
                    n = job // g.C_in
                    ch = job % g.C_in
                    gr = ch // g.Cg
                    memset(xp + (n * g.C_in + ch) * g.H * g.W, 0,
                           g.H * g.W * sizeof(floating))
                    _direct_grad_input_plane(gp + (n * g.C_out + gr * g.Og) * g.P,
                                             wp + (gr * g.Og * g.Cg + ch - gr * g.Cg)
                                             * g.KH * g.KW,
                                             xp + (n * g.C_in + ch) * g.H * g.W, off, &g)
    finally:
        free(off)
        free(wt)
        free(last)
        free(table)


def grad_input_weight_scratch(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                              Py_ssize_t itemsize):
    """(scratch elements per thread, partial-sum elements) for grad_input_weight(), or
    (0, 0) where it does not apply: then grad_input() and grad_weight() give the same bits."""
    cdef Geom g = shape_geom(xshape, wshape, yshape, geometry, itemsize)
    if not _fused_backward(&g):
        return 0, 0
    return plane_scratch(&g, 1) + plane_scratch(&g, 2), g.N * g.C_out * (g.KK + 1)


def grad_input_weight(const floating[:, :, :, ::1] go,    # IN  (N, C_out, H_out, W_out)
                      const floating[:, :, :, ::1] x,     # IN  (N, C_in, H, W)
                      const floating[:, :, :, ::1] w,     # IN  (C_out, Cg, KH, KW)
                      floating[:, :, :, ::1] gx,          # OUT (N, C_in, H, W)
                      floating[:, :, :, ::1] gw,          # OUT (C_out, Cg, KH, KW)
                      floating[::1] gb,                   # OUT (C_out,), or None
                      Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                      Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads,
                      floating[:, ::1] scratch,           # (num_threads, scratch elements)
                      floating[::1] partials):            # the partial-sum elements
    """The input, weight and bias gradients of a few-channel 2-D layer in one pass over
    grad_output (where grad_input_weight_scratch gives a size): one job per sample and
    group computes its input gradient as grad_input() does and its weight and bias sums as
    grad_weight() and grad_bias() do for a sample, while its grad_output planes are in
    cache; the samples' sums are then added in sample order. The bits are those of the
    three separate calls, on every thread count."""
    cdef Geom g = make_geom(x.shape, w.shape, go.shape, sh, sw, pt, pl, dh, dw, groups,
                            sizeof(floating))
    cdef Py_ssize_t job, n, gr, e, o, KHW = g.KH * g.KW
    cdef floating acc
    cdef int d
    for d in range(4):
        if gx.shape[d] != x.shape[d] or gw.shape[d] != w.shape[d]:
            raise ValueError(f"gx and gw must have the shapes of x and w, got gx.shape[{d}] = "
                             f"{gx.shape[d]}, gw.shape[{d}] = {gw.shape[d]}")
    if not _fused_backward(&g):
        raise ValueError("grad_input_weight does not apply to this shape")
    if gb is not None and gb.shape[0] != g.C_out:
        raise ValueError(f"gb must have {g.C_out} elements, got {gb.shape[0]}")
    if partials.shape[0] < g.N * g.C_out * (g.KK + 1):
        raise ValueError(f"partials must have {g.N * g.C_out * (g.KK + 1)} elements, "
                         f"got {partials.shape[0]}")
    cdef const floating* gp = &go[0, 0, 0, 0]
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* gxp = &gx[0, 0, 0, 0]
    cdef floating* gwp = &gw[0, 0, 0, 0]
    cdef floating* sp = &scratch[0, 0]
    cdef floating* pp = &partials[0]
    cdef floating* pbp = pp + g.N * g.C_out * g.KK
    cdef floating* wt = NULL
    cdef Py_ssize_t* off_gi = tap_offsets(&g, OFF_PLANE_GRAD_INPUT)
    cdef Py_ssize_t* off_gw = NULL
    try:
        off_gw = tap_offsets(&g, OFF_PLANE_FORWARD)
        wt = _repack_weight(&w[0, 0, 0, 0], &g)
        with nogil:
            for job in prange(g.N * g.groups, schedule='static', num_threads=num_threads):
                n = job // g.groups
                gr = job % g.groups
                _fused_backward_job(gp + (n * g.C_out + gr * g.Og) * g.P,
                                    xp + (n * g.C_in + gr * g.Cg) * g.H * g.W,
                                    wt + gr * g.Cg * g.Og * KHW,
                                    gxp + (n * g.C_in + gr * g.Cg) * g.H * g.W,
                                    pp + (n * g.C_out + gr * g.Og) * g.KK,
                                    pbp + n * g.C_out + gr * g.Og,
                                    sp + threadid() * scratch.shape[1], off_gi, off_gw, &g)
            # the samples' sums in sample order, as grad_weight and grad_bias add them
            for e in prange(g.C_out * (g.KK + 1), schedule='static', num_threads=num_threads):
                acc = 0
                if e < g.C_out * g.KK:
                    for n in range(g.N):
                        acc = acc + pp[n * g.C_out * g.KK + e]
                    gwp[e] = acc
                else:
                    o = e - g.C_out * g.KK
                    for n in range(g.N):
                        acc = acc + pbp[n * g.C_out + o]
                    if gb is not None:
                        gb[o] = acc
    finally:
        free(off_gi)
        free(off_gw)
        free(wt)


# ----------------------------------------------------------------------------------------------
# depthwise backward over blocks of channels
#
# The blocked forward's layout for the gradients: a job takes one sample's block of _dw_lanes
# channels. Its weight sums correlate grad_output's plane of channel vectors with the input's
# padded one (pyc_dw_corr), into partial sums per sample that are then added in sample order
# (so the bits depend on the shape alone). With unit strides its input gradient is the blocked
# forward of grad_output, padded by the kernel's span less the forward's padding, with the
# kernel flipped (pyc_dw_conv), the taps summed from zero in flipped order; with strides each
# output scatters its taps into the input's padded plane of channel vectors (pyc_dw_scatter),
# which is then transposed back into the input planes (pyc_dw_unpack). The bias gradient stays
# grad_bias's, so that its bits do not depend on which other gradients are asked for.

cdef Geom _dw_flipped(Geom* g) noexcept nogil:
    """The unit-stride input gradient as a blocked forward: grad_output (H_out x W_out)
    filtered by the flipped kernels into the input's H x W, padded by the kernels' span less
    the forward's padding (negative: rows or columns cut)."""
    cdef Geom f = g[0]
    f.H = g.H_out
    f.W = g.W_out
    f.H_out = g.H
    f.W_out = g.W
    f.P = g.H * g.W
    f.pt = (g.KH - 1) * g.dh - g.pt
    f.pl = (g.KW - 1) * g.dw - g.pl
    return f


cdef inline bint _dwb_gather(Geom* g) noexcept nogil:
    """Whether depthwise_backward's input gradient runs as the flipped forward (unit strides,
    its padded plane of channel vectors within DW_MAX_BYTES); else by scatter."""
    cdef Geom f = _dw_flipped(g)
    return (g.sh == 1 and g.sw == 1
            and <double>_dw_hn(&f) * _dw_wn(&f) * 32 <= DW_MAX_BYTES)


cdef inline bint _dwb_path(Geom* g) noexcept nogil:
    """Whether depthwise_backward applies: the blocked forward's layers (_dw_path),
    grad_output's plane of channel vectors within DW_MAX_BYTES."""
    return _dw_path(g) and <double>g.P * 32 <= DW_MAX_BYTES


cdef inline Py_ssize_t _dwb_scratch(Geom* g) noexcept nogil:
    """Elements per thread: a vector to align them, the input's padded plane and
    grad_output's plane of channel vectors, then the flipped forward's scratch for the input
    gradient (or the kernels, for the scatter)."""
    cdef Geom f = _dw_flipped(g)
    return ((_dw_hn(g) * _dw_wn(g) + g.P + 1) * _dw_lanes(g)
            + (_dw_scratch(&f) if _dwb_gather(g) else g.KH * g.KW * _dw_lanes(g)))


def depthwise_backward_scratch(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                               Py_ssize_t itemsize):
    """(scratch elements per thread, partial-sum elements) for depthwise_backward(), or
    (0, 0) where it does not apply."""
    cdef Geom g = shape_geom(xshape, wshape, yshape, geometry, itemsize)
    if not _dwb_path(&g):
        return 0, 0
    cdef Py_ssize_t V = _dw_lanes(&g)
    return _dwb_scratch(&g), g.N * ((g.C_out + V - 1) // V) * g.KH * g.KW * V


cdef void _dwb_job(const floating* go, const floating* x, const floating* w, floating* gx,
                   floating* part, floating* buf, const Py_ssize_t* off_gw,
                   const Py_ssize_t* off_gi, Geom* g, Py_ssize_t nc) noexcept nogil:
    """One sample's block of nc channels (go, x, gx at their first plane, w at their first
    filter): with part (not NULL) its weight sums into part, KH*KW vectors; with gx (not
    NULL) its input gradient. Where the flipped forward's padded plane holds all of
    grad_output (the padding at most the kernels' span on every side, as 'same' pads), the
    weight sums read grad_output there instead of transposing it again."""
    cdef Py_ssize_t V = _dw_lanes(g), Hn = _dw_hn(g), Wn = _dw_wn(g), gs = g.W_out
    cdef bint gather = _dwb_gather(g)
    cdef Geom f = _dw_flipped(g)
    buf = buf + (-(<size_t>buf) % 32) // sizeof(floating)
    cdef floating* xb = buf
    cdef floating* gb = xb + Hn * Wn * V
    cdef floating* rest = gb + g.P * V         # 32-byte aligned: _dw_job keeps it in place
    cdef const floating* gsrc = gb
    if gx != NULL and gather:
        _dw_job(go, w, NULL, gx, rest, off_gi, &f, nc, True)
        if (f.pt >= 0 and f.pl >= 0 and f.pt + g.H_out <= _dw_hn(&f)
                and f.pl + g.W_out <= _dw_wn(&f)):
            gsrc = rest + (f.pt * _dw_wn(&f) + f.pl) * V
            gs = _dw_wn(&f)
    if gsrc == gb and (part != NULL or (gx != NULL and not gather)):
        _dw_pack(go, nc, g.P, g.H_out, g.W_out, gb, g.H_out, g.W_out, 0, 0)
    if part != NULL:
        _dw_pack(x, nc, g.H * g.W, g.H, g.W, xb, Hn, Wn, g.pt, g.pl)
        if floating is float:
            pyc_dw_corr_f(gsrc, gs, g.H_out, g.W_out, xb, Wn, g.sh, g.sw, g.KH * g.KW,
                          off_gw, part)
        else:
            pyc_dw_corr_d(gsrc, gs, g.H_out, g.W_out, xb, Wn, g.sh, g.sw, g.KH * g.KW,
                          off_gw, part)
    if gx == NULL or gather:
        return
    # the scatter into the input's padded plane (its sums done), then back to the planes
    _dw_weights(w, nc, g, False, rest)
    memset(xb, 0, Hn * Wn * V * sizeof(floating))
    if floating is float:
        pyc_dw_scatter_f(gb, g.H_out, g.W_out, xb, Wn, g.sh, g.sw, g.KH * g.KW, off_gw, rest)
        pyc_dw_unpack_f(xb, Hn, Wn, g.pt, g.pl, g.H, g.W, nc, gx, g.H * g.W)
    else:
        pyc_dw_scatter_d(gb, g.H_out, g.W_out, xb, Wn, g.sh, g.sw, g.KH * g.KW, off_gw, rest)
        pyc_dw_unpack_d(xb, Hn, Wn, g.pt, g.pl, g.H, g.W, nc, gx, g.H * g.W)


def depthwise_backward(const floating[:, :, :, ::1] go,    # IN  (N, C, H_out, W_out)
                       const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
                       const floating[:, :, :, ::1] w,     # IN  (C, 1, KH, KW)
                       floating[:, :, :, ::1] gx,          # OUT (N, C, H, W), or None
                       floating[:, :, :, ::1] gw,          # OUT (C, 1, KH, KW), or None
                       Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                       Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads,
                       floating[:, ::1] scratch,           # (num_threads, scratch elements)
                       floating[::1] partials):            # the partial-sum elements
    """The input and weight gradients of a depthwise layer over blocks of channels (where
    depthwise_backward_scratch gives a size): gx and gw, each None where not wanted. One job
    per sample and block of channels; the weight sums of the samples added in sample order:
    the same bits on every thread count."""
    cdef Geom g = make_geom(x.shape, w.shape, go.shape, sh, sw, pt, pl, dh, dw, groups,
                            sizeof(floating))
    cdef Py_ssize_t V = _dw_lanes(&g), KHW = g.KH * g.KW, nblk, job, n, o, e, c, k, blk
    cdef Py_ssize_t stride, d
    cdef floating acc
    if not _dwb_path(&g):
        raise ValueError("depthwise_backward does not apply to this shape")
    for d in range(4):
        if (gx is not None and gx.shape[d] != x.shape[d]) or \
                (gw is not None and gw.shape[d] != w.shape[d]):
            raise ValueError(f"gx and gw must have the shapes of x and w, got axis {d}")
    if g.N == 0 or g.P == 0 or g.H == 0 or g.W == 0:
        if gx is not None:
            gx[...] = 0
        if gw is not None:
            gw[...] = 0
        return
    nblk = (g.C_out + V - 1) // V
    stride = KHW * V
    if gw is not None and partials.shape[0] < g.N * nblk * stride:
        raise ValueError(f"partials must have {g.N * nblk * stride} elements, "
                         f"got {partials.shape[0]}")
    if scratch.shape[0] < max(num_threads, 1) or scratch.shape[1] < _dwb_scratch(&g):
        raise ValueError(f"scratch must be at least ({num_threads}, {_dwb_scratch(&g)}), "
                         f"got ({scratch.shape[0]}, {scratch.shape[1]})")
    cdef const floating* gp = &go[0, 0, 0, 0]
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef floating* gxp = &gx[0, 0, 0, 0] if gx is not None else NULL
    cdef floating* gwp = &gw[0, 0, 0, 0] if gw is not None else NULL
    cdef floating* pp = &partials[0] if gw is not None else NULL
    cdef floating* sp = &scratch[0, 0]
    cdef Geom f = _dw_flipped(&g)
    cdef Py_ssize_t* off = <Py_ssize_t*>malloc(2 * KHW * sizeof(Py_ssize_t))
    if off == NULL:
        raise MemoryError()
    _dw_offsets(&g, off)
    _dw_offsets(&f, off + KHW)
    try:
        with nogil:
            for job in prange(g.N * nblk, schedule='static', num_threads=num_threads):
                n = job // nblk
                o = (job % nblk) * V
                _dwb_job(gp + (n * g.C_out + o) * g.P, xp + (n * g.C_in + o) * g.H * g.W,
                         wp + o * KHW,
                         gxp + (n * g.C_in + o) * g.H * g.W if gxp != NULL else NULL,
                         pp + job * stride if pp != NULL else NULL,
                         sp + threadid() * scratch.shape[1], off, off + KHW, &g,
                         min(V, g.C_out - o))
            if gwp != NULL:
                # the samples' sums in sample order: 0 + sample 0 + sample 1 + ...
                for e in prange(g.C_out * KHW, schedule='static', num_threads=num_threads):
                    c = e // KHW
                    k = e % KHW
                    blk = c // V
                    acc = 0
                    for n in range(g.N):
                        acc = acc + pp[(n * nblk + blk) * stride + k * V + c % V]
                    gwp[e] = acc
    finally:
        free(off)


# ----------------------------------------------------------------------------------------------
# the weight gradient over vectors of output channels

cdef inline Py_ssize_t _gwv_nv(Geom* g) noexcept nogil:
    """Vectors of V output channels per job of grad_weight_vec: two where a group has more
    than V outputs, else one."""
    return 2 if g.Og > _dw_lanes(g) else 1


cdef inline Py_ssize_t _gwv_blocks(Geom* g) noexcept nogil:
    """Blocks of nv vectors of outputs per group."""
    cdef Py_ssize_t width = _gwv_nv(g) * _dw_lanes(g)
    return (g.Og + width - 1) // width


cdef inline Py_ssize_t _gwv_chunks(Geom* g) noexcept nogil:
    """Runs of consecutive samples whose sums grad_weight_vec keeps apart (then adds in
    order): a function of the shape alone, never of the threads."""
    return min(g.N, REDUCE_CHUNKS)


cdef inline bint _gwv_inplace(Geom* g) noexcept nogil:
    """Whether grad_weight_vec reads the input planes in place: no padding before them and
    every pair's reads inside them (a 'valid' layer), so no padded copy (made once per block
    of outputs, it cost as much as the sums over 100-odd pairs on rows of 104 outputs)."""
    return g.pt == 0 and g.pl == 0 and _dw_hn(g) <= g.H and _dw_wn(g) <= g.W


cdef inline bint _gwv_path(Geom* g) noexcept nogil:
    """Whether grad_weight_vec applies: 4+ outputs per group (fewer would leave most lanes
    empty), a block's grad_output planes of channel vectors within DW_MAX_BYTES and, unless
    the input planes are read in place, the group's padded copies too, and nothing empty."""
    return (g.Og >= 4 and g.N > 0 and g.P > 0 and g.H > 0 and g.W > 0 and g.Cg > 0
            and <double>g.P * _gwv_nv(g) * 32 <= DW_MAX_BYTES
            and (_gwv_inplace(g)
                 or <double>g.Cg * _dw_hn(g) * _dw_wn(g) * g.itemsize <= DW_MAX_BYTES))


cdef inline Py_ssize_t _gwv_scratch(Geom* g) noexcept nogil:
    """Elements per thread: a vector to align them, the block's grad_output planes of channel
    vectors, and unless they are read in place the group's padded input planes and SLACK."""
    return ((g.P * _gwv_nv(g) + 1) * _dw_lanes(g)
            + (0 if _gwv_inplace(g) else g.Cg * _dw_hn(g) * _dw_wn(g) + SLACK))


def grad_weight_vec_scratch(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                            Py_ssize_t itemsize):
    """(scratch elements per thread, partial-sum elements) for grad_weight_vec(), or (0, 0)
    where it does not apply."""
    cdef Geom g = shape_geom(xshape, wshape, yshape, geometry, itemsize)
    if not _gwv_path(&g):
        return 0, 0
    return _gwv_scratch(&g), _gwv_partials(&g) + g.N * g.C_out


cdef inline Py_ssize_t _gwv_partials(Geom* g) noexcept nogil:
    """The weight sums' partial-sum elements of grad_weight_vec (the bias's plane sums, N x
    C_out, follow them)."""
    return (_gwv_chunks(g) * g.groups * _gwv_blocks(g) * g.KK * _gwv_nv(g)
            * _dw_lanes(g))


cdef void _gwv_job(const floating* go, const floating* x, floating* part, floating* bsum,
                   floating* buf, const Py_ssize_t* xoff, Geom* g, Py_ssize_t n0,
                   Py_ssize_t n1, Py_ssize_t nc) noexcept nogil:
    """Samples [n0, n1) of a block of nc outputs of a group (go at the block's first plane and
    x at the group's first input plane, of sample 0): part = their weight sums (pyc_gwv's
    layout), sample after sample; unless bsum is NULL (at the block's first output), also
    bsum[n*C_out + m] = the sum of grad_output's plane (n, m) as grad_bias sums it, while
    the pack brings it into the cache."""
    cdef Py_ssize_t V = _dw_lanes(g), nv = _gwv_nv(g), Hn = _dw_hn(g), Wn = _dw_wn(g), n, v, m
    cdef bint inplace = _gwv_inplace(g)
    cdef const floating* xs
    buf = buf + (-(<size_t>buf) % 32) // sizeof(floating)
    cdef floating* gb = buf
    cdef floating* xb = gb + g.P * nv * V
    memset(part, 0, g.KK * nv * V * sizeof(floating))
    for n in range(n0, n1):
        if bsum != NULL:
            for m in range(nc):
                bsum[n * g.C_out + m] = plane_sum(g.P, go + (n * g.C_out + m) * g.P)
        for v in range(nv):
            if v * V < nc:
                _dw_pack(go + (n * g.C_out + v * V) * g.P, min(V, nc - v * V), g.P, g.H_out,
                         g.W_out, gb + v * g.P * V, g.H_out, g.W_out, 0, 0)
            elif n == n0:       # a block's empty second vector: zeros, sums unused
                memset(gb + v * g.P * V, 0, g.P * V * sizeof(floating))
        xs = x + n * g.C_in * g.H * g.W
        if not inplace:
            _pad_planes(xs, g.Cg, g.H, g.W, xb, Hn, Wn, g.pt, g.pl)
            xs = xb
        if floating is float:
            pyc_gwv_f(gb, nv, g.H_out, g.W_out, xs, g.W if inplace else Wn, g.sh, g.sw, g.KK,
                      xoff, part)
        else:
            pyc_gwv_d(gb, nv, g.H_out, g.W_out, xs, g.W if inplace else Wn, g.sh, g.sw, g.KK,
                      xoff, part)


def grad_weight_vec(const floating[:, :, :, ::1] go,    # IN  (N, C_out, H_out, W_out)
                    const floating[:, :, :, ::1] x,     # IN  (N, C_in, H, W)
                    floating[:, :, :, ::1] gw,          # OUT (C_out, Cg, KH, KW)
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                    Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads,
                    floating[:, ::1] scratch,           # (num_threads, scratch elements)
                    floating[::1] partials,             # the partial-sum elements
                    floating[::1] gb=None):             # OUT (C_out,), or None
    """gw = the weight gradient over vectors of output channels (where
    grad_weight_vec_scratch gives a size): grad_output's planes transposed, a block of V or
    2V outputs at a time, into vectors of channels, each input element broadcast against
    them (pyc_gwv). One job per run of samples (_gwv_chunks), group and block of outputs;
    the runs' sums added in order: the same bits on every thread count. With gb, also the
    bias gradient, bitwise what grad_bias gives (its plane sums added in sample order)."""
    cdef Geom g = make_geom(x.shape, gw.shape, go.shape, sh, sw, pt, pl, dh, dw, groups,
                            sizeof(floating))
    cdef Py_ssize_t V, nv, nob, nch, per, job, ch, gr, ob, o, e, j, ol, c, i, k, n
    if g.N == 0 or g.P == 0 or g.H == 0 or g.W == 0:
        gw[...] = 0
        if gb is not None:
            gb[...] = 0
        return
    if not _gwv_path(&g):
        raise ValueError("grad_weight_vec does not apply to this shape")
    V = _dw_lanes(&g)
    nv = _gwv_nv(&g)
    nob = _gwv_blocks(&g)
    nch = _gwv_chunks(&g)
    per = g.KK * nv * V
    if partials.shape[0] < _gwv_partials(&g) + g.N * g.C_out:
        raise ValueError(f"partials must have {_gwv_partials(&g) + g.N * g.C_out} elements, "
                         f"got {partials.shape[0]}")
    if gb is not None and gb.shape[0] != g.C_out:
        raise ValueError(f"gb must have {g.C_out} elements, got {gb.shape[0]}")
    if scratch.shape[0] < max(num_threads, 1) or scratch.shape[1] < _gwv_scratch(&g):
        raise ValueError(f"scratch must be at least ({num_threads}, {_gwv_scratch(&g)}), "
                         f"got ({scratch.shape[0]}, {scratch.shape[1]})")
    cdef const floating* gp = &go[0, 0, 0, 0]
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* wp = &gw[0, 0, 0, 0]
    cdef floating* pp = &partials[0]
    cdef floating* sp = &scratch[0, 0]
    cdef floating* bp = pp + _gwv_partials(&g) if gb is not None else NULL
    cdef floating* gbp = &gb[0] if gb is not None else NULL
    cdef floating acc
    # the pairs' offsets in the input planes, in place or padded
    cdef Py_ssize_t row = g.W if _gwv_inplace(&g) else _dw_wn(&g)
    cdef Py_ssize_t plane = g.H * g.W if _gwv_inplace(&g) else _dw_hn(&g) * _dw_wn(&g)
    cdef Py_ssize_t* xoff = <Py_ssize_t*>malloc(g.KK * sizeof(Py_ssize_t))
    if xoff == NULL:
        raise MemoryError()
    for c in range(g.Cg):
        for i in range(g.KH):
            for k in range(g.KW):
                xoff[(c * g.KH + i) * g.KW + k] = c * plane + i * g.dh * row + k * g.dw
    try:
        with nogil:
            for job in prange(nch * g.groups * nob, schedule='dynamic',
                              num_threads=num_threads):
                ch = job // (g.groups * nob)
                gr = (job // nob) % g.groups
                ob = job % nob
                o = gr * g.Og + ob * nv * V
                _gwv_job(gp + o * g.P, xp + gr * g.Cg * g.H * g.W, pp + job * per,
                         bp + o if bp != NULL else NULL, sp + threadid() * scratch.shape[1],
                         xoff, &g, ch * g.N // nch, (ch + 1) * g.N // nch,
                         min(nv * V, (gr + 1) * g.Og - o))
            # the runs' sums in order: 0 + run 0 + run 1 + ...
            for e in prange(g.C_out * g.KK, schedule='static', num_threads=num_threads):
                o = e // g.KK
                j = e % g.KK
                gr = o // g.Og
                ol = o % g.Og
                acc = 0
                for ch in range(nch):
                    acc = acc + pp[((ch * g.groups + gr) * nob + ol // (nv * V)) * per
                                   + (j * nv + (ol % (nv * V)) // V) * V + ol % V]
                wp[e] = acc
            if bp != NULL:
                for o in prange(g.C_out, schedule='static', num_threads=num_threads):
                    acc = 0
                    for n in range(g.N):
                        acc = acc + bp[n * g.C_out + o]
                    gbp[o] = acc
    finally:
        free(xoff)


def grad_bias(const floating[:, :, :, ::1] go,    # IN  (N, C_out, H_out, W_out)
              floating[::1] out,                   # OUT (C_out,)
              int num_threads):
    """out[o] = the sum of grad_output's planes o: each plane summed with vector partial sums,
    the planes added in sample order; one channel per job, so the bits never depend on the
    thread count."""
    cdef Py_ssize_t N = go.shape[0], C = go.shape[1], P = go.shape[2] * go.shape[3], o, n
    cdef floating acc
    if out.shape[0] != C:
        raise ValueError(f"out must have {C} elements, got {out.shape[0]}")
    if N == 0 or P == 0 or C == 0:
        out[:] = 0
        return
    cdef const floating* gp = &go[0, 0, 0, 0]
    cdef floating* op = &out[0]
    with nogil:
        for o in prange(C, schedule='static', num_threads=num_threads):
            acc = 0
            for n in range(N):
                acc = acc + plane_sum(P, gp + (n * C + o) * P)
            op[o] = acc


def grad_weight_scratch(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                        Py_ssize_t itemsize, bint use_gemm):
    """(scratch elements per thread, reduction chunks) for grad_weight(); with gemm the
    caller also provides a (chunks, C_out, KK) partials buffer."""
    cdef Geom g = shape_geom(xshape, wshape, yshape, geometry, itemsize)
    if not use_gemm:
        return (plane_scratch(&g, 2) if _gw_plane_path(&g) else 0), 0
    g = _grad_weight_geom(g)
    return _unroll_scratch(&g), _reduce_chunks(&g)


def grad_weight_jobs(tuple xshape, tuple wshape, tuple yshape, tuple geometry,
                     Py_ssize_t itemsize):
    """(reduction chunks, input channels per job) of the gemm weight gradient; its jobs are
    groups x chunks x ceil(C_in/groups / channels per job)."""
    cdef Geom g = _grad_weight_geom(shape_geom(xshape, wshape, yshape, geometry, itemsize))
    cdef Py_ssize_t nch = _reduce_chunks(&g)
    return nch, _grad_weight_channels(&g, nch)


def grad_weight(const floating[:, :, :, ::1] go,    # IN  (N, C_out, H_out, W_out)
                const floating[:, :, :, ::1] x,     # IN  (N, C_in, H, W)
                floating[:, :, :, ::1] gw,          # OUT (C_out, Cg, KH, KW)
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads,
                bint use_gemm, floating[:, ::1] scratch,
                floating[:, :, ::1] partials,        # (chunks, C_out, KK) with gemm
                floating[::1] gb=None):              # OUT (C_out,), or None
    """gw = the weight gradient. With gb, the direct path over padded planes (2-D kernels,
    and strided layers: _gw_plane_path) also writes the bias gradient, bitwise what
    grad_bias gives, in the same pass over grad_output, and returns True; otherwise gb is
    left alone (False)."""
    cdef Geom g = make_geom(x.shape, gw.shape, go.shape,
                            sh, sw, pt, pl, dh, dw, groups, sizeof(floating))
    cdef Py_ssize_t job, o, c, i, j, gr, ch, e, k, r, nrow, ncol, nch = 0, U = 0, nblk
    cdef Py_ssize_t nob = 1, ncb = 1, cpb = 1
    if gb is not None and gb.shape[0] != g.C_out:
        raise ValueError(f"gb must have {g.C_out} elements, got {gb.shape[0]}")
    if g.N == 0 or g.P == 0 or g.H == 0 or g.W == 0:
        gw[...] = 0
        return False
    cdef const floating* gp = &go[0, 0, 0, 0]
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* wp = &gw[0, 0, 0, 0]
    cdef floating* sp = NULL
    cdef floating* pp = NULL
    cdef floating* row
    cdef bint plane = not use_gemm and _gw_plane_path(&g)
    cdef bint tr = _grad_weight_transposed(&g)
    cdef floating* bp = &gb[0] if plane and gb is not None else NULL
    cdef Py_ssize_t* off = NULL
    if use_gemm or plane:
        sp = &scratch[0, 0]
    if use_gemm:
        g = _grad_weight_geom(g)
        pp = &partials[0, 0, 0]
        nch = partials.shape[0]
        U = g.NU
        cpb = _grad_weight_channels(&g, nch)
        ncb = (g.Cg + cpb - 1) // cpb
    if plane:
        off = tap_offsets(&g, OFF_PLANE_FORWARD)
        # enough (output tile, channel block) jobs to share out, a constant number of them
        nob = (g.Og + TILE - 1) // TILE
        ncb = min(g.Cg, (PLANE_MIN_JOBS + g.groups * nob - 1) // (g.groups * nob))
        cpb = (g.Cg + ncb - 1) // ncb
        ncb = (g.Cg + cpb - 1) // cpb
    try:
        with nogil:
            if use_gemm:
                # one job per (group, chunk, block of cpb input channels)
                for job in prange(g.groups * nch * ncb, schedule='dynamic',
                                  num_threads=num_threads):
                    gr = job // (nch * ncb)
                    ch = (job // ncb) % nch
                    c = (job % ncb) * cpb
                    _gemm_grad_weight_job(gp, xp, pp + (ch * g.C_out + gr * g.Og) * g.KK,
                                          sp + threadid() * scratch.shape[1], &g, gr,
                                          ch * U // nch, (ch + 1) * U // nch, c,
                                          min(cpb, g.Cg - c))
                # sum the chunks in chunk order, 0 + part 0 + part 1 + ..., one row of the
                # parts per job, read as it lies: a part is Og x KK, or if transposed KK x Og
                # per group, whose row r is tap r % KK of the group's outputs (summed in part
                # 0's row, then written to its column of gw); the vector adds may keep another
                # NaN's payload than a scalar loop would, nothing else
                nrow = g.groups * g.KK if tr else g.C_out
                ncol = g.Og if tr else g.KK
                for r in prange(nrow, schedule='static', num_threads=num_threads):
                    row = pp + r * ncol if tr else wp + r * ncol
                    shift_copy(ncol, 0, pp + r * ncol, row)
                    for ch in range(1, nch):
                        add_sy(ncol, pp + ch * g.C_out * g.KK + r * ncol, row, 1)
                    if tr:
                        e = (r // g.KK) * g.Og * g.KK + r % g.KK
                        for k in range(ncol):
                            wp[e + k * g.KK] = row[k]
            elif plane:
                # one job per (group, tile of TILE outputs, block of cpb input channels):
                # a tile's grad_output planes are padded once per sample for the whole block
                for job in prange(g.groups * nob * ncb, schedule='static',
                                  num_threads=num_threads):
                    gr = job // (nob * ncb)
                    o = gr * g.Og + ((job // ncb) % nob) * TILE
                    c = (job % ncb) * cpb
                    # the first channel block of a tile also sums its bias gradient
                    _plane_grad_weight(gp + o * g.P, xp + (gr * g.Cg + c) * g.H * g.W,
                                       wp + (o * g.Cg + c) * g.KH * g.KW,
                                       bp + o if bp != NULL and c == 0 else NULL,
                                       sp + threadid() * scratch.shape[1], off, &g,
                                       min(TILE, (gr + 1) * g.Og - o), min(cpb, g.Cg - c))
            else:
                # one job per (o, c, kernel row, block of up to eight taps)
                nblk = (g.KW + TAP_BLOCK - 1) // TAP_BLOCK
                for job in prange(g.C_out * g.Cg * g.KH * nblk, schedule='static',
                                  num_threads=num_threads):
                    o = job // (g.Cg * g.KH * nblk)
                    c = (job // (g.KH * nblk)) % g.Cg
                    i = (job // nblk) % g.KH
                    j = (job % nblk) * TAP_BLOCK
                    _direct_grad_weight_taps(gp + o * g.P,
                                             xp + ((o // g.Og) * g.Cg + c) * g.H * g.W,
                                             wp + ((o * g.Cg + c) * g.KH + i) * g.KW + j, &g,
                                             i, j, min(TAP_BLOCK, g.KW - j))
    finally:
        free(off)
    return bp != NULL


# ----------------------------------------------------------------------------------------------
# Winograd's minimal filtering along the rows (the products by BLAS, fewer of them)
#
# Along a row, with unit column stride, the outputs t = r + (j*m + q)*dw (phase r < dw, tile j,
# q < m) of one output row h read, for each pair (input channel c, kernel row i), the WA
# inputs d[e] = x[n, c, h*sh + i*dh - pt, r + (j*m + e)*dw - pl] (e < WA = m + KW - 1), and
# each is a correlation of those WA inputs with the KW taps of w[o, c, i, :]. Toom-Cook over
# WA points computes it as y[q] = sum_a AT[q, a] (U[a] V[a]) with V = BT d (the inputs'
# transform) and U = G w (the taps', made by the caller): summed over the pairs (c, i), each of
# the WA points a is one product (C_out x C*KH) @ (C*KH x tiles), WA products for m outputs
# where the unroll's product does m*KW: 8 for 6 outputs of a 3-tap kernel instead of 18. The
# weight gradient is the same identity with the roles swapped: gw[o, c, i, k] = sum_a
# A2T[k, a] sum_tiles (G2 g)[a] (BT d)[a], one product (C_out x tiles) @ (tiles x C*KH) per
# point, summed per chunk of tiles and the chunks in chunk order. The input gradient of a
# layer with unit strides is the forward of grad_output with the flipped, transposed kernel
# (the caller passes its U and the offsets, which may be negative).
#
# Tiles are numbered ((n*H_out + h)*dw + r)*TP + j (TP tiles per phase, the most any phase
# needs; a phase's tiles past its outputs compute nothing that is kept); a block is TB
# consecutive tiles; blocks and chunks depend on the shape alone.

cdef enum:
    WA = 8          # Toom-Cook points: m = WA - KW + 1 outputs per tile


cdef struct WGeom:
    Py_ssize_t N, C, H, W, O, KH, KW, H_out, W_out, sh, pt, pl, dh, dw
    Py_ssize_t m, CK, TP, NT, TB, NBLK


cdef WGeom _wgeom(const Py_ssize_t* xshape, const Py_ssize_t* yshape, Py_ssize_t KH,
                  Py_ssize_t KW, Py_ssize_t sh, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
                  Py_ssize_t dw, Py_ssize_t TB) noexcept nogil:
    cdef WGeom g
    g.N, g.C, g.H, g.W = xshape[0], xshape[1], xshape[2], xshape[3]
    g.O, g.H_out, g.W_out = yshape[1], yshape[2], yshape[3]
    g.KH, g.KW, g.sh, g.pt, g.pl, g.dh, g.dw = KH, KW, sh, pt, pl, dh, dw
    g.m = WA - KW + 1
    g.CK = g.C * KH
    g.TP = (((g.W_out + dw - 1) // dw) + g.m - 1) // g.m
    g.NT = g.N * g.H_out * dw * g.TP
    g.TB = TB
    g.NBLK = (g.NT + TB - 1) // TB
    return g


cdef inline Py_ssize_t _wino_scratch(Py_ssize_t CK, Py_ssize_t O, Py_ssize_t TB) noexcept nogil:
    """Elements of one thread's scratch: a block's V (WA x CK x TB), its products or
    transformed grad_output (WA x O x TB) and a gather buffer (WA x TB)."""
    return WA * (CK + O + 1) * TB


cdef int _wino_check_scratch(WGeom* g, Py_ssize_t rows, Py_ssize_t cols,
                             int num_threads) except -1:
    """A ValueError unless the scratch holds a row of _wino_scratch elements a thread."""
    cdef Py_ssize_t need = _wino_scratch(g.CK, g.O, g.TB)
    if rows < max(num_threads, 1) or cols < need:
        raise ValueError(f"scratch must be at least ({num_threads}, {need}), got ({rows}, "
                         f"{cols})")
    return 0


def winograd_scratch(tuple xshape, tuple yshape, Py_ssize_t KH, Py_ssize_t TB):
    """Elements of one thread's scratch (_wino_scratch) for input and output shapes with
    xshape[1] and yshape[1] channels."""
    return _wino_scratch(xshape[1] * KH, yshape[1], TB)


cdef void _wino_tiles(WGeom* g, Py_ssize_t b, Py_ssize_t nb, Py_ssize_t* info) noexcept nogil:
    """info[3*tb..] = (n, h, first output t of tile tb) for the nb tiles of block b."""
    cdef Py_ssize_t tb, tid, j, r, nh
    for tb in range(nb):
        tid = b * g.TB + tb
        j = tid % g.TP
        r = (tid // g.TP) % g.dw
        nh = tid // (g.TP * g.dw)
        info[3 * tb] = nh // g.H_out
        info[3 * tb + 1] = nh % g.H_out
        info[3 * tb + 2] = r + j * g.m * g.dw


cdef void _wino_inputs(const floating* x, const floating* BT, floating* V, floating* D,
                       WGeom* g, const Py_ssize_t* info, Py_ssize_t nb) noexcept nogil:
    """V[a, c*KH + i, tb] = sum_e BT[a, e] x[n, c, h*sh + i*dh - pt, t0 + e*dw - pl] (zero
    outside the input) for the nb tiles of a block: per pair (c, i) the tiles' inputs are
    gathered into D (WA x TB), then transformed vector by vector along the tiles."""
    cdef Py_ssize_t ck, c, i, tb, e, hi, s, off
    cdef const floating* row
    for ck in range(g.CK):
        c = ck // g.KH
        i = ck % g.KH
        for tb in range(nb):
            hi = info[3 * tb + 1] * g.sh + i * g.dh - g.pt
            off = info[3 * tb + 2] - g.pl
            if hi < 0 or hi >= g.H:
                for e in range(WA):
                    D[e * g.TB + tb] = 0
                continue
            row = x + ((info[3 * tb] * g.C + c) * g.H + hi) * g.W
            if off >= 0 and off + (WA - 1) * g.dw < g.W:
                for e in range(WA):
                    D[e * g.TB + tb] = row[off + e * g.dw]
            else:
                for e in range(WA):
                    s = off + e * g.dw
                    D[e * g.TB + tb] = row[s] if 0 <= s < g.W else 0
        mix(nb, WA, WA, BT, D, g.TB, V + ck * g.TB, g.CK * g.TB)


def winograd_forward(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                     const floating[:, :, ::1] U,      # IN  (WA, O, C*KH): G @ taps
                     const floating[::1] bias,         # IN  (O,)
                     floating[:, :, :, ::1] y,         # OUT (N, O, H_out, W_out)
                     const floating[:, ::1] BT,        # IN  (WA, WA)
                     const floating[:, ::1] AT,        # IN  (m, WA)
                     Py_ssize_t KH, Py_ssize_t sh, Py_ssize_t pt, Py_ssize_t pl,
                     Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t TB, int num_threads,
                     floating[:, ::1] scratch):     # (num_threads, winograd_scratch)
    """y = the unit-column-stride convolution of x, one job per block of tiles (pt and pl
    may be negative: an input gradient's offsets)."""
    cdef WGeom g = _wgeom(x.shape, y.shape, KH, AT.shape[1] - AT.shape[0] + 1, sh, pt, pl,
                          dh, dw, TB)
    cdef Py_ssize_t b, nb, tb, o, q, a, t, t0
    cdef Py_ssize_t* info
    cdef floating* V
    cdef floating* M
    cdef floating* D
    cdef floating* yo
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating* up = &U[0, 0, 0]
    cdef const floating* bp = &bias[0]
    cdef const floating* btp = &BT[0, 0]
    cdef const floating* atp = &AT[0, 0]
    cdef floating* yp = &y[0, 0, 0, 0]
    cdef floating* sp = &scratch[0, 0]
    cdef Py_ssize_t ld = scratch.shape[1]
    if g.NT == 0 or g.O == 0:
        return
    _wino_check_scratch(&g, scratch.shape[0], scratch.shape[1], num_threads)
    cdef Py_ssize_t* infos = <Py_ssize_t*>malloc(max(num_threads, 1) * 3 * g.TB
                                                 * sizeof(Py_ssize_t))
    if infos == NULL:
        raise MemoryError()
    with nogil:
        for b in prange(g.NBLK, schedule='dynamic', num_threads=num_threads):
            nb = min(g.TB, g.NT - b * g.TB)
            V = sp + threadid() * ld
            M = V + WA * g.CK * g.TB
            D = M + WA * g.O * g.TB
            info = infos + threadid() * 3 * g.TB
            _wino_tiles(&g, b, nb, info)
            _wino_inputs(xp, btp, V, D, &g, info, nb)
            for a in range(WA):
                gemm(False, False, g.O, nb, g.CK, <floating>1, up + a * g.O * g.CK, g.CK,
                     V + a * g.CK * g.TB, g.TB, <floating>0, M + a * g.O * g.TB, g.TB)
            for o in range(g.O):
                mix(nb, g.m, WA, atp, M + o * g.TB, g.O * g.TB, D, g.TB)
                for tb in range(nb):
                    t0 = info[3 * tb + 2]
                    yo = yp + ((info[3 * tb] * g.O + o) * g.H_out + info[3 * tb + 1]) * g.W_out
                    for q in range(g.m):
                        t = t0 + q * g.dw
                        if t >= g.W_out:
                            break
                        yo[t] = bp[o] + D[q * g.TB + tb]
    free(infos)


def winograd_grad_weight_chunks(tuple yshape, Py_ssize_t CK, Py_ssize_t NBLK,
                                Py_ssize_t itemsize):
    """Chunks of blocks the weight gradient sums apart (then in chunk order): at most 16, and
    their partial sums (WA x C_out x C*KH each) within 32 MiB; the shape's alone."""
    cdef Py_ssize_t per = WA * yshape[1] * CK * itemsize
    return max(1, min(16, NBLK, (32 << 20) // max(per, 1)))


def winograd_grad_weight(const floating[:, :, :, ::1] go,   # IN  (N, O, H_out, W_out)
                         const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                         floating[:, :, :, ::1] gw,         # OUT (O, C, KH, KW)
                         const floating[:, ::1] BT,         # IN  (WA, WA)
                         const floating[:, ::1] G2,         # IN  (WA, m): grad_output's
                         const floating[:, ::1] A2T,        # IN  (KW, WA)
                         Py_ssize_t sh, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
                         Py_ssize_t dw, Py_ssize_t TB, Py_ssize_t nch, int num_threads,
                         floating[:, ::1] scratch,          # (num_threads, winograd_scratch)
                         floating[::1] partials):           # (nch * WA * O * C*KH,)
    """gw = the weight gradient of the unit-column-stride convolution: per chunk of blocks,
    sum_tiles (G2 g)[a] (BT d)[a]^T into the chunk's partial (one product per point a), the
    chunks added in chunk order, then gw[o, c, i, k] = sum_a A2T[k, a] (the sum)[a, o, (c,i)]."""
    cdef WGeom g = _wgeom(x.shape, go.shape, gw.shape[2], gw.shape[3], sh, pt, pl, dh, dw,
                          TB)
    cdef Py_ssize_t ch, b, b0, b1, nb, tb, o, q, a, t, ck, k, P = WA * g.O * g.CK
    cdef Py_ssize_t* info
    cdef floating* V
    cdef floating* Ug
    cdef floating* D
    cdef floating* part
    cdef floating* row
    cdef const floating* gp = &go[0, 0, 0, 0]
    cdef const floating* gr
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating* btp = &BT[0, 0]
    cdef const floating* g2p = &G2[0, 0]
    cdef const floating* a2p = &A2T[0, 0]
    cdef floating* wp = &gw[0, 0, 0, 0]
    cdef floating* sp = &scratch[0, 0]
    cdef floating* pp = &partials[0]
    cdef Py_ssize_t ld = scratch.shape[1]
    if g.O == 0 or g.CK == 0:
        return
    if g.NT == 0:
        memset(wp, 0, g.O * g.CK * g.KW * sizeof(floating))
        return
    _wino_check_scratch(&g, scratch.shape[0], scratch.shape[1], num_threads)
    if nch < 1 or partials.shape[0] < nch * P:
        raise ValueError(f"partials must have {max(nch, 1) * P} elements, got "
                         f"{partials.shape[0]}")
    cdef Py_ssize_t* infos = <Py_ssize_t*>malloc(max(num_threads, 1) * 3 * g.TB
                                                 * sizeof(Py_ssize_t))
    if infos == NULL:
        raise MemoryError()
    with nogil:
        for ch in prange(nch, schedule='dynamic', num_threads=num_threads):
            b0 = ch * g.NBLK // nch
            b1 = (ch + 1) * g.NBLK // nch
            part = pp + ch * P
            memset(part, 0, P * sizeof(floating))
            V = sp + threadid() * ld
            Ug = V + WA * g.CK * g.TB
            D = Ug + WA * g.O * g.TB
            info = infos + threadid() * 3 * g.TB
            for b in range(b0, b1):
                nb = min(g.TB, g.NT - b * g.TB)
                _wino_tiles(&g, b, nb, info)
                _wino_inputs(xp, btp, V, D, &g, info, nb)
                for o in range(g.O):
                    # the tiles' m outputs of grad_output (zero past the row), transformed
                    for tb in range(nb):
                        gr = gp + ((info[3 * tb] * g.O + o) * g.H_out
                                   + info[3 * tb + 1]) * g.W_out
                        for q in range(g.m):
                            t = info[3 * tb + 2] + q * g.dw
                            D[q * g.TB + tb] = gr[t] if t < g.W_out else 0
                    mix(nb, WA, g.m, g2p, D, g.TB, Ug + o * g.TB, g.O * g.TB)
                for a in range(WA):
                    gemm(False, True, g.O, g.CK, nb, <floating>1, Ug + a * g.O * g.TB, g.TB,
                         V + a * g.CK * g.TB, g.TB, <floating>1, part + a * g.O * g.CK, g.CK)
        # the chunks' sums in chunk order into chunk 0's, then the output transform, one
        # output channel per job
        for o in prange(g.O, schedule='static', num_threads=num_threads):
            for a in range(WA):
                row = pp + (a * g.O + o) * g.CK
                for ch in range(1, nch):
                    add_sy(g.CK, row + ch * P, row, 1)
            D = sp + threadid() * ld
            mix(g.CK, g.KW, WA, a2p, pp + o * g.CK, g.O * g.CK, D, g.CK)
            for ck in range(g.CK):
                for k in range(g.KW):
                    wp[(o * g.CK + ck) * g.KW + k] = D[k * g.CK + ck]
    free(infos)
