# cython: language_level=3
"""Batch-normalisation kernels: per-channel statistics and the fused affine passes
(fused float32/float64).

Layouts, all C-contiguous: x, g, y, out ``(N, C, P)`` (P = the spatial positions of one plane,
1 for an ``(N, C)`` input); per-channel vectors ``(C,)`` in float64 unless said otherwise::

    stats:          mean[c] = sum_{n,p} x[n,c,p] / m,  var[c] = sum_{n,p} (x[n,c,p] - mean[c])^2 / m
    backward_sums:  sum_g[c] = sum_{n,p} g[n,c,p],  sum_gd[c] = sum_{n,p} g[n,c,p] * (x[n,c,p] - mean[c])
    affine:         out[n,c,p] = g[n,c,p] * a[c] + (x[n,c,p] - mu[c]) * k[c] + b[c]
                    (mu, a, k, b: floating; without the g term in the forward)

with m = N * P. Every sum is taken per plane (n, c) in float64, by one thread, as eight
interleaved partial sums added in a fixed tree (plane_sum); a channel adds its planes in sample
order. So the results are bitwise identical for every thread count. The kernels check nothing;
pyconv1d.functional validates and allocates.
"""
from cython cimport floating
from cython.parallel cimport prange


cdef enum:
    # what plane_sum adds up
    SUM_X = 0       # x[p]
    SUM_SQ_DEV = 1  # (x[p] - mu)^2
    SUM_G_DEV = 2   # g[p] * (x[p] - mu)


cdef inline double term(int what, const floating* g, const floating* x, Py_ssize_t i,
                        double mu) noexcept nogil:
    cdef double d
    if what == SUM_X:
        return x[i]
    d = x[i] - mu
    return d * d if what == SUM_SQ_DEV else g[i] * d


cdef inline double plane_sum(int what, Py_ssize_t P, const floating* g, const floating* x,
                             double mu) noexcept nogil:
    """The sum over p < P of term(what): eight interleaved partial sums (positions p = j
    mod 8, so that the compiler can keep them in one vector register), added in a fixed tree
    at the end."""
    cdef Py_ssize_t p = 0, j
    cdef double s[8]
    for j in range(8):
        s[j] = 0
    while p + 8 <= P:
        for j in range(8):
            s[j] += term(what, g, x, p + j, mu)
        p += 8
    for j in range(P - p):
        s[j] += term(what, g, x, p + j, mu)
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


cdef inline double column_sum(Py_ssize_t N, Py_ssize_t C, const double* part,
                              Py_ssize_t c) noexcept nogil:
    """part[0, c] + part[1, c] + ... + part[N-1, c], in that order."""
    cdef Py_ssize_t n
    cdef double s = 0
    for n in range(N):
        s = s + part[n * C + c]
    return s


def stats(const floating[:, :, ::1] x,       # IN  (N, C, P)
          double[::1] mean,                  # OUT (C,)
          double[::1] var,                   # OUT (C,): biased
          double[:, ::1] part,               # scratch (N, C)
          int num_threads):
    """Batch mean and biased variance of each channel (two passes: the deviations); 0 and 0
    for an empty batch."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2], job, c
    cdef double m = <double>max(N * P, 1)
    with nogil:
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            part[job // C, job % C] = plane_sum(SUM_X, P, NULL, &x[job // C, job % C, 0], 0)
        for c in range(C):
            mean[c] = column_sum(N, C, &part[0, 0], c) / m
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            part[job // C, job % C] = plane_sum(SUM_SQ_DEV, P, NULL, &x[job // C, job % C, 0],
                                                mean[job % C])
        for c in range(C):
            var[c] = column_sum(N, C, &part[0, 0], c) / m


def backward_sums(const floating[:, :, ::1] g,   # IN  (N, C, P)
                  const floating[:, :, ::1] x,   # IN  (N, C, P)
                  const double[::1] mean,        # IN  (C,)
                  double[::1] sum_g,             # OUT (C,)
                  double[::1] sum_gd,            # OUT (C,)
                  double[:, :, ::1] part,        # scratch (2, N, C)
                  int num_threads):
    """Per channel: the sum of g, and of g times the deviation of x from mean."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2], job, n, c
    with nogil:
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            n = job // C
            c = job % C
            part[0, n, c] = plane_sum(SUM_X, P, NULL, &g[n, c, 0], 0)
            part[1, n, c] = plane_sum(SUM_G_DEV, P, &g[n, c, 0], &x[n, c, 0], mean[c])
        for c in range(C):
            sum_g[c] = column_sum(N, C, &part[0, 0, 0], c)
            sum_gd[c] = column_sum(N, C, &part[1, 0, 0], c)


def affine(const floating[:, :, ::1] g,          # IN  (N, C, P), read only with with_g
           const floating[:, :, ::1] x,          # IN  (N, C, P)
           const floating[::1] mu,               # IN  (C,)
           const floating[::1] a,                # IN  (C,)
           const floating[::1] k,                # IN  (C,)
           const floating[::1] b,                # IN  (C,)
           floating[:, :, ::1] out,              # OUT (N, C, P)
           bint with_g, int num_threads):
    """out = g * a[c] + (x - mu[c]) * k[c] + b[c] (the forward: without g). The mean (rounded
    to x's dtype) comes off x before the scaling, so that a mean large against the spread costs
    about x's own rounding, not the product's."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2], job, p, c
    cdef floating mc, ac, kc, bc
    cdef const floating* gp
    cdef const floating* xp
    cdef floating* op
    with nogil:
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            c = job % C
            mc = mu[c]
            ac = a[c]
            kc = k[c]
            bc = b[c]
            gp = &g[job // C, c, 0]
            xp = &x[job // C, c, 0]
            op = &out[job // C, c, 0]
            if with_g:
                for p in range(P):
                    op[p] = gp[p] * ac + (xp[p] - mc) * kc + bc
            else:
                for p in range(P):
                    op[p] = (xp[p] - mc) * kc + bc
