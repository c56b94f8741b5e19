"""Tests for pyconv1d.conv1d and pyconv1d.conv1d_backward.

Every result is checked against references built without the library (tests/_reference.py:
scipy.signal correlate/convolve on explicitly padded signals, brute-force loops, central
differences). Tolerances depend on the dtype and grow with the length of the reduction.
"""
import inspect
import itertools
import math
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyconv1d
from pyconv1d import conv1d, conv1d_backward

import _reference as ref

DTYPES = [np.float32, np.float64]
PAD_FORMS = [2, (3, 1), "valid", "same", "causal"]
THREAD_COUNTS = [1, 2, 3, 4]
GRAD_NAMES = ["grad_input", "grad_weight", "grad_bias"]
#: The reference grids (thousands of tiny calls) run single-threaded: on a busy machine OpenMP's
#: spin-waiting makes each tiny threaded call 10-100x slower. The thread count cannot change a
#: result (test_bitwise_identical_* and test_property_thread_count_invariance check that,
#: including on random configurations), and the other tests use the default (None).
GRID_THREADS = 1


def _seed(*parts):
    """A stable seed from test parameters (str hashing is randomised per process)."""
    return zlib.crc32(repr(parts).encode())


def _rng(*parts):
    return np.random.default_rng(_seed(*parts))


def _padded_fits(L, K, stride, dilation, padding):
    left, right = ref.resolve_padding_1d(L, K, stride, dilation, padding)
    return L + left + right >= dilation * (K - 1) + 1


def _make(rng, shape, dtype, sliced=False, integer=False):
    """A random array; ``sliced`` returns a non-contiguous view (every other channel/sample)."""
    def draw(sh):
        if integer:
            return rng.integers(-3, 4, size=sh).astype(dtype)
        return rng.standard_normal(sh).astype(dtype)
    if not sliced:
        return draw(shape)
    if len(shape) == 1:
        return draw((2 * shape[0] + 1,))[1::2]
    big = draw(shape[:-2] + (2 * shape[-2], 2 * shape[-1] + 1))
    view = big[..., ::2, 1::2]
    assert view.shape == tuple(shape) and not view.flags.c_contiguous
    return view


def _channels(groups_kind, c_in=4):
    """(groups, C_in, C_out) for the grid's group settings."""
    if groups_kind == "depthwise":
        return c_in, c_in, 2 * c_in          # channel multiplier 2
    return groups_kind, c_in, 6


def _case_str(**kw):
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


def _fail_report(failures, checked):
    head = "\n".join(failures[:25])
    more = f"\n... and {len(failures) - 25} more" if len(failures) > 25 else ""
    return f"{len(failures)} of {checked} checks failed:\n{head}{more}"


