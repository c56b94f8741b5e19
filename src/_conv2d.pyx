# cython: language_level=3
"""conv2d kernels: forward, input gradient and weight gradient (fused float32/float64).

Layouts, all C-contiguous::

    x  (N, C_in, H, W)               input
    w  (C_out, C_in/groups, KH, KW)  weight
    y  (N, C_out, H_out, W_out)      output
    g  (N, C_out, H_out, W_out)      gradient of the loss with respect to y

With Cg = C_in/groups, Og = C_out/groups and gr = o // Og the group of output channel o::

    y[n, o, p, q]  = b[o] + sum_{c, i, j} w[o, c, i, j]
                         * x[n, gr*Cg + c, p*sh + i*dh - pad_top, q*sw + j*dw - pad_left]
    gx[n, ch, r, s] = sum over (o in group(ch), i, j, p, q) landing on (r, s) of w[o, ch % Cg, i, j] * g[n, o, p, q]
    gw[o, c, i, j]  = sum_{n, p, q} g[n, o, p, q] * x[n, gr*Cg + c, p*sh + i*dh - pad_top, q*sw + j*dw - pad_left]

Indices outside the input read as zero (the padding is never materialised). The caller validates
everything and allocates the outputs (y holds the bias, gx is zeroed). Each output element is
computed by one thread in a fixed order: bitwise identical results for every thread count.
"""
from cython cimport floating
from cython.parallel cimport prange

from _kernels_common cimport tap_range, dot_strided


