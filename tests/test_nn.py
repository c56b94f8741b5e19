"""Tests for pyconv1d.nn: every layer's backward by central differences (float64), the torch
twins with copied weights (skipped without torch), Module mechanics (registration, state dicts,
train/eval, repr), bad input, and a small network that must learn a toy task needing
convolution.
"""
import collections
import doctest
import functools
import importlib
import importlib.util
import math
import pickle
import re
import warnings
import zlib

import numpy as np
import scipy.stats
import pytest

import pyconv1d
from pyconv1d import functional as F, nn, optim


def _rng(*parts):
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


@pytest.fixture(autouse=True)
def one_thread():
    """The kernels give bitwise the same results for every thread count (checked below), and
    the tiny calls here run much faster on one thread on a loaded machine."""
    before = nn.get_num_threads()
    nn.set_num_threads(1)
    yield
    nn.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# Central differences
# --------------------------------------------------------------------------------------------

def _sample(shape, rng, limit):
    idx = list(np.ndindex(shape))
    if len(idx) > limit:
        idx = [idx[i] for i in rng.choice(len(idx), limit, replace=False)]
    return idx


def _numerical(f, arr, idx, eps):
    out = []
    for i in idx:
        old = arr[i]
        arr[i] = old + eps
        fp = f()
        arr[i] = old - eps
        fm = f()
        arr[i] = old
        out.append((fp - fm) / (2 * eps))
    return np.array(out)


def check_gradients(layer, x, *, limit=40, eps=1e-6, rtol=1e-6, atol=1e-8, seed=0,
                    call=None):
    """layer.backward against central differences of sum(g * layer(x)), for the input and
    every parameter (at most ``limit`` sampled entries of each)."""
    rng = np.random.default_rng(seed)
    call = call or (lambda a: layer(a))
    y = call(x)
    g = rng.standard_normal(np.shape(y))
    layer.zero_grad()
    gx = layer.backward(g)
    grads = {name: p.grad.copy() for name, p in layer.named_parameters() if p.requires_grad}

    def f():
        return float(np.sum(g * call(x)))
    if gx is not None:
        assert gx.shape == x.shape and gx.dtype == x.dtype
        idx = _sample(x.shape, rng, limit)
        np.testing.assert_allclose([gx[i] for i in idx], _numerical(f, x, idx, eps),
                                   rtol=rtol, atol=atol, err_msg=f"{layer!r}: input")
    for name, p in layer.named_parameters():
        if not p.requires_grad:
            continue
        idx = _sample(p.shape, rng, limit)
        np.testing.assert_allclose([grads[name][i] for i in idx],
                                   _numerical(f, p.data, idx, eps), rtol=rtol, atol=atol,
                                   err_msg=f"{layer!r}: {name}")
    return gx


F64 = dict(dtype=np.float64)


def _x(*shape, seed="x"):
    return _rng(seed, shape).standard_normal(shape)


CONV1D_CASES = [
    dict(padding=0), dict(padding=2, stride=2), dict(padding="same"),
    dict(padding="same", kernel_size=4), dict(padding="causal", dilation=2),
    dict(padding="valid", stride=3, dilation=2), dict(padding=(2, 1), groups=2),
    dict(padding=1, bias=False), dict(padding=2, padding_mode="reflect"),
    dict(padding=2, padding_mode="replicate", stride=2),
    dict(padding=3, padding_mode="circular", dilation=2),
    dict(padding="same", padding_mode="reflect", kernel_size=4),
    dict(padding="causal", padding_mode="replicate"),
]


@pytest.mark.parametrize("kw", CONV1D_CASES, ids=str)
def test_conv1d_gradients(kw):
    kw = dict(kw)
    k = kw.pop("kernel_size", 3)
    conv = nn.Conv1d(4, 6, k, rng=1, **F64, **kw)
    check_gradients(conv, _x(2, 4, 11))


@pytest.mark.parametrize("kw", [
    dict(padding=1), dict(padding=(1, 2), stride=(2, 1)), dict(padding="same", dilation=(1, 2)),
    dict(padding=((0, 2), (1, 0)), groups=2), dict(padding=1, padding_mode="reflect"),
    dict(padding=(2, 1), padding_mode="circular"), dict(padding=1, padding_mode="replicate"),
], ids=str)
def test_conv2d_gradients(kw):
    conv = nn.Conv2d(4, 4, (3, 2), rng=2, **F64, **kw)
    check_gradients(conv, _x(2, 4, 6, 7))


@pytest.mark.parametrize("kw", [
    dict(), dict(stride=2, padding=1), dict(stride=2, padding=1, output_padding=1),
    dict(stride=3, dilation=2, groups=2), dict(stride=2, padding=(2, 0), bias=False),
    dict(dilation=3, output_padding=2),
], ids=str)
def test_conv_transpose1d_gradients(kw):
    conv = nn.ConvTranspose1d(4, 6, 3, rng=3, **F64, **kw)
    check_gradients(conv, _x(2, 4, 9))


def test_unbatched_conv_input():
    conv = nn.Conv1d(3, 5, 3, padding="same", padding_mode="reflect", rng=0, **F64)
    x = _x(3, 10)
    np.testing.assert_allclose(conv(x), conv(x[None])[0])
    check_gradients(conv, x)
    check_gradients(nn.Conv2d(2, 3, 3, padding=1, rng=0, **F64), _x(2, 5, 5))
    check_gradients(nn.ConvTranspose1d(3, 2, 3, stride=2, rng=0, **F64), _x(3, 6))


@pytest.mark.parametrize("layer,x", [
    (lambda: nn.Linear(5, 3, rng=0, **F64), (4, 5)),
    (lambda: nn.Linear(5, 3, bias=False, rng=0, **F64), (2, 3, 5)),
    (lambda: nn.Linear(5, 3, rng=0, **F64), (5,)),
    (lambda: nn.ReLU(), (3, 7)),
    (lambda: nn.LeakyReLU(0.2), (3, 7)),
    (lambda: nn.Tanh(), (3, 7)),
    (lambda: nn.Sigmoid(), (3, 7)),
    (lambda: nn.GELU(), (3, 7)),
    (lambda: nn.GELU("tanh"), (3, 7)),
    (lambda: nn.Softmax(dim=1), (3, 7)),
    (lambda: nn.Softmax(dim=-1), (2, 3, 4)),
    (lambda: nn.Softmax(dim=0), (5,)),
    (lambda: nn.LogSoftmax(dim=1), (3, 7)),
    (lambda: nn.LogSoftmax(dim=0), (2, 3, 4)),
    (lambda: nn.Flatten(), (2, 3, 4)),
    (lambda: nn.Flatten(0, 1), (2, 3, 4)),
    (lambda: nn.Permute(0, 2, 1), (2, 3, 4)),
    (lambda: nn.Transpose(1, 2), (2, 3, 4)),
    (lambda: nn.Identity(), (2, 3)),
    (lambda: nn.MaxPool1d(3, 2, 1), (2, 3, 10)),
    (lambda: nn.MaxPool1d(2, dilation=2, ceil_mode=True), (2, 3, 9)),
    (lambda: nn.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 10)),
    (lambda: nn.AdaptiveMaxPool1d(1), (2, 3, 10)),
    (lambda: nn.AdaptiveMaxPool1d(3), (2, 3, 10)),
    (lambda: nn.MaxPool2d(2, 1), (2, 2, 5, 6)),
    (lambda: nn.AvgPool2d((2, 3), 2, (1, 1), ceil_mode=True), (2, 2, 5, 6)),
    (lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 4, 5)),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 4, 5)),
    (lambda: nn.BatchNorm1d(3, **F64), (8, 3)),
    (lambda: nn.BatchNorm1d(3, affine=False, **F64), (4, 3, 5)),
    (lambda: nn.BatchNorm2d(3, **F64), (2, 3, 4, 4)),
    (lambda: nn.LayerNorm(6, **F64), (3, 6)),
    (lambda: nn.LayerNorm((4, 6), **F64), (2, 4, 6)),
    (lambda: nn.LayerNorm(6, elementwise_affine=False, **F64), (3, 6)),
    (lambda: nn.LayerNorm(6, bias=False, **F64), (3, 6)),
    (lambda: nn.Dropout(0.5).eval(), (3, 4)),
], ids=lambda v: repr(v()) if callable(v) else str(v))
def test_layer_gradients(layer, x):
    m = layer()
    for p in m.parameters():        # non-trivial affine parameters
        p.data[...] = _rng("p", p.shape).standard_normal(p.shape)
    check_gradients(m, _x(*x))


def _batchnorm_reference(x, w, b, g, eps=1e-5):
    """Training-mode forward and input/weight/bias gradients in float64, written out."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + eps)
    xhat = (x - mean) * invstd
    gxhat = g * w.reshape(shape)
    gx = invstd * (gxhat - gxhat.mean(axis=axes, keepdims=True)
                   - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
    return xhat * w.reshape(shape) + b.reshape(shape), gx, (g * xhat).sum(axis=axes), \
        g.sum(axis=axes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_kernels_match_reference_on_any_thread_count(dtype):
    """The batch-norm passes (per-plane float64 sums, the mean taken off before scaling)
    against the formulas in float64, on data whose mean is 2000 times its spread, from a
    sliced input, and bitwise the same on 1, 2 and 3 threads and OpenMP's default."""
    rng = np.random.default_rng(5)
    base = 1000 + 0.5 * rng.standard_normal((8, 3, 64, 50))
    x = base.astype(dtype)[:, :, :, 1:49]            # not contiguous
    assert x.size >= pyconv1d.functional.SERIAL_BELOW   # large enough for threads
    g = rng.standard_normal(x.shape).astype(dtype)
    w = rng.standard_normal(3).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    runs = []
    for threads in (1, 2, 3, None):
        nn.set_num_threads(threads)
        try:
            bn = nn.BatchNorm2d(3, dtype=dtype)
            bn.weight.data[...] = w
            bn.bias.data[...] = b
            y = bn(x)
            gx = bn.backward(g)
            runs.append((y, gx, bn.weight.grad, bn.bias.grad, bn.running_var))
        finally:
            nn.set_num_threads(None)
    for other in runs[1:]:
        for a, c in zip(runs[0], other):
            assert np.array_equal(a, c)
    ry, rgx, rgw, rgb = _batchnorm_reference(x, w, b, g)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(runs[0][0], ry, **tol)
    np.testing.assert_allclose(runs[0][1], rgx, **tol)
    np.testing.assert_allclose(runs[0][2], rgw, rtol=tol["rtol"], atol=tol["atol"] * 100)
    np.testing.assert_allclose(runs[0][3], rgb, rtol=tol["rtol"], atol=tol["atol"] * 100)


def test_batchnorm_empty_batch_without_running_stats():
    """Evaluation without running statistics normalises with the batch's: an empty batch has
    none, and gives an empty output and zero parameter gradients, with no warning."""
    bn = nn.BatchNorm2d(3, track_running_stats=False).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = bn(np.zeros((0, 3, 4, 4), np.float32))
        gx = bn.backward(np.zeros_like(y))
    assert y.shape == gx.shape == (0, 3, 4, 4)
    assert np.array_equal(bn.weight.grad, np.zeros(3)) and np.array_equal(bn.bias.grad,
                                                                         np.zeros(3))


