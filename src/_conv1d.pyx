# cython: language_level=3
"""conv1d kernels: forward, input gradient and weight gradient (fused float32/float64).

Layouts, all C-contiguous::

    x  (N, C_in, L)             input
    w  (C_out, C_in/groups, K)  weight
    y  (N, C_out, L_out)        output
    g  (N, C_out, L_out)        gradient of the loss with respect to y

With Cg = C_in/groups, Og = C_out/groups and the group of output channel o, gr = o // Og::

    y[n, o, t]   = b[o] + sum_{c<Cg, k<K} w[o, c, k] * x[n, gr*Cg + c, t*stride + k*dilation - pad_left]
    gx[n, i, j]  = sum_{o in group(i), k, t : t*stride + k*dilation - pad_left == j} w[o, i % Cg, k] * g[n, o, t]
    gw[o, c, k]  = sum_{n, t} g[n, o, t] * x[n, gr*Cg + c, t*stride + k*dilation - pad_left]

An index outside [0, L) reads as zero: the padding is never materialised. The right padding
needs no argument; it is implied by L_out.

The kernels check nothing; pyconv1d.functional validates every argument and allocates the
outputs (y pre-filled with the bias or zeros, gx zeroed). Each output element is computed by
exactly one thread in a fixed order, so the results are bitwise identical for every thread count.
"""
from cython cimport floating
from cython.parallel cimport prange

from _omp cimport PYCONV1D_HAVE_OPENMP, omp_get_max_threads
from _kernels_common cimport tap_range, dot_strided


def openmp_enabled():
    """True when this module was compiled with OpenMP."""
    return bool(PYCONV1D_HAVE_OPENMP)