# --------------------------------------------------------------------------------------------
# The references themselves (cheap sanity checks, so a failure below blames the library).
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("padding", PAD_FORMS + [0, (0, 2)], ids=str)
@pytest.mark.parametrize("stride,dilation,groups", [(1, 1, 1), (2, 3, 2), (3, 2, 4)])
def test_reference_matches_brute_force(padding, stride, dilation, groups):
    rng = _rng("ref", padding, stride, dilation, groups)
    x = rng.standard_normal((2, 4, 14))
    w = rng.standard_normal((8, 4 // groups, 3))
    b = rng.standard_normal(8)
    y = ref.conv_forward(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(y, ref.conv_forward_loops(x, w, b, stride, padding, dilation,
                                                         groups), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    for a, e in zip(ref.conv_backward(g, x, w, stride, padding, dilation, groups),
                    ref.conv_backward_loops(g, x, w, stride, padding, dilation, groups)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_reference_hand_computed():
    # x = 0..5, w = [1, 0, -1]: out[t] = x[t] - x[t+2] = -2 (the docstring example).
    x = np.arange(6.0).reshape(1, 1, 6)
    w = np.array([[[1.0, 0.0, -1.0]]])
    np.testing.assert_array_equal(ref.conv_forward(x, w), [[[-2.0] * 4]])
    # dilation 2, stride 2, causal: left pad 4, taps at t*2 - 4 + {0, 2, 4}.
    y = ref.conv_forward(x, w, stride=2, padding="causal", dilation=2)
    xp = np.concatenate([np.zeros(4), np.arange(6.0)])
    np.testing.assert_array_equal(y[0, 0], [xp[t] - xp[t + 4] for t in range(0, 6, 2)])
    # 'same' with an even kernel puts the odd padding sample on the right.
    assert ref.resolve_padding_1d(10, 4, 1, 1, "same") == (1, 2)
    assert ref.resolve_padding_1d(10, 4, 3, 1, "same") == (1, 2)   # L_out 4: total 3
    assert ref.resolve_padding_1d(9, 3, 3, 1, "same") == (0, 0)
    assert ref.resolve_padding_1d(10, 3, 2, 2, "causal") == (4, 0)


# --------------------------------------------------------------------------------------------
# Forward and backward against scipy over the full grid.
# --------------------------------------------------------------------------------------------

GRID_INNER = list(itertools.product([1, 2, 3],                 # stride
                                    [1, 2, 3],                 # dilation
                                    [1, 2, "depthwise"],       # groups
                                    [False, True],             # bias
                                    [True, False],             # batched
                                    [False, True]))            # sliced
GRID_INNER_BACKWARD = [(s, d, g, bt, sl) for s, d, g, bias, bt, sl in GRID_INNER if not bias]


def _algorithms():
    """``algorithm=`` values to try: the default, then each named path when the library has
    the argument (conv1d(..., algorithm='direct'|'gemm'|...)); its 'auto' picks gemm only for
    8+ output channels per group, which the small grids below never reach."""
    if "algorithm" not in inspect.signature(conv1d).parameters:
        return [None]
    return [None, "direct", "gemm", "fft", "winograd"]


ALGORITHMS = _algorithms()


def _alg(algorithm):
    return {} if algorithm is None else {"algorithm": algorithm}


def _check_kind(got, dtype, name):
    if not isinstance(got, np.ndarray) or got.dtype != np.dtype(dtype):
        return f"{name} is {type(got).__name__} of dtype {getattr(got, 'dtype', None)}"
    return None


@pytest.mark.parametrize("padding", PAD_FORMS, ids=str)
@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_forward_grid(dtype, K, padding):
    """dtype x K x padding here, stride x dilation x groups x bias x batched x sliced (and
    every algorithm) inside."""
    rng = _rng("fwd", dtype, K, padding)
    failures, checked = [], 0
    for stride, dilation, groups_kind, use_bias, batched, sliced in GRID_INNER:
        groups, c_in, c_out = _channels(groups_kind)
        L = int(rng.integers(11, 21))
        case = _case_str(stride=stride, dilation=dilation, groups=groups, bias=use_bias,
                         batched=batched, sliced=sliced, L=L)
        lead = (2,) if batched else ()
        x = _make(rng, lead + (c_in, L), dtype, sliced)
        w = _make(rng, (c_out, c_in // groups, K), dtype, sliced)
        b = _make(rng, (c_out,), dtype, sliced) if use_bias else None
        if not _padded_fits(L, K, stride, dilation, padding):
            checked += 1
            try:
                conv1d(x, w, b, stride, padding, dilation, groups, num_threads=GRID_THREADS)
            except ValueError:
                pass
            else:
                failures.append(f"{case}: padded input shorter than kernel did not raise")
            continue
        expected = ref.conv_forward(x, w, b, stride, padding, dilation, groups)
        for algorithm in ALGORITHMS:
            checked += 1
            where = f"{case}, algorithm={algorithm!r}"
            try:
                y = conv1d(x, w, b, stride, padding, dilation, groups,
                           num_threads=GRID_THREADS, **_alg(algorithm))
            except Exception as exc:  # noqa: BLE001 - collected, reported below
                failures.append(f"{where}: raised {exc!r}")
                continue
            msg = _check_kind(y, dtype, "output") or \
                ref.close_message(y, expected, dtype, c_in // groups * K, "output")
            if msg:
                failures.append(f"{where}: {msg}")
    assert checked > 0
    assert not failures, _fail_report(failures, checked)


@pytest.mark.parametrize("padding", PAD_FORMS, ids=str)
@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_backward_grid(dtype, K, padding):
    """grad_input vs convolve('full'), grad_weight vs correlate, grad_bias vs sums."""
    rng = _rng("bwd", dtype, K, padding)
    failures, checked = [], 0
    for stride, dilation, groups_kind, batched, sliced in GRID_INNER_BACKWARD:
        groups, c_in, c_out = _channels(groups_kind)
        L = int(rng.integers(11, 21))
        if not _padded_fits(L, K, stride, dilation, padding):
            continue
        case = _case_str(stride=stride, dilation=dilation, groups=groups, batched=batched,
                         sliced=sliced, L=L)
        lead = (2,) if batched else ()
        x = _make(rng, lead + (c_in, L), dtype, sliced)
        w = _make(rng, (c_out, c_in // groups, K), dtype, sliced)
        out_shape = ref.output_shape(x.shape, w.shape, stride, padding, dilation)
        g = _make(rng, out_shape, dtype, sliced)
        expected = ref.conv_backward(g, x, w, stride, padding, dilation, groups)
        n_out = out_shape[-1] * (2 if batched else 1)
        reductions = [(c_out // groups) * K, n_out, n_out]
        for algorithm in ALGORITHMS:
            checked += 1
            where = f"{case}, algorithm={algorithm!r}"
            try:
                grads = conv1d_backward(g, x, w, stride, padding, dilation, groups,
                                        num_threads=GRID_THREADS, **_alg(algorithm))
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{where}: raised {exc!r}")
                continue
            for name, got, exp, red in zip(GRAD_NAMES, grads, expected, reductions):
                msg = _check_kind(got, dtype, name) or \
                    ref.close_message(got, exp, dtype, red, name)
                if msg:
                    failures.append(f"{where}: {msg}")
    assert checked > 0
    assert not failures, _fail_report(failures, checked)


@pytest.mark.parametrize("padding", [0, 1, 5, (0, 4), (4, 0), (0, 0), "valid", "same",
                                     "causal"], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_more_paddings_and_lengths(dtype, padding):
    """Lengths 1..12 (including L < K with enough padding, and L_out == 1) with K 1..6, and
    channel counts on both sides of the algorithm crossover."""
    rng = _rng("pads", dtype, padding)
    failures, checked = [], 0
    for L, K, stride, dilation in itertools.product(range(1, 13), range(1, 7), [1, 2, 4],
                                                    [1, 2]):
        if not _padded_fits(L, K, stride, dilation, padding):
            continue
        checked += 1
        c_in, c_out = (2, 3) if (L + K) % 2 else (4, 9)
        x = _make(rng, (1, c_in, L), dtype)
        w = _make(rng, (c_out, c_in, K), dtype)
        b = _make(rng, (c_out,), dtype)
        algorithm = ALGORITHMS[(L + stride) % len(ALGORITHMS)]
        case = _case_str(L=L, K=K, stride=stride, dilation=dilation, c_in=c_in, c_out=c_out,
                         algorithm=algorithm)
        kw = dict(stride=stride, padding=padding, dilation=dilation)
        y = conv1d(x, w, b, **kw, num_threads=GRID_THREADS, **_alg(algorithm))
        msg = ref.close_message(y, ref.conv_forward(x, w, b, **kw), dtype, c_in * K, "output")
        if not msg:
            g = _make(rng, y.shape, dtype)
            got = conv1d_backward(g, x, w, **kw, num_threads=GRID_THREADS, **_alg(algorithm))
            for name, a, e, red in zip(GRAD_NAMES, got, ref.conv_backward(g, x, w, **kw),
                                       [c_out * K, L, L]):
                msg = msg or ref.close_message(a, e, dtype, red, name)
        if msg:
            failures.append(f"{case}: {msg}")
    assert not failures, _fail_report(failures, checked)


@pytest.mark.parametrize("L,stride,K,dilation", [
    (10, 1, 3, 1), (10, 1, 4, 1), (10, 2, 4, 1), (11, 2, 4, 1), (10, 3, 3, 2), (9, 3, 3, 1),
    (7, 4, 5, 2), (1, 1, 8, 3), (5, 7, 2, 1), (16, 5, 8, 2)])
def test_same_and_causal_lengths(L, stride, K, dilation):
    """'same' and 'causal' give ceil(L / stride) outputs; causal output t sees no input after
    t*stride; 'same' puts the odd padding sample on the right (TensorFlow)."""
    x = np.random.default_rng(L * 100 + K).standard_normal((1, 1, L))
    w = np.random.default_rng(K).standard_normal((1, 1, K))
    expected_len = math.ceil(L / stride)
    for padding in ("same", "causal"):
        y = conv1d(x, w, stride=stride, padding=padding, dilation=dilation)
        assert y.shape == (1, 1, expected_len), padding
    # causality: perturbing input sample j changes no output t with t*stride < j
    y0 = conv1d(x, w, stride=stride, padding="causal", dilation=dilation)
    for j in range(L):
        x1 = x.copy()
        x1[0, 0, j] += 1.0
        y1 = conv1d(x1, w, stride=stride, padding="causal", dilation=dilation)
        t = np.arange(expected_len)
        np.testing.assert_array_equal(y1[0, 0, t * stride < j], y0[0, 0, t * stride < j])
    # 'same' equals an explicit (left, right) pair with the odd sample on the right
    total = max((expected_len - 1) * stride + dilation * (K - 1) + 1 - L, 0)
    pair = (total // 2, total - total // 2)
    np.testing.assert_array_equal(conv1d(x, w, stride=stride, padding="same",
                                         dilation=dilation),
                                  conv1d(x, w, stride=stride, padding=pair, dilation=dilation))


def test_pytorch_docstring_examples():
    x = np.arange(6, dtype=np.float64).reshape(1, 1, 6)
    w = np.array([[[1.0, 0.0, -1.0]]])
    np.testing.assert_array_equal(conv1d(x, w), [[[-2.0, -2.0, -2.0, -2.0]]])
    gi, gw, gb = conv1d_backward(np.ones((1, 1, 4)), np.ones((1, 1, 5)),
                                 np.array([[[1.0, 2.0]]]))
    np.testing.assert_array_equal(gi, [[[1.0, 3.0, 3.0, 3.0, 2.0]]])
    np.testing.assert_array_equal(gw, [[[4.0, 4.0]]])
    np.testing.assert_array_equal(gb, [4.0])


def test_no_kernel_flip():
    """Cross-correlation: a kernel [1, 0] picks x[t], not x[t+1]."""
    x = np.arange(5.0).reshape(1, 1, 5)
    np.testing.assert_array_equal(conv1d(x, np.array([[[1.0, 0.0]]])), [[[0, 1, 2, 3]]])
    np.testing.assert_array_equal(conv1d(x, np.array([[[0.0, 1.0]]])), [[[1, 2, 3, 4]]])


def test_backward_returns_named_tuple():
    rng = _rng("nt")
    x, w = rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, 2))
    grads = conv1d_backward(np.ones((2, 4, 8)), x, w)
    assert isinstance(grads, tuple) and len(grads) == 3
    assert grads._fields == ("grad_input", "grad_weight", "grad_bias")
    gi, gw, gb = grads
    assert gi is grads.grad_input and gw is grads.grad_weight and gb is grads.grad_bias
    assert gi.shape == x.shape and gw.shape == w.shape and gb.shape == (4,)


# --------------------------------------------------------------------------------------------
# Central differences (float64).
# --------------------------------------------------------------------------------------------

def _gradcheck_configs():
    configs = []
    kernels = itertools.cycle([1, 2, 3, 4, 3, 2])
    for stride, dilation, padding, groups in itertools.product(
            [1, 2, 3], [1, 2], [0, 1, (2, 0), "valid", "same", "causal"], [1, 2]):
        configs.append((next(kernels), stride, dilation, padding, groups, True))
    # depthwise and unbatched extras
    configs += [(3, 1, 1, "same", 4, True), (2, 2, 2, "causal", 4, True),
                (3, 2, 1, (1, 2), 4, False), (4, 1, 2, "same", 1, False),
                (1, 3, 1, 0, 2, False), (5, 1, 1, "valid", 1, True)]
    return configs


GRADCHECK_CONFIGS = _gradcheck_configs()


@pytest.mark.parametrize("K,stride,dilation,padding,groups,batched", GRADCHECK_CONFIGS,
                         ids=lambda v: str(v))
def test_central_difference_gradients(K, stride, dilation, padding, groups, batched):
    assert len(GRADCHECK_CONFIGS) >= 70
    rng = _rng("gc", K, stride, dilation, padding, groups, batched)
    c_in = 4
    c_out = 4 if groups == 4 else 2 * groups
    x = rng.standard_normal(((2,) if batched else ()) + (c_in, 9))
    w = rng.standard_normal((c_out, c_in // groups, K))
    b = rng.standard_normal(c_out)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = conv1d(x, w, b, **kw)
    G = rng.standard_normal(y.shape)

    def loss(xx, ww, bb):
        return float(np.sum(conv1d(xx, ww, bb, **kw, num_threads=GRID_THREADS) * G))

    # the loss is linear in each argument, so a large step has no truncation error and
    # little rounding error
    eps = 1e-3
    num_x = ref.numerical_gradient(lambda a: loss(a, w, b), x, eps)
    num_w = ref.numerical_gradient(lambda a: loss(x, a, b), w, eps)
    num_b = ref.numerical_gradient(lambda a: loss(x, w, a), b, eps)
    gi, gw, gb = conv1d_backward(G, x, w, **kw)
    np.testing.assert_allclose(gi, num_x, rtol=1e-7, atol=1e-8, err_msg="grad_input")
    np.testing.assert_allclose(gw, num_w, rtol=1e-7, atol=1e-8, err_msg="grad_weight")
    np.testing.assert_allclose(gb, num_b, rtol=1e-7, atol=1e-8, err_msg="grad_bias")


# --------------------------------------------------------------------------------------------
# Hypothesis properties.
# --------------------------------------------------------------------------------------------

@st.composite
def conv_configs(draw, min_batch=0):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    K = draw(st.integers(1, 6))
    stride = draw(st.integers(1, 4))
    dilation = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["int", "pair", "valid", "same", "causal"]))
    if kind == "int":
        padding = draw(st.integers(0, 5))
    elif kind == "pair":
        padding = (draw(st.integers(0, 5)), draw(st.integers(0, 5)))
    else:
        padding = kind
    extent = dilation * (K - 1) + 1
    lo, hi = ref.resolve_padding_1d(1, K, stride, dilation, padding) \
        if kind in ("int", "pair", "valid") else (extent, 0)
    min_len = max(1, extent - lo - hi)
    L = draw(st.integers(min_len, min_len + 15))
    batched = draw(st.booleans())
    N = draw(st.integers(min_batch, 3)) if batched else None
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return dict(groups=groups, c_in=c_in, c_out=c_out, K=K, stride=stride, dilation=dilation,
                padding=padding, L=L, N=N, seed=seed)


def _arrays(cfg, dtype=np.float64):
    rng = np.random.default_rng(cfg["seed"])
    lead = () if cfg["N"] is None else (cfg["N"],)
    x = rng.standard_normal(lead + (cfg["c_in"], cfg["L"])).astype(dtype)
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], cfg["K"])).astype(dtype)
    b = rng.standard_normal(cfg["c_out"]).astype(dtype)
    return rng, x, w, b


def _kw(cfg):
    return {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(cfg=conv_configs(), dtype=st.sampled_from(DTYPES))
def test_property_shape_formula(cfg, dtype):
    _, x, w, b = _arrays(cfg, dtype)
    y = conv1d(x, w, b, **_kw(cfg))
    left, right = ref.resolve_padding_1d(cfg["L"], cfg["K"], cfg["stride"], cfg["dilation"],
                                         cfg["padding"])
    L_out = (cfg["L"] + left + right - cfg["dilation"] * (cfg["K"] - 1) - 1) \
        // cfg["stride"] + 1
    if cfg["padding"] in ("same", "causal"):
        assert L_out == math.ceil(cfg["L"] / cfg["stride"])
    lead = () if cfg["N"] is None else (cfg["N"],)
    assert y.shape == lead + (cfg["c_out"], L_out)
    assert y.dtype == np.dtype(dtype)
    gi, gw, gb = conv1d_backward(np.ones_like(y), x, w, **_kw(cfg))
    assert gi.shape == x.shape and gw.shape == w.shape and gb.shape == (cfg["c_out"],)
    assert gi.dtype == gw.dtype == gb.dtype == np.dtype(dtype)


@PROPERTY_SETTINGS
@given(cfg=conv_configs(min_batch=1), a=st.floats(-3, 3), c=st.floats(-3, 3))
def test_property_linearity(cfg, a, c):
    rng, x, w, b = _arrays(cfg)
    x2 = rng.standard_normal(x.shape)
    w2 = rng.standard_normal(w.shape)
    kw = _kw(cfg)
    red = (cfg["c_in"] // cfg["groups"]) * cfg["K"] * 10
    rtol, atol = ref.tolerances(np.float64, red)
    # in the input
    np.testing.assert_allclose(conv1d(a * x + c * x2, w, **kw),
                               a * conv1d(x, w, **kw) + c * conv1d(x2, w, **kw),
                               rtol=rtol, atol=atol)
    # in the weight
    np.testing.assert_allclose(conv1d(x, a * w + c * w2, **kw),
                               a * conv1d(x, w, **kw) + c * conv1d(x, w2, **kw),
                               rtol=rtol, atol=atol)
    # the bias is added once per output
    y = conv1d(x, w, **kw)
    np.testing.assert_allclose(conv1d(x, w, b, **kw), y + b[:, None], rtol=rtol, atol=atol)


@PROPERTY_SETTINGS
@given(cfg=conv_configs())
def test_property_adjoint(cfg):
    """<conv(x, w), g> == <x, grad_input(g)> == <w, grad_weight(g)>; <1*b, g> == <b, grad_bias>."""
    rng, x, w, b = _arrays(cfg)
    kw = _kw(cfg)
    y = conv1d(x, w, **kw)
    g = rng.standard_normal(y.shape)
    gi, gw, gb = conv1d_backward(g, x, w, **kw)
    lhs = float(np.vdot(y, g))
    scale = float(np.vdot(np.abs(y), np.abs(g))) + 1.0
    for rhs in (float(np.vdot(x, gi)), float(np.vdot(w, gw))):
        assert abs(lhs - rhs) <= 1e-11 * scale, (lhs, rhs)
    by = conv1d(x, w, b, **kw) - y
    assert abs(float(np.vdot(by, g)) - float(np.vdot(b, gb))) <= 1e-11 * scale


@PROPERTY_SETTINGS
@given(cfg=conv_configs(), dtype=st.sampled_from(DTYPES))
def test_property_matches_reference(cfg, dtype):
    _, x, w, b = _arrays(cfg, dtype)
    kw = _kw(cfg)
    y = conv1d(x, w, b, **kw)
    red = (cfg["c_in"] // cfg["groups"]) * cfg["K"]
    ref.assert_close(y, ref.conv_forward(x, w, b, **kw), dtype, red, "output")
    g = np.random.default_rng(cfg["seed"] + 1).standard_normal(y.shape).astype(dtype)
    got = conv1d_backward(g, x, w, **kw)
    n_out = y.shape[-1] * (cfg["N"] or 1)
    for name, a, e, r in zip(["grad_input", "grad_weight", "grad_bias"], got,
                             ref.conv_backward(g, x, w, **kw),
                             [(cfg["c_out"] // cfg["groups"]) * cfg["K"], n_out, n_out]):
        ref.assert_close(a, e, dtype, r, name)


# --------------------------------------------------------------------------------------------
# Determinism across thread counts and batch splits.
# --------------------------------------------------------------------------------------------

THREAD_CONFIGS = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding="same", dilation=2, groups=1),
    dict(stride=3, padding="causal", dilation=3, groups=4),
    dict(stride=1, padding=(4, 1), dilation=1, groups=16),      # depthwise
]


def _all_results(x, w, b, g, kw, num_threads, algorithm=None):
    y = conv1d(x, w, b, **kw, num_threads=num_threads, **_alg(algorithm))
    return (y,) + tuple(conv1d_backward(g, x, w, **kw, num_threads=num_threads,
                                        **_alg(algorithm)))


@pytest.mark.parametrize("integer", [True, False], ids=["integer-valued", "random"])
@pytest.mark.parametrize("kw", THREAD_CONFIGS, ids=lambda kw: "-".join(map(str, kw.values())))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bitwise_identical_across_thread_counts(dtype, kw, integer):
    rng = _rng("threads", dtype, kw, integer)
    N, C, L, K = 5, 16, 300, 5
    x = _make(rng, (N, C, L), dtype, integer=integer)
    w = _make(rng, (C, C // kw["groups"], K), dtype, integer=integer)
    b = _make(rng, (C,), dtype, integer=integer)
    y_shape = ref.output_shape(x.shape, w.shape, kw["stride"], kw["padding"], kw["dilation"])
    g = _make(rng, y_shape, dtype, integer=integer)
    names = ["output"] + GRAD_NAMES
    if integer:
        expected = (ref.conv_forward(x, w, b, **kw),) + ref.conv_backward(g, x, w, **kw)
    for algorithm in ALGORITHMS:
        base = _all_results(x, w, b, g, kw, 1, algorithm)
        for nt in THREAD_COUNTS[1:] + [None]:
            for name, a, e in zip(names, _all_results(x, w, b, g, kw, nt, algorithm), base):
                assert a.dtype == e.dtype == np.dtype(dtype), (name, nt, algorithm)
                assert np.array_equal(a, e), \
                    f"{name} differs between num_threads=1 and {nt} (algorithm={algorithm!r})"
        if integer and algorithm not in ("fft", "winograd"):
            # integer-valued data make every float sum exact: demand exact equality with the
            # reference too (the FFT and Winograd's transforms round: they are exempt)
            for name, a, e in zip(names, base, expected):
                assert np.array_equal(a, e), \
                    f"{name} is not exact for integer-valued data (algorithm={algorithm!r})"


@pytest.mark.parametrize("kw", [
    dict(stride=1, padding="same", dilation=1, groups=1),
    dict(stride=2, padding="causal", dilation=2, groups=2),
    dict(stride=3, padding=(5, 2), dilation=1, groups=1)],
    ids=lambda kw: "-".join(map(str, kw.values())))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_large_shapes_against_reference(dtype, kw):
    """Shapes big enough for blocked/chunked code paths (a long reduction C_in/groups*K = 576
    or 288, many outputs, several samples): the reference, and bitwise thread invariance."""
    rng = _rng("large", dtype, kw)
    N, c_in, c_out, L, K = 3, 64, 16, 701, 9
    x = _make(rng, (N, c_in, L), dtype)
    w = _make(rng, (c_out, c_in // kw["groups"], K), dtype)
    b = _make(rng, (c_out,), dtype)
    expected_y = ref.conv_forward(x, w, b, **kw)
    g = _make(rng, expected_y.shape, dtype)
    expected = (expected_y,) + ref.conv_backward(g, x, w, **kw)
    reductions = [c_in // kw["groups"] * K, c_out // kw["groups"] * K,
                  N * expected_y.shape[-1], N * expected_y.shape[-1]]
    for algorithm in ALGORITHMS:
        base = _all_results(x, w, b, g, kw, 1, algorithm)
        for name, a, e, red in zip(["output"] + GRAD_NAMES, base, expected, reductions):
            assert a.dtype == np.dtype(dtype)
            ref.assert_close(a, e, dtype, red, f"{name} (algorithm={algorithm!r})")
        for nt in (2, 3):
            for name, a, e in zip(["output"] + GRAD_NAMES,
                                  _all_results(x, w, b, g, kw, nt, algorithm), base):
                assert np.array_equal(a, e), \
                    f"{name} differs between num_threads=1 and {nt} (algorithm={algorithm!r})"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bitwise_identical_threads_small_and_odd_shapes(dtype):
    """More threads than work items (N=1, C_out=1, short L) must still agree bitwise."""
    rng = _rng("threads-small", dtype)
    for N, c_in, c_out, L, K, kw in [
            (1, 1, 1, 7, 3, dict()), (3, 2, 1, 50, 4, dict(padding="same", stride=2)),
            (1, 3, 3, 2, 5, dict(padding="causal", groups=3)), (7, 1, 2, 33, 2, dict())]:
        x = rng.standard_normal((N, c_in, L)).astype(dtype)
        w = rng.standard_normal((c_out, c_in // kw.get("groups", 1), K)).astype(dtype)
        y = conv1d(x, w, **kw, num_threads=1)
        g = rng.standard_normal(y.shape).astype(dtype)
        for algorithm in ALGORITHMS:
            base = _all_results(x, w, None, g, kw, 1, algorithm)
            for nt in [2, 3, 4, 8, 16]:
                for a, e in zip(_all_results(x, w, None, g, kw, nt, algorithm), base):
                    assert a.dtype == e.dtype and np.array_equal(a, e), \
                        (N, c_in, L, kw, nt, algorithm)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=conv_configs(min_batch=1), dtype=st.sampled_from(DTYPES),
       nt=st.sampled_from(THREAD_COUNTS[1:]), scale=st.integers(1, 6),
       algorithm=st.sampled_from(ALGORITHMS))
def test_property_thread_count_invariance(cfg, dtype, nt, scale, algorithm):
    """Random valid configurations, more channels and samples: bitwise equal for any nt."""
    cfg = dict(cfg, N=None if cfg["N"] is None else cfg["N"] * 2, c_in=cfg["c_in"] * scale,
               c_out=cfg["c_out"] * scale, L=cfg["L"] * 4)
    rng, x, w, b = _arrays(cfg, dtype)
    kw = _kw(cfg)
    y = conv1d(x, w, b, **kw, num_threads=1)
    g = rng.standard_normal(y.shape).astype(dtype)
    base = _all_results(x, w, b, g, kw, 1, algorithm)
    got = _all_results(x, w, b, g, kw, nt, algorithm)
    for name, a, e in zip(["output"] + GRAD_NAMES, got, base):
        assert a.dtype == e.dtype == np.dtype(dtype), name
        assert np.array_equal(a, e), f"{name} differs between num_threads=1 and {nt}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_batch_splits_exact_for_integer_data(dtype):
    """Splitting the batch changes nothing (exact for integer-valued data): the forward and
    input gradient per sample, and the weight/bias gradients as sums over the pieces."""
    rng = _rng("split", dtype)
    kw = dict(stride=2, padding="same", dilation=2, groups=2)
    x = _make(rng, (6, 8, 120), dtype, integer=True)
    w = _make(rng, (6, 4, 5), dtype, integer=True)
    b = _make(rng, (6,), dtype, integer=True)
    y = conv1d(x, w, b, **kw)
    g = _make(rng, y.shape, dtype, integer=True)
    gi, gw, gb = conv1d_backward(g, x, w, **kw)
    gw_sum, gb_sum = np.zeros_like(gw), np.zeros_like(gb)
    for lo, hi in [(0, 1), (1, 4), (4, 6)]:
        np.testing.assert_array_equal(conv1d(x[lo:hi], w, b, **kw), y[lo:hi])
        p = conv1d_backward(g[lo:hi], x[lo:hi], w, **kw)
        np.testing.assert_array_equal(p.grad_input, gi[lo:hi])
        gw_sum += p.grad_weight
        gb_sum += p.grad_bias
    np.testing.assert_array_equal(gw_sum, gw)
    np.testing.assert_array_equal(gb_sum, gb)
    # unbatched == batch of one
    np.testing.assert_array_equal(conv1d(x[2], w, b, **kw), y[2])
    u = conv1d_backward(g[2], x[2], w, **kw)
    one = conv1d_backward(g[2:3], x[2:3], w, **kw)
    np.testing.assert_array_equal(u.grad_input, one.grad_input[0])
    np.testing.assert_array_equal(u.grad_weight, one.grad_weight)
    np.testing.assert_array_equal(u.grad_bias, one.grad_bias)


def test_openmp_enabled_is_bool():
    assert isinstance(pyconv1d.openmp_enabled(), bool)


# --------------------------------------------------------------------------------------------
# Array-likes, layouts, empty batches, unbatched inputs.
# --------------------------------------------------------------------------------------------

def _layouts(a):
    """(name, array-like) variants of ``a`` holding the same values."""
    ro = a.copy()
    ro.setflags(write=False)
    rev = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    yield "contiguous", a
    yield "fortran", np.asfortranarray(a)
    yield "readonly", ro
    yield "reversed-view", rev
    if a.ndim >= 2:
        big = np.zeros(a.shape[:-1] + (3 * a.shape[-1],), dtype=a.dtype)
        big[..., 1::3] = a
        yield "strided", big[..., 1::3]
        t = np.ascontiguousarray(np.swapaxes(a, 0, -1))
        yield "transposed", np.swapaxes(t, 0, -1)
    yield "list", a.tolist()
    yield "tuple", tuple(map(tuple, a)) if a.ndim == 2 else tuple(a.tolist())


@pytest.mark.parametrize("which", ["input", "weight", "bias", "grad_output"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_any_layout_works(dtype, which):
    rng = _rng("layout", dtype, which)
    kw = dict(stride=2, padding=(2, 1), dilation=2, groups=2)
    x = rng.standard_normal((3, 4, 17)).astype(dtype)
    w = rng.standard_normal((6, 2, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    y = conv1d(x, w, b, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    grads = conv1d_backward(g, x, w, **kw)
    arrays = dict(input=x, weight=w, bias=b, grad_output=g)
    for name, variant in _layouts(arrays[which]):
        if name in ("list", "tuple") and dtype == np.float32:
            continue  # a list of Python floats is float64 and would not match float32 peers
        args = dict(arrays, **{which: variant})
        before = np.array(variant, copy=True)
        y2 = conv1d(args["input"], args["weight"], args["bias"], **kw)
        assert np.array_equal(y2, y) and y2.dtype == y.dtype, name
        got = conv1d_backward(args["grad_output"], args["input"], args["weight"], **kw)
        for a, e in zip(got, grads):
            assert np.array_equal(a, e) and a.dtype == e.dtype, name
        np.testing.assert_array_equal(np.asarray(variant), before)   # inputs not modified


def test_inputs_not_modified():
    rng = _rng("nomod")
    x = rng.standard_normal((2, 4, 12))
    w = rng.standard_normal((6, 4, 3))
    b = rng.standard_normal(6)
    g = rng.standard_normal((2, 6, 12))
    copies = [a.copy() for a in (x, w, b, g)]
    conv1d(x, w, b, padding="same")
    conv1d_backward(g, x, w, padding="same")
    for a, c in zip((x, w, b, g), copies):
        np.testing.assert_array_equal(a, c)


def test_list_inputs_everywhere():
    x = [[[1.0, 2.0, 3.0, 4.0]]]
    w = [[[1.0, -1.0]]]
    y = conv1d(x, w, [0.5])
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[[-0.5, -0.5, -0.5]]])
    gi, gw, gb = conv1d_backward([[[1.0, 1.0, 1.0]]], x, w)
    np.testing.assert_array_equal(gi, [[[1.0, 0.0, 0.0, -1.0]]])
    np.testing.assert_array_equal(gw, [[[6.0, 9.0]]])
    np.testing.assert_array_equal(gb, [3.0])


@pytest.mark.parametrize("padding", ["valid", "same", "causal", 3], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_empty_batch(dtype, padding):
    x = np.zeros((0, 4, 10), dtype=dtype)
    w = np.ones((6, 2, 3), dtype=dtype)
    b = np.ones(6, dtype=dtype)
    L_out = ref.output_shape((1, 4, 10), w.shape, 2, padding, 1)[-1]
    y = conv1d(x, w, b, stride=2, padding=padding, groups=2)
    assert y.shape == (0, 6, L_out) and y.dtype == np.dtype(dtype)
    gi, gw, gb = conv1d_backward(np.zeros((0, 6, L_out), dtype=dtype), x, w, stride=2,
                                 padding=padding, groups=2)
    assert gi.shape == (0, 4, 10) and gi.dtype == np.dtype(dtype)
    assert gw.shape == w.shape and gw.dtype == np.dtype(dtype)
    assert gb.shape == (6,) and gb.dtype == np.dtype(dtype)
    assert not gw.any() and not gb.any()
    for nt in (1, 3):
        assert conv1d(x, w, b, stride=2, padding=padding, groups=2, num_threads=nt).shape == \
            y.shape


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_unbatched(dtype):
    rng = _rng("unbatched", dtype)
    x = rng.standard_normal((4, 15)).astype(dtype)
    w = rng.standard_normal((6, 2, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    kw = dict(stride=2, padding="same", dilation=2, groups=2)
    y = conv1d(x, w, b, **kw)
    assert y.shape == (6, 8) and y.dtype == np.dtype(dtype)
    ref.assert_close(y, ref.conv_forward(x, w, b, **kw), dtype, 6, "output")
    g = rng.standard_normal(y.shape).astype(dtype)
    gi, gw, gb = conv1d_backward(g, x, w, **kw)
    assert gi.shape == x.shape and gw.shape == w.shape and gb.shape == (6,)
    for name, a, e, r in zip(["grad_input", "grad_weight", "grad_bias"], (gi, gw, gb),
                             ref.conv_backward(g, x, w, **kw), [9, 8, 8]):
        ref.assert_close(a, e, dtype, r, name)


def test_huge_stride_is_fine():
    """A stride far beyond the input just gives one output (no overflow)."""
    x = np.arange(10.0).reshape(1, 1, 10)
    w = np.ones((1, 1, 3))
    for stride in (11, 2 ** 31, 2 ** 62):
        y = conv1d(x, w, stride=stride)
        np.testing.assert_array_equal(y, [[[3.0]]])
        gi, gw, gb = conv1d_backward(np.ones((1, 1, 1)), x, w, stride=stride)
        np.testing.assert_array_equal(gi, [[[1, 1, 1] + [0] * 7]])
        np.testing.assert_array_equal(gw, [[[0.0, 1.0, 2.0]]])
    # beyond 64 bits: either the same single output or a ValueError naming stride
    for stride in (2 ** 64, 2 ** 70):
        try:
            y = conv1d(x, w, stride=stride)
        except ValueError as exc:
            assert "stride" in str(exc)
        else:
            np.testing.assert_array_equal(y, [[[3.0]]])


def test_numpy_integer_arguments_accepted():
    x = np.ones((1, 2, 10))
    w = np.ones((2, 1, 3))
    y = conv1d(x, w, stride=np.int64(2), padding=np.int32(1), dilation=np.int16(2),
               groups=np.int64(2), num_threads=np.int64(2))
    np.testing.assert_array_equal(y, conv1d(x, w, stride=2, padding=1, dilation=2, groups=2))


# --------------------------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------------------------

def _base():
    rng = _rng("errors")
    return dict(input=rng.standard_normal((2, 4, 10)), weight=rng.standard_normal((6, 4, 3)),
                bias=rng.standard_normal(6), stride=1, padding=0, dilation=1, groups=1)


def _call(fn, **overrides):
    a = _base()
    a.update(overrides)
    if fn == "forward":
        return conv1d(a["input"], a["weight"], a["bias"], a["stride"], a["padding"],
                      a["dilation"], a["groups"], **a.get("extra", {}))
    # grad_output of the shape the (valid) base call would produce, unless overridden
    g = a.get("grad_output", np.ones((2, 6, 8)))
    return conv1d_backward(g, a["input"], a["weight"], a["stride"], a["padding"],
                           a["dilation"], a["groups"], **a.get("extra", {}))


# (id, overrides, exception(s), regex naming the argument, repr of the value that must appear
#  in the message or None, which functions)
BAD_INPUTS = [
    ("input-1d", dict(input=np.ones(10)), ValueError, "input", None, "both"),
    ("input-4d", dict(input=np.ones((1, 2, 4, 10))), ValueError, "input", None, "both"),
    ("input-0d", dict(input=np.float64(1.0)), ValueError, "input", None, "both"),
    ("weight-2d", dict(weight=np.ones((6, 4))), ValueError, "weight", None, "both"),
    ("weight-4d", dict(weight=np.ones((6, 4, 3, 1))), ValueError, "weight", None, "both"),
    ("bias-2d", dict(bias=np.ones((6, 1))), ValueError, "bias", None, "forward"),
    ("bias-length", dict(bias=np.ones(5)), ValueError, "bias", None, "forward"),
    ("channel-mismatch", dict(weight=np.ones((6, 3, 3))), ValueError,
     r"(?i)channel|weight|input", None, "both"),
    ("channel-mismatch-groups", dict(weight=np.ones((6, 4, 3)), groups=2), ValueError,
     r"(?i)channel|weight|input|groups", None, "both"),
    ("groups-not-dividing-in", dict(weight=np.ones((6, 1, 3)), groups=3), ValueError,
     "groups", "3", "both"),
    ("groups-not-dividing-out", dict(weight=np.ones((6, 1, 3)), groups=4), ValueError,
     "groups", "4", "both"),
    ("groups-0", dict(groups=0), ValueError, "groups", "0", "both"),
    ("groups-negative", dict(groups=-1), ValueError, "groups", "-1", "both"),
    ("groups-float", dict(groups=1.5), (TypeError, ValueError), "groups", "1.5", "both"),
    ("groups-bool", dict(groups=True), (TypeError, ValueError), "groups", "True", "both"),
    ("stride-0", dict(stride=0), ValueError, "stride", "0", "both"),
    ("stride-negative", dict(stride=-2), ValueError, "stride", "-2", "both"),
    ("stride-float", dict(stride=1.5), (TypeError, ValueError), "stride", "1.5", "both"),
    ("stride-bool", dict(stride=True), (TypeError, ValueError), "stride", "True", "both"),
    ("stride-str", dict(stride="2"), (TypeError, ValueError), "stride", "'2'", "both"),
    ("stride-none", dict(stride=None), (TypeError, ValueError), "stride", "None", "both"),
    ("dilation-0", dict(dilation=0), ValueError, "dilation", "0", "both"),
    ("dilation-negative", dict(dilation=-1), ValueError, "dilation", "-1", "both"),
    ("dilation-float", dict(dilation=1.5), (TypeError, ValueError), "dilation", "1.5", "both"),
    ("dilation-bool", dict(dilation=True), (TypeError, ValueError), "dilation", "True",
     "both"),
    ("padding-negative", dict(padding=-1), ValueError, "padding", "-1", "both"),
    ("padding-pair-negative", dict(padding=(1, -1)), ValueError, "padding", "-1", "both"),
    ("padding-triple", dict(padding=(1, 2, 3)), ValueError, "padding", None, "both"),
    ("padding-single-tuple", dict(padding=(1,)), ValueError, "padding", None, "both"),
    ("padding-unknown-string", dict(padding="full"), ValueError, "padding", "'full'", "both"),
    ("padding-empty-string", dict(padding=""), ValueError, "padding", None, "both"),
    ("padding-float", dict(padding=1.5), (TypeError, ValueError), "padding", "1.5", "both"),
    ("padding-pair-float", dict(padding=(1, 0.5)), (TypeError, ValueError), "padding", None,
     "both"),
    ("padding-none", dict(padding=None), (TypeError, ValueError), "padding", None, "both"),
    ("input-shorter-than-kernel", dict(weight=np.ones((6, 4, 12))), ValueError,
     r"(?i)input|kernel|length|short", None, "both"),
    ("input-shorter-than-dilated-kernel", dict(dilation=5), ValueError,
     r"(?i)input|kernel|length|short|dilat", None, "both"),
    ("input-shorter-with-stride", dict(weight=np.ones((6, 4, 9)), padding=(0, 0),
                                       input=np.ones((2, 4, 8))),
     ValueError, r"(?i)input|kernel|length|short", None, "both"),
    ("empty-kernel", dict(weight=np.ones((6, 4, 0))), ValueError, r"(?i)weight|kernel", None,
     "both"),
    ("empty-kernel-same", dict(weight=np.ones((6, 4, 0)), padding="same"), ValueError,
     r"(?i)weight|kernel", None, "both"),
    ("zero-out-channels", dict(weight=np.ones((0, 4, 3)), bias=None), ValueError,
     r"(?i)weight|channel", None, "both"),
    ("zero-in-channels", dict(input=np.ones((2, 0, 10)), weight=np.ones((6, 0, 3))),
     ValueError, r"(?i)weight|input|channel", None, "both"),
    ("input-int", dict(input=np.ones((2, 4, 10), dtype=np.int64)), TypeError, "input", None,
     "both"),
    ("input-int-list", dict(input=[[[1, 2, 3, 4, 5]] * 4] * 2), TypeError, "input", None,
     "both"),
    ("weight-int", dict(weight=np.ones((6, 4, 3), dtype=np.int32)), TypeError, "weight",
     None, "both"),
    ("bias-int", dict(bias=np.ones(6, dtype=np.int64)), TypeError, "bias", None, "forward"),
    ("input-bool", dict(input=np.ones((2, 4, 10), dtype=bool)), TypeError, "input", None,
     "both"),
    ("input-float16", dict(input=np.ones((2, 4, 10), dtype=np.float16)), TypeError, "input",
     None, "both"),
    ("input-longdouble", dict(input=np.ones((2, 4, 10), dtype=np.longdouble)), TypeError,
     "input", None, "both"),
    ("input-complex", dict(input=np.ones((2, 4, 10), dtype=np.complex128)), TypeError,
     "input", None, "both"),
    ("weight-complex", dict(weight=np.ones((6, 4, 3), dtype=np.complex64)), TypeError,
     "weight", None, "both"),
    ("input-object", dict(input=np.ones((2, 4, 10)).astype(object)), TypeError, "input",
     None, "both"),
    ("input-ragged", dict(input=[[[1.0, 2.0], [1.0]]]), TypeError, "input", None, "both"),
    ("input-strings", dict(input=np.full((2, 4, 10), "a")), TypeError, "input", None, "both"),
    ("input-string", dict(input="abc"), TypeError, "input", None, "both"),
    ("input-none", dict(input=None), TypeError, "input", None, "both"),
    ("weight-none", dict(weight=None), TypeError, "weight", None, "both"),
    ("dtype-mismatch-weight", dict(weight=np.ones((6, 4, 3), dtype=np.float32)), TypeError,
     r"(?i)weight|dtype", None, "both"),
    ("dtype-mismatch-input", dict(input=np.ones((2, 4, 10), dtype=np.float32)), TypeError,
     r"(?i)weight|input|dtype", None, "both"),
    ("dtype-mismatch-bias", dict(bias=np.ones(6, dtype=np.float32)), TypeError, "bias", None,
     "forward"),
    ("num-threads-0", dict(extra=dict(num_threads=0)), ValueError, "num_threads", "0", "both"),
    ("num-threads-negative", dict(extra=dict(num_threads=-1)), ValueError, "num_threads",
     "-1", "both"),
    ("num-threads-float", dict(extra=dict(num_threads=1.5)), (TypeError, ValueError),
     "num_threads", "1.5", "both"),
    ("num-threads-str", dict(extra=dict(num_threads="2")), (TypeError, ValueError),
     "num_threads", None, "both"),
    ("padding-2pow62", dict(padding=2 ** 62), ValueError, r"(?i)padding|large|memory|output",
     None, "both"),
    ("padding-pair-2pow62", dict(padding=(0, 2 ** 62)), ValueError,
     r"(?i)padding|large|memory|output", None, "both"),
    ("padding-2pow63", dict(padding=2 ** 63), ValueError, r"(?i)padding|large|memory|output",
     None, "both"),
    ("padding-2pow100", dict(padding=2 ** 100), ValueError,
     r"(?i)padding|large|memory|output", None, "both"),
    ("padding-2pow35", dict(padding=2 ** 35), ValueError,            # terabytes of output
     r"(?i)padding|large|memory|output", None, "both"),
    ("dilation-2pow62", dict(dilation=2 ** 62), ValueError, r"(?i)dilation|kernel|input|large",
     None, "both"),
    ("dilation-2**62-padded", dict(dilation=2 ** 62, padding="causal"), ValueError,
     r"(?i)dilation|kernel|input|large|padding|memory", None, "both"),
    ("dilation-2**70-same", dict(dilation=2 ** 70, padding="same"), ValueError,
     r"(?i)dilation|kernel|input|large|padding|memory", None, "both"),
]


BAD_INPUT_PARAMS = [pytest.param(fn, *case[1:5], id=f"{fn}-{case[0]}")
                    for fn in ("forward", "backward") for case in BAD_INPUTS
                    if fn == "forward" or case[5] == "both"]


@pytest.mark.parametrize("fn,overrides,exc,pattern,value", BAD_INPUT_PARAMS)
def test_bad_input_raises(fn, overrides, exc, pattern, value):
    if fn == "backward" and "bias" not in overrides:
        overrides = dict(overrides, bias=None)
    with pytest.raises(exc, match=pattern) as info:
        _call(fn, **overrides)
    if value is not None:
        assert value in str(info.value), f"message does not show the value {value}: " \
            f"{info.value}"


@pytest.mark.parametrize("grad_output,exc,value", [
    (np.ones((2, 6, 7)), ValueError, None),               # wrong length
    (np.ones((2, 5, 8)), ValueError, None),               # wrong channels
    (np.ones((3, 6, 8)), ValueError, None),               # wrong batch
    (np.ones((6, 8)), ValueError, None),                  # unbatched for a batched input
    (np.ones((1, 2, 6, 8)), ValueError, None),            # 4-D
    (np.ones((2, 6, 8), dtype=np.float32), TypeError, None),
    (np.ones((2, 6, 8), dtype=np.int64), TypeError, None),
    (np.ones((2, 6, 8), dtype=np.complex128), TypeError, None),
    (None, TypeError, None),
    ("abc", TypeError, None),
], ids=["length", "channels", "batch", "unbatched", "4d", "float32", "int", "complex", "none",
        "str"])
def test_bad_grad_output(grad_output, exc, value):
    with pytest.raises(exc, match="grad_output"):
        _call("backward", grad_output=grad_output, bias=None)


def test_bad_grad_output_unbatched():
    x, w = np.ones((4, 10)), np.ones((6, 4, 3))
    conv1d_backward(np.ones((6, 8)), x, w)    # fine
    with pytest.raises(ValueError, match="grad_output"):
        conv1d_backward(np.ones((1, 6, 8)), x, w)


def test_error_message_examples():
    """The style guide's wording, loosely: the argument and the value received."""
    with pytest.raises(ValueError, match=r"stride.*\b0\b"):
        _call("forward", stride=0)
    with pytest.raises(ValueError, match=r"padding.*-1"):
        _call("forward", padding=-1)
    with pytest.raises(ValueError, match=r"groups.*3|3.*groups"):
        _call("forward", weight=np.ones((6, 1, 3)), groups=3)
    with pytest.raises(ValueError, match=r"num_threads.*\b0\b"):
        _call("forward", extra=dict(num_threads=0))


@pytest.mark.skipif(ALGORITHMS == [None], reason="no algorithm argument")
@pytest.mark.parametrize("algorithm", ["im2col", "", 1, "GEMM "])
def test_bad_algorithm(algorithm):
    x, w = np.ones((1, 2, 8)), np.ones((3, 2, 3))
    with pytest.raises((TypeError, ValueError), match="algorithm"):
        conv1d(x, w, algorithm=algorithm)
    with pytest.raises((TypeError, ValueError), match="algorithm"):
        conv1d_backward(np.ones((1, 3, 6)), x, w, algorithm=algorithm)