def test_batchnorm_empty_batch_in_training_and_one_value_without_running_stats():
    """As torch 2.13: an empty batch in training gives an empty output, counts the batch and
    leaves the running statistics alone (it raised before); without running statistics, eval
    mode normalises with the batch's, so one value per channel is refused there too (it gave
    zeros)."""
    bn = nn.BatchNorm1d(3, momentum=None)
    y = bn(np.zeros((0, 3), np.float32))
    assert y.shape == (0, 3) and bn.backward(y).shape == (0, 3)
    assert int(bn.num_batches_tracked) == 1
    assert np.array_equal(bn.running_mean, np.zeros(3)) and np.array_equal(bn.running_var,
                                                                            np.ones(3))
    assert np.array_equal(bn.weight.grad, np.zeros(3))
    y = bn(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32))   # the next batch: f = 1/2
    np.testing.assert_allclose(bn.running_mean, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="more than 1 value per channel when using batch "
                                         "statistics"):
        nn.BatchNorm1d(3, track_running_stats=False).eval()(np.zeros((1, 3), np.float32))
    assert nn.BatchNorm1d(3).eval()(np.ones((1, 3), np.float32)).shape == (1, 3)


def test_one_backward_per_forward():
    """A second backward after one forward added its gradients into .grad again, silently
    (torch refuses it); the saved activations are released when a backward returns, so a
    pickled or copied model no longer carries them, and a backward that raises keeps them."""
    model = nn.Sequential(nn.Conv1d(4, 8, 3, rng=0), nn.ReLU(), nn.AdaptiveMaxPool1d(1),
                          nn.Flatten(), nn.Linear(8, 2, rng=1))
    x = _x(16, 4, 500).astype(np.float32)
    before = len(pickle.dumps(model))
    y = model(x)
    assert len(pickle.dumps(model)) > before + x.nbytes      # activations held until backward
    with pytest.raises(ValueError):
        model.backward(np.ones((16, 3), np.float32))          # the wrong shape: nothing released
    model.backward(np.ones_like(y))
    grad = model[0].weight.grad.copy()
    assert len(pickle.dumps(model)) < before + 4 * grad.nbytes + 4096
    with pytest.raises(RuntimeError, match=r"Linear\(.*\): backward called without a forward "
                                           r"before it \(each forward allows one backward\)"):
        model.backward(np.ones_like(y))
    np.testing.assert_array_equal(model[0].weight.grad, grad)
    model(x)
    model.backward(np.ones_like(y))                           # a new forward, a new backward
    np.testing.assert_allclose(model[0].weight.grad, 2 * grad, rtol=1e-6)


def test_state_dict_lists_every_path_and_loss_weights():
    """As torch: a module registered under two names is in the state dict under both (torch's
    checkpoint of such a model did not load: 'unexpected keys'), and the class weights of the
    losses are buffers."""
    class TwoNames(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(2, 2)
            self.head = self.enc
    assert list(TwoNames().state_dict()) == ["enc.weight", "enc.bias", "head.weight",
                                             "head.bias"]
    ce = nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert list(ce.state_dict()) == ["weight"] and list(nn.CrossEntropyLoss().state_dict()) == []
    ce.load_state_dict({"weight": np.array([3.0, 1.0])})
    assert ce(np.zeros((1, 2)), np.array([0])) == pytest.approx(math.log(2))
    assert list(nn.BCEWithLogitsLoss(weight=[1.0], pos_weight=[2.0]).state_dict()) == \
        ["weight", "pos_weight"]


@pytest.mark.parametrize("kind", ["Sequential", "ModuleList"])
def test_sequence_operations_as_a_python_list(kind):
    """Indexing, assignment, deletion, insert, extend, append and pop behave as on a Python
    list of the same modules, with the names renumbered 0, 1, ... as torch does."""
    make = getattr(nn, kind)
    mods = [nn.Linear(2, 2), nn.ReLU(), nn.Tanh(), nn.Identity(), nn.Sigmoid(), nn.GELU(),
            nn.LeakyReLU(), nn.Flatten()]
    seq = make(*mods[:4]) if kind == "Sequential" else make(mods[:4])
    ref = list(mods[:4])
    seq[1] = mods[4]; ref[1] = mods[4]
    seq[-1] = mods[1]; ref[-1] = mods[1]
    del seq[0]; del ref[0]
    seq.insert(1, mods[5]); ref.insert(1, mods[5])
    seq.insert(-1, mods[0]); ref.insert(-1, mods[0])
    seq.extend([mods[6], mods[7]]); ref.extend([mods[6], mods[7]])
    assert seq.pop(-1) is ref.pop(-1) and seq.pop(0) is ref.pop(0)
    del seq[1:3]; del ref[1:3]
    seq.append(mods[2]); ref.append(mods[2])
    assert list(seq) == ref and [seq[i] for i in range(-len(ref), len(ref))] == ref * 2
    assert list(dict(seq.named_children())) == [str(i) for i in range(len(ref))]
    assert list(seq[1:]) == ref[1:] and isinstance(seq[1:], make)
    with pytest.raises(IndexError, match=f"{kind} index 9 is out of range for {len(ref)} "
                                         f"modules"):
        seq[9]
    with pytest.raises(TypeError, match="indices must be integers or slices, got '1'"):
        seq["1"]
    with pytest.raises(TypeError, match="must be a Module, got int"):
        seq.append(3)
    assert list(seq) == ref                                      # a refused change, no change
    if importlib.util.find_spec("torch") is not None:
        import torch
        t = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
        t.insert(0, torch.nn.Tanh())
        del t[1]
        ours = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        ours.insert(0, nn.Tanh())
        del ours[1]
        assert [(k, type(v).__name__) for k, v in t._modules.items()] == \
            [(k, type(v).__name__) for k, v in ours._modules.items()]


def test_sequential_changes_keep_each_module_called_once():
    a, b = nn.Linear(2, 2), nn.ReLU()
    seq = nn.Sequential(a, b)
    for change in (lambda: seq.append(a), lambda: seq.insert(0, b), lambda: seq.extend([b]),
                   lambda: seq.__setitem__(1, a)):
        with pytest.raises(ValueError, match="called twice"):
            change()
        assert list(seq) == [a, b]
    blocks = nn.ModuleList([a, a])                 # a list is not called: sharing is allowed
    assert len(blocks) == 2 and len(list(blocks.parameters())) == 2
    with pytest.raises(TypeError, match="ModuleList takes an iterable of modules"):
        nn.ModuleList(a)


def _dtype_model(dtype):
    return nn.Sequential(nn.Conv1d(3, 4, 3, rng=0, dtype=dtype), nn.BatchNorm1d(4, dtype=dtype),
                         nn.ReLU(), nn.Permute(0, 2, 1), nn.LayerNorm(4, dtype=dtype),
                         nn.LayerNorm(4, elementwise_affine=False, dtype=dtype),
                         nn.Flatten(), nn.Linear(4 * 8, 2, rng=1, dtype=dtype))


def test_to_converts_a_model_as_one_built_with_that_dtype():
    """Converting p.data by hand left BatchNorm and LayerNorm expecting the old dtype (and a
    float32 input through a LayerNorm came out float64); .to/.double/.float convert the
    parameters, buffers and the layers' dtype: the same bits as a model built in float64
    that loads the same state."""
    model = _dtype_model(np.float32)
    x = _x(5, 3, 10)
    model(x.astype(np.float32))                               # running statistics
    model.backward(np.ones((5, 2), np.float32))               # gradients, converted too
    assert model.double() is model
    want = _dtype_model(np.float64)
    want.load_state_dict(model.state_dict())
    for m in (model, want):
        m.zero_grad()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64     # integer buffers stay
    y, y_want = model(x), want(x)
    np.testing.assert_array_equal(y, y_want)
    np.testing.assert_array_equal(model.backward(np.ones_like(y)), want.backward(np.ones_like(y)))
    for p, q in zip(model.parameters(), want.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
    assert model.float() is model and model(x.astype(np.float32)).dtype == np.float32
    with pytest.raises(TypeError, match="input dtype float64 does not match"):
        model(x)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        model.to(np.int32)
    for bad in (None, "f4x"):        # numpy reads None as float64; 'f4x' is no dtype at all
        with pytest.raises(TypeError, match=f"dtype must be float32 or float64, got {bad!r}"):
            nn.Conv1d(2, 2, 3, dtype=bad)


def test_softmax_of_an_empty_axis_and_cross_entropy_ignored_rows():
    for layer in (nn.Softmax(dim=1), nn.LogSoftmax(dim=1)):
        y = layer(np.zeros((3, 0)))
        assert y.shape == (3, 0) and layer.backward(y).shape == (3, 0)
    loss = nn.CrossEntropyLoss(weight=np.array([0.0, 1.0, 2.0]), ignore_index=-1)
    loss(_x(3, 3), np.array([0, -1, 0]))
    g = loss.backward()
    assert np.isnan(g[[0, 2]]).all() and (g[1] == 0).all()   # torch: ignored rows stay 0


def test_softmax_layers():
    """Rows sum to one even for huge logits; without dim, torch's implicit choice with a
    warning; a dim out of range names it."""
    x = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    y = nn.Softmax(dim=1)(x)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    m = x.max(axis=1, keepdims=True)
    np.testing.assert_allclose(nn.LogSoftmax(dim=1)(x),
                               x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True)))
    assert nn.Softmax(dim=1)(x.astype(np.float32)).dtype == np.float32
    with pytest.warns(UserWarning, match="implicit choice .* is dim=1"):
        np.testing.assert_array_equal(nn.Softmax()(x), y)
    with pytest.raises(ValueError, match=r"Softmax\(dim=2\): dim must be in \[-2, 2\)"):
        nn.Softmax(dim=2)(x)
    with pytest.raises(TypeError, match="dim must be an int, got 1.0"):
        nn.Softmax(dim=1.0)


def test_module_dict_and_get_submodule():
    a, b = nn.Linear(2, 3), nn.ReLU()
    d = nn.ModuleDict({"a": a})
    d["b"] = b
    d.update([("c", nn.Tanh())])
    assert list(d) == d.keys() == ["a", "b", "c"] and d.values()[:2] == [a, b]
    assert "b" in d and len(d) == 3 and d.pop("c").__class__ is nn.Tanh and len(d) == 2
    assert list(d.state_dict()) == ["a.weight", "a.bias"]
    with pytest.raises(KeyError, match="ModuleDict has no module 'z'"):
        d["z"]
    with pytest.raises(KeyError, match="module name must be non-empty and without '.'"):
        d["x.y"] = b
    for clash in ("_modules", "training", "keys", "forward"):   # as torch: not free names
        with pytest.raises(KeyError, match=f"attribute '{clash}' already exists"):
            d[clash] = nn.ReLU()
    assert list(nn.ModuleDict(d)) == ["a", "b"]
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        nn.Sequential(collections.OrderedDict([("training", nn.ReLU())]))
    with pytest.raises(TypeError, match="add_module: 'q' must be a Module or None, got int"):
        d["q"] = 3
    model = nn.Module()
    model.body = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    model.heads = d
    assert model.get_submodule("body.1.1") is model.body[1][1]
    assert model.get_submodule("") is model and model.get_submodule("heads.a") is a
    with pytest.raises(AttributeError, match=r"Sequential body.1 has no sub-module '5'"):
        model.get_submodule("body.1.5")


