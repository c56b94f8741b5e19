"""Winograd's minimal filtering along the rows: float64 dense layers with unit column stride.

A row of outputs is cut into tiles of ``m = 8 - KW + 1`` outputs (6 for a 3-tap kernel, 4 for
5 taps); a tile's outputs read ``8`` inputs per pair (input channel, kernel row). Toom-Cook
over the eight points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity turns the tile's correlation
into eight products (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
2016)::

    y[tile] = AT @ ((G @ w[o, c, i, :]) * (BT @ x[tile's 8 inputs]))   summed over (c, i)

so that, summed over the pairs, each point is one matrix product (C_out x C_in*KH) by
(C_in*KH x tiles), by BLAS: 8 products for m outputs where the unroll does ``m * KW`` (8 for 6
outputs of a 3-tap kernel instead of 18, 8 for 4 of a 5-tap one instead of 20). The input
gradient of a layer with unit strides is the same computation on grad_output with the
flipped, transposed kernel; the weight gradient is the identity with the roles of the
kernel and the outputs swapped (``G2``, ``A2T``): per point, (C_out x tiles) @ (tiles x
C_in*KH), summed over chunks of tiles in chunk order.

The transform matrices are exact rationals, rounded once to float64; the transforms' own
rounding leaves results within about 1e-15 of the direct sum's relative to the outputs'
scale. Only float64 layers take it: run in float32 (tried, with the kernels' float32 code)
its error came out 2-3x the unroll's (2.6e-6 against 8.4e-7 of the outputs' largest value,
128 channels, 3 taps), and it ran 0.7-1.4x as fast as the float32 packed tiles, which hold
their own against sgemm (1.2-1.4x only on 5-tap and 256-channel layers).
Kernels: ``_conv.winograd_forward`` and ``_conv.winograd_grad_weight`` (src/_conv.pyx).
Blocks of tiles and chunks depend on the shape alone, so the bits do not depend on the
thread count.
"""
import functools
from fractions import Fraction

import numpy as np

from . import _blas, _conv

#: Toom-Cook points of one tile: seven finite ones and infinity.
POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2),
          Fraction(-1, 2))
WA = len(POINTS) + 1
#: Kernel columns it runs: at least two outputs per tile.
MIN_KW, MAX_KW = 2, WA - 1
#: Tiles per block, and the most one thread's scratch (its block's transformed inputs and
#: products) may hold: a block of fewer than MIN_TILES tiles would make the products too thin.
#: With AVX-512 (the kernels' 64-byte vectors) twice as many: BLAS packs the transformed
#: weights once per product, and wider products ran 3-12 % faster on an Intel Xeon
#: (Sapphire Rapids, 2 MiB L2) on 128- and 256-channel layers; 128 and 4 MiB were measured
#: with AVX2 (AMD EPYC Zen 3, 512 KiB L2).
MAX_TILES, MIN_TILES, BLOCK_BYTES = (256, 16, 8 << 20) if _conv.wide_vectors() else \
    (128, 16, 4 << 20)
SHARE_TILES, SHARE_BLOCKS = 32, 8
#: The weight gradient's partial sums of one chunk (WA x C_out x C_in*KH) at most.
PARTIAL_BYTES = 64 << 20


def _vandermonde(k):
    """(WA x k) exact: row a holds the powers 0..k-1 of point a; infinity's row picks the
    leading coefficient."""
    rows = [[p ** j for j in range(k)] for p in POINTS]
    return rows + [[Fraction(0)] * (k - 1) + [Fraction(1)]]


def _inverse(a):
    """Exact inverse of a square matrix of Fractions (Gauss-Jordan)."""
    n = len(a)
    m = [list(row) + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(a)]
    for c in range(n):
        p = next(r for r in range(c, n) if m[r][c] != 0)
        m[c], m[p] = m[p], m[c]
        m[c] = [v / m[c][c] for v in m[c]]
        for r in range(n):
            if r != c and m[r][c] != 0:
                f = m[r][c]
                m[r] = [u - f * v for u, v in zip(m[r], m[c])]
    return [row[n:] for row in m]


def _array(rows):
    a = np.array([[float(v) for v in row] for row in rows], dtype=np.float64)
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=None)
def matrices(kw):
    """(BT, G, AT, G2, A2T) for ``kw`` kernel columns: the inputs' transform (WA x WA), the
    taps' (WA x kw) and the outputs' (m x WA) of the forward; grad_output's (WA x m) and the
    weight gradient's (kw x WA). With E_k the (WA x k) Vandermonde matrix of the points,
    correlation of WA inputs with k taps is E_m^T ((E_k w) * (E_WA^-T d))."""
    m = WA - kw + 1
    transposed = [list(col) for col in zip(*_inverse(_vandermonde(WA)))]
    return (_array(transposed), _array(_vandermonde(kw)),
            _array(list(zip(*_vandermonde(m)))), _array(_vandermonde(m)),
            _array(list(zip(*_vandermonde(kw)))))