cdef inline void _forward_plane(const floating* x, const floating* w, floating* y,
                                Py_ssize_t Cg, Py_ssize_t H, Py_ssize_t W,
                                Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t H_out, Py_ssize_t W_out,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                                Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """One (n, o) output plane: y[p, q] += sum_{c,i,j} w[c,i,j] * x[c, p*sh+i*dh-pt, q*sw+j*dw-pl]."""
    cdef Py_ssize_t c, i, j, p, q, offh, offw, plo, phi, qlo, qhi
    cdef const floating* xr
    cdef floating* yr
    cdef floating wv
    for c in range(Cg):
        for i in range(KH):
            offh = i * dh - pt
            tap_range(offh, H, H_out, sh, &plo, &phi)
            for j in range(KW):
                wv = w[(c * KH + i) * KW + j]
                offw = j * dw - pl
                tap_range(offw, W, W_out, sw, &qlo, &qhi)
                for p in range(plo, phi):
                    xr = x + (c * H + p * sh + offh) * W + offw
                    yr = y + p * W_out
                    if sw == 1:
                        for q in range(qlo, qhi):
                            yr[q] += wv * xr[q]
                    else:
                        for q in range(qlo, qhi):
                            yr[q] += wv * xr[q * sw]


def forward(const floating[:, :, :, ::1] x,    # IN  (N, C_in, H, W)
            const floating[:, :, :, ::1] w,    # IN  (C_out, Cg, KH, KW)
            floating[:, :, :, ::1] y,          # OUT (N, C_out, H_out, W_out), holds the bias
            Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
            Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads):
    cdef Py_ssize_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t C_out = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef Py_ssize_t H_out = y.shape[2], W_out = y.shape[3], Og = C_out // groups
    cdef Py_ssize_t job, n, o
    if N == 0 or H_out == 0 or W_out == 0:
        return
    with nogil:
        for job in prange(N * C_out, schedule='static', num_threads=num_threads):
            n = job // C_out
            o = job % C_out
            _forward_plane(&x[n, (o // Og) * Cg, 0, 0], &w[o, 0, 0, 0], &y[n, o, 0, 0],
                           Cg, H, W, KH, KW, H_out, W_out, sh, sw, pt, pl, dh, dw)


cdef inline void _grad_input_plane(const floating* g, const floating* w, floating* gx,
                                   Py_ssize_t Og, Py_ssize_t Cg, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t KH, Py_ssize_t KW,
                                   Py_ssize_t H_out, Py_ssize_t W_out,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                                   Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """One (n, input channel) plane: scatter w[o, c, i, j] * g[o, p, q] back onto gx."""
    cdef Py_ssize_t o, i, j, p, q, offh, offw, plo, phi, qlo, qhi
    cdef const floating* gr
    cdef floating* xr
    cdef floating wv
    for o in range(Og):
        for i in range(KH):
            offh = i * dh - pt
            tap_range(offh, H, H_out, sh, &plo, &phi)
            for j in range(KW):
                wv = w[(o * Cg * KH + i) * KW + j]
                offw = j * dw - pl
                tap_range(offw, W, W_out, sw, &qlo, &qhi)
                for p in range(plo, phi):
                    gr = g + (o * H_out + p) * W_out
                    xr = gx + (p * sh + offh) * W + offw
                    if sw == 1:
                        for q in range(qlo, qhi):
                            xr[q] += wv * gr[q]
                    else:
                        for q in range(qlo, qhi):
                            xr[q * sw] += wv * gr[q]


def grad_input(const floating[:, :, :, ::1] g,   # IN  (N, C_out, H_out, W_out)
               const floating[:, :, :, ::1] w,   # IN  (C_out, Cg, KH, KW)
               floating[:, :, :, ::1] gx,        # OUT (N, C_in, H, W), zeroed
               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
               Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads):
    cdef Py_ssize_t N = gx.shape[0], C_in = gx.shape[1], H = gx.shape[2], W = gx.shape[3]
    cdef Py_ssize_t C_out = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef Py_ssize_t H_out = g.shape[2], W_out = g.shape[3], Og = C_out // groups
    cdef Py_ssize_t job, n, ch, gr
    if N == 0 or H == 0 or W == 0 or H_out == 0 or W_out == 0:
        return
    with nogil:
        for job in prange(N * C_in, schedule='static', num_threads=num_threads):
            n = job // C_in
            ch = job % C_in
            gr = ch // Cg
            _grad_input_plane(&g[n, gr * Og, 0, 0], &w[gr * Og, ch - gr * Cg, 0, 0],
                              &gx[n, ch, 0, 0], Og, Cg, H, W, KH, KW, H_out, W_out,
                              sh, sw, pt, pl, dh, dw)


cdef inline floating _grad_weight_tap(const floating* g, const floating* x, Py_ssize_t N,
                                      Py_ssize_t g_batch, Py_ssize_t x_batch,
                                      Py_ssize_t H, Py_ssize_t W,
                                      Py_ssize_t H_out, Py_ssize_t W_out,
                                      Py_ssize_t sh, Py_ssize_t sw,
                                      Py_ssize_t offh, Py_ssize_t offw) noexcept nogil:
    """sum_{n, p, q} g[n, p, q] * x[n, p*sh + offh, q*sw + offw] for one (o, c, i, j) tap."""
    cdef Py_ssize_t n, p, plo, phi, qlo, qhi
    cdef floating acc = 0
    tap_range(offh, H, H_out, sh, &plo, &phi)
    tap_range(offw, W, W_out, sw, &qlo, &qhi)
    if qhi <= qlo:
        return acc
    for n in range(N):
        for p in range(plo, phi):
            acc = acc + dot_strided(g + n * g_batch + p * W_out + qlo,
                                    x + n * x_batch + (p * sh + offh) * W + qlo * sw + offw,
                                    sw, qhi - qlo)
    return acc


def grad_weight(const floating[:, :, :, ::1] g,  # IN  (N, C_out, H_out, W_out)
                const floating[:, :, :, ::1] x,  # IN  (N, C_in, H, W)
                floating[:, :, :, ::1] gw,       # OUT (C_out, Cg, KH, KW)
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads):
    cdef Py_ssize_t N = x.shape[0], C_in = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t C_out = gw.shape[0], Cg = gw.shape[1], KH = gw.shape[2], KW = gw.shape[3]
    cdef Py_ssize_t H_out = g.shape[2], W_out = g.shape[3], Og = C_out // groups
    cdef Py_ssize_t job, o, c, i, j
    if N == 0 or H == 0 or W == 0 or H_out == 0 or W_out == 0:
        gw[...] = 0
        return
    with nogil:
        for job in prange(C_out * Cg * KH * KW, schedule='static', num_threads=num_threads):
            o = job // (Cg * KH * KW)
            c = (job // (KH * KW)) % Cg
            i = (job // KW) % KH
            j = job % KW
            gw[o, c, i, j] = _grad_weight_tap(&g[0, o, 0, 0], &x[0, (o // Og) * Cg + c, 0, 0],
                                              N, C_out * H_out * W_out, C_in * H * W,
                                              H, W, H_out, W_out, sh, sw,
                                              i * dh - pt, j * dw - pl)