def test_apply_and_requires_grad():
    """apply visits children before their parent (torch's order); requires_grad_ freezes."""
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]
    assert model[1].requires_grad_(False) is model[1]
    assert [p.requires_grad for p in model.parameters()] == [True, True, False, False]
    y = model(np.ones((4, 2), np.float32))
    model.backward(np.ones_like(y))
    assert model[1][1].weight.grad is None and model[0].weight.grad is not None
    with pytest.raises(TypeError, match="requires_grad must be a bool, got 0"):
        model.requires_grad_(0)
    with pytest.raises(TypeError, match="fn must be callable"):
        model.apply(3)


def test_backward_release_with_subclasses_mixins_and_containers():
    """The values are released by the outermost backward only (a subclass may read them after
    super().backward()); a backward from a mixin is wrapped too; Concat checks grad_output
    before any branch adds into .grad, so a corrected call works."""
    x = _x(4, 3)

    class Norming(nn.Linear):
        def backward(self, g):
            gx = super().backward(g)
            self.seen = float(np.linalg.norm(self._saved("_x")))
            return gx
    m = Norming(3, 2, rng=0, **F64)
    m(x)
    m.backward(np.ones((4, 2)))
    assert m.seen == pytest.approx(np.linalg.norm(x))
    with pytest.raises(RuntimeError, match="each forward allows one backward"):
        m.backward(np.ones((4, 2)))

    class Mixin:
        def backward(self, g):
            return g * self._saved("_x")

    class Scale(Mixin, nn.Module):
        def forward(self, v):
            self._x = v
            return v * v / 2
    sc = Scale()
    sc(x)
    np.testing.assert_array_equal(sc.backward(np.ones_like(x)), x)
    with pytest.raises(RuntimeError, match="each forward allows one backward"):
        sc.backward(np.ones_like(x))
    assert "_x" not in sc.__dict__ and "_taken" not in sc.__dict__

    a, b = nn.Linear(3, 2, rng=1, **F64), nn.Linear(3, 2, rng=2, **F64)
    cat = nn.Concat(a, b, dim=-1)
    cat(x)
    with pytest.raises(ValueError, match=r"shape of the last forward's output \(4, 4\)"):
        cat.backward(np.ones((4, 5)))
    assert a.weight.grad is None and b.weight.grad is None
    assert cat.backward(np.ones((4, 4))).shape == x.shape


def test_backward_without_the_input_gradient(monkeypatch):
    """backward(g, input_grad=False) gives the parameters the gradients of backward(g), bit for
    bit, and returns None; convolutions and Linear skip the input gradient's product, a
    Sequential tells its first module only, Concat every branch, and a module whose backward
    does not declare the keyword computes as before."""
    rng = np.random.default_rng(0)
    masks = []
    real = F.conv1d_backward

    def spy(*args, **kw):
        masks.append(tuple(kw["output_mask"]))
        return real(*args, **kw)
    monkeypatch.setattr(nn.Conv1d, "_conv_backward", staticmethod(spy))
    cases = [
        (lambda: nn.Conv1d(3, 4, 3, padding=1, rng=0, **F64), (2, 3, 9)),
        (lambda: nn.Conv1d(3, 4, 3, padding=1, padding_mode="reflect", rng=0, **F64),
         (2, 3, 9)),
        (lambda: nn.Conv2d(2, 3, 3, rng=0, **F64), (2, 2, 5, 6)),
        (lambda: nn.ConvTranspose1d(3, 2, 4, stride=2, rng=0, **F64), (2, 3, 7)),
        (lambda: nn.Linear(5, 3, rng=0, **F64), (4, 5)),
        (lambda: nn.Sequential(nn.Conv1d(3, 4, 3, rng=0, **F64), nn.ReLU(),
                               nn.Conv1d(4, 2, 1, rng=1, **F64)), (2, 3, 8)),
        (lambda: nn.Concat(nn.Linear(5, 2, rng=0, **F64), nn.Linear(5, 3, rng=1, **F64),
                           dim=-1), (4, 5)),
        (lambda: nn.BatchNorm1d(3, **F64), (4, 3, 5)),     # declares nothing: computes it
    ]
    for make, shape in cases:
        x = rng.standard_normal(shape)
        ref, lean = make(), make()
        y = ref(x)
        g = rng.standard_normal(y.shape)
        assert ref.backward(g).shape == x.shape
        np.testing.assert_array_equal(lean(x), y)
        del masks[:]
        assert lean.backward(g, input_grad=False) is None
        for (name, p), q in zip(ref.named_parameters(), lean.parameters()):
            np.testing.assert_array_equal(q.grad, p.grad, err_msg=name)
        if isinstance(lean, nn.Sequential):
            assert masks == [(True, True, True), (False, True, True)]   # the first one last
        elif isinstance(lean, nn.Conv1d):
            assert masks == [(False, True, True)]
        with pytest.raises(RuntimeError, match="each forward allows one backward"):
            lean.backward(g, input_grad=False)

    seen = []

    class Probe(nn.Module):
        def forward(self, v):
            return v

        def backward(self, g, input_grad=True):
            seen.append(input_grad)
            return g if input_grad else None
    seq = nn.Sequential(Probe(), Probe(), Probe())
    seq(np.ones(3))
    assert seq.backward(np.ones(3), input_grad=False) is None
    assert seen == [True, True, False]
    seq(np.ones(3))
    np.testing.assert_array_equal(seq.backward(np.ones(3)), np.ones(3))
    assert seen[3:] == [True, True, True]
    assert nn.Sequential()(np.ones(2)) is not None
    lin = nn.Linear(2, 2, rng=0)
    lin(np.ones((1, 2), np.float32))
    for bad in (1, "no", None):
        with pytest.raises(TypeError, match="input_grad must be a bool"):
            lin.backward(np.ones((1, 2), np.float32), input_grad=bad)
    assert lin.backward(np.ones((1, 2), np.float32), input_grad=np.False_) is None

    # a decorated backward is judged by the decorator's own signature (functools.wraps points
    # to one that declares input_grad); a backward assigned after the class statement is not
    # wrapped, and a Sequential calls it without the keyword unless it says False
    def logged(f):
        @functools.wraps(f)
        def w(self, g):
            return f(self, g)
        return w

    class Scale(nn.Module):
        def forward(self, v):
            return 2 * v

        @logged
        def backward(self, g, input_grad=True):
            return 2 * g
    sc = Scale()
    sc(np.ones(2))
    np.testing.assert_array_equal(sc.backward(np.ones(2)), [2, 2])
    sc(np.ones(2))
    assert sc.backward(np.ones(2), input_grad=False) is None

    class Late(nn.Module):
        def forward(self, v):
            return v
    Late.backward = lambda self, g: g
    seq = nn.Sequential(Late(), Scale(), Late())
    seq(np.ones(2))
    np.testing.assert_array_equal(seq.backward(np.ones(2)), [2, 2])


def test_called_once_is_checked_again_at_forward():
    """A duplicate made inside a nested container after the outer one was built (checked
    then only against the inner one) is refused when the outer one runs."""
    lin = nn.Linear(2, 2)
    inner = nn.Sequential(nn.ReLU())
    outer = nn.Sequential(lin, inner)
    inner.append(lin)
    with pytest.raises(ValueError, match=r"is called twice \(as '0' and '1.1'\)"):
        outer(np.ones((1, 2), np.float32))


def test_containers_refuse_a_module_called_twice():
    """Sequential(lin, Tanh(), lin) computed lin's weight gradient from its second input for
    both calls (off by 2.3 on a scale of 3.8 against torch); a shared activation likewise.
    Containers now refuse it; tying weights by sharing a Parameter gives torch's gradients."""
    lin, act = nn.Linear(3, 3, **F64), nn.Tanh()
    with pytest.raises(ValueError, match=r"Linear\(.*\) is called twice \(as '0' and '2'\)"):
        nn.Sequential(lin, nn.Tanh(), lin)
    with pytest.raises(ValueError, match=r"Tanh\(\) is called twice \(as '1' and '3'\)"):
        nn.Sequential(nn.Linear(3, 3), act, nn.Linear(3, 3), act)
    with pytest.raises(ValueError, match=r"as '0.0' and '1.1.0'"):
        nn.Sequential(nn.Sequential(lin), nn.Concat(nn.Identity(), nn.Sequential(lin)))
    with pytest.raises(ValueError, match="called twice"):
        nn.Concat(lin, lin)
    seq = nn.Sequential(lin)
    with pytest.raises(ValueError, match="called twice"):
        seq.append(lin)
    assert len(seq) == 1                                   # the refused module is not kept
    # tied weights: two layers, one Parameter
    a, b = nn.Linear(3, 3, rng=0, **F64), nn.Linear(3, 3, **F64)
    b.weight, b.bias = a.weight, a.bias
    model = nn.Sequential(a, nn.Tanh(), b)
    x = _x(4, 3)
    y = model(x)
    model.backward(np.ones_like(y))
    h = np.tanh(x @ a.weight.data.T + a.bias.data)
    g_h = (np.ones_like(y) @ a.weight.data) * (1 - h ** 2)  # through b, then tanh
    want = np.ones_like(y).T @ h + g_h.T @ x               # both uses of the shared weight
    np.testing.assert_allclose(a.weight.grad, want, rtol=1e-12)


def test_batchnorm_eval_gradients():
    for bn, shape in ((nn.BatchNorm1d(3, **F64), (4, 3, 5)), (nn.BatchNorm2d(2, **F64),
                                                              (2, 2, 3, 3))):
        bn(_x(*shape, seed="warm"))          # some running statistics
        bn.eval()
        check_gradients(bn, _x(*shape))


def test_adaptive_max_pool_with_lengths_gradient():
    pool = nn.AdaptiveMaxPool1d(1)
    lengths = np.array([10, 4])
    x = _x(2, 3, 10)
    x[1, :, 4:] = 50.0                        # padding that must not win
    gx = check_gradients(pool, x, call=lambda a: pool(a, lengths=lengths))
    assert not gx[1, :, 4:].any()
    np.testing.assert_array_equal(pool(x, lengths=lengths)[1, :, 0], x[1, :, :4].max(axis=1))


def test_embedding_gradient():
    emb = nn.Embedding(7, 4, padding_idx=0, rng=0, **F64)
    idx = np.array([[1, 2, 2, 0], [6, 1, 0, 0]])
    y = emb(idx)
    g = _rng("emb").standard_normal(y.shape)
    assert emb.backward(g) is None
    expected = np.zeros((7, 4))
    for i, j in np.ndindex(idx.shape):
        expected[idx[i, j]] += g[i, j]
    expected[0] = 0                               # padding row: no gradient
    np.testing.assert_allclose(emb.weight.grad, expected)
    assert not emb.weight.data[0].any()
    frozen = nn.Embedding.from_pretrained(_x(5, 3), freeze=True)
    frozen(np.array([1, 2]))
    frozen.backward(np.ones((2, 3)))
    assert frozen.weight.grad is None and not frozen.weight.requires_grad
    trainable = nn.Embedding.from_pretrained(_x(5, 3), freeze=False, padding_idx=4)
    trainable(np.array([1, 4]))
    trainable.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(trainable.weight.grad.sum(axis=1), [0, 3, 0, 0, 0])
    assert trainable.weight.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_embedding_gradient_has_the_bits_of_np_add_at(threads, dtype):
    # 2,000 tokens x 40 dims (past the one-thread size) drawn from a 300-row table, so rows
    # repeat many times and split between threads; int32 indices; a second backward adds in
    rng = _rng("emb-bits", dtype)
    emb = nn.Embedding(300, 40, padding_idx=7, rng=0, dtype=dtype)
    idx = rng.integers(0, 300, (50, 40)).astype(np.int32)
    g1, g2 = (rng.standard_normal((50, 40, 40)).astype(dtype) for _ in range(2))
    nn.set_num_threads(threads)
    emb(idx)
    emb.backward(g1)
    first = emb.weight.grad.copy()
    emb(idx)
    emb.backward(g2)
    want = np.zeros((300, 40), dtype)
    np.add.at(want, idx.reshape(-1), g1.reshape(-1, 40))
    want[7] = 0
    np.testing.assert_array_equal(first, want)
    second = np.zeros((300, 40), dtype)
    np.add.at(second, idx.reshape(-1), g2.reshape(-1, 40))
    second[7] = 0
    np.testing.assert_array_equal(emb.weight.grad, want + second)
    assert emb.weight.grad.dtype == dtype
    emb(np.zeros((0, 3), np.int64))
    emb.backward(np.zeros((0, 3, 40), dtype))                  # empty input: adds zeros
    np.testing.assert_array_equal(emb.weight.grad, want + second)


