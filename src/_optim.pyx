# cython: language_level=3
"""Optimiser kernels: one pass over a parameter and its state (fused float32/float64).

Layouts: every array is C-contiguous and flat, ``(n,)``, all of one dtype; the scalars are of
that dtype too (the caller passes Python floats, which are rounded to it as NumPy rounds a
Python float against an array; l2 and dec say whether a weight decay was given, even one that
rounds to zero). Per element::

    adam:  g = g + wd * p                      (l2: L2 decay, into a register)
           p = p * decay                       (dec: decoupled decay, AdamW)
           m = m + c1 * (g - m)                (c1 = 1 - beta1)
           v = v * beta2 + (c2 * g) * g        (c2 = 1 - beta2)
           u = max(vmax, v), vmax = u          (amsgrad; else u = v)
           p = p - step * (m / (sqrt(u) / bc2 + eps))

    sgd:       g = g + wd * p                  (l2: L2 decay, into a register)
               b = g (first step), else b = b * momentum + c * g    (c = 1 - dampening)
               g = g + momentum * b (nesterov), else g = b
               p = p - lr * g

    adadelta:  g = g + wd * p                  (l2: L2 decay, into a register)
               v = v * rho + (c * g) * g       (c = 1 - rho)
               d = sqrt(u + eps) / sqrt(v + eps) * g
               u = u * rho + (c * d) * d
               p = p - lr * d

Each operation is rounded on its own, in the order written (the loops are in _optim.h, and
this module is compiled with -ffp-contract=off, so no multiply-add is fused), which is the
rounding of the NumPy array expressions these lines replace: the results are bitwise those of
that code. Elements are independent, so the results are the same for every thread count. The
kernels check nothing; pyconv1d.optim chooses when they apply.
"""
from cython cimport floating
from cython.parallel cimport prange


cdef extern from "_optim.h" nogil:
    void pyc_adam_f(Py_ssize_t n, float* p, const float* g, float* m, float* v, float* vmax,
                    int l2, float wd, int dec, float decay, float c1, float b2, float c2,
                    float step, float bc2, float eps)
    void pyc_adam_d(Py_ssize_t n, double* p, const double* g, double* m, double* v,
                    double* vmax, int l2, double wd, int dec, double decay, double c1,
                    double b2, double c2, double step, double bc2, double eps)
    void pyc_sgd_f(Py_ssize_t n, float* p, const float* g, float* buf, int l2, float wd,
                   float mom, float c, float lr, int first, int nesterov)
    void pyc_sgd_d(Py_ssize_t n, double* p, const double* g, double* buf, int l2, double wd,
                   double mom, double c, double lr, int first, int nesterov)
    void pyc_adadelta_f(Py_ssize_t n, float* p, const float* g, float* v, float* u, int l2,
                        float wd, float rho, float c, float eps, float lr)
    void pyc_adadelta_d(Py_ssize_t n, double* p, const double* g, double* v, double* u,
                        int l2, double wd, double rho, double c, double eps, double lr)


cdef enum:
    # elements per job: whole cache lines, enough to hide a job's start
    BLOCK = 16384


def adam(floating[::1] p,              # IN/OUT (n,) parameter
         const floating[::1] g,        # IN     (n,) gradient
         floating[::1] m,              # IN/OUT (n,) first moment
         floating[::1] v,              # IN/OUT (n,) second moment
         floating[::1] vmax,           # IN/OUT (n,) running maximum of v (amsgrad), or None
         bint l2, floating wd, bint dec, floating decay, floating c1, floating beta2,
         floating c2, floating step, floating bc2, floating eps, int num_threads):
    """One Adam / AdamW step, as the module docstring writes it (pyc_adam over blocks)."""
    cdef Py_ssize_t b, i, k, n = p.shape[0]
    cdef floating* pp = &p[0] if n else NULL
    cdef const floating* gp = &g[0] if n else NULL
    cdef floating* mp = &m[0] if n else NULL
    cdef floating* vp = &v[0] if n else NULL
    cdef floating* xp = &vmax[0] if vmax is not None and n else NULL
    with nogil:
        for b in prange((n + BLOCK - 1) // BLOCK, schedule='static', num_threads=num_threads):
            i = b * BLOCK
            k = min(BLOCK, n - i)
            if floating is float:
                pyc_adam_f(k, pp + i, gp + i, mp + i, vp + i, xp + i if xp != NULL else NULL,
                           l2, wd, dec, decay, c1, beta2, c2, step, bc2, eps)
            else:
                pyc_adam_d(k, pp + i, gp + i, mp + i, vp + i, xp + i if xp != NULL else NULL,
                           l2, wd, dec, decay, c1, beta2, c2, step, bc2, eps)


def adadelta(floating[::1] p,          # IN/OUT (n,) parameter
             const floating[::1] g,    # IN     (n,) gradient
             floating[::1] v,          # IN/OUT (n,) running mean of g^2 (square_avg)
             floating[::1] u,          # IN/OUT (n,) running mean of delta^2 (acc_delta)
             bint l2, floating wd, floating rho, floating c, floating eps, floating lr,
             int num_threads):
    """One Adadelta step, as the module docstring writes it (pyc_adadelta over blocks)."""
    cdef Py_ssize_t b, i, k, n = p.shape[0]
    cdef floating* pp = &p[0] if n else NULL
    cdef const floating* gp = &g[0] if n else NULL
    cdef floating* vp = &v[0] if n else NULL
    cdef floating* up = &u[0] if n else NULL
    with nogil:
        for b in prange((n + BLOCK - 1) // BLOCK, schedule='static', num_threads=num_threads):
            i = b * BLOCK
            k = min(BLOCK, n - i)
            if floating is float:
                pyc_adadelta_f(k, pp + i, gp + i, vp + i, up + i, l2, wd, rho, c, eps, lr)
            else:
                pyc_adadelta_d(k, pp + i, gp + i, vp + i, up + i, l2, wd, rho, c, eps, lr)


def sgd(floating[::1] p,               # IN/OUT (n,) parameter
        const floating[::1] g,         # IN     (n,) gradient
        floating[::1] buf,             # IN/OUT (n,) momentum buffer (written on the first step)
        bint l2, floating wd, floating momentum, floating c, floating lr, bint first,
        bint nesterov, int num_threads):
    """One SGD step with momentum, as the module docstring writes it (pyc_sgd over blocks)."""
    cdef Py_ssize_t b, i, k, n = p.shape[0]
    cdef floating* pp = &p[0] if n else NULL
    cdef const floating* gp = &g[0] if n else NULL
    cdef floating* bp = &buf[0] if n else NULL
    with nogil:
        for b in prange((n + BLOCK - 1) // BLOCK, schedule='static', num_threads=num_threads):
            i = b * BLOCK
            k = min(BLOCK, n - i)
            if floating is float:
                pyc_sgd_f(k, pp + i, gp + i, bp + i, l2, wd, momentum, c, lr, first, nesterov)
            else:
                pyc_sgd_d(k, pp + i, gp + i, bp + i, l2, wd, momentum, c, lr, first, nesterov)
