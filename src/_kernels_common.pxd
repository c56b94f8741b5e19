# Inline helpers shared by the kernels (no Python objects, no GIL).
from cython cimport floating


cdef inline void tap_range(Py_ssize_t off, Py_ssize_t L, Py_ssize_t L_out, Py_ssize_t s,
                           Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Outputs t in [lo, hi) whose input index t*s + off falls inside [0, L)."""
    cdef Py_ssize_t a = 0, b
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


cdef inline floating dot_strided(const floating* a, const floating* b, Py_ssize_t s,
                                 Py_ssize_t n) noexcept nogil:
    """sum_i a[i] * b[i*s], with eight partial sums combined in a fixed order."""
    cdef floating p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0
    cdef Py_ssize_t i = 0
    if s == 1:
        while i + 8 <= n:
            p0 = p0 + a[i] * b[i]
            p1 = p1 + a[i + 1] * b[i + 1]
            p2 = p2 + a[i + 2] * b[i + 2]
            p3 = p3 + a[i + 3] * b[i + 3]
            p4 = p4 + a[i + 4] * b[i + 4]
            p5 = p5 + a[i + 5] * b[i + 5]
            p6 = p6 + a[i + 6] * b[i + 6]
            p7 = p7 + a[i + 7] * b[i + 7]
            i = i + 8
    else:
        while i + 8 <= n:
            p0 = p0 + a[i] * b[i * s]
            p1 = p1 + a[i + 1] * b[(i + 1) * s]
            p2 = p2 + a[i + 2] * b[(i + 2) * s]
            p3 = p3 + a[i + 3] * b[(i + 3) * s]
            p4 = p4 + a[i + 4] * b[(i + 4) * s]
            p5 = p5 + a[i + 5] * b[(i + 5) * s]
            p6 = p6 + a[i + 6] * b[(i + 6) * s]
            p7 = p7 + a[i + 7] * b[(i + 7) * s]
            i = i + 8
    while i < n:
        p0 = p0 + a[i] * b[i * s]
        i = i + 1
    return ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))