def test_embedding_backward_uses_the_indices_of_its_forward():
    # a batch buffer reused (changed) between forward and backward does not change the gradient
    emb = nn.Embedding(5, 2, rng=0)
    batch = np.array([1, 2, 3])
    emb(batch)
    batch[:2] = (-1, 7)
    emb.backward(np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(emb.weight.grad.sum(axis=1), [0, 2, 2, 2, 0])


def test_dropout_train_gradient_uses_the_same_mask():
    drop = nn.Dropout(0.3, rng=0)
    x = _x(50, 40) + 5
    y = drop(x)
    mask = y / x
    assert set(np.unique(np.round(mask, 12))) <= {0.0, round(1 / 0.7, 12)}
    assert 0.2 < (mask == 0).mean() < 0.4
    g = _x(50, 40, seed="g")
    np.testing.assert_allclose(drop.backward(g), g * mask)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), 0)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)


def test_containers_gradients():
    seq = nn.Sequential(nn.Conv1d(3, 4, 3, padding="same", rng=0, **F64), nn.Tanh(),
                        nn.MaxPool1d(2), nn.Conv1d(4, 2, 2, rng=1, **F64), nn.Flatten(),
                        nn.Linear(8, 3, rng=2, **F64))
    check_gradients(seq, _x(2, 3, 10))
    branches = [nn.Sequential(nn.Conv1d(3, 2, k, rng=k, **F64), nn.ReLU(),
                              nn.AdaptiveMaxPool1d(1)) for k in (2, 3, 4)]
    kim = nn.Sequential(nn.Permute(0, 2, 1), nn.Concat(*branches), nn.Flatten(),
                        nn.Linear(6, 2, rng=5, **F64))
    check_gradients(kim, _x(2, 9, 3))
    cat_last = nn.Concat(nn.Linear(3, 2, rng=0, **F64), nn.Identity(), dim=-1)
    assert cat_last(_x(4, 3)).shape == (4, 5)
    check_gradients(cat_last, _x(4, 3))


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------

def check_loss_gradient(loss_fn, x, target, reduction="mean"):
    value = loss_fn(x, target)
    g = None if reduction != "none" else _rng("lg").standard_normal(np.shape(value))
    gx = loss_fn.backward(g)
    weights = 1.0 if g is None else g

    def f():
        return float(np.sum(weights * loss_fn(x, target)))
    idx = _sample(x.shape, np.random.default_rng(0), 60)
    np.testing.assert_allclose([gx[i] for i in idx], _numerical(f, x, idx, 1e-6), rtol=1e-6,
                               atol=1e-9)
    assert gx.shape == x.shape and gx.dtype == x.dtype


@pytest.mark.parametrize("kw", [
    dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.2),
    dict(weight=[0.5, 2.0, 1.0, 0.1]), dict(weight=[0.5, 2.0, 1.0, 0.1], label_smoothing=0.3),
    dict(ignore_index=2), dict(ignore_index=2, reduction="none", label_smoothing=0.1),
    dict(weight=[1.0, 3.0, 0.5, 2.0], ignore_index=1, reduction="sum", label_smoothing=0.5),
], ids=str)
def test_cross_entropy_gradients(kw):
    loss_fn = nn.CrossEntropyLoss(**kw)
    rng = _rng("ce", str(kw))
    x = rng.standard_normal((6, 4)) * 3
    t = rng.integers(0, 4, 6)
    check_loss_gradient(loss_fn, x, t, kw.get("reduction", "mean"))
    xk = rng.standard_normal((2, 4, 3, 2))           # K-dimensional: (N, C, d1, d2)
    tk = rng.integers(0, 4, (2, 3, 2))
    check_loss_gradient(loss_fn, xk, tk, kw.get("reduction", "mean"))
    check_loss_gradient(loss_fn, rng.standard_normal(4), np.array(3),
                        kw.get("reduction", "mean"))


def test_cross_entropy_is_stable_for_huge_logits():
    loss_fn = nn.CrossEntropyLoss()
    x = np.array([[1e4, 0.0, -1e4]], np.float32)
    assert loss_fn(x, np.array([0])) == 0.0
    assert loss_fn(x, np.array([1])) == pytest.approx(1e4)
    assert np.isfinite(loss_fn.backward()).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_bce_gradients(reduction):
    rng = _rng("mse", reduction)
    x, t = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    check_loss_gradient(nn.MSELoss(reduction), x, t, reduction)
    y = (rng.random((3, 5)) > 0.5).astype(np.float64)
    check_loss_gradient(nn.BCEWithLogitsLoss(reduction=reduction), x * 4, y, reduction)
    bce = nn.BCEWithLogitsLoss(weight=rng.random(5), reduction=reduction,
                               pos_weight=rng.random(5) * 3)
    check_loss_gradient(bce, x * 4, y, reduction)
    assert np.isfinite(nn.BCEWithLogitsLoss()(np.array([1e4, -1e4]), np.array([0.0, 1.0])))


# --------------------------------------------------------------------------------------------
# Against the torch twins (skipped without torch)
# --------------------------------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch")


def _copy_to_torch(ours, theirs):
    torch = _torch()
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            ours.state_dict().items()}, strict=True)


def _same_repr(ours, theirs):
    """Our repr is torch's (2.13), less the dtype. Older torch (2.11 on the lent machine)
    prints the norm layers without their ``bias=``: compare without it there."""
    mine, want = repr(ours).replace(", dtype=float64", ""), repr(theirs)
    if "bias=" not in want:
        mine = re.sub(r", bias=(True|False)", "", mine)
    return mine == want