def _tiles(y_shape, kw, dw):
    """Tiles of a call whose outputs are ``y_shape`` (N, O, H_out, W_out): N * H_out * dw
    rows of phases, each of ceil(ceil(W_out/dw)/m)."""
    m = WA - kw + 1
    per_phase = -(-(-(-y_shape[3] // dw)) // m)
    return y_shape[0] * y_shape[2] * dw * per_phase


def _block(ck, c_out, n_tiles):
    """Tiles per block: MAX_TILES, fewer where a thread's scratch would pass BLOCK_BYTES, and
    down to SHARE_TILES to make SHARE_BLOCKS blocks to share out among threads (the shape's
    choice alone: the products' bits may depend on their widths)."""
    fit = BLOCK_BYTES // (8 * WA * (ck + c_out + 1))
    share = max(SHARE_TILES, -(-n_tiles // SHARE_BLOCKS))
    return max(1, min(MAX_TILES, fit, share, n_tiles))


def runs(x_shape, w_shape, y_shape, stride, dilation, groups, dtype, grad_input=False):
    """Whether the Winograd path can compute this layer (4-D shapes; stride and dilation as
    (rows, columns)): float64, ungrouped, unit column stride (unit strides for the input
    gradient), 2-7 kernel columns, blocks of at least MIN_TILES tiles (or all the tiles there
    are) and partial sums within PARTIAL_BYTES."""
    kw = w_shape[3]
    if (np.dtype(dtype) != np.float64 or groups != 1 or stride[1] != 1
            or not MIN_KW <= kw <= MAX_KW or (grad_input and stride[0] != 1)):
        return False
    c_out, ck = w_shape[0], w_shape[1] * w_shape[2]
    if min(c_out, ck, *y_shape) == 0:
        return False
    if grad_input:      # the input gradient's products: C_in rows over C_out*KH
        n_tiles = _tiles(x_shape, kw, dilation[1])
        return _block(c_out * w_shape[2], w_shape[1], n_tiles) >= min(MIN_TILES, n_tiles)
    n_tiles = _tiles(y_shape, kw, dilation[1])
    return (_block(ck, c_out, n_tiles) >= min(MIN_TILES, n_tiles)
            and 8 * WA * c_out * ck <= PARTIAL_BYTES)


def _weights(w, kw_matrix):
    """U (WA, R, P): the taps' transform of every row and pair of ``w`` (R, P, kw) (the
    caller holds BLAS to one thread)."""
    r, p, kw = w.shape
    return (kw_matrix @ w.reshape(r * p, kw).T).reshape(WA, r, p)


def _new_buffer(key, shape):
    """A fresh float64 buffer: the default ``buffer(key, shape)`` of the functions below
    (pyconv1d.functional passes its reusable scratch, which also checks the size)."""
    return np.empty(shape, dtype=np.float64)


def _scratch(buffer, threads, ck, c_out, tb):
    per_thread = _conv.winograd_scratch((0, ck, 0, 0), (0, c_out, 0, 0), 1, tb)
    return buffer("cols", (threads, per_thread))


def _forward(x, u, bt, at, bias, y, kh, sh, pt, pl, dh, dw, num_threads, buffer):
    """y (N, O, H_out, W_out) from x (N, C, H, W) and the taps' transform u (WA, O, C*kh),
    BLAS held to one thread by the caller."""
    ck, c_out = x.shape[1] * kh, y.shape[1]
    n_tiles = _tiles(y.shape, WA - at.shape[0] + 1, dw)
    tb = _block(ck, c_out, n_tiles)
    threads = max(1, min(num_threads, -(-n_tiles // tb)))     # no more than blocks
    _conv.winograd_forward(x, u, bias, y, bt, at, kh, sh, pt, pl, dh, dw, tb, threads,
                           _scratch(buffer, threads, ck, c_out, tb))


def forward(x, w, bias, y, geometry, num_threads, buffer=_new_buffer):
    """y = bias + the convolution of x (N, C, H, W) with w (O, C, KH, KW); ``geometry`` is
    (sh, sw, pt, pl, dh, dw) with sw == 1; ``buffer(key, shape)`` gives the scratch."""
    sh, _, pt, pl, dh, dw = geometry
    kh, kw = w.shape[2:]
    bt, g, at, _, _ = matrices(kw)
    with _blas.single_threaded():
        u = _weights(w.reshape(w.shape[0], -1, kw), g)
        _forward(x, u, bt, at, bias, y, kh, sh, pt, pl, dh, dw, num_threads, buffer)


def grad_input(grad_output, w, gi, geometry, num_threads, buffer=_new_buffer):
    """gi (N, C, H, W) of a layer with unit strides: the forward of grad_output with the
    kernel flipped and its channels swapped, offset by (KH-1)*dh - pt and (KW-1)*dw - pl
    (negative where the padding passes the kernel's reach: the gather reads zeros)."""
    _, _, pt, pl, dh, dw = geometry
    kh, kw = w.shape[2:]
    bt, g, at, _, _ = matrices(kw)
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    zeros = np.zeros(gi.shape[1], dtype=gi.dtype)
    with _blas.single_threaded():
        u = _weights(flipped.reshape(flipped.shape[0], -1, kw), g)
        _forward(grad_output, u, bt, at, zeros, gi, kh, 1, (kh - 1) * dh - pt,
                 (kw - 1) * dw - pl, dh, dw, num_threads, buffer)


def grad_weight(grad_output, x, gw, geometry, num_threads, buffer=_new_buffer):
    """gw (O, C, KH, KW) = sum over n and outputs of grad_output times the inputs each tap
    read."""
    sh, _, pt, pl, dh, dw = geometry
    kh, kw = gw.shape[2:]
    bt, _, _, g2, a2t = matrices(kw)
    ck, c_out = x.shape[1] * kh, grad_output.shape[1]
    n_tiles = _tiles(grad_output.shape, kw, dw)
    tb = _block(ck, c_out, n_tiles)
    chunks = _conv.winograd_grad_weight_chunks(grad_output.shape, ck, -(-n_tiles // tb), 8)
    threads = max(1, min(num_threads, max(chunks, c_out)))
    scratch = _scratch(buffer, threads, ck, c_out, tb)
    partials = buffer("partials", (chunks * WA * c_out * ck,))
    with _blas.single_threaded():
        _conv.winograd_grad_weight(grad_output, x, gw, bt, g2, a2t, sh, pt, pl, dh, dw, tb,
                                   chunks, threads, scratch, partials)
