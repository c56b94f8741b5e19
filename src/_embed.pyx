# cython: language_level=3
"""The embedding table's gradient (fused float32/float64).

Layouts, all C-contiguous: idx ``(n,)`` token indices (np.intp) in ``[0, V)``, g ``(n, D)`` the
gradient of the looked-up rows, out ``(V, D)`` zeroed by the caller::

    out[idx[j], :] += g[j, :]      for j = 0, 1, ..., n-1, in that order

Each row's sum takes its tokens in input order, starting from zero: the bits of
``np.add.at(out, idx, g)``. The V rows are split into one contiguous range per thread; every
thread scans all the tokens and adds those of its own rows, so no two threads write one row and
the result is the same for every thread count. The kernel checks nothing: nn.Embedding checks
the indices in its forward and keeps a copy of them for the backward.
"""
from cython cimport floating
from cython.parallel cimport prange


def embedding_backward(const Py_ssize_t[::1] idx,    # IN  (n,)
                       const floating[:, ::1] g,     # IN  (n, D)
                       floating[:, ::1] out,         # OUT (V, D), zeroed
                       int num_threads):
    cdef Py_ssize_t n = idx.shape[0], D = g.shape[1], V = out.shape[0]
    cdef Py_ssize_t t, j, d, r, lo, hi
    cdef Py_ssize_t T = max(1, min(num_threads, V))
    cdef const Py_ssize_t* ip = &idx[0] if n else NULL
    cdef const floating* gp = &g[0, 0] if n and D else NULL
    cdef floating* op = &out[0, 0] if V and D else NULL
    if n == 0 or D == 0:
        return
    with nogil:
        for t in prange(T, schedule='static', num_threads=T):
            lo = V * t // T
            hi = V * (t + 1) // T
            for j in range(n):
                r = ip[j]
                if lo <= r < hi:
                    for d in range(D):
                        op[r * D + d] = op[r * D + d] + gp[j * D + d]