def _tol(dtype):
    return dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def compare_with_torch(ours, theirs, x, dtype, *, steps=1, call=None, tcall=None):
    """Same weights; compare outputs, input gradients and parameter gradients (``steps``
    forward/backward passes: running statistics too)."""
    torch = _torch()
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    _copy_to_torch(ours, theirs)
    call = call or (lambda m, a: m(a))
    tcall = tcall or (lambda m, a: m(a))
    rng = _rng("twin", repr(ours))
    for _ in range(steps):
        xs = x.astype(dtype)
        y = call(ours, xs)
        g = rng.standard_normal(y.shape).astype(dtype)
        ours.zero_grad()
        gx = ours.backward(g)
        xt = torch.tensor(xs, requires_grad=True)
        theirs.zero_grad()
        yt = tcall(theirs, xt)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y, yt.detach().numpy(), **_tol(dtype), err_msg=repr(ours))
        np.testing.assert_allclose(gx, xt.grad.numpy(), **_tol(dtype), err_msg=repr(ours))
        tparams = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), **_tol(dtype),
                                       err_msg=f"{ours!r}: {name}")
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs.state_dict()[name].numpy(), **_tol(dtype),
                                   err_msg=f"{ours!r}: {name}")


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_layers_match_torch(dtype):
    torch = _torch()
    tnn = torch.nn
    cases = [dict(padding=1), dict(padding="same", kernel_size=4), dict(padding="valid"),
             dict(padding=2, stride=2, dilation=2, groups=2), dict(padding=1, bias=False),
             dict(padding=2, padding_mode="reflect"), dict(padding=3, padding_mode="circular"),
             dict(padding=2, padding_mode="replicate", stride=2),
             dict(padding="same", padding_mode="reflect")]
    for kw in cases:
        kw = dict(kw)
        k = kw.pop("kernel_size", 3)
        ours = nn.Conv1d(4, 6, k, dtype=dtype, rng=0, **kw)
        theirs = tnn.Conv1d(4, 6, k, **kw)
        assert _same_repr(ours, theirs)
        compare_with_torch(ours, theirs, _x(3, 4, 17), dtype)
    for kw in [dict(padding=1), dict(padding=(1, 2), stride=(2, 1)), dict(padding="same"),
               dict(padding=1, padding_mode="reflect", groups=2),
               dict(padding=(2, 1), padding_mode="circular", dilation=(1, 2))]:
        ours = nn.Conv2d(4, 6, (3, 2), dtype=dtype, rng=0, **kw)
        theirs = tnn.Conv2d(4, 6, (3, 2), **kw)
        assert _same_repr(ours, theirs)
        compare_with_torch(ours, theirs, _x(2, 4, 9, 8), dtype)
    for kw in [dict(), dict(stride=2, padding=1, output_padding=1),
               dict(stride=3, dilation=2, groups=2, padding=2), dict(bias=False, stride=2),
               dict(stride=2, output_padding=1), dict(stride=3, padding=1, output_padding=2)]:
        ours = nn.ConvTranspose1d(4, 6, 3, dtype=dtype, rng=0, **kw)
        theirs = tnn.ConvTranspose1d(4, 6, 3, **kw)
        assert _same_repr(ours, theirs)
        compare_with_torch(ours, theirs, _x(3, 4, 11), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_other_layers_match_torch(dtype):
    torch = _torch()
    tnn = torch.nn
    pairs = [
        (nn.Linear(5, 3, dtype=dtype), tnn.Linear(5, 3), (2, 4, 5)),
        (nn.Linear(5, 3, bias=False, dtype=dtype), tnn.Linear(5, 3, bias=False), (4, 5)),
        (nn.MaxPool1d(3, 2, 1), tnn.MaxPool1d(3, 2, 1), (2, 3, 12)),
        (nn.MaxPool1d(2, dilation=2, ceil_mode=True),
         tnn.MaxPool1d(2, dilation=2, ceil_mode=True), (2, 3, 11)),
        (nn.AvgPool1d(3, 2, 1, count_include_pad=False),
         tnn.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 12)),
        (nn.AdaptiveMaxPool1d(1), tnn.AdaptiveMaxPool1d(1), (2, 3, 12)),
        (nn.MaxPool2d(3, 2, 1), tnn.MaxPool2d(3, 2, 1), (2, 3, 9, 8)),
        (nn.AvgPool2d(2, ceil_mode=True), tnn.AvgPool2d(2, ceil_mode=True), (2, 3, 9, 8)),
        (nn.AdaptiveAvgPool2d(1), tnn.AdaptiveAvgPool2d(1), (2, 3, 9, 8)),
        (nn.LayerNorm(6, dtype=dtype), tnn.LayerNorm(6), (3, 4, 6)),
        (nn.LayerNorm((4, 6), dtype=dtype), tnn.LayerNorm((4, 6)), (3, 4, 6)),
        (nn.GELU(), tnn.GELU(), (3, 5)), (nn.GELU("tanh"), tnn.GELU("tanh"), (3, 5)),
        (nn.LeakyReLU(0.1), tnn.LeakyReLU(0.1), (3, 5)), (nn.Sigmoid(), tnn.Sigmoid(), (3, 5)),
        (nn.Tanh(), tnn.Tanh(), (3, 5)), (nn.ReLU(), tnn.ReLU(), (3, 5)),
        (nn.Flatten(), tnn.Flatten(), (2, 3, 4)),
        (nn.Softmax(dim=1), tnn.Softmax(dim=1), (3, 5)),
        (nn.Softmax(dim=-1), tnn.Softmax(dim=-1), (2, 3, 4)),
        (nn.LogSoftmax(dim=1), tnn.LogSoftmax(dim=1), (2, 3, 4)),
    ]
    for ours, theirs, shape in pairs:
        assert _same_repr(ours, theirs), (repr(ours), repr(theirs))
        for p in ours.parameters():
            p.data[...] = _rng("affine", p.shape).standard_normal(p.shape)
        compare_with_torch(ours, theirs, _x(*shape), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_matches_torch_in_train_and_eval(dtype):
    torch = _torch()
    tnn = torch.nn
    for ours, theirs, shape in [
            (nn.BatchNorm1d(3, dtype=dtype), tnn.BatchNorm1d(3), (8, 3)),
            (nn.BatchNorm1d(3, momentum=None, dtype=dtype), tnn.BatchNorm1d(3, momentum=None),
             (4, 3, 5)),
            (nn.BatchNorm2d(3, momentum=0.3, dtype=dtype), tnn.BatchNorm2d(3, momentum=0.3),
             (2, 3, 4, 5)),
            (nn.BatchNorm1d(3, affine=False, track_running_stats=False, dtype=dtype),
             tnn.BatchNorm1d(3, affine=False, track_running_stats=False), (5, 3, 2))]:
        assert _same_repr(ours, theirs), (repr(ours), repr(theirs))
        if ours.affine:
            ours.weight.data[...] = [0.5, 2.0, -1.0]
        compare_with_torch(ours, theirs, _x(*shape) * 3 + 1, dtype, steps=3)
        ours.eval()
        theirs.eval()
        compare_with_torch(ours, theirs, _x(*shape, seed="eval"), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_match_torch(dtype):
    torch = _torch()
    tnn = torch.nn
    rng = _rng("losses", dtype)
    x = rng.standard_normal((6, 4)).astype(dtype) * 3
    t = rng.integers(0, 4, 6)
    t[1] = 2
    xk = rng.standard_normal((2, 4, 3)).astype(dtype)
    tk = rng.integers(0, 4, (2, 3))
    w = np.array([0.5, 2.0, 1.0, 0.1])
    for kw in [dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.2),
               dict(weight=w), dict(weight=w, label_smoothing=0.3, ignore_index=2),
               dict(ignore_index=2, reduction="none", label_smoothing=0.1)]:
        tkw = dict(kw, weight=torch.tensor(w, dtype=torch.from_numpy(x).dtype)) \
            if "weight" in kw else kw
        for xi, ti in ((x, t), (xk, tk)):
            ours, theirs = nn.CrossEntropyLoss(**kw), tnn.CrossEntropyLoss(**tkw)
            _compare_loss(ours, theirs, xi, ti, torch.from_numpy(ti), dtype)
    y = rng.standard_normal((3, 5)).astype(dtype)
    for red in ("mean", "sum", "none"):
        _compare_loss(nn.MSELoss(red), tnn.MSELoss(reduction=red),
                      rng.standard_normal((3, 5)).astype(dtype), y, torch.from_numpy(y), dtype)
    labels = (rng.random((3, 5)) > 0.5).astype(dtype)
    bw, pw = rng.random(5).astype(dtype), (rng.random(5) * 3).astype(dtype)
    for kw in [dict(), dict(reduction="sum"), dict(weight=bw, pos_weight=pw),
               dict(weight=bw, reduction="none")]:
        tkw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        _compare_loss(nn.BCEWithLogitsLoss(**kw), tnn.BCEWithLogitsLoss(**tkw),
                      rng.standard_normal((3, 5)).astype(dtype) * 4, labels,
                      torch.from_numpy(labels), dtype)


def _compare_loss(ours, theirs, x, target, ttarget, dtype):
    torch = _torch()
    loss = ours(x, target)
    xt = torch.tensor(x, requires_grad=True)
    lt = theirs(xt, ttarget)
    g = None
    if ours.reduction == "none":
        g = _rng("lossg").standard_normal(lt.shape).astype(dtype)
        lt.backward(torch.from_numpy(g))
    else:
        lt.backward()
    np.testing.assert_allclose(loss, lt.detach().numpy(), **_tol(dtype), err_msg=repr(ours))
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), **_tol(dtype),
                               err_msg=repr(ours))


def test_embedding_matches_torch():
    torch = _torch()
    ours = nn.Embedding(10, 4, padding_idx=3, rng=0)
    theirs = torch.nn.Embedding(10, 4, padding_idx=3)
    _copy_to_torch(ours, theirs)
    idx = np.array([[1, 3, 3, 9], [9, 9, 0, 2]])
    y = ours(idx)
    g = _rng("embt").standard_normal(y.shape).astype(np.float32)
    ours.backward(g)
    yt = theirs(torch.from_numpy(idx))
    yt.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-6)
    assert _same_repr(ours, theirs)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5])
def test_embedding_max_norm_and_scale_grad_by_freq(norm_type):
    """max_norm rescales, in place, the looked-up rows whose norm passes it (torch's
    embedding_renorm_: by max_norm / (norm + 1e-7)), leaving the others; scale_grad_by_freq
    divides each row's gradient by its token's count in the batch: against numpy, and
    against torch 2.13 when it is installed."""
    ours = nn.Embedding(8, 5, padding_idx=6, max_norm=1.5, norm_type=norm_type,
                        scale_grad_by_freq=True, rng=1, **F64)
    w0 = ours.weight.data.copy()
    idx = np.array([[1, 3, 3, 7], [7, 7, 6, 2]])
    y = ours(idx)
    norms = np.linalg.norm(w0, ord=norm_type, axis=1)
    want = w0.copy()
    for r in np.unique(idx):
        if norms[r] > 1.5:
            want[r] *= 1.5 / (norms[r] + 1e-7)
    np.testing.assert_allclose(ours.weight.data, want, rtol=1e-15)
    assert np.array_equal(ours.weight.data[[0, 4, 5]], w0[[0, 4, 5]])   # not looked up
    np.testing.assert_array_equal(y, ours.weight.data[idx])
    g = _rng("embfreq").standard_normal(y.shape)
    ours.backward(g)
    counts = np.bincount(idx.ravel(), minlength=8)
    grad = np.zeros_like(w0)
    np.add.at(grad, idx.ravel(), g.reshape(-1, 5) / counts[idx.ravel(), None])
    grad[6] = 0                                                         # padding row
    np.testing.assert_allclose(ours.weight.grad, grad, rtol=1e-13)
    assert "max_norm=1.5" in repr(ours) and "scale_grad_by_freq=True" in repr(ours)
    if importlib.util.find_spec("torch") is not None:
        import torch
        theirs = torch.nn.Embedding(8, 5, padding_idx=6, max_norm=1.5, norm_type=norm_type,
                                    scale_grad_by_freq=True, dtype=torch.float64)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(w0))
        yt = theirs(torch.from_numpy(idx))
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-14)
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-13)
    with pytest.raises(ValueError, match=r"Embedding: max_norm must lie in \[0.0, None\]"):
        nn.Embedding(3, 2, max_norm=-1.0)
    with pytest.raises(TypeError, match=r"Embedding: sparse must be a bool"):
        nn.Embedding(3, 2, sparse="yes")


def test_non_persistent_buffers_stay_out_of_the_state_dict():
    """register_buffer(..., persistent=False), as torch's: a buffer of the module (listed by
    named_buffers) that state_dict leaves out and load_state_dict does not ask for."""
    m = nn.Linear(2, 3)
    m.register_buffer("mask", np.ones(3), persistent=False)
    m.register_buffer("count", np.zeros(1))
    assert [n for n, _ in m.named_buffers()] == ["mask", "count"]
    assert list(m.state_dict()) == ["weight", "bias", "count"]
    m.load_state_dict(nn.Linear(2, 3).state_dict() | {"count": np.ones(1)})
    assert m.count[0] == 1 and np.array_equal(m.mask, np.ones(3))
    m.register_buffer("mask", np.zeros(3))           # registered again: persistent
    assert "mask" in m.state_dict()
    with pytest.raises(TypeError, match=r"persistent must be a bool"):
        m.register_buffer("x", np.ones(1), persistent="no")


def test_initialisation_follows_torch():
    """PyTorch's bounds: U(+-1/sqrt(fan_in)) for weight and bias; fan_in from dims 1..."""
    for layer, fan_in in [(nn.Conv1d(8, 64, 5, groups=2, rng=0), 4 * 5),
                          (nn.Conv2d(3, 64, (3, 5), rng=0), 3 * 15),
                          (nn.ConvTranspose1d(64, 8, 4, rng=0), 8 * 4),
                          (nn.Linear(300, 100, rng=0), 300)]:
        bound = 1 / np.sqrt(fan_in)
        w, b = layer.weight.data, layer.bias.data
        assert w.dtype == np.float32 and np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.95 * bound and abs(w.std() - bound / np.sqrt(3)) < 0.1 * bound
        assert np.abs(b).max() <= bound
    emb = nn.Embedding(1000, 64, rng=0)
    assert abs(emb.weight.data.std() - 1) < 0.02
    bn = nn.BatchNorm1d(4)
    assert (bn.weight.data == 1).all() and (bn.bias.data == 0).all()


def test_normal_and_orthogonal_initialisers():
    """The spreads torch's formulas give, measured on large draws; truncation bounds; Q's
    orthogonality; the same draws for the same seed."""
    from pyconv1d.nn import init
    w = init.kaiming_normal_(np.empty((512, 64, 3)), mode="fan_in", nonlinearity="relu", rng=0)
    assert abs(w.std() / np.sqrt(2.0 / 192) - 1) < 0.01 and abs(w.mean()) < 0.002
    w = init.kaiming_normal_(np.empty((512, 64, 3)), a=0.2, mode="fan_out", rng=1)
    assert abs(w.std() / np.sqrt(2.0 / (1 + 0.04) / (512 * 3)) - 1) < 0.01
    w = init.xavier_normal_(np.empty((300, 200)), gain=2.0, rng=2)
    assert abs(w.std() / (2.0 * np.sqrt(2.0 / 500)) - 1) < 0.01
    p = nn.Parameter(np.empty((200, 300), np.float32))
    init.trunc_normal_(p, mean=0.1, std=0.5, a=-0.2, b=0.3, rng=3)
    assert p.data.dtype == np.float32 and p.data.min() >= -0.2 and p.data.max() <= 0.3
    ref = scipy.stats.truncnorm((-0.2 - 0.1) / 0.5, (0.3 - 0.1) / 0.5, loc=0.1, scale=0.5)
    assert abs(p.data.mean() - ref.mean()) < 0.002 and abs(p.data.std() / ref.std() - 1) < 0.01
    for shape in [(3, 5), (5, 3), (4, 2, 3), (6, 6)]:
        w = init.orthogonal_(np.empty(shape), gain=1.5, rng=4).reshape(shape[0], -1)
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        np.testing.assert_allclose(small, 2.25 * np.eye(min(w.shape)), atol=1e-12)
    np.testing.assert_array_equal(init.orthogonal_(np.empty((4, 4)), rng=5),
                                  init.orthogonal_(np.empty((4, 4)), rng=5))
    far = init.trunc_normal_(np.empty(20000), a=9.0, b=10.0, rng=6)   # 9-10 sd above
    tail = scipy.stats.truncnorm(9.0, 10.0)
    assert far.min() >= 9.0 and far.max() <= 10.0 and len(np.unique(far)) > 19000
    assert abs(far.mean() - tail.mean()) < 0.005
    with pytest.raises(ValueError, match="orthogonal_ needs at least 2 dimensions"):
        init.orthogonal_(np.empty(3))
    with pytest.raises(ValueError, match="needs std > 0 and a < b"):
        init.trunc_normal_(np.empty(3), a=1.0, b=0.0)