def max_threads():
    """OpenMP's default team size (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return omp_get_max_threads()


cdef inline void _forward_row(const floating* x, const floating* w, floating* y,
                              Py_ssize_t Cg, Py_ssize_t L, Py_ssize_t K, Py_ssize_t L_out,
                              Py_ssize_t s, Py_ssize_t d, Py_ssize_t pl) noexcept nogil:
    """y[t] += sum_{c,k} w[c, k] * x[c, t*s + k*d - pl] for one (n, o) row."""
    cdef Py_ssize_t c, k, t, off, lo, hi
    cdef const floating* xc
    cdef floating wv
    for c in range(Cg):
        xc = x + c * L
        for k in range(K):
            wv = w[c * K + k]
            off = k * d - pl
            tap_range(off, L, L_out, s, &lo, &hi)
            if s == 1:
                for t in range(lo, hi):
                    y[t] += wv * xc[t + off]
            else:
                for t in range(lo, hi):
                    y[t] += wv * xc[t * s + off]


def forward(const floating[:, :, ::1] x,       # IN  (N, C_in, L)
            const floating[:, :, ::1] w,       # IN  (C_out, Cg, K)
            floating[:, :, ::1] y,             # OUT (N, C_out, L_out), holds the bias
            Py_ssize_t stride, Py_ssize_t pad_left, Py_ssize_t dilation,
            Py_ssize_t groups, int num_threads):
    cdef Py_ssize_t N = x.shape[0], L = x.shape[2]
    cdef Py_ssize_t C_out = w.shape[0], Cg = w.shape[1], K = w.shape[2]
    cdef Py_ssize_t L_out = y.shape[2], Og = C_out // groups
    cdef Py_ssize_t job, n, o
    if N == 0 or C_out == 0 or L_out == 0:
        return
    with nogil:
        for job in prange(N * C_out, schedule='static', num_threads=num_threads):
            n = job // C_out
            o = job % C_out
            _forward_row(&x[n, (o // Og) * Cg, 0], &w[o, 0, 0], &y[n, o, 0],
                         Cg, L, K, L_out, stride, dilation, pad_left)


cdef inline void _grad_input_row(const floating* g, const floating* w, floating* gx,
                                 Py_ssize_t Og, Py_ssize_t Cg, Py_ssize_t L, Py_ssize_t K,
                                 Py_ssize_t L_out, Py_ssize_t s, Py_ssize_t d,
                                 Py_ssize_t pl) noexcept nogil:
    """gx[t*s + k*d - pl] += w[o, c, k] * g[o, t] over the Og outputs o of the group."""
    cdef Py_ssize_t o, k, t, off, lo, hi
    cdef const floating* go
    cdef floating wv
    for o in range(Og):
        go = g + o * L_out
        for k in range(K):
            wv = w[o * Cg * K + k]
            off = k * d - pl
            tap_range(off, L, L_out, s, &lo, &hi)
            if s == 1:
                for t in range(lo, hi):
                    gx[t + off] += wv * go[t]
            else:
                for t in range(lo, hi):
                    gx[t * s + off] += wv * go[t]


def grad_input(const floating[:, :, ::1] g,    # IN  (N, C_out, L_out)
               const floating[:, :, ::1] w,    # IN  (C_out, Cg, K)
               floating[:, :, ::1] gx,         # OUT (N, C_in, L), zeroed
               Py_ssize_t stride, Py_ssize_t pad_left, Py_ssize_t dilation,
               Py_ssize_t groups, int num_threads):
    cdef Py_ssize_t N = gx.shape[0], C_in = gx.shape[1], L = gx.shape[2]
    cdef Py_ssize_t C_out = w.shape[0], Cg = w.shape[1], K = w.shape[2]
    cdef Py_ssize_t L_out = g.shape[2], Og = C_out // groups
    cdef Py_ssize_t job, n, i, gr
    if N == 0 or C_in == 0 or L == 0 or L_out == 0 or C_out == 0:
        return
    with nogil:
        for job in prange(N * C_in, schedule='static', num_threads=num_threads):
            n = job // C_in
            i = job % C_in
            gr = i // Cg
            _grad_input_row(&g[n, gr * Og, 0], &w[gr * Og, i - gr * Cg, 0], &gx[n, i, 0],
                            Og, Cg, L, K, L_out, stride, dilation, pad_left)


cdef inline floating _grad_weight_tap(const floating* g, const floating* x, Py_ssize_t N,
                                      Py_ssize_t g_batch, Py_ssize_t x_batch, Py_ssize_t L,
                                      Py_ssize_t L_out, Py_ssize_t s,
                                      Py_ssize_t off) noexcept nogil:
    """sum_{n, t} g[n, t] * x[n, t*s + off] for one (o, c, k) tap."""
    cdef Py_ssize_t n, lo, hi
    cdef floating acc = 0
    tap_range(off, L, L_out, s, &lo, &hi)
    if hi <= lo:
        return acc
    for n in range(N):
        acc = acc + dot_strided(g + n * g_batch + lo, x + n * x_batch + lo * s + off,
                                s, hi - lo)
    return acc


def grad_weight(const floating[:, :, ::1] g,   # IN  (N, C_out, L_out)
                const floating[:, :, ::1] x,   # IN  (N, C_in, L)
                floating[:, :, ::1] gw,        # OUT (C_out, Cg, K)
                Py_ssize_t stride, Py_ssize_t pad_left, Py_ssize_t dilation,
                Py_ssize_t groups, int num_threads):
    cdef Py_ssize_t N = x.shape[0], C_in = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t C_out = gw.shape[0], Cg = gw.shape[1], K = gw.shape[2]
    cdef Py_ssize_t L_out = g.shape[2], Og = C_out // groups
    cdef Py_ssize_t job, o, c, k
    if N == 0 or L == 0 or L_out == 0:
        gw[...] = 0
        return
    with nogil:
        for job in prange(C_out * Cg * K, schedule='static', num_threads=num_threads):
            o = job // (Cg * K)
            c = (job // K) % Cg
            k = job % K
            gw[o, c, k] = _grad_weight_tap(&g[0, o, 0], &x[0, (o // Og) * Cg + c, 0], N,
                                           C_out * L_out, C_in * L, L, L_out, stride,
                                           k * dilation - pad_left)
