"""Tests for pyconv1d.conv2d and pyconv1d.conv2d_backward.

The references in this file never touch the library. They are built from ``scipy.signal`` 2D
routines on explicitly padded planes (``np.pad``), as the house style asks:

* forward: ``correlate2d(padded_plane, dilated_kernel, 'valid')`` summed over the input channels
  of the group, then every ``stride``-th row and column;
* input gradient: ``convolve2d(upsampled_grad_output, dilated_kernel, 'full')`` summed over the
  output channels of the group, then the padding cropped off (with stride 1 the upsampling is
  the identity, which is the textbook identity);
* weight gradient: ``correlate2d(padded_plane, upsampled_grad_output, 'valid')`` summed over the
  batch, keeping every ``dilation``-th lag;
* bias gradient: a plain sum.

The references themselves are cross-checked against brute-force loops, and the gradients are also
checked by central differences (from ``tests/_reference.py``). Tolerances depend on the dtype and
grow with the number of terms each result sums.
"""
import inspect
import itertools
import math
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

import pyconv1d
from pyconv1d import conv2d, conv2d_backward

from _reference import numerical_gradient

DTYPES = [np.float32, np.float64]
KERNELS = [(1, 1), (3, 3), (5, 3), (2, 4)]
STRIDES = [1, 2, (1, 2), (2, 1)]
DILATIONS = [1, 2, (2, 1)]
PAD_FORMS = [0, 2, (1, 2), ((0, 3), (2, 1)), "valid", "same"]
GROUP_KINDS = [1, 2, "depthwise"]
THREAD_COUNTS = [1, 2, 3, 4]

# The library may offer a choice of algorithm (direct loops or im2col + BLAS gemm); every
# grid then runs each of them, since 'auto' would pick gemm for none of these small shapes.
_HAS_ALGORITHM = "algorithm" in inspect.signature(conv2d).parameters
ALGOS = ["direct", "gemm", "fft", "winograd"] if _HAS_ALGORITHM else [None]


def _alg(algo):
    return {} if algo is None else {"algorithm": algo}


# The reference grids make thousands of tiny calls, where starting threads costs more than the
# work and an oversubscribed machine turns every parallel region into a scheduler wait; they run
# on one thread. Every thread count gives the same bits as one thread, which the determinism
# tests below check on shapes big enough to split the work (and the hypothesis tests use the
# default thread count).
GRID = {"num_threads": 1}

# Small planes keep the whole grid fast; 7 x 9 (odd, unequal) exercises uneven stride tails.
N, C_IN, H, W = 2, 4, 7, 9


# --------------------------------------------------------------------------------------------
# Independent references (scipy.signal 2D routines; nothing here imports pyconv1d).
# --------------------------------------------------------------------------------------------

def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(a) for a in v)


def _extents(kernel, dilation):
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, _pair(dilation)))