def test_seeded_initialisation_is_reproducible():
    nn.manual_seed(123)
    a = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Linear(3, 2)).state_dict()
    nn.manual_seed(123)
    b = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Linear(3, 2)).state_dict()
    c = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Linear(3, 2)).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])
    np.testing.assert_array_equal(nn.Conv1d(2, 3, 3, rng=7).weight.data,
                                  nn.Conv1d(2, 3, 3, rng=np.random.default_rng(7)).weight.data)


# --------------------------------------------------------------------------------------------
# Module mechanics
# --------------------------------------------------------------------------------------------

class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding="same", rng=0)
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3, rng=1)
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.not_a_param = 5

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(axis=2))


def test_registration_and_traversal():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight",
                     "fc.bias"]
    assert len(list(m.parameters())) == 7
    assert [n for n, _ in m.named_children()] == ["conv", "bn", "fc"]
    assert [n for n, _ in m.named_buffers()] == ["bn.running_mean", "bn.running_var",
                                                 "bn.num_batches_tracked"]
    assert m.not_a_param == 5
    with pytest.raises(AttributeError, match="'TwoLayer' object has no attribute 'nope'"):
        m.nope
    assert not hasattr(m, "nope")
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'scale'"):
        m.scale = np.zeros(1)
    m.scale = nn.Parameter(np.zeros(2, np.float32))         # replacing with a Parameter is fine
    assert m.scale.shape == (2,)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    seq = nn.Sequential(a, nn.ReLU(), b)
    assert len(list(seq.parameters())) == 3                 # a shared parameter once
    # a replaced parameter keeps its place, as in torch (it moved after the bias)
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    del m.fc
    assert "fc" not in dict(m.named_children())

    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))
    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Forgot()


def test_layers_are_bitwise_identical_for_every_thread_count():
    x = _x(8, 16, 300).astype(np.float32)
    results = []
    for threads in (1, 2, 3, None):
        nn.set_num_threads(threads)
        nn.manual_seed(0)
        model = nn.Sequential(nn.Conv1d(16, 32, 5, padding="same", padding_mode="reflect"),
                              nn.ReLU(), nn.MaxPool1d(3, 2, 1),
                              nn.ConvTranspose1d(32, 8, 4, stride=2, padding=1),
                              nn.AvgPool1d(2), nn.AdaptiveMaxPool1d(1), nn.Flatten())
        y = model(x)
        gx = model.backward(np.ones_like(y))
        results.append([y, gx] + [p.grad for p in model.parameters()])
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other))


def test_zero_grad_and_accumulation():
    lin = nn.Linear(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    lin(x)
    lin.backward(np.ones((4, 2), np.float32))
    first = lin.weight.grad.copy()
    lin(x)
    lin.backward(np.ones((4, 2), np.float32))
    np.testing.assert_allclose(lin.weight.grad, 2 * first)          # backward adds
    lin.zero_grad(set_to_none=False)
    assert (lin.weight.grad == 0).all()
    lin.zero_grad()
    assert lin.weight.grad is None
    with pytest.raises(RuntimeError, match="backward called without a forward before it"):
        nn.Linear(2, 2).backward(np.ones((1, 2)))


def test_state_dict_round_trip(tmp_path):
    a, b = TwoLayer(), TwoLayer()
    for p in b.parameters():
        p.data[...] = 0
    a.bn(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    sd = a.state_dict()
    assert list(sd) == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias",
                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                        "fc.weight", "fc.bias"]
    sd["fc.bias"][...] = 99                                          # a copy
    assert not (a.fc.bias.data == 99).any()
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    path = tmp_path / "model.npz"
    a.save(path)
    c = TwoLayer()
    assert c.load(path) is c
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(c.state_dict()[k], v)
    x = np.random.default_rng(1).standard_normal((2, 2, 5)).astype(np.float32)
    a.eval()
    c.eval()
    np.testing.assert_array_equal(a(x), c(x))
    d = nn.Sequential(nn.Linear(3, 2))
    d.save(str(tmp_path / "no_suffix"))
    assert (tmp_path / "no_suffix").exists()


def test_load_state_dict_errors_name_the_keys():
    m = TwoLayer()
    sd = m.state_dict()
    missing = dict(sd)
    del missing["fc.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['fc.bias'\]"):
        m.load_state_dict(missing)
    extra = dict(sd, **{"fc.gain": np.ones(3)})
    with pytest.raises(ValueError, match=r"unexpected keys \['fc.gain'\]"):
        m.load_state_dict(extra)
    bad = dict(sd, **{"conv.weight": np.zeros((4, 2, 5))})
    with pytest.raises(ValueError, match=r"conv.weight: expected shape \(4, 2, 3\), got "
                                         r"\(4, 2, 5\)"):
        m.load_state_dict(bad)
    before = m.conv.weight.data.copy()
    with pytest.raises(ValueError):
        m.load_state_dict(dict(bad, **{"fc.weight": np.zeros((3, 4))}))
    np.testing.assert_array_equal(m.conv.weight.data, before)       # nothing half-loaded
    result = m.load_state_dict(extra, strict=False)
    assert result.unexpected_keys == ["fc.gain"]
    with pytest.raises(TypeError, match="fc.bias"):
        m.load_state_dict(dict(sd, **{"fc.bias": np.array(["a", "b", "c"])}))


def test_train_eval_change_dropout_and_batchnorm():
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Dropout(0.5, rng=0))
    x = (np.random.default_rng(0).standard_normal((16, 3)) * 4 + 10).astype(np.float32)
    assert model.training and all(m.training for m in model.modules())
    y_train = model(x)
    assert (y_train == 0).mean() > 0.2                     # dropout active
    np.testing.assert_allclose(model[0](x).mean(axis=0), 0, atol=1e-5)   # batch statistics
    assert model[0].num_batches_tracked == 2
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    y_eval = model(x)
    assert (y_eval != 0).all()                             # dropout off
    rm, rv = model[0].running_mean, model[0].running_var
    np.testing.assert_allclose(y_eval, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-5)
    assert model[0].num_batches_tracked == 2               # eval does not update
    np.testing.assert_array_equal(model(x), y_eval)        # deterministic in eval
    model.train()
    assert all(m.training for m in model.modules())


def test_repr():
    model = nn.Sequential(nn.Conv1d(1, 8, 5, padding="same"), nn.ReLU(),
                          nn.Concat(nn.MaxPool1d(2), nn.AvgPool1d(2), dim=2),
                          nn.Dropout(0.2), nn.Flatten(), nn.Linear(8, 2, bias=False))
    assert repr(model) == """Sequential(
  (0): Conv1d(1, 8, kernel_size=(5,), stride=(1,), padding=same)
  (1): ReLU()
  (2): Concat(
    dim=2
    (0): MaxPool1d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    (1): AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))
  )
  (3): Dropout(p=0.2, inplace=False)
  (4): Flatten(start_dim=1, end_dim=-1)
  (5): Linear(in_features=8, out_features=2, bias=False)
)"""
    assert repr(nn.Conv1d(2, 4, 3, dtype=np.float64, padding_mode="circular", padding=1)) == \
        ("Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=(1,), padding_mode=circular, "
         "dtype=float64)")
    assert repr(nn.CrossEntropyLoss(label_smoothing=0.1)) == \
        "CrossEntropyLoss(label_smoothing=0.1)"


def test_sequential_indexing():
    seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    assert len(seq) == 3 and isinstance(seq[1], nn.Tanh)
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    seq.append(nn.Identity())
    assert [type(m).__name__ for m in seq] == ["ReLU", "Tanh", "Sigmoid", "Identity"]
    with pytest.raises(TypeError, match="Sequential: '0' must be a Module"):
        nn.Sequential(np.zeros(2))


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

def _forwarded(loss, x, target):
    """A loss after its forward pass, for backward's argument checks."""
    loss(x, target)
    return loss


