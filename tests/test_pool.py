"""Tests for the pooling functions of pyconv1d.functional (kernels in src/_pool.pyx).

References are brute-force loops written from PyTorch's documented semantics (window
positions, padding that never wins a max, the first maximum winning ties, the average pool's
divisor rules), central differences, and - when torch is installed - torch.nn.functional.
"""
import itertools
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv1d
from pyconv1d import functional as F

DTYPES = [np.float32, np.float64]


def _rng(*parts):
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


def _tol(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Independent references (loops over output positions, PyTorch's rules)
# --------------------------------------------------------------------------------------------

def _out_size(n, k, s, p, d, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def ref_max_pool2d(x, k, s, p, d, ceil_mode):
    """x (R, H, W) -> values, flat indices; first max wins, NaN wins."""
    R, H, W = x.shape
    Ho = _out_size(H, k[0], s[0], p[0], d[0], ceil_mode)
    Wo = _out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.empty((R, Ho, Wo), x.dtype)
    idx = np.empty((R, Ho, Wo), np.int64)
    for r, i, j in itertools.product(range(R), range(Ho), range(Wo)):
        best, best_i = -np.inf, None
        for a, b in itertools.product(range(k[0]), range(k[1])):
            h, w = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
            if 0 <= h < H and 0 <= w < W:
                v = x[r, h, w]
                if best_i is None:
                    best_i = h * W + w
                if v > best or np.isnan(v):
                    best, best_i = v, h * W + w
        y[r, i, j], idx[r, i, j] = best, best_i
    return y, idx


def ref_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    R, H, W = x.shape
    Ho = _out_size(H, k[0], s[0], p[0], 1, ceil_mode)
    Wo = _out_size(W, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((R, Ho, Wo), np.float64)
    for i, j in itertools.product(range(Ho), range(Wo)):
        h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
        h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
        pool = (h1 - h0) * (w1 - w0)
        h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
        if h0 >= h1 or w0 >= w1:
            continue
        div = divisor_override or (pool if count_include_pad else (h1 - h0) * (w1 - w0))
        y[:, i, j] = x[:, h0:h1, w0:w1].astype(np.float64).sum(axis=(1, 2)) / div
    return y


def ref_adaptive_windows(n, o):
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


def numerical_grad(f, x, g, eps=1e-6):
    """d(sum(g * f(x)))/dx by central differences (float64)."""
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = np.sum(g * f(x))
        x[i] = old - eps
        fm = np.sum(g * f(x))
        x[i] = old
        out[i] = (fp - fm) / (2 * eps)
    return out


# --------------------------------------------------------------------------------------------
# max / avg pool 1d and 2d against the references
# --------------------------------------------------------------------------------------------

GEOMETRIES_1D = [  # kernel, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False), (3, 1, 1, 1, False), (3, 2, 1, 1, True), (4, 3, 2, 1, True),
    (3, 2, 0, 2, False), (2, 2, 1, 3, True), (5, 1, 2, 1, False), (1, 1, 0, 1, False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,d,ceil", GEOMETRIES_1D, ids=str)
def test_max_pool1d_matches_reference(dtype, k, s, p, d, ceil):
    x = _rng("mp1", k, s, p, d, ceil).standard_normal((3, 4, 17)).astype(dtype)
    y, idx = F.max_pool1d(x, k, s, p, d, ceil, return_indices=True)
    ry, ridx = ref_max_pool2d(x.reshape(12, 1, 17), (1, k), (1, s or k), (0, p), (1, d), ceil)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ry.reshape(y.shape))
    np.testing.assert_array_equal(idx, ridx.reshape(idx.shape))
    g = _rng("mp1g", k).standard_normal(y.shape).astype(dtype)
    gx = F.max_pool1d_backward(g, x, k, s, p, d, ceil)
    expected = np.zeros((12, 17), np.float64)
    for r, t in np.ndindex(12, y.shape[-1]):
        expected[r, ridx.reshape(12, -1)[r, t]] += g.reshape(12, -1)[r, t]
    np.testing.assert_allclose(gx.reshape(12, 17), expected, **_tol(dtype))
    np.testing.assert_array_equal(F.max_pool1d_backward(g, x, k, s, p, d, ceil, indices=idx), gx)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,ceil,cip", [
    (2, None, 0, False, True), (3, 1, 1, False, True), (3, 1, 1, False, False),
    (3, 2, 1, True, True), (3, 2, 1, True, False), (4, 3, 2, True, True), (5, 2, 2, False, False),
], ids=str)
def test_avg_pool1d_matches_reference(dtype, k, s, p, ceil, cip):
    x = _rng("ap1", k, s, p, ceil, cip).standard_normal((2, 3, 16)).astype(dtype)
    y = F.avg_pool1d(x, k, s, p, ceil, cip)
    ry = ref_avg_pool2d(x.reshape(6, 1, 16), (1, k), (1, s or k), (0, p), ceil, cip)
    np.testing.assert_allclose(y, ry.reshape(y.shape), **_tol(dtype))
    # the backward is the adjoint: <avg(x), g> == <x, avg_backward(g)>
    g = _rng("ap1g", k).standard_normal(y.shape).astype(dtype)
    gx = F.avg_pool1d_backward(g, x, k, s, p, ceil, cip)
    lhs = np.sum(y.astype(np.float64) * g)
    rhs = np.sum(x.astype(np.float64) * gx)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5 if dtype == np.float32 else 1e-12)


GEOMETRIES_2D = [  # kernel, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False), ((3, 2), (2, 1), (1, 0), 1, False), (3, 2, 1, (2, 1), True),
    ((2, 4), (1, 3), (1, 2), 1, True), (3, 3, 1, 1, True),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,d,ceil", GEOMETRIES_2D, ids=str)
def test_max_pool2d_matches_reference(dtype, k, s, p, d, ceil):
    x = _rng("mp2", k, s, p, d, ceil).standard_normal((2, 3, 9, 10)).astype(dtype)
    y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ry, ridx = ref_max_pool2d(x.reshape(6, 9, 10), _pair(k), _pair(s or k), _pair(p), _pair(d),
                              ceil)
    np.testing.assert_array_equal(y, ry.reshape(y.shape))
    np.testing.assert_array_equal(idx, ridx.reshape(idx.shape))
    x64 = x.astype(np.float64)
    g = _rng("mp2g").standard_normal(y.shape)
    gx = F.max_pool2d_backward(g, x64, k, s, p, d, ceil)
    num = numerical_grad(lambda a: F.max_pool2d(a, k, s, p, d, ceil), x64.copy(), g)
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,d,ceil", [
    (2, None, 0, 1, False), (2, None, 1, 1, True), (3, 1, 1, 1, False), (3, 2, 1, 1, True),
    ((2, 3), (1, 3), (1, 1), (2, 1), False), ((1, 4), (1, 2), (0, 2), 1, True),
    (3, 2, 1, 2, False),
], ids=str)
def test_max_pool2d_wide_planes_with_ties_and_nan(dtype, k, s, p, d, ceil):
    # rows of 70 columns: the branch-free vector loops of the interior (pyc_max_tap) run
    # whole vectors as well as tails; small integers make ties, and NaNs must win wherever
    # they fall (interior, edges, padded windows)
    rng = _rng("mp2wide", k, s, p, d, ceil)
    x = rng.integers(-2, 3, (2, 3, 13, 70)).astype(dtype)
    x[rng.random(x.shape) < 0.01] = np.nan
    y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ry, ridx = ref_max_pool2d(x.reshape(6, 13, 70), _pair(k), _pair(s or k), _pair(p),
                              _pair(d), ceil)
    np.testing.assert_array_equal(y, ry.reshape(y.shape))
    np.testing.assert_array_equal(idx, ridx.reshape(idx.shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,ceil,cip,dov", [
    (2, None, 0, False, True, None), ((3, 2), (2, 1), (1, 0), False, False, None),
    (3, 2, 1, True, True, None), (3, 2, 1, True, False, None), (2, 1, 1, False, True, 3),
], ids=str)
def test_avg_pool2d_matches_reference(dtype, k, s, p, ceil, cip, dov):
    x = _rng("ap2", k, s, p, ceil, cip, dov).standard_normal((2, 2, 7, 8)).astype(dtype)
    y = F.avg_pool2d(x, k, s, p, ceil, cip, dov)
    ry = ref_avg_pool2d(x.reshape(4, 7, 8), _pair(k), _pair(s or k), _pair(p), ceil, cip, dov)
    np.testing.assert_allclose(y, ry.reshape(y.shape), **_tol(dtype))
    x64 = x.astype(np.float64)
    g = _rng("ap2g").standard_normal(y.shape)
    gx = F.avg_pool2d_backward(g, x64, k, s, p, ceil, cip, dov)
    num = numerical_grad(lambda a: F.avg_pool2d(a, k, s, p, ceil, cip, dov), x64.copy(), g)
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8)