def ref_pads(padding, size, kernel, stride=1, dilation=1):
    """((top, bottom), (left, right)) for any accepted padding form (spelled out here)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        assert padding == "same"
        pads = []
        for n, e, s in zip(size, _extents(kernel, dilation), _pair(stride)):
            out = -(-n // s)                                   # ceil(n / s)
            total = max((out - 1) * s + e - n, 0)
            pads.append((total // 2, total - total // 2))      # the odd sample after
        return tuple(pads)
    if np.isscalar(padding):
        return ((padding, padding), (padding, padding))
    if all(np.isscalar(p) for p in padding):                   # (h, w): symmetric per axis
        return tuple((p, p) for p in padding)
    return tuple(tuple(p) for p in padding)


def fits(size, kernel, stride, dilation, padding):
    """Whether the padded plane is at least as large as the dilated kernel on both axes."""
    pads = ref_pads(padding, size, kernel, stride, dilation)
    return all(n + lo + hi >= e for n, (lo, hi), e in
               zip(size, pads, _extents(kernel, dilation)))


def ref_out_size(size, kernel, stride, dilation, padding):
    pads = ref_pads(padding, size, kernel, stride, dilation)
    return tuple((n + lo + hi - e) // s + 1 for n, (lo, hi), e, s in
                 zip(size, pads, _extents(kernel, dilation), _pair(stride)))


def dilate(w, dilation):
    """Insert dilation-1 zeros between the taps of the last two axes."""
    dh, dw = _pair(dilation)
    kh, kw = w.shape[-2:]
    out = np.zeros(w.shape[:-2] + (dh * (kh - 1) + 1, dw * (kw - 1) + 1))
    out[..., ::dh, ::dw] = w
    return out


def upsample(g, stride):
    """Insert stride-1 zeros between the samples of the last two axes."""
    sh, sw = _pair(stride)
    ho, wo = g.shape[-2:]
    out = np.zeros(g.shape[:-2] + ((ho - 1) * sh + 1, (wo - 1) * sw + 1))
    out[..., ::sh, ::sw] = g
    return out


def _batch(a):
    a = np.asarray(a, dtype=np.float64)
    return (a[None], True) if a.ndim == 3 else (a, False)


def _pad_planes(x, pads):
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads))


def ref_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    x, unbatched = _batch(x)
    w = np.asarray(w, dtype=np.float64)
    c_out, cg = w.shape[:2]
    og = c_out // groups
    sh, sw = _pair(stride)
    xp = _pad_planes(x, ref_pads(padding, x.shape[2:], w.shape[2:], stride, dilation))
    wd = dilate(w, dilation)
    out = np.zeros((x.shape[0], c_out) + ref_out_size(x.shape[2:], w.shape[2:], stride,
                                                        dilation, padding))
    for n in range(x.shape[0]):
        for o in range(c_out):
            first = (o // og) * cg
            acc = sum(signal.correlate2d(xp[n, first + c], wd[o, c], mode="valid")
                      for c in range(cg))
            out[n, o] = acc[::sh, ::sw]
    if b is not None:
        out += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return out[0] if unbatched else out


def ref_grad_input(g, x_shape, w, stride=1, padding=0, dilation=1, groups=1):
    g, unbatched = _batch(g)
    w = np.asarray(w, dtype=np.float64)
    size = tuple(x_shape[-2:])
    c_in = x_shape[-3]
    c_out, cg = w.shape[:2]
    og = c_out // groups
    (top, bottom), (left, right) = ref_pads(padding, size, w.shape[2:], stride, dilation)
    gu = upsample(g, stride)
    wd = dilate(w, dilation)
    gxp = np.zeros((g.shape[0], c_in, size[0] + top + bottom, size[1] + left + right))
    for n in range(g.shape[0]):
        for ch in range(c_in):
            gr, c = divmod(ch, cg)
            acc = sum(signal.convolve2d(gu[n, o], wd[o, c], mode="full")
                      for o in range(gr * og, (gr + 1) * og))
            gxp[n, ch, :acc.shape[0], :acc.shape[1]] = acc   # rows past the last window: 0
    gx = gxp[:, :, top:top + size[0], left:left + size[1]]
    return gx[0] if unbatched else gx


def ref_grad_weight(g, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    g, _ = _batch(g)
    x, _ = _batch(x)
    c_out, cg, kh, kw = w_shape
    og = c_out // groups
    dh, dw = _pair(dilation)
    eh, ew = _extents((kh, kw), dilation)
    xp = _pad_planes(x, ref_pads(padding, x.shape[2:], (kh, kw), stride, dilation))
    gu = upsample(g, stride)
    gw = np.zeros(tuple(w_shape))
    for o in range(c_out):
        first = (o // og) * cg
        for c in range(cg):
            acc = sum(signal.correlate2d(xp[n, first + c], gu[n, o], mode="valid")
                      for n in range(x.shape[0]))
            if x.shape[0]:
                gw[o, c] = acc[:eh:dh, :ew:dw]
    return gw


def ref_grad_bias(g):
    g, _ = _batch(g)
    return g.sum(axis=(0, 2, 3))


def loops_forward(x, w, b, stride, padding, dilation, groups):
    """Brute force: one explicit sum per output element (checks the scipy reference)."""
    x, unbatched = _batch(x)
    w = np.asarray(w, dtype=np.float64)
    c_out, cg, kh, kw = w.shape
    og = c_out // groups
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    (top, _), (left, _) = ref_pads(padding, x.shape[2:], (kh, kw), stride, dilation)
    ho, wo = ref_out_size(x.shape[2:], (kh, kw), stride, dilation, padding)
    out = np.zeros((x.shape[0], c_out, ho, wo))
    for n, o, p, q in itertools.product(range(x.shape[0]), range(c_out), range(ho), range(wo)):
        acc = 0.0 if b is None else float(b[o])
        for c, i, j in itertools.product(range(cg), range(kh), range(kw)):
            r, s = p * sh + i * dh - top, q * sw + j * dw - left
            if 0 <= r < x.shape[2] and 0 <= s < x.shape[3]:
                acc += w[o, c, i, j] * x[n, (o // og) * cg + c, r, s]
        out[n, o, p, q] = acc
    return out[0] if unbatched else out


# --------------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------------

def _rng(*parts):
    """A generator seeded stably from the test parameters."""
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


def _make(rng, shape, dtype, sliced=False, integer=False):
    """Random values in [-1, 1] (or small integers); ``sliced``: a non-contiguous view."""
    def draw(sh):
        if integer:
            return rng.integers(-3, 4, size=sh).astype(dtype)
        return rng.uniform(-1.0, 1.0, size=sh).astype(dtype)
    if not sliced:
        return draw(shape)
    big = draw(tuple(shape[:-2]) + (2 * shape[-2], 2 * shape[-1] + 1))
    view = big[..., ::2, 1::2]
    assert view.shape == tuple(shape) and not view.flags.c_contiguous
    return view


def _channels(kind, c_in=C_IN):
    """(groups, C_out) for a group setting: 1, 2 or depthwise with channel multiplier 2."""
    if kind == "depthwise":
        return c_in, 2 * c_in
    return kind, {1: 3, 2: 4}[kind]


def _tol(dtype, reduction):
    """(rtol, atol) for a result summing ``reduction`` products of values in [-1, 1]."""
    base = 2e-5 if np.dtype(dtype) == np.float32 else 1e-10
    return base, base * max(int(reduction), 1)


def check(actual, expected, dtype, reduction, what):
    assert isinstance(actual, np.ndarray), f"{what}: got {type(actual)}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype} != {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    rtol, atol = _tol(dtype, reduction)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol,
                               err_msg=what)


def bitwise_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------------------------
# The references are right (brute force and hand-computed values).
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stride,dilation,padding,groups", [
    (1, 1, 0, 1), (2, (2, 1), "same", 2), ((1, 2), 2, ((0, 3), (2, 1)), 4), ((2, 1), 1, (1, 2), 1),
])
def test_reference_matches_loops(stride, dilation, padding, groups):
    rng = _rng("loops", stride, dilation, padding, groups)
    x = rng.standard_normal((2, 4, 6, 7))
    w = rng.standard_normal((4, 4 // groups, 3, 2))
    b = rng.standard_normal(4)
    np.testing.assert_allclose(ref_forward(x, w, b, stride, padding, dilation, groups),
                               loops_forward(x, w, b, stride, padding, dilation, groups),
                               rtol=1e-12, atol=1e-12)


def test_reference_gradients_are_adjoint():
    """<fwd(x), g> == <x, gi(g)> == <w, gw(g)> for the references (no library involved)."""
    rng = _rng("ref-adjoint")
    for stride, dilation, padding, groups in [(2, (1, 2), "same", 2), ((1, 2), 2, (2, 1), 1)]:
        x = rng.standard_normal((2, 4, 7, 9))
        w = rng.standard_normal((4, 4 // groups, 3, 2))
        y = ref_forward(x, w, None, stride, padding, dilation, groups)
        g = rng.standard_normal(y.shape)
        lhs = np.vdot(y, g)
        gi = ref_grad_input(g, x.shape, w, stride, padding, dilation, groups)
        gw = ref_grad_weight(g, x, w.shape, stride, padding, dilation, groups)
        assert math.isclose(lhs, np.vdot(x, gi), rel_tol=1e-12, abs_tol=1e-10)
        assert math.isclose(lhs, np.vdot(w, gw), rel_tol=1e-12, abs_tol=1e-10)


def test_same_padding_hand_computed():
    # 3x3 plane, 2x2 ones kernel, 'same': 1 sample of padding on the bottom/right only.
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    expected = np.array([[8.0, 12.0, 7.0], [20.0, 24.0, 13.0], [13.0, 15.0, 8.0]])
    np.testing.assert_array_equal(conv2d(x, w, padding="same")[0, 0], expected)
    np.testing.assert_array_equal(ref_forward(x, w, padding="same")[0, 0], expected)
    # Stride 2 on 7 with an even kernel of 4: 4 outputs, total padding 3 -> (1, 2).
    assert ref_pads("same", (7, 7), (4, 4), 2) == ((1, 2), (1, 2))
    xs = np.random.default_rng(0).standard_normal((1, 1, 7, 7))
    ws = np.random.default_rng(1).standard_normal((1, 1, 4, 4))
    np.testing.assert_allclose(conv2d(xs, ws, stride=2, padding="same"),
                               conv2d(xs, ws, stride=2, padding=((1, 2), (1, 2))),
                               rtol=0, atol=0)


def test_cross_correlation_not_convolution():
    # A single tap at the top-left picks x[p, q] (no kernel flip), as in PyTorch.
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(conv2d(x, w)[0, 0], x[0, 0, :2, :3])


# --------------------------------------------------------------------------------------------
# Forward grid against scipy.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dilation", DILATIONS, ids=str)
@pytest.mark.parametrize("stride", STRIDES, ids=str)
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: f"{k[0]}x{k[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_forward_matches_scipy(dtype, kernel, stride, dilation):
    """Every padding form x groups x algorithm x bias x batched/unbatched x contiguous/sliced."""
    checked = 0
    for padding, kind in itertools.product(PAD_FORMS, GROUP_KINDS):
        if not fits((H, W), kernel, stride, dilation, padding):
            continue
        groups, c_out = _channels(kind)
        rng = _rng("fwd", dtype, kernel, stride, dilation, padding, kind)
        x = _make(rng, (N, C_IN, H, W), dtype, sliced=True)
        w = _make(rng, (c_out, C_IN // groups) + kernel, dtype)
        b = _make(rng, (c_out,), dtype)
        plain = ref_forward(x, w, None, stride, padding, dilation, groups)
        expected = plain + b.astype(np.float64)[None, :, None, None]
        reduction = (C_IN // groups) * kernel[0] * kernel[1] + 1
        args = (stride, padding, dilation, groups)
        xc = np.ascontiguousarray(x)
        for algo in ALGOS:
            what = f"padding={padding!r} groups={groups} algorithm={algo}"
            check(conv2d(xc, w, None, *args, **GRID, **_alg(algo)), plain, dtype, reduction,
                  f"no bias {what}")
            got = conv2d(xc, w, b, *args, **GRID, **_alg(algo))
            check(got, expected, dtype, reduction, f"bias {what}")
            assert bitwise_equal(conv2d(x, w, b, *args, **GRID, **_alg(algo)), got), \
                f"sliced {what}"
            n = checked % N
            check(conv2d(x[n], w, b, *args, **GRID, **_alg(algo)), expected[n], dtype,
                  reduction, f"unbatched sample {n} {what}")
        checked += 1
    assert checked >= len(GROUP_KINDS) * 2  # 'same' and the wider paddings always fit


# --------------------------------------------------------------------------------------------
# Gradients against the reversed-convolution identities.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stride", STRIDES, ids=str)
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: f"{k[0]}x{k[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_gradients_match_scipy(dtype, kernel, stride):
    """grad_input: convolve2d 'full' then crop; grad_weight: correlate2d 'valid'; grad_bias."""
    checked = 0
    for dilation, padding, kind in itertools.product(DILATIONS, PAD_FORMS, GROUP_KINDS):
        if not fits((H, W), kernel, stride, dilation, padding):
            continue
        groups, c_out = _channels(kind)
        rng = _rng("grad", dtype, kernel, stride, dilation, padding, kind)
        x = _make(rng, (N, C_IN, H, W), dtype, sliced=True)
        w = _make(rng, (c_out, C_IN // groups) + kernel, dtype)
        out_size = ref_out_size((H, W), kernel, stride, dilation, padding)
        g = _make(rng, (N, c_out) + out_size, dtype, sliced=True)
        args = (stride, padding, dilation, groups)
        taps = kernel[0] * kernel[1]
        ref_gi = ref_grad_input(g, x.shape, w, *args)
        ref_gw = ref_grad_weight(g, x, w.shape, *args)
        ref_gb = ref_grad_bias(g)
        last = (ref_grad_weight(g[-1], x[-1], w.shape, *args), ref_grad_bias(g[-1]))
        xc, gc = np.ascontiguousarray(x), np.ascontiguousarray(g)
        for algo in ALGOS:
            what = f"dilation={dilation!r} padding={padding!r} groups={groups} algorithm={algo}"
            grads = conv2d_backward(gc, xc, w, *args, **GRID, **_alg(algo))
            check(grads.grad_input, ref_gi, dtype, (c_out // groups) * taps,
                  f"grad_input {what}")
            check(grads.grad_weight, ref_gw, dtype, N * math.prod(out_size),
                  f"grad_weight {what}")
            check(grads.grad_bias, ref_gb, dtype, N * math.prod(out_size), f"grad_bias {what}")

            # Non-contiguous grad_output and input: bitwise the same as the contiguous call.
            sliced = conv2d_backward(g, x, w, *args, **GRID, **_alg(algo))
            for name, got, want in zip(grads._fields, sliced, grads):
                assert bitwise_equal(got, want), f"sliced {name} differs: {what}"

            # Unbatched: the last sample alone.
            gi1, gw1, gb1 = conv2d_backward(g[-1], x[-1], w, *args, **GRID, **_alg(algo))
            check(gi1, ref_gi[-1], dtype, (c_out // groups) * taps,
                  f"unbatched grad_input {what}")
            check(gw1, last[0], dtype, math.prod(out_size), f"unbatched grad_weight {what}")
            check(gb1, last[1], dtype, math.prod(out_size), f"unbatched bias {what}")
        checked += 1
    assert checked > 0


def test_grad_input_stride1_textbook_identity():
    """Stride 1, no dilation: grad_input = crop(sum_o convolve2d(g[o], w[o, c], 'full'))."""
    rng = _rng("textbook")
    x = rng.standard_normal((4, 6, 8))
    w = rng.standard_normal((3, 4, 3, 2))
    pads = ((2, 1), (0, 3))
    y = conv2d(x, w, padding=pads)
    g = rng.standard_normal(y.shape)
    gi, gw, _ = conv2d_backward(g, x, w, padding=pads)
    xp = np.pad(x, ((0, 0),) + pads)
    for c in range(4):
        full = sum(signal.convolve2d(g[o], w[o, c], "full") for o in range(3))
        np.testing.assert_allclose(gi[c], full[2:2 + 6, 0:8], rtol=1e-10, atol=1e-10)
        for o in range(3):
            np.testing.assert_allclose(gw[o, c], signal.correlate2d(xp[c], g[o], "valid"),
                                       rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_output_mask(dtype):
    rng = _rng("mask", dtype)
    x = _make(rng, (2, 4, 7, 9), dtype)
    w = _make(rng, (4, 2, 3, 2), dtype)
    g = _make(rng, (2, 4, 4, 9), dtype)
    args = dict(stride=(2, 1), padding="same", dilation=(1, 2), groups=2)
    for algo in ALGOS:
        full = conv2d_backward(g, x, w, **args, **_alg(algo))
        assert full._fields == ("grad_input", "grad_weight", "grad_bias")
        for mask in itertools.product([False, True], repeat=3):
            part = conv2d_backward(g, x, w, output_mask=mask, **args, **_alg(algo))
            for keep, got, want in zip(mask, part, full):
                if keep:
                    assert bitwise_equal(got, want), (algo, mask)
                else:
                    assert got is None


@pytest.mark.parametrize("c_in,groups", [(1, 1), (3, 1), (4, 2), (6, 6)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_direct_input_gradient_four_rows_at_a_time(dtype, c_in, groups):
    """The direct input gradient of 3x3 kernels over few input channels runs four rows at a
    time, on planes padded to whole vectors: heights that leave 0-3 rows over, widths around
    the vector sizes, column dilation and uneven padding. Small integers make every sum exact,
    so the result must equal the reference bit for bit, on 1 and 3 threads."""
    rng = _rng("rows", dtype, c_in, groups)
    for h, w_, dilation, padding in [(4, 16, 1, 1), (5, 15, 1, 1), (6, 17, 1, 0),
                                     (8, 33, (1, 2), (1, 2)), (11, 8, 1, ((2, 0), (0, 1))),
                                     (9, 40, (1, 3), "same"), (2, 5, 1, 1), (10, 9, 1, 1),
                                     (8, 8, 1, ((1, 1), (1, 30))),     # far right padding
                                     (8, 24, (1, 8), "same")]:
        x = _make(rng, (2, c_in, h, w_), dtype, integer=True)
        wt = _make(rng, (5 * groups, c_in // groups, 3, 3), dtype, integer=True)
        args = (1, padding, dilation, groups)
        g = _make(rng, conv2d(x, wt, None, *args).shape, dtype, integer=True)
        want = ref_grad_input(g, x.shape, wt, *args)
        for t in (1, 3):
            got = conv2d_backward(g, x, wt, *args, output_mask=(True, False, False),
                                  algorithm="direct", num_threads=t).grad_input
            assert np.array_equal(got, want), (h, w_, dilation, padding, t)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_direct_input_gradient_four_rows_same_bits_as_one_row(dtype):
    """The four-row filter gives each output its taps in the same order as the filters of
    eight planes at once: a one-channel layer's input gradient equals, bit for bit, channel 0
    of an eight-channel layer's (whose planes run eight at a time) with the same kernels."""
    rng = _rng("rows-bits", dtype)
    for h, w_, padding in [(12, 37, 1), (9, 16, (1, 2)), (7, 50, 0)]:
        x8 = _make(rng, (3, 8, h, w_), dtype)
        w8 = _make(rng, (11, 8, 3, 3), dtype)
        g = _make(rng, conv2d(x8, w8, None, 1, padding).shape, dtype)
        kw = dict(output_mask=(True, False, False), algorithm="direct")
        one = conv2d_backward(g, x8[:, :1], w8[:, :1], 1, padding, **kw).grad_input
        eight = conv2d_backward(g, x8, w8, 1, padding, **kw).grad_input
        assert bitwise_equal(one[:, 0], eight[:, 0]), (h, w_, padding)