def _read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("call,exc,match", [
    (lambda: nn.Conv1d(4, 8, 3)(np.zeros((2, 3, 10), np.float32)), ValueError,
     r"Conv1d\(4, 8, .*expected input of shape \(N, 4, L\) or \(4, L\) with 4 channels, got "
     r"shape \(2, 3, 10\)"),
    (lambda: nn.Conv1d(4, 8, 3)(np.zeros((2, 1, 4, 10), np.float32)), ValueError,
     r"got shape \(2, 1, 4, 10\)"),
    (lambda: nn.Conv1d(4, 8, 3)(np.zeros((2, 4, 10))), TypeError,
     "input dtype float64 does not match the layer's float32"),
    (lambda: nn.Conv1d(4, 8, 3)(np.zeros((2, 4, 10), np.int32)), TypeError, "float32 or float64"),
    (lambda: nn.Conv2d(3, 8, 3)(np.zeros((2, 3, 10), np.float32)), ValueError,
     r"Conv2d\(3, 8.*\(N, 3, H, W\)"),
    (lambda: nn.Conv1d(4, 8, 3, padding=3, padding_mode="reflect")(
        np.zeros((1, 4, 3), np.float32)), ValueError, "smaller than the input size"),
    (lambda: nn.Conv1d(4, 8, 3, groups=3), ValueError, "divisible by groups"),
    (lambda: nn.Conv1d(4, 8, 3, padding="full"), ValueError, "padding must be"),
    (lambda: nn.Conv1d(4, 8, 3, padding_mode="mirror"), ValueError, "padding_mode"),
    (lambda: nn.Conv1d(4, 8, 0), ValueError, "kernel_size"),
    (lambda: nn.Conv1d(4, 8, 3, dtype=np.int32), TypeError, "dtype"),
    (lambda: nn.ConvTranspose1d(4, 8, 3, stride=2, output_padding=2), ValueError,
     "output_padding"),
    (lambda: nn.Linear(4, 2)(np.zeros((3, 5), np.float32)), ValueError,
     r"Linear\(in_features=4.*expected input of shape \(\*, 4\), got shape \(3, 5\)"),
    (lambda: nn.Embedding(5, 2)(np.array([1.0, 2.0])), TypeError, "integer token indices"),
    (lambda: nn.Embedding(5, 2)(np.array([1, 5])), ValueError, r"\[0, 5\).*from 1 to 5"),
    (lambda: nn.Embedding(5, 2)(np.array([-1, 2])), ValueError, r"\[0, 5\)"),
    (lambda: nn.BatchNorm1d(3)(np.zeros((4, 2), np.float32)), ValueError,
     r"BatchNorm1d\(3.*\(N, 3\) or \(N, 3, L\) with 3 channels, got shape \(4, 2\)"),
    (lambda: nn.BatchNorm1d(3)(np.zeros((1, 3), np.float32)), ValueError,
     "more than 1 value per channel"),
    (lambda: nn.BatchNorm2d(3)(np.zeros((4, 3, 2), np.float32)), ValueError, r"\(N, 3, H, W\)"),
    (lambda: nn.LayerNorm(4)(np.zeros((3, 5), np.float32)), ValueError,
     r"LayerNorm.*\(\*, 4\), got shape \(3, 5\)"),
    (lambda: nn.MaxPool1d(3)(np.zeros((2, 2), np.float32)), ValueError,
     r"MaxPool1d.*too small"),
    (lambda: nn.MaxPool1d(3)(np.zeros((2, 3, 4, 5), np.float32)), ValueError,
     r"MaxPool1d.*\(N, C, L\)"),
    (lambda: nn.AdaptiveMaxPool1d(1)(np.zeros((2, 3, 5), np.float32), lengths=[5, 6]),
     ValueError, r"AdaptiveMaxPool1d.*lengths must lie in \[1, 5\]"),
    (lambda: nn.Dropout(1.5), ValueError, r"p must lie in \[0.0, 1.0\]"),
    (lambda: nn.Permute(0, 2)(np.zeros((2, 3, 4))), ValueError, "permutation"),
    (lambda: nn.Permute(0, 2, 1)(np.zeros((2, 3))), ValueError, "3 axes"),
    # an axis past the end is refused, not wrapped round to another (3 is not 1)
    (lambda: nn.Permute(0, 3), ValueError, r"permutation of 0..1 .*got \(0, 3\)"),
    (lambda: nn.Permute(2, 0, -4), ValueError, r"permutation of 0..2"),
    (lambda: nn.LayerNorm(()), ValueError, r"LayerNorm: normalized_shape must name at least"),
    (lambda: nn.Conv1d(1, 2, 3, padding_mode=[]), ValueError, r"padding_mode must be one of"),
    (lambda: nn.CrossEntropyLoss(weight=[[1.0], [1.0, 2.0]]), TypeError,
     r"CrossEntropyLoss: weight must be an array of real numbers"),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=[[1.0], [1.0, 2.0]]), TypeError,
     r"BCEWithLogitsLoss: pos_weight must be an array of real numbers"),
    (lambda: nn.LeakyReLU(float("nan")), ValueError, r"negative_slope must be a number, not NaN"),
    (lambda: nn.ReLU(inplace="yes"), TypeError, r"ReLU: inplace must be a bool"),
    # checked at construction, as every other layer argument
    (lambda: nn.AvgPool2d(2, divisor_override=-1), ValueError,
     r"AvgPool2d: divisor_override must be an int >= 1, got -1"),
    (lambda: nn.AdaptiveAvgPool2d(-1), ValueError, r"output_size must be an int >= 1, got -1"),
    (lambda: nn.AdaptiveAvgPool2d("a"), TypeError, r"output_size must be an int >= 1, got 'a'"),
    (lambda: nn.AdaptiveAvgPool2d((1, 2, 3)), ValueError, r"an int or 2 ints \(or None\)"),
    (lambda: nn.init.calculate_gain("leaky_relu", "x"), ValueError,
     r"param \(the negative slope\) must be a number, got 'x'"),
    (lambda: nn.init.uniform_(np.zeros(3), a=2, b=1), ValueError,
     r"uniform_: a must be at most b, got a=2.0, b=1.0"),
    (lambda: nn.init.normal_(np.zeros(3), std=-1), ValueError,
     r"normal_: std must lie in \[0.0, None\], got -1"),
    (lambda: nn.CrossEntropyLoss()(np.zeros((3, 4), np.float32), np.array([0.0, 1.0, 2.0])),
     TypeError, "integer class indices"),
    (lambda: nn.CrossEntropyLoss()(np.zeros((3, 4), np.float32), np.array([0, 4, 1])),
     ValueError, r"CrossEntropyLoss.*\[0, 4\).*got 4"),
    (lambda: nn.CrossEntropyLoss()(np.zeros((3, 4), np.float32), np.array([0, -1, 1])),
     ValueError, r"\[0, 4\)"),
    (lambda: nn.CrossEntropyLoss()(np.zeros((3, 4), np.float32), np.array([0, 1])),
     ValueError, r"target shape \(2,\) does not match input shape \(3, 4\)"),
    (lambda: nn.CrossEntropyLoss(weight=[1.0, 2.0])(np.zeros((3, 4), np.float32),
                                                    np.array([0, 1, 2])),
     ValueError, "weight of shape"),
    (lambda: nn.MSELoss()(np.zeros((3, 1), np.float32), np.zeros(3)), ValueError,
     r"MSELoss.*target shape \(3,\) must equal the input shape \(3, 1\)"),
    (lambda: nn.BCEWithLogitsLoss()(np.zeros(3), np.zeros((3, 1))), ValueError, "broadcast"),
    (lambda: nn.MSELoss()(np.zeros(3), np.array(["a", "b", "c"])), TypeError, "real-valued"),
    (lambda: nn.MSELoss(reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: nn.Linear(3, 2).backward(np.ones(2)), RuntimeError, "without a forward before it"),
    (lambda: nn.Conv1d(3, 4, 3, padding=10 ** 12, padding_mode="replicate")(
        np.zeros((1, 3, 5), np.float32)), ValueError,
     r"Conv1d\(3, 4.*the input padded to shape \(1, 3, 2000000000005\) would need .* GiB.*"
     r"padding_mode='replicate'"),
    (lambda: nn.ConvTranspose1d(3, 4, 3, stride=10 ** 12)(np.zeros((1, 3, 5), np.float32)),
     ValueError, r"ConvTranspose1d\(3, 4.*the output of shape \(1, 4, 4000000000003\) would "
                 r"need .* GiB"),
    (lambda: nn.Parameter(np.ones(2), requires_grad="no"), TypeError,
     "requires_grad must be a bool, got 'no'"),
    (lambda: nn.Embedding.from_pretrained(np.ones((3, 2)), freeze="no"), TypeError,
     "freeze must be a bool, got 'no'"),
    (lambda: _forwarded(nn.BCEWithLogitsLoss(), np.zeros(3), np.zeros(3)).backward("a"),
     TypeError, r"BCEWithLogitsLoss.*grad_output must be a float array, got dtype <U1"),
    (lambda: _forwarded(nn.MSELoss(reduction="none"), np.zeros(2), np.zeros(2)).backward(
        np.array([1 + 5j, 1j])), TypeError, r"grad_output must be a float array, got dtype "
                                            r"complex128"),
    (lambda: _forwarded(nn.MSELoss(), np.zeros(2), np.zeros(2)).backward(np.ones(2)),
     ValueError, r"grad_output must have the shape of the last forward's output \(\), got "
                 r"shape \(2,\)"),
    (lambda: nn.Dropout(0.5, inplace=True)(_read_only(np.ones(4))), ValueError,
     r"Dropout.*inplace=True needs a writeable input, got a read-only array of shape \(4,\)"),
])
def test_bad_input_raises_naming_the_layer(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_grad_output_of_the_wrong_shape_is_rejected():
    conv = nn.Conv1d(2, 3, 3)
    conv(np.zeros((4, 2, 10), np.float32))
    with pytest.raises(ValueError, match=r"Conv1d.*grad_output must have the shape of the "
                                         r"last forward's output \(4, 3, 8\), got shape \(4, 3\)"):
        conv.backward(np.zeros((4, 3), np.float32))
    relu = nn.ReLU()
    relu(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="ReLU"):
        relu.backward(np.zeros((3,)))                      # would broadcast silently


# --------------------------------------------------------------------------------------------
# Docstrings, exports, and training
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["module", "init", "conv", "linear", "activation", "pooling",
                                  "normalization", "loss"])
def test_docstring_examples_run(name):
    module = importlib.import_module(f"pyconv1d.nn.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
    assert doctest.testmod(nn, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_public_names_are_exported_and_documented():
    assert "nn" in pyconv1d.__all__ and "optim" in pyconv1d.__all__
    assert pyconv1d.nn is nn and pyconv1d.optim is optim
    for name in nn.__all__:
        assert getattr(nn, name).__doc__, name


def _motif_data(rng, n, length=64):
    """Noisy signals; class 1 hides a motif at a random position, class 0 a decoy with the
    same energy (the motif reversed and negated), so only a pattern detector separates them."""
    motif = np.array([1, -1, 1, 1, -1, 1, -1, -1], np.float32) * 1.5
    decoy = -motif[::-1]
    x = rng.normal(0, 0.6, (n, 1, length)).astype(np.float32)
    y = rng.integers(0, 2, n)
    pos = rng.integers(0, length - len(motif) + 1, n)
    for i in range(n):
        x[i, 0, pos[i]:pos[i] + len(motif)] += motif if y[i] else decoy
    return x, y


def test_small_cnn_learns_to_detect_a_motif_anywhere():
    rng = np.random.default_rng(0)
    x_train, y_train = _motif_data(rng, 512)
    x_test, y_test = _motif_data(rng, 512)
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 8, 9, padding="same"), nn.ReLU(),
                          nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Dropout(0.1),
                          nn.Linear(8, 2))
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=0.02)

    def accuracy():
        model.eval()
        acc = (model(x_test).argmax(axis=1) == y_test).mean()
        model.train()
        return acc
    assert accuracy() < 0.7
    for epoch in range(8):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
    assert accuracy() >= 0.95
    assert loss < 0.3


def test_relu_keeps_nan_and_masks_its_gradient_by_the_output():
    """ReLU is max(x, 0) with NaN kept (as torch.relu), gradient 0 where the output is <= 0
    (at 0 and below) and passed through elsewhere, at NaN too (torch 2.13's relu backward
    gives 3 there); the output may be changed in place before backward."""
    relu = nn.ReLU()
    x = np.array([-1.5, 0.0, 2.0, np.nan], np.float32)
    y = relu(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [0.0, 0.0, 2.0, np.nan])
    y *= 0                                           # the caller's in-place change
    g = relu.backward(np.full(4, 3.0, np.float32))
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [0.0, 0.0, 3.0, 3.0])
    if importlib.util.find_spec("torch") is not None:
        import torch
        t = torch.tensor(x, requires_grad=True)
        torch.relu(t).backward(torch.full((4,), 3.0))
        np.testing.assert_array_equal(g, t.grad.numpy())


@pytest.mark.parametrize("make", [lambda: nn.ReLU(inplace=True), lambda: nn.ReLU(True),
                                  lambda: nn.LeakyReLU(0.1, inplace=True)])
def test_activations_in_place(make):
    """inplace=True writes the output into the input array (as torch's) and returns it; the
    gradient is that of the layer without it; a read-only input is refused by name."""
    layer, plain = make(), make()
    plain.inplace = False
    x = np.array([-2.0, 0.0, 3.0, np.nan])
    expected = plain(x.copy())
    y = layer(x)
    assert y is x
    np.testing.assert_array_equal(x, expected)
    g = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(layer.backward(g), plain.backward(g))
    assert "inplace=True" in repr(layer)
    with pytest.raises(ValueError, match=r"inplace=True needs a writeable input"):
        layer(np.frombuffer(np.zeros(3).tobytes()))