def test_max_pool1d_gradient_by_central_differences():
    x = _rng("mpcd").standard_normal((2, 3, 11))
    for k, s, p, d, ceil in GEOMETRIES_1D:
        y = F.max_pool1d(x, k, s, p, d, ceil)
        g = _rng("mpcd", k, s).standard_normal(y.shape)
        gx = F.max_pool1d_backward(g, x, k, s, p, d, ceil)
        num = numerical_grad(lambda a: F.max_pool1d(a, k, s, p, d, ceil), x.copy(), g)
        np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8, err_msg=str((k, s, p, d)))


@settings(max_examples=60)
@given(L=st.integers(1, 20), k=st.integers(1, 5), s=st.integers(1, 4), d=st.integers(1, 3),
       p=st.integers(0, 2), ceil=st.booleans(), data=st.data())
def test_max_pool1d_property(L, k, s, d, p, ceil, data):
    p = min(p, k // 2)
    x = data.draw(st.lists(st.integers(-3, 3), min_size=2 * L, max_size=2 * L))
    x = np.array(x, np.float64).reshape(1, 2, L)          # small integers: many ties
    if _out_size(L, k, s, p, d, ceil) < 1:
        with pytest.raises(ValueError, match="too small"):
            F.max_pool1d(x, k, s, p, d, ceil)
        return
    y, idx = F.max_pool1d(x, k, s, p, d, ceil, return_indices=True)
    ry, ridx = ref_max_pool2d(x.reshape(2, 1, L), (1, k), (1, s), (0, p), (1, d), ceil)
    np.testing.assert_array_equal(y, ry.reshape(y.shape))
    np.testing.assert_array_equal(idx, ridx.reshape(idx.shape))


# --------------------------------------------------------------------------------------------
# Ties, NaN, layouts, threads, unbatched input
# --------------------------------------------------------------------------------------------

def test_first_maximum_wins_ties():
    x = np.array([[[1.0, 3.0, 3.0, 2.0]]])
    y, idx = F.max_pool1d(x, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx, [[[1, 1, 2]]])
    np.testing.assert_array_equal(F.max_pool1d_backward(np.ones_like(y), x, 2, 1), [[[0, 2, 1, 0]]])
    x2 = np.array([[[[5.0, 5.0], [5.0, 5.0]]]])
    assert F.max_pool2d(x2, 2, return_indices=True)[1].item() == 0
    _, aidx = F.adaptive_max_pool1d(np.array([[[2.0, 7.0, 7.0]]]), 1, return_indices=True)
    assert aidx.item() == 1


def test_nan_wins_the_max_and_padding_never_does():
    x = np.array([[[1.0, np.nan, 3.0, -5.0]]])
    y, idx = F.max_pool1d(x, 4, return_indices=True)
    assert np.isnan(y.item()) and idx.item() == 1
    neg = np.full((1, 1, 3), -1e30)
    y = F.max_pool1d(neg, 3, 1, padding=1)
    np.testing.assert_array_equal(y, neg)                 # -inf padding never wins


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_are_bitwise_identical_for_every_thread_count(dtype):
    x = _rng("threads").standard_normal((4, 8, 64, 40)).astype(dtype)
    assert x.size >= F.SERIAL_BELOW                  # large enough to run in parallel
    g = np.ones((4, 8, 32, 20), dtype)
    calls = [
        lambda n: F.max_pool2d(x, 3, 2, 1, return_indices=True, num_threads=n),
        lambda n: F.avg_pool2d(x, 3, 2, 1, num_threads=n),
        lambda n: F.avg_pool2d_backward(g, x, 3, 2, 1, num_threads=n),
        lambda n: F.max_pool2d_backward(g, x, 3, 2, 1, num_threads=n),
        lambda n: F.adaptive_avg_pool2d(x, (4, 5), num_threads=n),
        lambda n: F.adaptive_max_pool1d(x.reshape(4, 8, -1), 3, num_threads=n),
    ]
    for call in calls:
        first = call(1)
        first = first if isinstance(first, tuple) else (first,)
        for n in (2, 3, 4):
            again = call(n)
            again = again if isinstance(again, tuple) else (again,)
            assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_any_layout_and_read_only_input():
    base = _rng("layout").standard_normal((4, 6, 30))
    x = base[::2, 1::2, ::3]                              # non-contiguous
    ro = np.array(x)
    ro.flags.writeable = False
    fortran = np.asfortranarray(x)
    contiguous = np.ascontiguousarray(x)
    for arr in (x, ro, fortran):
        np.testing.assert_array_equal(F.max_pool1d(arr, 2), F.max_pool1d(contiguous, 2))
        np.testing.assert_array_equal(F.avg_pool1d(arr, 3, 1, 1), F.avg_pool1d(contiguous, 3, 1, 1))
        np.testing.assert_array_equal(F.max_pool1d_backward(np.ones((2, 3, 5)), arr, 2),
                                      F.max_pool1d_backward(np.ones((2, 3, 5)), contiguous, 2))


def test_unbatched_input():
    x = _rng("unb").standard_normal((3, 10))
    np.testing.assert_array_equal(F.max_pool1d(x, 2), F.max_pool1d(x[None], 2)[0])
    np.testing.assert_array_equal(F.avg_pool1d_backward(np.ones((3, 5)), x, 2),
                                  F.avg_pool1d_backward(np.ones((1, 3, 5)), x[None], 2)[0])
    x2 = _rng("unb2").standard_normal((3, 6, 6))
    np.testing.assert_array_equal(F.max_pool2d(x2, 2), F.max_pool2d(x2[None], 2)[0])
    assert F.adaptive_max_pool1d(x, 1, lengths=4).shape == (3, 1)


def test_empty_batch():
    x = np.zeros((0, 3, 10), np.float32)
    assert F.max_pool1d(x, 2).shape == (0, 3, 5)
    assert F.avg_pool1d_backward(np.zeros((0, 3, 5), np.float32), x, 2).shape == x.shape


# --------------------------------------------------------------------------------------------
# Adaptive pooling
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out", [1, 2, 3, 7, 12])
def test_adaptive_max_pool1d_matches_reference(dtype, out):
    x = _rng("amp", out).standard_normal((2, 3, 9)).astype(dtype)
    y, idx = F.adaptive_max_pool1d(x, out, return_indices=True)
    for i, (a, b) in enumerate(ref_adaptive_windows(9, out)):
        np.testing.assert_array_equal(y[..., i], x[..., a:b].max(axis=-1))
        np.testing.assert_array_equal(idx[..., i], a + x[..., a:b].argmax(axis=-1))


def _scalar_window_max(row):
    """The max pool's rule, one element at a time: from -inf at the window's start, take v
    when v > best or v is NaN (the first maximum, or the last NaN)."""
    best, pos = -np.inf, 0
    for t, v in enumerate(row):
        if v > best or v != v:
            best, pos = v, t
    return row[pos], pos


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_max_pool1d_follows_the_scalar_rule_bit_for_bit(dtype):
    # rows long enough for the vector lanes and their tails, with ties, NaNs, infinities and
    # signed zeros drawn from a small set of values; variable lengths and output sizes
    rng = _rng("amp-rule", dtype)
    values = np.array([-np.inf, -1.0, -0.0, 0.0, 1.0, 2.0, np.inf, np.nan], dtype)
    for L, out in [(1, 1), (15, 1), (16, 1), (17, 1), (40, 1), (70, 1), (70, 3), (33, 5),
                   (100, 7)]:
        x = values[rng.integers(0, len(values) - 1 if L % 2 else len(values), (6, 2, L))]
        x[0, 0] = -np.inf                       # an all -inf row
        lengths = rng.integers(max(out, 1), L + 1, 6)
        y, idx = F.adaptive_max_pool1d(x, out, return_indices=True, lengths=lengths)
        for n, c in np.ndindex(6, 2):
            for i, (a, b) in enumerate(ref_adaptive_windows(int(lengths[n]), out)):
                v, t = _scalar_window_max(x[n, c, a:b])
                assert idx[n, c, i] == a + t, (L, out, n, c, i)
                np.testing.assert_array_equal(y[n, c, i], v)
                assert np.signbit(y[n, c, i]) == np.signbit(v)


def test_adaptive_max_pool1d_masks_padded_positions():
    rng = _rng("mask")
    x = rng.standard_normal((4, 5, 12))
    lengths = np.array([12, 7, 1, 3])
    x[1, :, 7:] = 1e9                                       # padding that would win unmasked
    x[2, :, 1:] = 1e9
    x[3, :, 3:] = 1e9
    y = F.adaptive_max_pool1d(x, 1, lengths=lengths)
    for n, length in enumerate(lengths):
        np.testing.assert_array_equal(y[n, :, 0], x[n, :, :length].max(axis=-1))
    g = rng.standard_normal(y.shape)
    gx = F.adaptive_max_pool1d_backward(g, x, 1, lengths=lengths)
    for n, length in enumerate(lengths):
        assert not gx[n, :, length:].any()                 # no gradient into the padding
    num = numerical_grad(lambda a: F.adaptive_max_pool1d(a, 1, lengths=lengths), x.copy(), g)
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-6)
    # with several outputs the windows split the valid part of each sequence
    y3 = F.adaptive_max_pool1d(x, 3, lengths=lengths)
    for n, length in enumerate(lengths):
        for i, (a, b) in enumerate(ref_adaptive_windows(int(length), 3)):
            np.testing.assert_array_equal(y3[n, :, i], x[n, :, a:b].max(axis=-1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out", [1, (2, 3), (5, None), 7])
def test_adaptive_avg_pool2d_matches_reference(dtype, out):
    x = _rng("aap", str(out)).standard_normal((2, 3, 5, 6)).astype(dtype)
    y = F.adaptive_avg_pool2d(x, out)
    oh, ow = out if isinstance(out, tuple) else (out, out)
    ow = 6 if ow is None else ow
    assert y.shape == (2, 3, oh, ow)
    for i, (a, b) in enumerate(ref_adaptive_windows(5, oh)):
        for j, (c, d) in enumerate(ref_adaptive_windows(6, ow)):
            np.testing.assert_allclose(y[..., i, j], x[..., a:b, c:d].mean(axis=(-1, -2)),
                                       **_tol(dtype))
    x64 = x.astype(np.float64)
    g = _rng("aapg").standard_normal(y.shape)
    gx = F.adaptive_avg_pool2d_backward(g, x64, out)
    num = numerical_grad(lambda a: F.adaptive_avg_pool2d(a, out), x64.copy(), g)
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,exc,match", [
    (lambda x: F.max_pool1d(x[0, 0], 2), ValueError, r"input must be \(N, C, L\)"),
    (lambda x: F.max_pool2d(x[0, 0], 2), ValueError, r"input must be \(N, C, H, W\)"),
    (lambda x: F.max_pool1d(x.astype(np.int64), 2), TypeError, "float32 or float64"),
    (lambda x: F.max_pool1d(x, 0), ValueError, "kernel_size must be an int >= 1"),
    (lambda x: F.max_pool1d(x, 2.0), TypeError, "kernel_size"),
    (lambda x: F.max_pool1d(x, 2, stride=0), ValueError, "stride"),
    (lambda x: F.max_pool1d(x, 3, padding=2), ValueError, "at most half of kernel_size"),
    (lambda x: F.max_pool1d(x, 3, dilation=0), ValueError, "dilation"),
    (lambda x: F.max_pool1d(x, 20), ValueError, "too small"),
    (lambda x: F.max_pool1d(x, 2, ceil_mode=1), TypeError, "ceil_mode must be a bool"),
    (lambda x: F.avg_pool2d(x[:, :, None], 1, divisor_override=0), ValueError,
     "divisor_override"),
    (lambda x: F.avg_pool1d(x, 2, count_include_pad="yes"), TypeError, "count_include_pad"),
    (lambda x: F.max_pool1d(x, 2, num_threads=0), ValueError, "num_threads"),
    (lambda x: F.max_pool1d_backward(np.ones((2, 3, 4)), x, 2), ValueError,
     r"grad_output must have the output's shape \(2, 3, 5\)"),
    (lambda x: F.max_pool1d_backward(np.ones((2, 3, 5), np.float32), x, 2), TypeError,
     "grad_output dtype"),
    (lambda x: F.max_pool1d_backward(np.ones((2, 3, 5)), x, 2,
                                     indices=np.full((2, 3, 5), 10)), ValueError,
     r"indices must lie in \[0, 10\)"),
    (lambda x: F.max_pool1d_backward(np.ones((2, 3, 5)), x, 2,
                                     indices=np.zeros((2, 3, 5))), TypeError,
     "indices must be integers"),
    (lambda x: F.adaptive_max_pool1d(x, 0), ValueError, "output_size"),
    (lambda x: F.adaptive_max_pool1d(x, 1, lengths=[3]), ValueError,
     r"lengths must have shape \(2,\)"),
    (lambda x: F.adaptive_max_pool1d(x, 1, lengths=[3, 11]), ValueError,
     r"lengths must lie in \[1, 10\]"),
    (lambda x: F.adaptive_max_pool1d(x, 1, lengths=[0, 3]), ValueError, r"\[1, 10\]"),
    (lambda x: F.adaptive_max_pool1d(x, 1, lengths=[2.0, 3.0]), TypeError,
     "lengths must be integers"),
    (lambda x: F.adaptive_avg_pool2d(x[:, :, None], (1, 2, 3)), ValueError, "output_size"),
    (lambda x: F.max_pool1d(np.zeros((2, 3, 0)), 1), ValueError, "non-empty"),
])
def test_bad_arguments_raise(call, exc, match):
    x = _rng("bad").standard_normal((2, 3, 10))
    with pytest.raises(exc, match=match):
        call(x)