@pytest.mark.parametrize("n,c_in,c_out,groups,kernel,dilation,padding", [
    (16, 1, 6, 1, (3, 3), 1, 1),                 # kws-c1-like, outputs not a multiple of 4
    (17, 3, 8, 1, (5, 3), (2, 1), ((2, 0), (1, 3))),
    (4, 4, 8, 4, (3, 3), 1, "same"),             # depthwise, multiplier 2: 16 jobs
    (8, 4, 6, 2, (2, 4), (1, 2), 0)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_direct_backward_in_one_pass(dtype, n, c_in, c_out, groups, kernel, dilation,
                                     padding, monkeypatch):
    """Few-channel 2-D layers with enough samples (times groups) get all three gradients from
    one pass over grad_output (the separate passes are made to fail to show it): the bits of
    the separate passes (asked for one at a time), on every thread count, and the
    reference's values. (Where the weight gradient runs over vectors of output channels,
    VECTOR_WEIGHT, the one pass is left to the layers it does not take: turned off here.)"""
    monkeypatch.setattr(pyconv1d.functional, "VECTOR_WEIGHT", False)
    rng = _rng("one-pass", dtype, n, c_in, kernel)
    x = _make(rng, (n, c_in, 9, 13), dtype)
    w = _make(rng, (c_out, c_in // groups) + kernel, dtype)
    args = (1, padding, dilation, groups)
    g = _make(rng, conv2d(x, w, None, *args).shape, dtype)
    apart = [conv2d_backward(g, x, w, *args, output_mask=mask, algorithm="direct")[i]
             for i, mask in enumerate([(True, False, False), (False, True, False),
                                       (False, False, True)])]
    for name in ("grad_input", "grad_weight", "grad_bias"):
        monkeypatch.setattr(pyconv1d.functional._conv, name, _refuse)
    for t in THREAD_COUNTS + [None]:
        both = conv2d_backward(g, x, w, *args, algorithm="direct", num_threads=t)
        for name, got, want in zip(both._fields, both, apart):
            assert bitwise_equal(got, want), (name, t)
    reduction = n * g.shape[2] * g.shape[3]
    check(apart[0], ref_grad_input(g, x.shape, w, *args), dtype,
          (c_out // groups) * kernel[0] * kernel[1], "grad_input")
    check(apart[1], ref_grad_weight(g, x, w.shape, *args), dtype, reduction, "grad_weight")
    check(apart[2], ref_grad_bias(g), dtype, reduction, "grad_bias")


def _refuse(*args, **kwargs):
    raise AssertionError("this pass should not run")


def test_direct_backward_in_one_pass_unbatched_and_auto(monkeypatch):
    """'auto' takes the one-pass backward for a layer of two input channels per group whose
    16 groups make the jobs, on an unbatched input too. (Depthwise layers run over blocks of
    channels: test_depthwise_backward_over_blocks_of_channels.)"""
    rng = _rng("one-pass-auto")
    x = _make(rng, (32, 20, 30), np.float32)
    w = _make(rng, (16, 2, 3, 3), np.float32)
    g = _make(rng, (16, 20, 30), np.float32)
    apart = [conv2d_backward(g, x, w, 1, 1, 1, 16, output_mask=mask)[i]
             for i, mask in enumerate([(True, False, False), (False, True, False),
                                       (False, False, True)])]
    for name in ("grad_input", "grad_weight", "grad_bias"):
        monkeypatch.setattr(pyconv1d.functional._conv, name, _refuse)
    both = conv2d_backward(g, x, w, 1, 1, 1, 16)
    for got, want in zip(both, apart):
        assert bitwise_equal(got, want)
    assert both.grad_input.shape == x.shape
    check(both.grad_input, ref_grad_input(g, x.shape, w, 1, 1, 1, 16), np.float32, 9,
          "grad_input")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bias_gradient_summed_with_the_direct_weight_gradient(dtype, monkeypatch):
    """The direct 2-D weight gradient sums the bias gradient in its pass over grad_output
    (the separate bias pass is made to fail to show it): bitwise what the bias gradient alone
    gives, on every thread count, with tiles of outputs that do not fill (6 per group), two
    groups and several blocks of input channels."""
    rng = _rng("fused-bias", dtype)
    x = _make(rng, (3, 10, 9, 11), dtype)
    w = _make(rng, (12, 5, 3, 3), dtype)
    g = _make(rng, (3, 12, 9, 11), dtype)
    alone = conv2d_backward(g, x, w, padding=1, groups=2, output_mask=(False, False, True),
                            algorithm="direct", num_threads=1).grad_bias
    check(alone, ref_grad_bias(g), dtype, 3 * 9 * 11, "grad_bias")
    monkeypatch.setattr(pyconv1d.functional._conv, "grad_bias", _refuse)
    for t in THREAD_COUNTS + [None]:
        both = conv2d_backward(g, x, w, padding=1, groups=2, output_mask=(False, True, True),
                               algorithm="direct", num_threads=t)
        assert bitwise_equal(both.grad_bias, alone), t
        check(both.grad_weight, ref_grad_weight(g, x, w.shape, 1, 1, 1, 2), dtype, 3 * 99,
              "grad_weight")


# --------------------------------------------------------------------------------------------
# Central differences (float64).
# --------------------------------------------------------------------------------------------

FD_CONFIGS = list(itertools.product(
    [1, 2, (2, 1)],                          # stride
    [1, (1, 2)],                             # dilation
    [0, "same", ((1, 0), (0, 2))],           # padding
    [1, 2],                                  # groups
))
assert len(FD_CONFIGS) >= 36


@pytest.mark.parametrize("stride,dilation,padding,groups", FD_CONFIGS, ids=str)
def test_gradients_central_differences(stride, dilation, padding, groups):
    """loss = sum(conv2d(x, w, b) * G): compare all three gradients to central differences.

    The loss is linear in each argument, so the central difference has no truncation error
    and eps only trades against rounding; eps = 1e-3 keeps that well below the tolerance.
    """
    rng = _rng("fd", stride, dilation, padding, groups)
    kernel = (2, 3) if groups == 1 else (3, 2)
    x = rng.standard_normal((2, 4, 5, 7))
    w = rng.standard_normal((4, 4 // groups) + kernel)
    b = rng.standard_normal(4)
    args = (stride, padding, dilation, groups)
    G = rng.standard_normal(conv2d(x, w, b, *args).shape)

    eps, tol = 1e-3, dict(rtol=1e-8, atol=1e-9)
    num_gi = numerical_gradient(lambda a: np.sum(conv2d(a, w, b, *args, **GRID) * G), x, eps)
    num_gw = numerical_gradient(lambda a: np.sum(conv2d(x, a, b, *args, **GRID) * G), w, eps)
    num_gb = numerical_gradient(lambda a: np.sum(conv2d(x, w, a, *args, **GRID) * G), b, eps)
    for algo in ALGOS:
        gi, gw, gb = conv2d_backward(G, x, w, *args, **_alg(algo))   # default threads
        np.testing.assert_allclose(gi, num_gi, **tol, err_msg=f"grad_input, {algo}")
        np.testing.assert_allclose(gw, num_gw, **tol, err_msg=f"grad_weight, {algo}")
        np.testing.assert_allclose(gb, num_gb, **tol, err_msg=f"grad_bias, {algo}")


# --------------------------------------------------------------------------------------------
# Properties (hypothesis).
# --------------------------------------------------------------------------------------------

@st.composite
def conv_cases(draw):
    """A valid conv2d configuration: (x_shape, w_shape, stride, padding, dilation, groups)."""
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    dilation = draw(st.one_of(st.integers(1, 3),
                              st.tuples(st.integers(1, 3), st.integers(1, 3))))
    pad_int = st.integers(0, 3)
    padding = draw(st.one_of(pad_int, st.tuples(pad_int, pad_int),
                             st.tuples(st.tuples(pad_int, pad_int), st.tuples(pad_int, pad_int)),
                             st.sampled_from(["valid", "same"])))
    # Draw the plane no smaller than the dilated kernel needs after padding ('same' always
    # pads enough, so there any size goes, even one smaller than the kernel).
    if padding == "same":
        size = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    else:
        pads = ((0, 0),) * 2 if padding == "valid" else ref_pads(padding, (1, 1), kernel)
        size = tuple(draw(st.integers(max(1, e - lo - hi), max(1, e - lo - hi) + 6))
                     for e, (lo, hi) in zip(_extents(kernel, dilation), pads))
    batch = draw(st.sampled_from([None, 0, 1, 2]))            # None: unbatched
    x_shape = ((batch,) if batch is not None else ()) + (cg * groups,) + size
    w_shape = (og * groups, cg) + kernel
    return x_shape, w_shape, stride, padding, dilation, groups


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases(), st.sampled_from(DTYPES), st.sampled_from(ALGOS))
def test_property_shapes_and_values(case, dtype, algo):
    x_shape, w_shape, stride, padding, dilation, groups = case
    size, kernel = x_shape[-2:], w_shape[2:]
    assert fits(size, kernel, stride, dilation, padding)
    rng = _rng("prop-shape", case)
    x = _make(rng, x_shape, dtype)
    w = _make(rng, w_shape, dtype)
    y = conv2d(x, w, None, stride, padding, dilation, groups, **_alg(algo))

    # The shape formula: floor((n + before + after - dilation*(k-1) - 1) / stride) + 1, and
    # ceil(n / stride) for 'same'.
    pads = ref_pads(padding, size, kernel, stride, dilation)
    out = tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d in
                zip(size, pads, kernel, _pair(stride), _pair(dilation)))
    if padding == "same":
        assert out == tuple(-(-n // s) for n, s in zip(size, _pair(stride)))
    assert y.shape == x_shape[:-3] + (w_shape[0],) + out
    assert y.dtype == np.dtype(dtype)
    check(y, ref_forward(x, w, None, stride, padding, dilation, groups), dtype,
          w_shape[1] * kernel[0] * kernel[1], "forward")

    g = _make(rng, y.shape, dtype)
    gi, gw, gb = conv2d_backward(g, x, w, stride, padding, dilation, groups, **_alg(algo))
    assert gi.shape == x.shape and gw.shape == w.shape and gb.shape == (w_shape[0],)
    assert gi.dtype == gw.dtype == gb.dtype == np.dtype(dtype)


@settings(max_examples=60)
@given(conv_cases(), st.floats(-3, 3), st.floats(-3, 3), st.sampled_from(ALGOS))
def test_property_linearity(case, alpha, beta, algo):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = _rng("prop-lin", case)
    x1, x2 = rng.standard_normal(x_shape), rng.standard_normal(x_shape)
    w1, w2 = rng.standard_normal(w_shape), rng.standard_normal(w_shape)

    def f(x, w):
        return conv2d(x, w, None, stride, padding, dilation, groups, **_alg(algo))

    # Products of values ~N(0, 1) scaled by up to 3: allow for the reduction length.
    tol = dict(rtol=1e-10, atol=1e-10 * w_shape[1] * w_shape[2] * w_shape[3] * 10)
    np.testing.assert_allclose(f(alpha * x1 + beta * x2, w1),
                               alpha * f(x1, w1) + beta * f(x2, w1), **tol)
    np.testing.assert_allclose(f(x1, alpha * w1 + beta * w2),
                               alpha * f(x1, w1) + beta * f(x1, w2), **tol)


@settings(max_examples=80)
@given(conv_cases(), st.sampled_from(ALGOS))
def test_property_adjoint(case, algo):
    """<conv2d(x, w), g> == <x, grad_input(g)> == <w, grad_weight(g)> in float64."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = _rng("prop-adj", case)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    args = (stride, padding, dilation, groups)
    y = conv2d(x, w, None, *args, **_alg(algo))
    g = rng.standard_normal(y.shape)
    gi, gw, _ = conv2d_backward(g, x, w, *args, **_alg(algo))
    lhs = float(np.vdot(y, g))
    scale = float(np.vdot(np.abs(y), np.abs(g))) + 1.0
    assert abs(lhs - float(np.vdot(x, gi))) <= 1e-10 * scale
    assert abs(lhs - float(np.vdot(w, gw))) <= 1e-10 * scale


# --------------------------------------------------------------------------------------------
# Determinism across thread counts.
# --------------------------------------------------------------------------------------------

THREAD_CONFIGS = [
    (1, 1, 0, 1),
    (2, 1, "same", 1),
    ((1, 2), (2, 1), ((0, 3), (2, 1)), 2),
    ((2, 1), 2, (1, 2), 8),                  # depthwise
]


def _assert_thread_invariant(x, w, b, args, algo):
    """Forward and all gradients bitwise equal for 1, 2, 3, 4 and the default thread count."""
    y1 = conv2d(x, w, b, *args, num_threads=1, **_alg(algo))
    g = _make(_rng("threads-g", x.shape, algo), y1.shape, x.dtype)
    grads1 = conv2d_backward(g, x, w, *args, num_threads=1, **_alg(algo))
    for t in THREAD_COUNTS[1:] + [None]:
        y = conv2d(x, w, b, *args, num_threads=t, **_alg(algo))
        assert bitwise_equal(y, y1), f"forward, {t} threads, algorithm={algo}"
        grads = conv2d_backward(g, x, w, *args, num_threads=t, **_alg(algo))
        for name, got, want in zip(grads._fields, grads, grads1):
            assert bitwise_equal(got, want), f"{name}, {t} threads, algorithm={algo}"
    return y1, g, grads1


@pytest.mark.parametrize("algo", ALGOS, ids=str)
@pytest.mark.parametrize("stride,dilation,padding,groups", THREAD_CONFIGS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bitwise_identical_across_thread_counts(dtype, stride, dilation, padding, groups, algo):
    rng = _rng("threads", dtype, stride, dilation, padding, groups)
    x = _make(rng, (3, 8, 20, 24), dtype)
    w = _make(rng, (8, 8 // groups, 3, 3), dtype)
    b = _make(rng, (8,), dtype)
    args = (stride, padding, dilation, groups)
    y1, _, _ = _assert_thread_invariant(x, w, b, args, algo)
    check(y1, ref_forward(x, w, b, *args), dtype, (8 // groups) * 9 + 1, "forward")


@pytest.mark.parametrize("algo", ALGOS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_long_reduction_many_pixels(dtype, algo):
    """A long reduction (C_in/groups*kH*kW = 800) over a plane of 323 outputs per channel:
    large enough for a blocked/unrolled implementation to split each plane into several
    blocks that start mid-row, and the weight-gradient sum into several chunks."""
    rng = _rng("long", dtype, algo)
    x = _make(rng, (3, 32, 17, 19), dtype)
    w = _make(rng, (8, 32, 5, 5), dtype)
    b = _make(rng, (8,), dtype)
    args = ((1, 1), "same", 1, 1)
    y, g, (gi, gw, gb) = _assert_thread_invariant(x, w, b, args, algo)
    check(y, ref_forward(x, w, b, *args), dtype, 32 * 25 + 1, "forward")
    check(gi, ref_grad_input(g, x.shape, w, *args), dtype, 8 * 25, "grad_input")
    check(gw, ref_grad_weight(g, x, w.shape, *args), dtype, 3 * 17 * 19, "grad_weight")
    check(gb, ref_grad_bias(g), dtype, 3 * 17 * 19, "grad_bias")
    # Strided and dilated, on a plane whose width the blocks do not divide.
    args = ((2, 1), "same", (1, 2), 2)
    w2 = w[:, :16]
    y, g, (gi, gw, gb) = _assert_thread_invariant(x, w2, b, args, algo)
    check(y, ref_forward(x, w2, b, *args), dtype, 16 * 25 + 1, "strided forward")
    check(gi, ref_grad_input(g, x.shape, w2, *args), dtype, 4 * 25, "strided grad_input")
    check(gw, ref_grad_weight(g, x, w2.shape, *args), dtype, 3 * 9 * 19, "strided grad_weight")


def test_concurrent_calls_from_python_threads():
    """The kernels release the GIL: calls from several Python threads at once give the same
    bits as the same calls made one after another."""
    from concurrent.futures import ThreadPoolExecutor
    rng = _rng("concurrent")
    cases = [(rng.standard_normal((2, 16, 12, 13)), rng.standard_normal((16, 8, 3, 3)), algo)
             for algo in ALGOS for _ in range(4)]

    def run(case):
        x, w, algo = case
        y = conv2d(x, w, None, 1, "same", 1, 2, num_threads=2, **_alg(algo))
        return (y,) + tuple(conv2d_backward(y, x, w, 1, "same", 1, 2, num_threads=2,
                                            **_alg(algo)))

    serial = [run(c) for c in cases]
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(run, cases * 2))
    for got, want in zip(concurrent, serial * 2):
        assert all(bitwise_equal(a, b) for a, b in zip(got, want))


def test_forward_bitwise_across_batch_splits():
    """Integer-valued data make every sum exact: any split of the batch gives the same bits."""
    rng = _rng("split")
    x = _make(rng, (5, 6, 11, 13), np.float32, integer=True)
    w = _make(rng, (4, 3, 3, 2), np.float32, integer=True)
    args = dict(stride=(2, 1), padding="same", dilation=(1, 2), groups=2)
    expected = ref_forward(x, w, None, **args)
    # the FFT's per-frequency products change shape with the batch: equal to rounding only
    for algo in [a for a in ALGOS if a != "fft"]:
        whole = conv2d(x, w, **args, **_alg(algo))
        parts = np.concatenate([conv2d(x[:2], w, **args, **_alg(algo)),
                                conv2d(x[2:], w, **args, **_alg(algo))])
        assert bitwise_equal(whole, parts)
        for n in range(5):
            assert bitwise_equal(conv2d(x[n], w, **args, **_alg(algo)), whole[n])
        np.testing.assert_array_equal(whole, expected)


# --------------------------------------------------------------------------------------------
# Layouts, array-likes, empty batches.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_any_array_like(dtype):
    rng = _rng("layout", dtype)
    x = _make(rng, (2, 4, 7, 9), dtype)
    w = _make(rng, (6, 2, 3, 2), dtype)
    b = _make(rng, (6,), dtype)
    args = dict(stride=(1, 2), padding=[1, 2], dilation=[2, 1], groups=2)
    y = conv2d(x, w, b, **args)
    g = _make(rng, y.shape, dtype)
    grads = conv2d_backward(g, x, w, **args)
    check(y, ref_forward(x, w, b, (1, 2), (1, 2), (2, 1), 2), dtype, 13, "forward")

    def frozen(a):
        a = a.copy()
        a.flags.writeable = False
        return a

    saved = [a.copy() for a in (x, w, b, g)]
    variants = {
        "fortran": (np.asfortranarray(x), np.asfortranarray(w), b, np.asfortranarray(g)),
        "read-only": (frozen(x), frozen(w), frozen(b), frozen(g)),
        "transposed views": (x.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2),
                             w[::-1].copy()[::-1], b[::-1].copy()[::-1],
                             g[..., ::-1].copy()[..., ::-1]),
    }
    for name, (xv, wv, bv, gv) in variants.items():
        assert bitwise_equal(conv2d(xv, wv, bv, **args), y), name
        for got, want in zip(conv2d_backward(gv, xv, wv, **args), grads):
            assert bitwise_equal(got, want), name
    for a, s in zip((x, w, b, g), saved):
        assert bitwise_equal(a, s), "an input was modified"

    # Nested lists of Python floats are float64.
    if dtype == np.float64:
        assert bitwise_equal(conv2d(x.tolist(), w.tolist(), b.tolist(), **args), y)
        for got, want in zip(conv2d_backward(g.tolist(), x.tolist(), w.tolist(), **args), grads):
            assert bitwise_equal(got, want)


@pytest.mark.parametrize("algo", ALGOS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_wide_rows(dtype, algo):
    """Row lengths around vector widths and unroll factors (8, 16, 32, 64 elements)."""
    for width, stride, padding in itertools.product([1, 15, 16, 17, 31, 32, 33, 47, 65],
                                                    [1, (1, 2)], [0, "same"]):
        if not fits((3, width), (2, 3), stride, 1, padding):
            continue
        rng = _rng("wide", dtype, algo, width, stride, padding)
        x = _make(rng, (2, 2, 3, width), dtype)
        w = _make(rng, (2, 2, 2, 3), dtype)
        args = (stride, padding, 1, 1)
        y = conv2d(x, w, None, *args, **GRID, **_alg(algo))
        what = f"width={width} stride={stride} padding={padding!r}"
        check(y, ref_forward(x, w, None, *args), dtype, 12, f"forward {what}")
        g = _make(rng, y.shape, dtype)
        gi, gw, _ = conv2d_backward(g, x, w, *args, **GRID, **_alg(algo))
        check(gi, ref_grad_input(g, x.shape, w, *args), dtype, 12, f"grad_input {what}")
        check(gw, ref_grad_weight(g, x, w.shape, *args), dtype, y[0, 0].size * 2,
              f"grad_weight {what}")


def test_numpy_integer_arguments():
    x = np.ones((1, 2, 6, 6))
    w = np.ones((2, 1, 3, 3))
    expected = conv2d(x, w, None, (2, 1), ((1, 0), (0, 1)), (1, 2), 2)
    got = conv2d(x, w, None, (np.int64(2), np.int32(1)), ((np.int8(1), 0), (0, np.int64(1))),
                 (np.int16(1), 2), np.int64(2), num_threads=np.int32(2))
    assert bitwise_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("padding", [0, "same", ((1, 2), (0, 1))], ids=str)
def test_empty_batch(dtype, padding):
    x = np.zeros((0, 4, 7, 9), dtype=dtype)
    w = np.ones((6, 2, 3, 2), dtype=dtype)
    b = np.ones(6, dtype=dtype)
    y = conv2d(x, w, b, 2, padding, 1, 2)
    out = ref_out_size((7, 9), (3, 2), 2, 1, padding)
    assert y.shape == (0, 6) + out and y.dtype == np.dtype(dtype)
    gi, gw, gb = conv2d_backward(np.zeros(y.shape, dtype), x, w, 2, padding, 1, 2)
    assert gi.shape == x.shape and gi.dtype == np.dtype(dtype)
    assert gw.shape == w.shape and gw.dtype == np.dtype(dtype) and not gw.any()
    assert gb.shape == (6,) and gb.dtype == np.dtype(dtype) and not gb.any()


@pytest.mark.parametrize("algo", ALGOS, ids=str)
def test_empty_plane_with_padding(algo):
    """H = 0 with enough padding: the outputs are the bias alone, the gradients zero."""
    x = np.zeros((2, 2, 0, 5))
    w = np.ones((3, 2, 3, 3))
    b = np.array([1.0, 2.0, 3.0])
    y = conv2d(x, w, b, padding=2, **_alg(algo))
    assert y.shape == (2, 3, 2, 7)
    np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], y.shape))
    gi, gw, gb = conv2d_backward(np.ones(y.shape), x, w, padding=2, **_alg(algo))
    assert gi.shape == x.shape and not gw.any()
    np.testing.assert_array_equal(gb, np.full(3, 28.0))



def test_non_native_byte_order():
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 6))
    w = np.random.default_rng(1).standard_normal((3, 2, 3, 3))
    y = conv2d(x.astype(">f8"), w.astype(">f8"))
    np.testing.assert_allclose(y, ref_forward(x, w), rtol=1e-10, atol=1e-10)


def test_kernel_exactly_fills_padded_plane():
    rng = _rng("exact-fit")
    x = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    # Padded 4+1+0 = 5 rows vs extent 2*2+1 = 5; 5 columns vs extent 5.
    args = (1, ((1, 0), (0, 0)), (2, 2), 1)
    y = conv2d(x, w, None, *args)
    assert y.shape == (2, 2, 1, 1)
    np.testing.assert_allclose(y, ref_forward(x, w, None, *args), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    gi, gw, _ = conv2d_backward(g, x, w, *args)
    np.testing.assert_allclose(gi, ref_grad_input(g, x.shape, w, *args), rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(gw, ref_grad_weight(g, x, w.shape, *args), rtol=1e-10,
                               atol=1e-10)


def test_padding_larger_than_plane():
    """Outputs whose window lies entirely in the padding are the bias alone."""
    rng = _rng("big-pad")
    x = rng.standard_normal((1, 2, 3, 2))
    w = rng.standard_normal((3, 2, 2, 2))
    b = rng.standard_normal(3)
    y = conv2d(x, w, b, padding=4)
    np.testing.assert_allclose(y, ref_forward(x, w, b, padding=4), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(y[0, :, 0, 0], b)
    g = rng.standard_normal(y.shape)
    gi, gw, gb = conv2d_backward(g, x, w, padding=4)
    np.testing.assert_allclose(gi, ref_grad_input(g, x.shape, w, padding=4), rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(gw, ref_grad_weight(g, x, w.shape, padding=4), rtol=1e-10,
                               atol=1e-10)


# --------------------------------------------------------------------------------------------
# Every bad input raises ValueError/TypeError naming the argument.
# --------------------------------------------------------------------------------------------

def _x(shape=(2, 4, 7, 9), dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


def _w(shape=(4, 2, 3, 3), dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


BAD_FORWARD = [
    # ndim
    ("input 2-D", dict(input=_x((4, 7))), ValueError, r"input.*\(4, 7\)"),
    ("input 5-D", dict(input=_x((1, 2, 4, 7, 9))), ValueError, r"input.*\(1, 2, 4, 7, 9\)"),
    ("weight 3-D", dict(weight=_w((4, 2, 3))), ValueError, r"weight.*\(4, 2, 3\)"),
    ("weight 5-D", dict(weight=_w((4, 2, 3, 3, 1))), ValueError, r"weight.*\(4, 2, 3, 3, 1\)"),
    ("bias 2-D", dict(bias=np.zeros((4, 1))), ValueError, r"bias.*\(4, 1\)"),
    ("bias length", dict(bias=np.zeros(3)), ValueError, r"bias.*\(3,\)"),
    ("bias scalar", dict(bias=np.float64(1.0)), ValueError, r"bias"),
    # channels and groups
    ("channel mismatch", dict(weight=_w((4, 3, 3, 3)), groups=1), ValueError, r"channels"),
    ("channel mismatch groups", dict(weight=_w((4, 4, 3, 3))), ValueError, r"channels"),
    ("groups not dividing C_in", dict(input=_x((2, 3, 7, 9)), weight=_w((4, 1, 3, 3))),
     ValueError, r"groups.*2"),
    ("groups not dividing C_out", dict(weight=_w((3, 2, 3, 3))), ValueError, r"groups.*2"),
    ("groups 0", dict(groups=0), ValueError, r"groups.*0"),
    ("groups negative", dict(groups=-2), ValueError, r"groups.*-2"),
    ("groups float", dict(groups=2.0), TypeError, r"groups.*2\.0"),
    ("groups None", dict(groups=None), TypeError, r"groups.*None"),
    # stride / dilation
    ("stride 3 elements", dict(stride=(1, 2, 3)), ValueError, r"stride.*\(1, 2, 3\)"),
    ("stride 1 element", dict(stride=(1,)), ValueError, r"stride.*\(1,\)"),
    ("stride 0", dict(stride=0), ValueError, r"stride.*0"),
    ("stride 0 on one axis", dict(stride=(1, 0)), ValueError, r"stride.*\(1, 0\)"),
    ("stride negative", dict(stride=-1), ValueError, r"stride.*-1"),
    ("stride float", dict(stride=1.5), TypeError, r"stride.*1\.5"),
    ("stride float in pair", dict(stride=(1, 2.0)), TypeError, r"stride.*2\.0"),
    ("stride bool", dict(stride=True), TypeError, r"stride.*True"),
    ("stride string", dict(stride="2"), TypeError, r"stride"),
    ("dilation 0", dict(dilation=0), ValueError, r"dilation.*0"),
    ("dilation 3 elements", dict(dilation=(1, 1, 1)), ValueError, r"dilation.*\(1, 1, 1\)"),
    ("dilation float", dict(dilation=(1.0, 1)), TypeError, r"dilation"),
    # padding
    ("padding negative", dict(padding=-1), ValueError, r"padding.*-1"),
    ("padding negative one axis", dict(padding=(1, -1)), ValueError, r"padding.*-1"),
    ("padding negative nested", dict(padding=((0, 0), (-1, 0))), ValueError, r"padding.*-1"),
    ("padding causal", dict(padding="causal"), ValueError, r"padding.*causal"),
    ("padding unknown string", dict(padding="full"), ValueError, r"padding.*full"),
    ("padding 3 elements", dict(padding=(1, 2, 3)), ValueError, r"padding.*\(1, 2, 3\)"),
    ("padding half nested", dict(padding=((1, 2), 3)), ValueError, r"padding"),
    ("padding short pair", dict(padding=((1, 2), (3,))), ValueError, r"padding"),
    ("padding float", dict(padding=1.5), TypeError, r"padding.*1\.5"),
    ("padding float in pair", dict(padding=(1, 0.5)), TypeError, r"padding"),
    ("padding None", dict(padding=None), TypeError, r"padding.*None"),
    # kernel vs padded plane
    ("kernel taller than plane", dict(input=_x((2, 4, 3, 9)), weight=_w((4, 2, 5, 3))),
     ValueError, r"axis 0.*3.*5"),
    ("kernel wider than plane", dict(input=_x((2, 4, 9, 3)), weight=_w((4, 2, 3, 5))),
     ValueError, r"axis 1.*3.*5"),
    ("dilated kernel too tall", dict(dilation=(4, 1)), ValueError, r"axis 0.*7.*9"),
    ("dilated kernel too wide, padded", dict(dilation=(1, 5), padding=((9, 9), (0, 0))),
     ValueError, r"axis 1.*9.*11"),
    ("empty kernel height", dict(weight=_w((4, 2, 0, 3))), ValueError, r"kernel|weight"),
    ("empty kernel width", dict(weight=_w((4, 2, 3, 0))), ValueError, r"kernel|weight"),
    ("no output channels", dict(weight=_w((0, 2, 3, 3))), ValueError, r"weight"),
    # dtypes and array-likes
    ("int input", dict(input=np.zeros((2, 4, 7, 9), dtype=np.int64)), TypeError, r"input.*int"),
    ("complex input", dict(input=np.zeros((2, 4, 7, 9), dtype=complex)), TypeError,
     r"input.*complex"),
    ("object input", dict(input=np.empty((2, 4, 7, 9), dtype=object)), TypeError,
     r"input.*object"),
    ("string input", dict(input="abc"), TypeError, r"input.*abc"),
    ("None input", dict(input=None), TypeError, r"input.*None"),
    ("bool input", dict(input=np.zeros((2, 4, 7, 9), dtype=bool)), TypeError, r"input.*bool"),
    ("float16 input", dict(input=np.zeros((2, 4, 7, 9), dtype=np.float16)), TypeError,
     r"input.*float16"),
    ("ragged input", dict(input=[[[[1.0, 2.0], [3.0]]]]), TypeError, r"input"),
    ("int weight", dict(weight=np.zeros((4, 2, 3, 3), dtype=np.int32)), TypeError,
     r"weight.*int32"),
    ("int bias", dict(bias=np.zeros(4, dtype=np.int64)), TypeError, r"bias.*int64"),
    ("weight dtype mismatch", dict(weight=_w(dtype=np.float32)), TypeError,
     r"weight.*float32.*float64"),
    ("bias dtype mismatch", dict(bias=np.zeros(4, dtype=np.float32)), TypeError,
     r"bias.*float32.*float64"),
    ("input float32 weight float64", dict(input=_x(dtype=np.float32)), TypeError,
     r"float64.*float32"),
    # threads
    ("num_threads 0", dict(num_threads=0), ValueError, r"num_threads.*got 0"),
    ("num_threads negative", dict(num_threads=-3), ValueError, r"num_threads.*-3"),
    ("num_threads float", dict(num_threads=2.0), TypeError, r"num_threads.*2\.0"),
    ("num_threads bool", dict(num_threads=True), TypeError, r"num_threads.*True"),
    # absurd sizes must be refused before anything is allocated
    ("padding 2**62", dict(padding=2 ** 62), ValueError, r"padding.*" + str(2 ** 62)),
    ("padding 2**62 one axis", dict(padding=(2 ** 62, 0)), ValueError, r"padding"),
    ("padding 2**62 nested", dict(padding=((0, 2 ** 62), (0, 0))), ValueError, r"padding"),
    ("padding 2**63", dict(padding=2 ** 63), ValueError, r"padding"),
    ("padding needing terabytes", dict(padding=2 ** 21), ValueError, r"padding|GiB|memory"),
    ("dilation 2**62", dict(dilation=2 ** 62), ValueError, r"dilation"),
]


def _forward_call(overrides):
    kw = dict(input=_x(), weight=_w(), bias=None, stride=1, padding=0, dilation=1, groups=2)
    kw.update(overrides)
    threads = kw.pop("num_threads", None)
    return lambda: conv2d(kw["input"], kw["weight"], kw["bias"], kw["stride"], kw["padding"],
                          kw["dilation"], kw["groups"], num_threads=threads)


@pytest.mark.parametrize("overrides,exc,pattern",
                         [case[1:] for case in BAD_FORWARD], ids=[c[0] for c in BAD_FORWARD])
def test_forward_rejects(overrides, exc, pattern):
    with pytest.raises(exc, match=pattern):
        _forward_call(overrides)()


@pytest.mark.parametrize("overrides,exc,pattern",
                         [case[1:] for case in BAD_FORWARD if "bias" not in case[1]],
                         ids=[c[0] for c in BAD_FORWARD if "bias" not in c[1]])
def test_backward_rejects_the_same_arguments(overrides, exc, pattern):
    kw = dict(input=_x(), weight=_w(), stride=1, padding=0, dilation=1, groups=2)
    kw.update(overrides)
    threads = kw.pop("num_threads", None)
    g = np.zeros((2, 4, 5, 7))
    with pytest.raises(exc, match=pattern):
        conv2d_backward(g, kw["input"], kw["weight"], kw["stride"], kw["padding"],
                        kw["dilation"], kw["groups"], num_threads=threads)


@pytest.mark.parametrize("grad_output,exc,pattern", [
    (np.zeros((2, 4, 5, 6)), ValueError, r"grad_output.*\(2, 4, 5, 7\).*\(2, 4, 5, 6\)"),
    (np.zeros((2, 3, 5, 7)), ValueError, r"grad_output.*\(2, 3, 5, 7\)"),
    (np.zeros((4, 5, 7)), ValueError, r"grad_output.*\(4, 5, 7\)"),            # unbatched
    (np.zeros((1, 2, 4, 5, 7)), ValueError, r"grad_output"),
    (np.zeros((2, 4, 5, 7), dtype=np.float32), TypeError, r"grad_output.*float32"),
    (np.zeros((2, 4, 5, 7), dtype=np.int64), TypeError, r"grad_output.*int64"),
    (np.zeros((2, 4, 5, 7), dtype=complex), TypeError, r"grad_output.*complex"),
    ("abc", TypeError, r"grad_output"),
    (None, TypeError, r"grad_output"),
], ids=["width", "channels", "unbatched for batched", "5-D", "float32", "int64", "complex",
        "string", "None"])
def test_backward_rejects_bad_grad_output(grad_output, exc, pattern):
    with pytest.raises(exc, match=pattern):
        conv2d_backward(grad_output, _x(), _w(), groups=2)


def test_backward_rejects_batched_grad_output_for_unbatched_input():
    with pytest.raises(ValueError, match=r"grad_output.*\(4, 5, 7\)"):
        conv2d_backward(np.zeros((1, 4, 5, 7)), _x((4, 7, 9)), _w(), groups=2)


@pytest.mark.parametrize("mask", [(True, True), (1, 1, 1), None, "abc", (True, True, True, True)],
                         ids=str)
def test_backward_rejects_bad_output_mask(mask):
    with pytest.raises(TypeError, match=r"output_mask"):
        conv2d_backward(np.zeros((2, 4, 5, 7)), _x(), _w(), groups=2, output_mask=mask)


@pytest.mark.skipif(not _HAS_ALGORITHM, reason="conv2d has no algorithm argument")
@pytest.mark.parametrize("algorithm", ["im2col", "GEMM ", None, 1], ids=str)
def test_rejects_unknown_algorithm(algorithm):
    with pytest.raises((TypeError, ValueError), match=r"algorithm"):
        conv2d(_x(), _w(), groups=2, algorithm=algorithm)
    with pytest.raises((TypeError, ValueError), match=r"algorithm"):
        conv2d_backward(np.zeros((2, 4, 5, 7)), _x(), _w(), groups=2, algorithm=algorithm)


def test_errors_leave_inputs_untouched_and_no_partial_output():
    x, w = _x(), _w()
    x[...] = 1.0
    before = x.copy()
    with pytest.raises(ValueError):
        conv2d(x, w, padding=2 ** 62, groups=2)
    assert bitwise_equal(x, before)


def test_openmp_flag_is_bool():
    # The thread tests are trivially true in a serial build; say which one this is.
    assert isinstance(pyconv1d.openmp_enabled(), bool)