def test_identity_ignores_its_arguments_and_norm_layers_reset():
    """As torch: Identity takes any arguments and ignores them; BatchNorm's and LayerNorm's
    reset_parameters() give back the construction-time scale 1, shift 0 (and BatchNorm's
    running statistics 0 and 1); calculate_gain gives 1 for every convolution."""
    assert repr(nn.Identity(54, unused_argument1=0.1)) == "Identity()"
    bn, ln = nn.BatchNorm1d(3), nn.LayerNorm(3)
    bn(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    for layer in (bn, ln):
        layer.weight.data[...] = 5
        layer.bias.data[...] = 2
        layer.reset_parameters()
        np.testing.assert_array_equal(layer.weight.data, 1)
        np.testing.assert_array_equal(layer.bias.data, 0)
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert int(bn.num_batches_tracked) == 0
    for name in ("conv3d", "conv_transpose2d", "conv_transpose3d"):
        assert nn.init.calculate_gain(name) == 1.0


def test_batchnorm_statistics_survive_a_large_offset():
    """float32 data far from zero (mean 1000, std 0.1): the batch statistics, taken from
    per-plane sums and the deviations from the mean, match float64 numpy to float32's
    resolution of the input, and the running variance is the unbiased one."""
    rng = np.random.default_rng(3)
    x = (1000 + 0.1 * rng.standard_normal((16, 4, 30, 50))).astype(np.float32)
    bn = nn.BatchNorm2d(4, momentum=1.0)
    y = bn(x)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    ref = (x64 - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    # the input itself is only known to half an ulp of 1000 (3e-5), 3e-4 of a std of 0.1
    np.testing.assert_allclose(y, ref, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-6)
    n = x.size // 4
    np.testing.assert_allclose(bn.running_var, var * n / (n - 1), rtol=1e-4)


@pytest.mark.parametrize("make,flag", [
    (lambda: nn.MaxPool1d(2, ceil_mode="no"), "ceil_mode"),
    (lambda: nn.MaxPool2d(2, return_indices="no"), "return_indices"),
    (lambda: nn.AvgPool1d(3, padding=1, count_include_pad="no"), "count_include_pad"),
    (lambda: nn.AdaptiveMaxPool1d(1, return_indices=1), "return_indices"),
    (lambda: nn.Conv1d(2, 3, 3, bias="no"), "bias"),
    (lambda: nn.Conv2d(2, 3, 3, bias=0), "bias"),
    (lambda: nn.Linear(2, 3, bias="no"), "bias"),
    (lambda: nn.BatchNorm1d(3, affine="no"), "affine"),
    (lambda: nn.BatchNorm2d(3, track_running_stats=None), "track_running_stats"),
    (lambda: nn.BatchNorm1d(3, bias="no"), "bias"),
    (lambda: nn.LayerNorm(3, elementwise_affine="no"), "elementwise_affine"),
    (lambda: nn.LayerNorm(3, bias=1), "bias"),
    (lambda: nn.Dropout(0.5, inplace="no"), "inplace"),
])
def test_layer_flags_must_be_bools(make, flag):
    """A flag given as 'no' or 0 is a TypeError naming it, as in the functional API (the
    layers used to take its truth value: ceil_mode='no' pooled in ceil mode)."""
    with pytest.raises(TypeError, match=f"{flag} must be a bool"):
        make()


def test_losses_with_nothing_to_average():
    """An empty batch, or targets all equal to ignore_index: the mean is nan and the
    gradient zero, as in torch (the backward divided by zero); logits with no class are a
    ValueError."""
    x = np.random.default_rng(0).standard_normal((2, 3))
    for loss in (nn.CrossEntropyLoss(), nn.CrossEntropyLoss(weight=np.ones(3))):
        assert math.isnan(loss(x, np.array([-100, -100])))
        assert np.array_equal(loss.backward(), np.zeros((2, 3)))
        assert math.isnan(loss(np.zeros((0, 3)), np.zeros(0, int)))
        assert loss.backward().shape == (0, 3)
    for loss in (nn.MSELoss(), nn.BCEWithLogitsLoss()):
        assert math.isnan(loss(np.zeros((0, 3)), np.zeros((0, 3))))
        assert loss.backward().shape == (0, 3)
    with pytest.raises(ValueError, match="at least one class"):
        nn.CrossEntropyLoss()(np.zeros((2, 0)), np.array([0, 0]))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_whose_counted_targets_weigh_nothing(smoothing):
    """Targets whose class weights are all 0: torch's mean is 0/0, a nan loss and nan
    gradients; the smoothing term alone made the loss inf and the gradient was zero."""
    x = np.random.default_rng(0).standard_normal((2, 3))
    loss = nn.CrossEntropyLoss(weight=np.array([0.0, 1.0, 2.0]), label_smoothing=smoothing)
    assert math.isnan(loss(x, np.array([0, 0])))
    assert np.isnan(loss.backward()).all()


def test_adaptive_max_pool_of_an_empty_batch():
    for shape in ((0, 3, 10), (2, 0, 10)):
        y = nn.AdaptiveMaxPool1d(2)(np.zeros(shape))
        assert y.shape == shape[:2] + (2,)
        assert F.adaptive_max_pool1d_backward(y, np.zeros(shape), 2).shape == shape


def test_cross_entropy_labels_past_int64():
    """A uint64 label beyond int64 is out of range, not wrapped to -1 (which ignore_index=-1
    then skipped)."""
    loss = nn.CrossEntropyLoss(ignore_index=-1)
    with pytest.raises(ValueError, match="got 18446744073709551615"):
        loss(np.zeros((2, 3)), np.array([2 ** 64 - 1, 0], np.uint64))
    assert loss(np.zeros((2, 3)), np.array([2, 0], np.uint64)) == pytest.approx(math.log(3))


@pytest.mark.parametrize("layer,shape", [
    (nn.Flatten(), (2, 3, 4)), (nn.Permute(0, 2, 1), (2, 3, 4)), (nn.Transpose(1, 2), (2, 3, 4)),
    (nn.Dropout(0.5).eval(), (2, 3, 4))])
def test_shape_layers_check_grad_output(layer, shape):
    """A grad_output of another shape with as many elements (or none of them) is a
    ValueError naming the layer, not a silent reshape or numpy's axis error."""
    y = layer(np.ones(shape))
    for bad in (y.shape[::-1], (y.size,), (1, 2)):
        with pytest.raises(ValueError, match="shape of the last forward's output"):
            layer.backward(np.ones(bad))
    assert layer.backward(np.ones(y.shape)).shape == shape     # a failed backward kept it


def test_load_state_dict_and_layer_norm_argument_types():
    layer = nn.Linear(2, 3)
    for bad in (None, [1, 2]):
        with pytest.raises(TypeError, match="state_dict must be a mapping"):
            layer.load_state_dict(bad)
    with pytest.raises(TypeError, match="strict must be a bool, got 'no'"):
        layer.load_state_dict(layer.state_dict(), strict="no")
    for bad in (3.0, None):
        with pytest.raises(TypeError, match="normalized_shape must be an int or a tuple"):
            nn.LayerNorm(bad)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv1d(3, 4, 2 ** 40), r"\(4, 3, 1099511627776\)"),
    (lambda: nn.Linear(2 ** 20, 2 ** 20), r"\(1048576, 1048576\)"),
    (lambda: nn.Embedding(2 ** 40, 300), r"\(1099511627776, 300\)")])
def test_weights_that_would_not_fit_memory(make, shape):
    """A layer whose weight would need terabytes says so, naming the layer and the shape,
    before asking numpy for them."""
    with pytest.raises(ValueError, match=f"a weight of shape {shape} would need"):
        make()


def test_seeds_and_loss_weights_are_checked():
    """Negative seeds and non-numeric loss weights are errors naming the argument (numpy's
    "expected non-negative integer" and "could not convert string to float" before)."""
    with pytest.raises(ValueError, match="seed must be an int >= 0 or None, got -1"):
        nn.manual_seed(-1)
    with pytest.raises(TypeError, match="seed must be an int >= 0 or None, got 1.5"):
        nn.manual_seed(1.5)
    with pytest.raises(ValueError, match="rng must be an int >= 0, a numpy.random.Generator "
                                         "or None, got -1"):
        nn.Conv1d(2, 3, 3, rng=-1)
    with pytest.raises(TypeError, match="weight must be an array of real numbers"):
        nn.CrossEntropyLoss(weight="abc")
    with pytest.raises(TypeError, match="pos_weight must be an array of real numbers"):
        nn.BCEWithLogitsLoss(pos_weight=["a"])


def test_load_state_dict_refuses_values_the_dtype_cannot_hold():
    """1e300 became inf in a float32 weight and 2.7 became 2 batches, silently."""
    lin = nn.Linear(2, 1)
    before = lin.weight.data.copy()
    with pytest.raises(ValueError, match=r"values out of range for weight: float32 cannot hold "
                                         r"1e\+300"):
        lin.load_state_dict({"weight": np.array([[1e300, 0.0]]), "bias": np.zeros(1)})
    assert np.array_equal(lin.weight.data, before)          # nothing copied
    lin.load_state_dict({"weight": np.array([[np.inf, -1e30]]), "bias": np.zeros(1)})
    assert lin.weight.data[0, 0] == np.inf                  # inf stays inf
    bn = nn.BatchNorm1d(2)
    state = bn.state_dict()
    for bad, shown in [(2.7, "2.7"), (2.0 ** 70, "1.1805916207174113e+21")]:
        with pytest.raises(ValueError, match=re.escape(f"num_batches_tracked: int64 cannot hold "
                                                       f"{shown}")):
            bn.load_state_dict(dict(state, num_batches_tracked=np.array(bad)))
    bn.load_state_dict(dict(state, num_batches_tracked=np.array(3.0)))
    assert bn.state_dict()["num_batches_tracked"] == 3
    bn.load_state_dict(dict(state, num_batches_tracked=np.array(2 ** 62, dtype=np.uint64)))
    assert bn.state_dict()["num_batches_tracked"] == 2 ** 62
    with pytest.raises(ValueError, match="int64 cannot hold 18446744073709551615"):
        bn.load_state_dict(dict(state, num_batches_tracked=np.array(2 ** 64 - 1, np.uint64)))


@pytest.mark.parametrize("mode", ["replicate", "reflect", "circular"])
def test_padding_modes_need_something_to_pad_from(mode):
    with pytest.raises(ValueError, match=f"padding_mode='{mode}' has nothing to pad from"):
        nn.Conv1d(1, 1, 3, padding=1, padding_mode=mode)(np.zeros((1, 1, 0), np.float32))


@pytest.mark.parametrize("make", [
    lambda: nn.LayerNorm(6, elementwise_affine=False, dtype=np.float64),
    lambda: nn.Softmax(dim=1),
    lambda: nn.LogSoftmax(dim=1),
])
def test_output_changed_in_place_leaves_the_gradient_alone(make):
    """LayerNorm without affine returned the array its backward keeps, and Softmax and
    LogSoftmax kept their output: a Dropout(inplace=True) after them changed the input
    gradient (by up to 2.4)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6))
    go = rng.standard_normal((4, 6))
    grads = []
    for inplace in (False, True):
        seq = nn.Sequential(make(), nn.Dropout(0.5, inplace=inplace, rng=1))
        seq(x)
        grads.append(seq.backward(go))
    assert np.array_equal(grads[0], grads[1])