def test_exported_from_the_package():
    for name in ("max_pool1d", "avg_pool1d", "max_pool2d", "avg_pool2d", "max_pool1d_backward",
                 "avg_pool2d_backward", "adaptive_max_pool1d", "adaptive_avg_pool2d"):
        assert name in pyconv1d.__all__
        assert getattr(pyconv1d, name) is getattr(F, name)


# --------------------------------------------------------------------------------------------
# Against torch.nn.functional (skipped without torch)
# --------------------------------------------------------------------------------------------

def _torch_grad(fn, x, g):
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt)
    values = out[0] if isinstance(out, tuple) else out
    values.backward(torch.tensor(g))
    return out, xt.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    rng = _rng("torch", dtype)
    x1 = rng.standard_normal((3, 4, 23)).astype(dtype)
    x2 = rng.standard_normal((2, 3, 11, 13)).astype(dtype)
    x1[0, 0, 3] = x1[0, 0, 4]                              # a tie
    for k, s, p, d, ceil in GEOMETRIES_1D:
        y, idx = F.max_pool1d(x1, k, s, p, d, ceil, return_indices=True)
        g = rng.standard_normal(y.shape).astype(dtype)
        (ty, tidx), tgx = _torch_grad(lambda t: tF.max_pool1d(t, k, s, p, d, ceil, True), x1, g)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())
        np.testing.assert_allclose(F.max_pool1d_backward(g, x1, k, s, p, d, ceil), tgx,
                                   **_tol(dtype))
    for k, s, p, ceil, cip in [(2, None, 0, False, True), (3, 2, 1, True, True),
                               (3, 2, 1, True, False), (4, 3, 2, True, False)]:
        y = F.avg_pool1d(x1, k, s, p, ceil, cip)
        g = rng.standard_normal(y.shape).astype(dtype)
        ty, tgx = _torch_grad(lambda t: tF.avg_pool1d(t, k, s, p, ceil, cip), x1, g)
        np.testing.assert_allclose(y, ty.detach().numpy(), **_tol(dtype))
        np.testing.assert_allclose(F.avg_pool1d_backward(g, x1, k, s, p, ceil, cip), tgx,
                                   **_tol(dtype))
    for k, s, p, d, ceil in GEOMETRIES_2D:
        y, idx = F.max_pool2d(x2, k, s, p, d, ceil, return_indices=True)
        g = rng.standard_normal(y.shape).astype(dtype)
        (ty, tidx), tgx = _torch_grad(lambda t: tF.max_pool2d(t, k, s, p, d, ceil, True), x2, g)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())
        np.testing.assert_allclose(F.max_pool2d_backward(g, x2, k, s, p, d, ceil), tgx,
                                   **_tol(dtype))
    for k, s, p, ceil, cip, dov in [(2, None, 0, False, True, None), (3, 2, 1, True, False, None),
                                    ((3, 2), (2, 1), (1, 0), True, True, None),
                                    (2, 1, 1, False, True, 3)]:
        y = F.avg_pool2d(x2, k, s, p, ceil, cip, dov)
        g = rng.standard_normal(y.shape).astype(dtype)
        ty, tgx = _torch_grad(lambda t: tF.avg_pool2d(t, k, s, p, ceil, cip, dov), x2, g)
        np.testing.assert_allclose(y, ty.detach().numpy(), **_tol(dtype))
        np.testing.assert_allclose(F.avg_pool2d_backward(g, x2, k, s, p, ceil, cip, dov), tgx,
                                   **_tol(dtype))
    for out in (1, 3, 7):
        y, idx = F.adaptive_max_pool1d(x1, out, return_indices=True)
        g = rng.standard_normal(y.shape).astype(dtype)
        (ty, tidx), tgx = _torch_grad(lambda t: tF.adaptive_max_pool1d(t, out, True), x1, g)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())
        np.testing.assert_allclose(F.adaptive_max_pool1d_backward(g, x1, out), tgx,
                                   **_tol(dtype))
    for out in (1, (3, 4), (5, None)):
        y = F.adaptive_avg_pool2d(x2, out)
        g = rng.standard_normal(y.shape).astype(dtype)
        ty, tgx = _torch_grad(lambda t: tF.adaptive_avg_pool2d(t, out), x2, g)
        np.testing.assert_allclose(y, ty.detach().numpy(), **_tol(dtype))
        np.testing.assert_allclose(F.adaptive_avg_pool2d_backward(g, x2, out), tgx,
                                   **_tol(dtype))


