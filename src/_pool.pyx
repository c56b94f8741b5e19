# cython: language_level=3
"""Pooling kernels: max and average, forward and backward (fused float32/float64).

Every array is a stack of independent planes ("rows"), one per (n, c) pair; 1D pooling is 2D
pooling with H == 1. Layouts, all C-contiguous::

    x    (R, H, W)          input, R = N * C
    y    (R, H_out, W_out)  output
    idx  (R, H_out, W_out)  int64: flat index h*W + w into the input plane of each maximum
    g    (R, H_out, W_out)  gradient of the loss with respect to y
    gx   (R, H, W)          gradient with respect to x (zeroed by the caller)

Window of output (p, q), with the padding never materialised (indices outside the plane are
skipped)::

    rows  p*sh - ph + i*dh, i < kh        cols  q*sw - pw + j*dw, j < kw

    max:  y[r, p, q] = max over the window of x[r, ., .]   (padding never wins)
    avg:  y[r, p, q] = sum over the window of x[r, ., .] / divisor

The max pool keeps the first maximum in row-major window order (``val > best``), and a NaN
always wins, as PyTorch's CPU kernels do. The average pool's divisor is PyTorch's: the window
clipped to the padded plane (count_include_pad) or to the input (otherwise), or
``divisor_override``. The adaptive kernels use PyTorch's windows
``[floor(i*n/o), ceil((i+1)*n/o))``; the adaptive max takes a per-row valid length, so positions past it (padding of variable-length
sequences) are never looked at.

The kernels check nothing; pyconv1d.functional validates every argument and allocates the
outputs. Each row is computed by exactly one thread in a fixed order (prange over rows), so
the results are bitwise identical for every thread count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.math cimport INFINITY


cdef extern from "_simd.h" nogil:
    Py_ssize_t pyc_argmax_f(Py_ssize_t n, const float* x)
    Py_ssize_t pyc_argmax_d(Py_ssize_t n, const double* x)
    void pyc_max_tap_f(Py_ssize_t rows, Py_ssize_t n, const float* x, Py_ssize_t xr,
                       Py_ssize_t s, int64_t pos, float* y, int64_t* idx, Py_ssize_t yr,
                       int first)
    void pyc_max_tap_d(Py_ssize_t rows, Py_ssize_t n, const double* x, Py_ssize_t xr,
                       Py_ssize_t s, int64_t pos, double* y, int64_t* idx, Py_ssize_t yr,
                       int first)


cdef inline void _max_window(const floating* x, floating* y, int64_t* idx, Py_ssize_t W,
                             Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t dh, Py_ssize_t w0,
                             Py_ssize_t w1, Py_ssize_t dw) noexcept nogil:
    """One output of the max pool, scalar: rows [h0, h1) step dh, columns [w0, w1) step dw
    (both already clipped to the plane)."""
    cdef Py_ssize_t h, w, best_i = -1
    cdef floating v, best = -INFINITY
    if h0 < h1 and w0 < w1:
        best_i = h0 * W + w0
    h = h0
    while h < h1:
        w = w0
        while w < w1:
            v = x[h * W + w]
            if v > best or v != v:
                best = v
                best_i = h * W + w
            w = w + dw
        h = h + dh
    y[0] = best
    idx[0] = best_i


cdef inline void _max_taps(const floating* x, floating* y, int64_t* idx, Py_ssize_t W,
                           Py_ssize_t Wo, Py_ssize_t p, Py_ssize_t rows, Py_ssize_t h0,
                           Py_ssize_t h1, Py_ssize_t q_lo, Py_ssize_t q_hi, Py_ssize_t kw,
                           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pw, Py_ssize_t dh,
                           Py_ssize_t dw) noexcept nogil:
    """Output rows [p, p + rows), columns [q_lo, q_hi), every window inside the plane's
    columns and holding input rows [h0, h1) step dh of the first output row (the next rows
    ``sh`` lower): tap by tap in row-major window order, as :func:`_max_window`."""
    cdef Py_ssize_t h = h0, j, off
    cdef int first = 1
    while h < h1:
        for j in range(kw):
            off = h * W + q_lo * sw - pw + j * dw
            if floating is float:
                pyc_max_tap_f(rows, q_hi - q_lo, x + off, sh * W, sw, off,
                              y + p * Wo + q_lo, idx + p * Wo + q_lo, Wo, first)
            else:
                pyc_max_tap_d(rows, q_hi - q_lo, x + off, sh * W, sw, off,
                              y + p * Wo + q_lo, idx + p * Wo + q_lo, Wo, first)
            first = 0
        h = h + dh


cdef inline void _max_plane(const floating* x, floating* y, int64_t* idx,
                            Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo,
                            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                            Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh,
                            Py_ssize_t dw) noexcept nogil:
    """One plane of the max pool: the maximum of each window and where it was.

    The outputs whose windows lie inside the plane (rows [p_lo, p_hi), columns [q_lo, q_hi))
    run tap by tap over the whole block; rows whose window is cut by the top or bottom edge
    run tap by tap one row at a time; the outputs at the left and right edges, and rows whose
    window holds no input row, run scalar. All visit a window's taps in the same row-major
    order, so the values and indices are those of the scalar loop."""
    cdef Py_ssize_t p, q, h0, h1, w0, w1
    cdef Py_ssize_t span_h = (kh - 1) * dh + 1, span_w = (kw - 1) * dw + 1
    cdef Py_ssize_t p_lo = (ph + sh - 1) // sh, q_lo = (pw + sw - 1) // sw
    cdef Py_ssize_t p_hi = (H - span_h + ph) // sh + 1 if H >= span_h else 0
    cdef Py_ssize_t q_hi = (W - span_w + pw) // sw + 1 if W >= span_w else 0
    p_hi = min(p_hi, Ho)
    q_hi = min(q_hi, Wo)
    p_lo = min(p_lo, p_hi)
    q_lo = min(q_lo, q_hi)
    if p_lo < p_hi and q_lo < q_hi:
        h0 = p_lo * sh - ph
        _max_taps(x, y, idx, W, Wo, p_lo, p_hi - p_lo, h0, h0 + span_h, q_lo, q_hi, kw,
                  sh, sw, pw, dh, dw)
    for p in range(Ho):
        h0 = p * sh - ph
        h1 = min(h0 + span_h, H)
        if h0 < 0:      # the window's first row inside the plane, in one step
            h0 = h0 + (dh - 1 - h0) // dh * dh
        if h0 < h1 and q_lo < q_hi and not p_lo <= p < p_hi:
            _max_taps(x, y, idx, W, Wo, p, 1, h0, h1, q_lo, q_hi, kw, sh, sw, pw, dh, dw)
        for q in range(Wo):
            if h0 < h1 and q_lo <= q < q_hi:
                continue
            w0 = q * sw - pw
            w1 = min(w0 + span_w, W)
            if w0 < 0:
                w0 = w0 + (dw - 1 - w0) // dw * dw
            _max_window(x, y + p * Wo + q, idx + p * Wo + q, W, h0, h1, dh, w0, w1, dw)


def max_forward(const floating[:, :, ::1] x,   # IN  (R, H, W)
                floating[:, :, ::1] y,         # OUT (R, H_out, W_out)
                int64_t[:, :, ::1] idx,        # OUT (R, H_out, W_out)
                Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                int num_threads):
    cdef Py_ssize_t R = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = y.shape[1], Wo = y.shape[2], r
    if R == 0 or Ho == 0 or Wo == 0:
        return
    with nogil:
        for r in prange(R, schedule='static', num_threads=num_threads):
            _max_plane(&x[r, 0, 0], &y[r, 0, 0], &idx[r, 0, 0], H, W, Ho, Wo,
                       kh, kw, sh, sw, ph, pw, dh, dw)


def max_backward(const floating[:, :, ::1] g,   # IN  (R, H_out, W_out)
                 const int64_t[:, :, ::1] idx,  # IN  (R, H_out, W_out), from max_forward
                 floating[:, :, ::1] gx,        # OUT (R, H, W), zeroed
                 int num_threads):
    """gx[r].flat[idx[r, p, q]] += g[r, p, q]; a negative index (empty window) is skipped."""
    cdef Py_ssize_t R = g.shape[0], n_out = g.shape[1] * g.shape[2], r, t
    cdef int64_t i
    cdef const floating* gr
    cdef const int64_t* ir
    cdef floating* xr
    if R == 0 or n_out == 0:
        return
    with nogil:
        for r in prange(R, schedule='static', num_threads=num_threads):
            gr = &g[r, 0, 0]
            ir = &idx[r, 0, 0]
            xr = &gx[r, 0, 0]
            for t in range(n_out):
                i = ir[t]
                if i >= 0:
                    xr[i] += gr[t]


cdef inline void _avg_window(Py_ssize_t p, Py_ssize_t q, Py_ssize_t H, Py_ssize_t W,
                             Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                             Py_ssize_t ph, Py_ssize_t pw, bint count_include_pad,
                             Py_ssize_t divisor_override, Py_ssize_t* h0, Py_ssize_t* h1,
                             Py_ssize_t* w0, Py_ssize_t* w1, floating* div) noexcept nogil:
    """PyTorch's average-pool window and divisor for output (p, q). The window's area is
    counted in double: the exact integer up to 2**53 (rounded to the dtype as before), and
    no wrap-around for kernels whose area overflows 64 bits."""
    cdef Py_ssize_t a0 = p * sh - ph, b0 = q * sw - pw
    cdef Py_ssize_t a1 = a0 + kh, b1 = b0 + kw
    cdef double pool_size
    if a1 > H + ph:
        a1 = H + ph
    if b1 > W + pw:
        b1 = W + pw
    pool_size = <double>(a1 - a0) * <double>(b1 - b0)
    if a0 < 0:
        a0 = 0
    if b0 < 0:
        b0 = 0
    if a1 > H:
        a1 = H
    if b1 > W:
        b1 = W
    h0[0] = a0
    h1[0] = a1
    w0[0] = b0
    w1[0] = b1
    if divisor_override > 0:
        div[0] = <floating>divisor_override
    elif count_include_pad:
        div[0] = <floating>pool_size
    else:
        div[0] = <floating>(<double>(a1 - a0) * <double>(b1 - b0))


cdef inline void _avg_plane(const floating* x, floating* y, Py_ssize_t H, Py_ssize_t W,
                            Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t kw,
                            Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                            bint cip, Py_ssize_t dov) noexcept nogil:
    cdef Py_ssize_t p, q, h, w, h0, h1, w0, w1
    cdef floating div
    cdef floating acc
    for p in range(Ho):
        for q in range(Wo):
            _avg_window(p, q, H, W, kh, kw, sh, sw, ph, pw, cip, dov, &h0, &h1, &w0, &w1, &div)
            if h0 >= h1 or w0 >= w1:
                y[p * Wo + q] = 0
                continue
            acc = 0
            for h in range(h0, h1):
                for w in range(w0, w1):
                    acc = acc + x[h * W + w]
            y[p * Wo + q] = acc / div


def avg_forward(const floating[:, :, ::1] x,   # IN  (R, H, W)
                floating[:, :, ::1] y,         # OUT (R, H_out, W_out)
                Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t ph, Py_ssize_t pw, bint count_include_pad,
                Py_ssize_t divisor_override, int num_threads):
    """divisor_override <= 0 means none."""
    cdef Py_ssize_t R = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = y.shape[1], Wo = y.shape[2], r
    if R == 0 or Ho == 0 or Wo == 0:
        return
    with nogil:
        for r in prange(R, schedule='static', num_threads=num_threads):
            _avg_plane(&x[r, 0, 0], &y[r, 0, 0], H, W, Ho, Wo, kh, kw, sh, sw, ph, pw,
                       count_include_pad, divisor_override)


cdef inline void _avg_plane_backward(const floating* g, floating* gx, Py_ssize_t H,
                                     Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo,
                                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                                     Py_ssize_t ph, Py_ssize_t pw, bint cip,
                                     Py_ssize_t dov) noexcept nogil:
    cdef Py_ssize_t p, q, h, w, h0, h1, w0, w1
    cdef floating div
    cdef floating share
    for p in range(Ho):
        for q in range(Wo):
            _avg_window(p, q, H, W, kh, kw, sh, sw, ph, pw, cip, dov, &h0, &h1, &w0, &w1, &div)
            if h0 >= h1 or w0 >= w1:
                continue
            share = g[p * Wo + q] / div
            for h in range(h0, h1):
                for w in range(w0, w1):
                    gx[h * W + w] += share


def avg_backward(const floating[:, :, ::1] g,  # IN  (R, H_out, W_out)
                 floating[:, :, ::1] gx,       # OUT (R, H, W), zeroed
                 Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                 Py_ssize_t ph, Py_ssize_t pw, bint count_include_pad,
                 Py_ssize_t divisor_override, int num_threads):
    cdef Py_ssize_t R = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t Ho = g.shape[1], Wo = g.shape[2], r
    if R == 0 or Ho == 0 or Wo == 0:
        return
    with nogil:
        for r in prange(R, schedule='static', num_threads=num_threads):
            _avg_plane_backward(&g[r, 0, 0], &gx[r, 0, 0], H, W, Ho, Wo, kh, kw, sh, sw,
                                ph, pw, count_include_pad, divisor_override)


cdef inline void _adaptive_max_row(const floating* x, floating* y, int64_t* idx, Py_ssize_t n,
                                   Py_ssize_t O) noexcept nogil:
    """Adaptive max over the first n samples of one row: O windows, each the first maximum or
    the last NaN (pyc_argmax: the rule of _max_window, vectorised)."""
    cdef Py_ssize_t o, t0, t1, t
    for o in range(O):
        t0 = (o * n) // O
        t1 = ((o + 1) * n + O - 1) // O
        if floating is float:
            t = t0 + pyc_argmax_f(t1 - t0, x + t0)
        else:
            t = t0 + pyc_argmax_d(t1 - t0, x + t0)
        y[o] = x[t]
        idx[o] = t


def adaptive_max1d_forward(const floating[:, ::1] x,      # IN  (R, L)
                           const int64_t[::1] lengths,    # IN  (R,), 1 <= lengths[r] <= L
                           floating[:, ::1] y,            # OUT (R, O)
                           int64_t[:, ::1] idx,           # OUT (R, O)
                           int num_threads):
    cdef Py_ssize_t R = x.shape[0], O = y.shape[1], r
    if R == 0 or O == 0:
        return
    with nogil:
        for r in prange(R, schedule='static', num_threads=num_threads):
            _adaptive_max_row(&x[r, 0], &y[r, 0], &idx[r, 0], lengths[r], O)


cdef inline void _adaptive_avg_plane(const floating* x, floating* y, floating* gx,
                                     const floating* g, Py_ssize_t H, Py_ssize_t W,
                                     Py_ssize_t Ho, Py_ssize_t Wo, bint backward) noexcept nogil:
    """Forward (y = window means) or backward (gx += g / window size) of one plane."""
    cdef Py_ssize_t p, q, h, w, h0, h1, w0, w1
    cdef floating acc, share
    for p in range(Ho):
        h0 = (p * H) // Ho
        h1 = ((p + 1) * H + Ho - 1) // Ho
        for q in range(Wo):
            w0 = (q * W) // Wo
            w1 = ((q + 1) * W + Wo - 1) // Wo
            if backward:
                share = g[p * Wo + q] / ((h1 - h0) * (w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        gx[h * W + w] += share
            else:
                acc = 0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        acc = acc + x[h * W + w]
                y[p * Wo + q] = acc / ((h1 - h0) * (w1 - w0))


def adaptive_avg_forward(const floating[:, :, ::1] x,   # IN  (R, H, W)
                         floating[:, :, ::1] y,         # OUT (R, H_out, W_out)
                         int num_threads):
    cdef Py_ssize_t R = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = y.shape[1], Wo = y.shape[2], r
    if R == 0 or Ho == 0 or Wo == 0:
        return
    with nogil:
        for r in prange(R, schedule='static', num_threads=num_threads):
            _adaptive_avg_plane(&x[r, 0, 0], &y[r, 0, 0], <floating*>NULL, <const floating*>NULL,
                                H, W, Ho, Wo, False)


def adaptive_avg_backward(const floating[:, :, ::1] g,  # IN  (R, H_out, W_out)
                          floating[:, :, ::1] gx,       # OUT (R, H, W), zeroed
                          int num_threads):
    cdef Py_ssize_t R = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t Ho = g.shape[1], Wo = g.shape[2], r
    if R == 0 or Ho == 0 or Wo == 0:
        return
    with nogil:
        for r in prange(R, schedule='static', num_threads=num_threads):
            _adaptive_avg_plane(<const floating*>NULL, <floating*>NULL, &gx[r, 0, 0], &g[r, 0, 0],
                                H, W, Ho, Wo, True)
