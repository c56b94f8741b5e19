# cython: language_level=3
"""Batch-normalisation kernels: per-channel statistics and the fused affine passes
(fused float32/float64).

Layouts, all C-contiguous: x, g, y, out ``(N, C, P)`` (P = the spatial positions of one plane,
1 for an ``(N, C)`` input); per-channel vectors ``(C,)`` in float64 unless said otherwise::

    stats:          mean[c] = sum_{n,p} x[n,c,p] / m,  var[c] = sum_{n,p} (x[n,c,p] - mean[c])^2 / m
    affine:         y[n,c,p] = (x[n,c,p] - mu[c]) * a[c] + b[c]               (mu, a, b: floating)
    backward_sums:  sum_g[c] = sum_{n,p} g[n,c,p],  sum_gd[c] = sum_{n,p} g[n,c,p] * (x[n,c,p] - mean[c])
    backward_apply: out[n,c,p] = g[n,c,p] * a[c] + (x[n,c,p] - mu[c]) * k[c] + b[c]  (floating)

with m = N * P. Every sum is taken per plane (n, c) in float64, by one thread, in position
order; a channel adds its planes in sample order. So the results are bitwise identical for
every thread count. The kernels check nothing; pyconv1d.functional validates and allocates.
"""
from cython cimport floating
from cython.parallel cimport prange


# Each sum runs eight interleaved partial sums (positions p = j mod 8), added in a fixed tree
# at the end, so that the compiler can keep them in one vector register.

cdef inline double tree8(double* s) noexcept nogil:
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


cdef inline double plane_sum(Py_ssize_t P, const floating* x) noexcept nogil:
    cdef Py_ssize_t p = 0, j
    cdef double s[8]
    for j in range(8):
        s[j] = 0
    while p + 8 <= P:
        for j in range(8):
            s[j] += x[p + j]
        p += 8
    for j in range(P - p):
        s[j] += x[p + j]
    return tree8(s)


cdef inline double plane_sq_dev(Py_ssize_t P, const floating* x, double mu) noexcept nogil:
    cdef Py_ssize_t p = 0, j
    cdef double s[8]
    cdef double d
    for j in range(8):
        s[j] = 0
    while p + 8 <= P:
        for j in range(8):
            d = x[p + j] - mu
            s[j] += d * d
        p += 8
    for j in range(P - p):
        d = x[p + j] - mu
        s[j] += d * d
    return tree8(s)


cdef inline double plane_dot_dev(Py_ssize_t P, const floating* g, const floating* x,
                                 double mu) noexcept nogil:
    cdef Py_ssize_t p = 0, j
    cdef double s[8]
    for j in range(8):
        s[j] = 0
    while p + 8 <= P:
        for j in range(8):
            s[j] += g[p + j] * (x[p + j] - mu)
        p += 8
    for j in range(P - p):
        s[j] += g[p + j] * (x[p + j] - mu)
    return tree8(s)


def stats(const floating[:, :, ::1] x,       # IN  (N, C, P)
          double[::1] mean,                  # OUT (C,)
          double[::1] var,                   # OUT (C,): biased
          double[:, ::1] part,               # scratch (N, C)
          int num_threads):
    """Batch mean and biased variance of each channel (two passes: the deviations)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2], job, n, c
    cdef double m = <double>(N * P), s
    with nogil:
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            part[job // C, job % C] = plane_sum(P, &x[job // C, job % C, 0])
        for c in range(C):
            s = 0
            for n in range(N):
                s = s + part[n, c]
            mean[c] = s / m
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            part[job // C, job % C] = plane_sq_dev(P, &x[job // C, job % C, 0],
                                                   mean[job % C])
        for c in range(C):
            s = 0
            for n in range(N):
                s = s + part[n, c]
            var[c] = s / m


def affine(const floating[:, :, ::1] x,      # IN  (N, C, P)
           const floating[::1] mu,           # IN  (C,)
           const floating[::1] a,            # IN  (C,)
           const floating[::1] b,            # IN  (C,)
           floating[:, :, ::1] y,            # OUT (N, C, P)
           int num_threads):
    """y = (x - mu[c]) * a[c] + b[c]: the mean comes off first, so that no precision is lost
    when the mean is large against the spread."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2], job, p, c
    cdef floating mc, ac, bc
    cdef const floating* xp
    cdef floating* yp
    with nogil:
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            c = job % C
            mc = mu[c]
            ac = a[c]
            bc = b[c]
            xp = &x[job // C, c, 0]
            yp = &y[job // C, c, 0]
            for p in range(P):
                yp[p] = (xp[p] - mc) * ac + bc


def backward_sums(const floating[:, :, ::1] g,   # IN  (N, C, P)
                  const floating[:, :, ::1] x,   # IN  (N, C, P)
                  const double[::1] mean,        # IN  (C,)
                  double[::1] sum_g,             # OUT (C,)
                  double[::1] sum_gd,            # OUT (C,)
                  double[:, :, ::1] part,        # scratch (2, N, C)
                  int num_threads):
    """Per channel: the sum of g, and of g times the deviation of x from mean."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2], job, n, c
    cdef double s, t
    with nogil:
        for job in prange(N * C, schedule='static', num_threads=num_threads):
            n = job // C
            c = job % C
            part[0, n, c] = plane_sum(P, &g[n, c, 0])
            part[1, n, c] = plane_dot_dev(P, &g[n, c, 0], &x[n, c, 0], mean[c])
        for c in range(C):
            s = 0
            t = 0
            for n in range(N):
                s = s + part[0, n, c]
                t = t + part[1, n, c]
            sum_g[c] = s
            sum_gd[c] = t


def backward_apply(const floating[:, :, ::1] g,  # IN  (N, C, P)
                   const floating[:, :, ::1] x,  # IN  (N, C, P)
                   const floating[::1] mu,       # IN  (C,)
                   const floating[::1] a,        # IN  (C,)
                   const floating[::1] k,        # IN  (C,)
                   const floating[::1] b,        # IN  (C,)
                   floating[:, :, ::1] out,      # OUT (N, C, P)
                   int num_threads):
    """out = g * a[c] + (x - mu[c]) * k[c] + b[c]."""
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
            for p in range(P):
                op[p] = gp[p] * ac + (xp[p] - mc) * kc + bc