def test_windows_reaching_far_into_the_padding():
    """A window's first row inside the plane is found in one step, not one dilation at a
    time (a 2**40-row window padded by 2**39 hung), and the average's divisor, the window's
    area, is counted without wrapping past 64 bits (it gave inf, or a negative mean)."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert np.array_equal(F.max_pool2d(x, (2 ** 40, 1), padding=(2 ** 39, 0)),
                          x.max(axis=2, keepdims=True))
    assert np.array_equal(F.max_pool2d(x, 2 ** 36, padding=2 ** 35), [[[[15.0]]]])
    for k in (2 ** 40, 3 * 2 ** 30):
        y = F.avg_pool2d(np.ones((1, 1, 4, 4)), k, padding=k // 2)
        np.testing.assert_allclose(y, 16.0 / float(k) ** 2, rtol=1e-12)


def test_strides_and_dilations_past_64_bits():
    """A stride that leaves one output per axis, or a dilation of a one-tap kernel, is never
    used: any int works there (they overflowed the kernels' 64-bit arguments); a kernel that
    spans more than 2**40 samples, a divisor beyond 2**53 and an adaptive output that would
    not fit in memory are ValueErrors naming the argument."""
    x = np.arange(10.0).reshape(1, 1, 10)
    x2 = np.arange(16.0).reshape(1, 1, 4, 4)
    assert np.array_equal(F.max_pool1d(x, 3, stride=2 ** 70), [[[2.0]]])
    assert np.array_equal(F.avg_pool1d(x, 2, stride=2 ** 64), [[[0.5]]])
    assert np.array_equal(F.max_pool1d(x, 1, dilation=2 ** 70), x)
    assert np.array_equal(F.max_pool2d(x2, 2, stride=(2 ** 64, 2 ** 64)), [[[[5.0]]]])
    with pytest.raises(ValueError, match="kernel_size=18446744073709551616 spans more"):
        F.max_pool1d(x, 2 ** 64, padding=2 ** 63, stride=2 ** 64)
    with pytest.raises(ValueError, match="divisor_override must be at most"):
        F.avg_pool2d(x2, 2, divisor_override=2 ** 70)
    with pytest.raises(ValueError, match="output_size=1099511627776 would need"):
        F.adaptive_max_pool1d(x, 2 ** 40)
    with pytest.raises(ValueError, match="output_size=2147483648 would need"):
        F.adaptive_avg_pool2d(x2, 2 ** 31)


def test_adaptive_max_pool1d_backward_checks_lengths_against_given_indices():
    """With indices given, lengths are still checked (type, range) and no index may point
    past its sequence's length (the gradient would land on padding); [] is an empty batch's
    lengths."""
    x = np.ones((1, 1, 4))
    g = np.ones((1, 1, 1))
    got = F.adaptive_max_pool1d_backward(g, x, 1, lengths=[2], indices=np.array([[[1]]]))
    np.testing.assert_array_equal(got, [[[0.0, 1.0, 0.0, 0.0]]])
    with pytest.raises(ValueError, match=r"index 3 in a row of length 2"):
        F.adaptive_max_pool1d_backward(g, x, 1, lengths=[2], indices=np.array([[[3]]]))
    with pytest.raises(TypeError, match=r"lengths must be integers"):
        F.adaptive_max_pool1d_backward(g, x, 1, lengths="abc", indices=np.array([[[0]]]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 4\]"):
        F.adaptive_max_pool1d_backward(g, x, 1, lengths=[0], indices=np.array([[[0]]]))
    assert F.adaptive_max_pool1d(np.ones((0, 3, 5)), 2, lengths=[]).shape == (0, 3, 2)
